//! Local secondary indexes (Cassandra's legacy "2i").
//!
//! Every shard keeps, for each index, a hidden engine table of its own (its
//! own commitlog entries, memtable, SSTables, flushes and compactions):
//!
//! ```text
//! partition key : the indexed value
//! clustering    : (base token bigint, base partition key blob, base clustering...)
//! row           : liveness only (the timestamp and TTL of the indexed cell)
//! ```
//!
//! Index tables are *shard-local*: an index row lives on the shard that owns
//! the base row it points to, whatever the token of the indexed value. So a
//! lookup asks every shard, each shard reads its own index partition in
//! (token, key, clustering) order and fetches the base rows from its own
//! base table; the coordinator merges the shards' answers in ring order,
//! which is also the order of a full scan.
//!
//! Index rows are written with the base write (same shard, same timestamp,
//! same TTL). Overwrites and deletes leave stale index rows behind: reads
//! re-check every base row and drop the ones that no longer match; a stale
//! row whose base cell has a strictly newer timestamp is deleted on the way
//! (a tombstone at the index row's own timestamp, so it can never hide a
//! later write). See `docs/secondary-index.md`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use engine::mutation::{
    Bound, Clustering, ClusteringRange, ColumnData, ColumnId, DeletionTime, LivenessInfo, Mutation,
    PartitionKey, PartitionUpdate, Row, TableId,
};
use engine::read::{ReadCommand, ScanBound, TokenRange};
use engine::schema::{ClusteringColumn, TableSchema};
use engine::types::KeyType;
use engine::Database;
use proto::value::ColumnType;

use crate::cql3::statements::{engine_schema, unfrozen};
use crate::schema::{ColumnKind, IndexMetadata, Schema, TableMetadata};

/// Cassandra refuses to index values larger than this (a partition key).
pub const MAX_INDEXED_VALUE: usize = 65535;

/// What of a column an index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// The whole cell value: a regular column, or `full()` of a frozen collection.
    Value,
    /// `values()` of a non-frozen list, set or map.
    Values,
    /// `keys()` of a non-frozen map.
    Keys,
}

/// One index with local index data, as a shard uses it.
#[derive(Debug, Clone)]
pub struct LocalIndex {
    pub name: String,
    /// The hidden index table.
    pub table_id: TableId,
    pub base: TableId,
    /// Position of the indexed column in `TableMetadata::columns`.
    pub column: usize,
    pub column_id: ColumnId,
    pub kind: TargetKind,
    /// Non-frozen set: the elements are the cell paths.
    pub is_set: bool,
}

/// The id of the hidden table of index `name` on table `base`: name-based
/// (a new base table id, as after DROP/CREATE TABLE, gives new index ids).
pub fn index_table_id(base: &TableId, name: &str) -> TableId {
    let mut data = b"tessera-local-index:".to_vec();
    data.extend_from_slice(base);
    data.extend_from_slice(name.as_bytes());
    let mut id = crate::schema::digest::md5(&data);
    id[6] = (id[6] & 0x0f) | 0x30;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].replace("\"\"", "\"")
    } else {
        s.to_string()
    }
}

/// Parses an index `target` option into (function, column name).
pub fn parse_target(target: &str) -> (Option<&'static str>, String) {
    for f in ["values", "keys", "entries", "full"] {
        if let Some(rest) = target.strip_prefix(f).and_then(|r| r.strip_prefix('(')) {
            if let Some(inner) = rest.strip_suffix(')') {
                return (Some(f), unquote(inner));
            }
        }
    }
    (None, unquote(target))
}

/// The local index an `IndexMetadata` describes, when Tessera keeps index
/// data for it: regular columns (values, `full()`, `values()`, `keys()`).
/// Custom (SAI/SASI) indexes, `entries()`, and indexes on key or static
/// columns have none: their queries are answered by scan and filter.
pub fn local_index(table: &TableMetadata, idx: &IndexMetadata) -> Option<LocalIndex> {
    if idx.kind != "COMPOSITES" || table.is_virtual || table.is_counter {
        return None;
    }
    let (func, name) = parse_target(idx.options.get("target")?);
    let column = table.column_index(&name)?;
    let col = &table.columns[column];
    if col.kind != ColumnKind::Regular {
        return None;
    }
    let multi = crate::cql3::statements::is_multi_cell(&col.ty);
    let kind = match (func, unfrozen(&col.ty)) {
        (None, _) if !multi => TargetKind::Value,
        (Some("full"), _) if !multi => TargetKind::Value,
        (None | Some("values"), ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..))
            if multi =>
        {
            TargetKind::Values
        }
        (Some("keys"), ColumnType::Map(..)) if multi => TargetKind::Keys,
        _ => return None,
    };
    Some(LocalIndex {
        name: idx.name.clone(),
        table_id: index_table_id(&table.id, &idx.name),
        base: table.id,
        column,
        column_id: col.id,
        kind,
        is_set: matches!(col.ty, ColumnType::Set(_)),
    })
}

