//! fjall and RocksDB on the engine benchmark's workload (feature `compare`).
//! Both with their write-ahead log on and no sync per write (their
//! defaults), the same memtable size as Tessera's memtable budget, a 64 MiB
//! block cache and bloom filters (fjall has them by default; RocksDB gets 10
//! bits per key, as Tessera's SSTables carry a filter).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::engine_workload::{EngineRun, Meter, Phase, Workload};

pub type Error = Box<dyn std::error::Error>;

const CACHE: usize = 64 << 20;

pub fn run_fjall(dir: &Path, w: &Workload, budget: usize) -> Result<EngineRun, Error> {
    use fjall::{AbstractTree, KeyspaceCreateOptions};
    let db = fjall::Database::builder(dir)
        .cache_size(CACHE as u64)
        .open()?;
    let ks = db.keyspace("bench", || {
        KeyspaceCreateOptions::default().max_memtable_size(budget as u64)
    })?;

    let meter = Meter::start();
    for i in 0..w.len() {
        ks.insert(&w.keys[i][..], w.value(i))?;
    }
    let write = meter.stop(w.len() as u64);

    // Sealed memtables still being flushed.
    let meter = Meter::start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ks.sealed_memtable_count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let settle = meter.stop(w.len() as u64);

    let in_memtable = ks.tree.active_memtable().len();
    let layout = format!(
        "{} tables ({:.1} MiB on disk), {in_memtable} keys in the active memtable, {} sealed",
        ks.table_count(),
        ks.disk_space() as f64 / (1 << 20) as f64,
        ks.sealed_memtable_count(),
    );
    let on_disk_share = Some(1.0 - in_memtable as f64 / w.len().max(1) as f64);

    let mut misses = 0u64;
    let meter = Meter::start();
    for &i in &w.read_order {
        let i = i as usize;
        match ks.get(w.keys[i])? {
            Some(v) if v[..] == *w.value(i) => {}
            _ => misses += 1,
        }
    }
    let read = meter.stop(w.len() as u64);
    Ok(EngineRun {
        engine: "fjall".into(),
        write,
        settle,
        read,
        read_misses: misses,
        layout,
        on_disk_share,
    })
}

pub fn run_rocksdb(dir: &Path, w: &Workload, budget: usize) -> Result<EngineRun, Error> {
    use rocksdb::{BlockBasedOptions, Cache, Options, WriteOptions, DB};
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.set_write_buffer_size(budget);
    let cache = Cache::new_lru_cache(CACHE)?;
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    table.set_bloom_filter(10.0, false);
    opts.set_block_based_table_factory(&table);
    let db = DB::open(&opts, dir)?;
    let wo = WriteOptions::default(); // WAL on, no sync

    let meter = Meter::start();
    for i in 0..w.len() {
        db.put_opt(w.keys[i], w.value(i), &wo)?;
    }
    let write = meter.stop(w.len() as u64);

    let prop = |name: &str| db.property_int_value(name).ok().flatten().unwrap_or(0);
    let meter = Meter::start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (prop("rocksdb.num-immutable-mem-table") > 0
        || prop("rocksdb.num-running-flushes") > 0
        || prop("rocksdb.num-running-compactions") > 0
        || prop("rocksdb.compaction-pending") > 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let settle = meter.stop(w.len() as u64);

    let in_memtable =
        prop("rocksdb.num-entries-active-mem-table") + prop("rocksdb.num-entries-imm-mem-tables");
    let files: Vec<String> = (0..7)
        .map(|l| prop(&format!("rocksdb.num-files-at-level{l}")))
        .enumerate()
        .filter(|(_, n)| *n > 0)
        .map(|(l, n)| format!("L{l}:{n}"))
        .collect();
    let layout = format!(
        "SST files {} ({:.1} MiB), {in_memtable} keys in memtables",
        files.join(" "),
        prop("rocksdb.total-sst-files-size") as f64 / (1 << 20) as f64,
    );
    let on_disk_share = Some(1.0 - in_memtable as f64 / w.len().max(1) as f64);

    let mut misses = 0u64;
    let meter = Meter::start();
    for &i in &w.read_order {
        let i = i as usize;
        match db.get_pinned(w.keys[i])? {
            Some(v) if v[..] == *w.value(i) => {}
            _ => misses += 1,
        }
    }
    let read = meter.stop(w.len() as u64);
    Ok(EngineRun {
        engine: "rocksdb".into(),
        write,
        settle,
        read,
        read_misses: misses,
        layout,
        on_disk_share,
    })
}

/// fjall and RocksDB with a sync of the log after every write, one writer:
/// the fdatasync-per-write baseline of the other engines on this disk.
pub fn run_sync_per_write(
    dir: &Path,
    w: &Workload,
    n: usize,
) -> Result<Vec<(String, Phase)>, Error> {
    let n = n.min(w.len());
    let mut out = Vec::new();
    {
        let db = fjall::Database::builder(dir.join("fjall")).open()?;
        let ks = db.keyspace("bench", fjall::KeyspaceCreateOptions::default)?;
        let meter = Meter::start();
        for i in 0..n {
            ks.insert(&w.keys[i][..], w.value(i))?;
            db.persist(fjall::PersistMode::SyncData)?;
        }
        out.push((
            "fjall (insert + persist(SyncData))".to_string(),
            meter.stop(n as u64),
        ));
    }
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, dir.join("rocksdb"))?;
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        let meter = Meter::start();
        for i in 0..n {
            db.put_opt(w.keys[i], w.value(i), &wo)?;
        }
        out.push(("rocksdb (put, sync=true)".to_string(), meter.stop(n as u64)));
    }
    Ok(out)
}
