"""Drain: online log template mining with a fixed-depth parse tree (He et al., "Drain: An
Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017).

A message is split on whitespace into tokens. Each template (a *cluster*) is a token
sequence in which some positions are the wildcard. To place a message, Drain walks a tree
of fixed depth instead of comparing it with every template:

1. The first level holds one node per token count: a message is only compared with
   templates of its own length.
2. The next ``depth - 3`` levels (one with the default depth 4) are keyed by the
   message's leading tokens, never by its last one. A token that holds a digit is
   likely a variable, so when the tree is built it goes under the node's wildcard child
   rather than a child of its own. A node keeps at most ``max_children`` children, the
   wildcard child among them; once the literal children fill the rest, further tokens
   share the wildcard child. When a message is routed, a token without a child of its own
   follows the wildcard child; with neither, the message is new.
3. The leaf reached lists the clusters to compare. The similarity of a template and a
   message is the share of positions where the template holds a word (not the wildcard)
   equal to the message's token. The most similar template wins, ties going to the one
   with more wildcards, and it is a match when its similarity reaches the threshold.

A match generalises the template: each position where it differs from the message becomes
the wildcard. Otherwise the message founds a new cluster, with the next id (1, 2, ...),
filed under the leaf its own tokens lead to. The tree is not rebuilt when a template
generalises: a cluster stays under the leaf of the message that founded it.

With ``max_clusters`` set, the clusters are an LRU cache: creating a cluster past the
limit first drops the least recently used one (created, or matched by ``add``; looking a
cluster up with ``get`` or comparing it with a message does not count as a use). A
dropped cluster's id is never reused; the leaves forget dropped ids lazily, when a new
cluster is filed under them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

#: What ``Drain.add`` did with a message.
Change = Literal["cluster_created", "cluster_template_changed", "none"]


class LogCluster:
    """A template and the number of messages that matched it."""

    __slots__ = ("cluster_id", "size", "tokens")

    def __init__(self, cluster_id: int, tokens: Sequence[str]) -> None:
        self.cluster_id = cluster_id
        self.tokens: tuple[str, ...] = tuple(tokens)
        self.size = 1

    @property
    def template(self) -> str:
        return " ".join(self.tokens)

    def __repr__(self) -> str:
        return f"LogCluster({self.cluster_id}, size={self.size}, {self.template!r})"


class _Node:
    __slots__ = ("children", "cluster_ids")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.cluster_ids: list[int] = []


def has_digit(token: str) -> bool:
    """Whether ``token`` holds a digit (``str.isdigit``, so superscripts count too)."""
    return any(char.isdigit() for char in token)


class Drain:
    """Templates mined from a stream of messages (see the module's docstring).

    The defaults are Drain's usual settings: depth 4 (token count, first token, leaf),
    similarity 0.4, 100 children per node, no limit on clusters, wildcard ``<*>``.
    """

    def __init__(
        self,
        *,
        depth: int = 4,
        similarity: float = 0.4,
        max_children: int = 100,
        max_clusters: int | None = None,
        wildcard: str = "<*>",
        parametrize_numeric_tokens: bool = True,
    ) -> None:
        if depth < 3:
            raise ValueError("depth must be at least 3 (root, token count, leaf)")
        if not 0.0 <= similarity <= 1.0:
            raise ValueError("similarity must be between 0 and 1")
        if max_children < 1:
            raise ValueError("max_children must be at least 1")
        if max_clusters is not None and max_clusters < 1:
            raise ValueError("max_clusters must be at least 1 (or None: no limit)")
        self.depth = depth
        self.similarity = similarity
        self.max_children = max_children
        self.max_clusters = max_clusters
        self.wildcard = wildcard
        self.parametrize_numeric_tokens = parametrize_numeric_tokens
        self._by_length: dict[int, _Node] = {}
        self._clusters: dict[int, LogCluster] = {}  # in creation order
        self._recency: OrderedDict[int, None] = OrderedDict()  # least recently used first
        self._last_id = 0

    # -- the cluster store ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._clusters)

    @property
    def clusters(self) -> list[LogCluster]:
        """The clusters kept, oldest first."""
        return list(self._clusters.values())

    def get(self, cluster_id: int) -> LogCluster | None:
        """The cluster with this id, or ``None`` if unknown or dropped; not a use (LRU)."""
        return self._clusters.get(cluster_id)

    def _touch(self, cluster_id: int) -> None:
        if self.max_clusters is not None:
            self._recency.move_to_end(cluster_id)

    def _store(self, cluster: LogCluster) -> None:
        if self.max_clusters is not None:
            while len(self._clusters) >= self.max_clusters:
                oldest, _ = self._recency.popitem(last=False)
                del self._clusters[oldest]
            self._recency[cluster.cluster_id] = None
        self._clusters[cluster.cluster_id] = cluster

    # -- the tree ------------------------------------------------------------------------

    def _prefix(self, tokens: Sequence[str]) -> Sequence[str]:
        """The leading tokens that key the inner levels: at most ``depth - 3``, and never
        the last token."""
        return tokens[: max(0, min(self.depth - 3, len(tokens) - 1))]

    def _find_leaf(self, tokens: Sequence[str]) -> _Node | None:
        """The leaf a message is routed to, or ``None`` where the tree has no path."""
        node = self._by_length.get(len(tokens))
        for token in self._prefix(tokens):
            if node is None:
                return None
            children = node.children
            node = children.get(token)
            if node is None:
                node = children.get(self.wildcard)
        return node

    def _child_for(self, node: _Node, token: str) -> _Node:
        """The child a new template's token is filed under, created if need be."""
        children = node.children
        child = children.get(token)
        if child is not None:
            return child
        if not (self.parametrize_numeric_tokens and has_digit(token)):
            # One of the max_children places is kept for the wildcard child.
            room = self.max_children if self.wildcard in children else self.max_children - 1
            if len(children) < room:
                child = children[token] = _Node()
                return child
        return children.setdefault(self.wildcard, _Node())

    def _file(self, cluster: LogCluster) -> None:
        """Put a new cluster under the leaf its tokens lead to (creating the path)."""
        tokens = cluster.tokens
        node = self._by_length.setdefault(len(tokens), _Node())
        for token in self._prefix(tokens):
            node = self._child_for(node, token)
        alive = [cid for cid in node.cluster_ids if cid in self._clusters]
        node.cluster_ids = [*alive, cluster.cluster_id]

    # -- matching ------------------------------------------------------------------------

    def score(self, template: Sequence[str], tokens: Sequence[str]) -> tuple[float, int]:
        """(similarity, wildcards) of a template and a message of the same length: the
        share of positions where the template's word equals the token (wildcards never
        count as equal), and the number of wildcards in the template."""
        if not template:
            return 1.0, 0
        equal = wildcards = 0
        for word, token in zip(template, tokens, strict=True):
            if word == self.wildcard:
                wildcards += 1
            elif word == token:
                equal += 1
        return equal / len(template), wildcards

    def _best_match(self, cluster_ids: Sequence[int], tokens: Sequence[str]) -> LogCluster | None:
        """The most similar live cluster (ties: more wildcards, then the first listed),
        if it reaches the similarity threshold."""
        best: LogCluster | None = None
        best_score = (-1.0, -1)
        for cluster_id in cluster_ids:
            cluster = self._clusters.get(cluster_id)
            if cluster is None:
                continue
            score = self.score(cluster.tokens, tokens)
            if score > best_score:
                best, best_score = cluster, score
        return best if best_score[0] >= self.similarity else None

    def generalise(self, template: Sequence[str], tokens: Sequence[str]) -> tuple[str, ...]:
        """``template`` with the wildcard wherever it differs from ``tokens``."""
        return tuple(
            word if word == token else self.wildcard
            for word, token in zip(template, tokens, strict=True)
        )

    def add(self, message: str) -> tuple[LogCluster, Change]:
        """Mine one message: the cluster it joined or founded, and what changed."""
        tokens = message.split()
        leaf = self._find_leaf(tokens)
        cluster = self._best_match(leaf.cluster_ids, tokens) if leaf is not None else None
        if cluster is None:
            self._last_id += 1
            cluster = LogCluster(self._last_id, tokens)
            self._store(cluster)
            self._file(cluster)
            return cluster, "cluster_created"
        template = self.generalise(cluster.tokens, tokens)
        change: Change = "none" if template == cluster.tokens else "cluster_template_changed"
        cluster.tokens = template
        cluster.size += 1
        self._touch(cluster.cluster_id)
        return cluster, change
