//! The in-memory write buffer of one table on one shard.
//!
//! Partitions are ordered by (token, key bytes) — the order SSTables and
//! scans use — and rows inside a partition by the table's clustering order.
//! Writes merge into what is already there with last-write-wins rules, so a
//! memtable holds at most one version of each cell.
//!
//! # Layout
//!
//! All data lives in a [`MemtableArena`] (see [`arena`]): partition keys,
//! clustering keys, rows with their cells (collections, TTLs, counters as
//! plain cells), static rows and range tombstones are bytes in large
//! chunks, laid out as [`format`] describes. The indexes hold only small
//! fixed-size handles into it:
//!
//! * the partition index is a `BTreeMap<(token, rank), PartitionEntry>`;
//!   `rank` orders the (in practice never more than one) partitions that
//!   share a token by key bytes, so the map's order is (token, key). An
//!   entry holds the key's handle, the partition tombstone, the static row's
//!   handle, the head of the partition's range tombstone list and its rows;
//! * a partition's rows are a single (clustering, row) handle pair while it
//!   has one row — every partition of a table without clustering columns —
//!   and a skip list in the arena ordered by clustering once it has more:
//!   nodes are arena bytes (height, row handle, clustering handle, one
//!   next-handle per level), so slices seek in O(log n) and read only the
//!   rows they need;
//! * range tombstones are a singly linked list in the arena (rare, read
//!   whole).
//!
//! Writing a new row allocates nothing on the heap per row or per cell:
//! its bytes are encoded straight into the arena and at most a handle goes
//! into the index. What remains on the heap is amortised: a new arena chunk
//! (4 KiB doubling up to 1 MiB, then one per MiB written) and B-tree node
//! splits of the partition index (one node holds up to 11 entries). A
//! write that merges into an existing row decodes that row, merges with
//! [`merge_row`] (the one definition of last-write-wins) and writes the
//! merged version into the arena; the handle is repointed and the old
//! bytes are garbage until the memtable is flushed and dropped.
//!
//! Deletions are applied lazily: a partition tombstone is recorded in the
//! entry in O(1), and what it shadows (older rows, cells, range tombstones,
//! the static row) is dropped when the partition is read or flushed, so
//! readers see exactly what an eager purge would have left.
//!
//! # Memory accounting
//!
//! [`Memtable::memory_usage`] is the arena's reserved bytes (whole chunks,
//! garbage included, so overwrites still drive the flush trigger) plus an
//! estimate of the partition index (entry size × 1.5 for B-tree node
//! slack). Values are copied in, so a memtable never pins a caller's
//! buffers (e.g. a whole request frame).

pub mod arena;
mod format;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound as StdBound;
use std::sync::Arc;

use bytes::Bytes;

pub use arena::{ArenaRef, MemtableArena};

use crate::error::EngineError;
use crate::mutation::{
    Bound, ClusteringRange, ColumnData, DeletionTime, PartitionKey, PartitionUpdate, Row, Token,
};
use crate::read::{ScanBound, TokenRange};
use crate::reader::MutationSource;
use crate::reconcile::{
    deletion_supersedes, max_deletion, merge_row, normalize_row, purge_shadowed, row_is_empty,
};
use crate::schema::TableSchema;
use format::{Reader, Writer};

/// Highest skip list level (p = 1/4: ~16M rows per partition before the
/// list degrades).
const MAX_HEIGHT: usize = 12;
/// Skip list node header: u32 height | row handle | clustering handle.
const NODE_HEADER: usize = 4 + 2 * ArenaRef::ENCODED_LEN;
/// Estimated heap bytes per partition index entry (B-tree nodes are
/// between half full and full).
const INDEX_ENTRY_BYTES: usize =
    (std::mem::size_of::<(Token, u32)>() + std::mem::size_of::<PartitionEntry>()) * 3 / 2;

/// A partition's rows.
#[derive(Debug, Clone, Copy)]
enum Rows {
    None,
    /// The only row: encoded clustering and row.
    Single {
        clustering: ArenaRef,
        row: ArenaRef,
    },
    /// A skip list (see the module doc); `head` is a node of
    /// [`MAX_HEIGHT`] levels without clustering or row.
    List {
        head: ArenaRef,
    },
}

