//! The CQL lexer: turns statement text into [`Token`]s.
//!
//! It works on bytes, never allocates per token (a token is a kind and a
//! byte span into the source) and follows the token rules of Apache
//! Cassandra's `Lexer.g`: case-insensitive words, `"quoted"` names with `""`
//! escapes, `'strings'` with `''` escapes and `$$pg-style$$` strings,
//! integers and floats (with a leading `-` glued to the number), `NaN` /
//! `Infinity` (also `-NaN`, `-Infinity`), booleans, hex blobs (`0x...`),
//! UUIDs, durations (`1h30m`, `P1Y2M`, `PT1H`, `P2W`, `P0001-02-03T04:05:06`),
//! `?`, `..` and punctuation. Whitespace and comments (`--`, `//`, `/* */`)
//! are skipped. When two token rules match, the longer match wins; on a tie
//! the rule listed first in `Lexer.g` wins (so `P1D` is a duration, not an
//! identifier).
//!
//! Keywords are not distinguished from identifiers here: every unquoted word
//! is an [`TokenKind::Ident`] and the parser decides by comparing text
//! case-insensitively.

/// What kind of token a span of source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An unquoted word (`[A-Za-z][A-Za-z0-9_]*`): identifier or keyword.
    Ident,
    /// A `"quoted"` identifier; the span includes the quotes.
    QuotedIdent,
    /// A `'string'` literal; the span includes the quotes.
    String,
    /// A `$$pg-style$$` string literal; the span includes the dollars.
    PgString,
    /// An integer literal, possibly with a leading `-`.
    Integer,
    /// A float literal (`1.5`, `1e3`, `-2.`), or `NaN`, `Infinity`, `-NaN`,
    /// `-Infinity` (any case).
    Float,
    /// `true` or `false` (any case).
    Boolean,
    /// A duration literal (`1h30m`, `-3d`, `P1Y2M`, `PT1H`, `P2W`).
    Duration,
    /// A UUID literal.
    Uuid,
    /// A hex blob literal `0x...` (span includes the `0x`).
    Hex,
    /// `?`
    QMark,
    /// `..`
    Range,
    /// `<=`
    Lte,
    /// `>=`
    Gte,
    /// `!=`
    Neq,
    /// `+=`
    PlusEq,
    /// `-=`
    MinusEq,
    /// Any other single punctuation byte: `( ) [ ] { } , ; . = < > + - * : /`.
    Punct(u8),
    /// End of input (its span is empty, at the end of the source).
    Eof,
}

/// One token: its kind and the byte range of the source it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Token {
    /// The token's source text.
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.start..self.end).unwrap_or("")
    }
}

/// A lexical error: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// ANTLR-style description, e.g. `token recognition error at: '#'`.
    pub message: String,
}

