"""Log RCA on incidents built from real Loghub lines, log inputs, and the Loki client."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from bot.agent.answer import Answer
from bot.agent.service import open_agent
from bot.settings import Settings
from tests.conftest import SHARED_DATA
from tools.base import ToolContext
from tools.logs.analysis import g_statistic
from tools.logs.rca import analyse, to_markdown
from tools.logs.sources import MAX_LINE_CHARS, LogInputError, file_source, text_source
from tools.registry import run_tool

LOGHUB = SHARED_DATA / "loghub"


def loghub(system: str) -> list[tuple[str, str]]:
    folder = LOGHUB / system
    if not folder.is_dir():
        pytest.skip(f"shared Loghub data missing at {folder}")
    raw = (folder / f"{system}_2k.log").read_text(errors="replace").splitlines()
    with (folder / f"{system}_2k.log_structured.csv").open() as fh:
        events = [row["EventId"] for row in csv.DictReader(fh)]
    return list(zip(raw, events, strict=True))


@pytest.fixture
def bgl_incident(tmp_path: Path) -> tuple[Path, Path]:
    """Baseline: half of BGL's lines without E55 ("data TLB error interrupt", FATAL).
    Incident: the other half with E55's real lines in a burst."""
    lines = loghub("BGL")
    rng = random.Random(7)
    others = [(i, line) for i, (line, event) in enumerate(lines) if event != "E55"]
    burst = [line for line, event in lines if event == "E55"][:30]
    rng.shuffle(others)
    half = len(others) // 2
    baseline = [line for _, line in sorted(others[:half])]
    window = [line for _, line in sorted(others[half:])]
    window = window[:400] + burst + window[400:]
    (tmp_path / "baseline.log").write_text("\n".join(baseline) + "\n")
    (tmp_path / "incident.log").write_text("\n".join(window) + "\n")
    return tmp_path / "incident.log", tmp_path / "baseline.log"


def test_an_injected_fatal_template_is_finding_one(bgl_incident: tuple[Path, Path]) -> None:
    incident, baseline = bgl_incident
    report = analyse(file_source(incident), file_source(baseline))
    top = report.findings[0].finding
    assert "data TLB error interrupt" in top.template
    assert (top.count, top.baseline_count) == (30, 0)
    assert top.is_new and top.is_error
    assert top.first_seen and top.first_seen.startswith("2005-")
    assert all("data TLB error interrupt" in ex for ex in top.examples)
    assert report.baseline_lines == 970 and report.incident_lines == 1000
    assert "Top finding F1" in report.headline
    markdown = to_markdown(report)
    assert "## F1: `" in markdown and "data TLB error interrupt" in markdown


def test_json_shape_and_runbook_lookup(bgl_incident: tuple[Path, Path], sample_index: Path) -> None:
    incident, baseline = bgl_incident
    ctx = ToolContext(index_dir=sample_index, embedding_model="all-MiniLM-L6-v2")
    from tools.logs.tool import lookup

    report = analyse(file_source(incident), file_source(baseline), lookup=lookup(ctx))
    data = json.loads(json.dumps(report.as_json()))
    first = data["findings"][0]
    assert set(first) >= {
        "id",
        "template",
        "count",
        "baseline_count",
        "first_seen",
        "examples",
        "runbooks",
    }
    assert first["id"] == "F1" and first["count"] == 30
    assert all(set(r) == {"doc", "section", "score"} for r in first["runbooks"])
    assert [f["id"] for f in data["findings"]] == [
        f"F{i}" for i in range(1, len(data["findings"]) + 1)
    ]


def test_one_input_uses_its_first_half_as_baseline(tmp_path: Path) -> None:
    normal = [
        f"2026-11-23 10:00:{i % 60:02d} INFO worker {i} served request in {i % 7} ms"
        for i in range(200)
    ]
    broken = [
        f"2026-11-23 10:05:{i % 60:02d} ERROR db pool exhausted after {i} waits" for i in range(40)
    ]
    path = tmp_path / "app.log"
    path.write_text("\n".join(normal + normal[:60] + broken) + "\n")
    report = analyse(file_source(path))
    assert any("first 150 of 300 lines" in note for note in report.notes)
    assert "db pool exhausted" in report.findings[0].finding.template


