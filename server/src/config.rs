//! Node configuration: `cassandra.yaml` keys, typed.
//!
//! A [`Config`] is built once in `main` by [`Config::from_args`] and passed to
//! every service that needs it. Sources, lowest precedence first:
//!
//! 1. built-in defaults (the values of a stock `cassandra.yaml`, and Tessera's
//!    own keys such as `smp` and `workdir`);
//! 2. the YAML file named by `--config FILE.yaml`;
//! 3. command-line flags: every key can be given as `--key-with-dashes VALUE`
//!    or `--key-with-dashes=VALUE` (underscores work too).
//!
//! Derived defaults are applied last, so they follow whatever was set:
//! `rpc_address`, `broadcast_address` and `api_address` default to
//! `listen_address`; `broadcast_rpc_address` to `rpc_address`; the data,
//! commitlog, hints and saved-caches directories live under `workdir`.
//!
//! Unknown YAML keys are reported in [`Config::warnings`] (the caller logs
//! them once logging is up); well-known `cassandra.yaml` keys that Tessera
//! does not implement are accepted and listed in [`Config::notes`]. Invalid
//! values are refused with a [`ConfigError`] naming the key and the value.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// The Tessera version reported by `--version`, `nodetool version` and
/// `system.local`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `commitlog_sync`: when the commitlog is fsynced relative to acknowledging writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitlogSync {
    /// Writes are acknowledged at once; the log is synced every
    /// `commitlog_sync_period_in_ms`.
    Periodic,
    /// Writes are acknowledged only after the log is synced; syncs are grouped
    /// within `commitlog_sync_batch_window_in_ms`.
    Batch,
}

impl fmt::Display for CommitlogSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommitlogSync::Periodic => "periodic",
            CommitlogSync::Batch => "batch",
        })
    }
}

/// `seed_provider`: the class name and its `seeds` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedProvider {
    /// The provider's class name (only `SimpleSeedProvider` semantics are implemented).
    pub class_name: String,
    /// The seed nodes' addresses, in the order given.
    pub seeds: Vec<IpAddr>,
}

/// The node's configuration. Field names are the `cassandra.yaml` keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `cluster_name`: nodes refuse to join a cluster with another name.
    pub cluster_name: String,
    /// `num_tokens`: vnodes per node.
    pub num_tokens: u32,
    /// `listen_address`: the internode address (never a wildcard).
    pub listen_address: IpAddr,
    /// `rpc_address`: the CQL listen address (defaults to `listen_address`).
    pub rpc_address: IpAddr,
    /// `broadcast_address`: the internode address told to other nodes.
    pub broadcast_address: IpAddr,
    /// `broadcast_rpc_address`: the CQL address told to drivers.
    pub broadcast_rpc_address: IpAddr,
    /// `native_transport_port`: CQL port (9042).
    pub native_transport_port: u16,
    /// `native_shard_aware_transport_port`: Scylla's shard-aware CQL port (19042).
    pub native_shard_aware_transport_port: u16,
    /// `storage_port`: internode port (7000).
    pub storage_port: u16,
    /// `api_address`: the admin HTTP endpoint's address (defaults to `listen_address`).
    pub api_address: IpAddr,
    /// `api_port`: the admin HTTP endpoint's port (10000).
    pub api_port: u16,
    /// `seed_provider`: where gossip finds the cluster.
    pub seed_provider: SeedProvider,
    /// `endpoint_snitch`: short class name, e.g. `SimpleSnitch`.
    pub endpoint_snitch: String,
    /// `data_file_directories`: where SSTables live.
    pub data_file_directories: Vec<PathBuf>,
    /// `commitlog_directory`.
    pub commitlog_directory: PathBuf,
    /// `hints_directory`.
    pub hints_directory: PathBuf,
    /// `saved_caches_directory`.
    pub saved_caches_directory: PathBuf,
    /// `commitlog_sync`.
    pub commitlog_sync: CommitlogSync,
    /// `commitlog_sync_period_in_ms` (periodic mode).
    pub commitlog_sync_period_in_ms: u64,
    /// `commitlog_sync_batch_window_in_ms` (batch mode; fractional values allowed).
    pub commitlog_sync_batch_window_in_ms: f64,
    /// `commitlog_segment_size_in_mb`.
    pub commitlog_segment_size_in_mb: u32,
    /// `commit_failure_policy`: `stop` (default), `stop_commit`, `die` or
    /// `ignore` (see `docs/commitlog-format.md`).
    pub commit_failure_policy: engine::commitlog::CommitFailurePolicy,
    /// `commitlog_total_space_in_mb`; `None` = automatic.
    pub commitlog_total_space_in_mb: Option<u64>,
    /// `memtable_heap_space_in_mb`; `None` = automatic.
    pub memtable_heap_space_in_mb: Option<u64>,
    /// `memtable_offheap_space_in_mb`; `None` = automatic.
    pub memtable_offheap_space_in_mb: Option<u64>,
    /// `file_cache_size_in_mb`: the SSTable block cache of the whole node
    /// (split evenly between shards); `None` = automatic (the memtable space).
    pub file_cache_size_in_mb: Option<u64>,
    /// `hinted_handoff_enabled`.
    pub hinted_handoff_enabled: bool,
    /// `max_hint_window_in_ms`: no hints are stored for a node down longer than this.
    pub max_hint_window_in_ms: u64,
    /// `maximum_timestamp_fail_threshold` (Cassandra 5 guardrail), in ms:
    /// writes timestamped further than this after now are refused.
    pub maximum_timestamp_fail_threshold_ms: Option<u64>,
    /// `minimum_timestamp_fail_threshold`, in ms: writes timestamped further
    /// than this before now are refused.
    pub minimum_timestamp_fail_threshold_ms: Option<u64>,
    /// `read_request_timeout_in_ms`.
    pub read_request_timeout_in_ms: u64,
    /// `write_request_timeout_in_ms`.
    pub write_request_timeout_in_ms: u64,
    /// `range_request_timeout_in_ms`.
    pub range_request_timeout_in_ms: u64,
    /// `counter_write_request_timeout_in_ms`.
    pub counter_write_request_timeout_in_ms: u64,
    /// `cas_contention_timeout_in_ms`.
    pub cas_contention_timeout_in_ms: u64,
    /// `truncate_request_timeout_in_ms`.
    pub truncate_request_timeout_in_ms: u64,
    /// `request_timeout_in_ms`: the default for other operations.
    pub request_timeout_in_ms: u64,
    /// `native_transport_max_frame_size_in_mb`.
    pub native_transport_max_frame_size_in_mb: u32,
    /// `native_transport_max_concurrent_connections`; -1 = unlimited.
    pub native_transport_max_concurrent_connections: i64,
    /// `authenticator`: `AllowAllAuthenticator` or `PasswordAuthenticator`.
    pub authenticator: String,
    /// `authorizer`: `AllowAllAuthorizer` or `CassandraAuthorizer`.
    pub authorizer: String,
    /// `partitioner`: always `org.apache.cassandra.dht.Murmur3Partitioner`.
    pub partitioner: String,
    /// `concurrent_compactors`; `None` = automatic.
    pub concurrent_compactors: Option<u32>,
    /// `compaction_throughput_mb_per_sec`; 0 = unthrottled.
    pub compaction_throughput_mb_per_sec: u32,
    /// Tessera: number of shards (default: number of cores).
    pub smp: usize,
    /// Tessera: directory holding the default data, commitlog, hints and caches directories.
    pub workdir: PathBuf,
    /// Tessera: log level (`error`, `warn`, `info`, `debug`, `trace`, `off`).
    pub log_level: log::LevelFilter,
    /// Tessera: how long an idle shard polls (spins) before it sleeps, in
    /// microseconds. Higher values cut cross-shard latency and burn CPU.
    pub shard_poll_window_in_us: u64,
    /// Scylla's `overprovisioned`: the node shares its CPUs with other
    /// processes (several test nodes on one machine), so shards are not
    /// pinned and do not spin while idle.
    pub overprovisioned: bool,
    /// `auto_bootstrap`: a new node that is not a seed streams the data of
    /// the ranges it takes before it serves them.
    pub auto_bootstrap: bool,
    /// Cassandra's `-Dcassandra.ring_delay_ms`: how long a joining or
    /// leaving node waits for the ring to settle in gossip.
    pub ring_delay_ms: u64,
    /// The YAML file given with `--config`, if any.
    pub config_file: Option<PathBuf>,
    /// Tessera: where `GossipingPropertyFileSnitch` reads `dc=`/`rack=`
    /// (default: `cassandra-rackdc.properties` beside the `--config` file,
    /// else in `workdir`).
    pub rackdc_properties: PathBuf,
    /// Unknown keys found while loading (logged as warnings by the caller).
    pub warnings: Vec<String>,
    /// Known `cassandra.yaml` keys that were accepted but are not implemented.
    pub notes: Vec<String>,
}

