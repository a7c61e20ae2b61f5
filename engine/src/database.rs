//! [`Database`]: one shard's storage — its tables ([`ColumnFamily`]), their
//! memtables, and the read and write paths over them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use log::{info, warn};

use crate::error::{format_table_id, EngineError};
use crate::memtable::Memtable;
use crate::mutation::{Bound, Mutation, PartitionKey, PartitionUpdate, TableId};
use crate::read::{ReadCommand, TokenRange};
use crate::reader::{read_merged, scan_merged, MutationSource};
use crate::schema::TableSchema;

/// Storage settings of one shard. Build with [`EngineConfig::in_memory`]
/// and adjust fields; new settings keep their defaults for existing callers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Memory budget (bytes) of all memtables of the shard
    /// (`memtable_heap_space_in_mb` divided among shards).
    pub memtable_space_bytes: usize,
}

impl EngineConfig {
    /// A configuration without a commitlog: nothing survives a restart.
    pub fn in_memory() -> Self {
        EngineConfig {
            memtable_space_bytes: 256 << 20,
        }
    }
}

/// A snapshot of the shard's storage counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Mutations applied.
    pub writes: u64,
    /// Single-partition reads served.
    pub reads: u64,
    /// Range scans served.
    pub scans: u64,
}

/// One table on one shard (Cassandra's `ColumnFamilyStore`).
#[derive(Debug)]
pub struct ColumnFamily {
    schema: Arc<TableSchema>,
    memtable: Memtable,
}

impl ColumnFamily {
    fn new(schema: Arc<TableSchema>) -> Self {
        ColumnFamily {
            memtable: Memtable::new(schema.clone()),
            schema,
        }
    }

    /// The table's current schema.
    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    /// The active memtable.
    pub fn memtable(&self) -> &Memtable {
        &self.memtable
    }

    fn sources(&self) -> Vec<&dyn MutationSource> {
        vec![&self.memtable as &dyn MutationSource]
    }

    /// Checks that `update` fits the schema before anything of it is applied.
    fn validate(&self, update: &PartitionUpdate) -> Result<(), EngineError> {
        let n = self.schema.clustering.len();
        for (c, _) in &update.rows {
            if c.len() != n {
                return Err(EngineError::InvalidMutation(format!(
                    "row clustering has {} components, table {} has {n}",
                    c.len(),
                    format_table_id(&self.schema.id)
                )));
            }
        }
        for rt in &update.range_tombstones {
            for b in [&rt.range.start, &rt.range.end] {
                if let Bound::Inclusive(p) | Bound::Exclusive(p) = b {
                    if p.len() > n {
                        return Err(EngineError::InvalidMutation(format!(
                            "range tombstone bound has {} components, table {} has {n}",
                            p.len(),
                            format_table_id(&self.schema.id)
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// One shard's storage.
#[derive(Debug)]
pub struct Database {
    config: EngineConfig,
    tables: HashMap<TableId, ColumnFamily>,
    writes: AtomicU64,
    reads: AtomicU64,
    scans: AtomicU64,
}

impl Database {
    /// An empty shard storage with `config`.
    pub fn new(config: EngineConfig) -> Self {
        Database {
            config,
            tables: HashMap::new(),
            writes: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            scans: AtomicU64::new(0),
        }
    }

    /// The configuration this shard was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Adds a table; if it exists already, only its schema is replaced.
    pub fn create_table(&mut self, schema: Arc<TableSchema>) {
        if self.tables.contains_key(&schema.id) {
            self.alter_table(schema);
            return;
        }
        info!("creating table {}", format_table_id(&schema.id));
        self.tables.insert(schema.id, ColumnFamily::new(schema));
    }

    /// Replaces a table's schema. Clustering types cannot change (CQL
    /// forbids altering primary key columns); rows already in memory keep
    /// the order they were written with.
    pub fn alter_table(&mut self, schema: Arc<TableSchema>) {
        match self.tables.get_mut(&schema.id) {
            Some(cf) => {
                if cf.schema.clustering != schema.clustering {
                    warn!(
                        "table {}: clustering columns changed by ALTER; keeping the original order",
                        format_table_id(&schema.id)
                    );
                }
                cf.schema = schema;
            }
            None => {
                warn!(
                    "alter of unknown table {}: creating it",
                    format_table_id(&schema.id)
                );
                self.tables.insert(schema.id, ColumnFamily::new(schema));
            }
        }
    }

    /// Removes a table and all its data.
    pub fn drop_table(&mut self, id: &TableId) {
        if self.tables.remove(id).is_some() {
            info!("dropped table {}", format_table_id(id));
        }
    }

    /// Removes all data of a table, keeping the table.
    pub fn truncate(&mut self, id: &TableId) {
        if let Some(cf) = self.tables.get_mut(id) {
            let schema = cf.schema.clone();
            cf.memtable = Memtable::new(schema);
            info!("truncated table {}", format_table_id(id));
        }
    }

    /// Whether the table exists on this shard.
    pub fn has_table(&self, id: &TableId) -> bool {
        self.tables.contains_key(id)
    }

    /// The table, if it exists.
    pub fn table(&self, id: &TableId) -> Option<&ColumnFamily> {
        self.tables.get(id)
    }

    fn cf(&self, id: &TableId) -> Result<&ColumnFamily, EngineError> {
        self.tables.get(id).ok_or(EngineError::NoSuchTable(*id))
    }

    /// Applies a mutation to its table's memtable.
    pub fn apply(&mut self, m: &Mutation) -> Result<(), EngineError> {
        let cf = self
            .tables
            .get_mut(&m.table)
            .ok_or(EngineError::NoSuchTable(m.table))?;
        cf.validate(&m.update)?;
        cf.memtable.apply(&m.update);
        self.writes.fetch_add(1, AtomicOrdering::Relaxed);
        Ok(())
    }

    /// Reads one partition: live data only (see [`ReadCommand`]). `None`
    /// when the partition has no live row and no live static row.
    pub fn read_partition(
        &self,
        table: &TableId,
        key: &PartitionKey,
        cmd: &ReadCommand,
    ) -> Result<Option<PartitionUpdate>, EngineError> {
        let cf = self.cf(table)?;
        self.reads.fetch_add(1, AtomicOrdering::Relaxed);
        Ok(read_merged(&cf.schema, &cf.sources(), key, cmd))
    }

    /// Scans partitions of `range` in (token, key) order, live data only,
    /// at most `partition_limit` partitions (each holding something live).
    pub fn scan(
        &self,
        table: &TableId,
        range: TokenRange,
        cmd: &ReadCommand,
        partition_limit: usize,
    ) -> Result<Vec<PartitionUpdate>, EngineError> {
        let cf = self.cf(table)?;
        self.scans.fetch_add(1, AtomicOrdering::Relaxed);
        Ok(scan_merged(
            &cf.schema,
            &cf.sources(),
            &range,
            cmd,
            partition_limit,
        ))
    }

    /// Approximate bytes held by all memtables of the shard.
    pub fn memtable_bytes(&self) -> usize {
        self.tables
            .values()
            .map(|cf| cf.memtable.memory_usage())
            .sum()
    }

    /// The shard's counters.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            writes: self.writes.load(AtomicOrdering::Relaxed),
            reads: self.reads.load(AtomicOrdering::Relaxed),
            scans: self.scans.load(AtomicOrdering::Relaxed),
        }
    }
}
