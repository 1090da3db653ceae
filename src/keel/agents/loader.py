"""Load an agent folder into a `LoadedAgent`, reporting every problem as `file:field: reason`.

A folder holds `agent.yaml`, a prompt file, optional `schema.py` (input/output models),
optional `tools.py` and `evals/`. Nothing is deployed from a folder with problems.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keel.agents.spec import AgentSpec
from keel.errors import SpecError, SpecProblem
from keel.settings import Settings

SPEC_FILE = "agent.yaml"
_IGNORED_SUFFIXES = (".pyc", ".db", ".sqlite", ".sqlite3", "-journal", "-wal", "-shm", ".tmp")


class TextInput(BaseModel):
    """The input of a chat agent (`input: text`). Unknown fields are refused, not dropped: a
    misspelt `locale` must not silently answer in the default language."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=32_000)
    locale: str | None = Field(default=None, max_length=35)  # a BCP 47 tag


@dataclass(frozen=True)
class ToolDef:
    """A tool an agent can be given. `json_schema` set: FUNCTION takes `(ctx, **arguments)`
    described by that schema (tools generated from a registry, e.g. an HTTP operation).
    `unavailable` set: naming the tool is an error with that reason ("is disabled")."""

    name: str
    function: Callable[..., Any]
    requires_approval: bool = False
    description: str = ""
    json_schema: dict[str, Any] | None = None
    unavailable: str | None = None


@dataclass
class LoadedAgent:
    spec: AgentSpec
    folder: Path
    version: str
    input_type: type[BaseModel]
    output_type: type[BaseModel] | type[str]
    tools: dict[str, ToolDef] = field(default_factory=dict)
    prompt_template: str = ""

    @property
    def name(self) -> str:
        return self.spec.name


def folder_version(folder: Path) -> str:
    """sha256 over the folder's files (relative path + bytes), ignoring caches and data files."""
    digest = hashlib.sha256()
    for path in sorted(_content_files(folder)):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _content_files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).parts
        if any(p.startswith(".") or p == "__pycache__" for p in rel):
            continue
        if path.is_file() and not path.name.endswith(_IGNORED_SUFFIXES):
            yield path


def _import_file(path: Path, module_name: str) -> ModuleType:
    parent = str(path.parent.parent)
    if parent not in sys.path:
        sys.path.append(parent)  # lets agent code import shared `_`-prefixed sibling folders
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _read_spec(folder: Path, problems: list[SpecProblem]) -> AgentSpec | None:
    path = folder / SPEC_FILE
    if not path.is_file():
        problems.append(SpecProblem(SPEC_FILE, "-", "file not found"))
        return None
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "-"
        problems.append(
            SpecProblem(SPEC_FILE, where, f"invalid YAML: {getattr(exc, 'problem', exc)}")
        )
        return None
    if not isinstance(raw, dict):
        problems.append(SpecProblem(SPEC_FILE, "-", "must be a mapping of fields"))
        return None
    try:
        return AgentSpec.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "-"
            problems.append(SpecProblem(SPEC_FILE, loc, err["msg"]))
        return None


def _optional_module(
    folder: Path, filename: str, key: str, problems: list[SpecProblem]
) -> ModuleType | None:
    path = folder / filename
    if not path.is_file():
        return None
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    try:
        return _import_file(path, f"keel_agent_{key}_{digest}")
    except Exception as exc:
        problems.append(SpecProblem(filename, "-", f"import failed: {type(exc).__name__}: {exc}"))
        return None


def _resolve_type(
    ref: str,
    field_name: str,
    schema: ModuleType | None,
    default: type[Any],
    problems: list[SpecProblem],
) -> type[Any] | None:
    if ref == "text":
        return default
    class_name = ref.removeprefix("schema:")
    if schema is None:
        problems.append(SpecProblem(SPEC_FILE, field_name, f"{ref} needs a schema.py"))
        return None
    cls = getattr(schema, class_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, BaseModel)):
        problems.append(
            SpecProblem(
                "schema.py", class_name, f"{field_name}: not a Pydantic model class in schema.py"
            )
        )
        return None
    try:
        cls.model_json_schema()
    except Exception as exc:
        problems.append(SpecProblem("schema.py", class_name, f"no JSON schema: {exc}"))
        return None
    return cls


