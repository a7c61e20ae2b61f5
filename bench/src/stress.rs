//! The load generator: connects with the Rust `scylla` driver (token-aware, shard-aware,
//! optionally DC-aware), creates `keyspace1.standard1`, and runs prepared single-partition
//! writes and reads from `threads` concurrent workers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;

use crate::settings::{Cl, OpKind, Population, Settings, SizeDist, Stop};
use crate::stats::{self, IntervalRow, OpStats, Recorder, Summary, KINDS};
use crate::svg;

fn consistency(cl: Cl) -> Consistency {
    match cl {
        Cl::Any => Consistency::Any,
        Cl::One => Consistency::One,
        Cl::Two => Consistency::Two,
        Cl::Three => Consistency::Three,
        Cl::Quorum => Consistency::Quorum,
        Cl::All => Consistency::All,
        Cl::LocalQuorum => Consistency::LocalQuorum,
        Cl::EachQuorum => Consistency::EachQuorum,
        Cl::LocalOne => Consistency::LocalOne,
    }
}

/// The error kinds the summary counts separately.
pub fn classify(e: &ExecutionError) -> &'static str {
    match e {
        ExecutionError::LastAttemptError(a) => match a {
            RequestAttemptError::DbError(db, _) => match db {
                DbError::Unavailable { .. } => "Unavailable",
                DbError::WriteTimeout { .. } => "WriteTimeout",
                DbError::ReadTimeout { .. } => "ReadTimeout",
                DbError::Overloaded | DbError::RateLimitReached { .. } => "Overloaded",
                DbError::WriteFailure { .. } => "WriteFailure",
                DbError::ReadFailure { .. } => "ReadFailure",
                DbError::IsBootstrapping => "IsBootstrapping",
                DbError::ServerError => "ServerError",
                DbError::Invalid | DbError::SyntaxError | DbError::ConfigError => "Invalid",
                _ => "OtherServerError",
            },
            RequestAttemptError::BrokenConnectionError(_)
            | RequestAttemptError::UnableToAllocStreamId => "Connection",
            _ => "Other",
        },
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => "Connection",
        ExecutionError::RequestTimeout(_) => "ClientTimeout",
        _ => "Other",
    }
}

/// xorshift64*: cheap, per worker, good enough for key and value choice.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gaussian(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

struct KeyGen {
    pop: Population,
    seq: AtomicU64,
}

impl KeyGen {
    fn next(&self, rng: &mut Rng) -> u64 {
        match self.pop {
            Population::Seq { min, max } => {
                min + self.seq.fetch_add(1, Ordering::Relaxed) % (max - min + 1)
            }
            Population::Uniform { min, max } => min + rng.below(max - min + 1),
            Population::Gaussian {
                min,
                max,
                mean,
                stdev,
            } => {
                let v = (mean + stdev * rng.gaussian()).round();
                (v.max(min as f64) as u64).min(max)
            }
        }
    }
}

/// cassandra-stress-style key: the sequence number as (upper-case) hex text, zero padded to
/// 10 bytes, stored as a blob.
pub fn key_bytes(seq: u64, out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    let _ = write!(out, "{seq:010X}");
}

const VALUE_POOL: usize = 1 << 16;

struct Shared {
    settings: Settings,
    session: Arc<Session>,
    insert: PreparedStatement,
    select: PreparedStatement,
    keys: KeyGen,
    issued: AtomicU64,
    stop: AtomicBool,
    interrupted: Arc<AtomicBool>,
    recorder: Recorder,
    values: Arc<Vec<u8>>,
    seen_errors: Mutex<HashSet<&'static str>>,
    /// Ops, and the intended start of op 0.
    limit: Option<u64>,
    deadline: Option<Instant>,
    rate: Option<(f64, bool)>,
}

impl Shared {
    fn report_first(&self, kind: &'static str, op: OpKind, msg: &dyn std::fmt::Display) {
        if self.seen_errors.lock().unwrap().insert(kind) {
            eprintln!(
                "{} error ({kind}), first of its kind; all are counted: {msg}",
                op.name()
            );
        }
    }
}

