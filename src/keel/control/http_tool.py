"""HTTP tools from OpenAPI: one operation of an OpenAPI 3 document becomes one tool.

The tool's arguments are the operation's path, query and header parameters by name, plus
`body` for a JSON request body; local `$ref`s are inlined. The call is made by the gate's
execution scope with an `httpx.AsyncClient` that carries the tool's credential (injected
from the vault when the tool runs — the model never sees it). A 4xx answer is a failure the
model sees and can adapt to (`ToolFailed`); a 5xx answer or a network error raises, so the
call is retried like any failing tool step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from pydantic_ai import RunContext
from pydantic_ai.exceptions import ToolFailed

from keel.agents.deps import RunDeps
from keel.control.registry import ToolEntry, ToolOptions, ToolSpec
from keel.errors import Forbidden, SpecError, SpecProblem

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
MAX_RESPONSE_CHARS = 100_000
_MAX_REF_DEPTH = 32


class HttpStatusError(Exception):
    """A 5xx answer: worth retrying."""


def _deref(node: Any, document: Mapping[str, Any], depth: int = 0) -> Any:
    """NODE with every local `$ref` inlined (cycles are refused)."""
    if depth > _MAX_REF_DEPTH:
        raise ValueError("$ref nesting too deep (recursive schemas are not supported)")
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                raise ValueError(f"only local $refs are supported, not {ref!r}")
            target: Any = document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, Mapping) or part not in target:
                    raise ValueError(f"$ref {ref!r} does not resolve")
                target = target[part]
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _deref(merged, document, depth + 1)
        return {k: _deref(v, document, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_deref(v, document, depth + 1) for v in node]
    return node


@dataclass(frozen=True)
class HttpOperation:
    """One OpenAPI operation: how to turn tool arguments into a request."""

    operation_id: str
    method: str
    path: str
    base_url: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    header_params: tuple[str, ...]
    has_body: bool
    input_schema: dict[str, Any]
    description: str

    @classmethod
    def from_document(
        cls, document: Mapping[str, Any], operation_id: str, *, base_url: str | None = None
    ) -> HttpOperation:
        """The operation with OPERATION_ID; ValueError naming what is wrong otherwise."""
        paths = document.get("paths")
        if not isinstance(paths, Mapping):
            raise ValueError("the document has no paths")
        for path, item in paths.items():
            if not isinstance(item, Mapping):
                continue
            for method in METHODS:
                op = item.get(method)
                if isinstance(op, Mapping) and op.get("operationId") == operation_id:
                    shared = list(item.get("parameters") or [])
                    return cls._build(document, str(path), method, op, shared, base_url)
        raise ValueError(f"no operation with operationId {operation_id!r}")

    @classmethod
    def _build(
        cls,
        document: Mapping[str, Any],
        path: str,
        method: str,
        op: Mapping[str, Any],
        shared: list[Any],
        base_url: str | None,
    ) -> HttpOperation:
        servers = document.get("servers") or []
        url = base_url or (
            servers[0].get("url") if servers and isinstance(servers[0], Mapping) else None
        )
        if not url:
            raise ValueError("no base_url and the document names no servers")
        params: dict[tuple[str, str], Mapping[str, Any]] = {}
        for raw in [*shared, *(op.get("parameters") or [])]:
            param = _deref(raw, document)
            params[(str(param.get("in")), str(param.get("name")))] = param
        properties: dict[str, Any] = {}
        required: list[str] = []
        groups: dict[str, list[str]] = {"path": [], "query": [], "header": []}
        for (where, name), param in params.items():
            if where not in groups:
                continue  # cookies are not sent by tools
            prop = dict(param.get("schema") or {"type": "string"})
            if param.get("description"):
                prop.setdefault("description", param["description"])
            properties[name] = prop
            groups[where].append(name)
            if param.get("required") or where == "path":
                required.append(name)
        body = _deref(op.get("requestBody"), document) if op.get("requestBody") else None
        has_body = False
        if isinstance(body, Mapping):
            content = body.get("content") or {}
            media = content.get("application/json")
            if isinstance(media, Mapping):
                has_body = True
                properties["body"] = dict(media.get("schema") or {"type": "object"})
                if body.get("required"):
                    required.append("body")
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = sorted(set(required))
        description = str(op.get("summary") or op.get("description") or f"{method.upper()} {path}")
        return cls(
            operation_id=str(op.get("operationId")),
            method=method.upper(),
            path=path,
            base_url=str(url).rstrip("/"),
            path_params=tuple(groups["path"]),
            query_params=tuple(groups["query"]),
            header_params=tuple(groups["header"]),
            has_body=has_body,
            input_schema=schema,
            description=description,
        )

    def request(self, client: httpx.AsyncClient, args: Mapping[str, Any]) -> httpx.Request:
        """The request for ARGS (already validated against `input_schema`) on CLIENT. A header
        argument never replaces one of the client's own headers (the injected credential)."""
        path = self.path
        for name in self.path_params:
            path = path.replace("{" + name + "}", quote(_text(args[name]), safe=""))
        params = {n: _text(args[n]) for n in self.query_params if args.get(n) is not None}
        own = {h.lower() for h in client.headers}
        headers = {
            n: _text(args[n])
            for n in self.header_params
            if args.get(n) is not None and n.lower() not in own
        }
        body = args.get("body") if self.has_body else None
        return client.build_request(
            self.method,
            self.base_url + path,
            params=params,
            headers=headers,
            json=_jsonable(body) if body is not None else None,
        )

    async def call(self, client: httpx.AsyncClient, args: Mapping[str, Any]) -> Any:
        response = await client.send(self.request(client, args))
        text = response.text
        if response.status_code >= 500:
            raise HttpStatusError(f"{self.method} {self.path} answered HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ToolFailed(
                f"{self.method} {self.path} answered HTTP {response.status_code}: {text[:500]}"
            )
        if "json" in response.headers.get("content-type", ""):
            try:
                return response.json()
            except json.JSONDecodeError:
                pass
        return text[:MAX_RESPONSE_CHARS]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def load_document(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read {path.name}: {exc}") from exc
    if not isinstance(data, Mapping) or not str(data.get("openapi", "")).startswith("3"):
        raise ValueError(f"{path.name} is not an OpenAPI 3 document")
    return data


def http_function(operation: HttpOperation, tool_name: str) -> Any:
    """The tool function: performs OPERATION with the client of the current execution scope
    (which carries the credential). Outside the gate's scope it refuses: an HTTP tool never
    runs ungoverned."""

    async def call_operation(ctx: RunContext[RunDeps], **arguments: Any) -> Any:
        from keel.control.scope import current_scope

        try:
            scope = current_scope()
        except Forbidden as exc:
            raise ToolFailed(f"{tool_name} can only run behind Keel's tool gate") from exc
        async with scope.http_client() as client:
            return await operation.call(client, arguments)

    call_operation.__name__ = tool_name
    return call_operation


def http_spec(entry: ToolEntry, options: ToolOptions, base: Path, where: str) -> ToolSpec:
    """A registry entry of kind http → a tool spec with a generated function."""
    rel = where.split(":", 1)[0]
    field = where.split(":", 1)[1] if ":" in where else "tools"
    if not entry.openapi or not entry.operation:
        raise SpecError(
            [SpecProblem(rel, f"{field}.openapi", "http tools need openapi and operation")]
        )
    try:
        document = load_document(base / entry.openapi)
        operation = HttpOperation.from_document(document, entry.operation, base_url=entry.base_url)
    except ValueError as exc:
        raise SpecError([SpecProblem(rel, f"{field}.operation", str(exc))]) from exc
    return ToolSpec(
        name=entry.name,
        kind="http",
        options=options,
        description=entry.description or operation.description,
        input_schema=operation.input_schema,
        source=where,
        function=http_function(operation, entry.name),
        schema_validated=False,
        auth=entry.auth,
        extra={"operation": operation, "timeout_seconds": entry.timeout_seconds},
    )


__all__ = ["HttpOperation", "HttpStatusError", "http_function", "http_spec", "load_document"]