/// Why a configuration was refused (or `--help`/`--version` was asked for).
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// A key has a value that cannot be used.
    InvalidValue {
        /// The `cassandra.yaml` key.
        key: String,
        /// The value as given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A command-line option that is not a configuration key.
    UnknownOption(String),
    /// A command-line option given without its value.
    MissingValue(String),
    /// The YAML file could not be read or parsed.
    File {
        /// The file named by `--config`.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Two settings contradict each other.
    Conflict(String),
    /// `--help`: print this text on stdout and exit 0.
    Help(String),
    /// `--version`: print this text on stdout and exit 0.
    Version(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidValue { key, value, reason } => {
                write!(f, "invalid value '{value}' for '{key}': {reason}")
            }
            ConfigError::UnknownOption(o) => {
                write!(f, "unknown option '{o}' (see --help)")
            }
            ConfigError::MissingValue(o) => write!(f, "option '{o}' needs a value"),
            ConfigError::File { path, message } => {
                write!(
                    f,
                    "cannot load configuration file {}: {message}",
                    path.display()
                )
            }
            ConfigError::Conflict(m) => f.write_str(m),
            ConfigError::Help(t) | ConfigError::Version(t) => f.write_str(t),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A value as found in YAML or on the command line, before typing.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    /// A scalar (strings, numbers and booleans are all kept as text).
    Scalar(String),
    /// A sequence of scalars (`data_file_directories`).
    List(Vec<String>),
    /// `seed_provider`'s nested form: class name and seeds string.
    Seeds { class_name: String, seeds: String },
}

impl Raw {
    fn text(&self) -> String {
        match self {
            Raw::Scalar(s) => s.clone(),
            Raw::List(l) => l.join(","),
            Raw::Seeds { seeds, .. } => seeds.clone(),
        }
    }
}

/// Keys Tessera implements, with a short description for `--help`.
const KEYS: &[(&str, &str)] = &[
    ("cluster_name", "cluster name [Test Cluster]"),
    ("num_tokens", "vnodes per node [16]"),
    ("listen_address", "internode address [127.0.0.1]"),
    ("rpc_address", "CQL address [listen_address]"),
    (
        "broadcast_address",
        "address told to other nodes [listen_address]",
    ),
    (
        "broadcast_rpc_address",
        "CQL address told to drivers [rpc_address]",
    ),
    ("native_transport_port", "CQL port [9042]"),
    (
        "native_shard_aware_transport_port",
        "shard-aware CQL port [19042]",
    ),
    ("storage_port", "internode port [7000]"),
    ("api_address", "admin HTTP address [listen_address]"),
    ("api_port", "admin HTTP port [10000]"),
    ("seed_provider", "seeds; flag form: --seeds a,b [127.0.0.1]"),
    ("endpoint_snitch", "snitch [SimpleSnitch]"),
    (
        "data_file_directories",
        "SSTable directories, comma separated [WORKDIR/data]",
    ),
    ("commitlog_directory", "[WORKDIR/commitlog]"),
    ("hints_directory", "[WORKDIR/hints]"),
    ("saved_caches_directory", "[WORKDIR/saved_caches]"),
    ("commitlog_sync", "periodic | batch [periodic]"),
    ("commitlog_sync_period_in_ms", "[10000]"),
    ("commitlog_sync_batch_window_in_ms", "[2]"),
    ("commitlog_segment_size_in_mb", "[32]"),
    (
        "commit_failure_policy",
        "stop | stop_commit | die | ignore [stop]",
    ),
    ("commitlog_total_space_in_mb", "[automatic]"),
    ("memtable_heap_space_in_mb", "[automatic]"),
    ("memtable_offheap_space_in_mb", "[automatic]"),
    ("file_cache_size_in_mb", "[automatic]"),
    ("hinted_handoff_enabled", "[true]"),
    ("max_hint_window_in_ms", "[10800000]"),
    (
        "maximum_timestamp_fail_threshold",
        "refuse writes whose timestamp is further in the future, e.g. 1d [null: off]",
    ),
    (
        "minimum_timestamp_fail_threshold",
        "refuse writes whose timestamp is further in the past, e.g. 3650d [null: off]",
    ),
    ("read_request_timeout_in_ms", "[5000]"),
    ("write_request_timeout_in_ms", "[2000]"),
    ("range_request_timeout_in_ms", "[10000]"),
    ("counter_write_request_timeout_in_ms", "[5000]"),
    ("cas_contention_timeout_in_ms", "[1000]"),
    ("truncate_request_timeout_in_ms", "[60000]"),
    ("request_timeout_in_ms", "[10000]"),
    ("native_transport_max_frame_size_in_mb", "[16]"),
    (
        "native_transport_max_concurrent_connections",
        "-1 = unlimited [-1]",
    ),
    (
        "authenticator",
        "AllowAllAuthenticator | PasswordAuthenticator",
    ),
    ("authorizer", "AllowAllAuthorizer | CassandraAuthorizer"),
    ("partitioner", "only Murmur3Partitioner"),
    ("concurrent_compactors", "[automatic]"),
    ("compaction_throughput_mb_per_sec", "0 = unthrottled [64]"),
    ("smp", "Tessera: shard count [number of cores]"),
    ("workdir", "Tessera: base directory [./data]"),
    (
        "log_level",
        "Tessera: error|warn|info|debug|trace [info; env TESSERA_LOG]",
    ),
    (
        "shard_poll_window_in_us",
        "Tessera: idle shard spin before sleeping [200]",
    ),
    (
        "rackdc_properties",
        "Tessera: cassandra-rackdc.properties path [beside --config, else WORKDIR]",
    ),
    (
        "overprovisioned",
        "shared CPUs: no pinning, no idle spinning [false]",
    ),
    (
        "auto_bootstrap",
        "a new non-seed node streams its ranges before serving [true]",
    ),
    (
        "ring_delay_ms",
        "wait for the ring to settle when joining/leaving [30000]",
    ),
];

/// Well-known `cassandra.yaml` keys that are accepted and ignored.
const IGNORED_KEYS: &[&str] = &[
    "allocate_tokens_for_keyspace",
    "allocate_tokens_for_local_replication_factor",
    "audit_logging_options",
    "auto_snapshot",
    "back_pressure_enabled",
    "back_pressure_strategy",
    "batch_size_fail_threshold_in_kb",
    "batch_size_warn_threshold_in_kb",
    "batchlog_replay_throttle_in_kb",
    "cdc_enabled",
    "cdc_raw_directory",
    "client_encryption_options",
    "column_index_cache_size_in_kb",
    "column_index_size_in_kb",
    "commitlog_compression",
    "concurrent_counter_writes",
    "concurrent_materialized_view_writes",
    "concurrent_reads",
    "concurrent_writes",
    "counter_cache_save_period",
    "counter_cache_size_in_mb",
    "credentials_validity_in_ms",
    "cross_node_timeout",
    "disk_failure_policy",
    "disk_optimization_strategy",
    "dynamic_snitch_badness_threshold",
    "dynamic_snitch_reset_interval_in_ms",
    "dynamic_snitch_update_interval_in_ms",
    "enable_materialized_views",
    "enable_sasi_indexes",
    "enable_scripted_user_defined_functions",
    "enable_user_defined_functions",
    "enable_transient_replication",
    "full_query_logging_options",
    "gc_log_threshold_in_ms",
    "gc_warn_threshold_in_ms",
    "hinted_handoff_throttle_in_kb",
    "hints_compression",
    "hints_flush_period_in_ms",
    "incremental_backups",
    "index_summary_capacity_in_mb",
    "index_summary_resize_interval_in_minutes",
    "inter_dc_tcp_nodelay",
    "internode_compression",
    "key_cache_save_period",
    "key_cache_size_in_mb",
    "listen_interface",
    "listen_interface_prefer_ipv6",
    "listen_on_broadcast_address",
    "max_hints_delivery_threads",
    "max_hints_file_size_in_mb",
    "memtable_allocation_type",
    "memtable_flush_writers",
    "native_transport_allow_older_protocols",
    "native_transport_flush_in_batches_legacy",
    "native_transport_max_concurrent_connections_per_ip",
    "native_transport_max_threads",
    "native_transport_port_ssl",
    "network_authorizer",
    "permissions_validity_in_ms",
    "phi_convict_threshold",
    "prepared_statements_cache_size_mb",
    "repair_session_max_tree_depth",
    "role_manager",
    "roles_validity_in_ms",
    "row_cache_save_period",
    "row_cache_size_in_mb",
    "rpc_interface",
    "rpc_interface_prefer_ipv6",
    "rpc_keepalive",
    "server_encryption_options",
    "slow_query_log_timeout_in_ms",
    "snapshot_before_compaction",
    "snapshot_on_duplicate_row_detection",
    "ssl_storage_port",
    "sstable_preemptive_open_interval_in_mb",
    "start_native_transport",
    "start_rpc",
    "rpc_port",
    "thrift_framed_transport_size_in_mb",
    "thrift_prepared_statements_cache_size_mb",
    "tombstone_failure_threshold",
    "tombstone_warn_threshold",
    "tracetype_query_ttl",
    "tracetype_repair_ttl",
    "trickle_fsync",
    "trickle_fsync_interval_in_kb",
    "unlogged_batch_across_partitions_warn_threshold",
    "windows_timer_interval",
    // scylla.yaml keys commonly found in shared test configs
    "developer_mode",
    "experimental",
    "api_ui_dir",
    "api_doc_dir",
    "prometheus_port",
    "prometheus_address",
];

/// The unit a Cassandra 4.1 key's value is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// A duration, to milliseconds (`5000ms`, `5s`, `3h`).
    Millis,
    /// A size, to MiB (`32MiB`, `1GiB`).
    Mebibytes,
    /// A rate, to MiB/s (`64MiB/s`).
    MebibytesPerSecond,
}

/// Cassandra 4.1 renamed the `*_in_ms`/`*_in_mb` keys and gave their values
/// units (`read_request_timeout: 5000ms`). Both spellings are accepted.
const MODERN_KEYS: &[(&str, &str, Unit)] = &[
    (
        "commitlog_sync_period",
        "commitlog_sync_period_in_ms",
        Unit::Millis,
    ),
    (
        "commitlog_segment_size",
        "commitlog_segment_size_in_mb",
        Unit::Mebibytes,
    ),
    (
        "commitlog_total_space",
        "commitlog_total_space_in_mb",
        Unit::Mebibytes,
    ),
    (
        "memtable_heap_space",
        "memtable_heap_space_in_mb",
        Unit::Mebibytes,
    ),
    (
        "memtable_offheap_space",
        "memtable_offheap_space_in_mb",
        Unit::Mebibytes,
    ),
    ("file_cache_size", "file_cache_size_in_mb", Unit::Mebibytes),
    ("max_hint_window", "max_hint_window_in_ms", Unit::Millis),
    (
        "read_request_timeout",
        "read_request_timeout_in_ms",
        Unit::Millis,
    ),
    (
        "write_request_timeout",
        "write_request_timeout_in_ms",
        Unit::Millis,
    ),
    (
        "range_request_timeout",
        "range_request_timeout_in_ms",
        Unit::Millis,
    ),
    (
        "counter_write_request_timeout",
        "counter_write_request_timeout_in_ms",
        Unit::Millis,
    ),
    (
        "cas_contention_timeout",
        "cas_contention_timeout_in_ms",
        Unit::Millis,
    ),
    (
        "truncate_request_timeout",
        "truncate_request_timeout_in_ms",
        Unit::Millis,
    ),
    ("request_timeout", "request_timeout_in_ms", Unit::Millis),
    (
        "native_transport_max_frame_size",
        "native_transport_max_frame_size_in_mb",
        Unit::Mebibytes,
    ),
    (
        "compaction_throughput",
        "compaction_throughput_mb_per_sec",
        Unit::MebibytesPerSecond,
    ),
];

fn modern_key(key: &str) -> Option<(&'static str, Unit)> {
    MODERN_KEYS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, legacy, unit)| (*legacy, *unit))
}

