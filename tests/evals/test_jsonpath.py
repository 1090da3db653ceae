from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.errors import InvalidInput
from keel.evals.jsonpath import PathNotFound, parse_path

DOC = {"a": {"b": [10, {"c": "deep"}], "with space": 1, "dash-key": 2}, "list": [1, 2, 3]}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", DOC),
        ("$.a.b[0]", 10),
        ("a.b[1].c", "deep"),
        ("$.list[-1]", 3),
        ("$['a']['with space']", 1),
        ('$.a["dash-key"]', 2),
        ("$.a.dash-key", 2),
        ("[1]", None),
    ],
)
def test_paths_find_their_value(path: str, value: object) -> None:
    if path == "[1]":
        assert parse_path(path).find([None, None]) is None
    else:
        assert parse_path(path).find(DOC) == value


@pytest.mark.parametrize("path", ["$.a.x", "$.list[5]", "$.a.b[0].c", "$.list.a"])
def test_missing_steps_raise_path_not_found(path: str) -> None:
    with pytest.raises(PathNotFound):
        parse_path(path).find(DOC)
    assert not parse_path(path).exists(DOC)


@pytest.mark.parametrize("path", ["$.", "$..a", "$.a[*]", "$[1:2]", "a b", "$.a[?(@.x)]", "1abc"])
def test_unsupported_syntax_is_rejected_with_a_position(path: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_path(path)
    assert err.value.field == "path"


_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@given(st.lists(st.one_of(_name, st.integers(0, 5)), max_size=6))
def test_a_built_path_finds_what_was_put_there(steps: list[str | int]) -> None:
    doc: object = "leaf"
    for step in reversed(steps):
        doc = {step: doc} if isinstance(step, str) else [None] * step + [doc]
    text = "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)
    assert parse_path(text).find(doc) == "leaf"
