import numpy as np
import pytest
from gradcheck import check_cell
from layout import chwn

from n2prune.cells.dropout import Dropout
from n2prune.errors import ShapeError, UserError


def test_train_drops_and_rescales():
    cell = Dropout("d", [(4, 10, 10)], 4, dropout=0.25, rng=np.random.default_rng(0))
    x = np.ones((4, 10, 10, 50), np.float32)
    y = cell.forward([x], train=True)
    kept = y != 0
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.01
    dx = cell.backward(np.ones_like(y))[0]
    np.testing.assert_array_equal(dx, y)


def test_test_mode_is_identity():
    cell = Dropout("d", [(2, 3, 3)], 2, dropout=0.5, rng=np.random.default_rng(0))
    x = chwn(np.random.default_rng(1).standard_normal((2, 4, 3, 3)))
    np.testing.assert_array_equal(cell.forward([x], train=False), x)
    np.testing.assert_array_equal(cell.backward(x)[0], x)


def test_same_seed_same_mask():
    x = np.ones((3, 4, 4, 8))
    a = Dropout("d", [(3, 4, 4)], 3, rng=np.random.default_rng(7)).forward([x], True)
    b = Dropout("d", [(3, 4, 4)], 3, rng=np.random.default_rng(7)).forward([x], True)
    np.testing.assert_array_equal(a, b)


def test_gradients_with_fixed_mask():
    rng = np.random.default_rng(2)
    cell = Dropout("d", [(2, 3, 3), (1, 3, 3)], 3, dropout=0.4, rng=np.random.default_rng(0))

    def reset():
        cell.rng = np.random.default_rng(11)

    check_cell(cell, [chwn(rng.standard_normal((2, 2, 3, 3))), chwn(rng.standard_normal((1, 2, 3, 3)))],
               rng, before_forward=reset)


def test_errors():
    with pytest.raises(ShapeError, match=r"^\[d\] NbOutputs=3"):
        Dropout("d", [(2, 3, 3)], 3, rng=np.random.default_rng(0))
    with pytest.raises(UserError, match="Dropout must be in"):
        Dropout("d", [(2, 3, 3)], 2, dropout=1.0, rng=np.random.default_rng(0))
