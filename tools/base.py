"""What every tool shares: typed results, evidence, errors, the context tools run in, and
the ``@register`` decorator that puts a tool in the registry where it is defined.

A tool is a plain function ``run(args: InputModel, ctx: ToolContext) -> ToolResult``.
The registry wraps it as a LangChain ``StructuredTool`` for a tool-calling model; the
agent's tool node calls the plain function, so both planners reach the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from knowledge.index import RunbookIndex

Status = Literal["ok", "no_data", "error", "approval_required"]


class ToolError(Exception):
    """A failure the user can fix; the message is shown as is."""


class Evidence(BaseModel):
    """One piece of evidence an answer may quote and cite (by ``id`` once numbered)."""

    id: str = ""  # assigned by the answer composer: E1, E2, ...
    kind: Literal["runbook", "log", "metric", "alert", "note"]
    title: str
    source: str  # document path, query, file name...
    section: str = ""
    text: str = ""
    score: float | None = None

    @property
    def where(self) -> str:
        """``Title › Section``, or the title alone."""
        return f"{self.title} › {self.section}" if self.section else self.title


class ToolResult(BaseModel):
    """What a tool returns: a status, a one-line message and the evidence it found."""

    tool: str
    status: Status
    message: str
    evidence: list[Evidence] = Field(default_factory=list)
    report: str | None = None
    """A long report (Markdown) that the thread gets as an attached file."""
    images: list[str] = Field(default_factory=list)
    """Paths of images (charts) the answer attaches, in order."""


@dataclass
class ToolContext:
    """What tools may use; built once per process by the application."""

    index_dir: Path
    embedding_model: str
    top_k: int = 3
    uploads_dir: Path | None = None
    """Where files attached to conversations are saved; file arguments resolve inside it."""
    loki: Any = None
    """Loki settings (url, token, limit, timeout) when a Loki is configured."""
    prometheus: Any = None
    """Prometheus settings (bot.settings.PrometheusSettings) when one is configured."""
    alertmanager: Any = None
    """Alertmanager settings when one is configured (firing alerts are read from it)."""
    charts_dir: Path | None = None
    """Where chart images are written; answers attach them."""
    deploys: Any = None
    """The bot's deploy service (bot.deploys.service.Deploys) when it runs: approved write
    tools hand their request to it."""
    evals: Any = None
    """The stored eval runs (evals.store.EvalStore) when the bot runs."""
    files: tuple[str, ...] | None = None
    """The files attached to the conversation being answered (names under uploads_dir);
    a file argument must be one of them. None outside a conversation (the CLI)."""

    @cached_property
    def runbooks(self) -> RunbookIndex:
        """The runbook index, loaded on first use (raises IndexMissingError if absent)."""
        from knowledge.embedder import get_embedder
        from knowledge.index import RunbookIndex

        return RunbookIndex(self.index_dir, get_embedder(self.embedding_model))


RunFn = Callable[[Any, ToolContext], ToolResult]


@dataclass(frozen=True)
class ToolSpec:
    """A registered tool."""

    name: str
    description: str
    args_schema: type[BaseModel]
    run: RunFn
    status_text: str  # shown in Slack while the tool runs, e.g. "searching runbooks…"
    read_only: bool = True
    keywords: tuple[str, ...] = ()  # words that route a question here without a model
    query_arg: str | None = None  # the argument that takes the user's question verbatim
    rate_group: str | None = None  # a per-person budget the tool's calls count against
    requires: tuple[str, ...] = ()  # ToolContext fields set for it to be offered ("a|b": either)
    intent: Callable[[str], dict[str, Any] | None] | None = None
    """Recognises a request for this tool in plain words (its arguments, or None): how the
    deterministic planner finds write tools, which keywords never choose."""

    def available(self, ctx: ToolContext | None) -> bool:
        """Whether what the tool needs is configured (always, when no context is given)."""
        return ctx is None or all(
            any(getattr(ctx, name, None) for name in need.split("|")) for need in self.requires
        )


_REGISTRY: dict[str, ToolSpec] = {}


def register(
    *,
    name: str,
    description: str,
    args_schema: type[BaseModel],
    status_text: str,
    read_only: bool = True,
    keywords: tuple[str, ...] = (),
    query_arg: str | None = None,
    rate_group: str | None = None,
    requires: tuple[str, ...] = (),
    intent: Callable[[str], dict[str, Any] | None] | None = None,
) -> Callable[[RunFn], RunFn]:
    """Register the decorated function as a tool (at import of its module)."""

    def decorate(fn: RunFn) -> RunFn:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise ValueError(f"tool {name!r} is registered twice")
        if not description.strip():
            raise ValueError(f"tool {name!r} needs a description")
        _REGISTRY[name] = ToolSpec(
            name=name,
            description=description.strip(),
            args_schema=args_schema,
            run=fn,
            status_text=status_text,
            read_only=read_only,
            keywords=keywords,
            query_arg=query_arg,
            rate_group=rate_group,
            requires=requires,
            intent=intent,
        )
        return fn

    return decorate


def unregister(name: str) -> None:
    """Remove a tool (for tests and plugins that are unloaded)."""
    _REGISTRY.pop(name, None)


def registered() -> dict[str, ToolSpec]:
    return dict(_REGISTRY)
