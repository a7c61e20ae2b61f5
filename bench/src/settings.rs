//! Command-line settings in cassandra-stress's shape:
//!
//! ```text
//! tessera-stress write n=100000 cl=LOCAL_QUORUM -rate threads=64 -node 127.0.0.61
//! tessera-stress mixed 'ratio(write=1,read=3)' duration=30s -pop 'dist=gaussian(1..1000000,5)'
//! ```
//!
//! The first word is the command (`write`, `read`, `mixed`, `help`), followed by the command's
//! `key=value` options; then option groups, each a `-name` followed by its own `key=value`
//! words.

use std::fmt;
use std::time::Duration;

/// The operation a command (or one slot of a `mixed` ratio) performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum OpKind {
    Write,
    Read,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Write => "WRITE",
            OpKind::Read => "READ",
        }
    }
}

/// Consistency levels by their CQL names; mapped onto the driver's type by the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Cl {
    Any,
    One,
    Two,
    Three,
    Quorum,
    All,
    LocalQuorum,
    EachQuorum,
    LocalOne,
}

impl Cl {
    pub fn parse(s: &str) -> Result<Cl, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "ANY" => Cl::Any,
            "ONE" => Cl::One,
            "TWO" => Cl::Two,
            "THREE" => Cl::Three,
            "QUORUM" => Cl::Quorum,
            "ALL" => Cl::All,
            "LOCAL_QUORUM" => Cl::LocalQuorum,
            "EACH_QUORUM" => Cl::EachQuorum,
            "LOCAL_ONE" => Cl::LocalOne,
            _ => return Err(format!("unknown consistency level '{s}'")),
        })
    }

    pub fn is_local(self) -> bool {
        matches!(self, Cl::LocalOne | Cl::LocalQuorum)
    }
}

impl fmt::Display for Cl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Cl::Any => "ANY",
            Cl::One => "ONE",
            Cl::Two => "TWO",
            Cl::Three => "THREE",
            Cl::Quorum => "QUORUM",
            Cl::All => "ALL",
            Cl::LocalQuorum => "LOCAL_QUORUM",
            Cl::EachQuorum => "EACH_QUORUM",
            Cl::LocalOne => "LOCAL_ONE",
        };
        f.write_str(s)
    }
}

/// How partition keys are drawn (`-pop`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Population {
    /// Each key in `min..=max` once, in order, wrapping around.
    Seq {
        min: u64,
        max: u64,
    },
    Uniform {
        min: u64,
        max: u64,
    },
    /// cassandra-stress's `GAUSSIAN(min..max,stdvrng)`: mean in the middle, standard
    /// deviation `(mean - min) / stdvrng`, clamped to the range.
    Gaussian {
        min: u64,
        max: u64,
        mean: f64,
        stdev: f64,
    },
}

impl fmt::Display for Population {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Population::Seq { min, max } => write!(f, "seq={min}..{max}"),
            Population::Uniform { min, max } => write!(f, "dist=UNIFORM({min}..{max})"),
            Population::Gaussian {
                min,
                max,
                mean,
                stdev,
            } => write!(
                f,
                "dist=GAUSSIAN({min}..{max},mean={mean},stdev={stdev:.1})"
            ),
        }
    }
}

/// Column value size distribution (`-col size=`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum SizeDist {
    Fixed(usize),
    Uniform(usize, usize),
}

impl fmt::Display for SizeDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeDist::Fixed(n) => write!(f, "FIXED({n})"),
            SizeDist::Uniform(a, b) => write!(f, "UNIFORM({a}..{b})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Replication {
    Simple { factor: u32 },
    NetworkTopology { dcs: Vec<(String, u32)> },
}

