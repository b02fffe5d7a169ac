//! The sans-IO XMPP stream framer: cuts the byte stream from the server into frames.
//!
//! RFC 6120 §4 (an XMPP stream is one XML document whose depth-1 children are stanzas) and
//! XEP-0114 §3 (a component stream). This module owns *where elements begin and end*: it emits the
//! `<stream:stream …>` start tag, then each complete depth-1 element as raw bytes, then the end of
//! the stream. It scans every byte exactly once, keeping its state across [`Framer::push`] calls,
//! and it enforces the limits that protect us from the peer (size of the element being accumulated,
//! nesting depth) before anything is parsed. RFC 6120 §11.1 restricted XML (no comments, processing
//! instructions, DTDs) is rejected here as soon as it is seen.
//!
//! It must not do I/O or parse names: it does not check that end tags match start tags or that
//! attributes are well-formed; [`super::element::Element::parse`] does that (with quick-xml) on each
//! frame. The state machine follows moparisthebest/xmpp-proxy `stanzafilter.rs` (docs/design.md §3).

use std::fmt;

/// One unit of the XMPP stream, cut from the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The bytes of the stream's start tag (`<stream:stream …>`), without any XML declaration
    /// before it; parse with `Element::parse_start_tag`. A self-closing header (`<stream:stream/>`,
    /// an empty document) is emitted as-is and followed by [`Frame::StreamEnd`].
    StreamHeader(Vec<u8>),
    /// One complete depth-1 element (a stanza, `<handshake/>`, `<stream:error>`), from its `<` to
    /// the `>` of its end tag (or of its self-closing tag); parse with `Element::parse`.
    Stanza(Vec<u8>),
    /// The stream's end tag `</stream:stream>` was received: the server closed the stream.
    StreamEnd,
}

/// Why the byte stream cannot be framed. Every error is fatal for the stream: the framer stays
/// failed until [`Framer::reset`], and the session answers with the stream error named by
/// [`FramerError::stream_condition`], then reconnects (docs/xmpp.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramerError {
    /// The bytes are not well-formed XML (e.g. text between stanzas, `</` before the stream
    /// header, `<` followed by something that is not a name); the reason says what was seen.
    NotWellFormed(&'static str),
    /// A construct RFC 6120 §11.1 forbids: a comment, a processing instruction, a DOCTYPE.
    RestrictedXml(&'static str),
    /// The element being accumulated (a stanza or the stream header) exceeds `limit` bytes.
    TooBig {
        /// The configured `max_stanza_bytes`.
        limit: usize,
    },
    /// Elements are nested more than `limit` levels below the stream element.
    TooDeep {
        /// The configured `max_depth`.
        limit: usize,
    },
}

impl FramerError {
    /// The RFC 6120 §4.9.3 stream error condition to send before closing the stream.
    ///
    /// Oversize and overdeep input is `policy-violation` (§4.9.3.14: "exceeded a limit"), the
    /// condition Prosody uses for its own stanza size limit.
    pub fn stream_condition(&self) -> &'static str {
        match self {
            FramerError::NotWellFormed(_) => "not-well-formed",
            FramerError::RestrictedXml(_) => "restricted-xml",
            FramerError::TooBig { .. } | FramerError::TooDeep { .. } => "policy-violation",
        }
    }
}

impl fmt::Display for FramerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramerError::NotWellFormed(why) => write!(f, "xml stream not well-formed: {why}"),
            FramerError::RestrictedXml(what) => write!(f, "restricted xml in stream: {what}"),
            FramerError::TooBig { limit } => {
                write!(f, "xml element larger than the limit of {limit} bytes")
            }
            FramerError::TooDeep { limit } => {
                write!(f, "xml elements nested deeper than the limit of {limit} levels")
            }
        }
    }
}

impl std::error::Error for FramerError {}

/// Where the scanner is in the XML grammar. One byte moves it at most one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Between markup: inter-stanza whitespace (depth 0 and 1) or character data (deeper).
    Text,
    /// Just after `<`. `decl_ok` is true only for the very first byte of the stream, the one
    /// place an XML declaration may appear.
    Open { decl_ok: bool },
    /// Inside a start tag (name and attributes), outside any attribute value.
    StartTag,
    /// Inside an attribute value; the byte is the closing quote (`'` or `"`).
    AttrValue(u8),
    /// Saw `/` inside a start tag: only `>` may follow.
    EmptyTagSlash,
    /// Just after `</`: a name must follow.
    EndTagName,
    /// Inside an end tag, after the first name byte.
    EndTag,
    /// After `<!`, matching the rest of `literal` (`matched` bytes of it seen so far).
    Bang { literal: Literal, matched: u8 },
    /// Inside `<![CDATA[`; `brackets` counts the `]` just seen (at most 2) to spot `]]>`.
    Cdata { brackets: u8 },
    /// After `<?` at the start of the stream, matching `xml` (`matched` bytes so far).
    DeclTarget { matched: u8 },
    /// Inside the XML declaration; `question` is true just after a `?`.
    Decl { question: bool },
}

