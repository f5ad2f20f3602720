"""Where log lines come from: files (uploads, paths), pasted text. Read as streams.

Bad input gets a clear ``LogInputError``: binary files, empty input, files over the size
limit. Mixed or broken encodings are decoded with replacement characters; lines longer
than ``MAX_LINE_CHARS`` are cut (and counted) so one huge line cannot exhaust memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tools.base import ToolError

MAX_LINE_CHARS = 64 * 1024
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
SNIFF_BYTES = 8192


class LogInputError(ToolError):
    """Log input that cannot be analysed; the message says why."""


@dataclass
class LogSource:
    """A re-readable stream of log lines with a name for messages."""

    name: str
    open_lines: Callable[[], Iterator[str]]
    notes: list[str] = field(default_factory=list)

    def lines(self) -> Iterator[str]:
        return self.open_lines()


def _looks_binary(head: bytes) -> bool:
    if b"\0" in head:
        return True
    if not head:
        return False
    control = sum(1 for b in head if b < 9 or 13 < b < 32)
    return control / len(head) > 0.1


def file_source(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> LogSource:
    """A file of log lines; checked for size, emptiness and binary content up front."""
    if not path.is_file():
        raise LogInputError(f"no log file at {path.name}")
    size = path.stat().st_size
    if size == 0:
        raise LogInputError(f"{path.name} is empty")
    if size > max_bytes:
        raise LogInputError(
            f"{path.name} is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit: "
            "cut it to the incident window (e.g. with `grep` or `tail`) and try again"
        )
    with path.open("rb") as fh:
        if _looks_binary(fh.read(SNIFF_BYTES)):
            raise LogInputError(f"{path.name} looks binary, not a text log")
    source = LogSource(name=path.name, open_lines=lambda: _read(path, source))
    return source


def _read(path: Path, source: LogSource) -> Iterator[str]:
    cut = 0
    with path.open("r", encoding="utf-8", errors="replace", newline="") as fh:
        while True:
            line = fh.readline(MAX_LINE_CHARS + 1)
            if not line:
                break
            if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
                cut += 1
                line = line[:MAX_LINE_CHARS]
                _skip_rest_of_line(fh)
            stripped = line.rstrip("\r\n")
            if stripped.strip():
                yield stripped
    note = f"{cut} line(s) of {path.name} longer than {MAX_LINE_CHARS} characters were cut"
    if cut and note not in source.notes:
        source.notes.append(note)


def _skip_rest_of_line(fh: object) -> None:
    readline = fh.readline  # type: ignore[attr-defined]
    while True:
        chunk = readline(MAX_LINE_CHARS)
        if not chunk or chunk.endswith("\n"):
            return


def text_source(text: str, name: str = "pasted text") -> LogSource:
    """Log lines pasted in a message (Slack code fences removed)."""
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("```"))
    lines = [line[:MAX_LINE_CHARS] for line in body.splitlines() if line.strip()]
    if not lines:
        raise LogInputError("no log lines to analyse: paste them or attach a file")
    return LogSource(name=name, open_lines=lambda: iter(lines))
