//! INSERT, UPDATE and DELETE: resolved against the schema at prepare time,
//! turned into engine mutations at execution.

use std::sync::Arc;

use bytes::Bytes;
use engine::mutation::{
    Cell, Clustering, ColumnData, DeletionTime, LivenessInfo, Mutation, PartitionUpdate,
    RangeTombstone, Row,
};
use proto::error::ErrorResponse;
use proto::value::ColumnType;

use super::restrictions::{split_collection, PartitionRestriction, Restrictions};
use super::{
    engine_schema, is_multi_cell, key_type, now_seconds, partition_key, unfrozen, BindCollector,
};
use crate::cql3::ast::{self, Assignment, DeleteTarget, Operator, Relation, Term};
use crate::cql3::eval::{eval, eval_for, eval_i32, eval_i64, eval_ttl, EvalCtx, Evaluated};
use crate::schema::{ColumnKind, TableMetadata};

/// Cassandra's maximum TTL (20 years).
pub const MAX_TTL: i32 = 20 * 365 * 24 * 60 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Insert,
    Update,
    Delete,
}

/// What happens to one column.
#[derive(Debug, Clone)]
enum Op {
    Set(Term),
    SetElement(Term, Term),
    SetField(usize, Term),
    Append(Term),
    Prepend(Term),
    Remove(Term),
    Delete,
    DeleteElement(Term),
    DeleteField(usize),
}

/// A prepared INSERT, UPDATE or DELETE.
#[derive(Debug, Clone)]
pub struct ModificationStatement {
    pub table: Arc<TableMetadata>,
    pub kind: Kind,
    restrictions: Restrictions,
    /// (column index, operation).
    ops: Vec<(usize, Op)>,
    timestamp: Option<Term>,
    ttl: Option<Term>,
    /// Only static columns are written: no clustering needed.
    static_only: bool,
    /// `IF NOT EXISTS` / `IF EXISTS` / `IF cond`.
    pub lwt: Lwt,
    /// `INSERT JSON`: the JSON term and whether `DEFAULT UNSET` was given;
    /// the real statement is built at execution from the decoded object.
    json: Option<(Term, bool)>,
}

/// The condition of a lightweight transaction.
#[derive(Debug, Clone)]
pub enum Lwt {
    None,
    IfNotExists,
    IfExists,
    /// (column index, element, UDT field position, operator, value).
    Conditions(Vec<(usize, Option<Term>, Option<usize>, Operator, Term)>),
}

/// Rows read before the write (list element operations, counters,
/// conditions): the current content of the partitions written.
#[derive(Debug, Default)]
pub struct Existing {
    pub parts: Vec<PartitionUpdate>,
}

impl Existing {
    fn partition(&self, key: &engine::mutation::PartitionKey) -> Option<&PartitionUpdate> {
        self.parts.iter().find(|p| p.key.key == key.key)
    }

    fn row(
        &self,
        schema: &engine::schema::TableSchema,
        key: &engine::mutation::PartitionKey,
        ck: &Clustering,
    ) -> Option<&Row> {
        let p = self.partition(key)?;
        p.rows
            .iter()
            .find(|(c, _)| schema.compare_clustering(c, ck).is_eq())
            .map(|(_, r)| r)
    }
}

fn invalid(m: impl Into<String>) -> ErrorResponse {
    ErrorResponse::invalid(m)
}

impl ModificationStatement {
    pub fn prepare_insert(
        table: Arc<TableMetadata>,
        ins: &ast::Insert,
        binds: &mut BindCollector<'_>,
    ) -> Result<Self, ErrorResponse> {
        if let Some(j) = &ins.json {
            if table.is_counter {
                return Err(invalid(
                    "INSERT statements are not allowed on counter tables, use UPDATE instead",
                ));
            }
            binds.note(j, "[json]", &ColumnType::Text);
            let restrictions = Restrictions::analyze(&table, &[], binds)?;
            let (timestamp, ttl) = using(&ins.using, binds, &table)?;
            let lwt = if ins.if_not_exists {
                Lwt::IfNotExists
            } else {
                Lwt::None
            };
            return Ok(ModificationStatement {
                table,
                kind: Kind::Insert,
                restrictions,
                ops: Vec::new(),
                timestamp,
                ttl,
                static_only: false,
                lwt,
                json: Some((j.clone(), ins.json_default_unset)),
            });
        }
        if ins.columns.len() != ins.values.len() {
            return Err(invalid("Unmatched column names/values"));
        }
        let mut relations = Vec::new();
        let mut ops = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in ins.columns.iter().zip(&ins.values) {
            let Some(idx) = table.column_index(name) else {
                return Err(invalid(format!(
                    "Undefined column name {name} in table {}.{}",
                    table.keyspace, table.name
                )));
            };
            if !seen.insert(idx) {
                return Err(invalid(format!(
                    "Multiple definitions found for column {name}"
                )));
            }
            let col = &table.columns[idx];
            match col.kind {
                ColumnKind::PartitionKey(_) | ColumnKind::Clustering(_) => {
                    relations.push(Relation::Single {
                        column: name.clone(),
                        op: Operator::Eq,
                        value: value.clone(),
                    })
                }
                _ => {
                    binds.note(value, name, &col.ty);
                    ops.push((idx, Op::Set(value.clone())));
                }
            }
        }
        let missing_pk: Vec<&str> = table
            .partition_key()
            .iter()
            .filter(|c| !ins.columns.contains(&c.name))
            .map(|c| c.name.as_str())
            .collect();
        if !missing_pk.is_empty() {
            return Err(invalid(format!(
                "Some partition key parts are missing: {}",
                missing_pk.join(", ")
            )));
        }
        let static_only = !ops.is_empty()
            && ops
                .iter()
                .all(|(i, _)| table.columns[*i].kind == ColumnKind::Static);
        let missing_ck: Vec<&str> = table
            .clustering_key()
            .iter()
            .filter(|c| !ins.columns.contains(&c.name))
            .map(|c| c.name.as_str())
            .collect();
        if !(missing_ck.is_empty() || static_only && missing_ck.len() == table.clustering_key_len) {
            return Err(invalid(format!(
                "Some clustering keys are missing: {}",
                missing_ck.join(", ")
            )));
        }
        let restrictions = Restrictions::analyze(&table, &relations, binds)?;
        let (timestamp, ttl) = using(&ins.using, binds, &table)?;
        if table.is_counter {
            return Err(invalid(
                "INSERT statements are not allowed on counter tables, use UPDATE instead",
            ));
        }
        let lwt = if ins.if_not_exists {
            Lwt::IfNotExists
        } else {
            Lwt::None
        };
        let stmt = ModificationStatement {
            table,
            kind: Kind::Insert,
            restrictions,
            ops,
            timestamp,
            ttl,
            static_only,
            lwt,
            json: None,
        };
        stmt.validate()?;
        Ok(stmt)
    }

    pub fn prepare_update(
        table: Arc<TableMetadata>,
        up: &ast::Update,
        binds: &mut BindCollector<'_>,
    ) -> Result<Self, ErrorResponse> {
        let mut ops = Vec::new();
        for a in &up.assignments {
            let (name, op) = match a {
                Assignment::Set { column, value } => (column, Op::Set(value.clone())),
                Assignment::SetElement { column, key, value } => {
                    (column, Op::SetElement(key.clone(), value.clone()))
                }
                Assignment::SetField {
                    column,
                    field,
                    value,
                } => {
                    let col = table
                        .column(column)
                        .ok_or_else(|| undefined(&table, column))?;
                    let ColumnType::Udt { fields, .. } = unfrozen(&col.ty) else {
                        return Err(invalid(format!("Invalid operation ({column}.{field} = ...) for non-UDT column {column}")));
                    };
                    let i = fields.iter().position(|(n, _)| n == field).ok_or_else(|| {
                        invalid(format!(
                            "UDT column {column} does not have a field named {field}"
                        ))
                    })?;
                    (column, Op::SetField(i, value.clone()))
                }
                Assignment::Append { column, value } => (column, Op::Append(value.clone())),
                Assignment::Prepend { column, value } => (column, Op::Prepend(value.clone())),
                Assignment::Remove { column, value } => (column, Op::Remove(value.clone())),
            };
            let idx = table
                .column_index(name)
                .ok_or_else(|| undefined(&table, name))?;
            let col = &table.columns[idx];
            if matches!(
                col.kind,
                ColumnKind::PartitionKey(_) | ColumnKind::Clustering(_)
            ) {
                return Err(invalid(format!(
                    "PRIMARY KEY part {name} found in SET part"
                )));
            }
            check_op(&col.name, &col.ty, &op)?;
            note_op(binds, col.name.as_str(), &col.ty, &op)?;
            ops.push((idx, op));
        }
        let static_only = ops
            .iter()
            .all(|(i, _)| table.columns[*i].kind == ColumnKind::Static);
        let restrictions =
            where_for_write(&table, &up.where_clause, binds, static_only, false, false)?;
        let (timestamp, ttl) = using(&up.using, binds, &table)?;
        let lwt = prepare_lwt(&table, up.if_exists, &up.conditions, binds)?;
        let stmt = ModificationStatement {
            table,
            kind: Kind::Update,
            restrictions,
            ops,
            timestamp,
            ttl,
            static_only,
            lwt,
            json: None,
        };
        stmt.validate()?;
        Ok(stmt)
    }

