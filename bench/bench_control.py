"""Control-plane micro-benchmarks: p50/p95 of each building block, with a ratio against a
baseline measured in the same process.

    .venv/bin/python bench/bench_control.py

- Cedar: `PolicyEngine.decide` (one call, and the approval-detecting double evaluation)
  against raw `cedarpy.is_authorized` on the same pre-parsed policies and entities.
- Guardrails: `GuardrailSet` PII redaction + prompt-injection scan of a 2 KB text against the
  raw detectors on the same text (and, for scale, one `re.search` over it).
- Governed SQL: check + rewrite of a typical join/aggregate query (new each time, and repeated:
  accepted verdicts are cached) against `sqlglot.parse_one`.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime

import cedarpy
import sqlglot

from keel.control.cedar_schema import ToolDescriptor
from keel.control.governed_sql import GovernedSQL
from keel.control.guardrails import GuardrailSet
from keel.control.injection import find_injection
from keel.control.pii import find_pii
from keel.control.policy import (
    AuthorizationRequest,
    PolicyEngine,
    PolicyPrincipal,
    PolicySource,
)
from keel.control.sql_grants import SqlCaller, SqlGrants

ROUNDS = 2000


def measure(fn: Callable[[], object], rounds: int = ROUNDS) -> tuple[float, float]:
    for _ in range(min(100, rounds)):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


def report(
    name: str, subject: tuple[float, float], baseline: tuple[float, float], base_name: str
) -> None:
    p50, p95 = subject
    b50, b95 = baseline
    print(
        f"{name:<44} p50 {p50 * 1e6:8.1f} µs  p95 {p95 * 1e6:8.1f} µs   "
        f"{p50 / b50:5.2f}x {base_name} (p50 {b50 * 1e6:.1f} µs, p95 {b95 * 1e6:.1f} µs)"
    )


def bench_cedar() -> None:
    tools = [
        ToolDescriptor(
            "search_projects",
            kind="read",
            attributes={"sensitivity": "low"},
            arguments={"query": "String"},
        ),
        ToolDescriptor(
            "issue_refund",
            kind="write",
            attributes={"sensitivity": "high"},
            arguments={"amount": "Long"},
        ),
    ]
    policies = """
    @id("read") permit (principal, action, resource)
      when { resource.kind == "read" && principal.user.roles.contains("analyst") };
    @id("refund") permit (principal, action == Keel::Action::"issue_refund", resource);
    @id("big-refund") forbid (principal, action == Keel::Action::"issue_refund", resource)
      when { context.args.amount > 1000 } unless { context.has_human_approval };
    @id("budget") forbid (principal, action, resource) when { context.budget_remaining_pct < 5 };
    """
    engine = PolicyEngine.from_sources([PolicySource("bench.cedar", policies)], tools)
    principal = PolicyPrincipal("sales", "acme", "alice", frozenset({"analyst"}), "pro")
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    approved = AuthorizationRequest(
        principal, "issue_refund", {"amount": 5000}, now, has_human_approval=True
    )
    twice = AuthorizationRequest(principal, "issue_refund", {"amount": 5000}, now)
    # Baseline: raw cedarpy on the engine's own pre-parsed policy set and entities.
    entities = engine._entities("sales", "acme", "alice", "pro", frozenset({"analyst"}))
    raw_request = {
        "principal": {"type": "Keel::Agent", "id": "sales"},
        "action": {"type": "Keel::Action", "id": "issue_refund"},
        "resource": {"type": "Keel::Tool", "id": "issue_refund"},
        "context": engine._context(approved),
    }
    baseline = measure(lambda: cedarpy.is_authorized(raw_request, engine._policy_set, entities))
    report(
        "cedar decide (approval given, 1 eval)",
        measure(lambda: engine.decide(approved)),
        baseline,
        "raw is_authorized",
    )
    report(
        "cedar decide (approval detection, 2 evals)",
        measure(lambda: engine.decide(twice)),
        baseline,
        "raw is_authorized",
    )


def bench_guardrails() -> None:
    paragraph = (
        "Customer Jane Doe (jane.doe@example.com, +46 70 123 45 67) asked about order 100234 "
        "for project P-2026-0042; invoice total 1 299,00 kr due 2026-03-15. IBAN SE45 5000 0000 "
        "0583 9825 7466. Please summarise the previous meeting notes for the team. "
    )
    text = (paragraph * 20)[:2048]
    guardrails = GuardrailSet.from_config({"output": {"pii": "redact", "prompt_injection": "warn"}})
    assert len(text) == 2048
    pattern = re.compile(r"ignore (?:all )?previous instructions")
    floor = measure(lambda: pattern.search(text), 500)
    print(f"{'(floor: one re.search over 2 KB)':<44} p50 {floor[0] * 1e6:8.1f} µs")
    baseline = measure(lambda: (find_pii(text), find_injection(text)), 500)
    report(
        "guardrails pii+injection, 2 KB text",
        measure(lambda: guardrails.check_output(text), 500),
        baseline,
        "raw find_pii+find_injection",
    )


def bench_governed_sql() -> None:
    grants = SqlGrants.from_mapping(
        {
            "tables": {
                "projects": {
                    "columns": ["id", "name", "region", "budget"],
                    "row_filter": "tenant_id = :tenant",
                    "masks": {"budget": {"expr": "NULL", "unless_roles": ["finance"]}},
                },
                "contacts": {
                    "columns": ["id", "project_id", "email"],
                    "row_filter": "tenant_id = :tenant",
                    "masks": {"email": "'***'"},
                },
            }
        },
        dialect="sqlite",
    )
    sql = (
        "SELECT p.region, COUNT(*) AS n, SUM(p.budget) AS total FROM projects p "
        "JOIN contacts c ON c.project_id = p.id WHERE p.name LIKE 'A%' "
        "GROUP BY p.region HAVING COUNT(*) > 1 ORDER BY total DESC LIMIT 20"
    )
    caller = SqlCaller("acme", "alice", frozenset({"analyst"}))
    with tempfile.TemporaryDirectory() as tmp:
        g = GovernedSQL(f"sqlite:///{tmp}/data.db", grants)
        baseline = measure(lambda: sqlglot.parse_one(sql, read="sqlite"), 500)
        fresh = iter(range(10**9))  # a new literal each time: the verdict cache never hits
        report(
            "governed SQL check + rewrite (new query)",
            measure(lambda: g.check(sql.replace("'A%'", f"'A{next(fresh)}%'"), caller), 500),
            baseline,
            "sqlglot.parse_one",
        )
        report(
            "governed SQL check, repeated query",
            measure(lambda: g.check(sql, caller), 500),
            baseline,
            "sqlglot.parse_one",
        )


def main() -> None:
    print(f"control-plane micro-benchmarks ({json.dumps({'python': sys.version.split()[0]})})")
    bench_cedar()
    bench_guardrails()
    bench_governed_sql()


if __name__ == "__main__":
    main()
