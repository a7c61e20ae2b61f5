//! SSTable read-path tests: the index summary lookup, block sizes, and the
//! block cache as SSTables and the database use it.

use std::sync::Arc;

use bytes::Bytes;

use super::{file_name, BlockCache, SSTable};
use crate::mutation::{
    Cell, ClusteringRange, ColumnData, LivenessInfo, Mutation, PartitionKey, PartitionUpdate, Row,
};
use crate::read::{ReadCommand, TokenRange};
use crate::reader::MutationSource;
use crate::schema::TableSchema;
use crate::tests::{test_dir, write_sstable};
use crate::{Database, EngineConfig, EngineError};

const TABLE: [u8; 16] = [0x3c; 16];

fn schema() -> Arc<TableSchema> {
    Arc::new(TableSchema::new(TABLE, Vec::new(), 864_000))
}

/// Partition `n`: tokens collide in runs of five (so equal tokens straddle
/// index-summary samples), with a value of `len` bytes.
fn key(n: u32) -> PartitionKey {
    PartitionKey {
        token: (n / 5) as i64 * 1_000 - 400_000,
        key: Bytes::copy_from_slice(format!("key-{n:06}").as_bytes()),
    }
}

fn update(n: u32, len: usize) -> PartitionUpdate {
    let mut u = PartitionUpdate::new(key(n));
    u.rows.push((
        Vec::new(),
        Row {
            liveness: Some(LivenessInfo {
                timestamp: 1,
                ttl: 0,
                expiry: 0,
            }),
            deletion: None,
            columns: vec![(
                0,
                ColumnData::Simple(Cell {
                    timestamp: 1,
                    ttl: 0,
                    expiry: 0,
                    value: Some(Bytes::from(vec![(n % 251) as u8; len])),
                }),
            )],
        },
    ));
    u
}

fn full() -> [ClusteringRange; 1] {
    [ClusteringRange::full()]
}

fn check_all(sst: &SSTable, n: u32, len: usize) {
    for i in 0..n {
        let got = sst.read_raw(&key(i), &full()).expect("read");
        assert_eq!(got.as_ref(), Some(&update(i, len)), "partition {i}");
    }
    // Keys between and beside the present ones (same token, other key;
    // tokens before, between and after) are absent.
    for (token, k) in [
        (key(7).token, "key-x"),
        (key(0).token - 1, "key-000000"),
        (key(0).token + 1, "key-000000"),
        (key(n - 1).token + 1, "key-zzz"),
    ] {
        let pk = PartitionKey {
            token,
            key: Bytes::copy_from_slice(k.as_bytes()),
        };
        assert!(sst.read_raw(&pk, &full()).expect("read").is_none(), "{k}");
    }
    let scanned: Vec<_> = sst
        .scan_raw(&TokenRange::full(), &full())
        .collect::<Result<_, _>>()
        .expect("scan");
    assert_eq!(scanned.len(), n as usize);
}

#[test]
fn summary_lookup_finds_every_partition_across_samples() {
    let dir = test_dir("sst-summary");
    let n = 1_000; // ~8 summary samples of 128 entries
    let updates: Vec<_> = (0..n).map(|i| update(i, 40)).collect();
    let sst = write_sstable(&dir, 1, &schema(), &updates, 512);
    check_all(&sst, n, 40);
    // Scans from a token in the middle of a run of equal tokens start at
    // the run's first partition.
    let start = key(642).token;
    let range = TokenRange {
        start: crate::read::ScanBound::Token {
            token: start,
            inclusive: true,
        },
        end: crate::read::ScanBound::Unbounded,
    };
    let first = sst
        .scan_raw(&range, &full())
        .next()
        .expect("one")
        .expect("ok");
    assert_eq!(first.key, key(640));
}

