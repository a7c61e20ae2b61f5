//! How key components compare, without knowing CQL syntax.
//!
//! [`KeyType`] mirrors the comparison semantics of Cassandra's
//! `org.apache.cassandra.db.marshal.*Type` classes: the storage engine only
//! needs to know how two serialised values of a clustering column (or a
//! frozen collection element) order. Every comparison accepts arbitrary
//! bytes: malformed values never panic and fall back to unsigned bytewise
//! order, so ordering stays total and deterministic.

use std::cmp::Ordering;

/// The comparison class of a key component.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `blob`, `text`, `ascii` (and any type compared bytewise): unsigned bytes.
    Bytes,
    /// `false` before `true`.
    Boolean,
    /// Signed 8-bit.
    TinyInt,
    /// Signed 16-bit.
    SmallInt,
    /// Signed 32-bit.
    Int,
    /// Signed 64-bit; also `timestamp`, `counter`, `time`.
    BigInt,
    /// IEEE 754 single, ordered as Java's `Float.compare`.
    Float,
    /// IEEE 754 double, ordered as Java's `Double.compare`.
    Double,
    /// Arbitrary-precision integer, big-endian two's complement.
    Varint,
    /// 4-byte big-endian scale followed by the unscaled varint; compared
    /// numerically (`1.0 == 1.00`).
    Decimal,
    /// Cassandra `UUIDType` order: version, then (v1) timestamp, then the
    /// rest as unsigned bytes.
    Uuid,
    /// Cassandra `TimeUUIDType` order: timestamp, then the low 8 bytes as
    /// signed bytes.
    TimeUuid,
    /// `inet`: unsigned bytes (so IPv4 sorts before IPv6).
    Inet,
    /// `date`: unsigned 32-bit days centred on 2^31.
    Date,
    /// `duration`: unsigned bytes (Cassandra forbids it in keys anyway).
    Duration,
    /// Frozen tuple: `[int len][bytes]` per component, `len < 0` is null.
    Tuple(Vec<KeyType>),
    /// Frozen list: `[int n]` then `[int len][bytes]` per element.
    List(Box<KeyType>),
    /// Frozen set: same layout as a list.
    Set(Box<KeyType>),
    /// Frozen map: `[int n]` then key and value `[int len][bytes]` pairs.
    Map(Box<KeyType>, Box<KeyType>),
    /// Frozen user type: same layout and order as a tuple.
    Udt(Vec<KeyType>),
}

impl KeyType {
    /// Compares two serialised values of this type, as Cassandra does. The
    /// empty value sorts before every non-empty value.
    pub fn compare(&self, a: &[u8], b: &[u8]) -> Ordering {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        match self {
            KeyType::Bytes | KeyType::Inet | KeyType::Date | KeyType::Duration => a.cmp(b),
            KeyType::Boolean => (a[0] != 0).cmp(&(b[0] != 0)),
            KeyType::TinyInt => fixed_signed(a, b, 1),
            KeyType::SmallInt => fixed_signed(a, b, 2),
            KeyType::Int => fixed_signed(a, b, 4),
            KeyType::BigInt => fixed_signed(a, b, 8),
            KeyType::Float => match (<[u8; 4]>::try_from(a), <[u8; 4]>::try_from(b)) {
                (Ok(x), Ok(y)) => java_float_compare(f32::from_be_bytes(x), f32::from_be_bytes(y)),
                _ => a.cmp(b),
            },
            KeyType::Double => match (<[u8; 8]>::try_from(a), <[u8; 8]>::try_from(b)) {
                (Ok(x), Ok(y)) => java_double_compare(f64::from_be_bytes(x), f64::from_be_bytes(y)),
                _ => a.cmp(b),
            },
            KeyType::Varint => compare_varint(a, b),
            KeyType::Decimal => compare_decimal(a, b),
            KeyType::Uuid => compare_uuid(a, b),
            KeyType::TimeUuid => compare_timeuuid(a, b),
            KeyType::Tuple(types) | KeyType::Udt(types) => compare_tuple(types, a, b),
            KeyType::List(elem) | KeyType::Set(elem) => compare_collection(a, b, 1, |i, x, y| {
                debug_assert_eq!(i, 0);
                elem.compare(x, y)
            }),
            KeyType::Map(k, v) => compare_collection(a, b, 2, |i, x, y| {
                if i == 0 {
                    k.compare(x, y)
                } else {
                    v.compare(x, y)
                }
            }),
        }
    }
}

