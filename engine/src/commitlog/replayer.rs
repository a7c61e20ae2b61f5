//! [`CommitLogReplayer`]: reads segments back at start.
//!
//! Per segment, blocks are read in order while they belong to the segment
//! (right id) and verify (CRC32C). The first block that does not ends the
//! segment's data:
//! * a block of another id is stale content of a recycled file, or never
//!   written (id 0): the normal end of a segment;
//! * a damaged block with no good block of this segment after it is a torn
//!   tail: skipped and counted;
//! * a damaged (or foreign) block followed by good blocks of this segment is
//!   corruption: the segment is reported and nothing after the damage is
//!   applied.
//!
//! An entry cut off by the end of the data is a torn tail (never
//! acknowledged in batch mode). An entry whose own checksums fail inside
//! verified blocks is corruption. Nothing panics on any input.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use log::{error, info, warn};

use super::format::{
    check_block, is_recycled_file_name, parse_segment_file_name, segment_shard, BlockState,
    BLOCK_HEADER_SIZE, BLOCK_PAYLOAD, BLOCK_SIZE, COMMITLOG_FORMAT_VERSION, ENTRY_MUTATION,
    ENTRY_OVERHEAD, ENTRY_TRUNCATE, SEGMENT_HEADER_SIZE, SEGMENT_MAGIC,
};
use crate::commitlog::ReplayPosition;
use crate::error::EngineError;
use crate::mutation::{Mutation, TableId};
use crate::serialize::decode_mutation;

/// A segment whose data could not all be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptSegment {
    pub id: u64,
    pub path: PathBuf,
    pub reason: String,
}

/// What replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segment files read.
    pub segments: usize,
    /// Entries (mutations and truncation records) read intact.
    pub entries_replayed: u64,
    /// Mutations dropped because a later truncation record covers them.
    pub mutations_truncated: u64,
    /// Mutations for tables unknown at replay (filled in by the caller
    /// that applies them, e.g. [`crate::Database::start_commitlog`]).
    pub mutations_skipped: u64,
    /// Bytes of torn tails skipped (incomplete entries and damaged tail
    /// blocks).
    pub torn_bytes_skipped: u64,
    /// Segments that ended in a torn tail.
    pub torn_segments: Vec<u64>,
    /// Segments with real corruption; data after the damage was not used.
    pub corrupt_segments: Vec<CorruptSegment>,
}

/// A segment found on disk and what its replayed data covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedSegment {
    pub id: u64,
    pub path: PathBuf,
    /// Tables with mutations in this segment.
    pub tables: HashSet<TableId>,
    /// Whether it holds a truncation record.
    pub has_truncation: bool,
}

/// Everything replay produced.
#[derive(Debug, Default)]
pub struct ReplayOutput {
    /// Mutations in log order, truncated tables' earlier data removed.
    pub mutations: Vec<Mutation>,
    /// For each of `mutations`, the log position just after its entry (the
    /// position [`crate::commitlog::CommitLog::add`] returned for it, or a
    /// slightly larger one at a block boundary — never a smaller one).
    pub positions: Vec<ReplayPosition>,
    pub report: ReplayReport,
    /// Segments in replay order (ascending id).
    pub segments: Vec<ReplayedSegment>,
    /// Recycled segment files found (reusable, never replayed).
    pub recycled: Vec<PathBuf>,
}

/// Reads commitlog segments of a directory.
#[derive(Debug, Clone)]
pub struct CommitLogReplayer {
    directory: PathBuf,
    shard: Option<u32>,
}

/// One entry read from a segment.
enum Entry {
    Mutation(Mutation),
    Truncate(TableId),
}

struct SegmentRead {
    /// Entries with the file offset just after each.
    entries: Vec<(Entry, u64)>,
    torn_bytes: u64,
    torn: bool,
    corrupt: Option<String>,
}