/// One partition in the index.
#[derive(Debug, Clone, Copy)]
struct PartitionEntry {
    key: ArenaRef,
    tombstone: Option<DeletionTime>,
    static_row: Option<ArenaRef>,
    /// Newest first; each node is `next handle | range tombstone`.
    range_tombstones: Option<ArenaRef>,
    rows: Rows,
}

// ------------------------------------------------------------ skip list

fn node_field(arena: &MemtableArena, node: ArenaRef, at: usize) -> ArenaRef {
    ArenaRef::from_bytes(&arena.bytes(node)[at..at + ArenaRef::ENCODED_LEN])
}

fn set_node_field(arena: &mut MemtableArena, node: ArenaRef, at: usize, value: ArenaRef) {
    arena.bytes_mut(node)[at..at + ArenaRef::ENCODED_LEN].copy_from_slice(&value.to_bytes());
}

fn node_row(arena: &MemtableArena, node: ArenaRef) -> ArenaRef {
    node_field(arena, node, 4)
}

fn node_clustering(arena: &MemtableArena, node: ArenaRef) -> ArenaRef {
    node_field(arena, node, 4 + ArenaRef::ENCODED_LEN)
}

fn node_next(arena: &MemtableArena, node: ArenaRef, level: usize) -> ArenaRef {
    node_field(arena, node, NODE_HEADER + level * ArenaRef::ENCODED_LEN)
}

fn set_node_next(arena: &mut MemtableArena, node: ArenaRef, level: usize, next: ArenaRef) {
    set_node_field(
        arena,
        node,
        NODE_HEADER + level * ArenaRef::ENCODED_LEN,
        next,
    );
}

fn new_node(
    arena: &mut MemtableArena,
    height: usize,
    clustering: ArenaRef,
    row: ArenaRef,
) -> ArenaRef {
    let node = arena.alloc(NODE_HEADER + height * ArenaRef::ENCODED_LEN);
    let b = arena.bytes_mut(node);
    b[0..4].copy_from_slice(&(height as u32).to_le_bytes());
    b[4..16].copy_from_slice(&row.to_bytes());
    b[16..28].copy_from_slice(&clustering.to_bytes());
    // Next handles start zeroed, i.e. ArenaRef::EMPTY (end of list).
    node
}

