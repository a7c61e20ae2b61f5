//! BATCH (spec section 4.1.7).
//!
//! ```text
//! <type: [byte]><n: [short]><query_1>...<query_n><consistency><flags>
//!   [<serial_consistency>][<timestamp>][<keyspace> v5][<now_in_seconds> v5]
//! <query_i> = <kind: [byte]><[long string] | [short bytes]><n: [short]>[<name>]<value>...
//! ```
//! The flags (a `[byte]` before v5, an `[int]` from v5) come after the
//! statements, yet flag 0x40 says whether the statements' values carry
//! names (CASSANDRA-10246). Cassandra reads values without names; so does
//! this decoder, unless the flags say names and reading them succeeds.

use bytes::Bytes;

use crate::consistency::Consistency;
use crate::error::ProtocolError;
use crate::request::query::{
    read_flags, read_timestamp, write_flags, FLAG_DEFAULT_TIMESTAMP, FLAG_KEYSPACE,
    FLAG_NAMES_FOR_VALUES, FLAG_NOW_IN_SECONDS, FLAG_SERIAL_CONSISTENCY,
};
use crate::types::{self, Reader, Value};

/// Batch type: logged (atomic through the batchlog).
pub const BATCH_LOGGED: u8 = 0;
/// Batch type: unlogged.
pub const BATCH_UNLOGGED: u8 = 1;
/// Batch type: counter updates.
pub const BATCH_COUNTER: u8 = 2;

/// What a batch statement runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchQueryKind {
    /// Kind 0: CQL text.
    Query(String),
    /// Kind 1: a prepared statement id.
    Prepared(Bytes),
}

/// One statement of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStatement {
    /// The query or prepared id.
    pub kind: BatchQueryKind,
    /// Its bound values.
    pub values: Vec<Value>,
    /// Value names, only when flag 0x40 was set and the names parsed.
    pub names: Option<Vec<String>>,
}

/// A BATCH request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    /// [`BATCH_LOGGED`], [`BATCH_UNLOGGED`] or [`BATCH_COUNTER`].
    pub kind: u8,
    /// The statements, in order.
    pub statements: Vec<BatchStatement>,
    /// Consistency level.
    pub consistency: Consistency,
    /// Serial consistency for conditional batches.
    pub serial_consistency: Option<Consistency>,
    /// Client-side timestamp in microseconds.
    pub timestamp: Option<i64>,
    /// Keyspace (v5).
    pub keyspace: Option<String>,
    /// "Now" in seconds (v5).
    pub now_in_seconds: Option<i32>,
}

fn decode_statements(
    r: &mut Reader<'_>,
    n: usize,
    with_names: bool,
) -> Result<Vec<BatchStatement>, ProtocolError> {
    // A statement is at least kind + 2-byte id length + 2-byte count.
    let mut statements = Vec::with_capacity(n.min(r.remaining() / 5));
    for _ in 0..n {
        let kind = match r.read_byte()? {
            0 => BatchQueryKind::Query(r.read_long_string()?.to_string()),
            1 => BatchQueryKind::Prepared(r.read_short_bytes_owned()?),
            k => {
                return Err(ProtocolError::invalid(format!(
                    "Invalid query kind in BATCH messages. Must be 0 or 1 but got {k}"
                )))
            }
        };
        let count = usize::from(r.read_short()?);
        let cap = count.min(r.remaining() / 4);
        let mut values = Vec::with_capacity(cap);
        let mut names = with_names.then(|| Vec::with_capacity(cap));
        for _ in 0..count {
            if let Some(names) = names.as_mut() {
                names.push(r.read_string()?.to_string());
            }
            values.push(r.read_value()?);
        }
        statements.push(BatchStatement {
            kind,
            values,
            names,
        });
    }
    Ok(statements)
}

