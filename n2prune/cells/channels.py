"""Cells that keep the channel count: their inputs concatenated along channels, and back.

Activation, BatchNorm, Dropout, Padding and Pool take several inputs as one
(C, H, W, N) array whose channels are the inputs' in order.
"""

import numpy as np

from n2prune.cells.registry import common_plane, shape_error


def check_channel_outputs(name, input_shapes, nb_outputs):
    """``(C, H, W)``: inputs concatenated along channels, which must give ``nb_outputs``.

    For cells that keep the channel count (Dropout, BatchNorm, Padding...).
    """
    height, width = common_plane(name, input_shapes)
    channels = sum(s[0] for s in input_shapes)
    if nb_outputs != channels:
        raise shape_error(name, f"NbOutputs={nb_outputs} must equal the number of "
                          f"input channels ({channels})")
    return channels, height, width


def concat_channels(xs):
    """One (C, H, W, N) array from a list of them (no copy for a single input)."""
    return xs[0] if len(xs) == 1 else np.concatenate(xs, axis=0)


def split_channels(dx, input_shapes):
    """``dx`` (C, H, W, N) cut back into one gradient per input."""
    if len(input_shapes) == 1:
        return [dx]
    cuts = np.cumsum([s[0] for s in input_shapes])[:-1]
    return [np.ascontiguousarray(part) for part in np.split(dx, cuts, axis=0)]
