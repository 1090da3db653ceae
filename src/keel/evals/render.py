"""Render a gate report as a fixed-width terminal table, JSON, or a self-contained HTML page.

The HTML page has inline CSS and one inline SVG per metric (the delta with its 95 % CI
against zero); it loads nothing from anywhere, so it can be attached to a ticket or
opened offline.
"""

from __future__ import annotations

import textwrap
from html import escape

from keel.evals.report import CaseComparison, GateReport, MetricSummary

_W = 100


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "—" if x is None else format(x, fmt)


def _sig(m: MetricSummary) -> str:
    return {"better": "▲ better", "worse": "▼ worse", "unchanged": ""}[m.direction]


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrap(text: str, *, indent: int, first: int = 0) -> str:
    return textwrap.fill(
        text,
        width=_W,
        initial_indent=" " * first,
        subsequent_indent=" " * indent,
        break_long_words=True,
        break_on_hyphens=False,
    )


def render_text(report: GateReport) -> str:
    """Plain text, at most 100 columns wide, no colour codes."""
    lines = [
        "=" * _W,
        f"GATE {report.verdict}  {report.agent} · {report.prompt_name} "
        f"v{report.candidate_version} vs v{report.baseline_version}",
        f"dataset {report.dataset_name} ({report.dataset_size} cases, version {report.dataset_version[:12]})",
        f"config {report.config_hash[:12]}  seed {report.seed}  {report.created_at:%Y-%m-%d %H:%M:%S} UTC"
        f"  primary {report.primary_metric}  rule {report.gate.pass_rule}",
        "=" * _W,
    ]
    mark = "•" if report.passed else "✗"
    lines += [_wrap(f"{mark} {r}", indent=2) for r in report.reasons]
    lines.append("")
    header = (
        f"{'metric':<20} {'kind':<7} {'n':>4} {'base':>6} {'cand':>6} {'delta':>7} "
        f"{'95% CI':>17} {'p':>6} {'p Holm':>7}  {'':<8}"
    )
    lines += [header.rstrip(), "-" * _W]
    for m in report.metrics:
        ci = f"[{_f(m.ci_low, '+.3f')}, {_f(m.ci_high, '+.3f')}]" if m.ci_low is not None else "—"
        kind = m.kind + ("*" if m.oracle else "")
        row = (
            f"{_cell(m.name, 20):<20} {kind:<7} {m.n:>4} {_f(m.baseline_mean):>6} "
            f"{_f(m.candidate_mean):>6} {_f(m.delta, '+.3f'):>7} {ci:>17} "
            f"{_f(m.p_value, '.4f'):>6} {_f(m.p_holm, '.4f'):>7}  {_sig(m):<8}"
        )
        lines.append(row.rstrip())
    lines.append("(* oracle: a deterministic rule; feeds the gaming tripwire)")
    if report.kappas:
        lines += [
            "",
            f"{'judge agreement':<22} {'judges':>6} {'kappa baseline':>15} {'kappa candidate':>16}",
            "-" * 62,
        ]
        for k in report.kappas:
            lines.append(
                f"{_cell(k.metric, 22):<22} {k.judges:>6} {_f(k.baseline, '.2f'):>15} {_f(k.candidate, '.2f'):>16}"
            )
    lines += ["", "tripwires", "-" * 62]
    for t in report.tripwires:
        lines.append(
            _wrap(f"{'FIRED' if t.fired else 'ok':<6} {t.name:<17} {t.summary}", indent=25)
        )
        lines += [_wrap(d, indent=25, first=25) for d in t.details]
    if report.slices:
        lines += [
            "",
            f"{'slice':<22} {'n':>4} {'baseline':>8} {'candidate':>9} {'delta':>7}  holds",
            "-" * 62,
        ]
        for s in report.slices:
            lines.append(
                f"{_cell(f'{s.key}={s.value}', 22):<22} {s.n:>4} {_f(s.baseline_mean):>8} "
                f"{_f(s.candidate_mean):>9} {_f(s.delta, '+.3f'):>7}  {'yes' if s.holds else 'NO'}"
            )
    if report.runs:
        lines += [
            "",
            f"{'run':<10} {'version':>7} {'errors':>6} {'judge fail':>10} {'latency ms':>10} {'p95 ms':>8} {'cost $':>10}",
            "-" * 68,
        ]
        for label, r in report.runs.items():
            lines.append(
                f"{label:<10} {r.version:>7} {r.errors:>6} {r.judge_failures:>10} "
                f"{r.latency_ms_mean:>10.1f} {r.latency_ms_p95:>8.1f} {r.cost_usd_total:>10.4f}"
            )
    return "\n".join(lines) + "\n"


