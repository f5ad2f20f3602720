"""Words of a question that name something this Prometheus knows nothing about.

A question about "rabbitmq queue depth" must not be answered with some other queue. A word
is such a name when the embedder's vocabulary does not hold it whole (it splits into word
pieces: a product, a system, a rare word), and nothing in the catalog carries it: no
metric name part (or a distinctive prefix, "kube" for "kubernetes"), help word, label name or
label value. A word within a typo of a known word ("latncy") is not a name, and nor is a word that
stands beside no word of a metric name: a name qualifies what is measured ("rabbitmq queue
depth", "postgres replication lag"), a rare verb does not ("extrapolate from the last hour").
An everyday word the catalog does not carry is such a name too when it stands right before
a measured word and says which of it is asked ("prompt tokens", "db connection pool
utilisation", "query latency"): the metric here measures another thing.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable

from bm25s.stopwords import STOPWORDS_EN

from knowledge.lexical import tokenize
from tools.metrics.discovery import SYNONYMS, Catalog, Family, catalog_name_terms, name_terms
from tools.metrics.question_words import (
    AGGREGATIONS,
    FREE_WORDS,
    GROUP_WORDS,
    LEAST,
    RATIO_WORDS,
    SUPERLATIVES,
    USED_WORDS,
)

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
#: A word of letters alone, not part of an identifier (``checkout-7d9f8c6b5-x2k4p``).
_PLAIN_WORD = re.compile(r"(?<![\w\-./:])[A-Za-z]+(?![\w\-./:])")
_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[a-z]+")
#: Shorter words are not checked (shorthand such as rps, ns, mem, tok).
MIN_CHARS = 4
#: Words at least this long may be typos of a known word.
TYPO_MIN_CHARS = 5
TYPO_RATIO = 0.85
PREFIX_MIN_CHARS = 4
#: Words of metric names shorter than this ("up") are not taken for what is asked.
MIN_SUBJECT_CHARS = 3
SHAPE_WORDS = {*AGGREGATIONS, *FREE_WORDS, *USED_WORDS, *RATIO_WORDS, *SUPERLATIVES, *LEAST}
#: How many words either side of a name may hold the word of a metric name it qualifies.
BESIDE = 2
#: Shorthand of everyday words in chat ("reqs", "msgs/sec", "30 mins").
SHORTHAND = {"msg", "req", "sec", "min", "hr", "pct", "avg", "num", "approx", "info"}


def name_parts(text: str) -> set[str]:
    """Lower-cased parts of identifiers and label values (``MemAvailable`` → mem, available)."""
    parts: set[str] = set()
    for chunk in re.split(r"[_:\-./\s]+", text):
        if chunk:
            parts.add(chunk.lower())
            parts.update(p.lower() for p in _PARTS.findall(chunk))
    return parts


def vocabulary(catalog: Catalog) -> tuple[set[str], set[str]]:
    """(every word the catalog carries, the parts of metric names), computed once per
    catalog."""
    cached = catalog.derived.get("vocabulary")
    if cached is None:
        cached = catalog.derived["vocabulary"] = _vocabulary(catalog)
    return cached


def _vocabulary(catalog: Catalog) -> tuple[set[str], set[str]]:
    metric_parts: set[str] = set()
    words: set[str] = set()
    for family in catalog.families:
        metric_parts |= name_parts(family.name)
        words |= {w.lower() for w in _WORD.findall(family.help)}
    for value, labels in catalog.labels.items():
        words |= name_parts(value)
        for label in labels:
            words |= name_parts(label)
    words |= set(SYNONYMS) | {s for syns in SYNONYMS.values() for s in syns}
    return words | metric_parts, metric_parts


def common(word: str, known: set[str], wordpieces: Callable[[str], list[str]]) -> bool:
    """A word of the language or of chat, in any inflection ("looping", "whats", "reqs")."""
    stem = stem_of(word)
    forms = {word, word.rstrip("s"), stem, stem + "e"}
    if forms & known or forms & SHORTHAND:
        return True
    return any(len(wordpieces(f)) == 1 for f in forms if f)


def stem_of(word: str) -> str:
    import Stemmer

    return str(Stemmer.Stemmer("english").stemWord(word))


SHAPE_STEMS = {stem_of(w) for w in SHAPE_WORDS}
TIME_STEMS = {"second", "minut", "hour", "day", "week"}


@functools.cache
def _english_stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def measured_words(catalog: Catalog) -> set[str]:
    """Words (and their stems) for what the catalog's metrics measure: the parts of their
    names and the words operators use for them, but for words of where and how."""
    cached = catalog.derived.get("measured_words")
    if cached is None:
        _, metric_parts = vocabulary(catalog)
        words = {p for p in metric_parts if len(p) > 2} - how_words(catalog) - SHAPE_STEMS
        words |= set(SYNONYMS)
        words |= {stem_of(w) for w in words}
        cached = catalog.derived["measured_words"] = words - _english_stop_words()
    return cached


def qualifies(word: str, after: str, catalog: Catalog) -> bool:
    """Whether ``word``, which the catalog does not know, qualifies the measured word right
    after it: "prompt tokens", "pool utilisation" and "query latency" are about another
    thing than the tokens, utilisation or latency measured here. Function words, time
    units, adverbs ("actually") and superlatives ("furthest") qualify nothing."""
    known, _ = vocabulary(catalog)
    forms = {word, word.rstrip("s"), stem_of(word)}
    return (
        bool({after, after.rstrip("s"), stem_of(after)} & measured_words(catalog))
        and not forms & (known | SHAPE_STEMS | TIME_STEMS | set(GROUP_WORDS))  # not a "where"
        and word not in _english_stop_words()
        and not word.endswith(("ly", "est"))
    )


def unknown_subjects(
    question: str, catalog: Catalog, wordpieces: Callable[[str], list[str]]
) -> list[str]:
    known, metric_parts = vocabulary(catalog)
    long_parts = [p for p in metric_parts if len(p) >= PREFIX_MIN_CHARS]
    # A distinctive name part ("kube", not an everyday word like "post") may start the word.
    distinctive = [p for p in long_parts if len(wordpieces(p)) > 1]
    subjects = {p for p in metric_parts if len(p) > 2 and p not in STOPWORDS_EN} | set(SYNONYMS)
    seq = _WORD.findall(question)
    unknown: list[str] = []
    for i, raw in enumerate(seq):
        word = raw.lower()
        beside = [w.lower() for w in seq[max(i - BESIDE, 0) : i] + seq[i + 1 : i + 1 + BESIDE]]
        if not any({w, w.rstrip("s"), stem_of(w)} & subjects for w in beside):
            continue  # a name qualifies what is measured ("rabbitmq queue", "redis memory")
        if len(word) < MIN_CHARS or any(ch.isdigit() for ch in word) or word in known:
            continue
        # an everyday word is no subject, unless it says which of a measured thing is asked
        # ("prompt tokens"); a question's first word is its verb ("graph", "plot")
        after = seq[i + 1].lower() if i + 1 < len(seq) else ""
        qualifier = i > 0 and qualifies(word, after, catalog)
        if common(word, known, wordpieces) and not qualifier:
            continue
        if any(p.startswith(word) for p in long_parts):
            continue  # an abbreviation of a name part ("util")
        if any(word.startswith(p) for p in distinctive):
            continue
        if len(word) >= TYPO_MIN_CHARS and difflib.get_close_matches(
            word, known, n=1, cutoff=TYPO_RATIO
        ):
            continue
        unknown.append(raw)
    return unknown


def spelled(question: str, catalog: Catalog, wordpieces: Callable[[str], list[str]]) -> str:
    """The question with typos of catalog words mended ("avalable" → "available")."""
    known, _ = vocabulary(catalog)

    def mend(match: re.Match[str]) -> str:
        word = match.group()
        low = word.lower()
        if len(low) < TYPO_MIN_CHARS or low in known or common(low, known, wordpieces):
            return word
        swapped = transposed(low, known)
        close = difflib.get_close_matches(low, known, n=1, cutoff=TYPO_RATIO)
        return swapped or (close[0] if close else word)

    return _PLAIN_WORD.sub(mend, question)


def transposed(word: str, known: set[str]) -> str | None:
    """The known word ``word`` is with two neighbouring letters swapped ("memroy"), a typo
    the similarity ratio rates low on short words."""
    for i in range(len(word) - 1):
        swapped = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if swapped != word and swapped in known:
            return swapped
    return None


def uncovered(question: str, catalog: Catalog, family: Family) -> list[str]:
    """Words of the question that name what some metric here measures but ``family`` does
    not carry (in its name, its help, or a word operators use for one of them): "gpu
    memory" is not what ``gpu_utilization_ratio`` measures, "time to first token" not what
    a request latency does. Words for where ("pod", "node", a label value such as "llm" of
    ``llm-gateway`` or "post") and for how ("total", "free") are not counted, but for a
    namespace said of a measured thing ("node cpu")."""
    asked = set(tokenize(question)) & catalog_name_terms(catalog) - how_words(catalog)
    asked = {w for w in asked if len(w) >= MIN_SUBJECT_CHARS} | namespaces_named(question, catalog)
    carried = name_terms(family.name) | set(tokenize(family.help))
    return sorted(
        w for w in asked
        if w not in carried and not synonyms_of(w) & carried
        and not any(c.startswith(w) for c in carried)  # "mem" for memory
    )  # fmt: skip


def namespaces_named(question: str, catalog: Catalog) -> set[str]:
    """A word for where that is also a metric namespace, said of a measured thing ("node cpu":
    the node's CPU, not a process's), stemmed."""
    spaces = {f.name.split("_", 1)[0].lower() for f in catalog.families}
    names = catalog_name_terms(catalog)
    seq = tokenize(question)
    return {w for w, after in zip(seq, seq[1:], strict=False) if w in spaces and after in names}


def how_words(catalog: Catalog) -> set[str]:
    """Stemmed words that say where or how rather than what: labels' values and the words
    of grouping, aggregation and shape (computed once per catalog)."""
    cached = catalog.derived.get("how_words")
    if cached is None:
        words = " ".join([*catalog.labels, *GROUP_WORDS, *SHAPE_WORDS])
        cached = catalog.derived["how_words"] = set(tokenize(words.replace("-", " ")))
    return cached


def synonyms_of(term: str) -> set[str]:
    """Stemmed words operators use for a stemmed term."""
    return _stemmed_synonyms().get(term, set())


@functools.cache
def _stemmed_synonyms() -> dict[str, set[str]]:
    return {
        key: set(tokenize(" ".join(values)))
        for word, values in SYNONYMS.items()
        for key in tokenize(word)
    }
