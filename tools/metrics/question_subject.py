"""Words of a question that name something this Prometheus knows nothing about.

A question about "rabbitmq queue depth" must not be answered with some other queue. A word
is such a name when the embedder's vocabulary does not hold it whole (it splits into word
pieces: a product, a system, a rare word), and nothing in the catalog carries it: no
metric name part (or a distinctive prefix, "kube" for "kubernetes"), help word, label name or
label value. A word within a typo of a known word ("latncy") is not a name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from tools.metrics.discovery import SYNONYMS, Catalog

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[a-z]+")
#: Shorter words are not checked (shorthand such as rps, ns, mem, tok).
MIN_CHARS = 4
#: Words at least this long may be typos of a known word.
TYPO_MIN_CHARS = 5
TYPO_RATIO = 0.85
PREFIX_MIN_CHARS = 4
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


def unknown_subjects(
    question: str, catalog: Catalog, wordpieces: Callable[[str], list[str]]
) -> list[str]:
    known, metric_parts = vocabulary(catalog)
    long_parts = [p for p in metric_parts if len(p) >= PREFIX_MIN_CHARS]
    # A distinctive name part ("kube", not an everyday word like "post") may start the word.
    distinctive = [p for p in long_parts if len(wordpieces(p)) > 1]
    unknown: list[str] = []
    for raw in _WORD.findall(question):
        word = raw.lower()
        if len(word) < MIN_CHARS or any(ch.isdigit() for ch in word) or word in known:
            continue
        if common(word, known, wordpieces):
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
        close = difflib.get_close_matches(low, known, n=1, cutoff=TYPO_RATIO)
        return close[0] if close else word

    return _WORD.sub(mend, question)
