//! `tessera-engine-bench`: one shard's storage engine against fjall and
//! RocksDB on the same workload, in one process and one invocation.
//!
//! ```text
//! tessera-engine-bench [n=1000000] [rounds=3] [budget_mb=32] [dir=/tmp]
//!                      [writers=64] [batch_n=200000] [fsync_n=2000] [appends=2000000]
//!                      [engines=tessera,fjall,rocksdb]
//! ```
//!
//! Per round, each engine in turn (fresh directory each): `n` inserts of
//! random 16-byte keys with 100-byte values (write-ahead log on, no sync per
//! write), then `n` point reads of those keys in another random order. Then
//! Tessera alone: `commitlog_sync: batch` with `writers` concurrent writers
//! against one fdatasync per write, and commitlog appends alone. fjall and
//! RocksDB run only when built with `--features compare`
//! (`scripts/engine-bench.sh` does that). Prints a markdown report.

#[path = "../engine_workload.rs"]
mod engine_workload;

#[path = "../engine_tessera.rs"]
mod engine_tessera;

#[cfg(feature = "compare")]
#[path = "../engine_compare.rs"]
mod engine_compare;

use std::path::{Path, PathBuf};

use engine_workload::{EngineRun, Phase, Workload};

struct Args {
    n: usize,
    rounds: usize,
    budget: usize,
    dir: PathBuf,
    writers: usize,
    batch_n: usize,
    fsync_n: usize,
    appends: usize,
    /// Engines to run (`engines=tessera,fjall`); default: all that are built.
    engines: Option<Vec<String>>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        n: 1_000_000,
        rounds: 3,
        budget: 32 << 20,
        dir: std::env::temp_dir(),
        writers: 64,
        batch_n: 200_000,
        fsync_n: 2_000,
        appends: 2_000_000,
        engines: None,
    };
    for arg in std::env::args().skip(1) {
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got {arg:?}"))?;
        let num = || {
            v.replace('_', "")
                .parse::<usize>()
                .map_err(|e| format!("{k}: {e}"))
        };
        match k {
            "n" => a.n = num()?,
            "rounds" => a.rounds = num()?.max(1),
            "budget_mb" => a.budget = num()? << 20,
            "dir" => a.dir = PathBuf::from(v),
            "writers" => a.writers = num()?.max(1),
            "batch_n" => a.batch_n = num()?,
            "fsync_n" => a.fsync_n = num()?,
            "appends" => a.appends = num()?,
            "engines" => a.engines = Some(v.split(',').map(str::to_owned).collect()),
            _ => return Err(format!("unknown option {k:?}")),
        }
    }
    if a.n == 0 {
        return Err("n must be at least 1".into());
    }
    Ok(a)
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(parent: &Path, name: &str) -> std::io::Result<Scratch> {
        let p = parent.join(format!(
            "tessera-engine-bench-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Error = Box<dyn std::error::Error>;

fn run_engine(name: &str, a: &Args, w: &Workload, round: usize) -> Result<EngineRun, Error> {
    let scratch = Scratch::new(&a.dir, &format!("{name}-{round}"))?;
    eprintln!("round {round}: {name} ...");
    let run = match name {
        "tessera" => engine_tessera::run(&scratch.0, w, a.budget)?,
        #[cfg(feature = "compare")]
        "fjall" => engine_compare::run_fjall(&scratch.0, w, a.budget)?,
        #[cfg(feature = "compare")]
        "rocksdb" => engine_compare::run_rocksdb(&scratch.0, w, a.budget)?,
        _ => return Err(format!("engine {name} not built (feature `compare`)").into()),
    };
    eprintln!(
        "round {round}: {name}: write {:.0}/s ({:.2} µs CPU/op), read {:.0}/s ({:.2} µs CPU/op), misses {}; {}",
        run.write.ops_per_sec(),
        run.write.cpu_us_per_op(),
        run.read.ops_per_sec(),
        run.read.cpu_us_per_op(),
        run.read_misses,
        run.layout
    );
    Ok(run)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn fmt_rate(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tessera-engine-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = real_main(&a) {
        eprintln!("tessera-engine-bench: {e}");
        std::process::exit(1);
    }
}

fn real_main(a: &Args) -> Result<(), Error> {
    let built: &[&str] = if cfg!(feature = "compare") {
        &["tessera", "fjall", "rocksdb"]
    } else {
        eprintln!("built without feature `compare`: Tessera only");
        &["tessera"]
    };
    let engines: Vec<&str> = match &a.engines {
        Some(list) => {
            if list.first().map(String::as_str) != Some("tessera") {
                return Err("engines= must start with tessera (ratios are against it)".into());
            }
            for e in list {
                if !built.contains(&e.as_str()) {
                    return Err(format!("engine {e} not built (feature `compare`)").into());
                }
            }
            built
                .iter()
                .copied()
                .filter(|b| list.iter().any(|e| e == b))
                .collect()
        }
        None => built.to_vec(),
    };
    let engines = &engines[..];
    let w = Workload::new(a.n, 0x7e55e4a);
    let mut runs: Vec<Vec<EngineRun>> = vec![Vec::new(); engines.len()];
    for round in 1..=a.rounds {
        for (e, name) in engines.iter().enumerate() {
            runs[e].push(run_engine(name, a, &w, round)?);
        }
    }

    eprintln!("batch mode ...");
    let scratch = Scratch::new(&a.dir, "batch")?;
    let batch =
        engine_tessera::run_batch(&scratch.0, &w, a.writers, a.batch_n, a.fsync_n, a.budget)?;
    drop(scratch);
    #[allow(unused_mut)]
    let mut others_sync: Vec<(String, Phase)> = Vec::new();
    #[cfg(feature = "compare")]
    if engines.len() > 1 {
        eprintln!("fdatasync per write, fjall and RocksDB ...");
        let scratch = Scratch::new(&a.dir, "sync")?;
        others_sync = engine_compare::run_sync_per_write(&scratch.0, &w, a.fsync_n)?;
    }

    eprintln!("commitlog appends ...");
    let scratch = Scratch::new(&a.dir, "append")?;
    let mut appends = Vec::new();
    for _ in 0..a.rounds {
        appends.push(engine_tessera::run_append(
            &scratch.0.join(format!("r{}", appends.len())),
            &w,
            a.appends,
        )?);
    }
    drop(scratch);

    report(a, engines, &runs, &batch, &others_sync, &appends);
    let misses: u64 = runs.iter().flatten().map(|r| r.read_misses).sum();
    if misses > 0 {
        return Err(format!("{misses} reads did not return the written value").into());
    }
    Ok(())
}

fn report(
    a: &Args,
    engines: &[&str],
    runs: &[Vec<EngineRun>],
    batch: &engine_tessera::BatchRun,
    others_sync: &[(String, Phase)],
    appends: &[(Phase, Phase, usize)],
) {
    let med = |e: usize, f: &dyn Fn(&EngineRun) -> f64| median(runs[e].iter().map(f).collect());
    println!(
        "N = {} keys (16 B) × values (100 B), {} round(s), memtable {} MiB per engine; medians over the rounds.",
        fmt_rate(a.n as f64),
        a.rounds,
        a.budget >> 20
    );
    println!();
    println!("| engine | insert op/s | insert µs CPU/op | + settle µs CPU/op | read op/s | read µs CPU/op | reads from SSTables only | misses |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (e, name) in engines.iter().enumerate() {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {} | {:.2} | {:.1} % | {} |",
            fmt_rate(med(e, &|r| r.write.ops_per_sec())),
            med(e, &|r| r.write.cpu_us_per_op()),
            med(e, &|r| (r.write.cpu_us + r.settle.cpu_us) as f64
                / a.n as f64),
            fmt_rate(med(e, &|r| r.read.ops_per_sec())),
            med(e, &|r| r.read.cpu_us_per_op()),
            100.0 * med(e, &|r| r.on_disk_share.unwrap_or(0.0)),
            runs[e].iter().map(|r| r.read_misses).sum::<u64>(),
        );
    }
    println!();
    if engines.len() > 1 {
        println!("Ratios, Tessera over the other engine (per round, then the median; > 1 means Tessera is faster / cheaper):");
        println!();
        println!("| vs | insert op/s | insert CPU/op (other ÷ Tessera) | read op/s | read CPU/op (other ÷ Tessera) |");
        println!("| --- | --- | --- | --- | --- |");
        for (e, name) in engines.iter().enumerate().skip(1) {
            let ratios = |f: &dyn Fn(&EngineRun, &EngineRun) -> f64| {
                let v: Vec<f64> = runs[0].iter().zip(&runs[e]).map(|(t, o)| f(t, o)).collect();
                let each: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
                format!("**{:.2}×** ({})", median(v.clone()), each.join(", "))
            };
            println!(
                "| {name} | {} | {} | {} | {} |",
                ratios(&|t, o| t.write.ops_per_sec() / o.write.ops_per_sec()),
                ratios(&|t, o| o.write.cpu_us_per_op() / t.write.cpu_us_per_op()),
                ratios(&|t, o| t.read.ops_per_sec() / o.read.ops_per_sec()),
                ratios(&|t, o| o.read.cpu_us_per_op() / t.read.cpu_us_per_op()),
            );
        }
        println!();
    }
    println!("Where the data was when the reads ran (last round):");
    println!();
    for r in runs.iter().filter_map(|r| r.last()) {
        println!("- {}: {}", r.engine, r.layout);
    }
    println!();
    let per_sync = |ops: u64, syncs: u64| ops as f64 / syncs.max(1) as f64;
    println!("Batch mode (`commitlog_sync: batch`), Tessera:");
    println!();
    println!("| run | writes | op/s | µs CPU/op | fdatasyncs | writes per fdatasync |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| group commit, {} concurrent writers | {} | {} | {:.2} | {} | {:.1} |",
        batch.writers,
        fmt_rate(batch.group.ops as f64),
        fmt_rate(batch.group.ops_per_sec()),
        batch.group.cpu_us_per_op(),
        batch.group_syncs,
        per_sync(batch.group.ops, batch.group_syncs)
    );
    println!(
        "| fdatasync per write, 1 writer | {} | {} | {:.2} | {} | {:.1} |",
        fmt_rate(batch.per_write.ops as f64),
        fmt_rate(batch.per_write.ops_per_sec()),
        batch.per_write.cpu_us_per_op(),
        batch.per_write_syncs,
        per_sync(batch.per_write.ops, batch.per_write_syncs)
    );
    for (name, p) in others_sync {
        println!(
            "| {name}, 1 writer | {} | {} | {:.2} | {} | 1.0 |",
            fmt_rate(p.ops as f64),
            fmt_rate(p.ops_per_sec()),
            p.cpu_us_per_op(),
            fmt_rate(p.ops as f64),
        );
    }
    println!();
    println!(
        "Group commit over fdatasync per write: **{:.1}×** (target ≥ 10×).",
        batch.group.ops_per_sec() / batch.per_write.ops_per_sec().max(1e-9)
    );
    println!();
    let rates: Vec<String> = appends
        .iter()
        .map(|(p, _, _)| fmt_rate(p.ops_per_sec()))
        .collect();
    let entry = appends.first().map(|(_, _, s)| *s).unwrap_or(0);
    println!(
        "Commitlog appends alone ({} appends of one encoded mutation, {entry} B payload, periodic mode, one shard): \
         **{} appends/s** median ({}), {:.3} µs CPU/append; the final sync of all of it took {:.0} ms (median). Target ≥ 1,000,000/s.",
        fmt_rate(a.appends as f64),
        fmt_rate(median(appends.iter().map(|(p, _, _)| p.ops_per_sec()).collect())),
        rates.join(", "),
        median(appends.iter().map(|(p, _, _)| p.cpu_us_per_op()).collect()),
        median(appends.iter().map(|(_, s, _)| s.wall.as_secs_f64() * 1e3).collect()),
    );
}
