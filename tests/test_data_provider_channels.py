"""Channel pipelines of the stimuli provider (N2D2's ChannelTransformation sections)."""

import numpy as np
import pytest

from n2prune.data.provider import StimuliProvider
from n2prune.data.transforms import ChannelExtraction, Flip, RangeAffine, Rescale
from n2prune.errors import ShapeError

LEARN_ONLY = ("learn",)


def colour(n=4, shape=(5, 6), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape, 3)).astype(np.uint8)


def mean_removed(plane, mean):
    # RangeAffine's two steps, each in double stored as float32.
    step = (plane.astype(np.float64) - mean).astype(np.float32)
    return (step.astype(np.float64) / 255).astype(np.float32)


def test_channels_as_googlenet_extract_then_remove_a_mean_each():
    # GoogleNet.ini: Red, Green, Blue channels, then Channel=i Minus mean, Divides 255.
    data = colour()
    means = (104.0, 117.0, 123.0)
    channels = [([ChannelExtraction(name), RangeAffine("Minus", [mean]),
                  RangeAffine("Divides", [255.0])], [])
                for name, mean in zip(("Red", "Green", "Blue"), means)]
    sp = StimuliProvider((5, 6, 3), 2, channels=channels)
    batch = sp.batch(sp.prepare(data, "learn"), np.array([3, 1]), None, "learn")
    assert batch.shape == (3, 5, 6, 2) and batch.dtype == np.float32
    for channel, (bgr, mean) in enumerate(zip((2, 1, 0), means)):
        for column, row in enumerate((3, 1)):
            np.testing.assert_array_equal(batch[channel, :, :, column],
                                          mean_removed(data[row, :, :, bgr], mean))


def test_each_channel_still_8_bit_is_divided_by_255_on_its_own():
    data = colour()
    channels = [([ChannelExtraction("Blue")], []), ([RangeAffine("Minus", [1.0])], [])]
    data = data[..., :1]  # one channel: extraction passes it, RangeAffine keeps it
    sp = StimuliProvider((5, 6, 2), 4, channels=channels)
    batch = sp.batch(sp.prepare(data, "test"), np.arange(4), None, "test")
    np.testing.assert_allclose(batch[0], data[..., 0].transpose(1, 2, 0) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(batch[1], data[..., 0].transpose(1, 2, 0) - np.float32(1))


def test_global_transformations_run_first_and_apply_to_scopes_a_channel_step():
    data = colour(shape=(10, 12))
    minus = RangeAffine("Minus", [7.0])
    channels = [([ChannelExtraction("Green"), (minus, LEARN_ONLY)], [])]
    sp = StimuliProvider((5, 6, 1), 4, transforms=[Rescale(6, 5)], channels=channels)
    small = Rescale(6, 5).apply(data, None)[..., 1]
    learn = sp.batch(sp.prepare(data, "learn"), np.arange(4), None, "learn")
    test = sp.batch(sp.prepare(data, "test"), np.arange(4), None, "test")
    np.testing.assert_array_equal(learn[0], small.transpose(1, 2, 0) - np.float32(7))
    np.testing.assert_allclose(test[0], small.transpose(1, 2, 0) / 255.0, rtol=1e-6)
    assert sp.channel_steps("validation") == [[channels[0][0][0]]]


def test_on_the_fly_channel_steps_draw_from_the_batch_generator():
    data = colour(n=8)
    flip = Flip(random_horizontal=True)
    channels = [([ChannelExtraction("Red")], [flip]), ([ChannelExtraction("Red")], [])]
    sp = StimuliProvider((5, 6, 2), 8, channels=channels)
    batch = sp.batch(sp.prepare(data, "learn"), np.arange(8), np.random.default_rng(3), "learn")
    flipped = [not np.array_equal(batch[0, ..., i], batch[1, ..., i]) for i in range(8)]
    assert any(flipped) and not all(flipped)
    for i in np.flatnonzero(flipped):
        np.testing.assert_array_equal(batch[0, :, :, i], batch[1, :, ::-1, i])


def test_a_channel_pipeline_giving_several_channels_is_refused():
    channels = [([ChannelExtraction("Red")], []), ([RangeAffine("Minus", [1.0])], [])]
    sp = StimuliProvider((5, 6, 2), 2, channels=channels)
    with pytest.raises(ShapeError, match="^channel 1 of the learn stimuli has 3 channels after "
                                         "its transformations; a channel pipeline must give one"):
        sp.batch(sp.prepare(colour(), "learn"), np.arange(2), None, "learn")


def test_the_channel_count_is_the_number_of_pipelines():
    with pytest.raises(ValueError, match="2 channel pipelines for 3 channels"):
        StimuliProvider((5, 6, 3), 2, channels=[([], []), ([], [])])
