"""2-D convolution (N2D2 ``Type=Conv``) on (C, H, W, N) activations.

One OCHW weight tensor ``(nb_outputs, C_k, KH, KW)`` per input ``k``; the
contributions of all inputs are summed (= a convolution of their channel
concatenation). A mapping matrix per input says which (channel, output)
kernels exist: unconnected kernels are zero at init and get zero gradient.
Grouped and depthwise mappings are computed per group instead of as a dense
GEMM full of zeros.

Two ways to compute a float32 connection: the direct kernels
(``cells/direct_weights``: no im2col, pruned and unconnected weights
skipped), chosen for thin or sparse tensors (grouped and depthwise tables
are sparse: a depthwise output costs its own taps only), and im2col + GEMM
(BLAS, per group, or the skip kernels on the cols) otherwise. A kernel covering its whole unpadded
input (LeNet's conv3) is a plain GEMM on a view of its input.
"""

import numpy as np

from n2prune.cells import fillers
from n2prune.cells.activations import resolve
from n2prune.cells.base import Param
from n2prune.cells.direct_weights import DIRECT_MIN_BATCH
from n2prune.cells.mapping import group_bounds, is_block_diagonal
from n2prune.cells.registry import (
    ACTIVATION,
    CELL_TYPES,
    DILATION,
    FILLER_KEYS,
    KERNEL,
    MAPPING,
    NB_OUTPUTS,
    PADDING,
    STRIDE,
    WEIGHT_PARAMETERS,
    check_inputs,
    check_mappings,
    key_names,
    set_grad,
    window_geometry,
    window_plane,
)
from n2prune.cells.weighted import WeightCell
from n2prune.kernels import (
    bias_grad_channels,
    col2im,
    covers_input,
    im2col,
    matmul,
    matmul_nt,
    matmul_tn,
    max_pool_backward,
    relu_backward,
)


def conv_bias(name, nb_outputs, filler, rng):
    """The ``<name>.biases`` Param of a Conv or Deconv (N2D2's fans for its filler)."""
    filler = filler or fillers.DEFAULT_BIAS_FILLER
    fans = fillers.conv_bias_fans(nb_outputs)
    return Param(f"{name}.biases", filler.fill((nb_outputs,), *fans, rng), "biases")


