//! Distributed hash table basics: Murmur3Partitioner tokens and partition
//! key (de)composition.
//!
//! A [`Token`] is a signed 64-bit Murmur3 hash. The ring runs from
//! [`MIN_TOKEN`] (`i64::MIN`, the ring minimum: it is never the token of a
//! non-empty key) to [`MAX_TOKEN`]. Cassandra gives the empty key the
//! minimum token; every other key hashes into `(i64::MIN, i64::MAX]`.

pub mod murmur3;

pub use murmur3::{
    murmur3_hash, murmur3_token, partition_key_token, serialize_partition_key, split_partition_key,
    try_serialize_partition_key, MAX_PARTITION_KEY_LEN,
};

/// A Murmur3Partitioner token (the same type as the engine's).
pub type Token = engine::mutation::Token;

/// The ring minimum; only the empty partition key has it.
pub const MIN_TOKEN: Token = i64::MIN;

/// The largest token.
pub const MAX_TOKEN: Token = i64::MAX;
