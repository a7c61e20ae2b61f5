//! SSTables: immutable, sorted files holding one table's partitions on one
//! shard (format v1, see `docs/sstable-format.md` and [`format`]).
//!
//! A file is LZ4-compressed data blocks (each with a CRC32C) holding whole
//! partitions in (token, key) order, then a partition index, a bloom filter
//! on partition keys, statistics and a fixed footer. Files are written
//! under a temporary name, fsynced, renamed and the directory fsynced, so a
//! file with its final name is always complete. [`SSTable`] is a
//! [`MutationSource`]: it returns raw content (tombstones included) and is
//! merged with memtables and other SSTables by the read path. Data blocks
//! read on the shard's thread go through the shard's [`BlockCache`] once
//! the SSTable is attached to it ([`SSTable::attach_cache`]).

pub mod cache;
pub mod format;
#[cfg(test)]
mod tests;
mod writer;

use std::cmp::Ordering;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::error::EngineError;
use crate::mutation::{ClusteringRange, PartitionKey, PartitionUpdate};
use crate::read::{ScanBound, TokenRange};
use crate::reader::MutationSource;
use crate::schema::TableSchema;
use crate::serialize::decode_partition_at;

pub use cache::{BlockCache, BlockCacheStats};
use format::{
    BloomFilter, Cursor, Footer, SSTableStats, BLOCK_OVERHEAD, FOOTER_SIZE, FORMAT_VERSION,
    HEADER_SIZE, MAGIC, MAX_BLOCK_SIZE,
};
pub use writer::{PendingSSTable, SSTableWriter};

/// The file name of generation `generation`.
pub fn file_name(generation: u64) -> String {
    format!("SSTable-{FORMAT_VERSION}-{generation}.db")
}

/// The generation of an SSTable file name (any format version), if it is
/// one.
pub fn parse_file_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("SSTable-")?.strip_suffix(".db")?;
    let (_version, generation) = rest.split_once('-')?;
    generation.parse().ok()
}

/// Fsyncs a directory so renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Where a data block is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BlockHandle {
    offset: u64,
    length: u32,
}

/// One partition in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexEntry {
    token: i64,
    key: Bytes,
    block: u32,
    offset: u32,
    length: u32,
}

impl IndexEntry {
    fn position(&self) -> (i64, &[u8]) {
        (self.token, &self.key)
    }
}

/// Entries per index summary sample (Cassandra's `min_index_interval`).
const SUMMARY_INTERVAL: usize = 128;

/// An open SSTable.
#[derive(Debug)]
pub struct SSTable {
    path: PathBuf,
    generation: u64,
    file: File,
    file_size: u64,
    schema: Arc<TableSchema>,
    blocks: Vec<BlockHandle>,
    index: Vec<IndexEntry>,
    /// `index[i].token` for every entry, densely packed: a lookup's binary
    /// search touches a few cache lines of this, not 56-byte entries
    /// spread over the whole index.
    tokens: Vec<i64>,
    /// The index summary: the token of every [`SUMMARY_INTERVAL`]-th entry
    /// (small enough to stay in the CPU cache); it narrows a lookup to one
    /// window of `tokens`.
    summary: Vec<i64>,
    bloom: BloomFilter,
    stats: SSTableStats,
    /// Reads the bloom filter admitted whose key was not in the file.
    bloom_false_positives: AtomicU64,
    /// The shard's block cache and this file's id in it, once attached.
    cache: OnceLock<CacheHandle>,
}

#[derive(Debug)]
struct CacheHandle {
    cache: Arc<BlockCache>,
    file: u64,
}