impl Replication {
    /// The `{...}` map of `CREATE KEYSPACE ... WITH replication = `.
    pub fn cql_map(&self) -> String {
        match self {
            Replication::Simple { factor } => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': '{factor}'}}")
            }
            Replication::NetworkTopology { dcs } => {
                let mut s = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, rf) in dcs {
                    s.push_str(&format!(", '{dc}': '{rf}'"));
                }
                s.push('}');
                s
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Stop {
    Count(u64),
    Duration(#[serde(with = "secs")] Duration),
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    pub command: String,
    /// `(kind, weight)`; one entry for write/read.
    pub ratio: Vec<(OpKind, u32)>,
    pub stop: Stop,
    pub cl: Cl,
    pub threads: usize,
    /// `-rate fixed=R/s`: ops per second, scheduled; latency measured from the intended start.
    pub fixed_rate: Option<f64>,
    /// `-rate throttle=R/s`: ops per second, latency measured from the actual start.
    pub throttle: Option<f64>,
    pub pop: Population,
    pub col_size: SizeDist,
    pub col_count: usize,
    pub replication: Replication,
    pub keyspace: String,
    pub nodes: Vec<String>,
    pub port: u16,
    pub datacenter: Option<String>,
    pub log_file: Option<String>,
    pub log_interval: Duration,
    pub graph_file: Option<String>,
    pub graph_title: Option<String>,
    pub warmup: bool,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// The whole command line, for the report.
    pub argv: String,
}

pub const HELP: &str = "\
Usage: tessera-stress <command> [options] [-group options ...]

Commands (options follow the command word):
  write        insert rows into keyspace1.standard1 (prepared INSERT)
  read         read rows by partition key (prepared SELECT)
  mixed        ratio(write=1,read=3): interleave writes and reads by weight
  help         this text

Command options:
  n=N                  number of operations (suffixes k, m, b: n=1m)
  duration=T           run for a time instead (30s, 5m, 1h)
  cl=LEVEL             consistency: ONE, LOCAL_ONE (default), QUORUM, LOCAL_QUORUM, EACH_QUORUM,
                       ALL, TWO, THREE, ANY
  ratio(write=W,read=R)  mixed only (default write=1,read=1)
  no-warmup            skip the warm-up pass (default warm-up: min(n/4, 50000) ops, not recorded)

Option groups:
  -rate threads=N [fixed=R/s | throttle=R/s]
        threads = concurrent requests in flight (default 64). fixed= schedules ops at a
        constant rate and measures latency from each op's intended start time
        (coordinated-omission corrected); throttle= limits the rate without correcting.
  -pop seq=A..B | dist=UNIFORM(A..B) | dist=GAUSSIAN(A..B,STDVRNG) | dist=GAUSSIAN(A..B,MEAN,STDEV)
        partition key population (default: seq=1..N for write, GAUSSIAN(1..N,5) otherwise,
        N = n or 1000000)
  -col size=FIXED(S)|UNIFORM(A..B) n=FIXED(K)
        column value size in bytes (default FIXED(34)) and number of columns (default 5)
  -schema replication(factor=N) | replication(strategy=NetworkTopologyStrategy,dc1=3,dc2=3)
          keyspace=NAME
        keyspace created if missing (default SimpleStrategy, replication_factor 1, keyspace1)
  -node HOST[,HOST...]   contact points (default 127.0.0.1)
  -port native=P | P      native protocol port (default 9042)
  -datacenter DC          route to DC's replicas first (DC-aware, token-aware)
  -log file=F.json [interval=1s]  machine-readable result: config, intervals, summary
  -graph file=F.svg [title=T]     SVG plot: throughput and p50/p99/p99.9 latency over time
  -errors timeout=12s           client request timeout (default 12s)

Output: an interval line per second (total ops, op/s, pk/s, row/s, mean, med, .95, .99,
.999, max latency in ms, elapsed time, stderr of the mean op rate, errors), then the
Results summary. Errors are counted by kind; the exit status is 1 if any operation failed.
";

fn parse_count(s: &str) -> Result<u64, String> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1_000),
        Some('m') => (&s[..s.len() - 1], 1_000_000),
        Some('b') => (&s[..s.len() - 1], 1_000_000_000),
        _ => (&s[..], 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("bad count '{s}'"))
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("bad duration '{s}'"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1000.0,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("bad duration unit in '{s}' (use s, m, h, ms)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches("/s");
    let r = parse_count(t)? as f64;
    if r <= 0.0 {
        return Err(format!("rate must be positive: '{s}'"));
    }
    Ok(r)
}

/// `A..B` → (A, B).
fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected a range A..B, got '{s}'"))?;
    let (a, b) = (parse_count(a)?, parse_count(b)?);
    if a > b {
        return Err(format!("empty range '{s}'"));
    }
    Ok((a, b))
}

/// `NAME(args)` → (lowercase NAME, args).
fn call(s: &str) -> Option<(String, &str)> {
    let open = s.find('(')?;
    let inner = s[open + 1..].strip_suffix(')')?;
    Some((s[..open].trim().to_ascii_lowercase(), inner))
}

pub fn parse_population(s: &str) -> Result<Population, String> {
    let (key, val) = s.split_once('=').unwrap_or(("dist", s));
    match key.to_ascii_lowercase().as_str() {
        "seq" => {
            let (min, max) = parse_range(val)?;
            Ok(Population::Seq { min, max })
        }
        "dist" => {
            let (name, args) = call(val).ok_or_else(|| format!("bad distribution '{val}'"))?;
            let parts: Vec<&str> = args.split(',').map(str::trim).collect();
            let (min, max) = parse_range(parts[0])?;
            match name.as_str() {
                "uniform" => Ok(Population::Uniform { min, max }),
                "seq" => Ok(Population::Seq { min, max }),
                "gaussian" | "gauss" | "normal" | "norm" => {
                    let mean_default = (min as f64 + max as f64) / 2.0;
                    let (mean, stdev) = match parts.len() {
                        1 => (mean_default, (mean_default - min as f64) / 3.0),
                        2 => {
                            let r: f64 = parts[1]
                                .parse()
                                .map_err(|_| format!("bad stdvrng '{}'", parts[1]))?;
                            (mean_default, (mean_default - min as f64) / r)
                        }
                        3 => (
                            parts[1]
                                .parse()
                                .map_err(|_| format!("bad mean '{}'", parts[1]))?,
                            parts[2]
                                .parse()
                                .map_err(|_| format!("bad stdev '{}'", parts[2]))?,
                        ),
                        _ => return Err(format!("bad gaussian '{val}'")),
                    };
                    Ok(Population::Gaussian {
                        min,
                        max,
                        mean,
                        stdev,
                    })
                }
                other => Err(format!(
                    "unsupported distribution '{other}' (use seq, uniform, gaussian)"
                )),
            }
        }
        other => Err(format!("unknown -pop option '{other}'")),
    }
}

fn parse_size(s: &str) -> Result<SizeDist, String> {
    let (name, args) = call(s).ok_or_else(|| format!("bad size distribution '{s}'"))?;
    match name.as_str() {
        "fixed" => Ok(SizeDist::Fixed(parse_count(args)? as usize)),
        "uniform" => {
            let (a, b) = parse_range(args)?;
            Ok(SizeDist::Uniform(a as usize, b as usize))
        }
        other => Err(format!(
            "unsupported size distribution '{other}' (use FIXED or UNIFORM)"
        )),
    }
}

fn parse_replication(args: &str) -> Result<Replication, String> {
    let mut strategy = "SimpleStrategy".to_string();
    let mut factor = 1u32;
    let mut dcs = Vec::new();
    for kv in args.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("bad replication option '{kv}'"))?;
        match k {
            "strategy" | "class" => strategy = v.rsplit('.').next().unwrap_or(v).to_string(),
            "factor" | "replication_factor" => {
                factor = v.parse().map_err(|_| format!("bad factor '{v}'"))?
            }
            dc => dcs.push((
                dc.to_string(),
                v.parse()
                    .map_err(|_| format!("bad replication factor for {dc}: '{v}'"))?,
            )),
        }
    }
    match strategy.as_str() {
        "SimpleStrategy" => Ok(Replication::Simple { factor }),
        "NetworkTopologyStrategy" => {
            if dcs.is_empty() {
                return Err("NetworkTopologyStrategy needs dc=RF entries".into());
            }
            Ok(Replication::NetworkTopology { dcs })
        }
        other => Err(format!("unknown replication strategy '{other}'")),
    }
}

