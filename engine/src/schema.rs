//! What the engine needs to know about a table: its id, how its clustering
//! keys order, and its `gc_grace_seconds`.
//!
//! Clustering bounds follow Cassandra's `ClusteringBound` semantics: a bound
//! is a *prefix* of a clustering, and a start bound `Inclusive(p)` sits just
//! before every clustering starting with `p`, `Exclusive(p)` just after all
//! of them; for end bounds the reverse. Bounds are always expressed in the
//! table's clustering order (reversed columns included), never in the order
//! a query returns rows.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::compaction::CompactionStrategy;
use crate::mutation::{Bound, ClusteringRange, TableId};
use crate::types::KeyType;

/// One clustering column: how it compares and whether it is `DESC`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusteringColumn {
    pub ty: KeyType,
    /// `WITH CLUSTERING ORDER BY (c DESC)`.
    pub reversed: bool,
}

/// The engine's view of a table (Cassandra's `TableMetadata` reduced to what
/// storage needs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableSchema {
    pub id: TableId,
    pub clustering: Vec<ClusteringColumn>,
    /// Tombstones younger than this (seconds) are never purged.
    pub gc_grace_seconds: i32,
    /// How the table's SSTables are compacted (size-tiered by default).
    pub compaction: CompactionStrategy,
}

/// A point in clustering space: a full clustering, or a position just
/// before / just after every clustering with a given prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Position<'a> {
    /// Before everything.
    Bottom,
    /// `side` is -1 (before all clusterings with this prefix), 0 (this
    /// clustering itself) or +1 (after all clusterings with this prefix).
    At(&'a [Bytes], i8),
    /// After everything.
    Top,
}

