"""Logins and session refreshes through Gatehouse against a real OpenID provider (Canaille, through
scripts/oidc/canaille_provider.py), for the soak's `provider-hung` fault: the provider's server process is stopped
(SIGSTOP: it accepts nothing and answers nothing) for a window, then continued.

One thread, one provider operation at a time, 1.3 s apart (Canaille answers two token requests for one user
within a second with a 500): full logins of alice (Gatehouse's /oauth2/start, the provider's login and consent
pages, Gatehouse's callback, then the app) and one session of bob, refreshed in-band by Gatehouse whenever its
access token has expired (Canaille's token lifetime is 30 s, Gatehouse's floor too).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class OIDCLoad:
    def __init__(self, gh_port: int, python: str):
        self.base = f"http://127.0.0.1:{gh_port}"
        self.proc = subprocess.Popen(
            [python, os.path.join(REPO, "scripts", "oidc", "canaille_provider.py"), "serve",
             "--redirect-uri", f"{self.base}/oauth2/callback", "--token-lifetime", "30"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self._readline(180)
        if not line:
            raise SystemExit("the OpenID provider (Canaille) did not start")
        self.info = json.loads(line)
        kids = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        self.server_pids = [int(k) for k in kids]
        self.bob: dict | None = None  # {"session": requests.Session, "at": monotonic, "tainted": bool}

    def config(self) -> str:
        i = self.info
        return (f"  - id: soak-oidc\n    issuer: {i['issuer']}\n    client_id: {i['client_id']}\n"
                f"    client_secret: \"{i['client_secret']}\"\n    scopes: [openid, email, profile, groups]\n")

    def _readline(self, timeout: float) -> bytes:
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if readable else b""

    def command(self, obj: dict, timeout: float = 30) -> dict:
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()
        line = self._readline(timeout)
        if not line:
            raise TimeoutError("the provider script did not answer")
        return json.loads(line)

    def stop_provider(self) -> None:
        for pid in self.server_pids:
            os.kill(pid, signal.SIGSTOP)

    def continue_provider(self) -> None:
        for pid in self.server_pids:
            os.kill(pid, signal.SIGCONT)

    # -- operations ----------------------------------------------------------------------------------------

    def begin_login(self, user: str):
        """Gatehouse's /oauth2/start, then the provider's pages: (browser session, callback URL)."""
        import requests

        s = requests.Session()
        r = s.get(f"{self.base}/oauth2/start?rd=%2Fapp%2F&provider=soak-oidc", allow_redirects=False, timeout=20)
        if r.status_code != 302:
            return s, None, f"start {r.status_code}"
        answer = self.command({"cmd": "login", "user": user, "authorize_url": r.headers["location"]})
        if not answer.get("ok"):
            return s, None, "provider login failed"
        return s, answer["location"], None

    def finish_login(self, s, callback: str) -> str:
        """Gatehouse's callback and the app: 'ok' or what went wrong."""
        r = s.get(callback, allow_redirects=False, timeout=30)
        if r.status_code != 302:
            return f"callback {r.status_code}"
        r = s.get(f"{self.base}/app/", allow_redirects=False, timeout=30)
        if r.status_code != 200:
            return f"app {r.status_code}"
        return "ok"

    def refresh_bob(self, hung: bool) -> str:
        """A request with bob's session, whose access token has expired, so Gatehouse refreshes it. A session
        refreshed while the provider is stopped is marked: the provider still takes that refresh request from
        its socket when it continues, and rotates the refresh token in an answer that nobody reads, so the next
        refresh of that session fails and bob logs in again (what any relying party would see)."""
        x = self.bob
        started = time.monotonic()
        r = x["session"].get(f"{self.base}/app/", allow_redirects=False, timeout=30)
        x["at"] = time.monotonic()
        slow = " (after {:.0f} s)".format(x["at"] - started) if x["at"] - started > 2 else ""
        result = "ok" + slow if r.status_code == 200 else f"{r.status_code}"
        if x.get("tainted"):
            self.bob = None
            return "of a session refreshed during the fault: " + result
        if hung:
            x["tainted"] = True
        elif r.status_code != 200:
            self.bob = None
            if r.status_code == 401:
                # Canaille's refresh token expires with its access token (scripts/oidc/canaille_provider.py), and
                # Gatehouse refreshes only once the access token has expired: invalid_grant, the session ends.
                result += " (session ended: refresh token expired with the access token)"
        return result

    def bob_due(self) -> bool:
        return self.bob is not None and time.monotonic() - self.bob["at"] > 31

    def login(self, user: str) -> str:
        s, callback, err = self.begin_login(user)
        if not callback:
            return err
        result = self.finish_login(s, callback)
        if result == "ok" and user == "bob":
            self.bob = {"session": s, "at": time.monotonic()}
        return result

    def window(self, seconds: float, hung: bool) -> dict:
        """Runs the operations for `seconds`. Outside the fault: alice logs in every 2.6 s, and bob keeps one
        session that is refreshed whenever its access token has expired (Canaille revokes a user's earlier
        refresh tokens at a new login, so only bob's one session is refreshed). With `hung`: a login for alice
        is begun (its code issued), the provider is stopped, the login is finished against it, Gatehouse's
        /oauth2/start is asked once a second, and bob's session is refreshed once its token expires (the
        provider stays stopped until then, up to 40 s); then the provider continues."""
        counts: dict[str, int] = {}

        def count(what: str) -> None:
            counts[what] = counts.get(what, 0) + 1

        deadline = time.monotonic() + seconds
        if hung:
            if self.bob is None:
                count("login (bob, before the fault): " + self.login("bob"))
                time.sleep(1.3)
            s, callback, err = self.begin_login("alice")
            self.stop_provider()
            try:
                if callback:
                    count("login during the fault: " + self.finish_login(s, callback))
                refreshed = self.bob is None
                stop_by = time.monotonic() + 40
                while time.monotonic() < max(deadline, stop_by if not refreshed else 0):
                    if not refreshed and self.bob_due():
                        count("refresh during the fault: " + self.refresh_bob(True))
                        refreshed = True
                        continue
                    r = __import__("requests").get(f"{self.base}/oauth2/start?rd=%2Fapp%2F&provider=soak-oidc",
                                                   allow_redirects=False, timeout=30)
                    count(f"start during the fault: {r.status_code}")
                    time.sleep(1)
            except Exception as exc:  # noqa: BLE001 - every failure is counted by kind
                count(f"error during the fault: {type(exc).__name__}")
            finally:
                self.continue_provider()
            return counts
        step = 0
        while time.monotonic() < deadline:
            step += 1
            try:
                if step % 2:
                    count("login: " + self.login("alice"))
                elif self.bob is None:
                    count("login (bob): " + self.login("bob"))
                elif self.bob_due():
                    count("refresh: " + self.refresh_bob(False))
            except Exception as exc:  # noqa: BLE001 - every failure is counted by kind
                count(f"error: {type(exc).__name__}")
            time.sleep(1.3)
        return counts

    def close(self) -> None:
        self.continue_provider()
        try:
            self.proc.stdin.close()
            self.proc.wait(20)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
