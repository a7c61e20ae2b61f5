//! Engine test suites: the reader-conformance suite every reader must pass
//! and the model-based property test.

mod background_compaction;
mod commitlog;
mod conformance;
mod model;
mod storage;

use std::sync::Arc;

use bytes::Bytes;

use crate::memtable::Memtable;
use crate::mutation::{Mutation, PartitionKey, PartitionUpdate};
use crate::read::{ReadCommand, TokenRange};
use crate::reader::{read_merged, scan_merged, MutationSource};
use crate::schema::TableSchema;
use crate::{Database, EngineConfig};

/// A reader built over a fixed set of updates.
pub(crate) trait BuiltReader {
    fn read(&self, key: &PartitionKey, cmd: &ReadCommand) -> Option<PartitionUpdate>;
    fn scan(&self, range: &TokenRange, cmd: &ReadCommand, limit: usize) -> Vec<PartitionUpdate>;
}

/// A kind of reader under test: builds a reader holding `updates` (applied
/// in order) for `schema`'s table. New readers (SSTable, memtable+SSTable
/// merge) plug in by implementing this and adding a line to
/// `conformance_suite!` invocations in `conformance.rs`.
pub(crate) trait ReaderFactory {
    fn build(&self, schema: Arc<TableSchema>, updates: &[PartitionUpdate]) -> Box<dyn BuiltReader>;
}

/// Sources plus schema, read through the merged reader.
struct SourcesReader<S: MutationSource> {
    schema: Arc<TableSchema>,
    sources: Vec<S>,
}

impl<S: MutationSource> BuiltReader for SourcesReader<S> {
    fn read(&self, key: &PartitionKey, cmd: &ReadCommand) -> Option<PartitionUpdate> {
        let srcs: Vec<&dyn MutationSource> = self.sources.iter().map(|s| s as _).collect();
        read_merged(&self.schema, &srcs, key, cmd).expect("read")
    }
    fn scan(&self, range: &TokenRange, cmd: &ReadCommand, limit: usize) -> Vec<PartitionUpdate> {
        let srcs: Vec<&dyn MutationSource> = self.sources.iter().map(|s| s as _).collect();
        scan_merged(&self.schema, &srcs, range, cmd, limit).expect("scan")
    }
}

/// Everything in one memtable.
pub(crate) struct MemtableFactory;

impl ReaderFactory for MemtableFactory {
    fn build(&self, schema: Arc<TableSchema>, updates: &[PartitionUpdate]) -> Box<dyn BuiltReader> {
        let mut mt = Memtable::new(schema.clone());
        for u in updates {
            mt.apply(u);
        }
        Box::new(SourcesReader {
            schema,
            sources: vec![mt],
        })
    }
}

/// Updates spread round-robin over three memtables (in reverse order, so
/// merge order differs from write order), read through the merged reader.
pub(crate) struct MergedMemtablesFactory;

impl ReaderFactory for MergedMemtablesFactory {
    fn build(&self, schema: Arc<TableSchema>, updates: &[PartitionUpdate]) -> Box<dyn BuiltReader> {
        let mut mts: Vec<Memtable> = (0..3).map(|_| Memtable::new(schema.clone())).collect();
        for (i, u) in updates.iter().enumerate().rev() {
            mts[i % 3].apply(u);
        }
        Box::new(SourcesReader {
            schema,
            sources: mts,
        })
    }
}

/// The whole [`Database`] API.
pub(crate) struct DatabaseFactory;

struct DatabaseReader {
    db: Database,
    table: crate::mutation::TableId,
}

impl BuiltReader for DatabaseReader {
    fn read(&self, key: &PartitionKey, cmd: &ReadCommand) -> Option<PartitionUpdate> {
        self.db
            .read_partition(&self.table, key, cmd)
            .expect("table exists")
    }
    fn scan(&self, range: &TokenRange, cmd: &ReadCommand, limit: usize) -> Vec<PartitionUpdate> {
        self.db
            .scan(&self.table, range.clone(), cmd, limit)
            .expect("table exists")
    }
}

impl ReaderFactory for DatabaseFactory {
    fn build(&self, schema: Arc<TableSchema>, updates: &[PartitionUpdate]) -> Box<dyn BuiltReader> {
        let mut db = Database::new(EngineConfig::in_memory());
        let table = schema.id;
        db.create_table(schema);
        for u in updates {
            db.apply(&Mutation {
                table,
                update: u.clone(),
            })
            .expect("valid mutation");
        }
        Box::new(DatabaseReader { db, table })
    }
}

/// A fresh directory under the target dir.
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/engine-test-tmp")
        .join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// Everything written to one SSTable (through a memtable, as a flush
/// does), read back from the file.
pub(crate) struct SSTableFactory;

