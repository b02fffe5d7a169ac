//! Secrets: kept out of `Debug` output and compared in constant time.

use std::fmt;

/// A secret string (shared component secret, API password, webhook key). `Debug` prints `***`,
/// so a secret cannot reach a log line through `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The secret itself, for the one place that must send it (handshake, API call).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compare with a candidate in time that depends only on the candidate's length, never on
    /// where the first difference is.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), candidate)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Compare two byte strings without an early exit on the first difference. The length is not
/// hidden (it is not secret for a key the operator chose to be long).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for (i, y) in b.iter().enumerate() {
        let x = a.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    // black_box keeps the optimiser from turning the loop into an early-exit compare.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_whole_strings() {
        let s = Secret::new("some_query_key".into());
        assert!(s.matches(b"some_query_key"));
        assert!(!s.matches(b"some_query_ke"));
        assert!(!s.matches(b"some_query_key2"));
        assert!(!s.matches(b"xsome_query_key"));
        assert!(!s.matches(b""));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2".into())), "***");
    }
}
