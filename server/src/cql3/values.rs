//! CQL values in statements: literal coercion to column types, evaluation
//! of terms (literals, bind markers, collection/tuple/UDT literals,
//! function calls, type hints) to serialised values, and Cassandra's JSON
//! format (`toJson`, `fromJson`, `SELECT JSON`, `INSERT JSON`).
//!
//! Every conversion follows Cassandra 4.x (`Constants`, `AbstractType.
//! fromString`, `fromJSONObject`, `toJSONString`), including its error
//! messages, which are returned as `Err(String)` for an Invalid response.

use std::cmp::Ordering;
use std::net::IpAddr;

use bytes::Bytes;
use proto::value::{self as pv, ColumnType, CqlValue};

use super::ast::{CqlType, Literal, Term};
use super::functions;

// ---------------------------------------------------------------------------
// Evaluation context and results
// ---------------------------------------------------------------------------

/// One bound value as sent by the client (`[value]`): null, "not set"
/// (protocol v4+ unset), or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundValue<'a> {
    Null,
    Unset,
    Bytes(&'a [u8]),
}

/// What a term is evaluated against: the statement's bound values (by
/// marker index) and its "now" in microseconds (for `currenttimestamp()`
/// and friends).
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<'a> {
    pub values: &'a [BoundValue<'a>],
    pub now_micros: i64,
}

impl<'a> EvalContext<'a> {
    /// A context with bound values and the given "now".
    pub fn new(values: &'a [BoundValue<'a>], now_micros: i64) -> Self {
        EvalContext { values, now_micros }
    }

    /// A context without bound values, "now" from the system clock.
    pub fn without_values() -> EvalContext<'static> {
        EvalContext {
            values: &[],
            now_micros: functions::current_micros(),
        }
    }
}

/// An evaluated term: unset (leave the column alone), null, or the
/// serialised value (already validated against the receiver type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluated {
    Unset,
    Null,
    Value(Bytes),
}

impl Evaluated {
    /// The bytes, if this is a value.
    pub fn bytes(&self) -> Option<&Bytes> {
        match self {
            Evaluated::Value(b) => Some(b),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Literal coercion
// ---------------------------------------------------------------------------

/// Cassandra's literal kinds, as named in its error messages.
fn literal_kind(lit: &Literal) -> &'static str {
    match lit {
        Literal::String(_) => "STRING",
        Literal::Integer(_) => "INTEGER",
        Literal::Float(_) => "FLOAT",
        Literal::Boolean(_) => "BOOLEAN",
        Literal::Uuid(_) => "UUID",
        Literal::Blob(_) => "HEX",
        Literal::Duration(_) => "DURATION",
        Literal::Null => "NULL",
    }
}

fn literal_text(lit: &Literal) -> String {
    match lit {
        Literal::String(s)
        | Literal::Integer(s)
        | Literal::Float(s)
        | Literal::Uuid(s)
        | Literal::Duration(s) => s.clone(),
        Literal::Boolean(b) => b.to_string(),
        Literal::Blob(b) => hex(b),
        Literal::Null => "null".into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// How well a term fits a receiver type (Cassandra's `AssignmentTestable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Assignability {
    NotAssignable,
    WeaklyAssignable,
    ExactMatch,
}

fn literal_assignability(lit: &Literal, ty: &ColumnType) -> Assignability {
    use Assignability::*;
    use ColumnType as T;
    let ty = ty.unfrozen();
    if let Literal::Null = lit {
        return if ty.is_counter() {
            NotAssignable
        } else {
            WeaklyAssignable
        };
    }
    match ty {
        T::List(_) | T::Set(_) | T::Map(..) | T::Udt { .. } | T::Tuple(_) => return NotAssignable,
        T::Custom(_) => return WeaklyAssignable,
        _ => {}
    }
    let exact = match lit {
        Literal::String(s) => {
            if s.is_ascii() {
                T::Ascii
            } else {
                T::Text
            }
        }
        Literal::Integer(s) => match s.parse::<i64>() {
            Ok(v) if i32::try_from(v).is_ok() => T::Int,
            Ok(_) => T::BigInt,
            Err(_) => T::Varint,
        },
        Literal::Uuid(s) => match pv::parse_uuid(s) {
            Some(u) if u[6] >> 4 == 1 => T::Timeuuid,
            _ => T::Uuid,
        },
        Literal::Float(_) => T::Double,
        Literal::Boolean(_) => T::Boolean,
        Literal::Blob(_) => T::Blob,
        Literal::Duration(_) => T::Duration,
        Literal::Null => return WeaklyAssignable,
    };
    if *ty == exact {
        return ExactMatch;
    }
    let weak = match lit {
        Literal::String(_) => matches!(
            ty,
            T::Ascii | T::Text | T::Inet | T::Date | T::Time | T::Timestamp
        ),
        Literal::Integer(_) => matches!(
            ty,
            T::BigInt
                | T::Counter
                | T::Date
                | T::Decimal
                | T::Double
                | T::Duration
                | T::Float
                | T::Int
                | T::SmallInt
                | T::Time
                | T::Timestamp
                | T::TinyInt
                | T::Varint
        ),
        Literal::Uuid(_) => matches!(ty, T::Uuid | T::Timeuuid),
        Literal::Float(_) => matches!(ty, T::Decimal | T::Double | T::Float),
        Literal::Boolean(_) => matches!(ty, T::Boolean),
        Literal::Blob(_) => matches!(ty, T::Blob),
        Literal::Duration(_) => matches!(ty, T::Duration),
        Literal::Null => true,
    };
    if weak {
        WeaklyAssignable
    } else {
        NotAssignable
    }
}

/// Converts a constant to a value of type `ty`, exactly as Cassandra
/// accepts constants for that type. Errors name the receiver `value`; see
/// [`literal_to_value_for`].
pub fn literal_to_value(lit: &Literal, ty: &ColumnType) -> Result<CqlValue, String> {
    literal_to_value_for(lit, "value", ty)
}

/// [`literal_to_value`] with the receiver's name for error messages
/// (`Invalid STRING constant (foo) for "v" of type int`).
pub fn literal_to_value_for(
    lit: &Literal,
    receiver_name: &str,
    ty: &ColumnType,
) -> Result<CqlValue, String> {
    if let Literal::Null = lit {
        return Err(if ty.is_counter() {
            "Invalid null value for counter increment/decrement".into()
        } else {
            format!("Invalid null value for \"{receiver_name}\"")
        });
    }
    if literal_assignability(lit, ty) == Assignability::NotAssignable {
        return Err(format!(
            "Invalid {} constant ({}) for \"{}\" of type {}",
            literal_kind(lit),
            literal_text(lit),
            receiver_name,
            ty
        ));
    }
    match (lit, ty.unfrozen()) {
        (Literal::Blob(b), _) => Ok(CqlValue::Blob(b.clone())),
        (Literal::Boolean(b), _) => Ok(CqlValue::Boolean(*b)),
        (Literal::Integer(s), ColumnType::Counter) => {
            parse_native(&ColumnType::BigInt, s).map(|v| match v {
                CqlValue::BigInt(n) => CqlValue::Counter(n),
                other => other,
            })
        }
        (_, t) => parse_native(t, &literal_text(lit)),
    }
}

/// Java's `Long.parseLong` (optional sign, ASCII digits, no spaces).
fn java_parse_i64(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Java's `Double.parseDouble` for the forms CQL and JSON produce:
/// decimal/scientific numbers (optionally with a `d`/`f` suffix), `NaN`,
/// `Infinity`, surrounded by optional whitespace.
fn java_parse_f64(s: &str) -> Option<f64> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = match body {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        _ => {
            let body = body.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(body);
            if body.is_empty()
                || !body
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
                || !body.bytes().any(|b| b.is_ascii_digit())
            {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

/// Parses a native type's string form as Cassandra's
/// `AbstractType.fromString` does. The empty string is an empty value for
/// the types that allow one.
pub fn parse_native(ty: &ColumnType, s: &str) -> Result<CqlValue, String> {
    use ColumnType as T;
    let ty = ty.unfrozen();
    if s.is_empty()
        && !matches!(
            ty,
            T::Ascii | T::Text | T::Blob | T::Custom(_) | T::Varint | T::Decimal | T::Duration
        )
    {
        return Ok(match ty {
            T::Date | T::Time | T::SmallInt | T::TinyInt => {
                return Err(match ty {
                    T::Date => format!("Unable to coerce '{s}' to a formatted date (long)"),
                    T::Time => {
                        format!("(TimeType) Unable to coerce '{s}' to a formatted time (long)")
                    }
                    T::SmallInt => format!("Unable to make short from '{s}'"),
                    _ => format!("Unable to make byte from '{s}'"),
                })
            }
            _ => CqlValue::Empty,
        });
    }
    Ok(match ty {
        T::Ascii => {
            if !s.is_ascii() {
                return Err("Invalid ASCII character in string literal".into());
            }
            CqlValue::Ascii(s.to_string())
        }
        T::Text => CqlValue::Text(s.to_string()),
        T::Blob | T::Custom(_) => {
            CqlValue::Blob(parse_hex(s).ok_or_else(|| format!("cannot parse '{s}' as hex bytes"))?)
        }
        T::BigInt | T::Counter => {
            let v = java_parse_i64(s).ok_or_else(|| format!("Unable to make long from '{s}'"))?;
            if matches!(ty, T::Counter) {
                CqlValue::Counter(v)
            } else {
                CqlValue::BigInt(v)
            }
        }
        T::Int => CqlValue::Int(
            java_parse_i64(s)
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| format!("Unable to make int from '{s}'"))?,
        ),
        T::SmallInt => CqlValue::SmallInt(
            java_parse_i64(s)
                .and_then(|v| i16::try_from(v).ok())
                .ok_or_else(|| format!("Unable to make short from '{s}'"))?,
        ),
        T::TinyInt => CqlValue::TinyInt(
            java_parse_i64(s)
                .and_then(|v| i8::try_from(v).ok())
                .ok_or_else(|| format!("Unable to make byte from '{s}'"))?,
        ),
        T::Varint => CqlValue::Varint(
            pv::varint_from_str(s).ok_or_else(|| format!("unable to make int from '{s}'"))?,
        ),
        T::Decimal => {
            let (unscaled, scale) = pv::decimal_from_str(s)
                .ok_or_else(|| format!("unable to make BigDecimal from '{s}'"))?;
            CqlValue::Decimal { unscaled, scale }
        }
        T::Float => CqlValue::Float(
            java_parse_f64(s).ok_or_else(|| format!("Unable to make float from '{s}'"))? as f32,
        ),
        T::Double => CqlValue::Double(
            java_parse_f64(s).ok_or_else(|| format!("Unable to make double from '{s}'"))?,
        ),
        T::Boolean => {
            if s.eq_ignore_ascii_case("true") {
                CqlValue::Boolean(true)
            } else if s.eq_ignore_ascii_case("false") {
                CqlValue::Boolean(false)
            } else {
                return Err(format!("Unable to make boolean from '{s}'"));
            }
        }
        T::Uuid => CqlValue::Uuid(
            pv::parse_uuid(s).ok_or_else(|| format!("Unable to make UUID from '{s}'"))?,
        ),
        T::Timeuuid => {
            let u =
                pv::parse_uuid(s).ok_or_else(|| format!("Unknown timeuuid representation: {s}"))?;
            if u[6] >> 4 != 1 {
                return Err("TimeUUID supports only version 1 UUIDs".into());
            }
            CqlValue::Timeuuid(u)
        }
        T::Inet => CqlValue::Inet(
            parse_inet(s).ok_or_else(|| format!("Unable to make inet address from '{s}'"))?,
        ),
        T::Timestamp => CqlValue::Timestamp(parse_timestamp(s)?),
        T::Date => CqlValue::Date(parse_date(s)?),
        T::Time => CqlValue::Time(parse_time(s)?),
        T::Duration => {
            let (months, days, nanos) = parse_duration(s)?;
            CqlValue::Duration {
                months,
                days,
                nanos,
            }
        }
        other => {
            return Err(format!(
                "Cannot parse a value of type {other} from a string"
            ))
        }
    })
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() & 1 == 1 {
        return None;
    }
    let b = s.as_bytes();
    (0..b.len())
        .step_by(2)
        .map(|i| {
            let hi = (b[i] as char).to_digit(16)?;
            let lo = (b[i + 1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// An IP literal (v4 dotted quad or v6, optionally in brackets). IPv4-mapped
/// IPv6 addresses become IPv4, as Java's `InetAddress` does.
fn parse_inet(s: &str) -> Option<IpAddr> {
    let t = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    let ip: IpAddr = t.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    })
}

/// Reads 1..=max ASCII digits at `*pos`.
fn digits(b: &[u8], pos: &mut usize, min: usize, max: usize) -> Option<i64> {
    let start = *pos;
    while *pos < b.len() && *pos - start < max && b[*pos].is_ascii_digit() {
        *pos += 1;
    }
    if *pos - start < min {
        return None;
    }
    std::str::from_utf8(&b[start..*pos]).ok()?.parse().ok()
}

/// A zone: `Z`, `+hh`, `+hhmm`, `+hh:mm`, `UTC`/`GMT` with an optional
/// offset. Returns the offset in minutes.
fn parse_zone(z: &str) -> Option<i64> {
    if z == "Z" || z == "UTC" || z == "GMT" {
        return Some(0);
    }
    let z = z
        .strip_prefix("UTC")
        .or_else(|| z.strip_prefix("GMT"))
        .unwrap_or(z);
    let b = z.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut pos = 1;
    let h = digits(b, &mut pos, 1, 2)?;
    let mut m = 0;
    if pos < b.len() {
        if b[pos] == b':' {
            pos += 1;
        }
        m = digits(b, &mut pos, 2, 2)?;
    }
    if pos != b.len() || h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 60 + m))
}

/// Parses a timestamp string as Cassandra does: milliseconds as an integer
/// string, `now`, or `yyyy-mm-dd[( |T)hh:mm[:ss[.fff]]][zone]` where the
/// zone is `Z`, `+hh`, `+hhmm`, `+hh:mm` (optionally after a space, also
/// `UTC`/`GMT`). Without a zone the time is UTC. As with Java's
/// `SimpleDateFormat`, the 1-3 fraction digits are a count of milliseconds.
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    let err = || format!("Unable to coerce '{s}' to a formatted date (long)");
    if s.eq_ignore_ascii_case("now") {
        return Ok(functions::current_micros().div_euclid(1000));
    }
    let digits_only = s.strip_prefix('-').unwrap_or(s);
    if !digits_only.is_empty() && digits_only.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .map_err(|_| format!("Unable to make long (for date) from: '{s}'"));
    }
    let b = s.as_bytes();
    let mut pos = 0;
    let year = digits(b, &mut pos, 1, 9).ok_or_else(err)?;
    let expect = |pos: &mut usize, c: u8| -> Option<()> {
        if b.get(*pos) == Some(&c) {
            *pos += 1;
            Some(())
        } else {
            None
        }
    };
    expect(&mut pos, b'-').ok_or_else(err)?;
    let month = digits(b, &mut pos, 1, 2).ok_or_else(err)?;
    expect(&mut pos, b'-').ok_or_else(err)?;
    let day = digits(b, &mut pos, 1, 2).ok_or_else(err)?;
    let (mut hour, mut minute, mut second, mut millis) = (0, 0, 0, 0);
    if matches!(b.get(pos), Some(b' ') | Some(b'T'))
        && b.get(pos + 1).is_some_and(|c| c.is_ascii_digit())
    {
        pos += 1;
        hour = digits(b, &mut pos, 1, 2).ok_or_else(err)?;
        expect(&mut pos, b':').ok_or_else(err)?;
        minute = digits(b, &mut pos, 1, 2).ok_or_else(err)?;
        if b.get(pos) == Some(&b':') {
            pos += 1;
            second = digits(b, &mut pos, 1, 2).ok_or_else(err)?;
            if b.get(pos) == Some(&b'.') {
                pos += 1;
                millis = digits(b, &mut pos, 1, 3).ok_or_else(err)?;
            }
        }
    }
    let mut offset_minutes = 0;
    if pos < b.len() {
        let zone = &s[pos..];
        let zone = zone.strip_prefix(' ').unwrap_or(zone);
        offset_minutes = parse_zone(zone).ok_or_else(err)?;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > pv::days_in_month(year, month as u32) as i64
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(err());
    }
    let days = pv::days_from_civil(year, month as u32, day as u32);
    let ms = days as i128 * 86_400_000
        + (hour * 3_600_000 + minute * 60_000 + second * 1000 + millis) as i128
        - offset_minutes as i128 * 60_000;
    i64::try_from(ms).map_err(|_| err())
}

/// Parses a `date` string: a raw unsigned day number (epoch at 2^31) or an
/// ISO local date `yyyy-mm-dd` (`+yyyyy-mm-dd` / `-yyyy-mm-dd` beyond 4
/// digits), strict.
pub fn parse_date(s: &str) -> Result<u32, String> {
    let coerce = || format!("Unable to coerce '{s}' to a formatted date (long)");
    let digits_only = s.strip_prefix('-').unwrap_or(s);
    if !digits_only.is_empty() && digits_only.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("Unable to make unsigned int (for date) from: '{s}'"));
    }
    let b = s.as_bytes();
    let mut pos = 0;
    let (sign, signed) = match b.first() {
        Some(b'+') => (1, true),
        Some(b'-') => (-1, true),
        _ => (1, false),
    };
    if signed {
        pos += 1;
    }
    let start = pos;
    let year = digits(b, &mut pos, 4, if signed { 9 } else { 4 }).ok_or_else(coerce)?;
    if pos - start > 4 && !signed {
        return Err(coerce());
    }
    let year = sign * year;
    if b.get(pos) != Some(&b'-') {
        return Err(coerce());
    }
    pos += 1;
    let month = digits(b, &mut pos, 2, 2).ok_or_else(coerce)?;
    if b.get(pos) != Some(&b'-') {
        return Err(coerce());
    }
    pos += 1;
    let day = digits(b, &mut pos, 2, 2).ok_or_else(coerce)?;
    if pos != b.len()
        || !(1..=12).contains(&month)
        || day < 1
        || day > pv::days_in_month(year, month as u32) as i64
    {
        return Err(coerce());
    }
    let days = pv::days_from_civil(year, month as u32, day as u32);
    if days < i32::MIN as i64 {
        return Err(format!(
            "Input date {s} is less than min supported date -5877641-06-23T00:00Z"
        ));
    }
    if days > i32::MAX as i64 {
        return Err(format!(
            "Input date {s} is greater than max supported date 5881580-07-11T00:00Z"
        ));
    }
    Ok((days + pv::DATE_EPOCH as i64) as u32)
}

/// Parses a `time` string: raw nanoseconds as an integer string, or
/// `hh:mm:ss[.fffffffff]`.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let digits_only = s.strip_prefix('-').unwrap_or(s);
    if !digits_only.is_empty() && digits_only.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .filter(|v| (0..pv::NANOS_PER_DAY).contains(v))
            .ok_or_else(|| format!("Unable to make long (for time) from: '{s}'"));
    }
    let err = || format!("(TimeType) Unable to coerce '{s}' to a formatted time (long)");
    let t = s.trim();
    let mut parts = t.splitn(3, ':');
    let (Some(h), Some(m), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(err());
    };
    let int = |x: &str| -> Option<i64> {
        java_parse_i64(x).filter(|v| *v >= i32::MIN as i64 && *v <= i32::MAX as i64)
    };
    let hour = int(h).filter(|v| (0..24).contains(v)).ok_or_else(err)?;
    let minute = int(m).filter(|v| (0..60).contains(v)).ok_or_else(err)?;
    let (sec, frac) = match rest.split_once('.') {
        Some((sec, frac)) => (sec, Some(frac)),
        None => (rest, None),
    };
    let second = int(sec).filter(|v| (0..60).contains(v)).ok_or_else(err)?;
    let mut nanos = 0;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        nanos = format!("{f:0<9}").parse::<i64>().map_err(|_| err())?;
    }
    Ok(hour * 3_600_000_000_000 + minute * 60_000_000_000 + second * 1_000_000_000 + nanos)
}