#[test]
fn files_with_64k_blocks_and_default_blocks_read_the_same() {
    let dir = test_dir("sst-block-sizes");
    let n = 600;
    let updates: Vec<_> = (0..n).map(|i| update(i, 300)).collect();
    let big = write_sstable(&dir, 1, &schema(), &updates, 64 * 1024);
    let small = write_sstable(
        &dir,
        2,
        &schema(),
        &updates,
        super::format::DEFAULT_BLOCK_SIZE,
    );
    // ~190 KiB of partitions: 3 blocks of 64 KiB, ~50 of 4 KiB.
    assert!(big.block_count() <= 4, "{}", big.block_count());
    assert!(small.block_count() >= 40, "{}", small.block_count());
    let cache = Arc::new(BlockCache::new(1 << 20));
    big.attach_cache(&cache);
    small.attach_cache(&cache);
    for sst in [&big, &small] {
        check_all(sst, n, 300);
        check_all(sst, n, 300); // again, from the cache
        sst.verify().expect("verify");
    }
    assert!(cache.stats().hits > 0);
}

#[test]
fn cached_reads_hit_and_match_the_file() {
    let dir = test_dir("sst-cached");
    let n = 300;
    let updates: Vec<_> = (0..n).map(|i| update(i, 100)).collect();
    let sst = write_sstable(&dir, 1, &schema(), &updates, 1024);
    let cache = Arc::new(BlockCache::new(1 << 20));
    sst.attach_cache(&cache);
    check_all(&sst, n, 100);
    let s1 = cache.stats();
    assert_eq!(s1.inserts, s1.misses, "every miss caches its block");
    assert_eq!(s1.entries as usize, sst.block_count());
    check_all(&sst, n, 100);
    let s2 = cache.stats();
    assert_eq!(s2.misses, s1.misses, "second pass: all hits");
    assert!(s2.hits > s1.hits);
    // A second cache does not replace the first.
    let other = Arc::new(BlockCache::new(1 << 20));
    sst.attach_cache(&other);
    check_all(&sst, n, 100);
    assert_eq!(other.stats().inserts, 0);
}

#[test]
fn a_small_cache_stays_bounded_and_reads_stay_right() {
    let dir = test_dir("sst-small-cache");
    let n = 500;
    let updates: Vec<_> = (0..n).map(|i| update(i, 200)).collect();
    let sst = write_sstable(&dir, 1, &schema(), &updates, 1024);
    let cap = 8 * (1024 + 300 + super::cache::ENTRY_OVERHEAD);
    let cache = Arc::new(BlockCache::new(cap));
    sst.attach_cache(&cache);
    for _ in 0..3 {
        check_all(&sst, n, 200);
        assert!(cache.stats().used_bytes <= cap as u64);
    }
    assert!(cache.stats().evictions > 0);
}

#[test]
fn a_corrupt_block_is_never_cached() {
    let dir = test_dir("sst-corrupt-cached");
    let updates: Vec<_> = (0..50).map(|i| update(i, 100)).collect();
    let good = write_sstable(&dir, 1, &schema(), &updates, 1024);
    let mut bytes = std::fs::read(good.path()).expect("read");
    // A bit of the first data block's payload (after its 8-byte header).
    bytes[16 + 8 + 5] ^= 0x04;
    let path = dir.join(file_name(2));
    std::fs::write(&path, bytes).expect("write");
    let bad = SSTable::open(&path, schema()).expect("metadata intact");
    let cache = Arc::new(BlockCache::new(1 << 20));
    bad.attach_cache(&cache);
    for _ in 0..2 {
        let err = bad.read_raw(&key(0), &full()).expect_err("checksum");
        assert!(
            matches!(&err, EngineError::CorruptSSTable { reason, .. } if reason.contains("checksum")),
            "{err}"
        );
    }
    assert_eq!(cache.stats().inserts, 0);
    assert_eq!(cache.stats().entries, 0);
    // Other blocks still read (and are cached).
    assert!(bad.read_raw(&key(49), &full()).expect("read").is_some());
    assert_eq!(cache.stats().entries, 1);
}

