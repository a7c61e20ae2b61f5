//! `WITH` properties of `CREATE/ALTER KEYSPACE` and `CREATE/ALTER TABLE`:
//! parsing, Cassandra 4.0's normalisation (full class names, defaults) and
//! validation with Cassandra's messages and error classes.

use std::collections::BTreeMap;

use crate::cql3::ast::{Literal, Property, PropertyValue};

use super::digest;
use super::types::java_double;
use super::{SchemaError, TableOptions, Uuid};

/// A property value: a constant rendered as text, or a map of texts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PropValue {
    Simple(String),
    Map(BTreeMap<String, String>),
}

/// A constant as Cassandra's property parser sees it (its text).
pub(crate) fn literal_text(l: &Literal) -> String {
    match l {
        Literal::String(s) => s.clone(),
        Literal::Integer(s) | Literal::Float(s) | Literal::Uuid(s) | Literal::Duration(s) => {
            s.clone()
        }
        Literal::Boolean(b) => b.to_string(),
        Literal::Blob(b) => format!("0x{}", digest::to_hex(b)),
        Literal::Null => "null".to_string(),
    }
}

/// Collects properties by name (`Multiple definition for property 'x'`).
pub(crate) fn collect(props: &[Property]) -> Result<BTreeMap<String, PropValue>, SchemaError> {
    let mut out = BTreeMap::new();
    for p in props {
        let v = match &p.value {
            PropertyValue::Constant(l) => PropValue::Simple(literal_text(l)),
            PropertyValue::Map(pairs) => PropValue::Map(
                pairs
                    .iter()
                    .map(|(k, v)| (literal_text(k), literal_text(v)))
                    .collect(),
            ),
        };
        if out.insert(p.name.clone(), v).is_some() {
            return Err(SchemaError::Syntax(format!(
                "Multiple definition for property '{}'",
                p.name
            )));
        }
    }
    Ok(out)
}

/// Rejects properties outside `valid` (`Unknown property 'x'`, a syntax error).
pub(crate) fn check_known(
    props: &BTreeMap<String, PropValue>,
    valid: &[&str],
) -> Result<(), SchemaError> {
    for name in props.keys() {
        if !valid.contains(&name.as_str()) {
            return Err(SchemaError::Syntax(format!("Unknown property '{name}'")));
        }
    }
    Ok(())
}

pub(crate) fn get_simple<'a>(
    props: &'a BTreeMap<String, PropValue>,
    name: &str,
) -> Result<Option<&'a str>, SchemaError> {
    match props.get(name) {
        None => Ok(None),
        Some(PropValue::Simple(s)) => Ok(Some(s)),
        Some(PropValue::Map(_)) => Err(SchemaError::Syntax(format!(
            "Invalid value for property '{name}'. It should be a string"
        ))),
    }
}

pub(crate) fn get_map<'a>(
    props: &'a BTreeMap<String, PropValue>,
    name: &str,
) -> Result<Option<&'a BTreeMap<String, String>>, SchemaError> {
    match props.get(name) {
        None => Ok(None),
        Some(PropValue::Map(m)) => Ok(Some(m)),
        Some(PropValue::Simple(_)) => Err(SchemaError::Syntax(format!(
            "Invalid value for property '{name}'. It should be a map."
        ))),
    }
}

/// `PropertyDefinitions.getBoolean`: `1`, `true`, `yes` (any case) are true.
pub(crate) fn parse_bool(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

fn get_int(props: &BTreeMap<String, PropValue>, name: &str) -> Result<Option<i32>, SchemaError> {
    get_simple(props, name)?
        .map(|v| {
            v.parse::<i32>()
                .map_err(|_| SchemaError::Syntax(format!("Invalid integer value {v} for '{name}'")))
        })
        .transpose()
}

fn get_double(props: &BTreeMap<String, PropValue>, name: &str) -> Result<Option<f64>, SchemaError> {
    get_simple(props, name)?
        .map(|v| {
            parse_java_double(v).ok_or_else(|| {
                SchemaError::Syntax(format!("Invalid double value {v} for '{name}'"))
            })
        })
        .transpose()
}

fn parse_java_double(s: &str) -> Option<f64> {
    let t = s.trim();
    let t = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ if t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            t.parse().ok()
        }
        _ => None,
    }
}

