"""Stimuli provider: turns a partition's uint8 images into float32 (C, H, W, N) batches.

As N2D2's ``StimuliProvider``: ``Transformation*`` sections are applied once
and cached, ``OnTheFlyTransformation*`` sections on every batch, and data
still 8-bit after all of them are divided by 255 (``normalizeIntegersStimuli``
in N2D2's exec/n2d2.cpp), so inputs land in [0, 1].
"""

import numpy as np

from n2prune.data.imagelist import ImageList, apply_grouped, stack_uniform
from n2prune.errors import ShapeError
from n2prune.kernels.gather import gather_batch

# Images per chunk when caching: bounds the float32 temporaries of a Rescale.
PREPARE_CHUNK = 4096


def _split_cacheable(transforms):
    """(leading deterministic uint8-keeping transforms, the rest)."""
    for index, transform in enumerate(transforms):
        if transform.random or not transform.keeps_uint8:
            return list(transforms[:index]), list(transforms[index:])
    return list(transforms), []


class StimuliProvider:
    """Batches of ``size = (height, width, channels)`` images, ``batch_size`` at a time.

    ``transforms`` are N2D2's cached transformations, ``on_the_fly`` the
    per-batch ones, each list in file order. Only the leading transformations
    that are deterministic and keep uint8 are really cached (``prepare``);
    from the first other one on, everything runs per batch (``batch``), which
    gives the same result as N2D2 for deterministic ones and keeps the cache
    uint8.
    """

    def __init__(self, size, batch_size, transforms=(), on_the_fly=()):
        self.size = tuple(int(s) for s in size)
        if len(self.size) != 3:
            raise ValueError(f"size must be (height, width, channels), got {size}")
        self.batch_size = int(batch_size)
        self.cached, per_batch = _split_cacheable(list(transforms))
        self.per_batch = per_batch + list(on_the_fly)

    def prepare(self, images):
        """Apply the cached transformations once to a whole partition.

        ``images`` is uint8 (N, H, W) or (N, H, W, C); the result is uint8
        with the transformed shape. Work goes by chunks of ``PREPARE_CHUNK``
        images; with nothing to cache, ``images`` itself is returned. Images
        of a folder (``ImageFiles``) are decoded here by chunks
        (``_prepare_files``).
        """
        if not isinstance(images, np.ndarray):
            return self._prepare_files(images)
        if not self.cached:
            return images
        chunks = [self._apply(self.cached, images[start:start + PREPARE_CHUNK], None)
                  for start in range(0, len(images), PREPARE_CHUNK)]
        return np.concatenate(chunks) if chunks else images[:0]

    def _prepare_files(self, images):
        """Decode and transform ``images`` (an ``ImageFiles``) chunk by chunk.

        Nothing cached: the files stay as they are, decoded batch by batch.
        Otherwise the result is one uint8 array when the cached
        transformations make the images one size, else an ``ImageList``.
        """
        if not self.cached or len(images) == 0:
            return images
        out = None
        for start in range(0, len(images), PREPARE_CHUNK):
            stop = min(start + PREPARE_CHUNK, len(images))
            items = apply_grouped(self.cached, images.take(np.arange(start, stop)), None)
            if out is None:
                out = np.empty((len(images), *items[0].shape), dtype=items[0].dtype)
            if isinstance(out, np.ndarray) and all(
                    i.shape == out.shape[1:] and i.dtype == out.dtype for i in items):
                np.stack(items, out=out[start:stop])
                continue
            if isinstance(out, np.ndarray):
                out = ImageList(list(out[:start]))
            out.arrays.extend(items)
        return out

    @staticmethod
    def _apply(transforms, batch, rng):
        for transform in transforms:
            batch = transform.apply(batch, rng)
        return batch

    def batch(self, cached, indices, rng):
        """float32 (C, H, W, N) batch (the batch innermost) of the rows ``indices`` of ``cached``.

        ``cached`` is what ``prepare`` returned: an array, or an
        ``ImageFiles``/``ImageList`` whose images are taken one by one.

        Applies the per-batch transformations, then divides by 255 if the data
        are still uint8. Raises ``ShapeError`` when the result is not ``size``.
        """
        in_memory = isinstance(cached, np.ndarray)
        if in_memory and not self.per_batch:  # the common case: one pass, no temporaries
            self._check_shape(cached[:1])
            divisor = 255 if cached.dtype == np.uint8 else 1
            images = cached if cached.ndim == 4 else cached[..., np.newaxis]
            return gather_batch(images, indices, divisor)
        if in_memory:
            batch = self._apply(self.per_batch, cached[indices], rng)
        else:  # files, or images of several sizes: transformed by size, then stacked
            items = apply_grouped(self.per_batch, cached.take(indices), rng)
            batch = stack_uniform(items, "the stimuli of a batch")
        self._check_shape(batch)
        if batch.dtype == np.uint8:
            batch = batch.astype(np.float32) / np.float32(255)
        else:
            batch = batch.astype(np.float32, copy=False)
        if batch.ndim == 3:
            return np.ascontiguousarray(batch.transpose(1, 2, 0)[np.newaxis])
        return np.ascontiguousarray(batch.transpose(3, 1, 2, 0))

    def _check_shape(self, batch):
        got = (batch.shape[1], batch.shape[2], batch.shape[3] if batch.ndim == 4 else 1)
        if got != self.size:
            height, width, channels = self.size
            raise ShapeError(f"stimuli are {got[1]}x{got[0]} with {got[2]} channel(s) but [sp] "
                             f"expects {width}x{height} with {channels}; add a Rescale or "
                             "PadCrop transformation (or fix SizeX/SizeY/NbChannels)")
