"""Dropout (N2D2 ``Type=Dropout``, parameter ``Dropout``).

Inverted dropout: in train, each activation is kept with probability
``1 - dropout`` and scaled by ``1 / (1 - dropout)``; in test the cell is
the identity. This matches N2D2's CUDA cell (cuDNN dropout). N2D2's CPU
DropoutCell_Frame does not rescale in train, so its test outputs are
``1 / (1 - dropout)`` times larger than what training saw; we do not copy
that. Several inputs are concatenated along channels.
"""


from n2prune.cells.base import Cell
from n2prune.cells.channels import (
    check_channel_outputs,
    concat_channels,
    split_channels,
)
from n2prune.cells.registry import CELL_TYPES, NB_OUTPUTS, key_names
from n2prune.errors import SettingError
from n2prune.registry import FLOAT, Key

PARAMETERS = (Key("Dropout", "dropout", FLOAT,
                  "ConfigSection parameter; probability of dropping an activation, in [0, 1)"),)


@CELL_TYPES.register("Dropout", NB_OUTPUTS, *PARAMETERS)
class Dropout(Cell):
    """Draws its masks from ``rng``, the ``numpy.random.Generator`` of the run."""

    config_keys = key_names(PARAMETERS)

    def __init__(self, name, input_shapes, nb_outputs, dropout=0.5, *, rng):
        super().__init__(name, input_shapes)
        self.output_shape = check_channel_outputs(name, self.input_shapes, nb_outputs)
        if not 0.0 <= dropout < 1.0:
            raise SettingError("dropout", f"[{name}] Dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self.rng = rng
        self._scaled_mask = None

    def forward(self, xs, train):
        x = concat_channels(xs)
        if not train or self.dropout == 0.0:
            self._scaled_mask = None
            return x
        keep = self.rng.random(x.shape) >= self.dropout
        self._scaled_mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.dropout))
        return x * self._scaled_mask

    def backward(self, dy):
        dx = dy if self._scaled_mask is None else dy * self._scaled_mask
        return split_channels(dx, self.input_shapes)
