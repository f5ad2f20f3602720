"""What the stored eval runs say: "how did the last eval of the retrieval suite go?" is
answered from the runs in the store (``evals.store``), with no model."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from tools.base import Evidence, ToolContext, ToolError, ToolResult, register

EVAL_WORDS = re.compile(r"\b(?:evals?|evaluations?|suites?|baselines?)\b", re.I)


class EvalRunsInput(BaseModel):
    question: str = Field(..., description="The question about eval runs, in words.")
    suite: str | None = Field(None, description="The suite (default: the one the question names, "
                                                "else the latest run of every suite).")  # fmt: skip


def eval_intent(text: str) -> dict[str, str] | None:
    """A question about eval runs (it names evals, a suite or a regression)."""
    return {"question": text} if EVAL_WORDS.search(text) else None


@register(
    name="eval_runs",
    description="Report the bot's latest stored eval runs (quality suites: retrieval, "
    "metric questions, tool choice…): status, each metric against its threshold and the "
    "change from the baseline.",
    args_schema=EvalRunsInput,
    status_text="reading eval runs…",
    keywords=("eval", "evals", "suite", "suites", "regression", "baseline", "ragas"),
    query_arg="question",
    requires=("evals",),
    intent=eval_intent,
)
def eval_runs(args: EvalRunsInput, ctx: ToolContext) -> ToolResult:
    from bot.eval_cli import report_text
    from evals.suite import list_suites

    if ctx.evals is None:
        raise ToolError("eval runs are kept by the running bot; none are available here")
    names = [s.name for s in list_suites()]
    words = set(re.findall(r"[a-z]+", args.question.lower()))
    wanted = [args.suite] if args.suite else [n for n in names if n in words] or names
    runs = [r for name in wanted for r in ctx.evals.runs(name, limit=1)]
    if not runs:
        return ToolResult(tool="eval_runs", status="no_data",
                          message=f"No eval run of {', '.join(wanted)} yet; start one with "
                                  "`/ops eval run SUITE`.")  # fmt: skip
    return ToolResult(
        tool="eval_runs", status="ok",
        message="; ".join(f"{r.suite} ({r.split}) #{r.id}: {r.status}" for r in runs),
        evidence=[Evidence(kind="note", title=f"eval #{r.id} {r.suite} ({r.split})",
                           source=f"eval run {r.id}", text=report_text(r)) for r in runs],
    )  # fmt: skip
