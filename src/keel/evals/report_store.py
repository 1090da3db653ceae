"""Persisted gate reports (`eval_reports`): save, get, and the PASS a promotion looks for."""

from __future__ import annotations

from sqlalchemy import select

from keel.errors import NotFound
from keel.evals.report import GateReport
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import EvalReport


class EvalReportStore:
    """Gate reports by id, and the latest PASS for an exact (prompt, versions, dataset)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, report: GateReport) -> GateReport:
        """Store the report (one row, one transaction) and return it with its new id."""
        stored = report.model_copy(update={"id": new_id("evr")})
        with self.db.transaction() as s:
            s.add(
                EvalReport(
                    id=stored.id,
                    agent=stored.agent,
                    prompt_name=stored.prompt_name,
                    candidate_version=stored.candidate_version,
                    baseline_version=stored.baseline_version,
                    dataset_version=stored.dataset_version,
                    config_hash=stored.config_hash,
                    verdict=stored.verdict,
                    report=stored.model_dump(mode="json"),
                    created_at=stored.created_at,
                )
            )
        return stored

    def get(self, report_id: str) -> GateReport:
        with self.db.transaction() as s:
            row = s.get(EvalReport, report_id)
            if row is None:
                raise NotFound("eval report", report_id)
            return GateReport.model_validate(row.report)

    def latest_pass(
        self,
        prompt_name: str,
        candidate_version: int,
        baseline_version: int,
        dataset_version: str,
        *,
        config_hash: str | None = None,
    ) -> GateReport | None:
        """The newest PASS report for exactly this comparison, or None."""
        q = (
            select(EvalReport)
            .where(
                EvalReport.prompt_name == prompt_name,
                EvalReport.candidate_version == candidate_version,
                EvalReport.baseline_version == baseline_version,
                EvalReport.dataset_version == dataset_version,
                EvalReport.verdict == "PASS",
            )
            .order_by(EvalReport.created_at.desc(), EvalReport.id.desc())
            .limit(1)
        )
        if config_hash is not None:
            q = q.where(EvalReport.config_hash == config_hash)
        with self.db.transaction() as s:
            row = s.scalars(q).first()
            return GateReport.model_validate(row.report) if row is not None else None

    def history(self, prompt_name: str, *, limit: int = 50) -> list[GateReport]:
        """The newest reports for a prompt, newest first."""
        with self.db.transaction() as s:
            rows = s.scalars(
                select(EvalReport)
                .where(EvalReport.prompt_name == prompt_name)
                .order_by(EvalReport.created_at.desc(), EvalReport.id.desc())
                .limit(limit)
            )
            return [GateReport.model_validate(r.report) for r in rows]
