//! The system keyspaces, self-described as Cassandra 4.0 describes them, and
//! the rows of the tables the node generates (`system.local`,
//! `system.peers`, `system.peers_v2`, `system_schema.*`).
//!
//! Column types are exactly what drivers deserialize (see
//! `notes/clients.md`): e.g. `system.local.tokens set<text>`,
//! `system_schema.keyspaces.replication frozen<map<text, text>>`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use proto::value::{ColumnType, CqlValue};

use super::digest::system_table_id;
use super::types::{canonical, cql_type_string};
use super::{
    ClusteringOrder, ColumnKind, KeyspaceMetadata, ReplicationParams, Schema, TableMetadata,
    TableOptions, Uuid,
};
use crate::locator::{LOCAL_STRATEGY, SIMPLE_STRATEGY};

/// What `system.local` says about this node.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalNodeInfo {
    /// `cluster_name` from the configuration.
    pub cluster_name: String,
    /// The node's datacenter (snitch).
    pub data_center: String,
    /// The node's rack (snitch).
    pub rack: String,
    /// The node's host id.
    pub host_id: Uuid,
    /// `broadcast_address`.
    pub broadcast_address: IpAddr,
    /// `listen_address`.
    pub listen_address: IpAddr,
    /// `rpc_address` (the native transport address clients use).
    pub rpc_address: IpAddr,
    /// The native transport port.
    pub rpc_port: i32,
    /// The internode (storage) port.
    pub listen_port: i32,
    /// The node's tokens.
    pub tokens: Vec<i64>,
    /// Reported server version, e.g. `4.0.11`.
    pub release_version: String,
    /// Reported CQL version, e.g. `3.4.5`.
    pub cql_version: String,
    /// Highest native protocol version, e.g. `5`.
    pub native_protocol_version: String,
    /// Full partitioner class name.
    pub partitioner: String,
    /// Gossip generation (seconds at start-up).
    pub gossip_generation: i32,
    /// Full snitch class name (for `DESCRIBE CLUSTER`).
    pub snitch: String,
}

impl LocalNodeInfo {
    /// Tessera's defaults for the version strings and partitioner, as
    /// decided in `notes/clients.md`: release `4.0.11` (cqlsh then sends
    /// DESCRIBE to the server), CQL `3.4.5`, protocol `5`, Murmur3.
    pub const RELEASE_VERSION: &'static str = "4.0.11";
    /// See [`LocalNodeInfo::RELEASE_VERSION`].
    pub const CQL_VERSION: &'static str = "3.4.5";
    /// See [`LocalNodeInfo::RELEASE_VERSION`].
    pub const NATIVE_PROTOCOL_VERSION: &'static str = "5";
    /// See [`LocalNodeInfo::RELEASE_VERSION`].
    pub const PARTITIONER: &'static str = "org.apache.cassandra.dht.Murmur3Partitioner";
}

/// What `system.peers`/`peers_v2` say about another node.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// The peer's broadcast address.
    pub peer: IpAddr,
    /// The peer's storage port.
    pub peer_port: i32,
    /// The peer's datacenter.
    pub data_center: String,
    /// The peer's rack.
    pub rack: String,
    /// The peer's host id.
    pub host_id: Uuid,
    /// The address clients connect to (`rpc_address`, `native_address`).
    pub rpc_address: IpAddr,
    /// The peer's native transport port.
    pub native_port: i32,
    /// `preferred_ip` (internode), if any.
    pub preferred_ip: Option<IpAddr>,
    /// `preferred_port`, if any.
    pub preferred_port: Option<i32>,
    /// The peer's release version.
    pub release_version: String,
    /// The peer's schema version.
    pub schema_version: Uuid,
    /// The peer's tokens.
    pub tokens: Vec<i64>,
}

