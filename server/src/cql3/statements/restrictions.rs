//! WHERE clauses: which partitions, which clustering ranges, which filters.
//!
//! Mirrors Cassandra's `StatementRestrictions`: partition key columns must be
//! restricted by `=`/`IN` together (or by `token()`), clustering columns form
//! a prefix of `=`/`IN` optionally ended by one slice, anything else is a
//! filter that needs `ALLOW FILTERING`.

use bytes::Bytes;
use engine::mutation::{Bound, Clustering, ClusteringRange};
use engine::schema::TableSchema;
use proto::error::ErrorResponse;
use proto::value::ColumnType;

use super::{cartesian, sort_ranges, BindCollector};
use crate::cql3::ast::{Operator, Relation, Term};
use crate::cql3::eval::{eval, EvalCtx, Evaluated};
use crate::schema::{ColumnKind, TableMetadata};

/// The values one key column may take.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSet {
    Eq(Term),
    In(Vec<Term>),
    /// `IN ?` bound to a list.
    InMarker(Term),
}

impl ValueSet {
    /// Evaluates to the (deduplicated, unsorted) list of values.
    pub fn values(
        &self,
        column: &str,
        ty: &ColumnType,
        ctx: &EvalCtx<'_>,
    ) -> Result<Vec<Bytes>, ErrorResponse> {
        let one = |t: &Term| -> Result<Bytes, ErrorResponse> {
            match eval(t, ty, ctx)? {
                Evaluated::Value(b) => Ok(b),
                Evaluated::Null => Err(ErrorResponse::invalid(format!(
                    "Invalid null value in condition for column {column}"
                ))),
                Evaluated::Unset => Err(ErrorResponse::invalid(format!(
                    "Invalid unset value for column {column}"
                ))),
            }
        };
        let mut out = match self {
            ValueSet::Eq(t) => vec![one(t)?],
            ValueSet::In(ts) => ts.iter().map(one).collect::<Result<Vec<_>, _>>()?,
            ValueSet::InMarker(t) => {
                let list_ty = ColumnType::List(Box::new(ty.clone()));
                match eval(t, &list_ty, ctx)? {
                    Evaluated::Value(b) => split_collection(&b).ok_or_else(|| {
                        ErrorResponse::invalid(format!("Invalid list value for IN on {column}"))
                    })?,
                    Evaluated::Null => {
                        return Err(ErrorResponse::invalid(format!(
                            "Invalid null value for IN restriction on {column}"
                        )))
                    }
                    Evaluated::Unset => {
                        return Err(ErrorResponse::invalid(format!(
                            "Invalid unset value for column {column}"
                        )))
                    }
                }
            }
        };
        let mut seen = std::collections::HashSet::new();
        out.retain(|b| seen.insert(b.clone()));
        Ok(out)
    }

    fn note(&self, binds: &mut BindCollector<'_>, column: &str, ty: &ColumnType) {
        match self {
            ValueSet::Eq(t) => binds.note(t, column, ty),
            ValueSet::In(ts) => ts.iter().for_each(|t| binds.note(t, column, ty)),
            ValueSet::InMarker(t) => binds.note(
                t,
                &format!("in({column})"),
                &ColumnType::List(Box::new(ty.clone())),
            ),
        }
    }
}

/// Splits a serialised list/set (`[int n]` then `[int len][bytes]`...).
pub fn split_collection(b: &[u8]) -> Option<Vec<Bytes>> {
    let n = i32::from_be_bytes(b.get(0..4)?.try_into().ok()?);
    if n < 0 {
        return None;
    }
    let mut pos = 4;
    let mut out = Vec::with_capacity((n as usize).min(b.len() / 4 + 1));
    for _ in 0..n {
        let len = i32::from_be_bytes(b.get(pos..pos + 4)?.try_into().ok()?);
        pos += 4;
        if len < 0 {
            return None;
        }
        let len = len as usize;
        out.push(Bytes::copy_from_slice(b.get(pos..pos + len)?));
        pos += len;
    }
    (pos == b.len()).then_some(out)
}

/// A bound of a slice: the term and whether it is inclusive.
pub type SliceBound = Option<(Term, bool)>;

