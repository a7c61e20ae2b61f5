//! The data model every layer above storage speaks: a [`Mutation`] is a
//! [`PartitionUpdate`] for one table; the same types come back from reads.
//!
//! Timestamps are microseconds (the CQL write time). `local_deletion_time`
//! and expiry times are seconds since the epoch (Cassandra's `int` clock).

use bytes::Bytes;

/// A table's identity inside the engine (the schema's table UUID).
pub type TableId = [u8; 16];

/// Murmur3Partitioner token.
pub type Token = i64;

/// A partition key: its serialised bytes (Cassandra's form: a single
/// component as-is, composite keys as `[u16 len][bytes][0x00]` per
/// component) and its token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub token: Token,
    pub key: Bytes,
}

/// A full clustering key (one value per clustering column) or, in bounds, a
/// prefix of one. Empty for tables without clustering columns.
pub type Clustering = Vec<Bytes>;

/// When and at what timestamp something was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeletionTime {
    pub timestamp: i64,
    pub local_deletion_time: i32,
}

/// Row liveness (the "row marker" written by INSERT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LivenessInfo {
    pub timestamp: i64,
    /// 0 = no TTL.
    pub ttl: i32,
    /// Expiry in seconds since the epoch when `ttl > 0`.
    pub expiry: i32,
}

/// One cell version. `value == None` is a cell tombstone, whose
/// `local_deletion_time` is `expiry`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cell {
    pub timestamp: i64,
    /// 0 = no TTL.
    pub ttl: i32,
    /// Expiry (live cell with TTL) or local deletion time (tombstone), seconds.
    pub expiry: i32,
    pub value: Option<Bytes>,
}

/// The content of one column in a row: an atomic cell, or for non-frozen
/// collections and UDTs a set of cells keyed by path (list: timeuuid key;
/// set: element; map: key; UDT: field index as u16 BE) plus a
/// collection-wide tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnData {
    Simple(Cell),
    Complex {
        tombstone: Option<DeletionTime>,
        cells: Vec<(Bytes, Cell)>,
    },
}

/// Column id: the column's index in the table's regular+static column list,
/// assigned by the schema and never reused.
pub type ColumnId = u32;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Row {
    pub liveness: Option<LivenessInfo>,
    pub deletion: Option<DeletionTime>,
    /// Sorted by column id, no duplicates.
    pub columns: Vec<(ColumnId, ColumnData)>,
}

/// One end of a clustering range. A prefix bound covers every clustering
/// that starts with the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bound {
    Unbounded,
    Inclusive(Clustering),
    Exclusive(Clustering),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusteringRange {
    pub start: Bound,
    pub end: Bound,
}

impl ClusteringRange {
    pub fn full() -> Self {
        ClusteringRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeTombstone {
    pub range: ClusteringRange,
    pub deletion: DeletionTime,
}

/// All changes to (or all data read from) one partition of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionUpdate {
    pub key: PartitionKey,
    pub tombstone: Option<DeletionTime>,
    pub static_row: Option<Row>,
    pub range_tombstones: Vec<RangeTombstone>,
    /// Sorted by clustering order, no duplicates.
    pub rows: Vec<(Clustering, Row)>,
}

impl PartitionUpdate {
    /// The lowest and highest write timestamps in the update (cells, row
    /// liveness and deletions, tombstones); `None` when it has none.
    pub fn timestamp_range(&self) -> Option<(i64, i64)> {
        let mut span: Option<(i64, i64)> = None;
        let mut add = |ts: i64| {
            span = Some(match span {
                None => (ts, ts),
                Some((lo, hi)) => (lo.min(ts), hi.max(ts)),
            });
        };
        if let Some(t) = self.tombstone {
            add(t.timestamp);
        }
        for rt in &self.range_tombstones {
            add(rt.deletion.timestamp);
        }
        for row in self
            .static_row
            .iter()
            .chain(self.rows.iter().map(|(_, r)| r))
        {
            if let Some(l) = row.liveness {
                add(l.timestamp);
            }
            if let Some(d) = row.deletion {
                add(d.timestamp);
            }
            for (_, data) in &row.columns {
                match data {
                    ColumnData::Simple(c) => add(c.timestamp),
                    ColumnData::Complex { tombstone, cells } => {
                        if let Some(t) = tombstone {
                            add(t.timestamp);
                        }
                        for (_, c) in cells {
                            add(c.timestamp);
                        }
                    }
                }
            }
        }
        span
    }

    pub fn new(key: PartitionKey) -> Self {
        PartitionUpdate {
            key,
            tombstone: None,
            static_row: None,
            range_tombstones: Vec::new(),
            rows: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    pub table: TableId,
    pub update: PartitionUpdate,
}
