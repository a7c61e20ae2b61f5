//! The reader-conformance suite (Scylla's `mutation_source_test` idea): one
//! set of cases, run against every reader. Each case writes updates,
//! builds a reader with a [`ReaderFactory`] and checks live reads.

use std::sync::Arc;

use bytes::Bytes;

use super::{int, ReaderFactory};
use crate::mutation::{
    Bound, Cell, ClusteringRange, ColumnData, DeletionTime, LivenessInfo, PartitionKey,
    PartitionUpdate, RangeTombstone, Row,
};
use crate::read::{ReadCommand, ScanBound, TokenRange};
use crate::schema::{ClusteringColumn, TableSchema};
use crate::types::KeyType;

const NOW: i32 = 1_000;

fn schema2(second_desc: bool) -> Arc<TableSchema> {
    Arc::new(TableSchema::new(
        [7; 16],
        vec![
            ClusteringColumn {
                ty: KeyType::Int,
                reversed: false,
            },
            ClusteringColumn {
                ty: KeyType::Int,
                reversed: second_desc,
            },
        ],
        864_000,
    ))
}

fn pk(n: u8) -> PartitionKey {
    PartitionKey {
        token: n as i64 * 100 - 300,
        key: Bytes::copy_from_slice(&[n]),
    }
}

fn ck(v: &[i32]) -> Vec<Bytes> {
    v.iter().map(|x| int(*x)).collect()
}

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
        ttl: 60,
        expiry,
        value: Some(Bytes::copy_from_slice(v.as_bytes())),
    }
}

fn tomb(ts: i64) -> Cell {
    Cell {
        timestamp: ts,
        ttl: 0,
        expiry: NOW - 10,
        value: None,
    }
}

fn del(ts: i64) -> DeletionTime {
    DeletionTime {
        timestamp: ts,
        local_deletion_time: NOW - 10,
    }
}

fn marker(ts: i64) -> LivenessInfo {
    LivenessInfo {
        timestamp: ts,
        ttl: 0,
        expiry: 0,
    }
}

/// An INSERT-like row: marker plus simple cells.
fn insert(ts: i64, cells: &[(u32, &str)]) -> Row {
    Row {
        liveness: Some(marker(ts)),
        deletion: None,
        columns: cells
            .iter()
            .map(|(id, v)| (*id, ColumnData::Simple(live(ts, v))))
            .collect(),
    }
}

/// An UPDATE-like row: cells only.
fn cells(cs: Vec<(u32, Cell)>) -> Row {
    Row {
        liveness: None,
        deletion: None,
        columns: cs
            .into_iter()
            .map(|(id, c)| (id, ColumnData::Simple(c)))
            .collect(),
    }
}

fn upd(key: u8, rows: Vec<(Vec<Bytes>, Row)>) -> PartitionUpdate {
    let mut u = PartitionUpdate::new(pk(key));
    u.rows = rows;
    u
}

fn rt(start: Bound, end: Bound, ts: i64) -> RangeTombstone {
    RangeTombstone {
        range: ClusteringRange { start, end },
        deletion: del(ts),
    }
}

fn cmd() -> ReadCommand {
    ReadCommand::full(NOW)
}

