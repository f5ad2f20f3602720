"""Grounding: what metrics and label values a Prometheus really has, and which of them a
question speaks of.

- The catalog: metric families with their type and help (``/api/v1/metadata``), plus the
  names with no metadata (type guessed from the name's suffix), cached for a few minutes.
- Matching a question to families: the runbook embedder (cosine of question and
  "name words: help") and a lexical match (stemmed words of the name and help, with a
  few words operators use for the same thing), blended.
- Label values named in the question (``checkout``, ``llm gateway``, ``5xx``) become
  matchers on the labels where the chosen metric really has them.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.lexical import identifier_parts, tokenize
from tools.metrics.client import Prometheus

if TYPE_CHECKING:
    from knowledge.embedder import Embedder

CATALOG_TTL_S = 300.0
#: A word this long or longer that starts a word of a metric name stands for it ("req").
ABBREVIATION_MIN = 3
#: A word this short stands for longer name words even when a name has it whole ("mem":
#: MemTotal, and memory).
SHORT_MAX = 3
#: Labels never matched against words of a question.
SKIP_LABELS = {"__name__", "le", "quantile"}
#: A label with more values than this is not scanned for names (ids, timestamps...).
MAX_LABEL_VALUES = 5000
#: Labels preferred when a word is a value of several (e.g. job and service).
LABEL_PREFERENCE = ("job", "service", "app", "namespace", "instance", "pod", "container")
STATUS_LABELS = ("code", "status", "status_code", "response_code", "http_status")
#: Words operators use for what metric names call otherwise (stemmed on use).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "latency": ("duration", "seconds", "time"),
    "slow": ("latency", "duration"),
    "slowest": ("latency", "duration"),
    "response": ("duration", "request"),
    "percentile": ("latency", "duration"),
    "median": ("latency", "duration"),
    "memory": ("mem", "resident", "bytes"),
    "ram": ("memory", "mem", "resident"),
    "rss": ("resident", "memory"),
    "free": ("avail", "available"),
    "available": ("avail",),
    "full": ("avail", "size", "used"),
    "disk": ("filesystem", "fs", "avail", "storage"),
    "space": ("avail", "filesystem"),
    "traffic": ("requests",),
    "throughput": ("requests", "total"),
    "rps": ("requests",),
    "qps": ("requests",),
    "errors": ("requests", "code"),
    "error": ("requests", "code"),
    "5xx": ("requests", "code"),
    "4xx": ("requests", "code"),
    "failures": ("requests", "code"),
    "utilisation": ("utilization", "ratio", "usage"),
    "utilization": ("ratio", "usage"),
    "usage": ("utilization", "ratio"),
    "busy": ("utilization",),
    "restarts": ("restart",),
    "restarted": ("restart",),
    "crash": ("restarts",),
    "crashing": ("restarts",),
    "crashloop": ("restarts",),
    "crashlooping": ("restarts",),
    "backlog": ("lag", "queue"),
    "waiting": ("queue",),
    "queued": ("queue",),
    "cpu": ("cpu", "seconds"),
    "cores": ("cpu",),
    "core": ("cpu",),
}
#: Words a question uses for a latency quantile ("p99", "p99.9").
_QUANTILE_WORD = re.compile(r"^p\d{2}(?:\.\d+)?$")
#: Unit words at the end of a metric name: they say how, not what.
UNIT_WORDS = {"total", "bytes", "seconds", "ratio", "bucket", "count", "sum", "info"}
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]*")


@dataclass(frozen=True)
class Family:
    """A metric family: ``name`` as the metadata has it (histograms without ``_bucket``)."""

    name: str
    type: str  # counter, gauge, histogram, summary, unknown
    help: str = ""

    @property
    def text(self) -> str:
        words = " ".join(part for part in re.split(r"[_:]", self.name) if part)
        return f"{words}: {self.help}" if self.help else words


@dataclass
class Catalog:
    families: list[Family]
    vectors: np.ndarray | None = None
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    """Label values by lower-cased value (see ``label_index``)."""
    built_at: float = field(default_factory=time.monotonic)
    derived: dict[str, Any] = field(default_factory=dict, repr=False)
    """What is computed from the catalog once and reused (e.g. its vocabulary)."""

    def get(self, name: str) -> Family | None:
        return next((f for f in self.families if f.name == name), None)


def quote(value: str) -> str:
    """A label value as a PromQL string literal (quotes and backslashes escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def guess_type(name: str) -> str:
    if name.endswith(("_total", "_count", "_sum")):
        return "counter"
    if name.endswith("_bucket"):
        return "histogram"
    return "gauge"


def build_catalog(client: Prometheus) -> Catalog:
    metadata = client.metadata()
    names = set(client.metric_names())
    families = [Family(name, kind, help_) for name, (kind, help_) in sorted(metadata.items())]
    covered = set(metadata)
    for name in sorted(names):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name in covered or base in covered:
            continue
        if name.endswith("_bucket"):
            families.append(Family(base, "histogram"))
            covered.add(base)
        else:
            families.append(Family(name, guess_type(name)))
    present = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in names} | names
    families = [f for f in families if f.name in present or f.name in names]
    return Catalog(families)


