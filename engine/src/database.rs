//! [`Database`]: one shard's storage — its tables ([`ColumnFamily`]), their
//! memtables, and the read and write paths over them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{info, warn};

use crate::commitlog::format::{ENTRY_MUTATION, ENTRY_TRUNCATE};
use crate::commitlog::{
    CommitLog, CommitLogConfig, CommitLogReplayer, ReplayPosition, ReplayReport, SyncMode,
};
use crate::compaction::job::{cancelled_error, is_cancelled, remove_log};
use crate::compaction::{
    pick_task, CompactionJob, CompactionKind, CompactionManager, CompactionOutput,
    CompactionProgress, CompactionStats, CompactionTask,
};
use crate::error::{format_table_id, EngineError};
use crate::memtable::Memtable;
use crate::mutation::{Bound, Mutation, PartitionKey, PartitionUpdate, TableId};
use crate::read::{ReadCommand, TokenRange};
use crate::reader::{read_merged, scan_merged, MutationSource};
use crate::schema::TableSchema;
use crate::serialize::encode_mutation;
use crate::sstable::{load_directory, sync_dir, BlockCache, SSTable, SSTableWriter};

/// A background flush: writes a frozen memtable to a new SSTable. `Send`,
/// so it can run off the shard's thread.
pub struct FlushJob {
    table: TableId,
    dir: PathBuf,
    generation: u64,
    schema: Arc<TableSchema>,
    memtable: Arc<Memtable>,
    position: Option<crate::commitlog::ReplayPosition>,
}

impl FlushJob {
    /// Writes and commits the SSTable (temp file, fsync, rename).
    pub fn run(&self) -> Result<SSTable, EngineError> {
        let mut w = SSTableWriter::new(&self.dir, self.generation, &self.schema)?;
        w.set_metadata(self.position, 0);
        let range = TokenRange::full();
        let ranges = [crate::mutation::ClusteringRange::full()];
        let written = (|| {
            for p in self.memtable.scan_raw(&range, &ranges) {
                w.append(&p?)?;
            }
            Ok::<_, EngineError>(())
        })();
        if let Err(e) = written {
            w.abandon();
            return Err(e);
        }
        w.finish()?.commit(self.schema.clone())
    }

    /// The table being flushed.
    pub fn table(&self) -> &TableId {
        &self.table
    }
}

/// Storage settings of one shard. Build with [`EngineConfig::in_memory`]
/// and adjust fields; new settings keep their defaults for existing callers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Memory budget (bytes) of all memtables of the shard
    /// (`memtable_heap_space_in_mb` divided among shards).
    pub memtable_space_bytes: usize,
    /// The shard's commitlog; `None` keeps everything in memory only.
    pub commitlog: Option<CommitLogConfig>,
    /// The shard's data directory (one of `data_file_directories`, per
    /// shard). Each table's SSTables live in `<data_directory>/<table id
    /// as 32 hex digits>/`. `None`: tables have no SSTables unless created
    /// with [`Database::create_table_with_dir`].
    pub data_directory: Option<PathBuf>,
    /// When the memtables of the shard together hold more than this, the
    /// largest flushable one is flushed on the writing thread before the
    /// write returns (which is also the back-pressure: writers wait for
    /// the flush). 0 disables automatic flushes.
    pub memtable_budget_bytes: usize,
    /// Flushes run off the shard's thread (see [`Database::begin_flush`]);
    /// writes only block when memtables reach twice the budget.
    pub background_flush: bool,
    /// Capacity (bytes) of the shard's cache of decompressed SSTable data
    /// blocks (Cassandra's chunk cache, `file_cache_size`); `None`: as much
    /// as `memtable_space_bytes` (Cassandra's defaults give both a quarter
    /// of the heap). 0 disables the cache.
    pub block_cache_bytes: Option<usize>,
}

impl EngineConfig {
    /// A configuration without a commitlog: nothing survives a restart.
    pub fn in_memory() -> Self {
        EngineConfig {
            memtable_space_bytes: 256 << 20,
            commitlog: None,
            data_directory: None,
            memtable_budget_bytes: 256 << 20,
            background_flush: false,
            block_cache_bytes: None,
        }
    }

    /// A durable configuration with SSTables in `data_directory`.
    pub fn durable(commitlog: CommitLogConfig, data_directory: impl Into<PathBuf>) -> Self {
        EngineConfig {
            commitlog: Some(commitlog),
            data_directory: Some(data_directory.into()),
            ..EngineConfig::in_memory()
        }
    }

    /// A durable configuration: writes go to `commitlog` first.
    pub fn with_commitlog(commitlog: CommitLogConfig) -> Self {
        EngineConfig {
            commitlog: Some(commitlog),
            ..EngineConfig::in_memory()
        }
    }
}

/// A snapshot of the shard's storage counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Mutations applied.
    pub writes: u64,
    /// Single-partition reads served.
    pub reads: u64,
    /// Range scans served.
    pub scans: u64,
    /// Memtables flushed to SSTables.
    pub flushes: u64,
    /// Compactions completed.
    pub compactions: u64,
}

/// Per-table counters (Cassandra's `TableMetrics`), updated on the shard.
#[derive(Debug, Default)]
struct TableMetrics {
    reads: AtomicU64,
    read_micros: AtomicU64,
    scans: AtomicU64,
    scan_micros: AtomicU64,
    writes: AtomicU64,
    write_micros: AtomicU64,
    /// Memtables flushed (`memtable switch count`).
    flushes: u64,
    compactions: u64,
}

fn record(count: &AtomicU64, micros: &AtomicU64, started: Instant) {
    count.fetch_add(1, AtomicOrdering::Relaxed);
    micros.fetch_add(
        started.elapsed().as_micros().min(u64::MAX as u128) as u64,
        AtomicOrdering::Relaxed,
    );
}

/// One table's statistics on one shard (`nodetool tablestats`); sum them
/// over shards. Latencies are totals: divide by the count for the mean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Single-partition reads (`Local read count`).
    pub read_count: u64,
    pub read_latency_micros: u64,
    /// Range scans.
    pub scan_count: u64,
    pub scan_latency_micros: u64,
    /// Mutations applied (`Local write count`).
    pub write_count: u64,
    pub write_latency_micros: u64,
    pub sstable_count: u64,
    /// Bytes of the live SSTable files (`Space used (live)`).
    pub space_used_bytes: u64,
    pub sstable_partitions: u64,
    pub memtable_bytes: u64,
    pub memtable_partitions: u64,
    /// Cells (operations) in the active memtable.
    pub memtable_cells: u64,
    /// Memtables flushed since start.
    pub memtable_switch_count: u64,
    /// Background flushes in flight.
    pub pending_flushes: u64,
    /// Compactions the strategy asks for and not started yet (0 or 1).
    pub compactions_pending: u64,
    pub compactions_running: u64,
    pub compactions_completed: u64,
    /// Bloom filter said "maybe" and the key was not there.
    pub bloom_filter_false_positives: u64,
}

