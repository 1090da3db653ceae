"""Cedar policy text → one statement per policy, with the line it starts on.

cedarpy's parse errors carry no position ("invalid token"), so Keel splits a file into
statements itself (on `;` outside strings and `//` comments), parses each on its own, and finds
the failing line by parsing growing prefixes of the statement: the first prefix whose error is
no longer "unexpected end of input" ends on the offending line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cedarpy

from keel.errors import SpecProblem

_EOF = "unexpected end of input"
_BACKTICKED = re.compile(r"`([^`]+)`")
_POLICY_PREFIX = re.compile(r"^for policy `[^`]*`, ")


@dataclass(frozen=True)
class Statement:
    """One policy's source: the file, the 1-based line it starts on, and its text."""

    file: str
    line: int
    text: str

    def find_line(self, needle: str) -> int | None:
        """The first line of the statement whose code (not comment) contains `needle`."""
        for offset, text in enumerate(self.text.split("\n")):
            if needle in _strip_comment(text):
                return self.line + offset
        return None


def _strip_comment(line: str) -> str:
    in_string, escaped = False, False
    for i, ch in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif line.startswith("//", i):
            return line[:i]
    return line


def split_statements(text: str, file: str) -> list[Statement]:
    """Split on top-level `;`. Text after the last `;` that is not blank or a comment becomes a
    statement too (so a missing `;` is reported, not dropped)."""
    statements: list[Statement] = []
    start: int | None = None
    start_line = line = 1
    in_string = escaped = in_comment = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            line += 1
            in_comment = False
        elif in_comment:
            pass
        elif in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif text.startswith("//", i):
            in_comment = True
        elif not ch.isspace():
            if start is None:
                start, start_line = i, line
            if ch == '"':
                in_string = True
            elif ch == ";":
                statements.append(Statement(file, start_line, text[start : i + 1]))
                start = None
        i += 1
    if start is not None:
        statements.append(Statement(file, start_line, text[start:]))
    return statements


def parse_problem(statement: Statement) -> SpecProblem | None:
    """None if the statement parses; else a problem at the offending line."""
    try:
        cedarpy.PolicySet.from_str(statement.text)
        return None
    except ValueError as exc:
        message = str(exc)
    lines = statement.text.split("\n")
    for count in range(1, len(lines) + 1):
        try:
            cedarpy.PolicySet.from_str("\n".join(lines[:count]))
        except ValueError as exc:
            if str(exc) != _EOF:
                return SpecProblem(statement.file, str(statement.line + count - 1), str(exc))
    if message == _EOF:
        last = statement.line + len(lines) - 1
        return SpecProblem(statement.file, str(last), "unexpected end of input (missing ';'?)")
    return SpecProblem(statement.file, str(statement.line), message)


def located(statement: Statement, message: str) -> SpecProblem:
    """A validator message, placed on the line holding the first `token` it names."""
    message = _POLICY_PREFIX.sub("", message)
    for token in _BACKTICKED.findall(message):
        for needle in (token, token.rsplit("::", 1)[-1]):
            found = statement.find_line(needle) if needle else None
            if found is not None:
                return SpecProblem(statement.file, str(found), message)
    return SpecProblem(statement.file, str(statement.line), message)


__all__ = ["Statement", "located", "parse_problem", "split_statements"]