_CACHE: dict[str, Catalog] = {}
_CACHE_LOCK = threading.Lock()


def catalog_for(client: Prometheus, embedder: Embedder | None) -> Catalog:
    """The catalog of a Prometheus, rebuilt after CATALOG_TTL_S."""
    with _CACHE_LOCK:
        cached = _CACHE.get(client.url)
        if cached is not None and time.monotonic() - cached.built_at < CATALOG_TTL_S:
            return cached
    catalog = build_catalog(client)
    catalog.labels = label_index(client)
    if embedder is not None and catalog.families:
        catalog.vectors = embedder.encode([f.text for f in catalog.families])
    with _CACHE_LOCK:
        _CACHE[client.url] = catalog
    return catalog


def question_terms(question: str) -> set[str]:
    """Stemmed words of a question, with the words operators use for the same things."""
    raw = _WORD.findall(question)
    words = [w.lower() for w in raw]
    extra = [syn for w in words for syn in SYNONYMS.get(w, ())]
    extra += [s for w in words if _QUANTILE_WORD.match(w) for s in SYNONYMS["percentile"]]
    return set(tokenize(" ".join(raw + extra)))  # as written: "MemAvailable" is two words


def name_terms(name: str) -> set[str]:
    """Stemmed words of a metric name, camelCase split, without its trailing unit words."""
    parts = [p for p in re.split(r"[_:]", name) if p]
    while len(parts) > 1 and parts[-1].lower() in UNIT_WORDS:
        parts.pop()
    return {t for part in parts for piece in identifier_parts(part) for t in tokenize(piece)}


@dataclass(frozen=True)
class Candidate:
    family: Family
    score: float
    lexical: float
    dense: float
    name_hit: float = 0.0
    """Share of the name's words (units aside) that the question carries."""


def rank_families(
    question: str, catalog: Catalog, embedder: Embedder | None, k: int = 8
) -> list[Candidate]:
    """Families most likely meant by ``question``, best first.

    ``lexical`` is the share of the name's words the question (with synonyms) carries, plus
    a little for words of the help text; ``dense`` the cosine similarity. They are blended
    half and half.
    """
    terms = question_terms(question)
    terms |= abbreviated(terms, catalog)
    dense = np.zeros(len(catalog.families), dtype=np.float32)
    if embedder is not None and catalog.vectors is not None:
        dense = catalog.vectors @ embedder.encode([question])[0]
    out = []
    for i, family in enumerate(catalog.families):
        words = name_terms(family.name)
        help_terms = set(tokenize(family.help)) - words
        name_hit = len(terms & words) / max(len(words), 1)
        help_hit = min(len(terms & help_terms), 3) / 10
        lexical = min(name_hit + help_hit, 1.0)
        score = 0.5 * lexical + 0.5 * float(dense[i])
        out.append(Candidate(family, score, lexical, float(dense[i]), name_hit))
    out.sort(key=lambda c: c.score, reverse=True)
    return out[:k]


