//! Protocol v5 segments (the v5 spec's "Framing" section, Cassandra's
//! `FrameEncoderCrc`/`FrameEncoderLZ4`): once STARTUP has been answered,
//! envelopes travel inside checksummed, optionally LZ4-compressed segments.
//!
//! Uncompressed (6-byte header):
//! ```text
//! 17 bits payload length | 1 bit self-contained | 6 bits padding   (3 bytes, LE)
//! CRC24 of those 3 bytes                                           (3 bytes, LE)
//! payload | CRC32 of payload                                       (4 bytes, LE)
//! ```
//! Compressed (8-byte header):
//! ```text
//! 17 bits compressed length | 17 bits uncompressed length |
//! 1 bit self-contained | 5 bits padding                            (5 bytes, LE)
//! CRC24 of those 5 bytes                                           (3 bytes, LE)
//! compressed payload | CRC32 of compressed payload                 (4 bytes, LE)
//! ```
//! An uncompressed length of 0 in a compressed segment means the payload is
//! sent as is (compression would not have made it smaller).
//!
//! A self-contained segment holds one or more whole envelopes; a large
//! envelope is split across consecutive non-self-contained segments.

use bytes::{Bytes, BytesMut};

use crate::compression;
use crate::crc::{crc24, segment_crc32};
use crate::error::{FrameError, ProtocolError};
use crate::frame::{self, Envelope, HEADER_LEN};

/// Largest payload of one segment: 128 KiB - 1.
pub const MAX_PAYLOAD_LEN: usize = (1 << 17) - 1;
/// Header length of an uncompressed segment (including the CRC24).
pub const UNCOMPRESSED_HEADER_LEN: usize = 6;
/// Header length of a compressed segment (including the CRC24).
pub const COMPRESSED_HEADER_LEN: usize = 8;
/// Length of the CRC32 trailer.
pub const TRAILER_LEN: usize = 4;

const LEN_MASK: u64 = 0x1FFFF;

/// One decoded segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The (decompressed) payload.
    pub payload: Bytes,
    /// The payload holds whole envelopes only.
    pub self_contained: bool,
}

fn read_le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn write_le(out: &mut Vec<u8>, v: u64, n: usize) {
    for i in 0..n {
        out.push((v >> (8 * i)) as u8);
    }
}

/// Decodes one segment from the start of `buf`; `compressed` says whether
/// LZ4 was negotiated. `Ok(None)` while incomplete.
pub fn decode_segment(
    buf: &[u8],
    compressed: bool,
) -> Result<Option<(Segment, usize)>, FrameError> {
    let header_len = if compressed {
        COMPRESSED_HEADER_LEN
    } else {
        UNCOMPRESSED_HEADER_LEN
    };
    let Some(header) = buf.get(..header_len) else {
        return Ok(None);
    };
    let fields_len = header_len - 3;
    let fields = read_le(&header[..fields_len]);
    let read_crc = read_le(&header[fields_len..]) as u32;
    let computed = crc24(fields, fields_len);
    if read_crc != computed {
        return Err(FrameError::HeaderCrcMismatch {
            read: read_crc,
            computed,
        });
    }
    let payload_len = (fields & LEN_MASK) as usize;
    let (uncompressed_len, self_contained) = if compressed {
        (
            ((fields >> 17) & LEN_MASK) as usize,
            fields & (1 << 34) != 0,
        )
    } else {
        (0, fields & (1 << 17) != 0)
    };
    let total = header_len + payload_len + TRAILER_LEN;
    let Some(segment) = buf.get(..total) else {
        return Ok(None);
    };
    let payload = &segment[header_len..header_len + payload_len];
    let read_crc = read_le(&segment[header_len + payload_len..]) as u32;
    let computed = segment_crc32(payload);
    if read_crc != computed {
        return Err(FrameError::PayloadCrcMismatch {
            read: read_crc,
            computed,
        });
    }
    let payload = if compressed && uncompressed_len != 0 {
        let mut out = Vec::with_capacity(uncompressed_len);
        compression::decompress_block(payload, uncompressed_len, &mut out)?;
        Bytes::from(out)
    } else {
        Bytes::copy_from_slice(payload)
    };
    Ok(Some((
        Segment {
            payload,
            self_contained,
        },
        total,
    )))
}

