"""The interop tier: the real voipms-xmpp binary against a real Prosody and a real ejabberd,
with slixmpp clients as the users and mock-voipms as VoIP.ms. Run it through tests/interop/run
(which makes the virtualenv and builds the binaries); see docs/xmpp-servers.md.

For each server: start it once from the config template in this directory, register alice and
bob, start mock-voipms and the gateway, connect both users, run every scenario (one line each,
with its time), stop everything. Logs stay in the work directory; their tails are printed when
something failed. Exit status 0 only if every scenario passed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import selftest
import stack
from client import Client, IqError, IqTimeout
from scenarios import ALL, Ctx

SCENARIO_TIMEOUT = 120.0


class Results:
    def __init__(self):
        self.rows: list[tuple[str, str, str, float, str]] = []

    def add(self, server: str, name: str, result: str, secs: float, detail: str = ""):
        self.rows.append((server, name, result, secs, detail))
        line = f"{server:<9} {name:<30} {result:<4} {secs:6.2f} s"
        if detail:
            line += f"  {detail}"
        print(line, flush=True)

    def count(self, result: str) -> int:
        return sum(1 for r in self.rows if r[2] == result)

    def failed_servers(self) -> set[str]:
        return {r[0] for r in self.rows if r[2] == "FAIL"}


def one_line(e: BaseException) -> str:
    if isinstance(e, IqError):
        iq = e.iq
        text = f" ({e.text})" if e.text else ""
        return f"{iq['from']} answered {iq['id'][:8]}… with {e.etype}/{e.condition}{text}"
    if isinstance(e, IqTimeout):
        return f"no answer from {e.iq['to']} to an IQ within its timeout"
    text = str(e).strip() or type(e).__name__
    if not isinstance(e, AssertionError):
        text = f"{type(e).__name__}: {text}"
    return " ".join(text.split())[:600]


def check_docs(results: Results):
    """docs/xmpp-servers.md shows the test servers' configs verbatim: each fenced block after a
    `<!-- file: PATH -->` line must equal that file, and every template must be shown."""
    import re

    t = time.monotonic()
    doc = stack.REPO / "docs/xmpp-servers.md"
    text = doc.read_text()
    blocks = dict(re.findall(r"^<!-- file: (\S+) -->\n```[a-z]*\n(.*?)^```$", text, re.M | re.S))
    problems = []
    for name in ("prosody.cfg.lua", "ejabberd.yml", "ejabberdctl.cfg"):
        rel = f"tests/interop/{name}"
        if rel not in blocks:
            problems.append(f"{rel} is not shown")
        elif blocks[rel] != (stack.HERE / name).read_text():
            problems.append(f"the copy of {rel} differs from the file")
    if problems:
        results.add("docs", "xmpp-servers.md", "FAIL", time.monotonic() - t, "; ".join(problems))
    else:
        results.add("docs", "xmpp-servers.md", "PASS", time.monotonic() - t, "shows the configs as they are")


async def run_server(kind: str, root: Path, bins: dict[str, Path], only: list[str], results: Results,
                     log_level: str) -> list[Path]:
    """One server's run; returns the log files to show if something failed."""
    cls = stack.SERVERS[kind]
    users = {jid: pw for jid, (pw, _dids) in stack.USERS.items()}
    base = root / kind
    logs: list[Path] = []
    server = mock = gateway = None
    clients: list[Client] = []
    t0 = time.monotonic()
    try:
        why = cls.available()
        if why:
            raise stack.StackError(why)
        server = cls(base / "server", users, log_level)
        logs += server.logs()
        if kind == "prosody":
            await asyncio.to_thread(server.register_users)
            await asyncio.to_thread(server.start)
        else:
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(server.register_users)
        mock = await asyncio.to_thread(stack.Mock, base / "mock", bins["mock"])
        logs.append(mock.log)
        gateway = await asyncio.to_thread(stack.Gateway, base / "gateway", bins["gateway"], server, mock)
        logs.append(gateway.log)
        await asyncio.to_thread(gateway.start)
        await asyncio.to_thread(mock.point_webhooks, gateway.webhook_url)
        await asyncio.to_thread(gateway.wait_online, 30)
        alice = Client("alice@localhost", users["alice@localhost"], "127.0.0.1", server.c2s_port)
        bob = Client("bob@localhost", users["bob@localhost"], "127.0.0.1", server.c2s_port)
        clients = [alice, bob]
        for c in clients:
            await c.start()
    except Exception as e:  # noqa: BLE001 - reported as the setup line
        results.add(kind, "setup", "FAIL", time.monotonic() - t0, one_line(e))
        if not isinstance(e, (AssertionError, stack.StackError)):
            traceback.print_exc()
        await teardown(clients, gateway, mock, server)
        return logs
    results.add(kind, "setup", "ok", time.monotonic() - t0,
                f"{kind} {server.version()}, c2s :{server.c2s_port}, component :{server.component_port}")

    ctx = Ctx(server, mock, gateway, alice, bob)
    for name, fn, servers in ALL:
        if only and not any(o in name for o in only):
            continue
        if servers is not None and kind not in servers:
            continue
        t = time.monotonic()
        try:
            note = await asyncio.wait_for(fn(ctx), SCENARIO_TIMEOUT)
            results.add(kind, name, "PASS", time.monotonic() - t, note or "")
        except asyncio.TimeoutError:
            results.add(kind, name, "FAIL", time.monotonic() - t, f"scenario timed out ({SCENARIO_TIMEOUT:.0f} s)")
        except Exception as e:  # noqa: BLE001 - one line per scenario
            results.add(kind, name, "FAIL", time.monotonic() - t, one_line(e))
            if not isinstance(e, (AssertionError, IqError, IqTimeout)):
                traceback.print_exc()
        # Whatever a scenario did, the next one starts with both users and the gateway online.
        try:
            if server.proc is None or not server.proc.alive():
                await asyncio.to_thread(server.start)
            for c in clients:
                if not c.online:
                    await c.stop()
                    await c.start()
            await asyncio.to_thread(gateway.wait_online, 60)
        except Exception as e:  # noqa: BLE001
            results.add(kind, "recover", "FAIL", 0.0, one_line(e))
            break
    t = time.monotonic()
    await teardown(clients, gateway, mock, server)
    results.add(kind, "teardown", "ok", time.monotonic() - t)
    return logs


