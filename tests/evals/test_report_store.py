from __future__ import annotations

from datetime import timedelta

import pytest

from keel.errors import NotFound
from keel.evals.report_store import EvalReportStore
from keel.store.database import Database

from .reports import report


async def test_reports_are_saved_and_read_back_unchanged(db: Database) -> None:
    store = EvalReportStore(db)
    r = await report("better")
    saved = store.save(r)
    assert saved.id is not None and saved.id.startswith("evr_")
    assert store.get(saved.id) == saved
    with pytest.raises(NotFound):
        store.get("evr_missing")


async def test_latest_pass_finds_the_newest_pass_for_exactly_this_comparison(db: Database) -> None:
    store = EvalReportStore(db)
    good = await report("better")
    bad = await report("gaming")
    old = store.save(good.model_copy(update={"created_at": good.created_at - timedelta(hours=1)}))
    new = store.save(good)
    store.save(bad.model_copy(update={"created_at": good.created_at + timedelta(hours=1)}))
    found = store.latest_pass("sales-card", 2, 1, good.dataset_version)
    assert found is not None and found.id == new.id != old.id
    assert found.matches(
        prompt_name="sales-card",
        candidate_version=2,
        baseline_version=1,
        dataset_version=good.dataset_version,
    )
    assert store.latest_pass("sales-card", 2, 1, "another-dataset") is None
    assert store.latest_pass("sales-card", 3, 1, good.dataset_version) is None
    assert store.latest_pass("sales-card", 2, 1, good.dataset_version, config_hash="0" * 64) is None
    assert (
        store.latest_pass("sales-card", 2, 1, good.dataset_version, config_hash=good.config_hash)
        is not None
    )
    assert [h.verdict for h in store.history("sales-card")] == ["FAIL", "PASS", "PASS"]
