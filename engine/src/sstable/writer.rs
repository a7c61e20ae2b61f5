//! Writing SSTables: partitions are appended in (token, key) order into a
//! temporary file; [`SSTableWriter::finish`] writes the metadata and
//! fsyncs, [`PendingSSTable::commit`] renames to the final name and fsyncs
//! the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::commitlog::ReplayPosition;
use crate::error::EngineError;
use crate::mutation::{ColumnData, PartitionUpdate, Row};
use crate::reconcile::local_deletion_time;
use crate::schema::TableSchema;
use crate::serialize::encode_partition;

use super::format::{
    key_hash, BloomFilter, Footer, SSTableStats, SectionHandle, DEFAULT_BLOCK_SIZE, FORMAT_VERSION,
    HEADER_SIZE, MAGIC, MAX_BLOCK_SIZE,
};
use super::{file_name, sync_dir, SSTable};

/// Writes one SSTable.
pub struct SSTableWriter {
    dir: PathBuf,
    generation: u64,
    tmp_path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    block_size: usize,
    block: Vec<u8>,
    blocks: Vec<(u64, u32)>,
    /// token, key, block, offset, length
    index: Vec<(i64, bytes::Bytes, u32, u32, u32)>,
    hashes: Vec<u64>,
    stats: SSTableStats,
    scratch: Vec<u8>,
}

/// A complete, fsynced SSTable still under its temporary name.
#[derive(Debug)]
pub struct PendingSSTable {
    dir: PathBuf,
    tmp_path: PathBuf,
    final_path: PathBuf,
    generation: u64,
}

impl PendingSSTable {
    /// The generation the file will have.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Renames the file to its final name (without syncing the directory;
    /// see [`PendingSSTable::commit`]).
    pub fn rename(&self) -> Result<(), EngineError> {
        fs::rename(&self.tmp_path, &self.final_path)?;
        Ok(())
    }

    /// Renames to the final name, fsyncs the directory and opens the file.
    pub fn commit(self, schema: Arc<TableSchema>) -> Result<SSTable, EngineError> {
        self.rename()?;
        sync_dir(&self.dir)?;
        SSTable::open(&self.final_path, schema)
    }

    /// Opens the file under its final name (after [`PendingSSTable::rename`]).
    pub fn open(&self, schema: Arc<TableSchema>) -> Result<SSTable, EngineError> {
        SSTable::open(&self.final_path, schema)
    }

    /// Deletes the temporary file (a write that is given up).
    pub fn abandon(self) {
        let _ = fs::remove_file(&self.tmp_path);
    }
}

fn row_stats(stats: &mut SSTableStats, row: &Row) {
    let mut ts = |t: i64| {
        stats.min_timestamp = stats.min_timestamp.min(t);
        stats.max_timestamp = stats.max_timestamp.max(t);
    };
    if let Some(l) = row.liveness {
        ts(l.timestamp);
    }
    if let Some(d) = row.deletion {
        ts(d.timestamp);
    }
    let mut tombstones = row.deletion.is_some() as u64;
    let mut ldts = Vec::new();
    if let Some(d) = row.deletion {
        ldts.push(d.local_deletion_time);
    }
    if let Some(l) = row.liveness.filter(|l| l.ttl > 0) {
        ldts.push(l.expiry);
    }
    for (_, data) in &row.columns {
        match data {
            ColumnData::Simple(c) => {
                ts(c.timestamp);
                tombstones += c.value.is_none() as u64;
                if local_deletion_time(c) != i32::MAX {
                    ldts.push(c.expiry);
                }
            }
            ColumnData::Complex { tombstone, cells } => {
                if let Some(t) = tombstone {
                    ts(t.timestamp);
                    tombstones += 1;
                    ldts.push(t.local_deletion_time);
                }
                for (_, c) in cells {
                    ts(c.timestamp);
                    tombstones += c.value.is_none() as u64;
                    if local_deletion_time(c) != i32::MAX {
                        ldts.push(c.expiry);
                    }
                }
            }
        }
    }
    stats.tombstone_count += tombstones;
    for l in ldts {
        stats.min_local_deletion_time = stats.min_local_deletion_time.min(l);
        stats.max_local_deletion_time = stats.max_local_deletion_time.max(l);
    }
}

