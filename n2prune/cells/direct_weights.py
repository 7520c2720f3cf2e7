"""The direct-convolution form of one conv weight tensor (``kernels/direct_conv``).

A ``DirectWeights`` holds the kept weights of an OCHW tensor compressed in
both orders (per output for the forward pass and the weight gradient, per
input channel for the input gradient). It is built once per mask (a prune
mask, a mapping table, or neither: every weight kept) and serves the three
products without im2col: the values are gathered again from the dense
``Param`` only when the caller's ``key`` (``WeightCell.weights_key``)
changes, O(kept weights).

Direct convolution beats im2col + BLAS where the GEMM is thin (few outputs:
BLAS's small-M kernels and the 25x im2col copy dominate) and wherever the
weights are sparse (a pruned weight costs nothing). ``prefers_direct`` is
that rule, from ``benchmarks/kernels.py`` on the 2-core reference machine.
"""

import numpy as np

from n2prune.kernels.direct_conv import (
    compress,
    compress_transposed,
    gather_values,
    scatter_values,
    sparse_conv_forward,
    sparse_conv_input_grad,
    sparse_conv_weight_grad,
)
from n2prune.kernels.direct_pool import conv_relu_max_pool

# Dense convolutions with at most this many outputs run direct (LeNet's
# conv1 and conv2); wider dense ones use im2col + BLAS.
DIRECT_MAX_DENSE_OUTPUTS = 16
# From this sparsity on, a pruned convolution runs direct at any width.
DIRECT_MIN_SPARSITY = 0.5


# Below this batch, runs of Wo*N floats are too short to vectorise well and
# im2col + GEMM (or the skip kernels on the cols) wins: LeNet-5's dense conv1
# at batch 1 took 135 us direct.
DIRECT_MIN_BATCH = 8


def prefers_direct(nb_outputs, sparsity):
    """Whether the direct kernels should serve a float32 convolution."""
    return nb_outputs <= DIRECT_MAX_DENSE_OUTPUTS or sparsity >= DIRECT_MIN_SPARSITY


def swapped_flat(flat, shape):
    """Flat indices into an array of ``shape`` (A, B, KH, KW) mapped to the same
    entries of its (B, A, KH, KW) transpose."""
    a_count, b_count = shape[0], shape[1]
    taps = int(np.prod(shape[2:]))
    a, rest = np.divmod(flat, b_count * taps)
    b, tap = np.divmod(rest, taps)
    return (b * a_count + a) * taps + tap


class DirectWeights:
    """Kept weights of ``mask`` (broadcastable to ``shape``, None: all) for ``geometry``.

    ``shape`` is the stored weight tensor's; ``geometry`` the convolution's
    ``(stride, padding, dilation)`` pairs. ``transposed``: the stored tensor
    (a Deconv's OCHW weights, ``shape`` (O, C, KH, KW)) is the convolution's
    weights with axes 0 and 1 swapped: the products are those of that
    (C, O, KH, KW) convolution, while the values are read from and the
    gradient written to the stored layout, and ``flat_positions`` index it.
    """

    def __init__(self, shape, mask, geometry, transposed=False):
        self.shape = tuple(shape)
        conv_shape = self.shape
        if transposed:
            conv_shape = (self.shape[1], self.shape[0], *self.shape[2:])
            mask = None if mask is None else np.swapaxes(np.asarray(mask), 0, 1)
        zeros = np.zeros(conv_shape, np.float32)
        self.kept = compress(zeros, mask)
        self.kept_t = compress_transposed(zeros, mask)
        if transposed:
            self.kept = self.kept._replace(flat=swapped_flat(self.kept.flat, conv_shape))
            self.kept_t = self.kept_t._replace(flat=swapped_flat(self.kept_t.flat, conv_shape))
        self.stride, self.padding, self.dilation = geometry
        self._key = self._t_key = None

    def flat_positions(self):
        """Flat indices (int64, ascending) of the kept weights in the dense tensor."""
        return np.sort(self.kept.flat.astype(np.int64))

    def _refresh(self, w, key):
        """Re-read the kept values of the forward order when ``key`` changed."""
        if key is None or key != self._key:
            self.kept = gather_values(self.kept, w)
            self._key = key

    def forward(self, x, w, key=None, bias=None):
        """``conv(x, W * M) (+ bias)``, ``x`` (C, H, W, N) float32 -> (O, Ho, Wo, N)."""
        self._refresh(w, key)
        return sparse_conv_forward(x, self.kept, self.stride, self.padding, self.dilation,
                                   bias=bias)

    def forward_relu_max_pool(self, x, w, pool, key=None, bias=None):
        """``max_pool(relu(conv(x, W * M) + bias))`` in one pass: ``(y, argmax)``.

        ``pool`` is ``(pool, stride, padding)`` pairs; the conv output is never stored.
        """
        self._refresh(w, key)
        conv = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}
        pooling = dict(zip(("pool", "stride", "padding"), pool))
        return conv_relu_max_pool(x, self.kept, conv, pooling, bias=bias)

    def input_grad(self, dy, w, input_hw, key=None):
        """``dX`` (C, H, W, N) from ``dy`` (O, Ho, Wo, N); ``key`` as ``forward``."""
        if key is None or key != self._t_key:
            self.kept_t = gather_values(self.kept_t, w)
            self._t_key = key
        return sparse_conv_input_grad(dy, self.kept_t, input_hw, self.stride, self.padding,
                                      self.dilation)

    def weight_grad(self, x, dy):
        """Dense ``dW`` of the stored ``shape``, computed at the kept positions only."""
        values = sparse_conv_weight_grad(x, dy, self.kept, self.stride, self.padding,
                                         self.dilation)
        return scatter_values(self.kept, values, self.shape)
