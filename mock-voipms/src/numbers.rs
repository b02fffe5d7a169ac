//! Phone numbers: parsing the three NANP input forms (`NXXNXXXXXX`, `1NXXNXXXXXX`,
//! `+1NXXNXXXXXX`) into 10 stored digits, and formatting them per a DID's dial mode
//! (1 = NANPA, 10 digits; 2 = E164, `+1` and 10 digits).

/// Parse a NANP number into its 10 digits.
///
/// The area code must start with 2–9. The exchange code is checked (2–9) only when `strict`:
/// VoIP.ms's own documentation uses fictional numbers such as `5551234567`, whose exchange
/// starts with 1, so the lenient form is the default (switch `strict_nanp`).
pub(crate) fn parse_nanp(input: &str, strict: bool) -> Option<String> {
    let s = input.trim();
    let digits = if let Some(rest) = s.strip_prefix("+1") {
        rest
    } else if s.len() == 11 && s.starts_with('1') {
        &s[1..]
    } else {
        s
    };
    let b = digits.as_bytes();
    if b.len() != 10 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b[0] < b'2' || (strict && b[3] < b'2') {
        return None;
    }
    Some(digits.to_string())
}

/// A sender that is either a NANP number (stored as 10 digits) or a short code (5–6 digits,
/// stored as is). Used for inbound `from`.
pub(crate) fn parse_sender(input: &str, strict: bool) -> Option<String> {
    if let Some(n) = parse_nanp(input, strict) {
        return Some(n);
    }
    let s = input.trim();
    if (5..=6).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(s.to_string());
    }
    None
}

/// A stored number as shown to clients: `+1` prefix when `e164`; short codes unchanged.
pub(crate) fn format(stored: &str, e164: bool) -> String {
    if e164 && stored.len() == 10 { format!("+1{stored}") } else { stored.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_forms() {
        for s in ["5145550100", "15145550100", "+15145550100", " 5145550100 "] {
            assert_eq!(parse_nanp(s, true).as_deref(), Some("5145550100"), "{s}");
        }
        for s in [
            "",
            "514555010",
            "51455501000",
            "1514555010",
            "0145550100",
            "+25145550100",
            "51455501OO",
            "+1 514 555 0100",
        ] {
            assert_eq!(parse_nanp(s, false), None, "{s}");
        }
        assert_eq!(parse_nanp("5551234567", false).as_deref(), Some("5551234567"));
        assert_eq!(parse_nanp("5551234567", true), None);
    }

    #[test]
    fn short_codes_and_format() {
        assert_eq!(parse_sender("12345", false).as_deref(), Some("12345"));
        assert_eq!(parse_sender("1234", false), None);
        assert_eq!(format("5145550100", true), "+15145550100");
        assert_eq!(format("5145550100", false), "5145550100");
        assert_eq!(format("12345", true), "12345");
    }
}
