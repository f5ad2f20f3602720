"""Drain (tools/logs/drain.py): tree routing, similarity, generalisation, ties, the children
limit and the LRU of clusters."""

from __future__ import annotations

import pytest

from tools.logs.drain import Drain


def ids(drain: Drain, *messages: str) -> list[int]:
    return [drain.add(message)[0].cluster_id for message in messages]


def template(drain: Drain, cluster_id: int) -> str:
    cluster = drain.get(cluster_id)
    assert cluster is not None, f"cluster {cluster_id} was dropped"
    return cluster.template


def test_messages_of_different_lengths_never_share_a_cluster() -> None:
    drain = Drain(similarity=0.0)
    assert ids(drain, "a b c", "a b c d", "a b c") == [1, 2, 1]


def test_the_first_token_routes_with_depth_4() -> None:
    drain = Drain(similarity=0.0)
    # Different first tokens: different leaves, however similar the rest.
    assert ids(drain, "start x y", "stop x y") == [1, 2]
    # Same first token: the same leaf, and at similarity 0 anything there matches.
    assert ids(drain, "start p q") == [1]
    assert drain.get(1) is not None and template(drain, 1) == "start <*> <*>"


def test_deeper_trees_route_on_more_leading_tokens_but_never_the_last() -> None:
    drain = Drain(depth=6, similarity=0.0)  # three leading tokens key the inner levels
    assert ids(drain, "x y z w", "x y q w") == [1, 2]  # third token differs: new leaf
    assert ids(drain, "x y z v") == [1]  # only the last token differs: same leaf
    # Two tokens: only the first routes, the last is compared.
    assert ids(drain, "a b", "a c") == [3, 3]
    assert template(drain, 3) == "a <*>"


def test_numeric_tokens_go_under_the_wildcard_child() -> None:
    drain = Drain(similarity=0.5)
    assert ids(drain, "7 apples fell", "8 apples fell") == [1, 1]
    assert template(drain, 1) == "<*> apples fell"
    # A word without a child of its own follows the wildcard child too.
    assert ids(drain, "many apples fell") == [1]
    # Without that rule each number is a child of its own, hence a leaf of its own.
    literal = Drain(similarity=0.0, parametrize_numeric_tokens=False)
    assert ids(literal, "7 apples fell", "8 apples fell") == [1, 2]


def test_a_word_with_its_own_child_does_not_fall_back_to_the_wildcard() -> None:
    drain = Drain(similarity=0.5)
    # "many" has a child of its own (from cluster 2), so the third message is compared
    # with cluster 2 only (1 of 3 equal), not with "<*> apples fell" under the wildcard.
    assert ids(drain, "7 apples fell", "many pears rose", "many apples fell") == [1, 2, 3]


def test_similarity_threshold_is_inclusive() -> None:
    words = [f"w{i}" for i in range(19)]
    base = " ".join(["head", *words])  # 20 tokens
    one_off = " ".join(["head", *words[:-1], "other"])  # 19 of 20 equal: 0.95
    two_off = " ".join(["head", *words[:-2], "other", "more"])  # 18 of 20: 0.90
    drain = Drain(similarity=0.95)
    assert ids(drain, base, one_off) == [1, 1]
    assert ids(Drain(similarity=0.95), base, two_off) == [1, 2]


def test_score_counts_equal_words_and_wildcards_separately() -> None:
    drain = Drain()
    assert drain.score(("a", "<*>", "c", "d"), ("a", "<*>", "c", "x")) == (0.5, 1)
    assert drain.score((), ()) == (1.0, 0)
    # With another wildcard, <*> is an ordinary word and matches itself.
    masked = Drain(wildcard="<**>")
    assert masked.score(("a", "<*>", "<**>"), ("a", "<*>", "z")) == (2 / 3, 1)


