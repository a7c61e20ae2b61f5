//! The in-memory write buffer of one table on one shard.
//!
//! Partitions are ordered by (token, key bytes) — the order SSTables and
//! scans use — and rows inside a partition by the table's clustering order.
//! Writes merge into what is already there with last-write-wins rules, so a
//! memtable holds at most one version of each cell.
//!
//! This implementation keeps its structures on the heap behind the
//! [`Memtable`] API; the API (apply / read a partition slice / iterate a
//! token range / memory accounting) is what an arena-backed memtable will
//! implement too. Values are copied on insert so a memtable never pins the
//! caller's buffers (e.g. a whole request frame).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound as StdBound;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::EngineError;
use crate::mutation::{
    Bound, Cell, Clustering, ClusteringRange, ColumnData, DeletionTime, PartitionKey,
    PartitionUpdate, RangeTombstone, Row, Token,
};
use crate::read::TokenRange;
use crate::reader::MutationSource;
use crate::reconcile::{
    deletion_supersedes, merge_row, normalize_row, purge_shadowed, row_is_empty,
};
use crate::schema::{Position, TableSchema};

/// Approximate fixed overheads used for memory accounting.
const PARTITION_OVERHEAD: usize = 160;
const ROW_OVERHEAD: usize = 96;
const CELL_OVERHEAD: usize = 48;
const RANGE_TOMBSTONE_OVERHEAD: usize = 96;

/// A partition position: token first, then the key's bytes unsigned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DecoratedKey {
    token: Token,
    key: Bytes,
}

/// A key in a partition's row map: a clustering, or (for range lookups
/// only) a bound position just before/after a prefix.
#[derive(Debug, Clone)]
struct RowKey {
    schema: Arc<TableSchema>,
    clustering: Clustering,
    /// 0 for a stored clustering; -1/+1 for probe bounds.
    side: i8,
}

impl PartialEq for RowKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for RowKey {}
impl PartialOrd for RowKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for RowKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.schema.compare_positions(
            Position::At(&self.clustering, self.side),
            Position::At(&other.clustering, other.side),
        )
    }
}

#[derive(Debug, Default)]
struct MemPartition {
    tombstone: Option<DeletionTime>,
    static_row: Option<Row>,
    range_tombstones: Vec<RangeTombstone>,
    rows: BTreeMap<RowKey, Row>,
}

/// One table's memtable.
#[derive(Debug)]
pub struct Memtable {
    schema: Arc<TableSchema>,
    partitions: BTreeMap<DecoratedKey, MemPartition>,
    /// Bytes allocated so far (monotonic, like an arena's usage).
    allocated: usize,
    operations: u64,
    min_timestamp: i64,
    max_timestamp: i64,
}

fn copy_bytes(b: &Bytes) -> Bytes {
    Bytes::copy_from_slice(b)
}

fn copy_clustering(c: &[Bytes]) -> Clustering {
    c.iter().map(copy_bytes).collect()
}

fn copy_cell(c: &Cell) -> Cell {
    Cell {
        timestamp: c.timestamp,
        ttl: c.ttl,
        expiry: c.expiry,
        value: c.value.as_ref().map(copy_bytes),
    }
}

/// Deep-copies a row, normalises it and reports its approximate size and
/// timestamp span.
fn copy_row(row: &Row, stats: &mut WriteStats) -> Row {
    let mut out = Row {
        liveness: row.liveness,
        deletion: row.deletion,
        columns: Vec::with_capacity(row.columns.len()),
    };
    stats.bytes += ROW_OVERHEAD;
    if let Some(l) = row.liveness {
        stats.timestamp(l.timestamp);
    }
    if let Some(d) = row.deletion {
        stats.timestamp(d.timestamp);
    }
    for (id, data) in &row.columns {
        let data = match data {
            ColumnData::Simple(c) => {
                stats.cell(c, 0);
                ColumnData::Simple(copy_cell(c))
            }
            ColumnData::Complex { tombstone, cells } => {
                if let Some(t) = tombstone {
                    stats.timestamp(t.timestamp);
                }
                ColumnData::Complex {
                    tombstone: *tombstone,
                    cells: cells
                        .iter()
                        .map(|(p, c)| {
                            stats.cell(c, p.len());
                            (copy_bytes(p), copy_cell(c))
                        })
                        .collect(),
                }
            }
        };
        out.columns.push((*id, data));
    }
    normalize_row(&mut out);
    out
}

#[derive(Default)]
struct WriteStats {
    bytes: usize,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
}

