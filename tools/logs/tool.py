"""The `log_rca` agent tool: logs pasted or attached in a conversation → ranked findings."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from knowledge.index import IndexMismatchError, IndexMissingError, SearchHit
from tools import intents
from tools.base import Evidence, ToolContext, ToolError, ToolResult, register
from tools.logs.loki import loki_source
from tools.logs.rca import RcaReport, RunbookLookup, analyse, to_markdown
from tools.logs.sources import LogSource, file_source, text_source


class LogRcaInput(BaseModel):
    text: str | None = Field(None, description="Log lines pasted in the conversation.")
    file: str | None = Field(None, description="Name of a log file attached to the conversation.")
    baseline_file: str | None = Field(
        None, description="Name of an attached file of normal logs to compare against."
    )
    loki_query: str | None = Field(
        None, description='A LogQL query, e.g. {app="checkout"}, when a Loki is configured.'
    )
    minutes: int = Field(
        60,
        ge=1,
        le=24 * 60,
        description="Minutes the Loki query reads: up to now, or from start / up to end.",
    )
    start: str | float | None = Field(
        None,
        description="Start of the incident window for the Loki query: an RFC 3339 timestamp "
        "(2026-11-23T09:30:00Z) or Unix seconds.",
    )
    end: str | float | None = Field(
        None,
        description="End of the incident window for the Loki query, like start; at most "
        "24 h after it.",
    )


def attached(ctx: ToolContext, name: str) -> Path:
    """A file attached to this conversation, by name (or its base name); never a path
    outside the uploads folder, nor a file of another conversation."""
    if ctx.uploads_dir is None:
        raise ToolError("no files are attached to this conversation")
    if ctx.files is not None:
        mine = [f for f in ctx.files if f == name or f.rsplit("/", 1)[-1] == name]
        if not mine:
            raise ToolError(f"{name!r} is not a file attached to this conversation")
        name = mine[-1]
    path = (ctx.uploads_dir / name).resolve()
    if not path.is_relative_to(ctx.uploads_dir.resolve()):
        raise ToolError(f"{name!r} is not a file attached to this conversation")
    return path


def lookup(ctx: ToolContext) -> RunbookLookup:
    """Runbook search for findings; without an index the report still runs (no runbooks)."""

    def search(query: str, k: int) -> list[SearchHit]:
        try:
            return ctx.runbooks.search(query, k=k)
        except (IndexMissingError, IndexMismatchError):
            return []

    return search


def report_evidence(report: RcaReport) -> list[Evidence]:
    evidence: list[Evidence] = []
    for item in report.findings[:5]:
        f = item.finding
        tags = " ".join(t for t, on in (("new", f.is_new), ("error", f.is_error)) if on)
        evidence.append(
            Evidence(
                kind="log",
                title=f"{f.id} {tags}".strip() + f": {f.count}× (baseline {f.baseline_count})",
                source=f"first seen {f.first_seen}",
                section=f.template,
                text="\n".join(f.examples),
                score=f.score,
            )
        )
        for match in item.runbooks[:1]:
            evidence.append(
                Evidence(
                    kind="runbook",
                    title=match.title or match.doc,
                    source=match.doc,
                    section=match.section,
                    text=f"matches finding {f.id}",
                    score=match.score,
                )
            )
    return evidence


def from_loki(
    ctx: ToolContext,
    query: str,
    minutes: int,
    start: str | float | None = None,
    end: str | float | None = None,
) -> LogSource:
    if ctx.loki is None:
        raise ToolError("no Loki is configured (OPSBOT_LOKI_URL): attach or paste the logs")
    token = ctx.loki.token.get_secret_value() if ctx.loki.token else None
    return loki_source(
        ctx.loki.url,
        query,
        minutes=minutes,
        start=start,
        end=end,
        limit=ctx.loki.limit,
        token=token,
        timeout=ctx.loki.timeout,
    )


@register(
    name="log_rca",
    description=(
        "Root-cause analysis of logs pasted or attached in the conversation: mines log "
        "templates, compares the incident with a baseline, ranks new and rising templates "
        "(errors first) and looks them up in the runbooks."
    ),
    args_schema=LogRcaInput,
    status_text="analysing logs…",
    keywords=("log", "logs", "rca", "root", "cause", "attached", "stacktrace", "exception"),
    intent=intents.pasted_logs,
    query_arg="text",
)
def log_rca(args: LogRcaInput, ctx: ToolContext) -> ToolResult:
    incident: LogSource
    if (args.start is not None or args.end is not None) and not args.loki_query:
        raise ToolError("start and end choose the window of a Loki query: give loki_query too")
    if args.loki_query:
        incident = from_loki(ctx, args.loki_query, args.minutes, args.start, args.end)
    elif args.file:
        incident = file_source(attached(ctx, args.file))
    elif args.text:
        incident = text_source(args.text)
    else:
        raise ToolError("paste log lines or attach a log file, then ask again")
    baseline = file_source(attached(ctx, args.baseline_file)) if args.baseline_file else None
    report = analyse(incident, baseline, lookup=lookup(ctx))
    if not report.findings:
        return ToolResult(tool="log_rca", status="no_data", message=report.headline)
    return ToolResult(
        tool="log_rca",
        status="ok",
        message=report.headline,
        evidence=report_evidence(report),
        report=to_markdown(report),
    )