/// Every local index of a table.
pub fn local_indexes(table: &TableMetadata) -> Vec<LocalIndex> {
    table
        .indexes
        .iter()
        .filter_map(|i| local_index(table, i))
        .collect()
}

/// The engine schema of an index table of `base`.
pub fn index_engine_schema(base: &TableMetadata, idx: &LocalIndex) -> TableSchema {
    let b = engine_schema(base);
    let mut clustering = vec![
        ClusteringColumn {
            ty: KeyType::BigInt,
            reversed: false,
        },
        ClusteringColumn {
            ty: KeyType::Bytes,
            reversed: false,
        },
    ];
    clustering.extend(b.clustering.iter().cloned());
    TableSchema::new(idx.table_id, clustering, base.options.gc_grace_seconds)
}

/// The values a column's data holds for an index, each with the liveness
/// of the cell it came from.
fn indexed_values(idx: &LocalIndex, data: &ColumnData) -> Vec<(Bytes, LivenessInfo)> {
    let live = |c: &engine::mutation::Cell| LivenessInfo {
        timestamp: c.timestamp,
        ttl: c.ttl,
        expiry: if c.ttl > 0 { c.expiry } else { 0 },
    };
    let mut out = Vec::new();
    match (idx.kind, data) {
        (TargetKind::Value, ColumnData::Simple(c)) => {
            if let Some(v) = &c.value {
                out.push((v.clone(), live(c)));
            }
        }
        (TargetKind::Values, ColumnData::Complex { cells, .. }) => {
            for (path, c) in cells {
                if c.value.is_none() {
                    continue;
                }
                if idx.is_set {
                    out.push((path.clone(), live(c)));
                } else if let Some(v) = &c.value {
                    out.push((v.clone(), live(c)));
                }
            }
        }
        (TargetKind::Keys, ColumnData::Complex { cells, .. }) => {
            for (path, c) in cells {
                if c.value.is_some() {
                    out.push((path.clone(), live(c)));
                }
            }
        }
        _ => {}
    }
    out.retain(|(v, _)| !v.is_empty() && v.len() <= MAX_INDEXED_VALUE);
    out
}

/// Whether `data` (live data of a base row) holds `value` for the index.
fn holds_value(idx: &LocalIndex, data: &ColumnData, value: &[u8]) -> Option<i64> {
    indexed_values(idx, data)
        .into_iter()
        .find(|(v, _)| &v[..] == value)
        .map(|(_, l)| l.timestamp)
}

/// The newest timestamp of the column's live data (for stale-entry cleanup).
fn newest_timestamp(data: &ColumnData) -> Option<i64> {
    match data {
        ColumnData::Simple(c) => Some(c.timestamp),
        ColumnData::Complex { cells, tombstone } => cells
            .iter()
            .map(|(_, c)| c.timestamp)
            .chain(tombstone.iter().map(|t| t.timestamp))
            .max(),
    }
}

/// The partition key of an index partition.
pub fn index_key(value: &Bytes) -> PartitionKey {
    PartitionKey {
        token: crate::dht::murmur3::murmur3_token(value),
        key: value.clone(),
    }
}

/// The index clustering of a base row.
pub fn index_clustering(key: &PartitionKey, ck: &Clustering) -> Clustering {
    let mut c = Vec::with_capacity(2 + ck.len());
    c.push(Bytes::copy_from_slice(&key.token.to_be_bytes()));
    c.push(key.key.clone());
    c.extend(ck.iter().cloned());
    c
}

