from __future__ import annotations

import json

from bot.agent.answer import Answer
from bot.slack import render
from tools.base import Evidence, ToolResult


def evidence(n: int, text: str = "kubectl logs -p") -> Evidence:
    return Evidence(
        id=f"E{n}",
        kind="runbook",
        title="Pod crash-looping",
        source="k/Pod.md",
        section="Diagnosis",
        text=text,
        score=0.71,
    )


def test_answer_blocks_cite_document_and_section() -> None:
    answer = Answer(question="q", evidence=[evidence(1)], notes=["the model is unavailable"])
    blocks = render.as_dicts(render.answer_blocks(answer))
    text = json.dumps(blocks, ensure_ascii=False)
    assert blocks[0]["type"] == "section"
    assert "Best match: Pod crash-looping › Diagnosis (k/Pod.md)" in blocks[0]["text"]["text"]
    assert "[E1] Pod crash-looping › Diagnosis" in text and "`k/Pod.md`" in text
    assert blocks[-1]["type"] == "context" and "unavailable" in text


def test_sections_never_exceed_3000_chars_and_code_stays_fenced() -> None:
    long = "```\n" + "\n".join(f"line {i} " + "x" * 60 for i in range(200)) + "\n```"
    blocks = render.as_dicts(
        render.answer_blocks(Answer(question="q", evidence=[evidence(1, long)]))
    )
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(texts) > 3
    assert all(len(t) <= render.MAX_SECTION_CHARS for t in texts)
    assert all(t.count("```") % 2 == 0 for t in texts)
    assert sum(t.count("line ") for t in texts) == 200  # nothing lost


def test_many_blocks_are_paged_into_messages_of_50() -> None:
    answer = Answer(question="q", evidence=[evidence(i) for i in range(1, 80)])
    pages = render.paginate(render.answer_blocks(answer))
    assert len(pages) == 2
    assert all(len(p) <= render.MAX_BLOCKS for p in pages)
    assert sum(len(p) for p in pages) == len(render.answer_blocks(answer))


def test_no_evidence_headline_says_why() -> None:
    answer = Answer(
        question="q",
        results=[
            ToolResult(
                tool="runbook_search",
                status="error",
                message="no runbook index in /x: build one with `opsbot index PATH`",
            )
        ],
    )
    assert "opsbot index" in render.as_dicts(render.answer_blocks(answer))[0]["text"]["text"]


def test_markdown_becomes_mrkdwn() -> None:
    out = render.mrkdwn("### Step\n**bold** and [docs](https://x.io/a)\n- item\n```\n**raw**\n```")
    assert out.splitlines() == [
        "*Step*",
        "*bold* and <https://x.io/a|docs>",
        "• item",
        "```",
        "**raw**",
        "```",
    ]


def test_help_and_usage() -> None:
    text = json.dumps(render.as_dicts(render.help_blocks()), ensure_ascii=False)
    assert "/ops ask" in text and "/ops help" in text
    assert "/ops frobnicate" in render.usage_text("frobnicate")


def test_control_characters_are_escaped_but_links_work() -> None:
    out = render.mrkdwn(
        "kubectl logs <pod> -n <namespace> && <!channel> see [docs](https://x.io/a?b=1)"
    )
    assert "&lt;pod&gt;" in out and "&amp;&amp;" in out and "&lt;!channel&gt;" in out
    assert "<https://x.io/a?b=1|docs>" in out
    answer = Answer(question="q", summary="Ping <!here> now [E1].", evidence=[evidence(1)])
    assert "<!here>" not in json.dumps(render.as_dicts(render.answer_blocks(answer)))


def test_context_never_exceeds_ten_elements() -> None:
    answer = Answer(question="q", notes=[f"note {i}" for i in range(14)])
    block = render.as_dicts(render.answer_blocks(answer))[-1]
    assert len(block["elements"]) == 10
    assert "note 13" in block["elements"][-1]["text"]
