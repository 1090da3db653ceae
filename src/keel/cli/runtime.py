"""Building the process's pieces for a CLI command, with errors turned into messages and exit
codes: an invalid agent folder prints every `file:field: reason` and exits 1."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from keel.agents.loader import agent_dirs
from keel.cli.console import fail
from keel.control.plane import install_control_plane
from keel.control.registry import deployment_tool_defs, load_deployment_tools
from keel.errors import KeelError, SpecError
from keel.evals.delivery import install_delivery
from keel.fabric.catalog import AgentCatalog
from keel.fabric.engine import Lane
from keel.fabric.extensions import FabricExtensions
from keel.fabric.service import Fabric
from keel.identity.keys import ensure_tenant
from keel.identity.principal import Principal
from keel.settings import Settings, get_settings
from keel.store.database import Database

DEV_TENANT = "dev"
CLI_USER = "cli"


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: AgentCatalog
    fabric: Fabric


def build_extensions(settings: Settings, db: Database, catalog: AgentCatalog) -> FabricExtensions:
    """What the other planes add to the fabric in this process. One line per plane."""
    extensions = FabricExtensions()
    # control plane (issue 5): the tool gate and the budget guard
    install_control_plane(extensions, settings, db, catalog)
    # evals (issue 6): run-time checks, canary routing, shadow runs, online sampling
    install_delivery(extensions, db, catalog)
    return extensions


def load_catalog(settings: Settings, db: Database) -> AgentCatalog:
    try:
        tools = deployment_tool_defs(load_deployment_tools(agent_dirs(settings)))
        return AgentCatalog.load(settings, db, tool_registry=tools)
    except SpecError as exc:
        fail("agent folders have problems:\n" + "\n".join(f"  {p}" for p in exc.problems))


@contextmanager
def runtime(
    *, execute: bool, settings: Settings | None = None, lanes: Sequence[Lane] | None = None
) -> Iterator[Runtime]:
    """Settings → migrated database → deployed agents → the fabric (executing workflows in
    this process when EXECUTE, from LANES or every lane); stopped on exit."""
    settings = settings or get_settings()
    db = Database.from_settings(settings)
    db.upgrade()
    catalog = load_catalog(settings, db)
    try:
        extensions = build_extensions(settings, db, catalog)
    except SpecError as exc:
        fail(
            "the control plane configuration has problems:\n"
            + "\n".join(f"  {p}" for p in exc.problems)
        )
    fabric = Fabric(settings, db, catalog, extensions=extensions)
    fabric.start(execute=execute, lanes=lanes)
    try:
        yield Runtime(settings, db, catalog, fabric)
    finally:
        fabric.stop()
        db.dispose()


def cli_principal(db: Database, tenant: str, user: str = CLI_USER) -> Principal:
    ensure_tenant(db, tenant)
    return Principal(tenant_id=tenant, user_id=user, scopes=("*",))


def run_or_fail(error: KeelError) -> None:
    fail(f"error: {error.message}")
