import numpy as np
import pytest
from gradcheck import check_cell
from layout import chwn

from n2prune.cells.activations import Rectifier
from n2prune.cells.mapping import generated_mapping, group_mapping
from n2prune.cells.pool import Pool, window_counts
from n2prune.errors import ShapeError, UserError


def naive_pool(x, mapping, pool, stride, padding, pooling):
    """N2D2's PoolCell_Frame_Kernels loops: output o pools its mapped channels
    and the in-bounds window; Average divides by (mapped channels x window area)."""
    _, h, w, n = x.shape
    (kh, kw), (sh, sw), (ph, pw) = pool, stride, padding
    oh, ow = (h + 2 * ph - kh + sh) // sh, (w + 2 * pw - kw + sw) // sw
    nb_outputs = mapping.shape[1]
    y = np.zeros((nb_outputs, oh, ow, n))
    for o in range(nb_outputs):
        chans = np.flatnonzero(mapping[:, o])
        for oy in range(oh):
            for ox in range(ow):
                y0, x0 = oy * sh - ph, ox * sw - pw
                win = x[chans][:, max(y0, 0):y0 + kh, max(x0, 0):x0 + kw, :]
                if len(chans) == 0 or win.shape[1] * win.shape[2] == 0:
                    continue
                if pooling == "Max":
                    y[o, oy, ox, :] = win.max(axis=(0, 1, 2))
                else:
                    y[o, oy, ox, :] = win.sum(axis=(0, 1, 2)) / (len(chans) * kh * kw)
    return y


def _rng(seed=0):
    return np.random.default_rng(seed)


MAPPINGS = {
    "identity": lambda c, o: np.eye(c, dtype=np.int8),
    "full": lambda c, o: None,
    "general": lambda c, o: generated_mapping(c, o, size_y=2),  # 2 channels per output
    "grouped": lambda c, o: group_mapping(c, o, 2),
}


@pytest.mark.parametrize("pooling", ["Max", "Average"])
@pytest.mark.parametrize("kind", list(MAPPINGS))
@pytest.mark.parametrize("geometry", [((2, 2), (2, 2), (0, 0)), ((3, 2), (2, 1), (1, 1))])
def test_forward_matches_n2d2_loops(pooling, kind, geometry):
    pool, stride, padding = geometry
    rng = _rng(1)
    x = chwn(rng.standard_normal((4, 2, 7, 6)))
    mapping = MAPPINGS[kind](4, 4)
    cell = Pool("p", [(4, 7, 6)], 4, pool, stride, padding, pooling=pooling,
                mappings=None if mapping is None else [mapping])
    y = cell.forward([x], train=False)
    full = np.ones((4, 4), np.int8) if mapping is None else mapping
    ref = naive_pool(x, full, pool, stride, padding, pooling)
    assert y.shape == (*cell.output_shape, 2)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pooling", ["Max", "Average"])
@pytest.mark.parametrize("kind", list(MAPPINGS))
def test_gradients(pooling, kind):
    rng = _rng(2)
    mapping = MAPPINGS[kind](4, 4)
    cell = Pool("p", [(4, 6, 5)], 4, (3, 2), (2, 1), (1, 1), pooling=pooling,
                mappings=None if mapping is None else [mapping])
    check_cell(cell, [chwn(rng.standard_normal((4, 2, 6, 5)))], rng)


def test_hand_computed_max_and_average():
    x = np.array([[1, 2, 0, 1], [3, 4, 1, 5], [0, 0, 2, 2], [1, 7, 2, 3]],
                 dtype=np.float32).reshape(1, 4, 4, 1)
    ident = [np.eye(1, dtype=np.int8)]
    y_max = Pool("p", [(1, 4, 4)], 1, 2, stride=2, mappings=ident, pooling="Max").forward([x], False)
    np.testing.assert_array_equal(y_max[0, :, :, 0], [[4, 5], [7, 3]])
    y_avg = Pool("p", [(1, 4, 4)], 1, 2, stride=2, pooling="Average",
                 mappings=ident).forward([x], False)
    np.testing.assert_array_equal(y_avg[0, :, :, 0], [[2.5, 1.75], [2, 2.25]])
    # Padding counts in N2D2's average: the corner window holds only x[0, 0] = 1.
    y_pad = Pool("p", [(1, 4, 4)], 1, 2, stride=2, padding=1, pooling="Average",
                 mappings=ident).forward([x], False)
    assert y_pad[0, 0, 0, 0] == pytest.approx(1 / 4)


