"""Log template mining: generic variable masking, then Drain (``tools.logs.drain``), one
configuration for every source.

Masking does most of the work. Every whitespace token that holds a variable becomes
``<*>``: a token with a digit (numbers, hex, IPs, UUIDs, ids such as ``blk_-123`` or
``node-7``, durations such as ``12ms``, versions), a URL, a path, a dotted name (host,
package, class), an e-mail address, a MAC or IPv6 address, the value of ``key=value``, a
month or weekday name. Brackets, quotes, trailing punctuation and ``key=``/``key:``
prefixes around the value are kept (``(HWID=1973),`` becomes ``(HWID=<*>),``). A host name
needs no digit: two dotted parts or more, or one dot between lower-case words
(``api-gw.internal``). Runs of masks are then folded into one, with the units and time
zones that follow them (``5.2 KB``, ``Thu Aug 4 15:29:45 PDT 2005``, ``3 4 5 6``), so lists
and values of any length give one template.

What is left after masking is nearly all constant text, so Drain clusters with a high
similarity threshold: a line joins a template only when at least ``SIMILARITY`` of its
tokens match it (masks match masks), i.e. at most one differing word in twenty. Lower
thresholds merge templates that differ by one constant word (``VM Paused`` /
``VM Resumed``). Variables that are plain words are found from the data instead: a
position that takes many words across templates that are otherwise the same
(``VARIABLE_VALUES``), or fewer words that also vary together at a position of another
template (``SHARED_VALUES``: user names, HTTP methods), and a span of any length that
takes many values between the same first and last words (``SPAN_VALUES``); the merged
templates keep the oldest one's id. A template with variables also takes in the templates
of its length that differ from it only where it is variable, whichever came first (a user
name masked by its digit beside user names found to be a variable), so a line's template
does not hang on the order the lines came in; a masked position there covers a word shaped
like an identifier too (``python-agent-ojlse`` beside names that held a digit).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from tools.logs.drain import Drain, LogCluster
from tools.logs.headers import MONTHS, split_header

MASK = "<*>"
#: A line joins a template when at least this share of its tokens match the template.
SIMILARITY = 0.95
#: Drain's tree depth: token count, then the first token, then the clusters.
TREE_DEPTH = 4
#: Children of a tree node; past this, further first tokens share its wildcard child.
MAX_CHILDREN = 100
#: Templates kept; past this the least recently used is dropped (bounded memory).
MAX_CLUSTERS = 20_000
#: Distinct tokens whose masked form is remembered; the cache is emptied when full.
TOKEN_CACHE_SIZE = 100_000
#: Distinct masked messages whose template is remembered (most lines repeat a masked
#: message exactly, and then skip Drain); emptied when full.
MESSAGE_CACHE_SIZE = 50_000
#: Drain marks the positions it generalises itself with this (shown as ``<*>``): it must
#: differ from MASK, since Drain does not count its own wildcards as matching tokens.
_DRAIN_WILDCARD = "<**>"
#: Templates equal but for one word, with this many different words there, are one
#: template with a variable there (user names, states): a position is a variable when it
#: takes many values across lines that are otherwise the same, not by a list of words.
#: Two values stay two templates ("opened"/"closed"). None: off. Chosen leave-one-system-
#: out (bench/results/log_grouping.json).
VARIABLE_VALUES: int | None = 8
#: Templates that share their first and last words and differ in what lies between, in
#: length too (a user agent, an SQL statement, an application name: a span of any number
#: of tokens), are one template with a variable span there when this many different spans
#: are seen and the shared words hold at least ``SPAN_CONTEXT`` constant tokens. Spans
#: that are all as long are left to the word-variable merge above (``VM Paused`` / ``VM
#: Resumed``, state words in one position each), and so are longer spans that are phrases
#: recurring with one word changed (``invalid user <*>`` beside bare user names: a
#: template of its own, see ``_recurring_phrases``). The shared words are at most
#: ``SPAN_EDGE`` tokens from each end (bounded work per new template), and the first words
#: are two at least: messages that only end alike ("... took too long (<*>) to execute"),
#: or share no more than their first word (a logger's ``etcdserver:``), are different
#: events. None: off. Chosen leave-one-system-out over the 8 Loghub systems (the same
#: setting in every fold), each scored by the worse of messages and raw lines, among the
#: settings that keep log RCA's finding-1 rate; over all 28 dev systems the choice is
#: unstable across folds (bench/results/log_grouping.json).
SPAN_VALUES: int | None = 5
SPAN_CONTEXT = 4
SPAN_EDGE = 8
#: A position with fewer values is a variable when this many of its values are also the
#: values of another varying position, and the two hold at least SHARED_UNION words in all
#: (user names, HTTP methods recur; "opened"/"closed" only alternate). None: off.
SHARED_VALUES: int | None = 2
SHARED_UNION = 3
#: Words in capitals (``GET``, ``RUNNING``, ``AAAA``, ``SUCCESS``) are keywords of the
#: software: the word merges above never make them variables, however many there are. The
#: Loghub ground truth holds them constant (1 of every 190 such words in the 8 shared systems
#: is a variable). Chosen leave-one-system-out over the dev systems annotated to those
#: conventions (the 8 Loghub systems, dev-4/ and dev-5/: kept in all 16 folds, 0.923 against
#: 0.872); over all 28 dev systems it is not (0.788 against 0.801 never), as the systems
#: written to other conventions hold HTTP methods and states as variables
#: (bench/results/log_grouping.json, ``capitals``).
CAPITALS = True
#: Sibling keys remembered for the word-variable merge; emptied when full (bounded memory,
#: like the caches above: a merge then needs its values seen again).
SIBLING_CACHE_SIZE = 200_000
#: Lines mined before their template ids are given out, so that lines mined before a
#: position turned out to be a variable get the merged template's id too.
WINDOW = 5000

_DIGIT = re.compile(r"\d")
#: Tokens that are variables without holding a digit.
_SHAPE = re.compile(
    r"""
      [a-zA-Z][a-zA-Z0-9+.\-]*://\S+                          # URL
    | \.{0,2}/\S*                                             # /abs, ./rel, ../rel path
    | [\w.\-]+(?:/[\w.\-]*){2,}                               # a/b/c path
    | (?=.*[.\-])[A-Za-z][\w.\-]*/[\w.\-]*\w                     # acme/web-api, host.org/A
    | [A-Za-z_][\w\-]*(?:\.[\w\-]+){2,}(?:\$[\w\-]+)?(?::\w+)? # host, package.Class$Inner
    | [a-z][a-z0-9\-]+\.[a-z][a-z0-9\-]*[a-z](?::\w+)?           # api-gw.internal, pypi.org:443
    | [\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+                              # e-mail address
    | [0-9a-fA-F]*::[0-9a-fA-F:]*                             # IPv6 with ::
    | (?:[0-9A-Fa-f]{2}[:-]){3,}[0-9A-Fa-f]{2}                # MAC, hex groups
    | [a-fA-F]{8,}                                            # hex without digits
    """,
    re.VERBOSE,
)
#: A word shaped like an identifier: parts joined by ``-`` or ``_`` (``maven-agent-fxmkc``),
#: or a few symbols (``+``, ``-``: an empty value, such as flags).
_COMPOUND = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[_\-][A-Za-z0-9]+)+|[^\w\s]{1,3}")
_HEX_GROUPS = re.compile(r"(?:[0-9A-Fa-f]{2}[:-]){3,}[0-9A-Fa-f]{2}")
_KEY = re.compile(r"([A-Za-z_][A-Za-z_.\-]*[=:])(.+)")
_PAIRS = {"(": ")", "[": "]", "{": "}", '"': '"', "'": "'"}
_CLOSERS = {close: open_ for open_, close in _PAIRS.items()}
_TRAILING = ",;:."
_EDGE_END = frozenset(_TRAILING) | frozenset(_CLOSERS)
_DATE_WORDS = frozenset((
    *MONTHS, "January", "February", "March", "April", "June", "July", "August", "September",
    "October", "November", "December", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
))  # fmt: skip
_UNITS = (
    "B", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "kB", "bytes",
    "ms", "us", "µs", "ns", "s", "sec", "secs", "seconds", "min", "mins", "minutes", "h", "hrs",
    "hours", "UTC", "GMT", "PST", "PDT", "EST", "EDT", "CST", "CDT", "MST", "MDT", "CET", "CEST",
    "BST", "IST", "JST", "B/s", "KB/s", "MB/s", "GB/s", "KiB/s", "MiB/s", "GiB/s", "kB/s",
    "op/s", "ops/s",
)  # fmt: skip
#: A mask followed by more masks (``, `` or space apart) or by units and zones: one mask.
_FOLD = re.compile(rf"<\*>(?:[,;]? (?:<\*>|(?:{'|'.join(_UNITS)})(?![\w.\-/])))+")


#: Quoted values, masked whole (spaces and all) before the message is split into tokens:
#: a one-word value of ``key="..."`` (logfmt, klog's structured pairs), an escaped quoted
#: value inside a quoted message, and a quoted single word in prose (``relation "orders"
#: does not exist``). A quoted phrase is kept: it is prose, often the message itself
#: (``msg="connection refused"``, klog's quoted message).
#: Kept by leave-one-system-out (bench/results/log_grouping.json).
_KEY_QUOTED = re.compile(r'(\b[A-Za-z_][\w.\-]*=)"(?:[^"\\\s]|\\.)*"')
_ESCAPED_QUOTED = re.compile(r'\\"[^"\\]*\\"')
_QUOTED_WORD = re.compile(r'(?<![\w=\\])"[^"\s]+"(?!\w)')
QUOTED_VALUES = True


#: A message that lists ``Key: value`` (or ``Key = value``) pairs after commas, this many
#: pairs at least, holds variables in their values, words too (``..., Disposition = Staged,
#: VersionComp: EQ, ServiceComp: GE``): the keys are the message, a value of up to
#: ``LISTED_WORDS`` words is masked whole. None: off. Chosen by leave-one-system-out over
#: the 28 dev systems (4 in all 28 folds, ≥ 2 and 3 on every system; it moves one system,
#: none for the worse; bench/results/log_grouping.json, ``listed_pairs``).
LISTED_PAIRS: int | None = 4
LISTED_WORDS = 3
_LISTED = re.compile(r"(, [A-Za-z][\w.\-]*(?::| =) )([^,:=]+?)(?=, |$)")


def _listed_values(text: str, pairs: int) -> str:
    if text.count(", ") < pairs - 1 or len(_LISTED.findall(text)) < pairs:
        return text
    return _LISTED.sub(lambda m: m[1] + MASK if m[2].count(" ") < LISTED_WORDS else m[0], text)


def _quoted_values(text: str) -> str:
    text = _KEY_QUOTED.sub(r'\1"<*>"', text)
    text = _ESCAPED_QUOTED.sub(r'\\"<*>\\"', text)
    return _QUOTED_WORD.sub('"<*>"', text)


def _mask_core(core: str) -> str:
    """A token stripped of brackets and punctuation, masked if it is a variable."""
    if core in _DATE_WORDS or _SHAPE.fullmatch(core):
        return MASK
    if ("=" in core or ":" in core) and not _HEX_GROUPS.fullmatch(core):
        key = _KEY.fullmatch(core)
        if key:
            head, value = key.groups()
            if head[-1] == "=" and value[0] not in "\"'":
                return head + MASK
            inner = _mask_core(value)
            if inner != value:
                return head + inner
    return MASK if _DIGIT.search(core) else core


def mask_token(token: str) -> str:
    """``token`` with its variable part masked; enclosing brackets or quotes, trailing
    punctuation and a ``key=`` prefix are kept."""
    if token[0] not in _PAIRS and token[-1] not in _EDGE_END:
        return _mask_core(token)
    core = token.lstrip("([{\"'")
    lead = token[: len(token) - len(core)]
    stripped = core.rstrip(_TRAILING)
    trail, core = core[len(stripped) :], stripped
    for opener in reversed(lead):  # closers matching the leading openers
        close = _PAIRS[opener]
        if not core or core[-1] != close or _balanced(core, opener, close):
            break  # none, or the core's own: (cipher=(none)),
        trail, core = core[-1] + trail, core[:-1]
    while core and core[-1] in _CLOSERS:  # a closer the core does not open
        close, opener = core[-1], _CLOSERS[core[-1]]
        if _balanced(core, opener, close):
            break
        trail, core = close + trail, core[:-1]
    if not core:
        return token
    masked = _mask_core(core)
    return token if masked == core else lead + masked + trail


def _balanced(core: str, opener: str, close: str) -> bool:
    """Whether ``core``, ending with ``close``, opens it too (``(none)``, ``"a"``)."""
    if opener == close:
        return core.count(opener) % 2 == 0
    return core.count(opener) >= core.count(close)


class Masker:
    """Masks the variables of log messages; remembers the masked form of recent tokens."""

    def __init__(
        self, cache_size: int = TOKEN_CACHE_SIZE, *, quoted: bool = QUOTED_VALUES,
        listed: int | None = LISTED_PAIRS,
    ) -> None:  # fmt: skip
        self._cache: dict[str, str] = {}
        self._cache_size = cache_size
        self.quoted, self.listed = quoted, listed

    def _miss(self, token: str) -> str:
        if token.isdecimal():
            return MASK  # most new tokens are numbers: not worth remembering
        masked = mask_token(token)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = masked
        return masked

    def mask(self, text: str) -> str:
        get = self._cache.get
        if self.quoted and '"' in text:
            text = _quoted_values(text)
        if self.listed is not None:
            text = _listed_values(text, self.listed)
        masked = " ".join([get(token) or self._miss(token) for token in text.split()])
        return _FOLD.sub(MASK, masked) if MASK in masked else masked


def mask(text: str) -> str:
    """``text`` with its variables replaced by ``<*>`` (whitespace normalised)."""
    return Masker(cache_size=0).mask(text)


class ParsedLine(NamedTuple):
    raw: str  # the input line (without trailing newline)
    content: str  # the message after the header was stripped
    template_id: int
    template: str  # with <*> for variables; the template when this line was parsed
    timestamp: datetime | None  # from the header when one was recognised
    level: str | None  # normalised: DEBUG/INFO/WARN/ERROR/FATAL/... when recognised


def new_drain(similarity: float = SIMILARITY) -> Drain:
    """Drain with this module's settings; masking is done before Drain (see ``Masker``)."""
    return Drain(
        depth=TREE_DEPTH,
        similarity=similarity,
        max_children=MAX_CHILDREN,
        max_clusters=MAX_CLUSTERS,
        wildcard=_DRAIN_WILDCARD,
        parametrize_numeric_tokens=True,
    )


class LogParser:
    """One configuration for all sources."""

    def __init__(
        self, *, content_only: bool = False, similarity: float = SIMILARITY,
        variable_values: int | None = VARIABLE_VALUES, window: int = WINDOW,
        quoted_values: bool = QUOTED_VALUES, span_values: int | None = SPAN_VALUES,
        span_context: int = SPAN_CONTEXT, shared_values: int | None = SHARED_VALUES,
        listed_pairs: int | None = LISTED_PAIRS, capitals: bool = CAPITALS,
    ) -> None:  # fmt: skip
        self.content_only, self.capitals = content_only, capitals
        self._masker = Masker(quoted=quoted_values, listed=listed_pairs)
        self._drain = new_drain(similarity)
        self._known: dict[str, LogCluster] = {}
        self.variable_values, self.window = variable_values, max(1, window)
        self._alias: dict[int, int] = {}  # a merged template's id → the one it joined
        # (length, position, the other tokens) → the word there → a template with it, or
        # the template they joined once they were enough
        self._siblings: dict[tuple[int, int, tuple[str, ...]], dict[str, int] | int] = {}
        self.span_values, self.span_context = span_values, span_context
        # (the first words, the last words) → the tokens between → a template with them,
        # or the template they joined
        self._spans: dict[tuple[tuple[str, ...], tuple[str, ...]], dict[Any, int] | int] = {}
        self._merged: dict[int, tuple[str, ...]] = {}  # a merged template's tokens
        self.shared_values = shared_values
        self._word_keys: dict[str, set[tuple[int, int, tuple[str, ...]]]] = {}
        self._values: dict[tuple[int, int, tuple[str, ...]], set[str]] = {}  # of merged keys
        # length → its templates (for ``_one_covers``)
        self._lengths: dict[int, set[int]] = defaultdict(set)

    def canonical(self, template_id: int) -> int:
        """The template a template id stands for now (itself unless it was merged)."""
        root = template_id
        while root in self._alias:
            root = self._alias[root]
        while template_id != root:  # path compression
            self._alias[template_id], template_id = root, self._alias[template_id]
        return root

    def _join(self, cluster_ids: Iterable[int]) -> int:
        """Merge templates into the oldest of them (its id stands for all)."""
        roots = sorted({self.canonical(c) for c in cluster_ids})
        if len(roots) > 1:
            tokens = self._tokens_of(roots[0])
            for other in roots[1:]:
                self._alias[other] = roots[0]
                tokens = _common(tokens, self._tokens_of(other))
                self._merged.pop(other, None)
            self._merged[roots[0]] = tokens
        return roots[0]

    def _tally(
        self, table: dict[Any, dict[Any, int] | int], key: Any, value: Any, cluster_id: int,
        enough: Callable[[dict[Any, int]], bool],
    ) -> int | None:  # fmt: skip
        """Count ``value`` under ``key`` (a template's sibling key). Once the values are
        ``enough``, the templates under the key are one: the id they joined is returned,
        and a later template under the key joins it at once."""
        seen = table.get(key)
        if isinstance(seen, int):
            return self._join((seen, cluster_id))
        if seen is None:
            if len(table) >= SIBLING_CACHE_SIZE:
                table.clear()  # bounded memory: a merge then needs its values seen again
            seen = table[key] = {}
        seen.setdefault(value, cluster_id)
        if not enough(seen):
            return None
        root = table[key] = self._join(seen.values())
        return root

    def _tokens_of(self, root: int) -> tuple[str, ...]:
        if root in self._merged:
            return self._merged[root]
        cluster = self._drain.get(root)
        return tuple(cluster.tokens) if cluster is not None else ()

    def _note(self, cluster: LogCluster) -> None:
        self._note_word(cluster)
        self._note_span(cluster)

    def _note_span(self, cluster: LogCluster) -> None:
        """A new template: one of several that share their first and last words and
        differ between them? With enough different spans, they are one template."""
        if self.span_values is None:
            return
        tokens = tuple(cluster.tokens)
        n = len(tokens)
        constant = [0] * (n + 1)  # constant tokens among the first i
        for i, token in enumerate(tokens):
            constant[i + 1] = constant[i] + (token != _DRAIN_WILDCARD and MASK not in token)
        span_values = self.span_values

        def enough(spans: dict[Any, int]) -> bool:
            return (
                len(spans) >= span_values
                and len({len(m) for m in spans}) > 1
                and not _recurring_phrases(list(spans))
            )

        for p in range(2, min(n - 1, SPAN_EDGE) + 1):
            for s in range(min(n - p - 1, SPAN_EDGE) + 1):
                if constant[p] + constant[n] - constant[n - s] < self.span_context:
                    continue
                key = (tokens[:p], tokens[n - s :])
                self._tally(self._spans, key, tokens[p : n - s], cluster.cluster_id, enough)

    def _note_word(self, cluster: LogCluster) -> None:
        """A new template: a sibling of others that differ at one word only? With enough
        different words at that position, they are one template with a variable there."""
        if self.variable_values is None:
            return
        tokens = tuple(cluster.tokens)
        if len(tokens) < 2:
            return
        variable_values = self.variable_values

        def enough(words: dict[Any, int]) -> bool:
            return len(words) >= variable_values

        for p, word in enumerate(tokens):
            if word in (MASK, _DRAIN_WILDCARD) or (self.capitals and _bare(word).isupper()):
                continue
            key = (len(tokens), p, tokens[:p] + tokens[p + 1 :])
            root = self._tally(self._siblings, key, word, cluster.cluster_id, enough)
            if root is None and self.shared_values is not None:
                root = self._shared(key, word)
            keep = self._drain.get(root) if root is not None else None
            if keep is not None and len(keep.tokens) == len(tokens):  # not span-merged
                keep.tokens = (*keep.tokens[:p], _DRAIN_WILDCARD, *keep.tokens[p + 1 :])
                self._settle(keep.cluster_id, len(tokens))  # it gained a variable

    def _shared(self, key: tuple[int, int, tuple[str, ...]], word: str) -> int | None:
        """A position with few values is a variable too when its values are another
        position's: two words that vary together at two positions of different templates
        (user names after "for user" and after "Accepted password for"; GET and POST in
        two request lines), among at least three words in all. Two words that only ever
        alternate with each other ("opened"/"closed") stay constants. Returns the template
        the key's templates joined, or None."""
        seen = self._siblings.get(key)
        if not isinstance(seen, dict) or len(seen) < 2:
            return None
        if len(self._word_keys) >= SIBLING_CACHE_SIZE:
            self._word_keys.clear()
        mine = {_bare(v) for v in seen}
        for value in mine:
            self._word_keys.setdefault(value, set()).add(key)
        others: Counter[tuple[int, int, tuple[str, ...]]] = Counter(
            other for value in mine for other in self._word_keys.get(value, ()) if other != key
        )
        assert self.shared_values is not None
        for other, shared in others.most_common():
            if shared < self.shared_values:
                break
            theirs = self._siblings.get(other)
            values = (
                {_bare(v) for v in theirs}
                if isinstance(theirs, dict)
                else self._values.get(other, set())
            )
            if len(mine | values) < SHARED_UNION or _same_template(key, other, mine | values):
                continue  # too few words, or two positions of one template
            for k, group in ((key, mine), (other, values)):
                entry = self._siblings.get(k)
                if isinstance(entry, dict):
                    self._values[k] = group
                    self._siblings[k] = self._join(entry.values())
            root = self._siblings[key]
            return root if isinstance(root, int) else None
        return None

    def _is_root(self, cluster_id: int) -> bool:
        """Whether a template is still kept and merged into none."""
        return self.canonical(cluster_id) == cluster_id and self._drain.get(cluster_id) is not None

    def _created(self, cluster: LogCluster) -> None:
        """A new template joins a template of its length that covers it, or takes in those
        it covers: the template a line gets does not hang on the order the lines came in
        (``user1`` masked by its digit beside user names found to be a variable)."""
        length = len(cluster.tokens)
        same = self._lengths[length]
        if len(same) >= MAX_CLUSTERS:  # bounded memory: forget dropped and merged ones
            same = self._lengths[length] = {c for c in same if self._is_root(c)}
        same.add(cluster.cluster_id)
        if self.canonical(cluster.cluster_id) == cluster.cluster_id:
            self._settle(cluster.cluster_id, length)

    def _settle(self, root: int, length: int) -> None:
        """Join ``root`` and the templates of its length that cover it or that it covers
        (``_one_covers``): when it is new, and when it gains a variable."""
        mine = self._tokens_of(root)
        same = self._lengths[length]
        for other in list(same):
            if other == root:
                continue
            if not self._is_root(other):
                same.discard(other)  # merged or dropped since
                continue
            theirs = self._tokens_of(other)
            if len(theirs) == len(mine) and _one_covers(mine, theirs):
                root = self._join((root, other))  # the older id stands for both
                mine = self._tokens_of(root)

    def _cluster(self, message: str) -> LogCluster:
        """The template of a masked message: Drain's, remembered for exact repeats."""
        cluster = self._known.get(message)
        if cluster is not None:
            return cluster
        cluster, change = self._drain.add(message)
        if change == "cluster_created":
            self._note(cluster)
            self._created(cluster)
        elif change == "cluster_template_changed":
            root = self.canonical(cluster.cluster_id)
            if root in self._merged:
                self._merged[root] = _common(self._merged[root], tuple(cluster.tokens))
            self._settle(root, len(cluster.tokens))  # with the variable it gained
        if len(self._known) >= MESSAGE_CACHE_SIZE or (
            change == "cluster_created" and len(self._drain) >= MAX_CLUSTERS
        ):
            self._known.clear()  # full, or Drain may have dropped a remembered template
        self._known[message] = cluster
        return cluster

    def _mine(self, line: str) -> tuple[str, str, datetime | None, str | None, int]:
        raw = line.rstrip("\r\n")
        if self.content_only:
            content, timestamp, level = raw.strip(), None, None
        else:
            content, timestamp, level = split_header(raw)
        cluster = self._cluster(self._masker.mask(content))
        return raw, content, timestamp, level, cluster.cluster_id

    def _given_out(
        self, pending: Sequence[tuple[str, str, datetime | None, str | None, int]]
    ) -> Iterator[ParsedLine]:
        """Mined lines with the template ids and texts known now (each text made once)."""
        shown: dict[int, tuple[int, str]] = {}  # a cluster → its template's id and text
        for raw, content, timestamp, level, cluster_id in pending:
            known = shown.get(cluster_id)
            if known is None:
                template_id = self.canonical(cluster_id)
                known = shown[cluster_id] = (template_id, self.template_of(template_id))
            yield ParsedLine(raw=raw, content=content, template_id=known[0],
                             template=known[1], timestamp=timestamp, level=level)  # fmt: skip

    def parse(self, line: str) -> ParsedLine:
        """One line, its template as known now (see ``parse_lines`` for a stream)."""
        return next(self._given_out([self._mine(line)]))

    def parse_lines(self, lines: Iterable[str]) -> Iterator[ParsedLine]:
        """Parse a stream lazily: lines are mined ``window`` at a time and given out with
        the template ids known at the end of their window (a word found to be a variable
        later in the window relabels them). Memory is bounded by the window and the
        number of templates (at most ``MAX_CLUSTERS``), not by the number of lines."""
        pending: list[tuple[str, str, datetime | None, str | None, int]] = []
        for line in lines:
            pending.append(self._mine(line))
            if len(pending) >= self.window:
                yield from self._given_out(pending)
                pending = []
        yield from self._given_out(pending)

    def templates(self) -> dict[int, str]:
        """Each template's current text (templates generalise as more lines arrive); a
        template merged into another is listed under the one it joined."""
        return {c.cluster_id: self.template_of(c.cluster_id) for c in self._drain.clusters
                if self.canonical(c.cluster_id) == c.cluster_id}  # fmt: skip

    def template_of(self, template_id: int) -> str:
        """The current text of a template, or ``""`` for an unknown (or dropped) id."""
        root = self.canonical(template_id)
        if root in self._merged:
            return _shown(" ".join(self._merged[root]))
        cluster = self._drain.get(root)
        return _shown(cluster.template) if cluster is not None else ""


def _same_template(
    a: tuple[int, int, tuple[str, ...]], b: tuple[int, int, tuple[str, ...]], pool: set[str]
) -> bool:
    """Whether two sibling keys are of one template: as long, and equal but at their own
    positions and at positions that hold words of ``pool`` (the values in question:
    "LOOKING (n.state) ... LEADING (my state)" varies at two positions of one template)."""
    (n, p, rest_a), (m, q, rest_b) = a, b
    if n != m:
        return False
    full_a = (*rest_a[:p], None, *rest_a[p:])
    full_b = (*rest_b[:q], None, *rest_b[q:])
    return all(
        x == y or i in (p, q) or (_bare(x or "") in pool and _bare(y or "") in pool)
        for i, (x, y) in enumerate(zip(full_a, full_b, strict=True))
    )


def _one_covers(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether one of two templates of a length covers the other: holds its tokens as they
    are, or a variable where they differ (a word shaped like an identifier, such as
    ``python-agent-ojlse``, under a position masked in the other), and one constant word
    at least."""
    a_covers = b_covers = True
    constant = False
    for x, y in zip(a, b, strict=True):
        if x == y:
            constant = constant or (x != _DRAIN_WILDCARD and MASK not in x)
            continue
        a_covers = a_covers and (
            x == _DRAIN_WILDCARD or (x == MASK and _COMPOUND.fullmatch(y) is not None)
        )
        b_covers = b_covers and (
            y == _DRAIN_WILDCARD or (y == MASK and _COMPOUND.fullmatch(x) is not None)
        )
        if not (a_covers or b_covers):
            return False
    return constant


def _bare(word: str) -> str:
    """A word without the brackets, quotes and punctuation around it (``alice:``, ``(alice)``
    and ``"alice"`` are one value)."""
    return word.strip(_TRAILING + "".join(_PAIRS) + "".join(_CLOSERS)) or word


def _recurring_phrases(spans: Sequence[tuple[str, ...]]) -> bool:
    """Whether every span longer than a word, less the words all spans start and end with,
    recurs with one word changed (``invalid user nagios`` / ``invalid user test`` beside
    bare user names): phrases with a variable word, templates of their own, not a span
    that varies freely (a command line, a user agent)."""
    head = 0
    while all(len(s) > head and s[head] == spans[0][head] for s in spans):
        head += 1
    tail = 0
    while all(len(s) > head + tail and s[-1 - tail] == spans[0][-1 - tail] for s in spans):
        tail += 1
    inner = [s[head : len(s) - tail] for s in spans]
    longer = [s for s in inner if len(s) > 1]
    if len(longer) < 2:
        return False
    siblings = Counter((i, s[:i] + s[i + 1 :]) for s in longer for i in range(len(s)))
    return all(any(siblings[(i, s[:i] + s[i + 1 :])] > 1 for i in range(len(s))) for s in longer)


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """The tokens two templates share: position by position when they are as long, else
    their common first and last tokens around one variable span."""
    if not a or not b:
        return a or b
    if len(a) == len(b):
        return tuple(_common_token(x, y) for x, y in zip(a, b, strict=True))
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    s = 0
    while s < min(len(a), len(b)) - p and a[-1 - s] == b[-1 - s]:
        s += 1
    return (*a[:p], _DRAIN_WILDCARD, *a[len(a) - s :])


def _common_token(x: str, y: str) -> str:
    """What two templates hold at one position: the token they share; the mask when one
    holds it and the other a word shaped like an identifier (still not any word); else a
    variable."""
    if x == y:
        return x
    if (x == MASK and _COMPOUND.fullmatch(y)) or (y == MASK and _COMPOUND.fullmatch(x)):
        return MASK
    return _DRAIN_WILDCARD


def _shown(template: str) -> str:
    return template.replace(_DRAIN_WILDCARD, MASK)


def grouping_accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    """Share of lines whose predicted group (same template id) holds exactly the lines
    of their true group (Zhu et al., ICSE-SEIP 2019)."""
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth must have the same length")
    if not truth:
        return 1.0
    groups: defaultdict[Hashable, list[int]] = defaultdict(list)
    for i, group in enumerate(predicted):
        groups[group].append(i)
    true_sizes = Counter(truth)
    correct = 0
    for members in groups.values():
        labels = {truth[i] for i in members}
        if len(labels) == 1 and true_sizes[truth[members[0]]] == len(members):
            correct += len(members)
    return correct / len(truth)
