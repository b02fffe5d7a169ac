//! A minimal XML element tree for stanzas: parsed with quick-xml, written by hand.
//!
//! Owns the conversion between one complete element's bytes (a frame from
//! [`super::framer::Framer`]) and a namespace-resolved tree, and back. Rules follow XML 1.0,
//! Namespaces in XML 1.0, and RFC 6120 §11 (XML usage in XMPP): UTF-8 only; only the five
//! predefined entities and character references; no comments, processing instructions or DTDs
//! (`restricted-xml`). A stanza parsed on its own has lost the stream's namespace declarations, so
//! parsing takes an [`NsContext`] holding what the stream header declared (docs/design.md §3).
//!
//! It must not do I/O, and it never panics on peer input. Writing is the inverse of parsing:
//! anything written re-parses to an equal element.

use std::fmt;

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesStart, Event};

use super::ns;

/// Deepest element nesting [`Element::parse`] accepts, counting the parsed element itself as 1.
/// A backstop against unbounded recursion in tree code; the framer's configurable `max_depth`
/// normally rejects deep stanzas first. No XMPP payload we handle comes close to 64.
pub const MAX_DEPTH: usize = 64;

/// An XML element: local name, namespace, attributes and child nodes.
///
/// Equality compares the resolved tree (name, namespace, attributes regardless of order, child
/// nodes); namespace declarations and prefixes are syntax and do not take part.
#[derive(Debug, Clone)]
pub struct Element {
    /// The local name (without prefix).
    name: String,
    /// The namespace name (URI); empty for "no namespace".
    ns: String,
    /// Attributes by qualified name as written (`type`, `xml:lang`), in document order, never
    /// `xmlns` declarations.
    attrs: Vec<(String, String)>,
    /// Child elements and text, in document order; never two adjacent or empty text nodes.
    nodes: Vec<Node>,
    /// Namespace declarations written on this element when parsed (prefix `""` is the default
    /// namespace), plus the inherited bindings of its attributes' prefixes, so that
    /// [`NsContext::from_header`] can read the stream's and [`Element::write_to`] can re-declare
    /// attribute prefixes.
    decls: Vec<(String, String)>,
}

/// A child of an [`Element`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data with entities, character references and CDATA sections resolved.
    Text(String),
}

/// The namespace bindings in scope for the stream's depth-1 elements, which a stanza parsed alone
/// would otherwise have lost (docs/design.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsContext {
    /// The default namespace (`xmlns='…'` on the stream header).
    default_ns: String,
    /// Prefix bindings (`xmlns:stream='…'` on the stream header).
    prefixes: Vec<(String, String)>,
}

impl NsContext {
    /// The context of a XEP-0114 component stream: default namespace `jabber:component:accept`
    /// and the `stream` prefix bound to the streams namespace (xmpp.md §1).
    pub fn component() -> NsContext {
        NsContext {
            default_ns: ns::COMPONENT.to_owned(),
            prefixes: vec![("stream".to_owned(), ns::STREAMS.to_owned())],
        }
    }

    /// The context the stream header `header` (from [`Element::parse_start_tag`]) establishes for
    /// its children: its own namespace declarations.
    pub fn from_header(header: &Element) -> NsContext {
        let mut ctx = NsContext { default_ns: String::new(), prefixes: Vec::new() };
        for (prefix, uri) in &header.decls {
            if prefix.is_empty() {
                ctx.default_ns.clone_from(uri);
            } else {
                ctx.prefixes.push((prefix.clone(), uri.clone()));
            }
        }
        ctx
    }

    /// The default namespace, so that the session can check the server's stream is
    /// `jabber:component:accept` (`invalid-namespace` otherwise, XEP-0114 §3).
    pub fn default_ns(&self) -> &str {
        &self.default_ns
    }

    /// The namespace bound to `prefix`, if any.
    pub fn prefix(&self, prefix: &str) -> Option<&str> {
        self.prefixes.iter().find(|(p, _)| p == prefix).map(|(_, uri)| uri.as_str())
    }
}

/// Why bytes could not be parsed into an [`Element`]. All are stream-fatal (docs/design.md §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not well-formed XML or namespaces (mismatched tags, unknown prefix, trailing data…).
    NotWellFormed(String),
    /// RFC 6120 §11.1 restricted XML: a comment, processing instruction, DTD or an entity other
    /// than the five predefined ones.
    RestrictedXml(String),
    /// The bytes are not UTF-8, the only encoding XMPP allows (RFC 6120 §11.6).
    InvalidUtf8,
    /// Elements nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl ParseError {
    /// The RFC 6120 §4.9.3 stream error condition to send before closing the stream.
    pub fn stream_condition(&self) -> &'static str {
        match self {
            ParseError::NotWellFormed(_) | ParseError::InvalidUtf8 => "not-well-formed",
            ParseError::RestrictedXml(_) => "restricted-xml",
            ParseError::TooDeep => "policy-violation",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotWellFormed(why) => write!(f, "xml not well-formed: {why}"),
            ParseError::RestrictedXml(what) => write!(f, "restricted xml: {what}"),
            ParseError::InvalidUtf8 => f.write_str("xml is not valid utf-8"),
            ParseError::TooDeep => write!(f, "xml elements nested deeper than {MAX_DEPTH} levels"),
        }
    }
}