/// Fixed-width signed big-endian integers: the first byte signed, the rest
/// unsigned (what Cassandra's `Int32Type`/`LongType` do). Wrong widths fall
/// back to bytewise.
fn fixed_signed(a: &[u8], b: &[u8], width: usize) -> Ordering {
    if a.len() != width || b.len() != width {
        return a.cmp(b);
    }
    (a[0] as i8)
        .cmp(&(b[0] as i8))
        .then_with(|| a[1..].cmp(&b[1..]))
}

/// Java's `Float.compare`: -0.0 < 0.0, NaN above +Inf, all NaNs equal.
fn java_float_compare(x: f32, y: f32) -> Ordering {
    fn key(v: f32) -> i32 {
        let bits = if v.is_nan() {
            0x7fc0_0000u32 as i32
        } else {
            v.to_bits() as i32
        };
        // Map IEEE bits to a totally ordered signed integer.
        bits ^ (((bits >> 31) as u32) >> 1) as i32
    }
    key(x).cmp(&key(y))
}

/// Java's `Double.compare`.
fn java_double_compare(x: f64, y: f64) -> Ordering {
    fn key(v: f64) -> i64 {
        let bits = if v.is_nan() {
            0x7ff8_0000_0000_0000u64 as i64
        } else {
            v.to_bits() as i64
        };
        bits ^ (((bits >> 63) as u64) >> 1) as i64
    }
    key(x).cmp(&key(y))
}

/// Numeric comparison of two big-endian two's complement integers of any
/// length (Cassandra's `IntegerType.compareIntegers`).
pub(crate) fn compare_varint(a: &[u8], b: &[u8]) -> Ordering {
    let (sa, ma) = sign_magnitude(a);
    let (sb, mb) = sign_magnitude(b);
    match sa.cmp(&sb) {
        Ordering::Equal => {}
        other => return other,
    }
    let mag = compare_magnitude(&ma, &mb);
    if sa < 0 {
        mag.reverse()
    } else {
        mag
    }
}

/// Splits a two's complement big-endian integer into sign (-1, 0, 1) and a
/// minimal big-endian unsigned magnitude.
fn sign_magnitude(v: &[u8]) -> (i8, Vec<u8>) {
    if v.is_empty() {
        return (0, Vec::new());
    }
    let negative = v[0] & 0x80 != 0;
    let mag: Vec<u8> = if negative {
        // Two's complement negate: invert and add one.
        let mut out: Vec<u8> = v.iter().map(|b| !b).collect();
        for byte in out.iter_mut().rev() {
            let (r, carry) = byte.overflowing_add(1);
            *byte = r;
            if !carry {
                break;
            }
        }
        // The top bit is set, so the inverted value is not all ones and
        // adding one never carries out of the first byte.
        out
    } else {
        v.to_vec()
    };
    let first = mag.iter().position(|&b| b != 0).unwrap_or(mag.len());
    let mag = mag[first..].to_vec();
    if mag.is_empty() {
        (0, mag)
    } else if negative {
        (-1, mag)
    } else {
        (1, mag)
    }
}

