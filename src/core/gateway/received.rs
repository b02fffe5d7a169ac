//! The gateway's received messages: webhooks, backfill rows and the seen set (each message
//! reaches its user once), and the XMPP server's errors for what was delivered
//! (`core::delivery`).

use super::*;
use crate::core::time::parse_eastern;

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
        if let (Some(token), Some(Pending::Inbound { tokens, .. } | Pending::Unrouted { tokens, .. })) =
            (token, self.pending.get_mut(&record_id))
        {
            tokens.push(token);
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
        let keys: Vec<String> = message.id.iter().map(|id| id_key(message.mms, id)).collect();
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
        let owner = message.to.iter().find_map(|did| Some((self.config.owner_of(did)?.jid.clone(), *did)));
        let Some((_, did)) = owner else {
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
        };
        log(
            &mut self.out,
            Level::Info,
            format!(
                "received a message from {} via DID {did} ({} characters, {} media)",
                message.from.redacted(),
                message.text.chars().count(),
                message.media.len()
            ),
        );
        let _ = self.accept_inbound(
            now,
            &message.from,
            did,
            message.text,
            message.media,
            message.id,
            message.mms,
            None,
            vec![token],
            keys,
        );
    }

    /// Spool a received message for the owner of `did`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn accept_inbound(
        &mut self,
        now: Now,
        from: &Sender,
        did: Nanp,
        text: String,
        media: Vec<String>,
        voipms_id: Option<String>,
        mms: bool,
        voipms_ms: Option<u64>,
        tokens: Vec<u64>,
        mut keys: Vec<String>,
    ) -> Option<String> {
        let user = self.config.owner_of(&did)?;
        let default_did = user.dids.first() == Some(&did);
        let contact = if default_did { from.localpart() } else { format!("{}%{}", from.localpart(), did.e164()) };
        let user_jid = user.jid.to_string();
        let mut link = None;
        if voipms_ms.is_none() {
            // Brought by a webhook: a backfilled row under another id may claim this, once; its
            // own row (same id) claims it for sure.
            let pending = &self.pending_keys;
            let fingerprint =
                self.seen.new_fingerprint(&from.localpart(), did.ten_digits(), &text, now.wall_ms, &|k| {
                    pending.contains_key(k)
                });
            link = voipms_id.as_ref().map(|id| (id_key(mms, id), fingerprint.clone()));
            keys.push(fingerprint);
        }
        let record = self.new_record(
            now,
            Some(Inbound {
                user: user_jid,
                contact,
                did: did.ten_digits().to_string(),
                text,
                media,
                voipms_id,
                mms,
                voipms_ms,
            }),
            None,
            None,
        );
        let id = record.id.clone();
        self.write(record.clone(), Pending::Inbound { tokens, record, keys, link });
        Some(id)
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
        let id = self.accept_inbound(
            now,
            &from,
            did,
            text,
            row.media,
            Some(row.id),
            row.mms,
            Some(at_ms),
            Vec::new(),
            vec![key],
        );
        self.backfill_pending.extend(id);
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
