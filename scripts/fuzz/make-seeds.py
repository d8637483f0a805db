#!/usr/bin/env python3
"""Writes the committed seed corpus of every fuzz target (Tests/GatehouseFuzzTests/corpus/<target>/).

Seeds are named after what they show; libFuzzer's own finds go in the same folders as `find-<sha1>` (kept: they
are regression tests). Run again after changing a seed here; existing finds are left alone.
"""
import base64, glob, hashlib, hmac, json, os, sys

root = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "GatehouseFuzzTests", "corpus")


def write(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


requests = {
    "get": "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "get-query-fields": "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Empty:\r\n\r\n",
    "post-length": "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    "post-chunked": "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "chunk-extension": "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n",
    "chunk-trailers": "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nT: v\r\n\r\n",
    "chunk-size-overflow": "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\na\r\n0\r\n\r\n",
    "http10": "GET / HTTP/1.0\r\n\r\n",
    "http10-keepalive": "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "asterisk": "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "absolute-form": "GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    "absolute-other-host": "GET http://b/admin HTTP/1.1\r\nHost: a\r\n\r\n",
    "cookies": "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; b=2\r\nUser-Agent: x \t\r\n\r\n",
    "obs-text": "GET / HTTP/1.1\r\nHost: a\r\nX: caf\u00e9\r\n\r\n",
    "space-before-colon": "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "obs-fold": "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n folded\r\n\r\n",
    "bare-lf": "GET / HTTP/1.1\nHost: a\n\n",
    "bare-cr": "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
    "nul": "GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n",
    "double-space": "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    "http2-version": "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "cl-and-te": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate-cl": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "cl-list": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
    "te-chunked-identity": "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "te-http10": "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-hosts": "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "expect": "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    "leading-crlf": "\r\n" * 10 + "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "pipelined": "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    "traversal": "GET /public/%2e%2e/admin HTTP/1.1\r\nHost: a\r\n\r\n",
    "double-encoded": "GET /public/%252e%252e/admin HTTP/1.1\r\nHost: a\r\n\r\n",
    "long-line": "GET /" + "a" * 5000 + " HTTP/1.1\r\nHost: a\r\n\r\n",
    "connection-close": "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
    "del-in-method": "G\u007fT / HTTP/1.1\r\n\r\n",
}
for name, text in requests.items():
    write("request-head", name, text)
    write("validation", name, text)

responses = {
    "ok-length": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\r\n\r\nok",
    "not-found": "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\n\r\n",
    "no-content-10": "HTTP/1.0 204 \r\nServer: s\r\n\r\n",
    "chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "until-close": "HTTP/1.1 200 OK\r\n\r\nbody until close",
    "interim": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "not-modified": "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    "switching": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "cl-and-te": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate-cl": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    "te-gzip": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "keep-alive-10": "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
    "obs-fold": "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "bare-lf": "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
}
for name, text in responses.items():
    write("response-head", name, text)

bodies = {
    "one": "3\r\nabc\r\n0\r\n\r\n",
    "two": "1\r\na\r\n2\r\nbc\r\n0\r\n\r\n",
    "extension": "3;name=value\r\nabc\r\n0\r\n\r\n",
    "trailers": "3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n",
    "upper-hex": "A\r\n0123456789\r\n0\r\n\r\n",
    "overflow": "FFFFFFFFFFFFFFFF\r\nabc\r\n",
    "missing-crlf": "3\r\nabcd\r\n0\r\n\r\n",
    "empty": "0\r\n\r\n",
    "bare-lf": "3\nabc\n0\n\n",
}
for name, text in bodies.items():
    write("chunked", name, text)

targets = [
    "/", "/a/b/c", "/a/./b/../c", "/public/%2e%2e/admin", "/public/%252e%252e/admin", "/public/%252e%252e%252fadmin",
    "/a%2Fb", "/a%5Cb", "/a\\b", "/..;/admin", "/a;x=1/b", "/%7euser", "/a?b=c&d=%2e%2e", "//double//slash",
    "/a/%2E%2E/%2e./", "/a%00b", "/caf%C3%A9", "/x#frag", "/%zz", "/a/b/../../../..", "/%2525", "*",
]
for i, t in enumerate(targets):
    write("target", f"t{i:02d}", t)

jsons = [
    '{"sub":"alice","groups":["a","b"],"exp":1900000000}', '[1,2.5,-0,1e10,true,false,null]',
    '{"a":{"b":{"c":[{"d":"\\u00e9\\n\\""}]}}}', '"\\ud83d\\ude00"', '"\\ud800"', '{"a":1,"a":2}', '1e999', '[[[[[[[[]]]]]]]]',
    ' { "x" : "y" } ', '{"n":123456789012345678901234567890}',
]
for i, j in enumerate(jsons):
    write("json", f"j{i:02d}", j)

secret = hashlib.sha256(b"gatehouse-fuzz-hmac").digest()


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(header, payload):
    inp = b64(header.encode()) + "." + b64(payload.encode())
    return inp + "." + b64(hmac.new(secret, inp.encode(), hashlib.sha256).digest())


header = '{"alg":"HS256","typ":"JWT"}'
payloads = {
    "alice": {"iss": "https://hs.example", "aud": "api", "sub": "alice", "exp": 1900000000, "email": "a@example.com",
              "groups": ["users", "users,admins", " admins", "ops"]},
    "no-sub": {"iss": "https://hs.example", "aud": "api", "exp": 1900000000},
    "empty-sub": {"iss": "https://hs.example", "aud": "api", "sub": "", "exp": 1900000000},
    "machine": {"iss": "https://m2m.example", "aud": ["api", "x"], "client_id": "svc", "exp": 1900000000, "scope": "a b"},
    "expired": {"iss": "https://hs.example", "aud": "api", "sub": "alice", "exp": 1700000000},
}
for name, p in payloads.items():
    text = json.dumps(p, separators=(",", ":"))
    write("jwt", "raw-" + name, b"\x00" + hs256(header, text).encode())
    write("jwt", "payload-" + name, b"\x01" + text.encode())
    write("jwt", "header-" + name, b"\x02" + header.encode() + b"\x00" + text.encode())
for name, h in {"none": '{"alg":"none"}', "crit": '{"alg":"HS256","crit":["exp"]}', "b64": '{"alg":"HS256","b64":false}',
                "kid": '{"alg":"HS256","kid":"k1"}', "es256": '{"alg":"ES256","kid":"k1"}'}.items():
    write("jwt", "header-" + name, b"\x02" + h.encode() + b"\x00" + json.dumps(payloads["alice"]).encode())

cookies = {
    "plain": "a=1; b=2",
    "own": "_gatehouse=abc; other=1; _gatehouse_1=def; _gatehouse_tx_ab=x",
    "quoted": 'a="x y"; _gatehouse="z"',
    "spaces": "  a = 1 ;; ; _gatehouse_0 =2;b",
    "record": '{"v":1,"p":"hs","s":"id","c":{"sub":"alice"},"i":1,"e":2,"a":3,"at":"t"}',
    "login": '{"s":"st","n":"no","v":"ve","r":"/","p":"hs","t":1800000000}',
    "base64": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
}
for name, c in cookies.items():
    write("cookie", name, c)

config_root = os.path.join(os.path.dirname(__file__), "..", "..", "Config")
for path in sorted(glob.glob(os.path.join(config_root, "**", "*.yaml"), recursive=True)):
    write("config", os.path.relpath(path, config_root).replace("/", "-"), open(path, "rb").read())
write("config", "aliases", "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\nd: [*c, *c, *c]\n")
write("config", "bad-indent", "server:\n  listen: 127.0.0.1:0\n routes: []\n")
write("config", "unknown-key", "server:\n  listen: 127.0.0.1:0\n  bogus: 1\nroutes: []\n")
print("seeds written under", os.path.normpath(root))
