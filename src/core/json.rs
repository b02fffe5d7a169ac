//! A small JSON value tree on nanoserde's tokenizer, and a writer.
//!
//! Derived `DeJson` skips unknown keys and stops at the first type error; the config needs every
//! unknown key named and every problem reported at once, and VoIP.ms sends numbers both as JSON
//! numbers and as strings (voipms.md §3). So config, webhook bodies and API responses are first
//! read into a [`Value`] and then mapped by hand. Input size is bounded by the caller; nesting is
//! bounded here so that hostile input cannot exhaust the stack.

use nanoserde::{DeJsonState, DeJsonTok};
use std::fmt;
use std::str::Chars;

/// Deepest nesting accepted. Our documents nest four levels; 32 leaves room and no stack risk.
pub const MAX_DEPTH: usize = 32;

/// A parsed JSON value. Objects keep their keys in document order (duplicates kept, first wins
/// on lookup), so that error messages can follow the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A non-negative integer.
    UInt(u64),
    /// A negative integer.
    Int(i64),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Vec<(String, Value)>),
}

/// Why a document is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column of the problem.
    pub column: usize,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} column {}: {}", self.line, self.column, self.reason)
    }
}

impl std::error::Error for JsonError {}

/// Parse a complete JSON document.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    check_no_comments(text)?;
    if text.contains('\0') {
        // nanoserde's tokenizer treats NUL as the end of input.
        return Err(JsonError { line: 1, column: 1, reason: "NUL byte in document".into() });
    }
    let mut state = DeJsonState::default();
    let mut chars = text.chars();
    state.next(&mut chars);
    state.next_tok(&mut chars).map_err(|e| from_nanoserde(&state, e))?;
    let value = parse_value(&mut state, &mut chars, 0)?;
    if state.tok != DeJsonTok::Eof {
        return Err(error(&state, "trailing characters after the document"));
    }
    Ok(value)
}

