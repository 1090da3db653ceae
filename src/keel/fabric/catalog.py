"""The deployed agents of this process: loading their folders, recording each spec version,
seeding prompts into the registry, and preparing the envelope of a run.

Deployment is idempotent and safe to run from several processes at once: a spec version is
the content hash of its folder, a prompt version is content-addressed, and the `production`
alias is only *seeded* (set when absent) — after that it moves only by promotion. The
`latest` alias always follows the prompt file, so `prompt: {alias: latest}` gives the
edit-and-rerun loop in development.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from keel.agents.builder import (
    prompt_variables,
    render_prompt,
    route_model,
    run_locale,
    user_prompt,
    validate_input,
)
from keel.agents.loader import LoadedAgent, ToolDef, agent_dirs, discover_agents
from keel.errors import NotFound
from keel.evals.registry import PromptRegistry

if TYPE_CHECKING:
    from keel.fabric.extensions import PromptRouter
from keel.settings import Settings
from keel.store.database import Database
from keel.store.tables import AgentVersion

SEED_ALIAS = "production"
FILE_ALIAS = "latest"
DEPLOY_ACTOR = "deploy"


@dataclass(frozen=True)
class PreparedRun:
    """Everything a run needs decided before it starts, recorded on its envelope."""

    agent: str
    spec_version: str
    input: dict[str, Any]
    locale: str
    prompt_name: str
    prompt_version: int
    instructions: str
    model: str
    user_prompt: str
    prompt_routed: bool = False


@dataclass(frozen=True)
class Deployed:
    agent: str
    spec_version: str
    prompt_name: str
    file_version: int
    aliases: dict[str, int] = field(default_factory=dict)


class AgentCatalog:
    """The agents this process serves, by name."""

    def __init__(self, settings: Settings, db: Database, agents: Mapping[str, LoadedAgent]) -> None:
        self.settings = settings
        self.db = db
        self.prompts = PromptRegistry(db)
        self._agents = dict(agents)

    @classmethod
    def load(
        cls,
        settings: Settings,
        db: Database,
        *,
        tool_registry: Mapping[str, ToolDef] | None = None,
        deploy: bool = True,
    ) -> AgentCatalog:
        """Discover the agents under the configured folders (raises `SpecError` listing every
        problem of every invalid folder) and, unless told not to, deploy them."""
        agents = discover_agents(agent_dirs(settings), tool_registry=tool_registry)
        catalog = cls(settings, db, agents)
        if deploy:
            catalog.deploy()
        return catalog

    def __iter__(self) -> Iterator[LoadedAgent]:
        return iter(self._agents[name] for name in sorted(self._agents))

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def names(self) -> list[str]:
        return sorted(self._agents)

    def exists(self, name: str) -> bool:
        return name in self._agents

    def get(self, name: str) -> LoadedAgent:
        try:
            return self._agents[name]
        except KeyError:
            raise NotFound("agent", name) from None

    def deploy(self) -> list[Deployed]:
        return [self._deploy_one(loaded) for loaded in self]

    def _deploy_one(self, loaded: LoadedAgent) -> Deployed:
        spec = loaded.spec
        for attempt in range(2):
            try:
                with self.db.transaction() as s:
                    exists = s.scalar(
                        select(AgentVersion.id).where(
                            AgentVersion.name == loaded.name,
                            AgentVersion.version == loaded.version,
                        )
                    )
                    if exists is None:
                        s.add(
                            AgentVersion(
                                name=loaded.name,
                                version=loaded.version,
                                spec=spec.model_dump(mode="json"),
                                source_dir=str(loaded.folder),
                            )
                        )
                break
            except IntegrityError:
                if attempt:
                    raise
        meta = {
            "model": spec.model.default,
            "settings": spec.model.settings,
            "file": spec.prompt.file,
        }
        version = self.prompts.push(
            spec.prompt_name,
            loaded.prompt_template,
            meta,
            created_by=DEPLOY_ACTOR,
            description=spec.description,
        )
        aliases = self.prompts.aliases(spec.prompt_name)
        if SEED_ALIAS not in aliases:
            self.prompts.set_alias(
                spec.prompt_name, SEED_ALIAS, version, actor=DEPLOY_ACTOR, reason="seeded from file"
            )
        self.prompts.set_alias(
            spec.prompt_name, FILE_ALIAS, version, actor=DEPLOY_ACTOR, reason="prompt file changed"
        )
        return Deployed(
            loaded.name, loaded.version, spec.prompt_name, version,
            self.prompts.aliases(spec.prompt_name),
        )  # fmt: skip

    def prepare(
        self,
        name: str,
        run_input: Mapping[str, Any],
        *,
        prompt: str | None = None,
        user_id: str = "",
        router: PromptRouter | None = None,
    ) -> PreparedRun:
        """Validate RUN_INPUT, resolve the prompt (PROMPT: an alias or a version number;
        default the spec's alias, which ROUTER may send to another version for this user —
        a canary), render the instructions and route the model."""
        loaded = self.get(name)
        validated = validate_input(loaded, run_input)
        clean = validated.model_dump(mode="json")
        ref = prompt or loaded.spec.prompt.alias
        routed = None
        if prompt is None and router is not None:
            routed = router.route(loaded, loaded.spec.prompt_name, ref, user_id)
        resolved = self.prompts.resolve(loaded.spec.prompt_name, str(routed) if routed else ref)
        variables = prompt_variables(loaded, clean)
        return PreparedRun(
            agent=loaded.name,
            spec_version=loaded.version,
            input=clean,
            locale=run_locale(clean),
            prompt_name=resolved.name,
            prompt_version=resolved.version,
            instructions=render_prompt(resolved.template, variables),
            model=route_model(loaded, clean, self.settings),
            user_prompt=user_prompt(loaded, validated),
            prompt_routed=routed is not None,
        )
