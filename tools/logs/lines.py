"""The `rca_lines` agent tool: the log lines behind one finding of an earlier RCA.

The analysis is deterministic, so the thread's attached log is analysed again and the
finding asked for is returned with more of its lines ("show me the lines behind finding 2").
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from tools import intents
from tools.base import Evidence, ToolContext, ToolError, ToolResult, register
from tools.logs.rca import analyse
from tools.logs.sources import file_source
from tools.logs.tool import attached

FINDING = re.compile(r"\b(?:finding|F)\s*#?\s*(\d+)\b", re.IGNORECASE)
MAX_LINES = 20


class RcaLinesInput(BaseModel):
    question: str = Field(
        ..., description='The request, e.g. "show me the lines behind finding 2".'
    )
    finding: int | None = Field(None, ge=1, description="Finding number (F2 is 2).")
    file: str | None = Field(None, description="The attached log file the RCA analysed.")


@register(
    name="rca_lines",
    description=(
        "Show the log lines behind one finding of a log RCA in this conversation, e.g. "
        "'show me the lines behind finding 2'."
    ),
    args_schema=RcaLinesInput,
    status_text="collecting log lines…",
    keywords=("finding", "lines", "behind", "examples", "show"),
    intent=intents.finding,
    query_arg="question",
)
def rca_lines(args: RcaLinesInput, ctx: ToolContext) -> ToolResult:
    number = args.finding
    if number is None and (match := FINDING.search(args.question)):
        number = int(match.group(1))
    if number is None:
        raise ToolError("say which finding, e.g. 'show me the lines behind finding 2'")
    if not args.file:
        raise ToolError("only an attached log file can be read again; attach it to the thread")
    report = analyse(file_source(attached(ctx, args.file)), examples=MAX_LINES)
    if not 1 <= number <= len(report.findings):
        raise ToolError(f"there is no finding {number}; the RCA has {len(report.findings)}")
    finding = report.findings[number - 1].finding
    return ToolResult(
        tool="rca_lines",
        status="ok",
        message=f"{finding.id}: {finding.count} line(s) of `{finding.template}`",
        evidence=[
            Evidence(
                kind="log",
                title=f"{finding.id}: first {len(finding.examples)} of {finding.count} lines",
                source=args.file,
                section=finding.template,
                text="\n".join(finding.examples),
            )
        ],
    )
