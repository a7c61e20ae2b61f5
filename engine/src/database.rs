//! [`Database`]: one shard's storage — its tables ([`ColumnFamily`]), their
//! memtables, and the read and write paths over them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use log::{info, warn};

use crate::commitlog::format::{ENTRY_MUTATION, ENTRY_TRUNCATE};
use crate::commitlog::{
    CommitLog, CommitLogConfig, CommitLogReplayer, ReplayPosition, ReplayReport, SyncMode,
};
use crate::error::{format_table_id, EngineError};
use crate::memtable::Memtable;
use crate::mutation::{Bound, Mutation, PartitionKey, PartitionUpdate, TableId};
use crate::read::{ReadCommand, TokenRange};
use crate::reader::{read_merged, scan_merged, MutationSource};
use crate::schema::TableSchema;
use crate::serialize::encode_mutation;

/// Storage settings of one shard. Build with [`EngineConfig::in_memory`]
/// and adjust fields; new settings keep their defaults for existing callers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Memory budget (bytes) of all memtables of the shard
    /// (`memtable_heap_space_in_mb` divided among shards).
    pub memtable_space_bytes: usize,
    /// The shard's commitlog; `None` keeps everything in memory only.
    pub commitlog: Option<CommitLogConfig>,
}

impl EngineConfig {
    /// A configuration without a commitlog: nothing survives a restart.
    pub fn in_memory() -> Self {
        EngineConfig {
            memtable_space_bytes: 256 << 20,
            commitlog: None,
        }
    }

