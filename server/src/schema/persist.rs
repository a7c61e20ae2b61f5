//! Saving and loading the schema: one text file, `schema.txt`, replaced
//! atomically (write `schema.txt.tmp`, fsync, rename, fsync the directory).
//! The format is documented in `docs/schema-format.md`; it keeps table ids,
//! engine column ids, `next_column_id` and dropped columns, so data written
//! before a restart is read back with the same column ids.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use super::merge::{SchemaEntity, SchemaStamp};
use super::types::{cql_type_string, parse_cql_type};
use super::{
    digest, is_local_system_keyspace, is_replicated_system_keyspace, ClusteringOrder, ColumnKind,
    ColumnMetadata, IndexMetadata, KeyspaceMetadata, ReplicationParams, Schema, TableMetadata,
    TableOptions, UserType,
};

/// The file name inside the schema directory.
pub const SCHEMA_FILE: &str = "schema.txt";
/// First line of a version-1 file.
pub const HEADER: &str = "tessera-schema 1";

/// Encodes one token: `%` → `%25`, bytes outside `!`..`~` → `%XX`, the
/// empty string → `%-`.
fn enc(s: &str) -> String {
    if s.is_empty() {
        return "%-".to_string();
    }
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b == b'%' || !(0x21..=0x7e).contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

fn dec(s: &str) -> Result<String, String> {
    if s == "%-" {
        return Ok(String::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape in '{s}'"))?;
            out.push(h);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("invalid UTF-8 in '{s}'"))
}

fn line(out: &mut String, words: &[&str]) {
    let encoded: Vec<String> = words.iter().map(|w| enc(w)).collect();
    out.push_str(&encoded.join(" "));
    out.push('\n');
}

fn map_line(out: &mut String, head: &[&str], m: &BTreeMap<String, String>) {
    let mut words: Vec<&str> = head.to_vec();
    for (k, v) in m {
        words.push(k);
        words.push(v);
    }
    line(out, &words);
}

/// The body of the format for the given keyspaces (no header, no `end`):
/// deterministic, also the input of the schema version digest.
pub fn serialize_keyspaces<'a>(
    keyspaces: impl Iterator<Item = &'a Arc<KeyspaceMetadata>>,
) -> String {
    let mut out = String::new();
    for k in keyspaces {
        line(
            &mut out,
            &[
                "keyspace",
                &k.name,
                &k.durable_writes.to_string(),
                &k.replication.class,
            ],
        );
        for (key, v) in &k.replication.options {
            line(&mut out, &["replication", key, v]);
        }
        for ut in k.types_in_dependency_order() {
            line(&mut out, &["type", &ut.name]);
            for (n, t) in ut.field_names.iter().zip(&ut.field_types) {
                line(&mut out, &["field", n, &cql_type_string(t)]);
            }
        }
        for t in k.tables.values() {
            write_table(&mut out, t);
        }
    }
    out
}

fn write_table(out: &mut String, t: &TableMetadata) {
    line(
        out,
        &[
            "table",
            &t.name,
            &digest::uuid_to_string(&t.id),
            &t.next_column_id.to_string(),
            &t.is_counter.to_string(),
            &t.is_virtual.to_string(),
        ],
    );
    for c in &t.columns {
        let (kind, pos) = match c.kind {
            ColumnKind::PartitionKey(p) => ("partition_key", p),
            ColumnKind::Clustering(p) => ("clustering", p),
            ColumnKind::Regular => ("regular", 0),
            ColumnKind::Static => ("static", 0),
        };
        line(
            out,
            &[
                "column",
                &c.name,
                kind,
                &pos.to_string(),
                c.order.as_str(),
                &c.id.to_string(),
                &cql_type_string(&c.ty),
            ],
        );
    }
    let o = &t.options;
    let scalars: [(&str, String); 12] = [
        (
            "bloom_filter_fp_chance",
            o.bloom_filter_fp_chance.to_string(),
        ),
        ("comment", o.comment.clone()),
        ("crc_check_chance", o.crc_check_chance.to_string()),
        ("default_time_to_live", o.default_time_to_live.to_string()),
        ("gc_grace_seconds", o.gc_grace_seconds.to_string()),
        ("max_index_interval", o.max_index_interval.to_string()),
        (
            "memtable_flush_period_in_ms",
            o.memtable_flush_period_in_ms.to_string(),
        ),
        ("min_index_interval", o.min_index_interval.to_string()),
        ("speculative_retry", o.speculative_retry.clone()),
        ("additional_write_policy", o.additional_write_policy.clone()),
        ("read_repair", o.read_repair.clone()),
        ("cdc", o.cdc.to_string()),
    ];
    for (n, v) in &scalars {
        line(out, &["option", n, v]);
    }
    map_line(out, &["option-map", "caching"], &o.caching);
    map_line(out, &["option-map", "compaction"], &o.compaction);
    map_line(out, &["option-map", "compression"], &o.compression);
    for (k, v) in &o.extensions {
        line(out, &["extension", k, &digest::to_hex(v)]);
    }
    for i in &t.indexes {
        map_line(out, &["index", &i.name, &i.kind], &i.options);
    }
    for (name, (ty, at)) in &t.dropped_columns {
        let kind = if t.dropped_static_columns.contains(name) {
            "static"
        } else {
            "regular"
        };
        line(
            out,
            &["dropped", name, &at.to_string(), kind, &cql_type_string(ty)],
        );
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Schema {
    /// Writes every keyspace except `system` and `system_schema` to
    /// `dir/schema.txt`, atomically.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let text = self.to_text();
        let tmp = dir.join(format!("{SCHEMA_FILE}.tmp"));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, dir.join(SCHEMA_FILE))?;
        sync_dir(dir)
    }

    /// Reads `dir/schema.txt`; `Ok(None)` if there is none. System
    /// keyspaces come from the code (only the replication and
    /// `durable_writes` saved for `system_auth`, `system_distributed`,
    /// `system_traces` are kept).
    pub fn load(dir: &Path, local_dc: &str) -> io::Result<Option<Schema>> {
        let text = match fs::read_to_string(dir.join(SCHEMA_FILE)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Schema::from_text(&text, local_dc).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", dir.join(SCHEMA_FILE).display()),
            )
        })
    }

    /// The schema in the persisted text format (what `save` writes; also
    /// what nodes send each other to agree on the schema).
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        text.push_str(HEADER);
        text.push('\n');
        text.push_str(&serialize_keyspaces(
            self.keyspaces
                .values()
                .filter(|k| !is_local_system_keyspace(&k.name)),
        ));
        for (entity, stamp) in &self.history {
            let (kind, ks, name) = match entity {
                SchemaEntity::Keyspace(k) => ("keyspace", k.as_str(), ""),
                SchemaEntity::Type(k, t) => ("type", k.as_str(), t.as_str()),
                SchemaEntity::Table(k, t) => ("table", k.as_str(), t.as_str()),
            };
            let state = if stamp.dropped { "dropped" } else { "live" };
            line(
                &mut text,
                &["stamp", kind, ks, name, &stamp.micros.to_string(), state],
            );
        }
        text.push_str("end\n");
        text
    }

    /// Parses [`Schema::to_text`] output on top of the system keyspaces.
    pub fn from_text(text: &str, local_dc: &str) -> Result<Schema, String> {
        let mut schema = Schema::new_with_system_keyspaces(local_dc);
        parse(text, &mut schema)?;
        schema.recompute_version();
        Ok(schema)
    }
}

