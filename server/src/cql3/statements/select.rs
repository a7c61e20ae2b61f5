//! SELECT: restrictions → partitions and clustering ranges → rows →
//! selection, with LIMIT, PER PARTITION LIMIT, ORDER BY, DISTINCT, JSON,
//! aggregates and paging.

use std::sync::Arc;

use bytes::Bytes;
use engine::mutation::{Bound, Clustering, ClusteringRange, PartitionKey, PartitionUpdate};
use engine::read::{ReadCommand, ScanBound, TokenRange};
use engine::schema::TableSchema;
use proto::consistency::Consistency;
use proto::error::ErrorResponse;
use proto::value::ColumnType;

use super::restrictions::{split_collection, Filter, PartitionRestriction, Restrictions};
use super::selection::{CompiledSelection, RowRef};
use super::{
    engine_schema, key_type, now_seconds, partition_key, BindCollector, ColumnSpec, ResultSet,
};
use crate::cql3::ast::{self, Operator, Term};
use crate::cql3::eval::{eval, eval_i32, EvalCtx, Evaluated};
use crate::cql3::values;
use crate::schema::{ColumnKind, TableMetadata};
use crate::service::storage_proxy::StorageProxy;

/// A prepared SELECT.
#[derive(Debug)]
pub struct SelectStatement {
    pub table: Arc<TableMetadata>,
    engine: TableSchema,
    restrictions: Restrictions,
    selection: CompiledSelection,
    /// The columns of the result (one `[json]` column for SELECT JSON).
    pub result_columns: Vec<ColumnSpec>,
    reversed: bool,
    /// ORDER BY with IN over several partitions: sort in memory.
    order_in_memory: bool,
    limit: Option<Term>,
    per_partition_limit: Option<Term>,
    distinct: bool,
    json: bool,
    group_by: usize,
    /// The filter answered from a local secondary index (its position in
    /// `restrictions.filters`) and the index.
    index: Option<(usize, crate::index::LocalIndex)>,
}

fn invalid(m: impl Into<String>) -> ErrorResponse {
    ErrorResponse::invalid(m)
}

/// Where a paged query resumes.
#[derive(Debug, Clone, PartialEq)]
struct PagingState {
    key: Bytes,
    /// Resume after this clustering of `key`; `None`: after the whole partition.
    clustering: Option<Clustering>,
    remaining: i32,
    remaining_in_partition: i32,
}