/// Converts `5s` / `32MiB` / `64MiB/s` (or a bare number, already in the
/// target unit) to an integer in `unit`; refuses values that lose precision.
fn convert_unit(key: &str, value: &str, unit: Unit) -> Result<String, ConfigError> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, suffix) = (&v[..split], v[split..].trim());
    let n: u128 = number.parse().map_err(|_| {
        invalid(
            key,
            value,
            "expected a whole number with a unit, like 5000ms or 32MiB",
        )
    })?;
    // (suffix, numerator, denominator) relative to the target unit.
    let table: &[(&str, u128, u128)] = match unit {
        Unit::Millis => &[
            ("", 1, 1),
            ("ms", 1, 1),
            ("s", 1_000, 1),
            ("m", 60_000, 1),
            ("h", 3_600_000, 1),
            ("d", 86_400_000, 1),
            ("us", 1, 1_000),
            ("µs", 1, 1_000),
            ("ns", 1, 1_000_000),
        ],
        Unit::Mebibytes => &[
            ("", 1, 1),
            ("MiB", 1, 1),
            ("GiB", 1024, 1),
            ("KiB", 1, 1024),
            ("B", 1, 1 << 20),
        ],
        Unit::MebibytesPerSecond => &[
            ("", 1, 1),
            ("MiB/s", 1, 1),
            ("KiB/s", 1, 1024),
            ("B/s", 1, 1 << 20),
        ],
    };
    let Some((_, num, den)) = table.iter().find(|(s, _, _)| *s == suffix) else {
        let units: Vec<&str> = table
            .iter()
            .map(|(s, _, _)| *s)
            .filter(|s| !s.is_empty())
            .collect();
        return Err(invalid(
            key,
            value,
            &format!("unknown unit; expected one of {}", units.join(", ")),
        ));
    };
    let scaled = n * num;
    if !scaled.is_multiple_of(*den) {
        return Err(invalid(
            key,
            value,
            "cannot be expressed exactly in the key's unit (ms or MiB)",
        ));
    }
    Ok((scaled / den).to_string())
}

fn is_known(key: &str) -> bool {
    KEYS.iter().any(|(k, _)| *k == key)
}

/// The key/value pairs that were explicitly set, later sources overwriting
/// earlier ones.
#[derive(Debug, Default)]
struct Settings {
    values: BTreeMap<String, Raw>,
    config_file: Option<PathBuf>,
    warnings: Vec<String>,
    ignored: Vec<String>,
}

impl Settings {
    fn get(&self, key: &str) -> Option<&Raw> {
        self.values.get(key)
    }

    fn scalar(&self, key: &str) -> Option<String> {
        self.values.get(key).map(Raw::text)
    }

    fn int<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
    {
        match self.scalar(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<T>()
                .map_err(|_| invalid(key, &v, "expected an integer in range")),
        }
    }

