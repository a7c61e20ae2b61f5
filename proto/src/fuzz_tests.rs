//! Fuzz-style tests: pseudo-random and mutated inputs into every decoder,
//! asserting only that none of them panics (a panic fails the test).

use bytes::Bytes;

use crate::compression;
use crate::consistency::Consistency;
use crate::frame::{self, opcode};
use crate::request::{
    BatchQueryKind, BatchRequest, BatchStatement, ExecuteRequest, PrepareRequest, QueryParameters,
    QueryRequest, Request,
};
use crate::response::{self, Response};
use crate::segment;
use crate::type_option::read_type_option;
use crate::types::{Reader, Value};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            let word = self.next().to_le_bytes();
            let take = (len - v.len()).min(8);
            v.extend_from_slice(&word[..take]);
        }
        // Bias towards small lengths and boundary values so length fields
        // are sometimes plausible.
        if !v.is_empty() && self.below(4) == 0 {
            let i = self.below(v.len());
            v[i] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE][self.below(6)];
        }
        v
    }

    /// Flips, overwrites, truncates or extends a valid input.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + self.below(4) {
            match self.below(5) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = self.next() as u8;
                }
                2 => {
                    let n = self.below(v.len() + 1);
                    v.truncate(n);
                }
                3 => {
                    let extra = self.bytes(8);
                    v.extend_from_slice(&extra);
                }
                _ if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = [0x00, 0x7F, 0x80, 0xFF][self.below(4)];
                }
                _ => {}
            }
        }
        v
    }
}

const REQUEST_OPCODES: [u8; 9] = [
    opcode::STARTUP,
    opcode::OPTIONS,
    opcode::QUERY,
    opcode::PREPARE,
    opcode::EXECUTE,
    opcode::BATCH,
    opcode::REGISTER,
    opcode::AUTH_RESPONSE,
    opcode::RESULT,
];

const RESPONSE_OPCODES: [u8; 8] = [
    opcode::ERROR,
    opcode::READY,
    opcode::AUTHENTICATE,
    opcode::SUPPORTED,
    opcode::RESULT,
    opcode::EVENT,
    opcode::AUTH_CHALLENGE,
    opcode::AUTH_SUCCESS,
];

fn seed_requests(version: u8) -> Vec<Request> {
    let mut params = QueryParameters::new(Consistency::LocalQuorum);
    params.values = vec![
        Value::Bytes(Bytes::from_static(&[0, 0, 0, 1])),
        Value::Null,
        Value::NotSet,
    ];
    params.names = Some(vec!["a".into(), "b".into(), "c".into()]);
    params.page_size = Some(100);
    params.paging_state = Some(Bytes::from_static(b"ps"));
    params.serial_consistency = Some(Consistency::Serial);
    params.timestamp = Some(42);
    if version >= 5 {
        params.keyspace = Some("ks".into());
        params.now_in_seconds = Some(1);
    }
    vec![
        Request::Startup(vec![("CQL_VERSION".into(), "3.0.0".into())]),
        Request::Query(QueryRequest {
            query: "SELECT * FROM t".into(),
            params: params.clone(),
        }),
        Request::Prepare(PrepareRequest {
            query: "SELECT ?".into(),
            keyspace: Some("ks".into()),
        }),
        Request::Execute(ExecuteRequest {
            id: Bytes::from_static(&[1; 16]),
            result_metadata_id: Some(Bytes::from_static(&[2; 16])),
            params,
        }),
        Request::Batch(BatchRequest {
            kind: 0,
            statements: vec![
                BatchStatement {
                    kind: BatchQueryKind::Query("INSERT".into()),
                    values: vec![Value::Null],
                    names: None,
                },
                BatchStatement {
                    kind: BatchQueryKind::Prepared(Bytes::from_static(&[3; 4])),
                    values: vec![],
                    names: None,
                },
            ],
            consistency: Consistency::One,
            serial_consistency: Some(Consistency::LocalSerial),
            timestamp: Some(7),
            keyspace: None,
            now_in_seconds: None,
        }),
        Request::Register(vec!["SCHEMA_CHANGE".into()]),
        Request::AuthResponse(Some(b"\0u\0p".to_vec())),
    ]
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for i in 0..300_000u32 {
        let input = rng.bytes(48);
        match i % 6 {
            0 => {
                let _ = frame::decode_envelope(&input, 1 << 16);
                let _ = frame::decode_response_envelope(&input, 64);
            }
            1 => {
                let _ = segment::decode_segment(&input, false);
                let _ = segment::decode_segment(&input, true);
            }
            2 => {
                let op = REQUEST_OPCODES[rng.below(REQUEST_OPCODES.len())];
                let version = 3 + rng.below(3) as u8;
                let _ = Request::decode(version, op, &input);
                let body = Bytes::from(input);
                let _ = Request::decode_with_flags(version, rng.next() as u8, op, &body);
            }
            3 => {
                let op = RESPONSE_OPCODES[rng.below(RESPONSE_OPCODES.len())];
                let version = 3 + rng.below(3) as u8;
                let _ = Response::decode(version, op, &input);
                let body = Bytes::from(input);
                let _ = Response::decode_with_flags(version, rng.next() as u8, op, &body);
            }
            4 => {
                let _ = read_type_option(&mut Reader::new(&input));
            }
            _ => {
                let _ = compression::decompress_v4_body(&input, 1 << 20);
            }
        }
    }
}

#[test]
fn mutated_valid_messages_never_panic() {
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    let mut request_seeds = Vec::new();
    for version in [3u8, 4, 5] {
        for req in seed_requests(version) {
            let mut body = Vec::new();
            req.encode_body(version, &mut body);
            request_seeds.push((version, req.opcode(), body));
        }
    }
    let mut response_seeds = Vec::new();
    for version in [4u8, 5] {
        let resp = Response::Result(response::ResultBody::Rows(response::Rows {
            metadata: response::ResultMetadata::new(vec![response::ColumnSpec::new(
                "ks",
                "t",
                "c",
                crate::value::ColumnType::Map(
                    Box::new(crate::value::ColumnType::Text),
                    Box::new(crate::value::ColumnType::Int),
                ),
            )]),
            rows: vec![vec![Some(Bytes::from_static(b"x"))], vec![None]],
        }));
        let mut body = Vec::new();
        resp.encode_body(version, &mut body);
        response_seeds.push((version, opcode::RESULT, body));
    }
    let mut segment_seeds = Vec::new();
    for compressed in [false, true] {
        let mut out = Vec::new();
        segment::encode_segment(&[b'q'; 200], true, compressed, &mut out);
        segment_seeds.push((compressed, out));
    }
    let mut envelope = Vec::new();
    frame::encode_request_envelope(&mut envelope, 4, 0, 1, opcode::OPTIONS, b"");

    for i in 0..200_000u32 {
        match i % 4 {
            0 | 1 => {
                let (version, op, body) = &request_seeds[rng.below(request_seeds.len())];
                let m = rng.mutate(body);
                let _ = Request::decode(*version, *op, &m);
            }
            2 => {
                let (version, op, body) = &response_seeds[rng.below(response_seeds.len())];
                let m = rng.mutate(body);
                let _ = Response::decode(*version, *op, &m);
            }
            _ => {
                let (compressed, seg) = &segment_seeds[rng.below(segment_seeds.len())];
                let m = rng.mutate(seg);
                let _ = segment::decode_segment(&m, *compressed);
                let m = rng.mutate(&envelope);
                let _ = frame::decode_envelope(&m, 1 << 20);
            }
        }
    }
}
