"""The authenticated caller. Built by the API from an API key or a JWT, never from a request body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    user_id: str
    scopes: tuple[str, ...] = ()
    project_id: str | None = None
    product_source: str | None = None
    session_id: str | None = None
    roles: tuple[str, ...] = Field(default=())

    def has_scope(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes
