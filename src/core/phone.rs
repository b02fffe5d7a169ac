//! NANP phone numbers (US/Canada) and the contact JID localparts that carry them.
//!
//! VoIP.ms sends to 10-digit NANP numbers only and shows numbers as 10 digits or `+1` and 10
//! digits depending on the DID's dial mode (voipms.md §9). We accept `NXXNXXXXXX`,
//! `1NXXNXXXXXX` and `+1NXXNXXXXXX` everywhere, store 10 digits, and show `+1…` in JIDs.
//! Logs show only the last four digits ([`redact`]).

use std::fmt;

/// A valid North American number: area code and exchange both start with 2–9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nanp([u8; 10]);

impl Nanp {
    /// Parse one of the three accepted forms (no spaces or punctuation).
    pub fn parse(s: &str) -> Option<Nanp> {
        let digits =
            s.strip_prefix("+1").or_else(|| if s.len() == 11 { s.strip_prefix('1') } else { None }).unwrap_or(s);
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let b = digits.as_bytes();
        if b[0] < b'2' || b[3] < b'2' {
            return None;
        }
        let mut out = [0u8; 10];
        out.copy_from_slice(b);
        Some(Nanp(out))
    }

    /// Parse what a person types: spaces, dots, dashes and parentheses are ignored
    /// (`+1 (555) 234-5678`).
    pub fn parse_human(s: &str) -> Option<Nanp> {
        let cleaned: String = s.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}')).collect();
        Nanp::parse(&cleaned)
    }

    /// The 10 digits VoIP.ms expects in `did`, `dst` and `contact`.
    pub fn ten_digits(&self) -> &str {
        // The array holds ASCII digits only (checked in `parse`).
        std::str::from_utf8(&self.0).unwrap_or("0000000000")
    }

    /// The E.164 form, `+1NNNNNNNNNN`, used in JID localparts.
    pub fn e164(&self) -> String {
        format!("+1{}", self.ten_digits())
    }

    /// The last four digits, for logs.
    pub fn last4(&self) -> &str {
        &self.ten_digits()[6..]
    }
}

impl fmt::Display for Nanp {
    /// Shows the redacted form: full numbers never reach logs by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "…{}", self.last4())
    }
}

/// A US/Canadian short code: 5 or 6 digits (CTIA's common short codes), the numbers banks,
/// 2FA services and shops text from. VoIP.ms delivers texts from them; whether it sends to them
/// is VoIP.ms's call (its `invalid_dst` says no).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortCode {
    digits: [u8; 6],
    len: u8,
}

impl ShortCode {
    /// Parse 5 or 6 ASCII digits (nothing else).
    pub fn parse(s: &str) -> Option<ShortCode> {
        if !(5..=6).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut digits = [0u8; 6];
        digits[..s.len()].copy_from_slice(s.as_bytes());
        Some(ShortCode { digits, len: s.len() as u8 })
    }

    /// Parse what a person types: spaces and dashes are ignored (`123 45`).
    pub fn parse_human(s: &str) -> Option<ShortCode> {
        let cleaned: String = s.chars().filter(|c| !matches!(c, ' ' | '-' | '\u{a0}')).collect();
        ShortCode::parse(&cleaned)
    }

    /// The digits, as VoIP.ms and JID localparts use them.
    pub fn digits(&self) -> &str {
        // Only ASCII digits are stored (checked in `parse`).
        std::str::from_utf8(&self.digits[..self.len as usize]).unwrap_or("00000")
    }
}

/// Where a user's message goes: a NANP number or a short code (xmpp.md §8.7: a 5–6 digit short
/// code is sent; only VoIP.ms's `invalid_dst` refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Destination {
    /// A US/Canadian number.
    Nanp(Nanp),
    /// A short code.
    ShortCode(ShortCode),
}

impl Destination {
    /// Parse a NANP number in one of its three forms, or a short code (no punctuation).
    pub fn parse(s: &str) -> Option<Destination> {
        Nanp::parse(s).map(Destination::Nanp).or_else(|| ShortCode::parse(s).map(Destination::ShortCode))
    }

