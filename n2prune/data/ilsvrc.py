"""ImageNet ILSVRC2012 as N2D2's ``ILSVRC2012_Database`` reads it.

Layout under ``DataPath``::

    train/n01440764/*.JPEG ...   a folder per class (the training archive unpacked)
    val/ILSVRC2012_val_00000001.JPEG ...
    val.txt                      "ILSVRC2012_val_00000001.JPEG 65" per line

and ``LabelPath``, the class folders' names in label order (``synsets.txt``:
``n01440764`` per line). ``val.txt`` and ``synsets.txt`` are those of
Caffe's ILSVRC2012 auxiliary files.
"""

import pathlib

import numpy as np

from n2prune.data.database import DATABASES, fraction_counts, n2d2_data_path, take
from n2prune.data.folders import FileDatabase, FolderWalk, LabelNumbers
from n2prune.errors import DataError, SettingError
from n2prune.registry import BOOL, FLOAT, STR, Key

WHERE_TO_GET = ("ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
                "https://image-net.org (registration needed), with synsets.txt and val.txt "
                "of Caffe's caffe_ilsvrc12.tar.gz")


def _read_words(path, what):
    try:
        return pathlib.Path(path).read_text(encoding="utf-8", errors="replace").split()
    except OSError as error:
        raise DataError(f"{path}: cannot read the {what}: {error.strerror}") from None


def read_validation_list(path, val_dir, label_names, offset):
    """(paths, label numbers) of ``val.txt``: ``name label`` pairs, labels shifted by ``offset``."""
    words = _read_words(path, "validation label file")
    if len(words) % 2:
        raise DataError(f"{path}: expected 'file label' pairs, got an odd number of words")
    paths, labels = [], []
    for name, label in zip(words[::2], words[1::2]):
        if not label.isdigit() or int(label) + offset >= len(label_names):
            raise DataError(f"{path}: label {label} of {name} is not one of the "
                            f"{len(label_names) - offset} classes of the label file")
        image = val_dir / name
        if not image.is_file():
            raise DataError(f"{image}: listed in {path} but missing")
        paths.append(image)
        labels.append(int(label) + offset)
    return paths, labels


@DATABASES.register(
    "ILSVRC2012_Database",
    Key("Learn", "learn", FLOAT, "fraction of the training images learned; the rest are test"),
    Key("UseValidationForTest", "use_validation_for_test", BOOL,
        "the validation images are also test images"),
    Key("BackgroundClass", "background_class", BOOL,
        "label 0 is an extra 'background' class (Google's pre-trained MobileNets)"),
    Key("DataPath", "data_path", STR, "folder holding train/, val/ and val.txt, relative to "
        "the INI file's folder (absent: $N2D2_DATA/ILSVRC2012)"),
    Key("LabelPath", "label_path", STR, "the class folder names in label order (absent: "
        "$N2D2_DATA/ILSVRC2012/synsets.txt)"),
    Key("RandomPartitioning", "random_partitioning", BOOL,
        "0: the first training images are learn, the rest test"),
)
class Ilsvrc2012Database(FileDatabase):
    """ILSVRC2012 as N2D2's ``ILSVRC2012_Database``.

    The class folders of ``train/`` are read in the order of ``label_path``
    (label ``k`` is its ``k``-th name, shifted by one with
    ``background_class``); ``learn`` of them are "learn" (random from
    ``seed`` unless ``random_partitioning`` is false), the rest "test". The
    images of ``val.txt`` are "validation" and, with
    ``use_validation_for_test``, "test" as well.
    """

    def __init__(self, learn, data_path=None, label_path=None, seed=0,
                 use_validation_for_test=True, background_class=False, random_partitioning=True):
        if not 0.0 <= learn <= 1.0:
            raise SettingError("learn", f"expected a fraction in [0, 1], got {learn}")
        folder = n2d2_data_path("ILSVRC2012") if data_path is None else pathlib.Path(data_path)
        if label_path is None:
            label_path = n2d2_data_path("ILSVRC2012/synsets.txt")
        if not (folder / "train").is_dir():
            raise DataError(f"{folder / 'train'}: ILSVRC2012 folder not found; get "
                            f"{WHERE_TO_GET}, unpack them and set DataPath in [database]")
        self.data_path = folder
        labels = LabelNumbers(["background"] if background_class else [])
        walk = FolderWalk(labels)
        for name in _read_words(label_path, "label file"):
            walk.walk(folder / "train" / name, 0, name, 0)
        paths = [path for path, _ in walk.stimuli]
        train_labels = [label for _, label in walk.stimuli]
        val_paths, val_labels = read_validation_list(folder / "val.txt", folder / "val",
                                                     labels.names, int(background_class))
        rng = np.random.default_rng(seed) if random_partitioning else None
        nb_learn, _, nb_test = fraction_counts(len(paths), learn, 0.0, 1.0 - learn)
        (learn_part, test_part), _ = take(np.arange(len(paths)), (nb_learn, nb_test), rng)
        validation = np.arange(len(paths), len(paths) + len(val_paths))
        test = np.concatenate([test_part, validation]) if use_validation_for_test else test_part
        parts = {"learn": learn_part, "validation": validation, "test": test}
        super().__init__(labels.names, paths + val_paths, train_labels + val_labels, parts)