/// The three constructs that start with `<!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Literal {
    /// `<![CDATA[`: character data, allowed inside stanzas.
    Cdata,
    /// `<!--`: a comment, restricted.
    Comment,
    /// `<!DOCTYPE`: a document type declaration, restricted.
    Doctype,
}

impl Literal {
    /// The bytes that follow `<!`.
    fn bytes(self) -> &'static [u8] {
        match self {
            Literal::Cdata => b"[CDATA[",
            Literal::Comment => b"--",
            Literal::Doctype => b"DOCTYPE",
        }
    }
}

/// Limits nothing: the end of the "current frame" when no frame is being accumulated.
const NO_LIMIT: usize = usize::MAX;

/// The stream framer. Feed it with [`Framer::push`], then call [`Framer::next_frame`] until it
/// returns `Ok(None)`; push at most one socket read at a time, so that the buffer never holds much
/// more than `max_stanza_bytes` plus one read.
///
/// The input must be UTF-8 without a byte order mark (RFC 6120 §11.6; servers send none); the
/// framer itself only looks at ASCII bytes, so multi-byte characters pass through untouched.
#[derive(Debug, Clone)]
pub struct Framer {
    /// Bytes received and not yet handed out or discarded; `buf[..consumed]` is dead space that
    /// is compacted away lazily (see [`Framer::push`]).
    buf: Vec<u8>,
    /// Bytes at the front of `buf` that are already emitted or skipped.
    consumed: usize,
    /// Next byte of `buf` to scan; everything before it has been scanned exactly once.
    pos: usize,
    /// Grammar state at `pos`.
    state: Scan,
    /// Index in `buf` of the `<` that starts the frame being accumulated, if any.
    frame_start: Option<usize>,
    /// `frame_start + max_stanza_bytes`: a byte at this index or beyond makes the frame too big.
    limit_end: usize,
    /// Number of open elements, the stream element included (0 before the stream header).
    open: usize,
    /// True until the first byte of the stream is scanned: an XML declaration may only start there.
    at_start: bool,
    /// `</stream:stream>` was received; only whitespace may follow.
    ended: bool,
    /// A self-closing stream header was emitted; the next call reports [`Frame::StreamEnd`].
    pending_end: bool,
    /// The first error; returned again by every later call until [`Framer::reset`].
    failed: Option<FramerError>,
    /// Maximum bytes of one frame (stanza, stream header or XML declaration); Prosody's own
    /// default for component stanzas is 512 KiB (docs/xmpp.md §3).
    max_stanza_bytes: usize,
    /// Maximum element depth below the stream element (a stanza is depth 1).
    max_depth: usize,
}

