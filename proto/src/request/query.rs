//! QUERY (spec section 4.1.4) and the `<query_parameters>` it shares with
//! EXECUTE.

use bytes::Bytes;

use crate::consistency::Consistency;
use crate::error::ProtocolError;
use crate::types::{self, Reader, Value};

/// `<query_parameters>` flag: values follow.
pub const FLAG_VALUES: u32 = 0x01;
/// `<query_parameters>` flag: the client does not want result metadata.
pub const FLAG_SKIP_METADATA: u32 = 0x02;
/// `<query_parameters>` flag: a page size follows.
pub const FLAG_PAGE_SIZE: u32 = 0x04;
/// `<query_parameters>` flag: a paging state follows.
pub const FLAG_PAGING_STATE: u32 = 0x08;
/// `<query_parameters>` flag: a serial consistency follows.
pub const FLAG_SERIAL_CONSISTENCY: u32 = 0x10;
/// `<query_parameters>` flag: a default timestamp follows.
pub const FLAG_DEFAULT_TIMESTAMP: u32 = 0x20;
/// `<query_parameters>` flag: each value is preceded by its name.
pub const FLAG_NAMES_FOR_VALUES: u32 = 0x40;
/// `<query_parameters>` flag (v5): a keyspace follows.
pub const FLAG_KEYSPACE: u32 = 0x80;
/// `<query_parameters>` flag (v5): a "now" in seconds follows.
pub const FLAG_NOW_IN_SECONDS: u32 = 0x100;

/// Reads the flags field: a `[byte]` before v5, an `[int]` from v5.
pub(crate) fn read_flags(r: &mut Reader<'_>, version: u8) -> Result<u32, ProtocolError> {
    if version >= 5 {
        Ok(r.read_int()? as u32)
    } else {
        Ok(u32::from(r.read_byte()?))
    }
}

/// Writes the flags field for `version`.
pub(crate) fn write_flags(out: &mut Vec<u8>, version: u8, flags: u32) {
    if version >= 5 {
        types::write_int(out, flags as i32);
    } else {
        out.push(flags as u8);
    }
}

/// Reads a client timestamp, rejecting `i64::MIN` as Cassandra does.
pub(crate) fn read_timestamp(r: &mut Reader<'_>) -> Result<i64, ProtocolError> {
    let ts = r.read_long()?;
    if ts == i64::MIN {
        return Err(ProtocolError::invalid(format!(
            "Out of bound timestamp, must be in [{}, {}]",
            i64::MIN + 1,
            i64::MAX
        )));
    }
    Ok(ts)
}

/// The options of a QUERY or EXECUTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParameters {
    /// Consistency level of the operation.
    pub consistency: Consistency,
    /// Bound values, in marker order (or in `names` order).
    pub values: Vec<Value>,
    /// Names of the values (flag 0x40), for named bind markers.
    pub names: Option<Vec<String>>,
    /// The client already has the result metadata (flag 0x02).
    pub skip_metadata: bool,
    /// Requested page size (flag 0x04). Zero or negative means no paging.
    pub page_size: Option<i32>,
    /// Where to resume (flag 0x08), as returned in a previous page.
    pub paging_state: Option<Bytes>,
    /// Consistency of the Paxos phase of conditional updates (flag 0x10).
    pub serial_consistency: Option<Consistency>,
    /// Client-side timestamp in microseconds (flag 0x20).
    pub timestamp: Option<i64>,
    /// Keyspace to run in instead of the connection's (v5, flag 0x80).
    pub keyspace: Option<String>,
    /// "Now" in seconds for TTL and `now()` purposes (v5, flag 0x100).
    pub now_in_seconds: Option<i32>,
}

impl QueryParameters {
    /// Parameters with only a consistency level.
    pub fn new(consistency: Consistency) -> QueryParameters {
        QueryParameters {
            consistency,
            values: Vec::new(),
            names: None,
            skip_metadata: false,
            page_size: None,
            paging_state: None,
            serial_consistency: None,
            timestamp: None,
            keyspace: None,
            now_in_seconds: None,
        }
    }

    /// The page size if paging was asked for (a positive size).
    pub fn effective_page_size(&self) -> Option<usize> {
        self.page_size
            .filter(|&n| n > 0)
            .and_then(|n| usize::try_from(n).ok())
    }

