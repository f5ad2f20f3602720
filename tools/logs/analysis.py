"""What changed between a baseline window and an incident window of logs.

Both windows go through the same parser, so a template has one id in both. Each
template of the incident window is scored by how surprising its count is given the
baseline: a signed log-likelihood ratio (G statistic) of the 2x2 table
(this template vs the rest, incident vs baseline). It grows with the count, so a template
that bursts a hundred times outranks one that appears once, and a template the baseline
never shows counts as new. Error and fatal templates get a bonus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from tools.logs.mining import ParsedLine

ERROR_LEVELS = {"ERROR", "FATAL", "CRITICAL", "SEVERE", "EMERG", "ALERT", "CRIT", "E", "F"}
ERROR_WORDS = re.compile(
    r"\b(error|errors|exception|fatal|fail(ed|ure|ing)?|panic|refused|timed? ?out|"
    r"unreachable|denied|corrupt(ed)?|killed|oom|abort(ed)?|traceback)\b",
    re.IGNORECASE,
)
#: How much an error template's score is multiplied by.
ERROR_BONUS = 1.5
MAX_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 500


@dataclass
class TemplateStats:
    template_id: int
    count: int = 0
    baseline_count: int = 0
    first_seen: datetime | None = None
    first_line: int | None = None  # 1-based line number in the incident window
    levels: set[str] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    """One template of the incident window, ranked by how suspicious its change is."""

    id: str  # F1, F2, ... in rank order
    template_id: int
    template: str
    count: int
    baseline_count: int
    first_seen: str | None  # ISO time, or "line N" when lines carry no time
    examples: list[str]
    is_error: bool
    is_new: bool
    score: float


def g_statistic(a: int, n_a: int, b: int, n_b: int) -> float:
    """Signed log-likelihood ratio for count ``a`` of ``n_a`` against ``b`` of ``n_b``.

    Positive when the template is more frequent in the first window.
    """

    def term(observed: float, expected: float) -> float:
        return observed * math.log(observed / expected) if observed > 0 and expected > 0 else 0.0

    total = n_a + n_b
    if total == 0 or a + b == 0:
        return 0.0
    hits = a + b
    rest = total - hits
    e_a, e_b = n_a * hits / total, n_b * hits / total
    e_ra, e_rb = n_a * rest / total, n_b * rest / total
    g = 2 * (term(a, e_a) + term(b, e_b) + term(n_a - a, e_ra) + term(n_b - b, e_rb))
    rate_a = a / n_a if n_a else 0.0
    rate_b = b / n_b if n_b else 0.0
    return g if rate_a >= rate_b else -g


def is_error(stats: TemplateStats, template: str) -> bool:
    return bool(stats.levels & ERROR_LEVELS) or bool(ERROR_WORDS.search(template))


class WindowComparison:
    """Counts templates of a baseline and an incident window, streaming."""

    def __init__(self, examples: int = MAX_EXAMPLES) -> None:
        self.max_examples = examples
        self.stats: dict[int, TemplateStats] = {}
        self.baseline_lines = 0
        self.incident_lines = 0

    def _stats(self, template_id: int) -> TemplateStats:
        if template_id not in self.stats:
            self.stats[template_id] = TemplateStats(template_id)
        return self.stats[template_id]

    def relabel(self, canonical: Callable[[int], int]) -> None:
        """Merge the counts of templates that were merged since their lines were counted
        (``LogParser.canonical``: a word found to be a variable joins its siblings)."""
        merged: dict[int, TemplateStats] = {}
        for template_id, stats in self.stats.items():
            root = canonical(template_id)
            into = merged.get(root)
            if into is None:
                stats.template_id = root
                merged[root] = stats
                continue
            into.count += stats.count
            into.baseline_count += stats.baseline_count
            earlier = into.first_line is None or (stats.first_line or 0) < into.first_line
            if stats.first_line is not None and earlier:
                into.first_line, into.first_seen = stats.first_line, stats.first_seen
            into.levels |= stats.levels
            into.examples = [*into.examples, *stats.examples][: self.max_examples]
        self.stats = merged

    def add_baseline(self, lines: Iterable[ParsedLine]) -> None:
        for line in lines:
            self.baseline_lines += 1
            self._stats(line.template_id).baseline_count += 1

    def add_incident(self, lines: Iterable[ParsedLine]) -> None:
        for line in lines:
            self.incident_lines += 1
            stats = self._stats(line.template_id)
            stats.count += 1
            if stats.first_line is None:
                stats.first_line = self.incident_lines
                stats.first_seen = line.timestamp
            if line.level:
                stats.levels.add(line.level.upper())
            if len(stats.examples) < self.max_examples:
                stats.examples.append(line.raw[:MAX_EXAMPLE_CHARS])

    def findings(self, templates: dict[int, str], limit: int = 10) -> list[Finding]:
        """Templates of the incident window that rose, most suspicious first."""
        scored: list[tuple[float, TemplateStats, str, bool]] = []
        for stats in self.stats.values():
            if stats.count == 0:
                continue
            template = templates.get(stats.template_id, "")
            error = is_error(stats, template)
            score = g_statistic(
                stats.count, self.incident_lines, stats.baseline_count, self.baseline_lines
            )
            if score <= 0 and not (error and stats.baseline_count == 0):
                continue
            scored.append((score * (ERROR_BONUS if error else 1.0), stats, template, error))
        scored.sort(key=lambda item: (-item[0], item[1].first_line or 0))
        return [
            Finding(
                id=f"F{rank}",
                template_id=stats.template_id,
                template=template,
                count=stats.count,
                baseline_count=stats.baseline_count,
                first_seen=stats.first_seen.isoformat()
                if stats.first_seen
                else f"line {stats.first_line}",
                examples=stats.examples,
                is_error=error,
                is_new=stats.baseline_count == 0,
                score=round(score, 2),
            )
            for rank, (score, stats, template, error) in enumerate(scored[:limit], 1)
        ]
