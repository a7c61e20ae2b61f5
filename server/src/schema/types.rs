//! CQL type strings and identifiers as Cassandra prints them in
//! `system_schema` and `DESCRIBE` output, and the parser for the same strings
//! (used when loading a saved schema).

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::value::ColumnType;

use super::UserType;

/// An identifier as CQL must write it: as is when it matches
/// `[a-z][a-z0-9_]*` and is not reserved, otherwise double-quoted with `"`
/// doubled (Cassandra's `ColumnIdentifier.maybeQuote`).
pub fn maybe_quote(name: &str) -> String {
    proto::value::maybe_quote_identifier(name)
}

/// `'text'` with `'` doubled.
pub fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A double printed the way Java's `Double.toString` does (`0.01`, `1.0`,
/// `1.0E-5`), as Cassandra's DESCRIBE output and error messages show them.
pub fn java_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let a = d.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{d}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{d:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    }
}

/// The type as Cassandra's `CQL3Type.toString` prints it (the `type` column
/// of `system_schema.columns`, DESCRIBE): `map<text, int>`,
/// `frozen<list<frozen<address>>>`, `frozen<tuple<int, text>>`; UDTs by
/// their (maybe quoted) name without keyspace; custom types single-quoted.
pub fn cql_type_string(ty: &ColumnType) -> String {
    ty.to_string()
}

/// Whether the type is a non-frozen collection or UDT (Cassandra's
/// `isMultiCell`).
pub fn is_multi_cell(ty: &ColumnType) -> bool {
    matches!(
        ty,
        ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..) | ColumnType::Udt { .. }
    )
}

/// Whether the type is (or is a frozen) collection.
pub fn is_collection(ty: &ColumnType) -> bool {
    match ty {
        ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..) => true,
        ColumnType::Frozen(inner) => is_collection(inner),
        _ => false,
    }
}

/// Whether `duration` appears anywhere in the type.
pub fn references_duration(ty: &ColumnType) -> bool {
    match ty {
        ColumnType::Duration => true,
        ColumnType::List(e) | ColumnType::Set(e) | ColumnType::Frozen(e) => references_duration(e),
        ColumnType::Map(k, v) => references_duration(k) || references_duration(v),
        ColumnType::Tuple(items) => items.iter().any(references_duration),
        ColumnType::Udt { fields, .. } => fields.iter().any(|(_, t)| references_duration(t)),
        _ => false,
    }
}

/// Whether the user type `ks.name` appears anywhere in the type.
pub fn references_udt(ty: &ColumnType, ks: &str, name: &str) -> bool {
    match ty {
        ColumnType::List(e) | ColumnType::Set(e) | ColumnType::Frozen(e) => {
            references_udt(e, ks, name)
        }
        ColumnType::Map(k, v) => references_udt(k, ks, name) || references_udt(v, ks, name),
        ColumnType::Tuple(items) => items.iter().any(|t| references_udt(t, ks, name)),
        ColumnType::Udt {
            keyspace,
            name: n,
            fields,
        } => {
            (keyspace == ks && n == name) || fields.iter().any(|(_, t)| references_udt(t, ks, name))
        }
        _ => false,
    }
}

/// The type with everything nested in it frozen (the canonical form of a
/// type under `frozen<>`); the outer type itself is not wrapped.
pub fn freeze_inner(ty: &ColumnType) -> ColumnType {
    match ty {
        ColumnType::List(e) => ColumnType::List(Box::new(freeze(e))),
        ColumnType::Set(e) => ColumnType::Set(Box::new(freeze(e))),
        ColumnType::Map(k, v) => ColumnType::Map(Box::new(freeze(k)), Box::new(freeze(v))),
        ColumnType::Tuple(items) => ColumnType::Tuple(items.iter().map(freeze).collect()),
        ColumnType::Udt {
            keyspace,
            name,
            fields,
        } => ColumnType::Udt {
            keyspace: keyspace.clone(),
            name: name.clone(),
            fields: fields.iter().map(|(n, t)| (n.clone(), freeze(t))).collect(),
        },
        ColumnType::Frozen(inner) => freeze_inner(inner),
        other => other.clone(),
    }
}