    pub fn prepare_delete(
        table: Arc<TableMetadata>,
        del: &ast::Delete,
        binds: &mut BindCollector<'_>,
    ) -> Result<Self, ErrorResponse> {
        if del.using.ttl.is_some() {
            return Err(invalid("TTL attribute is not allowed for deletes"));
        }
        let mut ops = Vec::new();
        for t in &del.targets {
            let (name, op) = match t {
                DeleteTarget::Column(c) => (c, Op::Delete),
                DeleteTarget::Element { column, key } => (column, Op::DeleteElement(key.clone())),
                DeleteTarget::Field { column, field } => {
                    let col = table
                        .column(column)
                        .ok_or_else(|| undefined(&table, column))?;
                    let ColumnType::Udt { fields, .. } = unfrozen(&col.ty) else {
                        return Err(invalid(format!(
                            "Invalid field deletion for non-UDT column {column}"
                        )));
                    };
                    let i = fields.iter().position(|(n, _)| n == field).ok_or_else(|| {
                        invalid(format!(
                            "UDT column {column} does not have a field named {field}"
                        ))
                    })?;
                    (column, Op::DeleteField(i))
                }
            };
            let idx = table
                .column_index(name)
                .ok_or_else(|| undefined(&table, name))?;
            let col = &table.columns[idx];
            if matches!(
                col.kind,
                ColumnKind::PartitionKey(_) | ColumnKind::Clustering(_)
            ) {
                return Err(invalid(format!(
                    "Invalid identifier {name} for deletion (should not be a PRIMARY KEY part)"
                )));
            }
            check_op(&col.name, &col.ty, &op)?;
            note_op(binds, &col.name, &col.ty, &op)?;
            ops.push((idx, op));
        }
        let static_only = !ops.is_empty()
            && ops
                .iter()
                .all(|(i, _)| table.columns[*i].kind == ColumnKind::Static);
        let restrictions = where_for_write(
            &table,
            &del.where_clause,
            binds,
            static_only,
            ops.is_empty(),
            true,
        )?;
        let (timestamp, _) = using(&del.using, binds, &table)?;
        let lwt = prepare_lwt(&table, del.if_exists, &del.conditions, binds)?;
        let stmt = ModificationStatement {
            table,
            kind: Kind::Delete,
            restrictions,
            ops,
            timestamp,
            ttl: None,
            static_only,
            lwt,
            json: None,
        };
        stmt.validate()?;
        Ok(stmt)
    }

    /// The checks Cassandra makes on every modification once it is resolved.
    fn validate(&self) -> Result<(), ErrorResponse> {
        let table = &*self.table;
        if table.is_counter {
            if self.ttl.is_some() {
                return Err(invalid("Cannot provide custom TTL for counter updates"));
            }
            if self.timestamp.is_some() && self.kind != Kind::Delete {
                return Err(invalid(
                    "Cannot provide custom timestamp for counter updates",
                ));
            }
            if !matches!(self.lwt, Lwt::None) {
                return Err(invalid(
                    "Conditional updates are not supported on counter tables",
                ));
            }
        }
        if !matches!(self.lwt, Lwt::None) {
            if self.timestamp.is_some() {
                return Err(invalid(
                    "Cannot provide custom timestamp for conditional updates",
                ));
            }
            if let PartitionRestriction::Keys(sets) = &self.restrictions.partition {
                if sets
                    .iter()
                    .any(|s| !matches!(s, super::restrictions::ValueSet::Eq(_)))
                {
                    return Err(invalid(
                        "IN on the partition key is not supported with conditional updates",
                    ));
                }
            }
            if self
                .restrictions
                .clustering
                .prefix
                .iter()
                .any(|s| !matches!(s, super::restrictions::ValueSet::Eq(_)))
            {
                return Err(invalid(
                    "IN on the clustering key columns is not supported with conditional updates",
                ));
            }
            if self.kind == Kind::Delete
                && self.ops.is_empty()
                && table.clustering_key_len > 0
                && self.restrictions.clustering.prefix.len() < table.clustering_key_len
                && self.restrictions.clustering.multi_eq.is_none()
            {
                return Err(invalid("DELETE statements must restrict all PRIMARY KEY columns with equality relations in order to use IF conditions"));
            }
        }
        Ok(())
    }

    /// Whether executing this statement needs the current rows first.
    /// Whether the statement has its own `USING TIMESTAMP`.
    pub fn has_timestamp(&self) -> bool {
        self.timestamp.is_some()
    }

    pub fn requires_read(&self) -> bool {
        !matches!(self.lwt, Lwt::None)
            || self.table.is_counter
            || self.ops.iter().any(|(i, op)| {
                matches!(self.table.columns[*i].ty, ColumnType::List(_))
                    && matches!(
                        op,
                        Op::SetElement(..) | Op::DeleteElement(_) | Op::Remove(_)
                    )
            })
    }

    /// The partitions this statement writes.
    pub fn partition_keys(
        &self,
        ctx: &EvalCtx<'_>,
    ) -> Result<Vec<engine::mutation::PartitionKey>, ErrorResponse> {
        if self.json.is_some() {
            let (inner, values) = self.json_inner(ctx)?;
            let ictx = EvalCtx {
                values: &values,
                now_micros: ctx.now_micros,
            };
            return inner.partition_keys(&ictx);
        }
        self.restrictions
            .partition_keys(&self.table, ctx)?
            .iter()
            .map(|c| partition_key(c))
            .collect()
    }

    pub fn pk_bind_indexes(&self) -> Vec<u16> {
        let PartitionRestriction::Keys(sets) = &self.restrictions.partition else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in sets {
            match s {
                super::restrictions::ValueSet::Eq(Term::Bind(m)) => out.push(m.index as u16),
                _ => return Vec::new(),
            }
        }
        out
    }

