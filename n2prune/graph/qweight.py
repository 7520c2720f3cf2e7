"""``QWeight=Prune`` and its ``QWeight.*`` keys -> a ``PruneCell`` quantizer.

Keys come from the cell section (directly or inherited) and its ConfigSection
(which wins), already routed by ``graph.config``. Names and defaults are
N2D2's (``PruneQuantizerCellGenerator``); ``HardZero`` and ``Kernel`` are
n2prune's.
"""

import logging

from n2prune.errors import IniError
from n2prune.ini import known_hint, values
from n2prune.prune.criteria import CRITERIA
from n2prune.prune.options import SCOPES
from n2prune.prune.patterns import PATTERNS
from n2prune.prune.prune_cell import PruneCell
from n2prune.prune.schedules import schedule_names

log = logging.getLogger("n2prune")

PRUNE_KEYS = {
    "PruningMode": ("prune_mode", values.enum("Identity", "Static", "Gradual"), "Identity"),
    "PruningFiller": ("prune_filler", values.enum("None", "Random", "IterNonStruct"), "Random"),
    "Threshold": ("threshold", values.as_float, 0.2),
    "Delta": ("delta", values.as_float, 0.001),
    "StartThreshold": ("start", values.as_float, 0.1),
    "StepSizeThreshold": ("stepsize", values.as_uint, 0),
    "GammaThreshold": ("gamma", values.as_float, 0.05),
    "HardZero": ("hard_zero", values.as_bool, False),
    "Kernel": ("kernel", values.enum("Auto", "Dense", "Sparse"), "Auto"),
    # What is kept, how weights are scored, when, across which cells
    # (docs/pruning-patterns.rst, -criteria, -schedules, -scope).
    "Pattern": ("pattern", values.enum(*PATTERNS), None),
    "N": ("n", values.as_uint, 2),
    "M": ("m", values.as_uint, 4),
    "BankSize": ("bank_size", values.as_uint, 64),
    "BankInterleave": ("bank_interleave", values.as_uint, 1),
    "BlockOutputs": ("block_outputs", values.as_uint, 4),
    "BlockInputs": ("block_inputs", values.as_uint, 1),
    "Criterion": ("criterion", values.enum(*CRITERIA), "Magnitude"),
    "Schedule": ("schedule", values.enum(*schedule_names()), "Gamma"),
    "ScheduleDelay": ("schedule_delay", values.as_uint, 0),
    "ScheduleLength": ("schedule_length", values.as_uint, 0),
    "RestoreSparsity": ("restore_sparsity", values.as_bool, False),
    "FixSparsity": ("fix_sparsity", values.as_bool, False),
    "Scope": ("scope", values.enum(*SCOPES), "Layer"),
    "MinSparsity": ("min_sparsity", values.as_float, 0.0),
    "MaxSparsity": ("max_sparsity", values.as_float, 1.0),
    "GammaPenalty": ("gamma_penalty", values.as_float, 0.0),
}
# Inherited by N2D2's PruneCell from its quantizer base class; they do nothing there.
IGNORED_PRUNE_KEYS = {
    "Range": values.as_uint,
    "QuantMode": values.enum("Default", "Symmetric", "Asymmetric", "FullRange"),
}


def attach_prune_quantizer(ini, cell, refs, batchnorm=None):
    """Build the cell's ``PruneCell`` and attach it (masks computed, pattern fitted).

    ``batchnorm``: the BatchNorm cell ``cell`` feeds, for the BN criteria.
    """
    quantizer, kwargs = _prune_quantizer(ini, cell.name, refs)
    quantizer.batchnorm = batchnorm
    try:
        cell.quantizer = quantizer
    except ValueError as exc:  # e.g. a bank size that does not divide the inputs
        raise IniError(f"{_blame(ini, cell.name, kwargs, str(exc))}: {exc}") from None


def _prune_quantizer(ini, cell_name, refs):
    """The ``PruneCell`` of a cell from its routed ``{key: (section, key)}`` refs, and
    ``{python name: (value, file:line)}`` of the keys given."""
    kwargs = {}
    for name, (section, key) in refs.items():
        if name in IGNORED_PRUNE_KEYS:
            ini.read(section, key, IGNORED_PRUNE_KEYS[name])
            log.info("notice: %s is accepted and ignored (N2D2's Prune quantizer does not use it)",
                     ini.where(section, key))
            continue
        if name not in PRUNE_KEYS:
            raise IniError(f"{ini.where(section, key)}: unknown Prune parameter "
                           f"{known_hint(name, PRUNE_KEYS, prefix='QWeight.')}")
        py_name, reader, _default = PRUNE_KEYS[name]
        kwargs[py_name] = (ini.read(section, key, reader), ini.where(section, key))
    try:
        return PruneCell(**{k: v for k, (v, _where) in kwargs.items()}), kwargs
    except ValueError as exc:
        where = _blame(ini, cell_name, kwargs, str(exc))
        raise IniError(f"{where}: {exc}") from None


def _blame(ini, cell_name, kwargs, message):
    """The location of the key a validation message is about (else the QWeight line).

    The longest parameter name the message mentions wins ("bank_size" over
    "pattern" in "pattern Bank: bank_size 4 ... does not divide").
    """
    named = [py_name for py_name in kwargs if py_name in message]
    if named:
        return kwargs[max(named, key=len)][1]
    return ini.where(cell_name, "QWeight")
