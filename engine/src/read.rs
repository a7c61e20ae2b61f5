//! Read commands and the step that turns raw partition content (data plus
//! tombstones, as stored or merged from several sources) into what a query
//! sees: live data only.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::mutation::{
    ClusteringRange, ColumnData, DeletionTime, PartitionKey, PartitionUpdate, RangeTombstone, Row,
    Token,
};
use crate::reconcile::{cell_is_live, deletes, liveness_is_live, max_deletion};
use crate::schema::TableSchema;

/// What to read from one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCommand {
    /// Sorted, non-overlapping clustering ranges in clustering (schema)
    /// order. Empty: nothing but the static row. `vec![ClusteringRange::full()]`
    /// reads every row.
    pub ranges: Vec<ClusteringRange>,
    /// Return rows in reverse clustering order.
    pub reversed: bool,
    /// At most this many live rows per partition.
    pub row_limit: Option<usize>,
    /// The query time in seconds since the epoch, for TTL expiry.
    pub now: i32,
}

impl ReadCommand {
    /// Reads the whole partition at `now`.
    pub fn full(now: i32) -> Self {
        ReadCommand {
            ranges: vec![ClusteringRange::full()],
            reversed: false,
            row_limit: None,
            now,
        }
    }
}

/// One end of a token range scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanBound {
    Unbounded,
    /// Every partition with this token is included or excluded.
    Token {
        token: Token,
        inclusive: bool,
    },
    /// A partition position: used to resume after the last key returned.
    Key {
        token: Token,
        key: Bytes,
        inclusive: bool,
    },
}

/// A range of partitions in (token, key) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRange {
    pub start: ScanBound,
    pub end: ScanBound,
}

impl TokenRange {
    /// Every partition.
    pub fn full() -> Self {
        TokenRange {
            start: ScanBound::Unbounded,
            end: ScanBound::Unbounded,
        }
    }

    /// Whether the partition at (`token`, `key`) is at or after the start.
    pub fn admits_start(&self, token: Token, key: &[u8]) -> bool {
        match &self.start {
            ScanBound::Unbounded => true,
            ScanBound::Token {
                token: t,
                inclusive,
            } => token > *t || (*inclusive && token == *t),
            ScanBound::Key {
                token: t,
                key: k,
                inclusive,
            } => match (token, key).cmp(&(*t, &k[..])) {
                Ordering::Greater => true,
                Ordering::Equal => *inclusive,
                Ordering::Less => false,
            },
        }
    }

    /// Whether the partition at (`token`, `key`) is at or before the end.
    pub fn admits_end(&self, token: Token, key: &[u8]) -> bool {
        match &self.end {
            ScanBound::Unbounded => true,
            ScanBound::Token {
                token: t,
                inclusive,
            } => token < *t || (*inclusive && token == *t),
            ScanBound::Key {
                token: t,
                key: k,
                inclusive,
            } => match (token, key).cmp(&(*t, &k[..])) {
                Ordering::Less => true,
                Ordering::Equal => *inclusive,
                Ordering::Greater => false,
            },
        }
    }

    /// Whether the range contains the partition.
    pub fn contains(&self, key: &PartitionKey) -> bool {
        self.admits_start(key.token, &key.key) && self.admits_end(key.token, &key.key)
    }
}

/// Whether `c` falls in one of the (sorted) ranges.
fn in_ranges(schema: &TableSchema, ranges: &[ClusteringRange], c: &[Bytes]) -> bool {
    ranges.iter().any(|r| schema.range_contains(r, c))
}

/// The strongest range tombstone covering `c`.
fn covering_deletion(
    schema: &TableSchema,
    rts: &[&RangeTombstone],
    c: &[Bytes],
) -> Option<DeletionTime> {
    rts.iter()
        .filter(|rt| schema.range_contains(&rt.range, c))
        .fold(None, |acc, rt| max_deletion(acc, Some(rt.deletion)))
}

/// The live part of a row under `deletion` at `now`, or `None` if nothing
/// in it is live. Static rows pass `require_cells = true`: they exist only
/// through live cells.
fn live_row(row: &Row, deletion: Option<DeletionTime>, now: i32, static_row: bool) -> Option<Row> {
    let deletion = max_deletion(deletion, row.deletion);
    let shadowed = |ts: i64| deletion.is_some_and(|d| deletes(&d, ts));
    let liveness = row
        .liveness
        .filter(|l| !static_row && !shadowed(l.timestamp) && liveness_is_live(l, now));
    let mut columns = Vec::with_capacity(row.columns.len());
    for (id, data) in &row.columns {
        match data {
            ColumnData::Simple(c) => {
                if !shadowed(c.timestamp) && cell_is_live(c, now) {
                    columns.push((*id, ColumnData::Simple(c.clone())));
                }
            }
            ColumnData::Complex { tombstone, cells } => {
                let d = max_deletion(deletion, *tombstone);
                let live: Vec<_> = cells
                    .iter()
                    .filter(|(_, c)| {
                        !d.is_some_and(|d| deletes(&d, c.timestamp)) && cell_is_live(c, now)
                    })
                    .cloned()
                    .collect();
                if !live.is_empty() {
                    columns.push((
                        *id,
                        ColumnData::Complex {
                            tombstone: None,
                            cells: live,
                        },
                    ));
                }
            }
        }
    }
    if liveness.is_none() && columns.is_empty() {
        return None;
    }
    Some(Row {
        liveness,
        deletion: None,
        columns,
    })
}

/// Turns raw partition content into the live result of `cmd`: tombstones
/// applied and dropped, dead and expired cells dropped, empty rows dropped,
/// rows limited to `cmd.ranges`, ordered (or reversed) and limited. `None`
/// when neither a live row nor a live static row remains.
pub fn to_live(
    schema: &TableSchema,
    raw: &PartitionUpdate,
    cmd: &ReadCommand,
) -> Option<PartitionUpdate> {
    let pt = raw.tombstone;
    let static_row = raw
        .static_row
        .as_ref()
        .and_then(|s| live_row(s, pt, cmd.now, true));
    // Only range tombstones that reach the queried slice matter.
    let rts: Vec<&RangeTombstone> = raw
        .range_tombstones
        .iter()
        .filter(|rt| {
            cmd.ranges
                .iter()
                .any(|r| schema.ranges_intersect(r, &rt.range))
        })
        .collect();
    let limit = cmd.row_limit.unwrap_or(usize::MAX);
    let mut rows = Vec::new();
    let mut visit = |(c, row): &(Vec<Bytes>, Row)| -> bool {
        if rows.len() >= limit {
            return false;
        }
        if in_ranges(schema, &cmd.ranges, c) {
            let d = max_deletion(pt, covering_deletion(schema, &rts, c));
            if let Some(r) = live_row(row, d, cmd.now, false) {
                rows.push((c.clone(), r));
            }
        }
        true
    };
    if cmd.reversed {
        for entry in raw.rows.iter().rev() {
            if !visit(entry) {
                break;
            }
        }
    } else {
        for entry in raw.rows.iter() {
            if !visit(entry) {
                break;
            }
        }
    }
    if rows.is_empty() && static_row.is_none() {
        return None;
    }
    Some(PartitionUpdate {
        key: raw.key.clone(),
        tombstone: None,
        static_row,
        range_tombstones: Vec::new(),
        rows,
    })
}
