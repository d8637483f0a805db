#!/usr/bin/env python3
"""Soak and fault run for Gatehouse (issue 11, item 7). Started by scripts/soak/run, which builds the release
binary and installs the tools; see docs/SOAK.md.

Gatehouse runs for --minutes on a mix of routes at about --load (0.7) of the capacity measured at the start, in
windows of --window seconds. Each window runs every load generator for the whole window and records, per route:
requests, statuses, socket errors, p50/p99 latency; and Gatehouse's RSS every 5 s. Faults are injected on a
schedule, one per fault window, each followed by a clean recovery window. A status or error is "expected" only on
the routes a fault touches and only of the kinds listed for it (FAULTS below); anything else is an unexpected
error and fails the run, as does a Gatehouse crash or a recovery window with errors.

Writes DIR/windows.jsonl (one record per window), DIR/rss.tsv and DIR/report.md (tables), DIR = --out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aux_servers import Aux  # noqa: E402
from oidc_load import OIDCLoad  # noqa: E402
from report import write_report  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LUA = os.path.join(REPO, "scripts", "soak", "load.lua")

# fault -> (routes it touches, what those routes' clients may see: statuses and socket-error kinds)
FAULTS = {
    "upstream-killed": ({"none", "rs", "miss", "session", "16k", "h2-none", "h2-rs", "keyed"},
                        {"502", "503", "read", "connect"}),
    "upstream-resets": ({"flaky"}, {"502", "read"}),
    "upstream-slow": ({"flaky"}, {"504"}),
    "keys-down": ({"rotated"}, {"401"}),
    "keys-slow": ({"rotated"}, {"401"}),
    "keys-garbage": ({"rotated"}, {"401"}),
    "fd-exhaustion": ({"none", "rs", "miss", "session", "16k", "h2-none", "h2-rs", "keyed", "flaky", "ws",
                       "rotated"}, {"502", "503", "connect", "read", "timeout", "ws"}),
    "half-open-flood": (set(), set()),
    "provider-hung": (set(), set()),  # judged by the login driver's own counts (oidc below)
}
SCHEDULE = list(FAULTS)


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def es_key(kid: str):
    from joserfc.jwk import ECKey
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"}, private=True)


def sign(key, issuer: str, sub: str, lifetime: int) -> str:
    from joserfc import jwt
    now = int(time.time())
    claims = {"iss": issuer, "aud": "gatehouse-soak", "sub": sub, "iat": now - 5, "nbf": now - 5,
              "exp": now + lifetime}
    return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["ES256"])


class Soak:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="gatehouse-soak.")
        os.chmod(self.work, 0o755)
        self.out = os.path.abspath(args.out)
        os.makedirs(self.out, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.rss: list[tuple[float, int, str]] = []
        self.start = time.monotonic()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    # -- set-up --------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        a = self.args
        tokens = os.path.join(self.work, "tokens")
        subprocess.run([sys.executable, os.path.join(REPO, "Benchmarks", "tokens.py"), "prepare", "--dir", tokens,
                        "--miss-count", str(a.miss_tokens), "--lifetime", str(int(a.minutes * 60) + 3600)], check=True)
        self.rs_token = open(os.path.join(tokens, "rs.token")).read().strip()
        self.miss_file = os.path.join(tokens, "miss.tokens")
        self.rot_issuer = "https://keys.soak.gatehouse.invalid"
        self.rot_keys = [es_key("soak-0")]
        self.keyed_token = sign(self.rot_keys[0], self.rot_issuer, "keyed-user", int(a.minutes * 60) + 3600)
        self.aux = Aux(self.jwks())
        (self.up_port, self.gh_port, self.adm_port, self.tls_port) = free_ports(4)
        self.ws_port = self.start_ws_upstream()
        self.oidc = None if a.no_oidc else OIDCLoad(self.gh_port, sys.executable)
        self.write_nginx()
        self.start_nginx()
        self.write_gatehouse_config(tokens)
        self.session_cookie = subprocess.run(
            [a.bin, "mint-session", "-c", self.config, "--provider", "soak-rs", "--claims",
             json.dumps({"sub": "soak-user", "email": "soak@example.com", "groups": ["staff"]})],
            check=True, capture_output=True, text=True).stdout.strip()
        self.start_gatehouse()

    def jwks(self) -> dict:
        return {"keys": [k.as_dict(private=False) for k in self.rot_keys]}

    def start_ws_upstream(self) -> int:
        p = subprocess.Popen([sys.executable, os.path.join(REPO, "scripts", "ws", "ws_tool.py"), "serve"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        return json.loads(p.stdout.readline())["port"]

    def write_nginx(self) -> None:
        d = os.path.join(self.work, "upstream")
        os.makedirs(os.path.join(d, "www"), exist_ok=True)
        with open(os.path.join(d, "www", "16k"), "wb") as f:
            f.write(os.urandom(12288).hex().encode()[:16384])
        user = "user root;" if os.getuid() == 0 else ""
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(f"""{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  default_type text/plain;
  server {{
    listen 127.0.0.1:{self.up_port} backlog=4096;
    location / {{ return 200 "hello from the upstream\\n"; }}
    location ~ 16k$ {{ root {d}/www; default_type application/octet-stream; try_files /16k =404; }}
  }}
}}
""")

    def start_nginx(self) -> None:
        d = os.path.join(self.work, "upstream")
        nginx = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx"
        self.nginx = subprocess.Popen([nginx, "-p", d, "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log",
                                       "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_port(self.up_port, 20)

    def kill_nginx(self) -> None:
        # SIGKILL the master and its worker: connections die without a FIN handshake of nginx's choosing.
        subprocess.run(["pkill", "-KILL", "-P", str(self.nginx.pid)], check=False)
        self.nginx.kill()
        self.nginx.wait()
        try:
            socket.create_connection(("127.0.0.1", self.up_port), 1).close()
            log(f"the upstream still accepts on {self.up_port} after the kill")
        except OSError:
            log("upstream killed")

    def write_gatehouse_config(self, tokens: str) -> None:
        secret = os.urandom(32).hex()
        self.config = os.path.join(self.work, "gatehouse.yaml")
        upstream = f"http://127.0.0.1:{self.up_port}"
        app_route = (f'  - {{id: app, match: {{path: /app}}, upstream: "{upstream}", auth: session, '
                     'providers: [soak-oidc]}\n') if self.oidc else ""
        with open(self.config, "w") as f:
            f.write(f"""version: 1
