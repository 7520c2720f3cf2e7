"""Zero padding (N2D2 ``Type=Padding``); negative amounts crop.

As N2D2's PaddingCell: the output plane is ``(H + top + bottom,
W + left + right)`` and output pixel (y, x) reads input (y - top, x - left),
or 0 outside the input. Several inputs are concatenated along channels.
"""

import numpy as np

from n2prune.cells.base import Cell
from n2prune.cells.channels import (
    check_channel_outputs,
    concat_channels,
    split_channels,
)
from n2prune.cells.registry import CELL_TYPES, NB_OUTPUTS, shape_error
from n2prune.registry import INT, Key


def _overlap(size, before, out_size):
    """``(input slice, output slice)`` of the rows (or columns) both planes share."""
    lo, hi = max(0, -before), min(size, out_size - before)
    if hi <= lo:
        return slice(0, 0), slice(0, 0)
    return slice(lo, hi), slice(lo + before, hi + before)


@CELL_TYPES.register(
    "Padding", NB_OUTPUTS,
    Key("TopPadding", "top", INT, "rows added above; negative: cropped"),
    Key("BottomPadding", "bottom", INT, "rows added below; negative: cropped"),
    Key("LeftPadding", "left", INT, "columns added on the left; negative: cropped"),
    Key("RightPadding", "right", INT, "columns added on the right; negative: cropped"),
)
class Padding(Cell):
    """Pads (or, with negative values, crops) each side of every channel plane."""

    def __init__(self, name, input_shapes, nb_outputs, top=0, bottom=0, left=0, right=0):
        super().__init__(name, input_shapes)
        channels, height, width = check_channel_outputs(name, self.input_shapes, nb_outputs)
        out_h, out_w = height + top + bottom, width + left + right
        if out_h < 1 or out_w < 1:
            raise shape_error(name, f"padding (top {top}, bottom {bottom}, left {left}, "
                              f"right {right}) leaves nothing of a {height}x{width} input")
        self.output_shape = (channels, out_h, out_w)
        self.rows = _overlap(height, top, out_h)
        self.cols = _overlap(width, left, out_w)

    def forward(self, xs, train):
        x = concat_channels(xs)
        y = np.zeros((x.shape[0], *self.output_shape[1:], x.shape[3]), dtype=x.dtype)
        (in_rows, out_rows), (in_cols, out_cols) = self.rows, self.cols
        y[:, out_rows, out_cols] = x[:, in_rows, in_cols]
        return y

    def backward(self, dy):
        (in_rows, out_rows), (in_cols, out_cols) = self.rows, self.cols
        height, width = self.input_shapes[0][1:]
        dx = np.zeros((dy.shape[0], height, width, dy.shape[3]), dtype=dy.dtype)
        dx[:, in_rows, in_cols] = dy[:, out_rows, out_cols]
        return split_channels(dx, self.input_shapes)