    /// The mutations this statement makes; `default_ts` is the batch's or
    /// the request's timestamp (micros).
    pub fn mutations(
        &self,
        ctx: &EvalCtx<'_>,
        default_ts: i64,
        existing: Option<&Existing>,
        out: &mut Vec<Mutation>,
    ) -> Result<(), ErrorResponse> {
        if self.json.is_some() {
            let (inner, values) = self.json_inner(ctx)?;
            let ictx = EvalCtx {
                values: &values,
                now_micros: ctx.now_micros,
            };
            return inner.mutations(&ictx, default_ts, existing, out);
        }
        let table = &*self.table;
        if existing.is_none() && self.requires_read() {
            return Err(ErrorResponse::server(
                "internal error: statement executed without its read",
            ));
        }
        let empty = Existing::default();
        let existing = existing.unwrap_or(&empty);
        let ts = match &self.timestamp {
            Some(t) => eval_i64(t, ctx, "timestamp")?.unwrap_or(default_ts),
            None => default_ts,
        };
        if ts == i64::MIN {
            return Err(invalid("Invalid timestamp"));
        }
        let ttl = match &self.ttl {
            Some(t) => match eval_ttl(t, ctx)? {
                Some(v) if v < 0 => {
                    return Err(invalid(format!(
                        "A TTL must be greater or equal to 0, but was {v}"
                    )))
                }
                Some(v) if v > MAX_TTL => {
                    return Err(invalid(format!(
                        "ttl is too large. requested ({v}) maximum ({MAX_TTL})"
                    )))
                }
                Some(v) => v,
                None => table.options.default_time_to_live,
            },
            None => table.options.default_time_to_live,
        };
        let now = now_seconds(ctx.now_micros);
        let expiry = if ttl > 0 { now.saturating_add(ttl) } else { 0 };
        let keys = self.restrictions.partition_keys(table, ctx)?;
        let schema = engine_schema(table);
        let needs_clustering = table.clustering_key_len > 0 && !self.static_only;

        let clusterings: Vec<Clustering> = if self.kind != Kind::Delete && needs_clustering {
            let c = self.restrictions.full_clusterings(table, ctx)?;
            for ck in &c {
                if ck.len() != table.clustering_key_len {
                    return Err(invalid("Some clustering keys are missing"));
                }
            }
            c
        } else {
            Vec::new()
        };

        for comps in keys {
            let key = partition_key(&comps)?;
            let mut upd = PartitionUpdate::new(key.clone());
            match self.kind {
                Kind::Insert | Kind::Update => {
                    let cur_static = existing.partition(&key).and_then(|p| p.static_row.as_ref());
                    let cks = if needs_clustering {
                        clusterings.clone()
                    } else {
                        vec![Vec::new()]
                    };
                    let first_row = cks.first().and_then(|ck| existing.row(&schema, &key, ck));
                    let (static_cells, regular_cells) =
                        self.cells(ctx, ts, ttl, expiry, now, cur_static, first_row)?;
                    if !static_cells.is_empty() {
                        upd.static_row = Some(Row {
                            liveness: None,
                            deletion: None,
                            columns: static_cells,
                        });
                    }
                    let liveness = (self.kind == Kind::Insert).then_some(LivenessInfo {
                        timestamp: ts,
                        ttl,
                        expiry,
                    });
                    if !self.static_only {
                        for (i, ck) in cks.into_iter().enumerate() {
                            let columns = if i > 0 && !existing.parts.is_empty() {
                                self.cells(
                                    ctx,
                                    ts,
                                    ttl,
                                    expiry,
                                    now,
                                    cur_static,
                                    existing.row(&schema, &key, &ck),
                                )?
                                .1
                            } else {
                                regular_cells.clone()
                            };
                            upd.rows.push((
                                ck,
                                Row {
                                    liveness,
                                    deletion: None,
                                    columns,
                                },
                            ));
                        }
                    }
                }
                Kind::Delete => {
                    let deletion = DeletionTime {
                        timestamp: ts,
                        local_deletion_time: now,
                    };
                    if self.ops.is_empty() {
                        if !self.restrictions.has_clustering_restrictions {
                            upd.tombstone = Some(deletion);
                        } else {
                            let ranges =
                                self.restrictions.clustering_ranges(table, &schema, ctx)?;
                            for r in ranges {
                                match (&r.start, &r.end) {
                                    (
                                        engine::mutation::Bound::Inclusive(a),
                                        engine::mutation::Bound::Inclusive(b),
                                    ) if a == b && a.len() == table.clustering_key_len => {
                                        upd.rows.push((
                                            a.clone(),
                                            Row {
                                                liveness: None,
                                                deletion: Some(deletion),
                                                columns: Vec::new(),
                                            },
                                        ));
                                    }
                                    _ => upd
                                        .range_tombstones
                                        .push(RangeTombstone { range: r, deletion }),
                                }
                            }
                        }
                    } else {
                        let cur_static =
                            existing.partition(&key).and_then(|p| p.static_row.as_ref());
                        let first_ck = if table.clustering_key_len == 0 {
                            Some(Vec::new())
                        } else if self.static_only {
                            None
                        } else {
                            self.restrictions
                                .full_clusterings(table, ctx)?
                                .into_iter()
                                .next()
                        };
                        let first_row = first_ck
                            .as_ref()
                            .and_then(|ck| existing.row(&schema, &key, ck));
                        let (static_cells, regular_cells) =
                            self.cells(ctx, ts, 0, 0, now, cur_static, first_row)?;
                        if !static_cells.is_empty() {
                            upd.static_row = Some(Row {
                                liveness: None,
                                deletion: None,
                                columns: static_cells,
                            });
                        }
                        if !regular_cells.is_empty() {
                            let cks = if table.clustering_key_len > 0 {
                                let c = self.restrictions.full_clusterings(table, ctx)?;
                                if c.iter().any(|c| c.len() != table.clustering_key_len) {
                                    return Err(invalid(
                                        "Range deletions are not supported for specific columns",
                                    ));
                                }
                                c
                            } else {
                                vec![Vec::new()]
                            };
                            for ck in cks {
                                let columns = if existing.parts.is_empty() {
                                    regular_cells.clone()
                                } else {
                                    self.cells(
                                        ctx,
                                        ts,
                                        0,
                                        0,
                                        now,
                                        cur_static,
                                        existing.row(&schema, &key, &ck),
                                    )?
                                    .1
                                };
                                upd.rows.push((
                                    ck,
                                    Row {
                                        liveness: None,
                                        deletion: None,
                                        columns,
                                    },
                                ));
                            }
                        }
                    }
                }
            }
            upd.rows
                .sort_by(|a, b| schema.compare_clustering(&a.0, &b.0));
            upd.rows
                .dedup_by(|a, b| schema.compare_clustering(&a.0, &b.0).is_eq());
            out.push(Mutation {
                table: table.id,
                update: upd,
            });
        }
        Ok(())
    }

