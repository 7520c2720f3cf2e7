"""Mask patterns: the shape a pruning mask has, as pure functions of scores.

Weights are (O, I) for Fc or (O, I, kh, kw) for Conv (OCHW): axis 0 = outputs,
axis 1 = inputs. ``scores`` has the weights' shape (higher = more important; a
criterion computes them: |w|, w², |w·g|, per-channel scores broadcast over the
slice...). A pattern turns ``scores`` and ``sparsity`` (fraction to prune, in
[0, 1]) into a NEW uint8 mask of that shape, 1 = kept, 0 = pruned, and never
modifies its inputs. Ranking uses stable sorts: among equal scores the lower
index (C order within the ranked group) is kept, so equal inputs give equal
masks. ``PATTERNS`` maps ``QWeight.Pattern`` names to ``Pattern`` records
filled by ``@register_pattern``.
"""

import functools
import math
import numbers
from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from n2prune.errors import UserError

PATTERNS = {}

# check_mask reports this many violations of one kind, then "... and N more".
MAX_LINES = 10


@dataclass(frozen=True)
class PatternParams:
    """Pattern knobs (a pattern ignores the others): ``n``, ``m`` for NM and NMFlat,
    ``bank_size``, ``interleave`` for Bank, ``block_outputs`` (along O) and
    ``block_inputs`` (along I·kh·kw) for Block."""

    n: int = 2
    m: int = 4
    bank_size: int = 64
    interleave: int = 1
    block_outputs: int = 4
    block_inputs: int = 1


class PatternError(UserError, ValueError):
    """Params that cannot work on a weight shape, an unknown pattern, NaN scores, a bad sparsity."""


# make(scores, sparsity, params) -> mask; check(mask, params) -> lines;
# fits(shape, params) -> why params cannot work on shape, or None.
Pattern = namedtuple("Pattern", "make check fits")


def register_pattern(name, check, fits=None):
    """Decorator: make ``fn(scores, sparsity, params)`` the pattern ``name``.

    The registered (and returned) function raises PatternError for NaN scores,
    a sparsity outside [0, 1] or what ``validate`` rejects; ``fn`` sees float64.
    """
    def decorate(fn):
        @functools.wraps(fn)
        def make(scores, sparsity, params=PatternParams()):
            scores = np.asarray(scores, dtype=np.float64)
            if np.isnan(scores).any():
                raise PatternError("scores hold NaN")
            if not 0 <= sparsity <= 1:
                raise PatternError(f"sparsity {sparsity} is not in [0, 1]")
            validate(name, scores.shape, params)
            return fn(scores, float(sparsity), params)
        PATTERNS[name] = Pattern(make, check, fits)
        return make
    return decorate


def kept_count(n, sparsity):
    """How many of ``n`` elements survive ``sparsity``: ⌊(1−s)·n⌋ as TI and Moffett keep.

    s·n is rounded to 6 decimals first, so s = 0.9, n = 10 keeps 1 (0.9*10 = 9.000000000000002).
    """
    return n - min(n, math.ceil(round(sparsity * n, 6)))


def make_mask(name, scores, sparsity, params=PatternParams()):
    """The uint8 mask (scores' shape, 1 = kept) of pattern ``name``; see each pattern."""
    return _lookup(name).make(scores, sparsity, params)


def check_mask(name, mask, params=PatternParams()):
    """[] if ``mask`` follows pattern ``name``, else one line per violation (the first
    ``MAX_LINES``, then "... and N more"); params unfit for the shape give one line."""
    pattern = _lookup(name)
    mask = np.asarray(mask)
    if problem := _problem(pattern, mask.shape, params):
        return [problem]
    bad = np.flatnonzero((mask != 0) & (mask != 1))
    if bad.size:
        return _describe(bad, lambda k: f"mask{_index(k, mask.shape)} = {mask.flat[k]}, not 0/1")
    return pattern.check(mask.astype(np.int64), params)


def validate(name, shape, params=PatternParams()):
    """Raise PatternError (a ValueError; one line) if ``name`` cannot work on this ``shape``."""
    if problem := _problem(_lookup(name), tuple(shape), params):
        raise PatternError(f"pattern {name}: {problem}")


def _lookup(name):
    if name not in PATTERNS:
        raise PatternError(f"unknown pattern {name!r}; known: {', '.join(PATTERNS)}")
    return PATTERNS[name]


