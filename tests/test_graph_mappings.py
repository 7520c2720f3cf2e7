"""graph.mappings: Mapping* keys -> 0/1 matrices (rows = input channels, columns = outputs).

Generator references are worked out by hand from N2D2's MappingGenerator loop:
``x = OffsetX + i*StrideX`` indexes outputs, ``y = OffsetY + i*StrideY``
channels, each iteration sets a SizeY x SizeX block, indices wrap around,
and ``NbIterations=0`` means ``max(outputs, channels)``.
"""

import numpy as np
import pytest
from layout import chwn

from n2prune.errors import IniError
from n2prune.graph.builder import build_network
from n2prune.ini import load_ini


def build(tmp_path, cells, channels=4, target="c"):
    path = tmp_path / "m.ini"
    path.write_text(f"[sp]\nSizeX=6\nSizeY=6\nNbChannels={channels}\n{cells}"
                    f"[fc]\nInput={target}\nType=Fc\nNbOutputs=2\n[fc.Target]\n")
    network, _, _ = build_network(load_ini(path), 0, 1)
    return network


def conv(outputs, keys, inputs="sp", name="c"):
    return f"[{name}]\nInput={inputs}\nType=Conv\nKernelDims=1 1\nNbOutputs={outputs}\n{keys}"


def conv_mapping(cell, k=0):
    """The (channels, outputs) matrix of input ``k``, checked against the weights."""
    conn = cell.connections[k]
    channels = cell.input_shapes[k][0]
    mapping = (np.ones((channels, cell.nb_outputs), np.int8) if conn.mask is None
               else conn.mask[:, :, 0, 0].T)
    connected = np.abs(cell.weights[k].value).sum(axis=(2, 3)).T != 0
    np.testing.assert_array_equal(connected, mapping != 0)  # unconnected kernels are zero
    return mapping


def matrix(text):
    return np.array([[int(v) for v in row.split()] for row in text.strip().splitlines()])


def generated(tmp_path, channels, outputs, keys):
    return conv_mapping(build(tmp_path, conv(outputs, keys), channels).cell("c"))


def test_no_mapping_key_means_full(tmp_path):
    cell = build(tmp_path, conv(3, "")).cell("c")
    assert cell.connections[0].mask is None
    np.testing.assert_array_equal(conv_mapping(cell), np.ones((4, 3)))


def test_generator_stride_and_offset(tmp_path):
    # 4 channels x 6 outputs, StrideX=2, OffsetY=1, 6 iterations:
    # (ch, out) = (1,0) (2,2) (3,4) (0,0) (1,2) (2,4).
    got = generated(tmp_path, 4, 6, "Mapping.StrideX=2\nMapping.OffsetY=1\n")
    np.testing.assert_array_equal(got, matrix("""
        1 0 0 0 0 0
        1 0 1 0 0 0
        0 0 1 0 1 0
        0 0 0 0 1 0"""))


def test_generator_block_size_offset_and_iterations(tmp_path):
    # 3 x 4, SizeX=2, Offset=1 (both axes), 2 iterations: outputs {1,2} of
    # channel 1, then outputs {2,3} of channel 2; channel 0 feeds nothing.
    got = generated(tmp_path, 3, 4, "Mapping.SizeX=2\nMapping.Offset=1\nMapping.NbIterations=2\n")
    np.testing.assert_array_equal(got, matrix("""
        0 0 0 0
        0 1 1 0
        0 0 1 1"""))


def test_generator_wraps_around(tmp_path):
    # 3 x 3, SizeY=2: channels {0,1}, {1,2}, {2,0} for outputs 0, 1, 2.
    got = generated(tmp_path, 3, 3, "Mapping.SizeY=2\n")
    np.testing.assert_array_equal(got, matrix("""
        1 0 1
        1 1 0
        0 1 1"""))


def test_generator_default_iterations_cover_the_larger_side(tmp_path):
    # 4 channels, 2 outputs: max(2, 4) = 4 iterations reach channels 2 and 3.
    got = generated(tmp_path, 4, 2, "Mapping.Size=1\n")
    np.testing.assert_array_equal(got, matrix("1 0\n0 1\n1 0\n0 1"))


def test_generator_size_zero_is_the_whole_axis(tmp_path):
    got = generated(tmp_path, 3, 3, "Mapping.SizeY=0\n")
    np.testing.assert_array_equal(got, np.ones((3, 3)))


def test_pool_mapping_size_one_is_identity(tmp_path):
    cells = ("[p]\nInput=sp\nType=Pool\nPoolDims=2 2\nStride=2\nNbOutputs=4\nPooling=Max\n"
             "Mapping.Size=1\n")
    network = build(tmp_path, cells, target="p")
    pool = network.cell("p")
    np.testing.assert_array_equal(pool.mapping, np.eye(4, dtype=bool))
    x = chwn(np.random.default_rng(0).standard_normal((4, 2, 6, 6)).astype(np.float32))
    y = pool.forward([x], train=False)
    np.testing.assert_array_equal(y, x.reshape(4, 3, 2, 3, 2, 2).max(axis=(2, 4)))