impl PagingState {
    fn encode(&self) -> Bytes {
        let mut out = vec![1u8];
        out.extend_from_slice(&self.remaining.to_be_bytes());
        out.extend_from_slice(&self.remaining_in_partition.to_be_bytes());
        out.extend_from_slice(&(self.key.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.key);
        match &self.clustering {
            None => out.push(0),
            Some(c) => {
                out.push(1);
                out.extend_from_slice(&(c.len() as u16).to_be_bytes());
                for part in c {
                    out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                    out.extend_from_slice(part);
                }
            }
        }
        Bytes::from(out)
    }

    fn decode(b: &[u8]) -> Option<PagingState> {
        let mut r = Cursor { b, pos: 0 };
        if r.take(1)?[0] != 1 {
            return None;
        }
        let remaining = i32::from_be_bytes(r.take(4)?.try_into().ok()?);
        let remaining_in_partition = i32::from_be_bytes(r.take(4)?.try_into().ok()?);
        let klen = u32::from_be_bytes(r.take(4)?.try_into().ok()?) as usize;
        let key = Bytes::copy_from_slice(r.take(klen)?);
        let clustering = match r.take(1)?[0] {
            0 => None,
            1 => {
                let n = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
                let mut c = Vec::new();
                for _ in 0..n {
                    let len = u32::from_be_bytes(r.take(4)?.try_into().ok()?) as usize;
                    c.push(Bytes::copy_from_slice(r.take(len)?));
                }
                Some(c)
            }
            _ => return None,
        };
        (r.pos == b.len()).then_some(PagingState {
            key,
            clustering,
            remaining,
            remaining_in_partition,
        })
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
}

/// Options of one execution.
pub struct SelectOptions<'a> {
    pub ctx: EvalCtx<'a>,
    pub consistency: Consistency,
    pub page_size: Option<usize>,
    pub paging_state: Option<&'a [u8]>,
}

impl SelectStatement {
    pub fn prepare(
        table: Arc<TableMetadata>,
        stmt: &ast::Select,
        binds: &mut BindCollector<'_>,
    ) -> Result<SelectStatement, ErrorResponse> {
        let restrictions = Restrictions::analyze(&table, &stmt.where_clause, binds)?;
        if restrictions.needs_filtering
            && !stmt.allow_filtering
            && !table.is_virtual
            && !served_by_index(&table, &restrictions)
        {
            if let Some((col, prev)) = restrictions.first_filtered_clustering(&table) {
                if matches!(restrictions.partition, PartitionRestriction::Keys(_))
                    && !prev.is_empty()
                {
                    let slice_on_prev =
                        restrictions
                            .clustering
                            .slice
                            .as_ref()
                            .is_some_and(|(p, _, _)| {
                                table
                                    .clustering_key()
                                    .get(*p)
                                    .is_some_and(|c| c.name == prev)
                            });
                    if slice_on_prev {
                        return Err(invalid(format!(
                            "Clustering column \"{col}\" cannot be restricted (preceding column \"{prev}\" is restricted by a non-EQ relation)"
                        )));
                    }
                    return Err(invalid(format!(
                        "PRIMARY KEY column \"{col}\" cannot be restricted as preceding column \"{prev}\" is not restricted"
                    )));
                }
            }
            return Err(invalid(
                "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING",
            ));
        }
        let selection = CompiledSelection::compile(&table, &stmt.selection)?;
        selection.note_binds(&table, binds);
        if stmt.distinct {
            for (sel, spec) in &selection.items {
                if let super::selection::Sel::Column(i) = sel {
                    if !matches!(
                        table.columns[*i].kind,
                        ColumnKind::PartitionKey(_) | ColumnKind::Static
                    ) {
                        return Err(invalid(format!(
                            "SELECT DISTINCT queries must only request partition key columns and/or static columns (not {})",
                            spec.name
                        )));
                    }
                }
            }
            if selection.is_wildcard {
                return Err(invalid("SELECT DISTINCT queries must only request partition key columns and/or static columns (not *)"));
            }
            // A key range must select the whole partition key (Cassandra's rule).
            if !matches!(restrictions.partition, PartitionRestriction::Keys(_)) {
                for pk in table.partition_key() {
                    let i = table.column_index(&pk.name);
                    let selected = selection.items.iter().any(
                        |(sel, _)| matches!(sel, super::selection::Sel::Column(c) if Some(*c) == i),
                    );
                    if !selected {
                        return Err(invalid(format!(
                            "SELECT DISTINCT queries must request all the partition key columns (missing {})",
                            pk.name
                        )));
                    }
                }
            }
            if stmt.per_partition_limit.is_some() {
                return Err(invalid(
                    "PER PARTITION LIMIT is not allowed with SELECT DISTINCT queries",
                ));
            }
        }
        // ORDER BY: clustering columns only, in declared order, all one way.
        let mut reversed = false;
        let mut order_in_memory = false;
        if !stmt.order_by.is_empty() {
            if !matches!(restrictions.partition, PartitionRestriction::Keys(_)) {
                return Err(invalid("ORDER BY is only supported when the partition key is restricted by an EQ or an IN."));
            }
            let ck = table.clustering_key();
            let mut dir: Option<bool> = None;
            for (i, (name, desc)) in stmt.order_by.iter().enumerate() {
                let Some(col) = table.column(name) else {
                    return Err(invalid(format!("Undefined column name {name}")));
                };
                if !matches!(col.kind, ColumnKind::Clustering(_)) {
                    return Err(invalid(format!("Order by is currently only supported on the clustered columns of the PRIMARY KEY, got {name}")));
                }
                if ck.get(i).map(|c| &c.name) != Some(name) {
                    return Err(invalid("Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY"));
                }
                let col_desc = col.order == crate::schema::ClusteringOrder::Desc;
                let rev = *desc != col_desc;
                if dir.is_some_and(|d| d != rev) {
                    return Err(invalid("Unsupported order by relation"));
                }
                dir = Some(rev);
            }
            reversed = dir.unwrap_or(false);
            if let PartitionRestriction::Keys(sets) = &restrictions.partition {
                order_in_memory = sets
                    .iter()
                    .any(|s| !matches!(s, super::restrictions::ValueSet::Eq(_)));
            }
        }
        // GROUP BY names primary key columns in order; columns restricted by
        // `=` may be skipped (Cassandra's rule). `group_by` is the length of
        // the primary key prefix that forms a group.
        let key_len = table.partition_key_len + table.clustering_key_len;
        let eq_restricted = |i: usize| -> bool {
            use super::restrictions::ValueSet;
            if i < table.partition_key_len {
                matches!(&restrictions.partition,
                    PartitionRestriction::Keys(sets) if matches!(sets.get(i), Some(ValueSet::Eq(_))))
            } else {
                let p = i - table.partition_key_len;
                matches!(restrictions.clustering.prefix.get(p), Some(ValueSet::Eq(_)))
                    || matches!(&restrictions.clustering.multi_eq,
                        Some((n, ValueSet::Eq(_))) if p < *n)
            }
        };
        let mut next = 0usize;
        for name in &stmt.group_by {
            let Some(idx) = table.column_index(name) else {
                return Err(invalid(format!("Undefined column name {name}")));
            };
            if idx >= key_len {
                return Err(invalid(format!(
                    "Group by is currently only supported on the columns of the PRIMARY KEY, got {name}"
                )));
            }
            loop {
                if next >= key_len {
                    return Err(invalid("Group by currently only support groups of columns following their declared order in the PRIMARY KEY"));
                }
                let here = next;
                next += 1;
                if here == idx {
                    break;
                }
                if !eq_restricted(here) {
                    return Err(invalid("Group by currently only support groups of columns following their declared order in the PRIMARY KEY"));
                }
            }
        }
        let group_by = if stmt.group_by.is_empty() { 0 } else { next };
        if group_by > 0 && group_by < table.partition_key_len {
            return Err(invalid(
                "Group by is not supported on only a part of the partition key",
            ));
        }
        if let Some(t) = &stmt.limit {
            binds.note(t, "[limit]", &ColumnType::Int);
        }
        if let Some(t) = &stmt.per_partition_limit {
            binds.note(t, "[per_partition_limit]", &ColumnType::Int);
        }
        if let Some(t) = &stmt.using.timeout {
            binds.note(t, "[timeout]", &ColumnType::Duration);
        }
        let result_columns = if stmt.json {
            vec![ColumnSpec {
                keyspace: table.keyspace.clone(),
                table: table.name.clone(),
                name: "[json]".to_string(),
                ty: ColumnType::Text,
            }]
        } else {
            selection.items.iter().map(|(_, s)| s.clone()).collect()
        };
        let index = if stmt.distinct || table.is_virtual {
            None
        } else {
            index_plan(&table, &restrictions)
        };
        Ok(SelectStatement {
            index,
            engine: engine_schema(&table),
            table,
            restrictions,
            selection,
            result_columns,
            reversed,
            order_in_memory,
            limit: stmt.limit.clone(),
            per_partition_limit: stmt.per_partition_limit.clone(),
            distinct: stmt.distinct,
            json: stmt.json,
            group_by,
        })
    }

