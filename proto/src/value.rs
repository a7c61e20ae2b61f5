//! CQL data types and values (`[option]` type descriptions and `[value]` bodies).

use std::net::IpAddr;

/// A CQL column type, as written in schema (`frozen<map<text, int>>`) and as
/// sent in result metadata (`[option]`). `Frozen` only ever wraps a
/// collection, tuple or UDT; the wire form drops it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Custom(String),
    Ascii,
    BigInt,
    Blob,
    Boolean,
    Counter,
    Decimal,
    Double,
    Float,
    Int,
    Timestamp,
    Uuid,
    /// `text` and `varchar` are one type (wire id 0x000D).
    Text,
    Varint,
    Timeuuid,
    Inet,
    Date,
    Time,
    SmallInt,
    TinyInt,
    Duration,
    List(Box<ColumnType>),
    Map(Box<ColumnType>, Box<ColumnType>),
    Set(Box<ColumnType>),
    Udt {
        keyspace: String,
        name: String,
        fields: Vec<(String, ColumnType)>,
    },
    Tuple(Vec<ColumnType>),
    Frozen(Box<ColumnType>),
}

/// A deserialised CQL value. `None` in an `Option<CqlValue>` is CQL null.
#[derive(Debug, Clone, PartialEq)]
pub enum CqlValue {
    Ascii(String),
    BigInt(i64),
    Blob(Vec<u8>),
    Boolean(bool),
    Counter(i64),
    /// Unscaled value as big-endian two's complement, and the scale.
    Decimal {
        unscaled: Vec<u8>,
        scale: i32,
    },
    Double(f64),
    Float(f32),
    Int(i32),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
    Text(String),
    /// Big-endian two's complement, minimal length.
    Varint(Vec<u8>),
    Timeuuid([u8; 16]),
    Inet(IpAddr),
    /// Days since the epoch, centred on 2^31 (the wire form).
    Date(u32),
    /// Nanoseconds since midnight.
    Time(i64),
    SmallInt(i16),
    TinyInt(i8),
    Duration {
        months: i32,
        days: i32,
        nanos: i64,
    },
    List(Vec<CqlValue>),
    Set(Vec<CqlValue>),
    Map(Vec<(CqlValue, CqlValue)>),
    Tuple(Vec<Option<CqlValue>>),
    Udt(Vec<(String, Option<CqlValue>)>),
    /// A zero-length value of a type for which that is not a natural value
    /// (e.g. an empty `int`), which CQL allows.
    Empty,
}

use std::cmp::Ordering;
use std::fmt;

// ---------------------------------------------------------------------------
// Type names: parsing and display
// ---------------------------------------------------------------------------

/// Cassandra's reserved keywords: identifiers that must be double-quoted
/// when printed even though they are lower-case.
const RESERVED_KEYWORDS: &[&str] = &[
    "add",
    "allow",
    "alter",
    "and",
    "apply",
    "asc",
    "authorize",
    "batch",
    "begin",
    "by",
    "columnfamily",
    "create",
    "delete",
    "desc",
    "describe",
    "drop",
    "entries",
    "execute",
    "from",
    "full",
    "grant",
    "if",
    "in",
    "index",
    "infinity",
    "insert",
    "into",
    "is",
    "keyspace",
    "limit",
    "materialized",
    "modify",
    "nan",
    "norecursive",
    "not",
    "null",
    "of",
    "on",
    "or",
    "order",
    "primary",
    "rename",
    "replace",
    "revoke",
    "schema",
    "select",
    "set",
    "table",
    "to",
    "token",
    "truncate",
    "unlogged",
    "unset",
    "update",
    "use",
    "using",
    "view",
    "where",
    "with",
];

/// Quotes an identifier the way Cassandra's `ColumnIdentifier.maybeQuote`
/// does: names matching `[a-z][a-z0-9_]*` that are not reserved keywords are
/// printed as-is, anything else is double-quoted with `"` doubled.
pub fn maybe_quote_identifier(name: &str) -> String {
    let mut chars = name.chars();
    let plain = matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && !RESERVED_KEYWORDS.contains(&name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

impl ColumnType {
    /// The CQL name of a native (non-collection, non-custom) type, e.g.
    /// `"bigint"`; `None` for collections, tuples, UDTs and custom types.
    pub fn cql_name(&self) -> Option<&'static str> {
        Some(match self {
            ColumnType::Ascii => "ascii",
            ColumnType::BigInt => "bigint",
            ColumnType::Blob => "blob",
            ColumnType::Boolean => "boolean",
            ColumnType::Counter => "counter",
            ColumnType::Date => "date",
            ColumnType::Decimal => "decimal",
            ColumnType::Double => "double",
            ColumnType::Duration => "duration",
            ColumnType::Float => "float",
            ColumnType::Inet => "inet",
            ColumnType::Int => "int",
            ColumnType::SmallInt => "smallint",
            ColumnType::Text => "text",
            ColumnType::Time => "time",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Timeuuid => "timeuuid",
            ColumnType::TinyInt => "tinyint",
            ColumnType::Uuid => "uuid",
            ColumnType::Varint => "varint",
            _ => return None,
        })
    }

    /// The native type called `name` (case-insensitive; `varchar` is `text`).
    pub fn native_from_name(name: &str) -> Option<ColumnType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "ascii" => ColumnType::Ascii,
            "bigint" => ColumnType::BigInt,
            "blob" => ColumnType::Blob,
            "boolean" => ColumnType::Boolean,
            "counter" => ColumnType::Counter,
            "date" => ColumnType::Date,
            "decimal" => ColumnType::Decimal,
            "double" => ColumnType::Double,
            "duration" => ColumnType::Duration,
            "float" => ColumnType::Float,
            "inet" => ColumnType::Inet,
            "int" => ColumnType::Int,
            "smallint" => ColumnType::SmallInt,
            "text" | "varchar" => ColumnType::Text,
            "time" => ColumnType::Time,
            "timestamp" => ColumnType::Timestamp,
            "timeuuid" => ColumnType::Timeuuid,
            "tinyint" => ColumnType::TinyInt,
            "uuid" => ColumnType::Uuid,
            "varint" => ColumnType::Varint,
            _ => return None,
        })
    }

    /// The type without a `Frozen` wrapper.
    pub fn unfrozen(&self) -> &ColumnType {
        let mut t = self;
        while let ColumnType::Frozen(inner) = t {
            t = inner;
        }
        t
    }

    /// True for `list`, `set` and `map` (frozen or not).
    pub fn is_collection(&self) -> bool {
        matches!(
            self.unfrozen(),
            ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..)
        )
    }

    /// True when values of this type are stored as several cells: a
    /// non-frozen collection or a non-frozen UDT at top level.
    pub fn is_multi_cell(&self) -> bool {
        matches!(
            self,
            ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..) | ColumnType::Udt { .. }
        )
    }

    /// True for `counter`.
    pub fn is_counter(&self) -> bool {
        matches!(self.unfrozen(), ColumnType::Counter)
    }

    /// Parses a type as written in `system_schema.columns.type`
    /// (`frozen<map<text, int>>`). User types are not known here: any
    /// non-native name is an error; see [`ColumnType::parse_with`].
    pub fn parse(s: &str) -> Result<ColumnType, String> {
        ColumnType::parse_with(s, &|_| None)
    }

    /// Parses a type, resolving user-defined type names (unquoted names
    /// lower-cased, `"Quoted"` names verbatim; `ks.name` passed as written)
    /// with `resolve_udt`.
    pub fn parse_with(
        s: &str,
        resolve_udt: &dyn Fn(&str) -> Option<ColumnType>,
    ) -> Result<ColumnType, String> {
        let mut p = TypeParser {
            s: s.as_bytes(),
            src: s,
            pos: 0,
            resolve: resolve_udt,
        };
        let t = p.parse_type(0)?;
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(format!(
                "Invalid type '{s}': unexpected trailing characters"
            ));
        }
        Ok(t)
    }

    fn fmt_with(&self, f: &mut fmt::Formatter<'_>, with_frozen: bool) -> fmt::Result {
        match self {
            ColumnType::Custom(class) => write!(f, "'{}'", class.replace('\'', "''")),
            ColumnType::Frozen(inner) => match inner.unfrozen() {
                ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..) => {
                    if with_frozen {
                        f.write_str("frozen<")?;
                    }
                    inner.unfrozen().fmt_collection(f, true)?;
                    if with_frozen {
                        f.write_str(">")?;
                    }
                    Ok(())
                }
                ColumnType::Udt { name, .. } => {
                    if with_frozen {
                        write!(f, "frozen<{}>", maybe_quote_identifier(name))
                    } else {
                        f.write_str(&maybe_quote_identifier(name))
                    }
                }
                other => other.fmt_with(f, with_frozen),
            },
            ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..) => {
                self.fmt_collection(f, false)
            }
            ColumnType::Udt { name, .. } => f.write_str(&maybe_quote_identifier(name)),
            ColumnType::Tuple(items) => {
                if with_frozen {
                    f.write_str("frozen<")?;
                }
                f.write_str("tuple<")?;
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    t.fmt_nested(f, true)?;
                }
                f.write_str(">")?;
                if with_frozen {
                    f.write_str(">")?;
                }
                Ok(())
            }
            native => f.write_str(native.cql_name().unwrap_or("blob")),
        }
    }

    /// Formats a type nested in a collection, tuple or UDT. Nested
    /// collections, tuples and UDTs are always frozen.
    fn fmt_nested(&self, f: &mut fmt::Formatter<'_>, with_frozen: bool) -> fmt::Result {
        match self.unfrozen() {
            t @ (ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..)) => {
                if with_frozen {
                    f.write_str("frozen<")?;
                }
                t.fmt_collection(f, true)?;
                if with_frozen {
                    f.write_str(">")?;
                }
                Ok(())
            }
            ColumnType::Udt { name, .. } if with_frozen => {
                write!(f, "frozen<{}>", maybe_quote_identifier(name))
            }
            t => t.fmt_with(f, with_frozen),
        }
    }

    fn fmt_collection(&self, f: &mut fmt::Formatter<'_>, frozen: bool) -> fmt::Result {
        // Inside a frozen collection nested types print without `frozen<>`;
        // inside a multi-cell one they print with it.
        let nested_with_frozen = !frozen;
        match self {
            ColumnType::List(e) => {
                f.write_str("list<")?;
                e.fmt_nested(f, nested_with_frozen)?;
            }
            ColumnType::Set(e) => {
                f.write_str("set<")?;
                e.fmt_nested(f, nested_with_frozen)?;
            }
            ColumnType::Map(k, v) => {
                f.write_str("map<")?;
                k.fmt_nested(f, nested_with_frozen)?;
                f.write_str(", ")?;
                v.fmt_nested(f, nested_with_frozen)?;
            }
            _ => return self.fmt_with(f, true),
        }
        f.write_str(">")
    }
}

