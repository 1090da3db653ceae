"""Eval datasets: JSONL cases, their content-hash version, slices, and cases made from runs.

A case is one line: `{"id": "c1", "inputs": {...}, "expected": {...} | null,
"metadata": {"locale": "sv", ...}}`. Loading reports every bad line as `file:line: reason`
in one `SpecError`. The dataset version is the sha256 of the canonical JSON of its cases
sorted by id, so reformatting or reordering the file keeps the version and any change to
a case changes it: a gate report names the exact cases it was computed on.

Keel keeps its own case type rather than `pydantic_evals.Case`: the JSONL format needs
`file:line` errors and a required, unique `id` (pairing candidate and baseline outputs by
case), which `Dataset.from_file` (YAML/JSON, optional names) does not give.
`EvalDataset.to_pydantic_evals()` / `from_pydantic_evals()` convert both ways, so a team
can still use pydantic-evals tooling on the same cases.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keel.errors import SpecError, SpecProblem

if TYPE_CHECKING:  # pydantic_evals takes ~0.6 s to import: only the conversions need it
    from pydantic_evals import Dataset

PRIMARY_SLICE_KEY = "locale"


class EvalCase(BaseModel):
    """One eval case. `expected` is optional; `metadata` feeds slices (`locale` first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any]
    expected: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_is_trimmed(cls, v: str) -> str:
        if v != v.strip():
            raise ValueError("must not start or end with whitespace")
        return v

    def document(self) -> dict[str, Any]:
        """The case as a plain dict (`inputs`, `expected`, `metadata`, `id`) for path lookups."""
        return {
            "id": self.id,
            "inputs": self.inputs,
            "expected": self.expected,
            "metadata": self.metadata,
        }


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the byte form every hash in evals uses."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dataset_version(cases: Iterable[EvalCase]) -> str:
    """sha256 hex of the canonical JSON of the cases sorted by id."""
    docs = sorted((c.model_dump(mode="json") for c in cases), key=lambda d: d["id"])
    return hashlib.sha256(canonical_json(docs).encode()).hexdigest()


