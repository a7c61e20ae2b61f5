//! The Tessera side of the engine benchmark: one shard's `engine::Database`
//! driven the way a node's shard drives it (`server/src/node.rs`): writes on
//! the shard's thread, a 10 ms commitlog tick, background flushes on their
//! own threads started every 50 ms when the memtable budget is exceeded, and
//! a compaction step every second — here checked from the write loop instead
//! of a timer, since there is no reactor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use engine::commitlog::format::ENTRY_MUTATION;
use engine::commitlog::{CommitLog, CommitLogConfig, SyncMode};
use engine::database::now_seconds;
use engine::mutation::{
    Cell, ColumnData, LivenessInfo, Mutation, PartitionKey, PartitionUpdate, Row, TableId,
};
use engine::schema::TableSchema;
use engine::serialize::encode_mutation;
use engine::sstable::SSTable;
use engine::{Database, EngineConfig, EngineError, FlushJob, ReadCommand};
use scylla::routing::partitioner::{Murmur3Partitioner, Partitioner};

use crate::engine_workload::{EngineRun, Meter, Phase, Workload};

const TABLE: TableId = *b"tessera-benchtbl";

/// A CQL `INSERT INTO t (k, v) VALUES (?, ?)` on `CREATE TABLE t (k blob
/// PRIMARY KEY, v blob)`: a row marker and one cell, the token computed
/// from the key as the node does (Murmur3).
pub fn mutation(key: &[u8], value: &[u8], timestamp: i64) -> Mutation {
    let mut update = PartitionUpdate::new(partition_key(key));
    update.rows.push((
        Vec::new(),
        Row {
            liveness: Some(LivenessInfo {
                timestamp,
                ttl: 0,
                expiry: 0,
            }),
            deletion: None,
            columns: vec![(
                0,
                ColumnData::Simple(Cell {
                    timestamp,
                    ttl: 0,
                    expiry: 0,
                    value: Some(Bytes::copy_from_slice(value)),
                }),
            )],
        },
    ));
    Mutation {
        table: TABLE,
        update,
    }
}

fn partition_key(key: &[u8]) -> PartitionKey {
    PartitionKey {
        token: Murmur3Partitioner.hash_one(key).value(),
        key: Bytes::copy_from_slice(key),
    }
}

fn schema() -> Arc<TableSchema> {
    Arc::new(TableSchema::new(TABLE, Vec::new(), 864_000))
}

fn open(dir: &Path, sync: SyncMode, budget: usize) -> Result<Database, EngineError> {
    let mut cl = CommitLogConfig::new(dir.join("commitlog"), 0);
    cl.sync = sync;
    let mut config = EngineConfig::durable(cl, dir.join("data"));
    config.memtable_space_bytes = budget;
    config.memtable_budget_bytes = budget;
    config.background_flush = true;
    // The same 64 MiB block cache fjall and RocksDB get (engine_compare.rs).
    config.block_cache_bytes = Some(64 << 20);
    let (db, _) = Database::open(config, [schema()])?;
    Ok(db)
}

type FlushResult = (FlushJob, Result<SSTable, EngineError>);

/// The shard's background work, as the node's ticker does it.
struct Housekeeping {
    tx: Sender<FlushResult>,
    rx: Receiver<FlushResult>,
    in_flight: usize,
    last_tick: Instant,
    last_flush_check: Instant,
    last_compaction: Instant,
}

impl Housekeeping {
    fn new() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(16);
        let now = Instant::now();
        Housekeeping {
            tx,
            rx,
            in_flight: 0,
            last_tick: now,
            last_flush_check: now,
            last_compaction: now,
        }
    }

    /// Called every few hundred operations: does what is due.
    fn poll(&mut self, db: &mut Database) -> Result<(), EngineError> {
        let now = Instant::now();
        if now - self.last_tick < Duration::from_millis(10) {
            return Ok(());
        }
        self.last_tick = now;
        db.commitlog_tick()?;
        while let Ok((job, result)) = self.rx.try_recv() {
            db.complete_flush(job, result);
            self.in_flight -= 1;
        }
        if now - self.last_flush_check >= Duration::from_millis(50) {
            self.last_flush_check = now;
            for table in db.flush_candidates() {
                if let Some(job) = db.begin_flush(&table)? {
                    let tx = self.tx.clone();
                    self.in_flight += 1;
                    std::thread::Builder::new()
                        .name("flush-0".into())
                        .spawn(move || {
                            let r = job.run();
                            let _ = tx.send((job, r));
                        })
                        .map_err(EngineError::from)?;
                }
            }
        }
        if now - self.last_compaction >= Duration::from_secs(1) {
            self.last_compaction = now;
            db.maybe_compact()?;
        }
        Ok(())
    }

    /// Waits for every background flush and installs its SSTable.
    fn drain(&mut self, db: &mut Database) {
        while self.in_flight > 0 {
            match self.rx.recv() {
                Ok((job, result)) => {
                    db.complete_flush(job, result);
                    self.in_flight -= 1;
                }
                Err(_) => break,
            }
        }
    }
}

