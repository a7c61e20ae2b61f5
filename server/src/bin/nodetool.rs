//! `tessera-nodetool`: Cassandra's nodetool, over Tessera's admin HTTP API.
//!
//! `tessera-nodetool [-h HOST] [-p PORT] <command> [args]` (defaults
//! 127.0.0.1:10000). Each command is one request to a path documented in
//! `docs/admin-api.md`; output follows nodetool's layout. Exit status 0 on
//! success, 1 on any failure (unreachable node, error or missing handler),
//! with the reason on stderr.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use server::admin::client::{request, ClientResponse};
use server::admin::http::percent_encode;

const USAGE: &str =
    "usage: tessera-nodetool [(-h | --host) <host>] [(-p | --port) <port>] <command> [<args>]

Commands:
    version                          Print the node's release version
    info                             Print node information (uptime, load, ...)
    status [<keyspace>]              Print cluster information (state, load, host id, ...)
    ring [<keyspace>]                Print token ring information
    describecluster                  Print the cluster name, snitch, partitioner and schema versions
    flush [<keyspace> [<tables>...]] Flush memtables to SSTables
    compact [<keyspace> [<tables>...]] Force a major compaction
    getendpoints <keyspace> <table> <key>  Print the replicas of a partition key
    tablestats [<keyspace[.table]>...]     Print table statistics
    compactionstats                  Print running and pending compactions
    decommission                     Stream this node's data away and leave the ring
    rebuild [-ks <keyspace>] [--] [<src-dc-name>]
                                     Stream the data of this node's ranges from other replicas
                                     (from datacenter <src-dc-name> when given): the step that
                                     fills the nodes of a new datacenter
    removenode <host-id> | status    Remove a dead node from the ring, restoring the replicas
                                     of its ranges from the surviving ones; or show the removal
                                     in progress
    repair [-pr] [-full] [--] [<keyspace> [<tables>...]]
                                     Anti-entropy repair of the ranges this node replicates
                                     (-pr: only its primary ranges; repairs are always full)
    repair_admin cancel              Stop the repair running on this node
    shards                           Print per-shard runtime statistics (Tessera)
    help                             Print this help
";

/// A parsed invocation.
#[derive(Debug, PartialEq, Eq)]
struct Invocation {
    host: String,
    port: u16,
    command: String,
    args: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Invocation, String> {
    let mut host = "127.0.0.1".to_string();
    let mut port = 10000u16;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a, None),
        };
        match flag {
            "-h" | "--host" | "-p" | "--port" => {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| format!("option '{flag}' needs a value"))?
                    }
                };
                if flag.ends_with('h') || flag.ends_with("host") {
                    host = value;
                } else {
                    port = value
                        .parse()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| format!("invalid port '{value}'"))?;
                }
                i += 1;
            }
            "--help" => {
                return Ok(Invocation {
                    host,
                    port,
                    command: "help".into(),
                    args: vec![],
                })
            }
            f if f.starts_with('-') && f.len() > 1 => return Err(format!("unknown option '{f}'")),
            _ => {
                return Ok(Invocation {
                    host,
                    port,
                    command: a.to_string(),
                    args: args[i + 1..].to_vec(),
                })
            }
        }
    }
    Err("no command given".into())
}

