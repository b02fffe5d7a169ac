//! The gateway's received messages: webhooks, backfill rows and the seen set (each message
//! reaches its user once), and the XMPP server's errors for what was delivered
//! (`core::delivery`).

use super::*;
use crate::core::time::parse_eastern;

/// A received message for one user, as the webhook or backfill brought it.
struct Received<'a> {
    from: &'a Sender,
    did: Nanp,
    text: String,
    media: Vec<String>,
    voipms_id: Option<String>,
    mms: bool,
    /// VoIP.ms's own time (backfill): the delay stamp.
    voipms_ms: Option<u64>,
    /// A group message's other recipients (`+1…`).
    group: Vec<String>,
}

impl Gateway {
    /// The server answered a message with an error: if it is a delivery of ours, deliver it
    /// again later (`wait`) or set it aside as undeliverable (`core::delivery`).
    pub(super) fn delivery_error(&mut self, now: Now, m: &Message) {
        let (from, condition) = (m.from.to_bare(), m.error_condition.as_deref().unwrap_or("undefined-condition"));
        let domain = self.config.xmpp.component.clone();
        match self.deliveries.error(m, now, &domain, &mut self.mailbox, &mut self.rng) {
            Verdict::NotOurs => {
                log(&mut self.out, Level::Info, format!("{from} answered a message of ours with error {condition}"));
            }
            Verdict::Forged => log(
                &mut self.out,
                Level::Debug,
                format!("ignored error {condition} from {from}: not the recipient of the message it names"),
            ),
            Verdict::AlreadyHandled => {
                log(&mut self.out, Level::Debug, format!("error {condition} from {from}: already being handled"));
            }
            Verdict::Redeliver { record, rewrite, after } => {
                log(
                    &mut self.out,
                    Level::Warn,
                    format!(
                        "the XMPP server could not deliver a message to {from} now ({condition}); trying again in {}s",
                        after.as_secs()
                    ),
                );
                if rewrite {
                    // It had left the spool: back in, durably, until it is delivered.
                    self.write(*record, Pending::Requeued);
                }
            }
            Verdict::Undeliverable { file, spooled } => {
                self.pending.insert(file.record.id.clone(), Pending::Undeliverable { file: file.clone(), spooled });
                self.out.push_back(Action::SpoolUndeliverable(file));
            }
        }
    }

    /// A backfill call finished: what it found goes to the seen set and the spool.
    pub(super) fn backfill_result(&mut self, now: Now, job: u64, outcome: &CallOutcome) {
        let seen = &self.seen;
        let is_seen = |row: &Row| seen.contains(&id_key(true, &row.id)) || seen.contains(&id_key(false, &row.id));
        let progress = self.backfill.result(job, outcome, now, &mut self.next_job, &mut self.out, &is_seen);
        for progress in progress {
            match progress {
                Progress::Seen { did, row } => {
                    let (Some(from), Some(at)) = (Sender::parse(&row.contact), parse_eastern(&row.date)) else {
                        continue;
                    };
                    let (from, at_ms) = (from.localpart(), (at.max(0) as u64) * 1000);
                    let mut claim = |mms| {
                        self.seen.claim_linked(&id_key(mms, &row.id), &from, did.ten_digits(), &row.message, at_ms)
                    };
                    let _ = claim(row.mms) || claim(!row.mms);
                }
                Progress::Found(found) => self.backfill_found(now, found),
                Progress::Done { complete, until_ms } => {
                    self.counters.backfill_runs.add(if complete && !self.backfill_failed {
                        "complete"
                    } else {
                        "incomplete"
                    });
                    if complete && !self.backfill_failed {
                        self.backfill_until = Some(until_ms);
                        self.advance_cursor();
                    }
                    self.backfill_failed = false;
                }
                Progress::Failed(why) | Progress::Skipped(why) => log(&mut self.out, Level::Warn, why),
            }
        }
    }