def test_full_mapping_default_pools_all_channels():
    x = np.zeros((3, 2, 2, 1), np.float32)
    x[1, 1, 1, 0] = 5.0
    y = Pool("p", [(3, 2, 2)], 2, 2, pooling="Max").forward([x], False)
    np.testing.assert_array_equal(y.reshape(-1), [5.0, 5.0])


def test_unconnected_output_is_zero():
    mapping = np.zeros((2, 3), np.int8)
    mapping[0, 0] = mapping[1, 1] = 1
    rng = _rng(3)
    cell = Pool("p", [(2, 4, 4)], 3, 2, stride=2, mappings=[mapping], pooling="Max")
    x = chwn(rng.standard_normal((2, 2, 4, 4))) + 10
    assert np.all(cell.forward([x], False)[2] == 0)
    check_cell(cell, [x], rng)


def test_multi_input_concatenates_channels():
    rng = _rng(4)
    x1, x2 = chwn(rng.standard_normal((2, 2, 4, 4))), chwn(rng.standard_normal((3, 2, 4, 4)))
    maps = [np.eye(2, 5, dtype=np.int8), np.eye(3, 5, k=2, dtype=np.int8)]
    cell = Pool("p", [(2, 4, 4), (3, 4, 4)], 5, 2, stride=2, mappings=maps, pooling="Max")
    assert cell.identity
    one = Pool("p", [(5, 4, 4)], 5, 2, stride=2, mappings=[np.eye(5, dtype=np.int8)], pooling="Max")
    np.testing.assert_array_equal(cell.forward([x1, x2], False),
                                  one.forward([np.concatenate([x1, x2])], False))
    dxs = check_cell(cell, [x1, x2], rng)
    assert [d.shape for d in dxs] == [x1.shape, x2.shape]


def test_activation_is_applied():
    rng = _rng(5)
    cell = Pool("p", [(2, 4, 4)], 2, 2, mappings=[np.eye(2, dtype=np.int8)],
                activation=Rectifier(leak_slope=0.1), pooling="Max")
    check_cell(cell, [chwn(rng.standard_normal((2, 2, 4, 4)))], rng)


def test_window_counts():
    # size 5, pool 3, stride 2, padding 1: windows [-1,2), [1,4), [3,6)
    np.testing.assert_array_equal(window_counts(5, 3, 2, 1, 3), [2, 3, 2])


def test_output_shape_default_stride_is_one():
    assert Pool("p", [(6, 24, 24)], 6, 2, pooling="Max").output_shape == (6, 23, 23)
    assert Pool("p", [(6, 24, 24)], 6, 2, stride=2, pooling="Max").output_shape == (6, 12, 12)


def test_errors():
    with pytest.raises(ShapeError, match=r"^\[p\] input 2x2"):
        Pool("p", [(1, 2, 2)], 1, 3, pooling="Max")
    with pytest.raises(ShapeError, match=r"^\[p\] mapping of shape"):
        Pool("p", [(2, 4, 4)], 3, 2, mappings=[np.eye(2, dtype=np.int8)], pooling="Max")
    with pytest.raises(ShapeError, match="same height x width"):
        Pool("p", [(2, 4, 4), (2, 5, 4)], 4, 2, pooling="Max")
    with pytest.raises(UserError, match="unknown pooling"):
        Pool("p", [(2, 4, 4)], 2, 2, pooling="Min")
