//! SIGKILL at random moments while messages flow both ways: nothing either side was told was
//! accepted is lost, and the duplicates are bounded by what was in flight at each crash.
//!
//! Inbound, a few threads post webhooks with unique texts; a `200` answer is the acceptance.
//! Outbound, the XMPP peer sends chat messages with unique texts; the gateway's line "message
//! 'ID' … is spooled for VoIP.ms" is the acceptance. The gateway is killed 3 or 4 times after
//! 100–600 ms of traffic (the schedule comes from `CRASH_SEED`, or the clock), and after each kill
//! the spool is read (`spool::peek`): those records are what was in flight, the only ones a
//! restart may deliver or send again. After the last start the traffic stops, the gateway drains
//! its spool, and the counts are checked:
//! - every accepted inbound text reached alice, every accepted outbound text has a successful
//!   sendSMS;
//! - deliveries beyond the first ≤ inbound records in flight at the kills (in all, and per text:
//!   a text is repeated only as often as it was in the spool at a kill); the same for sendSMS.

use super::chat;
use crate::support::harness::*;
use crate::support::xmpp_peer::Peer;
use mock_voipms::MockConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use voipms_xmpp::core::spool_record::Kind;
use voipms_xmpp::core::xmpp::element::{Element, NsContext};
use voipms_xmpp::core::xmpp::ns;
use voipms_xmpp::spool;

/// The user's full JID on the XMPP side.
const SENDER: &str = "alice@example.com/phone";
/// Threads posting webhooks at once.
const POSTERS: usize = 3;
/// How long the drained state may take to show up after the last start.
const DRAIN: Duration = Duration::from_secs(30);

/// A small LCG (Knuth's MMIX constants): the kill schedule without a crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The webhook side: where to post, and what happened to each post.
#[derive(Default)]
struct Intake {
    /// The running gateway's webhook address (`None` while it is down).
    addr: Mutex<Option<SocketAddr>>,
    addr_set: Condvar,
    /// The current run, for the texts.
    run: AtomicUsize,
    next: AtomicUsize,
    stop: AtomicBool,
    /// Every text posted (answered or not).
    posted: Mutex<Vec<String>>,
    /// Texts answered `200` (`ok`): accepted.
    accepted: Mutex<Vec<String>>,
    /// Answered, but not `200`.
    refused: AtomicUsize,
    /// No answer (the gateway was down or died during the request).
    unanswered: AtomicUsize,
}

/// Stops the posters however the test ends.
struct StopOnDrop(Arc<Intake>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.addr_set.notify_all();
    }
}

impl Intake {
    fn set_addr(&self, addr: Option<SocketAddr>) {
        *self.addr.lock().unwrap() = addr;
        self.addr_set.notify_all();
    }

    /// The address to post to; `None` once stopped.
    fn wait_addr(&self) -> Option<SocketAddr> {
        let mut addr = self.addr.lock().unwrap();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(a) = *addr {
                return Some(a);
            }
            addr = self.addr_set.wait_timeout(addr, Duration::from_millis(50)).unwrap().0;
        }
    }
}

fn poster(intake: &Intake, seed: u64) {
    let mut rng = Lcg(seed);
    while let Some(addr) = intake.wait_addr() {
        let n = intake.next.fetch_add(1, Ordering::SeqCst);
        let text = format!("in-{}-{n}", intake.run.load(Ordering::SeqCst));
        intake.posted.lock().unwrap().push(text.clone());
        match try_post(addr, &webhook_body(FRIEND, ALICE_DID, &text, &[])) {
            // The gateway answers `200 ok` only once the message is durable. A kill can cut the
            // answer after its status line; VoIP.ms looks only at the status, so that counts too.
            Some((200, body)) => {
                assert!(body.is_empty() || "ok".starts_with(body.as_str()), "200 with body {body:?}");
                intake.accepted.lock().unwrap().push(text);
            }
            Some(_) => {
                intake.refused.fetch_add(1, Ordering::SeqCst);
            }
            None => {
                intake.unanswered.fetch_add(1, Ordering::SeqCst);
            }
        }
        // A steady pace, a little irregular.
        thread::sleep(Duration::from_millis(rng.range(2, 12)));
    }
}

