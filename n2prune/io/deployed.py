"""The tensors a deployed network computes with, shared by the export formats.

A cell's forward pass reads its weights through masks (pruning, mapping
tables, groups) and, for ``Fc`` with ``Normalize=1``, through a projection.
An exported model has none of that machinery: it gets the products, with
every removed weight an exact zero, and each cell's pruning facts as text.
"""

import numpy as np

from n2prune.cells.fc import NORM_EPSILON


def conv_weights(cell):
    """Per input: the effective weights, unconnected kernels zero."""
    tensors = []
    for k, conn in enumerate(cell.connections):
        w = np.array(cell.effective_weights(k), dtype=np.float32)
        if conn.mask is not None:
            w *= conn.mask
        if conn.groups is not None:
            keep = np.zeros(w.shape[:2], dtype=bool)
            for chans, outs in conn.groups:
                keep[outs, chans] = True
            w *= keep[:, :, None, None]
        tensors.append(w)
    return tensors


def fc_weights(cell):
    """The weights of all inputs side by side; with ``Normalize=1`` each output's row
    at unit norm, as the forward pass projects them before using them."""
    w = np.concatenate([np.asarray(cell.effective_weights(k), np.float64)
                        for k in range(len(cell.weights))], axis=1)
    if cell.normalize:
        stored = sum(np.einsum("ok,ok->o", p.value, p.value, dtype=np.float64)
                     for p in cell.weights)
        w /= np.sqrt(stored + NORM_EPSILON)[:, None]
    return w.astype(np.float32)


def pruning_facts(cell):
    """``{key: text}`` of one pruned cell's facts for ``metadata_props``."""
    q = getattr(cell, "quantizer", None)
    if q is None:
        return {}
    weights = [np.asarray(cell.effective_weights(k)) for k in range(len(cell.weights))]
    total = sum(w.size for w in weights)
    zeros = total - sum(int(np.count_nonzero(w)) for w in weights)
    facts = {"sparsity": f"{zeros / total:.6f}" if total else "0", "mode": str(q.prune_mode)}
    pattern = q.options.pattern
    facts["pattern"] = pattern if pattern is not None else f"N2D2 {q.prune_filler}"
    params = q.params
    for key in ("n", "m", "bank_size", "bank_interleave", "block_outputs", "block_inputs"):
        value = getattr(params, key, None)
        if pattern is not None and value is not None:
            facts[key] = str(value)
    return facts


def cell_tensors(cell):
    """``{suffix: float32 array}`` of one cell, as its forward pass uses them:
    ``weights`` (inputs side by side on axis 1) and ``biases``; a BatchNorm's
    ``scales``, ``biases``, ``means`` and ``variances``; ``mask`` (uint8) of a
    pruned cell. Cells without parameters give ``{}``."""
    kind = cell.type_name
    if kind == "BatchNorm":
        return {key: np.asarray(value, np.float32) for key, value in (
            ("scales", cell.scale.value), ("biases", cell.bias.value),
            ("means", cell.mean), ("variances", cell.variance))}
    if kind not in ("Conv", "Deconv", "Fc"):
        return {}
    weights = fc_weights(cell) if kind == "Fc" else np.concatenate(conv_weights(cell), axis=1)
    tensors = {"weights": weights}
    if cell.bias is not None:
        tensors["biases"] = cell.bias.value.astype(np.float32)
    if getattr(cell, "quantizer", None) is not None:
        tensors["mask"] = np.concatenate([cell.quantizer.mask(k).reshape(weights.shape[0], -1)
                                          for k in range(len(cell.weights))], axis=1)
        tensors["mask"] = tensors["mask"].reshape(weights.shape)
    return tensors
