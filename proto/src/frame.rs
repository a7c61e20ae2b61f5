//! Envelopes: the 9-byte header and body that carry one message (called a
//! "frame" up to v4; in v5 envelopes travel inside segments once the
//! connection is set up, see [`crate::segment`]).
//!
//! ```text
//! version(1: direction bit 0x80 | version) flags(1) stream(2, signed) opcode(1) length(4)
//! ```

use bytes::{Buf, Bytes, BytesMut};

use crate::error::FrameError;

/// Size of an envelope header.
pub const HEADER_LEN: usize = 9;
/// The direction bit of the version byte: set on responses.
pub const DIRECTION_RESPONSE: u8 = 0x80;
/// Default cap on a body, as Cassandra's `native_transport_max_frame_size`
/// (16 MiB) permits.
pub const DEFAULT_MAX_BODY_LEN: usize = 16 * 1024 * 1024;
/// Lowest protocol version served.
pub const MIN_VERSION: u8 = 3;
/// Highest protocol version served.
pub const MAX_VERSION: u8 = 5;

/// Header flags (spec section 2.2).
pub mod flags {
    /// The body is compressed (v4 and earlier; v5 compresses segments).
    pub const COMPRESSION: u8 = 0x01;
    /// Request: trace it. Response: the body starts with a tracing `[uuid]`.
    pub const TRACING: u8 = 0x02;
    /// A `[bytes map]` custom payload precedes the message.
    pub const CUSTOM_PAYLOAD: u8 = 0x04;
    /// Response: a `[string list]` of warnings precedes the message.
    pub const WARNING: u8 = 0x08;
    /// The client opts in to a beta protocol version.
    pub const USE_BETA: u8 = 0x10;
}

/// Opcodes (spec section 2.4).
pub mod opcode {
    /// Response: an error.
    pub const ERROR: u8 = 0x00;
    /// Request: initialise the connection.
    pub const STARTUP: u8 = 0x01;
    /// Response: the connection is ready.
    pub const READY: u8 = 0x02;
    /// Response: authentication is required.
    pub const AUTHENTICATE: u8 = 0x03;
    /// Request: ask for the supported STARTUP options.
    pub const OPTIONS: u8 = 0x05;
    /// Response: the supported STARTUP options.
    pub const SUPPORTED: u8 = 0x06;
    /// Request: run a CQL query.
    pub const QUERY: u8 = 0x07;
    /// Response: a query result.
    pub const RESULT: u8 = 0x08;
    /// Request: prepare a query.
    pub const PREPARE: u8 = 0x09;
    /// Request: run a prepared query.
    pub const EXECUTE: u8 = 0x0A;
    /// Request: subscribe to events.
    pub const REGISTER: u8 = 0x0B;
    /// Response (stream -1): a pushed event.
    pub const EVENT: u8 = 0x0C;
    /// Request: run a batch.
    pub const BATCH: u8 = 0x0D;
    /// Response: a SASL challenge.
    pub const AUTH_CHALLENGE: u8 = 0x0E;
    /// Request: a SASL response.
    pub const AUTH_RESPONSE: u8 = 0x0F;
    /// Response: authentication succeeded.
    pub const AUTH_SUCCESS: u8 = 0x10;

    /// The spec's name of an opcode, for logs.
    pub fn name(op: u8) -> &'static str {
        match op {
            ERROR => "ERROR",
            STARTUP => "STARTUP",
            READY => "READY",
            AUTHENTICATE => "AUTHENTICATE",
            OPTIONS => "OPTIONS",
            SUPPORTED => "SUPPORTED",
            QUERY => "QUERY",
            RESULT => "RESULT",
            PREPARE => "PREPARE",
            EXECUTE => "EXECUTE",
            REGISTER => "REGISTER",
            EVENT => "EVENT",
            BATCH => "BATCH",
            AUTH_CHALLENGE => "AUTH_CHALLENGE",
            AUTH_RESPONSE => "AUTH_RESPONSE",
            AUTH_SUCCESS => "AUTH_SUCCESS",
            _ => "UNKNOWN",
        }
    }
}

/// A decoded envelope header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Protocol version, without the direction bit.
    pub version: u8,
    /// The direction bit was set.
    pub is_response: bool,
    /// [`flags`] bits.
    pub flags: u8,
    /// Stream id; -1 for server-pushed events.
    pub stream: i16,
    /// The [`opcode`].
    pub opcode: u8,
    /// Body length.
    pub length: u32,
}

