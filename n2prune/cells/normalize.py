"""L2 normalisation over channels (N2D2 ``Type=Normalize``, ``Norm=L2``).

Each pixel's channel vector is divided by its L2 norm, per sample:
``y[c] = x[c] / s`` with ``s = sqrt(sum_c' x[c']^2 + 1e-6)``, the epsilon
inside the root as N2D2's ``NormalizeCell_Frame``. Its backward pass is the
exact Jacobian product ``dx[c] = (dy[c] - y[c] * sum_c' y[c'] dy[c']) / s``.

A channel that is 0 everywhere adds nothing to ``s`` and stays 0: removing
it changes no other output, so channel pruning passes channels through this
cell (``prune/channel_graph``).
"""

import numpy as np

from n2prune.cells.base import Cell
from n2prune.cells.channels import check_channel_outputs
from n2prune.cells.registry import CELL_TYPES, NB_OUTPUTS, shape_error
from n2prune.errors import SettingError
from n2prune.registry import Key, choice

# N2D2's NormalizeCell::Norm values; its CPU and CUDA cells compute only L2.
NORMS = ("L1", "L2")
EPSILON = 1e-6


@CELL_TYPES.register(
    "Normalize", NB_OUTPUTS,
    Key("Norm", "norm", choice(NORMS), "the norm each pixel's channel vector is divided by: L2"),
)
class Normalize(Cell):
    """``y = x / sqrt(sum over channels of x^2 + 1e-6)`` on a single (C, H, W, N) input."""

    def __init__(self, name, input_shapes, nb_outputs, norm):
        super().__init__(name, input_shapes)
        if len(self.input_shapes) != 1:
            raise shape_error(name, "Normalize takes exactly one input (as N2D2's)")
        self.output_shape = check_channel_outputs(name, self.input_shapes, nb_outputs)
        if norm != "L2":
            raise SettingError("norm", f"Norm={norm} is not supported: N2D2 computes only "
                               "Norm=L2 (its L1 is refused at run time)")
        self.norm = norm
        self._saved = None

    def forward(self, xs, train):
        x = xs[0]
        scale = np.sqrt(np.einsum("chwn,chwn->hwn", x, x) + EPSILON)
        y = x / scale
        self._saved = (y, scale) if train else None
        return y

    def backward(self, dy):
        if self._saved is None:
            raise RuntimeError(f"[{self.name}] backward needs a forward with train=True first")
        y, scale = self._saved
        along = np.einsum("chwn,chwn->hwn", y, dy)
        return [(dy - y * along) / scale]
