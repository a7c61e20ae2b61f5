//! Request messages (spec section 4.1): decoded by the server, encoded by
//! clients (the stress tool, tests).

pub mod batch;
pub mod execute;
pub mod prepare;
pub mod query;

use bytes::Bytes;

pub use batch::{BatchQueryKind, BatchRequest, BatchStatement};
pub use execute::ExecuteRequest;
pub use prepare::PrepareRequest;
pub use query::{QueryParameters, QueryRequest};

use crate::error::ProtocolError;
use crate::frame::{flags, opcode};
use crate::types::{self, Reader};

/// STARTUP option: the CQL version (mandatory per spec; any is accepted).
pub const STARTUP_CQL_VERSION: &str = "CQL_VERSION";
/// STARTUP option: the body compression (`lz4`).
pub const STARTUP_COMPRESSION: &str = "COMPRESSION";
/// STARTUP option: driver name, shown in `system_views.clients`.
pub const STARTUP_DRIVER_NAME: &str = "DRIVER_NAME";
/// STARTUP option: driver version.
pub const STARTUP_DRIVER_VERSION: &str = "DRIVER_VERSION";
/// STARTUP option: do not enforce compact storage restrictions.
pub const STARTUP_NO_COMPACT: &str = "NO_COMPACT";
/// STARTUP option: answer Overloaded instead of back-pressure.
pub const STARTUP_THROW_ON_OVERLOAD: &str = "THROW_ON_OVERLOAD";

/// Event type names for REGISTER.
pub mod event_type {
    /// Nodes joining, leaving or moving.
    pub const TOPOLOGY_CHANGE: &str = "TOPOLOGY_CHANGE";
    /// Nodes going up or down.
    pub const STATUS_CHANGE: &str = "STATUS_CHANGE";
    /// Schema changes.
    pub const SCHEMA_CHANGE: &str = "SCHEMA_CHANGE";
}

/// A request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// STARTUP: its `[string map]` of options, in wire order.
    Startup(Vec<(String, String)>),
    /// OPTIONS.
    Options,
    /// QUERY.
    Query(QueryRequest),
    /// PREPARE.
    Prepare(PrepareRequest),
    /// EXECUTE.
    Execute(ExecuteRequest),
    /// BATCH.
    Batch(BatchRequest),
    /// REGISTER: event types (`TOPOLOGY_CHANGE`...).
    Register(Vec<String>),
    /// AUTH_RESPONSE: the SASL token (`None` for a null `[bytes]`).
    AuthResponse(Option<Vec<u8>>),
}

/// A request with what its envelope flags added around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMessage {
    /// The request.
    pub request: Request,
    /// The client asked for tracing (flag 0x02).
    pub tracing: bool,
    /// The custom payload (flag 0x04), for QUERY/PREPARE/EXECUTE/BATCH.
    pub custom_payload: Option<Vec<(String, Option<Bytes>)>>,
}

impl Request {
    /// Decodes a request body for protocol `version` and `opcode` (body not
    /// compressed, no custom payload). Values are copied out of `body`.
    pub fn decode(version: u8, opcode: u8, body: &[u8]) -> Result<Request, ProtocolError> {
        Self::decode_from(&mut Reader::new(body), version, opcode)
    }

    /// As [`Request::decode`], with values sharing `body`'s buffer.
    pub fn decode_bytes(version: u8, opcode: u8, body: &Bytes) -> Result<Request, ProtocolError> {
        Self::decode_from(&mut Reader::from_bytes(body), version, opcode)
    }

    /// Decodes an (already decompressed) envelope body, honouring the
    /// header's tracing and custom payload flags.
    pub fn decode_with_flags(
        version: u8,
        header_flags: u8,
        opcode: u8,
        body: &Bytes,
    ) -> Result<RequestMessage, ProtocolError> {
        let mut r = Reader::from_bytes(body);
        let custom_payload = if header_flags & flags::CUSTOM_PAYLOAD != 0 && version >= 4 {
            Some(r.read_bytes_map()?)
        } else {
            None
        };
        let request = Self::decode_from(&mut r, version, opcode)?;
        Ok(RequestMessage {
            request,
            tracing: header_flags & flags::TRACING != 0,
            custom_payload,
        })
    }