/// Splits `src` into tokens; the last token is always [`TokenKind::Eof`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, LexError> {
    let b = src.as_bytes();
    // A rough guess that avoids most re-allocations: about one token per 5 bytes.
    let mut toks = Vec::with_capacity(b.len() / 5 + 2);
    let mut i = 0;
    let n = b.len();
    while i < n {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
            }
            b'-' if i + 1 < n && b[i + 1] == b'-' => i = skip_line(b, i + 2),
            b'/' if i + 1 < n && b[i + 1] == b'/' => i = skip_line(b, i + 2),
            b'/' if i + 1 < n && b[i + 1] == b'*' => {
                let mut j = i + 2;
                loop {
                    if j + 1 >= n {
                        return Err(LexError {
                            offset: n,
                            message: "mismatched character '<EOF>' expecting '*/'".into(),
                        });
                    }
                    if b[j] == b'*' && b[j + 1] == b'/' {
                        break;
                    }
                    j += 1;
                }
                i = j + 2;
            }
            b'\'' => {
                let end = scan_quoted(b, i, b'\'')?;
                toks.push(tok(TokenKind::String, i, end));
                i = end;
            }
            b'"' => {
                let end = scan_quoted(b, i, b'"')?;
                toks.push(tok(TokenKind::QuotedIdent, i, end));
                i = end;
            }
            b'$' if i + 1 < n && b[i + 1] == b'$' => {
                let mut j = i + 2;
                loop {
                    if j + 1 >= n {
                        return Err(LexError {
                            offset: n,
                            message: "mismatched character '<EOF>' expecting '$$'".into(),
                        });
                    }
                    if b[j] == b'$' && b[j + 1] == b'$' {
                        break;
                    }
                    j += 1;
                }
                toks.push(tok(TokenKind::PgString, i, j + 2));
                i = j + 2;
            }
            b'0'..=b'9' => {
                let (kind, end) = scan_number_like(b, i);
                toks.push(tok(kind, i, end));
                i = end;
            }
            b'-' => {
                if i + 1 < n && b[i + 1].is_ascii_digit() {
                    let (kind, end) = scan_number_like(b, i);
                    toks.push(tok(kind, i, end));
                    i = end;
                } else if i + 1 < n && b[i + 1] == b'P' {
                    match scan_iso_duration(b, i + 1) {
                        Some(end) => {
                            toks.push(tok(TokenKind::Duration, i, end));
                            i = end;
                        }
                        None => {
                            toks.push(tok(TokenKind::Punct(b'-'), i, i + 1));
                            i += 1;
                        }
                    }
                } else if i + 1 < n && b[i + 1].is_ascii_alphabetic() {
                    let end = scan_word(b, i + 1);
                    let w = &b[i + 1..end];
                    if w.eq_ignore_ascii_case(b"nan") || w.eq_ignore_ascii_case(b"infinity") {
                        toks.push(tok(TokenKind::Float, i, end));
                        i = end;
                    } else {
                        toks.push(tok(TokenKind::Punct(b'-'), i, i + 1));
                        i += 1;
                    }
                } else if i + 1 < n && b[i + 1] == b'=' {
                    toks.push(tok(TokenKind::MinusEq, i, i + 2));
                    i += 2;
                } else {
                    toks.push(tok(TokenKind::Punct(b'-'), i, i + 1));
                    i += 1;
                }
            }
            b'A'..=b'Z' | b'a'..=b'z' => {
                let word_end = scan_word(b, i);
                let mut kind = TokenKind::Ident;
                let mut end = word_end;
                if c.is_ascii_hexdigit() {
                    if let Some(u) = scan_uuid(b, i) {
                        if u > end {
                            kind = TokenKind::Uuid;
                            end = u;
                        }
                    }
                }
                if c == b'P' && kind == TokenKind::Ident {
                    if let Some(d) = scan_iso_duration(b, i) {
                        // A tie goes to DURATION, listed before IDENT.
                        if d >= end {
                            kind = TokenKind::Duration;
                            end = d;
                        }
                    }
                }
                if kind == TokenKind::Ident {
                    let w = &b[i..end];
                    if w.eq_ignore_ascii_case(b"true") || w.eq_ignore_ascii_case(b"false") {
                        kind = TokenKind::Boolean;
                    } else if w.eq_ignore_ascii_case(b"nan") || w.eq_ignore_ascii_case(b"infinity")
                    {
                        kind = TokenKind::Float;
                    }
                }
                toks.push(tok(kind, i, end));
                i = end;
            }
            b'?' => {
                toks.push(tok(TokenKind::QMark, i, i + 1));
                i += 1;
            }
            b'.' => {
                if i + 1 < n && b[i + 1] == b'.' {
                    toks.push(tok(TokenKind::Range, i, i + 2));
                    i += 2;
                } else {
                    toks.push(tok(TokenKind::Punct(b'.'), i, i + 1));
                    i += 1;
                }
            }
            b'<' | b'>' | b'!' | b'+' => {
                let two = i + 1 < n && b[i + 1] == b'=';
                let kind = match (c, two) {
                    (b'<', true) => TokenKind::Lte,
                    (b'>', true) => TokenKind::Gte,
                    (b'!', true) => TokenKind::Neq,
                    (b'+', true) => TokenKind::PlusEq,
                    (b'!', false) => return Err(recognition_error(src, i)),
                    _ => TokenKind::Punct(c),
                };
                let len = if two { 2 } else { 1 };
                toks.push(tok(kind, i, i + len));
                i += len;
            }
            b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' | b';' | b'=' | b'*' | b':' | b'/'
            | b'%' => {
                toks.push(tok(TokenKind::Punct(c), i, i + 1));
                i += 1;
            }
            _ => return Err(recognition_error(src, i)),
        }
    }
    toks.push(tok(TokenKind::Eof, n, n));
    Ok(toks)
}

#[inline]
fn tok(kind: TokenKind, start: usize, end: usize) -> Token {
    Token { kind, start, end }
}

fn recognition_error(src: &str, i: usize) -> LexError {
    let ch = src.get(i..).and_then(|s| s.chars().next()).unwrap_or('?');
    LexError {
        offset: i,
        message: format!("token recognition error at: '{ch}'"),
    }
}

/// Skips to just past the end of the line (or to the end of input).
fn skip_line(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        if b[i] == b'\n' || b[i] == b'\r' {
            return i + 1;
        }
        i += 1;
    }
    i
}

