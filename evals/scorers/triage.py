"""Log RCA: incidents built from real Loghub lines (../shared/data/loghub), with both kinds
of root cause — a template that is new in the incident window, and a template that exists in
the baseline and rises — scored through the RCA tool's own analysis
(``tools.logs.rca.analyse``): is the culprit finding 1 (top-3), and is every finding
grounded (each example line it cites is a line of the incident it was given)."""

from __future__ import annotations

import contextlib
import csv
import random
import re
import time
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Literal

from evals.cases import CaseBase
from evals.scorers import Scored
from evals.suite import ROOT, Split, Suite
from tools.base import ToolContext
from tools.logs.rca import analyse
from tools.logs.sources import LogSource

SYSTEMS = ("HDFS", "Hadoop", "Spark", "Zookeeper", "BGL", "HPC", "Thunderbird", "OpenStack")
BURST = (10, 40)  # lines of a new template injected into the incident window
RARE = (1, 40)  # occurrences in the 2k sample for a template to be a new-template culprit
COMMON = (20, 200)  # occurrences for a template to be a rising culprit
RISE = 5  # the rising template's rate in the incident window, times its baseline rate
ALERT_WAIT_S = 60.0  # how long an alert of the stack may take to fire


class TriageCase(CaseBase):
    system: str
    kind: Literal["new", "rising", "alert"]
    target: str  # the culprit's EventId; for an alert, the runbook its rule links
    seed: int
    folder: str | None = None  # where the system's sample is (default: the split's corpus)


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


def generate(
    folder: Path, seed: int, per_kind: int, systems: tuple[str, ...] = SYSTEMS,
    *, elsewhere: bool = False,
) -> list[TriageCase]:  # fmt: skip
    """``per_kind`` incidents of each kind per system (``elsewhere``: the cases say their
    folder, which is not the split's corpus)."""
    rng = random.Random(seed)
    cases: list[TriageCase] = []
    for system in systems:
        counts = Counter(event for _, event in load(folder, system))
        for kind, (low, high) in (("new", RARE), ("rising", COMMON)):
            candidates = sorted(e for e, n in counts.items() if low <= n <= high)
            for target in rng.sample(candidates, min(per_kind, len(candidates))):
                cases.append(TriageCase(id=f"{system}-{kind}-{target}", system=system,
                                        kind=kind, target=target, seed=rng.randrange(1 << 30),
                                        folder=str(folder) if elsewhere else None))  # fmt: skip
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
    """Cases: ``generate:SEED:PER_KIND`` (log incidents) and ``alerts:promstack`` (the
    alerts firing on the test Prometheus stack, triaged by the alert_triage tool: is the
    rule's runbook the first runbook, and is the alert's own series graphed first)."""

    def __init__(self, suite: Suite, split: Split, work: Path,
                 prometheus_url: str | None = None) -> None:  # fmt: skip
        self.spec = suite.split(split)
        self.folder = suite.path(self.spec.corpus or "shared:loghub")
        refs = [self.spec.cases] if isinstance(self.spec.cases, str) else self.spec.cases
        # generate:SEED:PER_KIND over the corpus, or generate:SEED:PER_KIND:REF over the
        # systems in another folder (REF as a suite path: project:..., shared:...)
        self.generated: list[tuple[int, int, Path | None]] = []
        for ref in refs:
            if ref.startswith("generate:"):
                seed, per_kind, *rest = ref.removeprefix("generate:").split(":", 2)
                where = suite.path(":".join(rest)) if rest else None
                self.generated.append((int(seed), int(per_kind), where))
        self.alerts = "alerts:promstack" in refs
        self.work, self.url = work, prometheus_url
        self._stack = contextlib.ExitStack()
        self._alert_ctx: ToolContext | None = None
        if any(w is None for *_, w in self.generated) and not (self.folder / SYSTEMS[0]).is_dir():
            raise RuntimeError(f"the Loghub samples are not at {self.folder}")

    def cases(self) -> list[TriageCase]:
        from evals.scorers.logs import systems_in

        out: list[TriageCase] = []
        for seed, per_kind, where in self.generated:
            if where is None:
                out += generate(self.folder, seed, per_kind)
            else:
                out += generate(where, seed, per_kind, tuple(systems_in(where)), elsewhere=True)
        if self.alerts:
            from evals.promstack import DEFAULT_RULES, FIRING_ALERTS

            rules = {r["alert"]: r for g in DEFAULT_RULES["groups"] for r in g["rules"]}
            for name in FIRING_ALERTS:
                url = rules[name]["annotations"]["runbook_url"]
                runbook = "/".join(url.split("/")[-2:]) + ".md"
                out.append(TriageCase(id=f"alert-{name}", system="promstack", kind="alert",
                                      target=runbook, seed=0))  # fmt: skip
        return out

    def _alert_context(self) -> ToolContext:
        if self._alert_ctx is None:
            from evals.scorers.metrics import prometheus_settings
            from knowledge.build import build_index
            from knowledge.embedder import DEFAULT_EMBEDDING_MODEL, get_embedder

            url = self.url
            if url is None:
                from evals.promstack import running_stack

                url = self._stack.enter_context(running_stack(self.work / "promstack")).url
            index = self.work / "alert-index"
            build_index(
                ROOT / "knowledge" / "runbooks", index, get_embedder(DEFAULT_EMBEDDING_MODEL)
            )
            self._alert_ctx = ToolContext(
                index_dir=index, embedding_model=DEFAULT_EMBEDDING_MODEL,
                prometheus=prometheus_settings(url), charts_dir=self.work / "charts",
            )  # fmt: skip
        return self._alert_ctx

    def _score_alert(self, case: TriageCase) -> Scored:
        from tools.metrics.client import Prometheus
        from tools.metrics.triage import AlertTriageInput, triage

        ctx = self._alert_context()
        name = case.id.removeprefix("alert-")
        assert ctx.prometheus is not None
        deadline = time.monotonic() + ALERT_WAIT_S
        while True:  # the rules need an evaluation or two after the stack starts
            with Prometheus(ctx.prometheus) as client:
                firing = [a for a in client.alerts() if a["labels"].get("alertname") == name
                          and a.get("state") == "firing"]  # fmt: skip
            if firing or time.monotonic() > deadline:
                break
            time.sleep(2)
        if not firing:
            return Scored({"alert_runbook": 0.0, "alert_series": 0.0}, False,
                          {"error": f"{name} is not firing"})  # fmt: skip
        alert = firing[0]
        asked = AlertTriageInput(alertname=name, labels=alert["labels"],
                                 annotations=alert.get("annotations", {}))  # fmt: skip
        result = triage(asked, ctx)
        runbooks = [e.source for e in result.evidence if e.kind == "runbook"]
        graphed = [e for e in result.evidence if e.kind == "metric"]
        # the first graph is the alert's own series: every label it shows is the alert's
        shown = dict(re.findall(r'(\w+)="([^"]*)"', graphed[0].title)) if graphed else {}
        own = bool(shown) and all(alert["labels"].get(k) == v for k, v in shown.items())
        scores = {"alert_runbook": float(runbooks[:1] == [case.target]),
                  "alert_series": float(own)}  # fmt: skip
        output = {"runbooks": runbooks[:3], "first_graph": graphed[0].title if graphed else None}
        return Scored(scores, all(scores.values()), output)

    def score(self, case: TriageCase) -> Scored:
        if case.kind == "alert":
            return self._score_alert(case)
        lines = load(Path(case.folder) if case.folder else self.folder, case.system)
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
        self._stack.close()
