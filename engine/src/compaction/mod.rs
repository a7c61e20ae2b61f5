//! Compaction: merging SSTables of one table into fewer, purging what is
//! no longer needed (`docs/compaction.md`).
//!
//! * Strategies: size-tiered (default; merges `min_threshold` SSTables of
//!   similar size) and leveled (L0 from flushes, then levels of
//!   non-overlapping SSTables of `sstable_size_bytes`, each level `fanout`
//!   times larger than the one above).
//! * Merging reconciles with last-write-wins, drops shadowed data, turns
//!   expired TTL cells into tombstones and purges tombstones older than
//!   `gc_grace_seconds` only when no data they may shadow can exist outside
//!   the compaction (memtable or SSTables not compacted, by min timestamp).
//! * Background execution: the shard picks the inputs and gets a `Send`
//!   [`CompactionJob`]; a [`CompactionExecutor`] thread merges and writes
//!   the outputs; the shard installs them and deletes the inputs
//!   (`Database::begin_compaction` / `complete_compaction`).
//! * Crash safety: outputs are written completely under temporary names,
//!   then a compaction log naming inputs and outputs is made durable, then
//!   outputs are renamed (compaction thread); the shard deletes the inputs,
//!   then the log. At load, [`recover_directory`] finishes (all outputs
//!   present: delete the inputs) or rolls back (delete the outputs) any
//!   logged compaction.

pub mod executor;
pub mod job;

pub use executor::{CompactionDone, CompactionExecutor};
pub use job::{CompactionJob, CompactionKind, CompactionOutput, CompactionProgress};

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::EngineError;
use crate::mutation::{ColumnData, DeletionTime, PartitionUpdate, Row};
use crate::reconcile::{deletion_supersedes, max_deletion, purge_shadowed, row_is_empty};
use crate::schema::TableSchema;
use crate::sstable::format::Cursor;
use crate::sstable::{file_name, parse_file_name, sync_dir, SSTable};

/// How a table compacts (CQL `compaction = {'class': ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CompactionStrategy {
    /// `SizeTieredCompactionStrategy`.
    SizeTiered {
        /// Fewest similar-size SSTables merged at once (default 4).
        min_threshold: usize,
        /// Most SSTables merged at once (default 32).
        max_threshold: usize,
    },
    /// `LeveledCompactionStrategy`.
    Leveled {
        /// Target size of each SSTable (default 160 MiB).
        sstable_size_bytes: u64,
        /// Size ratio between levels (default 10).
        fanout: u32,
    },
}

impl Default for CompactionStrategy {
    fn default() -> Self {
        CompactionStrategy::SizeTiered {
            min_threshold: 4,
            max_threshold: 32,
        }
    }
}

/// L0 SSTables that trigger an L0 → L1 compaction.
const L0_THRESHOLD: usize = 4;
/// Size-tiered: SSTables below this size all share one bucket.
const STCS_MIN_SSTABLE_SIZE: u64 = 50 << 20;

impl CompactionStrategy {
    /// Leveled compaction with Cassandra's defaults.
    pub fn leveled() -> Self {
        CompactionStrategy::Leveled {
            sstable_size_bytes: 160 << 20,
            fanout: 10,
        }
    }

    /// Parses CQL compaction options (`class` plus the strategy's
    /// sub-options, values as strings).
    pub fn from_options<'a>(
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, EngineError> {
        let options: Vec<(&str, &str)> = options.into_iter().collect();
        let get = |k: &str| options.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let num = |k: &str, default: u64| -> Result<u64, EngineError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| {
                    EngineError::InvalidConfig(format!("compaction option {k}: bad number {v:?}"))
                }),
            }
        };
        let class = get("class").unwrap_or("SizeTieredCompactionStrategy");
        let class = class.rsplit('.').next().unwrap_or(class);
        match class {
            "SizeTieredCompactionStrategy" => {
                let min = num("min_threshold", 4)?.max(2) as usize;
                let max = num("max_threshold", 32)? as usize;
                Ok(CompactionStrategy::SizeTiered {
                    min_threshold: min,
                    max_threshold: max.max(min),
                })
            }
            "LeveledCompactionStrategy" => Ok(CompactionStrategy::Leveled {
                sstable_size_bytes: num("sstable_size_in_mb", 160)?.max(1) << 20,
                fanout: num("fanout_size", 10)?.max(2) as u32,
            }),
            other => Err(EngineError::InvalidConfig(format!(
                "unknown compaction class {other}"
            ))),
        }
    }
}

