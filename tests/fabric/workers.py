"""Worker subprocesses for the crash and multi-worker tests, and the harness fixture: a fabric in
the test process that only submits (workers in other processes execute)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.fabric.catalog import AgentCatalog
from keel.fabric.service import Fabric
from keel.identity.keys import ensure_tenant
from keel.settings import Settings
from keel.store.database import Database
from tests.conftest import TEST_AGENTS

REPO = Path(__file__).resolve().parents[2]


def worker_env(settings: Settings, worker_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_ENV="test",
        KEEL_HOME=str(settings.home),
        KEEL_DATABASE_URL=settings.resolved_database_url,
        KEEL_AGENTS_DIRS=f'["{TEST_AGENTS}"]',
        KEEL_WORKER_ID=worker_id,
        KEEL_EVENT_NOTIFIER="local",
        # few runs at a time, so each worker life ends with work in flight
        KEEL_INTERACTIVE_CONCURRENCY="4",
        KEEL_TENANT_CONCURRENCY="4",
    )
    return env


class Worker:
    """A worker subprocess; `start` returns once it is executing."""

    def __init__(self, settings: Settings, worker_id: str, log: Path) -> None:
        self.settings, self.worker_id, self.log = settings, worker_id, log
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60) -> None:
        with self.log.open("a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.fabric.crash_worker"],
                cwd=REPO, env=worker_env(self.settings, self.worker_id),
                stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout) or self.proc.stdout.readline().strip() != "ready":
            raise AssertionError(f"worker {self.worker_id} did not start; see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def harness(fabric_settings: Settings) -> Iterator[tuple[Fabric, Settings]]:
    settings = fabric_settings.model_copy(
        update={"agents_dirs": [TEST_AGENTS], "event_notifier": "local"}
    )
    db = Database.from_settings(settings)
    db.upgrade()
    ensure_tenant(db, "t1")
    fab = Fabric(settings, db, AgentCatalog.load(settings, db))
    fab.start(execute=False)
    yield fab, settings
    fab.stop()
    db.dispose()
