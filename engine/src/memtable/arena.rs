//! The memtable's byte arena: large chunks allocated once and appended to.
//!
//! Everything a memtable stores — partition keys, clustering keys, rows with
//! their cells, range tombstones and the nodes of the per-partition row
//! index — is bytes in an arena chunk, addressed by a small `Copy` handle
//! ([`ArenaRef`], 12 bytes). Writing a row therefore costs no heap
//! allocation: only an occasional new chunk, amortised over thousands of
//! writes. Nothing is ever freed one by one: a merged row is written anew
//! and its old bytes become *garbage*, counted in [`MemtableArena::garbage`]
//! and returned with the whole arena when the memtable is flushed and
//! dropped (Scylla's LSA region, without compaction of the region).
//!
//! Chunks grow from [`FIRST_CHUNK`] by doubling up to [`CHUNK_SIZE`], so
//! the many small tables of a node (system tables) reserve a few KiB each,
//! not a MiB. A value larger than a chunk gets a chunk of its own, exactly
//! its size; the current chunk stays open for later small allocations.
//!
//! Invariant: a chunk never moves or shrinks once allocated, and bytes
//! handed out are never handed out again, so a handle stays valid for the
//! arena's lifetime. Handles are only meaningful for the arena that made
//! them.

/// Size of a full chunk.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Size of a memtable's first chunk.
pub const FIRST_CHUNK: usize = 4 << 10;

/// Where some bytes live in a [`MemtableArena`]: chunk, offset, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArenaRef {
    chunk: u32,
    offset: u32,
    len: u32,
}

impl ArenaRef {
    /// Zero bytes; valid in every arena.
    pub const EMPTY: ArenaRef = ArenaRef {
        chunk: 0,
        offset: 0,
        len: 0,
    };

    /// Size of the handle in its stored form.
    pub const ENCODED_LEN: usize = 12;

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The handle of `len` bytes at `offset` within this allocation.
    pub fn sub(&self, offset: usize, len: usize) -> ArenaRef {
        assert!(offset + len <= self.len(), "sub-range outside allocation");
        ArenaRef {
            chunk: self.chunk,
            offset: self.offset + offset as u32,
            len: len as u32,
        }
    }

    /// The handle in its stored form (little-endian chunk, offset, len).
    pub fn to_bytes(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[0..4].copy_from_slice(&self.chunk.to_le_bytes());
        out[4..8].copy_from_slice(&self.offset.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// Reads a handle stored with [`ArenaRef::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> ArenaRef {
        let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        ArenaRef {
            chunk: u(0),
            offset: u(4),
            len: u(8),
        }
    }
}

/// An append-only set of chunks (see the module doc).
#[derive(Default)]
pub struct MemtableArena {
    chunks: Vec<Box<[u8]>>,
    /// The chunk small allocations go to, and how much of it is used.
    current: Option<u32>,
    current_used: usize,
    /// Size of the next regular chunk.
    next_chunk: usize,
    reserved: usize,
    used: usize,
    garbage: usize,
}

impl std::fmt::Debug for MemtableArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemtableArena")
            .field("chunks", &self.chunks.len())
            .field("reserved", &self.reserved)
            .field("used", &self.used)
            .field("garbage", &self.garbage)
            .finish()
    }
}

impl MemtableArena {
    /// An arena that has reserved nothing yet.
    pub fn new() -> Self {
        MemtableArena {
            next_chunk: FIRST_CHUNK,
            ..MemtableArena::default()
        }
    }

    /// Bytes reserved from the allocator (whole chunks).
    pub fn reserved(&self) -> usize {
        self.reserved
    }

    /// Bytes handed out, garbage included.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Bytes handed out and since released (replaced by a newer version).
    pub fn garbage(&self) -> usize {
        self.garbage
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    fn new_chunk(&mut self, size: usize) -> u32 {
        let id = u32::try_from(self.chunks.len()).expect("fewer than 2^32 arena chunks");
        // Zeroed allocations come from calloc/mmap: pages are committed as
        // they are written.
        self.chunks.push(vec![0u8; size].into_boxed_slice());
        self.reserved += size;
        id
    }

    /// Reserves `len` zeroed bytes. Lengths are bounded by the mutation
    /// size limits far below 4 GiB.
    pub fn alloc(&mut self, len: usize) -> ArenaRef {
        let len32 = u32::try_from(len).expect("arena allocation below 4 GiB");
        if len == 0 {
            return ArenaRef::EMPTY;
        }
        self.used += len;
        if len > CHUNK_SIZE {
            // A chunk of its own; the current chunk stays open.
            let chunk = self.new_chunk(len);
            return ArenaRef {
                chunk,
                offset: 0,
                len: len32,
            };
        }
        let fits = self
            .current
            .is_some_and(|c| self.chunks[c as usize].len() - self.current_used >= len);
        if !fits {
            let size = self.next_chunk.max(len.next_power_of_two()).min(CHUNK_SIZE);
            self.next_chunk = (size * 2).min(CHUNK_SIZE);
            self.current = Some(self.new_chunk(size));
            self.current_used = 0;
        }
        let chunk = self.current.expect("current chunk");
        let offset = self.current_used as u32;
        self.current_used += len;
        ArenaRef {
            chunk,
            offset,
            len: len32,
        }
    }

    /// Copies `data` in.
    pub fn copy(&mut self, data: &[u8]) -> ArenaRef {
        let r = self.alloc(data.len());
        self.bytes_mut(r).copy_from_slice(data);
        r
    }

    /// The bytes behind `r`.
    pub fn bytes(&self, r: ArenaRef) -> &[u8] {
        if r.len == 0 {
            return &[];
        }
        let start = r.offset as usize;
        &self.chunks[r.chunk as usize][start..start + r.len as usize]
    }

    /// The bytes behind `r`, for in-place updates of fixed-size fields.
    pub fn bytes_mut(&mut self, r: ArenaRef) -> &mut [u8] {
        if r.len == 0 {
            return &mut [];
        }
        let start = r.offset as usize;
        &mut self.chunks[r.chunk as usize][start..start + r.len as usize]
    }

    /// Marks `r`'s bytes as garbage: nothing refers to them any more.
    pub fn release(&mut self, r: ArenaRef) {
        self.garbage += r.len();
    }
}