/// Scans a quoted token starting at `start` (the opening quote `q`), where a
/// doubled quote is an escaped quote. Returns the offset past the closing quote.
fn scan_quoted(b: &[u8], start: usize, q: u8) -> Result<usize, LexError> {
    let mut j = start + 1;
    while j < b.len() {
        if b[j] == q {
            if j + 1 < b.len() && b[j + 1] == q {
                j += 2;
                continue;
            }
            return Ok(j + 1);
        }
        j += 1;
    }
    Err(LexError {
        offset: b.len(),
        message: format!("mismatched character '<EOF>' expecting '{}'", q as char),
    })
}

/// End of `[A-Za-z0-9_]*` starting at `i`.
#[inline]
fn scan_word(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    i
}

#[inline]
fn digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// A UUID at `i` (8-4-4-4-12 hex digits): returns its end.
fn scan_uuid(b: &[u8], i: usize) -> Option<usize> {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let mut j = i;
    for (g, len) in GROUPS.iter().enumerate() {
        if g > 0 {
            if j >= b.len() || b[j] != b'-' {
                return None;
            }
            j += 1;
        }
        for _ in 0..*len {
            if j >= b.len() || !b[j].is_ascii_hexdigit() {
                return None;
            }
            j += 1;
        }
    }
    Some(j)
}

/// One duration unit at `i` (case-insensitive: `y mo w d h m s ms us µs ns`),
/// returning its end; the longest unit wins (`ms` over `m`).
fn scan_duration_unit(b: &[u8], i: usize) -> Option<usize> {
    let c0 = b.get(i).map(|c| c.to_ascii_lowercase())?;
    let c1 = b.get(i + 1).map(|c| c.to_ascii_lowercase());
    match (c0, c1) {
        (b'm', Some(b'o')) | (b'm', Some(b's')) | (b'u', Some(b's')) | (b'n', Some(b's')) => {
            Some(i + 2)
        }
        (0xC2, _)
            if b.get(i + 1) == Some(&0xB5) && b.get(i + 2).map(|c| c | 0x20) == Some(b's') =>
        {
            Some(i + 3)
        }
        (b'y' | b'w' | b'd' | b'h' | b'm' | b's', _) => Some(i + 1),
        _ => None,
    }
}

/// `DIGIT+ UNIT (DIGIT+ UNIT)*` from `i` (digits first): the end, if at least
/// one digits+unit pair matched.
fn scan_unit_duration(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    let mut matched = None;
    loop {
        let d = digits(b, j);
        if d == j {
            break;
        }
        match scan_duration_unit(b, d) {
            Some(u) => {
                j = u;
                matched = Some(u);
            }
            None => break,
        }
    }
    matched
}

/// An ISO 8601 duration whose `P` is at `i`: `P[nY][nM][nD][T[nH][nM][nS]]`
/// (at least one part, in order), `PnW`, or `PYYYY-MM-DDThh:mm:ss`.
/// Designators are upper case only. Returns the end.
fn scan_iso_duration(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'P') {
        return None;
    }
    let start = i + 1;
    // Alternative format.
    let alt = |j: usize| -> Option<usize> {
        let pat = b"dddd-dd-ddTdd:dd:dd";
        for (k, p) in pat.iter().enumerate() {
            let c = *b.get(j + k)?;
            let ok = if *p == b'd' {
                c.is_ascii_digit()
            } else {
                c == *p
            };
            if !ok {
                return None;
            }
        }
        Some(j + pat.len())
    };
    if let Some(e) = alt(start) {
        return Some(e);
    }
    // Week form.
    let d = digits(b, start);
    if d > start && b.get(d) == Some(&b'W') {
        return Some(d + 1);
    }
    // Date part then optional time part.
    let mut j = start;
    let mut any = false;
    for designator in [b'Y', b'M', b'D'] {
        let d = digits(b, j);
        if d > j && b.get(d) == Some(&designator) {
            j = d + 1;
            any = true;
        }
    }
    if b.get(j) == Some(&b'T') {
        let mut k = j + 1;
        let mut any_time = false;
        for designator in [b'H', b'M', b'S'] {
            let d = digits(b, k);
            if d > k && b.get(d) == Some(&designator) {
                k = d + 1;
                any_time = true;
            }
        }
        if any_time {
            return Some(k);
        }
    }
    if any {
        Some(j)
    } else {
        None
    }
}