fn config(msg: String) -> SchemaError {
    SchemaError::Config(msg)
}

/// Table properties valid in Cassandra 4.0 (`TableParams.Option` + `id`).
pub(crate) const TABLE_PROPERTIES: &[&str] = &[
    "additional_write_policy",
    "bloom_filter_fp_chance",
    "caching",
    "cdc",
    "comment",
    "compaction",
    "compression",
    "crc_check_chance",
    "default_time_to_live",
    "extensions",
    "gc_grace_seconds",
    "max_index_interval",
    "memtable_flush_period_in_ms",
    "min_index_interval",
    "read_repair",
    "speculative_retry",
    "id",
];

/// `Attributes.MAX_TTL`: 20 years.
pub(crate) const MAX_TTL: i32 = 630_720_000;

/// Applies table properties over `base` (defaults for CREATE, the current
/// options for ALTER) and validates the result (`TableParams.validate`).
/// Returns the options and the `id` property if given.
pub(crate) fn table_options(
    base: &TableOptions,
    props: &[Property],
) -> Result<(TableOptions, Option<Uuid>), SchemaError> {
    let props = collect(props)?;
    check_known(&props, TABLE_PROPERTIES)?;
    let mut o = base.clone();

    let id = match get_simple(&props, "id")? {
        Some(s) => {
            Some(digest::parse_uuid(s).ok_or_else(|| config("Invalid table id".to_string()))?)
        }
        None => None,
    };
    if let Some(v) = get_double(&props, "bloom_filter_fp_chance")? {
        o.bloom_filter_fp_chance = v;
    }
    if let Some(m) = get_map(&props, "caching")? {
        o.caching = caching(m)?;
    }
    if let Some(v) = get_simple(&props, "comment")? {
        o.comment = v.to_string();
    }
    if let Some(m) = get_map(&props, "compaction")? {
        o.compaction = compaction(m)?;
    }
    if let Some(m) = get_map(&props, "compression")? {
        o.compression = compression(m)?;
    }
    if let Some(v) = get_int(&props, "default_time_to_live")? {
        o.default_time_to_live = v;
    }
    if let Some(v) = get_int(&props, "gc_grace_seconds")? {
        o.gc_grace_seconds = v;
    }
    if let Some(v) = get_int(&props, "max_index_interval")? {
        o.max_index_interval = v;
    }
    if let Some(v) = get_int(&props, "memtable_flush_period_in_ms")? {
        o.memtable_flush_period_in_ms = v;
    }
    if let Some(v) = get_int(&props, "min_index_interval")? {
        o.min_index_interval = v;
    }
    if let Some(v) = get_simple(&props, "speculative_retry")? {
        o.speculative_retry = speculative_retry(v)?;
    }
    if let Some(v) = get_simple(&props, "additional_write_policy")? {
        o.additional_write_policy = speculative_retry(v)?;
    }
    if let Some(v) = get_double(&props, "crc_check_chance")? {
        o.crc_check_chance = v;
    }
    if let Some(v) = get_simple(&props, "cdc")? {
        o.cdc = parse_bool(v);
    }
    if let Some(v) = get_simple(&props, "read_repair")? {
        o.read_repair = match v.to_ascii_uppercase().as_str() {
            "BLOCKING" => "BLOCKING".to_string(),
            "NONE" => "NONE".to_string(),
            _ => {
                return Err(config(format!(
                    "Invalid value {v} for option 'read_repair'"
                )))
            }
        };
    }
    if let Some(m) = get_map(&props, "extensions")? {
        o.extensions = m
            .iter()
            .map(|(k, v)| {
                let bytes = v
                    .strip_prefix("0x")
                    .and_then(digest::from_hex)
                    .unwrap_or_else(|| v.as_bytes().to_vec());
                (k.clone(), bytes)
            })
            .collect();
    }
    validate(&o)?;
    Ok((o, id))
}

