"""Rectifier and per-channel bias kernels against numpy, by hand and by finite differences."""


import numpy as np
import pytest
from kernel_modes import ELEMENTS, force_mode

from n2prune import kernels

SETTINGS = [(0.0, 0.0), (0.1, 0.0), (0.0, 1.5), (0.25, 0.75)]   # (leak_slope, clipping)
# Sizes around the kernels' 16384-element block, and a 1-element array.
SHAPES = [(3, 2, 5, 7), (6, 8, 28, 28), (120, 64), (1, 1), (2, 16384 + 3)]


# Parallel drivers are thin loops over the same serial block functions, and
# each costs seconds to compile: they are run in float32 (the production
# dtype) only, the block functions in both dtypes.
DTYPE_MODES = [(np.float64, "serial"), (np.float32, "serial"), (np.float32, "parallel")]


@pytest.fixture
def mode(request, monkeypatch):
    """Force the serial or the parallel driver (``request.param``)."""
    return force_mode(monkeypatch, request.param, ELEMENTS)


def reference_relu(x, leak, clip):
    y = np.where(x > 0, x, leak * x)
    return np.minimum(y, clip) if clip > 0 else y


def reference_relu_grad(y, leak, clip):
    slope = np.where(y > 0, 1.0, leak)
    return np.where((clip > 0) & (y >= clip), 0.0, slope)


def test_relu_hand_computed():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_array_equal(kernels.relu_forward(x), [0, 0, 0, 0.5, 1, 3])
    np.testing.assert_array_equal(kernels.relu_forward(x, 0.1, 1.0), [-0.2, -0.05, 0, 0.5, 1, 1])
    y = kernels.relu_forward(x, 0.1, 1.0)
    np.testing.assert_array_equal(kernels.relu_backward(np.full(6, 2.0), y, 0.1, 1.0),
                                  [0.2, 0.2, 0.2, 2, 0, 0])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize(("dtype", "mode"), DTYPE_MODES, indirect=["mode"])
def test_relu_matches_reference(shape, setting, dtype, mode):
    rng = np.random.default_rng(1)
    x = (2 * rng.standard_normal(shape)).astype(dtype)
    y = kernels.relu_forward(x, *setting)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, reference_relu(x, *setting).astype(dtype))
    dy = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_allclose(kernels.relu_backward(dy, y, *setting),
                               dy * reference_relu_grad(y, *setting), rtol=1e-6)


@pytest.mark.parametrize("setting", SETTINGS)
def test_relu_backward_is_the_finite_difference_derivative(setting):
    rng = np.random.default_rng(2)
    x = 2 * rng.standard_normal((4, 3, 5, 5))
    x[np.abs(x) < 1e-3] += 0.01                      # stay off the kink at 0
    if setting[1] > 0:
        x[np.abs(x - setting[1]) < 1e-3] += 0.01     # and off the clip
    dy = rng.standard_normal(x.shape)
    h = 1e-6
    numeric = (np.vdot(kernels.relu_forward(x + h, *setting), dy)
               - np.vdot(kernels.relu_forward(x - h, *setting), dy)) / (2 * h)
    analytic = np.vdot(kernels.relu_backward(dy, kernels.relu_forward(x, *setting), *setting),
                       np.ones_like(x))
    assert abs(numeric - analytic) < 1e-6 * max(1.0, abs(analytic))
    # Elementwise, with a random direction.
    v = rng.standard_normal(x.shape)
    numeric = (kernels.relu_forward(x + h * v, *setting)
               - kernels.relu_forward(x - h * v, *setting)) / (2 * h)
    analytic = kernels.relu_backward(v, kernels.relu_forward(x, *setting), *setting)
    np.testing.assert_allclose(analytic, numeric, atol=1e-7)


@pytest.mark.parametrize("mode", ["serial", "parallel"], indirect=True)
def test_relu_in_place_and_out_fully_written(mode):
    x = np.random.default_rng(3).standard_normal((6, 4, 9, 9)).astype(np.float32)
    expected = reference_relu(x, 0.1, 0.5)
    out = np.full_like(x, np.nan)
    assert kernels.relu_forward(x, 0.1, 0.5, out=out) is out
    np.testing.assert_array_equal(out, expected)
    assert kernels.relu_forward(x, 0.1, 0.5, out=x) is x
    np.testing.assert_array_equal(x, expected)
    dy = np.ones_like(x)
    dx = np.full_like(x, np.nan)
    kernels.relu_backward(dy, x, 0.1, 0.5, out=dx)
    np.testing.assert_array_equal(dx, reference_relu_grad(x, 0.1, 0.5).astype(np.float32))
    kernels.relu_backward(dy, x, 0.1, 0.5, out=dy)
    np.testing.assert_array_equal(dy, dx)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("dtype", "mode"), DTYPE_MODES, indirect=["mode"])
def test_bias_add_and_grad_match_numpy(shape, dtype, mode):
    rng = np.random.default_rng(4)
    y = rng.standard_normal(shape).astype(dtype)
    bias = rng.standard_normal(shape[0]).astype(dtype)
    expected = y + bias.reshape((-1,) + (1,) * (len(shape) - 1))
    assert kernels.add_bias_channels(y, bias) is y
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    axes = tuple(range(1, len(shape)))
    np.testing.assert_allclose(kernels.bias_grad_channels(y),
                               expected.astype(np.float64).sum(axis=axes),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize(("dtype", "mode"), DTYPE_MODES, indirect=["mode"])
def test_fused_bias_relu_equals_the_two_steps(setting, dtype, mode):
    rng = np.random.default_rng(5)
    z = rng.standard_normal((6, 5, 7, 7)).astype(dtype)
    bias = rng.standard_normal(6).astype(dtype)
    y = kernels.add_bias_relu_channels(z.copy(), bias, *setting)
    np.testing.assert_array_equal(
        y, kernels.relu_forward(kernels.add_bias_channels(z.copy(), bias), *setting))
    dy = rng.standard_normal(z.shape).astype(dtype)
    dx, db = kernels.relu_backward_bias_grad(dy, y, *setting)
    np.testing.assert_array_equal(dx, kernels.relu_backward(dy, y, *setting))
    np.testing.assert_allclose(db, dx.astype(np.float64).sum(axis=(1, 2, 3)), rtol=1e-5)


@pytest.mark.parametrize("mode", ["serial", "parallel"], indirect=True)
def test_bias_grad_float32_sum_keeps_precision(mode):
    # 1e6 ones plus tiny values: a plain float32 running sum would drift.
    dy = np.full((1, 1000, 1000), 0.1, dtype=np.float32).reshape(1, 1000, 10, 100)
    assert abs(kernels.bias_grad_channels(dy)[0] - 1e6 * np.float64(np.float32(0.1))) < 0.1


def test_bad_shapes_raise_value_error():
    with pytest.raises(ValueError, match="bias has 2 values for 3 channels"):
        kernels.add_bias_channels(np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(ValueError, match=r"y must be \(C, N\) or \(C, H, W, N\)"):
        kernels.add_bias_channels(np.zeros((3, 4, 5)), np.zeros(3))
    with pytest.raises(ValueError, match="differ in shape"):
        kernels.relu_backward(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="must be float32 or float64"):
        kernels.relu_forward(np.zeros(3, dtype=np.int64))