def render_json(report: GateReport) -> str:
    """The report as indented JSON (`GateReport.model_validate_json` reads it back)."""
    return report.model_dump_json(indent=2)


def ci_svg(m: MetricSummary, *, width: int = 240, height: int = 56) -> str:
    """An inline SVG: the zero line, the 95 % CI as a bar and the mean delta as a dot."""
    label = escape(m.name)
    if m.delta is None or m.ci_low is None or m.ci_high is None:
        return (
            f'<svg role="img" aria-label="{label}: no data" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><text x="8" y="30" class="muted">no paired cases</text></svg>'
        )
    span = max(abs(m.ci_low), abs(m.ci_high), abs(m.delta), 0.05) * 1.15
    pad = 16

    def x(v: float) -> float:
        return pad + (v + span) / (2 * span) * (width - 2 * pad)

    colour = {"better": "#1a7f37", "worse": "#cf222e", "unchanged": "#57606a"}[m.direction]
    y = height / 2
    return (
        f'<svg role="img" aria-label="{label}: delta {m.delta:+.3f}, 95% CI {m.ci_low:+.3f} to {m.ci_high:+.3f}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<line x1="{pad}" y1="{y}" x2="{width - pad}" y2="{y}" stroke="#d0d7de"/>'
        f'<line x1="{x(0):.1f}" y1="6" x2="{x(0):.1f}" y2="{height - 14}" stroke="#24292f" stroke-dasharray="3 2"/>'
        f'<text x="{x(0):.1f}" y="{height - 2}" text-anchor="middle" class="axis">0</text>'
        f'<text x="{pad}" y="{height - 2}" class="axis">{-span:+.2f}</text>'
        f'<text x="{width - pad}" y="{height - 2}" text-anchor="end" class="axis">{span:+.2f}</text>'
        f'<rect x="{x(m.ci_low):.1f}" y="{y - 5}" width="{max(x(m.ci_high) - x(m.ci_low), 1.5):.1f}" '
        f'height="10" rx="3" fill="{colour}" fill-opacity="0.3" stroke="{colour}"/>'
        f'<circle cx="{x(m.delta):.1f}" cy="{y}" r="5" fill="{colour}"/>'
        "</svg>"
    )


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;color:#24292f;padding:0 1rem}
h1{font-size:1.4rem;margin:0 0 .3rem} h2{font-size:1.1rem;margin-top:2rem}
.verdict{display:inline-block;padding:.15rem .6rem;border-radius:4px;color:#fff;font-weight:600}
.PASS{background:#1a7f37}.FAIL{background:#cf222e}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #d0d7de;padding:.3rem .5rem;text-align:right;vertical-align:middle}
th:first-child,td:first-child{text-align:left} td.l,th.l{text-align:left}
.metrics td,.metrics th{white-space:nowrap;font-size:13px}
.muted,.axis{fill:#57606a;color:#57606a;font-size:11px} .fired{color:#cf222e;font-weight:600}
.better{color:#1a7f37;font-weight:600}.worse{color:#cf222e;font-weight:600}
code{font-size:12px} details{margin:.3rem 0} pre{white-space:pre-wrap;background:#f6f8fa;padding:.5rem}
"""


def render_html(report: GateReport) -> str:
    """A self-contained page: identity, verdict and reasons, metrics with CI plots, kappa,
    tripwires, slices, runs, and the cases that moved most."""
    e = escape
    rows = "".join(
        f"<tr><td>{e(m.name)}</td><td class='l'>{e(m.kind)}{' (oracle)' if m.oracle else ''}</td>"
        f"<td>{m.n}</td><td>{_f(m.baseline_mean)}</td><td>{_f(m.candidate_mean)}</td>"
        f"<td>{_f(m.delta, '+.3f')}</td><td>[{_f(m.ci_low, '+.3f')}, {_f(m.ci_high, '+.3f')}]</td>"
        f"<td>{_f(m.p_value, '.4f')}</td><td>{_f(m.p_holm, '.4f')}</td>"
        f"<td class='{m.direction}'>{e(_sig(m))}</td><td>{ci_svg(m)}</td></tr>"
        for m in report.metrics
    )
    kappas = "".join(
        f"<tr><td>{e(k.metric)}</td><td>{k.judges}</td><td>{_f(k.baseline, '.2f')} (n={k.n_baseline})</td>"
        f"<td>{_f(k.candidate, '.2f')} (n={k.n_candidate})</td></tr>"
        for k in report.kappas
    )
    trips = "".join(
        f"<tr><td class='{'fired' if t.fired else ''}'>{'FIRED' if t.fired else 'ok'}</td>"
        f"<td class='l'>{e(t.name)}</td><td class='l'>{e(t.summary)}"
        + "".join(f"<br><span class='muted'>{e(d)}</span>" for d in t.details)
        + "</td></tr>"
        for t in report.tripwires
    )
    slices = "".join(
        f"<tr><td>{e(s.key)}={e(s.value)}</td><td>{s.n}</td><td>{_f(s.baseline_mean)}</td>"
        f"<td>{_f(s.candidate_mean)}</td><td>{_f(s.delta, '+.3f')}</td>"
        f"<td class='{'' if s.holds else 'fired'}'>{'yes' if s.holds else 'NO'}</td></tr>"
        for s in report.slices
    )
    runs = "".join(
        f"<tr><td>{e(label)}</td><td>{r.version}</td><td>{r.errors}</td><td>{r.judge_failures}</td>"
        f"<td>{r.latency_ms_mean:.1f}</td><td>{r.latency_ms_p95:.1f}</td><td>{r.cost_usd_total:.4f}</td></tr>"
        for label, r in report.runs.items()
    )
    primary = report.primary_metric

    def moved(c: CaseComparison) -> float:
        a, b = c.candidate.get(primary), c.baseline.get(primary)
        return abs((a or 0.0) - (b or 0.0))

    top = sorted(report.cases, key=moved, reverse=True)[:20]
    cases = "".join(
        f"<details><summary><code>{e(c.id)}</code> {e(' '.join(f'{k}={v}' for k, v in c.slices.items()))} — "
        f"{e(primary)} {_f(c.baseline.get(primary))} → {_f(c.candidate.get(primary))}</summary>"
        f"<p><b>baseline</b></p><pre>{e(c.baseline_error or c.baseline_preview)}</pre>"
        + "".join(f"<p class='muted'>{e(r)}</p>" for r in c.baseline_reasons)
        + f"<p><b>candidate</b></p><pre>{e(c.candidate_error or c.candidate_preview)}</pre>"
        + "".join(f"<p class='muted'>{e(r)}</p>" for r in c.candidate_reasons)
        + "</details>"
        for c in top
    )
    reasons = "".join(f"<li>{e(r)}</li>" for r in report.reasons)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keel gate {e(report.verdict)} — {e(report.agent)} {e(report.prompt_name)} v{report.candidate_version} vs v{report.baseline_version}</title>
<style>{_CSS}</style></head><body>
<h1>{e(report.agent)} · {e(report.prompt_name)} v{report.candidate_version} vs v{report.baseline_version}
<span class="verdict {e(report.verdict)}">{e(report.verdict)}</span></h1>
<p class="muted">dataset {e(report.dataset_name)} ({report.dataset_size} cases) version <code>{e(report.dataset_version)}</code><br>
config <code>{e(report.config_hash)}</code> · seed {report.seed} · {report.created_at:%Y-%m-%d %H:%M:%S} UTC ·
{report.gate.resamples} bootstrap resamples · alpha {report.gate.alpha} (Holm) · rule {e(report.gate.pass_rule)} ·
primary metric <b>{e(primary)}</b> · {report.duration_s:.2f} s</p>
<ul>{reasons}</ul>
<h2>Metrics (candidate − baseline)</h2>
<table class="metrics"><tr><th>metric</th><th class="l">kind</th><th>n</th><th>baseline</th><th>candidate</th><th>Δ</th>
<th>95% CI</th><th>p</th><th>p (Holm)</th><th></th><th>Δ with 95% CI</th></tr>{rows}</table>
<h2>Judge agreement (Fleiss' kappa, floor {report.gate.kappa_floor})</h2>
<table><tr><th>panel</th><th>judges</th><th>baseline</th><th>candidate</th></tr>{kappas}</table>
<h2>Tripwires</h2><table><tr><th></th><th class="l">tripwire</th><th class="l">detail</th></tr>{trips}</table>
<h2>Slices ({e(primary)}, tolerance {report.gate.slice_tolerance})</h2>
<table><tr><th>slice</th><th>n</th><th>baseline</th><th>candidate</th><th>Δ</th><th>holds</th></tr>{slices}</table>
<h2>Runs</h2><table><tr><th>run</th><th>version</th><th>errors</th><th>judge failures</th><th>latency ms</th>
<th>p95 ms</th><th>cost $</th></tr>{runs}</table>
<h2>Cases that moved most</h2>{cases}
</body></html>
"""