    /// If a message with one of `keys` is already ours (or being written), attach `token` to it
    /// and return true.
    pub(super) fn duplicate(&mut self, keys: &[String], token: Option<u64>) -> bool {
        if keys.iter().any(|k| self.seen.contains(k)) {
            self.counters.duplicates += 1;
            if let Some(token) = token {
                self.out.push_back(Action::WebhookReply { token, reply: WebhookReply::Accepted });
            }
            return true;
        }
        let Some(record_id) = keys.iter().find_map(|k| self.pending_keys.get(k)).cloned() else {
            return false;
        };
        if let Some(token) = token {
            match self.pending.get_mut(&record_id) {
                Some(Pending::Unrouted { tokens, .. }) => tokens.push(token),
                Some(Pending::Inbound { arrival, .. }) => {
                    if let Some(a) = self.arrivals.get_mut(arrival) {
                        a.tokens.push(token);
                    }
                }
                _ => {}
            }
        }
        self.counters.duplicates += 1;
        true
    }

    pub(super) fn webhook(&mut self, now: Now, token: u64, message: InboundMessage) {
        if message.text.is_empty() && message.media.is_empty() {
            log(&mut self.out, Level::Warn, format!("an empty message from {} was ignored", message.from.redacted()));
            self.out.push_back(Action::WebhookReply { token, reply: WebhookReply::Accepted });
            return;
        }
        let mut keys: Vec<String> = message.id.iter().map(|id| id_key(message.mms, id)).collect();
        if self.duplicate(&keys, Some(token)) {
            log(
                &mut self.out,
                Level::Info,
                format!(
                    "a webhook repeated a message from {} already received; not delivered again",
                    message.from.redacted()
                ),
            );
            return;
        }
        let reached = self.reached(&message.to);
        if reached.is_empty() {
            let dids: Vec<String> = message.to.iter().map(Nanp::to_string).collect();
            log(
                &mut self.out,
                Level::Warn,
                format!(
                    "a message for DID {} which no user maps was kept for the operator in state_dir/unrouted",
                    dids.join(", ")
                ),
            );
            let record = self.new_record(
                now,
                None,
                None,
                Some(Unrouted {
                    from: message.from.localpart(),
                    to: message.to.iter().map(|d| d.ten_digits().to_string()).collect(),
                    text: message.text,
                    media: message.media,
                    voipms_id: message.id,
                }),
            );
            self.write(record, Pending::Unrouted { tokens: vec![token], keys });
            return;
        }
        let group = message.to.len() > 1;
        let dids: Vec<String> = reached.iter().map(|d| d.to_string()).collect();
        log(
            &mut self.out,
            Level::Info,
            format!(
                "received a {}message from {} via DID {} ({} characters, {} media)",
                if group { "group " } else { "" },
                message.from.redacted(),
                dids.join(", "),
                message.text.chars().count(),
                message.media.len()
            ),
        );
        let mut records = Vec::new();
        let mut links = Vec::new();
        for did in reached {
            // Every recipient but the DID it reaches this user through: the rest of the group.
            let others: Vec<String> =
                if group { message.to.iter().filter(|d| **d != did).map(Nanp::e164).collect() } else { Vec::new() };
            let handed_out = |k: &str| keys.iter().any(|taken| taken == k);
            let fingerprint = self.fingerprint(now, &message.from, did, &message.text, &handed_out);
            if let Some(id) = &message.id {
                links.push((id_key(message.mms, id), fingerprint.clone()));
            }
            keys.push(fingerprint);
            let received = Received {
                from: &message.from,
                did,
                text: message.text.clone(),
                media: message.media.clone(),
                voipms_id: message.id.clone(),
                mms: message.mms,
                voipms_ms: None,
                group: others,
            };
            records.extend(self.inbound_record(now, received));
        }
        self.write_arrival(now, records, Arrival::new(vec![token], keys, links));
    }

