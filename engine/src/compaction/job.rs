//! A compaction as a unit of background work: [`CompactionJob`].
//!
//! The shard picks the inputs ([`crate::Database::begin_compaction`]) and
//! gets back a `Send` job that holds everything the merge needs (the input
//! SSTables behind `Arc`s, the purge bounds of the rest of the table). A
//! compaction thread runs it ([`CompactionJob::run`]): merge, write the
//! outputs, log, rename. The shard then installs the outputs and deletes
//! the inputs ([`crate::Database::complete_compaction`]). Readers on the
//! shard keep reading the inputs until that swap.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::EngineError;
use crate::memtable::Memtable;
use crate::mutation::{ClusteringRange, PartitionKey, TableId};
use crate::read::TokenRange;
use crate::reader::{MutationSource, RawMerger};
use crate::schema::TableSchema;
use crate::sstable::{file_name, sync_dir, PendingSSTable, SSTable, SSTableWriter};

use super::{garbage_collect, write_log, CompactionTask};

/// What kind of compaction a job is (`compactionstats`' "compaction type").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionKind {
    /// Picked by the table's strategy.
    Minor,
    /// `nodetool compact`: every SSTable of the table.
    Major,
}

impl CompactionKind {
    /// The name nodetool shows.
    pub fn name(self) -> &'static str {
        match self {
            CompactionKind::Minor => "Compaction",
            CompactionKind::Major => "Major compaction",
        }
    }
}

/// Progress and cancellation shared by a running job and its shard.
#[derive(Debug)]
pub struct CompactionProgress {
    cancelled: AtomicBool,
    partitions_read: AtomicU64,
    /// Partitions in the inputs (the merged count is at most this).
    pub total_partitions: u64,
    /// Bytes of the input files.
    pub total_bytes: u64,
    /// When the job was created.
    pub started: Instant,
}

impl CompactionProgress {
    fn new(inputs: &[Arc<SSTable>]) -> Self {
        CompactionProgress {
            cancelled: AtomicBool::new(false),
            partitions_read: AtomicU64::new(0),
            total_partitions: inputs.iter().map(|s| s.stats().partition_count).sum(),
            total_bytes: inputs.iter().map(|s| s.size()).sum(),
            started: Instant::now(),
        }
    }

    /// Asks the job to stop at the next partition (truncate, drop,
    /// shutdown). A job past its compaction log finishes anyway; the
    /// shard then decides what to keep.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`CompactionProgress::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Merged partitions written so far.
    pub fn partitions_read(&self) -> u64 {
        self.partitions_read.load(Ordering::Relaxed)
    }

    /// Estimated input bytes processed so far (by partitions merged).
    pub fn completed_bytes(&self) -> u64 {
        if self.total_partitions == 0 {
            return 0;
        }
        let done = self.partitions_read().min(self.total_partitions);
        (self.total_bytes as u128 * done as u128 / self.total_partitions as u128) as u64
    }
}

/// The error of a job that was cancelled before its log was written.
pub fn cancelled_error() -> EngineError {
    EngineError::Io(std::io::Error::new(
        std::io::ErrorKind::Interrupted,
        "compaction cancelled",
    ))
}

/// Whether `e` is [`cancelled_error`].
pub fn is_cancelled(e: &EngineError) -> bool {
    matches!(e, EngineError::Io(io) if io.kind() == std::io::ErrorKind::Interrupted)
}

/// One compaction, ready to run on any thread.
#[derive(Debug)]
pub struct CompactionJob {
    pub(crate) id: u64,
    pub(crate) table: TableId,
    pub(crate) kind: CompactionKind,
    pub(crate) dir: PathBuf,
    pub(crate) schema: Arc<TableSchema>,
    pub(crate) task: CompactionTask,
    /// SSTables of the table that are not inputs (purge safety).
    pub(crate) others: Vec<Arc<SSTable>>,
    /// Memtables being flushed when the job started (purge safety, per key).
    pub(crate) frozen: Vec<Arc<Memtable>>,
    /// Smallest timestamp in the active memtable when the job started
    /// (purge safety for every key: the live memtable cannot be shared
    /// with the compaction thread).
    pub(crate) memtable_min_timestamp: Option<i64>,
    /// The compaction's "now" in seconds (gc grace and TTL expiry).
    pub(crate) now: i32,
    /// The table's generation counter (outputs and the log draw from it).
    pub(crate) generations: Arc<AtomicU64>,
    pub(crate) progress: Arc<CompactionProgress>,
}

/// Outputs of a job written and renamed, with its log still on disk: the
/// shard's [`crate::Database::complete_compaction`] makes the switch.
#[derive(Debug)]
pub struct CompactionOutput {
    pub(crate) outputs: Vec<Arc<SSTable>>,
    pub(crate) log_path: PathBuf,
    pub(crate) bytes_written: u64,
}

impl CompactionOutput {
    /// The new SSTables.
    pub fn outputs(&self) -> &[Arc<SSTable>] {
        &self.outputs
    }
}

/// Outputs fully written under temporary names; no log yet.
#[derive(Debug)]
pub struct PendingOutputs {
    pending: Vec<PendingSSTable>,
}

impl CompactionJob {
    pub(crate) fn new(
        id: u64,
        table: TableId,
        kind: CompactionKind,
        dir: PathBuf,
        schema: Arc<TableSchema>,
        task: CompactionTask,
        now: i32,
        generations: Arc<AtomicU64>,
    ) -> Self {
        let progress = Arc::new(CompactionProgress::new(&task.inputs));
        CompactionJob {
            id,
            table,
            kind,
            dir,
            schema,
            task,
            others: Vec::new(),
            frozen: Vec::new(),
            memtable_min_timestamp: None,
            now,
            generations,
            progress,
        }
    }

