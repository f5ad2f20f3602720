from __future__ import annotations

from pathlib import Path

from knowledge.embedder import Embedder
from knowledge.index import build_index
from tools.base import ToolContext
from tools.registry import all_tools, langchain_tools, run_tool
from tools.runbooks import MIN_SCORE

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def project_tools() -> dict[str, object]:
    return {n: s for n, s in all_tools().items() if s.run.__module__.startswith("tools.")}


def test_tools_are_discovered_where_they_are_defined() -> None:
    assert "runbook_search" in project_tools()


def test_every_tool_has_a_description_status_and_readme_line() -> None:
    for name, spec in project_tools().items():
        assert len(spec.description) > 40, name  # type: ignore[attr-defined]
        assert spec.status_text.endswith("…"), name  # type: ignore[attr-defined]
        assert f"| `{name}` |" in README, f"{name} is missing from README.md's tool table"


def test_langchain_wrappers_carry_name_and_schema() -> None:
    wrapped = {t.name: t for t in langchain_tools()}
    schema = wrapped["runbook_search"].args_schema.model_json_schema()  # type: ignore[union-attr]
    assert schema["required"] == ["query"]


def test_bad_arguments_become_an_error_result(tmp_path: Path) -> None:
    ctx = ToolContext(index_dir=tmp_path, embedding_model="all-MiniLM-L6-v2")
    result = run_tool("runbook_search", {"query": ""}, ctx)
    assert result.status == "error" and "bad arguments" in result.message
    unknown = run_tool("drop_database", {}, ctx)
    assert unknown.status == "error" and "unknown tool" in unknown.message


def test_missing_index_is_an_error_the_user_can_fix(tmp_path: Path) -> None:
    ctx = ToolContext(index_dir=tmp_path / "nothing", embedding_model="all-MiniLM-L6-v2")
    result = run_tool("runbook_search", {"query": "pods crash"}, ctx)
    assert result.status == "error"
    assert "opsbot index" in result.message


def test_runbook_search_ok_and_no_data(sample_index: Path) -> None:
    ctx = ToolContext(index_dir=sample_index, embedding_model="all-MiniLM-L6-v2")
    ok = run_tool("runbook_search", {"query": "certificate expires in 3 days", "k": 2}, ctx)
    assert ok.status == "ok" and 1 <= len(ok.evidence) <= 2
    assert ok.evidence[0].source == "infra/TLSCertificateExpiring.md"
    assert all(e.score is not None and e.score >= MIN_SCORE for e in ok.evidence)


def test_runbook_search_reports_no_data_apart_from_errors(
    tmp_path: Path, embedder: Embedder
) -> None:
    src = tmp_path / "rb"
    src.mkdir()
    (src / "cache.md").write_text("# Redis cache eviction\n## Fix\nRaise maxmemory.")
    build_index(src, tmp_path / "idx", embedder)
    ctx = ToolContext(index_dir=tmp_path / "idx", embedding_model="all-MiniLM-L6-v2")
    none = run_tool("runbook_search", {"query": "quarterly sales tax filing for Norway"}, ctx)
    assert none.status == "no_data" and none.evidence == []
    assert "Nothing in the runbooks matches" in none.message
    # An off-topic question that shares a word with the runbook: its closest is only named.
    weak = run_tool("runbook_search", {"query": "how do I rotate the redis password?"}, ctx)
    assert weak.status == "no_data" and weak.evidence == []
    assert "closest, weakly: Redis cache eviction" in weak.message
    on_topic = run_tool("runbook_search", {"query": "redis keys are evicted, raise maxmemory?"},
                        ctx)  # fmt: skip
    assert on_topic.status == "ok" and on_topic.evidence[0].source == "cache.md"


def test_top_k_setting_bounds_the_hits(sample_index: Path) -> None:
    ctx = ToolContext(index_dir=sample_index, embedding_model="all-MiniLM-L6-v2", top_k=1)
    assert len(run_tool("runbook_search", {"query": "pods crash-loop"}, ctx).evidence) == 1
