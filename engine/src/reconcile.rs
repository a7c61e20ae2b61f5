//! Last-write-wins reconciliation, as Cassandra 4.x does it.
//!
//! * Cells (`Cells.reconcile`): the higher timestamp wins. On a tie an
//!   expiring cell or tombstone beats a regular live cell (CASSANDRA-14592,
//!   so the outcome never depends on the clock at merge time); a tombstone
//!   beats an expiring cell; between two expiring cells or two tombstones
//!   the larger local deletion time wins; then the greater value (unsigned
//!   bytes) wins.
//! * Row liveness (`LivenessInfo.supersedes`): higher timestamp, then an
//!   expiring marker over a non-expiring one, then the later expiry.
//! * Deletions (`DeletionTime.supersedes`): higher timestamp, then the
//!   larger local deletion time. A deletion at `t` shadows everything with
//!   timestamp `<= t`.
//!
//! Merging is commutative and associative, so every replica and every
//! merge order produces the same result.

use std::cmp::Ordering;

use crate::mutation::{Cell, ColumnData, DeletionTime, LivenessInfo, PartitionUpdate, Row};
use crate::schema::TableSchema;

/// Cassandra's `Cell.NO_DELETION_TIME`.
const NO_DELETION_TIME: i32 = i32::MAX;

/// Whether `d` shadows data written at `timestamp`.
#[inline]
pub fn deletes(d: &DeletionTime, timestamp: i64) -> bool {
    timestamp <= d.timestamp
}

/// Whether deletion `a` supersedes `b`.
#[inline]
pub fn deletion_supersedes(a: &DeletionTime, b: &DeletionTime) -> bool {
    a.timestamp > b.timestamp
        || (a.timestamp == b.timestamp && a.local_deletion_time > b.local_deletion_time)
}

/// The stronger of two optional deletions.
#[inline]
pub fn max_deletion(a: Option<DeletionTime>, b: Option<DeletionTime>) -> Option<DeletionTime> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if deletion_supersedes(&y, &x) { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Whether a cell is a tombstone (no value).
#[inline]
pub fn is_tombstone(c: &Cell) -> bool {
    c.value.is_none()
}

/// Whether a cell carries a TTL (and a value).
#[inline]
pub fn is_expiring(c: &Cell) -> bool {
    c.value.is_some() && c.ttl > 0
}

/// The cell's local deletion time in Cassandra's sense: the deletion time
/// of a tombstone, the expiry of an expiring cell, or "never".
#[inline]
pub fn local_deletion_time(c: &Cell) -> i32 {
    if is_tombstone(c) || is_expiring(c) {
        c.expiry
    } else {
        NO_DELETION_TIME
    }
}

/// Whether the cell holds a value visible at `now` (seconds).
#[inline]
pub fn cell_is_live(c: &Cell, now: i32) -> bool {
    c.value.is_some() && (c.ttl <= 0 || now < c.expiry)
}

/// Whether a row marker is live at `now`.
#[inline]
pub fn liveness_is_live(l: &LivenessInfo, now: i32) -> bool {
    l.ttl <= 0 || now < l.expiry
}

/// Orders two versions of a cell: `Greater` means `a` wins.
pub fn compare_cells(a: &Cell, b: &Cell) -> Ordering {
    match a.timestamp.cmp(&b.timestamp) {
        Ordering::Equal => {}
        o => return o,
    }
    let (la, lb) = (local_deletion_time(a), local_deletion_time(b));
    let (dead_a, dead_b) = (la != NO_DELETION_TIME, lb != NO_DELETION_TIME);
    if dead_a || dead_b {
        if dead_a != dead_b {
            return dead_a.cmp(&dead_b);
        }
        let (ta, tb) = (is_tombstone(a), is_tombstone(b));
        if ta != tb {
            return ta.cmp(&tb);
        }
        if la != lb {
            return la.cmp(&lb);
        }
    }
    let empty: &[u8] = &[];
    let va = a.value.as_deref().unwrap_or(empty);
    let vb = b.value.as_deref().unwrap_or(empty);
    va.cmp(vb)
}

/// The winner of two versions of a cell (`a` on a complete tie).
pub fn reconcile_cells<'a>(a: &'a Cell, b: &'a Cell) -> &'a Cell {
    if compare_cells(b, a) == Ordering::Greater {
        b
    } else {
        a
    }
}

/// Merges `update` into `existing` (keeps the winner).
pub fn merge_cell(existing: &mut Cell, update: &Cell) {
    if compare_cells(update, existing) == Ordering::Greater {
        *existing = update.clone();
    }
}

/// Whether row marker `a` supersedes `b`.
pub fn liveness_supersedes(a: &LivenessInfo, b: &LivenessInfo) -> bool {
    if a.timestamp != b.timestamp {
        return a.timestamp > b.timestamp;
    }
    let (ea, eb) = (a.ttl > 0, b.ttl > 0);
    if ea == eb {
        return a.expiry > b.expiry;
    }
    ea
}

/// The stronger of two optional row markers.
pub fn max_liveness(a: Option<LivenessInfo>, b: Option<LivenessInfo>) -> Option<LivenessInfo> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if liveness_supersedes(&y, &x) { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_timestamp(d: &ColumnData) -> i64 {
    match d {
        ColumnData::Simple(c) => c.timestamp,
        ColumnData::Complex { tombstone, cells } => cells
            .iter()
            .map(|(_, c)| c.timestamp)
            .chain(tombstone.iter().map(|t| t.timestamp))
            .max()
            .unwrap_or(i64::MIN),
    }
}

/// Merges sorted `(path, cell)` lists by path, reconciling equal paths.
fn merge_complex_cells(existing: &mut Vec<(bytes::Bytes, Cell)>, update: &[(bytes::Bytes, Cell)]) {
    if update.is_empty() {
        return;
    }
    let old = std::mem::take(existing);
    let mut out = Vec::with_capacity(old.len() + update.len());
    let mut a = old.into_iter().peekable();
    let mut b = update.iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                Ordering::Less => out.push(a.next().expect("peeked")),
                Ordering::Greater => out.push(b.next().expect("peeked").clone()),
                Ordering::Equal => {
                    let mut x = a.next().expect("peeked");
                    let y = b.next().expect("peeked");
                    merge_cell(&mut x.1, &y.1);
                    out.push(x);
                }
            },
            (Some(_), None) => out.push(a.next().expect("peeked")),
            (None, Some(_)) => out.push(b.next().expect("peeked").clone()),
            (None, None) => break,
        }
    }
    *existing = out;
}

