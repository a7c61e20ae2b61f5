//! Keyspaces, tables, columns and user types: the node's schema.
//!
//! The core structs here are shared by the statement executor, the system
//! tables and DESCRIBE. A [`Schema`] value is immutable once built; DDL
//! produces a new one (copy-on-write via `Arc`), so readers never lock.
//!
//! Submodules: [`ddl`] applies DDL statements ([`Schema::apply_ddl`]),
//! [`system`] defines the system keyspaces and produces the rows of the
//! node-generated tables ([`system::virtual_table_rows`]), [`describe`]
//! answers server-side `DESCRIBE`, [`persist`] saves and loads the schema
//! ([`Schema::save`], [`Schema::load`]), [`types`] formats and parses CQL type
//! strings and identifiers, [`digest`] holds MD5 and UUID helpers.
//!
//! Types in the schema are canonical: tuples are always `Frozen(Tuple)`, and
//! every collection, tuple or UDT nested inside a frozen type is itself
//! wrapped in `Frozen` (the way Cassandra prints them:
//! `frozen<map<text, frozen<list<int>>>>`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use proto::value::ColumnType;

pub mod ddl;
pub mod describe;
pub mod digest;
pub mod merge;
mod options;
pub mod persist;
pub mod system;
#[cfg(test)]
mod tests;
pub mod types;

pub use ddl::{DdlContext, SchemaChange, SchemaChangeEvent, SchemaChangeTarget};
pub use describe::{describe, DescribeOutput, DescribeRow};
pub use system::{virtual_table_rows, LocalNodeInfo, PeerInfo};

/// A table's or type's UUID.
pub type Uuid = [u8; 16];

/// What a column is in its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    /// Position in the partition key.
    PartitionKey(usize),
    /// Position in the clustering key.
    Clustering(usize),
    /// A regular column.
    Regular,
    /// A static column (one value per partition).
    Static,
}

impl ColumnKind {
    /// The `kind` value of `system_schema.columns`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ColumnKind::PartitionKey(_) => "partition_key",
            ColumnKind::Clustering(_) => "clustering",
            ColumnKind::Regular => "regular",
            ColumnKind::Static => "static",
        }
    }

    /// The `position` value of `system_schema.columns` (-1 for value columns).
    pub fn position(&self) -> i32 {
        match self {
            ColumnKind::PartitionKey(p) | ColumnKind::Clustering(p) => *p as i32,
            ColumnKind::Regular | ColumnKind::Static => -1,
        }
    }

    /// Part of the primary key.
    pub fn is_primary_key(&self) -> bool {
        matches!(
            self,
            ColumnKind::PartitionKey(_) | ColumnKind::Clustering(_)
        )
    }
}

/// A column's clustering order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusteringOrder {
    /// Not a clustering column.
    None,
    /// Ascending.
    Asc,
    /// Descending (reversed type).
    Desc,
}

impl ClusteringOrder {
    /// The `clustering_order` value of `system_schema.columns`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ClusteringOrder::None => "none",
            ClusteringOrder::Asc => "asc",
            ClusteringOrder::Desc => "desc",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMetadata {
    /// The column name (case as stored: unquoted names are lower case).
    pub name: String,
    /// The column type (canonical, see the module doc).
    pub ty: ColumnType,
    /// Partition key, clustering, regular or static.
    pub kind: ColumnKind,
    /// `Asc`/`Desc` for clustering columns, `None` otherwise.
    pub order: ClusteringOrder,
    /// The engine's column id for regular and static columns (never reused
    /// within a table); unused (0) for key columns.
    pub id: engine::mutation::ColumnId,
}

/// The `WITH` options of a table, as `system_schema.tables` stores them.
/// Maps hold Cassandra's normalised forms (full class names, defaults
/// filled in).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
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

impl Default for TableOptions {
    /// Cassandra 4.0's defaults for a new table.
    fn default() -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        TableOptions {
            bloom_filter_fp_chance: 0.01,
            caching: map(&[("keys", "ALL"), ("rows_per_partition", "NONE")]),
            comment: String::new(),
            compaction: map(&[
                (
                    "class",
                    "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy",
                ),
                ("max_threshold", "32"),
                ("min_threshold", "4"),
            ]),
            compression: map(&[
                ("chunk_length_in_kb", "16"),
                ("class", "org.apache.cassandra.io.compress.LZ4Compressor"),
            ]),
            crc_check_chance: 1.0,
            default_time_to_live: 0,
            gc_grace_seconds: 864000,
            max_index_interval: 2048,
            memtable_flush_period_in_ms: 0,
            min_index_interval: 128,
            speculative_retry: "99p".to_string(),
            additional_write_policy: "99p".to_string(),
            read_repair: "BLOCKING".to_string(),
            extensions: BTreeMap::new(),
            cdc: false,
        }
    }
}

