"""Pruning criteria: how important each weight is ("what" to prune), as pure functions.

A criterion scores the weights ``w`` of one cell: shape (O, I) for Fc or
(O, I, kh, kw) for Conv (OCHW), axis 0 the output channels. It returns a
float64 array of ``w``'s shape, >= 0, where higher means more important.
The pattern module turns scores into a mask; for a grouped pattern it *sums*
the element scores of each group (a block, a whole output channel). Hence L1
returns |w| (the group sum is the L1 norm), L2 returns w² (the group sum is
the squared L2 norm, which ranks as the norm does), and a criterion defined
per channel returns its channel score broadcast over that channel's slice.

Names are the values of ``QWeight.Criterion=`` and are filled into
``CRITERIA`` (a ``Registry``) by ``@register_criterion``, as Torch-Pruning
keeps its importances apart from its pruners.
"""

from dataclasses import dataclass

import numpy as np

from n2prune.errors import UserError
from n2prune.registry import Registry

CRITERIA = Registry("QWeight.Criterion")

# FPGM compares every pair of filters directly up to this many O*O*K values;
# above it the Gram matrix saves the (O, O, K) temporary.
_DIRECT_PAIRS_LIMIT = 1 << 20


class CriterionError(UserError, ValueError):
    """A criterion whose inputs (BatchNorm, gradients, seed) are missing."""


@dataclass
class ScoreContext:
    """What a criterion may need beside the weights; every field is optional.

    ``rng``: the run's seeded ``numpy.random.Generator`` (Random).
    ``saliency``: float array of ``w``'s shape, Σ over batches of |w·g| (Taylor).
    ``out_scale``: (O,), the following BatchNorm's γ/√(var+ε) (BNFolded).
    ``gamma``: (O,), the following BatchNorm's γ (BNGamma).
    ``index``: which of the cell's weight tensors (one per input) is scored.
    """

    rng: np.random.Generator | None = None
    saliency: np.ndarray | None = None
    out_scale: np.ndarray | None = None
    gamma: np.ndarray | None = None
    index: int = 0


def register_criterion(name, channel_only=False):
    """Decorator: make ``fn(w, context) -> scores`` the criterion ``name``.

    ``channel_only`` marks criteria that score whole output channels and so
    only make sense with a channel pattern (``QWeight.Pattern=Channel``);
    it is kept as ``fn.channel_only``.
    """
    def decorate(fn):
        fn.channel_only = channel_only
        return CRITERIA.add(name, fn)
    return decorate


def score(name, w, context=None):
    """Scores of ``w`` by criterion ``name``: float64, ``w``'s shape, >= 0, higher = keep.

    ``name`` is a ``CRITERIA`` name or, from Python, a function ``fn(w, context)``
    of the same contract (a facade's scores, TI's taken once at construction).
    """
    criterion = name if callable(name) else CRITERIA.lookup(name)
    w = np.asarray(w, dtype=np.float64)
    scores = criterion(w, context if context is not None else ScoreContext())
    return np.asarray(scores, dtype=np.float64)


def is_channel_only(name):
    """Whether criterion ``name`` (or function) scores whole output channels (needs a channel
    pattern); a function says so with a ``channel_only`` attribute."""
    if callable(name):
        return bool(getattr(name, "channel_only", False))
    return CRITERIA.lookup(name).channel_only


def _needs(name, what):
    return CriterionError(f"criterion {name} needs {what}")


def _per_channel(values, w, name, what):
    """``values`` as a float64 (O,) vector matching ``w``'s output channels."""
    if values is None:
        raise _needs(name, what)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.shape[0] != w.shape[0]:
        raise ValueError(f"criterion {name}: {values.shape[0]} channel values "
                         f"for {w.shape[0]} output channels")
    return values


def _broadcast_channels(per_channel, shape):
    """(O,) scores repeated over each output channel's slice of ``shape`` (a new array)."""
    column = per_channel.reshape((-1,) + (1,) * (len(shape) - 1))
    return np.array(np.broadcast_to(column, shape), dtype=np.float64)


@register_criterion("Magnitude")
def magnitude(w, context):
    """|w|: the default, what N2D2's IterNonStruct and torch's l1_unstructured rank by."""
    return np.abs(w)


@register_criterion("L1")
def l1(w, context):
    """|w|, so a group sum is the L1 norm (TinyNN l1_norm, torch ln_structured n=1)."""
    return np.abs(w)


@register_criterion("L2")
def l2(w, context):
    """w², so a group sum is the squared L2 norm: same order as TinyNN's l2_norm."""
    return np.square(w)


@register_criterion("BNFolded")
def bn_folded(w, context):
    """|w[o]·s_o| with s = γ/√(var+ε) of the next BatchNorm (TI's get_bn_adjusted_weight).

    Judging the weights after the BN scaling that follows them means a
    channel the BN shrinks counts as small, as in TI's PrunerModule.
    """
    scale = _per_channel(context.out_scale, w, "BNFolded",
                         "a BatchNorm cell fed by this cell")
    return np.abs(w * scale.reshape((-1,) + (1,) * (w.ndim - 1)))


