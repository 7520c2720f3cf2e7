"""prune.patterns_moffett: Moffett's mask rules, counted by hand."""

import numpy as np
import pytest

from n2prune.prune.pattern_base import PatternError, PatternParams
from n2prune.prune.patterns import check_mask, make_mask, validate
from n2prune.prune.patterns_moffett import moffett_keep, plan, qualifies


def scores(shape, seed=0):
    return np.random.default_rng(seed).random(shape)


def row_counts(mask, rows):
    return mask.reshape(-1)[rows].sum(axis=1)


def test_keep_truncates_in_float64():
    assert moffett_keep(1000, 0.9) == 99  # 1000·0.09999999999999998
    assert moffett_keep(72, 0.95) == 3


def test_unstructured_keeps_int_size_times_density():
    s = scores((10, 100))
    mask = make_mask("MoffettUnstructured", s, 0.9)
    assert mask.sum() == 99
    assert (s[mask == 1].min() > s[mask == 0].max())


def test_asic_conv_blocks_of_64_and_the_rest():
    # (4, 100, 3, 3) at 0.9: keep int(3600·0.1) = 360. One full block of 64 inputs gets
    # int(360·64/100) = 230 over R = 36 rows, so each row keeps ⌈230/36⌉ = 7; the last
    # 36 inputs get 130, ⌈130/36⌉ = 4 per row: 36·7 + 36·4 = 396 kept.
    s = scores((4, 100, 3, 3))
    mask = make_mask("MoffettASIC", s, 0.9)
    rows = s.transpose(0, 2, 3, 1).reshape(36, 100)
    kept = mask.transpose(0, 2, 3, 1).reshape(36, 100)
    assert (kept[:, :64].sum(axis=1) == 7).all() and (kept[:, 64:].sum(axis=1) == 4).all()
    assert mask.sum() == 396
    # Each row keeps its largest scores of the block.
    assert all(rows[r, :64][kept[r, :64] == 1].min() > rows[r, :64][kept[r, :64] == 0].max()
               for r in range(36))
    assert check_mask("MoffettASIC", mask) == []
    broken = mask.copy()
    broken[0, :, 0, 0] = 1
    assert check_mask("MoffettASIC", broken)


def test_asic_group_size_is_the_bank():
    mask = make_mask("MoffettASIC", scores((2, 64, 3, 3)), 0.5, PatternParams(bank_size=32))
    kept = mask.transpose(0, 2, 3, 1).reshape(18, 64)
    # keep 576; each of two 32-input blocks gets 288 over 18 rows: 16 per row.
    assert (kept[:, :32].sum(axis=1) == 16).all() and (kept[:, 32:].sum(axis=1) == 16).all()


def test_asic_fc_interleaves_512_blocks():
    # (10, 1100) at 0.75: keep 2750; two 512 blocks share int(2750·1024/1100) = 2560, 1280
    # each, every sub-bank (inputs j ≡ b mod 8, 64 of them) int(64/512·1280) = 160: 16 per
    # row. The 76 last inputs get 190: sub-banks of 10 or 9 inputs, int(10/76·190) = 25
    # (3 per row) or int(9/76·190) = 22 (3 per row).
    s = scores((10, 1100))
    mask = make_mask("MoffettASIC", s, 0.75)
    for bank in range(8):
        assert (mask[:, bank:512:8].sum(axis=1) == 16).all()
        assert (mask[:, 1024 + bank::8].sum(axis=1) == 3).all()
    narrow = make_mask("MoffettASIC", scores((10, 1030)), 0.75)
    assert narrow[:, 1024:].all()  # 6 last inputs < 8 sub-banks: left dense, as Moffett


def test_fpga_groups_of_four_input_runs():
    s = scores((8, 12, 3, 3))
    mask = make_mask("MoffettFPGA", s, 0.5)
    groups = mask.transpose(0, 2, 1, 3).reshape(-1, 9)  # (o, y) slab: 4 rows of 3 inputs x 3
    assert (groups.sum(axis=1) == 5).all()  # keep 432 over 96 rows: ⌈4.5⌉
    assert make_mask("MoffettFPGA", scores((6, 20)), 0.5).sum() == 60  # Fc: unstructured
    with pytest.raises(PatternError, match="I = 5"):
        validate("MoffettFPGA", (4, 5, 3, 3))


def test_qualifies_tests_the_target():
    s = scores((4, 100, 3, 3))
    assert not qualifies(s, 0.9, "asic")  # dense: every row keeps all
    pruned = s * make_mask("MoffettASIC", s, 0.9)
    assert qualifies(pruned, 0.9, "asic")
    assert not qualifies(pruned, 0.95, "asic")
    assert not qualifies(s, 0.5, "none") and qualifies(s * (s > 0.6), 0.5, "none")


def test_qualifies_looks_at_the_last_full_block_only_unless_asked():
    s = scores((2, 128, 3, 3))
    pruned = s * make_mask("MoffettASIC", s, 0.9)
    pruned[:, :64] = s[:, :64]  # the first of two full blocks is dense again
    assert qualifies(pruned, 0.9, "asic")  # Moffett overwrites the first block's answer
    assert not qualifies(pruned, 0.9, "asic", every_block=True)


def test_plan_rows_cover_each_index_once():
    for shape, device in [((3, 70, 3, 3), "asic"), ((5, 1100), "asic"), ((4, 7, 2, 2), "fpga"),
                          ((3, 2, 1, 1), "none")]:
        rows = np.concatenate([g.rows.reshape(-1) for g in plan(shape, 10, device)])
        assert np.array_equal(np.sort(rows), np.arange(int(np.prod(shape))))