class EvalDataset(BaseModel):
    """An ordered set of cases with unique ids; `version` is its content hash."""

    model_config = ConfigDict(frozen=True)

    name: str
    cases: tuple[EvalCase, ...]
    source: str = ""

    @property
    def version(self) -> str:
        return dataset_version(self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    def case(self, case_id: str) -> EvalCase:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(case_id)

    def slice_keys(self) -> list[str]:
        """Metadata keys with scalar values on every case, `locale` first, then sorted."""
        if not self.cases:
            return []
        keys: set[str] | None = None
        for c in self.cases:
            scalar = {k for k, v in c.metadata.items() if isinstance(v, str | int | bool)}
            keys = scalar if keys is None else keys & scalar
        ordered = sorted(keys or set())
        if PRIMARY_SLICE_KEY in ordered:
            ordered.remove(PRIMARY_SLICE_KEY)
            ordered.insert(0, PRIMARY_SLICE_KEY)
        return ordered

    def slices(self, key: str) -> dict[str, list[str]]:
        """Slice value → case ids, for the cases whose metadata has `key`."""
        out: dict[str, list[str]] = {}
        for c in self.cases:
            if key in c.metadata and c.metadata[key] is not None:
                out.setdefault(str(c.metadata[key]), []).append(c.id)
        return dict(sorted(out.items()))

    def to_jsonl(self) -> str:
        """One canonical JSON line per case, in dataset order."""
        return "".join(canonical_json(c.model_dump(mode="json")) + "\n" for c in self.cases)

    def to_pydantic_evals(self) -> Dataset[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The same cases as a `pydantic_evals.Dataset` (case `name` = Keel `id`)."""
        from pydantic_evals import Case, Dataset

        return Dataset[dict[str, Any], dict[str, Any], dict[str, Any]](
            name=self.name,
            cases=[
                Case(
                    name=c.id,
                    inputs=dict(c.inputs),
                    expected_output=c.expected,
                    metadata=dict(c.metadata),
                )
                for c in self.cases
            ],
        )

    @classmethod
    def from_pydantic_evals(
        cls, dataset: Dataset[Any, Any, Any], *, name: str | None = None
    ) -> EvalDataset:
        """Adopt a pydantic-evals dataset: every case needs a unique name and dict inputs."""
        problems: list[SpecProblem] = []
        cases: list[EvalCase] = []
        for i, c in enumerate(dataset.cases):
            where = f"cases[{i}]"
            try:
                expected = c.expected_output
                if expected is not None and not isinstance(expected, Mapping):
                    expected = {"output": expected}
                cases.append(
                    EvalCase(
                        id=c.name or "",
                        inputs=c.inputs,
                        expected=expected,
                        metadata=c.metadata or {},
                    )
                )
            except ValidationError as e:
                problems.extend(_problems(dataset.name or "dataset", where, e))
        problems.extend(
            _duplicate_problems(
                dataset.name or "dataset", [(f"cases[{i}]", c) for i, c in enumerate(cases)]
            )
        )
        if problems:
            raise SpecError(problems)
        return cls(name=name or dataset.name or "dataset", cases=tuple(cases))


def _problems(file: str, where: str, error: ValidationError) -> list[SpecProblem]:
    out = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"])
        reason = f"{loc}: {err['msg']}" if loc else err["msg"]
        out.append(SpecProblem(file, where, reason))
    return out


def _duplicate_problems(file: str, located: list[tuple[str, EvalCase]]) -> list[SpecProblem]:
    first: dict[str, str] = {}
    out = []
    for where, c in located:
        if c.id in first:
            out.append(
                SpecProblem(file, where, f"id: duplicate case id {c.id!r} (first at {first[c.id]})")
            )
        else:
            first[c.id] = where
    return out


def parse_dataset(
    text: str, *, source: str = "cases.jsonl", name: str | None = None
) -> EvalDataset:
    """Parse JSONL text; every problem is reported as `source:line: reason` in one SpecError."""
    problems: list[SpecProblem] = []
    located: list[tuple[str, EvalCase]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = str(lineno)
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(
                SpecProblem(source, where, f"invalid JSON: {e.msg} at column {e.colno}")
            )
            continue
        if not isinstance(doc, dict):
            problems.append(
                SpecProblem(
                    source, where, f"a case must be a JSON object, got {type(doc).__name__}"
                )
            )
            continue
        try:
            located.append((where, EvalCase.model_validate(doc)))
        except ValidationError as e:
            problems.extend(_problems(source, where, e))
    problems.extend(_duplicate_problems(source, located))
    if not located and not problems:
        problems.append(SpecProblem(source, "1", "the dataset has no cases"))
    if problems:
        raise SpecError(problems)
    return EvalDataset(
        name=name or Path(source).stem, cases=tuple(c for _, c in located), source=source
    )


def load_dataset(path: str | Path, *, name: str | None = None) -> EvalDataset:
    """Read and parse a JSONL dataset file (UTF-8)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecProblem(str(p), "0", "dataset file not found")]) from None
    except UnicodeDecodeError as e:
        raise SpecError([SpecProblem(str(p), "0", f"not UTF-8: {e.reason}")]) from None
    return parse_dataset(text, source=str(p), name=name)


class RunSample(BaseModel):
    """The fields of a finished run that `cases_from_runs` reads (a plain dict is enough)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    input: dict[str, Any]
    output: dict[str, Any] | str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    feedback: dict[str, Any] | None = None
    agent: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None


_THUMBS_UP = {"up", "thumbs_up", "+1", "positive", "good"}


def cases_from_runs(
    runs: Iterable[Mapping[str, Any]], *, only_with_feedback: bool = False
) -> list[EvalCase]:
    """Turn finished runs into eval cases ("learn from prod").

    The run input becomes `inputs`; the output becomes `expected` only when the feedback was
    thumbs-up (a string output is stored as `{"output": text}`); the feedback, the run id
    and the prompt version go into `metadata`, and a `locale` in the metadata or the input
    is kept as the slice key. Runs without output are skipped.
    """
    cases = []
    for raw in runs:
        run = RunSample.model_validate(raw)
        if run.output is None:
            continue
        if only_with_feedback and not run.feedback:
            continue
        rating = str((run.feedback or {}).get("rating", "")).lower()
        expected: dict[str, Any] | None = None
        if rating in _THUMBS_UP:
            expected = run.output if isinstance(run.output, dict) else {"output": run.output}
        metadata: dict[str, Any] = dict(run.metadata)
        locale = metadata.get("locale", run.input.get("locale"))
        if locale is not None:
            metadata["locale"] = locale
        metadata["source_run_id"] = run.id
        if run.feedback is not None:
            metadata["feedback"] = {
                "rating": rating,
                "text": str(run.feedback.get("text", "")),
            }
        if run.prompt_name is not None:
            metadata["prompt"] = f"{run.prompt_name}@{run.prompt_version}"
        cases.append(EvalCase(id=run.id, inputs=run.input, expected=expected, metadata=metadata))
    return cases
