"""Moffett AI's ``Prune`` (pruningTools2, ``pytorch_pruning.Prune``) over an n2prune Network.

Moffett counts ``prune()`` calls, one per optimizer step, and prunes each
listed tensor along Zhu & Gupta's cubic ramp, bank-balanced (``balance='fix'``)
or not (pruningTools2's ``pytorch_pruning``). Here the same arguments
configure ``PruneCell`` quantizers, and ``prune()`` steps them. No pruning
logic lives here.
"""

import logging
import math

import numpy as np

from n2prune.cells import Conv, Fc
from n2prune.compat import as_rng, attach_quantizers, ini_values
from n2prune.prune.pruned_cells import step_quantizers

log = logging.getLogger("n2prune")

# balance -> QWeight.Pattern
BALANCES = {"fix": "Bank", "none": "Unstructured"}
# Moffett's banks: 64 inputs; a 1x1 conv or Fc cuts 512-input blocks into 8
# interleaved sub-banks of 64.
BANK_SIZE = 64
POINTWISE_INTERLEAVE = 8
# balance='fix' drops tensors with fewer input channels (typically the first conv).
MIN_BANK_INPUTS = 4


class Prune:
    """Moffett's ``Prune(model, pretrain_step, sparse_step, frequency, prune_dict, ...)``.

    ``prune_dict``: ``{cell name: target sparsity}`` over Conv and Fc cells
    (required, as Moffett). ``pretrain_step``, ``sparse_step`` and
    ``frequency`` count ``prune()`` calls; ``batch_size`` (stimuli per call)
    turns them into the quantizers' stimuli. The k-th mask update, after
    ``pretrain_step + k·frequency`` calls, prunes s_f + (s_0 − s_f)(1 − k/K)³
    with K = sparse_step // frequency, s_0 = 0 (or the loaded zero fraction
    with ``restore_sparsity``); ``fix_sparsity`` freezes the loaded zeros.
    ``balance``: ``'fix'`` (bank-balanced, ``bank_for``) or ``'none'``.
    ``seed``: int or ``numpy.random.Generator`` for ``initialize_masks``.

    Raises ValueError for a missing ``prune_dict``, a name that is not a
    Conv or Fc cell (listing them), an unknown ``balance``, or a ramp with
    no update (``sparse_step < frequency`` without ``fix_sparsity``).

    Attributes: ``pruned_cells`` (names, network order), ``dropped`` (cells
    left out by ``balance='fix'``), ``quantizers`` (``{name: PruneCell}``),
    ``step`` (``prune()`` calls so far).
    """

    def __init__(self, network, pretrain_step=0, sparse_step=0, frequency=100, prune_dict=None,
                 restore_sparsity=False, fix_sparsity=False, balance="fix", *, batch_size,
                 seed=0):
        _check_steps(pretrain_step, sparse_step, frequency, batch_size, fix_sparsity)
        pretrain_step, sparse_step, frequency, batch_size = map(
            int, (pretrain_step, sparse_step, frequency, batch_size))
        if balance not in BALANCES:
            raise ValueError(f"balance must be 'fix' or 'none', got {balance!r}")
        targets = _checked_targets(network, prune_dict)
        self.dropped = []
        if balance == "fix":
            # As Moffett: banks of input channels need at least 4 of them.
            self.dropped = [n for n in targets if min_inputs(network.cell(n)) < MIN_BANK_INPUTS]
            if self.dropped:
                log.info("balance='fix': %s left dense (fewer than %d inputs)",
                         ", ".join(self.dropped), MIN_BANK_INPUTS)
        common = {
            "prune_mode": "Gradual", "pattern": BALANCES[balance], "criterion": "Magnitude",
            "schedule": "Cubic", "start": 0.0, "stepsize": frequency * batch_size,
            "schedule_delay": pretrain_step * batch_size,
            "schedule_length": sparse_step * batch_size,
            "restore_sparsity": bool(restore_sparsity), "fix_sparsity": bool(fix_sparsity),
            # Moffett multiplies the weights by the mask after every step.
            "hard_zero": True,
        }
        self._kwargs = {name: _cell_kwargs(network.cell(name), common, target)
                        for name, target in targets.items() if name not in self.dropped}
        self.network, self.batch_size, self.step = network, batch_size, 0
        self.pruned_cells = list(self._kwargs)
        self.quantizers = attach_quantizers(network, self._kwargs, as_rng(seed), 0)

    def prune(self):
        """One Moffett step: call once after every optimizer (solver) step.

        Runs ``step_quantizers(network, batch_size)``, which steps every
        quantizer of the network: do not also call it yourself. Returns the
        names of the cells whose masks changed.
        """
        self.step += 1
        return [cell.name for cell in step_quantizers(self.network, self.batch_size)]

    def sparsity(self):
        """``({cell: zero fraction}, total zero fraction)`` of the masked weights ``W·M``.

        As Moffett's: zeros counted in the weights the network uses, per
        listed cell and over all of them together.
        """
        layers, zeros, total = {}, 0, 0
        for name, q in self.quantizers.items():
            arrays = [q.get_quantized_weights(k) for k in range(len(q.weights))]
            size = sum(a.size for a in arrays)
            cell_zeros = sum(a.size - np.count_nonzero(a) for a in arrays)
            layers[name] = cell_zeros / size
            zeros, total = zeros + cell_zeros, total + size
        return layers, (zeros / total if total else 0.0)

    def check(self):
        """``{cell: [violations]}``: each mask against its pattern (empty lists when deployable)."""
        report = {}
        for name, q in self.quantizers.items():
            lines = []
            for k in range(len(q.masks)):
                prefix = f"weights[{k}]: " if len(q.masks) > 1 else ""
                lines += [prefix + line for line in q.violations(k)]
            report[name] = lines
        return report

    def ini_keys(self):
        """``{cell: {"QWeight": "Prune", "QWeight.X": "value"}}``: the same pruning in INI.

        ``StepSizeThreshold``, ``ScheduleDelay`` and ``ScheduleLength`` are
        the step counts times ``batch_size``.
        """
        return {name: ini_values(kwargs) for name, kwargs in self._kwargs.items()}


