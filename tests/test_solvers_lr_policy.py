import math

import pytest

from n2prune.errors import SettingError
from n2prune.registry import UnknownName
from n2prune.solvers.lr_policy import LR_POLICIES
from n2prune.solvers.sgd import SGD


def learning_rate(policy, base_lr, iteration, batch_size, **sgd_kwargs):
    """The rate of the update after ``iteration`` updates of an SGD so configured."""
    solver = SGD(learning_rate=base_lr, learning_rate_policy=policy, **sgd_kwargs)
    return solver.rate(iteration, batch_size)


def test_registry_has_every_n2d2_policy():
    assert list(LR_POLICIES) == ["None", "StepDecay", "ExponentialDecay", "InvTDecay",
                                 "PolyDecay", "InvDecay", "CosineDecay"]


@pytest.mark.parametrize("iteration", [0, 1, 7, 100])
def test_none_is_constant(iteration):
    assert learning_rate("None", 0.05, iteration, 32) == 0.05


def test_step_decay_counts_stimuli():
    # 10 stimuli per batch, step every 25 stimuli: steps floor(10*i/25).
    expected = {0: 0, 1: 0, 2: 0, 3: 1, 5: 2, 10: 4}
    for iteration, step in expected.items():
        rate = learning_rate("StepDecay", 0.1, iteration, 10, learning_rate_step_size=25,
                             learning_rate_decay=0.5)
        assert rate == pytest.approx(0.1 * 0.5 ** step)


def test_step_decay_counts_iteration_size():
    # IterationSize=3: one update covers 3 batches = 12 stimuli.
    rate = learning_rate("StepDecay", 1.0, 2, 4, learning_rate_step_size=12,
                         learning_rate_decay=0.1, iteration_size=3)
    assert rate == pytest.approx(0.01)


@pytest.mark.parametrize("iteration, step", [(0, 0), (3, 1), (7, 3), (20, 10)])
def test_exponential_and_inv_t_decay(iteration, step):
    # batch 4, step size 8 stimuli -> step = iteration // 2
    kw = {"learning_rate_step_size": 8, "learning_rate_decay": 0.3}
    assert learning_rate("ExponentialDecay", 0.2, iteration, 4, **kw) == pytest.approx(
        0.2 * math.exp(-0.3 * step))
    assert learning_rate("InvTDecay", 0.2, iteration, 4, **kw) == pytest.approx(
        0.2 / (1 + 0.3 * step))


@pytest.mark.parametrize("iteration", [0, 1, 50, 99, 100])
def test_poly_decay_counts_updates(iteration):
    rate = learning_rate("PolyDecay", 0.1, iteration, 64, power=2.0, max_iterations=100)
    assert rate == pytest.approx(0.1 * (1 - iteration / 100) ** 2)


@pytest.mark.parametrize("iteration", [0, 1, 10, 1000])
def test_inv_decay_counts_updates(iteration):
    rate = learning_rate("InvDecay", 0.1, iteration, 64, learning_rate_decay=0.01, power=0.75)
    assert rate == pytest.approx(0.1 * (1 + 0.01 * iteration) ** -0.75)


def test_cosine_decay_with_warm_up_and_min_decay():
    kw = {"learning_rate_step_size": 1, "max_iterations": 14, "warm_up_duration": 4,
          "warm_up_lr_frac": 0.2, "min_decay": 0.1}
    # batch 1, step size 1 -> step = iteration; warm-up from 0.2*lr to lr.
    assert learning_rate("CosineDecay", 1.0, 0, 1, **kw) == pytest.approx(0.2)
    assert learning_rate("CosineDecay", 1.0, 2, 1, **kw) == pytest.approx(0.8 * 0.5 + 0.2)
    assert learning_rate("CosineDecay", 1.0, 4, 1, **kw) == pytest.approx(1.0)
    # halfway through the 10 cosine steps: factor 0.5 -> 0.9*0.5 + 0.1
    assert learning_rate("CosineDecay", 1.0, 9, 1, **kw) == pytest.approx(0.55)
    assert learning_rate("CosineDecay", 1.0, 14, 1, **kw) == pytest.approx(0.1)
    # N2D2 lets the cosine rise again past MaxIterations.
    assert learning_rate("CosineDecay", 1.0, 19, 1, **kw) == pytest.approx(0.55)


def test_cosine_steps_are_in_stimuli():
    # batch 8, step size 16 -> step = iteration // 2; no warm-up.
    rate = learning_rate("CosineDecay", 2.0, 5, 8, learning_rate_step_size=16, max_iterations=4)
    assert rate == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 2 / 4)))


def test_warm_up_is_ignored_outside_cosine():
    assert learning_rate("None", 0.1, 0, 1, warm_up_duration=10) == 0.1


def test_zero_base_rate_is_zero():
    assert learning_rate("InvDecay", 0.0, 5, 1, power=1.0) == 0.0


@pytest.mark.parametrize("policy, kw, setting, message", [
    ("StepDecay", {"learning_rate_step_size": 0}, "learning_rate_step_size",
     "LearningRateStepSize > 0"),
    ("PolyDecay", {}, "max_iterations", "MaxIterations > 0"),
    ("CosineDecay", {"max_iterations": 5, "warm_up_duration": 5}, "max_iterations",
     "MaxIterations > WarmUp"),
    ("None", {"iteration_size": 0}, "iteration_size", "IterationSize"),
])
def test_invalid_settings_blame_the_sgd_keyword(policy, kw, setting, message):
    with pytest.raises(SettingError, match=message) as info:
        learning_rate(policy, 0.1, 0, 1, **kw)
    assert info.value.setting == setting


def test_unknown_policy_has_the_registry_wording():
    with pytest.raises(UnknownName, match="^unknown LearningRatePolicy=Step; did you mean "
                                          "StepDecay\\? known: None, StepDecay,"):
        learning_rate("Step", 0.1, 0, 1)