def test_templates_generalise_where_messages_differ() -> None:
    drain = Drain(similarity=0.5)
    first, change = drain.add("user alice logged in")
    assert (first.cluster_id, first.template, first.size, change) == (
        1,
        "user alice logged in",
        1,
        "cluster_created",
    )
    cluster, change = drain.add("user bob logged in")
    assert cluster is first
    assert (cluster.template, cluster.size, change) == (
        "user <*> logged in",
        2,
        "cluster_template_changed",
    )
    cluster, change = drain.add("user carol logged in")
    assert (cluster.template, cluster.size, change) == ("user <*> logged in", 3, "none")
    # A wildcard never matches: 2 of 4 equal is below 0.6, so this is a new template.
    assert ids(Drain(similarity=0.6), "user <*> logged in", "user <*> logged out") == [1, 2]


def test_ties_go_to_the_template_with_more_wildcards() -> None:
    drain = Drain(similarity=0.5)
    assert ids(drain, "k a b c d", "k x y z w") == [1, 2]  # 1 of 5 equal: two clusters
    assert ids(drain, "k x y z v") == [2]
    assert template(drain, 2) == "k x y z <*>"
    # 3 of 5 equal against both; cluster 2 holds a wildcard, so it wins though listed last.
    cluster, _ = drain.add("k x b z d")
    assert cluster.cluster_id == 2
    assert cluster.template == "k x <*> z <*>"


def test_max_children_keeps_a_place_for_the_wildcard_child() -> None:
    drain = Drain(similarity=0.5, max_children=3)
    # Two literal children, then the third place is the wildcard's, shared by the rest.
    assert ids(drain, "a x", "b x", "c x", "d x", "a y") == [1, 2, 3, 3, 1]
    assert template(drain, 3) == "<*> x"
    assert ids(Drain(similarity=0.5), "a x", "b x", "c x", "d x") == [1, 2, 3, 4]


def test_max_children_when_the_wildcard_child_came_first() -> None:
    drain = Drain(similarity=0.5, max_children=3)
    # The wildcard child (from "1 x") takes one place, a and b the other two; c is filed
    # under the wildcard, so d (routed there too) finds it.
    assert ids(drain, "1 x", "a q", "b q", "c q", "d q") == [1, 2, 3, 4, 4]
    assert template(drain, 4) == "<*> q"
    assert ids(Drain(similarity=0.5), "1 x", "a q", "b q", "c q", "d q") == [1, 2, 3, 4, 5]


def test_the_least_recently_used_cluster_is_dropped() -> None:
    drain = Drain(max_clusters=2)
    assert ids(drain, "alpha x", "bravo x") == [1, 2]
    assert drain.get(1) is not None  # a look-up is not a use
    assert ids(drain, "charlie x") == [3]  # drops 1, the least recently used
    assert drain.get(1) is None
    assert ids(drain, "bravo x") == [2]  # a match is a use
    assert ids(drain, "delta x") == [4]  # drops 3
    assert [c.cluster_id for c in drain.clusters] == [2, 4]
    assert len(drain) == 2
    assert ids(drain, "alpha x") == [5]  # a dropped template comes back under a new id
    assert [c.cluster_id for c in drain.clusters] == [4, 5]  # oldest first


def test_comparing_with_a_message_is_not_a_use() -> None:
    drain = Drain(similarity=1.0, max_clusters=2)
    assert ids(drain, "k a", "z b") == [1, 2]
    assert ids(drain, "k c") == [3]  # compared with 1 (no match): 1 stays the oldest
    assert drain.get(1) is None
    assert drain.get(2) is not None


def test_empty_messages_form_one_cluster() -> None:
    drain = Drain(similarity=1.0)
    assert ids(drain, "", "   ", "a", "") == [1, 1, 2, 1]
    assert template(drain, 1) == ""


def test_bad_settings_are_refused() -> None:
    for bad in (
        lambda: Drain(depth=2),
        lambda: Drain(similarity=1.5),
        lambda: Drain(max_children=0),
        lambda: Drain(max_clusters=0),
    ):
        with pytest.raises(ValueError):
            bad()
