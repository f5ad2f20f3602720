"""``opsbot eval``: list the suites, run them, report a run, mark a baseline."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from evals.store import EvalRun, EvalStore

eval_app = typer.Typer(help="Eval suites: run them, report runs, keep baselines.",
                       no_args_is_help=True)  # fmt: skip
JsonOption = Annotated[bool, typer.Option("--json", help="JSON output.")]


def _store() -> EvalStore:
    from bot.cli import settings_or_exit
    from bot.store import Store
    from evals.store import EvalStore

    return EvalStore(Store(settings_or_exit().database_url).engine)


def _registry() -> Any:
    from bot.cli import settings_or_exit
    from bot.store import Store
    from tools.deploy.registry import open_registry

    settings = settings_or_exit()
    return open_registry(settings.mlflow.tracking_uri, Store(settings.database_url).engine)


def report_record(run: EvalRun) -> dict[str, Any]:
    """The report's JSON: run, suite, split, status, and per metric value, threshold,
    passed (``value: null`` with ``status: "not judged"`` for a judged metric without a
    judge), with the counts of outcomes and the comparison with the baseline."""
    return {
        "run": run.id, "suite": run.suite, "split": run.split, "status": run.status,
        "git_rev": run.git_rev, "model": run.model, "judge": run.judge or None,
        "metrics": run.metrics, "counts": run.counts, "comparison": run.comparison,
        "duration_s": run.duration_s, "started_at": run.started_at.isoformat(),
        "error": run.error or None,
    }  # fmt: skip


def report_text(run: EvalRun) -> str:
    lines = [f"eval #{run.id} {run.suite} ({run.split}) at {run.git_rev}: {run.status.upper()}"
             + (f" — {run.error}" if run.error else "")]  # fmt: skip
    compared = (run.comparison or {}).get("metrics", {})
    for name, m in (run.metrics or {}).items():
        value = m.get("status", "—") if m["value"] is None else f"{m['value']:.3f}"
        bar = "" if m["threshold"] is None else f" (threshold {m['threshold']})"
        mark = {True: "pass", False: "FAIL", None: "—"}[m["passed"]]
        line = f"  {name:<20} {value:>10}{bar}  {mark}  [{m['cases']} cases]"
        if name in compared:
            c = compared[name]
            arrow = "▲" if c["diff"] > 0 else "▼" if c["diff"] < 0 else "="
            line += (f"  {arrow}{c['diff']:+.3f} vs #{run.comparison['baseline']} "
                     f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]"
                     + (" REGRESSION" if c["regression"] else
                        " significant" if c["significant"] else ""))  # fmt: skip
        lines.append(line)
    counts = run.counts or {}
    if counts:
        lines.append("  outcomes: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    if run.comparison:
        worse = run.comparison.get("pass_to_fail", [])
        better = run.comparison.get("fail_to_pass", [])
        lines.append(f"  flipped pass→fail {len(worse)}, fail→pass {len(better)}"
                     + (f": {', '.join(worse[:10])}" if worse else ""))  # fmt: skip
    lines.append(f"  {run.duration_s:.1f} s")
    return "\n".join(lines)


@eval_app.command("list")
def eval_list(as_json: JsonOption = False) -> None:
    """The suites, their splits and metrics."""
    from evals.suite import list_suites

    for suite in list_suites():
        c = suite.config
        record = {"suite": c.name, "kind": c.kind, "splits": sorted(c.splits),
                  "metrics": sorted(c.metrics)}  # fmt: skip
        typer.echo(json.dumps(record) if as_json else
                   f"{c.name:<10} {c.kind:<10} splits {', '.join(sorted(c.splits))}; "
                   f"metrics {', '.join(c.metrics)}")  # fmt: skip


def _bar(done: int, total: int) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = width * done // max(1, total)
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


@eval_app.command("run")
def eval_run(
    suite: Annotated[str, typer.Argument(help="A suite name, or all.")],
    split: Annotated[str, typer.Option(help="dev or heldout.")] = "dev",
    repeat: Annotated[int, typer.Option(min=1, max=20, help="Run each case N times.")] = 1,
    baseline: Annotated[int | None, typer.Option(help="Compare with this run.")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="model suite: an OpenAI-compatible URL or NAME@VERSION (registry)."),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option(
            help="Judge of the judged metrics: an OpenAI-compatible URL "
            "(default OPSBOT_EVAL_JUDGE_URL; none: 'not judged')."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a suite (or all) and report it; exits 1 when a threshold is missed, a regression
    is flagged, or the run is invalid."""
    from bot.cli import settings_or_exit
    from evals.cases import CaseFileError
    from evals.judge import judge_from_settings
    from evals.runner import RunOptions, run_suite
    from evals.suite import list_suites

    if judge is not None and not judge.startswith(("http://", "https://")):
        raise typer.BadParameter("an http(s) URL of an OpenAI-compatible API", param_hint="--judge")
    settings = settings_or_exit()
    if split not in ("dev", "heldout"):
        raise typer.BadParameter("dev or heldout", param_hint="--split")
    store = _store()
    if baseline is not None:
        base = store.get(baseline)
        if base is None or suite not in (base.suite, "all"):
            why = f"there is no eval run #{baseline}"
            if base is not None:
                why = f"run #{baseline} is of the {base.suite} suite, not of {suite}"
            typer.echo(f"error: {why} to compare with", err=True)
            raise typer.Exit(2)
    try:
        names = [s.name for s in list_suites()] if suite == "all" else [suite]
        options = RunOptions(split=split, repeat=repeat, baseline=baseline,  # type: ignore[arg-type]
                             progress=None if as_json else _bar, model=model,
                             registry=_registry() if model and "@" in model else None,
                             settings=settings,
                             judge=judge_from_settings(settings, judge))  # fmt: skip
        runs = [run_suite(n, store, options) for n in names]
    except CaseFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for run in runs:
        typer.echo(json.dumps(report_record(run)) if as_json else report_text(run))
    if any(r.status != "passed" for r in runs):
        raise typer.Exit(1)


