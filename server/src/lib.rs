//! The Tessera node. See ARCHITECTURE.md for the map.

pub mod admin;
pub mod config;
pub mod cql3;
pub mod dht;
pub mod gms;
pub mod index;
pub mod locator;
pub mod logging;
pub mod net;
pub mod node;
pub mod schema;
pub mod service;
pub mod shard;
pub mod transport;
