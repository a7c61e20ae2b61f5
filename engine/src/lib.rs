//! One shard's storage.
//!
//! API boundary: the engine knows partitions, clustering keys, rows, cells,
//! tombstones and timestamps; it never parses CQL and never talks to other
//! shards or nodes.

pub mod mutation;
