"""A cell that only applies an activation function (N2D2 ``Type=Activation``).

Several inputs are concatenated along channels.
"""

from n2prune.cells.activations import resolve
from n2prune.cells.base import Cell
from n2prune.cells.channels import (
    check_channel_outputs,
    concat_channels,
    split_channels,
)
from n2prune.cells.registry import ACTIVATION, CELL_TYPES, NB_OUTPUTS


@CELL_TYPES.register("Activation", NB_OUTPUTS, ACTIVATION)
class Activation(Cell):
    """``y = activation(x)``; ``activation=None`` is the identity."""

    def __init__(self, name, input_shapes, nb_outputs, activation=None):
        super().__init__(name, input_shapes)
        self.output_shape = check_channel_outputs(name, self.input_shapes, nb_outputs)
        self.activation = resolve(activation)

    def forward(self, xs, train):
        return self.activation.forward(concat_channels(xs))

    def backward(self, dy):
        return split_channels(self.activation.backward(dy), self.input_shapes)

    def macs_per_sample(self):
        channels, height, width = self.output_shape
        return channels * height * width
