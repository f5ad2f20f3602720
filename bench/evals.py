"""The judge-free eval suites on both splits (evals.json), through the same code as
`opsbot eval run`: retrieval, questions, answers (no judge here: judged metrics "not
judged"), tools, logs, triage and the packaged Gemma on the model suite (the metrics suite
is in metrics_questions.json). Each figure says its split: ``dev`` was looked at while
the method was chosen; ``heldout`` was written without reading the method.

    python -m bench.evals               # every suite
    python -m bench.evals logs triage   # these suites; the others' figures are kept
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.runner import RunOptions, run_suite
from evals.store import EvalStore

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "evals.json"
SUITES = ("retrieval", "questions", "answers", "tools", "logs", "triage", "model")
TUNED = {"dev": "the method was chosen looking at it", "heldout": "written blind; never tuned on"}
#: Where a split is not what TUNED says.
DATA = {("triage", "heldout"): "a fresh seeded draw over the 8 systems the ranking was chosen on, "
                              "and draws over the logs suite's 8 held-out systems (blind)",
        ("answers", "dev"): "written blind; nothing chosen on it",
        ("model", "dev"): "nothing tuned: the figures are the model's",
        ("model", "heldout"): "nothing tuned: the figures are the model's",
        ("logs", "dev"): "8 Loghub + 20 blind-written systems (8 of them to Loghub's "
                         "conventions), all read while choosing",
        ("logs", "heldout"): "8 systems written blind (4 to Loghub's conventions); never "
                             "tuned on, aggregates read before and after each round"}  # fmt: skip


def main(suites: Sequence[str] = SUITES) -> None:
    from sqlmodel import SQLModel

    from bot.db import make_engine

    unknown = set(suites) - set(SUITES)
    if unknown:
        raise SystemExit(f"unknown suites: {', '.join(sorted(unknown))} (known: {SUITES})")
    kept = json.loads(OUT.read_text()) if OUT.exists() and set(suites) != set(SUITES) else {}
    results: dict[str, Any] = {s: kept[s] for s in SUITES if s in kept and s not in suites}
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'evals.sqlite'}")
        SQLModel.metadata.create_all(engine)
        store = EvalStore(engine)
        for suite in suites:
            for split in ("dev", "heldout"):
                run = run_suite(suite, store, RunOptions(split=split))
                results.setdefault(suite, {})[split] = {
                    "status": run.status, "model": run.model, "counts": run.counts,
                    "metrics": {k: v["value"] for k, v in run.metrics.items()},
                    "duration_s": run.duration_s,
                    "data": DATA.get((suite, split), TUNED[split]),
                }  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    results = {s: results[s] for s in SUITES if s in results}
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:] or SUITES)
