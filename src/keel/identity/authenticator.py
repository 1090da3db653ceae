"""Credentials → `Principal`: API keys (`X-API-Key` or `Bearer keel_sk_…`) and OIDC JWTs.

The only place that decides who is calling. Tenant and user ids come from the key row
or from verified token claims, never from anything the caller can write freely.
"""

from __future__ import annotations

import anyio.to_thread

from keel.errors import Unauthorized
from keel.identity import keys
from keel.identity.oidc import OidcVerifier
from keel.identity.principal import Principal
from keel.store.database import Database


class Authenticator:
    """Resolves request credentials. Blocking database work runs in a worker thread."""

    def __init__(self, db: Database, oidc: OidcVerifier | None = None) -> None:
        self._db = db
        self.oidc = oidc
        self._known_tenants: set[str] = set()

    async def authenticate(
        self, *, authorization: str | None = None, api_key: str | None = None
    ) -> Principal:
        """Exactly one credential: an `X-API-Key` value or an `Authorization` header."""
        if authorization is not None and api_key is not None:
            raise Unauthorized("send either Authorization or X-API-Key, not both")
        if api_key is not None:
            return await self._api_key(api_key.strip())
        if authorization is None:
            raise Unauthorized("authentication required")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("use 'Authorization: Bearer <API key or token>'")
        if token.startswith(keys.KEY_PREFIX):
            return await self._api_key(token)
        if self.oidc is None:
            raise Unauthorized("JWT bearer tokens are not enabled on this server")
        principal = await self.oidc.verify(token)
        await self._ensure_tenant(principal.tenant_id)
        return principal

    async def _api_key(self, secret: str) -> Principal:
        return await anyio.to_thread.run_sync(keys.authenticate, self._db, secret)

    async def _ensure_tenant(self, tenant_id: str) -> None:
        # Tenants named by a trusted IdP exist implicitly; the row anchors foreign keys.
        if tenant_id in self._known_tenants:
            return
        await anyio.to_thread.run_sync(keys.ensure_tenant, self._db, tenant_id)
        self._known_tenants.add(tenant_id)

    async def close(self) -> None:
        if self.oidc is not None:
            await self.oidc.jwks.close()