impl<'a> Position<'a> {
    /// The position of a bound used as the start of a range.
    pub(crate) fn start(b: &'a Bound) -> Position<'a> {
        match b {
            Bound::Unbounded => Position::Bottom,
            Bound::Inclusive(p) => Position::At(p, -1),
            Bound::Exclusive(p) => Position::At(p, 1),
        }
    }

    /// The position of a bound used as the end of a range.
    pub(crate) fn end(b: &'a Bound) -> Position<'a> {
        match b {
            Bound::Unbounded => Position::Top,
            Bound::Inclusive(p) => Position::At(p, 1),
            Bound::Exclusive(p) => Position::At(p, -1),
        }
    }
}

impl TableSchema {
    /// A schema with the given clustering columns.
    pub fn new(id: TableId, clustering: Vec<ClusteringColumn>, gc_grace_seconds: i32) -> Self {
        TableSchema {
            id,
            clustering,
            gc_grace_seconds,
            compaction: CompactionStrategy::default(),
        }
    }

    /// The schema with another compaction strategy.
    pub fn with_compaction(mut self, compaction: CompactionStrategy) -> Self {
        self.compaction = compaction;
        self
    }

    /// Compares component `i` of two clusterings, honouring `DESC`.
    /// Components past the schema's columns compare bytewise.
    pub fn compare_component(&self, i: usize, a: &[u8], b: &[u8]) -> Ordering {
        match self.clustering.get(i) {
            Some(col) => {
                let c = col.ty.compare(a, b);
                if col.reversed {
                    c.reverse()
                } else {
                    c
                }
            }
            None => a.cmp(b),
        }
    }

    /// Compares two clusterings (or prefixes) in clustering order; when one
    /// is a prefix of the other, the shorter sorts first.
    pub fn compare_clustering(&self, a: &[Bytes], b: &[Bytes]) -> Ordering {
        self.compare_positions(Position::At(a, 0), Position::At(b, 0))
    }

    pub(crate) fn compare_positions(&self, a: Position<'_>, b: Position<'_>) -> Ordering {
        match (a, b) {
            (Position::Bottom, Position::Bottom) | (Position::Top, Position::Top) => {
                Ordering::Equal
            }
            (Position::Bottom, _) | (_, Position::Top) => Ordering::Less,
            (_, Position::Bottom) | (Position::Top, _) => Ordering::Greater,
            (Position::At(pa, sa), Position::At(pb, sb)) => {
                for (i, (x, y)) in pa.iter().zip(pb.iter()).enumerate() {
                    let c = self.compare_component(i, x, y);
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                match pa.len().cmp(&pb.len()) {
                    Ordering::Equal => sa.cmp(&sb),
                    // `pa` is a proper prefix of `pb`.
                    Ordering::Less => {
                        if sa > 0 {
                            Ordering::Greater
                        } else {
                            Ordering::Less
                        }
                    }
                    Ordering::Greater => {
                        if sb > 0 {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        }
                    }
                }
            }
        }
    }

    /// Where clustering `c` sits relative to `start` used as a range start:
    /// `Less` means `c` is excluded by it.
    pub fn compare_to_start(&self, c: &[Bytes], start: &Bound) -> Ordering {
        self.compare_positions(Position::At(c, 0), Position::start(start))
    }

    /// Where clustering `c` sits relative to `end` used as a range end:
    /// `Greater` means `c` is excluded by it.
    pub fn compare_to_end(&self, c: &[Bytes], end: &Bound) -> Ordering {
        self.compare_positions(Position::At(c, 0), Position::end(end))
    }

    /// Orders two start bounds (the one that admits more sorts first).
    pub fn compare_starts(&self, a: &Bound, b: &Bound) -> Ordering {
        self.compare_positions(Position::start(a), Position::start(b))
    }

    /// Orders two end bounds (the one that admits less sorts first).
    pub fn compare_ends(&self, a: &Bound, b: &Bound) -> Ordering {
        self.compare_positions(Position::end(a), Position::end(b))
    }

    /// Whether clustering `c` is inside `range`.
    pub fn range_contains(&self, range: &ClusteringRange, c: &[Bytes]) -> bool {
        self.compare_to_start(c, &range.start) == Ordering::Greater
            && self.compare_to_end(c, &range.end) == Ordering::Less
    }

    /// Whether `range` admits no clustering at all.
    pub fn range_is_empty(&self, range: &ClusteringRange) -> bool {
        self.compare_positions(Position::start(&range.start), Position::end(&range.end))
            != Ordering::Less
    }

    /// Whether two ranges share at least one position.
    pub fn ranges_intersect(&self, a: &ClusteringRange, b: &ClusteringRange) -> bool {
        let start = match self.compare_starts(&a.start, &b.start) {
            Ordering::Less => &b.start,
            _ => &a.start,
        };
        let end = match self.compare_ends(&a.end, &b.end) {
            Ordering::Greater => &b.end,
            _ => &a.end,
        };
        self.compare_positions(Position::start(start), Position::end(end)) == Ordering::Less
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(reversed: bool) -> TableSchema {
        TableSchema::new(
            [0; 16],
            vec![
                ClusteringColumn {
                    ty: KeyType::Int,
                    reversed: false,
                },
                ClusteringColumn {
                    ty: KeyType::Int,
                    reversed,
                },
            ],
            864000,
        )
    }

    fn ck(v: &[i32]) -> Vec<Bytes> {
        v.iter()
            .map(|x| Bytes::copy_from_slice(&x.to_be_bytes()))
            .collect()
    }

    #[test]
    fn clustering_order_honours_desc() {
        let s = schema(false);
        assert_eq!(
            s.compare_clustering(&ck(&[1, 2]), &ck(&[1, 3])),
            Ordering::Less
        );
        assert_eq!(
            s.compare_clustering(&ck(&[-1, 9]), &ck(&[1, 0])),
            Ordering::Less
        );
        let s = schema(true);
        assert_eq!(
            s.compare_clustering(&ck(&[1, 2]), &ck(&[1, 3])),
            Ordering::Greater
        );
        assert_eq!(
            s.compare_clustering(&ck(&[1]), &ck(&[1, 3])),
            Ordering::Less
        );
    }

    #[test]
    fn prefix_bounds() {
        let s = schema(false);
        let r = ClusteringRange {
            start: Bound::Inclusive(ck(&[1])),
            end: Bound::Exclusive(ck(&[3])),
        };
        assert!(!s.range_contains(&r, &ck(&[0, 100])));
        assert!(s.range_contains(&r, &ck(&[1, i32::MIN])));
        assert!(s.range_contains(&r, &ck(&[2, i32::MAX])));
        assert!(!s.range_contains(&r, &ck(&[3, i32::MIN])));
        let r = ClusteringRange {
            start: Bound::Exclusive(ck(&[1])),
            end: Bound::Inclusive(ck(&[3])),
        };
        assert!(!s.range_contains(&r, &ck(&[1, i32::MAX])));
        assert!(s.range_contains(&r, &ck(&[3, i32::MAX])));
        assert!(!s.range_contains(&r, &ck(&[4, i32::MIN])));
        // Full-clustering bounds.
        let r = ClusteringRange {
            start: Bound::Exclusive(ck(&[1, 5])),
            end: Bound::Inclusive(ck(&[1, 7])),
        };
        assert!(!s.range_contains(&r, &ck(&[1, 5])));
        assert!(s.range_contains(&r, &ck(&[1, 6])));
        assert!(s.range_contains(&r, &ck(&[1, 7])));
        // Empty prefix bound is everything.
        let all = ClusteringRange {
            start: Bound::Inclusive(vec![]),
            end: Bound::Inclusive(vec![]),
        };
        assert!(s.range_contains(&all, &ck(&[i32::MIN, 0])));
        assert!(!s.range_is_empty(&all));
    }

    #[test]
    fn empty_and_intersecting_ranges() {
        let s = schema(false);
        let point = |b: Bound, e: Bound| ClusteringRange { start: b, end: e };
        assert!(s.range_is_empty(&point(
            Bound::Exclusive(ck(&[1])),
            Bound::Inclusive(ck(&[1]))
        )));
        assert!(!s.range_is_empty(&point(
            Bound::Inclusive(ck(&[1])),
            Bound::Inclusive(ck(&[1]))
        )));
        assert!(s.range_is_empty(&point(
            Bound::Inclusive(ck(&[2])),
            Bound::Inclusive(ck(&[1]))
        )));
        let a = point(Bound::Inclusive(ck(&[1])), Bound::Exclusive(ck(&[2])));
        let b = point(Bound::Inclusive(ck(&[2])), Bound::Unbounded);
        assert!(!s.ranges_intersect(&a, &b));
        let c = point(Bound::Inclusive(ck(&[1, 5])), Bound::Unbounded);
        assert!(s.ranges_intersect(&a, &c));
        assert!(s.ranges_intersect(&ClusteringRange::full(), &b));
    }
}
