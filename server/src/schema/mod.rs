//! Keyspaces, tables, columns and user types: the node's schema.
//!
//! The core structs here are shared by the statement executor, the system
//! tables and DESCRIBE. A [`Schema`] value is immutable once built; DDL
//! produces a new one (copy-on-write via `Arc`), so readers never lock.

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::value::ColumnType;

/// A table's or type's UUID.
pub type Uuid = [u8; 16];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    /// Position in the partition key.
    PartitionKey(usize),
    /// Position in the clustering key.
    Clustering(usize),
    Regular,
    Static,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusteringOrder {
    None,
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMetadata {
    pub name: String,
    pub ty: ColumnType,
    pub kind: ColumnKind,
    /// `Asc`/`Desc` for clustering columns, `None` otherwise.
    pub order: ClusteringOrder,
    /// The engine's column id for regular and static columns (never reused
    /// within a table); unused (0) for key columns.
    pub id: engine::mutation::ColumnId,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableOptions {
    pub bloom_filter_fp_chance: f64,
    pub caching: BTreeMap<String, String>,
    pub comment: String,
    pub compaction: BTreeMap<String, String>,
    pub compression: BTreeMap<String, String>,
    pub crc_check_chance: f64,
    pub default_time_to_live: i32,
    pub gc_grace_seconds: i32,
    pub max_index_interval: i32,
    pub memtable_flush_period_in_ms: i32,
    pub min_index_interval: i32,
    pub speculative_retry: String,
    pub additional_write_policy: String,
    pub read_repair: String,
    pub extensions: BTreeMap<String, Vec<u8>>,
    pub cdc: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexMetadata {
    pub name: String,
    /// `COMPOSITES`, `KEYS` or `CUSTOM`.
    pub kind: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableMetadata {
    pub keyspace: String,
    pub name: String,
    pub id: Uuid,
    /// Partition key columns first (in order), then clustering columns (in
    /// order), then static and regular columns sorted by name — the order
    /// `SELECT *` returns them in.
    pub columns: Vec<ColumnMetadata>,
    pub partition_key_len: usize,
    pub clustering_key_len: usize,
    pub options: TableOptions,
    pub indexes: Vec<IndexMetadata>,
    /// Dropped regular/static columns: name -> (type, drop time in micros).
    pub dropped_columns: BTreeMap<String, (ColumnType, i64)>,
    pub is_counter: bool,
    /// A table of a system keyspace whose rows are produced by the node.
    pub is_virtual: bool,
    /// Next engine column id to assign.
    pub next_column_id: engine::mutation::ColumnId,
}

impl TableMetadata {
    pub fn column(&self, name: &str) -> Option<&ColumnMetadata> {
        self.columns.iter().find(|c| c.name == name)
    }
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
    pub fn partition_key(&self) -> &[ColumnMetadata] {
        &self.columns[..self.partition_key_len]
    }
    pub fn clustering_key(&self) -> &[ColumnMetadata] {
        &self.columns[self.partition_key_len..self.partition_key_len + self.clustering_key_len]
    }
    /// Static and regular columns.
    pub fn value_columns(&self) -> &[ColumnMetadata] {
        &self.columns[self.partition_key_len + self.clustering_key_len..]
    }
    pub fn has_static_columns(&self) -> bool {
        self.value_columns().iter().any(|c| c.kind == ColumnKind::Static)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationParams {
    /// Full class name, e.g. `org.apache.cassandra.locator.SimpleStrategy`.
    pub class: String,
    /// Remaining options (`replication_factor`, or one entry per DC).
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserType {
    pub keyspace: String,
    pub name: String,
    pub field_names: Vec<String>,
    pub field_types: Vec<ColumnType>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyspaceMetadata {
    pub name: String,
    pub replication: ReplicationParams,
    pub durable_writes: bool,
    pub tables: BTreeMap<String, Arc<TableMetadata>>,
    pub types: BTreeMap<String, Arc<UserType>>,
    /// A keyspace the node owns (`system`, `system_schema`, ...).
    pub is_system: bool,
}

/// The whole schema at one version.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub keyspaces: BTreeMap<String, Arc<KeyspaceMetadata>>,
    /// Changes with every DDL; the same schema gives the same version.
    pub version: Uuid,
}

impl Schema {
    pub fn keyspace(&self, name: &str) -> Option<&Arc<KeyspaceMetadata>> {
        self.keyspaces.get(name)
    }
    pub fn table(&self, keyspace: &str, name: &str) -> Option<&Arc<TableMetadata>> {
        self.keyspaces.get(keyspace)?.tables.get(name)
    }
}
