import numpy as np
import pytest

from n2prune.data import transforms as tf
from n2prune.errors import SettingError, UserError
from n2prune.registry import UnknownName

# cv2.resize(x, (7, 5)) and (3, 2), INTER_LINEAR, x = arange(12).reshape(3, 4) ** 1.5
# (OpenCV 5.0, float32).
CV_UP = np.array([
    [0.0, 0.35714287, 0.9285714, 1.9142135, 2.9975502, 4.350536, 5.196152],
    [3.2, 3.8686202, 4.9384117, 6.3239837, 7.7865434, 9.472237, 10.525796],
    [8.0, 9.135836, 10.953173, 12.938639, 14.970033, 17.154787, 18.52026],
    [16.776451, 18.167767, 20.393873, 22.76229, 25.16997, 27.71019, 29.297827],
    [22.627417, 24.189054, 26.687672, 29.311388, 31.969925, 34.747124, 36.482872]])
CV_DOWN = np.array([[2.2575142, 4.67032, 8.071909], [19.649649, 25.2182, 31.2254]])
# cv2.cvtColor of this BGR image: GRAY and YCrCb.
BGR = np.array([[[10, 200, 30], [255, 0, 128]], [[1, 2, 3], [90, 180, 45]]], np.uint8)
CV_GRAY = np.array([[128, 67], [2, 129]])
CV_YCRCB = np.array([[[128, 58, 61], [67, 171, 234]], [[2, 129, 127], [129, 68, 106]]])


def reference_resize(image, out_h, out_w):
    """Per-pixel bilinear resize with half-pixel centres, float64."""
    in_h, in_w = image.shape
    out = np.zeros((out_h, out_w))
    for y in range(out_h):
        sy = min(max((y + 0.5) * in_h / out_h - 0.5, 0.0), in_h - 1)
        for x in range(out_w):
            sx = min(max((x + 0.5) * in_w / out_w - 0.5, 0.0), in_w - 1)
            y0, x0 = int(sy), int(sx)
            y1, x1 = min(y0 + 1, in_h - 1), min(x0 + 1, in_w - 1)
            fy, fx = sy - y0, sx - x0
            out[y, x] = ((1 - fy) * ((1 - fx) * image[y0, x0] + fx * image[y0, x1])
                         + fy * ((1 - fx) * image[y1, x0] + fx * image[y1, x1]))
    return out


def test_registries():
    assert list(tf.TRANSFORMATIONS) == [
        "RescaleTransformation", "PadCropTransformation", "SliceExtractionTransformation",
        "FlipTransformation", "ChannelExtractionTransformation", "ColorSpaceTransformation",
        "RangeAffineTransformation", "AffineTransformation"]
    assert tf.TRANSFORMATIONS.lookup("RescaleTransformation") is tf.Rescale
    with pytest.raises(UnknownName, match="^unknown Type=RescaleTransform; did you mean "
                                          "RescaleTransformation\\? known: RescaleTransformation"):
        tf.TRANSFORMATIONS.lookup("RescaleTransform")


@pytest.mark.parametrize("name", list(tf.TRANSFORMATIONS))
def test_required_keys_are_the_parameters_without_default(name):
    table = tf.TRANSFORMATIONS[name].key_table
    required = {key.name for key in table if key.required}
    expected = {"RescaleTransformation": {"Width", "Height"},
                "PadCropTransformation": {"Width", "Height"},
                "RangeAffineTransformation": {"FirstOperator", "FirstValue"},
                "ChannelExtractionTransformation": {"CSChannel"},
                "FlipTransformation": set(),
                "SliceExtractionTransformation": {"Width", "Height"},
                "ColorSpaceTransformation": {"ColorSpace"},
                "AffineTransformation": {"FirstOperator", "FirstValue"}}
    assert required == expected[name]


def test_flags():
    assert tf.Rescale(4, 4).keeps_uint8 and not tf.Rescale(4, 4).random
    assert not tf.RangeAffine("Divides", 255).keeps_uint8
    assert not tf.Flip(horizontal=True).random and tf.Flip(random_vertical=True).random


