"""What every database offers, and N2D2's ways to split stimuli into partitions.

A database numbers its stimuli 0..N-1, each with a label in
``0 .. nb_classes - 1``; a partition (learn, validation, test) is an array
of stimulus numbers. ``images(part)`` is uint8 (N, H, W) or (N, H, W, C)
in BGR order for databases held in memory, or an ``ImageFiles`` for the
folders of image files, decoded by the stimuli provider as needed.
"""

import os
import pathlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from n2prune.errors import DataError, SettingError
from n2prune.registry import Registry, unknown_message

PARTITIONS = ("learn", "validation", "test")

# N2D2's ``Type=`` of ``[database]`` -> the class (or function) building the database.
DATABASES = Registry("Type")


class ImageInfo(NamedTuple):
    """What the memory estimate needs, told before any image is decoded.

    ``count`` images are stored, the first of ``shape`` (H, W[, C]).
    ``resident``: all of them are held in memory as one array. Otherwise
    (files) ``sizes()`` returns the distinct shapes, reading every header.
    """

    count: int
    shape: tuple
    resident: bool = True
    sizes: Callable = None


def n2d2_data_path(subdir):
    """N2D2's ``N2D2_DATA(subdir)``: under ``$N2D2_DATA``, else ``/local/$USER/n2d2_data``."""
    base = os.environ.get("N2D2_DATA")
    if base:
        return pathlib.Path(base) / subdir
    return pathlib.Path("/local") / os.environ.get("USER", "") / "n2d2_data" / subdir


def round_half_up(value):
    """N2D2's ``Utils::round(x, HalfUp)``."""
    return int(np.floor(value + 0.5))


def round_half_down(value):
    """N2D2's ``Utils::round(x, HalfDown)``."""
    return int(np.ceil(value - 0.5))


def fraction_counts(nb_stimuli, learn, validation, test):
    """(learn, validation, test) stimulus counts of N2D2's ``partitionStimuli(double...)``."""
    nb_learn = round_half_up(nb_stimuli * learn)
    nb_rest = round_half_down(nb_stimuli * (validation + test))
    share = validation / (validation + test) if validation > 0 else 0.0
    return nb_learn, round_half_up(nb_rest * share), round_half_down(nb_rest * (1.0 - share))


def per_label_counts(nb_stimuli, learn, validation, test):
    """(learn, validation, test) of one label, as N2D2's ``partitionStimuliPerLabel``."""
    nb_learn = round_half_up(nb_stimuli * learn)
    nb_rest = min(round_half_down(nb_stimuli * (validation + test)), nb_stimuli - nb_learn)
    share = validation / (validation + test) if validation > 0 else 0.0
    nb_validation = round_half_up(nb_rest * share)
    nb_test = min(round_half_down(nb_rest * (1.0 - share)), nb_stimuli - nb_learn - nb_validation)
    return nb_learn, nb_validation, nb_test


def take(pool, counts, rng):
    """Split ``pool`` (stimulus numbers) into ``len(counts)`` parts and the rest.

    As N2D2's partitioning: with ``rng`` the members are drawn at random (a
    permutation), without it the first ones in order. Each part is sorted.
    """
    pool = np.asarray(pool, dtype=np.int64)
    if sum(counts) > len(pool):
        raise DataError(f"partitions of {sum(counts)} stimuli asked of {len(pool)}")
    order = pool if rng is None else pool[rng.permutation(len(pool))]
    parts, start = [], 0
    for count in counts:
        parts.append(np.sort(order[start:start + count]))
        start += count
    return parts, np.sort(order[start:])


def check_fractions(**fractions):
    """SettingError on the first fraction outside [0, 1], or when they add up to more than 1."""
    for setting, value in fractions.items():
        if value is not None and not 0.0 <= value <= 1.0:
            raise SettingError(setting, f"expected a fraction in [0, 1], got {value}")
    total = sum(v for v in fractions.values() if v is not None)
    if total > 1.0 + 1e-9:
        names = " + ".join(fractions)
        raise SettingError(next(iter(fractions)), f"{names} = {total:g} is more than 1")


class Database:
    """Stimuli 0..N-1 with ``labels`` (int64), split into ``parts`` {partition: numbers}.

    Subclasses say how images are stored: ``_images(numbers)`` and ``image_info()``.
    """

    def __init__(self, label_names, labels, parts):
        self.label_names = tuple(label_names)
        self.nb_classes = len(self.label_names)
        self._labels = np.asarray(labels, dtype=np.int64)
        self._parts = {part: np.asarray(parts[part], dtype=np.int64) for part in PARTITIONS}

    def indices(self, part):
        """The stimulus numbers of ``part``."""
        if part not in PARTITIONS:
            raise ValueError(unknown_message(f"partition {part!r}", part, PARTITIONS))
        return self._parts[part]

    def size(self, part):
        """Number of stimuli in ``part``."""
        return len(self.indices(part))

    def labels(self, part):
        """int64 (N,) labels in ``0 .. nb_classes - 1`` of ``part``."""
        return self._labels[self.indices(part)]

    def images(self, part):
        """The images of ``part``, in the order of ``labels(part)``."""
        return self._images(self.indices(part))

    def _images(self, numbers):
        raise NotImplementedError

    def image_info(self):
        """``ImageInfo`` of the stored images, without decoding them."""
        raise NotImplementedError