    fn decode_from(r: &mut Reader<'_>, version: u8, op: u8) -> Result<Request, ProtocolError> {
        Ok(match op {
            opcode::STARTUP => Request::Startup(r.read_string_map()?),
            opcode::OPTIONS => Request::Options,
            opcode::QUERY => Request::Query(QueryRequest::decode(r, version)?),
            opcode::PREPARE => Request::Prepare(PrepareRequest::decode(r, version)?),
            opcode::EXECUTE => Request::Execute(ExecuteRequest::decode(r, version)?),
            opcode::BATCH => Request::Batch(BatchRequest::decode(r, version)?),
            opcode::REGISTER => Request::Register(r.read_string_list()?),
            opcode::AUTH_RESPONSE => Request::AuthResponse(r.read_bytes()?.map(<[u8]>::to_vec)),
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }

    /// The opcode of this request.
    pub fn opcode(&self) -> u8 {
        match self {
            Request::Startup(_) => opcode::STARTUP,
            Request::Options => opcode::OPTIONS,
            Request::Query(_) => opcode::QUERY,
            Request::Prepare(_) => opcode::PREPARE,
            Request::Execute(_) => opcode::EXECUTE,
            Request::Batch(_) => opcode::BATCH,
            Request::Register(_) => opcode::REGISTER,
            Request::AuthResponse(_) => opcode::AUTH_RESPONSE,
        }
    }

    /// Encodes the body for protocol `version` (the client side).
    pub fn encode_body(&self, version: u8, out: &mut Vec<u8>) {
        match self {
            Request::Startup(options) => types::write_string_map(out, options),
            Request::Options => {}
            Request::Query(q) => q.encode(version, out),
            Request::Prepare(p) => p.encode(version, out),
            Request::Execute(e) => e.encode(version, out),
            Request::Batch(b) => b.encode(version, out),
            Request::Register(events) => types::write_string_list(out, events),
            Request::AuthResponse(token) => types::write_bytes(out, token.as_deref()),
        }
    }

    /// The value of a STARTUP option, by exact key.
    pub fn startup_option<'a>(options: &'a [(String, String)], key: &str) -> Option<&'a str> {
        options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consistency::Consistency;
    use crate::types::Value;

    fn full_params(version: u8) -> QueryParameters {
        QueryParameters {
            consistency: Consistency::LocalQuorum,
            values: vec![
                Value::Bytes(Bytes::from_static(&[0, 0, 0, 1])),
                Value::Null,
                Value::NotSet,
            ],
            names: Some(vec!["a".into(), "b".into(), "c".into()]),
            skip_metadata: true,
            page_size: Some(5000),
            paging_state: Some(Bytes::from_static(b"state")),
            serial_consistency: Some(Consistency::LocalSerial),
            timestamp: Some(1_700_000_000_000_000),
            keyspace: (version >= 5).then(|| "ks".to_string()),
            now_in_seconds: (version >= 5).then_some(1_700_000_000),
        }
    }

    fn all_requests(version: u8) -> Vec<Request> {
        vec![
            Request::Startup(vec![
                ("CQL_VERSION".into(), "3.0.0".into()),
                ("DRIVER_NAME".into(), "x".into()),
            ]),
            Request::Options,
            Request::Query(QueryRequest {
                query: "SELECT * FROM system.local WHERE key='local'".into(),
                params: QueryParameters::new(Consistency::One),
            }),
            Request::Query(QueryRequest {
                query: "INSERT INTO t (a, b, c) VALUES (:a, :b, :c)".into(),
                params: full_params(version),
            }),
            Request::Prepare(PrepareRequest {
                query: "SELECT * FROM t WHERE k = ?".into(),
                keyspace: (version >= 5).then(|| "ks".to_string()),
            }),
            Request::Execute(ExecuteRequest {
                id: Bytes::from_static(&[1, 2, 3, 4]),
                result_metadata_id: (version >= 5).then(|| Bytes::from_static(&[9, 9])),
                params: full_params(version),
            }),
            Request::Batch(BatchRequest {
                kind: batch::BATCH_UNLOGGED,
                statements: vec![
                    BatchStatement {
                        kind: BatchQueryKind::Query("INSERT INTO t (k) VALUES (?)".into()),
                        values: vec![Value::Bytes(Bytes::from_static(b"k"))],
                        names: None,
                    },
                    BatchStatement {
                        kind: BatchQueryKind::Prepared(Bytes::from_static(&[7; 16])),
                        values: vec![Value::Null, Value::NotSet],
                        names: None,
                    },
                ],
                consistency: Consistency::Quorum,
                serial_consistency: Some(Consistency::Serial),
                timestamp: Some(-5),
                keyspace: (version >= 5).then(|| "ks".to_string()),
                now_in_seconds: (version >= 5).then_some(77),
            }),
            Request::Register(vec![
                "TOPOLOGY_CHANGE".into(),
                "STATUS_CHANGE".into(),
                "SCHEMA_CHANGE".into(),
            ]),
            Request::AuthResponse(Some(b"\0cassandra\0cassandra".to_vec())),
            Request::AuthResponse(None),
        ]
    }

    #[test]
    fn every_request_round_trips_and_truncation_fails() {
        for version in [3u8, 4, 5] {
            for req in all_requests(version) {
                let mut body = Vec::new();
                req.encode_body(version, &mut body);
                let back = Request::decode(version, req.opcode(), &body).expect("decodes");
                assert_eq!(back, req, "v{version}");
                let shared = Bytes::from(body.clone());
                assert_eq!(
                    Request::decode_bytes(version, req.opcode(), &shared).expect("decodes"),
                    req
                );
                // Every strict prefix is either an error or (for messages
                // whose tail is optional) never a panic.
                for cut in 0..body.len() {
                    let _ = Request::decode(version, req.opcode(), &body[..cut]);
                }
            }
        }
    }

    #[test]
    fn query_prefixes_are_errors() {
        let req = QueryRequest {
            query: "SELECT 1".into(),
            params: full_params(5),
        };
        let mut body = Vec::new();
        req.encode(5, &mut body);
        for cut in 0..body.len() {
            assert!(
                Request::decode(5, opcode::QUERY, &body[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn v4_query_wire_layout() {
        // What the Python driver sends for a simple query at LOCAL_ONE with
        // a page size of 5000: flags 0x04 as one byte.
        let mut body = Vec::new();
        types::write_long_string(&mut body, "SELECT 1");
        body.extend_from_slice(&[0x00, 0x0A, 0x04, 0x00, 0x00, 0x13, 0x88]);
        let Request::Query(q) = Request::decode(4, opcode::QUERY, &body).expect("ok") else {
            panic!("not a query");
        };
        assert_eq!(q.query, "SELECT 1");
        assert_eq!(q.params.consistency, Consistency::LocalOne);
        assert_eq!(q.params.page_size, Some(5000));
        assert_eq!(q.params.effective_page_size(), Some(5000));
        assert!(q.params.values.is_empty());
        // The same in v5 needs an [int] of flags.
        let mut v5 = Vec::new();
        q.encode(5, &mut v5);
        assert_eq!(&v5[v5.len() - 8..], &[0, 0, 0, 0x04, 0, 0, 0x13, 0x88]);
    }

    #[test]
    fn v4_ignores_v5_only_flags() {
        // In v4 the flags byte cannot carry 0x100, and 0x80 is not keyspace.
        let mut body = Vec::new();
        types::write_long_string(&mut body, "SELECT 1");
        body.extend_from_slice(&[0x00, 0x01, 0x80]);
        let Request::Query(q) = Request::decode(4, opcode::QUERY, &body).expect("ok") else {
            panic!("not a query");
        };
        assert_eq!(q.params.keyspace, None);
    }

    #[test]
    fn invalid_values_and_timestamps() {
        let mut body = Vec::new();
        types::write_long_string(&mut body, "x");
        body.extend_from_slice(&[0x00, 0x01, 0x01, 0x00, 0x01]);
        body.extend_from_slice(&(-3i32).to_be_bytes());
        assert!(Request::decode(4, opcode::QUERY, &body).is_err());

        let mut body = Vec::new();
        types::write_long_string(&mut body, "x");
        body.extend_from_slice(&[0x00, 0x01, 0x20]);
        body.extend_from_slice(&i64::MIN.to_be_bytes());
        assert!(Request::decode(4, opcode::QUERY, &body).is_err());

        // Unknown consistency.
        let mut body = Vec::new();
        types::write_long_string(&mut body, "x");
        body.extend_from_slice(&[0x00, 0x0B, 0x00]);
        assert_eq!(
            Request::decode(4, opcode::QUERY, &body),
            Err(ProtocolError::UnknownConsistency(0x0B))
        );
    }

    #[test]
    fn unknown_and_response_opcodes_are_rejected() {
        for op in [opcode::READY, opcode::RESULT, 0x04, 0x11, 0xFF] {
            assert_eq!(
                Request::decode(4, op, &[]),
                Err(ProtocolError::UnknownOpcode(op))
            );
        }
    }

    #[test]
    fn custom_payload_and_tracing_flags() {
        let mut body = Vec::new();
        types::write_bytes_map(&mut body, &[("k", Some(Bytes::from_static(b"v")))]);
        QueryRequest {
            query: "SELECT 1".into(),
            params: QueryParameters::new(Consistency::One),
        }
        .encode(4, &mut body);
        let body = Bytes::from(body);
        let msg = Request::decode_with_flags(
            4,
            flags::CUSTOM_PAYLOAD | flags::TRACING,
            opcode::QUERY,
            &body,
        )
        .expect("ok");
        assert!(msg.tracing);
        assert_eq!(
            msg.custom_payload,
            Some(vec![("k".to_string(), Some(Bytes::from_static(b"v")))])
        );
        assert!(matches!(msg.request, Request::Query(ref q) if q.query == "SELECT 1"));
    }

    #[test]
    fn batch_with_names_is_decoded() {
        // Flags 0x40: every value is preceded by its name.
        let mut body = vec![batch::BATCH_LOGGED, 0, 1, 0];
        types::write_long_string(&mut body, "INSERT INTO t (k) VALUES (:k)");
        body.extend_from_slice(&[0, 1]);
        types::write_string(&mut body, "k");
        types::write_value(&mut body, &Value::Bytes(Bytes::from_static(b"x")));
        body.extend_from_slice(&[0x00, 0x01, 0x40]);
        let Request::Batch(b) = Request::decode(4, opcode::BATCH, &body).expect("ok") else {
            panic!("not a batch");
        };
        assert_eq!(b.statements.len(), 1);
        assert_eq!(b.statements[0].names, Some(vec!["k".to_string()]));
        assert_eq!(
            b.statements[0].values,
            vec![Value::Bytes(Bytes::from_static(b"x"))]
        );
        // Round trip through the encoder keeps the names.
        let mut again = Vec::new();
        b.encode(4, &mut again);
        assert_eq!(again, body);
    }

    #[test]
    fn batch_rejects_bad_kinds() {
        let body = [3u8, 0, 0, 0, 1, 0];
        assert!(Request::decode(4, opcode::BATCH, &body).is_err());
        let body = [0u8, 0, 1, 2, 0, 0];
        assert!(Request::decode(4, opcode::BATCH, &body).is_err());
        // A batch claiming 65535 statements with nothing behind them.
        let body = [0u8, 0xFF, 0xFF];
        assert!(Request::decode(4, opcode::BATCH, &body).is_err());
    }

    #[test]
    fn startup_options_lookup() {
        let Request::Startup(opts) = Request::decode(4, opcode::STARTUP, &{
            let mut b = Vec::new();
            types::write_string_map(&mut b, &[("CQL_VERSION", "4.0.0"), ("COMPRESSION", "lz4")]);
            b
        })
        .expect("ok") else {
            panic!("not startup");
        };
        assert_eq!(
            Request::startup_option(&opts, STARTUP_COMPRESSION),
            Some("lz4")
        );
        assert_eq!(
            Request::startup_option(&opts, STARTUP_CQL_VERSION),
            Some("4.0.0")
        );
        assert_eq!(Request::startup_option(&opts, "NOPE"), None);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Bodies encoded by the DataStax Python driver 3.30.1
    /// (`Message.send_body`), decoded here and re-encoded byte for byte.
    #[test]
    fn python_driver_vectors() {
        let cases: [(u8, u8, &str); 10] = [
            (4, opcode::QUERY, "0000001953454c454354202a2046524f4d2074205748455245206b3d3f00063c000013880000000201020009000000000012d687"),
            (4, opcode::QUERY, "0000001c494e5345525420494e544f207420286b292056414c55455320283f2900010100020000000400000007ffffffff"),
            (4, opcode::EXECUTE, "0010aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000a05000200000003616263ffffffff00000064"),
            (4, opcode::BATCH, "010002000000001c494e5345525420494e544f207420286b292056414c554553202831290000010010cccccccccccccccccccccccccccccccc00020000000178ffffffff00043000080000000000000063"),
            (4, opcode::PREPARE, "0000000853454c4543542031"),
            (5, opcode::QUERY, "0000001953454c454354202a2046524f4d2074205748455245206b3d3f0006000000bc000013880000000201020009000000000012d68700026b73"),
            (5, opcode::QUERY, "0000001c494e5345525420494e544f207420286b292056414c55455320283f2900010000000100020000000400000007ffffffff"),
            (5, opcode::EXECUTE, "0010aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0010bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb000a00000005000200000003616263ffffffff00000064"),
            (5, opcode::BATCH, "010002000000001c494e5345525420494e544f207420286b292056414c554553202831290000010010cccccccccccccccccccccccccccccccc00020000000178ffffffff00040000003000080000000000000063"),
            (5, opcode::PREPARE, "0000000853454c45435420310000000100026b73"),
        ];
        for (version, op, body) in cases {
            let body = hex(body);
            let req = Request::decode(version, op, &body).expect("decodes");
            let mut again = Vec::new();
            req.encode_body(version, &mut again);
            assert_eq!(again, body, "v{version} {}", crate::frame::opcode::name(op));
        }
        let Request::Query(q) = Request::decode(5, opcode::QUERY, &hex(cases[5].2)).expect("ok")
        else {
            panic!("not a query");
        };
        assert_eq!(q.query, "SELECT * FROM t WHERE k=?");
        assert_eq!(q.params.consistency, Consistency::LocalQuorum);
        assert_eq!(q.params.serial_consistency, Some(Consistency::LocalSerial));
        assert_eq!(q.params.page_size, Some(5000));
        assert_eq!(q.params.paging_state, Some(Bytes::from_static(&[1, 2])));
        assert_eq!(q.params.timestamp, Some(1_234_567));
        assert_eq!(q.params.keyspace.as_deref(), Some("ks"));
        let Request::Execute(e) =
            Request::decode(5, opcode::EXECUTE, &hex(cases[7].2)).expect("ok")
        else {
            panic!("not an execute");
        };
        assert_eq!(e.result_metadata_id, Some(Bytes::from(vec![0xBB; 16])));
        assert_eq!(
            e.params.values,
            vec![Value::Bytes(Bytes::from_static(b"abc")), Value::Null]
        );
        let Request::Batch(b) = Request::decode(4, opcode::BATCH, &hex(cases[3].2)).expect("ok")
        else {
            panic!("not a batch");
        };
        assert_eq!(b.kind, batch::BATCH_UNLOGGED);
        assert_eq!(b.statements.len(), 2);
        assert_eq!(b.serial_consistency, Some(Consistency::Serial));
        assert_eq!(b.timestamp, Some(99));
        let startup =
            hex("0002000b434f4d5052455353494f4e00036c7a34000b43514c5f56455253494f4e0005332e302e30");
        let Request::Startup(opts) = Request::decode(4, opcode::STARTUP, &startup).expect("ok")
        else {
            panic!("not startup");
        };
        assert_eq!(
            Request::startup_option(&opts, STARTUP_COMPRESSION),
            Some("lz4")
        );
    }
}
