"""Pruning criteria on tensors small enough to score by hand."""

import numpy as np
import pytest

from n2prune.prune import criteria
from n2prune.prune.criteria import (
    CRITERIA,
    ScoreContext,
    accumulate_saliency,
    add_slimming_subgradient,
    bn_out_scale,
    is_channel_only,
    register_criterion,
    score,
)
from n2prune.registry import Registry

# A 3x2 Fc weight (outputs x inputs).
FC = np.array([[0.5, -1.0], [-0.25, 2.0], [0.0, -0.75]], dtype=np.float32)

# A 3x1x2x2 Conv weight whose flattened filters are f0 = 0, f1 = (3, 4, 0, 0),
# f2 = (3, 0, 0, 0): pairwise distances |f0-f1| = 5, |f0-f2| = 3, |f1-f2| = 4,
# so the FPGM sums are 5+3 = 8, 5+4 = 9 and 3+4 = 7.
CONV = np.array([[[[0, 0], [0, 0]]], [[[3, 4], [0, 0]]], [[[3, 0], [0, 0]]]], dtype=np.float32)


def per_channel(values, shape):
    return np.array(values, dtype=np.float64).reshape((-1,) + (1,) * (len(shape) - 1)) * np.ones(shape)


@pytest.mark.parametrize("name", ["Magnitude", "L1"])
def test_magnitude_and_l1_are_absolute_values(name):
    got = score(name, FC)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [[0.5, 1.0], [0.25, 2.0], [0.0, 0.75]])
    np.testing.assert_array_equal(score(name, CONV), np.abs(CONV))


def test_l2_is_the_square_so_group_sums_are_squared_norms():
    np.testing.assert_array_equal(score("L2", FC), [[0.25, 1.0], [0.0625, 4.0], [0.0, 0.5625]])
    # Channel 1 of CONV: 9 + 16 = 25 = |f1|^2.
    assert score("L2", CONV)[1].sum() == 25.0


