from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.control.cedar_schema import PolicySchema, ToolDescriptor, load_tool_descriptors
from keel.control.policy import (
    AuthorizationRequest,
    Decision,
    PolicyEngine,
    PolicyPrincipal,
    PolicySource,
)
from keel.errors import InvalidInput, SpecError

TOOLS = [
    ToolDescriptor(
        "search_projects",
        kind="read",
        attributes={"sensitivity": "low", "cost": 0.002},
        tags=("crm",),
        arguments={"query": "String", "limit": "Long?"},
    ),
    ToolDescriptor(
        "issue_refund",
        kind="write",
        attributes={"sensitivity": "high", "cost": 0.5},
        arguments={"amount": "Long", "currency": "String"},
    ),
    ToolDescriptor("delete_project", kind="write", attributes={"sensitivity": "high"}),
]

ALICE = PolicyPrincipal("sales", "acme", "alice", frozenset({"analyst"}), "pro")
BOB = PolicyPrincipal("sales", "acme", "bob", frozenset(), "free")
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

BASE = """
// Analysts may read.
@id("analysts-read")
permit (principal, action, resource)
when { resource.kind == "read" && principal.user.roles.contains("analyst") };

@id("refunds")
permit (principal, action == Keel::Action::"issue_refund", resource)
when { principal.user.tier == "pro" };

@id("big-refund-needs-approval")
forbid (principal, action == Keel::Action::"issue_refund", resource)
when { context.args.amount > 1000 }
unless { context.has_human_approval };

@id("never-delete")
forbid (principal, action == Keel::Action::"delete_project", resource);

@id("budget-floor")
forbid (principal, action, resource)
when { context.budget_remaining_pct < 5 || context.throttled };
"""


def engine(*texts: str, agent: str | None = None) -> PolicyEngine:
    sources = [PolicySource(f"p{i}.cedar", text, agent) for i, text in enumerate(texts)]
    return PolicyEngine.from_sources(sources, TOOLS)


