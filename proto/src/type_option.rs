//! The `[option]` encoding of a [`ColumnType`] in result and prepared
//! metadata (spec section 4.2.5.2).
//!
//! `Frozen` is transparent on the wire. Types newer than the negotiated
//! protocol version are sent as `Custom` with their Cassandra class name,
//! as Cassandra's `DataType.fromType` does: `duration` before v5, and
//! `date`, `time`, `smallint`, `tinyint` before v4.

use crate::error::ProtocolError;
use crate::types::{self, Reader};
use crate::value::ColumnType;

/// `[option]` id of a custom type: followed by a Java class name `[string]`.
pub const TYPE_CUSTOM: u16 = 0x0000;
/// `ascii`.
pub const TYPE_ASCII: u16 = 0x0001;
/// `bigint`.
pub const TYPE_BIGINT: u16 = 0x0002;
/// `blob`.
pub const TYPE_BLOB: u16 = 0x0003;
/// `boolean`.
pub const TYPE_BOOLEAN: u16 = 0x0004;
/// `counter`.
pub const TYPE_COUNTER: u16 = 0x0005;
/// `decimal`.
pub const TYPE_DECIMAL: u16 = 0x0006;
/// `double`.
pub const TYPE_DOUBLE: u16 = 0x0007;
/// `float`.
pub const TYPE_FLOAT: u16 = 0x0008;
/// `int`.
pub const TYPE_INT: u16 = 0x0009;
/// `text` in protocol v1 only; later versions read it as `varchar`.
pub const TYPE_TEXT_V1: u16 = 0x000A;
/// `timestamp`.
pub const TYPE_TIMESTAMP: u16 = 0x000B;
/// `uuid`.
pub const TYPE_UUID: u16 = 0x000C;
/// `varchar` / `text`.
pub const TYPE_VARCHAR: u16 = 0x000D;
/// `varint`.
pub const TYPE_VARINT: u16 = 0x000E;
/// `timeuuid`.
pub const TYPE_TIMEUUID: u16 = 0x000F;
/// `inet`.
pub const TYPE_INET: u16 = 0x0010;
/// `date` (v4+).
pub const TYPE_DATE: u16 = 0x0011;
/// `time` (v4+).
pub const TYPE_TIME: u16 = 0x0012;
/// `smallint` (v4+).
pub const TYPE_SMALLINT: u16 = 0x0013;
/// `tinyint` (v4+).
pub const TYPE_TINYINT: u16 = 0x0014;
/// `duration` (v5+).
pub const TYPE_DURATION: u16 = 0x0015;
/// `list<e>`: followed by the element `[option]`.
pub const TYPE_LIST: u16 = 0x0020;
/// `map<k, v>`: followed by the key and value `[option]`s.
pub const TYPE_MAP: u16 = 0x0021;
/// `set<e>`: followed by the element `[option]`.
pub const TYPE_SET: u16 = 0x0022;
/// A user type: keyspace, name, and `[short]` n (name, `[option]`) fields.
pub const TYPE_UDT: u16 = 0x0030;
/// `tuple<...>`: `[short]` n and n `[option]`s.
pub const TYPE_TUPLE: u16 = 0x0031;

/// Cassandra's class name of `duration`, sent as a custom type before v5.
pub const DURATION_CLASS: &str = "org.apache.cassandra.db.marshal.DurationType";
/// Cassandra's class name of `date`, sent as a custom type in v3.
pub const DATE_CLASS: &str = "org.apache.cassandra.db.marshal.SimpleDateType";
/// Cassandra's class name of `time`, sent as a custom type in v3.
pub const TIME_CLASS: &str = "org.apache.cassandra.db.marshal.TimeType";
/// Cassandra's class name of `smallint`, sent as a custom type in v3.
pub const SMALLINT_CLASS: &str = "org.apache.cassandra.db.marshal.ShortType";
/// Cassandra's class name of `tinyint`, sent as a custom type in v3.
pub const TINYINT_CLASS: &str = "org.apache.cassandra.db.marshal.ByteType";

/// Deepest type nesting accepted when decoding, so hostile input cannot
/// exhaust the stack.
pub const MAX_TYPE_DEPTH: usize = 64;

/// Appends the `[option]` for `ty`, as the newest protocol version (v5)
/// sends it.
pub fn write_type_option(out: &mut Vec<u8>, ty: &ColumnType) {
    write_type_option_for_version(out, ty, 5);
}

