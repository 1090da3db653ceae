"""`/v1/agents`: the agents a conversation can be opened with (from the `AgentCatalog`)."""

from __future__ import annotations

from fastapi import APIRouter

from keel.api.deps import AgentsDep, AnyScopeRead
from keel.api.problems import problem_responses
from keel.api.schemas import AgentList, AgentPublic

router = APIRouter(prefix="/v1/agents", tags=["agents"])


@router.get("", summary="List agents", responses=problem_responses(401, 429))
def list_agents(principal: AnyScopeRead, agents: AgentsDep) -> AgentList:
    return AgentList(data=[AgentPublic(name=n) for n in agents.names()])