impl FrameHeader {
    /// Writes the 9 header bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let dir = if self.is_response {
            DIRECTION_RESPONSE
        } else {
            0
        };
        out.push(self.version | dir);
        out.push(self.flags);
        out.extend_from_slice(&self.stream.to_be_bytes());
        out.push(self.opcode);
        out.extend_from_slice(&self.length.to_be_bytes());
    }
}

/// One envelope: header and (still compressed, if the flag says so) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The header.
    pub header: FrameHeader,
    /// The body, `header.length` bytes.
    pub body: Bytes,
}

impl Envelope {
    /// The body, LZ4-decompressed if the COMPRESSION flag is set on a v3/v4
    /// envelope (v5 compresses segments instead and ignores the flag).
    /// `max_len` bounds the declared uncompressed size.
    pub fn decompressed_body(&self, max_len: usize) -> Result<Bytes, crate::error::ProtocolError> {
        if self.header.flags & flags::COMPRESSION != 0 && self.header.version < 5 {
            crate::compression::decompress_v4_body(&self.body, max_len).map(Bytes::from)
        } else {
            Ok(self.body.clone())
        }
    }
}

/// The message the server sends (ERROR 0x000A) for an unsupported version.
/// Drivers look for `Invalid or unsupported protocol version` to downgrade.
pub fn unsupported_version_message(version: u8) -> String {
    format!(
        "Invalid or unsupported protocol version ({version}); supported versions are (3/v3, 4/v4, 5/v5-beta)"
    )
}

/// Whether `version` (without direction bit) is served.
pub fn is_supported_version(version: u8) -> bool {
    (MIN_VERSION..=MAX_VERSION).contains(&version)
}

/// Parses and validates a header from the start of `buf`.
/// `Ok(None)`: not enough bytes yet.
fn parse_header(
    buf: &[u8],
    max_body_len: usize,
    expect_response: bool,
) -> Result<Option<FrameHeader>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let version = first & !DIRECTION_RESPONSE;
    let is_response = first & DIRECTION_RESPONSE != 0;
    if !is_supported_version(version) {
        // v1/v2 had a one-byte stream at offset 2; v3+ a two-byte one.
        let stream = if version < 3 {
            match buf.get(2) {
                Some(&s) => i16::from(s as i8),
                None => return Ok(None),
            }
        } else {
            match (buf.get(2), buf.get(3)) {
                (Some(&a), Some(&b)) => i16::from_be_bytes([a, b]),
                _ => return Ok(None),
            }
        };
        return Err(FrameError::UnsupportedVersion { version, stream });
    }
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let stream = i16::from_be_bytes([h[2], h[3]]);
    if is_response != expect_response {
        return Err(FrameError::WrongDirection { stream });
    }
    let length = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
    if usize::try_from(length).map_or(true, |l| l > max_body_len) {
        return Err(FrameError::TooLarge {
            stream,
            length,
            max: max_body_len,
        });
    }
    Ok(Some(FrameHeader {
        version,
        is_response,
        flags: h[1],
        stream,
        opcode: h[4],
        length,
    }))
}

/// Decodes one request envelope from the start of `buf` (the server side).
///
/// Returns `Ok(None)` while incomplete, else the envelope and the number of
/// bytes it took. The body is copied; see [`decode_envelope_from_bytes`]
/// for a zero-copy variant.
pub fn decode_envelope(
    buf: &[u8],
    max_body_len: usize,
) -> Result<Option<(Envelope, usize)>, FrameError> {
    decode_directed(buf, max_body_len, false)
}

/// Decodes one response envelope (the client side).
pub fn decode_response_envelope(
    buf: &[u8],
    max_body_len: usize,
) -> Result<Option<(Envelope, usize)>, FrameError> {
    decode_directed(buf, max_body_len, true)
}

fn decode_directed(
    buf: &[u8],
    max_body_len: usize,
    expect_response: bool,
) -> Result<Option<(Envelope, usize)>, FrameError> {
    let Some(header) = parse_header(buf, max_body_len, expect_response)? else {
        return Ok(None);
    };
    let total = HEADER_LEN + header.length as usize;
    let Some(body) = buf.get(HEADER_LEN..total) else {
        return Ok(None);
    };
    Ok(Some((
        Envelope {
            header,
            body: Bytes::copy_from_slice(body),
        },
        total,
    )))
}

