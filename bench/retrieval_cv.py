"""How the runbook search's settings are chosen: by cross-validation on the dev data, fit
and cross-validated figures side by side (bench/results/retrieval_cv.json).

1. Fusion (``knowledge.index.Fusion``): the weight of each ranked list (dense, BM25, name
   overlap; 0 leaves it out, so each list alone is a candidate) and the RRF constant, by
   5-fold cross-validation (3 repeats) on the on-topic dev queries of both corpora — the
   60 kube-prometheus alerts over the 108 shared runbooks (retrieval suite, dev) and the
   on-topic questions over the demo runbooks (questions suite, dev) — maximising MRR.
2. No match (``knowledge.index.NoMatch``): when the best hit is no answer, by the same
   cross-validation over those on-topic queries and the off-topic dev questions,
   maximising (2 × on-topic answered + off-topic abstained) / 3: a bot that stays silent on
   a question its runbooks answer costs more than one that quotes a weak match.

The held-out splits (retrieval: 50 alerts; questions: 50 questions) are not read here;
``opsbot eval run retrieval|questions --split heldout`` measures the chosen settings on
them.

    python -m bench.retrieval_cv
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from evals.cv import cross_validate
from evals.scorers.retrieval import RetrievalCase, split_cases
from evals.suite import load_suite
from knowledge.build import build_index
from knowledge.embedder import DEFAULT_EMBEDDING_MODEL, get_embedder
from knowledge.index import DEFAULT_FUSION, DEFAULT_NO_MATCH, Fusion, NoMatch, RunbookIndex
from tools.runbooks import MIN_SCORE

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "retrieval_cv.json"
K = 10
ON_TOPIC_WEIGHT = 2.0


def fusion_grid() -> list[Fusion]:
    grid = [DEFAULT_FUSION, Fusion(1, 0, 0), Fusion(0, 1, 0)]  # the default, each list alone
    for d, lex, n, k in itertools.product((0, 0.5, 1, 2), (0, 0.5, 1), (0, 0.5, 1),
                                          (10, 30, 60)):  # fmt: skip
        setting = Fusion(float(d), float(lex), float(n), k)
        if (d, lex, n) != (0, 0, 0) and setting not in grid:
            grid.append(setting)
    return grid


def no_match_grid() -> list[NoMatch]:
    grid = [DEFAULT_NO_MATCH, NoMatch()]  # the default, no cut
    for weight, cut in itertools.product((0.0, 0.25, 0.5, 1.0),
                                         [x / 100 for x in range(20, 102, 2)]):  # fmt: skip
        grid.append(NoMatch(weight, cut))
    return list(dict.fromkeys(grid))


def load_items() -> list[dict[str, Any]]:
    retrieval, questions = load_suite("retrieval"), load_suite("questions")
    items = [{"corpus": "shared", "case": c} for c in split_cases(retrieval, "dev")]
    items += [{"corpus": "demo", "case": c} for c in questions.load("dev", RetrievalCase)]
    return items


def main() -> None:
    embedder = get_embedder(DEFAULT_EMBEDDING_MODEL)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        corpora = {"shared": load_suite("retrieval").path("shared:runbooks"),
                   "demo": ROOT / "knowledge" / "runbooks"}  # fmt: skip
        indexes = {}
        for name, folder in corpora.items():
            build_index(folder, Path(tmp) / name, embedder)
            indexes[name] = RunbookIndex(Path(tmp) / name, embedder)
        items = load_items()
        found = [indexes[it["corpus"]].candidates(it["case"].query) for it in items]
        on = [i for i, it in enumerate(items) if it["case"].runbook is not None]

        rr_cache: dict[tuple[Fusion, int], float] = {}

        def rr(setting: Fusion, j: int) -> float:
            key = (setting, j)
            if key not in rr_cache:
                item = items[on[j]]
                index = indexes[item["corpus"]]
                docs = [index.documents[d].path for d, _ in index.rank(found[on[j]], setting)[:K]]
                want = item["case"].runbook
                rr_cache[key] = 1.0 / (docs.index(want) + 1) if want in docs else 0.0
            return rr_cache[key]

        grid = fusion_grid()
        fusion = cross_validate(grid, rr, len(on))
        components = {
            name: sum(rr(s, j) for j in range(len(on))) / len(on)
            for name, s in (("default", DEFAULT_FUSION), ("dense", Fusion(1, 0, 0)),
                            ("lexical", Fusion(0, 1, 0)), ("chosen", fusion.fit_setting))
        }  # fmt: skip
        hit1_cv = sum(v == 1.0 for v in fusion.per_item.values()) / len(on)

        chosen = fusion.fit_setting
        tops = []
        for it in items:
            hits = [h for h in indexes[it["corpus"]].search(it["case"].query, k=5, fusion=chosen)
                    if h.score >= MIN_SCORE]  # fmt: skip
            tops.append(hits)

        def answered(rule: NoMatch, i: int) -> bool:
            return bool(tops[i]) and rule.answers(tops[i][0])

        def utility(rule: NoMatch, i: int) -> float:
            if items[i]["case"].runbook is None:
                return float(not answered(rule, i))
            return float(answered(rule, i))

        def objective(rule: NoMatch, idx: Any) -> float:
            on_i = [i for i in idx if items[i]["case"].runbook is not None]
            off_i = [i for i in idx if items[i]["case"].runbook is None]
            on_rate = sum(utility(rule, i) for i in on_i) / max(1, len(on_i))
            off_rate = sum(utility(rule, i) for i in off_i) / max(1, len(off_i))
            return (ON_TOPIC_WEIGHT * on_rate + off_rate) / (ON_TOPIC_WEIGHT + 1)

        rules = no_match_grid()
        no_match = cross_validate(rules, utility, len(items), objective=objective)

        def rates(per_item: dict[int, float]) -> dict[str, float]:
            on_i = [i for i in per_item if items[i]["case"].runbook is not None]
            off_i = [i for i in per_item if items[i]["case"].runbook is None]
            on_rate = sum(per_item[i] for i in on_i) / len(on_i)
            off_rate = sum(per_item[i] for i in off_i) / len(off_i)
            return {"on_topic_answered": round(on_rate, 4),
                    "off_topic_abstained": round(off_rate, 4)}  # fmt: skip

        fit_rule = no_match.fit_setting
        results = {
            "data": {
                "on_topic": {
                    "shared-runbook alerts (60 kube-prometheus, 73 blind-written)": sum(
                        it["corpus"] == "shared" for it in items
                    ),
                    "demo questions (questions dev)": sum(
                        it["corpus"] == "demo" and it["case"].runbook is not None for it in items
                    ),
                },
                "off_topic": sum(it["case"].runbook is None for it in items),
                "note": "dev splits only; the held-out splits are not read here",
            },  # fmt: skip
            "fusion": {
                **fusion.summary(lambda s: asdict(s)),
                "objective": "MRR@10 over the on-topic dev queries",
                "cross_validated_hit@1": round(hit1_cv, 4),
                "fit_mrr_of": {k: round(v, 4) for k, v in components.items()},
                "grid": len(grid),
            },
            "no_match": {
                **no_match.summary(lambda s: asdict(s)),
                "objective": "(2 x on-topic answered + off-topic abstained) / 3",
                "cross_validated_rates": rates(no_match.per_item),
                "fit_rates": rates({i: utility(fit_rule, i) for i in range(len(items))}),
                "without_a_cut": rates({i: utility(NoMatch(), i) for i in range(len(items))}),
                "grid": len(rules),
            },
            "seconds": round(time.monotonic() - began, 1),
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