    /// What VoIP.ms gets in `dst` and `contact`: 10 digits, or the short code.
    pub fn digits(&self) -> &str {
        match self {
            Destination::Nanp(n) => n.ten_digits(),
            Destination::ShortCode(c) => c.digits(),
        }
    }

    /// The JID localpart: `+1N`, or the short code.
    pub fn localpart(&self) -> String {
        match self {
            Destination::Nanp(n) => n.e164(),
            Destination::ShortCode(c) => c.digits().to_string(),
        }
    }

    /// The short code, if this is one.
    pub fn short_code(&self) -> Option<ShortCode> {
        match self {
            Destination::ShortCode(c) => Some(*c),
            Destination::Nanp(_) => None,
        }
    }
}

impl From<Nanp> for Destination {
    fn from(n: Nanp) -> Destination {
        Destination::Nanp(n)
    }
}

impl fmt::Display for Destination {
    /// Shows the redacted form, as [`Nanp`]'s does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(self.digits()))
    }
}

/// A number as it arrives from VoIP.ms: usually NANP, but short codes (2FA, banks) and other
/// sender IDs also text in. We keep what we cannot parse so that nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sender {
    /// A NANP number.
    Nanp(Nanp),
    /// Anything else (a short code such as `72345`), kept as received.
    Other(String),
}

impl Sender {
    /// Classify a number received from VoIP.ms. `None` if it is empty or not printable.
    pub fn parse(s: &str) -> Option<Sender> {
        let s = s.trim();
        if let Some(n) = Nanp::parse(s) {
            return Some(Sender::Nanp(n));
        }
        let valid = !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+');
        valid.then(|| Sender::Other(s.to_string()))
    }

    /// The JID localpart for this sender.
    pub fn localpart(&self) -> String {
        match self {
            Sender::Nanp(n) => n.e164(),
            Sender::Other(s) => s.to_ascii_lowercase(),
        }
    }

    /// The redacted form for logs.
    pub fn redacted(&self) -> String {
        match self {
            Sender::Nanp(n) => n.to_string(),
            Sender::Other(s) => redact(s),
        }
    }
}

/// The last four characters of a number behind an ellipsis (`…4567`), for logs.
pub fn redact(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

/// The localpart of a contact JID, as in the product contract: `+1N` (reached through the
/// user's default DID) or `+1N%+1D` (through DID `D`). Each side also accepts `1N` and `N`; the
/// number may also be a 5–6 digit short code (`12345`, `12345%+1D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactAddress {
    /// The other party.
    pub number: Destination,
    /// The user's DID to send from, when named.
    pub via: Option<Nanp>,
}

impl ContactAddress {
    /// Parse a localpart; `None` if it is not in one of the contract's forms.
    pub fn parse(localpart: &str) -> Option<ContactAddress> {
        match localpart.split_once('%') {
            Some((number, via)) => {
                Some(ContactAddress { number: Destination::parse(number)?, via: Some(Nanp::parse(via)?) })
            }
            None => Some(ContactAddress { number: Destination::parse(localpart)?, via: None }),
        }
    }

