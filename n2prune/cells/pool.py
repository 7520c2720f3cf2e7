"""Max / average pooling (N2D2 ``Type=Pool``) with N2D2's channel mapping.

Output ``o`` pools over the window **and** over every input channel the
mapping links to it. Without a mapping (N2D2's default) every output pools
over all channels; per-channel pooling needs an identity mapping
(``Mapping.Size=1`` or ``Mapping.ChannelsPerGroup=1``), which takes the
fast per-channel kernels directly. Otherwise the mapped channels are first
reduced per output (max with a channel argmax, or mean), then pooled per
channel: the same result as N2D2's joint loop over (channel, window).

Several inputs are concatenated along channels and the mapping rows index
the concatenated channels (N2D2's PoolCell_Frame instead *sums* the pooled
results of the inputs).

Average pooling divides by the full window area, padding included (N2D2's
PoolCell_Frame passes ``countIncludePadding=true``).
"""

import numpy as np

from n2prune.cells.activations import resolve
from n2prune.cells.base import Cell
from n2prune.cells.channels import concat_channels, split_channels
from n2prune.cells.registry import (
    ACTIVATION,
    CELL_TYPES,
    MAPPING,
    NB_OUTPUTS,
    PADDING,
    STRIDE,
    as_pair,
    check_inputs,
    dims,
    shape_error,
    window_plane,
)
from n2prune.errors import SettingError
from n2prune.kernels import (
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
)
from n2prune.registry import SIZE, Key, choice, unknown_message


def window_counts(size, pool, stride, padding, out):
    """In-bounds elements of each of the ``out`` windows along one axis."""
    starts = np.arange(out) * stride - padding
    return np.clip(np.minimum(starts + pool, size) - np.maximum(starts, 0), 0, None)


POOLINGS = ("Max", "Average")


