"""Stimuli provider: turns a partition's uint8 images into float32 (C, H, W, N) batches.

As N2D2's ``StimuliProvider``: ``Transformation*`` sections are applied once
and cached, ``OnTheFlyTransformation*`` sections on every batch, each to the
partitions its ``ApplyTo`` names, and data still 8-bit after all of them are
divided by 255 (``normalizeIntegersStimuli`` in N2D2's exec/n2d2.cpp), so
inputs land in [0, 1].

With channel pipelines (N2D2's ``ChannelTransformation*`` sections), the
stimulus is assembled from them instead: each channel takes a copy of the
image after the transformations above, runs its own transformations (cached
ones, then on-the-fly ones), must come out with one channel, is divided by
255 if still 8-bit, and the channels are stacked in order.
"""

import math

import numpy as np

from n2prune.data.imagelist import ImageList, apply_grouped, stack_uniform
from n2prune.data.mnist import PARTITIONS
from n2prune.errors import ShapeError
from n2prune.kernels.gather import gather_batch

# Images per chunk when caching: at most PREPARE_CHUNK, and few enough that
# one float32 copy of the largest image on the way takes PREPARE_BYTES
# (bounds the temporaries of a Rescale).
PREPARE_CHUNK = 4096
PREPARE_BYTES = 256 << 20

# N2D2's StimuliSetMask names -> the partitions a transformation applies to.
APPLY_TO = {
    "LearnOnly": ("learn",),
    "ValidationOnly": ("validation",),
    "TestOnly": ("test",),
    "NoLearn": ("validation", "test"),
    "NoValidation": ("learn", "test"),
    "NoTest": ("learn", "validation"),
    "All": PARTITIONS,
}


