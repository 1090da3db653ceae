"""The control plane's public surface is pinned: changing it is a deliberate act."""

from __future__ import annotations

import keel.control


def test_public_names_are_pinned_and_importable() -> None:
    assert sorted(keel.control.__all__) == sorted(
        [
            "PII_KINDS",
            "AgentBudget",
            "BudgetState",
            "Budgets",
            "ControlPlane",
            "GateDecision",
            "InputBlocked",
            "Tier",
            "ToolGate",
            "ToolRegistry",
            "ToolScope",
            "ToolSpec",
            "current_scope",
            "install_control_plane",
            "keel_tool",
            "usage_report",
            "AuditKind",
            "AuthorizationRequest",
            "BadEntry",
            "CheckedQuery",
            "Decision",
            "DecryptionFailed",
            "Detector",
            "Finding",
            "GovernedSQL",
            "Guardrail",
            "GuardrailContext",
            "GuardrailRegistry",
            "GuardrailResult",
            "GuardrailSet",
            "KeyProvider",
            "Ledger",
            "LedgerEntry",
            "LoadedPolicy",
            "LocalKeyProvider",
            "Mode",
            "NamedQuery",
            "PolicyDecision",
            "PolicyEngine",
            "PolicyPrincipal",
            "PolicySchema",
            "PolicySource",
            "Problem",
            "QueryFailed",
            "QueryRefused",
            "QueryResult",
            "Secret",
            "SecretInfo",
            "SecretRedactor",
            "SqlCaller",
            "SqlGrants",
            "Stage",
            "ToolDescriptor",
            "Vault",
            "VerifyReport",
            "find_injection",
            "find_pii",
            "load_tool_descriptors",
            "local_key_provider",
        ]
    )
    for name in keel.control.__all__:
        assert getattr(keel.control, name) is not None


def test_control_cli_groups_are_wired() -> None:
    from keel.cli.main import app

    names = {group.name for group in app.registered_groups}
    assert {"policy", "audit", "secrets"} <= names