@CELL_TYPES.register(
    "Pool", NB_OUTPUTS,
    Key("PoolDims", "pool", dims(SIZE), "window, W H (one value: square)"),
    STRIDE, PADDING,
    Key("Pooling", "pooling", choice(POOLINGS), "maximum or mean of each window"),
    MAPPING, ACTIVATION,
)
class Pool(Cell):
    """Pooling of (C, H, W, N) inputs into ``(nb_outputs, OH, OW, N)``.

    ``pool``, ``stride`` (default 1, as N2D2), ``padding``: ``(h, w)`` pairs
    or ints. ``pooling`` (required, as N2D2's ``Pooling``): ``"Max"`` or
    ``"Average"``. ``mappings``: ``None`` (full) or one ``None`` | 0/1 array
    ``(C_k, nb_outputs)`` per input.
    """

    def __init__(self, name, input_shapes, nb_outputs, pool, stride=(1, 1), padding=(0, 0), *,
                 pooling, mappings=None, activation=None):
        super().__init__(name, input_shapes)
        if pooling not in POOLINGS:
            raise SettingError("pooling", f"[{name}] {unknown_message(f'pooling {pooling!r}', pooling, POOLINGS)}")
        self.nb_outputs, self.pooling = int(nb_outputs), pooling
        self.pool = as_pair(name, "pool", pool)
        self.stride = as_pair(name, "stride", stride)
        self.padding = as_pair(name, "padding", padding)
        self.output_shape = (self.nb_outputs, *self._output_plane())
        self.mapping = self._mapping(mappings)
        self._plan_reduction()
        self.activation = resolve(activation)
        self._cache = None

    def _output_plane(self):
        return window_plane(self.name, self.input_shapes, self.nb_outputs, self.pool,
                            self.stride, self.padding)

    def _mapping(self, mappings):
        """The (C_total, O) 0/1 matrix of the concatenated inputs (all ones if none given)."""
        mappings = mappings or [None] * len(self.input_shapes)
        if len(mappings) != len(self.input_shapes):
            raise shape_error(self.name, f"{len(mappings)} mappings for {len(self.input_shapes)} inputs")
        blocks = []
        for (channels, _, _), mapping in zip(self.input_shapes, mappings):
            block = np.ones((channels, self.nb_outputs), np.int8) if mapping is None else np.asarray(mapping)
            if block.shape != (channels, self.nb_outputs):
                raise shape_error(self.name, f"mapping of shape {block.shape}, expected "
                                  f"({channels}, {self.nb_outputs}) (input channels x outputs)")
            blocks.append(block != 0)
        return np.concatenate(blocks, axis=0)

    def _plan_reduction(self):
        """``sources``: channels of each reduced map; ``output_map``: reduced map of each output."""
        channels = self.mapping.shape[0]
        self.identity = channels == self.nb_outputs and np.array_equal(
            self.mapping, np.eye(channels, dtype=bool))
        if self.mapping.all():
            # Every output is the same map: reduce and pool once.
            self.sources = [np.arange(channels)]
            self.output_map = np.zeros(self.nb_outputs, dtype=np.intp)
        else:
            self.sources = [np.flatnonzero(col) for col in self.mapping.T]
            self.output_map = np.arange(self.nb_outputs)

    # The Conv + Pool pair this cell belongs to (``cells/fusion.ConvMaxPool``);
    # when the pair ran pooled, the Conv's output already is this cell's.
    fusion = None

    def forward(self, xs, train):
        if self.fusion is not None and self.fusion.pooled:
            return xs[0]
        check_inputs(self.name, xs, self.input_shapes)
        x = concat_channels(xs)
        reduced, channel_arg = (x, None) if self.identity else self._reduce(x)
        if self.pooling == "Max":
            y, window_arg = max_pool_forward(reduced, self.pool, self.stride, self.padding)
        else:
            y = avg_pool_forward(reduced, self.pool, self.stride, self.padding)
            if any(self.padding):
                y *= self._padding_factor(x.shape, y.dtype)
            window_arg = None
        if not self.identity and len(self.sources) != self.nb_outputs:
            y = y[self.output_map]
        self._cache = (x.shape, reduced.shape, channel_arg, window_arg) if train else None
        return self.activation.forward(y)

    def _reduce(self, x):
        """Per reduced map: max (with argmax into its sources) or mean of its channels."""
        shape = (len(self.sources), *x.shape[1:])
        reduced = np.zeros(shape, dtype=x.dtype)  # an output with no channel gives 0, as N2D2
        channel_arg = np.zeros(shape, dtype=np.intp) if self.pooling == "Max" else None
        for j, src in enumerate(self.sources):
            if len(src) == 0:
                continue
            if self.pooling == "Max":
                picked = x[src]
                channel_arg[j] = np.argmax(picked, axis=0)
                reduced[j] = np.take_along_axis(picked, channel_arg[j][None], axis=0)[0]
            else:
                reduced[j] = x[src].mean(axis=0)
        return reduced, channel_arg

    def _padding_factor(self, x_shape, dtype):
        """``in-bounds count / window area`` per output pixel: turns the kernel's
        padding-excluded mean into N2D2's padding-included one."""
        counts = [window_counts(x_shape[1 + a], self.pool[a], self.stride[a], self.padding[a],
                                self.output_shape[1 + a]) for a in (0, 1)]
        factor = np.outer(*counts) / (self.pool[0] * self.pool[1])
        return factor[:, :, None].astype(dtype)  # broadcast over the batch

    def backward(self, dy):
        if self.fusion is not None and self.fusion.pooled:
            return [dy]
        if self._cache is None:
            raise RuntimeError(f"[{self.name}] backward needs a forward with train=True first")
        x_shape, reduced_shape, channel_arg, window_arg = self._cache
        dy = self.activation.backward(dy)
        if not self.identity and len(self.sources) != self.nb_outputs:
            dy = dy.sum(axis=0, keepdims=True)  # all outputs read the one reduced map
        dy = np.ascontiguousarray(dy)
        if self.pooling == "Max":
            d_reduced = max_pool_backward(dy, window_arg, reduced_shape[1:3], self.pool,
                                          self.stride, self.padding)
        else:
            if any(self.padding):
                dy = dy * self._padding_factor(x_shape, dy.dtype)
            d_reduced = avg_pool_backward(dy, reduced_shape, self.pool, self.stride, self.padding)
        dx = d_reduced if self.identity else self._expand(d_reduced, channel_arg, x_shape)
        return split_channels(dx, self.input_shapes)

    def _expand(self, d_reduced, channel_arg, x_shape):
        """Adjoint of ``_reduce``: each reduced map's gradient back to its channels."""
        dx = np.zeros(x_shape, dtype=d_reduced.dtype)
        for j, src in enumerate(self.sources):
            if len(src) == 0:
                continue
            if self.pooling == "Max":
                for i, c in enumerate(src):
                    dx[c] += np.where(channel_arg[j] == i, d_reduced[j], 0)
            else:
                dx[src] += d_reduced[j] / len(src)
        return dx

    def macs_per_sample(self):
        """Window elements read: mapped channels x window area x output pixels."""
        area = self.pool[0] * self.pool[1] * self.output_shape[1] * self.output_shape[2]
        return int(self.mapping.sum()) * area
