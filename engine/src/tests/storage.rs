//! SSTable, flush, restart and compaction tests on real files.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{int, test_dir, write_sstable};
use crate::commitlog::{CommitLogConfig, SyncMode};
use crate::compaction::{sstable_paths, write_log, CompactionStrategy};
use crate::database::table_dir_name;
use crate::mutation::{
    Cell, ColumnData, DeletionTime, LivenessInfo, Mutation, PartitionKey, PartitionUpdate, Row,
};
use crate::read::{ReadCommand, TokenRange};
use crate::reader::MutationSource;
use crate::schema::{ClusteringColumn, TableSchema};
use crate::sstable::{file_name, SSTable};
use crate::types::KeyType;
use crate::{Database, EngineConfig, EngineError};

const TABLE: [u8; 16] = [0x5a; 16];
const NOW: i32 = 1_700_000_000;

fn schema(gc_grace: i32) -> Arc<TableSchema> {
    Arc::new(TableSchema::new(
        TABLE,
        vec![ClusteringColumn {
            ty: KeyType::Int,
            reversed: false,
        }],
        gc_grace,
    ))
}

fn pk(n: u32) -> PartitionKey {
    PartitionKey {
        token: (n as i64).wrapping_mul(0x9e37_79b9) - 1_000_000,
        key: Bytes::copy_from_slice(&n.to_be_bytes()),
    }
}

fn cell(ts: i64, v: &str) -> Cell {
    Cell {
        timestamp: ts,
        ttl: 0,
        expiry: 0,
        value: Some(Bytes::copy_from_slice(v.as_bytes())),
    }
}

fn row(ts: i64, v: &str) -> Row {
    Row {
        liveness: Some(LivenessInfo {
            timestamp: ts,
            ttl: 0,
            expiry: 0,
        }),
        deletion: None,
        columns: vec![(1, ColumnData::Simple(cell(ts, v)))],
    }
}

fn insert(key: u32, c: i32, ts: i64, v: &str) -> Mutation {
    let mut u = PartitionUpdate::new(pk(key));
    u.rows.push((vec![int(c)], row(ts, v)));
    Mutation {
        table: TABLE,
        update: u,
    }
}

fn delete_partition(key: u32, ts: i64, ldt: i32) -> Mutation {
    let mut u = PartitionUpdate::new(pk(key));
    u.tombstone = Some(DeletionTime {
        timestamp: ts,
        local_deletion_time: ldt,
    });
    Mutation {
        table: TABLE,
        update: u,
    }
}

fn value(db: &Database, key: u32, c: i32, now: i32) -> Option<String> {
    let p = db
        .read_partition(&TABLE, &pk(key), &ReadCommand::full(now))
        .expect("read")?;
    p.rows
        .iter()
        .find(|(ck, _)| ck[0] == int(c))
        .and_then(|(_, r)| match &r.columns.first()?.1 {
            ColumnData::Simple(c) => c.value.as_ref().map(|v| String::from_utf8_lossy(v).into()),
            _ => None,
        })
}

fn data_db(dir: &Path, gc_grace: i32) -> Database {
    let mut cfg = EngineConfig::in_memory();
    cfg.data_directory = Some(dir.to_path_buf());
    let mut db = Database::new(cfg);
    db.try_create_table(schema(gc_grace)).expect("create");
    db
}

fn table_dir(dir: &Path) -> PathBuf {
    dir.join(table_dir_name(&TABLE))
}

// ---------------------------------------------------------------- fixture

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tests/fixtures")
}

