//! The request head check in front of async-h1 (RFC 9112 §2–§6, RFC 9110 §8.6, §10.1.1).
//!
//! async-h1 and http-types are unmaintained and panic or hang on some heads (non-ASCII header
//! values, chunked trailers), and they accept framing that is request smuggling behind a proxy
//! (two `Content-Length`s). So every request head is read and judged here first, strictly, and
//! async-h1 is handed a *rebuilt* head: the request line, a fixed `Host`, one canonical
//! `Content-Length` and `Connection: close` when asked. Nothing a client wrote in a header
//! reaches async-h1. A head that fails gets an answer from [`Reject`] and the connection ends.
//!
//! What is refused: anything but `HTTP/1.1` (505), a method that is not a token (400) or not a
//! known one (501), a target that is not origin-form such as `*` or `http://…` (400), bytes that
//! are not visible ASCII, space or tab (400), bare CR or LF line ends, obs-fold and whitespace
//! before a colon (400), a missing or repeated `Host` (400), more than one `Content-Length` or a
//! malformed one (400), a body over the cap (413), `Transfer-Encoding` (411 alone, 400 with
//! `Content-Length`: VoIP.ms sends `Content-Length`), a `POST` with no length (411), an
//! `Expect` other than `100-continue` (417), too many or too long header lines (431).
//! Pure functions: no I/O.

/// The longest head accepted, request line and headers with the blank line. async-h1 refuses
/// 8 KiB and more; VoIP.ms's heads are a few hundred bytes.
pub const MAX_HEAD_BYTES: usize = 8000;
/// Header lines accepted (async-h1 refuses more than 128).
pub const MAX_HEADERS: usize = 64;

/// Why a head is refused: the status and a short reason for the answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// The HTTP status code.
    pub status: u16,
    /// Plain words for the client (no echo of what it sent).
    pub reason: &'static str,
}

impl Reject {
    const fn new(status: u16, reason: &'static str) -> Reject {
        Reject { status, reason }
    }

    /// The reason phrase of [`Reject::status`].
    pub fn phrase(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            411 => "Length Required",
            413 => "Content Too Large",
            417 => "Expectation Failed",
            431 => "Request Header Fields Too Large",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            503 => "Service Unavailable",
            _ => "Error",
        }
    }

    /// The whole answer: status line, headers, body; the connection closes after it.
    pub fn response(&self) -> Vec<u8> {
        let body = format!("{}\n", self.reason);
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.status,
            self.phrase(),
            body.len()
        )
        .into_bytes()
    }
}

/// A head that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The head async-h1 is given (see the module documentation).
    pub rebuilt: Vec<u8>,
    /// Bytes of body that follow the head.
    pub content_length: usize,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
}