/// Declaration of one system table.
struct Def {
    name: &'static str,
    comment: &'static str,
    partition_key: &'static [(&'static str, &'static str)],
    clustering: &'static [(&'static str, &'static str)],
    regular: &'static [(&'static str, &'static str)],
    generated: bool,
    gc_grace_seconds: i32,
}

const TABLE_OPTION_COLUMNS: &[(&str, &str)] = &[
    ("additional_write_policy", "text"),
    ("bloom_filter_fp_chance", "double"),
    ("caching", "frozen<map<text, text>>"),
    ("cdc", "boolean"),
    ("comment", "text"),
    ("compaction", "frozen<map<text, text>>"),
    ("compression", "frozen<map<text, text>>"),
    ("crc_check_chance", "double"),
    ("dclocal_read_repair_chance", "double"),
    ("default_time_to_live", "int"),
    ("extensions", "frozen<map<text, blob>>"),
    ("gc_grace_seconds", "int"),
    ("id", "uuid"),
    ("max_index_interval", "int"),
    ("memtable_flush_period_in_ms", "int"),
    ("min_index_interval", "int"),
    ("read_repair", "text"),
    ("read_repair_chance", "double"),
    ("speculative_retry", "text"),
];

const SYSTEM_TABLES: &[Def] = &[
    Def {
        name: "local",
        comment: "information about the local node",
        partition_key: &[("key", "text")],
        clustering: &[],
        regular: &[
            ("bootstrapped", "text"),
            ("broadcast_address", "inet"),
            ("broadcast_port", "int"),
            ("cluster_name", "text"),
            ("cql_version", "text"),
            ("data_center", "text"),
            ("gossip_generation", "int"),
            ("host_id", "uuid"),
            ("listen_address", "inet"),
            ("listen_port", "int"),
            ("native_protocol_version", "text"),
            ("partitioner", "text"),
            ("rack", "text"),
            ("release_version", "text"),
            ("rpc_address", "inet"),
            ("rpc_port", "int"),
            ("schema_version", "uuid"),
            ("tokens", "set<text>"),
            ("truncated_at", "map<uuid, blob>"),
        ],
        generated: true,
        gc_grace_seconds: 0,
    },
    Def {
        name: "peers",
        comment: "information about known peers in the cluster",
        partition_key: &[("peer", "inet")],
        clustering: &[],
        regular: &[
            ("data_center", "text"),
            ("host_id", "uuid"),
            ("preferred_ip", "inet"),
            ("rack", "text"),
            ("release_version", "text"),
            ("rpc_address", "inet"),
            ("schema_version", "uuid"),
            ("tokens", "set<text>"),
        ],
        generated: true,
        gc_grace_seconds: 0,
    },
    Def {
        name: "peers_v2",
        comment: "information about known peers in the cluster",
        partition_key: &[("peer", "inet")],
        clustering: &[("peer_port", "int")],
        regular: &[
            ("data_center", "text"),
            ("host_id", "uuid"),
            ("native_address", "inet"),
            ("native_port", "int"),
            ("preferred_ip", "inet"),
            ("preferred_port", "int"),
            ("rack", "text"),
            ("release_version", "text"),
            ("schema_version", "uuid"),
            ("tokens", "set<text>"),
        ],
        generated: true,
        gc_grace_seconds: 0,
    },
    Def {
        name: "size_estimates",
        comment: "per-table primary range size estimates, table is deprecated in favor of table_estimates",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[
            ("table_name", "text"),
            ("range_start", "text"),
            ("range_end", "text"),
        ],
        regular: &[
            ("mean_partition_size", "bigint"),
            ("partitions_count", "bigint"),
        ],
        generated: true,
        gc_grace_seconds: 0,
    },
    // Paxos state of lightweight transactions, per partition and table, on
    // the replica's shard owning the partition (service/paxos.rs).
    Def {
        name: "paxos",
        comment: "in-progress paxos proposals",
        partition_key: &[("row_key", "blob")],
        clustering: &[("cf_id", "uuid")],
        regular: &[
            ("in_progress_ballot", "timeuuid"),
            ("most_recent_commit", "blob"),
            ("most_recent_commit_at", "timeuuid"),
            ("most_recent_commit_version", "int"),
            ("proposal", "blob"),
            ("proposal_ballot", "timeuuid"),
            ("proposal_version", "int"),
        ],
        generated: false,
        gc_grace_seconds: 0,
    },
];

