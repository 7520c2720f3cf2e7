import numpy as np
import pytest
from gradcheck import check_cell
from layout import chwn

from n2prune.cells.padding import Padding
from n2prune.errors import ShapeError


def test_hand_computed_padding():
    x = np.array([[1, 2], [3, 4]], np.float32).reshape(1, 2, 2, 1)
    cell = Padding("p", [(1, 2, 2)], 1, top=1, bottom=0, left=0, right=2)
    assert cell.output_shape == (1, 3, 4)
    y = cell.forward([x], False)
    assert y.shape == (1, 3, 4, 1)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 0, 0, 0], [1, 2, 0, 0], [3, 4, 0, 0]])


def test_negative_padding_crops():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    cell = Padding("p", [(1, 4, 4)], 1, top=-1, bottom=0, left=1, right=-2)
    assert cell.output_shape == (1, 3, 3)
    np.testing.assert_array_equal(cell.forward([x], False)[0, :, :, 0],
                                  [[0, 4, 5], [0, 8, 9], [0, 12, 13]])


@pytest.mark.parametrize("sides", [(1, 2, 0, 1), (-1, 1, 2, -2)])
def test_gradients(sides):
    rng = np.random.default_rng(1)
    top, bottom, left, right = sides
    cell = Padding("p", [(2, 4, 5), (1, 4, 5)], 3, top=top, bottom=bottom, left=left, right=right)
    check_cell(cell, [chwn(rng.standard_normal((2, 2, 4, 5))),
                      chwn(rng.standard_normal((1, 2, 4, 5)))], rng)


def test_errors():
    with pytest.raises(ShapeError, match="leaves nothing"):
        Padding("p", [(1, 3, 3)], 1, top=-2, bottom=-1)
    with pytest.raises(ShapeError, match="NbOutputs=2"):
        Padding("p", [(1, 3, 3)], 2)