/// Merges one column's data into another. A simple/complex mismatch (only
/// possible with inconsistent input) resolves deterministically: the side
/// with the newer data wins, complex on a tie.
pub fn merge_column(existing: &mut ColumnData, update: &ColumnData) {
    match (existing, update) {
        (ColumnData::Simple(e), ColumnData::Simple(u)) => merge_cell(e, u),
        (
            ColumnData::Complex { tombstone, cells },
            ColumnData::Complex {
                tombstone: ut,
                cells: uc,
            },
        ) => {
            *tombstone = max_deletion(*tombstone, *ut);
            merge_complex_cells(cells, uc);
        }
        (e, u) => {
            let (te, tu) = (max_timestamp(e), max_timestamp(u));
            let update_wins = match tu.cmp(&te) {
                Ordering::Greater => true,
                Ordering::Less => false,
                Ordering::Equal => matches!(u, ColumnData::Complex { .. }),
            };
            if update_wins {
                *e = u.clone();
            }
        }
    }
}

/// Sorts a complex column's cells by path and reconciles duplicates.
fn normalize_complex(cells: &mut Vec<(bytes::Bytes, Cell)>) {
    if cells.windows(2).all(|w| w[0].0 < w[1].0) {
        return;
    }
    cells.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(bytes::Bytes, Cell)> = Vec::with_capacity(cells.len());
    for (path, cell) in cells.drain(..) {
        match out.last_mut() {
            Some(last) if last.0 == path => merge_cell(&mut last.1, &cell),
            _ => out.push((path, cell)),
        }
    }
    *cells = out;
}

/// Brings a row from untrusted input to the invariants the engine relies
/// on: columns sorted by id without duplicates, complex cells sorted by
/// path without duplicates.
pub fn normalize_row(row: &mut Row) {
    for (_, data) in row.columns.iter_mut() {
        if let ColumnData::Complex { cells, .. } = data {
            normalize_complex(cells);
        }
    }
    if row.columns.windows(2).all(|w| w[0].0 < w[1].0) {
        return;
    }
    row.columns.sort_by_key(|c| c.0);
    let mut out: Vec<(u32, ColumnData)> = Vec::with_capacity(row.columns.len());
    for (id, data) in row.columns.drain(..) {
        match out.last_mut() {
            Some(last) if last.0 == id => merge_column(&mut last.1, &data),
            _ => out.push((id, data)),
        }
    }
    row.columns = out;
}

