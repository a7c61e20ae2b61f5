//! Prepared (schema-resolved) statements and their execution.
//!
//! A statement is prepared once against the schema: names are resolved to
//! columns, every bind marker gets its receiver type, restrictions are
//! checked the way Cassandra checks them. Execution then only evaluates
//! terms and talks to the `StorageProxy`.

pub mod batch;
pub mod modification;
pub mod restrictions;
pub mod select;
pub mod selection;

use std::sync::Arc;

use bytes::Bytes;
use engine::mutation::{ClusteringRange, PartitionKey};
use engine::schema::{ClusteringColumn, TableSchema};
use engine::types::KeyType;
use proto::error::ErrorResponse;
use proto::value::ColumnType;

use crate::cql3::ast::{QualifiedName, Term};
use crate::schema::{ClusteringOrder, Schema, TableMetadata};

/// One result column (or one bind variable) as the protocol describes it.
pub use proto::response::ColumnSpec;

/// Rows of a result, already serialised cell by cell.
#[derive(Debug, Clone, Default)]
pub struct ResultSet {
    pub columns: Vec<ColumnSpec>,
    pub rows: Vec<Vec<Option<Bytes>>>,
    pub paging_state: Option<Bytes>,
}

/// Collects the receiver of every bind marker while a statement is prepared.
pub struct BindCollector<'a> {
    pub keyspace: &'a str,
    pub table: &'a str,
    pub markers: &'a [Option<String>],
    pub specs: Vec<Option<ColumnSpec>>,
}

impl<'a> BindCollector<'a> {
    pub fn new(keyspace: &'a str, table: &'a str, markers: &'a [Option<String>]) -> Self {
        BindCollector {
            keyspace,
            table,
            markers,
            specs: vec![None; markers.len()],
        }
    }

    /// Records receivers for the markers inside `term`, which is assigned to
    /// something named `name` of type `ty`.
    pub fn note(&mut self, term: &Term, name: &str, ty: &ColumnType) {
        match term {
            Term::Bind(m) => {
                if let Some(slot) = self.specs.get_mut(m.index) {
                    *slot = Some(ColumnSpec {
                        keyspace: self.keyspace.to_string(),
                        table: self.table.to_string(),
                        name: m.name.clone().unwrap_or_else(|| name.to_string()),
                        ty: ty.clone(),
                    });
                }
            }
            Term::List(items) | Term::Set(items) => {
                let elem = match unfrozen(ty) {
                    ColumnType::List(e) | ColumnType::Set(e) => (**e).clone(),
                    other => other.clone(),
                };
                for t in items {
                    self.note(t, name, &elem);
                }
            }
            Term::Map(entries) => {
                if let ColumnType::Map(k, v) = unfrozen(ty) {
                    for (a, b) in entries {
                        self.note(a, name, k);
                        self.note(b, name, v);
                    }
                }
            }
            Term::Tuple(items) => {
                if let ColumnType::Tuple(types) = unfrozen(ty) {
                    for (t, ty) in items.iter().zip(types) {
                        self.note(t, name, ty);
                    }
                }
            }
            Term::Udt(fields) => {
                if let ColumnType::Udt { fields: defs, .. } = unfrozen(ty) {
                    for (f, t) in fields {
                        if let Some((_, fty)) = defs.iter().find(|(n, _)| n == f) {
                            self.note(t, f, fty);
                        }
                    }
                }
            }
            Term::TypeHint { term, .. } => self.note(term, name, ty),
            Term::FunctionCall { name: fname, args } => {
                let arg_ty = match fname.as_str() {
                    "mintimeuuid" | "maxtimeuuid" => ColumnType::Timestamp,
                    "fromjson" => ColumnType::Text,
                    f if f.starts_with("blobas") => ColumnType::Blob,
                    _ => ColumnType::Blob,
                };
                for (i, a) in args.iter().enumerate() {
                    let n = format!("arg{i}({fname})");
                    self.note(a, &n, &arg_ty);
                }
            }
            Term::Literal(_) => {}
        }
    }

    /// Every marker must have a receiver by the end of preparation.
    pub fn finish(self) -> Result<Vec<ColumnSpec>, ErrorResponse> {
        self.specs
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                s.ok_or_else(|| {
                    ErrorResponse::invalid(format!("Cannot infer the type of bind marker {i}"))
                })
            })
            .collect()
    }
}

/// Strips `frozen<>`.
pub fn unfrozen(ty: &ColumnType) -> &ColumnType {
    match ty {
        ColumnType::Frozen(inner) => unfrozen(inner),
        other => other,
    }
}

/// Whether a column of this type is stored as cells keyed by path.
pub fn is_multi_cell(ty: &ColumnType) -> bool {
    matches!(
        ty,
        ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(_, _) | ColumnType::Udt { .. }
    )
}

