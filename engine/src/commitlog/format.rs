//! The commitlog's on-disk layout (version 1); `docs/commitlog-format.md`
//! is the reference.
//!
//! A segment file is a sequence of 4 KiB blocks. Every block starts with a
//! 16-byte header — the segment id, a CRC32C of the rest of the block, and
//! how many payload bytes it carries — so replay can tell a block of this
//! segment from a stale block of a recycled file, and a torn or corrupt
//! block from a good one. The payloads of consecutive blocks form one
//! stream: a 16-byte segment header, then framed entries
//! (`len | crc(len) | payload | crc(payload)`) that may span blocks.

use std::path::Path;

/// Disk block size: the unit of O_DIRECT writes and of checksumming.
pub const BLOCK_SIZE: usize = 4096;
/// Block header: u64 segment id, u32 crc32c, u16 used, u16 reserved.
pub const BLOCK_HEADER_SIZE: usize = 16;
/// Payload bytes per block.
pub const BLOCK_PAYLOAD: usize = BLOCK_SIZE - BLOCK_HEADER_SIZE;
/// The commitlog format version (in file names and segment headers).
pub const COMMITLOG_FORMAT_VERSION: u16 = 1;
/// Segment header magic, "TCLG".
pub const SEGMENT_MAGIC: u32 = 0x5443_4c47;
/// Segment header: u32 magic, u16 version, u16 reserved, u64 segment id.
pub const SEGMENT_HEADER_SIZE: usize = 16;
/// Entry framing: u32 len, u32 crc32c(len), ..., u32 crc32c(payload).
pub const ENTRY_OVERHEAD: usize = 12;
/// Entry kind: a serialised mutation follows.
pub const ENTRY_MUTATION: u8 = 1;
/// Entry kind: a table truncation record (16-byte table id) follows.
pub const ENTRY_TRUNCATE: u8 = 2;
/// Bits of a segment id that hold the per-shard sequence number; the shard
/// id sits above them so ids are unique across the shards of a node.
pub const SEQUENCE_BITS: u32 = 48;

/// The segment id of `shard`'s segment number `seq`.
pub fn segment_id(shard: u32, seq: u64) -> u64 {
    ((shard as u64 & 0xffff) << SEQUENCE_BITS) | (seq & ((1 << SEQUENCE_BITS) - 1))
}

/// The shard that wrote a segment.
pub fn segment_shard(id: u64) -> u32 {
    (id >> SEQUENCE_BITS) as u32
}

/// The per-shard sequence number of a segment.
pub fn segment_sequence(id: u64) -> u64 {
    id & ((1 << SEQUENCE_BITS) - 1)
}

/// File name of a live segment: `CommitLog-1-<id>.log`.
pub fn segment_file_name(id: u64) -> String {
    format!("CommitLog-{COMMITLOG_FORMAT_VERSION}-{id}.log")
}

/// Parses a live segment's file name into its id.
pub fn parse_segment_file_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("CommitLog-")?.strip_suffix(".log")?;
    let (version, id) = rest.split_once('-')?;
    if version != COMMITLOG_FORMAT_VERSION.to_string() {
        return None;
    }
    id.parse().ok()
}

/// File name of a recycled segment waiting for reuse.
pub fn recycled_file_name(n: u64) -> String {
    format!("Recycled-CommitLog-{n}.log")
}

/// Whether a file name is a recycled segment's.
pub fn is_recycled_file_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("Recycled-CommitLog-") && n.ends_with(".log"))
}

/// CRC32C of a block: everything except the CRC field itself.
pub fn block_crc(block: &[u8]) -> u32 {
    let c = crc32c::crc32c(&block[0..8]);
    crc32c::crc32c_append(c, &block[12..BLOCK_SIZE])
}

/// Fills in a block's header (`block` is exactly one block).
pub fn seal_block(block: &mut [u8], segment_id: u64, used: usize) {
    debug_assert!(used <= BLOCK_PAYLOAD);
    block[0..8].copy_from_slice(&segment_id.to_be_bytes());
    block[12..14].copy_from_slice(&(used as u16).to_be_bytes());
    block[14..16].copy_from_slice(&[0, 0]);
    let crc = block_crc(block);
    block[8..12].copy_from_slice(&crc.to_be_bytes());
}

/// What a block holds, as seen by replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    /// A good block of the expected segment carrying `used` payload bytes.
    Valid { used: usize },
    /// A block of another segment (a recycled file's stale content, or
    /// never written: id 0).
    Foreign { id: u64 },
    /// The expected segment id but a bad checksum or header.
    Damaged,
}

/// Classifies one block of segment `expected_id`.
pub fn check_block(block: &[u8], expected_id: u64) -> BlockState {
    let id = u64::from_be_bytes(block[0..8].try_into().expect("8 bytes"));
    if id != expected_id {
        return BlockState::Foreign { id };
    }
    let crc = u32::from_be_bytes(block[8..12].try_into().expect("4 bytes"));
    let used = u16::from_be_bytes([block[12], block[13]]) as usize;
    if crc != block_crc(block) || used > BLOCK_PAYLOAD {
        return BlockState::Damaged;
    }
    BlockState::Valid { used }
}

/// The segment header that starts every segment's payload stream.
pub fn segment_header(id: u64) -> [u8; SEGMENT_HEADER_SIZE] {
    let mut h = [0u8; SEGMENT_HEADER_SIZE];
    h[0..4].copy_from_slice(&SEGMENT_MAGIC.to_be_bytes());
    h[4..6].copy_from_slice(&COMMITLOG_FORMAT_VERSION.to_be_bytes());
    h[8..16].copy_from_slice(&id.to_be_bytes());
    h
}

/// Frames an entry payload: `len | crc(len) | payload | crc(payload)`.
pub fn frame_entry(payload: &[u8], out: &mut Vec<u8>) {
    let len = (payload.len() as u32).to_be_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::crc32c(&len).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn names_round_trip() {
        let id = segment_id(3, 1_700_000_000_000);
        assert_eq!(segment_shard(id), 3);
        assert_eq!(segment_sequence(id), 1_700_000_000_000);
        let p = PathBuf::from("/x").join(segment_file_name(id));
        assert_eq!(parse_segment_file_name(&p), Some(id));
        assert_eq!(
            parse_segment_file_name(&PathBuf::from("CommitLog-2-5.log")),
            None
        );
        assert_eq!(
            parse_segment_file_name(&PathBuf::from("CommitLog-1-x.log")),
            None
        );
        assert!(is_recycled_file_name(&PathBuf::from(recycled_file_name(4))));
    }

    #[test]
    fn blocks_detect_damage_and_foreign_ids() {
        let mut b = vec![0u8; BLOCK_SIZE];
        assert_eq!(check_block(&b, 7), BlockState::Foreign { id: 0 });
        b[100] = 42;
        seal_block(&mut b, 7, 200);
        assert_eq!(check_block(&b, 7), BlockState::Valid { used: 200 });
        assert_eq!(check_block(&b, 8), BlockState::Foreign { id: 7 });
        b[4000] ^= 0x10;
        assert_eq!(check_block(&b, 7), BlockState::Damaged);
    }
}
