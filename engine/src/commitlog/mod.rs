//! The per-shard commitlog: segments of fixed size in `commitlog_directory`,
//! written with io_uring on O_DIRECT files in whole 4 KiB blocks, each block
//! and each entry protected by CRC32C (layout in [`format`] and
//! `docs/commitlog-format.md`).
//!
//! Writes never block on I/O by themselves: [`CommitLog::add`] copies an
//! entry into an aligned buffer and returns its [`ReplayPosition`]; full
//! buffers are submitted to the kernel asynchronously. [`CommitLog::sync`]
//! submits what is buffered plus an `fdatasync` (group commit: one sync
//! covers every entry added before it), [`CommitLog::poll`] reaps
//! completions, and [`CommitLog::wait_durable`] blocks until a position is
//! on disk. A block, once written, is never rewritten: a sync pads the
//! current block and the next entry continues in a fresh one, so a torn
//! write can only hurt data that was never acknowledged.
//!
//! Failures come in two kinds, handled by `commit_failure_policy`
//! ([`CommitFailurePolicy`]):
//!
//! * **allocation** — the next segment cannot be created, preallocated or
//!   synced (`ENOSPC`, `EACCES`, `EROFS`, ...). Nothing acknowledged is at
//!   risk. Under `stop_commit` and `ignore` writes fail with
//!   [`EngineError::CommitLogSegmentUnavailable`] while the allocation is
//!   retried (at most once per [`CommitLogConfig::allocation_retry`], by
//!   writes and by [`CommitLog::tick`]); once a segment can be created the
//!   log works again without a restart.
//! * **write** — a write or `fdatasync` of data failed. What was in flight
//!   cannot be trusted (the kernel may have dropped the dirty state), so it
//!   is never acknowledged. Under `ignore` the affected writes fail
//!   ([`EngineError::CommitLogWriteFailed`]), the segment is abandoned and
//!   the next write opens a fresh one; otherwise the log is *poisoned*:
//!   every later call fails with [`EngineError::CommitLogPoisoned`] until
//!   restart.
//!
//! Under `stop` and `die` every failure poisons the log; the server then
//! stops its transports or exits (the log only reports, see
//! [`CommitLog::failures`]).
//!
//! Segments track which tables have data in them; once every such table
//! is flushed past the segment ([`CommitLog::discard_completed_segments`])
//! the segment is recycled (kept for reuse, up to a bound) or deleted.

pub mod buffer;
pub mod format;
pub mod replayer;

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use io_uring::{opcode, squeue, types, IoUring};
use log::{error, info, warn};

use self::buffer::AlignedBuf;
use self::format::{
    frame_entry, recycled_file_name, seal_block, segment_file_name, segment_header, segment_id,
    segment_sequence, BLOCK_PAYLOAD, BLOCK_SIZE, ENTRY_OVERHEAD,
};
pub use self::replayer::{
    CommitLogReplayer, CorruptSegment, ReplayOutput, ReplayReport, ReplayedSegment,
};
use crate::error::EngineError;
use crate::mutation::TableId;

/// `commitlog_sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Acknowledge before the sync; sync every `period`
    /// (`commitlog_sync_period_in_ms`). Buffered entries are written (not
    /// synced) every [`CommitLogConfig::write_behind`] by
    /// [`CommitLog::tick`], so a process crash loses at most that much.
    Periodic { period: Duration },
    /// Acknowledge only after the sync; writes arriving within `window`
    /// (`commitlog_sync_batch_window_in_ms`) share one sync.
    Batch { window: Duration },
}

/// `commit_failure_policy`: what a node does when its commitlog cannot be
/// written (Cassandra's names and semantics; default `stop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitFailurePolicy {
    /// Stop client transports and gossip; the process stays up to be
    /// inspected. Writes are refused.
    #[default]
    Stop,
    /// The commitlog refuses writes; reads keep being served.
    StopCommit,
    /// Log the failure and exit the process.
    Die,
    /// Log the failure, fail the affected writes and keep going.
    Ignore,
}

impl CommitFailurePolicy {
    /// Parses the `cassandra.yaml` spelling.
    pub fn parse(s: &str) -> Option<CommitFailurePolicy> {
        match s.trim() {
            "stop" => Some(CommitFailurePolicy::Stop),
            "stop_commit" => Some(CommitFailurePolicy::StopCommit),
            "die" => Some(CommitFailurePolicy::Die),
            "ignore" => Some(CommitFailurePolicy::Ignore),
            _ => None,
        }
    }