/// How the partitions of a query are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionRestriction {
    /// Every partition key column restricted by `=` or `IN`.
    Keys(Vec<ValueSet>),
    /// `token(pk...) > x AND token(pk...) <= y`.
    Token { start: SliceBound, end: SliceBound },
    /// A scan of every partition.
    None,
}

/// The clustering part of a WHERE clause.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusteringRestriction {
    /// `=`/`IN` on the first clustering columns.
    pub prefix: Vec<ValueSet>,
    /// `(a, b) = (..)` / `(a, b) IN (..)`: full tuples for the first columns.
    pub multi_eq: Option<(usize, ValueSet)>,
    /// A slice on the column after the prefix (`(column position, lo, hi)`).
    pub slice: Option<(usize, SliceBound, SliceBound)>,
    /// `(a, b) > (1, 2)`: slice over the first `n` columns.
    pub multi_slice: Option<(usize, SliceBound, SliceBound)>,
}

/// A restriction checked row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Index into `TableMetadata::columns`.
    pub column: usize,
    pub op: Operator,
    pub value: Term,
    /// Type the value is evaluated as.
    pub value_type: ColumnType,
}

/// A WHERE clause resolved against a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Restrictions {
    pub partition: PartitionRestriction,
    pub clustering: ClusteringRestriction,
    pub filters: Vec<Filter>,
    /// Whether the query needs `ALLOW FILTERING`, and why.
    pub needs_filtering: bool,
    /// Whether any clustering column is restricted.
    pub has_clustering_restrictions: bool,
}

fn invalid(msg: impl Into<String>) -> ErrorResponse {
    ErrorResponse::invalid(msg)
}

fn set_bound(
    b: &mut SliceBound,
    t: &Term,
    incl: bool,
    col: &str,
    start: bool,
) -> Result<(), ErrorResponse> {
    if b.is_some() {
        return Err(invalid(format!(
            "More than one restriction was found for the {} bound on {col}",
            if start { "start" } else { "end" }
        )));
    }
    *b = Some((t.clone(), incl));
    Ok(())
}