def test_pool_without_mapping_pools_over_all_channels(tmp_path):
    cells = "[p]\nInput=sp\nType=Pool\nPoolDims=2 2\nStride=2\nNbOutputs=2\nPooling=Max\n"
    pool = build(tmp_path, cells, target="p").cell("p")
    assert pool.mapping.all() and pool.mapping.shape == (4, 2)


def test_pool_channels_per_group_one_is_identity(tmp_path):
    cells = ("[p]\nInput=sp\nType=Pool\nPoolDims=2 2\nNbOutputs=4\nPooling=Average\n"
             "Mapping.ChannelsPerGroup=1\n")
    pool = build(tmp_path, cells, target="p").cell("p")
    np.testing.assert_array_equal(pool.mapping, np.eye(4, dtype=bool))


def test_channels_per_group_one_is_depthwise(tmp_path):
    cell = build(tmp_path, conv(6, "Mapping.ChannelsPerGroup=1\n"), channels=3).cell("c")
    assert cell.connections[0].kind == "depthwise"
    np.testing.assert_array_equal(conv_mapping(cell), matrix("""
        1 1 0 0 0 0
        0 0 1 1 0 0
        0 0 0 0 1 1"""))


def test_nb_groups_with_uneven_outputs(tmp_path):
    # N2D2 gives group g (nb_outputs - start) // (nb_groups - g) outputs: 1, then 2.
    cell = build(tmp_path, conv(3, "Mapping.NbGroups=2\n"), channels=2).cell("c")
    np.testing.assert_array_equal(conv_mapping(cell), matrix("1 0 0\n0 1 1"))


def test_nb_groups_and_channels_per_group_are_exclusive(tmp_path):
    with pytest.raises(IniError, match=r"m\.ini:\d+ \[c\] Mapping.NbGroups: .*mutually exclusive"):
        build(tmp_path, conv(4, "Mapping.NbGroups=2\nMapping.ChannelsPerGroup=2\n"))


def test_groups_win_over_a_matrix_and_a_matrix_over_the_generator(tmp_path):
    grouped = conv(4, "Mapping.NbGroups=4\nMapping(sp)=" + " ".join(["1"] * 16) + "\n")
    assert build(tmp_path, grouped).cell("c").connections[0].kind == "depthwise"
    explicit = conv(2, "Mapping.Size=1\nMapping(sp)=1 1 0 0 0 0 0 1\n")
    np.testing.assert_array_equal(conv_mapping(build(tmp_path, explicit).cell("c")),
                                  matrix("1 1\n0 0\n0 0\n0 1"))


TWO_PARENTS = (conv(4, "", name="a") + conv(4, "", name="b")
               + "[c]\nInput=a,b\nType=Conv\nKernelDims=1 1\nNbOutputs=4\nMapping.Size=1\n")


@pytest.mark.parametrize("override, expected", [
    # Parent a: 2x2 blocks on the diagonal, wrapping: channel i feeds i-1, i, i+1... mod 4.
    ("Mapping(a).Size=2", """
        1 1 0 1
        1 1 1 0
        0 1 1 1
        1 0 1 1"""),
    # SizeX=2 from Mapping(a), SizeY=1 from Mapping.Size: channel i feeds outputs i, i+1.
    ("Mapping(a).SizeX=2", """
        1 1 0 0
        0 1 1 0
        0 0 1 1
        1 0 0 1"""),
])
def test_per_parent_keys_override_the_generic_ones(tmp_path, override, expected):
    cell = build(tmp_path, TWO_PARENTS + override + "\n").cell("c")
    np.testing.assert_array_equal(conv_mapping(cell, 0), matrix(expected))
    np.testing.assert_array_equal(conv_mapping(cell, 1), np.eye(4))  # parent b: generic


def test_matrix_for_one_parent_leaves_the_other_full(tmp_path):
    cells = (conv(2, "", name="a") + conv(3, "", name="b")
             + "[c]\nInput=a,b\nType=Conv\nKernelDims=1 1\nNbOutputs=2\nMapping(a)=1 0 0 1\n")
    cell = build(tmp_path, cells).cell("c")
    np.testing.assert_array_equal(conv_mapping(cell, 0), np.eye(2))
    assert cell.connections[1].mask is None


@pytest.mark.parametrize("parent", ["env", "sp"])
def test_provider_input_matrix_is_named_env_or_sp(tmp_path, parent):
    cell = build(tmp_path, conv(3, f"Mapping({parent})=1 0 1 0 1 1\n"), channels=2).cell("c")
    np.testing.assert_array_equal(conv_mapping(cell), matrix("1 0 1\n0 1 1"))


@pytest.mark.parametrize("parent", ["env", "sp"])
def test_provider_input_generator_keys(tmp_path, parent):
    # 2 x 2, OffsetX=1: (ch 0, out 1), then (ch 1, out 0).
    cell = build(tmp_path, conv(2, f"Mapping({parent}).OffsetX=1\n"), channels=2).cell("c")
    np.testing.assert_array_equal(conv_mapping(cell), matrix("0 1\n1 0"))


def test_matrix_holds_only_zeros_and_ones(tmp_path):
    with pytest.raises(IniError, match=r"\[c\] Mapping\(sp\): .*only 0 and 1"):
        build(tmp_path, conv(2, "Mapping(sp)=1 2 0 0\n"), channels=2)