/// Decodes one request envelope from a receive buffer, splitting it off
/// without copying the body. Leaves `buf` untouched while incomplete.
pub fn decode_envelope_from_bytes(
    buf: &mut BytesMut,
    max_body_len: usize,
) -> Result<Option<Envelope>, FrameError> {
    let Some(header) = parse_header(buf, max_body_len, false)? else {
        return Ok(None);
    };
    let total = HEADER_LEN + header.length as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    frame.advance(HEADER_LEN);
    Ok(Some(Envelope {
        header,
        body: frame.freeze(),
    }))
}

/// Appends a response envelope (direction bit set) with `body`.
pub fn encode_envelope(
    out: &mut Vec<u8>,
    version: u8,
    flags: u8,
    stream: i16,
    opcode: u8,
    body: &[u8],
) {
    let start = begin_envelope(out, version, flags, stream, opcode);
    out.extend_from_slice(body);
    finish_envelope(out, start);
}

/// Appends a request envelope (direction bit clear): the client side.
pub fn encode_request_envelope(
    out: &mut Vec<u8>,
    version: u8,
    flags: u8,
    stream: i16,
    opcode: u8,
    body: &[u8],
) {
    let start = out.len();
    begin_envelope(out, version, flags, stream, opcode);
    if let Some(b) = out.get_mut(start) {
        *b &= !DIRECTION_RESPONSE;
    }
    out.extend_from_slice(body);
    finish_envelope(out, start);
}

/// Appends a response header with a placeholder length and returns its
/// offset. Write the body straight into `out`, then call
/// [`finish_envelope`].
pub fn begin_envelope(out: &mut Vec<u8>, version: u8, flags: u8, stream: i16, opcode: u8) -> usize {
    let start = out.len();
    FrameHeader {
        version: version & !DIRECTION_RESPONSE,
        is_response: true,
        flags,
        stream,
        opcode,
        length: 0,
    }
    .encode(out);
    start
}

/// Patches the length of the envelope begun at `start`.
pub fn finish_envelope(out: &mut [u8], start: usize) {
    let body_len = out.len().saturating_sub(start + HEADER_LEN);
    let len = u32::try_from(body_len).unwrap_or(u32::MAX).to_be_bytes();
    if let Some(slot) = out.get_mut(start + 5..start + HEADER_LEN) {
        slot.copy_from_slice(&len);
    }
}