/// Appends the `[option]` for `ty` as protocol `version` sends it.
pub fn write_type_option_for_version(out: &mut Vec<u8>, ty: &ColumnType, version: u8) {
    let custom = |out: &mut Vec<u8>, class: &str| {
        types::write_short(out, TYPE_CUSTOM);
        types::write_string(out, class);
    };
    match ty {
        ColumnType::Custom(class) => custom(out, class),
        ColumnType::Ascii => types::write_short(out, TYPE_ASCII),
        ColumnType::BigInt => types::write_short(out, TYPE_BIGINT),
        ColumnType::Blob => types::write_short(out, TYPE_BLOB),
        ColumnType::Boolean => types::write_short(out, TYPE_BOOLEAN),
        ColumnType::Counter => types::write_short(out, TYPE_COUNTER),
        ColumnType::Decimal => types::write_short(out, TYPE_DECIMAL),
        ColumnType::Double => types::write_short(out, TYPE_DOUBLE),
        ColumnType::Float => types::write_short(out, TYPE_FLOAT),
        ColumnType::Int => types::write_short(out, TYPE_INT),
        ColumnType::Timestamp => types::write_short(out, TYPE_TIMESTAMP),
        ColumnType::Uuid => types::write_short(out, TYPE_UUID),
        ColumnType::Text => types::write_short(out, TYPE_VARCHAR),
        ColumnType::Varint => types::write_short(out, TYPE_VARINT),
        ColumnType::Timeuuid => types::write_short(out, TYPE_TIMEUUID),
        ColumnType::Inet => types::write_short(out, TYPE_INET),
        ColumnType::Date if version < 4 => custom(out, DATE_CLASS),
        ColumnType::Date => types::write_short(out, TYPE_DATE),
        ColumnType::Time if version < 4 => custom(out, TIME_CLASS),
        ColumnType::Time => types::write_short(out, TYPE_TIME),
        ColumnType::SmallInt if version < 4 => custom(out, SMALLINT_CLASS),
        ColumnType::SmallInt => types::write_short(out, TYPE_SMALLINT),
        ColumnType::TinyInt if version < 4 => custom(out, TINYINT_CLASS),
        ColumnType::TinyInt => types::write_short(out, TYPE_TINYINT),
        ColumnType::Duration if version < 5 => custom(out, DURATION_CLASS),
        ColumnType::Duration => types::write_short(out, TYPE_DURATION),
        ColumnType::List(e) => {
            types::write_short(out, TYPE_LIST);
            write_type_option_for_version(out, e, version);
        }
        ColumnType::Set(e) => {
            types::write_short(out, TYPE_SET);
            write_type_option_for_version(out, e, version);
        }
        ColumnType::Map(k, v) => {
            types::write_short(out, TYPE_MAP);
            write_type_option_for_version(out, k, version);
            write_type_option_for_version(out, v, version);
        }
        ColumnType::Udt {
            keyspace,
            name,
            fields,
        } => {
            types::write_short(out, TYPE_UDT);
            types::write_string(out, keyspace);
            types::write_string(out, name);
            let n = fields.len().min(usize::from(u16::MAX));
            types::write_short(out, n as u16);
            for (field, fty) in &fields[..n] {
                types::write_string(out, field);
                write_type_option_for_version(out, fty, version);
            }
        }
        ColumnType::Tuple(elems) => {
            types::write_short(out, TYPE_TUPLE);
            let n = elems.len().min(usize::from(u16::MAX));
            types::write_short(out, n as u16);
            for e in &elems[..n] {
                write_type_option_for_version(out, e, version);
            }
        }
        ColumnType::Frozen(inner) => write_type_option_for_version(out, inner, version),
    }
}

/// Reads an `[option]` type description. Custom types naming a class that
/// has a native id (e.g. `DurationType`) decode to the native type.
pub fn read_type_option(r: &mut Reader<'_>) -> Result<ColumnType, ProtocolError> {
    read_type_option_depth(r, 0)
}

