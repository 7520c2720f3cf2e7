import numpy as np
import pytest
from gradcheck import check_cell, to_float64
from layout import chwn

from n2prune.cells import fillers
from n2prune.cells.activations import Rectifier, Tanh
from n2prune.cells.conv import Conv
from n2prune.cells.mapping import generated_mapping, group_mapping
from n2prune.errors import ShapeError

# N2D2's LeNet conv2 table (models_ini/lenet.ini): 6 channels (rows) x 16 outputs.
LENET_TABLE = np.array([
    [1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1],
    [1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1],
    [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1],
    [0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1],
    [0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1],
    [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1],
], dtype=np.int8)


def naive_conv(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """Direct convolution of (C, H, W, N) ``x`` with OCHW ``w`` (the definition,
    loop per pixel); returns (O, OH, OW, N)."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    _, h, wd, n = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    oh = (h + 2 * ph - (dh * (kh - 1) + 1) + sh) // sh
    ow = (wd + 2 * pw - (dw * (kw - 1) + 1) + sw) // sw
    y = np.zeros((o, oh, ow, n))
    for oy in range(oh):
        for ox in range(ow):
            patch = xp[:, oy * sh:oy * sh + dh * (kh - 1) + 1:dh,
                       ox * sw:ox * sw + dw * (kw - 1) + 1:dw, :]
            y[:, oy, ox, :] = np.einsum("chwn,ochw->on", patch, w)
    return y


def _rng(seed=0):
    return np.random.default_rng(seed)


def _x(rng, c, n, h, w):
    """Random (C, H, W, N) activations (drawn as (C, N, H, W): the same values as before)."""
    return chwn(rng.standard_normal((c, n, h, w)))


def test_hand_computed_sum_kernel():
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    cell = Conv("c", [(1, 3, 3)], 1, kernel=2, no_bias=True,
                weights_filler=fillers.ConstantFiller(1.0), rng=np.random.default_rng(0))
    y = cell.forward([x], train=False)
    # Each output is the sum of a 2x2 window of 0..8.
    assert y.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(y[0, :, :, 0], [[8, 12], [20, 24]])
    assert y.dtype == np.float32


@pytest.mark.parametrize("stride,padding,dilation", [
    ((1, 1), (0, 0), (1, 1)),
    ((2, 1), (1, 2), (1, 1)),
    ((1, 2), (2, 1), (2, 1)),
])
def test_forward_matches_naive(stride, padding, dilation):
    rng = _rng(1)
    cell = Conv("c", [(3, 9, 8)], 4, kernel=(3, 2), stride=stride, padding=padding,
                dilation=dilation, rng=rng)
    to_float64(cell)
    x = _x(rng, 3, 2, 9, 8)
    y = cell.forward([x], train=False)
    ref = naive_conv(x, cell.weights[0].value, stride, padding, dilation)
    ref += cell.bias.value[:, None, None, None]
    assert y.shape == ref.shape
    assert y.shape[:3] == cell.output_shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride,padding,dilation", [
    ((1, 1), (0, 0), (1, 1)),
    ((2, 1), (1, 2), (2, 1)),
])
def test_gradients_dense(stride, padding, dilation):
    rng = _rng(2)
    cell = Conv("c", [(3, 7, 6)], 4, kernel=(3, 2), stride=stride, padding=padding,
                dilation=dilation, activation=Tanh(), rng=rng)
    check_cell(cell, [_x(rng, 3, 2, 7, 6)], rng)


def _grouped_cell(mapping, channels, outputs, rng, kernel=3):
    return Conv("g", [(channels, 6, 6)], outputs, kernel=kernel, padding=1,
                mappings=[mapping], rng=rng)


@pytest.mark.parametrize("channels,outputs,groups,kind", [
    (4, 6, 2, "grouped"),    # 2 channels per group, 3 outputs per group
    (6, 5, 3, "grouped"),    # uneven output groups (1, 2, 2), as N2D2
    (4, 4, 4, "depthwise"),
    (3, 6, 3, "depthwise"),  # channel multiplier 2
])
def test_grouped_forward_and_gradients(channels, outputs, groups, kind):
    rng = _rng(3)
    mapping = group_mapping(channels, outputs, groups)
    cell = _grouped_cell(mapping, channels, outputs, rng)
    assert cell.connections[0].kind == kind
    w = cell.weights[0].value
    off_block = mapping.T[:, :, None, None] == 0
    assert np.all(w[np.broadcast_to(off_block, w.shape)] == 0)
    to_float64(cell)
    x = _x(rng, channels, 2, 6, 6)
    ref = naive_conv(x, cell.weights[0].value, padding=(1, 1)) + cell.bias.value[:, None, None, None]
    np.testing.assert_allclose(cell.forward([x], False), ref, rtol=1e-12, atol=1e-12)
    check_cell(cell, [x], rng)
    assert np.all(cell.weights[0].grad[np.broadcast_to(off_block, w.shape)] == 0)



@pytest.mark.parametrize("channels,outputs,groups", [(4, 6, 2), (6, 6, 6), (3, 6, 3)])
def test_grouped_float32_runs_direct_and_matches_the_float64_path(channels, outputs, groups):
    """From batch 8 on, float32 grouped and depthwise cells run the direct kernels
    (a depthwise output costs its own taps only); forward and gradients equal
    the float64 grouped path's."""
    rng = _rng(9)
    cell = _grouped_cell(group_mapping(channels, outputs, groups), channels, outputs, rng)
    x = _x(rng, channels, 16, 6, 6).astype(np.float32)
    dy = rng.standard_normal((outputs, 6, 6, 16)).astype(np.float32)
    y32 = cell.forward([x], True)
    assert cell._saved[0][0] is not None  # served by DirectWeights
    dx32 = cell.backward(dy)[0]
    dw32 = cell.weights[0].grad.copy()
    to_float64(cell)
    y64 = cell.forward([x.astype(np.float64)], True)
    dx64 = cell.backward(dy.astype(np.float64))[0]
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw32, cell.weights[0].grad, rtol=1e-4, atol=1e-4)