@register_criterion("BNGamma", channel_only=True)
def bn_gamma(w, context):
    """|γ_o| of the next BatchNorm, broadcast over channel o (network slimming, BNScalePruner)."""
    gamma = _per_channel(context.gamma, w, "BNGamma", "a BatchNorm cell fed by this cell")
    return _broadcast_channels(np.abs(gamma), w.shape)


@register_criterion("FPGM", channel_only=True)
def fpgm(w, context):
    """Σ_j ‖f_o − f_j‖₂ with f_o = w[o] flattened, broadcast over channel o.

    This is TinyNN's ``fpgm``: a filter close to all the others is
    redundant. TI's ``fpgm_weights`` instead takes the distance of each
    filter to the element-wise median filter (``FPGMMedian``).
    """
    filters = w.reshape(w.shape[0], -1)
    if filters.shape[0] ** 2 * filters.shape[1] <= _DIRECT_PAIRS_LIMIT:
        sums = _distance_sums_direct(filters)
    else:
        sums = _distance_sums_gram(filters)
    return _broadcast_channels(sums, w.shape)


@register_criterion("FPGMMedian", channel_only=True)
def fpgm_median(w, context):
    """‖v_o − med‖₂ with v_o = |w'[o]| flattened and med the element-wise median filter.

    TI's ``fpgm_weights`` (PrunerModule): w' is folded with the next
    BatchNorm's γ/√(var+ε) when one follows (``get_bn_adjusted_weight``),
    and the median is torch's, the lower of the two middle values for an
    even count of filters. A filter close to the median is redundant.
    """
    filters = np.abs(w.reshape(w.shape[0], -1))
    if context.out_scale is not None:
        filters = filters * np.abs(_per_channel(context.out_scale, w, "FPGMMedian", ""))[:, None]
    median = np.sort(filters, axis=0)[(filters.shape[0] - 1) // 2]
    return _broadcast_channels(np.linalg.norm(filters - median, axis=1), w.shape)


def _distance_sums_direct(filters):
    """(O,) Σ_j ‖f_o − f_j‖₂ of (O, K) filters, from the (O, O, K) differences."""
    differences = filters[:, None, :] - filters[None, :, :]
    return np.sqrt(np.einsum("ijk,ijk->ij", differences, differences)).sum(axis=1)


def _distance_sums_gram(filters):
    """(O,) Σ_j ‖f_o − f_j‖₂ of (O, K) filters, via ‖a−b‖² = ‖a‖² + ‖b‖² − 2a·b."""
    gram = filters @ filters.T
    norms = np.diag(gram)
    squared = norms[:, None] + norms[None, :] - 2.0 * gram
    # Rounding can make a zero distance slightly negative, and the diagonal
    # is exactly 0 by definition.
    np.maximum(squared, 0.0, out=squared)
    np.fill_diagonal(squared, 0.0)
    return np.sqrt(squared).sum(axis=1)


@register_criterion("Taylor")
def taylor(w, context):
    """Σ_batches |w·g|: first-order Taylor importance (Molchanov; Torch-Pruning TaylorImportance)."""
    if context.saliency is None:
        raise _needs("Taylor", "accumulated saliency Σ|w·g| (gradients seen in training)")
    saliency = np.asarray(context.saliency, dtype=np.float64)
    if saliency.shape != w.shape:
        raise ValueError(f"criterion Taylor: saliency shape {saliency.shape} "
                         f"is not the weights' {w.shape}")
    return saliency.copy()


def accumulate_saliency(saliency, w, grad):
    """``saliency += |w·grad|`` in place and return it; all three of ``w``'s shape.

    The quantizer calls this each batch with the *unmasked* weight gradient,
    so a pruned weight can still show it matters (Torch-Pruning accumulates
    its Taylor scores the same way over calibration batches).
    """
    saliency += np.abs(np.multiply(w, grad))
    return saliency


@register_criterion("Random")
def random_scores(w, context):
    """Uniform [0, 1) scores from the run's generator (TinyNN ``random``, torch random_*)."""
    if context.rng is None:
        raise _needs("Random", "the run's seeded random generator")
    return context.rng.random(w.shape)


def add_slimming_subgradient(grad_gamma, gamma, lam):
    """``grad_gamma += lam·sign(gamma)`` in place and return it; (O,) arrays.

    The subgradient of the network-slimming penalty λ·Σ|γ| (Liu et al. 2017,
    λ = 1e-4 for VGG), sign(0) = 0 so a zero γ is left where it is.
    """
    grad_gamma += lam * np.sign(gamma)
    return grad_gamma


def bn_out_scale(gamma, variance, epsilon):
    """(O,) float64 γ/√(var+ε): how the BatchNorm after a cell scales each output channel."""
    gamma = np.asarray(gamma, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    return gamma / np.sqrt(variance + float(epsilon))
