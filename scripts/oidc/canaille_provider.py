#!/usr/bin/env python3
"""Run a real OpenID provider (Canaille 0.3.6) on loopback for Gatehouse's end-to-end tests.

Usage:
    python3 scripts/oidc/canaille_provider.py serve [--redirect-uri URI ...] [--alg RS256]
        [--token-lifetime SECONDS] [--post-logout-redirect-uri URI ...] [--startup-timeout SECONDS]
        [--until-signal] [--keep-tmp]

--redirect-uri and --post-logout-redirect-uri may be given several times; all are registered for the
client (exact match), and the script's own logins use the first redirect URI (default
http://127.0.0.1:1/oauth2/callback).

`serve` creates a temporary directory, writes a Canaille configuration (SQLite storage, fresh signing
keys RSA-2048 + EC P-256 + Ed25519, issuer http://127.0.0.1:PORT on a port the kernel picked for a socket
bound here and handed to the server, so no port race), starts Canaille's server (Hypercorn with Canaille's
ASGI factory `canaille.hypercorn.app:create_app()`, i.e. what `canaille run` serves, loaded through
counting_app() below, which only counts token requests; set GATEHOUSE_CANAILLE_RUNNER=canaille-run to start
it through `canaille run` itself, without counting), polls discovery until
it answers (the only timed wait, bounded by --startup-timeout), creates the users alice and bob, the
groups staff and admins and the confidential client `gatehouse` through Canaille's models, logs alice
and bob in through the real login, password and consent pages (authorization code + PKCE S256 + nonce,
no browser), verifies both tokens against the published JWKS, and prints ONE JSON line on stdout:

    {"issuer": ..., "jwks_uri": ..., "client_id": "gatehouse", "client_secret": ...,
     "tokens": {"alice": ACCESS_JWT, "bob": ACCESS_JWT},
     "id_tokens": {"alice": ID_JWT, "bob": ID_JWT},
     "refresh_tokens": {"alice": ..., "bob": ...},
     "discovery_url": ..., "redirect_uri": FIRST_REDIRECT_URI, "redirect_uris": [...],
     "post_logout_redirect_uris": [...], "alg": "RS256", "token_lifetime": 3600,
     "users": {"alice": {"password": ..., "email": ..., "groups": [...]}, "bob": {...}},
     "pid": PID_OF_THIS_SCRIPT}

It then keeps serving until its standard input reaches end of file (unless --until-signal) or it gets
SIGTERM/SIGINT/SIGHUP; then it stops Canaille and removes the temporary directory. While it serves, each
line written to its standard input may be a JSON command, answered by one JSON line on stdout:

    {"cmd": "token", "user": "alice"}
        -> {"ok": true, "access_token": ..., "id_token": ..., "refresh_token": ..., "expires_in": N}
    {"cmd": "login", "user": "alice", "authorize_url": "http://127.0.0.1:PORT/oauth/authorize?..."}
        -> {"ok": true, "location": "<redirect_uri>?code=...&state=...&iss=..."}
       (logs the user in on a fresh provider session, accepts consent, and returns the final redirect to
        the client WITHOUT following it; use it to finish a login that Gatehouse itself started)
    {"cmd": "register_redirect_uri", "uri": "http://127.0.0.1:PORT/oauth2/callback",
     "post_logout_uris": ["http://127.0.0.1:PORT/bye"]}
        -> {"ok": true, "redirect_uris": [...]}
       (adds loopback redirect URIs to the `gatehouse` client after start, for a relying party that binds
        port 0 and learns its port only then)
    {"cmd": "stats"}
        -> {"ok": true, "token_requests": {"authorization_code": 2, "refresh_token": 3},
            "token_errors": {"refresh_token": 1}}
       (POSTs to the token endpoint since the start, by ANY client (Gatehouse, this script, anyone), counted
        by grant_type ("(none)" when absent); token_errors counts those not answered 200, by grant_type;
        grant types never seen are absent. The script's own startup logins are included (normally
        {"authorization_code": 2}, plus one 500 when the same-second quirk below hits), so compare two
        snapshots. The server appends one JSON line per token request to token-requests.jsonl in the
        temporary directory; not available with GATEHOUSE_CANAILLE_RUNNER=canaille-run)
    anything else -> {"ok": false, "error": "..."}

Logs go to stderr. Any failure exits non-zero with a message on stderr; every wait is bounded.
A caller must keep stdin open while it needs the provider (e.g. Foundation's Process: set
standardInput to a Pipe and close its write end to stop it); with stdin at /dev/null it stops right
after the JSON line unless --until-signal is given. If this script is SIGKILLed, the server dies with it
(PR_SET_PDEATHSIG) but the temporary directory (/tmp/gatehouse-canaille-*) is left behind.

Canaille quirks met here: access tokens are JWTs with typ "JWT" and no scope, jti or client_id claim;
`groups` only with the groups scope, in no fixed order; two tokens for the same user, client and second
are identical and the second token request gets HTTP 500 (token_flow retries once in the next second).
The same holds for refresh_token grants: refreshing in the same wall-clock second as the token was issued
(or refreshed) answers 500 (sqlite UNIQUE constraint on token.access_token) and the refresh token stays
usable; a client must refresh at least one second after the token it replaces.

What Canaille 0.3.6 does here (verified by running this script; discovery paths below are those of
http://127.0.0.1:PORT):
- Refresh tokens rotate: a refresh_token grant answers a new refresh token (different string) and revokes
  the old one, which is then refused with 400 {"error": "invalid_grant"}. The refresh response carries
  access_token, expires_in, refresh_token, scope, token_type and NO id_token.
- A refresh token lives exactly as long as its access token: with --token-lifetime 3 a refresh 2.5 s after
  the token was issued works, one 3.3 s after is refused with 400 invalid_grant. So with a short lifetime a
  client cannot wait for the access token to expire and then refresh; it must refresh early.
- --token-lifetime N: access tokens (authorization_code and refresh_token grants) get exp = iat + N and
  expires_in N. ID tokens do NOT: their exp is always iat + 3600 (Authlib's default, not configurable in
  Canaille's settings). The ID token's auth_time is a float (e.g. 1795940992.273472); iat/exp are integers.
- With scope "openid email profile groups" both the ID token and the access token carry email, groups,
  preferred_username, name, given_name, family_name, updated_at (and the ID token amr ["pwd"], at_hash,
  nonce, auth_time). preferred_username is the display name ("Alice", "Bob"), NOT the user name: use `sub`
  ("alice") for the user name. aud is a list (["gatehouse"]) in both. /oauth/userinfo answers the same
  profile claims (JSON) for a valid access token and 401 invalid_token for an expired one.
- Discovery: "end_session_endpoint": ".../oauth/end_session", "userinfo_endpoint": ".../oauth/userinfo",
  "token_endpoint": ".../oauth/token", "revocation_endpoint": ".../oauth/revoke",
  "introspection_endpoint": ".../oauth/introspect", "jwks_uri": ".../oauth/jwks.json",
  "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt", "client_secret_post",
  "none"], "code_challenge_methods_supported": ["plain", "S256"],
  "authorization_response_iss_parameter_supported": true; no frontchannel/backchannel logout. The client
  `gatehouse` is registered with client_secret_basic and Canaille enforces that: client_secret_post is
  refused with 401 invalid_client although discovery lists it.
- RP-initiated logout: GET /oauth/end_session?id_token_hint=ID_TOKEN&post_logout_redirect_uri=URI&state=S
  (client_id optional) ends the provider session and answers 302 URI?state=S when URI was registered with
  --post-logout-redirect-uri (per Authlib's code an expired ID token is still accepted as hint); with an
  unregistered URI it answers 302 to "/" on the provider instead; without id_token_hint it shows a
  confirmation page (200, form button answer=logout). Verified in a browser: after the redirect, the next
  authorization request shows the login page again.
- Consent: the startup logins store alice's and bob's consent for `gatehouse`, so later logins show no
  consent page unless the authorization request says prompt=consent. An unknown user name still gets
  the password page (then "Login failed"). The login page's "Remember me" is on by default; the provider's
  browser cookies are `canaille` (session) and `canaille_login_history`.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import hashlib
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from html.parser import HTMLParser

PROG = "canaille_provider"
CLIENT_ID = "gatehouse"
SCOPE = "openid email profile groups"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:1/oauth2/callback"
HTTP_TIMEOUT = 15.0  # seconds, for every single HTTP request the script makes

USERS = {
    "alice": {
        "password": "alice-Correct-Horse-7",
        "email": "alice@example.com",
        "given_name": "Alice",
        "family_name": "Liddell",
        "groups": ["staff", "admins"],
    },
    "bob": {
        "password": "bob-Battery-Staple-9",
        "email": "bob@example.org",
        "given_name": "Bob",
        "family_name": "Builder",
        "groups": ["staff"],
    },
}
GROUPS = ["staff", "admins"]


class Failure(Exception):
    """A startup or flow error, reported on stderr as one line."""


class Stop(Exception):
    """Raised from the signal handler to leave the serve loop."""


def log(message: str) -> None:
    print(f"[{PROG}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- config


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def write_toml(path: str, top: dict, tables: dict) -> None:
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, table in tables.items():
        lines.append("")
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in table.items())
    with open(path, "w", encoding="utf-8") as fd:
        fd.write("\n".join(lines) + "\n")


def make_signing_keys() -> list[dict]:
    """Fresh server keys: RSA first (RS256/PS256), then EC P-256 (ES256) and Ed25519 (EdDSA)."""
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    keys = [
        RSAKey.generate_key(2048, auto_kid=True),
        ECKey.generate_key("P-256", auto_kid=True),
        OKPKey.generate_key("Ed25519", auto_kid=True),
    ]
    return [k.as_dict(private=True) for k in keys]


def build_config(tmp: str, port: int, token_lifetime: int) -> tuple[str, dict]:
    path = os.path.join(tmp, "canaille.toml")
    top = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SERVER_NAME": f"127.0.0.1:{port}",
        "PREFERRED_URL_SCHEME": "http",
        "DEBUG": False,
        "OAUTH2_TOKEN_EXPIRES_IN": {
            "authorization_code": token_lifetime,
            "refresh_token": token_lifetime,
            "implicit": token_lifetime,
            "password": token_lifetime,
            "client_credentials": token_lifetime,
        },
    }
    tables = {
        "CANAILLE": {
            "NAME": "Gatehouse test provider",
            "DATABASE": "sql",
            "ENABLE_PASSWORD_COMPROMISSION_CHECK": False,
        },
        "CANAILLE_SQL": {"DATABASE_URI": f"sqlite:///{os.path.join(tmp, 'canaille.sqlite')}"},
        "CANAILLE_OIDC": {"REQUIRE_NONCE": True, "ACTIVE_JWKS": make_signing_keys()},
        "CANAILLE_HYPERCORN": {"WORKERS": 0},
    }
    write_toml(path, top, tables)
    return path, {"top": top, "tables": tables}


# ------------------------------------------------------------------------------------- provider data


def make_app(config_path: str):
    """Canaille's Flask app in this process, used only to write the provider's data.

    It does not migrate the database: the server process does that when it starts (AUTO_MIGRATE), and
    this import runs while the server starts, which saves a few seconds of startup.
    """
    os.environ["CANAILLE_CONFIG"] = config_path
    from canaille import create_app

    return create_app(init_backend=False)


def populate(app, redirect_uris: list[str], post_logout: list[str], alg: str) -> str:
    """Create the users, groups and the client through Canaille's models (after the server migrated).

    Returns the client secret.
    """
    import datetime

    client_secret = secrets.token_urlsafe(32)
    with app.app_context():
        from canaille.app import models
        from canaille.backends import Backend

        with Backend.instance.session():
            users = {}
            for name, info in USERS.items():
                user = models.User(
                    user_name=name,
                    given_name=info["given_name"],
                    family_name=info["family_name"],
                    formatted_name=f"{info['given_name']} {info['family_name']}",
                    display_name=info["given_name"],
                    emails=[info["email"]],
                    password=info["password"],
                )
                Backend.instance.save(user)
                users[name] = user
            for group_name in GROUPS:
                members = [users[n] for n, i in USERS.items() if group_name in i["groups"]]
                group = models.Group(display_name=group_name, members=members)
                Backend.instance.save(group)

            client = models.Client(
                client_id=CLIENT_ID,
                client_secret=client_secret,
                client_name="Gatehouse",
                client_id_issued_at=datetime.datetime.now(datetime.timezone.utc),
                redirect_uris=list(redirect_uris),
                post_logout_redirect_uris=post_logout,
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="client_secret_basic",
                scope=SCOPE.split(),
                id_token_signed_response_alg=alg,
            )
            Backend.instance.save(client)
            client.audience = [client]
            Backend.instance.save(client)

            # Read back what was stored, so that a model or migration change fails here, loudly.
            for name, info in USERS.items():
                user = Backend.instance.get(models.User, user_name=name)
                got = sorted(g.display_name for g in user.groups)
                if got != sorted(info["groups"]):
                    raise Failure(f"user {name} has groups {got}, expected {sorted(info['groups'])}")
                ok, _ = Backend.instance.check_user_password(user, info["password"])
                if not ok:
                    raise Failure(f"the stored password of {name} does not check")
    return client_secret


# ------------------------------------------------------------------------------- server subprocess


def _set_parent_death_signal() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: die with the parent, even a SIGKILLed one
    except OSError:
        pass


TOKEN_LOG_ENV = "GATEHOUSE_CANAILLE_TOKEN_LOG"
TOKEN_LOG_NAME = "token-requests.jsonl"
TOKEN_ENDPOINT = "oidc.endpoints.issue_token"  # Flask endpoint name of Canaille's /oauth/token


class TokenRequestCounter:
    """WSGI middleware around Canaille's Flask app: one JSON line per POST to the token endpoint.

    Runs in the server process. Each line is {"grant_type", "status", "client_id", "time"}, appended to
    the file named by $GATEHOUSE_CANAILLE_TOKEN_LOG with a single O_APPEND write (the server runs
    requests in threads). The request body is read here and handed on unchanged.
    """

    def __init__(self, app, token_path: str, log_path: str):
        self.app = app
        self.token_path = token_path
        self.log_path = log_path

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != self.token_path:
            return self.app(environ, start_response)
        import io

        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        body = environ["wsgi.input"].read(length) if length >= 0 else environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        grant_type = (form.get("grant_type") or query.get("grant_type") or ["(none)"])[0]
        client_id = (form.get("client_id") or [None])[0]
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if auth[:6].lower() == "basic ":
            try:
                client_id = urllib.parse.unquote(base64.b64decode(auth[6:]).decode().split(":", 1)[0])
            except ValueError:
                pass
        recorded = []

        def recording_start_response(status, headers, exc_info=None):
            if not recorded:
                recorded.append(True)
                self._record(grant_type, int(status.split()[0]), client_id)
            return start_response(status, headers, exc_info)

        return self.app(environ, recording_start_response)

    def _record(self, grant_type: str, status: int, client_id) -> None:
        line = json.dumps({"grant_type": grant_type, "status": status, "client_id": client_id, "time": time.time()})
        try:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError as exc:
            log(f"cannot record a token request in {self.log_path}: {exc}")


def _give_access_tokens_a_jti() -> None:
    """Canaille 0.3.6 signs access tokens without `jti`, so two tokens for the same user in the same second are
    byte-identical and the second token request fails with HTTP 500 (a unique column). Real providers put a
    `jti` in access tokens; this adds one (a random UUID) to the claims Canaille's access-token generator signs,
    so back-to-back logins and refreshes behave as they would against those providers."""
    import uuid

    from canaille.oidc import provider as canaille_provider

    original = canaille_provider.generate_id_token

    def with_jti(*args, **kwargs):
        info = kwargs.get("user_info")
        if info is not None and "jti" not in info:
            kwargs["user_info"] = type(info)({**info, "jti": str(uuid.uuid4())})
        return original(*args, **kwargs)

    canaille_provider.generate_id_token = with_jti


def counting_app():
    """ASGI app the server process loads (`canaille_provider:counting_app()`): Canaille's own factory
    `canaille.hypercorn.app:create_app()` with TokenRequestCounter between its Flask app (ProxyFix and all)
    and the WsgiToAsgi wrapper that the factory would apply itself."""
    from asgiref.wsgi import WsgiToAsgi
    from canaille.hypercorn.app import create_app

    _give_access_tokens_a_jti()
    flask_app = create_app(wrap_asgi=False)
    rules = [r.rule for r in flask_app.url_map.iter_rules() if r.endpoint == TOKEN_ENDPOINT]
    if len(rules) != 1:
        raise RuntimeError(f"cannot find Canaille's token endpoint {TOKEN_ENDPOINT} (found {rules})")
    return WsgiToAsgi(TokenRequestCounter(flask_app, rules[0], os.environ[TOKEN_LOG_ENV]))


def start_server(tmp: str, config_path: str, sock: socket.socket) -> subprocess.Popen:
    env = dict(os.environ)
    env["CANAILLE_CONFIG"] = config_path
    env["PYTHONUNBUFFERED"] = "1"
    env[TOKEN_LOG_ENV] = os.path.join(tmp, TOKEN_LOG_NAME)
    if os.environ.get("GATEHOUSE_CANAILLE_RUNNER") == "canaille-run":
        # Canaille's own `canaille run` command: the same Hypercorn server and app factory, but it
        # builds the app twice (once for the CLI), about 1.5 s slower.
        cmd = [sys.executable, "-m", "canaille.commands", "run", "--bind", f"fd://{sock.fileno()}"]
    else:
        # Hypercorn with Canaille's ASGI factory (what `canaille run` serves), one worker in-process,
        # loaded through counting_app() of this very file, which counts the token requests.
        here = os.path.dirname(os.path.abspath(__file__))
        env["PYTHONPATH"] = os.pathsep.join([here] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        cmd = [
            sys.executable,
            "-m",
            "hypercorn",
            "--workers",
            "0",
            "--bind",
            f"fd://{sock.fileno()}",
            f"{os.path.splitext(os.path.basename(__file__))[0]}:counting_app()",
        ]
    log(f"starting: {' '.join(cmd)} (cwd {tmp})")
    return subprocess.Popen(
        cmd,
        cwd=tmp,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr.fileno(),  # keep our stdout for the JSON line only
        stderr=sys.stderr.fileno(),
        pass_fds=(sock.fileno(),),
        start_new_session=True,
        preexec_fn=_set_parent_death_signal if sys.platform.startswith("linux") else None,
    )


def stop_server(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        log("Canaille did not stop within 10 s after SIGTERM; killing it")
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def wait_ready(requests, discovery_url: str, issuer: str, proc: subprocess.Popen, spawned: float, timeout: float) -> dict:
    """Bounded poll of the discovery document (timeout counted from the spawn): the only timed wait."""
    deadline = spawned + timeout
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"Canaille exited with status {proc.returncode} before it was ready (see its log above)")
        try:
            resp = requests.get(discovery_url, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            if resp.status_code == 200:
                doc = resp.json()
                if doc.get("issuer") != issuer:
                    raise Failure(f"discovery announces issuer {doc.get('issuer')!r}, expected {issuer!r}")
                return doc
            last_error = f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            last_error = type(exc).__name__
        time.sleep(0.1)
    raise Failure(f"Canaille did not answer {discovery_url} within {timeout:.0f} s (last: {last_error})")


# -------------------------------------------------------------------------------- browserless login


class FormParser(HTMLParser):
    """Collects the forms of a page: action, method, and the named inputs and submit buttons."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._current = {
                "action": a.get("action") or "",
                "method": (a.get("method") or "get").lower(),
                "fields": {},
                "buttons": [],
            }
            self.forms.append(self._current)
        elif self._current is not None and tag in ("input", "button", "select", "textarea"):
            name = a.get("name")
            if not name:
                return
            kind = (a.get("type") or ("submit" if tag == "button" else "text")).lower()
            if kind == "submit":
                self._current["buttons"].append((name, a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._current["fields"][name] = a.get("value", "on")
            else:
                self._current["fields"][name] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def find_form(html: str, want_field: str | None = None, want_button: tuple[str, str] | None = None):
    parser = FormParser()
    parser.feed(html)
    for form in parser.forms:
        if want_field and want_field not in form["fields"]:
            continue
        if want_button and want_button not in form["buttons"]:
            continue
        return form
    return None


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(48)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Provider:
    def __init__(
        self,
        requests,
        issuer: str,
        discovery: dict,
        client_secret: str,
        redirect_uri: str,
        token_log: str | None = None,
    ):
        self.requests = requests
        self.issuer = issuer
        self.discovery = discovery
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.token_log = token_log  # written by TokenRequestCounter in the server; None: not counted

    def stats(self) -> dict:
        """Token endpoint POSTs so far (by any client), by grant_type, and those not answered 200."""
        if self.token_log is None:
            raise Failure("token requests are not counted with GATEHOUSE_CANAILLE_RUNNER=canaille-run")
        requests_by_grant: dict[str, int] = {}
        errors_by_grant: dict[str, int] = {}
        try:
            with open(self.token_log, encoding="utf-8") as fd:
                lines = fd.read().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            if not line.strip():
                continue
            entry = json.loads(line)
            grant = entry["grant_type"]
            requests_by_grant[grant] = requests_by_grant.get(grant, 0) + 1
            if entry["status"] != 200:
                errors_by_grant[grant] = errors_by_grant.get(grant, 0) + 1
        return {"ok": True, "token_requests": requests_by_grant, "token_errors": errors_by_grant}

    def _same_origin(self, url: str) -> bool:
        a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self.issuer)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def login(self, user: str, authorize_url: str, redirect_uri: str) -> str:
        """Drive login + consent from an authorization URL; return the Location sent to the client."""
        if user not in USERS:
            raise Failure(f"unknown user {user!r}")
        password = USERS[user]["password"]
        session = self.requests.Session()  # a fresh provider session per login
        url, method, data = authorize_url, "GET", None
        steps = {"login": False, "password": False, "consent": False}
        for _ in range(20):
            if not self._same_origin(url):
                raise Failure(f"login flow left the provider for {url}")
            if method == "GET":
                resp = session.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
            else:
                resp = session.post(url, data=data, allow_redirects=False, timeout=HTTP_TIMEOUT)
            if resp.is_redirect:
                location = urllib.parse.urljoin(url, resp.headers["Location"])
                if location.startswith(redirect_uri):
                    return location  # do not follow: the client may not be listening
                url, method, data = location, "GET", None
                continue
            if resp.status_code != 200:
                raise Failure(f"{method} {url} answered HTTP {resp.status_code}: {resp.text[:300]}")
            html = resp.text
            if form := find_form(html, want_field="login"):
                if steps["login"]:
                    raise Failure(f"the login page came back for {user} (rejected user name?)")
                steps["login"] = True
                fields = dict(form["fields"], login=user)
                fields.pop("remember", None)
            elif form := find_form(html, want_field="password"):
                if steps["password"]:
                    raise Failure(f"the password page came back for {user} (rejected password?)")
                steps["password"] = True
                fields = dict(form["fields"], password=password)
            elif form := find_form(html, want_button=("answer", "accept")):
                if steps["consent"]:
                    raise Failure(f"the consent page came back for {user}")
                steps["consent"] = True
                fields = dict(form["fields"], answer="accept")
            else:
                raise Failure(f"unexpected page at {url}: {html[:300]!r}")
            url = urllib.parse.urljoin(url, form["action"] or url)
            method, data = form["method"].upper(), fields
            if method == "GET":
                url = url.split("?")[0] + "?" + urllib.parse.urlencode(fields)
        raise Failure(f"login flow for {user} did not end after 20 steps")

    def token_flow(self, user: str) -> dict:
        """The whole authorization-code flow with PKCE S256 and a nonce; returns the token response."""
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        verifier, challenge = pkce_pair()
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": self.redirect_uri,
                "scope": SCOPE,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        location = self.login(user, f"{self.discovery['authorization_endpoint']}?{query}", self.redirect_uri)
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        if "error" in params:
            raise Failure(f"authorization for {user} failed: {params}")
        if params.get("state") != state:
            raise Failure(f"state mismatch in {location}")
        if params.get("iss") not in (None, self.issuer):
            raise Failure(f"iss parameter {params.get('iss')!r} differs from the issuer")
        form = {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        for attempt in (1, 2):
            resp = self.requests.post(
                self.discovery["token_endpoint"],
                data=form,
                auth=(CLIENT_ID, self.client_secret),
                timeout=HTTP_TIMEOUT,
            )
            # Canaille quirk: a second token for the same user within the same second is byte-identical
            # to the first (no jti) and the unique column makes the token endpoint answer 500. Retry once
            # in the next second; the code is still unused then, as the failed request was rolled back.
            if resp.status_code == 500 and attempt == 1:
                log(f"token endpoint answered 500 for {user}; retrying once in the next second")
                time.sleep(1.05 - (time.time() % 1.0))
                continue
            break
        if resp.status_code != 200:
            raise Failure(f"token endpoint answered HTTP {resp.status_code} for {user}: {resp.text[:300]}")
        tokens = resp.json()
        for key in ("access_token", "id_token"):
            if key not in tokens:
                raise Failure(f"token response for {user} has no {key}: {tokens}")
        tokens["nonce"] = nonce
        return tokens


def verify_tokens(requests, jwks_uri: str, issuer: str, user: str, tokens: dict, alg: str) -> dict:
    """Check the access and ID tokens with joserfc against the published JWKS; return the access claims."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    jwks = KeySet.import_key_set(requests.get(jwks_uri, timeout=HTTP_TIMEOUT).json())
    claims = {}
    for kind in ("access_token", "id_token"):
        token = jwt.decode(tokens[kind], jwks, algorithms=[alg])
        c = token.claims
        if token.header.get("alg") != alg:
            raise Failure(f"{kind} of {user} is signed with {token.header.get('alg')}, expected {alg}")
        if c.get("iss") != issuer:
            raise Failure(f"{kind} of {user} has iss {c.get('iss')!r}")
        aud = c.get("aud")
        if CLIENT_ID not in (aud if isinstance(aud, list) else [aud]):
            raise Failure(f"{kind} of {user} has aud {aud!r}")
        if c.get("exp", 0) <= time.time():
            raise Failure(f"{kind} of {user} is already expired")
        if c.get("sub") != user:
            raise Failure(f"{kind} of {user} has sub {c.get('sub')!r}")
        claims[kind] = c
    if claims["id_token"].get("nonce") != tokens["nonce"]:
        raise Failure(f"id_token of {user} does not carry the nonce")
    access = claims["access_token"]
    if access.get("email") != USERS[user]["email"]:
        raise Failure(f"access token of {user} has email {access.get('email')!r}")
    if sorted(access.get("groups", [])) != sorted(USERS[user]["groups"]):
        raise Failure(f"access token of {user} has groups {access.get('groups')!r}")
    return access


# --------------------------------------------------------------------------------------- commands


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(", ", ": ")) + "\n")
    sys.stdout.flush()


def handle_command(provider: Provider, line: str) -> dict:
    try:
        cmd = json.loads(line)
        if not isinstance(cmd, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return {"ok": False, "error": f"bad command line: {exc}"}
    try:
        if cmd.get("cmd") == "token":
            t = provider.token_flow(str(cmd.get("user")))
            return {
                "ok": True,
                "access_token": t["access_token"],
                "id_token": t["id_token"],
                "refresh_token": t.get("refresh_token"),
                "expires_in": t.get("expires_in"),
            }
        if cmd.get("cmd") == "login":
            url = str(cmd.get("authorize_url", ""))
            redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)).get("redirect_uri")
            if not redirect:
                raise Failure("authorize_url has no redirect_uri parameter")
            return {"ok": True, "location": provider.login(str(cmd.get("user")), url, redirect)}
        if cmd.get("cmd") == "stats":
            return provider.stats()
        if cmd.get("cmd") == "register_redirect_uri":
            return register_uris(provider.app, str(cmd.get("uri", "")), cmd.get("post_logout_uris") or [])
        return {
            "ok": False,
            "error": f"unknown cmd {cmd.get('cmd')!r} (known: token, login, stats, register_redirect_uri)",
        }
    except Failure as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # keep serving; report the error to the caller
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def register_uris(app, uri: str, post_logout: list) -> dict:
    """Adds a redirect URI (and post-logout redirect URIs) to the `gatehouse` client, for a relying party
    whose port is known only after the provider started (Gatehouse binds 127.0.0.1:0)."""
    if not uri.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")):
        raise Failure("only loopback http redirect URIs can be registered")
    with app.app_context():
        from canaille.app import models
        from canaille.backends import Backend

        with Backend.instance.session():
            client = Backend.instance.get(models.Client, client_id=CLIENT_ID)
            client.redirect_uris = list(dict.fromkeys(list(client.redirect_uris or []) + [uri]))
            client.post_logout_redirect_uris = list(
                dict.fromkeys(list(client.post_logout_redirect_uris or []) + [str(u) for u in post_logout])
            )
            Backend.instance.save(client)
            stored = Backend.instance.get(models.Client, client_id=CLIENT_ID)
            if uri not in stored.redirect_uris:
                raise Failure(f"redirect URI {uri} was not stored")
            return {"ok": True, "redirect_uris": list(stored.redirect_uris)}


def serve_loop(provider: Provider, proc: subprocess.Popen, until_signal: bool) -> None:
    buffer = b""
    stdin_fd = sys.stdin.fileno() if sys.stdin is not None else None
    while True:
        if proc.poll() is not None:
            raise Failure(f"Canaille exited unexpectedly with status {proc.returncode}")
        readable, _, _ = select.select([stdin_fd] if stdin_fd is not None else [], [], [], 0.5)
        if not readable:
            continue
        chunk = os.read(stdin_fd, 65536)
        if not chunk:
            if not until_signal:
                log("standard input closed; stopping")
                return
            log("standard input closed; serving on until a signal (--until-signal)")
            stdin_fd = None
            continue
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                emit(handle_command(provider, line.decode("utf-8", "replace")))


def serve(args) -> int:
    started = time.monotonic()
    try:
        import canaille  # noqa: F401
        import hypercorn  # noqa: F401
        import joserfc  # noqa: F401
        import requests
    except ImportError as exc:
        raise Failure(
            f"{exc} (interpreter {sys.executable}); install scripts/requirements-test.txt with pip"
        ) from exc

    tmp = tempfile.mkdtemp(prefix="gatehouse-canaille-")
    proc = None
    sock = None
    try:
        # Bind port 0 here and hand the bound socket to the server: no race for the port.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.set_inheritable(True)
        port = sock.getsockname()[1]
        issuer = f"http://127.0.0.1:{port}"
        log(f"temporary directory {tmp}, issuer {issuer}")

        config_path, _ = build_config(tmp, port, args.token_lifetime)
        t0 = time.monotonic()
        proc = start_server(tmp, config_path, sock)
        sock.close()  # the server owns it now
        sock = None
        app = make_app(config_path)  # imports Canaille here while the server starts
        discovery_url = f"{issuer}/.well-known/openid-configuration"
        discovery = wait_ready(requests, discovery_url, issuer, proc, t0, args.startup_timeout)
        log(f"Canaille answered discovery {time.monotonic() - t0:.2f} s after spawn")

        t0 = time.monotonic()
        client_secret = populate(app, args.redirect_uri, args.post_logout_redirect_uri, args.alg)
        log(f"users, groups and client created in {time.monotonic() - t0:.2f} s")

        counted = os.environ.get("GATEHOUSE_CANAILLE_RUNNER") != "canaille-run"
        token_log = os.path.join(tmp, TOKEN_LOG_NAME) if counted else None
        provider = Provider(requests, issuer, discovery, client_secret, args.redirect_uri[0], token_log)
        provider.app = app
        t0 = time.monotonic()
        tokens = {user: provider.token_flow(user) for user in USERS}
        for user, t in tokens.items():
            verify_tokens(requests, discovery["jwks_uri"], issuer, user, t, args.alg)
        log(f"tokens for {', '.join(tokens)} obtained and verified in {time.monotonic() - t0:.2f} s")

        emit(
            {
                "issuer": issuer,
                "jwks_uri": discovery["jwks_uri"],
                "client_id": CLIENT_ID,
                "client_secret": client_secret,
                "tokens": {u: t["access_token"] for u, t in tokens.items()},
                "id_tokens": {u: t["id_token"] for u, t in tokens.items()},
                "refresh_tokens": {u: t.get("refresh_token") for u, t in tokens.items()},
                "discovery_url": discovery_url,
                "redirect_uri": args.redirect_uri[0],
                "redirect_uris": args.redirect_uri,
                "post_logout_redirect_uris": args.post_logout_redirect_uri,
                "alg": args.alg,
                "token_lifetime": args.token_lifetime,
                "users": {
                    u: {"password": i["password"], "email": i["email"], "groups": i["groups"]}
                    for u, i in USERS.items()
                },
                "pid": os.getpid(),
            }
        )
        log(f"ready after {time.monotonic() - started:.2f} s; serving until stdin closes or SIGTERM")
        try:
            serve_loop(provider, proc, args.until_signal)
        except Stop:
            log("signal received; stopping")
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # let the cleanup finish
        if sock is not None:
            sock.close()
        stop_server(proc)
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Canaille OpenID provider for Gatehouse's tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="start the provider and print one JSON line")
    s.add_argument(
        "--redirect-uri",
        action="append",
        help=f"registered redirect URI (repeatable; the first one is used by the script's own logins; "
        f"default {DEFAULT_REDIRECT_URI})",
    )
    s.add_argument(
        "--post-logout-redirect-uri", action="append", help="registered post-logout redirect URI (repeatable)"
    )
    s.add_argument(
        "--alg",
        default="RS256",
        choices=["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA"],
        help="signing algorithm of the client's ID and access tokens (default RS256)",
    )
    s.add_argument("--token-lifetime", type=int, default=3600, help="access token lifetime in seconds")
    s.add_argument("--startup-timeout", type=float, default=60.0, help="readiness wait bound in seconds")
    s.add_argument(
        "--until-signal",
        action="store_true",
        help="do not stop when stdin closes; serve until SIGTERM/SIGINT/SIGHUP",
    )
    s.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (debugging)")
    args = parser.parse_args(argv)
    args.redirect_uri = args.redirect_uri or [DEFAULT_REDIRECT_URI]
    args.post_logout_redirect_uri = args.post_logout_redirect_uri or []

    def on_signal(signum, frame):
        raise Stop()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    try:
        return serve(args)
    except Stop:
        print(f"{PROG}: interrupted by a signal before it was ready", file=sys.stderr, flush=True)
        return 1
    except Failure as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"{PROG}: error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
