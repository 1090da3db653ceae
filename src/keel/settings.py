"""The one Settings object. Built once by `get_settings()` and passed down; nothing else reads os.environ."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RateLimitSetting(BaseModel):
    """A token bucket: `capacity` tokens at most (the burst), refilled at `refill_per_second`."""

    model_config = ConfigDict(frozen=True)

    capacity: float = Field(gt=0)
    refill_per_second: float = Field(gt=0)


def _default_rate_limits() -> dict[str, RateLimitSetting]:
    # Generous defaults: they stop a runaway client, not a busy tenant.
    return {
        "turns": RateLimitSetting(capacity=60, refill_per_second=1),
        "runs": RateLimitSetting(capacity=60, refill_per_second=1),
        "reads": RateLimitSetting(capacity=600, refill_per_second=20),
        "writes": RateLimitSetting(capacity=120, refill_per_second=4),
    }


JwtAlgorithm = Literal["RS256", "ES256"]


def _default_jwt_algorithms() -> list[JwtAlgorithm]:
    return ["RS256", "ES256"]


class OidcClaimMapping(BaseModel):
    """Which JWT claim fills which `Principal` field (Cognito-style defaults).

    `scopes` lists claims to read scopes from: a string claim is split on spaces
    (OAuth `scope`), a list claim is taken as is (`cognito:groups`).
    """

    model_config = ConfigDict(frozen=True)

    tenant_id: str = "custom:tenant_id"
    user_id: str = "sub"
    project_id: str | None = "custom:project_id"
    product_source: str | None = "custom:product_source"
    session_id: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["scope", "cognito:groups"])
    scope_prefix: str | None = Field(
        default=None,
        description="Stripped from each scope, e.g. a Cognito resource server 'keel/'.",
    )


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
    approval_ttl_seconds: int = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="How long an approval waits before it expires (= rejected).",
    )
    worker_id: str = Field(
        default="local",
        description="This executor's stable id; a restarted worker recovers the runs its id "
        "left unfinished. Give every concurrent worker its own.",
    )
    interactive_concurrency: int = Field(
        default=16, gt=0, description="Runs at once per worker, interactive lane."
    )
    batch_concurrency: int = Field(
        default=8, gt=0, description="Runs at once per worker, batch lane."
    )
    tenant_concurrency: int = Field(
        default=8, gt=0, description="Runs at once per tenant per lane, across workers."
    )
    interactive_poll_seconds: float = Field(
        default=0.05,
        gt=0,
        le=60,
        description="How often a worker looks for queued runs on the interactive lane.",
    )
    batch_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often a worker looks for queued runs on the batch lane (slower: "
        "batch work tolerates a start delay and the database is spared the polling).",
    )
    event_notifier: Literal["auto", "local", "postgres", "redis"] = Field(
        default="auto",
        description="How followers learn of new run events: redis when KEEL_REDIS_URL is set, "
        "PostgreSQL LISTEN/NOTIFY on PostgreSQL, in-process otherwise.",
    )
    dbos_log_level: str = "ERROR"
    model_prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="USD per million (input, output) tokens by model pattern (fnmatch), for "
        "models genai-prices does not know (self-hosted, offline). Example: "
        '{"offline:*": [0.5, 1.5]}.',
    )
    policy_dirs: list[Path] = Field(
        default_factory=list,
        description="Deployment-wide Cedar policy folders (*.cedar); agent folders add their "
        "own policies/ on top.",
    )
    budget_tenant_monthly_tokens: int | None = Field(
        default=None,
        gt=0,
        description="Monthly token budget of a tenant without its own (`keel budget set`).",
    )
    budget_tenant_monthly_usd: float | None = Field(
        default=None, gt=0, description="Monthly USD budget of a tenant without its own."
    )
    budget_run_tokens: int | None = Field(
        default=None,
        gt=0,
        description="Token budget of one run (an agent's `budget.run_tokens` overrides it).",
    )
    budget_run_usd: float | None = Field(
        default=None, gt=0, description="USD budget of one run (`budget.run_usd` overrides it)."
    )
    expensive_tool_usd: float | None = Field(
        default=0.01,
        ge=0,
        description="While a budget is in its throttle tier (75-90 %), a tool costing at least "
        "this much per call needs a human's approval; unset: never.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces); no tracing cost without it.",
    )
    trace_content: bool = Field(
        default=False, description="Put prompts and outputs into spans (off: metadata only)."
    )
    log_level: str = "INFO"

    # --- API -------------------------------------------------------------------------
    api_max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Largest request body accepted (413 beyond)."
    )
    api_metadata_max_bytes: int = Field(
        default=16 * 1024, gt=0, description="Largest `metadata` object, serialised as JSON."
    )
    agent_names: list[str] = Field(
        default_factory=list,
        description="Agents the API accepts, in addition to the sub-folders of agents_dirs.",
    )
    idempotency_ttl_seconds: int = Field(
        default=24 * 3600, gt=0, description="How long an Idempotency-Key is remembered."
    )
    idempotency_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a duplicate waits for the in-flight first request (409 after).",
    )
    idempotency_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="An in-flight claim older than this is presumed crashed and taken over.",
    )
    api_sse_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        description="An event stream sends a `: keep-alive` comment after this long without "
        "an event, so proxies keep the connection open.",
    )
    rate_limits: dict[str, RateLimitSetting] = Field(
        default_factory=_default_rate_limits,
        description="Token bucket per tenant and resource class (turns, runs, reads, writes).",
    )
    rate_limit_tenants: dict[str, dict[str, RateLimitSetting]] = Field(
        default_factory=dict,
        description="Per-tenant overrides: {tenant_id: {resource class: bucket}}.",
    )

    # --- OIDC (JWT bearer tokens) ------------------------------------------------------
    oidc_issuer: str | None = Field(
        default=None,
        description="Expected `iss`, e.g. https://cognito-idp.<region>.amazonaws.com/<pool>. "
        "Unset: JWT bearer tokens are refused and only API keys work.",
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS URL; default <issuer>/.well-known/jwks.json."
    )
    oidc_audiences: list[str] = Field(
        default_factory=list,
        description="Accepted `aud` (ID tokens) or `client_id` (Cognito access tokens) values.",
    )
    oidc_token_use: list[str] = Field(
        default_factory=list,
        description="Accepted `token_use` claim values (Cognito: access, id); empty: not checked.",
    )
    oidc_algorithms: list[JwtAlgorithm] = Field(
        default_factory=_default_jwt_algorithms,
        description="Accepted token algorithms; symmetric ones and `none` are never accepted.",
    )
    oidc_leeway_seconds: int = Field(default=30, ge=0, le=300)
    oidc_jwks_ttl_seconds: float = Field(default=3600.0, gt=0)
    oidc_jwks_min_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Unknown `kid`s trigger a JWKS refresh at most this often.",
    )
    oidc_claims: OidcClaimMapping = Field(default_factory=OidcClaimMapping)

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.env == "production":
            if self.database_url is None or self.database_url.startswith("sqlite"):
                raise ValueError("KEEL_DATABASE_URL must point at PostgreSQL in production")
            if self.master_key is None:
                raise ValueError("KEEL_MASTER_KEY is required in production")
        if self.oidc_issuer is not None and not self.oidc_audiences:
            raise ValueError("KEEL_OIDC_AUDIENCES is required when KEEL_OIDC_ISSUER is set")
        return self

    @property
    def resolved_oidc_jwks_url(self) -> str | None:
        if self.oidc_jwks_url:
            return self.oidc_jwks_url
        if self.oidc_issuer:
            return self.oidc_issuer.rstrip("/") + "/.well-known/jwks.json"
        return None

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
