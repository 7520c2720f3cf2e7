"""Skip kernels: GEMMs that read only the unpruned weights.

A pruned ``(O, K)`` weight matrix is kept row-compressed (CSR): ``indptr``
(O+1, int32), ``indices`` (column of each kept weight, uint16 when K fits,
else int32) and ``values`` (float32). ``compress_rows`` builds the index
part from a 0/1 mask (once per mask version); ``gather_rows`` refreshes the
values from the dense weights (once per step, O(nnz)).

- ``csr_matmul_trusted``: ``Y = W_csr @ X`` for ``X`` (K, N). Work items are
  (N-tile, row) pairs in tile-major order, so one ``X`` tile stays in cache
  across all rows; four kept weights share each load/store of the ``Y``
  tile. ``N == 1`` (batch-1 inference) takes a dot-product GEMV instead.
- The input gradient ``dX = W_csrᵀ @ dY`` is ``csr_matmul_trusted`` on the
  transposed structure (``compress_rows(mask.T)``), whose values
  ``gather_columns`` reads from the dense weights.
- ``csr_sddmm_trusted``: the weight gradient only where the mask keeps a weight,
  ``dW[p] = sum_n dY[i, n] * X[j, n]``, written in CSR order.

Inner loops index flat arrays with unsigned offsets (the row helpers of
``direct_rows``): a signed index keeps numba's negative-index wrap-around,
which cost 4x in the prototype, and the per-kept-weight slice views used
before cost as much as the FMAs (reference counting). ``tests/test_kernels_sparse``
checks the assembly for packed FMAs.
"""

import numba
import numpy as np

from n2prune.kernels.direct_rows import _axpy1, _axpy4, _dot1, _dot4
from n2prune.kernels.im2col import check_out
from n2prune.kernels.twins import serial_and_parallel

# N-tile width: 1024 floats (4 KiB per X row) won on every shape of the
# prototype's sweep (perf-baseline.md section 2).
TILE = 1024
# Below this many multiply-adds a parallel region's wake-up (10-20 us) costs
# more than it saves on the 2-core reference machine.
PARALLEL_MIN_FMAS = 1 << 19


def index_dtype(size):
    """The narrowest index type that addresses ``size`` columns."""
    return np.uint16 if size <= np.iinfo(np.uint16).max + 1 else np.int32