/// Runs a command; returns what to print on stdout, or the error.
fn run(inv: &Invocation) -> Result<String, String> {
    let call = |method: &str, path: &str| -> Result<ClientResponse, String> {
        let r = request(&inv.host, inv.port, method, path, Duration::from_secs(3600))
            .map_err(|e| format!("Failed to connect to '{}:{}' - {e}.", inv.host, inv.port))?;
        if (200..300).contains(&r.status) {
            Ok(r)
        } else {
            Err(format!("{} (HTTP {})", r.error_message(), r.status))
        }
    };
    let get_json = |path: &str| -> Result<Value, String> {
        let r = call("GET", path)?;
        serde_json::from_str(&r.body).map_err(|e| format!("malformed answer from {path}: {e}"))
    };
    let args = &inv.args;
    let arity = |min: usize, max: usize| -> Result<(), String> {
        if args.len() < min || args.len() > max {
            Err(format!("wrong number of arguments for '{}'", inv.command))
        } else {
            Ok(())
        }
    };
    match inv.command.as_str() {
        "help" => Ok(USAGE.to_string()),
        "version" => {
            arity(0, 0)?;
            let v = get_json("/storage_service/release_version")?;
            Ok(format!("ReleaseVersion: {}\n", text(&v)))
        }
        "info" => {
            arity(0, 0)?;
            Ok(format_info(&get_json("/storage_service/info")?))
        }
        "status" | "ring" => {
            arity(0, 1)?;
            // With a keyspace, ownership is computed for its replication.
            let mut path = format!("/storage_service/{}", inv.command);
            if let Some(ks) = args.first() {
                path.push_str(&format!("?keyspace={}", percent_encode(ks)));
            }
            let v = get_json(&path)?;
            Ok(if inv.command == "status" {
                format_status(&v)
            } else {
                format_ring(&v)
            })
        }
        "describecluster" => {
            arity(0, 0)?;
            Ok(format_describecluster(&get_json(
                "/storage_service/describe_cluster",
            )?))
        }
        "flush" | "compact" => {
            let (all, per_ks) = if inv.command == "flush" {
                ("/storage_service/flush", "/storage_service/keyspace_flush")
            } else {
                (
                    "/storage_service/compact",
                    "/storage_service/keyspace_compaction",
                )
            };
            let path = match args.split_first() {
                None => all.to_string(),
                Some((ks, tables)) => {
                    let mut p = format!("{per_ks}/{}", percent_encode(ks));
                    if !tables.is_empty() {
                        let cf: Vec<String> = tables.iter().map(|t| percent_encode(t)).collect();
                        p.push_str(&format!("?cf={}", cf.join(",")));
                    }
                    p
                }
            };
            call("POST", &path)?;
            Ok(String::new())
        }
        "getendpoints" => {
            arity(3, 3)?;
            let path = format!(
                "/storage_service/natural_endpoints/{}?cf={}&key={}",
                percent_encode(&args[0]),
                percent_encode(&args[1]),
                percent_encode(&args[2])
            );
            let v = get_json(&path)?;
            let list = v.as_array().ok_or("malformed answer: expected a list")?;
            Ok(list.iter().map(|e| format!("{}\n", text(e))).collect())
        }
        "tablestats" | "cfstats" => Ok(format_tablestats(&get_json("/column_family/stats")?, args)),
        "compactionstats" => {
            arity(0, 0)?;
            Ok(format_compactionstats(
                &get_json("/compaction_manager/metrics/pending_tasks_by_table")?,
                &get_json("/compaction_manager/compactions")?,
            ))
        }
        "decommission" => {
            arity(0, 0)?;
            call("POST", "/storage_service/decommission")?;
            Ok(String::new())
        }
        "rebuild" => {
            let (ks, rest) = rebuild_args(args)?;
            let mut q = Vec::new();
            if let Some(ks) = ks {
                q.push(format!("keyspace={}", percent_encode(&ks)));
            }
            if let Some(dc) = rest {
                q.push(format!("source_dc={}", percent_encode(&dc)));
            }
            let path = if q.is_empty() {
                "/storage_service/rebuild".to_string()
            } else {
                format!("/storage_service/rebuild?{}", q.join("&"))
            };
            let v: Value = serde_json::from_str(&call("POST", &path)?.body)
                .map_err(|e| format!("malformed answer from {path}: {e}"))?;
            Ok(format!(
                "Rebuild streamed {} partitions of {} ranges in {} s\n",
                text(field(&v, "partitions")),
                text(field(&v, "ranges")),
                text(field(&v, "seconds"))
            ))
        }
        "removenode" => {
            arity(1, 1)?;
            match args[0].as_str() {
                "status" => {
                    let v = get_json("/storage_service/removal_status")?;
                    Ok(format!("RemovalStatus: {}\n", text(field(&v, "status"))))
                }
                "force" => Err(
                    "removenode force is not supported: run `removenode <host-id>` \
                     again (it restarts the removal)"
                        .into(),
                ),
                id => {
                    let path = format!(
                        "/storage_service/remove_node?host_id={}",
                        percent_encode(id)
                    );
                    let v: Value = serde_json::from_str(&call("POST", &path)?.body)
                        .map_err(|e| format!("malformed answer from {path}: {e}"))?;
                    Ok(format!(
                        "Removed {id}: streamed {} partitions of {} ranges in {} s\n",
                        text(field(&v, "partitions")),
                        text(field(&v, "ranges")),
                        text(field(&v, "seconds"))
                    ))
                }
            }
        }
        "repair" => {
            let (pr, names) = repair_args(args)?;
            let mut q = Vec::new();
            if let Some(ks) = names.first() {
                q.push(format!("keyspace={}", percent_encode(ks)));
            }
            if names.len() > 1 {
                let cfs: Vec<String> = names[1..].iter().map(|t| percent_encode(t)).collect();
                q.push(format!("cf={}", cfs.join(",")));
            }
            if pr {
                q.push("primary_range=true".into());
            }
            let mut path = "/storage_service/repair".to_string();
            if !q.is_empty() {
                path.push('?');
                path.push_str(&q.join("&"));
            }
            let v: Value = serde_json::from_str(&call("POST", &path)?.body)
                .map_err(|e| format!("malformed answer from {path}: {e}"))?;
            Ok(format_repair(&v, pr))
        }
        "repair_admin" => {
            arity(1, 1)?;
            if args[0] != "cancel" {
                return Err(format!("unknown repair_admin command '{}'", args[0]));
            }
            let v: Value = serde_json::from_str(
                &call("POST", "/storage_service/force_terminate_repair")?.body,
            )
            .map_err(|e| format!("malformed answer: {e}"))?;
            Ok(
                if v.get("terminated").and_then(Value::as_bool) == Some(true) {
                    "Repair terminating\n".to_string()
                } else {
                    "No repair running\n".to_string()
                },
            )
        }
        "shards" => {
            arity(0, 0)?;
            Ok(format_shards(&get_json("/system/shards")?))
        }
        other => Err(format!("unknown command '{other}'\n\n{USAGE}")),
    }
}

