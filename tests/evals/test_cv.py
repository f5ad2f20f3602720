"""Cross-validation of a setting's choice: the held-out figure is scored by settings chosen
without each item, so a setting that fits noise looks good on the fit and not on the
folds; groups leave whole groups out; ties go to the first setting listed."""

from __future__ import annotations

from evals.cv import cross_validate, folds


def test_folds_cover_every_item_once_and_groups_stay_together() -> None:
    parts = folds(23, 5, seed=1)
    assert sorted(i for p in parts for i in p) == list(range(23))
    groups = ["a", "b", "a", "c", "b", "a"]
    assert sorted(map(sorted, folds(6, 5, seed=1, groups=groups))) == [[0, 2, 5], [1, 4], [3]]


def test_a_choice_that_only_fits_its_own_data_scores_low_on_held_out_groups() -> None:
    # Setting "a" is right on the first system only, "b" on the second only, "both" is
    # half right everywhere: on all the data "a" and "b" tie with "both"... unless one
    # system is larger. Make the first larger: "a" wins the fit, but each held-out system
    # is scored by the setting best on the other one, which is wrong there.
    systems = ["first"] * 6 + ["second"] * 4

    def per_item(setting: str, i: int) -> float:
        mine = "a" if systems[i] == "first" else "b"
        return 1.0 if setting == mine else 0.5 if setting == "both" else 0.0

    result = cross_validate(["both", "a", "b"], per_item, len(systems), groups=systems)
    assert result.fit_setting == "a" and result.fit_value == 0.6
    assert result.cv_value == 0.0  # "b" chosen for the first, "a" for the second
    assert set(result.per_item) == set(range(10))


def test_ties_go_to_the_first_setting_and_groups_are_left_out() -> None:
    systems = ["x", "x", "y", "y", "z", "z"]
    result = cross_validate([0.95, 0.5], lambda s, i: 1.0, 6, groups=systems)
    assert result.fit_setting == 0.95 and result.chosen == {0.95: 3}
    assert result.cv_value == 1.0
