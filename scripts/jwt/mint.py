#!/usr/bin/env python3
"""Mint JSON Web Keys and signed JWTs with joserfc, an implementation independent of Gatehouse's.

Usage:
    python3 scripts/jwt/mint.py keys --out DIR [--kid-prefix PREFIX]
        Writes DIR/private.json (a JWKS of private keys) and DIR/jwks.json (the public JWKS) with one
        fresh key per algorithm, each with "kid", "alg" and "use": "sig":
            RS256 (RSA 2048)   kid PREFIX+"rs256"
            PS256 (RSA 2048)   kid PREFIX+"ps256"
            ES256 (P-256)      kid PREFIX+"es256"
            ES384 (P-384)      kid PREFIX+"es384"
            ES512 (P-521)      kid PREFIX+"es512"
            EdDSA (Ed25519)    kid PREFIX+"eddsa"
        Prints the public JWKS on stdout.

    python3 scripts/jwt/mint.py sign --keys DIR/private.json --kid KID --claims JSON
        [--alg ALG] [--header JSON]
        Prints one compact JWS. The protected header is {"alg": ALG, "kid": KID, "typ": "JWT"} with the
        --header object merged over it (a null value removes that member, e.g. {"kid": null} or
        {"typ": null}; any other member is copied as given, e.g. jku, x5u, crit, typ, or a different kid).
        ALG defaults to the key's "alg"; another ALG of the same key type is allowed on purpose (e.g. RS512
        or PS256 with the rs256 key, to test a verifier that pins the JWK's alg); an ALG of another key
        type fails. The claims are used exactly as given (no exp/iat added).

    python3 scripts/jwt/mint.py sign-hs --secret-file FILE --claims JSON [--alg HS256|HS384|HS512]
        [--kid KID] [--header JSON]
        Same, MACed with the exact bytes of FILE (a trailing newline is part of the secret).

JSON arguments may also be given as @PATH to read them from a file. Output goes to stdout and ends with a
newline; errors go to stderr with exit status 2 (usage) or 1 (anything else).

The header is not checked against joserfc's header policy on purpose, so that tests can mint tokens that
a verifier must refuse (unknown crit members, odd typ, jku/x5u); the signature itself is computed by
joserfc's algorithm implementations.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys

KEY_SPECS = [
    # (alg, key type, parameter for generate_key)
    ("RS256", "RSA", 2048),
    ("PS256", "RSA", 2048),
    ("ES256", "EC", "P-256"),
    ("ES384", "EC", "P-384"),
    ("ES512", "EC", "P-521"),
    ("EdDSA", "OKP", "Ed25519"),
]


def fail(message: str, status: int = 1):
    print(f"mint.py: error: {message}", file=sys.stderr)
    sys.exit(status)


def load_json_arg(value: str, what: str):
    try:
        if value.startswith("@"):
            with open(value[1:], encoding="utf-8") as fd:
                value = fd.read()
        obj = json.loads(value)
    except (OSError, ValueError) as exc:
        fail(f"{what}: {exc}", 2)
    if not isinstance(obj, dict):
        fail(f"{what} must be a JSON object", 2)
    return obj


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_compact(header: dict, claims: dict, key, alg_name: str) -> str:
    """BASE64URL(header) '.' BASE64URL(payload) '.' BASE64URL(signature), signed by joserfc's algorithm."""
    from joserfc.jws import JWSRegistry

    registry = JWSRegistry(algorithms=[alg_name])
    try:
        alg = registry.algorithms[alg_name]
    except KeyError:
        fail(f"joserfc does not know the algorithm {alg_name!r}", 2)
    alg.check_key(key)
    signing_input = (b64url(compact_json(header)) + "." + b64url(compact_json(claims))).encode("ascii")
    return signing_input.decode("ascii") + "." + b64url(alg.sign(signing_input, key))


def build_header(alg: str, kid: str | None, extra: dict) -> dict:
    header = {"alg": alg}
    if kid is not None:
        header["kid"] = kid
    header["typ"] = "JWT"
    for name, value in extra.items():
        if name == "alg" and value != alg:
            fail(f'--header sets alg {value!r} but the signature uses {alg!r}: use --alg', 2)
        if value is None:
            header.pop(name, None)
        else:
            header[name] = value
    return header