fn parse(text: &str, schema: &mut Schema) -> Result<(), String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, HEADER)) => {}
        Some((_, other)) => return Err(format!("unsupported header '{other}'")),
        None => return Err("empty file".to_string()),
    }
    let mut keyspaces: Vec<KeyspaceMetadata> = Vec::new();
    let mut last = Last::None;
    let mut ended = false;
    for (no, raw) in lines {
        if ended {
            return Err(format!("line {}: data after 'end'", no + 1));
        }
        let words = raw
            .split(' ')
            .map(dec)
            .collect::<Result<Vec<String>, String>>()
            .map_err(|e| format!("line {}: {e}", no + 1))?;
        if words.first().map(|w| w.as_str()) == Some("stamp") {
            let (entity, stamp) =
                parse_stamp(&words).map_err(|e| format!("line {}: {e}", no + 1))?;
            schema.history.insert(entity, stamp);
            continue;
        }
        parse_line(&words, &mut keyspaces, &mut last)
            .map_err(|e| format!("line {}: {e}", no + 1))?;
        if words.first().map(|w| w.as_str()) == Some("end") {
            ended = true;
        }
    }
    if !ended {
        return Err("truncated file (no 'end' line)".to_string());
    }
    for mut k in keyspaces {
        for t in k.tables.values_mut() {
            let t = Arc::make_mut(t);
            t.indexes.sort_by(|a, b| a.name.cmp(&b.name));
            t.sort_value_columns();
        }
        if is_replicated_system_keyspace(&k.name) {
            if let Some(existing) = schema.keyspaces.get_mut(&k.name) {
                let e = Arc::make_mut(existing);
                e.replication = k.replication;
                e.durable_writes = k.durable_writes;
            }
            continue;
        }
        if is_local_system_keyspace(&k.name) {
            continue;
        }
        schema.keyspaces.insert(k.name.clone(), Arc::new(k));
    }
    Ok(())
}