class Connection:
    """How one input's channels reach the outputs, and the cheapest way to compute it.

    ``kind`` is ``"dense"`` (all connected), ``"masked"`` (any other pattern:
    dense GEMM with the unconnected kernels masked out), ``"grouped"``
    (block-diagonal: one GEMM per group) or ``"depthwise"`` (one channel per
    group, every group with outputs). ``mask`` is the (O, C, 1, 1) 0/1 array of connected kernels,
    ``None`` when all are; ``groups`` lists ``(channel slice, output slice)``.
    """

    def __init__(self, mapping, nb_channels, nb_outputs):
        self.kind, self.mask, self.groups, self.per_group = "dense", None, None, nb_channels
        if mapping is None or mapping.all():
            return
        self.mask = (mapping.T != 0)[:, :, None, None].astype(np.int8)
        nb_groups = is_block_diagonal(mapping)
        if nb_groups is None:
            self.kind = "masked"
            return
        self.per_group = nb_channels // nb_groups
        bounds = group_bounds(nb_outputs, nb_groups)
        self.groups = [(slice(g * self.per_group, (g + 1) * self.per_group), slice(a, b))
                       for g, (a, b) in enumerate(bounds) if b > a]
        if self.per_group == 1 and len(self.groups) == nb_groups:
            self.kind = "depthwise"
            sizes = [b - a for a, b in bounds]
            self.source = np.repeat(np.arange(nb_groups), sizes)  # input channel of each output
            self.starts = np.array([a for a, _ in bounds])
            self.identity = nb_outputs == nb_groups
        else:
            self.kind = "grouped"

    def forward(self, w, cols):
        """``(O, P)`` contribution of weights ``w`` (O, C, KH, KW) on ``cols`` (C*KH*KW, P)."""
        nb_outputs = w.shape[0]
        if self.kind == "masked":
            w = w * self.mask  # unconnected kernels never act, as N2D2 skips them
        if self.kind in ("dense", "masked"):
            return matmul(w.reshape(nb_outputs, -1), cols)
        if self.kind == "depthwise":
            w_taps, taps = self._depthwise_operands(w, cols)
            return np.einsum("ok,okp->op", w_taps, taps)
        y = np.zeros((nb_outputs, cols.shape[1]), dtype=cols.dtype)
        taps = w.shape[2] * w.shape[3]
        for chans, outs in self.groups:
            rows = slice(chans.start * taps, chans.stop * taps)
            y[outs] = matmul(w[outs, chans].reshape(outs.stop - outs.start, -1), cols[rows])
        return y

    def backward(self, w, cols, dy):
        """``(dw, dcols)`` for ``dy`` (O, P), the adjoint of ``forward``."""
        if self.kind in ("dense", "masked"):
            w2 = (w if self.mask is None else w * self.mask).reshape(w.shape[0], -1)
            return matmul_nt(dy, cols).reshape(w.shape), matmul_tn(w2, dy)
        if self.kind == "depthwise":
            return self._depthwise_backward(w, cols, dy)
        dw = np.zeros_like(w)
        dcols = np.zeros_like(cols)
        taps = w.shape[2] * w.shape[3]
        for chans, outs in self.groups:
            rows = slice(chans.start * taps, chans.stop * taps)
            w_group = w[outs, chans].reshape(outs.stop - outs.start, -1)
            dw[outs, chans] = matmul_nt(dy[outs], cols[rows]).reshape(dw[outs, chans].shape)
            dcols[rows] = matmul_tn(w_group, dy[outs])
        return dw, dcols

    def _depthwise_operands(self, w, cols):
        """Per-output taps ``(O, KH*KW)`` and the matching cols rows ``(O, KH*KW, P)``."""
        nb_outputs, taps = w.shape[0], w.shape[2] * w.shape[3]
        w_taps = w[np.arange(nb_outputs), self.source].reshape(nb_outputs, taps)
        cols3 = cols.reshape(-1, taps, cols.shape[1])
        return w_taps, (cols3 if self.identity else cols3[self.source])

    def _depthwise_backward(self, w, cols, dy):
        w_taps, taps = self._depthwise_operands(w, cols)
        dw = np.zeros_like(w)
        dw[np.arange(w.shape[0]), self.source] = np.einsum(
            "op,okp->ok", dy, taps).reshape(w.shape[0], *w.shape[2:])
        per_output = w_taps[:, :, None] * dy[:, None, :]
        # Outputs of one channel are contiguous: reduceat sums each block.
        per_channel = per_output if self.identity else np.add.reduceat(per_output, self.starts, axis=0)
        return dw, per_channel.reshape(cols.shape)


class WindowCell(WeightCell):
    """What Conv and Deconv share: a kernel window over (C, H, W, N) inputs, one
    weight tensor per input with its ``Connection`` (mapping table), a bias and an
    activation. Subclasses give ``_output_plane`` and ``_initial_weights``."""

    config_keys = key_names(WEIGHT_PARAMETERS)

    def __init__(self, name, input_shapes, nb_outputs, kernel, stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1), no_bias=False, mappings=None, weights_filler=None,
                 bias_filler=None, activation=None, *, rng):
        super().__init__(name, input_shapes)
        self.nb_outputs = int(nb_outputs)
        self.kernel, self.stride, self.padding, self.dilation = window_geometry(
            name, kernel, stride, padding, dilation)
        self.output_shape = (self.nb_outputs, *self._output_plane())
        weights_filler = weights_filler or fillers.DEFAULT_WEIGHTS_FILLER
        self.connections, self.weights = [], []
        for k, mapping in enumerate(
                check_mappings(name, self.input_shapes, self.nb_outputs, mappings)):
            conn = Connection(mapping, self.input_shapes[k][0], self.nb_outputs)
            self.connections.append(conn)
            value = self._initial_weights(k, conn, weights_filler, rng)
            self.weights.append(Param(f"{name}.weights[{k}]", value, "weights"))
        self.bias = None if no_bias else conv_bias(name, self.nb_outputs, bias_filler, rng)
        self.activation = resolve(activation)
        self._saved = None  # per input: (DirectWeights, x) or (None, x or its cols)