    /// The `cassandra.yaml` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitFailurePolicy::Stop => "stop",
            CommitFailurePolicy::StopCommit => "stop_commit",
            CommitFailurePolicy::Die => "die",
            CommitFailurePolicy::Ignore => "ignore",
        }
    }

    /// Whether the log keeps going by itself after a failure (the server
    /// does not stop or exit).
    fn recovers(self) -> bool {
        matches!(
            self,
            CommitFailurePolicy::StopCommit | CommitFailurePolicy::Ignore
        )
    }
}

impl std::fmt::Display for CommitFailurePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of commitlog failure happened (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitLogFailureKind {
    /// A new segment could not be created.
    Allocation,
    /// A write or sync of data failed.
    Write,
}

/// The last commitlog failure, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitLogFailure {
    pub kind: CommitLogFailureKind,
    pub message: String,
}

/// Whether the log takes writes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitLogHealth {
    Ok,
    /// No segment can be created; writes fail until one can (retrying).
    AllocationFailing(String),
    /// Writes are refused until restart.
    Poisoned(String),
}

/// Commitlog settings of one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitLogConfig {
    /// `commitlog_directory` (shared by the shards of a node; segment ids
    /// carry the shard).
    pub directory: PathBuf,
    /// `commitlog_segment_size_in_mb`, in bytes; a multiple of 4 KiB of at
    /// least 64 KiB.
    pub segment_size: usize,
    pub sync: SyncMode,
    /// This shard's id.
    pub shard: u32,
    /// Bytes buffered before a write is submitted (rounded to blocks).
    pub buffer_size: usize,
    /// Freed segments kept for reuse instead of being deleted.
    pub max_recycled_segments: usize,
    /// Buffers in flight before `add` waits for the disk (back-pressure).
    pub max_in_flight_buffers: usize,
    /// `commit_failure_policy`.
    pub failure_policy: CommitFailurePolicy,
    /// After a failed segment allocation, how long writes fail at once
    /// before the allocation is tried again.
    pub allocation_retry: Duration,
    /// Periodic mode: buffered entries are written to the segment (without
    /// a sync) at least this often, by [`CommitLog::tick`]. The data is then
    /// in the device's hands, so a process crash (`kill -9`) loses at most
    /// this much; only a power loss can lose up to the sync period, as with
    /// Cassandra's memory-mapped segments.
    pub write_behind: Duration,
}

impl CommitLogConfig {
    /// Cassandra's defaults: 32 MiB segments, periodic sync every 10 s.
    pub fn new(directory: impl Into<PathBuf>, shard: u32) -> Self {
        CommitLogConfig {
            directory: directory.into(),
            segment_size: 32 << 20,
            sync: SyncMode::Periodic {
                period: Duration::from_millis(10_000),
            },
            shard,
            buffer_size: 256 << 10,
            max_recycled_segments: 2,
            max_in_flight_buffers: 64,
            failure_policy: CommitFailurePolicy::default(),
            allocation_retry: Duration::from_secs(1),
            write_behind: Duration::from_millis(10),
        }
    }
}

/// A point in the log: a segment and a byte offset in its file. Positions
/// order like the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ReplayPosition {
    pub segment_id: u64,
    pub offset: u64,
}

/// One segment known to the log (active or finished).
#[derive(Debug)]
struct Segment {
    id: u64,
    path: PathBuf,
    /// Tables with data here, and the last position of each.
    dirty: HashMap<TableId, ReplayPosition>,
    has_truncation: bool,
}

/// The segment being appended to.
struct Active {
    id: u64,
    file: Arc<File>,
    /// Blocks in the file.
    total_blocks: u64,
    /// File block index where `buf` starts (everything before was
    /// submitted).
    base_block: u64,
    buf: AlignedBuf,
    /// Block of `buf` being filled, and payload bytes used in it.
    cur: usize,
    used: usize,
}

impl Active {
    fn position(&self) -> ReplayPosition {
        ReplayPosition {
            segment_id: self.id,
            offset: (self.base_block + self.cur as u64) * BLOCK_SIZE as u64
                + (format::BLOCK_HEADER_SIZE + self.used) as u64,
        }
    }

    /// Payload bytes that still fit in the segment.
    fn remaining(&self) -> u64 {
        let blocks_left = self.total_blocks - self.base_block - self.cur as u64;
        blocks_left * BLOCK_PAYLOAD as u64 - self.used as u64
    }

    /// Whether anything is buffered and not yet submitted.
    fn has_buffered(&self) -> bool {
        self.cur > 0 || self.used > 0
    }
}

enum Op {
    Write {
        buf: AlignedBuf,
        _file: Arc<File>,
        len: usize,
        segment: u64,
    },
    Sync {
        _file: Arc<File>,
        covers: ReplayPosition,
        segment: u64,
    },
}

