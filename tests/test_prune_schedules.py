"""Schedules of n2prune.prune.schedules against their formulas, written again here."""

import itertools
import math

import numpy as np
import pytest

from n2prune.prune import schedules as sch

RAMPS = [(1, 0.0, 0.9), (5, 0.0, 0.9), (7, 0.1, 0.5), (10, 0.3, 0.95), (4, 0.5, 0.5), (6, 0.0, 1.0)]


def _p(k, total):
    return min(max(k, 0) / total, 1.0)


def _exp(k, total, start, final):
    if start == 1.0:
        return 1.0
    return 1.0 - (1.0 - start) * ((1.0 - final) / (1.0 - start)) ** _p(k, total)


REFERENCES = {
    "OneShot": lambda k, total, s0, sf: s0 if k <= 0 else sf,
    "Linear": lambda k, total, s0, sf: s0 + (sf - s0) * _p(k, total),
    "Cubic": lambda k, total, s0, sf: sf + (s0 - sf) * (1 - _p(k, total)) ** 3,
    "Exp": _exp,
    "Cos": lambda k, total, s0, sf: s0 + (sf - s0) * (1 - math.cos(math.pi * _p(k, total) / 2)),
    "Cube": lambda k, total, s0, sf: s0 + (sf - s0) * _p(k, total) ** 3,
    "Incremental": lambda k, total, s0, sf: s0 + (sf - s0) * _p(k, total),
}


def ramp(name):
    """The closed form of ramp ``name``: formula(k, total, start, final)."""
    return sch.SCHEDULES[name].formula


def _sequence(name, total, start, final):
    return [ramp(name)(k, total, start, final) for k in range(total + 4)]


def test_registry_names():
    assert list(sch.SCHEDULES) == ["Gamma", *REFERENCES, "Blend", "Sigmoid"]
    assert all(issubclass(sch.SCHEDULES[name], sch.Ramp) for name in REFERENCES)
    with pytest.raises(ValueError, match="unknown QWeight.Schedule=Cubc; did you mean Cubic"):
        sch.SCHEDULES.lookup("Cubc")


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_ramp_object_targets_its_formula_and_stops_firing_at_total(name):
    schedule = sch.SCHEDULES[name](0.1, 0.8, 4, gamma=0.05)
    assert [schedule.target(k) for k in range(6)] == [ramp(name)(k, 4, 0.1, 0.8) for k in range(6)]
    assert [schedule.fires_after(k) for k in range(6)] == [True] * 4 + [False] * 2
    assert schedule.monotone and schedule.restarted(0.5, 2) == (schedule, 2)


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("total,start,final", RAMPS)
def test_schedule_matches_formula(name, total, start, final):
    values = _sequence(name, total, start, final)
    expected = [REFERENCES[name](k, total, start, final) for k in range(total + 4)]
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)
    assert values[0] == start and all(v == final for v in values[total:])
    assert all(isinstance(v, float) for v in values)
    assert ramp(name)(-3, total, start, final) == start


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("total,start,final", RAMPS)
def test_monotone_when_rising(name, total, start, final):
    values = _sequence(name, total, start, final)
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert all(start <= v <= final for v in values)


def _increments(name, total=8, start=0.0, final=0.9):
    values = _sequence(name, total, start, final)[: total + 1]
    return np.diff(values)


def test_cubic_is_fast_early_and_cube_slow_early():
    cubic, cube = _increments("Cubic"), _increments("Cube")
    assert np.all(np.diff(cubic) < 0)  # Zhu & Gupta: the increments shrink
    assert np.all(np.diff(cube) > 0)  # INC's cube: they grow
    assert ramp("Cubic")(1, 8, 0.0, 0.9) > ramp("Linear")(1, 8, 0.0, 0.9)
    assert ramp("Cube")(1, 8, 0.0, 0.9) < ramp("Linear")(1, 8, 0.0, 0.9)


@pytest.mark.parametrize("total,start,final", [(5, 0.0, 0.9), (10, 0.2, 0.95), (3, 0.5, 0.75)])
def test_exp_density_ratio_constant(total, start, final):
    density = 1.0 - np.array(_sequence("Exp", total, start, final)[: total + 1])
    ratios = density[1:] / density[:-1]
    np.testing.assert_allclose(ratios, ((1 - final) / (1 - start)) ** (1 / total), rtol=1e-12)


def test_exp_edges():
    assert ramp("Exp")(2, 4, 1.0, 0.5) == 1.0  # nothing left to shrink
    assert ramp("Exp")(4, 4, 1.0, 0.5) == 0.5
    assert ramp("Exp")(1, 4, 0.0, 1.0) == 1.0  # density 0 after the first fire