/// The canonical frozen form of a type: collections, tuples and UDTs wrapped
/// in `Frozen` with everything inside frozen; other types unchanged.
pub fn freeze(ty: &ColumnType) -> ColumnType {
    match ty {
        ColumnType::List(_)
        | ColumnType::Set(_)
        | ColumnType::Map(..)
        | ColumnType::Tuple(_)
        | ColumnType::Udt { .. } => ColumnType::Frozen(Box::new(freeze_inner(ty))),
        ColumnType::Frozen(inner) => freeze(inner),
        other => other.clone(),
    }
}

/// The type with user types replaced by tuples of their fields (how
/// Cassandra records the type of a dropped column).
pub fn expand_user_types(ty: &ColumnType) -> ColumnType {
    match ty {
        ColumnType::List(e) => ColumnType::List(Box::new(expand_user_types(e))),
        ColumnType::Set(e) => ColumnType::Set(Box::new(expand_user_types(e))),
        ColumnType::Map(k, v) => ColumnType::Map(
            Box::new(expand_user_types(k)),
            Box::new(expand_user_types(v)),
        ),
        ColumnType::Tuple(items) => {
            ColumnType::Tuple(items.iter().map(expand_user_types).collect())
        }
        ColumnType::Frozen(inner) => match expand_user_types(inner) {
            t @ ColumnType::Frozen(_) => t,
            t => ColumnType::Frozen(Box::new(t)),
        },
        ColumnType::Udt { fields, .. } => ColumnType::Frozen(Box::new(ColumnType::Tuple(
            fields
                .iter()
                .map(|(_, t)| freeze(&expand_user_types(t)))
                .collect(),
        ))),
        other => other.clone(),
    }
}

/// Re-resolves every user type inside `ty` against the current definitions
/// in `types` (after `ALTER TYPE`), keeping the frozen-ness of each use.
pub fn refresh_user_types(ty: &ColumnType, types: &BTreeMap<String, Arc<UserType>>) -> ColumnType {
    match ty {
        ColumnType::List(e) => ColumnType::List(Box::new(refresh_user_types(e, types))),
        ColumnType::Set(e) => ColumnType::Set(Box::new(refresh_user_types(e, types))),
        ColumnType::Map(k, v) => ColumnType::Map(
            Box::new(refresh_user_types(k, types)),
            Box::new(refresh_user_types(v, types)),
        ),
        ColumnType::Tuple(items) => {
            ColumnType::Tuple(items.iter().map(|t| refresh_user_types(t, types)).collect())
        }
        ColumnType::Frozen(inner) => freeze(&refresh_user_types(inner, types)),
        ColumnType::Udt {
            keyspace,
            name,
            fields,
        } => match types.get(name) {
            Some(ut) if &ut.keyspace == keyspace => ColumnType::Udt {
                keyspace: keyspace.clone(),
                name: name.clone(),
                fields: ut
                    .field_names
                    .iter()
                    .cloned()
                    .zip(ut.field_types.iter().map(|t| refresh_user_types(t, types)))
                    .collect(),
            },
            _ => ColumnType::Udt {
                keyspace: keyspace.clone(),
                name: name.clone(),
                fields: fields.clone(),
            },
        },
        other => other.clone(),
    }
}

/// Makes a type canonical (see the module doc of [`super`]): tuples and
/// everything under `frozen<>` wrapped in `Frozen`.
pub fn canonical(ty: &ColumnType) -> ColumnType {
    match ty {
        ColumnType::Frozen(inner) => freeze(inner),
        ColumnType::Tuple(_) => freeze(ty),
        ColumnType::List(e) => ColumnType::List(Box::new(canonical(e))),
        ColumnType::Set(e) => ColumnType::Set(Box::new(canonical(e))),
        ColumnType::Map(k, v) => ColumnType::Map(Box::new(canonical(k)), Box::new(canonical(v))),
        ColumnType::Udt {
            keyspace,
            name,
            fields,
        } => ColumnType::Udt {
            keyspace: keyspace.clone(),
            name: name.clone(),
            fields: fields
                .iter()
                .map(|(n, t)| (n.clone(), canonical(t)))
                .collect(),
        },
        other => other.clone(),
    }
}

