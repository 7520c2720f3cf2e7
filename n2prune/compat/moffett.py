"""Moffett AI's ``Prune`` (pruningTools2 ``pytorch_pruning.Prune`` and its Python version) over a Network.

Moffett counts ``prune()`` calls t, one per optimizer step. At
t = pretrain_step + k·frequency (0 < k <= K = sparse_step // frequency) it
prunes each listed tensor to s_f + (s_0 − s_f)(1 − k/K)³ among the weights
it still keeps, with the mask rule of its deploy device
(``prune.patterns_moffett``), and after every call it multiplies the
tensors by their masks. Here each listed tensor gets a ``PruneCell``
(Gradual, Cubic, HardZero, ticked once per ``prune()``): on its cell when
the key names all of a Conv's or Fc's weights, else held by the facade
(biases, BatchNorm parameters), whose zeros are then the stored values'.
No pruning logic lives here. docs/pruning-facades.rst lists every argument.
"""

import logging
from pathlib import Path
from types import MappingProxyType

import numpy as np

from n2prune.cells import Conv, Fc
from n2prune.compat import as_rng, attach_quantizers, ini_values, network_of
from n2prune.notices import notice_once
from n2prune.prune.patterns_moffett import ASIC_BLOCK, FPGA_GROUPS, qualifies
from n2prune.prune.prune_cell import PruneCell

log = logging.getLogger("n2prune")

# balance (pruningTools2) -> deploy_device (the Python version)
BALANCES = {"fix": "asic", "none": "none"}
# deploy_device -> QWeight.Pattern of its 2-D and 4-D tensors (1-D ones: MoffettUnstructured)
DEVICES = {"none": "MoffettUnstructured", "asic": "MoffettASIC", "fpga": "MoffettFPGA"}


class Entry:
    """One ``prune_dict`` key: its ``params`` (Param list), their ``cell`` and ``target``;
    ``quantizer`` is the cell's own (``attached``) or one the facade holds."""

    def __init__(self, name, cell, params, target):
        self.name, self.cell, self.params, self.target = name, cell, params, float(target)
        self.quantizer, self.attached = None, False

    def arrays(self):
        """The tensors as the quantizer sees them: 1-D ones as one row (1, n)."""
        return [p.value.reshape(1, -1) if p.value.ndim == 1 else p.value for p in self.params]


