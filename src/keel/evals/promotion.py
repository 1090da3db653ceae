"""Eval-gated promotion: the only way an alias like `production` moves, and how it moves back.

- `promote` moves an alias to a candidate version only when a stored PASS gate report exists
  for exactly that comparison — the prompt, the candidate, the baseline (the alias's version
  now), the dataset version and the eval config hash of the agent *as it is now*. Editing the
  dataset or the rubric after the eval invalidates the report. `force=True` skips the check
  and needs a reason, which goes to the audit ledger with everything else.
- `rollback` moves an alias back to the version it had before its last move. Moves that
  were themselves rollbacks are undone first, so rolling back twice goes two versions back
  (a stack, not a toggle).
- `set_alias` moves any other alias; `production` moves only by promotion, and the
  `<alias>-canary` aliases only by rollouts.
- Rollouts (`keel.evals.rollout`) start with the same PASS rule, and end promoted, stopped
  or rolled back by the monitor.

Every move is one transaction: the alias, its history row, a `prompt_promotions` row and an
audit ledger entry (kind `prompt_promotion` or `prompt_rollout`, global chain) commit
together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keel.control.ledger import AuditKind, Ledger
from keel.errors import Conflict, InvalidInput, NotFound
from keel.evals.registry import PromptRegistry
from keel.evals.report import GateReport
from keel.evals.report_store import EvalReportStore
from keel.evals.rollout import (
    CANARY_SUFFIX,
    Rollout,
    RolloutStatus,
    RolloutStore,
    RolloutThresholds,
    canary_alias,
)
from keel.evals.suite import EvalSuite
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import (
    PromptAlias,
    PromptAliasEvent,
    PromptPromotion,
    PromptRollout,
    PromptVersion,
)

PRODUCTION = "production"
ROLLOUT_KIND = "prompt_rollout"


class Action:
    PROMOTE = "promote"
    FORCE_PROMOTE = "force_promote"
    ROLLBACK = "rollback"
    ALIAS = "alias"
    ROLLOUT_START = "rollout_start"
    ROLLOUT_STOP = "rollout_stop"
    AUTO_ROLLBACK = "auto_rollback"


@dataclass(frozen=True)
class Evidence:
    """What a PASS report must have been computed on: the agent's eval suite right now."""

    agent: str
    prompt_name: str
    dataset_version: str
    config_hash: str

    @classmethod
    def of(cls, suite: EvalSuite, *, today: date | None = None) -> Evidence:
        return cls(
            agent=suite.agent,
            prompt_name=suite.prompt_name,
            dataset_version=suite.dataset(today=today).version,
            config_hash=suite.config_hash,
        )


@dataclass(frozen=True)
class AliasChange:
    """One recorded alias move."""

    id: str
    prompt_name: str
    alias: str
    action: str
    from_version: int | None
    to_version: int
    report_id: str | None
    actor: str
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, row: PromptPromotion) -> AliasChange:
        return cls(
            id=row.id,
            prompt_name=row.prompt_name,
            alias=row.alias,
            action=row.action,
            from_version=row.from_version,
            to_version=row.to_version,
            report_id=row.report_id,
            actor=row.actor,
            reason=row.reason,
            created_at=row.created_at,
        )


def _short(digest: str) -> str:
    return f"{digest[:12]}…"


