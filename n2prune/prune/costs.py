"""Parameters and MACs of each cell three ways: dense, effective, shrunk.

* dense: the cell as built (its ``macs_per_sample``, every parameter);
* effective: only the weights that are not zero after their masks (what
  the skip and direct kernels pay for), other parameters as they are;
* shrunk: the cell after ``n2prune shrink`` removes the removed channels
  (``prune.shrink``), computed from the cut arrays, nothing built.
"""

import numpy as np

from n2prune.cells import Conv, Deconv, Fc, Pool
from n2prune.prune.shrink import kept_channels, kept_inputs, mapping_of

KINDS = ("dense", "effective", "shrunk")


def cell_costs(network):
    """One dict per cell: ``cell``, ``type``, ``params_<kind>`` and ``macs_<kind>``."""
    kept = kept_channels(network)
    return [_costs(network, cell, kept[cell.name], kept_inputs(network, kept, cell))
            for cell in network.cells]


def totals(rows):
    """The sums of ``cell_costs`` rows, and the fraction of dense each kind keeps."""
    total = {f"{what}_{kind}": sum(r[f"{what}_{kind}"] for r in rows)
             for what in ("params", "macs") for kind in KINDS}
    for what in ("params", "macs"):
        dense = total[f"{what}_dense"]
        for kind in KINDS[1:]:
            total[f"{what}_{kind}_ratio"] = total[f"{what}_{kind}"] / dense if dense else 1.0
    return total


def n2d2_synapses(network):
    """N2D2's "Total number of synapses" (its stats.log, the free parameters it
    reports): the connected kernel weights and the biases of Conv, Deconv and Fc
    cells, pruned or not; BatchNorm's parameters are not counted."""
    total = 0
    for cell in network.cells:
        if not isinstance(cell, (Conv, Deconv, Fc)):
            continue
        for k, weights in enumerate(cell.weights):
            connections = getattr(cell, "connections", None)
            mask = connections[k].mask if connections else None
            taps = weights.value[0, 0].size if mask is not None else 0
            total += weights.value.size if mask is None else int(mask.sum()) * taps
        total += 0 if cell.bias is None else cell.bias.value.size
    return total


def _costs(network, cell, keep_out, keep_in):
    params = cell.params()
    weights = getattr(cell, "weights", [])
    dense_macs = cell.macs_per_sample()
    nonzero = sum(int(np.count_nonzero(cell.effective_weights(k))) for k in range(len(weights)))
    others = [p for p in params if not any(p is w for w in weights)]
    row = {"cell": cell.name, "type": cell.type_name,
           "params_dense": sum(p.value.size for p in params),
           "params_effective": nonzero + sum(p.value.size for p in others),
           "macs_dense": dense_macs, "macs_effective": _effective_macs(cell, nonzero, dense_macs)}
    row["params_shrunk"] = _shrunk_params(cell, params, weights, keep_out, keep_in)
    row["macs_shrunk"] = _shrunk_macs(cell, keep_out, keep_in, dense_macs)
    return row


def _kernel_positions(cell):
    """Where each kernel weight of a Conv or Deconv acts: the output plane of a
    Conv, the input plane of a Deconv (each input pixel scatters a kernel)."""
    plane = cell.input_shapes[0][1:] if isinstance(cell, Deconv) else cell.output_shape[1:]
    return plane[0] * plane[1]


def _effective_macs(cell, nonzero, dense_macs):
    if isinstance(cell, (Conv, Deconv)):
        return nonzero * _kernel_positions(cell)
    if isinstance(cell, Fc):
        return nonzero
    return dense_macs


def _shrunk_params(cell, params, weights, keep_out, keep_in):
    count = 0
    for param in params:
        k = next((i for i, w in enumerate(weights) if w is param), None)
        if k is None:  # a per-channel vector
            count += int(keep_out.sum()) if param.value.shape[0] == keep_out.size else param.value.size
        else:
            per_channel = param.value.size // (param.value.shape[0] * keep_in[k].size)
            count += int(keep_out.sum()) * int(keep_in[k].sum()) * per_channel
    return count


def _shrunk_macs(cell, keep_out, keep_in, dense_macs):
    if isinstance(cell, (Conv, Deconv)):
        kernels = sum(int(mapping_of(cell, k)[keep][:, keep_out].sum())
                      for k, keep in enumerate(keep_in))
        return kernels * cell.kernel[0] * cell.kernel[1] * _kernel_positions(cell)
    if isinstance(cell, Fc):
        return int(keep_out.sum()) * sum(int(keep.sum()) * s[1] * s[2]
                                         for keep, s in zip(keep_in, cell.input_shapes))
    if isinstance(cell, Pool):
        mapping = cell.mapping[np.concatenate(keep_in)][:, keep_out]
        return int(mapping.sum()) * cell.pool[0] * cell.pool[1] * cell.output_shape[1] * cell.output_shape[2]
    return dense_macs * int(keep_out.sum()) // max(1, keep_out.size)


def shrunk_totals(network):
    """``(params_shrunk, macs_shrunk)`` of the whole network for its current
    ``removed_channels``; reads no weight, so a budget search can ask often."""
    kept = kept_channels(network)
    params = macs = 0
    for cell in network.cells:
        keep_out, keep_in = kept[cell.name], kept_inputs(network, kept, cell)
        params += _shrunk_params(cell, cell.params(), getattr(cell, "weights", []), keep_out, keep_in)
        macs += _shrunk_macs(cell, keep_out, keep_in, cell.macs_per_sample())
    return params, macs