/// Compares minimal big-endian unsigned magnitudes.
fn compare_magnitude(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A non-negative big integer as little-endian base-2^32 limbs, just enough
/// arithmetic for decimal comparison.
#[derive(Clone, Debug)]
struct BigUint(Vec<u32>);

impl BigUint {
    fn from_be_bytes(mag: &[u8]) -> BigUint {
        let mut limbs = Vec::with_capacity(mag.len() / 4 + 1);
        let mut i = mag.len();
        while i > 0 {
            let start = i.saturating_sub(4);
            let mut limb = 0u32;
            for &b in &mag[start..i] {
                limb = (limb << 8) | b as u32;
            }
            limbs.push(limb);
            i = start;
        }
        let mut n = BigUint(limbs);
        n.trim();
        n
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in self.0.iter_mut() {
            let v = *limb as u64 * m as u64 + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.0.iter_mut().rev() {
            let v = (rem << 32) | *limb as u64;
            *limb = (v / d as u64) as u32;
            rem = v % d as u64;
        }
        self.trim();
        rem as u32
    }

    /// Number of decimal digits (0 for zero).
    fn decimal_digits(&self) -> u64 {
        if self.is_zero() {
            return 0;
        }
        let mut n = self.clone();
        let mut digits = 0u64;
        while n.0.len() > 1 || n.0.first().is_some_and(|&l| l >= 1_000_000_000) {
            n.div_small(1_000_000_000);
            digits += 9;
        }
        let mut last = n.0.first().copied().unwrap_or(0);
        while last > 0 {
            last /= 10;
            digits += 1;
        }
        digits
    }

    fn cmp(&self, other: &BigUint) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }
}

/// Numeric comparison of two `decimal` values (`[i32 scale][varint]`).
fn compare_decimal(a: &[u8], b: &[u8]) -> Ordering {
    if a.len() < 4 || b.len() < 4 {
        return a.cmp(b);
    }
    let scale_a = i32::from_be_bytes([a[0], a[1], a[2], a[3]]) as i64;
    let scale_b = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64;
    let (sa, ma) = sign_magnitude(&a[4..]);
    let (sb, mb) = sign_magnitude(&b[4..]);
    match sa.cmp(&sb) {
        Ordering::Equal => {}
        other => return other,
    }
    if sa == 0 {
        return Ordering::Equal;
    }
    let mut x = BigUint::from_be_bytes(&ma);
    let mut y = BigUint::from_be_bytes(&mb);
    // value = mag * 10^-scale. Its "adjusted exponent" (digits - scale)
    // decides unless equal; then the scale difference equals the digit
    // count difference, which is bounded by the input lengths.
    let adj_x = x.decimal_digits() as i64 - scale_a;
    let adj_y = y.decimal_digits() as i64 - scale_b;
    let mag = if adj_x != adj_y {
        adj_x.cmp(&adj_y)
    } else {
        let diff = scale_a - scale_b;
        let (to_scale, times) = if diff > 0 {
            (&mut y, diff)
        } else {
            (&mut x, -diff)
        };
        for _ in 0..times {
            to_scale.mul_small(10);
        }
        x.cmp(&y)
    };
    if sa < 0 {
        mag.reverse()
    } else {
        mag
    }
}

fn msb(v: &[u8]) -> u64 {
    u64::from_be_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]])
}

fn lsb(v: &[u8]) -> u64 {
    u64::from_be_bytes([v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]])
}

/// The 60-bit v1 timestamp moved to the top: time_hi, time_mid, time_low.
fn reorder_timestamp(msb: u64) -> u64 {
    (msb << 48) | ((msb << 16) & 0xFFFF_0000_0000) | (msb >> 32)
}

/// Cassandra `UUIDType`: version nibble, then the v1 timestamp (or the msb
/// as unsigned for other versions), then the lsb unsigned.
fn compare_uuid(a: &[u8], b: &[u8]) -> Ordering {
    if a.len() != 16 || b.len() != 16 {
        return a.cmp(b);
    }
    let (m1, m2) = (msb(a), msb(b));
    let v1 = (m1 >> 12) & 0xf;
    let v2 = (m2 >> 12) & 0xf;
    v1.cmp(&v2)
        .then_with(|| {
            if v1 == 1 {
                (reorder_timestamp(m1) as i64).cmp(&(reorder_timestamp(m2) as i64))
            } else {
                m1.cmp(&m2)
            }
        })
        .then_with(|| lsb(a).cmp(&lsb(b)))
}

/// Cassandra `TimeUUIDType`: the timestamp, then the low 8 bytes compared
/// as signed bytes (kept for compatibility, CASSANDRA-8730).
fn compare_timeuuid(a: &[u8], b: &[u8]) -> Ordering {
    if a.len() != 16 || b.len() != 16 {
        return a.cmp(b);
    }
    (reorder_timestamp(msb(a)) as i64)
        .cmp(&(reorder_timestamp(msb(b)) as i64))
        .then_with(|| {
            a[8..]
                .iter()
                .map(|&x| x as i8)
                .cmp(b[8..].iter().map(|&x| x as i8))
        })
}

