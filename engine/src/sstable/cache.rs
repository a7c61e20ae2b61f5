//! The shard's block cache: decompressed, checksum-verified SSTable data
//! blocks (Cassandra's chunk cache, sized by `file_cache_size` there),
//! bounded in bytes, with CLOCK eviction.
//!
//! One [`BlockCache`] per shard, owned by the shard's `Database` and shared
//! (through an `Arc`) by the SSTables it has installed
//! ([`super::SSTable::attach_cache`]). A block enters the cache only after
//! [`super::SSTable`] has checked its CRC32C, lengths and LZ4 framing, so a
//! cached block was verified once; the scrub (`SSTable::verify`) always
//! reads the file.
//!
//! **Architecture invariant: only the owning shard's thread uses the
//! cache's contents.** The cache is `Sync` because SSTables are shared with
//! flush and compaction threads, but a lookup or insert proceeds only if
//! one compare-and-swap of the cache's state word from "idle, owned by this
//! thread" to "busy" succeeds; any other thread (or a re-entrant call)
//! bypasses the cache and reads the file instead, never waiting — so
//! compaction reads neither use nor pollute the cache, as in Scylla, and
//! the hot path takes no lock: one uncontended CAS, a hash lookup and a
//! reference-count increment. The owner is the thread that created the
//! cache; a shard built on one thread and moved to its core re-binds it
//! with [`BlockCache::bind_to_current_thread`] (the database does on every
//! read). An SSTable dropped on another thread queues its id (a mutex taken
//! only then, never on a read) and the owner forgets its blocks on its next
//! access.
//!
//! Keys are `(file id, block number)`; file ids are handed out by the cache
//! itself ([`BlockCache::register`]) and never reused, so a block of a
//! deleted SSTable can never be returned for another file, even before it
//! is forgotten.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

/// Bytes charged per cached block on top of its content (its slot and map
/// entry), so many tiny blocks cannot exceed the bound.
pub const ENTRY_OVERHEAD: usize = 64;

type Key = (u64, u32);

/// A cheap hasher for `(u64, u32)` keys (the std SipHash costs more than
/// the rest of a cache hit).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let mut k = self.0;
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
}

type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;

struct Slot {
    key: Key,
    block: Bytes,
    /// CLOCK's reference bit: set on insert and on every hit, cleared when
    /// the hand passes.
    referenced: bool,
}

/// The cache's contents (touched only on the owner thread).
#[derive(Default)]
struct Clock {
    map: KeyMap<usize>,
    slots: Vec<Slot>,
    hand: usize,
    used: usize,
    /// Cached blocks per file, to forget a file without a full sweep.
    per_file: HashMap<u64, usize, BuildHasherDefault<KeyHasher>>,
}

fn charge(block: &Bytes) -> usize {
    block.len() + ENTRY_OVERHEAD
}

impl Clock {
    fn remove_at(&mut self, i: usize) -> usize {
        let slot = self.slots.swap_remove(i);
        self.map.remove(&slot.key);
        if let Some(moved) = self.slots.get(i) {
            if let Some(ix) = self.map.get_mut(&moved.key) {
                *ix = i;
            }
        }
        if let Some(n) = self.per_file.get_mut(&slot.key.0) {
            *n -= 1;
            if *n == 0 {
                self.per_file.remove(&slot.key.0);
            }
        }
        let c = charge(&slot.block);
        self.used -= c;
        c
    }

    /// Evicts the first unreferenced block the hand finds (clearing the
    /// reference bits it passes). Amortised O(1): every bit it clears was
    /// set by one insert or one hit.
    fn evict_one(&mut self) {
        loop {
            if self.slots.is_empty() {
                return;
            }
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let s = &mut self.slots[self.hand];
            if s.referenced {
                s.referenced = false;
                self.hand += 1;
            } else {
                self.remove_at(self.hand);
                return;
            }
        }
    }

