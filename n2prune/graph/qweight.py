"""``QWeight=Prune`` and its ``QWeight.*`` keys -> a ``PruneCell`` quantizer.

Keys come from the cell section (directly or inherited), its ConfigSection
(which wins) and ``[Pruning]``, already routed by ``graph.config``. They are
read against ``prune.prune_keys.PRUNE_KEYS`` (names, kinds and docs; the
defaults are the constructors'); a value the quantizer refuses is reported at
the line of the key it blames.
"""

import logging

from n2prune.errors import IniError
from n2prune.graph.keys import construct, read_keys
from n2prune.ini import values
from n2prune.prune.prune_cell import PruneCell
from n2prune.prune.prune_keys import PRUNE_KEYS
from n2prune.registry import unknown_message

log = logging.getLogger("n2prune")

QWEIGHT = "QWeight."

# Inherited by N2D2's PruneCell from its quantizer base class; they do nothing there.
IGNORED_PRUNE_KEYS = {
    "Range": values.as_uint,
    "QuantMode": values.enum("Default", "Symmetric", "Asymmetric", "FullRange"),
}


def attach_prune_quantizer(ini, cell, refs, batchnorm=None):
    """Build the cell's ``PruneCell`` and attach it, its pattern checked on the cell's
    weights (``initialize_masks`` computes the masks, once, with the run's generator).

    ``refs``: ``{key: (section, key)}`` of the routed ``QWeight.*`` keys;
    ``batchnorm``: the BatchNorm cell ``cell`` feeds, for the BN criteria.
    """
    refs = dict(refs)
    for name in list(refs):
        section, key = refs[name]
        if name in IGNORED_PRUNE_KEYS:
            del refs[name]
            ini.read(section, key, IGNORED_PRUNE_KEYS[name])
            log.info("notice: %s is accepted and ignored (N2D2's Prune quantizer does not use "
                     "it)", ini.where(section, key))
        elif name not in PRUNE_KEYS:  # named as written, QWeight. included
            known = [f"{QWEIGHT}{n}" for n in PRUNE_KEYS.names()]
            message = unknown_message(f"Prune parameter {QWEIGHT}{name}", QWEIGHT + name, known)
            raise IniError(message, ini.where(section, key))
    kwargs, located = read_keys(ini, refs, PRUNE_KEYS)

    def build(**kwargs):
        quantizer = PruneCell(**kwargs)
        quantizer.check_shapes([w.shape for w in cell.weight_arrays()])
        quantizer.batchnorm = batchnorm
        return quantizer
    cell.quantizer = construct(build, kwargs, located, ini.where(cell.name, "QWeight"))