/// Cassandra's `BloomCalculations.minSupportedBloomFilterFpChance()`.
const MIN_BLOOM_FP_CHANCE: f64 = 6.71e-5;

fn validate(o: &TableOptions) -> Result<(), SchemaError> {
    let f = o.bloom_filter_fp_chance;
    if f <= MIN_BLOOM_FP_CHANCE || f > 1.0 {
        return Err(config(format!(
            "bloom_filter_fp_chance must be larger than {} and less than or equal to 1.0 (got {})",
            java_double(MIN_BLOOM_FP_CHANCE),
            java_double(f)
        )));
    }
    let c = o.crc_check_chance;
    if !(0.0..=1.0).contains(&c) {
        return Err(config(format!(
            "crc_check_chance must be larger than or equal to 0 and smaller than or equal to 1.0 (got {})",
            java_double(c)
        )));
    }
    if o.default_time_to_live < 0 {
        return Err(config(format!(
            "default_time_to_live must be greater than or equal to 0 (got {})",
            o.default_time_to_live
        )));
    }
    if o.default_time_to_live > MAX_TTL {
        return Err(config(format!(
            "default_time_to_live must be less than or equal to {MAX_TTL} (got {})",
            o.default_time_to_live
        )));
    }
    if o.gc_grace_seconds < 0 {
        return Err(config(format!(
            "gc_grace_seconds must be greater than or equal to 0 (got {})",
            o.gc_grace_seconds
        )));
    }
    if o.min_index_interval < 1 {
        return Err(config(format!(
            "min_index_interval must be greater than or equal to 1 (got {})",
            o.min_index_interval
        )));
    }
    if o.max_index_interval < o.min_index_interval {
        return Err(config(format!(
            "max_index_interval must be greater than or equal to min_index_interval ({}) (got {})",
            o.min_index_interval, o.max_index_interval
        )));
    }
    if o.memtable_flush_period_in_ms < 0 {
        return Err(config(format!(
            "memtable_flush_period_in_ms must be greater than or equal to 0 (got {})",
            o.memtable_flush_period_in_ms
        )));
    }
    Ok(())
}

