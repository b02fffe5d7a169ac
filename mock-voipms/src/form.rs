//! Request parameters: query strings and `application/x-www-form-urlencoded` bodies,
//! `multipart/form-data` bodies (text parts), `Content-Type` parameters, and percent-encoding.
//!
//! Parsing follows PHP's `$_GET`/`$_POST` as far as VoIP.ms clients can tell: `&` separates
//! pairs, `+` is a space, a repeated name keeps the last value, malformed escapes stay literal,
//! and multipart file parts (those with a `filename`) are not form fields.

/// Most parts accepted in one multipart body; more are ignored (bounds the work per request).
const MAX_PARTS: usize = 1000;

/// Percent-decode `s` (`+` → space when `plus_is_space`); invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => match (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-encode everything except the RFC 3986 unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parse `a=1&b=2` (a query string or a urlencoded body) into pairs, in order.
pub(crate) fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(pair, true), String::new()),
        })
        .collect()
}

/// A parsed `Content-Type` header: lower-case essence and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub fn parse(header: &str) -> ContentType {
        let mut parts = split_params(header);
        let essence = if parts.is_empty() { String::new() } else { parts.remove(0).trim().to_ascii_lowercase() };
        let params = parts
            .iter()
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k.trim().to_ascii_lowercase(), unquote(v.trim())))
            })
            .collect();
        ContentType { essence, params }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Split a header value at `;` outside double quotes.
fn split_params(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// Parse a `multipart/form-data` body with `boundary`; returns the text fields in order.
/// Malformed input yields the fields parsed before the damage (never an error: PHP would simply
/// see fewer fields).
pub(crate) fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    if boundary.is_empty() || boundary.len() > 200 {
        return fields;
    }
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    // The first delimiter may follow a preamble.
    let Some(first) = find(body, delim, 0) else {
        return fields;
    };
    let mut pos = first + delim.len();
    for _ in 0..MAX_PARTS {
        if body[pos..].starts_with(b"--") {
            break; // close delimiter
        }
        // Transport padding, then the line break after the delimiter.
        while let Some(b' ' | b'\t') = body.get(pos) {
            pos += 1;
        }
        if body[pos..].starts_with(b"\r\n") {
            pos += 2;
        } else if body[pos..].starts_with(b"\n") {
            pos += 1;
        } else {
            break;
        }
        // Headers end at the first empty line (which may come at once: no headers).
        let (head_end, content_start) = if body[pos..].starts_with(b"\r\n") {
            (pos, pos + 2)
        } else if body[pos..].starts_with(b"\n") {
            (pos, pos + 1)
        } else {
            match (find(body, b"\r\n\r\n", pos), find(body, b"\n\n", pos)) {
                (Some(a), Some(b)) if b < a => (b, b + 2),
                (Some(a), _) => (a, a + 4),
                (None, Some(b)) => (b, b + 2),
                (None, None) => break,
            }
        };
        let head = String::from_utf8_lossy(&body[pos..head_end]).into_owned();
        // The content runs up to the line break before the next delimiter.
        let mut search = content_start;
        let (content_end, next) = loop {
            let Some(d) = find(body, delim, search) else {
                return fields;
            };
            if d >= content_start + 2 && &body[d - 2..d] == b"\r\n" {
                break (d - 2, d + delim.len());
            }
            if d > content_start && body[d - 1] == b'\n' {
                break (d - 1, d + delim.len());
            }
            if d == content_start {
                break (d, d + delim.len());
            }
            search = d + 1;
        };
        let mut name = None;
        let mut is_file = false;
        for line in head.lines() {
            let Some((hname, hval)) = line.split_once(':') else {
                continue;
            };
            if hname.trim().eq_ignore_ascii_case("content-disposition") {
                let cd = ContentType::parse(hval);
                if cd.essence == "form-data" {
                    name = cd.param("name").map(str::to_string);
                    is_file = cd.param("filename").is_some();
                }
            }
        }
        if let (Some(name), false) = (name, is_file) {
            let value = String::from_utf8_lossy(&body[content_start..content_end]).into_owned();
            fields.push((name, value));
        }
        pos = next;
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_like_php() {
        let p = parse_urlencoded("a=1&b=h%C3%A8llo+w&c&&d=%zz&a=2");
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "hèllo w".into()),
                ("c".into(), "".into()),
                ("d".into(), "%zz".into()),
                ("a".into(), "2".into()),
            ]
        );
        assert_eq!(percent_decode("%4", false), "%4");
        assert_eq!(percent_decode("a+b%2B", false), "a+b+");
    }

    #[test]
    fn encode_round_trip() {
        let s = "2025-07-20 16:24:16 è&=?/+";
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(percent_decode(&percent_encode(s), false), s);
    }

    #[test]
    fn content_type_params() {
        let ct = ContentType::parse("multipart/form-data; boundary=\"a;b\\\"c\"; charset=UTF-8");
        assert_eq!(ct.essence, "multipart/form-data");
        assert_eq!(ct.param("boundary"), Some("a;b\"c"));
        assert_eq!(ct.param("charset"), Some("UTF-8"));
        let ct = ContentType::parse("Application/X-WWW-Form-Urlencoded");
        assert_eq!(ct.essence, "application/x-www-form-urlencoded");
    }

    #[test]
    fn multipart_text_fields() {
        let body = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\nsendSMS\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"message\"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline1\r\nline2 è\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nBINARY\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n\
                    --XyZ--\r\n";
        let f = parse_multipart(body.as_bytes(), "XyZ");
        assert_eq!(
            f,
            vec![
                ("method".into(), "sendSMS".into()),
                ("message".into(), "line1\r\nline2 è".into()),
                ("empty".into(), "".into()),
            ]
        );
    }

    #[test]
    fn multipart_garbage_is_harmless() {
        for body in [
            "",
            "--b",
            "--b\r\n",
            "--b\r\nContent-Disposition: form-data; name=x\r\n\r\nunterminated",
            "--b--",
            "--bx\r\n\r\n",
        ] {
            let _ = parse_multipart(body.as_bytes(), "b");
        }
        let f = parse_multipart(b"--b\nContent-Disposition: form-data; name=x\n\nv\n--b--", "b");
        assert_eq!(f, vec![("x".into(), "v".into())]);
    }
}
