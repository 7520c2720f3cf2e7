"""Image transformations on whole batches, following N2D2's ``*Transformation``.

A batch is ``(N, H, W)`` (one channel) or ``(N, H, W, C)``, uint8 or float32.
Colour channels are in OpenCV's BGR order, as N2D2 reads images with OpenCV.
Every transformation has ``apply(batch, rng) -> new batch`` (the input is
never modified) and two flags the stimuli provider reads:

* ``random``: it draws from ``rng``, so it must run on every batch;
* ``keeps_uint8``: uint8 in gives uint8 out, so it can be cached on uint8 data.

``TRANSFORMATIONS`` maps N2D2's ``Type=`` names to the classes, each
registered with the INI keys of its constructor.
"""

import numpy as np

from n2prune.errors import SettingError, UserError
from n2prune.kernels.resize import resize_bilinear
from n2prune.registry import BOOL, FLOAT, SIZE, Key, Registry, choice, unknown_message

TRANSFORMATIONS = Registry("Type")


def _choice(setting, written, value, known):
    """``value`` if it is one of ``known``, else a SettingError blaming ``setting``."""
    if value not in known:
        raise SettingError(setting, unknown_message(f"{written}={value}", value, known))
    return value


def _round_to_uint8(values):
    """Round half up and saturate, as OpenCV's fixed-point uint8 paths do."""
    return np.clip(np.floor(values + 0.5), 0, 255).astype(np.uint8)


def _cast_like(values, dtype):
    return _round_to_uint8(values) if dtype == np.uint8 else values.astype(np.float32)


def _spatial(batch):
    """Reshape (N, H, W) to (N, H, W, 1) so every function sees channels last."""
    return batch if batch.ndim == 4 else batch[..., np.newaxis]


class Transform:
    """Base class; subclasses override ``apply`` and the two flags if needed."""

    random = False
    keeps_uint8 = True

    def apply(self, batch, rng):
        raise NotImplementedError

    def output_shape(self, shape):
        """``(height, width, channels)`` of the output for an input of ``shape``.

        Pure arithmetic, so a memory estimate can walk the data path before
        any image is transformed.
        """
        return tuple(shape)

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


def linear_table(src, dst):
    """(i0, i1, w1) so that ``out[d] = (1 - w1) * in[i0] + w1 * in[i1]``.

    OpenCV's INTER_LINEAR mapping: pixel centres at half integers, so output
    ``d`` samples input position ``(d + 0.5) * src / dst - 0.5``, clamped to
    the first and last pixels.
    """
    pos = (np.arange(dst) + 0.5) * (src / dst) - 0.5
    pos = np.clip(pos, 0.0, src - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, src - 1)
    return i0, i1, (pos - i0).astype(np.float32)


@TRANSFORMATIONS.register(
    "RescaleTransformation",
    Key("Width", "width", SIZE, "output width"),
    Key("Height", "height", SIZE, "output height"),
    Key("KeepAspectRatio", "keep_aspect_ratio", BOOL, "both axes scaled by one ratio"),
    Key("ResizeToFit", "resize_to_fit", BOOL,
        "with KeepAspectRatio: the smaller ratio (fit inside), else the larger"),
)
class Rescale(Transform):
    """Bilinear resize to ``width`` x ``height`` (OpenCV INTER_LINEAR, as N2D2).

    With ``keep_aspect_ratio`` both axes use one ratio: the smaller of
    ``width / W`` and ``height / H`` when ``resize_to_fit``, else the larger;
    the output is then ``int(ratio * H)`` x ``int(ratio * W)``. Float input
    matches OpenCV to float32 rounding; uint8 input is computed in float32
    and rounded back to uint8, within one grey level of OpenCV (whose uint8
    INTER_LINEAR result depends on its SIMD code path).
    """

    def __init__(self, width, height, keep_aspect_ratio=False, resize_to_fit=True):
        self.width, self.height = int(width), int(height)
        self.keep_aspect_ratio = bool(keep_aspect_ratio)
        self.resize_to_fit = bool(resize_to_fit)
        self._tables = {}

    def output_hw(self, height, width):
        """Output (height, width) for an input of (height, width)."""
        if not self.keep_aspect_ratio:
            return self.height, self.width
        ratios = (self.width / width, self.height / height)
        ratio = min(ratios) if self.resize_to_fit else max(ratios)
        out = (int(ratio * height), int(ratio * width))
        if min(out) < 1:
            raise UserError(f"Rescale: {height}x{width} image scaled by {ratio:g} is empty")
        return out

    def output_shape(self, shape):
        return (*self.output_hw(shape[0], shape[1]), shape[2])

    def _table(self, height, width):
        if (height, width) not in self._tables:
            out_h, out_w = self.output_hw(height, width)
            self._tables[height, width] = (linear_table(height, out_h), linear_table(width, out_w))
        return self._tables[height, width]

    def apply(self, batch, rng):
        rows, cols = self._table(batch.shape[1], batch.shape[2])
        out = resize_bilinear(_spatial(batch), rows, cols)
        return out.reshape(out.shape[:3] + batch.shape[3:])