/// Drops from `row` everything shadowed by `outer` (a partition or range
/// deletion covering the row), by the row's own deletion, and by each
/// complex column's tombstone. Deletions made redundant by a stronger one
/// go too.
pub fn purge_shadowed(row: &mut Row, outer: Option<DeletionTime>) {
    if let (Some(rd), Some(o)) = (row.deletion, outer) {
        if !deletion_supersedes(&rd, &o) {
            row.deletion = None;
        }
    }
    let deletion = max_deletion(outer, row.deletion);
    if let Some(d) = deletion {
        if row.liveness.is_some_and(|l| deletes(&d, l.timestamp)) {
            row.liveness = None;
        }
    }
    row.columns.retain_mut(|(_, data)| match data {
        ColumnData::Simple(c) => !deletion.is_some_and(|d| deletes(&d, c.timestamp)),
        ColumnData::Complex { tombstone, cells } => {
            if let (Some(t), Some(d)) = (*tombstone, deletion) {
                if !deletion_supersedes(&t, &d) {
                    *tombstone = None;
                }
            }
            let effective = max_deletion(*tombstone, deletion);
            if let Some(d) = effective {
                cells.retain(|(_, c)| !deletes(&d, c.timestamp));
            }
            tombstone.is_some() || !cells.is_empty()
        }
    });
}

/// Merges row `update` into `existing`, then drops what the merged row
/// deletion shadows (as Cassandra's `Rows.merge` does).
pub fn merge_row(existing: &mut Row, update: &Row) {
    existing.liveness = max_liveness(existing.liveness, update.liveness);
    existing.deletion = max_deletion(existing.deletion, update.deletion);
    if !update.columns.is_empty() {
        let old = std::mem::take(&mut existing.columns);
        let mut out = Vec::with_capacity(old.len() + update.columns.len());
        let mut a = old.into_iter().peekable();
        let mut b = update.columns.iter().peekable();
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                    Ordering::Less => out.push(a.next().expect("peeked")),
                    Ordering::Greater => out.push(b.next().expect("peeked").clone()),
                    Ordering::Equal => {
                        let mut x = a.next().expect("peeked");
                        let y = b.next().expect("peeked");
                        merge_column(&mut x.1, &y.1);
                        out.push(x);
                    }
                },
                (Some(_), None) => out.push(a.next().expect("peeked")),
                (None, Some(_)) => out.push(b.next().expect("peeked").clone()),
                (None, None) => break,
            }
        }
        existing.columns = out;
    }
    purge_shadowed(existing, None);
}

/// Whether a row carries nothing at all (no marker, deletion or column).
pub fn row_is_empty(row: &Row) -> bool {
    row.liveness.is_none() && row.deletion.is_none() && row.columns.is_empty()
}