def test_g_statistic_grows_with_count_and_is_signed() -> None:
    assert g_statistic(30, 1000, 0, 1000) > g_statistic(3, 1000, 0, 1000) > 0
    assert g_statistic(0, 1000, 30, 1000) < 0
    assert g_statistic(10, 1000, 10, 1000) == pytest.approx(0.0)


def test_bad_inputs_get_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_text("")
    (tmp_path / "blob.bin").write_bytes(b"\x7fELF\x00\x01\x02" * 200)
    with pytest.raises(LogInputError, match="empty"):
        file_source(tmp_path / "empty.log")
    with pytest.raises(LogInputError, match="binary"):
        file_source(tmp_path / "blob.bin")
    with pytest.raises(LogInputError, match="over the"):
        (tmp_path / "big.log").write_text("x\n" * 1000)
        file_source(tmp_path / "big.log", max_bytes=100)
    with pytest.raises(LogInputError, match="no log lines"):
        text_source("```\n\n```")


def test_mixed_encodings_and_huge_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "mixed.log"
    path.write_bytes(
        "ok caf\u00e9\n".encode() + b"latin1 caf\xe9\n" + b"A" * (MAX_LINE_CHARS * 3) + b"\nlast\n"
    )
    source = file_source(path)
    lines = list(source.lines())
    assert lines[0] == "ok café" and lines[1].startswith("latin1 caf")
    assert len(lines[2]) == MAX_LINE_CHARS and lines[3] == "last"
    assert any("cut" in note for note in source.notes)


def test_attached_files_cannot_escape_the_uploads_folder(tmp_path: Path) -> None:
    ctx = ToolContext(index_dir=tmp_path / "none", embedding_model="x", uploads_dir=tmp_path / "up")
    (tmp_path / "up").mkdir()
    result = run_tool("log_rca", {"file": "../../etc/passwd"}, ctx)
    assert result.status == "error" and "not a file attached" in result.message


async def test_a_follow_up_shows_the_lines_behind_a_finding(
    bgl_incident: tuple[Path, Path], settings: Settings
) -> None:
    incident, _ = bgl_incident
    (settings.uploads_dir / "t1").mkdir(parents=True)
    (settings.uploads_dir / "t1" / "bgl.log").write_bytes(incident.read_bytes())
    async with open_agent(settings) as agent:
        first = await agent.ask(
            "rca", "what went wrong?", user="u", source="test", attachments=["t1/bgl.log"]
        )
        assert isinstance(first, Answer) and first.results[0].tool == "log_rca"
        f2 = [e for e in first.evidence if e.kind == "log"][1]
        assert f2.title.startswith("F2")
        lines = await agent.ask(
            "rca", "show me the lines behind finding 2", user="u", source="test"
        )
    assert isinstance(lines, Answer) and lines.results[0].tool == "rca_lines"
    assert lines.evidence[0].section == f2.section  # the same template
    shown = lines.evidence[0].text.splitlines()
    assert shown[:3] == f2.text.splitlines()  # the RCA's examples, then more
    count = int(f2.title.split(": ")[1].split("×")[0])
    assert len(shown) == min(20, count)


def test_a_file_argument_must_be_one_of_the_conversations_files(tmp_path: Path) -> None:
    from tools.base import ToolContext, ToolError
    from tools.logs.tool import attached

    for folder in ("C1-1.1", "C2-2.2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "app.log").write_text("x\n")
    ctx = ToolContext(index_dir=tmp_path, embedding_model="m", uploads_dir=tmp_path,
                      files=("C1-1.1/app.log",))  # fmt: skip
    assert attached(ctx, "C1-1.1/app.log") == (tmp_path / "C1-1.1" / "app.log").resolve()
    assert attached(ctx, "app.log") == (tmp_path / "C1-1.1" / "app.log").resolve()
    for other in ("C2-2.2/app.log", "../C2-2.2/app.log", "/etc/passwd"):
        try:
            attached(ctx, other)
        except ToolError as exc:
            assert "not a file attached to this conversation" in str(exc)
        else:
            raise AssertionError(f"{other} was allowed")
