"""A served model on a task suite (LLMOps): any OpenAI-compatible URL, a registered model
version (``NAME@VERSION``, served by llama.cpp for the run when its weights are a local
GGUF), or by default the packaged Gemma 3 270M. Each case is a completion prompt with the
expected text; scored by exact match (the first line), string presence and chrF
(sacrebleu), with the serving figures of each request: time to first token, tokens per
second, latency, and whether it failed (a failed request is a measurement of the model's
error rate, not an error of the eval)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from sacrebleu.metrics import CHRF

from evals.cases import CaseBase
from evals.scorers import Scored
from evals.suite import Split, Suite
from tools.base import ToolError

START_TIMEOUT_S = 120.0
TIMEOUT_S = 60.0
CHRF_METRIC = CHRF()


class ModelCase(CaseBase):
    prompt: str
    expect: str
    max_tokens: int = 8


def first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip().rstrip(".") if text.strip() else ""


def _serve_gguf(path: Path, work: Path, stack: contextlib.ExitStack) -> str:
    from bot.llm_server import llama_server_command
    from bot.net import free_port

    port = free_port()
    command = llama_server_command(path, host="127.0.0.1", port=port, n_ctx=512,
                                   models_dir=work / "models")  # fmt: skip
    log = (work / "model-server.log").open("ab")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    stack.callback(log.close)
    stack.callback(proc.kill)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the model server exited: {(work / 'model-server.log').read_text()[-500:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return url
        time.sleep(0.3)
    raise RuntimeError("the model server did not answer")


def resolve_model(target: str | None, work: Path, stack: contextlib.ExitStack,
                  registry: Any = None) -> tuple[str, str]:  # fmt: skip
    """(base URL, a name for reports) of what the suite evaluates."""
    if target and target.startswith(("http://", "https://")):
        return target.rstrip("/"), target
    if target and "@" in target:
        if registry is None:
            raise RuntimeError("NAME@VERSION needs the bot's model registry")
        name, version = target.split("@", 1)
        try:
            row = registry.get(name, version)
        except ToolError as exc:
            raise RuntimeError(str(exc)) from None
        if not str(row.uri).endswith(".gguf"):
            raise RuntimeError(f"{target} is {row.uri}: give its serving URL with --model URL")
        return _serve_gguf(Path(row.uri), work, stack), target
    from bot.llm_server import embedded_model_file
    from bot.settings import EMBEDDED_MODEL

    return _serve_gguf(embedded_model_file(work / "models"), work, stack), EMBEDDED_MODEL


class ModelScorer:
    def __init__(self, suite: Suite, split: Split, work: Path, target: str | None = None,
                 registry: Any = None) -> None:  # fmt: skip
        self.spec = suite.split(split)
        self.suite, self.split_name = suite, split
        self._stack = contextlib.ExitStack()
        self.url, self.name = resolve_model(target, work, self._stack, registry)
        self.client = httpx.Client(timeout=TIMEOUT_S)
        self._stack.callback(self.client.close)
        try:
            listed = self.client.get(f"{self.url}/models").json().get("data", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            self._stack.close()
            raise RuntimeError(f"the model at {self.url} did not answer "
                               f"({type(exc).__name__})") from None  # fmt: skip
        self.served = str(listed[0]["id"]) if listed else "model"

    def cases(self) -> list[ModelCase]:
        return self.suite.load(self.split_name, ModelCase)

    def _complete(self, case: ModelCase) -> tuple[str, float, float, int]:
        """The text, time to first token, total seconds and completion tokens (streamed)."""
        body = {"model": self.served, "prompt": case.prompt, "max_tokens": case.max_tokens,
                "temperature": 0.0, "stream": True}  # fmt: skip
        started, first, text, chunks, tokens = time.perf_counter(), None, "", 0, None
        with self.client.stream("POST", f"{self.url}/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                data = json.loads(line[5:])
                piece = (data.get("choices") or [{}])[0].get("text") or ""
                if piece and first is None:
                    first = time.perf_counter() - started
                text, chunks = text + piece, chunks + bool(piece)
                usage = data.get("usage") or {}
                tokens = usage.get("completion_tokens", tokens)
        total = time.perf_counter() - started
        return text, first if first is not None else total, total, int(tokens or chunks)

    def score(self, case: ModelCase) -> Scored:
        try:
            text, ttft, total, tokens = self._complete(case)
        except (httpx.HTTPError, ValueError) as exc:  # the model failed: counted in error_rate
            return Scored(
                {"error_rate": 1.0}, False, {"error": f"{type(exc).__name__}: {exc}"[:300]}
            )
        expected = case.expect.strip()
        exact = first_line(text).lower() == expected.lower()
        contains = expected.lower() in text.lower()
        chrf = CHRF_METRIC.sentence_score(first_line(text), [expected]).score / 100
        decode = total - ttft
        speed = tokens / decode if decode > 0 and tokens > 1 else 0.0
        scores = {"exact_match": float(exact), "contains": float(contains), "chrf": chrf,
                  "ttft_s": ttft, "latency_s": total, "latency_p95_s": total, "error_rate": 0.0,
                  "tokens_per_s": speed}  # fmt: skip
        return Scored(scores, contains, {"text": text[:200], "tokens": tokens})

    def close(self) -> None:
        self._stack.close()
