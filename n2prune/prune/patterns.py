"""Mask patterns: the shape a pruning mask has, as pure functions of scores.

Weights are (O, I) for Fc or (O, I, kh, kw) for Conv (OCHW): axis 0 = outputs,
axis 1 = inputs. ``scores`` has the weights' shape (higher = more important; a
criterion computes them: |w|, w², |w·g|, per-channel scores broadcast over the
slice...). A pattern turns ``scores`` and ``sparsity`` (fraction to prune, in
[0, 1]) into a NEW uint8 mask of that shape, 1 = kept, 0 = pruned, and never
modifies its inputs. Ranking uses stable sorts: among equal scores the lower
index (C order within the ranked group) is kept, so equal inputs give equal
masks. ``PATTERNS`` (a ``Registry``) maps ``QWeight.Pattern`` names to
``Pattern`` records filled by ``@register_pattern``; the quantizer reaches
them through ``mask_methods.PatternMask``.
"""

import numpy as np

from n2prune.prune.pattern_base import (
    PATTERNS,
    PatternError,
    PatternParams,
    check_mask,
    describe_violations,
    from_inputs_last,
    index_of,
    inputs_last,
    int_problem,
    keep_largest,
    kept_count,
    make_mask,
    pad_last,
    register_pattern,
    row_name,
    validate,
)

# The public API lives here: importing this module fills the registry.
__all__ = ["PATTERNS", "PatternError", "PatternParams", "check_mask", "kept_count", "make_mask",
           "register_pattern", "validate"]


@register_pattern("Unstructured", lambda mask, params: [])
def unstructured(scores, sparsity, params):
    """Keep the ``kept_count(size, s)`` largest scores of the whole tensor.

    TI's 'unstructured', Moffett's balance='none', torch's l1_unstructured.
    """
    kept = keep_largest(scores.reshape(1, -1), kept_count(scores.size, sparsity))
    return kept.reshape(scores.shape)


def _check_row_balanced(mask, params):
    counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
    usual = np.bincount(counts).argmax()  # the most frequent count (smallest among equals)
    return describe_violations(np.flatnonzero(counts != usual),
                     lambda k: f"output row {k} keeps {counts[k]}, most rows keep {usual}")


@register_pattern("RowBalanced", _check_row_balanced)
def row_balanced(scores, sparsity, params):
    """Every output row (axis-0 slice of I·kh·kw) keeps its ``kept_count(I·kh·kw, s)`` largest.

    TI's 'prunechannelunstructured': every filter loses the same fraction.
    """
    rows = scores.reshape(scores.shape[0], -1)
    return keep_largest(rows, kept_count(rows.shape[1], sparsity)).reshape(scores.shape)


def _fits_nm(shape, params):
    problem = int_problem(params, ("m",), 1) or int_problem(params, ("n",), 0)
    if problem is None and params.n > params.m:
        problem = "n", f"N={params.n} > M={params.m}: a group of M cannot keep N"
    return problem


def _check_nm(mask, params):
    rows = inputs_last(mask)
    counts = pad_last(rows, params.m, 0).reshape(rows.shape[0], -1, params.m).sum(axis=-1)
    per_row = counts.shape[1]

    def line(k):
        row, group = divmod(k, per_row)
        first = group * params.m
        last = min(first + params.m, rows.shape[1]) - 1
        return (f"{row_name(row, mask.shape)}, inputs {first}..{last} keep "
                f"{counts.flat[k]} > N={params.n}")
    return describe_violations(np.flatnonzero(counts > params.n), line)


@register_pattern("NM", _check_nm, _fits_nm, fixed_ratio=True)
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
    rows = inputs_last(scores)
    # -inf padding ranks after every real score, and after equal ones by index.
    groups = pad_last(rows, params.m, -np.inf).reshape(rows.shape[0], -1, params.m)
    kept = keep_largest(groups, params.n).reshape(rows.shape[0], -1)[:, :rows.shape[1]]
    return from_inputs_last(kept, scores.shape)


def _check_nm_flat(mask, params):
    counts = pad_last(mask.reshape(1, -1), params.m, 0).reshape(-1, params.m).sum(axis=1)

    def line(k):
        last = min((k + 1) * params.m, mask.size) - 1
        return f"chunk {k} (flat elements {k * params.m}..{last}) keeps {counts[k]} > N={params.n}"
    return describe_violations(np.flatnonzero(counts > params.n), line)


@register_pattern("NMFlat", _check_nm_flat, _fits_nm, fixed_ratio=True)
def n_m_flat(scores, sparsity, params):
    """N:M over the tensor flattened in native C order (O, I, kh, kw), as TI's 'n2m'.

    Consecutive chunks of M elements keep their N largest, so chunks run along
    the flattened filter (input × kernel), not strictly along the input axis.
    A trailing chunk of L < M elements keeps min(N, L). ``sparsity`` is only
    range-checked, as for NM.
    """
    flat = pad_last(scores.reshape(1, -1), params.m, -np.inf).reshape(-1, params.m)
    kept = keep_largest(flat, params.n).reshape(-1)[:scores.size]
    return kept.reshape(scores.shape)


def _fits_bank(shape, params):
    problem = int_problem(params, ("bank_size", "bank_interleave"), 1)
    width = params.bank_size * params.bank_interleave if problem is None else 0
    if problem is None and shape[1] % width:
        problem = "bank_size", (f"bank_size {params.bank_size} x bank_interleave "
                                f"{params.bank_interleave} = {width} does not divide the input "
                                f"axis I = {shape[1]}")
    return problem


