//! Schema_change results and events (spec sections 4.2.5.5 and 4.2.6):
//! `<change_type: [string]><target: [string]><options>`.

use std::fmt;

use crate::error::ProtocolError;
use crate::types::{self, Reader};

/// What happened to the schema element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaChangeType {
    /// `CREATED`.
    Created,
    /// `UPDATED`.
    Updated,
    /// `DROPPED`.
    Dropped,
}

impl SchemaChangeType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaChangeType::Created => "CREATED",
            SchemaChangeType::Updated => "UPDATED",
            SchemaChangeType::Dropped => "DROPPED",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<SchemaChangeType> {
        match s {
            "CREATED" => Some(SchemaChangeType::Created),
            "UPDATED" => Some(SchemaChangeType::Updated),
            "DROPPED" => Some(SchemaChangeType::Dropped),
            _ => None,
        }
    }
}

impl fmt::Display for SchemaChangeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The schema element that changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchemaChangeTarget {
    /// `KEYSPACE`: its name.
    Keyspace(String),
    /// `TABLE` (also views): keyspace and table name.
    Table(String, String),
    /// `TYPE`: keyspace and type name.
    Type(String, String),
    /// `FUNCTION` (v4+): keyspace, name, argument CQL types.
    Function {
        keyspace: String,
        name: String,
        args: Vec<String>,
    },
    /// `AGGREGATE` (v4+): keyspace, name, argument CQL types.
    Aggregate {
        keyspace: String,
        name: String,
        args: Vec<String>,
    },
}

impl SchemaChangeTarget {
    /// The wire name of the target kind.
    pub fn kind(&self) -> &'static str {
        match self {
            SchemaChangeTarget::Keyspace(_) => "KEYSPACE",
            SchemaChangeTarget::Table(..) => "TABLE",
            SchemaChangeTarget::Type(..) => "TYPE",
            SchemaChangeTarget::Function { .. } => "FUNCTION",
            SchemaChangeTarget::Aggregate { .. } => "AGGREGATE",
        }
    }

    /// The keyspace the element lives in.
    pub fn keyspace(&self) -> &str {
        match self {
            SchemaChangeTarget::Keyspace(ks)
            | SchemaChangeTarget::Table(ks, _)
            | SchemaChangeTarget::Type(ks, _)
            | SchemaChangeTarget::Function { keyspace: ks, .. }
            | SchemaChangeTarget::Aggregate { keyspace: ks, .. } => ks,
        }
    }
}

/// A schema change, as a RESULT body or inside a SCHEMA_CHANGE event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaChange {
    /// Created, updated or dropped.
    pub change: SchemaChangeType,
    /// What changed.
    pub target: SchemaChangeTarget,
}

impl SchemaChange {
    /// Encodes `<change_type><target><options>`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        types::write_string(out, self.change.as_str());
        types::write_string(out, self.target.kind());
        match &self.target {
            SchemaChangeTarget::Keyspace(ks) => types::write_string(out, ks),
            SchemaChangeTarget::Table(ks, name) | SchemaChangeTarget::Type(ks, name) => {
                types::write_string(out, ks);
                types::write_string(out, name);
            }
            SchemaChangeTarget::Function {
                keyspace,
                name,
                args,
            }
            | SchemaChangeTarget::Aggregate {
                keyspace,
                name,
                args,
            } => {
                types::write_string(out, keyspace);
                types::write_string(out, name);
                types::write_string_list(out, args);
            }
        }
    }

    /// Decodes `<change_type><target><options>`.
    pub fn decode(r: &mut Reader<'_>) -> Result<SchemaChange, ProtocolError> {
        let change_str = r.read_string()?;
        let change = SchemaChangeType::parse(change_str).ok_or_else(|| {
            ProtocolError::invalid(format!("Unknown schema change type {change_str}"))
        })?;
        let target = match r.read_string()? {
            "KEYSPACE" => SchemaChangeTarget::Keyspace(r.read_string()?.to_string()),
            "TABLE" => SchemaChangeTarget::Table(
                r.read_string()?.to_string(),
                r.read_string()?.to_string(),
            ),
            "TYPE" => {
                SchemaChangeTarget::Type(r.read_string()?.to_string(), r.read_string()?.to_string())
            }
            "FUNCTION" => SchemaChangeTarget::Function {
                keyspace: r.read_string()?.to_string(),
                name: r.read_string()?.to_string(),
                args: r.read_string_list()?,
            },
            "AGGREGATE" => SchemaChangeTarget::Aggregate {
                keyspace: r.read_string()?.to_string(),
                name: r.read_string()?.to_string(),
                args: r.read_string_list()?,
            },
            other => {
                return Err(ProtocolError::invalid(format!(
                    "Unknown schema change target {other}"
                )))
            }
        };
        Ok(SchemaChange { change, target })
    }
}
