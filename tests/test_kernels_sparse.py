"""Skip kernels against float64 numpy references on random shapes and masks.

Every call gets a fresh random case and an output poisoned with NaN, so an
element the kernel forgets to write fails the comparison.
"""

import re

import numba
import numpy as np
import pytest
from kernel_modes import SPARSE_FMAS, force_mode

from n2prune.kernels import sparse

SPARSITIES = [0.0, 0.5, 0.9, 0.99, 1.0]
# (O, K, N): odd sizes, N = 1 (GEMV), N spanning several tiles, K above uint16.
SHAPES = [(1, 1, 1), (7, 13, 5), (16, 150, 1), (33, 65, 1031), (6, 25, 2500), (3, 70000, 3)]


def random_case(shape, sparsity, seed):
    rng = np.random.default_rng(seed)
    rows, k, n = shape
    mask = (rng.random((rows, k)) >= sparsity).astype(np.uint8)
    if rows > 2 and k > 2:
        mask[1, :] = 0  # an empty row
        mask[:, 2] = 0  # an empty column
    w = rng.standard_normal((rows, k)).astype(np.float32)
    x = rng.standard_normal((k, n)).astype(np.float32)
    dy = rng.standard_normal((rows, n)).astype(np.float32)
    return mask, w, x, dy


def poisoned(shape):
    return np.full(shape, np.nan, dtype=np.float32)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_forward_matches_masked_dense(shape, sparsity):
    mask, w, x, _ = random_case(shape, sparsity, seed=hash((shape, sparsity)) % 2**32)
    indptr, indices = sparse.compress_rows(mask)
    values = sparse.gather_rows(w, indptr, indices, out=poisoned(indices.shape))
    y = sparse.csr_matmul_trusted(indptr, indices, values, x, out=poisoned((shape[0], shape[2])))
    ref = (w.astype(np.float64) * mask) @ x.astype(np.float64)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.sqrt(shape[1]))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_input_gradient_through_transposed_structure(shape, sparsity):
    mask, w, _, dy = random_case(shape, sparsity, seed=1 + hash((shape, sparsity)) % 2**31)
    t_indptr, t_rows = sparse.compress_rows(mask.T)
    t_values = sparse.gather_columns(w, t_indptr, t_rows, out=poisoned(t_rows.shape))
    dx = sparse.csr_matmul_trusted(t_indptr, t_rows, t_values, dy,
                                   out=poisoned((shape[1], shape[2])))
    ref = (w.astype(np.float64) * mask).T @ dy.astype(np.float64)
    np.testing.assert_allclose(dx, ref, rtol=1e-4, atol=1e-4 * np.sqrt(shape[0]))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_weight_gradient_only_at_kept_positions(shape, sparsity):
    mask, _, x, dy = random_case(shape, sparsity, seed=2 + hash((shape, sparsity)) % 2**31)
    indptr, indices = sparse.compress_rows(mask)
    dw_values = sparse.csr_sddmm_trusted(indptr, indices, dy, x, out=poisoned(indices.shape))
    dense = np.zeros(mask.shape, dtype=np.float32)
    sparse.scatter_rows(indptr, indices, dw_values, dense)
    ref = (dy.astype(np.float64) @ x.T.astype(np.float64)) * mask
    np.testing.assert_allclose(dense, ref, rtol=1e-4, atol=1e-4 * np.sqrt(shape[2]))


def test_parallel_paths_agree_with_serial(monkeypatch):
    """Lower the parallel threshold so small cases take the prange kernels."""
    mask, w, x, dy = random_case((40, 300, 2100), 0.8, seed=5)
    indptr, indices = sparse.compress_rows(mask)
    values = sparse.gather_rows(w, indptr, indices)
    serial = (sparse.csr_matmul_trusted(indptr, indices, values, x),
              sparse.csr_sddmm_trusted(indptr, indices, dy, x))
    gemv = sparse.csr_matmul_trusted(indptr, indices, values, x[:, :1].copy())
    force_mode(monkeypatch, "parallel", SPARSE_FMAS)
    # Both compilations run the same per-row code: equal to the bit.
    np.testing.assert_array_equal(sparse.csr_matmul_trusted(indptr, indices, values, x), serial[0])
    np.testing.assert_array_equal(sparse.csr_sddmm_trusted(indptr, indices, dy, x), serial[1])
    np.testing.assert_array_equal(
        sparse.csr_matmul_trusted(indptr, indices, values, x[:, :1].copy()), gemv)


def test_index_width_follows_the_column_count():
    assert sparse.compress_rows(np.ones((2, 65536)))[1].dtype == np.uint16
    assert sparse.compress_rows(np.ones((2, 65537)))[1].dtype == np.int32


def test_structure_bytes_at_95_percent_sparsity():
    """Forward CSR + transposed indices stay under 15% of the dense float32 bytes."""
    mask = (np.random.default_rng(0).random((256, 2304)) >= 0.95).astype(np.uint8)
    indptr, indices = sparse.compress_rows(mask)
    t_indptr, t_rows = sparse.compress_rows(mask.T)
    values_bytes = indices.shape[0] * 4
    total = indptr.nbytes + indices.nbytes + values_bytes + t_indptr.nbytes + t_rows.nbytes
    assert total <= 0.15 * mask.size * 4


def packed_fma_count(kernel, signature):
    """Compile ``kernel``'s Python source afresh (cached kernels hide their asm)."""
    fresh = numba.njit(fastmath=True, cache=False)(kernel.py_func)
    fresh.compile(signature)
    asm = fresh.inspect_asm(signature)
    return len(re.findall(r"vfmadd\w*ps", asm))


@pytest.mark.parametrize("kernel", ["_spmm_item", "_sddmm_row"])
def test_inner_loops_vectorise_to_packed_fma(kernel):
    """A loop numba cannot vectorise ran 4x slower in the prototype: guard it."""
    f32, idx, i64 = numba.float32, numba.uint16, numba.int64
    arr1 = f32[::1]
    if kernel == "_spmm_item":
        sig = (numba.int32[::1], idx[::1], arr1, arr1, arr1, i64, i64, i64, i64)
    else:
        sig = (numba.int32[::1], idx[::1], arr1, arr1, arr1, i64, i64, i64)
    assert packed_fma_count(getattr(sparse, kernel), sig) > 0
