"""The local target's server command carries the version's serving parameters."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.deploys.targets.base import TargetError
from bot.deploys.targets.local import LocalTarget


def target(tmp_path: Path) -> LocalTarget:
    return LocalTarget(SimpleNamespace(data_dir=tmp_path), serving=None)  # type: ignore[arg-type]


def test_a_gguf_is_served_by_llama_cpp_with_its_parameters(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    params = {"served_name": "gemma-v3", "context_length": 1024, "chat_format": "gemma",
              "n_gpu_layers": 99, "args": "--n_threads 2"}  # fmt: skip
    command = target(tmp_path)._command({"uri": str(gguf), "params": params, "model": "gemma",
                                         "version": "v3"}, port=8123)  # fmt: skip
    after = {flag: command[command.index(flag) + 1] for flag in
             ("--model", "--model_alias", "--port", "--n_ctx", "--chat_format", "--n_gpu_layers",
              "--n_threads")}  # fmt: skip
    assert after == {"--model": str(gguf), "--model_alias": "gemma-v3", "--port": "8123",
                     "--n_ctx": "1024", "--chat_format": "gemma", "--n_gpu_layers": "99",
                     "--n_threads": "2"}  # fmt: skip


def test_other_weights_need_vllm_and_carry_the_quantisation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = {"uri": "hf://org/model-awq", "model": "m", "version": "v1",
            "params": {"quantisation": "awq", "context_length": 4096}}  # fmt: skip
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(TargetError, match="need vLLM"):
        target(tmp_path)._command(plan, port=1)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/vllm")
    command = target(tmp_path)._command(plan, port=9000)
    assert command[:3] == ["/usr/bin/vllm", "serve", "org/model-awq"]
    assert command[command.index("--quantization") + 1] == "awq"
    assert command[command.index("--max-model-len") + 1] == "4096"
