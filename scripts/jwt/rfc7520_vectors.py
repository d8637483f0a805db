#!/usr/bin/env python3
"""Extracts the RFC 7520 (JOSE Cookbook) compact JWS examples 4.1-4.4 and their keys from the test data that
the jwcrypto package ships (jwcrypto/tests-cookbook.py), and writes them as a JSON fixture for Gatehouse's
verifier tests.

    pip install jwcrypto==1.6.1
    python3 scripts/jwt/rfc7520_vectors.py > Tests/GatehouseAuthTests/Fixtures/rfc7520.json

The output is committed; the tests never need the network or jwcrypto.
"""
import importlib.util
import json
import os
import sys

import jwcrypto

path = os.path.join(os.path.dirname(jwcrypto.__file__), "tests-cookbook.py")
spec = importlib.util.spec_from_file_location("cookbook", path)
cookbook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cookbook)


def public(jwk):
    return {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}


vectors = [
    {"section": "4.1", "alg": "RS256", "jwk": public(cookbook.RSA_Public_Key_3_3), "jws": cookbook.JWS_compact_4_1_3},
    {"section": "4.2", "alg": "PS384", "jwk": public(cookbook.RSA_Public_Key_3_3), "jws": cookbook.JWS_compact_4_2_3},
    {"section": "4.3", "alg": "ES512", "jwk": public(cookbook.EC_Public_Key_3_1), "jws": cookbook.JWS_compact_4_3_3},
    {"section": "4.4", "alg": "HS256", "secret_jwk": cookbook.Symmetric_Key_MAC_3_5, "jws": cookbook.JWS_compact_4_4_3},
]
json.dump({"source": "RFC 7520 via jwcrypto %s tests-cookbook.py" % jwcrypto.__version__ if hasattr(jwcrypto, "__version__") else "RFC 7520 via jwcrypto tests-cookbook.py", "vectors": vectors}, sys.stdout, indent=1)
sys.stdout.write("\n")
