"""`/v1/agents`: the agents this deployment serves, and what each takes, returns and may do."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from keel.api.deps import AgentsDep, AnyScopeRead, FabricDep
from keel.api.problems import problem_responses
from keel.api.schemas import (
    AGENT_NAME_PATTERN,
    AgentDescription,
    AgentList,
    AgentModel,
    AgentPrompt,
    AgentPublic,
    AgentTool,
    ModelRoutePublic,
)
from keel.errors import NotFound

router = APIRouter(prefix="/v1/agents", tags=["agents"])

AgentName = Annotated[
    str, Path(max_length=100, pattern=AGENT_NAME_PATTERN, description="An agent's name.")
]


@router.get("", summary="List agents", responses=problem_responses(401, 429))
def list_agents(principal: AnyScopeRead, agents: AgentsDep, request: Request) -> AgentList:
    fabric = request.app.state.fabric
    data = []
    for name in agents.names():
        description = None
        if fabric is not None and name in fabric.catalog:
            description = " ".join(fabric.catalog.get(name).spec.description.split()) or None
        data.append(AgentPublic(name=name, description=description))
    return AgentList(data=data)


@router.get(
    "/{name}",
    summary="Describe an agent: input and output schemas, model, prompt, tools, runners",
    responses=problem_responses(401, 404, 422, 429, 503),
)
def describe_agent(
    name: AgentName, principal: AnyScopeRead, agents: AgentsDep, fabric: FabricDep
) -> AgentDescription:
    if not agents.exists(name):
        raise NotFound("agent", name)
    loaded = fabric.catalog.get(name)
    spec = loaded.spec
    aliases = fabric.catalog.prompts.aliases(spec.prompt_name)
    output_schema: dict[str, Any] = {"type": "string"}
    kind = "text"
    if isinstance(loaded.output_type, type) and issubclass(loaded.output_type, BaseModel):
        output_schema, kind = loaded.output_type.model_json_schema(), "object"
    return AgentDescription(
        name=loaded.name,
        description=" ".join(spec.description.split()),
        spec_version=loaded.version,
        input_schema=loaded.input_type.model_json_schema(),
        output_schema=output_schema,
        output_kind="text" if kind == "text" else "object",
        model=AgentModel(
            default=spec.model.default,
            routes=[ModelRoutePublic(when=r.when, model=r.model) for r in spec.model.routes],
        ),
        prompt=AgentPrompt(
            name=spec.prompt_name,
            alias=spec.prompt.alias,
            version=aliases.get(spec.prompt.alias),
            aliases=aliases,
        ),
        tools=[
            AgentTool(
                name=tool.name,
                description=" ".join(tool.description.split()),
                requires_approval=tool.requires_approval,
            )
            for tool in loaded.tools.values()
        ],
        runners=list(spec.runners),
        double_texting=spec.double_texting,
        timeout_seconds=spec.timeout_seconds,
    )