def catalog_name_terms(catalog: Catalog) -> set[str]:
    """The stemmed words of every metric name in the catalog (computed once)."""
    known = catalog.derived.get("name_terms")
    if known is None:
        known = catalog.derived["name_terms"] = {
            t for f in catalog.families for t in name_terms(f.name)
        }
    return known


def label_names(catalog: Catalog) -> frozenset[str]:
    """Every label name a family of the catalog carries (computed once)."""
    known = catalog.derived.get("label_names")
    if known is None:
        known = catalog.derived["label_names"] = frozenset(
            label for by_label in catalog.labels.values() for label in by_label
        )
    return known


def abbreviated(terms: set[str], catalog: Catalog) -> set[str]:
    """Words of metric names that a shortened word of the question starts ("req" →
    request, "tok" → token), for words the names do not carry whole or that are very short
    ("mem" → memory)."""
    known = catalog_name_terms(catalog)
    short = [
        t for t in terms
        if t.isalpha() and len(t) >= ABBREVIATION_MIN and (t not in known or len(t) <= SHORT_MAX)
    ]  # fmt: skip
    return {word for word in known for t in short if word.startswith(t) and word != t}


def label_index(client: Prometheus) -> dict[str, dict[str, str]]:
    """Lower-cased value (and host part of ``host:port`` values, and the tail of a dashed
    host or a path that only one value of the label has: ``worker-2`` for
    ``k8s-worker-2:9100``, ``containerd`` for ``/var/lib/containerd``) → {label: value}."""
    index: dict[str, dict[str, str]] = {}
    tails: dict[tuple[str, str], set[str]] = {}
    for label in client.label_names():
        if label in SKIP_LABELS:
            continue
        values = client.label_values(label)
        if len(values) > MAX_LABEL_VALUES:
            continue
        for value in values:
            keys = {value.lower()}
            if ":" in value:
                keys.add(value.split(":", 1)[0].lower())
            for key in keys:
                index.setdefault(key, {})[label] = value
            for tail in [*dashed_tails(value), *path_tail(value)]:
                tails.setdefault((tail, label), set()).add(value)
    for (tail, label), owners in tails.items():
        if len(owners) == 1 and label not in index.get(tail, {}):
            index.setdefault(tail, {})[label] = next(iter(owners))
    return index


def path_tail(value: str) -> list[str]:
    """``containerd`` for ``/var/lib/containerd``: a path's last part, when it is a word."""
    if not value.startswith("/"):
        return []
    last = value.rstrip("/").rsplit("/", 1)[-1].lower()
    return [last] if last and any(ch.isalpha() for ch in last) else []


def dashed_tails(value: str) -> list[str]:
    """``worker-2`` and not ``2`` for ``k8s-worker-2:9100``: the host part less its first
    dashed words, while a dash and a letter remain."""
    parts = value.split(":", 1)[0].lower().split("-")
    tails = ["-".join(parts[i:]) for i in range(1, len(parts) - 1)]
    return [t for t in tails if any(ch.isalpha() for ch in t)]


def names_with(client: Prometheus, matcher: str, hours: float = 6.0) -> set[str]:
    """Metric names with a series that ``matcher`` selects (recent hours)."""
    end = datetime.now(UTC)
    params = {
        "match[]": matcher,
        "start": f"{(end - timedelta(hours=hours)).timestamp():.0f}",
        "end": f"{end.timestamp():.0f}",
    }
    return set(client.label_values("__name__", params))


def series_names(family: Family) -> set[str]:
    if family.type == "histogram":
        return {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
    if family.type == "summary":
        return {family.name, f"{family.name}_sum", f"{family.name}_count"}
    return {family.name, f"{family.name}_total"}