/// The content of the v1 fixture: rows, a static-less partition with a
/// partition tombstone, a TTL cell and a cell tombstone.
fn fixture_updates() -> Vec<PartitionUpdate> {
    let mut v = Vec::new();
    for k in 0..5u32 {
        let mut u = PartitionUpdate::new(pk(k));
        for c in 0..3 {
            u.rows
                .push((vec![int(c)], row(1000 + k as i64, &format!("v{k}-{c}"))));
        }
        v.push(u);
    }
    let mut u = PartitionUpdate::new(pk(10));
    u.tombstone = Some(DeletionTime {
        timestamp: 5000,
        local_deletion_time: 1_600_000_000,
    });
    v.push(u);
    let mut u = PartitionUpdate::new(pk(11));
    u.rows.push((
        vec![int(1)],
        Row {
            liveness: None,
            deletion: None,
            columns: vec![
                (
                    1,
                    ColumnData::Simple(Cell {
                        timestamp: 7,
                        ttl: 60,
                        expiry: 1_600_000_060,
                        value: Some(Bytes::from_static(b"ttl")),
                    }),
                ),
                (
                    2,
                    ColumnData::Simple(Cell {
                        timestamp: 7,
                        ttl: 0,
                        expiry: 1_600_000_000,
                        value: None,
                    }),
                ),
            ],
        },
    ));
    v.push(u);
    v
}

/// Regenerate with `TESSERA_WRITE_FIXTURES=1 cargo test -p tessera-engine
/// fixture`.
#[test]
fn fixture_v1_loads_and_format_is_stable() {
    let fixtures = fixture_dir();
    let good = fixtures.join("sstable-v1");
    let path = good.join(file_name(1));
    let fresh_dir = test_dir("fixture");
    let fresh = write_sstable(&fresh_dir, 1, &schema(864_000), &fixture_updates(), 256);
    if std::env::var_os("TESSERA_WRITE_FIXTURES").is_some() {
        fs::create_dir_all(&good).expect("mkdir");
        fs::copy(fresh.path(), &path).expect("copy fixture");
        let corrupt_dir = fixtures.join("sstable-v1-corrupt");
        fs::create_dir_all(&corrupt_dir).expect("mkdir");
        let mut bytes = fs::read(&path).expect("read");
        // One bit of the first data block's compressed payload.
        bytes[16 + 8 + 3] ^= 0x10;
        fs::write(corrupt_dir.join(file_name(1)), bytes).expect("write");
    }
    // The committed file is byte-identical to what this build writes.
    assert_eq!(
        fs::read(&path).expect("fixture present"),
        fs::read(fresh.path()).expect("fresh"),
        "SSTable v1 byte layout changed: bump the format version"
    );
    let sst = SSTable::open(&path, schema(864_000)).expect("fixture opens");
    let st = sst.stats();
    assert_eq!(st.partition_count, 7);
    assert_eq!(st.row_count, 16);
    assert_eq!(st.tombstone_count, 2);
    assert_eq!((st.min_timestamp, st.max_timestamp), (7, 5000));
    assert_eq!(st.level, 0);
    sst.verify().expect("all blocks good");
    let got = sst
        .read_raw(&pk(3), &[crate::mutation::ClusteringRange::full()])
        .expect("read")
        .expect("present");
    assert_eq!(got.rows.len(), 3);
    assert_eq!(got.rows[2].1, row(1003, "v3-2"));
    let scanned: Vec<_> = sst
        .scan_raw(
            &TokenRange::full(),
            &[crate::mutation::ClusteringRange::full()],
        )
        .collect::<Result<_, _>>()
        .expect("scan");
    assert_eq!(scanned.len(), 7);
    assert!(sst.read_raw(&pk(4242), &[]).expect("read").is_none());
}

#[test]
fn corrupt_fixture_is_a_clean_error() {
    let path = fixture_dir().join("sstable-v1-corrupt").join(file_name(1));
    // Metadata is intact, so it opens; the damaged block is caught by its
    // checksum when read.
    let sst = SSTable::open(&path, schema(864_000)).expect("metadata intact");
    let err = sst.verify().expect_err("damaged block detected");
    assert!(
        matches!(&err, EngineError::CorruptSSTable { reason, .. } if reason.contains("checksum")),
        "{err}"
    );
    let scan: Result<Vec<_>, _> = sst
        .scan_raw(
            &TokenRange::full(),
            &[crate::mutation::ClusteringRange::full()],
        )
        .collect();
    assert!(scan.is_err());
}

