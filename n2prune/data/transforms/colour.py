"""Colour transformations: ChannelExtraction and ColorSpace, as OpenCV's cvtColor.

Images are BGR (OpenCV's order, as N2D2 reads them). uint8 data follow
OpenCV's fixed-point integer code (so results match it exactly), float data
its float formulas.
"""

import numpy as np

from n2prune.data.transforms.base import (
    TRANSFORMATIONS,
    Transform,
    choose,
    saturate_uint8,
)
from n2prune.errors import SettingError, UserError
from n2prune.registry import Key, choice

# OpenCV (4 and later) fixed-point coefficients for uint8: BGR2GRAY uses 15
# fractional bits, BGR2YCrCb 14 (so Gray and Y may differ by one level);
# float data use 0.114 B + 0.587 G + 0.299 R for both.
_GRAY_INT = ((3735, 19235, 9798), 15)
_LUMA_INT = ((1868, 9617, 4899), 14)
_LUMA_FLOAT = (0.114, 0.587, 0.299)
_CHROMA_WEIGHTS = {"Cr": (2, 11682, 0.713), "Cb": (0, 9241, 0.564)}  # (BGR index, int, float)
_YCC_SHIFT = 14
CHANNELS = ("Red", "Green", "Blue", "Hue", "Saturation", "Value", "Gray", "Y", "Cb", "Cr")
_BGR_INDEX = {"Blue": 0, "Green": 1, "Red": 2}
_HSV_INDEX = {"Hue": 0, "Saturation": 1, "Value": 2}


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
    (OpenCV's 0.299 R + 0.587 G + 0.114 B), ``Y``, ``Cb``, ``Cr`` (OpenCV's YCrCb),
    ``Hue``, ``Saturation``, ``Value`` (OpenCV's HSV; a uint8 Hue is stretched
    from 0..180 to 0..255, as N2D2). One-channel batches pass unchanged.
    """

    def __init__(self, channel):
        self.channel = choose("channel", "CSChannel", channel, CHANNELS)

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
        if self.channel in ("Cb", "Cr"):
            return bgr_to_chroma(batch, self.channel)
        hsv = bgr_to_hsv(batch)[..., _HSV_INDEX[self.channel]]
        if self.channel == "Hue" and batch.dtype == np.uint8:
            return saturate_uint8(hsv * (255.0 / 180.0))  # N2D2 stretches OpenCV's 0..180
        return np.ascontiguousarray(hsv)



# cv::cvtColor(BGR2HSV) on uint8: divisions through tables of 12-bit fixed point.
_HSV_SHIFT = 12
_DIVISORS = np.maximum(np.arange(256), 1)
_S_TABLE = np.where(np.arange(256) > 0, np.rint((255 << _HSV_SHIFT) / _DIVISORS), 0).astype(np.int64)
_H_TABLE = np.where(np.arange(256) > 0, np.rint((180 << _HSV_SHIFT) / (6.0 * _DIVISORS)),
                    0).astype(np.int64)


def bgr_to_hsv(data):
    """HSV of BGR (N, H, W, >=3) data as cv::cvtColor(COLOR_BGR2HSV): uint8 gives H in
    [0, 180), S and V in [0, 255]; float gives H in degrees [0, 360), S and V as V's unit."""
    if data.dtype == np.uint8:
        b, g, r = (data[..., i].astype(np.int64) for i in range(3))
        v = np.maximum(np.maximum(b, g), r)
        diff = v - np.minimum(np.minimum(b, g), r)
        half = 1 << (_HSV_SHIFT - 1)
        s = (diff * _S_TABLE[v] + half) >> _HSV_SHIFT
        h = np.where(v == r, g - b, np.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
        h = (h * _H_TABLE[diff] + half) >> _HSV_SHIFT
        h = np.where(h < 0, h + 180, h)
        return np.stack([h, s, v], axis=-1).astype(np.uint8)
    b, g, r = (data[..., i].astype(np.float32) for i in range(3))
    v = np.maximum(np.maximum(b, g), r)
    diff = v - np.minimum(np.minimum(b, g), r)
    eps = np.finfo(np.float32).eps
    s = diff / (np.abs(v) + eps)
    scale = np.float32(60.0) / (diff + eps)
    h = np.where(v == r, (g - b) * scale,
                 np.where(v == g, (b - r) * scale + 120, (r - g) * scale + 240))
    h = np.where(h < 0, h + 360, h)
    return np.stack([h, s, v], axis=-1).astype(np.float32)


def bgr_to_ycrcb(data):
    """Y, Cr, Cb of BGR data, as cv::cvtColor(COLOR_BGR2YCrCb)."""
    luma = bgr_to_luma(data, _LUMA_INT)
    return np.stack([luma, bgr_to_chroma(data, "Cr"), bgr_to_chroma(data, "Cb")], axis=-1)


def _to_bgr(data):
    """Grey to three equal channels, BGRA to BGR, BGR unchanged (cvtColor's GRAY2BGR, BGRA2BGR)."""
    if data.shape[3] == 1:
        return np.repeat(data, 3, axis=3)
    if data.shape[3] not in (3, 4):
        raise UserError(f"ColorSpace: expected 1, 3 or 4 channels, got {data.shape[3]}")
    return np.ascontiguousarray(data[..., :3])


def _swap(data):
    return np.ascontiguousarray(_to_bgr(data)[..., ::-1])


# N2D2's ColorSpace names: ``bgr`` the input's order ("BGR" for images as
# read, "RGB" for RGB_to_*), ``convert`` the conversion from BGR; None: not
# implemented here.
_CONVERSIONS = {
    "BGR": ("BGR", None), "RGB": ("BGR", None), "HSV": ("BGR", bgr_to_hsv),
    "HLS": None, "YCrCb": ("BGR", bgr_to_ycrcb), "CIELab": None, "CIELuv": None,
    "RGB_to_BGR": ("RGB", None), "RGB_to_HSV": ("RGB", bgr_to_hsv), "RGB_to_HLS": None,
    "RGB_to_YCrCb": ("RGB", bgr_to_ycrcb), "RGB_to_CIELab": None, "RGB_to_CIELuv": None,
    "HSV_to_BGR": None, "HSV_to_RGB": None, "HLS_to_BGR": None, "HLS_to_RGB": None,
    "YCrCb_to_BGR": None, "YCrCb_to_RGB": None, "CIELab_to_BGR": None, "CIELab_to_RGB": None,
    "CIELuv_to_BGR": None, "CIELuv_to_RGB": None,
}
COLOR_SPACES = tuple(_CONVERSIONS)
SUPPORTED_COLOR_SPACES = tuple(name for name, how in _CONVERSIONS.items() if how)


@TRANSFORMATIONS.register(
    "ColorSpaceTransformation",
    Key("ColorSpace", "color_space", choice(COLOR_SPACES),
        "target colour space (supported: " + ", ".join(SUPPORTED_COLOR_SPACES) + ")"),
)
class ColorSpace(Transform):
    """Convert BGR images, as N2D2's ColorSpaceTransformation with cv::cvtColor.

    ``BGR``: grey images get three equal channels, BGRA loses alpha.
    ``RGB``: the same, then the channel order is reversed (RGBA input too, as
    cvtColor's RGBA2BGR). ``HSV``, ``YCrCb`` and the ``RGB_to_*`` forms (input
    in RGB order) convert 3- or 4-channel images and leave grey ones alone,
    as N2D2. HLS, CIELab, CIELuv and the inverse conversions are refused.
    """

    def __init__(self, color_space):
        self.color_space = choose("color_space", "ColorSpace", color_space, COLOR_SPACES)
        if not _CONVERSIONS[color_space]:
            raise SettingError("color_space", f"ColorSpace={color_space} is not supported by "
                               f"n2prune; supported: {', '.join(SUPPORTED_COLOR_SPACES)}")

    def output_shape(self, shape):
        plain = self.color_space in ("BGR", "RGB")
        return (shape[0], shape[1], 3 if plain or shape[2] > 1 else 1)

    def apply(self, batch, rng):
        data = batch if batch.ndim == 4 else batch[..., np.newaxis]
        order, convert = _CONVERSIONS[self.color_space]
        if self.color_space == "BGR":
            return _to_bgr(data)
        if self.color_space in ("RGB", "RGB_to_BGR"):
            return _swap(data) if data.shape[3] > 1 or self.color_space == "RGB" else batch.copy()
        if data.shape[3] == 1:
            return batch.copy()
        bgr = _swap(data) if order == "RGB" else _to_bgr(data)
        return convert(bgr)
