"""Fc cells and full-kernel convolutions on (C, H, W, N) are (K, N) products.

With the batch innermost, ``x.reshape(C*H*W, N)`` is a free view whose row
``(c*H + y)*W + x`` is N2D2's Fc input order, so an Fc cell needs no kernel
of its own: dense BLAS (``gemm``) and the skip kernels of ``sparse``
(4 kept weights per pass over N, transposed CSR for dX, dW at kept
positions) apply directly. A convolution whose kernel covers its whole
unpadded input (LeNet's conv3: 5x5 on 5x5) is the same product, where BLAS
beats the direct row kernels (one output column, rows of only N floats).
"""

import numpy as np
import pytest

from n2prune.kernels import sparse
from n2prune.kernels.direct_conv import (
    compress,
    compress_transposed,
    sparse_conv_forward,
    sparse_conv_input_grad,
    sparse_conv_weight_grad,
)
from n2prune.kernels.gemm import matmul, matmul_nt, matmul_tn


def batch_first_fc(x, w):
    """float64 Fc as N2D2 defines it: sample n's input flattened in (c, y, x) order."""
    flat = x.transpose(3, 0, 1, 2).reshape(x.shape[3], -1).astype(np.float64)
    return (flat @ w.astype(np.float64).T).T


@pytest.mark.parametrize("n", [1, 7])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
def test_fc_on_the_batch_innermost_view(n, sparsity):
    rng = np.random.default_rng(int(sparsity * 10) + n)
    x = rng.standard_normal((3, 5, 4, n)).astype(np.float32)
    w = rng.standard_normal((10, 60)).astype(np.float32)
    mask = (rng.random(w.shape) >= sparsity).astype(np.uint8)
    dy = rng.standard_normal((10, n)).astype(np.float32)
    k = x.reshape(60, n)
    assert np.shares_memory(k, x)
    np.testing.assert_allclose(matmul(w, k), batch_first_fc(x, w), rtol=1e-5, atol=1e-5)
    indptr, indices = sparse.compress_rows(mask)
    t_indptr, t_rows = sparse.compress_rows(mask.T)
    y = sparse.csr_matmul_trusted(indptr, indices, sparse.gather_rows(w, indptr, indices), k)
    np.testing.assert_allclose(y, batch_first_fc(x, w * mask), rtol=1e-5, atol=1e-5)
    dx = sparse.csr_matmul_trusted(t_indptr, t_rows, sparse.gather_columns(w, t_indptr, t_rows), dy)
    np.testing.assert_allclose(dx, matmul_tn(w * mask, dy), rtol=1e-5, atol=1e-5)
    dw = np.zeros(w.shape, np.float32)
    sparse.scatter_rows(indptr, indices, sparse.csr_sddmm_trusted(indptr, indices, dy, k), dw)
    np.testing.assert_allclose(dw, matmul_nt(dy, k) * mask, rtol=1e-5, atol=1e-5)


def test_full_kernel_convolution_is_the_fc_product():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 5, 7)).astype(np.float32)
    w = rng.standard_normal((6, 4, 5, 5)).astype(np.float32)
    mask = rng.random(w.shape) >= 0.5
    dy = rng.standard_normal((6, 1, 1, 7)).astype(np.float32)
    w2, k = (w * mask).reshape(6, -1), x.reshape(-1, 7)
    y = sparse_conv_forward(x, compress(w, mask))
    np.testing.assert_allclose(y.reshape(6, 7), matmul(w2, k), rtol=1e-5, atol=1e-5)
    dx = sparse_conv_input_grad(dy, compress_transposed(w, mask), (5, 5))
    np.testing.assert_allclose(dx.reshape(-1, 7), matmul_tn(w2, dy.reshape(6, 7)),
                               rtol=1e-5, atol=1e-5)
    kept = compress(w, mask)
    dw = sparse_conv_weight_grad(x, dy, kept)
    np.testing.assert_allclose(dw, matmul_nt(dy.reshape(6, 7), k).reshape(-1)[kept.flat],
                               rtol=1e-5, atol=1e-5)