impl CommitLogReplayer {
    /// Replays every shard's segments in `directory`.
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        CommitLogReplayer {
            directory: directory.into(),
            shard: None,
        }
    }

    /// Replays only the segments written by `shard`.
    pub fn for_shard(directory: impl Into<PathBuf>, shard: u32) -> Self {
        CommitLogReplayer {
            directory: directory.into(),
            shard: Some(shard),
        }
    }

    /// Reads all segments in id order. Only failing to list the directory
    /// is an error; unreadable or damaged segments are reported.
    pub fn replay(&self) -> Result<ReplayOutput, EngineError> {
        let mut out = ReplayOutput::default();
        if !self.directory.exists() {
            return Ok(out);
        }
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&self.directory)? {
            let path = entry?.path();
            if let Some(id) = parse_segment_file_name(&path) {
                if self.shard.is_none_or(|s| segment_shard(id) == s) {
                    found.push((id, path));
                }
            } else if is_recycled_file_name(&path) {
                out.recycled.push(path);
            }
        }
        found.sort();
        for (id, path) in found {
            out.report.segments += 1;
            let read = match fs::read(&path) {
                Ok(data) => read_segment(id, &data),
                Err(e) => SegmentRead {
                    entries: Vec::new(),
                    torn_bytes: 0,
                    torn: false,
                    corrupt: Some(format!("unreadable: {e}")),
                },
            };
            let mut seg = ReplayedSegment {
                id,
                path: path.clone(),
                tables: HashSet::new(),
                has_truncation: false,
            };
            if read.torn {
                warn!(
                    "commitlog segment {}: torn tail, {} bytes skipped",
                    path.display(),
                    read.torn_bytes
                );
                out.report.torn_segments.push(id);
                out.report.torn_bytes_skipped += read.torn_bytes;
            }
            if let Some(reason) = read.corrupt {
                error!(
                    "commitlog segment {} is corrupt ({reason}); data after the damage is not replayed",
                    path.display()
                );
                out.report.corrupt_segments.push(CorruptSegment {
                    id,
                    path: path.clone(),
                    reason,
                });
            }
            for (e, offset) in read.entries {
                out.report.entries_replayed += 1;
                match e {
                    Entry::Mutation(m) => {
                        seg.tables.insert(m.table);
                        out.mutations.push(m);
                        out.positions.push(ReplayPosition {
                            segment_id: id,
                            offset,
                        });
                    }
                    Entry::Truncate(table) => {
                        seg.has_truncation = true;
                        let before = out.mutations.len();
                        let (mutations, positions): (Vec<_>, Vec<_>) =
                            std::mem::take(&mut out.mutations)
                                .into_iter()
                                .zip(std::mem::take(&mut out.positions))
                                .filter(|(m, _)| m.table != table)
                                .unzip();
                        out.mutations = mutations;
                        out.positions = positions;
                        out.report.mutations_truncated += (before - out.mutations.len()) as u64;
                    }
                }
            }
            out.segments.push(seg);
        }
        info!(
            "commitlog replay of {}: {} segments, {} entries, {} torn bytes skipped, {} corrupt segments",
            self.directory.display(),
            out.report.segments,
            out.report.entries_replayed,
            out.report.torn_bytes_skipped,
            out.report.corrupt_segments.len()
        );
        Ok(out)
    }
}

/// Whether any block from `from` on is a good block of `id`.
fn good_block_after(data: &[u8], id: u64, from: usize) -> bool {
    data.chunks_exact(BLOCK_SIZE)
        .skip(from)
        .any(|b| matches!(check_block(b, id), BlockState::Valid { .. }))
}