/// How values of `ty` compare (as clustering keys, in filters, in sets).
pub fn key_type(ty: &ColumnType) -> KeyType {
    match ty {
        ColumnType::Frozen(inner) => key_type(inner),
        ColumnType::Ascii | ColumnType::Text | ColumnType::Blob | ColumnType::Custom(_) => {
            KeyType::Bytes
        }
        ColumnType::Boolean => KeyType::Boolean,
        ColumnType::TinyInt => KeyType::TinyInt,
        ColumnType::SmallInt => KeyType::SmallInt,
        ColumnType::Int => KeyType::Int,
        ColumnType::BigInt | ColumnType::Counter | ColumnType::Timestamp | ColumnType::Time => {
            KeyType::BigInt
        }
        ColumnType::Float => KeyType::Float,
        ColumnType::Double => KeyType::Double,
        ColumnType::Varint => KeyType::Varint,
        ColumnType::Decimal => KeyType::Decimal,
        ColumnType::Uuid => KeyType::Uuid,
        ColumnType::Timeuuid => KeyType::TimeUuid,
        ColumnType::Inet => KeyType::Inet,
        ColumnType::Date => KeyType::Date,
        ColumnType::Duration => KeyType::Duration,
        ColumnType::List(e) => KeyType::List(Box::new(key_type(e))),
        ColumnType::Set(e) => KeyType::Set(Box::new(key_type(e))),
        ColumnType::Map(k, v) => KeyType::Map(Box::new(key_type(k)), Box::new(key_type(v))),
        ColumnType::Tuple(ts) => KeyType::Tuple(ts.iter().map(key_type).collect()),
        ColumnType::Udt { fields, .. } => {
            KeyType::Udt(fields.iter().map(|(_, t)| key_type(t)).collect())
        }
    }
}

/// The engine's view of a table.
pub fn engine_schema(table: &TableMetadata) -> TableSchema {
    TableSchema::new(
        table.id,
        table
            .clustering_key()
            .iter()
            .map(|c| ClusteringColumn {
                ty: key_type(&c.ty),
                reversed: c.order == ClusteringOrder::Desc,
            })
            .collect(),
        table.options.gc_grace_seconds,
    )
    .with_compaction(compaction_strategy(table))
}

/// The table's `compaction = {...}` option as the engine's strategy (an
/// unknown class or bad number falls back to size-tiered, with a warning).
fn compaction_strategy(table: &TableMetadata) -> engine::compaction::CompactionStrategy {
    let options = table
        .options
        .compaction
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    engine::compaction::CompactionStrategy::from_options(options).unwrap_or_else(|e| {
        log::warn!(
            "table {}: {e}; using SizeTieredCompactionStrategy",
            table.qualified_name()
        );
        Default::default()
    })
}

/// Resolves `[ks.]table` against the schema and the connection's keyspace.
pub fn resolve_table(
    schema: &Schema,
    name: &QualifiedName,
    current: Option<&str>,
) -> Result<Arc<TableMetadata>, ErrorResponse> {
    let ks = keyspace_of(name, current)?;
    let Some(keyspace) = schema.keyspace(ks) else {
        return Err(ErrorResponse::invalid(format!(
            "Keyspace {ks} does not exist"
        )));
    };
    keyspace
        .tables
        .get(&name.name)
        .cloned()
        .ok_or_else(|| ErrorResponse::invalid(format!("unconfigured table {}", name.name)))
}

/// The keyspace a statement refers to.
pub fn keyspace_of<'a>(
    name: &'a QualifiedName,
    current: Option<&'a str>,
) -> Result<&'a str, ErrorResponse> {
    name.keyspace.as_deref().or(current).ok_or_else(|| {
        ErrorResponse::invalid(
            "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename",
        )
    })
}

/// Builds the partition key (bytes and token) from its component values.
pub fn partition_key(components: &[Bytes]) -> Result<PartitionKey, ErrorResponse> {
    let refs: Vec<&[u8]> = components.iter().map(|b| &b[..]).collect();
    if refs.len() == 1 && refs[0].is_empty() {
        return Err(ErrorResponse::invalid("Key may not be empty"));
    }
    if refs.iter().any(|c| c.len() > u16::MAX as usize) {
        return Err(ErrorResponse::invalid(format!(
            "Key length is too long (maximum {})",
            u16::MAX
        )));
    }
    let key = crate::dht::murmur3::serialize_partition_key(&refs);
    let token = crate::dht::murmur3::murmur3_token(&key);
    Ok(PartitionKey { token, key })
}

/// Cartesian product of per-component value lists.
pub fn cartesian(parts: &[Vec<Bytes>]) -> Vec<Vec<Bytes>> {
    let mut out: Vec<Vec<Bytes>> = vec![Vec::new()];
    for values in parts {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for prefix in &out {
            for v in values {
                let mut p = prefix.clone();
                p.push(v.clone());
                next.push(p);
            }
        }
        out = next;
    }
    out
}

/// Sorts clustering ranges in clustering order and drops duplicates.
pub fn sort_ranges(schema: &TableSchema, ranges: &mut Vec<ClusteringRange>) {
    ranges.sort_by(|a, b| schema.compare_starts(&a.start, &b.start));
    ranges.dedup();
}

/// Seconds since the epoch.
pub fn now_seconds(now_micros: i64) -> i32 {
    (now_micros / 1_000_000).clamp(0, i32::MAX as i64) as i32
}