/// Appends one segment carrying `payload` (at most [`MAX_PAYLOAD_LEN`]
/// bytes; longer input is cut there, use [`encode_segments`]).
pub fn encode_segment(payload: &[u8], self_contained: bool, compressed: bool, out: &mut Vec<u8>) {
    let payload = &payload[..payload.len().min(MAX_PAYLOAD_LEN)];
    let sc = u64::from(self_contained);
    if !compressed {
        let fields = payload.len() as u64 | sc << 17;
        write_le(out, fields, 3);
        write_le(out, u64::from(crc24(fields, 3)), 3);
        out.extend_from_slice(payload);
        write_le(out, u64::from(segment_crc32(payload)), 4);
        return;
    }
    let header_at = out.len();
    out.extend_from_slice(&[0; COMPRESSED_HEADER_LEN]);
    let body_at = out.len();
    let mut compressed_len = compression::compress_block(payload, out);
    let mut uncompressed_len = payload.len();
    if compressed_len >= uncompressed_len || compressed_len > MAX_PAYLOAD_LEN {
        out.truncate(body_at);
        out.extend_from_slice(payload);
        compressed_len = uncompressed_len;
        uncompressed_len = 0;
    }
    let fields = compressed_len as u64 | (uncompressed_len as u64) << 17 | sc << 34;
    let header = fields | u64::from(crc24(fields, 5)) << 40;
    out[header_at..body_at].copy_from_slice(&header.to_le_bytes());
    let crc = segment_crc32(&out[body_at..]);
    write_le(out, u64::from(crc), 4);
}

/// Appends `payload` as segments: one self-contained segment if it fits,
/// else consecutive non-self-contained segments of at most
/// [`MAX_PAYLOAD_LEN`] bytes. `payload` must be whole envelopes, and if it
/// does not fit it should be a single envelope (see [`encode_envelopes`]).
pub fn encode_segments(payload: &[u8], compressed: bool, out: &mut Vec<u8>) {
    if payload.len() <= MAX_PAYLOAD_LEN {
        encode_segment(payload, true, compressed, out);
        return;
    }
    for chunk in payload.chunks(MAX_PAYLOAD_LEN) {
        encode_segment(chunk, false, compressed, out);
    }
}