def test_rescale_hand_computed_2x2_to_4x4():
    # Sample positions per axis: -0.25, 0.25, 0.75, 1.25 -> clamped 0, .25, .75, 1.
    # Rows first: [0, 100] -> [0, 25, 75, 100]; [200, 40] -> [200, 160, 80, 40];
    # then row 1 = .75 * first + .25 * last, row 2 = .25 * first + .75 * last.
    image = np.array([[[0, 100], [200, 40]]], np.float32)
    expected = np.array([[0, 25, 75, 100],
                         [50, 58.75, 76.25, 85],
                         [150, 126.25, 78.75, 55],
                         [200, 160, 80, 40]])
    np.testing.assert_allclose(tf.Rescale(4, 4).apply(image, None)[0], expected, rtol=1e-6)
    as_uint8 = tf.Rescale(4, 4).apply(image.astype(np.uint8), None)
    assert as_uint8.dtype == np.uint8
    assert as_uint8[0, 1:3, 1:3].tolist() == [[59, 76], [126, 79]]


def test_rescale_matches_opencv_float():
    image = (np.arange(12, dtype=np.float32).reshape(1, 3, 4) ** 1.5)
    np.testing.assert_allclose(tf.Rescale(7, 5).apply(image, None)[0], CV_UP, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tf.Rescale(3, 2).apply(image, None)[0], CV_DOWN, rtol=1e-6)


def test_rescale_28_to_32_against_reference():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28)).astype(np.uint8)
    out = tf.Rescale(32, 32).apply(images, None)
    out_float = tf.Rescale(32, 32).apply(images.astype(np.float32), None)
    assert out.shape == (3, 32, 32) and out_float.dtype == np.float32
    for k in range(3):
        ref = reference_resize(images[k].astype(np.float64), 32, 32)
        np.testing.assert_allclose(out_float[k], ref, atol=1e-3)
        assert np.abs(out[k].astype(np.float64) - ref).max() <= 0.5 + 1e-3


def test_rescale_colour_and_aspect_ratio():
    rng = np.random.default_rng(1)
    colour = rng.random((2, 5, 6, 3)).astype(np.float32)
    out = tf.Rescale(9, 7).apply(colour, None)
    assert out.shape == (2, 7, 9, 3)
    np.testing.assert_allclose(out[..., 1], tf.Rescale(9, 7).apply(colour[..., 1], None))
    tall = np.zeros((1, 20, 10), np.uint8)
    assert tf.Rescale(8, 8, keep_aspect_ratio=True).apply(tall, None).shape == (1, 8, 4)
    assert tf.Rescale(8, 8, True, resize_to_fit=False).apply(tall, None).shape == (1, 16, 8)


def test_pad_crop_offsets_follow_n2d2():
    assert tf.pad_crop_offsets(3, 6) == (2, 1)  # odd pad: extra pixel on top/left
    assert tf.pad_crop_offsets(4, 6) == (1, 1)
    assert tf.pad_crop_offsets(5, 2) == (-1, -2)  # odd crop: extra pixel off bottom/right
    assert tf.pad_crop_offsets(6, 4) == (-1, -1)


def test_pad_crop_constant_odd_and_even():
    image = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3)
    out = tf.PadCrop(6, 4, border_type="ConstantBorder").apply(image, None)
    assert out.shape == (1, 4, 6) and out.dtype == np.uint8
    assert out[0].tolist() == [[0, 0, 0, 0, 0, 0],
                               [0, 0, 1, 2, 3, 0],
                               [0, 0, 4, 5, 6, 0],
                               [0, 0, 7, 8, 9, 0]]
    big = np.arange(30, dtype=np.float32).reshape(1, 5, 6)
    np.testing.assert_array_equal(tf.PadCrop(2, 2).apply(big, None)[0], big[0, 1:3, 2:4])
    np.testing.assert_array_equal(tf.PadCrop(4, 3).apply(big, None)[0], big[0, 1:4, 1:5])


def test_pad_crop_border_types():
    row = np.array([[[1, 2, 3, 4]]], np.uint8)  # (N=1, H=1, W=4); pads left 2, right 1
    def pad(kind):
        return tf.PadCrop(7, 1, border_type=kind).apply(row, None)[0, 0].tolist()
    assert pad("MinusOneReflectBorder") == [3, 2, 1, 2, 3, 4, 3]  # N2D2's default
    assert tf.PadCrop(7, 1).apply(row, None)[0, 0].tolist() == [3, 2, 1, 2, 3, 4, 3]
    assert pad("ReflectBorder") == [2, 1, 1, 2, 3, 4, 4]
    assert pad("ReplicateBorder") == [1, 1, 1, 2, 3, 4, 4]
    assert pad("WrapBorder") == [3, 4, 1, 2, 3, 4, 1]
    assert pad("MeanBorder") == [2, 2, 1, 2, 3, 4, 2]  # mean 2.5, half to even as OpenCV
    colour = np.zeros((1, 1, 1, 2), np.float32)
    out = tf.PadCrop(2, 1, border_type="ConstantBorder", border_value=[5, 7]).apply(colour, None)
    assert out[0, 0].tolist() == [[5, 7], [0, 0]]
    with pytest.raises(UserError, match="known: ConstantBorder"):
        tf.PadCrop(2, 2, border_type="Zero")


