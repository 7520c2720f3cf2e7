"""The memory a network will need, estimated from shapes before any array exists.

The graph knows each cell's parameter count and output shape from its keys
before the cell's constructor fills weights (``graph/charges``);
``MemoryBudget.charge`` turns them into bytes with ``cell_bytes`` (the one
formula) and refuses, naming the INI key, once the total exceeds
``--max-memory``. The estimate is for
training (the most a verb needs), so what ``check`` accepts ``train`` can
start.
"""

import math
import os
import re

from n2prune.errors import IniError

FLOAT_BYTES = 4
# float32 copies alive during training, per parameter: value, gradient,
# solver momentum, and the pruned cell's mask or effective weights.
PARAM_COPIES = 4
# Per output value and sample: the output kept for backward, its gradient,
# and what the activation function caches.
ACTIVATION_COPIES = 3
# Per workspace value and sample (Conv's im2col columns, Fc's features):
# the columns kept for backward, and their gradient.
WORKSPACE_COPIES = 2
# Per mapping entry (input channel x output): the int8 matrix, the cell's
# own copy, and the generator's temporaries (start flags, running sums).
CONNECTION_BYTES = 16
# A transformation holds its input and output in float32, plus temporaries
# (Rescale interpolates rows, then columns).
TRANSFORM_COPIES = 3

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)


def parse_memory(text):
    """``"8G"``, ``"512M"``, ``"1.5GiB"``, ``"1000000"`` -> bytes (binary units)."""
    match = _MEMORY.fullmatch(text.strip())
    if not match:
        raise ValueError(f"expected a size such as 8G or 512M, got {text!r}")
    value = float(match[1]) * _UNITS[match[2].upper()]
    if not 0 < value < 2**63:
        raise ValueError(f"expected a size between 1 byte and 8 EiB, got {text!r}")
    return int(value)


def default_max_memory():
    """Half the machine's physical memory (4 GiB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, OSError, ValueError):
        return 4 * 2**30


def format_bytes(nbytes):
    """``1536`` -> ``"1.5 KiB"``; exact ints in, short text out."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes} B" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def cell_bytes(nb_params, output_shape, batch_size, workspace=0, connections=0):
    """Training bytes of one cell: the single formula every estimate goes through.

    ``nb_params`` float32 parameters; ``output_shape`` (C, H, W) per sample;
    ``workspace`` float32 values per sample the cell keeps for backward
    (im2col columns, Fc features); ``connections`` int8 mapping entries.
    Python ints: a 10^9 x 10^9 layer is a big number, not an overflow.
    """
    per_sample = ACTIVATION_COPIES * math.prod(output_shape) + WORKSPACE_COPIES * workspace
    return (FLOAT_BYTES * (PARAM_COPIES * nb_params + batch_size * per_sample)
            + CONNECTION_BYTES * connections)


def transform_bytes(nb_images, shape_in, shape_out):
    """Bytes of one transformation applied to ``nb_images`` (H, W, C) images at once."""
    return FLOAT_BYTES * TRANSFORM_COPIES * nb_images * (math.prod(shape_in) + math.prod(shape_out))


class MemoryBudget:
    """Bytes charged per item (cell, data path) against ``limit`` bytes.

    Charging an item again replaces its estimate (an estimate from the keys,
    then the built cell's own numbers), so nothing is counted twice.
    """

    def __init__(self, limit=None, batch_size=1):
        self.limit = default_max_memory() if limit is None else int(limit)
        self.batch_size = batch_size
        self.items = {}

    @property
    def total(self):
        return sum(self.items.values())

    def charge(self, item, nbytes, where, detail):
        """Record ``nbytes`` for ``item``; refuse if the total goes over the limit.

        ``where`` is ``file:line [section] Key`` of the key that makes the
        item this large, ``detail`` says what the bytes are.
        """
        self.items[item] = nbytes
        if self.total > self.limit:
            raise IniError(
                f"{where}: needs about {format_bytes(nbytes)} to train ({detail}); "
                f"{format_bytes(self.total)} in all so far, more than --max-memory "
                f"{format_bytes(self.limit)}")