# N2D2's BorderType names -> numpy.pad modes (OpenCV BORDER_* equivalents).
_PAD_MODES = {
    "ConstantBorder": "constant",
    "ReplicateBorder": "edge",
    "ReflectBorder": "symmetric",
    "WrapBorder": "wrap",
    "MinusOneReflectBorder": "reflect",
    "MeanBorder": "mean",
}


def pad_crop_offsets(size, target):
    """(pad_before, pad_after) along one axis; negative values crop.

    N2D2's rule: ``before = ceil((target - size) / 2)``, so an odd padding puts
    the extra pixel before (top/left) and an odd crop removes it after
    (bottom/right).
    """
    diff = target - size
    before = -((-diff) // 2)
    return before, diff - before


@TRANSFORMATIONS.register(
    "PadCropTransformation",
    Key("Width", "width", SIZE, "output width, padded or cropped about the centre"),
    Key("Height", "height", SIZE, "output height, padded or cropped about the centre"),
)
class PadCrop(Transform):
    """Centre pad and/or crop to ``width`` x ``height`` (N2D2's PadCropTransformation).

    ``border_type`` is N2D2's (default ``MinusOneReflectBorder``, i.e. OpenCV
    BORDER_REFLECT_101, ``gfedcb|abcdefgh``); ``ConstantBorder`` pads with
    ``border_value``, one value per channel in BGR order, channels without a
    value getting 0 (as N2D2's 4-entry Scalar); ``MeanBorder`` pads with each
    image's per-channel mean.
    """

    def __init__(self, width, height, border_type="MinusOneReflectBorder", border_value=()):
        self.width, self.height = int(width), int(height)
        self.border_type = _choice("border_type", "BorderType", border_type, list(_PAD_MODES))
        self.border_value = tuple(np.atleast_1d(border_value).tolist())

    def output_shape(self, shape):
        return (self.height, self.width, shape[2])

    def _fill(self, data):
        """Constant padding value, broadcastable to (N, 1, 1, C)."""
        if self.border_type == "MeanBorder":
            return data.mean(axis=(1, 2), keepdims=True)
        value = np.zeros(data.shape[3])
        given = np.asarray(self.border_value, dtype=np.float64)[: data.shape[3]]
        value[: given.size] = given
        return value

    def _pad(self, data, pads):
        (top, bottom), (left, right) = pads
        mode = _PAD_MODES[self.border_type]
        if mode not in ("constant", "mean"):
            return np.pad(data, ((0, 0), (top, bottom), (left, right), (0, 0)), mode=mode)
        n, h, w, c = data.shape
        out = np.empty((n, h + top + bottom, w + left + right, c), dtype=data.dtype)
        fill = np.broadcast_to(self._fill(data), (n, 1, 1, c))
        # OpenCV converts the border Scalar with saturate_cast: half to even.
        out[...] = np.clip(np.rint(fill), 0, 255) if data.dtype == np.uint8 else fill
        out[:, top:top + h, left:left + w] = data
        return out

    def apply(self, batch, rng):
        data = _spatial(batch)
        offsets = (pad_crop_offsets(data.shape[1], self.height),
                   pad_crop_offsets(data.shape[2], self.width))
        pads = [(max(0, before), max(0, after)) for before, after in offsets]
        if any(p for pair in pads for p in pair):
            data = self._pad(data, pads)
        (top, bottom), (left, right) = offsets
        data = data[:, max(0, -top):data.shape[1] + min(0, bottom),
                    max(0, -left):data.shape[2] + min(0, right)]
        return np.array(data.reshape(data.shape[:3] + batch.shape[3:]))


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
    Key("FirstValue", "first_value", FLOAT, "operand of the first step"),
    Key("SecondOperator", "second_operator", choice(OPERATORS),
        "operator of the second step (absent: Plus)"),
    Key("SecondValue", "second_value", FLOAT, "operand of the second step"),
)
class RangeAffine(Transform):
    """``y = (x first_operator first_value) second_operator second_value``, float32 out.

    Operators are ``Plus``, ``Minus``, ``Multiplies``, ``Divides``; a value is
    a number or one number per channel. As in N2D2, a missing
    ``second_operator`` means ``Plus`` (so the default adds 0), each step is
    computed in double and stored as float32, and ``truncate`` rounds the
    result toward zero.
    """

    keeps_uint8 = False

    def __init__(self, first_operator, first_value, second_operator=None, second_value=0.0,
                 truncate=False):
        self.first_operator = _choice("first_operator", "FirstOperator", first_operator, OPERATORS)
        self.first_value = np.atleast_1d(np.asarray(first_value, dtype=np.float64))
        self.second_operator = _choice("second_operator", "SecondOperator",
                                       second_operator or "Plus", OPERATORS)
        self.second_value = np.atleast_1d(np.asarray(second_value, dtype=np.float64))
        self.truncate = bool(truncate)

    def _step(self, data, operator, value):
        if value.size not in (1, data.shape[3]):
            raise UserError(f"RangeAffine: {value.size} values for {data.shape[3]} channels "
                            "(give one value, or one per channel)")
        return _OPERATORS[operator](data.astype(np.float64), value).astype(np.float32)

    def apply(self, batch, rng):
        data = _spatial(batch)
        data = self._step(data, self.first_operator, self.first_value)
        data = self._step(data, self.second_operator, self.second_value)
        if self.truncate:
            data = np.trunc(data)
        return data.reshape(data.shape[:3] + batch.shape[3:])


