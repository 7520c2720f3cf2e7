import numpy as np
import pytest
from gradcheck import check_cell
from layout import chwn

from n2prune.cells.activation_cell import Activation
from n2prune.cells.activations import Swish
from n2prune.errors import ShapeError


def test_identity_without_function():
    x = chwn(np.random.default_rng(0).standard_normal((2, 3, 2, 2)))
    cell = Activation("a", [(2, 2, 2)], 2)
    np.testing.assert_array_equal(cell.forward([x], False), x)


def test_gradients_with_two_inputs():
    rng = np.random.default_rng(1)
    cell = Activation("a", [(1, 2, 3), (2, 2, 3)], 3, activation=Swish())
    assert cell.output_shape == (3, 2, 3)
    check_cell(cell, [chwn(rng.standard_normal((1, 2, 2, 3))),
                      chwn(rng.standard_normal((2, 2, 2, 3)))], rng)


def test_errors():
    with pytest.raises(ShapeError, match=r"^\[a\] NbOutputs=4 must equal the number of input channels \(3\)"):
        Activation("a", [(3, 2, 2)], 4)
