//! Background compaction protocol (`begin_compaction` → job on another
//! thread → `complete_compaction`), its crash windows, its interplay with
//! truncate, and crash-safe truncation itself. Real files, real threads.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{int, test_dir};
use crate::commitlog::{CommitLogConfig, SyncMode};
use crate::compaction::{sstable_paths, CompactionExecutor, CompactionJob};
use crate::database::table_dir_name;
use crate::mutation::{
    Cell, ColumnData, LivenessInfo, Mutation, PartitionKey, PartitionUpdate, Row,
};
use crate::read::ReadCommand;
use crate::schema::{ClusteringColumn, TableSchema};
use crate::types::KeyType;
use crate::{Database, EngineConfig};

const TABLE: [u8; 16] = [0x6b; 16];
const NOW: i32 = 1_700_000_000;

fn schema() -> Arc<TableSchema> {
    Arc::new(TableSchema::new(
        TABLE,
        vec![ClusteringColumn {
            ty: KeyType::Int,
            reversed: false,
        }],
        864_000,
    ))
}

fn pk(n: u32) -> PartitionKey {
    PartitionKey {
        token: (n as i64).wrapping_mul(0x9e37_79b9) - 1_000_000,
        key: Bytes::copy_from_slice(&n.to_be_bytes()),
    }
}

fn insert(key: u32, c: i32, ts: i64, v: &str) -> Mutation {
    let mut u = PartitionUpdate::new(pk(key));
    u.rows.push((
        vec![int(c)],
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
                    value: Some(Bytes::copy_from_slice(v.as_bytes())),
                }),
            )],
        },
    ));
    Mutation {
        table: TABLE,
        update: u,
    }
}

fn value(db: &Database, key: u32, c: i32) -> Option<String> {
    let p = db
        .read_partition(&TABLE, &pk(key), &ReadCommand::full(NOW))
        .expect("read")?;
    p.rows
        .iter()
        .find(|(ck, _)| ck[0] == int(c))
        .and_then(|(_, r)| match &r.columns.first()?.1 {
            ColumnData::Simple(c) => c.value.as_ref().map(|v| String::from_utf8_lossy(v).into()),
            _ => None,
        })
}

fn config(dir: &Path) -> EngineConfig {
    let mut cl = CommitLogConfig::new(dir.join("commitlog"), 0);
    cl.segment_size = 64 * 1024;
    cl.buffer_size = 16 * 1024;
    cl.sync = SyncMode::Batch {
        window: Duration::from_millis(1),
    };
    EngineConfig::durable(cl, dir.join("data"))
}