impl std::error::Error for ParseError {}

impl PartialEq for Element {
    fn eq(&self, other: &Element) -> bool {
        self.name == other.name
            && self.ns == other.ns
            && self.attrs.len() == other.attrs.len()
            && self.attrs.iter().all(|(name, value)| other.get_attr(name) == Some(value.as_str()))
            && self.nodes == other.nodes
    }
}

impl Eq for Element {}

impl Element {
    /// An element with local name `name` in namespace `ns`, no attributes, no children.
    /// `name` must be a valid XML name without prefix (it is written as given).
    pub fn new(name: &str, ns: &str) -> Element {
        Element { name: name.to_owned(), ns: ns.to_owned(), attrs: Vec::new(), nodes: Vec::new(), decls: Vec::new() }
    }

    /// Builder form of [`Element::set_attr`].
    pub fn attr(mut self, name: &str, value: &str) -> Element {
        self.set_attr(name, value);
        self
    }

    /// Builder form of [`Element::push_child`].
    pub fn child(mut self, child: Element) -> Element {
        self.push_child(child);
        self
    }

    /// Builder form of [`Element::push_text`].
    pub fn text(mut self, text: &str) -> Element {
        self.push_text(text);
        self
    }

    /// Sets attribute `name` (qualified name as it will be written, e.g. `xml:lang`), replacing
    /// any previous value. Namespace declarations are not attributes: a name of `xmlns` or
    /// `xmlns:…` is ignored when writing; the namespace comes from [`Element::new`].
    pub fn set_attr(&mut self, name: &str, value: &str) {
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => value.clone_into(v),
            None => self.attrs.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Appends a child element.
    pub fn push_child(&mut self, child: Element) {
        self.nodes.push(Node::Element(child));
    }

    /// Appends text, merged into the last node if that is text; empty text adds nothing.
    pub fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        match self.nodes.last_mut() {
            Some(Node::Text(last)) => last.push_str(text),
            _ => self.nodes.push(Node::Text(text.to_owned())),
        }
    }

    /// The local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace name; empty for "no namespace".
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Whether this element has local name `name` in namespace `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The value of attribute `name`, by qualified name as written (`to`, `xml:lang`). Namespace
    /// declarations (`xmlns`, `xmlns:p`) are not attributes.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// All attributes as `(qualified name, value)`, in document order.
    pub fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The child elements, in order (text nodes skipped).
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.nodes.iter().filter_map(|node| match node {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// All child nodes, elements and text, in order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The first child element with local name `name` in namespace `ns`.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }

    /// The concatenation of the direct text children (not of descendants).
    pub fn text_content(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            if let Node::Text(t) = node {
                out.push_str(t);
            }
        }
        out
    }

    /// Parse one complete element (a stanza from the framer) with namespaces resolved against `ctx`.
    ///
    /// Leading and trailing whitespace is allowed; anything else outside the element is not.
    pub fn parse(xml: &[u8], ctx: &NsContext) -> Result<Element, ParseError> {
        let text = std::str::from_utf8(xml).map_err(|_| ParseError::InvalidUtf8)?;
        parse_document(text, ctx, false)
    }

    /// Parse a stream header start tag (not closed) into an Element with no children.
    ///
    /// The header is the document's root, so only its own namespace declarations are in scope;
    /// they are kept for [`NsContext::from_header`]. A self-closing tag is accepted too.
    pub fn parse_start_tag(xml: &[u8]) -> Result<Element, ParseError> {
        let text = std::str::from_utf8(xml).map_err(|_| ParseError::InvalidUtf8)?;
        let empty = NsContext { default_ns: String::new(), prefixes: Vec::new() };
        parse_document(text, &empty, true)
    }

    /// Serialise. An element whose namespace equals `parent_ns` gets no xmlns; otherwise xmlns='…'.
    ///
    /// `parent_ns` is the default namespace in scope where the element is written (for a stanza,
    /// [`ns::COMPONENT`] as the stream header declares it). Elements in the [`ns::STREAMS`]
    /// namespace are written with the `stream:` prefix and no declaration, which the stream header
    /// provides. Attribute values use single quotes and escape `& < > ' "` plus tab, newline and
    /// carriage return as character references, so that attribute-value normalisation gives them
    /// back; text escapes `& < >` (hence `]]>` too) and carriage return. Characters XML cannot carry
    /// at all (most C0 controls, U+FFFE, U+FFFF) are written as U+FFFD, so that data from the SMS
    /// side can never make the stream ill-formed.
    pub fn write_to(&self, out: &mut String, parent_ns: &str) {
        // The `stream:` prefix, unless one of our attributes needs it bound elsewhere (then the
        // element declares the streams namespace as its default instead).
        let stream = self.ns == ns::STREAMS
            && !self.decls.iter().any(|(p, uri)| {
                p == "stream" && uri != ns::STREAMS && self.attrs.iter().any(|(n, _)| n.starts_with("stream:"))
            });
        out.push('<');
        if stream {
            out.push_str("stream:");
        }
        out.push_str(&self.name);
        let inner_ns = if stream {
            parent_ns
        } else {
            if self.ns != parent_ns {
                out.push_str(" xmlns='");
                escape_attr(&self.ns, out);
                out.push('\'');
            }
            &self.ns
        };
        // Re-declare the prefixes our attributes use (other than the predeclared `xml`).
        for (i, (name, _)) in self.attrs.iter().enumerate() {
            let Some((prefix, _)) = name.split_once(':') else {
                continue;
            };
            let seen = self
                .attrs
                .get(..i)
                .unwrap_or_default()
                .iter()
                .any(|(earlier, _)| earlier.split_once(':').map(|(p, _)| p) == Some(prefix));
            if prefix == "xml" || prefix == "xmlns" || seen {
                continue;
            }
            if let Some((_, uri)) = self.decls.iter().find(|(p, _)| p == prefix) {
                out.push_str(" xmlns:");
                out.push_str(prefix);
                out.push_str("='");
                escape_attr(uri, out);
                out.push('\'');
            }
        }
        for (name, value) in &self.attrs {
            if name == "xmlns" || name.starts_with("xmlns:") {
                continue;
            }
            out.push(' ');
            out.push_str(name);
            out.push_str("='");
            escape_attr(value, out);
            out.push('\'');
        }
        if self.nodes.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for node in &self.nodes {
            match node {
                Node::Element(child) => child.write_to(out, inner_ns),
                Node::Text(text) => escape_text(text, out),
            }
        }
        out.push_str("</");
        if stream {
            out.push_str("stream:");
        }
        out.push_str(&self.name);
        out.push('>');
    }

