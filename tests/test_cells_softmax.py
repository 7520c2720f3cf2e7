import numpy as np
import pytest
from gradcheck import check_cell
from layout import chwn

from n2prune.cells.softmax import Softmax
from n2prune.errors import ShapeError


def test_hand_computed():
    x = np.array([0.0, np.log(3.0)], np.float32).reshape(2, 1, 1, 1)
    y = Softmax("s", [(2, 1, 1)], 2).forward([x], False)
    np.testing.assert_allclose(y.reshape(-1), [0.25, 0.75], rtol=1e-6)
    assert y.dtype == np.float32


def test_per_pixel_and_large_values():
    x = chwn(np.random.default_rng(1).standard_normal((5, 3, 2, 2))) * 1000
    y = Softmax("s", [(5, 2, 2)], 5).forward([x], False)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=0), 1.0)


def test_groups_normalise_separately():
    x = chwn(np.random.default_rng(2).standard_normal((6, 2, 1, 1)))
    y = Softmax("s", [(6, 1, 1)], 6, group_size=3).forward([x], False)
    np.testing.assert_allclose(y[:3].sum(axis=0), 1.0)
    np.testing.assert_allclose(y[3:].sum(axis=0), 1.0)


@pytest.mark.parametrize("group_size", [0, 2])
def test_gradients_without_loss(group_size):
    rng = np.random.default_rng(3)
    cell = Softmax("s", [(4, 2, 3)], 4, group_size=group_size)
    check_cell(cell, [chwn(rng.standard_normal((4, 2, 2, 3)))], rng)


def test_with_loss_passes_gradient_through():
    # The target gives p - onehot: the gradient of cross-entropy(softmax(x)).
    rng = np.random.default_rng(4)
    x = chwn(rng.standard_normal((3, 2, 1, 1)))
    cell = Softmax("s", [(3, 1, 1)], 3, with_loss=True)
    p = cell.forward([x], True)
    onehot = np.zeros_like(p)
    onehot[[0, 2], 0, 0, [0, 1]] = 1  # sample 0 is class 0, sample 1 class 2
    dx = cell.backward(p - onehot)[0]
    np.testing.assert_array_equal(dx, p - onehot)

    def xent(x):
        e = np.exp(x - x.max(axis=0))
        return -np.sum(onehot * np.log(e / e.sum(axis=0)))

    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        num[i] = (xent(x + d) - xent(x - d)) / (2 * eps)
    np.testing.assert_allclose(dx, num, atol=1e-7)


def test_errors():
    with pytest.raises(ShapeError, match="exactly one input"):
        Softmax("s", [(2, 1, 1), (2, 1, 1)], 4)
    with pytest.raises(ShapeError, match=r"^\[s\] NbOutputs=3"):
        Softmax("s", [(2, 1, 1)], 3)
    with pytest.raises(ShapeError, match="GroupSize=3"):
        Softmax("s", [(4, 1, 1)], 4, group_size=3)