impl TableStats {
    /// Adds another shard's statistics of the same table.
    pub fn add(&mut self, o: &TableStats) {
        self.read_count += o.read_count;
        self.read_latency_micros += o.read_latency_micros;
        self.scan_count += o.scan_count;
        self.scan_latency_micros += o.scan_latency_micros;
        self.write_count += o.write_count;
        self.write_latency_micros += o.write_latency_micros;
        self.sstable_count += o.sstable_count;
        self.space_used_bytes += o.space_used_bytes;
        self.sstable_partitions += o.sstable_partitions;
        self.memtable_bytes += o.memtable_bytes;
        self.memtable_partitions += o.memtable_partitions;
        self.memtable_cells += o.memtable_cells;
        self.memtable_switch_count += o.memtable_switch_count;
        self.pending_flushes += o.pending_flushes;
        self.compactions_pending += o.compactions_pending;
        self.compactions_running += o.compactions_running;
        self.compactions_completed += o.compactions_completed;
        self.bloom_filter_false_positives += o.bloom_filter_false_positives;
    }
}

/// A running compaction, as `nodetool compactionstats` shows it.
#[derive(Debug, Clone)]
pub struct CompactionInfo {
    /// Unique on its shard.
    pub id: u64,
    pub table: TableId,
    pub kind: CompactionKind,
    /// Estimated input bytes merged so far.
    pub completed_bytes: u64,
    /// Bytes of the inputs.
    pub total_bytes: u64,
    pub inputs: usize,
    pub elapsed: Duration,
}

#[derive(Debug)]
struct RunningCompaction {
    id: u64,
    table: TableId,
    kind: CompactionKind,
    inputs: usize,
    progress: Arc<CompactionProgress>,
}

/// The durable record of a table's last truncation, `truncated_at` in the
/// table directory (Cassandra keeps it in `system.local`). Its write is the
/// commit point of a truncation: from then on every SSTable it covers is
/// deleted (now, or at the next load) and commitlog replay skips the
/// table's mutations up to `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncationRecord {
    /// Every mutation of the table logged at or before this position was
    /// truncated (`None`: the shard has no commitlog).
    pub position: Option<ReplayPosition>,
    /// Every SSTable generation below this existed before the truncation.
    pub generation: u64,
    /// Milliseconds since the epoch.
    pub truncated_at_ms: u64,
}

const TRUNCATION_RECORD: &str = "truncated_at";
const TRUNCATION_MAGIC: &[u8; 8] = b"TSRTRNC1";

impl TruncationRecord {
    /// Whether `s` holds only data from before the truncation: by its
    /// commitlog position when it has one (compaction outputs written
    /// after the truncation still carry their inputs' positions), else by
    /// generation.
    fn covers(&self, s: &SSTable) -> bool {
        match (s.stats().commitlog_position, self.position) {
            (Some(p), Some(t)) => p <= t,
            _ => s.generation() < self.generation,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(45);
        b.extend_from_slice(TRUNCATION_MAGIC);
        b.push(self.position.is_some() as u8);
        let p = self.position.unwrap_or_default();
        b.extend_from_slice(&p.segment_id.to_be_bytes());
        b.extend_from_slice(&p.offset.to_be_bytes());
        b.extend_from_slice(&self.generation.to_be_bytes());
        b.extend_from_slice(&self.truncated_at_ms.to_be_bytes());
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() != 45 || &b[..8] != TRUNCATION_MAGIC {
            return Err("bad truncation record (size or magic)".into());
        }
        let crc = u32::from_be_bytes([b[41], b[42], b[43], b[44]]);
        if crc32c::crc32c(&b[..41]) != crc {
            return Err("truncation record checksum mismatch".into());
        }
        let u = |at: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[at..at + 8]);
            u64::from_be_bytes(x)
        };
        Ok(TruncationRecord {
            position: (b[8] == 1).then_some(ReplayPosition {
                segment_id: u(9),
                offset: u(17),
            }),
            generation: u(25),
            truncated_at_ms: u(33),
        })
    }
}

