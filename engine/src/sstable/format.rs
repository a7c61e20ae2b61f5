//! The SSTable on-disk layout, format version 1 (`docs/sstable-format.md`
//! is the reference): constants, the footer, the statistics block, the
//! bloom filter and a bounds-checked cursor for parsing metadata.
//!
//! All integers are big-endian; checksums are CRC32C.

use bytes::Bytes;

use crate::commitlog::ReplayPosition;
use crate::mutation::TableId;

/// Magic at the start and at the very end of every SSTable file.
pub const MAGIC: [u8; 8] = *b"TSRSST\x00\x01";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// File header: magic, u32 version, u32 reserved (0).
pub const HEADER_SIZE: usize = 16;
/// Footer: three section handles (u64 offset, u64 length, u32 crc), u32
/// version, u32 crc of the footer so far, magic.
pub const FOOTER_SIZE: usize = 3 * 20 + 4 + 4 + 8;
/// Data block framing: u32 uncompressed length, u32 compressed length,
/// compressed bytes, u32 crc32c of everything before it in the block.
pub const BLOCK_OVERHEAD: usize = 12;
/// Largest uncompressed block a reader accepts (a partition larger than a
/// block target gets a block of its own, up to this size).
pub const MAX_BLOCK_SIZE: usize = 1 << 30;
/// Default target of uncompressed bytes per data block, for flushes and
/// compactions. 4 KiB (RocksDB's default, one page): a point read
/// copies, checks and decompresses one small block instead of 64 KiB.
/// Cassandra's `chunk_length_in_kb` (16 by default) is not plumbed to the
/// engine yet. Readers take any block size: the index records every
/// block's offset and length, so files written with 64 KiB blocks read
/// unchanged.
pub const DEFAULT_BLOCK_SIZE: usize = 4 * 1024;

/// Why an SSTable could not be parsed.
pub type ParseError = String;

/// Location and checksum of one metadata section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SectionHandle {
    pub offset: u64,
    pub length: u64,
    pub crc: u32,
}

/// The fixed-size trailer of an SSTable file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footer {
    pub index: SectionHandle,
    pub bloom: SectionHandle,
    pub stats: SectionHandle,
    pub version: u32,
}

impl Footer {
    /// The footer's bytes.
    pub fn encode(&self) -> [u8; FOOTER_SIZE] {
        let mut out = Vec::with_capacity(FOOTER_SIZE);
        for h in [&self.index, &self.bloom, &self.stats] {
            out.extend_from_slice(&h.offset.to_be_bytes());
            out.extend_from_slice(&h.length.to_be_bytes());
            out.extend_from_slice(&h.crc.to_be_bytes());
        }
        out.extend_from_slice(&self.version.to_be_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&MAGIC);
        let mut a = [0u8; FOOTER_SIZE];
        a.copy_from_slice(&out);
        a
    }

    /// Parses and checks a footer.
    pub fn decode(b: &[u8]) -> Result<Footer, ParseError> {
        if b.len() != FOOTER_SIZE {
            return Err("footer has the wrong size".into());
        }
        if b[FOOTER_SIZE - 8..] != MAGIC {
            return Err("bad magic at end of file (not an SSTable, or truncated)".into());
        }
        let body = &b[..FOOTER_SIZE - 12];
        let mut c = Cursor::new(&b[..FOOTER_SIZE - 8]);
        let mut handle = || -> Result<SectionHandle, ParseError> {
            Ok(SectionHandle {
                offset: c.u64()?,
                length: c.u64()?,
                crc: c.u32()?,
            })
        };
        let index = handle()?;
        let bloom = handle()?;
        let stats = handle()?;
        let version = c.u32()?;
        let crc = c.u32()?;
        if crc32c::crc32c(body) != crc {
            return Err("footer checksum mismatch".into());
        }
        if version != FORMAT_VERSION {
            return Err(format!(
                "unsupported SSTable format version {version} (this build reads {FORMAT_VERSION})"
            ));
        }
        Ok(Footer {
            index,
            bloom,
            stats,
            version,
        })
    }
}

/// A bounds-checked reader over metadata bytes (never panics).
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if self.remaining() < n {
            return Err("metadata section ends early".into());
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, ParseError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn i32(&mut self) -> Result<i32, ParseError> {
        Ok(self.u32()? as i32)
    }
    pub fn u64(&mut self) -> Result<u64, ParseError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    pub fn i64(&mut self) -> Result<i64, ParseError> {
        Ok(self.u64()? as i64)
    }
    /// `u32 len | bytes`.
    pub fn bytes(&mut self) -> Result<Bytes, ParseError> {
        let n = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }
    /// A count of items of at least `min_size` bytes each, checked against
    /// what remains (so a corrupt count never causes a huge allocation).
    pub fn count(&mut self, min_size: usize) -> Result<usize, ParseError> {
        let n = self.u64()?;
        if n.saturating_mul(min_size as u64) > self.remaining() as u64 {
            return Err("metadata count exceeds the section".into());
        }
        Ok(n as usize)
    }
}

