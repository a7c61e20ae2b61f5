//! The two checksums of v5 segments, as Cassandra's `Crc` computes them:
//!
//! * CRC24 over the 3- or 5-byte segment header, read least significant
//!   byte first (Koopman polynomial 0x1974F0B, init 0x875060);
//! * CRC32 (IEEE, as `java.util.zip.CRC32`) over the payload, primed with
//!   the four bytes `FA 2D 55 CA`.

/// CRC24 initial register.
pub const CRC24_INIT: u32 = 0x0087_5060;
/// CRC24 polynomial (with the implicit x^24 term).
pub const CRC24_POLY: u32 = 0x0197_4F0B;
/// Bytes fed to the CRC32 before the payload.
pub const CRC32_INITIAL_BYTES: [u8; 4] = [0xFA, 0x2D, 0x55, 0xCA];

/// CRC24 of the low `len` bytes of `bytes` (1..=8), least significant
/// byte first.
pub fn crc24(mut bytes: u64, len: usize) -> u32 {
    let mut crc = CRC24_INIT;
    for _ in 0..len.min(8) {
        crc ^= ((bytes & 0xFF) as u32) << 16;
        bytes >>= 8;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= CRC24_POLY;
            }
        }
    }
    crc & 0x00FF_FFFF
}

const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = make_tables();

/// Incremental IEEE CRC32 (the `java.util.zip.CRC32`/zlib polynomial).
#[derive(Debug, Clone, Copy)]
pub struct Crc32 {
    state: u32,
}

impl Crc32 {
    /// A fresh CRC32, as `new CRC32()`.
    pub fn new() -> Crc32 {
        Crc32 { state: !0 }
    }

    /// A CRC32 primed with [`CRC32_INITIAL_BYTES`], as Cassandra's
    /// `Crc.crc32()`.
    pub fn cassandra() -> Crc32 {
        let mut c = Crc32::new();
        c.update(&CRC32_INITIAL_BYTES);
        c
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        let mut crc = self.state;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            crc = TABLES[7][(lo & 0xFF) as usize]
                ^ TABLES[6][((lo >> 8) & 0xFF) as usize]
                ^ TABLES[5][((lo >> 16) & 0xFF) as usize]
                ^ TABLES[4][(lo >> 24) as usize]
                ^ TABLES[3][c[4] as usize]
                ^ TABLES[2][c[5] as usize]
                ^ TABLES[1][c[6] as usize]
                ^ TABLES[0][c[7] as usize];
        }
        for &b in chunks.remainder() {
            crc = (crc >> 8) ^ TABLES[0][((crc ^ u32::from(b)) & 0xFF) as usize];
        }
        self.state = crc;
    }

    /// The checksum so far.
    pub fn value(&self) -> u32 {
        !self.state
    }
}

impl Default for Crc32 {
    fn default() -> Crc32 {
        Crc32::new()
    }
}

/// Cassandra's `Crc.computeCrc32` of a segment payload.
pub fn segment_crc32(payload: &[u8]) -> u32 {
    let mut c = Crc32::cassandra();
    c.update(payload);
    c.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The standard CRC-32/ISO-HDLC check value.
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xCBF4_3926);
        // Split updates agree with one-shot ones.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut a = Crc32::new();
        a.update(&data);
        let mut b = Crc32::new();
        for part in data.chunks(7) {
            b.update(part);
        }
        assert_eq!(a.value(), b.value());
    }

    #[test]
    fn cassandra_crc32_known_values() {
        // zlib.crc32(b"\xfa\x2d\x55\xca" + payload), from Python's zlib
        // as an independent oracle.
        assert_eq!(segment_crc32(b""), 0x4477_7ED3);
        assert_eq!(segment_crc32(&[b'b'; 50]), 0x7CEB_AE7A);
        assert_eq!(segment_crc32(b"hello world"), 0x4A62_481F);
    }

    #[test]
    fn crc24_known_values() {
        // Cassandra's Crc.crc24 over segment headers (uncompressed: 3 bytes,
        // compressed: 5 bytes), transliterated into Python to derive them.
        assert_eq!(crc24(50 | 1 << 17, 3), 0x00EE_FFA5);
        assert_eq!(crc24(0x1FFFF, 3), 0x00FE_9138);
        assert_eq!(crc24(0, 3), 0x007D_E777);
        assert_eq!(crc24(20 | 50 << 17 | 1 << 34, 5), 0x0036_E7CF);
    }

    #[test]
    fn crc24_differs_by_header_and_is_24_bits() {
        let a = crc24(50 | 1 << 17, 3);
        let b = crc24(51 | 1 << 17, 3);
        assert_ne!(a, b);
        assert!(a < 1 << 24);
    }
}
