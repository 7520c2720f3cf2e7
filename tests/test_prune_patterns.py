"""Mask patterns against loop references on random and tied scores, and small hand-worked masks."""

import functools
import math
from fractions import Fraction

import numpy as np
import pytest

from n2prune.prune.patterns import (
    PATTERNS,
    PatternParams,
    check_mask,
    kept_count,
    make_mask,
    register_pattern,
    validate,
)

NAMES = ["Unstructured", "RowBalanced", "NM", "NMFlat", "Bank", "Block", "Channel"]
SHAPES = [(7, 12), (5, 9), (4, 8), (5, 6, 3, 3), (4, 8, 1, 1), (3, 12, 2, 3)]
SEEDS = [0, 1, 2]
SPARSITIES = [0.0, 0.3, 0.5, 0.77, 0.9, 1.0]
NM_PARAMS = [PatternParams(n=2, m=4), PatternParams(n=1, m=3), PatternParams(n=5, m=8)]
BANK_PARAMS = [PatternParams(bank_size=b, bank_interleave=v) for b, v in [(2, 2), (4, 1), (3, 1), (3, 2), (1, 4)]]
BLOCK_PARAMS = [PatternParams(block_outputs=2, block_inputs=3), PatternParams(block_outputs=4, block_inputs=1)]


def params_for(name, shape):
    """The params tried for ``name`` on ``shape`` (Bank: those whose banks divide I)."""
    if name in ("NM", "NMFlat"):
        return NM_PARAMS
    if name == "Bank":
        return [p for p in BANK_PARAMS if shape[1] % (p.bank_size * p.bank_interleave) == 0]
    return BLOCK_PARAMS if name == "Block" else [PatternParams()]


def sparsities(name):
    """NM and NMFlat ignore the sparsity (N and M fix it), so one value is enough there."""
    return [0.5] if name in ("NM", "NMFlat") else SPARSITIES


def score_sets(shape):
    """Fresh seeded scores: continuous ones, and small integers full of ties."""
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        yield rng.random(shape)
        yield rng.integers(0, 3, shape).astype(np.float64)


@functools.cache
def input_rows(shape):
    """Flat indices of each row of the input-innermost view: (o,) for Fc, (o, y, x) for Conv."""
    kh, kw = shape[2:] if len(shape) == 4 else (1, 1)
    rows = []
    for o in range(shape[0]):
        for y in range(kh):
            for x in range(kw):
                at = [(o, i, y, x)[:len(shape)] for i in range(shape[1])]  # Fc: (o, i)
                rows.append([int(np.ravel_multi_index(index, shape)) for index in at])
    return rows


def ranked_groups(name, shape, sparsity, p):
    """(flat indices, kept count) of every group the element patterns rank."""
    size = math.prod(shape)
    if name == "Unstructured":
        return [(list(range(size)), kept_count(size, sparsity))]
    if name == "RowBalanced":
        width = size // shape[0]
        return [(list(range(o * width, (o + 1) * width)), kept_count(width, sparsity))
                for o in range(shape[0])]
    return [(piece, min(p.n, len(piece))) for piece in pieces(name, shape, p.m)]


@functools.cache
def pieces(name, shape, m):
    """NM: consecutive M inputs of each input-innermost row; NMFlat: M consecutive flat elements."""
    if name == "NM":
        return [row[g:g + m] for row in input_rows(shape) for g in range(0, shape[1], m)]
    size = math.prod(shape)
    return [list(range(g, min(g + m, size))) for g in range(0, size, m)]


def best_first(flat, indices):
    """``indices`` by decreasing score, the lower flat index first among equals."""
    return sorted(indices, key=lambda k: (-flat[k], k))


@functools.cache
def banks(shape, p):
    """Each bank as its list of rows, each row a list of flat indices (input order)."""
    rows, width = input_rows(shape), p.bank_size * p.bank_interleave
    return [[[row[start + t * p.bank_interleave + j] for t in range(p.bank_size)] for row in rows]
            for start in range(0, shape[1], width) for j in range(p.bank_interleave)]


