//! The CQL native protocol, versions 4 and 5, as pure codecs.
//!
//! API boundary: this crate does no I/O and knows nothing of storage. Every
//! decoder takes untrusted bytes and returns an error instead of panicking.

pub mod value;