/// One unit of compaction work chosen by a strategy.
#[derive(Debug, Clone)]
pub struct CompactionTask {
    /// The SSTables to merge.
    pub inputs: Vec<Arc<SSTable>>,
    /// Level of the outputs.
    pub output_level: u32,
    /// Start a new output once one holds this many (uncompressed) bytes.
    pub max_output_bytes: Option<u64>,
}

/// Chooses the next compaction for a table's SSTables, if one is due.
pub fn pick_task(
    strategy: &CompactionStrategy,
    sstables: &[Arc<SSTable>],
) -> Option<CompactionTask> {
    match strategy {
        CompactionStrategy::SizeTiered {
            min_threshold,
            max_threshold,
        } => pick_size_tiered(sstables, *min_threshold, *max_threshold),
        CompactionStrategy::Leveled {
            sstable_size_bytes,
            fanout,
        } => pick_leveled(sstables, *sstable_size_bytes, *fanout),
    }
}

fn pick_size_tiered(sstables: &[Arc<SSTable>], min: usize, max: usize) -> Option<CompactionTask> {
    let mut sorted: Vec<Arc<SSTable>> = sstables.to_vec();
    sorted.sort_by_key(|s| s.size());
    // Buckets of similar size (within 0.5x..1.5x of the bucket average), as
    // Cassandra's SizeTieredCompactionStrategy.
    let mut buckets: Vec<Vec<Arc<SSTable>>> = Vec::new();
    for s in sorted {
        let fits = buckets.last().is_some_and(|b| {
            let avg = b.iter().map(|x| x.size()).sum::<u64>() / b.len() as u64;
            (s.size() < STCS_MIN_SSTABLE_SIZE && avg < STCS_MIN_SSTABLE_SIZE)
                || (s.size() as f64 >= avg as f64 * 0.5 && s.size() as f64 <= avg as f64 * 1.5)
        });
        if fits {
            buckets.last_mut().expect("checked").push(s);
        } else {
            buckets.push(vec![s]);
        }
    }
    // The bucket of smallest files that is big enough: cheapest work that
    // reduces the SSTable count the most per byte.
    let bucket = buckets.into_iter().find(|b| b.len() >= min)?;
    Some(CompactionTask {
        inputs: bucket.into_iter().take(max.max(min)).collect(),
        output_level: 0,
        max_output_bytes: None,
    })
}

fn pick_leveled(sstables: &[Arc<SSTable>], size: u64, fanout: u32) -> Option<CompactionTask> {
    let level = |l: u32| -> Vec<Arc<SSTable>> {
        sstables
            .iter()
            .filter(|s| s.level() == l)
            .cloned()
            .collect()
    };
    let overlapping = |inputs: &[Arc<SSTable>], l: u32| -> Vec<Arc<SSTable>> {
        level(l)
            .into_iter()
            .filter(|s| inputs.iter().any(|i| i.overlaps(s)))
            .collect()
    };
    let l0 = level(0);
    if l0.len() >= L0_THRESHOLD {
        let mut inputs: Vec<Arc<SSTable>> = l0.into_iter().take(32).collect();
        inputs.extend(overlapping(&inputs, 1));
        return Some(CompactionTask {
            inputs,
            output_level: 1,
            max_output_bytes: Some(size),
        });
    }
    let max_level = sstables.iter().map(|s| s.level()).max().unwrap_or(0);
    for l in 1..=max_level {
        let files = level(l);
        let total: u64 = files.iter().map(|s| s.size()).sum();
        let limit = size.saturating_mul((fanout as u64).saturating_pow(l));
        if total > limit {
            // The oldest file of the level moves down.
            let first = files.into_iter().min_by_key(|s| s.generation())?;
            let mut inputs = vec![first];
            inputs.extend(overlapping(&inputs, l + 1));
            return Some(CompactionTask {
                inputs,
                output_level: l + 1,
                max_output_bytes: Some(size),
            });
        }
    }
    None
}