fn node_height(arena: &MemtableArena, node: ArenaRef) -> usize {
    let b = arena.bytes(node);
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// For each level, the last node before position (`probe`, `side`), and
/// the first node at or after it (empty at the end).
fn seek(
    schema: &TableSchema,
    arena: &MemtableArena,
    head: ArenaRef,
    probe: &[Bytes],
    side: i8,
) -> ([ArenaRef; MAX_HEIGHT], ArenaRef) {
    let mut preds = [head; MAX_HEIGHT];
    let mut x = head;
    for level in (0..MAX_HEIGHT).rev() {
        loop {
            let next = node_next(arena, x, level);
            if next.is_empty() {
                break;
            }
            let c = arena.bytes(node_clustering(arena, next));
            if format::compare_clustering(schema, c, probe, side) != Ordering::Less {
                break;
            }
            x = next;
        }
        preds[level] = x;
    }
    (preds, node_next(arena, x, 0))
}

/// Links `node` after `preds` on each of its levels.
fn link(arena: &mut MemtableArena, preds: &[ArenaRef; MAX_HEIGHT], node: ArenaRef) {
    for (level, pred) in preds.iter().enumerate().take(node_height(arena, node)) {
        let next = node_next(arena, *pred, level);
        set_node_next(arena, node, level, next);
        set_node_next(arena, *pred, level, node);
    }
}

// -------------------------------------------------------------- writing

fn encode_row(arena: &mut MemtableArena, row: &Row) -> ArenaRef {
    let r = arena.alloc(format::row_len(row));
    let mut w = Writer::new(arena.bytes_mut(r));
    format::write_row(&mut w, row);
    debug_assert_eq!(w.position(), r.len(), "row_len is exact");
    r
}

fn encode_clustering(arena: &mut MemtableArena, c: &[Bytes]) -> ArenaRef {
    let r = arena.alloc(format::clustering_len(c));
    format::write_clustering(&mut Writer::new(arena.bytes_mut(r)), c);
    r
}

/// Writes `row` merged into the stored row `existing` (if any) and
/// returns the new version's handle; the old version becomes garbage.
fn merge_into(arena: &mut MemtableArena, existing: Option<ArenaRef>, row: &Row) -> ArenaRef {
    match existing {
        None => encode_row(arena, row),
        Some(old) => {
            let mut merged = format::read_row(arena.bytes(old));
            merge_row(&mut merged, row);
            let new = encode_row(arena, &merged);
            arena.release(old);
            new
        }
    }
}

/// Whether a row's columns and complex cells are sorted without
/// duplicates (what `normalize_row` establishes).
fn is_normalized(row: &Row) -> bool {
    row.columns.windows(2).all(|w| w[0].0 < w[1].0)
        && row.columns.iter().all(|(_, d)| match d {
            ColumnData::Complex { cells, .. } => cells.windows(2).all(|w| w[0].0 < w[1].0),
            ColumnData::Simple(_) => true,
        })
}

/// The smallest timestamp of data (not deletions) in a row.
fn min_data_timestamp(row: &Row) -> Option<i64> {
    let cells = row.columns.iter().flat_map(|(_, d)| match d {
        ColumnData::Simple(c) => std::slice::from_ref(c).iter().map(|c| c.timestamp).min(),
        ColumnData::Complex { cells, .. } => cells.iter().map(|(_, c)| c.timestamp).min(),
    });
    row.liveness
        .map(|l| l.timestamp)
        .into_iter()
        .chain(cells)
        .min()
}

/// `row` as the memtable stores it: normalised, and without what the
/// partition tombstone `pt`, its own deletion or its collection tombstones
/// shadow. Borrowed (no copy) in the common case where there is nothing to
/// do.
fn prepare_row(row: &Row, pt: Option<DeletionTime>) -> Cow<'_, Row> {
    let needs_purge = row.deletion.is_some()
        || row.columns.iter().any(|(_, d)| {
            matches!(
                d,
                ColumnData::Complex {
                    tombstone: Some(_),
                    ..
                }
            )
        })
        || pt.is_some_and(|p| min_data_timestamp(row).is_some_and(|m| m <= p.timestamp));
    if !needs_purge && is_normalized(row) {
        return Cow::Borrowed(row);
    }
    let mut r = row.clone();
    normalize_row(&mut r);
    purge_shadowed(&mut r, pt);
    Cow::Owned(r)
}

#[derive(Default)]
struct TimestampSpan(Option<(i64, i64)>);

impl TimestampSpan {
    fn add(&mut self, ts: i64) {
        self.0 = Some(match self.0 {
            None => (ts, ts),
            Some((lo, hi)) => (lo.min(ts), hi.max(ts)),
        });
    }

    fn add_row(&mut self, row: &Row) {
        if let Some(l) = row.liveness {
            self.add(l.timestamp);
        }
        if let Some(d) = row.deletion {
            self.add(d.timestamp);
        }
        for (_, data) in &row.columns {
            match data {
                ColumnData::Simple(c) => self.add(c.timestamp),
                ColumnData::Complex { tombstone, cells } => {
                    if let Some(t) = tombstone {
                        self.add(t.timestamp);
                    }
                    for (_, c) in cells {
                        self.add(c.timestamp);
                    }
                }
            }
        }
    }
}

/// Where a partition is in the index, or where it would go: `Vacant`
/// ranks are free, `Before` ranks hold a partition with a greater key.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Found(u32),
    Vacant(u32),
    Before(u32),
}

fn random_height(rng: &mut u64) -> usize {
    let mut x = *rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    (1 + x.trailing_zeros() as usize / 2).min(MAX_HEIGHT)
}

