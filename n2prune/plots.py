"""Pictures of a pruned run (matplotlib, optional: ``pip install 'n2prune[plot]'``).

``sparsity.png``: one bar per cell with weights. ``masks/<cell>.png``: which
weights are kept (white) and pruned (black); Fc as outputs x inputs, Conv as
outputs x (channel, ky, kx).
"""

from n2prune.cells import WeightCell
from n2prune.errors import UserError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("plots need matplotlib: pip install 'n2prune[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _kept(cell):
    import numpy as np
    return np.concatenate([cell.effective_weights(k).reshape(cell.nb_outputs, -1) != 0
                           for k in range(len(cell.weights))], axis=1)


def plot_sparsity(plt, cells, path):
    names = [c.name for c in cells]
    values = [1.0 - _kept(c).mean() for c in cells]
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(names) + 2), 3.5))
    bars = ax.bar(names, values, color="#4477aa")
    ax.bar_label(bars, labels=[f"{v:.0%}" for v in values], fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("sparsity (pruned fraction)")
    ax.set_title("weights pruned per cell")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_mask(plt, cell, path):
    kept = _kept(cell)
    fig, ax = plt.subplots(figsize=(min(12, 2 + kept.shape[1] / 40), min(8, 1.5 + kept.shape[0] / 20)))
    ax.imshow(kept, cmap="gray", aspect="auto", interpolation="nearest", vmin=0, vmax=1)
    xlabel = "input (c, y, x)" if cell.weights[0].value.ndim == 2 else "channel x kernel (c, ky, kx)"
    ax.set_xlabel(xlabel)
    ax.set_ylabel("output")
    ax.set_title(f"{cell.name}: {kept.mean():.1%} kept")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_run(network, run_dir):
    """Write ``sparsity.png`` and ``masks/<cell>.png`` into ``run_dir``; returns the paths."""
    plt = _pyplot()
    cells = [c for c in network.cells if isinstance(c, WeightCell)]
    paths = [run_dir / "sparsity.png"]
    plot_sparsity(plt, cells, paths[0])
    (run_dir / "masks").mkdir(exist_ok=True)
    for cell in cells:
        paths.append(run_dir / "masks" / f"{cell.file_stem}.png")
        plot_mask(plt, cell, paths[-1])
    return paths


def plot_sensitivity(points, baseline, path):
    """One curve per group: validation accuracy against the ratio it was pruned at alone
    (``points``: ``sensitivity.Point``), the unpruned accuracy dashed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(p.group for p in points):
        mine = [p for p in points if p.group == name]
        ax.plot([0] + [p.ratio for p in mine], [baseline] + [p.accuracy for p in mine],
                marker="o", label=name)
    ax.axhline(baseline, color="gray", linestyle="--", label="unpruned")
    ax.set_xlabel("pruning ratio (QWeight.Threshold)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("sensitivity: each group pruned alone")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
