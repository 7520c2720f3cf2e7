import numpy as np
import pytest
from gradcheck import check_cell
from layout import chwn

from n2prune.cells.activations import Rectifier, Tanh
from n2prune.cells.batchnorm import BatchNorm
from n2prune.errors import ShapeError, UserError


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_train_normalises_with_batch_statistics():
    rng = _rng(1)
    x = chwn(rng.standard_normal((3, 4, 5, 5))) * [[[[2.0]]], [[[0.5]]], [[[3.0]]]] + 1.0
    cell = BatchNorm("bn", [(3, 5, 5)], 3)
    y = cell.forward([x], train=True)
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0, atol=1e-6)
    # Biased variance, plus epsilon.
    var = x.var(axis=(1, 2, 3))
    np.testing.assert_allclose(y.var(axis=(1, 2, 3)), var / (var + 1e-5), rtol=1e-6)


def test_running_statistics_update_as_n2d2():
    rng = _rng(2)
    x = chwn(rng.standard_normal((2, 3, 2, 2))) + 4.0
    cell = BatchNorm("bn", [(2, 2, 2)], 2, moving_average_momentum=0.1)
    np.testing.assert_array_equal(cell.variance, 0)  # N2D2 starts at 0
    cell.forward([x], train=True)
    m = 12  # N*H*W
    mean, unbiased = x.mean(axis=(1, 2, 3)), x.var(axis=(1, 2, 3)) * m / (m - 1)
    np.testing.assert_allclose(cell.mean, 0.1 * mean, rtol=1e-6)
    np.testing.assert_allclose(cell.variance, 0.1 * unbiased, rtol=1e-6)
    cell.forward([x], train=True)
    np.testing.assert_allclose(cell.mean, 0.1 * mean + 0.9 * 0.1 * mean, rtol=1e-6)


def test_test_mode_uses_running_statistics():
    cell = BatchNorm("bn", [(2, 1, 1)], 2, epsilon=0.0)
    cell.load_state({"mean": np.array([1.0, -1.0]), "variance": np.array([4.0, 0.25])})
    cell.scale.value[...] = [2.0, 1.0]
    cell.bias.value[...] = [0.0, 3.0]
    x = np.array([[[[5.0]]], [[[0.0]]]], np.float32)
    y = cell.forward([x], train=False)
    np.testing.assert_allclose(y.reshape(-1), [2.0 * (5 - 1) / 2, (0 + 1) / 0.5 + 3])



@pytest.mark.parametrize("activation", [None, Rectifier(leak_slope=0.1), Tanh()])
def test_inference_folds_the_statistics_into_one_scale_and_shift(activation):
    """The inference pass (scale and shift folded, the activation fused where it
    can be) computes the textbook formula, in float32."""
    rng = _rng(7)
    cell = BatchNorm("bn", [(4, 3, 3)], 4, activation=activation)
    cell.load_state({"mean": rng.standard_normal(4), "variance": rng.random(4) + 0.1})
    cell.scale.value[...] = rng.standard_normal(4)
    cell.bias.value[...] = rng.standard_normal(4)
    x = chwn(rng.standard_normal((4, 16, 3, 3))).astype(np.float32)
    c = (slice(None), None, None, None)
    ref = (cell.scale.value[c] * (x - cell.mean[c]) / np.sqrt(cell.variance[c] + 1e-5)
           + cell.bias.value[c])
    if isinstance(activation, Tanh):
        ref = np.tanh(ref)
    elif isinstance(activation, Rectifier):
        ref = np.where(ref > 0, ref, 0.1 * ref)
    y = cell.forward([x], train=False)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)

def test_gradients_train_mode():
    rng = _rng(3)
    cell = BatchNorm("bn", [(3, 3, 2)], 3, activation=Tanh())
    cell.scale.value[...] = rng.standard_normal(3)
    cell.bias.value[...] = rng.standard_normal(3)
    check_cell(cell, [chwn(rng.standard_normal((3, 4, 3, 2))) * 2 + 1], rng, train=True)


def test_gradients_test_mode_and_frozen_statistics():
    rng = _rng(4)
    cell = BatchNorm("bn", [(2, 3, 3)], 2, moving_average_momentum=0.0)
    cell.load_state({"mean": np.array([0.5, -0.5]), "variance": np.array([2.0, 0.5])})
    check_cell(cell, [chwn(rng.standard_normal((2, 3, 3, 3)))], rng, train=True)


def test_multi_input_and_params():
    rng = _rng(5)
    cell = BatchNorm("bn", [(1, 2, 2), (2, 2, 2)], 3)
    assert [(p.name, p.role) for p in cell.params()] == [("bn.scales", "weights"), ("bn.biases", "biases")]
    dxs = check_cell(cell, [chwn(rng.standard_normal((1, 3, 2, 2))),
                            chwn(rng.standard_normal((2, 3, 2, 2)))], rng)
    assert [d.shape for d in dxs] == [(1, 2, 2, 3), (2, 2, 2, 3)]


def test_errors():
    with pytest.raises(ShapeError, match=r"^\[bn\] NbOutputs=4 must equal .* \(3\)"):
        BatchNorm("bn", [(3, 2, 2)], 4)
    with pytest.raises(UserError, match="MovingAverageMomentum"):
        BatchNorm("bn", [(3, 2, 2)], 3, moving_average_momentum=1.0)
