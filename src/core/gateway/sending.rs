//! The gateway's sent messages: a user's message accepted from XMPP, VoIP.ms's answers to its
//! sends and lookups, retries, and the bounce owed when it fails for good.

use super::*;

/// First retry delay for a transient VoIP.ms failure.
const RETRY_BASE: Duration = Duration::from_secs(2);
/// Longest retry delay (voipms.md §4.2).
const RETRY_CAP: Duration = Duration::from_secs(300);
/// `sms_failed` gets one retry after this pause (it may be a carrier hiccup).
const SMS_FAILED_RETRY: Duration = Duration::from_secs(30);
/// `api_limit_exceeded` is per minute: the whole account pauses this long.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

impl Gateway {
    /// A message from a user (not an error: those are `delivery_error`'s): route it, spool it.
    pub(super) fn message(&mut self, now: Now, m: Message) {
        let outgoing = match router::route(&self.config, &m) {
            Route::Drop(why) => {
                log(&mut self.out, Level::Debug, format!("dropped a message from {}: {why}", m.from.to_bare()));
                return;
            }
            Route::Reject(error) => {
                self.counters.refused.add(&error.condition);
                log(
                    &mut self.out,
                    Level::Info,
                    format!("refused a message from {}: {} ({})", m.from.to_bare(), error.condition, error.text),
                );
                self.reply_error(&m, &error);
                return;
            }
            Route::Send(o) => o,
        };
        if self.quota.closed(now.wall_ms) {
            let error = self.quota.error(now.wall_ms);
            self.counters.refused.add(&error.condition);
            log(
                &mut self.out,
                Level::Info,
                format!("refused a message from {}: the daily VoIP.ms sending limit is spent", m.from.to_bare()),
            );
            self.reply_error(&m, &error);
            return;
        }
        let parts: Vec<OutPart> = outgoing
            .parts
            .iter()
            .map(|p| OutPart { mms: p.method == Method::Mms, message: p.message.clone(), media: p.media.clone() })
            .collect();
        log(
            &mut self.out,
            Level::Info,
            format!(
                "accepted a message from {} to {} via DID {} ({} part(s))",
                m.from.to_bare(),
                outgoing.dst,
                outgoing.did,
                parts.len()
            ),
        );
        let contact = m.to.local().unwrap_or_default().to_string();
        let record = self.new_record(
            now,
            None,
            Some(Outbound {
                sender: m.from.to_string(),
                contact,
                stanza_id: m.id.clone(),
                did: outgoing.did.ten_digits().to_string(),
                dst: outgoing.dst.digits().to_string(),
                parts,
                next_part: 0,
                receipt: receipts::requested(&m),
                bounce: None,
                unconfirmed_ms: None,
            }),
            None,
        );
        self.write(record.clone(), Pending::Outbound { record: Box::new(record) });
    }

    /// A send or a lookup finished.
    pub(super) fn send_result(&mut self, now: Now, seq: u64, kind: JobKind, outcome: &CallOutcome) {
        match kind {
            JobKind::Send => match classify(outcome) {
                Answer::Sent { id } => {
                    match id {
                        // So that a later lookup does not take this row for another message.
                        Some(id) if api::is_safe_id(&id) => {
                            self.seen.insert(sent_key(&id), now.wall_ms);
                        }
                        Some(_) => log(
                            &mut self.out,
                            Level::Warn,
                            "VoIP.ms answered a send with an id that is not a plain id; not remembered",
                        ),
                        None => {}
                    }
                    // Only a send begun after the reset (the probe) proves the quota is back.
                    let started = self.outbound.started_ms(seq);
                    if self.quota.until_ms.is_some_and(|until| started >= until) {
                        self.quota.clear();
                        self.seen.set_quota_until(None);
                        log(&mut self.out, Level::Info, "the VoIP.ms daily sending limit has reset: sending again");
                    }
                    self.part_sent(now, seq);
                }
                Answer::Failed(f) => self.send_failed(now, seq, f),
            },
            JobKind::Verify => match api::rows(outcome) {
                Ok(rows) if self.outbound.was_sent(seq, &rows, &|id| self.seen.contains(&sent_key(id))) => {
                    log(&mut self.out, Level::Info, "a send whose answer was lost did go out: not sending it again");
                    self.part_sent(now, seq);
                }
                // Not sent: send again now. The failed send already counted for the back-off;
                // the lookup does not count again (that would double every delay).
                Ok(_) => self.outbound.verified_unsent(seq),
                Err(f) => self.retry_or_bounce(now, seq, f),
            },
        }
    }

    pub(super) fn part_sent(&mut self, now: Now, seq: u64) {
        let Some(mut record) = self.outbound.record(seq).cloned() else {
            return;
        };
        let Some(o) = record.outbound.as_mut() else {
            return;
        };
        o.unconfirmed_ms = None;
        self.operator_logged.clear();
        o.next_part += 1;
        record.rev += 1;
        let total = o.parts.len();
        if o.next_part as usize >= total {
            log(
                &mut self.out,
                Level::Info,
                format!("sent a message to {} via DID {} ({total} part(s))", redact(&o.dst), redact(&o.did)),
            );
            self.outbound.remove(seq);
            self.counters.sent += 1;
            if receipts::owed(o) {
                // Owed durably, delivered like a bounce; the spool lets go once a ping confirms.
                self.write(record.clone(), Pending::Receipt);
                self.mailbox.add(record, false);
                self.mailbox.flush(now, &mut self.session, &mut self.out);
            } else {
                self.out.push_back(Action::SpoolRemove(record.id));
            }
        } else {
            self.outbound.update(record.clone());
            self.write(record, Pending::Progress { seq });
        }
    }