def _banks(a, params):
    """(banks, R, bank_size) copy of ``a``; bank index = block·interleave + sub-bank.

    A block is bank_size·bank_interleave consecutive inputs; its sub-bank j holds
    the inputs with i mod bank_interleave == j (Moffett's Fc: 512-input blocks, 8 sub-banks).
    """
    rows = inputs_last(a)
    size, step = params.bank_size, params.bank_interleave
    # (R, block, t, j) with i = (block·size + t)·step + j
    blocks = rows.reshape(rows.shape[0], -1, size, step)
    return blocks.transpose(1, 3, 0, 2).reshape(-1, rows.shape[0], size)


def _unbank(banks, shape, params):
    """Inverse of ``_banks``: back to the weights' ``shape``."""
    rows = banks.shape[1]
    blocks = banks.reshape(-1, params.bank_interleave, rows, params.bank_size)
    return from_inputs_last(blocks.transpose(2, 0, 3, 1).reshape(rows, -1), shape)


def _check_bank(mask, params):
    counts = _banks(mask, params).sum(axis=-1)  # (banks, R)
    low, high, totals = counts.min(axis=1), counts.max(axis=1), counts.sum(axis=1)
    usual = np.bincount(totals).argmax()

    def line(k):
        where = f"bank {k} (block {k // params.bank_interleave}, sub-bank {k % params.bank_interleave})"
        faults = [f"rows keep {low[k]}..{high[k]} weights"] if high[k] - low[k] > 1 else []
        if totals[k] != usual:
            faults.append(f"keeps {totals[k]} weights, most banks keep {usual}")
        return f"{where}: {'; '.join(faults)}"
    return describe_violations(np.flatnonzero((high - low > 1) | (totals != usual)), line)


@register_pattern("Bank", _check_bank, _fits_bank)
def bank(scores, sparsity, params):
    """Bank-balanced, as Moffett's balance='fix': every bank keeps the same count.

    Rows as for NM (Conv viewed as (O, kh, kw, I): R = O·kh·kw rows); a bank
    is all R rows × bank_size inputs (see ``_banks`` for bank_interleave). I must be
    a multiple of bank_size·bank_interleave. Each bank keeps K = kept_count(R·bank_size, s):
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
        keep += keep_largest(candidate, extra)
    return _unbank(keep_largest(banks, keep), scores.shape, params)


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
        r, c = index_of(k, sums.shape)
        return (f"block ({r}, {c}) (outputs from {r * bo}, inputs from {c * bi}) keeps "
                f"{sums[r, c]} of {sizes[r, c]}: partly pruned")
    return describe_violations(np.flatnonzero((sums != 0) & (sums != sizes)), line)


@register_pattern("Block", _check_block,
                  lambda shape, params: int_problem(params, ("block_outputs", "block_inputs"), 1))
def block(scores, sparsity, params):
    """Blocks of block_outputs × block_inputs on the (O, I·kh·kw) view, kept whole.

    Intel Neural Compressor's NxM blocks (e.g. 4x1). Edge blocks may be
    partial; a block's score is the MEAN of its scores, so partial blocks
    compare fairly. The ``kept_count(blocks, s)`` best blocks are kept (ties:
    lower block index, row-major over blocks).
    """
    sums, sizes = _block_sums(scores, params)
    means = sums / sizes
    kept = keep_largest(means.reshape(1, -1), kept_count(means.size, sparsity))
    kept = kept.reshape(means.shape)
    full = kept.repeat(params.block_outputs, axis=0).repeat(params.block_inputs, axis=1)
    o = scores.shape[0]
    return np.ascontiguousarray(full[:o, :scores.size // o]).reshape(scores.shape)


def _check_channel(mask, params):
    counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
    size = mask.size // mask.shape[0]
    lines = describe_violations(np.flatnonzero((counts != 0) & (counts != size)),
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
    kept = keep_largest(sums, max(1, kept_count(o, sparsity)))
    return np.repeat(kept, scores.size // o).reshape(scores.shape)


def _fits_m(shape, params):
    return int_problem(params, ("m",), 1)


@register_pattern("NMFlatRatio", lambda mask, params: [], _fits_m)
def n_m_flat_ratio(scores, sparsity, params):
    """NMFlat whose N comes from the target: N = int((1 − s)·M), TI's 'n2m' arithmetic.

    Chunks of M consecutive elements in C order keep their N largest; a
    trailing chunk of L < M keeps min(N, L). A chunk that would keep none or
    all of its elements is left whole, as TI skips it. TI's incremental class
    ramps s, hence N, epoch by epoch.
    """
    flat = scores.reshape(-1)
    keep = int((1.0 - sparsity) * params.m)  # TI truncates: (1 - 0.9)*10 keeps 0, not 1
    kept = np.ones(flat.size, dtype=np.uint8)
    full = flat.size - flat.size % params.m
    if 0 < keep < params.m and full:
        kept[:full] = keep_largest(flat[:full].reshape(-1, params.m), keep).reshape(-1)
    tail = flat.size - full
    if 0 < min(keep, tail) < tail:
        kept[full:] = keep_largest(flat[full:], keep)
    return kept.reshape(scores.shape)


# Moffett's rules register themselves with the others (QWeight.Pattern=MoffettASIC...).
from n2prune.prune import patterns_moffett  # noqa: F401