/// A token that starts with a digit, or with `-` followed by a digit:
/// integer, float, duration, hex blob or UUID. Longest match wins.
fn scan_number_like(b: &[u8], i: usize) -> (TokenKind, usize) {
    let neg = b[i] == b'-';
    let ds = if neg { i + 1 } else { i };
    let int_end = digits(b, ds);
    // Integer / float.
    let mut kind = TokenKind::Integer;
    let mut end = int_end;
    if b.get(int_end) == Some(&b'.') && b.get(int_end + 1) != Some(&b'.') {
        end = digits(b, int_end + 1);
        kind = TokenKind::Float;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut k = end + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let e = digits(b, k);
        if e > k {
            end = e;
            kind = TokenKind::Float;
        }
    }
    if let Some(d) = scan_unit_duration(b, ds) {
        if d > end {
            kind = TokenKind::Duration;
            end = d;
        }
    }
    if !neg {
        if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            let mut h = i + 2;
            while h < b.len() && b[h].is_ascii_hexdigit() {
                h += 1;
            }
            if h > end {
                kind = TokenKind::Hex;
                end = h;
            }
        }
        if let Some(u) = scan_uuid(b, i) {
            if u > end {
                kind = TokenKind::Uuid;
                end = u;
            }
        }
    }
    (kind, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(TokenKind, &str)> {
        tokenize(s)
            .unwrap()
            .into_iter()
            .map(|t| (t.kind, t.text(s)))
            .collect()
    }

    #[test]
    fn numbers_and_durations() {
        use TokenKind::*;
        assert_eq!(
            kinds("1 -2 1.5 1e3 -2.5E-2 1h30m 12mo3d 2000ms -3d 0xCAFE 0x"),
            vec![
                (Integer, "1"),
                (Integer, "-2"),
                (Float, "1.5"),
                (Float, "1e3"),
                (Float, "-2.5E-2"),
                (Duration, "1h30m"),
                (Duration, "12mo3d"),
                (Duration, "2000ms"),
                (Duration, "-3d"),
                (Hex, "0xCAFE"),
                (Hex, "0x"),
                (Eof, ""),
            ]
        );
        assert_eq!(
            kinds("P1Y2M PT1H P2W -P1D P0001-02-03T04:05:06 P1 p1y P1Dx 1µs"),
            vec![
                (Duration, "P1Y2M"),
                (Duration, "PT1H"),
                (Duration, "P2W"),
                (Duration, "-P1D"),
                (Duration, "P0001-02-03T04:05:06"),
                (Ident, "P1"),
                (Ident, "p1y"),
                (Ident, "P1Dx"),
                (Duration, "1µs"),
                (Eof, ""),
            ]
        );
    }

    #[test]
    fn uuids_words_and_symbols() {
        use TokenKind::*;
        assert_eq!(
            kinds("123e4567-e89b-12d3-a456-426655440000 abcdef01-e89b-12d3-a456-426655440000 a.b NaN -Infinity TRUE"),
            vec![
                (Uuid, "123e4567-e89b-12d3-a456-426655440000"),
                (Uuid, "abcdef01-e89b-12d3-a456-426655440000"),
                (Ident, "a"),
                (Punct(b'.'), "."),
                (Ident, "b"),
                (Float, "NaN"),
                (Float, "-Infinity"),
                (Boolean, "TRUE"),
                (Eof, ""),
            ]
        );
        assert_eq!(
            kinds("a<=b!=c>=d+=e-=f 1..2"),
            vec![
                (Ident, "a"),
                (Lte, "<="),
                (Ident, "b"),
                (Neq, "!="),
                (Ident, "c"),
                (Gte, ">="),
                (Ident, "d"),
                (PlusEq, "+="),
                (Ident, "e"),
                (MinusEq, "-="),
                (Ident, "f"),
                (Integer, "1"),
                (Range, ".."),
                (Integer, "2"),
                (Eof, ""),
            ]
        );
    }

    #[test]
    fn strings_comments_errors() {
        use TokenKind::*;
        assert_eq!(
            kinds("'it''s' $$a'b$$ \"Q\"\"x\" -- c\n/* x */ // y"),
            vec![
                (String, "'it''s'"),
                (PgString, "$$a'b$$"),
                (QuotedIdent, "\"Q\"\"x\""),
                (Eof, ""),
            ]
        );
        assert!(tokenize("'abc").is_err());
        assert!(tokenize("/* abc").is_err());
        assert!(tokenize("$$abc").is_err());
        assert_eq!(
            tokenize("a # b").unwrap_err(),
            LexError {
                offset: 2,
                message: "token recognition error at: '#'".into()
            }
        );
    }
}
