"""IDX files (LeCun's MNIST format), raw or gzip-compressed.

An IDX file is a 4-byte magic ``00 00 TT ND`` (``TT`` the element type,
``ND`` the number of dimensions), ``ND`` big-endian uint32 sizes, then the
elements in row-major order, big-endian. MNIST images are ``0x00000803``
(uint8, N x rows x columns) and labels ``0x00000801`` (uint8, N).
"""

import gzip
import os

import numpy as np

from n2prune.errors import DataError

# IDX element type byte -> big-endian numpy dtype.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"


def _open(path):
    """A binary reader of ``path``, decompressing when it starts as a gzip file.

    The content decides, not the name, so a renamed file still reads.
    """
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_exact(stream, nb_bytes, path):
    buffer = bytearray(nb_bytes)
    view = memoryview(buffer)
    done = 0
    while done < nb_bytes:
        count = stream.readinto(view[done:])
        if not count:
            raise DataError(f"{path}: truncated IDX file ({done} of {nb_bytes} bytes "
                            "after the header); download it again")
        done += count
    return buffer


def _read_header(stream, path):
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (magic {magic.hex() or 'empty'}, "
                        "expected 0000TTNN with a known type TT)")
    ndim = magic[3]
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    return IDX_TYPES[magic[2]], tuple(int(s) for s in np.frombuffer(sizes, ">u4"))


def _open_checked(path):
    try:
        return _open(path)
    except OSError as error:
        raise DataError(f"{path}: cannot open IDX file ({error.strerror or error})") from None


def read_idx_header(path):
    """``(dtype, shape)`` of the IDX file ``path``, reading its header only."""
    path = os.fspath(path)
    with _open_checked(path) as stream:
        try:
            return _read_header(stream, path)
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: corrupt IDX file ({error})") from None


def read_idx(path, ndim=None):
    """The array stored in the IDX file ``path`` (raw or gzip), native byte order.

    ``ndim`` (optional) is the number of dimensions the caller expects; a file
    with another number, a bad magic, a truncated body or trailing bytes
    raises ``DataError`` naming the file. The returned array is writable and
    the only full copy made.
    """
    path = os.fspath(path)
    with _open_checked(path) as stream:
        try:
            dtype, shape = _read_header(stream, path)
            if ndim is not None and len(shape) != ndim:
                raise DataError(f"{path}: IDX file has {len(shape)} dimensions {shape}, "
                                f"expected {ndim}")
            count = int(np.prod(shape, dtype=np.int64))
            buffer = _read_exact(stream, count * dtype.itemsize, path)
            if stream.read(1):
                raise DataError(f"{path}: IDX file is larger than its header {shape} says")
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: corrupt IDX file ({error})") from None
    array = np.frombuffer(buffer, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def idx_bytes(array):
    """The IDX encoding of ``array`` (header + big-endian row-major body)."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _TYPE_CODES:
        raise ValueError(f"dtype {array.dtype} has no IDX type code")
    if array.ndim > 255:
        raise ValueError("IDX files hold at most 255 dimensions")
    header = bytes([0, 0, _TYPE_CODES[native], array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=native.newbyteorder(">")).tobytes()
    return header + body


def write_idx(path, array):
    """Write ``array`` as an IDX file; gzip it when ``path`` ends with ``.gz``.

    The gzip stream has mtime 0 and no stored file name, so the same array
    always gives the same bytes (with the same zlib).
    """
    path = os.fspath(path)
    payload = idx_bytes(array)
    with open(path, "wb") as out:
        if path.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed:
                packed.write(payload)
        else:
            out.write(payload)
