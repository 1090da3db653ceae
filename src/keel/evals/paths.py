"""Files an eval config names (dataset, rubric, JSON schema) must stay inside the agent folder.

An agent folder may come from a deploy, not only from a trusted checkout; a config that
says `rubric: ../../etc/passwd` must not ship a server file to a judge model.
"""

from __future__ import annotations

from pathlib import Path

from keel.errors import SpecError, SpecProblem


def inside(base_dir: Path | None, relative: str, *, source: str, field: str) -> Path:
    """`base_dir / relative`, refused (SpecError) when it is absolute or escapes `base_dir`."""
    base = (base_dir or Path(".")).resolve()
    candidate = (base / relative).resolve()
    if Path(relative).is_absolute() or not candidate.is_relative_to(base):
        raise SpecError(
            [SpecProblem(source, field, f"{relative!r} must be a path inside the agent folder")]
        )
    return candidate
