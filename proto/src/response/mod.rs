//! Response messages (spec section 4.2): encoded by the server, decoded by
//! clients (the stress tool, tests).

pub mod event;
pub mod result;
pub mod schema_change;

use bytes::Bytes;

pub use event::Event;
pub use result::{
    ColumnSpec, Prepared, PreparedMetadata, ResultBody, ResultMetadata, Rows, RowsWriter,
};
pub use schema_change::{SchemaChange, SchemaChangeTarget, SchemaChangeType};

use crate::error::{ErrorResponse, ProtocolError};
use crate::frame::{self, flags, opcode};
use crate::types::{self, Reader};

/// A response message.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// ERROR.
    Error(ErrorResponse),
    /// READY.
    Ready,
    /// AUTHENTICATE: the authenticator's Java class name
    /// (`org.apache.cassandra.auth.PasswordAuthenticator`).
    Authenticate(String),
    /// SUPPORTED: a `[string multimap]` of STARTUP options.
    Supported(Vec<(String, Vec<String>)>),
    /// RESULT.
    Result(ResultBody),
    /// EVENT.
    Event(Event),
    /// AUTH_CHALLENGE: a SASL token.
    AuthChallenge(Option<Vec<u8>>),
    /// AUTH_SUCCESS: the final SASL token.
    AuthSuccess(Option<Vec<u8>>),
}

/// A response with what its envelope flags added around it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseMessage {
    /// The response.
    pub response: Response,
    /// Tracing session id (flag 0x02).
    pub tracing_id: Option<[u8; 16]>,
    /// Warnings (flag 0x08).
    pub warnings: Vec<String>,
    /// Custom payload (flag 0x04).
    pub custom_payload: Option<Vec<(String, Option<Bytes>)>>,
}

impl Response {
    /// The opcode of this response.
    pub fn opcode(&self) -> u8 {
        match self {
            Response::Error(_) => opcode::ERROR,
            Response::Ready => opcode::READY,
            Response::Authenticate(_) => opcode::AUTHENTICATE,
            Response::Supported(_) => opcode::SUPPORTED,
            Response::Result(_) => opcode::RESULT,
            Response::Event(_) => opcode::EVENT,
            Response::AuthChallenge(_) => opcode::AUTH_CHALLENGE,
            Response::AuthSuccess(_) => opcode::AUTH_SUCCESS,
        }
    }

    /// Appends the body for protocol `version`.
    pub fn encode_body(&self, version: u8, out: &mut Vec<u8>) {
        match self {
            Response::Error(e) => e.encode(version, out),
            Response::Ready => {}
            Response::Authenticate(class) => types::write_string(out, class),
            Response::Supported(options) => types::write_string_multimap(out, options),
            Response::Result(body) => body.encode(version, out),
            Response::Event(ev) => ev.encode(out),
            Response::AuthChallenge(token) | Response::AuthSuccess(token) => {
                types::write_bytes(out, token.as_deref())
            }
        }
    }

    /// Decodes a response body (no tracing/warning/custom payload prefix).
    pub fn decode(version: u8, op: u8, body: &[u8]) -> Result<Response, ProtocolError> {
        Self::decode_from(&mut Reader::new(body), version, op)
    }

    /// Decodes an (already decompressed) response envelope body, honouring
    /// the tracing, warning and custom payload flags.
    pub fn decode_with_flags(
        version: u8,
        header_flags: u8,
        op: u8,
        body: &Bytes,
    ) -> Result<ResponseMessage, ProtocolError> {
        let mut r = Reader::from_bytes(body);
        let tracing_id = if header_flags & flags::TRACING != 0 {
            Some(r.read_uuid()?)
        } else {
            None
        };
        let warnings = if header_flags & flags::WARNING != 0 {
            r.read_string_list()?
        } else {
            Vec::new()
        };
        let custom_payload = if header_flags & flags::CUSTOM_PAYLOAD != 0 {
            Some(r.read_bytes_map()?)
        } else {
            None
        };
        let response = Self::decode_from(&mut r, version, op)?;
        Ok(ResponseMessage {
            response,
            tracing_id,
            warnings,
            custom_payload,
        })
    }