impl Drop for SSTable {
    /// The file is closed (deleted, compacted away, or the table dropped):
    /// its blocks leave the cache.
    fn drop(&mut self) {
        if let Some(h) = self.cache.get() {
            h.cache.forget(h.file, self.blocks.len() as u32);
        }
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::CorruptSSTable {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl SSTable {
    /// Opens and validates an SSTable: header, footer, every metadata
    /// section's checksum, index order and bounds. Data block checksums are
    /// checked when a block is read ([`SSTable::verify`] checks them all).
    /// Any damage is an [`EngineError::CorruptSSTable`], never a panic.
    pub fn open(path: &Path, schema: Arc<TableSchema>) -> Result<SSTable, EngineError> {
        let generation = parse_file_name(path)
            .ok_or_else(|| corrupt(path, "file name is not SSTable-<version>-<generation>.db"))?;
        let file = File::open(path)?;
        let file_size = file.metadata()?.len();
        if file_size < (HEADER_SIZE + FOOTER_SIZE) as u64 {
            return Err(corrupt(path, format!("file too short ({file_size} bytes)")));
        }
        let mut header = [0u8; HEADER_SIZE];
        file.read_exact_at(&mut header, 0)?;
        if header[..8] != MAGIC {
            return Err(corrupt(path, "bad magic at start of file"));
        }
        let version = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        if header[12..16] != [0; 4] {
            return Err(corrupt(path, "reserved header bytes are not zero"));
        }
        if version != FORMAT_VERSION {
            return Err(corrupt(
                path,
                format!("unsupported format version {version} in header"),
            ));
        }
        let mut fb = [0u8; FOOTER_SIZE];
        file.read_exact_at(&mut fb, file_size - FOOTER_SIZE as u64)?;
        let footer = Footer::decode(&fb).map_err(|e| corrupt(path, e))?;
        let meta_end = file_size - FOOTER_SIZE as u64;
        let read_section =
            |h: &format::SectionHandle, what: &str| -> Result<Vec<u8>, EngineError> {
                let end = h.offset.checked_add(h.length);
                if h.offset < HEADER_SIZE as u64 || end.is_none_or(|e| e > meta_end) {
                    return Err(corrupt(path, format!("{what} section out of bounds")));
                }
                let mut buf = vec![0u8; h.length as usize];
                file.read_exact_at(&mut buf, h.offset)?;
                if crc32c::crc32c(&buf) != h.crc {
                    return Err(corrupt(path, format!("{what} section checksum mismatch")));
                }
                Ok(buf)
            };
        let stats_bytes = read_section(&footer.stats, "statistics")?;
        let stats = SSTableStats::decode(&stats_bytes).map_err(|e| corrupt(path, e))?;
        if stats.table_id != schema.id {
            return Err(corrupt(path, "SSTable belongs to another table"));
        }
        let bloom_bytes = read_section(&footer.bloom, "bloom filter")?;
        let bloom = BloomFilter::decode(&bloom_bytes).map_err(|e| corrupt(path, e))?;
        let index_bytes = read_section(&footer.index, "index")?;
        let (blocks, index) =
            parse_index(&index_bytes, footer.index.offset).map_err(|e| corrupt(path, e))?;
        if index.len() as u64 != stats.partition_count {
            return Err(corrupt(path, "index and statistics disagree on partitions"));
        }
        if let (Some(first), Some(last)) = (index.first(), index.last()) {
            if first.position() != (stats.first_token, &stats.first_key[..])
                || last.position() != (stats.last_token, &stats.last_key[..])
            {
                return Err(corrupt(path, "index and statistics disagree on key range"));
            }
        }
        let tokens: Vec<i64> = index.iter().map(|e| e.token).collect();
        let summary = tokens.iter().step_by(SUMMARY_INTERVAL).copied().collect();
        Ok(SSTable {
            path: path.to_path_buf(),
            generation,
            file,
            file_size,
            schema,
            blocks,
            index,
            tokens,
            summary,
            bloom,
            stats,
            bloom_false_positives: AtomicU64::new(0),
            cache: OnceLock::new(),
        })
    }

    /// Serves this file's data blocks through `cache` from now on (reads
    /// on the cache's thread only; see [`cache`]). An SSTable is attached
    /// to at most one cache: later calls do nothing.
    pub fn attach_cache(&self, cache: &Arc<BlockCache>) {
        self.cache.get_or_init(|| CacheHandle {
            cache: cache.clone(),
            file: cache.register(),
        });
    }

    /// Number of data blocks.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Reads the bloom filter let through for keys the file does not
    /// hold (`Bloom filter false positives`).
    pub fn bloom_filter_false_positives(&self) -> u64 {
        self.bloom_false_positives.load(AtomicOrdering::Relaxed)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The generation (unique per table directory, grows with age).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Size on disk in bytes.
    pub fn size(&self) -> u64 {
        self.file_size
    }

    /// The file's statistics.
    pub fn stats(&self) -> &SSTableStats {
        &self.stats
    }

    /// Leveled compaction level.
    pub fn level(&self) -> u32 {
        self.stats.level
    }

    /// Whether the file may hold the partition (key range and bloom
    /// filter; false means certainly not).
    pub fn may_contain(&self, key: &PartitionKey) -> bool {
        !self.index.is_empty()
            && (key.token, &key.key[..]) >= (self.stats.first_token, &self.stats.first_key[..])
            && (key.token, &key.key[..]) <= (self.stats.last_token, &self.stats.last_key[..])
            && self.bloom.may_contain(&key.key)
    }

    /// Whether the (token, key) spans of two files overlap.
    pub fn overlaps(&self, other: &SSTable) -> bool {
        if self.index.is_empty() || other.index.is_empty() {
            return false;
        }
        let (a0, a1) = self.span();
        let (b0, b1) = other.span();
        a0 <= b1 && b0 <= a1
    }

    /// First and last partition positions.
    pub fn span(&self) -> ((i64, &[u8]), (i64, &[u8])) {
        (
            (self.stats.first_token, &self.stats.first_key[..]),
            (self.stats.last_token, &self.stats.last_key[..]),
        )
    }

    /// Data block `i`, verified and decompressed: from the block cache when
    /// attached and cached there, else from the file (then cached).
    fn block(&self, i: u32) -> Result<Bytes, EngineError> {
        let Some(h) = self.cache.get() else {
            return self.read_block(i);
        };
        if let Some(b) = h.cache.get(h.file, i) {
            return Ok(b);
        }
        let b = self.read_block(i)?;
        h.cache.insert(h.file, i, &b);
        Ok(b)
    }

    /// Reads data block `i` from the file (one `pread` of its byte range)
    /// and checks its CRC32C, lengths and LZ4 framing.
    fn read_block(&self, i: u32) -> Result<Bytes, EngineError> {
        let h = self
            .blocks
            .get(i as usize)
            .ok_or_else(|| corrupt(&self.path, format!("block {i} does not exist")))?;
        let mut buf = vec![0u8; h.length as usize];
        self.file.read_exact_at(&mut buf, h.offset)?;
        let n = buf.len();
        let crc = u32::from_be_bytes([buf[n - 4], buf[n - 3], buf[n - 2], buf[n - 1]]);
        if crc32c::crc32c(&buf[..n - 4]) != crc {
            return Err(corrupt(
                &self.path,
                format!("data block {i} at offset {} checksum mismatch", h.offset),
            ));
        }
        let raw_len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let comp_len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        if comp_len != n - BLOCK_OVERHEAD || raw_len > MAX_BLOCK_SIZE {
            return Err(corrupt(
                &self.path,
                format!("data block {i} has bad lengths"),
            ));
        }
        let out = lz4_flex::block::decompress(&buf[8..n - 4], raw_len)
            .map_err(|e| corrupt(&self.path, format!("data block {i}: {e}")))?;
        if out.len() != raw_len {
            return Err(corrupt(&self.path, format!("data block {i}: short block")));
        }
        Ok(Bytes::from(out))
    }

    fn decode_entry(&self, e: &IndexEntry, block: &Bytes) -> Result<PartitionUpdate, EngineError> {
        let mut pos = e.offset as usize;
        let p = decode_partition_at(block, &mut pos)
            .map_err(|err| corrupt(&self.path, format!("partition in block {}: {err}", e.block)))?;
        if pos != e.offset as usize + e.length as usize
            || p.key.token != e.token
            || p.key.key != e.key
        {
            return Err(corrupt(
                &self.path,
                format!("partition in block {} does not match the index", e.block),
            ));
        }
        Ok(p)
    }

    /// Reads and checks every data block and partition (a scrub): always
    /// from the file, never from the block cache.
    pub fn verify(&self) -> Result<(), EngineError> {
        let mut cur: Option<(u32, Bytes)> = None;
        for e in &self.index {
            if cur.as_ref().is_none_or(|(b, _)| *b != e.block) {
                cur = Some((e.block, self.read_block(e.block)?));
            }
            let (_, block) = cur.as_ref().expect("set above");
            self.decode_entry(e, block)?;
        }
        Ok(())
    }

    fn slice(&self, p: PartitionUpdate, ranges: &[ClusteringRange]) -> PartitionUpdate {
        slice_partition(&self.schema, p, ranges)
    }

    /// Index of the first entry whose token is at least `token`: a binary
    /// search of the summary, then of one window of `tokens`.
    fn first_with_token(&self, token: i64) -> usize {
        // summary[s - 1] < token <= summary[s]: the entry sampled as
        // summary[s - 1] is before the answer, the one sampled as
        // summary[s] is not.
        let s = self.summary.partition_point(|t| *t < token);
        let lo = s.saturating_sub(1) * SUMMARY_INTERVAL;
        let hi = (s * SUMMARY_INTERVAL).min(self.tokens.len());
        lo + self.tokens[lo..hi].partition_point(|t| *t < token)
    }

    /// The index entry of a partition, if the file holds it.
    fn find(&self, key: &PartitionKey) -> Option<&IndexEntry> {
        let first = self.first_with_token(key.token);
        self.index[first..]
            .iter()
            .take_while(|e| e.token == key.token)
            .find(|e| e.key == key.key)
    }

    /// Index of the first entry admitted by the range's start.
    fn lower_bound(&self, range: &TokenRange) -> usize {
        match &range.start {
            ScanBound::Unbounded => 0,
            ScanBound::Token { token, .. } | ScanBound::Key { token, .. } => {
                let first = self.first_with_token(*token);
                first
                    + self.index[first..]
                        .iter()
                        .take_while(|e| !range.admits_start(e.token, &e.key))
                        .count()
            }
        }
    }
}

/// Restricts raw partition content to `ranges` (rows inside them, range
/// tombstones intersecting them; partition tombstone and static row kept).
pub(crate) fn slice_partition(
    schema: &TableSchema,
    mut p: PartitionUpdate,
    ranges: &[ClusteringRange],
) -> PartitionUpdate {
    let full = ranges.len() == 1 && ranges[0] == ClusteringRange::full();
    if !full {
        p.range_tombstones
            .retain(|rt| ranges.iter().any(|r| schema.ranges_intersect(r, &rt.range)));
        p.rows
            .retain(|(c, _)| ranges.iter().any(|r| schema.range_contains(r, c)));
    }
    p
}

fn parse_index(
    b: &[u8],
    data_end: u64,
) -> Result<(Vec<BlockHandle>, Vec<IndexEntry>), format::ParseError> {
    let mut c = Cursor::new(b);
    let n = c.count(12)?;
    let mut blocks = Vec::with_capacity(n);
    let mut next = HEADER_SIZE as u64;
    for i in 0..n {
        let offset = c.u64()?;
        let length = c.u32()?;
        if offset != next || (length as usize) < BLOCK_OVERHEAD {
            return Err(format!("block {i} handle is not contiguous"));
        }
        next = offset + length as u64;
        blocks.push(BlockHandle { offset, length });
    }
    if next != data_end {
        return Err("data blocks do not end where the index starts".into());
    }
    let n = c.count(24)?;
    let mut index: Vec<IndexEntry> = Vec::with_capacity(n);
    for _ in 0..n {
        let e = IndexEntry {
            token: c.i64()?,
            key: c.bytes()?,
            block: c.u32()?,
            offset: c.u32()?,
            length: c.u32()?,
        };
        if e.block as usize >= blocks.len() {
            return Err("index entry points past the last block".into());
        }
        if let Some(prev) = index.last() {
            if prev.position().cmp(&e.position()) != Ordering::Less {
                return Err("index entries out of order".into());
            }
        }
        index.push(e);
    }
    if c.remaining() != 0 {
        return Err("trailing bytes in index".into());
    }
    Ok((blocks, index))
}

impl MutationSource for SSTable {
    fn read_raw(
        &self,
        key: &PartitionKey,
        ranges: &[ClusteringRange],
    ) -> Result<Option<PartitionUpdate>, EngineError> {
        if !self.may_contain(key) {
            return Ok(None);
        }
        let Some(e) = self.find(key) else {
            self.bloom_false_positives
                .fetch_add(1, AtomicOrdering::Relaxed);
            return Ok(None);
        };
        let block = self.block(e.block)?;
        let p = self.decode_entry(e, &block)?;
        Ok(Some(self.slice(p, ranges)))
    }

    fn scan_raw<'a>(
        &'a self,
        range: &'a TokenRange,
        ranges: &'a [ClusteringRange],
    ) -> Box<dyn Iterator<Item = Result<PartitionUpdate, EngineError>> + 'a> {
        let start = self.lower_bound(range);
        let mut cur: Option<(u32, Bytes)> = None;
        let mut failed = false;
        Box::new(
            self.index[start..]
                .iter()
                .take_while(move |e| range.admits_end(e.token, &e.key))
                .map_while(move |e| {
                    if failed {
                        return None;
                    }
                    if cur.as_ref().is_none_or(|(b, _)| *b != e.block) {
                        match self.block(e.block) {
                            Ok(b) => cur = Some((e.block, b)),
                            Err(err) => {
                                failed = true;
                                return Some(Err(err));
                            }
                        }
                    }
                    let (_, block) = cur.as_ref().expect("set above");
                    let r = self.decode_entry(e, block).map(|p| self.slice(p, ranges));
                    failed = r.is_err();
                    Some(r)
                }),
        )
    }
}

/// What [`load_directory`] found.
#[derive(Debug, Default)]
pub struct LoadedDirectory {
    /// Open SSTables, oldest generation first.
    pub sstables: Vec<Arc<SSTable>>,
    /// The next free generation in the directory.
    pub next_generation: u64,
}

/// Opens every SSTable of a table directory (creating the directory if
/// needed). First removes leftovers of interrupted writes (`*.tmp`) and
/// finishes or rolls back interrupted compactions (their logs; see
/// `docs/compaction.md`). Fails on the first damaged SSTable.
pub fn load_directory(
    dir: &Path,
    schema: &Arc<TableSchema>,
) -> Result<LoadedDirectory, EngineError> {
    fs::create_dir_all(dir)?;
    crate::compaction::recover_directory(dir)?;
    let mut found = Vec::new();
    let mut max_generation = 0;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(g) = parse_file_name(&path) {
            found.push((g, path));
            max_generation = max_generation.max(g);
        } else if let Some(g) = crate::compaction::parse_log_name(&path) {
            max_generation = max_generation.max(g);
        }
    }
    found.sort();
    let mut sstables = Vec::with_capacity(found.len());
    for (_, path) in found {
        sstables.push(Arc::new(SSTable::open(&path, schema.clone())?));
    }
    Ok(LoadedDirectory {
        sstables,
        next_generation: max_generation + 1,
    })
}