/// `rebuild` arguments: `[-ks|--keyspace KS] [--] [SOURCE_DC]`.
fn rebuild_args(args: &[String]) -> Result<(Option<String>, Option<String>), String> {
    let (mut ks, mut dc) = (None, None);
    let mut i = 0;
    let mut options = true;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "--" if options => options = false,
            "-ks" | "--keyspace" if options => {
                i += 1;
                ks = Some(
                    args.get(i)
                        .cloned()
                        .ok_or("option '-ks' needs a keyspace")?,
                );
            }
            f if options && f.starts_with("--keyspace=") => {
                ks = Some(f["--keyspace=".len()..].to_string());
            }
            f if options && f.starts_with('-') => {
                return Err(format!("unknown option '{f}' for rebuild"))
            }
            _ if dc.is_none() => dc = Some(a.to_string()),
            _ => return Err("rebuild takes at most one source datacenter".into()),
        }
        i += 1;
    }
    Ok((ks, dc))
}

/// `repair` arguments: `[-pr] [-full] [--] [KEYSPACE [TABLE...]]`.
fn repair_args(args: &[String]) -> Result<(bool, Vec<String>), String> {
    let (mut pr, mut names, mut options) = (false, Vec::new(), true);
    for a in args {
        match a.as_str() {
            "--" if options => options = false,
            "-pr" | "--partitioner-range" if options => pr = true,
            // Every repair here is a full one (there is no incremental repair).
            "-full" | "--full" if options => {}
            f if options && f.starts_with('-') => {
                return Err(format!("unknown option '{f}' for repair"))
            }
            n => names.push(n.to_string()),
        }
    }
    Ok((pr, names))
}

