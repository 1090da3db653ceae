"""Build a Pydantic AI `Agent` from a loaded spec: prompt rendering, model routing and resolution.

These are small separate steps so the in-process runner, the durable fabric, the batch
runner and the eval runner all build an agent the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from pydantic import BaseModel, ValidationError
from pydantic_ai import Agent, DeferredToolRequests, Tool
from pydantic_ai.capabilities import AbstractCapability, ResolveModelId
from pydantic_ai.models import Model, ModelResolutionContext
from pydantic_ai.settings import ModelSettings

from keel.agents.deps import RunDeps
from keel.agents.loader import LoadedAgent, TextInput, ToolDef
from keel.agents.locale import language_name, normalise_locale
from keel.errors import InvalidInput
from keel.settings import Settings

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def render_prompt(template: str, variables: Mapping[str, Any]) -> str:
    """Substitute `{{name}}` placeholders; an unknown name is an error that names it."""
    missing = sorted({m.group(1) for m in _VARIABLE.finditer(template)} - set(variables))
    if missing:
        raise InvalidInput(
            f"prompt variable(s) without a value: {', '.join(missing)}", field="prompt"
        )
    return _VARIABLE.sub(lambda m: str(variables[m.group(1)]), template)


def validate_input(loaded: LoadedAgent, run_input: Mapping[str, Any]) -> BaseModel:
    """The run input checked against the agent's input type; errors name the field."""
    try:
        return loaded.input_type.model_validate(dict(run_input))
    except ValidationError as exc:
        problems = [
            (f"input.{'.'.join(str(p) for p in err['loc'])}".rstrip("."), err["msg"])
            for err in exc.errors()
        ]
        (field, reason), more = problems[0], tuple(problems[1:])
        raise InvalidInput(f"{field}: {reason}", field=field, more=more) from exc


def run_locale(run_input: Mapping[str, Any]) -> str:
    value = run_input.get("locale")
    return normalise_locale(value if isinstance(value, str) else None)


def prompt_variables(loaded: LoadedAgent, run_input: Mapping[str, Any]) -> dict[str, Any]:
    """Spec defaults, then same-named run-input fields, then the locale variables."""
    variables: dict[str, Any] = dict(loaded.spec.prompt.variables)
    for name in variables:
        if name in run_input and isinstance(run_input[name], str | int | float):
            variables[name] = run_input[name]
    locale = run_locale(run_input)
    variables["user_locale"] = locale
    variables["response_language"] = language_name(locale)
    return variables


def user_prompt(loaded: LoadedAgent, validated: BaseModel) -> str:
    """What the model is asked: the question for chat agents, the input as JSON otherwise."""
    if isinstance(validated, TextInput):
        return validated.question
    return json.dumps(validated.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)


def _route_matches(when: Mapping[str, list[str] | str], run_input: Mapping[str, Any]) -> bool:
    for key, expected in when.items():
        value = run_locale(run_input) if key == "locale" else run_input.get(key)
        allowed = [expected] if isinstance(expected, str) else expected
        if str(value) not in allowed:
            return False
    return True


def route_model(loaded: LoadedAgent, run_input: Mapping[str, Any], settings: Settings) -> str:
    """The model for this run: `settings.model_override`, else the first matching route, else default."""
    if settings.model_override:
        return settings.model_override
    for route in loaded.spec.model.routes:
        if _route_matches(route.when, run_input):
            return route.model
    return loaded.spec.model.default


def resolve_model(name: str, settings: Settings) -> Model | None:
    """The model Keel builds itself for NAME, or None to let Pydantic AI infer it.

    `offline:*` are Keel's deterministic models; `openai:` and `openai-chat:` use
    `KEEL_OPENAI_BASE_URL` / `KEEL_OPENAI_API_KEY` when a base URL is set (any
    OpenAI-compatible server); everything else is Pydantic AI's own provider inference."""
    if name.startswith("offline:"):
        from keel.agents.offline import OfflineModel

        return OfflineModel(name)
    provider, _, model_name = name.partition(":")
    if provider in ("openai", "openai-chat") and settings.openai_base_url:
        from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
        from pydantic_ai.providers.openai import OpenAIProvider

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
        openai_provider = OpenAIProvider(base_url=settings.openai_base_url, api_key=key)
        if provider == "openai-chat":
            return OpenAIChatModel(model_name, provider=openai_provider)
        return OpenAIResponsesModel(model_name, provider=openai_provider)
    return None


def model_resolver(settings: Settings) -> ResolveModelId[RunDeps]:
    """The capability that turns model strings into models inside each model request, so a
    durable run carries only the string across its checkpoints."""

    def resolve(_ctx: ModelResolutionContext[RunDeps], model_id: str) -> Model | None:
        return resolve_model(model_id, settings)

    return ResolveModelId(resolve)


def _tool(t: ToolDef, max_retries: int) -> Tool[RunDeps]:
    if t.json_schema is not None:
        # generated from a registry schema (an HTTP operation, governed SQL): the control
        # plane's gate validates the arguments against the schema before the call
        tool: Tool[RunDeps] = Tool.from_schema(
            t.function, t.name, t.description or None, t.json_schema, takes_ctx=True
        )
        tool.requires_approval = t.requires_approval
        tool.max_retries = max_retries
        return tool
    return Tool(
        t.function,
        takes_ctx=True,
        name=t.name,
        description=t.description or None,
        requires_approval=t.requires_approval,
        max_retries=max_retries,
    )


def build_agent(
    loaded: LoadedAgent,
    settings: Settings,
    *,
    capabilities: Sequence[AbstractCapability[RunDeps]] = (),
    allow_deferred: bool = False,
) -> Agent[RunDeps, Any]:
    """The Pydantic AI agent for LOADED. Instructions and the routed model are given per run
    (`agent.run(instructions=…, model=…)`), so one agent serves every run of a spec version.
    With `allow_deferred` (or a tool that requires approval) a run may end with
    `DeferredToolRequests` instead of output, for the fabric to suspend on."""
    tools = [_tool(t, loaded.spec.retries.tool) for t in loaded.tools.values()]
    output: Any = loaded.output_type
    if allow_deferred or any(t.requires_approval for t in loaded.tools.values()):
        output = [loaded.output_type, DeferredToolRequests]
    return Agent(
        loaded.spec.model.default,
        output_type=output,
        deps_type=RunDeps,
        name=loaded.name,
        retries=loaded.spec.retries.output,
        tools=tools,
        model_settings=cast(ModelSettings, loaded.spec.model.settings) or None,
        capabilities=[model_resolver(settings), *capabilities],
    )
