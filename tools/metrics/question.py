"""A question about metrics, in words, to PromQL grounded in what Prometheus has, run and
answered like any query. Works with no model: the metric is found by
``tools.metrics.discovery``, label values named in the question become matchers, and the
metric's type picks the query's shape:

- histogram: ``histogram_quantile(q, sum by (le) (rate(x_bucket[5m])))`` for "p99",
  "median", "95th percentile" (p99 when none is named); the mean for "average";
- counter: ``sum(rate(x[5m]))``; the share of 5xx for "error rate"; ``increase`` over the
  range for "how many";
- gauge: as is, or ``avg``/``sum``/``max``/``min`` when the question asks for one.

"per pod", "by instance", "which nodes" group by that label. When nothing matches well
enough the answer says so and lists the closest metric names; it never guesses.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from tools.base import Evidence, ToolContext, ToolResult, register
from tools.metrics.client import Prometheus
from tools.metrics.discovery import (
    Candidate,
    Catalog,
    Family,
    catalog_for,
    label_names,
    name_terms,
    names_with,
    rank_families,
    series_names,
)
from tools.metrics.durations import format_duration
from tools.metrics.per_unit import denominator, events_name, per_term
from tools.metrics.query import DEFAULT_RANGE, outcome_result, prometheus, run_range, window_for
from tools.metrics.question_subject import spelled, uncovered, unknown_subjects
from tools.metrics.question_values import (
    LABEL_PREFERENCE,
    STATUS_LABELS,
    Matcher,
    absent_values,
    carrying,
    choose_matchers,
    merge_same_label,
    value_matchers,
)
from tools.metrics.question_words import (
    aggregation,
    ask_of,
    breakdown,
    grouping,
    quantile_of,
    question_range,
    threshold_of,
)
from tools.metrics.shapes import (
    aggregate,
    counter_name,
    counts_events,
    grouped_parts,
    rate_of,
    selector,
    short_window,
    write_promql,
)

__all__ = ["grouping", "quantile_of", "question_range", "read_question", "write_promql"]

#: Below this score (half lexical, half cosine, plus label and shape evidence) no metric
#: is close enough.
MIN_SCORE = 0.2
#: A candidate needs one kind of evidence of its own: a word of its name in the question,
#: a cosine at least this high, or a label value (not a job or instance) at least this
#: specific to it (1: only this metric has it; 0: every metric has it).
DENSE_ALONE = 0.5
SPECIFIC = 0.5
LABEL_WEIGHT = 0.3
#: Added for a histogram or summary when the question names a quantile.
SHAPE_BONUS = 0.15
#: Candidates tried, best first, for one whose series carry the labels the question names.
TRY_CANDIDATES = 5
#: Words that ask how long something takes: only a metric of seconds answers them.
TIME_TAKEN = re.compile(
    r"\b(?:latenc(?:y|ies)|durations?|response times?|time to \w+|how long)\b", re.I
)
#: So many per second ("msgs/sec", "per second").
PER_SECOND = re.compile(r"\bper\s+(?:second|sec|s)\b|/s(?:ec)?\b", re.I)
#: Words that ask for a sum per label value ("per pod", "by instance"), not for the series.
SUM_WORDS = {"per", "by"}
#: Events per second under which a counter's events are counted rather than rated.
RARE_PER_S = 1 / 60


class MetricsQuestionInput(BaseModel):
    question: str = Field(..., min_length=1, description="The question about metrics, in words.")
    range: str | None = Field(
        None, description="How far back to look (e.g. 1h); default from the question, or 1h."
    )


@dataclass
class Reading:
    """How a question was read: the metric, matchers, grouping and the PromQL written."""

    family: Family
    promql: str
    range: str
    matchers: list[Matcher] = field(default_factory=list)
    group: str | None = None
    unmatched: list[str] = field(default_factory=list)

    def explain(self) -> str:
        parts = [f"metric `{self.family.name}` ({self.family.type})"]
        if self.family.help:
            parts.append(f"help: {self.family.help}")
        if self.matchers:
            parts.append("matchers: " + ", ".join(f"{m} (from “{m.word}”)" for m in self.matchers))
        if self.group:
            parts.append(f"grouped by {self.group}")
        if self.unmatched:
            parts.append(
                "no series of this metric carry " + ", ".join(f"“{w}”" for w in self.unmatched)
            )
        return "; ".join(parts)


class Lookup:
    """Metric names a selector selects, asked of Prometheus once per selector."""

    def __init__(self, client: Prometheus) -> None:
        self.client = client
        self._seen: dict[str, set[str]] = {}

    def __call__(self, selector: str) -> set[str]:
        if selector not in self._seen:
            self._seen[selector] = names_with(self.client, selector)
        return self._seen[selector]

    def value(self, promql: str) -> float | None:
        """The value of a query that returns one number now (None when empty)."""
        samples = self.client.instant(promql)
        return samples[0].points[-1][1] if samples and samples[0].points else None


def label_evidence(
    options: list[list[Matcher]], families: list[Family], lookup: Lookup
) -> dict[str, float]:
    """Family name → how specific to it a label value the question names is. Values of
    job, instance and the like (or equal to one) say where, not what, and are left out."""
    evidence: dict[str, float] = {}
    what = [alts for alts in options if not any(m.label in LABEL_PREFERENCE for m in alts)]
    for matcher in (m for alternatives in what for m in alternatives):
        carriers = lookup(matcher.probe)
        having = [f.name for f in families if series_names(f) & carriers]
        if not having:
            continue
        specific = 1 - math.log(len(having)) / math.log(max(len(families), 2))
        for name in having:
            evidence[name] = max(evidence.get(name, 0.0), specific)
    return evidence


def accepted(
    question: str, catalog: Catalog, ranked: list[Candidate], lookup: Lookup
) -> list[Candidate]:
    """Candidates with evidence of their own, best first by score with label and shape
    evidence added."""
    options = value_matchers(question, catalog.labels, set())
    evidence = label_evidence(options, catalog.families, lookup)
    distribution_asked = quantile_of(question) is not None or threshold_of(question) is not None
    out: list[tuple[float, Candidate]] = []
    for candidate in ranked:
        label = evidence.get(candidate.family.name, 0.0)
        distribution = candidate.family.type in ("histogram", "summary")
        shape = SHAPE_BONUS if distribution_asked and distribution else 0
        score = candidate.score + LABEL_WEIGHT * label + shape
        grounded = candidate.name_hit > 0 or candidate.dense >= DENSE_ALONE or label >= SPECIFIC
        if grounded and score >= MIN_SCORE:
            out.append((score, candidate))
    out.sort(key=lambda pair: pair[0], reverse=True)
    return [candidate for _, candidate in out]


def shape_allows(question: str) -> Callable[[Family], bool]:
    """Whether a family is of a type the question's shape allows."""
    quantile = quantile_of(question) is not None
    latency = bool(TIME_TAKEN.search(question))
    ask = ask_of(question)
    per_second = bool(PER_SECOND.search(question)) and not (ask.speed or ask.change)

    def allows(family: Family) -> bool:
        if quantile and family.type not in ("histogram", "summary"):
            return False  # a percentile is of a distribution: a counter or gauge has none
        if latency and not family.name.endswith("_seconds"):
            return False  # a time taken is measured in seconds (not tokens, not CPU time)
        # so many per second is a counter's rate; a gauge's speed is asked so
        return not (per_second and family.type == "gauge")

    return allows