def _problem(pattern, shape, params):
    """Why ``pattern`` cannot work on ``shape`` with ``params``, or None."""
    if len(shape) not in (2, 4) or min(shape) < 1:
        return f"weight shape {shape} is not (O, I) or (O, I, kh, kw) with sizes >= 1"
    return pattern.fits(shape, params) if pattern.fits else None


def _int_problem(params, fields, minimum):
    """The first of ``fields`` that is not an integer >= ``minimum``, as a message."""
    for field in fields:
        value = getattr(params, field)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
            return f"{field} must be an integer >= {minimum}, got {value!r}"
    return None


def _describe(bad, describe):
    """Lines ``describe(k)`` for the first MAX_LINES offending indices ``bad``."""
    lines = [describe(int(k)) for k in bad[:MAX_LINES]]
    if bad.size > MAX_LINES:
        lines.append(f"... and {bad.size - MAX_LINES} more")
    return lines


def _index(flat_index, shape):
    return tuple(int(i) for i in np.unravel_index(flat_index, shape))


def _keep_largest(scores, keep):
    """uint8 mask keeping the ``keep`` largest along the last axis of (..., L); ties: lower index.

    ``keep``: an int or an int array of shape ``scores.shape[:-1]``; one stable argsort for all.
    """
    order = np.argsort(-scores, axis=-1, kind="stable")
    ranks = np.empty(scores.shape, dtype=np.intp)
    positions = np.broadcast_to(np.arange(scores.shape[-1]), scores.shape)
    np.put_along_axis(ranks, order, positions, axis=-1)
    return (ranks < np.asarray(keep)[..., None]).astype(np.uint8)


def _pad_last(a, multiple, value):
    """``a`` with its last axis padded by ``value`` up to a multiple of ``multiple``."""
    pad = -a.shape[-1] % multiple
    if pad == 0:
        return a
    return np.concatenate([a, np.full(a.shape[:-1] + (pad,), value, dtype=a.dtype)], axis=-1)


def _inputs_last(a):
    """(R, I) with the input channel innermost: Fc as is, Conv as (O·kh·kw, I) rows.

    apex ASP and Moffett permute a conv so groups run along the true reduction axis.
    """
    if a.ndim == 2:
        return a
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _from_inputs_last(rows, shape):
    """Inverse of ``_inputs_last``: (R, I) back to ``shape``, C-contiguous."""
    if len(shape) == 2:
        return np.ascontiguousarray(rows.reshape(shape))
    o, i, kh, kw = shape
    return np.ascontiguousarray(rows.reshape(o, kh, kw, i).transpose(0, 3, 1, 2))


def _row_name(row, shape):
    if len(shape) == 2:
        return f"output {row}"
    o, y, x = _index(row, (shape[0], shape[2], shape[3]))
    return f"output {o} at kernel ({y}, {x})"


@register_pattern("Unstructured", lambda mask, params: [])
def unstructured(scores, sparsity, params):
    """Keep the ``kept_count(size, s)`` largest scores of the whole tensor.

    TI's 'unstructured', Moffett's balance='none', torch's l1_unstructured.
    """
    kept = _keep_largest(scores.reshape(1, -1), kept_count(scores.size, sparsity))
    return kept.reshape(scores.shape)


def _check_row_balanced(mask, params):
    counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
    usual = np.bincount(counts).argmax()  # the most frequent count (smallest among equals)
    return _describe(np.flatnonzero(counts != usual),
                     lambda k: f"output row {k} keeps {counts[k]}, most rows keep {usual}")


@register_pattern("RowBalanced", _check_row_balanced)
def row_balanced(scores, sparsity, params):
    """Every output row (axis-0 slice of I·kh·kw) keeps its ``kept_count(I·kh·kw, s)`` largest.

    TI's 'prunechannelunstructured': every filter loses the same fraction.
    """
    rows = scores.reshape(scores.shape[0], -1)
    return _keep_largest(rows, kept_count(rows.shape[1], sparsity)).reshape(scores.shape)


def _fits_nm(shape, params):
    problem = _int_problem(params, ("m",), 1) or _int_problem(params, ("n",), 0)
    if problem is None and params.n > params.m:
        problem = f"N={params.n} > M={params.m}: a group of M cannot keep N"
    return problem


def _check_nm(mask, params):
    rows = _inputs_last(mask)
    counts = _pad_last(rows, params.m, 0).reshape(rows.shape[0], -1, params.m).sum(axis=-1)
    per_row = counts.shape[1]

    def line(k):
        row, group = divmod(k, per_row)
        first = group * params.m
        last = min(first + params.m, rows.shape[1]) - 1
        return (f"{_row_name(row, mask.shape)}, inputs {first}..{last} keep "
                f"{counts.flat[k]} > N={params.n}")
    return _describe(np.flatnonzero(counts > params.n), line)


