//! The CQL parser: statement text to [`ast`](super::ast) trees.
//!
//! A hand-written recursive-descent parser over the tokens of
//! [`super::lexer`], following the grammar of Apache Cassandra 4.x
//! (`Parser.g`) plus Scylla's `USING TIMEOUT` and `BYPASS CACHE`. Keywords
//! are case-insensitive; only Cassandra's *reserved* keywords are refused
//! as identifiers. Statements CQL has but Tessera does not implement (roles,
//! grants, functions, materialized views, triggers, a few rare forms) come
//! back as [`Statement::Unsupported`] instead of a syntax error.
//!
//! Errors look like Cassandra's: `line 1:9 mismatched input 'FROMM'
//! expecting FROM (SELECT * [FROMM] t)`. Nesting depth is bounded, so no
//! input can overflow the stack; the parser never panics.

use std::fmt;

use proto::value::ColumnType;

use super::ast::*;
use super::lexer::{tokenize, Token, TokenKind};

/// A CQL syntax error (answered with protocol error 0x2000).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What went wrong, with the offending token, what was expected and a
    /// snippet of the query, e.g. `mismatched input 'FROMM' expecting FROM
    /// (SELECT * [FROMM] t)`.
    pub message: String,
    /// 1-based line of the offending token.
    pub line: usize,
    /// 0-based column (in characters) of the offending token, as ANTLR
    /// and therefore Cassandra count it.
    pub col: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}:{} {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// Parses one CQL statement, with an optional trailing `;`.
pub fn parse_statement(text: &str) -> Result<ParsedStatement, SyntaxError> {
    let mut p = Parser::new(text)?;
    let statement = p.statement()?;
    p.accept_punct(b';');
    p.expect_eof()?;
    let statement = match p.unsupported.take() {
        Some(what) => Statement::Unsupported(what),
        None => statement,
    };
    Ok(ParsedStatement {
        statement,
        bind_markers: p.binds,
    })
}

/// Parses a CQL type as written in DDL: `int`, `frozen<map<text, list<int>>>`,
/// `tuple<int, text>`, `ks.my_udt`, `'org.apache.cassandra.db.marshal.Int32Type'`.
pub fn parse_type(text: &str) -> Result<CqlType, SyntaxError> {
    let mut p = Parser::new(text)?;
    let ty = p.cql_type()?;
    p.expect_eof()?;
    Ok(ty)
}

/// Cassandra 4.x reserved keywords: never identifiers unless quoted.
fn is_reserved(word: &str) -> bool {
    let b = word.as_bytes();
    if b.len() < 2 || b.len() > 12 {
        return false;
    }
    let mut buf = [0u8; 12];
    for (d, s) in buf.iter_mut().zip(b) {
        *d = s.to_ascii_uppercase();
    }
    matches!(
        &buf[..b.len()],
        b"ADD"
            | b"ALLOW"
            | b"ALTER"
            | b"AND"
            | b"APPLY"
            | b"ASC"
            | b"AUTHORIZE"
            | b"BATCH"
            | b"BEGIN"
            | b"BY"
            | b"COLUMNFAMILY"
            | b"CREATE"
            | b"DELETE"
            | b"DESC"
            | b"DESCRIBE"
            | b"DROP"
            | b"ENTRIES"
            | b"EXECUTE"
            | b"FROM"
            | b"FULL"
            | b"GRANT"
            | b"IF"
            | b"IN"
            | b"INDEX"
            | b"INFINITY"
            | b"INSERT"
            | b"INTO"
            | b"IS"
            | b"KEYSPACE"
            | b"LIMIT"
            | b"MATERIALIZED"
            | b"MODIFY"
            | b"NAN"
            | b"NORECURSIVE"
            | b"NOT"
            | b"NULL"
            | b"OF"
            | b"ON"
            | b"OR"
            | b"ORDER"
            | b"PRIMARY"
            | b"RENAME"
            | b"REVOKE"
            | b"SCHEMA"
            | b"SELECT"
            | b"SET"
            | b"TABLE"
            | b"TO"
            | b"TOKEN"
            | b"TRUNCATE"
            | b"UNLOGGED"
            | b"UPDATE"
            | b"USE"
            | b"USING"
            | b"VIEW"
            | b"WHERE"
            | b"WITH"
    )
}

/// Native (non-collection) type names.
fn native_type(word: &str) -> Option<ColumnType> {
    let b = word.as_bytes();
    if b.len() > 9 {
        return None;
    }
    let mut buf = [0u8; 9];
    for (d, s) in buf.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    Some(match &buf[..b.len()] {
        b"ascii" => ColumnType::Ascii,
        b"bigint" => ColumnType::BigInt,
        b"blob" => ColumnType::Blob,
        b"boolean" => ColumnType::Boolean,
        b"counter" => ColumnType::Counter,
        b"decimal" => ColumnType::Decimal,
        b"double" => ColumnType::Double,
        b"duration" => ColumnType::Duration,
        b"float" => ColumnType::Float,
        b"inet" => ColumnType::Inet,
        b"int" => ColumnType::Int,
        b"smallint" => ColumnType::SmallInt,
        b"text" | b"varchar" => ColumnType::Text,
        b"timestamp" => ColumnType::Timestamp,
        b"tinyint" => ColumnType::TinyInt,
        b"uuid" => ColumnType::Uuid,
        b"varint" => ColumnType::Varint,
        b"timeuuid" => ColumnType::Timeuuid,
        b"date" => ColumnType::Date,
        b"time" => ColumnType::Time,
        _ => return None,
    })
}

/// Names Cassandra keeps for future types (`reservedTypeNames`).
fn is_reserved_type_name(word: &str) -> bool {
    [
        "byte",
        "complex",
        "enum",
        "date",
        "interval",
        "macaddr",
        "bitstring",
    ]
    .iter()
    .any(|r| r.eq_ignore_ascii_case(word))
}

/// Deepest nesting of terms, types, selectors and relations accepted.
const MAX_DEPTH: usize = 100;

type PResult<T> = Result<T, SyntaxError>;

/// Builds an [`IndexTarget`] from a column name.
type IndexTargetCtor = fn(String) -> IndexTarget;

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    binds: Vec<Option<String>>,
    /// Set when a valid but unimplemented construct was parsed; the
    /// statement then becomes `Statement::Unsupported(..)`.
    unsupported: Option<String>,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> PResult<Self> {
        let toks = tokenize(src).map_err(|e| {
            let (line, col) = line_col(src, e.offset);
            SyntaxError {
                message: e.message,
                line,
                col,
            }
        })?;
        Ok(Parser {
            src,
            toks,
            pos: 0,
            binds: Vec::new(),
            unsupported: None,
            depth: 0,
        })
    }

    // ---------------------------------------------------------------
    // Token helpers
    // ---------------------------------------------------------------

    #[inline]
    fn peek(&self) -> Token {
        self.peek_at(0)
    }

    #[inline]
    fn peek_at(&self, k: usize) -> Token {
        let last = self.toks.len() - 1;
        self.toks[(self.pos + k).min(last)]
    }

    #[inline]
    fn text(&self, t: Token) -> &'a str {
        t.text(self.src)
    }

    #[inline]
    fn is_word(&self, t: Token, kw: &str) -> bool {
        t.kind == TokenKind::Ident && self.text(t).eq_ignore_ascii_case(kw)
    }

    #[inline]
    fn at_kw(&self, kw: &str) -> bool {
        self.is_word(self.peek(), kw)
    }

    #[inline]
    fn at_kw_n(&self, k: usize, kw: &str) -> bool {
        self.is_word(self.peek_at(k), kw)
    }

    fn accept_kw(&mut self, kw: &str) -> bool {
        if self.at_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        if self.accept_kw(kw) {
            Ok(())
        } else {
            Err(self.mismatched(&kw.to_ascii_uppercase()))
        }
    }

    #[inline]
    fn is_punct(t: Token, c: u8) -> bool {
        t.kind == TokenKind::Punct(c)
    }

    #[inline]
    fn at_punct(&self, c: u8) -> bool {
        Self::is_punct(self.peek(), c)
    }

    fn accept_punct(&mut self, c: u8) -> bool {
        if self.at_punct(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, c: u8) -> PResult<()> {
        if self.accept_punct(c) {
            Ok(())
        } else {
            Err(self.mismatched(&format!("'{}'", c as char)))
        }
    }

    fn expect_eof(&mut self) -> PResult<()> {
        if self.peek().kind == TokenKind::Eof {
            Ok(())
        } else {
            Err(self.mismatched("EOF"))
        }
    }

    fn enter(&mut self) -> PResult<()> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error_here(format!(
                "expression nested too deeply (more than {MAX_DEPTH} levels)"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    #[inline]
    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn mark_unsupported(&mut self, what: &str) {
        if self.unsupported.is_none() {
            self.unsupported = Some(what.to_string());
        }
    }

    /// Skips every remaining token (for statements answered as unsupported).
    fn skip_rest(&mut self) {
        self.pos = self.toks.len() - 1;
    }

    fn new_bind(&mut self, name: Option<String>) -> BindMarker {
        let index = self.binds.len();
        self.binds.push(name.clone());
        BindMarker { index, name }
    }

    // ---------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------

    fn offending_text(&self, t: Token) -> &'a str {
        if t.kind == TokenKind::Eof {
            "<EOF>"
        } else {
            self.text(t)
        }
    }

    /// `mismatched input 'x' expecting <what>`.
    fn mismatched(&self, what: &str) -> SyntaxError {
        let t = self.peek();
        self.error_here(format!(
            "mismatched input '{}' expecting {}",
            self.offending_text(t),
            what
        ))
    }

    /// `no viable alternative at input 'x'` (with what was expected).
    fn no_viable(&self, what: &str) -> SyntaxError {
        let t = self.peek();
        let mut msg = format!(
            "no viable alternative at input '{}', expecting {}",
            self.offending_text(t),
            what
        );
        if t.kind == TokenKind::Ident && is_reserved(self.text(t)) {
            msg.push_str(&format!(
                " ('{}' is a reserved keyword; quote it to use it as an identifier)",
                self.text(t)
            ));
        }
        self.error_here(msg)
    }

    /// An error at the current token, with Cassandra's query snippet appended.
    fn error_here(&self, message: String) -> SyntaxError {
        let idx = self.pos.min(self.toks.len() - 1);
        let off = self.toks[idx];
        let (line, col) = line_col(self.src, off.start);
        let from = self.toks[idx.saturating_sub(5)];
        let to = self.toks[(idx + 1).min(self.toks.len() - 1)];
        let mut snippet = String::with_capacity(64);
        if from.start > 0 {
            snippet.push_str("...");
        }
        let clean = |s: &str| s.replace(['\n', '\r'], " ");
        snippet.push_str(&clean(self.src.get(from.start..off.start).unwrap_or("")));
        snippet.push('[');
        snippet.push_str(&clean(self.text(off)));
        snippet.push(']');
        let to_end = to.end.max(off.end);
        snippet.push_str(&clean(self.src.get(off.end..to_end).unwrap_or("")));
        if self.src[to_end..].trim().is_empty() {
            // The snippet reaches the end of the query.
        } else {
            snippet.push_str("...");
        }
        SyntaxError {
            message: format!("{message} ({snippet})"),
            line,
            col,
        }
    }

    // ---------------------------------------------------------------
    // Identifiers and names
    // ---------------------------------------------------------------

    /// Whether `t` can be an identifier (a non-reserved word or a quoted name).
    fn is_ident_token(&self, t: Token) -> bool {
        match t.kind {
            TokenKind::Ident => !is_reserved(self.text(t)),
            TokenKind::QuotedIdent => true,
            _ => false,
        }
    }

    /// The normalised name of an identifier token.
    fn ident_value(&self, t: Token) -> String {
        match t.kind {
            TokenKind::QuotedIdent => unquote(self.text(t), '"'),
            _ => self.text(t).to_ascii_lowercase(),
        }
    }

    /// An identifier: unquoted (lower-cased, not reserved) or quoted (verbatim).
    fn ident(&mut self, what: &str) -> PResult<String> {
        let t = self.peek();
        if self.is_ident_token(t) {
            self.pos += 1;
            Ok(self.ident_value(t))
        } else {
            Err(self.no_viable(what))
        }
    }

    /// `[ks.]name`.
    fn qualified_name(&mut self, what: &str) -> PResult<QualifiedName> {
        let first = self.ident(what)?;
        if self.accept_punct(b'.') {
            let name = self.ident(what)?;
            Ok(QualifiedName {
                keyspace: Some(first),
                name,
            })
        } else {
            Ok(QualifiedName {
                keyspace: None,
                name: first,
            })
        }
    }

    /// A user type name: not a native type and not a reserved type name.
    fn non_type_ident(&mut self) -> PResult<String> {
        let t = self.peek();
        if t.kind == TokenKind::Ident {
            let w = self.text(t);
            if native_type(w).is_some() || is_reserved_type_name(w) {
                return Err(self.error_here(format!("Invalid (reserved) user type name {w}")));
            }
        }
        self.ident("a type name")
    }

    fn user_type_name(&mut self) -> PResult<QualifiedName> {
        let t = self.peek();
        if self.is_ident_token(t) && Self::is_punct(self.peek_at(1), b'.') {
            let ks = self.ident("a keyspace name")?;
            self.pos += 1;
            let name = self.non_type_ident()?;
            Ok(QualifiedName {
                keyspace: Some(ks),
                name,
            })
        } else {
            Ok(QualifiedName {
                keyspace: None,
                name: self.non_type_ident()?,
            })
        }
    }

    fn if_not_exists(&mut self) -> PResult<bool> {
        if self.accept_kw("if") {
            self.expect_kw("not")?;
            self.expect_kw("exists")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn if_exists(&mut self) -> PResult<bool> {
        if self.accept_kw("if") {
            self.expect_kw("exists")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    // ---------------------------------------------------------------
    // Types
    // ---------------------------------------------------------------

    fn cql_type(&mut self) -> PResult<CqlType> {
        self.enter()?;
        let r = self.cql_type_inner();
        self.leave();
        r
    }

    fn cql_type_inner(&mut self) -> PResult<CqlType> {
        let t = self.peek();
        match t.kind {
            TokenKind::String | TokenKind::PgString => {
                self.pos += 1;
                Ok(CqlType::Native(ColumnType::Custom(self.string_value(t))))
            }
            TokenKind::Ident => {
                let w = self.text(t);
                if let Some(native) = native_type(w) {
                    self.pos += 1;
                    return Ok(CqlType::Native(native));
                }
                let generic = Self::is_punct(self.peek_at(1), b'<');
                if generic {
                    let lw = w.to_ascii_lowercase();
                    match lw.as_str() {
                        "list" | "set" | "frozen" => {
                            self.pos += 2;
                            let inner = Box::new(self.cql_type()?);
                            self.expect_punct(b'>')?;
                            return Ok(match lw.as_str() {
                                "list" => CqlType::List(inner),
                                "set" => CqlType::Set(inner),
                                _ => CqlType::Frozen(inner),
                            });
                        }
                        "map" => {
                            self.pos += 2;
                            let k = self.cql_type()?;
                            self.expect_punct(b',')?;
                            let v = self.cql_type()?;
                            self.expect_punct(b'>')?;
                            return Ok(CqlType::Map(Box::new(k), Box::new(v)));
                        }
                        "tuple" => {
                            self.pos += 2;
                            let mut items = vec![self.cql_type()?];
                            while self.accept_punct(b',') {
                                items.push(self.cql_type()?);
                            }
                            self.expect_punct(b'>')?;
                            return Ok(CqlType::Tuple(items));
                        }
                        _ => {}
                    }
                }
                if ["list", "set", "map", "tuple", "frozen"]
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(w))
                {
                    self.pos += 1;
                    return Err(self.mismatched("'<'"));
                }
                if is_reserved(w) {
                    return Err(self.no_viable("a type"));
                }
                Ok(CqlType::UserDefined(self.user_type_name()?))
            }
            TokenKind::QuotedIdent => Ok(CqlType::UserDefined(self.user_type_name()?)),
            _ => Err(self.no_viable("a type")),
        }
    }

    /// A native type only (as `CAST` takes).
    fn native_type_only(&mut self) -> PResult<CqlType> {
        let t = self.peek();
        if t.kind == TokenKind::Ident {
            if let Some(n) = native_type(self.text(t)) {
                self.pos += 1;
                return Ok(CqlType::Native(n));
            }
        }
        Err(self.no_viable("a native type"))
    }

    // ---------------------------------------------------------------
    // Literals and terms
    // ---------------------------------------------------------------

    fn string_value(&self, t: Token) -> String {
        let s = self.text(t);
        match t.kind {
            TokenKind::PgString => s
                .get(2..s.len().saturating_sub(2))
                .unwrap_or("")
                .to_string(),
            _ => unquote(s, '\''),
        }
    }

    fn is_literal_start(&self, t: Token) -> bool {
        matches!(
            t.kind,
            TokenKind::String
                | TokenKind::PgString
                | TokenKind::Integer
                | TokenKind::Float
                | TokenKind::Boolean
                | TokenKind::Duration
                | TokenKind::Uuid
                | TokenKind::Hex
        ) || self.is_word(t, "null")
    }

    /// A constant (or `null`).
    fn literal(&mut self) -> PResult<Literal> {
        let t = self.peek();
        let lit = match t.kind {
            TokenKind::String | TokenKind::PgString => Literal::String(self.string_value(t)),
            TokenKind::Integer => Literal::Integer(self.text(t).to_string()),
            TokenKind::Float => {
                let s = self.text(t);
                let body = s.strip_prefix('-').unwrap_or(s);
                if body.eq_ignore_ascii_case("nan") {
                    Literal::Float("NaN".into())
                } else if body.eq_ignore_ascii_case("infinity") {
                    Literal::Float(if s.starts_with('-') {
                        "-Infinity".into()
                    } else {
                        "Infinity".into()
                    })
                } else {
                    Literal::Float(s.to_string())
                }
            }
            TokenKind::Boolean => Literal::Boolean(self.text(t).eq_ignore_ascii_case("true")),
            TokenKind::Duration => Literal::Duration(self.text(t).to_string()),
            TokenKind::Uuid => Literal::Uuid(self.text(t).to_string()),
            TokenKind::Hex => match decode_hex(&self.text(t)[2..]) {
                Some(bytes) => Literal::Blob(bytes),
                None => {
                    return Err(self.error_here(format!(
                        "Invalid hex blob literal '{}': an hex string representing bytes must have an even length",
                        self.text(t)
                    )))
                }
            },
            TokenKind::Ident if self.is_word(t, "null") => Literal::Null,
            _ => return Err(self.no_viable("a constant")),
        };
        self.pos += 1;
        Ok(lit)
    }

    /// Whether `t` can begin a term.
    fn is_term_start(&self, t: Token) -> bool {
        if self.is_literal_start(t) {
            return true;
        }
        match t.kind {
            TokenKind::QMark | TokenKind::QuotedIdent => true,
            TokenKind::Punct(b':' | b'[' | b'{' | b'(') => true,
            TokenKind::Ident => !is_reserved(self.text(t)) || self.is_word(t, "token"),
            _ => false,
        }
    }

    /// `?` or `:name`, if present.
    fn bind_marker(&mut self) -> PResult<Option<BindMarker>> {
        if self.peek().kind == TokenKind::QMark {
            self.pos += 1;
            return Ok(Some(self.new_bind(None)));
        }
        if self.accept_punct(b':') {
            let name = self.ident("a bind marker name")?;
            return Ok(Some(self.new_bind(Some(name))));
        }
        Ok(None)
    }

    fn term(&mut self) -> PResult<Term> {
        self.enter()?;
        let r = self.term_inner();
        self.leave();
        r
    }

    fn term_inner(&mut self) -> PResult<Term> {
        let t = self.peek();
        if self.is_literal_start(t) {
            return Ok(Term::Literal(self.literal()?));
        }
        if let Some(b) = self.bind_marker()? {
            return Ok(Term::Bind(b));
        }
        match t.kind {
            TokenKind::Punct(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if !self.accept_punct(b']') {
                    loop {
                        items.push(self.term()?);
                        if !self.accept_punct(b',') {
                            break;
                        }
                    }
                    self.expect_punct(b']')?;
                }
                Ok(Term::List(items))
            }
            TokenKind::Punct(b'{') => self.brace_term(),
            TokenKind::Punct(b'(') => {
                if let Some(hinted) = self.try_type_hint()? {
                    return Ok(hinted);
                }
                self.pos += 1;
                let mut items = vec![self.term()?];
                while self.accept_punct(b',') {
                    items.push(self.term()?);
                }
                self.expect_punct(b')')?;
                Ok(Term::Tuple(items))
            }
            TokenKind::Ident | TokenKind::QuotedIdent => {
                if t.kind == TokenKind::Ident
                    && is_reserved(self.text(t))
                    && !self.is_word(t, "token")
                {
                    return Err(self.no_viable("a term"));
                }
                let name = self.function_name()?;
                self.expect_punct(b'(')?;
                let mut args = Vec::new();
                if !self.accept_punct(b')') {
                    loop {
                        args.push(self.term()?);
                        if !self.accept_punct(b',') {
                            break;
                        }
                    }
                    self.expect_punct(b')')?;
                }
                Ok(Term::FunctionCall { name, args })
            }
            _ => Err(self.no_viable("a term")),
        }
    }

    /// `(type) term`, tried speculatively at a `(`; restores the position
    /// and returns `None` if the parenthesised text is not a type.
    fn try_type_hint(&mut self) -> PResult<Option<Term>> {
        let next = self.peek_at(1);
        let candidate = match next.kind {
            TokenKind::Ident => {
                let w = self.text(next);
                native_type(w).is_some() || !is_reserved(w)
            }
            TokenKind::QuotedIdent | TokenKind::String => true,
            _ => false,
        };
        if !candidate {
            return Ok(None);
        }
        let save = self.pos;
        self.pos += 1;
        let ty = match self.cql_type() {
            Ok(ty) if self.at_punct(b')') && self.is_term_start(self.peek_at(1)) => ty,
            _ => {
                self.pos = save;
                return Ok(None);
            }
        };
        self.pos += 1;
        let term = self.term()?;
        Ok(Some(Term::TypeHint {
            ty,
            term: Box::new(term),
        }))
    }

    /// `{}` map, `{k: v}` map, `{a, b}` set or `{field: v}` user type value.
    fn brace_term(&mut self) -> PResult<Term> {
        self.pos += 1; // '{'
        if self.accept_punct(b'}') {
            return Ok(Term::Map(Vec::new()));
        }
        let t = self.peek();
        if self.is_ident_token(t) && Self::is_punct(self.peek_at(1), b':') {
            let mut fields = Vec::new();
            loop {
                let f = self.ident("a field name")?;
                self.expect_punct(b':')?;
                fields.push((f, self.term()?));
                if !self.accept_punct(b',') {
                    break;
                }
            }
            self.expect_punct(b'}')?;
            return Ok(Term::Udt(fields));
        }
        let first = self.term()?;
        if self.accept_punct(b':') {
            let v = self.term()?;
            let mut entries = vec![(first, v)];
            while self.accept_punct(b',') {
                let k = self.term()?;
                self.expect_punct(b':')?;
                entries.push((k, self.term()?));
            }
            self.expect_punct(b'}')?;
            Ok(Term::Map(entries))
        } else {
            let mut items = vec![first];
            while self.accept_punct(b',') {
                items.push(self.term()?);
            }
            self.expect_punct(b'}')?;
            Ok(Term::Set(items))
        }
    }

    /// `f`, `ks.f`, `token`, `"QuotedF"`; unquoted parts lower-cased.
    fn function_name(&mut self) -> PResult<String> {
        let t = self.peek();
        let first = if self.is_word(t, "token") {
            self.pos += 1;
            "token".to_string()
        } else {
            self.ident("a function name")?
        };
        if self.at_punct(b'.') && self.is_ident_token(self.peek_at(1)) {
            self.pos += 1;
            let second = self.ident("a function name")?;
            return Ok(format!("{first}.{second}"));
        }
        Ok(first)
    }

    /// TTL / TIMESTAMP value: an integer or a bind marker.
    fn int_value(&mut self) -> PResult<Term> {
        if let Some(b) = self.bind_marker()? {
            return Ok(Term::Bind(b));
        }
        let t = self.peek();
        if t.kind == TokenKind::Integer {
            self.pos += 1;
            return Ok(Term::Literal(Literal::Integer(self.text(t).to_string())));
        }
        Err(self.no_viable("an integer or a bind marker"))
    }

    // ---------------------------------------------------------------
    // Statements
    // ---------------------------------------------------------------

    fn statement(&mut self) -> PResult<Statement> {
        let t = self.peek();
        if t.kind != TokenKind::Ident {
            return Err(self.no_viable("a statement"));
        }
        // Lower-case the (short) first word on the stack: no allocation.
        let word = self.text(t).as_bytes();
        let mut buf = [0u8; 8];
        let w = if word.len() <= buf.len() {
            for (d, s) in buf.iter_mut().zip(word) {
                *d = s.to_ascii_lowercase();
            }
            std::str::from_utf8(&buf[..word.len()]).unwrap_or("")
        } else {
            ""
        };
        match w {
            "select" => Ok(Statement::Select(self.select()?)),
            "insert" => Ok(Statement::Insert(self.insert()?)),
            "update" => Ok(Statement::Update(self.update()?)),
            "delete" => Ok(Statement::Delete(self.delete()?)),
            "begin" => Ok(Statement::Batch(self.batch()?)),
            "use" => {
                self.pos += 1;
                Ok(Statement::Use(self.ident("a keyspace name")?))
            }
            "truncate" => {
                self.pos += 1;
                if !self.accept_kw("table") {
                    self.accept_kw("columnfamily");
                }
                Ok(Statement::Truncate(self.qualified_name("a table name")?))
            }
            "create" => self.create(),
            "alter" => self.alter(),
            "drop" => self.drop(),
            "describe" | "desc" => self.describe(),
            "grant" => self.unsupported_rest("GRANT"),
            "revoke" => self.unsupported_rest("REVOKE"),
            "list" => {
                let what = if self.at_kw_n(1, "roles") {
                    "LIST ROLES"
                } else if self.at_kw_n(1, "users") {
                    "LIST USERS"
                } else {
                    "LIST PERMISSIONS"
                };
                self.skip_rest();
                Ok(Statement::Unsupported(what.into()))
            }
            _ => Err(self.no_viable(
                "a statement (SELECT, INSERT, UPDATE, DELETE, BEGIN BATCH, USE, TRUNCATE, CREATE, ALTER, DROP, DESCRIBE, ...)",
            )),
        }
    }

    fn unsupported_rest(&mut self, what: &str) -> PResult<Statement> {
        self.skip_rest();
        Ok(Statement::Unsupported(what.to_string()))
    }

    fn at_keyspace_kw(&self) -> bool {
        self.at_kw("keyspace") || self.at_kw("schema")
    }

    fn at_table_kw(&self) -> bool {
        self.at_kw("table") || self.at_kw("columnfamily")
    }

    fn create(&mut self) -> PResult<Statement> {
        self.pos += 1; // CREATE
        if self.at_keyspace_kw() {
            self.pos += 1;
            let if_not_exists = self.if_not_exists()?;
            let name = self.ident("a keyspace name")?;
            self.expect_kw("with")?;
            let properties = self.properties()?;
            return Ok(Statement::CreateKeyspace {
                name,
                if_not_exists,
                properties,
            });
        }
        if self.at_table_kw() {
            self.pos += 1;
            return Ok(Statement::CreateTable(self.create_table()?));
        }
        if self.at_kw("type") {
            self.pos += 1;
            let if_not_exists = self.if_not_exists()?;
            let name = self.user_type_name()?;
            self.expect_punct(b'(')?;
            let mut fields = Vec::new();
            loop {
                let f = self.ident("a field name")?;
                let ty = self.cql_type()?;
                fields.push((f, ty));
                if !self.accept_punct(b',') || self.at_punct(b')') {
                    break;
                }
            }
            self.expect_punct(b')')?;
            return Ok(Statement::CreateType(CreateType {
                name,
                if_not_exists,
                fields,
            }));
        }
        if self.at_kw("index") || (self.at_kw("custom") && self.at_kw_n(1, "index")) {
            let custom = self.accept_kw("custom");
            self.pos += 1; // INDEX
            return Ok(Statement::CreateIndex(self.create_index(custom)?));
        }
        if self.at_kw("or") {
            self.pos += 1;
            self.expect_kw("replace")?;
            if self.at_kw("function") {
                return self.unsupported_rest("CREATE FUNCTION");
            }
            if self.at_kw("aggregate") {
                return self.unsupported_rest("CREATE AGGREGATE");
            }
            return Err(self.mismatched("FUNCTION or AGGREGATE"));
        }
        for (kw, what) in [
            ("role", "CREATE ROLE"),
            ("user", "CREATE USER"),
            ("function", "CREATE FUNCTION"),
            ("aggregate", "CREATE AGGREGATE"),
            ("trigger", "CREATE TRIGGER"),
        ] {
            if self.at_kw(kw) {
                return self.unsupported_rest(what);
            }
        }
        if self.at_kw("materialized") && self.at_kw_n(1, "view") {
            return self.unsupported_rest("CREATE MATERIALIZED VIEW");
        }
        Err(self.no_viable("KEYSPACE, TABLE, TYPE, INDEX, ... after CREATE"))
    }

    fn alter(&mut self) -> PResult<Statement> {
        self.pos += 1; // ALTER
        if self.at_keyspace_kw() {
            self.pos += 1;
            let if_exists = self.if_exists()?;
            let name = self.ident("a keyspace name")?;
            self.expect_kw("with")?;
            let properties = self.properties()?;
            return Ok(Statement::AlterKeyspace {
                name,
                if_exists,
                properties,
            });
        }
        if self.at_table_kw() {
            self.pos += 1;
            return Ok(Statement::AlterTable(self.alter_table()?));
        }
        if self.at_kw("type") {
            self.pos += 1;
            return Ok(Statement::AlterType(self.alter_type()?));
        }
        for (kw, what) in [("role", "ALTER ROLE"), ("user", "ALTER USER")] {
            if self.at_kw(kw) {
                return self.unsupported_rest(what);
            }
        }
        if self.at_kw("materialized") && self.at_kw_n(1, "view") {
            return self.unsupported_rest("ALTER MATERIALIZED VIEW");
        }
        Err(self.no_viable("KEYSPACE, TABLE, TYPE, ... after ALTER"))
    }

    fn drop(&mut self) -> PResult<Statement> {
        self.pos += 1; // DROP
        if self.at_keyspace_kw() {
            self.pos += 1;
            let if_exists = self.if_exists()?;
            let name = self.ident("a keyspace name")?;
            return Ok(Statement::DropKeyspace { name, if_exists });
        }
        if self.at_table_kw() {
            self.pos += 1;
            let if_exists = self.if_exists()?;
            let name = self.qualified_name("a table name")?;
            return Ok(Statement::DropTable { name, if_exists });
        }
        if self.at_kw("type") {
            self.pos += 1;
            let if_exists = self.if_exists()?;
            let name = self.user_type_name()?;
            return Ok(Statement::DropType { name, if_exists });
        }
        if self.at_kw("index") {
            self.pos += 1;
            let if_exists = self.if_exists()?;
            let name = self.qualified_name("an index name")?;
            return Ok(Statement::DropIndex { name, if_exists });
        }
        for (kw, what) in [
            ("role", "DROP ROLE"),
            ("user", "DROP USER"),
            ("function", "DROP FUNCTION"),
            ("aggregate", "DROP AGGREGATE"),
            ("trigger", "DROP TRIGGER"),
        ] {
            if self.at_kw(kw) {
                return self.unsupported_rest(what);
            }
        }
        if self.at_kw("materialized") && self.at_kw_n(1, "view") {
            return self.unsupported_rest("DROP MATERIALIZED VIEW");
        }
        Err(self.no_viable("KEYSPACE, TABLE, TYPE, INDEX, ... after DROP"))
    }

    // ---------------------------------------------------------------
    // Properties
    // ---------------------------------------------------------------

    /// `name = value (AND name = value)*`.
    fn properties(&mut self) -> PResult<Vec<Property>> {
        let mut props = Vec::new();
        loop {
            self.property(&mut props)?;
            if !self.accept_kw("and") {
                break;
            }
        }
        Ok(props)
    }

    fn property(&mut self, props: &mut Vec<Property>) -> PResult<()> {
        let name = self.ident("a property name")?;
        if props.iter().any(|p| p.name == name) {
            self.pos -= 1;
            return Err(self.error_here(format!("Multiple definition for property {name}")));
        }
        self.expect_punct(b'=')?;
        let value = self.property_value()?;
        props.push(Property { name, value });
        Ok(())
    }

    fn property_value(&mut self) -> PResult<PropertyValue> {
        if self.accept_punct(b'{') {
            let mut entries = Vec::new();
            if !self.accept_punct(b'}') {
                loop {
                    let k = self.literal()?;
                    self.expect_punct(b':')?;
                    let v = self.literal()?;
                    entries.push((k, v));
                    if !self.accept_punct(b',') {
                        break;
                    }
                }
                self.expect_punct(b'}')?;
            }
            return Ok(PropertyValue::Map(entries));
        }
        let t = self.peek();
        if t.kind == TokenKind::Ident && !is_reserved(self.text(t)) && !self.is_word(t, "null") {
            // Cassandra accepts an unreserved keyword as a string value
            // (`caching = ALL`), keeping its text.
            self.pos += 1;
            return Ok(PropertyValue::Constant(Literal::String(
                self.text(t).to_string(),
            )));
        }
        Ok(PropertyValue::Constant(self.literal()?))
    }

    // ---------------------------------------------------------------
    // DDL
    // ---------------------------------------------------------------

    fn create_table(&mut self) -> PResult<CreateTable> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.qualified_name("a table name")?;
        let mut ct = CreateTable {
            name,
            if_not_exists,
            columns: Vec::new(),
            partition_key: Vec::new(),
            clustering_key: Vec::new(),
            clustering_order: Vec::new(),
            compact_storage: false,
            properties: Vec::new(),
        };
        let mut pk_seen = false;
        self.expect_punct(b'(')?;
        loop {
            if self.at_kw("primary") {
                if pk_seen {
                    return Err(self.error_here(
                        "Multiple PRIMARY KEYs specified (exactly one required)".into(),
                    ));
                }
                pk_seen = true;
                self.pos += 1;
                self.expect_kw("key")?;
                self.expect_punct(b'(')?;
                if self.accept_punct(b'(') {
                    loop {
                        ct.partition_key.push(self.ident("a column name")?);
                        if !self.accept_punct(b',') {
                            break;
                        }
                    }
                    self.expect_punct(b')')?;
                } else {
                    ct.partition_key.push(self.ident("a column name")?);
                }
                while self.accept_punct(b',') {
                    ct.clustering_key.push(self.ident("a column name")?);
                }
                self.expect_punct(b')')?;
            } else {
                let col = self.ident("a column name")?;
                let ty = self.cql_type()?;
                let is_static = self.accept_kw("static");
                if self.at_kw("primary") {
                    if pk_seen {
                        return Err(self.error_here(
                            "Multiple PRIMARY KEYs specified (exactly one required)".into(),
                        ));
                    }
                    pk_seen = true;
                    self.pos += 1;
                    self.expect_kw("key")?;
                    ct.partition_key.push(col.clone());
                }
                ct.columns.push(ColumnDef {
                    name: col,
                    ty,
                    is_static,
                });
            }
            if !self.accept_punct(b',') || self.at_punct(b')') {
                break;
            }
        }
        self.expect_punct(b')')?;
        if self.accept_kw("with") {
            loop {
                if self.at_kw("compact") && self.at_kw_n(1, "storage") {
                    self.pos += 2;
                    ct.compact_storage = true;
                } else if self.at_kw("clustering") && self.at_kw_n(1, "order") {
                    self.pos += 2;
                    self.expect_kw("by")?;
                    self.expect_punct(b'(')?;
                    loop {
                        let c = self.ident("a column name")?;
                        let desc = if self.accept_kw("desc") {
                            true
                        } else if self.accept_kw("asc") {
                            false
                        } else {
                            return Err(self.mismatched("ASC or DESC"));
                        };
                        ct.clustering_order.push((c, desc));
                        if !self.accept_punct(b',') {
                            break;
                        }
                    }
                    self.expect_punct(b')')?;
                } else {
                    self.property(&mut ct.properties)?;
                }
                if !self.accept_kw("and") {
                    break;
                }
            }
        }
        Ok(ct)
    }

    fn column_def(&mut self) -> PResult<ColumnDef> {
        let name = self.ident("a column name")?;
        let ty = self.cql_type()?;
        let is_static = self.accept_kw("static");
        Ok(ColumnDef {
            name,
            ty,
            is_static,
        })
    }

    fn alter_table(&mut self) -> PResult<AlterTable> {
        let if_exists = self.if_exists()?;
        let name = self.qualified_name("a table name")?;
        let op = if self.accept_kw("add") {
            let if_not_exists = self.if_not_exists()?;
            let mut columns = Vec::new();
            if self.accept_punct(b'(') {
                loop {
                    columns.push(self.column_def()?);
                    if !self.accept_punct(b',') {
                        break;
                    }
                }
                self.expect_punct(b')')?;
            } else {
                columns.push(self.column_def()?);
            }
            AlterTableOp::Add {
                if_not_exists,
                columns,
            }
        } else if self.accept_kw("drop") {
            if self.at_kw("compact") && self.at_kw_n(1, "storage") {
                self.pos += 2;
                self.mark_unsupported("ALTER TABLE DROP COMPACT STORAGE");
                AlterTableOp::Drop {
                    if_exists: false,
                    columns: Vec::new(),
                }
            } else {
                let if_exists = self.if_exists()?;
                let mut columns = Vec::new();
                if self.accept_punct(b'(') {
                    loop {
                        columns.push(self.ident("a column name")?);
                        if !self.accept_punct(b',') {
                            break;
                        }
                    }
                    self.expect_punct(b')')?;
                } else {
                    columns.push(self.ident("a column name")?);
                }
                if self.accept_kw("using") {
                    self.expect_kw("timestamp")?;
                    if self.peek().kind != TokenKind::Integer {
                        return Err(self.mismatched("an integer"));
                    }
                    self.pos += 1;
                    self.mark_unsupported("ALTER TABLE DROP USING TIMESTAMP");
                }
                AlterTableOp::Drop { if_exists, columns }
            }
        } else if self.accept_kw("rename") {
            // `IF EXISTS` (Cassandra 4.1) is accepted; renaming a missing
            // column is an error either way for primary key columns.
            self.if_exists()?;
            let mut pairs = Vec::new();
            loop {
                let from = self.ident("a column name")?;
                self.expect_kw("to")?;
                let to = self.ident("a column name")?;
                pairs.push((from, to));
                if !self.accept_kw("and") {
                    break;
                }
            }
            AlterTableOp::Rename(pairs)
        } else if self.accept_kw("alter") {
            let column = self.ident("a column name")?;
            self.expect_kw("type")?;
            let ty = self.cql_type()?;
            AlterTableOp::AlterType { column, ty }
        } else if self.accept_kw("with") {
            AlterTableOp::With(self.properties()?)
        } else {
            return Err(self.no_viable("ADD, DROP, RENAME, ALTER or WITH"));
        };
        Ok(AlterTable {
            name,
            if_exists,
            op,
        })
    }

    fn alter_type(&mut self) -> PResult<AlterType> {
        let if_exists = self.if_exists()?;
        let name = self.user_type_name()?;
        let op = if self.accept_kw("add") {
            self.if_not_exists()?;
            let field = self.ident("a field name")?;
            let ty = self.cql_type()?;
            AlterTypeOp::Add { field, ty }
        } else if self.accept_kw("rename") {
            self.if_exists()?;
            let mut pairs = Vec::new();
            loop {
                let from = self.ident("a field name")?;
                self.expect_kw("to")?;
                let to = self.ident("a field name")?;
                pairs.push((from, to));
                if !self.accept_kw("and") {
                    break;
                }
            }
            AlterTypeOp::Rename(pairs)
        } else if self.accept_kw("alter") {
            self.ident("a field name")?;
            self.expect_kw("type")?;
            self.cql_type()?;
            self.mark_unsupported("ALTER TYPE ALTER");
            AlterTypeOp::Rename(Vec::new())
        } else {
            return Err(self.no_viable("ADD, RENAME or ALTER"));
        };
        Ok(AlterType {
            name,
            if_exists,
            op,
        })
    }

    fn create_index(&mut self, custom: bool) -> PResult<CreateIndex> {
        let if_not_exists = self.if_not_exists()?;
        let name = if self.at_kw("on") {
            None
        } else {
            Some(self.ident("an index name")?)
        };
        self.expect_kw("on")?;
        let table = self.qualified_name("a table name")?;
        self.expect_punct(b'(')?;
        let mut targets = Vec::new();
        if !self.at_punct(b')') {
            loop {
                targets.push(self.index_target()?);
                if !self.accept_punct(b',') {
                    break;
                }
            }
        }
        self.expect_punct(b')')?;
        let mut custom_class = None;
        if self.accept_kw("using") {
            let t = self.peek();
            if !matches!(t.kind, TokenKind::String | TokenKind::PgString) {
                return Err(self.mismatched("a string (the index class)"));
            }
            self.pos += 1;
            custom_class = Some(self.string_value(t));
        }
        let properties = if self.accept_kw("with") {
            self.properties()?
        } else {
            Vec::new()
        };
        if custom && custom_class.is_none() {
            return Err(self.error_here("CUSTOM index requires specifying the index class".into()));
        }
        if !custom && custom_class.is_some() {
            return Err(self.error_here("Cannot specify index class for a non-CUSTOM index".into()));
        }
        let target = match targets.len() {
            1 => targets.pop().unwrap_or(IndexTarget::Values(String::new())),
            0 => {
                self.mark_unsupported("CREATE INDEX without target column");
                IndexTarget::Values(String::new())
            }
            _ => {
                self.mark_unsupported("CREATE INDEX on multiple columns");
                IndexTarget::Values(String::new())
            }
        };
        Ok(CreateIndex {
            name,
            table,
            if_not_exists,
            target,
            custom_class,
            properties,
        })
    }

    fn index_target(&mut self) -> PResult<IndexTarget> {
        if Self::is_punct(self.peek_at(1), b'(') {
            let kinds: [(&str, IndexTargetCtor); 4] = [
                ("values", IndexTarget::Values),
                ("keys", IndexTarget::Keys),
                ("entries", IndexTarget::Entries),
                ("full", IndexTarget::Full),
            ];
            for (kw, make) in kinds {
                if self.at_kw(kw) {
                    self.pos += 2;
                    let c = self.ident("a column name")?;
                    self.expect_punct(b')')?;
                    return Ok(make(c));
                }
            }
            return Err(self.no_viable("VALUES, KEYS, ENTRIES or FULL"));
        }
        Ok(IndexTarget::Values(self.ident("a column name")?))
    }

    fn describe(&mut self) -> PResult<Statement> {
        self.pos += 1; // DESCRIBE | DESC
        let d = if self.accept_kw("cluster") {
            Describe::Cluster
        } else if self.at_kw("full") && self.at_kw_n(1, "schema") {
            self.pos += 2;
            Describe::Schema { full: true }
        } else if self.accept_kw("schema") {
            Describe::Schema { full: false }
        } else if self.accept_kw("keyspaces") {
            Describe::Keyspaces
        } else if self.at_kw("keyspace") || (self.at_kw("only") && self.at_kw_n(1, "keyspace")) {
            let only = self.accept_kw("only");
            self.pos += 1;
            let name = if self.is_ident_token(self.peek()) {
                Some(self.ident("a keyspace name")?)
            } else {
                None
            };
            Describe::Keyspace { name, only }
        } else if self.at_table_kw() {
            self.pos += 1;
            Describe::Table(self.qualified_name("a table name")?)
        } else if self.accept_kw("tables") || self.accept_kw("columnfamilies") {
            Describe::Tables
        } else if self.accept_kw("index") {
            Describe::Index(self.qualified_name("an index name")?)
        } else if self.at_kw("materialized") && self.at_kw_n(1, "view") {
            self.pos += 2;
            self.qualified_name("a view name")?;
            self.mark_unsupported("DESCRIBE MATERIALIZED VIEW");
            Describe::Cluster
        } else if self.accept_kw("types") {
            Describe::Types
        } else if self.accept_kw("type") {
            Describe::Type(self.user_type_name()?)
        } else if self.accept_kw("functions") {
            Describe::Functions
        } else if self.accept_kw("aggregates") {
            Describe::Aggregates
        } else if self.at_kw("function") || self.at_kw("aggregate") {
            let what = if self.at_kw("function") {
                "DESCRIBE FUNCTION"
            } else {
                "DESCRIBE AGGREGATE"
            };
            self.pos += 1;
            self.function_name()?;
            self.mark_unsupported(what);
            Describe::Cluster
        } else {
            Describe::Name(self.qualified_name("a keyspace or object name")?)
        };
        if self.accept_kw("with") {
            // `WITH INTERNALS` only adds detail to the output.
            self.expect_kw("internals")?;
        }
        Ok(Statement::Describe(d))
    }

    // ---------------------------------------------------------------
    // DML
    // ---------------------------------------------------------------

    /// `USING objective (AND objective)*` (the `USING` already consumed).
    fn using_objectives(&mut self, ttl_ok: bool, timestamp_ok: bool) -> PResult<Using> {
        let mut u = Using::default();
        loop {
            if ttl_ok && self.accept_kw("ttl") {
                u.ttl = Some(self.int_value()?);
            } else if timestamp_ok && self.accept_kw("timestamp") {
                u.timestamp = Some(self.int_value()?);
            } else if self.accept_kw("timeout") {
                u.timeout = Some(self.term()?);
            } else {
                let what = match (ttl_ok, timestamp_ok) {
                    (true, true) => "TTL, TIMESTAMP or TIMEOUT",
                    (false, true) => "TIMESTAMP or TIMEOUT",
                    _ => "TIMEOUT",
                };
                return Err(self.no_viable(what));
            }
            if !self.accept_kw("and") {
                break;
            }
        }
        Ok(u)
    }

    fn select(&mut self) -> PResult<Select> {
        self.pos += 1; // SELECT
        let json = self.at_kw("json") && self.modifier_keyword();
        if json {
            self.pos += 1;
        }
        let distinct = self.at_kw("distinct") && self.modifier_keyword();
        if distinct {
            self.pos += 1;
        }
        let selection = if self.accept_punct(b'*') {
            Selection::Star
        } else {
            let mut items = Vec::new();
            loop {
                let selector = self.selector()?;
                let alias = if self.accept_kw("as") {
                    Some(self.ident("an alias")?)
                } else {
                    None
                };
                items.push(SelectItem { selector, alias });
                if !self.accept_punct(b',') {
                    break;
                }
            }
            Selection::Items(items)
        };
        self.expect_kw("from")?;
        let table = self.qualified_name("a table name")?;
        let where_clause = if self.accept_kw("where") {
            self.where_clause()?
        } else {
            Vec::new()
        };
        let mut group_by = Vec::new();
        if self.at_kw("group") && self.at_kw_n(1, "by") {
            self.pos += 2;
            loop {
                group_by.push(self.ident("a column name")?);
                if !self.accept_punct(b',') {
                    break;
                }
            }
        }
        let mut order_by = Vec::new();
        if self.accept_kw("order") {
            self.expect_kw("by")?;
            loop {
                let c = self.ident("a column name")?;
                let desc = if self.accept_kw("desc") {
                    true
                } else {
                    self.accept_kw("asc");
                    false
                };
                order_by.push((c, desc));
                if !self.accept_punct(b',') {
                    break;
                }
            }
        }
        let mut per_partition_limit = None;
        if self.at_kw("per") && self.at_kw_n(1, "partition") {
            self.pos += 2;
            self.expect_kw("limit")?;
            per_partition_limit = Some(self.int_value()?);
        }
        let limit = if self.accept_kw("limit") {
            Some(self.int_value()?)
        } else {
            None
        };
        let allow_filtering = if self.accept_kw("allow") {
            self.expect_kw("filtering")?;
            true
        } else {
            false
        };
        // Scylla: `BYPASS CACHE` is a cache hint only.
        if self.at_kw("bypass") && self.at_kw_n(1, "cache") {
            self.pos += 2;
        }
        let using = if self.accept_kw("using") {
            self.using_objectives(false, false)?
        } else {
            Using::default()
        };
        Ok(Select {
            table,
            distinct,
            json,
            selection,
            where_clause,
            group_by,
            order_by,
            per_partition_limit,
            limit,
            allow_filtering,
            using,
        })
    }

    /// At `JSON`/`DISTINCT` after `SELECT`: is it the modifier or a column?
    fn modifier_keyword(&self) -> bool {
        let next = self.peek_at(1);
        !(self.is_word(next, "from")
            || self.is_word(next, "as")
            || matches!(
                next.kind,
                TokenKind::Punct(b',' | b'.' | b'(' | b'[') | TokenKind::Eof
            ))
    }

    fn selector(&mut self) -> PResult<Selector> {
        self.enter()?;
        let r = self.selector_inner();
        self.leave();
        r
    }

    fn selector_inner(&mut self) -> PResult<Selector> {
        let mut s = self.selector_base()?;
        loop {
            if self.at_punct(b'.') {
                self.pos += 1;
                let field = self.ident("a field name")?;
                s = Selector::Field {
                    selector: Box::new(s),
                    field,
                };
            } else if self.at_punct(b'[') {
                // Collection element / slice selection (Cassandra 4.0).
                self.pos += 1;
                let first = if self.peek().kind != TokenKind::Range {
                    Some(self.term()?)
                } else {
                    None
                };
                if self.peek().kind == TokenKind::Range {
                    self.pos += 1;
                    let to = if !self.at_punct(b']') {
                        Some(self.term()?)
                    } else {
                        None
                    };
                    self.expect_punct(b']')?;
                    s = Selector::Slice {
                        selector: Box::new(s),
                        from: first,
                        to,
                    };
                } else {
                    self.expect_punct(b']')?;
                    let Some(key) = first else {
                        return Err(self.error_here("expected an element or a slice".to_string()));
                    };
                    s = Selector::Element {
                        selector: Box::new(s),
                        key,
                    };
                }
            } else {
                break;
            }
        }
        Ok(s)
    }

    fn selector_args(&mut self) -> PResult<Vec<Selector>> {
        self.expect_punct(b'(')?;
        let mut args = Vec::new();
        if !self.accept_punct(b')') {
            loop {
                args.push(self.selector()?);
                if !self.accept_punct(b',') {
                    break;
                }
            }
            self.expect_punct(b')')?;
        }
        Ok(args)
    }

    fn selector_base(&mut self) -> PResult<Selector> {
        let t = self.peek();
        let next = self.peek_at(1);
        match t.kind {
            TokenKind::Ident | TokenKind::QuotedIdent if !self.is_literal_start(t) => {
                let call = Self::is_punct(next, b'(');
                if call && t.kind == TokenKind::Ident {
                    let w = self.text(t);
                    if w.eq_ignore_ascii_case("count") {
                        self.pos += 2;
                        if self.accept_punct(b'*') {
                            self.expect_punct(b')')?;
                            return Ok(Selector::CountStar);
                        }
                        let a = self.peek();
                        if a.kind == TokenKind::Integer && Self::is_punct(self.peek_at(1), b')') {
                            if self.text(a) != "1" {
                                return Err(self.error_here(format!(
                                    "Only COUNT(1) is supported, got COUNT({})",
                                    self.text(a)
                                )));
                            }
                            self.pos += 2;
                            return Ok(Selector::CountStar);
                        }
                        self.pos -= 1;
                        let args = self.selector_args()?;
                        return Ok(Selector::Function {
                            name: "count".into(),
                            args,
                        });
                    }
                    let wt = w.eq_ignore_ascii_case("writetime");
                    if wt || w.eq_ignore_ascii_case("ttl") {
                        self.pos += 2;
                        let c = self.ident("a column name")?;
                        self.expect_punct(b')')?;
                        return Ok(if wt {
                            Selector::WriteTime(c)
                        } else {
                            Selector::Ttl(c)
                        });
                    }
                    if w.eq_ignore_ascii_case("cast") {
                        self.pos += 2;
                        let inner = self.selector()?;
                        self.expect_kw("as")?;
                        let ty = self.native_type_only()?;
                        self.expect_punct(b')')?;
                        return Ok(Selector::Cast {
                            selector: Box::new(inner),
                            ty,
                        });
                    }
                }
                let qualified_call = Self::is_punct(next, b'.')
                    && self.is_ident_token(self.peek_at(2))
                    && Self::is_punct(self.peek_at(3), b'(');
                if call || qualified_call {
                    if t.kind == TokenKind::Ident
                        && is_reserved(self.text(t))
                        && !self.is_word(t, "token")
                    {
                        return Err(self.no_viable("a selector"));
                    }
                    let name = self.function_name()?;
                    let args = self.selector_args()?;
                    return Ok(Selector::Function { name, args });
                }
                Ok(Selector::Column(self.ident("a selector")?))
            }
            _ if self.is_term_start(t) => Ok(Selector::Term(self.term()?)),
            _ => Err(self.no_viable("a selector")),
        }
    }

    fn where_clause(&mut self) -> PResult<Vec<Relation>> {
        let mut rels = Vec::new();
        loop {
            self.relation(&mut rels)?;
            if !self.accept_kw("and") {
                break;
            }
        }
        Ok(rels)
    }

    /// `= < <= > >= !=`.
    fn relation_op(&mut self) -> Option<Operator> {
        let op = match self.peek().kind {
            TokenKind::Punct(b'=') => Operator::Eq,
            TokenKind::Punct(b'<') => Operator::Lt,
            TokenKind::Punct(b'>') => Operator::Gt,
            TokenKind::Lte => Operator::Lte,
            TokenKind::Gte => Operator::Gte,
            TokenKind::Neq => Operator::Neq,
            _ => return None,
        };
        self.pos += 1;
        Some(op)
    }

    fn expect_relation_op(&mut self) -> PResult<Operator> {
        match self.relation_op() {
            Some(op) => Ok(op),
            None => Err(self.no_viable("a relation operator (=, <, <=, >, >=, !=)")),
        }
    }

    /// `IN` values: a bind marker or `(t, ...)` (possibly empty).
    fn in_values(&mut self) -> PResult<Term> {
        if let Some(b) = self.bind_marker()? {
            return Ok(Term::Bind(b));
        }
        self.expect_punct(b'(')?;
        let mut items = Vec::new();
        if !self.accept_punct(b')') {
            loop {
                items.push(self.term()?);
                if !self.accept_punct(b',') {
                    break;
                }
            }
            self.expect_punct(b')')?;
        }
        Ok(Term::Tuple(items))
    }

    fn ident_list_in_parens(&mut self) -> PResult<Vec<String>> {
        self.expect_punct(b'(')?;
        let mut cols = Vec::new();
        loop {
            cols.push(self.ident("a column name")?);
            if !self.accept_punct(b',') {
                break;
            }
        }
        self.expect_punct(b')')?;
        Ok(cols)
    }

    fn relation(&mut self, out: &mut Vec<Relation>) -> PResult<()> {
        self.enter()?;
        let r = self.relation_inner(out);
        self.leave();
        r
    }

    fn relation_inner(&mut self, out: &mut Vec<Relation>) -> PResult<()> {
        let t = self.peek();
        if self.is_word(t, "token") && Self::is_punct(self.peek_at(1), b'(') {
            self.pos += 1;
            let columns = self.ident_list_in_parens()?;
            let op = self.expect_relation_op()?;
            let value = self.term()?;
            out.push(Relation::Token { columns, op, value });
            return Ok(());
        }
        if Self::is_punct(t, b'(') {
            let multi = self.is_ident_token(self.peek_at(1))
                && matches!(self.peek_at(2).kind, TokenKind::Punct(b',' | b')'));
            if !multi {
                self.pos += 1;
                self.relation(out)?;
                self.expect_punct(b')')?;
                return Ok(());
            }
            let columns = self.ident_list_in_parens()?;
            if self.accept_kw("in") {
                let value = self.in_values()?;
                out.push(Relation::MultiColumn {
                    columns,
                    op: Operator::In,
                    value,
                });
                return Ok(());
            }
            let op = self.expect_relation_op()?;
            let value = if let Some(b) = self.bind_marker()? {
                Term::Bind(b)
            } else if self.at_punct(b'(') {
                self.term()?
            } else {
                return Err(self.no_viable("a tuple or a bind marker"));
            };
            out.push(Relation::MultiColumn { columns, op, value });
            return Ok(());
        }
        let column = self.ident("a column name")?;
        if self.accept_punct(b'[') {
            self.term()?;
            self.expect_punct(b']')?;
            let op = self.expect_relation_op()?;
            let value = self.term()?;
            self.mark_unsupported("relation on a collection element");
            out.push(Relation::Single { column, op, value });
            return Ok(());
        }
        let (op, value) = if self.accept_kw("in") {
            (Operator::In, self.in_values()?)
        } else if self.accept_kw("contains") {
            if self.at_kw("key") && !Self::is_punct(self.peek_at(1), b'(') {
                self.pos += 1;
                (Operator::ContainsKey, self.term()?)
            } else {
                (Operator::Contains, self.term()?)
            }
        } else if self.accept_kw("like") {
            (Operator::Like, self.term()?)
        } else if self.accept_kw("is") {
            self.expect_kw("not")?;
            self.expect_kw("null")?;
            out.push(Relation::IsNotNull { column });
            return Ok(());
        } else if let Some(op) = self.relation_op() {
            (op, self.term()?)
        } else {
            return Err(self.no_viable(
                "a relation operator (=, <, <=, >, >=, !=, IN, CONTAINS, LIKE, IS NOT NULL)",
            ));
        };
        out.push(Relation::Single { column, op, value });
        Ok(())
    }

    /// After `IF`: `EXISTS` or conditions. Returns (if_exists, conditions).
    fn if_clause(&mut self) -> PResult<(bool, Vec<Condition>)> {
        if self.at_kw("exists") {
            let next = self.peek_at(1);
            let column_use = matches!(
                next.kind,
                TokenKind::Punct(b'=' | b'<' | b'>' | b'[' | b'.')
                    | TokenKind::Lte
                    | TokenKind::Gte
                    | TokenKind::Neq
            ) || self.is_word(next, "in");
            if !column_use {
                self.pos += 1;
                return Ok((true, Vec::new()));
            }
        }
        let mut conds = Vec::new();
        loop {
            conds.push(self.condition()?);
            if !self.accept_kw("and") {
                break;
            }
        }
        Ok((false, conds))
    }

    fn condition(&mut self) -> PResult<Condition> {
        let column = self.ident("a column name")?;
        let mut element = None;
        let mut field = None;
        if self.accept_punct(b'[') {
            element = Some(self.term()?);
            self.expect_punct(b']')?;
        } else if self.accept_punct(b'.') {
            field = Some(self.ident("a field name")?);
        }
        let (op, value) = if self.accept_kw("in") {
            (Operator::In, self.in_values()?)
        } else {
            let op = self.expect_relation_op()?;
            (op, self.term()?)
        };
        Ok(Condition {
            column,
            element,
            field,
            op,
            value,
        })
    }

    fn insert(&mut self) -> PResult<Insert> {
        self.pos += 1; // INSERT
        self.expect_kw("into")?;
        let table = self.qualified_name("a table name")?;
        let mut ins = Insert {
            table,
            columns: Vec::new(),
            values: Vec::new(),
            json: None,
            json_default_unset: false,
            if_not_exists: false,
            using: Using::default(),
        };
        if self.accept_kw("json") {
            let t = self.peek();
            let value = if matches!(t.kind, TokenKind::String | TokenKind::PgString) {
                self.pos += 1;
                Term::Literal(Literal::String(self.string_value(t)))
            } else if let Some(b) = self.bind_marker()? {
                Term::Bind(b)
            } else {
                return Err(self.no_viable("a JSON string or a bind marker"));
            };
            ins.json = Some(value);
            if self.accept_kw("default") {
                if self.accept_kw("unset") {
                    ins.json_default_unset = true;
                } else {
                    self.expect_kw("null")?;
                }
            }
        } else {
            ins.columns = self.ident_list_in_parens()?;
            self.expect_kw("values")?;
            self.expect_punct(b'(')?;
            loop {
                ins.values.push(self.term()?);
                if !self.accept_punct(b',') {
                    break;
                }
            }
            self.expect_punct(b')')?;
        }
        ins.if_not_exists = self.if_not_exists()?;
        if self.accept_kw("using") {
            ins.using = self.using_objectives(true, true)?;
        }
        Ok(ins)
    }

    fn update(&mut self) -> PResult<Update> {
        self.pos += 1; // UPDATE
        let table = self.qualified_name("a table name")?;
        let using = if self.accept_kw("using") {
            self.using_objectives(true, true)?
        } else {
            Using::default()
        };
        self.expect_kw("set")?;
        let mut assignments = Vec::new();
        loop {
            assignments.push(self.assignment()?);
            if !self.accept_punct(b',') {
                break;
            }
        }
        self.expect_kw("where")?;
        let where_clause = self.where_clause()?;
        let (if_exists, conditions) = if self.accept_kw("if") {
            self.if_clause()?
        } else {
            (false, Vec::new())
        };
        Ok(Update {
            table,
            using,
            assignments,
            where_clause,
            if_exists,
            conditions,
        })
    }

    fn assignment(&mut self) -> PResult<Assignment> {
        let column = self.ident("a column name")?;
        match self.peek().kind {
            TokenKind::PlusEq => {
                self.pos += 1;
                let value = self.term()?;
                Ok(Assignment::Append { column, value })
            }
            TokenKind::MinusEq => {
                self.pos += 1;
                let value = self.term()?;
                Ok(Assignment::Remove { column, value })
            }
            TokenKind::Punct(b'[') => {
                self.pos += 1;
                let key = self.term()?;
                self.expect_punct(b']')?;
                self.expect_punct(b'=')?;
                let value = self.term()?;
                Ok(Assignment::SetElement { column, key, value })
            }
            TokenKind::Punct(b'.') => {
                self.pos += 1;
                let field = self.ident("a field name")?;
                self.expect_punct(b'=')?;
                let value = self.term()?;
                Ok(Assignment::SetField {
                    column,
                    field,
                    value,
                })
            }
            TokenKind::Punct(b'=') => {
                self.pos += 1;
                let t = self.peek();
                let column_ref = self.is_ident_token(t)
                    && !Self::is_punct(self.peek_at(1), b'(')
                    && !(Self::is_punct(self.peek_at(1), b'.')
                        && Self::is_punct(self.peek_at(3), b'('));
                if column_ref {
                    let other = self.ident("a column name")?;
                    if other != column {
                        return Err(self.error_here(format!(
                            "Only expressions of the form X = X +/- <value> are supported (got {column} = {other} ...)"
                        )));
                    }
                    let n = self.peek();
                    if Self::is_punct(n, b'+') {
                        self.pos += 1;
                        let value = self.term()?;
                        return Ok(Assignment::Append { column, value });
                    }
                    if Self::is_punct(n, b'-') {
                        self.pos += 1;
                        let value = self.term()?;
                        return Ok(Assignment::Remove { column, value });
                    }
                    // `c = c -1` lexes the `-1` as one integer.
                    if n.kind == TokenKind::Integer && self.text(n).starts_with('-') {
                        self.pos += 1;
                        return Ok(Assignment::Append {
                            column,
                            value: Term::Literal(Literal::Integer(self.text(n).to_string())),
                        });
                    }
                    return Err(self.mismatched("'+' or '-'"));
                }
                let value = self.term()?;
                if self.accept_punct(b'+') {
                    let other = self.ident("a column name")?;
                    if other != column {
                        return Err(self.error_here(format!(
                            "Only expressions of the form X = <value> + X are supported (got {column} = ... + {other})"
                        )));
                    }
                    return Ok(Assignment::Prepend { column, value });
                }
                Ok(Assignment::Set { column, value })
            }
            _ => Err(self.no_viable("'=', '+=', '-=', '[' or '.'")),
        }
    }

    fn delete(&mut self) -> PResult<Delete> {
        self.pos += 1; // DELETE
        let mut targets = Vec::new();
        if !self.at_kw("from") {
            loop {
                let column = self.ident("a column name")?;
                if self.accept_punct(b'[') {
                    let key = self.term()?;
                    self.expect_punct(b']')?;
                    targets.push(DeleteTarget::Element { column, key });
                } else if self.accept_punct(b'.') {
                    let field = self.ident("a field name")?;
                    targets.push(DeleteTarget::Field { column, field });
                } else {
                    targets.push(DeleteTarget::Column(column));
                }
                if !self.accept_punct(b',') {
                    break;
                }
            }
        }
        self.expect_kw("from")?;
        let table = self.qualified_name("a table name")?;
        let using = if self.accept_kw("using") {
            self.using_objectives(false, true)?
        } else {
            Using::default()
        };
        self.expect_kw("where")?;
        let where_clause = self.where_clause()?;
        let (if_exists, conditions) = if self.accept_kw("if") {
            self.if_clause()?
        } else {
            (false, Vec::new())
        };
        Ok(Delete {
            table,
            targets,
            using,
            where_clause,
            if_exists,
            conditions,
        })
    }

    fn batch(&mut self) -> PResult<Batch> {
        self.pos += 1; // BEGIN
        let kind = if self.accept_kw("unlogged") {
            BatchKind::Unlogged
        } else if self.accept_kw("counter") {
            BatchKind::Counter
        } else {
            BatchKind::Logged
        };
        self.expect_kw("batch")?;
        let using = if self.accept_kw("using") {
            self.using_objectives(true, true)?
        } else {
            Using::default()
        };
        let mut statements = Vec::new();
        loop {
            if self.at_kw("apply") {
                self.pos += 1;
                self.expect_kw("batch")?;
                break;
            }
            let st = if self.at_kw("insert") {
                Statement::Insert(self.insert()?)
            } else if self.at_kw("update") {
                Statement::Update(self.update()?)
            } else if self.at_kw("delete") {
                Statement::Delete(self.delete()?)
            } else {
                return Err(self.no_viable("INSERT, UPDATE, DELETE or APPLY BATCH"));
            };
            statements.push(st);
            self.accept_punct(b';');
        }
        Ok(Batch {
            kind,
            using,
            statements,
        })
    }
}

/// 1-based line and 0-based character column of byte `offset` in `src`.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.as_bytes().get(..offset).unwrap_or(&[]);
    let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |p| p + 1);
    let col = src
        .get(line_start..offset)
        .map_or(offset - line_start, |s| s.chars().count());
    (line, col)
}

/// The content of a quoted token (`'...'` or `"..."`) with doubled quotes
/// turned into single ones.
fn unquote(s: &str, q: char) -> String {
    let inner = s.get(1..s.len().saturating_sub(1)).unwrap_or("");
    let (doubled, single) = if q == '"' {
        ("\"\"", "\"")
    } else {
        ("''", "'")
    };
    if inner.contains(doubled) {
        inner.replace(doubled, single)
    } else {
        inner.to_string()
    }
}

fn decode_hex(h: &str) -> Option<Vec<u8>> {
    let b = h.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    b.chunks_exact(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests;