def _resolve_tools(
    spec: AgentSpec,
    tools_module: ModuleType | None,
    tool_registry: Mapping[str, ToolDef] | None,
    problems: list[SpecProblem],
) -> dict[str, ToolDef]:
    resolved: dict[str, ToolDef] = {}
    for i, ref in enumerate(spec.tools):
        fn = getattr(tools_module, ref.name, None) if tools_module is not None else None
        if callable(fn) and tool_registry is not None and ref.name in tool_registry:
            problems.append(
                SpecProblem(
                    SPEC_FILE,
                    f"tools.{i}",
                    f"tool {ref.name!r} is defined in tools.py and in the deployment registry; "
                    "rename one",
                )
            )
        elif callable(fn):
            doc = inspect.getdoc(fn) or ""
            resolved[ref.name] = ToolDef(ref.name, fn, ref.requires_approval, doc.split("\n\n")[0])
        elif tool_registry is not None and ref.name in tool_registry:
            shared = tool_registry[ref.name]
            if shared.unavailable is not None:
                problems.append(
                    SpecProblem(SPEC_FILE, f"tools.{i}", f"tool {ref.name!r} {shared.unavailable}")
                )
                continue
            resolved[ref.name] = ToolDef(
                ref.name,
                shared.function,
                ref.requires_approval or shared.requires_approval,
                shared.description,
                shared.json_schema,
            )
        else:
            problems.append(
                SpecProblem(
                    SPEC_FILE,
                    f"tools.{i}",
                    f"unknown tool {ref.name!r} (not in tools.py or the registry)",
                )
            )
    return resolved


def load_agent(folder: Path, *, tool_registry: Mapping[str, ToolDef] | None = None) -> LoadedAgent:
    """Load and check one agent folder; raises `SpecError` listing every problem found."""
    folder = folder.resolve()
    problems: list[SpecProblem] = []
    if not folder.is_dir():
        raise SpecError([SpecProblem(str(folder), "-", "not a folder")])
    spec = _read_spec(folder, problems)
    key = spec.name.replace("-", "_") if spec else folder.name.replace("-", "_")
    schema = _optional_module(folder, "schema.py", f"{key}_schema", problems)
    tools_module = _optional_module(folder, "tools.py", f"{key}_tools", problems)
    if spec is None:
        raise SpecError(problems)
    prompt_path = folder / spec.prompt.file
    template = ""
    if not prompt_path.is_file():
        problems.append(
            SpecProblem(SPEC_FILE, "prompt.file", f"prompt file {spec.prompt.file!r} not found")
        )
    else:
        template = prompt_path.read_text()
        if not template.strip():
            problems.append(SpecProblem(spec.prompt.file, "-", "prompt file is empty"))
    input_type = _resolve_type(spec.input, "input", schema, TextInput, problems)
    output_type = _resolve_type(spec.output, "output", schema, str, problems)
    tools = _resolve_tools(spec, tools_module, tool_registry, problems)
    if problems:
        raise SpecError(problems)
    assert input_type is not None and output_type is not None
    return LoadedAgent(
        spec=spec,
        folder=folder,
        version=folder_version(folder),
        input_type=input_type,
        output_type=output_type,
        tools=tools,
        prompt_template=template,
    )


def is_agent_folder(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(("_", ".")) and (path / SPEC_FILE).is_file()


def discover_agents(
    dirs: list[Path], *, tool_registry: Mapping[str, ToolDef] | None = None
) -> dict[str, LoadedAgent]:
    """Every agent under DIRS (each DIR holds one sub-folder per agent, or is an agent folder).
    Raises `SpecError` with the problems of every invalid folder, prefixed by folder."""
    agents: dict[str, LoadedAgent] = {}
    problems: list[SpecProblem] = []
    for base in dirs:
        candidates = (
            [base]
            if is_agent_folder(base)
            else sorted(p for p in base.iterdir() if is_agent_folder(p))
            if base.is_dir()
            else []
        )
        for folder in candidates:
            try:
                loaded = load_agent(folder, tool_registry=tool_registry)
            except SpecError as exc:
                problems += [
                    SpecProblem(f"{folder.name}/{p.file}", p.field, p.reason) for p in exc.problems
                ]
                continue
            if loaded.name in agents:
                problems.append(
                    SpecProblem(
                        f"{folder.name}/{SPEC_FILE}",
                        "name",
                        f"duplicate agent name {loaded.name!r}",
                    )
                )
                continue
            agents[loaded.name] = loaded
    if problems:
        raise SpecError(problems)
    return agents


def bundled_examples() -> Path:
    """`examples/agents` of the source tree Keel is installed from (editable installs)."""
    return Path(__file__).resolve().parents[3] / "examples" / "agents"


def agent_dirs(settings: Settings) -> list[Path]:
    if settings.agents_dirs:
        return list(settings.agents_dirs)
    dirs = [Path("agents")] if Path("agents").is_dir() else []
    examples = Path("examples/agents")
    dirs.append(examples if examples.is_dir() else bundled_examples())
    return [d for d in dirs if d.is_dir()]
