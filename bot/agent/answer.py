"""The answer to one turn: evidence first (numbered E1, E2, ...), an optional model
summary that cites it, and notes. Renderers (Slack, terminal) take it from here."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from tools.base import Evidence, ToolResult

CITATION = re.compile(r"\[(E\d+)\]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Answer(BaseModel):
    question: str
    evidence: list[Evidence] = Field(default_factory=list)
    results: list[ToolResult] = Field(default_factory=list)
    summary: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def headline(self) -> str:
        """One line that is useful with no model: the best evidence, or why there is none."""
        if self.evidence and self.evidence[0].kind == "runbook":
            top = self.evidence[0]
            return f"Best match: {top.where} ({top.source})"
        found = [r.message for r in self.results if r.status == "ok"]
        if found:  # a tool whose message is its own headline (e.g. log RCA's top finding)
            return found[0]
        problems = [r.message for r in self.results if r.status in ("error", "no_data")]
        return problems[0] if problems else "I found no evidence for that."

    def as_text(self) -> str:
        """Plain Markdown: what `opsbot chat` prints and what the thread's memory keeps."""
        lines = [self.headline]
        if self.summary:
            lines += ["", self.summary]
        for ev in self.evidence:
            score = f", score {ev.score:.2f}" if ev.score is not None else ""
            lines += ["", f"[{ev.id}] {ev.where} — {ev.source}{score}"]
            lines += [f"    {line}" for line in ev.text.splitlines()]
        for result in self.results:
            if result.status in ("error", "approval_required"):
                lines += ["", f"{result.tool}: {result.message}"]
            lines += [f"\nChart: {image}" for image in result.images]
        lines += [f"\nNote: {note}" for note in self.notes]
        return "\n".join(lines)


def number_evidence(results: list[ToolResult]) -> list[Evidence]:
    """All evidence of a turn, numbered E1.. in the order the tools found it."""
    out: list[Evidence] = []
    for result in results:
        for ev in result.evidence:
            out.append(ev.model_copy(update={"id": f"E{len(out) + 1}"}))
    return out


def keep_cited(summary: str, evidence_ids: set[str]) -> tuple[str, int]:
    """Keep the sentences that cite known evidence; return the text and how many were dropped."""
    kept: list[str] = []
    dropped = 0
    for sentence in SENTENCE_END.split(summary.strip()):
        cited = set(CITATION.findall(sentence))
        if cited and cited <= evidence_ids:
            kept.append(sentence.strip())
        elif sentence.strip():
            dropped += 1
    return " ".join(kept), dropped
