"""Log RCA: incidents built from real Loghub lines (../shared/data/loghub), with both kinds
of root cause — a template that is new in the incident window, and a template that exists in
the baseline and rises — scored through the RCA tool's own analysis
(``tools.logs.rca.analyse``): is the culprit finding 1 (top-3), and is every finding
grounded (each example line it cites is a line of the incident it was given)."""

from __future__ import annotations

import csv
import random
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Literal

from evals.cases import CaseBase
from evals.scorers import Scored
from evals.suite import Split, Suite
from tools.logs.rca import analyse
from tools.logs.sources import LogSource

SYSTEMS = ("HDFS", "Hadoop", "Spark", "Zookeeper", "BGL", "HPC", "Thunderbird", "OpenStack")
BURST = (10, 40)  # lines of a new template injected into the incident window
RARE = (1, 40)  # occurrences in the 2k sample for a template to be a new-template culprit
COMMON = (20, 200)  # occurrences for a template to be a rising culprit
RISE = 5  # the rising template's rate in the incident window, times its baseline rate


class TriageCase(CaseBase):
    system: str
    kind: Literal["new", "rising"]
    target: str
    seed: int


@cache
def load(folder: Path, system: str) -> tuple[tuple[str, str], ...]:
    """(raw line, EventId) for each of the system's 2k lines, in order."""
    base = folder / system
    raw = (base / f"{system}_2k.log").read_text(encoding="utf-8", errors="replace").splitlines()
    with (base / f"{system}_2k.log_structured.csv").open(encoding="utf-8") as fh:
        events = [row["EventId"] for row in csv.DictReader(fh)]
    return tuple(zip(raw, events, strict=True))


def build(lines: tuple[tuple[str, str], ...], case: TriageCase) -> tuple[list[str], list[str]]:
    """(baseline, incident) windows of the case, the same for the same seed."""
    rng = random.Random(case.seed)
    others = [(i, line) for i, (line, event) in enumerate(lines) if event != case.target]
    pool = [(i, line) for i, (line, event) in enumerate(lines) if event == case.target]
    rng.shuffle(others)
    half = len(others) // 2
    baseline = sorted(others[:half])
    window = sorted(others[half:])
    if case.kind == "new":
        burst = [rng.choice(pool)[1] for _ in range(rng.randint(*BURST))]
        at = rng.randint(len(window) // 4, 3 * len(window) // 4)
        shown = [line for _, line in window]
        return [line for _, line in baseline], shown[:at] + burst + shown[at:]
    rng.shuffle(pool)  # rising: a few of its lines in the baseline, RISE× as many after
    few = max(1, len(pool) // (RISE + 1))
    before, after = pool[:few], pool[few:]
    extra = [rng.choice(pool) for _ in range(max(0, few * RISE - len(after)))]
    return ([line for _, line in sorted(baseline + before)],
            [line for _, line in sorted(window + after + extra)])  # fmt: skip


def generate(folder: Path, seed: int, per_kind: int) -> list[TriageCase]:
    rng = random.Random(seed)
    cases: list[TriageCase] = []
    for system in SYSTEMS:
        counts = Counter(event for _, event in load(folder, system))
        for kind, (low, high) in (("new", RARE), ("rising", COMMON)):
            candidates = sorted(e for e, n in counts.items() if low <= n <= high)
            for target in rng.sample(candidates, min(per_kind, len(candidates))):
                cases.append(TriageCase(id=f"{system}-{kind}-{target}", system=system,
                                        kind=kind, target=target,
                                        seed=rng.randrange(1 << 30)))  # fmt: skip
    return cases


def cited(example: str, given: set[str], lines: list[str]) -> bool:
    """An example is grounded when it is a line of the input, or the start of one (long
    lines are shortened in reports, with an ellipsis)."""
    if example in given:
        return True
    head = example.rstrip("…").rstrip()
    return bool(head) and any(line.startswith(head) for line in lines)


def source(name: str, lines: list[str]) -> LogSource:
    return LogSource(name=name, open_lines=lambda: iter(lines))


class TriageScorer:
    def __init__(self, suite: Suite, split: Split) -> None:
        self.spec = suite.split(split)
        self.folder = suite.path(self.spec.corpus or "shared:loghub")
        ref = str(self.spec.cases)  # "generate:SEED:PER_KIND"
        _, seed, per_kind = ref.split(":")
        self.seed, self.per_kind = int(seed), int(per_kind)
        if not (self.folder / SYSTEMS[0]).is_dir():
            raise RuntimeError(f"the Loghub samples are not at {self.folder}")

    def cases(self) -> list[TriageCase]:
        return generate(self.folder, self.seed, self.per_kind)

    def score(self, case: TriageCase) -> Scored:
        lines = load(self.folder, case.system)
        event_of: dict[str, str] = {}
        for line, event in lines:
            event_of.setdefault(line, event)
        baseline, window = build(lines, case)
        report = analyse(source("incident", window), source("baseline", baseline))
        findings = [item.finding for item in report.findings]
        culprit = [all(event_of.get(ex) == case.target for ex in f.examples) and bool(f.examples)
                   for f in findings]  # fmt: skip
        given = set(window)
        grounded = all(cited(ex, given, window) for f in findings for ex in f.examples)
        scores = {"top1": float(bool(culprit[:1] and culprit[0])),
                  "top3": float(any(culprit[:3])), "grounded": float(grounded),
                  f"top1_{case.kind}": float(bool(culprit[:1] and culprit[0]))}  # fmt: skip
        rank = culprit.index(True) + 1 if any(culprit) else None
        top = findings[0].template[:200] if findings else None
        return Scored(scores, bool(scores["top1"]) and grounded, {"rank": rank, "top": top})

    def close(self) -> None:
        return None