@register_pattern("NM", _check_nm, _fits_nm)
def n_m(scores, sparsity, params):
    """N:M along the input-channel axis, as apex ASP's m4n2_1d.

    Fc rows are (O, I); a Conv is viewed as (O, kh, kw, I), so each row is the
    I inputs of one output at one kernel position. Each row is cut into
    consecutive groups of M inputs and each group keeps its N largest. A
    trailing group of L < M inputs (I not a multiple of M, e.g. LeNet-5's conv2
    with I = 6) counts as zero-padded to M, so it keeps min(N, L).

    ``sparsity`` is only range-checked: N and M fix the density. The quantizer
    applies N:M once its schedule's target is > 0.
    """
    rows = _inputs_last(scores)
    # -inf padding ranks after every real score, and after equal ones by index.
    groups = _pad_last(rows, params.m, -np.inf).reshape(rows.shape[0], -1, params.m)
    kept = _keep_largest(groups, params.n).reshape(rows.shape[0], -1)[:, :rows.shape[1]]
    return _from_inputs_last(kept, scores.shape)


def _check_nm_flat(mask, params):
    counts = _pad_last(mask.reshape(1, -1), params.m, 0).reshape(-1, params.m).sum(axis=1)

    def line(k):
        last = min((k + 1) * params.m, mask.size) - 1
        return f"chunk {k} (flat elements {k * params.m}..{last}) keeps {counts[k]} > N={params.n}"
    return _describe(np.flatnonzero(counts > params.n), line)


@register_pattern("NMFlat", _check_nm_flat, _fits_nm)
def n_m_flat(scores, sparsity, params):
    """N:M over the tensor flattened in native C order (O, I, kh, kw), as TI's 'n2m'.

    Consecutive chunks of M elements keep their N largest, so chunks run along
    the flattened filter (input × kernel), not strictly along the input axis.
    A trailing chunk of L < M elements keeps min(N, L). ``sparsity`` is only
    range-checked, as for NM.
    """
    flat = _pad_last(scores.reshape(1, -1), params.m, -np.inf).reshape(-1, params.m)
    kept = _keep_largest(flat, params.n).reshape(-1)[:scores.size]
    return kept.reshape(scores.shape)


def _fits_bank(shape, params):
    problem = _int_problem(params, ("bank_size", "interleave"), 1)
    width = params.bank_size * params.interleave if problem is None else 0
    if problem is None and shape[1] % width:
        problem = (f"bank_size {params.bank_size} x interleave {params.interleave} = {width} "
                   f"does not divide the input axis I = {shape[1]}")
    return problem


def _banks(a, params):
    """(banks, R, bank_size) copy of ``a``; bank index = block·interleave + sub-bank.

    A block is bank_size·interleave consecutive inputs; its sub-bank j holds the
    inputs with i mod interleave == j (Moffett's Fc: 512-input blocks, 8 sub-banks).
    """
    rows = _inputs_last(a)
    size, step = params.bank_size, params.interleave
    # (R, block, t, j) with i = (block·size + t)·step + j
    blocks = rows.reshape(rows.shape[0], -1, size, step)
    return blocks.transpose(1, 3, 0, 2).reshape(-1, rows.shape[0], size)


def _unbank(banks, shape, params):
    """Inverse of ``_banks``: back to the weights' ``shape``."""
    rows = banks.shape[1]
    blocks = banks.reshape(-1, params.interleave, rows, params.bank_size)
    return _from_inputs_last(blocks.transpose(2, 0, 3, 1).reshape(rows, -1), shape)


def _check_bank(mask, params):
    counts = _banks(mask, params).sum(axis=-1)  # (banks, R)
    low, high, totals = counts.min(axis=1), counts.max(axis=1), counts.sum(axis=1)
    usual = np.bincount(totals).argmax()

    def line(k):
        where = f"bank {k} (block {k // params.interleave}, sub-bank {k % params.interleave})"
        faults = [f"rows keep {low[k]}..{high[k]} weights"] if high[k] - low[k] > 1 else []
        if totals[k] != usual:
            faults.append(f"keeps {totals[k]} weights, most banks keep {usual}")
        return f"{where}: {'; '.join(faults)}"
    return _describe(np.flatnonzero((high - low > 1) | (totals != usual)), line)


