"""Direct convolution kernels on (C, H, W, N) against float64 numpy references.

Outputs are poisoned with NaN first, so an element a kernel forgets to write
fails the comparison. Each case runs the serial and the parallel driver.
"""

import re

import numba
import numpy as np
import pytest
from kernel_modes import DIRECT_FMAS, MODES, force_mode

from n2prune.kernels import direct_conv, direct_rows

# (C, O, H, W, KH, KW, N, stride, padding, dilation)
CASES = [
    (1, 6, 12, 12, 5, 5, 7, (1, 1), (0, 0), (1, 1)),    # LeNet conv1-like
    (3, 5, 9, 8, 3, 3, 1, (1, 1), (1, 1), (1, 1)),      # batch 1, padding 1
    (3, 4, 9, 8, 3, 2, 7, (2, 2), (1, 0), (1, 1)),      # stride 2, odd sizes
    (2, 4, 11, 10, 3, 3, 7, (2, 1), (2, 1), (2, 1)),    # mixed strides, dilation
    (5, 9, 5, 5, 5, 5, 7, (1, 1), (0, 0), (1, 1)),      # conv3-like: 1x1 output
    (2, 3, 7, 6, 1, 1, 3, (2, 2), (0, 0), (1, 1)),      # 1x1 kernel, stride 2
    (4, 3, 6, 7, 3, 3, 7, (1, 2), (2, 2), (1, 1)),      # padding wider than kernel/2
]
SPARSITIES = [0.0, 0.5, 0.9, 1.0]


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    return force_mode(monkeypatch, request.param, DIRECT_FMAS)


def out_size(size, k, s, p, d):
    return (size + 2 * p - (d * (k - 1) + 1) + s) // s


def taps(xp, ky, kx, case, out_hw):
    """The (C, Ho, Wo, N) view of padded input ``xp`` that tap (ky, kx) reads."""
    (sy, sx), (dy, dx) = case[7], case[9]
    return xp[:, ky * dy:ky * dy + out_hw[0] * sy:sy, kx * dx:kx * dx + out_hw[1] * sx:sx]


def padded(x, case):
    """``x`` in float64 with zero padding, plus slack so every tap slice fits."""
    c, h, w, n = x.shape
    kh, kw, (sy, sx), (py, px), (dy, dx) = case[4], case[5], *case[7:]
    xp = np.zeros((c, h + 2 * py + sy + kh * dy, w + 2 * px + sx + kw * dx, n))
    xp[:, py:py + h, px:px + w] = x
    return xp


def reference(case, x, w, dy):
    """float64 ``(y, dx, dw)`` of the convolution, one einsum per tap."""
    _, o, h, wd, kh, kw, n, s, p, d = case
    out_hw = (out_size(h, kh, s[0], p[0], d[0]), out_size(wd, kw, s[1], p[1], d[1]))
    xp, w = padded(x, case), w.astype(np.float64)
    y, dxp, dw = np.zeros((o, *out_hw, n)), np.zeros_like(xp), np.zeros(w.shape)
    for ky in range(kh):
        for kx in range(kw):
            patch = taps(xp, ky, kx, case, out_hw)
            y += np.einsum("oc,chwn->ohwn", w[:, :, ky, kx], patch)
            dw[:, :, ky, kx] = np.einsum("ohwn,chwn->oc", dy, patch)
            taps(dxp, ky, kx, case, out_hw)[...] += np.einsum("oc,ohwn->chwn",
                                                              w[:, :, ky, kx], dy)
    return y, dxp[:, p[0]:p[0] + h, p[1]:p[1] + wd], dw


def random_case(case, sparsity, seed):
    rng = np.random.default_rng(seed)
    c, o, h, wd, kh, kw, n, s, p, d = case
    out_hw = (out_size(h, kh, s[0], p[0], d[0]), out_size(wd, kw, s[1], p[1], d[1]))
    x = rng.standard_normal((c, h, wd, n)).astype(np.float32)
    w = rng.standard_normal((o, c, kh, kw)).astype(np.float32)
    mask = (rng.random(w.shape) >= sparsity).astype(np.uint8)
    dy = rng.standard_normal((o, *out_hw, n)).astype(np.float32)
    return x, w, mask, dy


def poisoned(shape):
    return np.full(shape, np.nan, dtype=np.float32)


def close(actual, expected, terms):
    # float32 sums of `terms` products of N(0, 1) values: error ~ sqrt(terms) ulp.
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=2e-6 * np.sqrt(terms) + 1e-6)


def geometry(case):
    return {"stride": case[7], "padding": case[8], "dilation": case[9]}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_sparse_kernels_match_masked_dense_reference(case, sparsity, mode):
    x, w, mask, dy = random_case(case, sparsity, seed=hash((case, sparsity)) % 2**32)
    y_ref, dx_ref, dw_ref = reference(case, x, w * mask, dy)
    kept, kept_t = direct_conv.compress(w, mask), direct_conv.compress_transposed(w, mask)
    y = direct_conv.sparse_conv_forward(x, kept, **geometry(case), out=poisoned(y_ref.shape))
    close(y, y_ref, case[0] * case[4] * case[5])
    dx = direct_conv.sparse_conv_input_grad(dy, kept_t, x.shape[1:3], **geometry(case),
                                out=poisoned(x.shape))
    close(dx, dx_ref, case[1] * case[4] * case[5])
    dw = direct_conv.sparse_conv_weight_grad(x, dy, kept, **geometry(case),
                                 out=poisoned(kept.values.shape))
    close(direct_conv.scatter_values(kept, dw), dw_ref * mask, dy[0].size)


