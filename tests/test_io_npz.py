"""read_npz: what np.savez writes comes back; anything else is one UserError naming the file."""

import io
import zipfile

import numpy as np
import pytest

from n2prune.errors import UserError
from n2prune.io.npz import read_npz


def read(path, **kwargs):
    return read_npz(path, "weights file", "do something", **kwargs)


def test_round_trip_of_numeric_arrays(tmp_path):
    arrays = {"a/b": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.int64(3),
              "m": np.ones(4, np.uint8), "f": np.asfortranarray(np.eye(3))}
    np.savez(tmp_path / "x.npz", **arrays)
    back = read(tmp_path / "x.npz")
    assert back.keys() == arrays.keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(back[key], value)
        assert back[key].dtype == np.asarray(value).dtype


def test_text_only_where_allowed(tmp_path):
    np.savez(tmp_path / "x.npz", meta=np.array('{"a": 1}'))
    assert str(read(tmp_path / "x.npz", text_keys=("meta",))["meta"]) == '{"a": 1}'
    with pytest.raises(UserError, match=r"x.npz: array 'meta' holds <U8 values; .*do something"):
        read(tmp_path / "x.npz")


def test_total_size_bounded_before_reading(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(1000, np.float32))
    assert read(tmp_path / "x.npz", max_bytes=4000)["a"].size == 1000
    with pytest.raises(UserError, match="x.npz: its arrays hold 4000 bytes, more than the 3999"):
        read(tmp_path / "x.npz", max_bytes=3999)


def test_stored_member_larger_than_the_file_is_refused(tmp_path):
    """A zip directory whose sizes lie: the header claim is checked against the file."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**9,)})
    with zipfile.ZipFile(tmp_path / "x.npz", "w") as archive:
        archive.writestr("a.npy", buffer.getvalue() + bytes(80))
    with pytest.raises(UserError, match=r"x.npz: array 'a' claims shape 1000000000 \(8000000000 bytes\)"):
        read(tmp_path / "x.npz")


@pytest.mark.parametrize("content, message", [
    (b"", "truncated or corrupted"),
    (b"PK\x03\x04" + bytes(100), "truncated or corrupted"),
    (None, "no such weights file"),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "x.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=f"x.npz: .*{message}"):
        read(path)
