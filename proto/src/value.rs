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
    Decimal { unscaled: Vec<u8>, scale: i32 },
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
    Duration { months: i32, days: i32, nanos: i64 },
    List(Vec<CqlValue>),
    Set(Vec<CqlValue>),
    Map(Vec<(CqlValue, CqlValue)>),
    Tuple(Vec<Option<CqlValue>>),
    Udt(Vec<(String, Option<CqlValue>)>),
    /// A zero-length value of a type for which that is not a natural value
    /// (e.g. an empty `int`), which CQL allows.
    Empty,
}