const SCHEMA_GC: i32 = 604_800;

const SYSTEM_SCHEMA_TABLES: &[Def] = &[
    Def {
        name: "keyspaces",
        comment: "keyspace definitions",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[],
        regular: &[
            ("durable_writes", "boolean"),
            ("replication", "frozen<map<text, text>>"),
        ],
        generated: true,
        gc_grace_seconds: SCHEMA_GC,
    },
    Def {
        name: "tables",
        comment: "table definitions",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[("table_name", "text")],
        regular: &[("flags", "frozen<set<text>>")],
        generated: true,
        gc_grace_seconds: SCHEMA_GC,
    },
    Def {
        name: "columns",
        comment: "column definitions",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[("table_name", "text"), ("column_name", "text")],
        regular: &[
            ("clustering_order", "text"),
            ("column_name_bytes", "blob"),
            ("kind", "text"),
            ("position", "int"),
            ("type", "text"),
        ],
        generated: true,
        gc_grace_seconds: SCHEMA_GC,
    },
    Def {
        name: "dropped_columns",
        comment: "dropped column registry",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[("table_name", "text"), ("column_name", "text")],
        regular: &[
            ("dropped_time", "timestamp"),
            ("kind", "text"),
            ("type", "text"),
        ],
        generated: true,
        gc_grace_seconds: SCHEMA_GC,
    },
    Def {
        name: "triggers",
        comment: "trigger definitions",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[("table_name", "text"), ("trigger_name", "text")],
        regular: &[("options", "frozen<map<text, text>>")],
        generated: true,
        gc_grace_seconds: SCHEMA_GC,
    },
    Def {
        name: "views",
        comment: "view definitions",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[("view_name", "text")],
        regular: &[
            ("base_table_id", "uuid"),
            ("base_table_name", "text"),
            ("include_all_columns", "boolean"),
            ("where_clause", "text"),
        ],
        generated: true,
        gc_grace_seconds: SCHEMA_GC,
    },
    Def {
        name: "types",
        comment: "user defined type definitions",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[("type_name", "text")],
        regular: &[
            ("field_names", "frozen<list<text>>"),
            ("field_types", "frozen<list<text>>"),
        ],
        generated: true,
        gc_grace_seconds: SCHEMA_GC,
    },
    Def {
        name: "functions",
        comment: "user defined function definitions",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[
            ("function_name", "text"),
            ("argument_types", "frozen<list<text>>"),
        ],
        regular: &[
            ("argument_names", "frozen<list<text>>"),
            ("body", "text"),
            ("called_on_null_input", "boolean"),
            ("language", "text"),
            ("return_type", "text"),
        ],
        generated: true,
        gc_grace_seconds: SCHEMA_GC,
    },
    Def {
        name: "aggregates",
        comment: "user defined aggregate definitions",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[
            ("aggregate_name", "text"),
            ("argument_types", "frozen<list<text>>"),
        ],
        regular: &[
            ("final_func", "text"),
            ("initcond", "text"),
            ("return_type", "text"),
            ("state_func", "text"),
            ("state_type", "text"),
        ],
        generated: true,
        gc_grace_seconds: SCHEMA_GC,
    },
    Def {
        name: "indexes",
        comment: "secondary index definitions",
        partition_key: &[("keyspace_name", "text")],
        clustering: &[("table_name", "text"), ("index_name", "text")],
        regular: &[("kind", "text"), ("options", "frozen<map<text, text>>")],
        generated: true,
        gc_grace_seconds: SCHEMA_GC,
    },
];