    /// A Cassandra duration (`1d`, `12h`, `30s`, `500ms`; `null` or unset:
    /// none), in milliseconds.
    fn duration_ms(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.scalar(key) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() || v.trim() == "null" => Ok(None),
            Some(v) => convert_unit(key, &v, Unit::Millis)?
                .parse::<u64>()
                .map(Some)
                .map_err(|_| invalid(key, &v, "expected a duration like 1d or 12h")),
        }
    }

    fn opt_int<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.scalar(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|_| invalid(key, &v, "expected a non-negative integer")),
        }
    }

    fn port(&self, key: &str, default: u16) -> Result<u16, ConfigError> {
        match self.scalar(key) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(invalid(
                    key,
                    &v,
                    "expected a port number between 1 and 65535",
                )),
            },
        }
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.scalar(key) {
            None => Ok(default),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" => Ok(false),
                _ => Err(invalid(key, &v, "expected true or false")),
            },
        }
    }

    fn address(&self, key: &str) -> Result<Option<IpAddr>, ConfigError> {
        match self.scalar(key) {
            None => Ok(None),
            Some(v) => parse_address(&v)
                .map(Some)
                .map_err(|r| invalid(key, &v, &r)),
        }
    }

    fn path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        match self.scalar(key) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Err(invalid(key, &v, "expected a directory path")),
            Some(v) => Ok(Some(PathBuf::from(v.trim()))),
        }
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Parses an IP address, or resolves a host name (as Cassandra does).
fn parse_address(v: &str) -> Result<IpAddr, String> {
    let v = v.trim();
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Ok(ip);
    }
    if v.is_empty() || v.contains(char::is_whitespace) || v.contains(':') {
        return Err("expected an IP address or a host name".to_string());
    }
    match (v, 0u16).to_socket_addrs() {
        Ok(mut addrs) => {
            let all: Vec<_> = addrs.by_ref().collect();
            all.iter()
                .find(|a| a.is_ipv4())
                .or(all.first())
                .map(|a| a.ip())
                .ok_or_else(|| "host name does not resolve to an address".to_string())
        }
        Err(e) => Err(format!(
            "expected an IP address or a resolvable host name ({e})"
        )),
    }
}

/// Strips a Java package prefix: `org.apache.cassandra.locator.SimpleSnitch` → `SimpleSnitch`.
fn short_class(name: &str) -> &str {
    name.trim().rsplit('.').next().unwrap_or(name)
}

/// Converts a YAML scalar or list into a [`Raw`]; `None` for YAML null.
fn raw_from_yaml(key: &str, v: &serde_yaml::Value) -> Result<Option<Raw>, ConfigError> {
    use serde_yaml::Value;
    let scalar = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    match v {
        Value::Null => Ok(None),
        Value::Sequence(items) if key == "seed_provider" => {
            // - class_name: org.apache.cassandra.locator.SimpleSeedProvider
            //   parameters:
            //     - seeds: "127.0.0.1,127.0.0.2"
            let bad = || {
                invalid(
                    key,
                    &format!("{v:?}"),
                    "expected '- class_name: ...' with 'parameters: - seeds: \"a,b\"'",
                )
            };
            let first = items.first().ok_or_else(bad)?;
            let class_name = first
                .get("class_name")
                .and_then(scalar)
                .unwrap_or_else(|| "org.apache.cassandra.locator.SimpleSeedProvider".into());
            let params = first.get("parameters").ok_or_else(bad)?;
            let seeds = match params {
                Value::Sequence(ps) => ps.iter().find_map(|p| p.get("seeds").and_then(scalar)),
                Value::Mapping(_) => params.get("seeds").and_then(scalar),
                _ => None,
            }
            .ok_or_else(bad)?;
            Ok(Some(Raw::Seeds { class_name, seeds }))
        }
        Value::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                out.push(scalar(i).ok_or_else(|| {
                    invalid(key, &format!("{i:?}"), "expected a list of plain values")
                })?);
            }
            Ok(Some(Raw::List(out)))
        }
        other => match scalar(other) {
            Some(s) => Ok(Some(Raw::Scalar(s))),
            None if IGNORED_KEYS.contains(&key) || !is_known(key) => {
                // Nested values of keys we do not implement are fine.
                Ok(Some(Raw::Scalar(String::new())))
            }
            None => Err(invalid(
                key,
                &format!("{other:?}"),
                "expected a plain value",
            )),
        },
    }
}

/// Loads a YAML file into `settings`.
fn load_yaml(path: &Path, settings: &mut Settings) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    load_yaml_str(&text, path, settings)
}

fn load_yaml_str(text: &str, path: &Path, settings: &mut Settings) -> Result<(), ConfigError> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let map = match doc {
        serde_yaml::Value::Null => return Ok(()),
        serde_yaml::Value::Mapping(m) => m,
        _ => {
            return Err(ConfigError::File {
                path: path.to_path_buf(),
                message: "the top level must be a mapping of keys to values".into(),
            })
        }
    };
    let mut yaml_keys: Vec<&'static str> = Vec::new();
    for (k, v) in map {
        let key = match k {
            serde_yaml::Value::String(s) => s,
            other => {
                return Err(ConfigError::File {
                    path: path.to_path_buf(),
                    message: format!("key {other:?} is not a string"),
                })
            }
        };
        if let Some((legacy, unit)) = modern_key(&key) {
            if let Some(raw) = raw_from_yaml(&key, &v)? {
                let converted = convert_unit(&key, &raw.text(), unit)?;
                if yaml_keys.contains(&legacy) {
                    return Err(ConfigError::Conflict(format!(
                        "both '{key}' and '{legacy}' are set: keep one"
                    )));
                }
                yaml_keys.push(legacy);
                settings
                    .values
                    .insert(legacy.to_string(), Raw::Scalar(converted));
            }
        } else if is_known(&key) {
            if let Some(raw) = raw_from_yaml(&key, &v)? {
                if let Some(k) = KEYS.iter().map(|(k, _)| *k).find(|k| *k == key) {
                    if yaml_keys.contains(&k) {
                        return Err(ConfigError::Conflict(format!(
                            "both '{k}' and its Cassandra 4.1 name are set: keep one"
                        )));
                    }
                    yaml_keys.push(k);
                }
                settings.values.insert(key, raw);
            }
        } else if IGNORED_KEYS.contains(&key.as_str()) {
            settings.ignored.push(key);
        } else {
            settings
                .warnings
                .push(format!("unknown configuration key '{key}' ignored"));
        }
    }
    Ok(())
}

/// The `--help` text.
pub fn usage() -> String {
    let mut s = String::from(
        "Usage: tessera [--config FILE.yaml] [--KEY VALUE]...\n\n\
         Starts a Tessera node. Every cassandra.yaml key below can be given as a flag,\n\
         with dashes or underscores (--rpc-address 127.0.0.2, --native-transport-port=9142);\n\
         flags override the YAML file, which overrides the defaults. Cassandra 4.1 names\n\
         with units are accepted too (read_request_timeout: 5s, commitlog_segment_size: 32MiB).\n\n\
         Options:\n  \
         --config FILE        load cassandra.yaml-style settings from FILE\n  \
         --seeds A,B          seed addresses (seed_provider)\n  \
         --smp N              shard count\n  \
         --workdir DIR        base directory for data, commitlog, hints\n  \
         --log-level LEVEL    error|warn|info|debug|trace\n  \
         -h, --help           print this help\n  \
         --version            print the version\n\nKeys:\n",
    );
    for (k, d) in KEYS {
        s.push_str(&format!("  --{:<46} {d}\n", k.replace('_', "-")));
    }
    s
}

impl Default for Config {
    /// The configuration of a node started with no flags.
    fn default() -> Self {
        Config::from_settings(Settings::default()).expect("defaults are valid")
    }
}