/// `stamp KIND KEYSPACE NAME MICROS live|dropped` (see `merge.rs`).
fn parse_stamp(w: &[String]) -> Result<(SchemaEntity, SchemaStamp), String> {
    let ks = arg(w, 2)?.to_string();
    let name = arg(w, 3)?.to_string();
    let entity = match arg(w, 1)? {
        "keyspace" => SchemaEntity::Keyspace(ks),
        "type" => SchemaEntity::Type(ks, name),
        "table" => SchemaEntity::Table(ks, name),
        other => return Err(format!("unknown stamp kind '{other}'")),
    };
    let micros: i64 = num(w, 4)?;
    let dropped = match arg(w, 5)? {
        "live" => false,
        "dropped" => true,
        other => return Err(format!("unknown stamp state '{other}'")),
    };
    Ok((entity, SchemaStamp { micros, dropped }))
}

fn arg(w: &[String], i: usize) -> Result<&str, String> {
    w.get(i)
        .map(|s| s.as_str())
        .ok_or_else(|| format!("'{}' needs more fields", w[0]))
}

fn num<T: std::str::FromStr>(w: &[String], i: usize) -> Result<T, String> {
    let s = arg(w, i)?;
    s.parse().map_err(|_| format!("bad number '{s}'"))
}

fn pairs(w: &[String], from: usize) -> Result<BTreeMap<String, String>, String> {
    if !(w.len() - from).is_multiple_of(2) {
        return Err("odd number of map entries".to_string());
    }
    Ok(w[from..]
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect())
}

/// The element later `field`/`column`/... lines belong to.
enum Last {
    None,
    Type(String),
    Table(String),
}

fn parse_line(
    w: &[String],
    keyspaces: &mut Vec<KeyspaceMetadata>,
    last: &mut Last,
) -> Result<(), String> {
    let head = w.first().map(|s| s.as_str()).unwrap_or("");
    if head == "keyspace" {
        keyspaces.push(KeyspaceMetadata {
            name: arg(w, 1)?.to_string(),
            durable_writes: arg(w, 2)? == "true",
            replication: ReplicationParams {
                class: arg(w, 3)?.to_string(),
                options: BTreeMap::new(),
            },
            tables: BTreeMap::new(),
            types: BTreeMap::new(),
            is_system: false,
        });
        *last = Last::None;
        return Ok(());
    }
    if head == "end" {
        return Ok(());
    }
    let k = keyspaces
        .last_mut()
        .ok_or_else(|| format!("'{head}' before any keyspace"))?;
    k.is_system = super::is_system_keyspace(&k.name);
    match head {
        "replication" => {
            k.replication
                .options
                .insert(arg(w, 1)?.to_string(), arg(w, 2)?.to_string());
        }
        "type" => {
            let name = arg(w, 1)?.to_string();
            k.types.insert(
                name.clone(),
                Arc::new(UserType {
                    keyspace: k.name.clone(),
                    name: name.clone(),
                    field_names: Vec::new(),
                    field_types: Vec::new(),
                }),
            );
            *last = Last::Type(name);
        }
        "field" => {
            let Last::Type(name) = &*last else {
                return Err("'field' outside a type".to_string());
            };
            let ty = parse_cql_type(arg(w, 2)?, &k.name, &k.types)?;
            let ut = Arc::make_mut(k.types.get_mut(name).ok_or("unknown type")?);
            ut.field_names.push(arg(w, 1)?.to_string());
            ut.field_types.push(ty);
        }
        "table" => {
            let name = arg(w, 1)?.to_string();
            let id = digest::parse_uuid(arg(w, 2)?).ok_or("bad table id")?;
            let t = TableMetadata {
                keyspace: k.name.clone(),
                name: name.clone(),
                id,
                columns: Vec::new(),
                partition_key_len: 0,
                clustering_key_len: 0,
                options: TableOptions::default(),
                indexes: Vec::new(),
                dropped_columns: BTreeMap::new(),
                dropped_static_columns: Default::default(),
                is_counter: arg(w, 4)? == "true",
                is_virtual: arg(w, 5)? == "true",
                next_column_id: num(w, 3)?,
            };
            k.tables.insert(name.clone(), Arc::new(t));
            *last = Last::Table(name);
        }
        _ => {
            let Last::Table(name) = &*last else {
                return Err(format!("'{head}' outside a table"));
            };
            let types = k.types.clone();
            let ks_name = k.name.clone();
            let t = Arc::make_mut(k.tables.get_mut(name).ok_or("unknown table")?);
            table_line(w, head, t, &ks_name, &types)?;
        }
    }
    Ok(())
}

