"""How a validation error is told to whoever sent the input: its first problem, where."""

from __future__ import annotations

from pydantic import ValidationError


def first_error(exc: ValidationError) -> str:
    """``alerts.0.status: Input should be 'firing' or 'resolved'``."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"