# OpenCV (4 and later) fixed-point coefficients for uint8: BGR2GRAY uses 15
# fractional bits, BGR2YCrCb 14 (so Gray and Y may differ by one level);
# float data use 0.114 B + 0.587 G + 0.299 R for both.
_GRAY_INT = ((3735, 19235, 9798), 15)
_LUMA_INT = ((1868, 9617, 4899), 14)
_LUMA_FLOAT = (0.114, 0.587, 0.299)
_CHROMA_WEIGHTS = {"Cr": (2, 11682, 0.713), "Cb": (0, 9241, 0.564)}  # (BGR index, int, float)
_YCC_SHIFT = 14
CHANNELS = ("Red", "Green", "Blue", "Gray", "Y", "Cb", "Cr")
_BGR_INDEX = {"Blue": 0, "Green": 1, "Red": 2}


def bgr_to_luma(data, fixed=_GRAY_INT):
    """Weighted sum of the B, G, R channels of (N, H, W, >=3) data, (N, H, W).

    ``fixed`` is the uint8 fixed-point (weights, shift): ``_GRAY_INT`` gives
    cv::cvtColor(COLOR_BGR2GRAY), ``_LUMA_INT`` the Y of COLOR_BGR2YCrCb.
    """
    if data.dtype == np.uint8:
        (b, g, r), shift = fixed
        wide = data[..., :3].astype(np.int32)
        total = wide[..., 0] * b + wide[..., 1] * g + wide[..., 2] * r
        return ((total + (1 << (shift - 1))) >> shift).astype(np.uint8)
    b, g, r = _LUMA_FLOAT
    return (data[..., 0] * b + data[..., 1] * g + data[..., 2] * r).astype(np.float32)