def chunk_size(shapes):
    """Images per chunk for images taking the (H, W, C) ``shapes`` along the way."""
    largest = max(math.prod(shape) for shape in shapes)
    return int(max(1, min(PREPARE_CHUNK, PREPARE_BYTES // (4 * largest))))


def shapes_through(transforms, shape):
    """The (H, W, C) shapes of an image of ``shape`` before and after each transform."""
    shapes = [tuple(shape) + (1,) * (3 - len(shape))]
    for transform in transforms:
        shapes.append(transform.output_shape(shapes[-1]))
    return shapes


def scoped(steps):
    """``[(transform, partitions)]`` of ``steps``: each a transform (all partitions)
    or a ``(transform, partitions)`` pair."""
    out = []
    for step in steps:
        transform, parts = step if isinstance(step, tuple) else (step, PARTITIONS)
        unknown = set(parts) - set(PARTITIONS)
        if unknown:
            raise ValueError(f"unknown partition(s) {sorted(unknown)}; known: {PARTITIONS}")
        out.append((transform, tuple(parts)))
    return out


def _split_cacheable(transforms):
    """(leading deterministic uint8-keeping transforms, the rest)."""
    for index, transform in enumerate(transforms):
        if transform.random or not transform.keeps_uint8:
            return list(transforms[:index]), list(transforms[index:])
    return list(transforms), []


class StimuliProvider:
    """Batches of ``size = (height, width, channels)`` images, ``batch_size`` at a time.

    ``transforms`` are N2D2's cached transformations, ``on_the_fly`` the
    per-batch ones, each list in file order; an item is a transform (applied
    to every partition) or ``(transform, partitions)`` (N2D2's ``ApplyTo``,
    see ``APPLY_TO``). Per partition, only the leading transformations that
    are deterministic and keep uint8 are really cached (``prepare``); from the
    first other one on, everything runs per batch (``batch``), which gives the
    same result as N2D2 for deterministic ones and keeps the cache uint8.
    """

    def __init__(self, size, batch_size, transforms=(), on_the_fly=(), channels=()):
        self.size = tuple(int(s) for s in size)
        if len(self.size) != 3:
            raise ValueError(f"size must be (height, width, channels), got {size}")
        self.batch_size = int(batch_size)
        self.transforms, self.on_the_fly = scoped(transforms), scoped(on_the_fly)
        self.channels = [(scoped(cached), scoped(fly)) for cached, fly in channels]
        if self.channels and len(self.channels) != self.size[2]:
            raise ValueError(f"{len(self.channels)} channel pipelines for {self.size[2]} channels")
        self._pipelines = {}
        for part in PARTITIONS:
            cached, per_batch = _split_cacheable(self.steps(part, on_the_fly=False))
            self._pipelines[part] = (cached, per_batch + self.steps(part, cached=False))

    def steps(self, part, cached=True, on_the_fly=True):
        """The transforms applied to partition ``part``, in the order they run."""
        chosen = (self.transforms if cached else []) + (self.on_the_fly if on_the_fly else [])
        return [transform for transform, parts in chosen if part in parts]

    def channel_steps(self, part):
        """Per stimulus channel, the transforms its pipeline runs on partition ``part``
        (cached ones, then on-the-fly ones: N2D2's order); empty without channel pipelines."""
        return [[t for t, parts in cached + fly if part in parts] for cached, fly in self.channels]

    def pipeline(self, part):
        """``(cached, per_batch)`` transforms of partition ``part``."""
        if part not in self._pipelines:
            raise ValueError(f"unknown partition {part!r}; known: {PARTITIONS}")
        return self._pipelines[part]

    def prepare(self, images, part):
        """Apply the cached transformations of partition ``part`` once to its images.

        ``images`` is uint8 (N, H, W) or (N, H, W, C); the result is uint8
        with the transformed shape. Work goes by chunks of ``PREPARE_CHUNK``
        images or fewer (``chunk_size``); with nothing to cache, ``images``
        itself is returned. Images of a folder (``ImageFiles``) are decoded
        here by chunks (``_prepare_files``).
        """
        cached = self.pipeline(part)[0]
        if not isinstance(images, np.ndarray):
            return self._prepare_files(images, cached)
        if not cached:
            return images
        chunk = chunk_size(shapes_through(cached, images.shape[1:]))
        chunks = [self._apply(cached, images[start:start + chunk], None)
                  for start in range(0, len(images), chunk)]
        return np.concatenate(chunks) if chunks else images[:0]

    def _prepare_files(self, images, cached):
        """Decode ``images`` (an ``ImageFiles``) and apply the ``cached`` transforms, by chunks.

        Nothing cached: the files stay as they are, decoded batch by batch.
        Otherwise the result is one uint8 array when the cached
        transformations make the images one size, else an ``ImageList``.
        """
        if not cached or len(images) == 0:
            return images
        out = None
        for start in range(0, len(images), PREPARE_CHUNK):
            stop = min(start + PREPARE_CHUNK, len(images))
            items = apply_grouped(cached, images.take(np.arange(start, stop)), None)
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

    def batch(self, cached, indices, rng, part):
        """float32 (C, H, W, N) batch (the batch innermost) of the rows ``indices`` of ``cached``.

        ``cached`` is ``prepare(images, part)``: an array, or an
        ``ImageFiles``/``ImageList`` whose images are taken one by one.
        Applies the per-batch transformations of ``part``, then divides by 255
        if the data are still uint8. Raises ``ShapeError`` when the result is
        not ``size``.
        """
        per_batch = self.pipeline(part)[1]
        in_memory = isinstance(cached, np.ndarray)
        if in_memory and not per_batch and not self.channels:  # one pass, no temporaries
            self._check_shape(cached[:1], part)
            divisor = 255 if cached.dtype == np.uint8 else 1
            images = cached if cached.ndim == 4 else cached[..., np.newaxis]
            return gather_batch(images, indices, divisor)
        if in_memory:
            batch = self._apply(per_batch, cached[indices], rng)
        else:  # files, or images of several sizes: transformed by size, then stacked
            items = apply_grouped(per_batch, cached.take(indices), rng)
            batch = stack_uniform(items, "the stimuli of a batch")
        if self.channels:
            batch = self._assemble_channels(batch, rng, part)
        self._check_shape(batch, part)
        if batch.dtype == np.uint8:
            batch = batch.astype(np.float32) / np.float32(255)
        else:
            batch = batch.astype(np.float32, copy=False)
        if batch.ndim == 3:
            return np.ascontiguousarray(batch.transpose(1, 2, 0)[np.newaxis])
        return np.ascontiguousarray(batch.transpose(3, 1, 2, 0))

    def _assemble_channels(self, batch, rng, part):
        """float32 (N, H, W, C): each channel pipeline run on ``batch``, stacked.

        As N2D2's ``readStimulus``: every channel starts from the same image;
        one still 8-bit at its end is divided by 255 (``normalizeIntegersStimuli``
        adds that per channel).
        """
        planes = []
        for index, steps in enumerate(self.channel_steps(part)):
            plane = self._apply(steps, batch, rng)
            if plane.ndim == 4 and plane.shape[3] != 1:
                raise ShapeError(f"channel {index} of the {part} stimuli has {plane.shape[3]} "
                                 "channels after its transformations; a channel pipeline must "
                                 "give one (start it with a ChannelExtractionTransformation)")
            plane = plane.reshape(plane.shape[:3])
            if planes and plane.shape != planes[0].shape:
                raise ShapeError(f"channel {index} of the {part} stimuli is "
                                 f"{plane.shape[2]}x{plane.shape[1]}, channel 0 is "
                                 f"{planes[0].shape[2]}x{planes[0].shape[1]}")
            scale = np.float32(255) if plane.dtype == np.uint8 else np.float32(1)
            planes.append(plane.astype(np.float32) / scale)
        return np.stack(planes, axis=-1)

    def _check_shape(self, batch, part):
        got = (batch.shape[1], batch.shape[2], batch.shape[3] if batch.ndim == 4 else 1)
        if got != self.size:
            height, width, channels = self.size
            raise ShapeError(f"{part} stimuli are {got[1]}x{got[0]} with {got[2]} channel(s) but [sp] "
                             f"expects {width}x{height} with {channels}; add a Rescale or "
                             "PadCrop transformation (or fix SizeX/SizeY/NbChannels)")