/// Every single-byte corruption is detected at open or by a full read;
/// nothing panics.
#[test]
fn every_byte_flip_is_detected() {
    let dir = test_dir("flips");
    let sst = write_sstable(&dir, 1, &schema(864_000), &fixture_updates(), 256);
    let good = fs::read(sst.path()).expect("read");
    let path = dir.join(file_name(2));
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x41;
        fs::write(&path, &bad).expect("write");
        let detected = match SSTable::open(&path, schema(864_000)) {
            Err(EngineError::CorruptSSTable { .. }) => true,
            Err(e) => panic!("byte {i}: unexpected error {e}"),
            Ok(s) => s.verify().is_err(),
        };
        assert!(detected, "flip of byte {i} went unnoticed");
    }
    // Truncations too.
    for len in [0, 10, good.len() / 2, good.len() - 1] {
        fs::write(&path, &good[..len]).expect("write");
        assert!(
            SSTable::open(&path, schema(864_000)).is_err(),
            "truncated to {len}"
        );
    }
}

#[test]
fn corrupt_sstable_fails_table_load() {
    let dir = test_dir("corrupt-load");
    {
        let mut db = data_db(&dir, 0);
        db.apply(&insert(1, 1, 10, "a")).expect("apply");
        db.flush(&TABLE).expect("flush");
    }
    let f = table_dir(&dir).join(file_name(1));
    let mut bytes = fs::read(&f).expect("read");
    let n = bytes.len();
    bytes[n - 30] ^= 1; // inside the footer
    fs::write(&f, bytes).expect("write");
    let mut cfg = EngineConfig::in_memory();
    cfg.data_directory = Some(dir.clone());
    let err = Database::open(cfg, [schema(0)]).expect_err("corrupt SSTable refused");
    assert!(matches!(err, EngineError::CorruptSSTable { .. }), "{err}");
}

// ------------------------------------------------------- flush and restart

fn durable_config(dir: &Path) -> EngineConfig {
    let mut cl = CommitLogConfig::new(dir.join("commitlog"), 0);
    cl.segment_size = 64 * 1024;
    cl.buffer_size = 16 * 1024;
    cl.sync = SyncMode::Batch {
        window: Duration::from_millis(1),
    };
    EngineConfig::durable(cl, dir.join("data"))
}

#[test]
fn restart_sees_flushed_and_unflushed_data() {
    let dir = test_dir("restart");
    {
        let (mut db, _) = Database::open(durable_config(&dir), [schema(864_000)]).expect("open");
        for i in 0..300 {
            db.apply(&insert(i % 50, i as i32, 10, &format!("first-{i}")))
                .expect("apply");
        }
        assert!(db.commitlog().expect("cl").segment_count() > 1);
        db.flush(&TABLE).expect("flush");
        // Fully flushed segments are gone.
        assert_eq!(db.commitlog().expect("cl").segment_count(), 1);
        for i in 0..100 {
            db.apply(&insert(i % 50, i as i32, 20, &format!("second-{i}")))
                .expect("apply");
        }
        db.apply(&delete_partition(49, 30, NOW)).expect("delete");
        db.shutdown().expect("shutdown");
    }
    let (db, report) = Database::open(durable_config(&dir), [schema(864_000)]).expect("reopen");
    assert_eq!(db.table(&TABLE).expect("table").sstables().len(), 1);
    assert!(report.entries_replayed >= 101);
    for i in 0..300u32 {
        let want = if i % 50 == 49 {
            None
        } else if i < 100 {
            Some(format!("second-{i}"))
        } else {
            Some(format!("first-{i}"))
        };
        assert_eq!(value(&db, i % 50, i as i32, NOW), want, "row {i}");
    }
    // The flushed part was not replayed into the memtable again.
    assert_eq!(
        db.table(&TABLE)
            .expect("table")
            .memtable()
            .operation_count(),
        101
    );
}

#[test]
fn memtable_budget_triggers_flushes() {
    let dir = test_dir("budget");
    let mut cfg = durable_config(&dir);
    cfg.memtable_budget_bytes = 20_000;
    let (mut db, _) = Database::open(cfg.clone(), [schema(864_000)]).expect("open");
    for i in 0..2000u32 {
        db.apply(&insert(i % 97, i as i32, 5, "value"))
            .expect("apply");
        assert!(db.memtable_bytes() <= 20_000);
    }
    let n = db.table(&TABLE).expect("t").sstables().len();
    assert!(n >= 3, "{n} SSTables");
    assert!(db.stats().flushes as usize >= n);
    db.shutdown().expect("shutdown");
    drop(db);
    let (db, _) = Database::open(cfg, [schema(864_000)]).expect("reopen");
    for i in (0..2000u32).step_by(37) {
        assert_eq!(value(&db, i % 97, i as i32, NOW).as_deref(), Some("value"));
    }
}