    /// Forgets every block of `file` (which has `n_blocks` blocks): by key
    /// when the file has fewer blocks than the cache holds, else by one
    /// sweep of the slots.
    fn forget(&mut self, file: u64, n_blocks: u32) -> usize {
        let Some(&cached) = self.per_file.get(&file) else {
            return 0;
        };
        if (n_blocks as usize) <= self.slots.len() {
            for b in 0..n_blocks {
                if let Some(&i) = self.map.get(&(file, b)) {
                    self.remove_at(i);
                }
            }
        } else {
            let mut i = 0;
            while i < self.slots.len() {
                if self.slots[i].key.0 == file {
                    self.remove_at(i);
                } else {
                    i += 1;
                }
            }
        }
        cached
    }
}

/// Counters of a [`BlockCache`] (Cassandra's `ChunkCache` metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockCacheStats {
    pub capacity_bytes: u64,
    /// Bytes charged by the cached blocks (content + [`ENTRY_OVERHEAD`]).
    pub used_bytes: u64,
    pub entries: u64,
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
    /// Blocks dropped because their SSTable was closed or deleted.
    pub forgotten: u64,
}

/// A counter written only inside `with_clock` (one thread at a time: a
/// plain load and store, no read-modify-write) and readable from anywhere.
#[derive(Debug, Default)]
struct Counter(AtomicU64);

impl Counter {
    fn add(&self, n: u64) {
        self.0
            .store(self.0.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
    fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// This thread's token: unique in the process, never reused, never 0.
fn thread_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
}

/// At most this many dropped files wait for the owner to forget them;
/// beyond it their blocks just age out (file ids are never reused, so a
/// block nobody forgot is never served for another file).
const MAX_QUEUED_FORGETS: usize = 4096;

/// Low bit of [`BlockCache::state`]: the owner is using the contents.
const BUSY: u64 = 1;

/// A bounded cache of decompressed, verified data blocks of one shard's
/// SSTables (see the module documentation for the threading contract).
pub struct BlockCache {
    /// `owner thread token << 1 | BUSY while the owner is inside`.
    state: AtomicU64,
    capacity: usize,
    clock: UnsafeCell<Clock>,
    next_file: AtomicU64,
    /// Files dropped on other threads, to forget on the owner's next access.
    dropped: Mutex<Vec<(u64, u32)>>,
    has_dropped: AtomicBool,
    used: Counter,
    entries: Counter,
    hits: Counter,
    misses: Counter,
    inserts: Counter,
    evictions: Counter,
    forgotten: Counter,
}

// SAFETY: `clock` is only accessed in `with_clock`, after a successful
// compare-and-swap of `state` to BUSY (Acquire) and until the store that
// clears it (Release): at most one thread at a time, and never
// re-entrantly. Everything else is atomics and a mutex.
unsafe impl Sync for BlockCache {}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("owner", &(self.state.load(Ordering::Relaxed) >> 1))
            .field("stats", &self.stats())
            .finish()
    }
}

impl BlockCache {
    /// A cache of at most `capacity_bytes` (0: caches nothing), owned by
    /// the calling thread.
    pub fn new(capacity_bytes: usize) -> Self {
        BlockCache {
            state: AtomicU64::new(thread_token() << 1),
            capacity: capacity_bytes,
            clock: UnsafeCell::new(Clock::default()),
            next_file: AtomicU64::new(1),
            dropped: Mutex::new(Vec::new()),
            has_dropped: AtomicBool::new(false),
            used: Counter::default(),
            entries: Counter::default(),
            hits: Counter::default(),
            misses: Counter::default(),
            inserts: Counter::default(),
            evictions: Counter::default(),
            forgotten: Counter::default(),
        }
    }

