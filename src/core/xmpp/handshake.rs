//! XEP-0114 (Jabber Component Protocol) §3: the component's stream header and `<handshake/>`.
//!
//! Owns the exact bytes the component sends to open its stream and to authenticate. It does no
//! I/O and keeps no state: the session decides when to send them and reads the server's header and
//! `<handshake/>` reply through the framer. There is no `version='1.0'`, no stream features, no
//! SASL and no stream restart (docs/xmpp.md §1).

use super::sha1::sha1;

/// XEP-0114 §3: the handshake digest, lowercase hex of SHA-1(stream id ‖ shared secret).
///
/// `stream_id` is the `id` attribute of the server's stream header, hashed exactly as received
/// (after XML attribute-value normalisation). Lowercase because the XEP says so; Prosody compares
/// case-insensitively anyway.
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let mut input = Vec::with_capacity(stream_id.len() + secret.len());
    input.extend_from_slice(stream_id.as_bytes());
    input.extend_from_slice(secret.as_bytes());
    let mut out = String::with_capacity(40);
    for byte in sha1(&input) {
        out.push(hex_digit(byte >> 4));
        out.push(hex_digit(byte & 0x0f));
    }
    out
}

/// The stream header the component sends first, XML declaration included.
///
/// XEP-0114 §3: `to` is the component's own domain, not the server's. The `stream` prefix is
/// declared here, which is why stream-level elements are written with that prefix and no
/// declaration of their own (see `Element::write_to`). The domain is escaped as an attribute
/// value, so a stray quote in the configuration cannot break the stream.
pub fn stream_header(component_domain: &str) -> String {
    let mut out = String::with_capacity(160 + component_domain.len());
    out.push_str("<?xml version='1.0'?><stream:stream xmlns='");
    out.push_str(super::ns::COMPONENT);
    out.push_str("' xmlns:stream='");
    out.push_str(super::ns::STREAMS);
    out.push_str("' to='");
    super::element::escape_attr(component_domain, &mut out);
    out.push_str("'>");
    out
}

/// The `<handshake>` element carrying `digest` (from [`handshake_digest`]), XEP-0114 §3.
///
/// It inherits `jabber:component:accept` from the stream header, so it has no `xmlns`. The digest
/// is escaped as text even though a hex string never needs it, so that any input stays well-formed.
pub fn handshake_element(digest: &str) -> String {
    let mut out = String::with_capacity(digest.len() + 23);
    out.push_str("<handshake>");
    super::element::escape_text(digest, &mut out);
    out.push_str("</handshake>");
    out
}

/// The lowercase hex digit for a value below 16.
fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::xmpp::element::{Element, NsContext};
    use crate::core::xmpp::ns;

    #[test]
    fn digest_matches_the_xep_0114_vector() {
        // The xmpp-rs `parsers/src/component.rs` vector, recomputed with sha1sum (xmpp.md §1).
        assert_eq!(handshake_digest("sid", "123456"), "9accec263ab84a43c6037ccf7cd48cb1d3f6df8e");
    }

    #[test]
    fn digest_hashes_the_concatenation() {
        // printf 'f8d3127b-3238-4bb7-b6c4-323bf4cbdbfbsecret' | sha1sum
        assert_eq!(
            handshake_digest("f8d3127b-3238-4bb7-b6c4-323bf4cbdbfb", "secret"),
            handshake_digest("", "f8d3127b-3238-4bb7-b6c4-323bf4cbdbfbsecret")
        );
        assert_eq!(handshake_digest("", ""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn stream_header_is_byte_exact() {
        assert_eq!(
            stream_header("sms.example.com"),
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
             xmlns:stream='http://etherx.jabber.org/streams' to='sms.example.com'>"
        );
    }

    #[test]
    fn stream_header_escapes_the_domain() {
        let header = stream_header("a'b\"c<d>&e");
        assert!(header.ends_with(" to='a&apos;b&quot;c&lt;d&gt;&amp;e'>"), "{header}");
        // It still parses, and the domain comes back unchanged.
        let start = header.strip_prefix("<?xml version='1.0'?>").expect("declaration first");
        let parsed = Element::parse_start_tag(start.as_bytes()).expect("header parses");
        assert!(parsed.is("stream", ns::STREAMS));
        assert_eq!(parsed.get_attr("to"), Some("a'b\"c<d>&e"));
        assert_eq!(NsContext::from_header(&parsed).default_ns(), ns::COMPONENT);
    }

    #[test]
    fn handshake_element_wraps_the_digest() {
        let digest = handshake_digest("sid", "123456");
        let xml = handshake_element(&digest);
        assert_eq!(xml, "<handshake>9accec263ab84a43c6037ccf7cd48cb1d3f6df8e</handshake>");
        let parsed = Element::parse(xml.as_bytes(), &NsContext::component()).expect("parses");
        assert!(parsed.is("handshake", ns::COMPONENT));
        assert_eq!(parsed.text_content(), digest);
    }
}
