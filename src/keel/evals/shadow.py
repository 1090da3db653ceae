"""Shadow runs: the candidate of a shadow rollout runs on the same input as each production
run, as a separate run whose output is stored and judged but never delivered.

`ShadowLauncher.on_finished` is a run-end listener. For a finished run that used the
rollout's baseline version (not an eval run, not itself a shadow) it submits the candidate:
same agent, same input, same principal, `prompt="<candidate>"`, the batch lane,
`parent_run_id` = the production run, and idempotency key `shadow:<run id>` — so a
repeated notification (a step re-executed after a crash) submits once. The shadow run has
no conversation and no turn, so nothing reaches the user; the production run and its
shadow are both queued for judging (`online_evals`), which is how the monitor compares
them on the same inputs.

Shadow runs execute their tools like any run (through the tool gate): shadow agents whose
tools have side effects only when the gate's policies make that safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keel.evals.canary import SHADOW_KEY_PREFIX
from keel.evals.fabric_runner import EVAL_TENANT
from keel.evals.online import OnlineQueue
from keel.evals.rollout import RolloutStore
from keel.store.database import Database
from keel.store.tables import Run

if TYPE_CHECKING:
    from keel.fabric.runs import RunView
    from keel.identity.principal import Principal

log = logging.getLogger(__name__)

Submit = Callable[..., "RunView"]


def shadow_key(run_id: str) -> str:
    return f"{SHADOW_KEY_PREFIX}{run_id}"


class ShadowLauncher:
    """Run-end listener submitting shadow runs. `bind(fabric)` gives it the fabric to submit
    to (the composition root does it once the fabric exists)."""

    def __init__(self, db: Database, queue: OnlineQueue) -> None:
        self.db = db
        self.queue = queue
        self.rollouts = RolloutStore(db)
        self._submit: Submit | None = None

    def bind(self, fabric: Any) -> None:
        self._submit = fabric.submit

    def on_finished(self, view: RunView) -> None:
        if not view.prompt_name or view.tenant_id == EVAL_TENANT or view.status == "cancelled":
            return
        if (view.idempotency_key or "").startswith(SHADOW_KEY_PREFIX):
            self.queue.enqueue(view.id, view.agent, "shadow")
            return
        if self._submit is None:
            return
        for rollout in self.rollouts.active_for_prompt(view.prompt_name):
            if not rollout.shadow or rollout.agent != view.agent:
                continue
            if (
                view.prompt_version != rollout.baseline_version
                or view.created_at < rollout.created_at
            ):
                continue
            shadow = self._submit(
                self._principal(view),
                view.agent,
                dict(view.input),
                prompt=str(rollout.candidate_version),
                lane="batch",
                parent_run_id=view.id,
                idempotency_key=shadow_key(view.id),
            )
            self.queue.enqueue(view.id, view.agent, "online")
            log.debug("shadow run %s of %s for rollout %s", shadow.id, view.id, rollout.id)
            return

    def _principal(self, view: RunView) -> Principal:
        """The production run's principal (its scopes matter to the tool gate)."""
        from keel.identity.principal import Principal

        with self.db.transaction() as s:
            stored = s.get(Run, view.id)
            data = dict(stored.principal) if stored is not None and stored.principal else {}
        if not data:
            return Principal(tenant_id=view.tenant_id, user_id=view.user_id)
        return Principal.model_validate(data)
