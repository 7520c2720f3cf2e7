"""Folders of image files, a class per folder: N2D2's ``DIR_Database`` and what it shares.

Stimuli are found as N2D2's ``DIR_Database::loadDir`` finds them: a
folder's files in sorted order, then its subfolders in sorted order; a
label is named after the folders walked (``/cat`` for ``DataPath/cat``) and
numbered in order of first appearance (N2D2's ``labelID``), so sorted
folder names give labels 0, 1, 2... Images are decoded only when the
stimuli provider needs them (``ImageFiles``).
"""

import os
import pathlib
import re

import numpy as np

from n2prune.data.database import (
    DATABASES,
    Database,
    ImageInfo,
    check_fractions,
    per_label_counts,
    take,
)
from n2prune.data.decode import IMAGE_EXTENSIONS, image_shape
from n2prune.data.imagelist import ImageFiles
from n2prune.errors import DataError, SettingError
from n2prune.registry import BOOL, FLOAT, INT, STR, Key, vector


class LabelNumbers:
    """Label names numbered in order of first use, as N2D2's ``Database::labelID``."""

    def __init__(self, names=()):
        self.names = []
        for name in names:
            self.number(name)

    def number(self, name):
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)


def _mask_pattern(mask):
    """A regex of N2D2's ``Utils::match`` wildcards: ``*`` any run, ``?`` one character."""
    return re.compile(re.escape(mask).replace(r"\*", ".*").replace(r"\?", "."), re.DOTALL)


class FolderWalk:
    """N2D2's ``loadDir``: ``(path, label number)`` pairs of the image files under folders."""

    def __init__(self, labels, valid_extensions=None, ignore_masks=()):
        self.labels = labels
        self.extensions = tuple(e.lower() for e in (valid_extensions or IMAGE_EXTENSIONS))
        self.masks = [_mask_pattern(m) for m in ignore_masks]
        self.stimuli = []

    def walk(self, folder, depth, label_name="", label_depth=1):
        """Add the images of ``folder`` (``depth`` levels down, -1: all) with their labels."""
        files, subdirs, masked = self._list(pathlib.Path(folder))
        if not files and not subdirs and not masked:  # IgnoreMasks may empty a folder on purpose
            raise DataError(f"{folder}: no image files (extensions "
                            f"{', '.join(self.extensions)}); remove the folder or add images")
        if files:
            label = self.labels.number(label_name) if label_depth >= 0 else -1
            self.stimuli.extend((path, label) for path in files)
        if depth == 0:
            return
        for sub in subdirs:
            if label_depth > 0:
                self.walk(sub, depth - 1, f"{label_name}/{sub.name}", label_depth - 1)
            else:
                self.walk(sub, depth - 1, label_name, label_depth)

    def _list(self, folder):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name))
        except OSError as error:
            raise DataError(f"{folder}: cannot list the folder: {error.strerror}") from None
        files, subdirs, masked = [], [], False
        for entry in entries:
            path = pathlib.Path(folder) / entry.name
            if any(m.fullmatch(str(path)) for m in self.masks):
                masked = True
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:  # as N2D2: an entry that cannot be stat'ed is skipped
                continue
            if is_dir:
                subdirs.append(path)
            elif path.suffix[1:].lower() in self.extensions:
                files.append(path)
        return files, subdirs, masked


class FileDatabase(Database):
    """A database of image files: ``paths`` with ``labels``, split into ``parts``."""

    def __init__(self, label_names, paths, labels, parts):
        if not paths:
            raise DataError("no image files found")
        self.paths = list(paths)
        self._sizes = None
        super().__init__(label_names, labels, parts)

    def _images(self, numbers):
        return ImageFiles([self.paths[i] for i in numbers])

    def image_info(self):
        return ImageInfo(len(self.paths), image_shape(self.paths[0]), False, self.image_sizes)

    def image_sizes(self):
        """The distinct (H, W[, C]) shapes of the images, from every file's header."""
        if self._sizes is None:
            self._sizes = sorted({image_shape(path) for path in self.paths})
        return self._sizes


def partition_per_label(labels, learn, validation, equiv_label, rng):
    """{learn, validation, test} of N2D2's ``partitionStimuliPerLabel`` then ``Test`` for the rest.

    Of each label's stimuli, ``round(n * learn)`` learn and about ``n *
    validation`` validation, where ``n`` is that label's count, or the
    smallest label's count with ``equiv_label``; every other stimulus is test.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    smallest = min(np.count_nonzero(labels == k) for k in classes)
    learn_parts, valid_parts, rest = [], [], []
    for label in classes:
        pool = np.flatnonzero(labels == label)
        count = smallest if equiv_label else len(pool)
        nb_learn, nb_valid, _ = per_label_counts(count, learn, validation, 1.0 - learn - validation)
        (part_learn, part_valid), left = take(pool, (nb_learn, nb_valid), rng)
        learn_parts.append(part_learn)
        valid_parts.append(part_valid)
        rest.append(left)
    return {name: np.sort(np.concatenate(parts)) for name, parts in
            (("learn", learn_parts), ("validation", valid_parts), ("test", rest))}


def partition_counts(nb_stimuli, learn, validation, test, rng):
    """{learn, validation, test} of N2D2's ``partitionStimuli(count, set)``: counts, not fractions."""
    counts = [int(learn), int(validation)]
    counts.append(int(test) if test is not None else nb_stimuli - sum(counts))
    if min(counts) < 0 or sum(counts) > nb_stimuli:
        raise SettingError("learn", f"partitions of {counts[0]} + {counts[1]} + {counts[2]} "
                           f"stimuli asked of {nb_stimuli} (PerLabelPartitioning=0: Learn, "
                           "Validation and Test are counts)")
    parts, _ = take(np.arange(nb_stimuli), counts, rng)
    return dict(zip(("learn", "validation", "test"), parts))


