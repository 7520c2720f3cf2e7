"""Scope of a pruning target: per cell (layer-wise) or one score cut-off shared by cells (global).

Layer-wise, each cell prunes its own fraction of its own scores. Global,
several cells pool their scores under one cut-off, so a cell with many
unimportant weights gives up more of them: TI's ``pruning_global``, INC's
``global`` scope with ``min/max_sparsity_ratio_per_op``, torch's
``global_unstructured`` and network slimming's single percentile on |γ|.
This module only turns scores into per-cell fractions; the pattern module
then builds each cell's mask at its fraction.
"""

import math
from collections.abc import Mapping

import numpy as np

from n2prune.errors import UserError
from n2prune.prune.mask_methods import bisect_first

# Relative slack when a fraction times a size should be an integer (0.7 * 10 = 7.000000000000001).
_COUNT_SLACK = 1e-9


class ScopeError(UserError, ValueError):
    """A target or cap that is not a fraction, or caps that do not fit together."""


class UnreachableSparsity(ScopeError):
    """A global target the MinSparsity/MaxSparsity caps cannot meet."""


def global_sparsities(scores_list, target, min_caps=None, max_caps=None, names=None):
    """Per-cell pruned fractions under one score cut-off, pruning ``target`` of all elements.

    ``scores_list``: one score array per cell (any shapes, higher = keep);
    ``target``: the pruned fraction over all their elements together;
    ``min_caps`` / ``max_caps``: per-cell bounds on each fraction (default
    0 and 1); ``names``: the cells' names, for messages.

    The scores are pooled and ordered (ties: cell order, then flat index, so
    the result is deterministic). Cutting the pool at a position τ prunes,
    in cell c, the count of its elements before τ, clipped to its caps; τ is
    found by bisection so the counts add up to round(target·N). A capped cell
    stops growing and the others absorb the rest (water filling, as TI's
    0.7 cap and INC's max_sparsity_ratio_per_op). Each fraction is an exact
    count over the cell's size, count/n_c. Raises ``UnreachableSparsity``
    when the caps cannot give the target.
    """
    sizes = [int(np.size(s)) for s in scores_list]
    names = list(names) if names is not None else [f"cell {i}" for i in range(len(sizes))]
    _check_fraction("target", target)
    low, high = _count_bounds(sizes, min_caps, max_caps, names)
    total = sum(sizes)
    wanted = math.floor(target * total + 0.5)
    if not low.sum() <= wanted <= high.sum():
        raise UnreachableSparsity(
            f"global sparsity {target:g} is out of reach: MinSparsity/MaxSparsity allow "
            f"{low.sum() / total:.6g} to {high.sum() / total:.6g} of these {total} weights")
    positions = _pooled_positions(scores_list)

    def capped(cut):
        below = np.array([np.searchsorted(p, cut) for p in positions], dtype=np.int64)
        return np.clip(below, low, high)

    # capped(cut).sum() is non-decreasing and rises by at most 1 per step
    # (one element joins one cell), so the first cut reaching ``wanted`` hits it.
    cut = bisect_first(0, total, lambda c: capped(c).sum() >= wanted)
    return [int(c) / n if n else 0.0 for c, n in zip(capped(cut), sizes)]


def _check_fraction(what, value):
    if not 0.0 <= value <= 1.0:
        raise ScopeError(f"{what} {value!r} is not a fraction in [0, 1]")


def _count_bounds(sizes, min_caps, max_caps, names):
    """(C,) int64 lowest and highest pruned counts the caps allow each cell."""
    count = len(sizes)
    min_caps = [0.0] * count if min_caps is None else list(min_caps)
    max_caps = [1.0] * count if max_caps is None else list(max_caps)
    if not len(min_caps) == len(max_caps) == count == len(names):
        raise ValueError(f"{count} cells but {len(min_caps)} min caps, "
                         f"{len(max_caps)} max caps and {len(names)} names")
    low, high = np.zeros(count, np.int64), np.zeros(count, np.int64)
    for i, (n, lo, hi, name) in enumerate(zip(sizes, min_caps, max_caps, names)):
        _check_fraction(f"{name} MinSparsity", lo)
        _check_fraction(f"{name} MaxSparsity", hi)
        low[i] = math.ceil(lo * n - _COUNT_SLACK * max(1.0, lo * n))
        high[i] = math.floor(hi * n + _COUNT_SLACK * max(1.0, hi * n))
        if low[i] > high[i]:
            raise UnreachableSparsity(
                f"{name}: no count of its {n} weights lies between "
                f"MinSparsity={lo:g} and MaxSparsity={hi:g}")
    return low, high


def _pooled_positions(scores_list):
    """For each cell, the sorted positions of its elements in the pooled score order."""
    pooled = np.concatenate([np.ravel(s).astype(np.float64) for s in scores_list] or [[]])
    order = np.argsort(pooled, kind="stable")  # stable: ties keep cell, then flat, order
    rank = np.empty(pooled.size, dtype=np.int64)
    rank[order] = np.arange(pooled.size)
    ends = np.cumsum([np.size(s) for s in scores_list], dtype=np.int64)
    starts = ends - [np.size(s) for s in scores_list]
    return [np.sort(rank[a:b]) for a, b in zip(starts, ends)]


def zscore(channel_scores):
    """(x − mean)/std of one cell's per-channel scores (float64, same shape).

    Puts the channel scores of cells with different scales on one axis
    before they are pooled, as TI's global channel pruning does. Uses the
    population std; when all scores are equal it returns zeros.
    """
    x = np.asarray(channel_scores, dtype=np.float64)
    if x.size == 0 or np.ptp(x) == 0:
        return np.zeros_like(x)
    return (x - x.mean()) / x.std()


def default_exclusions(cell_names_in_order, cell_types):
    """Names of the first Conv and the last Fc: the cells ``Exclude=Auto`` keeps dense.

    ``cell_names_in_order``: the cells in network order; ``cell_types``: their
    ``Type=`` strings ("Conv", "Fc", "Pool"...), as a parallel sequence or a
    name -> type mapping. Pruning the input conv or the classifier costs the
    most accuracy for the least work: TinyNN's ``skip_last_fc``, TI and
    Torch-Pruning's advice to leave them out.
    """
    names = list(cell_names_in_order)
    if isinstance(cell_types, Mapping):
        types = [cell_types[name] for name in names]
    else:
        types = list(cell_types)
    if len(types) != len(names):
        raise ValueError(f"{len(names)} cell names but {len(types)} types")
    convs = [name for name, kind in zip(names, types) if kind == "Conv"]
    fcs = [name for name, kind in zip(names, types) if kind == "Fc"]
    return set(convs[:1] + fcs[-1:])
