//! The spec's notations (section 3): `[int]`, `[string]`, `[bytes]`,
//! `[value]`, `[inet]`... A bounds-checked [`Reader`] decodes them; the
//! `write_*` functions append them to a `Vec<u8>`.
//!
//! No reader ever allocates according to a length it has not checked
//! against the bytes actually remaining.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;

use crate::consistency::Consistency;
use crate::error::ProtocolError;

/// A bound value (`[value]`): bytes, null (length -1) or, since v4,
/// "not set" (length -2), which leaves the column unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// Length -1 (or any negative length below -2 in `[bytes]`).
    Null,
    /// Length -2: unset, ignored by the write.
    NotSet,
    /// The serialised value (possibly empty).
    Bytes(Bytes),
}

impl Value {
    /// The bytes, or `None` for null and not-set.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Bytes(b) => Some(b),
            Value::Null | Value::NotSet => None,
        }
    }

    /// Bytes on the wire, length prefix included.
    pub fn serialized_len(&self) -> usize {
        4 + self.as_bytes().map_or(0, |b| b.len())
    }
}

impl From<Option<Bytes>> for Value {
    fn from(v: Option<Bytes>) -> Value {
        v.map_or(Value::Null, Value::Bytes)
    }
}

/// A cursor over an untrusted message body.
///
/// Built with [`Reader::new`] over a slice, reads returning `Bytes` copy;
/// built with [`Reader::from_bytes`], they share the buffer instead.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    owner: Option<&'a Bytes>,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            owner: None,
        }
    }

    /// A reader whose `Bytes` results are zero-copy slices of `buf`.
    pub fn from_bytes(buf: &'a Bytes) -> Reader<'a> {
        Reader {
            buf: buf.as_ref(),
            pos: 0,
            owner: Some(buf),
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Reads exactly `n` raw bytes.
    pub fn read_raw(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(ProtocolError::Truncated {
                what,
                needed: n,
                remaining: self.remaining(),
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn read_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ProtocolError> {
        let s = self.read_raw(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn to_bytes(&self, s: &'a [u8]) -> Bytes {
        match self.owner {
            Some(owner) => owner.slice_ref(s),
            None => Bytes::copy_from_slice(s),
        }
    }

    /// `[byte]`.
    pub fn read_byte(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.read_array::<1>("[byte]")?[0])
    }

    /// `[short]` (unsigned).
    pub fn read_short(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_be_bytes(self.read_array("[short]")?))
    }

    /// `[int]`.
    pub fn read_int(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.read_array("[int]")?))
    }

    /// `[long]`.
    pub fn read_long(&mut self) -> Result<i64, ProtocolError> {
        Ok(i64::from_be_bytes(self.read_array("[long]")?))
    }

    /// `[string]`: a `[short]` length and UTF-8.
    pub fn read_string(&mut self) -> Result<&'a str, ProtocolError> {
        let n = self.read_short()?;
        let s = self.read_raw(usize::from(n), "[string]")?;
        std::str::from_utf8(s).map_err(|_| ProtocolError::InvalidUtf8 { what: "[string]" })
    }

    /// `[long string]`: an `[int]` length and UTF-8.
    pub fn read_long_string(&mut self) -> Result<&'a str, ProtocolError> {
        let n = self.read_int()?;
        let n = usize::try_from(n).map_err(|_| ProtocolError::InvalidLength {
            what: "[long string]",
            length: i64::from(n),
        })?;
        let s = self.read_raw(n, "[long string]")?;
        std::str::from_utf8(s).map_err(|_| ProtocolError::InvalidUtf8 {
            what: "[long string]",
        })
    }

    /// `[bytes]`: `None` for a negative length (null).
    pub fn read_bytes(&mut self) -> Result<Option<&'a [u8]>, ProtocolError> {
        let n = self.read_int()?;
        match usize::try_from(n) {
            Ok(n) => Ok(Some(self.read_raw(n, "[bytes]")?)),
            Err(_) => Ok(None),
        }
    }

    /// `[bytes]` as shared `Bytes`.
    pub fn read_bytes_owned(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        Ok(self.read_bytes()?.map(|s| self.to_bytes(s)))
    }

    /// `[short bytes]`.
    pub fn read_short_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let n = self.read_short()?;
        self.read_raw(usize::from(n), "[short bytes]")
    }

    /// `[short bytes]` as shared `Bytes`.
    pub fn read_short_bytes_owned(&mut self) -> Result<Bytes, ProtocolError> {
        let s = self.read_short_bytes()?;
        Ok(self.to_bytes(s))
    }

    /// `[value]`: -1 is null, -2 not set, below -2 an error.
    pub fn read_value(&mut self) -> Result<Value, ProtocolError> {
        let n = self.read_int()?;
        match n {
            -1 => Ok(Value::Null),
            -2 => Ok(Value::NotSet),
            n if n < 0 => Err(ProtocolError::InvalidLength {
                what: "[value]",
                length: i64::from(n),
            }),
            n => {
                let s = self.read_raw(n as usize, "[value]")?;
                Ok(Value::Bytes(self.to_bytes(s)))
            }
        }
    }

    /// `[string list]`.
    pub fn read_string_list(&mut self) -> Result<Vec<String>, ProtocolError> {
        let n = usize::from(self.read_short()?);
        // Each string is at least its 2-byte length.
        let mut v = Vec::with_capacity(n.min(self.remaining() / 2));
        for _ in 0..n {
            v.push(self.read_string()?.to_string());
        }
        Ok(v)
    }

    /// `[string map]`, in wire order.
    pub fn read_string_map(&mut self) -> Result<Vec<(String, String)>, ProtocolError> {
        let n = usize::from(self.read_short()?);
        let mut v = Vec::with_capacity(n.min(self.remaining() / 4));
        for _ in 0..n {
            let k = self.read_string()?.to_string();
            let val = self.read_string()?.to_string();
            v.push((k, val));
        }
        Ok(v)
    }

    /// `[string multimap]`, in wire order.
    pub fn read_string_multimap(&mut self) -> Result<Vec<(String, Vec<String>)>, ProtocolError> {
        let n = usize::from(self.read_short()?);
        let mut v = Vec::with_capacity(n.min(self.remaining() / 4));
        for _ in 0..n {
            let k = self.read_string()?.to_string();
            let vals = self.read_string_list()?;
            v.push((k, vals));
        }
        Ok(v)
    }

    /// `[bytes map]` (custom payloads), in wire order.
    pub fn read_bytes_map(&mut self) -> Result<Vec<(String, Option<Bytes>)>, ProtocolError> {
        let n = usize::from(self.read_short()?);
        let mut v = Vec::with_capacity(n.min(self.remaining() / 6));
        for _ in 0..n {
            let k = self.read_string()?.to_string();
            let val = self.read_bytes_owned()?;
            v.push((k, val));
        }
        Ok(v)
    }

    /// `[uuid]`: 16 bytes.
    pub fn read_uuid(&mut self) -> Result<[u8; 16], ProtocolError> {
        self.read_array("[uuid]")
    }

    /// `[inetaddr]`: a length byte (4 or 16) and the address.
    pub fn read_inetaddr(&mut self) -> Result<IpAddr, ProtocolError> {
        let n = self.read_byte()?;
        match n {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(
                self.read_array::<4>("[inetaddr]")?,
            ))),
            16 => Ok(IpAddr::V6(Ipv6Addr::from(
                self.read_array::<16>("[inetaddr]")?,
            ))),
            n => Err(ProtocolError::InvalidInetLength(n)),
        }
    }

    /// `[inet]`: an `[inetaddr]` and an `[int]` port.
    pub fn read_inet(&mut self) -> Result<SocketAddr, ProtocolError> {
        let ip = self.read_inetaddr()?;
        let port = self.read_int()?;
        let port = u16::try_from(port).map_err(|_| ProtocolError::InvalidLength {
            what: "[inet] port",
            length: i64::from(port),
        })?;
        Ok(SocketAddr::new(ip, port))
    }

    /// `[consistency]`.
    pub fn read_consistency(&mut self) -> Result<Consistency, ProtocolError> {
        let code = self.read_short()?;
        Consistency::from_u16(code).ok_or(ProtocolError::UnknownConsistency(code))
    }
}

