"""Root-cause analysis of logs: mine templates, compare windows, rank what changed, and
look the top findings up in the runbook index. Deterministic: useful with no model."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from knowledge.index import SearchHit
from tools.logs.analysis import Finding, WindowComparison
from tools.logs.mining import LogParser
from tools.logs.sources import LogInputError, LogSource

#: Findings looked up in the runbook index, and runbooks kept per finding.
LOOKUP_FINDINGS = 3
RUNBOOKS_PER_FINDING = 2
MASK = re.compile(r"<[^<>\s]*>")

RunbookLookup = Callable[[str, int], list[SearchHit]]


@dataclass
class RunbookMatch:
    doc: str
    section: str
    score: float
    title: str = ""


@dataclass
class RcaFinding:
    finding: Finding
    runbooks: list[RunbookMatch] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        f = self.finding
        return {
            "id": f.id,
            "template": f.template,
            "count": f.count,
            "baseline_count": f.baseline_count,
            "first_seen": f.first_seen,
            "examples": f.examples,
            "is_error": f.is_error,
            "is_new": f.is_new,
            "score": f.score,
            "runbooks": [
                {"doc": r.doc, "section": r.section, "score": r.score} for r in self.runbooks
            ],
        }


@dataclass
class RcaReport:
    findings: list[RcaFinding]
    incident_lines: int
    baseline_lines: int
    templates: int
    notes: list[str] = field(default_factory=list)

    @property
    def headline(self) -> str:
        if not self.findings:
            return "Nothing stands out: no template rose in the incident window."
        top = self.findings[0]
        f = top.finding
        change = "new" if f.is_new else f"up from {f.baseline_count}"
        where = f" — see {top.runbooks[0].doc}" if top.runbooks else ""
        return f"Top finding {f.id}: `{f.template}` ({f.count}×, {change}){where}"

    def as_json(self) -> dict[str, Any]:
        return {
            "findings": [f.as_json() for f in self.findings],
            "incident_lines": self.incident_lines,
            "baseline_lines": self.baseline_lines,
            "templates": self.templates,
            "notes": self.notes,
        }


def runbook_query(template: str) -> str:
    """A template as a search query: masks out, words kept."""
    return " ".join(MASK.sub(" ", template).split())


def count_lines(source: LogSource) -> int:
    return sum(1 for _ in source.lines())


def analyse(
    incident: LogSource,
    baseline: LogSource | None = None,
    *,
    lookup: RunbookLookup | None = None,
    content_only: bool = False,
    limit: int = 10,
    examples: int = 3,
    parser: LogParser | None = None,
) -> RcaReport:
    """Compare the incident with the baseline (or the first half of the incident input).
    ``parser``: a fresh parser with other settings (``content_only`` is then its own)."""
    parser = parser or LogParser(content_only=content_only)
    comparison = WindowComparison(examples=examples)
    notes: list[str] = []
    if baseline is not None:
        comparison.add_baseline(parser.parse_lines(baseline.lines()))
        incident_lines: Iterator[str] = incident.lines()
    else:
        total = count_lines(incident)
        if total < 2:
            raise LogInputError(f"{incident.name} has too few lines to compare")
        split = total // 2
        lines = incident.lines()
        comparison.add_baseline(parser.parse_lines(itertools.islice(lines, split)))
        incident_lines = lines
        notes.append(f"no baseline given: the first {split} of {total} lines serve as one")
    comparison.add_incident(parser.parse_lines(incident_lines))
    if comparison.incident_lines == 0:
        raise LogInputError(f"{incident.name} has no log lines")
    comparison.relabel(parser.canonical)
    templates = parser.templates()
    findings = [RcaFinding(f) for f in comparison.findings(templates, limit=limit)]
    if lookup is not None:
        for item in findings[:LOOKUP_FINDINGS]:
            query = runbook_query(item.finding.template)
            if query:
                item.runbooks = [
                    RunbookMatch(doc=h.doc, section=h.section, score=h.score, title=h.title)
                    for h in lookup(query, RUNBOOKS_PER_FINDING)
                ]
    for source in (incident, baseline):
        if source is not None:
            notes.extend(source.notes)
    return RcaReport(
        findings=findings,
        incident_lines=comparison.incident_lines,
        baseline_lines=comparison.baseline_lines,
        templates=len(templates),
        notes=notes,
    )


def to_markdown(report: RcaReport) -> str:
    """The report as Markdown: headline, then the evidence of each finding."""
    out = [f"# Log RCA\n\n**{report.headline}**\n"]
    out.append(
        f"{report.incident_lines} incident lines against {report.baseline_lines} baseline "
        f"lines, {report.templates} templates.\n"
    )
    for item in report.findings:
        f = item.finding
        tags = ", ".join(t for t, on in (("new", f.is_new), ("error", f.is_error)) if on)
        out.append(f"## {f.id}: `{f.template}`\n")
        out.append(
            f"- count {f.count} (baseline {f.baseline_count}){f' — {tags}' if tags else ''}; "
            f"first seen {f.first_seen}; score {f.score}"
        )
        for match in item.runbooks:
            out.append(f"- runbook: {match.doc} § {match.section} (score {match.score:.2f})")
        out.append("\n```\n" + "\n".join(f.examples) + "\n```\n")
    out.extend(f"_Note: {note}_\n" for note in report.notes)
    return "\n".join(out)