def test_incremental_stops_at_final_unlike_ti():
    total_epochs, e0, r = 30, 5, 0.6
    knee = (2 * (total_epochs - e0)) // 3  # TI's own knee: e0 not added back
    ti = [r * (e - e0) / (knee - e0) for e in range(e0, total_epochs + 1)]
    ours = [ramp("Incremental")(e - e0, knee - e0, 0.0, r) for e in range(e0, total_epochs + 1)]
    assert max(ti) > 2 * r  # TI's unclamped ramp: 25/11·r at epoch 30
    assert max(ours) == r and ours[-1] == r


def test_cubic_table_k5():
    values = [ramp("Cubic")(k, 5, 0.0, 0.9) for k in range(6)]
    np.testing.assert_allclose(values, [0.0, 0.4392, 0.7056, 0.8424, 0.8928, 0.9], atol=1e-12)


def _n2d2_gamma(k, start, gamma, final):
    t = np.float32(start)
    for _ in range(k):
        if t < np.float32(final):
            t = min(np.float32(t + np.float32(gamma)), np.float32(final))
    return t


@pytest.mark.parametrize("start,gamma,final", [(0.1, 0.05, 0.2), (0.0, 0.1, 0.7), (0.3, 0.07, 0.95),
                                               (0.2, 0.0, 0.5), (0.5, 1.0, 0.9)])
def test_gamma_steps_matches_float32_loop(start, gamma, final):
    for k in range(40):
        got = sch.gamma_steps(k, start, gamma, final)
        assert isinstance(got, np.float32)
        assert got == _n2d2_gamma(k, start, gamma, final)
    assert sch.gamma_steps(0, start, gamma, final) == np.float32(start)
    if gamma > 0:
        assert sch.gamma_steps(1000, start, gamma, final) == np.float32(final)


def test_gamma_steps_is_float32_not_closed_form():
    # Seven float32 additions of 0.1 give 0.70000005, not float32(0.7).
    assert sch.gamma_steps(7, 0.0, 0.1, 1.0) == np.float32(0.70000005)
    assert sch.gamma_steps(7, 0.0, 0.1, 1.0) != np.float32(0.7)
    assert sch.gamma_steps(10, 0.5, 0.1, 0.3) == np.float32(0.5)  # N2D2 only raises it
    assert sch.gamma_steps(10**9, 0.25, 1e-9, 0.5) == np.float32(0.25)  # below resolution: no hang


def test_ti_knee_adds_the_warm_up_back():
    assert sch.ti_knee(30, 5) == 21 and sch.ti_knee(10, 2) == 7
    assert sch.ti_knee(7, 5) == 6
    for args in [(6, 5), (5, 5), (3, 5)]:
        with pytest.raises(ValueError, match="init_train_ep"):
            sch.ti_knee(*args)


def test_blend_alpha():
    assert sch.blend_alpha(0, 5) == 1.0 and sch.blend_alpha(-1, 5) == 1.0
    assert sch.blend_alpha(5, 5) == 0.0 and sch.blend_alpha(9, 5) == 0.0
    for total in (1, 3, 11):
        for k in range(total):
            assert sch.blend_alpha(k, total) == pytest.approx((1 - k / total) ** 2, abs=1e-15)
    # TI's form with its epoch e, warm-up e0 and (fixed) knee K: (e - K)²/(K - e0)².
    e0, knee = 2, sch.ti_knee(10, 2)
    for e in range(e0, knee + 1):
        assert sch.blend_alpha(e - e0, knee - e0) == pytest.approx((e - knee) ** 2 / (knee - e0) ** 2)


