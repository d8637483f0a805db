#!/usr/bin/env python3
"""Keys and tokens for Benchmarks/run.sh, minted with joserfc (an independent JOSE implementation).

    python3 Benchmarks/tokens.py prepare --dir DIR --miss-count N --lifetime SECONDS

writes into DIR:
    jwks-rs.json, jwks-es.json  the public RS256 / ES256 key (one key per provider, as a JWKS)
    rs.token, es.token          one valid token each (the repeated-token scenarios)
    miss.tokens                 N distinct valid RS256 tokens, one per line (distinct jti), for the cache-miss run

Keys come from scripts/jwt/mint.py (`keys --out DIR`) when that file exists, and the two single tokens from its
`sign` command, so the benchmark exercises the project's own minting tool. Without it (or if it fails) the keys
are generated here. The N cache-miss tokens are always signed in this one process with joserfc directly: one
Python start-up per token would cost more than the whole benchmark.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import uuid

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

ISSUER_RS = "https://rs.bench.gatehouse.invalid"
ISSUER_ES = "https://es.bench.gatehouse.invalid"
AUDIENCE = "gatehouse-bench"

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINT = os.path.join(REPO, "scripts", "jwt", "mint.py")


def log(message):
    print(f"tokens.py: {message}", file=sys.stderr, flush=True)


def claims(issuer, lifetime, jti):
    now = int(time.time())
    return {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "bench-user",
        "email": "bench@example.com",
        "groups": ["bench"],
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + lifetime,
        "jti": jti,
    }


def key_list(document):
    """The private JWKs of a key file: a JWKS ({"keys": [...]}), a list, or a mapping kid -> JWK."""
    if isinstance(document, dict) and isinstance(document.get("keys"), list):
        return document["keys"]
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        out = []
        for kid, jwk in document.items():
            if isinstance(jwk, dict):
                out.append({"kid": kid, **jwk})
        return out
    raise ValueError("unrecognised key file")


def pick(keys, alg, kty, crv=None):
    for k in keys:
        if k.get("alg") == alg:
            return k
    for k in keys:  # keys without alg: match on type (and curve)
        if k.get("kty") == kty and (crv is None or k.get("crv") == crv) and "alg" not in k:
            return k
    return None


def keys_from_mint(work):
    """(rs_private_jwk, es_private_jwk, via) from scripts/jwt/mint.py, or None."""
    if not os.path.isfile(MINT):
        return None
    out = os.path.join(work, "mint-keys")
    try:
        subprocess.run(
            [sys.executable, MINT, "keys", "--out", out],
            check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        with open(os.path.join(out, "private.json")) as f:
            keys = key_list(json.load(f))
    except Exception as exc:  # noqa: BLE001 - fall back to our own keys, say why
        log(f"scripts/jwt/mint.py keys failed ({exc}); generating keys here")
        return None
    rs, es = pick(keys, "RS256", "RSA"), pick(keys, "ES256", "EC", "P-256")
    if rs is None or es is None:
        log("scripts/jwt/mint.py keys gave no RS256 or no ES256 key; generating keys here")
        return None
    return rs, es, out


def own_keys():
    rs = RSAKey.generate_key(2048, parameters={"kid": "bench-rs256", "alg": "RS256", "use": "sig"}, private=True)
    es = ECKey.generate_key("P-256", parameters={"kid": "bench-es256", "alg": "ES256", "use": "sig"}, private=True)
    return rs.as_dict(private=True), es.as_dict(private=True)


def public_jwks(private_jwk, alg):
    key = RSAKey.import_key(private_jwk) if private_jwk["kty"] == "RSA" else ECKey.import_key(private_jwk)
    public = key.as_dict(private=False)
    public.update({"kid": private_jwk["kid"], "alg": alg, "use": "sig"})
    return {"keys": [public]}


def sign_with_mint(key_file, kid, alg, claim_set):
    result = subprocess.run(
        [sys.executable, MINT, "sign", "--keys", key_file, "--kid", kid, "--alg", alg, "--claims",
         json.dumps(claim_set)],
        check=True, timeout=60, capture_output=True, text=True,
    )
    token = result.stdout.strip().splitlines()[-1].strip()
    if token.count(".") != 2:
        raise ValueError(f"unexpected output from mint.py sign: {result.stdout[:200]!r}")
    return token


def sign_here(private_jwk, alg, claim_set):
    key = RSAKey.import_key(private_jwk) if private_jwk["kty"] == "RSA" else ECKey.import_key(private_jwk)
    return jwt.encode({"alg": alg, "kid": private_jwk["kid"], "typ": "JWT"}, claim_set, key, algorithms=[alg])


def prepare(args):
    os.makedirs(args.dir, exist_ok=True)
    minted = keys_from_mint(args.dir)
    if minted:
        rs, es, mint_dir = minted
        via = "scripts/jwt/mint.py"
    else:
        rs, es = own_keys()
        mint_dir = None
        via = "Benchmarks/tokens.py (joserfc)"
    for name, jwk, alg in (("jwks-rs.json", rs, "RS256"), ("jwks-es.json", es, "ES256")):
        with open(os.path.join(args.dir, name), "w") as f:
            json.dump(public_jwks(jwk, alg), f)

    singles = {}
    for name, jwk, alg, issuer in (("rs", rs, "RS256", ISSUER_RS), ("es", es, "ES256", ISSUER_ES)):
        claim_set = claims(issuer, args.lifetime, f"bench-{name}")
        token = None
        if mint_dir:
            try:
                token = sign_with_mint(os.path.join(mint_dir, "private.json"), jwk["kid"], alg, claim_set)
            except Exception as exc:  # noqa: BLE001
                log(f"scripts/jwt/mint.py sign failed ({exc}); signing here")
        singles[name] = token or sign_here(jwk, alg, claim_set)
        with open(os.path.join(args.dir, f"{name}.token"), "w") as f:
            f.write(singles[name] + "\n")

    # The cache-miss list: one process, one imported key, only jti (and so the signature) differs.
    started = time.monotonic()
    key = RSAKey.import_key(rs)
    header = {"alg": "RS256", "kid": rs["kid"], "typ": "JWT"}
    path = os.path.join(args.dir, "miss.tokens")
    with open(path, "w") as f:
        for i in range(args.miss_count):
            f.write(jwt.encode(header, claims(ISSUER_RS, args.lifetime, f"miss-{i}-{uuid.uuid4().hex}"), key,
                               algorithms=["RS256"]))
            f.write("\n")
    elapsed = time.monotonic() - started
    log(f"keys via {via}; {args.miss_count} cache-miss tokens in {elapsed:.1f} s "
        f"({args.miss_count / max(elapsed, 1e-9):.0f}/s)")
    with open(os.path.join(args.dir, "keys-via.txt"), "w") as f:
        f.write(via + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--dir", required=True)
    p.add_argument("--miss-count", type=int, default=20000)
    p.add_argument("--lifetime", type=int, default=4 * 3600, help="token lifetime in seconds")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args)


if __name__ == "__main__":
    main()
