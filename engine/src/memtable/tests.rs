//! Memtable unit tests and an in-process micro-benchmark.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell as StdCell;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::arena::{MemtableArena, CHUNK_SIZE, FIRST_CHUNK};
use super::Memtable;
use crate::mutation::{
    Bound, Cell, ClusteringRange, ColumnData, DeletionTime, LivenessInfo, PartitionKey,
    PartitionUpdate, Row,
};
use crate::read::{ReadCommand, TokenRange};
use crate::reader::MutationSource;
use crate::schema::{ClusteringColumn, TableSchema};
use crate::types::KeyType;
use crate::{Database, EngineConfig};

// ------------------------------------------------- allocation counting

/// Counts heap allocations made by the current thread (the engine's test
/// binary only), so a test can assert the write path makes none per row.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: StdCell<u64> = const { StdCell::new(0) };
}

fn count_allocation() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

// SAFETY: forwards every call to the system allocator unchanged; the
// counter is a const-initialised thread-local without a destructor, so
// touching it never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const TABLE: [u8; 16] = [0x3c; 16];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A 16-byte key and its token.
fn bench_key(n: u64) -> PartitionKey {
    let h = splitmix(n);
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&h.to_be_bytes());
    key[8..].copy_from_slice(&n.to_be_bytes());
    PartitionKey {
        token: splitmix(h) as i64,
        key: Bytes::copy_from_slice(&key),
    }
}

/// A key/value row (no clustering) with one 100-byte value.
fn bench_update(n: u64, ts: i64) -> PartitionUpdate {
    let mut u = PartitionUpdate::new(bench_key(n));
    u.rows.push((
        Vec::new(),
        Row {
            liveness: Some(LivenessInfo {
                timestamp: ts,
                ttl: 0,
                expiry: 0,
            }),
            deletion: None,
            columns: vec![(
                0,
                ColumnData::Simple(Cell {
                    timestamp: ts,
                    ttl: 0,
                    expiry: 0,
                    value: Some(Bytes::from(vec![(n % 251) as u8; 100])),
                }),
            )],
        },
    ));
    u
}

/// CPU time of the calling thread (less noisy than wall time on a shared
/// 2-core box).
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill in.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn report(what: &str, n: u64, wall: std::time::Duration, cpu: std::time::Duration) {
    println!(
        "{what}: {n} in {:.2}s wall = {:.0}/s; {:.2}s CPU = {:.0}/s",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64(),
        n as f64 / cpu.as_secs_f64()
    );
}

fn kv_schema() -> Arc<TableSchema> {
    Arc::new(TableSchema::new(TABLE, Vec::new(), 864_000))
}

fn clustered_schema(desc: bool) -> Arc<TableSchema> {
    Arc::new(TableSchema::new(
        TABLE,
        vec![ClusteringColumn {
            ty: KeyType::Int,
            reversed: desc,
        }],
        864_000,
    ))
}

