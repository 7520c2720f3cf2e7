"""Reading ``.npz`` files that may be damaged or hostile, with one-line errors.

``np.load`` trusts what it reads: a truncated or bit-flipped file raises
``zipfile.BadZipFile`` or ``zlib.error``, an object array a ``ValueError``, and
a ``.npy`` header claiming 10^11 floats makes it allocate them before finding
out the data are not there. ``read_npz`` checks every member's header first
(numeric dtype, size no larger than the bytes stored), then reads, and turns
every failure into a ``UserError`` that names the file and what to do.
"""

import zipfile
import zlib
from pathlib import Path

from numpy.lib import format as npy_format

from n2prune.errors import UserError

# Kinds np.savez writes for our arrays: bool, signed and unsigned ints, floats.
NUMERIC_KINDS = "biuf"
# Deflate cannot expand more than ~1032:1; a member claiming more is lying.
MAX_DEFLATE_RATIO = 1100
# np.load's own default bound on a header (numpy.lib.format).
MAX_HEADER_SIZE = 10000


def read_npz(path, what, hint, text_keys=(), max_bytes=None):
    """All arrays of the ``.npz`` at ``path`` as a dict ``{key: array}``.

    ``what`` names the file in messages ("weights file", "snapshot"), ``hint``
    says what to do about a damaged one. Keys in ``text_keys`` may hold a
    0-d string (a snapshot's JSON ``meta``); every other array must be numeric.
    ``max_bytes`` bounds the arrays' total size, checked on the headers before
    anything is read (a small deflated member can claim a gigabyte truthfully).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if i.filename.endswith(".npy")]
            sizes = [_checked_header(archive, info, path, text_keys) for info in members]
            if max_bytes is not None and sum(sizes) > max_bytes:
                raise UserError(f"{path}: its arrays hold {sum(sizes)} bytes, more than the "
                                f"{max_bytes} this model can use")
            return {_key(info.filename): _read_array(archive, info) for info in members}
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a {what} (.npz)") from None
    except UserError as exc:
        raise with_hint(exc, hint) from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise UserError(f"{path}: not a readable {what}, truncated or corrupted "
                        f"({_short(exc)}); {hint}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read this {what} ({_short(exc)}); {hint}") from None


def with_hint(error, hint):
    """``error`` (a UserError) with what to do appended, as one sentence more."""
    text = str(error)
    return UserError(f"{text} {hint[:1].upper()}{hint[1:]}" if text.endswith("?") else f"{text}; {hint}")


def _key(name):
    return name[:-len(".npy")]


def _short(exc, limit=120):
    """An exception's text on one short line (messages can quote file bytes)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _checked_header(archive, info, path, text_keys):
    """The data bytes member ``info`` claims, once its header and sizes are checked."""
    key = _key(info.filename)
    where = f"{path}: array {key[:80]!r}"
    _check_zip_sizes(info, Path(path).stat().st_size, where)
    with archive.open(info) as handle:
        shape, dtype, header_end = _read_header(handle, where)
    _check_dtype(dtype, key, where, text_keys)
    data_bytes = dtype.itemsize * _count(shape)
    # Checked before reading: numpy would allocate the claimed size first.
    if data_bytes > info.file_size - header_end:
        raise UserError(f"{where} claims shape {_shape_text(shape)} ({data_bytes} bytes) "
                        f"but holds {max(0, info.file_size - header_end)} bytes")
    return data_bytes


def _check_zip_sizes(info, archive_size, where):
    """The zip directory's sizes are themselves claims: bound them by the file's size."""
    if info.compress_size > archive_size:
        raise UserError(f"{where} claims {info.compress_size} bytes in a {archive_size}-byte file")
    stored = info.compress_type == zipfile.ZIP_STORED
    limit = info.compress_size if stored else MAX_DEFLATE_RATIO * info.compress_size + 4096
    if info.file_size > limit:
        raise UserError(f"{where} claims {info.file_size} bytes from {info.compress_size} stored ones")


def _read_array(archive, info):
    with archive.open(info) as handle:
        return npy_format.read_array(handle, allow_pickle=False)


def _read_header(handle, where):
    """``(shape, dtype, header length)`` of the ``.npy`` stream ``handle``."""
    major, _ = npy_format.read_magic(handle)
    readers = {1: npy_format.read_array_header_1_0, 2: npy_format.read_array_header_2_0}
    if major not in readers:
        raise UserError(f"{where}: .npy format version {major} is not supported")
    shape, _, dtype = readers[major](handle, max_header_size=MAX_HEADER_SIZE)
    return shape, dtype, handle.tell()


def _check_dtype(dtype, key, where, text_keys):
    if dtype.kind in NUMERIC_KINDS and not dtype.fields and not dtype.subdtype:
        return
    if key in text_keys and dtype.kind == "U":
        return
    raise UserError(f"{where} holds {dtype} values; only numbers are read")


def _count(shape):
    count = 1
    for n in shape:
        count *= int(n)
    return count


def _shape_text(shape, limit=60):
    text = "x".join(str(n) for n in shape) or "scalar"
    return text if len(text) <= limit else text[:limit] + "..."
