//! What happens once the spool answers: a record is durable (answer the webhooks, deliver,
//! queue, send the next part) or could not be written (answer 503, tell the sender, retry).

use super::*;

/// What to do once a record is durably written.
#[derive(Debug)]
pub(super) enum Pending {
    /// One record of a received message (of its [`Arrival`], already in the mailbox): once all
    /// are durable, answer the webhooks and remember the keys.
    Inbound { arrival: u64 },
    /// A message for nobody: answer the webhooks, remember its keys.
    Unrouted { tokens: Vec<u64>, keys: Vec<String> },
    /// A new outbound message: queue it.
    Outbound { record: Box<Record> },
    /// Progress of a queued message: let its next part go.
    Progress { seq: u64 },
    /// A message's record now says its next part may be in flight: send it.
    Arm { seq: u64 },
    /// A bounce: nothing more to do.
    Bounce,
    /// A sent message whose XEP-0184 receipt is owed: nothing more to do (the mailbox has it).
    Receipt,
    /// A delivered message back in the spool to be delivered again: nothing more to do.
    Requeued,
    /// A message the XMPP server refused, being set aside in `undeliverable/`: then leave the
    /// spool (if still in it), and count it.
    Undeliverable { file: Box<Undeliverable>, spooled: bool },
}

/// A received message being written: one record for each user it reaches (a group MMS reaches
/// every mapped user among its recipients, each once), all written in one spool batch. The
/// webhooks waiting on it are answered, and its keys remembered, only once every record is
/// durable.
#[derive(Debug)]
pub(super) struct Arrival {
    /// Webhooks waiting for the answer (a repeated webhook joins the first).
    pub(super) tokens: Vec<u64>,
    /// Its seen keys: the VoIP.ms id key (shared by its records) and each record's fingerprint.
    keys: Vec<String>,
    /// (id key, fingerprint) of each record brought by a webhook.
    links: Vec<(String, String)>,
    /// Records not yet reported by the spool.
    unsynced: usize,
    /// Ids of the records durable, waiting for the rest.
    ready: Vec<String>,
    /// A record could not be written.
    failed: bool,
}

impl Arrival {
    /// A received message answered on `tokens`, with its seen `keys` and `links`.
    pub(super) fn new(tokens: Vec<u64>, keys: Vec<String>, links: Vec<(String, String)>) -> Arrival {
        Arrival { tokens, keys, links, unsynced: 0, ready: Vec::new(), failed: false }
    }
}

impl Gateway {
    pub(super) fn write(&mut self, record: Record, then: Pending) {
        if let Pending::Unrouted { keys, .. } = &then {
            for key in keys {
                self.pending_keys.insert(key.clone(), record.id.clone());
            }
        }
        self.pending.insert(record.id.clone(), then);
        self.out.push_back(Action::SpoolWrite(Box::new(record)));
    }

    /// Write the records of one received message (one per user), answered together, and
    /// deliver them at once: the stanzas go out while the fsync runs, and the webhook is still
    /// answered only once every record is durable. A crash in between costs at most a
    /// duplicate (VoIP.ms sends the unanswered webhook again), never a loss; the record leaves
    /// the mailbox, and the spool, only after a ping written later was answered.
    pub(super) fn write_arrival(&mut self, now: Now, records: Vec<Record>, arrival: Arrival) {
        let n = self.next_arrival;
        self.next_arrival += 1;
        if let Some(first) = records.first() {
            for key in &arrival.keys {
                self.pending_keys.insert(key.clone(), first.id.clone());
            }
        }
        self.arrivals.insert(n, Arrival { unsynced: records.len(), ..arrival });
        for record in records {
            // Held, unless a backlog already waits in the spool (then it joins it once durable:
            // its webhook is answered only then).
            self.mailbox.offer(record.clone(), false);
            self.write(record, Pending::Inbound { arrival: n });
        }
        self.mailbox.flush(now, &mut self.session, &mut self.out);
    }

    /// One record of an arrival was written (or `failed`): when it was the last, answer the
    /// webhooks (its records are already being delivered).
    fn arrival_progress(&mut self, now: Now, n: u64, record: Option<&str>) {
        let Some(a) = self.arrivals.get_mut(&n) else {
            return;
        };
        a.unsynced = a.unsynced.saturating_sub(1);
        match record {
            Some(id) => a.ready.push(id.to_string()),
            None => a.failed = true,
        }
        if a.unsynced > 0 {
            return;
        }
        let Some(a) = self.arrivals.remove(&n) else {
            return;
        };
        let reply = if a.failed { WebhookReply::Unavailable } else { WebhookReply::Accepted };
        for token in a.tokens {
            self.out.push_back(Action::WebhookReply { token, reply });
        }
        if a.failed {
            // Not all on disk: not remembered, so that VoIP.ms's retry (or backfill) brings it
            // again (a duplicate of what is being delivered, not a loss).
            for key in a.keys {
                self.pending_keys.remove(&key);
            }
        } else {
            self.remember(a.keys, now.wall_ms);
            for (id_key, fingerprint) in a.links {
                self.seen.link(&id_key, &fingerprint, now.wall_ms);
            }
        }
        for id in a.ready {
            let source = if self.backfill_pending.remove(&id) {
                self.advance_cursor();
                "backfill"
            } else {
                "webhook"
            };
            self.counters.received.add(source);
        }
    }

