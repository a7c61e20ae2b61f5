//! EXECUTE (spec section 4.1.6).

use bytes::Bytes;

use crate::error::ProtocolError;
use crate::request::query::QueryParameters;
use crate::types::{self, Reader};

/// An EXECUTE request: `<id: [short bytes]>`, in v5
/// `<result_metadata_id: [short bytes]>`, then `<query_parameters>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteRequest {
    /// The prepared statement id.
    pub id: Bytes,
    /// The result metadata id the client holds (v5).
    pub result_metadata_id: Option<Bytes>,
    /// Options and bound values.
    pub params: QueryParameters,
}

impl ExecuteRequest {
    /// Decodes an EXECUTE body.
    pub fn decode(r: &mut Reader<'_>, version: u8) -> Result<ExecuteRequest, ProtocolError> {
        let id = r.read_short_bytes_owned()?;
        let result_metadata_id = if version >= 5 {
            Some(r.read_short_bytes_owned()?)
        } else {
            None
        };
        let params = QueryParameters::decode(r, version)?;
        Ok(ExecuteRequest {
            id,
            result_metadata_id,
            params,
        })
    }

    /// Encodes an EXECUTE body.
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        types::write_short_bytes(out, &self.id);
        if version >= 5 {
            types::write_short_bytes(out, self.result_metadata_id.as_deref().unwrap_or_default());
        }
        self.params.encode(version, out);
    }
}