    /// The DIDs through which a message to `to` reaches its users: one per mapped user among the
    /// recipients (their default DID if it is one of them, else the first listed), in order.
    pub(super) fn reached(&self, to: &[Nanp]) -> Vec<Nanp> {
        let mut out: Vec<Nanp> = Vec::new();
        for did in to {
            let Some(user) = self.config.owner_of(did) else { continue };
            if let Some(i) = out.iter().position(|d| user.dids.contains(d)) {
                if user.dids.first() == Some(did) {
                    out[i] = *did;
                }
                continue;
            }
            out.push(*did);
        }
        out
    }

    /// The fingerprint key of a message a webhook brought (a backfilled row under another id may
    /// claim it once). `taken` tells keys already handed out for the same message.
    fn fingerprint(&self, now: Now, from: &Sender, did: Nanp, text: &str, taken: &dyn Fn(&str) -> bool) -> String {
        let pending = &self.pending_keys;
        self.seen.new_fingerprint(&from.localpart(), did.ten_digits(), text, now.wall_ms, &|k| {
            pending.contains_key(k) || taken(k)
        })
    }

    /// The record of a received message for the owner of `did`.
    fn inbound_record(&mut self, now: Now, m: Received<'_>) -> Option<Record> {
        let user = self.config.owner_of(&m.did)?;
        let default_did = user.dids.first() == Some(&m.did);
        let contact = if default_did { m.from.localpart() } else { format!("{}%{}", m.from.localpart(), m.did.e164()) };
        let inbound = Inbound {
            user: user.jid.to_string(),
            contact,
            did: m.did.ten_digits().to_string(),
            text: m.text,
            media: m.media,
            voipms_id: m.voipms_id,
            mms: m.mms,
            voipms_ms: m.voipms_ms,
            group: m.group,
        };
        Some(self.new_record(now, Some(inbound), None, None))
    }

    pub(super) fn backfill_found(&mut self, now: Now, found: Found) {
        let Found { did, row, at_ms } = found;
        let key = id_key(row.mms, &row.id);
        let Some(from) = Sender::parse(&row.contact) else {
            return;
        };
        if self.duplicate(std::slice::from_ref(&key), None) {
            return;
        }
        if self.seen.claim_fingerprint(&from.localpart(), did.ten_digits(), &row.message, at_ms, now.wall_ms) {
            // A webhook brought this one under another id: remember this id too.
            self.seen.insert(key, now.wall_ms);
            return;
        }
        let mut text = row.message;
        if text.is_empty() && row.media.is_empty() {
            if !row.mms {
                log(
                    &mut self.out,
                    Level::Warn,
                    format!("backfill found an empty SMS from {}; ignored", from.redacted()),
                );
                return;
            }
            log(
                &mut self.out,
                Level::Warn,
                format!("backfill found an MMS from {} whose content VoIP.ms did not provide", from.redacted()),
            );
            text = crate::core::backfill::MMS_WITHOUT_CONTENT.to_string();
        }
        log(
            &mut self.out,
            Level::Info,
            format!("backfill found a message from {} via DID {did} that no webhook brought", from.redacted()),
        );
        self.counters.backfill_found += 1;
        let received = Received {
            from: &from,
            did,
            text,
            media: row.media,
            voipms_id: Some(row.id),
            mms: row.mms,
            voipms_ms: Some(at_ms),
            group: Vec::new(),
        };
        let Some(record) = self.inbound_record(now, received) else {
            return;
        };
        self.backfill_pending.insert(record.id.clone());
        self.write_arrival(now, vec![record], Arrival::new(Vec::new(), vec![key], Vec::new()));
    }

    /// Move the backfill cursor once the run is over and what it found is durable.
    pub(super) fn advance_cursor(&mut self) {
        if !self.backfill_pending.is_empty() {
            return;
        }
        if let Some(until) = self.backfill_until.take()
            && self.seen.cursor().is_none_or(|c| until > c)
        {
            self.seen.set_cursor(until);
        }
    }

    pub(super) fn remember(&mut self, keys: Vec<String>, at_ms: u64) {
        for key in keys {
            self.pending_keys.remove(&key);
            self.seen.insert(key, at_ms);
        }
    }
}