    /// [`Element::write_to`] into a new string.
    pub fn to_xml(&self, parent_ns: &str) -> String {
        let mut out = String::new();
        self.write_to(&mut out, parent_ns);
        out
    }
}

/// Appends `value` escaped for a single-quoted attribute value (see [`Element::write_to`]).
pub(crate) fn escape_attr(value: &str, out: &mut String) {
    escape(value, out, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '\'' => Some("&apos;"),
        '"' => Some("&quot;"),
        '\t' => Some("&#9;"),
        '\n' => Some("&#10;"),
        '\r' => Some("&#13;"),
        _ => None,
    });
}

/// Appends `text` escaped as character data (see [`Element::write_to`]).
pub(crate) fn escape_text(text: &str, out: &mut String) {
    escape(text, out, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '\r' => Some("&#13;"),
        _ => None,
    });
}

/// Copies `input` to `out`, replacing each character `special` maps and every character XML
/// cannot represent (written as U+FFFD).
fn escape(input: &str, out: &mut String, special: impl Fn(char) -> Option<&'static str>) {
    let mut run_start = 0;
    for (i, c) in input.char_indices() {
        let replacement = match special(c) {
            Some(r) => r,
            None if is_xml_char(c) => continue,
            None => "\u{fffd}",
        };
        out.push_str(input.get(run_start..i).unwrap_or_default());
        out.push_str(replacement);
        run_start = i + c.len_utf8();
    }
    out.push_str(input.get(run_start..).unwrap_or_default());
}

/// XML 1.0 §2.2 `Char`: the characters a document may contain (Rust `char` already excludes
/// surrogates).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{fffd}' | '\u{10000}'..)
}

/// Shorthand for a [`ParseError::NotWellFormed`].
fn not_well_formed(why: impl Into<String>) -> ParseError {
    ParseError::NotWellFormed(why.into())
}

/// Maps a quick-xml error: an unknown entity is restricted XML, anything else is not well-formed.
fn xml_error(err: &quick_xml::Error) -> ParseError {
    match err {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            ParseError::RestrictedXml(format!("entity reference &{name};"))
        }
        other => not_well_formed(other.to_string()),
    }
}

/// Fails if `text` contains a character XML 1.0 does not allow (e.g. from `&#1;`).
fn check_chars(text: &str) -> Result<(), ParseError> {
    match text.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(not_well_formed(format!("character U+{:04X} not allowed in xml", u32::from(c)))),
        None => Ok(()),
    }
}

/// Splits a qualified name into (prefix, local name); the prefix is empty if there is none.
fn split_qname(qname: &str) -> Result<(&str, &str), ParseError> {
    let (prefix, local) = qname.split_once(':').unwrap_or(("", qname));
    if local.is_empty() || local.contains(':') || (qname.contains(':') && prefix.is_empty()) {
        return Err(not_well_formed(format!("malformed qualified name {qname:?}")));
    }
    Ok((prefix, local))
}

/// The namespace bindings in scope while parsing: a stack of (prefix, namespace), innermost last;
/// prefix `""` is the default namespace.
struct Scope {
    /// The bindings, outermost first.
    bindings: Vec<(String, String)>,
}

