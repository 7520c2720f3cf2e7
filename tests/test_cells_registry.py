import numpy as np
import pytest

from n2prune.cells import CELL_TYPES, Conv
from n2prune.cells.channels import (
    check_channel_outputs,
    concat_channels,
    split_channels,
)
from n2prune.cells.registry import (
    NB_OUTPUTS,
    as_pair,
)
from n2prune.errors import ShapeError, UserError
from n2prune.registry import UINT, Key, signature_parameters

# Constructor arguments the graph passes itself, not from keys.
CONTEXT_ARGUMENTS = {"name", "input_shapes", "rng"}


@pytest.mark.parametrize("type_name", list(CELL_TYPES))
def test_key_table_covers_every_constructor_setting(type_name):
    cls = CELL_TYPES[type_name]
    attrs = [key.attr for key in cls.key_table]
    assert sorted(attrs) == sorted(set(signature_parameters(cls)) - CONTEXT_ARGUMENTS)
    assert set(cls.config_keys) <= set(cls.key_table.names())


def test_a_key_the_constructor_does_not_take_fails_at_registration():
    class Cell:
        def __init__(self, name, input_shapes, nb_outputs):
            pass

    with pytest.raises(TypeError, match="key Kernel: no parameter 'kernel'"):
        CELL_TYPES.register("Bogus", NB_OUTPUTS, Key("Kernel", "kernel", UINT, "a kernel"))(Cell)
    assert "Bogus" not in CELL_TYPES


def test_defaults_come_from_the_constructor():
    table = Conv.key_table
    assert table["StrideDims"].default == (1, 1) and table["NbOutputs"].required
    assert table["NoBias"].default is False and Conv.config_keys == ("NoBias",)


def test_type_name_is_the_registered_name_of_the_class():
    class Masked(Conv):
        pass

    cell = Masked("c", [(1, 4, 4)], 2, kernel=3, rng=np.random.default_rng(0))
    assert cell.type_name == "Conv"


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
