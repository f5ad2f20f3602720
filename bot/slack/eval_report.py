"""The eval report a channel gets (scheduled, or at the end of `/ops eval run`): a Block
Kit summary — status, suite, run, git revision, model, judge; per metric its value with a
bootstrap 95 % interval, threshold, change from the baseline (▲/▼ and whether significant)
and pass/fail; pipeline errors, judge errors and timeouts; duration —
then the worst cases (in a thread reply) and a trend chart per metric over the suite's
last runs (uploaded with files_upload_v2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.slack.render import escape
from evals.store import EvalCase, EvalRun
from tools.metrics.chart import render_chart
from tools.metrics.client import Sample

ICON = {"passed": "✅", "failed": "❌", "regressed": "📉", "invalid": "⚠️", "error": "⚠️"}
TREND_RUNS = 20
#: Trend charts a report uploads at most (one per metric).
MAX_CHARTS = 8


def metric_line(name: str, m: dict[str, Any], compared: dict[str, Any] | None) -> str:
    value = f"*{m['value']:.3f}*" if m["value"] is not None else f"_{m.get('status', '—')}_"
    if m.get("ci95"):
        value += f" (95 % CI {m['ci95'][0]:.3f}–{m['ci95'][1]:.3f})"
    parts = [f"`{escape(name)}` {value}"]
    if m["threshold"] is not None:
        parts.append(f"(threshold {m['threshold']}: {'pass' if m['passed'] else '*FAIL*'})")
    if compared:
        arrow = "▲" if compared["diff"] > 0 else "▼" if compared["diff"] < 0 else "="
        low, high = compared["ci95"]
        verdict = ("*regression*" if compared["regression"] else
                   "significant" if compared["significant"] else "not significant")  # fmt: skip
        parts.append(f"{arrow} {compared['diff']:+.3f} [{low:+.3f}, {high:+.3f}] {verdict}")
    return " ".join(parts)


def report_blocks(run: EvalRun) -> list[Block]:
    compared = (run.comparison or {}).get("metrics", {})
    lines = [metric_line(n, m, compared.get(n)) for n, m in (run.metrics or {}).items()]
    counts = run.counts or {}
    judge = f"judge {run.judge}" if run.judge else "no judge (judged metrics not judged)"
    facts = [f"run #{run.id}", f"split {run.split}", f"git {run.git_rev}", run.model, judge,
             f"{counts.get('cases', 0)} cases", f"pipeline errors {counts.get('error', 0)}",
             f"judge errors {counts.get('judge_error', 0)} "
             f"({counts.get('judge_timeout', 0)} timeouts)", f"{run.duration_s:.1f} s"]  # fmt: skip
    if run.comparison:
        facts.append(f"baseline #{run.comparison['baseline']}")
    blocks: list[Block] = [
        HeaderBlock(text=f"{ICON.get(run.status, '')} eval {run.suite}: {run.status}"[:150]),
        SectionBlock(text=MarkdownTextObject(text="\n".join(lines)[:2900] or "no metrics")),
        ContextBlock(elements=[MarkdownTextObject(text=escape(" · ".join(facts)))]),
    ]
    if run.error:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=escape(run.error)[:2900])))
    return blocks


def worst_cases(cases: list[EvalCase], n: int = 5) -> str:
    """The cases that did worst (errors, then failures), with what the pipeline said."""
    rank = {"error": 0, "judge_error": 1, "fail": 2, "known_fail": 3}
    bad = sorted((c for c in cases if c.attempt == 0 and c.outcome in rank),
                 key=lambda c: (rank[c.outcome], c.case_id))[:n]  # fmt: skip
    if not bad:
        return "Every case passed."
    return "Worst cases:\n" + "\n".join(
        f"• `{escape(c.case_id)}` {c.outcome}: {escape(str(c.output)[:300])}" for c in bad
    )


def trend_charts(runs: list[EvalRun], folder: Path) -> list[Path]:
    """One chart per metric over the suite's last runs (oldest first), each on its own
    scale (a share and tokens per second do not share an axis), its threshold marked in
    the title; at most ``MAX_CHARTS``."""
    ordered = sorted(runs, key=lambda r: r.id or 0)[-TREND_RUNS:]
    series: dict[str, list[tuple[float, float]]] = {}
    for run in ordered:
        for name, m in (run.metrics or {}).items():
            if m.get("value") is not None:
                series.setdefault(name, []).append((run.started_at.timestamp(), float(m["value"])))
    if not series:
        return []
    last = ordered[-1]
    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, points in list(series.items())[:MAX_CHARTS]:
        threshold = ((last.metrics or {}).get(name) or {}).get("threshold")
        bar = f", threshold {threshold}" if threshold is not None else ""
        path = folder / f"eval-{last.id}-{_file_part(name)}.png"
        title = f"eval {last.suite} ({last.split}) {name}: last {len(ordered)} runs{bar}"
        render_chart([Sample({"metric": name}, points)], title, path)
        drawn.append(path)
    return drawn


def _file_part(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)[:40]
