"""Value transformations: RangeAffine (numbers) and Affine (images), as N2D2's.

Both compute ``(x first_operator first_value) second_operator second_value``
with the operators ``Plus``, ``Minus``, ``Multiplies``, ``Divides``.
"""

from pathlib import Path

import numpy as np

from n2prune.data.transforms.base import (
    TRANSFORMATIONS,
    Transform,
    choose,
    saturate_uint8,
    spatial,
)
from n2prune.errors import DataError, SettingError, UserError
from n2prune.registry import BOOL, FLOAT, STR, Key, choice, vector

_OPERATORS = {
    "Plus": np.add,
    "Minus": np.subtract,
    "Multiplies": np.multiply,
    "Divides": np.divide,
}
OPERATORS = tuple(_OPERATORS)


@TRANSFORMATIONS.register(
    "RangeAffineTransformation",
    Key("FirstOperator", "first_operator", choice(OPERATORS), "operator of the first step"),
    Key("FirstValue", "first_value", vector(FLOAT),
        "operand of the first step: one value, or one per channel (BGR order)"),
    Key("SecondOperator", "second_operator", choice(OPERATORS), "operator of the second step"),
    Key("SecondValue", "second_value", vector(FLOAT),
        "operand of the second step (absent: no second step)"),
    Key("Truncate", "truncate", BOOL, "round the result toward zero"),
)
class RangeAffine(Transform):
    """``y = (x first_operator first_value) second_operator second_value``, float32 out.

    A value is one number or one number per channel. As in N2D2, an empty
    ``second_value`` skips the second step, each step is computed in double
    and stored as float32, and ``truncate`` rounds the result toward zero.
    """

    keeps_uint8 = False

    def __init__(self, first_operator, first_value, second_operator="Plus", second_value=(),
                 truncate=False):
        self.first_operator = choose("first_operator", "FirstOperator", first_operator, OPERATORS)
        self.first_value = np.atleast_1d(np.asarray(first_value, dtype=np.float64))
        if self.first_value.size == 0:
            raise SettingError("first_value", "expected at least one value")
        self.second_operator = choose("second_operator", "SecondOperator", second_operator,
                                      OPERATORS)
        self.second_value = np.atleast_1d(np.asarray(second_value, dtype=np.float64))
        self.truncate = bool(truncate)

    def _step(self, data, operator, value):
        if value.size not in (1, data.shape[3]):
            raise UserError(f"RangeAffine: {value.size} values for {data.shape[3]} channels "
                            "(give one value, or one per channel)")
        return _OPERATORS[operator](data.astype(np.float64), value).astype(np.float32)

    def apply(self, batch, rng):
        data = spatial(batch)
        data = self._step(data, self.first_operator, self.first_value)
        if self.second_value.size:
            data = self._step(data, self.second_operator, self.second_value)
        if self.truncate:
            data = np.trunc(data)
        return data.reshape(data.shape[:3] + batch.shape[3:])


# OpenCV's depth codes (type = depth + 8 * (channels - 1)), for N2D2's .bin files.
_CV_DEPTHS = {0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.int32,
              5: np.float32, 6: np.float64}


def read_cvmat(path):
    """The (rows, cols[, channels]) array of an N2D2 ``BinaryCvMat`` file.

    The format: int32 rows, cols and OpenCV type, then the pixels row by row,
    channels interleaved (native byte order, little-endian here).
    """
    raw = Path(path).read_bytes()
    if len(raw) < 12:
        raise DataError(f"{path}: not an N2D2 matrix file (shorter than its 12-byte header)")
    rows, cols, cv_type = np.frombuffer(raw[:12], dtype="<i4")
    depth, channels = int(cv_type) & 7, (int(cv_type) >> 3) + 1
    if depth not in _CV_DEPTHS or rows < 0 or cols < 0:
        raise DataError(f"{path}: not an N2D2 matrix file (type {cv_type}, {rows}x{cols})")
    dtype = np.dtype(_CV_DEPTHS[depth]).newbyteorder("<")
    count = int(rows) * int(cols) * channels
    if len(raw) - 12 != count * dtype.itemsize:
        raise DataError(f"{path}: {len(raw) - 12} bytes of pixels, expected "
                        f"{count * dtype.itemsize} for {rows}x{cols}x{channels}")
    values = np.frombuffer(raw[12:], dtype=dtype).astype(dtype.newbyteorder("="))
    return values.reshape((rows, cols, channels) if channels > 1 else (rows, cols))