    /// Decodes `<query_parameters>` for protocol `version`.
    pub fn decode(r: &mut Reader<'_>, version: u8) -> Result<QueryParameters, ProtocolError> {
        let consistency = r.read_consistency()?;
        let flags = read_flags(r, version)?;
        let mut p = QueryParameters::new(consistency);
        p.skip_metadata = flags & FLAG_SKIP_METADATA != 0;
        if flags & FLAG_VALUES != 0 {
            let n = usize::from(r.read_short()?);
            let with_names = flags & FLAG_NAMES_FOR_VALUES != 0;
            // A value is at least its 4-byte length.
            let cap = n.min(r.remaining() / 4);
            p.values.reserve(cap);
            let mut names = with_names.then(|| Vec::with_capacity(cap));
            for _ in 0..n {
                if let Some(names) = names.as_mut() {
                    names.push(r.read_string()?.to_string());
                }
                p.values.push(r.read_value()?);
            }
            p.names = names;
        }
        if flags & FLAG_PAGE_SIZE != 0 {
            p.page_size = Some(r.read_int()?);
        }
        if flags & FLAG_PAGING_STATE != 0 {
            p.paging_state = r.read_bytes_owned()?;
        }
        if flags & FLAG_SERIAL_CONSISTENCY != 0 {
            p.serial_consistency = Some(r.read_consistency()?);
        }
        if flags & FLAG_DEFAULT_TIMESTAMP != 0 {
            p.timestamp = Some(read_timestamp(r)?);
        }
        if version >= 5 {
            if flags & FLAG_KEYSPACE != 0 {
                p.keyspace = Some(r.read_string()?.to_string());
            }
            if flags & FLAG_NOW_IN_SECONDS != 0 {
                p.now_in_seconds = Some(r.read_int()?);
            }
        }
        Ok(p)
    }

    /// Encodes `<query_parameters>` for protocol `version` (the client
    /// side). Keyspace and now-in-seconds are dropped before v5.
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        let mut flags = 0;
        if !self.values.is_empty() {
            flags |= FLAG_VALUES;
            if self.names.is_some() {
                flags |= FLAG_NAMES_FOR_VALUES;
            }
        }
        if self.skip_metadata {
            flags |= FLAG_SKIP_METADATA;
        }
        if self.page_size.is_some() {
            flags |= FLAG_PAGE_SIZE;
        }
        if self.paging_state.is_some() {
            flags |= FLAG_PAGING_STATE;
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
        if flags & FLAG_VALUES != 0 {
            let n = self.values.len().min(usize::from(u16::MAX));
            types::write_short(out, n as u16);
            for (i, v) in self.values[..n].iter().enumerate() {
                if let Some(names) = &self.names {
                    types::write_string(out, names.get(i).map_or("", String::as_str));
                }
                types::write_value(out, v);
            }
        }
        if let Some(n) = self.page_size {
            types::write_int(out, n);
        }
        if let Some(s) = &self.paging_state {
            types::write_bytes(out, Some(s));
        }
        if let Some(c) = self.serial_consistency {
            types::write_consistency(out, c);
        }
        if let Some(ts) = self.timestamp {
            types::write_long(out, ts);
        }
        if flags & FLAG_KEYSPACE != 0 {
            types::write_string(out, self.keyspace.as_deref().unwrap_or_default());
        }
        if let (true, Some(now)) = (version >= 5, self.now_in_seconds) {
            types::write_int(out, now);
        }
    }
}

/// A QUERY request: `<query: [long string]><query_parameters>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    /// The CQL text.
    pub query: String,
    /// Its options.
    pub params: QueryParameters,
}

impl QueryRequest {
    /// Decodes a QUERY body.
    pub fn decode(r: &mut Reader<'_>, version: u8) -> Result<QueryRequest, ProtocolError> {
        let query = r.read_long_string()?.to_string();
        let params = QueryParameters::decode(r, version)?;
        Ok(QueryRequest { query, params })
    }

    /// Encodes a QUERY body.
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        types::write_long_string(out, &self.query);
        self.params.encode(version, out);
    }
}
