//! The engine's typed errors.

use std::fmt;

use crate::mutation::TableId;

/// Why an engine operation failed.
#[derive(Debug)]
pub enum EngineError {
    /// The table is not (or no longer) known to this shard.
    NoSuchTable(TableId),
    /// The mutation does not fit the table's schema (e.g. a clustering of
    /// the wrong length); nothing of it was applied.
    InvalidMutation(String),
    /// An I/O error from the storage layer.
    Io(std::io::Error),
    /// A configuration value the engine cannot work with.
    InvalidConfig(String),
    /// A commitlog write or sync failed earlier; the log refuses every
    /// further write until the node restarts (nothing unsynced is ever
    /// acknowledged).
    CommitLogPoisoned(String),
    /// The commitlog cannot create a new segment (disk full, read-only,
    /// permissions); nothing acknowledged is at risk. Writes fail until a
    /// segment can be created again (`commit_failure_policy` `stop_commit`
    /// or `ignore`).
    CommitLogSegmentUnavailable(String),
    /// A commitlog write or sync failed; the writes it carried are not
    /// durable and fail. The segment was abandoned and later writes use a
    /// new one (`commit_failure_policy: ignore`).
    CommitLogWriteFailed(String),
    /// A mutation too large for the commitlog (more than half a segment).
    MutationTooLarge { size: usize, max: usize },
    /// A commitlog is configured but [`crate::Database::start_commitlog`]
    /// has not run yet (replay must happen before writes).
    CommitLogNotStarted,
    /// An SSTable file is damaged or not an SSTable of this table; nothing
    /// of it is used.
    CorruptSSTable {
        path: std::path::PathBuf,
        reason: String,
    },
    /// The table has no data directory, so it cannot be flushed or
    /// compacted.
    NoDataDirectory(TableId),
}

/// Formats a table id as a UUID string.
pub fn format_table_id(id: &TableId) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in id.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::NoSuchTable(id) => write!(f, "unknown table {}", format_table_id(id)),
            EngineError::InvalidMutation(why) => write!(f, "invalid mutation: {why}"),
            EngineError::Io(e) => write!(f, "storage I/O error: {e}"),
            EngineError::InvalidConfig(why) => write!(f, "invalid storage configuration: {why}"),
            EngineError::CommitLogPoisoned(why) => write!(
                f,
                "commitlog failure: the commitlog is unusable after an earlier failure ({why}); writes are refused until restart"
            ),
            EngineError::CommitLogSegmentUnavailable(why) => write!(
                f,
                "commitlog failure: {why}; writes are refused until a new segment can be created (retrying)"
            ),
            EngineError::CommitLogWriteFailed(why) => write!(
                f,
                "commitlog failure: {why}; the write is not durable (the segment was abandoned, later writes use a new one)"
            ),
            EngineError::MutationTooLarge { size, max } => write!(
                f,
                "mutation of {size} bytes is too large for the commitlog (max {max} bytes, half of commitlog_segment_size_in_mb)"
            ),
            EngineError::CorruptSSTable { path, reason } => {
                write!(f, "corrupt SSTable {}: {reason}", path.display())
            }
            EngineError::NoDataDirectory(id) => write!(
                f,
                "table {} has no data directory (in-memory storage cannot flush)",
                format_table_id(id)
            ),
            EngineError::CommitLogNotStarted => {
                write!(f, "commitlog not started: replay must run before writes")
            }
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        EngineError::Io(e)
    }
}