    /// Builds the (static, regular) column data of this statement.
    #[allow(clippy::too_many_arguments)]
    fn cells(
        &self,
        ctx: &EvalCtx<'_>,
        ts: i64,
        ttl: i32,
        expiry: i32,
        now: i32,
        cur_static: Option<&Row>,
        cur_row: Option<&Row>,
    ) -> Result<(Vec<(u32, ColumnData)>, Vec<(u32, ColumnData)>), ErrorResponse> {
        let table = &*self.table;
        let mut st = Vec::new();
        let mut reg = Vec::new();
        let live = |v: Bytes| Cell {
            timestamp: ts,
            ttl,
            expiry,
            value: Some(v),
        };
        let dead = Cell {
            timestamp: ts,
            ttl: 0,
            expiry: now,
            value: None,
        };
        for (idx, op) in &self.ops {
            let col = &table.columns[*idx];
            let multi = is_multi_cell(&col.ty);
            let current = if col.kind == ColumnKind::Static {
                cur_static
            } else {
                cur_row
            }
            .and_then(|r| {
                r.columns
                    .binary_search_by_key(&col.id, |(id, _)| *id)
                    .ok()
                    .map(|i| &r.columns[i].1)
            });
            // Live elements of a non-frozen list, in list order.
            let list_now = || -> Vec<(Bytes, Bytes)> {
                match current {
                    Some(ColumnData::Complex { cells, .. }) => cells
                        .iter()
                        .filter_map(|(p, c)| c.value.clone().map(|v| (p.clone(), v)))
                        .collect(),
                    _ => Vec::new(),
                }
            };
            let data = match op {
                Op::Set(t) => match eval_for(t, &col.name, &col.ty, ctx)? {
                    Evaluated::Unset => continue,
                    Evaluated::Null if multi => ColumnData::Complex {
                        tombstone: Some(DeletionTime {
                            timestamp: ts - 1,
                            local_deletion_time: now,
                        }),
                        cells: Vec::new(),
                    },
                    Evaluated::Null => ColumnData::Simple(dead.clone()),
                    Evaluated::Value(v) if multi => ColumnData::Complex {
                        tombstone: Some(DeletionTime {
                            timestamp: ts - 1,
                            local_deletion_time: now,
                        }),
                        cells: collection_cells(
                            &col.ty,
                            &v,
                            ts,
                            ttl,
                            expiry,
                            ctx.now_micros,
                            false,
                        )?,
                    },
                    Evaluated::Value(v) => {
                        if col.ty == ColumnType::Counter {
                            return Err(invalid(format!("Cannot set the value of counter column {} (counters can only be incremented/decremented, not set)", col.name)));
                        }
                        ColumnData::Simple(live(v))
                    }
                },
                Op::Append(t) | Op::Remove(t) if col.ty == ColumnType::Counter => {
                    let delta = match eval(t, &ColumnType::BigInt, ctx)? {
                        Evaluated::Value(v) => i64::from_be_bytes(
                            v[..]
                                .try_into()
                                .map_err(|_| invalid("Invalid counter increment"))?,
                        ),
                        Evaluated::Null => {
                            return Err(invalid(format!(
                                "Invalid null value for counter increment on {}",
                                col.name
                            )))
                        }
                        Evaluated::Unset => continue,
                    };
                    let delta = if matches!(op, Op::Remove(_)) {
                        delta.wrapping_neg()
                    } else {
                        delta
                    };
                    let (cur, cur_ts) = match current {
                        Some(ColumnData::Simple(Cell {
                            value: Some(v),
                            timestamp,
                            ..
                        })) if v.len() == 8 => (
                            i64::from_be_bytes(v[..].try_into().unwrap_or_default()),
                            *timestamp,
                        ),
                        _ => (0, i64::MIN),
                    };
                    let cts = ts.max(cur_ts.saturating_add(1));
                    ColumnData::Simple(Cell {
                        timestamp: cts,
                        ttl: 0,
                        expiry: 0,
                        value: Some(Bytes::copy_from_slice(
                            &cur.wrapping_add(delta).to_be_bytes(),
                        )),
                    })
                }
                Op::Append(t) | Op::Prepend(t) => {
                    if !multi {
                        return Err(invalid(format!(
                            "Invalid operation ({} = {} + ?) for non list/set/map column {}",
                            col.name, col.name, col.name
                        )));
                    }
                    match eval_for(t, &col.name, &col.ty, ctx)? {
                        Evaluated::Unset => continue,
                        Evaluated::Null => continue,
                        Evaluated::Value(v) => ColumnData::Complex {
                            tombstone: None,
                            cells: collection_cells(
                                &col.ty,
                                &v,
                                ts,
                                ttl,
                                expiry,
                                ctx.now_micros,
                                matches!(op, Op::Prepend(_)),
                            )?,
                        },
                    }
                }
                Op::Remove(t) => {
                    if !multi {
                        return Err(invalid(format!(
                            "Invalid operation ({} = {} - ?) for non list/set/map column {}",
                            col.name, col.name, col.name
                        )));
                    }
                    let rm_ty = match &col.ty {
                        ColumnType::Map(k, _) => ColumnType::Set(k.clone()),
                        other => other.clone(),
                    };
                    match eval_for(t, &col.name, &rm_ty, ctx)? {
                        Evaluated::Value(v) => {
                            if let ColumnType::List(_) = col.ty {
                                let gone = split_collection(&v)
                                    .ok_or_else(|| invalid("Invalid collection value"))?;
                                let cells: Vec<(Bytes, Cell)> = list_now()
                                    .into_iter()
                                    .filter(|(_, e)| gone.contains(e))
                                    .map(|(p, _)| (p, dead.clone()))
                                    .collect();
                                if cells.is_empty() {
                                    continue;
                                }
                                ColumnData::Complex {
                                    tombstone: None,
                                    cells,
                                }
                            } else {
                                let items = split_collection(&v)
                                    .ok_or_else(|| invalid("Invalid collection value"))?;
                                ColumnData::Complex {
                                    tombstone: None,
                                    cells: items.into_iter().map(|p| (p, dead.clone())).collect(),
                                }
                            }
                        }
                        _ => continue,
                    }
                }
                Op::SetElement(k, v) => match &col.ty {
                    ColumnType::Map(kt, vt) => {
                        let key = match eval(k, kt, ctx)? {
                            Evaluated::Value(b) => b,
                            _ => {
                                return Err(invalid(format!(
                                    "Invalid null map key for column {}",
                                    col.name
                                )))
                            }
                        };
                        let cell = match eval(v, vt, ctx)? {
                            Evaluated::Value(b) => live(b),
                            Evaluated::Null => dead.clone(),
                            Evaluated::Unset => continue,
                        };
                        ColumnData::Complex {
                            tombstone: None,
                            cells: vec![(key, cell)],
                        }
                    }
                    ColumnType::List(vt) => {
                        let idx = list_index(k, ctx, &col.name)?;
                        let items = list_now();
                        if items.is_empty() {
                            return Err(invalid(
                                "Attempted to set an element on a list which is null",
                            ));
                        }
                        let Some((path, _)) = usize::try_from(idx).ok().and_then(|i| items.get(i))
                        else {
                            return Err(invalid(format!(
                                "List index {idx} out of bound, list has size {}",
                                items.len()
                            )));
                        };
                        let cell = match eval(v, vt, ctx)? {
                            Evaluated::Value(b) => live(b),
                            Evaluated::Null => dead.clone(),
                            Evaluated::Unset => continue,
                        };
                        ColumnData::Complex {
                            tombstone: None,
                            cells: vec![(path.clone(), cell)],
                        }
                    }
                    _ => {
                        return Err(invalid(format!(
                            "Invalid operation ({}[?] = ?) for non list/map column {}",
                            col.name, col.name
                        )))
                    }
                },
                Op::SetField(i, v) => {
                    let ColumnType::Udt { fields, .. } = &col.ty else {
                        return Err(invalid(format!(
                            "Invalid field update on frozen UDT column {}",
                            col.name
                        )));
                    };
                    let cell = match eval(v, &fields[*i].1, ctx)? {
                        Evaluated::Value(b) => live(b),
                        Evaluated::Null => dead.clone(),
                        Evaluated::Unset => continue,
                    };
                    ColumnData::Complex {
                        tombstone: None,
                        cells: vec![(Bytes::copy_from_slice(&(*i as u16).to_be_bytes()), cell)],
                    }
                }
                Op::Delete => {
                    if multi {
                        ColumnData::Complex {
                            tombstone: Some(DeletionTime {
                                timestamp: ts,
                                local_deletion_time: now,
                            }),
                            cells: Vec::new(),
                        }
                    } else {
                        ColumnData::Simple(dead.clone())
                    }
                }
                Op::DeleteElement(k) => match &col.ty {
                    ColumnType::Map(kt, _) | ColumnType::Set(kt) => match eval(k, kt, ctx)? {
                        Evaluated::Value(b) => ColumnData::Complex {
                            tombstone: None,
                            cells: vec![(b, dead.clone())],
                        },
                        _ => {
                            return Err(invalid(format!("Invalid null value for {} key", col.name)))
                        }
                    },
                    ColumnType::List(_) => {
                        let idx = list_index(k, ctx, &col.name)?;
                        let items = list_now();
                        if items.is_empty() {
                            return Err(invalid(
                                "Attempted to delete an element from a list which is null",
                            ));
                        }
                        let Some((path, _)) = usize::try_from(idx).ok().and_then(|i| items.get(i))
                        else {
                            return Err(invalid(format!(
                                "List index {idx} out of bound, list has size {}",
                                items.len()
                            )));
                        };
                        ColumnData::Complex {
                            tombstone: None,
                            cells: vec![(path.clone(), dead.clone())],
                        }
                    }
                    _ => {
                        return Err(invalid(format!(
                            "Invalid element deletion on column {}",
                            col.name
                        )))
                    }
                },
                Op::DeleteField(i) => ColumnData::Complex {
                    tombstone: None,
                    cells: vec![(
                        Bytes::copy_from_slice(&(*i as u16).to_be_bytes()),
                        dead.clone(),
                    )],
                },
            };
            let target = if col.kind == ColumnKind::Static {
                &mut st
            } else {
                &mut reg
            };
            match target.iter_mut().find(|(id, _)| *id == col.id) {
                Some((_, existing)) => engine::reconcile::merge_column(existing, &data),
                None => target.push((col.id, data)),
            }
        }
        st.sort_by_key(|(id, _)| *id);
        reg.sort_by_key(|(id, _)| *id);
        Ok((st, reg))
    }
}

/// The index of `l[i]`.
fn list_index(t: &Term, ctx: &EvalCtx<'_>, name: &str) -> Result<i32, ErrorResponse> {
    match eval_i32(t, ctx, "list index")? {
        Some(i) => Ok(i),
        None => Err(invalid(format!(
            "Invalid null value for list index of {name}"
        ))),
    }
}

