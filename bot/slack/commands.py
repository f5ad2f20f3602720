"""Arguments of slash commands that take more than a question."""

from __future__ import annotations

import re

from tools.metrics.durations import is_duration

_KEYED = re.compile(r"\s+(range|step)=(\S+)\s*$", re.I)


def metrics_args(text: str) -> dict[str, str]:
    """`/ops metrics <PromQL> [range] [step]` → prometheus_query's arguments.

    Range and step are trailing durations (``1h 30s``) or ``range=1h step=30s``. A
    duration right after ``offset`` belongs to the PromQL.
    """
    rest = " " + text.strip()
    args: dict[str, str] = {}
    while match := _KEYED.search(rest):
        args.setdefault(match.group(1).lower(), match.group(2))
        rest = rest[: match.start()]
    tail: list[str] = []
    words = rest.split()
    while words and len(tail) < 2 and "range" not in args and is_duration(words[-1]):
        if len(words) >= 2 and words[-2].lower() == "offset":
            break
        tail.insert(0, words.pop())
    if tail:
        args["range"] = tail[0]
        if len(tail) == 2:
            args["step"] = tail[1]
        rest = " ".join(words)
    args["promql"] = rest.strip()
    return args