const AUTH_GC: i32 = 7_776_000;

const SYSTEM_AUTH_TABLES: &[Def] = &[
    Def {
        name: "roles",
        comment: "role definitions",
        partition_key: &[("role", "text")],
        clustering: &[],
        regular: &[
            ("can_login", "boolean"),
            ("is_superuser", "boolean"),
            ("member_of", "set<text>"),
            ("salted_hash", "text"),
        ],
        generated: false,
        gc_grace_seconds: AUTH_GC,
    },
    Def {
        name: "role_members",
        comment: "role memberships lookup table",
        partition_key: &[("role", "text")],
        clustering: &[("member", "text")],
        regular: &[],
        generated: false,
        gc_grace_seconds: AUTH_GC,
    },
    Def {
        name: "role_permissions",
        comment: "permissions granted to db roles",
        partition_key: &[("role", "text")],
        clustering: &[("resource", "text")],
        regular: &[("permissions", "set<text>")],
        generated: false,
        gc_grace_seconds: AUTH_GC,
    },
    Def {
        name: "resource_role_permissons_index",
        comment: "index of db roles with permissions granted on a resource",
        partition_key: &[("resource", "text")],
        clustering: &[("role", "text")],
        regular: &[],
        generated: false,
        gc_grace_seconds: AUTH_GC,
    },
    Def {
        name: "network_permissions",
        comment: "user network permissions",
        partition_key: &[("role", "text")],
        clustering: &[],
        regular: &[("dcs", "frozen<set<text>>")],
        generated: false,
        gc_grace_seconds: AUTH_GC,
    },
];

const DISTRIBUTED_GC: i32 = 864_000;

const SYSTEM_DISTRIBUTED_TABLES: &[Def] = &[
    Def {
        name: "parent_repair_history",
        comment: "Repair history",
        partition_key: &[("parent_id", "timeuuid")],
        clustering: &[],
        regular: &[
            ("columnfamily_names", "set<text>"),
            ("exception_message", "text"),
            ("exception_stacktrace", "text"),
            ("finished_at", "timestamp"),
            ("keyspace_name", "text"),
            ("options", "map<text, text>"),
            ("requested_ranges", "set<text>"),
            ("started_at", "timestamp"),
            ("successful_ranges", "set<text>"),
        ],
        generated: false,
        gc_grace_seconds: DISTRIBUTED_GC,
    },
    Def {
        name: "repair_history",
        comment: "Repair history",
        partition_key: &[("keyspace_name", "text"), ("columnfamily_name", "text")],
        clustering: &[("id", "timeuuid")],
        regular: &[
            ("coordinator", "inet"),
            ("coordinator_port", "int"),
            ("exception_message", "text"),
            ("exception_stacktrace", "text"),
            ("finished_at", "timestamp"),
            ("parent_id", "timeuuid"),
            ("participants", "set<inet>"),
            ("participants_v2", "set<text>"),
            ("range_begin", "text"),
            ("range_end", "text"),
            ("started_at", "timestamp"),
            ("status", "text"),
        ],
        generated: false,
        gc_grace_seconds: DISTRIBUTED_GC,
    },
    Def {
        name: "view_build_status",
        comment: "Materialized View build status",
        partition_key: &[("keyspace_name", "text"), ("view_name", "text")],
        clustering: &[("host_id", "uuid")],
        regular: &[("status", "text")],
        generated: false,
        gc_grace_seconds: DISTRIBUTED_GC,
    },
];