def cmd_keys(args) -> None:
    from joserfc import jwk

    os.makedirs(args.out, exist_ok=True)
    private, public = [], []
    for alg, kty, param in KEY_SPECS:
        kid = f"{args.kid_prefix}{alg.lower()}"
        key = jwk.generate_key(kty, param, parameters={"kid": kid, "alg": alg, "use": "sig"})
        private.append(key.as_dict(private=True))
        public.append(key.as_dict(private=False))
    kids = [k["kid"] for k in private]
    if len(set(kids)) != len(kids):
        fail("duplicate kid")
    for name, keys in (("private.json", private), ("jwks.json", public)):
        path = os.path.join(args.out, name)
        with open(path, "w", encoding="utf-8") as fd:
            json.dump({"keys": keys}, fd, indent=2)
            fd.write("\n")
        if name == "private.json":
            os.chmod(path, 0o600)
    print(json.dumps({"keys": public}))


def cmd_sign(args) -> None:
    from joserfc import jwk

    try:
        with open(args.keys, encoding="utf-8") as fd:
            key_dicts = json.load(fd)["keys"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"cannot read a JWKS from {args.keys}: {exc}")
    key_dict = next((k for k in key_dicts if isinstance(k, dict) and k.get("kid") == args.kid), None)
    if key_dict is None:
        fail(f"no key with kid {args.kid!r} in {args.keys} (have: {[k.get('kid') for k in key_dicts]})", 2)
    alg = args.alg or key_dict.get("alg")
    if not alg:
        fail(f"key {args.kid!r} has no alg: give --alg", 2)
    if key_dict.get("alg") not in (None, alg):
        # joserfc refuses to use a key for another algorithm than its "alg"; a test that wants exactly
        # that (a token whose alg differs from the published JWK's) gets the key without its "alg".
        key_dict = {k: v for k, v in key_dict.items() if k != "alg"}
    key = jwk.import_key(key_dict)
    if not key.is_private:
        fail(f"key {args.kid!r} in {args.keys} is not a private key", 2)
    claims = load_json_arg(args.claims, "--claims")
    extra = load_json_arg(args.header, "--header") if args.header else {}
    print(sign_compact(build_header(alg, args.kid, extra), claims, key, alg))


def cmd_sign_hs(args) -> None:
    from joserfc.jwk import OctKey

    try:
        with open(args.secret_file, "rb") as fd:
            secret = fd.read()
    except OSError as exc:
        fail(f"cannot read {args.secret_file}: {exc}")
    if not secret:
        fail(f"{args.secret_file} is empty")
    key = OctKey.import_key(secret)
    claims = load_json_arg(args.claims, "--claims")
    extra = load_json_arg(args.header, "--header") if args.header else {}
    print(sign_compact(build_header(args.alg, args.kid, extra), claims, key, args.alg))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Mint JWKs and JWTs with joserfc for Gatehouse's tests.")
    sub = parser.add_subparsers(dest="command", required=True)

    k = sub.add_parser("keys", help="write DIR/private.json and DIR/jwks.json")
    k.add_argument("--out", required=True, help="directory to write (created if missing)")
    k.add_argument("--kid-prefix", default="", help='prefix of every kid (kids are PREFIX+"rs256" etc.)')
    k.set_defaults(func=cmd_keys)

    s = sub.add_parser("sign", help="print a compact JWS signed with a private JWK")
    s.add_argument("--keys", required=True, help="private JWKS written by `keys`")
    s.add_argument("--kid", required=True, help="kid of the signing key (also put in the header)")
    s.add_argument("--alg", help="signing algorithm (default: the key's alg)")
    s.add_argument("--claims", required=True, help="JSON object (or @file) used as the payload")
    s.add_argument("--header", help="JSON object (or @file) merged into the protected header")
    s.set_defaults(func=cmd_sign)

    h = sub.add_parser("sign-hs", help="print a compact JWS MACed with a shared secret")
    h.add_argument("--secret-file", required=True, help="file whose exact bytes are the secret")
    h.add_argument("--alg", default="HS256", choices=["HS256", "HS384", "HS512"])
    h.add_argument("--kid", help="kid to put in the header (none by default)")
    h.add_argument("--claims", required=True, help="JSON object (or @file) used as the payload")
    h.add_argument("--header", help="JSON object (or @file) merged into the protected header")
    h.set_defaults(func=cmd_sign_hs)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SystemExit:
        raise
    except Exception as exc:  # a clear one-line error rather than a traceback
        fail(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