/// The index rows a base mutation writes (one mutation per indexed value).
pub fn index_mutations(indexes: &[LocalIndex], m: &Mutation) -> Vec<Mutation> {
    let mut out: Vec<Mutation> = Vec::new();
    for idx in indexes {
        let mut by_value: HashMap<Bytes, PartitionUpdate> = HashMap::new();
        for (ck, row) in &m.update.rows {
            let Ok(pos) = row
                .columns
                .binary_search_by_key(&idx.column_id, |(id, _)| *id)
            else {
                continue;
            };
            for (value, liveness) in indexed_values(idx, &row.columns[pos].1) {
                let p = by_value
                    .entry(value.clone())
                    .or_insert_with(|| PartitionUpdate::new(index_key(&value)));
                p.rows.push((
                    index_clustering(&m.update.key, ck),
                    Row {
                        liveness: Some(liveness),
                        deletion: None,
                        columns: Vec::new(),
                    },
                ));
            }
        }
        for (_, mut update) in by_value {
            // Rows come in base clustering order, so index order too (same
            // token and key prefix); duplicates (a list holding one value
            // twice) keep the newest.
            update.rows.dedup_by(|b, a| {
                if a.0 == b.0 {
                    if b.1.liveness.map(|l| l.timestamp) > a.1.liveness.map(|l| l.timestamp) {
                        a.1 = b.1.clone();
                    }
                    true
                } else {
                    false
                }
            });
            out.push(Mutation {
                table: idx.table_id,
                update,
            });
        }
    }
    out
}

/// Per-shard cache: base table id → its local indexes, rebuilt when the
/// schema version changes.
#[derive(Default)]
pub struct IndexRegistry {
    version: Cell<[u8; 16]>,
    by_base: RefCell<HashMap<TableId, Rc<Vec<LocalIndex>>>>,
    /// Index rows read by lookups on this shard.
    pub entries_read: Cell<u64>,
    /// Base rows read (and re-checked) by lookups on this shard.
    pub base_rows_read: Cell<u64>,
    /// Stale index rows deleted by lookups on this shard.
    pub stale_deleted: Cell<u64>,
}

impl IndexRegistry {
    /// The local indexes of table `base` under `schema`.
    pub fn for_table(&self, schema: &Schema, base: &TableId) -> Option<Rc<Vec<LocalIndex>>> {
        if self.version.get() != schema.version {
            let mut map = HashMap::new();
            for ks in schema.keyspaces.values() {
                for t in ks.tables.values() {
                    let l = local_indexes(t);
                    if !l.is_empty() {
                        map.insert(t.id, Rc::new(l));
                    }
                }
            }
            *self.by_base.borrow_mut() = map;
            self.version.set(schema.version);
        }
        self.by_base.borrow().get(base).cloned()
    }
}

/// Creates the index tables of `schema` that this shard lacks (at start,
/// before commitlog replay: replay then routes index mutations to them).
pub fn create_index_tables(db: &mut Database, schema: &Schema) {
    for ks in schema.keyspaces.values() {
        for t in ks.tables.values() {
            for idx in local_indexes(t) {
                if !db.has_table(&idx.table_id) {
                    db.create_table(Arc::new(index_engine_schema(t, &idx)));
                }
            }
        }
    }
}

/// Brings this shard's index tables in step with a schema change: new
/// indexes are created and built from the shard's data (before the DDL is
/// answered), dropped indexes and the indexes of dropped tables lose their
/// data.
pub fn sync_index_tables(db: &mut Database, old: &Schema, new: &Schema) {
    let all = |s: &Schema| -> Vec<(Arc<TableMetadata>, LocalIndex)> {
        s.keyspaces
            .values()
            .flat_map(|ks| ks.tables.values())
            .flat_map(|t| local_indexes(t).into_iter().map(move |i| (t.clone(), i)))
            .collect()
    };
    let before = all(old);
    let after = all(new);
    for (_, idx) in &before {
        if !after.iter().any(|(_, i)| i.table_id == idx.table_id) {
            db.drop_table(&idx.table_id);
        }
    }
    for (t, idx) in &after {
        if !db.has_table(&idx.table_id) {
            db.create_table(Arc::new(index_engine_schema(t, idx)));
            let existed = before.iter().any(|(_, i)| i.table_id == idx.table_id);
            if !existed {
                if let Err(e) = build_index(db, idx) {
                    log::warn!("building index {}: {e}", idx.name);
                }
            }
        }
    }
}

