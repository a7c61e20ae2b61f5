//! Server-side `DESCRIBE` (Cassandra 4.0's `DescribeStatement`), the form
//! cqlsh 6.x sends when `release_version >= 4`.
//!
//! Result shapes: listings (`DESCRIBE KEYSPACES/TABLES/TYPES/FUNCTIONS/
//! AGGREGATES`) have columns `keyspace_name, type, name`; element
//! descriptions add `create_statement`; `DESCRIBE CLUSTER` has `cluster,
//! partitioner, snitch` plus `range_ownership map<text, frozen<list<text>>>`
//! when a non-system keyspace is in use. All text columns.
//!
//! CQL text reproduces Cassandra 4.0's `toCqlString` (4-space indent,
//! options in alphabetical order, maps with sorted keys).

use std::collections::BTreeMap;

use proto::value::{ColumnType, CqlValue};

use crate::cql3::ast::Describe;
use crate::locator::ReplicationStrategy;

use super::system::{LocalNodeInfo, PeerInfo};
use super::types::{cql_type_string, is_multi_cell, java_double, maybe_quote, single_quote};
use super::{
    digest, is_local_system_keyspace, is_system_keyspace, ClusteringOrder, ColumnKind,
    IndexMetadata, KeyspaceMetadata, Schema, SchemaError, TableMetadata, UserType,
};

/// One row of a listing or element description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeRow {
    /// `keyspace_name` (quoted if needed).
    pub keyspace_name: String,
    /// `type`: `keyspace`, `table`, `type`, `index`, `function`,
    /// `aggregate`, `materialized_view`.
    pub element_type: String,
    /// `name` (quoted if needed).
    pub name: String,
    /// `create_statement`; `None` in listings.
    pub create_statement: Option<String>,
}

/// The result of a `DESCRIBE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescribeOutput {
    /// Columns `keyspace_name, type, name`.
    Listing(Vec<DescribeRow>),
    /// Columns `keyspace_name, type, name, create_statement`.
    Elements(Vec<DescribeRow>),
    /// `DESCRIBE CLUSTER`.
    Cluster {
        /// `cluster`
        cluster: String,
        /// `partitioner`, without `org.apache.cassandra.dht.`.
        partitioner: String,
        /// `snitch`, without `org.apache.cassandra.locator.`.
        snitch: String,
        /// `range_ownership` (range end token → endpoints), present when a
        /// non-system keyspace is in use.
        range_ownership: Option<Vec<(String, Vec<String>)>>,
    },
}

impl DescribeOutput {
    /// Result column names and types, in order.
    pub fn columns(&self) -> Vec<(&'static str, ColumnType)> {
        let text = |n| (n, ColumnType::Text);
        match self {
            DescribeOutput::Listing(_) => vec![text("keyspace_name"), text("type"), text("name")],
            DescribeOutput::Elements(_) => vec![
                text("keyspace_name"),
                text("type"),
                text("name"),
                text("create_statement"),
            ],
            DescribeOutput::Cluster {
                range_ownership, ..
            } => {
                let mut c = vec![text("cluster"), text("partitioner"), text("snitch")];
                if range_ownership.is_some() {
                    c.push((
                        "range_ownership",
                        ColumnType::Map(
                            Box::new(ColumnType::Text),
                            Box::new(ColumnType::Frozen(Box::new(ColumnType::List(Box::new(
                                ColumnType::Text,
                            ))))),
                        ),
                    ));
                }
                c
            }
        }
    }