fn format_repair(v: &Value, pr: bool) -> String {
    let kss: Vec<String> = field(v, "keyspaces")
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    let mut out = String::new();
    for ks in &kss {
        out.push_str(&format!(
            "Repairing keyspace {ks} with repair options (parallelism: sequential, primary range: {pr}, incremental: false)\n"
        ));
    }
    out.push_str(&format!(
        "Ranges checked: {}, mismatched: {}; subranges synced: {}; partitions streamed: {} ({} s)\n",
        text(field(v, "ranges_checked")),
        text(field(v, "ranges_mismatched")),
        text(field(v, "subranges_synced")),
        text(field(v, "partitions_streamed")),
        text(field(v, "seconds"))
    ));
    out.push_str("Repair completed successfully\n");
    out
}

/// A JSON value as plain text (strings without quotes, null as "?").
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "?".to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&Value::Null)
}

/// Bytes as nodetool prints them (`FileUtils.stringifyFileSize`).
fn size(v: &Value) -> String {
    let Some(b) = v.as_f64() else {
        return "?".to_string();
    };
    const UNITS: [(&str, f64); 4] = [
        ("TiB", 1099511627776.0),
        ("GiB", 1073741824.0),
        ("MiB", 1048576.0),
        ("KiB", 1024.0),
    ];
    for (unit, n) in UNITS {
        if b >= n {
            return format!("{:.2} {unit}", b / n);
        }
    }
    format!("{b:.0} bytes")
}

fn percent(v: &Value) -> String {
    match v.as_f64() {
        Some(f) => format!("{:.1}%", f * 100.0),
        None => "?".to_string(),
    }
}