/// nanoserde's tokenizer accepts `//` and `/* */` comments (not JSON) and recurses once per
/// comment, so a body of many comments could exhaust the stack. A `/` outside a string is
/// refused before tokenizing.
fn check_no_comments(text: &str) -> Result<(), JsonError> {
    let (mut in_string, mut escaped) = (false, false);
    let (mut line, mut column) = (1, 0);
    for c in text.chars() {
        column += 1;
        if c == '\n' {
            line += 1;
            column = 0;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '/' {
            return Err(JsonError { line, column, reason: "comments are not JSON".into() });
        }
    }
    Ok(())
}

fn error(state: &DeJsonState, reason: &str) -> JsonError {
    JsonError { line: state.line + 1, column: state.col + 1, reason: reason.to_string() }
}

fn from_nanoserde(state: &DeJsonState, _e: nanoserde::DeJsonErr) -> JsonError {
    error(state, "not valid JSON")
}

fn advance(state: &mut DeJsonState, chars: &mut Chars<'_>) -> Result<(), JsonError> {
    state.next_tok(chars).map_err(|e| from_nanoserde(state, e))
}

fn parse_value(state: &mut DeJsonState, chars: &mut Chars<'_>, depth: usize) -> Result<Value, JsonError> {
    if depth > MAX_DEPTH {
        return Err(error(state, "nested too deeply"));
    }
    let value = match state.tok.clone() {
        DeJsonTok::Null => Value::Null,
        DeJsonTok::Bool(b) => Value::Bool(b),
        DeJsonTok::U64(n) => Value::UInt(n),
        DeJsonTok::I64(n) => Value::Int(n),
        DeJsonTok::F64(n) => Value::Float(n),
        DeJsonTok::Str => Value::String(std::mem::take(&mut state.strbuf)),
        DeJsonTok::BlockOpen => {
            advance(state, chars)?;
            let mut items = Vec::new();
            if state.tok != DeJsonTok::BlockClose {
                loop {
                    items.push(parse_value(state, chars, depth + 1)?);
                    match state.tok {
                        DeJsonTok::Comma => advance(state, chars)?,
                        DeJsonTok::BlockClose => break,
                        _ => return Err(error(state, "expected ',' or ']'")),
                    }
                }
            }
            Value::Array(items)
        }
        DeJsonTok::CurlyOpen => {
            advance(state, chars)?;
            let mut members = Vec::new();
            if state.tok != DeJsonTok::CurlyClose {
                loop {
                    if state.tok != DeJsonTok::Str {
                        return Err(error(state, "expected a string key"));
                    }
                    let key = std::mem::take(&mut state.strbuf);
                    advance(state, chars)?;
                    if state.tok != DeJsonTok::Colon {
                        return Err(error(state, "expected ':'"));
                    }
                    advance(state, chars)?;
                    let value = parse_value(state, chars, depth + 1)?;
                    members.push((key, value));
                    match state.tok {
                        DeJsonTok::Comma => advance(state, chars)?,
                        DeJsonTok::CurlyClose => break,
                        _ => return Err(error(state, "expected ',' or '}'")),
                    }
                }
            }
            Value::Object(members)
        }
        _ => return Err(error(state, "expected a value")),
    };
    advance(state, chars)?;
    Ok(value)
}

impl Value {
    /// The member `key` of an object (the first one if the key is repeated).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A string or a number rendered as text: VoIP.ms sends ids and numbers either way.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::UInt(n) => Some(n.to_string()),
            Value::Int(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    /// A short name of the type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::UInt(_) | Value::Int(_) | Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// Serialise as compact JSON.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::UInt(n) => out.push_str(&n.to_string()),
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::Float(n) if n.is_finite() => out.push_str(&format!("{n:?}")),
            Value::Float(_) => out.push_str("null"),
            Value::String(s) => write_string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, key);
                    out.push(':');
                    value.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

/// Append `s` as a JSON string literal.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_documents_in_order() {
        let v = parse(r#"{"b": [1, -2, 3.5, "x", true, null], "a": {"c": "d"}}"#).unwrap();
        let members = v.as_object().unwrap();
        assert_eq!(members[0].0, "b");
        assert_eq!(members[1].0, "a");
        assert_eq!(
            v.get("b").unwrap(),
            &Value::Array(vec![
                Value::UInt(1),
                Value::Int(-2),
                Value::Float(3.5),
                Value::String("x".into()),
                Value::Bool(true),
                Value::Null
            ])
        );
        assert_eq!(v.get("a").and_then(|a| a.get("c")).and_then(Value::as_str), Some("d"));
    }

    #[test]
    fn numbers_and_strings_both_read_as_text() {
        let v = parse(r#"{"sms": 23434, "id": "78081872"}"#).unwrap();
        assert_eq!(v.get("sms").unwrap().as_text().as_deref(), Some("23434"));
        assert_eq!(v.get("id").unwrap().as_text().as_deref(), Some("78081872"));
    }

    #[test]
    fn rejects_bad_documents_with_a_position() {
        assert_eq!(parse("{\"a\": \"x/y\" }").unwrap().get("a").and_then(Value::as_str), Some("x/y"));
        assert_eq!(parse(&"//\n".repeat(30_000)).unwrap_err().reason, "comments are not JSON");
        for bad in [
            "",
            "{",
            "{\"a\" 1}",
            "/* c */ {}",
            "{\"a\":1} // c",
            "[1,]",
            "{\"a\":1}x",
            "[1 2]",
            "nul",
            "{\"a\":1,}",
            "\"\0\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
        let e = parse("{\n  \"a\": ?\n}").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn bounds_nesting_depth() {
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(parse(&deep).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn unicode_escapes_and_round_trip() {
        let v = parse(r#"["\u00e8\ud83d\ude00\n\"\\", "\u0001"]"#).unwrap();
        assert_eq!(v.as_array().unwrap()[0].as_str(), Some("è😀\n\"\\"));
        let again = parse(&v.to_json()).unwrap();
        assert_eq!(again, v);
    }
}