/// A secondary index (stored in metadata; `system_schema.indexes`).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexMetadata {
    /// Index name, unique within the keyspace.
    pub name: String,
    /// `COMPOSITES`, `KEYS` or `CUSTOM`.
    pub kind: String,
    /// `target` (e.g. `c`, `keys(m)`, `full(l)`) and, for custom indexes,
    /// `class_name` and the `WITH OPTIONS` entries.
    pub options: BTreeMap<String, String>,
}

/// A table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableMetadata {
    /// Its keyspace.
    pub keyspace: String,
    /// The table name.
    pub name: String,
    /// Table id (random v4 for user tables; name-based v3 for system tables,
    /// as Cassandra's `TableId.forSystemTable`).
    pub id: Uuid,
    /// Partition key columns first (in order), then clustering columns (in
    /// order), then static columns sorted by name, then regular columns
    /// sorted by name — the order Cassandra's `SELECT *` returns them in.
    pub columns: Vec<ColumnMetadata>,
    /// Number of partition key columns.
    pub partition_key_len: usize,
    /// Number of clustering columns.
    pub clustering_key_len: usize,
    /// `WITH` options.
    pub options: TableOptions,
    /// Secondary indexes, sorted by name.
    pub indexes: Vec<IndexMetadata>,
    /// Dropped regular/static columns: name -> (type, drop time in micros).
    pub dropped_columns: BTreeMap<String, (ColumnType, i64)>,
    /// Which of `dropped_columns` were static when dropped.
    pub dropped_static_columns: BTreeSet<String>,
    pub is_counter: bool,
    /// A table of a system keyspace whose rows are produced by the node.
    pub is_virtual: bool,
    /// Next engine column id to assign.
    pub next_column_id: engine::mutation::ColumnId,
}

impl TableMetadata {
    /// Builds a table: key columns in the given order, value columns
    /// (`(name, type, is_static)`) ordered statics first then regulars, each
    /// by name, and given engine column ids from 0 in that order. `is_counter`
    /// is derived from the value columns.
    pub fn new(
        keyspace: &str,
        name: &str,
        id: Uuid,
        partition_key: Vec<(String, ColumnType)>,
        clustering: Vec<(String, ColumnType, ClusteringOrder)>,
        values: Vec<(String, ColumnType, bool)>,
        options: TableOptions,
    ) -> TableMetadata {
        let partition_key_len = partition_key.len();
        let clustering_key_len = clustering.len();
        let mut columns: Vec<ColumnMetadata> = partition_key
            .into_iter()
            .enumerate()
            .map(|(i, (name, ty))| ColumnMetadata {
                name,
                ty,
                kind: ColumnKind::PartitionKey(i),
                order: ClusteringOrder::None,
                id: 0,
            })
            .collect();
        columns.extend(
            clustering
                .into_iter()
                .enumerate()
                .map(|(i, (name, ty, order))| ColumnMetadata {
                    name,
                    ty,
                    kind: ColumnKind::Clustering(i),
                    order,
                    id: 0,
                }),
        );
        let is_counter = values
            .iter()
            .any(|(_, t, _)| matches!(t, ColumnType::Counter));
        columns.extend(
            values
                .into_iter()
                .map(|(name, ty, is_static)| ColumnMetadata {
                    name,
                    ty,
                    kind: if is_static {
                        ColumnKind::Static
                    } else {
                        ColumnKind::Regular
                    },
                    order: ClusteringOrder::None,
                    id: 0,
                }),
        );
        let mut t = TableMetadata {
            keyspace: keyspace.to_string(),
            name: name.to_string(),
            id,
            columns,
            partition_key_len,
            clustering_key_len,
            options,
            indexes: Vec::new(),
            dropped_columns: BTreeMap::new(),
            dropped_static_columns: BTreeSet::new(),
            is_counter,
            is_virtual: false,
            next_column_id: 0,
        };
        t.sort_value_columns();
        for i in t.partition_key_len + t.clustering_key_len..t.columns.len() {
            t.columns[i].id = t.next_column_id;
            t.next_column_id += 1;
        }
        t
    }