impl SSTableWriter {
    /// Starts generation `generation` of `schema`'s table in `dir`.
    pub fn new(dir: &Path, generation: u64, schema: &TableSchema) -> Result<Self, EngineError> {
        let tmp_path = dir.join(format!("{}.tmp", file_name(generation)));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)?;
        let mut out = BufWriter::with_capacity(256 * 1024, file);
        let mut header = [0u8; HEADER_SIZE];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.write_all(&header)?;
        Ok(SSTableWriter {
            dir: dir.to_path_buf(),
            generation,
            tmp_path,
            out,
            offset: HEADER_SIZE as u64,
            block_size: DEFAULT_BLOCK_SIZE,
            block: Vec::with_capacity(DEFAULT_BLOCK_SIZE * 2),
            blocks: Vec::new(),
            index: Vec::new(),
            hashes: Vec::new(),
            stats: SSTableStats::new(schema.id),
            scratch: Vec::new(),
        })
    }

    /// Sets the target uncompressed size of data blocks.
    pub fn with_block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes.max(1);
        self
    }

    /// Records the commitlog position covered and the level.
    pub fn set_metadata(&mut self, position: Option<ReplayPosition>, level: u32) {
        self.stats.commitlog_position = position;
        self.stats.level = level;
    }

    /// Serialised bytes written so far (before compression).
    pub fn uncompressed_size(&self) -> u64 {
        self.stats.uncompressed_size
    }

    /// Partitions appended so far.
    pub fn partition_count(&self) -> u64 {
        self.stats.partition_count
    }

    /// Appends a partition; partitions must come in strictly increasing
    /// (token, key) order.
    pub fn append(&mut self, p: &PartitionUpdate) -> Result<(), EngineError> {
        if let Some(last) = self.index.last() {
            if (last.0, &last.1[..]) >= (p.key.token, &p.key.key[..]) {
                return Err(EngineError::InvalidMutation(
                    "SSTable partitions must be appended in (token, key) order".into(),
                ));
            }
        }
        self.scratch.clear();
        encode_partition(p, &mut self.scratch);
        if self.scratch.len() > MAX_BLOCK_SIZE {
            return Err(EngineError::InvalidMutation(format!(
                "partition of {} bytes exceeds the SSTable block limit",
                self.scratch.len()
            )));
        }
        if !self.block.is_empty() && self.block.len() + self.scratch.len() > self.block_size {
            self.flush_block()?;
        }
        self.index.push((
            p.key.token,
            p.key.key.clone(),
            self.blocks.len() as u32,
            self.block.len() as u32,
            self.scratch.len() as u32,
        ));
        self.block.extend_from_slice(&self.scratch);
        self.hashes.push(key_hash(&p.key.key));
        let s = &mut self.stats;
        if s.partition_count == 0 {
            s.first_token = p.key.token;
            s.first_key = p.key.key.clone();
        }
        s.last_token = p.key.token;
        s.last_key = p.key.key.clone();
        s.partition_count += 1;
        s.row_count += p.rows.len() as u64;
        s.uncompressed_size += self.scratch.len() as u64;
        let mut deletions = Vec::new();
        deletions.extend(p.tombstone);
        deletions.extend(p.range_tombstones.iter().map(|rt| rt.deletion));
        for d in deletions {
            s.tombstone_count += 1;
            s.min_timestamp = s.min_timestamp.min(d.timestamp);
            s.max_timestamp = s.max_timestamp.max(d.timestamp);
            s.min_local_deletion_time = s.min_local_deletion_time.min(d.local_deletion_time);
            s.max_local_deletion_time = s.max_local_deletion_time.max(d.local_deletion_time);
        }
        if let Some(r) = &p.static_row {
            row_stats(s, r);
        }
        for (_, r) in &p.rows {
            row_stats(s, r);
        }
        if self.block.len() >= self.block_size {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), EngineError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let compressed = lz4_flex::block::compress(&self.block);
        let mut buf = Vec::with_capacity(compressed.len() + 12);
        buf.extend_from_slice(&(self.block.len() as u32).to_be_bytes());
        buf.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        buf.extend_from_slice(&compressed);
        let crc = crc32c::crc32c(&buf);
        buf.extend_from_slice(&crc.to_be_bytes());
        self.out.write_all(&buf)?;
        self.blocks.push((self.offset, buf.len() as u32));
        self.offset += buf.len() as u64;
        self.block.clear();
        Ok(())
    }

    fn section(&mut self, bytes: &[u8]) -> Result<SectionHandle, EngineError> {
        let h = SectionHandle {
            offset: self.offset,
            length: bytes.len() as u64,
            crc: crc32c::crc32c(bytes),
        };
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(h)
    }

    /// Writes the index, bloom filter, statistics and footer, then fsyncs
    /// the file. The result still has its temporary name.
    pub fn finish(mut self) -> Result<PendingSSTable, EngineError> {
        self.flush_block()?;
        let mut index = Vec::new();
        index.extend_from_slice(&(self.blocks.len() as u64).to_be_bytes());
        for (off, len) in &self.blocks {
            index.extend_from_slice(&off.to_be_bytes());
            index.extend_from_slice(&len.to_be_bytes());
        }
        index.extend_from_slice(&(self.index.len() as u64).to_be_bytes());
        for (token, key, block, offset, length) in &self.index {
            index.extend_from_slice(&token.to_be_bytes());
            index.extend_from_slice(&(key.len() as u32).to_be_bytes());
            index.extend_from_slice(key);
            index.extend_from_slice(&block.to_be_bytes());
            index.extend_from_slice(&offset.to_be_bytes());
            index.extend_from_slice(&length.to_be_bytes());
        }
        let index = self.section(&index)?;
        let mut bloom = BloomFilter::with_capacity(self.hashes.len());
        for h in &self.hashes {
            bloom.add(*h);
        }
        let mut bytes = Vec::new();
        bloom.encode(&mut bytes);
        let bloom = self.section(&bytes)?;
        let mut bytes = Vec::new();
        self.stats.encode(&mut bytes);
        let stats = self.section(&bytes)?;
        let footer = Footer {
            index,
            bloom,
            stats,
            version: FORMAT_VERSION,
        };
        self.out.write_all(&footer.encode())?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| EngineError::Io(e.into_error()))?;
        file.sync_all()?;
        Ok(PendingSSTable {
            final_path: self.dir.join(file_name(self.generation)),
            dir: self.dir,
            tmp_path: self.tmp_path,
            generation: self.generation,
        })
    }

    /// Gives up: deletes the temporary file.
    pub fn abandon(self) {
        let path = self.tmp_path.clone();
        drop(self);
        let _ = fs::remove_file(path);
    }
}