impl WriteStats {
    fn timestamp(&mut self, ts: i64) {
        self.min_ts = Some(self.min_ts.map_or(ts, |m| m.min(ts)));
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
    }
    fn cell(&mut self, c: &Cell, path_len: usize) {
        self.timestamp(c.timestamp);
        self.bytes += CELL_OVERHEAD + path_len + c.value.as_ref().map_or(0, |v| v.len());
    }
}

/// `BTreeMap::range` bounds for a clustering range (the range must not be
/// empty, or `BTreeMap::range` would panic).
fn row_bounds(
    schema: &Arc<TableSchema>,
    r: &ClusteringRange,
) -> (StdBound<RowKey>, StdBound<RowKey>) {
    let probe = |c: &Clustering, side: i8| RowKey {
        schema: schema.clone(),
        clustering: c.clone(),
        side,
    };
    let start = match &r.start {
        Bound::Unbounded => StdBound::Unbounded,
        Bound::Inclusive(p) => StdBound::Excluded(probe(p, -1)),
        Bound::Exclusive(p) => StdBound::Excluded(probe(p, 1)),
    };
    let end = match &r.end {
        Bound::Unbounded => StdBound::Unbounded,
        Bound::Inclusive(p) => StdBound::Excluded(probe(p, 1)),
        Bound::Exclusive(p) => StdBound::Excluded(probe(p, -1)),
    };
    (start, end)
}

impl Memtable {
    /// An empty memtable for `schema`'s table.
    pub fn new(schema: Arc<TableSchema>) -> Self {
        Memtable {
            schema,
            partitions: BTreeMap::new(),
            allocated: 0,
            operations: 0,
            min_timestamp: i64::MAX,
            max_timestamp: i64::MIN,
        }
    }

    /// The schema this memtable orders rows by.
    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    /// Approximate bytes used.
    pub fn memory_usage(&self) -> usize {
        self.allocated
    }

    /// Number of partitions held.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Number of updates applied.
    pub fn operation_count(&self) -> u64 {
        self.operations
    }

    /// Whether nothing was ever written.
    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// Whether the memtable holds anything for the partition.
    pub fn contains(&self, key: &PartitionKey) -> bool {
        self.partitions.contains_key(&DecoratedKey {
            token: key.token,
            key: key.key.clone(),
        })
    }

    /// Smallest and largest write timestamps seen, if any write was applied.
    pub fn timestamp_range(&self) -> Option<(i64, i64)> {
        (self.min_timestamp <= self.max_timestamp)
            .then_some((self.min_timestamp, self.max_timestamp))
    }

    /// Merges one partition update in. The caller validates the update's
    /// shape (clustering lengths) against the schema.
    pub fn apply(&mut self, update: &PartitionUpdate) {
        let mut stats = WriteStats::default();
        let dk = DecoratedKey {
            token: update.key.token,
            key: update.key.key.clone(),
        };
        let schema = self.schema.clone();
        let partition = match self.partitions.get_mut(&dk) {
            Some(p) => p,
            None => {
                stats.bytes += PARTITION_OVERHEAD + dk.key.len();
                let dk = DecoratedKey {
                    token: dk.token,
                    key: copy_bytes(&dk.key),
                };
                self.partitions.entry(dk).or_default()
            }
        };

        // Partition deletion: shadows everything older in the partition.
        if let Some(t) = update.tombstone {
            stats.timestamp(t.timestamp);
            let grows = partition
                .tombstone
                .is_none_or(|old| deletion_supersedes(&t, &old));
            if grows {
                partition.tombstone = Some(t);
                if let Some(s) = &mut partition.static_row {
                    purge_shadowed(s, Some(t));
                    if row_is_empty(s) {
                        partition.static_row = None;
                    }
                }
                partition
                    .range_tombstones
                    .retain(|rt| deletion_supersedes(&rt.deletion, &t));
                partition.rows.retain(|_, row| {
                    purge_shadowed(row, Some(t));
                    !row_is_empty(row)
                });
            }
        }
        let pt = partition.tombstone;

        if let Some(s) = &update.static_row {
            let mut s = copy_row(s, &mut stats);
            purge_shadowed(&mut s, pt);
            merge_into(&mut partition.static_row, s);
        }

        for rt in &update.range_tombstones {
            stats.timestamp(rt.deletion.timestamp);
            if pt.is_some_and(|p| !deletion_supersedes(&rt.deletion, &p)) {
                continue;
            }
            if schema.range_is_empty(&rt.range) || partition.range_tombstones.contains(rt) {
                continue;
            }
            stats.bytes += RANGE_TOMBSTONE_OVERHEAD;
            let mut copy = |b: &Bound| match b {
                Bound::Unbounded => Bound::Unbounded,
                Bound::Inclusive(p) => {
                    stats.bytes += p.iter().map(|x| x.len() + 16).sum::<usize>();
                    Bound::Inclusive(copy_clustering(p))
                }
                Bound::Exclusive(p) => {
                    stats.bytes += p.iter().map(|x| x.len() + 16).sum::<usize>();
                    Bound::Exclusive(copy_clustering(p))
                }
            };
            let range = ClusteringRange {
                start: copy(&rt.range.start),
                end: copy(&rt.range.end),
            };
            partition.range_tombstones.push(RangeTombstone {
                range,
                deletion: rt.deletion,
            });
        }

        for (c, row) in &update.rows {
            let mut row = copy_row(row, &mut stats);
            purge_shadowed(&mut row, pt);
            if row_is_empty(&row) {
                continue;
            }
            let key = RowKey {
                schema: schema.clone(),
                clustering: c.clone(),
                side: 0,
            };
            match partition.rows.get_mut(&key) {
                Some(existing) => merge_row(existing, &row),
                None => {
                    stats.bytes += c.iter().map(|x| x.len() + 16).sum::<usize>();
                    let key = RowKey {
                        schema: schema.clone(),
                        clustering: copy_clustering(c),
                        side: 0,
                    };
                    partition.rows.insert(key, row);
                }
            }
        }

        self.allocated += stats.bytes;
        self.operations += 1;
        if let (Some(lo), Some(hi)) = (stats.min_ts, stats.max_ts) {
            self.min_timestamp = self.min_timestamp.min(lo);
            self.max_timestamp = self.max_timestamp.max(hi);
        }
    }