@pytest.mark.parametrize("case", CASES)
def test_dense_kernels_with_bias_and_relu(case, mode):
    x, w, _, dy = random_case(case, 0.0, seed=hash(case) % 2**32)
    y_ref, dx_ref, dw_ref = reference(case, x, w, dy)
    bias = np.linspace(-1, 1, w.shape[0]).astype(np.float32)
    kept = direct_conv.compress(w)      # no mask: every weight kept
    y = direct_conv.sparse_conv_forward(x, kept, **geometry(case), bias=bias, relu=True,
                            out=poisoned(y_ref.shape))
    close(y, np.maximum(y_ref + bias[:, None, None, None], 0), case[0] * case[4] * case[5])
    dx = direct_conv.sparse_conv_input_grad(dy, direct_conv.compress_transposed(w), x.shape[1:3],
                                            **geometry(case))
    close(dx, dx_ref, case[1] * case[4] * case[5])
    dw = direct_conv.sparse_conv_weight_grad(x, dy, kept, **geometry(case))
    close(direct_conv.scatter_values(kept, dw), dw_ref, dy[0].size)


def test_compressed_structure_and_value_refresh():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 2, 5)).astype(np.float32)
    mask = rng.random(w.shape) < 0.5
    kept, kept_t = direct_conv.compress(w, mask), direct_conv.compress_transposed(w, mask)
    assert kept.ptr.shape == (4 * 2 + 1,) and kept_t.ptr.shape == (3 * 2 + 1,)
    assert kept.ptr[-1] == kept_t.ptr[-1] == mask.sum()
    np.testing.assert_array_equal(direct_conv.scatter_values(kept, kept.values), w * mask)
    np.testing.assert_array_equal(direct_conv.scatter_values(kept_t, kept_t.values), w * mask)
    # Entries of (o, ky) sorted by (c, kx): the order the kernels walk.
    o, c, ky, kx = np.unravel_index(kept.flat, w.shape)
    assert np.all(np.diff(((o * 2 + ky) * 3 + c) * 5 + kx) > 0)
    w2 = w + 1
    np.testing.assert_array_equal(direct_conv.gather_values(kept, w2).values,
                                  w2.reshape(-1)[kept.flat])


def test_bad_operands_are_refused():
    kept = direct_conv.compress(np.ones((2, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="x has 2 channels"):
        direct_conv.sparse_conv_forward(np.ones((2, 5, 5, 1), np.float32), kept)
    with pytest.raises(ValueError, match="float32"):
        direct_conv.sparse_conv_forward(np.ones((3, 5, 5, 1)), kept)
    with pytest.raises(ValueError, match="does not fit"):
        direct_conv.sparse_conv_forward(np.ones((3, 2, 5, 1), np.float32), kept)
    with pytest.raises(ValueError, match="dy has shape"):
        kept_t = direct_conv.compress_transposed(np.ones((2, 3, 3, 3), np.float32))
        direct_conv.sparse_conv_input_grad(np.ones((2, 4, 3, 1), np.float32), kept_t, (5, 5))
    with pytest.raises(ValueError, match="must be 4-D"):
        direct_conv.compress(np.ones((2, 3, 3, 3)), np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match="does not broadcast"):
        direct_conv.compress(np.ones((2, 3, 3, 3)), np.ones((3, 2, 1, 1)))


@pytest.mark.parametrize("groups", [4, 2])
def test_grouped_and_depthwise_through_a_mapping_table(groups):
    """A block-diagonal (O, C, 1, 1) table is a grouped conv (depthwise: O = C = groups)."""
    case = (4, 4, 9, 8, 3, 3, 7, (2, 1), (1, 1), (1, 1))
    x, w, _, dy = random_case(case, 0.0, seed=groups)
    table = np.kron(np.eye(groups), np.ones((4 // groups, 4 // groups)))[:, :, None, None]
    y_ref, dx_ref, dw_ref = reference(case, x, w * table, dy)
    kept, kept_t = direct_conv.compress(w, table), direct_conv.compress_transposed(w, table)
    assert kept.values.size == 4 * 4 // groups * 9
    close(direct_conv.sparse_conv_forward(x, kept, **geometry(case)), y_ref, 4 * 9)
    close(direct_conv.sparse_conv_input_grad(dy, kept_t, x.shape[1:3], **geometry(case)), dx_ref,
          4 * 9)
    dw = direct_conv.sparse_conv_weight_grad(x, dy, kept, **geometry(case))
    close(direct_conv.scatter_values(kept, dw), dw_ref * table, dy[0].size)


def packed_fma_count(kernel, signature):
    """Compile ``kernel``'s Python source afresh (cached kernels hide their asm)."""
    fresh = numba.njit(fastmath=True, cache=False, _nrt=False)(kernel.py_func)
    fresh.compile(signature)
    return len(re.findall(r"vfmadd\w*ps\s+[^\n]*%[yz]mm", fresh.inspect_asm(signature)))


def has_avx2():
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return {"avx2", "fma"} <= flags


@pytest.mark.skipif(not has_avx2(), reason="the CPU has no AVX2/FMA: no packed FMAs to find")
@pytest.mark.parametrize("kernel", ["gather_run", "dot_run"])
def test_inner_loops_vectorise_to_packed_fma(kernel):
    """A loop numba cannot vectorise ran 10x slower in the issue #11 prototype.

    The asm of a fresh compile includes the callees linked into it, so the
    row drivers' count covers ``_axpy4`` / ``_dot4`` with the real types."""
    i32, i64, row = numba.int32[::1], numba.int64, numba.float32[::1]
    sig = (row, i64, row, i32, i32, i32, row, i64, i64, numba.types.UniTuple(i64, 9))
    assert packed_fma_count(getattr(direct_rows, kernel), sig) > 0
