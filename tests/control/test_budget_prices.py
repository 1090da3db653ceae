"""What budgets count in money: model prices from genai-prices (or configured ones for
self-hosted and offline models), and the estimate a model request is checked against."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic_ai.messages import ModelRequest, UserPromptPart

from keel.control.budgets import ESTIMATED_OUTPUT_TOKENS, AgentBudget, estimate_request, model_price
from keel.errors import SpecError
from keel.observability.cost import request_cost
from keel.settings import Settings


def _settings(**kw: object) -> Settings:
    return Settings(env="test", _env_file=None, **kw)  # type: ignore[call-arg]


def test_a_real_models_usage_is_priced_from_genai_prices_by_its_name() -> None:
    settings = _settings()
    cost = request_cost("gpt-4o-2024-08-06", 1000, 500, settings)
    assert cost.priced and cost.usd == pytest.approx(0.0075)
    assert not request_cost("offline:chat", 1000, 500, settings).priced
    configured = _settings(model_prices={"offline:*": (1.0, 2.0)})
    assert request_cost("offline:chat", 1_000_000, 500_000, configured).usd == pytest.approx(2.0)


def test_the_estimate_counts_the_messages_and_the_answer_to_come() -> None:
    settings = _settings()
    assert model_price("openai:gpt-4o", settings) == (Decimal("2.5"), Decimal("10"))
    assert model_price("offline:chat", settings) is None
    messages = [ModelRequest(parts=[UserPromptPart("x" * 4000)])]
    tokens, usd = estimate_request(messages, "openai:gpt-4o", settings)
    assert 1000 < tokens - ESTIMATED_OUTPUT_TOKENS < 1200
    assert usd == (Decimal(tokens - ESTIMATED_OUTPUT_TOKENS) * Decimal("2.5")
                   + Decimal(ESTIMATED_OUTPUT_TOKENS) * 10) / Decimal(1_000_000)  # fmt: skip
    assert estimate_request(messages, "offline:chat", settings)[1] == 0
    assert estimate_request(messages, "openai:gpt-4o", settings, max_tokens=10)[0] < tokens


def test_an_agents_budget_mapping_is_checked() -> None:
    budget = AgentBudget.parse({"monthly_usd": "12.5", "run_tokens": 5000}, source="a/agent.yaml")
    assert budget.monthly_usd == Decimal("12.5") and budget.run_tokens == 5000
    with pytest.raises(SpecError) as err:
        AgentBudget.parse({"monthly_usd": 0, "per_hour": 3}, source="a/agent.yaml")
    problems = [str(p) for p in err.value.problems]
    assert any(p.startswith("a/agent.yaml:budget.monthly_usd:") for p in problems)
    assert any(p.startswith("a/agent.yaml:budget.per_hour:") for p in problems)