/// Whether a tombstone of `d` may be dropped: older than gc grace and
/// older than anything it could shadow outside the compaction.
fn purgeable(d_ts: i64, ldt: i32, gc_before: i64, max_purgeable: i64) -> bool {
    (ldt as i64) < gc_before && d_ts < max_purgeable
}

/// Compaction-time garbage collection of one merged partition: drops data
/// shadowed by partition/range/row/collection tombstones, turns expired TTL
/// cells into tombstones (local deletion time = expiry − ttl, as
/// Cassandra), and drops tombstones that are purgeable (`local deletion
/// time < now − gc_grace_seconds` and timestamp below `max_purgeable`,
/// the smallest timestamp of data outside the compaction that may hold
/// this partition). Returns `None` when nothing remains.
pub fn garbage_collect(
    schema: &TableSchema,
    mut p: PartitionUpdate,
    now: i32,
    max_purgeable: i64,
) -> Option<PartitionUpdate> {
    let gc_before = now as i64 - schema.gc_grace_seconds.max(0) as i64;
    let pt = p.tombstone;
    // 1. Shadowed data goes first (so purging a tombstone never uncovers
    //    anything of this partition).
    p.range_tombstones
        .retain(|rt| pt.is_none_or(|t| deletion_supersedes(&rt.deletion, &t)));
    if let Some(s) = &mut p.static_row {
        purge_shadowed(s, pt);
    }
    let rts = p.range_tombstones.clone();
    for (c, row) in &mut p.rows {
        let covering = rts
            .iter()
            .filter(|rt| schema.range_contains(&rt.range, c))
            .fold(pt, |acc, rt| max_deletion(acc, Some(rt.deletion)));
        purge_shadowed(row, covering);
        // A row deletion no stronger than a covering one is redundant.
        if let (Some(rd), Some(cov)) = (row.deletion, covering) {
            if !deletion_supersedes(&rd, &cov) {
                row.deletion = None;
            }
        }
    }
    // 2 + 3. Expired cells become tombstones; purgeable tombstones go.
    let purge_del =
        |d: &DeletionTime| purgeable(d.timestamp, d.local_deletion_time, gc_before, max_purgeable);
    let gc_row = |row: &mut Row| {
        if let Some(l) = row.liveness {
            if l.ttl > 0
                && now >= l.expiry
                && purgeable(l.timestamp, l.expiry - l.ttl, gc_before, max_purgeable)
            {
                row.liveness = None;
            }
        }
        if row.deletion.as_ref().is_some_and(purge_del) {
            row.deletion = None;
        }
        let gc_cell = |c: &mut crate::mutation::Cell| -> bool {
            if c.value.is_some() && c.ttl > 0 && now >= c.expiry {
                c.expiry -= c.ttl;
                c.ttl = 0;
                c.value = None;
            }
            !(c.value.is_none() && purgeable(c.timestamp, c.expiry, gc_before, max_purgeable))
        };
        row.columns.retain_mut(|(_, data)| match data {
            ColumnData::Simple(c) => gc_cell(c),
            ColumnData::Complex { tombstone, cells } => {
                if tombstone.as_ref().is_some_and(purge_del) {
                    *tombstone = None;
                }
                cells.retain_mut(|(_, c)| gc_cell(c));
                tombstone.is_some() || !cells.is_empty()
            }
        });
    };
    if let Some(s) = &mut p.static_row {
        gc_row(s);
        if row_is_empty(s) {
            p.static_row = None;
        }
    }
    for (_, row) in &mut p.rows {
        gc_row(row);
    }
    p.rows.retain(|(_, r)| !row_is_empty(r));
    p.range_tombstones.retain(|rt| !purge_del(&rt.deletion));
    if p.tombstone.as_ref().is_some_and(purge_del) {
        p.tombstone = None;
    }
    let empty = p.tombstone.is_none()
        && p.static_row.is_none()
        && p.range_tombstones.is_empty()
        && p.rows.is_empty();
    (!empty).then_some(p)
}

/// The name of compaction log `id`.
pub fn log_name(id: u64) -> String {
    format!("Compaction-{id}.log")
}

