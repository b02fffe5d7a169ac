//! Counters for the operator, and their Prometheus text exposition (format 0.0.4).
//!
//! The gateway counts what happens ([`Counters`]); the shell serves `GET /metrics` on the
//! optional `metrics.listen` address by asking the gateway for [`render`]ed text and appending
//! what only it knows (webhook answers by status, memory). Every name starts with
//! `voipms_xmpp_`. Label values come from a closed set or are VoIP.ms statuses, already reduced
//! to `[a-z0-9_ ]{1,48}`; each family keeps at most [`MAX_LABELS`] values, the rest counted as
//! `other`, so that no peer can grow the set without limit. No I/O here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Distinct label values kept per family.
pub const MAX_LABELS: usize = 32;

/// A counter family with one label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labeled(BTreeMap<String, u64>);

impl Labeled {
    /// Count one for `label`.
    pub fn add(&mut self, label: &str) {
        let label = if self.0.contains_key(label) || self.0.len() < MAX_LABELS { label } else { "other" };
        *self.0.entry(label.to_string()).or_default() += 1;
    }

    /// The count for `label`.
    pub fn get(&self, label: &str) -> u64 {
        self.0.get(label).copied().unwrap_or(0)
    }

    /// All counts.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// What the gateway has counted since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages from VoIP.ms accepted for users, by `source` (`webhook`, `backfill`).
    pub received: Labeled,
    /// Webhooks and backfilled rows already received (dropped as duplicates).
    pub duplicates: u64,
    /// Messages for DIDs no user maps (kept in `unrouted/`).
    pub unrouted: u64,
    /// Received messages the XMPP server confirmed (a later ping was answered).
    pub delivered: u64,
    /// Received messages delivered again after a `wait` error from the server.
    pub redelivered: u64,
    /// Messages from users accepted for VoIP.ms.
    pub accepted: u64,
    /// Messages from XMPP refused without a call, by stanza error condition.
    pub refused: Labeled,
    /// Messages VoIP.ms took in full.
    pub sent: u64,
    /// Failed VoIP.ms calls for sends, by status (`invalid_dst`, `HTTP 503`, `no answer`, …).
    pub send_failures: Labeled,
    /// Messages given up on, by the stanza error condition the sender got.
    pub bounced: Labeled,
    /// XMPP streams that came up (the first connection, then every reconnection).
    pub xmpp_connects: u64,
    /// Spool writes that failed.
    pub spool_failures: u64,
    /// Backfill runs, by `result` (`complete`, `incomplete`).
    pub backfill_runs: Labeled,
    /// Messages backfill found that no webhook brought.
    pub backfill_found: u64,
}

/// Values read at the time of a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauges {
    /// Whether the XMPP stream is up.
    pub xmpp_up: bool,
    /// Records owed to XMPP users.
    pub to_xmpp: usize,
    /// Records waiting for VoIP.ms.
    pub to_voipms: usize,
    /// Age of the oldest record in either queue, in seconds.
    pub oldest_age_secs: u64,
    /// Whether the last spool write failed.
    pub spool_failing: bool,
    /// Whether the daily VoIP.ms quota is spent.
    pub quota_closed: bool,
    /// Received messages set aside in `undeliverable/`.
    pub undeliverable: u64,
}

/// Append one metric family: its `# HELP`, `# TYPE` and samples `(labels, value)`, where labels
/// are written as given (`key="value"`, already escaped) or empty.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP voipms_xmpp_{name} {help}");
    let _ = writeln!(out, "# TYPE voipms_xmpp_{name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "voipms_xmpp_{name} {value}");
        } else {
            let _ = writeln!(out, "voipms_xmpp_{name}{{{labels}}} {value}");
        }
    }
}

/// A label value escaped for the exposition format (`\`, `"` and newline).
pub fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn one(value: u64) -> Vec<(String, u64)> {
    vec![(String::new(), value)]
}

fn labeled(key: &str, family: &Labeled, always: &[&str]) -> Vec<(String, u64)> {
    let mut samples: BTreeMap<String, u64> = always.iter().map(|l| (l.to_string(), 0)).collect();
    for (label, n) in &family.0 {
        samples.insert(label.clone(), *n);
    }
    samples.into_iter().map(|(label, n)| (format!("{key}=\"{}\"", escape(&label)), n)).collect()
}