def _require_reason(reason: str, what: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput(
            f"{what} needs a reason (--reason), written to the audit trail", field="reason"
        )
    return reason


class PromptPromotions:
    """Promote, roll back and set aliases; start and end rollouts — gated and audited."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.registry = PromptRegistry(db)
        self.reports = EvalReportStore(db)
        self.ledger = Ledger(db)
        self.rollouts = RolloutStore(db)

    # --- reading ----------------------------------------------------------------------------

    def newest_version(self, prompt_name: str) -> int:
        with self.db.transaction() as s:
            newest = s.scalar(
                select(func.max(PromptVersion.version)).where(
                    PromptVersion.prompt_name == prompt_name
                )
            )
        if newest is None:
            raise NotFound("prompt", prompt_name)
        return int(newest)

    def current(self, prompt_name: str, alias: str) -> int:
        aliases = self.registry.aliases(prompt_name)
        if alias not in aliases:
            raise NotFound("prompt alias", f"{prompt_name}@{alias}")
        return aliases[alias]

    def changes(
        self, prompt_name: str, alias: str | None = None, *, limit: int = 50
    ) -> list[AliasChange]:
        """The recorded moves, newest first."""
        q = select(PromptPromotion).where(PromptPromotion.prompt_name == prompt_name)
        if alias is not None:
            q = q.where(PromptPromotion.alias == alias)
        q = q.order_by(PromptPromotion.created_at.desc(), PromptPromotion.id.desc()).limit(limit)
        with self.db.transaction() as s:
            return [AliasChange.of(r) for r in s.scalars(q)]

    def require_pass(self, evidence: Evidence, candidate: int, baseline: int) -> GateReport:
        """The newest PASS report for exactly this comparison, or `Conflict` saying what to run."""
        found = self.reports.latest_pass(
            evidence.prompt_name,
            candidate,
            baseline,
            evidence.dataset_version,
            config_hash=evidence.config_hash,
        )
        if found is not None:
            return found
        hint = f"run `keel eval run {evidence.agent} --candidate {candidate}`"
        stale = [
            r
            for r in self.reports.history(evidence.prompt_name, limit=200)
            if r.passed and r.candidate_version == candidate and r.baseline_version == baseline
        ]
        message = (
            f"no PASS report for {evidence.prompt_name} v{candidate} vs v{baseline} on dataset "
            f"{_short(evidence.dataset_version)} with eval config {_short(evidence.config_hash)}"
        )
        if stale:
            newest = stale[0]
            changed = []
            if newest.dataset_version != evidence.dataset_version:
                changed.append(f"dataset {_short(newest.dataset_version)}")
            if newest.config_hash != evidence.config_hash:
                changed.append(f"eval config {_short(newest.config_hash)}")
            message += (
                f" (report {newest.id} passed on {' and '.join(changed)}, which changed since)"
            )
        raise Conflict(f"{message}; {hint}")

    def rollback_target(self, prompt_name: str, alias: str) -> tuple[int, int | None]:
        """(current version, the version a rollback moves to or None)."""
        with self.db.transaction() as s:
            return self._rollback_target(s, prompt_name, alias)

    def _rollback_target(self, s: Session, prompt_name: str, alias: str) -> tuple[int, int | None]:
        events = s.scalars(
            select(PromptAliasEvent)
            .where(PromptAliasEvent.prompt_name == prompt_name, PromptAliasEvent.alias == alias)
            .order_by(PromptAliasEvent.id)
        ).all()
        undone = set(
            s.scalars(
                select(PromptPromotion.alias_event_id).where(
                    PromptPromotion.prompt_name == prompt_name,
                    PromptPromotion.alias == alias,
                    PromptPromotion.action == Action.ROLLBACK,
                )
            )
        )
        stack: list[int] = []
        for e in events:
            if e.id in undone and len(stack) > 1:
                stack.pop()
                if stack[-1] != e.to_version:
                    stack.append(e.to_version)
                continue
            if not stack and e.from_version is not None:
                stack.append(e.from_version)
            stack.append(e.to_version)
        if not stack:
            raise NotFound("prompt alias", f"{prompt_name}@{alias}")
        return stack[-1], (stack[-2] if len(stack) > 1 else None)

    # --- moving aliases ---------------------------------------------------------------------

    def _lock_alias(self, s: Session, prompt_name: str, alias: str) -> PromptAlias | None:
        return s.scalars(
            select(PromptAlias)
            .where(PromptAlias.prompt_name == prompt_name, PromptAlias.alias == alias)
            .with_for_update()
        ).first()

    def _move(
        self,
        s: Session,
        *,
        prompt_name: str,
        alias: str,
        to_version: int,
        action: str,
        actor: str,
        reason: str,
        report: GateReport | None = None,
        ledger_kind: str = AuditKind.PROMPT_PROMOTION,
        extra: dict[str, Any] | None = None,
    ) -> AliasChange:
        row = s.get(PromptAlias, (prompt_name, alias))
        previous = row.version if row is not None else None
        event_id = self.registry.set_alias(
            prompt_name, alias, to_version, actor=actor, reason=f"{action}: {reason}", session=s
        )
        change = PromptPromotion(
            id=new_id("prm"),
            prompt_name=prompt_name,
            alias=alias,
            action=action,
            from_version=previous,
            to_version=to_version,
            report_id=report.id if report is not None else None,
            dataset_version=report.dataset_version if report is not None else None,
            alias_event_id=event_id,
            actor=actor,
            reason=reason,
            created_at=datetime.now(UTC),
        )
        s.add(change)
        data: dict[str, Any] = {
            "action": action,
            "prompt": prompt_name,
            "alias": alias,
            "from_version": previous,
            "to_version": to_version,
            "reason": reason,
            "forced": action == Action.FORCE_PROMOTE,
        }
        if report is not None:
            data |= {
                "report_id": report.id,
                "verdict": report.verdict,
                "dataset_version": report.dataset_version,
                "config_hash": report.config_hash,
            }
        data |= extra or {}
        self.ledger.append(
            actor=actor, kind=ledger_kind, subject=f"{prompt_name}@{alias}", data=data, session=s
        )
        s.flush()
        return AliasChange.of(change)

    def promote(
        self,
        evidence: Evidence,
        candidate: int | None = None,
        *,
        alias: str = PRODUCTION,
        actor: str,
        force: bool = False,
        reason: str = "",
    ) -> AliasChange:
        """Move ALIAS to CANDIDATE (default: the newest version) on a matching PASS report, or
        with FORCE and a REASON. An active rollout of the alias ends (promoted when it was
        rolling out this candidate, stopped otherwise)."""
        prompt = evidence.prompt_name
        version = candidate if candidate is not None else self.newest_version(prompt)
        self.registry.get(prompt, version)
        baseline = self.current(prompt, alias)
        if version == baseline:
            raise Conflict(f"{prompt}@{alias} is already v{version}")
        if alias.endswith(CANARY_SUFFIX):
            raise InvalidInput(f"{alias} is moved by rollouts only", field="alias")
        report = None
        if force:
            reason = _require_reason(reason, "a forced promotion")
        else:
            report = self.require_pass(evidence, version, baseline)
            reason = reason.strip() or f"PASS report {report.id}"
        with self.db.transaction(lock=True) as s:
            locked = self._lock_alias(s, prompt, alias)
            if locked is None or locked.version != baseline:
                raise Conflict(f"{prompt}@{alias} moved while promoting; run the command again")
            change = self._move(
                s,
                prompt_name=prompt,
                alias=alias,
                to_version=version,
                action=Action.FORCE_PROMOTE if force else Action.PROMOTE,
                actor=actor,
                reason=reason,
                report=report,
            )
            active = RolloutStore.active_row(s, prompt, alias)
            if active is not None:
                promoted = active.candidate_version == version
                self._end_rollout(
                    s,
                    active,
                    RolloutStatus.PROMOTED if promoted else RolloutStatus.STOPPED,
                    f"v{version} promoted"
                    if promoted
                    else f"superseded by the promotion of v{version}",
                    actor,
                    canary_to=version,
                )
        return change

    def set_alias(
        self, prompt_name: str, alias: str, version: int, *, actor: str, reason: str = ""
    ) -> AliasChange:
        """Point a non-production ALIAS at VERSION (recorded and audited)."""
        if alias == PRODUCTION:
            raise InvalidInput(
                f"{PRODUCTION} moves only by promotion: keel prompt promote {prompt_name} "
                f"--version {version}",
                field="alias",
            )
        if alias.endswith(CANARY_SUFFIX):
            raise InvalidInput(
                f"{alias} is moved by rollouts only (keel prompt canary)", field="alias"
            )
        self.registry.get(prompt_name, version)
        with self.db.transaction(lock=True) as s:
            self._lock_alias(s, prompt_name, alias)
            row = s.get(PromptAlias, (prompt_name, alias))
            if row is not None and row.version == version:
                raise Conflict(f"{prompt_name}@{alias} is already v{version}")
            return self._move(
                s,
                prompt_name=prompt_name,
                alias=alias,
                to_version=version,
                action=Action.ALIAS,
                actor=actor,
                reason=reason.strip() or "set by hand",
            )

    def rollback(
        self, prompt_name: str, *, alias: str = PRODUCTION, actor: str, reason: str
    ) -> AliasChange:
        """Move ALIAS back to its previous version (see the module docstring); an active
        rollout of it is stopped."""
        reason = _require_reason(reason, "a rollback")
        if alias.endswith(CANARY_SUFFIX):
            raise InvalidInput(f"{alias} is moved by rollouts only", field="alias")
        with self.db.transaction(lock=True) as s:
            self._lock_alias(s, prompt_name, alias)
            _, target = self._rollback_target(s, prompt_name, alias)
            if target is None:
                raise Conflict(f"{prompt_name}@{alias} has no earlier version to roll back to")
            change = self._move(
                s,
                prompt_name=prompt_name,
                alias=alias,
                to_version=target,
                action=Action.ROLLBACK,
                actor=actor,
                reason=reason,
            )
            active = RolloutStore.active_row(s, prompt_name, alias)
            if active is not None:
                self._end_rollout(
                    s, active, RolloutStatus.STOPPED, f"{alias} rolled back: {reason}", actor,
                    canary_to=target,
                )  # fmt: skip
        return change

    # --- rollouts ---------------------------------------------------------------------------

    def start_rollout(
        self,
        evidence: Evidence,
        candidate: int,
        *,
        percent: float,
        shadow: bool = False,
        thresholds: RolloutThresholds | None = None,
        alias: str = PRODUCTION,
        actor: str,
        force: bool = False,
        reason: str = "",
    ) -> Rollout:
        """Expose CANDIDATE to PERCENT % of ALIAS's users (sticky) and/or shadow it — on a
        matching PASS report, or with FORCE and a REASON."""
        prompt = evidence.prompt_name
        if not 0 <= percent < 100:
            raise InvalidInput(
                "percent must be at least 0 and below 100 (100 % is a promotion)", field="percent"
            )
        if percent == 0 and not shadow:
            raise InvalidInput(
                "a rollout needs a canary percent, --shadow, or both", field="percent"
            )
        self.registry.get(prompt, candidate)
        baseline = self.current(prompt, alias)
        if candidate == baseline:
            raise Conflict(f"{prompt}@{alias} is already v{candidate}")
        report = None
        if force:
            reason = _require_reason(reason, "a forced rollout")
        else:
            report = self.require_pass(evidence, candidate, baseline)
            reason = reason.strip() or f"PASS report {report.id}"
        limits = thresholds or RolloutThresholds()
        with self.db.transaction(lock=True) as s:
            locked = self._lock_alias(s, prompt, alias)
            if locked is None or locked.version != baseline:
                raise Conflict(f"{prompt}@{alias} moved meanwhile; run the command again")
            existing = RolloutStore.active_row(s, prompt, alias)
            if existing is not None:
                raise Conflict(
                    f"{prompt}@{alias} already has an active rollout {existing.id} of "
                    f"v{existing.candidate_version}; stop it first (keel prompt rollout stop)"
                )
            row = PromptRollout(
                id=new_id("rol"),
                agent=evidence.agent,
                prompt_name=prompt,
                alias=alias,
                baseline_version=baseline,
                candidate_version=candidate,
                percent=float(percent),
                shadow=shadow,
                thresholds=limits.model_dump(mode="json"),
                status=RolloutStatus.ACTIVE,
                reason=reason,
                report_id=report.id if report is not None else None,
                created_by=actor,
                created_at=datetime.now(UTC),
            )
            s.add(row)
            s.flush()
            self._move(
                s,
                prompt_name=prompt,
                alias=canary_alias(alias),
                to_version=candidate,
                action=Action.ROLLOUT_START,
                actor=actor,
                reason=f"rollout {row.id}: {percent:g}% canary{' + shadow' if shadow else ''}; {reason}",
                report=report,
                ledger_kind=ROLLOUT_KIND,
                extra={
                    "rollout_id": row.id,
                    "percent": percent,
                    "shadow": shadow,
                    "forced": force,
                    "thresholds": limits.model_dump(mode="json"),
                },
            )
            return Rollout.of(row)

    def stop_rollout(
        self, prompt_name: str, *, alias: str = PRODUCTION, actor: str, reason: str = ""
    ) -> Rollout:
        """End the active rollout by hand: every user is back on the alias's version."""
        with self.db.transaction(lock=True) as s:
            row = RolloutStore.active_row(s, prompt_name, alias)
            if row is None:
                raise NotFound("active rollout", f"{prompt_name}@{alias}")
            self._end_rollout(
                s, row, RolloutStatus.STOPPED, reason.strip() or "stopped by hand", actor,
                canary_to=row.baseline_version,
            )  # fmt: skip
            return Rollout.of(row)

    def roll_back_rollout(
        self, rollout_id: str, *, reasons: list[str], actor: str
    ) -> Rollout | None:
        """The monitor's automatic rollback: end the rollout `rolled_back` with REASONS (None
        when it had already ended)."""
        with self.db.transaction(lock=True) as s:
            row = s.scalars(
                select(PromptRollout).where(PromptRollout.id == rollout_id).with_for_update()
            ).first()
            if row is None or row.status != RolloutStatus.ACTIVE:
                return None
            self._end_rollout(
                s, row, RolloutStatus.ROLLED_BACK, "; ".join(reasons), actor,
                canary_to=row.baseline_version, action=Action.AUTO_ROLLBACK,
            )  # fmt: skip
            return Rollout.of(row)

    def _end_rollout(
        self,
        s: Session,
        row: PromptRollout,
        status: RolloutStatus,
        reason: str,
        actor: str,
        *,
        canary_to: int,
        action: str = Action.ROLLOUT_STOP,
    ) -> None:
        RolloutStore.end(s, row, status, reason, actor)
        extra = {"rollout_id": row.id, "status": str(status), "candidate": row.candidate_version}
        alias = canary_alias(row.alias)
        current = s.get(PromptAlias, (row.prompt_name, alias))
        if current is not None and current.version != canary_to:
            self._move(
                s,
                prompt_name=row.prompt_name,
                alias=alias,
                to_version=canary_to,
                action=action,
                actor=actor,
                reason=f"rollout {row.id} {status}: {reason}",
                ledger_kind=ROLLOUT_KIND,
                extra=extra,
            )
        else:
            self.ledger.append(
                actor=actor,
                kind=ROLLOUT_KIND,
                subject=f"{row.prompt_name}@{row.alias}",
                data={"action": action, "reason": reason, **extra},
                session=s,
            )