async fn worker(sh: Arc<Shared>, id: usize, start: Instant) {
    let mut rng = Rng::new(id as u64 + 1 + start.elapsed().as_nanos() as u64);
    let mut key = Vec::with_capacity(16);
    let total_weight: u32 = sh.settings.ratio.iter().map(|r| r.1).sum();
    let ncols = sh.settings.col_count;
    loop {
        if sh.stop.load(Ordering::Relaxed) || sh.interrupted.load(Ordering::Relaxed) {
            return;
        }
        let i = sh.issued.fetch_add(1, Ordering::Relaxed);
        if sh.limit.is_some_and(|n| i >= n) {
            return;
        }
        let mut intended = None;
        if let Some((rate, correct)) = sh.rate {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            if sh.deadline.is_some_and(|d| at >= d) {
                return;
            }
            // tokio's timer has millisecond granularity: wake up to 1 ms early and take
            // latency from the earlier of the intended and the actual start.
            let wake = at.checked_sub(Duration::from_millis(1)).unwrap_or(at);
            if wake > Instant::now() {
                tokio::time::sleep_until(wake.into()).await;
            }
            if correct {
                intended = Some(at);
            }
        } else if sh.deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }

        let mut pick = rng.below(total_weight as u64) as u32;
        let mut kind = sh.settings.ratio[0].0;
        for (k, w) in &sh.settings.ratio {
            if pick < *w {
                kind = *k;
                break;
            }
            pick -= w;
        }
        key_bytes(sh.keys.next(&mut rng), &mut key);

        let t0 = Instant::now();
        let result = match kind {
            OpKind::Write => {
                let mut vals: Vec<&[u8]> = Vec::with_capacity(ncols + 1);
                vals.push(&key);
                for _ in 0..ncols {
                    let len = match sh.settings.col_size {
                        SizeDist::Fixed(n) => n,
                        SizeDist::Uniform(a, b) => a + rng.below((b - a + 1) as u64) as usize,
                    };
                    let off = rng.below(VALUE_POOL as u64) as usize;
                    vals.push(&sh.values[off..off + len]);
                }
                sh.session
                    .execute_unpaged(&sh.insert, &vals)
                    .await
                    .map(|_| Some(1u64))
            }
            OpKind::Read => sh
                .session
                .execute_unpaged(&sh.select, (&key[..],))
                .await
                .map(|r| r.into_rows_result().ok().map(|rows| rows.rows_num() as u64)),
        };
        let end = Instant::now();
        let began = intended.map_or(t0, |at: Instant| at.min(t0));
        match result {
            Ok(Some(rows)) if rows > 0 || kind == OpKind::Write => {
                sh.recorder.success(id, kind, end - began, rows)
            }
            Ok(_) => {
                sh.recorder.error(id, kind, "NotFound");
                sh.report_first(
                    "NotFound",
                    kind,
                    &format!(
                        "no row for key 0x{} (write the population first)",
                        String::from_utf8_lossy(&key)
                    ),
                );
            }
            Err(e) => {
                let k = classify(&e);
                sh.recorder.error(id, kind, k);
                sh.report_first(k, kind, &e);
                if k == "Connection" {
                    // Don't spin on a dead connection; the error is counted.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
}

#[derive(serde::Serialize)]
struct JsonResult<'a> {
    tool: &'static str,
    version: &'static str,
    command_line: String,
    settings: &'a Settings,
    started_unix_s: u64,
    cluster: serde_json::Value,
    intervals: &'a [IntervalRow],
    summary: JsonSummary<'a>,
}

#[derive(serde::Serialize)]
struct JsonSummary<'a> {
    total: &'a Summary,
    per_op: &'a [Summary],
    elapsed_s: f64,
    warmup_ops: u64,
    interrupted: bool,
}

fn print_settings(s: &Settings) {
    println!("******************** Stress Settings ********************");
    println!("Command:");
    println!("  Type: {}", s.command);
    match &s.stop {
        Stop::Count(n) => println!("  Count: {}", stats::thousands(*n)),
        Stop::Duration(d) => println!("  Duration: {} SECONDS", d.as_secs_f64()),
    }
    if s.command == "mixed" {
        let r: Vec<String> = s
            .ratio
            .iter()
            .map(|(k, w)| format!("{}={w}", k.name().to_lowercase()))
            .collect();
        println!("  Command Ratios: {}", r.join(", "));
    }
    println!("  Consistency Level: {}", s.cl);
    println!("  Warm-up: {}", s.warmup);
    println!("Rate:");
    println!("  Threads (concurrent requests): {}", s.threads);
    match (s.fixed_rate, s.throttle) {
        (Some(r), _) => println!(
            "  Fixed rate: {} op/s (latency from intended start: coordinated omission corrected)",
            r
        ),
        (_, Some(r)) => println!("  Throttle: {} op/s", r),
        _ => println!("  Rate: unlimited"),
    }
    println!("Population:");
    println!("  Distribution: {}", s.pop);
    println!("Columns:");
    println!("  Size: {}, Count: {}", s.col_size, s.col_count);
    println!("Schema:");
    println!("  Keyspace: {}", s.keyspace);
    println!("  Replication: {}", s.replication.cql_map());
    println!("Node:");
    println!("  Nodes: {:?}, native port {}", s.nodes, s.port);
    if let Some(dc) = &s.datacenter {
        println!("  Datacenter (DC-aware routing): {dc}");
    }
    println!("Driver: scylla (Rust), prepared statements, token-aware, shard-aware, no retries");
    if let Some(f) = &s.log_file {
        println!("Log: {f}");
    }
    if let Some(f) = &s.graph_file {
        println!("Graph: {f}");
    }
    println!();
}

async fn connect(s: &Settings) -> Result<Session, String> {
    let mut lb = DefaultPolicy::builder().token_aware(true);
    if let Some(dc) = &s.datacenter {
        lb = lb
            .prefer_datacenter(dc.clone())
            .permit_dc_failover(!s.cl.is_local());
    }
    let profile = ExecutionProfile::builder()
        .consistency(consistency(s.cl))
        .request_timeout(Some(s.request_timeout))
        .load_balancing_policy(lb.build())
        .retry_policy(Arc::new(FallthroughRetryPolicy::new()))
        .build();
    let nodes: Vec<String> = s
        .nodes
        .iter()
        .map(|n| {
            if n.contains(':') && !n.starts_with('[') && n.matches(':').count() == 1 {
                n.clone()
            } else if n.contains(':') && !n.starts_with('[') {
                format!("[{n}]:{}", s.port)
            } else {
                format!("{n}:{}", s.port)
            }
        })
        .collect();
    let builder = SessionBuilder::new()
        .known_nodes(&nodes)
        .connection_timeout(s.connect_timeout)
        .default_execution_profile_handle(profile.into_handle());
    let build = builder.build();
    match tokio::time::timeout(s.connect_timeout + Duration::from_secs(5), build).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => Err(format!(
            "cannot connect to any of {}: {e}",
            nodes.join(", ")
        )),
        Err(_) => Err(format!(
            "cannot connect to any of {}: no answer within {:?}",
            nodes.join(", "),
            s.connect_timeout + Duration::from_secs(5)
        )),
    }
}