/// Appends a `[byte]`.
pub fn write_byte(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

/// Appends a `[short]`.
pub fn write_short(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends an `[int]`.
pub fn write_int(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a `[long]`.
pub fn write_long(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Clamps a length to what a `[short]` prefix can say. Longer inputs are a
/// caller bug; truncating keeps the frame well-formed.
fn short_len(len: usize) -> usize {
    len.min(usize::from(u16::MAX))
}

/// Clamps a length to what an `[int]` prefix can say.
fn int_len(len: usize) -> usize {
    len.min(i32::MAX as usize)
}

/// Appends a `[string]`. Strings longer than 65535 bytes are truncated at a
/// character boundary (the notation cannot carry them).
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    let mut n = short_len(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    write_short(out, n as u16);
    out.extend_from_slice(&s.as_bytes()[..n]);
}

/// Appends a `[long string]`.
pub fn write_long_string(out: &mut Vec<u8>, s: &str) {
    let n = int_len(s.len());
    write_int(out, n as i32);
    out.extend_from_slice(&s.as_bytes()[..n]);
}

/// Appends `[bytes]`; `None` is null (length -1).
pub fn write_bytes(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(b) => {
            let n = int_len(b.len());
            write_int(out, n as i32);
            out.extend_from_slice(&b[..n]);
        }
        None => write_int(out, -1),
    }
}

/// Appends a `[value]`.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => write_int(out, -1),
        Value::NotSet => write_int(out, -2),
        Value::Bytes(b) => write_bytes(out, Some(b)),
    }
}

/// Appends `[short bytes]` (truncated at 65535 bytes).
pub fn write_short_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let n = short_len(b.len());
    write_short(out, n as u16);
    out.extend_from_slice(&b[..n]);
}