/// `CachingParams.fromMap`.
fn caching(m: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, SchemaError> {
    let mut out = TableOptions::default().caching;
    for (k, v) in m {
        match k.as_str() {
            "keys" => {
                let u = v.to_ascii_uppercase();
                if u != "ALL" && u != "NONE" {
                    return Err(config(format!(
                        "Invalid value '{v}' for caching sub-option 'keys': only 'ALL' and 'NONE' are allowed"
                    )));
                }
                out.insert("keys".into(), u);
            }
            "rows_per_partition" => {
                let u = v.to_ascii_uppercase();
                let val = if u == "ALL" || u == "NONE" {
                    u
                } else {
                    match v.parse::<i32>() {
                        Ok(n) if n >= 0 => n.to_string(),
                        _ => {
                            return Err(config(format!(
                                "Invalid value '{v}' for caching sub-option 'rows_per_partition': only 'ALL', 'NONE', and integer values are allowed"
                            )))
                        }
                    }
                };
                out.insert("rows_per_partition".into(), val);
            }
            _ => {
                let keys: Vec<&str> = m.keys().map(|s| s.as_str()).collect();
                return Err(config(format!(
                    "Invalid caching sub-options {{{}}}: only 'keys' and 'rows_per_partition' are allowed",
                    keys.iter()
                        .map(|k| format!("{k}={}", m[*k]))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    Ok(out)
}

const COMPACTION_PACKAGE: &str = "org.apache.cassandra.db.compaction.";
const COMMON_COMPACTION_OPTIONS: &[&str] = &[
    "class",
    "enabled",
    "min_threshold",
    "max_threshold",
    "tombstone_threshold",
    "tombstone_compaction_interval",
    "unchecked_tombstone_compaction",
    "only_purge_repaired_tombstones",
    "log_all",
    "provide_overlapping_tombstones",
];
const STCS_OPTIONS: &[&str] = &["bucket_high", "bucket_low", "min_sstable_size"];
const LCS_OPTIONS: &[&str] = &[
    "sstable_size_in_mb",
    "fanout_size",
    "single_sstable_uplevel",
];
const TWCS_OPTIONS: &[&str] = &[
    "compaction_window_unit",
    "compaction_window_size",
    "timestamp_resolution",
    "expired_sstable_check_frequency_seconds",
    "unsafe_aggressive_sstable_expiration",
    "bucket_high",
    "bucket_low",
    "min_sstable_size",
];

/// `CompactionParams.fromMap`: class resolved to its full name, thresholds
/// defaulted to 4/32, options checked against the strategy.
fn compaction(m: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, SchemaError> {
    let class = m.get("class").ok_or_else(|| {
        config("Missing sub-option 'class' for the 'compaction' option.".to_string())
    })?;
    let full = if class.contains('.') {
        class.clone()
    } else {
        format!("{COMPACTION_PACKAGE}{class}")
    };
    let simple = full.strip_prefix(COMPACTION_PACKAGE).unwrap_or("");
    let specific: &[&str] = match simple {
        "SizeTieredCompactionStrategy" => STCS_OPTIONS,
        "LeveledCompactionStrategy" => LCS_OPTIONS,
        "TimeWindowCompactionStrategy" => TWCS_OPTIONS,
        _ => {
            return Err(config(format!(
                "Unable to find compaction strategy class '{full}'"
            )))
        }
    };
    let mut out = m.clone();
    out.insert("class".into(), full.clone());
    out.entry("min_threshold".into())
        .or_insert_with(|| "4".into());
    out.entry("max_threshold".into())
        .or_insert_with(|| "32".into());
    let unknown: Vec<&str> = out
        .keys()
        .map(|k| k.as_str())
        .filter(|k| !COMMON_COMPACTION_OPTIONS.contains(k) && !specific.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(config(format!(
            "Properties specified [{}] are not understood by {simple}",
            unknown.join(", ")
        )));
    }
    let threshold = |key: &str| -> Result<i32, SchemaError> {
        let v = &out[key];
        v.parse::<i32>()
            .map_err(|_| config(format!("{v} is not a parsable int (base10) for {key}")))
    };
    let min = threshold("min_threshold")?;
    let max = threshold("max_threshold")?;
    if min <= 0 || max <= 0 {
        return Err(config("Disabling compaction by setting compaction thresholds to 0 has been removed, set the compaction option 'enabled' to false instead.".to_string()));
    }
    if min <= 1 {
        return Err(config(format!(
            "Min compaction threshold cannot be less than 2 (got {min})"
        )));
    }
    if min > max {
        return Err(config(format!(
            "Min compaction threshold (got {min}) cannot be greater than max compaction threshold (got {max})"
        )));
    }
    if let Some(e) = out.get("enabled") {
        let l = e.to_ascii_lowercase();
        if l != "true" && l != "false" {
            return Err(config(format!(
                "enabled should either be 'true' or 'false', not {e}"
            )));
        }
    }
    Ok(out)
}

const COMPRESSION_PACKAGE: &str = "org.apache.cassandra.io.compress.";

/// `CompressionParams.fromMap`.
fn compression(m: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, SchemaError> {
    let mut opts = m.clone();
    let enabled = match opts.remove("enabled") {
        Some(v) => parse_bool(&v),
        None => true,
    };
    let class = opts
        .remove("class")
        .or_else(|| opts.remove("sstable_compression"));
    if !m.is_empty() && enabled && class.is_none() {
        return Err(config(
            "Missing sub-option 'class' for the 'compression' option.".to_string(),
        ));
    }
    if !enabled {
        if !opts.is_empty() {
            return Err(config(
                "If the 'enabled' option is set to false no other options must be specified"
                    .to_string(),
            ));
        }
        return Ok(disabled_compression());
    }
    let Some(class) = class else {
        return Ok(disabled_compression());
    };
    let full = if class.contains('.') {
        class
    } else {
        format!("{COMPRESSION_PACKAGE}{class}")
    };
    let supported: &[&str] = match full.strip_prefix(COMPRESSION_PACKAGE).unwrap_or("") {
        "LZ4Compressor" => &["lz4_compressor_type", "lz4_high_compressor_level"],
        "SnappyCompressor" | "DeflateCompressor" | "NoopCompressor" => &[],
        "ZstdCompressor" => &["compression_level"],
        _ => {
            return Err(config(format!(
                "Could not create Compression for type {full}"
            )))
        }
    };
    let chunk = opts
        .remove("chunk_length_in_kb")
        .or_else(|| opts.remove("chunk_length_kb"));
    let chunk_kb = match chunk {
        Some(c) => {
            let n: i32 = c
                .parse()
                .map_err(|_| config(format!("Invalid value {c} for chunk_length_in_kb")))?;
            if n <= 0 {
                return Err(config(
                    "Invalid negative or null chunk_length_in_kb".to_string(),
                ));
            }
            if n & (n - 1) != 0 {
                return Err(config(
                    "chunk_length_in_kb must be a power of 2".to_string(),
                ));
            }
            n
        }
        None => 16,
    };
    let min_ratio = match opts.remove("min_compress_ratio") {
        Some(r) => {
            let v = parse_java_double(&r)
                .ok_or_else(|| config(format!("Invalid value {r} for min_compress_ratio")))?;
            if v != 0.0 && v < 1.0 {
                return Err(config(format!(
                    "min_compress_ratio can be either 0 or greater than or equal to 1 (got {})",
                    java_double(v)
                )));
            }
            v
        }
        None => 0.0,
    };
    // Deprecated: moved to the table option by Cassandra; accepted, ignored.
    opts.remove("crc_check_chance");
    let unknown: Vec<&str> = opts
        .keys()
        .map(|k| k.as_str())
        .filter(|k| !supported.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(config(format!(
            "Unknown compression options ({})",
            unknown.join(", ")
        )));
    }
    let mut out = opts;
    out.insert("class".into(), full);
    out.insert("chunk_length_in_kb".into(), chunk_kb.to_string());
    if min_ratio != 0.0 {
        out.insert("min_compress_ratio".into(), java_double(min_ratio));
    }
    Ok(out)
}

fn disabled_compression() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("enabled".to_string(), "false".to_string());
    m
}

/// `SpeculativeRetryPolicy.fromString` and its `toString`: `NONE`,
/// `ALWAYS`, `99p`/`99PERCENTILE` → `99p`, `50ms` → `50ms`,
/// `MIN(99p,50ms)`/`MAX(...)`.
pub(crate) fn speculative_retry(s: &str) -> Result<String, SchemaError> {
    let bad = || config(format!("Invalid value {s} for option 'speculative_retry'"));
    let u = s.trim().to_ascii_uppercase();
    if u == "NONE" || u == "ALWAYS" {
        return Ok(u);
    }
    for f in ["MIN", "MAX"] {
        if let Some(inner) = u.strip_prefix(f).and_then(|r| r.strip_prefix('(')) {
            let inner = inner.strip_suffix(')').ok_or_else(bad)?;
            let (a, b) = inner.split_once(',').ok_or_else(bad)?;
            let a = speculative_retry(a.trim()).map_err(|_| bad())?;
            let b = speculative_retry(b.trim()).map_err(|_| bad())?;
            let is_p = |x: &str| x.ends_with('p');
            let is_ms = |x: &str| x.ends_with("ms");
            if !((is_p(&a) && is_ms(&b)) || (is_ms(&a) && is_p(&b))) {
                return Err(bad());
            }
            return Ok(format!("{f}({a},{b})"));
        }
    }
    if let Some(num) = u.strip_suffix("MS") {
        let v = parse_java_double(num).ok_or_else(bad)?;
        if v < 0.0 {
            return Err(bad());
        }
        return Ok(format!("{}ms", v as i64));
    }
    let num = u
        .strip_suffix("PERCENTILE")
        .or_else(|| u.strip_suffix('P'))
        .ok_or_else(bad)?;
    let v = parse_java_double(num).ok_or_else(bad)?;
    if v <= 0.0 || v > 100.0 {
        return Err(config(format!(
            "Invalid value {s} for PERCENTILE option 'speculative_retry': must be between (0.0 and 100.0]"
        )));
    }
    // DecimalFormat("#.####")
    let mut t = format!("{:.4}", v);
    while t.ends_with('0') {
        t.pop();
    }
    if t.ends_with('.') {
        t.pop();
    }
    Ok(format!("{t}p"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: &str, v: Literal) -> Property {
        Property {
            name: name.into(),
            value: PropertyValue::Constant(v),
        }
    }

    fn map_prop(name: &str, pairs: &[(&str, &str)]) -> Property {
        Property {
            name: name.into(),
            value: PropertyValue::Map(
                pairs
                    .iter()
                    .map(|(k, v)| {
                        (
                            Literal::String(k.to_string()),
                            Literal::String(v.to_string()),
                        )
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn speculative_retry_forms() {
        assert_eq!(speculative_retry("99PERCENTILE").unwrap(), "99p");
        assert_eq!(speculative_retry("99.9p").unwrap(), "99.9p");
        assert_eq!(speculative_retry("50ms").unwrap(), "50ms");
        assert_eq!(speculative_retry("always").unwrap(), "ALWAYS");
        assert_eq!(speculative_retry("min(99p,50ms)").unwrap(), "MIN(99p,50ms)");
        assert!(matches!(
            speculative_retry("soon"),
            Err(SchemaError::Config(_))
        ));
        assert!(matches!(
            speculative_retry("101p"),
            Err(SchemaError::Config(_))
        ));
    }

    #[test]
    fn table_option_rules() {
        let base = TableOptions::default();
        let (o, id) = table_options(
            &base,
            &[
                map_prop("compaction", &[("class", "LeveledCompactionStrategy")]),
                prop("gc_grace_seconds", Literal::Integer("10".into())),
                map_prop("caching", &[("keys", "none"), ("rows_per_partition", "10")]),
                map_prop(
                    "compression",
                    &[("class", "ZstdCompressor"), ("chunk_length_in_kb", "64")],
                ),
            ],
        )
        .unwrap();
        assert!(id.is_none());
        assert_eq!(
            o.compaction["class"],
            "org.apache.cassandra.db.compaction.LeveledCompactionStrategy"
        );
        assert_eq!(o.compaction["min_threshold"], "4");
        assert_eq!(o.gc_grace_seconds, 10);
        assert_eq!(o.caching["keys"], "NONE");
        assert_eq!(o.caching["rows_per_partition"], "10");
        assert_eq!(o.compression["chunk_length_in_kb"], "64");

        let e = table_options(&base, &[prop("foo", Literal::Integer("1".into()))]).unwrap_err();
        assert_eq!(e, SchemaError::Syntax("Unknown property 'foo'".into()));
        let e = table_options(
            &base,
            &[prop("gc_grace_seconds", Literal::String("x".into()))],
        )
        .unwrap_err();
        assert_eq!(
            e,
            SchemaError::Syntax("Invalid integer value x for 'gc_grace_seconds'".into())
        );
        let e = table_options(
            &base,
            &[prop("bloom_filter_fp_chance", Literal::Float("2.0".into()))],
        )
        .unwrap_err();
        assert_eq!(
            e,
            SchemaError::Config(
                "bloom_filter_fp_chance must be larger than 6.71E-5 and less than or equal to 1.0 (got 2.0)"
                    .into()
            )
        );
        let e = table_options(&base, &[map_prop("compaction", &[("class", "Foo")])]).unwrap_err();
        assert_eq!(
            e,
            SchemaError::Config(
                "Unable to find compaction strategy class 'org.apache.cassandra.db.compaction.Foo'"
                    .into()
            )
        );
        let e =
            table_options(&base, &[prop("caching", Literal::String("all".into()))]).unwrap_err();
        assert!(matches!(e, SchemaError::Syntax(_)));
        let e = table_options(
            &base,
            &[
                prop("comment", Literal::String("a".into())),
                prop("comment", Literal::String("b".into())),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e,
            SchemaError::Syntax("Multiple definition for property 'comment'".into())
        );
        let (o, _) =
            table_options(&base, &[map_prop("compression", &[("enabled", "false")])]).unwrap();
        assert_eq!(o.compression, disabled_compression());
    }
}
