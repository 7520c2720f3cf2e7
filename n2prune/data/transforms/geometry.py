"""Geometric transformations: Rescale, PadCrop, SliceExtraction, Flip (as N2D2's).

Padding follows OpenCV's ``copyMakeBorder`` as N2D2 calls it: ``BorderType``
names map onto numpy.pad modes, ``ConstantBorder`` pads with ``BorderValue``
(one value per channel, BGR order), ``MeanBorder`` with each image's mean.
"""

import numpy as np

from n2prune.data.transforms.base import (
    TRANSFORMATIONS,
    Transform,
    choose,
    refuse,
    saturate_uint8,
    spatial,
)
from n2prune.errors import UserError
from n2prune.kernels.resize import resize_bilinear
from n2prune.registry import BOOL, FLOAT, SIZE, UINT, Key, choice, vector


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
        out = resize_bilinear(spatial(batch), rows, cols)
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
BORDER_TYPES = tuple(_PAD_MODES)


def _border_keys(what):
    return (Key("BorderType", "border_type", choice(BORDER_TYPES), f"how {what} pads"),
            Key("BorderValue", "border_value", vector(FLOAT),
                "ConstantBorder colour, one value per channel (BGR); missing ones are 0"))


def pad_border(data, pads, border_type, border_value=(), mean_of=None):
    """(N, H, W, C) ``data`` padded by ``pads = ((top, bottom), (left, right))``.

    As ``cv::copyMakeBorder``: ``ConstantBorder`` fills with ``border_value``
    (a 4-entry Scalar in N2D2, so missing channels get 0), ``MeanBorder`` with
    the per-channel mean of ``mean_of`` (default ``data``); for uint8 data the
    fill is rounded half to even and saturated (``saturate_cast``).
    """
    (top, bottom), (left, right) = pads
    mode = _PAD_MODES[border_type]
    if mode not in ("constant", "mean"):
        return np.pad(data, ((0, 0), (top, bottom), (left, right), (0, 0)), mode=mode)
    n, h, w, c = data.shape
    if mode == "mean":
        fill = (data if mean_of is None else mean_of).mean(axis=(1, 2), keepdims=True)
    else:
        fill = np.zeros(c)
        given = np.asarray(border_value, dtype=np.float64)[:c]
        fill[: given.size] = given
    out = np.empty((n, h + top + bottom, w + left + right, c), dtype=data.dtype)
    fill = np.broadcast_to(fill, (n, 1, 1, c))
    out[...] = saturate_uint8(fill) if data.dtype == np.uint8 else fill
    out[:, top:top + h, left:left + w] = data
    return out


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
    Key("Width", "width", UINT, "output width, padded or cropped about the centre"),
    Key("Height", "height", UINT, "output height, padded or cropped about the centre"),
    Key("AdditiveWH", "additive", BOOL, "Width and Height are added to the image's size"),
    *_border_keys("the padding"),
)
class PadCrop(Transform):
    """Centre pad and/or crop to ``width`` x ``height`` (N2D2's PadCropTransformation).

    ``border_type`` is N2D2's (default ``MinusOneReflectBorder``, i.e. OpenCV
    BORDER_REFLECT_101, ``gfedcb|abcdefgh``); see ``pad_border``. With
    ``additive`` the output is the input's size plus ``width`` x ``height``.
    """

    def __init__(self, width, height, additive=False, border_type="MinusOneReflectBorder",
                 border_value=()):
        self.width, self.height = int(width), int(height)
        self.additive = bool(additive)
        self.border_type = choose("border_type", "BorderType", border_type, BORDER_TYPES)
        self.border_value = tuple(np.atleast_1d(border_value).tolist())

    def output_hw(self, height, width):
        if self.additive:
            return height + self.height, width + self.width
        return self.height, self.width

    def output_shape(self, shape):
        out = self.output_hw(shape[0], shape[1])
        if min(out) < 1:
            raise UserError(f"PadCrop: the output of a {shape[1]}x{shape[0]} image is empty")
        return (*out, shape[2])

    def apply(self, batch, rng):
        data = spatial(batch)
        out_h, out_w = self.output_shape(data.shape[1:])[:2]
        offsets = (pad_crop_offsets(data.shape[1], out_h), pad_crop_offsets(data.shape[2], out_w))
        pads = [(max(0, before), max(0, after)) for before, after in offsets]
        if any(p for pair in pads for p in pair):
            data = pad_border(data, pads, self.border_type, self.border_value)
        (top, bottom), (left, right) = offsets
        data = data[:, max(0, -top):data.shape[1] + min(0, bottom),
                    max(0, -left):data.shape[2] + min(0, right)]
        return np.array(data.reshape(data.shape[:3] + batch.shape[3:]))