    pub(super) fn synced(&mut self, now: Now, id: &str) {
        match self.pending.remove(id) {
            Some(Pending::Inbound { arrival }) => self.arrival_progress(now, arrival, Some(id)),
            Some(Pending::Unrouted { tokens, keys }) => {
                for token in tokens {
                    self.out.push_back(Action::WebhookReply { token, reply: WebhookReply::Accepted });
                }
                self.counters.unrouted += 1;
                self.remember(keys, now.wall_ms);
            }
            Some(Pending::Outbound { record }) => {
                self.counters.accepted += 1;
                if let Some(o) = &record.outbound {
                    // The stanza id (the sender's own, made printable) ties this line to the
                    // message: from here on it cannot be lost.
                    let id: String = o
                        .stanza_id
                        .as_deref()
                        .unwrap_or("")
                        .chars()
                        .filter(|c| c.is_ascii_graphic())
                        .take(64)
                        .collect();
                    log(&mut self.out, Level::Info, format!("message '{id}' from {} is spooled for VoIP.ms", o.sender));
                }
                let seq = record.seq;
                self.outbound.add(*record);
                // Accepted while a limit_reached answer came in: bounced like the rest of the queue.
                if self.quota.closed(now.wall_ms) {
                    let error = self.quota.error(now.wall_ms);
                    self.bounce(now, seq, &error);
                }
            }
            Some(Pending::Progress { seq } | Pending::Arm { seq }) => self.outbound.synced(seq),
            Some(Pending::Undeliverable { file, spooled }) => {
                self.deliveries.set_aside();
                let user = file.record.inbound.as_ref().map_or("", |m| m.user.as_str());
                log(
                    &mut self.out,
                    Level::Error,
                    format!(
                        "the XMPP server refused a message for {user} ({}, {}): it is kept in state_dir/undeliverable/",
                        file.condition, file.error_type
                    ),
                );
                if spooled {
                    self.out.push_back(Action::SpoolRemove(file.record.id));
                }
            }
            Some(Pending::Bounce | Pending::Receipt | Pending::Requeued) | None => {}
        }
    }

    pub(super) fn write_failed(&mut self, now: Now, id: &str) {
        match self.pending.remove(id) {
            Some(Pending::Inbound { arrival, .. }) => {
                if self.backfill_pending.remove(id) {
                    // Not on disk: the cursor must not pass it; the next run finds it again.
                    self.backfill_failed = true;
                    self.backfill_until = None;
                }
                self.arrival_progress(now, arrival, None);
            }
            Some(Pending::Unrouted { tokens, keys }) => {
                for key in keys {
                    self.pending_keys.remove(&key);
                }
                for token in tokens {
                    self.out.push_back(Action::WebhookReply { token, reply: WebhookReply::Unavailable });
                }
            }
            Some(Pending::Outbound { record }) => {
                // Not stored, so not accepted: the sender hears it (once the stream is up), even
                // though the error itself cannot be stored either.
                let mut record = record;
                if let Some(o) = record.outbound.as_mut() {
                    o.bounce = Some(Bounce {
                        condition: "resource-constraint".into(),
                        error_type: "wait".into(),
                        text: "the gateway cannot store messages right now; try again later".into(),
                        notice: false,
                    });
                    self.mailbox.add(*record, false);
                    self.mailbox.flush(now, &mut self.session, &mut self.out);
                }
            }
            Some(Pending::Progress { seq }) => {
                // Keep going: the part was sent; after a crash it could be sent again.
                self.outbound.synced(seq);
            }
            Some(Pending::Arm { seq }) => {
                // The "may be in flight" mark is not on disk: do not send on it; try later.
                self.outbound.disarm(seq);
                self.retry_or_bounce(now, seq, api::classify_status("spool_unwritable"));
            }
            Some(Pending::Undeliverable { file, .. }) => {
                // Not set aside: it stays owed, and is delivered again later (a refusal then
                // tries the file once more).
                log(
                    &mut self.out,
                    Level::Error,
                    "a message the XMPP server refused could not be kept in state_dir/undeliverable/; it will be delivered again later",
                );
                self.deliveries.retry_later(file.record, now.mono);
            }
            Some(Pending::Requeued) => log(
                &mut self.out,
                Level::Error,
                "a message to deliver again could not be written back to the spool; it is kept in memory",
            ),
            Some(Pending::Bounce | Pending::Receipt) | None => {}
        }
    }
}