def test_lenet_table_mapping():
    rng = _rng(4)
    cell = Conv("conv2", [(6, 8, 8)], 16, kernel=3, mappings=[LENET_TABLE], rng=rng)
    assert cell.connections[0].kind == "masked"
    unconnected = np.broadcast_to(LENET_TABLE.T[:, :, None, None] == 0, (16, 6, 3, 3))
    assert np.all(cell.weights[0].value[unconnected] == 0)
    assert np.all(cell.weights[0].value[~unconnected] != 0)
    check_cell(cell, [_x(rng, 6, 2, 8, 8)], rng)
    assert np.all(cell.weights[0].grad[unconnected] == 0)
    assert cell.macs_per_sample() == LENET_TABLE.sum() * 9 * 6 * 6


def test_multi_input_equals_concatenation():
    rng = _rng(5)
    cell = Conv("c", [(2, 5, 5), (3, 5, 5)], 4, kernel=3, padding=1,
                activation=Rectifier(), rng=rng)
    to_float64(cell)
    x1, x2 = _x(rng, 2, 2, 5, 5), _x(rng, 3, 2, 5, 5)
    w = np.concatenate([cell.weights[0].value, cell.weights[1].value], axis=1)
    ref = naive_conv(np.concatenate([x1, x2]), w, padding=(1, 1)) + cell.bias.value[:, None, None, None]
    np.testing.assert_allclose(cell.forward([x1, x2], False), np.maximum(ref, 0), atol=1e-12)
    check_cell(cell, [x1, x2], rng)
    assert [p.name for p in cell.params()] == ["c.weights[0]", "c.weights[1]", "c.biases"]


def test_multi_input_with_per_input_mappings():
    rng = _rng(6)
    maps = [group_mapping(2, 2, 2), generated_mapping(3, 2)]
    cell = Conv("c", [(2, 5, 5), (3, 5, 5)], 2, kernel=3, mappings=maps, no_bias=True, rng=rng)
    assert [c.kind for c in cell.connections] == ["depthwise", "masked"]
    assert cell.params()[-1].name == "c.weights[1]"
    check_cell(cell, [_x(rng, 2, 2, 5, 5), _x(rng, 3, 2, 5, 5)], rng)