fn keys(p: &Option<PartitionUpdate>) -> Vec<Vec<i32>> {
    p.as_ref()
        .map(|p| {
            p.rows
                .iter()
                .map(|(c, _)| {
                    c.iter()
                        .map(|b| i32::from_be_bytes(b[..].try_into().expect("int")))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn simple(row: &Row, id: u32) -> Option<&Cell> {
    row.columns.iter().find_map(|(i, d)| match d {
        ColumnData::Simple(c) if *i == id => Some(c),
        _ => None,
    })
}

fn value(row: &Row, id: u32) -> Option<String> {
    simple(row, id).and_then(|c| {
        c.value
            .as_ref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

fn grid(ts: i64, a: std::ops::Range<i32>, b: std::ops::Range<i32>) -> Vec<(Vec<Bytes>, Row)> {
    let mut rows = Vec::new();
    for x in a {
        for y in b.clone() {
            rows.push((ck(&[x, y]), insert(ts, &[(1, "v")])));
        }
    }
    rows
}

pub(crate) fn lww_higher_timestamp_wins(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let a = upd(1, vec![(ck(&[1, 1]), cells(vec![(1, live(2, "new"))]))]);
    let b = upd(1, vec![(ck(&[1, 1]), cells(vec![(1, live(1, "zzz-old"))]))]);
    for order in [vec![a.clone(), b.clone()], vec![b, a]] {
        let r = f.build(s.clone(), &order).read(&pk(1), &cmd());
        let p = r.expect("partition");
        assert_eq!(value(&p.rows[0].1, 1).as_deref(), Some("new"));
        assert_eq!(p.rows[0].1.liveness, None);
    }
}

pub(crate) fn lww_tie_breaks_on_value_then_tombstone(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let a = upd(1, vec![(ck(&[1, 1]), cells(vec![(1, live(5, "a"))]))]);
    let b = upd(1, vec![(ck(&[1, 1]), cells(vec![(1, live(5, "b"))]))]);
    for order in [vec![a.clone(), b.clone()], vec![b.clone(), a.clone()]] {
        let p = f
            .build(s.clone(), &order)
            .read(&pk(1), &cmd())
            .expect("live");
        assert_eq!(value(&p.rows[0].1, 1).as_deref(), Some("b"));
    }
    // A tombstone with the same timestamp beats any live value.
    let t = upd(1, vec![(ck(&[1, 1]), cells(vec![(1, tomb(5))]))]);
    for order in [vec![a.clone(), t.clone()], vec![t.clone(), a.clone()]] {
        assert!(f.build(s.clone(), &order).read(&pk(1), &cmd()).is_none());
    }
    // So does an expiring cell (even one not yet expired).
    let e = upd(
        1,
        vec![(ck(&[1, 1]), cells(vec![(1, expiring(5, "a", NOW + 50))]))],
    );
    let bigger = upd(1, vec![(ck(&[1, 1]), cells(vec![(1, live(5, "zzzz"))]))]);
    for order in [vec![e.clone(), bigger.clone()], vec![bigger, e]] {
        let p = f
            .build(s.clone(), &order)
            .read(&pk(1), &cmd())
            .expect("live");
        let c = simple(&p.rows[0].1, 1).expect("cell");
        assert_eq!((c.ttl, c.expiry), (60, NOW + 50));
    }
}

pub(crate) fn live_cells_keep_write_metadata(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let u = upd(
        1,
        vec![(
            ck(&[1, 1]),
            Row {
                liveness: Some(LivenessInfo {
                    timestamp: 42,
                    ttl: 60,
                    expiry: NOW + 30,
                }),
                deletion: None,
                columns: vec![(1, ColumnData::Simple(expiring(42, "x", NOW + 30)))],
            },
        )],
    );
    let p = f.build(s, &[u]).read(&pk(1), &cmd()).expect("live");
    let row = &p.rows[0].1;
    assert_eq!(
        row.liveness.map(|l| (l.timestamp, l.ttl, l.expiry)),
        Some((42, 60, NOW + 30))
    );
    assert_eq!(simple(row, 1), Some(&expiring(42, "x", NOW + 30)));
    assert_eq!(row.deletion, None);
    assert!(p.range_tombstones.is_empty() && p.tombstone.is_none());
}

pub(crate) fn row_deletion_shadows_older_only(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let w = upd(
        1,
        vec![(
            ck(&[1, 1]),
            Row {
                liveness: Some(marker(5)),
                deletion: None,
                columns: vec![
                    (1, ColumnData::Simple(live(4, "old"))),
                    (2, ColumnData::Simple(live(6, "new"))),
                ],
            },
        )],
    );
    let d = upd(
        1,
        vec![(
            ck(&[1, 1]),
            Row {
                liveness: None,
                deletion: Some(del(5)),
                columns: vec![],
            },
        )],
    );
    for order in [vec![w.clone(), d.clone()], vec![d, w]] {
        let p = f
            .build(s.clone(), &order)
            .read(&pk(1), &cmd())
            .expect("live");
        let row = &p.rows[0].1;
        assert_eq!(
            row.liveness, None,
            "marker at the deletion timestamp is shadowed"
        );
        assert_eq!(value(row, 1), None);
        assert_eq!(value(row, 2).as_deref(), Some("new"));
    }
}

pub(crate) fn partition_tombstone(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let mut w = upd(1, grid(10, 0..2, 0..2));
    w.static_row = Some(cells(vec![(9, live(10, "s"))]));
    let mut d = PartitionUpdate::new(pk(1));
    d.tombstone = Some(del(10));
    let later = upd(1, vec![(ck(&[5, 5]), insert(11, &[(1, "after")]))]);
    let r = f.build(s.clone(), &[w.clone(), d.clone()]);
    assert!(r.read(&pk(1), &cmd()).is_none());
    let r = f.build(s.clone(), &[later.clone(), d.clone(), w.clone()]);
    let p = r.read(&pk(1), &cmd()).expect("live");
    assert_eq!(keys(&Some(p.clone())), vec![vec![5, 5]]);
    assert!(p.static_row.is_none());
    // Other partitions are untouched.
    let other = upd(2, grid(1, 0..1, 0..1));
    let r = f.build(s, &[other, d]);
    assert!(r.read(&pk(2), &cmd()).is_some());
    assert!(r.read(&pk(1), &cmd()).is_none());
}

pub(crate) fn range_tombstones_over_prefixes(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let w = upd(1, grid(5, 0..5, 0..2));
    let mut d = PartitionUpdate::new(pk(1));
    d.range_tombstones = vec![rt(
        Bound::Inclusive(ck(&[1])),
        Bound::Inclusive(ck(&[2])),
        5,
    )];
    let p = f
        .build(s.clone(), &[w.clone(), d.clone()])
        .read(&pk(1), &cmd());
    assert_eq!(
        keys(&p),
        vec![
            vec![0, 0],
            vec![0, 1],
            vec![3, 0],
            vec![3, 1],
            vec![4, 0],
            vec![4, 1]
        ]
    );
    // Exclusive prefix bounds exclude the whole prefix.
    let mut d2 = PartitionUpdate::new(pk(1));
    d2.range_tombstones = vec![rt(
        Bound::Exclusive(ck(&[1])),
        Bound::Exclusive(ck(&[3])),
        5,
    )];
    let p = f.build(s.clone(), &[d2, w.clone()]).read(&pk(1), &cmd());
    assert_eq!(
        keys(&p),
        vec![
            vec![0, 0],
            vec![0, 1],
            vec![1, 0],
            vec![1, 1],
            vec![3, 0],
            vec![3, 1],
            vec![4, 0],
            vec![4, 1]
        ]
    );
    // Newer data inside the range survives; older than or equal does not.
    let newer = upd(1, vec![(ck(&[1, 0]), insert(6, &[(1, "n")]))]);
    let p = f
        .build(s.clone(), &[w.clone(), d.clone(), newer])
        .read(&pk(1), &cmd());
    assert_eq!(keys(&p)[..3], [vec![0, 0], vec![0, 1], vec![1, 0]]);
    // Full-clustering bounds and an open end.
    let mut d3 = PartitionUpdate::new(pk(1));
    d3.range_tombstones = vec![rt(Bound::Exclusive(ck(&[3, 0])), Bound::Unbounded, 9)];
    let p = f.build(s.clone(), &[w.clone(), d3]).read(&pk(1), &cmd());
    assert_eq!(keys(&p).len(), 7);
    assert_eq!(keys(&p).last(), Some(&vec![3, 0]));
    // A slice that starts inside the deleted range.
    let mut c = cmd();
    c.ranges = vec![ClusteringRange {
        start: Bound::Inclusive(ck(&[2, 1])),
        end: Bound::Unbounded,
    }];
    let p = f.build(s, &[w, d]).read(&pk(1), &c);
    assert_eq!(
        keys(&p),
        vec![vec![3, 0], vec![3, 1], vec![4, 0], vec![4, 1]]
    );
}

pub(crate) fn ttl_expiry_follows_now(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let u = upd(
        1,
        vec![
            (
                ck(&[1, 1]),
                Row {
                    liveness: Some(LivenessInfo {
                        timestamp: 1,
                        ttl: 60,
                        expiry: NOW + 5,
                    }),
                    deletion: None,
                    columns: vec![(1, ColumnData::Simple(expiring(1, "x", NOW + 5)))],
                },
            ),
            (
                ck(&[2, 2]),
                Row {
                    liveness: Some(LivenessInfo {
                        timestamp: 1,
                        ttl: 60,
                        expiry: NOW + 5,
                    }),
                    deletion: None,
                    columns: vec![(1, ColumnData::Simple(live(2, "forever")))],
                },
            ),
        ],
    );
    let r = f.build(s, &[u]);
    let at = |now: i32| {
        let mut c = cmd();
        c.now = now;
        r.read(&pk(1), &c)
    };
    assert_eq!(keys(&at(NOW + 4)), vec![vec![1, 1], vec![2, 2]]);
    let p = at(NOW + 5).expect("row 2 lives on its cell");
    assert_eq!(keys(&Some(p.clone())), vec![vec![2, 2]]);
    assert_eq!(p.rows[0].1.liveness, None);
    assert_eq!(value(&p.rows[0].1, 1).as_deref(), Some("forever"));
}

pub(crate) fn reversed_slices_and_desc_columns(f: &dyn ReaderFactory) {
    for desc in [false, true] {
        let s = schema2(desc);
        let mut rows = grid(1, 0..3, 0..3);
        rows.sort_by(|a, b| s.compare_clustering(&a.0, &b.0));
        let r = f.build(s.clone(), &[upd(1, rows)]);
        let mut c = cmd();
        c.ranges = vec![ClusteringRange {
            start: Bound::Inclusive(ck(&[1])),
            end: Bound::Inclusive(ck(&[2, 1])),
        }];
        let fwd = keys(&r.read(&pk(1), &c));
        let expected: Vec<Vec<i32>> = if desc {
            vec![vec![1, 2], vec![1, 1], vec![1, 0], vec![2, 2], vec![2, 1]]
        } else {
            vec![vec![1, 0], vec![1, 1], vec![1, 2], vec![2, 0], vec![2, 1]]
        };
        assert_eq!(fwd, expected, "desc={desc}");
        c.reversed = true;
        let mut rev = keys(&r.read(&pk(1), &c));
        rev.reverse();
        assert_eq!(rev, expected, "reversed desc={desc}");
    }
}

pub(crate) fn row_limits_count_live_rows(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let w = upd(1, grid(1, 0..1, 0..6));
    // Row (0,0) and (0,5) deleted: limits count only live rows.
    let d = upd(
        1,
        vec![
            (
                ck(&[0, 0]),
                Row {
                    liveness: None,
                    deletion: Some(del(2)),
                    columns: vec![],
                },
            ),
            (
                ck(&[0, 5]),
                Row {
                    liveness: None,
                    deletion: Some(del(2)),
                    columns: vec![],
                },
            ),
        ],
    );
    let r = f.build(s, &[w, d]);
    let mut c = cmd();
    c.row_limit = Some(2);
    assert_eq!(keys(&r.read(&pk(1), &c)), vec![vec![0, 1], vec![0, 2]]);
    c.reversed = true;
    assert_eq!(keys(&r.read(&pk(1), &c)), vec![vec![0, 4], vec![0, 3]]);
    c.row_limit = Some(100);
    assert_eq!(keys(&r.read(&pk(1), &c)).len(), 4);
}

pub(crate) fn multiple_ranges(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let r = f.build(s, &[upd(1, grid(1, 0..5, 0..1))]);
    let mut c = cmd();
    c.ranges = vec![
        ClusteringRange {
            start: Bound::Unbounded,
            end: Bound::Exclusive(ck(&[1])),
        },
        ClusteringRange {
            start: Bound::Inclusive(ck(&[2])),
            end: Bound::Inclusive(ck(&[2])),
        },
        ClusteringRange {
            start: Bound::Exclusive(ck(&[3])),
            end: Bound::Unbounded,
        },
    ];
    assert_eq!(
        keys(&r.read(&pk(1), &c)),
        vec![vec![0, 0], vec![2, 0], vec![4, 0]]
    );
    c.reversed = true;
    c.row_limit = Some(2);
    assert_eq!(keys(&r.read(&pk(1), &c)), vec![vec![4, 0], vec![2, 0]]);
}

pub(crate) fn static_rows(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let mut st = PartitionUpdate::new(pk(1));
    st.static_row = Some(cells(vec![(9, live(3, "s"))]));
    let r = f.build(s.clone(), &[st.clone()]);
    let p = r
        .read(&pk(1), &cmd())
        .expect("static-only partition is returned");
    assert!(p.rows.is_empty());
    assert_eq!(
        value(p.static_row.as_ref().expect("static"), 9).as_deref(),
        Some("s")
    );
    // No ranges: only the static row, even when rows exist.
    let r = f.build(s.clone(), &[st.clone(), upd(1, grid(1, 0..2, 0..1))]);
    let mut c = cmd();
    c.ranges = vec![];
    let p = r.read(&pk(1), &c).expect("static");
    assert!(p.rows.is_empty() && p.static_row.is_some());
    // A deleted static cell and no rows: nothing.
    let mut st_del = PartitionUpdate::new(pk(1));
    st_del.static_row = Some(cells(vec![(9, tomb(3))]));
    let r = f.build(s.clone(), &[st.clone(), st_del]);
    assert!(r.read(&pk(1), &cmd()).is_none());
    // Range tombstones never touch the static row.
    let mut d = PartitionUpdate::new(pk(1));
    d.range_tombstones = vec![rt(Bound::Unbounded, Bound::Unbounded, 100)];
    let r = f.build(s, &[st, d]);
    assert!(r
        .read(&pk(1), &cmd())
        .is_some_and(|p| p.static_row.is_some()));
}

pub(crate) fn complex_cells(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let coll = |tombstone: Option<DeletionTime>, cs: Vec<(&'static [u8], Cell)>| Row {
        liveness: None,
        deletion: None,
        columns: vec![(
            3,
            ColumnData::Complex {
                tombstone,
                cells: cs
                    .into_iter()
                    .map(|(p, c)| (Bytes::from_static(p), c))
                    .collect(),
            },
        )],
    };
    let a = upd(
        1,
        vec![(
            ck(&[0, 0]),
            coll(None, vec![(b"a", live(4, "1")), (b"b", live(6, "2"))]),
        )],
    );
    let b = upd(
        1,
        vec![(ck(&[0, 0]), coll(Some(del(5)), vec![(b"c", live(5, "3"))]))],
    );
    let c = upd(
        1,
        vec![(
            ck(&[0, 0]),
            coll(None, vec![(b"b", live(6, "9")), (b"d", live(7, "4"))]),
        )],
    );
    let d = upd(1, vec![(ck(&[0, 0]), coll(None, vec![(b"d", tomb(7))]))]);
    let r = f.build(s, &[a, b, c, d]);
    let p = r.read(&pk(1), &cmd()).expect("live");
    match &p.rows[0].1.columns[..] {
        [(3, ColumnData::Complex { tombstone, cells })] => {
            assert_eq!(*tombstone, None);
            let got: Vec<(&[u8], &str)> = cells
                .iter()
                .map(|(p, c)| {
                    (
                        &p[..],
                        std::str::from_utf8(c.value.as_deref().expect("live")).expect("utf8"),
                    )
                })
                .collect();
            assert_eq!(got, vec![(&b"b"[..], "9")]);
        }
        other => panic!("unexpected columns {other:?}"),
    }
}

pub(crate) fn scans_in_token_order_and_resume(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let mut updates = Vec::new();
    for k in [5u8, 1, 3, 2, 4] {
        updates.push(upd(k, grid(1, 0..1, 0..1)));
    }
    // Partition 3 is entirely deleted; two keys share token of pk(4).
    let mut d = PartitionUpdate::new(pk(3));
    d.tombstone = Some(del(9));
    updates.push(d);
    let twin = PartitionKey {
        token: pk(4).token,
        key: Bytes::from_static(&[4, 0]),
    };
    let mut t = PartitionUpdate::new(twin.clone());
    t.rows = grid(1, 0..1, 0..1);
    updates.push(t);
    let r = f.build(s, &updates);
    let all: Vec<PartitionKey> = r
        .scan(&TokenRange::full(), &cmd(), usize::MAX)
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(all, vec![pk(1), pk(2), pk(4), twin.clone(), pk(5)]);
    // Paging: two at a time, resuming after the last key.
    let mut got = Vec::new();
    let mut range = TokenRange::full();
    loop {
        let page = r.scan(&range, &cmd(), 2);
        if page.is_empty() {
            break;
        }
        let last = page.last().expect("non-empty").key.clone();
        got.extend(page.into_iter().map(|p| p.key));
        range.start = ScanBound::Key {
            token: last.token,
            key: last.key,
            inclusive: false,
        };
    }
    assert_eq!(got, all);
    // Token bounds.
    let range = TokenRange {
        start: ScanBound::Token {
            token: pk(2).token,
            inclusive: false,
        },
        end: ScanBound::Token {
            token: pk(4).token,
            inclusive: true,
        },
    };
    let keys: Vec<_> = r
        .scan(&range, &cmd(), 10)
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, vec![pk(4), twin.clone()]);
    let range = TokenRange {
        start: ScanBound::Token {
            token: pk(2).token,
            inclusive: true,
        },
        end: ScanBound::Key {
            token: twin.token,
            key: twin.key.clone(),
            inclusive: false,
        },
    };
    let keys: Vec<_> = r
        .scan(&range, &cmd(), 10)
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, vec![pk(2), pk(4)]);
    // Row limits apply per partition in scans too.
    let mut c = cmd();
    c.row_limit = Some(1);
    assert!(r
        .scan(&TokenRange::full(), &c, 10)
        .iter()
        .all(|p| p.rows.len() == 1));
}

pub(crate) fn unknown_partition_is_none(f: &dyn ReaderFactory) {
    let s = schema2(false);
    let r = f.build(s, &[upd(1, grid(1, 0..1, 0..1))]);
    assert!(r.read(&pk(9), &cmd()).is_none());
    let same_token_other_key = PartitionKey {
        token: pk(1).token,
        key: Bytes::from_static(b"zz"),
    };
    assert!(r.read(&same_token_other_key, &cmd()).is_none());
}

/// Instantiates every conformance case as a `#[test]` for one reader.
macro_rules! conformance_suite {
    ($module:ident, $factory:expr) => {
        mod $module {
            conformance_suite!(@cases $factory;
                lww_higher_timestamp_wins,
                lww_tie_breaks_on_value_then_tombstone,
                live_cells_keep_write_metadata,
                row_deletion_shadows_older_only,
                partition_tombstone,
                range_tombstones_over_prefixes,
                ttl_expiry_follows_now,
                reversed_slices_and_desc_columns,
                row_limits_count_live_rows,
                multiple_ranges,
                static_rows,
                complex_cells,
                scans_in_token_order_and_resume,
                unknown_partition_is_none,
            );
        }
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                super::$case(&$factory);
            }
        )*
    };
}

conformance_suite!(memtable, crate::tests::MemtableFactory);
conformance_suite!(merged_memtables, crate::tests::MergedMemtablesFactory);
conformance_suite!(sstable, crate::tests::SSTableFactory);
conformance_suite!(
    memtable_and_sstables,
    crate::tests::MemtableAndSSTablesFactory
);
conformance_suite!(
    flushing_database,
    crate::tests::FlushingDatabaseFactory {
        seed: 7,
        compaction: crate::compaction::CompactionStrategy::default(),
        compact_now: 0,
    }
);
conformance_suite!(database, crate::tests::DatabaseFactory);