/// Cassandra's `system_schema` type string: `map<text, int>`,
/// `frozen<list<int>>`, `frozen<tuple<int, text>>`, UDTs by (quoted if
/// needed) name, custom types as a quoted class name.
impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_with(f, true)
    }
}

struct TypeParser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
    resolve: &'a dyn Fn(&str) -> Option<ColumnType>,
}

impl TypeParser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("Invalid type '{}': {}", self.src, what)
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    /// An identifier (`[A-Za-z0-9_.]+`, lower-cased) or a `"quoted"` one
    /// (verbatim). Returns the name and whether it was quoted.
    fn ident(&mut self) -> Result<(String, bool), String> {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&b'"') {
            self.pos += 1;
            let mut out = Vec::new();
            loop {
                match self.s.get(self.pos) {
                    None => return Err(self.err("unterminated quoted name")),
                    Some(b'"') if self.s.get(self.pos + 1) == Some(&b'"') => {
                        out.push(b'"');
                        self.pos += 2;
                    }
                    Some(b'"') => {
                        self.pos += 1;
                        break;
                    }
                    Some(&c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
            let name = String::from_utf8(out).map_err(|_| self.err("invalid UTF-8"))?;
            return Ok((name, true));
        }
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric()
                || self.s[self.pos] == b'_'
                || self.s[self.pos] == b'.')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a type name"));
        }
        Ok((self.src[start..self.pos].to_ascii_lowercase(), false))
    }

    fn parse_args(&mut self, depth: usize) -> Result<Vec<ColumnType>, String> {
        self.expect(b'<')?;
        let mut args = vec![self.parse_type(depth + 1)?];
        loop {
            self.skip_ws();
            match self.s.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    args.push(self.parse_type(depth + 1)?);
                }
                Some(b'>') => {
                    self.pos += 1;
                    return Ok(args);
                }
                _ => return Err(self.err("expected ',' or '>'")),
            }
        }
    }

    fn parse_type(&mut self, depth: usize) -> Result<ColumnType, String> {
        if depth > 64 {
            return Err(self.err("nested too deeply"));
        }
        self.skip_ws();
        if self.s.get(self.pos) == Some(&b'\'') {
            // 'custom.Class'
            self.pos += 1;
            let mut out = Vec::new();
            loop {
                match self.s.get(self.pos) {
                    None => return Err(self.err("unterminated custom type")),
                    Some(b'\'') if self.s.get(self.pos + 1) == Some(&b'\'') => {
                        out.push(b'\'');
                        self.pos += 2;
                    }
                    Some(b'\'') => {
                        self.pos += 1;
                        break;
                    }
                    Some(&c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
            let class = String::from_utf8(out).map_err(|_| self.err("invalid UTF-8"))?;
            return Ok(ColumnType::Custom(class));
        }
        let (name, quoted) = self.ident()?;
        if !quoted {
            if let Some(native) = ColumnType::native_from_name(&name) {
                return Ok(native);
            }
            let generic = |p: &mut Self, n: usize| -> Result<Vec<ColumnType>, String> {
                let args = p.parse_args(depth)?;
                if args.len() != n {
                    return Err(p.err(&format!("{name} takes {n} type argument(s)")));
                }
                Ok(args)
            };
            match name.as_str() {
                "frozen" => {
                    let mut a = generic(self, 1)?;
                    let inner = a.remove(0);
                    return Ok(match inner {
                        ColumnType::Frozen(_) => inner,
                        other => ColumnType::Frozen(Box::new(other)),
                    });
                }
                "list" => {
                    let mut a = generic(self, 1)?;
                    return Ok(ColumnType::List(Box::new(a.remove(0))));
                }
                "set" => {
                    let mut a = generic(self, 1)?;
                    return Ok(ColumnType::Set(Box::new(a.remove(0))));
                }
                "map" => {
                    let mut a = generic(self, 2)?;
                    let v = a.remove(1);
                    let k = a.remove(0);
                    return Ok(ColumnType::Map(Box::new(k), Box::new(v)));
                }
                "tuple" => {
                    let a = self.parse_args(depth)?;
                    return Ok(ColumnType::Tuple(a));
                }
                _ => {}
            }
        }
        (self.resolve)(&name).ok_or_else(|| format!("Unknown type {name}"))
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A value that does not match its type (Cassandra's `MarshalException`).
/// The message is the one Cassandra gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(pub String);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

fn verr<T>(msg: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError(msg.into()))
}

// ---------------------------------------------------------------------------
// Variable-length integers (Cassandra's VIntCoding), used by `duration`
// ---------------------------------------------------------------------------

/// Appends `v` as a Cassandra signed vint (zig-zag, then unsigned vint).
pub fn write_vint(v: i64, out: &mut Vec<u8>) {
    write_unsigned_vint(((v << 1) ^ (v >> 63)) as u64, out);
}

/// Appends `v` as a Cassandra unsigned vint: the count of leading 1 bits of
/// the first byte is the number of extra bytes, big-endian.
pub fn write_unsigned_vint(v: u64, out: &mut Vec<u8>) {
    let magnitude = (v | 1).leading_zeros() as usize;
    let size = (639 - magnitude * 9) >> 6;
    if size <= 1 {
        out.push(v as u8);
        return;
    }
    let extra = size - 1;
    let bytes = v.to_be_bytes();
    let start = out.len();
    if size == 9 {
        out.push(0xff);
        out.extend_from_slice(&bytes);
    } else {
        out.extend_from_slice(&bytes[8 - size..]);
        out[start] |= !(0xffu8 >> extra);
    }
}

/// Reads an unsigned vint from `buf`, returning it and the bytes used.
pub fn read_unsigned_vint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    if first & 0x80 == 0 {
        return Some((first as u64, 1));
    }
    let extra = first.leading_ones() as usize;
    if buf.len() < 1 + extra {
        return None;
    }
    let mut v: u64 = if extra >= 8 {
        0
    } else {
        (first & (0xffu8 >> extra)) as u64
    };
    for &b in &buf[1..=extra] {
        v = (v << 8) | b as u64;
    }
    Some((v, 1 + extra))
}

/// Reads a signed (zig-zag) vint.
pub fn read_vint(buf: &[u8]) -> Option<(i64, usize)> {
    let (u, n) = read_unsigned_vint(buf)?;
    Some((((u >> 1) as i64) ^ -((u & 1) as i64), n))
}

// ---------------------------------------------------------------------------
// Serialisation
// ---------------------------------------------------------------------------

fn put_len_prefixed(v: Option<&CqlValue>, out: &mut Vec<u8>) {
    match v {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(v) => {
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            serialize(v, out);
            let len = (out.len() - at - 4) as i32;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
}

/// Appends the `[value]` body of `value` (no length prefix). Collections use
/// the protocol v3+ layout: `[int n]` then each element as `[int len][bytes]`
/// (map: key then value); tuples and UDTs are `[int len][bytes]` per field,
/// null = -1.
pub fn serialize(value: &CqlValue, out: &mut Vec<u8>) {
    match value {
        CqlValue::Ascii(s) | CqlValue::Text(s) => out.extend_from_slice(s.as_bytes()),
        CqlValue::Blob(b) | CqlValue::Varint(b) => out.extend_from_slice(b),
        CqlValue::Boolean(b) => out.push(*b as u8),
        CqlValue::BigInt(v) | CqlValue::Counter(v) | CqlValue::Timestamp(v) | CqlValue::Time(v) => {
            out.extend_from_slice(&v.to_be_bytes())
        }
        CqlValue::Decimal { unscaled, scale } => {
            out.extend_from_slice(&scale.to_be_bytes());
            out.extend_from_slice(unscaled);
        }
        CqlValue::Double(v) => out.extend_from_slice(&v.to_be_bytes()),
        CqlValue::Float(v) => out.extend_from_slice(&v.to_be_bytes()),
        CqlValue::Int(v) => out.extend_from_slice(&v.to_be_bytes()),
        CqlValue::Uuid(u) | CqlValue::Timeuuid(u) => out.extend_from_slice(u),
        CqlValue::Inet(IpAddr::V4(a)) => out.extend_from_slice(&a.octets()),
        CqlValue::Inet(IpAddr::V6(a)) => out.extend_from_slice(&a.octets()),
        CqlValue::Date(d) => out.extend_from_slice(&d.to_be_bytes()),
        CqlValue::SmallInt(v) => out.extend_from_slice(&v.to_be_bytes()),
        CqlValue::TinyInt(v) => out.extend_from_slice(&v.to_be_bytes()),
        CqlValue::Duration {
            months,
            days,
            nanos,
        } => {
            write_vint(*months as i64, out);
            write_vint(*days as i64, out);
            write_vint(*nanos, out);
        }
        CqlValue::List(items) | CqlValue::Set(items) => {
            out.extend_from_slice(&(items.len() as i32).to_be_bytes());
            for item in items {
                put_len_prefixed(Some(item), out);
            }
        }
        CqlValue::Map(entries) => {
            out.extend_from_slice(&(entries.len() as i32).to_be_bytes());
            for (k, v) in entries {
                put_len_prefixed(Some(k), out);
                put_len_prefixed(Some(v), out);
            }
        }
        CqlValue::Tuple(items) => {
            for item in items {
                put_len_prefixed(item.as_ref(), out);
            }
        }
        CqlValue::Udt(fields) => {
            for (_, v) in fields {
                put_len_prefixed(v.as_ref(), out);
            }
        }
        CqlValue::Empty => {}
    }
}

/// [`serialize`] into a new vector.
pub fn serialize_to_vec(value: &CqlValue) -> Vec<u8> {
    let mut out = Vec::new();
    serialize(value, &mut out);
    out
}

/// A cursor over `[int len][bytes]` items.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn int(&mut self) -> Option<i32> {
        let b = self.buf.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `Ok(None)` for a null (negative length), `Err(())` on underflow.
    fn value(&mut self) -> Result<Option<&'a [u8]>, ()> {
        let len = self.int().ok_or(())?;
        if len < 0 {
            return Ok(None);
        }
        let len = len as usize;
        if self.remaining() < len {
            return Err(());
        }
        let v = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(Some(v))
    }
}

fn collection_name(ty: &ColumnType) -> &'static str {
    match ty {
        ColumnType::List(_) => "list",
        ColumnType::Set(_) => "set",
        _ => "map",
    }
}

/// Checks that `bytes` is a valid serialised value of type `ty`, with
/// Cassandra's error messages. Allocation-free.
pub fn validate(ty: &ColumnType, bytes: &[u8]) -> Result<(), ValueError> {
    validate_depth(ty, bytes, 0)
}

fn validate_depth(ty: &ColumnType, bytes: &[u8], depth: usize) -> Result<(), ValueError> {
    if depth > 64 {
        return verr("Value nested too deeply");
    }
    let n = bytes.len();
    match ty {
        ColumnType::Frozen(inner) => validate_depth(inner, bytes, depth),
        ColumnType::Custom(_) | ColumnType::Blob | ColumnType::Varint => Ok(()),
        ColumnType::Ascii => match bytes.iter().find(|&&b| b >= 0x80) {
            Some(b) => verr(format!("Invalid byte for ascii: {}", *b as i8)),
            None => Ok(()),
        },
        ColumnType::Text => match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(_) => verr("String didn't validate."),
        },
        ColumnType::Boolean => {
            if n > 1 {
                verr(format!("Expected 1 or 0 byte value ({n})"))
            } else {
                Ok(())
            }
        }
        ColumnType::Int => fixed_or_empty(n, 4, "Expected 4 or 0 byte int"),
        ColumnType::BigInt | ColumnType::Counter => {
            fixed_or_empty(n, 8, "Expected 8 or 0 byte long")
        }
        ColumnType::Timestamp => fixed_or_empty(n, 8, "Expected 8 or 0 byte long for date"),
        ColumnType::Float => fixed_or_empty(n, 4, "Expected 4 or 0 byte value for a float"),
        ColumnType::Double => fixed_or_empty(n, 8, "Expected 8 or 0 byte value for a double"),
        ColumnType::SmallInt => exact(n, 2, "Expected 2 bytes for a smallint"),
        ColumnType::TinyInt => exact(n, 1, "Expected 1 byte for a tinyint"),
        ColumnType::Date => exact(n, 4, "Expected 4 byte long for date"),
        ColumnType::Time => exact(n, 8, "Expected 8 byte long for time"),
        ColumnType::Decimal => {
            if n != 0 && n < 4 {
                verr(format!("Expected 0 or at least 4 bytes ({n})"))
            } else {
                Ok(())
            }
        }
        ColumnType::Uuid => fixed_or_empty(n, 16, "UUID should be 16 or 0 bytes"),
        ColumnType::Timeuuid => {
            fixed_or_empty(n, 16, "TimeUUID should be 16 or 0 bytes")?;
            if n == 16 && bytes[6] & 0xf0 != 0x10 {
                return verr("Invalid version for TimeUUID type.");
            }
            Ok(())
        }
        ColumnType::Inet => {
            if n == 0 || n == 4 || n == 16 {
                Ok(())
            } else {
                verr(format!(
                    "Invalid inet address: expected 4 or 16 bytes ({n})"
                ))
            }
        }
        ColumnType::Duration => validate_duration(bytes).map(|_| ()),
        ColumnType::List(e) | ColumnType::Set(e) => {
            let name = collection_name(ty);
            let mut r = Reader { buf: bytes, pos: 0 };
            let count = r
                .int()
                .ok_or_else(|| ValueError(format!("Not enough bytes to read a {name}")))?;
            if count < 0 {
                return verr(format!("Invalid negative {name} size ({count})"));
            }
            for _ in 0..count {
                match r.value() {
                    Err(()) => return verr(format!("Not enough bytes to read a {name}")),
                    Ok(None) => return verr("null is not supported inside collections"),
                    Ok(Some(v)) => validate_depth(e, v, depth + 1)?,
                }
            }
            if r.remaining() != 0 {
                return verr(format!("Unexpected extraneous bytes after {name} value"));
            }
            Ok(())
        }
        ColumnType::Map(k, v) => {
            let mut r = Reader { buf: bytes, pos: 0 };
            let count = r
                .int()
                .ok_or_else(|| ValueError("Not enough bytes to read a map".into()))?;
            if count < 0 {
                return verr(format!("Invalid negative map size ({count})"));
            }
            for _ in 0..count {
                for t in [k, v] {
                    match r.value() {
                        Err(()) => return verr("Not enough bytes to read a map"),
                        Ok(None) => return verr("null is not supported inside collections"),
                        Ok(Some(x)) => validate_depth(t, x, depth + 1)?,
                    }
                }
            }
            if r.remaining() != 0 {
                return verr("Unexpected extraneous bytes after map value");
            }
            Ok(())
        }
        ColumnType::Tuple(types) => validate_fields(types.iter(), bytes, depth, "tuple"),
        ColumnType::Udt { fields, .. } => {
            validate_fields(fields.iter().map(|(_, t)| t), bytes, depth, "UDT")
        }
    }
}

fn validate_fields<'t>(
    types: impl Iterator<Item = &'t ColumnType>,
    bytes: &[u8],
    depth: usize,
    what: &str,
) -> Result<(), ValueError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    for (i, t) in types.enumerate() {
        if r.remaining() == 0 {
            return Ok(());
        }
        if r.remaining() < 4 {
            return verr(format!("Not enough bytes to read size of {i}th component"));
        }
        match r.value() {
            Err(()) => return verr(format!("Not enough bytes to read {i}th component")),
            Ok(None) => {}
            Ok(Some(v)) => validate_depth(t, v, depth + 1)?,
        }
    }
    if r.remaining() != 0 {
        return verr(format!("Invalid remaining data after end of {what} value"));
    }
    Ok(())
}