    /// Result rows, aligned with [`DescribeOutput::columns`].
    pub fn rows(&self) -> Vec<Vec<Option<CqlValue>>> {
        let t = |s: &str| Some(CqlValue::Text(s.to_string()));
        match self {
            DescribeOutput::Listing(rows) => rows
                .iter()
                .map(|r| vec![t(&r.keyspace_name), t(&r.element_type), t(&r.name)])
                .collect(),
            DescribeOutput::Elements(rows) => rows
                .iter()
                .map(|r| {
                    vec![
                        t(&r.keyspace_name),
                        t(&r.element_type),
                        t(&r.name),
                        t(r.create_statement.as_deref().unwrap_or("")),
                    ]
                })
                .collect(),
            DescribeOutput::Cluster {
                cluster,
                partitioner,
                snitch,
                range_ownership,
            } => {
                let mut row = vec![t(cluster), t(partitioner), t(snitch)];
                if let Some(r) = range_ownership {
                    row.push(Some(CqlValue::Map(
                        r.iter()
                            .map(|(k, v)| {
                                (
                                    CqlValue::Text(k.clone()),
                                    CqlValue::List(
                                        v.iter().map(|e| CqlValue::Text(e.clone())).collect(),
                                    ),
                                )
                            })
                            .collect(),
                    )));
                }
                vec![row]
            }
        }
    }
}

fn ire(msg: String) -> SchemaError {
    SchemaError::Invalid(msg)
}

fn keyspace<'a>(schema: &'a Schema, ks: &str) -> Result<&'a KeyspaceMetadata, SchemaError> {
    schema
        .keyspace(ks)
        .map(|k| &**k)
        .ok_or_else(|| ire(format!("'{ks}' not found in keyspaces")))
}

fn element_keyspace(named: Option<&String>, current: Option<&str>) -> Result<String, SchemaError> {
    match (named, current) {
        (Some(k), _) => Ok(k.clone()),
        (None, Some(k)) => Ok(k.to_string()),
        (None, None) => Err(ire(
            "No keyspace specified and no current keyspace".to_string()
        )),
    }
}

fn listing_row(ks: &str, ty: &str, name: &str) -> DescribeRow {
    DescribeRow {
        keyspace_name: maybe_quote(ks),
        element_type: ty.to_string(),
        name: maybe_quote(name),
        create_statement: None,
    }
}

fn element_row(ks: &str, ty: &str, name: &str, cql: String) -> DescribeRow {
    DescribeRow {
        create_statement: Some(cql),
        ..listing_row(ks, ty, name)
    }
}

/// Answers a `DESCRIBE` statement. `local` and `peers` feed `DESCRIBE
/// CLUSTER` (cluster name, partitioner, snitch, token ownership).
pub fn describe(
    schema: &Schema,
    what: &Describe,
    current_keyspace: Option<&str>,
    local: &LocalNodeInfo,
    peers: &[PeerInfo],
) -> Result<DescribeOutput, SchemaError> {
    match what {
        Describe::Cluster => Ok(describe_cluster(schema, current_keyspace, local, peers)),
        Describe::Keyspaces => Ok(DescribeOutput::Listing(
            schema
                .keyspaces
                .values()
                .map(|k| listing_row(&k.name, "keyspace", &k.name))
                .collect(),
        )),
        Describe::Tables | Describe::Types | Describe::Functions | Describe::Aggregates => {
            let kss: Vec<&KeyspaceMetadata> = match current_keyspace {
                Some(k) => vec![keyspace(schema, k)?],
                None => schema.keyspaces.values().map(|k| &**k).collect(),
            };
            let mut rows = Vec::new();
            for k in kss {
                match what {
                    Describe::Tables => {
                        rows.extend(k.tables.keys().map(|t| listing_row(&k.name, "table", t)))
                    }
                    Describe::Types => {
                        rows.extend(k.types.keys().map(|t| listing_row(&k.name, "type", t)))
                    }
                    // No user-defined functions or aggregates exist.
                    _ => {}
                }
            }
            Ok(DescribeOutput::Listing(rows))
        }
        Describe::Keyspace { name, only } => {
            let ks = element_keyspace(name.as_ref(), current_keyspace)?;
            let k = keyspace(schema, &ks)?;
            Ok(DescribeOutput::Elements(keyspace_elements(k, *only)))
        }
        Describe::Schema { full } => {
            let mut rows = Vec::new();
            for k in schema.keyspaces.values() {
                if *full || !is_system_keyspace(&k.name) {
                    rows.extend(keyspace_elements(k, false));
                }
            }
            Ok(DescribeOutput::Elements(rows))
        }
        Describe::Table(q) => {
            let ks = element_keyspace(q.keyspace.as_ref(), current_keyspace)?;
            let k = keyspace(schema, &ks)?;
            let t = k.tables.get(&q.name).ok_or_else(|| {
                ire(format!(
                    "Table '{}' not found in keyspace '{}'",
                    q.name, k.name
                ))
            })?;
            Ok(DescribeOutput::Elements(table_elements(t)))
        }
        Describe::Type(q) => {
            let ks = element_keyspace(q.keyspace.as_ref(), current_keyspace)?;
            let k = keyspace(schema, &ks)?;
            let ut = k.types.get(&q.name).ok_or_else(|| {
                ire(format!(
                    "User defined type '{}' not found in '{}'",
                    q.name, k.name
                ))
            })?;
            Ok(DescribeOutput::Elements(vec![element_row(
                &k.name,
                "type",
                &ut.name,
                type_cql(ut),
            )]))
        }
        Describe::Index(q) => {
            let ks = element_keyspace(q.keyspace.as_ref(), current_keyspace)?;
            let k = keyspace(schema, &ks)?;
            Ok(DescribeOutput::Elements(vec![index_element(k, &q.name)?]))
        }
        Describe::Name(q) => {
            let ks = match &q.keyspace {
                Some(k) => k.clone(),
                None => {
                    if let Some(k) = schema.keyspace(&q.name) {
                        return Ok(DescribeOutput::Elements(keyspace_elements(k, false)));
                    }
                    current_keyspace.unwrap_or(&q.name).to_string()
                }
            };
            let k = keyspace(schema, &ks)?;
            if let Some(t) = k.tables.get(&q.name) {
                return Ok(DescribeOutput::Elements(table_elements(t)));
            }
            if k.indexed_table(&q.name).is_some() {
                return Ok(DescribeOutput::Elements(vec![index_element(k, &q.name)?]));
            }
            Err(ire(format!("'{}' not found in keyspace '{}'", q.name, ks)))
        }
    }
}