async def run_demo(root: Path, results: Results) -> list[Path]:
    """docs/demo/run as a newcomer uses it: start it, log in as it says, run the curl commands
    it prints (an SMS in, the calls the gateway made), write to the contact it names, stop it
    with SIGINT as Ctrl-C would, and check that it stopped everything."""
    import re
    import signal
    import subprocess

    d = root / "demo"
    d.mkdir(parents=True, exist_ok=True)
    out = d / "demo.out"
    c2s, comp = stack.free_port(), stack.free_port()
    t = time.monotonic()
    demo = stack.Proc("docs/demo/run", [str(stack.REPO / "docs/demo/run")], out,
                      env={"DEMO_C2S_PORT": str(c2s), "DEMO_COMPONENT_PORT": str(comp),
                           "DEMO_DIR": str(d / "run"), "DEMO_NO_BUILD": "1"})
    logs = [out, d / "run" / "gateway.log", d / "run" / "prosody" / "prosody.log", d / "run" / "mock.log"]
    client = None
    try:
        def ready():
            demo.check_alive()
            return "demo: ready" in out.read_text()
        await asyncio.to_thread(stack.wait_until, "the demo to say 'demo: ready'", ready, 60)
        text = out.read_text()
        m = re.search(r"server 127\.0\.0\.1, port (\d+), user (\S+), password (\S+)", text)
        assert m, "the demo does not print how to log in"
        port, user, password = int(m.group(1)), m.group(2), m.group(3)
        assert port == c2s, f"the demo says port {port}, DEMO_C2S_PORT was {c2s}"
        curls = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("curl ")]
        inbound = next(c for c in curls if "_mock/inbound" in c and "Hello from the phone" in c)
        calls = next(c for c in curls if "_mock/calls" in c)
        contact_jid = re.search(r"^\s+(\+1\d{10}@\S+)$", text, re.M).group(1)
        client = Client(user, password, "127.0.0.1", port, resource="demo-check")
        await client.start()
        r = await asyncio.to_thread(subprocess.run, ["bash", "-c", inbound], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and '"acked":true' in r.stdout.replace(" ", ""), f"the printed inbound curl: {r.stdout[:300]}"
        msg = await client.wait_for("message", lambda m: m["body"] == "Hello from the phone", what="the demo SMS")
        assert msg["from"].bare == contact_jid, f"the SMS came from {msg['from']}, the demo names {contact_jid}"
        reply = f"demo reply {os.getpid()}"
        client.send_chat(contact_jid, reply)

        def sent():
            r = subprocess.run(["bash", "-c", calls], capture_output=True, text=True, timeout=30)
            return reply in r.stdout
        await asyncio.to_thread(stack.wait_until, "the reply in the printed calls curl", sent, 15)
        await client.stop()
        client = None
        os.kill(demo.pid, signal.SIGINT)
        code = await asyncio.to_thread(demo.wait_exit, 30)
        assert code == 0, f"after SIGINT the demo exited with {code}"
        assert "demo: stopped" in out.read_text(), "the demo did not say it stopped"
        for p in (c2s, comp):
            assert not stack.port_open(p), f"port {p} is still open after the demo stopped"
        results.add("demo", "docs/demo/run", "PASS", time.monotonic() - t, "login, SMS in, reply out, Ctrl-C")
    except Exception as e:  # noqa: BLE001
        results.add("demo", "docs/demo/run", "FAIL", time.monotonic() - t, one_line(e))
    finally:
        if client:
            await client.stop()
        demo.stop(signal.SIGTERM, 20)
    return logs


async def teardown(clients, gateway, mock, server):
    for c in clients:
        try:
            await asyncio.wait_for(c.stop(), 10)
        except Exception:  # noqa: BLE001 - best effort
            pass
    for part in (gateway, mock, server):
        if part is not None:
            try:
                await asyncio.to_thread(part.stop)
            except Exception as e:  # noqa: BLE001
                print(f"stopping {type(part).__name__}: {one_line(e)}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    known = ["prosody", "ejabberd", "demo"]
    # No `choices=` with nargs="*": argparse then rejects the empty default (Python < 3.12).
    ap.add_argument("servers", nargs="*", default=known,
                    help="servers to run against (prosody, ejabberd), and/or 'demo' to check docs/demo/run (default: all three)")
    ap.add_argument("-k", dest="only", action="append", default=[], help="only scenarios whose name contains this")
    ap.add_argument("--workdir", help="where configs, state and logs go (default: a new temporary directory)")
    args = ap.parse_args()
    unknown = [s for s in args.servers if s not in known]
    if unknown:
        ap.error(f"unknown: {', '.join(unknown)} (choose from {', '.join(known)})")

    repo = stack.REPO
    bins = {
        "gateway": Path(os.environ.get("INTEROP_GATEWAY_BIN", repo / "target/debug/voipms-xmpp")),
        "mock": Path(os.environ.get("INTEROP_MOCK_BIN", repo / "target/debug/mock-voipms")),
    }
    for b in bins.values():
        if not os.access(b, os.X_OK):
            print(f"interop: {b} missing: cargo build -p voipms-xmpp -p mock-voipms", file=sys.stderr)
            return 2
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="voipms-interop-"))
    root.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=root / "clients.log", level=logging.DEBUG if os.environ.get("INTEROP_DEBUG") else
                        logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not os.environ.get("INTEROP_DEBUG"):
        logging.getLogger("slixmpp").setLevel(logging.WARNING)
    log_level = "debug" if os.environ.get("INTEROP_DEBUG") else "info"
    print(f"interop: work directory {root}", flush=True)

    results = Results()
    shown: dict[str, list[Path]] = {}
    t0 = time.monotonic()
    check_docs(results)
    t = time.monotonic()
    try:
        selftest.run()
        results.add("selftest", "caps hash (XEP-0115 examples)", "PASS", time.monotonic() - t)
    except AssertionError as e:
        results.add("selftest", "caps hash (XEP-0115 examples)", "FAIL", time.monotonic() - t, one_line(e))
    for kind in dict.fromkeys(args.servers):
        if kind == "demo":
            shown[kind] = asyncio.run(run_demo(root, results))
        else:
            shown[kind] = asyncio.run(run_server(kind, root, bins, args.only, results, log_level))
    for kind in sorted(results.failed_servers()):
        for path in shown.get(kind, []) + [root / "clients.log"]:
            if path.exists():
                print(f"\n---- {kind}: last lines of {path} ----")
                print(stack.log_tail(path, 40))
    passed, failed = results.count("PASS"), results.count("FAIL")
    print(f"\ninterop: logs in {root}; {time.monotonic() - t0:.1f} s")
    print(f"interop: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
