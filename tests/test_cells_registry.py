import numpy as np
import pytest

from n2prune import cells
from n2prune.cells.registry import (
    as_pair,
    check_channel_outputs,
    concat_channels,
    register_cell,
    split_channels,
)
from n2prune.errors import ShapeError, UserError


def test_all_cell_types_registered():
    assert set(cells.CELL_TYPES) == {"Activation", "BatchNorm", "Conv", "Dropout", "ElemWise",
                                     "Fc", "Padding", "Pool", "Softmax"}
    for name, cls in cells.CELL_TYPES.items():
        assert cls.type_name == name


def test_register_cell_decorator():
    @register_cell("Dummy")
    class Dummy:
        pass

    try:
        assert cells.CELL_TYPES["Dummy"] is Dummy and Dummy.type_name == "Dummy"
    finally:
        del cells.CELL_TYPES["Dummy"]


def test_concat_and_split_are_inverse():
    a, b = np.ones((2, 2, 2, 3)), np.zeros((1, 2, 2, 3))
    x = concat_channels([a, b])
    assert x.shape == (3, 2, 2, 3)
    parts = split_channels(x, [(2, 2, 2), (1, 2, 2)])
    np.testing.assert_array_equal(parts[0], a)
    np.testing.assert_array_equal(parts[1], b)
    assert concat_channels([a]) is a


def test_shape_errors_are_user_errors_with_cell_name():
    with pytest.raises(ShapeError) as info:
        check_channel_outputs("bn1", [(3, 4, 4)], 5)
    assert isinstance(info.value, UserError)
    assert str(info.value).startswith("[bn1] ")
    assert "\n" not in str(info.value)


def test_as_pair():
    assert as_pair("c", "kernel", 3) == (3, 3)
    assert as_pair("c", "kernel", (5, 2)) == (5, 2)
    with pytest.raises(ShapeError, match="kernel must be"):
        as_pair("c", "kernel", (1, 2, 3))