fn read_type_option_depth(r: &mut Reader<'_>, depth: usize) -> Result<ColumnType, ProtocolError> {
    if depth > MAX_TYPE_DEPTH {
        return Err(ProtocolError::invalid("Type description nested too deeply"));
    }
    let id = r.read_short()?;
    Ok(match id {
        TYPE_CUSTOM => {
            let class = r.read_string()?;
            match class {
                DURATION_CLASS => ColumnType::Duration,
                DATE_CLASS => ColumnType::Date,
                TIME_CLASS => ColumnType::Time,
                SMALLINT_CLASS => ColumnType::SmallInt,
                TINYINT_CLASS => ColumnType::TinyInt,
                other => ColumnType::Custom(other.to_string()),
            }
        }
        TYPE_ASCII => ColumnType::Ascii,
        TYPE_BIGINT => ColumnType::BigInt,
        TYPE_BLOB => ColumnType::Blob,
        TYPE_BOOLEAN => ColumnType::Boolean,
        TYPE_COUNTER => ColumnType::Counter,
        TYPE_DECIMAL => ColumnType::Decimal,
        TYPE_DOUBLE => ColumnType::Double,
        TYPE_FLOAT => ColumnType::Float,
        TYPE_INT => ColumnType::Int,
        TYPE_TEXT_V1 | TYPE_VARCHAR => ColumnType::Text,
        TYPE_TIMESTAMP => ColumnType::Timestamp,
        TYPE_UUID => ColumnType::Uuid,
        TYPE_VARINT => ColumnType::Varint,
        TYPE_TIMEUUID => ColumnType::Timeuuid,
        TYPE_INET => ColumnType::Inet,
        TYPE_DATE => ColumnType::Date,
        TYPE_TIME => ColumnType::Time,
        TYPE_SMALLINT => ColumnType::SmallInt,
        TYPE_TINYINT => ColumnType::TinyInt,
        TYPE_DURATION => ColumnType::Duration,
        TYPE_LIST => ColumnType::List(Box::new(read_type_option_depth(r, depth + 1)?)),
        TYPE_SET => ColumnType::Set(Box::new(read_type_option_depth(r, depth + 1)?)),
        TYPE_MAP => {
            let k = read_type_option_depth(r, depth + 1)?;
            let v = read_type_option_depth(r, depth + 1)?;
            ColumnType::Map(Box::new(k), Box::new(v))
        }
        TYPE_UDT => {
            let keyspace = r.read_string()?.to_string();
            let name = r.read_string()?.to_string();
            let n = usize::from(r.read_short()?);
            // A field is at least a 2-byte name length and a 2-byte id.
            let mut fields = Vec::with_capacity(n.min(r.remaining() / 4));
            for _ in 0..n {
                let field = r.read_string()?.to_string();
                fields.push((field, read_type_option_depth(r, depth + 1)?));
            }
            ColumnType::Udt {
                keyspace,
                name,
                fields,
            }
        }
        TYPE_TUPLE => {
            let n = usize::from(r.read_short()?);
            let mut elems = Vec::with_capacity(n.min(r.remaining() / 2));
            for _ in 0..n {
                elems.push(read_type_option_depth(r, depth + 1)?);
            }
            ColumnType::Tuple(elems)
        }
        other => return Err(ProtocolError::UnknownTypeId(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_types() -> Vec<ColumnType> {
        use ColumnType::*;
        vec![
            Custom("org.example.MyType".into()),
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
            Text,
            Varint,
            Timeuuid,
            Inet,
            Date,
            Time,
            SmallInt,
            TinyInt,
            Duration,
            List(Box::new(Int)),
            Set(Box::new(Text)),
            Map(Box::new(Text), Box::new(List(Box::new(Blob)))),
            Udt {
                keyspace: "ks".into(),
                name: "address".into(),
                fields: vec![("street".into(), Text), ("zip".into(), Int)],
            },
            Tuple(vec![Int, Text, Set(Box::new(Uuid))]),
        ]
    }

    #[test]
    fn every_type_round_trips_in_every_version() {
        for version in [3u8, 4, 5] {
            for ty in all_types() {
                let mut out = Vec::new();
                write_type_option_for_version(&mut out, &ty, version);
                let mut r = Reader::new(&out);
                assert_eq!(read_type_option(&mut r), Ok(ty.clone()), "v{version}");
                assert_eq!(r.remaining(), 0);
                for cut in 0..out.len() {
                    assert!(read_type_option(&mut Reader::new(&out[..cut])).is_err());
                }
            }
        }
    }

    #[test]
    fn frozen_is_transparent() {
        let frozen = ColumnType::Frozen(Box::new(ColumnType::Map(
            Box::new(ColumnType::Text),
            Box::new(ColumnType::Text),
        )));
        let mut out = Vec::new();
        write_type_option(&mut out, &frozen);
        assert_eq!(out, [0x00, 0x21, 0x00, 0x0D, 0x00, 0x0D]);
    }

    #[test]
    fn version_dependent_ids() {
        let mut v5 = Vec::new();
        write_type_option_for_version(&mut v5, &ColumnType::Duration, 5);
        assert_eq!(v5, [0x00, 0x15]);
        let mut v4 = Vec::new();
        write_type_option_for_version(&mut v4, &ColumnType::Duration, 4);
        assert_eq!(&v4[..2], &[0, 0]);
        assert_eq!(&v4[4..], DURATION_CLASS.as_bytes());
        let mut v4 = Vec::new();
        write_type_option_for_version(&mut v4, &ColumnType::SmallInt, 4);
        assert_eq!(v4, [0x00, 0x13]);
        let mut v3 = Vec::new();
        write_type_option_for_version(&mut v3, &ColumnType::SmallInt, 3);
        assert_eq!(&v3[4..], SMALLINT_CLASS.as_bytes());
    }

    #[test]
    fn hostile_nesting_and_unknown_ids() {
        let mut deep = Vec::new();
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0x00, 0x20]);
        }
        deep.extend_from_slice(&[0x00, 0x09]);
        assert!(read_type_option(&mut Reader::new(&deep)).is_err());
        assert_eq!(
            read_type_option(&mut Reader::new(&[0x00, 0x16])),
            Err(ProtocolError::UnknownTypeId(0x16))
        );
        // A tuple claiming 65535 elements with none present.
        assert!(read_type_option(&mut Reader::new(&[0x00, 0x31, 0xFF, 0xFF])).is_err());
    }
}
