"""A real JWKS endpoint (http.server in a thread) and helpers to mint tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://cognito-idp.eu-north-1.amazonaws.com/eu-north-1_TestPool"
CLIENT_ID = "keel-test-client"


class JwksServer:
    """Serves `document` at /.well-known/jwks.json; `status` forces an error answer."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.status = 200
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"

    def publish(self, *keys: dict[str, Any]) -> None:
        self.document = {"keys": list(keys)}

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


class SigningKey:
    def __init__(self, kid: str, alg: str) -> None:
        self.kid = kid
        self.alg = alg
        if alg == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk: dict[str, Any] = {**jwk, "kid": kid, "use": "sig", "alg": alg}
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, **header}
        if headers["kid"] is None:
            del headers["kid"]
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=headers)


def claims(**overrides: Any) -> dict[str, Any]:
    """Cognito ID-token-shaped claims for tenant acme, user anna."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "anna-sub",
        "aud": CLIENT_ID,
        "token_use": "id",
        "iat": now,
        "exp": now + 600,
        "custom:tenant_id": "acme",
        "cognito:groups": ["conversations:read", "conversations:write"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned_token(payload: dict[str, Any], kid: str) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."


def hs256_with_public_key(payload: dict[str, Any], key: SigningKey) -> str:
    """The algorithm-confusion attack: HMAC keyed with the server's *public* key."""
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    mac = hmac.new(key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey("rsa-1", "RS256")


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return SigningKey("ec-1", "ES256")


@pytest.fixture(scope="session")
def attacker_key() -> SigningKey:
    return SigningKey("rsa-1", "RS256")  # same kid as the real key, different key material


@pytest.fixture
def jwks_server(rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.publish(rsa_key.jwk, ec_key.jwk)
    yield server
    server.stop()