/// The gateway's part of `GET /metrics`.
pub fn render(c: &Counters, g: &Gauges) -> String {
    let mut out = String::new();
    let b = u64::from;
    family(&mut out, "xmpp_up", "gauge", "Whether the XMPP component stream is up.", &one(b(g.xmpp_up)));
    family(
        &mut out,
        "xmpp_connects_total",
        "counter",
        "XMPP streams that came up (reconnects included).",
        &one(c.xmpp_connects),
    );
    family(
        &mut out,
        "messages_received_total",
        "counter",
        "Messages from VoIP.ms accepted for users, by source.",
        &labeled("source", &c.received, &["webhook", "backfill"]),
    );
    family(
        &mut out,
        "messages_delivered_total",
        "counter",
        "Received messages the XMPP server confirmed.",
        &one(c.delivered),
    );
    family(
        &mut out,
        "messages_redelivered_total",
        "counter",
        "Received messages delivered again after a wait error from the XMPP server.",
        &one(c.redelivered),
    );
    family(
        &mut out,
        "messages_undeliverable_total",
        "counter",
        "Received messages the XMPP server refused, kept in state_dir/undeliverable.",
        &one(g.undeliverable),
    );
    family(
        &mut out,
        "messages_duplicate_total",
        "counter",
        "Received messages dropped as already received.",
        &one(c.duplicates),
    );
    family(
        &mut out,
        "messages_unrouted_total",
        "counter",
        "Messages for DIDs no user maps, kept in state_dir/unrouted.",
        &one(c.unrouted),
    );
    family(
        &mut out,
        "messages_accepted_total",
        "counter",
        "Messages from XMPP users accepted for VoIP.ms.",
        &one(c.accepted),
    );
    family(
        &mut out,
        "messages_refused_total",
        "counter",
        "Messages from XMPP refused without a VoIP.ms call, by stanza error condition.",
        &labeled("condition", &c.refused, &[]),
    );
    family(&mut out, "messages_sent_total", "counter", "Messages VoIP.ms took in full.", &one(c.sent));
    family(
        &mut out,
        "messages_bounced_total",
        "counter",
        "Messages given up on, by the stanza error condition the sender got.",
        &labeled("condition", &c.bounced, &[]),
    );
    family(
        &mut out,
        "voipms_send_failures_total",
        "counter",
        "Failed VoIP.ms send calls, by status.",
        &labeled("reason", &c.send_failures, &[]),
    );
    family(
        &mut out,
        "spool_records",
        "gauge",
        "Records in the spool, by queue.",
        &[("queue=\"to_xmpp\"".to_string(), g.to_xmpp as u64), ("queue=\"to_voipms\"".to_string(), g.to_voipms as u64)],
    );
    family(
        &mut out,
        "spool_oldest_record_age_seconds",
        "gauge",
        "Age of the oldest record waiting in the spool (0 when empty).",
        &one(g.oldest_age_secs),
    );
    family(&mut out, "spool_write_failures_total", "counter", "Spool writes that failed.", &one(c.spool_failures));
    family(&mut out, "spool_failing", "gauge", "Whether the last spool write failed.", &one(b(g.spool_failing)));
    family(
        &mut out,
        "quota_closed",
        "gauge",
        "Whether the VoIP.ms daily sending limit is spent.",
        &one(b(g.quota_closed)),
    );
    family(
        &mut out,
        "backfill_runs_total",
        "counter",
        "Backfill runs, by result.",
        &labeled("result", &c.backfill_runs, &["complete", "incomplete"]),
    );
    family(
        &mut out,
        "backfill_found_total",
        "counter",
        "Messages backfill found that no webhook brought.",
        &one(c.backfill_found),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format_with_bounded_labels() {
        let mut c = Counters::default();
        c.received.add("webhook");
        c.received.add("webhook");
        c.send_failures.add("HTTP 503");
        for i in 0..100 {
            c.refused.add(&format!("condition-{i}"));
        }
        assert_eq!(c.refused.0.len(), MAX_LABELS + 1, "the rest is folded into other");
        assert_eq!(c.refused.get("other"), 100 - MAX_LABELS as u64);
        let g = Gauges {
            xmpp_up: true,
            to_xmpp: 3,
            to_voipms: 1,
            oldest_age_secs: 12,
            spool_failing: false,
            quota_closed: false,
            undeliverable: 2,
        };
        let text = render(&c, &g);
        for line in [
            "# TYPE voipms_xmpp_xmpp_up gauge",
            "voipms_xmpp_xmpp_up 1",
            "voipms_xmpp_messages_received_total{source=\"backfill\"} 0",
            "voipms_xmpp_messages_received_total{source=\"webhook\"} 2",
            "voipms_xmpp_voipms_send_failures_total{reason=\"HTTP 503\"} 1",
            "voipms_xmpp_spool_records{queue=\"to_xmpp\"} 3",
            "voipms_xmpp_spool_oldest_record_age_seconds 12",
            "voipms_xmpp_messages_undeliverable_total 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
        assert!(text.lines().all(|l| l.starts_with("# ") || l.starts_with("voipms_xmpp_")), "{text}");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
