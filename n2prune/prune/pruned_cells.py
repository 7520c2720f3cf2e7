"""Network-wide views of the cells' quantizers: initialise, step, measure.

Also what spans cells: the global scope (one score cut-off across the cells
with ``Scope=Global``), the BatchNorm each pruned cell feeds (BN criteria,
slimming penalty).
"""

import numpy as np

from n2prune.cells.batchnorm import BatchNorm
from n2prune.errors import UserError
from n2prune.prune import criteria, scope
from n2prune.prune.channels import resolve_channels, zero_removed_channels


def pruned_cells(network):
    """Cells that carry a quantizer (``QWeight=``), in build order."""
    return [c for c in network.cells if getattr(c, "quantizer", None) is not None]


def initialize_masks(network, rng, log_period, cells=None):
    """Compute the masks of ``cells`` (default all pruned cells) from the current weights.

    The one place masks are first computed, with the run's generator ``rng``
    and ``log_period`` (stimuli per epoch). Called after the weight fillers
    and after any imported weights: N2D2
    computes masks before ``-w`` imports, so a pruned model started from
    trained weights would be pruned by its random init (documented difference).
    """
    attach_batchnorms(network)
    for cell in cells if cells is not None else pruned_cells(network):
        cell.quantizer.initialize(cell.weight_arrays(), rng, log_period)
    resolve_global(network)
    resolve_channels(network, cells)


def step_quantizers(network, batch_size):
    """After a solver step: N2D2's ``quantizer.update``; returns the cells whose masks changed.

    Global-scope cells that fired get their masks from their group.
    """
    changed = []
    for cell in pruned_cells(network):
        # A param with ``active`` positions had its masked weights left alone.
        cell.quantizer.after_update([None if p.active is not None else p.value
                                     for p in cell.weights])
        if cell.quantizer.update(batch_size):
            changed.append(cell)
    if any(c.quantizer.options.scope == "Global" for c in changed):
        resolve_global(network)
    if any(c.quantizer.options.pattern == "Channel" for c in changed):
        resolve_channels(network)
    zero_removed_channels(network)
    return changed


def global_members(network):
    """Pruned cells with ``Scope=Global``, in build order."""
    return [c for c in pruned_cells(network) if c.quantizer.options.scope == "Global"
            and c.quantizer.options.pattern != "Channel"]  # channels: prune.channels


def resolve_global(network):
    """One score cut-off across the global-scope cells (at initialisation and when one fired).

    Asks every member for its tensors' scores (per-channel scores z-scored
    for the Channel pattern, as TI), finds each tensor's target with
    ``scope.global_sparsities`` under the cells' Min/MaxSparsity caps, and
    hands each member its targets (``refresh_masks``).
    """
    members = global_members(network)
    if not members:
        return
    targets = {c.quantizer.target for c in members}
    if len(targets) > 1:
        raise UserError("cells with QWeight.Scope=Global must share one target, got "
                        + ", ".join(f"{c.name}={c.quantizer.target:g}"
                                    for c in members))
    scores, owners = [], []
    for cell in members:
        q = cell.quantizer
        for k in range(len(q.weights)):
            scores.append(q.scores(k))
            owners.append((cell, k))
    sparsities = scope.global_sparsities(
        scores, targets.pop(), [c.quantizer.options.min_sparsity for c, _ in owners],
        [c.quantizer.options.max_sparsity for c, _ in owners], [c.name for c, _ in owners])
    for cell in members:
        cell.quantizer.refresh_masks([s for (c, _), s in zip(owners, sparsities) if c is cell])


def attach_batchnorms(network):
    """Give each pruned cell's quantizer the BatchNorm cell it feeds alone, if any."""
    for cell in pruned_cells(network):
        q = cell.quantizer
        q.batchnorm = feeding_batchnorm(network, cell.name)
        wants = [what for what, wanted in (
            ("GammaPenalty", q.options.gamma_penalty > 0),
            (f"Criterion={q.options.criterion}", q.options.criterion in ("BNFolded", "BNGamma")))
            if wanted]
        if wants and q.batchnorm is None:
            raise UserError(f"[{cell.name}] QWeight.{wants[0]} needs a BatchNorm cell whose only "
                            f"input is {cell.name}")


def feeding_batchnorm(network, name):
    """The BatchNorm cell whose only input is cell ``name``, or None."""
    return next((c for c in network.cells if isinstance(c, BatchNorm)
                 and network.inputs[c.name] == [name]), None)


def add_penalties(network):
    """Network slimming: ``λ·sign(γ)`` on the gradient of each ``GammaPenalty`` cell's BN γ."""
    for cell in pruned_cells(network):
        q = cell.quantizer
        if q.options.gamma_penalty and q.batchnorm is not None:
            bn = q.batchnorm.scale
            criteria.add_slimming_subgradient(bn.grad, bn.value, np.float32(q.options.gamma_penalty))


def cell_sparsities(network):
    """``{cell: fraction of weights masked}`` over all of each cell's weight tensors."""
    return {c.name: c.quantizer.sparsity() for c in pruned_cells(network)}


def mean_sparsity(network):
    """Masked weights over all weights of the pruned cells, or None without any."""
    cells = pruned_cells(network)
    if not cells:
        return None
    total = sum(sum(p.value.size for p in c.weights) for c in cells)
    masked = sum(c.quantizer.sparsity() * sum(p.value.size for p in c.weights) for c in cells)
    return masked / total


def set_kernel(network, kernel):
    """Force ``kernel`` (Auto, Dense or Sparse) on every pruned cell (``--kernel``)."""
    for cell in pruned_cells(network):
        cell.quantizer.kernel = kernel


def drain_kernel_notes(network):
    """The cells' "dense BLAS / skip kernels" choices made since the last call."""
    return [note for cell in pruned_cells(network) for note in cell.drain_kernel_notes()]