def bank_reference(scores, sparsity, p):
    flat, mask = scores.ravel(), np.zeros(scores.size, np.uint8)
    for bank in banks(scores.shape, p):
        q, extra = divmod(kept_count(len(bank) * p.bank_size, sparsity), len(bank))
        ordered = [best_first(flat, row) for row in bank]
        following = [flat[row[q]] if q < len(row) else -np.inf for row in ordered]
        lucky = sorted(range(len(bank)), key=lambda r: (-following[r], r))[:extra]
        for r, row in enumerate(ordered):
            mask[row[:q + (r in lucky)]] = 1
    return mask.reshape(scores.shape)


@functools.cache
def blocks(shape, p):
    """Each block of the (O, I·kh·kw) view as its flat indices, blocks in row-major order."""
    o, f = shape[0], math.prod(shape) // shape[0]
    grid = np.arange(o * f).reshape(o, f)
    return [grid[r:r + p.block_outputs, c:c + p.block_inputs].ravel()
            for r in range(0, o, p.block_outputs) for c in range(0, f, p.block_inputs)]


def channels(shape):
    width = math.prod(shape) // shape[0]
    return [np.arange(o * width, (o + 1) * width) for o in range(shape[0])]


def whole_groups(name, shape, sparsity, p):
    """(groups, kept count, group score) for the patterns that keep whole groups."""
    if name == "Block":
        return blocks(shape, p), kept_count(len(blocks(shape, p)), sparsity), np.mean
    return channels(shape), max(1, kept_count(shape[0], sparsity)), np.sum


def reference(name, scores, sparsity, p):
    """The mask each pattern promises, computed by plain loops and ``sorted``."""
    flat, mask = scores.ravel(), np.zeros(scores.size, np.uint8)
    if name == "Bank":
        return bank_reference(scores, sparsity, p)
    if name in ("Block", "Channel"):
        groups, keep, reduce = whole_groups(name, scores.shape, sparsity, p)
        group_scores = [reduce(flat[g]) for g in groups]
        for g in sorted(range(len(groups)), key=lambda g: (-group_scores[g], g))[:keep]:
            mask[groups[g]] = 1
        return mask.reshape(scores.shape)
    for indices, keep in ranked_groups(name, scores.shape, sparsity, p):
        mask[best_first(flat, indices)[:keep]] = 1
    return mask.reshape(scores.shape)


def assert_largest_kept(flat_scores, flat_mask, indices, keep):
    kept = flat_mask[indices] == 1
    assert kept.sum() == keep
    if 0 < keep < len(indices):
        assert flat_scores[indices][kept].min() >= flat_scores[indices][~kept].max()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_mask_matches_the_loop_reference_and_its_own_check(name, shape):
    for p in params_for(name, shape):
        for scores in score_sets(shape):
            for s in sparsities(name):
                mask = make_mask(name, scores, s, p)
                assert mask.dtype == np.uint8 and mask.shape == shape and mask.flags.c_contiguous
                np.testing.assert_array_equal(mask, reference(name, scores, s, p), err_msg=f"{p} s={s}")
                assert check_mask(name, mask, p) == []


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["Unstructured", "RowBalanced", "NM", "NMFlat"])
def test_every_group_keeps_its_count_of_largest_scores(name, shape):
    for p in params_for(name, shape):
        for scores in score_sets(shape):
            for s in sparsities(name):
                mask = make_mask(name, scores, s, p).ravel()
                for indices, keep in ranked_groups(name, shape, s, p):
                    assert_largest_kept(scores.ravel(), mask, indices, keep)


@pytest.mark.parametrize("shape", [s for s in SHAPES if params_for("Bank", s)])
def test_bank_rows_differ_by_one_and_banks_keep_the_same_total(shape):
    for p in params_for("Bank", shape):
        for scores in score_sets(shape):
            flat = scores.ravel()
            for s in SPARSITIES:
                mask = make_mask("Bank", scores, s, p).ravel()
                for bank in banks(shape, p):
                    total = kept_count(len(bank) * p.bank_size, s)
                    counts = [int(mask[row].sum()) for row in bank]
                    assert sum(counts) == total and max(counts) - min(counts) <= 1
                    q = total // len(bank)
                    for row, count in zip(bank, counts):
                        assert_largest_kept(flat, mask, row, count)
                    if q < p.bank_size and q + 1 in counts and q in counts:
                        following = [np.sort(flat[row])[::-1][q] for row in bank]
                        more = [f for f, c in zip(following, counts) if c == q + 1]
                        assert min(more) >= max(f for f, c in zip(following, counts) if c == q)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["Block", "Channel"])
