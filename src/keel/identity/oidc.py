"""OIDC JWT bearer tokens: verified against the issuer's JWKS, mapped to a `Principal`.

The reference is a Cognito user pool (`iss` = https://cognito-idp.<region>.amazonaws.com/<pool>,
ID tokens carry `aud`, access tokens carry `client_id` and `token_use`). What is refused:

- any `alg` outside the configured asymmetric set (RS256, ES256): `none`, and HS256 signed
  with the public key (algorithm confusion), never reach signature verification;
- a key whose type does not match the token's `alg`;
- a bad signature, a wrong `iss`, an audience/`client_id` not configured, a `token_use` not
  accepted, an expired or not-yet-valid token (with a small leeway), a missing tenant claim.

The JWKS is cached for a TTL and refetched early when a token names an unknown `kid`
(a key rotation), at most once per `min_refresh_interval`, so forged `kid`s cannot turn
the API into a JWKS-fetching amplifier.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import jwt

from keel.errors import Unauthorized
from keel.identity.principal import Principal
from keel.settings import OidcClaimMapping, Settings

_KEY_TYPE_FOR_ALG = {"RS256": "RSA", "ES256": "EC"}


class JwksCache:
    """Signing keys by `kid`, fetched over HTTP(S) with httpx.

    `client` is injectable (tests pass one bound to a local server); the cache never
    closes a client it was given.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 3600.0,
        min_refresh_interval: float = 30.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._ttl = ttl
        self._min_refresh = min_refresh_interval
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._timeout = timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock: asyncio.Lock | None = None
        self.fetches = 0
        """How many times the JWKS was requested (observable in tests and metrics)."""

    async def get_key(self, kid: str) -> jwt.PyJWK:
        now = self._clock()
        if self._fresh(now) and kid in self._keys:
            return self._keys[kid]
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = self._clock()
            stale = not self._fresh(now)
            may_refetch = (
                self._attempted_at is None or now - self._attempted_at >= self._min_refresh
            )
            if (stale or kid not in self._keys) and may_refetch:
                await self._refresh(now)
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("token signed by an unknown key")
        return key

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self._ttl

    async def _refresh(self, now: float) -> None:
        self._attempted_at = now
        self.fetches += 1
        try:
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=self._timeout)
            response = await self._client.get(self.url, timeout=self._timeout)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError):
            # Keep serving the keys we have (an IdP outage must not log everyone out);
            # a token naming a key we never saw still fails below.
            return
        self._keys = _parse_jwks(document)
        self._fetched_at = now

    async def close(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None


def _parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return keys
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig" or entry.get("kty") not in ("RSA", "EC"):
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue
    return keys


class OidcVerifier:
    """Turns a JWT bearer token into a `Principal`, or raises `Unauthorized`."""

    def __init__(
        self,
        *,
        issuer: str,
        audiences: list[str],
        jwks: JwksCache,
        algorithms: tuple[str, ...] = ("RS256", "ES256"),
        leeway: float = 30,
        token_use: tuple[str, ...] = (),
        claims: OidcClaimMapping | None = None,
    ) -> None:
        unsupported = set(algorithms) - set(_KEY_TYPE_FOR_ALG)
        if unsupported:
            raise ValueError(f"unsupported JWT algorithms: {sorted(unsupported)}")
        if not audiences:
            raise ValueError("at least one audience is required")
        self.issuer = issuer
        self.audiences = frozenset(audiences)
        self.jwks = jwks
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.token_use = frozenset(token_use)
        self.claims = claims or OidcClaimMapping()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, client: httpx.AsyncClient | None = None
    ) -> OidcVerifier | None:
        """The verifier `settings` describe, or None when OIDC is not configured."""
        jwks_url = settings.resolved_oidc_jwks_url
        if settings.oidc_issuer is None or jwks_url is None:
            return None
        return cls(
            issuer=settings.oidc_issuer,
            audiences=settings.oidc_audiences,
            jwks=JwksCache(
                jwks_url,
                ttl=settings.oidc_jwks_ttl_seconds,
                min_refresh_interval=settings.oidc_jwks_min_refresh_seconds,
                client=client,
            ),
            algorithms=tuple(settings.oidc_algorithms),
            leeway=settings.oidc_leeway_seconds,
            token_use=tuple(settings.oidc_token_use),
            claims=settings.oidc_claims,
        )

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed bearer token") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise Unauthorized(f"token algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token has no key id (kid)")
        key = await self.jwks.get_key(kid)
        if key.key_type != _KEY_TYPE_FOR_ALG[alg]:
            raise Unauthorized("token algorithm does not match its signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                issuer=self.issuer,
                leeway=self.leeway,
                options={"verify_aud": False, "require": ["exp", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token has expired") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("token issuer is not accepted") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        self._check_audience(claims)
        if self.token_use and claims.get("token_use") not in self.token_use:
            raise Unauthorized("token_use is not accepted")
        return principal_from_claims(claims, self.claims)

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        aud = claims.get("aud")
        candidates = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
        client_id = claims.get("client_id")
        if isinstance(client_id, str):
            candidates.append(client_id)
        if not any(isinstance(c, str) and c in self.audiences for c in candidates):
            raise Unauthorized("token audience is not accepted")


def _claim_str(claims: Mapping[str, Any], name: str | None, limit: int) -> str | None:
    if name is None:
        return None
    value = claims.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > limit:
        return None
    return value


def principal_from_claims(claims: Mapping[str, Any], mapping: OidcClaimMapping) -> Principal:
    """The `Principal` a verified token's claims describe, per `mapping`."""
    tenant_id = _claim_str(claims, mapping.tenant_id, 64)
    if tenant_id is None:
        raise Unauthorized(f"token has no usable tenant claim {mapping.tenant_id!r}")
    user_id = _claim_str(claims, mapping.user_id, 200)
    if user_id is None:
        raise Unauthorized(f"token has no usable user claim {mapping.user_id!r}")
    scopes: list[str] = []
    for name in mapping.scopes:
        value = claims.get(name)
        if isinstance(value, str):
            scopes.extend(value.split())
        elif isinstance(value, list):
            scopes.extend(v for v in value if isinstance(v, str))
    if mapping.scope_prefix:
        scopes = [s.removeprefix(mapping.scope_prefix) for s in scopes]
    return Principal(
        tenant_id=tenant_id,
        user_id=user_id,
        scopes=tuple(dict.fromkeys(scopes)),
        project_id=_claim_str(claims, mapping.project_id, 200),
        product_source=_claim_str(claims, mapping.product_source, 200),
        session_id=_claim_str(claims, mapping.session_id, 200),
    )
