//! Cassandra's Murmur3Partitioner: `MurmurHash3_x64_128` with seed 0, the
//! first 64 bits as the token, reproducing Cassandra's sign extension of
//! tail bytes (Java bytes are signed), so drivers compute the same tokens.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Token, MAX_TOKEN, MIN_TOKEN};

const C1: u64 = 0x87c3_7b91_1142_53d5;
const C2: u64 = 0x4cf5_ad43_2745_937f;

#[inline]
fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Cassandra's `MurmurHash.hash3_x64_128(key, 0, len, 0)[0]`: the first
/// 64 bits of the 128-bit hash, as a signed long.
pub fn murmur3_hash(key: &[u8]) -> i64 {
    let len = key.len();
    let nblocks = len / 16;
    let mut h1: u64 = 0;
    let mut h2: u64 = 0;

    for block in key.chunks_exact(16) {
        let mut k1 = u64::from_le_bytes(block[..8].try_into().unwrap_or([0; 8]));
        let mut k2 = u64::from_le_bytes(block[8..].try_into().unwrap_or([0; 8]));

        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);

        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }

    // Tail: Cassandra widens each byte with sign extension ((long) byte),
    // so bytes >= 0x80 smear ones over the higher bits.
    let tail = &key[nblocks * 16..];
    let sx = |i: usize| tail[i] as i8 as i64 as u64;
    let mut k1: u64 = 0;
    let mut k2: u64 = 0;
    let rem = tail.len();
    if rem > 8 {
        for i in (8..rem).rev() {
            k2 ^= sx(i) << ((i - 8) * 8);
        }
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
    }
    if rem > 0 {
        for i in (0..rem.min(8)).rev() {
            k1 ^= sx(i) << (i * 8);
        }
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
    }

    h1 ^= len as u64;
    h2 ^= len as u64;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h1 as i64
}

/// The Murmur3Partitioner token of a serialised partition key. The empty
/// key gets [`MIN_TOKEN`]; a hash equal to `i64::MIN` becomes `i64::MAX`
/// (so no real key has the ring minimum).
pub fn murmur3_token(key: &[u8]) -> Token {
    if key.is_empty() {
        return MIN_TOKEN;
    }
    match murmur3_hash(key) {
        i64::MIN => MAX_TOKEN,
        h => h,
    }
}

/// Builds the serialised partition key from its components' values:
/// a single component as-is, several as `[u16 BE len][bytes][0x00]` each
/// (Cassandra's CompositeType). Components longer than 65535 bytes cannot
/// be encoded in a composite key; callers reject them first
/// (Cassandra: "Key length of N is longer than maximum of 65535").
pub fn serialize_partition_key(components: &[&[u8]]) -> Bytes {
    if let [single] = components {
        return Bytes::copy_from_slice(single);
    }
    let len: usize = components.iter().map(|c| c.len() + 3).sum();
    let mut out = BytesMut::with_capacity(len);
    for c in components {
        let n = c.len().min(u16::MAX as usize);
        out.put_u16(n as u16);
        out.put_slice(&c[..n]);
        out.put_u8(0);
    }
    out.freeze()
}

/// The largest serialised partition key Cassandra accepts (an unsigned
/// short).
pub const MAX_PARTITION_KEY_LEN: usize = u16::MAX as usize;

/// [`serialize_partition_key`], rejecting keys Cassandra rejects: a
/// serialised key (or a composite component) longer than 65535 bytes gives
/// `Key length of N is longer than maximum of 65535`.
pub fn try_serialize_partition_key(components: &[&[u8]]) -> Result<Bytes, String> {
    let too_long =
        |n: usize| format!("Key length of {n} is longer than maximum of {MAX_PARTITION_KEY_LEN}");
    if let Some(c) = components.iter().find(|c| c.len() > MAX_PARTITION_KEY_LEN) {
        return Err(too_long(c.len()));
    }
    let key = serialize_partition_key(components);
    if key.len() > MAX_PARTITION_KEY_LEN {
        return Err(too_long(key.len()));
    }
    Ok(key)
}

