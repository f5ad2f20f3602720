"""Requests recognised from their shape, with no model: PromQL written in the message, log
lines pasted into it, a finding asked for by number, a question about which metrics exist,
the firing alerts of one severity. Each returns the tool's arguments, or None when the
message is not that request (the planner then routes by keywords)."""

from __future__ import annotations

import re
from typing import Any

from tools.metrics.promql_text import extract_promql

#: A line that starts like a log record: a date or time, or a level.
LOG_LINE = re.compile(
    r"^\s*(?:\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}|\[?\d{2}:\d{2}:\d{2}|\d{6} \d{6}|"
    r"[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}|(?:ERROR|WARN(?:ING)?|INFO|DEBUG|FATAL|TRACE)\b)"
)
FINDING = re.compile(r"\bfinding\s*#?\s*(\d{1,3})\b|\bF(\d{1,3})\b", re.IGNORECASE)
WHICH_METRICS = re.compile(
    r"\b(?:which|what)\s+(?:metrics?|series)\b|\bmetric\s+names?\b|\bmetrics?\s+(?:exist|are\s+there)",
    re.IGNORECASE,
)
SEVERITY = re.compile(r"\b(critical|warning|info)\b", re.IGNORECASE)
ALERTS = re.compile(r"\b(?:alerts?|firing|paging)\b", re.IGNORECASE)
ADVICE = re.compile(r"\b(?:how|why|fix|runbook|procedure|steps)\b", re.IGNORECASE)


def promql(text: str) -> dict[str, Any] | None:
    from tools.metrics.question import question_range

    expression = extract_promql(text)
    if expression is None:
        return None
    args: dict[str, Any] = {"promql": expression}
    window = question_range(text.replace(expression, " "))
    if window:
        args["range"] = window
    return args


def pasted_logs(text: str) -> dict[str, Any] | None:
    """Two or more lines shaped like log records."""
    lines = [line for line in text.splitlines() if LOG_LINE.match(line)]
    return {"text": text} if len(lines) >= 2 else None


def finding(text: str) -> dict[str, Any] | None:
    found = FINDING.search(text)
    if found is None:
        return None
    return {"question": text, "finding": int(found.group(1) or found.group(2))}


def which_metrics(text: str) -> dict[str, Any] | None:
    return {"query": text} if WHICH_METRICS.search(text) else None


def alerts_of_severity(text: str) -> dict[str, Any] | None:
    """ "any critical alerts firing?" (not "how do I fix the critical alert …")."""
    severity = SEVERITY.search(text)
    if severity is None or not ALERTS.search(text) or ADVICE.search(text):
        return None
    return {"severity": severity.group(1).lower()}