const UNIT_NAMES: [&str; 11] = [
    "",
    "years",
    "months",
    "weeks",
    "days",
    "hours",
    "minutes",
    "seconds",
    "milliseconds",
    "microseconds",
    "nanoseconds",
];

/// Cassandra's `Duration.Builder`: units must come in order, once each,
/// and totals must fit.
struct DurationBuilder {
    months: i64,
    days: i64,
    nanos: i64,
    current: usize,
}

impl DurationBuilder {
    fn add(&mut self, unit: usize, n: i64) -> Result<(), String> {
        if unit == self.current {
            return Err(format!(
                "Invalid duration. The {} are specified multiple times",
                UNIT_NAMES[unit]
            ));
        }
        if unit < self.current {
            return Err(format!(
                "Invalid duration. The {} should be after {}",
                UNIT_NAMES[self.current], UNIT_NAMES[unit]
            ));
        }
        self.current = unit;
        let check = |limit: i64, what: &str| -> Result<(), String> {
            if n > limit {
                Err(format!(
                    "Invalid duration. The total number of {what} must be less or equal to {}",
                    i32::MAX
                ))
            } else {
                Ok(())
            }
        };
        let max_i = i32::MAX as i64;
        match unit {
            1 => {
                check((max_i - self.months) / 12, "months")?;
                self.months += n * 12;
            }
            2 => {
                check(max_i - self.months, "months")?;
                self.months += n;
            }
            3 => {
                check((max_i - self.days) / 7, "days")?;
                self.days += n * 7;
            }
            4 => {
                check(max_i - self.days, "days")?;
                self.days += n;
            }
            _ => {
                let per: i64 = match unit {
                    5 => 3_600_000_000_000,
                    6 => 60_000_000_000,
                    7 => 1_000_000_000,
                    8 => 1_000_000,
                    9 => 1_000,
                    _ => 1,
                };
                check((i64::MAX - self.nanos) / per, "nanoseconds")?;
                self.nanos += n * per;
            }
        }
        Ok(())
    }
}

/// Parses a duration as Cassandra's `Duration.from`: `1h30m`,
/// `1y2mo3w4d5h6m7s8ms9us10ns` (`µs` too, case-insensitive units), ISO 8601
/// `P1Y2M3DT4H5M6S`, `P2W`, `P0001-02-03T04:05:06`, with an optional
/// leading `-`. Returns (months, days, nanoseconds).
pub fn parse_duration(input: &str) -> Result<(i32, i32, i64), String> {
    let neg = input.starts_with('-');
    let source = if neg { &input[1..] } else { input };
    let bad = || format!("Unable to convert '{source}' to a duration");
    let num = |s: &str| -> Result<i64, String> { s.parse::<i64>().map_err(|_| bad()) };
    let mut b = DurationBuilder {
        months: 0,
        days: 0,
        nanos: 0,
        current: 0,
    };
    if let Some(p) = source.strip_prefix('P') {
        if let Some(w) = p.strip_suffix('W') {
            if w.is_empty() || !w.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            b.add(3, num(w)?)?;
        } else if p.contains('-') {
            // P yyyy-mm-dd T hh:mm:ss, fixed widths
            let pb = p.as_bytes();
            let shape = "dddd-dd-ddTdd:dd:dd".as_bytes();
            if pb.len() != shape.len()
                || !pb.iter().zip(shape).all(|(c, s)| match s {
                    b'd' => c.is_ascii_digit(),
                    other => c == other,
                })
            {
                return Err(bad());
            }
            let parts = [
                &p[0..4],
                &p[5..7],
                &p[8..10],
                &p[11..13],
                &p[14..16],
                &p[17..19],
            ];
            for (unit, part) in [1usize, 2, 4, 5, 6, 7].into_iter().zip(parts) {
                b.add(unit, num(part)?)?;
            }
        } else {
            // P[nY][nM][nD][T[nH][nM][nS]]
            let (date, time) = match p.split_once('T') {
                Some((d, t)) => (d, Some(t)),
                None => (p, None),
            };
            let mut parse_section = |s: &str, units: &[(u8, usize)]| -> Result<(), String> {
                let mut rest = s;
                let mut idx = 0;
                while !rest.is_empty() {
                    let end = rest
                        .bytes()
                        .position(|c| !c.is_ascii_digit())
                        .ok_or_else(bad)?;
                    if end == 0 {
                        return Err(bad());
                    }
                    let designator = rest.as_bytes()[end];
                    let pos = units[idx..]
                        .iter()
                        .position(|(d, _)| *d == designator)
                        .ok_or_else(bad)?;
                    idx += pos;
                    b.add(units[idx].1, num(&rest[..end])?)?;
                    idx += 1;
                    rest = &rest[end + 1..];
                }
                Ok(())
            };
            parse_section(date, &[(b'Y', 1), (b'M', 2), (b'D', 4)])?;
            if let Some(t) = time {
                parse_section(t, &[(b'H', 5), (b'M', 6), (b'S', 7)])?;
            }
        }
    } else {
        let mut rest = source;
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let end = rest
                .bytes()
                .position(|c| !c.is_ascii_digit())
                .ok_or_else(bad)?;
            if end == 0 {
                return Err(bad());
            }
            let n = num(&rest[..end])?;
            let after = &rest[end..];
            let lower = after.to_lowercase();
            let (unit, len) = if lower.starts_with("y") {
                (1, 1)
            } else if lower.starts_with("mo") {
                (2, 2)
            } else if lower.starts_with("w") {
                (3, 1)
            } else if lower.starts_with("d") {
                (4, 1)
            } else if lower.starts_with("h") {
                (5, 1)
            } else if lower.starts_with("s") {
                (7, 1)
            } else if lower.starts_with("ms") {
                (8, 2)
            } else if lower.starts_with("us") {
                (9, 2)
            } else if lower.starts_with("µs") {
                (9, "µs".len())
            } else if lower.starts_with("ns") {
                (10, 2)
            } else if lower.starts_with("m") {
                (6, 1)
            } else {
                return Err(bad());
            };
            b.add(unit, n)?;
            rest = &after[len..];
        }
    }
    let (m, d, n) = (b.months as i32, b.days as i32, b.nanos);
    Ok(if neg { (-m, -d, -n) } else { (m, d, n) })
}

