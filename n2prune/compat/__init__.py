"""Other pruning tools' Python APIs as thin facades over an n2prune Network.

``PrunerModule`` (Texas Instruments' edgeai-torchmodelopt, ``compat.ti``),
``Prune`` (Moffett AI's pruning tools, ``compat.moffett``) and
``OneShotChannelPruner`` (TinyNeuralNetwork, ``compat.tinynn``) take their
tool's arguments, under the tool's names and defaults, and configure
``PruneCell`` quantizers on the network's cells: the pruning itself is
n2prune's (patterns, criteria, schedules, channel groups; TI's per-epoch
schedules in ``prune.ti_epochs``, Moffett's masks in
``prune.patterns_moffett``). N2D2's own Python API is ``n2prune.quantizer
.PruneCell`` on a Network, which iterates over its cells. Moffett's and
TinyNN's ``ini_keys()`` give the same configuration as ``QWeight.*`` keys;
TI's schedule follows ``train()`` calls, which an INI run does not make
(docs/pruning-facades.rst).

This module holds what the facades share: the network of a model,
attaching the quantizers and writing their keyword arguments as INI values.
"""

import importlib

import numpy as np

from n2prune.prune.prune_cell import PruneCell
from n2prune.prune.prune_keys import PRUNE_KEYS
from n2prune.prune.pruned_cells import initialize_masks

__all__ = ["OneShotChannelPruner", "Prune", "PrunerModule", "attach_quantizers", "ini_values",
           "network_of"]

# The facades are imported on first use (PEP 562), so the facade modules
# can import the helpers below without an import cycle.
_FACADES = {"PrunerModule": "n2prune.compat.ti", "Prune": "n2prune.compat.moffett",
            "OneShotChannelPruner": "n2prune.compat.tinynn"}
# Python keyword of PruneCell -> its INI key (``QWeight.X``), from the one table.
_INI_NAMES = {key.attr: key.name for key in PRUNE_KEYS}


def __getattr__(name):
    if name in _FACADES:
        return getattr(importlib.import_module(_FACADES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def network_of(model):
    """The Network of ``model``: a ``Model``'s ``network``, or ``model`` itself."""
    from n2prune.train.model import Model  # the facades' own import stays light

    return model.network if isinstance(model, Model) else model


def as_rng(seed):
    """A ``numpy.random.Generator``: ``seed`` itself if it is one, else ``default_rng(seed)``."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def attach_quantizers(network, kwargs_by_cell, rng, log_period):
    """``cell.quantizer = PruneCell(**kwargs)`` for each cell name, then their masks (once).

    ``kwargs_by_cell``: ``{cell name: PruneCell keyword arguments}``. The
    masks are computed by ``initialize_masks`` with ``rng`` and
    ``log_period`` (stimuli per epoch) for these cells only, so quantizers
    already on other cells keep their state. Raises ValueError when a cell
    already has a quantizer: a facade owns the pruning of its cells.
    Returns ``{cell name: PruneCell}``.
    """
    cells = [network.cell(name) for name in kwargs_by_cell]
    taken = [c.name for c in cells if getattr(c, "quantizer", None) is not None]
    if taken:
        raise ValueError(f"cells {', '.join(taken)} already have a quantizer (QWeight=); "
                         "remove it or leave these cells out")
    for cell in cells:
        cell.quantizer = PruneCell(**kwargs_by_cell[cell.name])
    initialize_masks(network, rng, log_period, cells=cells)
    return {c.name: c.quantizer for c in cells}


def ini_values(kwargs):
    """``{"QWeight": "Prune", "QWeight.X": "value", ...}`` for PruneCell keyword arguments.

    Values are written as the INI reader reads them back exactly: booleans
    as 0/1, floats with ``repr`` (shortest round-trip form).
    """
    keys = {"QWeight": "Prune"}
    for py_name, value in kwargs.items():
        keys[f"QWeight.{_INI_NAMES[py_name]}"] = _ini_text(value)
    return keys


def _ini_text(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)
