//! The CQL native protocol, versions 4 and 5, as pure codecs.
//!
//! API boundary: this crate does no I/O and knows nothing of storage. Every
//! decoder takes untrusted bytes and returns an error instead of panicking.
//!
//! Layers, bottom up: [`types`] (the spec's notations), [`frame`]
//! (envelopes), [`compression`] and [`segment`] (v4 body compression, v5
//! segments), [`request`] and [`response`] (message bodies), with
//! [`consistency`], [`error`], [`type_option`] and [`scylla`] alongside.

pub mod compression;
pub mod consistency;
pub mod crc;
pub mod error;
pub mod frame;
pub mod request;
pub mod response;
pub mod scylla;
pub mod segment;
pub mod type_option;
pub mod types;
pub mod value;

#[cfg(test)]
mod fuzz_tests;