def test_range_affine():
    batch = np.array([[[0, 51, 255]]], np.uint8)
    out = tf.RangeAffine("Divides", 255.0, "Minus", 0.5).apply(batch, None)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [-0.5, -0.3, 0.5], rtol=1e-6)
    # A second value without operator is added (N2D2's default SecondOperator=Plus).
    np.testing.assert_allclose(tf.RangeAffine("Multiplies", 2, second_value=1).apply(batch, None),
                               2.0 * batch + 1)
    # No second value: no second step, whatever the operator.
    np.testing.assert_array_equal(tf.RangeAffine("Plus", 1, "Divides").apply(batch, None),
                                  batch + 1.0)
    colour = np.ones((1, 1, 2, 3), np.float32)
    out = tf.RangeAffine("Minus", [0.5, 1.0, 1.5]).apply(colour, None)
    assert out[0, 0, 0].tolist() == [0.5, 0.0, -0.5]
    np.testing.assert_array_equal(tf.RangeAffine("Plus", -0.7, truncate=True).apply(batch, None),
                                  [[[-0.0, 50.0, 254.0]]])
    with pytest.raises(UserError, match="3 values for 1 channels"):
        tf.RangeAffine("Plus", [1, 2, 3]).apply(batch, None)
    with pytest.raises(SettingError, match="^unknown FirstOperator=Times; known: Plus, Minus, "
                                           "Multiplies, Divides$") as info:
        tf.RangeAffine("Times", 2)
    assert info.value.setting == "first_operator"


def test_channel_extraction_matches_opencv():
    batch = BGR[np.newaxis]
    assert tf.ChannelExtraction("Gray").apply(batch, None)[0].tolist() == CV_GRAY.tolist()
    for index, name in enumerate(("Y", "Cr", "Cb")):
        assert tf.ChannelExtraction(name).apply(batch, None)[0].tolist() == \
            CV_YCRCB[..., index].tolist()
    assert tf.ChannelExtraction("Red").apply(batch, None)[0].tolist() == [[30, 128], [3, 45]]
    assert tf.ChannelExtraction("Blue").apply(batch, None)[0].tolist() == [[10, 255], [1, 90]]
    as_float = tf.ChannelExtraction("Gray").apply(batch.astype(np.float32), None)
    np.testing.assert_allclose(as_float[0, 0, 0], 0.114 * 10 + 0.587 * 200 + 0.299 * 30,
                               rtol=1e-6)


def test_channel_extraction_gray_input_and_errors():
    gray = np.arange(4, dtype=np.uint8).reshape(1, 2, 2)
    out = tf.ChannelExtraction("Gray").apply(gray, None)
    assert np.array_equal(out, gray) and out is not gray
    with pytest.raises(SettingError, match="^unknown CSChannel=Grey; did you mean Gray\\? "
                                           "known: Red, Green,") as info:
        tf.ChannelExtraction("Grey")
    assert info.value.setting == "channel"


def test_flip_fixed():
    image = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    assert tf.Flip(horizontal=True).apply(image, None)[0].tolist() == [[2, 1, 0], [5, 4, 3]]
    assert tf.Flip(vertical=True).apply(image, None)[0].tolist() == [[3, 4, 5], [0, 1, 2]]
    both = tf.Flip(True, True).apply(image, None)
    assert both[0].tolist() == [[5, 4, 3], [2, 1, 0]]
    assert image[0, 0].tolist() == [0, 1, 2]  # input untouched


def test_flip_random_per_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1000, 3, 4, 2)).astype(np.uint8)
    out = tf.Flip(random_horizontal=True).apply(images, np.random.default_rng(7))
    flipped = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    kept = np.all(out == images, axis=(1, 2, 3))
    assert np.all(flipped ^ kept)
    assert 430 < flipped.sum() < 570
    again = tf.Flip(random_horizontal=True).apply(images, np.random.default_rng(7))
    assert np.array_equal(out, again)