/// Reads `[int len][bytes]` at `*pos`. `Ok(None)` is a null (negative len);
/// `Err` means malformed.
fn read_value<'a>(v: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, ()> {
    let hdr = v.get(*pos..*pos + 4).ok_or(())?;
    let len = i32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
    *pos += 4;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    let body = v.get(*pos..*pos + len).ok_or(())?;
    *pos += len;
    Ok(Some(body))
}

/// Nulls sort before values.
fn compare_nullable(
    x: Option<&[u8]>,
    y: Option<&[u8]>,
    cmp: impl Fn(&[u8], &[u8]) -> Ordering,
) -> Ordering {
    match (x, y) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp(x, y),
    }
}

/// `TupleType`/`UserType` order: component by component; a value with
/// fewer components sorts first.
fn compare_tuple(types: &[KeyType], a: &[u8], b: &[u8]) -> Ordering {
    let (mut pa, mut pb) = (0usize, 0usize);
    let mut i = 0usize;
    while pa < a.len() && pb < b.len() {
        let (x, y) = match (read_value(a, &mut pa), read_value(b, &mut pb)) {
            (Ok(x), Ok(y)) => (x, y),
            _ => return a.cmp(b),
        };
        let ty = types.get(i).unwrap_or(&KeyType::Bytes);
        let c = compare_nullable(x, y, |x, y| ty.compare(x, y));
        if c != Ordering::Equal {
            return c;
        }
        i += 1;
    }
    match (pa >= a.len(), pb >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// Frozen list/set (`per_entry == 1`) and map (`per_entry == 2`) order:
/// entry by entry, then the shorter collection first.
fn compare_collection(
    a: &[u8],
    b: &[u8],
    per_entry: usize,
    cmp: impl Fn(usize, &[u8], &[u8]) -> Ordering,
) -> Ordering {
    let count = |v: &[u8]| -> Option<i32> {
        v.get(0..4)
            .map(|h| i32::from_be_bytes([h[0], h[1], h[2], h[3]]))
    };
    let (na, nb) = match (count(a), count(b)) {
        (Some(x), Some(y)) if x >= 0 && y >= 0 => (x as usize, y as usize),
        _ => return a.cmp(b),
    };
    let (mut pa, mut pb) = (4usize, 4usize);
    for _ in 0..na.min(nb) {
        for part in 0..per_entry {
            let (x, y) = match (read_value(a, &mut pa), read_value(b, &mut pb)) {
                (Ok(x), Ok(y)) => (x, y),
                _ => return a.cmp(b),
            };
            let c = compare_nullable(x, y, |x, y| cmp(part, x, y));
            if c != Ordering::Equal {
                return c;
            }
        }
    }
    na.cmp(&nb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    fn varint(v: i128) -> Vec<u8> {
        // Minimal two's complement.
        let bytes = v.to_be_bytes();
        let mut start = 0;
        while start < 15 {
            let b = bytes[start];
            let next = bytes[start + 1];
            if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
                start += 1;
            } else {
                break;
            }
        }
        bytes[start..].to_vec()
    }

    fn decimal(unscaled: i128, scale: i32) -> Vec<u8> {
        let mut v = scale.to_be_bytes().to_vec();
        v.extend(varint(unscaled));
        v
    }

    #[test]
    fn empty_sorts_first_for_every_type() {
        for t in [
            KeyType::Bytes,
            KeyType::Int,
            KeyType::Double,
            KeyType::Varint,
            KeyType::Uuid,
            KeyType::TimeUuid,
            KeyType::Tuple(vec![KeyType::Int]),
        ] {
            assert_eq!(t.compare(b"", &[0x80, 0, 0, 0]), Less, "{t:?}");
            assert_eq!(t.compare(b"", b""), Equal);
        }
    }

    #[test]
    fn signed_ints() {
        let t = KeyType::Int;
        assert_eq!(t.compare(&(-1i32).to_be_bytes(), &1i32.to_be_bytes()), Less);
        assert_eq!(
            t.compare(&i32::MIN.to_be_bytes(), &(-1i32).to_be_bytes()),
            Less
        );
        assert_eq!(
            t.compare(&300i32.to_be_bytes(), &200i32.to_be_bytes()),
            Greater
        );
        let t = KeyType::BigInt;
        assert_eq!(
            t.compare(&(-5i64).to_be_bytes(), &(5i64).to_be_bytes()),
            Less
        );
        let t = KeyType::TinyInt;
        assert_eq!(t.compare(&[0xff], &[0x01]), Less);
        // Malformed width: bytewise, no panic.
        assert_eq!(KeyType::Int.compare(&[1, 2], &[1, 2, 3, 4]), Less);
    }

    #[test]
    fn floats_like_java() {
        let f = |x: f32| x.to_be_bytes().to_vec();
        let t = KeyType::Float;
        assert_eq!(t.compare(&f(-0.0), &f(0.0)), Less);
        assert_eq!(t.compare(&f(-1.5), &f(-0.5)), Less);
        assert_eq!(t.compare(&f(f32::NAN), &f(f32::INFINITY)), Greater);
        assert_eq!(t.compare(&f(f32::NEG_INFINITY), &f(-1e30)), Less);
        let d = |x: f64| x.to_be_bytes().to_vec();
        let t = KeyType::Double;
        assert_eq!(t.compare(&d(2.0), &d(10.0)), Less);
        assert_eq!(t.compare(&d(-2.0), &d(-10.0)), Greater);
        assert_eq!(t.compare(&d(f64::NAN), &d(-f64::NAN)), Equal);
    }

    #[test]
    fn varints_numerically() {
        let t = KeyType::Varint;
        let vals = [
            -(1i128 << 100),
            -65536,
            -256,
            -255,
            -129,
            -128,
            -1,
            0,
            1,
            127,
            128,
            255,
            256,
            1 << 70,
        ];
        for (i, x) in vals.iter().enumerate() {
            for (j, y) in vals.iter().enumerate() {
                assert_eq!(t.compare(&varint(*x), &varint(*y)), i.cmp(&j), "{x} vs {y}");
            }
        }
        // Non-minimal encodings compare by value.
        assert_eq!(t.compare(&[0, 0, 5], &[5]), Equal);
        assert_eq!(t.compare(&[0xff, 0xff], &[0xff]), Equal);
    }

    #[test]
    fn decimals_numerically() {
        let t = KeyType::Decimal;
        assert_eq!(t.compare(&decimal(10, 1), &decimal(100, 2)), Equal);
        assert_eq!(t.compare(&decimal(15, 1), &decimal(2, 0)), Less);
        assert_eq!(t.compare(&decimal(-15, 1), &decimal(-2, 0)), Greater);
        assert_eq!(t.compare(&decimal(1, -3), &decimal(999, 0)), Greater);
        assert_eq!(t.compare(&decimal(0, 5), &decimal(0, -7)), Equal);
        assert_eq!(t.compare(&decimal(-1, 0), &decimal(0, 0)), Less);
        // Huge scales must not blow up.
        assert_eq!(
            t.compare(&decimal(1, i32::MAX), &decimal(1, i32::MIN)),
            Less
        );
        assert_eq!(
            t.compare(&decimal(123456789, 3), &decimal(123456789, 3)),
            Equal
        );
        assert_eq!(t.compare(&[0, 0], &[0, 0, 0, 0, 1]), Less); // malformed
    }

    fn uuid(hex: &str) -> Vec<u8> {
        let hex: String = hex.chars().filter(|c| *c != '-').collect();
        (0..16)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn timeuuid_orders_by_time_then_signed_bytes() {
        let t = KeyType::TimeUuid;
        // Same time_low, later time_mid sorts later although bytes differ.
        let early = uuid("ffffffff-0000-1000-8000-000000000000");
        let late = uuid("00000000-0001-1000-8000-000000000000");
        assert_eq!(t.compare(&early, &late), Less);
        assert_eq!(KeyType::Bytes.compare(&early, &late), Greater);
        // Low bytes compare signed: 0x80 < 0x7f.
        let a = uuid("00000000-0001-1000-8000-000000000000");
        let b = uuid("00000000-0001-1000-7f00-000000000000");
        assert_eq!(t.compare(&a, &b), Less);
        // UUIDType compares the low bytes unsigned.
        assert_eq!(KeyType::Uuid.compare(&a, &b), Greater);
    }

    #[test]
    fn uuid_orders_by_version_first() {
        let t = KeyType::Uuid;
        let v4 = uuid("00000000-0000-4000-8000-000000000000");
        let v1 = uuid("ffffffff-ffff-1fff-8000-000000000000");
        assert_eq!(t.compare(&v1, &v4), Less);
        let v4b = uuid("10000000-0000-4000-8000-000000000000");
        assert_eq!(t.compare(&v4, &v4b), Less);
    }

    fn tuple(parts: &[Option<&[u8]>]) -> Vec<u8> {
        let mut v = Vec::new();
        for p in parts {
            match p {
                None => v.extend((-1i32).to_be_bytes()),
                Some(p) => {
                    v.extend((p.len() as i32).to_be_bytes());
                    v.extend_from_slice(p);
                }
            }
        }
        v
    }

    #[test]
    fn tuples_and_collections() {
        let t = KeyType::Tuple(vec![KeyType::Int, KeyType::Bytes]);
        let one = 1i32.to_be_bytes();
        let neg = (-1i32).to_be_bytes();
        assert_eq!(
            t.compare(
                &tuple(&[Some(&neg), Some(b"z")]),
                &tuple(&[Some(&one), Some(b"a")])
            ),
            Less
        );
        assert_eq!(
            t.compare(
                &tuple(&[None, Some(b"z")]),
                &tuple(&[Some(&neg), Some(b"a")])
            ),
            Less
        );
        assert_eq!(
            t.compare(&tuple(&[Some(&one)]), &tuple(&[Some(&one), Some(b"")])),
            Less
        );

        let l = KeyType::List(Box::new(KeyType::Int));
        let list = |xs: &[i32]| {
            let mut v = (xs.len() as i32).to_be_bytes().to_vec();
            for x in xs {
                v.extend(4i32.to_be_bytes());
                v.extend(x.to_be_bytes());
            }
            v
        };
        assert_eq!(l.compare(&list(&[-1, 5]), &list(&[1])), Less);
        assert_eq!(l.compare(&list(&[1]), &list(&[1, -7])), Less);
        assert_eq!(l.compare(&list(&[2]), &list(&[1, 9])), Greater);
        // Truncated input falls back to bytes, no panic.
        assert_eq!(l.compare(&[0, 0, 0, 9, 0], &list(&[1])), Greater);
        let m = KeyType::Map(Box::new(KeyType::Bytes), Box::new(KeyType::Int));
        let map = |xs: &[(&[u8], i32)]| {
            let mut v = (xs.len() as i32).to_be_bytes().to_vec();
            for (k, x) in xs {
                v.extend((k.len() as i32).to_be_bytes());
                v.extend_from_slice(k);
                v.extend(4i32.to_be_bytes());
                v.extend(x.to_be_bytes());
            }
            v
        };
        assert_eq!(m.compare(&map(&[(b"a", 5)]), &map(&[(b"a", -5)])), Greater);
        assert_eq!(m.compare(&map(&[(b"a", 5)]), &map(&[(b"b", -5)])), Less);
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let types = [
            KeyType::Boolean,
            KeyType::Float,
            KeyType::Varint,
            KeyType::Decimal,
            KeyType::Uuid,
            KeyType::TimeUuid,
            KeyType::Tuple(vec![KeyType::Decimal, KeyType::Varint]),
            KeyType::Map(Box::new(KeyType::Uuid), Box::new(KeyType::Float)),
            KeyType::Set(Box::new(KeyType::List(Box::new(KeyType::Int)))),
        ];
        for _ in 0..20_000 {
            let la = (next() % 24) as usize;
            let lb = (next() % 24) as usize;
            let a: Vec<u8> = (0..la).map(|_| next() as u8).collect();
            let b: Vec<u8> = (0..lb).map(|_| next() as u8).collect();
            for t in &types {
                let x = t.compare(&a, &b);
                let y = t.compare(&b, &a);
                assert_eq!(x, y.reverse(), "{t:?} antisymmetry {a:?} {b:?}");
            }
        }
    }
}
