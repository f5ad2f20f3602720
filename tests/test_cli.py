"""The `opsbot` command as a user runs it (a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from bot.deploys.requests import DeployRequest, Requests
from bot.store import Store
from tests.conftest import SAMPLE_RUNBOOKS

OPSBOT = str(Path(sys.executable).with_name("opsbot"))


def run(*args: str, data: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    return subprocess.run(
        [OPSBOT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, "OPSBOT_DATA_DIR": str(data), **env},
    )


def test_help_documents_every_command(tmp_path: Path) -> None:
    out = run("--help", data=tmp_path).stdout
    for command in ("chat", "serve", "index", "search", "llm", "slack-standin", "slack-send"):
        assert command in out
    assert "serve" in run("llm", "--help", data=tmp_path).stdout


def test_index_search_and_chat_once(tmp_path: Path) -> None:
    built = run("index", str(SAMPLE_RUNBOOKS), data=tmp_path)
    assert built.returncode == 0 and built.stdout.startswith("indexed 12 runbooks")
    again = run("index", str(SAMPLE_RUNBOOKS), data=tmp_path)
    assert again.stdout.startswith("up to date")
    found = run(
        "search",
        "-k",
        "2",
        "--json",
        data=tmp_path,
        stdin="what should I check when pods crash-loop?\n\nvllm kv cache is full\n",
    )
    lines = [json.loads(line) for line in found.stdout.splitlines()]
    assert [line["query"] for line in lines] == [
        "what should I check when pods crash-loop?",
        "vllm kv cache is full",
    ]
    assert lines[0]["hits"][0]["doc"] == "kubernetes/PodCrashLooping.md"
    assert lines[1]["hits"][0]["doc"] == "ml/VLLMGPUOutOfMemory.md"
    assert all(
        set(h) >= {"doc", "section", "score"} and len(line["hits"]) == 2
        for line in lines
        for h in line["hits"]
    )
    chat = run("chat", "--once", "what should I check when pods crash-loop?", data=tmp_path)
    assert chat.returncode == 0
    assert (
        "[E1] Pod crash-looping" in chat.stdout and "kubernetes/PodCrashLooping.md" in chat.stdout
    )


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    missing = run("search", data=tmp_path, stdin="pods\n")
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == f"opsbot: no runbook index in {tmp_path / 'index'}: build one with `opsbot index PATH`"
    )
    bad = run("chat", "--once", "hi", data=tmp_path, OPSBOT_LLM_URL="vllm:8000")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("opsbot: OPSBOT_LLM_URL: ")
    assert "Traceback" not in bad.stderr
    serve = run("serve", data=tmp_path)
    assert serve.returncode == 2 and "OPSBOT_SLACK_BOT_TOKEN" in serve.stderr
    empty = run("chat", "--once", "  ", data=tmp_path)
    assert empty.returncode == 2 and "ask something" in empty.stderr


def test_llm_serve_command_uses_the_packaged_model(tmp_path: Path) -> None:
    out = run("llm", "serve", "--print-command", "--port", "8123", data=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "llama_cpp.server" in out.stdout and "--port 8123" in out.stdout
    assert (
        "--model_alias gemma-3-270m-base" in out.stdout and "chatml-function-calling" in out.stdout
    )
    missing = run("llm", "serve", "--model", str(tmp_path / "nope.gguf"), data=tmp_path)
    assert missing.returncode == 2 and "no model file" in missing.stderr


def test_model_registry_deploy_history_and_audit_commands(tmp_path: Path) -> None:
    gguf = tmp_path / "gemma.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    data = tmp_path / "data"
    ok = run("model", "register", "gemma", "v1", str(gguf), "context_length=2048", data=data)
    assert ok.returncode == 0 and "registered gemma v1" in ok.stdout
    again = run("model", "register", "gemma", "v1", str(gguf), data=data)
    assert (
        again.returncode == 2 and again.stderr.strip() == "opsbot: gemma v1 is registered already"
    )
    run("model", "register", "gemma", "v2", "hf://org/gemma", "served_name=g2", data=data)
    listed = [
        json.loads(line) for line in run("model", "list", "--json", data=data).stdout.splitlines()
    ]
    assert [(m["model"], m["version"]) for m in listed] == [("gemma", "v1"), ("gemma", "v2")]
    assert len(listed[0]["sha256"]) == 64 and listed[0]["params"] == {"context_length": 2048}
    assert listed[1]["sha256"] is None and listed[1]["params"] == {"served_name": "g2"}
    status = json.loads(run("deploy", "status", "gemma", "--json", data=data).stdout)
    assert set(status) == {"model", "env", "version", "address", "state"}
    assert status["model"] == "gemma" and status["env"] == "staging"
    assert run("deploy", "history", "--json", data=data).stdout == ""
    requests = Requests(Store(f"sqlite:///{data / 'opsbot.sqlite'}").engine)
    plan = {"action": "deploy", "model": "gemma", "version": "v2", "env": "staging"}
    made = requests.create(DeployRequest(action="deploy", model="gemma", env="staging",
                                         version="v2", from_version="v1", plan=plan,
                                         plan_hash="", requested_by="U0ALICE", channel="C1"),
                           ttl=timedelta(hours=1))  # fmt: skip
    assert made.id is not None
    requests.decide(made, "U0BOB", "approve")
    requests.move(made.id, "pending", "approved")
    requests.start_execution(made.id)
    (record,) = [json.loads(x) for x in run("deploy", "history", "gemma", "--json",
                                            data=data).stdout.splitlines()]  # fmt: skip
    assert {k: record[k] for k in ("id", "model", "version", "env", "state", "requested_by",
                                   "approved_by", "executions")} == {
        "id": made.id, "model": "gemma", "version": "v2", "env": "staging", "state": "running",
        "requested_by": "U0ALICE", "approved_by": ["U0BOB"], "executions": 1}  # fmt: skip
    records = [json.loads(x) for x in run("audit", "--json", data=data).stdout.splitlines()]
    assert [r["action"] for r in records] == ["model register", "model register"]


def test_db_upgrade_and_current_on_sqlite_and_postgres(db_url: str, tmp_path: Path) -> None:
    """`opsbot db upgrade` brings an empty database to the newest revision, once; a second
    run changes nothing; `db current` says where it is (both Postgres URL forms work)."""
    from bot.migrate import head_revision

    head = head_revision()
    env = {"OPSBOT_DATABASE_URL": db_url.replace("postgresql+psycopg://", "postgresql://")}
    first = run("db", "upgrade", data=tmp_path / "data", **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"database at revision {head} (was None)"
    again = run("db", "upgrade", data=tmp_path / "data", **env)
    assert again.stdout.strip() == f"database at revision {head}"
    current = run("db", "current", data=tmp_path / "data", **env)
    assert current.returncode == 0 and f"current {head}" in current.stdout
    bad = run("db", "upgrade", data=tmp_path / "data",
              OPSBOT_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")  # fmt: skip
    assert bad.returncode != 0 and "could not migrate the database" in bad.stderr