/// Rebuilds every index of this shard from its base data (after resharding:
/// base rows moved between shards, and index rows must follow them).
pub fn rebuild_all(db: &mut Database, schema: &Schema) {
    for ks in schema.keyspaces.values() {
        for t in ks.tables.values() {
            for idx in local_indexes(t) {
                if !db.has_table(&idx.table_id) {
                    db.create_table(Arc::new(index_engine_schema(t, &idx)));
                }
                db.truncate(&idx.table_id);
                if let Err(e) = build_index(db, &idx) {
                    log::warn!("rebuilding index {}: {e}", idx.name);
                }
            }
        }
    }
}

/// Writes the index rows of every base row this shard holds (logged like
/// any write, then synced, so a built index survives a crash).
pub fn build_index(db: &mut Database, idx: &LocalIndex) -> Result<u64, engine::EngineError> {
    if !db.has_table(&idx.base) {
        return Ok(0);
    }
    let now = engine::database::now_seconds();
    let cmd = ReadCommand::full(now);
    let mut range = TokenRange::full();
    let mut written = 0u64;
    let one = std::slice::from_ref(idx);
    loop {
        let parts = db.scan(&idx.base, range.clone(), &cmd, 256)?;
        let n = parts.len();
        for p in parts {
            range.start = ScanBound::Key {
                token: p.key.token,
                key: p.key.key.clone(),
                inclusive: false,
            };
            let m = Mutation {
                table: idx.base,
                update: p,
            };
            for im in index_mutations(one, &m) {
                written += im.update.rows.len() as u64;
                db.apply(&im)?;
            }
        }
        if n < 256 {
            break;
        }
    }
    if let Some(pos) = db.sync_commitlog()? {
        db.wait_commitlog(pos)?;
    }
    log::info!("built index {}: {written} index rows", idx.name);
    Ok(written)
}

/// Where an index lookup resumes: after this base partition (`None`
/// clustering) or after this base row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPosition {
    pub key: PartitionKey,
    pub clustering: Option<Clustering>,
}

impl IndexPosition {
    /// (token, key, clustering) order, with `None` sorting after every row
    /// of its partition.
    pub fn cmp_row(
        &self,
        schema: &TableSchema,
        key: &PartitionKey,
        ck: &Clustering,
    ) -> std::cmp::Ordering {
        (self.key.token, &self.key.key)
            .cmp(&(key.token, &key.key))
            .then_with(|| match &self.clustering {
                None => std::cmp::Ordering::Greater,
                Some(c) => schema.compare_clustering(c, ck),
            })
    }
}

/// One shard's answer to an index lookup.
#[derive(Debug, Default)]
pub struct IndexPage {
    /// Matching base rows in (token, key, clustering) order, grouped by partition.
    pub parts: Vec<PartitionUpdate>,
    /// Whether the shard's index partition has nothing after these rows.
    pub exhausted: bool,
}

/// An index lookup on one shard.
pub struct IndexLookup<'a> {
    pub idx: &'a LocalIndex,
    pub base_schema: &'a TableSchema,
    pub value: &'a Bytes,
    pub range: &'a TokenRange,
    pub after: Option<&'a IndexPosition>,
    /// The base query's clustering ranges and time.
    pub cmd: &'a ReadCommand,
    /// At most this many matching base rows.
    pub limit: usize,
}

