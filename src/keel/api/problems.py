"""RFC 9457 problem details: the one shape of every error the API returns.

`{"type", "title", "status", "detail", "instance", "code"}` plus `errors: [{"field",
"message"}]` for validation problems. Domain exceptions (`keel.errors`) are translated
here and nowhere else:

| exception            | status | notes                                              |
| -------------------- | ------ | -------------------------------------------------- |
| NotFound             | 404    | also for other tenants' and users' resources       |
| Conflict             | 409    |                                                    |
| InvalidInput         | 422    | `errors[0].field` names the field                  |
| IdempotencyMismatch  | 422    |                                                    |
| Unauthorized         | 401    | `WWW-Authenticate: Bearer realm="keel"`            |
| Forbidden            | 403    | names the missing scope                            |
| RateLimited          | 429    | `Retry-After` (whole seconds, rounded up)          |
| BudgetExceeded       | 402    | not 429: retrying soon will not help; a human must |
| anything else        | 500    | no internals in the body; logged with a reference  |
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel import errors
from keel.ids import new_id

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:keel:problem:"
"""Problem types are URNs: stable names that do not pretend to be a web page."""
REALM = 'Bearer realm="keel"'


class FieldError(BaseModel):
    """One invalid input: `field` is `body.agent`, `query.limit`, `path.conversation_id`, …"""

    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus a stable machine `code`."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "type": TYPE_BASE + "not_found",
                "title": "Not Found",
                "status": 404,
                "detail": "conversation 'conv_01…' not found",
                "instance": "/v1/conversations/conv_01…",
                "code": "not_found",
            }
        }
    )

    type: str = Field(description="A URI naming the problem type.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(default=None, description="The request path.")
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    errors: list[FieldError] | None = Field(
        default=None, description="Validation problems, one per field."
    )


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_DESCRIPTIONS = {
    401: "Missing, invalid, expired or revoked credentials.",
    402: "A budget blocks the operation.",
    403: "Authenticated, but a required scope is missing.",
    404: "No such resource for this principal (other tenants' resources are never revealed).",
    409: "The resource's state forbids the operation, or the Idempotency-Key is in flight.",
    413: "The request body is larger than the server accepts.",
    422: "Invalid input; `errors` names each field.",
    429: "Rate limited; retry after `Retry-After` seconds.",
    500: "Unexpected server error; nothing internal is revealed.",
    503: "This API process has no runtime to run agents (an embedding without a fabric).",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json answers for a route (+ 500)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in (*statuses, 500):
        entry: dict[str, Any] = {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, _TITLES.get(status, "Error")),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        responses[status] = entry
    return responses


_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'The challenge: `Bearer realm="keel"`.',
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until the request can succeed.",
            "schema": {"type": "integer"},
        }
    },
}


def only_problem_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop the `application/json` twin FastAPI adds next to each problem+json response."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if str(status)[0] in "45" and MEDIA_TYPE in content:
                    content.pop("application/json", None)
    return schema


def problem_body(
    status: int,
    code: str,
    detail: str | None,
    instance: str | None,
    field_errors: Sequence[FieldError] | None = None,
) -> dict[str, Any]:
    problem = Problem(
        type=TYPE_BASE + code,
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=instance,
        code=code,
        errors=list(field_errors) if field_errors else None,
    )
    return problem.model_dump(mode="json", exclude_none=True)


def problem_response(
    status: int,
    code: str,
    detail: str | None,
    instance: str | None = None,
    *,
    field_errors: Sequence[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, instance, field_errors),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _has_credentials(request: Request) -> bool:
    return "authorization" in request.headers or "x-api-key" in request.headers


def _keel_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.KeelError)
    path = request.url.path
    if isinstance(exc, errors.NotFound):
        return problem_response(404, exc.code, exc.message, path)
    if isinstance(exc, errors.InvalidInput):
        fields = [FieldError(field=f, message=m) for f, m in exc.field_problems()] or None
        return problem_response(422, exc.code, exc.message, path, field_errors=fields)
    if isinstance(exc, errors.IdempotencyMismatch):
        return problem_response(422, exc.code, exc.message, path)
    if isinstance(exc, errors.Unauthorized):
        challenge = REALM + (', error="invalid_token"' if _has_credentials(request) else "")
        return problem_response(
            401, exc.code, exc.message, path, headers={"WWW-Authenticate": challenge}
        )
    if isinstance(exc, errors.Forbidden):
        return problem_response(403, exc.code, exc.message, path)
    if isinstance(exc, errors.RateLimited):
        retry = str(max(1, math.ceil(exc.retry_after)))
        return problem_response(429, exc.code, exc.message, path, headers={"Retry-After": retry})
    if isinstance(exc, errors.BudgetExceeded):
        return problem_response(402, exc.code, exc.message, path)
    if isinstance(exc, errors.Conflict):
        return problem_response(409, exc.code, exc.message, path)
    return problem_response(400, exc.code, exc.message, path)


def in_body(exc: errors.InvalidInput, prefix: str = "body") -> errors.InvalidInput:
    """The core names fields relative to what it was given (`input.question`, `priority`);
    the API names them where the client put them (`body.input.question`)."""
    located = ("body.", "query.", "path.", "header.")
    if exc.field is None or exc.field.startswith(located):
        return exc

    def place(field: str) -> str:
        return field if field.startswith(located) else f"{prefix}.{field}"

    return errors.InvalidInput(
        exc.message, field=place(exc.field), more=tuple((place(f), m) for f, m in exc.more)
    )


def field_name(loc: Iterable[Any]) -> str:
    """`("body", "metadata", "a")` → `body.metadata.a`; list positions as `[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields: list[FieldError] = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            loc = ("body",)
        fields.append(FieldError(field=field_name(loc), message=str(err.get("msg", "invalid"))))
    detail = "; ".join(f"{f.field}: {f.message}" for f in fields[:5]) or "invalid request"
    return problem_response(422, "invalid_input", detail, request.url.path, field_errors=fields)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    401: "unauthorized",
    403: "forbidden",
    503: "unavailable",
}


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # The framework's "error parsing the body" (undecodable bytes): the same answer as
        # malformed JSON, a 422 naming the body.
        message = "the body could not be decoded as JSON"
        return problem_response(
            422,
            "invalid_input",
            message,
            request.url.path,
            field_errors=[FieldError(field="body", message=message)],
        )
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return problem_response(exc.status_code, code, detail, request.url.path, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    # Starlette's 405 names only the first matching route's methods; a path served by
    # several routes (GET and POST /v1/conversations) deserves the full list. Probing each
    # method works through included routers too.
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        probe = {**request.scope, "method": method}
        if any(r.matches(probe)[0] == Match.FULL for r in request.app.router.routes):
            allowed.append(method)
    return allowed


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through problem+json."""
    app.add_exception_handler(errors.KeelError, _keel_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(UnexpectedErrorMiddleware)


class UnexpectedErrorMiddleware:
    """Turns an unhandled exception into a bare 500 problem, logged with a reference.

    Pure ASGI (not `BaseHTTPMiddleware`), so streaming responses pass through untouched;
    if the response had already started, the exception propagates as usual.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            reference = new_id("err")
            log.exception("unhandled error %s on %s %s", reference, scope["method"], scope["path"])
            body = json.dumps(
                problem_body(
                    500,
                    "internal_error",
                    f"unexpected error; reference {reference}",
                    scope.get("path"),
                )
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", MEDIA_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
