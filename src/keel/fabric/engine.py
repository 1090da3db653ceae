"""DBOS Transact as Keel's durable execution engine: configuration, queues (lanes), launch.

Keel and DBOS share one database: on SQLite one file (Keel's tables and DBOS's system tables
side by side), on PostgreSQL one database with DBOS in the `dbos` schema. That is what lets a
run's envelope and its DBOS workflow be created in one transaction
(`DBOSClient.enqueue_in_transaction`): a submit either fully happens or not at all.

A process that only submits (`keel serve`) uses the client and never launches DBOS; a process
that executes (`keel worker`, `keel up`) launches it, listens to the lane queues and recovers
the workflows its executor id left unfinished.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dbos import DBOS, DBOSClient, DBOSConfig
from dbos._enqueue_options import EnqueueOptions
from sqlalchemy.orm import Session

from keel import __version__
from keel.settings import Settings
from keel.store.database import Database

APP_NAME = "keel"
APP_VERSION = f"keel-{__version__}"
RUN_WORKFLOW = "keel.run"
SWEEP_WORKFLOW = "keel.sweep"
SYSTEM_SCHEMA = "dbos"


class Lane(StrEnum):
    INTERACTIVE = "interactive"
    BATCH = "batch"

    @property
    def queue(self) -> str:
        return f"keel-{self.value}"


@dataclass(frozen=True)
class LaneConfig:
    worker_concurrency: int
    tenant_concurrency: int
    polling_interval_sec: float


def lane_configs(settings: Settings) -> dict[Lane, LaneConfig]:
    return {
        Lane.INTERACTIVE: LaneConfig(
            settings.interactive_concurrency,
            settings.tenant_concurrency,
            settings.interactive_poll_seconds,
        ),
        Lane.BATCH: LaneConfig(
            settings.batch_concurrency, settings.tenant_concurrency, settings.batch_poll_seconds
        ),
    }


def segment_workflow_id(run_id: str, segment: int) -> str:
    """Segment 0 runs under the run id itself, later segments under `<run>.s<n>`, so enqueueing
    a segment twice finds the first."""
    return run_id if segment == 0 else f"{run_id}.s{segment}"


class DurableEngine:
    """The process's handle on DBOS: always a client (enqueue, cancel, fork, inspect); a
    launched executor when this process runs workflows."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.executing = False
        self._client: DBOSClient | None = None

    def migrate(self) -> None:
        """Create or upgrade DBOS's system tables (idempotent, safe from several processes)."""
        DBOS.migrate(self.db.url, schema=SYSTEM_SCHEMA)

    @property
    def client(self) -> DBOSClient:
        if self._client is None:
            self._client = DBOSClient(
                system_database_engine=self.db.engine,
                dbos_system_schema=SYSTEM_SCHEMA,
                application_name=APP_NAME,
            )
        return self._client

    def launch(self, lanes: Sequence[Lane] | None = None) -> None:
        """Start executing: register Keel's workflows, launch DBOS, listen to LANES (all by
        default; a worker that serves one lane does not poll the other)."""
        from keel.fabric import workflow  # noqa: F401  (registers the workflows)

        logging.getLogger("dbos").setLevel(self.settings.dbos_log_level)
        config: DBOSConfig = {
            "name": APP_NAME,
            "system_database_engine": self.db.engine,
            "dbos_system_schema": SYSTEM_SCHEMA,
            "application_version": APP_VERSION,
            "executor_id": self.settings.worker_id,
            "log_level": self.settings.dbos_log_level,
            # Keel waits on its own notifier, not on DBOS notifications, so this poller has
            # nothing to query; but it sleeps this long between looks, and shutdown waits for it
            # (at 1 s, every `keel eval run` and worker stop spent a second here)
            "notification_listener_polling_interval_sec": 0.1,
            "scheduler_polling_interval_sec": 5.0,
        }
        DBOS(config=config)
        DBOS.listen_queues([lane.queue for lane in (lanes or list(Lane))])
        DBOS.launch()
        for lane, cfg in lane_configs(self.settings).items():
            DBOS.register_queue(
                lane.queue,
                worker_concurrency=cfg.worker_concurrency,
                partition_concurrency=cfg.tenant_concurrency,
                polling_interval_sec=cfg.polling_interval_sec,
            )
        self.executing = True

    def shutdown(self) -> None:
        if self._client is not None:
            self._client.destroy()
            self._client = None
        if self.executing:
            DBOS.destroy(destroy_registry=False)
            self.executing = False

    def enqueue(
        self,
        session: Session,
        *,
        run_id: str,
        segment: int,
        lane: str,
        priority: int,
        tenant_id: str,
        workflow_id: str,
    ) -> None:
        """Enqueue a run segment inside SESSION's transaction (it exists iff that commits)."""
        options: EnqueueOptions = {
            "workflow_name": RUN_WORKFLOW,
            "queue_name": Lane(lane).queue,
            "workflow_id": workflow_id,
            "app_version": APP_VERSION,
            "priority": priority,
            "queue_partition_key": tenant_id,
        }
        self.client.enqueue_in_transaction(session, options, run_id, segment)

    def cancel(self, workflow_id: str) -> None:
        self.client.cancel_workflow(workflow_id)

    def delete(self, workflow_id: str) -> None:
        """Forget an ended workflow: its status, inputs and every step checkpoint."""
        self.client.delete_workflow(workflow_id)

    def fork(self, workflow_id: str, start_step: int, lane: str, tenant_id: str) -> str:
        """Re-run WORKFLOW_ID from START_STEP under a new id, reusing every earlier step's
        recorded result; returns the new workflow id."""
        handle: Any = self.client.fork_workflow(
            workflow_id,
            start_step,
            application_version=APP_VERSION,
            queue_name=Lane(lane).queue,
            queue_partition_key=tenant_id,
        )
        return str(handle.get_workflow_id())

    def result(self, workflow_id: str) -> Any:
        """Block until the workflow has finished (its last step recorded) and return its result."""
        handle: Any = self.client.retrieve_workflow(workflow_id)
        return handle.get_result(polling_interval_sec=0.05)

    def steps(self, workflow_id: str) -> list[dict[str, Any]]:
        return [dict(s) for s in self.client.list_workflow_steps(workflow_id)]

    def status(self, workflow_id: str) -> str | None:
        """DBOS's status of a workflow (ENQUEUED, PENDING, SUCCESS, ERROR, CANCELLED, …)."""
        try:
            handle: Any = self.client.retrieve_workflow(workflow_id)
            return str(handle.get_status().status)
        except Exception:
            return None
