//! Gossip: membership and failure detection (Cassandra's `gms`).
