"""The processes of an interop run: a real XMPP server (Prosody or ejabberd), mock-voipms and
the voipms-xmpp gateway, each started from a config of its own in a temporary directory, on
loopback ports of its own, with its log kept in that directory.

Everything here is synchronous (subprocess, urllib); the asyncio side calls it through
asyncio.to_thread. Every wait is for a condition, with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

DOMAIN = "sms.localhost"
SERVER_DOMAIN = "localhost"
SECRET = "interop-component-secret"
WEBHOOK_KEY = "interop-webhook-key"
API_USER = "john@example.com"
API_PASSWORD = "interop-api-password"

# The users: bare JID → (password, DIDs); the first DID is the user's default.
USERS = {
    "alice@localhost": ("alicepw", ["5552345678"]),
    "bob@localhost": ("bobpw", ["5557654321", "5553334444"]),
}


class StackError(Exception):
    pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(what: str, cond, timeout: float = 20.0, interval: float = 0.05):
    """Poll `cond` until it returns something truthy (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def render(template: Path, dest: Path, values: dict[str, object]) -> str:
    """Fill the @NAME@ placeholders of a template; every placeholder must have a value."""
    text = template.read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise StackError(f"{template.name}: no value for {sorted(set(left))}")
    dest.write_text(text)
    return text


def http(method: str, url: str, body: object | None = None, timeout: float = 15.0) -> tuple[int, object]:
    """One HTTP request with a JSON body (or none); returns (status, parsed JSON or text)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    # Never through a proxy: everything here is on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class Proc:
    """A child process in a session of its own, its output in a log file."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None, stdout: Path | None = None):
        self.name = name
        self.log = log
        self.stdout_path = stdout
        out = open(stdout, "ab") if stdout else open(log, "ab")
        err = open(log, "ab")
        child_env = {k: v for k, v in os.environ.items()
                     if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "credentials_directory")}
        child_env.update(env or {})
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=child_env,
                                  cwd=cwd, start_new_session=True)
        out.close()
        err.close()

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def check_alive(self):
        if not self.alive():
            raise StackError(f"{self.name} exited with status {self.p.returncode} (log: {self.log})")

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the process; after `timeout`, kill its process group (ours: it was started in a
        session of its own)."""
        if self.alive():
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            if self.wait_exit(timeout) is None:
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(5)
        return self.p.returncode


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"({path}: {e})"
    return "\n".join(text[-lines:])


# ---------------------------------------------------------------------------------------------
# XMPP servers


class XmppServer:
    """Common shape of the two servers. Subclasses: Prosody, Ejabberd."""

    name = "?"

    def __init__(self, workdir: Path, users: dict[str, str], log_level: str = "info"):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.users = users  # bare JID → password
        self.log_level = log_level
        self.c2s_port = free_port()
        self.component_port = free_port()
        self.proc: Proc | None = None

    def logs(self) -> list[Path]:
        raise NotImplementedError

    def wait_ready(self, timeout: float = 30.0):
        def ready():
            if self.proc:
                self.proc.check_alive()
            return port_open(self.c2s_port) and port_open(self.component_port)
        wait_until(f"{self.name} to listen on ports {self.c2s_port} and {self.component_port}", ready, timeout)

    def wait_ports_closed(self, timeout: float = 30.0):
        wait_until(f"{self.name}'s ports to close",
                   lambda: not port_open(self.c2s_port) and not port_open(self.component_port), timeout)


class Prosody(XmppServer):
    name = "prosody"

    def __init__(self, workdir: Path, users: dict[str, str], log_level: str = "info"):
        super().__init__(workdir, users, log_level)
        (self.dir / "data").mkdir(exist_ok=True)
        (self.dir / "certs").mkdir(exist_ok=True)   # none needed; an absent directory is logged as an error
        self.config = self.dir / "prosody.cfg.lua"
        render(HERE / "prosody.cfg.lua", self.config, {
            "DIR": self.dir, "C2S_PORT": self.c2s_port, "COMPONENT_PORT": self.component_port,
            "SECRET": SECRET, "LOG_LEVEL": log_level,
        })

    def logs(self):
        return [self.dir / "prosody.log", self.dir / "prosody.out"]

    @staticmethod
    def available() -> str | None:
        return None if shutil.which("prosody") and shutil.which("prosodyctl") else \
            "prosody is not installed (apt-get install prosody)"

    def version(self) -> str:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "prosody"], capture_output=True, text=True)
        return r.stdout.strip() or "?"

    def register_users(self):
        for jid, pw in self.users.items():
            user, host = jid.split("@")
            r = subprocess.run(["prosodyctl", "--config", str(self.config), "register", user, host, pw],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise StackError(f"prosodyctl register {user}: {r.stdout}{r.stderr}")

    def start(self):
        # -F: foreground (the daemonize option is deprecated); we own the process.
        self.proc = Proc("prosody", ["prosody", "--config", str(self.config), "-F"],
                         self.dir / "prosody.out", cwd=self.dir)
        self.wait_ready()

    def stop(self):
        if self.proc:
            self.proc.stop(signal.SIGTERM, 20)
            self.proc = None
        self.wait_ports_closed()

    def restart(self):
        """Stop and start again with the same config and data."""
        self.stop()
        self.start()


class Ejabberd(XmppServer):
    name = "ejabberd"

    def __init__(self, workdir: Path, users: dict[str, str], log_level: str = "info"):
        super().__init__(workdir, users, log_level)
        self.logs_dir = self.dir / "logs"
        self.spool = self.dir / "spool"
        self.logs_dir.mkdir(exist_ok=True)
        self.spool.mkdir(exist_ok=True)
        # A node name of its own, so that no other ejabberd on the machine is concerned.
        self.node = f"voipms-interop-{os.getpid()}@localhost"
        self.dist_port = free_port()
        render(HERE / "ejabberd.yml", self.dir / "ejabberd.yml", {
            "C2S_PORT": self.c2s_port, "COMPONENT_PORT": self.component_port, "SECRET": SECRET,
            "LOG_LEVEL": log_level,
        })
        render(HERE / "ejabberdctl.cfg", self.dir / "ejabberdctl.cfg", {
            "NODE": self.node, "DIST_PORT": self.dist_port, "COOKIE": secrets.token_hex(16),
        })
        shutil.copy(HERE / "inetrc", self.dir / "inetrc")

    def logs(self):
        return [self.logs_dir / "ejabberd.log", self.logs_dir / "error.log", self.dir / "ejabberd.out"]

    @staticmethod
    def available() -> str | None:
        return None if shutil.which("ejabberdctl") else "ejabberd is not installed (apt-get install ejabberd)"

    def version(self) -> str:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "ejabberd"], capture_output=True, text=True)
        return r.stdout.strip() or "?"

    def ctl_argv(self, *args: str) -> list[str]:
        return ["ejabberdctl", "--config-dir", str(self.dir), "--logs", str(self.logs_dir),
                "--spool", str(self.spool), *args]

    def ctl(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(self.ctl_argv(*args), capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if check and r.returncode != 0:
            raise StackError(f"ejabberdctl {' '.join(args)}: status {r.returncode}: {r.stdout}{r.stderr}")
        return r

    def register_users(self):
        for jid, pw in self.users.items():
            user, host = jid.split("@")
            self.ctl("register", user, host, pw)

    def start(self):
        # `foreground` keeps the VM attached to a process we own (its exit is observable);
        # ejabberdctl runs erl as a child and waits for it.
        self.proc = Proc("ejabberd", self.ctl_argv("foreground"), self.dir / "ejabberd.out", cwd=self.dir)
        self.wait_ready(60)
        # The ports open while modules may still load: wait for the node to say "started".
        self.ctl("started", timeout=60)

    def stop(self):
        if self.proc:
            if self.proc.alive():
                self.ctl("stop", check=False)
            if self.proc.wait_exit(30) is None:
                self.proc.stop(signal.SIGTERM, 10)
            self.proc = None
        self.wait_ports_closed()

    def restart(self):
        """Stop the node and start it again with the same config and spool (a full restart:
        every connection drops and the ports close in between)."""
        self.stop()
        self.start()

    def soft_restart(self):
        """`ejabberdctl restart`: ejabberd's own restart inside the running VM."""
        self.ctl("restart", timeout=60)
        self.ctl("started", timeout=60)
        self.wait_ready(60)

    def component_routes(self, domain: str = DOMAIN) -> int:
        """How many component connections ejabberd routes `domain` to (ejabberd keeps one route
        per connection and load-balances stanzas over them): the rows for it in the Mnesia
        table `route`, from `ejabberdctl dump_table`."""
        out = self.dir / "route-table.txt"
        if out.exists():
            out.unlink()
        self.ctl("dump_table", str(out), "route")
        text = out.read_text()
        return len(re.findall(r'^\{route,<<"' + re.escape(domain) + r'">>', text, re.M))