    fn raw(
        &self,
        dk: &DecoratedKey,
        p: &MemPartition,
        ranges: &[ClusteringRange],
    ) -> PartitionUpdate {
        let mut out = PartitionUpdate::new(PartitionKey {
            token: dk.token,
            key: dk.key.clone(),
        });
        out.tombstone = p.tombstone;
        out.static_row = p.static_row.clone();
        out.range_tombstones = p
            .range_tombstones
            .iter()
            .filter(|rt| {
                ranges
                    .iter()
                    .any(|r| self.schema.ranges_intersect(r, &rt.range))
            })
            .cloned()
            .collect();
        for r in ranges {
            if self.schema.range_is_empty(r) {
                continue;
            }
            let bounds = row_bounds(&self.schema, r);
            for (k, row) in p.rows.range(bounds) {
                out.rows.push((k.clustering.clone(), row.clone()));
            }
        }
        // Ranges are documented as sorted and disjoint; keep the invariant
        // even if a caller broke it.
        if out
            .rows
            .windows(2)
            .any(|w| self.schema.compare_clustering(&w[0].0, &w[1].0) != Ordering::Less)
        {
            out.rows
                .sort_by(|a, b| self.schema.compare_clustering(&a.0, &b.0));
            out.rows
                .dedup_by(|a, b| self.schema.compare_clustering(&a.0, &b.0) == Ordering::Equal);
        }
        out
    }
}

fn merge_into(slot: &mut Option<Row>, row: Row) {
    if row_is_empty(&row) {
        return;
    }
    match slot {
        Some(existing) => merge_row(existing, &row),
        None => *slot = Some(row),
    }
}

impl MutationSource for Memtable {
    fn read_raw(
        &self,
        key: &PartitionKey,
        ranges: &[ClusteringRange],
    ) -> Result<Option<PartitionUpdate>, EngineError> {
        let dk = DecoratedKey {
            token: key.token,
            key: key.key.clone(),
        };
        Ok(self.partitions.get(&dk).map(|p| self.raw(&dk, p, ranges)))
    }

    fn scan_raw<'a>(
        &'a self,
        range: &'a TokenRange,
        ranges: &'a [ClusteringRange],
    ) -> Box<dyn Iterator<Item = Result<PartitionUpdate, EngineError>> + 'a> {
        let start = match &range.start {
            crate::read::ScanBound::Unbounded => StdBound::Unbounded,
            crate::read::ScanBound::Token { token, .. }
            | crate::read::ScanBound::Key { token, .. } => StdBound::Included(DecoratedKey {
                token: *token,
                key: Bytes::new(),
            }),
        };
        Box::new(
            self.partitions
                .range((start, StdBound::Unbounded))
                .skip_while(move |(dk, _)| !range.admits_start(dk.token, &dk.key))
                .take_while(move |(dk, _)| range.admits_end(dk.token, &dk.key))
                .map(move |(dk, p)| Ok(self.raw(dk, p, ranges))),
        )
    }
}