    /// Bind marker indexes of the partition key columns, when every one of
    /// them is bound by a plain `pk = ?` (for token-aware drivers).
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

    pub async fn execute(
        &self,
        proxy: &StorageProxy,
        opts: &SelectOptions<'_>,
    ) -> Result<ResultSet, ErrorResponse> {
        let limit = match &self.limit {
            Some(t) => match eval_i32(t, &opts.ctx, "limit")? {
                Some(l) if l <= 0 => return Err(invalid("LIMIT must be strictly positive")),
                l => l,
            },
            None => None,
        };
        let ppl = match &self.per_partition_limit {
            Some(t) => match eval_i32(t, &opts.ctx, "per partition limit")? {
                Some(l) if l <= 0 => {
                    return Err(invalid("PER PARTITION LIMIT must be strictly positive"))
                }
                l => l,
            },
            None => None,
        };
        let aggregate = self.selection.is_aggregate || self.group_by > 0;
        let mut page_size = if aggregate || self.order_in_memory {
            None
        } else {
            opts.page_size
        };
        if self.order_in_memory && opts.page_size.is_some() {
            if let PartitionRestriction::Keys(_) = &self.restrictions.partition {
                let keys = self.restrictions.partition_keys(&self.table, &opts.ctx)?;
                if keys.len() > 1 {
                    return Err(invalid("Cannot page queries with both ORDER BY and a IN restriction on the partition key; you must either remove the ORDER BY or the IN and sort client side, or disable paging for this query"));
                }
            }
            page_size = None;
        }
        let state = match opts.paging_state {
            Some(b) if !b.is_empty() => Some(
                PagingState::decode(b)
                    .ok_or_else(|| ErrorResponse::protocol("Invalid value for the paging state"))?,
            ),
            _ => None,
        };
        let bound_selection = self.selection.bind(&opts.ctx)?;
        let mut out = Collector {
            stmt: self,
            selection: bound_selection.as_ref().unwrap_or(&self.selection),
            rows: Vec::new(),
            sort_keys: Vec::new(),
            // Rows sorted in memory are all read first; LIMIT applies after
            // the sort (`finish`).
            remaining: if self.order_in_memory {
                i32::MAX
            } else {
                state
                    .as_ref()
                    .map(|s| s.remaining)
                    .unwrap_or(limit.unwrap_or(i32::MAX))
            },
            sort_limit: if self.order_in_memory { limit } else { None },
            page_left: page_size
                .map(|p| p.min(i32::MAX as usize) as i32)
                .unwrap_or(i32::MAX),
            ppl,
            ppl_limit: ppl,
            last: None,
            agg: if aggregate {
                Some(self.selection.new_aggregates())
            } else {
                None
            },
            group_key: None,
            now: now_seconds(opts.ctx.now_micros),
            ctx: &opts.ctx,
        };
        let ranges = self
            .restrictions
            .clustering_ranges(&self.table, &self.engine, &opts.ctx)?;
        let cmd_base = ReadCommand {
            ranges,
            reversed: self.reversed,
            row_limit: None,
            now: out.now,
        };

        let mut exhausted = true;
        if self.table.is_virtual {
            let parts = proxy.virtual_partitions(&self.table)?;
            let keys = match &self.restrictions.partition {
                PartitionRestriction::Keys(_) => Some(
                    self.restrictions
                        .partition_keys(&self.table, &opts.ctx)?
                        .iter()
                        .map(|k| partition_key(k).map(|pk| pk.key))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                _ => None,
            };
            let mut started = state.is_none();
            for p in parts {
                if let Some(keys) = &keys {
                    if !keys.contains(&p.key.key) {
                        continue;
                    }
                }
                if !started {
                    if state.as_ref().is_some_and(|s| s.key == p.key.key) {
                        started = true;
                    }
                    continue;
                }
                let p = self.slice_virtual(p, &cmd_base);
                if !out.partition(&p)? {
                    exhausted = false;
                    break;
                }
            }
        } else {
            let ks = proxy.keyspace(&self.table.keyspace)?;
            match &self.restrictions.partition {
                PartitionRestriction::Keys(_) => {
                    let mut keys = Vec::new();
                    for comps in self.restrictions.partition_keys(&self.table, &opts.ctx)? {
                        keys.push((partition_key(&comps)?, comps));
                    }
                    let mut start = 0;
                    let mut resume: Option<Clustering> = None;
                    if let Some(s) = &state {
                        match keys.iter().position(|(k, _)| k.key == s.key) {
                            Some(i) if s.clustering.is_some() => {
                                start = i;
                                resume = s.clustering.clone();
                                out.ppl = ppl.map(|_| s.remaining_in_partition);
                            }
                            Some(i) => start = i + 1,
                            None => start = keys.len(),
                        }
                    }
                    for (i, (key, _)) in keys.iter().enumerate().skip(start) {
                        if out.full() {
                            exhausted = false;
                            break;
                        }
                        let mut cmd = cmd_base.clone();
                        if i == start {
                            if let Some(c) = &resume {
                                cmd.ranges =
                                    resume_ranges(&self.engine, &cmd.ranges, c, self.reversed);
                            }
                        } else {
                            out.ppl = ppl;
                        }
                        cmd.row_limit = out.row_limit();
                        let p = proxy
                            .read_partition(&ks, &self.table, key, &cmd, opts.consistency)
                            .await?;
                        if let Some(mut p) = p {
                            // A page that stopped inside this partition already
                            // showed its rows (and so its static row).
                            if i == start && resume.is_some() && p.rows.is_empty() {
                                p.static_row = None;
                            }
                            if !out.partition(&p)? {
                                exhausted = false;
                                break;
                            }
                        }
                    }
                }
                PartitionRestriction::Token { .. } | PartitionRestriction::None
                    if self.index_value(proxy, &opts.ctx)?.is_some() =>
                {
                    let value = self.index_value(proxy, &opts.ctx)?.unwrap_or_default();
                    exhausted = self
                        .execute_indexed(
                            proxy,
                            opts,
                            &ks,
                            &value,
                            &cmd_base,
                            state.as_ref(),
                            ppl,
                            &mut out,
                        )
                        .await?;
                }
                PartitionRestriction::Token { .. } | PartitionRestriction::None => {
                    let mut range = self.token_range(&opts.ctx)?;
                    let mut resumed_done = false;
                    if let Some(s) = &state {
                        let token = crate::dht::murmur3::murmur3_token(&s.key);
                        range.start = ScanBound::Key {
                            token,
                            key: s.key.clone(),
                            inclusive: false,
                        };
                        if let Some(c) = &s.clustering {
                            // Finish the partition the last page stopped in.
                            out.ppl = ppl.map(|_| s.remaining_in_partition);
                            let mut cmd = cmd_base.clone();
                            cmd.ranges = resume_ranges(&self.engine, &cmd.ranges, c, self.reversed);
                            cmd.row_limit = out.row_limit();
                            let key = PartitionKey {
                                token,
                                key: s.key.clone(),
                            };
                            if let Some(mut p) = proxy
                                .read_partition(&ks, &self.table, &key, &cmd, opts.consistency)
                                .await?
                            {
                                if p.rows.is_empty() {
                                    p.static_row = None;
                                }
                                if !out.partition(&p)? {
                                    resumed_done = true;
                                }
                            }
                        }
                    }
                    if resumed_done {
                        exhausted = false;
                    }
                    'scan: loop {
                        if resumed_done || out.full() {
                            exhausted = false;
                            break;
                        }
                        let batch = 128usize.min(out.page_left.max(1) as usize + 1);
                        let mut cmd = cmd_base.clone();
                        cmd.row_limit = if self.restrictions.filters.is_empty() && !aggregate {
                            out.row_limit_no_ppl()
                        } else {
                            None
                        };
                        let parts = proxy
                            .scan(&ks, &self.table, &range, &cmd, batch, opts.consistency)
                            .await?;
                        let n = parts.len();
                        for p in parts {
                            range.start = ScanBound::Key {
                                token: p.key.token,
                                key: p.key.key.clone(),
                                inclusive: false,
                            };
                            out.ppl = ppl;
                            if !out.partition(&p)? {
                                exhausted = false;
                                break 'scan;
                            }
                        }
                        if n < batch {
                            break;
                        }
                    }
                }
            }
        }
        out.finish(exhausted)
    }