/// Applies `update` into `target` (same partition): partition tombstone,
/// static row, range tombstones and rows, merged by clustering order.
/// Rows of both sides must be sorted in the schema's clustering order.
pub fn apply_update(schema: &TableSchema, target: &mut PartitionUpdate, update: &PartitionUpdate) {
    target.tombstone = max_deletion(target.tombstone, update.tombstone);
    if let Some(s) = &update.static_row {
        match &mut target.static_row {
            Some(t) => merge_row(t, s),
            None => target.static_row = Some(s.clone()),
        }
    }
    for rt in &update.range_tombstones {
        if !target.range_tombstones.contains(rt) {
            target.range_tombstones.push(rt.clone());
        }
    }
    if !update.rows.is_empty() {
        let old = std::mem::take(&mut target.rows);
        let mut out = Vec::with_capacity(old.len() + update.rows.len());
        let mut a = old.into_iter().peekable();
        let mut b = update.rows.iter().peekable();
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => match schema.compare_clustering(&x.0, &y.0) {
                    Ordering::Less => out.push(a.next().expect("peeked")),
                    Ordering::Greater => out.push(b.next().expect("peeked").clone()),
                    Ordering::Equal => {
                        let mut x = a.next().expect("peeked");
                        let y = b.next().expect("peeked");
                        merge_row(&mut x.1, &y.1);
                        out.push(x);
                    }
                },
                (Some(_), None) => out.push(a.next().expect("peeked")),
                (None, Some(_)) => out.push(b.next().expect("peeked").clone()),
                (None, None) => break,
            }
        }
        target.rows = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn live(ts: i64, v: &str) -> Cell {
        Cell {
            timestamp: ts,
            ttl: 0,
            expiry: 0,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
        }
    }
    fn expiring(ts: i64, v: &str, expiry: i32) -> Cell {
        Cell {
            timestamp: ts,
            ttl: 10,
            expiry,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
        }
    }
    fn tomb(ts: i64, ldt: i32) -> Cell {
        Cell {
            timestamp: ts,
            ttl: 0,
            expiry: ldt,
            value: None,
        }
    }

    fn check(a: &Cell, b: &Cell, winner: &Cell) {
        assert_eq!(reconcile_cells(a, b), winner);
        assert_eq!(reconcile_cells(b, a), winner);
    }

    #[test]
    fn cell_rules() {
        check(&live(2, "a"), &live(1, "z"), &live(2, "a"));
        check(&live(1, "a"), &live(1, "b"), &live(1, "b"));
        check(&live(1, "zz"), &tomb(1, 0), &tomb(1, 0));
        check(&live(1, "zz"), &expiring(1, "a", 5), &expiring(1, "a", 5));
        check(&expiring(1, "z", 100), &tomb(1, 1), &tomb(1, 1));
        check(
            &expiring(1, "z", 100),
            &expiring(1, "a", 200),
            &expiring(1, "a", 200),
        );
        check(
            &expiring(1, "a", 100),
            &expiring(1, "b", 100),
            &expiring(1, "b", 100),
        );
        check(&tomb(1, 5), &tomb(1, 6), &tomb(1, 6));
        check(&tomb(1, 5), &live(2, ""), &live(2, ""));
    }

    #[test]
    fn liveness_rules() {
        let l = |ts, ttl, expiry| LivenessInfo {
            timestamp: ts,
            ttl,
            expiry,
        };
        assert!(liveness_supersedes(&l(2, 0, 0), &l(1, 5, 9)));
        assert!(liveness_supersedes(&l(1, 5, 9), &l(1, 0, 0)));
        assert!(!liveness_supersedes(&l(1, 0, 0), &l(1, 5, 9)));
        assert!(liveness_supersedes(&l(1, 5, 10), &l(1, 5, 9)));
    }

    #[test]
    fn row_merge_purges_shadowed() {
        let mut r = Row {
            liveness: Some(LivenessInfo {
                timestamp: 5,
                ttl: 0,
                expiry: 0,
            }),
            deletion: None,
            columns: vec![
                (1, ColumnData::Simple(live(5, "x"))),
                (2, ColumnData::Simple(live(9, "y"))),
                (
                    3,
                    ColumnData::Complex {
                        tombstone: None,
                        cells: vec![
                            (Bytes::from_static(b"a"), live(3, "1")),
                            (Bytes::from_static(b"b"), live(8, "2")),
                        ],
                    },
                ),
            ],
        };
        let del = Row {
            liveness: None,
            deletion: Some(DeletionTime {
                timestamp: 6,
                local_deletion_time: 100,
            }),
            columns: vec![(
                3,
                ColumnData::Complex {
                    tombstone: Some(DeletionTime {
                        timestamp: 7,
                        local_deletion_time: 100,
                    }),
                    cells: vec![],
                },
            )],
        };
        merge_row(&mut r, &del);
        assert_eq!(r.liveness, None);
        assert_eq!(r.columns.len(), 2);
        assert_eq!(r.columns[0].0, 2);
        match &r.columns[1].1 {
            ColumnData::Complex { tombstone, cells } => {
                assert_eq!(tombstone.map(|t| t.timestamp), Some(7));
                assert_eq!(cells.len(), 1);
                assert_eq!(&cells[0].0[..], b"b");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn normalize_sorts_and_dedups() {
        let mut r = Row {
            liveness: None,
            deletion: None,
            columns: vec![
                (2, ColumnData::Simple(live(1, "a"))),
                (1, ColumnData::Simple(live(1, "b"))),
                (2, ColumnData::Simple(live(3, "c"))),
            ],
        };
        normalize_row(&mut r);
        assert_eq!(r.columns.len(), 2);
        assert_eq!(r.columns[1].1, ColumnData::Simple(live(3, "c")));
    }
}
