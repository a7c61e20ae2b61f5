//! Latency and throughput accounting: per-worker HDR histograms drained once per interval,
//! cassandra-stress-shaped interval lines and the `Results:` summary.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::settings::OpKind;

/// Latencies are recorded in microseconds, 1 µs .. 10 min, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

#[derive(Clone)]
pub struct OpStats {
    pub hist: Histogram<u64>,
    pub ops: u64,
    pub partitions: u64,
    pub rows: u64,
    pub errors: BTreeMap<&'static str, u64>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            hist: new_histogram(),
            ops: 0,
            partitions: 0,
            rows: 0,
            errors: BTreeMap::new(),
        }
    }
}

impl OpStats {
    pub fn add(&mut self, o: &OpStats) {
        self.hist.add(&o.hist).expect("same histogram bounds");
        self.ops += o.ops;
        self.partitions += o.partitions;
        self.rows += o.rows;
        for (k, v) in &o.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn reset(&mut self) {
        self.hist.reset();
        self.ops = 0;
        self.partitions = 0;
        self.rows = 0;
        self.errors.clear();
    }

    /// Latency figures in milliseconds.
    pub fn latency(&self) -> Latency {
        let h = &self.hist;
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            mean: h.mean() / 1000.0,
            median: ms(h.value_at_quantile(0.5)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Latency {
    pub mean: f64,
    pub median: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

pub const KINDS: [OpKind; 2] = [OpKind::Write, OpKind::Read];

fn slot(kind: OpKind) -> usize {
    match kind {
        OpKind::Write => 0,
        OpKind::Read => 1,
    }
}

/// One slot per worker: the worker locks only its own (uncontended) mutex; the reporter
/// takes each one once per interval.
pub struct Recorder {
    workers: Vec<Mutex<[OpStats; 2]>>,
}

impl Recorder {
    pub fn new(workers: usize) -> Recorder {
        Recorder {
            workers: (0..workers)
                .map(|_| Mutex::new(Default::default()))
                .collect(),
        }
    }

    pub fn success(&self, worker: usize, kind: OpKind, latency: Duration, rows: u64) {
        let mut w = self.workers[worker].lock().unwrap();
        let s = &mut w[slot(kind)];
        let us = (latency.as_micros() as u64).max(1);
        s.hist.saturating_record(us);
        s.ops += 1;
        s.partitions += 1;
        s.rows += rows;
    }

    pub fn error(&self, worker: usize, kind: OpKind, error: &'static str) {
        let mut w = self.workers[worker].lock().unwrap();
        *w[slot(kind)].errors.entry(error).or_default() += 1;
    }

    /// Everything recorded since the last drain, per op kind.
    pub fn drain(&self) -> [OpStats; 2] {
        let mut out: [OpStats; 2] = Default::default();
        for w in &self.workers {
            let mut w = w.lock().unwrap();
            for i in 0..2 {
                out[i].add(&w[i]);
                w[i].reset();
            }
        }
        out
    }
}

/// One interval line's figures (also one element of the JSON series).
#[derive(Debug, Clone, serde::Serialize)]
pub struct IntervalRow {
    pub op: String,
    pub total_ops: u64,
    pub op_rate: f64,
    pub pk_rate: f64,
    pub row_rate: f64,
    pub latency_ms: Latency,
    pub time_s: f64,
    pub stderr: f64,
    pub errors: u64,
}

pub const HEADER: &str = "type       total ops,    op/s,    pk/s,   row/s,    mean,     med,     .95,     .99,    .999,     max,   time,   stderr, errors";

impl IntervalRow {
    pub fn line(&self) -> String {
        let l = &self.latency_ms;
        format!(
            "{:<7}{:>13}, {:>7.0}, {:>7.0}, {:>7.0}, {:>7.1}, {:>7.1}, {:>7.1}, {:>7.1}, {:>7.1}, {:>7.1}, {:>6.1}, {:>8.5}, {:>6}",
            format!("{},", self.op),
            self.total_ops,
            self.op_rate,
            self.pk_rate,
            self.row_rate,
            l.mean,
            l.median,
            l.p95,
            l.p99,
            l.p999,
            l.max,
            self.time_s,
            self.stderr,
            self.errors
        )
    }
}

/// Standard error of the mean op rate across intervals, relative to the mean (what
/// cassandra-stress prints as `stderr`: how settled the measured rate is).
pub fn rate_stderr(rates: &[f64]) -> f64 {
    let n = rates.len() as f64;
    if rates.len() < 2 {
        return 0.0;
    }
    let mean = rates.iter().sum::<f64>() / n;
    if mean == 0.0 {
        return 0.0;
    }
    let var = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (var / n).sqrt() / mean
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Summary figures for one op kind (or the total).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub op: String,
    pub op_rate: f64,
    pub partition_rate: f64,
    pub row_rate: f64,
    pub latency_ms: Latency,
    pub total_ops: u64,
    pub total_partitions: u64,
    pub total_rows: u64,
    pub total_errors: u64,
    pub errors_by_kind: BTreeMap<&'static str, u64>,
}

impl Summary {
    pub fn of(op: &str, s: &OpStats, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Summary {
            op: op.to_string(),
            op_rate: s.ops as f64 / secs,
            partition_rate: s.partitions as f64 / secs,
            row_rate: s.rows as f64 / secs,
            latency_ms: s.latency(),
            total_ops: s.ops,
            total_partitions: s.partitions,
            total_rows: s.rows,
            total_errors: s.error_count(),
            errors_by_kind: s.errors.clone(),
        }
    }
}

/// The `Results:` block. `parts` holds one summary per op kind that ran (shown in brackets
/// when there is more than one kind, as cassandra-stress does for mixed).
pub fn results_text(total: &Summary, parts: &[Summary], elapsed: Duration) -> String {
    let bracket = |f: &dyn Fn(&Summary) -> String| -> String {
        if parts.is_empty() {
            return String::new();
        }
        let inner: Vec<String> = parts
            .iter()
            .map(|p| format!("{}: {}", p.op, f(p)))
            .collect();
        format!(" [{}]", inner.join(", "))
    };
    let ms = |v: f64| format!("{v:.1} ms");
    let mut o = String::from("\nResults:\n");
    let mut line = |name: &str, value: String, b: String| {
        o.push_str(&format!("{name:<26}: {value:>10}{b}\n"));
    };
    line(
        "Op rate",
        format!("{} op/s", thousands(total.op_rate.round() as u64)),
        bracket(&|p| format!("{} op/s", thousands(p.op_rate.round() as u64))),
    );
    line(
        "Partition rate",
        format!("{} pk/s", thousands(total.partition_rate.round() as u64)),
        bracket(&|p| format!("{} pk/s", thousands(p.partition_rate.round() as u64))),
    );
    line(
        "Row rate",
        format!("{} row/s", thousands(total.row_rate.round() as u64)),
        bracket(&|p| format!("{} row/s", thousands(p.row_rate.round() as u64))),
    );
    let lat: [(&str, fn(&Latency) -> f64); 6] = [
        ("Latency mean", |l| l.mean),
        ("Latency median", |l| l.median),
        ("Latency 95th percentile", |l| l.p95),
        ("Latency 99th percentile", |l| l.p99),
        ("Latency 99.9th percentile", |l| l.p999),
        ("Latency max", |l| l.max),
    ];
    for (name, f) in lat {
        line(
            name,
            ms(f(&total.latency_ms)),
            bracket(&|p| ms(f(&p.latency_ms))),
        );
    }
    line(
        "Total partitions",
        thousands(total.total_partitions),
        bracket(&|p| thousands(p.total_partitions)),
    );
    line(
        "Total errors",
        thousands(total.total_errors),
        bracket(&|p| thousands(p.total_errors)),
    );
    for (kind, n) in &total.errors_by_kind {
        line(&format!("  {kind}"), thousands(*n), String::new());
    }
    line("Total operation time", hms(elapsed), String::new());
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(hms(Duration::from_secs(3723)), "01:02:03");
        assert!(rate_stderr(&[10.0, 10.0, 10.0]) == 0.0);
    }

    #[test]
    fn recorder_drains_per_kind() {
        let r = Recorder::new(2);
        r.success(0, OpKind::Write, Duration::from_micros(500), 1);
        r.success(1, OpKind::Read, Duration::from_micros(1500), 1);
        r.error(1, OpKind::Read, "ReadTimeout");
        let d = r.drain();
        assert_eq!(d[0].ops, 1);
        assert_eq!(d[1].ops, 1);
        assert_eq!(d[1].errors["ReadTimeout"], 1);
        let d = r.drain();
        assert_eq!(d[0].ops + d[1].ops, 0);
    }
}
