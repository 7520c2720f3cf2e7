"""Image files to uint8 BGR arrays: PGM/PPM read here, other formats through Pillow."""

import sys

import numpy as np
import pytest

from n2prune.data.decode import image_shape, read_image, write_ppm
from n2prune.errors import DataError


def bgr(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_ppm_round_trip_is_bgr_in_memory_rgb_on_disk(tmp_path):
    image = bgr(5, 7)
    write_ppm(tmp_path / "a.ppm", image)
    data = (tmp_path / "a.ppm").read_bytes()
    assert data.startswith(b"P6\n7 5\n255\n")
    assert data[11:14] == bytes(image[0, 0, ::-1])  # the first pixel, R G B
    np.testing.assert_array_equal(read_image(tmp_path / "a.ppm"), image)
    assert image_shape(tmp_path / "a.ppm") == (5, 7, 3)


def test_pgm_with_comment_is_one_channel(tmp_path):
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    (tmp_path / "g.pgm").write_bytes(b"P5\n# made by hand\n4 3\n255\n" + pixels.tobytes())
    np.testing.assert_array_equal(read_image(tmp_path / "g.pgm"), pixels)
    assert image_shape(tmp_path / "g.pgm") == (3, 4)


def test_truncated_or_16_bit_ppm_names_the_file(tmp_path):
    path = tmp_path / "t.ppm"
    write_ppm(path, bgr(4, 4))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match=rf"^{path}: truncated image \(43 of 48 pixel bytes\)$"):
        read_image(path)
    path.write_bytes(b"P6\n2 2\n65535\n" + bytes(24))
    with pytest.raises(DataError, match=rf"^{path}: PGM/PPM of 2x2 with maximum 65535"):
        read_image(path)
    path.write_bytes(b"P6\nxx")
    with pytest.raises(DataError, match=rf"^{path}: malformed PGM/PPM header$"):
        image_shape(path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match=rf"^{tmp_path / 'no.ppm'}: cannot read the image"):
        read_image(tmp_path / "no.ppm")


def test_pillow_formats_as_opencv_reads_them(tmp_path):
    image_module = pytest.importorskip("PIL.Image", reason="Pillow (n2prune[images]) not installed")
    rgb = bgr(6, 5)[..., ::-1]
    image_module.fromarray(np.ascontiguousarray(rgb)).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_image(tmp_path / "c.png"), rgb[..., ::-1])
    assert image_shape(tmp_path / "c.png") == (6, 5, 3)
    rgba = np.random.default_rng(1).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    image_module.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgba[..., [2, 1, 0, 3]])
    assert image_shape(tmp_path / "a.png") == (3, 4, 4)
    grey = rgba[..., 0]
    image_module.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), grey)
    assert image_shape(tmp_path / "g.png") == (3, 4)
    flat = np.full((8, 16, 3), (200, 100, 30), dtype=np.uint8)  # R, G, B: JPEG keeps it
    image_module.fromarray(flat).save(tmp_path / "j.jpg", quality=95)
    decoded = read_image(tmp_path / "j.jpg")
    assert decoded.shape == (8, 16, 3)
    assert np.abs(decoded.astype(int) - (30, 100, 200)).max() <= 3  # B, G, R


def test_unreadable_image_names_the_file(tmp_path):
    pytest.importorskip("PIL.Image", reason="Pillow (n2prune[images]) not installed")
    path = tmp_path / "bad.png"
    path.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=rf"^{path}: unreadable image \("):
        read_image(path)
    with pytest.raises(DataError, match=rf"^{path}: unreadable image \("):
        image_shape(path)


def test_without_pillow_the_error_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "x.png").write_bytes(b"\x89PNG....")
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails
    with pytest.raises(DataError, match=rf"^{tmp_path / 'x.png'}: reading this image format needs "
                                        r"Pillow: pip install 'n2prune\[images\]'$"):
        read_image(tmp_path / "x.png")
    write_ppm(tmp_path / "y.ppm", bgr(2, 2))
    assert read_image(tmp_path / "y.ppm").shape == (2, 2, 3)  # PPM needs no Pillow