    /// The value to look up when this query is answered from a local index
    /// (on one node; a cluster scans and filters).
    fn index_value(
        &self,
        proxy: &StorageProxy,
        ctx: &EvalCtx<'_>,
    ) -> Result<Option<Bytes>, ErrorResponse> {
        let Some((fi, _)) = &self.index else {
            return Ok(None);
        };
        if proxy.clustered() {
            return Ok(None);
        }
        let f = &self.restrictions.filters[*fi];
        match eval(&f.value, &f.value_type, ctx)? {
            // Empty and oversized values are never indexed: scan for them.
            Evaluated::Value(b) if !b.is_empty() && b.len() <= crate::index::MAX_INDEXED_VALUE => {
                Ok(Some(b))
            }
            _ => Ok(None),
        }
    }

    /// Reads the rows of a local index lookup (every shard, ring order)
    /// into `out`; returns whether nothing is left.
    #[allow(clippy::too_many_arguments)]
    async fn execute_indexed(
        &self,
        proxy: &StorageProxy,
        opts: &SelectOptions<'_>,
        ks: &crate::schema::KeyspaceMetadata,
        value: &Bytes,
        cmd: &ReadCommand,
        state: Option<&PagingState>,
        ppl: Option<i32>,
        out: &mut Collector<'_, '_>,
    ) -> Result<bool, ErrorResponse> {
        let Some((_, idx)) = &self.index else {
            return Ok(true);
        };
        let range = self.token_range(&opts.ctx)?;
        let mut after: Option<crate::index::IndexPosition> = None;
        let mut current: Option<Bytes> = None;
        if let Some(s) = state {
            after = Some(crate::index::IndexPosition {
                key: PartitionKey {
                    token: crate::dht::murmur3::murmur3_token(&s.key),
                    key: s.key.clone(),
                },
                clustering: s.clustering.clone(),
            });
            if s.clustering.is_some() {
                out.ppl = ppl.map(|_| s.remaining_in_partition);
                current = Some(s.key.clone());
            }
        }
        loop {
            if out.full() {
                return Ok(false);
            }
            let batch = 128usize.min(out.page_left.max(1) as usize + 1);
            let r = proxy
                .index_scan(
                    ks,
                    idx,
                    &self.engine,
                    value,
                    &range,
                    after.as_ref(),
                    cmd,
                    batch,
                    opts.consistency,
                )
                .await?;
            for p in &r.parts {
                if current.as_ref() != Some(&p.key.key) {
                    out.ppl = ppl;
                    current = Some(p.key.key.clone());
                }
                if let Some((ck, _)) = p.rows.last() {
                    after = Some(crate::index::IndexPosition {
                        key: p.key.clone(),
                        clustering: Some(ck.clone()),
                    });
                }
                if !out.partition(p)? {
                    return Ok(false);
                }
            }
            if r.exhausted {
                return Ok(true);
            }
        }
    }

