"""The XMPP user of the NixOS VM test nix/tests/basic.nix.

Logs in, sends one chat message, then waits for a chat message with the
expected body from the expected JID. Every message received is appended to
a log file, so that the test (and whoever reads its output) can see what
arrived. Exits 0 once the expected message is there, 1 on an error stanza,
a failed login or the timeout.
"""

import argparse
import asyncio
import inspect
import logging
import sys

import slixmpp

log = logging.getLogger("xmpp-test-client")


class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.outcome = self.loop.create_future()
        if args.ca_file:
            self.ca_certs = args.ca_file
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", self.on_failed_auth)

    def finish(self, ok, why):
        if not self.outcome.done():
            self.outcome.set_result((ok, why))

    async def on_session_start(self, _event):
        self.send_presence()
        await self.get_roster()
        self.send_message(mto=self.args.to, mbody=self.args.body, mtype="chat")
        log.info("sent %r to %s", self.args.body, self.args.to)

    def on_message(self, msg):
        line = "%s %s %s\n" % (msg["type"], msg["from"], msg["body"])
        with open(self.args.received, "a", encoding="utf-8") as out:
            out.write(line)
        log.info("received %s", line.strip())
        if msg["type"] == "error":
            self.finish(False, "error stanza: %s" % msg["error"])
        elif (
            msg["from"].bare == self.args.expect_from
            and msg["body"] == self.args.expect_body
        ):
            self.finish(True, "the expected message arrived")

    def on_failed_auth(self, _event):
        self.finish(False, "authentication failed")


def connect(client, host, port):
    # slixmpp 1.9 changed connect((host, port)) into connect(host, port).
    if "host" in inspect.signature(client.connect).parameters:
        client.connect(host, port)
    else:
        client.connect((host, port))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jid", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=5222)
    parser.add_argument("--ca-file", help="CA certificate for the server")
    parser.add_argument("--to", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--expect-from", required=True)
    parser.add_argument("--expect-body", required=True)
    parser.add_argument("--received", required=True, help="log file")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(name)s: %(levelname)s %(message)s"
    )

    client = Client(args)
    connect(client, args.host, args.port)
    try:
        ok, why = client.loop.run_until_complete(
            asyncio.wait_for(client.outcome, args.timeout)
        )
    except asyncio.TimeoutError:
        ok, why = False, "timed out after %s s" % args.timeout
    log.info("%s", why)
    client.disconnect()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
