//! The daily sending cap (`limit_reached`, voipms.md §4.2): closed until the next midnight US
//! Eastern (VoIP.ms's clock), then one send at a time probes; a probe that hits the cap again
//! keeps it closed another hour. The state itself; the gateway decides when it applies, and the
//! seen log keeps `until_ms` across restarts.

use crate::core::outbound::MAX_IN_FLIGHT;
use crate::core::time::{Now, next_eastern_midnight};
use crate::core::xmpp::stanza::ErrorSpec;
use std::time::{Duration, Instant};

/// After a failed probe, the quota is tried again this much later.
const QUOTA_PROBE_AGAIN_MS: u64 = 3600 * 1000;

/// The daily sending cap (`limit_reached`): closed until `until_ms`, then one probe.
#[derive(Debug, Default)]
pub struct Quota {
    /// Closed until this wall time (ms); after it, one send at a time probes.
    pub until_ms: Option<u64>,
    /// The probe after a reset hit the cap again (the reset time is then a guess).
    pub extended: bool,
    /// `until_ms` as a monotonic instant: a timer, so that waiting sends go at the reset.
    pub reopen_at: Option<Instant>,
}

impl Quota {
    /// How many sends may be in flight now.
    pub fn sends_allowed(&self, now_ms: u64) -> usize {
        match self.until_ms {
            None => MAX_IN_FLIGHT,
            Some(until) if now_ms < until => 0,
            Some(_) => 1,
        }
    }

    /// Whether sending is closed now.
    pub fn closed(&self, now_ms: u64) -> bool {
        self.until_ms.is_some_and(|u| now_ms < u)
    }

    /// `limit_reached`: closed until the next US-Eastern midnight, or for an hour when the probe
    /// after a reset hit it again.
    pub fn hit(&mut self, now: Now) {
        let now_ms = now.wall_ms;
        let probing = self.until_ms.is_some_and(|u| now_ms >= u);
        self.extended = probing;
        let until = if probing {
            now_ms + QUOTA_PROBE_AGAIN_MS
        } else {
            (next_eastern_midnight((now_ms / 1000) as i64).max(0) as u64) * 1000
        };
        self.until_ms = Some(until);
        self.reopen_at = now.mono.checked_add(Duration::from_millis(until.saturating_sub(now_ms)));
    }

    /// The probe succeeded: open again.
    pub fn clear(&mut self) {
        self.until_ms = None;
        self.extended = false;
        self.reopen_at = None;
    }

    /// The stanza error for a message refused or bounced while closed.
    pub fn error(&self, now_ms: u64) -> ErrorSpec {
        let left = self.until_ms.unwrap_or(now_ms).saturating_sub(now_ms) / 60_000;
        let when =
            if left >= 60 { format!("{} h {} min", left / 60, left % 60) } else { format!("{} min", left.max(1)) };
        let text = if self.extended {
            format!(
                "VoIP.ms still reports its daily sending limit reached after midnight US Eastern time: nothing can be sent for about {when}, when the gateway tries again (VoIP.ms support can raise the limit)"
            )
        } else {
            format!(
                "VoIP.ms daily sending limit reached: nothing can be sent for about {when}, until it resets at midnight US Eastern time (VoIP.ms support can raise the limit)"
            )
        };
        ErrorSpec::new("resource-constraint", "wait", text)
    }
}