fn fixed_or_empty(n: usize, want: usize, msg: &str) -> Result<(), ValueError> {
    if n == want || n == 0 {
        Ok(())
    } else {
        verr(format!("{msg} ({n})"))
    }
}

fn exact(n: usize, want: usize, msg: &str) -> Result<(), ValueError> {
    if n == want {
        Ok(())
    } else {
        verr(format!("{msg} ({n})"))
    }
}

/// Nanoseconds in a day: the exclusive upper bound of `time`.
pub const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn validate_duration(bytes: &[u8]) -> Result<(i32, i32, i64), ValueError> {
    if bytes.len() < 3 {
        return verr(format!(
            "Expected at least 3 bytes for a duration ({})",
            bytes.len()
        ));
    }
    let short = || ValueError("Not enough bytes to read a duration".into());
    let (months, a) = read_vint(bytes).ok_or_else(short)?;
    let (days, b) = read_vint(&bytes[a..]).ok_or_else(short)?;
    let (nanos, _) = read_vint(&bytes[a + b..]).ok_or_else(short)?;
    if months as i32 as i64 != months {
        return verr(format!(
            "The duration months must be a 32 bits integer but was: {months}"
        ));
    }
    if days as i32 as i64 != days {
        return verr(format!(
            "The duration days must be a 32 bits integer but was: {days}"
        ));
    }
    if !((months >= 0 && days >= 0 && nanos >= 0) || (months <= 0 && days <= 0 && nanos <= 0)) {
        return verr(format!(
            "The duration months, days and nanoseconds must be all of the same sign ({months}, {days}, {nanos})"
        ));
    }
    Ok((months as i32, days as i32, nanos))
}

/// Deserialises a value body of type `ty`. A zero-length body of a type
/// other than text, ascii, blob or custom gives [`CqlValue::Empty`].
/// Invalid input is an error (the checks of [`validate`]), never a panic.
pub fn deserialize(ty: &ColumnType, bytes: &[u8]) -> Result<CqlValue, ValueError> {
    deserialize_depth(ty, bytes, 0)
}

