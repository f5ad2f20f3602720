"""Log template mining with drain3, configured once for every source.

Variables are masked before clustering (typed masks: ``<IP>``, ``<NUM>``, ``<HEX>``,
``<UUID>``, ``<PATH>``, ...), so lines that differ only in values share a template;
headers are stripped by ``headers.split_header`` unless the input is content only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

from tools.logs.headers import split_header

#: (regex, mask) applied in order; each regex is bounded so it cannot eat whole words.
MASKS: list[tuple[str, str]] = [
    (r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s,;\"'<>]+", "URL"),
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?(?![\w.])", "IP"),
    (r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}(?![\w:])", "IP"),
    (r"(?<![\w/])(?:/[\w.\-@:]+){2,}/?", "PATH"),
    (r"\b(?:0x)?[0-9a-fA-F]{16,}\b|\b0x[0-9a-fA-F]+\b", "HEX"),
    (r"\b\d+(?:\.\d+)?(?:ms|us|µs|ns|s|sec|secs|m|min|mins|h|hrs?)\b", "DURATION"),
    (r"\b\d+(?:\.\d+)?\s?(?:[KMGT]i?B|bytes|[KMGT])\b", "SIZE"),
    (r"(?<=[=:])-?\d+(?:\.\d+)?\b", "NUM"),
    (r"(?<![\w.\-])[-+]?\d+(?:\.\d+)?(?![\w.])", "NUM"),
    (r"(?<=_)-?\d+\b", "NUM"),  # blk_-123, attempt_123_0001
]
#: Two lines join a cluster when at least this share of their tokens match.
SIMILARITY = 0.5
TREE_DEPTH = 4
MAX_CLUSTERS = 10_000  # bounded memory on endless input (least recently used are dropped)


@dataclass(frozen=True)
class ParsedLine:
    raw: str
    content: str
    template_id: int
    template: str
    timestamp: datetime | None
    level: str | None


#: All masks in one alternation: one regex pass a line instead of one per mask.
_MASK = re.compile("|".join(f"(?P<{name}_{i}>{rx})" for i, (rx, name) in enumerate(MASKS)))


def _mask_of(match: re.Match[str]) -> str:
    return f"<{(match.lastgroup or 'NUM').rsplit('_', 1)[0]}>"


_MAYBE_VARIABLE = re.compile(r"[\d/:]")


def mask(text: str) -> str:
    """``text`` with its variables replaced by typed masks.

    Token by token: a token without a digit, slash or colon holds no variable, and most
    tokens are words, so the (costly) mask regex runs on few, short strings.
    """
    return " ".join(
        _MASK.sub(_mask_of, token) if _MAYBE_VARIABLE.search(token) else token
        for token in text.split()
    )


def miner_config() -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.masking_instructions = []  # masking is done once, in `mask`
    config.drain_sim_th = SIMILARITY
    config.drain_depth = TREE_DEPTH
    config.drain_max_clusters = MAX_CLUSTERS
    config.parametrize_numeric_tokens = True
    config.drain_extra_delimiters = ["="]
    config.profiling_enabled = False
    return config


_SPACES = re.compile(r"\s+")


class LogParser:
    """One configuration for all sources."""

    def __init__(self, *, content_only: bool = False) -> None:
        self.content_only = content_only
        self._miner = TemplateMiner(config=miner_config())

    def parse(self, line: str) -> ParsedLine:
        raw = line.rstrip("\r\n")
        if self.content_only:
            content, timestamp, level = raw.strip(), None, None
        else:
            content, timestamp, level = split_header(raw)
        message = _SPACES.sub(" ", mask(content)).strip() or "<empty>"
        result = self._miner.add_log_message(message)
        return ParsedLine(
            raw=raw,
            content=content,
            template_id=int(result["cluster_id"]),
            template=str(result["template_mined"]),
            timestamp=timestamp,
            level=level,
        )

    def parse_lines(self, lines: Iterable[str]) -> Iterator[ParsedLine]:
        """Parse a stream lazily: memory is bounded by the number of clusters, not lines."""
        for line in lines:
            yield self.parse(line)

    def templates(self) -> dict[int, str]:
        """Each cluster's final template (templates generalise as more lines arrive)."""
        return {c.cluster_id: c.get_template() for c in self._miner.drain.clusters}

    def template_of(self, template_id: int) -> str:
        return self.templates().get(template_id, "")
