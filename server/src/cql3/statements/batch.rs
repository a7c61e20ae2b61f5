//! BATCH: several modifications applied with one timestamp.

use engine::mutation::Mutation;
use proto::error::ErrorResponse;

use super::modification::{Existing, Lwt, ModificationStatement};
use crate::cql3::ast::BatchKind;
use crate::cql3::eval::{eval_i64, EvalCtx};

/// Collects the mutations of a batch; statements keep their own bound
/// values (`ctxs[i]` for `stmts[i]`).
pub fn batch_mutations(
    kind: BatchKind,
    stmts: &[(&ModificationStatement, EvalCtx<'_>, Option<Existing>)],
    timestamp: i64,
) -> Result<Vec<Mutation>, ErrorResponse> {
    let mut out = Vec::new();
    for (stmt, ctx, existing) in stmts {
        if !matches!(stmt.lwt, Lwt::None) {
            return Err(ErrorResponse::server(
                "internal error: conditional batch outside execute_with_reads",
            ));
        }
        check_kind(kind, stmt)?;
        stmt.mutations(ctx, timestamp, existing.as_ref(), &mut out)?;
    }
    Ok(out)
}

/// `BEGIN BATCH USING TIMESTAMP n`.
pub fn batch_timestamp(
    t: Option<&crate::cql3::ast::Term>,
    ctx: &EvalCtx<'_>,
) -> Result<Option<i64>, ErrorResponse> {
    match t {
        Some(t) => eval_i64(t, ctx, "timestamp"),
        None => Ok(None),
    }
}

/// Executes a batch in which some statement reads before it writes.
///
/// Conditional batch (Cassandra's rules: one table, one partition): the
/// conditions of every statement are checked and, if all hold, every
/// statement is applied — one read-check-write on the owner shard.
/// Otherwise the statements that need no read are applied together, then
/// each statement that reads (counters, list element operations) runs its
/// own read-modify-write per partition on the owner shard, so concurrent
/// increments are never lost.
pub async fn execute_with_reads(
    proxy: &crate::service::storage_proxy::StorageProxy,
    kind: BatchKind,
    stmts: &[(&ModificationStatement, EvalCtx<'_>)],
    timestamp: i64,
    cl: proto::consistency::Consistency,
    serial: proto::consistency::Consistency,
) -> Result<Option<super::ResultSet>, ErrorResponse> {
    if stmts.iter().any(|(s, _)| !matches!(s.lwt, Lwt::None)) {
        return conditional_batch(proxy, stmts, timestamp, cl, serial)
            .await
            .map(Some);
    }
    let mut plain = Vec::new();
    for (stmt, ctx) in stmts {
        check_kind(kind, stmt)?;
        if !stmt.requires_read() {
            stmt.mutations(ctx, timestamp, None, &mut plain)?;
        }
    }
    if !plain.is_empty() {
        let mut pairs = Vec::with_capacity(plain.len());
        for m in plain {
            let Some((s, _)) = stmts.iter().find(|(s, _)| s.table.id == m.table) else {
                return Err(ErrorResponse::server("batch table vanished"));
            };
            pairs.push((proxy.keyspace(&s.table.keyspace)?, m));
        }
        proxy.mutate_many(pairs, cl, kind).await?;
    }
    for (stmt, ctx) in stmts {
        if stmt.requires_read() {
            let ks = proxy.keyspace(&stmt.table.keyspace)?;
            stmt.execute_read_write(proxy, &ks, ctx, timestamp, cl, serial)
                .await?;
        }
    }
    Ok(None)
}

fn check_kind(kind: BatchKind, stmt: &ModificationStatement) -> Result<(), ErrorResponse> {
    let is_counter = stmt.table.is_counter;
    match kind {
        BatchKind::Counter if !is_counter => Err(ErrorResponse::invalid(
            "Cannot include non-counter statement in a counter batch",
        )),
        BatchKind::Logged if is_counter => Err(ErrorResponse::invalid(
            "Cannot include a counter statement in a logged batch",
        )),
        _ => Ok(()),
    }
}

/// Cassandra's checks of a whole batch, before anything runs, in its order:
/// a batch timestamp excludes statement timestamps and counters, counters
/// are never mixed with other writes (an UNLOGGED batch may hold either),
/// and a LOGGED batch holds no counters.
pub fn validate_batch(
    kind: BatchKind,
    stmts: &[&ModificationStatement],
    batch_timestamp: bool,
) -> Result<(), ErrorResponse> {
    if batch_timestamp && kind == BatchKind::Counter {
        return Err(ErrorResponse::invalid(
            "Cannot provide custom timestamp for counter BATCH",
        ));
    }
    let (mut counters, mut others) = (false, false);
    for stmt in stmts {
        if batch_timestamp && stmt.has_timestamp() {
            return Err(ErrorResponse::invalid(
                "Timestamp must be set either on BATCH or individual statements",
            ));
        }
        if stmt.table.is_counter {
            counters = true;
        } else {
            others = true;
        }
    }
    if batch_timestamp && counters {
        return Err(ErrorResponse::invalid(
            "Cannot provide custom timestamp for a BATCH containing counters",
        ));
    }
    if kind == BatchKind::Counter && others {
        return Err(ErrorResponse::invalid(
            "Cannot include non-counter statement in a counter batch",
        ));
    }
    if counters && others {
        return Err(ErrorResponse::invalid(
            "Counter and non-counter mutations cannot exist in the same batch",
        ));
    }
    if kind == BatchKind::Logged && counters {
        return Err(ErrorResponse::invalid(
            "Cannot include a counter statement in a logged batch",
        ));
    }
    Ok(())
}

async fn conditional_batch(
    proxy: &crate::service::storage_proxy::StorageProxy,
    stmts: &[(&ModificationStatement, EvalCtx<'_>)],
    timestamp: i64,
    cl: proto::consistency::Consistency,
    serial: proto::consistency::Consistency,
) -> Result<super::ResultSet, ErrorResponse> {
    let table = stmts[0].0.table.clone();
    let mut key = None;
    for (stmt, ctx) in stmts {
        if stmt.table.id != table.id {
            return Err(ErrorResponse::invalid(
                "Batch with conditions cannot span multiple tables",
            ));
        }
        let keys = stmt.partition_keys(ctx)?;
        let [k] = &keys[..] else {
            return Err(ErrorResponse::invalid(
                "IN on the partition key is not supported with conditional updates",
            ));
        };
        match &key {
            None => key = Some(k.clone()),
            Some(prev) if prev != k => {
                return Err(ErrorResponse::invalid(
                    "Batch with conditions cannot span multiple partitions",
                ))
            }
            _ => {}
        }
    }
    let Some(key) = key else {
        return Err(ErrorResponse::invalid("Empty batch"));
    };
    let owned: Vec<(ModificationStatement, Vec<proto::types::Value>)> = stmts
        .iter()
        .map(|(s, c)| ((*s).clone(), c.values.to_vec()))
        .collect();
    let now_micros = stmts[0].1.now_micros;
    let ks = proxy.keyspace(&table.keyspace)?;
    let k = key.clone();
    proxy
        .read_modify_write(
            &ks,
            &table,
            key,
            crate::cql3::statements::now_seconds(now_micros),
            cl,
            serial,
            crate::service::storage_proxy::WriteType::Cas,
            move |current| {
                let timestamp = super::modification::after_current(timestamp, current.as_ref());
                let existing = Existing {
                    parts: current.into_iter().collect(),
                };
                let mut first: Option<super::ResultSet> = None;
                let mut all_hold = true;
                for (s, values) in &owned {
                    if matches!(s.lwt, Lwt::None) {
                        continue;
                    }
                    let ctx = EvalCtx { values, now_micros };
                    let (applied, rs) = s.check_conditions(&ctx, &existing)?;
                    all_hold &= applied;
                    first.get_or_insert(rs);
                }
                if !all_hold {
                    let rs = failed_batch_result(&owned, now_micros, &existing)?;
                    return Ok((Vec::new(), rs));
                }
                let mut muts = Vec::new();
                for (s, values) in &owned {
                    let ctx = EvalCtx { values, now_micros };
                    s.mutations(&ctx, timestamp, Some(&existing), &mut muts)?;
                }
                muts.retain(|m| m.update.key == k);
                Ok((muts, first.unwrap_or_default()))
            },
        )
        .await
}

/// The answer to a conditional batch whose conditions do not all hold, as
/// Cassandra builds it: `[applied]` = false, then the primary key columns
/// and the conditioned columns (every column if some statement is `IF
/// [NOT] EXISTS`), one row per conditioned row that holds data, in
/// clustering order; just `[applied]` if none does.
fn failed_batch_result(
    owned: &[(ModificationStatement, Vec<proto::types::Value>)],
    now_micros: i64,
    existing: &Existing,
) -> Result<super::ResultSet, ErrorResponse> {
    use bytes::Bytes;
    let table = owned[0].0.table.clone();
    let conditional = || owned.iter().filter(|(s, _)| !matches!(s.lwt, Lwt::None));
    let wildcard = conditional().any(|(s, _)| s.condition_columns().is_none());
    let key_len = table.partition_key_len + table.clustering_key_len;
    let columns: Vec<usize> = if wildcard {
        super::selection::CompiledSelection::compile(&table, &crate::cql3::ast::Selection::Star)?
            .items
            .iter()
            .filter_map(|(sel, _)| match sel {
                super::selection::Sel::Column(i) => Some(*i),
                _ => None,
            })
            .collect()
    } else {
        let mut cols: Vec<usize> = (0..key_len).collect();
        for (s, _) in conditional() {
            for c in s.condition_columns().unwrap_or_default() {
                if !cols.contains(&c) {
                    cols.push(c);
                }
            }
        }
        cols
    };
    let schema = super::engine_schema(&table);
    let mut rows: Vec<(Option<engine::mutation::Clustering>, Vec<Option<Bytes>>)> = Vec::new();
    for (s, values) in conditional() {
        let ctx = EvalCtx { values, now_micros };
        if let Some((ck, vals)) = s.conditioned_row(&ctx, existing, &columns)? {
            let seen = rows.iter().any(|(c, _)| match (c, &ck) {
                (None, None) => true,
                (Some(a), Some(b)) => schema.compare_clustering(a, b).is_eq(),
                _ => false,
            });
            if !seen {
                rows.push((ck, vals));
            }
        }
    }
    rows.sort_by(|(a, _), (b, _)| match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(a), Some(b)) => schema.compare_clustering(a, b),
    });
    let applied = super::ColumnSpec {
        keyspace: table.keyspace.clone(),
        table: table.name.clone(),
        name: "[applied]".to_string(),
        ty: proto::value::ColumnType::Boolean,
    };
    let no = Some(Bytes::from_static(&[0]));
    if rows.is_empty() {
        return Ok(super::ResultSet {
            columns: vec![applied],
            rows: vec![vec![no]],
            paging_state: None,
        });
    }
    let mut specs = vec![applied];
    specs.extend(columns.iter().map(|&i| {
        let c = &table.columns[i];
        super::ColumnSpec {
            keyspace: table.keyspace.clone(),
            table: table.name.clone(),
            name: c.name.clone(),
            ty: c.ty.clone(),
        }
    }));
    Ok(super::ResultSet {
        columns: specs,
        rows: rows
            .into_iter()
            .map(|(_, vals)| {
                let mut row = vec![no.clone()];
                row.extend(vals);
                row
            })
            .collect(),
        paging_state: None,
    })
}