def test_whole_groups_are_kept_or_pruned_by_their_score(name, shape):
    for p in params_for(name, shape):
        for scores in score_sets(shape):
            flat = scores.ravel()
            for s in SPARSITIES:
                mask = make_mask(name, scores, s, p).ravel()
                groups, keep, reduce = whole_groups(name, shape, s, p)
                state = [int(mask[g].min()) for g in groups]
                assert all(mask[g].min() == mask[g].max() for g in groups)
                assert sum(state) == keep
                group_scores = np.array([reduce(flat[g]) for g in groups])
                if 0 < keep < len(groups):
                    assert group_scores[np.array(state) == 1].min() >= group_scores[np.array(state) == 0].max()


@pytest.mark.parametrize("name", NAMES)
def test_equal_scores_keep_the_lower_indices_and_repeat_exactly(name):
    shape = (4, 8, 1, 2)
    p = params_for(name, shape)[0]
    scores = np.ones(shape)
    mask = make_mask(name, scores, 0.5, p)
    np.testing.assert_array_equal(mask, reference(name, scores, 0.5, p))
    np.testing.assert_array_equal(mask, make_mask(name, scores.astype(np.float32), 0.5, p))
    random = np.random.default_rng(3).random(shape)
    np.testing.assert_array_equal(make_mask(name, random, 0.4, p), make_mask(name, random, 0.4, p))


def test_equal_scores_by_hand():
    ones = np.ones((3, 4))
    np.testing.assert_array_equal(make_mask("Unstructured", ones, 0.5).ravel(), [1] * 6 + [0] * 6)
    np.testing.assert_array_equal(make_mask("RowBalanced", ones, 0.5), [[1, 1, 0, 0]] * 3)
    np.testing.assert_array_equal(make_mask("Channel", ones, 0.5), [[1] * 4, [0] * 4, [0] * 4])
    np.testing.assert_array_equal(make_mask("NM", np.ones((1, 6, 1, 1)), 0.5).ravel(), [1, 1, 0, 0, 1, 1])


@pytest.mark.parametrize("name", NAMES)
def test_sparsity_zero_keeps_all_and_one_keeps_nothing(name):
    for shape in SHAPES:
        for p in params_for(name, shape):
            scores = np.random.default_rng(4).random(shape)
            none, half, full = (make_mask(name, scores, s, p) for s in (0.0, 0.5, 1.0))
            if name in ("NM", "NMFlat"):  # N and M fix the density, sparsity is ignored
                np.testing.assert_array_equal(none, half)
                np.testing.assert_array_equal(full, half)
                continue
            assert none.all()
            expected = np.prod(shape[1:]) if name == "Channel" else 0  # Channel keeps one
            assert np.count_nonzero(full) == expected


def test_channel_at_full_sparsity_keeps_the_best_channel():
    scores = np.array([[1.0, 1.0], [0.5, 3.0], [2.0, 0.0]])
    np.testing.assert_array_equal(make_mask("Channel", scores, 1.0), [[0, 0], [1, 1], [0, 0]])


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_modified_and_nan_or_bad_sparsity_raise(name):
    shape = (4, 12, 1, 1)
    p = params_for(name, shape)[0]
    scores = np.random.default_rng(5).random(shape).astype(np.float32)
    before = scores.copy()
    make_mask(name, scores, 0.5, p)
    np.testing.assert_array_equal(scores, before)
    assert scores.dtype == np.float32
    scores[1, 2, 0, 0] = np.nan
    with pytest.raises(ValueError, match="scores hold NaN"):
        make_mask(name, scores, 0.5, p)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="sparsity"):
            make_mask(name, before, bad, p)


def broken(name, mask):
    """``mask`` with one pruned element kept (Unstructured: one value that is not 0/1)."""
    out = mask.copy()
    if name == "Unstructured":
        out.flat[0] = 2
    else:
        out.flat[np.flatnonzero(out == 0)[0]] = 1
    return out


@pytest.mark.parametrize("name", NAMES)
def test_check_mask_flags_one_extra_kept_element(name):
    for shape in [(7, 12), (3, 12, 2, 3)]:
        for p in params_for(name, shape):
            mask = make_mask(name, np.random.default_rng(6).random(shape), 0.5, p)
            lines = check_mask(name, broken(name, mask), p)
            assert lines and all(isinstance(line, str) and "\n" not in line for line in lines)


