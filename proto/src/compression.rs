//! LZ4 compression (spec section 5), in the two forms the protocol uses:
//!
//! * v4 and earlier: an envelope body with the COMPRESSION flag is a 4-byte
//!   big-endian uncompressed length followed by an LZ4 block;
//! * v5: each segment payload is a raw LZ4 block, its uncompressed length
//!   carried in the segment header (see [`crate::segment`]).

use crate::error::ProtocolError;

/// The name a client puts in STARTUP's `COMPRESSION` option.
pub const LZ4: &str = "lz4";

/// Compresses `input` as a raw LZ4 block, appending to `out`. Returns the
/// compressed length.
pub fn compress_block(input: &[u8], out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.resize(
        start + lz4_flex::block::get_maximum_output_size(input.len()),
        0,
    );
    match lz4_flex::block::compress_into(input, &mut out[start..]) {
        Ok(n) => {
            out.truncate(start + n);
            n
        }
        Err(_) => {
            // Cannot happen with a buffer of the maximum output size; keep
            // `out` consistent anyway.
            out.truncate(start);
            0
        }
    }
}

/// Decompresses a raw LZ4 block that must expand to exactly
/// `uncompressed_len` bytes, appending to `out`.
pub fn decompress_block(
    input: &[u8],
    uncompressed_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    let start = out.len();
    out.resize(start + uncompressed_len, 0);
    match lz4_flex::block::decompress_into(input, &mut out[start..]) {
        Ok(n) if n == uncompressed_len => Ok(()),
        Ok(n) => {
            out.truncate(start);
            Err(ProtocolError::Decompression(format!(
                "LZ4 block expanded to {n} bytes, header said {uncompressed_len}"
            )))
        }
        Err(e) => {
            out.truncate(start);
            Err(ProtocolError::Decompression(e.to_string()))
        }
    }
}

/// Compresses a v4 envelope body: `[int]` uncompressed length, LZ4 block.
pub fn compress_v4_body(body: &[u8], out: &mut Vec<u8>) {
    let len = i32::try_from(body.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    compress_block(body, out);
}

/// Decompresses a v4 envelope body. The declared uncompressed length must
/// not exceed `max_len` (the frame size limit), so a 10-byte body cannot
/// make the server allocate gigabytes.
pub fn decompress_v4_body(body: &[u8], max_len: usize) -> Result<Vec<u8>, ProtocolError> {
    let Some((len, block)) = body.split_first_chunk::<4>() else {
        return Err(ProtocolError::Truncated {
            what: "LZ4 uncompressed length",
            needed: 4,
            remaining: body.len(),
        });
    };
    let len = i32::from_be_bytes(*len);
    let len = usize::try_from(len).map_err(|_| ProtocolError::InvalidLength {
        what: "LZ4 uncompressed length",
        length: i64::from(len),
    })?;
    if len > max_len {
        return Err(ProtocolError::Decompression(format!(
            "uncompressed length {len} exceeds the maximum of {max_len}"
        )));
    }
    // LZ4 cannot expand more than 255x; reject impossible claims before
    // allocating.
    if len > block.len().saturating_mul(255).saturating_add(16) {
        return Err(ProtocolError::Decompression(format!(
            "uncompressed length {len} impossible for {} compressed bytes",
            block.len()
        )));
    }
    let mut out = Vec::new();
    if len == 0 {
        return Ok(out);
    }
    decompress_block(block, len, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_body_round_trip() {
        let body: Vec<u8> = b"SELECT * FROM system.local WHERE key='local'"
            .iter()
            .cycle()
            .take(5000)
            .copied()
            .collect();
        let mut c = Vec::new();
        compress_v4_body(&body, &mut c);
        assert!(c.len() < body.len());
        assert_eq!(&c[..4], &5000i32.to_be_bytes());
        assert_eq!(decompress_v4_body(&c, 1 << 20).expect("ok"), body);
        // Every truncation fails cleanly.
        for cut in 0..c.len() {
            assert!(decompress_v4_body(&c[..cut], 1 << 20).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn empty_body() {
        let mut c = Vec::new();
        compress_v4_body(b"", &mut c);
        assert_eq!(decompress_v4_body(&c, 10).expect("ok"), b"");
    }

    #[test]
    fn declared_length_is_bounded() {
        let mut c = Vec::new();
        compress_v4_body(&[7u8; 1000], &mut c);
        assert!(decompress_v4_body(&c, 999).is_err());
        // A huge claim on a tiny block is refused before allocating.
        let bogus = [0x7F, 0xFF, 0xFF, 0xFF, 0x10, 0x41];
        assert!(decompress_v4_body(&bogus, usize::MAX).is_err());
        let negative = [0xFF, 0xFF, 0xFF, 0xFF, 0];
        assert!(decompress_v4_body(&negative, usize::MAX).is_err());
        // A wrong (smaller) claim is a mismatch, not silent truncation.
        let mut wrong = c.clone();
        wrong[..4].copy_from_slice(&999i32.to_be_bytes());
        assert!(decompress_v4_body(&wrong, 1 << 20).is_err());
        let mut wrong = c;
        wrong[..4].copy_from_slice(&1001i32.to_be_bytes());
        assert!(decompress_v4_body(&wrong, 1 << 20).is_err());
    }

    #[test]
    fn raw_block_round_trip() {
        let data = vec![42u8; 100_000];
        let mut c = vec![9u8];
        let n = compress_block(&data, &mut c);
        assert_eq!(c.len(), n + 1);
        let mut out = vec![1u8];
        decompress_block(&c[1..], data.len(), &mut out).expect("ok");
        assert_eq!(&out[1..], &data[..]);
        let mut out = Vec::new();
        assert!(decompress_block(&c[1..c.len() - 1], data.len(), &mut out).is_err());
        assert!(out.is_empty());
    }
}