/// The id of a compaction log file name.
pub fn parse_log_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("Compaction-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

const LOG_MAGIC: &[u8; 8] = b"TSRCLOG1";

fn encode_log(inputs: &[u64], outputs: &[u64]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(LOG_MAGIC);
    for list in [inputs, outputs] {
        b.extend_from_slice(&(list.len() as u64).to_be_bytes());
        for g in list {
            b.extend_from_slice(&g.to_be_bytes());
        }
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

fn decode_log(b: &[u8]) -> Result<(Vec<u64>, Vec<u64>), String> {
    if b.len() < 12 || &b[..8] != LOG_MAGIC {
        return Err("bad compaction log magic".into());
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err("compaction log checksum mismatch".into());
    }
    let mut c = Cursor::new(&body[8..]);
    let mut lists = Vec::new();
    for _ in 0..2 {
        let n = c.count(8)?;
        lists.push((0..n).map(|_| c.u64()).collect::<Result<Vec<_>, _>>()?);
    }
    let outputs = lists.pop().unwrap_or_default();
    let inputs = lists.pop().unwrap_or_default();
    Ok((inputs, outputs))
}

/// Durably writes compaction log `id` (temporary name, fsync, rename,
/// directory fsync) and returns its path.
pub(crate) fn write_log(
    dir: &Path,
    id: u64,
    inputs: &[u64],
    outputs: &[u64],
) -> Result<PathBuf, EngineError> {
    let log_path = dir.join(log_name(id));
    let tmp = dir.join(format!("{}.tmp", log_name(id)));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&encode_log(inputs, outputs))?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &log_path)?;
    sync_dir(dir)?;
    Ok(log_path)
}

/// Cleans a table directory before its SSTables are opened: deletes
/// temporary files of interrupted writes and settles every compaction log
/// (all outputs present: the compaction completed, its remaining inputs
/// are deleted; otherwise its outputs are deleted and the inputs stay).
pub fn recover_directory(dir: &Path) -> Result<(), EngineError> {
    let mut changed = false;
    let mut logs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            log::info!("removing unfinished file {}", path.display());
            fs::remove_file(&path)?;
            changed = true;
        } else if parse_log_name(&path).is_some() {
            logs.push(path);
        }
    }
    logs.sort();
    for log_path in logs {
        let bytes = fs::read(&log_path)?;
        let (inputs, outputs) =
            decode_log(&bytes).map_err(|reason| EngineError::CorruptSSTable {
                path: log_path.clone(),
                reason,
            })?;
        let exists = |g: &u64| dir.join(file_name(*g)).exists();
        let complete = outputs.iter().all(exists);
        let doomed = if complete { &inputs } else { &outputs };
        log::info!(
            "compaction log {}: {} — removing {:?}",
            log_path.display(),
            if complete {
                "completed"
            } else {
                "interrupted, rolling back"
            },
            doomed
        );
        for g in doomed {
            let p = dir.join(file_name(*g));
            if p.exists() {
                fs::remove_file(p)?;
            }
        }
        sync_dir(dir)?;
        fs::remove_file(&log_path)?;
        changed = true;
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Counters of a shard's compactions (for `compactionstats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionStats {
    pub completed: u64,
    pub failed: u64,
    /// Cancelled (truncate, drop, shutdown) or refused by a full queue.
    pub cancelled: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// A shard's compaction bookkeeping (Cassandra's `CompactionManager`):
/// how many background jobs it keeps running, which table's turn it is,
/// counters. The jobs themselves run on a [`CompactionExecutor`].
#[derive(Debug, Clone)]
pub struct CompactionManager {
    /// Most background compactions of the shard running at once
    /// (`concurrent_compactors`; also what [`crate::Database::maybe_compact`]
    /// runs per call).
    pub max_concurrent: usize,
    /// Tables are visited round-robin from this index.
    pub(crate) cursor: usize,
    pub(crate) stats: CompactionStats,
    /// Whether background compaction is enabled (`nodetool
    /// disableautocompaction` turns it off).
    pub enabled: bool,
}

impl Default for CompactionManager {
    fn default() -> Self {
        CompactionManager {
            max_concurrent: 1,
            cursor: 0,
            stats: CompactionStats::default(),
            enabled: true,
        }
    }
}

impl CompactionManager {
    /// The counters so far.
    pub fn stats(&self) -> CompactionStats {
        self.stats
    }
}

/// Paths of every SSTable file in `dir` (for tests and tools).
pub fn sstable_paths(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| parse_file_name(p).is_some())
        .collect();
    v.sort();
    Ok(v)
}
