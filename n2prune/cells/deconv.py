"""Transposed 2-D convolution (N2D2 ``Type=Deconv``) on (C, H, W, N) activations.

Each input pixel scatters its channel vector through the kernel into the
output: ``y[o, iy*sy - py + ky*dy, ix*sx - px + kx*dx] += W[o, c, ky, kx] *
x[c, iy, ix]`` (positions falling in the padding dropped), summed over the
inputs, then bias and activation. The output plane is N2D2's
``(H - 1)*s + dilation*(K - 1) + 1 - 2*padding`` per axis.

That is exactly the input gradient of the convolution ``conv`` whose input
is the Deconv's output plane and whose weights are ``W`` with axes 0 and 1
swapped, (C, O, KH, KW). So a Deconv needs no kernel of its own: its
forward pass is that convolution's input gradient, its input gradient is
that convolution's forward pass, and its weight gradient is that
convolution's weight gradient with ``dy`` and ``x`` in swapped roles. The
direct kernels (``cells/direct_weights``, ``transposed=True``) serve the
float32 batches from 8 on, skipping pruned and unconnected weights as for
Conv; otherwise im2col + GEMM on ``W * M``.

Weights are stored OCHW ``(nb_outputs, C_k, KH, KW)`` like Conv's, so that
pruning patterns, criteria, channel pruning and shrinking (axis 0 = the
outputs) treat a Deconv as they treat a Conv. N2D2 stores them as
(C_k, O, KH, KW) (``DeconvCell_Frame``: kernel dims ``KW KH O C``), but its
kernel for (output o, channel c) is the same ``KH x KW`` array, which is
all its weight files hold (``DeconvCell::exportFreeParameters``: per
output, the kernels of the connected channels): ``io/syntxt`` reads and
writes them as for Conv.
"""

import numpy as np

from n2prune.cells import fillers
from n2prune.cells.conv import WindowCell
from n2prune.cells.direct_weights import DIRECT_MIN_BATCH
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
    common_plane,
    set_grad,
    shape_error,
)
from n2prune.kernels import col2im, covers_input, im2col, matmul, matmul_nt, matmul_tn


def deconv_out_size(size, kernel, stride, padding, dilation):
    """Output length along one axis, N2D2's ``DeconvCell::setOutputsDims``."""
    return size * stride + dilation * (kernel - 1) + 1 - 2 * padding - stride


