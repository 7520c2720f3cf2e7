"""prune.ti_epochs: TI's per-epoch arithmetic, against the numbers worked out by hand."""

import numpy as np
import pytest

from n2prune.prune import ti_epochs
from n2prune.prune.schedules import ScheduleError


def test_knees():
    # TI v1 forgets to add e0 back: E=30, e0=5 gives 16; its v2 gives 5 + 16 = 21.
    assert ti_epochs.knee_v1(30, 5) == 16 and ti_epochs.knee_v2(30, 5) == 21
    assert ti_epochs.knee_v1(6, 5) == 0  # before its own warm-up ends: hard from epoch 6
    assert ti_epochs.knee_v2(6, 5) == 5  # min(E - 1, max(e0 + 1, ...)) = min(5, 6)
    assert ti_epochs.knee_v2(100, 0) == 66


@pytest.mark.parametrize("epoch, alpha", [(5, 1.0), (6, (10 / 11) ** 2), (11, (5 / 11) ** 2),
                                          (15, (1 / 11) ** 2), (16, 0.0), (30, 0.0)])
def test_blend_alpha_is_tis_parabola(epoch, alpha):
    assert ti_epochs.blend_alpha(epoch, 5, 16) == pytest.approx(alpha, rel=1e-12)


def test_blend_alpha_power():
    assert ti_epochs.blend_alpha(6, 5, 16, p=3) == pytest.approx((10 / 11) ** 3, rel=1e-12)


def test_incremental_ratio_is_not_clamped():
    assert ti_epochs.incremental_ratio(5, 0.3, 5, 16) == 0
    assert ti_epochs.incremental_ratio(16, 0.3, 5, 16) == pytest.approx(0.3)
    assert ti_epochs.incremental_ratio(27, 0.3, 5, 16) == pytest.approx(0.6)  # 0.3·22/11
    assert ti_epochs.incremental_ratio(27, 0.3, 5, 16, clamp=True) == pytest.approx(0.3)
    with pytest.raises(ScheduleError, match="reaches 1 >= 1 at epoch 27.*clamp_incremental"):
        ti_epochs.incremental_ratio(27, 0.5, 5, 16)
    with pytest.raises(ScheduleError, match="knee - init_train_ep = 3 - 5"):
        ti_epochs.incremental_ratio(6, 0.5, 5, 3)


def test_sigmoid_values_by_hand():
    scores = np.array([0.0, 1.0, 2.0, 3.0])
    mask = np.array([0, 0, 1, 1], dtype=np.uint8)
    # Cut-off (2 + 1)/2 = 1.5, offsets -1.5, -0.5, 0.5, 1.5 (max 1.5), σ = (7 - 5)/8 = 0.25:
    # x = offset·0.25/1.5 + 3 = 2.75, 2.9167, 3.0833, 3.25, then ∓ 8σ = 2: 0.75, 0.9167, 5.08, 5.25.
    values = ti_epochs.sigmoid_values(scores, mask, 7, 5, 8)
    np.testing.assert_allclose(values, [3.75 / 6, (3 + 0.75 + 1 / 6) / 6, 1, 1], rtol=1e-6)
    assert values.dtype == np.float32
    late = ti_epochs.sigmoid_values(scores, mask, 11, 5, 8)  # σ = 0.75: x <= -3
    np.testing.assert_array_equal(late, [0, 0, 1, 1])


def test_extrema_trims_rare_ends():
    values = np.concatenate([np.zeros(20000), [100.0]])  # one value in 20001: 0.005 % < 0.01 %
    low, high = ti_epochs.extrema(values, 0.01)
    assert low == 0 and high < 1
    assert ti_epochs.extrema(np.array([1.0, 3.0]), 0.01) == (1.0, 3.0)


def test_global_ratios_keep_tis_off_by_one():
    a = np.array([0.1, 5.0, 0.2, 6.0])
    b = np.array([0.3, 7.0, 8.0, 9.0])
    # The 4 smallest of 8 are a[0], a[2], b[0], a[1]: 3 in a, 1 in b. TI's walk takes the
    # position of the first index past a, minus one: 2 for a, then the remaining 2 for b.
    assert ti_epochs.global_ratios([a, b], 0.5) == [0.5, 0.5]
    assert ti_epochs.global_ratios([a, None, b], 0.5) == [0.5, 0.0, 0.5]  # depthwise: 0
    # The 2 smallest are both in the second tensor, yet the first gets them: its boundary is
    # position 0 - 1, which TI wraps to "all chosen". The second then gets none.
    assert ti_epochs.global_ratios([b + 10, a], 0.25) == [0.5, 0.0]
    # 7 of 8 chosen: 2/4 for the first, 5/4 for the second, capped at 0.7.
    assert ti_epochs.global_ratios([b + 10, a], 0.9) == [0.5, 0.7]


def test_schedule_protocol_counts_epochs():
    blend = ti_epochs.Blend(0.5, 30, 5, 16)
    mask = np.array([1, 0], dtype=np.uint8)
    assert [blend.target(e) for e in (0, 5, 6, 40)] == [0, 0, 0.5, 0.5]
    assert blend.soft_mask(5, mask, None) is None
    np.testing.assert_allclose(blend.soft_mask(6, mask, None), [1, (10 / 11) ** 2], rtol=1e-6)
    assert blend.soft_mask(16, mask, None) is None and blend.fires_after(100)
    incremental = ti_epochs.Incremental(0.3, 30, 5, 16)
    assert incremental.target(27) == pytest.approx(0.6) and incremental.soft_mask(27, mask, None) is None