fn index_element(k: &KeyspaceMetadata, name: &str) -> Result<DescribeRow, SchemaError> {
    let t = k.indexed_table(name).ok_or_else(|| {
        ire(format!(
            "Table for existing index '{name}' not found in '{}'",
            k.name
        ))
    })?;
    let i = t
        .index(name)
        .ok_or_else(|| ire(format!("Index '{name}' not found in '{}'", k.name)))?;
    Ok(element_row(&k.name, "index", &i.name, index_cql(t, i)))
}

fn keyspace_elements(k: &KeyspaceMetadata, only: bool) -> Vec<DescribeRow> {
    let mut rows = vec![element_row(&k.name, "keyspace", &k.name, keyspace_cql(k))];
    if only {
        return rows;
    }
    for ut in k.types_in_dependency_order() {
        rows.push(element_row(&k.name, "type", &ut.name, type_cql(ut)));
    }
    for t in k.tables.values() {
        rows.extend(table_elements(t));
    }
    rows
}

fn table_elements(t: &TableMetadata) -> Vec<DescribeRow> {
    let mut rows = vec![element_row(&t.keyspace, "table", &t.name, table_cql(t))];
    for i in &t.indexes {
        rows.push(element_row(&t.keyspace, "index", &i.name, index_cql(t, i)));
    }
    rows
}

/// `CREATE KEYSPACE ... WITH replication = {'class': 'SimpleStrategy', ...}  AND durable_writes = ...;`
pub fn keyspace_cql(k: &KeyspaceMetadata) -> String {
    // Classes of org.apache.cassandra.locator print by simple name.
    let class = &k.replication.class;
    let class = match class.strip_prefix("org.apache.cassandra.locator.") {
        Some(simple) if !simple.contains('.') => simple,
        _ => class,
    };
    let mut s = format!(
        "CREATE KEYSPACE {} WITH replication = {{'class': {}",
        maybe_quote(&k.name),
        single_quote(class)
    );
    for (key, v) in &k.replication.options {
        s.push_str(&format!(", {}: {}", single_quote(key), single_quote(v)));
    }
    s.push_str(&format!("}}  AND durable_writes = {};", k.durable_writes));
    s
}

