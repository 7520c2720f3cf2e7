"""data.stimuli_data: N2D2's StimuliData statistics, against numpy on a tiny set."""

import numpy as np
import pytest

from n2prune.data.stimuli_data import (
    StimuliStats,
    compute_stats,
    placeholder_stats,
    stimuli_values,
)
from n2prune.data.transforms import Flip, RangeAffine, Rescale
from n2prune.errors import DataError


def tiny(n=7, shape=(3, 4, 2), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype(np.uint8)


def test_raw_pixels_without_transformations():
    data = tiny()
    stats = compute_stats(stimuli_values(data, [], None, chunk=3))
    values = data.astype(np.float64)  # N2D2's readRawData: 0..255, not divided
    assert stats.count == 7
    assert (stats.min_value, stats.max_value) == (values.min(), values.max())
    assert stats.mean == pytest.approx(values.mean(), rel=1e-12)
    assert stats.std_dev == pytest.approx(values.std(ddof=1), rel=1e-12)  # n - 1, all channels
    assert stats.mean_data is None and stats.std_dev_data is None


def test_uint8_after_a_transformation_counts_as_value_over_255():
    data = tiny()
    stats = compute_stats(stimuli_values(data, [Rescale(2, 3)], None))
    expected = Rescale(2, 3).apply(data, None) / 255.0
    assert stats.mean == pytest.approx(expected.mean(), rel=1e-12)
    assert stats.max_value == pytest.approx(expected.max())
    floats = compute_stats(stimuli_values(data, [RangeAffine("Minus", 100.0)], None))
    assert floats.min_value == data.min() - 100.0  # float results are kept as they are


def test_mean_and_std_dev_images_by_chunks():
    data = tiny(11)
    stats = compute_stats(stimuli_values(data, [], None, chunk=4), mean_data=True,
                          std_dev_data=True)
    values = data.astype(np.float64)
    np.testing.assert_allclose(stats.mean_data, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std_dev_data, values.std(axis=0, ddof=1), rtol=1e-12)
    assert stats.mean_data.shape == (3, 4, 2)
    grey = compute_stats(stimuli_values(tiny(5, (3, 4)), [], None), mean_data=True)
    assert grey.mean_data.shape == (3, 4, 1) and grey.std_dev_data is None


def test_random_transformations_draw_from_the_generator():
    data = tiny(50, (2, 3))
    one = compute_stats(stimuli_values(data, [Flip(random_horizontal=True)],
                                       np.random.default_rng(3)), mean_data=True)
    two = compute_stats(stimuli_values(data, [Flip(random_horizontal=True)],
                                       np.random.default_rng(3)), mean_data=True)
    np.testing.assert_array_equal(one.mean_data, two.mean_data)


def test_no_stimuli_is_an_error():
    with pytest.raises(DataError, match="no stimuli"):
        compute_stats(stimuli_values(tiny(0), [], None))


def test_save_and_load(tmp_path):
    stats = compute_stats(stimuli_values(tiny(), [], None), mean_data=True)
    path = tmp_path / "stimuli_data" / "sp.StimuliData-x.npz"
    stats.save(path)
    back = StimuliStats.load(path)
    assert (back.count, back.mean, back.std_dev) == (stats.count, stats.mean, stats.std_dev)
    np.testing.assert_array_equal(back.mean_data, stats.mean_data)
    assert back.std_dev_data is None
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="unreadable stimuli statistics .*delete the file"):
        StimuliStats.load(path)


def test_placeholders_are_an_identity_normalisation():
    stats = placeholder_stats((4, 5, 3))
    assert (stats.mean, stats.std_dev, stats.min_value, stats.max_value) == (0.0, 1.0, 0.0, 1.0)
    assert stats.mean_data.shape == (4, 5, 3) and not stats.mean_data.any()