/// Appends a `[string list]`.
pub fn write_string_list<S: AsRef<str>>(out: &mut Vec<u8>, list: &[S]) {
    let n = short_len(list.len());
    write_short(out, n as u16);
    for s in &list[..n] {
        write_string(out, s.as_ref());
    }
}

/// Appends a `[string map]`.
pub fn write_string_map<K: AsRef<str>, V: AsRef<str>>(out: &mut Vec<u8>, map: &[(K, V)]) {
    let n = short_len(map.len());
    write_short(out, n as u16);
    for (k, v) in &map[..n] {
        write_string(out, k.as_ref());
        write_string(out, v.as_ref());
    }
}

/// Appends a `[string multimap]`.
pub fn write_string_multimap<K: AsRef<str>, V: AsRef<str>>(out: &mut Vec<u8>, map: &[(K, Vec<V>)]) {
    let n = short_len(map.len());
    write_short(out, n as u16);
    for (k, vs) in &map[..n] {
        write_string(out, k.as_ref());
        write_string_list(out, vs);
    }
}

/// Appends a `[bytes map]`.
pub fn write_bytes_map<K: AsRef<str>>(out: &mut Vec<u8>, map: &[(K, Option<Bytes>)]) {
    let n = short_len(map.len());
    write_short(out, n as u16);
    for (k, v) in &map[..n] {
        write_string(out, k.as_ref());
        write_bytes(out, v.as_deref());
    }
}

/// Appends a `[uuid]`.
pub fn write_uuid(out: &mut Vec<u8>, uuid: &[u8; 16]) {
    out.extend_from_slice(uuid);
}

/// Appends an `[inetaddr]`.
pub fn write_inetaddr(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(16);
            out.extend_from_slice(&a.octets());
        }
    }
}