def group_for(question: str, catalog: Catalog, family: Family, lookup: Lookup) -> str | None:
    """The label to group by, when the question names one that ``family`` carries."""
    group = grouping(question, label_names(catalog))
    if group is None:
        return None
    tries: tuple[str, ...] = STATUS_LABELS if group in STATUS_LABELS else (group,)
    if group == "pod":  # a service's pods are its instances where it has no pod label
        tries = ("pod", "instance")
    wanted = series_names(family)
    return next((g for g in tries if wanted & lookup(carrying(g))), None)


def reading_for(
    lookup: Lookup, catalog: Catalog, question: str, family: Family, rng: str, names: set[str]
) -> Reading:
    """The PromQL for ``question`` if it is about ``family``."""
    options = value_matchers(question, catalog.labels, name_terms(family.name))
    words = set(re.findall(r"[a-z0-9]+", question.lower()))
    named_status = any(m.label in STATUS_LABELS for opts in options for m in opts)
    error_words = {"error", "errors", "failing", "failed", "failures", "failure"}
    if family.type == "counter" and not named_status and words & error_words:
        options.append([Matcher(lb, "=~", "5..", "errors") for lb in STATUS_LABELS])
    chosen, unmatched = choose_matchers(lookup, family, options)
    matchers, merged_group = merge_same_label(chosen)
    group = group_for(question, catalog, family, lookup) or merged_group
    name = counter_name(family, names)
    rare = counts_events(question, family, name) and is_rare(lookup, name, matchers, rng)
    le = bucket_at(lookup, family, matchers, question)
    promql = write_promql(question, family, matchers, group, rng, names, rare=rare, le=le)
    per = per_term(question, catalog, family) if family.type == "counter" else None
    over = denominator(question, catalog, family, per) if per else None
    if over is not None:  # "tokens per request": the rates' ratio
        over_matchers, _ = merge_same_label(choose_matchers(lookup, over, options)[0])
        window = short_window(ask_of(question))
        num = aggregate("sum", rate_of(name, matchers, window), group)
        den = aggregate("sum", rate_of(events_name(over, names), over_matchers, window), group)
        return Reading(family, f"{num} / {den}", rng, matchers, group, unmatched)
    asked = breakdown(question, label_names(catalog))
    over_time = "_over_time(" in promql  # "peak on each instance": the aggregation is in time
    if (
        group
        and (aggregation(question) is None or over_time)
        and asked
        and asked[0] not in SUM_WORDS
    ):
        promql = ungrouped(lookup, promql, group)
    elif group is None and aggregation(question) is None:
        promql = ungrouped(lookup, promql, None)
    return Reading(family, promql, rng, matchers, group, unmatched)


