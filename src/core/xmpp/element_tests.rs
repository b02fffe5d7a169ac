//! Tests of [`super`]: parsing, writing, namespaces, restricted XML and bounds.

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
    let e =
        parse("<error xmlns='http://etherx.jabber.org/streams' xmlns:stream='urn:o' stream:a='1'/>").expect("parses");
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

#[test]
fn issue6_attributes_and_declarations_per_element_are_bounded() {
    let attrs = |n: usize, prefixed: bool| -> String {
        let list: String =
            (0..n).map(|i| if prefixed { format!(" p:a{i}='v'") } else { format!(" a{i}='v'") }).collect();
        format!("<message xmlns:p='urn:p'{list}/>")
    };
    assert!(parse(&attrs(MAX_ATTRIBUTES, false)).is_ok());
    assert_eq!(parse(&attrs(MAX_ATTRIBUTES + 1, false)), Err(ParseError::TooManyAttributes));
    // What fits in one 512 KiB stanza: refused at the bound, before the quadratic work.
    let huge = attrs(17_000, true);
    assert!(huge.len() < 512 * 1024);
    assert_eq!(parse(&huge), Err(ParseError::TooManyAttributes));
    let decls: String = (0..=MAX_DECLARATIONS).map(|i| format!(" xmlns:p{i}='urn:{i}'")).collect();
    assert_eq!(parse(&format!("<message{decls}/>")), Err(ParseError::TooManyAttributes));
    let child = attrs(MAX_ATTRIBUTES + 1, false).replacen("<message", "<x", 1);
    assert_eq!(parse(&format!("<message>{child}</message>")), Err(ParseError::TooManyAttributes), "children too");
    assert_eq!(ParseError::TooManyAttributes.stream_condition(), "policy-violation");
}

#[test]
fn an_element_in_the_xml_namespace_is_refused() {
    // Found by the framer fuzz target: it parsed, and was written back as an illegal default
    // namespace declaration.
    assert!(matches!(parse("<v><xml:l/></v>"), Err(ParseError::NotWellFormed(_))));
    assert!(matches!(parse("<xml:message/>"), Err(ParseError::NotWellFormed(_))));
    assert!(parse("<message xml:lang='en'/>").is_ok(), "xml: attributes are fine");
}