def _refuse(**given):
    for setting, value in given.items():
        if value:
            raise SettingError(setting, "regions of interest are not supported, nor chained "
                               "[database] sections; remove the key")


DIR_KEYS = (
    Key("DataPath", "data_path", STR, "the folder of images, relative to the INI file's folder"),
    Key("Learn", "learn", FLOAT, "fraction of each label's images learned (a count with "
        "PerLabelPartitioning=0)"),
    Key("Validation", "validation", FLOAT, "fraction of each label's images for validation "
        "(a count with PerLabelPartitioning=0)"),
    Key("Test", "test", FLOAT, "with PerLabelPartitioning=0: the test count (absent: the rest); "
        "otherwise the rest is test anyway"),
    Key("Depth", "depth", INT, "levels of subfolders walked (-1: all)"),
    Key("LabelName", "label_name", STR, "prefix of the label names"),
    Key("LabelDepth", "label_depth", INT, "levels of subfolders naming the labels"),
    Key("PerLabelPartitioning", "per_label_partitioning", BOOL,
        "split each label by the fractions (0: Learn, Validation, Test are counts)"),
    Key("EquivLabelPartitioning", "equiv_label_partitioning", BOOL,
        "every label gives as many learn and validation images as the smallest one"),
    Key("ValidExtensions", "valid_extensions", vector(STR),
        "file extensions read (absent: every image format)"),
    Key("IgnoreMasks", "ignore_masks", vector(STR), "paths skipped (``*`` and ``?`` wildcards)"),
    Key("RandomPartitioning", "random_partitioning", BOOL, "0: partitions take images in order"),
    Key("LoadInMemory", "load_in_memory", BOOL, "accepted, no effect"),
    Key("ROIFile", "roi_file", STR, "not supported (an error when written)"),
    Key("LoadMore", "load_more", STR, "not supported (an error when written)"),
)


@DATABASES.register("DIR_Database", *DIR_KEYS)
class DirDatabase(FileDatabase):
    """N2D2's ``DIR_Database``: the image files under ``data_path``, a label per folder.

    ``depth`` levels of subfolders are walked (-1: all), labels named after
    the first ``label_depth`` of them, prefixed by ``label_name`` (N2D2:
    ``DataPath/cat/x.jpg`` is label ``/cat``). With ``per_label_partitioning``
    (the default) each label gives ``learn`` and ``validation`` fractions of
    its images (of the smallest label's count with ``equiv_label_partitioning``)
    and every other image is "test" (N2D2 moves the rest to Test after
    ``Test``'s share, so ``test`` changes nothing there); without it
    ``learn``, ``validation``, ``test`` are image counts, as N2D2 reads them.
    Draws are random from ``seed`` unless ``random_partitioning`` is false.
    Differs from N2D2: a folder with no images (nor subfolders) is an error
    rather than a class silently missing, and ``LabelDepth=-1`` (unlabelled
    images) is refused; ``load_in_memory`` changes nothing.
    """

    def __init__(self, data_path, learn, validation=0.0, test=None, seed=0, depth=1,
                 label_name="", label_depth=1, per_label_partitioning=True,
                 equiv_label_partitioning=True, valid_extensions=None, ignore_masks=(),
                 random_partitioning=True, load_in_memory=False, roi_file=None, load_more=None):
        _refuse(roi_file=roi_file, load_more=load_more)
        if label_depth < 0:
            raise SettingError("label_depth", "unlabelled images (LabelDepth < 0) cannot be "
                               "trained on; use LabelDepth >= 0")
        if per_label_partitioning:
            check_fractions(learn=learn, validation=validation)
        folder = pathlib.Path(data_path)
        if not folder.is_dir():
            raise DataError(f"{folder}: image folder not found; set DataPath in [database]")
        self.data_path = folder
        walk = FolderWalk(LabelNumbers(), valid_extensions, ignore_masks)
        walk.walk(folder, depth, label_name, label_depth)
        paths = [path for path, _ in walk.stimuli]
        labels = np.array([label for _, label in walk.stimuli], dtype=np.int64)
        rng = np.random.default_rng(seed) if random_partitioning else None
        if per_label_partitioning:
            parts = partition_per_label(labels, learn, validation, equiv_label_partitioning, rng)
        else:
            parts = partition_counts(len(paths), learn, validation, test, rng)
        super().__init__(walk.labels.names, paths, labels, parts)
