"""The ``/ops`` command language, shared by intake (which reads a command and records its
job) and the workers (which run it): the subcommands that start a conversation and the
tool each forces, the lookups, the eval subcommand's usage and run arguments, and the
arguments of commands that take more than a question."""

from __future__ import annotations

import re

from tools.base import ToolError
from tools.metrics.durations import is_duration

#: Subcommands that start a conversation, and the tool each asks for (None: planned).
ASKS: dict[str, str | None] = {
    "ask": None,
    "rca": "log_rca",
    "metrics": "prometheus_query",
    "alerts": "firing_alerts",
    "deploy": "deploy_model",
    "rollback": "rollback_model",
}
#: Subcommands answered to the asker from the store (deploys, the registry, the audit).
LOOKUPS = ("models", "model", "deployments", "audit", "cancel")
EVAL_USAGE = (
    "`/ops eval run SUITE [dev|heldout] [MODEL_URL|NAME@VERSION]`, `/ops eval report SUITE`, "
    "`/ops eval list`, "
    '`/ops eval schedule SUITE "CRON" [#channel] [always|failure|change]`, '
    "`/ops eval schedules` or `/ops eval unschedule ID`"
)

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


def parse_eval_run(text: str) -> tuple[str, str, str | None]:
    """``run SUITE [dev|heldout] [MODEL]`` → (suite, split, model: a URL or NAME@VERSION);
    ToolError with the usage otherwise."""
    words = text.replace("<", "").replace(">", "").split()  # Slack wraps URLs in <…>
    if len(words) < 2 or words[0] != "run" or len(words) > 4:
        raise ToolError(f"Usage: {EVAL_USAGE}")
    split, model = "dev", None
    for word in words[2:]:
        if word in ("dev", "heldout"):
            split = word
        elif word.startswith(("http://", "https://")) or "@" in word:
            model = word.split("|")[0]
        else:
            raise ToolError(f"Usage: {EVAL_USAGE}")
    return words[1], split, model