/// Counters of the commitlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitLogStats {
    pub entries: u64,
    pub bytes: u64,
    pub writes_submitted: u64,
    pub syncs_completed: u64,
    pub segments_created: u64,
    pub segments_recycled: u64,
    pub segments_deleted: u64,
    /// Failed attempts to create a segment.
    pub allocation_failures: u64,
    /// Failed writes or syncs of data.
    pub write_failures: u64,
    /// Segments abandoned after a failed write (`ignore`).
    pub segments_abandoned: u64,
}

impl CommitLogStats {
    /// Every failure so far, of either kind.
    pub fn failures(&self) -> u64 {
        self.allocation_failures + self.write_failures
    }
}

/// One shard's commitlog.
pub struct CommitLog {
    config: CommitLogConfig,
    ring: IoUring,
    active: Option<Active>,
    /// Finished and active segments, oldest first.
    segments: VecDeque<Segment>,
    recycled: Vec<PathBuf>,
    next_seq: u64,
    next_recycled_name: u64,
    in_flight: HashMap<u64, Op>,
    next_user_data: u64,
    free_buffers: Vec<AlignedBuf>,
    /// Highest position whose sync completed.
    durable: ReplayPosition,
    /// Highest position a submitted sync covers.
    sync_requested: ReplayPosition,
    /// Last appended position.
    appended: ReplayPosition,
    last_sync: Instant,
    /// When buffered data was last submitted (periodic write-behind).
    last_write: Instant,
    poisoned: Option<String>,
    /// A segment allocation failed (why, when): writes fail at once until
    /// `allocation_retry` has passed, then allocation is tried again.
    allocation_failure: Option<(String, Instant)>,
    /// Segments up to this id were abandoned after a failed write: their
    /// completions neither fail the log again nor make anything durable.
    abandoned_through: u64,
    /// Position ranges `(after, up_to]` lost with abandoned segments: never
    /// durable, whatever `durable` says (bounded, newest last).
    lost: VecDeque<(ReplayPosition, ReplayPosition)>,
    /// A write failure not yet reported to [`CommitLog::poll`] (batch
    /// mode: the group commit must fail its waiters).
    pending_error: Option<String>,
    last_failure: Option<CommitLogFailure>,
    inject_error: bool,
    inject_allocation_errors: u32,
    stats: CommitLogStats,
}

/// Lost ranges remembered (a caller holds a position only briefly).
const MAX_LOST_RANGES: usize = 16;

