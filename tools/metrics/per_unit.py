"""A quantity per event of another metric: "tokens per request", "bytes per request". The
answer is the ratio of the two counters' rates, the thing counted over the events it is
counted per (a histogram's ``_count`` counts its events). "per second" and "per pod" are
not this: a time unit is a rate, a word for a label a grouping."""

from __future__ import annotations

from knowledge.lexical import tokenize
from tools.metrics.discovery import Catalog, Family, catalog_name_terms, label_names, name_terms
from tools.metrics.question_words import GROUP_WORDS, words

TIME_WORDS = {"second", "sec", "s", "minute", "min", "m", "hour", "hr", "h", "day", "d", "week"}
#: Words after "per" looked at for the thing it is per ("per completion request").
PER_SPAN = 3


def per_term(question: str, catalog: Catalog, family: Family) -> str | None:
    """The stemmed word of another metric's name that the question counts ``family`` per."""
    seq = words(question)
    labels = label_names(catalog)
    own = name_terms(family.name)
    for i, word in enumerate(seq):
        if word not in ("per", "each"):  # "tokens per request", "tokens does each request"
            continue
        for after in seq[i + 1 : i + 1 + PER_SPAN]:
            one = after[:-1] if after.endswith("s") and len(after) > 3 else after
            if after in TIME_WORDS or one in TIME_WORDS or one in GROUP_WORDS or one in labels:
                break
            stems = tokenize(after)
            if stems and stems[0] in catalog_name_terms(catalog) and stems[0] not in own:
                return stems[0]
    return None


def denominator(question: str, catalog: Catalog, family: Family, term: str) -> Family | None:
    """The counter or histogram that counts the events ``term`` names: one of the same
    namespace (the first word of its name: ``llm_`` for ``llm_tokens_generated_total``)
    first, then a counter of them (``http_requests_total`` over a latency histogram's
    count), then the one whose name and help share most words with the question."""
    asked = set(tokenize(question))
    options = [
        f for f in catalog.families
        if f.name != family.name and term in name_terms(f.name)
        and f.type in ("counter", "histogram", "summary")
    ]  # fmt: skip
    if not options:
        return None
    namespace = family.name.split("_", 1)[0]

    def fit(f: Family) -> tuple[bool, bool, int]:
        shared = asked & (name_terms(f.name) | set(tokenize(f.help)))
        return f.name.split("_", 1)[0] == namespace, f.type == "counter", len(shared)

    return max(options, key=fit)


def events_name(family: Family, names: set[str]) -> str:
    """The series that counts ``family``'s events."""
    if family.type in ("histogram", "summary"):
        return f"{family.name}_count"
    return family.name if family.name in names else f"{family.name}_total"