server:
  listen: ["127.0.0.1:{self.gh_port}"]
  admin_listen: "127.0.0.1:{self.adm_port}"
  workers: 2
  access_log:
    format: off
  limits:
    max_connections: 4096
    max_connections_per_client: 1024     # every load generator connects from 127.0.0.1
  timeouts:
    request_header: 5s
    upstream_response: 2s
  tls:
    listen: ["127.0.0.1:{self.tls_port}"]
    certificate_file: {self.work}/cert.pem
    private_key_file: {self.work}/key.pem
    alpn: [h2, http/1.1]
providers:
  - id: soak-rs
    issuer: https://rs.bench.gatehouse.invalid
    jwks_uri: file://{tokens}/jwks-rs.json
    audiences: [gatehouse-bench]
    client_id: gatehouse-bench
    algorithms: [RS256]
  - id: soak-keys
    issuer: {self.rot_issuer}
    jwks_uri: http://127.0.0.1:{self.aux.key_port}/jwks.json
    audiences: [gatehouse-soak]
    algorithms: [ES256]
{self.oidc.config() if self.oidc else ""}routes:
{app_route}  - {{id: none, match: {{path: /none}}, upstream: "{upstream}", auth: none}}
  - {{id: rs, match: {{path: /rs}}, upstream: "{upstream}", auth: jwt, providers: [soak-rs]}}
  - {{id: miss, match: {{path: /miss}}, upstream: "{upstream}", auth: jwt, providers: [soak-rs]}}
  - {{id: session, match: {{path: /sess}}, upstream: "{upstream}", auth: session, providers: [soak-rs]}}
  - {{id: keyed, match: {{path: /keyed}}, upstream: "{upstream}", auth: jwt, providers: [soak-keys]}}
  - {{id: rotated, match: {{path: /rotated}}, upstream: "{upstream}", auth: jwt, providers: [soak-keys]}}
  - {{id: flaky, match: {{path: /flaky}}, upstream: "http://127.0.0.1:{self.aux.flaky_port}", auth: none}}
  - {{id: ws, match: {{path: /ws}}, upstream: "http://127.0.0.1:{self.ws_port}", auth: none, websocket: true}}
session:
  secrets: ["{secret}"]
  secure: false