const SYSTEM_TRACES_TABLES: &[Def] = &[
    Def {
        name: "sessions",
        comment: "tracing sessions",
        partition_key: &[("session_id", "uuid")],
        clustering: &[],
        regular: &[
            ("client", "inet"),
            ("command", "text"),
            ("coordinator", "inet"),
            ("coordinator_port", "int"),
            ("duration", "int"),
            ("parameters", "map<text, text>"),
            ("request", "text"),
            ("started_at", "timestamp"),
        ],
        generated: false,
        gc_grace_seconds: 0,
    },
    Def {
        name: "events",
        comment: "tracing events",
        partition_key: &[("session_id", "uuid")],
        clustering: &[("event_id", "timeuuid")],
        regular: &[
            ("activity", "text"),
            ("source", "inet"),
            ("source_elapsed", "int"),
            ("source_port", "int"),
            ("thread", "text"),
        ],
        generated: false,
        gc_grace_seconds: 0,
    },
];

fn parse_type(s: &str) -> ColumnType {
    canonical(&ColumnType::parse(s).unwrap_or_else(|e| panic!("system type {s}: {e}")))
}

fn build_table(ks: &str, def: &Def) -> TableMetadata {
    let mut regular: Vec<(&str, &str)> = def.regular.to_vec();
    if ks == "system_schema" && (def.name == "tables" || def.name == "views") {
        regular.extend_from_slice(TABLE_OPTION_COLUMNS);
    }
    let mut options = TableOptions {
        comment: def.comment.to_string(),
        gc_grace_seconds: def.gc_grace_seconds,
        ..TableOptions::default()
    };
    if ks == "system_schema" {
        options.memtable_flush_period_in_ms = 3_600_000;
    }
    let mut t = TableMetadata::new(
        ks,
        def.name,
        system_table_id(ks, def.name),
        def.partition_key
            .iter()
            .map(|(n, t)| (n.to_string(), parse_type(t)))
            .collect(),
        def.clustering
            .iter()
            .map(|(n, t)| (n.to_string(), parse_type(t), ClusteringOrder::Asc))
            .collect(),
        regular
            .iter()
            .map(|(n, t)| (n.to_string(), parse_type(t), false))
            .collect(),
        options,
    );
    t.is_virtual = def.generated;
    t
}

fn system_keyspace(name: &str, class: &str, rf: Option<&str>, defs: &[Def]) -> KeyspaceMetadata {
    let mut options = BTreeMap::new();
    if let Some(rf) = rf {
        options.insert("replication_factor".to_string(), rf.to_string());
    }
    KeyspaceMetadata {
        name: name.to_string(),
        replication: ReplicationParams {
            class: class.to_string(),
            options,
        },
        durable_writes: true,
        tables: defs
            .iter()
            .map(|d| (d.name.to_string(), Arc::new(build_table(name, d))))
            .collect(),
        types: BTreeMap::new(),
        is_system: true,
    }
}

/// The system keyspaces as a fresh node has them: `system` and
/// `system_schema` (LocalStrategy), `system_auth` (SimpleStrategy RF 1),
/// `system_distributed` (RF 3), `system_traces` (RF 2).
pub fn system_keyspaces() -> Vec<KeyspaceMetadata> {
    vec![
        system_keyspace("system", LOCAL_STRATEGY, None, SYSTEM_TABLES),
        system_keyspace("system_schema", LOCAL_STRATEGY, None, SYSTEM_SCHEMA_TABLES),
        system_keyspace(
            "system_auth",
            SIMPLE_STRATEGY,
            Some("1"),
            SYSTEM_AUTH_TABLES,
        ),
        system_keyspace(
            "system_distributed",
            SIMPLE_STRATEGY,
            Some("3"),
            SYSTEM_DISTRIBUTED_TABLES,
        ),
        system_keyspace(
            "system_traces",
            SIMPLE_STRATEGY,
            Some("2"),
            SYSTEM_TRACES_TABLES,
        ),
    ]
}

