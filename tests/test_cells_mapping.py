import numpy as np
import pytest

from n2prune.cells.mapping import (
    full_mapping,
    generated_mapping,
    group_bounds,
    group_mapping,
    is_block_diagonal,
)


def test_full():
    assert full_mapping(3, 2).tolist() == [[1, 1], [1, 1], [1, 1]]
    assert is_block_diagonal(full_mapping(3, 2)) == 1


def test_group_mapping():
    m = group_mapping(4, 6, 2)
    assert m.dtype == np.int8 and m.shape == (4, 6)
    assert m.tolist() == [[1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0],
                          [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1]]
    np.testing.assert_array_equal(group_mapping(4, 6, channels_per_group=2), m)
    assert is_block_diagonal(m) == 2


def test_uneven_output_groups_as_n2d2():
    # N2D2: group g gets (nbOutputs - offset) / (nbGroups - g) outputs.
    assert group_bounds(5, 3) == [(0, 1), (1, 3), (3, 5)]
    m = group_mapping(3, 5, 3)
    assert m.tolist() == [[1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 1, 1]]
    assert is_block_diagonal(m) == 3


def test_depthwise_is_identity():
    np.testing.assert_array_equal(group_mapping(4, 4, channels_per_group=1), np.eye(4))


def test_generator_identity_and_wraparound():
    np.testing.assert_array_equal(generated_mapping(4, 4), np.eye(4))
    # 2 channels, 4 outputs: 4 iterations, channel index wraps around.
    assert generated_mapping(2, 4).tolist() == [[1, 0, 1, 0], [0, 1, 0, 1]]


def test_generator_blocks_stride_offset():
    # Size 2 (both axes), stride 2, offset 1 on a 4x4: blocks at (1,1) and (3,3) wrapping.
    m = generated_mapping(4, 4, size_y=2, size_x=2, stride_y=2, stride_x=2,
                          offset_y=1, offset_x=1, nb_iterations=2)
    assert m.tolist() == [[1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1]]
    # Size 0 means the whole axis.
    np.testing.assert_array_equal(generated_mapping(3, 2, size_y=0, nb_iterations=1),
                                  [[1, 0], [1, 0], [1, 0]])


def test_is_block_diagonal_rejects_other_patterns():
    assert is_block_diagonal(generated_mapping(4, 4, size_y=2)) is None
    m = group_mapping(4, 4, 2)
    m[0, 3] = 1
    assert is_block_diagonal(m) is None
    assert is_block_diagonal(np.zeros((2, 2), np.int8)) is None


def test_errors():
    with pytest.raises(ValueError, match="do not split into 3 equal groups"):
        group_mapping(4, 6, 3)
    with pytest.raises(ValueError, match="3 channels per group"):
        group_mapping(4, 6, channels_per_group=3)
    with pytest.raises(ValueError, match="exactly one"):
        group_mapping(4, 6)
    with pytest.raises(ValueError, match=">= 1 channel"):
        full_mapping(0, 3)


def _loop_reference(nb_channels, nb_outputs, size_y, size_x, stride_y, stride_x,
                    offset_y, offset_x, nb_iterations):
    """N2D2's MappingGenerator loop, literally (one block per iteration)."""
    size_y, size_x = size_y or nb_channels, size_x or nb_outputs
    m = np.zeros((nb_channels, nb_outputs), dtype=np.int8)
    for i in range(nb_iterations or max(nb_channels, nb_outputs)):
        rows = (offset_y + i * stride_y + np.arange(size_y)) % nb_channels
        cols = (offset_x + i * stride_x + np.arange(size_x)) % nb_outputs
        m[np.ix_(rows, cols)] = 1
    return m


def test_generator_matches_n2d2_loop_on_random_values():
    rng = np.random.default_rng(0)
    for _ in range(500):
        counts = [int(v) for v in rng.integers(1, 9, 2)]
        args = [int(v) for v in rng.integers(0, 12, 7)]
        np.testing.assert_array_equal(generated_mapping(*counts, *args),
                                      _loop_reference(*counts, *args))


def test_generator_with_huge_values_is_bounded_by_the_axes():
    # Loops of 10^9 iterations or 10^5-wide blocks used to spin for minutes.
    m = generated_mapping(16, 24, size_y=100_000, size_x=3, stride_x=5,
                          offset_x=10**9, nb_iterations=1_000_000_000)
    np.testing.assert_array_equal(m, _loop_reference(16, 24, 16, 3, 1, 5, 0, 10**9 % 24, 24))
