//! One shard's storage.
//!
//! API boundary: the engine knows partitions, clustering keys, rows, cells,
//! tombstones and timestamps; it never parses CQL and never talks to other
//! shards or nodes.
//!
//! Code map:
//! * [`mutation`] — the data model (fixed, shared with the server).
//! * [`types`] / [`schema`] — how clustering keys compare, bound semantics.
//! * [`reconcile`] — last-write-wins rules and update merging.
//! * [`memtable`] — the in-memory write buffer of one table.
//! * [`reader`] / [`read`] — sources of raw partition content, their merge,
//!   and the filtering that turns it into live query results.
//! * [`serialize`] — the stable binary form of a mutation.
//! * [`commitlog`] — the per-shard write-ahead log and its replay.
//! * [`sstable`] — immutable sorted files (format v1), their writer and
//!   reader.
//! * [`compaction`] — size-tiered and leveled compaction, tombstone purge.
//! * [`database`] — [`Database`], one shard's set of tables.

pub mod commitlog;
pub mod compaction;
pub mod database;
pub mod error;
pub mod memtable;
pub mod mutation;
pub mod read;
pub mod reader;
pub mod reconcile;
pub mod schema;
pub mod serialize;
pub mod sstable;
pub mod types;

pub use database::{ColumnFamily, Database, EngineConfig, EngineStats, FlushJob};
pub use error::EngineError;
pub use read::{ReadCommand, ScanBound, TokenRange};

#[cfg(test)]
mod tests;