class Prune:
    """Moffett's ``Prune(model, pretrain_step, sparse_step, frequency, prune_dict, ...)``.

    Arguments keep Moffett's names and defaults (pruningTools2's order; the
    Python version's ``current_step``, ``deploy_device``, ``group_size``,
    ``fixed_mask`` and ``mask`` by keyword). ``model``: a Network or a
    ``Model``. ``prune_dict`` keys: parameter names as ``model.named_parameters()``
    gives them (``conv2.weights[0]``, ``conv2.biases``), torch's ``conv2.weight``
    and ``conv2.bias``, or a cell name (all its weights). ``deploy_device``
    (None: from ``balance``, 'fix' is 'asic') chooses the mask rule;
    ``group_size`` the ASIC bank. ``current_step`` resumes the count;
    ``mask`` (a dict or an ``.npz`` path of masks, keyed as ``masks()``) resumes
    the masks, ``fixed_mask`` too and freezes them. ``prune_device`` is
    accepted with a notice (n2prune prunes on the CPU). ``seed``: int or
    ``numpy.random.Generator``.

    A key naming nothing is skipped with a warning, as Moffett ignores it.
    Raises ValueError for a step count that is not a whole number, an unknown
    ``balance`` or ``deploy_device``, a mask file missing a tensor.
    """

    def __init__(self, model, pretrain_step=0, sparse_step=0, frequency=100,
                 prune_dict=MappingProxyType({}), restore_sparsity=False, fix_sparsity=False,
                 balance="fix", prune_device="default", *, current_step=0, deploy_device=None,
                 group_size=64, fixed_mask=None, mask=None, seed=0):
        self.network = network_of(model)
        self.pretrain_step, self.sparse_step, self.frequency, self.step = _steps(
            pretrain_step, sparse_step, frequency, current_step)
        self.device = _device(balance, deploy_device)
        self.group_size = int(group_size)
        if prune_device != "default":
            notice_once(log, f"prune_device={prune_device!r} has no effect: n2prune prunes on "
                             "the CPU")
        given = _read_masks(fixed_mask if fixed_mask is not None else mask)
        self.fix_sparsity = bool(fix_sparsity) or fixed_mask is not None
        self.restore_sparsity = bool(restore_sparsity)
        self.entries, self.dropped = self._entries(prune_dict)
        self._attach(as_rng(seed))
        for entry in self.entries:
            self._resume(entry, given)

    # -- Moffett's API -------------------------------------------------------------
    def prune(self):
        """One Moffett step, after each solver step: masks held, then updated when due.

        Ticks only this facade's quantizers (quantizers set by the INI file
        keep their own clocks: step them with ``step_quantizers``). Returns
        the names whose masks changed.
        """
        self.step += 1
        changed = []
        for entry in self.entries:
            q = entry.quantizer
            q.after_update([None if p.active is not None else a
                            for p, a in zip(entry.params, q.weights)])
            if q.update(1):
                changed.append(entry.name)
            if not entry.attached:  # its zeros are written in place: derived copies go stale
                for param in entry.params:
                    param.changed()
        return changed

    def sparsity(self):
        """``(layer_sparse_rate, total_sparse_rate)``: zero fractions of the stored tensors,
        per ``prune_dict`` key and over all of them, as Moffett's."""
        layers, zeros, total = {}, 0, 0
        for entry in self.entries:
            size = sum(p.value.size for p in entry.params)
            entry_zeros = sum(p.value.size - np.count_nonzero(p.value) for p in entry.params)
            layers[entry.name] = float(entry_zeros / size)
            zeros, total = zeros + entry_zeros, total + size
        return layers, (zeros / total if total else 0.0)

    def check(self, every_block=False):
        """``(layer_sparse_qualify, total_sparse_qualify)``: per key, whether every row of the
        deploy pattern keeps at most its share of non-zeros at the *target* sparsity (so
        False until the target is reached), and all of them. ``every_block``: Moffett
        keeps only the last full block's answer of a series; this checks them all."""
        layers = {}
        for entry in self.entries:
            device = self.device if all(p.value.ndim in (2, 4) for p in entry.params) else "none"
            layers[entry.name] = all(qualifies(p.value, entry.target, device, self.group_size,
                                               every_block) for p in entry.params)
        return layers, all(layers.values())

    # -- n2prune's additions -----------------------------------------------------
    @property
    def pruned_cells(self):
        """Names of the cells whose quantizer this facade set, network order."""
        return [e.cell.name for e in self.entries if e.attached]

    @property
    def quantizers(self):
        """``{prune_dict key: PruneCell}`` (on the cell, or held here)."""
        return {e.name: e.quantizer for e in self.entries}

    def masks(self):
        """``{parameter name: mask}`` (0/1 arrays of the parameters' shapes), for ``mask=``."""
        return {p.name: m.reshape(p.value.shape) for e in self.entries
                for p, m in zip(e.params, e.quantizer.masks)}

    def ini_keys(self, batch_size=1):
        """``{cell: {"QWeight.X": "value"}}``: the same pruning in INI, steps times
        ``batch_size`` (an INI run counts stimuli). Only whole cells' weights have keys."""
        loose = [e.name for e in self.entries if not e.attached]
        if loose:
            raise ValueError(f"{', '.join(loose)}: no QWeight key prunes a bias or a part of a "
                             "cell's weights")
        scaled = {"stepsize", "schedule_delay", "schedule_length"}
        return {e.cell.name: ini_values({k: v * batch_size if k in scaled else v
                                         for k, v in self._kwargs(e).items()})
                for e in self.entries}

    # -- set-up ------------------------------------------------------------------
    def _entries(self, prune_dict):
        """Entries of ``prune_dict`` in its order, and the names Moffett drops for the device."""
        entries, dropped, seen = [], [], {}
        for name, target in prune_dict.items():
            found = named_params(self.network, name)
            if found is None:
                log.warning("prune_dict names %r, no parameter of the network: ignored, as "
                            "Moffett does", name)
                continue
            cell, params = found
            for param in params:
                if seen.setdefault(param.name, name) != name:
                    raise ValueError(f"prune_dict names {param.name} twice: as "
                                     f"{seen[param.name]!r} and as {name!r}")
            if any(_dropped(p.value.shape, self.device, self.group_size) for p in params):
                dropped.append(name)
                log.info("For %s, the parameter %s cannot be balanced pruned and will be "
                         "deleted from the prune_dict.", self.device, name)
                continue
            entries.append(Entry(name, cell, params, target))
        return entries, dropped

    def _kwargs(self, entry):
        moving = not self.fix_sparsity and self.sparse_step >= self.frequency
        pattern = DEVICES[self.device] if all(p.value.ndim in (2, 4) for p in entry.params) \
            else "MoffettUnstructured"
        kwargs = {"prune_mode": "Gradual" if moving else "Static", "pattern": pattern,
                  "criterion": "Magnitude", "schedule": "Cubic", "start": 0.0,
                  "threshold": entry.target, "stepsize": self.frequency,
                  "schedule_delay": self.pretrain_step, "schedule_length": self.sparse_step,
                  "restore_sparsity": self.restore_sparsity, "fix_sparsity": self.fix_sparsity,
                  "hard_zero": True, "bank_size": self.group_size}
        if not moving and not self.fix_sparsity:
            # K = 0: Moffett never updates; the masks stay at s_0 (0, or the restored zeros).
            kwargs["threshold"] = 0.0
        return kwargs

    def _attach(self, rng):
        """Cell quantizers for the keys naming all of a free Conv's or Fc's weights; the others
        (biases, parts of a cell) get a quantizer held here, on their arrays."""
        whole = {}
        for entry in self.entries:
            cell = entry.cell
            if (isinstance(cell, (Conv, Fc)) and entry.params == list(cell.weights)
                    and cell.quantizer is None and cell.name not in whole):
                whole[cell.name] = entry
        quantizers = attach_quantizers(self.network, {n: self._kwargs(e) for n, e in whole.items()},
                                       rng, 0)
        for entry in self.entries:
            if whole.get(entry.cell.name) is entry:
                entry.quantizer, entry.attached = quantizers[entry.cell.name], True
            else:
                entry.quantizer = PruneCell(**self._kwargs(entry))
                entry.quantizer.initialize(entry.arrays(), rng, 0)

    def _resume(self, entry, given):
        """The count at ``current_step`` and the masks: given, the restored or frozen zeros
        (W != 0), or ones; Moffett recomputes none of them until the next update."""
        q, arrays = entry.quantizer, entry.quantizer.weights
        if given is not None:
            masks = _given_masks(given, entry)
        elif self.restore_sparsity or self.fix_sparsity:
            masks = [(a != 0).astype(np.uint8) for a in arrays]
        else:
            masks = [np.ones(a.shape, dtype=np.uint8) for a in arrays]
        elapsed = self.step - self.pretrain_step
        total = self.sparse_step // self.frequency
        fire = min(total, elapsed // self.frequency) if elapsed > 0 and q.clock is not None else 0
        state = {f"mask{k}": m for k, m in enumerate(masks)}
        state.update(target=q.schedule.target(fire), schedule_start=q.schedule.start,
                     fire_index=fire, counter=elapsed % self.frequency if elapsed > 0 else 0,
                     delay_left=max(0, -elapsed))
        q.load_state(state)
        q.after_update(q.weights)  # W *= M once: the solver may skip masked entries from now on


def named_params(network, name):
    """``(cell, [Param])`` a ``prune_dict`` key names, or None: a parameter name
    (``conv2.weights[0]``), torch's ``conv2.weight`` / ``conv2.bias`` (a cell's weight or
    bias params), or a Conv or Fc cell's name (its weights)."""
    for cell in network.cells:
        for param in cell.params():
            if param.name == name:
                return cell, [param]
    cell_name, _, suffix = name.rpartition(".")
    roles = {"weight": "weights", "bias": "biases"}
    if cell_name in network.by_name and suffix in roles:
        cell = network.by_name[cell_name]
        params = [p for p in cell.params() if p.role == roles[suffix]]
        return (cell, params) if params else None
    cell = network.by_name.get(name)
    if isinstance(cell, (Conv, Fc)):
        return cell, list(cell.weights)
    return None


def _dropped(shape, device, group_size):
    """Moffett's ``_prepare``: FPGA drops Convs with fewer than 4 inputs, ASIC 1x1 Convs
    with fewer than 512 // group_size."""
    if len(shape) != 4:
        return False
    if device == "fpga":
        return shape[1] < FPGA_GROUPS
    return device == "asic" and shape[2:] == (1, 1) and shape[1] < ASIC_BLOCK // group_size


def _device(balance, deploy_device):
    if deploy_device is None:
        if balance not in BALANCES:
            raise ValueError(f"balance must be 'fix' or 'none', got {balance!r}")
        return BALANCES[balance]
    if deploy_device not in DEVICES:
        raise ValueError(f"deploy_device must be one of {', '.join(map(repr, DEVICES))}, "
                         f"got {deploy_device!r}")
    return deploy_device


def _steps(*counts):
    names = ("pretrain_step", "sparse_step", "frequency", "current_step")
    for name, value in zip(names, counts):
        low = 1 if name == "frequency" else 0
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return tuple(int(v) for v in counts)


def _read_masks(source):
    """A ``mask``/``fixed_mask`` argument as ``{name: array}``: a dict, or an ``.npz`` file."""
    if source is None or isinstance(source, dict):
        return source
    with np.load(Path(source)) as data:
        return {key: data[key] for key in data.files}


def _given_masks(given, entry):
    """The entry's masks from ``given``, keyed by parameter names or by the entry's name."""
    if all(p.name in given for p in entry.params):
        found = [given[p.name] for p in entry.params]
    elif entry.name in given and len(entry.params) == 1:
        found = [given[entry.name]]
    else:
        raise ValueError(f"the masks given have no {entry.name!r} (nor "
                         f"{', '.join(p.name for p in entry.params)})")
    return [np.asarray(m).reshape(a.shape) for m, a in zip(found, entry.arrays())]
