"""Audit entries for changes made outside the control plane: API keys created and revoked,
prompt aliases promoted. (Tool decisions, approvals, policy loads, budgets and credentials are
recorded where they happen: the gate, the fabric's approval hook, `ControlPlane`, `Budgets`
and the `Vault`.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from keel.control.ledger import AuditKind, Ledger, LedgerEntry

if TYPE_CHECKING:
    from keel.identity.keys import KeyChange


def key_change_recorder(ledger: Ledger, actor: str) -> Callable[[KeyChange], None]:
    """An `on_change` hook for `keel.identity.keys`: one entry per key created or revoked, in
    the key's tenant chain (the secret is never known here; its prefix identifies it)."""

    def record(change: KeyChange) -> None:
        key = change.key
        ledger.append(
            actor=actor,
            kind=AuditKind.API_KEY,
            subject=f"api_key:{key.id}",
            data={
                "action": change.action,
                "user": key.user_id,
                "name": key.name,
                "prefix": key.prefix,
                "scopes": list(key.scopes),
            },
            tenant_id=key.tenant_id,
        )

    return record


def record_prompt_promotion(
    ledger: Ledger,
    *,
    prompt: str,
    alias: str,
    from_version: int | None,
    to_version: int,
    actor: str,
    reason: str = "",
    evidence: str | None = None,
) -> LedgerEntry:
    """A prompt alias moved (promotion or rollback); EVIDENCE names the gate report behind it."""
    return ledger.append(
        actor=actor,
        kind=AuditKind.PROMPT_PROMOTION,
        subject=f"prompt:{prompt}@{alias}",
        data={
            "from_version": from_version,
            "to_version": to_version,
            "reason": reason,
            "evidence": evidence,
        },
    )


__all__ = ["key_change_recorder", "record_prompt_promotion"]
