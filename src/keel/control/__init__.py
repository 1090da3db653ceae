"""The control plane: the tool registry and the gate every tool call passes (`ControlPlane`,
installed into the fabric by the composition root), budgets, and the building blocks the gate
composes — Cedar policies, guardrails, the credential vault, the audit ledger, governed SQL —
each usable on its own. Tools reach their credential through `current_scope()`.

Importing this package does no work: engines, vaults and ledgers come from their constructors.
"""

from __future__ import annotations

from keel.control.budgets import AgentBudget, Budgets, BudgetState, Tier
from keel.control.cedar_schema import PolicySchema, ToolDescriptor, load_tool_descriptors
from keel.control.findings import Detector, Finding, GuardrailContext, Stage
from keel.control.gate import GateDecision, ToolGate
from keel.control.governed_sql import (
    CheckedQuery,
    GovernedSQL,
    NamedQuery,
    QueryFailed,
    QueryRefused,
    QueryResult,
)
from keel.control.guardrails import (
    Guardrail,
    GuardrailRegistry,
    GuardrailResult,
    GuardrailSet,
    Mode,
)
from keel.control.guards import InputBlocked
from keel.control.injection import find_injection
from keel.control.keys import DecryptionFailed, KeyProvider, LocalKeyProvider, local_key_provider
from keel.control.ledger import (
    AuditKind,
    BadEntry,
    Ledger,
    LedgerEntry,
    Problem,
    VerifyReport,
)
from keel.control.pii import PII_KINDS, find_pii
from keel.control.plane import ControlPlane, install_control_plane
from keel.control.policy import (
    AuthorizationRequest,
    Decision,
    LoadedPolicy,
    PolicyDecision,
    PolicyEngine,
    PolicyPrincipal,
    PolicySource,
)
from keel.control.redactor import SecretRedactor
from keel.control.registry import ToolRegistry, ToolSpec, keel_tool
from keel.control.scope import ToolScope, current_scope
from keel.control.sql_grants import SqlCaller, SqlGrants
from keel.control.usage import usage_report
from keel.control.vault import Secret, SecretInfo, Vault

__all__ = (
    "PII_KINDS",
    "AgentBudget",
    "AuditKind",
    "AuthorizationRequest",
    "BadEntry",
    "BudgetState",
    "Budgets",
    "CheckedQuery",
    "ControlPlane",
    "Decision",
    "DecryptionFailed",
    "Detector",
    "Finding",
    "GateDecision",
    "GovernedSQL",
    "Guardrail",
    "GuardrailContext",
    "GuardrailRegistry",
    "GuardrailResult",
    "GuardrailSet",
    "InputBlocked",
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
    "Tier",
    "ToolDescriptor",
    "ToolGate",
    "ToolRegistry",
    "ToolScope",
    "ToolSpec",
    "Vault",
    "VerifyReport",
    "current_scope",
    "find_injection",
    "find_pii",
    "install_control_plane",
    "keel_tool",
    "load_tool_descriptors",
    "local_key_provider",
    "usage_report",
)