/// Periodic-mode inserts, then point reads of every key.
pub fn run(dir: &Path, w: &Workload, budget: usize) -> Result<EngineRun, EngineError> {
    let mut db = open(
        dir,
        SyncMode::Periodic {
            period: Duration::from_millis(10_000),
        },
        budget,
    )?;
    let mut hk = Housekeeping::new();
    let ts0 = 1_700_000_000_000_000i64;

    let meter = Meter::start();
    for i in 0..w.len() {
        db.apply(&mutation(&w.keys[i], w.value(i), ts0 + i as i64))?;
        if i % 256 == 255 {
            hk.poll(&mut db)?;
        }
    }
    let write = meter.stop(w.len() as u64);

    let meter = Meter::start();
    hk.drain(&mut db);
    let settle = meter.stop(w.len() as u64);

    let cf = db.table(&TABLE).expect("created above");
    let in_memtable = cf.memtable().partition_count();
    let sstables = cf.sstables().len();
    let sstable_bytes: u64 = cf.sstables().iter().map(|s| s.size()).sum();
    let layout = format!(
        "{sstables} SSTables ({:.1} MiB), {in_memtable} keys in the memtable ({:.1} MiB), {} flushes, {} compactions",
        sstable_bytes as f64 / (1 << 20) as f64,
        cf.memtable().memory_usage() as f64 / (1 << 20) as f64,
        db.stats().flushes,
        db.stats().compactions,
    );
    let on_disk_share = Some(1.0 - in_memtable as f64 / w.len().max(1) as f64);

    let cmd = ReadCommand::full(now_seconds());
    let mut misses = 0u64;
    let cache_before = db.block_cache().stats();
    let meter = Meter::start();
    for &i in &w.read_order {
        let i = i as usize;
        let found = db.read_partition(&TABLE, &partition_key(&w.keys[i]), &cmd)?;
        let ok = found.as_ref().is_some_and(|p| {
            p.rows.first().is_some_and(|(_, row)| {
                matches!(row.columns.first(), Some((0, ColumnData::Simple(Cell { value: Some(v), .. }))) if v[..] == *w.value(i))
            })
        });
        if !ok {
            misses += 1;
        }
    }
    let read = meter.stop(w.len() as u64);
    let cache = db.block_cache().stats();
    let (hits, misses_c) = (
        cache.hits - cache_before.hits,
        cache.misses - cache_before.misses,
    );
    let layout = format!(
        "{layout}; block cache {} MiB: {:.0} % of the block reads hit",
        cache.capacity_bytes >> 20,
        100.0 * hits as f64 / (hits + misses_c).max(1) as f64
    );
    db.shutdown()?;
    Ok(EngineRun {
        engine: "tessera".into(),
        write,
        settle,
        read,
        read_misses: misses,
        layout,
        on_disk_share,
    })
}

/// Batch-mode (group commit) figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchRun {
    pub writers: usize,
    pub group: Phase,
    pub group_syncs: u64,
    pub per_write: Phase,
    pub per_write_syncs: u64,
}

/// `commitlog_sync: batch`: `writers` concurrent writers on the shard (as
/// the node's `GroupCommit` serves them: each writer's mutation is applied
/// with `apply_deferred`, one sync covers everything gathered, every writer
/// is acknowledged when it completes and writes again), against
/// `Database::apply` in batch mode, one fdatasync per write.
pub fn run_batch(
    dir: &Path,
    w: &Workload,
    writers: usize,
    n_group: usize,
    n_single: usize,
    budget: usize,
) -> Result<BatchRun, EngineError> {
    let sync = SyncMode::Batch {
        window: Duration::from_millis(2),
    };
    let ts0 = 1_700_000_000_000_000i64;
    let n_group = n_group.min(w.len());
    let n_single = n_single.min(w.len());

    let mut db = open(&dir.join("group"), sync, budget)?;
    let mut hk = Housekeeping::new();
    let syncs0 = commitlog_syncs(&db);
    let meter = Meter::start();
    let mut i = 0;
    while i < n_group {
        // Every writer has its write in: one sync acknowledges them all.
        let end = (i + writers).min(n_group);
        for j in i..end {
            db.apply_deferred(&mutation(&w.keys[j], w.value(j), ts0 + j as i64))?;
        }
        if let Some(target) = db.sync_commitlog()? {
            db.wait_commitlog(target)?;
        }
        i = end;
        hk.poll(&mut db)?;
    }
    let group = meter.stop(n_group as u64);
    let group_syncs = commitlog_syncs(&db) - syncs0;
    hk.drain(&mut db);
    db.shutdown()?;
    drop(db);

    let mut db = open(&dir.join("single"), sync, budget)?;
    let syncs0 = commitlog_syncs(&db);
    let meter = Meter::start();
    for j in 0..n_single {
        db.apply(&mutation(&w.keys[j], w.value(j), ts0 + j as i64))?;
    }
    let per_write = meter.stop(n_single as u64);
    let per_write_syncs = commitlog_syncs(&db) - syncs0;
    db.shutdown()?;
    Ok(BatchRun {
        writers,
        group,
        group_syncs,
        per_write,
        per_write_syncs,
    })
}

fn commitlog_syncs(db: &Database) -> u64 {
    db.commitlog()
        .map(|c| c.stats().syncs_completed)
        .unwrap_or(0)
}

/// Commitlog appends alone: `n` encoded mutations of the workload's shape
/// (one 16-byte key, one 100-byte value) added to one shard's commitlog in
/// periodic mode; then one sync of all of it, timed apart.
pub fn run_append(
    dir: &Path,
    w: &Workload,
    n: usize,
) -> Result<(Phase, Phase, usize), EngineError> {
    let config = CommitLogConfig::new(PathBuf::from(dir), 0);
    std::fs::create_dir_all(dir)?;
    let mut cl = CommitLog::open(config, &[], Vec::new())?;
    let mut payload = Vec::with_capacity(256);
    payload.push(ENTRY_MUTATION);
    encode_mutation(&mutation(&w.keys[0], w.value(0), 1), &mut payload);
    let meter = Meter::start();
    for _ in 0..n {
        cl.add(Some(TABLE), &payload)?;
    }
    let append = meter.stop(n as u64);
    let meter = Meter::start();
    let pos = cl.sync()?;
    cl.wait_durable(pos)?;
    let sync = meter.stop(n as u64);
    Ok((append, sync, payload.len()))
}