/// Appends a buffer of consecutive, well-formed envelopes (as written by
/// [`frame::encode_envelope`]) as segments the way Cassandra does: small
/// envelopes are packed together into self-contained segments, and an
/// envelope larger than a segment is split alone across non-self-contained
/// ones. Trailing bytes that are not a whole envelope are sent as is.
pub fn encode_envelopes(envelopes: &[u8], compressed: bool, out: &mut Vec<u8>) {
    let mut pos = 0;
    let mut batch_start = 0;
    while pos < envelopes.len() {
        let len = envelopes
            .get(pos + 5..pos + HEADER_LEN)
            .map(|l| HEADER_LEN + u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .unwrap_or(envelopes.len() - pos)
            .min(envelopes.len() - pos);
        if len > MAX_PAYLOAD_LEN {
            if batch_start < pos {
                encode_segment(&envelopes[batch_start..pos], true, compressed, out);
            }
            encode_segments(&envelopes[pos..pos + len], compressed, out);
            pos += len;
            batch_start = pos;
            continue;
        }
        if pos + len - batch_start > MAX_PAYLOAD_LEN {
            encode_segment(&envelopes[batch_start..pos], true, compressed, out);
            batch_start = pos;
        }
        pos += len;
    }
    if batch_start < envelopes.len() {
        encode_segment(&envelopes[batch_start..], true, compressed, out);
    }
}

/// Reassembles envelopes from the segments of one connection.
///
/// Feed each decoded [`Segment`] with [`push`](Self::push), then take the
/// complete envelopes with [`next_envelope`](Self::next_envelope).
#[derive(Debug, Default)]
pub struct SegmentAssembler {
    buf: BytesMut,
    in_large_envelope: bool,
}

impl SegmentAssembler {
    /// An empty assembler.
    pub fn new() -> SegmentAssembler {
        SegmentAssembler::default()
    }

    /// Adds a segment's payload.
    ///
    /// A self-contained segment arriving while a large envelope is only
    /// partly received is a protocol violation.
    pub fn push(&mut self, segment: &Segment) -> Result<(), FrameError> {
        if segment.self_contained && self.in_large_envelope && !self.buf.is_empty() {
            return Err(FrameError::Protocol(ProtocolError::invalid(
                "Self-contained segment received in the middle of a large envelope",
            )));
        }
        self.in_large_envelope = !segment.self_contained;
        self.buf.extend_from_slice(&segment.payload);
        Ok(())
    }

    /// The next complete request envelope, if any.
    pub fn next_envelope(&mut self, max_body_len: usize) -> Result<Option<Envelope>, FrameError> {
        let env = frame::decode_envelope_from_bytes(&mut self.buf, max_body_len)?;
        if env.is_some() && self.buf.is_empty() {
            self.in_large_envelope = false;
        }
        Ok(env)
    }

    /// Bytes received but not yet part of a complete envelope.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::opcode;

    fn decode_all(mut buf: &[u8], compressed: bool) -> Vec<Segment> {
        let mut segs = Vec::new();
        while !buf.is_empty() {
            let (s, used) = decode_segment(buf, compressed)
                .expect("valid")
                .expect("complete");
            segs.push(s);
            buf = &buf[used..];
        }
        segs
    }

    #[test]
    fn uncompressed_header_layout() {
        let mut out = Vec::new();
        encode_segment(&[b'b'; 50], true, false, &mut out);
        // 50 | 1 << 17 = 0x020032, little-endian, then its CRC24 0xEEFFA5.
        assert_eq!(&out[..6], &[0x32, 0x00, 0x02, 0xA5, 0xFF, 0xEE]);
        assert_eq!(out.len(), 6 + 50 + 4);
        assert_eq!(&out[56..], &0x7CEB_AE7Au32.to_le_bytes());
    }

    #[test]
    fn round_trip_small_both_modes() {
        for compressed in [false, true] {
            let payload: Vec<u8> = b"abcabcabcabcabcabcabcabc".repeat(20);
            let mut out = Vec::new();
            encode_segments(&payload, compressed, &mut out);
            if compressed {
                assert!(out.len() < payload.len());
            }
            let segs = decode_all(&out, compressed);
            assert_eq!(segs.len(), 1);
            assert!(segs[0].self_contained);
            assert_eq!(&segs[0].payload[..], &payload[..]);
            for cut in 0..out.len() {
                assert_eq!(decode_segment(&out[..cut], compressed), Ok(None));
            }
        }
    }

    #[test]
    fn incompressible_payload_is_sent_raw() {
        let mut out = Vec::new();
        encode_segment(b"b", true, true, &mut out);
        let fields = read_le(&out[..5]);
        assert_eq!(fields & LEN_MASK, 1);
        assert_eq!((fields >> 17) & LEN_MASK, 0, "uncompressed length 0 = raw");
        assert_eq!(out[8], b'b');
        let (seg, used) = decode_segment(&out, true).expect("ok").expect("some");
        assert_eq!(used, out.len());
        assert_eq!(&seg.payload[..], b"b");
    }

    #[test]
    fn large_payload_splits_into_non_self_contained() {
        for compressed in [false, true] {
            let payload: Vec<u8> = (0..MAX_PAYLOAD_LEN * 2 + 10)
                .map(|i| (i * 7 % 253) as u8)
                .collect();
            let mut out = Vec::new();
            encode_segments(&payload, compressed, &mut out);
            let segs = decode_all(&out, compressed);
            assert_eq!(segs.len(), 3);
            assert!(segs.iter().all(|s| !s.self_contained));
            let joined: Vec<u8> = segs.iter().flat_map(|s| s.payload.to_vec()).collect();
            assert_eq!(joined, payload);
        }
        // Exactly the maximum still fits one self-contained segment.
        let mut out = Vec::new();
        encode_segments(&vec![1u8; MAX_PAYLOAD_LEN], false, &mut out);
        let segs = decode_all(&out, false);
        assert_eq!(segs.len(), 1);
        assert!(segs[0].self_contained);
    }

    #[test]
    fn corruption_is_detected() {
        for compressed in [false, true] {
            let mut out = Vec::new();
            encode_segment(&[b'x'; 300], true, compressed, &mut out);
            let header_len = if compressed { 8 } else { 6 };
            for i in 0..out.len() {
                let mut bad = out.clone();
                bad[i] ^= 0x01;
                match decode_segment(&bad, compressed) {
                    Err(FrameError::HeaderCrcMismatch { .. }) => assert!(i < header_len),
                    Err(FrameError::PayloadCrcMismatch { .. }) => assert!(i >= header_len),
                    // A length bit flip that still passes CRC24 is
                    // impossible: CRC24 catches every single-bit error.
                    other => panic!("byte {i}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn lying_uncompressed_length_is_an_error_not_a_panic() {
        // Build a compressed segment by hand whose header claims more
        // uncompressed bytes than the block yields.
        let payload = vec![b'z'; 1000];
        let mut block = Vec::new();
        compression::compress_block(&payload, &mut block);
        let fields = block.len() as u64 | 2000u64 << 17 | 1 << 34;
        let mut out = Vec::new();
        write_le(&mut out, fields, 5);
        write_le(&mut out, u64::from(crc24(fields, 5)), 3);
        out.extend_from_slice(&block);
        write_le(&mut out, u64::from(segment_crc32(&block)), 4);
        assert!(matches!(
            decode_segment(&out, true),
            Err(FrameError::Protocol(ProtocolError::Decompression(_)))
        ));
    }

    fn envelope(stream: i16, body_len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        frame::encode_request_envelope(
            &mut out,
            5,
            0,
            stream,
            opcode::QUERY,
            &vec![stream as u8; body_len],
        );
        out
    }

    #[test]
    fn envelopes_pack_and_reassemble() {
        for compressed in [false, true] {
            let mut stream_bytes = Vec::new();
            let sizes = [10usize, 20, 70_000, 70_000, 300_000, 5, 0];
            for (i, &n) in sizes.iter().enumerate() {
                stream_bytes.extend_from_slice(&envelope(i as i16, n));
            }
            let mut wire = Vec::new();
            encode_envelopes(&stream_bytes, compressed, &mut wire);
            let segs = decode_all(&wire, compressed);
            // [10, 20, 70k] together, [70k] alone, 300k in 3 parts, [5, 0].
            let shape: Vec<bool> = segs.iter().map(|s| s.self_contained).collect();
            assert_eq!(shape, [true, true, false, false, false, true]);
            let mut asm = SegmentAssembler::new();
            let mut got = Vec::new();
            for s in &segs {
                asm.push(s).expect("in order");
                while let Some(env) = asm.next_envelope(1 << 20).expect("valid") {
                    got.push((env.header.stream, env.body.len()));
                }
            }
            let want: Vec<(i16, usize)> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| (i as i16, n))
                .collect();
            assert_eq!(got, want);
            assert_eq!(asm.pending(), 0);
        }
    }

    #[test]
    fn self_contained_inside_large_envelope_is_rejected() {
        let mut asm = SegmentAssembler::new();
        asm.push(&Segment {
            payload: Bytes::from_static(&[5, 0, 0, 1, 7, 0, 1, 0, 0]),
            self_contained: false,
        })
        .expect("first part");
        assert!(asm
            .push(&Segment {
                payload: Bytes::from_static(b"x"),
                self_contained: true,
            })
            .is_err());
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Segments written by the DataStax Python driver 3.30.1
    /// (`segment_codec_no_compression` / `segment_codec_lz4`).
    #[test]
    fn python_driver_vectors() {
        let unc_hello = hex("0b000294081168656c6c6f20776f726c641f48624a");
        let mut mine = Vec::new();
        encode_segments(b"hello world", false, &mut mine);
        assert_eq!(mine, unc_hello);

        let lz4_b = hex("010000000406a58762e91b206e");
        let mut mine = Vec::new();
        encode_segments(b"b", true, &mut mine);
        assert_eq!(mine, lz4_b);

        let lz4_abc = hex("0e00580204051d773f6162630300ff1250626361626393273c6d");
        let (seg, used) = decode_segment(&lz4_abc, true)
            .expect("ok")
            .expect("complete");
        assert_eq!(used, lz4_abc.len());
        assert!(seg.self_contained);
        assert_eq!(&seg.payload[..], &b"abc".repeat(100)[..]);

        // First header of a payload one byte over the maximum: full length,
        // not self-contained.
        let mut mine = Vec::new();
        encode_segments(&vec![b'x'; MAX_PAYLOAD_LEN + 5], false, &mut mine);
        assert_eq!(&mine[..6], &hex("ffff013891fe")[..]);
        assert_eq!(mine.len(), 131_096);
    }
}