impl Framer {
    /// A framer for a new connection. `max_stanza_bytes` bounds every frame, including the stream
    /// header and an incomplete element still being received; `max_depth` bounds nesting, counting
    /// a stanza as depth 1 and its children as depth 2.
    pub fn new(max_stanza_bytes: usize, max_depth: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            consumed: 0,
            pos: 0,
            state: Scan::Text,
            frame_start: None,
            limit_end: NO_LIMIT,
            open: 0,
            at_start: true,
            ended: false,
            pending_end: false,
            failed: None,
            max_stanza_bytes,
            max_depth,
        }
    }

    /// Appends bytes received from the socket. Nothing is scanned until [`Framer::next_frame`].
    /// Ignored once the framer has failed.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        // Compact only when the dead prefix is at least as large as the live part, so that every
        // live byte is moved at most as often as dead bytes pay for it (amortised O(1) per byte).
        if self.consumed > 0 && self.consumed >= self.buf.len() - self.consumed {
            self.compact();
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the error that ended the
    /// stream (sticky until [`Framer::reset`]).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramerError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if self.pending_end {
            self.pending_end = false;
            self.ended = true;
            return Ok(Some(Frame::StreamEnd));
        }
        match self.scan() {
            Ok(frame) => Ok(frame),
            Err(err) => {
                self.failed = Some(err);
                // Nothing more will be read from this connection: free the memory now.
                self.buf = Vec::new();
                self.consumed = 0;
                self.pos = 0;
                Err(err)
            }
        }
    }

    /// Forgets everything, for a new connection (a new XML document). The limits are kept.
    pub fn reset(&mut self) {
        *self = Framer::new(self.max_stanza_bytes, self.max_depth);
    }

    /// Bytes held that have not been emitted or skipped yet (an incomplete frame, or bytes pushed
    /// but not scanned).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Drops the dead prefix `buf[..consumed]`, shifting every index kept into `buf`.
    fn compact(&mut self) {
        let dead = self.consumed;
        self.buf.drain(..dead);
        self.consumed = 0;
        self.pos -= dead;
        if let Some(start) = self.frame_start.as_mut() {
            *start -= dead;
            self.limit_end -= dead;
        }
    }

    /// Starts accumulating a frame whose `<` is at `index`.
    fn begin_frame(&mut self, index: usize) {
        self.frame_start = Some(index);
        self.limit_end = index.saturating_add(self.max_stanza_bytes);
    }

    /// Ends the current frame with the byte at `index` and returns its bytes (which the caller
    /// drops for the XML declaration and the stream's end tag).
    fn finish_frame(&mut self, index: usize) -> Vec<u8> {
        let start = self.frame_start.take().unwrap_or(index);
        self.limit_end = NO_LIMIT;
        self.consumed = index + 1;
        self.buf.get(start..=index).map(<[u8]>::to_vec).unwrap_or_default()
    }

    /// A too-big error.
    fn too_big(&self) -> FramerError {
        FramerError::TooBig { limit: self.max_stanza_bytes }
    }

    /// Scans from `pos` to the end of the buffer or to the end of the next frame.
    fn scan(&mut self) -> Result<Option<Frame>, FramerError> {
        let mut i = self.pos;
        let result = loop {
            let Some(&byte) = self.buf.get(i) else {
                break Ok(None);
            };
            if i >= self.limit_end {
                break Err(self.too_big());
            }
            match self.step(i, byte) {
                Ok(Step::Next) => i += 1,
                Ok(Step::Skip(n)) => i += n,
                Ok(Step::Emit(frame)) => {
                    i += 1;
                    break Ok(Some(frame));
                }
                Err(err) => break Err(err),
            }
        };
        self.pos = i;
        result
    }

    /// Handles the byte at `index` (value `byte`) in the current state.
    fn step(&mut self, index: usize, byte: u8) -> Result<Step, FramerError> {
        match self.state {
            Scan::Text => self.text(index, byte),
            Scan::Open { decl_ok } => self.open_markup(byte, decl_ok),
            Scan::StartTag => match byte {
                b'"' | b'\'' => {
                    self.state = Scan::AttrValue(byte);
                    Ok(Step::Next)
                }
                b'>' => Ok(self.start_tag_closed(index)),
                b'/' => {
                    self.state = Scan::EmptyTagSlash;
                    Ok(Step::Next)
                }
                b'<' => Err(FramerError::NotWellFormed("'<' inside a tag")),
                _ => {
                    // Fast path: jump over names, `=` and whitespace to the next special byte.
                    let rest = self.buf.get(index..).unwrap_or_default();
                    let special = |b: &u8| matches!(b, b'"' | b'\'' | b'>' | b'/' | b'<');
                    self.skip(index, rest.iter().position(special).unwrap_or(rest.len()))
                }
            },
            Scan::AttrValue(quote) => {
                // Fast path: jump to the closing quote; `<` is forbidden in attribute values.
                let rest = self.buf.get(index..).unwrap_or_default();
                match rest.iter().position(|&b| b == quote || b == b'<') {
                    Some(0) if byte == b'<' => Err(FramerError::NotWellFormed("'<' inside an attribute value")),
                    Some(0) => {
                        self.state = Scan::StartTag;
                        Ok(Step::Next)
                    }
                    Some(n) => self.skip(index, n),
                    None => self.skip(index, rest.len()),
                }
            }
            Scan::EmptyTagSlash => match byte {
                b'>' => Ok(self.empty_tag_closed(index)),
                _ => Err(FramerError::NotWellFormed("'/' not followed by '>' in a tag")),
            },
            Scan::EndTagName => {
                if is_name_start(byte) {
                    self.state = Scan::EndTag;
                    Ok(Step::Next)
                } else {
                    Err(FramerError::NotWellFormed("'</' not followed by a name"))
                }
            }
            Scan::EndTag => match byte {
                b'>' => Ok(self.end_tag_closed(index)),
                b'<' | b'"' | b'\'' | b'/' => Err(FramerError::NotWellFormed("unexpected character in an end tag")),
                _ => Ok(Step::Next),
            },
            Scan::Bang { literal, matched } => self.bang(byte, literal, matched),
            Scan::Cdata { brackets } => {
                self.state = match byte {
                    b']' => Scan::Cdata { brackets: (brackets + 1).min(2) },
                    b'>' if brackets == 2 => Scan::Text,
                    _ => Scan::Cdata { brackets: 0 },
                };
                Ok(Step::Next)
            }
            Scan::DeclTarget { matched } => {
                let next = usize::from(matched);
                match b"xml".get(next) {
                    Some(&expected) if expected == byte => {
                        self.state = Scan::DeclTarget { matched: matched + 1 };
                        Ok(Step::Next)
                    }
                    // `<?xml` must be followed by whitespace; `<?xml-stylesheet` and friends are
                    // processing instructions.
                    None if is_whitespace(byte) => {
                        self.state = Scan::Decl { question: false };
                        Ok(Step::Next)
                    }
                    _ => Err(FramerError::RestrictedXml("processing instruction")),
                }
            }
            Scan::Decl { question } => match byte {
                b'>' if question => {
                    // The declaration is not a frame: drop it and look for the stream header.
                    self.finish_frame(index);
                    self.state = Scan::Text;
                    Ok(Step::Next)
                }
                b'<' => Err(FramerError::NotWellFormed("'<' inside the xml declaration")),
                _ => {
                    self.state = Scan::Decl { question: byte == b'?' };
                    Ok(Step::Next)
                }
            },
        }
    }

    /// Skips `n` bytes starting at `index` that cannot change the state (fast path); `n > 0`.
    fn skip(&self, index: usize, n: usize) -> Result<Step, FramerError> {
        // The size check in `scan` only sees the first byte of a run; check the last one here.
        if index + n > self.limit_end {
            return Err(self.too_big());
        }
        Ok(Step::Skip(n))
    }

    /// A byte between markup.
    fn text(&mut self, index: usize, byte: u8) -> Result<Step, FramerError> {
        let at_start = std::mem::replace(&mut self.at_start, false);
        if self.open >= 2 {
            // Character data inside a stanza: jump to the next `<` (fast path).
            let rest = self.buf.get(index..).unwrap_or_default();
            return match rest.iter().position(|&b| b == b'<') {
                Some(0) => {
                    self.state = Scan::Open { decl_ok: false };
                    Ok(Step::Next)
                }
                Some(n) => self.skip(index, n),
                None => self.skip(index, rest.len()),
            };
        }
        if is_whitespace(byte) {
            // Whitespace keepalives and line breaks between stanzas: dropped at once, so that an
            // endless stream of spaces never accumulates.
            self.consumed = index + 1;
            return Ok(Step::Next);
        }
        if byte != b'<' {
            return Err(FramerError::NotWellFormed(if self.ended {
                "data after the end of the stream"
            } else if self.open == 0 {
                "text before the stream header"
            } else {
                "text between stanzas"
            }));
        }
        if self.ended {
            return Err(FramerError::NotWellFormed("data after the end of the stream"));
        }
        self.begin_frame(index);
        self.state = Scan::Open { decl_ok: at_start };
        Ok(Step::Next)
    }

    /// The byte after `<`.
    fn open_markup(&mut self, byte: u8, decl_ok: bool) -> Result<Step, FramerError> {
        self.state = match byte {
            b'/' if self.open == 0 => {
                return Err(FramerError::NotWellFormed("end tag before the stream header"));
            }
            b'/' => Scan::EndTagName,
            b'?' if decl_ok => Scan::DeclTarget { matched: 0 },
            b'?' => return Err(FramerError::RestrictedXml("processing instruction")),
            b'!' => Scan::Bang { literal: Literal::Cdata, matched: 0 },
            _ if is_name_start(byte) => {
                // The new element sits at depth `open` (the stream element is depth 0).
                if self.open > self.max_depth {
                    return Err(FramerError::TooDeep { limit: self.max_depth });
                }
                Scan::StartTag
            }
            _ => return Err(FramerError::NotWellFormed("'<' not followed by a name")),
        };
        Ok(Step::Next)
    }

    /// A byte after `<!`: recognise which construct it is and match the rest of its opener.
    fn bang(&mut self, byte: u8, literal: Literal, matched: u8) -> Result<Step, FramerError> {
        let literal = if matched == 0 {
            match byte {
                b'[' => Literal::Cdata,
                b'-' => Literal::Comment,
                b'D' => Literal::Doctype,
                _ => return Err(FramerError::NotWellFormed("malformed '<!' markup")),
            }
        } else {
            literal
        };
        let bytes = literal.bytes();
        if bytes.get(usize::from(matched)) != Some(&byte) {
            return Err(FramerError::NotWellFormed("malformed '<!' markup"));
        }
        let matched = matched + 1;
        if usize::from(matched) < bytes.len() {
            self.state = Scan::Bang { literal, matched };
            return Ok(Step::Next);
        }
        match literal {
            Literal::Comment => Err(FramerError::RestrictedXml("comment")),
            Literal::Doctype => Err(FramerError::RestrictedXml("document type declaration")),
            Literal::Cdata if self.open < 2 => Err(FramerError::NotWellFormed("CDATA section outside a stanza")),
            Literal::Cdata => {
                self.state = Scan::Cdata { brackets: 0 };
                Ok(Step::Next)
            }
        }
    }

    /// The `>` of a start tag at `index`.
    fn start_tag_closed(&mut self, index: usize) -> Step {
        self.state = Scan::Text;
        self.open += 1;
        if self.open == 1 { Step::Emit(Frame::StreamHeader(self.finish_frame(index))) } else { Step::Next }
    }

    /// The `>` of a self-closing tag at `index`.
    fn empty_tag_closed(&mut self, index: usize) -> Step {
        self.state = Scan::Text;
        match self.open {
            0 => {
                self.pending_end = true;
                Step::Emit(Frame::StreamHeader(self.finish_frame(index)))
            }
            1 => Step::Emit(Frame::Stanza(self.finish_frame(index))),
            _ => Step::Next,
        }
    }

    /// The `>` of an end tag at `index`.
    fn end_tag_closed(&mut self, index: usize) -> Step {
        self.state = Scan::Text;
        // `open >= 1` here: `</` is refused before the stream header.
        self.open = self.open.saturating_sub(1);
        match self.open {
            0 => {
                self.finish_frame(index);
                self.ended = true;
                Step::Emit(Frame::StreamEnd)
            }
            1 => Step::Emit(Frame::Stanza(self.finish_frame(index))),
            _ => Step::Next,
        }
    }
}

