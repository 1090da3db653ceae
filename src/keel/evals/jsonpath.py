"""A small JSONPath subset for pointing scorers at a field: `$.a.b[0]`, `a.b`, `$['k'][-1]`.

Supported: the root `$` (optional), `.name`, `['name']` / `["name"]` and integer indexes
`[0]`, `[-1]`. No wildcards, slices, filters or recursive descent: a scorer names one
value, and a path that silently matched many would hide mistakes. Written here rather than
taken from a dependency because this subset is ~60 lines and fully tested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel.errors import InvalidInput

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")

Step = str | int


class PathNotFound(LookupError):
    """The path does not resolve in this document (a missing key or an index out of range)."""


@dataclass(frozen=True)
class JsonPath:
    """A parsed path; `find(doc)` walks it."""

    text: str
    steps: tuple[Step, ...]

    def find(self, doc: Any) -> Any:
        """The value at this path, or `PathNotFound` naming the first step that failed."""
        current = doc
        for depth, step in enumerate(self.steps):
            if isinstance(step, int):
                if isinstance(current, Sequence) and not isinstance(current, str | bytes):
                    try:
                        current = current[step]
                        continue
                    except IndexError:
                        pass
            elif isinstance(current, Mapping) and step in current:
                current = current[step]
                continue
            raise PathNotFound(f"{self.text}: nothing at {_render(self.steps[: depth + 1])}")
        return current

    def exists(self, doc: Any) -> bool:
        try:
            self.find(doc)
        except PathNotFound:
            return False
        return True


def _render(steps: Sequence[Step]) -> str:
    out = "$"
    for s in steps:
        out += f"[{s}]" if isinstance(s, int) else f".{s}"
    return out


def parse_path(text: str) -> JsonPath:
    """Parse `text`, raising `InvalidInput(field="path")` with the offending position."""
    src = text.strip()
    pos = 0
    steps: list[Step] = []
    if src.startswith("$"):
        pos = 1
    elif src and not src.startswith("["):
        m = _NAME.match(src)
        if m is None:
            raise InvalidInput(f"invalid path {text!r}: expected a name at position 0", "path")
        steps.append(m.group(0))
        pos = m.end()
    while pos < len(src):
        ch = src[pos]
        if ch == ".":
            m = _NAME.match(src, pos + 1)
            if m is None:
                raise InvalidInput(
                    f"invalid path {text!r}: expected a name after '.' at position {pos}", "path"
                )
            steps.append(m.group(0))
            pos = m.end()
            continue
        if ch == "[":
            mi = _INDEX.match(src, pos)
            if mi is not None:
                steps.append(int(mi.group(1)))
                pos = mi.end()
                continue
            mq = _QUOTED.match(src, pos)
            if mq is not None:
                raw = mq.group(1) if mq.group(1) is not None else mq.group(2)
                steps.append(re.sub(r"\\(.)", r"\1", raw))
                pos = mq.end()
                continue
        raise InvalidInput(f"invalid path {text!r}: unexpected {ch!r} at position {pos}", "path")
    return JsonPath(text=text, steps=tuple(steps))
