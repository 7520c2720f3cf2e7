import math

import numpy as np
import pytest

from n2prune.cells import fillers as f

SHAPE = (100, 50, 3, 3)  # OCHW, 45 000 values
FAN_IN, FAN_OUT = f.conv_fans(100, 50, (3, 3))


def _rng(seed=0):
    return np.random.default_rng(seed)


def _check_moments(values, mean, std):
    assert values.dtype == np.float32 and values.shape == SHAPE
    # 5 standard errors on the mean, 2 % on the std
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(values.size)
    assert values.std() == pytest.approx(std, rel=0.02)


def test_fans_as_n2d2():
    assert (FAN_IN, FAN_OUT) == (450, 900)
    assert f.fc_fans(784, 10) == (784, 10)
    assert f.conv_bias_fans(16) == (16, 1)
    assert f.fc_bias_fans(16) == (16, 16)


@pytest.mark.parametrize("norm, n", [("FanIn", 450), ("Average", 675), ("FanOut", 900)])
def test_he_moments(norm, n):
    filler = f.HeFiller(variance_norm=norm, mean_norm=9.0, scaling=2.0)
    values = filler.fill(SHAPE, FAN_IN, FAN_OUT, _rng())
    _check_moments(values, 2.0 * 9.0 / n, 2.0 * math.sqrt(2.0 / n))


def test_xavier_uniform_bounds_and_variance():
    values = f.XavierFiller(scaling=0.5).fill(SHAPE, FAN_IN, FAN_OUT, _rng())
    bound = 0.5 * math.sqrt(3.0 / FAN_IN)
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.99 * bound
    _check_moments(values, 0.0, 0.5 * math.sqrt(1.0 / FAN_IN))


def test_xavier_normal_fan_out():
    filler = f.XavierFiller(variance_norm="FanOut", distribution="Normal")
    values = filler.fill(SHAPE, FAN_IN, FAN_OUT, _rng())
    _check_moments(values, 0.0, math.sqrt(1.0 / FAN_OUT))


def test_normal_uniform_constant():
    _check_moments(f.NormalFiller(0.3, 0.2).fill(SHAPE, 1, 1, _rng()), 0.3, 0.2)
    values = f.UniformFiller(-1.0, 3.0).fill(SHAPE, 1, 1, _rng())
    assert values.min() >= -1.0 and values.max() <= 3.0
    _check_moments(values, 1.0, 4.0 / math.sqrt(12.0))
    np.testing.assert_array_equal(f.ConstantFiller(0.5).fill((2, 3), 1, 1, None),
                                  np.full((2, 3), 0.5, np.float32))


@pytest.mark.parametrize("name", ["HeFiller", "XavierFiller", "NormalFiller", "UniformFiller"])
def test_same_rng_seed_same_values(name):
    filler = f.FILLERS[name]()
    first = filler.fill((4, 3, 2, 2), 12, 16, _rng(7))
    np.testing.assert_array_equal(first, filler.fill((4, 3, 2, 2), 12, 16, _rng(7)))
    assert not np.array_equal(first, filler.fill((4, 3, 2, 2), 12, 16, _rng(8)))


def test_defaults_are_normal_0_005():
    for filler in (f.DEFAULT_WEIGHTS_FILLER, f.DEFAULT_BIAS_FILLER):
        assert isinstance(filler, f.NormalFiller)
        assert (filler.mean, filler.std_dev) == (0.0, 0.05)


@pytest.mark.parametrize("make", [
    lambda: f.HeFiller(variance_norm="fanin"),
    lambda: f.XavierFiller(distribution="Gaussian"),
    lambda: f.NormalFiller(std_dev=-1.0),
    lambda: f.UniformFiller(min=1.0, max=0.0),
])
def test_bad_arguments_raise(make):
    with pytest.raises(ValueError):
        make()


def test_zero_fan_is_refused():
    with pytest.raises(ValueError, match="fan_in"):
        f.HeFiller().fill((1,), 0, 1, _rng())