def bgr_to_chroma(data, name):
    """Cr or Cb of BGR data, as cv::cvtColor(COLOR_BGR2YCrCb) (offset 128, or 0.5 in float)."""
    index, weight_int, weight_float = _CHROMA_WEIGHTS[name]
    luma = bgr_to_luma(data, _LUMA_INT)
    if data.dtype == np.uint8:
        diff = data[..., index].astype(np.int32) - luma
        total = diff * weight_int + (128 << _YCC_SHIFT) + (1 << (_YCC_SHIFT - 1))
        return np.clip(total >> _YCC_SHIFT, 0, 255).astype(np.uint8)
    return ((data[..., index] - luma) * weight_float + 0.5).astype(np.float32)


@TRANSFORMATIONS.register(
    "ChannelExtractionTransformation",
    Key("CSChannel", "channel", choice(CHANNELS), "the channel kept (BGR data, OpenCV's coefficients)"),
)
class ChannelExtraction(Transform):
    """Keep one channel of BGR batches, (N, H, W, C) -> (N, H, W).

    ``channel`` is N2D2's CSChannel: ``Red``, ``Green``, ``Blue``, ``Gray``
    (OpenCV's 0.299 R + 0.587 G + 0.114 B), ``Y``, ``Cb``, ``Cr`` (OpenCV's YCrCb).
    One-channel batches pass unchanged, as in N2D2. (Hue, Saturation and
    Value are not implemented.)
    """

    def __init__(self, channel):
        self.channel = _choice("channel", "CSChannel", channel, CHANNELS)

    def output_shape(self, shape):
        return (shape[0], shape[1], 1)

    def apply(self, batch, rng):
        if batch.ndim == 3 or batch.shape[3] == 1:
            return batch.copy()
        if batch.shape[3] not in (3, 4):
            raise UserError(f"ChannelExtraction: expected BGR or BGRA images, got "
                            f"{batch.shape[3]} channels")
        if self.channel in _BGR_INDEX:
            return batch[..., _BGR_INDEX[self.channel]].copy()
        if self.channel in ("Gray", "Y"):
            return bgr_to_luma(batch, _GRAY_INT if self.channel == "Gray" else _LUMA_INT)
        return bgr_to_chroma(batch, self.channel)


@TRANSFORMATIONS.register(
    "FlipTransformation",
    Key("HorizontalFlip", "horizontal", BOOL, "mirror every image left-right"),
    Key("VerticalFlip", "vertical", BOOL, "mirror every image upside down"),
    Key("RandomHorizontalFlip", "random_horizontal", BOOL,
        "mirror left-right with probability 1/2, per image"),
    Key("RandomVerticalFlip", "random_vertical", BOOL,
        "mirror upside down with probability 1/2, per image"),
)
class Flip(Transform):
    """Mirror images left-right (``horizontal``) and/or upside down (``vertical``).

    The ``random_*`` flags flip each image with probability 1/2, drawn
    independently per image and per axis, as N2D2 does per stimulus; they
    override the fixed flag of the same axis.
    """

    def __init__(self, horizontal=False, vertical=False, random_horizontal=False,
                 random_vertical=False):
        self.horizontal, self.vertical = bool(horizontal), bool(vertical)
        self.random_horizontal = bool(random_horizontal)
        self.random_vertical = bool(random_vertical)
        self.random = self.random_horizontal or self.random_vertical

    def _mask(self, n, fixed, drawn, rng):
        if drawn:
            return rng.random(n) < 0.5
        return np.full(n, fixed)

    def apply(self, batch, rng):
        n = batch.shape[0]
        flip_x = self._mask(n, self.horizontal, self.random_horizontal, rng)
        flip_y = self._mask(n, self.vertical, self.random_vertical, rng)
        out = batch.copy()
        out[flip_x] = out[flip_x][:, :, ::-1]
        out[flip_y] = out[flip_y][:, ::-1]
        return out