impl Config {
    /// Builds the configuration from the command-line arguments (without the
    /// program name): defaults, then the `--config` YAML file, then flags.
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut config_file: Option<PathBuf> = None;
        let mut flags: Vec<(String, Raw)> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if arg == "-h" || arg == "--help" {
                return Err(ConfigError::Help(usage()));
            }
            if arg == "--version" || arg == "-v" {
                return Err(ConfigError::Version(format!("tessera {VERSION}")));
            }
            let Some(body) = arg.strip_prefix("--") else {
                return Err(ConfigError::UnknownOption(arg.clone()));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let key = name.replace('-', "_");
            let is_bool = key == "hinted_handoff_enabled"
                || key == "overprovisioned"
                || key == "auto_bootstrap";
            let value = match inline {
                Some(v) => v,
                None => {
                    let next = args.get(i);
                    let next_is_value = next.is_some_and(|n| !n.starts_with("--"));
                    if is_bool && !next.is_some_and(|n| parse_bool_literal(n)) {
                        "true".to_string()
                    } else if next_is_value {
                        i += 1;
                        next.cloned().unwrap_or_default()
                    } else {
                        return Err(ConfigError::MissingValue(arg.clone()));
                    }
                }
            };
            match key.as_str() {
                "config" => config_file = Some(PathBuf::from(value)),
                "seeds" => flags.push((
                    "seed_provider".into(),
                    Raw::Seeds {
                        class_name: "org.apache.cassandra.locator.SimpleSeedProvider".into(),
                        seeds: value,
                    },
                )),
                "data_file_directories" => flags.push((
                    key,
                    Raw::List(value.split(',').map(|s| s.trim().to_string()).collect()),
                )),
                k if is_known(k) => flags.push((key, Raw::Scalar(value))),
                k if modern_key(k).is_some() => {
                    let (legacy, unit) = modern_key(k).unwrap_or(("", Unit::Millis));
                    let converted = convert_unit(k, &value, unit)?;
                    flags.push((legacy.to_string(), Raw::Scalar(converted)));
                }
                k if IGNORED_KEYS.contains(&k) => {}
                _ => return Err(ConfigError::UnknownOption(format!("--{name}"))),
            }
        }
        let mut settings = Settings::default();
        if let Some(path) = &config_file {
            load_yaml(path, &mut settings)?;
        }
        for (k, v) in flags {
            settings.values.insert(k, v);
        }
        settings.config_file = config_file;
        Config::from_settings(settings)
    }

    /// Builds a configuration from YAML text alone (no flags). For tests and tools.
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        let mut settings = Settings::default();
        load_yaml_str(text, Path::new("<inline>"), &mut settings)?;
        Config::from_settings(settings)
    }

    fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);

        let listen_address = s.address("listen_address")?.unwrap_or(localhost);
        if listen_address.is_unspecified() {
            return Err(invalid(
                "listen_address",
                &listen_address.to_string(),
                "listen_address cannot be a wildcard address; set it to this node's own address",
            ));
        }
        let rpc_address = s.address("rpc_address")?.unwrap_or(listen_address);
        let broadcast_address = s.address("broadcast_address")?.unwrap_or(listen_address);
        if broadcast_address.is_unspecified() {
            return Err(invalid(
                "broadcast_address",
                &broadcast_address.to_string(),
                "broadcast_address cannot be a wildcard address",
            ));
        }
        let broadcast_rpc_address = match s.address("broadcast_rpc_address")? {
            Some(a) if a.is_unspecified() => {
                return Err(invalid(
                    "broadcast_rpc_address",
                    &a.to_string(),
                    "broadcast_rpc_address cannot be a wildcard address",
                ))
            }
            Some(a) => a,
            None if rpc_address.is_unspecified() => {
                return Err(ConfigError::Conflict(format!(
                    "rpc_address is the wildcard address {rpc_address}: set \
                     broadcast_rpc_address to an address drivers can reach"
                )))
            }
            None => rpc_address,
        };
        let api_address = s.address("api_address")?.unwrap_or(listen_address);

        let seed_provider = match s.get("seed_provider") {
            None => SeedProvider {
                class_name: "org.apache.cassandra.locator.SimpleSeedProvider".into(),
                seeds: vec![listen_address],
            },
            Some(raw) => {
                let (class_name, seeds_text) = match raw {
                    Raw::Seeds { class_name, seeds } => (class_name.clone(), seeds.clone()),
                    other => (
                        "org.apache.cassandra.locator.SimpleSeedProvider".to_string(),
                        other.text(),
                    ),
                };
                let mut seeds = Vec::new();
                for part in seeds_text
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                {
                    // Cassandra 4 allows host:port; the port is the storage port.
                    let host = match part.rsplit_once(':') {
                        Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => h,
                        _ => part,
                    };
                    let ip = parse_address(host)
                        .map_err(|r| invalid("seed_provider", part, &format!("seed: {r}")))?;
                    if !seeds.contains(&ip) {
                        seeds.push(ip);
                    }
                }
                if seeds.is_empty() {
                    return Err(invalid(
                        "seed_provider",
                        &seeds_text,
                        "at least one seed address is required",
                    ));
                }
                SeedProvider { class_name, seeds }
            }
        };

        let endpoint_snitch = match s.scalar("endpoint_snitch") {
            None => "SimpleSnitch".to_string(),
            Some(v) => {
                let short = short_class(&v);
                const SNITCHES: &[&str] = &[
                    "SimpleSnitch",
                    "GossipingPropertyFileSnitch",
                    "PropertyFileSnitch",
                    "RackInferringSnitch",
                ];
                if !SNITCHES.contains(&short) {
                    return Err(invalid(
                        "endpoint_snitch",
                        &v,
                        &format!("supported snitches: {}", SNITCHES.join(", ")),
                    ));
                }
                short.to_string()
            }
        };

        let commitlog_sync = match s.scalar("commitlog_sync") {
            None => CommitlogSync::Periodic,
            Some(v) => match v.trim() {
                "periodic" => CommitlogSync::Periodic,
                "batch" => CommitlogSync::Batch,
                _ => {
                    return Err(invalid(
                        "commitlog_sync",
                        &v,
                        "expected 'periodic' or 'batch'",
                    ))
                }
            },
        };
        let commit_failure_policy = match s.scalar("commit_failure_policy") {
            None => engine::commitlog::CommitFailurePolicy::default(),
            Some(v) => engine::commitlog::CommitFailurePolicy::parse(&v).ok_or_else(|| {
                invalid(
                    "commit_failure_policy",
                    &v,
                    "expected 'stop', 'stop_commit', 'die' or 'ignore'",
                )
            })?,
        };
        let commitlog_sync_batch_window_in_ms = match s.scalar("commitlog_sync_batch_window_in_ms")
        {
            None => 2.0,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => x,
                _ => {
                    return Err(invalid(
                        "commitlog_sync_batch_window_in_ms",
                        &v,
                        "expected a non-negative number of milliseconds",
                    ))
                }
            },
        };

        let authenticator = match s.scalar("authenticator") {
            None => "AllowAllAuthenticator".to_string(),
            Some(v) => match short_class(&v) {
                a @ ("AllowAllAuthenticator" | "PasswordAuthenticator") => a.to_string(),
                _ => {
                    return Err(invalid(
                        "authenticator",
                        &v,
                        "expected AllowAllAuthenticator or PasswordAuthenticator",
                    ))
                }
            },
        };
        let authorizer = match s.scalar("authorizer") {
            None => "AllowAllAuthorizer".to_string(),
            Some(v) => match short_class(&v) {
                a @ ("AllowAllAuthorizer" | "CassandraAuthorizer") => a.to_string(),
                _ => {
                    return Err(invalid(
                        "authorizer",
                        &v,
                        "expected AllowAllAuthorizer or CassandraAuthorizer",
                    ))
                }
            },
        };
        let partitioner = match s.scalar("partitioner") {
            None => "org.apache.cassandra.dht.Murmur3Partitioner".to_string(),
            Some(v) if short_class(&v) == "Murmur3Partitioner" => {
                "org.apache.cassandra.dht.Murmur3Partitioner".to_string()
            }
            Some(v) => {
                return Err(invalid(
                    "partitioner",
                    &v,
                    "only org.apache.cassandra.dht.Murmur3Partitioner is supported",
                ))
            }
        };

        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let smp = match s.scalar("smp") {
            None => cores,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => n,
                _ => return Err(invalid("smp", &v, "expected a shard count from 1 to 1024")),
            },
        };
        let workdir = s
            .path("workdir")?
            .unwrap_or_else(|| PathBuf::from("./data"));
        let rackdc_properties = match s.path("rackdc_properties")? {
            Some(p) => p,
            None => s
                .config_file
                .as_deref()
                .and_then(Path::parent)
                .map(|d| d.join("cassandra-rackdc.properties"))
                .unwrap_or_else(|| workdir.join("cassandra-rackdc.properties")),
        };
        let data_file_directories = match s.get("data_file_directories") {
            None => vec![workdir.join("data")],
            Some(raw) => {
                let list = match raw {
                    Raw::List(l) => l.clone(),
                    other => other
                        .text()
                        .split(',')
                        .map(|p| p.trim().to_string())
                        .collect(),
                };
                if list.is_empty() || list.iter().any(|p| p.trim().is_empty()) {
                    return Err(invalid(
                        "data_file_directories",
                        &raw.text(),
                        "expected one or more directory paths",
                    ));
                }
                list.into_iter().map(PathBuf::from).collect()
            }
        };
        let log_level = match s.scalar("log_level") {
            None => log::LevelFilter::Info,
            Some(v) => v.trim().parse::<log::LevelFilter>().map_err(|_| {
                invalid(
                    "log_level",
                    &v,
                    "expected off, error, warn, info, debug or trace",
                )
            })?,
        };

        let num_tokens = s.int::<u32>("num_tokens", 16)?;
        if num_tokens == 0 || num_tokens > 1536 {
            return Err(invalid(
                "num_tokens",
                &num_tokens.to_string(),
                "expected 1 to 1536 tokens",
            ));
        }
        let cluster_name = s
            .scalar("cluster_name")
            .unwrap_or_else(|| "Test Cluster".into());
        if cluster_name.trim().is_empty() {
            return Err(invalid("cluster_name", &cluster_name, "must not be empty"));
        }
        let commitlog_segment_size_in_mb = s.int::<u32>("commitlog_segment_size_in_mb", 32)?;
        if commitlog_segment_size_in_mb == 0 || commitlog_segment_size_in_mb > 2047 {
            return Err(invalid(
                "commitlog_segment_size_in_mb",
                &commitlog_segment_size_in_mb.to_string(),
                "expected 1 to 2047",
            ));
        }
        let native_transport_max_frame_size_in_mb =
            s.int::<u32>("native_transport_max_frame_size_in_mb", 16)?;
        if native_transport_max_frame_size_in_mb == 0
            || native_transport_max_frame_size_in_mb > 2047
        {
            return Err(invalid(
                "native_transport_max_frame_size_in_mb",
                &native_transport_max_frame_size_in_mb.to_string(),
                "expected 1 to 2047",
            ));
        }
        let native_transport_max_concurrent_connections =
            s.int::<i64>("native_transport_max_concurrent_connections", -1)?;
        if native_transport_max_concurrent_connections < -1 {
            return Err(invalid(
                "native_transport_max_concurrent_connections",
                &native_transport_max_concurrent_connections.to_string(),
                "expected -1 (unlimited) or a positive count",
            ));
        }

        let mut notes = Vec::new();
        if !s.ignored.is_empty() {
            notes.push(format!(
                "accepted but not implemented by Tessera: {}",
                s.ignored.join(", ")
            ));
        }

        Ok(Config {
            cluster_name,
            num_tokens,
            listen_address,
            rpc_address,
            broadcast_address,
            broadcast_rpc_address,
            native_transport_port: s.port("native_transport_port", 9042)?,
            native_shard_aware_transport_port: s
                .port("native_shard_aware_transport_port", 19042)?,
            storage_port: s.port("storage_port", 7000)?,
            api_address,
            api_port: s.port("api_port", 10000)?,
            seed_provider,
            endpoint_snitch,
            data_file_directories,
            commitlog_directory: s
                .path("commitlog_directory")?
                .unwrap_or_else(|| workdir.join("commitlog")),
            hints_directory: s
                .path("hints_directory")?
                .unwrap_or_else(|| workdir.join("hints")),
            saved_caches_directory: s
                .path("saved_caches_directory")?
                .unwrap_or_else(|| workdir.join("saved_caches")),
            commitlog_sync,
            commitlog_sync_period_in_ms: s.int("commitlog_sync_period_in_ms", 10_000)?,
            commitlog_sync_batch_window_in_ms,
            commitlog_segment_size_in_mb,
            commit_failure_policy,
            commitlog_total_space_in_mb: s.opt_int("commitlog_total_space_in_mb")?,
            memtable_heap_space_in_mb: s.opt_int("memtable_heap_space_in_mb")?,
            memtable_offheap_space_in_mb: s.opt_int("memtable_offheap_space_in_mb")?,
            file_cache_size_in_mb: s.opt_int("file_cache_size_in_mb")?,
            hinted_handoff_enabled: s.boolean("hinted_handoff_enabled", true)?,
            max_hint_window_in_ms: s.int("max_hint_window_in_ms", 10_800_000)?,
            maximum_timestamp_fail_threshold_ms: s
                .duration_ms("maximum_timestamp_fail_threshold")?,
            minimum_timestamp_fail_threshold_ms: s
                .duration_ms("minimum_timestamp_fail_threshold")?,
            read_request_timeout_in_ms: s.int("read_request_timeout_in_ms", 5_000)?,
            write_request_timeout_in_ms: s.int("write_request_timeout_in_ms", 2_000)?,
            range_request_timeout_in_ms: s.int("range_request_timeout_in_ms", 10_000)?,
            counter_write_request_timeout_in_ms: s
                .int("counter_write_request_timeout_in_ms", 5_000)?,
            cas_contention_timeout_in_ms: s.int("cas_contention_timeout_in_ms", 1_000)?,
            truncate_request_timeout_in_ms: s.int("truncate_request_timeout_in_ms", 60_000)?,
            request_timeout_in_ms: s.int("request_timeout_in_ms", 10_000)?,
            native_transport_max_frame_size_in_mb,
            native_transport_max_concurrent_connections,
            authenticator,
            authorizer,
            partitioner,
            concurrent_compactors: s.opt_int("concurrent_compactors")?,
            compaction_throughput_mb_per_sec: s.int("compaction_throughput_mb_per_sec", 64)?,
            smp,
            workdir,
            log_level,
            shard_poll_window_in_us: s.int("shard_poll_window_in_us", 200)?,
            overprovisioned: s.boolean("overprovisioned", false)?,
            auto_bootstrap: s.boolean("auto_bootstrap", true)?,
            ring_delay_ms: s.int("ring_delay_ms", 30_000)?,
            rackdc_properties,
            config_file: s.config_file.clone(),
            warnings: s.warnings,
            notes,
        })
    }

    /// Logs the warnings and notes collected while loading (call after logging is up).
    pub fn log_diagnostics(&self) {
        for w in &self.warnings {
            log::warn!("{w}");
        }
        for n in &self.notes {
            log::info!("{n}");
        }
    }

    /// A multi-line summary of the effective settings, for the startup log.
    pub fn summary(&self) -> String {
        let seeds: Vec<String> = self
            .seed_provider
            .seeds
            .iter()
            .map(|s| s.to_string())
            .collect();
        let dirs: Vec<String> = self
            .data_file_directories
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        format!(
            "cluster_name='{}' smp={} overprovisioned={} num_tokens={} partitioner={} endpoint_snitch={}\n\
             listen_address={} broadcast_address={} storage_port={} seeds={}\n\
             rpc_address={} broadcast_rpc_address={} native_transport_port={} \
             native_shard_aware_transport_port={} api={}:{}\n\
             data_file_directories=[{}] commitlog_directory={} hints_directory={}\n\
             commitlog_sync={} (period {} ms, batch window {} ms) segment={} MiB \
             commit_failure_policy={}\n\
             timeouts: read={} write={} range={} request={} ms; hinted_handoff_enabled={} \
             authenticator={}",
            self.cluster_name,
            self.smp,
            self.overprovisioned,
            self.num_tokens,
            self.partitioner,
            self.endpoint_snitch,
            self.listen_address,
            self.broadcast_address,
            self.storage_port,
            seeds.join(","),
            self.rpc_address,
            self.broadcast_rpc_address,
            self.native_transport_port,
            self.native_shard_aware_transport_port,
            self.api_address,
            self.api_port,
            dirs.join(","),
            self.commitlog_directory.display(),
            self.hints_directory.display(),
            self.commitlog_sync,
            self.commitlog_sync_period_in_ms,
            self.commitlog_sync_batch_window_in_ms,
            self.commitlog_segment_size_in_mb,
            self.commit_failure_policy,
            self.read_request_timeout_in_ms,
            self.write_request_timeout_in_ms,
            self.range_request_timeout_in_ms,
            self.request_timeout_in_ms,
            self.hinted_handoff_enabled,
            self.authenticator,
        )
    }

    /// Creates the data, commitlog, hints and saved-caches directories.
    pub fn create_directories(&self) -> std::io::Result<()> {
        let all = self.data_file_directories.iter().chain([
            &self.commitlog_directory,
            &self.hints_directory,
            &self.saved_caches_directory,
        ]);
        for dir in all {
            std::fs::create_dir_all(dir).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        Ok(())
    }
}

