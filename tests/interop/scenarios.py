"""The interop scenarios. Each is an async function of a Ctx; it raises AssertionError (or any
exception) on failure. Every wait is for an event, with a deadline; texts carry a nonce so that
no scenario can match another's stanza.

The expected XML is that of /work/shared/docs/xmpp.md §6 (the project's XMPP contract).
"""

from __future__ import annotations

import asyncio
import secrets

from client import (NS_GATEWAY, Client, IqError, WaitTimeout, addresses, caps_element, caps_hash,
                    describe)
import stack
from stack import DOMAIN, USERS, http

ALICE, BOB = "alice@localhost", "bob@localhost"
ALICE_DID = USERS[ALICE][1][0]
BOB_DID, BOB_DID2 = USERS[BOB][1]


def contact(number: str) -> str:
    """The contact JID of a 10-digit NANP number through the user's default DID."""
    return f"+1{number}@{DOMAIN}"


def digits10(s: str) -> str:
    d = "".join(c for c in str(s) if c.isdigit())
    return d[-10:]


def nonce() -> str:
    return secrets.token_hex(4)


class Ctx:
    """What a scenario gets: the running stack and the two users' clients."""

    def __init__(self, server: stack.XmppServer, mock: stack.Mock, gateway: stack.Gateway,
                 alice: Client, bob: Client):
        self.server, self.mock, self.gateway = server, mock, gateway
        self.alice, self.bob = alice, bob

    def clients(self) -> list[Client]:
        return [self.alice, self.bob]

    # -- mock-voipms -----------------------------------------------------------------------

    async def inbound(self, did: str, frm: str, text: str, media: list[str] | None = None,
                      kind: str | None = None, expect_acked: bool = True) -> dict:
        """POST /_mock/inbound: mock-voipms stores the message and pushes its webhook to the
        gateway; the gateway's 200 means the message is on disk."""
        body = {"did": did, "from": frm, "text": text}
        if media:
            body["media"] = media
        if kind:
            body["kind"] = kind
        status, rep = await asyncio.to_thread(http, "POST", f"{self.mock.url}/_mock/inbound", body)
        assert status == 200, f"POST /_mock/inbound: {status} {rep}"
        if expect_acked:
            dels = rep.get("deliveries", [])
            assert dels and all(d.get("acked") for d in dels), f"the gateway did not acknowledge the webhook: {dels}"
        return rep

    async def calls(self, method: str | None = None, since: int = 0) -> list[dict]:
        q = f"?since={since}" + (f"&method={method}" if method else "")
        status, calls = await asyncio.to_thread(http, "GET", f"{self.mock.url}/_mock/calls{q}")
        assert status == 200, f"GET /_mock/calls: {status} {calls}"
        return calls

    async def last_seq(self) -> int:
        calls = await self.calls()
        return max((c["seq"] for c in calls), default=0)

    async def wait_calls(self, method: str, pred, since: int, timeout: float = 15.0, count: int = 1,
                         what: str = "") -> list[dict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            calls = await self.calls(method, since)
            hits = [c for c in calls if pred(c)]
            if len(hits) >= count:
                return hits
            if loop.time() > deadline:
                seen = [(c["method"], c.get("status"), {k: v for k, v in c["params"].items()
                                                      if k in ("did", "dst", "message", "media1")}) for c in calls]
                raise WaitTimeout(f"mock-voipms: {what or method} not called within {timeout:.0f} s "
                                  f"({len(hits)} of {count}); calls since: {seen[-8:]}")
            await asyncio.sleep(0.05)

    async def fault(self, fault: dict):
        status, rep = await asyncio.to_thread(http, "POST", f"{self.mock.url}/_mock/faults", fault)
        assert status == 200, f"POST /_mock/faults: {status} {rep}"

    async def faults(self) -> list:
        status, rep = await asyncio.to_thread(http, "GET", f"{self.mock.url}/_mock/faults")
        return rep

    async def post_webhook(self, body: dict) -> tuple[int, object]:
        """POST a VoIP.ms webhook body straight to the gateway (what mock-voipms would send)."""
        return await asyncio.to_thread(http, "POST", self.gateway.webhook_url, body)


# ---------------------------------------------------------------------------------------------
# 1-5: messages


async def sms_in(ctx: Ctx):
    """An SMS to alice's DID reaches alice as a chat from the sender's contact JID."""
    frm = "5559990001"
    text = f"SMS in {nonce()}: <tags> & ünïcödé ✓"
    mark = ctx.alice.mark()
    await ctx.inbound(ALICE_DID, frm, text)
    m = await ctx.alice.wait_for("message", lambda m: m["body"] == text, since=mark, what=f"the SMS {text!r}")
    assert m["from"].bare == contact(frm), f"from {m['from']}, expected {contact(frm)}"
    assert m["type"] == "chat", f"type {m['type']!r}, expected 'chat'"
    assert m["id"], "the message has no id (xmpp.md §6.10)"


async def sms_out(ctx: Ctx):
    """alice writes to a contact: mock-voipms gets sendSMS from alice's DID to that number."""
    dst = "5559998888"
    text = f"SMS out {nonce()}: ünïcödé ✓"
    since = await ctx.last_seq()
    ctx.alice.send_chat(contact(dst), text)
    [call] = await ctx.wait_calls("sendSMS", lambda c: c["params"].get("message") == text, since,
                                  what=f"sendSMS with {text!r}")
    p = call["params"]
    assert digits10(p.get("did")) == ALICE_DID, f"did {p.get('did')!r}, expected alice's {ALICE_DID}"
    assert digits10(p.get("dst")) == dst, f"dst {p.get('dst')!r}, expected {dst}"
    assert call["status"] == "success", f"sendSMS answered {call['status']}"


async def mms_in(ctx: Ctx):
    """An MMS with text and a picture: one message with the text, one whose body is the URL
    with that URL as XEP-0066 OOB (xmpp.md §6.5)."""
    frm = "5559990002"
    n = nonce()
    text = f"MMS in {n}"
    url = f"https://example.com/interop/{n}/cat.jpg"
    mark = ctx.alice.mark()
    await ctx.inbound(ALICE_DID, frm, text, media=[url], kind="mms")
    t = await ctx.alice.wait_for("message", lambda m: m["body"] == text, since=mark, what="the MMS text")
    assert t["from"].bare == contact(frm), f"text from {t['from']}"
    media = await ctx.alice.wait_for("message", lambda m: m["oob"]["url"] and m["from"].bare == contact(frm),
                                     since=mark, what="the MMS picture (a message with an OOB URL)")
    got = media["oob"]["url"]
    assert got == url or got.startswith(ctx.mock.url + "/media/"), f"OOB URL {got!r}, expected {url!r}"
    assert media["body"] == got, f"body {media['body']!r} is not the OOB URL {got!r} (Conversations needs it)"
    pics = ctx.alice.find("message", lambda m: m["oob"]["url"] == got, since=mark)
    assert len(pics) == 1, f"{len(pics)} messages carry the picture"


async def mms_out(ctx: Ctx):
    """alice sends a picture (body = URL, with OOB): mock-voipms gets sendMMS with media1 = URL
    and no text."""
    dst = "5559998889"
    url = f"https://upload.localhost/interop/{nonce()}/photo.jpg"
    since = await ctx.last_seq()
    ctx.alice.send_chat(contact(dst), url, oob=url)
    [call] = await ctx.wait_calls("sendMMS", lambda c: c["params"].get("media1") == url, since,
                                  what=f"sendMMS with media1={url}")
    p = call["params"]
    assert digits10(p.get("did")) == ALICE_DID, f"did {p.get('did')!r}"
    assert digits10(p.get("dst")) == dst, f"dst {p.get('dst')!r}"
    assert p.get("message", "") == "", f"message {p.get('message')!r}: the URL should not also go as text"
    assert not p.get("media2"), f"media2 {p.get('media2')!r}"
    texts = await ctx.calls("sendSMS", since)
    assert not [c for c in texts if url in c["params"].get("message", "")], "the URL also went out as an SMS"


async def receipts(ctx: Ctx):
    """A receipt request is answered once VoIP.ms took the message (xmpp.md §6.3)."""
    dst = "5559998890"
    text = f"receipt please {nonce()}"
    since = await ctx.last_seq()
    mark = ctx.alice.mark()
    mid = ctx.alice.send_chat(contact(dst), text, receipt=True)
    r = await ctx.alice.wait_for("receipt", lambda m: m["receipt"] == mid, since=mark,
                                 what=f"a receipt for id {mid}")
    assert r["from"].bare == contact(dst), f"receipt from {r['from']}, expected {contact(dst)}"
    calls = await ctx.calls("sendSMS", since)
    assert [c for c in calls if c["params"].get("message") == text and c["status"] == "success"], \
        "the receipt came before VoIP.ms accepted the message"
    assert not ctx.alice.find("error", lambda m: m["id"] == mid, mark), "an error came for a message that went out"


async def voipms_error(ctx: Ctx):
    """VoIP.ms refuses a send (invalid_dst): alice gets a message error with the same id, a
    condition and a text, and no receipt (xmpp.md §9: invalid_dst → item-not-found)."""
    dst = "5559998891"
    text = f"refused {nonce()}"
    await ctx.fault({"method": "sendSMS", "count": 1, "kind": {"status": "invalid_dst"}})
    since = await ctx.last_seq()
    mark = ctx.alice.mark()
    mid = ctx.alice.send_chat(contact(dst), text, receipt=True)
    e = await ctx.alice.wait_for("error", lambda m: m["id"] == mid, since=mark, timeout=20,
                                 what=f"a message error for id {mid}")
    assert e["from"].bare == contact(dst), f"error from {e['from']}"
    cond, etext = e["error"]["condition"], e["error"]["text"]
    assert cond == "item-not-found", f"condition {cond!r}, expected item-not-found"
    assert e["error"]["type"] == "cancel", f"error type {e['error']['type']!r}, expected cancel"
    assert etext.strip(), "the error has no <text/>"
    assert text not in etext, "the error echoes the message body"
    calls = await ctx.calls("sendSMS", since)
    assert [c for c in calls if c["status"] == "invalid_dst"], f"the fault was not hit: {calls}"
    assert not ctx.alice.find("receipt", lambda m: m["receipt"] == mid, mark), "a receipt came for a refused message"
    assert not await ctx.faults(), "the injected fault is still queued"


# ---------------------------------------------------------------------------------------------
# 6: discovery, the gateway prompt, presence


async def disco_domain(ctx: Ctx):
    """disco#info on the gateway's domain: gateway/sms and the features of xmpp.md §6.1."""
    info = await ctx.alice.disco_info(DOMAIN)
    ids = {(c, t) for c, t, _lang, _name in info["identities"]}
    assert ("gateway", "sms") in ids, f"identities {sorted(ids)}, expected gateway/sms"
    feats = set(info["features"])
    want = {"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items", NS_GATEWAY,
            "urn:xmpp:ping", "jabber:iq:version", "urn:xmpp:receipts"}
    assert want <= feats, f"missing features {sorted(want - feats)} (has {sorted(feats)})"
    for never in ("jabber:iq:register", "http://jabber.org/protocol/chatstates"):
        assert never not in feats, f"advertises {never} (xmpp.md §6.1 says not to)"
    # disco#items: nothing to list; an unknown node: item-not-found.
    items = await ctx.alice["xep_0030"].get_items(jid=DOMAIN, timeout=10)
    assert items["type"] == "result", f"disco#items: {items['type']}"
    try:
        await ctx.alice.disco_info(DOMAIN, node="interop-no-such-node")
    except IqError as e:
        assert e.condition == "item-not-found", f"unknown node: {e.condition}, expected item-not-found"
    else:
        raise AssertionError("disco#info on an unknown node answered a result")


async def disco_contact(ctx: Ctx):
    """disco#info on a contact JID: client/sms, receipts, OOB, ping."""
    info = await ctx.alice.disco_info(contact("5559990003"))
    ids = {(c, t) for c, t, _lang, _name in info["identities"]}
    assert ("client", "sms") in ids, f"identities {sorted(ids)}, expected client/sms"
    feats = set(info["features"])
    want = {"http://jabber.org/protocol/disco#info", "urn:xmpp:receipts", "jabber:x:oob", "urn:xmpp:ping"}
    assert want <= feats, f"missing features {sorted(want - feats)} (has {sorted(feats)})"
    # XEP-0199 ping to a contact and to the domain.
    for jid in (contact("5559990003"), DOMAIN):
        res = await ctx.alice.iq_raw(jid, "get", "<ping xmlns='urn:xmpp:ping'/>")
        assert res["type"] == "result", f"ping {jid}: {res['type']}"


async def gateway_prompt(ctx: Ctx):
    """XEP-0100 jabber:iq:gateway: the prompt, and a typed number turned into a contact JID."""
    res = await ctx.alice.iq_raw(DOMAIN, "get", f"<query xmlns='{NS_GATEWAY}'/>")
    q = res.xml.find(f"{{{NS_GATEWAY}}}query")
    assert q is not None, "no jabber:iq:gateway query in the result"
    prompt, desc = q.find(f"{{{NS_GATEWAY}}}prompt"), q.find(f"{{{NS_GATEWAY}}}desc")
    assert prompt is not None and (prompt.text or "").strip(), "no <prompt/>"
    assert desc is not None and (desc.text or "").strip(), "no <desc/>"
    res = await ctx.alice.iq_raw(DOMAIN, "set", f"<query xmlns='{NS_GATEWAY}'><prompt>(555) 765-4321</prompt></query>")
    jid = res.xml.find(f"{{{NS_GATEWAY}}}query/{{{NS_GATEWAY}}}jid")
    assert jid is not None and jid.text == f"+15557654321@{DOMAIN}", \
        f"jid {None if jid is None else jid.text!r}, expected +15557654321@{DOMAIN}"
    try:
        await ctx.alice.iq_raw(DOMAIN, "set", f"<query xmlns='{NS_GATEWAY}'><prompt>not a number</prompt></query>")
    except IqError as e:
        assert e.condition in ("not-acceptable", "bad-request", "jid-malformed", "item-not-found"), \
            f"a non-number: {e.condition}"
    else:
        raise AssertionError("a prompt that is not a phone number was turned into a JID")


async def subscribe_contact(ctx: Ctx):
    """alice subscribes to a contact: `subscribed` and an available presence come back, the
    roster holds the contact as `to`/`both`, and a new session's probe is answered."""
    jid = contact("5559990004")
    mark = ctx.alice.mark()
    ctx.alice.send_presence(pto=jid, ptype="subscribe")
    await ctx.alice.wait_for("presence", lambda p: p["from"].bare == jid and p["type"] == "subscribed",
                             since=mark, what=f"'subscribed' from {jid}")
    await ctx.alice.wait_for("presence", lambda p: p["from"].bare == jid and p["type"] == "available",
                             since=mark, what=f"available presence from {jid}")

    def sub():
        return ctx.alice.client_roster[jid]["subscription"] if jid in ctx.alice.client_roster else None
    await ctx.alice.wait_for("roster", lambda _: sub() in ("to", "both"), since=0, timeout=15,
                             what=f"roster subscription to/both for {jid} (now {sub()!r})")
    # A second session of alice: the server probes her contacts; the gateway answers; the
    # roster the server sends her still has the contact.
    other = Client(ALICE, USERS[ALICE][0], "127.0.0.1", ctx.server.c2s_port, resource="second")
    try:
        await other.start()
        assert other.client_roster[jid]["subscription"] in ("to", "both"), \
            f"a new session's roster: {other.client_roster[jid]['subscription']!r}"
        await other.wait_for("presence", lambda p: p["from"].bare == jid and p["type"] == "available",
                             what=f"available presence from {jid} (answer to the server's probe)")
    finally:
        await other.stop()


async def caps(ctx: Ctx):
    """alice subscribes to the gateway itself (what puts it in the roster for Cheogram's
    prompt): its presence carries XEP-0115 caps whose ver is the hash of its disco#info."""
    mark = ctx.alice.mark()
    ctx.alice.send_presence(pto=DOMAIN, ptype="subscribe")
    await ctx.alice.wait_for("presence", lambda p: p["from"].bare == DOMAIN and p["type"] == "subscribed",
                             since=mark, what=f"'subscribed' from {DOMAIN}")
    p = await ctx.alice.wait_for("presence", lambda p: p["from"].bare == DOMAIN and p["type"] == "available",
                                 since=mark, what=f"available presence from {DOMAIN}")
    c = caps_element(p)
    assert c is not None, "the gateway's presence has no XEP-0115 <c/>"
    algo, node, ver = c.get("hash"), c.get("node"), c.get("ver")
    assert algo in ("sha-1", "sha-256") and node and ver, f"caps attributes {dict(c.attrib)}"
    info = await ctx.alice.disco_info(DOMAIN, node=f"{node}#{ver}")
    assert caps_hash(info, algo) == ver, f"caps ver {ver!r} is not the {algo} of the disco#info answer " \
                                         f"({caps_hash(info, algo)!r})"


# ---------------------------------------------------------------------------------------------
# 7: group MMS


async def group_mms(ctx: Ctx):
    """A group MMS whose `to` lists alice's and bob's DIDs (and a third phone): alice and bob
    each get it once, with XEP-0033 addresses naming the other participants (xmpp.md §6.6)."""
    n = nonce()
    frm, third = "5559990005", "5553217777"
    text = f"group MMS {n}"
    to = [ALICE_DID, BOB_DID, third]
    ma, mb = ctx.alice.mark(), ctx.bob.mark()
    # mock-voipms delivers one webhook whose `to` lists every recipient (docs/voipms.md §11.8).
    status, rep = await asyncio.to_thread(http, "POST", f"{ctx.mock.url}/_mock/inbound",
                                          {"did": ALICE_DID, "to": to, "from": frm, "text": text, "kind": "mms"})
    assert status == 200, f"mock-voipms refused the group inbound: {status} {rep!r}"
    how = "delivered by mock-voipms"
    others = {ALICE: {BOB_DID, third, frm}, BOB: {ALICE_DID, third, frm}}
    for who, client, mark in ((ALICE, ctx.alice, ma), (BOB, ctx.bob, mb)):
        m = await client.wait_for("message", lambda m: m["body"] == text, since=mark, what=f"the group MMS at {who}")
        addrs = addresses(m)
        assert addrs, f"{who}: no XEP-0033 <addresses/> ({describe(m)})"
        named = set()
        for a in addrs:
            if a.get("uri", "").startswith("sms:"):
                named.add(digits10(a["uri"]))
            elif a.get("jid", "").endswith("@" + DOMAIN):
                named.add(digits10(a["jid"].split("@")[0].split("%")[0]))
        named.add(digits10(m["from"].user.split("%")[0]))
        missing = {x for x in others[who] if x not in named}
        assert not missing, f"{who}: addresses {addrs} do not name {sorted(missing)}"
    # Each exactly once: a later SMS to each is a barrier (the gateway delivers in order).
    for who, client, did, mark in ((ALICE, ctx.alice, ALICE_DID, ma), (BOB, ctx.bob, BOB_DID, mb)):
        barrier = f"after group {n} for {who}"
        await ctx.inbound(did, frm, barrier)
        await client.wait_for("message", lambda m: m["body"] == barrier, since=mark, what=f"the barrier SMS at {who}")
        copies = client.find("message", lambda m: m["body"] == text, mark)
        assert len(copies) == 1, f"{who} got the group MMS {len(copies)} times"
    return how


# ---------------------------------------------------------------------------------------------
# 8: the XMPP server restarts while messages flow


async def reconnect(ctx: Ctx):
    """Restart the XMPP server while inbound SMS keep coming: every one posted before, during
    and after the outage reaches alice; an outbound message after the reconnect goes out; on
    ejabberd, exactly one component route is left."""
    n = nonce()
    frm = "5559990006"
    connects0 = (await asyncio.to_thread(ctx.gateway.metrics)).get("voipms_xmpp_xmpp_connects_total", 0)
    mark = ctx.alice.mark()
    posted: list[str] = []
    stop_flow = asyncio.Event()

    async def flow():
        i = 0
        while not stop_flow.is_set():
            text = f"flow {n} #{i}"
            await ctx.inbound(ALICE_DID, frm, text)
            posted.append(text)
            i += 1
            try:
                await asyncio.wait_for(stop_flow.wait(), 0.2)
            except asyncio.TimeoutError:
                pass

    flow_task = asyncio.create_task(flow())
    try:
        # Some flow before the outage, awaited.
        await ctx.alice.wait_for("message", lambda m: m["body"] == f"flow {n} #2", since=mark,
                                 what="the first flow messages")
        await asyncio.to_thread(ctx.server.stop)
        for c in ctx.clients():
            await c.wait_disconnected()
        await asyncio.to_thread(stack.wait_until, "the gateway to notice the outage (healthz 503)",
                                lambda: not ctx.gateway.healthy(), 30)
        down_from = len(posted)
        await asyncio.to_thread(stack.wait_until, "3 SMS posted during the outage",
                                lambda: len(posted) >= down_from + 3, 30)
        await asyncio.to_thread(ctx.server.start)
        for c in ctx.clients():
            await c.start()
        await asyncio.to_thread(ctx.gateway.wait_online, 60)
        up_from = len(posted)
        await asyncio.to_thread(stack.wait_until, "3 SMS posted after the restart",
                                lambda: len(posted) >= up_from + 3, 30)
    finally:
        stop_flow.set()
        await flow_task
    assert down_from < up_from, "no SMS was posted while the server was down"
    for text in posted:
        await ctx.alice.wait_for("message", lambda m: m["body"] == text, since=mark, timeout=30,
                                 what=f"{text!r} (posted {'during' if down_from <= posted.index(text) < up_from else 'around'} the outage)")
    # Out: a message after the reconnect goes out.
    since = await ctx.last_seq()
    out = f"after reconnect {n}"
    ctx.alice.send_chat(contact("5559998892"), out)
    await ctx.wait_calls("sendSMS", lambda c: c["params"].get("message") == out, since, what=f"sendSMS {out!r}")
    connects1 = (await asyncio.to_thread(ctx.gateway.metrics)).get("voipms_xmpp_xmpp_connects_total", 0)
    assert connects1 > connects0, f"xmpp_connects_total {connects0} → {connects1}"
    await no_stale_route(ctx, n)
    # At least once is the contract (xmpp.md §4: no stream management on a component stream);
    # duplicates are reported, not failed.
    dups = sum(len(ctx.alice.find("message", lambda m, t=t: m["body"] == t, mark)) - 1 for t in posted)
    return f"{len(posted)} SMS in, {up_from - down_from} between the stop and the reconnect, {dups} duplicate(s)"


async def no_stale_route(ctx: Ctx, n: str):
    """ejabberd routes the component's domain to every connection it holds, at random per
    stanza (xmpp.md §4): one route, and a burst of messages both ways all arrive."""
    if isinstance(ctx.server, stack.Ejabberd):
        routes = await asyncio.to_thread(ctx.server.component_routes)
        assert routes == 1, f"ejabberd routes {DOMAIN} to {routes} connections"
    since = await ctx.last_seq()
    mark = ctx.alice.mark()
    burst_out = [f"burst out {n} #{i}" for i in range(8)]
    for t in burst_out:
        ctx.alice.send_chat(contact("5559998893"), t)
    burst_in = [f"burst in {n} #{i}" for i in range(8)]
    for t in burst_in:
        await ctx.inbound(ALICE_DID, "5559990008", t)
    await ctx.wait_calls("sendSMS", lambda c: c["params"].get("message") in burst_out, since,
                         count=len(burst_out), what="all of the outbound burst")
    for t in burst_in:
        await ctx.alice.wait_for("message", lambda m: m["body"] == t, since=mark, what=repr(t))


async def ejabberd_restart_command(ctx: Ctx):
    """`ejabberdctl restart` (ejabberd's own restart, inside the running node): the gateway
    comes back with one route, and messages both ways arrive."""
    n = nonce()
    await asyncio.to_thread(ctx.server.soft_restart)
    for c in ctx.clients():
        # The restart ends the clients' sessions too; reconnect them once they noticed.
        try:
            await c.wait_disconnected(10)
        except WaitTimeout:
            pass
        if not c.online:
            await c.start()
    await asyncio.to_thread(ctx.gateway.wait_online, 60)
    await asyncio.to_thread(stack.wait_until, "ejabberd to route the component again",
                            lambda: ctx.server.component_routes() >= 1, 60)
    await no_stale_route(ctx, n)


async def ejabberd_duplicate_detected(ctx: Ctx):
    """The check behind no_stale_route works: a second component connection with the gateway's
    secret is accepted by ejabberd without `conflict` (xmpp.md §4) and shows as a second
    route; once it leaves, one route is left and the gateway still gets every stanza."""
    import slixmpp

    dup = slixmpp.ComponentXMPP(DOMAIN, stack.SECRET, "127.0.0.1", ctx.server.component_port)
    started = asyncio.Event()
    dup.add_event_handler("session_start", lambda _: started.set())
    dup.connect()
    try:
        await asyncio.wait_for(started.wait(), 15)
        routes = await asyncio.to_thread(stack.wait_until, "ejabberd to list a second route",
                                         lambda: ctx.server.component_routes() == 2 and 2, 15)
        assert routes == 2
    finally:
        await dup.disconnect(wait=2.0)
    await asyncio.to_thread(stack.wait_until, "the second route to go",
                            lambda: ctx.server.component_routes() == 1, 15)
    await no_stale_route(ctx, nonce())


# (name, scenario, servers it applies to or None for all). Order: the restart scenarios come
# last (they disturb every session).
ALL = [
    ("sms_in", sms_in, None),
    ("sms_out", sms_out, None),
    ("mms_in", mms_in, None),
    ("mms_out", mms_out, None),
    ("receipts", receipts, None),
    ("voipms_error", voipms_error, None),
    ("disco_domain", disco_domain, None),
    ("disco_contact", disco_contact, None),
    ("gateway_prompt", gateway_prompt, None),
    ("subscribe_contact", subscribe_contact, None),
    ("caps", caps, None),
    ("group_mms", group_mms, None),
    ("reconnect", reconnect, None),
    ("ejabberd_restart_command", ejabberd_restart_command, {"ejabberd"}),
    ("ejabberd_duplicate_detected", ejabberd_duplicate_detected, {"ejabberd"}),
]
