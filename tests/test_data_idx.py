import gzip
import os

import numpy as np
import pytest

from n2prune.data.idx import idx_bytes, read_idx, write_idx
from n2prune.errors import DataError


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, name, dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    back[0, 0, 0] = 1  # writable


def test_header_is_lecun_format():
    data = idx_bytes(np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    assert data[:4] == b"\x00\x00\x08\x03"
    assert data[4:16] == b"\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03"
    assert data[16:] == bytes(range(6))
    labels = idx_bytes(np.array([7, 2], dtype=np.uint8))
    assert labels == b"\x00\x00\x08\x01\x00\x00\x00\x02\x07\x02"
    # multi-byte elements are big-endian
    assert idx_bytes(np.array([1], dtype=np.int32))[-4:] == b"\x00\x00\x00\x01"


def test_gzip_is_reproducible_without_name_or_time(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "x.gz", array)
    write_idx(tmp_path / "y.gz", array)
    first = (tmp_path / "x.gz").read_bytes()
    assert first == (tmp_path / "y.gz").read_bytes()
    assert first[3] == 0  # FLG: no FNAME field
    assert first[4:8] == b"\x00\x00\x00\x00"  # MTIME 0
    assert gzip.decompress(first) == idx_bytes(array)


def test_compression_is_detected_by_content(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "x.gz", array)
    os.rename(tmp_path / "x.gz", tmp_path / "renamed")
    np.testing.assert_array_equal(read_idx(tmp_path / "renamed"), array)


def test_bad_magic_names_file(tmp_path):
    path = tmp_path / "bad-images"
    path.write_bytes(b"\x00\x01\x08\x03" + bytes(12))
    with pytest.raises(DataError, match="bad-images.*not an IDX file"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x07\x01" + bytes(4))  # unknown type code
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_wrong_sizes(tmp_path, suffix):
    path = tmp_path / f"f{suffix}"
    good = idx_bytes(np.zeros((2, 3), np.uint8))
    for payload, message in ((good[:-1], "truncated"), (good + b"\x00", "larger"),
                             (good[:6], "truncated IDX header")):
        path.write_bytes(gzip.compress(payload) if suffix else payload)
        with pytest.raises(DataError, match=message) as info:
            read_idx(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_expected_ndim_and_missing_file(tmp_path):
    write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="1 dimensions .* expected 3"):
        read_idx(tmp_path / "labels", ndim=3)
    with pytest.raises(DataError, match="nothere.*cannot open"):
        read_idx(tmp_path / "nothere")


def test_write_rejects_unknown_dtype(tmp_path):
    with pytest.raises(ValueError, match="no IDX type"):
        write_idx(tmp_path / "x", np.zeros(2, np.uint16))


def test_cut_gzip_stream_is_a_data_error(tmp_path):
    write_idx(tmp_path / "x.gz", np.arange(1000, dtype=np.int32))
    data = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "x.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="x.gz"):
        read_idx(tmp_path / "x.gz")
