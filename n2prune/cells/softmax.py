"""Softmax over channels (N2D2 ``Type=Softmax``), per sample and per pixel.

``group_size > 0`` splits the channels into consecutive groups of that size,
each normalised on its own. ``with_loss=True`` is N2D2's ``WithLoss=1``:
``backward`` passes ``dy`` through unchanged because the target already
gives ``p - onehot``, the combined softmax + cross-entropy gradient.
Otherwise ``backward`` is the softmax Jacobian-vector product, per group
(N2D2's CPU cell sums that product over *all* groups, which mixes groups;
we keep them apart).
"""

import numpy as np

from n2prune.cells.base import Cell
from n2prune.cells.channels import check_channel_outputs
from n2prune.cells.registry import CELL_TYPES, NB_OUTPUTS, shape_error
from n2prune.registry import BOOL, UINT, Key


@CELL_TYPES.register(
    "Softmax", NB_OUTPUTS,
    Key("WithLoss", "with_loss", BOOL, "1: backward passes the target error through (cross-entropy)"),
    Key("GroupSize", "group_size", UINT, "channels normalised together; 0: all"),
)
class Softmax(Cell):
    """``y[c] = exp(x[c]) / sum_{c' in group} exp(x[c'])`` on a single (C, H, W, N) input."""

    def __init__(self, name, input_shapes, nb_outputs, with_loss=False, group_size=0):
        super().__init__(name, input_shapes)
        if len(self.input_shapes) != 1:
            raise shape_error(name, "Softmax takes exactly one input (N2D2 does not "
                              "concatenate Softmax inputs)")
        self.output_shape = check_channel_outputs(name, self.input_shapes, nb_outputs)
        self.group_size = int(group_size) or nb_outputs
        if nb_outputs % self.group_size:
            raise shape_error(name, f"GroupSize={group_size} does not divide NbOutputs={nb_outputs}")
        self.with_loss = bool(with_loss)
        self._y = None

    def _grouped(self, a):
        """``a`` (C, H, W, N) viewed as (groups, group_size, H, W, N)."""
        return a.reshape(-1, self.group_size, *a.shape[1:])

    def forward(self, xs, train):
        x = self._grouped(xs[0])
        e = np.exp(x - x.max(axis=1, keepdims=True))  # shifted: exp never overflows
        y = (e / e.sum(axis=1, keepdims=True)).reshape(xs[0].shape)
        self._y = y
        return y

    def backward(self, dy):
        if self.with_loss:
            return [dy]
        y, g = self._grouped(self._y), self._grouped(dy)
        dx = y * (g - (y * g).sum(axis=1, keepdims=True))
        return [dx.reshape(dy.shape)]