/// The `ColumnType::Udt` for a user type, fields as defined.
pub fn udt_type(ut: &UserType) -> ColumnType {
    ColumnType::Udt {
        keyspace: ut.keyspace.clone(),
        name: ut.name.clone(),
        fields: ut
            .field_names
            .iter()
            .cloned()
            .zip(ut.field_types.iter().cloned())
            .collect(),
    }
}

/// Parses a type string as [`cql_type_string`] prints it. User types are
/// looked up in `types` (those of `keyspace`). The result is canonical.
pub fn parse_cql_type(
    s: &str,
    keyspace: &str,
    types: &BTreeMap<String, Arc<UserType>>,
) -> Result<ColumnType, String> {
    let resolve = |name: &str| -> Option<ColumnType> {
        let name = name
            .strip_prefix(keyspace)
            .and_then(|n| n.strip_prefix('.'))
            .unwrap_or(name);
        types.get(name).map(|ut| udt_type(ut))
    };
    ColumnType::parse_with(s, &resolve)
        .map(|t| canonical(&t))
        .map_err(|e| match e.strip_prefix("Unknown type ") {
            Some(name) => format!("Unknown type {keyspace}.{name}"),
            None => e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(maybe_quote("abc_1"), "abc_1");
        assert_eq!(maybe_quote("Abc"), "\"Abc\"");
        assert_eq!(maybe_quote("select"), "\"select\"");
        assert_eq!(maybe_quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(maybe_quote("1a"), "\"1a\"");
        assert_eq!(single_quote("it's"), "'it''s'");
    }

    #[test]
    fn java_doubles() {
        assert_eq!(java_double(0.01), "0.01");
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(0.1), "0.1");
        assert_eq!(java_double(1e-5), "1.0E-5");
        assert_eq!(java_double(6.71e-5), "6.71E-5");
        assert_eq!(java_double(12345678.0), "1.2345678E7");
        assert_eq!(java_double(0.0), "0.0");
    }

    #[test]
    fn type_strings_round_trip() {
        let types = BTreeMap::new();
        for s in [
            "int",
            "map<text, int>",
            "frozen<map<text, list<int>>>",
            "list<frozen<list<int>>>",
            "frozen<tuple<int, text>>",
            "'org.apache.cassandra.db.marshal.BytesType'",
        ] {
            let t = parse_cql_type(s, "ks", &types).unwrap();
            assert_eq!(cql_type_string(&t), s);
        }
        // Frozen canonicalises nested types.
        let t = parse_cql_type("frozen<map<text, list<int>>>", "ks", &types).unwrap();
        assert_eq!(
            t,
            ColumnType::Frozen(Box::new(ColumnType::Map(
                Box::new(ColumnType::Text),
                Box::new(ColumnType::Frozen(Box::new(ColumnType::List(Box::new(
                    ColumnType::Int
                )))))
            )))
        );
        assert_eq!(
            parse_cql_type("varchar", "ks", &types).unwrap(),
            ColumnType::Text
        );
        assert!(parse_cql_type("address", "ks", &types).is_err());
    }

    #[test]
    fn udt_strings() {
        let mut types = BTreeMap::new();
        types.insert(
            "Addr".to_string(),
            Arc::new(UserType {
                keyspace: "ks".into(),
                name: "Addr".into(),
                field_names: vec!["street".into()],
                field_types: vec![ColumnType::Text],
            }),
        );
        let t = parse_cql_type("frozen<\"Addr\">", "ks", &types).unwrap();
        assert_eq!(cql_type_string(&t), "frozen<\"Addr\">");
        assert!(references_udt(&t, "ks", "Addr"));
        assert_eq!(
            cql_type_string(&expand_user_types(&t)),
            "frozen<tuple<text>>"
        );
    }
}