#[test]
fn in_memory_table_cannot_flush() {
    let mut db = Database::new(EngineConfig::in_memory());
    db.create_table(schema(0));
    db.apply(&insert(1, 1, 1, "x")).expect("apply");
    assert!(matches!(
        db.flush(&TABLE),
        Err(EngineError::NoDataDirectory(_))
    ));
}

// ------------------------------------------------------------- compaction

#[test]
fn size_tiered_compacts_four_similar_sstables() {
    let dir = test_dir("stcs");
    let mut db = data_db(&dir, 864_000);
    for round in 0..4 {
        for k in 0..20 {
            db.apply(&insert(k, round, 100 + round as i64, "v"))
                .expect("apply");
        }
        db.flush(&TABLE).expect("flush");
        if round < 3 {
            assert_eq!(db.maybe_compact_at(NOW).expect("compact"), 0);
        }
    }
    assert_eq!(db.pending_compactions(), 1);
    assert_eq!(db.maybe_compact_at(NOW).expect("compact"), 1);
    let t = db.table(&TABLE).expect("t");
    assert_eq!(t.sstables().len(), 1);
    assert_eq!(t.sstables()[0].stats().row_count, 80);
    assert_eq!(sstable_paths(&table_dir(&dir)).expect("ls").len(), 1);
    assert_eq!(value(&db, 7, 2, NOW).as_deref(), Some("v"));
}

#[test]
fn leveled_compaction_splits_into_non_overlapping_levels() {
    let dir = test_dir("lcs");
    let mut cfg = EngineConfig::in_memory();
    cfg.data_directory = Some(dir.clone());
    let mut db = Database::new(cfg);
    let s = (*schema(864_000))
        .clone()
        .with_compaction(CompactionStrategy::Leveled {
            sstable_size_bytes: 2_000,
            fanout: 10,
        });
    db.try_create_table(Arc::new(s)).expect("create");
    for round in 0..4 {
        for k in 0..60 {
            db.apply(&insert(k, round, 1 + round as i64, "some value"))
                .expect("apply");
        }
        db.flush(&TABLE).expect("flush");
    }
    while db.maybe_compact_at(NOW).expect("compact") > 0 {}
    let t = db.table(&TABLE).expect("t");
    let l1: Vec<_> = t.sstables().iter().filter(|s| s.level() >= 1).collect();
    assert!(l1.len() > 1, "outputs split by size");
    assert!(t.sstables().iter().all(|s| s.level() >= 1));
    for (i, a) in l1.iter().enumerate() {
        for b in &l1[i + 1..] {
            assert!(
                a.level() != b.level() || !a.overlaps(b),
                "overlap in a level"
            );
        }
    }
    for k in 0..60 {
        for round in 0..4 {
            assert_eq!(value(&db, k, round, NOW).as_deref(), Some("some value"));
        }
    }
}