fn table_dir(dir: &Path) -> PathBuf {
    dir.join("data").join(table_dir_name(&TABLE))
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(table_dir(dir))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Four flushed SSTables of 30 partitions (rows `round` of keys 0..30)
/// plus unflushed rows in round 4: size-tiered compaction is due.
fn four_sstables(db: &mut Database) {
    for round in 0..4 {
        for k in 0..30 {
            db.apply(&insert(
                k,
                round,
                100 + round as i64,
                &format!("v{k}-{round}"),
            ))
            .expect("apply");
        }
        db.flush(&TABLE).expect("flush");
    }
    for k in 0..30 {
        db.apply(&insert(k, 4, 200, &format!("v{k}-4")))
            .expect("apply");
    }
}

fn assert_all_rows(db: &Database, rounds: i32) {
    for k in 0..30 {
        for round in 0..rounds {
            assert_eq!(
                value(db, k, round),
                Some(format!("v{k}-{round}")),
                "key {k} round {round}"
            );
        }
    }
}

/// Runs the job on another thread, as the node does.
fn run_elsewhere(
    job: CompactionJob,
) -> (
    CompactionJob,
    Result<crate::compaction::CompactionOutput, crate::EngineError>,
) {
    std::thread::spawn(move || {
        let r = job.run();
        (job, r)
    })
    .join()
    .expect("compaction thread")
}

#[test]
fn inputs_stay_readable_until_the_swap() {
    let dir = test_dir("bgc-swap");
    let (mut db, _) = Database::open(config(&dir), [schema()]).expect("open");
    four_sstables(&mut db);
    assert_eq!(db.pending_compactions(), 1);
    let job = db.begin_compaction_at(NOW).expect("begin").expect("a job");
    assert_eq!(job.inputs().len(), 4);
    // The table's SSTables are not picked again while the job runs, and a
    // major compaction has to wait for it.
    assert!(db.begin_compaction_at(NOW).expect("begin again").is_none());
    assert!(db.compaction_running(&TABLE));
    assert_eq!(db.pending_compactions(), 0);
    assert!(db.begin_major_compaction(&TABLE, NOW).is_err());
    assert_eq!(db.running_compactions().len(), 1);
    // The job runs on another thread and writes its outputs and log; the
    // shard keeps reading the inputs and taking writes.
    let (job, result) = run_elsewhere(job);
    let output = result.expect("compaction ran");
    assert_eq!(output.outputs().len(), 1);
    assert!(files(&dir).iter().any(|f| f.starts_with("Compaction-")));
    db.apply(&insert(0, 5, 300, "v0-5"))
        .expect("apply during compaction");
    assert_eq!(db.table(&TABLE).expect("t").sstables().len(), 4);
    assert_all_rows(&db, 5);
    // The swap.
    db.complete_compaction(job, Ok(output)).expect("complete");
    let t = db.table(&TABLE).expect("t");
    assert_eq!(t.sstables().len(), 1);
    assert_eq!(t.sstables()[0].stats().row_count, 120);
    assert_eq!(t.stats().compactions_completed, 1);
    assert!(!db.compaction_running(&TABLE));
    assert!(db.running_compactions().is_empty());
    assert_eq!(sstable_paths(&table_dir(&dir)).expect("ls").len(), 1);
    assert!(
        !files(&dir).iter().any(|f| f.starts_with("Compaction-")),
        "log removed: {:?}",
        files(&dir)
    );
    assert_all_rows(&db, 5);
    assert_eq!(value(&db, 0, 5).as_deref(), Some("v0-5"));
    db.shutdown().expect("shutdown");
    drop(db);
    let (db, _) = Database::open(config(&dir), [schema()]).expect("reopen");
    assert_eq!(db.table(&TABLE).expect("t").sstables().len(), 1);
    assert_all_rows(&db, 5);
}

#[test]
fn crash_after_outputs_before_completion_finishes_at_restart() {
    let dir = test_dir("bgc-crash-log");
    {
        let (mut db, _) = Database::open(config(&dir), [schema()]).expect("open");
        four_sstables(&mut db);
        let job = db.begin_compaction_at(NOW).expect("begin").expect("a job");
        let (_job, result) = run_elsewhere(job);
        result.expect("compaction ran");
        // Crash: outputs renamed and logged, inputs not yet deleted.
        assert_eq!(sstable_paths(&table_dir(&dir)).expect("ls").len(), 5);
    }
    let (db, _) = Database::open(config(&dir), [schema()]).expect("reopen");
    let t = db.table(&TABLE).expect("t");
    assert_eq!(t.sstables().len(), 1, "the logged compaction completed");
    assert_eq!(t.sstables()[0].stats().row_count, 120);
    assert_eq!(files(&dir).len(), 1, "{:?}", files(&dir));
    assert_all_rows(&db, 5);
}

#[test]
fn crash_before_the_log_rolls_back_at_restart() {
    let dir = test_dir("bgc-crash-tmp");
    {
        let (mut db, _) = Database::open(config(&dir), [schema()]).expect("open");
        four_sstables(&mut db);
        let job = db.begin_compaction_at(NOW).expect("begin").expect("a job");
        // Crash: outputs written under temporary names, no log yet.
        let pending = job.write_outputs().expect("outputs written");
        drop(pending);
        assert!(files(&dir).iter().any(|f| f.ends_with(".tmp")));
    }
    let (db, _) = Database::open(config(&dir), [schema()]).expect("reopen");
    assert_eq!(db.table(&TABLE).expect("t").sstables().len(), 4);
    assert!(!files(&dir).iter().any(|f| f.ends_with(".tmp")));
    assert_all_rows(&db, 5);
}

#[test]
fn cancelled_job_changes_nothing() {
    let dir = test_dir("bgc-cancel");
    let (mut db, _) = Database::open(config(&dir), [schema()]).expect("open");
    four_sstables(&mut db);
    let job = db.begin_compaction_at(NOW).expect("begin").expect("a job");
    db.cancel_compactions(Some(&TABLE));
    let (job, result) = run_elsewhere(job);
    assert!(result.is_err());
    db.complete_compaction(job, result)
        .expect("a cancel is no error");
    assert_eq!(db.table(&TABLE).expect("t").sstables().len(), 4);
    assert_eq!(db.compaction_stats().cancelled, 1);
    assert_eq!(files(&dir).len(), 4, "{:?}", files(&dir));
    // The inputs can be compacted again.
    assert_eq!(db.maybe_compact_at(NOW).expect("compact"), 1);
    assert_all_rows(&db, 5);
}

#[test]
fn truncate_during_compaction_discards_its_outputs() {
    let dir = test_dir("bgc-truncate");
    {
        let (mut db, _) = Database::open(config(&dir), [schema()]).expect("open");
        four_sstables(&mut db);
        let job = db.begin_compaction_at(NOW).expect("begin").expect("a job");
        // The job got past its log before the truncation reached it.
        let (job, result) = run_elsewhere(job);
        let output = result.expect("compaction ran");
        db.truncate_checked(&TABLE).expect("truncate");
        db.complete_compaction(job, Ok(output)).expect("complete");
        assert!(db.table(&TABLE).expect("t").sstables().is_empty());
        assert_eq!(files(&dir), vec!["truncated_at".to_string()]);
        assert_eq!(value(&db, 3, 1), None);
        db.apply(&insert(7, 9, 500, "after")).expect("apply");
        db.flush(&TABLE).expect("flush");
        db.apply(&insert(8, 9, 500, "after-unflushed"))
            .expect("apply");
    }
    let (db, _) = Database::open(config(&dir), [schema()]).expect("reopen");
    for k in 0..30 {
        for round in 0..5 {
            assert_eq!(value(&db, k, round), None, "key {k} round {round}");
        }
    }
    assert_eq!(value(&db, 7, 9).as_deref(), Some("after"));
    assert_eq!(value(&db, 8, 9).as_deref(), Some("after-unflushed"));
}

#[test]
fn crash_between_truncate_and_compaction_completion_resurrects_nothing() {
    let dir = test_dir("bgc-truncate-crash");
    {
        let (mut db, _) = Database::open(config(&dir), [schema()]).expect("open");
        four_sstables(&mut db);
        let job = db.begin_compaction_at(NOW).expect("begin").expect("a job");
        let (_job, result) = run_elsewhere(job);
        result.expect("compaction ran");
        db.truncate_checked(&TABLE).expect("truncate");
        // Crash before the shard completes the job: its output and log
        // are on disk.
        assert!(files(&dir).iter().any(|f| f.starts_with("Compaction-")));
    }
    let (db, _) = Database::open(config(&dir), [schema()]).expect("reopen");
    assert!(db.table(&TABLE).expect("t").sstables().is_empty());
    assert_eq!(files(&dir), vec!["truncated_at".to_string()]);
    for k in 0..30 {
        assert_eq!(value(&db, k, 1), None, "key {k}");
    }
}

#[test]
fn crash_after_the_truncation_record_before_deletion_shows_nothing() {
    let dir = test_dir("truncate-window");
    let aside = dir.join("aside");
    fs::create_dir_all(&aside).expect("mkdir");
    {
        let (mut db, _) = Database::open(config(&dir), [schema()]).expect("open");
        four_sstables(&mut db); // 4 SSTables + unflushed rows in the commitlog
        for p in sstable_paths(&table_dir(&dir)).expect("ls") {
            fs::copy(&p, aside.join(p.file_name().expect("name"))).expect("copy");
        }
        db.truncate_checked(&TABLE).expect("truncate");
        // The crash hit after the record, before the files were deleted:
        // put them back.
        for e in fs::read_dir(&aside).expect("ls") {
            let p = e.expect("entry").path();
            fs::copy(&p, table_dir(&dir).join(p.file_name().expect("name"))).expect("copy");
        }
    }
    let (mut db, _) = Database::open(config(&dir), [schema()]).expect("reopen");
    assert!(db.table(&TABLE).expect("t").sstables().is_empty());
    for k in 0..30 {
        for round in 0..5 {
            assert_eq!(value(&db, k, round), None, "key {k} round {round}");
        }
    }
    // Later data is kept across restarts (new generations are above the
    // record's).
    db.apply(&insert(1, 1, 900, "new")).expect("apply");
    db.flush(&TABLE).expect("flush");
    db.shutdown().expect("shutdown");
    drop(db);
    let (db, _) = Database::open(config(&dir), [schema()]).expect("reopen");
    assert_eq!(value(&db, 1, 1).as_deref(), Some("new"));
}

#[test]
fn truncate_right_after_restart_covers_replayed_data() {
    let dir = test_dir("truncate-replayed");
    {
        let (mut db, _) = Database::open(config(&dir), [schema()]).expect("open");
        four_sstables(&mut db);
    }
    {
        // Nothing written since the restart: the truncation must still
        // cover the rows replayed from the old segments.
        let (mut db, _) = Database::open(config(&dir), [schema()]).expect("reopen");
        assert_all_rows(&db, 5);
        db.truncate_checked(&TABLE).expect("truncate");
    }
    let (db, _) = Database::open(config(&dir), [schema()]).expect("reopen");
    for k in 0..30 {
        assert_eq!(value(&db, k, 4), None, "key {k}");
        assert_eq!(value(&db, k, 0), None, "key {k}");
    }
}

#[test]
fn executor_runs_jobs_off_thread_and_refuses_when_full() {
    let dir = test_dir("bgc-executor");
    let (mut db, _) = Database::open(config(&dir), [schema()]).expect("open");
    four_sstables(&mut db);
    let exec = CompactionExecutor::start(1, 1).expect("executor");
    let (tx, rx) = std::sync::mpsc::channel();
    let job = db.begin_compaction_at(NOW).expect("begin").expect("a job");
    let caller = std::thread::current().id();
    exec.submit(
        job,
        Box::new(move |job, r| {
            assert_ne!(std::thread::current().id(), caller);
            tx.send((job, r)).expect("send");
        }),
    )
    .expect("queued");
    let (job, r) = rx.recv_timeout(Duration::from_secs(30)).expect("done");
    db.complete_compaction(job, r).expect("complete");
    assert_eq!(db.table(&TABLE).expect("t").sstables().len(), 1);
    exec.shutdown();
    // A stopped executor gives jobs back instead of queueing them.
    for k in 0..4 {
        db.apply(&insert(k, 7, 600, "x")).expect("apply");
        db.flush(&TABLE).expect("flush");
    }
    let job = db
        .begin_major_compaction(&TABLE, NOW)
        .expect("begin")
        .expect("a job");
    let job = exec
        .submit(job, Box::new(|_, _| {}))
        .expect_err("stopped executor");
    db.abort_compaction(job);
    assert!(!db.compaction_running(&TABLE));
    assert_all_rows(&db, 5);
}