/// Statistics of one SSTable (Cassandra's `StatsMetadata`, reduced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SSTableStats {
    pub table_id: TableId,
    pub partition_count: u64,
    pub row_count: u64,
    /// Partition, range, row, complex-column and cell tombstones.
    pub tombstone_count: u64,
    /// Smallest/largest write timestamp of anything in the file (markers,
    /// cells, tombstones). `i64::MAX`/`i64::MIN` when the file is empty.
    pub min_timestamp: i64,
    pub max_timestamp: i64,
    /// Smallest/largest local deletion time of tombstones and expiring
    /// data (`i32::MAX`/`i32::MIN` if none).
    pub min_local_deletion_time: i32,
    pub max_local_deletion_time: i32,
    /// First and last partition in (token, key) order.
    pub first_token: i64,
    pub first_key: Bytes,
    pub last_token: i64,
    pub last_key: Bytes,
    /// Every commitlog entry at or before this position (of this shard's
    /// log) for this table is in this SSTable or an older one.
    pub commitlog_position: Option<ReplayPosition>,
    /// Leveled compaction level (0 for flushes).
    pub level: u32,
    /// Bytes of serialised partitions before compression.
    pub uncompressed_size: u64,
}

impl SSTableStats {
    /// Empty statistics for `table_id`.
    pub fn new(table_id: TableId) -> Self {
        SSTableStats {
            table_id,
            partition_count: 0,
            row_count: 0,
            tombstone_count: 0,
            min_timestamp: i64::MAX,
            max_timestamp: i64::MIN,
            min_local_deletion_time: i32::MAX,
            max_local_deletion_time: i32::MIN,
            first_token: 0,
            first_key: Bytes::new(),
            last_token: 0,
            last_key: Bytes::new(),
            commitlog_position: None,
            level: 0,
            uncompressed_size: 0,
        }
    }

    /// The statistics section's bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.table_id);
        for v in [self.partition_count, self.row_count, self.tombstone_count] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.min_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.min_local_deletion_time.to_be_bytes());
        out.extend_from_slice(&self.max_local_deletion_time.to_be_bytes());
        out.extend_from_slice(&self.first_token.to_be_bytes());
        out.extend_from_slice(&(self.first_key.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.first_key);
        out.extend_from_slice(&self.last_token.to_be_bytes());
        out.extend_from_slice(&(self.last_key.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.last_key);
        match self.commitlog_position {
            Some(p) => {
                out.push(1);
                out.extend_from_slice(&p.segment_id.to_be_bytes());
                out.extend_from_slice(&p.offset.to_be_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(&self.level.to_be_bytes());
        out.extend_from_slice(&self.uncompressed_size.to_be_bytes());
    }

    /// Parses the statistics section.
    pub fn decode(b: &[u8]) -> Result<SSTableStats, ParseError> {
        let mut c = Cursor::new(b);
        let mut table_id = [0u8; 16];
        table_id.copy_from_slice(c.take(16)?);
        let s = SSTableStats {
            table_id,
            partition_count: c.u64()?,
            row_count: c.u64()?,
            tombstone_count: c.u64()?,
            min_timestamp: c.i64()?,
            max_timestamp: c.i64()?,
            min_local_deletion_time: c.i32()?,
            max_local_deletion_time: c.i32()?,
            first_token: c.i64()?,
            first_key: c.bytes()?,
            last_token: c.i64()?,
            last_key: c.bytes()?,
            commitlog_position: match c.u8()? {
                0 => None,
                1 => Some(ReplayPosition {
                    segment_id: c.u64()?,
                    offset: c.u64()?,
                }),
                _ => return Err("bad commitlog position flag".into()),
            },
            level: c.u32()?,
            uncompressed_size: c.u64()?,
        };
        if c.remaining() != 0 {
            return Err("trailing bytes in statistics".into());
        }
        Ok(s)
    }
}

/// A bloom filter over partition keys (double hashing over a 64-bit
/// FNV-1a + murmur3-finaliser hash of the key bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BloomFilter {
    hashes: u32,
    bits: Vec<u64>,
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The bloom filter's hash of a partition key.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    fmix64(h)
}

impl BloomFilter {
    /// A filter sized for `keys` keys at about 1% false positives
    /// (10 bits per key, 7 hashes).
    pub fn with_capacity(keys: usize) -> Self {
        let bits = (keys.max(1) * 10).div_ceil(64);
        BloomFilter {
            hashes: 7,
            bits: vec![0; bits],
        }
    }

    fn positions(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let n = self.bits.len() as u64 * 64;
        let h1 = hash;
        let h2 = fmix64(hash ^ 0x9e37_79b9_7f4a_7c15) | 1;
        (0..self.hashes as u64).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % n) as usize)
    }

    /// Adds a key hash ([`key_hash`]).
    pub fn add(&mut self, hash: u64) {
        let ps: Vec<usize> = self.positions(hash).collect();
        for p in ps {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    /// Whether the key may be present (false: certainly absent).
    pub fn may_contain(&self, key: &[u8]) -> bool {
        let hash = key_hash(key);
        self.positions(hash)
            .all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }

    /// The bloom section's bytes: u32 hashes, u64 words, words (u64 each).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hashes.to_be_bytes());
        out.extend_from_slice(&(self.bits.len() as u64).to_be_bytes());
        for w in &self.bits {
            out.extend_from_slice(&w.to_be_bytes());
        }
    }

    /// Parses the bloom section.
    pub fn decode(b: &[u8]) -> Result<BloomFilter, ParseError> {
        let mut c = Cursor::new(b);
        let hashes = c.u32()?;
        if hashes == 0 || hashes > 32 {
            return Err(format!("bloom filter has {hashes} hash functions"));
        }
        let n = c.count(8)?;
        if n == 0 {
            return Err("empty bloom filter".into());
        }
        let mut bits = Vec::with_capacity(n);
        for _ in 0..n {
            bits.push(c.u64()?);
        }
        if c.remaining() != 0 {
            return Err("trailing bytes in bloom filter".into());
        }
        Ok(BloomFilter { hashes, bits })
    }
}