SERVERS = {"prosody": Prosody, "ejabberd": Ejabberd}


# ---------------------------------------------------------------------------------------------
# mock-voipms and the gateway


class Mock:
    """mock-voipms: the VoIP.ms API and the pushes of received messages."""

    def __init__(self, workdir: Path, binary: Path):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        dids = [d for _, (_, ds) in USERS.items() for d in ds]
        config = {
            "account": {"api_username": API_USER, "api_password": API_PASSWORD},
            "dids": [{"did": d} for d in dids],
        }
        (self.dir / "mock.json").write_text(json.dumps(config, indent=2))
        self.dids = dids
        self.log = self.dir / "mock.log"
        out = self.dir / "mock.out"
        self.proc = Proc("mock-voipms", [str(binary), "--listen", "127.0.0.1:0", "--config",
                                         str(self.dir / "mock.json")], self.log, stdout=out)
        line = wait_until("mock-voipms to say where it listens", lambda: self._listening(out), 30)
        self.url = line.split("listening on ", 1)[1].strip()

    def _listening(self, out: Path):
        self.proc.check_alive()
        for line in out.read_text().splitlines():
            if line.startswith("mock-voipms listening on "):
                return line
        return None

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1/rest.php"

    def point_webhooks(self, webhook_url: str):
        for d in self.dids:
            status, body = http("POST", f"{self.url}/_mock/dids",
                                {"did": d, "webhook_enabled": True, "webhook": webhook_url})
            if status != 200:
                raise StackError(f"POST /_mock/dids: {status} {body}")

    def stop(self):
        self.proc.stop()