impl Schema {
    /// A schema holding only the system keyspaces. `local_dc` is this
    /// node's datacenter; Cassandra 4.0's system keyspaces do not name one
    /// (they use SimpleStrategy), so it only documents where the schema
    /// lives.
    pub fn new_with_system_keyspaces(local_dc: &str) -> Schema {
        let _ = local_dc;
        let mut s = Schema {
            keyspaces: system_keyspaces()
                .into_iter()
                .map(|k| (k.name.clone(), Arc::new(k)))
                .collect(),
            version: [0; 16],
            history: BTreeMap::new(),
        };
        s.recompute_version();
        s
    }
}

fn text(s: &str) -> Option<CqlValue> {
    Some(CqlValue::Text(s.to_string()))
}

fn text_map(m: &BTreeMap<String, String>) -> Option<CqlValue> {
    Some(CqlValue::Map(
        m.iter()
            .map(|(k, v)| (CqlValue::Text(k.clone()), CqlValue::Text(v.clone())))
            .collect(),
    ))
}

fn text_list<'a>(items: impl Iterator<Item = &'a str>) -> Option<CqlValue> {
    Some(CqlValue::List(
        items.map(|s| CqlValue::Text(s.to_string())).collect(),
    ))
}

fn token_set(tokens: &[i64]) -> Option<CqlValue> {
    // A set<text> is ordered by its (UTF-8) serialised elements.
    let mut t: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
    t.sort();
    t.dedup();
    if t.is_empty() {
        return None;
    }
    Some(CqlValue::Set(t.into_iter().map(CqlValue::Text).collect()))
}

/// Aligns named values with the table's columns (absent names are null).
fn row(table: &TableMetadata, values: Vec<(&str, Option<CqlValue>)>) -> Vec<Option<CqlValue>> {
    let mut out = vec![None; table.columns.len()];
    for (name, v) in values {
        let i = table
            .column_index(name)
            .unwrap_or_else(|| panic!("{}.{} has no column {name}", table.keyspace, table.name));
        out[i] = v;
    }
    out
}