@CELL_TYPES.register(
    "Conv", NB_OUTPUTS,
    KERNEL, STRIDE, PADDING, DILATION, MAPPING, *FILLER_KEYS, ACTIVATION, *WEIGHT_PARAMETERS,
)
class Conv(WindowCell):
    """Convolution of (C, H, W, N) inputs into ``(nb_outputs, OH, OW, N)``.

    ``kernel``, ``stride``, ``padding`` (symmetric, zero) and ``dilation``
    are ``(h, w)`` pairs or ints. ``mappings`` is ``None`` or one entry per
    input: ``None`` (full) or a 0/1 array ``(C_k, nb_outputs)``. Fillers
    default to N2D2's Normal(0, 0.05); fans follow ``fillers.conv_fans``
    (grouped mappings fill the compact ``(O, C_k/G, KH, KW)`` tensor, as N2D2),
    drawing from ``rng``, the ``numpy.random.Generator`` of the run.
    """

    def _output_plane(self):
        return window_plane(self.name, self.input_shapes, self.nb_outputs, self.kernel,
                            self.stride, self.padding, self.dilation)

    def _initial_weights(self, k, conn, filler, rng):
        channels = self.input_shapes[k][0]
        if conn.groups is None:
            fans = fillers.conv_fans(self.nb_outputs, channels, self.kernel)
            w = filler.fill((self.nb_outputs, channels, *self.kernel), *fans, rng)
            return w if conn.mask is None else w * conn.mask
        fans = fillers.conv_fans(self.nb_outputs, conn.per_group, self.kernel)
        compact = filler.fill((self.nb_outputs, conn.per_group, *self.kernel), *fans, rng)
        w = np.zeros((self.nb_outputs, channels, *self.kernel), dtype=compact.dtype)
        for chans, outs in conn.groups:
            w[outs, chans] = compact[outs]
        return w

    def _geometry(self):
        return self.kernel, self.stride, self.padding, self.dilation

    # The pair with a per-channel max Pool reading only this cell
    # (``cells/fusion.ConvMaxPool``): when the direct kernels serve the cell,
    # ``forward`` returns the pool's output and says so in ``fusion.pooled``.
    fusion = None
    _pooled_state = None  # the fused pool's (output, argmax) of the last training forward

    def forward(self, xs, train):
        """``xs``: one (C_k, H, W, N) array per input; returns (O, OH, OW, N),
        or the fused pool's (O, PH, PW, N) output when ``fusion.pooled``."""
        check_inputs(self.name, xs, self.input_shapes)
        if self.fusion is not None:
            direct = self._direct_weights(0, xs[0])
            self.fusion.pooled = direct is not None
            if direct is not None:
                return self._forward_pooled(xs[0], direct, train)
        y, saved = None, []
        for k, x in enumerate(xs):
            direct = self._direct_weights(k, x)
            if direct is not None:
                part = direct.forward(x, self.effective_weights(k), self.weights_key(k))
                saved.append((direct, x))
            else:
                cols = im2col(x, *self._geometry())
                part = self._cols_forward(k, cols).reshape(self.output_shape + (x.shape[3],))
                saved.append((None, cols))
            y = part if y is None else np.add(y, part, out=y)
        self._saved = saved if train else None
        return self.activate(y)

    def _forward_pooled(self, x, direct, train):
        pool = self.fusion.pool
        bias = None if self.bias is None else self.bias.value
        y, argmax = direct.forward_relu_max_pool(
            x, self.effective_weights(0), (pool.pool, pool.stride, pool.padding),
            self.weights_key(0), bias)
        self._saved = [(direct, x)] if train else None
        self._pooled_state = (y, argmax) if train else None
        return y

    def _unpool(self, dy):
        """Gradient at the conv output (before ReLU) from the fused pool's ``dy``."""
        y, argmax = self._pooled_state
        pool = self.fusion.pool
        # max(relu(a)) = relu(max(a)): the ReLU mask is read on the pooled output.
        dy = max_pool_backward(relu_backward(np.ascontiguousarray(dy), y), argmax,
                               self.output_shape[1:], pool.pool, pool.stride, pool.padding)
        if self.bias is not None:
            set_grad(self.bias, bias_grad_channels(dy))
        return dy

    def _cols_forward(self, k, cols):
        """im2col + GEMM (or skip kernels on cols): the ``(O, OH*OW*N)`` product."""
        sparse = self._sparse_weights(k, cols.dtype)
        if sparse is not None:
            w2d = self.weights[k].value.reshape(self.nb_outputs, -1)
            return sparse.forward(w2d, cols, self.weights_key(k))
        w = self.effective_weights(k).astype(cols.dtype, copy=False)
        return self.connections[k].forward(w, cols)

    def backward(self, dy):
        if self._saved is None:
            raise RuntimeError(f"[{self.name}] backward needs a forward with train=True first")
        pooled = self.fusion is not None and self.fusion.pooled
        dy = self._unpool(dy) if pooled else self.deactivate(dy)
        dxs = []
        # The forward pass's choice of kernels, whatever the masks did since.
        for k, (direct, saved) in enumerate(self._saved):
            wanted = self.wants_input_grad(k)
            if direct is not None:
                set_grad(self.weights[k], self.mask_weight_grad(k, direct.weight_grad(saved, dy)))
                dxs.append(direct.input_grad(dy, self.effective_weights(k), self.input_shapes[k][1:],
                                             self.weights_key(k)) if wanted else None)
                continue
            dcols = self._cols_backward(k, saved, dy.reshape(self.nb_outputs, -1), wanted)
            x_shape = (*self.input_shapes[k], dy.shape[3])
            dxs.append(None if dcols is None else col2im(dcols, x_shape, *self._geometry()))
        return dxs

    def _cols_backward(self, k, cols, dy2, wanted):
        """Sets the weight gradient of input ``k``; returns its cols gradient or None."""
        sparse = self._sparse_weights(k, cols.dtype)
        if sparse is None:
            return self._dense_backward(k, cols, dy2, wanted)
        w2d = self.weights[k].value.reshape(self.nb_outputs, -1)
        set_grad(self.weights[k], sparse.weight_grad(dy2, cols).reshape(
            self.weights[k].value.shape))
        return sparse.input_grad(w2d, dy2, self.weights_key(k)) if wanted else None

    def _direct_weights(self, k, x):
        """Direct kernels for float32 ``x`` (or ``dy``) on any connection, except where im2col is free (a kernel covering its whole
        unpadded input: a GEMM) and for small batches."""
        conn = self.connections[k]
        if (x.dtype != np.float32 or covers_input(self.input_shapes[k][1:], self.kernel, self.padding)
                or x.shape[3] < DIRECT_MIN_BATCH):
            return None
        geometry = (self.stride, self.padding, self.dilation)
        return self.direct_weights(k, conn.mask, geometry)


    def _sparse_weights(self, k, dtype):
        """Skip kernels for float32 inputs on dense or mapping-masked connections."""
        conn = self.connections[k]
        if dtype != np.float32 or conn.kind not in ("dense", "masked"):
            return None
        return self.sparse_weights(k, conn.mask)

    def _dense_backward(self, k, cols, dy2, wanted=True):
        """Sets the weight gradient of input ``k``; returns its cols gradient
        (None when not ``wanted``)."""
        conn = self.connections[k]
        w = self.effective_weights(k).astype(dy2.dtype, copy=False)
        if not wanted and conn.kind in ("dense", "masked"):
            dw = matmul_nt(dy2, cols).reshape(w.shape)
            dcols = None
        else:
            dw, dcols = conn.backward(w, cols, dy2)
        if conn.mask is not None:
            dw *= conn.mask
        set_grad(self.weights[k], self.mask_weight_grad(k, dw))
        return dcols if wanted else None

    def macs_per_sample(self):
        kernels = sum(c.mask.sum() if c.mask is not None else self.nb_outputs * s[0]
                      for c, s in zip(self.connections, self.input_shapes))
        return int(kernels) * self.kernel[0] * self.kernel[1] * self.output_shape[1] * self.output_shape[2]