/// Reads one segment's data (never panics).
fn read_segment(id: u64, data: &[u8]) -> SegmentRead {
    let mut out = SegmentRead {
        entries: Vec::new(),
        torn_bytes: 0,
        torn: false,
        corrupt: None,
    };
    // 1. The payload stream of the segment's good blocks.
    let mut stream = Vec::with_capacity(data.len());
    // (stream offset where the block's payload starts, block index, used)
    let mut block_starts: Vec<(usize, usize, usize)> = Vec::new();
    let mut stopped_early = false;
    for (i, block) in data.chunks_exact(BLOCK_SIZE).enumerate() {
        match check_block(block, id) {
            BlockState::Valid { used } => {
                block_starts.push((stream.len(), i, used));
                stream.extend_from_slice(&block[BLOCK_HEADER_SIZE..BLOCK_HEADER_SIZE + used]);
            }
            state => {
                stopped_early = true;
                if good_block_after(data, id, i + 1) {
                    out.corrupt =
                        Some(format!("block {i} is {state:?} but later blocks are valid"));
                } else if state == BlockState::Damaged {
                    out.torn = true;
                    out.torn_bytes += BLOCK_SIZE as u64;
                }
                break;
            }
        }
    }
    if !stopped_early && !data.len().is_multiple_of(BLOCK_SIZE) {
        // A file not made of whole blocks was not written by us whole.
        out.torn = true;
        out.torn_bytes += (data.len() % BLOCK_SIZE) as u64;
    }
    if stream.is_empty() {
        // Never written (or recycled and not yet reused): nothing to replay.
        return out;
    }
    // 2. The segment header.
    if stream.len() < SEGMENT_HEADER_SIZE {
        out.torn = true;
        out.torn_bytes += stream.len() as u64;
        return out;
    }
    let magic = u32::from_be_bytes(stream[0..4].try_into().expect("4 bytes"));
    let version = u16::from_be_bytes([stream[4], stream[5]]);
    let header_id = u64::from_be_bytes(stream[8..16].try_into().expect("8 bytes"));
    if magic != SEGMENT_MAGIC || version != COMMITLOG_FORMAT_VERSION || header_id != id {
        out.corrupt = Some(format!(
            "bad segment header (magic {magic:#x}, version {version}, id {header_id})"
        ));
        return out;
    }
    // 3. Entries.
    let stream = Bytes::from(stream);
    let mut pos = SEGMENT_HEADER_SIZE;
    while pos < stream.len() {
        let rest = stream.len() - pos;
        if rest < 8 {
            out.torn = true;
            out.torn_bytes += rest as u64;
            break;
        }
        let len_bytes: [u8; 4] = stream[pos..pos + 4].try_into().expect("4 bytes");
        let len_crc = u32::from_be_bytes(stream[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if crc32c::crc32c(&len_bytes) != len_crc {
            out.corrupt.get_or_insert_with(|| {
                format!("entry length checksum mismatch at stream offset {pos}")
            });
            break;
        }
        let len = u32::from_be_bytes(len_bytes) as usize;
        if rest < ENTRY_OVERHEAD + len {
            // Cut off by the end of the written data.
            out.torn = true;
            out.torn_bytes += rest as u64;
            break;
        }
        let payload = stream.slice(pos + 8..pos + 8 + len);
        let crc_at = pos + 8 + len;
        let crc = u32::from_be_bytes(stream[crc_at..crc_at + 4].try_into().expect("4 bytes"));
        if crc32c::crc32c(&payload) != crc {
            out.corrupt
                .get_or_insert_with(|| format!("entry checksum mismatch at stream offset {pos}"));
            break;
        }
        pos += ENTRY_OVERHEAD + len;
        match decode_entry(&payload) {
            Ok(e) => out.entries.push((e, file_offset(&block_starts, pos))),
            Err(why) => {
                out.corrupt.get_or_insert_with(|| {
                    format!("undecodable entry at stream offset {pos}: {why}")
                });
                break;
            }
        }
    }
    out
}

/// The file offset of the end of an entry at stream offset `pos`, exactly
/// as [`crate::commitlog::CommitLog::add`] reported it: inside the block
/// holding the entry's last byte, except that an entry filling its block
/// to the end is reported at the start of the next block's payload.
fn file_offset(block_starts: &[(usize, usize, usize)], pos: usize) -> u64 {
    // The block holding the byte just before `pos`.
    let i = block_starts.partition_point(|(start, _, _)| *start < pos);
    match i.checked_sub(1).and_then(|i| block_starts.get(i)) {
        Some((start, block, used)) => {
            let within = pos - start;
            if within >= BLOCK_PAYLOAD && *used == BLOCK_PAYLOAD {
                ((block + 1) * BLOCK_SIZE + BLOCK_HEADER_SIZE) as u64
            } else {
                (block * BLOCK_SIZE + BLOCK_HEADER_SIZE + within) as u64
            }
        }
        None => pos as u64,
    }
}

fn decode_entry(payload: &Bytes) -> Result<Entry, String> {
    match payload.first() {
        Some(&ENTRY_MUTATION) => decode_mutation(&payload.slice(1..))
            .map(Entry::Mutation)
            .map_err(|e| e.to_string()),
        Some(&ENTRY_TRUNCATE) if payload.len() == 17 => {
            let mut t = [0u8; 16];
            t.copy_from_slice(&payload[1..]);
            Ok(Entry::Truncate(t))
        }
        Some(k) => Err(format!("unknown entry kind {k}")),
        None => Err("empty entry".into()),
    }
}

/// Lists the segment ids of `shard` in `directory` (for id allocation).
pub(crate) fn existing_segment_ids(directory: &Path, shard: u32) -> std::io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    if !directory.exists() {
        return Ok(ids);
    }
    for entry in fs::read_dir(directory)? {
        if let Some(id) = parse_segment_file_name(&entry?.path()) {
            if segment_shard(id) == shard {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}
