"""Checks of the tier's own helpers, run before any server starts: the XEP-0115 hash against
the XEP's two worked examples (§5.2, §5.3), so that a `caps` failure is the gateway's."""

from xml.etree import ElementTree as ET

from client import caps_hash

SIMPLE = """<query xmlns='http://jabber.org/protocol/disco#info'>
<identity category='client' name='Exodus 0.9.1' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>
<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query>"""

COMPLEX = """<query xmlns='http://jabber.org/protocol/disco#info'>
<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
<identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>
<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>
<x xmlns='jabber:x:data' type='result'>
<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
<field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>
<field var='os'><value>Mac</value></field><field var='os_version'><value>10.5.1</value></field>
<field var='software'><value>Psi</value></field><field var='software_version'><value>0.11</value></field>
</x></query>"""


class _Info:
    def __init__(self, xml: str):
        self.xml = ET.fromstring(xml)


def run() -> None:
    for name, xml, want in (("§5.2", SIMPLE, "QgayPKawpkPSDYmwT/WM94uAlu0="),
                            ("§5.3", COMPLEX, "q07IKJEyjvHSyhy//CH0CxmKi8w=")):
        got = caps_hash(_Info(xml))
        assert got == want, f"XEP-0115 {name}: {got}, expected {want}"
