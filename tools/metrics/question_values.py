"""Label values a question names, as matchers on the labels where a metric really has them.

- Words and adjacent pairs (``llm gateway`` → ``llm-gateway``), paths (``/var/lib/x``) and
  ``host`` for ``host:port`` values are looked up in the label-value index.
- HTTP status words: ``5xx`` → ``code=~"5.."``, ``404s`` / ``500 errors`` → ``code="404"``,
  on whichever status label exists.
- A number is a value only when the question ties it to a label's name (``partition 4``).
- Two values of one label (``500s and 503s``) become one regex matcher (``code=~"500|503"``).
- A status after a negation is left out (``not 5xx`` → ``code!~"5.."``).
- A dashed name whose siblings are values but it is not (``k8s-worker-3``) is absent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from knowledge.lexical import tokenize
from tools.metrics.discovery import Family, quote, series_names

#: Labels preferred when a word is a value of several (e.g. job and service). They say
#: where a series comes from, not what it measures.
LABEL_PREFERENCE = ("job", "service", "app", "namespace", "instance", "pod", "container")
STATUS_LABELS = ("code", "status", "status_code", "response_code", "http_status")
NEGATIONS = {"not", "except", "excluding", "without", "minus", "but"}
_WORD = re.compile(r"/[A-Za-z0-9_.\-/]+|[A-Za-z0-9][A-Za-z0-9_.:\-]*")
_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.I)
_STATUS_CODE = re.compile(r"^([1-5]\d\d)s?$")


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # "=", "=~", or one of them negated: "!=", "!~"
    value: str
    word: str  # the words of the question it came from

    def __str__(self) -> str:
        return f"{self.label}{self.op}{quote(self.value)}"

    @property
    def probe(self) -> str:
        """A selector of the series the matcher may apply to: a negative matcher alone
        selects nothing, so the series that carry its label."""
        return carrying(self.label) if self.op.startswith("!") else "{" + str(self) + "}"

    def negated(self) -> Matcher:
        return Matcher(self.label, "!" + self.op[-1], self.value, f"not {self.word}")


def carrying(label: str) -> str:
    """A selector of the series that carry ``label``."""
    return "{" + f'{label}!=""' + "}"


def words_of(question: str) -> list[str]:
    words = [w.lower().rstrip("/").strip(".:-?,;!") for w in _WORD.findall(question)]
    return [w for w in words if w]


def phrases(question: str) -> list[str]:
    """Words of the question, and adjacent pairs joined with - and _ (``llm gateway``)."""
    words = words_of(question)
    pairs = [f"{a}{sep}{b}" for a, b in zip(words, words[1:], strict=False) for sep in "-_"]
    return pairs + words


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def numbered_values(question: str, index: dict[str, dict[str, str]]) -> list[list[Matcher]]:
    """``partition 4``, ``gpu 0``: a number right after the name of a label that has it."""
    words = words_of(question)
    found = []
    for before, word in zip(words, words[1:], strict=False):
        label = _singular(before)
        if word.isdigit() and label in index.get(word, {}):
            found.append([Matcher(label, "=", index[word][label], f"{before} {word}")])
    return found


def status_values(phrase: str, index: dict[str, dict[str, str]]) -> list[Matcher]:
    if status := _STATUS_CLASS.match(phrase):
        return [Matcher(lb, "=~", f"{status.group(1)}..", phrase) for lb in STATUS_LABELS]
    if code := _STATUS_CODE.match(phrase):
        labels = index.get(code.group(1), {})
        return [Matcher(lb, "=", labels[lb], phrase) for lb in STATUS_LABELS if lb in labels]
    return []


def _preference(label: str) -> int:
    return LABEL_PREFERENCE.index(label) if label in LABEL_PREFERENCE else 99


def value_matchers(
    question: str, index: dict[str, dict[str, str]], metric_terms: set[str]
) -> list[list[Matcher]]:
    """For each label value the question names, the matchers it could become (best first).

    Words that are part of the metric's name are not label values here.
    """
    found = numbered_values(question, index)
    used: set[str] = set(negated(question))  # "500s (not 503)": not a value asked for
    for word in used:  # "requests that weren't 5xx": every status but those
        if status := status_values(word, index):
            found.append([m.negated() for m in status])
    for phrase in phrases(question):
        if phrase in used or any(phrase in u.split("-") or phrase in u.split("_") for u in used):
            continue
        if status := status_values(phrase, index):
            found.append(status)
            used.add(phrase)
            continue
        labels = index.get(phrase)
        if not labels and len(phrase) > 3 and phrase.endswith("s"):
            # "POSTs", "GETs": written as the value is, not the verb ("gets the least traffic")
            plural = index.get(phrase[:-1], {})
            labels = {
                k: v for k, v in plural.items() if re.search(rf"\b{re.escape(v)}s\b", question)
            }
        terms = set(tokenize(phrase))
        if not labels or phrase.isdigit() or not terms:
            continue
        if terms <= metric_terms and "-" not in phrase:  # part of the metric's name
            continue
        order = sorted(labels, key=_preference)
        found.append([Matcher(label, "=", labels[label], phrase) for label in order])
        used.add(phrase)
    return found


#: A dashed name ending in a part with a digit: ``k8s-worker-3``, ``checkout-7d9f8c6b5-abcde``.
_DASHED = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*-[A-Za-z0-9]*\d[A-Za-z0-9]*\b")


def absent_values(question: str, index: dict[str, dict[str, str]]) -> list[str]:
    """Dashed names the question gives that no series has, though their siblings do:
    ``k8s-worker-3`` where ``k8s-worker-1`` and ``k8s-worker-2`` are label values."""
    stems = {key.rsplit("-", 1)[0] for key in index if "-" in key}
    return [
        word for word in _DASHED.findall(question)
        if word.lower() not in index and word.lower().rsplit("-", 1)[0] in stems
    ]  # fmt: skip


def negated(question: str) -> list[str]:
    """Words the question excludes: "just 500, not 503", "except search", "weren't 5xx"."""
    words = words_of(re.sub(r"n't\b", " not", question, flags=re.I))
    return [w for before, w in zip(words, words[1:], strict=False) if before in NEGATIONS]


def choose_matchers(
    carriers: Callable[[str], set[str]], family: Family, options: list[list[Matcher]]
) -> tuple[list[Matcher], list[str]]:
    """The option of each value where ``family`` really has series (``carriers`` gives the
    metric names a selector selects); words with none are returned as unmatched."""
    wanted = series_names(family)
    chosen: list[Matcher] = []
    unmatched: list[str] = []
    for alternatives in options:
        for matcher in alternatives:
            if wanted & carriers(matcher.probe):
                chosen.append(matcher)
                break
        else:
            unmatched.append(alternatives[0].word)
    return chosen, unmatched


def merge_same_label(matchers: list[Matcher]) -> tuple[list[Matcher], str | None]:
    """Equality matchers on one label become one regex; that label is returned to group by."""
    by_label: dict[str, list[Matcher]] = {}
    for matcher in matchers:
        by_label.setdefault(matcher.label, []).append(matcher)
    out: list[Matcher] = []
    group = None
    for label, named in by_label.items():
        same: list[Matcher] = []
        for matcher in named:  # the first of each operator and value
            if all((m.op, m.value) != (matcher.op, matcher.value) for m in same):
                same.append(matcher)
        equal = [m for m in same if m.op == "="]
        if len(equal) < 2 or any(m.op not in ("=", "!=") for m in same):
            out.extend(same)
            continue
        joined = "|".join(re.escape(m.value) for m in equal)
        out.append(Matcher(label, "=~", joined, ", ".join(m.word for m in equal)))
        out.extend(m for m in same if m.op != "=")  # "500s and 502s, not 503"
        group = label
    return out, group