fn undefined(table: &TableMetadata, name: &str) -> ErrorResponse {
    invalid(format!(
        "Undefined column name {name} in table {}.{}",
        table.keyspace, table.name
    ))
}

fn prepare_lwt(
    table: &TableMetadata,
    if_exists: bool,
    conditions: &[ast::Condition],
    binds: &mut BindCollector<'_>,
) -> Result<Lwt, ErrorResponse> {
    if if_exists {
        return Ok(Lwt::IfExists);
    }
    if conditions.is_empty() {
        return Ok(Lwt::None);
    }
    let mut out = Vec::new();
    for c in conditions {
        let idx = table
            .column_index(&c.column)
            .ok_or_else(|| undefined(table, &c.column))?;
        let col = &table.columns[idx];
        if matches!(
            col.kind,
            ColumnKind::PartitionKey(_) | ColumnKind::Clustering(_)
        ) {
            return Err(invalid(format!(
                "PRIMARY KEY column '{}' cannot have IF conditions",
                col.name
            )));
        }
        let mut field = None;
        let value_ty = match &c.element {
            None if c.field.is_some() => {
                let name = c.field.as_deref().unwrap_or_default();
                let ColumnType::Udt { fields, .. } = unfrozen(&col.ty) else {
                    return Err(invalid(format!(
                        "Invalid field selection: {} of type {} is not a user type",
                        col.name,
                        crate::schema::types::cql_type_string(&col.ty)
                    )));
                };
                let i = fields.iter().position(|(n, _)| n == name).ok_or_else(|| {
                    invalid(format!("Unknown field {name} for column {}", col.name))
                })?;
                field = Some(i);
                fields[i].1.clone()
            }
            None => col.ty.clone(),
            Some(e) => match unfrozen(&col.ty) {
                ColumnType::List(v) => {
                    binds.note(e, &format!("idx({})", col.name), &ColumnType::Int);
                    (**v).clone()
                }
                ColumnType::Map(k, v) => {
                    binds.note(e, &format!("key({})", col.name), k);
                    (**v).clone()
                }
                _ => {
                    return Err(invalid(format!(
                        "Invalid element access syntax for non-collection column {}",
                        col.name
                    )))
                }
            },
        };
        let label = match &c.field {
            Some(f) => format!("{}.{f}", col.name),
            None => col.name.clone(),
        };
        match c.op {
            Operator::In => binds.note(
                &c.value,
                &format!("in({label})"),
                &ColumnType::List(Box::new(value_ty)),
            ),
            Operator::Contains | Operator::ContainsKey | Operator::Like => {
                return Err(invalid(format!(
                    "Unsupported operator {:?} in IF condition on {}",
                    c.op, col.name
                )))
            }
            _ => binds.note(&c.value, &label, &value_ty),
        }
        out.push((idx, c.element.clone(), field, c.op, c.value.clone()));
    }
    Ok(Lwt::Conditions(out))
}