fn deserialize_depth(ty: &ColumnType, bytes: &[u8], depth: usize) -> Result<CqlValue, ValueError> {
    if depth > 64 {
        return verr("Value nested too deeply");
    }
    let ty = ty.unfrozen();
    match ty {
        ColumnType::Ascii | ColumnType::Text | ColumnType::Blob | ColumnType::Custom(_) => {}
        _ if bytes.is_empty() => {
            // Types whose serializer rejects empty values still reject them.
            return match ty {
                ColumnType::SmallInt
                | ColumnType::TinyInt
                | ColumnType::Date
                | ColumnType::Time
                | ColumnType::Duration
                | ColumnType::List(_)
                | ColumnType::Set(_)
                | ColumnType::Map(..) => validate_depth(ty, bytes, depth).map(|_| CqlValue::Empty),
                _ => Ok(CqlValue::Empty),
            };
        }
        _ => {}
    }
    let arr8 = |b: &[u8]| -> [u8; 8] { b.try_into().unwrap_or([0; 8]) };
    let arr4 = |b: &[u8]| -> [u8; 4] { b.try_into().unwrap_or([0; 4]) };
    let arr16 = |b: &[u8]| -> [u8; 16] { b.try_into().unwrap_or([0; 16]) };
    match ty {
        ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..) => {}
        ColumnType::Tuple(_) | ColumnType::Udt { .. } => {}
        _ => validate_depth(ty, bytes, depth)?,
    }
    Ok(match ty {
        ColumnType::Frozen(_) => unreachable_frozen(),
        ColumnType::Custom(_) | ColumnType::Blob => CqlValue::Blob(bytes.to_vec()),
        ColumnType::Ascii => CqlValue::Ascii(String::from_utf8_lossy(bytes).into_owned()),
        ColumnType::Text => CqlValue::Text(
            std::str::from_utf8(bytes)
                .map_err(|_| ValueError("String didn't validate.".into()))?
                .to_string(),
        ),
        ColumnType::Boolean => CqlValue::Boolean(bytes[0] != 0),
        ColumnType::Int => CqlValue::Int(i32::from_be_bytes(arr4(bytes))),
        ColumnType::BigInt => CqlValue::BigInt(i64::from_be_bytes(arr8(bytes))),
        ColumnType::Counter => CqlValue::Counter(i64::from_be_bytes(arr8(bytes))),
        ColumnType::Timestamp => CqlValue::Timestamp(i64::from_be_bytes(arr8(bytes))),
        ColumnType::Time => CqlValue::Time(i64::from_be_bytes(arr8(bytes))),
        ColumnType::Float => CqlValue::Float(f32::from_be_bytes(arr4(bytes))),
        ColumnType::Double => CqlValue::Double(f64::from_be_bytes(arr8(bytes))),
        ColumnType::SmallInt => CqlValue::SmallInt(i16::from_be_bytes([bytes[0], bytes[1]])),
        ColumnType::TinyInt => CqlValue::TinyInt(bytes[0] as i8),
        ColumnType::Date => CqlValue::Date(u32::from_be_bytes(arr4(bytes))),
        ColumnType::Decimal => CqlValue::Decimal {
            scale: i32::from_be_bytes(arr4(&bytes[..4])),
            unscaled: bytes[4..].to_vec(),
        },
        ColumnType::Varint => CqlValue::Varint(bytes.to_vec()),
        ColumnType::Uuid => CqlValue::Uuid(arr16(bytes)),
        ColumnType::Timeuuid => CqlValue::Timeuuid(arr16(bytes)),
        ColumnType::Inet => {
            if bytes.len() == 4 {
                CqlValue::Inet(IpAddr::from(arr4(bytes)))
            } else {
                CqlValue::Inet(IpAddr::from(arr16(bytes)))
            }
        }
        ColumnType::Duration => {
            let (months, days, nanos) = validate_duration(bytes)?;
            CqlValue::Duration {
                months,
                days,
                nanos,
            }
        }
        ColumnType::List(e) | ColumnType::Set(e) => {
            let name = collection_name(ty);
            let mut r = Reader { buf: bytes, pos: 0 };
            let count = r
                .int()
                .ok_or_else(|| ValueError(format!("Not enough bytes to read a {name}")))?;
            if count < 0 {
                return verr(format!("Invalid negative {name} size ({count})"));
            }
            let mut items = Vec::with_capacity((count as usize).min(r.remaining() / 4));
            for _ in 0..count {
                match r.value() {
                    Err(()) => return verr(format!("Not enough bytes to read a {name}")),
                    Ok(None) => return verr("null is not supported inside collections"),
                    Ok(Some(v)) => items.push(deserialize_depth(e, v, depth + 1)?),
                }
            }
            if r.remaining() != 0 {
                return verr(format!("Unexpected extraneous bytes after {name} value"));
            }
            if matches!(ty, ColumnType::List(_)) {
                CqlValue::List(items)
            } else {
                CqlValue::Set(items)
            }
        }
        ColumnType::Map(kt, vt) => {
            let mut r = Reader { buf: bytes, pos: 0 };
            let count = r
                .int()
                .ok_or_else(|| ValueError("Not enough bytes to read a map".into()))?;
            if count < 0 {
                return verr(format!("Invalid negative map size ({count})"));
            }
            let mut entries = Vec::with_capacity((count as usize).min(r.remaining() / 8));
            for _ in 0..count {
                let mut pair = [None, None];
                for (slot, t) in pair.iter_mut().zip([kt, vt]) {
                    match r.value() {
                        Err(()) => return verr("Not enough bytes to read a map"),
                        Ok(None) => return verr("null is not supported inside collections"),
                        Ok(Some(x)) => *slot = Some(deserialize_depth(t, x, depth + 1)?),
                    }
                }
                let [k, v] = pair;
                if let (Some(k), Some(v)) = (k, v) {
                    entries.push((k, v));
                }
            }
            if r.remaining() != 0 {
                return verr("Unexpected extraneous bytes after map value");
            }
            CqlValue::Map(entries)
        }
        ColumnType::Tuple(types) => {
            CqlValue::Tuple(deserialize_fields(types.iter(), bytes, depth, "tuple")?)
        }
        ColumnType::Udt { fields, .. } => {
            let values = deserialize_fields(fields.iter().map(|(_, t)| t), bytes, depth, "UDT")?;
            CqlValue::Udt(fields.iter().map(|(n, _)| n.clone()).zip(values).collect())
        }
    })
}

#[inline]
fn unreachable_frozen() -> CqlValue {
    // `unfrozen()` strips every Frozen wrapper before the match.
    CqlValue::Empty
}

fn deserialize_fields<'t>(
    types: impl ExactSizeIterator<Item = &'t ColumnType>,
    bytes: &[u8],
    depth: usize,
    what: &str,
) -> Result<Vec<Option<CqlValue>>, ValueError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let mut out = Vec::with_capacity(types.len());
    for (i, t) in types.enumerate() {
        if r.remaining() == 0 {
            out.push(None);
            continue;
        }
        if r.remaining() < 4 {
            return verr(format!("Not enough bytes to read size of {i}th component"));
        }
        match r.value() {
            Err(()) => return verr(format!("Not enough bytes to read {i}th component")),
            Ok(None) => out.push(None),
            Ok(Some(v)) => out.push(Some(deserialize_depth(t, v, depth + 1)?)),
        }
    }
    if r.remaining() != 0 {
        return verr(format!("Invalid remaining data after end of {what} value"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Ordering (Cassandra's comparators, on serialised values)
// ---------------------------------------------------------------------------

fn signed_fixed_cmp(a: &[u8], b: &[u8]) -> Ordering {
    // Same-length two's complement: flip the sign bit, compare unsigned.
    match (a.first(), b.first()) {
        (Some(x), Some(y)) => (x ^ 0x80)
            .cmp(&(y ^ 0x80))
            .then_with(|| a[1..].cmp(&b[1..])),
        _ => a.cmp(b),
    }
}

fn float_cmp(a: f64, b: f64) -> Ordering {
    // Java's Double.compare: NaN is greatest, -0.0 < 0.0.
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.total_cmp(&b),
    }
}

fn uuid_timestamp(u: &[u8]) -> u64 {
    // time_hi (with version) | time_mid | time_low
    let msb = u64::from_be_bytes(u[..8].try_into().unwrap_or([0; 8]));
    (msb << 48) | ((msb << 16) & 0xFFFF_0000_0000) | (msb >> 32)
}

fn signed_bytes_cmp(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let c = (*x as i8).cmp(&(*y as i8));
        if c != Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

/// Compares two serialised values of type `ty` in Cassandra's order (the
/// order of clustering columns, set elements and map keys). Empty values
/// sort first. Malformed values fall back to byte order; never panics.
pub fn compare_serialized(ty: &ColumnType, a: &[u8], b: &[u8]) -> Ordering {
    compare_depth(ty, a, b, 0)
}

fn compare_depth(ty: &ColumnType, a: &[u8], b: &[u8], depth: usize) -> Ordering {
    if a.is_empty() || b.is_empty() {
        // Frozen collections: empty first too.
        return (!a.is_empty()).cmp(&!b.is_empty());
    }
    if depth > 64 {
        return a.cmp(b);
    }
    match ty.unfrozen() {
        ColumnType::Int
        | ColumnType::BigInt
        | ColumnType::Counter
        | ColumnType::SmallInt
        | ColumnType::TinyInt
        | ColumnType::Timestamp
        | ColumnType::Time
            if a.len() == b.len() =>
        {
            signed_fixed_cmp(a, b)
        }
        ColumnType::Float if a.len() == 4 && b.len() == 4 => {
            let x = f32::from_be_bytes(a.try_into().unwrap_or([0; 4]));
            let y = f32::from_be_bytes(b.try_into().unwrap_or([0; 4]));
            float_cmp(x as f64, y as f64)
        }
        ColumnType::Double if a.len() == 8 && b.len() == 8 => {
            let x = f64::from_be_bytes(a.try_into().unwrap_or([0; 8]));
            let y = f64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
            float_cmp(x, y)
        }
        ColumnType::Varint => {
            let (na, ma) = twos_to_mag(a);
            let (nb, mb) = twos_to_mag(b);
            cmp_signed_mag(na, &ma, nb, &mb)
        }
        ColumnType::Decimal if a.len() >= 4 && b.len() >= 4 => decimal_cmp(a, b),
        ColumnType::Uuid if a.len() == 16 && b.len() == 16 => {
            let va = a[6] >> 4;
            let vb = b[6] >> 4;
            va.cmp(&vb)
                .then_with(|| {
                    if va == 1 {
                        uuid_timestamp(a).cmp(&uuid_timestamp(b))
                    } else {
                        a[..8].cmp(&b[..8])
                    }
                })
                .then_with(|| a[8..].cmp(&b[8..]))
        }
        ColumnType::Timeuuid if a.len() == 16 && b.len() == 16 => uuid_timestamp(a)
            .cmp(&uuid_timestamp(b))
            .then_with(|| signed_bytes_cmp(&a[8..], &b[8..])),
        ColumnType::List(e) | ColumnType::Set(e) => {
            compare_collections(a, b, depth, |ra, rb, out| {
                let (Ok(Some(x)), Ok(Some(y))) = (ra.value(), rb.value()) else {
                    return false;
                };
                *out = compare_depth(e, x, y, depth + 1);
                true
            })
        }
        ColumnType::Map(kt, vt) => compare_collections(a, b, depth, |ra, rb, out| {
            for t in [kt, vt] {
                let (Ok(Some(x)), Ok(Some(y))) = (ra.value(), rb.value()) else {
                    return false;
                };
                *out = compare_depth(t, x, y, depth + 1);
                if *out != Ordering::Equal {
                    return true;
                }
            }
            true
        }),
        ColumnType::Tuple(types) => compare_fields(types.iter(), a, b, depth),
        ColumnType::Udt { fields, .. } => {
            compare_fields(fields.iter().map(|(_, t)| t), a, b, depth)
        }
        _ => a.cmp(b),
    }
}

fn compare_collections(
    a: &[u8],
    b: &[u8],
    _depth: usize,
    mut step: impl FnMut(&mut Reader<'_>, &mut Reader<'_>, &mut Ordering) -> bool,
) -> Ordering {
    let mut ra = Reader { buf: a, pos: 0 };
    let mut rb = Reader { buf: b, pos: 0 };
    let (Some(na), Some(nb)) = (ra.int(), rb.int()) else {
        return a.cmp(b);
    };
    for _ in 0..na.min(nb).max(0) {
        let mut c = Ordering::Equal;
        if !step(&mut ra, &mut rb, &mut c) {
            return a.cmp(b);
        }
        if c != Ordering::Equal {
            return c;
        }
    }
    na.cmp(&nb)
}

fn compare_fields<'t>(
    mut types: impl Iterator<Item = &'t ColumnType>,
    a: &[u8],
    b: &[u8],
    depth: usize,
) -> Ordering {
    let mut ra = Reader { buf: a, pos: 0 };
    let mut rb = Reader { buf: b, pos: 0 };
    while ra.remaining() > 0 && rb.remaining() > 0 {
        let t = types.next();
        let (Ok(x), Ok(y)) = (ra.value(), rb.value()) else {
            return a.cmp(b);
        };
        match (x, y) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let c = match t {
                    Some(t) => compare_depth(t, x, y, depth + 1),
                    None => x.cmp(y),
                };
                if c != Ordering::Equal {
                    return c;
                }
            }
        }
    }
    // Trailing nulls/empties are equivalent to absent fields.
    let has_data = |r: &mut Reader<'_>| {
        while r.remaining() > 0 {
            match r.value() {
                Ok(Some(v)) if !v.is_empty() => return true,
                Ok(_) => {}
                Err(()) => return true,
            }
        }
        false
    };
    if has_data(&mut ra) {
        return Ordering::Greater;
    }
    if has_data(&mut rb) {
        return Ordering::Less;
    }
    Ordering::Equal
}