    fn token_range(&self, ctx: &EvalCtx<'_>) -> Result<TokenRange, ErrorResponse> {
        let PartitionRestriction::Token { start, end } = &self.restrictions.partition else {
            return Ok(TokenRange::full());
        };
        let tok = |b: &Option<(Term, bool)>| -> Result<Option<(i64, bool)>, ErrorResponse> {
            let Some((t, incl)) = b else { return Ok(None) };
            match eval(t, &ColumnType::BigInt, ctx)? {
                Evaluated::Value(v) if v.len() == 8 => Ok(Some((
                    i64::from_be_bytes(v[..].try_into().unwrap_or([0; 8])),
                    *incl,
                ))),
                _ => Err(invalid("Invalid token value")),
            }
        };
        let s = tok(start)?;
        let e = tok(end)?;
        Ok(TokenRange {
            start: match s {
                None => ScanBound::Unbounded,
                Some((t, inclusive)) => ScanBound::Token {
                    token: t,
                    inclusive,
                },
            },
            end: match e {
                None => ScanBound::Unbounded,
                Some((t, inclusive)) => ScanBound::Token {
                    token: t,
                    inclusive,
                },
            },
        })
    }

    fn slice_virtual(&self, mut p: PartitionUpdate, cmd: &ReadCommand) -> PartitionUpdate {
        p.rows
            .retain(|(c, _)| cmd.ranges.iter().any(|r| self.engine.range_contains(r, c)));
        if cmd.reversed {
            p.rows.reverse();
        }
        p
    }
}

/// Narrows `ranges` to what comes after clustering `after` in query order.
fn resume_ranges(
    schema: &TableSchema,
    ranges: &[ClusteringRange],
    after: &Clustering,
    reversed: bool,
) -> Vec<ClusteringRange> {
    let mut out = Vec::new();
    for r in ranges {
        let mut r = r.clone();
        if !reversed {
            if schema.compare_to_start(after, &r.start).is_gt() {
                r.start = Bound::Exclusive(after.clone());
            }
        } else if schema.compare_to_end(after, &r.end).is_lt() {
            r.end = Bound::Exclusive(after.clone());
        }
        if !schema.range_is_empty(&r) {
            out.push(r);
        }
    }
    out
}

struct Collector<'s, 'c> {
    stmt: &'s SelectStatement,
    /// The statement's selection, with any bind markers it has bound.
    selection: &'s CompiledSelection,
    rows: Vec<Vec<Option<Bytes>>>,
    /// For in-memory ORDER BY: the clustering of each row.
    sort_keys: Vec<Clustering>,
    /// For in-memory ORDER BY: the LIMIT, applied after sorting.
    sort_limit: Option<i32>,
    remaining: i32,
    page_left: i32,
    ppl: Option<i32>,
    /// The PER PARTITION LIMIT itself.
    ppl_limit: Option<i32>,
    last: Option<(Bytes, Option<Clustering>)>,
    agg: Option<Vec<super::selection::AggState>>,
    group_key: Option<Vec<Bytes>>,
    now: i32,
    ctx: &'c EvalCtx<'c>,
}

impl Collector<'_, '_> {
    fn full(&self) -> bool {
        self.remaining <= 0 || self.page_left <= 0
    }