impl std::fmt::Debug for CommitLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitLog")
            .field("directory", &self.config.directory)
            .field("segments", &self.segments.len())
            .field("durable", &self.durable)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl CommitLog {
    /// Opens the log for writing. `existing` are segments found by replay
    /// (kept until the tables they cover are flushed); `recycled` are
    /// reusable files. New segment ids continue above every existing one.
    pub fn open(
        config: CommitLogConfig,
        existing: &[ReplayedSegment],
        recycled: Vec<PathBuf>,
    ) -> Result<CommitLog, EngineError> {
        if !config.segment_size.is_multiple_of(BLOCK_SIZE) || config.segment_size < 16 * BLOCK_SIZE
        {
            return Err(EngineError::InvalidConfig(format!(
                "commitlog segment size {} must be a multiple of {BLOCK_SIZE} and at least {}",
                config.segment_size,
                16 * BLOCK_SIZE
            )));
        }
        fs::create_dir_all(&config.directory)?;
        let ring = IoUring::new(256)?;
        let on_disk = replayer::existing_segment_ids(&config.directory, config.shard)?;
        let max_seq = on_disk
            .iter()
            .chain(existing.iter().map(|s| &s.id))
            .map(|id| segment_sequence(*id))
            .max()
            .unwrap_or(0);
        let segments = existing
            .iter()
            .map(|s| Segment {
                id: s.id,
                path: s.path.clone(),
                // Replayed data sits in memtables: the segment stays until
                // those tables are flushed past its end.
                dirty: s
                    .tables
                    .iter()
                    .map(|t| {
                        (
                            *t,
                            ReplayPosition {
                                segment_id: s.id,
                                offset: u64::MAX,
                            },
                        )
                    })
                    .collect(),
                has_truncation: s.has_truncation,
            })
            .collect();
        let next_recycled_name = now_millis();
        Ok(CommitLog {
            next_seq: (max_seq + 1).max(now_millis()),
            config,
            ring,
            active: None,
            segments,
            recycled,
            next_recycled_name,
            in_flight: HashMap::new(),
            next_user_data: 1,
            free_buffers: Vec::new(),
            durable: ReplayPosition::default(),
            sync_requested: ReplayPosition::default(),
            appended: ReplayPosition::default(),
            last_sync: Instant::now(),
            last_write: Instant::now(),
            poisoned: None,
            allocation_failure: None,
            abandoned_through: 0,
            lost: VecDeque::new(),
            pending_error: None,
            last_failure: None,
            inject_error: false,
            inject_allocation_errors: 0,
            stats: CommitLogStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CommitLogConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> CommitLogStats {
        self.stats
    }

    /// The largest entry payload accepted: half a segment, less framing.
    pub fn max_entry_size(&self) -> usize {
        self.config.segment_size / 2 - ENTRY_OVERHEAD
    }

    /// Why the log refuses writes until restart, if it does.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// Whether the log takes writes now.
    pub fn health(&self) -> CommitLogHealth {
        match (&self.poisoned, &self.allocation_failure) {
            (Some(why), _) => CommitLogHealth::Poisoned(why.clone()),
            (None, Some((why, _))) => CommitLogHealth::AllocationFailing(why.clone()),
            (None, None) => CommitLogHealth::Ok,
        }
    }

    /// The last failure of either kind (also after recovery).
    pub fn last_failure(&self) -> Option<&CommitLogFailure> {
        self.last_failure.as_ref()
    }

    /// Failures so far (the server applies `stop`/`die` when this grows).
    pub fn failures(&self) -> u64 {
        self.stats.failures()
    }

    /// The highest position known to be on disk.
    pub fn durable_position(&self) -> ReplayPosition {
        self.durable
    }

    /// The position after the last entry added.
    pub fn current_position(&self) -> ReplayPosition {
        self.appended
    }

    /// Number of segment files the log currently holds (active included).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Paths of the segments the log holds, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    /// Test hook: the next write or sync submitted to the kernel fails
    /// (it is sent to an invalid file descriptor), exercising the real
    /// error path.
    #[doc(hidden)]
    pub fn inject_io_error(&mut self) {
        self.inject_error = true;
    }

    /// Test hook: the next `n` segment allocations fail with `ENOSPC`
    /// after the file is created, exercising the cleanup and retry path.
    #[doc(hidden)]
    pub fn inject_allocation_errors(&mut self, n: u32) {
        self.inject_allocation_errors = n;
    }

    /// Test hook: the next allocation retry may happen at once.
    #[doc(hidden)]
    pub fn expire_allocation_backoff(&mut self) {
        if let Some((_, at)) = self.allocation_failure.as_mut() {
            *at = Instant::now() - self.config.allocation_retry;
        }
    }

    fn check_poisoned(&self) -> Result<(), EngineError> {
        match &self.poisoned {
            Some(why) => Err(EngineError::CommitLogPoisoned(why.clone())),
            None => Ok(()),
        }
    }

    fn record_failure(&mut self, kind: CommitLogFailureKind, why: &str) {
        match kind {
            CommitLogFailureKind::Allocation => self.stats.allocation_failures += 1,
            CommitLogFailureKind::Write => self.stats.write_failures += 1,
        }
        self.last_failure = Some(CommitLogFailure {
            kind,
            message: why.to_string(),
        });
    }

    /// Whether `pos` belongs to a range lost with an abandoned segment.
    fn is_lost(&self, pos: ReplayPosition) -> bool {
        self.lost
            .iter()
            .any(|(after, up_to)| pos > *after && pos <= *up_to)
    }

    /// A write or sync of data failed: under `ignore` the segments written
    /// so far are abandoned (nothing in flight there is ever acknowledged)
    /// and the next write opens a new segment; otherwise the log is
    /// poisoned.
    fn write_failed(&mut self, why: String) -> EngineError {
        self.record_failure(CommitLogFailureKind::Write, &why);
        if self.config.failure_policy != CommitFailurePolicy::Ignore || self.poisoned.is_some() {
            return self.poison(why);
        }
        let through = self.segments.back().map(|s| s.id).unwrap_or(0);
        error!(
            "commitlog {}: {why}; abandoning segments up to {through}: writes not yet synced are lost and fail, the next write opens a new segment (commit_failure_policy: ignore)",
            self.config.directory.display()
        );
        self.abandoned_through = self.abandoned_through.max(through);
        self.stats.segments_abandoned += 1;
        if self.lost.len() == MAX_LOST_RANGES {
            self.lost.pop_front();
        }
        self.lost.push_back((self.durable, self.appended));
        self.active = None;
        if matches!(self.config.sync, SyncMode::Batch { .. }) {
            self.pending_error = Some(why.clone());
        }
        EngineError::CommitLogWriteFailed(why)
    }

    fn poison(&mut self, why: String) -> EngineError {
        if self.poisoned.is_none() {
            error!(
                "commitlog {} poisoned: {why}; no further writes are accepted until restart",
                self.config.directory.display()
            );
            self.poisoned = Some(why.clone());
        }
        EngineError::CommitLogPoisoned(self.poisoned.clone().unwrap_or(why))
    }

    fn take_buffer(&mut self, blocks: usize) -> AlignedBuf {
        match self.free_buffers.iter().position(|b| b.blocks() == blocks) {
            Some(i) => {
                let mut b = self.free_buffers.swap_remove(i);
                b.clear();
                b
            }
            None => AlignedBuf::new(blocks),
        }
    }

    fn buffer_blocks_for(&self, base_block: u64, total_blocks: u64) -> usize {
        let want = (self.config.buffer_size / BLOCK_SIZE).max(1) as u64;
        want.min(total_blocks - base_block).max(1) as usize
    }

    /// Opens the next segment, or fails at once while an earlier failed
    /// allocation waits for its retry. A failure here risks nothing
    /// acknowledged: under `stop_commit`/`ignore` writes fail until a
    /// segment can be created again; under `stop`/`die` the log is
    /// poisoned.
    fn allocate(&mut self) -> Result<(), EngineError> {
        if let Some((why, at)) = &self.allocation_failure {
            if at.elapsed() < self.config.allocation_retry {
                return Err(EngineError::CommitLogSegmentUnavailable(why.clone()));
            }
        }
        match self.new_segment() {
            Ok(()) => {
                if let Some((why, _)) = self.allocation_failure.take() {
                    info!(
                        "commitlog {}: a new segment could be created; writes resume (failing before: {why})",
                        self.config.directory.display()
                    );
                }
                Ok(())
            }
            Err(e) => {
                let why = format!(
                    "cannot create a new segment in {}: {e}",
                    self.config.directory.display()
                );
                self.record_failure(CommitLogFailureKind::Allocation, &why);
                if !self.config.failure_policy.recovers() {
                    return Err(self.poison(why));
                }
                if self.allocation_failure.is_none() {
                    error!(
                        "commitlog {why}; writes fail until a segment can be created (retrying every {:?}, commit_failure_policy: {})",
                        self.config.allocation_retry, self.config.failure_policy
                    );
                }
                self.allocation_failure = Some((why.clone(), Instant::now()));
                Err(EngineError::CommitLogSegmentUnavailable(why))
            }
        }
    }

    /// Creates (or reuses a recycled file as) the next segment.
    fn new_segment(&mut self) -> Result<(), EngineError> {
        let id = segment_id(self.config.shard, self.next_seq);
        self.next_seq += 1;
        let path = self.config.directory.join(segment_file_name(id));
        let reused = match self.recycled.pop() {
            Some(old) => match fs::rename(&old, &path) {
                Ok(()) => true,
                Err(e) => {
                    warn!("cannot reuse recycled segment {}: {e}", old.display());
                    let _ = fs::remove_file(&old);
                    false
                }
            },
            None => false,
        };
        let file = match self.create_segment_file(&path) {
            Ok(f) => f,
            Err(e) => {
                // Half-made files would only eat the space being waited for.
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        let total_blocks = (self.config.segment_size / BLOCK_SIZE) as u64;
        let blocks = self.buffer_blocks_for(0, total_blocks);
        let buf = self.take_buffer(blocks);
        let mut active = Active {
            id,
            file: Arc::new(file),
            total_blocks,
            base_block: 0,
            buf,
            cur: 0,
            used: 0,
        };
        let header = segment_header(id);
        write_payload(&mut active, &header);
        self.active = Some(active);
        self.segments.push_back(Segment {
            id,
            path: path.clone(),
            dirty: HashMap::new(),
            has_truncation: false,
        });
        self.stats.segments_created += 1;
        info!(
            "commitlog: new segment {}{}",
            path.display(),
            if reused { " (recycled)" } else { "" }
        );
        Ok(())
    }

    /// Opens `path` and preallocates it to the segment size. On a full
    /// disk this is where `ENOSPC` shows (fallocate), before anything is
    /// written into the segment.
    fn create_segment_file(&mut self, path: &Path) -> Result<File, EngineError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_DIRECT | libc::O_CLOEXEC)
            .open(path)?;
        if self.inject_allocation_errors > 0 {
            self.inject_allocation_errors -= 1;
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC).into());
        }
        let size = self.config.segment_size as i64;
        let current = file.metadata()?.len() as i64;
        if current < size {
            // SAFETY: plain syscall on an open descriptor.
            let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, size) };
            if rc != 0 {
                let e = std::io::Error::last_os_error();
                // Not every filesystem supports fallocate; extend instead
                // (a full disk then shows as a failed write).
                if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
                    file.set_len(size as u64)?;
                } else {
                    return Err(e.into());
                }
            }
        } else if current > size {
            file.set_len(size as u64)?;
        }
        file.sync_all()?;
        fsync_dir(&self.config.directory)?;
        Ok(file)
    }

    fn push_sqe(&mut self, sqe: squeue::Entry) -> Result<(), EngineError> {
        loop {
            // SAFETY: every buffer an SQE points to is owned by
            // `self.in_flight` until its completion is reaped.
            let pushed = unsafe { self.ring.submission().push(&sqe) };
            if pushed.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
            self.reap()?;
        }
    }

    fn fd_for(&mut self, file: &File) -> i32 {
        if std::mem::take(&mut self.inject_error) {
            -1
        } else {
            file.as_raw_fd()
        }
    }

    /// Submits the buffered blocks of the active segment; with `partial`,
    /// the block being filled is sealed as is (padded) and submitted too.
    fn submit_buffer(&mut self, partial: bool) -> Result<(), EngineError> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        let mut blocks = active.cur;
        if partial && active.used > 0 {
            let start = active.cur * BLOCK_SIZE;
            let used = active.used;
            seal_block(
                &mut active.buf.as_mut_slice()[start..start + BLOCK_SIZE],
                active.id,
                used,
            );
            blocks += 1;
        }
        if blocks == 0 {
            return Ok(());
        }
        let offset = active.base_block * BLOCK_SIZE as u64;
        active.base_block += blocks as u64;
        let next_blocks = {
            let want = (self.config.buffer_size / BLOCK_SIZE).max(1) as u64;
            want.min(active.total_blocks - active.base_block).max(1) as usize
        };
        let file = active.file.clone();
        let segment = active.id;
        let fresh = self.take_buffer(next_blocks);
        let active = self.active.as_mut().expect("checked above");
        let buf = std::mem::replace(&mut active.buf, fresh);
        active.cur = 0;
        active.used = 0;
        let len = blocks * BLOCK_SIZE;
        let fd = self.fd_for(&file);
        let user_data = self.next_user_data;
        self.next_user_data += 1;
        let sqe = opcode::Write::new(types::Fd(fd), buf.as_ptr(), len as u32)
            .offset(offset)
            .build()
            .user_data(user_data);
        self.in_flight.insert(
            user_data,
            Op::Write {
                buf,
                _file: file,
                len,
                segment,
            },
        );
        self.push_sqe(sqe)?;
        self.ring.submit()?;
        self.stats.writes_submitted += 1;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Submits an fdatasync of the active segment, ordered after every
    /// earlier submission, covering `covers`.
    fn submit_sync(&mut self, covers: ReplayPosition) -> Result<(), EngineError> {
        let Some(active) = self.active.as_ref() else {
            return Ok(());
        };
        let file = active.file.clone();
        let segment = active.id;
        let fd = self.fd_for(&file);
        let user_data = self.next_user_data;
        self.next_user_data += 1;
        let sqe = opcode::Fsync::new(types::Fd(fd))
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .flags(squeue::Flags::IO_DRAIN)
            .user_data(user_data);
        self.in_flight.insert(
            user_data,
            Op::Sync {
                _file: file,
                covers,
                segment,
            },
        );
        self.push_sqe(sqe)?;
        self.ring.submit()?;
        self.sync_requested = self.sync_requested.max(covers);
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Finishes the active segment (all of it submitted and synced) and
    /// opens a new one.
    fn switch_segment(&mut self) -> Result<(), EngineError> {
        if self.active.is_some() {
            self.submit_buffer(true)?;
            let covers = self.appended;
            self.submit_sync(covers)?;
            self.active = None;
        }
        self.allocate()
    }

    /// Appends one entry payload (an encoded mutation or truncation
    /// record, see [`format`]) and returns the position after it. The entry
    /// is durable once [`CommitLog::durable_position`] reaches it.
    pub fn add(
        &mut self,
        table: Option<TableId>,
        payload: &[u8],
    ) -> Result<ReplayPosition, EngineError> {
        self.check_poisoned()?;
        self.reap()?;
        if payload.len() > self.max_entry_size() {
            return Err(EngineError::MutationTooLarge {
                size: payload.len(),
                max: self.max_entry_size(),
            });
        }
        let framed_len = ENTRY_OVERHEAD + payload.len();
        if self
            .active
            .as_ref()
            .is_none_or(|a| a.remaining() < framed_len as u64)
        {
            self.switch_segment()?;
        }
        let mut framed = Vec::with_capacity(framed_len);
        frame_entry(payload, &mut framed);
        let mut data = &framed[..];
        while !data.is_empty() {
            let active = self.active.as_mut().expect("segment opened above");
            let n = write_payload(active, data);
            data = &data[n..];
            if active.cur == active.buf.blocks() {
                self.submit_buffer(false)?;
            }
        }
        let active = self.active.as_ref().expect("segment opened above");
        let pos = active.position();
        self.appended = pos;
        let seg = self.segments.back_mut().expect("active segment is listed");
        match table {
            Some(t) => {
                seg.dirty.insert(t, pos);
            }
            None => seg.has_truncation = true,
        }
        self.stats.entries += 1;
        self.stats.bytes += framed_len as u64;
        // Back-pressure: bound what is in flight.
        while self.in_flight.len() > self.config.max_in_flight_buffers {
            self.ring.submit_and_wait(1)?;
            self.reap()?;
        }
        if let SyncMode::Periodic { period } = self.config.sync {
            if self.last_sync.elapsed() >= period {
                self.sync()?;
            }
        }
        Ok(pos)
    }

    /// Starts a sync of everything added so far (one fdatasync for all of
    /// it) and returns the position it covers. Does not wait.
    pub fn sync(&mut self) -> Result<ReplayPosition, EngineError> {
        self.check_poisoned()?;
        let target = self.appended;
        if target <= self.sync_requested {
            return Ok(self.sync_requested);
        }
        if self.active.as_ref().is_some_and(|a| a.has_buffered()) {
            self.submit_buffer(true)?;
        }
        self.submit_sync(target)?;
        Ok(target)
    }

    /// Periodic-mode housekeeping: starts a sync if the period elapsed and
    /// reaps completions. Call it from a timer.
    /// After a failed segment allocation it also retries the allocation
    /// (at most once per `allocation_retry`), so the log recovers without
    /// waiting for a write. A poisoned log has nothing to do.
    pub fn tick(&mut self) -> Result<(), EngineError> {
        if self.poisoned.is_some() {
            return Ok(());
        }
        self.reap()?;
        if self.active.is_none() && self.allocation_failure.is_some() {
            // Failures are counted and logged by `allocate`.
            let _ = self.allocate();
        }
        if let SyncMode::Periodic { period } = self.config.sync {
            if self.last_sync.elapsed() >= period && self.appended > self.sync_requested {
                self.sync()?;
            } else if self.last_write.elapsed() >= self.config.write_behind
                && self.active.as_ref().is_some_and(|a| a.has_buffered())
            {
                // Write-behind: hand what is buffered to the device now (the
                // partial block is sealed, as a sync would), so a process
                // crash cannot lose it; the fdatasync waits for the period.
                self.submit_buffer(true)?;
            }
        }
        Ok(())
    }

    /// Reaps finished I/O without blocking; returns the durable position.
    /// After a failed write (`ignore`, batch mode) the next call fails once,
    /// so a group commit fails every writer that waits for a sync.
    pub fn poll(&mut self) -> Result<ReplayPosition, EngineError> {
        let reaped = self.reap();
        if let Some(why) = self.pending_error.take() {
            return Err(EngineError::CommitLogWriteFailed(why));
        }
        reaped?;
        self.check_poisoned()?;
        Ok(self.durable)
    }

    fn reap(&mut self) -> Result<(), EngineError> {
        let mut failures = Vec::new();
        let done: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (user_data, res) in done {
            match self.in_flight.remove(&user_data) {
                Some(Op::Write {
                    buf, len, segment, ..
                }) => {
                    if segment <= self.abandoned_through {
                        // Already given up on; nothing there is acknowledged.
                    } else if res < 0 {
                        failures.push(format!(
                            "write failed: {}",
                            std::io::Error::from_raw_os_error(-res)
                        ));
                    } else if res as usize != len {
                        failures.push(format!("short write: {res} of {len} bytes"));
                    }
                    if self.free_buffers.len() < 8 {
                        self.free_buffers.push(buf);
                    }
                }
                Some(Op::Sync {
                    covers, segment, ..
                }) => {
                    if segment <= self.abandoned_through {
                        // An abandoned segment never makes anything durable.
                    } else if res < 0 {
                        failures.push(format!(
                            "fdatasync failed: {}",
                            std::io::Error::from_raw_os_error(-res)
                        ));
                    } else if failures.is_empty() && self.poisoned.is_none() {
                        self.durable = self.durable.max(covers);
                        self.stats.syncs_completed += 1;
                    }
                }
                None => {}
            }
        }
        if let Some(why) = failures.into_iter().next() {
            return Err(self.write_failed(why));
        }
        Ok(())
    }

    /// Blocks until `pos` is durable (starting a sync if none covers it).
    pub fn wait_durable(&mut self, pos: ReplayPosition) -> Result<(), EngineError> {
        loop {
            let reaped = self.reap();
            self.check_poisoned()?;
            if self.is_lost(pos) {
                let why = self
                    .last_failure
                    .as_ref()
                    .map(|f| f.message.clone())
                    .unwrap_or_default();
                return Err(EngineError::CommitLogWriteFailed(why));
            }
            if self.durable >= pos {
                return Ok(());
            }
            reaped?;
            if self.sync_requested < pos {
                self.sync()?;
            }
            if self.in_flight.is_empty() {
                return Err(self.poison(format!(
                    "position {pos:?} cannot become durable: nothing in flight"
                )));
            }
            self.ring.submit_and_wait(1)?;
        }
    }

    /// Marks `table` clean in every segment up to `up_to` (its data there
    /// is flushed, truncated or dropped) and reclaims segments left clean.
    pub fn discard_completed_segments(&mut self, table: &TableId, up_to: ReplayPosition) {
        for seg in self.segments.iter_mut() {
            if seg.dirty.get(table).is_some_and(|p| *p <= up_to) {
                seg.dirty.remove(table);
            }
        }
        self.reclaim();
    }

    /// Deletes or recycles clean, finished segments. A segment holding a
    /// truncation record only goes once it is the oldest, so older data of
    /// the truncated table can never replay without it.
    fn reclaim(&mut self) {
        let active_id = self.active.as_ref().map(|a| a.id);
        let mut i = 0;
        while i < self.segments.len() {
            let seg = &self.segments[i];
            let reclaimable = Some(seg.id) != active_id
                && seg.dirty.is_empty()
                && (!seg.has_truncation || i == 0);
            if !reclaimable {
                i += 1;
                continue;
            }
            let seg = self.segments.remove(i).expect("index in range");
            if self.recycled.len() < self.config.max_recycled_segments {
                let to = self
                    .config
                    .directory
                    .join(recycled_file_name(self.next_recycled_name));
                self.next_recycled_name += 1;
                match fs::rename(&seg.path, &to) {
                    Ok(()) => {
                        self.recycled.push(to);
                        self.stats.segments_recycled += 1;
                        continue;
                    }
                    Err(e) => warn!("cannot recycle {}: {e}", seg.path.display()),
                }
            }
            match fs::remove_file(&seg.path) {
                Ok(()) => self.stats.segments_deleted += 1,
                Err(e) => warn!(
                    "cannot delete commitlog segment {}: {e}",
                    seg.path.display()
                ),
            }
        }
    }

    /// Submits and syncs everything, waiting for the disk. Used at
    /// shutdown.
    pub fn shutdown(&mut self) -> Result<(), EngineError> {
        if self.poisoned.is_some() {
            return self.check_poisoned();
        }
        let pos = self.sync()?;
        self.wait_durable(pos)?;
        info!(
            "commitlog {} shut down cleanly",
            self.config.directory.display()
        );
        Ok(())
    }
}

