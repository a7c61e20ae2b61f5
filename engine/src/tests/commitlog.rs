//! Commitlog tests on real O_DIRECT files: replay after restart, torn
//! tails, bit flips, recycled segments, poisoning after an I/O error, size
//! limits, truncation records and group commit; `commit_failure_policy`
//! for failed segment allocations and failed writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::commitlog::format::{check_block, parse_segment_file_name, BlockState, BLOCK_SIZE};
use crate::commitlog::{
    CommitFailurePolicy, CommitLogConfig, CommitLogHealth, CommitLogReplayer, SyncMode,
};
use crate::mutation::{Cell, ColumnData, Mutation, PartitionKey, PartitionUpdate, Row};
use crate::read::ReadCommand;
use crate::schema::TableSchema;
use crate::{Database, EngineConfig, EngineError};

const TABLE: [u8; 16] = [3; 16];
const SEGMENT: usize = 64 * 1024;

/// A fresh directory under the target dir (O_DIRECT needs a real
/// filesystem; tmpfs would refuse it).
fn test_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/engine-test-tmp")
        .join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create test dir");
    dir
}

fn config(dir: &Path, sync: SyncMode) -> EngineConfig {
    let mut cl = CommitLogConfig::new(dir, 0);
    cl.segment_size = SEGMENT;
    cl.sync = sync;
    cl.buffer_size = 16 * 1024;
    EngineConfig::with_commitlog(cl)
}

fn config_with(dir: &Path, sync: SyncMode, policy: CommitFailurePolicy) -> EngineConfig {
    let mut cfg = config(dir, sync);
    if let Some(cl) = cfg.commitlog.as_mut() {
        cl.failure_policy = policy;
    }
    cfg
}

fn batch() -> SyncMode {
    SyncMode::Batch {
        window: Duration::from_millis(1),
    }
}

fn open(cfg: EngineConfig) -> (Database, crate::commitlog::ReplayReport) {
    let mut db = Database::new(cfg);
    db.create_table(Arc::new(TableSchema::new(TABLE, vec![], 0)));
    let report = db.start_commitlog().expect("replay");
    (db, report)
}

fn mutation(i: u32, size: usize) -> Mutation {
    let mut u = PartitionUpdate::new(PartitionKey {
        token: i as i64,
        key: Bytes::copy_from_slice(&i.to_be_bytes()),
    });
    u.rows.push((
        vec![],
        Row {
            liveness: None,
            deletion: None,
            columns: vec![(
                1,
                ColumnData::Simple(Cell {
                    timestamp: 1,
                    ttl: 0,
                    expiry: 0,
                    value: Some(Bytes::from(vec![(i % 251) as u8; size])),
                }),
            )],
        },
    ));
    Mutation {
        table: TABLE,
        update: u,
    }
}