/// (sign, significant digits without trailing zeros, adjusted exponent).
fn decimal_normal(unscaled: &[u8], scale: i32) -> (i8, String, i64) {
    let (neg, mag) = twos_to_mag(unscaled);
    if mag.iter().all(|&l| l == 0) {
        return (0, String::new(), 0);
    }
    let digits = mag_to_dec(&mag);
    let trimmed = digits.trim_end_matches('0');
    let tz = (digits.len() - trimmed.len()) as i64;
    let scale = scale as i64 - tz;
    let adjusted = trimmed.len() as i64 - 1 - scale;
    (if neg { -1 } else { 1 }, trimmed.to_string(), adjusted)
}

fn decimal_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let sa = i32::from_be_bytes(a[..4].try_into().unwrap_or([0; 4]));
    let sb = i32::from_be_bytes(b[..4].try_into().unwrap_or([0; 4]));
    let (ga, da, ea) = decimal_normal(&a[4..], sa);
    let (gb, db, eb) = decimal_normal(&b[4..], sb);
    if ga != gb || ga == 0 {
        return ga.cmp(&gb);
    }
    let c = ea.cmp(&eb).then_with(|| da.as_str().cmp(db.as_str()));
    if ga < 0 {
        c.reverse()
    } else {
        c
    }
}

/// Compares two deserialised values of type `ty` in Cassandra's order.
pub fn compare_values(ty: &ColumnType, a: &CqlValue, b: &CqlValue) -> Ordering {
    compare_serialized(ty, &serialize_to_vec(a), &serialize_to_vec(b))
}

// ---------------------------------------------------------------------------
// Arbitrary-precision integers (varint, decimal's unscaled value)
// ---------------------------------------------------------------------------

/// Big-endian two's complement to (negative, little-endian u32 magnitude).
fn twos_to_mag(bytes: &[u8]) -> (bool, Vec<u32>) {
    let neg = bytes.first().is_some_and(|&b| b & 0x80 != 0);
    let mut mag: Vec<u8> = if neg {
        // magnitude = !x + 1
        let mut v: Vec<u8> = bytes.iter().map(|b| !b).collect();
        for b in v.iter_mut().rev() {
            let (r, carry) = b.overflowing_add(1);
            *b = r;
            if !carry {
                break;
            }
        }
        v
    } else {
        bytes.to_vec()
    };
    mag.reverse(); // little-endian bytes
    let mut limbs = Vec::with_capacity(mag.len().div_ceil(4));
    for chunk in mag.chunks(4) {
        let mut l = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            l |= (b as u32) << (8 * i);
        }
        limbs.push(l);
    }
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    (neg, limbs)
}

fn cmp_signed_mag(na: bool, ma: &[u32], nb: bool, mb: &[u32]) -> Ordering {
    let za = ma.is_empty();
    let zb = mb.is_empty();
    let sa: i8 = if za {
        0
    } else if na {
        -1
    } else {
        1
    };
    let sb: i8 = if zb {
        0
    } else if nb {
        -1
    } else {
        1
    };
    if sa != sb || sa == 0 {
        return sa.cmp(&sb);
    }
    let c = ma
        .len()
        .cmp(&mb.len())
        .then_with(|| ma.iter().rev().cmp(mb.iter().rev()));
    if sa < 0 {
        c.reverse()
    } else {
        c
    }
}

/// Little-endian u32 magnitude to decimal digits.
fn mag_to_dec(mag: &[u32]) -> String {
    let mut m: Vec<u32> = mag.to_vec();
    while m.last() == Some(&0) {
        m.pop();
    }
    if m.is_empty() {
        return "0".into();
    }
    let mut chunks = Vec::new();
    while !m.is_empty() {
        let mut rem: u64 = 0;
        for l in m.iter_mut().rev() {
            let cur = (rem << 32) | *l as u64;
            *l = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        while m.last() == Some(&0) {
            m.pop();
        }
    }
    let mut s = chunks.last().map(|c| c.to_string()).unwrap_or_default();
    for c in chunks.iter().rev().skip(1) {
        s.push_str(&format!("{c:09}"));
    }
    s
}

/// ASCII decimal digits to a little-endian u32 magnitude.
fn dec_to_mag(digits: &[u8]) -> Vec<u32> {
    let mut mag: Vec<u32> = Vec::new();
    for chunk in digits.chunks(9) {
        let mut mul = 1u64;
        let mut add = 0u64;
        for &d in chunk {
            mul *= 10;
            add = add * 10 + (d - b'0') as u64;
        }
        let mut carry = add;
        for l in mag.iter_mut() {
            let cur = *l as u64 * mul + carry;
            *l = cur as u32;
            carry = cur >> 32;
        }
        if carry != 0 {
            mag.push(carry as u32);
        }
    }
    mag
}

/// (negative, magnitude) to minimal big-endian two's complement.
fn mag_to_twos(neg: bool, mag: &[u32]) -> Vec<u8> {
    let mut be: Vec<u8> = mag.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    let first = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    be.drain(..first);
    if be.is_empty() {
        return vec![0];
    }
    if !neg {
        if be[0] & 0x80 != 0 {
            be.insert(0, 0);
        }
        return be;
    }
    // two's complement negate: !x + 1, with one extra sign byte
    be.insert(0, 0);
    for b in be.iter_mut() {
        *b = !*b;
    }
    for b in be.iter_mut().rev() {
        let (r, carry) = b.overflowing_add(1);
        *b = r;
        if !carry {
            break;
        }
    }
    while be.len() > 1 && be[0] == 0xff && be[1] & 0x80 != 0 {
        be.remove(0);
    }
    be
}

/// Formats a varint (big-endian two's complement) as a decimal string.
pub fn varint_to_string(bytes: &[u8]) -> String {
    let (neg, mag) = twos_to_mag(bytes);
    let digits = mag_to_dec(&mag);
    if neg && digits != "0" {
        format!("-{digits}")
    } else {
        digits
    }
}

/// Parses `[+-]digits` into minimal big-endian two's complement.
pub fn varint_from_str(s: &str) -> Option<Vec<u8>> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(mag_to_twos(neg, &dec_to_mag(digits.as_bytes())))
}

