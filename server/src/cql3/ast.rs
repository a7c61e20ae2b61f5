//! The CQL abstract syntax tree produced by [`super::parser`].
//!
//! Identifiers are already normalised: unquoted names lower-cased, quoted
//! names kept verbatim. Bind markers are numbered in order of appearance.

use proto::value::ColumnType;

/// `ks.name` or `name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    pub keyspace: Option<String>,
    pub name: String,
}

/// A parsed statement with its bind markers: `bind_markers[i]` is the name
/// of marker `i` (`:name` or `?` = `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedStatement {
    pub statement: Statement,
    pub bind_markers: Vec<Option<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateKeyspace {
        name: String,
        if_not_exists: bool,
        properties: Vec<Property>,
    },
    AlterKeyspace {
        name: String,
        if_exists: bool,
        properties: Vec<Property>,
    },
    DropKeyspace {
        name: String,
        if_exists: bool,
    },
    CreateTable(CreateTable),
    AlterTable(AlterTable),
    DropTable {
        name: QualifiedName,
        if_exists: bool,
    },
    CreateType(CreateType),
    AlterType(AlterType),
    DropType {
        name: QualifiedName,
        if_exists: bool,
    },
    CreateIndex(CreateIndex),
    DropIndex {
        name: QualifiedName,
        if_exists: bool,
    },
    Use(String),
    Truncate(QualifiedName),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    Select(Select),
    Batch(Batch),
    Describe(Describe),
    /// A statement CQL has but Tessera does not implement (roles, grants,
    /// functions, materialized views, ...). The text names it, e.g.
    /// `"CREATE ROLE"`. Answered with an Invalid error, not a syntax error.
    Unsupported(String),
}

/// `name = value` in `WITH ... AND ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// Lower-cased.
    pub name: String,
    pub value: PropertyValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// A constant: string, number, boolean.
    Constant(Literal),
    /// `{'k': v, ...}` (keys are constants; string keys keep their case).
    Map(Vec<(Literal, Literal)>),
}

/// Constants as written. Numbers keep their text so that varint, decimal,
/// float and int can be decided by the receiving column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    /// An integer literal, with sign: `-12`.
    Integer(String),
    /// A float literal, with sign: `1.5e3`, `-0.5`, `NaN`, `Infinity`, `-Infinity`.
    Float(String),
    Boolean(bool),
    /// `123e4567-e89b-12d3-a456-426655440000`.
    Uuid(String),
    /// `0xcafe` (decoded).
    Blob(Vec<u8>),
    /// `1h30m`, `P1Y2M`, `-3d`.
    Duration(String),
    Null,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindMarker {
    /// Position among the statement's markers, from 0.
    pub index: usize,
    pub name: Option<String>,
}

/// A value expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Literal(Literal),
    Bind(BindMarker),
    List(Vec<Term>),
    Set(Vec<Term>),
    Map(Vec<(Term, Term)>),
    /// `(a, b, c)` — tuple value, also the right side of multi-column relations.
    Tuple(Vec<Term>),
    /// `{field: value, ...}` where it is unambiguous (field names unquoted
    /// identifiers). `{}` parses as an empty `Map`.
    Udt(Vec<(String, Term)>),
    /// `now()`, `uuid()`, `token(...)`, `ks.f(...)`; name lower-cased.
    FunctionCall {
        name: String,
        args: Vec<Term>,
    },
    /// `(int) ?` type hint.
    TypeHint {
        ty: CqlType,
        term: Box<Term>,
    },
}