impl Drop for CommitLog {
    fn drop(&mut self) {
        // The kernel may still be writing from our buffers: wait for every
        // submission before they are freed.
        while !self.in_flight.is_empty() {
            if self.ring.submit_and_wait(1).is_err() {
                break;
            }
            let done: Vec<u64> = self.ring.completion().map(|c| c.user_data()).collect();
            for d in done {
                self.in_flight.remove(&d);
            }
        }
        if !self.in_flight.is_empty() {
            // The ring failed: leak the buffers rather than free memory the
            // kernel may still write to.
            for (_, op) in self.in_flight.drain() {
                std::mem::forget(op);
            }
        }
    }
}

/// Copies as much of `data` as fits into the active buffer's current
/// block, sealing the block when full; returns bytes consumed.
fn write_payload(active: &mut Active, data: &[u8]) -> usize {
    let mut consumed = 0;
    while consumed < data.len() && active.cur < active.buf.blocks() {
        let room = BLOCK_PAYLOAD - active.used;
        let n = room.min(data.len() - consumed);
        let start = active.cur * BLOCK_SIZE + format::BLOCK_HEADER_SIZE + active.used;
        active.buf.as_mut_slice()[start..start + n].copy_from_slice(&data[consumed..consumed + n]);
        active.used += n;
        consumed += n;
        if active.used == BLOCK_PAYLOAD {
            let b = active.cur * BLOCK_SIZE;
            seal_block(
                &mut active.buf.as_mut_slice()[b..b + BLOCK_SIZE],
                active.id,
                BLOCK_PAYLOAD,
            );
            active.cur += 1;
            active.used = 0;
        }
    }
    consumed
}
