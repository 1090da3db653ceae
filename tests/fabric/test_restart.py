"""A waiting approval survives the worker going away; the next worker finishes the run."""

from __future__ import annotations

import asyncio

from keel.fabric.catalog import AgentCatalog
from keel.fabric.service import Fabric
from keel.identity.keys import ensure_tenant
from keel.identity.principal import Principal
from keel.settings import Settings
from keel.store.database import Database
from tests.fabric.probe import effects


def _fabric(settings: Settings) -> Fabric:
    db = Database.from_settings(settings)
    db.upgrade()
    ensure_tenant(db, "t1")
    fab = Fabric(settings, db, AgentCatalog.load(settings, db))
    fab.start(execute=True)
    return fab


async def test_an_approval_survives_a_worker_restart(
    fabric_settings: Settings, alice: Principal
) -> None:
    first = await asyncio.to_thread(_fabric, fabric_settings)
    view = first.submit(alice, "payments", {"question": "Pay invoice INV-7 to Beta"})
    assert (await first.wait("t1", view.id, timeout=30)).status == "waiting_approval"
    await asyncio.to_thread(first.stop)
    first.db.dispose()

    second = await asyncio.to_thread(_fabric, fabric_settings)
    try:
        [approval] = second.approvals("t1", status="pending")
        second.approve("t1", approval.id, "bob")
        done = await second.wait("t1", view.id, timeout=30)
        assert done.status == "succeeded"
        assert effects().rows(fabric_settings.home, "SELECT count(*) FROM effects") == [(1,)]
    finally:
        await asyncio.to_thread(second.stop)
        second.db.dispose()