    /// The canonical localpart: `+1N` or `+1N%+1D`.
    pub fn localpart(&self) -> String {
        match self.via {
            Some(did) => format!("{}%{}", self.number.localpart(), did.e164()),
            None => self.number.localpart(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_forms() {
        for s in ["5552345678", "15552345678", "+15552345678"] {
            let n = Nanp::parse(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(n.ten_digits(), "5552345678");
            assert_eq!(n.e164(), "+15552345678");
        }
    }

    #[test]
    fn rejects_what_is_not_nanp() {
        for s in [
            "",
            "555234567",
            "555234567890",
            "+25552345678",
            "25552345678",
            "1555234567",
            "0552345678",
            "1552345678",
            "5550345678",
            "5551345678",
            "+1555234567x",
            "555-234-5678",
            "+44 20 7946 0958",
            "+1",
            "１５５５２３４５６７８",
        ] {
            assert_eq!(Nanp::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn an_eleven_digit_number_starting_with_one_is_not_prefixed_again() {
        // The seed module turned `15552345678` into `+115552345678`.
        assert_eq!(Nanp::parse("15552345678").map(|n| n.e164()).as_deref(), Some("+15552345678"));
    }

    #[test]
    fn human_input_ignores_punctuation() {
        assert_eq!(Nanp::parse_human("+1 (555) 234-5678").map(|n| n.e164()).as_deref(), Some("+15552345678"));
        assert_eq!(Nanp::parse_human("555.234.5678").map(|n| n.e164()).as_deref(), Some("+15552345678"));
        assert_eq!(Nanp::parse_human("call me"), None);
    }

    #[test]
    fn display_and_redact_show_only_four_digits() {
        let n = Nanp::parse("5552345678").unwrap();
        assert_eq!(n.to_string(), "…5678");
        assert_eq!(redact("72345"), "…2345");
        assert_eq!(redact("12"), "…12");
    }

    #[test]
    fn short_codes_are_five_or_six_digits() {
        assert_eq!(ShortCode::parse("12345").map(|c| c.digits().to_string()).as_deref(), Some("12345"));
        assert_eq!(ShortCode::parse("123456").map(|c| c.digits().to_string()).as_deref(), Some("123456"));
        for bad in ["", "1234", "1234567", "12a45", "+12345", " 12345", "１２３４５"] {
            assert_eq!(ShortCode::parse(bad), None, "{bad:?}");
        }
        assert_eq!(ShortCode::parse_human("123 45").map(|c| c.digits().to_string()).as_deref(), Some("12345"));
        assert_eq!(ShortCode::parse_human("(12345)"), None);
    }

    #[test]
    fn destinations_are_numbers_or_short_codes() {
        let n = Destination::parse("+15552345678").unwrap();
        assert_eq!((n.digits(), n.localpart().as_str(), n.short_code()), ("5552345678", "+15552345678", None));
        let c = Destination::parse("12345").unwrap();
        assert_eq!((c.digits(), c.localpart().as_str()), ("12345", "12345"));
        assert_eq!(c.to_string(), "…2345", "redacted like a number");
        assert_eq!(n.to_string(), "…5678");
        for bad in ["1234", "1234567", "+12345", "5550345678", "x"] {
            assert_eq!(Destination::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn senders_keep_short_codes() {
        assert_eq!(Sender::parse("+15552345678"), Some(Sender::Nanp(Nanp::parse("5552345678").unwrap())));
        assert_eq!(Sender::parse("72345"), Some(Sender::Other("72345".into())));
        assert_eq!(Sender::parse("72345").unwrap().localpart(), "72345");
        assert_eq!(Sender::parse(""), None);
        assert_eq!(Sender::parse("a b"), None);
        assert_eq!(Sender::parse("<x>"), None);
    }

    #[test]
    fn contact_localparts() {
        let plain = ContactAddress::parse("+15552345678").unwrap();
        assert_eq!(plain.via, None);
        assert_eq!(plain.localpart(), "+15552345678");
        for form in ["+15552345678%+15557654321", "15552345678%5557654321", "5552345678%15557654321"] {
            let c = ContactAddress::parse(form).unwrap();
            assert_eq!(c.localpart(), "+15552345678%+15557654321", "{form}");
        }
        let code = ContactAddress::parse("12345%+15557654321").unwrap();
        assert_eq!(code.number.short_code().map(|c| c.digits().to_string()).as_deref(), Some("12345"));
        assert_eq!(code.localpart(), "12345%+15557654321");
        assert_eq!(ContactAddress::parse("654321").unwrap().localpart(), "654321");
        for bad in [
            "",
            "%",
            "+15552345678%",
            "%+15552345678",
            "+15552345678%+15557654321%1",
            "alice",
            "+4420%+15552345678",
            "1234",
            "1234567",
            "+12345",
            "12345%12345",
        ] {
            assert_eq!(ContactAddress::parse(bad), None, "{bad:?}");
        }
    }
}