def req(tool: str, principal: PolicyPrincipal = ALICE, **kwargs: object) -> AuthorizationRequest:
    kwargs.setdefault("now", NOON)
    return AuthorizationRequest(principal, tool, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def base() -> PolicyEngine:
    return engine(BASE)


def test_permitted_call_is_allowed_and_names_its_policy(base: PolicyEngine) -> None:
    d = base.decide(req("search_projects", args={"query": "q"}))
    assert d.decision is Decision.ALLOW and d.allowed
    assert d.policies == ("analysts-read",)
    assert d.errors == ()


def test_no_permitting_policy_is_the_default_deny(base: PolicyEngine) -> None:
    d = base.decide(req("search_projects", BOB, args={"query": "q"}))
    assert d.decision is Decision.DENY
    assert d.policies == ()
    assert d.reason == "no policy permits this call"


def test_empty_policy_set_denies_everything() -> None:
    assert engine().decide(req("delete_project")).decision is Decision.DENY


def test_forbid_unless_approval_requires_approval_then_allows(base: PolicyEngine) -> None:
    call = {"args": {"amount": 5000, "currency": "SEK"}}
    d = base.decide(req("issue_refund", **call))
    assert d.decision is Decision.REQUIRE_APPROVAL and d.requires_approval
    assert d.policies == ("big-refund-needs-approval",)
    approved = base.decide(req("issue_refund", has_human_approval=True, **call))
    assert approved.decision is Decision.ALLOW and approved.policies == ("refunds",)
    small = base.decide(req("issue_refund", args={"amount": 10, "currency": "SEK"}))
    assert small.decision is Decision.ALLOW


def test_hard_forbid_is_deny_even_with_approval(base: PolicyEngine) -> None:
    for approval in (False, True):
        d = base.decide(req("delete_project", has_human_approval=approval))
        assert d.decision is Decision.DENY
        assert d.policies == ("never-delete",)


def test_permit_that_needs_approval_is_require_approval() -> None:
    e = engine(
        '@id("with-approval") permit (principal, action == Keel::Action::"delete_project", '
        "resource) when { context.has_human_approval };"
    )
    d = e.decide(req("delete_project"))
    assert d.decision is Decision.REQUIRE_APPROVAL and d.policies == ("with-approval",)


def test_context_budget_and_throttle_are_visible_to_policies(base: PolicyEngine) -> None:
    call = {"args": {"query": "q"}}
    assert base.decide(req("search_projects", budget_remaining_pct=4, **call)).policies == (
        "budget-floor",
    )
    assert base.decide(req("search_projects", throttled=True, **call)).decision is Decision.DENY
    assert base.decide(req("search_projects", budget_remaining_pct=5, **call)).allowed


def test_time_of_day_and_decimal_attributes() -> None:
    e = engine(
        """
        @id("office-hours")
        permit (principal, action, resource)
        when { context.now.toTime() >= duration("8h") && context.now.toTime() < duration("18h") };
        @id("expensive")
        forbid (principal, action, resource)
        when { resource has cost && resource.cost.greaterThan(decimal("0.1")) };
        """
    )
    night = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    assert e.decide(req("delete_project")).allowed
    assert e.decide(req("delete_project", now=night)).decision is Decision.DENY
    expensive = e.decide(req("issue_refund", args={"amount": 1, "currency": "EUR"}))
    assert expensive.policies == ("expensive",)


def test_evaluation_error_fails_closed() -> None:
    """An overflowing forbid must not be skipped (Cedar skips erroring policies)."""
    e = engine(
        """
        @id("allow-all") permit (principal, action, resource);
        @id("overflowing-forbid")
        forbid (principal, action == Keel::Action::"issue_refund", resource)
        when { context.args.amount * 1000000000000 > 5 };
        """
    )
    d = e.decide(req("issue_refund", args={"amount": 10**12, "currency": "EUR"}))
    assert d.decision is Decision.DENY
    assert d.errors and "overflow" in " ".join(d.errors).lower()


def test_agent_folder_policies_apply_only_to_that_agent() -> None:
    sources = [
        PolicySource(
            "agents/sales/policies/p.cedar", "permit (principal, action, resource);", "sales"
        )
    ]
    e = PolicyEngine.from_sources(sources, TOOLS)
    assert e.decide(req("delete_project")).allowed
    other = PolicyPrincipal("support", "acme", "alice", frozenset({"analyst"}))
    assert e.decide(req("delete_project", other)).decision is Decision.DENY
    assert e.policies[0].agent == "sales"


def test_agent_folder_policy_naming_another_agent_is_refused() -> None:
    sources = [
        PolicySource(
            "agents/sales/policies/p.cedar",
            'permit (principal == Keel::Agent::"support", action, resource);',
            "sales",
        )
    ]
    with pytest.raises(SpecError, match="may only apply to"):
        PolicyEngine.from_sources(sources, TOOLS)


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        engine(text)
    return [str(p) for p in info.value.problems]


def test_unknown_tool_action_is_reported_at_its_line() -> None:
    text = (
        '\n@id("x")\npermit (principal,\n  action == Keel::Action::"serch_projects",\n  resource);'
    )
    [first, *_] = problems_of(text)
    assert first.startswith("p0.cedar:4:")
    assert "serch_projects" in first


def test_misspelt_attribute_is_reported_at_its_line() -> None:
    text = (
        '@id("ok") permit (principal, action, resource);\n\n@id("typo")\npermit (principal, action, resource)\n'
        'when { principal.user.roels.contains("x") };'
    )
    [problem] = problems_of(text)
    assert problem.startswith("p0.cedar:5:") and "roels" in problem


def test_unknown_tool_resource_literal_is_refused() -> None:
    [problem] = problems_of('permit (principal, action, resource == Keel::Tool::"nope");')
    assert "unknown tool" in problem and "nope" in problem


def test_parse_errors_name_file_and_line() -> None:
    text = '@id("a") permit (principal, action, resource);\n\npermit (principal, action, resource)\nwhen { context.budget_remaining_pct &&& 1 };'
    [problem] = problems_of(text)
    assert problem.startswith("p0.cedar:4:") and "invalid token" in problem


def test_missing_semicolon_is_reported_not_dropped() -> None:
    text = '@id("a") permit (principal, action, resource);\nforbid (principal, action, resource)'
    [problem] = problems_of(text)
    assert problem.startswith("p0.cedar:2:") and "missing ';'" in problem


def test_semicolons_in_strings_and_comments_do_not_split() -> None:
    e = engine(
        '// a comment; with a semicolon\n@id("semi;colon") permit (principal, action, resource)\n'
        'when { principal.user.tier != "a;b" }; // trailing; comment'
    )
    assert [p.name for p in e.policies] == ["semi;colon"]


def test_duplicate_ids_and_templates_are_refused() -> None:
    dup = problems_of(
        '@id("a") permit (principal, action, resource);\n@id("a") forbid (principal, action, resource);'
    )
    assert "duplicate policy id 'a'" in dup[0] and dup[0].startswith("p0.cedar:2:")
    [tpl] = problems_of("permit (principal == ?principal, action, resource);")
    assert "templates" in tpl


def test_all_problems_are_reported_together() -> None:
    text = 'permit (principal, action == Keel::Action::"nope", resource);\npermit (principal action, resource);'
    problems = problems_of(text)
    assert {p.split(":")[1] for p in problems} == {"1", "2"}


def test_policies_without_id_are_named_by_location() -> None:
    e = engine("\n\npermit (principal, action, resource);")
    assert e.decide(req("delete_project")).policies == ("p0.cedar:3",)


def test_bad_requests_are_invalid_input(base: PolicyEngine) -> None:
    cases = [
        (req("nope"), "tool"),
        (req("issue_refund", args={"currency": "EUR"}), "args.amount"),
        (req("issue_refund", args={"amount": "10", "currency": "EUR"}), "args.amount"),
        (
            req("search_projects", args={"query": "q"}, budget_remaining_pct=101),
            "budget_remaining_pct",
        ),
    ]
    for request, field in cases:
        with pytest.raises(InvalidInput) as info:
            base.decide(request)
        assert info.value.field == field
    with pytest.raises(InvalidInput):
        PolicyPrincipal("", "acme", "alice")


def test_optional_and_undeclared_arguments() -> None:
    e = engine(
        '@id("limit") permit (principal, action == Keel::Action::"search_projects", resource)\n'
        "when { context.args has limit && context.args.limit <= 50 };"
    )
    assert e.decide(req("search_projects", args={"query": "q", "limit": 10, "extra": [1]})).allowed
    assert not e.decide(req("search_projects", args={"query": "q"})).allowed


def test_schema_lists_tools_and_optional_attributes() -> None:
    schema = PolicySchema(TOOLS)
    text = schema.cedar_text()
    for tool in ("search_projects", "issue_refund", "delete_project"):
        assert tool in text
    shape = schema.json["Keel"]["entityTypes"]["Tool"]["shape"]["attributes"]
    assert shape["sensitivity"]["required"] is True
    assert shape["cost"]["required"] is False


def test_conflicting_attribute_types_are_refused() -> None:
    with pytest.raises(SpecError, match="type differs"):
        PolicySchema(
            [
                ToolDescriptor("a", attributes={"cost": 1}),
                ToolDescriptor("b", attributes={"cost": "x"}),
            ]
        )
    with pytest.raises(SpecError, match="more than 4 decimals"):
        PolicySchema([ToolDescriptor("a", attributes={"cost": 0.00001})])
    with pytest.raises(SpecError, match="unknown argument type"):
        PolicySchema([ToolDescriptor("a", arguments={"x": "Float"})])


def test_tools_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(
        "- name: search_projects\n  kind: read\n  attributes: {cost: 1}\n  arguments: {query: String}\n"
        "- name: delete_project\n  kind: write\n"
    )
    tools = load_tool_descriptors(path)
    assert [t.name for t in tools] == ["search_projects", "delete_project"]
    (tmp_path / "bad.yaml").write_text("- {nme: x}\n")
    with pytest.raises(SpecError, match="unknown key"):
        load_tool_descriptors(tmp_path / "bad.yaml")


def test_load_reads_folders_and_agent_folders(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "base.cedar").write_text(BASE)
    agent = tmp_path / "agents" / "support"
    (agent / "policies").mkdir(parents=True)
    (agent / "policies" / "extra.cedar").write_text(
        '@id("support-delete") permit (principal, action == Keel::Action::"delete_project", resource);'
    )
    e = PolicyEngine.load([tmp_path / "deploy"], TOOLS, agent_dirs={"support": agent})
    assert {p.name for p in e.policies} >= {"analysts-read", "support-delete"}
    support = PolicyPrincipal("support", "acme", "carol")
    assert e.decide(req("delete_project", support)).policies == ("never-delete",)
    with pytest.raises(SpecError, match="no such file"):
        PolicyEngine.load([tmp_path / "missing"], TOOLS)


def test_decision_latency_is_well_under_a_millisecond(base: PolicyEngine) -> None:
    request = req("issue_refund", args={"amount": 5000, "currency": "SEK"})
    base.decide(request)
    samples = []
    for _ in range(300):
        start = time.perf_counter()
        base.decide(request)
        samples.append(time.perf_counter() - start)
    assert statistics.median(samples) < 0.001