fn present(db: &Database, i: u32) -> bool {
    let key = PartitionKey {
        token: i as i64,
        key: Bytes::copy_from_slice(&i.to_be_bytes()),
    };
    db.read_partition(&TABLE, &key, &ReadCommand::full(0))
        .expect("table")
        .is_some()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| {
            let p = e.expect("entry").path();
            parse_segment_file_name(&p).map(|id| (id, p))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

#[test]
fn replay_restores_every_write_across_segments() {
    let dir = test_dir("replay");
    {
        let (mut db, report) = open(config(&dir, batch()));
        assert_eq!(report.entries_replayed, 0);
        for i in 0..300 {
            db.apply(&mutation(i, 500)).expect("apply");
        }
        // A large entry spanning many blocks.
        db.apply(&mutation(1000, 20_000)).expect("apply");
        assert!(segments(&dir).len() > 2, "small segments must roll over");
        // Dropped without shutdown: batch mode already synced everything.
    }
    let (db, report) = open(config(&dir, batch()));
    assert_eq!(report.entries_replayed, 301);
    assert_eq!(report.torn_bytes_skipped, 0);
    assert!(report.corrupt_segments.is_empty());
    assert!((0..300).all(|i| present(&db, i)));
    assert!(present(&db, 1000));
    let out = CommitLogReplayer::new(&dir).replay().expect("replay");
    assert_eq!(out.mutations[5], mutation(5, 500));
}

#[test]
fn periodic_mode_with_group_commit() {
    let dir = test_dir("group");
    {
        let (mut db, _) = open(config(
            &dir,
            SyncMode::Periodic {
                period: Duration::from_secs(3600),
            },
        ));
        let mut last = None;
        for i in 0..200 {
            last = db.apply_deferred(&mutation(i, 100)).expect("apply");
        }
        let target = db.sync_commitlog().expect("sync").expect("commitlog");
        assert_eq!(Some(target), last);
        db.wait_commitlog(target).expect("durable");
        let cl = db.commitlog().expect("started");
        assert!(cl.durable_position() >= target);
        assert!(
            cl.stats().syncs_completed <= 3,
            "one sync (plus segment switches) covers the group: {:?}",
            cl.stats()
        );
    }
    let (db, report) = open(config(&dir, batch()));
    assert_eq!(report.entries_replayed, 200);
    assert!((0..200).all(|i| present(&db, i)));
}

#[test]
fn periodic_write_behind_survives_a_process_crash() {
    let periodic = || SyncMode::Periodic {
        period: Duration::from_secs(3600),
    };
    // Without a tick, a crash (drop without shutdown or sync) loses the
    // buffered entries: the buffer is far from full.
    let dir = test_dir("write-behind-none");
    {
        let (mut db, _) = open(config(&dir, periodic()));
        for i in 0..20 {
            db.apply(&mutation(i, 100)).expect("apply");
        }
    }
    let (_, report) = open(config(&dir, batch()));
    assert_eq!(report.entries_replayed, 0);

    // A tick after `write_behind` writes them out (no sync): they survive.
    let dir = test_dir("write-behind");
    {
        let (mut db, _) = open(config(&dir, periodic()));
        for i in 0..50 {
            db.apply(&mutation(i, 100)).expect("apply");
        }
        std::thread::sleep(Duration::from_millis(15));
        db.commitlog_tick().expect("tick");
        let stats = db.commitlog().expect("started").stats();
        assert_eq!(stats.syncs_completed, 0, "no fdatasync before the period");
        // Added after the write-behind: still buffered when the process dies.
        db.apply(&mutation(50, 100)).expect("apply");
        // The next write-behind continues in a fresh block.
        std::thread::sleep(Duration::from_millis(15));
        db.commitlog_tick().expect("tick");
        db.apply(&mutation(51, 100)).expect("apply");
    }
    let (db, report) = open(config(&dir, batch()));
    assert_eq!(report.entries_replayed, 51);
    assert!((0..51).all(|i| present(&db, i)));
    assert!(!present(&db, 51));
}

/// The last block of `seg` holding data of that segment.
fn last_written_block(seg: &Path) -> usize {
    let data = fs::read(seg).expect("read");
    let id = parse_segment_file_name(seg).expect("segment name");
    data.chunks_exact(BLOCK_SIZE)
        .rposition(|b| matches!(check_block(b, id), BlockState::Valid { .. }))
        .expect("a written block")
}

fn overwrite(seg: &Path, offset: usize, bytes: &[u8]) {
    let mut data = fs::read(seg).expect("read");
    data[offset..offset + bytes.len()].copy_from_slice(bytes);
    fs::write(seg, data).expect("write");
}

#[test]
fn torn_tail_is_skipped_and_counted() {
    let dir = test_dir("torn");
    {
        let (mut db, _) = open(config(&dir, batch()));
        for i in 0..20 {
            db.apply(&mutation(i, 300)).expect("apply");
        }
        // One entry spanning several blocks, the last write.
        db.apply(&mutation(99, 9_000)).expect("apply");
    }
    let seg = segments(&dir).pop().expect("segment");
    let last = last_written_block(&seg);
    // The last block torn: its second half holds other bytes (bad CRC),
    // nothing valid after it.
    overwrite(&seg, last * BLOCK_SIZE + 1024, &[0x5a; 3072]);
    let (db, report) = open(config(&dir, batch()));
    assert!(report.corrupt_segments.is_empty(), "{report:?}");
    assert!(
        report.torn_bytes_skipped > 0,
        "{report:?} last block {last}"
    );
    assert_eq!(report.torn_segments.len(), 1);
    assert_eq!(report.entries_replayed, 20);
    assert!((0..20).all(|i| present(&db, i)));
    assert!(!present(&db, 99));
}

#[test]
fn tail_cut_mid_entry_is_torn() {
    let dir = test_dir("cut");
    {
        let (mut db, _) = open(config(&dir, batch()));
        for i in 0..5 {
            db.apply(&mutation(i, 100)).expect("apply");
        }
        db.apply(&mutation(7, 9_000)).expect("apply");
    }
    let seg = segments(&dir).pop().expect("segment");
    let last = last_written_block(&seg);
    // Zero the whole last block (as if never written): the multi-block
    // entry is cut off.
    overwrite(&seg, last * BLOCK_SIZE, &[0u8; BLOCK_SIZE]);
    let (db, report) = open(config(&dir, batch()));
    assert!(report.corrupt_segments.is_empty());
    assert!(report.torn_bytes_skipped > 0);
    assert_eq!(report.entries_replayed, 5);
    assert!(!present(&db, 7));
}

#[test]
fn bit_flip_in_finished_segment_is_corruption_never_applied() {
    let dir = test_dir("flip");
    {
        let (mut db, _) = open(config(&dir, batch()));
        for i in 0..300 {
            db.apply(&mutation(i, 500)).expect("apply");
        }
    }
    let segs = segments(&dir);
    assert!(segs.len() >= 3);
    // Flip one bit in the middle of the first (finished) segment.
    let mut data = fs::read(&segs[0]).expect("read");
    let at = 3 * BLOCK_SIZE + 1000;
    data[at] ^= 0x04;
    fs::write(&segs[0], &data).expect("write");
    let (db, report) = open(config(&dir, batch()));
    assert_eq!(report.corrupt_segments.len(), 1, "{report:?}");
    assert_eq!(report.corrupt_segments[0].path, segs[0]);
    // Entries before the damage and in later segments replay; the rest of
    // the damaged segment does not.
    assert!(present(&db, 0));
    assert!(present(&db, 299));
    let missing = (0..300).filter(|i| !present(&db, *i)).count();
    assert!(missing > 0, "data after the flip must not be applied");
    assert!(report.entries_replayed < 300);
}

#[test]
fn recycled_segments_never_replay_old_content() {
    let dir = test_dir("recycle");
    {
        let (mut db, _) = open(config(&dir, batch()));
        for i in 0..200 {
            db.apply(&mutation(i, 500)).expect("apply");
        }
        let before = db.commitlog().expect("started").segment_count();
        assert!(before > 2);
        // Truncation frees every finished segment (kept for reuse).
        db.truncate_checked(&TABLE).expect("truncate");
        let stats = db.commitlog().expect("started").stats();
        assert!(stats.segments_recycled >= 1, "{stats:?}");
        // New writes reuse recycled files whose stale blocks remain.
        for i in 500..560 {
            db.apply(&mutation(i, 2_000)).expect("apply");
        }
    }
    let (db, report) = open(config(&dir, batch()));
    assert!(report.corrupt_segments.is_empty(), "{report:?}");
    assert!(
        (0..200).all(|i| !present(&db, i)),
        "truncated data replayed"
    );
    assert!((500..560).all(|i| present(&db, i)));

    // A recycled file renamed to a new segment just before a crash holds
    // only another segment's blocks: nothing replays from it.
    let segs = segments(&dir);
    let old = &segs[0];
    let id = parse_segment_file_name(segs.last().expect("segment")).expect("id") + 1000;
    let fake = dir.join(crate::commitlog::format::segment_file_name(id));
    fs::copy(old, &fake).expect("copy");
    let out = CommitLogReplayer::new(&dir).replay().expect("replay");
    assert!(out.report.corrupt_segments.is_empty(), "{:?}", out.report);
    assert_eq!(out.report.torn_bytes_skipped, 0);
    let from_fake = out.segments.iter().find(|s| s.id == id).expect("listed");
    assert!(from_fake.tables.is_empty());
}

#[test]
fn io_error_poisons_the_log() {
    let dir = test_dir("poison");
    let (mut db, _) = open(config(&dir, batch()));
    db.apply(&mutation(1, 10)).expect("apply");
    db.commitlog_mut().expect("started").inject_io_error();
    let err = db.apply(&mutation(2, 10)).expect_err("injected failure");
    assert!(matches!(err, EngineError::CommitLogPoisoned(_)), "{err}");
    assert!(!present(&db, 2), "a failed batch write is not applied");
    let err = db.apply(&mutation(3, 10)).expect_err("poisoned");
    assert!(matches!(err, EngineError::CommitLogPoisoned(_)));
    assert!(err.to_string().contains("refused until restart"));
    assert!(db.commitlog().expect("started").poisoned().is_some());
    assert!(db.shutdown().is_err());
    drop(db);
    // After restart the acknowledged write is there and writes work again.
    let (mut db, _) = open(config(&dir, batch()));
    assert!(present(&db, 1));
    db.apply(&mutation(4, 10)).expect("apply after restart");
}

#[test]
fn oversized_mutation_is_refused() {
    let dir = test_dir("big");
    let (mut db, _) = open(config(&dir, batch()));
    let err = db
        .apply(&mutation(1, SEGMENT / 2 + 1))
        .expect_err("too large");
    assert!(matches!(err, EngineError::MutationTooLarge { .. }), "{err}");
    assert!(!present(&db, 1));
    // Just under the limit is fine, and the log keeps working.
    db.apply(&mutation(2, SEGMENT / 2 - 200)).expect("fits");
    db.apply(&mutation(3, 10)).expect("apply");
    drop(db);
    let (db, report) = open(config(&dir, batch()));
    assert_eq!(report.entries_replayed, 2);
    assert!(present(&db, 2) && present(&db, 3));
}

#[test]
fn writes_need_a_started_commitlog() {
    let dir = test_dir("unstarted");
    let mut db = Database::new(config(&dir, batch()));
    db.create_table(Arc::new(TableSchema::new(TABLE, vec![], 0)));
    assert!(matches!(
        db.apply(&mutation(1, 1)),
        Err(EngineError::CommitLogNotStarted)
    ));
}

#[test]
fn mutations_of_dropped_tables_are_skipped() {
    let dir = test_dir("dropped");
    {
        let (mut db, _) = open(config(&dir, batch()));
        db.apply(&mutation(1, 10)).expect("apply");
    }
    let mut db = Database::new(config(&dir, batch()));
    let report = db.start_commitlog().expect("replay");
    assert_eq!(report.mutations_skipped, 1);
}

#[test]
fn garbage_files_never_panic_replay() {
    let dir = test_dir("garbage");
    let mut seed = 0x1234_5678_9abc_def1u64;
    for n in 0..20u64 {
        let len = (n as usize * 1237) % (3 * BLOCK_SIZE + 17);
        let data: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let name = crate::commitlog::format::segment_file_name(n + 1);
        fs::write(dir.join(name), data).expect("write");
    }
    let out = CommitLogReplayer::new(&dir).replay().expect("replay");
    assert_eq!(out.report.segments, 20);
    assert!(out.mutations.is_empty());
}

#[test]
fn write_error_poisons_under_stop_commit_stop_and_die() {
    for policy in [
        CommitFailurePolicy::StopCommit,
        CommitFailurePolicy::Stop,
        CommitFailurePolicy::Die,
    ] {
        let dir = test_dir("poison-policy");
        let (mut db, _) = open(config_with(&dir, batch(), policy));
        db.apply(&mutation(1, 10)).expect("apply");
        db.commitlog_mut().expect("started").inject_io_error();
        let err = db.apply(&mutation(2, 10)).expect_err("injected failure");
        assert!(
            matches!(err, EngineError::CommitLogPoisoned(_)),
            "{policy}: {err}"
        );
        let cl = db.commitlog().expect("started");
        assert_eq!(cl.failures(), 1, "{policy}");
        assert!(
            matches!(cl.health(), CommitLogHealth::Poisoned(_)),
            "{policy}"
        );
        // Poisoned until restart: a tick does not bring it back.
        db.commitlog_tick().expect("a poisoned log's tick is quiet");
        assert!(db.apply(&mutation(3, 10)).is_err(), "{policy}");
        drop(db);
        let (mut db, _) = open(config_with(&dir, batch(), policy));
        assert!(present(&db, 1) && !present(&db, 2) && !present(&db, 3));
        db.apply(&mutation(4, 10)).expect("apply after restart");
    }
}

#[test]
fn write_error_under_ignore_abandons_the_segment() {
    let dir = test_dir("ignore-write");
    {
        let (mut db, _) = open(config_with(&dir, batch(), CommitFailurePolicy::Ignore));
        db.apply(&mutation(1, 10)).expect("apply");
        let first = db.commitlog().expect("started").segment_paths();
        assert_eq!(first.len(), 1);
        db.commitlog_mut().expect("started").inject_io_error();
        let err = db.apply(&mutation(2, 10)).expect_err("injected failure");
        assert!(matches!(err, EngineError::CommitLogWriteFailed(_)), "{err}");
        assert!(err.to_string().contains("commitlog failure"), "{err}");
        assert!(!present(&db, 2), "a failed batch write is not applied");
        // Not poisoned: the next write goes to a fresh segment.
        db.apply(&mutation(3, 10)).expect("apply after the failure");
        let cl = db.commitlog().expect("started");
        assert_eq!(cl.health(), CommitLogHealth::Ok);
        assert_eq!(cl.stats().segments_abandoned, 1);
        assert_eq!(cl.stats().write_failures, 1);
        let now = cl.segment_paths();
        assert_eq!(now.len(), 2, "{now:?}");
        assert_eq!(now[0], first[0]);
        for i in 10..200 {
            db.apply(&mutation(i, 300)).expect("apply");
        }
        db.shutdown().expect("clean shutdown");
    }
    let (db, report) = open(config_with(&dir, batch(), CommitFailurePolicy::Ignore));
    assert!(report.corrupt_segments.is_empty(), "{report:?}");
    assert!(present(&db, 1) && present(&db, 3));
    assert!((10..200).all(|i| present(&db, i)));
}

#[test]
fn group_commit_never_acknowledges_a_lost_write_under_ignore() {
    let dir = test_dir("ignore-group");
    let (mut db, _) = open(config_with(&dir, batch(), CommitFailurePolicy::Ignore));
    let p1 = db
        .apply_deferred(&mutation(1, 10))
        .expect("apply")
        .expect("logged");
    db.sync_commitlog().expect("sync");
    db.wait_commitlog(p1).expect("durable");
    let p2 = db
        .apply_deferred(&mutation(2, 10))
        .expect("apply")
        .expect("logged");
    // The write carrying entry 2 fails in the kernel.
    db.commitlog_mut().expect("started").inject_io_error();
    db.sync_commitlog().expect("sync submitted");
    let err = loop {
        match db.commitlog_durable_position() {
            Ok(Some(d)) => {
                assert!(d < p2, "a lost write must never look durable");
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(None) => unreachable!("the log is started"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, EngineError::CommitLogWriteFailed(_)), "{err}");
    // Reported once; a new segment takes the next write.
    db.commitlog_durable_position().expect("reported once");
    let p3 = db
        .apply_deferred(&mutation(3, 10))
        .expect("apply")
        .expect("logged");
    assert!(p3.segment_id > p2.segment_id);
    db.sync_commitlog().expect("sync");
    db.wait_commitlog(p3).expect("durable");
    let durable = db
        .commitlog_durable_position()
        .expect("poll")
        .expect("logged");
    assert!(durable >= p3 && durable > p2);
    // Even so, the lost position never becomes durable.
    let err = db.wait_commitlog(p2).expect_err("lost");
    assert!(matches!(err, EngineError::CommitLogWriteFailed(_)), "{err}");
}

#[test]
fn failed_allocation_recovers_by_itself_under_stop_commit_and_ignore() {
    for policy in [CommitFailurePolicy::StopCommit, CommitFailurePolicy::Ignore] {
        let dir = test_dir("alloc");
        {
            let (mut db, _) = open(config_with(&dir, batch(), policy));
            // Fill most of the first segment.
            let mut i = 0;
            while db.commitlog().expect("started").segment_count() < 1
                || db.commitlog().expect("started").current_position().offset
                    < (SEGMENT - 6 * BLOCK_SIZE) as u64
            {
                db.apply(&mutation(i, 1_000)).expect("apply");
                i += 1;
            }
            let acked = i;
            let cl = db.commitlog_mut().expect("started");
            cl.inject_allocation_errors(2);
            // The write that needs the next segment fails, promptly.
            let mut failed = Vec::new();
            let err = loop {
                match db.apply(&mutation(i, 1_000)) {
                    Ok(()) => i += 1,
                    Err(e) => break e,
                }
                assert!(i < acked + 20, "the segment must fill up");
            };
            let acked = i;
            failed.push(i);
            assert!(
                matches!(err, EngineError::CommitLogSegmentUnavailable(_)),
                "{policy}: {err}"
            );
            assert!(err.to_string().contains("No space left on device"), "{err}");
            let cl = db.commitlog().expect("started");
            assert!(matches!(cl.health(), CommitLogHealth::AllocationFailing(_)));
            assert_eq!(cl.stats().allocation_failures, 1);
            assert_eq!(segments(&dir).len(), 1, "the half-made segment is removed");
            // Within the back-off writes fail at once, without new attempts.
            failed.push(acked + 1);
            let err = db.apply(&mutation(acked + 1, 10)).expect_err("backing off");
            assert!(matches!(err, EngineError::CommitLogSegmentUnavailable(_)));
            db.commitlog_tick().expect("tick");
            assert_eq!(
                db.commitlog().expect("started").stats().allocation_failures,
                1
            );
            // The retry fails once more (second injected error)...
            db.commitlog_mut()
                .expect("started")
                .expire_allocation_backoff();
            failed.push(acked + 2);
            assert!(db.apply(&mutation(acked + 2, 10)).is_err());
            assert_eq!(
                db.commitlog().expect("started").stats().allocation_failures,
                2
            );
            // ...then the tick's retry succeeds: no restart, no write needed.
            db.commitlog_mut()
                .expect("started")
                .expire_allocation_backoff();
            db.commitlog_tick().expect("tick");
            let cl = db.commitlog().expect("started");
            assert_eq!(cl.health(), CommitLogHealth::Ok, "{policy}");
            assert_eq!(cl.segment_count(), 2);
            for j in 1000..1010 {
                db.apply(&mutation(j, 100)).expect("writes work again");
            }
            assert!(failed.iter().all(|f| !present(&db, *f)));
            assert!((0..acked).all(|k| present(&db, k)));
        }
        let (db, report) = open(config_with(&dir, batch(), policy));
        assert!(report.corrupt_segments.is_empty(), "{report:?}");
        assert_eq!(report.torn_bytes_skipped, 0, "{report:?}");
        assert!((1000..1010).all(|k| present(&db, k)));
    }
}

#[test]
fn failed_allocation_under_stop_and_die_poisons() {
    for policy in [CommitFailurePolicy::Stop, CommitFailurePolicy::Die] {
        let dir = test_dir("alloc-stop");
        let (mut db, _) = open(config_with(&dir, batch(), policy));
        db.commitlog_mut()
            .expect("started")
            .inject_allocation_errors(1);
        let err = db.apply(&mutation(1, 10)).expect_err("no segment");
        assert!(
            matches!(err, EngineError::CommitLogPoisoned(_)),
            "{policy}: {err}"
        );
        assert!(err.to_string().contains("No space left on device"), "{err}");
        let cl = db.commitlog().expect("started");
        assert_eq!(cl.failures(), 1);
        assert!(matches!(cl.health(), CommitLogHealth::Poisoned(_)));
        db.commitlog_mut()
            .expect("started")
            .expire_allocation_backoff();
        db.commitlog_tick().expect("tick");
        assert!(db.apply(&mutation(2, 10)).is_err(), "refused until restart");
        assert!(segments(&dir).is_empty());
        drop(db);
        let (mut db, _) = open(config_with(&dir, batch(), policy));
        db.apply(&mutation(3, 10))
            .expect("a restart brings the log back");
    }
}

#[test]
fn commit_failure_policy_names() {
    for name in ["stop", "stop_commit", "die", "ignore"] {
        let p = CommitFailurePolicy::parse(name).expect("known");
        assert_eq!(p.as_str(), name);
    }
    assert_eq!(CommitFailurePolicy::parse("halt"), None);
    assert_eq!(CommitFailurePolicy::default(), CommitFailurePolicy::Stop);
}
