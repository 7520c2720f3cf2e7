"""The registry of cell types (N2D2 ``Type=`` names), the keys they share, the checks cells share.

``@CELL_TYPES.register("Conv", Key(...), ...)`` files a class under its
``Type=`` name with the table of its INI keys (``n2prune.registry``): each
key names a constructor keyword, whose default is the constructor's. A
cell class lists in ``config_keys`` the keys N2D2 reads only from a
``ConfigSection`` (its cell *parameters*: ``NoBias``, ``Dropout``...). Two
kinds are the graph's to read: ``dims`` (a 2-D size N2D2 spells several
ways, given here as ``(h, w)``) and ``MAPPINGS`` (one 0/1 matrix per input,
from the ``Mapping*`` keys).

The helpers below are the few things several cells do alike: name a shape
error, check input shapes, concatenate inputs along channels and split the
gradient back.
"""

import numpy as np

from n2prune.cells.activations import ACTIVATIONS
from n2prune.cells.fillers import FILLERS
from n2prune.errors import ShapeError
from n2prune.kernels import conv_out_size
from n2prune.registry import BOOL, SIZE, UINT, Key, Kind, Registry, choice

CELL_TYPES = Registry("Type")

MAPPINGS = Kind("mappings")
"""One connection matrix per input (``None``: full), from the ``Mapping*`` keys."""


def key_names(keys):
    """The INI names of ``keys``, for a class's ``config_keys``."""
    return tuple(key.name for key in keys)


def dims(item):
    """A 2-D size of ``item`` values, an ``(h, w)`` pair in Python (``KernelDims=W H``...)."""
    return Kind("dims", item=item)


NB_OUTPUTS = Key("NbOutputs", "nb_outputs", SIZE, "output channels")
# The sliding window of Conv and Pool (a Pool's stride defaults to 1, as N2D2's, not to its window).
STRIDE = Key("StrideDims", "stride", dims(SIZE), "step, W H")
PADDING = Key("PaddingDims", "padding", dims(UINT), "zero padding on each side, W H")
# The kernel of Conv and Deconv.
KERNEL = Key("KernelDims", "kernel", dims(SIZE), "kernel, W H (one value: square)")
DILATION = Key("DilationDims", "dilation", dims(SIZE), "dilation, W H")
ACTIVATION = Key("ActivationFunction", "activation", choice(ACTIVATIONS),
                 "activation applied to the outputs; none: identity")
MAPPING = Key("Mapping", "mappings", MAPPINGS,
              "which input channels feed which outputs (Mapping.*, Mapping(P)=); none: all")
# The keys of the cells that learn weights (Conv, Fc).
FILLER_KEYS = (
    Key("WeightsFiller", "weights_filler", choice(FILLERS), "weights initialiser; none: N2D2's Normal(0, 0.05)"),
    Key("BiasFiller", "bias_filler", choice(FILLERS), "biases initialiser; none: N2D2's Normal(0, 0.05)"),
)
WEIGHT_PARAMETERS = (Key("NoBias", "no_bias", BOOL, "ConfigSection parameter; 1: the cell has no biases"),)


def shape_error(name, message):
    """A ``ShapeError`` whose one-line message starts with ``[name]``."""
    return ShapeError(f"[{name}] {message}")


def window_plane(name, input_shapes, nb_outputs, window, stride, padding, dilation=(1, 1)):
    """``(H, W)`` of a sliding window (Conv kernel, Pool window) over the inputs' plane."""
    height, width = common_plane(name, input_shapes)
    if nb_outputs < 1:
        raise shape_error(name, f"NbOutputs must be >= 1, got {nb_outputs}")
    try:
        return tuple(conv_out_size(size, *args) for size, *args in zip(
            (height, width), window, stride, padding, dilation))
    except ValueError as exc:
        raise shape_error(name, f"input {height}x{width}: {exc}") from None


def common_plane(name, input_shapes):
    """``(H, W)`` shared by all inputs (C, H, W), else ``ShapeError``."""
    if not input_shapes:
        raise shape_error(name, "the cell has no input")
    planes = {tuple(s[1:]) for s in input_shapes}
    if len(planes) != 1:
        sizes = ", ".join(f"{h}x{w}" for _, h, w in input_shapes)
        raise shape_error(name, f"inputs must have the same height x width, got {sizes}")
    return planes.pop()


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


def window_geometry(name, kernel, stride, padding, dilation):
    """``(kernel, stride, padding, dilation)`` of a Conv or Deconv as checked (h, w) pairs."""
    return tuple(as_pair(name, key, value) for key, value in (
        ("kernel", kernel), ("stride", stride), ("padding", padding), ("dilation", dilation)))


def check_mappings(name, input_shapes, nb_outputs, mappings):
    """One mapping per input (None: full), each a ``(C_k, nb_outputs)`` array, else ``ShapeError``."""
    if mappings is None:
        return [None] * len(input_shapes)
    if len(mappings) != len(input_shapes):
        raise shape_error(name, f"{len(mappings)} mappings for {len(input_shapes)} inputs")
    checked = []
    for (channels, _, _), mapping in zip(input_shapes, mappings):
        if mapping is not None:
            mapping = np.asarray(mapping)
            if mapping.shape != (channels, nb_outputs):
                raise shape_error(name, f"mapping of shape {mapping.shape}, expected "
                                  f"({channels}, {nb_outputs}) (input channels x outputs)")
        checked.append(mapping)
    return checked


def check_inputs(name, xs, input_shapes):
    """``ShapeError`` unless each ``xs[k]`` (C, H, W, N) has the declared (C, H, W) of input k."""
    if len(xs) != len(input_shapes):
        raise shape_error(name, f"got {len(xs)} inputs, expected {len(input_shapes)}")
    for k, (x, shape) in enumerate(zip(xs, input_shapes)):
        if x.ndim != 4 or x.shape[:3] != shape:
            raise shape_error(name, f"input {k} has (C, H, W, N) shape {x.shape}, "
                              f"expected ({shape[0]}, {shape[1]}, {shape[2]}, N)")
