"""Is training still going somewhere? Non-finite losses and divergence.

Divergence rule: the reference is the larger of the run's first loss and the
loss of guessing (uniform scores ``1/K`` on every target: ``ln K`` for a
softmax cross-entropy). Training has diverged when the mean loss over the
last ``DIVERGENCE_WINDOW`` steps exceeds ``DIVERGENCE_FACTOR`` times that
reference. A healthy run falls below its first loss within a few steps; a
fine-tuned one may rise above its (small) first loss while pruning, but not
to twice the loss of guessing, which is why the reference is the larger of
the two. Everything the rule needs lives in the ``RunState``, so a resumed
run stops at the same step as an uninterrupted one.
"""

import math

import numpy as np

from n2prune.graph.network import PROVIDER

DIVERGENCE_WINDOW = 50
DIVERGENCE_FACTOR = 2.0


def chance_loss(network, labels):
    """Loss of uniform scores ``1/K`` on every target, for the batch's ``labels``
    (for a data target with one channel: a white image)."""
    total = 0.0
    stimuli = network.outputs[PROVIDER]
    for target in network.targets:
        out = network.outputs[target.cell]
        uniform = np.full(out.shape, 1.0 / out.shape[0], out.dtype)
        total += target.loss(network.cell(target.cell), uniform, labels, stimuli)[0]
    return total


def weight_rms(network):
    """Root mean square of each cell's weights (cells without params left out)."""
    rms = {}
    for cell in network.cells:
        values = [p.value for p in cell.params() if p.role == "weights"]
        if values:
            rms[cell.name] = float(np.sqrt(np.mean([np.mean(np.square(v, dtype=np.float64))
                                                    for v in values])))
    return rms


def nonfinite_cell(network):
    """``"[cell] non-finite weights"`` (or outputs) for the first such cell, else None."""
    for cell in network.cells:
        if any(not np.isfinite(p.value).all() for p in cell.params()):
            return f"[{cell.name}] has non-finite weights"
    for cell in network.cells:
        out = network.outputs.get(cell.name)
        if out is not None and not np.isfinite(out).all():
            return f"[{cell.name}] has non-finite outputs"
    return None


def grown_most(network, start_rms):
    """Which cell's weights grew most since the run started, as text."""
    ratios = {name: rms / max(start_rms.get(name, 0.0), 1e-30)
              for name, rms in weight_rms(network).items() if name in start_rms}
    if not ratios:
        return "no cell has weights"
    name = max(ratios, key=ratios.get)
    return f"[{name}] weights grew most (RMS x{ratios[name]:.3g})"


def check_loss(state, network, loss, labels, chance=None):
    """Record ``loss`` in ``state``; a one-line diagnosis if training went wrong.

    ``chance`` is the batch's ``chance_loss`` when the caller has it (the
    ranks of a distributed run each hold part of the batch; see distributed.py).
    """
    if not math.isfinite(loss):
        return f"loss became {loss}, {nonfinite_cell(network) or 'no cell is non-finite'}"
    if state.loss_ref is None:
        state.loss_ref = max(loss, chance_loss(network, labels) if chance is None else chance)
        state.weight_rms = weight_rms(network)
    state.recent_losses = (state.recent_losses + [loss])[-DIVERGENCE_WINDOW:]
    if len(state.recent_losses) == DIVERGENCE_WINDOW and looks_diverging(state):
        mean = sum(state.recent_losses) / DIVERGENCE_WINDOW
        return (f"loss diverged: mean {mean:.4g} over the last {DIVERGENCE_WINDOW} steps, more "
                f"than {DIVERGENCE_FACTOR:g}x its start {state.loss_ref:.4g}, "
                f"{grown_most(network, state.weight_rms or {})}")
    return None


def looks_diverging(state):
    """True while the recent losses (even fewer than a window) break the rule.

    The loop writes no snapshot then, so the snapshot a stopped run names is
    one from before the trouble.
    """
    if not state.recent_losses or state.loss_ref is None:
        return False
    mean = sum(state.recent_losses) / len(state.recent_losses)
    return mean > DIVERGENCE_FACTOR * state.loss_ref