    /// The job's id (unique on its shard).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The table being compacted.
    pub fn table(&self) -> &TableId {
        &self.table
    }

    /// Minor (strategy) or major.
    pub fn kind(&self) -> CompactionKind {
        self.kind
    }

    /// The input SSTables.
    pub fn inputs(&self) -> &[Arc<SSTable>] {
        &self.task.inputs
    }

    /// Progress and cancellation, shared with the shard.
    pub fn progress(&self) -> &Arc<CompactionProgress> {
        &self.progress
    }

    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed)
    }

    /// The whole job: [`CompactionJob::write_outputs`] then
    /// [`CompactionJob::commit_outputs`].
    pub fn run(&self) -> Result<CompactionOutput, EngineError> {
        let pending = self.write_outputs()?;
        self.commit_outputs(pending)
    }

    /// Merges the inputs and writes the outputs completely (fsynced) under
    /// temporary names. Nothing is visible yet; a crash leaves only `.tmp`
    /// files, deleted at load.
    pub fn write_outputs(&self) -> Result<PendingOutputs, EngineError> {
        let sources: Vec<&dyn MutationSource> = self
            .task
            .inputs
            .iter()
            .map(|s| &**s as &dyn MutationSource)
            .collect();
        let range = TokenRange::full();
        let ranges = [ClusteringRange::full()];
        let mut merger = RawMerger::new(&sources, &range, &ranges);
        let position = self
            .task
            .inputs
            .iter()
            .filter_map(|s| s.stats().commitlog_position)
            .max();
        let mut pending = Vec::new();
        let mut writer: Option<SSTableWriter> = None;
        let result = (|| -> Result<(), EngineError> {
            while let Some(p) = merger.next_partition(&self.schema)? {
                if self.progress.is_cancelled() {
                    return Err(cancelled_error());
                }
                self.progress
                    .partitions_read
                    .fetch_add(1, Ordering::Relaxed);
                let mp = self.max_purgeable(&p.key);
                let Some(p) = garbage_collect(&self.schema, p, self.now, mp) else {
                    continue;
                };
                if writer.is_none() {
                    let mut w =
                        SSTableWriter::new(&self.dir, self.next_generation(), &self.schema)?;
                    w.set_metadata(position, self.task.output_level);
                    writer = Some(w);
                }
                let w = writer.as_mut().expect("created above");
                w.append(&p)?;
                if self
                    .task
                    .max_output_bytes
                    .is_some_and(|max| w.uncompressed_size() >= max)
                {
                    pending.push(writer.take().expect("present").finish()?);
                }
            }
            if let Some(w) = writer.take() {
                pending.push(w.finish()?);
            }
            Ok(())
        })();
        if let Err(e) = result {
            if let Some(w) = writer.take() {
                w.abandon();
            }
            for p in pending {
                p.abandon();
            }
            return Err(e);
        }
        Ok(PendingOutputs { pending })
    }

    /// Makes the outputs durable next to the inputs: the compaction log
    /// (inputs and outputs; from here on a restart completes the
    /// compaction), then the renames. The inputs stay until the shard
    /// completes the job. On failure the outputs and the log are removed.
    pub fn commit_outputs(&self, pending: PendingOutputs) -> Result<CompactionOutput, EngineError> {
        let pending = pending.pending;
        if self.progress.is_cancelled() {
            for p in pending {
                p.abandon();
            }
            return Err(cancelled_error());
        }
        let inputs: Vec<u64> = self.task.inputs.iter().map(|s| s.generation()).collect();
        let outputs: Vec<u64> = pending.iter().map(|p| p.generation()).collect();
        let log_id = self.next_generation();
        let log_path = match write_log(&self.dir, log_id, &inputs, &outputs) {
            Ok(p) => p,
            Err(e) => {
                for p in pending {
                    p.abandon();
                }
                return Err(e);
            }
        };
        let opened = (|| -> Result<Vec<Arc<SSTable>>, EngineError> {
            for p in &pending {
                p.rename()?;
            }
            sync_dir(&self.dir)?;
            let mut opened = Vec::with_capacity(pending.len());
            for p in &pending {
                opened.push(Arc::new(p.open(self.schema.clone())?));
            }
            Ok(opened)
        })();
        match opened {
            Ok(outputs) => Ok(CompactionOutput {
                bytes_written: outputs.iter().map(|s| s.size()).sum(),
                outputs,
                log_path,
            }),
            Err(e) => {
                // Roll back: outputs first, then the log (a crash in
                // between rolls back at load too).
                for g in &outputs {
                    let _ = std::fs::remove_file(self.dir.join(file_name(*g)));
                }
                for p in pending {
                    p.abandon();
                }
                let _ = sync_dir(&self.dir);
                let _ = remove_log(&self.dir, &log_path);
                Err(e)
            }
        }
    }

    /// The oldest timestamp of data outside the compaction that may belong
    /// to `key`: memtables (frozen ones by key, the active one as a whole)
    /// and every other SSTable whose key range and bloom filter admit it.
    fn max_purgeable(&self, key: &PartitionKey) -> i64 {
        let mut min = self.memtable_min_timestamp.unwrap_or(i64::MAX);
        for m in &self.frozen {
            if m.contains(key) {
                if let Some((lo, _)) = m.timestamp_range() {
                    min = min.min(lo);
                }
            }
        }
        for s in &self.others {
            if s.may_contain(key) {
                min = min.min(s.stats().min_timestamp);
            }
        }
        min
    }
}

/// Deletes a compaction log and fsyncs its directory.
pub(crate) fn remove_log(dir: &Path, log_path: &Path) -> Result<(), EngineError> {
    match std::fs::remove_file(log_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    sync_dir(dir)?;
    Ok(())
}
