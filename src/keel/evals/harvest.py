"""Eval cases from production: finished runs (and the feedback on their turns) → JSONL cases.

`harvest_cases` reads an agent's succeeded runs — not eval runs, not shadow runs — newest
first, attaches the newest feedback given on each run's turn (feedback is kept per turn,
and a run knows its `turn_id`), and hands them to `cases_from_runs`: the run input becomes
the case's `inputs`, and the output becomes `expected` when the feedback was thumbs-up.
`merge_cases` adds them to an existing dataset file, skipping ids it already holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select

from keel.evals.dataset import EvalCase, EvalDataset, canonical_json, cases_from_runs, parse_dataset
from keel.evals.fabric_runner import EVAL_TENANT
from keel.store.database import Database
from keel.store.tables import Feedback, Run

FeedbackFilter = Literal["up", "down", "any", "none"]


def run_samples(
    db: Database,
    agent: str,
    *,
    since: datetime | None = None,
    feedback: FeedbackFilter = "none",
    limit: int = 200,
    tenant_id: str | None = None,
) -> list[dict[str, Any]]:
    """The agent's succeeded production runs as `cases_from_runs` reads them, newest first.
    FEEDBACK `up`/`down` keeps runs whose turn's newest feedback has that rating, `any` runs
    with feedback, `none` every run."""
    q = select(Run).where(
        Run.agent == agent,
        Run.status == "succeeded",
        Run.tenant_id != EVAL_TENANT,
        or_(Run.idempotency_key.is_(None), ~Run.idempotency_key.startswith("shadow:")),
    )
    if tenant_id is not None:
        q = q.where(Run.tenant_id == tenant_id)
    if since is not None:
        q = q.where(Run.created_at >= since)
    if feedback != "none":
        q = q.where(Run.turn_id.is_not(None))
    q = q.order_by(Run.created_at.desc(), Run.id.desc())
    out: list[dict[str, Any]] = []
    with db.transaction() as s:
        for run in s.scalars(q.execution_options(yield_per=200)):
            rating = None
            if run.turn_id is not None:
                rating = s.scalars(
                    select(Feedback)
                    .where(
                        and_(Feedback.turn_id == run.turn_id, Feedback.tenant_id == run.tenant_id)
                    )
                    .order_by(Feedback.updated_at.desc())
                    .limit(1)
                ).first()
            if feedback in ("up", "down") and (rating is None or rating.rating != feedback):
                continue
            if feedback == "any" and rating is None:
                continue
            output = run.output or {}
            out.append(
                {
                    "id": run.id,
                    "input": dict(run.input),
                    "output": output.get("data")
                    if output.get("type") == "object"
                    else output.get("text"),
                    "feedback": {"rating": rating.rating, "text": rating.text} if rating else None,
                    "agent": run.agent,
                    "prompt_name": run.prompt_name,
                    "prompt_version": run.prompt_version,
                }
            )
            if len(out) >= limit:
                break
    return out


def harvest_cases(
    db: Database,
    agent: str,
    *,
    since: datetime | None = None,
    feedback: FeedbackFilter = "none",
    limit: int = 200,
    tenant_id: str | None = None,
) -> list[EvalCase]:
    """Eval cases from the agent's runs (see the module docstring)."""
    samples = run_samples(
        db, agent, since=since, feedback=feedback, limit=limit, tenant_id=tenant_id
    )
    return cases_from_runs(samples, only_with_feedback=feedback != "none")


def merge_cases(existing: str | None, new: Sequence[EvalCase], *, source: str) -> tuple[str, int]:
    """EXISTING JSONL text plus the NEW cases whose ids it does not hold; (text, added).
    The result is parsed back, so a file that would not load is never written."""
    kept = parse_dataset(existing, source=source).cases if existing and existing.strip() else ()
    seen = {c.id for c in kept}
    added = [c for c in new if c.id not in seen]
    if not added:
        return existing or "", 0
    text = (existing or "").rstrip("\n")
    lines = [canonical_json(c.model_dump(mode="json")) for c in added]
    merged = "\n".join([text, *lines] if text else lines) + "\n"
    EvalDataset(name=source, cases=parse_dataset(merged, source=source).cases)
    return merged, len(added)
