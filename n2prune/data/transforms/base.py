"""The base of every transformation: the registry, ``Transform`` and uint8 helpers.

A batch is ``(N, H, W)`` (one channel) or ``(N, H, W, C)``, uint8 or float32.
Colour channels are in OpenCV's BGR order, as N2D2 reads images with OpenCV.
"""

import numpy as np

from n2prune.errors import SettingError
from n2prune.registry import Registry, unknown_message

TRANSFORMATIONS = Registry("Type")


def choose(setting, written, value, known):
    """``value`` if it is one of ``known``, else a SettingError blaming ``setting``."""
    if value not in known:
        raise SettingError(setting, unknown_message(f"{written}={value}", value, known))
    return value


def refuse(setting, written, value):
    """A SettingError for an N2D2 setting we do not implement, when it is switched on."""
    if value:
        raise SettingError(setting, f"{written} is not supported by n2prune; remove the key")


def round_to_uint8(values):
    """Round half up and saturate, as OpenCV's fixed-point uint8 paths do."""
    return np.clip(np.floor(values + 0.5), 0, 255).astype(np.uint8)


def saturate_uint8(values):
    """Round half to even and saturate: OpenCV's ``saturate_cast<uchar>(double)``."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def spatial(batch):
    """Reshape (N, H, W) to (N, H, W, 1) so every function sees channels last."""
    return batch if batch.ndim == 4 else batch[..., np.newaxis]


class Transform:
    """Base class; subclasses override ``apply`` and the two flags if needed.

    ``apply(batch, rng) -> new batch`` never modifies its input. The flags
    are read by the stimuli provider:

    * ``random``: it draws from ``rng``, so it must run on every batch;
    * ``keeps_uint8``: uint8 in gives uint8 out, so it can be cached on uint8 data.
    """

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
