"""Cells: plain classes with ``forward``/``backward`` on (C, H, W, N) activations.

``CELL_TYPES`` (a ``Registry``) maps each N2D2 ``Type=`` name to its class,
with the table of its INI keys; every module below files its class there
with ``@CELL_TYPES.register`` when imported.
"""

from n2prune.cells.activation_cell import Activation
from n2prune.cells.batchnorm import BatchNorm
from n2prune.cells.conv import Conv
from n2prune.cells.deconv import Deconv
from n2prune.cells.dropout import Dropout
from n2prune.cells.elemwise import ElemWise
from n2prune.cells.fc import Fc
from n2prune.cells.normalize import Normalize
from n2prune.cells.padding import Padding
from n2prune.cells.pool import Pool
from n2prune.cells.registry import CELL_TYPES
from n2prune.cells.softmax import Softmax
from n2prune.cells.target_bias import TargetBias
from n2prune.cells.weighted import WeightCell

__all__ = [
    "CELL_TYPES",
    "Activation",
    "BatchNorm",
    "Conv",
    "Deconv",
    "Dropout",
    "ElemWise",
    "Fc",
    "Normalize",
    "Padding",
    "Pool",
    "Softmax",
    "TargetBias",
    "WeightCell",
]
