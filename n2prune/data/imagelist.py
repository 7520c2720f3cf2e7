"""Images that need not share one size: a list of files decoded on demand, or of arrays.

A database of image files (``DIR_Database``...) hands out an ``ImageFiles``
instead of one (N, H, W[, C]) array: its images may differ in size, and a
folder the size of ILSVRC2012 does not fit in memory. The stimuli provider
decodes them by chunks or by batches (``take``), applies the transformations
to each group of images of one size (``apply_grouped``) and stacks the
result once the transformations have made them one size (``stack_uniform``).
"""

import numpy as np

from n2prune.data.decode import read_image
from n2prune.errors import ShapeError


class ImageList:
    """A sequence of uint8 (H, W[, C]) arrays, possibly of different sizes."""

    def __init__(self, arrays):
        self.arrays = list(arrays)

    def __len__(self):
        return len(self.arrays)

    def take(self, indices):
        """The arrays at ``indices`` (a list; no copy)."""
        return [self.arrays[i] for i in np.asarray(indices, dtype=np.intp)]


class ImageFiles:
    """The image files ``paths`` (a sequence of ``pathlib.Path``), decoded when taken.

    Nothing is held but the paths: each ``take`` reads its files again.
    """

    def __init__(self, paths):
        self.paths = list(paths)

    def __len__(self):
        return len(self.paths)

    def take(self, indices):
        """uint8 (H, W[, C]) BGR arrays of the files at ``indices`` (``read_image``)."""
        return [read_image(self.paths[i]) for i in np.asarray(indices, dtype=np.intp)]


def apply_grouped(transforms, images, rng):
    """Apply ``transforms`` in turn to a list of (H, W[, C]) images, one size group at a time.

    A transformation takes a batch of one size; images of each shape go
    through it together, in order of first appearance, and come back in
    their places. Returns the list of transformed images.
    """
    images = list(images)
    for transform in transforms:
        out = [None] * len(images)
        for members in _groups(images).values():
            batch = transform.apply(np.stack([images[i] for i in members]), rng)
            for position, i in enumerate(members):
                out[i] = batch[position]
        images = out
    return images


def _groups(images):
    groups = {}
    for index, image in enumerate(images):
        groups.setdefault((image.shape, image.dtype.str), []).append(index)
    return groups


def stack_uniform(images, what="the images"):
    """One (N, H, W[, C]) array of a list of same-shaped images, else a ShapeError naming the sizes."""
    groups = _groups(images)
    if len(groups) > 1:
        raise ShapeError(f"{what} are of {len(groups)} sizes ({describe_sizes(groups)}); add a "
                         "RescaleTransformation or PadCropTransformation to the stimuli provider "
                         "so that they are one size")
    if not images:
        return np.zeros((0, 1, 1), dtype=np.uint8)
    return np.stack(images)


def describe_sizes(shapes, limit=4):
    """``32x30x3, 40x41x1, ...`` (width x height x channels) of (H, W[, C]) shapes."""
    words = []
    for shape in list(shapes)[:limit]:
        shape = shape[0] if isinstance(shape[0], tuple) else shape  # a (shape, dtype) key
        channels = shape[2] if len(shape) > 2 else 1
        words.append(f"{shape[1]}x{shape[0]}x{channels}")
    more = len(shapes) - limit
    return ", ".join(words) + (f", and {more} more" if more > 0 else "")