/// Merges `row` at clustering `c` into `rows`; returns the new state.
fn insert_row(
    schema: &TableSchema,
    arena: &mut MemtableArena,
    rng: &mut u64,
    rows: Rows,
    c: &[Bytes],
    row: &Row,
) -> Rows {
    let head = match rows {
        Rows::None => {
            let clustering = encode_clustering(arena, c);
            let row = encode_row(arena, row);
            return Rows::Single { clustering, row };
        }
        Rows::Single {
            clustering,
            row: old,
        } => {
            let stored = arena.bytes(clustering);
            if format::compare_clustering(schema, stored, c, 0) == Ordering::Equal {
                let row = merge_into(arena, Some(old), row);
                return Rows::Single { clustering, row };
            }
            // A second row: move to a skip list.
            let head = new_node(arena, MAX_HEIGHT, ArenaRef::EMPTY, ArenaRef::EMPTY);
            let first = new_node(arena, random_height(rng), clustering, old);
            link(arena, &[head; MAX_HEIGHT], first);
            head
        }
        Rows::List { head } => head,
    };
    let (preds, found) = seek(schema, arena, head, c, 0);
    if !found.is_empty() {
        let stored = arena.bytes(node_clustering(arena, found));
        if format::compare_clustering(schema, stored, c, 0) == Ordering::Equal {
            let old = node_row(arena, found);
            let new = merge_into(arena, Some(old), row);
            set_node_field(arena, found, 4, new);
            return Rows::List { head };
        }
    }
    let clustering = encode_clustering(arena, c);
    let row = encode_row(arena, row);
    let node = new_node(arena, random_height(rng), clustering, row);
    link(arena, &preds, node);
    Rows::List { head }
}

/// The nodes of a range tombstone list, newest first.
fn range_tombstone_nodes(
    arena: &MemtableArena,
    head: Option<ArenaRef>,
) -> impl Iterator<Item = ArenaRef> + '_ {
    std::iter::successors(head, move |n| {
        let next = ArenaRef::from_bytes(&arena.bytes(*n)[..ArenaRef::ENCODED_LEN]);
        (!next.is_empty()).then_some(next)
    })
}

/// One table's memtable.
pub struct Memtable {
    schema: Arc<TableSchema>,
    arena: MemtableArena,
    partitions: BTreeMap<(Token, u32), PartitionEntry>,
    operations: u64,
    min_timestamp: i64,
    max_timestamp: i64,
    /// Skip list level generator (xorshift, never zero).
    rng: u64,
}

impl fmt::Debug for Memtable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memtable")
            .field("table", &self.schema.id)
            .field("partitions", &self.partitions.len())
            .field("operations", &self.operations)
            .field("arena", &self.arena)
            .finish()
    }
}