/// `CREATE TYPE ks.t (\n    f type,\n    ...\n);`
pub fn type_cql(ut: &UserType) -> String {
    let mut s = format!(
        "CREATE TYPE {}.{} (\n",
        maybe_quote(&ut.keyspace),
        maybe_quote(&ut.name)
    );
    let fields: Vec<String> = ut
        .field_names
        .iter()
        .zip(&ut.field_types)
        .map(|(n, t)| format!("    {} {}", maybe_quote(n), cql_type_string(t)))
        .collect();
    s.push_str(&fields.join(",\n"));
    s.push_str("\n);");
    s
}

/// `CREATE [CUSTOM] INDEX name ON ks.t (target) [USING 'class' [WITH OPTIONS = {...}]];`
pub fn index_cql(t: &TableMetadata, i: &IndexMetadata) -> String {
    let target = i.options.get("target").cloned().unwrap_or_default();
    if i.kind == "CUSTOM" {
        let class = i.options.get("class_name").cloned().unwrap_or_default();
        let mut rest = i.options.clone();
        rest.remove("target");
        rest.remove("class_name");
        let mut s = format!(
            "CREATE CUSTOM INDEX {} ON {} ({}) USING {}",
            maybe_quote(&i.name),
            t.qualified_name(),
            target,
            single_quote(&class)
        );
        if !rest.is_empty() {
            s.push_str(" WITH OPTIONS = ");
            s.push_str(&quoted_map(&rest));
        }
        s.push(';');
        s
    } else {
        format!(
            "CREATE INDEX {} ON {} ({});",
            maybe_quote(&i.name),
            t.qualified_name(),
            target
        )
    }
}

fn quoted_map(m: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{}: {}", single_quote(k), single_quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `CREATE TABLE ks.t (...) WITH ...;` exactly as Cassandra 4.0 prints it.
pub fn table_cql(t: &TableMetadata) -> String {
    let mut s = format!("CREATE TABLE {} (\n", t.qualified_name());
    let single_pk = t.partition_key_len == 1 && t.clustering_key_len == 0;
    // Create order (TableMetadata.allColumnsInCreateOrder): key columns, then
    // statics, then regulars; within each, simple columns before non-frozen
    // collections/UDTs, each by name.
    let keys = t.partition_key_len + t.clustering_key_len;
    let mut columns: Vec<&super::ColumnMetadata> = t.columns.iter().collect();
    columns[keys..].sort_by(|a, b| {
        (
            a.kind != ColumnKind::Static,
            is_multi_cell(&a.ty),
            a.name.as_bytes(),
        )
            .cmp(&(
                b.kind != ColumnKind::Static,
                is_multi_cell(&b.ty),
                b.name.as_bytes(),
            ))
    });
    let n = columns.len();
    for (i, c) in columns.into_iter().enumerate() {
        s.push_str("    ");
        s.push_str(&maybe_quote(&c.name));
        s.push(' ');
        s.push_str(&cql_type_string(&c.ty));
        if c.kind == ColumnKind::Static {
            s.push_str(" static");
        }
        if single_pk && matches!(c.kind, ColumnKind::PartitionKey(_)) {
            s.push_str(" PRIMARY KEY");
        }
        if !single_pk || i + 1 < n {
            s.push(',');
        }
        s.push('\n');
    }
    if !single_pk {
        s.push_str("    PRIMARY KEY (");
        let pk: Vec<String> = t
            .partition_key()
            .iter()
            .map(|c| maybe_quote(&c.name))
            .collect();
        if pk.len() > 1 {
            s.push_str(&format!("({})", pk.join(", ")));
        } else {
            s.push_str(&pk[0]);
        }
        for c in t.clustering_key() {
            s.push_str(", ");
            s.push_str(&maybe_quote(&c.name));
        }
        s.push_str(")\n");
    }
    s.push_str(") WITH ");
    if t.clustering_key_len > 0 {
        let order: Vec<String> = t
            .clustering_key()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    maybe_quote(&c.name),
                    if c.order == ClusteringOrder::Desc {
                        "DESC"
                    } else {
                        "ASC"
                    }
                )
            })
            .collect();
        s.push_str(&format!(
            "CLUSTERING ORDER BY ({})\n    AND ",
            order.join(", ")
        ));
    }
    let o = &t.options;
    let extensions: Vec<String> = o
        .extensions
        .iter()
        .map(|(k, v)| format!("{}: 0x{}", single_quote(k), digest::to_hex(v)))
        .collect();
    let lines = [
        format!(
            "additional_write_policy = {}",
            single_quote(&o.additional_write_policy)
        ),
        format!(
            "bloom_filter_fp_chance = {}",
            java_double(o.bloom_filter_fp_chance)
        ),
        format!("caching = {}", quoted_map(&o.caching)),
        format!("cdc = {}", o.cdc),
        format!("comment = {}", single_quote(&o.comment)),
        format!("compaction = {}", quoted_map(&o.compaction)),
        format!("compression = {}", quoted_map(&o.compression)),
        format!("crc_check_chance = {}", java_double(o.crc_check_chance)),
        format!("default_time_to_live = {}", o.default_time_to_live),
        format!("extensions = {{{}}}", extensions.join(", ")),
        format!("gc_grace_seconds = {}", o.gc_grace_seconds),
        format!("max_index_interval = {}", o.max_index_interval),
        format!(
            "memtable_flush_period_in_ms = {}",
            o.memtable_flush_period_in_ms
        ),
        format!("min_index_interval = {}", o.min_index_interval),
        format!("read_repair = {}", single_quote(&o.read_repair)),
        format!("speculative_retry = {}", single_quote(&o.speculative_retry)),
    ];
    s.push_str(&lines.join("\n    AND "));
    s.push(';');
    s
}