impl Restrictions {
    /// Resolves `relations` for `table`, recording bind marker receivers.
    pub fn analyze(
        table: &TableMetadata,
        relations: &[Relation],
        binds: &mut BindCollector<'_>,
    ) -> Result<Restrictions, ErrorResponse> {
        let npk = table.partition_key_len;
        let nck = table.clustering_key_len;
        let mut pk: Vec<Option<ValueSet>> = vec![None; npk];
        let mut pk_filters = false;
        let mut token: (SliceBound, SliceBound) = (None, None);
        let mut has_token = false;
        let mut ck_eq: Vec<Option<ValueSet>> = vec![None; nck];
        let mut ck_slice: Vec<(SliceBound, SliceBound)> = vec![(None, None); nck];
        let mut multi_eq = None;
        let mut multi_slice: Option<(usize, SliceBound, SliceBound)> = None;
        let mut filters = Vec::new();

        let column_idx = |name: &str| -> Result<usize, ErrorResponse> {
            table.column_index(name).ok_or_else(|| {
                invalid(format!(
                    "Undefined column name {name} in table {}.{}",
                    table.keyspace, table.name
                ))
            })
        };

        for rel in relations {
            match rel {
                Relation::Single { column, op, value } => {
                    let idx = column_idx(column)?;
                    let col = &table.columns[idx];
                    match (col.kind, op) {
                        (ColumnKind::PartitionKey(p), Operator::Eq | Operator::In) => {
                            if pk[p].is_some() {
                                return Err(invalid(format!(
                                    "{column} cannot be restricted by more than one relation if it includes an Equal"
                                )));
                            }
                            let vs = value_set(*op, value);
                            vs.note(binds, column, &col.ty);
                            pk[p] = Some(vs);
                        }
                        (ColumnKind::Clustering(p), Operator::Eq | Operator::In) => {
                            if ck_eq[p].is_some() || ck_slice[p] != (None, None) {
                                return Err(invalid(format!(
                                    "{column} cannot be restricted by more than one relation if it includes an Equal"
                                )));
                            }
                            let vs = value_set(*op, value);
                            vs.note(binds, column, &col.ty);
                            ck_eq[p] = Some(vs);
                        }
                        (ColumnKind::Clustering(p), Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte) => {
                            if ck_eq[p].is_some() {
                                return Err(invalid(format!(
                                    "{column} cannot be restricted by both an equality and an inequality relation"
                                )));
                            }
                            binds.note(value, column, &col.ty);
                            let (lo, hi) = &mut ck_slice[p];
                            match op {
                                Operator::Gt => set_bound(lo, value, false, column, true)?,
                                Operator::Gte => set_bound(lo, value, true, column, true)?,
                                Operator::Lt => set_bound(hi, value, false, column, false)?,
                                _ => set_bound(hi, value, true, column, false)?,
                            }
                        }
                        (ColumnKind::PartitionKey(_), Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte) => {
                            // Cassandra only allows this with ALLOW FILTERING.
                            binds.note(value, column, &col.ty);
                            pk_filters = true;
                            filters.push(Filter { column: idx, op: *op, value: value.clone(), value_type: col.ty.clone() });
                        }
                        (_, Operator::Contains) | (_, Operator::ContainsKey) => {
                            let elem = match (super::unfrozen(&col.ty), op) {
                                (ColumnType::List(e) | ColumnType::Set(e), Operator::Contains) => (**e).clone(),
                                (ColumnType::Map(_, v), Operator::Contains) => (**v).clone(),
                                (ColumnType::Map(k, _), Operator::ContainsKey) => (**k).clone(),
                                _ => {
                                    return Err(invalid(format!(
                                        "Cannot use {} on non-collection column {column}",
                                        if *op == Operator::Contains { "CONTAINS" } else { "CONTAINS KEY" }
                                    )))
                                }
                            };
                            binds.note(value, column, &elem);
                            filters.push(Filter { column: idx, op: *op, value: value.clone(), value_type: elem });
                        }
                        (_, Operator::Like) => {
                            return Err(invalid(format!(
                                "LIKE restriction is only supported on properly indexed columns. {column} LIKE {value} is not valid."
                            )))
                        }
                        (_, Operator::Neq) => {
                            if !matches!(col.kind, ColumnKind::Regular | ColumnKind::Static) {
                                return Err(invalid(format!(
                                    "Unsupported \"!=\" relation: {column} != {value}"
                                )));
                            }
                            binds.note(value, column, &col.ty);
                            filters.push(Filter { column: idx, op: *op, value: value.clone(), value_type: col.ty.clone() });
                        }
                        (_, Operator::In) => {
                            let list_ty = ColumnType::List(Box::new(col.ty.clone()));
                            match value {
                                Term::Tuple(items) => items.iter().for_each(|t| binds.note(t, column, &col.ty)),
                                t => binds.note(t, &format!("in({column})"), &list_ty),
                            }
                            filters.push(Filter { column: idx, op: *op, value: value.clone(), value_type: col.ty.clone() });
                        }
                        (_, op) => {
                            if matches!(op, Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte)
                                && crate::schema::types::references_duration(&col.ty)
                            {
                                let what = match super::unfrozen(&col.ty) {
                                    ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(_, _) => "collections containing durations",
                                    ColumnType::Tuple(_) => "tuples containing durations",
                                    ColumnType::Udt { .. } => "UDTs containing durations",
                                    _ => "duration columns",
                                };
                                return Err(invalid(format!("Slice restrictions are not supported on {what}")));
                            }
                            binds.note(value, column, &col.ty);
                            filters.push(Filter { column: idx, op: *op, value: value.clone(), value_type: col.ty.clone() });
                        }
                    }
                }
                Relation::Token { columns, op, value } => {
                    let pk_names: Vec<&str> = table
                        .partition_key()
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    if columns
                        .iter()
                        .map(String::as_str)
                        .ne(pk_names.iter().copied())
                    {
                        return Err(invalid("The token() function must be applied to all partition key components or none of them"));
                    }
                    let folded = fold_token_call(value, table)?;
                    let value = &folded;
                    binds.note(value, "partition key token", &ColumnType::BigInt);
                    has_token = true;
                    match op {
                        Operator::Gt => set_bound(&mut token.0, value, false, "token", true)?,
                        Operator::Gte => set_bound(&mut token.0, value, true, "token", true)?,
                        Operator::Lt => set_bound(&mut token.1, value, false, "token", false)?,
                        Operator::Lte => set_bound(&mut token.1, value, true, "token", false)?,
                        Operator::Eq => {
                            set_bound(&mut token.0, value, true, "token", true)?;
                            set_bound(&mut token.1, value, true, "token", false)?;
                        }
                        _ => return Err(invalid("Unsupported operator for token() restriction")),
                    }
                }
                Relation::MultiColumn { columns, op, value } => {
                    // Must be the first clustering columns, in order.
                    for (i, name) in columns.iter().enumerate() {
                        let idx = column_idx(name)?;
                        match table.columns[idx].kind {
                            ColumnKind::Clustering(p) if p == i => {}
                            ColumnKind::Clustering(_) => {
                                return Err(invalid(format!(
                                    "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: {}",
                                    fmt_rel_columns(columns)
                                )))
                            }
                            _ => {
                                return Err(invalid(format!(
                                    "Multi-column relations can only be applied to clustering columns but was applied to: {name}"
                                )))
                            }
                        }
                    }
                    let n = columns.len();
                    let tuple_ty = ColumnType::Tuple(
                        table.clustering_key()[..n]
                            .iter()
                            .map(|c| c.ty.clone())
                            .collect(),
                    );
                    let label = fmt_rel_columns(columns);
                    match op {
                        Operator::Eq | Operator::In => {
                            if multi_eq.is_some() {
                                return Err(invalid(format!("{label} cannot be restricted by more than one relation if it includes an Equal")));
                            }
                            let vs = value_set(*op, value);
                            vs.note(binds, &label, &tuple_ty);
                            multi_eq = Some((n, vs));
                        }
                        Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => {
                            binds.note(value, &label, &tuple_ty);
                            let entry = multi_slice.get_or_insert((n, None, None));
                            entry.0 = entry.0.max(n);
                            match op {
                                Operator::Gt => {
                                    set_bound(&mut entry.1, value, false, &label, true)?
                                }
                                Operator::Gte => {
                                    set_bound(&mut entry.1, value, true, &label, true)?
                                }
                                Operator::Lt => {
                                    set_bound(&mut entry.2, value, false, &label, false)?
                                }
                                _ => set_bound(&mut entry.2, value, true, &label, false)?,
                            }
                        }
                        _ => {
                            return Err(invalid(format!(
                                "Unsupported operator in multi-column relation on {label}"
                            )))
                        }
                    }
                }
                Relation::IsNotNull { column } => {
                    column_idx(column)?;
                    // Cassandra 4.x: "Unsupported restriction: " + relation.
                    return Err(invalid(format!(
                        "Unsupported restriction: {column} IS NOT NULL"
                    )));
                }
            }
        }

        // Partition key: all or nothing.
        let restricted = pk.iter().filter(|v| v.is_some()).count();
        let mut needs_filtering = pk_filters;
        let partition = if has_token {
            if restricted > 0 {
                return Err(invalid(
                    "Columns of the partition key cannot be restricted by both token() and = or IN",
                ));
            }
            PartitionRestriction::Token {
                start: token.0,
                end: token.1,
            }
        } else if restricted == npk && !pk_filters {
            PartitionRestriction::Keys(pk.into_iter().map(|v| v.expect("all restricted")).collect())
        } else {
            if restricted > 0 {
                needs_filtering = true;
                for (p, vs) in pk.into_iter().enumerate() {
                    if let Some(vs) = vs {
                        let (op, value) = match vs {
                            ValueSet::Eq(t) => (Operator::Eq, t),
                            ValueSet::In(ts) => (Operator::In, Term::Tuple(ts)),
                            ValueSet::InMarker(t) => (Operator::In, t),
                        };
                        filters.push(Filter {
                            column: p,
                            op,
                            value,
                            value_type: table.columns[p].ty.clone(),
                        });
                    }
                }
            }
            PartitionRestriction::None
        };

        // Clustering: a prefix of EQ/IN, then at most one slice; the rest filters.
        let mut clustering = ClusteringRestriction::default();
        let has_clustering_restrictions = ck_eq.iter().any(Option::is_some)
            || ck_slice.iter().any(|s| *s != (None, None))
            || multi_eq.is_some()
            || multi_slice.is_some();
        if multi_eq.is_some() || multi_slice.is_some() {
            if ck_eq.iter().any(Option::is_some) || ck_slice.iter().any(|s| *s != (None, None)) {
                return Err(invalid(
                    "Mixing single column relations and multi column relations on clustering columns is not allowed",
                ));
            }
            if multi_eq.is_some() && multi_slice.is_some() {
                return Err(invalid("Clustering columns cannot be restricted by both an equality and a slice in multi-column relations"));
            }
            clustering.multi_eq = multi_eq;
            clustering.multi_slice = multi_slice;
        } else {
            let mut i = 0;
            while i < nck {
                if let Some(vs) = ck_eq[i].take() {
                    clustering.prefix.push(vs);
                    i += 1;
                    continue;
                }
                let (lo, hi) = std::mem::take(&mut ck_slice[i]);
                if lo.is_some() || hi.is_some() {
                    clustering.slice = Some((i, lo, hi));
                    i += 1;
                }
                break;
            }
            // Anything restricted beyond the usable prefix is a filter.
            for p in i..nck {
                let name = &table.clustering_key()[p].name;
                let idx = table.partition_key_len + p;
                let ty = table.columns[idx].ty.clone();
                let mut pushed = false;
                if let Some(vs) = ck_eq[p].take() {
                    let (op, value) = match vs {
                        ValueSet::Eq(t) => (Operator::Eq, t),
                        ValueSet::In(ts) => (Operator::In, Term::Tuple(ts)),
                        ValueSet::InMarker(t) => (Operator::In, t),
                    };
                    filters.push(Filter {
                        column: idx,
                        op,
                        value,
                        value_type: ty.clone(),
                    });
                    pushed = true;
                }
                let (lo, hi) = std::mem::take(&mut ck_slice[p]);
                if let Some((t, incl)) = lo {
                    filters.push(Filter {
                        column: idx,
                        op: if incl { Operator::Gte } else { Operator::Gt },
                        value: t,
                        value_type: ty.clone(),
                    });
                    pushed = true;
                }
                if let Some((t, incl)) = hi {
                    filters.push(Filter {
                        column: idx,
                        op: if incl { Operator::Lte } else { Operator::Lt },
                        value: t,
                        value_type: ty.clone(),
                    });
                    pushed = true;
                }
                if pushed {
                    needs_filtering = true;
                    let _ = name;
                }
            }
        }
        if filters.iter().any(|f| {
            matches!(
                table.columns[f.column].kind,
                ColumnKind::Regular | ColumnKind::Static
            )
        }) {
            needs_filtering = true;
        }
        if matches!(
            partition,
            PartitionRestriction::None | PartitionRestriction::Token { .. }
        ) && has_clustering_restrictions
        {
            needs_filtering = true;
        }

        Ok(Restrictions {
            partition,
            clustering,
            filters,
            needs_filtering,
            has_clustering_restrictions,
        })
    }

