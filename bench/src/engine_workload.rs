//! The engine benchmark's workload and measurements, shared by every engine:
//! N distinct random 16-byte keys with 100-byte values, written in random
//! order and read back in another random order, and the figures of a phase
//! (wall time and the process's CPU time, `getrusage`, every thread).

use std::time::{Duration, Instant};

pub const KEY_SIZE: usize = 16;
pub const VALUE_SIZE: usize = 100;

/// splitmix64: a seeded generator, so every engine sees the same keys.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The keys, their values and the read order.
pub struct Workload {
    pub keys: Vec<[u8; KEY_SIZE]>,
    /// Random bytes; the value of key `i` is `VALUE_SIZE` bytes at
    /// `value_offset(i)` (incompressible, different per key).
    values: Vec<u8>,
    /// A permutation of `0..keys.len()`: the order of the point reads.
    pub read_order: Vec<u32>,
}

const VALUE_POOL: usize = 1 << 20;

impl Workload {
    pub fn new(n: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let keys = (0..n)
            .map(|_| {
                let mut k = [0u8; KEY_SIZE];
                k[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
                k[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
                k
            })
            .collect();
        let mut values = Vec::with_capacity(VALUE_POOL + VALUE_SIZE + 8);
        while values.len() < VALUE_POOL + VALUE_SIZE {
            values.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        let mut read_order: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            read_order.swap(i, j);
        }
        Workload {
            keys,
            values,
            read_order,
        }
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn value(&self, i: usize) -> &[u8] {
        let off = (i.wrapping_mul(7919)) % VALUE_POOL;
        &self.values[off..off + VALUE_SIZE]
    }
}

/// Process CPU time (user + system, every thread), µs.
pub fn cpu_micros() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return 0;
    }
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A running measurement: wall clock and process CPU since `start`.
pub struct Meter {
    wall: Instant,
    cpu: u64,
}

impl Meter {
    pub fn start() -> Self {
        Meter {
            wall: Instant::now(),
            cpu: cpu_micros(),
        }
    }

    pub fn stop(&self, ops: u64) -> Phase {
        Phase {
            ops,
            wall: self.wall.elapsed(),
            cpu_us: cpu_micros().saturating_sub(self.cpu),
        }
    }
}

/// The figures of one measured phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phase {
    pub ops: u64,
    pub wall: Duration,
    /// Process CPU time over the phase (all threads: background flushes
    /// and compactions included), µs.
    pub cpu_us: u64,
}

impl Phase {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn cpu_us_per_op(&self) -> f64 {
        self.cpu_us as f64 / (self.ops.max(1)) as f64
    }
}

/// What one engine did with the workload.
#[derive(Debug, Clone, Default)]
pub struct EngineRun {
    pub engine: String,
    pub write: Phase,
    /// Waiting for background flushes/compactions the writes started, after
    /// the last write returned (its CPU is part of the cost of the writes).
    pub settle: Phase,
    pub read: Phase,
    /// Reads that did not return the written value (must be 0).
    pub read_misses: u64,
    /// Where the data was when the reads ran.
    pub layout: String,
    /// Share of the keys that were only in SSTables (not in any memtable)
    /// during the reads, when the engine tells.
    pub on_disk_share: Option<f64>,
}
