//! Just enough HTTP/1.1 for the admin API: one request per connection,
//! `Content-Length` bodies, bounded sizes. Parsing is incremental: callers
//! feed what they have read and get [`Parse::Incomplete`] until a whole
//! request is there.

use std::collections::BTreeMap;

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// A parsed admin request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// `GET`, `POST`, `DELETE`, ...
    pub method: String,
    /// The decoded path, without the query (`/storage_service/flush`).
    pub path: String,
    /// Decoded query parameters (`?cf=a,b&key=k`); last one wins.
    pub query: BTreeMap<String, String>,
    /// Values of `{name}` segments of the matched route.
    pub params: BTreeMap<String, String>,
    /// The body (usually empty).
    pub body: Vec<u8>,
}

impl Request {
    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A `{name}` path parameter of the matched route.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A comma-separated query parameter as a list (`cf=a,b` → `[a, b]`);
    /// empty when absent.
    pub fn query_list(&self, name: &str) -> Vec<String> {
        self.query(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Outcome of feeding bytes to [`parse`].
#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed.
    Incomplete,
    /// A whole request (the number of bytes it used).
    Done(Request, usize),
    /// The request is refused with this status and message.
    Error(u16, String),
}

/// Parses one request from the start of `buf`.
pub fn parse(buf: &[u8]) -> Parse {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Parse::Error(431, "request head too large".into());
        }
        return Parse::Incomplete;
    };
    if head_end > MAX_HEAD {
        return Parse::Error(431, "request head too large".into());
    }
    let Ok(head) = std::str::from_utf8(&buf[..head_end]) else {
        return Parse::Error(400, "request head is not UTF-8".into());
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parse::Error(400, format!("malformed request line '{request_line}'"));
    };
    if !version.starts_with("HTTP/1.") {
        return Parse::Error(505, format!("unsupported protocol '{version}'"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Parse::Error(400, format!("malformed method '{method}'"));
    }
    let mut content_length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parse::Error(400, format!("malformed header '{line}'"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) if n <= MAX_BODY => content_length = n,
                Ok(_) => return Parse::Error(413, "request body too large".into()),
                Err(_) => return Parse::Error(400, format!("bad Content-Length '{value}'")),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Parse::Error(501, "chunked request bodies are not supported".into());
        }
    }
    let body_start = head_end + 4;
    if buf.len() < body_start + content_length {
        return Parse::Incomplete;
    }
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let Some(path) = percent_decode(raw_path, false) else {
        return Parse::Error(400, format!("malformed path '{raw_path}'"));
    };
    let mut query = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match (percent_decode(k, true), percent_decode(v, true)) {
            (Some(k), Some(v)) => {
                query.insert(k, v);
            }
            _ => return Parse::Error(400, format!("malformed query parameter '{pair}'")),
        }
    }
    Parse::Done(
        Request {
            method: method.to_string(),
            path,
            query,
            params: BTreeMap::new(),
            body: buf[body_start..body_start + content_length].to_vec(),
        },
        body_start + content_length,
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes `%XX` escapes (and `+` as space in query strings).
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes everything but unreserved characters as `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Serialises a response (the connection is closed after it).
pub fn write_response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_incrementally() {
        let req = b"POST /storage_service/keyspace_flush/ks%201?cf=a,b&x=1+2 HTTP/1.1\r\n\
                    Host: h\r\nContent-Length: 3\r\n\r\nabcEXTRA";
        for cut in 0..req.len() - 8 {
            assert_eq!(parse(&req[..cut]), Parse::Incomplete, "cut {cut}");
        }
        match parse(req) {
            Parse::Done(r, used) => {
                assert_eq!(used, req.len() - 5);
                assert_eq!(r.method, "POST");
                assert_eq!(r.path, "/storage_service/keyspace_flush/ks 1");
                assert_eq!(r.query_list("cf"), vec!["a", "b"]);
                assert_eq!(r.query("x"), Some("1 2"));
                assert_eq!(r.body, b"abc");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_bad_requests() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET /\r\n\r\n", 400),
            (b"GET / HTTP/2\r\n\r\n", 505),
            (b"get / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nbad header\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
            (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                501,
            ),
            (b"GET /%zz HTTP/1.1\r\n\r\n", 400),
        ];
        for (req, status) in cases {
            match parse(req) {
                Parse::Error(s, _) => assert_eq!(s, *status, "{}", String::from_utf8_lossy(req)),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(req)),
            }
        }
        let huge = vec![b'a'; MAX_HEAD + 1];
        assert!(matches!(parse(&huge), Parse::Error(431, _)));
    }

    #[test]
    fn percent_round_trip() {
        let s = "ks/ä b&c=d";
        assert_eq!(percent_decode(&percent_encode(s), false).unwrap(), s);
    }
}
