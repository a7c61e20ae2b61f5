//! The Tessera node. See ARCHITECTURE.md for the map.

pub mod config;
pub mod cql3;
pub mod dht;
pub mod schema;
pub mod shard;
