"""Prompts live as files in ``bot/prompts/`` and are loaded by name; none are written inline."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def load_prompt(name: str) -> str:
    """The text of ``bot/prompts/<name>.md``."""
    return files("bot").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8").strip()


def render_prompt(name: str, **values: str) -> str:
    return load_prompt(name).format(**values)