/// Reads this shard's index partition for `value` and the base rows it
/// points to; stale index rows are skipped (and deleted when the base cell
/// is strictly newer).
pub fn lookup(
    db: &mut Database,
    reg: &IndexRegistry,
    q: &IndexLookup<'_>,
) -> Result<IndexPage, engine::EngineError> {
    let idx = q.idx;
    let ikey = index_key(q.value);
    let mut start = match q.after {
        None => match &q.range.start {
            ScanBound::Unbounded => Bound::Unbounded,
            ScanBound::Token { token, inclusive } => {
                let p = vec![Bytes::copy_from_slice(&token.to_be_bytes())];
                if *inclusive {
                    Bound::Inclusive(p)
                } else {
                    Bound::Exclusive(p)
                }
            }
            ScanBound::Key {
                token,
                key,
                inclusive,
            } => {
                let p = vec![Bytes::copy_from_slice(&token.to_be_bytes()), key.clone()];
                if *inclusive {
                    Bound::Inclusive(p)
                } else {
                    Bound::Exclusive(p)
                }
            }
        },
        Some(pos) => {
            let mut p = vec![
                Bytes::copy_from_slice(&pos.key.token.to_be_bytes()),
                pos.key.key.clone(),
            ];
            if let Some(c) = &pos.clustering {
                p.extend(c.iter().cloned());
            }
            Bound::Exclusive(p)
        }
    };
    const CHUNK: usize = 256;
    let mut page = IndexPage::default();
    let mut matched = 0usize;
    let mut stale: Vec<(Clustering, i64)> = Vec::new();
    'outer: loop {
        let icmd = ReadCommand {
            ranges: vec![ClusteringRange {
                start: start.clone(),
                end: Bound::Unbounded,
            }],
            reversed: false,
            row_limit: Some(CHUNK),
            now: q.cmd.now,
        };
        let Some(ip) = db.read_partition(&idx.table_id, &ikey, &icmd)? else {
            page.exhausted = true;
            break;
        };
        let n = ip.rows.len();
        reg.entries_read.set(reg.entries_read.get() + n as u64);
        for (ic, irow) in &ip.rows {
            start = Bound::Exclusive(ic.clone());
            if ic.len() < 2 || ic[0].len() != 8 {
                continue;
            }
            let token = i64::from_be_bytes(ic[0][..].try_into().unwrap_or([0; 8]));
            let bkey = PartitionKey {
                token,
                key: ic[1].clone(),
            };
            if !q.range.admits_end(token, &bkey.key) {
                page.exhausted = true;
                break 'outer;
            }
            if !q.range.admits_start(token, &bkey.key) {
                continue;
            }
            let ck: Clustering = ic[2..].to_vec();
            if !q
                .cmd
                .ranges
                .iter()
                .any(|r| q.base_schema.range_contains(r, &ck))
            {
                continue;
            }
            let bcmd = ReadCommand {
                ranges: vec![ClusteringRange {
                    start: Bound::Inclusive(ck.clone()),
                    end: Bound::Inclusive(ck.clone()),
                }],
                reversed: false,
                row_limit: None,
                now: q.cmd.now,
            };
            reg.base_rows_read.set(reg.base_rows_read.get() + 1);
            let base = db.read_partition(&idx.base, &bkey, &bcmd)?;
            let entry_ts = irow.liveness.map(|l| l.timestamp).unwrap_or(i64::MIN);
            let found = base.and_then(|mut p| {
                let (c, row) = p.rows.pop()?;
                let data = row
                    .columns
                    .iter()
                    .find(|(id, _)| *id == idx.column_id)
                    .map(|(_, d)| d);
                match data {
                    Some(d) if holds_value(idx, d, q.value).is_some() => {
                        p.rows = vec![(c, row)];
                        Some(Ok(p))
                    }
                    Some(d) => Some(Err(newest_timestamp(d))),
                    None => None,
                }
            });
            match found {
                Some(Ok(p)) => {
                    match page.parts.last_mut() {
                        Some(last) if last.key == p.key => last.rows.extend(p.rows),
                        _ => page.parts.push(p),
                    }
                    matched += 1;
                    if matched >= q.limit {
                        break 'outer;
                    }
                }
                // Only a single-cell value: a newer base cell means no write
                // at or below the index row's timestamp can make it current.
                Some(Err(Some(ts))) if idx.kind == TargetKind::Value && ts > entry_ts => {
                    stale.push((ic.clone(), entry_ts))
                }
                _ => {}
            }
        }
        if n < CHUNK {
            page.exhausted = true;
            break;
        }
    }
    if !stale.is_empty() {
        let mut update = PartitionUpdate::new(ikey);
        let now = engine::database::now_seconds();
        for (c, ts) in stale {
            update.rows.push((
                c,
                Row {
                    liveness: None,
                    deletion: Some(DeletionTime {
                        timestamp: ts,
                        local_deletion_time: now,
                    }),
                    columns: Vec::new(),
                },
            ));
        }
        reg.stale_deleted
            .set(reg.stale_deleted.get() + update.rows.len() as u64);
        db.apply(&Mutation {
            table: idx.table_id,
            update,
        })?;
    }
    Ok(page)
}

pub mod query;

#[cfg(test)]
mod tests;