    /// Row limit for a scan batch: per-partition limits apply per partition.
    fn row_limit_no_ppl(&self) -> Option<usize> {
        let mut l = self.remaining.min(self.page_left);
        if let Some(p) = self.ppl_limit {
            l = l.min(p);
        }
        if self.stmt.distinct {
            l = 1;
        }
        Some(l.max(0) as usize)
    }

    fn row_limit(&self) -> Option<usize> {
        if !self.stmt.restrictions.filters.is_empty() || self.agg.is_some() {
            return None;
        }
        let mut l = self.remaining.min(self.page_left);
        if let Some(p) = self.ppl {
            l = l.min(p);
        }
        if self.stmt.distinct {
            l = 1;
        }
        Some(l.max(0) as usize)
    }

    /// Adds a partition's rows; false once the page or limit is full.
    fn partition(&mut self, p: &PartitionUpdate) -> Result<bool, ErrorResponse> {
        let table = &*self.stmt.table;
        let pk_parts = split_pk(table, &p.key.key);
        let mut emitted_in_partition = 0;
        let only_static = p.rows.is_empty() || self.stmt.distinct;
        if only_static {
            // A partition with no rows shows its static row, unless the query
            // restricts clustering columns.
            let show = self.stmt.distinct
                || (p.static_row.is_some() && !self.stmt.restrictions.has_clustering_restrictions);
            if show && !(self.stmt.distinct && p.rows.is_empty() && p.static_row.is_none()) {
                let r = RowRef {
                    pk: &pk_parts,
                    token: p.key.token,
                    clustering: None,
                    static_row: p.static_row.as_ref(),
                    row: None,
                    now: self.now,
                };
                if self.matches(&r)? {
                    self.emit(&r, &p.key, None)?;
                }
            }
            return Ok(!self.full());
        }
        // Under GROUP BY, PER PARTITION LIMIT counts groups, not rows.
        let grouped = self.agg.is_some() && self.stmt.group_by > 0;
        let mut groups_here = 0;
        let mut last_group: Option<Vec<Bytes>> = None;
        for (ck, row) in &p.rows {
            if self.full() || (!grouped && self.ppl.is_some_and(|l| l <= 0)) {
                break;
            }
            let r = RowRef {
                pk: &pk_parts,
                token: p.key.token,
                clustering: Some(ck),
                static_row: p.static_row.as_ref(),
                row: Some(row),
                now: self.now,
            };
            if !self.matches(&r)? {
                continue;
            }
            if grouped {
                if let Some(limit) = self.ppl_limit {
                    let gk: Vec<Bytes> = (0..self.stmt.group_by)
                        .filter_map(|i| r.value(table, i))
                        .collect();
                    if last_group.as_ref() != Some(&gk) {
                        if groups_here >= limit {
                            break;
                        }
                        groups_here += 1;
                        last_group = Some(gk);
                    }
                }
                self.emit(&r, &p.key, Some(ck))?;
                continue;
            }
            self.emit(&r, &p.key, Some(ck))?;
            emitted_in_partition += 1;
            if let Some(l) = &mut self.ppl {
                *l -= 1;
            }
        }
        let _ = emitted_in_partition;
        if self.ppl.is_some_and(|l| l <= 0) {
            // Partition done for PER PARTITION LIMIT purposes.
            if let Some((_, c)) = &mut self.last {
                *c = None;
            }
        }
        Ok(!self.full())
    }