    /// The first clustering column that a filter (not a slice) restricts,
    /// for Cassandra's "cannot be restricted as preceding column is not
    /// restricted" message.
    pub fn first_filtered_clustering<'t>(
        &self,
        table: &'t TableMetadata,
    ) -> Option<(&'t str, &'t str)> {
        let f = self
            .filters
            .iter()
            .find(|f| matches!(table.columns[f.column].kind, ColumnKind::Clustering(_)))?;
        let ColumnKind::Clustering(p) = table.columns[f.column].kind else {
            return None;
        };
        let prev = if p == 0 {
            ""
        } else {
            table.clustering_key()[p - 1].name.as_str()
        };
        Some((table.columns[f.column].name.as_str(), prev))
    }

    /// Evaluates the partition keys for `PartitionRestriction::Keys`.
    pub fn partition_keys(
        &self,
        table: &TableMetadata,
        ctx: &EvalCtx<'_>,
    ) -> Result<Vec<Vec<Bytes>>, ErrorResponse> {
        let PartitionRestriction::Keys(sets) = &self.partition else {
            return Ok(Vec::new());
        };
        let parts = sets
            .iter()
            .zip(table.partition_key())
            .map(|(vs, c)| vs.values(&c.name, &c.ty, ctx))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(cartesian(&parts))
    }

    /// Full clusterings for INSERT/UPDATE (every column restricted by =/IN).
    pub fn full_clusterings(
        &self,
        table: &TableMetadata,
        ctx: &EvalCtx<'_>,
    ) -> Result<Vec<Clustering>, ErrorResponse> {
        let parts = self.prefix_values(table, ctx)?;
        Ok(parts)
    }

    fn prefix_values(
        &self,
        table: &TableMetadata,
        ctx: &EvalCtx<'_>,
    ) -> Result<Vec<Clustering>, ErrorResponse> {
        let ck = table.clustering_key();
        if let Some((n, vs)) = &self.clustering.multi_eq {
            let tuple_ty = ColumnType::Tuple(ck[..*n].iter().map(|c| c.ty.clone()).collect());
            let label = ck[..*n]
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let tuples = vs.values(&label, &tuple_ty, ctx)?;
            return tuples
                .iter()
                .map(|t| {
                    split_tuple(t, *n)
                        .ok_or_else(|| invalid(format!("Invalid tuple value for ({label})")))
                })
                .collect();
        }
        let parts = self
            .clustering
            .prefix
            .iter()
            .zip(ck)
            .map(|(vs, c)| vs.values(&c.name, &c.ty, ctx))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(cartesian(&parts))
    }

    /// The clustering ranges to read, sorted in clustering order.
    pub fn clustering_ranges(
        &self,
        table: &TableMetadata,
        schema: &TableSchema,
        ctx: &EvalCtx<'_>,
    ) -> Result<Vec<ClusteringRange>, ErrorResponse> {
        let prefixes = self.prefix_values(table, ctx)?;
        let ck = table.clustering_key();
        let mut ranges = Vec::with_capacity(prefixes.len());
        if let Some((n, lo, hi)) = &self.clustering.multi_slice {
            let tuple_ty = ColumnType::Tuple(ck[..*n].iter().map(|c| c.ty.clone()).collect());
            let eval_tuple = |b: &SliceBound| -> Result<Option<(Clustering, bool)>, ErrorResponse> {
                let Some((t, incl)) = b else { return Ok(None) };
                match eval(t, &tuple_ty, ctx)? {
                    Evaluated::Value(v) => {
                        let parts =
                            split_tuple_prefix(&v).ok_or_else(|| invalid("Invalid tuple value"))?;
                        Ok(Some((parts, *incl)))
                    }
                    _ => Err(invalid("Invalid null value in multi-column slice")),
                }
            };
            let lo = eval_tuple(lo)?;
            let hi = eval_tuple(hi)?;
            let reversed = schema
                .clustering
                .first()
                .map(|c| c.reversed)
                .unwrap_or(false);
            if schema.clustering[..*n]
                .iter()
                .any(|c| c.reversed != reversed)
            {
                // Mixed ASC/DESC: the tuple order is not the storage order, so the
                // slice becomes several ranges (see `mixed_order_slice`).
                let lo = lo.as_ref().map(|(p, incl)| (p.as_slice(), *incl));
                let hi = hi.as_ref().map(|(p, incl)| (p.as_slice(), *incl));
                mixed_order_slice(schema, 0, &[], lo, hi, &mut ranges);
                return Ok(ranges);
            }
            let (s, e) = if reversed { (hi, lo) } else { (lo, hi) };
            let start = match s {
                None => Bound::Unbounded,
                Some((p, true)) => Bound::Inclusive(p),
                Some((p, false)) => Bound::Exclusive(p),
            };
            let end = match e {
                None => Bound::Unbounded,
                Some((p, true)) => Bound::Inclusive(p),
                Some((p, false)) => Bound::Exclusive(p),
            };
            let r = ClusteringRange { start, end };
            if !schema.range_is_empty(&r) {
                ranges.push(r);
            }
            return Ok(ranges);
        }
        for prefix in prefixes {
            let Some((pos, lo, hi)) = &self.clustering.slice else {
                ranges.push(if prefix.is_empty() {
                    ClusteringRange::full()
                } else {
                    ClusteringRange {
                        start: Bound::Inclusive(prefix.clone()),
                        end: Bound::Inclusive(prefix),
                    }
                });
                continue;
            };
            let col = &ck[*pos];
            let eval_bound = |b: &SliceBound| -> Result<Option<(Bytes, bool)>, ErrorResponse> {
                let Some((t, incl)) = b else { return Ok(None) };
                match eval(t, &col.ty, ctx)? {
                    Evaluated::Value(v) => Ok(Some((v, *incl))),
                    Evaluated::Null => Err(invalid(format!(
                        "Invalid null value in condition for column {}",
                        col.name
                    ))),
                    Evaluated::Unset => Err(invalid(format!(
                        "Invalid unset value for column {}",
                        col.name
                    ))),
                }
            };
            let lo = eval_bound(lo)?;
            let hi = eval_bound(hi)?;
            let (s, e) = if schema.clustering[*pos].reversed {
                (hi, lo)
            } else {
                (lo, hi)
            };
            let mk = |b: Option<(Bytes, bool)>| -> Bound {
                match b {
                    None if prefix.is_empty() => Bound::Unbounded,
                    None => Bound::Inclusive(prefix.clone()),
                    Some((v, incl)) => {
                        let mut p = prefix.clone();
                        p.push(v);
                        if incl {
                            Bound::Inclusive(p)
                        } else {
                            Bound::Exclusive(p)
                        }
                    }
                }
            };
            let r = ClusteringRange {
                start: mk(s),
                end: mk(e),
            };
            if !schema.range_is_empty(&r) {
                ranges.push(r);
            }
        }
        sort_ranges(schema, &mut ranges);
        Ok(ranges)
    }
}