/// Refuses an operation the column's type does not support, with
/// Cassandra's messages (`Invalid operation (l[0] = 5) for frozen collection
/// column l`).
fn check_op(name: &str, ty: &ColumnType, op: &Op) -> Result<(), ErrorResponse> {
    let frozen = matches!(ty, ColumnType::Frozen(_));
    let inner = unfrozen(ty);
    let is_collection = matches!(
        inner,
        ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(_, _)
    );
    let fail = |text: String, what: &str| {
        Err(invalid(format!(
            "Invalid operation ({text}) for {what} column {name}"
        )))
    };
    match op {
        Op::SetElement(k, v) => {
            let text = format!("{name}[{k}] = {v}");
            if !is_collection {
                return fail(text, "non collection");
            }
            if frozen {
                return fail(text, "frozen collection");
            }
            if matches!(inner, ColumnType::Set(_)) {
                return fail(text, "set");
            }
        }
        Op::Append(t) | Op::Remove(t) => {
            let sign = if matches!(op, Op::Append(_)) {
                '+'
            } else {
                '-'
            };
            let text = format!("{name} = {name} {sign} {t}");
            if !is_collection {
                if matches!(inner, ColumnType::Tuple(_)) {
                    return fail(text, "tuple");
                }
                if !matches!(ty, ColumnType::Counter) {
                    return fail(text, "non counter");
                }
            } else if frozen {
                return fail(text, "frozen collection");
            }
        }
        Op::Prepend(t) => {
            let text = format!("{name} = {t} + {name}");
            if !matches!(inner, ColumnType::List(_)) {
                return fail(text, "non list");
            }
            if frozen {
                return fail(text, "frozen list");
            }
        }
        Op::DeleteElement(_) => {
            if !is_collection {
                return Err(invalid(format!(
                    "Invalid deletion operation for non collection column {name}"
                )));
            }
            if frozen {
                return Err(invalid(format!(
                    "Invalid deletion operation for frozen collection column {name}"
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

fn note_op(
    binds: &mut BindCollector<'_>,
    name: &str,
    ty: &ColumnType,
    op: &Op,
) -> Result<(), ErrorResponse> {
    match op {
        Op::Set(t) | Op::Append(t) | Op::Prepend(t) => binds.note(t, name, ty),
        Op::Remove(t) => match ty {
            ColumnType::Map(k, _) => binds.note(t, name, &ColumnType::Set(k.clone())),
            _ => binds.note(t, name, ty),
        },
        Op::SetElement(k, v) => match unfrozen(ty) {
            ColumnType::Map(kt, vt) => {
                binds.note(k, &format!("key({name})"), kt);
                binds.note(v, &format!("value({name})"), vt);
            }
            ColumnType::List(vt) => {
                binds.note(k, &format!("idx({name})"), &ColumnType::Int);
                binds.note(v, &format!("value({name})"), vt);
            }
            _ => {
                return Err(invalid(format!(
                    "Invalid operation ({name}[?] = ?) for non list/map column {name}"
                )))
            }
        },
        Op::SetField(i, t) => {
            if let ColumnType::Udt { fields, .. } = unfrozen(ty) {
                binds.note(t, &fields[*i].0, &fields[*i].1);
            }
        }
        Op::DeleteElement(k) => match unfrozen(ty) {
            ColumnType::Map(kt, _) | ColumnType::Set(kt) => {
                binds.note(k, &format!("key({name})"), kt)
            }
            ColumnType::List(_) => binds.note(k, &format!("idx({name})"), &ColumnType::Int),
            _ => {
                return Err(invalid(format!(
                    "Invalid element deletion on non-collection column {name}"
                )))
            }
        },
        Op::Delete | Op::DeleteField(_) => {}
    }
    Ok(())
}

fn using(
    u: &ast::Using,
    binds: &mut BindCollector<'_>,
    _table: &TableMetadata,
) -> Result<(Option<Term>, Option<Term>), ErrorResponse> {
    if let Some(t) = &u.timestamp {
        binds.note(t, "[timestamp]", &ColumnType::BigInt);
    }
    if let Some(t) = &u.ttl {
        binds.note(t, "[ttl]", &ColumnType::Int);
    }
    if let Some(t) = &u.timeout {
        binds.note(t, "[timeout]", &ColumnType::Duration);
    }
    Ok((u.timestamp.clone(), u.ttl.clone()))
}

/// Restrictions of UPDATE/DELETE: the whole partition key by `=`/`IN`, the
/// clustering key by `=`/`IN` (DELETE of whole rows may use a prefix or a
/// slice), nothing else.
fn where_for_write(
    table: &TableMetadata,
    rels: &[Relation],
    binds: &mut BindCollector<'_>,
    static_only: bool,
    row_delete: bool,
    is_delete: bool,
) -> Result<Restrictions, ErrorResponse> {
    let r = Restrictions::analyze(table, rels, binds)?;
    if !is_delete && (r.clustering.slice.is_some() || r.clustering.multi_slice.is_some()) {
        return Err(invalid(
            "Slice restrictions are not supported on the clustering columns in UPDATE statements",
        ));
    }
    if let Some(f) = r.filters.iter().find(|f| {
        matches!(
            table.columns[f.column].kind,
            ColumnKind::Regular | ColumnKind::Static
        )
    }) {
        return Err(invalid(format!(
            "Non PRIMARY KEY columns found in where clause: {}",
            table.columns[f.column].name
        )));
    }
    match &r.partition {
        PartitionRestriction::Keys(_) => {}
        PartitionRestriction::Token { .. } => return Err(invalid("Only EQ and IN relation are supported on the partition key (unless you use the token() function)")),
        PartitionRestriction::None => {
            let missing: Vec<&str> = table.partition_key().iter().map(|c| c.name.as_str()).collect();
            if r.filters.iter().any(|f| matches!(table.columns[f.column].kind, ColumnKind::PartitionKey(_)) && f.op != Operator::Eq && f.op != Operator::In) {
                return Err(invalid("Only EQ and IN relation are supported on the partition key (unless you use the token() function)"));
            }
            return Err(invalid(format!("Some partition key parts are missing: {}", missing.join(", "))));
        }
    }
    if !r.filters.is_empty() {
        let f = &r.filters[0];
        return Err(invalid(format!(
            "PRIMARY KEY column \"{}\" cannot be restricted as preceding column is not restricted",
            table.columns[f.column].name
        )));
    }
    let eq_prefix = r
        .clustering
        .multi_eq
        .as_ref()
        .map(|(n, _)| *n)
        .unwrap_or(r.clustering.prefix.len());
    let full = eq_prefix == table.clustering_key_len
        && r.clustering.slice.is_none()
        && r.clustering.multi_slice.is_none();
    if static_only {
        if r.has_clustering_restrictions && !full {
            return Err(invalid("Invalid restrictions on clustering columns since the UPDATE statement modifies only static columns"));
        }
    } else if !full && is_delete && !row_delete {
        return Err(invalid(
            "Range deletions are not supported for specific columns",
        ));
    } else if !full && !row_delete {
        let missing: Vec<&str> = table.clustering_key()[eq_prefix..]
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(invalid(format!(
            "Some clustering keys are missing: {}",
            missing.join(", ")
        )));
    }
    Ok(r)
}

/// Cells of a non-frozen collection value (list: time-ordered paths).
fn collection_cells(
    ty: &ColumnType,
    v: &[u8],
    ts: i64,
    ttl: i32,
    expiry: i32,
    now_micros: i64,
    prepend: bool,
) -> Result<Vec<(Bytes, Cell)>, ErrorResponse> {
    let live = |b: Bytes| Cell {
        timestamp: ts,
        ttl,
        expiry,
        value: Some(b),
    };
    let bad = || invalid("Invalid collection value");
    Ok(match ty {
        ColumnType::List(_) => {
            let items = split_collection(v).ok_or_else(bad)?;
            let n = items.len() as u64;
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| (list_path(now_micros, i as u64, n, prepend), live(item)))
                .collect()
        }
        ColumnType::Set(e) => {
            let mut items = split_collection(v).ok_or_else(bad)?;
            let kt = key_type(e);
            items.sort_by(|a, b| kt.compare(a, b));
            items.dedup_by(|a, b| kt.compare(a, b).is_eq());
            items.into_iter().map(|p| (p, live(Bytes::new()))).collect()
        }
        ColumnType::Map(k, _) => {
            let flat = split_map(v).ok_or_else(bad)?;
            let kt = key_type(k);
            let mut pairs = flat;
            pairs.sort_by(|a, b| kt.compare(&a.0, &b.0));
            pairs.dedup_by(|a, b| kt.compare(&a.0, &b.0).is_eq());
            pairs.into_iter().map(|(k, v)| (k, live(v))).collect()
        }
        ColumnType::Udt { .. } => {
            let fields = super::restrictions::split_tuple_fields(v).ok_or_else(bad)?;
            fields
                .into_iter()
                .enumerate()
                .filter_map(|(i, f)| {
                    f.map(|f| (Bytes::copy_from_slice(&(i as u16).to_be_bytes()), live(f)))
                })
                .collect()
        }
        _ => return Err(bad()),
    })
}

/// A list cell path: 16 bytes ordering appends after everything before
/// them and prepends before.
fn list_path(now_micros: i64, i: u64, n: u64, prepend: bool) -> Bytes {
    let t = now_micros.max(0) as u64;
    let hi = if prepend {
        (1u64 << 62) - t
    } else {
        (1u64 << 62) + t
    };
    let lo = if prepend { u64::MAX - (n - i) } else { i };
    let mut b = Vec::with_capacity(16);
    b.extend_from_slice(&hi.to_be_bytes());
    b.extend_from_slice(&lo.to_be_bytes());
    Bytes::from(b)
}

/// Splits a serialised map into (key, value) pairs.
pub fn split_map(b: &[u8]) -> Option<Vec<(Bytes, Bytes)>> {
    let n = i32::from_be_bytes(b.get(0..4)?.try_into().ok()?);
    if n < 0 {
        return None;
    }
    let mut pos = 4;
    let mut out = Vec::new();
    let next = |pos: &mut usize| -> Option<Bytes> {
        let len = i32::from_be_bytes(b.get(*pos..*pos + 4)?.try_into().ok()?);
        *pos += 4;
        if len < 0 {
            return None;
        }
        let s = Bytes::copy_from_slice(b.get(*pos..*pos + len as usize)?);
        *pos += len as usize;
        Some(s)
    };
    for _ in 0..n {
        let k = next(&mut pos)?;
        let v = next(&mut pos)?;
        out.push((k, v));
    }
    (pos == b.len()).then_some(out)
}

/// The `[applied]` column of a conditional statement's result.
fn applied_spec(table: &TableMetadata) -> super::ColumnSpec {
    super::ColumnSpec {
        keyspace: table.keyspace.clone(),
        table: table.name.clone(),
        name: "[applied]".to_string(),
        ty: ColumnType::Boolean,
    }
}

/// The row a conditional statement's `IF` looks at, found in the rows read
/// before the write.
struct Conditioned<'e> {
    pk_parts: Vec<Bytes>,
    token: i64,
    ck: Option<Clustering>,
    row: Option<&'e Row>,
    static_row: Option<&'e Row>,
    /// The conditions are on static columns only (no clustering given).
    static_cond: bool,
}

impl<'e> Conditioned<'e> {
    fn row_ref(&self, ctx: &EvalCtx<'_>) -> super::selection::RowRef<'_> {
        super::selection::RowRef {
            pk: &self.pk_parts,
            token: self.token,
            clustering: self.ck.as_deref(),
            static_row: self.static_row,
            row: self.row,
            now: now_seconds(ctx.now_micros),
        }
    }
}

impl ModificationStatement {
    fn locate_conditioned<'e>(
        &self,
        ctx: &EvalCtx<'_>,
        existing: &'e Existing,
    ) -> Result<Conditioned<'e>, ErrorResponse> {
        let table = &*self.table;
        let keys = self.restrictions.partition_keys(table, ctx)?;
        let [comps] = &keys[..] else {
            return Err(invalid(
                "IN on the partition key is not supported with conditional updates",
            ));
        };
        let key = partition_key(comps)?;
        let schema = engine_schema(table);
        let part = existing.partition(&key);
        let static_row = part
            .and_then(|p| p.static_row.as_ref())
            .filter(|r| !r.columns.is_empty());
        let (ck, row): (Option<Clustering>, Option<&Row>) = if table.clustering_key_len == 0 {
            (Some(Vec::new()), existing.row(&schema, &key, &Vec::new()))
        } else if self.static_only && !self.restrictions.has_clustering_restrictions {
            (None, None)
        } else {
            let cks = self.restrictions.full_clusterings(table, ctx)?;
            match &cks[..] {
                [ck] if ck.len() == table.clustering_key_len => {
                    (Some(ck.clone()), existing.row(&schema, &key, ck))
                }
                _ => return Err(invalid("Some clustering keys are missing")),
            }
        };
        Ok(Conditioned {
            pk_parts: comps.clone(),
            token: key.token,
            static_cond: self.static_only && ck.is_none(),
            ck,
            row,
            static_row,
        })
    }

    /// The columns this statement's `IF` names, in order, without
    /// repeats; `None` for `IF EXISTS` / `IF NOT EXISTS` (and no `IF`).
    pub fn condition_columns(&self) -> Option<Vec<usize>> {
        match &self.lwt {
            Lwt::Conditions(conds) => {
                let mut out: Vec<usize> = Vec::new();
                for (idx, ..) in conds {
                    if !out.contains(idx) {
                        out.push(*idx);
                    }
                }
                Some(out)
            }
            _ => None,
        }
    }

    /// For the result of a failed conditional batch: the clustering of the
    /// row this statement's `IF` looked at and its current values of
    /// `columns` (table column indexes), or `None` if that row holds no data.
    pub fn conditioned_row(
        &self,
        ctx: &EvalCtx<'_>,
        existing: &Existing,
        columns: &[usize],
    ) -> Result<Option<(Option<Clustering>, Vec<Option<Bytes>>)>, ErrorResponse> {
        use super::selection::{CompiledSelection, Sel};
        if self.json.is_some() {
            let (inner, values) = self.json_inner(ctx)?;
            let ictx = EvalCtx {
                values: &values,
                now_micros: ctx.now_micros,
            };
            return inner.conditioned_row(&ictx, existing, columns);
        }
        let table = &*self.table;
        let loc = self.locate_conditioned(ctx, existing)?;
        let has_data = if loc.static_cond {
            loc.static_row.is_some()
        } else {
            loc.row.is_some()
        };
        if !has_data {
            return Ok(None);
        }
        let items = columns
            .iter()
            .map(|&idx| {
                let c = &table.columns[idx];
                (
                    Sel::Column(idx),
                    super::ColumnSpec {
                        keyspace: table.keyspace.clone(),
                        table: table.name.clone(),
                        name: c.name.clone(),
                        ty: c.ty.clone(),
                    },
                )
            })
            .collect();
        let selection = CompiledSelection {
            items,
            is_aggregate: false,
            is_wildcard: false,
        };
        let values = selection.row(table, &loc.row_ref(ctx))?;
        Ok(Some((loc.ck.clone(), values)))
    }
}

impl ModificationStatement {
    /// Checks the condition of a lightweight transaction against the rows
    /// read before; returns whether it applies and the result set Cassandra
    /// sends back (`[applied]`, plus the current values when not applied).
    pub fn check_conditions(
        &self,
        ctx: &EvalCtx<'_>,
        existing: &Existing,
    ) -> Result<(bool, super::ResultSet), ErrorResponse> {
        use super::selection::{CompiledSelection, Sel};
        if self.json.is_some() {
            let (inner, values) = self.json_inner(ctx)?;
            let ictx = EvalCtx {
                values: &values,
                now_micros: ctx.now_micros,
            };
            return inner.check_conditions(&ictx, existing);
        }
        let table = &*self.table;
        let loc = self.locate_conditioned(ctx, existing)?;
        let rref = loc.row_ref(ctx);
        let (static_row, row, static_cond) = (loc.static_row, loc.row, loc.static_cond);
        let exists = if static_cond {
            static_row.is_some()
        } else {
            row.is_some()
        };

        let (applied, selection) = match &self.lwt {
            Lwt::None => return Ok((true, super::ResultSet::default())),
            Lwt::IfNotExists => (
                !exists,
                CompiledSelection::compile(table, &ast::Selection::Star)?,
            ),
            Lwt::IfExists => (
                exists,
                CompiledSelection::compile(table, &ast::Selection::Star)?,
            ),
            Lwt::Conditions(conds) => {
                let mut ok = true;
                for (idx, elem, field, op, value) in conds {
                    if !self.condition_holds(&rref, *idx, elem.as_ref(), *field, *op, value, ctx)? {
                        ok = false;
                    }
                }
                let mut seen = Vec::new();
                let mut items = Vec::new();
                for (idx, ..) in conds {
                    if !seen.contains(idx) {
                        seen.push(*idx);
                        let c = &table.columns[*idx];
                        items.push((
                            Sel::Column(*idx),
                            super::ColumnSpec {
                                keyspace: table.keyspace.clone(),
                                table: table.name.clone(),
                                name: c.name.clone(),
                                ty: c.ty.clone(),
                            },
                        ));
                    }
                }
                (
                    ok,
                    CompiledSelection {
                        items,
                        is_aggregate: false,
                        is_wildcard: false,
                    },
                )
            }
        };
        let flag = |b: bool| Some(Bytes::copy_from_slice(&[u8::from(b)]));
        let mut rs = super::ResultSet {
            columns: vec![applied_spec(table)],
            rows: vec![vec![flag(applied)]],
            paging_state: None,
        };
        let has_data = if static_cond {
            static_row.is_some()
        } else {
            row.is_some() || (static_row.is_some() && matches!(self.lwt, Lwt::Conditions(_)))
        };
        if !applied && has_data {
            let values = selection.row(table, &rref)?;
            rs.columns
                .extend(selection.items.into_iter().map(|(_, s)| s));
            rs.rows[0].extend(values);
        }
        Ok((applied, rs))
    }

    fn condition_holds(
        &self,
        r: &super::selection::RowRef<'_>,
        idx: usize,
        elem: Option<&Term>,
        field: Option<usize>,
        op: Operator,
        value: &Term,
        ctx: &EvalCtx<'_>,
    ) -> Result<bool, ErrorResponse> {
        let table = &*self.table;
        let col = &table.columns[idx];
        let whole = r.value(table, idx);
        let (current, ty): (Option<Bytes>, ColumnType) = match elem {
            None => match (field, unfrozen(&col.ty)) {
                (Some(i), ColumnType::Udt { fields, .. }) => {
                    // Fields missing at the end of a stored value (added by ALTER
                    // TYPE later) are null.
                    let current = whole
                        .as_deref()
                        .and_then(super::restrictions::split_tuple_fields)
                        .and_then(|f| f.get(i).cloned().flatten());
                    (current, fields[i].1.clone())
                }
                _ => (whole, col.ty.clone()),
            },
            Some(e) => match unfrozen(&col.ty) {
                ColumnType::List(vt) => {
                    let i = list_index(e, ctx, &col.name)?;
                    let items = whole
                        .as_deref()
                        .and_then(split_collection)
                        .unwrap_or_default();
                    (
                        usize::try_from(i).ok().and_then(|i| items.get(i).cloned()),
                        (**vt).clone(),
                    )
                }
                ColumnType::Map(kt, vt) => {
                    let k = match eval(e, kt, ctx)? {
                        Evaluated::Value(b) => b,
                        _ => {
                            return Err(invalid(format!(
                                "Invalid null value for map key of {}",
                                col.name
                            )))
                        }
                    };
                    let ktype = key_type(kt);
                    let pairs = whole.as_deref().and_then(split_map).unwrap_or_default();
                    (
                        pairs
                            .into_iter()
                            .find(|(pk, _)| ktype.compare(pk, &k).is_eq())
                            .map(|(_, v)| v),
                        (**vt).clone(),
                    )
                }
                _ => {
                    return Err(invalid(format!(
                        "Invalid element access syntax for non-collection column {}",
                        col.name
                    )))
                }
            },
        };
        let kt = key_type(&ty);
        let eq = |a: &Option<Bytes>, b: &Option<Bytes>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => kt.compare(a, b).is_eq(),
            _ => false,
        };
        let one = |t: &Term| -> Result<Option<Bytes>, ErrorResponse> {
            match eval(t, &ty, ctx)? {
                Evaluated::Value(b) => Ok(Some(b)),
                Evaluated::Null => Ok(None),
                Evaluated::Unset => Err(invalid(format!(
                    "Invalid 'unset' value in condition on {}",
                    col.name
                ))),
            }
        };
        Ok(match op {
            Operator::In => {
                let candidates: Vec<Option<Bytes>> = match value {
                    Term::Tuple(items) | Term::List(items) => {
                        items.iter().map(one).collect::<Result<_, _>>()?
                    }
                    t => match eval(t, &ColumnType::List(Box::new(ty.clone())), ctx)? {
                        Evaluated::Value(b) => split_collection(&b)
                            .unwrap_or_default()
                            .into_iter()
                            .map(Some)
                            .collect(),
                        _ => {
                            return Err(invalid(format!(
                                "Invalid null list in IN condition on {}",
                                col.name
                            )))
                        }
                    },
                };
                candidates.iter().any(|c| eq(&current, c))
            }
            Operator::Eq => eq(&current, &one(value)?),
            Operator::Neq => !eq(&current, &one(value)?),
            Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => {
                let Some(expected) = one(value)? else {
                    let sym = match op {
                        Operator::Lt => "<",
                        Operator::Lte => "<=",
                        Operator::Gt => ">",
                        _ => ">=",
                    };
                    return Err(invalid(format!(
                        "Invalid comparison with null for operator \"{sym}\""
                    )));
                };
                let Some(cur) = current else { return Ok(false) };
                let o = kt.compare(&cur, &expected);
                match op {
                    Operator::Lt => o.is_lt(),
                    Operator::Lte => o.is_le(),
                    Operator::Gt => o.is_gt(),
                    _ => o.is_ge(),
                }
            }
            _ => {
                return Err(invalid(format!(
                    "Unsupported operator in IF condition on {}",
                    col.name
                )))
            }
        })
    }
}

impl ModificationStatement {
    /// `INSERT JSON`: decodes the object and prepares the equivalent
    /// `INSERT INTO t (cols) VALUES (?, ...)` with its bound values.
    fn json_inner(
        &self,
        ctx: &EvalCtx<'_>,
    ) -> Result<(ModificationStatement, Vec<proto::types::Value>), ErrorResponse> {
        use crate::cql3::values::{from_json_value, parse_json, Json};
        use proto::types::Value;
        let Some((term, default_unset)) = &self.json else {
            return Err(ErrorResponse::server("internal error: not an INSERT JSON"));
        };
        let table = &*self.table;
        let text = match eval(term, &ColumnType::Text, ctx)? {
            Evaluated::Value(b) => String::from_utf8(b.to_vec())
                .map_err(|_| invalid("Could not decode JSON string: invalid UTF-8"))?,
            _ => return Err(invalid("Got null for INSERT JSON values")),
        };
        let members = match parse_json(&text) {
            Ok(Json::Object(m)) => m,
            Ok(_) => {
                return Err(invalid(format!(
                    "Could not decode JSON string as a map: {text}"
                )))
            }
            Err(e) => {
                return Err(invalid(format!(
                    "Could not decode JSON string as a map: {e}. (String was: {text})"
                )))
            }
        };
        let mut given: Vec<Option<Value>> = vec![None; table.columns.len()];
        for (name, j) in &members {
            let key = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                Some(quoted) => quoted.to_string(),
                None => name.to_lowercase(),
            };
            let Some(idx) = table.column_index(&key) else {
                return Err(invalid(format!(
                    "JSON values map contains unrecognized column: {key}"
                )));
            };
            let col = &table.columns[idx];
            let v = from_json_value(j, &col.ty)
                .map_err(|e| invalid(format!("Error decoding JSON value for {}: {e}", col.name)))?;
            given[idx] = Some(match v {
                Some(v) => {
                    let mut b = Vec::new();
                    proto::value::serialize(&v, &mut b);
                    Value::Bytes(Bytes::from(b))
                }
                None => Value::Null,
            });
        }
        let mut columns = Vec::new();
        let mut values = Vec::new();
        let mut terms = Vec::new();
        for (idx, col) in table.columns.iter().enumerate() {
            let v = match given[idx].take() {
                Some(v) => v,
                None if matches!(
                    col.kind,
                    ColumnKind::PartitionKey(_) | ColumnKind::Clustering(_)
                ) =>
                {
                    return Err(invalid(format!(
                        "Invalid null value in condition for column {}",
                        col.name
                    )))
                }
                None if *default_unset => continue,
                None => Value::Null,
            };
            terms.push(Term::Bind(ast::BindMarker {
                index: values.len(),
                name: None,
            }));
            columns.push(col.name.clone());
            values.push(v);
        }
        let lit = |n: i64| Term::Literal(ast::Literal::Integer(n.to_string()));
        let timestamp = match &self.timestamp {
            Some(t) => eval_i64(t, ctx, "timestamp")?.map(lit),
            None => None,
        };
        let ttl = match &self.ttl {
            Some(t) => eval_ttl(t, ctx)?.map(|v| lit(v as i64)),
            None => None,
        };
        let insert = ast::Insert {
            table: ast::QualifiedName {
                keyspace: Some(table.keyspace.clone()),
                name: table.name.clone(),
            },
            columns,
            values: terms,
            json: None,
            json_default_unset: false,
            if_not_exists: matches!(self.lwt, Lwt::IfNotExists),
            using: ast::Using::default(),
        };
        let markers = vec![None; values.len()];
        let mut binds = BindCollector::new(&table.keyspace, &table.name, &markers);
        let mut inner =
            ModificationStatement::prepare_insert(self.table.clone(), &insert, &mut binds)?;
        inner.timestamp = timestamp;
        inner.ttl = ttl;
        Ok((inner, values))
    }
}

impl ModificationStatement {
    /// Executes a statement that reads before it writes (IF conditions,
    /// counters, list element operations): the read, the check and the
    /// write of each partition are one operation on the shard that owns
    /// it (`StorageProxy::read_modify_write`), wherever the request
    /// arrived. Returns the result set of a conditional statement.
    pub async fn execute_read_write(
        &self,
        proxy: &crate::service::storage_proxy::StorageProxy,
        ks: &crate::schema::KeyspaceMetadata,
        ctx: &EvalCtx<'_>,
        ts: i64,
        cl: proto::consistency::Consistency,
        serial: proto::consistency::Consistency,
    ) -> Result<Option<super::ResultSet>, ErrorResponse> {
        let keys = self.partition_keys(ctx)?;
        let conditional = !matches!(self.lwt, Lwt::None);
        let ordered = conditional || self.table.is_counter;
        let stmt = Arc::new(self.clone());
        let values: Arc<Vec<proto::types::Value>> = Arc::new(ctx.values.to_vec());
        let now_micros = ctx.now_micros;
        let mut result = None;
        for key in keys {
            let (s, v, k) = (stmt.clone(), values.clone(), key.clone());
            let rs = proxy
                .read_modify_write(
                    ks,
                    &self.table,
                    key,
                    now_seconds(now_micros),
                    cl,
                    serial,
                    crate::service::storage_proxy::WriteType::of_read_write(
                        conditional,
                        self.table.is_counter,
                    ),
                    move |current| {
                        let ctx = EvalCtx {
                            values: &v,
                            now_micros,
                        };
                        let ts = if ordered {
                            after_current(ts, current.as_ref())
                        } else {
                            ts
                        };
                        let existing = Existing {
                            parts: current.into_iter().collect(),
                        };
                        let mut rs = None;
                        if conditional {
                            let (applied, r) = s.check_conditions(&ctx, &existing)?;
                            if !applied {
                                return Ok((Vec::new(), Some(r)));
                            }
                            rs = Some(r);
                        }
                        let mut muts = Vec::new();
                        s.mutations(&ctx, ts, Some(&existing), &mut muts)?;
                        muts.retain(|m| m.update.key == k);
                        Ok((muts, rs))
                    },
                )
                .await?;
            if rs.is_some() {
                result = rs;
            }
        }
        Ok(result)
    }
}

/// The timestamp of a write decided by a read (a condition, a counter's new
/// value): later than everything read, so the write wins over what it was
/// computed from even when coordinators' clocks disagree (the role of the
/// Paxos ballot in Cassandra).
pub fn after_current(ts: i64, current: Option<&PartitionUpdate>) -> i64 {
    let Some(p) = current else { return ts };
    let mut max = i64::MIN;
    let mut row = |r: &Row| {
        if let Some(l) = &r.liveness {
            max = max.max(l.timestamp);
        }
        if let Some(d) = &r.deletion {
            max = max.max(d.timestamp);
        }
        for (_, data) in &r.columns {
            match data {
                ColumnData::Simple(c) => max = max.max(c.timestamp),
                ColumnData::Complex { tombstone, cells } => {
                    if let Some(t) = tombstone {
                        max = max.max(t.timestamp);
                    }
                    for (_, c) in cells {
                        max = max.max(c.timestamp);
                    }
                }
            }
        }
    };
    if let Some(s) = &p.static_row {
        row(s);
    }
    for (_, r) in &p.rows {
        row(r);
    }
    if let Some(t) = &p.tombstone {
        max = max.max(t.timestamp);
    }
    for rt in &p.range_tombstones {
        max = max.max(rt.deletion.timestamp);
    }
    if max == i64::MIN || ts > max {
        ts
    } else {
        max.saturating_add(1)
    }
}