#[test]
fn dropping_an_sstable_forgets_its_blocks() {
    let dir = test_dir("sst-drop-forget");
    let cache = Arc::new(BlockCache::new(1 << 20));
    let a = write_sstable(&dir, 1, &schema(), &[update(1, 10), update(2, 10)], 64);
    let b = write_sstable(&dir, 2, &schema(), &[update(3, 10)], 64);
    a.attach_cache(&cache);
    b.attach_cache(&cache);
    for k in [1, 2] {
        a.read_raw(&key(k), &full()).expect("read");
    }
    b.read_raw(&key(3), &full()).expect("read");
    assert_eq!(cache.stats().entries, 3);
    drop(a);
    assert_eq!(cache.stats().entries, 1);
    assert_eq!(cache.stats().forgotten, 2);
    // Dropped on another thread: forgotten at the owner's next access.
    std::thread::spawn(move || drop(b)).join().expect("thread");
    assert!(cache.get(999, 0).is_none());
    assert_eq!(cache.stats().entries, 0);
}

fn insert(n: u32) -> Mutation {
    Mutation {
        table: TABLE,
        update: update(n, 64),
    }
}

#[test]
fn database_caches_blocks_and_forgets_replaced_sstables() {
    let dir = test_dir("db-cache");
    let mut cfg = EngineConfig::in_memory();
    cfg.data_directory = Some(dir.clone());
    cfg.block_cache_bytes = Some(4 << 20);
    let mut db = Database::new(cfg);
    db.try_create_table(schema()).expect("create");
    assert_eq!(db.block_cache().capacity(), 4 << 20);
    for round in 0..3 {
        for i in 0..200 {
            db.apply(&insert(round * 200 + i)).expect("apply");
        }
        db.flush(&TABLE).expect("flush");
    }
    let read_all = |db: &Database| {
        for i in 0..600 {
            let p = db
                .read_partition(&TABLE, &key(i), &ReadCommand::full(1_000))
                .expect("read")
                .expect("present");
            assert_eq!(p.key, key(i));
        }
    };
    read_all(&db);
    let s = db.block_cache().stats();
    assert!(s.entries > 0 && s.inserts == s.entries, "{s:?}");
    read_all(&db);
    assert!(db.block_cache().stats().hits >= 600);
    // Compaction replaces the three SSTables: their blocks are forgotten.
    db.compact_at(&TABLE, 1_000).expect("compact");
    assert_eq!(db.table(&TABLE).expect("t").sstables().len(), 1);
    let s = db.block_cache().stats();
    assert_eq!(s.entries, 0, "{s:?}");
    assert_eq!(s.forgotten, s.inserts - s.evictions);
    read_all(&db); // from the compacted file, through the cache again
    assert!(db.block_cache().stats().entries > 0);
    // Truncation deletes the file: its blocks go too.
    db.truncate_checked(&TABLE).expect("truncate");
    assert_eq!(db.block_cache().stats().entries, 0);
    assert!(db
        .read_partition(&TABLE, &key(1), &ReadCommand::full(1_000))
        .expect("read")
        .is_none());
}

#[test]
fn database_cache_defaults_to_the_memtable_space() {
    let mut cfg = EngineConfig::in_memory();
    cfg.memtable_space_bytes = 3 << 20;
    assert_eq!(Database::new(cfg.clone()).block_cache().capacity(), 3 << 20);
    cfg.block_cache_bytes = Some(0);
    assert_eq!(Database::new(cfg).block_cache().capacity(), 0);
}

#[test]
fn bloom_filter_has_no_false_negatives_and_about_one_percent_false_positives() {
    use super::format::{key_hash, BloomFilter};
    let n = 20_000u32;
    let mut bloom = BloomFilter::with_capacity(n as usize);
    for i in 0..n {
        bloom.add(key_hash(format!("in-{i}").as_bytes()));
    }
    let mut bytes = Vec::new();
    bloom.encode(&mut bytes);
    let bloom = BloomFilter::decode(&bytes).expect("decode");
    for i in 0..n {
        assert!(bloom.may_contain(format!("in-{i}").as_bytes()), "key {i}");
    }
    let fp = (0..n)
        .filter(|i| bloom.may_contain(format!("out-{i}").as_bytes()))
        .count();
    // 10 bits per key, 7 hashes: ~0.8 % expected.
    assert!(fp > 0 && fp < n as usize * 2 / 100, "{fp} false positives");
}