    pub(super) fn send_failed(&mut self, now: Now, seq: u64, f: Failure) {
        self.counters.send_failures.add(&f.status);
        let dst =
            self.outbound.record(seq).and_then(|r| r.outbound.as_ref()).map(|o| redact(&o.dst)).unwrap_or_default();
        match f.class {
            FailureClass::Transient => {
                log(&mut self.out, Level::Warn, format!("sending to {dst} failed ({}); will retry", f.status));
                self.retry_or_bounce(now, seq, f);
            }
            FailureClass::Ambiguous => {
                log(
                    &mut self.out,
                    Level::Warn,
                    format!(
                        "sending to {dst}: VoIP.ms's answer does not say whether it went out ({}); will look it up before any retry",
                        f.status
                    ),
                );
                self.outbound.verify_before_resend(seq);
                self.retry_or_bounce(now, seq, f);
            }
            FailureClass::RateLimited => {
                let pause = RATE_LIMIT_PAUSE + self.rng.up_to(RATE_LIMIT_PAUSE / 6);
                log(
                    &mut self.out,
                    Level::Warn,
                    format!("VoIP.ms rate limit hit ({}): pausing all calls for {}s", f.status, pause.as_secs()),
                );
                self.paused_until = Some(now.mono + pause);
                self.outbound.retry_at(seq, now.mono + pause);
            }
            FailureClass::SmsFailed if !self.outbound.note_sms_failed(seq) => {
                log(&mut self.out, Level::Warn, format!("VoIP.ms could not send to {dst} (sms_failed); one more try"));
                self.outbound.retry_at(seq, now.mono + SMS_FAILED_RETRY);
            }
            FailureClass::Quota => {
                self.quota.hit(now);
                self.seen.set_quota_until(self.quota.until_ms);
                let error = self.quota.error(now.wall_ms);
                log(
                    &mut self.out,
                    Level::Error,
                    format!(
                        "VoIP.ms daily sending limit reached (limit_reached): no sends until it resets; {}",
                        error.text
                    ),
                );
                self.bounce(now, seq, &error);
                for other in self.outbound.idle() {
                    self.bounce(now, other, &error);
                }
            }
            _ => {
                let level = if f.class == FailureClass::Operator && self.operator_logged.insert(f.status.clone()) {
                    Level::Error
                } else {
                    Level::Warn
                };
                log(
                    &mut self.out,
                    level,
                    format!("VoIP.ms did not send a message to {dst}: {} ({})", f.status, f.text),
                );
                let text = match self.short_code(seq) {
                    // The user wrote to the code: it may be quoted back to them (not to the log).
                    Some(code) if matches!(f.status.as_str(), "invalid_dst" | "invalid_to_number") => format!(
                        "VoIP.ms did not accept the short code {code}; VoIP.ms may not support texting short codes ({})",
                        f.status
                    ),
                    _ => f.text,
                };
                self.bounce(now, seq, &ErrorSpec::new(f.condition, f.error_type, text));
            }
        }
    }

    /// The short code a queued message goes to, if it goes to one.
    fn short_code(&self, seq: u64) -> Option<String> {
        let o = self.outbound.record(seq)?.outbound.as_ref()?;
        Destination::parse(&o.dst)?.short_code().map(|c| c.digits().to_string())
    }

    /// Retry a transient failure with back-off, or bounce it once `retry_for` has passed since
    /// the message was accepted.
    pub(super) fn retry_or_bounce(&mut self, now: Now, seq: u64, f: Failure) {
        let Some(accepted_ms) = self.outbound.record(seq).map(|r| r.accepted_ms) else {
            return;
        };
        let limit = self.config.voipms.retry_for;
        if now.wall_ms.saturating_sub(accepted_ms) >= limit.as_millis() as u64 {
            let hours = limit.as_secs() / 3600;
            let span =
                if hours >= 1 { format!("{hours} hour(s)") } else { format!("{} minute(s)", limit.as_secs() / 60) };
            let text = format!("{}; the gateway gave up after trying for {span}", f.text);
            self.bounce(now, seq, &ErrorSpec::new(f.condition, f.error_type, text));
            return;
        }
        let delay = backoff(self.outbound.attempts(seq), RETRY_BASE, RETRY_CAP, &mut self.rng);
        self.outbound.retry_at(seq, now.mono + delay);
    }

    /// Give up on a message: the error is owed to the sender, durably, through the mailbox.
    pub(super) fn bounce(&mut self, now: Now, seq: u64, error: &ErrorSpec) {
        let unconfirmed = self.outbound.unconfirmed(seq);
        let Some(mut record) = self.outbound.remove(seq) else {
            return;
        };
        self.counters.bounced.add(&error.condition);
        // Late: the sender's resource may be gone; the bare JID gets a notice too.
        let notice = mailbox::is_late(&record, now.wall_ms, &self.boot);
        let Some(o) = record.outbound.as_mut() else {
            return;
        };
        let (done, total) = (o.next_part as usize, o.parts.len());
        let mut text = if total > 1 && done > 0 {
            format!("{} (the first {done} of {total} parts were sent)", error.text)
        } else {
            error.text.clone()
        };
        if unconfirmed {
            // Its last send got no answer and could not be looked up: say so, rather than
            // invite a resend that may duplicate it.
            text.push_str("; the last attempt may nevertheless have reached the recipient");
        }
        o.bounce =
            Some(Bounce { condition: error.condition.clone(), error_type: error.error_type.clone(), text, notice });
        record.rev += 1;
        self.write(record.clone(), Pending::Bounce);
        self.mailbox.add(record, false);
        self.mailbox.flush(now, &mut self.session, &mut self.out);
    }
}