    fn emit(
        &mut self,
        r: &RowRef<'_>,
        key: &PartitionKey,
        ck: Option<&Clustering>,
    ) -> Result<(), ErrorResponse> {
        let table = &*self.stmt.table;
        if let Some(states) = &mut self.agg {
            if self.stmt.group_by > 0 {
                let gk: Vec<Bytes> = (0..self.stmt.group_by)
                    .filter_map(|i| r.value(table, i))
                    .collect();
                if self.group_key.as_ref().is_some_and(|g| *g != gk) {
                    let done = std::mem::replace(states, self.selection.new_aggregates());
                    let row = self.selection.finish_aggregates(done)?;
                    let row = self.json_or_plain(row)?;
                    self.rows.push(row);
                    self.remaining -= 1;
                }
                self.group_key = Some(gk);
            }
            let states = self.agg.as_mut().expect("aggregate");
            return self.selection.accumulate(table, r, states);
        }
        let row = self.selection.row(table, r)?;
        let row = self.json_or_plain(row)?;
        self.rows.push(row);
        if self.stmt.order_in_memory {
            self.sort_keys.push(ck.cloned().unwrap_or_default());
        }
        self.remaining -= 1;
        self.page_left -= 1;
        self.last = Some((key.key.clone(), ck.cloned()));
        Ok(())
    }

    /// A result row as it is sent: one JSON text cell for `SELECT JSON`.
    fn json_or_plain(&self, row: Vec<Option<Bytes>>) -> Result<Vec<Option<Bytes>>, ErrorResponse> {
        if self.stmt.json {
            Ok(vec![Some(self.json_row(&row)?)])
        } else {
            Ok(row)
        }
    }