impl Scope {
    /// The bindings of `ctx`, the scope a parsed element starts in.
    fn new(ctx: &NsContext) -> Scope {
        let mut bindings = vec![(String::new(), ctx.default_ns.clone())];
        bindings.extend(ctx.prefixes.iter().cloned());
        Scope { bindings }
    }

    /// The namespace bound to `prefix` (`""`: the default namespace), `xml` being predeclared.
    fn lookup(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(ns::XML);
        }
        self.bindings.iter().rev().find(|(p, _)| p == prefix).map(|(_, uri)| uri.as_str())
    }
}

/// Namespaces in XML 1.0 §3 constraints on a declaration of `prefix` (`""`: default) as `uri`.
fn check_declaration(prefix: &str, uri: &str) -> Result<(), ParseError> {
    let ok = match prefix {
        "xml" => uri == ns::XML,
        "xmlns" => false,
        "" => uri != ns::XML && uri != ns::XMLNS,
        _ => !uri.is_empty() && uri != ns::XML && uri != ns::XMLNS,
    };
    if ok {
        Ok(())
    } else {
        Err(not_well_formed(format!("illegal namespace declaration of prefix {prefix:?} as {uri:?}")))
    }
}

/// Builds the element of start tag `start`, pushing its namespace declarations onto `scope`.
fn open_element(start: &BytesStart<'_>, scope: &mut Scope) -> Result<Element, ParseError> {
    let mut attrs = Vec::new();
    let mut decls: Vec<(String, String)> = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| not_well_formed(format!("bad attribute: {e}")))?;
        if attr.value.contains('<') {
            return Err(not_well_formed("'<' in an attribute value"));
        }
        let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|e| xml_error(&e))?.into_owned();
        check_chars(&value)?;
        let key = attr.key.0;
        let declared = if key == "xmlns" { Some("") } else { key.strip_prefix("xmlns:") };
        match declared {
            Some(prefix) => {
                check_declaration(prefix, &value)?;
                decls.push((prefix.to_owned(), value));
            }
            None => attrs.push((key.to_owned(), value)),
        }
    }
    scope.bindings.extend(decls.iter().cloned());

    let qname = start.name().0;
    let (prefix, local) = split_qname(qname)?;
    if prefix == "xmlns" {
        return Err(not_well_formed("element with the xmlns prefix"));
    }
    let ns =
        scope.lookup(prefix).ok_or_else(|| not_well_formed(format!("unknown namespace prefix {prefix:?}")))?.to_owned();

    // Attribute prefixes must be bound too; remember inherited bindings so we can re-declare them.
    for (name, _) in &attrs {
        let (attr_prefix, _) = split_qname(name)?;
        if attr_prefix.is_empty() || attr_prefix == "xml" {
            continue;
        }
        let uri = scope
            .lookup(attr_prefix)
            .ok_or_else(|| not_well_formed(format!("unknown namespace prefix {attr_prefix:?}")))?;
        if !decls.iter().any(|(p, _)| p == attr_prefix) {
            decls.push((attr_prefix.to_owned(), uri.to_owned()));
        }
    }

    Ok(Element { name: local.to_owned(), ns, attrs, nodes: Vec::new(), decls })
}

/// The element being parsed: the open elements (with the scope size to restore when each
/// closes) and the finished root.
struct Tree {
    /// Open elements, outermost first, each with the scope length before its declarations.
    open: Vec<(Element, usize)>,
    /// The root element once it is closed.
    root: Option<Element>,
}

impl Tree {
    /// Attaches a closed element to its parent, or makes it the root.
    fn close(&mut self, element: Element) {
        match self.open.last_mut() {
            Some((parent, _)) => parent.push_child(element),
            None => self.root = Some(element),
        }
    }

    /// Appends character data to the innermost open element; outside the root only whitespace
    /// may appear.
    fn text(&mut self, text: &str) -> Result<(), ParseError> {
        match self.open.last_mut() {
            Some((element, _)) => {
                check_chars(text)?;
                element.push_text(text);
                Ok(())
            }
            None if text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) => Ok(()),
            None => Err(not_well_formed("text outside the element")),
        }
    }
}

