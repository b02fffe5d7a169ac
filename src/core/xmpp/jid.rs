//! XMPP addresses (RFC 7622): `local@domain/resource`.
//!
//! We need only what a component needs: split, validate lengths and forbidden characters, and
//! compare bare JIDs case-insensitively (the server has already applied its own normalisation to
//! what it routes to us; the config is typed by people, so it is lower-cased here).

use std::fmt;

/// RFC 7622 §3.1: each part is at most 1023 bytes.
const MAX_PART: usize = 1023;

/// A full or bare JID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jid {
    local: Option<String>,
    domain: String,
    resource: Option<String>,
}

/// A JID without a resource, lower-cased for comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BareJid(String);

/// Why a string is not a JID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JidError {
    /// The domain part is empty.
    EmptyDomain,
    /// A part is empty where the separator says one is present (`@x`, `x/`).
    EmptyPart,
    /// A part is longer than 1023 bytes.
    TooLong,
    /// A character RFC 7622 forbids (space, quotes, `&'/:<>@` in the localpart, controls).
    ForbiddenCharacter(char),
}

impl fmt::Display for JidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JidError::EmptyDomain => write!(f, "the domain is empty"),
            JidError::EmptyPart => write!(f, "a part is empty"),
            JidError::TooLong => write!(f, "a part is longer than 1023 bytes"),
            JidError::ForbiddenCharacter(c) => write!(f, "character {c:?} is not allowed"),
        }
    }
}

impl std::error::Error for JidError {}

impl Jid {
    /// Parse and validate.
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        let (rest, resource) = match s.split_once('/') {
            Some((rest, res)) => (rest, Some(res)),
            None => (s, None),
        };
        let (local, domain) = match rest.split_once('@') {
            Some((l, d)) => (Some(l), d),
            None => (None, rest),
        };
        if domain.is_empty() {
            return Err(JidError::EmptyDomain);
        }
        for part in [local, Some(domain), resource].into_iter().flatten() {
            if part.is_empty() {
                return Err(JidError::EmptyPart);
            }
            if part.len() > MAX_PART {
                return Err(JidError::TooLong);
            }
            if let Some(c) = part.chars().find(|c| c.is_control()) {
                return Err(JidError::ForbiddenCharacter(c));
            }
        }
        if let Some(local) = local
            && let Some(c) = local.chars().find(|c| matches!(c, ' ' | '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@'))
        {
            return Err(JidError::ForbiddenCharacter(c));
        }
        if let Some(c) = domain.chars().find(|c| matches!(c, ' ' | '@' | '"' | '\'' | '<' | '>' | '&')) {
            return Err(JidError::ForbiddenCharacter(c));
        }
        Ok(Jid {
            local: local.map(str::to_string),
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            resource: resource.map(str::to_string),
        })
    }

    /// A JID `local@domain` built from parts we trust (our own domain and a canonical localpart).
    pub fn new(local: Option<&str>, domain: &str) -> Jid {
        Jid { local: local.map(str::to_string), domain: domain.to_string(), resource: None }
    }

    /// The localpart, if any.
    pub fn local(&self) -> Option<&str> {
        self.local.as_deref()
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The resource, if any.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// The bare JID, lower-cased.
    pub fn to_bare(&self) -> BareJid {
        BareJid(match &self.local {
            Some(l) => format!("{}@{}", l.to_lowercase(), self.domain),
            None => self.domain.clone(),
        })
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.local {
            write!(f, "{l}@")?;
        }
        f.write_str(&self.domain)?;
        if let Some(r) = &self.resource {
            write!(f, "/{r}")?;
        }
        Ok(())
    }
}

impl BareJid {
    /// Parse a bare JID (a resource is an error the caller reports).
    pub fn parse(s: &str) -> Result<BareJid, JidError> {
        Ok(Jid::parse(s)?.to_bare())
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain part.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(_, d)| d)
    }
}

impl fmt::Display for BareJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_parts() {
        let j = Jid::parse("Alice@Example.COM/phone/x").unwrap();
        assert_eq!(j.local(), Some("Alice"));
        assert_eq!(j.domain(), "example.com");
        assert_eq!(j.resource(), Some("phone/x"));
        assert_eq!(j.to_bare().as_str(), "alice@example.com");
        assert_eq!(j.to_string(), "Alice@example.com/phone/x");
        let d = Jid::parse("sms.example.com").unwrap();
        assert_eq!(d.local(), None);
        assert_eq!(d.to_bare().domain(), "sms.example.com");
        assert_eq!(
            Jid::parse("+15552345678%+15557654321@sms.example.com").unwrap().local(),
            Some("+15552345678%+15557654321")
        );
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Jid::parse(""), Err(JidError::EmptyDomain));
        assert_eq!(Jid::parse("a@"), Err(JidError::EmptyDomain));
        assert_eq!(Jid::parse("@b"), Err(JidError::EmptyPart));
        assert_eq!(Jid::parse("a@b/"), Err(JidError::EmptyPart));
        assert_eq!(Jid::parse("a b@c"), Err(JidError::ForbiddenCharacter(' ')));
        assert_eq!(Jid::parse("a@b@c"), Err(JidError::ForbiddenCharacter('@')));
        assert_eq!(Jid::parse("a\n@c"), Err(JidError::ForbiddenCharacter('\n')));
        assert_eq!(Jid::parse(&format!("{}@c", "x".repeat(1024))), Err(JidError::TooLong));
    }
}
