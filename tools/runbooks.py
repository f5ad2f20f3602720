"""Runbook search: the sections of the team's runbooks that match a question."""

from __future__ import annotations

from pydantic import BaseModel, Field

from knowledge.index import (
    DEFAULT_NO_MATCH,
    IndexMismatchError,
    IndexMissingError,
    NoMatch,
    SearchHit,
    snippet,
)
from tools.base import Evidence, ToolContext, ToolError, ToolResult, register

#: Below this score a hit is too weak to quote. Scores fuse three rankings: dense, BM25 and
#: the runbooks' names (knowledge.index.SearchHit): 1.0 is first in all three, or named in
#: the query; about 0.33 is first in one of them only; 0.23 is one list's 27th. Runbooks with
#: no evidence at all (no term in common, no section within cosine 0.2) never come back, so
#: an off-topic question still gets no_data.
MIN_SCORE = 0.23
#: The best section is quoted at length; the others briefly.
TOP_SNIPPET_CHARS = 1500
SNIPPET_CHARS = 500


#: Longer queries are cut. Not a schema bound: llama.cpp turns maxLength into a grammar
#: rule repeated that many times and fails on it.
MAX_QUERY_CHARS = 2000


class RunbookSearchInput(BaseModel):
    query: str = Field(..., min_length=1, description="What to look up.")
    context: str | None = Field(
        None,
        description="Earlier topic of the conversation, for a short follow-up question; "
        "it steers the search while the query leads.",
    )
    k: int | None = Field(
        None, ge=1, le=10, description="How many runbooks to return (default: OPSBOT_INDEX_TOP_K)."
    )


def answering(
    hits: list[SearchHit], rule: NoMatch = DEFAULT_NO_MATCH
) -> tuple[list[SearchHit], SearchHit | None]:
    """The hits worth quoting, and (when there are none) the closest weak one to name.

    Hits below ``MIN_SCORE`` go; then, when the best that is left is no answer by the
    no-match rule (``knowledge.index.NoMatch``), nothing in the runbooks matches: no hit
    is quoted, and the closest is only named, as weak."""
    kept = [hit for hit in hits if hit.score >= MIN_SCORE]
    if kept and not rule.answers(kept[0]):
        return [], kept[0]
    return kept, None


def runbook_matches(
    ctx: ToolContext, query: str, k: int, context: str | None = None
) -> tuple[list[SearchHit], SearchHit | None]:
    """The search with its cut, raising ToolError for what the user can fix."""
    try:
        index = ctx.runbooks
    except (IndexMissingError, IndexMismatchError) as exc:
        raise ToolError(str(exc)) from None
    return answering(index.search(query, k=k, context=context))


def search_runbooks(
    ctx: ToolContext, query: str, k: int, context: str | None = None
) -> list[SearchHit]:
    """The runbook sections that answer ``query`` (none when nothing matches)."""
    return runbook_matches(ctx, query, k, context)[0]


@register(
    name="runbook_search",
    description=(
        "Search the team's runbooks for how to diagnose and fix a problem: alerts, failing "
        "pods or services, errors, outages, procedures. Returns matching runbook sections "
        "with document and section."
    ),
    args_schema=RunbookSearchInput,
    status_text="searching runbooks…",
    keywords=("runbook", "how", "what", "check", "fix", "why", "alert", "procedure", "steps"),
    query_arg="query",
)
def runbook_search(args: RunbookSearchInput, ctx: ToolContext) -> ToolResult:
    hits, closest = runbook_matches(
        ctx, args.query[:MAX_QUERY_CHARS], args.k or ctx.top_k, args.context
    )
    if not hits:
        weak = f" The closest, weakly: {closest.heading} ({closest.doc})." if closest else ""
        return ToolResult(
            tool="runbook_search",
            status="no_data",
            message=f"Nothing in the runbooks matches {args.query[:200]!r}.{weak} "
            "I can also answer questions about metrics, list the alerts firing now, or find "
            "the root cause in logs attached to the thread.",
        )
    return ToolResult(
        tool="runbook_search",
        status="ok",
        message=f"{len(hits)} runbook(s) match.",
        evidence=[
            Evidence(
                kind="runbook",
                title=hit.title,
                source=hit.doc,
                section=hit.section,
                text=snippet(hit.text, TOP_SNIPPET_CHARS if rank == 0 else SNIPPET_CHARS),
                score=hit.score,
            )
            for rank, hit in enumerate(hits)
        ],
    )