fn trim_prefix(s: &str, prefix: &str) -> String {
    s.strip_prefix(prefix).unwrap_or(s).to_string()
}

fn describe_cluster(
    schema: &Schema,
    current_keyspace: Option<&str>,
    local: &LocalNodeInfo,
    peers: &[PeerInfo],
) -> DescribeOutput {
    let range_ownership = current_keyspace
        .filter(|k| !is_local_system_keyspace(k) && !is_system_keyspace(k))
        .and_then(|k| schema.keyspace(k))
        .map(|k| range_ownership(k, local, peers));
    DescribeOutput::Cluster {
        cluster: local.cluster_name.clone(),
        partitioner: trim_prefix(&local.partitioner, "org.apache.cassandra.dht."),
        snitch: trim_prefix(&local.snitch, "org.apache.cassandra.locator."),
        range_ownership,
    }
}

/// Token range end → replica endpoints (`/address:port`), for the keyspace's
/// strategy over the ring formed by this node and its peers.
fn range_ownership(
    k: &KeyspaceMetadata,
    local: &LocalNodeInfo,
    peers: &[PeerInfo],
) -> Vec<(String, Vec<String>)> {
    let mut nodes = vec![crate::locator::RingNode {
        endpoint: format!("/{}:{}", local.broadcast_address, local.listen_port),
        datacenter: local.data_center.clone(),
        rack: local.rack.clone(),
        tokens: local.tokens.clone(),
    }];
    nodes.extend(peers.iter().map(|p| crate::locator::RingNode {
        endpoint: format!("/{}:{}", p.peer, p.peer_port),
        datacenter: p.data_center.clone(),
        rack: p.rack.clone(),
        tokens: p.tokens.clone(),
    }));
    let Ok(strategy) =
        ReplicationStrategy::from_options(&k.replication.class, &k.replication.options)
    else {
        return Vec::new();
    };
    let ring = crate::locator::Ring::new(nodes);
    ring.tokens()
        .iter()
        .map(|&tok| {
            let replicas = ring.natural_replicas(&strategy, tok);
            (
                tok.to_string(),
                replicas
                    .into_iter()
                    .map(|i| ring.node(i).endpoint.clone())
                    .collect(),
            )
        })
        .collect()
}
