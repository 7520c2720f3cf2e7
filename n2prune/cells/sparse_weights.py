"""The skip-kernel form of one pruned weight tensor, and when to use it.

A ``SparseWeights`` is built from a mask (once per mask version, never per
step) and then serves the three GEMMs of a weighted cell on the kept
weights only: forward ``W @ X``, input gradient ``Wᵀ @ dY`` and the weight
gradient at the kept positions. The solver keeps updating the ordinary
dense ``Param``; the kept values are gathered from it again only when the
caller's ``key`` (the weights' version) changes, so repeated inference
gathers nothing and a training step gathers each order once.
"""

import numpy as np

from n2prune.kernels.sparse import (
    compress_rows,
    csr_matmul_trusted,
    csr_sddmm_trusted,
    gather_columns,
    gather_rows,
    scatter_rows,
)

# Sparsity from which the skip kernels beat dense BLAS (benchmarks/kernels.py
# on the 2-core reference machine, docs/performance.rst): thin layers win
# early, wide ones later, batch-1 GEMV only near 90%.
THIN_OUTPUTS = 16
CROSSOVER_THIN = 0.5
CROSSOVER = 0.7


# Batch 1 (a GEMV) gathers x once per kept weight while BLAS streams the
# dense rows with packed FMAs: the skip kernel needs about 1 ns per kept
# weight against 0.1 ns per dense one, so it only wins beyond ~0.93.
GEMV_CROSSOVER = 0.93


def prefers_sparse_gemv(sparsity):
    """``Kernel=Auto`` at batch 1: whether the skip GEMV beats dense BLAS."""
    return sparsity >= GEMV_CROSSOVER


def prefers_sparse(sparsity, nb_outputs):
    """``Kernel=Auto``: whether the skip kernels should serve this tensor."""
    return sparsity >= (CROSSOVER_THIN if nb_outputs <= THIN_OUTPUTS else CROSSOVER)


class SparseWeights:
    """Row-compressed kept positions of a 2-D ``mask`` (O, K), both orders."""

    def __init__(self, mask):
        mask = np.asarray(mask)
        self.shape = mask.shape
        self.indptr, self.indices = compress_rows(mask)
        self.t_indptr, self.t_rows = compress_rows(mask.T)
        self.values = np.empty(self.indices.shape, dtype=np.float32)
        self.t_values = np.empty(self.t_rows.shape, dtype=np.float32)
        self._values_keys = {False: None, True: None}  # per orientation: the weights gathered
        self.nnz = int(self.indices.shape[0])
        self.sparsity = 1.0 - self.nnz / mask.size if mask.size else 0.0

    @property
    def nbytes(self):
        """Bytes kept besides the dense weights (indices both ways, CSR values)."""
        return sum(a.nbytes for a in (self.indptr, self.indices, self.t_indptr, self.t_rows,
                                      self.values))

    def flat_positions(self):
        """Flat indices (int64) of the kept weights in the dense (O, K) array."""
        rows = np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))
        return rows * self.shape[1] + self.indices

    def _operand(self, a, rows, cols=None):
        """``a`` as the C-contiguous float32 (rows, cols) matrix the kernels index blindly."""
        a = np.ascontiguousarray(a)
        if (a.ndim != 2 or a.shape[0] != rows or a.dtype != np.float32
                or cols is not None and a.shape[1] != cols):
            raise ValueError(f"expected a float32 ({rows}, {cols or 'N'}) operand, got "
                             f"{a.dtype} {a.shape}")
        return a

    def forward(self, w2d, x, key=None):
        """``(W * M) @ x`` for dense ``w2d`` (O, K) and ``x`` (K, N).

        ``key`` identifies the weights' contents (``WeightCell.weights_key``):
        the kept values are gathered again only when it changes (None: always).
        """
        return self._product(w2d, self._operand(x, self.shape[1]), key, transposed=False)

    def input_grad(self, w2d, dy, key=None):
        """``(W * M).T @ dy`` for ``dy`` (O, N); returns (K, N). ``key`` as ``forward``."""
        return self._product(w2d, self._operand(dy, self.shape[0]), key, transposed=True)

    def _product(self, w2d, operand, key, transposed):
        """CSR (or its transpose) times ``operand``, the kept values re-gathered from
        ``w2d`` when ``key`` changed since the last product of that orientation."""
        if transposed:
            indptr, indices, values, gather = self.t_indptr, self.t_rows, self.t_values, gather_columns
        else:
            indptr, indices, values, gather = self.indptr, self.indices, self.values, gather_rows
        if key is None or key != self._values_keys[transposed]:
            gather(self._operand(w2d, *self.shape), indptr, indices, out=values)
            self._values_keys[transposed] = key
        return csr_matmul_trusted(indptr, indices, values, operand)

    def weight_grad(self, dy, x):
        """``(dy @ x.T) * M`` as a dense (O, K) array, computed at kept positions only."""
        dy = self._operand(dy, self.shape[0])
        values = csr_sddmm_trusted(self.indptr, self.indices, dy,
                                   self._operand(x, self.shape[1], dy.shape[1]))
        grad = np.zeros(self.shape, dtype=values.dtype)
        scatter_rows(self.indptr, self.indices, values, grad)
        return grad
