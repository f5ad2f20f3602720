"""Log template mining: each case is a system of the Loghub format (a folder with
``<System>_2k.log`` and ``<System>_2k.log_structured.csv``: ``Content`` and the true
``EventId`` per line), mined by the bot's parser (``tools.logs.mining.LogParser``, one
configuration for every source) and scored by grouping accuracy (Zhu et al., ICSE-SEIP
2019): on the message column (``grouping_accuracy``) and on the raw lines, headers and
all (``grouping_accuracy_raw``: the header must be recognised by its structure).

The cases of a split are the systems in its folders: dev, the 8 systems of
../shared/data (the masking rules were written on them) and ``dev/`` (4 systems written
without reading the parser, whose failures were then read: the quoted-value rule and the
word-variable merge came from them); heldout, ``heldout/`` (4 systems written without
reading the parser, never tuned on). ``make bench`` (bench/log_grouping.py)
scores with the same functions.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from evals.cases import CaseBase
from evals.scorers import Scored
from evals.suite import Split, Suite
from tools.logs.mining import LogParser, grouping_accuracy


class LogsCase(CaseBase):
    system: str
    folder: str


def load_system(folder: Path, system: str) -> tuple[list[str], list[str], list[str]]:
    """(raw lines, Content, EventId) of a system's sample."""
    base = folder / system
    raw = (base / f"{system}_2k.log").read_text(encoding="utf-8", errors="replace")
    with (base / f"{system}_2k.log_structured.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    lines = raw.splitlines()
    if len(lines) != len(rows):
        raise ValueError(f"{base}: {len(lines)} raw lines but {len(rows)} structured rows")
    return lines, [r["Content"] for r in rows], [r["EventId"] for r in rows]


def template_ids(lines: list[str], *, content_only: bool, **settings: Any) -> list[int]:
    """Each line's template id from a fresh parser (``settings``: its other arguments)."""
    parser = LogParser(content_only=content_only, **settings)
    return [parsed.template_id for parsed in parser.parse_lines(lines)]


def systems_in(folder: Path) -> list[str]:
    return sorted(p.parent.name for p in folder.glob("*/*_2k.log_structured.csv"))


class LogsScorer:
    def __init__(self, suite: Suite, split: Split) -> None:
        self.folders = suite.case_files(split)
        for folder in self.folders:
            if not folder.is_dir() or not systems_in(folder):
                raise RuntimeError(f"no systems (*/*_2k.log_structured.csv) in {folder}")

    def cases(self) -> list[LogsCase]:
        return [LogsCase(id=s, system=s, folder=str(folder))
                for folder in self.folders for s in systems_in(folder)]  # fmt: skip

    def score(self, case: LogsCase) -> Scored:
        raw, content, events = load_system(Path(case.folder), case.system)
        on_content = grouping_accuracy(template_ids(content, content_only=True), events)
        on_raw = grouping_accuracy(template_ids(raw, content_only=False), events)
        scores = {"grouping_accuracy": round(on_content, 4),
                  "grouping_accuracy_raw": round(on_raw, 4)}  # fmt: skip
        output = {"lines": len(events), "templates_true": len(set(events))}
        return Scored(scores, on_content >= PASS_ACCURACY, output)

    def close(self) -> None:
        return None


#: A system passes when at least this share of its lines is grouped exactly right.
PASS_ACCURACY = 0.75
