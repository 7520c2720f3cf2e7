"""Network-wide views of the cells' quantizers: initialise, step, measure."""


def pruned_cells(network):
    """Cells that carry a quantizer (``QWeight=``), in build order."""
    return [c for c in network.cells if getattr(c, "quantizer", None) is not None]


def initialize_masks(network, rng, log_period, cells=None):
    """Compute the masks of ``cells`` (default all pruned cells) from the current weights.

    Called after the weight fillers and after any imported weights: N2D2
    computes masks before ``-w`` imports, so a pruned model started from
    trained weights would be pruned by its random init (documented difference).
    """
    for cell in cells if cells is not None else pruned_cells(network):
        cell.quantizer.initialize(cell.weight_arrays(), rng, log_period)


def step_quantizers(network, batch_size):
    """After a solver step: N2D2's ``quantizer.update``; returns the cells whose masks changed."""
    changed = []
    for cell in pruned_cells(network):
        # A param with ``active`` positions had its masked weights left alone.
        cell.quantizer.after_update([None if p.active is not None else p.value
                                     for p in cell.weights])
        if cell.quantizer.update(batch_size):
            changed.append(cell)
    return changed


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
    notes = []
    for cell in pruned_cells(network):
        notes.extend(cell.__dict__.pop("kernel_notes", []))
    return notes