#[test]
fn tombstone_purge_respects_gc_grace() {
    let dir = test_dir("gc-grace");
    let mut db = data_db(&dir, 1000);
    db.apply(&insert(1, 1, 10, "old")).expect("apply");
    db.apply(&insert(2, 1, 10, "keep")).expect("apply");
    db.flush(&TABLE).expect("flush");
    db.apply(&delete_partition(1, 20, NOW)).expect("delete");
    db.flush(&TABLE).expect("flush");
    // Within gc grace: the tombstone stays (and the data it shadows goes).
    db.compact_at(&TABLE, NOW + 500).expect("compact");
    let st = db.table(&TABLE).expect("t").sstables()[0].stats().clone();
    assert_eq!(st.tombstone_count, 1);
    assert_eq!(st.partition_count, 2);
    assert_eq!(value(&db, 1, 1, NOW + 500), None);
    // Older data for the key in the memtable blocks the purge even past
    // gc grace.
    db.apply(&insert(1, 2, 5, "older-write")).expect("apply");
    db.compact_at(&TABLE, NOW + 2000).expect("compact");
    let st = db.table(&TABLE).expect("t").sstables()[0].stats().clone();
    assert_eq!(
        st.tombstone_count, 1,
        "shadowed data outside the compaction"
    );
    assert_eq!(value(&db, 1, 2, NOW + 2000), None);
    // Once that data is in the compaction too, the purge happens and
    // nothing comes back.
    db.flush(&TABLE).expect("flush");
    db.compact_at(&TABLE, NOW + 2000).expect("compact");
    let t = db.table(&TABLE).expect("t");
    assert_eq!(t.sstables().len(), 1);
    let st = t.sstables()[0].stats();
    assert_eq!(st.tombstone_count, 0);
    assert_eq!(st.partition_count, 1);
    assert_eq!(value(&db, 1, 1, NOW + 2000), None);
    assert_eq!(value(&db, 1, 2, NOW + 2000), None);
    assert_eq!(value(&db, 2, 1, NOW + 2000).as_deref(), Some("keep"));
}

#[test]
fn expired_ttl_cells_become_tombstones_then_purge() {
    let dir = test_dir("ttl");
    let mut db = data_db(&dir, 100);
    let mut u = PartitionUpdate::new(pk(1));
    u.rows.push((
        vec![int(1)],
        Row {
            liveness: None,
            deletion: None,
            columns: vec![(
                1,
                ColumnData::Simple(Cell {
                    timestamp: 10,
                    ttl: 60,
                    expiry: NOW + 60,
                    value: Some(Bytes::from_static(b"short")),
                }),
            )],
        },
    ));
    db.apply(&Mutation {
        table: TABLE,
        update: u,
    })
    .expect("apply");
    db.flush(&TABLE).expect("flush");
    db.compact_at(&TABLE, NOW + 61).expect("compact");
    let t = db.table(&TABLE).expect("t");
    let sst = &t.sstables()[0];
    assert_eq!(
        sst.stats().tombstone_count,
        1,
        "expired cell is a tombstone"
    );
    let raw = sst
        .read_raw(&pk(1), &[crate::mutation::ClusteringRange::full()])
        .expect("read")
        .expect("present");
    match &raw.rows[0].1.columns[0].1 {
        ColumnData::Simple(c) => {
            assert!(c.value.is_none());
            assert_eq!(c.expiry, NOW, "local deletion time is expiry - ttl");
        }
        other => panic!("{other:?}"),
    }
    // gc grace counts from the write: NOW + 100 is past it.
    db.compact_at(&TABLE, NOW + 101).expect("compact");
    assert!(db.table(&TABLE).expect("t").sstables().is_empty());
    assert!(sstable_paths(&table_dir(&dir)).expect("ls").is_empty());
}

// ---------------------------------------------------------- crash recovery

fn two_sstables_and_output(dir: &Path) -> Arc<TableSchema> {
    let s = schema(864_000);
    let tdir = table_dir(dir);
    fs::create_dir_all(&tdir).expect("mkdir");
    let mut a = PartitionUpdate::new(pk(1));
    a.rows.push((vec![int(1)], row(1, "a")));
    let mut b = PartitionUpdate::new(pk(2));
    b.rows.push((vec![int(1)], row(1, "b")));
    write_sstable(&tdir, 1, &s, std::slice::from_ref(&a), 4096);
    write_sstable(&tdir, 2, &s, std::slice::from_ref(&b), 4096);
    write_sstable(&tdir, 3, &s, &[a, b], 4096);
    s
}

#[test]
fn completed_compaction_is_finished_at_load() {
    let dir = test_dir("crash-done");
    let s = two_sstables_and_output(&dir);
    // Crash after the outputs were renamed, before the inputs went.
    write_log(&table_dir(&dir), 4, &[1, 2], &[3]).expect("log");
    fs::write(table_dir(&dir).join("SSTable-1-9.db.tmp"), b"junk").expect("tmp");
    let mut cfg = EngineConfig::in_memory();
    cfg.data_directory = Some(dir.clone());
    let (db, _) = Database::open(cfg, [s]).expect("open");
    let t = db.table(&TABLE).expect("t");
    assert_eq!(t.sstables().len(), 1);
    assert_eq!(t.sstables()[0].generation(), 3);
    let names: Vec<_> = fs::read_dir(table_dir(&dir))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(value(&db, 2, 1, NOW).as_deref(), Some("b"));
}

