//! EVENT (spec section 4.2.6), pushed on stream -1 to connections that
//! REGISTERed for the event type.

use std::net::SocketAddr;

use crate::error::ProtocolError;
use crate::request::event_type;
use crate::response::schema_change::SchemaChange;
use crate::types::{self, Reader};

/// Topology change: a node joined.
pub const NEW_NODE: &str = "NEW_NODE";
/// Topology change: a node left.
pub const REMOVED_NODE: &str = "REMOVED_NODE";
/// Topology change: a node moved its tokens.
pub const MOVED_NODE: &str = "MOVED_NODE";
/// Status change: a node came up.
pub const UP: &str = "UP";
/// Status change: a node went down.
pub const DOWN: &str = "DOWN";

/// A server-pushed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `TOPOLOGY_CHANGE`: `NEW_NODE`, `REMOVED_NODE` or `MOVED_NODE`, and
    /// the node's native transport address.
    TopologyChange {
        /// The change name.
        change: String,
        /// The node's RPC address.
        addr: SocketAddr,
    },
    /// `STATUS_CHANGE`: `UP` or `DOWN`, and the node's address.
    StatusChange {
        /// The change name.
        change: String,
        /// The node's RPC address.
        addr: SocketAddr,
    },
    /// `SCHEMA_CHANGE`.
    SchemaChange(SchemaChange),
}

impl Event {
    /// The event type name, as used in REGISTER.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::TopologyChange { .. } => event_type::TOPOLOGY_CHANGE,
            Event::StatusChange { .. } => event_type::STATUS_CHANGE,
            Event::SchemaChange(_) => event_type::SCHEMA_CHANGE,
        }
    }

    /// Encodes the EVENT body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        types::write_string(out, self.event_type());
        match self {
            Event::TopologyChange { change, addr } | Event::StatusChange { change, addr } => {
                types::write_string(out, change);
                types::write_inet(out, *addr);
            }
            Event::SchemaChange(sc) => sc.encode(out),
        }
    }

    /// Decodes an EVENT body.
    pub fn decode(r: &mut Reader<'_>) -> Result<Event, ProtocolError> {
        Ok(match r.read_string()? {
            event_type::TOPOLOGY_CHANGE => Event::TopologyChange {
                change: r.read_string()?.to_string(),
                addr: r.read_inet()?,
            },
            event_type::STATUS_CHANGE => Event::StatusChange {
                change: r.read_string()?.to_string(),
                addr: r.read_inet()?,
            },
            event_type::SCHEMA_CHANGE => Event::SchemaChange(SchemaChange::decode(r)?),
            other => {
                return Err(ProtocolError::invalid(format!(
                    "Unknown event type {other}"
                )))
            }
        })
    }
}
