"""What the client raises. Every error response of the API is RFC 9457 problem+json; it
arrives here as an `APIError` subclass carrying the parsed `Problem`:

    KeelClientError
    ├── APIError                 the server answered with an error (`.status`, `.problem`)
    │   ├── AuthenticationError      401: missing, invalid, expired or revoked credentials
    │   ├── PermissionDeniedError    403: a scope is missing (the detail names it)
    │   ├── NotFoundError            404: no such resource *for you* (other tenants' look absent)
    │   ├── ConflictError            409: state forbids it (finished run, double texting, key in flight)
    │   ├── InvalidRequestError      422: `.errors` names each field (`body.input.question`)
    │   ├── RateLimitError           429: `.retry_after` seconds (raised once retries ran out)
    │   └── ServerError              5xx (raised once retries ran out)
    └── APIConnectionError       the server could not be reached, or a stream kept dropping

httpx's own exceptions never escape: they are converted here, at the boundary.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from keel.client.models import FieldError, Problem


class KeelClientError(Exception):
    """Base of everything the client raises on purpose."""


class APIConnectionError(KeelClientError):
    """No usable answer: the connection failed (after the retries the policy allows)."""


class APIError(KeelClientError):
    """An error response. `problem` is the server's problem+json (synthesised from the status
    when the body was not problem+json, e.g. from a proxy)."""

    def __init__(self, status: int, problem: Problem) -> None:
        super().__init__(f"{status} {problem.code}: {problem.detail or problem.title}")
        self.status = status
        self.problem = problem

    @property
    def code(self) -> str:
        return self.problem.code

    @property
    def errors(self) -> list[FieldError]:
        return list(self.problem.errors or [])


class AuthenticationError(APIError):
    pass


class PermissionDeniedError(APIError):
    pass


class NotFoundError(APIError):
    pass


class ConflictError(APIError):
    pass


class InvalidRequestError(APIError):
    pass


class RateLimitError(APIError):
    def __init__(self, status: int, problem: Problem, retry_after: float | None) -> None:
        super().__init__(status, problem)
        self.retry_after = retry_after


class ServerError(APIError):
    pass


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
}


def problem_of(response: httpx.Response, body: bytes) -> Problem:
    """The response's problem+json, or one made from its status when it has none."""
    try:
        data: Any = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict) and "status" in data and "code" in data:
        try:
            return Problem.model_validate(data)
        except ValueError:
            pass
    return Problem(
        type="about:blank",
        title=response.reason_phrase or "Error",
        status=response.status_code,
        detail=body.decode("utf-8", "replace")[:500] or None,
        code=f"http_{response.status_code}",
    )


def error_for(response: httpx.Response, body: bytes, retry_after: float | None) -> APIError:
    """The exception for an error RESPONSE whose body was BODY."""
    problem = problem_of(response, body)
    status = response.status_code
    if status == 429:
        return RateLimitError(status, problem, retry_after)
    if status >= 500:
        return ServerError(status, problem)
    return _BY_STATUS.get(status, APIError)(status, problem)
