"""The run lifecycle as a state machine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.errors import Conflict
from keel.fabric.states import (
    REDRIVABLE,
    TERMINAL,
    TRANSITIONS,
    RunStatus,
    can_transition,
    check_transition,
)


@given(st.lists(st.sampled_from(list(RunStatus)), max_size=30))
def test_a_terminal_run_only_ever_leaves_by_redrive(path: list[RunStatus]) -> None:
    current = RunStatus.QUEUED
    for target in path:
        if not can_transition(current, target):
            continue
        if current in TERMINAL:
            assert current in REDRIVABLE and target == RunStatus.QUEUED
        current = target


def test_every_status_can_reach_an_end() -> None:
    for status in RunStatus:
        reachable, frontier = {status}, [status]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in reachable:
                    reachable.add(nxt)
                    frontier.append(nxt)
        assert reachable & TERMINAL


def test_a_forbidden_transition_is_a_conflict_naming_the_run() -> None:
    with pytest.raises(Conflict, match="run_x is succeeded"):
        check_transition("run_x", RunStatus.SUCCEEDED, RunStatus.RUNNING)
