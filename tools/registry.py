"""The tool registry: every module of this package, and any installed plugin that declares
an ``opsbot.tools`` entry point, registers its tools with ``@register`` when imported.
Nothing here lists tools by hand.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from importlib.metadata import entry_points

from langchain_core.tools import StructuredTool

import tools
from tools.base import ToolContext, ToolError, ToolResult, ToolSpec, registered

_INFRA = {"base", "registry"}


@lru_cache(maxsize=1)
def _discover() -> None:
    """Import every tool module of this package and of installed plugins, once."""
    for module in pkgutil.walk_packages(tools.__path__, prefix="tools."):
        leaf = module.name.rsplit(".", 1)[-1]
        if module.name.removeprefix("tools.") not in _INFRA and not leaf.startswith("_"):
            importlib.import_module(module.name)
    for ep in entry_points(group="opsbot.tools"):
        ep.load()


def all_tools() -> dict[str, ToolSpec]:
    """The registered tools by name."""
    _discover()
    return registered()


def get_tool(name: str) -> ToolSpec:
    specs = all_tools()
    if name not in specs:
        raise ToolError(f"unknown tool {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def run_tool(name: str, args: dict[str, object], ctx: ToolContext) -> ToolResult:
    """Validate arguments against the tool's schema and run it; never raises.

    Bad arguments (a model's junk) and user-fixable failures become an ``error`` result
    with a message the bot can show. Write tools are refused here: they run only through
    the approval flow, never because a planner asked.
    """
    try:
        spec = get_tool(name)
        if not spec.read_only:
            return ToolResult(
                tool=name,
                status="approval_required",
                message=f"{name} changes things and needs an approval; it was not run.",
            )
        parsed = spec.args_schema.model_validate(args)
        return spec.run(parsed, ctx)
    except ToolError as exc:
        return ToolResult(tool=name, status="error", message=str(exc))
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        return ToolResult(tool=name, status="error", message=f"bad arguments for {name}: {exc}")


def langchain_tools(ctx: ToolContext | None = None) -> list[StructuredTool]:
    """The registry as LangChain tools, to bind to a tool-calling chat model.

    The agent executes calls itself (``run_tool``); these wrappers carry the name,
    description and argument schema the model sees.
    """

    def unbound(**_: object) -> str:
        raise RuntimeError("opsbot executes tool calls in its own tool node")

    return [
        StructuredTool.from_function(
            func=unbound, name=spec.name, description=spec.description, args_schema=spec.args_schema
        )
        for spec in all_tools().values()
        if spec.available(ctx)
    ]
