"""data.transforms.colour: ColorSpace and ChannelExtraction against OpenCV's formulas."""

import numpy as np
import pytest

from n2prune.data import transforms as tf
from n2prune.errors import SettingError

# cv2.cvtColor(BGR, COLOR_BGR2YCrCb) (OpenCV 5.0), as in test_data_transforms.
BGR = np.array([[[10, 200, 30], [255, 0, 128]], [[1, 2, 3], [90, 180, 45]]], np.uint8)
CV_YCRCB = np.array([[[128, 58, 61], [67, 171, 234]], [[2, 129, 127], [129, 68, 106]]])


def opencv_hsv_uint8(b, g, r):
    """OpenCV's RGB2HSV_b for one pixel, written from its source: 12-bit tables
    ``sdiv[i] = round(255 * 4096 / i)``, ``hdiv[i] = round(180 * 4096 / (6 i))``."""
    v, low = max(b, g, r), min(b, g, r)
    diff = v - low
    sdiv = round((255 << 12) / v) if v else 0
    hdiv = round((180 << 12) / (6.0 * diff)) if diff else 0
    s = (diff * sdiv + 2048) >> 12
    h = g - b if v == r else (b - r + 2 * diff if v == g else r - g + 4 * diff)
    h = (h * hdiv + 2048) >> 12
    return (h + 180 if h < 0 else h), s, v


def test_hsv_uint8_hand_computed_and_against_the_per_pixel_formula():
    # BGR (10, 200, 30): V=200 (green), diff 190, S=190*255/200=242.25 -> 242,
    # H=(60*(10-30)/190 + 120) / 2 = 56.84 -> 57 (OpenCV's hue is halved).
    out = tf.ColorSpace("HSV").apply(BGR[np.newaxis], None)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 2, 3)
    assert out[0, 0, 0].tolist() == [57, 242, 200]
    pure = np.array([[[[0, 0, 255], [0, 255, 0], [255, 0, 0], [255, 255, 255], [0, 0, 0]]]],
                    np.uint8)
    hsv = tf.ColorSpace("HSV").apply(pure, None)[0, 0]
    assert hsv.tolist() == [[0, 255, 255], [60, 255, 255], [120, 255, 255], [0, 0, 255], [0, 0, 0]]
    image = np.random.default_rng(0).integers(0, 256, (1, 16, 16, 3)).astype(np.uint8)
    out = tf.ColorSpace("HSV").apply(image, None)[0]
    expected = [[opencv_hsv_uint8(*map(int, px)) for px in row] for row in image[0]]
    np.testing.assert_array_equal(out, np.array(expected))


def test_hsv_float_in_degrees():
    image = np.array([[[[0.2, 0.5, 0.1], [0.0, 0.0, 1.0]]]], np.float32)
    out = tf.ColorSpace("HSV").apply(image, None)[0, 0]
    # V=0.5 (green), diff 0.4, S=0.8, H=60*(0.2-0.1)/0.4 + 120 = 135 degrees.
    np.testing.assert_allclose(out, [[135.0, 0.8, 0.5], [0.0, 1.0, 1.0]], rtol=1e-5)


def test_rgb_input_forms_reverse_the_channels_first():
    rgb = BGR[np.newaxis, ..., ::-1]
    np.testing.assert_array_equal(tf.ColorSpace("RGB_to_YCrCb").apply(rgb, None)[0], CV_YCRCB)
    np.testing.assert_array_equal(tf.ColorSpace("YCrCb").apply(BGR[np.newaxis], None)[0],
                                  CV_YCRCB)
    np.testing.assert_array_equal(tf.ColorSpace("RGB_to_HSV").apply(rgb, None),
                                  tf.ColorSpace("HSV").apply(BGR[np.newaxis], None))
    np.testing.assert_array_equal(tf.ColorSpace("RGB_to_BGR").apply(rgb, None)[0], BGR)


def test_bgr_and_rgb_from_grey_bgra_and_bgr():
    grey = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    for name in ("BGR", "RGB"):
        out = tf.ColorSpace(name).apply(grey, None)
        assert out.shape == (1, 2, 3, 3)  # GRAY2BGR / GRAY2RGB: three equal channels
        assert all(np.array_equal(out[..., c], grey) for c in range(3))
    bgra = np.arange(8, dtype=np.uint8).reshape(1, 1, 2, 4)
    assert tf.ColorSpace("BGR").apply(bgra, None)[0, 0].tolist() == [[0, 1, 2], [4, 5, 6]]
    # N2D2 calls RGBA2BGR: the first three channels, reversed.
    assert tf.ColorSpace("RGB").apply(bgra, None)[0, 0].tolist() == [[2, 1, 0], [6, 5, 4]]
    assert tf.ColorSpace("RGB").apply(BGR[np.newaxis], None)[0, 0, 0].tolist() == [30, 200, 10]
    # Grey images pass the conversions that need colour unchanged, as in N2D2.
    for name in ("HSV", "YCrCb", "RGB_to_BGR"):
        np.testing.assert_array_equal(tf.ColorSpace(name).apply(grey, None), grey)


def test_output_shapes():
    assert tf.ColorSpace("RGB").output_shape((5, 6, 1)) == (5, 6, 3)
    assert tf.ColorSpace("HSV").output_shape((5, 6, 1)) == (5, 6, 1)
    assert tf.ColorSpace("BGR").output_shape((5, 6, 4)) == (5, 6, 3)


def test_refused_and_unknown_colour_spaces():
    with pytest.raises(SettingError, match="^ColorSpace=CIELab is not supported by n2prune; "
                                           "supported: BGR, RGB, HSV, YCrCb") as info:
        tf.ColorSpace("CIELab")
    assert info.value.setting == "color_space"
    with pytest.raises(SettingError, match="^unknown ColorSpace=Lab; did you mean"):
        tf.ColorSpace("Lab")


def test_channel_extraction_hsv_channels():
    batch = BGR[np.newaxis]
    hsv = tf.ColorSpace("HSV").apply(batch, None)
    for index, name in enumerate(("Hue", "Saturation", "Value")):
        out = tf.ChannelExtraction(name).apply(batch, None)
        assert out.shape == (1, 2, 2) and out.dtype == np.uint8
        expected = hsv[..., index].astype(np.float64)
        if name == "Hue":  # N2D2: convertTo(CV_8U, 255 / 180), rounded half to even
            expected = np.clip(np.rint(expected * 255 / 180), 0, 255)
        np.testing.assert_array_equal(out, expected)
    assert tf.ChannelExtraction("Hue").apply(batch, None)[0, 0, 0] == 81  # 57 * 255 / 180 = 80.75
