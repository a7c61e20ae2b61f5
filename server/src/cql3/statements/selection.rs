//! The SELECT clause: what each result column is and how it is computed
//! from a row (columns, `writetime`, `ttl`, `token`, functions, casts,
//! `toJson`, aggregates).

use bytes::Bytes;
use engine::mutation::{Cell, ColumnData, Row};
use proto::error::ErrorResponse;
use proto::value::{ColumnType, CqlValue};

use super::{is_multi_cell, unfrozen, ColumnSpec};
use crate::cql3::ast::{Selection, Selector};
use crate::cql3::{functions, values};
use crate::schema::{ColumnKind, TableMetadata};

/// One row as the selection sees it.
pub struct RowRef<'a> {
    /// Partition key components.
    pub pk: &'a [Bytes],
    pub token: i64,
    /// `None` for the static-only row of a partition without rows.
    pub clustering: Option<&'a [Bytes]>,
    pub static_row: Option<&'a Row>,
    pub row: Option<&'a Row>,
    /// Seconds, for `ttl()`.
    pub now: i32,
}

impl RowRef<'_> {
    fn cells(&self, table: &TableMetadata, idx: usize) -> Option<&ColumnData> {
        let col = &table.columns[idx];
        let row = match col.kind {
            ColumnKind::Static => self.static_row?,
            ColumnKind::Regular => self.row?,
            _ => return None,
        };
        row.columns
            .binary_search_by_key(&col.id, |(id, _)| *id)
            .ok()
            .map(|i| &row.columns[i].1)
    }

    fn simple_cell(&self, table: &TableMetadata, idx: usize) -> Option<&Cell> {
        match self.cells(table, idx)? {
            ColumnData::Simple(c) if c.value.is_some() => Some(c),
            _ => None,
        }
    }

    /// The serialised value of column `idx` in this row.
    pub fn value(&self, table: &TableMetadata, idx: usize) -> Option<Bytes> {
        let col = &table.columns[idx];
        match col.kind {
            ColumnKind::PartitionKey(p) => self.pk.get(p).cloned(),
            ColumnKind::Clustering(p) => self.clustering?.get(p).cloned(),
            ColumnKind::Static | ColumnKind::Regular => match self.cells(table, idx)? {
                ColumnData::Simple(c) => c.value.clone(),
                ColumnData::Complex { cells, .. } => serialize_complex(&col.ty, cells),
            },
        }
    }
}

