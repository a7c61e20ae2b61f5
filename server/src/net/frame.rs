//! The internode wire format (see `docs/internode-protocol.md`).
//!
//! A connection starts with a handshake (`[u32 magic][u8 version][u8
//! family][4 or 16 address bytes]`, the sender's broadcast address), then
//! carries frames `[u32 len][u8 verb][u8 flags][u64 id][payload]`, all
//! big-endian, `len` counting everything after itself. Decoding never
//! panics: malformed input is an error that closes that one connection.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

/// The first four bytes of every internode connection.
pub const MAGIC: u32 = 0xCA55_7E55;
/// The protocol version this node speaks.
pub const VERSION: u8 = 1;
/// Bytes of a frame body before the payload: verb, flags, id.
pub const HEADER_LEN: usize = 1 + 1 + 8;
/// Length of the handshake for an IPv4 sender.
pub const HANDSHAKE_PREFIX_LEN: usize = 4 + 1 + 1;

/// The frame is a response to the request with the same id.
pub const FLAG_RESPONSE: u8 = 0x01;
/// The response reports a failure: the payload is a UTF-8 message.
pub const FLAG_FAILURE: u8 = 0x02;
/// The request wants a response (unset for one-way messages).
pub const FLAG_EXPECT_RESPONSE: u8 = 0x04;
/// Every flag this version knows; other bits are a protocol error.
pub const KNOWN_FLAGS: u8 = FLAG_RESPONSE | FLAG_FAILURE | FLAG_EXPECT_RESPONSE;

/// Why bytes from a peer were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The connection did not start with [`MAGIC`].
    BadMagic(u32),
    /// The peer speaks another protocol version.
    BadVersion(u8),
    /// The handshake named an unknown address family.
    BadFamily(u8),
    /// A frame's length is below [`HEADER_LEN`] or above the limit.
    BadLength {
        /// The length read.
        len: u32,
        /// The largest accepted.
        max: usize,
    },
    /// A frame carries flags this version does not know.
    BadFlags(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadMagic(m) => write!(f, "bad magic {m:#010x}"),
            FrameError::BadVersion(v) => {
                write!(
                    f,
                    "unsupported messaging version {v} (this node speaks {VERSION})"
                )
            }
            FrameError::BadFamily(x) => write!(f, "bad address family {x}"),
            FrameError::BadLength { len, max } => {
                write!(f, "bad frame length {len} (expected {HEADER_LEN}..={max})")
            }
            FrameError::BadFlags(x) => write!(f, "unknown frame flags {x:#04x}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The handshake a connecting node sends first.
pub fn encode_handshake(from: IpAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(HANDSHAKE_PREFIX_LEN + 16);
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.push(VERSION);
    match from {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
    out
}

/// Checks the fixed handshake prefix; returns how many address bytes follow.
pub fn decode_handshake_prefix(prefix: &[u8; HANDSHAKE_PREFIX_LEN]) -> Result<usize, FrameError> {
    let magic = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    if prefix[4] != VERSION {
        return Err(FrameError::BadVersion(prefix[4]));
    }
    match prefix[5] {
        4 => Ok(4),
        6 => Ok(16),
        other => Err(FrameError::BadFamily(other)),
    }
}

/// The sender's address from the bytes after the prefix (4 or 16 of them).
pub fn decode_handshake_address(bytes: &[u8]) -> Result<IpAddr, FrameError> {
    if let Ok(a) = <[u8; 4]>::try_from(bytes) {
        Ok(IpAddr::V4(Ipv4Addr::from(a)))
    } else if let Ok(a) = <[u8; 16]>::try_from(bytes) {
        Ok(IpAddr::V6(Ipv6Addr::from(a)))
    } else {
        Err(FrameError::BadFamily(0))
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The verb's wire value (may be one this node does not know).
    pub verb: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Request id; a response carries its request's id.
    pub id: u64,
}

/// Appends one frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, header: FrameHeader, payload: &[u8]) {
    let len = (HEADER_LEN + payload.len()) as u32;
    out.extend_from_slice(&len.to_be_bytes());
    out.push(header.verb);
    out.push(header.flags);
    out.extend_from_slice(&header.id.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Validates a frame's length prefix against `max_frame`.
pub fn check_length(len: u32, max_frame: usize) -> Result<usize, FrameError> {
    let l = len as usize;
    if l < HEADER_LEN || l > max_frame {
        return Err(FrameError::BadLength {
            len,
            max: max_frame,
        });
    }
    Ok(l)
}

/// Splits a frame body (everything after the length) into header and payload.
pub fn decode_body(body: Bytes) -> Result<(FrameHeader, Bytes), FrameError> {
    if body.len() < HEADER_LEN {
        return Err(FrameError::BadLength {
            len: body.len() as u32,
            max: usize::MAX,
        });
    }
    let verb = body[0];
    let flags = body[1];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(FrameError::BadFlags(flags));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&body[2..HEADER_LEN]);
    Ok((
        FrameHeader {
            verb,
            flags,
            id: u64::from_be_bytes(id),
        },
        body.slice(HEADER_LEN..),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip() {
        let h = FrameHeader {
            verb: 7,
            flags: FLAG_EXPECT_RESPONSE,
            id: 0x0102_0304_0506_0708,
        };
        let mut out = Vec::new();
        encode_frame(&mut out, h, b"hello");
        let len = u32::from_be_bytes([out[0], out[1], out[2], out[3]]);
        assert_eq!(check_length(len, 1024).unwrap(), out.len() - 4);
        let (h2, p) = decode_body(Bytes::copy_from_slice(&out[4..])).unwrap();
        assert_eq!(h2, h);
        assert_eq!(&p[..], b"hello");
    }

    #[test]
    fn handshake_round_trip_and_garbage() {
        for ip in ["127.0.0.91".parse().unwrap(), "::1".parse().unwrap()] {
            let hs = encode_handshake(ip);
            let prefix: [u8; HANDSHAKE_PREFIX_LEN] = hs[..HANDSHAKE_PREFIX_LEN].try_into().unwrap();
            let n = decode_handshake_prefix(&prefix).unwrap();
            assert_eq!(
                decode_handshake_address(&hs[HANDSHAKE_PREFIX_LEN..][..n]).unwrap(),
                ip
            );
        }
        assert!(matches!(
            decode_handshake_prefix(b"GET / "),
            Err(FrameError::BadMagic(_))
        ));
        let mut hs = encode_handshake("127.0.0.1".parse().unwrap());
        hs[4] = 99;
        let prefix: [u8; HANDSHAKE_PREFIX_LEN] = hs[..HANDSHAKE_PREFIX_LEN].try_into().unwrap();
        assert_eq!(
            decode_handshake_prefix(&prefix),
            Err(FrameError::BadVersion(99))
        );
        assert!(decode_handshake_address(&[1, 2, 3]).is_err());
    }

    #[test]
    fn bad_lengths_and_flags_are_errors() {
        assert!(check_length(0, 100).is_err());
        assert!(check_length(9, 100).is_err());
        assert!(check_length(101, 100).is_err());
        assert!(check_length(u32::MAX, 100).is_err());
        assert!(decode_body(Bytes::from_static(&[1, 2, 3])).is_err());
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            FrameHeader {
                verb: 1,
                flags: 0x80,
                id: 1,
            },
            b"",
        );
        assert_eq!(
            decode_body(Bytes::copy_from_slice(&out[4..])),
            Err(FrameError::BadFlags(0x80))
        );
    }
}
