"""The run lifecycle: statuses and the transitions between them.

    queued → running → waiting_approval → queued → running → … → succeeded
                    ↘ failed | cancelled | timed_out | blocked
    failed | timed_out → queued (re-drive)

`blocked` is a run whose output a blocking check refused: it finished, but nothing is
delivered. Terminal statuses never change again except by an explicit re-drive.
"""

from __future__ import annotations

from enum import StrEnum

from keel.errors import Conflict


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    BLOCKED = "blocked"


TERMINAL = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.TIMED_OUT,
        RunStatus.BLOCKED,
    }
)
REDRIVABLE = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT})
_ENDINGS = frozenset({RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT})

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING}) | _ENDINGS,
    RunStatus.RUNNING: frozenset(
        {RunStatus.WAITING_APPROVAL, RunStatus.SUCCEEDED, RunStatus.BLOCKED}
    )
    | _ENDINGS,
    RunStatus.WAITING_APPROVAL: frozenset({RunStatus.QUEUED}) | _ENDINGS,
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset({RunStatus.QUEUED}),
    RunStatus.CANCELLED: frozenset(),
    RunStatus.TIMED_OUT: frozenset({RunStatus.QUEUED}),
    RunStatus.BLOCKED: frozenset(),
}


def can_transition(current: RunStatus | str, target: RunStatus | str) -> bool:
    return RunStatus(target) in TRANSITIONS[RunStatus(current)]


def check_transition(run_id: str, current: RunStatus | str, target: RunStatus | str) -> None:
    """Raise `Conflict` naming the run when CURRENT may not become TARGET."""
    if not can_transition(current, target):
        raise Conflict(f"run {run_id} is {current}; it cannot become {target}")


def is_terminal(status: RunStatus | str) -> bool:
    return RunStatus(status) in TERMINAL