fn format_info(v: &Value) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<23}: {value}\n"));
    line("ID", text(field(v, "id")));
    line("Gossip active", text(field(v, "gossip_active")));
    line(
        "Native Transport active",
        text(field(v, "native_transport_active")),
    );
    if let Some(state) = field(v, "commitlog_state").as_str() {
        line("Commitlog", state.to_string());
    }
    if let Some(why) = field(v, "transports_stopped_reason").as_str() {
        line("Transports stopped", why.to_string());
    }
    line("Load", size(field(v, "load_bytes")));
    line("Generation No", text(field(v, "generation")));
    line("Uptime (seconds)", text(field(v, "uptime_seconds")));
    line(
        "Heap Memory (MB)",
        match field(v, "heap_memory_mb") {
            Value::Null => "n/a".to_string(),
            h => text(h),
        },
    );
    if let Some(b) = field(v, "off_heap_memory_bytes").as_f64() {
        line("Off Heap Memory (MB)", format!("{:.2}", b / 1048576.0));
    }
    line("Data Center", text(field(v, "data_center")));
    line("Rack", text(field(v, "rack")));
    line("Exceptions", text(field(v, "exceptions")));
    line("Shards", text(field(v, "shards")));
    let tokens = field(v, "num_tokens");
    line(
        "Token",
        format!(
            "(invoke with -T/--tokens to see all {} tokens)",
            text(tokens)
        ),
    );
    out
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn datacenters(v: &Value) -> &[Value] {
    field(v, "datacenters")
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn format_status(v: &Value) -> String {
    let mut out = String::new();
    for dc in datacenters(v) {
        let name = text(field(dc, "name"));
        out.push_str(&format!(
            "Datacenter: {name}\n{}\n",
            "=".repeat(12 + name.len())
        ));
        out.push_str("Status=Up/Down\n|/ State=Normal/Leaving/Joining/Moving\n");
        let mut rows = vec![
            ["--", "Address", "Load", "Tokens", "Owns", "Host ID", "Rack"]
                .map(String::from)
                .to_vec(),
        ];
        for n in field(dc, "nodes").as_array().into_iter().flatten() {
            rows.push(vec![
                format!("{}{}", text(field(n, "status")), text(field(n, "state"))),
                text(field(n, "address")),
                size(field(n, "load_bytes")),
                text(field(n, "tokens")),
                percent(field(n, "owns")),
                text(field(n, "host_id")),
                text(field(n, "rack")),
            ]);
        }
        out.push_str(&table(&rows));
        out.push('\n');
    }
    if let Some(note) = field(v, "note").as_str() {
        out.push_str(&format!("{note}\n"));
    }
    out
}

fn format_ring(v: &Value) -> String {
    let mut out = String::new();
    for dc in datacenters(v) {
        let name = text(field(dc, "name"));
        out.push_str(&format!("\nDatacenter: {name}\n==========\n"));
        let tokens = field(dc, "tokens").as_array().cloned().unwrap_or_default();
        let mut rows = vec![[
            "Address", "Rack", "Status", "State", "Load", "Owns", "Token",
        ]
        .map(String::from)
        .to_vec()];
        if let Some(last) = tokens.last() {
            rows.push(vec![
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                text(field(last, "token")),
            ]);
        }
        for t in &tokens {
            rows.push(vec![
                text(field(t, "address")),
                text(field(t, "rack")),
                text(field(t, "status")),
                text(field(t, "state")),
                size(field(t, "load_bytes")),
                percent(field(t, "owns")),
                text(field(t, "token")),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}

fn format_describecluster(v: &Value) -> String {
    let mut out = String::from("Cluster Information:\n");
    out.push_str(&format!("\tName: {}\n", text(field(v, "name"))));
    out.push_str(&format!("\tSnitch: {}\n", text(field(v, "snitch"))));
    out.push_str("\tDynamicEndPointSnitch: disabled\n");
    out.push_str(&format!(
        "\tPartitioner: {}\n",
        text(field(v, "partitioner"))
    ));
    out.push_str("\tSchema versions:\n");
    if let Some(map) = field(v, "schema_versions").as_object() {
        for (version, endpoints) in map {
            let eps: Vec<String> = endpoints
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            out.push_str(&format!("\t\t{version}: [{}]\n\n", eps.join(", ")));
        }
    }
    out
}

/// An object's statistics in nodetool's order (known keys first, in
/// [`KNOWN`] order, then the others by name), without `skip` keys.
fn ordered<'a>(
    obj: &'a serde_json::Map<String, Value>,
    skip: &[&str],
    table: bool,
) -> Vec<(&'a String, &'a Value)> {
    let mut v: Vec<_> = obj
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .collect();
    v.sort_by_key(|(k, _)| {
        // A table's pending flushes come after its latencies.
        let pos = if table && k.as_str() == "pending_flushes" {
            KNOWN
                .iter()
                .position(|(n, _)| *n == "local_write_latency_ms")
                .map(|p| p * 2 + 1)
        } else {
            KNOWN.iter().position(|(n, _)| n == k).map(|p| p * 2)
        };
        (pos.unwrap_or(usize::MAX), k.to_string())
    });
    v
}

/// Statistics keys and their nodetool labels, in nodetool's order.
const KNOWN: &[(&str, &str)] = &[
    ("read_count", "Read Count"),
    ("read_latency_ms", "Read Latency"),
    ("write_count", "Write Count"),
    ("write_latency_ms", "Write Latency"),
    ("pending_flushes", "Pending Flushes"),
    ("sstable_count", "SSTable count"),
    ("space_used_live", "Space used (live)"),
    ("space_used_total", "Space used (total)"),
    (
        "number_of_partitions_estimate",
        "Number of partitions (estimate)",
    ),
    ("memtable_cell_count", "Memtable cell count"),
    ("memtable_data_size", "Memtable data size"),
    ("memtable_switch_count", "Memtable switch count"),
    ("local_read_count", "Local read count"),
    ("local_read_latency_ms", "Local read latency"),
    ("local_write_count", "Local write count"),
    ("local_write_latency_ms", "Local write latency"),
    ("local_scan_count", "Local scan count"),
    ("local_scan_latency_ms", "Local scan latency"),
    ("compactions_pending", "Compactions pending"),
    ("compactions_running", "Compactions running"),
    ("compactions_completed", "Compactions completed"),
    (
        "bloom_filter_false_positives",
        "Bloom filter false positives",
    ),
    ("dropped_mutations", "Dropped Mutations"),
];

/// nodetool's label for a statistics key (`sstable_count` → `SSTable count`).
fn label(key: &str) -> String {
    if let Some((_, l)) = KNOWN.iter().find(|(k, _)| *k == key) {
        return l.to_string();
    }
    let mut s = key.replace('_', " ");
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    s
}

fn stat(key: &str, v: &Value) -> String {
    if key.ends_with("_latency_ms") {
        return match v.as_f64() {
            Some(f) => format!("{f:.3} ms"),
            None => "NaN ms".to_string(),
        };
    }
    text(v)
}

fn format_tablestats(v: &Value, filters: &[String]) -> String {
    let wanted = |ks: &str, table: Option<&str>| {
        filters.is_empty()
            || filters.iter().any(|f| match f.split_once('.') {
                Some((k, t)) => k == ks && table.is_none_or(|tb| tb == t),
                None => f == ks,
            })
    };
    let keyspaces = field(v, "keyspaces")
        .as_array()
        .cloned()
        .unwrap_or_default();
    let selected: Vec<&Value> = keyspaces
        .iter()
        .filter(|k| wanted(&text(field(k, "name")), None))
        .collect();
    let total: usize = selected
        .iter()
        .map(|k| field(k, "tables").as_array().map_or(0, Vec::len))
        .sum();
    let mut out = format!("Total number of tables: {total}\n----------------\n");
    for ks in selected {
        let name = text(field(ks, "name"));
        out.push_str(&format!("Keyspace : {name}\n"));
        if let Some(obj) = ks.as_object() {
            for (k, val) in ordered(obj, &["name", "tables"], false) {
                out.push_str(&format!("\t{}: {}\n", label(k), stat(k, val)));
            }
        }
        for t in field(ks, "tables").as_array().into_iter().flatten() {
            let tname = text(field(t, "name"));
            if !wanted(&name, Some(&tname)) {
                continue;
            }
            out.push_str(&format!("\t\tTable: {tname}\n"));
            if let Some(obj) = t.as_object() {
                for (k, val) in ordered(obj, &["name"], true) {
                    // nodetool says "Pending Flushes" per keyspace but
                    // "Pending flushes" per table.
                    let l = match k.as_str() {
                        "pending_flushes" => "Pending flushes".to_string(),
                        k => label(k),
                    };
                    out.push_str(&format!("\t\t{l}: {}\n", stat(k, val)));
                }
            }
            out.push('\n');
        }
        out.push_str("----------------\n");
    }
    out
}

/// `nodetool compactionstats`: pending tasks per table, then the running
/// compactions (Cassandra 4's layout).
fn format_compactionstats(pending: &Value, running: &Value) -> String {
    let pending = pending.as_array().cloned().unwrap_or_default();
    let total: u64 = pending
        .iter()
        .filter_map(|p| field(p, "task").as_u64())
        .sum();
    let mut out = format!("pending tasks: {total}\n");
    for p in &pending {
        let n = field(p, "task").as_u64().unwrap_or(0);
        if n > 0 {
            out.push_str(&format!(
                "- {}.{}: {n}\n",
                text(field(p, "ks")),
                text(field(p, "cf"))
            ));
        }
    }
    out.push('\n');
    let running = running.as_array().cloned().unwrap_or_default();
    if running.is_empty() {
        return out;
    }
    let mut rows = vec![[
        "id",
        "compaction type",
        "keyspace",
        "table",
        "completed",
        "total",
        "unit",
        "progress",
    ]
    .map(String::from)
    .to_vec()];
    for c in &running {
        let done = field(c, "completed").as_f64().unwrap_or(0.0);
        let total = field(c, "total").as_f64().unwrap_or(0.0);
        let progress = if total > 0.0 {
            format!("{:.2}%", done / total * 100.0)
        } else {
            "n/a".to_string()
        };
        rows.push(vec![
            text(field(c, "id")),
            text(field(c, "task_type")),
            text(field(c, "ks")),
            text(field(c, "cf")),
            text(field(c, "completed")),
            text(field(c, "total")),
            text(field(c, "unit")),
            progress,
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str("Active compaction remaining time :        n/a\n");
    out
}

fn format_shards(v: &Value) -> String {
    let mut rows = vec![[
        "Shard",
        "Received",
        "Processed",
        "Queued",
        "Capacity",
        "Full waits",
    ]
    .map(String::from)
    .to_vec()];
    for s in v.as_array().into_iter().flatten() {
        rows.push(
            [
                "shard",
                "messages_received",
                "messages_processed",
                "mailbox_queued",
                "mailbox_capacity",
                "mailbox_full_waits",
            ]
            .iter()
            .map(|k| text(field(s, k)))
            .collect(),
        );
    }
    table(&rows)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inv = match parse_args(&args) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("nodetool: {e}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    match run(&inv) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nodetool: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rebuild_and_repair_arguments() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            rebuild_args(&v(&["--", "dc1"])).unwrap(),
            (None, Some("dc1".into()))
        );
        assert_eq!(
            rebuild_args(&v(&["-ks", "ks1", "dc1"])).unwrap(),
            (Some("ks1".into()), Some("dc1".into()))
        );
        assert_eq!(rebuild_args(&v(&[])).unwrap(), (None, None));
        assert!(rebuild_args(&v(&["-x"])).is_err());
        assert!(rebuild_args(&v(&["-ks"])).is_err());
        assert!(rebuild_args(&v(&["dc1", "dc2"])).is_err());
        assert_eq!(
            repair_args(&v(&["-pr", "-full", "ks", "t1", "t2"])).unwrap(),
            (true, v(&["ks", "t1", "t2"]))
        );
        assert_eq!(
            repair_args(&v(&["--", "-odd"])).unwrap(),
            (false, v(&["-odd"]))
        );
        assert!(repair_args(&v(&["-inc"])).is_err());
        let out = format_repair(
            &serde_json::json!({"keyspaces": ["ks"], "ranges_checked": 3, "ranges_mismatched": 1,
                "subranges_synced": 2, "partitions_streamed": 7, "seconds": 0.5}),
            false,
        );
        assert!(out.contains("Repairing keyspace ks"), "{out}");
        assert!(
            out.contains(
                "Ranges checked: 3, mismatched: 1; subranges synced: 2; partitions streamed: 7"
            ),
            "{out}"
        );
        assert!(out.ends_with("Repair completed successfully\n"), "{out}");
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn argument_parsing() {
        let inv = parse_args(&args(&[
            "-h",
            "127.0.0.2",
            "-p",
            "10001",
            "flush",
            "ks",
            "t",
        ]))
        .unwrap();
        assert_eq!(
            inv,
            Invocation {
                host: "127.0.0.2".into(),
                port: 10001,
                command: "flush".into(),
                args: args(&["ks", "t"]),
            }
        );
        let inv = parse_args(&args(&["--port=9", "status"])).unwrap();
        assert_eq!((inv.port, inv.host.as_str()), (9, "127.0.0.1"));
        assert!(parse_args(&args(&["-p", "x", "status"])).is_err());
        assert!(parse_args(&args(&["-p"])).is_err());
        assert!(parse_args(&args(&[])).is_err());
        assert!(parse_args(&args(&["-x", "status"])).is_err());
    }

    #[test]
    fn status_looks_like_nodetool() {
        let v = json!({"datacenters": [{"name": "datacenter1", "nodes": [
            {"status": "U", "state": "N", "address": "127.0.0.1", "load_bytes": 1536,
             "tokens": 16, "owns": 1.0, "host_id": "6b1c6b4e-0000-4000-8000-000000000001",
             "rack": "rack1"},
            {"status": "D", "state": "N", "address": "127.0.0.2", "load_bytes": null,
             "tokens": 16, "owns": null, "host_id": "x", "rack": "rack1"}
        ]}]});
        let out = format_status(&v);
        assert!(
            out.starts_with("Datacenter: datacenter1\n=======================\n"),
            "{out}"
        );
        assert!(
            out.contains("--  Address    Load      Tokens  Owns    Host ID"),
            "{out}"
        );
        assert!(
            out.contains("UN  127.0.0.1  1.50 KiB  16      100.0%  6b1c6b4e"),
            "{out}"
        );
        assert!(out.contains("DN  127.0.0.2  ?         16      ?"), "{out}");
    }

    #[test]
    fn sizes_and_tablestats() {
        assert_eq!(size(&json!(0)), "0 bytes");
        assert_eq!(size(&json!(1048576)), "1.00 MiB");
        let v = json!({"keyspaces": [
            {"name": "ks", "read_count": 3, "read_latency_ms": 0.5,
             "tables": [{"name": "t1", "sstable_count": 2}, {"name": "t2", "sstable_count": 0}]},
            {"name": "other", "tables": [{"name": "x"}]}
        ]});
        let out = format_tablestats(&v, &args(&["ks.t1"]));
        assert!(out.starts_with("Total number of tables: 2\n"), "{out}");
        assert!(
            out.contains("Keyspace : ks\n\tRead Count: 3\n\tRead Latency: 0.500 ms\n"),
            "{out}"
        );
        assert!(
            out.contains("\t\tTable: t1\n\t\tSSTable count: 2\n"),
            "{out}"
        );
        assert!(!out.contains("t2") && !out.contains("other"), "{out}");
        let all = format_tablestats(&v, &[]);
        assert!(all.contains("Total number of tables: 3") && all.contains("Keyspace : other"));
    }

    #[test]
    fn compactionstats_looks_like_nodetool() {
        let pending = json!([{"ks": "ks", "cf": "t", "task": 1, "completed": 3},
                             {"ks": "ks", "cf": "u", "task": 0, "completed": 1}]);
        let running = json!([{"id": "0-7", "ks": "ks", "cf": "t", "task_type": "Compaction",
            "completed": 512, "total": 2048, "unit": "bytes"}]);
        let out = format_compactionstats(&pending, &running);
        assert!(out.starts_with("pending tasks: 1\n- ks.t: 1\n\n"), "{out}");
        assert!(!out.contains("ks.u"), "{out}");
        assert!(
            out.contains(
                "id   compaction type  keyspace  table  completed  total  unit   progress"
            ),
            "{out}"
        );
        assert!(
            out.contains("0-7  Compaction       ks        t      512        2048   bytes  25.00%"),
            "{out}"
        );
        let idle = format_compactionstats(&json!([]), &json!([]));
        assert_eq!(idle, "pending tasks: 0\n\n");
    }

    #[test]
    fn describecluster_and_ring() {
        let v = json!({"name": "Test Cluster", "snitch": "org.apache.cassandra.locator.SimpleSnitch",
            "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
            "schema_versions": {"59adb24e-f3cd-3e02-97f0-5b395827453f": ["127.0.0.1", "127.0.0.2"]}});
        let out = format_describecluster(&v);
        assert!(out.contains("\tName: Test Cluster\n"));
        assert!(out.contains("\t\t59adb24e-f3cd-3e02-97f0-5b395827453f: [127.0.0.1, 127.0.0.2]\n"));
        let v = json!({"datacenters": [{"name": "dc1", "tokens": [
            {"address": "127.0.0.1", "rack": "r1", "status": "Up", "state": "Normal",
             "load_bytes": 10, "owns": 0.5, "token": "-100"},
            {"address": "127.0.0.2", "rack": "r1", "status": "Up", "state": "Normal",
             "load_bytes": 10, "owns": 0.5, "token": "200"}]}]});
        let out = format_ring(&v);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "Datacenter: dc1");
        assert!(lines[3].starts_with("Address"), "{out}");
        assert!(lines[4].trim() == "200", "{out}");
        assert!(
            lines[5].starts_with("127.0.0.1  r1    Up      Normal  10 bytes  50.0%  -100"),
            "{out}"
        );
    }

    #[test]
    fn unreachable_node_is_an_error() {
        // Port 1 on localhost is closed.
        let inv = parse_args(&args(&["-p", "1", "version"])).unwrap();
        let err = run(&inv).unwrap_err();
        assert!(
            err.starts_with("Failed to connect to '127.0.0.1:1'"),
            "{err}"
        );
        let inv = parse_args(&args(&["frobnicate"])).unwrap();
        assert!(run(&inv).unwrap_err().contains("unknown command"));
    }
}