// ---------------------------------------------------------------------------
// Term evaluation
// ---------------------------------------------------------------------------

/// Converts a type as written (`CqlType`) to a `ColumnType`. User types
/// need the schema and are an error here.
pub fn cql_type_to_column_type(t: &CqlType) -> Result<ColumnType, String> {
    Ok(match t {
        CqlType::Native(c) => c.clone(),
        CqlType::List(e) => ColumnType::List(Box::new(cql_type_to_column_type(e)?)),
        CqlType::Set(e) => ColumnType::Set(Box::new(cql_type_to_column_type(e)?)),
        CqlType::Map(k, v) => ColumnType::Map(
            Box::new(cql_type_to_column_type(k)?),
            Box::new(cql_type_to_column_type(v)?),
        ),
        CqlType::Tuple(items) => ColumnType::Tuple(
            items
                .iter()
                .map(cql_type_to_column_type)
                .collect::<Result<_, _>>()?,
        ),
        CqlType::Frozen(inner) => ColumnType::Frozen(Box::new(cql_type_to_column_type(inner)?)),
        CqlType::UserDefined(q) => {
            return Err(format!(
                "Unknown type {}",
                match &q.keyspace {
                    Some(ks) => format!("{ks}.{}", q.name),
                    None => q.name.clone(),
                }
            ))
        }
    })
}

/// How well `term` fits type `ty` (used for function overload resolution).
pub fn term_assignability(term: &Term, ty: &ColumnType) -> Assignability {
    use Assignability::*;
    let t = ty.unfrozen();
    match term {
        Term::Literal(l) => literal_assignability(l, ty),
        Term::Bind(_) => WeaklyAssignable,
        Term::TypeHint { ty: hint, .. } => match cql_type_to_column_type(hint) {
            Ok(h) if h.unfrozen() == t => ExactMatch,
            Ok(h) if functions::is_value_compatible(&h, t) => WeaklyAssignable,
            _ => NotAssignable,
        },
        Term::FunctionCall { name, args } => {
            let n = functions::normalize_name(name);
            if n == "fromjson" {
                return WeaklyAssignable;
            }
            match functions::overloads(&n) {
                Some(sigs) => {
                    let rets: Vec<&ColumnType> = sigs
                        .iter()
                        .filter(|s| s.params.len() == args.len() || n == "tojson")
                        .map(|s| &s.ret)
                        .collect();
                    if rets.iter().any(|r| r.unfrozen() == t) {
                        ExactMatch
                    } else if rets.iter().any(|r| functions::is_value_compatible(r, t)) {
                        WeaklyAssignable
                    } else {
                        NotAssignable
                    }
                }
                None => NotAssignable,
            }
        }
        Term::List(items) => match t {
            ColumnType::List(e) => min_assign(items.iter().map(|i| term_assignability(i, e))),
            _ => NotAssignable,
        },
        Term::Set(items) => match t {
            ColumnType::Set(e) => min_assign(items.iter().map(|i| term_assignability(i, e))),
            _ => NotAssignable,
        },
        Term::Map(entries) => match t {
            ColumnType::Map(k, v) => min_assign(
                entries
                    .iter()
                    .flat_map(|(a, b)| [term_assignability(a, k), term_assignability(b, v)]),
            ),
            ColumnType::Set(_) if entries.is_empty() => WeaklyAssignable,
            _ => NotAssignable,
        },
        Term::Tuple(items) => match t {
            ColumnType::Tuple(types) if items.len() <= types.len() => min_assign(
                items
                    .iter()
                    .zip(types.iter())
                    .map(|(i, ty)| term_assignability(i, ty)),
            ),
            _ => NotAssignable,
        },
        Term::Udt(fields) => {
            match t {
                ColumnType::Udt { fields: defs, .. } => {
                    min_assign(fields.iter().map(
                        |(n, v)| match defs.iter().find(|(d, _)| d == n) {
                            Some((_, ft)) => term_assignability(v, ft),
                            None => NotAssignable,
                        },
                    ))
                }
                _ => NotAssignable,
            }
        }
    }
}

fn min_assign(it: impl Iterator<Item = Assignability>) -> Assignability {
    // Collections are at best weakly assignable (Cassandra's rule).
    it.fold(Assignability::WeaklyAssignable, |a, b| a.min(b))
}

/// Evaluates `term` for a receiver of type `receiver` to a validated,
/// serialised value. Errors name the receiver `value`; see
/// [`evaluate_term_for`].
pub fn evaluate_term(
    term: &Term,
    receiver: &ColumnType,
    ctx: &EvalContext<'_>,
) -> Result<Evaluated, String> {
    evaluate_term_for(term, "value", receiver, ctx)
}

/// [`evaluate_term`] with the receiver's name for error messages.
pub fn evaluate_term_for(
    term: &Term,
    name: &str,
    receiver: &ColumnType,
    ctx: &EvalContext<'_>,
) -> Result<Evaluated, String> {
    eval(term, name, receiver, ctx, 0)
}

fn eval(
    term: &Term,
    name: &str,
    receiver: &ColumnType,
    ctx: &EvalContext<'_>,
    depth: usize,
) -> Result<Evaluated, String> {
    if depth > 64 {
        return Err("Term nested too deeply".into());
    }
    let rt = receiver.unfrozen();
    match term {
        Term::Literal(Literal::Null) => {
            if rt.is_counter() {
                Err("Invalid null value for counter increment/decrement".into())
            } else {
                Ok(Evaluated::Null)
            }
        }
        Term::Literal(lit) => {
            let v = literal_to_value_for(lit, name, receiver)?;
            Ok(Evaluated::Value(Bytes::from(pv::serialize_to_vec(&v))))
        }
        Term::Bind(marker) => {
            let bv = ctx.values.get(marker.index).ok_or_else(|| {
                format!(
                    "No value has been provided for bind marker {}",
                    marker.index
                )
            })?;
            match bv {
                BoundValue::Null => Ok(Evaluated::Null),
                BoundValue::Unset => Ok(Evaluated::Unset),
                BoundValue::Bytes(b) => {
                    pv::validate(receiver, b).map_err(|e| e.0)?;
                    match normalize_collection(rt, b) {
                        Some(sorted) => Ok(Evaluated::Value(Bytes::from(sorted))),
                        None => Ok(Evaluated::Value(Bytes::copy_from_slice(b))),
                    }
                }
            }
        }
        Term::List(items) => {
            let ColumnType::List(elem) = rt else {
                return Err(format!(
                    "Invalid list literal for {name} of type {receiver}"
                ));
            };
            let elem_name = format!("value({name})");
            let mut elems = Vec::with_capacity(items.len());
            for item in items {
                elems.push(collection_element(item, &elem_name, elem, ctx, depth)?);
            }
            Ok(Evaluated::Value(Bytes::from(write_collection(&elems))))
        }
        Term::Set(items) => {
            let ColumnType::Set(elem) = rt else {
                return Err(format!("Invalid set literal for {name} of type {receiver}"));
            };
            let elem_name = format!("value({name})");
            let mut elems = Vec::with_capacity(items.len());
            for item in items {
                elems.push(collection_element(item, &elem_name, elem, ctx, depth)?);
            }
            sort_dedup(elem, &mut elems);
            Ok(Evaluated::Value(Bytes::from(write_collection(&elems))))
        }
        Term::Map(entries) => match rt {
            ColumnType::Map(kt, vt) => {
                let key_name = format!("key({name})");
                let value_name = format!("value({name})");
                let mut pairs: Vec<(Bytes, Bytes)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let kb = collection_element(k, &key_name, kt, ctx, depth)?;
                    let vb = collection_element(v, &value_name, vt, ctx, depth)?;
                    pairs.push((kb, vb));
                }
                sort_dedup_map(kt, &mut pairs);
                let mut out = Vec::new();
                out.extend_from_slice(&(pairs.len() as i32).to_be_bytes());
                for (k, v) in &pairs {
                    put_value(&mut out, Some(k));
                    put_value(&mut out, Some(v));
                }
                Ok(Evaluated::Value(Bytes::from(out)))
            }
            // `{}` is an empty set too.
            ColumnType::Set(_) if entries.is_empty() => {
                Ok(Evaluated::Value(Bytes::from_static(&[0, 0, 0, 0])))
            }
            _ => Err(format!("Invalid map literal for {name} of type {receiver}")),
        },
        Term::Tuple(items) => {
            let ColumnType::Tuple(types) = rt else {
                return Err(format!(
                    "Invalid tuple literal for {name} of type {receiver}"
                ));
            };
            if items.len() > types.len() {
                return Err(format!(
                    "Invalid tuple literal for {name}: too many elements. Type {receiver} expects {} but got {}",
                    types.len(),
                    items.len()
                ));
            }
            for (i, (item, ty)) in items.iter().zip(types).enumerate() {
                if term_assignability(item, ty) == Assignability::NotAssignable {
                    return Err(format!(
                        "Invalid tuple literal for {name}: component {i} is not of type {ty}"
                    ));
                }
            }
            let mut out = Vec::new();
            for (i, (item, ty)) in items.iter().zip(types).enumerate() {
                match eval(item, &format!("component({name}, {i})"), ty, ctx, depth + 1)? {
                    Evaluated::Value(b) => put_value(&mut out, Some(&b)),
                    Evaluated::Null => put_value(&mut out, None),
                    Evaluated::Unset => {
                        return Err(format!("Invalid unset value for tuple field number {i}"))
                    }
                }
            }
            Ok(Evaluated::Value(Bytes::from(out)))
        }
        Term::Udt(fields) => {
            let ColumnType::Udt {
                name: type_name,
                fields: defs,
                ..
            } = rt
            else {
                return Err(format!(
                    "Invalid user type literal for {name} of type {receiver}"
                ));
            };
            for (f, _) in fields {
                if !defs.iter().any(|(d, _)| d == f) {
                    return Err(format!(
                        "Unknown field '{f}' in value of user defined type {type_name}"
                    ));
                }
            }
            let mut out = Vec::new();
            for (fname, fty) in defs {
                match fields.iter().find(|(f, _)| f == fname) {
                    None => put_value(&mut out, None),
                    Some((_, t)) => match eval(t, &format!("{name}.{fname}"), fty, ctx, depth + 1)? {
                        Evaluated::Value(b) => put_value(&mut out, Some(&b)),
                        Evaluated::Null => put_value(&mut out, None),
                        Evaluated::Unset => {
                            return Err(format!(
                                "Invalid unset value for field '{fname}' of user defined type {type_name}"
                            ))
                        }
                    },
                }
            }
            Ok(Evaluated::Value(Bytes::from(out)))
        }
        Term::TypeHint { ty, term } => {
            let cast = cql_type_to_column_type(ty)?;
            if term_assignability(term, &cast) == Assignability::NotAssignable {
                return Err(format!(
                    "Cannot cast value {} to type {}",
                    term_text(term),
                    cast
                ));
            }
            if !functions::is_value_compatible(&cast, receiver) {
                return Err(format!(
                    "Cannot assign value {} to {name} of type {receiver}",
                    term_text(term)
                ));
            }
            let v = eval(term, name, &cast, ctx, depth + 1)?;
            if let Evaluated::Value(b) = &v {
                pv::validate(receiver, b).map_err(|e| e.0)?;
            }
            Ok(v)
        }
        Term::FunctionCall { name: fname, args } => {
            eval_function(fname, args, name, receiver, ctx, depth)
        }
    }
}

/// A short textual form of a term for error messages.
fn term_text(term: &Term) -> String {
    match term {
        Term::Literal(Literal::String(s)) => format!("'{s}'"),
        Term::Literal(l) => literal_text(l),
        Term::Bind(m) => match &m.name {
            Some(n) => format!(":{n}"),
            None => "?".into(),
        },
        Term::FunctionCall { name, .. } => format!("{name}(...)"),
        Term::List(_) => "[...]".into(),
        Term::Set(_) | Term::Map(_) | Term::Udt(_) => "{...}".into(),
        Term::Tuple(_) => "(...)".into(),
        Term::TypeHint { term, .. } => term_text(term),
    }
}

