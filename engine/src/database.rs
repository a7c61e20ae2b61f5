//! [`Database`]: one shard's storage — its tables ([`ColumnFamily`]), their
//! memtables, and the read and write paths over them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{info, warn};

use crate::commitlog::format::{ENTRY_MUTATION, ENTRY_TRUNCATE};
use crate::commitlog::{
    CommitLog, CommitLogConfig, CommitLogReplayer, ReplayPosition, ReplayReport, SyncMode,
};
use crate::compaction::{
    pick_task, run_compaction, CompactionContext, CompactionManager, CompactionStats,
    CompactionTask,
};
use crate::error::{format_table_id, EngineError};
use crate::memtable::Memtable;
use crate::mutation::{Bound, Mutation, PartitionKey, PartitionUpdate, TableId};
use crate::read::{ReadCommand, TokenRange};
use crate::reader::{read_merged, scan_merged, MutationSource};
use crate::schema::TableSchema;
use crate::serialize::encode_mutation;
use crate::sstable::{load_directory, sync_dir, SSTable, SSTableWriter};

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

/// One table on one shard (Cassandra's `ColumnFamilyStore`).
#[derive(Debug)]
pub struct ColumnFamily {
    schema: Arc<TableSchema>,
    memtable: Memtable,
    /// Where the table's SSTables live (`None`: memory only).
    dir: Option<PathBuf>,
    /// Live SSTables, oldest generation first.
    sstables: Vec<Arc<SSTable>>,
    next_generation: u64,
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
            next_generation: 1,
            flushing: Vec::new(),
            flush_failed: false,
        }
    }

    /// A table whose SSTables live in `dir`: loads the ones there.
    fn open(schema: Arc<TableSchema>, dir: PathBuf) -> Result<Self, EngineError> {
        let loaded = load_directory(&dir, &schema)?;
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
            next_generation: loaded.next_generation,
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

    /// Everything at or before this commitlog position is in SSTables.
    fn flushed_position(&self) -> Option<ReplayPosition> {
        self.sstables
            .iter()
            .filter_map(|s| s.stats().commitlog_position)
            .max()
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
    writes: AtomicU64,
    reads: AtomicU64,
    scans: AtomicU64,
    flushes: u64,
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
        Database {
            config,
            tables: HashMap::new(),
            commitlog: None,
            compaction: CompactionManager::default(),
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

    /// Removes all data of a table, keeping the table. With a commitlog, a
    /// durable truncation record makes replay drop the older data; if that
    /// record cannot be written the error is logged (the commitlog is then
    /// poisoned) — use [`Database::truncate_checked`] to see it.
    pub fn truncate(&mut self, id: &TableId) {
        if let Err(e) = self.truncate_checked(id) {
            warn!("truncate of {} failed: {e}", format_table_id(id));
        }
    }

    /// [`Database::truncate`], reporting failure.
    pub fn truncate_checked(&mut self, id: &TableId) -> Result<(), EngineError> {
        if !self.tables.contains_key(id) {
            return Err(EngineError::NoSuchTable(*id));
        }
        if self.config.commitlog.is_some() {
            let cl = self
                .commitlog
                .as_mut()
                .ok_or(EngineError::CommitLogNotStarted)?;
            let mut payload = Vec::with_capacity(17);
            payload.push(ENTRY_TRUNCATE);
            payload.extend_from_slice(id);
            let pos = cl.add(None, &payload)?;
            cl.sync()?;
            cl.wait_durable(pos)?;
            cl.discard_completed_segments(id, pos);
        }
        if let Some(cf) = self.tables.get_mut(id) {
            let schema = cf.schema.clone();
            cf.memtable = Memtable::new(schema);
            // A background flush in flight finds its memtable gone and
            // throws its SSTable away (see complete_flush).
            cf.flushing.clear();
            cf.flush_failed = false;
            cf.delete_sstables()?;
            info!("truncated table {}", format_table_id(id));
        }
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
            cf.memtable.apply(&m.update);
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
        self.reads.fetch_add(1, AtomicOrdering::Relaxed);
        read_merged(&cf.schema, &cf.sources(), key, cmd)
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
        self.scans.fetch_add(1, AtomicOrdering::Relaxed);
        scan_merged(&cf.schema, &cf.sources(), &range, cmd, partition_limit)
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
        let generation = cf.next_generation;
        cf.next_generation += 1;
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
        info!(
            "flushed table {}: {} partitions, {} bytes to {}",
            format_table_id(table),
            sstable.stats().partition_count,
            sstable.size(),
            sstable.path().display()
        );
        cf.sstables.push(Arc::new(sstable));
        cf.memtable = Memtable::new(cf.schema.clone());
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
        let generation = cf.next_generation;
        cf.next_generation += 1;
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
                cf.sstables.push(Arc::new(sstable));
                cf.flushing.retain(|m| !Arc::ptr_eq(m, &job.memtable));
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
    /// the target size), at the current time.
    pub fn compact(&mut self, table: &TableId) -> Result<(), EngineError> {
        self.compact_at(table, now_seconds())
    }

    /// [`Database::compact`] with an explicit "now" (seconds since the
    /// epoch) for gc grace and TTL expiry.
    pub fn compact_at(&mut self, table: &TableId, now: i32) -> Result<(), EngineError> {
        let cf = self.cf(table)?;
        if cf.dir.is_none() {
            return Err(EngineError::NoDataDirectory(*table));
        }
        if cf.sstables.is_empty() {
            return Ok(());
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
        self.run_task(table, &task, now)
    }

    fn run_task(
        &mut self,
        table: &TableId,
        task: &CompactionTask,
        now: i32,
    ) -> Result<(), EngineError> {
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
        let ctx = CompactionContext {
            dir: &dir,
            schema: &cf.schema,
            others: &others,
            memtable: Some(&cf.memtable),
            now,
        };
        let mut next = cf.next_generation;
        let result = run_compaction(&ctx, task, &mut next);
        cf.next_generation = next;
        let stats = &mut self.compaction.stats;
        match result {
            Ok(r) => {
                info!(
                    "compacted {} SSTables of {} ({} bytes) into {} ({} bytes)",
                    task.inputs.len(),
                    format_table_id(table),
                    r.bytes_read,
                    r.outputs.len(),
                    r.bytes_written
                );
                cf.sstables
                    .retain(|s| !task.inputs.iter().any(|i| Arc::ptr_eq(i, s)));
                cf.sstables.extend(r.outputs);
                cf.sstables.sort_by_key(|s| s.generation());
                stats.completed += 1;
                stats.bytes_read += r.bytes_read;
                stats.bytes_written += r.bytes_written;
                Ok(())
            }
            Err(e) => {
                stats.failed += 1;
                Err(e)
            }
        }
    }

    /// Background compaction step, for a timer: runs at most
    /// `CompactionManager::max_concurrent` tasks that the tables'
    /// strategies ask for, visiting tables round-robin. Returns how many
    /// ran. Synchronous: the caller's thread does the work.
    pub fn maybe_compact(&mut self) -> Result<usize, EngineError> {
        self.maybe_compact_at(now_seconds())
    }

    /// [`Database::maybe_compact`] with an explicit "now".
    pub fn maybe_compact_at(&mut self, now: i32) -> Result<usize, EngineError> {
        if !self.compaction.enabled {
            return Ok(0);
        }
        let mut ids: Vec<TableId> = self
            .tables
            .iter()
            .filter(|(_, cf)| cf.dir.is_some())
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        if ids.is_empty() {
            return Ok(0);
        }
        let mut ran = 0;
        let start = self.compaction.cursor;
        for i in 0..ids.len() {
            if ran >= self.compaction.max_concurrent.max(1) {
                break;
            }
            let id = ids[(start + i) % ids.len()];
            let cf = &self.tables[&id];
            if let Some(task) = pick_task(&cf.schema.compaction, &cf.sstables) {
                self.run_task(&id, &task, now)?;
                ran += 1;
                self.compaction.cursor = (start + i + 1) % ids.len();
            }
        }
        Ok(ran)
    }

    /// Number of tables with compaction work due (`pending tasks`).
    pub fn pending_compactions(&self) -> usize {
        self.tables
            .values()
            .filter(|cf| {
                cf.dir.is_some() && pick_task(&cf.schema.compaction, &cf.sstables).is_some()
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