    /// A durable configuration: writes go to `commitlog` first.
    pub fn with_commitlog(commitlog: CommitLogConfig) -> Self {
        EngineConfig {
            commitlog: Some(commitlog),
            ..EngineConfig::in_memory()
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
    /// Open once [`Database::start_commitlog`] has replayed the log.
    commitlog: Option<CommitLog>,
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
            commitlog: None,
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

    /// Removes a table and all its data (its commitlog data is discarded:
    /// replay skips tables that do not exist).
    pub fn drop_table(&mut self, id: &TableId) {
        if self.tables.remove(id).is_some() {
            if let Some(cl) = &mut self.commitlog {
                cl.discard_completed_segments(
                    id,
                    ReplayPosition {
                        segment_id: u64::MAX,
                        offset: u64::MAX,
                    },
                );
            }
            info!("dropped table {}", format_table_id(id));
        }
    }

    /// Removes all data of a table, keeping the table. With a commitlog, a
    /// durable truncation record makes replay drop the older data; if that
    /// record cannot be written the error is logged (the commitlog is then
    /// poisoned) — use [`Database::truncate_checked`] to see it.
    pub fn truncate(&mut self, id: &TableId) {
        if let Err(e) = self.truncate_checked(id) {
            warn!("truncate of {} failed: {e}", format_table_id(id));
        }
    }

    /// [`Database::truncate`], reporting failure.
    pub fn truncate_checked(&mut self, id: &TableId) -> Result<(), EngineError> {
        if !self.tables.contains_key(id) {
            return Err(EngineError::NoSuchTable(*id));
        }
        if self.config.commitlog.is_some() {
            let cl = self
                .commitlog
                .as_mut()
                .ok_or(EngineError::CommitLogNotStarted)?;
            let mut payload = Vec::with_capacity(17);
            payload.push(ENTRY_TRUNCATE);
            payload.extend_from_slice(id);
            let pos = cl.add(None, &payload)?;
            cl.sync()?;
            cl.wait_durable(pos)?;
            cl.discard_completed_segments(id, pos);
        }
        if let Some(cf) = self.tables.get_mut(id) {
            let schema = cf.schema.clone();
            cf.memtable = Memtable::new(schema);
            info!("truncated table {}", format_table_id(id));
        }
        Ok(())
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

    /// Replays the commitlog into the memtables and opens it for writes.
    /// Call once, after every table is created and before any write. With
    /// no commitlog configured this does nothing.
    pub fn start_commitlog(&mut self) -> Result<ReplayReport, EngineError> {
        let Some(config) = self.config.commitlog.clone() else {
            return Ok(ReplayReport::default());
        };
        if self.commitlog.is_some() {
            return Err(EngineError::InvalidConfig(
                "commitlog already started".into(),
            ));
        }
        let out = CommitLogReplayer::for_shard(&config.directory, config.shard).replay()?;
        let mut report = out.report;
        for m in &out.mutations {
            match self.tables.get_mut(&m.table) {
                Some(cf) => match cf.validate(&m.update) {
                    Ok(()) => cf.memtable.apply(&m.update),
                    Err(e) => {
                        warn!("commitlog replay: skipping mutation: {e}");
                        report.mutations_skipped += 1;
                    }
                },
                None => report.mutations_skipped += 1,
            }
        }
        info!(
            "commitlog replayed: {} entries, {} mutations for unknown tables skipped, {} torn bytes skipped, {} corrupt segments",
            report.entries_replayed,
            report.mutations_skipped,
            report.torn_bytes_skipped,
            report.corrupt_segments.len()
        );
        self.commitlog = Some(CommitLog::open(config, &out.segments, out.recycled)?);
        Ok(report)
    }

    /// Applies a mutation: commitlog first (if configured), then the
    /// memtable. In batch mode this returns only once the mutation is on
    /// disk (one sync per call: for group commit use
    /// [`Database::apply_deferred`] and [`Database::sync_commitlog`]).
    pub fn apply(&mut self, m: &Mutation) -> Result<(), EngineError> {
        let batch = matches!(
            self.config.commitlog.as_ref().map(|c| c.sync),
            Some(SyncMode::Batch { .. })
        );
        let cf = self
            .tables
            .get(&m.table)
            .ok_or(EngineError::NoSuchTable(m.table))?;
        cf.validate(&m.update)?;
        if let Some(pos) = self.log(m)? {
            if batch {
                let cl = self.commitlog.as_mut().expect("logged above");
                cl.sync()?;
                cl.wait_durable(pos)?;
            }
        }
        self.apply_to_memtable(m);
        Ok(())
    }

    /// Applies a mutation without waiting for the commitlog sync, and
    /// returns its commitlog position (`None` without a commitlog). In batch
    /// mode the caller acknowledges the write only once
    /// [`Database::commitlog_durable_position`] reaches that position —
    /// many writes then share one sync ([`Database::sync_commitlog`]).
    pub fn apply_deferred(&mut self, m: &Mutation) -> Result<Option<ReplayPosition>, EngineError> {
        let cf = self
            .tables
            .get(&m.table)
            .ok_or(EngineError::NoSuchTable(m.table))?;
        cf.validate(&m.update)?;
        let pos = self.log(m)?;
        self.apply_to_memtable(m);
        Ok(pos)
    }

    fn log(&mut self, m: &Mutation) -> Result<Option<ReplayPosition>, EngineError> {
        if self.config.commitlog.is_none() {
            return Ok(None);
        }
        let cl = self
            .commitlog
            .as_mut()
            .ok_or(EngineError::CommitLogNotStarted)?;
        let mut payload = Vec::with_capacity(256);
        payload.push(ENTRY_MUTATION);
        encode_mutation(m, &mut payload);
        cl.add(Some(m.table), &payload).map(Some)
    }

    fn apply_to_memtable(&mut self, m: &Mutation) {
        if let Some(cf) = self.tables.get_mut(&m.table) {
            cf.memtable.apply(&m.update);
            self.writes.fetch_add(1, AtomicOrdering::Relaxed);
        }
    }

    /// Starts a commitlog sync covering every write so far (group commit);
    /// returns the position it covers. Does not wait.
    pub fn sync_commitlog(&mut self) -> Result<Option<ReplayPosition>, EngineError> {
        self.commitlog.as_mut().map(|cl| cl.sync()).transpose()
    }

    /// Reaps finished commitlog I/O without blocking and returns the
    /// durable position (`None` without a commitlog).
    pub fn commitlog_durable_position(&mut self) -> Result<Option<ReplayPosition>, EngineError> {
        self.commitlog.as_mut().map(|cl| cl.poll()).transpose()
    }

    /// Blocks until `pos` is durable.
    pub fn wait_commitlog(&mut self, pos: ReplayPosition) -> Result<(), EngineError> {
        match &mut self.commitlog {
            Some(cl) => cl.wait_durable(pos),
            None => Ok(()),
        }
    }

    /// Periodic-mode housekeeping (sync when the period elapsed); call from
    /// a timer.
    pub fn commitlog_tick(&mut self) -> Result<(), EngineError> {
        match &mut self.commitlog {
            Some(cl) => cl.tick(),
            None => Ok(()),
        }
    }

    /// The commitlog, once started.
    pub fn commitlog(&self) -> Option<&CommitLog> {
        self.commitlog.as_ref()
    }

    /// The commitlog, once started (e.g. for fault injection in tests).
    pub fn commitlog_mut(&mut self) -> Option<&mut CommitLog> {
        self.commitlog.as_mut()
    }

    /// Syncs the commitlog and waits for it: ordered shutdown.
    pub fn shutdown(&mut self) -> Result<(), EngineError> {
        match &mut self.commitlog {
            Some(cl) => cl.shutdown(),
            None => Ok(()),
        }
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
