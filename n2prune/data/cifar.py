"""CIFAR-10 and CIFAR-100 in their binary batch format, as N2D2's ``CIFAR*_Database``.

A batch file is a run of records: one label byte (CIFAR-100: a coarse then
a fine label byte), then 3072 bytes of a 32x32 image, the red plane, the
green plane and the blue plane, each row by row. Label names come from the
text files shipped with the batches, one name a line.
"""

import pathlib

import numpy as np

from n2prune.data.database import DATABASES, Database, ImageInfo, n2d2_data_path
from n2prune.data.mnist import split_indices
from n2prune.errors import DataError, SettingError
from n2prune.registry import BOOL, FLOAT, STR, Key

SIDE = 32
PIXELS = 3 * SIDE * SIDE
CIFAR10_FILES = tuple(f"data_batch_{k}.bin" for k in range(1, 6)), "test_batch.bin"
CIFAR100_FILES = ("train.bin",), "test.bin"
WHERE_TO_GET = {
    10: "the binary version of https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    100: "the binary version of https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
}


def read_label_names(path):
    """The lines of a label names file (blank lines and surrounding spaces dropped)."""
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise DataError(f"{path}: cannot read the label names: {error.strerror}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_batch(path, label_bytes, label_index):
    """(uint8 (N, 32, 32, 3) BGR images, uint8 (N,) label bytes) of one batch file.

    ``label_bytes`` per record (1, or 2 for CIFAR-100: coarse, fine), of
    which the one at ``label_index`` is returned.
    """
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DataError(f"{path}: cannot read the batch file: {error.strerror}") from None
    record = label_bytes + PIXELS
    if raw.size == 0 or raw.size % record:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte "
                        "records (truncated or not a CIFAR binary batch?)")
    records = raw.reshape(-1, record)
    planes = records[:, label_bytes:].reshape(-1, 3, SIDE, SIDE)
    # RGB planes on disk; OpenCV's (N2D2's) BGR, channels last, in memory.
    images = np.ascontiguousarray(planes[:, ::-1].transpose(0, 2, 3, 1))
    return images, records[:, label_index].copy()


class CifarDatabase(Database):
    """CIFAR-10 (``fine_labels`` None) or CIFAR-100 batches of a folder, as N2D2.

    ``data_path`` None means N2D2's default, ``$N2D2_DATA/cifar-10-batches-bin``
    (``cifar-100-binary``). The training batches give "learn" and
    "validation" (``validation`` of them, at random from ``seed`` unless
    ``random_partitioning`` is false: ``split_indices``), the test batch
    "test"; with ``use_test_for_validation`` the whole training set is
    learned and the test batch is also the validation set. Label numbers
    follow N2D2: in order of first appearance in the batches (so class 0 is
    the label of the first image), named from ``batches.meta.txt``
    (``coarse_label_names.txt`` / ``fine_label_names.txt``).
    """

    def __init__(self, classes, data_path=None, validation=0.0, seed=0,
                 use_test_for_validation=False, random_partitioning=True, use_coarse=False):
        if not 0.0 <= validation < 1.0:
            raise SettingError("validation", f"expected a fraction in [0, 1), got {validation}")
        default = "cifar-10-batches-bin" if classes == 10 else "cifar-100-binary"
        folder = n2d2_data_path(default) if data_path is None else pathlib.Path(data_path)
        if not folder.is_dir():
            raise DataError(f"{folder}: CIFAR-{classes} folder not found; get "
                            f"{WHERE_TO_GET[classes]}, unpack it and set DataPath in [database] "
                            f"(or $N2D2_DATA to the folder holding {default})")
        self.data_path = folder
        train, test = CIFAR10_FILES if classes == 10 else CIFAR100_FILES
        names_file = "batches.meta.txt" if classes == 10 else (
            "coarse_label_names.txt" if use_coarse else "fine_label_names.txt")
        names = read_label_names(folder / names_file)
        label_bytes, label_index = (1, 0) if classes == 10 else (2, 0 if use_coarse else 1)
        batches = [read_batch(folder / name, label_bytes, label_index) for name in (*train, test)]
        self._stored = np.concatenate([images for images, _ in batches])
        self._stored.flags.writeable = False
        label_names, labels = _number_labels(batches, names, [*train, test], folder / names_file)
        nb_train = len(self._stored) - len(batches[-1][0])
        test_part = np.arange(nb_train, len(self._stored))
        if use_test_for_validation:
            parts = {"learn": np.arange(nb_train), "validation": test_part}
        else:
            learn, valid = split_indices(nb_train, validation, seed, random_partitioning)
            parts = {"learn": learn, "validation": valid}
        super().__init__(label_names, labels, {**parts, "test": test_part})

    def _images(self, numbers):
        return self._stored[numbers]

    def image_info(self):
        return ImageInfo(len(self._stored), self._stored.shape[1:])


def _number_labels(batches, names, files, names_path):
    """(label names, int64 labels) numbered by first appearance, as N2D2's ``labelID``."""
    raw = np.concatenate([labels for _, labels in batches])
    if raw.max() >= len(names):
        record = int(np.argmax(raw >= len(names)))
        for name, (images, _) in zip(files, batches):
            if record < len(images):
                break
            record -= len(images)
        raise DataError(f"{names_path.parent / name}: record {record} has label {raw.max()} but "
                        f"{names_path.name} names {len(names)} classes")
    seen, first = np.unique(raw, return_index=True)
    order = seen[np.argsort(first)]
    number = np.zeros(len(names), dtype=np.int64)
    number[order] = np.arange(len(order))
    return [names[k] for k in order], number[raw]


CIFAR_KEYS = (
    Key("Validation", "validation", FLOAT,
        "fraction of the training images held out for validation, in [0, 1)"),
    Key("DataPath", "data_path", STR, "folder of the binary batches, relative to the INI file's "
        "folder (absent: N2D2's default under $N2D2_DATA)"),
    Key("UseTestForValidation", "use_test_for_validation", BOOL,
        "learn on every training image and validate on the test batch"),
    Key("RandomPartitioning", "random_partitioning", BOOL,
        "0: the first training images are learn, the last validation"),
)


@DATABASES.register("CIFAR10_Database", *CIFAR_KEYS, sources=(CifarDatabase,))
def cifar10_database(**kwargs):
    """N2D2's ``CIFAR10_Database``."""
    return CifarDatabase(10, **kwargs)


@DATABASES.register("CIFAR100_Database", *CIFAR_KEYS,
                    Key("UseCoarse", "use_coarse", BOOL, "the 20 coarse labels, not the 100 fine ones"),
                    sources=(CifarDatabase,))
def cifar100_database(**kwargs):
    """N2D2's ``CIFAR100_Database``."""
    return CifarDatabase(100, **kwargs)


def write_cifar_batch(path, images, labels, coarse=None):
    """Write uint8 (N, 32, 32, 3) BGR ``images`` and their labels as a binary batch.

    With ``coarse`` (CIFAR-100) each record starts with the coarse then the
    fine (``labels``) byte. The inverse of ``read_batch``, for tests and tools.
    """
    images = np.asarray(images, dtype=np.uint8)
    planes = images[..., ::-1].transpose(0, 3, 1, 2).reshape(len(images), PIXELS)
    heads = [np.asarray(labels, np.uint8)[:, None]]
    if coarse is not None:
        heads.insert(0, np.asarray(coarse, np.uint8)[:, None])
    pathlib.Path(path).write_bytes(np.concatenate([*heads, planes], axis=1).tobytes())

