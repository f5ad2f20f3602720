"""The one LLM interface: an OpenAI-compatible chat endpoint through langchain-openai.

vLLM in production, llama.cpp's server for GGUF files, or any other such server; the URL
and model are settings. Failures of the server (``SERVER_ERRORS``) become a note in the
answer while the agent answers from evidence.
"""

from __future__ import annotations

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

from bot.settings import LLMSettings

#: What a broken, slow or dying server raises through the OpenAI client.
SERVER_ERRORS: tuple[type[BaseException], ...] = (
    openai.APIError,  # connection errors, timeouts and HTTP error statuses
    httpx.HTTPError,
)


def make_chat_model(settings: LLMSettings) -> ChatOpenAI | None:
    """The configured chat model, or None when no model URL is set."""
    if settings.url is None:
        return None
    return ChatOpenAI(
        base_url=settings.url,
        model=settings.model,
        api_key=settings.api_key,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        temperature=0,
    )


def redact_url(url: str) -> str:
    """The URL without credentials (``https://user:pass@host`` → ``https://host``)."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    path = path.split("?", 1)[0]  # a query string may carry a key
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}" if sep else url


def describe_failure(exc: BaseException, model: BaseChatModel | None) -> str:
    """A one-line, secret-free description of a model failure for the thread."""
    where = redact_url(getattr(model, "openai_api_base", None) or "the model server")
    kind = type(exc).__name__
    if isinstance(exc, openai.APITimeoutError):
        return f"the model at {where} did not answer in time; showing the evidence answer"
    if isinstance(exc, openai.APIStatusError):
        return f"the model at {where} answered HTTP {exc.status_code}; showing the evidence answer"
    return f"the model at {where} is unavailable ({kind}); showing the evidence answer"
