"""data.transforms.affine: Affine images and N2D2's .bin matrix files."""

import struct

import numpy as np
import pytest

from n2prune.data import transforms as tf
from n2prune.data.transforms.affine import read_value_file
from n2prune.errors import DataError, SettingError, UserError


def write_cvmat(path, array, cv_depth):
    """An N2D2 BinaryCvMat file: int32 rows, cols, type = depth + 8 (channels - 1), pixels."""
    rows, cols = array.shape[:2]
    channels = array.shape[2] if array.ndim == 3 else 1
    path.write_bytes(struct.pack("<iii", rows, cols, cv_depth + 8 * (channels - 1))
                     + array.tobytes())


def test_affine_float_data_minus_an_image_then_divided():
    data = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)
    mean = np.full((2, 2, 3), 1.5)
    std = np.array([[[2.0, 0.0, 4.0]] * 2] * 2)
    out = tf.Affine("Minus", mean, "Divides", std).apply(data, None)
    assert out.dtype == np.float32
    expected = (data - 1.5) / np.where(std == 0, np.inf, std)  # N2D2: x / 0 gives 0
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out[0, 0, 0, 1] == 0.0


def test_affine_types_follow_opencv():
    data = np.array([[[200, 10]]], np.uint8)  # (N=1, H=1, W=2)
    plus = tf.Affine("Plus", np.array([[100, 5]], np.uint8))
    assert plus.keeps_uint8
    out = plus.apply(data, None)
    assert out.dtype == np.uint8 and out.tolist() == [[[255, 15]]]  # saturated
    minus = tf.Affine("Minus", np.array([[100, 20]], np.uint8)).apply(data, None)
    assert minus.tolist() == [[[100, 0]]]
    half = tf.Affine("Multiplies", np.array([[0.5, 0.25]]))
    assert not half.keeps_uint8
    out = half.apply(data, None)
    assert out.dtype == np.float32 and out.tolist() == [[[100.0, 2.5]]]


def test_affine_size_mismatch_is_one_line():
    with pytest.raises(UserError, match="^Affine: the Minus value is 3x2x1, the stimuli are "
                                        "2x2x1$"):
        tf.Affine("Minus", np.zeros((2, 3))).apply(np.zeros((1, 2, 2), np.float32), None)


def test_values_from_n2d2_bin_and_npy_files(tmp_path):
    image = np.random.default_rng(0).random((3, 4, 3))
    write_cvmat(tmp_path / "mean.bin", image, 6)  # CV_64FC3
    np.testing.assert_array_equal(read_value_file(tmp_path / "mean.bin"), image)
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_cvmat(tmp_path / "grey.bin", grey, 0)
    np.testing.assert_array_equal(tf.read_cvmat(tmp_path / "grey.bin"), grey)
    np.save(tmp_path / "mean.npy", image)
    affine = tf.Affine("Minus", str(tmp_path / "mean.npy"))
    np.testing.assert_array_equal(affine.first_value, image)
    (tmp_path / "cut.bin").write_bytes((tmp_path / "mean.bin").read_bytes()[:40])
    with pytest.raises(DataError, match="cut.bin: 28 bytes of pixels, expected 288 for 3x4x3"):
        tf.read_cvmat(tmp_path / "cut.bin")
    with pytest.raises(SettingError, match="must be a .bin \\(N2D2 matrix\\) or .npy file") as info:
        tf.Affine("Plus", "mean.png")
    assert info.value.setting == "first_value"
    with pytest.raises(SettingError, match="missing.npy: cannot read"):
        tf.Affine("Plus", grey, second_value=str(tmp_path / "missing.npy"))