    fn decode_from(r: &mut Reader<'_>, version: u8, op: u8) -> Result<Response, ProtocolError> {
        Ok(match op {
            opcode::ERROR => Response::Error(ErrorResponse::decode(version, r)?),
            opcode::READY => Response::Ready,
            opcode::AUTHENTICATE => Response::Authenticate(r.read_string()?.to_string()),
            opcode::SUPPORTED => Response::Supported(r.read_string_multimap()?),
            opcode::RESULT => Response::Result(ResultBody::decode(r, version)?),
            opcode::EVENT => Response::Event(Event::decode(r)?),
            opcode::AUTH_CHALLENGE => Response::AuthChallenge(r.read_bytes()?.map(<[u8]>::to_vec)),
            opcode::AUTH_SUCCESS => Response::AuthSuccess(r.read_bytes()?.map(<[u8]>::to_vec)),
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }
}

impl From<ErrorResponse> for Response {
    fn from(e: ErrorResponse) -> Response {
        Response::Error(e)
    }
}

/// Appends a whole response envelope: header, optional tracing id and
/// warnings (setting their flags), then the body. Returns the envelope's
/// start offset (for [`compress_envelope`]).
pub fn encode_response(
    out: &mut Vec<u8>,
    version: u8,
    stream: i16,
    response: &Response,
    tracing_id: Option<&[u8; 16]>,
    warnings: &[String],
) -> usize {
    let mut header_flags = 0;
    if tracing_id.is_some() {
        header_flags |= flags::TRACING;
    }
    // Warnings exist since v4.
    let warnings = if version >= 4 { warnings } else { &[] };
    if !warnings.is_empty() {
        header_flags |= flags::WARNING;
    }
    let start = frame::begin_envelope(out, version, header_flags, stream, response.opcode());
    if let Some(id) = tracing_id {
        types::write_uuid(out, id);
    }
    if !warnings.is_empty() {
        types::write_string_list(out, warnings);
    }
    response.encode_body(version, out);
    frame::finish_envelope(out, start);
    start
}

/// LZ4-compresses (v4 style) the body of the envelope that starts at
/// `start` and runs to the end of `out`, setting the COMPRESSION flag.
pub fn compress_envelope(out: &mut Vec<u8>, start: usize) {
    let body_start = start + frame::HEADER_LEN;
    if out.len() < body_start {
        return;
    }
    let body = out.split_off(body_start);
    crate::compression::compress_v4_body(&body, out);
    frame::set_envelope_flags(out, start, flags::COMPRESSION);
    frame::finish_envelope(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consistency::Consistency;
    use crate::value::ColumnType;
    use std::net::SocketAddr;

    fn columns() -> Vec<ColumnSpec> {
        vec![
            ColumnSpec::new("system", "local", "key", ColumnType::Text),
            ColumnSpec::new(
                "system",
                "local",
                "tokens",
                ColumnType::Set(Box::new(ColumnType::Text)),
            ),
            ColumnSpec::new("system", "local", "rpc_address", ColumnType::Inet),
        ]
    }

    fn rows() -> Rows {
        Rows {
            metadata: ResultMetadata::new(columns()),
            rows: vec![
                vec![
                    Some(Bytes::from_static(b"local")),
                    Some(Bytes::from_static(&[0, 0, 0, 0])),
                    None,
                ],
                vec![
                    Some(Bytes::new()),
                    None,
                    Some(Bytes::from_static(&[127, 0, 0, 1])),
                ],
            ],
        }
    }

    fn all_responses(version: u8) -> Vec<Response> {
        let addr: SocketAddr = "10.1.2.3:9042".parse().expect("addr");
        let mut mixed = columns();
        mixed[1].table = "peers".into();
        vec![
            Response::Error(ErrorResponse::unavailable(Consistency::Quorum, 2, 1)),
            Response::Ready,
            Response::Authenticate("org.apache.cassandra.auth.PasswordAuthenticator".into()),
            Response::Supported(vec![
                ("CQL_VERSION".into(), vec!["3.4.5".into()]),
                ("COMPRESSION".into(), vec!["lz4".into()]),
                (
                    "PROTOCOL_VERSIONS".into(),
                    vec!["3/v3".into(), "4/v4".into()],
                ),
            ]),
            Response::Result(ResultBody::Void),
            Response::Result(ResultBody::Rows(rows())),
            Response::Result(ResultBody::Rows(Rows {
                metadata: ResultMetadata {
                    columns: mixed.clone(),
                    paging_state: Some(Bytes::from_static(b"\x01\x02")),
                    no_metadata: false,
                    new_metadata_id: (version >= 5).then(|| Bytes::from_static(b"mid")),
                },
                rows: vec![],
            })),
            Response::Result(ResultBody::SetKeyspace("ks".into())),
            Response::Result(ResultBody::Prepared(Prepared {
                id: Bytes::from_static(&[0xAB; 16]),
                result_metadata_id: (version >= 5).then(|| Bytes::from_static(&[0xCD; 16])),
                variables: PreparedMetadata {
                    pk_indexes: if version >= 4 { vec![0, 2] } else { vec![] },
                    columns: mixed.clone(),
                },
                result_metadata: ResultMetadata::new(columns()),
            })),
            Response::Result(ResultBody::Prepared(Prepared {
                id: Bytes::from_static(&[1]),
                result_metadata_id: (version >= 5).then(Bytes::new),
                variables: PreparedMetadata::default(),
                result_metadata: ResultMetadata::default(),
            })),
            Response::Result(ResultBody::SchemaChange(SchemaChange {
                change: SchemaChangeType::Created,
                target: SchemaChangeTarget::Keyspace("ks".into()),
            })),
            Response::Result(ResultBody::SchemaChange(SchemaChange {
                change: SchemaChangeType::Updated,
                target: SchemaChangeTarget::Table("ks".into(), "t".into()),
            })),
            Response::Result(ResultBody::SchemaChange(SchemaChange {
                change: SchemaChangeType::Dropped,
                target: SchemaChangeTarget::Type("ks".into(), "ty".into()),
            })),
            Response::Result(ResultBody::SchemaChange(SchemaChange {
                change: SchemaChangeType::Created,
                target: SchemaChangeTarget::Function {
                    keyspace: "ks".into(),
                    name: "f".into(),
                    args: vec!["int".into(), "frozen<list<text>>".into()],
                },
            })),
            Response::Result(ResultBody::SchemaChange(SchemaChange {
                change: SchemaChangeType::Created,
                target: SchemaChangeTarget::Aggregate {
                    keyspace: "ks".into(),
                    name: "a".into(),
                    args: vec![],
                },
            })),
            Response::Event(Event::TopologyChange {
                change: event::NEW_NODE.into(),
                addr,
            }),
            Response::Event(Event::StatusChange {
                change: event::DOWN.into(),
                addr,
            }),
            Response::Event(Event::SchemaChange(SchemaChange {
                change: SchemaChangeType::Dropped,
                target: SchemaChangeTarget::Table("ks".into(), "t".into()),
            })),
            Response::AuthChallenge(Some(vec![1, 2])),
            Response::AuthSuccess(None),
        ]
    }

    #[test]
    fn every_response_round_trips() {
        for version in [3u8, 4, 5] {
            for resp in all_responses(version) {
                let mut body = Vec::new();
                resp.encode_body(version, &mut body);
                let back = Response::decode(version, resp.opcode(), &body).expect("decodes");
                assert_eq!(back, resp, "v{version}");
                for cut in 0..body.len() {
                    // Never panics; a truncated body is an error except where
                    // the cut falls on a boundary of an empty-bodied message.
                    let _ = Response::decode(version, resp.opcode(), &body[..cut]);
                }
            }
        }
    }

    #[test]
    fn rows_prefixes_fail() {
        let mut body = Vec::new();
        ResultBody::Rows(rows()).encode(4, &mut body);
        for cut in 0..body.len() {
            assert!(
                Response::decode(4, opcode::RESULT, &body[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn global_tables_spec_layout() {
        let mut out = Vec::new();
        ResultMetadata::new(vec![ColumnSpec::new("ks", "t", "c", ColumnType::Int)])
            .encode(4, &mut out);
        assert_eq!(
            out,
            [
                0, 0, 0, 1, // flags: global tables spec
                0, 0, 0, 1, // one column
                0, 2, b'k', b's', 0, 1, b't', // ks, table
                0, 1, b'c', 0, 9, // name, int
            ]
        );
        let mut out = Vec::new();
        ResultMetadata::default().encode(4, &mut out);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn void_result_layout() {
        let mut out = Vec::new();
        encode_response(
            &mut out,
            4,
            3,
            &Response::Result(ResultBody::Void),
            None,
            &[],
        );
        assert_eq!(out, [0x84, 0, 0, 3, 0x08, 0, 0, 0, 4, 0, 0, 0, 1]);
    }

    #[test]
    fn rows_writer_matches_rows_and_inserts_paging_state() {
        for version in [4u8, 5] {
            let r = rows();
            let mut expected = Vec::new();
            r.encode(version, &mut expected);

            let mut out = Vec::new();
            let mut w = RowsWriter::new(&mut out, version, &r.metadata);
            for row in &r.rows {
                for cell in row {
                    match cell {
                        Some(b) => w.cell_with(|o| o.extend_from_slice(b)),
                        None => w.null(),
                    }
                }
                w.end_row();
            }
            assert_eq!(w.rows(), 2);
            assert_eq!(w.finish(None), 2);
            assert_eq!(out, expected);

            // With a paging state decided at the end.
            let mut out = Vec::new();
            let mut w = RowsWriter::new(&mut out, version, &r.metadata);
            for row in &r.rows {
                for cell in row {
                    w.cell(cell.as_deref());
                }
                w.end_row();
            }
            w.finish(Some(b"next"));
            let back = Rows::decode(&mut Reader::new(&out), version).expect("decodes");
            assert_eq!(back.rows, r.rows);
            assert_eq!(
                back.metadata.paging_state,
                Some(Bytes::from_static(b"next"))
            );
            assert_eq!(back.metadata.columns, r.metadata.columns);
        }
    }

    #[test]
    fn no_metadata_carries_the_count() {
        let mut r = rows();
        r.metadata.no_metadata = true;
        let mut out = Vec::new();
        r.encode(4, &mut out);
        assert_eq!(&out[..8], &[0, 0, 0, 4, 0, 0, 0, 3]);
        let back = Rows::decode(&mut Reader::new(&out), 4).expect("decodes");
        assert!(back.metadata.no_metadata);
        assert_eq!(back.metadata.columns.len(), 3);
        assert_eq!(back.rows, r.rows);
    }

    #[test]
    fn hostile_rows_counts() {
        // Zero columns but 2^31-1 rows must not loop or allocate.
        let mut body = Vec::new();
        types::write_int(&mut body, result::KIND_ROWS);
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(Response::decode(4, opcode::RESULT, &body).is_err());
        // no_metadata with an absurd column count.
        let mut body = Vec::new();
        types::write_int(&mut body, result::KIND_ROWS);
        body.extend_from_slice(&[0, 0, 0, 4]);
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 1]);
        assert!(Response::decode(4, opcode::RESULT, &body).is_err());
        // Negative column count.
        let mut body = Vec::new();
        types::write_int(&mut body, result::KIND_ROWS);
        body.extend_from_slice(&[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(Response::decode(4, opcode::RESULT, &body).is_err());
    }

    #[test]
    fn tracing_and_warnings_in_envelope() {
        let mut out = Vec::new();
        let warnings = vec!["Aggregation query used without partition key".to_string()];
        encode_response(
            &mut out,
            4,
            12,
            &Response::Result(ResultBody::Void),
            Some(&[5; 16]),
            &warnings,
        );
        let (env, _) = frame::decode_response_envelope(&out, 1 << 20)
            .expect("ok")
            .expect("complete");
        assert_eq!(env.header.flags, flags::TRACING | flags::WARNING);
        let msg = Response::decode_with_flags(4, env.header.flags, env.header.opcode, &env.body)
            .expect("decodes");
        assert_eq!(msg.tracing_id, Some([5; 16]));
        assert_eq!(msg.warnings, warnings);
        assert_eq!(msg.response, Response::Result(ResultBody::Void));
        // v3 has no warnings.
        let mut out = Vec::new();
        encode_response(&mut out, 3, 1, &Response::Ready, None, &warnings);
        assert_eq!(out[1], 0);
    }

    #[test]
    fn compressed_envelope_round_trip() {
        let mut out = vec![0xEE];
        let resp = Response::Result(ResultBody::Rows(rows()));
        let start = encode_response(&mut out, 4, 1, &resp, None, &[]);
        compress_envelope(&mut out, start);
        let (env, used) = frame::decode_response_envelope(&out[1..], 1 << 20)
            .expect("ok")
            .expect("complete");
        assert_eq!(used, out.len() - 1);
        assert_eq!(env.header.flags, flags::COMPRESSION);
        let body = crate::compression::decompress_v4_body(&env.body, 1 << 20).expect("lz4");
        assert_eq!(
            Response::decode(4, opcode::RESULT, &body).expect("ok"),
            resp
        );
    }

    #[test]
    fn raw_rows_encode_like_rows() {
        let r = rows();
        let mut raw = Vec::new();
        r.encode(4, &mut raw);
        let mut a = Vec::new();
        ResultBody::RawRows(Bytes::from(raw)).encode(4, &mut a);
        let mut b = Vec::new();
        ResultBody::Rows(r).encode(4, &mut b);
        assert_eq!(a, b);
    }
}