    /// The bound in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A new file id (never reused by this cache).
    pub fn register(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes the calling thread the owner (a shard built on one thread and
    /// moved to its core). Does nothing while the owner is inside the
    /// cache; cheap when the caller already owns it.
    pub fn bind_to_current_thread(&self) {
        let me = thread_token() << 1;
        let s = self.state.load(Ordering::Relaxed);
        if s != me && s & BUSY == 0 {
            let _ = self
                .state
                .compare_exchange(s, me, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Runs `f` on the contents if called on the owner thread and not
    /// re-entrantly; `None` otherwise (the caller goes without the cache).
    fn with_clock<R>(&self, f: impl FnOnce(&mut Clock) -> R) -> Option<R> {
        let me = thread_token() << 1;
        if self
            .state
            .compare_exchange(me, me | BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: this thread set BUSY above; nobody else can until it is
        // cleared below (see `unsafe impl Sync`).
        let clock = unsafe { &mut *self.clock.get() };
        if self.has_dropped.load(Ordering::Acquire) {
            self.drain_dropped(clock);
        }
        let r = f(clock);
        self.used.set(clock.used as u64);
        self.entries.set(clock.slots.len() as u64);
        self.state.store(me, Ordering::Release);
        Some(r)
    }

    fn drain_dropped(&self, clock: &mut Clock) {
        let files = match self.dropped.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        self.has_dropped.store(false, Ordering::Release);
        for (file, n) in files {
            self.forgotten.add(clock.forget(file, n) as u64);
        }
    }

    /// The cached block `block` of file `file`, if any (and if called on
    /// the owner thread).
    pub fn get(&self, file: u64, block: u32) -> Option<Bytes> {
        self.with_clock(|c| {
            let Some(&i) = c.map.get(&(file, block)) else {
                self.misses.add(1);
                return None;
            };
            self.hits.add(1);
            let s = &mut c.slots[i];
            s.referenced = true;
            Some(s.block.clone())
        })
        .flatten()
    }

    /// Caches a verified, decompressed block, evicting others to stay
    /// within the capacity. A block larger than the whole cache, or a call
    /// from another thread, caches nothing.
    pub fn insert(&self, file: u64, block: u32, data: &Bytes) {
        let need = charge(data);
        if need > self.capacity {
            return;
        }
        self.with_clock(|c| {
            if c.map.contains_key(&(file, block)) {
                return;
            }
            while c.used + need > self.capacity && !c.slots.is_empty() {
                c.evict_one();
                self.evictions.add(1);
            }
            c.map.insert((file, block), c.slots.len());
            c.slots.push(Slot {
                key: (file, block),
                block: data.clone(),
                referenced: true,
            });
            *c.per_file.entry(file).or_insert(0) += 1;
            c.used += need;
            self.inserts.add(1);
        });
    }

    /// Forgets every block of a file that has `n_blocks` blocks (its SSTable
    /// is closed or deleted). On another thread the file is queued (up to
    /// 4096 files) and forgotten at the owner's next access.
    pub fn forget(&self, file: u64, n_blocks: u32) {
        let done = self.with_clock(|c| self.forgotten.add(c.forget(file, n_blocks) as u64));
        if done.is_some() {
            return;
        }
        let mut g = match self.dropped.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if g.len() < MAX_QUEUED_FORGETS {
            g.push((file, n_blocks));
        }
        self.has_dropped.store(true, Ordering::Release);
    }

    /// The counters (readable from any thread; entries and bytes as of the
    /// owner's last access).
    pub fn stats(&self) -> BlockCacheStats {
        BlockCacheStats {
            capacity_bytes: self.capacity as u64,
            used_bytes: self.used.get(),
            entries: self.entries.get(),
            hits: self.hits.get(),
            misses: self.misses.get(),
            inserts: self.inserts.get(),
            evictions: self.evictions.get(),
            forgotten: self.forgotten.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn block(n: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; n])
    }

    #[test]
    fn hit_after_insert_and_miss_otherwise() {
        let c = BlockCache::new(1 << 20);
        assert!(c.get(1, 0).is_none());
        c.insert(1, 0, &block(100, 7));
        assert_eq!(c.get(1, 0).expect("cached"), block(100, 7));
        assert!(c.get(1, 1).is_none());
        assert!(c.get(2, 0).is_none());
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.inserts, s.entries), (1, 3, 1, 1));
        assert_eq!(s.used_bytes, (100 + ENTRY_OVERHEAD) as u64);
    }

    #[test]
    fn capacity_is_never_exceeded() {
        let cap = 10 * (1000 + ENTRY_OVERHEAD);
        let c = BlockCache::new(cap);
        for i in 0..1000u32 {
            c.insert(u64::from(i % 7), i, &block(1000 + (i as usize % 3) * 10, 1));
            assert!(c.stats().used_bytes <= cap as u64, "over capacity at {i}");
        }
        let s = c.stats();
        assert!(s.entries >= 9 && s.entries <= 10, "{s:?}");
        assert_eq!(s.inserts - s.evictions, s.entries);
        // A block larger than the whole cache is not cached (and evicts nothing).
        c.insert(99, 0, &block(cap, 2));
        assert!(c.get(99, 0).is_none());
        assert_eq!(c.stats().entries, s.entries);
        // Capacity 0 caches nothing.
        let z = BlockCache::new(0);
        z.insert(1, 0, &block(1, 1));
        assert!(z.get(1, 0).is_none());
    }

    #[test]
    fn clock_evicts_unreferenced_blocks_first() {
        let c = BlockCache::new(4 * (100 + ENTRY_OVERHEAD));
        for b in 0..4 {
            c.insert(1, b, &block(100, b as u8));
        }
        // The next insert sweeps once (clearing every bit) and evicts block
        // 0; block 1 is then hit, so the following insert passes it over
        // and evicts one of the unreferenced blocks 2 and 3 (not the new
        // block 4, whose bit its insert set).
        c.insert(1, 4, &block(100, 4));
        assert!(c.get(1, 0).is_none());
        assert!(c.get(1, 1).is_some());
        c.insert(1, 5, &block(100, 5));
        let present: Vec<u32> = (0..6).filter(|b| c.get(1, *b).is_some()).collect();
        assert!(
            present.contains(&1),
            "a referenced block survives: {present:?}"
        );
        assert!(present.contains(&4) && present.contains(&5), "{present:?}");
        assert_eq!(present.len(), 4, "{present:?}");
        assert_eq!(c.stats().evictions, 2);
    }

    #[test]
    fn forget_drops_only_that_file() {
        let c = BlockCache::new(1 << 20);
        for b in 0..50 {
            c.insert(1, b, &block(10, 1));
            c.insert(2, b, &block(10, 2));
        }
        // Few blocks in the file: forgotten by key.
        c.forget(1, 50);
        // More blocks in the file than in the cache: forgotten by a sweep.
        c.insert(3, 7, &block(10, 3));
        c.forget(3, 1_000_000);
        for b in 0..50 {
            assert!(c.get(1, b).is_none());
            assert_eq!(c.get(2, b).expect("kept"), block(10, 2));
        }
        assert!(c.get(3, 7).is_none());
        let s = c.stats();
        assert_eq!((s.entries, s.forgotten), (50, 51));
        assert_eq!(s.used_bytes, 50 * (10 + ENTRY_OVERHEAD) as u64);
        // Forgetting a file with nothing cached is a no-op.
        c.forget(42, 10);
        assert_eq!(c.stats().entries, 50);
    }

    #[test]
    fn other_threads_bypass_and_queue_forgets() {
        let c = Arc::new(BlockCache::new(1 << 20));
        c.insert(1, 0, &block(10, 1));
        let c2 = c.clone();
        std::thread::spawn(move || {
            assert!(c2.get(1, 0).is_none(), "not the owner: no access");
            c2.insert(5, 0, &block(10, 5));
            c2.forget(1, 1);
        })
        .join()
        .expect("thread");
        assert!(c.get(5, 0).is_none(), "the other thread inserted nothing");
        // The queued forget is applied at the owner's next access.
        assert!(c.get(1, 0).is_none());
        assert_eq!(c.stats().forgotten, 1);
        assert_eq!(c.stats().entries, 0);
    }

    #[test]
    fn a_cache_moved_to_another_thread_is_rebound() {
        let c = Arc::new(BlockCache::new(1 << 20));
        c.insert(1, 0, &block(10, 1));
        let c2 = c.clone();
        std::thread::spawn(move || {
            assert!(c2.get(1, 0).is_none(), "not bound yet");
            c2.bind_to_current_thread();
            assert_eq!(c2.get(1, 0).expect("bound: cached"), block(10, 1));
            c2.insert(1, 1, &block(10, 2));
        })
        .join()
        .expect("thread");
        // The old owner is out now.
        assert!(c.get(1, 1).is_none());
        c.bind_to_current_thread();
        assert_eq!(c.get(1, 1).expect("back"), block(10, 2));
    }

    #[test]
    fn file_ids_are_unique() {
        let c = BlockCache::new(0);
        let a = c.register();
        let b = c.register();
        assert_ne!(a, b);
    }
}
