//! tessera-bench: `tessera-stress`, a cassandra-stress-style load tool built on the Rust
//! `scylla` driver, and `tcp-echo`, the raw TCP request/response ceiling of the machine.

pub mod settings;
pub mod stats;
pub mod stress;
pub mod svg;