/// Appends an `[inet]`.
pub fn write_inet(out: &mut Vec<u8>, addr: SocketAddr) {
    write_inetaddr(out, addr.ip());
    write_int(out, i32::from(addr.port()));
}

/// Appends a `[consistency]`.
pub fn write_consistency(out: &mut Vec<u8>, c: Consistency) {
    write_short(out, c.as_u16());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every strict prefix of `buf` makes `f` fail, and never panics.
    fn assert_prefixes_fail<T: std::fmt::Debug>(
        buf: &[u8],
        f: impl Fn(&mut Reader<'_>) -> Result<T, ProtocolError>,
    ) {
        for cut in 0..buf.len() {
            let mut r = Reader::new(&buf[..cut]);
            assert!(f(&mut r).is_err(), "prefix of {cut} bytes decoded");
        }
        let mut r = Reader::new(buf);
        f(&mut r).expect("full input decodes");
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn scalars_round_trip() {
        let mut out = Vec::new();
        write_byte(&mut out, 0xAB);
        write_short(&mut out, 0xBEEF);
        write_int(&mut out, -5);
        write_long(&mut out, i64::MIN);
        let mut r = Reader::new(&out);
        assert_eq!(r.read_byte(), Ok(0xAB));
        assert_eq!(r.read_short(), Ok(0xBEEF));
        assert_eq!(r.read_int(), Ok(-5));
        assert_eq!(r.read_long(), Ok(i64::MIN));
        assert_eq!(r.remaining(), 0);
        assert!(matches!(
            r.read_byte(),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn strings_round_trip_and_reject_truncation() {
        let mut out = Vec::new();
        write_string(&mut out, "héllo");
        assert_eq!(&out[..2], &[0, 6]);
        assert_prefixes_fail(&out, |r| r.read_string().map(str::to_string));

        let mut out = Vec::new();
        write_long_string(&mut out, "SELECT * FROM system.local");
        assert_prefixes_fail(&out, |r| r.read_long_string().map(str::to_string));

        let list = vec!["a".to_string(), String::new(), "ccc".to_string()];
        let mut out = Vec::new();
        write_string_list(&mut out, &list);
        assert_prefixes_fail(&out, |r| r.read_string_list());
        assert_eq!(Reader::new(&out).read_string_list(), Ok(list));

        let map = vec![("CQL_VERSION", "3.0.0"), ("COMPRESSION", "lz4")];
        let mut out = Vec::new();
        write_string_map(&mut out, &map);
        assert_prefixes_fail(&out, |r| r.read_string_map());
        let back = Reader::new(&out).read_string_map().expect("map");
        assert_eq!(back[1], ("COMPRESSION".to_string(), "lz4".to_string()));

        let mm = vec![("COMPRESSION", vec!["lz4", "snappy"]), ("X", vec![])];
        let mut out = Vec::new();
        write_string_multimap(&mut out, &mm);
        assert_prefixes_fail(&out, |r| r.read_string_multimap());
        let back = Reader::new(&out).read_string_multimap().expect("mm");
        assert_eq!(back[0].1, vec!["lz4".to_string(), "snappy".to_string()]);
        assert!(back[1].1.is_empty());
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let buf = [0, 2, 0xC3, 0x28];
        assert!(matches!(
            Reader::new(&buf).read_string(),
            Err(ProtocolError::InvalidUtf8 { .. })
        ));
    }

    #[test]
    fn long_string_string_negative_and_huge_lengths() {
        let buf = [0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(
            Reader::new(&buf).read_long_string(),
            Err(ProtocolError::InvalidLength { .. })
        ));
        let buf = [0x7F, 0xFF, 0xFF, 0xFF, b'a'];
        assert!(matches!(
            Reader::new(&buf).read_long_string(),
            Err(ProtocolError::Truncated { .. })
        ));
        // A string list claiming 65535 entries must not preallocate them all.
        let buf = [0xFF, 0xFF, 0, 0];
        assert!(Reader::new(&buf).read_string_list().is_err());
    }

    #[test]
    fn bytes_and_values() {
        let mut out = Vec::new();
        write_bytes(&mut out, Some(b"abc"));
        write_bytes(&mut out, None);
        write_value(&mut out, &Value::NotSet);
        write_value(&mut out, &Value::Bytes(Bytes::from_static(b"")));
        write_short_bytes(&mut out, b"id");
        let owned = Bytes::from(out);
        let mut r = Reader::from_bytes(&owned);
        assert_eq!(r.read_bytes(), Ok(Some(&b"abc"[..])));
        assert_eq!(r.read_bytes(), Ok(None));
        assert_eq!(r.read_value(), Ok(Value::NotSet));
        assert_eq!(r.read_value(), Ok(Value::Bytes(Bytes::new())));
        assert_eq!(r.read_short_bytes_owned(), Ok(Bytes::from_static(b"id")));
        assert_eq!(r.remaining(), 0);

        let bad = (-3i32).to_be_bytes();
        assert!(matches!(
            Reader::new(&bad).read_value(),
            Err(ProtocolError::InvalidLength { length: -3, .. })
        ));
        // [bytes] treats any negative length as null.
        assert_eq!(Reader::new(&bad).read_bytes(), Ok(None));
        let huge = i32::MAX.to_be_bytes();
        assert!(Reader::new(&huge).read_value().is_err());
        assert!(Reader::new(&huge).read_bytes().is_err());
    }

    #[test]
    fn bytes_map_round_trip() {
        let map = vec![
            ("a".to_string(), Some(Bytes::from_static(b"1"))),
            ("b".to_string(), None),
        ];
        let mut out = Vec::new();
        write_bytes_map(&mut out, &map);
        assert_prefixes_fail(&out, |r| r.read_bytes_map());
        assert_eq!(Reader::new(&out).read_bytes_map(), Ok(map));
    }

    #[test]
    fn inet_and_uuid() {
        let v4: SocketAddr = "127.0.0.1:9042".parse().expect("addr");
        let v6: SocketAddr = "[::1]:19042".parse().expect("addr");
        let mut out = Vec::new();
        write_inet(&mut out, v4);
        assert_eq!(out, [4, 127, 0, 0, 1, 0, 0, 0x23, 0x52]);
        write_inet(&mut out, v6);
        write_uuid(&mut out, &[7; 16]);
        let mut r = Reader::new(&out);
        assert_eq!(r.read_inet(), Ok(v4));
        assert_eq!(r.read_inet(), Ok(v6));
        assert_eq!(r.read_uuid(), Ok([7; 16]));
        assert!(matches!(
            Reader::new(&[5, 1, 2, 3, 4, 5]).read_inetaddr(),
            Err(ProtocolError::InvalidInetLength(5))
        ));
        let mut bad_port = vec![4, 1, 2, 3, 4];
        bad_port.extend_from_slice(&70000i32.to_be_bytes());
        assert!(Reader::new(&bad_port).read_inet().is_err());
    }

    #[test]
    fn consistency_notation() {
        let mut out = Vec::new();
        write_consistency(&mut out, Consistency::LocalOne);
        assert_eq!(out, [0, 0x0A]);
        assert_eq!(
            Reader::new(&out).read_consistency(),
            Ok(Consistency::LocalOne)
        );
        assert_eq!(
            Reader::new(&[0, 0x0B]).read_consistency(),
            Err(ProtocolError::UnknownConsistency(0x0B))
        );
    }

    #[test]
    fn write_string_truncates_at_char_boundary() {
        let s = "é".repeat(40_000); // 80_000 bytes
        let mut out = Vec::new();
        write_string(&mut out, &s);
        let back = Reader::new(&out).read_string().expect("valid utf-8");
        assert_eq!(back.len(), 65534);
    }
}