/// Serialises the live cells of a non-frozen collection or UDT as its
/// frozen value.
pub fn serialize_complex(ty: &ColumnType, cells: &[(Bytes, Cell)]) -> Option<Bytes> {
    let mut live: Vec<&(Bytes, Cell)> = cells.iter().filter(|(_, c)| c.value.is_some()).collect();
    if live.is_empty() {
        return None;
    }
    // The engine keeps paths in byte order; sets and maps are ordered by
    // their element (key) type, as Cassandra returns them.
    if let ColumnType::Set(e) | ColumnType::Map(e, _) = ty {
        let kt = super::key_type(e);
        live.sort_by(|a, b| kt.compare(&a.0, &b.0));
    }
    let mut out = Vec::new();
    let push = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as i32).to_be_bytes());
        out.extend_from_slice(b);
    };
    match ty {
        ColumnType::List(_) => {
            out.extend_from_slice(&(live.len() as i32).to_be_bytes());
            for (_, c) in &live {
                push(&mut out, c.value.as_deref().unwrap_or_default());
            }
        }
        ColumnType::Set(_) => {
            out.extend_from_slice(&(live.len() as i32).to_be_bytes());
            for (path, _) in &live {
                push(&mut out, path);
            }
        }
        ColumnType::Map(_, _) => {
            out.extend_from_slice(&(live.len() as i32).to_be_bytes());
            for (path, c) in &live {
                push(&mut out, path);
                push(&mut out, c.value.as_deref().unwrap_or_default());
            }
        }
        ColumnType::Udt { fields, .. } => {
            for i in 0..fields.len() {
                let key = (i as u16).to_be_bytes();
                match live.iter().find(|(p, _)| p[..] == key[..]) {
                    Some((_, c)) => push(&mut out, c.value.as_deref().unwrap_or_default()),
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
        }
        _ => return None,
    }
    Some(Bytes::from(out))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    CountRows,
    Count,
    Min,
    Max,
    Sum,
    Avg,
}

/// A compiled selector.
#[derive(Debug, Clone)]
pub enum Sel {
    Column(usize),
    WriteTime(usize),
    Ttl(usize),
    Token,
    ToJson(Box<Sel>, ColumnType),
    Function {
        name: String,
        args: Vec<Sel>,
        arg_types: Vec<ColumnType>,
    },
    Cast(Box<Sel>, ColumnType, ColumnType),
    Field(Box<Sel>, usize),
    /// One element of a map (its value) or set.
    Element {
        inner: Box<Sel>,
        key: SelKey,
        key_type: ColumnType,
        is_map: bool,
    },
    /// The elements of a map or set between two inclusive bounds.
    Slice {
        inner: Box<Sel>,
        from: Option<SelKey>,
        to: Option<SelKey>,
        key_type: ColumnType,
        is_map: bool,
    },
    Literal(Option<Bytes>),
    Aggregate(AggKind, Option<Box<Sel>>, ColumnType),
}

/// The key (or a slice bound) of an element selection: serialised when the query
/// gave it, a bind marker until `CompiledSelection::bind` reads its value.
#[derive(Debug, Clone)]
pub enum SelKey {
    Value(Bytes),
    Marker(crate::cql3::ast::Term),
}

impl SelKey {
    fn value(&self) -> Result<&Bytes, ErrorResponse> {
        match self {
            SelKey::Value(b) => Ok(b),
            SelKey::Marker(_) => Err(ErrorResponse::server("unbound marker in a selection")),
        }
    }
}

/// The compiled selection of a SELECT.
#[derive(Debug, Clone)]
pub struct CompiledSelection {
    pub items: Vec<(Sel, ColumnSpec)>,
    pub is_aggregate: bool,
    pub is_wildcard: bool,
}

fn invalid(m: impl Into<String>) -> ErrorResponse {
    ErrorResponse::invalid(m)
}

impl CompiledSelection {
    /// Records the receivers of the bind markers used as element keys or slice
    /// bounds (`m[?]`, `s[?..?]`): the map's key type (`key(m)`) or the set's
    /// element type (`value(s)`), as Cassandra names them.
    pub fn note_binds(&self, table: &TableMetadata, binds: &mut super::BindCollector<'_>) {
        fn walk(table: &TableMetadata, s: &Sel, binds: &mut super::BindCollector<'_>) {
            let mut note = |k: Option<&SelKey>, inner: &Sel, ty: &ColumnType, is_map: bool| {
                if let Some(SelKey::Marker(t)) = k {
                    let col = match inner {
                        Sel::Column(i) => table.columns[*i].name.as_str(),
                        _ => "",
                    };
                    let name = if is_map { "key" } else { "value" };
                    binds.note(t, &format!("{name}({col})"), ty);
                }
            };
            match s {
                Sel::Element {
                    inner,
                    key,
                    key_type,
                    is_map,
                } => {
                    note(Some(key), inner, key_type, *is_map);
                    walk(table, inner, binds);
                }
                Sel::Slice {
                    inner,
                    from,
                    to,
                    key_type,
                    is_map,
                } => {
                    note(from.as_ref(), inner, key_type, *is_map);
                    note(to.as_ref(), inner, key_type, *is_map);
                    walk(table, inner, binds);
                }
                Sel::ToJson(inner, _) | Sel::Cast(inner, ..) | Sel::Field(inner, _) => {
                    walk(table, inner, binds)
                }
                Sel::Aggregate(_, Some(inner), _) => walk(table, inner, binds),
                Sel::Function { args, .. } => args.iter().for_each(|a| walk(table, a, binds)),
                _ => {}
            }
        }
        for (s, _) in &self.items {
            walk(table, s, binds);
        }
    }

    /// This selection with the bind markers of element keys and slice bounds
    /// replaced by their values; `None` when it has no markers. An unset slice
    /// bound leaves that side open.
    pub fn bind(
        &self,
        ctx: &crate::cql3::eval::EvalCtx<'_>,
    ) -> Result<Option<CompiledSelection>, ErrorResponse> {
        fn has_markers(s: &Sel) -> bool {
            match s {
                Sel::Element { inner, key, .. } => {
                    matches!(key, SelKey::Marker(_)) || has_markers(inner)
                }
                Sel::Slice {
                    inner, from, to, ..
                } => {
                    matches!(from, Some(SelKey::Marker(_)))
                        || matches!(to, Some(SelKey::Marker(_)))
                        || has_markers(inner)
                }
                Sel::ToJson(inner, _) | Sel::Cast(inner, ..) | Sel::Field(inner, _) => {
                    has_markers(inner)
                }
                Sel::Aggregate(_, Some(inner), _) => has_markers(inner),
                Sel::Function { args, .. } => args.iter().any(has_markers),
                _ => false,
            }
        }
        fn resolve(
            k: &mut Option<SelKey>,
            ty: &ColumnType,
            open_if_unset: bool,
            ctx: &crate::cql3::eval::EvalCtx<'_>,
        ) -> Result<(), ErrorResponse> {
            let Some(SelKey::Marker(t)) = k else {
                return Ok(());
            };
            *k = match crate::cql3::eval::eval(t, ty, ctx)? {
                crate::cql3::eval::Evaluated::Value(b) => Some(SelKey::Value(b)),
                crate::cql3::eval::Evaluated::Unset if open_if_unset => None,
                crate::cql3::eval::Evaluated::Unset => {
                    return Err(invalid("Invalid unset value for element selection"))
                }
                crate::cql3::eval::Evaluated::Null => {
                    return Err(invalid("Invalid null value for element selection"))
                }
            };
            Ok(())
        }
        fn walk(s: &mut Sel, ctx: &crate::cql3::eval::EvalCtx<'_>) -> Result<(), ErrorResponse> {
            match s {
                Sel::Element {
                    inner,
                    key,
                    key_type,
                    ..
                } => {
                    let mut k = Some(key.clone());
                    resolve(&mut k, key_type, false, ctx)?;
                    if let Some(k) = k {
                        *key = k;
                    }
                    walk(inner, ctx)
                }
                Sel::Slice {
                    inner,
                    from,
                    to,
                    key_type,
                    ..
                } => {
                    resolve(from, key_type, true, ctx)?;
                    resolve(to, key_type, true, ctx)?;
                    walk(inner, ctx)
                }
                Sel::ToJson(inner, _) | Sel::Cast(inner, ..) | Sel::Field(inner, _) => {
                    walk(inner, ctx)
                }
                Sel::Aggregate(_, Some(inner), _) => walk(inner, ctx),
                Sel::Function { args, .. } => args.iter_mut().try_for_each(|a| walk(a, ctx)),
                _ => Ok(()),
            }
        }
        if !self.items.iter().any(|(s, _)| has_markers(s)) {
            return Ok(None);
        }
        let mut bound = self.clone();
        for (s, _) in &mut bound.items {
            walk(s, ctx)?;
        }
        Ok(Some(bound))
    }

    pub fn compile(table: &TableMetadata, selection: &Selection) -> Result<Self, ErrorResponse> {
        let spec = |name: String, ty: ColumnType| ColumnSpec {
            keyspace: table.keyspace.clone(),
            table: table.name.clone(),
            name,
            ty,
        };
        let items = match selection {
            Selection::Star => {
                return Ok(CompiledSelection {
                    items: table
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (Sel::Column(i), spec(c.name.clone(), c.ty.clone())))
                        .collect(),
                    is_aggregate: false,
                    is_wildcard: true,
                })
            }
            Selection::Items(items) => items,
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let (sel, name, ty) = compile_selector(table, &item.selector)?;
            out.push((sel, spec(item.alias.clone().unwrap_or(name), ty)));
        }
        let is_aggregate = out.iter().any(|(s, _)| matches!(s, Sel::Aggregate(..)));
        Ok(CompiledSelection {
            items: out,
            is_aggregate,
            is_wildcard: false,
        })
    }

    /// Evaluates every non-aggregate item for a row.
    pub fn row(
        &self,
        table: &TableMetadata,
        r: &RowRef<'_>,
    ) -> Result<Vec<Option<Bytes>>, ErrorResponse> {
        self.items
            .iter()
            .map(|(s, _)| eval_sel(table, s, r))
            .collect()
    }

    pub fn new_aggregates(&self) -> Vec<AggState> {
        self.items.iter().map(|_| AggState::default()).collect()
    }

    /// Feeds one row into the aggregate states.
    pub fn accumulate(
        &self,
        table: &TableMetadata,
        r: &RowRef<'_>,
        states: &mut [AggState],
    ) -> Result<(), ErrorResponse> {
        for ((sel, _), st) in self.items.iter().zip(states.iter_mut()) {
            match sel {
                Sel::Aggregate(kind, arg, ty) => {
                    let v = match arg {
                        Some(a) => eval_sel(table, a, r)?,
                        None => None,
                    };
                    st.add(*kind, v, ty)?;
                }
                other => {
                    if !st.has_first {
                        st.first = eval_sel(table, other, r)?;
                        st.has_first = true;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn finish_aggregates(
        &self,
        states: Vec<AggState>,
    ) -> Result<Vec<Option<Bytes>>, ErrorResponse> {
        self.items
            .iter()
            .zip(states)
            .map(|((sel, _), st)| match sel {
                Sel::Aggregate(kind, _, ty) => st.finish(*kind, ty),
                _ => Ok(st.first),
            })
            .collect()
    }
}

fn selector_name(s: &Selector) -> String {
    match s {
        Selector::Column(c) => c.clone(),
        Selector::WriteTime(c) => format!("writetime({c})"),
        Selector::Ttl(c) => format!("ttl({c})"),
        Selector::CountStar => "count".to_string(),
        Selector::Function { name, args } => {
            format!(
                "system.{name}({})",
                args.iter()
                    .map(selector_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Selector::Cast { selector, ty } => format!(
            "cast({} as {})",
            selector_name(selector),
            cql_type_name(
                &crate::cql3::values::cql_type_to_column_type(ty).unwrap_or(ColumnType::Blob)
            )
        ),
        Selector::Field { selector, field } => format!("{}.{field}", selector_name(selector)),
        Selector::Element { selector, key } => format!("{}[{key}]", selector_name(selector)),
        Selector::Slice { selector, from, to } => format!(
            "{}[{}..{}]",
            selector_name(selector),
            from.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            to.as_ref().map(|t| t.to_string()).unwrap_or_default()
        ),
        Selector::Term(_) => "literal".to_string(),
    }
}

fn compile_selector(
    table: &TableMetadata,
    s: &Selector,
) -> Result<(Sel, String, ColumnType), ErrorResponse> {
    let name = selector_name(s);
    let column = |c: &str| -> Result<usize, ErrorResponse> {
        table
            .column_index(c)
            .ok_or_else(|| invalid(format!("Undefined column name {c} in selection clause")))
    };
    Ok(match s {
        Selector::Column(c) => {
            let i = column(c)?;
            (Sel::Column(i), name, table.columns[i].ty.clone())
        }
        Selector::WriteTime(c) | Selector::Ttl(c) => {
            let i = column(c)?;
            let col = &table.columns[i];
            let f = if matches!(s, Selector::WriteTime(_)) {
                "writeTime"
            } else {
                "ttl"
            };
            if !matches!(col.kind, ColumnKind::Regular | ColumnKind::Static) {
                return Err(invalid(format!(
                    "Cannot use selection function {f} on PRIMARY KEY part {c}"
                )));
            }
            if is_multi_cell(&col.ty) {
                return Err(invalid(format!(
                    "Cannot use selection function {f} on non-frozen {} {c}",
                    type_kind(&col.ty)
                )));
            }
            if matches!(s, Selector::WriteTime(_)) {
                (Sel::WriteTime(i), name, ColumnType::BigInt)
            } else {
                (Sel::Ttl(i), name, ColumnType::Int)
            }
        }
        Selector::CountStar => (
            Sel::Aggregate(AggKind::CountRows, None, ColumnType::BigInt),
            name,
            ColumnType::BigInt,
        ),
        Selector::Function { name: fname, args } => match (fname.as_str(), args.len()) {
            ("token", _) => {
                let pk: Vec<&str> = table
                    .partition_key()
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                let given: Vec<String> = args
                    .iter()
                    .map(|a| match a {
                        Selector::Column(c) => Ok(c.clone()),
                        _ => Err(invalid("Invalid argument for token()")),
                    })
                    .collect::<Result<_, _>>()?;
                if given.iter().map(String::as_str).ne(pk.iter().copied()) {
                    return Err(invalid(format!(
                        "Invalid arguments for token(): the partition key is ({})",
                        pk.join(", ")
                    )));
                }
                (Sel::Token, name, ColumnType::BigInt)
            }
            ("count", 1) if matches!(&args[0], Selector::Term(_)) => (
                Sel::Aggregate(AggKind::CountRows, None, ColumnType::BigInt),
                name,
                ColumnType::BigInt,
            ),
            ("count" | "min" | "max" | "sum" | "avg", 1) => {
                let (arg, _, aty) = compile_selector(table, &args[0])?;
                let kind = match fname.as_str() {
                    "count" => AggKind::Count,
                    "min" => AggKind::Min,
                    "max" => AggKind::Max,
                    "sum" => AggKind::Sum,
                    _ => AggKind::Avg,
                };
                let rty = if kind == AggKind::Count {
                    ColumnType::BigInt
                } else {
                    aty.clone()
                };
                if matches!(kind, AggKind::Sum | AggKind::Avg) && numeric_kind(&aty).is_none() {
                    return Err(invalid(format!(
                        "Invalid call to function {fname}: argument of type {} is not numeric",
                        cql_type_name(&aty)
                    )));
                }
                (Sel::Aggregate(kind, Some(Box::new(arg)), aty), name, rty)
            }
            ("tojson", 1) => {
                let (arg, _, aty) = compile_selector(table, &args[0])?;
                (Sel::ToJson(Box::new(arg), aty), name, ColumnType::Text)
            }
            _ => {
                let mut compiled = Vec::new();
                let mut types = Vec::new();
                for a in args {
                    let (sel, _, ty) = compile_selector(table, a)?;
                    compiled.push(sel);
                    types.push(ty);
                }
                let ret = functions::return_type(fname, &types).map_err(invalid)?;
                (
                    Sel::Function {
                        name: fname.clone(),
                        args: compiled,
                        arg_types: types,
                    },
                    name,
                    ret,
                )
            }
        },
        Selector::Cast { selector, ty } => {
            let (inner, _, from) = compile_selector(table, selector)?;
            let to = match ty {
                crate::cql3::ast::CqlType::Native(t) => t.clone(),
                _ => return Err(invalid("CAST is only supported to native types")),
            };
            (Sel::Cast(Box::new(inner), from, to.clone()), name, to)
        }
        Selector::Field { selector, field } => {
            let (inner, _, ty) = compile_selector(table, selector)?;
            let ColumnType::Udt { fields, .. } = unfrozen(&ty) else {
                return Err(invalid(format!(
                    "Invalid field selection: {} of type {} is not a user type",
                    selector_name(selector),
                    ty
                )));
            };
            let Some(i) = fields.iter().position(|(n, _)| n == field) else {
                return Err(invalid(format!(
                    "{} of type {} has no field {field}",
                    selector_name(selector),
                    cql_type_name(&ty)
                )));
            };
            let fty = fields[i].1.clone();
            (Sel::Field(Box::new(inner), i), name, fty)
        }
        Selector::Element { selector, .. } | Selector::Slice { selector, .. } => {
            let (inner, _, ty) = compile_selector(table, selector)?;
            let sel_name = selector_name(selector);
            let (key_type, elem_type, is_map) = match unfrozen(&ty) {
                ColumnType::Map(k, v) => ((**k).clone(), (**v).clone(), true),
                ColumnType::Set(e) => ((**e).clone(), (**e).clone(), false),
                ColumnType::List(_) => {
                    return Err(invalid(format!(
                    "Element selection is only allowed on sets and maps, but {sel_name} is a list"
                )))
                }
                _ => {
                    return Err(invalid(format!(
                        "Invalid element selection: {sel_name} is of type {ty} is not a collection"
                    )))
                }
            };
            let key_of = |t: &crate::cql3::ast::Term| -> Result<SelKey, ErrorResponse> {
                if matches!(t, crate::cql3::ast::Term::Bind(_)) {
                    return Ok(SelKey::Marker(t.clone()));
                }
                let ctx = crate::cql3::eval::EvalCtx {
                    values: &[],
                    now_micros: 0,
                };
                crate::cql3::eval::eval(t, &key_type, &ctx)?
                    .into_value()
                    .map(SelKey::Value)
                    .ok_or_else(|| invalid(format!("Invalid null value for {sel_name} key")))
            };
            match s {
                Selector::Element { key, .. } => {
                    let key = key_of(key)?;
                    let sel = Sel::Element {
                        inner: Box::new(inner),
                        key,
                        key_type: key_type.clone(),
                        is_map,
                    };
                    (sel, name, elem_type)
                }
                Selector::Slice { from, to, .. } => {
                    let from = from.as_ref().map(&key_of).transpose()?;
                    let to = to.as_ref().map(&key_of).transpose()?;
                    let sel = Sel::Slice {
                        inner: Box::new(inner),
                        from,
                        to,
                        key_type: key_type.clone(),
                        is_map,
                    };
                    (sel, name, ty.clone())
                }
                _ => unreachable!("matched above"),
            }
        }
        Selector::Term(t) => {
            let ctx = crate::cql3::eval::EvalCtx {
                values: &[],
                now_micros: 0,
            };
            let ty = match t {
                crate::cql3::ast::Term::Literal(crate::cql3::ast::Literal::Integer(_)) => {
                    ColumnType::Int
                }
                crate::cql3::ast::Term::Literal(crate::cql3::ast::Literal::Float(_)) => {
                    ColumnType::Double
                }
                crate::cql3::ast::Term::Literal(crate::cql3::ast::Literal::Boolean(_)) => {
                    ColumnType::Boolean
                }
                crate::cql3::ast::Term::Literal(crate::cql3::ast::Literal::Uuid(_)) => {
                    ColumnType::Uuid
                }
                crate::cql3::ast::Term::Literal(crate::cql3::ast::Literal::Blob(_)) => {
                    ColumnType::Blob
                }
                _ => ColumnType::Text,
            };
            let v = crate::cql3::eval::eval(t, &ty, &ctx)?.into_value();
            (Sel::Literal(v), name, ty)
        }
    })
}

fn type_kind(ty: &ColumnType) -> &'static str {
    match ty {
        ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(_, _) => "collection",
        ColumnType::Udt { .. } => "UDT",
        _ => "column",
    }
}

fn eval_sel(
    table: &TableMetadata,
    s: &Sel,
    r: &RowRef<'_>,
) -> Result<Option<Bytes>, ErrorResponse> {
    Ok(match s {
        Sel::Column(i) => r.value(table, *i),
        Sel::WriteTime(i) => r
            .simple_cell(table, *i)
            .map(|c| Bytes::copy_from_slice(&c.timestamp.to_be_bytes())),
        Sel::Ttl(i) => r.simple_cell(table, *i).and_then(|c| {
            (c.ttl > 0).then(|| {
                Bytes::copy_from_slice(&(c.expiry.saturating_sub(r.now)).max(1).to_be_bytes())
            })
        }),
        Sel::Token => Some(Bytes::copy_from_slice(&r.token.to_be_bytes())),
        Sel::Literal(v) => v.clone(),
        Sel::ToJson(inner, ty) => {
            let v = eval_sel(table, inner, r)?;
            let value = decode(ty, v.as_deref())?;
            Some(Bytes::from(
                values::to_json(value.as_ref(), ty).into_bytes(),
            ))
        }
        Sel::Function {
            name,
            args,
            arg_types,
        } => {
            let mut vals = Vec::with_capacity(args.len());
            for (a, t) in args.iter().zip(arg_types) {
                let v = eval_sel(table, a, r)?;
                vals.push(decode(t, v.as_deref())?);
            }
            let (_, out) = functions::call(name, &vals, arg_types, None).map_err(invalid)?;
            out.map(|v| {
                let mut buf = Vec::new();
                proto::value::serialize(&v, &mut buf);
                Bytes::from(buf)
            })
        }
        Sel::Cast(inner, from, to) => {
            let v = eval_sel(table, inner, r)?;
            let Some(value) = decode(from, v.as_deref())? else {
                return Ok(None);
            };
            let cast = cast_value(&value, to).ok_or_else(|| {
                invalid(format!(
                    "{} cannot be cast to {}",
                    cql_type_name(from),
                    cql_type_name(to)
                ))
            })?;
            let mut buf = Vec::new();
            proto::value::serialize(&cast, &mut buf);
            Some(Bytes::from(buf))
        }
        Sel::Field(inner, i) => {
            let Some(v) = eval_sel(table, inner, r)? else {
                return Ok(None);
            };
            super::restrictions::split_tuple_fields(&v)
                .and_then(|f| f.into_iter().nth(*i).flatten())
        }
        Sel::Element {
            inner,
            key,
            key_type,
            is_map,
        } => {
            let Some(v) = eval_sel(table, inner, r)? else {
                return Ok(None);
            };
            let kt = super::key_type(key_type);
            let key = key.value()?;
            if *is_map {
                super::modification::split_map(&v)
                    .and_then(|pairs| pairs.into_iter().find(|(k, _)| kt.compare(k, key).is_eq()))
                    .map(|(_, v)| v)
            } else {
                super::restrictions::split_collection(&v)
                    .and_then(|items| items.into_iter().find(|e| kt.compare(e, key).is_eq()))
            }
        }
        Sel::Slice {
            inner,
            from,
            to,
            key_type,
            is_map,
        } => {
            let Some(v) = eval_sel(table, inner, r)? else {
                return Ok(None);
            };
            let kt = super::key_type(key_type);
            let from = from.as_ref().map(SelKey::value).transpose()?;
            let to = to.as_ref().map(SelKey::value).transpose()?;
            let within = |k: &[u8]| {
                from.as_ref().is_none_or(|f| kt.compare(k, f).is_ge())
                    && to.as_ref().is_none_or(|t| kt.compare(k, t).is_le())
            };
            let mut parts: Vec<Bytes> = Vec::new();
            let mut n = 0i32;
            if *is_map {
                for (k, v) in super::modification::split_map(&v).unwrap_or_default() {
                    if within(&k) {
                        parts.push(k);
                        parts.push(v);
                        n += 1;
                    }
                }
            } else {
                for e in super::restrictions::split_collection(&v).unwrap_or_default() {
                    if within(&e) {
                        parts.push(e);
                        n += 1;
                    }
                }
            }
            if n == 0 {
                return Ok(None);
            }
            let mut out = Vec::new();
            out.extend_from_slice(&n.to_be_bytes());
            for p in parts {
                out.extend_from_slice(&(p.len() as i32).to_be_bytes());
                out.extend_from_slice(&p);
            }
            Some(Bytes::from(out))
        }
        Sel::Aggregate(..) => None,
    })
}

fn decode(ty: &ColumnType, v: Option<&[u8]>) -> Result<Option<CqlValue>, ErrorResponse> {
    match v {
        None => Ok(None),
        Some(b) => proto::value::deserialize(ty, b)
            .map(Some)
            .map_err(|e| ErrorResponse::server(format!("corrupt stored value: {e}"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumKind {
    Int,
    Float,
}

fn numeric_kind(ty: &ColumnType) -> Option<NumKind> {
    match ty {
        ColumnType::TinyInt
        | ColumnType::SmallInt
        | ColumnType::Int
        | ColumnType::BigInt
        | ColumnType::Counter
        | ColumnType::Varint => Some(NumKind::Int),
        ColumnType::Float | ColumnType::Double | ColumnType::Decimal => Some(NumKind::Float),
        _ => None,
    }
}

fn as_i128(v: &CqlValue) -> Option<i128> {
    Some(match v {
        CqlValue::TinyInt(x) => *x as i128,
        CqlValue::SmallInt(x) => *x as i128,
        CqlValue::Int(x) => *x as i128,
        CqlValue::BigInt(x) | CqlValue::Counter(x) => *x as i128,
        CqlValue::Varint(b) => {
            if b.len() > 16 {
                return None;
            }
            let mut acc: i128 = if b.first().is_some_and(|x| x & 0x80 != 0) {
                -1
            } else {
                0
            };
            for byte in b {
                acc = (acc << 8) | *byte as i128;
            }
            acc
        }
        _ => return None,
    })
}

fn as_f64(v: &CqlValue) -> Option<f64> {
    Some(match v {
        CqlValue::Float(x) => *x as f64,
        CqlValue::Double(x) => *x,
        CqlValue::Decimal { .. } => decimal_to_f64(v)?,
        other => as_i128(other)? as f64,
    })
}

fn int_value(ty: &ColumnType, x: i128) -> Option<CqlValue> {
    Some(match ty {
        ColumnType::TinyInt => CqlValue::TinyInt(x as i8),
        ColumnType::SmallInt => CqlValue::SmallInt(x as i16),
        ColumnType::Int => CqlValue::Int(x as i32),
        ColumnType::BigInt => CqlValue::BigInt(x as i64),
        ColumnType::Counter => CqlValue::Counter(x as i64),
        ColumnType::Varint => {
            let bytes = x.to_be_bytes();
            let mut start = 0;
            while start < 15
                && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
                    || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
            {
                start += 1;
            }
            CqlValue::Varint(bytes[start..].to_vec())
        }
        _ => return None,
    })
}

fn float_value(ty: &ColumnType, x: f64) -> Option<CqlValue> {
    Some(match ty {
        ColumnType::Float => CqlValue::Float(x as f32),
        ColumnType::Double => CqlValue::Double(x),
        ColumnType::Decimal => f64_to_decimal(x)?,
        other => int_value(other, x as i128)?,
    })
}

fn cast_value(v: &CqlValue, to: &ColumnType) -> Option<CqlValue> {
    match to {
        ColumnType::Text | ColumnType::Ascii => {
            let s = to_text(v);
            Some(if *to == ColumnType::Text {
                CqlValue::Text(s)
            } else {
                CqlValue::Ascii(s)
            })
        }
        ColumnType::TinyInt
        | ColumnType::SmallInt
        | ColumnType::Int
        | ColumnType::BigInt
        | ColumnType::Varint => match as_i128(v) {
            Some(x) => int_value(to, x),
            None => int_value(to, as_f64(v)? as i128),
        },
        ColumnType::Float | ColumnType::Double | ColumnType::Decimal => float_value(to, as_f64(v)?),
        ColumnType::Timestamp => match v {
            CqlValue::Timestamp(_) => Some(v.clone()),
            CqlValue::Date(d) => Some(CqlValue::Timestamp((*d as i64 - (1i64 << 31)) * 86_400_000)),
            CqlValue::Timeuuid(u) => Some(CqlValue::Timestamp(functions::timeuuid_millis(u))),
            _ => None,
        },
        ColumnType::Date => match v {
            CqlValue::Date(_) => Some(v.clone()),
            CqlValue::Timestamp(ms) => Some(CqlValue::Date(
                (ms.div_euclid(86_400_000) + (1i64 << 31)) as u32,
            )),
            CqlValue::Timeuuid(u) => Some(CqlValue::Date(
                (functions::timeuuid_millis(u).div_euclid(86_400_000) + (1i64 << 31)) as u32,
            )),
            _ => None,
        },
        _ if std::mem::discriminant(&cast_self(to)) == std::mem::discriminant(v) => Some(v.clone()),
        _ => None,
    }
}

fn cast_self(ty: &ColumnType) -> CqlValue {
    match ty {
        ColumnType::Boolean => CqlValue::Boolean(false),
        ColumnType::Uuid => CqlValue::Uuid([0; 16]),
        ColumnType::Timeuuid => CqlValue::Timeuuid([0; 16]),
        ColumnType::Blob => CqlValue::Blob(Vec::new()),
        _ => CqlValue::Empty,
    }
}

/// Running state of one aggregate.
#[derive(Debug, Default)]
pub struct AggState {
    count: i64,
    isum: i128,
    fsum: f64,
    best: Option<Bytes>,
    first: Option<Bytes>,
    has_first: bool,
}

impl AggState {
    fn add(
        &mut self,
        kind: AggKind,
        v: Option<Bytes>,
        ty: &ColumnType,
    ) -> Result<(), ErrorResponse> {
        match kind {
            AggKind::CountRows => self.count += 1,
            AggKind::Count => self.count += v.is_some() as i64,
            AggKind::Min | AggKind::Max => {
                if let Some(v) = v {
                    let kt = super::key_type(ty);
                    let replace = match &self.best {
                        None => true,
                        Some(b) => {
                            let o = kt.compare(&v, b);
                            if kind == AggKind::Min {
                                o.is_lt()
                            } else {
                                o.is_gt()
                            }
                        }
                    };
                    if replace {
                        self.best = Some(v);
                    }
                }
            }
            AggKind::Sum | AggKind::Avg => {
                if let Some(v) = v {
                    let Some(value) = decode(ty, Some(&v))? else {
                        return Ok(());
                    };
                    self.count += 1;
                    match numeric_kind(ty) {
                        Some(NumKind::Int) => {
                            self.isum = self.isum.wrapping_add(as_i128(&value).unwrap_or(0));
                        }
                        _ => self.fsum += as_f64(&value).unwrap_or(0.0),
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self, kind: AggKind, ty: &ColumnType) -> Result<Option<Bytes>, ErrorResponse> {
        let ser = |v: CqlValue| {
            let mut b = Vec::new();
            proto::value::serialize(&v, &mut b);
            Some(Bytes::from(b))
        };
        Ok(match kind {
            AggKind::CountRows | AggKind::Count => {
                Some(Bytes::copy_from_slice(&self.count.to_be_bytes()))
            }
            AggKind::Min | AggKind::Max => self.best,
            AggKind::Sum => match numeric_kind(ty) {
                Some(NumKind::Int) => int_value(ty, self.isum).and_then(ser),
                _ => float_value(ty, self.fsum).and_then(ser),
            },
            AggKind::Avg => match numeric_kind(ty) {
                Some(NumKind::Int) => int_value(
                    ty,
                    if self.count == 0 {
                        0
                    } else {
                        self.isum / self.count as i128
                    },
                )
                .and_then(ser),
                _ => float_value(
                    ty,
                    if self.count == 0 {
                        0.0
                    } else {
                        self.fsum / self.count as f64
                    },
                )
                .and_then(ser),
            },
        })
    }
}

fn cql_type_name(ty: &ColumnType) -> String {
    ty.to_string()
}

fn decimal_to_f64(v: &CqlValue) -> Option<f64> {
    match v {
        CqlValue::Decimal { unscaled, scale } => proto::value::decimal_to_string(unscaled, *scale)
            .parse()
            .ok(),
        _ => None,
    }
}

fn f64_to_decimal(x: f64) -> Option<CqlValue> {
    if !x.is_finite() {
        return None;
    }
    let (unscaled, scale) = proto::value::decimal_from_str(&format!("{x}"))?;
    Some(CqlValue::Decimal { unscaled, scale })
}

/// CAST(x AS text): the value's string form, unquoted.
fn to_text(v: &CqlValue) -> String {
    match v {
        CqlValue::Text(s) | CqlValue::Ascii(s) => s.clone(),
        CqlValue::Timestamp(ms) => proto::value::format_timestamp_iso(*ms),
        other => {
            let s = proto::value::to_cql_literal(other);
            match s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
                Some(inner) => inner.replace("''", "'"),
                None => s,
            }
        }
    }
}