@TRANSFORMATIONS.register(
    "SliceExtractionTransformation",
    Key("Width", "width", UINT, "slice width (0: the image's)"),
    Key("Height", "height", UINT, "slice height (0: the image's)"),
    Key("OffsetX", "offset_x", UINT, "left column of the slice"),
    Key("OffsetY", "offset_y", UINT, "top row of the slice"),
    Key("RandomOffsetX", "random_offset_x", BOOL,
        "left column drawn uniformly per image, so that the slice fits"),
    Key("RandomOffsetY", "random_offset_y", BOOL,
        "top row drawn uniformly per image, so that the slice fits"),
    Key("AllowPadding", "allow_padding", BOOL,
        "a slice past the image's right or bottom edge is padded (else an error)"),
    *_border_keys("a slice past the image"),
    Key("RandomRotation", "random_rotation", BOOL, "not supported (refused when 1)"),
    Key("RandomRotationRange", "random_rotation_range", vector(FLOAT),
        "range of RandomRotation, in degrees"),
    Key("RandomScaling", "random_scaling", BOOL, "not supported (refused when 1)"),
    Key("RandomScalingRange", "random_scaling_range", vector(FLOAT), "range of RandomScaling"),
)
class SliceExtraction(Transform):
    """A ``width`` x ``height`` slice at (``offset_x``, ``offset_y``), or at random offsets.

    As N2D2's SliceExtractionTransformation: a random offset is drawn per
    image, uniformly in ``[0, W - width]`` (0 when the image is not wider),
    and replaces the fixed one. A slice reaching past the right or bottom
    edge is an error unless ``allow_padding``; then the part inside the image
    is padded on the right and bottom (``pad_border``, extrapolating from
    that part, as copyMakeBorder on an OpenCV ROI). Random rotation and
    scaling are refused.
    """

    def __init__(self, width, height, offset_x=0, offset_y=0, random_offset_x=False,
                 random_offset_y=False, allow_padding=False, border_type="MinusOneReflectBorder",
                 border_value=(), random_rotation=False, random_rotation_range=(0.0, 360.0),
                 random_scaling=False, random_scaling_range=(0.8, 1.2)):
        refuse("random_rotation", "RandomRotation", random_rotation)
        refuse("random_scaling", "RandomScaling", random_scaling)
        self.width, self.height = int(width), int(height)
        self.offset_x, self.offset_y = int(offset_x), int(offset_y)
        self.random_offset_x, self.random_offset_y = bool(random_offset_x), bool(random_offset_y)
        self.random = self.random_offset_x or self.random_offset_y
        self.allow_padding = bool(allow_padding)
        self.border_type = choose("border_type", "BorderType", border_type, BORDER_TYPES)
        self.border_value = tuple(np.atleast_1d(border_value).tolist())

    def output_shape(self, shape):
        return (self.height or shape[0], self.width or shape[1], shape[2])

    def _offsets(self, n, size, slice_size, fixed, drawn, rng):
        if not drawn:
            return np.full(n, fixed)
        return rng.integers(0, max(size - slice_size, 0), n, endpoint=True)

    def apply(self, batch, rng):
        data = spatial(batch)
        n, rows, cols = data.shape[:3]
        height, width = self.output_shape(data.shape[1:])[:2]
        ox = self._offsets(n, cols, width, self.offset_x, self.random_offset_x, rng)
        oy = self._offsets(n, rows, height, self.offset_y, self.random_offset_y, rng)
        pad_x, pad_y = int((ox + width - cols).max()), int((oy + height - rows).max())
        if max(pad_x, pad_y) > 0:
            if not self.allow_padding:
                raise UserError(f"SliceExtraction: a {width}x{height} slice at offset "
                                f"({ox.max()}, {oy.max()}) does not fit in a {cols}x{rows} "
                                "image; set AllowPadding=1 or a smaller slice")
            out = np.stack([self._padded(data[i:i + 1], ox[i], oy[i], width, height)[0]
                            for i in range(n)])
        else:
            ys = oy[:, None] + np.arange(height)
            xs = ox[:, None] + np.arange(width)
            out = data[np.arange(n)[:, None, None], ys[:, :, None], xs[:, None, :]]
        return out.reshape(out.shape[:3] + batch.shape[3:])

    def _padded(self, image, x, y, width, height):
        inside = image[:, y:y + height, x:x + width]
        if inside.size == 0:
            raise UserError(f"SliceExtraction: offset ({x}, {y}) is outside the "
                            f"{image.shape[2]}x{image.shape[1]} image")
        pads = ((0, height - inside.shape[1]), (0, width - inside.shape[2]))
        return pad_border(inside, pads, self.border_type, self.border_value, mean_of=image)


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
