"""How often log RCA ranks an injected incident template first.

Incidents are built from the shared Loghub samples (real lines, real templates): for each
system, a template that is rare in the sample is chosen; the system's other lines are
split at random into a baseline window and an incident window (kept in log order); the
chosen template's real lines are injected into the incident window as a burst. A hit is
when finding 1's example lines all carry the injected template's ground-truth EventId.

The lines are read and fed to RCA as the triage suite's scorer does (evals.scorers.triage),
which also builds incidents whose culprit already exists in the baseline and rises.
Writes bench/results/rca_ranking.json.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evals.scorers.triage import load, source
from tools.logs.mining import LogParser
from tools.logs.rca import analyse

ROOT = Path(__file__).resolve().parents[1]
LOGHUB = ROOT.parent / "shared" / "data" / "loghub"
SYSTEMS = ("HDFS", "Hadoop", "Spark", "Zookeeper", "BGL", "HPC", "Thunderbird", "OpenStack")
INCIDENTS_PER_SYSTEM = 6
BURST = (10, 40)  # lines of the injected template
RARE = (1, 40)  # occurrences in the 2k sample for a template to be a candidate


def incident(
    lines: tuple[tuple[str, str], ...], target: str, rng: random.Random
) -> tuple[list[str], list[str]]:
    others = [(i, line) for i, (line, event) in enumerate(lines) if event != target]
    pool = [line for line, event in lines if event == target]
    rng.shuffle(others)
    half = len(others) // 2
    baseline = [line for _, line in sorted(others[:half])]
    window = [line for _, line in sorted(others[half:])]
    burst = [rng.choice(pool) for _ in range(rng.randint(*BURST))]
    at = rng.randint(len(window) // 4, 3 * len(window) // 4)
    return baseline, window[:at] + burst + window[at:]


def ranking(make_parser: Callable[[], LogParser] = LogParser) -> dict[str, Any]:
    """The incidents, each analysed with a parser from ``make_parser``, and how often the
    injected template is finding 1."""
    rng = random.Random(20261123)
    per_system: dict[str, dict[str, float]] = {}
    total = hits = 0
    started = time.perf_counter()
    for system in SYSTEMS:
        lines = load(LOGHUB, system)
        event_of = {}
        for line, event in lines:
            event_of.setdefault(line, event)
        counts = Counter(event for _, event in lines)
        candidates = sorted(e for e, n in counts.items() if RARE[0] <= n <= RARE[1])
        chosen = rng.sample(candidates, min(INCIDENTS_PER_SYSTEM, len(candidates)))
        system_hits = 0
        for target in chosen:
            baseline, window = incident(lines, target, rng)
            report = analyse(
                source("incident", window), source("baseline", baseline), parser=make_parser()
            )
            top = report.findings[0].finding if report.findings else None
            hit = top is not None and all(event_of.get(ex) == target for ex in top.examples)
            system_hits += hit
        per_system[system] = {"incidents": len(chosen), "top1": round(system_hits / len(chosen), 3)}
        total += len(chosen)
        hits += system_hits
    return {
        "incidents": total,
        "top1_rate": round(hits / total, 3),
        "per_system": per_system,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    results = ranking()
    out = ROOT / "bench" / "results" / "rca_ranking.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
