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
/// Attributes one element may carry. Stanzas carry about six, payload elements fewer; the
/// checks on each attribute (quick-xml's duplicate check, prefix lookups) are linear in the
/// attributes before it, so an unbounded count (17,000 fit in a 512 KiB stanza) would be
/// quadratic work on the one event loop.
pub const MAX_ATTRIBUTES: usize = 64;
/// Namespace declarations one element may carry (each is also looked up per prefixed name).
pub const MAX_DECLARATIONS: usize = 16;

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
    /// An element with more than [`MAX_ATTRIBUTES`] attributes or [`MAX_DECLARATIONS`]
    /// namespace declarations.
    TooManyAttributes,
}

impl ParseError {
    /// The RFC 6120 §4.9.3 stream error condition to send before closing the stream.
    pub fn stream_condition(&self) -> &'static str {
        match self {
            ParseError::NotWellFormed(_) | ParseError::InvalidUtf8 => "not-well-formed",
            ParseError::RestrictedXml(_) => "restricted-xml",
            ParseError::TooDeep | ParseError::TooManyAttributes => "policy-violation",
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
            ParseError::TooManyAttributes => write!(
                f,
                "an xml element with more than {MAX_ATTRIBUTES} attributes or {MAX_DECLARATIONS} namespace declarations"
            ),
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
    for (n, attr) in start.attributes().enumerate() {
        // Checked before the attribute is looked at: the work per attribute grows with `n`.
        if n >= MAX_ATTRIBUTES + MAX_DECLARATIONS {
            return Err(ParseError::TooManyAttributes);
        }
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
    if attrs.len() > MAX_ATTRIBUTES || decls.len() > MAX_DECLARATIONS {
        return Err(ParseError::TooManyAttributes);
    }
    scope.bindings.extend(decls.iter().cloned());

    let qname = start.name().0;
    let (prefix, local) = split_qname(qname)?;
    if prefix == "xmlns" {
        return Err(not_well_formed("element with the xmlns prefix"));
    }
    let ns =
        scope.lookup(prefix).ok_or_else(|| not_well_formed(format!("unknown namespace prefix {prefix:?}")))?.to_owned();
    // `<xml:x/>` names an element in the XML namespace, which no XMPP payload uses and which
    // cannot be written back without its reserved prefix (found by fuzzing).
    if ns == ns::XML {
        return Err(not_well_formed("element in the reserved xml namespace"));
    }

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
#[path = "element_tests.rs"]
mod tests;