/// Splits a serialised partition key into its `n` components; `None` if
/// the bytes are not a well-formed composite of exactly `n` components.
pub fn split_partition_key(key: &[u8], n: usize) -> Option<Vec<&[u8]>> {
    if n == 1 {
        return Some(vec![key]);
    }
    let mut out = Vec::with_capacity(n.min(key.len() / 3 + 1));
    let mut pos = 0;
    while pos < key.len() {
        let hdr = key.get(pos..pos + 2)?;
        let len = u16::from_be_bytes([hdr[0], hdr[1]]) as usize;
        let start = pos + 2;
        let comp = key.get(start..start + len)?;
        // end-of-component byte: 0 in a stored key
        if *key.get(start + len)? != 0 {
            return None;
        }
        out.push(comp);
        pos = start + len + 1;
        if out.len() > n {
            return None;
        }
    }
    (out.len() == n).then_some(out)
}

/// The token of a partition key given as component values.
pub fn partition_key_token(components: &[&[u8]]) -> Token {
    murmur3_token(&serialize_partition_key(components))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Vectors from the DataStax Python driver's `cassandra.murmur3`
    /// (which mirrors Cassandra's signed tail handling).
    #[test]
    fn matches_python_driver_vectors() {
        let vectors: &[(&str, i64)] = &[
            ("", 0),
            ("61", -8839064797231613815),
            ("68656c6c6f", -3758069500696749310),
            ("00000001", -4069959284402364209),
            ("80", -5284281814142962636),
            ("ffffff", -9154616442117352147),
            (
                "707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f",
                1938007439152640434,
            ),
            ("deadbeefcafebabe99", 4392084022598526979),
            (
                "00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9e0e7eef5fc",
                2896647359883716945,
            ),
            ("30313233343536373839616263646566", 5467490433528156583),
            (
                "3031323334353637383961626364656667f09f9880",
                2047197734082934705,
            ),
            ("0004000000010000040000000200", 4881097376275569167),
        ];
        for (hex, want) in vectors {
            assert_eq!(murmur3_hash(&unhex(hex)), *want, "key {hex}");
        }
    }

    #[test]
    fn token_edge_cases() {
        assert_eq!(murmur3_token(b""), MIN_TOKEN);
        assert_eq!(murmur3_token(b"a"), -8839064797231613815);
        // int 1 serialised
        assert_eq!(
            partition_key_token(&[&1i32.to_be_bytes()]),
            -4069959284402364209
        );
    }

    #[test]
    fn key_length_limit() {
        let big = vec![7u8; 65_535];
        assert_eq!(try_serialize_partition_key(&[&big]).unwrap().len(), 65_535);
        let too_big = vec![7u8; 65_536];
        assert_eq!(
            try_serialize_partition_key(&[&too_big]).unwrap_err(),
            "Key length of 65536 is longer than maximum of 65535"
        );
        let half = vec![1u8; 40_000];
        assert!(try_serialize_partition_key(&[&half, &half]).is_err());
        assert!(try_serialize_partition_key(&[b"a", b"b"]).is_ok());
    }

    #[test]
    fn composite_keys() {
        let a = 1i32.to_be_bytes();
        let b = 2i32.to_be_bytes();
        let key = serialize_partition_key(&[&a, &b]);
        assert_eq!(&key[..], &unhex("0004000000010000040000000200")[..]);
        assert_eq!(partition_key_token(&[&a, &b]), 4881097376275569167);
        let parts = split_partition_key(&key, 2).unwrap();
        assert_eq!(parts, vec![&a[..], &b[..]]);
        assert_eq!(split_partition_key(&key, 3), None);
        assert_eq!(split_partition_key(&key, 1).unwrap(), vec![&key[..]]);
        assert_eq!(split_partition_key(&key[..key.len() - 1], 2), None);
        assert_eq!(split_partition_key(&[0, 9, 1], 2), None);
        let mut bad_eoc = key.to_vec();
        bad_eoc[6] = 1;
        assert_eq!(split_partition_key(&bad_eoc, 2), None);
        let single = serialize_partition_key(&[b"abc"]);
        assert_eq!(&single[..], b"abc");
        let empty_parts = serialize_partition_key(&[b"", b""]);
        assert_eq!(&empty_parts[..], &[0, 0, 0, 0, 0, 0]);
        assert_eq!(
            split_partition_key(&empty_parts, 2).unwrap(),
            vec![&b""[..], &b""[..]]
        );
    }
}