def _cell_kwargs(cell, common, target):
    """``common`` PruneCell arguments with the cell's target and, for Bank, its bank."""
    kwargs = dict(common, threshold=float(target))
    if common["pattern"] == "Bank":
        kwargs["bank_size"], kwargs["bank_interleave"] = bank_for(cell)
    return kwargs


def bank_for(cell):
    """``(bank_size, interleave)`` of Moffett's bank-balanced pattern for a Conv or Fc cell.

    I is the gcd of the input axes of the cell's weight tensors (one per
    cell input), so one bank fits them all. A 1x1 Conv or an Fc whose I is a multiple
    of 512 gets Moffett's 64 x 8 interleaved sub-banks; otherwise the bank
    is the largest divisor of I up to 64 (I itself when I <= 64, 64 when it
    divides I). Moffett requires multiples of 64; this fits any I.
    """
    inputs = math.gcd(*(w.shape[1] for w in cell.weight_arrays()))
    pointwise = isinstance(cell, Fc) or tuple(cell.kernel) == (1, 1)
    if pointwise and inputs % (BANK_SIZE * POINTWISE_INTERLEAVE) == 0:
        return BANK_SIZE, POINTWISE_INTERLEAVE
    return max(d for d in range(1, min(BANK_SIZE, inputs) + 1) if inputs % d == 0), 1


def min_inputs(cell):
    """Smallest input axis (channels for Conv, features for Fc) over the cell's weight tensors."""
    return min(w.shape[1] for w in cell.weight_arrays())


def _checked_targets(network, prune_dict):
    """``prune_dict`` in network order, every name a Conv or Fc cell (else ValueError)."""
    known = [c.name for c in network.cells if isinstance(c, (Conv, Fc))]
    if prune_dict is None:
        raise ValueError("prune_dict is required: {cell name: target sparsity}; "
                         f"Conv and Fc cells: {', '.join(known)}")
    unknown = [name for name in prune_dict if name not in known]
    if unknown:
        raise ValueError(f"prune_dict names {', '.join(map(repr, unknown))}, not Conv or Fc "
                         f"cells of the network; known: {', '.join(known)}")
    return {name: prune_dict[name] for name in known if name in prune_dict}


def _check_steps(pretrain_step, sparse_step, frequency, batch_size, fix_sparsity):
    for name, value, low in (("pretrain_step", pretrain_step, 0), ("sparse_step", sparse_step, 0),
                             ("frequency", frequency, 1), ("batch_size", batch_size, 1)):
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value}")
    if sparse_step < frequency and not fix_sparsity:
        # Moffett's K = sparse_step // frequency would be 0: no mask update ever.
        raise ValueError(f"sparse_step={sparse_step} < frequency={frequency}: the ramp would "
                         "never update the masks (K = sparse_step // frequency = 0)")
