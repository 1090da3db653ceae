"""OIDC JWT bearer tokens, attacked first: every forgery and misuse is a 401 problem+json."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from keel.errors import Unauthorized
from keel.identity.oidc import JwksCache, OidcVerifier, principal_from_claims
from keel.settings import OidcClaimMapping
from keel.store.database import Database
from tests.api.conftest import Api, assert_problem, build_app, client_for, make_settings
from tests.identity.conftest import (
    CLIENT_ID,
    ISSUER,
    JwksServer,
    SigningKey,
    claims,
    hs256_with_public_key,
    unsigned_token,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def verifier(
    server: JwksServer, clock: Callable[[], float] = time.monotonic, **kw: Any
) -> OidcVerifier:
    return OidcVerifier(
        issuer=ISSUER,
        audiences=[CLIENT_ID],
        jwks=JwksCache(server.url, ttl=600, min_refresh_interval=30, clock=clock),
        token_use=("id", "access"),
        **kw,
    )


BadToken = Callable[[SigningKey, SigningKey], str]

BAD_TOKENS: dict[str, BadToken] = {
    "signed by the wrong key": lambda good, evil: evil.sign(claims()),
    "expired beyond leeway": lambda good, evil: good.sign(claims(exp=int(time.time()) - 120)),
    "not yet valid": lambda good, evil: good.sign(claims(nbf=int(time.time()) + 600)),
    "wrong audience": lambda good, evil: good.sign(claims(aud="someone-else")),
    "no audience": lambda good, evil: good.sign(claims(aud=None)),
    "wrong issuer": lambda good, evil: good.sign(claims(iss="https://evil.example/pool")),
    "alg none": lambda good, evil: unsigned_token(claims(), good.kid),
    "HS256 keyed with the public key": lambda good, evil: hs256_with_public_key(claims(), good),
    "missing tenant claim": lambda good, evil: good.sign(claims(**{"custom:tenant_id": None})),
    "oversized tenant claim": lambda good, evil: good.sign(
        claims(**{"custom:tenant_id": "t" * 65})
    ),
    "wrong token_use": lambda good, evil: good.sign(claims(token_use="refresh")),
    "no kid": lambda good, evil: good.sign(claims(), kid=None),
    "unknown kid": lambda good, evil: SigningKey("rsa-unknown", "RS256").sign(claims()),
    "not a jwt": lambda good, evil: "definitely-not-a-token",
    "tampered payload": lambda good, evil: _tamper(good.sign(claims())),
}


def _tamper(token: str) -> str:
    import base64
    import json

    header, payload, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["custom:tenant_id"] = "globex"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{sig}"


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_token_is_refused(
    case: str, jwks_server: JwksServer, rsa_key: SigningKey, attacker_key: SigningKey
) -> None:
    token = BAD_TOKENS[case](rsa_key, attacker_key)
    v = verifier(jwks_server)
    with pytest.raises(Unauthorized):
        await v.verify(token)
    await v.jwks.close()


async def test_good_rs256_and_es256_tokens_become_principals(
    jwks_server: JwksServer, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    v = verifier(jwks_server)
    for key in (rsa_key, ec_key):
        principal = await v.verify(key.sign(claims(**{"custom:project_id": "p-9182"})))
        assert principal.tenant_id == "acme" and principal.user_id == "anna-sub"
        assert principal.scopes == ("conversations:read", "conversations:write")
        assert principal.project_id == "p-9182"
    await v.jwks.close()


async def test_expiry_has_a_small_leeway(jwks_server: JwksServer, rsa_key: SigningKey) -> None:
    v = verifier(jwks_server, leeway=30)
    await v.verify(rsa_key.sign(claims(exp=int(time.time()) - 10)))
    with pytest.raises(Unauthorized, match="expired"):
        await v.verify(rsa_key.sign(claims(exp=int(time.time()) - 60)))
    await v.jwks.close()


async def test_an_es256_token_cannot_use_an_rsa_key(
    jwks_server: JwksServer, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    """A token claiming ES256 but naming the RSA key's kid is refused before verification."""
    forged = SigningKey("rsa-1", "ES256").sign(claims())
    v = verifier(jwks_server)
    with pytest.raises(Unauthorized, match="does not match"):
        await v.verify(forged)
    await v.jwks.close()


async def test_a_cognito_access_token_uses_client_id_and_prefixed_scopes(
    jwks_server: JwksServer, rsa_key: SigningKey
) -> None:
    mapping = OidcClaimMapping(scope_prefix="keel/")
    v = verifier(jwks_server, claims=mapping)
    token = rsa_key.sign(
        claims(
            aud=None,
            **{"cognito:groups": None},
            client_id=CLIENT_ID,
            token_use="access",
            scope="keel/conversations:read aws.cognito.signin.user.admin",
        )
    )
    principal = await v.verify(token)
    assert "conversations:read" in principal.scopes
    assert not principal.has_scope("conversations:write")
    await v.jwks.close()