fn table_line(
    w: &[String],
    head: &str,
    t: &mut TableMetadata,
    ks: &str,
    types: &BTreeMap<String, Arc<UserType>>,
) -> Result<(), String> {
    match head {
        "column" => {
            let pos: usize = num(w, 3)?;
            let kind = match arg(w, 2)? {
                "partition_key" => ColumnKind::PartitionKey(pos),
                "clustering" => ColumnKind::Clustering(pos),
                "regular" => ColumnKind::Regular,
                "static" => ColumnKind::Static,
                other => return Err(format!("bad column kind '{other}'")),
            };
            let order = match arg(w, 4)? {
                "none" => ClusteringOrder::None,
                "asc" => ClusteringOrder::Asc,
                "desc" => ClusteringOrder::Desc,
                other => return Err(format!("bad clustering order '{other}'")),
            };
            let ty = parse_cql_type(arg(w, 6)?, ks, types)?;
            let col = ColumnMetadata {
                name: arg(w, 1)?.to_string(),
                ty,
                kind,
                order,
                id: num(w, 5)?,
            };
            // Keep key columns in key order, in front of value columns.
            match kind {
                ColumnKind::PartitionKey(_) => {
                    t.columns.insert(t.partition_key_len, col);
                    t.partition_key_len += 1;
                }
                ColumnKind::Clustering(_) => {
                    t.columns
                        .insert(t.partition_key_len + t.clustering_key_len, col);
                    t.clustering_key_len += 1;
                }
                _ => t.columns.push(col),
            }
            let pk = t.partition_key_len;
            t.columns[..pk].sort_by_key(|c| c.kind.position());
            let ck_end = pk + t.clustering_key_len;
            t.columns[pk..ck_end].sort_by_key(|c| c.kind.position());
        }
        "option" => {
            let v = arg(w, 2)?;
            let o = &mut t.options;
            let bad = || format!("bad value '{v}'");
            match arg(w, 1)? {
                "bloom_filter_fp_chance" => {
                    o.bloom_filter_fp_chance = v.parse().map_err(|_| bad())?
                }
                "comment" => o.comment = v.to_string(),
                "crc_check_chance" => o.crc_check_chance = v.parse().map_err(|_| bad())?,
                "default_time_to_live" => o.default_time_to_live = v.parse().map_err(|_| bad())?,
                "gc_grace_seconds" => o.gc_grace_seconds = v.parse().map_err(|_| bad())?,
                "max_index_interval" => o.max_index_interval = v.parse().map_err(|_| bad())?,
                "memtable_flush_period_in_ms" => {
                    o.memtable_flush_period_in_ms = v.parse().map_err(|_| bad())?
                }
                "min_index_interval" => o.min_index_interval = v.parse().map_err(|_| bad())?,
                "speculative_retry" => o.speculative_retry = v.to_string(),
                "additional_write_policy" => o.additional_write_policy = v.to_string(),
                "read_repair" => o.read_repair = v.to_string(),
                "cdc" => o.cdc = v == "true",
                other => return Err(format!("unknown option '{other}'")),
            }
        }
        "option-map" => {
            let m = pairs(w, 2)?;
            match arg(w, 1)? {
                "caching" => t.options.caching = m,
                "compaction" => t.options.compaction = m,
                "compression" => t.options.compression = m,
                other => return Err(format!("unknown option map '{other}'")),
            }
        }
        "extension" => {
            let bytes = digest::from_hex(arg(w, 2)?).ok_or("bad hex")?;
            t.options.extensions.insert(arg(w, 1)?.to_string(), bytes);
        }
        "index" => {
            t.indexes.push(IndexMetadata {
                name: arg(w, 1)?.to_string(),
                kind: arg(w, 2)?.to_string(),
                options: pairs(w, 3)?,
            });
        }
        "dropped" => {
            let name = arg(w, 1)?.to_string();
            let ty = parse_cql_type(arg(w, 4)?, ks, types)?;
            t.dropped_columns.insert(name.clone(), (ty, num(w, 2)?));
            if arg(w, 3)? == "static" {
                t.dropped_static_columns.insert(name);
            }
        }
        other => return Err(format!("unknown line '{other}'")),
    }
    Ok(())
}