    /// Restores the value column order: statics then regulars, each by name.
    pub(crate) fn sort_value_columns(&mut self) {
        let start = self.partition_key_len + self.clustering_key_len;
        self.columns[start..].sort_by(|a, b| {
            (a.kind != ColumnKind::Static, a.name.as_bytes())
                .cmp(&(b.kind != ColumnKind::Static, b.name.as_bytes()))
        });
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnMetadata> {
        self.columns.iter().find(|c| c.name == name)
    }
    /// Index of the column called `name` in [`TableMetadata::columns`].
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
    /// The partition key columns, in order.
    pub fn partition_key(&self) -> &[ColumnMetadata] {
        &self.columns[..self.partition_key_len]
    }
    /// The clustering columns, in order.
    pub fn clustering_key(&self) -> &[ColumnMetadata] {
        &self.columns[self.partition_key_len..self.partition_key_len + self.clustering_key_len]
    }
    /// Static and regular columns.
    pub fn value_columns(&self) -> &[ColumnMetadata] {
        &self.columns[self.partition_key_len + self.clustering_key_len..]
    }
    /// Whether any column is static.
    pub fn has_static_columns(&self) -> bool {
        self.value_columns()
            .iter()
            .any(|c| c.kind == ColumnKind::Static)
    }
    /// The value column with engine column id `id`.
    pub fn column_by_id(&self, id: engine::mutation::ColumnId) -> Option<&ColumnMetadata> {
        self.value_columns().iter().find(|c| c.id == id)
    }
    /// The index called `name`.
    pub fn index(&self, name: &str) -> Option<&IndexMetadata> {
        self.indexes.iter().find(|i| i.name == name)
    }
    /// `ks.table` with each part quoted if needed (Cassandra's
    /// `TableMetadata.toString`).
    pub fn qualified_name(&self) -> String {
        format!(
            "{}.{}",
            types::maybe_quote(&self.keyspace),
            types::maybe_quote(&self.name)
        )
    }
}

/// A keyspace's `replication` map, split into class and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationParams {
    /// Full class name, e.g. `org.apache.cassandra.locator.SimpleStrategy`.
    pub class: String,
    /// Remaining options (`replication_factor`, or one entry per DC).
    pub options: BTreeMap<String, String>,
}

impl ReplicationParams {
    /// The map as `system_schema.keyspaces.replication` shows it: options
    /// plus `class`.
    pub fn as_map(&self) -> BTreeMap<String, String> {
        let mut m = self.options.clone();
        m.insert("class".to_string(), self.class.clone());
        m
    }
}

/// A user-defined type.
#[derive(Debug, Clone, PartialEq)]
pub struct UserType {
    /// Its keyspace.
    pub keyspace: String,
    /// The type name.
    pub name: String,
    /// Field names, in order.
    pub field_names: Vec<String>,
    /// Field types as declared (collections may be non-frozen; nested UDTs
    /// are frozen).
    pub field_types: Vec<ColumnType>,
}

/// A keyspace.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyspaceMetadata {
    /// The keyspace name.
    pub name: String,
    /// Replication strategy and options.
    pub replication: ReplicationParams,
    /// `durable_writes`.
    pub durable_writes: bool,
    /// Tables by name.
    pub tables: BTreeMap<String, Arc<TableMetadata>>,
    /// User types by name.
    pub types: BTreeMap<String, Arc<UserType>>,
    /// A keyspace the node owns (`system`, `system_schema`, ...).
    pub is_system: bool,
}

/// The whole schema at one version.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Keyspaces by name, system keyspaces included.
    pub keyspaces: BTreeMap<String, Arc<KeyspaceMetadata>>,
    /// Changes with every DDL; the same schema gives the same version.
    pub version: Uuid,
    /// When each keyspace, table and type last changed (drops included):
    /// what concurrent changes on different nodes are merged by
    /// (`merge.rs`). Not part of the version.
    pub history: BTreeMap<merge::SchemaEntity, merge::SchemaStamp>,
}