/// Parses `text` as one element in context `ctx`; with `header`, the first start tag is the whole
/// element (a stream header, never closed).
fn parse_document(text: &str, ctx: &NsContext, header: bool) -> Result<Element, ParseError> {
    let mut reader = Reader::from_str(text);
    let mut scope = Scope::new(ctx);
    let mut tree = Tree { open: Vec::new(), root: None };
    loop {
        let event = reader.read_event().map_err(|e| match xml_error(&e) {
            ParseError::NotWellFormed(why) => not_well_formed(format!("{why} (at byte {})", reader.error_position())),
            other => other,
        })?;
        match event {
            Event::Start(_) | Event::Empty(_) if tree.root.is_some() => {
                return Err(not_well_formed("data after the element"));
            }
            Event::Start(start) => {
                if tree.open.len() >= MAX_DEPTH {
                    return Err(ParseError::TooDeep);
                }
                let mark = scope.bindings.len();
                let element = open_element(&start, &mut scope)?;
                if header {
                    scope.bindings.truncate(mark);
                    tree.close(element);
                } else {
                    tree.open.push((element, mark));
                }
            }
            Event::Empty(start) => {
                if tree.open.len() >= MAX_DEPTH {
                    return Err(ParseError::TooDeep);
                }
                let mark = scope.bindings.len();
                let element = open_element(&start, &mut scope)?;
                scope.bindings.truncate(mark);
                tree.close(element);
            }
            Event::End(_) => {
                // quick-xml has already checked that the name matches the start tag.
                let (element, mark) = tree.open.pop().ok_or_else(|| not_well_formed("end tag without a start tag"))?;
                scope.bindings.truncate(mark);
                tree.close(element);
            }
            Event::Text(raw) => {
                if raw.contains("]]>") {
                    return Err(not_well_formed("']]>' in text"));
                }
                tree.text(&raw.xml10_content())?;
            }
            Event::CData(cdata) => {
                if tree.open.is_empty() {
                    return Err(not_well_formed("CDATA section outside the element"));
                }
                tree.text(&cdata.xml10_content())?;
            }
            Event::GeneralRef(reference) => {
                if tree.open.is_empty() {
                    return Err(not_well_formed("reference outside the element"));
                }
                let c = if reference.is_char_ref() {
                    match reference.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => c,
                        _ => {
                            return Err(not_well_formed(format!("invalid character reference &{};", &*reference)));
                        }
                    }
                } else {
                    match &*reference {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(ParseError::RestrictedXml(format!("entity reference &{other};")));
                        }
                    }
                };
                tree.text(c.encode_utf8(&mut [0u8; 4]))?;
            }
            Event::Comment(_) => return Err(ParseError::RestrictedXml("comment".to_owned())),
            Event::PI(_) => {
                return Err(ParseError::RestrictedXml("processing instruction".to_owned()));
            }
            Event::Decl(_) => {
                return Err(ParseError::RestrictedXml("xml declaration inside the stream".to_owned()));
            }
            Event::DocType(_) => {
                return Err(ParseError::RestrictedXml("document type declaration".to_owned()));
            }
            Event::Eof => break,
        }
    }
    if !tree.open.is_empty() {
        return Err(not_well_formed("element not closed"));
    }
    tree.root.ok_or_else(|| not_well_formed("no element"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<Element, ParseError> {
        Element::parse(xml.as_bytes(), &NsContext::component())
    }

    /// Writes `element` as a stanza and parses it back.
    fn round_trip(element: &Element) -> Element {
        let xml = element.to_xml(ns::COMPONENT);
        parse(&xml).unwrap_or_else(|e| panic!("{xml}: {e}"))
    }

    /// The stanza Prosody 0.12 sent in the xmpp.md §1 transcript, byte for byte.
    const PROSODY_MESSAGE: &str = "<message type='chat' id='25543a3f…' from='alice@localhost/test' \
        xml:lang='en' to='+15551234567@sms.localhost'><body>hello &lt;sms&gt; &amp; co</body>\
        <request xmlns='urn:xmpp:receipts'/></message>";

    #[test]
    fn prosody_message() {
        let message = parse(PROSODY_MESSAGE).expect("parses");
        assert!(message.is("message", ns::COMPONENT));
        assert_eq!(message.get_attr("type"), Some("chat"));
        assert_eq!(message.get_attr("id"), Some("25543a3f…"));
        assert_eq!(message.get_attr("from"), Some("alice@localhost/test"));
        assert_eq!(message.get_attr("to"), Some("+15551234567@sms.localhost"));
        assert_eq!(message.get_attr("xml:lang"), Some("en"));
        assert_eq!(message.attrs().count(), 5);
        let body = message.get_child("body", ns::COMPONENT).expect("body");
        assert_eq!(body.text_content(), "hello <sms> & co");
        assert_eq!(body.nodes().len(), 1, "text pieces merged into one node");
        let request = message.get_child("request", ns::RECEIPTS).expect("receipt request");
        assert!(request.nodes().is_empty());
        assert_eq!(message.children().count(), 2);
        // Written back exactly as received, and re-parsed to an equal tree.
        assert_eq!(message.to_xml(ns::COMPONENT), PROSODY_MESSAGE);
        assert_eq!(round_trip(&message), message);
    }

    #[test]
    fn stream_error_with_prefix() {
        let xml = "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
            <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text>\
            </stream:error>";
        let error = parse(xml).expect("parses");
        assert!(error.is("error", ns::STREAMS));
        assert!(error.get_child("conflict", ns::STREAM_ERRORS).is_some());
        assert_eq!(
            error.get_child("text", ns::STREAM_ERRORS).map(Element::text_content),
            Some("Replaced by new connection".to_owned())
        );
        assert_eq!(error.to_xml(ns::COMPONENT), xml);
        // Built by hand, it is written the same way.
        let built = Element::new("error", ns::STREAMS)
            .child(Element::new("conflict", ns::STREAM_ERRORS))
            .child(Element::new("text", ns::STREAM_ERRORS).text("Replaced by new connection"));
        assert_eq!(built, error);
        assert_eq!(built.to_xml(ns::COMPONENT), xml);
    }

    #[test]
    fn stream_element_declared_as_default_namespace() {
        let error = parse("<error xmlns='http://etherx.jabber.org/streams'><x/></error>").expect("parses");
        assert!(error.is("error", ns::STREAMS));
        assert!(error.get_child("x", ns::STREAMS).is_some());
        assert_eq!(round_trip(&error), error);
    }

    #[test]
    fn prefixed_children() {
        let xml = "<message xmlns:r='urn:xmpp:receipts' xmlns:c='jabber:client'>\
            <r:received id='1'/><c:body>hi</c:body><r:x><y/></r:x></message>";
        let message = parse(xml).expect("parses");
        assert!(message.is("message", ns::COMPONENT));
        let received = message.get_child("received", ns::RECEIPTS).expect("received");
        assert_eq!(received.get_attr("id"), Some("1"));
        assert_eq!(message.get_child("body", "jabber:client").map(Element::text_content), Some("hi".to_owned()));
        // Unprefixed children of a prefixed element keep the default namespace.
        let x = message.get_child("x", ns::RECEIPTS).expect("x");
        assert!(x.get_child("y", ns::COMPONENT).is_some());
        assert_eq!(round_trip(&message), message);
        assert_eq!(
            message.to_xml(ns::COMPONENT),
            "<message><received xmlns='urn:xmpp:receipts' id='1'/>\
             <body xmlns='jabber:client'>hi</body>\
             <x xmlns='urn:xmpp:receipts'><y xmlns='jabber:component:accept'/></x></message>"
        );
    }

    #[test]
    fn prefixed_attributes_are_redeclared() {
        let xml = "<iq xmlns:f='urn:foo'><q xmlns='urn:q' f:bar='1' xml:lang='de'/></iq>";
        let iq = parse(xml).expect("parses");
        let q = iq.get_child("q", "urn:q").expect("q");
        assert_eq!(q.get_attr("f:bar"), Some("1"));
        assert_eq!(q.get_attr("xml:lang"), Some("de"));
        assert_eq!(iq.to_xml(ns::COMPONENT), "<iq><q xmlns='urn:q' xmlns:f='urn:foo' f:bar='1' xml:lang='de'/></iq>");
        assert_eq!(round_trip(&iq), iq);
    }

    #[test]
    fn stream_prefix_rebound_by_an_attribute() {
        let e = parse("<error xmlns='http://etherx.jabber.org/streams' xmlns:stream='urn:o' stream:a='1'/>")
            .expect("parses");
        assert!(e.is("error", ns::STREAMS));
        assert_eq!(
            e.to_xml(ns::COMPONENT),
            "<error xmlns='http://etherx.jabber.org/streams' xmlns:stream='urn:o' stream:a='1'/>"
        );
        assert_eq!(round_trip(&e), e);
    }

    #[test]
    fn namespace_declarations_are_not_attributes() {
        let e = parse("<a xmlns='jabber:component:accept' xmlns:p='urn:p' b='1'/>").expect("ok");
        assert_eq!(e.get_attr("xmlns"), None);
        assert_eq!(e.get_attr("xmlns:p"), None);
        assert_eq!(e.attrs().collect::<Vec<_>>(), [("b", "1")]);
        // Declarations do not take part in equality.
        assert_eq!(e, Element::new("a", ns::COMPONENT).attr("b", "1"));
        // And one set by hand is not written twice.
        let odd = Element::new("a", "urn:a").attr("xmlns", "urn:b");
        assert_eq!(odd.to_xml(""), "<a xmlns='urn:a'/>");
    }

    #[test]
    fn undeclared_default_namespace() {
        let e = parse("<message><x xmlns=''><y/></x></message>").expect("parses");
        let x = e.get_child("x", "").expect("x in no namespace");
        assert!(x.get_child("y", "").is_some());
        assert_eq!(e.to_xml(ns::COMPONENT), "<message><x xmlns=''><y/></x></message>");
        assert_eq!(round_trip(&e), e);
    }

    #[test]
    fn builder_and_accessors() {
        let mut message = Element::new("message", ns::COMPONENT)
            .attr("to", "+15551234567@sms.example.com")
            .attr("type", "chat")
            .child(Element::new("body", ns::COMPONENT).text("hi ").text("there"))
            .child(Element::new("request", ns::RECEIPTS));
        message.set_attr("type", "normal");
        message.push_text("");
        assert_eq!(message.get_attr("type"), Some("normal"));
        let body = message.get_child("body", ns::COMPONENT).expect("body");
        assert_eq!(body.nodes(), [Node::Text("hi there".to_owned())]);
        assert_eq!(message.nodes().len(), 2);
        assert_eq!(message.name(), "message");
        assert_eq!(message.ns(), ns::COMPONENT);
        assert_eq!(
            message.to_xml(ns::COMPONENT),
            "<message to='+15551234567@sms.example.com' type='normal'><body>hi there</body>\
             <request xmlns='urn:xmpp:receipts'/></message>"
        );
        assert_eq!(round_trip(&message), message);
        // Written at the top level (no default namespace in scope), the namespace is declared.
        assert_eq!(Element::new("ping", ns::PING).to_xml(""), "<ping xmlns='urn:xmpp:ping'/>");
    }

    #[test]
    fn mixed_content_text_content_and_order() {
        let e = parse("<body>a<b>x</b>c&amp;<![CDATA[<d>]]>&#x65;</body>").expect("parses");
        assert_eq!(e.text_content(), "ac&<d>e");
        assert_eq!(e.nodes().len(), 3);
        assert_eq!(e.nodes()[0], Node::Text("a".to_owned()));
        assert_eq!(e.nodes()[2], Node::Text("c&<d>e".to_owned()));
        assert_eq!(round_trip(&e), e);
    }

    #[test]
    fn escaping_of_every_special_character() {
        let text = "a & b < c > d ]]> e \" f ' g \r\n h \t i";
        let value = "a & b < c > d ' e \" f \n g \t h \r i ]]>";
        let e = Element::new("body", ns::COMPONENT).attr("v", value).text(text);
        let xml = e.to_xml(ns::COMPONENT);
        assert_eq!(
            xml,
            "<body v='a &amp; b &lt; c &gt; d &apos; e &quot; f &#10; g &#9; h &#13; i ]]&gt;'>\
             a &amp; b &lt; c &gt; d ]]&gt; e \" f ' g &#13;\n h \t i</body>"
        );
        let back = round_trip(&e);
        assert_eq!(back.get_attr("v"), Some(value));
        assert_eq!(back.text_content(), text);
        assert_eq!(back, e);
    }

    #[test]
    fn characters_xml_cannot_carry_are_replaced() {
        let e = Element::new("body", ns::COMPONENT).attr("v", "a\u{1}b").text("c\u{0}d\u{fffe}e\u{1f600}");
        assert_eq!(e.to_xml(ns::COMPONENT), "<body v='a\u{fffd}b'>c\u{fffd}d\u{fffd}e\u{1f600}</body>");
    }

    #[test]
    fn attribute_values_are_normalised() {
        let e = parse("<a v='x\ny\tz\r\nw' r='&#10;&#9;&#13;&lt;&quot;'/>").expect("parses");
        assert_eq!(e.get_attr("v"), Some("x y z w"));
        assert_eq!(e.get_attr("r"), Some("\n\t\r<\""));
    }

    #[test]
    fn text_line_ends_are_normalised() {
        let e = parse("<a>x\r\ny\rz&#13;</a>").expect("parses");
        assert_eq!(e.text_content(), "x\ny\nz\r");
        assert_eq!(round_trip(&e), e);
    }

    #[test]
    fn character_references() {
        let e = parse("<a>&#65;&#x42;&#x1F600;</a>").expect("parses");
        assert_eq!(e.text_content(), "AB\u{1f600}");
        for bad in ["<a>&#0;</a>", "<a>&#1;</a>", "<a>&#xFFFE;</a>", "<a>&#xD800;</a>", "<a>&#x;</a>"] {
            assert!(matches!(parse(bad), Err(ParseError::NotWellFormed(_))), "{bad}");
        }
        assert!(matches!(parse("<a b='&#1;'/>"), Err(ParseError::NotWellFormed(_))));
        assert!(matches!(parse("<a>\u{1}</a>"), Err(ParseError::NotWellFormed(_))));
    }

    #[test]
    fn bad_entity_is_restricted() {
        for xml in ["<a>&nbsp;</a>", "<a b='&foo;'/>", "<a>x &copy; y</a>"] {
            let err = parse(xml).expect_err(xml);
            assert!(matches!(err, ParseError::RestrictedXml(_)), "{xml}: {err:?}");
            assert_eq!(err.stream_condition(), "restricted-xml");
        }
        assert!(matches!(parse("<a>a & b</a>"), Err(ParseError::NotWellFormed(_))));
    }

    #[test]
    fn comments_pis_and_dtds_are_restricted() {
        for xml in [
            "<a><!-- c --></a>",
            "<!-- c --><a/>",
            "<a/><!-- c -->",
            "<a><?pi x?></a>",
            "<?xml version='1.0'?><a/>",
            "<!DOCTYPE a><a/>",
        ] {
            let err = parse(xml).expect_err(xml);
            assert!(matches!(err, ParseError::RestrictedXml(_)), "{xml}: {err:?}");
        }
    }

    #[test]
    fn bad_utf8() {
        assert_eq!(Element::parse(b"<a>\xff</a>", &NsContext::component()), Err(ParseError::InvalidUtf8));
        assert_eq!(Element::parse_start_tag(b"<s:s id='\xc3'>"), Err(ParseError::InvalidUtf8));
        assert_eq!(ParseError::InvalidUtf8.stream_condition(), "not-well-formed");
    }

    #[test]
    fn not_well_formed() {
        for xml in [
            "",
            "   ",
            "<a>",
            "<a></b>",
            "<a><b></a></b>",
            "</a>",
            "<a/></a>",
            "<a/>junk",
            "junk<a/>",
            "<a/><b/>",
            "<a/>&amp;",
            "<a/><![CDATA[x]]>",
            "<a>]]></a>",
            "<a b='1' b='2'/>",
            "<a b=1/>",
            "<a b='<'/>",
            "<p:a/>",
            "<a p:b='1'/>",
            "<a xmlns:p=''/>",
            "<a xmlns:xml='urn:x'/>",
            "<a xmlns:xmlns='urn:x'/>",
            "<a xmlns='http://www.w3.org/XML/1998/namespace'/>",
            "<xmlns:a/>",
            "<:a/>",
            "<a:/>",
            "<a:b:c/>",
            "<a b='&amp'/>",
        ] {
            let err = parse(xml).expect_err(xml);
            assert!(matches!(err, ParseError::NotWellFormed(_)), "{xml:?}: {err:?}");
            assert_eq!(err.stream_condition(), "not-well-formed");
        }
        // Whitespace around the element is fine.
        assert!(parse("\n <a/> \n").is_ok());
    }

    #[test]
    fn prefix_scope_ends_with_its_element() {
        assert!(parse("<a><b xmlns:p='urn:p'/><p:c/></a>").is_err());
        assert!(parse("<a><b xmlns:p='urn:p'><p:c/></b></a>").is_ok());
        // The stream's `stream` prefix comes from the context, and can be redeclared.
        let e = parse("<a xmlns:stream='urn:other'><stream:b/></a>").expect("parses");
        assert!(e.get_child("b", "urn:other").is_some());
    }

    #[test]
    fn depth_cap() {
        let nested = |depth: usize| "<a>".repeat(depth) + &"</a>".repeat(depth);
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(parse(&nested(MAX_DEPTH + 1)), Err(ParseError::TooDeep));
        let mut empty_at_bottom = "<a>".repeat(MAX_DEPTH);
        empty_at_bottom.push_str("<b/>");
        empty_at_bottom.push_str(&"</a>".repeat(MAX_DEPTH));
        assert_eq!(parse(&empty_at_bottom), Err(ParseError::TooDeep));
        assert_eq!(ParseError::TooDeep.stream_condition(), "policy-violation");
    }

    #[test]
    fn server_stream_header() {
        // xmpp.md §1, the header Prosody sends (attribute order as in the transcript).
        let header = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
            id='f8d3127b-3238-4bb7-b6c4-323bf4cbdbfb' xml:lang='en' from='sms.example.com' \
            xmlns='jabber:component:accept'>";
        let e = Element::parse_start_tag(header.as_bytes()).expect("parses");
        assert!(e.is("stream", ns::STREAMS));
        assert_eq!(e.get_attr("id"), Some("f8d3127b-3238-4bb7-b6c4-323bf4cbdbfb"));
        assert_eq!(e.get_attr("from"), Some("sms.example.com"));
        assert_eq!(e.get_attr("xml:lang"), Some("en"));
        assert_eq!(e.get_attr("xmlns"), None);
        assert!(e.nodes().is_empty());
        let ctx = NsContext::from_header(&e);
        assert_eq!(ctx, NsContext::component());
        assert_eq!(ctx.default_ns(), ns::COMPONENT);
        assert_eq!(ctx.prefix("stream"), Some(ns::STREAMS));
        assert_eq!(ctx.prefix("other"), None);
        // Stanzas parsed in that context.
        let handshake = Element::parse(b"<handshake/>", &ctx).expect("parses");
        assert!(handshake.is("handshake", ns::COMPONENT));
    }

    #[test]
    fn stream_header_edge_cases() {
        // Self-closing (an empty stream) is accepted.
        assert!(Element::parse_start_tag(b"<stream:stream xmlns:stream='urn:s'/>").is_ok());
        // Without declarations, the `stream` prefix is unknown.
        assert!(matches!(Element::parse_start_tag(b"<stream:stream>"), Err(ParseError::NotWellFormed(_))));
        // A header without a default namespace gives stanzas no namespace.
        let e = Element::parse_start_tag(b"<stream:stream xmlns:stream='urn:s'>").expect("ok");
        assert_eq!(NsContext::from_header(&e).default_ns(), "");
        for bad in ["<a xmlns:s='urn:s'><b>", "<a>x", "<a></a>", "<a><!-- c -->", ""] {
            assert!(Element::parse_start_tag(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_display() {
        assert_eq!(ParseError::RestrictedXml("comment".to_owned()).to_string(), "restricted xml: comment");
        assert_eq!(ParseError::TooDeep.to_string(), "xml elements nested deeper than 64 levels");
        let err = parse("<a>&nbsp;</a>").expect_err("restricted");
        assert_eq!(err.to_string(), "restricted xml: entity reference &nbsp;");
    }
}
