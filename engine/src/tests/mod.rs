//! Engine test suites: the reader-conformance suite every reader must pass
//! and the model-based property test.

mod commitlog;
mod conformance;
mod model;

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
