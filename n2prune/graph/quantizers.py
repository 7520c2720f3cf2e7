"""``QWeight=Prune`` and its ``QWeight.*`` keys -> a ``PruneCell`` quantizer.

Keys come from the cell section (directly or inherited) and its ConfigSection
(which wins), already routed by ``graph.config``. Names and defaults are
N2D2's (``PruneQuantizerCellGenerator``); ``HardZero`` and ``Kernel`` are
n2prune's.
"""

import logging

from n2prune.errors import IniError
from n2prune.ini import did_you_mean, values
from n2prune.prune.quantizer import PruneCell

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
}
# Inherited by N2D2's PruneCell from its quantizer base class; they do nothing there.
IGNORED_PRUNE_KEYS = {
    "Range": values.as_uint,
    "QuantMode": values.enum("Default", "Symmetric", "Asymmetric", "FullRange"),
}


def build_prune_quantizer(ini, cell_name, refs):
    """The ``PruneCell`` of a cell from its routed ``{key: (section, key)}`` refs."""
    kwargs = {}
    for name, (section, key) in refs.items():
        if name in IGNORED_PRUNE_KEYS:
            ini.read(section, key, IGNORED_PRUNE_KEYS[name])
            log.info("notice: %s is accepted and ignored (N2D2's Prune quantizer does not use it)",
                     ini.where(section, key))
            continue
        if name not in PRUNE_KEYS:
            hint = did_you_mean(name, sorted(PRUNE_KEYS))
            extra = f"did you mean QWeight.{hint}? " if hint else ""
            raise IniError(f"{ini.where(section, key)}: unknown Prune parameter ({extra}known: "
                           f"{', '.join(PRUNE_KEYS)})")
        py_name, reader, _default = PRUNE_KEYS[name]
        kwargs[py_name] = (ini.read(section, key, reader), ini.where(section, key))
    try:
        return PruneCell(**{k: v for k, (v, _where) in kwargs.items()})
    except ValueError as exc:
        where = _blame(ini, cell_name, kwargs, str(exc))
        raise IniError(f"{where}: {exc}") from None


def _blame(ini, cell_name, kwargs, message):
    """The location of the key a validation message is about (else the QWeight line)."""
    for py_name, (_value, where) in kwargs.items():
        if py_name in message:
            return where
    return ini.where(cell_name, "QWeight")
