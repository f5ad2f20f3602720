"""Prometheus durations (``90s``, ``5m``, ``1h30m``, ``7d``) to and from seconds."""

from __future__ import annotations

import re

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_WHOLE = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")


def is_duration(text: str) -> bool:
    return bool(_WHOLE.fullmatch(text.strip()))


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration; ValueError names what is wrong."""
    text = text.strip()
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h or 7d")
    seconds = sum(int(n) * UNITS[unit] for n, unit in _PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return float(seconds)


def format_duration(seconds: float) -> str:
    """The shortest exact Prometheus duration for whole seconds (``3600`` → ``1h``)."""
    whole = max(1, round(seconds))
    out = []
    for unit in ("w", "d", "h", "m", "s"):
        size = int(UNITS[unit])
        if whole >= size:
            count, whole = divmod(whole, size)
            out.append(f"{count}{unit}")
    return "".join(out)