def bucket_at(lookup: Lookup, family: Family, matchers: list[Matcher], question: str) -> str | None:
    """The ``le`` of the histogram's bucket at the latency threshold the question names
    ("under 250ms": the 0.25 bucket), when it has one."""
    threshold = threshold_of(question)
    if family.type != "histogram" or threshold is None:
        return None
    bucket = selector(f"{family.name}_bucket", matchers)
    for value in lookup.client.label_values("le", {"match[]": bucket}):
        with contextlib.suppress(ValueError):
            if math.isclose(float(value), threshold[0]):
                return str(value)
    return None


def covers(question: str, catalog: Catalog, family: Family, rivals: list[Family]) -> bool:
    """Whether ``family`` carries every word of what the question measures that names a
    rival reading (another accepted candidate: "gpu memory" names a memory metric too),
    but for the thing it is counted per ("tokens per request")."""
    rival_terms = {t for f in rivals if f.name != family.name for t in name_terms(f.name)}
    missing = set(uncovered(question, catalog, family)) & rival_terms
    return missing <= {per_term(question, catalog, family)}


def ungrouped(lookup: Lookup, promql: str, group: str | None) -> str:
    """``sum by (pod) (x)`` as plain ``x`` when each series of ``x`` already has its own
    pod: the sum adds nothing and would drop the series' other labels ("which pods",
    "for each pod", "top 3 pods": the series themselves are asked for); ``sum (x)`` as
    ``x`` when ``x`` is one series ("restarts of checkout-7d9f8c6b5-x2k4p"). Every such sum
    in the query is unwrapped (now and an hour ago), or none."""
    parts = grouped_parts(promql, group)
    if not parts:
        return promql
    for _, _, inner in parts:
        series = lookup.value(f"count({inner})")
        groups = lookup.value(f"count(count by ({group}) ({inner}))") if group else 1.0
        if series is None or series != groups:
            return promql
    out, at = [], 0
    for start, end, inner in parts:
        out += [promql[at:start], inner]
        at = end
    return "".join([*out, promql[at:]])


def is_rare(lookup: Lookup, name: str, matchers: list[Matcher], rng: str) -> bool:
    """Whether the counter's events are rare (under RARE_PER_S over the range), so that a
    count of them reads better than a rate."""
    rate = lookup.value(f"sum(rate({selector(name, matchers)}[{rng}]))")
    return rate is not None and rate < RARE_PER_S


def spread(lookup: Lookup, reading: Reading) -> bool:
    """Whether the label the reading groups by has several values on its metric (a question
    "for each service" is about a metric that more than one service has)."""
    if reading.group is None:
        return True
    name = next(iter(sorted(series_names(reading.family))))
    count = lookup.value(f"count(count by ({reading.group}) ({selector(name, reading.matchers)}))")
    return count is not None and count > 1


def best_reading(
    lookup: Lookup, catalog: Catalog, question: str, good: list[Candidate], rng: str,
    names: set[str],
) -> Reading | None:  # fmt: skip
    """The first candidate's reading that carries every value the question names (and, when
    it groups, more than one value of the label); else the first that carries them all;
    else the first, unless what it lacks names one thing (a host, a pod, a path: "the
    k8s-worker-2 node's cpu" when only processes have a CPU metric): then None."""
    first: Reading | None = None
    full: Reading | None = None
    for candidate in good:
        reading = reading_for(lookup, catalog, question, candidate.family, rng, names)
        first = first or reading
        if reading.unmatched:
            continue
        if spread(lookup, reading):
            return reading
        full = full or reading
    if full is None and first is not None and any(map(names_one, first.unmatched)):
        return None  # it names a host, pod or path that none of these metrics has
    return full or first