async fn create_schema(session: &Session, s: &Settings) -> Result<(), String> {
    let ks = &s.keyspace;
    let ddl = [
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {} AND durable_writes = true",
            s.replication.cql_map()
        ),
        {
            let cols: Vec<String> = (0..s.col_count).map(|i| format!("\"C{i}\" blob")).collect();
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.standard1 (key blob PRIMARY KEY, {})",
                cols.join(", ")
            )
        },
    ];
    for cql in &ddl {
        session
            .query_unpaged(cql.as_str(), ())
            .await
            .map_err(|e| format!("{cql}: {e}"))?;
    }
    session
        .await_schema_agreement()
        .await
        .map_err(|e| format!("schema agreement: {e}"))?;
    Ok(())
}

/// Runs the command; returns the process exit status.
pub async fn run(settings: Settings) -> i32 {
    print_settings(&settings);
    let session = match connect(&settings).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tessera-stress: {e}");
            return 2;
        }
    };
    let cluster_info = {
        let state = session.get_cluster_state();
        let mut nodes = Vec::new();
        for n in state.get_nodes_info() {
            let shards = n.sharder().map(|s| s.nr_shards.get()).unwrap_or(1);
            println!(
                "Datacenter: {}; Host: {}; Rack: {}; Shards: {}",
                n.datacenter.as_deref().unwrap_or("?"),
                n.address,
                n.rack.as_deref().unwrap_or("?"),
                shards
            );
            nodes.push(serde_json::json!({
                "address": n.address.to_string(),
                "datacenter": n.datacenter,
                "rack": n.rack,
                "shards": shards,
            }));
        }
        serde_json::json!({ "nodes": nodes })
    };
    if let Err(e) = create_schema(&session, &settings).await {
        eprintln!("tessera-stress: creating the schema failed: {e}");
        return 2;
    }
    println!(
        "Created keyspace {} and table {}.standard1 (if missing).",
        settings.keyspace, settings.keyspace
    );
    let ks = &settings.keyspace;
    let cols: Vec<String> = (0..settings.col_count)
        .map(|i| format!("\"C{i}\""))
        .collect();
    let marks = vec!["?"; settings.col_count + 1].join(",");
    let insert_cql = format!(
        "INSERT INTO {ks}.standard1 (key,{}) VALUES ({marks})",
        cols.join(",")
    );
    let select_cql = format!("SELECT * FROM {ks}.standard1 WHERE key = ?");
    let mut insert = match session.prepare(insert_cql.as_str()).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tessera-stress: PREPARE {insert_cql}: {e}");
            return 2;
        }
    };
    let mut select = match session.prepare(select_cql.as_str()).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tessera-stress: PREPARE {select_cql}: {e}");
            return 2;
        }
    };
    insert.set_consistency(consistency(settings.cl));
    select.set_consistency(consistency(settings.cl));

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: stopping and summarising");
                flag.store(true, Ordering::Relaxed);
            }
        });
    }

    let mut values = vec![0u8; VALUE_POOL + 1 + max_size(&settings)];
    let mut r = Rng::new(42);
    for b in values.iter_mut() {
        *b = r.next() as u8;
    }
    let session = Arc::new(session);
    let insert = Arc::new(insert);
    let select = Arc::new(select);
    let values = Arc::new(values);
    let names: Vec<&str> = settings.ratio.iter().map(|r| r.0.name()).collect();
    let label = names.join(",");

    // Warm-up: recorded apart and left out of the results (its count goes to the JSON log,
    // for per-operation server CPU accounting).
    let mut warmup_ops = 0u64;
    if settings.warmup {
        let n = match settings.stop {
            Stop::Count(n) => (n / 10).min(50_000),
            Stop::Duration(_) => 50_000,
        };
        if n > 0 {
            println!("Warming up {label} with {n} iterations...");
            let sh = shared(
                &settings,
                &session,
                &insert,
                &select,
                &values,
                &interrupted,
                Some(n),
                Some(Instant::now() + Duration::from_secs(5)),
                None,
            );
            run_workers(&sh).await;
            let w = sh.recorder.drain();
            warmup_ops = w.iter().map(|k| k.ops + k.error_count()).sum();
        }
    }
    if interrupted.load(Ordering::Relaxed) {
        return 130;
    }

    match settings.stop {
        Stop::Count(n) => println!(
            "Running {label} with {} threads for {} iteration",
            settings.threads,
            stats::thousands(n)
        ),
        Stop::Duration(d) => println!(
            "Running {label} with {} threads for {} seconds",
            settings.threads,
            d.as_secs_f64()
        ),
    }
    let start = Instant::now();
    let (limit, deadline) = match settings.stop {
        Stop::Count(n) => (Some(n), None),
        Stop::Duration(d) => (None, Some(start + d)),
    };
    let rate = settings
        .fixed_rate
        .map(|r| (r, true))
        .or(settings.throttle.map(|r| (r, false)));
    let sh = shared(
        &settings,
        &session,
        &insert,
        &select,
        &values,
        &interrupted,
        limit,
        deadline,
        rate,
    );
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let workers: Vec<_> = (0..settings.threads)
        .map(|id| tokio::spawn(worker(sh.clone(), id, start)))
        .collect();

    println!("{}", stats::HEADER);
    let kinds: Vec<OpKind> = KINDS
        .iter()
        .copied()
        .filter(|k| settings.ratio.iter().any(|r| r.0 == *k))
        .collect();
    let mut totals: [OpStats; 2] = Default::default();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut intervals: Vec<IntervalRow> = Vec::new();
    let mut points: Vec<svg::Point> = Vec::new();
    let mut last = start;
    let mut ticker = tokio::time::interval_at(
        (start + settings.log_interval).into(),
        settings.log_interval,
    );
    let all_done = async {
        for w in workers {
            let _ = w.await;
        }
    };
    tokio::pin!(all_done);
    let mut finished = false;
    while !finished {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut all_done => { finished = true; }
        }
        let now = Instant::now();
        let dt = (now - last).as_secs_f64().max(1e-6);
        last = now;
        let drained = sh.recorder.drain();
        let mut interval_total = OpStats::default();
        let t = (now - start).as_secs_f64();
        let mut rows_out = Vec::new();
        for (slot, kind) in KINDS.iter().enumerate() {
            if !kinds.contains(kind) {
                continue;
            }
            totals[slot].add(&drained[slot]);
            interval_total.add(&drained[slot]);
            rates[slot].push(drained[slot].ops as f64 / dt);
            rows_out.push(row(
                kind.name(),
                &drained[slot],
                &totals[slot],
                dt,
                t,
                &rates[slot],
            ));
        }
        let mut grand = OpStats::default();
        for k in &totals {
            grand.ops += k.ops;
        }
        rates[2].push(interval_total.ops as f64 / dt);
        let total_row = row("total", &interval_total, &grand, dt, t, &rates[2]);
        // A sliver of an interval at the very end is folded into the totals, not printed
        // as a line of its own (its rate would mean nothing).
        let sliver = finished && dt < settings.log_interval.as_secs_f64() / 10.0;
        if sliver {
            continue;
        }
        for r in &rows_out {
            println!("{}", r.line());
        }
        let progress = match limit {
            Some(n) => format!(
                "  [{:.0}% done]",
                100.0 * (grand.ops + grand_errors(&totals)) as f64 / n as f64
            ),
            None => match deadline {
                Some(d) => format!(
                    "  [{:.0}% done]",
                    100.0 * t / (d - start).as_secs_f64().max(1e-9)
                ),
                None => String::new(),
            },
        };
        println!("{}{}", total_row.line(), progress);
        points.push(svg::Point {
            time_s: t,
            op_rate: total_row.op_rate,
            p50_ms: total_row.latency_ms.median,
            p99_ms: total_row.latency_ms.p99,
            p999_ms: total_row.latency_ms.p999,
            errors: total_row.errors,
        });
        intervals.extend(rows_out);
        intervals.push(total_row);
    }
    let elapsed = start.elapsed();
    let mut grand = OpStats::default();
    let mut parts = Vec::new();
    for (slot, kind) in KINDS.iter().enumerate() {
        if kinds.contains(kind) {
            grand.add(&totals[slot]);
            parts.push(Summary::of(kind.name(), &totals[slot], elapsed));
        }
    }
    let total = Summary::of("total", &grand, elapsed);
    let shown: &[Summary] = &parts;
    print!("{}", stats::results_text(&total, shown, elapsed));
    let was_interrupted = interrupted.load(Ordering::Relaxed);

    let mut status = if total.total_errors > 0 { 1 } else { 0 };
    if total.total_ops == 0 && total.total_errors == 0 {
        eprintln!("tessera-stress: no operation completed");
        status = 1;
    }
    if was_interrupted {
        status = 130;
    }
    if let Some(f) = &settings.log_file {
        let doc = JsonResult {
            tool: "tessera-stress",
            version: env!("CARGO_PKG_VERSION"),
            command_line: format!("tessera-stress {}", settings.argv),
            settings: &settings,
            started_unix_s,
            cluster: cluster_info,
            intervals: &intervals,
            summary: JsonSummary {
                total: &total,
                per_op: &parts,
                elapsed_s: elapsed.as_secs_f64(),
                warmup_ops,
                interrupted: was_interrupted,
            },
        };
        match serde_json::to_string_pretty(&doc)
            .map_err(|e| e.to_string())
            .and_then(|j| std::fs::write(f, j + "\n").map_err(|e| e.to_string()))
        {
            Ok(()) => println!("Wrote {f}"),
            Err(e) => {
                eprintln!("tessera-stress: writing {f}: {e}");
                status = status.max(1);
            }
        }
    }
    if let Some(f) = &settings.graph_file {
        let title = settings
            .graph_title
            .clone()
            .unwrap_or_else(|| format!("tessera-stress {}", settings.argv));
        let sub = format!(
            "{} op/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, {} errors, {} s",
            stats::thousands(total.op_rate.round() as u64),
            total.latency_ms.median,
            total.latency_ms.p99,
            total.latency_ms.p999,
            total.total_errors,
            elapsed.as_secs()
        );
        match std::fs::write(f, svg::render(&title, &sub, &points)) {
            Ok(()) => println!("Wrote {f}"),
            Err(e) => {
                eprintln!("tessera-stress: writing {f}: {e}");
                status = status.max(1);
            }
        }
    }
    status
}