/// Writes `updates` (merged by a memtable) into SSTable `generation` of
/// `dir` and opens it.
pub(crate) fn write_sstable(
    dir: &std::path::Path,
    generation: u64,
    schema: &Arc<TableSchema>,
    updates: &[PartitionUpdate],
    block_size: usize,
) -> crate::sstable::SSTable {
    let mut mt = Memtable::new(schema.clone());
    for u in updates {
        mt.apply(u);
    }
    let mut w = crate::sstable::SSTableWriter::new(dir, generation, schema)
        .expect("writer")
        .with_block_size(block_size);
    let full = TokenRange::full();
    let ranges = [crate::mutation::ClusteringRange::full()];
    for p in mt.scan_raw(&full, &ranges) {
        w.append(&p.expect("memtable")).expect("append");
    }
    w.finish()
        .expect("finish")
        .commit(schema.clone())
        .expect("commit")
}

impl ReaderFactory for SSTableFactory {
    fn build(&self, schema: Arc<TableSchema>, updates: &[PartitionUpdate]) -> Box<dyn BuiltReader> {
        let dir = test_dir("sstable-reader");
        // Tiny blocks: partitions spread over many blocks.
        let sst = write_sstable(&dir, 1, &schema, updates, 64);
        Box::new(SourcesReader {
            schema,
            sources: vec![sst],
        })
    }
}

/// Updates spread over a memtable and three SSTables (round-robin),
/// read through the merged reader.
pub(crate) struct MemtableAndSSTablesFactory;

impl ReaderFactory for MemtableAndSSTablesFactory {
    fn build(&self, schema: Arc<TableSchema>, updates: &[PartitionUpdate]) -> Box<dyn BuiltReader> {
        let dir = test_dir("merged-reader");
        let mut parts: Vec<Vec<PartitionUpdate>> = vec![Vec::new(); 4];
        for (i, u) in updates.iter().enumerate() {
            parts[i % 4].push(u.clone());
        }
        let mut mt = Memtable::new(schema.clone());
        for u in &parts[3] {
            mt.apply(u);
        }
        let mut sources: Vec<Box<dyn MutationSource>> = vec![Box::new(mt)];
        for (g, p) in parts[..3].iter().enumerate() {
            sources.push(Box::new(write_sstable(
                &dir,
                g as u64 + 1,
                &schema,
                p,
                4096,
            )));
        }
        Box::new(BoxedSourcesReader { schema, sources })
    }
}

struct BoxedSourcesReader {
    schema: Arc<TableSchema>,
    sources: Vec<Box<dyn MutationSource>>,
}

impl BuiltReader for BoxedSourcesReader {
    fn read(&self, key: &PartitionKey, cmd: &ReadCommand) -> Option<PartitionUpdate> {
        let srcs: Vec<&dyn MutationSource> = self.sources.iter().map(|s| &**s).collect();
        read_merged(&self.schema, &srcs, key, cmd).expect("read")
    }
    fn scan(&self, range: &TokenRange, cmd: &ReadCommand, limit: usize) -> Vec<PartitionUpdate> {
        let srcs: Vec<&dyn MutationSource> = self.sources.iter().map(|s| &**s).collect();
        scan_merged(&self.schema, &srcs, range, cmd, limit).expect("scan")
    }
}

/// A [`Database`] with a data directory: updates are applied with
/// flushes and compactions interleaved (deterministically from the
/// update count), ending with some data in the memtable and some in
/// SSTables. Compactions run at `compact_now`, which must not expire or
/// purge anything reads could still see (the model has no notion of a
/// purge that happens before later writes).
pub(crate) struct FlushingDatabaseFactory {
    pub seed: u64,
    pub compaction: crate::compaction::CompactionStrategy,
    pub compact_now: i32,
}

impl ReaderFactory for FlushingDatabaseFactory {
    fn build(&self, schema: Arc<TableSchema>, updates: &[PartitionUpdate]) -> Box<dyn BuiltReader> {
        let dir = test_dir("flushing-db");
        let mut cfg = EngineConfig::in_memory();
        cfg.data_directory = Some(dir);
        let mut db = Database::new(cfg);
        let schema = Arc::new((*schema).clone().with_compaction(self.compaction.clone()));
        let table = schema.id;
        db.try_create_table(schema).expect("create");
        let mut x = self.seed ^ updates.len() as u64;
        for u in updates {
            db.apply(&Mutation {
                table,
                update: u.clone(),
            })
            .expect("valid mutation");
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 10 {
                0 | 1 => {
                    db.flush(&table).expect("flush");
                }
                2 => {
                    db.maybe_compact_at(self.compact_now).expect("compact");
                }
                3 => db.compact_at(&table, self.compact_now).expect("major"),
                _ => {}
            }
        }
        Box::new(DatabaseReader { db, table })
    }
}

/// A big-endian int clustering component.
pub(crate) fn int(v: i32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

/// A shard's storage may be built on one thread and moved to its core.
#[test]
fn database_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Database>();
}
