"""The judge of the judged metrics: ragas metrics (``ragas.metrics.collections``) scored by
an OpenAI-compatible model (``OPSBOT_EVAL_JUDGE_URL`` / ``OPSBOT_EVAL_JUDGE_MODEL``, the
self-hosted vLLM in production).

ragas 0.4 as it behaves (see the evals issue): its metrics are scored with ``await
metric.ascore(…)``; it takes an LLM from ``llm_factory(model, client=AsyncOpenAI(…))``; a
failed row would be NaN and drop out of its own mean; it bounds neither concurrency nor
time. So here every judged score is awaited under a semaphore and a timeout, and anything
that is not a number in [0, 1] is a :class:`JudgeError`, which the runner counts as the
case's ``judge_error`` (never averaged away). Small self-hosted judges often answer JSON
ragas cannot parse: instructor retries a few times, then that is a judge error too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# Before ragas is imported anywhere: "1" does not stop its telemetry, and the check is
# cached at first use.
os.environ["RAGAS_DO_NOT_TRACK"] = "true"


class JudgeError(Exception):
    """The judge could not score: down, too slow, or an answer ragas cannot parse."""


@dataclass(frozen=True)
class JudgeConfig:
    url: str
    model: str
    api_key: str = "none"
    timeout_s: float = 120.0
    concurrency: int = 4
    max_tokens: int = 2048
    retries: int = 1

    @property
    def label(self) -> str:
        """What the run records: the model and the server, without credentials or path."""
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        return f"{self.model or '(server default)'} @ {parts.scheme}://{host}{port}"[:300]


def judge_from_settings(settings: Any, url: str | None = None) -> JudgeConfig | None:
    """The configured judge (``--judge URL`` overrides the URL); None without one."""
    conf = settings.eval
    chosen = url or (str(conf.judge_url) if conf.judge_url else None)
    if not chosen:
        return None
    url = chosen.rstrip("/")
    return JudgeConfig(
        url=url, model=conf.judge_model or served_model(url),
        api_key=conf.judge_api_key.get_secret_value(), timeout_s=conf.judge_timeout,
        concurrency=conf.judge_concurrency, max_tokens=conf.judge_max_tokens,
    )  # fmt: skip


def served_model(url: str) -> str:
    """The model an OpenAI-compatible server serves (its first), for a judge configured
    without a model name; "" when the server does not say (its errors show in the run)."""
    import httpx

    try:
        data = httpx.get(f"{url}/models", timeout=5).json()["data"]
        return str(data[0]["id"])
    except Exception:  # down, not OpenAI-compatible: the judged metrics will say so
        return ""


def local_embeddings(name: str) -> Any:
    """The bot's own packaged sentence-transformers model, as ragas' embedding interface
    (response relevancy compares questions by embedding): nothing is downloaded. The class
    is made here because ragas is imported only when a judge is configured."""
    from ragas.embeddings.base import BaseRagasEmbedding

    from knowledge.embedder import get_embedder

    embedder = get_embedder(name)

    class LocalEmbeddings(BaseRagasEmbedding):
        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            return [float(x) for x in embedder.encode([text])[0]]

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return await asyncio.to_thread(self.embed_text, text)

    return LocalEmbeddings()


class Judge:
    """ragas' judged metrics on one judge, each score bounded in time and concurrency."""

    METRICS = ("faithfulness", "answer_relevancy", "context_precision")

    def __init__(self, config: JudgeConfig, embedding_model: str) -> None:
        from openai import AsyncOpenAI
        from ragas.llms import llm_factory
        from ragas.metrics.collections import (
            AnswerRelevancy,
            ContextPrecisionWithReference,
            Faithfulness,
        )

        self.config = config
        # instructor logs every failed exchange at ERROR, the judge's text included; the
        # run records each judge error itself (JudgeError, per case).
        logging.getLogger("instructor").setLevel(logging.CRITICAL)
        self.client = AsyncOpenAI(base_url=config.url, api_key=config.api_key,
                                  timeout=config.timeout_s, max_retries=config.retries)  # fmt: skip
        llm = llm_factory(config.model or "default", client=self.client,
                          max_tokens=config.max_tokens)  # fmt: skip
        self.metrics: dict[str, Any] = {
            "faithfulness": Faithfulness(llm=llm),
            "answer_relevancy": AnswerRelevancy(llm=llm,
                                                embeddings=local_embeddings(embedding_model)),
            "context_precision": ContextPrecisionWithReference(llm=llm),
        }  # fmt: skip
        self._gate = asyncio.Semaphore(config.concurrency)

    async def score(self, name: str, **inputs: Any) -> float:
        metric = self.metrics[name]
        async with self._gate:
            try:
                result = await asyncio.wait_for(metric.ascore(**inputs), self.config.timeout_s)
            except TimeoutError:
                raise JudgeError(f"{name}: no answer in {self.config.timeout_s:g} s") from None
            except Exception as exc:  # instructor's retries exhausted, HTTP errors, parsing
                raise JudgeError(f"{name}: {type(exc).__name__}: {_first_line(exc)}") from None
        value = getattr(result, "value", result)
        if not isinstance(value, int | float) or math.isnan(value) or not 0 <= value <= 1.0001:
            raise JudgeError(f"{name}: not a score ({value!r})")
        return round(min(1.0, float(value)), 4)

    async def score_all(
        self, inputs: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, float], list[str]]:
        """Each metric of ``inputs`` (name → its ascore arguments) at once: the scores it
        gave and the errors of those it could not give."""
        names = list(inputs)
        done = await asyncio.gather(*(self.score(n, **inputs[n]) for n in names),
                                    return_exceptions=True)  # fmt: skip
        scores, errors = {}, []
        for name, value in zip(names, done, strict=True):
            if isinstance(value, BaseException):
                errors.append(str(value) if isinstance(value, JudgeError) else f"{name}: {value}")
            else:
                scores[name] = value
        return scores, errors

    async def aclose(self) -> None:
        await self.client.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # instructor's retry error quotes the whole failed exchange; its last error says why
    marker = "Last error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    return (text.splitlines() or [""])[0].strip()[:300]
