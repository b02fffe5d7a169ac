//! Who may call the API: the account's IP allow-list rules (exact address, CIDR, `a.b.c.*`
//! wildcard, `0.0.0.0` for any) and client address normalisation.

use std::net::IpAddr;

/// One parsed `allowed_ips` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IpRule {
    /// `0.0.0.0`: every address.
    Any,
    /// An exact address.
    Exact(IpAddr),
    /// `addr/prefix`.
    Cidr(IpAddr, u8),
    /// `a.b.c.*` (and `a.b.*.*`, …): leading octets that must match.
    Wildcard(Vec<u8>),
}

impl IpRule {
    /// Parse an entry; `None` if it is none of the accepted forms.
    pub fn parse(s: &str) -> Option<IpRule> {
        let s = s.trim();
        if s == "0.0.0.0" {
            return Some(IpRule::Any);
        }
        if let Some((addr, prefix)) = s.split_once('/') {
            let addr: IpAddr = addr.parse().ok()?;
            let prefix: u8 = prefix.parse().ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            return (prefix <= max).then_some(IpRule::Cidr(addr, prefix));
        }
        if s.contains('*') {
            let parts: Vec<&str> = s.split('.').collect();
            if parts.len() != 4 {
                return None;
            }
            let fixed: Vec<&str> = parts.iter().copied().take_while(|p| *p != "*").collect();
            if parts[fixed.len()..].iter().any(|p| *p != "*") || fixed.is_empty() {
                return None;
            }
            let octets = fixed.iter().map(|p| p.parse::<u8>().ok()).collect::<Option<Vec<u8>>>()?;
            return Some(IpRule::Wildcard(octets));
        }
        s.parse().ok().map(IpRule::Exact)
    }

    /// Does `ip` match this rule?
    pub fn matches(&self, ip: IpAddr) -> bool {
        match self {
            IpRule::Any => true,
            IpRule::Exact(a) => *a == ip,
            IpRule::Cidr(net, prefix) => match (net, ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                    u32::from(*n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
                    u128::from(*n) & mask == u128::from(a) & mask
                }
                _ => false,
            },
            IpRule::Wildcard(octets) => match ip {
                IpAddr::V4(a) => a.octets().starts_with(octets),
                IpAddr::V6(_) => false,
            },
        }
    }
}

/// Is `ip` allowed by any of `rules`?
pub(crate) fn ip_allowed(rules: &[String], ip: IpAddr) -> bool {
    rules.iter().filter_map(|r| IpRule::parse(r)).any(|r| r.matches(ip))
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as plain IPv4.
pub(crate) fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(rule: &str, ip: &str) -> bool {
        IpRule::parse(rule).unwrap().matches(ip.parse().unwrap())
    }

    #[test]
    fn rule_forms() {
        assert!(ok("0.0.0.0", "203.0.113.9"));
        assert!(ok("0.0.0.0", "::1"));
        assert!(ok("127.0.0.1", "127.0.0.1"));
        assert!(!ok("127.0.0.1", "127.0.0.2"));
        assert!(ok("203.0.113.0/24", "203.0.113.77"));
        assert!(!ok("203.0.113.0/24", "203.0.114.1"));
        assert!(ok("10.0.0.0/0", "192.0.2.1"));
        assert!(ok("2001:db8::/32", "2001:db8::1"));
        assert!(ok("203.0.113.*", "203.0.113.5"));
        assert!(ok("203.0.*.*", "203.0.9.5"));
        assert!(!ok("203.0.113.*", "203.0.112.5"));
        assert!(ok("::1", "::1"));
        for bad in ["", "*.1.2.3", "1.2.*.4", "1.2.3.0/33", "host.example", "1.2.3.*.*"] {
            assert_eq!(IpRule::parse(bad), None, "{bad}");
        }
        assert_eq!(normalise("::ffff:127.0.0.1".parse().unwrap()), "127.0.0.1".parse::<IpAddr>().unwrap());
    }
}
