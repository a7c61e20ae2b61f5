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
