"""The budget search: least predicted loss (sum of drops) for a cost limit."""

import pytest

from n2prune.errors import UserError
from n2prune.prune.budget import choose_ratios, predicted_drop

# Cost of a group at a ratio: what it saves of a network whose dense cost is 1.
SAVES = {"a": 0.5, "b": 0.3, "c": 0.2}


def additive(choice):
    return 1.0 - sum(SAVES[g] * r for g, r in choice.items())


def test_the_cheap_group_is_pruned_first_and_the_sum_of_drops_predicted():
    curves = {"a": [(0.5, 0.001), (0.9, 0.002)], "b": [(0.5, 0.2), (0.9, 0.5)],
              "c": [(0.5, 0.0), (0.9, 0.3)]}
    choice, cost = choose_ratios(curves, additive, 0.5)
    # a at 0.9 costs 0.002 for 0.45 saved; c at 0.5 is free; b is expensive.
    assert choice == {"a": 0.9, "b": 0.0, "c": 0.5}
    assert cost == pytest.approx(1 - 0.45 - 0.1)
    assert predicted_drop(curves, choice) == pytest.approx(0.002)


def test_a_higher_ratio_past_a_bump_is_reachable():
    # b's 0.5 point alone looks bad per cost saved; 0.9 is better than anything of a.
    curves = {"a": [(0.5, 0.1)], "b": [(0.5, 0.1), (0.9, 0.11)]}
    choice, _ = choose_ratios(curves, lambda ch: 1.0 - 0.25 * ch["a"] - ch["b"] / 3, 0.75)
    assert choice == {"a": 0.0, "b": 0.9}


def test_a_budget_already_met_prunes_nothing():
    assert choose_ratios({"a": [(0.5, 0.1)]}, lambda ch: 0.9 - ch["a"] / 10, 0.95) == ({"a": 0.0}, 0.9)


def test_an_unreachable_budget_says_how_far_the_curves_go():
    with pytest.raises(UserError, match=r"keeps 55\.0%.*--ratios"):
        choose_ratios({"a": [(0.5, 0.1), (0.9, 0.2)]}, additive, 0.3)


def test_a_jump_that_overshoots_comes_back_down_to_the_budget():
    # 0.9 is cheaper per cost saved (0.011 / 0.45 < 0.01 / 0.25), but 0.5 meets 0.8 with less loss.
    curves = {"a": [(0.5, 0.01), (0.9, 0.011)]}
    assert choose_ratios(curves, additive, 0.8) == ({"a": 0.5}, pytest.approx(0.75))