class Gateway:
    """The real voipms-xmpp binary, configured like tests/support/harness.rs."""

    def __init__(self, workdir: Path, binary: Path, server: XmppServer, mock: Mock):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.binary = binary
        self.metrics_port = free_port()
        config = {
            "xmpp": {"component": DOMAIN, "server": f"127.0.0.1:{server.component_port}", "secret": SECRET,
                     "ping_to": SERVER_DOMAIN},
            "voipms": {"api_username": API_USER, "api_password": API_PASSWORD, "api_url": mock.api_url},
            "webhook": {"listen": "127.0.0.1:0", "path": "/voipms", "key": WEBHOOK_KEY},
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "jid_map": {jid: [f"+1{d}" for d in dids] for jid, (_, dids) in USERS.items()},
            "state_dir": str(self.dir / "state"),
        }
        self.config = self.dir / "config.json"
        self.config.write_text(json.dumps(config, indent=2))
        self.log = self.dir / "gateway.log"
        self.proc: Proc | None = None
        self.webhook_addr = None
        self.check_config()

    def check_config(self):
        r = subprocess.run([str(self.binary), "check", "--config", str(self.config)], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise StackError(f"voipms-xmpp check: status {r.returncode}: {r.stdout}{r.stderr}")

    def start(self):
        start_at = self.log.stat().st_size if self.log.exists() else 0
        self.proc = Proc("voipms-xmpp", [str(self.binary), "run", "--config", str(self.config)], self.log)

        def listening():
            self.proc.check_alive()
            with open(self.log, "rb") as f:
                f.seek(start_at)
                for line in f.read().decode("utf-8", "replace").splitlines():
                    m = re.search(r"webhook listening on http://([^/\s]+)/", line)
                    if m:
                        return m.group(1)
            return None
        self.webhook_addr = wait_until("the gateway's line 'webhook listening on http://…'", listening, 30)

    @property
    def webhook_url(self) -> str:
        return f"http://{self.webhook_addr}/voipms?key={WEBHOOK_KEY}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def healthy(self) -> bool:
        try:
            status, _ = http("GET", f"{self.metrics_url}/healthz", timeout=5)
        except OSError:
            return False
        return status == 200

    def wait_online(self, timeout: float = 30.0):
        """Wait until /healthz says the component stream is up."""
        def up():
            self.proc.check_alive()
            return self.healthy()
        wait_until("the gateway's component stream (GET /healthz → 200)", up, timeout)

    def metrics(self) -> dict[str, float]:
        status, text = http("GET", f"{self.metrics_url}/metrics", timeout=5)
        out = {}
        for line in str(text).splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def stop(self):
        if self.proc:
            self.proc.stop(signal.SIGTERM, 20)
            self.proc = None
