//! Writing JSON by hand, safely: string escaping and a small object builder.

use std::fmt::Display;

/// `s` as a JSON string literal, quotes included.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON array of already-serialised values.
pub fn array<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(item.as_ref());
    }
    out.push(']');
    out
}

/// Builds a JSON object field by field:
/// `Object::new().str("name", "x").num("load", 12).build()`.
#[derive(Debug, Default, Clone)]
pub struct Object {
    buf: String,
}

impl Object {
    /// An empty object.
    pub fn new() -> Object {
        Object::default()
    }

    /// Adds a field whose value is already JSON.
    pub fn raw(mut self, key: &str, value: &str) -> Object {
        self.buf
            .push_str(if self.buf.is_empty() { "{" } else { ", " });
        self.buf.push_str(&string(key));
        self.buf.push_str(": ");
        self.buf.push_str(value);
        self
    }

    /// Adds a string field.
    pub fn str(self, key: &str, value: &str) -> Object {
        let v = string(value);
        self.raw(key, &v)
    }

    /// Adds a number field (integers, or finite floats).
    pub fn num<N: Display>(self, key: &str, value: N) -> Object {
        let v = value.to_string();
        let v = if v.parse::<f64>().is_ok_and(f64::is_finite) {
            v
        } else {
            "null".to_string()
        };
        self.raw(key, &v)
    }

    /// Adds a boolean field.
    pub fn bool(self, key: &str, value: bool) -> Object {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// The object's JSON text.
    pub fn build(self) -> String {
        if self.buf.is_empty() {
            "{}".to_string()
        } else {
            self.buf + "}"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_builds_valid_json() {
        let text = Object::new()
            .str("name", "a \"q\" \\ \n\u{1}é")
            .num("n", 12)
            .num("nan", f64::NAN)
            .bool("up", true)
            .raw("list", &array([string("x"), "1".into()]))
            .build();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["name"], "a \"q\" \\ \n\u{1}é");
        assert_eq!(v["n"], 12);
        assert!(v["nan"].is_null());
        assert_eq!(v["up"], true);
        assert_eq!(v["list"][0], "x");
        assert_eq!(Object::new().build(), "{}");
        assert_eq!(array(Vec::<String>::new()), "[]");
    }
}
