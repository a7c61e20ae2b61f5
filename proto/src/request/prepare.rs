//! PREPARE (spec section 4.1.5).

use crate::error::ProtocolError;
use crate::types::{self, Reader};

/// PREPARE flag (v5): a keyspace follows the query.
pub const FLAG_WITH_KEYSPACE: u32 = 0x01;

/// A PREPARE request: `<query: [long string]>` and, in v5,
/// `<flags: [int]>[<keyspace: [string]>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareRequest {
    /// The CQL text.
    pub query: String,
    /// Keyspace to prepare in instead of the connection's (v5).
    pub keyspace: Option<String>,
}

impl PrepareRequest {
    /// Decodes a PREPARE body.
    pub fn decode(r: &mut Reader<'_>, version: u8) -> Result<PrepareRequest, ProtocolError> {
        let query = r.read_long_string()?.to_string();
        let mut keyspace = None;
        if version >= 5 {
            let flags = r.read_int()? as u32;
            if flags & FLAG_WITH_KEYSPACE != 0 {
                keyspace = Some(r.read_string()?.to_string());
            }
        }
        Ok(PrepareRequest { query, keyspace })
    }

    /// Encodes a PREPARE body (the keyspace is dropped before v5).
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        types::write_long_string(out, &self.query);
        if version >= 5 {
            match &self.keyspace {
                Some(ks) => {
                    types::write_int(out, FLAG_WITH_KEYSPACE as i32);
                    types::write_string(out, ks);
                }
                None => types::write_int(out, 0),
            }
        }
    }
}