/// Sets flag bits on the envelope begun at `start` (e.g. after deciding to
/// add warnings).
pub fn set_envelope_flags(out: &mut [u8], start: usize, flags: u8) {
    if let Some(b) = out.get_mut(start + 1) {
        *b |= flags;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: u8, stream: i16, opcode: u8, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_request_envelope(&mut out, version, 0, stream, opcode, body);
        out
    }

    #[test]
    fn options_request_layout() {
        let buf = request(4, 1, opcode::OPTIONS, b"");
        assert_eq!(buf, [0x04, 0, 0, 1, 0x05, 0, 0, 0, 0]);
        let (env, used) = decode_envelope(&buf, 1024).expect("ok").expect("complete");
        assert_eq!(used, 9);
        assert_eq!(env.header.version, 4);
        assert!(!env.header.is_response);
        assert_eq!(env.header.stream, 1);
        assert_eq!(env.header.opcode, opcode::OPTIONS);
        assert!(env.body.is_empty());
    }

    #[test]
    fn response_sets_direction_bit_and_length() {
        let mut out = vec![0xAA]; // unrelated prefix
        encode_envelope(&mut out, 5, flags::WARNING, -1, opcode::EVENT, b"xyz");
        assert_eq!(
            &out[1..],
            &[0x85, 0x08, 0xFF, 0xFF, 0x0C, 0, 0, 0, 3, b'x', b'y', b'z']
        );
        let (env, used) = decode_response_envelope(&out[1..], 1024)
            .expect("ok")
            .expect("complete");
        assert_eq!(used, 12);
        assert_eq!(env.header.stream, -1);
        assert_eq!(env.header.flags, flags::WARNING);
        assert_eq!(&env.body[..], b"xyz");
    }

    #[test]
    fn begin_finish_patches_length() {
        let mut out = Vec::new();
        let start = begin_envelope(&mut out, 4, 0, 7, opcode::RESULT);
        out.extend_from_slice(&[1, 2, 3, 4, 5]);
        finish_envelope(&mut out, start);
        set_envelope_flags(&mut out, start, flags::TRACING);
        assert_eq!(&out[..9], &[0x84, 0x02, 0, 7, 0x08, 0, 0, 0, 5]);
    }

    #[test]
    fn incomplete_at_every_cut() {
        let buf = request(4, 3, opcode::QUERY, b"0123456789");
        for cut in 0..buf.len() {
            assert_eq!(decode_envelope(&buf[..cut], 1024), Ok(None), "cut {cut}");
            let mut b = BytesMut::from(&buf[..cut]);
            assert_eq!(decode_envelope_from_bytes(&mut b, 1024), Ok(None));
            assert_eq!(b.len(), cut);
        }
        let mut b = BytesMut::from(&buf[..]);
        b.extend_from_slice(&[0x04]);
        let env = decode_envelope_from_bytes(&mut b, 1024)
            .expect("ok")
            .expect("complete");
        assert_eq!(&env.body[..], b"0123456789");
        assert_eq!(&b[..], &[0x04]);
    }

    #[test]
    fn unsupported_versions() {
        // The DSE versions the Python driver tries first.
        for v in [0x41u8, 0x42, 6, 0x7F] {
            let buf = [v, 0, 0x12, 0x34, 0x05, 0, 0, 0, 0];
            assert_eq!(
                decode_envelope(&buf, 1024),
                Err(FrameError::UnsupportedVersion {
                    version: v,
                    stream: 0x1234
                })
            );
            // Known as soon as the stream id is in.
            assert!(decode_envelope(&buf[..4], 1024).is_err());
            assert_eq!(decode_envelope(&buf[..3], 1024), Ok(None));
        }
        // v2 header: one-byte stream.
        let buf = [2, 0, 0xFF, 0x05, 0, 0, 0, 0];
        assert_eq!(
            decode_envelope(&buf, 1024),
            Err(FrameError::UnsupportedVersion {
                version: 2,
                stream: -1
            })
        );
        let msg = unsupported_version_message(66);
        assert!(msg.contains("Invalid or unsupported protocol version (66)"));
        assert!(msg.contains("unsupported protocol version"));
        assert_eq!(
            FrameError::UnsupportedVersion {
                version: 66,
                stream: 0
            }
            .to_string(),
            msg
        );
    }

    #[test]
    fn too_large_and_wrong_direction() {
        let buf = [0x04, 0, 0, 9, 0x07, 0x7F, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            decode_envelope(&buf, 1024),
            Err(FrameError::TooLarge {
                stream: 9,
                length: 0x7FFF_FFFF,
                max: 1024
            })
        );
        let mut resp = Vec::new();
        encode_envelope(&mut resp, 4, 0, 2, opcode::READY, b"");
        assert_eq!(
            decode_envelope(&resp, 1024),
            Err(FrameError::WrongDirection { stream: 2 })
        );
        let req = request(4, 2, opcode::OPTIONS, b"");
        assert_eq!(
            decode_response_envelope(&req, 1024),
            Err(FrameError::WrongDirection { stream: 2 })
        );
    }

    #[test]
    fn body_exactly_at_max_is_accepted() {
        let buf = request(5, 0, opcode::QUERY, &[0u8; 16]);
        assert!(decode_envelope(&buf, 16).expect("ok").is_some());
        assert!(decode_envelope(&buf, 15).is_err());
    }

    #[test]
    fn decompressed_body_honours_flag_and_version() {
        let body = b"SELECT * FROM system.peers".repeat(10);
        let mut compressed = Vec::new();
        crate::compression::compress_v4_body(&body, &mut compressed);
        let mut buf = Vec::new();
        encode_request_envelope(
            &mut buf,
            4,
            flags::COMPRESSION,
            1,
            opcode::QUERY,
            &compressed,
        );
        let (env, _) = decode_envelope(&buf, 1 << 20)
            .expect("ok")
            .expect("complete");
        assert_eq!(&env.decompressed_body(1 << 20).expect("lz4")[..], &body[..]);
        assert!(env.decompressed_body(10).is_err());
        let mut buf = Vec::new();
        encode_request_envelope(&mut buf, 5, flags::COMPRESSION, 1, opcode::QUERY, b"raw");
        let (env, _) = decode_envelope(&buf, 1 << 20)
            .expect("ok")
            .expect("complete");
        assert_eq!(&env.decompressed_body(1 << 20).expect("raw")[..], b"raw");
    }
}
