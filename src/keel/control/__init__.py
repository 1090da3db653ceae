"""The control plane's building blocks: Cedar policies, guardrails, the credential vault, the
audit ledger and governed SQL. The tool gate composes them; each is usable on its own.

Importing this package does no work: engines, vaults and ledgers come from their constructors.
"""

from __future__ import annotations

from keel.control.cedar_schema import PolicySchema, ToolDescriptor, load_tool_descriptors
from keel.control.findings import Detector, Finding, GuardrailContext, Stage
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
from keel.control.sql_grants import SqlCaller, SqlGrants
from keel.control.vault import Secret, SecretInfo, Vault

__all__ = (
    "PII_KINDS",
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
)
