//! Gossip: membership and failure detection (Cassandra's `gms`).
//!
//! Every node runs one [`Gossiper`] on shard 0, on top of the
//! [`crate::net::MessagingService`]. Each round (1 s by default) it bumps its
//! own heartbeat and sends a `GossipDigestSyn` — a digest `(endpoint,
//! generation, max version)` of everything it knows — to a random live
//! member, maybe to an unreachable member and maybe to a seed (Cassandra's
//! rules). The receiver answers with a `GossipDigestAck` carrying the states
//! the initiator lacks and digests of what it wants; the initiator completes
//! with a `GossipDigestAck2`. States are versioned ([`VersionedValue`]) by a
//! per-node counter, so newer always wins within a generation; a higher
//! generation (a restart) replaces everything.
//!
//! Liveness: heartbeats that advance feed the phi accrual
//! [`FailureDetector`], interpreted for every endpoint each round; a
//! convicted endpoint is marked down. An endpoint is marked up after it
//! answers an `Echo`. A node stopping gracefully sets `STATUS` to
//! `shutdown` and sends `GossipShutdown` to its live peers, which mark it
//! down at once; it comes back up when it gossips again with a higher
//! generation.

pub mod failure_detector;
pub mod gossiper;
pub mod messages;
pub mod state;

pub use failure_detector::FailureDetector;
pub use gossiper::{EndpointStateSubscriber, GossipConfig, Gossiper};
pub use messages::{GossipDigest, GossipDigestAck, GossipDigestAck2, GossipDigestSyn};
pub use state::{
    ApplicationState, EndpointSnapshot, EndpointState, HeartBeatState, VersionedValue,
};

#[cfg(test)]
mod tests;
