"""A user's XMPP client: slixmpp 1.17 on loopback without TLS (docs: /work/shared/docs/xmpp.md
§11), recording every stanza it receives so that scenarios can wait for one that matches.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

NS_CAPS = "http://jabber.org/protocol/caps"
NS_ADDRESS = "http://jabber.org/protocol/address"
NS_GATEWAY = "jabber:iq:gateway"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"

log = logging.getLogger("interop.client")


class WaitTimeout(AssertionError):
    pass


class Client(slixmpp.ClientXMPP):
    """One user's session. `events` holds (kind, stanza) for kinds message, error (message
    errors), receipt, presence, roster (roster pushes)."""

    def __init__(self, jid: str, password: str, host: str, port: int, resource: str = "interop"):
        super().__init__(f"{jid}/{resource}", password,
                         plugin_config={"feature_mechanisms": {"unencrypted_plain": True}})
        self.enable_plaintext = True
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.host, self.port = host, port
        for p in ("xep_0030", "xep_0184", "xep_0199", "xep_0066"):
            self.register_plugin(p)
        self["xep_0184"].auto_request = False
        self.events: list[tuple[str, object]] = []
        self._changed = asyncio.Event()
        self._online = asyncio.Event()
        self._auth_failed = False
        self.add_event_handler("session_start", self._session_start)
        self.add_event_handler("failed_auth", self._failed_auth)
        self.add_event_handler("disconnected", self._disconnected)
        self.add_event_handler("message", lambda m: self._record("message", m))
        self.add_event_handler("message_error", lambda m: self._record("error", m))
        self.add_event_handler("receipt_received", lambda m: self._record("receipt", m))
        self.add_event_handler("presence", lambda p: self._record("presence", p))
        self.add_event_handler("roster_update", lambda r: self._record("roster", r))

    # -- connection -------------------------------------------------------------------------

    async def _session_start(self, _event):
        await self.get_roster()
        self.send_presence()
        self._online.set()

    def _failed_auth(self, _event):
        self._auth_failed = True
        self._record("failed_auth", None)

    def _disconnected(self, _event):
        self._online.clear()
        self._record("disconnected", None)

    @property
    def online(self) -> bool:
        return self._online.is_set()

    async def start(self, timeout: float = 20.0):
        """Connect and wait for the session (roster fetched, initial presence sent)."""
        self._online.clear()
        self.connect(self.host, self.port)
        try:
            await asyncio.wait_for(self._online.wait(), timeout)
        except asyncio.TimeoutError:
            self.cancel_connection_attempt()
            raise WaitTimeout(f"{self.boundjid.bare}: no session within {timeout:.0f} s"
                              + (" (authentication failed)" if self._auth_failed else "")) from None

    async def stop(self):
        self.cancel_connection_attempt()
        if self.transport:
            await self.disconnect(wait=2.0)

    async def wait_disconnected(self, timeout: float = 30.0):
        """Wait until this session has ended (at once if it already has)."""
        mark = self.mark()
        if not self.online:
            return
        await self.wait_for("disconnected", lambda _: True, timeout, since=mark, what="the connection to drop")

    # -- events -----------------------------------------------------------------------------

    def _record(self, kind: str, stanza):
        self.events.append((kind, stanza))
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    def mark(self) -> int:
        """A position in the event list: wait_for(since=mark) looks only at later events."""
        return len(self.events)

    def find(self, kind: str, pred, since: int = 0) -> list:
        out = []
        for k, st in self.events[since:]:
            if k == kind:
                try:
                    if pred(st):
                        out.append(st)
                except (KeyError, AttributeError, TypeError, ValueError):
                    pass
        return out

    async def wait_for(self, kind: str, pred, timeout: float = 15.0, since: int = 0, what: str = "", count: int = 1):
        """Wait until `count` events of `kind` since `since` satisfy `pred`; returns them (the
        first one when count == 1)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.find(kind, pred, since)
            if len(found) >= count:
                return found[0] if count == 1 else found
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [describe(st) for k, st in self.events[since:] if k == kind][-8:]
                raise WaitTimeout(f"{self.boundjid.bare}: {what or kind} not seen within {timeout:.0f} s "
                                  f"({len(found)} of {count}); last {kind} stanzas: {seen}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def messages_from(self, jid: str, since: int = 0) -> list:
        return self.find("message", lambda m: m["from"].bare == jid, since)

    # -- requests ---------------------------------------------------------------------------

    def send_chat(self, to: str, body: str, receipt: bool = False, oob: str | None = None) -> str:
        m = self.make_message(mto=to, mbody=body, mtype="chat")
        if receipt:
            m["request_receipt"] = True
        if oob:
            m["oob"]["url"] = oob
        m["id"] = m["id"] or self.new_id()
        m.send()
        return m["id"]

    async def disco_info(self, jid: str, node: str | None = None):
        res = await self["xep_0030"].get_info(jid=jid, node=node, timeout=10)
        return res["disco_info"]

    async def iq_raw(self, to: str, itype: str, payload: str, timeout: float = 10.0):
        """An IQ with a payload given as XML text; returns the result stanza (IqError on error)."""
        iq = self.make_iq(ito=to, itype=itype)
        iq.append(ET.fromstring(payload))
        return await iq.send(timeout=timeout)


def describe(st) -> str:
    """A short text for an assertion message (no whole stanzas)."""
    if st is None:
        return "-"
    try:
        name = st.name
        frm = st["from"]
        if name == "message":
            return f"message from {frm} type={st['type']} id={st['id']} body={st['body'][:60]!r}"
        if name == "presence":
            return f"presence from {frm} type={st['type']}"
        return f"{name} from {frm}"
    except Exception:  # noqa: BLE001 - only for messages
        return repr(st)[:120]


def caps_element(presence):
    return presence.xml.find(f"{{{NS_CAPS}}}c")


def caps_verification_string(info) -> str:
    """XEP-0115 §5.1/§5.4 from a disco#info answer's <query/>: identities, then features, each
    sorted and followed by '<', then extended forms (XEP-0128) by FORM_TYPE, their fields sorted
    by var, each field's values sorted."""
    q = info.xml
    ns, xd = NS_DISCO_INFO, "jabber:x:data"
    lang_attr = "{http://www.w3.org/XML/1998/namespace}lang"
    ids = sorted(f"{i.get('category', '')}/{i.get('type', '')}/{i.get(lang_attr, '')}/{i.get('name', '')}"
                 for i in q.findall(f"{{{ns}}}identity"))
    feats = sorted({f.get("var", "") for f in q.findall(f"{{{ns}}}feature")})
    s = "".join(f"{x}<" for x in ids) + "".join(f"{x}<" for x in feats)
    forms = []
    for x in q.findall(f"{{{xd}}}x"):
        fields = {f.get("var"): sorted(v.text or "" for v in f.findall(f"{{{xd}}}value"))
                  for f in x.findall(f"{{{xd}}}field")}
        ftype = fields.pop("FORM_TYPE", None)
        if ftype:
            forms.append((ftype[0], fields))
    for ftype, fields in sorted(forms, key=lambda f: f[0]):
        s += f"{ftype}<"
        for var in sorted(fields):
            s += f"{var}<" + "".join(f"{v}<" for v in fields[var])
    return s


def caps_hash(info, algo: str = "sha-1") -> str:
    h = {"sha-1": hashlib.sha1, "sha-256": hashlib.sha256}[algo]
    return base64.b64encode(h(caps_verification_string(info).encode()).digest()).decode()


def addresses(message) -> list[dict[str, str]]:
    """The XEP-0033 <address/> elements of a message, as attribute dicts."""
    el = message.xml.find(f"{{{NS_ADDRESS}}}addresses")
    return [] if el is None else [dict(a.attrib) for a in el.findall(f"{{{NS_ADDRESS}}}address")]


__all__ = ["Client", "WaitTimeout", "IqError", "IqTimeout", "describe", "caps_element", "caps_hash",
           "addresses", "NS_GATEWAY", "NS_DISCO_INFO"]