/// A bound of a tuple slice: the components still to compare and whether the bound
/// itself is included.
type TupleBound<'a> = Option<(&'a [Bytes], bool)>;

/// Appends, in clustering order, the ranges holding the clusterings that start with
/// `prefix` and whose components from `i` on lie between `lo` and `hi`, compared as
/// CQL tuples (each component in its type's natural order, whatever the clustering
/// order). Used for multi-column slices over columns of mixed ASC/DESC order, where
/// Cassandra answers `(a, b) > (0, 1)` as `a > 0 OR (a = 0 AND b > 1)`: one range per
/// piece, each piece a prefix plus a slice on a single column.
fn mixed_order_slice(
    schema: &TableSchema,
    i: usize,
    prefix: &[Bytes],
    lo: TupleBound<'_>,
    hi: TupleBound<'_>,
    out: &mut Vec<ClusteringRange>,
) {
    // A bound whose components are all used up: the prefix equals it, so an
    // inclusive bound admits everything under the prefix and a strict one nothing.
    fn exhausted(b: TupleBound<'_>) -> Result<TupleBound<'_>, bool> {
        match b {
            Some(([], incl)) => Err(incl),
            b => Ok(b),
        }
    }
    let (lo, hi) = match (exhausted(lo), exhausted(hi)) {
        (Err(false), _) | (_, Err(false)) => return,
        (l, h) => (l.unwrap_or(None), h.unwrap_or(None)),
    };
    let with = |v: &Bytes| {
        let mut p = prefix.to_vec();
        p.push(v.clone());
        p
    };
    let whole = || {
        if prefix.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Inclusive(prefix.to_vec())
        }
    };
    if lo.is_none() && hi.is_none() {
        out.push(ClusteringRange {
            start: whole(),
            end: whole(),
        });
        return;
    }
    let Some(col) = schema.clustering.get(i) else {
        return;
    };
    let natural = |a: &[u8], b: &[u8]| {
        let o = schema.compare_component(i, a, b);
        if col.reversed {
            o.reverse()
        } else {
            o
        }
    };
    if let (Some((l, li)), Some((h, hi_incl))) = (lo, hi) {
        match natural(&l[0], &h[0]) {
            std::cmp::Ordering::Greater => return,
            std::cmp::Ordering::Equal => {
                let p = with(&l[0]);
                mixed_order_slice(
                    schema,
                    i + 1,
                    &p,
                    Some((&l[1..], li)),
                    Some((&h[1..], hi_incl)),
                    out,
                );
                return;
            }
            std::cmp::Ordering::Less => {}
        }
    }
    // In natural order: column i equal to lo's component (the rest compared further),
    // strictly between both components, equal to hi's component.
    let mut low_edge = Vec::new();
    if let Some((l, li)) = lo {
        mixed_order_slice(
            schema,
            i + 1,
            &with(&l[0]),
            Some((&l[1..], li)),
            None,
            &mut low_edge,
        );
    }
    let mut high_edge = Vec::new();
    if let Some((h, hi_incl)) = hi {
        mixed_order_slice(
            schema,
            i + 1,
            &with(&h[0]),
            None,
            Some((&h[1..], hi_incl)),
            &mut high_edge,
        );
    }
    let from = lo.map_or_else(whole, |(l, _)| Bound::Exclusive(with(&l[0])));
    let to = hi.map_or_else(whole, |(h, _)| Bound::Exclusive(with(&h[0])));
    let middle = if col.reversed {
        ClusteringRange {
            start: to,
            end: from,
        }
    } else {
        ClusteringRange {
            start: from,
            end: to,
        }
    };
    let middle = (!schema.range_is_empty(&middle)).then_some(middle);
    if col.reversed {
        out.extend(high_edge);
        out.extend(middle);
        out.extend(low_edge);
    } else {
        out.extend(low_edge);
        out.extend(middle);
        out.extend(high_edge);
    }
}