/// Reads a table directory's truncation record, if any.
fn read_truncation_record(dir: &Path) -> Result<Option<TruncationRecord>, EngineError> {
    let path = dir.join(TRUNCATION_RECORD);
    match fs::read(&path) {
        Ok(b) => TruncationRecord::decode(&b)
            .map(Some)
            .map_err(|reason| EngineError::CorruptSSTable { path, reason }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Durably replaces a table directory's truncation record (temporary
/// name, fsync, rename, directory fsync).
fn write_truncation_record(dir: &Path, r: &TruncationRecord) -> Result<(), EngineError> {
    use std::io::Write;
    let tmp = dir.join(format!("{TRUNCATION_RECORD}.tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&r.encode())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(TRUNCATION_RECORD))?;
    sync_dir(dir)?;
    Ok(())
}

/// One table on one shard (Cassandra's `ColumnFamilyStore`).
#[derive(Debug)]
pub struct ColumnFamily {
    schema: Arc<TableSchema>,
    memtable: Memtable,
    /// Where the table's SSTables live (`None`: memory only).
    dir: Option<PathBuf>,
    /// Live SSTables, oldest generation first.
    sstables: Vec<Arc<SSTable>>,
    /// The next SSTable (or compaction log) generation; shared with
    /// compaction jobs, which draw their outputs' generations from it.
    next_generation: Arc<AtomicU64>,
    /// A compaction of this table is running (at most one at a time, so
    /// its inputs are never picked again).
    compacting: Option<u64>,
    /// `nodetool compact` waits for the running compaction: no new
    /// background one is started meanwhile.
    major_requested: bool,
    /// The last durable truncation (see `docs/compaction.md`).
    truncation: Option<TruncationRecord>,
    /// Read/write counters and latencies, flush and compaction counts.
    metrics: TableMetrics,
    /// Memtables being written to SSTables by a background flush; still
    /// read until their SSTable is installed.
    flushing: Vec<Arc<Memtable>>,
    /// A background flush of this table failed: its frozen memtable stays
    /// readable and the commitlog keeps its data (no segment is discarded
    /// for the table until restart).
    flush_failed: bool,
}

impl ColumnFamily {
    fn new(schema: Arc<TableSchema>) -> Self {
        ColumnFamily {
            memtable: Memtable::new(schema.clone()),
            schema,
            dir: None,
            sstables: Vec::new(),
            next_generation: Arc::new(AtomicU64::new(1)),
            compacting: None,
            major_requested: false,
            truncation: None,
            metrics: TableMetrics::default(),
            flushing: Vec::new(),
            flush_failed: false,
        }
    }

    /// A table whose SSTables live in `dir`: loads the ones there, after
    /// finishing an interrupted truncation (its record names what goes).
    fn open(schema: Arc<TableSchema>, dir: PathBuf) -> Result<Self, EngineError> {
        let mut loaded = load_directory(&dir, &schema)?;
        let truncation = read_truncation_record(&dir)?;
        if let Some(t) = &truncation {
            let (doomed, kept): (Vec<_>, Vec<_>) =
                loaded.sstables.into_iter().partition(|s| t.covers(s));
            for s in &doomed {
                info!(
                    "table {}: removing {} (truncated before the restart)",
                    format_table_id(&schema.id),
                    s.path().display()
                );
                fs::remove_file(s.path())?;
            }
            if !doomed.is_empty() {
                sync_dir(&dir)?;
            }
            loaded.sstables = kept;
            loaded.next_generation = loaded.next_generation.max(t.generation);
        }
        info!(
            "table {}: {} SSTables loaded from {}",
            format_table_id(&schema.id),
            loaded.sstables.len(),
            dir.display()
        );
        Ok(ColumnFamily {
            memtable: Memtable::new(schema.clone()),
            schema,
            dir: Some(dir),
            sstables: loaded.sstables,
            next_generation: Arc::new(AtomicU64::new(loaded.next_generation)),
            compacting: None,
            major_requested: false,
            truncation,
            metrics: TableMetrics::default(),
            flushing: Vec::new(),
            flush_failed: false,
        })
    }

    /// The table's live SSTables, oldest first.
    pub fn sstables(&self) -> &[Arc<SSTable>] {
        &self.sstables
    }

    /// The table's SSTable directory, if it has one.
    pub fn directory(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Everything at or before this commitlog position is in SSTables (or
    /// was truncated).
    fn flushed_position(&self) -> Option<ReplayPosition> {
        self.sstables
            .iter()
            .filter_map(|s| s.stats().commitlog_position)
            .chain(self.truncation.and_then(|t| t.position))
            .max()
    }

    fn allocate_generation(&self) -> u64 {
        self.next_generation.fetch_add(1, AtomicOrdering::Relaxed)
    }

    /// The table's counters and sizes right now (this shard only).
    pub fn stats(&self) -> TableStats {
        let m = &self.metrics;
        let load = |a: &AtomicU64| a.load(AtomicOrdering::Relaxed);
        TableStats {
            read_count: load(&m.reads),
            read_latency_micros: load(&m.read_micros),
            scan_count: load(&m.scans),
            scan_latency_micros: load(&m.scan_micros),
            write_count: load(&m.writes),
            write_latency_micros: load(&m.write_micros),
            sstable_count: self.sstables.len() as u64,
            space_used_bytes: self.sstables.iter().map(|s| s.size()).sum(),
            sstable_partitions: self
                .sstables
                .iter()
                .map(|s| s.stats().partition_count)
                .sum(),
            memtable_bytes: self.memtable.memory_usage() as u64,
            memtable_partitions: self.memtable.partition_count() as u64,
            memtable_cells: self.memtable.operation_count(),
            memtable_switch_count: m.flushes,
            pending_flushes: self.flushing.len() as u64,
            compactions_pending: (self.dir.is_some()
                && self.compacting.is_none()
                && pick_task(&self.schema.compaction, &self.sstables).is_some())
                as u64,
            compactions_running: self.compacting.is_some() as u64,
            compactions_completed: m.compactions,
            bloom_filter_false_positives: self
                .sstables
                .iter()
                .map(|s| s.bloom_filter_false_positives())
                .sum(),
        }
    }

    /// Deletes every SSTable file (drop/truncate).
    fn delete_sstables(&mut self) -> Result<(), EngineError> {
        for s in self.sstables.drain(..) {
            match fs::remove_file(s.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(dir) = &self.dir {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// The table's current schema.
    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    /// The active memtable.
    pub fn memtable(&self) -> &Memtable {
        &self.memtable
    }

    /// Every source of the table's data: the memtable, memtables being
    /// flushed, then the SSTables.
    pub fn sources(&self) -> Vec<&dyn MutationSource> {
        let mut v = Vec::with_capacity(1 + self.flushing.len() + self.sstables.len());
        v.push(&self.memtable as &dyn MutationSource);
        v.extend(self.flushing.iter().map(|m| &**m as &dyn MutationSource));
        v.extend(self.sstables.iter().map(|s| &**s as &dyn MutationSource));
        v
    }

    /// Checks that `update` fits the schema before anything of it is applied.
    fn validate(&self, update: &PartitionUpdate) -> Result<(), EngineError> {
        let n = self.schema.clustering.len();
        for (c, _) in &update.rows {
            if c.len() != n {
                return Err(EngineError::InvalidMutation(format!(
                    "row clustering has {} components, table {} has {n}",
                    c.len(),
                    format_table_id(&self.schema.id)
                )));
            }
        }
        for rt in &update.range_tombstones {
            for b in [&rt.range.start, &rt.range.end] {
                if let Bound::Inclusive(p) | Bound::Exclusive(p) = b {
                    if p.len() > n {
                        return Err(EngineError::InvalidMutation(format!(
                            "range tombstone bound has {} components, table {} has {n}",
                            p.len(),
                            format_table_id(&self.schema.id)
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// One shard's storage.
#[derive(Debug)]
pub struct Database {
    config: EngineConfig,
    tables: HashMap<TableId, ColumnFamily>,
    /// Open once [`Database::start_commitlog`] has replayed the log.
    commitlog: Option<CommitLog>,
    compaction: CompactionManager,
    /// Compactions handed out by `begin_compaction` and not completed.
    running: Vec<RunningCompaction>,
    next_compaction_id: u64,
    /// The last commitlog position replayed at start: replayed data sits
    /// in memtables but below `current_position` of the new log.
    replayed_up_to: Option<ReplayPosition>,
    writes: AtomicU64,
    reads: AtomicU64,
    scans: AtomicU64,
    flushes: u64,
    /// Decompressed data blocks of this shard's SSTables (attached to each
    /// SSTable when it is installed).
    block_cache: Arc<BlockCache>,
}

/// Seconds since the epoch (Cassandra's `nowInSec`).
pub fn now_seconds() -> i32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs().min(i32::MAX as u64) as i32)
        .unwrap_or(0)
}

/// The directory name of a table: its id as 32 hex digits.
pub fn table_dir_name(id: &TableId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl Database {
    /// An empty shard storage with `config`.
    pub fn new(config: EngineConfig) -> Self {
        let cache_bytes = config
            .block_cache_bytes
            .unwrap_or(config.memtable_space_bytes);
        Database {
            block_cache: Arc::new(BlockCache::new(cache_bytes)),
            config,
            tables: HashMap::new(),
            commitlog: None,
            compaction: CompactionManager::default(),
            running: Vec::new(),
            next_compaction_id: 1,
            replayed_up_to: None,
            flushes: 0,
            writes: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            scans: AtomicU64::new(0),
        }
    }

    /// The configuration this shard was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The shard's block cache (its counters: `.stats()`).
    pub fn block_cache(&self) -> &Arc<BlockCache> {
        &self.block_cache
    }

    /// Opens a shard: creates every table (loading its SSTables) and then
    /// replays the commitlog (only what is not in SSTables yet).
    pub fn open(
        config: EngineConfig,
        schemas: impl IntoIterator<Item = Arc<TableSchema>>,
    ) -> Result<(Database, ReplayReport), EngineError> {
        let mut db = Database::new(config);
        for s in schemas {
            db.try_create_table(s)?;
        }
        let report = db.start_commitlog()?;
        Ok((db, report))
    }

    /// Adds a table; if it exists already, only its schema is replaced.
    /// With a data directory configured, the table's SSTables are loaded
    /// from it (do this before [`Database::start_commitlog`]). If they
    /// cannot be loaded (I/O error, corrupt file) the error is logged and
    /// the table runs without SSTables: its data stays in the commitlog
    /// (nothing is flushed or discarded) and the damaged files are left
    /// alone. Use [`Database::try_create_table`] to see the error.
    pub fn create_table(&mut self, schema: Arc<TableSchema>) {
        if let Err(e) = self.try_create_table(schema.clone()) {
            log::error!(
                "table {}: cannot load SSTables ({e}); serving it without them",
                format_table_id(&schema.id)
            );
            self.tables.insert(schema.id, ColumnFamily::new(schema));
        }
    }

    /// [`Database::create_table`], failing if the table's SSTables cannot
    /// be loaded (e.g. [`EngineError::CorruptSSTable`]).
    pub fn try_create_table(&mut self, schema: Arc<TableSchema>) -> Result<(), EngineError> {
        match &self.config.data_directory {
            Some(root) => {
                let dir = root.join(table_dir_name(&schema.id));
                self.create_table_with_dir(schema, dir)
            }
            None => {
                if self.has_table(&schema.id) {
                    self.alter_table(schema);
                } else {
                    info!("creating table {}", format_table_id(&schema.id));
                    self.tables.insert(schema.id, ColumnFamily::new(schema));
                }
                Ok(())
            }
        }
    }

    /// Adds a table whose SSTables live in `dir` (created if missing) and
    /// loads the SSTables already there. If the table exists, only its
    /// schema is replaced.
    pub fn create_table_with_dir(
        &mut self,
        schema: Arc<TableSchema>,
        dir: impl Into<PathBuf>,
    ) -> Result<(), EngineError> {
        if self.tables.contains_key(&schema.id) {
            self.alter_table(schema);
            return Ok(());
        }
        info!("creating table {}", format_table_id(&schema.id));
        let cf = ColumnFamily::open(schema.clone(), dir.into())?;
        cf.sstables
            .iter()
            .for_each(|s| s.attach_cache(&self.block_cache));
        self.tables.insert(schema.id, cf);
        Ok(())
    }

    /// Replaces a table's schema. Clustering types cannot change (CQL
    /// forbids altering primary key columns); rows already in memory keep
    /// the order they were written with.
    pub fn alter_table(&mut self, schema: Arc<TableSchema>) {
        match self.tables.get_mut(&schema.id) {
            Some(cf) => {
                if cf.schema.clustering != schema.clustering {
                    warn!(
                        "table {}: clustering columns changed by ALTER; keeping the original order",
                        format_table_id(&schema.id)
                    );
                }
                cf.schema = schema;
            }
            None => {
                warn!(
                    "alter of unknown table {}: creating it",
                    format_table_id(&schema.id)
                );
                self.tables.insert(schema.id, ColumnFamily::new(schema));
            }
        }
    }

    /// Removes a table and all its data (its commitlog data is discarded:
    /// replay skips tables that do not exist).
    pub fn drop_table(&mut self, id: &TableId) {
        // A running compaction stops; its completion finds the table gone.
        self.cancel_compactions(Some(id));
        if let Some(mut cf) = self.tables.remove(id) {
            if let Err(e) = cf.delete_sstables() {
                warn!(
                    "drop of {}: cannot delete SSTables: {e}",
                    format_table_id(id)
                );
            }
            if let Some(dir) = &cf.dir {
                // Only succeeds when nothing else is left in it.
                let _ = fs::remove_dir(dir);
            }
            if let Some(cl) = &mut self.commitlog {
                cl.discard_completed_segments(
                    id,
                    ReplayPosition {
                        segment_id: u64::MAX,
                        offset: u64::MAX,
                    },
                );
            }
            info!("dropped table {}", format_table_id(id));
        }
    }

    /// Removes all data of a table, keeping the table. Crash-safe (see
    /// `docs/compaction.md`, "Truncation"): after a crash at any point the
    /// table shows either all its data or none of it. If the truncation
    /// cannot be made durable the error is logged — use
    /// [`Database::truncate_checked`] to see it.
    pub fn truncate(&mut self, id: &TableId) {
        if let Err(e) = self.truncate_checked(id) {
            warn!("truncate of {} failed: {e}", format_table_id(id));
        }
    }

    /// [`Database::truncate`], reporting failure. On error nothing was
    /// truncated unless the truncation record was written (then the
    /// truncation completes at the next start).
    pub fn truncate_checked(&mut self, id: &TableId) -> Result<(), EngineError> {
        if !self.tables.contains_key(id) {
            return Err(EngineError::NoSuchTable(*id));
        }
        if self.config.commitlog.is_some() && self.commitlog.is_none() {
            return Err(EngineError::CommitLogNotStarted);
        }
        // A running compaction stops (or, past its log, is discarded when
        // it completes: its inputs are gone).
        self.cancel_compactions(Some(id));
        // 1. Commit point for tables with SSTables: the truncation record.
        //    Its position covers every mutation logged so far (written
        //    and replayed), so replay skips them; every SSTable holding
        //    them has a position at or below it.
        let current = self.commitlog.as_ref().map(|cl| cl.current_position());
        let replayed = self.replayed_up_to;
        let cf = self.tables.get_mut(id).expect("checked above");
        if let Some(dir) = cf.dir.clone() {
            let position = [current, replayed, cf.flushed_position()]
                .into_iter()
                .flatten()
                .max();
            let record = TruncationRecord {
                position,
                generation: cf.allocate_generation(),
                truncated_at_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0),
            };
            write_truncation_record(&dir, &record)?;
            cf.truncation = Some(record);
        }
        // 2. The commitlog record (the commit point for tables without
        //    SSTables; it also guards a replay of these segments by new
        //    owners after resharding).
        if let Some(cl) = self.commitlog.as_mut() {
            let mut payload = Vec::with_capacity(17);
            payload.push(ENTRY_TRUNCATE);
            payload.extend_from_slice(id);
            let pos = cl.add(None, &payload)?;
            cl.sync()?;
            cl.wait_durable(pos)?;
            cl.discard_completed_segments(id, pos);
        }
        // 3. Memory and files.
        let cf = self.tables.get_mut(id).expect("checked above");
        let schema = cf.schema.clone();
        cf.memtable = Memtable::new(schema);
        // A background flush in flight finds its memtable gone and
        // throws its SSTable away (see complete_flush).
        cf.flushing.clear();
        cf.flush_failed = false;
        cf.delete_sstables()?;
        info!("truncated table {}", format_table_id(id));
        Ok(())
    }

    /// Whether the table exists on this shard.
    pub fn has_table(&self, id: &TableId) -> bool {
        self.tables.contains_key(id)
    }

    /// The table, if it exists.
    pub fn table(&self, id: &TableId) -> Option<&ColumnFamily> {
        self.tables.get(id)
    }

    fn cf(&self, id: &TableId) -> Result<&ColumnFamily, EngineError> {
        self.tables.get(id).ok_or(EngineError::NoSuchTable(*id))
    }

    /// Replays the commitlog into the memtables and opens it for writes.
    /// Call once, after every table is created and before any write. With
    /// no commitlog configured this does nothing.
    pub fn start_commitlog(&mut self) -> Result<ReplayReport, EngineError> {
        let Some(config) = self.config.commitlog.clone() else {
            return Ok(ReplayReport::default());
        };
        if self.commitlog.is_some() {
            return Err(EngineError::InvalidConfig(
                "commitlog already started".into(),
            ));
        }
        let out = CommitLogReplayer::for_shard(&config.directory, config.shard).replay()?;
        let mut report = out.report;
        let floors: HashMap<TableId, ReplayPosition> = self
            .tables
            .iter()
            .filter_map(|(id, cf)| cf.flushed_position().map(|p| (*id, p)))
            .collect();
        let mut already_flushed = 0u64;
        self.replayed_up_to = out.positions.iter().max().copied();
        for (m, pos) in out.mutations.iter().zip(&out.positions) {
            if floors.get(&m.table).is_some_and(|floor| pos <= floor) {
                already_flushed += 1;
                continue;
            }
            match self.tables.get_mut(&m.table) {
                Some(cf) => match cf.validate(&m.update) {
                    Ok(()) => cf.memtable.apply(&m.update),
                    Err(e) => {
                        warn!("commitlog replay: skipping mutation: {e}");
                        report.mutations_skipped += 1;
                    }
                },
                None => report.mutations_skipped += 1,
            }
        }
        info!("commitlog replay: {already_flushed} mutations already in SSTables skipped");
        info!(
            "commitlog replayed: {} entries, {} mutations for unknown tables skipped, {} torn bytes skipped, {} corrupt segments",
            report.entries_replayed,
            report.mutations_skipped,
            report.torn_bytes_skipped,
            report.corrupt_segments.len()
        );
        let mut cl = CommitLog::open(config, &out.segments, out.recycled)?;
        for (id, floor) in &floors {
            cl.discard_completed_segments(id, *floor);
        }
        self.commitlog = Some(cl);
        Ok(report)
    }

    /// Applies a mutation: commitlog first (if configured), then the
    /// memtable. In batch mode this returns only once the mutation is on
    /// disk (one sync per call: for group commit use
    /// [`Database::apply_deferred`] and [`Database::sync_commitlog`]).
    pub fn apply(&mut self, m: &Mutation) -> Result<(), EngineError> {
        let batch = matches!(
            self.config.commitlog.as_ref().map(|c| c.sync),
            Some(SyncMode::Batch { .. })
        );
        let cf = self
            .tables
            .get(&m.table)
            .ok_or(EngineError::NoSuchTable(m.table))?;
        cf.validate(&m.update)?;
        if let Some(pos) = self.log(m)? {
            if batch {
                let cl = self.commitlog.as_mut().expect("logged above");
                cl.sync()?;
                cl.wait_durable(pos)?;
            }
        }
        self.apply_to_memtable(m);
        self.maybe_flush()?;
        Ok(())
    }

    /// Applies a mutation without waiting for the commitlog sync, and
    /// returns its commitlog position (`None` without a commitlog). In batch
    /// mode the caller acknowledges the write only once
    /// [`Database::commitlog_durable_position`] reaches that position —
    /// many writes then share one sync ([`Database::sync_commitlog`]).
    pub fn apply_deferred(&mut self, m: &Mutation) -> Result<Option<ReplayPosition>, EngineError> {
        let cf = self
            .tables
            .get(&m.table)
            .ok_or(EngineError::NoSuchTable(m.table))?;
        cf.validate(&m.update)?;
        let pos = self.log(m)?;
        self.apply_to_memtable(m);
        self.maybe_flush()?;
        Ok(pos)
    }

    fn log(&mut self, m: &Mutation) -> Result<Option<ReplayPosition>, EngineError> {
        if self.config.commitlog.is_none() {
            return Ok(None);
        }
        let cl = self
            .commitlog
            .as_mut()
            .ok_or(EngineError::CommitLogNotStarted)?;
        let mut payload = Vec::with_capacity(256);
        payload.push(ENTRY_MUTATION);
        encode_mutation(m, &mut payload);
        cl.add(Some(m.table), &payload).map(Some)
    }

    fn apply_to_memtable(&mut self, m: &Mutation) {
        if let Some(cf) = self.tables.get_mut(&m.table) {
            let started = Instant::now();
            cf.memtable.apply(&m.update);
            record(&cf.metrics.writes, &cf.metrics.write_micros, started);
            self.writes.fetch_add(1, AtomicOrdering::Relaxed);
        }
    }

    /// Starts a commitlog sync covering every write so far (group commit);
    /// returns the position it covers. Does not wait.
    pub fn sync_commitlog(&mut self) -> Result<Option<ReplayPosition>, EngineError> {
        self.commitlog.as_mut().map(|cl| cl.sync()).transpose()
    }

    /// Reaps finished commitlog I/O without blocking and returns the
    /// durable position (`None` without a commitlog).
    pub fn commitlog_durable_position(&mut self) -> Result<Option<ReplayPosition>, EngineError> {
        self.commitlog.as_mut().map(|cl| cl.poll()).transpose()
    }

    /// Blocks until `pos` is durable.
    pub fn wait_commitlog(&mut self, pos: ReplayPosition) -> Result<(), EngineError> {
        match &mut self.commitlog {
            Some(cl) => cl.wait_durable(pos),
            None => Ok(()),
        }
    }

    /// Periodic-mode housekeeping (sync when the period elapsed); call from
    /// a timer.
    pub fn commitlog_tick(&mut self) -> Result<(), EngineError> {
        match &mut self.commitlog {
            Some(cl) => cl.tick(),
            None => Ok(()),
        }
    }

    /// The commitlog, once started.
    pub fn commitlog(&self) -> Option<&CommitLog> {
        self.commitlog.as_ref()
    }

    /// The commitlog, once started (e.g. for fault injection in tests).
    pub fn commitlog_mut(&mut self) -> Option<&mut CommitLog> {
        self.commitlog.as_mut()
    }

    /// Syncs the commitlog and waits for it: ordered shutdown.
    pub fn shutdown(&mut self) -> Result<(), EngineError> {
        match &mut self.commitlog {
            Some(cl) => cl.shutdown(),
            None => Ok(()),
        }
    }

    /// Reads one partition: live data only (see [`ReadCommand`]). `None`
    /// when the partition has no live row and no live static row.
    pub fn read_partition(
        &self,
        table: &TableId,
        key: &PartitionKey,
        cmd: &ReadCommand,
    ) -> Result<Option<PartitionUpdate>, EngineError> {
        let cf = self.cf(table)?;
        self.block_cache.bind_to_current_thread();
        self.reads.fetch_add(1, AtomicOrdering::Relaxed);
        let started = Instant::now();
        let r = read_merged(&cf.schema, &cf.sources(), key, cmd);
        record(&cf.metrics.reads, &cf.metrics.read_micros, started);
        r
    }

    /// Scans partitions of `range` in (token, key) order, live data only,
    /// at most `partition_limit` partitions (each holding something live).
    pub fn scan(
        &self,
        table: &TableId,
        range: TokenRange,
        cmd: &ReadCommand,
        partition_limit: usize,
    ) -> Result<Vec<PartitionUpdate>, EngineError> {
        let cf = self.cf(table)?;
        self.block_cache.bind_to_current_thread();
        self.scans.fetch_add(1, AtomicOrdering::Relaxed);
        let started = Instant::now();
        let r = scan_merged(&cf.schema, &cf.sources(), &range, cmd, partition_limit);
        record(&cf.metrics.scans, &cf.metrics.scan_micros, started);
        r
    }

    /// Approximate bytes held by all memtables of the shard.
    pub fn memtable_bytes(&self) -> usize {
        self.tables
            .values()
            .map(|cf| cf.memtable.memory_usage())
            .sum()
    }

    /// The shard's counters.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            writes: self.writes.load(AtomicOrdering::Relaxed),
            reads: self.reads.load(AtomicOrdering::Relaxed),
            scans: self.scans.load(AtomicOrdering::Relaxed),
            flushes: self.flushes,
            compactions: self.compaction.stats().completed,
        }
    }

    /// Flushes the largest flushable memtable while the shard's memtables
    /// exceed [`EngineConfig::memtable_budget_bytes`]. Runs on the caller's
    /// thread, so a writer that fills memtables faster than they flush
    /// waits here (back-pressure).
    fn maybe_flush(&mut self) -> Result<(), EngineError> {
        let mut budget = self.config.memtable_budget_bytes;
        if budget == 0 {
            return Ok(());
        }
        if self.config.background_flush {
            // Background flushes keep up normally; at twice the budget the
            // writer itself flushes (back-pressure).
            budget = budget.saturating_mul(2);
            if self.memtable_bytes() + self.flushing_bytes() <= budget {
                return Ok(());
            }
        }
        while self.memtable_bytes() > budget {
            let largest = self
                .tables
                .values()
                .filter(|cf| cf.dir.is_some() && !cf.memtable.is_empty())
                .max_by_key(|cf| cf.memtable.memory_usage())
                .map(|cf| cf.schema.id);
            let Some(id) = largest else {
                return Ok(());
            };
            self.flush(&id)?;
        }
        Ok(())
    }

    /// Writes the table's memtable to a new SSTable and starts a new
    /// memtable; then tells the commitlog that the table's data up to the
    /// memtable's last position is flushed, so fully flushed segments are
    /// recycled. Returns whether anything was flushed (an empty memtable is
    /// not). Fails with [`EngineError::NoDataDirectory`] for in-memory
    /// tables. On failure the memtable is kept and nothing changes.
    pub fn flush(&mut self, table: &TableId) -> Result<bool, EngineError> {
        // Every mutation in the memtable was logged before this position
        // (writes log first, then apply, on this same thread).
        let position = self.commitlog.as_ref().map(|cl| cl.current_position());
        let cf = self
            .tables
            .get_mut(table)
            .ok_or(EngineError::NoSuchTable(*table))?;
        let dir = cf.dir.clone().ok_or(EngineError::NoDataDirectory(*table))?;
        if cf.memtable.is_empty() {
            return Ok(false);
        }
        let generation = cf.allocate_generation();
        let mut w = SSTableWriter::new(&dir, generation, &cf.schema)?;
        w.set_metadata(position, 0);
        let range = TokenRange::full();
        let ranges = [crate::mutation::ClusteringRange::full()];
        let written = (|| {
            for p in cf.memtable.scan_raw(&range, &ranges) {
                w.append(&p?)?;
            }
            Ok::<_, EngineError>(())
        })();
        if let Err(e) = written {
            w.abandon();
            return Err(e);
        }
        let sstable = w.finish()?.commit(cf.schema.clone())?;
        sstable.attach_cache(&self.block_cache);
        info!(
            "flushed table {}: {} partitions, {} bytes to {}",
            format_table_id(table),
            sstable.stats().partition_count,
            sstable.size(),
            sstable.path().display()
        );
        cf.sstables.push(Arc::new(sstable));
        cf.memtable = Memtable::new(cf.schema.clone());
        cf.metrics.flushes += 1;
        self.flushes += 1;
        // Older data of a background flush still in progress (or failed)
        // lives only in the commitlog: keep it.
        let safe = cf.flushing.is_empty() && !cf.flush_failed;
        if let (Some(cl), Some(pos), true) = (self.commitlog.as_mut(), position, safe) {
            cl.discard_completed_segments(table, pos);
        }
        Ok(true)
    }

    /// Bytes held by memtables being flushed in the background.
    pub fn flushing_bytes(&self) -> usize {
        self.tables
            .values()
            .flat_map(|cf| cf.flushing.iter())
            .map(|m| m.memory_usage())
            .sum()
    }

    /// Tables a background flusher should start on now: when the
    /// memtables exceed the budget, the largest one not already flushing.
    pub fn flush_candidates(&self) -> Vec<TableId> {
        let budget = self.config.memtable_budget_bytes;
        if budget == 0 || self.memtable_bytes() <= budget {
            return Vec::new();
        }
        self.tables
            .values()
            .filter(|cf| {
                cf.dir.is_some()
                    && !cf.memtable.is_empty()
                    && cf.flushing.is_empty()
                    && !cf.flush_failed
            })
            .max_by_key(|cf| cf.memtable.memory_usage())
            .map(|cf| vec![cf.schema.id])
            .unwrap_or_default()
    }

    /// Starts a background flush of `table`: its memtable is frozen (still
    /// read) and a fresh one takes the writes. Run the job on any thread,
    /// then hand its result to [`Database::complete_flush`]. At most one
    /// background flush per table is in flight (`None` otherwise, or when
    /// there is nothing to flush).
    pub fn begin_flush(&mut self, table: &TableId) -> Result<Option<FlushJob>, EngineError> {
        let position = self.commitlog.as_ref().map(|cl| cl.current_position());
        let cf = self
            .tables
            .get_mut(table)
            .ok_or(EngineError::NoSuchTable(*table))?;
        let dir = cf.dir.clone().ok_or(EngineError::NoDataDirectory(*table))?;
        if cf.memtable.is_empty() || !cf.flushing.is_empty() || cf.flush_failed {
            return Ok(None);
        }
        let generation = cf.allocate_generation();
        let frozen = Arc::new(std::mem::replace(
            &mut cf.memtable,
            Memtable::new(cf.schema.clone()),
        ));
        cf.flushing.push(frozen.clone());
        Ok(Some(FlushJob {
            table: *table,
            dir,
            generation,
            schema: cf.schema.clone(),
            memtable: frozen,
            position,
        }))
    }

    /// Installs the SSTable of a finished background flush (or records its
    /// failure) and lets the commitlog recycle what it covered.
    pub fn complete_flush(&mut self, job: FlushJob, result: Result<SSTable, EngineError>) {
        let Some(cf) = self.tables.get_mut(&job.table) else {
            if let Ok(sstable) = &result {
                let _ = fs::remove_file(sstable.path());
            }
            return; // dropped meanwhile
        };
        if !cf.flushing.iter().any(|m| Arc::ptr_eq(m, &job.memtable)) {
            // Truncated meanwhile: the data is gone, so is its SSTable.
            if let Ok(sstable) = &result {
                let _ = fs::remove_file(sstable.path());
            }
            return;
        }
        match result {
            Ok(sstable) => {
                info!(
                    "flushed table {} in the background: {} partitions, {} bytes to {}",
                    format_table_id(&job.table),
                    sstable.stats().partition_count,
                    sstable.size(),
                    sstable.path().display()
                );
                sstable.attach_cache(&self.block_cache);
                cf.sstables.push(Arc::new(sstable));
                cf.flushing.retain(|m| !Arc::ptr_eq(m, &job.memtable));
                cf.metrics.flushes += 1;
                self.flushes += 1;
                if cf.flushing.is_empty() && !cf.flush_failed {
                    if let (Some(cl), Some(pos)) = (self.commitlog.as_mut(), job.position) {
                        cl.discard_completed_segments(&job.table, pos);
                    }
                }
            }
            Err(e) => {
                warn!(
                    "background flush of table {} failed (its data stays in the commitlog): {e}",
                    format_table_id(&job.table)
                );
                cf.flush_failed = true;
            }
        }
    }

    /// Flushes every table that has a data directory (`nodetool flush`).
    pub fn flush_all(&mut self) -> Result<(), EngineError> {
        let ids: Vec<TableId> = self
            .tables
            .iter()
            .filter(|(_, cf)| cf.dir.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.flush(&id)?;
        }
        Ok(())
    }

    /// Major compaction (`nodetool compact`): merges all of the table's
    /// SSTables into one (leveled tables: into non-overlapping SSTables of
    /// the target size), at the current time, on the caller's thread. The
    /// node runs the same job on a compaction thread instead
    /// ([`Database::begin_major_compaction`]).
    pub fn compact(&mut self, table: &TableId) -> Result<(), EngineError> {
        self.compact_at(table, now_seconds())
    }

    /// [`Database::compact`] with an explicit "now" (seconds since the
    /// epoch) for gc grace and TTL expiry.
    pub fn compact_at(&mut self, table: &TableId, now: i32) -> Result<(), EngineError> {
        match self.begin_major_compaction(table, now)? {
            Some(job) => {
                let result = job.run();
                self.complete_compaction(job, result)
            }
            None => Ok(()),
        }
    }

    fn make_job(
        &mut self,
        table: &TableId,
        kind: CompactionKind,
        task: CompactionTask,
        now: i32,
    ) -> Result<CompactionJob, EngineError> {
        let id = self.next_compaction_id;
        let cf = self
            .tables
            .get_mut(table)
            .ok_or(EngineError::NoSuchTable(*table))?;
        let dir = cf.dir.clone().ok_or(EngineError::NoDataDirectory(*table))?;
        let others: Vec<Arc<SSTable>> = cf
            .sstables
            .iter()
            .filter(|s| !task.inputs.iter().any(|i| Arc::ptr_eq(i, s)))
            .cloned()
            .collect();
        let inputs = task.inputs.len();
        let mut job = CompactionJob::new(
            id,
            *table,
            kind,
            dir,
            cf.schema.clone(),
            task,
            now,
            cf.next_generation.clone(),
        );
        job.others = others;
        job.frozen = cf.flushing.clone();
        job.memtable_min_timestamp = cf.memtable.timestamp_range().map(|(lo, _)| lo);
        cf.compacting = Some(id);
        self.next_compaction_id += 1;
        self.running.push(RunningCompaction {
            id,
            table: *table,
            kind,
            inputs,
            progress: job.progress().clone(),
        });
        Ok(job)
    }

    /// Starts a major compaction of `table`: every SSTable, at `now`. Run
    /// the job anywhere, then hand it to [`Database::complete_compaction`].
    /// `None` when the table has no SSTable. Fails (`WouldBlock`) while
    /// another compaction of the table runs: wait for it (see
    /// [`Database::request_major_compaction`]).
    pub fn begin_major_compaction(
        &mut self,
        table: &TableId,
        now: i32,
    ) -> Result<Option<CompactionJob>, EngineError> {
        let cf = self.cf(table)?;
        if cf.dir.is_none() {
            return Err(EngineError::NoDataDirectory(*table));
        }
        if cf.compacting.is_some() {
            return Err(EngineError::Io(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!(
                    "a compaction of table {} is running",
                    format_table_id(table)
                ),
            )));
        }
        if cf.sstables.is_empty() {
            if let Some(cf) = self.tables.get_mut(table) {
                cf.major_requested = false;
            }
            return Ok(None);
        }
        let (level, max_output_bytes) = match &cf.schema.compaction {
            crate::compaction::CompactionStrategy::Leveled {
                sstable_size_bytes, ..
            } => (
                cf.sstables
                    .iter()
                    .map(|s| s.level())
                    .max()
                    .unwrap_or(0)
                    .max(1),
                Some(*sstable_size_bytes),
            ),
            _ => (0, None),
        };
        let task = CompactionTask {
            inputs: cf.sstables.clone(),
            output_level: level,
            max_output_bytes,
        };
        let job = self.make_job(table, CompactionKind::Major, task, now)?;
        if let Some(cf) = self.tables.get_mut(table) {
            cf.major_requested = false;
        }
        Ok(Some(job))
    }

    /// Keeps background compactions from starting on `table` until the
    /// next [`Database::begin_major_compaction`] of it, so a major
    /// compaction waiting for a running one is not starved.
    pub fn request_major_compaction(&mut self, table: &TableId) -> Result<(), EngineError> {
        let cf = self
            .tables
            .get_mut(table)
            .ok_or(EngineError::NoSuchTable(*table))?;
        cf.major_requested = true;
        Ok(())
    }

    /// Whether a compaction of `table` is running.
    pub fn compaction_running(&self, table: &TableId) -> bool {
        self.tables
            .get(table)
            .is_some_and(|cf| cf.compacting.is_some())
    }

    /// Starts the next background compaction the tables' strategies ask
    /// for (tables visited round-robin, each with at most one compaction
    /// running), at the current time. `None` when nothing is due, when
    /// [`CompactionManager::max_concurrent`] compactions already run or
    /// when automatic compaction is disabled.
    pub fn begin_compaction(&mut self) -> Result<Option<CompactionJob>, EngineError> {
        self.begin_compaction_at(now_seconds())
    }

    /// [`Database::begin_compaction`] with an explicit "now".
    pub fn begin_compaction_at(&mut self, now: i32) -> Result<Option<CompactionJob>, EngineError> {
        if !self.compaction.enabled || self.running.len() >= self.compaction.max_concurrent.max(1) {
            return Ok(None);
        }
        let mut ids: Vec<TableId> = self
            .tables
            .iter()
            .filter(|(_, cf)| cf.dir.is_some() && cf.compacting.is_none() && !cf.major_requested)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        if ids.is_empty() {
            return Ok(None);
        }
        let start = self.compaction.cursor;
        for i in 0..ids.len() {
            let id = ids[(start + i) % ids.len()];
            let cf = &self.tables[&id];
            if let Some(task) = pick_task(&cf.schema.compaction, &cf.sstables) {
                self.compaction.cursor = (start + i + 1) % ids.len();
                return self
                    .make_job(&id, CompactionKind::Minor, task, now)
                    .map(Some);
            }
        }
        Ok(None)
    }

    /// Finishes a job on the shard: installs its outputs in place of its
    /// inputs (readers switch here), deletes the inputs, then the
    /// compaction log. If the table was dropped or truncated meanwhile,
    /// the outputs are deleted instead. A failed or cancelled job changes
    /// nothing (the inputs stay).
    pub fn complete_compaction(
        &mut self,
        job: CompactionJob,
        result: Result<CompactionOutput, EngineError>,
    ) -> Result<(), EngineError> {
        self.running.retain(|r| r.id != job.id);
        let cf = self
            .tables
            .get_mut(&job.table)
            .filter(|cf| cf.compacting == Some(job.id));
        let Some(cf) = cf else {
            // Dropped, or truncated and (re)started meanwhile.
            self.compaction.stats.cancelled += 1;
            if let Ok(out) = result {
                discard_outputs(&job, out)?;
                let _ = fs::remove_dir(&job.dir); // a dropped table's directory
            }
            return Ok(());
        };
        cf.compacting = None;
        let out = match result {
            Ok(out) => out,
            Err(e) if is_cancelled(&e) => {
                self.compaction.stats.cancelled += 1;
                return Ok(());
            }
            Err(e) => {
                self.compaction.stats.failed += 1;
                warn!(
                    "compaction of table {} failed (its SSTables stay): {e}",
                    format_table_id(&job.table)
                );
                return Err(e);
            }
        };
        let live = |s: &Arc<SSTable>| cf.sstables.iter().any(|l| Arc::ptr_eq(l, s));
        if !job.inputs().iter().all(live) {
            // Truncated meanwhile: the inputs are gone, so must the outputs.
            self.compaction.stats.cancelled += 1;
            return discard_outputs(&job, out);
        }
        cf.sstables
            .retain(|s| !job.inputs().iter().any(|i| Arc::ptr_eq(i, s)));
        out.outputs
            .iter()
            .for_each(|s| s.attach_cache(&self.block_cache));
        cf.sstables.extend(out.outputs.iter().cloned());
        cf.sstables.sort_by_key(|s| s.generation());
        cf.metrics.compactions += 1;
        let mut bytes_read = 0;
        let mut deleted = Ok(());
        for s in job.inputs() {
            bytes_read += s.size();
            match fs::remove_file(s.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => deleted = Err(e),
            }
        }
        // The log goes only once the inputs' deletion is durable: until
        // then a restart finishes the compaction from the log.
        let finished = deleted
            .map_err(EngineError::from)
            .and_then(|()| sync_dir(&job.dir).map_err(EngineError::from))
            .and_then(|()| remove_log(&job.dir, &out.log_path));
        let stats = &mut self.compaction.stats;
        stats.completed += 1;
        stats.bytes_read += bytes_read;
        stats.bytes_written += out.bytes_written;
        info!(
            "compacted {} SSTables of {} ({} bytes) into {} ({} bytes) in {:.1?}",
            job.inputs().len(),
            format_table_id(&job.table),
            bytes_read,
            out.outputs.len(),
            out.bytes_written,
            job.progress().started.elapsed()
        );
        if let Err(e) = &finished {
            warn!(
                "compaction of table {}: cleanup of inputs failed (finished at next start): {e}",
                format_table_id(&job.table)
            );
        }
        finished
    }

    /// Gives back a job that never ran (e.g. the executor's queue was
    /// full): its inputs can be picked again.
    pub fn abort_compaction(&mut self, job: CompactionJob) {
        let _ = self.complete_compaction(job, Err(cancelled_error()));
    }

    /// Asks running compactions to stop: of `table`, or all of them.
    pub fn cancel_compactions(&mut self, table: Option<&TableId>) {
        for r in &self.running {
            if table.is_none_or(|t| *t == r.table) {
                r.progress.cancel();
            }
        }
    }

    /// Compactions handed out and not completed yet.
    pub fn running_compactions(&self) -> Vec<CompactionInfo> {
        self.running
            .iter()
            .map(|r| CompactionInfo {
                id: r.id,
                table: r.table,
                kind: r.kind,
                completed_bytes: r.progress.completed_bytes(),
                total_bytes: r.progress.total_bytes,
                inputs: r.inputs,
                elapsed: r.progress.started.elapsed(),
            })
            .collect()
    }

    /// Background compaction step on the caller's thread (tools, tests,
    /// benchmarks; the node runs jobs on compaction threads): runs up to
    /// `CompactionManager::max_concurrent` jobs that the tables'
    /// strategies ask for, one after another. Returns how many ran.
    pub fn maybe_compact(&mut self) -> Result<usize, EngineError> {
        self.maybe_compact_at(now_seconds())
    }

    /// [`Database::maybe_compact`] with an explicit "now".
    pub fn maybe_compact_at(&mut self, now: i32) -> Result<usize, EngineError> {
        let mut ran = 0;
        while ran < self.compaction.max_concurrent.max(1) {
            let Some(job) = self.begin_compaction_at(now)? else {
                break;
            };
            let result = job.run();
            self.complete_compaction(job, result)?;
            ran += 1;
        }
        Ok(ran)
    }

    /// Number of tables with compaction work due and not running
    /// (`pending tasks`).
    pub fn pending_compactions(&self) -> usize {
        self.tables
            .values()
            .filter(|cf| {
                cf.dir.is_some()
                    && cf.compacting.is_none()
                    && pick_task(&cf.schema.compaction, &cf.sstables).is_some()
            })
            .count()
    }

    /// The compaction manager (bounds and counters).
    pub fn compaction_manager(&mut self) -> &mut CompactionManager {
        &mut self.compaction
    }

    /// Compaction counters.
    pub fn compaction_stats(&self) -> CompactionStats {
        self.compaction.stats()
    }
}

/// Deletes the outputs of a compaction whose inputs went away meanwhile
/// (truncate, drop), then its log.
fn discard_outputs(job: &CompactionJob, out: CompactionOutput) -> Result<(), EngineError> {
    info!(
        "compaction of table {} finished after its table was truncated or dropped: discarding {} outputs",
        format_table_id(&job.table),
        out.outputs.len()
    );
    for s in &out.outputs {
        match fs::remove_file(s.path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    if job.dir.exists() {
        sync_dir(&job.dir)?;
        remove_log(&job.dir, &out.log_path)?;
    }
    Ok(())
}