def test_check_mask_lines_are_capped_and_name_the_place():
    lines = check_mask("Unstructured", np.full((3, 10), 2))
    assert len(lines) == 11 and lines[-1] == "... and 20 more"
    assert check_mask("Channel", np.zeros((3, 4))) == ["every output channel is pruned: at least one must be kept"]
    nm = check_mask("NM", np.ones((2, 6, 1, 1)))
    assert nm[0] == "output 0 at kernel (0, 0), inputs 0..3 keep 4 > N=2"
    assert check_mask("NM", np.array([[1, 1, 0, 0, 1, 1]])) == []  # the partial group keeps min(N, L)
    assert check_mask("Bank", np.ones((2, 6))) == [
        "bank_size 64 x bank_interleave 1 = 64 does not divide the input axis I = 6"]


def test_nm_on_a_conv_whose_inputs_are_not_a_multiple_of_m():
    # (O, I, kh, kw) = (1, 6, 1, 2): I = 6 as LeNet-5's conv2, so inputs 4..5 form a group of L = 2.
    scores = np.zeros((1, 6, 1, 2))
    scores[0, :, 0, 0] = [1, 5, 3, 2, 7, 4]
    scores[0, :, 0, 1] = [8, 6, 7, 9, 0, 2]
    two = make_mask("NM", scores, 0.5, PatternParams(n=2, m=4))
    np.testing.assert_array_equal(two[0, :, 0, 0], [0, 1, 1, 0, 1, 1])  # tail keeps min(2, 2)
    np.testing.assert_array_equal(two[0, :, 0, 1], [1, 0, 0, 1, 1, 1])
    one = make_mask("NM", scores, 0.5, PatternParams(n=1, m=4))
    np.testing.assert_array_equal(one[0, :, 0, 0], [0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(one[0, :, 0, 1], [0, 0, 0, 1, 0, 1])
    three = make_mask("NM", scores, 0.5, PatternParams(n=3, m=4))
    np.testing.assert_array_equal(three[0, :, 0, 0], [0, 1, 1, 1, 1, 1])  # tail keeps min(3, 2)
    # NMFlat chunks the C order (i, x interleaved): [1 8 5 6] [3 7 2 9] [7 0 4 2].
    flat = make_mask("NMFlat", scores, 0.5, PatternParams(n=2, m=4))
    np.testing.assert_array_equal(flat.ravel(), [0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0])


def test_nm_flat_trailing_chunk_keeps_min_n_l():
    scores = np.array([[5.0, 1, 4, 2, 9, 3, 8]])
    np.testing.assert_array_equal(make_mask("NMFlat", scores, 0, PatternParams(n=2, m=4)), [[1, 0, 1, 0, 1, 0, 1]])
    np.testing.assert_array_equal(make_mask("NMFlat", scores, 0, PatternParams(n=3, m=4)), [[1, 0, 1, 1, 1, 1, 1]])


def test_bank_with_two_interleaved_sub_banks_by_hand():
    # bank_size 2, interleave 2: block 0 = inputs 0..3 in sub-banks {0, 2} and {1, 3}, block 1
    # = {4, 6} and {5, 7}. Each bank (3 rows x 2) keeps kept_count(6, 1/3) = 4: q = 1, and the
    # row with the largest second score keeps 2 (second scores 2 6 3 | 1 1 4 | 4 1 0 | 3 8 1).
    scores = np.array([[9, 1, 2, 8, 5, 6, 4, 3],
                       [7, 2, 6, 1, 1, 9, 2, 8],
                       [3, 4, 5, 7, 6, 2, 0, 1]], dtype=np.float64)
    mask = make_mask("Bank", scores, 1 / 3, PatternParams(bank_size=2, bank_interleave=2))
    np.testing.assert_array_equal(mask, [[1, 0, 0, 1, 1, 1, 1, 0],
                                         [1, 1, 1, 0, 0, 1, 1, 1],
                                         [0, 1, 1, 1, 1, 1, 0, 0]])


def test_block_with_partial_edge_blocks_ranks_by_mean():
    # 2x2 blocks on a 5x3 Fc: means 1, 4.5 | 2, 3 | 4, 5 (sums 4, 9 | 8, 6 | 8, 5 would differ).
    scores = np.array([[1, 1, 9], [1, 1, 0], [2, 2, 3], [2, 2, 3], [0, 8, 5]], dtype=np.float64)
    mask = make_mask("Block", scores, 0.5, PatternParams(block_outputs=2, block_inputs=2))
    np.testing.assert_array_equal(mask, [[0, 0, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1]])


def test_validate_rejects_params_that_cannot_work():
    with pytest.raises(ValueError, match="N=5 > M=4"):
        validate("NM", (4, 8), PatternParams(n=5, m=4))
    with pytest.raises(ValueError, match="m must be an integer >= 1"):
        validate("NMFlat", (4, 8), PatternParams(n=0, m=0))
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        validate("NM", (4, 8), PatternParams(n=-1))
    with pytest.raises(ValueError, match="bank_size 64 x bank_interleave 1 = 64 .* I = 6"):
        validate("Bank", (16, 6, 5, 5), PatternParams())
    with pytest.raises(ValueError, match="block_inputs"):
        validate("Block", (4, 8), PatternParams(block_inputs=0))
    with pytest.raises(ValueError, match="weight shape"):
        validate("Unstructured", (4, 8, 3))
    with pytest.raises(ValueError, match="N=3 > M=2"):
        make_mask("NM", np.ones((2, 4)), 0.5, PatternParams(n=3, m=2))
    validate("Bank", (16, 128, 3, 3), PatternParams())
    validate("NM", (4, 8), PatternParams(n=4, m=4))


@pytest.mark.parametrize("call", [
    lambda: validate("Pruned", (4, 8)),
    lambda: make_mask("nm", np.ones((4, 8)), 0.5),
    lambda: check_mask("Banks", np.ones((4, 8))),
])
def test_unknown_pattern_lists_the_known_names(call):
    with pytest.raises(ValueError, match=r"unknown QWeight\.Pattern=\w+; (did you mean \w+\? )?known: ") as error:
        call()
    assert all(name in str(error.value) for name in NAMES)


def test_registry_holds_the_patterns_and_takes_new_ones():
    assert list(PATTERNS)[:7] == NAMES

    @register_pattern("EveryOther", lambda mask, params: [])
    def every_other(scores, sparsity, params):
        return (np.arange(scores.size) % 2 == 0).astype(np.uint8).reshape(scores.shape)

    try:
        np.testing.assert_array_equal(make_mask("EveryOther", np.ones((2, 2)), 0.5), [[1, 0], [1, 0]])
        with pytest.raises(ValueError, match="NaN"):
            every_other(np.full((2, 2), np.nan), 0.5)
    finally:
        del PATTERNS["EveryOther"]


def test_kept_count_is_floor_of_the_kept_fraction_without_float_error():
    assert kept_count(10, 0.9) == 1
    assert kept_count(10, 0.0) == 10 and kept_count(10, 1.0) == 0 and kept_count(0, 0.5) == 0
    assert kept_count(3, 1 / 3) == 2
    for n in range(60):
        for hundredths in range(101):
            exact = n - math.ceil(Fraction(hundredths, 100) * n)
            assert kept_count(n, hundredths / 100) == exact, (n, hundredths)


def test_nm_flat_ratio_takes_n_from_the_target_as_ti():
    scores = np.arange(20, dtype=np.float64)[::-1].reshape(2, 10)  # descending: first kept
    # TI's "41:64": r = 41/64 keeps int(23/64·64) = 23 of every 64.
    mask = make_mask("NMFlatRatio", np.random.default_rng(0).random((3, 64)), 41 / 64,
                     PatternParams(m=64))
    assert (mask.sum(axis=1) == 23).all()
    # m = 8 over 20 elements: two chunks keep int(0.5·8) = 4, the tail of 4 keeps min(4, 4):
    # all of it, so it is left whole.
    np.testing.assert_array_equal(make_mask("NMFlatRatio", scores, 0.5, PatternParams(m=8)).reshape(-1),
                                  [1] * 4 + [0] * 4 + [1] * 4 + [0] * 4 + [1] * 4)
    # int((1 - 0.9)·10) = 0 in float64: TI keeps every chunk whole.
    assert make_mask("NMFlatRatio", scores, 0.9, PatternParams(m=10)).all()