/// A type as written in DDL; user types are resolved by the schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CqlType {
    /// A native (non-collection) type; `ColumnType::Custom` for `'class.Name'`.
    Native(ColumnType),
    List(Box<CqlType>),
    Set(Box<CqlType>),
    Map(Box<CqlType>, Box<CqlType>),
    Tuple(Vec<CqlType>),
    Frozen(Box<CqlType>),
    UserDefined(QualifiedName),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: CqlType,
    pub is_static: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    pub name: QualifiedName,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnDef>,
    /// Partition key columns, in order.
    pub partition_key: Vec<String>,
    /// Clustering columns, in order.
    pub clustering_key: Vec<String>,
    /// `CLUSTERING ORDER BY (c DESC, ...)`: (column, descending).
    pub clustering_order: Vec<(String, bool)>,
    pub compact_storage: bool,
    pub properties: Vec<Property>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlterTable {
    pub name: QualifiedName,
    pub if_exists: bool,
    pub op: AlterTableOp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlterTableOp {
    Add {
        if_not_exists: bool,
        columns: Vec<ColumnDef>,
    },
    Drop {
        if_exists: bool,
        columns: Vec<String>,
    },
    Rename(Vec<(String, String)>),
    AlterType {
        column: String,
        ty: CqlType,
    },
    With(Vec<Property>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateType {
    pub name: QualifiedName,
    pub if_not_exists: bool,
    pub fields: Vec<(String, CqlType)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlterType {
    pub name: QualifiedName,
    pub if_exists: bool,
    pub op: AlterTypeOp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlterTypeOp {
    Add { field: String, ty: CqlType },
    Rename(Vec<(String, String)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateIndex {
    pub name: Option<String>,
    pub table: QualifiedName,
    pub if_not_exists: bool,
    pub target: IndexTarget,
    /// `CREATE CUSTOM INDEX ... USING 'class'`.
    pub custom_class: Option<String>,
    pub properties: Vec<Property>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexTarget {
    Values(String),
    Keys(String),
    Entries(String),
    Full(String),
}

/// `USING TIMESTAMP t AND TTL n AND TIMEOUT 2000ms`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Using {
    pub timestamp: Option<Term>,
    pub ttl: Option<Term>,
    /// Scylla's `USING TIMEOUT`, as its duration literal or marker.
    pub timeout: Option<Term>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    pub table: QualifiedName,
    pub columns: Vec<String>,
    pub values: Vec<Term>,
    /// `INSERT INTO t JSON '...'` (columns and values then empty).
    pub json: Option<Term>,
    /// `DEFAULT UNSET` (default is `DEFAULT NULL`).
    pub json_default_unset: bool,
    pub if_not_exists: bool,
    pub using: Using,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Assignment {
    /// `c = v`
    Set { column: String, value: Term },
    /// `c[k] = v`
    SetElement {
        column: String,
        key: Term,
        value: Term,
    },
    /// `c.f = v`
    SetField {
        column: String,
        field: String,
        value: Term,
    },
    /// `c = c + v`
    Append { column: String, value: Term },
    /// `c = v + c`
    Prepend { column: String, value: Term },
    /// `c = c - v`
    Remove { column: String, value: Term },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub table: QualifiedName,
    pub using: Using,
    pub assignments: Vec<Assignment>,
    pub where_clause: Vec<Relation>,
    pub if_exists: bool,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeleteTarget {
    Column(String),
    /// `DELETE m[k]`, `DELETE l[i]`
    Element {
        column: String,
        key: Term,
    },
    /// `DELETE u.f`
    Field {
        column: String,
        field: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    pub table: QualifiedName,
    pub targets: Vec<DeleteTarget>,
    pub using: Using,
    pub where_clause: Vec<Relation>,
    pub if_exists: bool,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
    Neq,
    In,
    Contains,
    ContainsKey,
    Like,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    /// `c op v`. For `IN`, `value` is a `Term::Tuple` of the listed values
    /// (`IN (1, 2)`) or a bind marker (`IN ?`).
    Single {
        column: String,
        op: Operator,
        value: Term,
    },
    /// `(a, b) op (1, 2)` / `(a, b) IN ((1, 2), (3, 4))` / `(a, b) > ?`.
    MultiColumn {
        columns: Vec<String>,
        op: Operator,
        value: Term,
    },
    /// `token(a, b) op v`.
    Token {
        columns: Vec<String>,
        op: Operator,
        value: Term,
    },
    /// `c IS NOT NULL`.
    IsNotNull { column: String },
}

/// LWT condition `IF c op v` / `IF m[k] op v` / `IF u.f op v`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub element: Option<Term>,
    /// `u.f`: a field of a user type column.
    pub field: Option<String>,
    pub op: Operator,
    pub value: Term,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Column(String),
    WriteTime(String),
    Ttl(String),
    /// `count(*)` / `count(1)`.
    CountStar,
    /// `f(args)`; name lower-cased (`token`, `tojson`, `count`, `max`, ...).
    Function {
        name: String,
        args: Vec<Selector>,
    },
    /// `CAST(x AS type)`.
    Cast {
        selector: Box<Selector>,
        ty: CqlType,
    },
    /// `u.field`.
    Field {
        selector: Box<Selector>,
        field: String,
    },
    /// `m['k']`, `s[3]`: one element of a map or set (Cassandra 4.0).
    Element {
        selector: Box<Selector>,
        key: Term,
    },
    /// `m['a'..'c']`, `s[2..]`: the elements between two bounds, inclusive.
    Slice {
        selector: Box<Selector>,
        from: Option<Term>,
        to: Option<Term>,
    },
    /// A constant or marker used as a selector argument.
    Term(Term),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectItem {
    pub selector: Selector,
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Star,
    Items(Vec<SelectItem>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub table: QualifiedName,
    pub distinct: bool,
    pub json: bool,
    pub selection: Selection,
    pub where_clause: Vec<Relation>,
    pub group_by: Vec<String>,
    /// (column, descending)
    pub order_by: Vec<(String, bool)>,
    pub per_partition_limit: Option<Term>,
    pub limit: Option<Term>,
    pub allow_filtering: bool,
    pub using: Using,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Logged,
    Unlogged,
    Counter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub kind: BatchKind,
    pub using: Using,
    /// Only `Insert`, `Update` and `Delete`.
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Describe {
    Cluster,
    Keyspaces,
    /// `DESCRIBE KEYSPACE [ks]` (None = current keyspace); `only` for `ONLY`.
    Keyspace {
        name: Option<String>,
        only: bool,
    },
    Tables,
    Table(QualifiedName),
    Types,
    Type(QualifiedName),
    Functions,
    Aggregates,
    Index(QualifiedName),
    /// `DESCRIBE [FULL] SCHEMA`.
    Schema {
        full: bool,
    },
    /// `DESCRIBE name` / `DESCRIBE ks.name`: whatever the name is.
    Name(QualifiedName),
}

/// A term as Cassandra shows it in error messages (`Invalid operation (l[0] = 5) ...`).
impl std::fmt::Display for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn join(f: &mut std::fmt::Formatter<'_>, items: &[Term]) -> std::fmt::Result {
            for (i, t) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{t}")?;
            }
            Ok(())
        }
        match self {
            Term::Literal(l) => match l {
                Literal::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
                Literal::Integer(s)
                | Literal::Float(s)
                | Literal::Uuid(s)
                | Literal::Duration(s) => f.write_str(s),
                Literal::Boolean(b) => write!(f, "{b}"),
                Literal::Blob(b) => {
                    f.write_str("0x")?;
                    b.iter().try_for_each(|x| write!(f, "{x:02x}"))
                }
                Literal::Null => f.write_str("null"),
            },
            Term::Bind(m) => match &m.name {
                Some(n) => write!(f, ":{n}"),
                None => f.write_str("?"),
            },
            Term::List(items) => {
                f.write_str("[")?;
                join(f, items)?;
                f.write_str("]")
            }
            Term::Set(items) => {
                f.write_str("{")?;
                join(f, items)?;
                f.write_str("}")
            }
            Term::Tuple(items) => {
                f.write_str("(")?;
                join(f, items)?;
                f.write_str(")")
            }
            Term::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Term::Udt(fields) => {
                f.write_str("{")?;
                for (i, (n, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}: {v}")?;
                }
                f.write_str("}")
            }
            Term::FunctionCall { name, args } => {
                write!(f, "{name}(")?;
                join(f, args)?;
                f.write_str(")")
            }
            Term::TypeHint { term, .. } => write!(f, "{term}"),
        }
    }
}
