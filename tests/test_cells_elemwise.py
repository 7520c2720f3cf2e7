import numpy as np
import pytest
from gradcheck import check_cell
from layout import chwn

from n2prune.cells.activations import Rectifier
from n2prune.cells.elemwise import ElemWise
from n2prune.errors import ShapeError, UserError

A = np.array([1.0, -2.0, 3.0, 0.0], np.float32).reshape(1, 2, 2, 1)
B = np.array([4.0, 1.0, -1.0, 0.0], np.float32).reshape(1, 2, 2, 1)


def _cell(operation, **kwargs):
    return ElemWise("e", [(1, 2, 2), (1, 2, 2)], 1, operation=operation, **kwargs)


@pytest.mark.parametrize("operation,kwargs,expected", [
    ("Sum", {}, [5, -1, 2, 0]),
    ("Sum", {"coefficients": [2.0, -1.0], "shifts": [0.5, 1.0]}, [-0.5, -3.5, 8.5, 1.5]),
    ("Sum", {"coefficients": [2.0]}, [6, -3, 5, 0]),  # padded with 1.0, as N2D2
    ("AbsSum", {"coefficients": [1.0, 2.0]}, [9, 4, 5, 0]),
    ("EuclideanSum", {"coefficients": [1.0, 2.0]}, np.sqrt([65, 8, 13, 0])),
    ("EuclideanSum", {"shifts": [3.0, 4.0]}, np.sqrt([42, 30, 35, 25])),
    ("Prod", {}, [4, -2, -3, 0]),
    ("Max", {}, [4, 1, 3, 0]),
])
def test_hand_computed(operation, kwargs, expected):
    y = _cell(operation, **kwargs).forward([A, B], False)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.reshape(-1), expected, rtol=1e-6)


@pytest.mark.parametrize("operation", ["Sum", "AbsSum", "EuclideanSum", "Prod", "Max"])
def test_gradients_three_weighted_inputs(operation):
    rng = np.random.default_rng(1)
    cell = ElemWise("e", [(2, 3, 3)] * 3, 2, operation=operation, coefficients=[0.5, -2.0, 1.5],
                    shifts=[0.1, -0.3, 0.2], activation=Rectifier(leak_slope=0.2))
    xs = [chwn(rng.standard_normal((2, 2, 3, 3))) for _ in range(3)]
    check_cell(cell, xs, rng)


def test_per_channel_sum():
    rng = np.random.default_rng(2)
    cell = ElemWise("e", [(2, 1, 2)] * 2, 2, operation="Sum", coefficients=[2.0, 3.0],
                    shifts=[1.0, -1.0], coeff_mode="PerChannel")
    x1, x2 = chwn(rng.standard_normal((2, 3, 1, 2))), chwn(rng.standard_normal((2, 3, 1, 2)))
    w, s = np.array([2.0, 3.0])[:, None, None, None], np.array([1.0, -1.0])[:, None, None, None]
    # N2D2: w[c], s[c] for every input (the shift is added once per input).
    np.testing.assert_allclose(cell.forward([x1, x2], False), w * x1 + s + w * x2 + s)
    check_cell(cell, [x1, x2], rng)


def test_max_gradient_goes_to_first_maximum():
    cell = _cell("Max")
    x = np.ones((1, 2, 2, 1))
    cell.forward([x, x.copy()], True)
    d0, d1 = cell.backward(np.ones((1, 2, 2, 1)))
    assert np.all(d0 == 1) and np.all(d1 == 0)


def test_zero_euclidean_norm_has_zero_gradient():
    cell = _cell("EuclideanSum")
    z = np.zeros((1, 2, 2, 1))
    cell.forward([z, z], True)
    assert all(np.all(d == 0) for d in cell.backward(np.ones((1, 2, 2, 1))))


def test_errors():
    with pytest.raises(ShapeError, match=r"^\[e\] ElemWise inputs must all have the same shape"):
        ElemWise("e", [(2, 3, 3), (2, 3, 4)], 2, operation="Sum")
    with pytest.raises(ShapeError, match="NbOutputs=3"):
        ElemWise("e", [(2, 3, 3), (2, 3, 3)], 3, operation="Sum")
    with pytest.raises(UserError, match="unknown operation"):
        ElemWise("e", [(2, 3, 3)], 2, operation="Mean")
    with pytest.raises(UserError, match="3 coefficients given, at most 2"):
        ElemWise("e", [(2, 3, 3)] * 2, 2, coefficients=[1, 2, 3], operation="Sum")
