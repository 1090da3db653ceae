from __future__ import annotations

import re

import pytest

from keel.evals.render import ci_svg, render_html, render_json, render_text
from keel.evals.report import GateReport, MetricSummary

from .reports import report


@pytest.mark.parametrize("kind", ["better", "gaming"])
async def test_text_report_is_plain_fixed_width_and_complete(kind: str) -> None:
    r = await report(kind)
    text = render_text(r)
    assert "\x1b[" not in text  # no colour codes
    assert max(len(line) for line in text.splitlines()) <= 100
    assert f"GATE {r.verdict}" in text
    for m in r.metrics:
        assert m.name in text
    for t in r.tripwires:
        assert t.name in text
    assert r.dataset_version[:12] in text and r.config_hash[:12] in text
    if kind == "gaming":
        assert "FIRED  gaming" in text


async def test_json_round_trips_to_the_same_report() -> None:
    r = await report("gaming")
    assert GateReport.model_validate_json(render_json(r)) == r


@pytest.mark.parametrize("kind", ["better", "gaming", "worse"])
async def test_html_is_self_contained_with_an_svg_per_metric(kind: str) -> None:
    r = await report(kind)
    page = render_html(r)
    assert "http" not in page.lower()
    assert "<link" not in page and "<script" not in page and "src=" not in page
    assert page.count("<svg") == len(r.metrics)
    assert f'class="verdict {r.verdict}"' in page
    for m in r.metrics:
        assert f'aria-label="{m.name}:' in page
    assert r.dataset_version in page and r.config_hash in page


async def test_html_escapes_everything_it_did_not_write() -> None:
    r = await report("better")
    r.reasons.append("<script>alert(1)</script>")
    r.cases[0].candidate_preview = "<img src=x onerror=alert(1)>"
    page = render_html(r)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page


def test_ci_plot_puts_zero_and_the_interval_on_one_axis() -> None:
    m = MetricSummary(
        name="judge", kind="judge", oracle=False, n=10, baseline_mean=0.5, candidate_mean=0.6,
        delta=0.1, ci_low=0.05, ci_high=0.15, p_value=0.01, p_holm=0.02, direction="better",
    )  # fmt: skip
    svg = ci_svg(m, width=200)
    zero = float(re.search(r'<line x1="([\d.]+)" y1="6"', svg).group(1))  # type: ignore[union-attr]
    dot = float(re.search(r'<circle cx="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    rect = float(re.search(r'<rect x="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert zero < rect < dot  # the whole interval lies right of zero
    empty = ci_svg(MetricSummary(name="x", kind="scorer", oracle=True, n=0))
    assert "no paired cases" in empty