/// POST a webhook; unlike `Gateway::post_webhook`, a dead gateway is an answer (`None`), not a
/// panic. Whatever arrived before an error counts: the status line is what the sender was told.
fn try_post(addr: SocketAddr, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!(
        "POST /voipms?key={KEY} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_string()))
}

/// Ping the gateway and read everything it wrote before the answer (its own pings are answered
/// on the way, which is what confirms deliveries).
fn sync(peer: &mut Peer, syncs: &mut u64) {
    *syncs += 1;
    let id = format!("sync-{syncs}");
    peer.send(&format!("<iq type='get' id='{id}' from='{SENDER}' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>"));
    loop {
        let e = peer.next(&format!("the answer to ping {id}"));
        if e.is("iq", ns::COMPONENT) && e.get_attr("id") == Some(id.as_str()) {
            assert_eq!(e.get_attr("type"), Some("result"), "the gateway answers pings");
            return;
        }
    }
}

/// The test thread's side of the traffic: outbound messages, interleaved with reading.
struct Outgoing {
    /// Every outbound text sent (accepted or not).
    sent: Vec<String>,
    syncs: u64,
}

impl Outgoing {
    fn send(&mut self, peer: &mut Peer, run: usize) {
        let text = format!("out-{run}-{}", self.sent.len());
        peer.send(&chat(SENDER, &format!("+1{FRIEND}"), &text, &text));
        self.sent.push(text);
    }

    /// Send and read for `d`.
    fn traffic(&mut self, peer: &mut Peer, run: usize, d: Duration, rng: &mut Lcg) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.send(peer, run);
            sync(peer, &mut self.syncs);
            // About as fast as the gateway sends one after the other to a single number, so
            // that the backlog (in flight at a kill) stays small.
            thread::sleep(Duration::from_millis(rng.range(5, 20)));
        }
    }
}

/// Messages to alice, by body, in everything the peer read.
fn count_deliveries(transcript: &str, into: &mut BTreeMap<String, usize>) {
    let ctx = NsContext::component();
    for line in transcript.lines() {
        match Element::parse(line.as_bytes(), &ctx) {
            Ok(e) => {
                if e.is("message", ns::COMPONENT)
                    && e.get_attr("to") == Some(ALICE)
                    && let Some(body) = e.get_child("body", ns::COMPONENT)
                {
                    *into.entry(body.text_content()).or_default() += 1;
                }
            }
            Err(err) => assert!(!line.contains("<body"), "cannot read a stanza of the transcript ({err}): {line}"),
        }
    }
}

/// Outbound texts (= stanza ids) the gateway said are durable.
fn spooled_ids(log: &str, into: &mut BTreeSet<String>) {
    let tail = format!("' from {SENDER} is spooled for VoIP.ms");
    for line in log.lines() {
        if let Some(end) = line.find(&tail)
            && let Some(start) = line[..end].rfind("message '")
        {
            into.insert(line[start + "message '".len()..end].to_string());
        }
    }
}

/// What the spool held after one kill.
struct Kill {
    traffic_ms: u64,
    inbound: Vec<String>,
    outbound: Vec<String>,
    /// How many of `inbound` the dead stream had carried already (written, not yet confirmed or
    /// not yet removed from disk).
    inbound_written: usize,
    /// How many of `outbound` VoIP.ms had already sent (the removal was not yet on disk).
    outbound_sent: usize,
}

fn seed() -> u64 {
    std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        d.as_secs() ^ u64::from(d.subsec_nanos()) ^ (u64::from(std::process::id()) << 32)
    })
}

/// The text of a successful sendSMS.
fn success(call: &mock_voipms::Call) -> Option<String> {
    (call.status == "success").then(|| call.param("message").unwrap_or_default().to_string())
}

fn extras(counts: &BTreeMap<String, usize>) -> usize {
    counts.values().map(|c| c.saturating_sub(1)).sum()
}