/// The rows of a node-generated table, aligned with its
/// [`TableMetadata::columns`], in primary key order; `None` if
/// `keyspace.table` is not such a table.
pub fn virtual_table_rows(
    schema: &Schema,
    local: &LocalNodeInfo,
    peers: &[PeerInfo],
    keyspace: &str,
    table: &str,
) -> Option<Vec<Vec<Option<CqlValue>>>> {
    let meta = schema.table(keyspace, table)?;
    if !meta.is_virtual {
        return None;
    }
    let t = &**meta;
    let rows = match (keyspace, table) {
        ("system", "local") => vec![row(
            t,
            vec![
                ("key", text("local")),
                ("bootstrapped", text("COMPLETED")),
                (
                    "broadcast_address",
                    Some(CqlValue::Inet(local.broadcast_address)),
                ),
                ("broadcast_port", Some(CqlValue::Int(local.listen_port))),
                ("cluster_name", text(&local.cluster_name)),
                ("cql_version", text(&local.cql_version)),
                ("data_center", text(&local.data_center)),
                (
                    "gossip_generation",
                    Some(CqlValue::Int(local.gossip_generation)),
                ),
                ("host_id", Some(CqlValue::Uuid(local.host_id))),
                ("listen_address", Some(CqlValue::Inet(local.listen_address))),
                ("listen_port", Some(CqlValue::Int(local.listen_port))),
                (
                    "native_protocol_version",
                    text(&local.native_protocol_version),
                ),
                ("partitioner", text(&local.partitioner)),
                ("rack", text(&local.rack)),
                ("release_version", text(&local.release_version)),
                ("rpc_address", Some(CqlValue::Inet(local.rpc_address))),
                ("rpc_port", Some(CqlValue::Int(local.rpc_port))),
                ("schema_version", Some(CqlValue::Uuid(schema.version))),
                ("tokens", token_set(&local.tokens)),
                ("truncated_at", None),
            ],
        )],
        ("system", "peers") => {
            let mut ps: Vec<&PeerInfo> = peers.iter().collect();
            ps.sort_by_key(|p| p.peer);
            ps.dedup_by_key(|p| p.peer);
            ps.into_iter()
                .map(|p| {
                    row(
                        t,
                        vec![
                            ("peer", Some(CqlValue::Inet(p.peer))),
                            ("data_center", text(&p.data_center)),
                            ("host_id", Some(CqlValue::Uuid(p.host_id))),
                            ("preferred_ip", p.preferred_ip.map(CqlValue::Inet)),
                            ("rack", text(&p.rack)),
                            ("release_version", text(&p.release_version)),
                            ("rpc_address", Some(CqlValue::Inet(p.rpc_address))),
                            ("schema_version", Some(CqlValue::Uuid(p.schema_version))),
                            ("tokens", token_set(&p.tokens)),
                        ],
                    )
                })
                .collect()
        }
        ("system", "peers_v2") => {
            let mut ps: Vec<&PeerInfo> = peers.iter().collect();
            ps.sort_by_key(|p| (p.peer, p.peer_port));
            ps.into_iter()
                .map(|p| {
                    row(
                        t,
                        vec![
                            ("peer", Some(CqlValue::Inet(p.peer))),
                            ("peer_port", Some(CqlValue::Int(p.peer_port))),
                            ("data_center", text(&p.data_center)),
                            ("host_id", Some(CqlValue::Uuid(p.host_id))),
                            ("native_address", Some(CqlValue::Inet(p.rpc_address))),
                            ("native_port", Some(CqlValue::Int(p.native_port))),
                            ("preferred_ip", p.preferred_ip.map(CqlValue::Inet)),
                            ("preferred_port", p.preferred_port.map(CqlValue::Int)),
                            ("rack", text(&p.rack)),
                            ("release_version", text(&p.release_version)),
                            ("schema_version", Some(CqlValue::Uuid(p.schema_version))),
                            ("tokens", token_set(&p.tokens)),
                        ],
                    )
                })
                .collect()
        }
        ("system_schema", "keyspaces") => schema
            .keyspaces
            .values()
            .map(|k| {
                row(
                    t,
                    vec![
                        ("keyspace_name", text(&k.name)),
                        ("durable_writes", Some(CqlValue::Boolean(k.durable_writes))),
                        ("replication", text_map(&k.replication.as_map())),
                    ],
                )
            })
            .collect(),
        ("system_schema", "tables") => schema
            .keyspaces
            .values()
            .flat_map(|k| k.tables.values())
            .map(|tb| table_row(t, tb))
            .collect(),
        ("system_schema", "columns") => schema
            .keyspaces
            .values()
            .flat_map(|k| k.tables.values())
            .flat_map(|tb| {
                let mut cols: Vec<_> = tb.columns.iter().collect();
                cols.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
                cols.into_iter().map(move |c| {
                    row(
                        t,
                        vec![
                            ("keyspace_name", text(&tb.keyspace)),
                            ("table_name", text(&tb.name)),
                            ("column_name", text(&c.name)),
                            ("clustering_order", text(c.order.as_str())),
                            (
                                "column_name_bytes",
                                Some(CqlValue::Blob(c.name.as_bytes().to_vec())),
                            ),
                            ("kind", text(c.kind.as_str())),
                            ("position", Some(CqlValue::Int(c.kind.position()))),
                            ("type", text(&cql_type_string(&c.ty))),
                        ],
                    )
                })
            })
            .collect(),
        ("system_schema", "dropped_columns") => schema
            .keyspaces
            .values()
            .flat_map(|k| k.tables.values())
            .flat_map(|tb| {
                tb.dropped_columns.iter().map(move |(name, (ty, at))| {
                    let kind = if tb.dropped_static_columns.contains(name) {
                        ColumnKind::Static
                    } else {
                        ColumnKind::Regular
                    };
                    row(
                        t,
                        vec![
                            ("keyspace_name", text(&tb.keyspace)),
                            ("table_name", text(&tb.name)),
                            ("column_name", text(name)),
                            (
                                "dropped_time",
                                Some(CqlValue::Timestamp(at.div_euclid(1000))),
                            ),
                            ("kind", text(kind.as_str())),
                            ("type", text(&cql_type_string(ty))),
                        ],
                    )
                })
            })
            .collect(),
        ("system_schema", "types") => schema
            .keyspaces
            .values()
            .flat_map(|k| k.types.values())
            .map(|ut| {
                let field_types: Vec<String> = ut.field_types.iter().map(cql_type_string).collect();
                row(
                    t,
                    vec![
                        ("keyspace_name", text(&ut.keyspace)),
                        ("type_name", text(&ut.name)),
                        (
                            "field_names",
                            text_list(ut.field_names.iter().map(|s| s.as_str())),
                        ),
                        (
                            "field_types",
                            text_list(field_types.iter().map(|s| s.as_str())),
                        ),
                    ],
                )
            })
            .collect(),
        ("system_schema", "indexes") => schema
            .keyspaces
            .values()
            .flat_map(|k| k.tables.values())
            .flat_map(|tb| {
                tb.indexes.iter().map(move |i| {
                    row(
                        t,
                        vec![
                            ("keyspace_name", text(&tb.keyspace)),
                            ("table_name", text(&tb.name)),
                            ("index_name", text(&i.name)),
                            ("kind", text(&i.kind)),
                            ("options", text_map(&i.options)),
                        ],
                    )
                })
            })
            .collect(),
        // No triggers, views, functions or aggregates exist; no size
        // estimates are computed.
        _ => Vec::new(),
    };
    Some(rows)
}

