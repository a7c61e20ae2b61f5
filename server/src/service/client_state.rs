//! Per-connection state: the current keyspace and timestamp generation.

use std::cell::Cell;

/// What a connection carries between requests.
#[derive(Debug, Default)]
pub struct ClientState {
    /// Set by `USE ks`.
    pub keyspace: Option<String>,
}

/// Generates strictly increasing write timestamps (microseconds), as
/// Cassandra's `ClientState.getTimestamp` does, per shard.
#[derive(Debug, Default)]
pub struct TimestampGenerator {
    last: Cell<i64>,
}

impl TimestampGenerator {
    pub fn new() -> Self {
        TimestampGenerator { last: Cell::new(0) }
    }

    /// Now in microseconds, strictly greater than any value returned before.
    pub fn next(&self) -> i64 {
        let now = now_micros();
        let last = self.last.get();
        let ts = if now > last { now } else { last + 1 };
        self.last.set(ts);
        ts
    }
}

/// Wall clock, microseconds since the epoch.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