@register_pattern("Bank", _check_bank, _fits_bank)
def bank(scores, sparsity, params):
    """Bank-balanced, as Moffett's balance='fix': every bank keeps the same count.

    Rows as for NM (Conv viewed as (O, kh, kw, I): R = O·kh·kw rows); a bank
    is all R rows × bank_size inputs (see ``_banks`` for interleave). I must be
    a multiple of bank_size·interleave. Each bank keeps K = kept_count(R·bank_size, s):
    every row keeps q = K // R of its largest, and the K % R rows whose
    (q+1)-th largest score is largest (ties: lower row) keep q + 1. All banks
    keep K and rows within a bank differ by at most 1.
    """
    banks = _banks(scores, params)
    rows = banks.shape[1]
    q, extra = divmod(kept_count(rows * params.bank_size, sparsity), rows)
    keep = np.full(banks.shape[:2], q)
    if extra:  # then q < bank_size: the (q+1)-th largest exists
        candidate = -np.partition(-banks, q, axis=-1)[..., q]
        keep += _keep_largest(candidate, extra)
    return _unbank(_keep_largest(banks, keep), scores.shape, params)


def _block_sums(a, params):
    """(sums, sizes) per block of the (O, I·kh·kw) view; edge blocks hold fewer elements."""
    flat = a.reshape(a.shape[0], -1)
    (o, f), bo, bi = flat.shape, params.block_outputs, params.block_inputs
    padded = np.zeros((-(-o // bo) * bo, -(-f // bi) * bi), dtype=flat.dtype)
    padded[:o, :f] = flat
    sums = padded.reshape(padded.shape[0] // bo, bo, -1, bi).sum(axis=(1, 3))
    rows = np.minimum(bo, o - bo * np.arange(sums.shape[0]))
    cols = np.minimum(bi, f - bi * np.arange(sums.shape[1]))
    return sums, np.outer(rows, cols)


def _check_block(mask, params):
    sums, sizes = _block_sums(mask, params)
    bo, bi = params.block_outputs, params.block_inputs

    def line(k):
        r, c = _index(k, sums.shape)
        return (f"block ({r}, {c}) (outputs from {r * bo}, inputs from {c * bi}) keeps "
                f"{sums[r, c]} of {sizes[r, c]}: partly pruned")
    return _describe(np.flatnonzero((sums != 0) & (sums != sizes)), line)


@register_pattern("Block", _check_block,
                  lambda shape, params: _int_problem(params, ("block_outputs", "block_inputs"), 1))
def block(scores, sparsity, params):
    """Blocks of block_outputs × block_inputs on the (O, I·kh·kw) view, kept whole.

    Intel Neural Compressor's NxM blocks (e.g. 4x1). Edge blocks may be
    partial; a block's score is the MEAN of its scores, so partial blocks
    compare fairly. The ``kept_count(blocks, s)`` best blocks are kept (ties:
    lower block index, row-major over blocks).
    """
    sums, sizes = _block_sums(scores, params)
    means = sums / sizes
    kept = _keep_largest(means.reshape(1, -1), kept_count(means.size, sparsity))
    kept = kept.reshape(means.shape)
    full = kept.repeat(params.block_outputs, axis=0).repeat(params.block_inputs, axis=1)
    o = scores.shape[0]
    return np.ascontiguousarray(full[:o, :scores.size // o]).reshape(scores.shape)


def _check_channel(mask, params):
    counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
    size = mask.size // mask.shape[0]
    lines = _describe(np.flatnonzero((counts != 0) & (counts != size)),
                      lambda k: f"output channel {k} keeps {counts[k]} of {size}: partly pruned")
    if not counts.any():
        lines.append("every output channel is pruned: at least one must be kept")
    return lines


@register_pattern("Channel", _check_channel)
def channel(scores, sparsity, params):
    """Whole output channels (filters): keep the ``max(1, kept_count(O, s))`` best.

    A channel's score is the SUM of its scores, so a criterion |w| gives the L1
    norm, w² the squared L2 norm, and a per-channel score broadcast over the
    slice keeps its ranking (torch's ln_structured, Torch-Pruning). At least
    one channel always stays: a layer pruned to zero channels breaks the
    network (Torch-Pruning issue #8). Ties keep the lower channel.
    """
    o = scores.shape[0]
    sums = scores.reshape(o, -1).sum(axis=1)
    kept = _keep_largest(sums, max(1, kept_count(o, sparsity)))
    return np.repeat(kept, scores.size // o).reshape(scores.shape)