/// What [`Framer::step`] decided about the current byte.
enum Step {
    /// Consume it and continue.
    Next,
    /// Consume this many bytes (the current one included) and continue.
    Skip(usize),
    /// Consume it and return this frame.
    Emit(Frame),
}

/// XML 1.0 §2.3 `S`: the four whitespace characters.
fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// XML 1.0 §2.3 `NameStartChar`, approximated on bytes: ASCII letters, `_`, `:`, or the first byte
/// of any non-ASCII UTF-8 character (quick-xml checks the full name per stanza).
fn is_name_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte == b':' || byte >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::xmpp::element::{Element, NsContext};

    /// Every construct the framer must step through without being fooled.
    const NASTY: &str = concat!(
        "<?xml version='1.0' encoding=\"UTF-8\"?>\n",
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' ",
        "id=\"a'b>c/>\" xmlns=\"jabber:component:accept\" from='x\"y>z/>' xml:lang='en'>",
        "<handshake/>",
        " \n\t \r\n",
        "<message to='a@b' title=\"x/>y>z\" q='\"' dq=\"'\" empty=''>",
        "<body>hi <![CDATA[</x> ]] ] ]> >]]]><![CDATA[]]]]><![CDATA[>]]>",
        " &amp; &#x3c; > / </body>",
        "<x xmlns='urn:x' a='&apos;/>'><y><z a='1' b = \"2\"/><![CDATA[<z>]]></y></x>",
        "<self-closing/></message>",
        " ",
        "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<presence  />",
        "\n",
        "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>",
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced &lt;by&gt; new</text>",
        "</stream:error>",
        "</stream:stream >",
        "\n",
    );

    /// The frames [`NASTY`] must produce, located by substring so the test states them plainly.
    fn nasty_frames() -> Vec<Frame> {
        let doc = NASTY;
        let span = |from: &str, to: &str| -> Vec<u8> {
            let start = doc.find(from).expect("start in document");
            let end = start + doc[start..].find(to).expect("end in document") + to.len();
            doc.as_bytes()[start..end].to_vec()
        };
        vec![
            Frame::StreamHeader(span("<stream:stream", "xml:lang='en'>")),
            Frame::Stanza(b"<handshake/>".to_vec()),
            Frame::Stanza(span("<message", "</message>")),
            Frame::Stanza(span("<iq", "</iq>")),
            Frame::Stanza(b"<presence  />".to_vec()),
            Frame::Stanza(span("<stream:error>", "</stream:error>")),
            Frame::StreamEnd,
        ]
    }

    /// Pushes `chunks` one by one, draining frames after each push like the daemon does.
    fn run_with(framer: &mut Framer, chunks: &[&[u8]]) -> Result<Vec<Frame>, FramerError> {
        let mut frames = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            while let Some(frame) = framer.next_frame()? {
                frames.push(frame);
            }
        }
        Ok(frames)
    }

    fn run(chunks: &[&[u8]]) -> Result<Vec<Frame>, FramerError> {
        run_with(&mut Framer::new(4096, 16), chunks)
    }

    fn run_str(doc: &str) -> Result<Vec<Frame>, FramerError> {
        run(&[doc.as_bytes()])
    }

    /// The error a document ends with, with a permissive framer.
    fn error_of(doc: &str) -> FramerError {
        run_str(doc).expect_err(doc)
    }

    const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' \
                          xmlns:stream='http://etherx.jabber.org/streams'>";

    #[test]
    fn nasty_document_whole() {
        assert_eq!(run_str(NASTY), Ok(nasty_frames()));
    }

    #[test]
    fn nasty_document_frames_parse() {
        let frames = nasty_frames();
        let Some(Frame::StreamHeader(header)) = frames.first() else {
            panic!("no header");
        };
        let header = Element::parse_start_tag(header).expect("header parses");
        assert_eq!(header.get_attr("id"), Some("a'b>c/>"));
        assert_eq!(header.get_attr("from"), Some("x\"y>z/>"));
        let ctx = NsContext::from_header(&header);
        for frame in &frames {
            if let Frame::Stanza(bytes) = frame {
                Element::parse(bytes, &ctx).expect("stanza parses");
            }
        }
    }

    #[test]
    fn nasty_document_byte_by_byte() {
        let chunks: Vec<&[u8]> = NASTY.as_bytes().chunks(1).collect();
        assert_eq!(run(&chunks), Ok(nasty_frames()));
    }

    #[test]
    fn nasty_document_split_in_two_everywhere() {
        let doc = NASTY.as_bytes();
        let expected = nasty_frames();
        for i in 0..=doc.len() {
            let (a, b) = doc.split_at(i);
            assert_eq!(run(&[a, b]), Ok(expected.clone()), "split at {i}");
        }
    }

    #[test]
    fn nasty_document_split_in_three() {
        let doc = NASTY.as_bytes();
        let expected = nasty_frames();
        // Every pair of cuts.
        for i in 0..=doc.len() {
            for j in i..=doc.len() {
                let chunks = [&doc[..i], &doc[i..j], &doc[j..]];
                assert_eq!(run(&chunks), Ok(expected.clone()), "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn many_stanzas_in_one_push_and_partial_tail() {
        let mut doc = String::from(HEADER);
        for n in 0..1000 {
            doc.push_str(&format!("<message id='{n}'><body>{n}</body></message>"));
        }
        let tail = "<message id='last'><bo";
        doc.push_str(tail);
        let mut framer = Framer::new(4096, 16);
        let frames = run_with(&mut framer, &[doc.as_bytes()]).expect("frames");
        assert_eq!(frames.len(), 1001);
        assert_eq!(frames[1000], Frame::Stanza(b"<message id='999'><body>999</body></message>".to_vec()));
        assert_eq!(framer.buffered(), tail.len());
        let rest = run_with(&mut framer, &[b"dy/></message>"]).expect("rest");
        assert_eq!(rest, [Frame::Stanza(b"<message id='last'><body/></message>".to_vec())]);
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn xml_declaration_is_optional() {
        let frames = run_str(&format!("{HEADER}<a/>")).expect("frames");
        assert_eq!(frames, [Frame::StreamHeader(HEADER.as_bytes().to_vec()), Frame::Stanza(b"<a/>".to_vec())]);
    }

    #[test]
    fn whitespace_keepalives_are_skipped_and_not_buffered() {
        let mut framer = Framer::new(64, 4);
        run_with(&mut framer, &[HEADER.as_bytes()]).expect_err("header over 64 bytes");
        let mut framer = Framer::new(1024, 4);
        run_with(&mut framer, &[HEADER.as_bytes()]).expect("header");
        let spaces = vec![b' '; 10_000];
        for _ in 0..100 {
            assert_eq!(run_with(&mut framer, &[&spaces]), Ok(vec![]));
            assert_eq!(framer.buffered(), 0);
        }
        assert_eq!(run_with(&mut framer, &[b"\n<a/>\r\n"]), Ok(vec![Frame::Stanza(b"<a/>".to_vec())]));
    }

    #[test]
    fn self_closing_stream_header_ends_the_stream() {
        assert_eq!(
            run_str("<stream:stream/>"),
            Ok(vec![Frame::StreamHeader(b"<stream:stream/>".to_vec()), Frame::StreamEnd])
        );
    }

    #[test]
    fn size_limit_exactly_at_the_limit_passes() {
        let stanza = "<message><body>0123456789</body></message>";
        let limit = stanza.len();
        let doc = format!("<s:s>{stanza}{stanza}");
        let frames = run_with(&mut Framer::new(limit, 4), &[doc.as_bytes()]);
        assert_eq!(frames.map(|f| f.len()), Ok(3));
        // The same, byte by byte: the check must not depend on chunking.
        let chunks: Vec<&[u8]> = doc.as_bytes().chunks(1).collect();
        let frames = run_with(&mut Framer::new(limit, 4), &chunks);
        assert_eq!(frames.map(|f| f.len()), Ok(3));
    }

    #[test]
    fn size_limit_one_over_fails() {
        let stanza = "<message><body>0123456789</body></message>";
        let limit = stanza.len() - 1;
        let doc = format!("<s:s>{stanza}");
        for chunk in [1, 3, doc.len()] {
            let chunks: Vec<&[u8]> = doc.as_bytes().chunks(chunk).collect();
            let mut framer = Framer::new(limit, 4);
            assert_eq!(run_with(&mut framer, &chunks), Err(FramerError::TooBig { limit }), "chunks of {chunk}");
        }
    }

    #[test]
    fn stream_header_is_capped() {
        let header = format!("<stream:stream id='{}'>", "x".repeat(100));
        let mut framer = Framer::new(header.len(), 4);
        assert!(run_with(&mut framer, &[header.as_bytes()]).is_ok());
        let mut framer = Framer::new(header.len() - 1, 4);
        assert_eq!(run_with(&mut framer, &[header.as_bytes()]), Err(FramerError::TooBig { limit: header.len() - 1 }));
    }

    /// A peer that never closes what it opened is cut off at the limit, with the buffer never
    /// holding more than the limit plus one push.
    #[test]
    fn endless_unclosed_element_is_cut_off() {
        const LIMIT: usize = 512 * 1024;
        const CHUNK: usize = 4096;
        let openers: [(&str, u8); 5] = [
            ("<message ", b'a'),            // inside a start tag
            ("<message a='", b'a'),         // inside an attribute value
            ("<message><body>", b'a'),      // character data
            ("<message><![CDATA[", b']'),   // CDATA
            ("<stream:stream id=\"", b'x'), // the stream header itself
        ];
        for (opener, filler) in openers {
            let mut framer = Framer::new(LIMIT, 16);
            if !opener.starts_with("<stream:stream") {
                run_with(&mut framer, &[b"<stream:stream>"]).expect("header");
            }
            framer.push(opener.as_bytes());
            let chunk = vec![filler; CHUNK];
            let mut pushed = 0usize;
            let err = loop {
                assert!(pushed < 2 * LIMIT, "{opener}: never cut off");
                assert!(framer.buffered() <= LIMIT + CHUNK, "{opener}: buffer grew");
                framer.push(&chunk);
                pushed += CHUNK;
                match framer.next_frame() {
                    Ok(None) => {}
                    Ok(Some(frame)) => panic!("{opener}: unexpected {frame:?}"),
                    Err(err) => break err,
                }
            };
            assert_eq!(err, FramerError::TooBig { limit: LIMIT }, "{opener}");
            assert!(pushed <= LIMIT + CHUNK, "{opener}: cut off late ({pushed})");
            assert_eq!(framer.buffered(), 0, "{opener}: memory kept after failure");
        }
    }

    #[test]
    fn depth_limit() {
        let doc = "<s:s><a><b><c/></b></a>";
        assert_eq!(run_with(&mut Framer::new(1024, 3), &[doc.as_bytes()]).map(|f| f.len()), Ok(2));
        assert_eq!(run_with(&mut Framer::new(1024, 2), &[doc.as_bytes()]), Err(FramerError::TooDeep { limit: 2 }));
        // Depth 0 allows no stanza at all.
        assert_eq!(run_with(&mut Framer::new(1024, 0), &[b"<s:s><a/>"]), Err(FramerError::TooDeep { limit: 0 }));
        // End tags bring the depth back down.
        let wide = "<s:s><a><b/><b><c/></b><b><c/></b></a><a><b><c/></b></a>";
        assert_eq!(run_with(&mut Framer::new(1024, 3), &[wide.as_bytes()]).map(|f| f.len()), Ok(3));
    }

    #[test]
    fn restricted_constructs() {
        let restricted = [
            "<!-- hi --><stream:stream>",
            "<?xml version='1.0'?><!-- hi --><stream:stream>",
            "<!DOCTYPE stream><stream:stream>",
            "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><stream:stream>",
            "<?xml-stylesheet href='x'?><stream:stream>",
            "<?xmlfoo?><stream:stream>",
            "<?pi?><stream:stream>",
            " <?xml version='1.0'?><stream:stream>",
            "<stream:stream><?xml version='1.0'?>",
            "<stream:stream><!-- keepalive -->",
            "<stream:stream><?pi x?>",
            "<stream:stream><message><!--x--></message>",
            "<stream:stream><message><body><?pi?></body></message>",
            "<stream:stream><message><!DOCTYPE x></message>",
        ];
        for doc in restricted {
            assert!(matches!(error_of(doc), FramerError::RestrictedXml(_)), "{doc}: {:?}", run_str(doc));
            assert_eq!(error_of(doc).stream_condition(), "restricted-xml");
        }
    }

    #[test]
    fn garbage_is_not_well_formed() {
        let garbage = [
            "hello",
            "\u{feff}<stream:stream>",
            "</stream:stream>",
            "< stream:stream>",
            "<1stream>",
            "<stream:stream><\n",
            "<stream:stream>hello<a/>",
            "<stream:stream><a/>x",
            "<stream:stream><![CDATA[x]]>",
            "<stream:stream><a><!x></a>",
            "<stream:stream><a><![CDATX[</a>",
            "<stream:stream><a><!-x></a>",
            "<stream:stream><a b='<'/>",
            "<stream:stream><a<b/>",
            "<stream:stream><a/ >",
            "<stream:stream><a></ a>",
            "<stream:stream><a></a/>",
            "<?xml version='1.0' <x ?><stream:stream>",
            "<stream:stream></stream:stream><a/>",
            "<stream:stream></stream:stream>x",
        ];
        for doc in garbage {
            assert!(matches!(error_of(doc), FramerError::NotWellFormed(_)), "{doc}: {:?}", run_str(doc));
            assert_eq!(error_of(doc).stream_condition(), "not-well-formed");
        }
    }

    #[test]
    fn errors_are_sticky_until_reset() {
        let mut framer = Framer::new(1024, 4);
        let err = run_with(&mut framer, &[b"<stream:stream>oops"]).expect_err("text");
        assert_eq!(framer.next_frame(), Err(err));
        framer.push(b"<a/>");
        assert_eq!(framer.next_frame(), Err(err));
        assert_eq!(framer.buffered(), 0);
        framer.reset();
        assert_eq!(
            run_with(&mut framer, &[b"<?xml version='1.0'?><s:s><a/>"]),
            Ok(vec![Frame::StreamHeader(b"<s:s>".to_vec()), Frame::Stanza(b"<a/>".to_vec())])
        );
    }

    #[test]
    fn nothing_after_the_end_but_whitespace() {
        let mut framer = Framer::new(1024, 4);
        let frames = run_with(&mut framer, &[b"<s:s><a/></s:s>\n \n"]).expect("frames");
        assert_eq!(frames.last(), Some(&Frame::StreamEnd));
        assert_eq!(framer.next_frame(), Ok(None));
    }

    #[test]
    fn error_display_and_conditions() {
        assert_eq!(FramerError::TooBig { limit: 10 }.to_string(), "xml element larger than the limit of 10 bytes");
        assert_eq!(FramerError::TooBig { limit: 10 }.stream_condition(), "policy-violation");
        assert_eq!(FramerError::TooDeep { limit: 3 }.stream_condition(), "policy-violation");
        assert_eq!(FramerError::RestrictedXml("comment").to_string(), "restricted xml in stream: comment");
    }
}