fn parse_bool_literal(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn write_yaml(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tessera-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cassandra.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_match_a_stock_node() {
        let c = Config::from_args(&[]).unwrap();
        assert_eq!(c.cluster_name, "Test Cluster");
        assert_eq!(c.num_tokens, 16);
        assert_eq!(c.listen_address, ip("127.0.0.1"));
        assert_eq!(c.rpc_address, ip("127.0.0.1"));
        assert_eq!(c.native_transport_port, 9042);
        assert_eq!(c.native_shard_aware_transport_port, 19042);
        assert_eq!(c.storage_port, 7000);
        assert_eq!(c.api_port, 10000);
        assert_eq!(c.commitlog_sync, CommitlogSync::Periodic);
        assert_eq!(
            c.commit_failure_policy,
            engine::commitlog::CommitFailurePolicy::Stop
        );
        assert_eq!(c.commitlog_sync_period_in_ms, 10_000);
        assert_eq!(c.read_request_timeout_in_ms, 5000);
        assert_eq!(c.write_request_timeout_in_ms, 2000);
        assert_eq!(c.max_hint_window_in_ms, 10_800_000);
        assert_eq!(c.data_file_directories, vec![PathBuf::from("./data/data")]);
        assert_eq!(c.commitlog_directory, PathBuf::from("./data/commitlog"));
        assert_eq!(c.hints_directory, PathBuf::from("./data/hints"));
        assert_eq!(c.seed_provider.seeds, vec![ip("127.0.0.1")]);
        assert!(c.smp >= 1);
        assert_eq!(c, Config::default());
    }

    #[test]
    fn precedence_defaults_then_yaml_then_flags() {
        let path = write_yaml(
            "prec",
            "cluster_name: 'Prod'\nlisten_address: 127.0.0.5\nnative_transport_port: 9100\n\
             storage_port: 7001\n",
        );
        let c = Config::from_args(&args(&[
            "--native-transport-port=9142",
            "--config",
            path.to_str().unwrap(),
            "--rpc-address",
            "127.0.0.2",
        ]))
        .unwrap();
        assert_eq!(c.cluster_name, "Prod"); // yaml over default
        assert_eq!(c.storage_port, 7001); // yaml
        assert_eq!(c.native_transport_port, 9142); // flag over yaml, even given before --config
        assert_eq!(c.listen_address, ip("127.0.0.5"));
        assert_eq!(c.rpc_address, ip("127.0.0.2")); // flag
        assert_eq!(c.broadcast_rpc_address, ip("127.0.0.2")); // derived from rpc_address
        assert_eq!(c.broadcast_address, ip("127.0.0.5")); // derived from listen_address
        assert_eq!(c.api_address, ip("127.0.0.5"));
        assert_eq!(c.seed_provider.seeds, vec![ip("127.0.0.5")]);
        assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
        assert_eq!(
            c.rackdc_properties,
            path.parent().unwrap().join("cassandra-rackdc.properties")
        );
        let c = Config::from_args(&args(&["--workdir", "/w"])).unwrap();
        assert_eq!(
            c.rackdc_properties,
            PathBuf::from("/w/cassandra-rackdc.properties")
        );
    }

    #[test]
    fn rpc_address_follows_listen_address_from_flags() {
        let c = Config::from_args(&args(&["--listen-address", "127.0.0.3"])).unwrap();
        assert_eq!(c.rpc_address, ip("127.0.0.3"));
        assert_eq!(c.api_address, ip("127.0.0.3"));
    }

    #[test]
    fn seed_provider_nested_yaml_form() {
        let c = Config::from_yaml_str(
            "seed_provider:\n  - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n    \
             parameters:\n      - seeds: \"127.0.0.1,127.0.0.2:7000\"\n",
        )
        .unwrap();
        assert_eq!(
            c.seed_provider.seeds,
            vec![ip("127.0.0.1"), ip("127.0.0.2")]
        );
        assert!(c.seed_provider.class_name.ends_with("SimpleSeedProvider"));
        let c = Config::from_args(&args(&["--seeds", "127.0.0.7, 127.0.0.8"])).unwrap();
        assert_eq!(
            c.seed_provider.seeds,
            vec![ip("127.0.0.7"), ip("127.0.0.8")]
        );
        let err = Config::from_yaml_str("seed_provider:\n  - class_name: X\n").unwrap_err();
        assert!(err.to_string().contains("seed_provider"), "{err}");
        let err = Config::from_args(&args(&["--seeds", "127.0.0.1,not an ip"])).unwrap_err();
        assert!(err.to_string().contains("not an ip"), "{err}");
    }

    #[test]
    fn workdir_defaults_and_explicit_directories() {
        let c = Config::from_args(&args(&["--workdir", "/tmp/w"])).unwrap();
        assert_eq!(c.data_file_directories, vec![PathBuf::from("/tmp/w/data")]);
        assert_eq!(c.commitlog_directory, PathBuf::from("/tmp/w/commitlog"));
        assert_eq!(c.hints_directory, PathBuf::from("/tmp/w/hints"));
        assert_eq!(
            c.saved_caches_directory,
            PathBuf::from("/tmp/w/saved_caches")
        );
        let c = Config::from_args(&args(&[
            "--workdir",
            "/tmp/w",
            "--commitlog-directory",
            "/nvme/cl",
            "--data-file-directories",
            "/d1,/d2",
        ]))
        .unwrap();
        assert_eq!(c.commitlog_directory, PathBuf::from("/nvme/cl"));
        assert_eq!(c.hints_directory, PathBuf::from("/tmp/w/hints"));
        assert_eq!(
            c.data_file_directories,
            vec![PathBuf::from("/d1"), PathBuf::from("/d2")]
        );
        let c = Config::from_yaml_str("data_file_directories:\n  - /a\n  - /b\nhints_directory:\n")
            .unwrap();
        assert_eq!(
            c.data_file_directories,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(c.hints_directory, PathBuf::from("./data/hints")); // null = unset
    }

    #[test]
    fn invalid_values_name_key_and_value() {
        let cases: &[(&[&str], &str, &str)] = &[
            (
                &["--native-transport-port", "90x"],
                "native_transport_port",
                "90x",
            ),
            (
                &["--native-transport-port=70000"],
                "native_transport_port",
                "70000",
            ),
            (
                &["--commitlog-sync", "sometimes"],
                "commitlog_sync",
                "sometimes",
            ),
            (&["--rpc-address", "300.1.1.1"], "rpc_address", "300.1.1.1"),
            (
                &["--commit-failure-policy", "halt"],
                "commit_failure_policy",
                "halt",
            ),
            (&["--smp", "0"], "smp", "0"),
            (
                &["--partitioner", "RandomPartitioner"],
                "partitioner",
                "RandomPartitioner",
            ),
            (
                &["--hinted-handoff-enabled=maybe"],
                "hinted_handoff_enabled",
                "maybe",
            ),
            (
                &["--listen-address", "0.0.0.0"],
                "listen_address",
                "0.0.0.0",
            ),
        ];
        for (a, key, value) in cases {
            match Config::from_args(&args(a)) {
                Err(ConfigError::InvalidValue {
                    key: k, value: v, ..
                }) => {
                    assert_eq!((k.as_str(), v.as_str()), (*key, *value), "{a:?}");
                }
                other => panic!("{a:?}: expected InvalidValue, got {other:?}"),
            }
        }
        let err = Config::from_args(&args(&["--rpc-address", "0.0.0.0"])).unwrap_err();
        assert!(matches!(err, ConfigError::Conflict(_)), "{err:?}");
        let ok = Config::from_args(&args(&[
            "--rpc-address",
            "0.0.0.0",
            "--broadcast-rpc-address",
            "127.0.0.1",
        ]))
        .unwrap();
        assert!(ok.rpc_address.is_unspecified());
        let err = Config::from_yaml_str("native_transport_port: abc\n").unwrap_err();
        assert!(err.to_string().contains("native_transport_port"), "{err}");
    }

    #[test]
    fn unknown_keys_warn_and_ignored_keys_are_quiet() {
        let c = Config::from_yaml_str(
            "frobnicate: 3\nconcurrent_reads: 32\nclient_encryption_options:\n  enabled: false\n",
        )
        .unwrap();
        assert_eq!(
            c.warnings,
            vec!["unknown configuration key 'frobnicate' ignored"]
        );
        assert_eq!(c.notes.len(), 1);
        assert!(c.notes[0].contains("concurrent_reads"));
        assert!(c.notes[0].contains("client_encryption_options"));
    }

    #[test]
    fn commit_failure_policy_from_yaml() {
        for (v, want) in [
            ("stop", engine::commitlog::CommitFailurePolicy::Stop),
            (
                "stop_commit",
                engine::commitlog::CommitFailurePolicy::StopCommit,
            ),
            ("die", engine::commitlog::CommitFailurePolicy::Die),
            ("ignore", engine::commitlog::CommitFailurePolicy::Ignore),
        ] {
            let c = Config::from_yaml_str(&format!("commit_failure_policy: {v}\n")).unwrap();
            assert_eq!(c.commit_failure_policy, want);
            assert!(c.notes.is_empty() && c.warnings.is_empty(), "{c:?}");
        }
    }

    #[test]
    fn cassandra_41_keys_with_units() {
        let c = Config::from_yaml_str(
            "read_request_timeout: 5s\nwrite_request_timeout: 1500ms\n\
             commitlog_segment_size: 1GiB\ncompaction_throughput: 1024KiB/s\n\
             max_hint_window: 3h\nnative_transport_max_frame_size: 16MiB\n",
        )
        .unwrap();
        assert_eq!(c.read_request_timeout_in_ms, 5000);
        assert_eq!(c.write_request_timeout_in_ms, 1500);
        assert_eq!(c.commitlog_segment_size_in_mb, 1024);
        assert_eq!(c.compaction_throughput_mb_per_sec, 1);
        assert_eq!(c.max_hint_window_in_ms, 10_800_000);
        assert_eq!(c.native_transport_max_frame_size_in_mb, 16);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = Config::from_args(&args(&["--read-request-timeout", "2s"])).unwrap();
        assert_eq!(c.read_request_timeout_in_ms, 2000);
        for (yaml, key) in [
            (
                "read_request_timeout: 5 fortnights\n",
                "read_request_timeout",
            ),
            ("read_request_timeout: 1500us\n", "read_request_timeout"),
            ("commitlog_segment_size: 32MB\n", "commitlog_segment_size"),
            ("request_timeout: -1ms\n", "request_timeout"),
        ] {
            match Config::from_yaml_str(yaml) {
                Err(ConfigError::InvalidValue { key: k, .. }) => assert_eq!(k, key, "{yaml}"),
                other => panic!("{yaml}: {other:?}"),
            }
        }
        let err =
            Config::from_yaml_str("read_request_timeout: 5s\nread_request_timeout_in_ms: 5000\n")
                .unwrap_err();
        assert!(matches!(err, ConfigError::Conflict(_)), "{err:?}");
    }

    #[test]
    fn command_line_errors() {
        assert!(matches!(
            Config::from_args(&args(&["--no-such-thing", "1"])),
            Err(ConfigError::UnknownOption(_))
        ));
        assert!(matches!(
            Config::from_args(&args(&["--storage-port"])),
            Err(ConfigError::MissingValue(_))
        ));
        assert!(matches!(
            Config::from_args(&args(&["--help"])),
            Err(ConfigError::Help(_))
        ));
        assert!(matches!(
            Config::from_args(&args(&["--version"])),
            Err(ConfigError::Version(_))
        ));
        assert!(matches!(
            Config::from_args(&args(&["--config", "/nonexistent/c.yaml"])),
            Err(ConfigError::File { .. })
        ));
        let path = write_yaml("bad", "listen_address: [unclosed\n");
        assert!(matches!(
            Config::from_args(&args(&["--config", path.to_str().unwrap()])),
            Err(ConfigError::File { .. })
        ));
    }

    #[test]
    fn typed_values_and_class_prefixes() {
        let c = Config::from_args(&args(&[
            "--endpoint-snitch",
            "org.apache.cassandra.locator.GossipingPropertyFileSnitch",
            "--commitlog_sync",
            "batch",
            "--commitlog-sync-batch-window-in-ms",
            "0.5",
            "--hinted-handoff-enabled",
            "false",
            "--smp",
            "3",
            "--native-transport-max-concurrent-connections",
            "100",
            "--log-level",
            "debug",
        ]))
        .unwrap();
        assert_eq!(c.endpoint_snitch, "GossipingPropertyFileSnitch");
        assert_eq!(c.commitlog_sync, CommitlogSync::Batch);
        assert_eq!(c.commitlog_sync_batch_window_in_ms, 0.5);
        assert!(!c.hinted_handoff_enabled);
        assert_eq!(c.smp, 3);
        assert_eq!(c.native_transport_max_concurrent_connections, 100);
        assert_eq!(c.log_level, log::LevelFilter::Debug);
        // A bare boolean flag means true.
        let c = Config::from_args(&args(&["--hinted-handoff-enabled", "--smp", "1"])).unwrap();
        assert!(c.hinted_handoff_enabled);
        assert_eq!(c.smp, 1);
        let c = Config::from_args(&args(&["--overprovisioned"])).unwrap();
        assert!(c.overprovisioned);
        assert!(!Config::default().overprovisioned);
    }

    #[test]
    fn timestamp_guardrails_are_durations() {
        let c = Config::from_args(&[]).unwrap();
        assert_eq!(c.maximum_timestamp_fail_threshold_ms, None);
        assert_eq!(c.minimum_timestamp_fail_threshold_ms, None);
        let c = Config::from_yaml_str(
            "maximum_timestamp_fail_threshold: 1d\nminimum_timestamp_fail_threshold: null\n",
        )
        .unwrap();
        assert_eq!(c.maximum_timestamp_fail_threshold_ms, Some(86_400_000));
        assert_eq!(c.minimum_timestamp_fail_threshold_ms, None);
        let c = Config::from_args(&args(&["--minimum-timestamp-fail-threshold", "12h"])).unwrap();
        assert_eq!(c.minimum_timestamp_fail_threshold_ms, Some(43_200_000));
        match Config::from_yaml_str("maximum_timestamp_fail_threshold: 3 moons\n") {
            Err(ConfigError::InvalidValue { key, .. }) => {
                assert_eq!(key, "maximum_timestamp_fail_threshold")
            }
            other => panic!("{other:?}"),
        }
    }
}