fn grand_errors(totals: &[OpStats; 2]) -> u64 {
    totals.iter().map(|t| t.error_count()).sum()
}

fn row(op: &str, iv: &OpStats, total: &OpStats, dt: f64, t: f64, rates: &[f64]) -> IntervalRow {
    IntervalRow {
        op: op.to_string(),
        total_ops: total.ops,
        op_rate: iv.ops as f64 / dt,
        pk_rate: iv.partitions as f64 / dt,
        row_rate: iv.rows as f64 / dt,
        latency_ms: iv.latency(),
        time_s: t,
        stderr: stats::rate_stderr(rates),
        errors: iv.error_count(),
    }
}

fn max_size(s: &Settings) -> usize {
    match s.col_size {
        SizeDist::Fixed(n) => n,
        SizeDist::Uniform(_, b) => b,
    }
}

#[allow(clippy::too_many_arguments)]
fn shared(
    settings: &Settings,
    session: &Arc<Session>,
    insert: &Arc<PreparedStatement>,
    select: &Arc<PreparedStatement>,
    values: &Arc<Vec<u8>>,
    interrupted: &Arc<AtomicBool>,
    limit: Option<u64>,
    deadline: Option<Instant>,
    rate: Option<(f64, bool)>,
) -> Arc<Shared> {
    Arc::new(Shared {
        settings: settings.clone(),
        session: session.clone(),
        insert: (**insert).clone(),
        select: (**select).clone(),
        keys: KeyGen {
            pop: settings.pop.clone(),
            seq: AtomicU64::new(0),
        },
        issued: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        interrupted: interrupted.clone(),
        recorder: Recorder::new(settings.threads),
        values: values.clone(),
        seen_errors: Mutex::new(HashSet::new()),
        limit,
        deadline,
        rate,
    })
}

async fn run_workers(sh: &Arc<Shared>) {
    let start = Instant::now();
    let ws: Vec<_> = (0..sh.settings.threads)
        .map(|id| tokio::spawn(worker(sh.clone(), id, start)))
        .collect();
    for w in ws {
        let _ = w.await;
    }
}