fn value_set(op: Operator, value: &Term) -> ValueSet {
    match (op, value) {
        (Operator::In, Term::Tuple(items)) => ValueSet::In(items.clone()),
        (Operator::In, Term::List(items)) => ValueSet::In(items.clone()),
        (Operator::In, t) => ValueSet::InMarker(t.clone()),
        (_, t) => ValueSet::Eq(t.clone()),
    }
}

fn fmt_rel_columns(columns: &[String]) -> String {
    format!("({})", columns.join(","))
}

/// Splits a serialised tuple of exactly `n` non-null components.
pub fn split_tuple(b: &[u8], n: usize) -> Option<Clustering> {
    let parts = split_tuple_prefix(b)?;
    (parts.len() == n).then_some(parts)
}

/// Splits a serialised tuple into its (non-null) components.
pub fn split_tuple_prefix(b: &[u8]) -> Option<Clustering> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < b.len() {
        let len = i32::from_be_bytes(b.get(pos..pos + 4)?.try_into().ok()?);
        pos += 4;
        if len < 0 {
            return None;
        }
        let len = len as usize;
        out.push(Bytes::copy_from_slice(b.get(pos..pos + len)?));
        pos += len;
    }
    Some(out)
}

/// Splits a serialised tuple or UDT into fields (`None` for null fields).
pub fn split_tuple_fields(b: &[u8]) -> Option<Vec<Option<Bytes>>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < b.len() {
        let len = i32::from_be_bytes(b.get(pos..pos + 4)?.try_into().ok()?);
        pos += 4;
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = len as usize;
        out.push(Some(Bytes::copy_from_slice(b.get(pos..pos + len)?)));
        pos += len;
    }
    Some(out)
}