#[test]
fn interrupted_compaction_is_rolled_back_at_load() {
    let dir = test_dir("crash-partial");
    let s = two_sstables_and_output(&dir);
    // Outputs 3 and 5 were planned; 5 never got its final name.
    write_log(&table_dir(&dir), 4, &[1, 2], &[3, 5]).expect("log");
    let mut cfg = EngineConfig::in_memory();
    cfg.data_directory = Some(dir.clone());
    let (mut db, _) = Database::open(cfg, [s]).expect("open");
    let gens: Vec<u64> = db
        .table(&TABLE)
        .expect("t")
        .sstables()
        .iter()
        .map(|s| s.generation())
        .collect();
    assert_eq!(gens, vec![1, 2]);
    assert_eq!(value(&db, 1, 1, NOW).as_deref(), Some("a"));
    db.apply(&insert(3, 1, 1, "c")).expect("apply");
    db.flush(&TABLE).expect("flush");
    let newest = db
        .table(&TABLE)
        .expect("t")
        .sstables()
        .last()
        .expect("one")
        .generation();
    assert!(newest > 2, "{newest}");
    assert_eq!(value(&db, 3, 1, NOW).as_deref(), Some("c"));
}

#[test]
fn background_flush_keeps_data_readable_and_survives_restart() {
    let dir = test_dir("bgflush");
    let mut cfg = durable_config(&dir);
    cfg.background_flush = true;
    {
        let (mut db, _) = Database::open(cfg.clone(), [schema(864_000)]).expect("open");
        for i in 0..200 {
            db.apply(&insert(i % 40, i as i32, 10, &format!("first-{i}")))
                .expect("apply");
        }
        let job = db.begin_flush(&TABLE).expect("begin").expect("a job");
        // Only one background flush per table at a time.
        assert!(db.begin_flush(&TABLE).expect("begin again").is_none());
        // Writes during the flush go to the new memtable; the frozen one
        // is still read.
        for i in 0..50 {
            db.apply(&insert(i % 40, i as i32, 20, &format!("second-{i}")))
                .expect("apply");
        }
        assert_eq!(value(&db, 39, 199, NOW), Some("first-199".to_string()));
        assert_eq!(value(&db, 9, 49, NOW), Some("second-49".to_string()));
        // The job runs on another thread, as the node runs it.
        let handle = std::thread::spawn(move || {
            let r = job.run();
            (job, r)
        });
        let (job, result) = handle.join().expect("flush thread");
        db.complete_flush(job, result);
        assert_eq!(db.table(&TABLE).expect("table").sstables().len(), 1);
        assert_eq!(value(&db, 39, 199, NOW), Some("first-199".to_string()));
        assert_eq!(value(&db, 9, 49, NOW), Some("second-49".to_string()));
        db.shutdown().expect("shutdown");
    }
    let (db, _) = Database::open(cfg, [schema(864_000)]).expect("reopen");
    for i in 0..200u32 {
        let want = if i < 50 {
            format!("second-{i}")
        } else {
            format!("first-{i}")
        };
        assert_eq!(value(&db, i % 40, i as i32, NOW), Some(want), "row {i}");
    }
}

#[test]
fn background_flush_of_a_truncated_table_is_discarded() {
    let dir = test_dir("bgflush-truncate");
    let mut cfg = durable_config(&dir);
    cfg.background_flush = true;
    let (mut db, _) = Database::open(cfg, [schema(864_000)]).expect("open");
    for i in 0..20 {
        db.apply(&insert(i, i as i32, 10, "x")).expect("apply");
    }
    let job = db.begin_flush(&TABLE).expect("begin").expect("a job");
    let result = job.run();
    db.truncate_checked(&TABLE).expect("truncate");
    db.complete_flush(job, result);
    assert!(db.table(&TABLE).expect("table").sstables().is_empty());
    assert_eq!(value(&db, 1, 1, NOW), None);
}
