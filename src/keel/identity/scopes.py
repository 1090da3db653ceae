"""The scope vocabulary. A principal holds scopes; routes require them through dependencies.

`*` grants everything. `admin` widens *visibility* inside the principal's own tenant (every
user's conversations, key management); it never crosses tenants and does not imply the
other scopes.
"""

from __future__ import annotations

from keel.errors import InvalidInput

ALL = "*"
ADMIN = "admin"
CONVERSATIONS_READ = "conversations:read"
CONVERSATIONS_WRITE = "conversations:write"
RUNS_READ = "runs:read"
RUNS_WRITE = "runs:write"
APPROVALS_READ = "approvals:read"
APPROVALS_WRITE = "approvals:write"

VOCABULARY: tuple[str, ...] = (
    ALL,
    ADMIN,
    CONVERSATIONS_READ,
    CONVERSATIONS_WRITE,
    RUNS_READ,
    RUNS_WRITE,
    APPROVALS_READ,
    APPROVALS_WRITE,
)


def parse_scopes(text: str) -> tuple[str, ...]:
    """`"a,b c"` → `("a", "b", "c")`, refusing scopes outside the vocabulary (field `scopes`)."""
    scopes = tuple(dict.fromkeys(s for s in text.replace(",", " ").split() if s))
    validate_scopes(scopes)
    return scopes


def validate_scopes(scopes: tuple[str, ...]) -> None:
    if not scopes:
        raise InvalidInput("at least one scope is required", field="scopes")
    unknown = [s for s in scopes if s not in VOCABULARY]
    if unknown:
        raise InvalidInput(
            f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(VOCABULARY)}",
            field="scopes",
        )