fn int(v: i32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

fn value_row(ts: i64, value: Bytes) -> Row {
    Row {
        liveness: Some(LivenessInfo {
            timestamp: ts,
            ttl: 0,
            expiry: 0,
        }),
        deletion: None,
        columns: vec![(
            1,
            ColumnData::Simple(Cell {
                timestamp: ts,
                ttl: 0,
                expiry: 0,
                value: Some(value),
            }),
        )],
    }
}

fn read_all(mt: &Memtable, key: &PartitionKey) -> Option<PartitionUpdate> {
    mt.read_raw(key, &[ClusteringRange::full()]).expect("read")
}

// ---------------------------------------------------------------- arena

#[test]
fn arena_reserves_nothing_until_used_and_grows_chunks() {
    let mut a = MemtableArena::new();
    assert_eq!((a.reserved(), a.chunk_count()), (0, 0));
    let first = a.copy(b"hello");
    assert_eq!(a.reserved(), FIRST_CHUNK);
    assert_eq!(a.bytes(first), b"hello");
    // Fill the first chunk exactly to its end, then cross the boundary.
    let rest = a.alloc(FIRST_CHUNK - 5);
    assert_eq!(a.chunk_count(), 1, "an exact fit stays in the chunk");
    a.bytes_mut(rest).fill(0xab);
    let next = a.copy(b"x");
    assert_eq!(a.chunk_count(), 2);
    assert_eq!(a.reserved(), FIRST_CHUNK + 2 * FIRST_CHUNK, "chunks double");
    assert_eq!(a.bytes(first), b"hello");
    assert!(a.bytes(rest).iter().all(|&b| b == 0xab));
    assert_eq!(a.bytes(next), b"x");
    assert_eq!(a.used(), FIRST_CHUNK + 1);
    // An allocation that does not fit what is left opens a new chunk;
    // the bytes of earlier handles never move.
    let big = a.alloc(3 * FIRST_CHUNK);
    assert_eq!(a.chunk_count(), 3);
    assert_eq!(a.bytes(big).len(), 3 * FIRST_CHUNK);
    assert_eq!(a.bytes(next), b"x");
    // Chunk sizes stop growing at CHUNK_SIZE.
    for _ in 0..40 {
        a.alloc(CHUNK_SIZE / 2);
    }
    assert!(a.reserved() - a.used() < 2 * CHUNK_SIZE);
}

#[test]
fn arena_value_larger_than_a_chunk_gets_its_own() {
    let mut a = MemtableArena::new();
    let small = a.copy(b"small");
    let data: Vec<u8> = (0..CHUNK_SIZE * 2 + 17).map(|i| i as u8).collect();
    let huge = a.copy(&data);
    assert_eq!(a.chunk_count(), 2);
    assert_eq!(a.reserved(), FIRST_CHUNK + data.len());
    assert_eq!(a.bytes(huge), &data[..]);
    // Small allocations keep filling the chunk that was open.
    let after = a.copy(b"after");
    assert_eq!(a.chunk_count(), 2);
    assert_eq!(a.reserved(), FIRST_CHUNK + data.len());
    assert_eq!(a.bytes(small), b"small");
    assert_eq!(a.bytes(after), b"after");
}

#[test]
fn memtable_stores_and_reads_a_value_larger_than_a_chunk() {
    let mut mt = Memtable::new(clustered_schema(false));
    let big = Bytes::from(
        (0..3 * CHUNK_SIZE)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let mut u = PartitionUpdate::new(bench_key(1));
    u.rows
        .push((vec![int(1)], value_row(5, Bytes::from_static(b"a"))));
    u.rows.push((vec![int(2)], value_row(5, big.clone())));
    u.rows
        .push((vec![int(3)], value_row(5, Bytes::from_static(b"c"))));
    mt.apply(&u);
    assert!(mt.memory_usage() >= 3 * CHUNK_SIZE);
    let got = read_all(&mt, &bench_key(1)).expect("partition");
    assert_eq!(got.rows, u.rows);
}

#[test]
fn overwrites_leave_garbage_that_memory_usage_counts() {
    let mut mt = Memtable::new(kv_schema());
    mt.apply(&bench_update(7, 1));
    let once = mt.arena().used();
    assert_eq!(mt.garbage_bytes(), 0);
    for ts in 2..=1000 {
        mt.apply(&bench_update(7, ts));
    }
    assert_eq!(mt.partition_count(), 1);
    // Each overwrite wrote one new row version and released the old one.
    let row_len = once - 16 - 4; // minus the key and the empty clustering
    assert_eq!(mt.garbage_bytes(), 999 * row_len);
    assert_eq!(mt.arena().used(), once + 999 * row_len);
    assert!(mt.memory_usage() >= mt.arena().used());
    assert!(mt.memory_usage() > 999 * row_len, "garbage drives flushes");
    let got = read_all(&mt, &bench_key(7)).expect("partition");
    let ColumnData::Simple(c) = &got.rows[0].1.columns[0].1 else {
        panic!("simple cell");
    };
    assert_eq!(c.timestamp, 1000);
    // An older write loses and still leaves its merge result behind.
    mt.apply(&bench_update(7, 3));
    let got = read_all(&mt, &bench_key(7)).expect("partition");
    assert_eq!(got.rows[0].1.liveness.map(|l| l.timestamp), Some(1000));
}

#[test]
fn new_rows_cost_no_heap_allocation_per_row() {
    // Key/value partitions: only B-tree node splits and chunks allocate.
    let updates: Vec<PartitionUpdate> = (0..10_000).map(|i| bench_update(i, 1)).collect();
    let mut mt = Memtable::new(kv_schema());
    let before = allocations();
    for u in &updates {
        mt.apply(u);
    }
    let n = allocations() - before;
    assert!(n < 10_000 / 4, "{n} allocations for 10000 partitions");

    // Rows of one wide partition (distinct clusterings in random order):
    // a skip list in the arena.
    let updates: Vec<PartitionUpdate> = (0..10_000u64)
        .map(|i| {
            let mut u = PartitionUpdate::new(bench_key(1));
            let c = (i * 7919 % 10_007) as i32;
            u.rows
                .push((vec![int(c)], value_row(1, Bytes::from_static(b"v"))));
            u
        })
        .collect();
    let mut mt = Memtable::new(clustered_schema(false));
    let before = allocations();
    for u in &updates {
        mt.apply(u);
    }
    let n = allocations() - before;
    assert!(n < 50, "{n} allocations for 10000 rows of one partition");
}

#[test]
fn wide_partition_slices_seek_in_clustering_order() {
    for desc in [false, true] {
        let schema = clustered_schema(desc);
        let mut mt = Memtable::new(schema.clone());
        let mut want: Vec<i32> = Vec::new();
        for i in 0..2000u64 {
            let c = (splitmix(i) % 5000) as i32 - 2500;
            want.push(c);
            let mut u = PartitionUpdate::new(bench_key(3));
            u.rows.push((vec![int(c)], value_row(i as i64, int(c))));
            mt.apply(&u);
        }
        want.sort();
        want.dedup();
        if desc {
            want.reverse();
        }
        let all = read_all(&mt, &bench_key(3)).expect("partition");
        let got: Vec<Vec<Bytes>> = all.rows.iter().map(|r| r.0.clone()).collect();
        let expect: Vec<Vec<Bytes>> = want.iter().map(|c| vec![int(*c)]).collect();
        assert_eq!(got, expect, "desc={desc}");
        // Two slices in clustering order, with every kind of bound.
        let (lo, hi) = if desc { (400, -100) } else { (-100, 400) };
        let ranges = [
            ClusteringRange {
                start: Bound::Unbounded,
                end: Bound::Exclusive(vec![int(if desc { 1000 } else { -1000 })]),
            },
            ClusteringRange {
                start: Bound::Inclusive(vec![int(lo)]),
                end: Bound::Inclusive(vec![int(hi)]),
            },
        ];
        let sliced = mt
            .read_raw(&bench_key(3), &ranges)
            .expect("read")
            .expect("partition");
        let expect: Vec<Vec<Bytes>> = want
            .iter()
            .map(|c| vec![int(*c)])
            .filter(|c| ranges.iter().any(|r| schema.range_contains(r, c)))
            .collect();
        assert!(!expect.is_empty());
        let got: Vec<Vec<Bytes>> = sliced.rows.iter().map(|r| r.0.clone()).collect();
        assert_eq!(got, expect, "desc={desc}");
        // Rows keep the value of their last write.
        for (c, row) in &sliced.rows {
            let ColumnData::Simple(cell) = &row.columns[0].1 else {
                panic!("simple");
            };
            assert_eq!(cell.value.as_ref(), Some(&c[0]));
        }
    }
}

#[test]
fn partitions_sharing_a_token_order_by_key() {
    let mut mt = Memtable::new(kv_schema());
    let key = |k: &'static [u8]| PartitionKey {
        token: 42,
        key: Bytes::from_static(k),
    };
    for k in [&b"m"[..], b"c", b"x", b"a", b"n"] {
        let mut u = PartitionUpdate::new(key(k));
        u.rows
            .push((Vec::new(), value_row(1, Bytes::from_static(k))));
        mt.apply(&u);
    }
    let mut u = PartitionUpdate::new(PartitionKey {
        token: 41,
        key: Bytes::from_static(b"z"),
    });
    u.rows
        .push((Vec::new(), value_row(1, Bytes::from_static(b"z"))));
    mt.apply(&u);
    let range = TokenRange::full();
    let ranges = [ClusteringRange::full()];
    let keys: Vec<Bytes> = mt
        .scan_raw(&range, &ranges)
        .map(|p| p.expect("scan").key.key)
        .collect();
    assert_eq!(keys, ["z", "a", "c", "m", "n", "x"].map(Bytes::from));
    for k in [&b"a"[..], b"c", b"m", b"n", b"x"] {
        let p = read_all(&mt, &key(k)).expect("partition");
        let ColumnData::Simple(c) = &p.rows[0].1.columns[0].1 else {
            panic!("simple");
        };
        assert_eq!(c.value.as_deref(), Some(k));
        assert!(mt.contains(&key(k)));
    }
    assert!(!mt.contains(&key(b"b")));
    assert!(read_all(&mt, &key(b"zz")).is_none());
}

#[test]
fn partition_tombstone_hides_older_rows_and_keeps_newer() {
    let mut mt = Memtable::new(clustered_schema(false));
    for c in 0..10 {
        let mut u = PartitionUpdate::new(bench_key(9));
        u.rows.push((
            vec![int(c)],
            value_row(10 + c as i64, Bytes::from_static(b"v")),
        ));
        mt.apply(&u);
    }
    let mut u = PartitionUpdate::new(bench_key(9));
    u.tombstone = Some(DeletionTime {
        timestamp: 14,
        local_deletion_time: 100,
    });
    mt.apply(&u);
    let p = read_all(&mt, &bench_key(9)).expect("partition");
    let got: Vec<Vec<Bytes>> = p.rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(got, (5..10).map(|c| vec![int(c)]).collect::<Vec<_>>());
    assert_eq!(p.tombstone.map(|t| t.timestamp), Some(14));
    assert_eq!(mt.timestamp_range(), Some((10, 19)));
}

/// In-process micro-benchmark: 1M random inserts of 16-byte keys and
/// 100-byte values, then 1M random point reads, into one memtable and
/// through an in-memory `Database` (no commitlog). Run with
/// `cargo test --release -p tessera-engine memtable_micro_bench -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; run by hand in release mode"]
fn memtable_micro_bench() {
    let n: u64 = std::env::var("MEMTABLE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let updates: Vec<PartitionUpdate> = (0..n).map(|i| bench_update(i, 1)).collect();
    let order: Vec<u64> = (0..n).map(|i| splitmix(i ^ 0x5555) % n).collect();
    let ranges = [ClusteringRange::full()];

    // The memtable alone.
    let mut mt = Memtable::new(kv_schema());
    let (t, c) = (Instant::now(), thread_cpu());
    for u in &updates {
        mt.apply(u);
    }
    report("memtable inserts", n, t.elapsed(), thread_cpu() - c);
    let (t, c) = (Instant::now(), thread_cpu());
    let mut found = 0usize;
    for &i in &order {
        if let Some(p) = mt.read_raw(&bench_key(i), &ranges).expect("read") {
            found += p.rows.len();
        }
    }
    report("memtable point reads", n, t.elapsed(), thread_cpu() - c);
    assert_eq!(found as u64, n);
    println!("memtable memory_usage {} MiB", mt.memory_usage() >> 20);
    drop(mt);

    // Through the engine's write and read paths (in memory, no flushes).
    let mut cfg = EngineConfig::in_memory();
    cfg.memtable_budget_bytes = 0;
    let mut db = Database::new(cfg);
    db.create_table(kv_schema());
    let (t, c) = (Instant::now(), thread_cpu());
    for u in updates {
        db.apply(&crate::mutation::Mutation {
            table: TABLE,
            update: u,
        })
        .expect("apply");
    }
    report("database inserts", n, t.elapsed(), thread_cpu() - c);
    let cmd = ReadCommand::full(1_700_000_000);
    let (t, c) = (Instant::now(), thread_cpu());
    let mut found = 0usize;
    for &i in &order {
        if let Some(p) = db
            .read_partition(&TABLE, &bench_key(i), &cmd)
            .expect("read")
        {
            found += p.rows.len();
        }
    }
    report("database point reads", n, t.elapsed(), thread_cpu() - c);
    assert_eq!(found as u64, n);
}
