"""Deconv: the scatter-add definition, N2D2's output size, gradients, direct kernels, pruning."""

import numpy as np
import pytest
from gradcheck import check_cell, to_float64

from n2prune.cells import Conv, Deconv, fillers
from n2prune.cells.activations import Tanh
from n2prune.errors import ShapeError
from n2prune.prune.prune_cell import PruneCell

GEOMETRIES = [  # stride, padding, dilation as (h, w)
    ((1, 1), (0, 0), (1, 1)),
    ((2, 2), (0, 0), (1, 1)),
    ((2, 1), (1, 0), (1, 1)),
    ((2, 3), (1, 2), (2, 1)),
]


def naive_deconv(x, w, stride, padding, dilation, out_hw):
    """The definition: every input pixel adds ``W[:, :, ky, kx] @ x[:, iy, ix]`` at
    output ``(iy*sy - py + ky*dy, ix*sx - px + kx*dx)``, if that falls inside."""
    _, height, width, n = x.shape
    nb_outputs, _, kh, kw = w.shape
    y = np.zeros((nb_outputs, *out_hw, n))
    for iy in range(height):
        for ix in range(width):
            for ky in range(kh):
                for kx in range(kw):
                    oy = iy * stride[0] - padding[0] + ky * dilation[0]
                    ox = ix * stride[1] - padding[1] + kx * dilation[1]
                    if 0 <= oy < out_hw[0] and 0 <= ox < out_hw[1]:
                        y[:, oy, ox] += w[:, :, ky, kx] @ x[:, iy, ix]
    return y


def deconv(rng, inputs=((3, 4, 5),), nb_outputs=4, geometry=GEOMETRIES[0], **kwargs):
    stride, padding, dilation = geometry
    return Deconv("d", list(inputs), nb_outputs, kernel=(3, 2), stride=stride, padding=padding,
                  dilation=dilation, rng=rng, **kwargs)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_forward_matches_the_scatter_add_definition(geometry):
    rng = np.random.default_rng(1)
    cell = deconv(rng, geometry=geometry)
    to_float64(cell)
    x = rng.standard_normal((3, 4, 5, 2))
    y = cell.forward([x], train=False)
    ref = naive_deconv(x, cell.weights[0].value, *geometry, cell.output_shape[1:])
    np.testing.assert_allclose(y, ref + cell.bias.value[:, None, None, None], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_output_size_is_n2d2s(geometry):
    (sy, sx), (py, px), (dy, dx) = geometry
    cell = deconv(np.random.default_rng(0), geometry=geometry)
    # DeconvCell::setOutputsDims: in*stride + dilation*(k - 1) + 1 - 2*padding - stride.
    assert cell.output_shape == (4, 4 * sy + dy * 2 + 1 - 2 * py - sy, 5 * sx + dx * 1 + 1 - 2 * px - sx)


def test_the_autoencoders_decoder_grows_1_3_7_15_31():
    rng, shape, sizes = np.random.default_rng(0), (100, 1, 1), []
    for nb_outputs in (32, 16, 8, 1):
        shape = Deconv("d", [shape], nb_outputs, kernel=3, stride=2, rng=rng).output_shape
        sizes.append(shape[1:])
    assert sizes == [(3, 3), (7, 7), (15, 15), (31, 31)]


def test_padding_that_leaves_no_output_is_refused():
    with pytest.raises(ShapeError, match=r"\[d\] input 1x1: padding \(2, 2\)"):
        Deconv("d", [(2, 1, 1)], 3, kernel=3, padding=2, rng=np.random.default_rng(0))


def test_it_is_the_adjoint_of_the_convolution_with_swapped_weights():
    """<deconv_W(x), u> = <x, conv_V(u)> with V = W swapped on axes 0, 1 (no bias)."""
    rng = np.random.default_rng(2)
    cell = deconv(rng, geometry=GEOMETRIES[3], no_bias=True)
    to_float64(cell)
    conv = Conv("c", [cell.output_shape], 3, kernel=(3, 2), stride=cell.stride,
                padding=cell.padding, dilation=cell.dilation, no_bias=True, rng=rng)
    to_float64(conv)
    conv.weights[0].value = np.ascontiguousarray(cell.weights[0].value.transpose(1, 0, 2, 3))
    x = rng.standard_normal((3, 4, 5, 2))
    u = rng.standard_normal((*cell.output_shape, 2))
    left = np.sum(cell.forward([x], False) * u)
    right = np.sum(x * conv.forward([u], False))
    assert left == pytest.approx(right, rel=1e-12)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_gradients_two_inputs(geometry):
    rng = np.random.default_rng(3)
    cell = deconv(rng, inputs=((3, 4, 5), (2, 4, 5)), geometry=geometry, activation=Tanh())
    check_cell(cell, [rng.standard_normal((3, 4, 5, 2)), rng.standard_normal((2, 4, 5, 2))], rng)


def test_mapping_keeps_unconnected_kernels_zero():
    rng = np.random.default_rng(4)
    mapping = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0]], dtype=np.int8)  # (C, O)
    cell = deconv(rng, geometry=GEOMETRIES[2], mappings=[mapping])
    unconnected = np.broadcast_to(mapping.T[:, :, None, None] == 0, cell.weights[0].value.shape)
    assert not cell.weights[0].value[unconnected].any()
    assert cell.weights[0].value[~unconnected].all()
    check_cell(cell, [rng.standard_normal((3, 4, 5, 2))], rng)
    assert not cell.weights[0].grad[unconnected].any()
    assert cell.macs_per_sample() == mapping.sum() * 3 * 2 * 4 * 5


