from __future__ import annotations

import pytest

from knowledge.fusion import RRF_K, best_possible, competition_ranks, reciprocal_rank_fusion


def test_equal_scores_share_a_rank() -> None:
    assert competition_ranks({10: 0.9, 11: 0.5, 12: 0.9, 13: 0.1}) == {10: 1, 12: 1, 11: 3, 13: 4}


def test_fusion_adds_reciprocal_ranks() -> None:
    dense = {1: 1, 2: 2, 3: 3}
    lexical = {2: 1, 3: 2}
    fused = reciprocal_rank_fusion([dense, lexical])
    assert fused[1] == pytest.approx(1 / (RRF_K + 1))
    assert fused[2] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    # found near the top by both beats first place in one list only
    assert fused[3] > fused[1]
    assert max(fused.values()) <= best_possible(2)
    assert best_possible(2) == pytest.approx(2 / (RRF_K + 1))
