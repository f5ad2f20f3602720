"""The prompt for a model's summary on top of a log RCA report (bot/prompts/rca_summary.md)."""

from __future__ import annotations

from bot.agent.prompts import load_prompt, render_prompt


def test_the_rca_summary_prompt_asks_for_cited_findings_only() -> None:
    text = load_prompt("rca_summary")
    assert "{question}" in text and "{evidence}" in text
    assert "[E1]" in text and "findings" in text and "baseline" in text
    rendered = render_prompt(
        "rca_summary",
        question="why is checkout failing?",
        evidence="[E1] L3 new error: 40× (baseline 0) (first seen 09:41):\ndisk full",
    )
    assert rendered.endswith("disk full") and "why is checkout failing?" in rendered
    assert "{question}" not in rendered and "{evidence}" not in rendered