class _RecordingFiller:
    def __init__(self):
        self.calls = []

    def fill(self, shape, fan_in, fan_out, rng):
        self.calls.append((shape, fan_in, fan_out))
        return np.ones(shape, dtype=np.float32)


def test_filler_fans_dense_and_grouped():
    filler = _RecordingFiller()
    Conv("c", [(4, 6, 6)], 8, kernel=(3, 2), weights_filler=filler, bias_filler=filler, rng=np.random.default_rng(0))
    assert filler.calls == [((8, 4, 3, 2), 24, 48), ((8,), 8, 1)]
    filler.calls.clear()
    # Grouped: N2D2 fills the compact (O, C/G, KH, KW) tensor.
    Conv("c", [(4, 6, 6)], 8, kernel=3, mappings=[group_mapping(4, 8, 2)],
         weights_filler=filler, no_bias=True, rng=np.random.default_rng(0))
    assert filler.calls == [((8, 2, 3, 3), 18, 72)]


def test_default_fillers_are_n2d2_normal():
    cell = Conv("c", [(16, 6, 6)], 32, kernel=3, rng=_rng(7))
    assert abs(cell.weights[0].value.std() - 0.05) < 0.005
    assert abs(cell.bias.value.std() - 0.05) < 0.03


def test_seams_are_used():
    class Masked(Conv):
        def effective_weights(self, k):
            return self.weights[k].value * 0

        def mask_weight_grad(self, k, grad):
            return grad * 0 + 7

    cell = Masked("c", [(1, 4, 4)], 2, kernel=3, no_bias=True, rng=_rng(8))
    x = _x(_rng(9), 1, 1, 4, 4).astype(np.float32)
    y = cell.forward([x], True)
    assert np.all(y == 0)
    cell.backward(np.ones_like(y))
    assert np.all(cell.weights[0].grad == 7)


def test_float32_in_float32_out():
    cell = Conv("c", [(3, 6, 6)], 4, kernel=3, rng=_rng(10))
    x = _x(_rng(11), 3, 2, 6, 6).astype(np.float32)
    y = cell.forward([x], True)
    dx = cell.backward(np.ones_like(y))
    assert y.dtype == dx[0].dtype == cell.weights[0].grad.dtype == np.float32


def test_output_shape_and_macs():
    cell = Conv("c", [(3, 28, 28)], 16, kernel=3, stride=2, padding=1, rng=np.random.default_rng(0))
    assert cell.output_shape == (16, 14, 14)
    assert cell.macs_per_sample() == 16 * 3 * 9 * 14 * 14


def test_shape_errors():
    with pytest.raises(ShapeError, match=r"^\[c\] .*same height x width"):
        Conv("c", [(1, 5, 5), (1, 6, 5)], 2, kernel=3, rng=np.random.default_rng(0))
    with pytest.raises(ShapeError, match=r"^\[c\] input 2x2"):
        Conv("c", [(1, 2, 2)], 2, kernel=3, rng=np.random.default_rng(0))
    with pytest.raises(ShapeError, match=r"^\[c\] mapping of shape \(2, 3\), expected \(3, 2\)"):
        Conv("c", [(3, 5, 5)], 2, kernel=3, mappings=[np.ones((2, 3))], rng=np.random.default_rng(0))
    with pytest.raises(ShapeError, match=r"^\[c\] 1 mappings for 2 inputs"):
        Conv("c", [(3, 5, 5), (3, 5, 5)], 2, kernel=3, mappings=[None], rng=np.random.default_rng(0))


def test_backward_without_train_forward_fails():
    cell = Conv("c", [(1, 4, 4)], 1, kernel=3, rng=np.random.default_rng(0))
    y = cell.forward([np.ones((1, 4, 4, 1), np.float32)], train=False)
    with pytest.raises(RuntimeError, match="train=True"):
        cell.backward(y)
