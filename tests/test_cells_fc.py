import numpy as np
import pytest
from gradcheck import check_cell, to_float64
from layout import chwn

from n2prune.cells import fillers
from n2prune.cells.activations import Rectifier
from n2prune.cells.fc import Fc, features
from n2prune.errors import ShapeError


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_feature_order_is_n2d2():
    # Feature (c*H + y)*W + x of sample n is x[c, y, x, n].
    x = np.arange(2 * 2 * 2 * 3).reshape(2, 2, 2, 3)
    f = features(x)
    assert f.shape == (8, 3)
    for n in range(3):
        np.testing.assert_array_equal(f[:, n], x[..., n].reshape(-1))


def test_hand_computed():
    cell = Fc("fc", [(2, 1, 2)], 1, weights_filler=fillers.ConstantFiller(1.0),
              bias_filler=fillers.ConstantFiller(0.5), rng=np.random.default_rng(0))
    x = np.array([1, 2, 3, 4], np.float32).reshape(2, 1, 2, 1)
    y = cell.forward([x], False)
    assert y.shape == (1, 1, 1, 1) and y.dtype == np.float32
    assert y[0, 0, 0, 0] == pytest.approx(10.5)


def test_forward_matches_reference_and_gradients():
    rng = _rng(1)
    cell = Fc("fc", [(3, 4, 5)], 6, activation=Rectifier(), rng=rng)
    to_float64(cell)
    x = chwn(rng.standard_normal((3, 2, 4, 5)))
    ref = cell.weights[0].value @ features(x) + cell.bias.value[:, None]
    y = cell.forward([x], False)
    assert y.shape == (6, 1, 1, 2)
    np.testing.assert_allclose(y[:, 0, 0, :], np.maximum(ref, 0), atol=1e-12)
    check_cell(cell, [x], rng)


def test_multi_input_sums_contributions():
    rng = _rng(2)
    cell = Fc("fc", [(2, 3, 3), (4, 1, 1)], 5, no_bias=True, rng=rng)
    assert [p.name for p in cell.params()] == ["fc.weights[0]", "fc.weights[1]"]
    assert cell.weights[1].value.shape == (5, 4)
    to_float64(cell)
    x1, x2 = chwn(rng.standard_normal((2, 3, 3, 3))), chwn(rng.standard_normal((4, 3, 1, 1)))
    ref = cell.weights[0].value @ features(x1) + cell.weights[1].value @ features(x2)
    np.testing.assert_allclose(cell.forward([x1, x2], False)[:, 0, 0, :], ref, atol=1e-12)
    check_cell(cell, [x1, x2], rng)
    assert cell.macs_per_sample() == 5 * (18 + 4)


def test_filler_fans():
    calls = []

    class Recording:
        def fill(self, shape, fan_in, fan_out, rng):
            calls.append((shape, fan_in, fan_out))
            return np.zeros(shape, np.float32)

    Fc("fc", [(3, 4, 4)], 10, weights_filler=Recording(), bias_filler=Recording(), rng=np.random.default_rng(0))
    assert calls == [((10, 48), 48, 10), ((10,), 10, 10)]


def test_seams_are_used():
    class Masked(Fc):
        def effective_weights(self, k):
            return np.zeros_like(self.weights[k].value)

        def mask_weight_grad(self, k, grad):
            return np.full_like(grad, 3.0)

    cell = Masked("fc", [(2, 2, 2)], 3, no_bias=True, rng=np.random.default_rng(0))
    y = cell.forward([np.ones((2, 2, 2, 4), np.float32)], True)
    assert np.all(y == 0)
    cell.backward(np.ones_like(y))
    assert np.all(cell.weights[0].grad == 3.0)


def test_errors():
    with pytest.raises(ShapeError, match=r"^\[fc\] NbOutputs must be >= 1"):
        Fc("fc", [(2, 2, 2)], 0, rng=np.random.default_rng(0))


def test_normalize_rescales_each_outputs_weights_across_inputs():
    """N2D2's Normalize=1: every forward first rescales each output's row, over all
    input tensors, to unit L2 norm (sqrt(sum w^2 + 1e-6)); the output uses it."""
    rng = _rng(5)
    cell = Fc("fc", [(3, 2, 2), (4, 1, 1)], 5, no_bias=True, normalize=True, rng=rng)
    to_float64(cell)
    raw = [p.value.copy() for p in cell.weights]
    norms = np.sqrt(sum((w ** 2).sum(axis=1) for w in raw) + 1e-6)
    xs = [chwn(rng.standard_normal((3, 2, 2, 2))), chwn(rng.standard_normal((4, 2, 1, 1)))]
    y = cell.forward(xs, train=True)
    for w, p in zip(raw, cell.weights):
        np.testing.assert_allclose(p.value, w / norms[:, None], rtol=1e-12)
    want = sum(p.value @ features(x) for p, x in zip(cell.weights, xs))
    np.testing.assert_allclose(y[:, 0, 0, :], want, rtol=1e-12)
    # Not differentiated, as N2D2: the weight gradient is that of W @ x at the rescaled W.
    dy = rng.standard_normal(y.shape)
    dxs = cell.backward(dy)
    np.testing.assert_allclose(cell.weights[1].grad, dy[:, 0, 0, :] @ features(xs[1]).T, rtol=1e-12)
    np.testing.assert_allclose(dxs[0], (cell.weights[0].value.T @ dy[:, 0, 0, :]).reshape(xs[0].shape),
                               rtol=1e-12)

