"""The model suite for real: the packaged Gemma 3 270M on llama.cpp (a base model: its
scores are whatever it scores), a registered version by NAME@VERSION, and a model server
that is down (its error rate, not a crash)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.llm_server import LocalModelError, embedded_model_file
from evals.runner import RunOptions, run_suite
from evals.store import EvalStore
from tools.deploy.registry import Registry

pytestmark = pytest.mark.integration


def test_the_packaged_gemma_is_measured(store: EvalStore) -> None:
    try:
        embedded_model_file(Path("/tmp/opsbot-test-models"))
    except LocalModelError as exc:
        pytest.skip(f"LOUD SKIP: the packaged Gemma GGUF is not installed ({exc})")
    run = run_suite("model", store, RunOptions())
    assert run.status == "passed" and run.model == "gemma-3-270m-base", (run.error, run.metrics)
    m = {name: v["value"] for name, v in run.metrics.items()}
    assert m["error_rate"] == 0.0 and run.counts["cases"] == 12
    for name in ("exact_match", "contains", "chrf"):
        assert 0.0 <= m[name] <= 1.0
    assert 0 < m["ttft_s"] <= m["latency_s"] <= m["latency_p95_s"] and m["tokens_per_s"] > 0
    assert run.id is not None
    texts = [c.output["text"] for c in store.cases(run.id)]
    assert all(isinstance(t, str) for t in texts) and any(t.strip() for t in texts)


def test_a_registered_version_is_served_for_the_run(store: EvalStore, tmp_path: Path) -> None:
    try:
        gguf = embedded_model_file(tmp_path / "models")
    except LocalModelError as exc:
        pytest.skip(f"LOUD SKIP: the packaged Gemma GGUF is not installed ({exc})")
    registry = Registry(store.engine)
    registry.register("gemma", "v1", str(gguf), params={}, by="U0ALICE")
    run = run_suite("model", store, RunOptions(model="gemma@v1", registry=registry))
    assert run.status == "passed" and run.model == "gemma@v1", run.error
    missing = run_suite("model", store, RunOptions(model="gemma@v9", registry=registry))
    assert missing.status == "error" and "no version 'v9'" in missing.error


def test_a_model_server_that_is_down_is_an_error_rate(store: EvalStore) -> None:
    run = run_suite("model", store, RunOptions(model="http://127.0.0.1:9/v1"))
    assert run.status == "error" and "http://127.0.0.1:9/v1 did not answer" in run.error
