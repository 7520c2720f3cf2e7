import numpy as np
import pytest

from n2prune.data import provider as provider_module
from n2prune.data.mnist import PARTITIONS, MnistIdxDatabase
from n2prune.data.provider import APPLY_TO, StimuliProvider
from n2prune.data.transforms import Flip, PadCrop, RangeAffine, Rescale
from n2prune.errors import ShapeError


def images(n=10, shape=(6, 6), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype(np.uint8)


def test_cache_split_stops_at_first_float_or_random_transform():
    rescale, affine, pad, flip = Rescale(4, 4), RangeAffine("Divides", 255), PadCrop(4, 4), Flip(
        random_horizontal=True)
    sp = StimuliProvider((4, 4, 1), 2, [rescale, affine, pad], on_the_fly=[flip])
    for part in PARTITIONS:
        assert sp.pipeline(part) == ([rescale], [affine, pad, flip])
    sp = StimuliProvider((4, 4, 1), 2, [Flip(random_vertical=True), rescale])
    cached, per_batch = sp.pipeline("test")
    assert cached == [] and len(per_batch) == 2


def test_prepare_keeps_uint8_and_batch_is_chwn_in_unit_range():
    data = images(10, (6, 6))
    sp = StimuliProvider((4, 4, 1), 3, [Rescale(4, 4)])
    cached = sp.prepare(data, "learn")
    assert cached.dtype == np.uint8 and cached.shape == (10, 4, 4)
    np.testing.assert_array_equal(cached, Rescale(4, 4).apply(data, None))
    batch = sp.batch(cached, np.array([7, 2]), np.random.default_rng(0), "learn")
    assert batch.dtype == np.float32 and batch.shape == (1, 4, 4, 2)  # (C, H, W, N)
    assert batch.flags.c_contiguous
    assert 0.0 <= batch.min() and batch.max() <= 1.0
    np.testing.assert_allclose(batch[0, :, :, 0], cached[7] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(batch[0, :, :, 1], cached[2] / 255.0, rtol=1e-6)


def test_colour_batch_is_channel_first():
    data = images(4, (2, 3, 3))
    sp = StimuliProvider((2, 3, 3), 4)
    batch = sp.batch(sp.prepare(data, "learn"), np.arange(4), None, "learn")
    assert batch.shape == (3, 2, 3, 4)
    np.testing.assert_allclose(batch[2, :, :, 1], data[1, :, :, 2] / 255.0, rtol=1e-6)


def test_float_transform_disables_implicit_normalisation():
    data = images(3, (4, 4))
    sp = StimuliProvider((4, 4, 1), 3, [RangeAffine("Minus", 128)])
    batch = sp.batch(sp.prepare(data, "learn"), np.arange(3), None, "learn")
    assert batch.shape == (1, 4, 4, 3) and batch.flags.c_contiguous
    np.testing.assert_array_equal(batch[0], (data.astype(np.float32) - 128).transpose(1, 2, 0))
    # Colour images through the per-batch path: (N, H, W, C) to (C, H, W, N).
    colour = images(3, (4, 4, 3))
    sp = StimuliProvider((4, 4, 3), 3, [RangeAffine("Minus", 128)])
    batch = sp.batch(sp.prepare(colour, "learn"), np.array([2, 0]), None, "learn")
    assert batch.shape == (3, 4, 4, 2) and batch.flags.c_contiguous
    np.testing.assert_array_equal(batch, (colour[[2, 0]].astype(np.float32) - 128)
                                  .transpose(3, 1, 2, 0))


def test_prepare_by_chunks_equals_one_shot(monkeypatch):
    data = images(23, (5, 7))
    transforms = [Rescale(8, 6), PadCrop(7, 7)]
    whole = StimuliProvider((7, 7, 1), 4, transforms).prepare(data, "learn")
    monkeypatch.setattr(provider_module, "PREPARE_CHUNK", 5)
    np.testing.assert_array_equal(StimuliProvider((7, 7, 1), 4, transforms).prepare(data, "learn"), whole)


def test_prepare_without_cached_transforms_is_identity():
    data = images()
    assert StimuliProvider((6, 6, 1), 2, [], [Flip(True)]).prepare(data, "learn") is data


def test_wrong_final_shape_is_a_shape_error():
    sp = StimuliProvider((32, 32, 1), 2)
    with pytest.raises(ShapeError, match="28x28 with 1 channel.*32x32 with 1.*Rescale or PadCrop"):
        sp.batch(np.zeros((2, 28, 28), np.uint8), np.arange(2), None, "learn")


def test_random_transform_runs_per_batch_with_rng():
    data = images(200, (3, 3))
    sp = StimuliProvider((3, 3, 1), 200, on_the_fly=[Flip(random_horizontal=True)])
    first = sp.batch(data, np.arange(200), np.random.default_rng(1), "learn")
    second = sp.batch(data, np.arange(200), np.random.default_rng(2), "learn")
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, sp.batch(data, np.arange(200), np.random.default_rng(1), "learn"))


def test_mnist_train_pixel_mean(monkeypatch):
    monkeypatch.delenv("N2D2_DATA", raising=False)
    db = MnistIdxDatabase()
    sp = StimuliProvider((28, 28, 1), 10000)
    cached = sp.prepare(db.images("learn"), "learn")
    total = 0.0
    for start in range(0, len(cached), sp.batch_size):
        indices = np.arange(start, min(start + sp.batch_size, len(cached)))
        total += float(sp.batch(cached, indices, None, "learn").sum(dtype=np.float64))
    assert abs(total / cached.size - 0.1307) < 1e-4


def test_apply_to_gives_each_partition_its_own_path_cached_and_on_the_fly():
    data = images(4, (6, 6))
    big, small = Rescale(8, 8), Rescale(4, 4)
    crop, mirror = PadCrop(4, 4), Flip(horizontal=True)
    sp = StimuliProvider((4, 4, 1), 2, [(big, ("learn",)), (small, ("validation", "test"))],
                         on_the_fly=[(crop, ("learn",)), (mirror, ("learn",))])
    assert sp.pipeline("learn") == ([big], [crop, mirror])
    assert sp.pipeline("test") == ([small], []) == sp.pipeline("validation")
    learn, test = sp.prepare(data, "learn"), sp.prepare(data, "test")
    assert learn.shape == (4, 8, 8) and test.shape == (4, 4, 4)
    indices = np.array([1, 3])
    expected = crop.apply(big.apply(data, None), None)[indices][:, :, ::-1]
    np.testing.assert_allclose(sp.batch(learn, indices, None, "learn")[0],
                               expected.transpose(1, 2, 0) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(sp.batch(test, indices, None, "test")[0],
                               small.apply(data, None)[indices].transpose(1, 2, 0) / 255.0,
                               rtol=1e-6)
    without_crop = StimuliProvider((4, 4, 1), 2, [(big, ("learn",))])
    with pytest.raises(ShapeError, match="^learn stimuli are 8x8"):
        without_crop.batch(learn, indices, None, "learn")


def test_unknown_partition_is_refused():
    with pytest.raises(ValueError, match="unknown partition 'train'"):
        StimuliProvider((4, 4, 1), 2).pipeline("train")
    with pytest.raises(ValueError, match="unknown partition"):
        StimuliProvider((4, 4, 1), 2, [(Rescale(4, 4), ("Learn",))])


def test_apply_to_names_n2d2_masks():
    assert APPLY_TO["NoLearn"] == ("validation", "test")
    assert APPLY_TO["NoTest"] == ("learn", "validation")
    assert APPLY_TO["All"] == PARTITIONS and set(APPLY_TO) == {
        "LearnOnly", "ValidationOnly", "TestOnly", "NoLearn", "NoValidation", "NoTest", "All"}


def test_prepare_chunks_shrink_for_large_images(monkeypatch):
    assert provider_module.chunk_size([(28, 28, 1)]) == provider_module.PREPARE_CHUNK
    assert provider_module.chunk_size([(224, 224, 3), (256, 256, 3)]) == (256 << 20) // (4 * 196608)
    monkeypatch.setattr(provider_module, "PREPARE_BYTES", 4 * 36 * 3)  # three 6x6 images
    data = images(10, (6, 6))
    sp = StimuliProvider((4, 4, 1), 2, [Rescale(4, 4)])
    np.testing.assert_array_equal(sp.prepare(data, "test"), Rescale(4, 4).apply(data, None))