def names_one(word: str) -> bool:
    """Whether a word of the question names one thing: an identifier with a digit or a
    separator (``k8s-worker-2``, ``/data``), not a plain word (``gateway``)."""
    return any(ch.isdigit() or ch in "-.:/_" for ch in word)


def lacking(question: str, catalog: Catalog, wordpieces: Callable[[str], list[str]]) -> list[str]:
    """What the question names that this Prometheus knows nothing about: a word no metric,
    help or label carries ("rabbitmq"), or a host or pod beside those it has ("k8s-worker-3")."""
    return unknown_subjects(question, catalog, wordpieces) + absent_values(question, catalog.labels)


def read_question(
    ctx: ToolContext, question: str, rng: str
) -> tuple[Reading | None, list[str], Catalog]:
    """The reading of ``question``, or None with the closest metric names."""
    from knowledge.embedder import get_embedder

    with prometheus(ctx) as client:
        embedder = get_embedder(ctx.embedding_model)
        catalog = catalog_for(client, embedder)
        question = spelled(question, catalog, embedder.wordpieces)
        ranked = rank_families(question, catalog, embedder, k=len(catalog.families))
        closest = [c.family.name for c in ranked[:5]]
        if lacking(question, catalog, embedder.wordpieces):
            return None, closest, catalog  # it names something this Prometheus lacks
        lookup = Lookup(client)
        everything = accepted(question, catalog, ranked, lookup)
        rivals = [c.family for c in everything]
        allows = shape_allows(question)
        candidates = [c for c in everything if allows(c.family)]
        good = [
            c for c in candidates[:TRY_CANDIDATES] if covers(question, catalog, c.family, rivals)
        ]  # fmt: skip
        if not good:
            return None, closest, catalog
        names = {n for f in catalog.families for n in (f.name, f"{f.name}_total")}
        names &= set(client.metric_names())
        return best_reading(lookup, catalog, question, good, rng, names), closest, catalog


def answer_question(ctx: ToolContext, question: str, rng: str | None) -> ToolResult:
    rng = rng or question_range(question) or DEFAULT_RANGE
    reading, closest, catalog = read_question(ctx, question, rng)
    if reading is None:
        from knowledge.embedder import get_embedder

        unknown = lacking(question, catalog, get_embedder(ctx.embedding_model).wordpieces)
        about = f" Nothing there is about {', '.join(repr(w) for w in unknown)}." if unknown else ""
        return ToolResult(
            tool="metrics_question",
            status="no_data",
            message=f"No metric in Prometheus matches that question well enough.{about} "
            f"Closest names: {', '.join(closest) or 'none'}. Ask with one of them, or give "
            "PromQL with `/ops metrics`.",
        )
    window = window_for(ctx, rng)
    with prometheus(ctx) as client:
        outcome = run_range(client, reading.promql, window)
    how = Evidence(
        kind="note",
        title="How the question was read",
        source=reading.promql,
        text=reading.explain(),
    )
    if not outcome.ranked:
        return ToolResult(
            tool="metrics_question",
            status="no_data",
            message=f"`{reading.promql}` returned no series over the last "
            f"{format_duration(window.seconds)}.",
            evidence=[how],
        )
    result = outcome_result("metrics_question", outcome, ctx)
    result.evidence.append(how)
    return result


@register(
    name="metrics_question",
    description=(
        "Answer a question about metrics in plain words (latency, error rate, memory, CPU, "
        "disk, queue lag, restarts, GPU...): finds the real metric and labels in Prometheus, "
        "writes and runs the PromQL, returns figures, a chart and the PromQL it ran."
    ),
    args_schema=MetricsQuestionInput,
    status_text="querying Prometheus…",
    keywords=(
        "latency",
        "p99",
        "p95",
        "p50",
        "percentile",
        "cpu",
        "memory",
        "disk",
        "5xx",
        "4xx",
        "lag",
        "throughput",
        "utilisation",
        "utilization",
        "restarts",
        "gpu",
        "queue",
        "traffic",
        "rps",
        "qps",
        "saturation",
        "metric",
        "metrics",
        "graph",
        "chart",
        "plot",
        "prometheus",
        "rate",
        "errors",
    ),  # fmt: skip
    query_arg="question",
    rate_group="prometheus",
    requires=("prometheus",),
)
def metrics_question(args: MetricsQuestionInput, ctx: ToolContext) -> ToolResult:
    return answer_question(ctx, args.question, args.range)