def test_bn_folded_scales_each_output_row():
    context = ScoreContext(out_scale=np.array([2.0, -0.5, 4.0]))
    np.testing.assert_allclose(score("BNFolded", FC, context), [[1.0, 2.0], [0.125, 1.0], [0.0, 3.0]])
    conv = score("BNFolded", CONV, ScoreContext(out_scale=[1.0, 0.5, -2.0]))
    np.testing.assert_allclose(conv[1, 0], [[1.5, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(conv[2, 0], [[6.0, 0.0], [0.0, 0.0]])


def test_bn_gamma_broadcasts_abs_gamma_over_each_channel():
    got = score("BNGamma", FC, ScoreContext(gamma=np.array([0.3, -0.1, 0.0])))
    np.testing.assert_allclose(got, [[0.3, 0.3], [0.1, 0.1], [0.0, 0.0]])
    conv = score("BNGamma", CONV, ScoreContext(gamma=[-2.0, 1.0, 0.5]))
    np.testing.assert_allclose(conv, per_channel([2.0, 1.0, 0.5], CONV.shape))


def test_fpgm_sums_distances_to_the_other_filters():
    np.testing.assert_allclose(score("FPGM", CONV), per_channel([8.0, 9.0, 7.0], CONV.shape))


def test_fpgm_median_is_the_distance_to_the_median_filter():
    # Median filter of |f0|, |f1|, |f2| (the middle of three per element): (3, 0, 0, 0).
    np.testing.assert_allclose(score("FPGMMedian", CONV), per_channel([3.0, 4.0, 0.0], CONV.shape))
    # Folded with the next BatchNorm: |f1'| = (1.5, 2, 0, 0), |f2'| = (6, 0, 0, 0), median (1.5, 0, 0, 0).
    folded = score("FPGMMedian", CONV, ScoreContext(out_scale=np.array([1.0, 0.5, -2.0])))
    np.testing.assert_allclose(folded, per_channel([1.5, 2.0, 4.5], CONV.shape))
    # An even count takes torch's lower median, (0, 0) here, not the mean (1, 1).
    two = np.array([[0.0, 0.0], [2.0, 2.0]])
    np.testing.assert_allclose(score("FPGMMedian", two), per_channel([0.0, 8 ** 0.5], two.shape))


def test_a_function_is_a_criterion_too():
    def halves(w, context):
        return np.abs(w) / 2 + context.index
    halves.channel_only = True
    np.testing.assert_allclose(score(halves, FC, ScoreContext(index=1)), np.abs(FC) / 2 + 1)
    assert is_channel_only(halves) and not is_channel_only(lambda w, c: w)


def test_fpgm_gram_path_matches_the_direct_one(monkeypatch):
    monkeypatch.setattr(criteria, "_DIRECT_PAIRS_LIMIT", 0)
    np.testing.assert_allclose(score("FPGM", CONV), per_channel([8.0, 9.0, 7.0], CONV.shape))
    w = np.random.default_rng(3).standard_normal((7, 3, 3, 3))
    w[4] = w[2]  # identical filters: their distance must come out 0, not sqrt(rounding)
    gram = score("FPGM", w)
    monkeypatch.setattr(criteria, "_DIRECT_PAIRS_LIMIT", 1 << 20)
    np.testing.assert_allclose(gram, score("FPGM", w), rtol=1e-10)


def test_taylor_returns_the_accumulated_saliency():
    saliency = np.zeros((1, 2))
    w, g1, g2 = np.array([[1.0, -2.0]]), np.array([[0.5, 0.25]]), np.array([[-1.0, 1.0]])
    assert accumulate_saliency(saliency, w, g1) is saliency
    np.testing.assert_allclose(saliency, [[0.5, 0.5]])
    accumulate_saliency(saliency, w, g2)
    np.testing.assert_allclose(saliency, [[1.5, 2.5]])
    got = score("Taylor", w, ScoreContext(saliency=saliency))
    np.testing.assert_allclose(got, [[1.5, 2.5]])
    assert got is not saliency


def test_random_is_reproducible_with_a_seed():
    def draw(seed):
        return score("Random", CONV, ScoreContext(rng=np.random.default_rng(seed)))
    first = draw(7)
    assert first.shape == CONV.shape and (first >= 0).all() and (first < 1).all()
    np.testing.assert_array_equal(first, draw(7))
    assert not np.array_equal(first, draw(8))


@pytest.mark.parametrize("name, needed", [
    ("BNFolded", "BatchNorm cell fed by this cell"),
    ("BNGamma", "BatchNorm cell fed by this cell"),
    ("Taylor", "saliency"),
    ("Random", "random generator"),
])
def test_missing_context_names_what_is_needed(name, needed):
    with pytest.raises(ValueError, match=f"criterion {name} needs .*{needed}"):
        score(name, FC, ScoreContext())


def test_per_channel_values_must_match_the_outputs():
    with pytest.raises(ValueError, match="2 channel values for 3 output channels"):
        score("BNFolded", FC, ScoreContext(out_scale=[1.0, 2.0]))
    with pytest.raises(ValueError, match="saliency shape"):
        score("Taylor", FC, ScoreContext(saliency=np.zeros((2, 3))))


def test_unknown_criterion_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown QWeight.Criterion=L3; known: Magnitude, L1, L2"):
        score("L3", FC)
    with pytest.raises(ValueError, match="FPGM"):
        is_channel_only("magnitude")


def test_channel_only_criteria():
    assert {name for name in CRITERIA if is_channel_only(name)} == {"BNGamma", "FPGM", "FPGMMedian"}
    assert set(CRITERIA) == {"Magnitude", "L1", "L2", "BNFolded", "BNGamma", "FPGM", "FPGMMedian",
                             "Taylor", "Random"}


def test_register_criterion(monkeypatch):
    copy = Registry(CRITERIA.what)
    copy.update(CRITERIA)
    monkeypatch.setattr(criteria, "CRITERIA", copy)
    register_criterion("Ones", channel_only=True)(lambda w, context: np.ones(w.shape))
    np.testing.assert_array_equal(score("Ones", FC), np.ones((3, 2)))
    assert is_channel_only("Ones")
    assert "Ones" not in CRITERIA  # the module's registry was the patched copy
    with pytest.raises(ValueError, match="registered twice"):
        register_criterion("Ones")(lambda w, context: np.ones(w.shape))


def test_slimming_subgradient_adds_lambda_sign_gamma():
    grad = np.array([0.1, 0.2, 0.3])
    out = add_slimming_subgradient(grad, np.array([2.0, -3.0, 0.0]), 1e-4)
    assert out is grad
    np.testing.assert_allclose(grad, [0.1001, 0.1999, 0.3], rtol=0, atol=1e-15)


def test_bn_out_scale():
    got = bn_out_scale(np.array([1.0, -2.0], dtype=np.float32), np.array([3.99, 0.24]), 0.01)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [0.5, -4.0])