def test_fans_are_n2d2s():
    """N2D2 fills the weights as a KW x KH x C x O tensor: fan-in C*KH*KW."""
    rng = np.random.default_rng(5)
    cell = Deconv("d", [(50, 4, 4)], 40, kernel=3, weights_filler=fillers.HeFiller(),
                  rng=rng)
    assert cell.weights[0].value.std() == pytest.approx(np.sqrt(2 / (50 * 9)), rel=0.03)


def pruned(cell, sparsity):
    cell.quantizer = PruneCell(prune_mode="Static", prune_filler="IterNonStruct",
                               threshold=sparsity, delta=1e-4, hard_zero=True)
    cell.quantizer.initialize(cell.weight_arrays(), np.random.default_rng(0))
    return cell


@pytest.mark.parametrize("variant", ["dense", "mapped", "pruned"])
@pytest.mark.parametrize("geometry", GEOMETRIES[1:])
def test_float32_direct_kernels_equal_float64(variant, geometry):
    """From batch 8 on, float32 runs the direct kernels (a convolution's input
    gradient forward, its forward backward); the result is the float64 im2col one."""
    rng = np.random.default_rng(6)
    mapping = (rng.random((3, 4)) < 0.6).astype(np.int8) if variant == "mapped" else None
    cell = deconv(rng, geometry=geometry, mappings=None if mapping is None else [mapping])
    if variant == "pruned":
        pruned(cell, 0.7)
    x = rng.standard_normal((3, 4, 5, 9)).astype(np.float32)
    y32 = cell.forward([x], train=True)
    assert cell._saved[0][0] is not None  # served by DirectWeights
    dy = rng.standard_normal(y32.shape).astype(np.float32)
    dx32 = cell.backward(dy)[0]
    dw32, db32 = cell.weights[0].grad.copy(), cell.bias.grad.copy()
    to_float64(cell)
    y64 = cell.forward([x.astype(np.float64)], train=True)
    assert cell._saved[0][0] is None
    dx64 = cell.backward(dy.astype(np.float64))[0]
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw32, cell.weights[0].grad, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db32, cell.bias.grad, rtol=1e-4, atol=1e-4)
    if variant == "pruned":
        masked = cell.quantizer.mask(0) == 0
        assert masked.mean() > 0.6
        assert not dw32[masked].any()


def test_pruned_direct_kernels_skip_the_masked_weights_in_the_stored_layout():
    """The solver's positions (HardZero) are the kept weights of the OCHW tensor."""
    cell = pruned(deconv(np.random.default_rng(7), geometry=GEOMETRIES[1]), 0.6)
    x = np.random.default_rng(8).standard_normal((3, 4, 5, 8)).astype(np.float32)
    cell.forward([x], train=True)
    kept = np.flatnonzero(cell.quantizer.mask(0).reshape(-1))
    np.testing.assert_array_equal(cell.weights[0].active, kept)


def test_kernel_covering_its_output_takes_im2col():
    """A 1x1 input and no padding (the autoencoder's first Deconv): one GEMM."""
    rng = np.random.default_rng(9)
    cell = Deconv("d", [(6, 1, 1)], 4, kernel=3, stride=2, rng=rng)
    x = rng.standard_normal((6, 1, 1, 8)).astype(np.float32)
    y = cell.forward([x], train=True)
    assert cell._saved[0][0] is None
    want = np.einsum("ocij,cn->oijn", cell.weights[0].value, x[:, 0, 0])
    np.testing.assert_allclose(y, want + cell.bias.value[:, None, None, None], rtol=1e-5, atol=1e-5)