#[test]
fn sigkill_at_random_moments_loses_nothing_accepted_and_bounds_duplicates() {
    let t0 = Instant::now();
    let seed = seed();
    eprintln!("crash: seed {seed} (CRASH_SEED={seed} replays the schedule)");
    let mut rng = Lcg(seed);
    let mut mock = MockConfig::for_tests(&[ALICE_DID, BOB_DID, BOB_DID2]);
    mock.account.daily_limit = 1_000_000;
    let mut env = TestEnv::with_mock("crash", mock);
    let kills = rng.range(3, 4) as usize;

    let intake = Arc::new(Intake::default());
    let _stop_posters = StopOnDrop(intake.clone());
    let posters: Vec<_> = (0..POSTERS)
        .map(|_| {
            let (intake, seed) = (intake.clone(), rng.next());
            thread::spawn(move || poster(&intake, seed))
        })
        .collect();

    let mut out = Outgoing { sent: Vec::new(), syncs: 0 };
    let mut logs: Vec<String> = Vec::new();
    let mut transcripts: Vec<String> = Vec::new();
    let mut at_kills: Vec<Kill> = Vec::new();

    for run in 0..kills {
        intake.run.store(run, Ordering::SeqCst);
        let gw = env.start();
        intake.set_addr(Some(gw.webhook));
        let mut peer = env.xmpp.accept();
        let traffic_ms = rng.range(100, 600);
        out.traffic(&mut peer, run, Duration::from_millis(traffic_ms), &mut rng);
        // Sometimes die with messages on the wire that the gateway has not read yet.
        for _ in 0..rng.range(0, 3) {
            out.send(&mut peer, run);
        }
        // Lines logged after this copy are not counted: conservative.
        logs.push(gw.log_text());
        gw.kill9();
        intake.set_addr(None);
        let records = spool::peek(&env.state_dir()).expect("read the spool after a kill");
        let mut kill =
            Kill { traffic_ms, inbound: Vec::new(), outbound: Vec::new(), inbound_written: 0, outbound_sent: 0 };
        for r in &records {
            match r.kind() {
                Kind::Inbound => kill.inbound.push(r.inbound.as_ref().unwrap().text.clone()),
                Kind::Outbound => {
                    let o = r.outbound.as_ref().unwrap();
                    assert!(o.bounce.is_none(), "no outbound message fails here: {r:?}");
                    kill.outbound.push(o.parts.iter().map(|p| p.message.as_str()).collect());
                }
                Kind::Unrouted => panic!("nothing is unrouted here: {r:?}"),
            }
        }
        let posted = intake.posted.lock().unwrap().len();
        assert!(kill.inbound.len() <= posted, "{} inbound in the spool, {posted} posted", kill.inbound.len());
        assert!(kill.outbound.len() <= out.sent.len(), "{} outbound in the spool", kill.outbound.len());
        let sent: BTreeSet<String> = env.voipms.calls_for("sendSMS").iter().filter_map(success).collect();
        kill.outbound_sent = kill.outbound.iter().filter(|t| sent.contains(*t)).count();
        // Read what the dead gateway wrote before it died.
        peer.expect_closed();
        let mut written = BTreeMap::new();
        count_deliveries(&peer.transcript(), &mut written);
        kill.inbound_written = kill.inbound.iter().filter(|t| written.contains_key(*t)).count();
        at_kills.push(kill);
        transcripts.push(peer.transcript());
    }

    // The last start: some more traffic, then quiet until the spool is empty.
    let run = kills;
    intake.run.store(run, Ordering::SeqCst);
    let gw = env.start();
    intake.set_addr(Some(gw.webhook));
    let mut peer = env.xmpp.accept();
    let final_from = out.sent.len();
    out.traffic(&mut peer, run, Duration::from_millis(rng.range(100, 600)), &mut rng);
    intake.stop.store(true, Ordering::SeqCst);
    intake.addr_set.notify_all();
    for p in posters {
        p.join().expect("a poster thread");
    }
    // Drained: every outbound message of this run is durable (no crash now, so all of them),
    // and the spool is empty (everything delivered and confirmed, everything sent).
    let deadline = Instant::now() + DRAIN;
    let drained = loop {
        sync(&mut peer, &mut out.syncs);
        let mut spooled = BTreeSet::new();
        spooled_ids(&gw.log_text(), &mut spooled);
        let all_spooled = out.sent[final_from..].iter().all(|t| spooled.contains(t));
        if all_spooled && spool::peek(&env.state_dir()).is_ok_and(|r| r.is_empty()) {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        thread::sleep(Duration::from_millis(20));
    };
    logs.push(gw.log_text());
    transcripts.push(peer.transcript());

    // Count.
    let accepted_in: BTreeSet<String> = intake.accepted.lock().unwrap().iter().cloned().collect();
    let posted_in: BTreeSet<String> = intake.posted.lock().unwrap().iter().cloned().collect();
    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    for t in &transcripts {
        count_deliveries(t, &mut delivered);
    }
    let mut accepted_out = BTreeSet::new();
    for l in &logs {
        spooled_ids(l, &mut accepted_out);
    }
    let mut sent_sms: BTreeMap<String, usize> = BTreeMap::new();
    for text in env.voipms.calls_for("sendSMS").iter().filter_map(success) {
        *sent_sms.entry(text).or_default() += 1;
    }
    let mut in_flight_in: BTreeMap<&str, usize> = BTreeMap::new();
    let mut in_flight_out: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &at_kills {
        for t in &k.inbound {
            *in_flight_in.entry(t).or_default() += 1;
        }
        for t in &k.outbound {
            *in_flight_out.entry(t).or_default() += 1;
        }
    }
    let missing_in: Vec<&String> = accepted_in.iter().filter(|t| !delivered.contains_key(*t)).collect();
    let missing_out: Vec<&String> = accepted_out.iter().filter(|t| !sent_sms.contains_key(*t)).collect();
    let (dup_in, dup_out) = (extras(&delivered), extras(&sent_sms));
    let (flight_in, flight_out) = (in_flight_in.values().sum::<usize>(), in_flight_out.values().sum::<usize>());
    let over_in: Vec<(&String, usize, usize)> = delivered
        .iter()
        .filter(|(t, c)| **c > 1 + in_flight_in.get(t.as_str()).copied().unwrap_or(0))
        .map(|(t, c)| (t, *c, in_flight_in.get(t.as_str()).copied().unwrap_or(0)))
        .collect();
    let over_out: Vec<(&String, usize, usize)> = sent_sms
        .iter()
        .filter(|(t, c)| **c > 1 + in_flight_out.get(t.as_str()).copied().unwrap_or(0))
        .map(|(t, c)| (t, *c, in_flight_out.get(t.as_str()).copied().unwrap_or(0)))
        .collect();
    let phantom_in: Vec<&String> = delivered.keys().filter(|t| !posted_in.contains(*t)).collect();
    let sent_out: BTreeSet<&String> = out.sent.iter().collect();
    let phantom_out: Vec<&String> = sent_sms.keys().filter(|t| !sent_out.contains(t)).collect();

    let kills_text: Vec<String> = at_kills
        .iter()
        .enumerate()
        .map(|(i, k)| {
            format!(
                "kill {} after {} ms of traffic: in flight {} inbound ({} already written to the dead stream), {} outbound ({} already sent)",
                i + 1,
                k.traffic_ms,
                k.inbound.len(),
                k.inbound_written,
                k.outbound.len(),
                k.outbound_sent
            )
        })
        .collect();
    let most_in = delivered.values().max().copied().unwrap_or(0);
    let most_out = sent_sms.values().max().copied().unwrap_or(0);
    let summary = format!(
        "crash: seed {seed}, {kills} kills, {:.1} s\n\
         inbound: {} posted, {} accepted (200), {} refused, {} unanswered; {} delivered ({} texts), {dup_in} duplicates (at most {most_in} copies of one), {flight_in} in flight at the kills\n\
         outbound: {} sent by the peer, {} accepted (spooled); {} successful sendSMS ({} texts), {dup_out} duplicates (at most {most_out} copies of one), {flight_out} in flight at the kills\n{}",
        t0.elapsed().as_secs_f64(),
        posted_in.len(),
        accepted_in.len(),
        intake.refused.load(Ordering::SeqCst),
        intake.unanswered.load(Ordering::SeqCst),
        delivered.values().sum::<usize>(),
        delivered.len(),
        out.sent.len(),
        accepted_out.len(),
        sent_sms.values().sum::<usize>(),
        sent_sms.len(),
        kills_text.join("\n")
    );
    eprintln!("{summary}");
    let diagnose = || {
        let logs: Vec<String> =
            logs.iter().enumerate().map(|(i, l)| format!("--- gateway log, run {i} ---\n{l}")).collect();
        let spools: Vec<String> = at_kills
            .iter()
            .enumerate()
            .map(|(i, k)| format!("spool after kill {}: inbound {:?}; outbound {:?}", i + 1, k.inbound, k.outbound))
            .collect();
        format!("(counts above)\n{}\n{}", spools.join("\n"), logs.join("\n"))
    };

    assert!(
        drained,
        "the gateway did not drain within {DRAIN:?}: spool {:?}\n{}",
        spool::peek(&env.state_dir()).map(|r| r.into_iter().map(|r| r.id).collect::<Vec<_>>()),
        diagnose()
    );
    assert!(missing_in.is_empty(), "accepted inbound messages never delivered: {missing_in:?}\n{}", diagnose());
    assert!(missing_out.is_empty(), "accepted outbound messages never sent: {missing_out:?}\n{}", diagnose());
    assert!(phantom_in.is_empty(), "delivered but never posted: {phantom_in:?}");
    assert!(phantom_out.is_empty(), "sent but never written by the peer: {phantom_out:?}");
    assert!(dup_in <= flight_in, "{dup_in} inbound duplicates > {flight_in} in flight\n{}", diagnose());
    assert!(dup_out <= flight_out, "{dup_out} outbound duplicates > {flight_out} in flight\n{}", diagnose());
    assert!(
        over_in.is_empty(),
        "repeated more often than in flight at a kill (text, deliveries, kills in flight): {over_in:?}\n{}",
        diagnose()
    );
    assert!(
        over_out.is_empty(),
        "sent more often than in flight at a kill (text, sends, kills in flight): {over_out:?}\n{}",
        diagnose()
    );
    // Not vacuous: messages flowed both ways.
    assert!(accepted_in.len() >= 10 && accepted_out.len() >= 10, "too little traffic\n{summary}");
}