impl Memtable {
    /// An empty memtable for `schema`'s table. Reserves nothing until the
    /// first write.
    pub fn new(schema: Arc<TableSchema>) -> Self {
        Memtable {
            schema,
            arena: MemtableArena::new(),
            partitions: BTreeMap::new(),
            operations: 0,
            min_timestamp: i64::MAX,
            max_timestamp: i64::MIN,
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    /// The schema this memtable orders rows by.
    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    /// Bytes held: arena chunks reserved (garbage included) plus an
    /// estimate of the partition index.
    pub fn memory_usage(&self) -> usize {
        self.arena.reserved() + self.partitions.len() * INDEX_ENTRY_BYTES
    }

    /// Arena bytes holding superseded versions (freed with the memtable).
    pub fn garbage_bytes(&self) -> usize {
        self.arena.garbage()
    }

    /// The arena (for statistics).
    pub fn arena(&self) -> &MemtableArena {
        &self.arena
    }

    /// Number of partitions held.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Number of updates applied.
    pub fn operation_count(&self) -> u64 {
        self.operations
    }

    /// Whether nothing was ever written.
    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// Whether the memtable holds anything for the partition.
    pub fn contains(&self, key: &PartitionKey) -> bool {
        matches!(self.find(key.token, &key.key), Slot::Found(_))
    }

    /// Smallest and largest write timestamps seen, if any write was applied.
    pub fn timestamp_range(&self) -> Option<(i64, i64)> {
        (self.min_timestamp <= self.max_timestamp)
            .then_some((self.min_timestamp, self.max_timestamp))
    }

    /// Where partition (`token`, `key`) is, or would be inserted, among
    /// the partitions sharing its token.
    fn find(&self, token: Token, key: &[u8]) -> Slot {
        match self.partitions.get(&(token, 0)) {
            None => return Slot::Vacant(0),
            Some(e) if self.arena.bytes(e.key) == key => return Slot::Found(0),
            Some(_) => {}
        }
        let mut end = 0;
        for (&(_, rank), e) in self.partitions.range((token, 0)..=(token, u32::MAX)) {
            match self.arena.bytes(e.key).cmp(key) {
                Ordering::Equal => return Slot::Found(rank),
                Ordering::Greater => return Slot::Before(rank),
                Ordering::Less => end = rank + 1,
            }
        }
        Slot::Vacant(end)
    }

    /// Merges one partition update in. The caller validates the update's
    /// shape (clustering lengths) against the schema.
    pub fn apply(&mut self, update: &PartitionUpdate) {
        let mut span = TimestampSpan::default();
        let token = update.key.token;
        let slot = self.find(token, &update.key.key);
        let Memtable {
            schema,
            arena,
            partitions,
            rng,
            ..
        } = self;
        let entry = match slot {
            Slot::Found(rank) => partitions.get_mut(&(token, rank)).expect("found"),
            Slot::Vacant(rank) | Slot::Before(rank) => {
                let entry = PartitionEntry {
                    key: arena.copy(&update.key.key),
                    tombstone: None,
                    static_row: None,
                    range_tombstones: None,
                    rows: Rows::None,
                };
                if let Slot::Before(_) = slot {
                    // A token collision (rare): the partitions of this
                    // token from `rank` on move one rank up.
                    let mut last = rank;
                    while partitions.contains_key(&(token, last)) {
                        last += 1;
                    }
                    for r in (rank..last).rev() {
                        let e = partitions.remove(&(token, r)).expect("present");
                        partitions.insert((token, r + 1), e);
                    }
                }
                partitions.entry((token, rank)).or_insert(entry)
            }
        };

        // Partition deletion: shadows everything older in the partition,
        // applied when the partition is read (see the module doc).
        if let Some(t) = update.tombstone {
            span.add(t.timestamp);
            entry.tombstone = max_deletion(entry.tombstone, Some(t));
        }
        let pt = entry.tombstone;

        if let Some(s) = &update.static_row {
            span.add_row(s);
            let s = prepare_row(s, pt);
            if !row_is_empty(&s) {
                entry.static_row = Some(merge_into(arena, entry.static_row, &s));
            }
        }

        for rt in &update.range_tombstones {
            span.add(rt.deletion.timestamp);
            if pt.is_some_and(|p| !deletion_supersedes(&rt.deletion, &p))
                || schema.range_is_empty(&rt.range)
            {
                continue;
            }
            let node = arena.alloc(ArenaRef::ENCODED_LEN + format::range_tombstone_len(rt));
            let head = entry.range_tombstones.unwrap_or(ArenaRef::EMPTY);
            {
                let b = arena.bytes_mut(node);
                b[..ArenaRef::ENCODED_LEN].copy_from_slice(&head.to_bytes());
                format::write_range_tombstone(
                    &mut Writer::new(&mut b[ArenaRef::ENCODED_LEN..]),
                    rt,
                );
            }
            let payload = &arena.bytes(node)[ArenaRef::ENCODED_LEN..];
            let duplicate = range_tombstone_nodes(arena, entry.range_tombstones)
                .any(|n| &arena.bytes(n)[ArenaRef::ENCODED_LEN..] == payload);
            if duplicate {
                arena.release(node);
            } else {
                entry.range_tombstones = Some(node);
            }
        }

        for (c, row) in &update.rows {
            span.add_row(row);
            let row = prepare_row(row, pt);
            if row_is_empty(&row) {
                continue;
            }
            entry.rows = insert_row(schema, arena, rng, entry.rows, c, &row);
        }

        self.operations += 1;
        if let Some((lo, hi)) = span.0 {
            self.min_timestamp = self.min_timestamp.min(lo);
            self.max_timestamp = self.max_timestamp.max(hi);
        }
    }

    /// A stored row as readers see it: shadowed parts dropped, `None` if
    /// nothing is left.
    fn decode_row(&self, r: ArenaRef, pt: Option<DeletionTime>) -> Option<Row> {
        let mut row = format::read_row(self.arena.bytes(r));
        if pt.is_some() {
            purge_shadowed(&mut row, pt);
        }
        (!row_is_empty(&row)).then_some(row)
    }

    fn decode_clustering(&self, r: ArenaRef) -> Vec<Bytes> {
        format::read_clustering(&mut Reader::new(self.arena.bytes(r)))
    }

    /// Appends the rows of `head`'s list inside `range` to `out`.
    fn read_list_range(
        &self,
        head: ArenaRef,
        range: &ClusteringRange,
        pt: Option<DeletionTime>,
        out: &mut Vec<(Vec<Bytes>, Row)>,
    ) {
        let arena = &self.arena;
        let schema = &self.schema;
        let mut node = match &range.start {
            Bound::Unbounded => node_next(arena, head, 0),
            Bound::Inclusive(p) => seek(schema, arena, head, p, -1).1,
            Bound::Exclusive(p) => seek(schema, arena, head, p, 1).1,
        };
        while !node.is_empty() {
            let c = node_clustering(arena, node);
            let inside = match &range.end {
                Bound::Unbounded => true,
                Bound::Inclusive(p) => {
                    format::compare_clustering(schema, arena.bytes(c), p, 1) == Ordering::Less
                }
                Bound::Exclusive(p) => {
                    format::compare_clustering(schema, arena.bytes(c), p, -1) == Ordering::Less
                }
            };
            if !inside {
                break;
            }
            if let Some(row) = self.decode_row(node_row(arena, node), pt) {
                out.push((self.decode_clustering(c), row));
            }
            node = node_next(arena, node, 0);
        }
    }

    fn raw(&self, token: Token, p: &PartitionEntry, ranges: &[ClusteringRange]) -> PartitionUpdate {
        let pt = p.tombstone;
        let mut out = PartitionUpdate::new(PartitionKey {
            token,
            key: Bytes::copy_from_slice(self.arena.bytes(p.key)),
        });
        out.tombstone = pt;
        out.static_row = p.static_row.and_then(|r| self.decode_row(r, pt));
        if p.range_tombstones.is_some() {
            let mut rts: Vec<_> = range_tombstone_nodes(&self.arena, p.range_tombstones)
                .map(|n| {
                    format::read_range_tombstone(&self.arena.bytes(n)[ArenaRef::ENCODED_LEN..])
                })
                .filter(|rt| {
                    pt.is_none_or(|p| deletion_supersedes(&rt.deletion, &p))
                        && ranges
                            .iter()
                            .any(|r| self.schema.ranges_intersect(r, &rt.range))
                })
                .collect();
            // The list is newest first; report in write order.
            rts.reverse();
            out.range_tombstones = rts;
        }
        for r in ranges {
            if self.schema.range_is_empty(r) {
                continue;
            }
            match p.rows {
                Rows::None => {}
                Rows::Single { clustering, row } => {
                    let c = self.decode_clustering(clustering);
                    if self.schema.range_contains(r, &c) {
                        if let Some(row) = self.decode_row(row, pt) {
                            out.rows.push((c, row));
                        }
                    }
                }
                Rows::List { head } => self.read_list_range(head, r, pt, &mut out.rows),
            }
        }
        // Ranges are documented as sorted and disjoint; keep the invariant
        // even if a caller broke it.
        if out
            .rows
            .windows(2)
            .any(|w| self.schema.compare_clustering(&w[0].0, &w[1].0) != Ordering::Less)
        {
            out.rows
                .sort_by(|a, b| self.schema.compare_clustering(&a.0, &b.0));
            out.rows
                .dedup_by(|a, b| self.schema.compare_clustering(&a.0, &b.0) == Ordering::Equal);
        }
        out
    }
}

impl MutationSource for Memtable {
    fn read_raw(
        &self,
        key: &PartitionKey,
        ranges: &[ClusteringRange],
    ) -> Result<Option<PartitionUpdate>, EngineError> {
        Ok(match self.find(key.token, &key.key) {
            Slot::Found(rank) => {
                let p = &self.partitions[&(key.token, rank)];
                Some(self.raw(key.token, p, ranges))
            }
            Slot::Vacant(_) | Slot::Before(_) => None,
        })
    }

    fn scan_raw<'a>(
        &'a self,
        range: &'a TokenRange,
        ranges: &'a [ClusteringRange],
    ) -> Box<dyn Iterator<Item = Result<PartitionUpdate, EngineError>> + 'a> {
        let start = match &range.start {
            ScanBound::Unbounded => StdBound::Unbounded,
            ScanBound::Token { token, .. } | ScanBound::Key { token, .. } => {
                StdBound::Included((*token, 0))
            }
        };
        Box::new(
            self.partitions
                .range((start, StdBound::Unbounded))
                .skip_while(move |(&(t, _), p)| !range.admits_start(t, self.arena.bytes(p.key)))
                .take_while(move |(&(t, _), p)| range.admits_end(t, self.arena.bytes(p.key)))
                .map(move |(&(t, _), p)| Ok(self.raw(t, p, ranges))),
        )
    }
}

#[cfg(test)]
mod tests;