impl Settings {
    /// Parses `args` (without the program name). `Ok(None)` means `help` was asked for.
    pub fn parse(args: &[String]) -> Result<Option<Settings>, String> {
        let Some(command) = args.first() else {
            return Ok(None);
        };
        let command = command.to_ascii_lowercase();
        let base = match command.as_str() {
            "help" | "-h" | "--help" | "-help" => return Ok(None),
            "write" => vec![(OpKind::Write, 1)],
            "read" => vec![(OpKind::Read, 1)],
            "mixed" => vec![(OpKind::Write, 1), (OpKind::Read, 1)],
            other => {
                return Err(format!(
                    "unknown command '{other}' (write, read, mixed, help)"
                ))
            }
        };
        let mut s = Settings {
            command: command.clone(),
            ratio: base,
            stop: Stop::Count(0),
            cl: Cl::LocalOne,
            threads: 64,
            fixed_rate: None,
            throttle: None,
            pop: Population::Seq { min: 1, max: 1 },
            col_size: SizeDist::Fixed(34),
            col_count: 5,
            replication: Replication::Simple { factor: 1 },
            keyspace: "keyspace1".into(),
            nodes: vec!["127.0.0.1".into()],
            port: 9042,
            datacenter: None,
            log_file: None,
            log_interval: Duration::from_secs(1),
            graph_file: None,
            graph_title: None,
            warmup: true,
            request_timeout: Duration::from_secs(12),
            connect_timeout: Duration::from_secs(5),
            argv: args.join(" "),
        };
        let mut stop = None;
        let mut pop = None;

        // Split into the command's words and the option groups.
        let mut group = String::new();
        for word in &args[1..] {
            if let Some(g) = word.strip_prefix('-') {
                if !g.is_empty() && !g.starts_with(|c: char| c.is_ascii_digit()) {
                    group = g.to_ascii_lowercase();
                    continue;
                }
            }
            let lw = word.to_ascii_lowercase();
            let (key, val) = match word.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), v),
                None => (lw.clone(), ""),
            };
            match group.as_str() {
                "" => {
                    if let Some(("ratio", args)) =
                        call(word).as_ref().map(|(n, a)| (n.as_str(), *a))
                    {
                        if command != "mixed" {
                            return Err("ratio(...) is for the mixed command".into());
                        }
                        let mut r = Vec::new();
                        for kv in args.split(',').map(str::trim) {
                            let (k, v) = kv
                                .split_once('=')
                                .ok_or_else(|| format!("bad ratio entry '{kv}'"))?;
                            let kind = match k.to_ascii_lowercase().as_str() {
                                "write" | "insert" => OpKind::Write,
                                "read" | "simple1" => OpKind::Read,
                                other => return Err(format!("unknown op '{other}' in ratio")),
                            };
                            let w: u32 = v.parse().map_err(|_| format!("bad weight '{v}'"))?;
                            if w > 0 {
                                r.push((kind, w));
                            }
                        }
                        if r.is_empty() {
                            return Err("ratio(...) needs a positive weight".into());
                        }
                        s.ratio = r;
                        continue;
                    }
                    match key.as_str() {
                        "n" => stop = Some(Stop::Count(parse_count(val)?)),
                        "duration" => stop = Some(Stop::Duration(parse_duration(val)?)),
                        "cl" => s.cl = Cl::parse(val)?,
                        "no-warmup" => s.warmup = false,
                        "err<" | "n>" | "n<" => {}
                        _ => return Err(format!("unknown option '{word}' for {command}")),
                    }
                }
                "rate" => match key.as_str() {
                    "threads" => {
                        s.threads = parse_count(val)? as usize;
                        if s.threads == 0 {
                            return Err("threads must be at least 1".into());
                        }
                    }
                    "fixed" => s.fixed_rate = Some(parse_rate(val)?),
                    "throttle" => s.throttle = Some(parse_rate(val)?),
                    _ => return Err(format!("unknown -rate option '{word}'")),
                },
                "pop" => pop = Some(parse_population(word)?),
                "col" => match key.as_str() {
                    "size" => s.col_size = parse_size(val)?,
                    "n" => match parse_size(val)? {
                        SizeDist::Fixed(n) if n > 0 => s.col_count = n,
                        _ => return Err("-col n= takes FIXED(K) with K >= 1".into()),
                    },
                    _ => return Err(format!("unknown -col option '{word}'")),
                },
                "schema" => {
                    if let Some(("replication", a)) =
                        call(word).as_ref().map(|(n, a)| (n.as_str(), *a))
                    {
                        s.replication = parse_replication(a)?;
                    } else if key == "keyspace" {
                        s.keyspace = val.to_string();
                    } else {
                        return Err(format!("unknown -schema option '{word}'"));
                    }
                }
                "node" => {
                    let v = if key == "file" {
                        return Err("-node file= is not supported; list the nodes".into());
                    } else {
                        word.as_str()
                    };
                    s.nodes = v
                        .split(',')
                        .map(str::trim)
                        .filter(|x| !x.is_empty())
                        .map(String::from)
                        .collect();
                }
                "port" => {
                    let v = if key == "native" { val } else { word.as_str() };
                    s.port = v.parse().map_err(|_| format!("bad port '{word}'"))?;
                }
                "datacenter" => s.datacenter = Some(word.clone()),
                "log" => match key.as_str() {
                    "file" => s.log_file = Some(val.to_string()),
                    "interval" => s.log_interval = parse_duration(val)?,
                    "level" | "no-settings" | "no-summary" => {}
                    _ => return Err(format!("unknown -log option '{word}'")),
                },
                "graph" => match key.as_str() {
                    "file" => s.graph_file = Some(val.to_string()),
                    "title" => s.graph_title = Some(val.to_string()),
                    "revision" | "op" => {}
                    _ => return Err(format!("unknown -graph option '{word}'")),
                },
                "errors" => match key.as_str() {
                    "timeout" => s.request_timeout = parse_duration(val)?,
                    "ignore" | "retries" => {}
                    _ => return Err(format!("unknown -errors option '{word}'")),
                },
                "mode" => {} // native cql3 prepared is the only mode
                other => return Err(format!("unknown option group '-{other}'")),
            }
        }
        s.stop = stop.ok_or("give n=N or duration=T")?;
        if let Stop::Count(0) = s.stop {
            return Err("n must be at least 1".into());
        }
        if s.log_interval < Duration::from_millis(100) {
            return Err("-log interval must be at least 100ms".into());
        }
        let span = match s.stop {
            Stop::Count(n) => n,
            Stop::Duration(_) => 1_000_000,
        };
        s.pop = match pop {
            Some(p) => p,
            None if command == "write" => Population::Seq { min: 1, max: span },
            None => parse_population(&format!("dist=gaussian(1..{span},5)"))?,
        };
        if s.fixed_rate.is_some() && s.throttle.is_some() {
            return Err("give either fixed= or throttle=, not both".into());
        }
        Ok(Some(s))
    }

    pub fn uses_dc(&self) -> Option<&str> {
        self.datacenter.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Settings {
        let args: Vec<String> = s.split_whitespace().map(String::from).collect();
        Settings::parse(&args).unwrap().unwrap()
    }

    #[test]
    fn cassandra_stress_shapes() {
        let s = p("write n=100000 cl=LOCAL_QUORUM -rate threads=64 -node 127.0.0.61");
        assert_eq!(s.stop, Stop::Count(100000));
        assert_eq!(s.cl, Cl::LocalQuorum);
        assert_eq!(s.threads, 64);
        assert_eq!(s.nodes, vec!["127.0.0.61"]);
        assert_eq!(
            s.pop,
            Population::Seq {
                min: 1,
                max: 100000
            }
        );

        let s = p(
            "mixed ratio(write=1,read=3) duration=30s -pop dist=gaussian(1..1000000,5) \
                   -col size=FIXED(64) n=FIXED(5) -port native=9043 -datacenter dc1 \
                   -schema replication(strategy=NetworkTopologyStrategy,dc1=3,dc2=3) keyspace=ks",
        );
        assert_eq!(s.ratio, vec![(OpKind::Write, 1), (OpKind::Read, 3)]);
        assert_eq!(s.stop, Stop::Duration(Duration::from_secs(30)));
        assert!(matches!(
            s.pop,
            Population::Gaussian {
                min: 1,
                max: 1000000,
                ..
            }
        ));
        assert_eq!(s.col_size, SizeDist::Fixed(64));
        assert_eq!(s.port, 9043);
        assert_eq!(s.datacenter.as_deref(), Some("dc1"));
        assert_eq!(s.keyspace, "ks");
        assert_eq!(
            s.replication.cql_map(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': '3', 'dc2': '3'}"
        );

        let s =
            p("read n=1m -port 9044 -pop uniform(1..10) -rate threads=8 fixed=20000/s -node a,b");
        assert_eq!(s.stop, Stop::Count(1_000_000));
        assert_eq!(s.port, 9044);
        assert_eq!(s.pop, Population::Uniform { min: 1, max: 10 });
        assert_eq!(s.fixed_rate, Some(20000.0));
        assert_eq!(s.nodes, vec!["a", "b"]);
    }

    #[test]
    fn rejects_nonsense() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert!(Settings::parse(&args("write")).is_err());
        assert!(Settings::parse(&args("write n=10 bogus=1")).is_err());
        assert!(Settings::parse(&args("frobnicate n=1")).is_err());
        assert!(Settings::parse(&args("help")).unwrap().is_none());
    }
}