fn table_row(t: &TableMetadata, tb: &TableMetadata) -> Vec<Option<CqlValue>> {
    let o = &tb.options;
    let mut flags = vec![CqlValue::Text("compound".to_string())];
    if tb.is_counter {
        flags.push(CqlValue::Text("counter".to_string()));
    }
    row(
        t,
        vec![
            ("keyspace_name", text(&tb.keyspace)),
            ("table_name", text(&tb.name)),
            ("additional_write_policy", text(&o.additional_write_policy)),
            (
                "bloom_filter_fp_chance",
                Some(CqlValue::Double(o.bloom_filter_fp_chance)),
            ),
            ("caching", text_map(&o.caching)),
            ("cdc", Some(CqlValue::Boolean(o.cdc))),
            ("comment", text(&o.comment)),
            ("compaction", text_map(&o.compaction)),
            ("compression", text_map(&o.compression)),
            (
                "crc_check_chance",
                Some(CqlValue::Double(o.crc_check_chance)),
            ),
            ("dclocal_read_repair_chance", Some(CqlValue::Double(0.0))),
            (
                "default_time_to_live",
                Some(CqlValue::Int(o.default_time_to_live)),
            ),
            (
                "extensions",
                Some(CqlValue::Map(
                    o.extensions
                        .iter()
                        .map(|(k, v)| (CqlValue::Text(k.clone()), CqlValue::Blob(v.clone())))
                        .collect(),
                )),
            ),
            ("flags", Some(CqlValue::Set(flags))),
            ("gc_grace_seconds", Some(CqlValue::Int(o.gc_grace_seconds))),
            ("id", Some(CqlValue::Uuid(tb.id))),
            (
                "max_index_interval",
                Some(CqlValue::Int(o.max_index_interval)),
            ),
            (
                "memtable_flush_period_in_ms",
                Some(CqlValue::Int(o.memtable_flush_period_in_ms)),
            ),
            (
                "min_index_interval",
                Some(CqlValue::Int(o.min_index_interval)),
            ),
            ("read_repair", text(&o.read_repair)),
            ("read_repair_chance", Some(CqlValue::Double(0.0))),
            ("speculative_retry", text(&o.speculative_retry)),
        ],
    )
}