@eval_app.command("report")
def eval_report(
    run_id: Annotated[int | None, typer.Argument(help="A run (default: the last).")] = None,
    suite: Annotated[str | None, typer.Option(help="The last run of this suite.")] = None,
    as_json: JsonOption = False,
) -> None:
    """A stored run's report."""
    store = _store()
    run = store.get(run_id) if run_id else next(iter(store.runs(suite, limit=1)), None)
    if run is None:
        typer.echo("error: no such eval run" if run_id else "error: no eval runs yet", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(report_record(run)) if as_json else report_text(run))


@eval_app.command("baseline")
def eval_baseline(run_id: Annotated[int, typer.Argument(help="The run to compare with.")]) -> None:
    """Mark a run as its suite's baseline (for its split)."""
    try:
        run = _store().mark_baseline(run_id)
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"run #{run.id} is the baseline of {run.suite} ({run.split})")


@eval_app.command("schedule")
def eval_schedule(
    suite: Annotated[str, typer.Argument(help="The suite.")],
    cron: Annotated[str, typer.Argument(help='A cron expression, e.g. "0 8 * * 1-5".')],
    channel: Annotated[str, typer.Option(help="Slack channel id (C…) the report goes to.")],
    notify_on: Annotated[str, typer.Option(help="always, failure or change.")] = "always",
    split: Annotated[str, typer.Option(help="dev or heldout.")] = "dev",
) -> None:
    """Run SUITE on a schedule and post its report in a channel (the running bot does)."""
    from bot.cli import settings_or_exit
    from bot.store import Store
    from evals.cases import CaseFileError
    from evals.schedule import ScheduleError, Schedules
    from evals.suite import load_suite

    settings = settings_or_exit()
    try:
        load_suite(suite)
        row = Schedules(Store(settings.database_url).engine).add(
            suite, cron, channel, by="cli", timezone=settings.evals.timezone, split=split,
            notify_on=notify_on,
        )  # fmt: skip
    except (ScheduleError, CaseFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"schedule #{row.id}: {suite} at {cron} ({settings.evals.timezone}) in "
               f"{channel}, next {row.next_at:%Y-%m-%d %H:%M} UTC")  # fmt: skip


@eval_app.command("schedules")
def eval_schedules(as_json: JsonOption = False) -> None:
    """The eval schedules."""
    from bot.cli import settings_or_exit
    from bot.store import Store
    from evals.schedule import Schedules

    for r in Schedules(Store(settings_or_exit().database_url).engine).all():
        record = {"id": r.id, "suite": r.suite, "split": r.split, "cron": r.cron,
                  "timezone": r.timezone, "channel": r.channel, "notify_on": r.notify_on,
                  "next_at": r.next_at.isoformat(), "last_run": r.last_run_id}  # fmt: skip
        typer.echo(
            json.dumps(record) if as_json else " ".join(f"{k}={v}" for k, v in record.items())
        )


@eval_app.command("unschedule")
def eval_unschedule(schedule_id: Annotated[int, typer.Argument(help="The schedule.")]) -> None:
    """Stop a schedule."""
    from bot.cli import settings_or_exit
    from bot.store import Store
    from evals.schedule import Schedules

    if not Schedules(Store(settings_or_exit().database_url).engine).remove(schedule_id):
        typer.echo(f"error: no eval schedule #{schedule_id}", err=True)
        raise typer.Exit(2)
    typer.echo(f"schedule #{schedule_id} removed")