def test_claim_mapping_is_configurable() -> None:
    mapping = OidcClaimMapping(
        tenant_id="org", user_id="email", session_id="sid", product_source="src", scopes=["perms"]
    )
    principal = principal_from_claims(
        {
            "org": "globex",
            "email": "g@x",
            "sid": "s1",
            "src": "mobile",
            "perms": ["admin"],
            "sub": "x",
        },
        mapping,
    )
    assert (principal.tenant_id, principal.user_id, principal.session_id) == ("globex", "g@x", "s1")
    assert principal.product_source == "mobile" and principal.scopes == ("admin",)


async def test_an_unknown_kid_refreshes_the_jwks_once_per_interval(
    jwks_server: JwksServer, rsa_key: SigningKey
) -> None:
    clock = Clock()
    v = verifier(jwks_server, clock=clock)
    await v.verify(rsa_key.sign(claims()))
    assert jwks_server.requests == 1
    # forged kids: at most one refetch per min_refresh_interval, whatever their number
    clock.now += 31
    for i in range(20):
        with pytest.raises(Unauthorized, match="unknown key"):
            await v.verify(rsa_key.sign(claims(), kid=f"forged-{i}"))
    assert jwks_server.requests == 2
    # a real rotation: picked up by the first unknown kid once the interval has passed
    rotated = SigningKey("rsa-2", "RS256")
    jwks_server.publish(rsa_key.jwk, rotated.jwk)
    with pytest.raises(Unauthorized, match="unknown key"):
        await v.verify(rotated.sign(claims()))
    clock.now += 31
    assert (await v.verify(rotated.sign(claims()))).tenant_id == "acme"
    assert jwks_server.requests == 3
    await v.jwks.close()


async def test_the_jwks_is_refetched_after_its_ttl_and_survives_an_outage(
    jwks_server: JwksServer, rsa_key: SigningKey
) -> None:
    clock = Clock()
    v = verifier(jwks_server, clock=clock)
    await v.verify(rsa_key.sign(claims()))
    clock.now += 599
    await v.verify(rsa_key.sign(claims()))
    assert jwks_server.requests == 1
    jwks_server.status = 503
    clock.now += 2
    await v.verify(rsa_key.sign(claims()))  # stale keys keep working through the outage
    assert jwks_server.requests == 2
    jwks_server.status = 200
    clock.now += 31
    await v.verify(rsa_key.sign(claims()))
    assert jwks_server.requests == 3
    await v.jwks.close()


def _oidc_app(db: Database, tmp_path: Any, jwks_server: JwksServer) -> Any:
    settings = make_settings(
        tmp_path,
        oidc_issuer=ISSUER,
        oidc_jwks_url=jwks_server.url,
        oidc_audiences=[CLIENT_ID],
        oidc_token_use=["id", "access"],
    )
    return build_app(db, settings)


@pytest.fixture
async def oidc_api(db: Database, tmp_path: Any, jwks_server: JwksServer) -> AsyncIterator[Api]:
    app = _oidc_app(db, tmp_path, jwks_server)
    async with client_for(app) as client:
        yield Api(app, client, db)


@pytest.fixture
async def oidc_sqlite_api(
    sqlite_db: Database, tmp_path: Any, jwks_server: JwksServer
) -> AsyncIterator[Api]:
    """Token rejection never reaches the database; one backend is enough."""
    app = _oidc_app(sqlite_db, tmp_path, jwks_server)
    async with client_for(app) as client:
        yield Api(app, client, sqlite_db)


async def test_a_good_token_works_end_to_end_and_creates_its_tenant(
    oidc_api: Api, rsa_key: SigningKey
) -> None:
    headers = {"Authorization": f"Bearer {rsa_key.sign(claims(**{'custom:tenant_id': 'newco'}))}"}
    created = await oidc_api.client.post(
        "/v1/conversations", json={"agent": "rune"}, headers=headers
    )
    assert created.status_code == 201, created.text
    listing = await oidc_api.client.get("/v1/conversations", headers=headers)
    assert [c["id"] for c in listing.json()["data"]] == [created.json()["id"]]
    other_tenant = {"Authorization": f"Bearer {rsa_key.sign(claims())}"}
    got = await oidc_api.client.get(
        f"/v1/conversations/{created.json()['id']}", headers=other_tenant
    )
    assert_problem(got, 404)


async def test_token_scopes_are_enforced(oidc_api: Api, rsa_key: SigningKey) -> None:
    token = rsa_key.sign(claims(**{"cognito:groups": ["conversations:read"]}))
    response = await oidc_api.client.post(
        "/v1/conversations", json={"agent": "rune"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_token_is_a_401_problem_at_the_api(
    oidc_sqlite_api: Api, case: str, rsa_key: SigningKey, attacker_key: SigningKey
) -> None:
    token = BAD_TOKENS[case](rsa_key, attacker_key)
    response = await oidc_sqlite_api.client.get(
        "/v1/conversations", headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == 'Bearer realm="keel", error="invalid_token"'