def test_sigmoid_soft_mask_properties():
    rng = np.random.default_rng(0)
    scores = np.abs(rng.standard_normal((6, 7)))
    threshold = float(np.quantile(scores, 0.6))
    kept, pruned = scores >= threshold, scores < threshold
    total = 9
    masks = [sch.sigmoid_soft_mask(scores, threshold, k, total) for k in range(total + 3)]
    for k, mask in enumerate(masks):
        assert mask.dtype == np.float32 and mask.shape == scores.shape
        assert np.all(mask[kept] == 1) and np.all((mask >= 0) & (mask <= 1))
        if 0 < k < total:
            order = np.argsort(scores[pruned])
            assert np.all(np.diff(mask[pruned][order]) >= 0)  # smaller scores, smaller masks
    assert np.all(masks[0] == 1)
    assert all(np.all(b <= a) for a, b in itertools.pairwise(masks))
    for mask in masks[total:]:
        assert np.all(mask[pruned] == 0)
    assert 0 < masks[total // 2][pruned].max() < 1  # still soft half way
    assert np.all(sch.sigmoid_soft_mask(scores, threshold, -2, total) == 1)


def test_sigmoid_soft_mask_formula():
    scores = np.array([0.0, 0.25, 0.5, 1.0])
    mask = sch.sigmoid_soft_mask(scores, 0.5, 1, 4)
    d = np.array([1.0, 0.5])
    np.testing.assert_allclose(mask, [*np.clip(1 - 0.25 * (1 + d), 0, 1), 1, 1], rtol=1e-6)
    assert np.all(sch.sigmoid_soft_mask(scores, 0.0, 3, 4) == 1)  # nothing below the threshold


def test_gamma_object_steps_in_float32_and_fires_while_below_final():
    gamma = sch.SCHEDULES["Gamma"](0.1, 0.35, 1, gamma=0.1)
    assert gamma.target(0) == 0.1  # fire 0 is the start as written
    assert [gamma.target(k) for k in (1, 2, 3, 4)] == [float(sch.gamma_steps(k, 0.1, 0.1, 0.35))
                                                        for k in (1, 2, 3, 4)]
    assert gamma.target(3) == float(np.float32(0.35))
    assert [gamma.fires_after(k) for k in range(4)] == [True, True, True, False]
    assert gamma.target(1) == float(sch.gamma_steps(1, 0.1, 0.1, 0.35))  # back to an earlier k
    again, k = gamma.restarted(0.3, 2)  # loaded masks: N2D2 adds gamma to what it imported
    assert k == 0 and again.target(1) == float(np.float32(0.35)) and not again.monotone


def test_soft_schedules_prune_final_from_the_first_fire_with_soft_values_to_the_knee():
    blend = sch.SCHEDULES["Blend"](0.1, 0.5, 3, gamma=0.05)
    assert [blend.target(k) for k in range(4)] == [0.0, 0.5, 0.5, 0.5]
    mask = np.array([1, 0, 1, 0], dtype=np.uint8)
    soft = blend.soft_mask(1, mask, scores=None)
    np.testing.assert_array_equal(soft, np.float32([1, (2 / 3) ** 2, 1, (2 / 3) ** 2]))
    assert soft.dtype == np.float32 and blend.soft_mask(3, mask, None) is None
    sigmoid = sch.SCHEDULES["Sigmoid"](0.1, 0.5, 3, gamma=0.05)
    soft = sigmoid.soft_mask(1, mask, lambda: np.array([4.0, 1.0, 3.0, 2.0]))
    assert soft[0] == soft[2] == 1 and 0 < soft[1] < soft[3] < 1


def test_frozen_never_fires_and_takes_loaded_masks_as_its_target():
    frozen = sch.Frozen(0.3)
    assert frozen.target(0) == frozen.target(5) == 0.3 and not frozen.fires_after(0)
    assert frozen.restarted(0.6, 0)[0].target(0) == 0.6


def test_restored_start_and_locked_mask():
    from n2prune.prune.mask_methods import LockedMask
    a = np.array([[0.0, 1.0], [-0.0, 2.0]], dtype=np.float32)
    b = np.array([0.0, 3.0, 1e-30, 0.0, 0.0, 4.0])
    assert sch.restored_start([a]) == 0.5
    assert sch.restored_start([a, b]) == pytest.approx(5 / 10)
    assert sch.restored_start([]) == 0.0
    mask = LockedMask().compute_mask(np.abs(b), np.ones(6, np.uint8), 0.5)
    assert mask.dtype == np.uint8 and mask.tolist() == [0, 1, 1, 0, 0, 1]
    assert LockedMask().compute_mask(np.abs(a), None, 0).shape == a.shape


@pytest.mark.parametrize("args,name", [((1, 5, -0.1, 0.5), "start"), ((1, 5, 0.1, 1.5), "final"),
                                       ((1, 0, 0.1, 0.5), "total"), ((1, 2.5, 0.1, 0.5), "total")])
def test_schedule_errors(args, name):
    for fn in (ramp(n) for n in REFERENCES):
        with pytest.raises(ValueError, match=f"^{name} must"):
            fn(*args)


def test_other_errors():
    with pytest.raises(ValueError, match="^gamma must"):
        sch.gamma_steps(1, 0.1, -0.1, 0.5)
    with pytest.raises(ValueError, match="^final must"):
        sch.gamma_steps(1, 0.1, 0.1, 2.0)
    with pytest.raises(ValueError, match="^total must"):
        sch.blend_alpha(1, 0)
    with pytest.raises(ValueError, match="^total must"):
        sch.sigmoid_soft_mask(np.ones(3), 0.5, 1, 0)