    fn json_row(&self, row: &[Option<Bytes>]) -> Result<Bytes, ErrorResponse> {
        let mut s = String::from("{");
        for (i, ((_, spec), v)) in self.selection.items.iter().zip(row).enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let name = if spec
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                spec.name.clone()
            } else {
                format!("\"{}\"", spec.name.replace('"', "\"\""))
            };
            s.push_str(&values::to_json(
                Some(&proto::value::CqlValue::Text(name)),
                &ColumnType::Text,
            ));
            s.push_str(": ");
            let value = match v {
                None => None,
                Some(b) => Some(
                    proto::value::deserialize(&spec.ty, b)
                        .map_err(|e| ErrorResponse::server(e.to_string()))?,
                ),
            };
            s.push_str(&values::to_json(value.as_ref(), &spec.ty));
        }
        s.push('}');
        Ok(Bytes::from(s.into_bytes()))
    }

    fn matches(&self, r: &RowRef<'_>) -> Result<bool, ErrorResponse> {
        for f in &self.stmt.restrictions.filters {
            if !self.filter_matches(f, r)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn filter_matches(&self, f: &Filter, r: &RowRef<'_>) -> Result<bool, ErrorResponse> {
        let table = &*self.stmt.table;
        let col = &table.columns[f.column];
        let actual = r.value(table, f.column);
        let kt = key_type(&f.value_type);
        let eval_one = |t: &Term| -> Result<Option<Bytes>, ErrorResponse> {
            match eval(t, &f.value_type, self.ctx)? {
                Evaluated::Value(b) => Ok(Some(b)),
                Evaluated::Null => Ok(None),
                Evaluated::Unset => Err(invalid(format!(
                    "Invalid unset value for column {}",
                    col.name
                ))),
            }
        };
        Ok(match f.op {
            Operator::In => {
                let Some(actual) = actual else {
                    return Ok(false);
                };
                let candidates: Vec<Bytes> = match &f.value {
                    Term::Tuple(items) | Term::List(items) => items
                        .iter()
                        .filter_map(|t| eval_one(t).transpose())
                        .collect::<Result<_, _>>()?,
                    t => {
                        let list_ty = ColumnType::List(Box::new(f.value_type.clone()));
                        match eval(t, &list_ty, self.ctx)? {
                            Evaluated::Value(b) => split_collection(&b).unwrap_or_default(),
                            _ => Vec::new(),
                        }
                    }
                };
                candidates.iter().any(|c| kt.compare(c, &actual).is_eq())
            }
            Operator::Contains | Operator::ContainsKey => {
                let Some(actual) = actual else {
                    return Ok(false);
                };
                let Some(needle) = eval_one(&f.value)? else {
                    return Ok(false);
                };
                let is_map = matches!(super::unfrozen(&col.ty), ColumnType::Map(_, _));
                let candidates: Vec<Bytes> = if is_map {
                    let Some(pairs) = super::modification::split_map(&actual) else {
                        return Ok(false);
                    };
                    pairs
                        .into_iter()
                        .map(|(k, v)| if f.op == Operator::ContainsKey { k } else { v })
                        .collect()
                } else {
                    let Some(items) = split_collection(&actual) else {
                        return Ok(false);
                    };
                    items
                };
                candidates.iter().any(|c| kt.compare(c, &needle).is_eq())
            }
            op => {
                let expected = eval_one(&f.value)?;
                let (Some(a), Some(e)) = (actual, expected) else {
                    return Ok(op == Operator::Neq);
                };
                let o = kt.compare(&a, &e);
                match op {
                    Operator::Eq => o.is_eq(),
                    Operator::Neq => !o.is_eq(),
                    Operator::Lt => o.is_lt(),
                    Operator::Lte => o.is_le(),
                    Operator::Gt => o.is_gt(),
                    Operator::Gte => o.is_ge(),
                    _ => false,
                }
            }
        })
    }

    fn finish(mut self, exhausted: bool) -> Result<ResultSet, ErrorResponse> {
        if let Some(states) = self.agg.take() {
            // The last group counts against LIMIT like the others.
            if self.stmt.group_by == 0 || (self.group_key.is_some() && self.remaining > 0) {
                let row = self.selection.finish_aggregates(states)?;
                let row = self.json_or_plain(row)?;
                self.rows.push(row);
            }
        }
        if self.stmt.order_in_memory && self.rows.len() > 1 {
            let mut idx: Vec<usize> = (0..self.rows.len()).collect();
            let schema = &self.stmt.engine;
            idx.sort_by(|a, b| {
                let o = schema.compare_clustering(&self.sort_keys[*a], &self.sort_keys[*b]);
                if self.stmt.reversed {
                    o.reverse()
                } else {
                    o
                }
            });
            let mut rows: Vec<Option<Vec<Option<Bytes>>>> =
                self.rows.into_iter().map(Some).collect();
            self.rows = idx.into_iter().filter_map(|i| rows[i].take()).collect();
        }
        if let Some(l) = self.sort_limit {
            self.rows.truncate(l.max(0) as usize);
        }
        let paging_state = if !exhausted && self.remaining > 0 && self.page_left <= 0 {
            self.last.map(|(key, clustering)| {
                PagingState {
                    key,
                    clustering,
                    remaining: self.remaining,
                    remaining_in_partition: self.ppl.unwrap_or(i32::MAX),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(ResultSet {
            columns: self.stmt.result_columns.clone(),
            rows: self.rows,
            paging_state,
        })
    }
}

/// Splits a serialised partition key into its components.
pub fn split_pk(table: &TableMetadata, key: &Bytes) -> Vec<Bytes> {
    if table.partition_key_len == 1 {
        return vec![key.clone()];
    }
    match crate::dht::murmur3::split_partition_key(key, table.partition_key_len) {
        Some(parts) => parts.into_iter().map(Bytes::copy_from_slice).collect(),
        None => vec![key.clone()],
    }
}

/// Whether every filtered restriction is an equality (or `CONTAINS` /
/// `CONTAINS KEY`) on a column with a secondary index, the queries
/// Cassandra answers from an index without `ALLOW FILTERING`.
///
/// Indexes with local index data (`crate::index`) answer them by lookup;
/// the others (custom indexes, indexes on key or static columns, a query
/// in a cluster) by scanning and filtering, with the same results.
fn served_by_index(table: &TableMetadata, r: &Restrictions) -> bool {
    !r.filters.is_empty()
        && r.filters.iter().all(|f| {
            let col = &table.columns[f.column];
            let quoted = format!("\"{}\"", col.name);
            let target = |t: &str| {
                table.indexes.iter().any(|i| {
                    i.options
                        .get("target")
                        .is_some_and(|x| x == t || *x == t.replace(&col.name, &quoted))
                })
            };
            match f.op {
                Operator::Eq => target(&col.name) || target(&format!("full({})", col.name)),
                Operator::Contains => target(&col.name) || target(&format!("values({})", col.name)),
                Operator::ContainsKey => target(&format!("keys({})", col.name)),
                _ => false,
            }
        })
}

/// The filter a local secondary index answers (the first one that can):
/// `=` on an indexed value, `CONTAINS` on indexed collection values,
/// `CONTAINS KEY` on indexed map keys — when no partition key is given.
fn index_plan(
    table: &TableMetadata,
    r: &Restrictions,
) -> Option<(usize, crate::index::LocalIndex)> {
    use crate::index::TargetKind;
    if !matches!(
        r.partition,
        PartitionRestriction::None | PartitionRestriction::Token { .. }
    ) {
        return None;
    }
    let indexes = crate::index::local_indexes(table);
    for (fi, f) in r.filters.iter().enumerate() {
        for idx in &indexes {
            if idx.column != f.column {
                continue;
            }
            let ok = matches!(
                (f.op, idx.kind),
                (Operator::Eq, TargetKind::Value)
                    | (Operator::Contains, TargetKind::Values)
                    | (Operator::ContainsKey, TargetKind::Keys)
            );
            if ok {
                return Some((fi, idx.clone()));
            }
        }
    }
    None
}