/// A minimal varint encoding of `v`.
pub fn varint_from_i64(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let b = bytes[start];
        let next_sign = bytes[start + 1] & 0x80;
        if (b == 0 && next_sign == 0) || (b == 0xff && next_sign != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// The varint as an `i64`, if it fits.
pub fn varint_to_i64(bytes: &[u8]) -> Option<i64> {
    let mut start = 0;
    while bytes.len() - start > 8 {
        let b = bytes[start];
        let next_sign = bytes[start + 1] & 0x80;
        if (b == 0 && next_sign == 0) || (b == 0xff && next_sign != 0) {
            start += 1;
        } else {
            return None;
        }
    }
    let rest = &bytes[start..];
    if rest.is_empty() {
        return Some(0);
    }
    let fill = if rest[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 8];
    buf[8 - rest.len()..].copy_from_slice(rest);
    Some(i64::from_be_bytes(buf))
}

/// Parses a decimal as Java's `BigDecimal(String)` does:
/// `[+-]digits[.digits][(e|E)[+-]digits]`. Returns (unscaled, scale).
pub fn decimal_from_str(s: &str) -> Option<(Vec<u8>, i32)> {
    let b = s.as_bytes();
    let mut i = 0;
    let neg = match b.first()? {
        b'-' => {
            i += 1;
            true
        }
        b'+' => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut digits = Vec::new();
    let mut frac = 0i64;
    let mut seen_point = false;
    while i < b.len() {
        match b[i] {
            d @ b'0'..=b'9' => {
                digits.push(d);
                if seen_point {
                    frac += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => break,
            _ => return None,
        }
        i += 1;
    }
    if digits.is_empty() {
        return None;
    }
    let mut exp = 0i64;
    if i < b.len() {
        // exponent
        let e = &s[i + 1..];
        let e = e.strip_prefix('+').unwrap_or(e);
        if e.is_empty() || e.starts_with('+') {
            return None;
        }
        let (eneg, edigits) = match e.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, e),
        };
        if edigits.is_empty() || !edigits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v: i64 = edigits.parse().ok().filter(|v| *v <= i32::MAX as i64 + 1)?;
        exp = if eneg { -v } else { v };
    }
    let scale = frac - exp;
    let scale = i32::try_from(scale).ok()?;
    let start = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    let mag = dec_to_mag(&digits[start..]);
    Some((mag_to_twos(neg, &mag), scale))
}

/// Formats a decimal as Java's `BigDecimal.toPlainString()` (what
/// Cassandra prints). Absurd scales (|scale| > 10000) use the scientific
/// form of `BigDecimal.toString()` instead of millions of zeros.
pub fn decimal_to_string(unscaled: &[u8], scale: i32) -> String {
    let (neg, mag) = twos_to_mag(unscaled);
    let digits = mag_to_dec(&mag);
    let sign = if neg && digits != "0" { "-" } else { "" };
    let scale = scale as i64;
    if scale.abs() > 10_000 {
        let adjusted = digits.len() as i64 - 1 - scale;
        let (head, tail) = digits.split_at(1);
        let mut s = format!("{sign}{head}");
        if !tail.is_empty() {
            s.push('.');
            s.push_str(tail);
        }
        s.push_str(&format!(
            "E{}{}",
            if adjusted >= 0 { "+" } else { "" },
            adjusted
        ));
        return s;
    }
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    if scale < 0 {
        if digits == "0" {
            return "0".into();
        }
        return format!("{sign}{digits}{}", "0".repeat((-scale) as usize));
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (i, f) = digits.split_at(digits.len() - scale);
        format!("{sign}{i}.{f}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
    }
}

// ---------------------------------------------------------------------------
// Dates and times
// ---------------------------------------------------------------------------

/// The `date` wire value of the Unix epoch (days are centred on 2^31).
pub const DATE_EPOCH: u32 = 1 << 31;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of a day since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days in `month` of `year` (proleptic Gregorian).
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

fn format_year4(y: i64) -> String {
    if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("{y:04}")
    }
}

/// A timestamp (ms since the epoch) as Cassandra's JSON form,
/// `2011-02-03 04:05:00.000Z` (UTC).
pub fn format_timestamp(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}Z",
        format_year4(y),
        m,
        d,
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// A timestamp as Cassandra's CQL-literal/UTC form,
/// `2011-02-03T04:05:00.000Z`.
pub fn format_timestamp_iso(ms: i64) -> String {
    format_timestamp(ms).replacen(' ', "T", 1)
}

/// A `date` wire value as `yyyy-mm-dd` (ISO: years past 9999 get `+`).
pub fn format_date(d: u32) -> String {
    let days = d as i64 - DATE_EPOCH as i64;
    let (y, m, dd) = civil_from_days(days);
    let year = if y > 9999 {
        format!("+{y}")
    } else {
        format_year4(y)
    };
    format!("{year}-{m:02}-{dd:02}")
}

/// Nanoseconds since midnight as `hh:mm:ss.nnnnnnnnn`.
pub fn format_time(nanos: i64) -> String {
    let n = nanos.rem_euclid(NANOS_PER_DAY);
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        n / 3_600_000_000_000,
        n / 60_000_000_000 % 60,
        n / 1_000_000_000 % 60,
        n % 1_000_000_000
    )
}

/// A duration as Cassandra prints it: `1y2mo3d4h5m6s7ms8us9ns`, `-1h`,
/// and the empty string for zero.
pub fn format_duration(months: i32, days: i32, nanos: i64) -> String {
    let mut s = String::new();
    if months < 0 || days < 0 || nanos < 0 {
        s.push('-');
    }
    fn append(s: &mut String, dividend: u64, divisor: u64, unit: &str) -> u64 {
        if dividend == 0 || dividend < divisor {
            return dividend;
        }
        s.push_str(&format!("{}{}", dividend / divisor, unit));
        dividend % divisor
    }
    let rem = append(&mut s, months.unsigned_abs() as u64, 12, "y");
    append(&mut s, rem, 1, "mo");
    append(&mut s, days.unsigned_abs() as u64, 1, "d");
    if nanos != 0 {
        let mut rem = nanos.unsigned_abs();
        for (div, unit) in [
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ] {
            rem = append(&mut s, rem, div, unit);
        }
    }
    s
}

/// A UUID in its lower-case hyphenated form.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any hex case).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nib = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        let v = (c as char).to_digit(16)? as u8;
        out[nib / 2] |= if nib % 2 == 0 { v << 4 } else { v };
        nib += 1;
    }
    Some(out)
}

fn java_float_format(s: String, sci: String, abs: f64) -> String {
    if (1e-3..1e7).contains(&abs) {
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let mant = if mant.contains('.') {
            mant.to_string()
        } else {
            format!("{mant}.0")
        };
        format!("{mant}E{exp}")
    }
}

/// A `double` as Java's `Double.toString` prints it (`1.0`, `1.0E10`,
/// `NaN`, `Infinity`).
pub fn format_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    java_float_format(format!("{v}"), format!("{v:e}"), v.abs())
}

