//! Memtable unit tests and an in-process micro-benchmark.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::Memtable;
use crate::mutation::{
    Cell, ClusteringRange, ColumnData, LivenessInfo, PartitionKey, PartitionUpdate, Row,
};
use crate::read::ReadCommand;
use crate::reader::MutationSource;
use crate::schema::TableSchema;
use crate::{Database, EngineConfig};

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

fn kv_schema() -> Arc<TableSchema> {
    Arc::new(TableSchema::new(TABLE, Vec::new(), 864_000))
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
    let t = Instant::now();
    for u in &updates {
        mt.apply(u);
    }
    let ins = t.elapsed();
    let t = Instant::now();
    let mut found = 0usize;
    for &i in &order {
        if let Some(p) = mt.read_raw(&bench_key(i), &ranges).expect("read") {
            found += p.rows.len();
        }
    }
    let rd = t.elapsed();
    assert_eq!(found as u64, n);
    println!(
        "memtable: {n} inserts in {:.2}s = {:.0}/s; {n} point reads in {:.2}s = {:.0}/s; memory_usage {} MiB",
        ins.as_secs_f64(),
        n as f64 / ins.as_secs_f64(),
        rd.as_secs_f64(),
        n as f64 / rd.as_secs_f64(),
        mt.memory_usage() >> 20
    );
    drop(mt);

    // Through the engine's write and read paths (in memory, no flushes).
    let mut cfg = EngineConfig::in_memory();
    cfg.memtable_budget_bytes = 0;
    let mut db = Database::new(cfg);
    db.create_table(kv_schema());
    let t = Instant::now();
    for u in updates {
        db.apply(&crate::mutation::Mutation {
            table: TABLE,
            update: u,
        })
        .expect("apply");
    }
    let ins = t.elapsed();
    let cmd = ReadCommand::full(1_700_000_000);
    let t = Instant::now();
    let mut found = 0usize;
    for &i in &order {
        if let Some(p) = db
            .read_partition(&TABLE, &bench_key(i), &cmd)
            .expect("read")
        {
            found += p.rows.len();
        }
    }
    let rd = t.elapsed();
    assert_eq!(found as u64, n);
    println!(
        "database (in memory): {n} inserts in {:.2}s = {:.0}/s; {n} point reads in {:.2}s = {:.0}/s",
        ins.as_secs_f64(),
        n as f64 / ins.as_secs_f64(),
        rd.as_secs_f64(),
        n as f64 / rd.as_secs_f64(),
    );
}
