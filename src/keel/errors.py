"""Domain exceptions. The core raises these with the facts; the API maps them to
RFC 9457 problem+json and the CLI to a message and an exit code.

KeelError
├── NotFound               a resource does not exist *for this principal*
├── Conflict               state forbids the operation (already terminal, double texting)
├── InvalidInput           bad input, naming the field
│   └── SpecError          an agent folder is invalid (a list of file:field: reason)
├── Unauthorized           no or bad credentials
├── Forbidden              authenticated, but not allowed
├── RateLimited            too many requests; carries retry_after seconds
├── IdempotencyMismatch    same Idempotency-Key, different request
└── BudgetExceeded         a budget blocks the operation
"""

from __future__ import annotations

from dataclasses import dataclass


class KeelError(Exception):
    """Base class of every error Keel raises on purpose."""

    code: str = "keel_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(KeelError):
    code = "not_found"

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class Conflict(KeelError):
    code = "conflict"


class InvalidInput(KeelError):
    """Bad input. `field` names the first bad field; `more` holds (field, reason) pairs for
    every further one, so a client fixes all of them in one round trip."""

    code = "invalid_input"

    def __init__(
        self, message: str, field: str | None = None, more: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.field = field
        self.more = more

    def field_problems(self) -> list[tuple[str, str]]:
        """Every (field, reason) this error carries, the first one first."""
        first = [(self.field, self.message)] if self.field else []
        return first + list(self.more)


@dataclass(frozen=True)
class SpecProblem:
    """One problem in an agent folder, printed as `file:field: reason`."""

    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.field}: {self.reason}"


class SpecError(InvalidInput):
    code = "invalid_spec"

    def __init__(self, problems: list[SpecProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class Unauthorized(KeelError):
    code = "unauthorized"


class Forbidden(KeelError):
    code = "forbidden"


class RateLimited(KeelError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyMismatch(KeelError):
    code = "idempotency_mismatch"


class BudgetExceeded(KeelError):
    code = "budget_exceeded"