def compress_rows(mask):
    """``(indptr, indices)`` of the nonzeros of 2-D ``mask``, row by row."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    rows, cols = np.nonzero(mask)
    indptr = np.zeros(mask.shape[0] + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=mask.shape[0]), out=indptr[1:])
    return indptr, cols.astype(index_dtype(mask.shape[1]))


@numba.njit(cache=True)
def _gather_rows(w, indptr, indices, out):
    for i in range(indptr.shape[0] - 1):
        row = w[i]
        for p in range(indptr[i], indptr[i + 1]):
            out[p] = row[indices[p]]


def gather_rows(w, indptr, indices, out=None):
    """CSR values of dense ``w`` (O, K): ``out[p] = w[i, indices[p]]``."""
    out = check_out(out, indices.shape, w.dtype)
    _gather_rows(w, indptr, indices, out)
    return out


@numba.njit(cache=True)
def _gather_columns(w, t_indptr, t_rows, out):
    for j in range(t_indptr.shape[0] - 1):
        for p in range(t_indptr[j], t_indptr[j + 1]):
            out[p] = w[t_rows[p], j]


def gather_columns(w, t_indptr, t_rows, out=None):
    """Values of ``w.T`` in the transposed structure: ``out[p] = w[t_rows[p], j]``."""
    out = check_out(out, t_rows.shape, w.dtype)
    _gather_columns(w, t_indptr, t_rows, out)
    return out


@numba.njit(fastmath=True, cache=True, _nrt=False)
def _spmm_item(indptr, indices, values, x, y, i, n0, n1, n_cols):
    """``y[i, n0:n1] = sum_p values[p] * x[indices[p], n0:n1]`` over row ``i``
    (``x``, ``y`` flat, rows of ``n_cols``)."""
    length = n1 - n0
    yb = i * n_cols + n0
    y[yb:yb + length] = 0
    p, end = indptr[i], indptr[i + 1]
    while p + 4 <= end:
        _axpy4(y, yb, x, indices[p] * n_cols + n0, indices[p + 1] * n_cols + n0,
               indices[p + 2] * n_cols + n0, indices[p + 3] * n_cols + n0,
               values[p], values[p + 1], values[p + 2], values[p + 3], length)
        p += 4
    while p < end:
        _axpy1(y, yb, x, indices[p] * n_cols + n0, values[p], length)
        p += 1


@serial_and_parallel
def _spmm(indptr, indices, values, x, y, tile):
    n_rows, n_cols = y.shape
    n_tiles = -(-n_cols // tile)
    # Tile-major: each thread's contiguous share sweeps all rows of few tiles.
    for item in numba.prange(n_tiles * n_rows):
        t, i = item // n_rows, item % n_rows
        _spmm_item(indptr, indices, values, x.reshape(-1), y.reshape(-1), i, t * tile,
                   min(n_cols, (t + 1) * tile), n_cols)


@numba.njit(fastmath=True, cache=True)
def _spmv_rows(indptr, indices, values, x, y, first, last):
    # Four independent sums: one accumulator chains every FMA behind the
    # previous one (measured 1.2-1.6x slower on 300x784 and 4096x4096).
    zero = y.dtype.type(0)
    for i in range(first, last):
        a0 = a1 = a2 = a3 = zero
        p, end = indptr[i], indptr[i + 1]
        while p + 4 <= end:
            a0 += values[p] * x[indices[p]]
            a1 += values[p + 1] * x[indices[p + 1]]
            a2 += values[p + 2] * x[indices[p + 2]]
            a3 += values[p + 3] * x[indices[p + 3]]
            p += 4
        while p < end:
            a0 += values[p] * x[indices[p]]
            p += 1
        y[i] = (a0 + a1) + (a2 + a3)


@numba.njit(parallel=True, cache=True)
def _spmv_parallel(indptr, indices, values, x, y, block):
    n_rows = y.shape[0]
    for b in numba.prange(-(-n_rows // block)):
        _spmv_rows(indptr, indices, values, x, y, b * block, min(n_rows, (b + 1) * block))


def csr_matmul_trusted(indptr, indices, values, x, out=None):
    """``W @ x`` for CSR ``W`` (O rows) and C-contiguous ``x`` (K, N) of the
    values' dtype; returns (O, N). ``out``, if given, is fully overwritten
    (rows without nonzeros become 0).

    Trusted: the structure is not checked (O(nnz), once per step). The caller
    guarantees what ``compress_rows`` does: ``indptr`` of O+1 nondecreasing
    entries and every index below ``x.shape[0]``; numba does not
    bounds-check, so a wrong structure would read stray memory.
    """
    n_rows = indptr.shape[0] - 1
    y = check_out(out, (n_rows, x.shape[1]), x.dtype)
    parallel = indices.shape[0] * x.shape[1] >= PARALLEL_MIN_FMAS and numba.get_num_threads() > 1
    if x.shape[1] == 1:
        vector = y.reshape(-1)
        if parallel:
            _spmv_parallel(indptr, indices, values, x.reshape(-1), vector, 64)
        else:
            _spmv_rows(indptr, indices, values, x.reshape(-1), vector, 0, n_rows)
        return y
    run = _spmm.pick(parallel)
    run(indptr, indices, values, x, y, TILE)
    return y


@numba.njit(fastmath=True, cache=True, _nrt=False)
def _sddmm_row(indptr, indices, dy, x, dw, i, tile, n_cols):
    """``dw[p] = dy[i, :] . x[indices[p], :]`` for row ``i``, N tiled (flat arrays)."""
    start, end = indptr[i], indptr[i + 1]
    dw[start:end] = 0
    for n0 in range(0, n_cols, tile):
        length = min(n_cols, n0 + tile) - n0
        gb = i * n_cols + n0
        p = start
        while p + 4 <= end:
            s0, s1, s2, s3 = _dot4(dy, gb, x, indices[p] * n_cols + n0,
                                   indices[p + 1] * n_cols + n0, indices[p + 2] * n_cols + n0,
                                   indices[p + 3] * n_cols + n0, length)
            dw[p] += s0
            dw[p + 1] += s1
            dw[p + 2] += s2
            dw[p + 3] += s3
            p += 4
        while p < end:
            dw[p] += _dot1(dy, gb, x, indices[p] * n_cols + n0, length)
            p += 1


@serial_and_parallel
def _sddmm(indptr, indices, dy, x, dw, tile):
    for i in numba.prange(dy.shape[0]):
        _sddmm_row(indptr, indices, dy.reshape(-1), x.reshape(-1), dw, i, tile, dy.shape[1])


def csr_sddmm_trusted(indptr, indices, dy, x, out=None):
    """Masked ``dy @ x.T``: for each kept ``(i, j)``, ``sum_n dy[i, n] * x[j, n]``.

    ``dy`` (O, N) and ``x`` (K, N) are C-contiguous of one dtype; returns the
    values in CSR order (``indices.shape``). Trusted as ``csr_matmul_trusted``:
    the structure must fit ``dy`` and ``x``.
    """
    dw = check_out(out, indices.shape, dy.dtype)
    parallel = indices.shape[0] * dy.shape[1] >= PARALLEL_MIN_FMAS and numba.get_num_threads() > 1
    run = _sddmm.pick(parallel)
    run(indptr, indices, dy, x, dw, TILE)
    return dw


@numba.njit(cache=True)
def scatter_rows(indptr, indices, values, out):
    """Write CSR ``values`` into the dense ``out`` (O, K) at their positions."""
    for i in range(indptr.shape[0] - 1):
        row = out[i]
        for p in range(indptr[i], indptr[i + 1]):
            row[indices[p]] = values[p]