/// A `float` as Java's `Float.toString` prints it.
pub fn format_float(v: f32) -> String {
    if v.is_nan() || v.is_infinite() || v == 0.0 {
        return format_double(v as f64);
    }
    java_float_format(format!("{v}"), format!("{v:e}"), v.abs() as f64)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn quote_cql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Formats a value as a CQL literal that parses back to the same value
/// (used by DESCRIBE and in error messages): `'it''s'`, `0xcafe`,
/// `'2011-02-03T04:05:00.000Z'`, `[1, 2]`, `{'a': 1}`, `(1, 'x')`,
/// `{f: 1}`. An empty value prints as `null`.
pub fn to_cql_literal(value: &CqlValue) -> String {
    match value {
        CqlValue::Ascii(s) | CqlValue::Text(s) => quote_cql_string(s),
        CqlValue::Blob(b) => hex(b),
        CqlValue::Boolean(b) => b.to_string(),
        CqlValue::BigInt(v) | CqlValue::Counter(v) => v.to_string(),
        CqlValue::Int(v) => v.to_string(),
        CqlValue::SmallInt(v) => v.to_string(),
        CqlValue::TinyInt(v) => v.to_string(),
        CqlValue::Decimal { unscaled, scale } => decimal_to_string(unscaled, *scale),
        CqlValue::Varint(b) => varint_to_string(b),
        CqlValue::Double(v) => format_double(*v),
        CqlValue::Float(v) => format_float(*v),
        CqlValue::Timestamp(ms) => quote_cql_string(&format_timestamp_iso(*ms)),
        CqlValue::Uuid(u) | CqlValue::Timeuuid(u) => format_uuid(u),
        CqlValue::Inet(a) => quote_cql_string(&a.to_string()),
        CqlValue::Date(d) => quote_cql_string(&format_date(*d)),
        CqlValue::Time(t) => quote_cql_string(&format_time(*t)),
        CqlValue::Duration {
            months,
            days,
            nanos,
        } => {
            let s = format_duration(*months, *days, *nanos);
            if s.is_empty() || s == "-" {
                "0s".into()
            } else {
                s
            }
        }
        CqlValue::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(to_cql_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CqlValue::Set(items) => format!(
            "{{{}}}",
            items
                .iter()
                .map(to_cql_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CqlValue::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", to_cql_literal(k), to_cql_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CqlValue::Tuple(items) => format!(
            "({})",
            items
                .iter()
                .map(|v| v.as_ref().map_or("null".into(), to_cql_literal))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CqlValue::Udt(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(n, v)| format!(
                    "{}: {}",
                    maybe_quote_identifier(n),
                    v.as_ref().map_or("null".into(), to_cql_literal)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CqlValue::Empty => "null".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ser(v: &CqlValue) -> Vec<u8> {
        serialize_to_vec(v)
    }

    #[test]
    fn type_names_parse_and_display() {
        let cases = [
            ("int", "int"),
            ("varchar", "text"),
            ("TEXT", "text"),
            ("map<text, int>", "map<text, int>"),
            ("frozen<map<text,int>>", "frozen<map<text, int>>"),
            (
                "list<frozen<tuple<int, text>>>",
                "list<frozen<tuple<int, text>>>",
            ),
            ("tuple<int, text>", "frozen<tuple<int, text>>"),
            (
                "frozen<map<text, frozen<list<int>>>>",
                "frozen<map<text, list<int>>>",
            ),
            ("set<frozen<set<int>>>", "set<frozen<set<int>>>"),
            (
                "tuple<int, frozen<list<int>>>",
                "frozen<tuple<int, frozen<list<int>>>>",
            ),
            ("'org.example.Foo'", "'org.example.Foo'"),
        ];
        for (input, shown) in cases {
            let t = ColumnType::parse(input).unwrap();
            assert_eq!(t.to_string(), shown, "{input}");
            assert_eq!(ColumnType::parse(shown).unwrap().to_string(), shown);
        }
        assert_eq!(
            ColumnType::parse("frozen<list<int>>").unwrap(),
            ColumnType::Frozen(Box::new(ColumnType::List(Box::new(ColumnType::Int))))
        );
        // The frozen wrapper inside a frozen collection is dropped on display.
        let nested = ColumnType::Frozen(Box::new(ColumnType::List(Box::new(ColumnType::Frozen(
            Box::new(ColumnType::Set(Box::new(ColumnType::Int))),
        )))));
        assert_eq!(nested.to_string(), "frozen<list<set<int>>>");
        let bad = ["map<int>", "list<int", "int>", "", "foo", "list<>"];
        for b in bad {
            assert!(ColumnType::parse(b).is_err(), "{b}");
        }
    }

    #[test]
    fn udt_names_resolve_and_quote() {
        let addr = ColumnType::Udt {
            keyspace: "ks".into(),
            name: "address".into(),
            fields: vec![("street".into(), ColumnType::Text)],
        };
        let quoted = ColumnType::Udt {
            keyspace: "ks".into(),
            name: "My Type".into(),
            fields: vec![],
        };
        let resolve = |n: &str| match n {
            "address" => Some(addr.clone()),
            "My Type" => Some(quoted.clone()),
            _ => None,
        };
        let t = ColumnType::parse_with("list<frozen<Address>>", &resolve).unwrap();
        assert_eq!(t.to_string(), "list<frozen<address>>");
        let t = ColumnType::parse_with("frozen<\"My Type\">", &resolve).unwrap();
        assert_eq!(t.to_string(), "frozen<\"My Type\">");
        assert_eq!(addr.to_string(), "address");
        assert_eq!(
            ColumnType::parse_with("frozen<nope>", &resolve).unwrap_err(),
            "Unknown type nope"
        );
        assert_eq!(maybe_quote_identifier("select"), "\"select\"");
        assert_eq!(maybe_quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(maybe_quote_identifier("ok_1"), "ok_1");
    }

    #[test]
    fn natives_round_trip() {
        let cases = [
            (ColumnType::Int, CqlValue::Int(-7)),
            (ColumnType::BigInt, CqlValue::BigInt(1 << 40)),
            (ColumnType::SmallInt, CqlValue::SmallInt(-300)),
            (ColumnType::TinyInt, CqlValue::TinyInt(-3)),
            (ColumnType::Counter, CqlValue::Counter(5)),
            (ColumnType::Boolean, CqlValue::Boolean(true)),
            (ColumnType::Double, CqlValue::Double(1.5)),
            (ColumnType::Float, CqlValue::Float(-2.25)),
            (ColumnType::Text, CqlValue::Text("héllo".into())),
            (ColumnType::Ascii, CqlValue::Ascii("abc".into())),
            (ColumnType::Blob, CqlValue::Blob(vec![0xca, 0xfe])),
            (ColumnType::Timestamp, CqlValue::Timestamp(-5)),
            (ColumnType::Date, CqlValue::Date(DATE_EPOCH + 3)),
            (ColumnType::Time, CqlValue::Time(123)),
            (ColumnType::Varint, CqlValue::Varint(vec![0xff, 0x01])),
            (
                ColumnType::Decimal,
                CqlValue::Decimal {
                    unscaled: vec![0x0f],
                    scale: 1,
                },
            ),
            (ColumnType::Inet, CqlValue::Inet("::1".parse().unwrap())),
            (
                ColumnType::Inet,
                CqlValue::Inet("10.0.0.1".parse().unwrap()),
            ),
            (
                ColumnType::Duration,
                CqlValue::Duration {
                    months: -14,
                    days: -3,
                    nanos: -1_000_000_000_000,
                },
            ),
            (ColumnType::Uuid, CqlValue::Uuid([7; 16])),
        ];
        for (ty, v) in cases {
            let bytes = ser(&v);
            validate(&ty, &bytes).unwrap();
            assert_eq!(deserialize(&ty, &bytes).unwrap(), v, "{ty}");
        }
    }

    #[test]
    fn validation_messages() {
        assert_eq!(
            validate(&ColumnType::Int, &[0, 0, 1])
                .unwrap_err()
                .to_string(),
            "Expected 4 or 0 byte int (3)"
        );
        assert!(validate(&ColumnType::Int, &[]).is_ok());
        assert_eq!(
            validate(&ColumnType::SmallInt, &[]).unwrap_err().0,
            "Expected 2 bytes for a smallint (0)"
        );
        assert_eq!(
            validate(&ColumnType::Text, &[0xff]).unwrap_err().0,
            "String didn't validate."
        );
        assert!(validate(&ColumnType::Ascii, b"\x80").is_err());
        assert!(validate(&ColumnType::Ascii, b"abc").is_ok());
        let mut v4 = [0u8; 16];
        v4[6] = 0x40;
        assert!(validate(&ColumnType::Uuid, &v4).is_ok());
        assert_eq!(
            validate(&ColumnType::Timeuuid, &v4).unwrap_err().0,
            "Invalid version for TimeUUID type."
        );
        v4[6] = 0x11;
        assert!(validate(&ColumnType::Timeuuid, &v4).is_ok());
        assert!(validate(&ColumnType::Decimal, &[0, 0]).is_err());
        assert!(validate(&ColumnType::Inet, &[1, 2, 3]).is_err());
        // duration with mixed signs
        let mut d = Vec::new();
        write_vint(1, &mut d);
        write_vint(-1, &mut d);
        write_vint(0, &mut d);
        assert!(validate(&ColumnType::Duration, &d)
            .unwrap_err()
            .0
            .contains("same sign"));
        assert!(validate(&ColumnType::Duration, &[]).is_err());
    }

    #[test]
    fn collections_round_trip_and_validate() {
        let lt = ColumnType::List(Box::new(ColumnType::Int));
        let v = CqlValue::List(vec![CqlValue::Int(1), CqlValue::Int(2)]);
        let b = ser(&v);
        assert_eq!(
            b,
            [0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 2]
        );
        assert_eq!(deserialize(&lt, &b).unwrap(), v);
        let mut extra = b.clone();
        extra.push(0);
        assert_eq!(
            validate(&lt, &extra).unwrap_err().0,
            "Unexpected extraneous bytes after list value"
        );
        assert!(validate(&lt, &b[..b.len() - 1]).is_err());
        assert!(validate(&lt, &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_err());
        // huge count with no data must not allocate or panic
        assert!(deserialize(&lt, &[0x7f, 0xff, 0xff, 0xff]).is_err());

        let mt = ColumnType::Map(Box::new(ColumnType::Text), Box::new(ColumnType::Int));
        let m = CqlValue::Map(vec![(CqlValue::Text("a".into()), CqlValue::Int(1))]);
        assert_eq!(deserialize(&mt, &ser(&m)).unwrap(), m);

        let tt = ColumnType::Tuple(vec![ColumnType::Int, ColumnType::Text, ColumnType::Int]);
        let t = CqlValue::Tuple(vec![Some(CqlValue::Int(1)), None, Some(CqlValue::Int(3))]);
        assert_eq!(deserialize(&tt, &ser(&t)).unwrap(), t);
        // fewer fields than the type: the rest are null
        let short = ser(&CqlValue::Tuple(vec![Some(CqlValue::Int(1))]));
        validate(&tt, &short).unwrap();
        assert_eq!(
            deserialize(&tt, &short).unwrap(),
            CqlValue::Tuple(vec![Some(CqlValue::Int(1)), None, None])
        );
        let mut long = ser(&t);
        long.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            validate(&tt, &long).unwrap_err().0,
            "Invalid remaining data after end of tuple value"
        );
        let ut = ColumnType::Udt {
            keyspace: "ks".into(),
            name: "u".into(),
            fields: vec![
                ("a".into(), ColumnType::Int),
                ("b".into(), ColumnType::Text),
            ],
        };
        let u = CqlValue::Udt(vec![
            ("a".into(), Some(CqlValue::Int(1))),
            ("b".into(), None),
        ]);
        assert_eq!(deserialize(&ut, &ser(&u)).unwrap(), u);
        // empty non-string values
        assert_eq!(deserialize(&ColumnType::Int, &[]).unwrap(), CqlValue::Empty);
        assert_eq!(
            deserialize(&ColumnType::Text, &[]).unwrap(),
            CqlValue::Text(String::new())
        );
    }

    #[test]
    fn vint_matches_cassandra() {
        for v in [
            0i64,
            1,
            -1,
            63,
            64,
            -65,
            1 << 20,
            i64::MAX,
            i64::MIN,
            86_400_000_000_000,
        ] {
            let mut b = Vec::new();
            write_vint(v, &mut b);
            assert_eq!(read_vint(&b), Some((v, b.len())), "{v}");
        }
        let mut b = Vec::new();
        write_unsigned_vint(0x80, &mut b);
        assert_eq!(b, [0x80, 0x80]);
        let mut b = Vec::new();
        write_unsigned_vint(u64::MAX, &mut b);
        assert_eq!(b.len(), 9);
        assert_eq!(b[0], 0xff);
        assert_eq!(read_unsigned_vint(&[0xc0]), None);
    }

    #[test]
    fn bignum_conversions() {
        for s in [
            "0",
            "1",
            "-1",
            "127",
            "128",
            "-128",
            "-129",
            "255",
            "256",
            "-32768",
            "123456789012345678901234567890",
            "-98765432109876543210987654321098765432",
        ] {
            let b = varint_from_str(s).unwrap();
            assert_eq!(varint_to_string(&b), s);
        }
        assert_eq!(varint_from_str("128").unwrap(), [0x00, 0x80]);
        assert_eq!(varint_from_str("-128").unwrap(), [0x80]);
        assert_eq!(varint_from_str("-129").unwrap(), [0xff, 0x7f]);
        assert_eq!(varint_from_str("+5").unwrap(), [5]);
        assert!(varint_from_str("1.5").is_none());
        assert!(varint_from_str("-").is_none());
        for v in [0i64, 1, -1, 127, 128, -129, i64::MAX, i64::MIN] {
            let b = varint_from_i64(v);
            assert_eq!(varint_to_string(&b), v.to_string());
            assert_eq!(varint_to_i64(&b), Some(v));
        }
        assert_eq!(
            varint_to_i64(&varint_from_str("9223372036854775808").unwrap()),
            None
        );

        let d = |s: &str| {
            let (u, sc) = decimal_from_str(s).unwrap();
            decimal_to_string(&u, sc)
        };
        assert_eq!(d("1.50"), "1.50");
        assert_eq!(d("-0.001"), "-0.001");
        assert_eq!(d("1.5e3"), "1500");
        assert_eq!(d("1E-2"), "0.01");
        assert_eq!(
            d("123456789012345678901234567890.5"),
            "123456789012345678901234567890.5"
        );
        assert_eq!(decimal_from_str("1.5e3").unwrap(), (vec![15], -2));
        assert!(decimal_from_str("1.2.3").is_none());
        assert!(decimal_from_str("e5").is_none());
        assert!(decimal_from_str("1e").is_none());
    }

    #[test]
    fn ordering() {
        use std::cmp::Ordering::*;
        let c = |t: &ColumnType, a: &CqlValue, b: &CqlValue| compare_values(t, a, b);
        assert_eq!(
            c(&ColumnType::Int, &CqlValue::Int(-1), &CqlValue::Int(1)),
            Less
        );
        assert_eq!(
            c(
                &ColumnType::BigInt,
                &CqlValue::BigInt(i64::MIN),
                &CqlValue::BigInt(0)
            ),
            Less
        );
        assert_eq!(
            c(
                &ColumnType::Double,
                &CqlValue::Double(f64::NAN),
                &CqlValue::Double(1e300)
            ),
            Greater
        );
        assert_eq!(
            c(&ColumnType::Int, &CqlValue::Empty, &CqlValue::Int(i32::MIN)),
            Less
        );
        let v = |s: &str| CqlValue::Varint(varint_from_str(s).unwrap());
        assert_eq!(c(&ColumnType::Varint, &v("-300"), &v("-2")), Less);
        assert_eq!(c(&ColumnType::Varint, &v("300"), &v("2")), Greater);
        let dec = |s: &str| {
            let (unscaled, scale) = decimal_from_str(s).unwrap();
            CqlValue::Decimal { unscaled, scale }
        };
        assert_eq!(c(&ColumnType::Decimal, &dec("1.50"), &dec("1.5")), Equal);
        assert_eq!(c(&ColumnType::Decimal, &dec("1.49"), &dec("1.5")), Less);
        assert_eq!(c(&ColumnType::Decimal, &dec("-10"), &dec("-9.99")), Less);
        assert_eq!(c(&ColumnType::Decimal, &dec("100"), &dec("99.9")), Greater);
        // timeuuids order by time first
        let mut early = [0u8; 16];
        early[6] = 0x10; // version 1, time_hi 0
        early[3] = 0xff; // large time_low
        let mut late = [0u8; 16];
        late[6] = 0x10;
        late[7] = 0x01; // larger time_hi
        assert_eq!(
            c(
                &ColumnType::Timeuuid,
                &CqlValue::Timeuuid(early),
                &CqlValue::Timeuuid(late)
            ),
            Less
        );
        // timeuuid low bytes compare signed
        let mut a = late;
        a[8] = 0x80;
        assert_eq!(
            c(
                &ColumnType::Timeuuid,
                &CqlValue::Timeuuid(a),
                &CqlValue::Timeuuid(late)
            ),
            Less
        );
        assert_eq!(
            c(&ColumnType::Uuid, &CqlValue::Uuid(a), &CqlValue::Uuid(late)),
            Greater
        );
        let lt = ColumnType::Frozen(Box::new(ColumnType::List(Box::new(ColumnType::Int))));
        let l = |v: &[i32]| CqlValue::List(v.iter().map(|&i| CqlValue::Int(i)).collect());
        assert_eq!(c(&lt, &l(&[1, 2]), &l(&[1, 2, 0])), Less);
        assert_eq!(c(&lt, &l(&[-1, 5]), &l(&[1])), Less);
        let tt = ColumnType::Tuple(vec![ColumnType::Int, ColumnType::Int]);
        let t = |a: Option<i32>, b: Option<i32>| {
            CqlValue::Tuple(vec![a.map(CqlValue::Int), b.map(CqlValue::Int)])
        };
        assert_eq!(c(&tt, &t(None, Some(1)), &t(Some(-5), None)), Less);
        assert_eq!(
            c(
                &tt,
                &t(Some(1), None),
                &CqlValue::Tuple(vec![Some(CqlValue::Int(1))])
            ),
            Equal
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00.000Z");
        assert_eq!(
            format_timestamp(1_296_705_900_000),
            "2011-02-03 04:05:00.000Z"
        );
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59.999Z");
        assert_eq!(format_date(DATE_EPOCH), "1970-01-01");
        assert_eq!(format_date(DATE_EPOCH - 1), "1969-12-31");
        assert_eq!(format_date(0), "-5877641-06-23");
        assert_eq!(format_date(u32::MAX), "+5881580-07-11");
        assert_eq!(format_time(3_723_000_000_001), "01:02:03.000000001");
        assert_eq!(
            format_duration(14, 3, 3_600_000_000_000 + 1),
            "1y2mo3d1h1ns"
        );
        assert_eq!(format_duration(0, 0, -90_000_000_000), "-1m30s");
        assert_eq!(format_double(1.0), "1.0");
        assert_eq!(format_double(1e10), "1.0E10");
        assert_eq!(format_double(1.5e-5), "1.5E-5");
        assert_eq!(format_double(123.25), "123.25");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(f32::NEG_INFINITY), "-Infinity");
        for days in [-1_000_000i64, -1, 0, 59, 365 * 400, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let u = parse_uuid("123E4567-e89b-12d3-a456-426655440000").unwrap();
        assert_eq!(format_uuid(&u), "123e4567-e89b-12d3-a456-426655440000");
        assert!(parse_uuid("123e4567e89b-12d3-a456-4266554400000").is_none());
    }

    #[test]
    fn cql_literals() {
        assert_eq!(to_cql_literal(&CqlValue::Text("it's".into())), "'it''s'");
        assert_eq!(to_cql_literal(&CqlValue::Blob(vec![0xca, 0xfe])), "0xcafe");
        assert_eq!(
            to_cql_literal(&CqlValue::Timestamp(1_296_705_900_000)),
            "'2011-02-03T04:05:00.000Z'"
        );
        assert_eq!(
            to_cql_literal(&CqlValue::Map(vec![(
                CqlValue::Text("a".into()),
                CqlValue::List(vec![CqlValue::Int(1)])
            )])),
            "{'a': [1]}"
        );
        assert_eq!(
            to_cql_literal(&CqlValue::Udt(vec![
                ("a".into(), Some(CqlValue::Int(1))),
                ("B".into(), None)
            ])),
            "{a: 1, \"B\": null}"
        );
        assert_eq!(
            to_cql_literal(&CqlValue::Tuple(vec![Some(CqlValue::Boolean(true)), None])),
            "(true, null)"
        );
        assert_eq!(
            to_cql_literal(&CqlValue::Duration {
                months: 0,
                days: 0,
                nanos: 0
            }),
            "0s"
        );
    }

    /// Random and mutated inputs: never panic, and `validate` accepts
    /// exactly what `deserialize` accepts.
    #[test]
    fn untrusted_bytes_never_panic() {
        let udt = ColumnType::Udt {
            keyspace: "ks".into(),
            name: "u".into(),
            fields: vec![
                ("a".into(), ColumnType::Int),
                (
                    "b".into(),
                    ColumnType::Frozen(Box::new(ColumnType::List(Box::new(ColumnType::Text)))),
                ),
            ],
        };
        let types = vec![
            ColumnType::Int,
            ColumnType::SmallInt,
            ColumnType::Text,
            ColumnType::Ascii,
            ColumnType::Timeuuid,
            ColumnType::Duration,
            ColumnType::Decimal,
            ColumnType::Varint,
            ColumnType::Inet,
            ColumnType::Date,
            ColumnType::List(Box::new(ColumnType::Int)),
            ColumnType::Map(
                Box::new(ColumnType::Text),
                Box::new(ColumnType::Frozen(Box::new(ColumnType::List(Box::new(
                    ColumnType::Int,
                ))))),
            ),
            ColumnType::Tuple(vec![
                ColumnType::Int,
                ColumnType::Text,
                ColumnType::Set(Box::new(ColumnType::Int)),
            ]),
            udt,
        ];
        let seeds: Vec<Vec<u8>> = vec![
            ser(&CqlValue::List(vec![CqlValue::Int(1), CqlValue::Int(-2)])),
            ser(&CqlValue::Map(vec![(
                CqlValue::Text("k".into()),
                CqlValue::List(vec![CqlValue::Int(3)]),
            )])),
            ser(&CqlValue::Tuple(vec![
                Some(CqlValue::Int(1)),
                None,
                Some(CqlValue::Set(vec![CqlValue::Int(1)])),
            ])),
            ser(&CqlValue::Duration {
                months: 1,
                days: 2,
                nanos: 3,
            }),
            vec![0xff; 12],
            vec![0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1],
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..4000 {
            let mut input = if round % 2 == 0 {
                seeds[(rnd() as usize) % seeds.len()].clone()
            } else {
                (0..(rnd() % 24)).map(|_| rnd() as u8).collect()
            };
            if !input.is_empty() {
                match rnd() % 3 {
                    0 => {
                        let at = (rnd() as usize) % input.len();
                        input[at] ^= 1 << (rnd() % 8);
                    }
                    1 => {
                        let n = (rnd() as usize) % input.len();
                        input.truncate(n);
                    }
                    _ => input.push(rnd() as u8),
                }
            }
            for ty in &types {
                let v = validate(ty, &input);
                let d = deserialize(ty, &input);
                assert_eq!(v.is_ok(), d.is_ok(), "{ty} {input:02x?} {v:?} {d:?}");
                if let Ok(value) = d {
                    // Valid values re-serialise to something valid.
                    let again = ser(&value);
                    assert!(
                        validate(ty, &again).is_ok() || value == CqlValue::Empty,
                        "{ty}"
                    );
                }
                let _ = compare_serialized(ty, &input, &seeds[0]);
                let _ = compare_serialized(ty, &seeds[1], &input);
            }
        }
    }
}