impl KeyspaceMetadata {
    /// User types ordered so that every type comes after the types it uses
    /// (Cassandra's `Types.sortedStream`), by name otherwise.
    pub fn types_in_dependency_order(&self) -> Vec<&UserType> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut out = Vec::new();
        while out.len() < self.types.len() {
            let before = out.len();
            for ut in self.types.values() {
                if done.contains(ut.name.as_str()) {
                    continue;
                }
                let ready = self.types.keys().all(|other| {
                    other == &ut.name
                        || done.contains(other.as_str())
                        || !ut
                            .field_types
                            .iter()
                            .any(|f| types::references_udt(f, &self.name, other))
                });
                if ready {
                    done.insert(&ut.name);
                    out.push(&**ut);
                }
            }
            if out.len() == before {
                // DDL cannot build a cycle; emit the rest by name.
                for ut in self.types.values() {
                    if done.insert(&ut.name) {
                        out.push(&**ut);
                    }
                }
            }
        }
        out
    }

    /// The table holding the index called `index` (index names are unique
    /// per keyspace).
    pub fn indexed_table(&self, index: &str) -> Option<&Arc<TableMetadata>> {
        self.tables.values().find(|t| t.index(index).is_some())
    }
}

impl Schema {
    /// The keyspace called `name`.
    pub fn keyspace(&self, name: &str) -> Option<&Arc<KeyspaceMetadata>> {
        self.keyspaces.get(name)
    }
    /// The table `keyspace.name`.
    pub fn table(&self, keyspace: &str, name: &str) -> Option<&Arc<TableMetadata>> {
        self.keyspaces.get(keyspace)?.tables.get(name)
    }
    /// The table with id `id`.
    pub fn table_by_id(&self, id: &Uuid) -> Option<&Arc<TableMetadata>> {
        self.keyspaces
            .values()
            .flat_map(|k| k.tables.values())
            .find(|t| &t.id == id)
    }
    /// The schema version as a UUID string.
    pub fn version_string(&self) -> String {
        digest::uuid_to_string(&self.version)
    }
    /// Recomputes [`Schema::version`]: a name-based (v3) UUID of the MD5 of
    /// every keyspace except the node-local `system` and `system_schema`
    /// (their content is fixed by the code), so the same schema always has
    /// the same version, on every node.
    pub fn recompute_version(&mut self) {
        let text = persist::serialize_keyspaces(
            self.keyspaces
                .values()
                .filter(|k| !LOCAL_SYSTEM_KEYSPACES.contains(&k.name.as_str())),
        );
        self.version = digest::name_uuid(text.as_bytes());
    }
}

/// Keyspaces that live only on this node and that no statement may modify.
pub const LOCAL_SYSTEM_KEYSPACES: [&str; 2] = ["system", "system_schema"];

/// System keyspaces replicated like user keyspaces; only their replication
/// may be altered.
pub const REPLICATED_SYSTEM_KEYSPACES: [&str; 3] =
    ["system_auth", "system_distributed", "system_traces"];

/// Whether `ks` is `system` or `system_schema`.
pub fn is_local_system_keyspace(ks: &str) -> bool {
    LOCAL_SYSTEM_KEYSPACES.contains(&ks)
}

/// Whether `ks` is one of `system_auth`, `system_distributed`, `system_traces`.
pub fn is_replicated_system_keyspace(ks: &str) -> bool {
    REPLICATED_SYSTEM_KEYSPACES.contains(&ks)
}

/// Whether `ks` is any system keyspace (local, replicated or virtual).
pub fn is_system_keyspace(ks: &str) -> bool {
    is_local_system_keyspace(ks)
        || is_replicated_system_keyspace(ks)
        || ks == "system_views"
        || ks == "system_virtual_schema"
}

/// A DDL or DESCRIBE failure, with the class of the protocol error it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaError {
    /// 0x2400 Already_exists: `keyspace` and `table` (empty for a keyspace).
    AlreadyExists {
        /// The keyspace.
        keyspace: String,
        /// The table, or empty when the keyspace exists.
        table: String,
        /// The message.
        message: String,
    },
    /// 0x2200 Invalid.
    Invalid(String),
    /// 0x2300 Config_error.
    Config(String),
    /// 0x2000 Syntax_error.
    Syntax(String),
    /// 0x2100 Unauthorized (modifying system keyspaces).
    Unauthorized(String),
}

impl SchemaError {
    /// The protocol error code this maps to.
    pub fn code(&self) -> i32 {
        match self {
            SchemaError::AlreadyExists { .. } => 0x2400,
            SchemaError::Invalid(_) => 0x2200,
            SchemaError::Config(_) => 0x2300,
            SchemaError::Syntax(_) => 0x2000,
            SchemaError::Unauthorized(_) => 0x2100,
        }
    }

    /// The error message.
    pub fn message(&self) -> &str {
        match self {
            SchemaError::AlreadyExists { message, .. } => message,
            SchemaError::Invalid(m)
            | SchemaError::Config(m)
            | SchemaError::Syntax(m)
            | SchemaError::Unauthorized(m) => m,
        }
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for SchemaError {}
