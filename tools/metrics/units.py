"""The unit a question asks its answer in ("in ms", "in MiB"), and the factor from the unit
a metric's name gives (``_seconds``, ``_bytes``, the Prometheus naming convention)."""

from __future__ import annotations

import re

_TARGET = re.compile(
    r"(?:\bin\s+|,\s*|\(\s*)(ms|msecs?|milliseconds?|µs|us|microseconds?|seconds?|secs?|minutes?|mins?"
    r"|kib|mib|gib|tib|kb|mb|gb|tb|kilobytes?|megabytes?|gigabytes?)\b",
    re.I,
)
#: How many of the base unit (seconds, bytes) one of the unit is.
_SIZE = {
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
    "kilobyte": 1e3, "megabyte": 1e6, "gigabyte": 1e9,
}  # fmt: skip
_TIME = {"ms": 1e-3, "msec": 1e-3, "millisecond": 1e-3, "µs": 1e-6, "us": 1e-6,
         "microsecond": 1e-6, "second": 1.0, "sec": 1.0, "minute": 60.0, "min": 60.0}  # fmt: skip


#: A size unit named anywhere but after a number ("graph free GiB on ..."; not "512 MiB").
_SIZE_WORD = re.compile(r"(?<![\d.])(?<![\d.] )\b(kib|mib|gib|tib|kb|mb|gb|tb)\b(?!/)", re.I)
#: A count asked in thousands or millions.
_SCALE = re.compile(r"\bin (thousands|millions|billions)\b", re.I)
_SCALES = {"thousands": 1e3, "millions": 1e6, "billions": 1e9}


def asked_unit(question: str) -> tuple[str, float] | None:
    """("seconds" or "bytes", how many of them one asked unit is), for "in ms", "in MiB"."""
    match = _TARGET.search(question) or _SIZE_WORD.search(question)
    if not match:
        return None
    unit = match.group(1).lower()
    one = unit[:-1] if unit.endswith("s") and unit not in ("ms", "us", "µs") else unit
    if one in _SIZE:
        return "bytes", float(_SIZE[one])
    if one in _TIME:
        return "seconds", _TIME[one]
    return None


def in_unit(promql: str, base: str | None, question: str) -> str:
    """``promql``, whose values are in ``base`` (seconds, bytes or None), in the unit the
    question asks for."""
    if scale := _SCALE.search(question):  # "how many tokens ..., in millions"
        return f"({promql}) / {_SCALES[scale.group(1).lower()]:g}"
    asked = asked_unit(question)
    if base is None or asked is None or asked[0] != base or asked[1] == 1.0:
        return promql
    if asked[1] < 1:
        return f"{1 / asked[1]:g} * {operand(promql)}"
    return f"{operand(promql)} / {asked[1]:g}"


def operand(promql: str) -> str:
    """``promql`` as the operand of a scale: a plain selector as it is, else in brackets."""
    plain = re.fullmatch(r"[A-Za-z_:][\w:]*(\{[^{}]*\})?", promql) is not None
    return promql if plain else f"({promql})"
