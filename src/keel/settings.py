"""The one Settings object. Built once by `get_settings()` and passed down; nothing else reads os.environ."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Keel's configuration, from `KEEL_*` environment variables (and `.env`).

    The defaults are the embedded development setup: SQLite under `.keel/`, offline
    models, bound to 127.0.0.1. Outside `development`, unsafe defaults are refused.
    """

    model_config = SettingsConfigDict(env_prefix="KEEL_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    home: Path = Field(default=Path(".keel"), description="Data folder for the embedded default.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<home>/keel.db (WAL)."
    )
    dbos_system_database_url: str | None = Field(
        default=None,
        description="DBOS system database; default <home>/dbos.db on SQLite, the same "
        "PostgreSQL server (database <name>_dbos_sys) otherwise.",
    )
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    agents_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders holding one sub-folder per agent; default: ./agents and the bundled examples.",
    )
    model_override: str | None = Field(
        default=None, description="Force every agent onto this model (e.g. offline:chat)."
    )
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    master_key: SecretStr | None = Field(
        default=None, description="Base64 32-byte key wrapping per-tenant vault keys."
    )
    policy_dirs: list[Path] = Field(
        default_factory=list,
        description="Deployment-wide Cedar policy folders (*.cedar); agent folders add their "
        "own policies/ on top.",
    )
    approval_ttl_seconds: int = 7 * 24 * 3600
    otlp_endpoint: str | None = None
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.env == "production":
            if self.database_url is None or self.database_url.startswith("sqlite"):
                raise ValueError("KEEL_DATABASE_URL must point at PostgreSQL in production")
            if self.master_key is None:
                raise ValueError("KEEL_MASTER_KEY is required in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'keel.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import time)."""
    return Settings()
