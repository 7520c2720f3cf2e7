"""Image transformations on whole batches, following N2D2's ``*Transformation``.

A batch is ``(N, H, W)`` (one channel) or ``(N, H, W, C)``, uint8 or float32.
Colour channels are in OpenCV's BGR order, as N2D2 reads images with OpenCV.
Every transformation has ``apply(batch, rng) -> new batch`` and two flags,
``random`` and ``keeps_uint8`` (see ``base.Transform``).

``TRANSFORMATIONS`` maps N2D2's ``Type=`` names to the classes, each
registered with the INI keys of its constructor: geometry (Rescale,
PadCrop, SliceExtraction, Flip), colour (ChannelExtraction, ColorSpace),
values (RangeAffine, Affine).
"""

# isort: off
# Import order is registration order, the order the docs and messages list.
from n2prune.data.transforms.base import TRANSFORMATIONS, Transform
from n2prune.data.transforms.geometry import (
    Flip,
    PadCrop,
    Rescale,
    SliceExtraction,
    linear_table,
    pad_crop_offsets,
)
from n2prune.data.transforms.colour import COLOR_SPACES, ChannelExtraction, ColorSpace
from n2prune.data.transforms.affine import OPERATORS, Affine, RangeAffine, read_cvmat
# isort: on

__all__ = [
    "COLOR_SPACES", "OPERATORS", "TRANSFORMATIONS",
    "Affine", "ChannelExtraction", "ColorSpace", "Flip", "PadCrop", "RangeAffine", "Rescale",
    "SliceExtraction", "Transform", "linear_table", "pad_crop_offsets", "read_cvmat",
]