/// Methods RFC 9110 §9 defines; other tokens get 501.
const METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/// The end of the head (the index just past the blank line), if `buf` holds one. Empty lines
/// before the request line are part of the head (RFC 9112 §2.2 says to ignore them).
pub fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Field values: visible ASCII, space and tab (no obs-text: http-types panics on it).
fn is_field_value(s: &[u8]) -> bool {
    s.iter().all(|&b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

/// Judge a complete head (`head` ends with the blank line), allowing bodies up to `max_body`.
pub fn check(head: &[u8], max_body: usize) -> Result<Head, Reject> {
    const BAD: Reject = Reject::new(400, "malformed request");
    if head.len() > MAX_HEAD_BYTES {
        return Err(Reject::new(431, "request head too large"));
    }
    let body = head.strip_suffix(b"\r\n\r\n").ok_or(BAD)?;
    let mut body = body;
    while let Some(rest) = body.strip_prefix(b"\r\n") {
        body = rest;
    }
    // Split on CRLF; a CR or LF anywhere else is a bare line end.
    let mut lines = Vec::new();
    let mut rest = body;
    loop {
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                lines.push(rest.get(..i).unwrap_or_default());
                rest = rest.get(i + 2..).unwrap_or_default();
            }
            None => {
                lines.push(rest);
                break;
            }
        }
    }
    if lines.iter().any(|l| l.contains(&b'\r') || l.contains(&b'\n')) {
        return Err(Reject::new(400, "bare CR or LF in the request head"));
    }
    let (request_line, fields) = lines.split_first().ok_or(BAD)?;
    if fields.len() > MAX_HEADERS {
        return Err(Reject::new(431, "too many header fields"));
    }

    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::new(400, "malformed request line"));
    };
    if !is_token(method) {
        return Err(Reject::new(400, "malformed method"));
    }
    let method = std::str::from_utf8(method).map_err(|_| BAD)?;
    if !METHODS.contains(&method) {
        return Err(Reject::new(501, "method not implemented"));
    }
    if !target.starts_with(b"/") || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(Reject::new(400, "the request target must be a path"));
    }
    match version {
        b"HTTP/1.1" => {}
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            return Err(Reject::new(505, "only HTTP/1.1 is served"));
        }
        _ => return Err(Reject::new(400, "malformed HTTP version")),
    }

    let mut host = 0;
    let mut length: Option<usize> = None;
    let mut lengths = 0;
    let mut chunked = false;
    let mut close = false;
    let mut expect_continue = false;
    for field in fields {
        let colon = field.iter().position(|&b| b == b':').ok_or(Reject::new(400, "header line without a colon"))?;
        let (name, value) = (field.get(..colon).unwrap_or_default(), field.get(colon + 1..).unwrap_or_default());
        // A name that is not a token covers obs-fold (a leading space) and space before the colon.
        if !is_token(name) {
            return Err(Reject::new(400, "malformed header name"));
        }
        if !is_field_value(value) {
            return Err(Reject::new(400, "header values must be ASCII"));
        }
        let value = trim(value);
        let name = std::str::from_utf8(name).map_err(|_| BAD)?;
        if name.eq_ignore_ascii_case("host") {
            host += 1;
            if value.is_empty() || value.contains(&b' ') || value.contains(&b'\t') {
                return Err(Reject::new(400, "malformed Host"));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                return Err(Reject::new(400, "malformed Content-Length"));
            }
            let n: u64 = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()).ok_or(BAD)?;
            length = Some(usize::try_from(n).unwrap_or(usize::MAX));
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            close |= value.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(b"close"));
        } else if name.eq_ignore_ascii_case("expect") {
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(Reject::new(417, "only Expect: 100-continue is understood"));
            }
            expect_continue = true;
        }
    }
    if host != 1 {
        return Err(Reject::new(400, "exactly one Host header is required"));
    }
    if lengths > 1 {
        return Err(Reject::new(400, "more than one Content-Length"));
    }
    if chunked && length.is_some() {
        return Err(Reject::new(400, "both Transfer-Encoding and Content-Length"));
    }
    if chunked {
        return Err(Reject::new(411, "Transfer-Encoding is not accepted; send Content-Length"));
    }
    let content_length = match length {
        Some(n) => n,
        None if method == "POST" || method == "PUT" || method == "PATCH" => {
            return Err(Reject::new(411, "Content-Length required"));
        }
        None => 0,
    };
    if content_length > max_body {
        return Err(Reject::new(413, "body too large"));
    }
    let target = std::str::from_utf8(target).map_err(|_| BAD)?;
    let mut rebuilt = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {content_length}\r\n");
    if close {
        rebuilt.push_str("Connection: close\r\n");
    }
    rebuilt.push_str("\r\n");
    Ok(Head { rebuilt: rebuilt.into_bytes(), content_length, expect_continue: expect_continue && content_length > 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(head: &str) -> u16 {
        match check(head.as_bytes(), 1000) {
            Ok(_) => 200,
            Err(r) => r.status,
        }
    }

    #[test]
    fn a_voipms_head_is_rebuilt() {
        let h = check(
            b"POST /voipms?key=k HTTP/1.1\r\nHost: gw.example.com:8080\r\nContent-Type: application/json\r\nContent-Length: 42\r\nX-Other: a\r\n\r\n",
            1000,
        )
        .unwrap();
        assert_eq!(h.content_length, 42);
        assert!(!h.expect_continue);
        assert_eq!(
            String::from_utf8(h.rebuilt).unwrap(),
            "POST /voipms?key=k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 42\r\n\r\n"
        );
        let h = check(
            b"\r\nGET / HTTP/1.1\r\nhost: a\r\nConnection: keep-alive, Close\r\nExpect: 100-Continue\r\n\r\n",
            10,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(h.rebuilt).unwrap(),
            "GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert!(!h.expect_continue, "nothing to continue with an empty body");
    }

    #[test]
    fn framing_that_smuggles_is_refused() {
        let cases = [
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\n", 400),
            ("POST / HTTP/1.1\nHost: a\r\nContent-Length: 1\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\rContent-Length: 1\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 1\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\n\r\n", 411),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", 413),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n", 200),
        ];
        for (head, want) in cases {
            assert_eq!(status(head), want, "{head:?}");
        }
    }

    #[test]
    fn request_lines_and_bytes() {
        let cases = [
            ("FOO /voipms HTTP/1.1\r\nHost: a\r\n\r\n", 501),
            ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 400),
            ("POST http://a/voipms HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 400),
            ("POST /a b HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 400),
            ("POST  / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 400),
            ("GET / HTTP/1.0\r\nHost: a\r\n\r\n", 505),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            ("GET / HTTQ/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nExpect: later\r\n\r\n", 417),
            ("GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: \r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400),
        ];
        for (head, want) in cases {
            assert_eq!(status(head), want, "{head:?}");
        }
        assert_eq!(check(b"GET / HTTP/1.1\r\nHost: a\r\nX: \xc3\xa9\r\n\r\n", 10).unwrap_err().status, 400);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: a\r\n")).collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")), 431);
        let long = "a".repeat(MAX_HEAD_BYTES);
        assert_eq!(status(&format!("GET / HTTP/1.1\r\nHost: a\r\nX: {long}\r\n\r\n")), 431);
    }

    #[test]
    fn answers_are_complete_responses() {
        let r = Reject::new(411, "send Content-Length");
        let text = String::from_utf8(r.response()).unwrap();
        assert!(text.starts_with("HTTP/1.1 411 Length Required\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nsend Content-Length\n") && text.contains("Content-Length: 20\r\n"), "{text}");
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"), Some(27));
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
    }
}