fn eval_function(
    fname: &str,
    args: &[Term],
    receiver_name: &str,
    receiver: &ColumnType,
    ctx: &EvalContext<'_>,
    depth: usize,
) -> Result<Evaluated, String> {
    let n = functions::normalize_name(fname);
    match n.as_str() {
        "token" => {
            return Err("The token function cannot be used here: it is only valid in the selection clause or a token() relation".into())
        }
        "tojson" => return Err("toJson() may only be used within the selection clause".into()),
        "fromjson" => {
            if args.len() != 1 {
                return Err(format!("fromJson() only accepts one argument (got {})", args.len()));
            }
            let json = match eval(&args[0], "fromjson(arg0)", &ColumnType::Text, ctx, depth + 1)? {
                Evaluated::Null => return Ok(Evaluated::Null),
                Evaluated::Unset => return Ok(Evaluated::Unset),
                Evaluated::Value(b) => String::from_utf8(b.to_vec()).map_err(|_| "String didn't validate.".to_string())?,
            };
            return Ok(match from_json(&json, receiver)? {
                None => Evaluated::Null,
                Some(v) => Evaluated::Value(Bytes::from(pv::serialize_to_vec(&v))),
            });
        }
        _ => {}
    }
    let sigs = functions::overloads(&n).ok_or_else(|| format!("Unknown function '{fname}'"))?;
    let arity: Vec<&functions::Signature> = sigs
        .iter()
        .filter(|s| s.params.len() == args.len())
        .collect();
    if arity.is_empty() {
        return Err(format!(
            "Invalid number of arguments in call to function system.{n}: {} required but {} provided",
            sigs[0].params.len(),
            args.len()
        ));
    }
    let scored: Vec<(&functions::Signature, Assignability)> = arity
        .iter()
        .map(|s| {
            let a = s
                .params
                .iter()
                .zip(args)
                .map(|(p, t)| term_assignability(t, p))
                .min()
                .unwrap_or(Assignability::ExactMatch);
            (*s, a)
        })
        .filter(|(_, a)| *a != Assignability::NotAssignable)
        .collect();
    let exact: Vec<_> = scored
        .iter()
        .filter(|(_, a)| *a == Assignability::ExactMatch)
        .collect();
    let sig = match (exact.as_slice(), scored.as_slice()) {
        ([one], _) => one.0,
        (_, [one]) => one.0,
        (_, []) => {
            return Err(format!(
                "Invalid call to function system.{n}: none of its type signatures match the arguments"
            ))
        }
        _ => {
            return Err(format!(
                "Ambiguous call to function system.{n} (can be matched by following signatures: {}): use type casts to disambiguate",
                scored
                    .iter()
                    .map(|(s, _)| format!(
                        "system.{}({})",
                        s.name,
                        s.params.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    };
    if !functions::is_value_compatible(&sig.ret, receiver) {
        return Err(format!(
            "Type error: cannot assign result of function system.{n} (type {}) to {receiver_name} (type {receiver})",
            sig.ret
        ));
    }
    let mut values = Vec::with_capacity(args.len());
    for (i, (arg, p)) in args.iter().zip(&sig.params).enumerate() {
        match eval(arg, &format!("arg{i}(system.{n})"), p, ctx, depth + 1)? {
            Evaluated::Null => values.push(None),
            Evaluated::Unset => {
                return Err(format!(
                    "Invalid unset value for argument in call to function {n}"
                ))
            }
            Evaluated::Value(b) => values.push(Some(pv::deserialize(p, &b).map_err(|e| e.0)?)),
        }
    }
    let (_, result) = functions::call_at(&n, &values, &sig.params, Some(receiver), ctx.now_micros)?;
    Ok(match result {
        None => Evaluated::Null,
        Some(v) => {
            let bytes = pv::serialize_to_vec(&v);
            pv::validate(receiver, &bytes).map_err(|e| e.0)?;
            Evaluated::Value(Bytes::from(bytes))
        }
    })
}

fn collection_element(
    term: &Term,
    name: &str,
    ty: &ColumnType,
    ctx: &EvalContext<'_>,
    depth: usize,
) -> Result<Bytes, String> {
    match eval(term, name, ty, ctx, depth + 1)? {
        Evaluated::Value(b) => Ok(b),
        Evaluated::Null => Err("null is not supported inside collections".into()),
        Evaluated::Unset => Err("unset value is not supported inside collections".into()),
    }
}

fn put_value(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
}

fn write_collection(elems: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + elems.iter().map(|e| e.len() + 4).sum::<usize>());
    out.extend_from_slice(&(elems.len() as i32).to_be_bytes());
    for e in elems {
        put_value(&mut out, Some(e));
    }
    out
}

/// Sorts set elements by the element type's order and drops duplicates.
fn sort_dedup<B: AsRef<[u8]>>(elem: &ColumnType, elems: &mut Vec<B>) {
    elems.sort_by(|a, b| pv::compare_serialized(elem, a.as_ref(), b.as_ref()));
    elems.dedup_by(|a, b| pv::compare_serialized(elem, a.as_ref(), b.as_ref()) == Ordering::Equal);
}

/// Sorts map entries by key; for duplicate keys the last one wins.
fn sort_dedup_map<B: AsRef<[u8]>>(key: &ColumnType, pairs: &mut Vec<(B, B)>) {
    // Stable sort keeps insertion order among equal keys; keep the last.
    pairs.sort_by(|a, b| pv::compare_serialized(key, a.0.as_ref(), b.0.as_ref()));
    let mut out: Vec<(B, B)> = Vec::with_capacity(pairs.len());
    for p in pairs.drain(..) {
        match out.last_mut() {
            Some(last)
                if pv::compare_serialized(key, last.0.as_ref(), p.0.as_ref())
                    == Ordering::Equal =>
            {
                *last = p
            }
            _ => out.push(p),
        }
    }
    *pairs = out;
}

/// For a (validated) bound set or map: the re-serialised value with
/// elements/keys sorted and deduplicated, or `None` if it already is.
fn normalize_collection(ty: &ColumnType, bytes: &[u8]) -> Option<Vec<u8>> {
    let (is_map, key_ty) = match ty {
        ColumnType::Set(e) => (false, e.as_ref()),
        ColumnType::Map(k, _) => (true, k.as_ref()),
        _ => return None,
    };
    let count = i32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let mut pos = 4;
    let read = |pos: &mut usize| -> Option<&[u8]> {
        let len = i32::from_be_bytes(bytes.get(*pos..*pos + 4)?.try_into().ok()?);
        *pos += 4;
        let v = bytes.get(*pos..*pos + usize::try_from(len).ok()?)?;
        *pos += v.len();
        Some(v)
    };
    let mut items: Vec<(&[u8], &[u8])> =
        Vec::with_capacity((count.max(0) as usize).min(bytes.len() / 4));
    for _ in 0..count {
        let k = read(&mut pos)?;
        let v = if is_map { read(&mut pos)? } else { &[][..] };
        items.push((k, v));
    }
    let sorted = items
        .windows(2)
        .all(|w| pv::compare_serialized(key_ty, w[0].0, w[1].0) == Ordering::Less);
    if sorted {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    if is_map {
        sort_dedup_map(key_ty, &mut items);
        out.extend_from_slice(&(items.len() as i32).to_be_bytes());
        for (k, v) in &items {
            put_value(&mut out, Some(k));
            put_value(&mut out, Some(v));
        }
    } else {
        let mut keys: Vec<&[u8]> = items.iter().map(|(k, _)| *k).collect();
        sort_dedup(key_ty, &mut keys);
        out.extend_from_slice(&(keys.len() as i32).to_be_bytes());
        for k in keys {
            put_value(&mut out, Some(k));
        }
    }
    Some(out)
}

/// Sorts and deduplicates the elements of set values and the keys of map
/// values, recursively, so that a value built by hand (e.g. from JSON) is
/// in Cassandra's canonical form.
pub fn canonicalize(value: CqlValue, ty: &ColumnType) -> CqlValue {
    match (value, ty.unfrozen()) {
        (CqlValue::Set(items), ColumnType::Set(e)) => {
            let mut keyed: Vec<(Vec<u8>, CqlValue)> = items
                .into_iter()
                .map(|v| {
                    let v = canonicalize(v, e);
                    (pv::serialize_to_vec(&v), v)
                })
                .collect();
            keyed.sort_by(|a, b| pv::compare_serialized(e, &a.0, &b.0));
            keyed.dedup_by(|a, b| pv::compare_serialized(e, &a.0, &b.0) == Ordering::Equal);
            CqlValue::Set(keyed.into_iter().map(|(_, v)| v).collect())
        }
        (CqlValue::Map(entries), ColumnType::Map(kt, vt)) => {
            let mut keyed: Vec<(Vec<u8>, (CqlValue, CqlValue))> = entries
                .into_iter()
                .map(|(k, v)| {
                    let k = canonicalize(k, kt);
                    (pv::serialize_to_vec(&k), (k, canonicalize(v, vt)))
                })
                .collect();
            keyed.sort_by(|a, b| pv::compare_serialized(kt, &a.0, &b.0));
            let mut out: Vec<(Vec<u8>, (CqlValue, CqlValue))> = Vec::with_capacity(keyed.len());
            for p in keyed {
                match out.last_mut() {
                    Some(last) if pv::compare_serialized(kt, &last.0, &p.0) == Ordering::Equal => {
                        *last = p
                    }
                    _ => out.push(p),
                }
            }
            CqlValue::Map(out.into_iter().map(|(_, kv)| kv).collect())
        }
        (CqlValue::List(items), ColumnType::List(e)) => {
            CqlValue::List(items.into_iter().map(|v| canonicalize(v, e)).collect())
        }
        (CqlValue::Tuple(items), ColumnType::Tuple(types)) => CqlValue::Tuple(
            items
                .into_iter()
                .zip(types.iter().chain(std::iter::repeat(&ColumnType::Blob)))
                .map(|(v, t)| v.map(|v| canonicalize(v, t)))
                .collect(),
        ),
        (CqlValue::Udt(fields), ColumnType::Udt { fields: defs, .. }) => CqlValue::Udt(
            fields
                .into_iter()
                .map(|(n, v)| {
                    let t = defs.iter().find(|(d, _)| *d == n).map(|(_, t)| t);
                    let v = match (v, t) {
                        (Some(v), Some(t)) => Some(canonicalize(v, t)),
                        (v, _) => v,
                    };
                    (n, v)
                })
                .collect(),
        ),
        (v, _) => v,
    }
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// A parsed JSON value. Numbers keep their text; object members keep their
/// order (a repeated key replaces the earlier value in place).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The Java class Jackson would decode this to, for Cassandra's
    /// "but got a X" messages.
    fn java_class(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "Boolean",
            Json::String(_) => "String",
            Json::Array(_) => "ArrayList",
            Json::Object(_) => "LinkedHashMap",
            Json::Number(n) => {
                if n.contains(['.', 'e', 'E']) {
                    "Double"
                } else if n.parse::<i32>().is_ok() {
                    "Integer"
                } else if n.parse::<i64>().is_ok() {
                    "Long"
                } else {
                    "BigInteger"
                }
            }
        }
    }

    /// How Java would print the decoded value (for error messages).
    fn java_string(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(b) => b.to_string(),
            Json::String(s) => s.clone(),
            Json::Number(n) => {
                if self.java_class() == "Double" {
                    n.parse::<f64>()
                        .map(pv::format_double)
                        .unwrap_or_else(|_| n.clone())
                } else {
                    n.clone()
                }
            }
            other => write_json(other),
        }
    }
}

/// Serialises a parsed JSON value compactly, with Cassandra's separators.
fn write_json(j: &Json) -> String {
    match j {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.clone(),
        Json::String(s) => quote_json(s),
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(write_json).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", quote_json(k), write_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

struct JsonParser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.pos < self.b.len() && matches!(self.b[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at character {}", self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 128 {
            return self.err("JSON nested too deeply");
        }
        self.ws();
        match self.b.get(self.pos) {
            None => self.err("Unexpected end of input"),
            Some(b'{') => {
                self.pos += 1;
                let mut members: Vec<(String, Json)> = Vec::new();
                self.ws();
                if self.b.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.ws();
                    if self.b.get(self.pos) != Some(&b'"') {
                        return self.err("Expected a string key");
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.b.get(self.pos) != Some(&b':') {
                        return self.err("Expected ':'");
                    }
                    self.pos += 1;
                    let v = self.value(depth + 1)?;
                    match members.iter_mut().find(|(mk, _)| *mk == k) {
                        Some(slot) => slot.1 = v,
                        None => members.push((k, v)),
                    }
                    self.ws();
                    match self.b.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return self.err("Expected ',' or '}'"),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return self.err("Expected ',' or ']'"),
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') if self.b[self.pos..].starts_with(b"true") => {
                self.pos += 4;
                Ok(Json::Bool(true))
            }
            Some(b'f') if self.b[self.pos..].starts_with(b"false") => {
                self.pos += 5;
                Ok(Json::Bool(false))
            }
            Some(b'n') if self.b[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                Ok(Json::Null)
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            Some(_) => self.err("Unexpected character"),
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        let b = self.b;
        if b.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        while self.pos < b.len() && b[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        let int_len = self.pos - int_start;
        if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
            return self.err("Invalid number");
        }
        if b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            let s = self.pos;
            while self.pos < b.len() && b[self.pos].is_ascii_digit() {
                self.pos += 1;
            }
            if self.pos == s {
                return self.err("Invalid number");
            }
        }
        if matches!(b.get(self.pos), Some(b'e') | Some(b'E')) {
            self.pos += 1;
            if matches!(b.get(self.pos), Some(b'+') | Some(b'-')) {
                self.pos += 1;
            }
            let s = self.pos;
            while self.pos < b.len() && b[self.pos].is_ascii_digit() {
                self.pos += 1;
            }
            if self.pos == s {
                return self.err("Invalid number");
            }
        }
        Ok(Json::Number(
            String::from_utf8_lossy(&b[start..self.pos]).into_owned(),
        ))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .b
            .get(self.pos..self.pos + 4)
            .ok_or("Truncated \\u escape")?;
        let s = std::str::from_utf8(h).map_err(|_| "Invalid \\u escape")?;
        let v = u32::from_str_radix(s, 16).map_err(|_| "Invalid \\u escape")?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // opening quote
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return self.err("Unterminated string");
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.b.get(self.pos) else {
                        return self.err("Unterminated string");
                    };
                    self.pos += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi) {
                                if !self.b[self.pos..].starts_with(b"\\u") {
                                    return self.err("Invalid surrogate pair");
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return self.err("Invalid surrogate pair");
                                }
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                    .ok_or("Invalid surrogate pair")?
                            } else {
                                char::from_u32(hi).ok_or("Invalid \\u escape")?
                            }
                        }
                        _ => return self.err("Invalid escape"),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return self.err("Unescaped control character in string"),
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "Invalid UTF-8 in string".to_string())
    }
}

/// Parses a JSON document (one value, surrounding whitespace allowed).
pub fn parse_json(s: &str) -> Result<Json, String> {
    let mut p = JsonParser {
        b: s.as_bytes(),
        pos: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.pos != p.b.len() {
        return p.err("Unexpected trailing characters");
    }
    Ok(v)
}

/// Quotes a string as a JSON string literal (Jackson's escaping: `"`, `\`
/// and control characters; non-ASCII kept as is).
pub fn quote_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An address as Java's `InetAddress.getHostAddress()` prints it: IPv6 as
/// eight uncompressed hex groups (`0:0:0:0:0:0:0:1`).
fn java_inet(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => a
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// Java's `BigDecimal.toString()` (scientific notation when the exponent
/// is small), which Cassandra uses for decimals in JSON.
fn decimal_java_string(unscaled: &[u8], scale: i32) -> String {
    let plain_digits = pv::varint_to_string(unscaled);
    let (neg, digits) = match plain_digits.strip_prefix('-') {
        Some(d) => (true, d.to_string()),
        None => (false, plain_digits.clone()),
    };
    let adjusted = digits.len() as i64 - 1 - scale as i64;
    if scale >= 0 && adjusted >= -6 {
        return pv::decimal_to_string(unscaled, scale);
    }
    let sign = if neg { "-" } else { "" };
    let (head, tail) = digits.split_at(1);
    let mut s = format!("{sign}{head}");
    if !tail.is_empty() {
        s.push('.');
        s.push_str(tail);
    }
    s.push('E');
    if adjusted >= 0 {
        s.push('+');
    }
    s.push_str(&adjusted.to_string());
    s
}

/// Formats a value as Cassandra's `toJson()` does. `None` is `null`.
pub fn to_json(value: Option<&CqlValue>, ty: &ColumnType) -> String {
    match value {
        None => "null".into(),
        Some(v) => value_to_json(v, ty),
    }
}

fn value_to_json(v: &CqlValue, ty: &ColumnType) -> String {
    let ty = ty.unfrozen();
    match v {
        CqlValue::Empty => "\"\"".into(),
        CqlValue::Ascii(s) | CqlValue::Text(s) => quote_json(s),
        CqlValue::Blob(b) => format!("\"{}\"", hex(b)),
        CqlValue::Boolean(b) => b.to_string(),
        CqlValue::BigInt(n) | CqlValue::Counter(n) => n.to_string(),
        CqlValue::Int(n) => n.to_string(),
        CqlValue::SmallInt(n) => n.to_string(),
        CqlValue::TinyInt(n) => n.to_string(),
        CqlValue::Varint(b) => pv::varint_to_string(b),
        CqlValue::Decimal { unscaled, scale } => decimal_java_string(unscaled, *scale),
        CqlValue::Float(f) => {
            if f.is_finite() {
                pv::format_float(*f)
            } else {
                "null".into()
            }
        }
        CqlValue::Double(f) => {
            if f.is_finite() {
                pv::format_double(*f)
            } else {
                "null".into()
            }
        }
        CqlValue::Timestamp(ms) => format!("\"{}\"", pv::format_timestamp(*ms)),
        CqlValue::Date(d) => format!("\"{}\"", pv::format_date(*d)),
        CqlValue::Time(t) => format!("\"{}\"", pv::format_time(*t)),
        CqlValue::Uuid(u) | CqlValue::Timeuuid(u) => format!("\"{}\"", pv::format_uuid(u)),
        CqlValue::Inet(ip) => format!("\"{}\"", java_inet(ip)),
        CqlValue::Duration {
            months,
            days,
            nanos,
        } => quote_json(&pv::format_duration(*months, *days, *nanos)),
        CqlValue::List(items) | CqlValue::Set(items) => {
            let et = match ty {
                ColumnType::List(e) | ColumnType::Set(e) => e.as_ref(),
                _ => &ColumnType::Blob,
            };
            format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| value_to_json(i, et))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        CqlValue::Map(entries) => {
            let (kt, vt) = match ty {
                ColumnType::Map(k, v) => (k.as_ref(), v.as_ref()),
                _ => (&ColumnType::Blob, &ColumnType::Blob),
            };
            format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = value_to_json(k, kt);
                        let key = if key.starts_with('"') {
                            key
                        } else {
                            quote_json(&key)
                        };
                        format!("{}: {}", key, value_to_json(v, vt))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        CqlValue::Tuple(items) => {
            let types: &[ColumnType] = match ty {
                ColumnType::Tuple(t) => t,
                _ => &[],
            };
            format!(
                "[{}]",
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| to_json(v.as_ref(), types.get(i).unwrap_or(&ColumnType::Blob)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        CqlValue::Udt(fields) => {
            let defs: &[(String, ColumnType)] = match ty {
                ColumnType::Udt { fields, .. } => fields,
                _ => &[],
            };
            format!(
                "{{{}}}",
                fields
                    .iter()
                    .map(|(n, v)| {
                        let t = defs
                            .iter()
                            .find(|(d, _)| d == n)
                            .map(|(_, t)| t)
                            .unwrap_or(&ColumnType::Blob);
                        format!(
                            "{}: {}",
                            quote_json(&pv::maybe_quote_identifier(n)),
                            to_json(v.as_ref(), t)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

/// Parses a JSON document into a value of type `ty` as Cassandra's
/// `fromJson()` / `INSERT JSON` do. JSON `null` is `Ok(None)`.
pub fn from_json(json: &str, ty: &ColumnType) -> Result<Option<CqlValue>, String> {
    let parsed =
        parse_json(json).map_err(|e| format!("Could not decode JSON string '{json}': {e}"))?;
    from_json_value(&parsed, ty)
}

/// Converts an already parsed JSON value to a value of type `ty`
/// (`INSERT JSON` parses the document once and converts each column).
pub fn from_json_value(j: &Json, ty: &ColumnType) -> Result<Option<CqlValue>, String> {
    json_to_value(j, ty, 0)
}

fn expected(what: &str, j: &Json) -> String {
    format!(
        "Expected {what}, but got a {}: {}",
        j.java_class(),
        j.java_string()
    )
}

fn json_to_value(j: &Json, ty: &ColumnType, depth: usize) -> Result<Option<CqlValue>, String> {
    use ColumnType as T;
    if depth > 64 {
        return Err("JSON value nested too deeply".into());
    }
    if let Json::Null = j {
        return Ok(None);
    }
    let ty = ty.unfrozen();
    let v = match (ty, j) {
        (T::Ascii, Json::String(s)) => parse_native(ty, s)?,
        (T::Ascii, _) => return Err(expected("an ascii string", j)),
        (T::Text, Json::String(s)) => CqlValue::Text(s.clone()),
        (T::Text, _) => return Err(expected("a UTF-8 string", j)),
        (T::Blob | T::Custom(_), Json::String(s)) => match s.strip_prefix("0x") {
            Some(h) => CqlValue::Blob(parse_hex(h).ok_or_else(|| {
                format!("Value '{s}' is not a valid blob representation: cannot parse '{h}' as hex bytes")
            })?),
            None => {
                return Err(format!(
                    "Value '{s}' is not a valid blob representation: String representation of blob is missing 0x prefix: {s}"
                ))
            }
        },
        (T::Blob | T::Custom(_), _) => {
            return Err(format!("Value '{}' is not a valid blob representation", j.java_string()))
        }
        (T::Boolean, Json::Bool(b)) => CqlValue::Boolean(*b),
        (T::Boolean, Json::String(s)) => parse_native(ty, s)?,
        (T::Boolean, _) => return Err(expected("a boolean value", j)),
        (T::Int, Json::Number(n)) if j.java_class() == "Integer" => parse_native(ty, n)?,
        (T::Int, Json::String(s)) => parse_native(ty, s)?,
        (T::Int, _) => return Err(expected("an int value", j)),
        (T::BigInt | T::Counter, Json::Number(n)) if matches!(j.java_class(), "Integer" | "Long") => {
            parse_native(ty, n)?
        }
        (T::BigInt | T::Counter, Json::String(s)) => parse_native(ty, s)?,
        (T::BigInt | T::Counter, _) => return Err(expected("a bigint value", j)),
        (T::SmallInt, Json::Number(_) | Json::String(_)) => parse_native(ty, &j.java_string())?,
        (T::SmallInt, _) => return Err(expected("a short value", j)),
        (T::TinyInt, Json::Number(_) | Json::String(_)) => parse_native(ty, &j.java_string())?,
        (T::TinyInt, _) => return Err(expected("a byte value", j)),
        (T::Varint, Json::Number(n)) if j.java_class() != "Double" => parse_native(ty, n)?,
        (T::Varint, Json::String(s)) if pv::varint_from_str(s).is_some() => parse_native(ty, s)?,
        (T::Varint, _) => {
            return Err(format!(
                "Value '{}' is not a valid representation of a varint value",
                j.java_string()
            ))
        }
        (T::Decimal, Json::Number(_)) => parse_native(ty, &j.java_string())?,
        (T::Decimal, Json::String(s)) if pv::decimal_from_str(s).is_some() => parse_native(ty, s)?,
        (T::Decimal, _) => {
            return Err(format!(
                "Value '{}' is not a valid representation of a decimal value",
                j.java_string()
            ))
        }
        (T::Float | T::Double, Json::Number(n)) => parse_native(ty, n)?,
        (T::Float | T::Double, Json::String(s)) => parse_native(ty, s)?,
        (T::Float, _) => return Err(expected("a float value", j)),
        (T::Double, _) => return Err(expected("a double value", j)),
        (T::Uuid, Json::String(s)) => parse_native(ty, s)?,
        (T::Uuid, _) => return Err(expected("a string representation of a uuid", j)),
        (T::Timeuuid, Json::String(s)) => parse_native(ty, s)?,
        (T::Timeuuid, _) => return Err(expected("a string representation of a timeuuid", j)),
        (T::Inet, Json::String(s)) => parse_native(ty, s)?,
        (T::Inet, _) => return Err(expected("a string representation of an inet value", j)),
        (T::Date, Json::String(s)) => parse_native(ty, s)?,
        (T::Date, _) => return Err(expected("a string representation of a date value", j)),
        (T::Time, Json::String(s)) => parse_native(ty, s)?,
        (T::Time, _) => return Err(expected("a string representation of a time value", j)),
        (T::Timestamp, Json::Number(n)) if matches!(j.java_class(), "Integer" | "Long") => {
            CqlValue::Timestamp(n.parse().map_err(|_| expected("a long", j))?)
        }
        (T::Timestamp, Json::String(s)) => parse_native(ty, s)?,
        (T::Timestamp, _) => {
            return Err(expected(
                "a long or a datestring representation of a timestamp value",
                j,
            ))
        }
        (T::Duration, Json::String(s)) => parse_native(ty, s)?,
        (T::Duration, _) => return Err(expected("a string representation of a duration", j)),
        (T::List(e), Json::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                out.push(json_to_value(i, e, depth + 1)?.ok_or("Invalid null element in list")?);
            }
            CqlValue::List(out)
        }
        (T::List(_), _) => return Err(expected("a list", j)),
        (T::Set(e), Json::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                out.push(json_to_value(i, e, depth + 1)?.ok_or("Invalid null element in set")?);
            }
            CqlValue::Set(out)
        }
        (T::Set(_), _) => return Err(expected("a list (representing a set)", j)),
        (T::Map(kt, vt), Json::Object(members)) => {
            let mut out = Vec::with_capacity(members.len());
            for (k, v) in members {
                let key = match kt.unfrozen() {
                    T::Text | T::Ascii => Json::String(k.clone()),
                    // Non-string keys travel as their JSON text; fall back to
                    // the plain string (dates, uuids, ...).
                    _ => parse_json(k).unwrap_or_else(|_| Json::String(k.clone())),
                };
                let key = json_to_value(&key, kt, depth + 1)?.ok_or("Invalid null key in map")?;
                let value = json_to_value(v, vt, depth + 1)?.ok_or("Invalid null value in map")?;
                out.push((key, value));
            }
            CqlValue::Map(out)
        }
        (T::Map(..), _) => return Err(expected("a map", j)),
        (T::Tuple(types), Json::Array(items)) => {
            if items.len() > types.len() {
                return Err(format!(
                    "Tuple contains extra items (expected {}, got {})",
                    types.len(),
                    items.len()
                ));
            }
            if items.len() < types.len() {
                return Err(format!(
                    "Tuple is missing items (expected {}, got {})",
                    types.len(),
                    items.len()
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, t) in items.iter().zip(types) {
                out.push(json_to_value(i, t, depth + 1)?);
            }
            CqlValue::Tuple(out)
        }
        (T::Tuple(_), _) => return Err(expected("a list representation of a tuple", j)),
        (T::Udt { name, fields, .. }, Json::Object(members)) => {
            let mut values: Vec<Option<CqlValue>> = vec![None; fields.len()];
            for (k, v) in members {
                let field = match k.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                    Some(q) if k.len() >= 2 => q.replace("\"\"", "\""),
                    _ => k.to_lowercase(),
                };
                let idx = fields
                    .iter()
                    .position(|(f, _)| *f == field)
                    .ok_or_else(|| format!("Unknown field '{field}' in value of user defined type {name}"))?;
                values[idx] = json_to_value(v, &fields[idx].1, depth + 1)?;
            }
            CqlValue::Udt(fields.iter().map(|(f, _)| f.clone()).zip(values).collect())
        }
        (T::Udt { .. }, _) => return Err(expected("a map", j)),
        (T::Frozen(_), _) => return Err("Invalid frozen type".into()),
    };
    Ok(Some(canonicalize(v, ty)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql3::ast::BindMarker;

    fn lit(l: Literal, t: ColumnType) -> Result<CqlValue, String> {
        literal_to_value(&l, &t)
    }
    fn int(s: &str) -> Literal {
        Literal::Integer(s.into())
    }
    fn string(s: &str) -> Literal {
        Literal::String(s.into())
    }
    fn ts(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }
    fn set_of(t: ColumnType) -> ColumnType {
        ColumnType::Set(Box::new(t))
    }
    fn map_of(k: ColumnType, v: ColumnType) -> ColumnType {
        ColumnType::Map(Box::new(k), Box::new(v))
    }
    fn udt() -> ColumnType {
        ColumnType::Udt {
            keyspace: "ks".into(),
            name: "addr".into(),
            fields: vec![
                ("a".into(), ColumnType::Int),
                ("b".into(), ColumnType::Uuid),
                ("c".into(), set_of(ColumnType::Text)),
                ("Foo".into(), ColumnType::Int),
            ],
        }
    }

    #[test]
    fn integer_literals() {
        use ColumnType as T;
        assert_eq!(lit(int("-5"), T::Int), Ok(CqlValue::Int(-5)));
        assert_eq!(
            lit(int("99999999999"), T::Int),
            Err("Unable to make int from '99999999999'".into())
        );
        assert_eq!(
            lit(int("32767"), T::SmallInt),
            Ok(CqlValue::SmallInt(32767))
        );
        assert_eq!(
            lit(int("32768"), T::SmallInt),
            Err("Unable to make short from '32768'".into())
        );
        assert_eq!(lit(int("-128"), T::TinyInt), Ok(CqlValue::TinyInt(-128)));
        assert!(lit(int("128"), T::TinyInt).is_err());
        assert_eq!(
            lit(int("9223372036854775807"), T::BigInt),
            Ok(CqlValue::BigInt(i64::MAX))
        );
        assert_eq!(lit(int("3"), T::Counter), Ok(CqlValue::Counter(3)));
        let big = "123456789012345678901234567890";
        assert_eq!(
            lit(int(big), T::Varint),
            Ok(CqlValue::Varint(pv::varint_from_str(big).unwrap()))
        );
        assert_eq!(lit(int("3"), T::Double), Ok(CqlValue::Double(3.0)));
        assert_eq!(lit(int("3"), T::Float), Ok(CqlValue::Float(3.0)));
        assert_eq!(
            lit(int("3"), T::Decimal),
            Ok(CqlValue::Decimal {
                unscaled: vec![3],
                scale: 0
            })
        );
        assert_eq!(
            lit(int("1000"), T::Timestamp),
            Ok(CqlValue::Timestamp(1000))
        );
        assert_eq!(lit(int("2147483648"), T::Date), Ok(CqlValue::Date(1 << 31)));
        assert_eq!(lit(int("10"), T::Time), Ok(CqlValue::Time(10)));
        assert_eq!(
            lit(int("5"), T::Text),
            Err("Invalid INTEGER constant (5) for \"value\" of type text".into())
        );
        assert_eq!(
            literal_to_value_for(&Literal::Float("1.5".into()), "v", &T::Int),
            Err("Invalid FLOAT constant (1.5) for \"v\" of type int".into())
        );
        assert_eq!(
            lit(int("12"), T::Duration),
            Err("Unable to convert '12' to a duration".into())
        );
    }

    #[test]
    fn other_literals() {
        use ColumnType as T;
        assert_eq!(
            lit(Literal::Float("1.5e3".into()), T::Decimal),
            Ok(CqlValue::Decimal {
                unscaled: vec![15],
                scale: -2
            })
        );
        assert_eq!(
            lit(Literal::Float("-0.5".into()), T::Double),
            Ok(CqlValue::Double(-0.5))
        );
        assert!(
            matches!(lit(Literal::Float("NaN".into()), T::Double), Ok(CqlValue::Double(f)) if f.is_nan())
        );
        assert_eq!(
            lit(Literal::Float("-Infinity".into()), T::Float),
            Ok(CqlValue::Float(f32::NEG_INFINITY))
        );
        assert_eq!(
            lit(Literal::Boolean(true), T::Boolean),
            Ok(CqlValue::Boolean(true))
        );
        assert_eq!(
            lit(string("héllo"), T::Text),
            Ok(CqlValue::Text("héllo".into()))
        );
        assert_eq!(
            lit(string("abc"), T::Ascii),
            Ok(CqlValue::Ascii("abc".into()))
        );
        assert_eq!(
            lit(string("héllo"), T::Ascii),
            Err("Invalid ASCII character in string literal".into())
        );
        assert_eq!(
            lit(Literal::Blob(vec![0xca, 0xfe]), T::Blob),
            Ok(CqlValue::Blob(vec![0xca, 0xfe]))
        );
        assert_eq!(
            lit(Literal::Blob(vec![1]), T::Int),
            Err("Invalid HEX constant (0x01) for \"value\" of type int".into())
        );
        let v4 = "123e4567-e89b-42d3-a456-426655440000";
        let v1 = "6bddc89a-5644-11e4-97fc-56847afe9799";
        assert!(lit(Literal::Uuid(v4.into()), T::Uuid).is_ok());
        assert!(lit(Literal::Uuid(v1.into()), T::Uuid).is_ok());
        assert!(lit(Literal::Uuid(v1.into()), T::Timeuuid).is_ok());
        assert_eq!(
            lit(Literal::Uuid(v4.into()), T::Timeuuid),
            Err("TimeUUID supports only version 1 UUIDs".into())
        );
        assert!(lit(string(v4), T::Uuid).is_err());
        assert_eq!(
            lit(string("127.0.0.1"), T::Inet),
            Ok(CqlValue::Inet("127.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            lit(string("::ffff:1.2.3.4"), T::Inet),
            Ok(CqlValue::Inet("1.2.3.4".parse().unwrap()))
        );
        assert_eq!(
            lit(string("::1"), T::Inet),
            Ok(CqlValue::Inet("::1".parse().unwrap()))
        );
        assert_eq!(
            lit(string("foo"), T::Inet),
            Err("Unable to make inet address from 'foo'".into())
        );
        assert_eq!(
            lit(string("2011-02-03"), T::Date),
            Ok(CqlValue::Date(pv::DATE_EPOCH + 15008))
        );
        assert!(lit(string("2011-02-30"), T::Date).is_err());
        assert!(lit(string("2011-2-3"), T::Date).is_err());
        assert_eq!(
            lit(string("-5877641-06-23"), T::Date),
            Ok(CqlValue::Date(0))
        );
        assert!(lit(string("-5877641-06-22"), T::Date)
            .unwrap_err()
            .contains("less than min supported date"));
        assert_eq!(
            lit(string("01:02:03.5"), T::Time),
            Ok(CqlValue::Time(3_723_500_000_000))
        );
        assert_eq!(
            lit(string("23:59:59"), T::Time),
            Ok(CqlValue::Time(86_399_000_000_000))
        );
        assert!(lit(string("24:00:00"), T::Time).is_err());
        assert!(lit(string("12:00"), T::Time).is_err());
        assert!(lit(string("12:00:00.1234567890"), T::Time).is_err());
        assert_eq!(
            lit(Literal::Duration("1h30m".into()), T::Duration),
            Ok(CqlValue::Duration {
                months: 0,
                days: 0,
                nanos: 5_400_000_000_000
            })
        );
        // Cassandra does not take string literals for durations.
        assert!(lit(string("1h"), T::Duration).is_err());
        assert_eq!(
            literal_to_value(&Literal::Null, &T::Counter),
            Err("Invalid null value for counter increment/decrement".into())
        );
        assert!(lit(int("1"), ColumnType::List(Box::new(T::Int))).is_err());
    }

    #[test]
    fn timestamps() {
        let base = 1_296_705_900_000; // 2011-02-03 04:05:00 UTC
        for s in [
            "2011-02-03 04:05",
            "2011-02-03 04:05:00",
            "2011-02-03 04:05:00.000",
            "2011-02-03T04:05",
            "2011-02-03T04:05:00Z",
            "2011-02-03 04:05+0000",
            "2011-02-03 04:05:00+00:00",
            "2011-02-03 04:05 +0000",
            "2011-02-03 04:05:00 UTC",
            "2011-02-03T05:05:00.000+01:00",
            "2011-02-03 00:05-04",
            "2011-02-03 06:35:00+0230",
            "1296705900000",
        ] {
            assert_eq!(ts(s), base, "{s}");
        }
        assert_eq!(ts("2011-02-03"), 1_296_691_200_000);
        assert_eq!(ts("2011-02-03Z"), 1_296_691_200_000);
        assert_eq!(ts("2011-02-03 +0100"), 1_296_691_200_000 - 3_600_000);
        // SimpleDateFormat reads the fraction as a count of milliseconds.
        assert_eq!(ts("2011-02-03 04:05:00.5"), base + 5);
        assert_eq!(ts("2011-02-03 04:05:00.123"), base + 123);
        assert_eq!(ts("1969-12-31 23:59:59.999"), -1);
        assert_eq!(ts("-5"), -5);
        for bad in [
            "2011-02-03 25:00",
            "2011-13-01",
            "2011-02-29",
            "2011-02-03 04:05:00.1234",
            "2011-02-03 04",
            "2011-02-03X",
            "yesterday",
            "",
            "2011-02-03 04:05+2500",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_timestamp("abcd").unwrap_err(),
            "Unable to coerce 'abcd' to a formatted date (long)"
        );
        assert!((ts("now") - functions::current_micros() / 1000).abs() < 5000);
        assert_eq!(ts("2000-02-29 12:00"), 951_825_600_000);
    }

    #[test]
    fn durations() {
        let d = |s: &str| parse_duration(s);
        assert_eq!(d("1h30m"), Ok((0, 0, 5_400_000_000_000)));
        assert_eq!(
            d("1y2mo3w4d5h6m7s8ms9us10ns"),
            Ok((
                14,
                25,
                5 * 3_600_000_000_000 + 6 * 60_000_000_000 + 7_008_009_010
            ))
        );
        assert_eq!(d("1Y2MO"), Ok((14, 0, 0)));
        assert_eq!(d("12µs"), Ok((0, 0, 12_000)));
        assert_eq!(d("-3d"), Ok((0, -3, 0)));
        assert_eq!(d("5ms"), Ok((0, 0, 5_000_000)));
        assert_eq!(d("P1Y2M3DT4H5M6S"), Ok((14, 3, 14_706_000_000_000)));
        assert_eq!(d("P2W"), Ok((0, 14, 0)));
        assert_eq!(d("PT5M"), Ok((0, 0, 300_000_000_000)));
        assert_eq!(d("P0001-02-03T04:05:06"), Ok((14, 3, 14_706_000_000_000)));
        assert_eq!(d("-P1D"), Ok((0, -1, 0)));
        assert_eq!(
            d("xyz"),
            Err("Unable to convert 'xyz' to a duration".into())
        );
        assert_eq!(
            d("1h2"),
            Err("Unable to convert '1h2' to a duration".into())
        );
        assert_eq!(
            d("P1Y2Y").unwrap_err(),
            "Unable to convert 'P1Y2Y' to a duration"
        );
        assert_eq!(
            d("1m1h").unwrap_err(),
            "Invalid duration. The minutes should be after hours"
        );
        assert_eq!(
            d("1h1h").unwrap_err(),
            "Invalid duration. The hours are specified multiple times"
        );
        assert_eq!(
            d("3000000000d").unwrap_err(),
            "Invalid duration. The total number of days must be less or equal to 2147483647"
        );
        assert!(d("").is_err());
        assert!(d("P1-2").is_err());
        assert!(d("99999999999999999999h").is_err());
    }

    fn eval_simple(t: &Term, ty: &ColumnType) -> Result<Evaluated, String> {
        evaluate_term(t, ty, &EvalContext::new(&[], 1_000_000))
    }

    fn ints(v: &[i32]) -> Vec<Term> {
        v.iter()
            .map(|i| Term::Literal(int(&i.to_string())))
            .collect()
    }

    #[test]
    fn evaluate_collections() {
        let st = set_of(ColumnType::Int);
        let got = eval_simple(&Term::Set(ints(&[3, -1, 3, 2])), &st).unwrap();
        let want = pv::serialize_to_vec(&CqlValue::Set(vec![
            CqlValue::Int(-1),
            CqlValue::Int(2),
            CqlValue::Int(3),
        ]));
        assert_eq!(got, Evaluated::Value(Bytes::from(want)));
        // `{}` is an empty set
        assert_eq!(
            eval_simple(&Term::Map(vec![]), &st).unwrap(),
            Evaluated::Value(Bytes::from_static(&[0, 0, 0, 0]))
        );
        let lt = ColumnType::List(Box::new(ColumnType::Int));
        let got = eval_simple(&Term::List(ints(&[3, 1])), &lt).unwrap();
        assert_eq!(
            got.bytes().unwrap().as_ref(),
            pv::serialize_to_vec(&CqlValue::List(vec![CqlValue::Int(3), CqlValue::Int(1)]))
        );
        assert_eq!(
            eval_simple(
                &Term::List(vec![Term::Literal(int("1")), Term::Literal(Literal::Null)]),
                &lt
            )
            .unwrap_err(),
            "null is not supported inside collections"
        );
        assert_eq!(
            evaluate_term_for(&Term::List(ints(&[1])), "s", &st, &EvalContext::new(&[], 0))
                .unwrap_err(),
            "Invalid list literal for s of type set<int>"
        );
        let mt = map_of(ColumnType::Text, ColumnType::Int);
        let m = Term::Map(vec![
            (Term::Literal(string("b")), Term::Literal(int("2"))),
            (Term::Literal(string("a")), Term::Literal(int("1"))),
            (Term::Literal(string("b")), Term::Literal(int("3"))),
        ]);
        let got = eval_simple(&m, &mt).unwrap();
        assert_eq!(
            pv::deserialize(&mt, got.bytes().unwrap()).unwrap(),
            CqlValue::Map(vec![
                (CqlValue::Text("a".into()), CqlValue::Int(1)),
                (CqlValue::Text("b".into()), CqlValue::Int(3)),
            ])
        );
        // sets of text sort by bytes
        let tt = set_of(ColumnType::Text);
        let got = eval_simple(
            &Term::Set(vec![
                Term::Literal(string("b")),
                Term::Literal(string("B")),
                Term::Literal(string("a")),
            ]),
            &tt,
        )
        .unwrap();
        assert_eq!(
            pv::deserialize(&tt, got.bytes().unwrap()).unwrap(),
            CqlValue::Set(vec![
                CqlValue::Text("B".into()),
                CqlValue::Text("a".into()),
                CqlValue::Text("b".into())
            ])
        );
    }

    #[test]
    fn evaluate_tuples_and_udts() {
        let tt = ColumnType::Tuple(vec![ColumnType::Int, ColumnType::Text]);
        let got = eval_simple(
            &Term::Tuple(vec![Term::Literal(int("1")), Term::Literal(Literal::Null)]),
            &tt,
        )
        .unwrap();
        assert_eq!(
            pv::deserialize(&tt, got.bytes().unwrap()).unwrap(),
            CqlValue::Tuple(vec![Some(CqlValue::Int(1)), None])
        );
        assert!(eval_simple(&Term::Tuple(ints(&[1, 2, 3])), &tt).is_err());
        let ut = udt();
        let got = eval_simple(
            &Term::Udt(vec![
                ("Foo".into(), Term::Literal(int("7"))),
                ("a".into(), Term::Literal(int("1"))),
            ]),
            &ut,
        )
        .unwrap();
        assert_eq!(
            pv::deserialize(&ut, got.bytes().unwrap()).unwrap(),
            CqlValue::Udt(vec![
                ("a".into(), Some(CqlValue::Int(1))),
                ("b".into(), None),
                ("c".into(), None),
                ("Foo".into(), Some(CqlValue::Int(7))),
            ])
        );
        assert_eq!(
            eval_simple(
                &Term::Udt(vec![("zz".into(), Term::Literal(int("1")))]),
                &ut
            )
            .unwrap_err(),
            "Unknown field 'zz' in value of user defined type addr"
        );
    }

    #[test]
    fn evaluate_bind_markers() {
        let m = |i| {
            Term::Bind(BindMarker {
                index: i,
                name: None,
            })
        };
        let one = 1i32.to_be_bytes();
        let unsorted = pv::serialize_to_vec(&CqlValue::Set(vec![
            CqlValue::Int(2),
            CqlValue::Int(1),
            CqlValue::Int(2),
        ]));
        let values = [
            BoundValue::Bytes(&one),
            BoundValue::Null,
            BoundValue::Unset,
            BoundValue::Bytes(&[0, 1]),
            BoundValue::Bytes(&unsorted),
        ];
        let ctx = EvalContext::new(&values, 0);
        assert_eq!(
            evaluate_term(&m(0), &ColumnType::Int, &ctx).unwrap(),
            Evaluated::Value(Bytes::copy_from_slice(&one))
        );
        assert_eq!(
            evaluate_term(&m(1), &ColumnType::Int, &ctx).unwrap(),
            Evaluated::Null
        );
        assert_eq!(
            evaluate_term(&m(2), &ColumnType::Int, &ctx).unwrap(),
            Evaluated::Unset
        );
        assert_eq!(
            evaluate_term(&m(3), &ColumnType::Int, &ctx).unwrap_err(),
            "Expected 4 or 0 byte int (2)"
        );
        assert!(evaluate_term(&m(9), &ColumnType::Int, &ctx).is_err());
        let st = set_of(ColumnType::Int);
        let got = evaluate_term(&m(4), &st, &ctx).unwrap();
        assert_eq!(
            pv::deserialize(&st, got.bytes().unwrap()).unwrap(),
            CqlValue::Set(vec![CqlValue::Int(1), CqlValue::Int(2)])
        );
        // markers inside collection literals
        let lt = ColumnType::List(Box::new(ColumnType::Int));
        let got = evaluate_term(&Term::List(vec![m(0), m(0)]), &lt, &ctx).unwrap();
        assert_eq!(
            pv::deserialize(&lt, got.bytes().unwrap()).unwrap(),
            CqlValue::List(vec![CqlValue::Int(1), CqlValue::Int(1)])
        );
        assert!(evaluate_term(&Term::List(vec![m(1)]), &lt, &ctx).is_err());
        // type hints
        let hinted = Term::TypeHint {
            ty: CqlType::Native(ColumnType::Int),
            term: Box::new(m(0)),
        };
        assert!(evaluate_term(&hinted, &ColumnType::Int, &ctx).is_ok());
        assert!(evaluate_term(&hinted, &ColumnType::Text, &ctx).is_err());
    }

    #[test]
    fn evaluate_functions() {
        let call = |name: &str, args: Vec<Term>| Term::FunctionCall {
            name: name.into(),
            args,
        };
        let ctx = EvalContext::new(&[], 1_296_705_900_000_000);
        let got = evaluate_term(&call("now", vec![]), &ColumnType::Timeuuid, &ctx).unwrap();
        assert_eq!(got.bytes().unwrap()[6] >> 4, 1);
        // timeuuid result fits a uuid column, not a text one
        assert!(evaluate_term(&call("now", vec![]), &ColumnType::Uuid, &ctx).is_ok());
        assert!(evaluate_term(&call("now", vec![]), &ColumnType::Text, &ctx)
            .unwrap_err()
            .starts_with("Type error"));
        // a string argument picks the date overload of totimestamp
        let got = evaluate_term(
            &call("totimestamp", vec![Term::Literal(string("2011-02-03"))]),
            &ColumnType::Timestamp,
            &ctx,
        )
        .unwrap();
        assert_eq!(
            got.bytes().unwrap().as_ref(),
            1_296_691_200_000i64.to_be_bytes()
        );
        let got = evaluate_term(
            &call(
                "system.totimestamp",
                vec![call(
                    "mintimeuuid",
                    vec![Term::Literal(string("2011-02-03 04:05"))],
                )],
            ),
            &ColumnType::Timestamp,
            &ctx,
        )
        .unwrap();
        assert_eq!(
            got.bytes().unwrap().as_ref(),
            1_296_705_900_000i64.to_be_bytes()
        );
        let got = evaluate_term(
            &call("currenttimestamp", vec![]),
            &ColumnType::Timestamp,
            &ctx,
        )
        .unwrap();
        assert_eq!(
            got.bytes().unwrap().as_ref(),
            1_296_705_900_000i64.to_be_bytes()
        );
        let got = evaluate_term(
            &call(
                "blobasint",
                vec![call("intasblob", vec![Term::Literal(int("7"))])],
            ),
            &ColumnType::Int,
            &ctx,
        )
        .unwrap();
        assert_eq!(got.bytes().unwrap().as_ref(), 7i32.to_be_bytes());
        // a bind marker can't pick between totimestamp overloads
        let bound = [BoundValue::Null];
        let ctx2 = EvalContext::new(&bound, 0);
        assert!(evaluate_term(
            &call(
                "totimestamp",
                vec![Term::Bind(BindMarker {
                    index: 0,
                    name: None
                })]
            ),
            &ColumnType::Timestamp,
            &ctx2
        )
        .unwrap_err()
        .starts_with("Ambiguous call"));
        assert_eq!(
            evaluate_term(&call("nope", vec![]), &ColumnType::Int, &ctx).unwrap_err(),
            "Unknown function 'nope'"
        );
        assert_eq!(
            evaluate_term(
                &call("tojson", vec![Term::Literal(int("1"))]),
                &ColumnType::Text,
                &ctx
            )
            .unwrap_err(),
            "toJson() may only be used within the selection clause"
        );
        let lt = ColumnType::List(Box::new(ColumnType::Int));
        let got = evaluate_term(
            &call("fromjson", vec![Term::Literal(string("[2, 1]"))]),
            &lt,
            &ctx,
        )
        .unwrap();
        assert_eq!(
            pv::deserialize(&lt, got.bytes().unwrap()).unwrap(),
            CqlValue::List(vec![CqlValue::Int(2), CqlValue::Int(1)])
        );
        assert_eq!(
            evaluate_term(
                &call("fromjson", vec![Term::Literal(string("null"))]),
                &lt,
                &ctx
            )
            .unwrap(),
            Evaluated::Null
        );
    }

    #[test]
    fn json_output() {
        use ColumnType as T;
        let j = |v: CqlValue, t: T| to_json(Some(&v), &t);
        assert_eq!(to_json(None, &T::Int), "null");
        assert_eq!(
            j(CqlValue::Text("a\"b\\c\n\u{0}é".into()), T::Text),
            "\"a\\\"b\\\\c\\n\\u0000é\""
        );
        assert_eq!(
            j(CqlValue::BigInt(-123123123123), T::BigInt),
            "-123123123123"
        );
        assert_eq!(
            j(CqlValue::Blob(vec![0, 0, 0, 1]), T::Blob),
            "\"0x00000001\""
        );
        assert_eq!(j(CqlValue::Blob(vec![]), T::Blob), "\"0x\"");
        assert_eq!(j(CqlValue::Boolean(false), T::Boolean), "false");
        assert_eq!(
            j(CqlValue::Date(pv::DATE_EPOCH + 6290), T::Date),
            "\"1987-03-23\""
        );
        let dec = |s: &str| {
            let (unscaled, scale) = pv::decimal_from_str(s).unwrap();
            CqlValue::Decimal { unscaled, scale }
        };
        assert_eq!(j(dec("123123.123123"), T::Decimal), "123123.123123");
        assert_eq!(j(dec("-1.23E-12"), T::Decimal), "-1.23E-12");
        assert_eq!(j(dec("1.5e3"), T::Decimal), "1.5E+3");
        assert_eq!(j(CqlValue::Double(123123.0), T::Double), "123123.0");
        assert_eq!(j(CqlValue::Double(f64::NAN), T::Double), "null");
        assert_eq!(j(CqlValue::Float(123.123), T::Float), "123.123");
        assert_eq!(
            j(CqlValue::Inet("::1".parse().unwrap()), T::Inet),
            "\"0:0:0:0:0:0:0:1\""
        );
        assert_eq!(
            j(CqlValue::Inet("127.0.0.1".parse().unwrap()), T::Inet),
            "\"127.0.0.1\""
        );
        assert_eq!(j(CqlValue::Time(123), T::Time), "\"00:00:00.000000123\"");
        assert_eq!(
            j(CqlValue::Timestamp(ts("2014-01-01")), T::Timestamp),
            "\"2014-01-01 00:00:00.000Z\""
        );
        let u = pv::parse_uuid("6bddc89a-5644-11e4-97fc-56847afe9799").unwrap();
        assert_eq!(
            j(CqlValue::Timeuuid(u), T::Timeuuid),
            "\"6bddc89a-5644-11e4-97fc-56847afe9799\""
        );
        assert_eq!(
            j(
                CqlValue::Varint(pv::varint_from_str("123123123123123123123").unwrap()),
                T::Varint
            ),
            "123123123123123123123"
        );
        assert_eq!(
            j(
                CqlValue::Duration {
                    months: 13,
                    days: 2,
                    nanos: 36_300_000_000_000
                },
                T::Duration
            ),
            "\"1y1mo2d10h5m\""
        );
        assert_eq!(
            j(
                CqlValue::List(vec![CqlValue::Int(1), CqlValue::Int(2)]),
                T::List(Box::new(T::Int))
            ),
            "[1, 2]"
        );
        assert_eq!(
            j(
                CqlValue::Map(vec![(CqlValue::Int(1), CqlValue::Boolean(true))]),
                map_of(T::Int, T::Boolean)
            ),
            "{\"1\": true}"
        );
        let tk = T::Tuple(vec![T::Int, T::Text]);
        assert_eq!(
            j(
                CqlValue::Map(vec![(
                    CqlValue::Tuple(vec![
                        Some(CqlValue::Int(0)),
                        Some(CqlValue::Text("a".into()))
                    ]),
                    CqlValue::Boolean(true)
                )]),
                map_of(tk.clone(), T::Boolean)
            ),
            "{\"[0, \\\"a\\\"]\": true}"
        );
        assert_eq!(
            j(CqlValue::Tuple(vec![Some(CqlValue::Int(1)), None]), tk),
            "[1, null]"
        );
        assert_eq!(
            j(
                CqlValue::Udt(vec![
                    ("a".into(), Some(CqlValue::Int(1))),
                    ("b".into(), None),
                    (
                        "c".into(),
                        Some(CqlValue::Set(vec![CqlValue::Text("bar".into())]))
                    ),
                    ("Foo".into(), Some(CqlValue::Int(0))),
                ]),
                udt()
            ),
            "{\"a\": 1, \"b\": null, \"c\": [\"bar\"], \"\\\"Foo\\\"\": 0}"
        );
    }

    #[test]
    fn json_input() {
        use ColumnType as T;
        let f = |s: &str, t: T| from_json(s, &t);
        assert_eq!(f("null", T::Int), Ok(None));
        assert_eq!(f("123123", T::Int), Ok(Some(CqlValue::Int(123123))));
        assert_eq!(f("\"123123\"", T::Int), Ok(Some(CqlValue::Int(123123))));
        assert!(f("2147483648", T::Int)
            .unwrap_err()
            .starts_with("Expected an int value, but got a Long"));
        assert!(f("123.456", T::Int)
            .unwrap_err()
            .starts_with("Expected an int value, but got a Double"));
        assert!(f("\"xyzz\"", T::Int)
            .unwrap_err()
            .starts_with("Unable to make int from"));
        assert_eq!(
            f("true", T::Int).unwrap_err(),
            "Expected an int value, but got a Boolean: true"
        );
        assert!(f("9223372036854775808", T::BigInt)
            .unwrap_err()
            .starts_with("Expected a bigint value, but got a"));
        assert!(f("32768", T::SmallInt)
            .unwrap_err()
            .starts_with("Unable to make short from"));
        assert!(f("123.456", T::TinyInt)
            .unwrap_err()
            .starts_with("Unable to make byte from"));
        assert_eq!(
            f("\"0x00000001\"", T::Blob),
            Ok(Some(CqlValue::Blob(vec![0, 0, 0, 1])))
        );
        assert!(f("\"123\"", T::Blob)
            .unwrap_err()
            .contains("String representation of blob is missing 0x prefix: 123"));
        assert!(f("\"0x123\"", T::Blob)
            .unwrap_err()
            .starts_with("Value '0x123' is not a valid blob representation"));
        assert!(f("123", T::Blob)
            .unwrap_err()
            .starts_with("Value '123' is not a valid blob representation"));
        assert_eq!(
            f("\"false\"", T::Boolean),
            Ok(Some(CqlValue::Boolean(false)))
        );
        assert!(f("123", T::Boolean)
            .unwrap_err()
            .starts_with("Expected a boolean value, but got a Integer"));
        assert_eq!(
            f("\"1987-03-23\"", T::Date),
            Ok(Some(CqlValue::Date(pv::DATE_EPOCH + 6290)))
        );
        assert!(f("123", T::Date)
            .unwrap_err()
            .starts_with("Expected a string representation of a date"));
        let dec = |s: &str| {
            let (unscaled, scale) = pv::decimal_from_str(s).unwrap();
            Some(CqlValue::Decimal { unscaled, scale })
        };
        assert_eq!(f("123123.123123", T::Decimal), Ok(dec("123123.123123")));
        assert_eq!(f("\"-1.23E-12\"", T::Decimal), Ok(dec("-1.23E-12")));
        assert_eq!(f("1e-20", T::Decimal), Ok(dec("1.0E-20")));
        assert!(f("true", T::Decimal)
            .unwrap_err()
            .starts_with("Value 'true' is not a valid representation of a decimal value"));
        assert_eq!(f("123123", T::Double), Ok(Some(CqlValue::Double(123123.0))));
        assert_eq!(
            f("\"123123.0\"", T::Float),
            Ok(Some(CqlValue::Float(123123.0)))
        );
        assert!(f("true", T::Float)
            .unwrap_err()
            .starts_with("Expected a float value, but got a"));
        assert_eq!(
            f("\"::1\"", T::Inet),
            Ok(Some(CqlValue::Inet("::1".parse().unwrap())))
        );
        assert_eq!(
            f("\"xyzz\"", T::Inet).unwrap_err(),
            "Unable to make inet address from 'xyzz'"
        );
        assert_eq!(
            f("\"\\u2013\"", T::Text),
            Ok(Some(CqlValue::Text("\u{2013}".into())))
        );
        assert!(f("123", T::Text)
            .unwrap_err()
            .starts_with("Expected a UTF-8 string, but got a Integer"));
        assert_eq!(
            f("\"\\u1fff\"", T::Ascii).unwrap_err(),
            "Invalid ASCII character in string literal"
        );
        assert_eq!(
            f("\"07:35:07.000111222\"", T::Time),
            Ok(Some(CqlValue::Time(27_307_000_111_222)))
        );
        assert_eq!(
            f("123123123123", T::Timestamp),
            Ok(Some(CqlValue::Timestamp(123123123123)))
        );
        assert_eq!(
            f("\"2014-01-01\"", T::Timestamp),
            Ok(Some(CqlValue::Timestamp(1_388_534_400_000)))
        );
        assert!(f("123.456", T::Timestamp).unwrap_err().starts_with(
            "Expected a long or a datestring representation of a timestamp value, but got a Double"
        ));
        assert_eq!(
            f("\"00000000-0000-0000-0000-000000000000\"", T::Timeuuid).unwrap_err(),
            "TimeUUID supports only version 1 UUIDs"
        );
        assert_eq!(
            f("\"6BDDC89A-5644-11E4-97FC-56847AFE9799\"", T::Uuid),
            Ok(Some(CqlValue::Uuid(
                pv::parse_uuid("6bddc89a-5644-11e4-97fc-56847afe9799").unwrap()
            )))
        );
        assert!(f("\"1234567890123456789012345678901234567890\"", T::Varint).is_ok());
        assert_eq!(
            f("123123.123", T::Varint).unwrap_err(),
            "Value '123123.123' is not a valid representation of a varint value"
        );
        assert_eq!(
            f("\"\"", T::Varint).unwrap_err(),
            "Value '' is not a valid representation of a varint value"
        );
        assert_eq!(
            f("\"P2W\"", T::Duration),
            Ok(Some(CqlValue::Duration {
                months: 0,
                days: 14,
                nanos: 0
            }))
        );
        // collections
        let lt = T::List(Box::new(T::Int));
        assert_eq!(f("[]", lt.clone()), Ok(Some(CqlValue::List(vec![]))));
        assert_eq!(
            f("[null]", lt.clone()).unwrap_err(),
            "Invalid null element in list"
        );
        assert_eq!(
            f("123", lt).unwrap_err(),
            "Expected a list, but got a Integer: 123"
        );
        let st = set_of(T::Int);
        assert_eq!(
            f("[3, 1, 2, 1]", st),
            Ok(Some(CqlValue::Set(vec![
                CqlValue::Int(1),
                CqlValue::Int(2),
                CqlValue::Int(3)
            ])))
        );
        let mt = map_of(T::Ascii, T::Int);
        assert_eq!(
            f("{\"b\": 2, \"a\": 1}", mt.clone()),
            Ok(Some(CqlValue::Map(vec![
                (CqlValue::Ascii("a".into()), CqlValue::Int(1)),
                (CqlValue::Ascii("b".into()), CqlValue::Int(2)),
            ])))
        );
        assert_eq!(
            f("{\"a\": null}", mt).unwrap_err(),
            "Invalid null value in map"
        );
        let tk = map_of(T::Tuple(vec![T::Int, T::Text]), T::Boolean);
        assert_eq!(
            f(
                "{\"[1, \\\"b\\\"]\": false, \"[0, \\\"a\\\"]\": true}",
                tk.clone()
            )
            .map(|v| to_json(v.as_ref(), &tk)),
            Ok("{\"[0, \\\"a\\\"]\": true, \"[1, \\\"b\\\"]\": false}".into())
        );
        let um = map_of(T::Uuid, T::Int);
        assert!(f("{\"6bddc89a-5644-11e4-97fc-56847afe9799\": 1}", um).is_ok());
        let tt = T::Tuple(vec![T::Int, T::Ascii, T::Uuid]);
        assert!(f(
            "[1, \"foobar\", \"6bddc89a-5644-11e4-97fc-56847afe9799\", 1]",
            tt.clone()
        )
        .unwrap_err()
        .starts_with("Tuple contains extra items"));
        assert!(f("[1, \"foobar\"]", tt.clone())
            .unwrap_err()
            .starts_with("Tuple is missing items"));
        assert!(f("[1, null, \"6bddc89a-5644-11e4-97fc-56847afe9799\"]", tt).is_ok());
        let ut = udt();
        let got = f(
            "{\"A\": 1, \"\\\"Foo\\\"\": 2, \"c\": [\"foo\", \"bar\"]}",
            ut.clone(),
        )
        .unwrap();
        assert_eq!(
            got,
            Some(CqlValue::Udt(vec![
                ("a".into(), Some(CqlValue::Int(1))),
                ("b".into(), None),
                (
                    "c".into(),
                    Some(CqlValue::Set(vec![
                        CqlValue::Text("bar".into()),
                        CqlValue::Text("foo".into())
                    ]))
                ),
                ("Foo".into(), Some(CqlValue::Int(2))),
            ]))
        );
        assert_eq!(
            f("{\"xxx\": 1}", ut.clone()).unwrap_err(),
            "Unknown field 'xxx' in value of user defined type addr"
        );
        assert!(f("{\"foo\": 1}", ut).is_err());
        // malformed JSON
        assert!(f("{\"a\": 1", T::Int)
            .unwrap_err()
            .starts_with("Could not decode JSON string"));
        assert!(f("01", T::Int).is_err());
        assert!(f("[1,]", T::List(Box::new(T::Int))).is_err());
        assert!(f(&"[".repeat(10_000), T::Int).is_err());
    }

    #[test]
    fn json_round_trips() {
        use ColumnType as T;
        let cases: Vec<(T, &str)> = vec![
            (T::Duration, "\"6h40m\""),
            (T::Timestamp, "\"2011-02-03 04:05:00.000Z\""),
            (T::Time, "\"07:35:07.000111222\""),
            (T::Date, "\"-0001-12-31\""),
            (
                map_of(set_of(T::Int), T::Boolean),
                "{\"[0, 1, 2]\": true, \"[3, 4, 5]\": false}",
            ),
            (T::Decimal, "-1.23E-12"),
            (T::Text, "\"\\u0001\\t\""),
        ];
        for (t, s) in cases {
            let v = from_json(s, &t).unwrap();
            assert_eq!(to_json(v.as_ref(), &t), s, "{t}");
        }
    }
}