def read_value_file(path):
    """An Affine operand from ``path``: N2D2's ``.bin`` matrix, or a numpy ``.npy``."""
    path = Path(path)
    try:
        if path.suffix == ".bin":
            return read_cvmat(path)
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    raise DataError(f"{path}: an Affine value must be a .bin (N2D2 matrix) or .npy file "
                    "(images are not read)")


@TRANSFORMATIONS.register(
    "AffineTransformation",
    Key("FirstOperator", "first_operator", choice(OPERATORS), "operator of the first step"),
    Key("FirstValue", "first_value", STR,
        "operand image of the first step: a .bin or .npy file, or [sp.StimuliData-X]_MeanData"),
    Key("SecondOperator", "second_operator", choice(OPERATORS), "operator of the second step"),
    Key("SecondValue", "second_value", STR,
        "operand image of the second step (absent: no second step)"),
)
class Affine(Transform):
    """``y = (x first_operator first_value) second_operator second_value``, pixel by pixel.

    As N2D2's AffineTransformation, values are images of the stimuli's size:
    ``(H, W)`` for one channel or ``(H, W, C)``, given as arrays or files
    (``read_value_file``). Types follow OpenCV's: float data make the value
    float32; uint8 data with a float value are computed in double (N2D2 then
    keeps a double image; here float32); uint8 with uint8 saturates, with
    OpenCV's rounding. A division by zero gives 0, as N2D2.
    """

    def __init__(self, first_operator, first_value, second_operator="Plus", second_value=None):
        self.first_operator = choose("first_operator", "FirstOperator", first_operator, OPERATORS)
        self.second_operator = choose("second_operator", "SecondOperator", second_operator,
                                      OPERATORS)
        self.first_value = self._value("first_value", first_value)
        self.second_value = None if second_value is None else self._value("second_value",
                                                                           second_value)
        values = [v for v in (self.first_value, self.second_value) if v is not None]
        self.keeps_uint8 = all(v.dtype == np.uint8 for v in values)

    @staticmethod
    def _value(setting, value):
        try:
            array = read_value_file(value) if isinstance(value, (str, Path)) else np.asarray(value)
        except DataError as exc:
            raise SettingError(setting, str(exc)) from None
        if array.ndim not in (2, 3) or array.dtype.kind not in "uif":
            raise SettingError(setting, f"expected an image of numbers, got shape {array.shape}")
        return array if array.ndim == 3 else array[..., np.newaxis]

    def _step(self, data, operator, value):
        if value.shape != data.shape[1:]:
            got, want = value.shape, data.shape[1:]
            raise UserError(f"Affine: the {operator} value is {got[1]}x{got[0]}x{got[2]}, the "
                            f"stimuli are {want[1]}x{want[0]}x{want[2]}")
        both_uint8 = data.dtype == np.uint8 and value.dtype == np.uint8
        wide = np.float32 if data.dtype == np.float32 else np.float64
        with np.errstate(divide="ignore", invalid="ignore"):
            out = _OPERATORS[operator](data.astype(wide), value.astype(wide))
        if operator == "Divides":
            out[~np.isfinite(out)] = 0
        return saturate_uint8(out) if both_uint8 else out.astype(np.float32)

    def apply(self, batch, rng):
        data = spatial(batch)
        data = self._step(data, self.first_operator, self.first_value)
        if self.second_value is not None:
            data = self._step(data, self.second_operator, self.second_value)
        return data.reshape(data.shape[:3] + batch.shape[3:])
