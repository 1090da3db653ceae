"""A `keel worker` for the crash and multi-worker tests, configured from KEEL_* variables, with
one addition: every offline model invocation is logged (workflow id, step id, time) to the
probe database, so the tests can prove no completed model call ran twice."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from dbos import DBOS

from keel.agents import offline
from keel.fabric.catalog import AgentCatalog
from keel.fabric.service import Fabric
from keel.settings import Settings
from keel.store.database import Database


def main() -> None:
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    log = sqlite3.connect(
        settings.home / "probe.db", timeout=30, isolation_level=None, check_same_thread=False
    )
    log.execute("PRAGMA journal_mode=WAL")
    log.execute(
        "CREATE TABLE IF NOT EXISTS model_calls (workflow_id TEXT, step_id INTEGER, worker TEXT, at REAL)"
    )
    lock = threading.Lock()
    real = offline.respond

    def logged(messages: Any, info: Any) -> Any:
        with lock:
            log.execute(
                "INSERT INTO model_calls VALUES (?, ?, ?, ?)",
                (DBOS.workflow_id, DBOS.step_id, settings.worker_id, time.time()),
            )
        return real(messages, info)

    offline.respond = logged
    db = Database.from_settings(settings)
    fabric = Fabric(settings, db, AgentCatalog.load(settings, db, deploy=False))
    fabric.start(execute=True)
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