fn decode_with(
    r: &mut Reader<'_>,
    version: u8,
    kind: u8,
    n: usize,
    with_names: bool,
) -> Result<(BatchRequest, u32), ProtocolError> {
    let statements = decode_statements(r, n, with_names)?;
    let consistency = r.read_consistency()?;
    let flags = read_flags(r, version)?;
    let mut b = BatchRequest {
        kind,
        statements,
        consistency,
        serial_consistency: None,
        timestamp: None,
        keyspace: None,
        now_in_seconds: None,
    };
    if flags & FLAG_SERIAL_CONSISTENCY != 0 {
        b.serial_consistency = Some(r.read_consistency()?);
    }
    if flags & FLAG_DEFAULT_TIMESTAMP != 0 {
        b.timestamp = Some(read_timestamp(r)?);
    }
    if version >= 5 {
        if flags & FLAG_KEYSPACE != 0 {
            b.keyspace = Some(r.read_string()?.to_string());
        }
        if flags & FLAG_NOW_IN_SECONDS != 0 {
            b.now_in_seconds = Some(r.read_int()?);
        }
    }
    Ok((b, flags))
}

impl BatchRequest {
    /// Decodes a BATCH body.
    pub fn decode(r: &mut Reader<'_>, version: u8) -> Result<BatchRequest, ProtocolError> {
        let kind = r.read_byte()?;
        if kind > BATCH_COUNTER {
            return Err(ProtocolError::invalid(format!(
                "Invalid BATCH message type {kind}"
            )));
        }
        let n = usize::from(r.read_short()?);
        let mut plain = r.clone();
        let first = match decode_with(&mut plain, version, kind, n, false) {
            Ok((b, flags)) if flags & FLAG_NAMES_FOR_VALUES == 0 => {
                *r = plain;
                return Ok(b);
            }
            other => other,
        };
        let mut named = r.clone();
        match decode_with(&mut named, version, kind, n, true) {
            Ok((b, flags)) if flags & FLAG_NAMES_FOR_VALUES != 0 => {
                *r = named;
                Ok(b)
            }
            _ => {
                let (b, _) = first?;
                *r = plain;
                Ok(b)
            }
        }
    }

    /// Encodes a BATCH body (the client side). Names are sent, with flag
    /// 0x40, only if every statement has them.
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        let with_names =
            !self.statements.is_empty() && self.statements.iter().all(|s| s.names.is_some());
        out.push(self.kind);
        let n = self.statements.len().min(usize::from(u16::MAX));
        types::write_short(out, n as u16);
        for s in &self.statements[..n] {
            match &s.kind {
                BatchQueryKind::Query(q) => {
                    out.push(0);
                    types::write_long_string(out, q);
                }
                BatchQueryKind::Prepared(id) => {
                    out.push(1);
                    types::write_short_bytes(out, id);
                }
            }
            let count = s.values.len().min(usize::from(u16::MAX));
            types::write_short(out, count as u16);
            for (i, v) in s.values[..count].iter().enumerate() {
                if with_names {
                    let name = s.names.as_ref().and_then(|n| n.get(i));
                    types::write_string(out, name.map_or("", String::as_str));
                }
                types::write_value(out, v);
            }
        }
        let mut flags = 0;
        if with_names {
            flags |= FLAG_NAMES_FOR_VALUES;
        }
        if self.serial_consistency.is_some() {
            flags |= FLAG_SERIAL_CONSISTENCY;
        }
        if self.timestamp.is_some() {
            flags |= FLAG_DEFAULT_TIMESTAMP;
        }
        if version >= 5 {
            if self.keyspace.is_some() {
                flags |= FLAG_KEYSPACE;
            }
            if self.now_in_seconds.is_some() {
                flags |= FLAG_NOW_IN_SECONDS;
            }
        }
        types::write_consistency(out, self.consistency);
        write_flags(out, version, flags);
        if let Some(c) = self.serial_consistency {
            types::write_consistency(out, c);
        }
        if let Some(ts) = self.timestamp {
            types::write_long(out, ts);
        }
        if version >= 5 {
            if let Some(ks) = &self.keyspace {
                types::write_string(out, ks);
            }
            if let Some(now) = self.now_in_seconds {
                types::write_int(out, now);
            }
        }
    }
}