@CELL_TYPES.register(
    "Deconv", NB_OUTPUTS, KERNEL, STRIDE, PADDING, DILATION, MAPPING, *FILLER_KEYS,
    ACTIVATION, *WEIGHT_PARAMETERS,
)
class Deconv(WindowCell):
    """Transposed convolution of (C, H, W, N) inputs into ``(nb_outputs, OH, OW, N)``.

    Arguments as ``Conv``'s. A mapping ``(C_k, nb_outputs)`` says which
    (channel, output) kernels exist, as N2D2's ``isConnection(channel,
    output)`` and weight files read it; unconnected kernels are 0 and get
    no gradient (N2D2's CPU Deconv reads its mapping table transposed and
    does not support grouped tables; we follow the documented meaning).
    Fillers fill the whole ``(O, C_k, KH, KW)`` tensor with the fans N2D2
    gives it (``fillers.conv_fans(O, C_k, kernel)``: its filler sees the
    weights as KW x KH x C x O).
    """

    def _initial_weights(self, k, conn, filler, rng):
        """The whole ``(O, C_k, KH, KW)`` tensor filled; the connection's mask only
        says which kernels exist (io/syntxt, shrink read it)."""
        channels = self.input_shapes[k][0]
        fans = fillers.conv_fans(self.nb_outputs, channels, self.kernel)
        value = filler.fill((self.nb_outputs, channels, *self.kernel), *fans, rng)
        return value if conn.mask is None else value * conn.mask

    def _output_plane(self):
        height, width = common_plane(self.name, self.input_shapes)
        if self.nb_outputs < 1:
            raise shape_error(self.name, f"NbOutputs must be >= 1, got {self.nb_outputs}")
        if min(*self.kernel, *self.stride, *self.dilation) < 1 or min(self.padding) < 0:
            raise shape_error(self.name, f"invalid kernel {self.kernel}, stride {self.stride}, "
                              f"dilation {self.dilation} or padding {self.padding}")
        plane = tuple(deconv_out_size(size, *args) for size, *args in zip(
            (height, width), self.kernel, self.stride, self.padding, self.dilation))
        if min(plane) < 1:
            raise shape_error(self.name, f"input {height}x{width}: padding {self.padding} "
                              f"leaves an output of {plane[0]}x{plane[1]}")
        return plane

    def _geometry(self):
        return self.kernel, self.stride, self.padding, self.dilation

    def forward(self, xs, train):
        """``xs``: one (C_k, H, W, N) array per input; returns (O, OH, OW, N)."""
        check_inputs(self.name, xs, self.input_shapes)
        y, saved = None, []
        for k, x in enumerate(xs):
            direct = self._direct_weights(k, x)
            if direct is not None:
                part = direct.input_grad(x, self.effective_weights(k), self.output_shape[1:],
                                         self.weights_key(k))
            else:
                cols = matmul_tn(self._conv_matrix(k, x.dtype), x.reshape(x.shape[0], -1))
                part = col2im(cols, (*self.output_shape, x.shape[3]), *self._geometry())
            saved.append((direct, x))
            y = part if y is None else np.add(y, part, out=y)
        self._saved = saved if train else None
        return self.activate(y)

    def backward(self, dy):
        if self._saved is None:
            raise RuntimeError(f"[{self.name}] backward needs a forward with train=True first")
        dy = self.deactivate(dy)
        cols = None
        dxs = []
        # The forward pass's choice of kernels, whatever the masks did since.
        for k, (direct, x) in enumerate(self._saved):
            wanted = self.wants_input_grad(k)
            if direct is not None:
                dw = direct.weight_grad(dy, x)
                dx = direct.forward(dy, self.effective_weights(k), self.weights_key(k)) if wanted else None
            else:
                cols = im2col(dy, *self._geometry()) if cols is None else cols
                dw = self._unfolded_weights(matmul_nt(x.reshape(x.shape[0], -1), cols))
                dx = matmul(self._conv_matrix(k, dy.dtype), cols).reshape(x.shape) if wanted else None
            if self.connections[k].mask is not None:
                dw *= self.connections[k].mask
            set_grad(self.weights[k], self.mask_weight_grad(k, dw))
            dxs.append(dx)
        return dxs

    def _conv_matrix(self, k, dtype):
        """``(C_k, O*KH*KW)``: the weights of the convolution this cell transposes, as
        the GEMM operand of its im2col path (``W * M``, unconnected kernels 0)."""
        w = self.effective_weights(k).astype(dtype, copy=False)
        if self.connections[k].mask is not None:
            w = w * self.connections[k].mask
        return np.ascontiguousarray(w.transpose(1, 0, 2, 3)).reshape(w.shape[1], -1)

    def _unfolded_weights(self, matrix):
        """A ``(C_k, O*KH*KW)`` matrix back in the OCHW layout of the weights."""
        stored = matrix.reshape(-1, self.nb_outputs, *self.kernel).transpose(1, 0, 2, 3)
        return np.ascontiguousarray(stored)

    def _direct_weights(self, k, x):
        """Direct kernels for float32 ``x`` from batch 8 on, except where the kernel
        covers the whole unpadded output (one input pixel: a GEMM, im2col is free)."""
        if (x.dtype != np.float32 or x.shape[3] < DIRECT_MIN_BATCH
                or covers_input(self.output_shape[1:], self.kernel, self.padding)):
            return None
        geometry = (self.stride, self.padding, self.dilation)
        return self.direct_weights(k, self.connections[k].mask, geometry, transposed=True)

    def macs_per_sample(self):
        """Every tap of every connected kernel at every input pixel (taps that
        land in the padding included)."""
        height, width = self.input_shapes[0][1:]
        kernels = sum(c.mask.sum() if c.mask is not None else self.nb_outputs * s[0]
                      for c, s in zip(self.connections, self.input_shapes))
        return int(kernels) * self.kernel[0] * self.kernel[1] * height * width
