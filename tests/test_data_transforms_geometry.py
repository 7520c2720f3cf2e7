"""data.transforms.geometry: SliceExtraction, and PadCrop's AdditiveWH (N2D2's semantics)."""

import numpy as np
import pytest

from n2prune.data import transforms as tf
from n2prune.errors import SettingError, UserError


def images(n, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w)).astype(np.uint8)


def test_slice_at_fixed_offsets_and_full_size():
    data = images(3, 6, 8)
    out = tf.SliceExtraction(4, 3, offset_x=2, offset_y=1).apply(data, None)
    np.testing.assert_array_equal(out, data[:, 1:4, 2:6])
    assert out.dtype == np.uint8
    # Width=0: the image's own width (N2D2's targetWidth).
    np.testing.assert_array_equal(tf.SliceExtraction(0, 2).apply(data, None), data[:, :2, :])
    assert tf.SliceExtraction(0, 2).output_shape((6, 8, 1)) == (2, 8, 1)
    colour = np.arange(2 * 4 * 5 * 3, dtype=np.float32).reshape(2, 4, 5, 3)
    np.testing.assert_array_equal(tf.SliceExtraction(2, 2, 3, 2).apply(colour, None),
                                  colour[:, 2:4, 3:5])


def test_random_offsets_are_drawn_per_image_over_every_fitting_offset():
    data = np.broadcast_to(np.arange(10, dtype=np.uint8) * 10, (400, 3, 10)).copy()
    data += np.arange(3, dtype=np.uint8)[:, None]  # pixel = 10 x + y
    transform = tf.SliceExtraction(6, 3, random_offset_x=True)
    assert transform.random
    out = transform.apply(data, np.random.default_rng(0))
    x0 = out[:, 0, 0] // 10
    # Each slice is the crop at its own offset, offsets uniform in [0, 10 - 6].
    for i in range(len(out)):
        np.testing.assert_array_equal(out[i], data[i, :, x0[i]:x0[i] + 6])
    assert set(x0.tolist()) == {0, 1, 2, 3, 4}
    # The image is no wider than the slice: offset 0 (N2D2 draws nothing).
    same = tf.SliceExtraction(10, 3, random_offset_x=True).apply(data, np.random.default_rng(1))
    np.testing.assert_array_equal(same, data)


def test_slice_past_the_edge_needs_allow_padding():
    data = np.arange(1, 13, dtype=np.uint8).reshape(1, 3, 4)
    with pytest.raises(UserError, match="a 4x3 slice at offset \\(2, 0\\) does not fit in a "
                                        "4x3 image; set AllowPadding=1"):
        tf.SliceExtraction(4, 3, offset_x=2).apply(data, None)
    out = tf.SliceExtraction(4, 3, offset_x=2, allow_padding=True, border_type="ConstantBorder",
                             border_value=[9]).apply(data, None)
    assert out[0].tolist() == [[3, 4, 9, 9], [7, 8, 9, 9], [11, 12, 9, 9]]
    # Reflect-101 from the part inside the image (copyMakeBorder on the ROI, rows
    # 1-2 only): OpenCV's borderInterpolate maps rows 2, 3 past a 2-row ROI to 0, 1.
    out = tf.SliceExtraction(4, 4, offset_x=1, offset_y=1, allow_padding=True).apply(data, None)
    assert out[0].tolist() == [[6, 7, 8, 7], [10, 11, 12, 11], [6, 7, 8, 7], [10, 11, 12, 11]]


def test_slice_refuses_rotation_and_scaling():
    for keyword in ("random_rotation", "random_scaling"):
        with pytest.raises(SettingError, match="^Random(Rotation|Scaling) is not supported") as info:
            tf.SliceExtraction(4, 4, **{keyword: True})
        assert info.value.setting == keyword
    tf.SliceExtraction(4, 4, random_rotation_range=(-15, 15))  # a range alone changes nothing


def test_pad_crop_additive_sizes():
    data = images(2, 3, 4)
    out = tf.PadCrop(2, 4, additive=True, border_type="ConstantBorder").apply(data, None)
    assert out.shape == (2, 7, 6)
    np.testing.assert_array_equal(out[:, 2:5, 1:5], data)  # ceil(4/2)=2 on top, 1 on the left
    assert tf.PadCrop(2, 4, additive=True).output_shape((3, 4, 1)) == (7, 6, 1)
    with pytest.raises(UserError, match="the output of a 4x3 image is empty"):
        tf.PadCrop(0, 3).output_shape((3, 4, 1))