/// `token(k) > token(1)`: the right side's `token(...)` of literal key
/// components is computed at prepare time (Murmur3 of the serialized
/// partition key), so the relation compares two tokens as Cassandra does.
/// Anything else is returned unchanged.
fn fold_token_call(value: &Term, table: &TableMetadata) -> Result<Term, ErrorResponse> {
    let Term::FunctionCall { name, args } = value else {
        return Ok(value.clone());
    };
    if name != "token" && name != "system.token" {
        return Ok(value.clone());
    }
    let pk = table.partition_key();
    if args.len() != pk.len() {
        return Err(invalid(format!(
            "Invalid number of arguments in call to function system.token: {} required but {} provided",
            pk.len(),
            args.len()
        )));
    }
    let ctx = crate::cql3::values::EvalContext::without_values();
    let mut parts = Vec::with_capacity(args.len());
    for (arg, col) in args.iter().zip(pk) {
        match crate::cql3::values::evaluate_term_for(arg, &col.name, &col.ty, &ctx) {
            Ok(crate::cql3::values::Evaluated::Value(b)) => parts.push(b),
            Ok(_) => {
                return Err(invalid(format!(
                    "Invalid null value for partition key part {} in token()",
                    col.name
                )))
            }
            Err(e) => {
                return Err(invalid(format!(
                    "Invalid argument for token() ({}): {e}; only literal key values are supported there",
                    col.name
                )))
            }
        }
    }
    let refs: Vec<&[u8]> = parts.iter().map(|b| &b[..]).collect();
    let token = crate::dht::murmur3::partition_key_token(&refs);
    Ok(Term::Literal(crate::cql3::ast::Literal::Integer(
        token.to_string(),
    )))
}