""")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", f"{self.work}/key.pem", "-out", f"{self.work}/cert.pem"],
                       check=True, capture_output=True)

    def start_gatehouse(self) -> None:
        nofile = self.args.nofile

        def limits():
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.gh_log = open(os.path.join(self.out, "gatehouse.log"), "w")
        self.gh = subprocess.Popen([self.args.bin, "serve", "-c", self.config], stdout=self.gh_log,
                                   stderr=subprocess.STDOUT, preexec_fn=limits)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.gh.poll() is not None:
                raise SystemExit("gatehouse exited at start; see gatehouse.log")
            try:
                with socket.create_connection(("127.0.0.1", self.adm_port), 1) as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b" 200 " in s.recv(100):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("gatehouse did not become ready")

    @staticmethod
    def wait_port(port: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"nothing listens on {port}")

    # -- load ----------------------------------------------------------------------------------------------

    def generators(self) -> dict:
        """route -> (tool, path, header, tokens file)."""
        return {
            "none": ("wrk", "/none/", "", ""),
            "rs": ("wrk", "/rs/", f"Authorization: Bearer {self.rs_token}", ""),
            "miss": ("wrk", "/miss/", "", self.miss_file),
            "session": ("wrk", "/sess/", f"Cookie: {self.session_cookie}", ""),
            "16k": ("wrk", "/none/16k", "", ""),
            "keyed": ("wrk", "/keyed/", f"Authorization: Bearer {self.keyed_token}", ""),
            "flaky": ("wrk", "/flaky/", "", ""),
            "h2-none": ("h2load", "/none/", "", ""),
            "h2-rs": ("h2load", "/rs/", f"authorization: Bearer {self.rs_token}", ""),
        }

    def launch(self, route: str, seconds: int, pace: dict | None, extra_header: str = "") -> subprocess.Popen:
        tool, path, header, tokens = self.generators().get(route, ("wrk", "/rotated/", extra_header, ""))
        if tool == "wrk":
            conns, delay = (pace or {}).get("conns", 16), (pace or {}).get("delay", 0)
            env = dict(os.environ, SOAK_PATH=path, SOAK_HEADER=header, SOAK_TOKENS=tokens, SOAK_DELAY_MS=str(delay))
            cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "20s", "-s", LUA,
                   f"http://127.0.0.1:{self.gh_port}"]
            return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        logf = os.path.join(self.work, f"h2-{route}-{time.monotonic_ns()}.log")
        cmd = ["h2load", "-c4", "-m4", "-t1", "-D", str(seconds), "--log-file", logf,
               f"https://127.0.0.1:{self.tls_port}{path}"]
        if pace:
            cmd[1:1] = ["--rps", str(pace["rps"])]
        if header:
            cmd[1:1] = ["-H", header]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        p.h2log = logf
        return p

    @staticmethod
    def collect(p: subprocess.Popen, timeout: float) -> dict:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return {"requests": 0, "status": {}, "errors": {"hung": 1}, "p50_us": 0, "p99_us": 0}
        if hasattr(p, "h2log"):
            return Soak.parse_h2load(out, p.h2log)
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                r = json.loads(line)
                r["errors"] = {k: v for k, v in r["errors"].items() if v and k != "status"}
                return r
        return {"requests": 0, "status": {}, "errors": {"no_report": 1}, "p50_us": 0, "p99_us": 0,
                "stderr": err[-300:]}

    @staticmethod
    def parse_h2load(out: str, logf: str) -> dict:
        status, lat = {}, []
        try:
            with open(logf) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        status[parts[1]] = status.get(parts[1], 0) + 1
                        lat.append(int(parts[2]))
            os.unlink(logf)
        except OSError:
            pass
        errors = {}
        for line in out.splitlines():
            if line.startswith("requests:"):
                nums = [int(w) for w in line.replace(",", " ").split() if w.isdigit()]
                # total, started, done, succeeded, failed, errored, timeout
                if len(nums) >= 7:
                    if nums[5]:
                        errors["read"] = nums[5]
                    if nums[6]:
                        errors["timeout"] = nums[6]
                    if nums[0] > nums[2]:
                        errors["not_done"] = nums[0] - nums[2]
        lat.sort()
        pick = (lambda q: lat[min(len(lat) - 1, int(len(lat) * q))]) if lat else (lambda q: 0)
        return {"requests": len(lat), "status": status, "errors": errors, "p50_us": pick(0.5), "p99_us": pick(0.99)}

    def capacity(self, seconds: int) -> dict:
        """Every generator at once, unpaced: each route's share of what the machine can do."""
        log(f"measuring capacity ({seconds} s, every route at once, unpaced)")
        procs = {r: self.launch(r, seconds, None) for r in self.generators()}
        results = {r: self.collect(p, seconds + 60) for r, p in procs.items()}
        return {r: res["requests"] / seconds for r, res in results.items()}

    def paces(self, capacity: dict) -> dict:
        paces = {}
        for route, rate in capacity.items():
            target = max(10.0, rate * self.args.load)
            if self.generators()[route][0] == "h2load":
                paces[route] = {"rps": max(1, int(target / 4)), "target": target}
            else:
                delay = 10  # ms between a connection's requests; the connection count sets the rate
                conns = max(1, round(target * (delay + 0.3) / 1000))
                paces[route] = {"conns": conns, "delay": delay, "target": target}
        return paces

    # -- faults --------------------------------------------------------------------------------------------

    def inject(self, fault: str, flood: "Flood | None") -> None:
        if fault == "upstream-resets":
            self.aux.set_flaky("reset")
        elif fault == "upstream-slow":
            self.aux.set_flaky("slow")
        elif fault in ("keys-down", "keys-slow", "keys-garbage"):
            self.aux.set_keys(fault.split("-")[1])
        if flood:
            flood.start()

    def clear(self, fault: str, flood: "Flood | None") -> None:
        self.aux.set_flaky("ok")
        if fault.startswith("keys-"):
            self.aux.set_keys("up")
            self.aux.publish(self.jwks())  # the key the fault window's tokens were signed with, published now
        if flood:
            flood.stop()

    def probe(self, path: str, header: str) -> int:
        """One request on a fresh connection; its status (0 when none came)."""
        try:
            with socket.create_connection(("127.0.0.1", self.gh_port), 5) as s:
                s.settimeout(15)
                extra = f"{header}\r\n" if header else ""
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: soak\r\n{extra}Connection: close\r\n\r\n".encode())
                data = s.recv(64)
                return int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else 0
        except (OSError, ValueError, IndexError):
            return 0

    # -- the run -------------------------------------------------------------------------------------------

    def plan(self, windows: int) -> list[tuple[str, str | None]]:
        """(kind, fault) per window: warm-up, then fault / recovery pairs through the schedule, clean at the end."""
        plan = [("warm-up", None), ("warm-up", None)]
        i = 0
        schedule = self.args.faults.split(",") if self.args.faults else SCHEDULE
        while len(plan) + 2 <= windows:
            fault = schedule[i % len(schedule)]
            plan += [("fault", fault), ("recovery", fault)]
            i += 1
        while len(plan) < windows:
            plan.append(("clean", None))
        return plan

    def run(self) -> int:
        a = self.args
        self.prepare()
        capacity = self.capacity(a.capacity_seconds)
        paces = self.paces(capacity)
        windows = max(3, int(a.minutes * 60 // a.window))
        plan = self.plan(windows)
        meta = {"minutes": a.minutes, "window_s": a.window, "load": a.load, "nofile": a.nofile,
                "capacity": capacity, "paces": paces, "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "commit": subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                         text=True).stdout.strip(), "nproc": os.cpu_count()}
        log(f"capacity (req/s, all at once): {json.dumps({k: round(v) for k, v in capacity.items()})}")
        log(f"{windows} windows of {a.window} s at {a.load:.0%} of that")
        records = []
        rotated_token = ""
        failed = False
        with open(os.path.join(self.out, "windows.jsonl"), "w") as jl:
            for k, (kind, fault) in enumerate(plan):
                t0 = time.monotonic()
                cpu0 = cpu_seconds(self.gh.pid)
                if kind == "fault" and fault.startswith("keys-"):
                    key = es_key(f"soak-{len(self.rot_keys)}")
                    rotated_token = sign(key, self.rot_issuer, "rotated-user", 3600)
                    self.rot_keys.append(key)  # published when the fault ends
                flood = None
                if kind == "fault" and fault == "fd-exhaustion":
                    flood = Flood(self.gh_port, a.nofile + 300, partial=False)
                elif kind == "fault" and fault == "half-open-flood":
                    flood = Flood(self.gh_port, a.flood, partial=True)
                if kind == "fault" and fault != "upstream-killed":
                    self.inject(fault, flood)  # before the load, so that the first request meets the fault
                procs = {r: self.launch(r, a.window, paces[r]) for r in self.generators()}
                use_rotated = fault is not None and fault.startswith("keys-")
                if use_rotated:
                    procs["rotated"] = self.launch("rotated", a.window, {"conns": 2, "delay": 100},
                                                   f"Authorization: Bearer {rotated_token}")
                ws_result = {}
                ws = threading.Thread(target=lambda: ws_result.update(self.aux.ws_window(
                    f"ws://127.0.0.1:{self.gh_port}/ws/", a.window - 2)), daemon=True)
                ws.start()
                oidc_result = {}
                oidc = None
                if self.oidc:
                    hung = kind == "fault" and fault == "provider-hung"
                    oidc = threading.Thread(target=lambda: oidc_result.update(self.oidc.window(a.window - 3, hung)),
                                            daemon=True)
                    oidc.start()
                if kind == "fault" and fault == "upstream-killed":
                    time.sleep(3)
                    self.kill_nginx()
                prober = None
                if kind == "recovery" and fault.startswith("keys-"):
                    prober = KeyProbe(self, f"Authorization: Bearer {rotated_token}")
                end = t0 + a.window
                restarted = False
                max_fds = 0
                while time.monotonic() < end:
                    self.rss.append((time.monotonic() - self.start, rss_kib(self.gh.pid), kind))
                    max_fds = max(max_fds, open_fds(self.gh.pid))
                    if kind == "fault" and fault == "upstream-killed" and not restarted and time.monotonic() > t0 + 15:
                        self.start_nginx()
                        restarted = True
                    time.sleep(min(5, max(0.0, end - time.monotonic())))
                if kind == "fault":
                    if fault == "upstream-killed" and not restarted:
                        self.start_nginx()
                    self.clear(fault, flood)
                results = {r: self.collect(p, 60) for r, p in procs.items()}
                ws.join(90)
                results["ws"] = {"requests": ws_result.get("handshakes", 0) + ws_result.get("messages", 0),
                                 "status": {}, "errors": ({"ws": ws_result["errors"]} if ws_result.get("errors")
                                                          else {}) if ws_result else {"hung": 1},
                                 "p99_us": ws_result.get("p99_us", 0), "detail": ws_result.get("error_kinds", {})}
                if oidc:
                    oidc.join(180)
                record = self.evaluate(k, kind, fault, results, time.monotonic() - t0)
                if self.oidc:
                    record["oidc"] = oidc_result
                    for what, n in oidc_result.items():
                        # Outside the fault every login and refresh must succeed; during it, none may hang.
                        ok = ": ok" in what or "expired with the access token" in what or what.startswith(("login during", "refresh during", "start during",
                                                                            "refresh: of a session refreshed"))
                        if kind == "fault" and fault in ("upstream-killed", "fd-exhaustion") and (
                                " 502" in what or " 503" in what):
                            ok = True  # the app behind the login is on the killed upstream too
                        if not ok or "error: " in what:
                            record["unexpected"].setdefault("oidc", {})[what] = n
                if prober:
                    # The new key must be taken within one unknown-kid interval (30 s) of the fault's end.
                    accepted = prober.finish(t0 + 40)
                    record["new_key_accepted_after_s"] = accepted
                    if accepted is None:
                        record["unexpected"]["rotated"] = {"new key not accepted within 40 s": 1}
                record["rss_kib"] = rss_kib(self.gh.pid)
                record["max_fds"] = max_fds
                record["cpu_pct"] = round(100 * (cpu_seconds(self.gh.pid) - cpu0) / max(record["elapsed_s"], 1), 1)
                if flood:
                    record["flood"] = {"opened": flood.opened, "failed": flood.failed}
                record["alive"] = self.gh.poll() is None
                records.append(record)
                jl.write(json.dumps(record) + "\n")
                jl.flush()
                bad = record["unexpected"]
                log(f"window {k + 1}/{windows} {kind} {fault or ''}: {record['total_rps']:.0f} req/s, "
                    f"rss {record['rss_kib'] / 1024:.1f} MiB, unexpected {bad or 'none'}")
                if not record["alive"]:
                    log("gatehouse died")
                    failed = True
                    break
                if bad:
                    failed = True
        with open(os.path.join(self.out, "rss.tsv"), "w") as f:
            for t, kib, kind in self.rss:
                f.write(f"{t:.1f}\t{kib}\t{kind}\n")
        write_report(self.out, meta, records, self.rss)
        return 1 if failed else 0

    def evaluate(self, k: int, kind: str, fault: str | None, results: dict, elapsed: float) -> dict:
        touched, allowed = FAULTS.get(fault, (set(), set())) if kind == "fault" else (set(), set())
        if kind == "recovery" and fault and fault.startswith("keys-"):
            # The first refresh for the new key may wait out the 30 s unknown-kid interval; the probe decides.
            touched, allowed = {"rotated"}, {"401"}
        unexpected, expected = {}, {}
        for route, r in results.items():
            seen = {s: n for s, n in r.get("status", {}).items() if not s.startswith("2")}
            seen.update(r.get("errors", {}))
            for what, n in seen.items():
                bucket = expected if route in touched and what in allowed else unexpected
                bucket.setdefault(route, {})[what] = n
        total = sum(r.get("requests", 0) for r in results.values())
        return {"window": k + 1, "kind": kind, "fault": fault, "elapsed_s": round(elapsed, 1),
                "total_rps": total / max(elapsed, 1), "routes": {r: {
                    "requests": v.get("requests", 0), "p50_us": v.get("p50_us", 0), "p99_us": v.get("p99_us", 0),
                    "status": v.get("status", {}), "errors": v.get("errors", {})} for r, v in results.items()},
                "expected": expected, "unexpected": unexpected,
                "ws_detail": results.get("ws", {}).get("detail", {})}

    def stop(self) -> None:
        if getattr(self, "oidc", None):
            self.oidc.close()
        for p in [getattr(self, "gh", None), getattr(self, "nginx", None), *self.procs]:
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if self.args.keep:
            log(f"kept {self.work}")
        else:
            subprocess.run(["rm", "-rf", self.work], check=False)


class KeyProbe:
    """After a key-server fault: one request a second with a token signed by the key published at the fault's
    end, until the first 200; `finish` returns the seconds from the start to that 200 (None if none by the
    deadline)."""

    def __init__(self, soak: Soak, header: str):
        self.soak, self.header = soak, header
        self.started = time.monotonic()
        self.accepted: float | None = None
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running and self.accepted is None:
            if self.soak.probe("/rotated/", self.header) == 200:
                self.accepted = round(time.monotonic() - self.started, 1)
                return
            time.sleep(1)

    def finish(self, deadline: float) -> float | None:
        self.thread.join(max(0.0, deadline - time.monotonic()))
        self.running = False
        return self.accepted


class Flood:
    """Connections that never finish a request: idle ones (fd-exhaustion) or ones that send half a head
    (half-open-flood), kept at `count` for as long as it runs (Gatehouse closes them after request_header, and
    they are opened again). Source addresses 127.0.0.2 and up, 200 connections each."""

    def __init__(self, port: int, count: int, partial: bool):
        self.port, self.count, self.partial = port, count, partial
        self.running = False
        self.opened = 0
        self.failed = 0

    def start(self) -> None:
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.running = False
        self.thread.join(30)

    def _open(self, i: int):
        s = socket.socket()
        s.setblocking(False)
        s.bind((f"127.0.{(i // 200) // 250}.{2 + (i // 200) % 250}", 0))
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            self.failed += 1
            return None
        self.opened += 1
        return s

    def _run(self) -> None:
        socks: list = [None] * self.count
        sent = [False] * self.count
        while self.running:
            for i in range(self.count):
                if not self.running:
                    break
                s = socks[i]
                if s is not None:
                    try:
                        if s.recv(1, socket.MSG_PEEK) == b"":
                            raise ConnectionError
                    except BlockingIOError:
                        if self.partial and not sent[i]:
                            try:
                                s.send(b"GET /none/ HTTP/1.1\r\nHost: soak\r\nX-Half: ")
                                sent[i] = True
                            except OSError:
                                pass
                        continue
                    except OSError:
                        pass
                    s.close()
                    socks[i] = None
                socks[i] = self._open(i)
                sent[i] = False
            time.sleep(0.5)
        for s in socks:
            if s is not None:
                s.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the gatehouse binary")
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--window", type=int, default=30, help="seconds per window")
    p.add_argument("--load", type=float, default=0.7, help="fraction of the measured capacity")
    p.add_argument("--capacity-seconds", type=int, default=15)
    p.add_argument("--miss-tokens", type=int, default=20000)
    p.add_argument("--nofile", type=int, default=2048, help="gatehouse's file descriptor limit (ulimit -n)")
    p.add_argument("--flood", type=int, default=1500, help="half-open connections in the flood")
    p.add_argument("--faults", default="", help="comma-separated subset of the schedule (default: all, in order)")
    p.add_argument("--no-oidc", action="store_true", help="no logins or refreshes (no OpenID provider)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args()
    soak = Soak(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return soak.run()
    finally:
        soak.stop()


if __name__ == "__main__":
    sys.exit(main())
