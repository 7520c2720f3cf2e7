"""The registry of cell types (N2D2 ``Type=`` names) and the checks cells share.

``@register_cell("Conv")`` files a class in ``CELL_TYPES``. The helpers
below are the few things several cells do alike: name a shape error,
check input shapes, concatenate inputs along channels and split the
gradient back.
"""

import numpy as np

from n2prune.errors import ShapeError

CELL_TYPES = {}


def register_cell(type_name):
    """Class decorator: ``CELL_TYPES[type_name] = cls`` and ``cls.type_name``."""

    def decorate(cls):
        CELL_TYPES[type_name] = cls
        cls.type_name = type_name
        return cls

    return decorate


def shape_error(name, message):
    """A ``ShapeError`` whose one-line message starts with ``[name]``."""
    return ShapeError(f"[{name}] {message}")


def common_plane(name, input_shapes):
    """``(H, W)`` shared by all inputs (C, H, W), else ``ShapeError``."""
    if not input_shapes:
        raise shape_error(name, "the cell has no input")
    planes = {tuple(s[1:]) for s in input_shapes}
    if len(planes) != 1:
        sizes = ", ".join(f"{h}x{w}" for _, h, w in input_shapes)
        raise shape_error(name, f"inputs must have the same height x width, got {sizes}")
    return planes.pop()


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


def as_pair(name, key, value):
    """``(h, w)`` ints from an int or a 2-sequence (Python order: height, width)."""
    if np.ndim(value) == 0:
        value = (value, value)
    if len(value) != 2:
        raise shape_error(name, f"{key} must be an int or an (h, w) pair, got {value}")
    return int(value[0]), int(value[1])


def set_grad(param, grad):
    """Store ``grad`` as ``param.grad`` in the parameter's dtype (float32 or float64)."""
    param.grad = np.ascontiguousarray(grad, dtype=param.value.dtype)


def check_inputs(name, xs, input_shapes):
    """``ShapeError`` unless each ``xs[k]`` (C, H, W, N) has the declared (C, H, W) of input k."""
    if len(xs) != len(input_shapes):
        raise shape_error(name, f"got {len(xs)} inputs, expected {len(input_shapes)}")
    for k, (x, shape) in enumerate(zip(xs, input_shapes)):
        if x.ndim != 4 or x.shape[:3] != shape:
            raise shape_error(name, f"input {k} has (C, H, W, N) shape {x.shape}, "
                              f"expected ({shape[0]}, {shape[1]}, {shape[2]}, N)")
