"""MNIST and Fashion-MNIST in IDX format, split into learn / validation / test.

As N2D2's ``MNIST_IDX_Database``: the 60000 training images give the
"learn" and "validation" partitions, the 10000 ``t10k`` images the "test"
partition. Images stay uint8 (N, H, W) in memory.
"""

import importlib.resources
import math
import os
import pathlib

import numpy as np

from n2prune.data.database import DATABASES, PARTITIONS, ImageInfo
from n2prune.data.idx import read_idx, read_idx_header
from n2prune.errors import DataError, SettingError
from n2prune.registry import BOOL, FLOAT, STR, Key, unknown_message

# Installed by Debian/Ubuntu's ``dataset-fashion-mnist`` package.
FASHION_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
# N2D2's defaults under $N2D2_DATA (MNIST_IDX_DatabaseGenerator and its Fashion twin).
N2D2_SUBDIRS = {False: "mnist", True: "fashion-mnist/data/fashion"}


def bundled_mnist_dir():
    """The folder of the MNIST files shipped inside the package."""
    folder = importlib.resources.files("n2prune.data") / "mnist"
    # A zipped install has no file system path; the IDX reader needs one.
    if not isinstance(folder, pathlib.Path):
        raise DataError(f"bundled MNIST at {folder} is not on the file system; install "
                        "n2prune unzipped or set DataPath")
    return folder


def default_data_path(fashion):
    """Where the data are when no ``data_path`` is given (see ``MnistIdxDatabase``)."""
    base = os.environ.get("N2D2_DATA")
    if base:
        return pathlib.Path(base) / N2D2_SUBDIRS[fashion]
    if not fashion:
        return bundled_mnist_dir()
    if os.path.isdir(FASHION_SYSTEM_DIR):
        return pathlib.Path(FASHION_SYSTEM_DIR)
    raise DataError("Fashion-MNIST not found: run `apt-get install dataset-fashion-mnist` "
                    f"(installs to {FASHION_SYSTEM_DIR}) or set DataPath in [database]")


def find_file(folder, name):
    """``folder/name`` or ``folder/name.gz``, whichever exists (raw first, as N2D2)."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder / name}: missing (also tried .gz); put the MNIST IDX files "
                    "there or set DataPath in [database]")


class IdxPair:
    """``{prefix}-images/labels-idx?-ubyte[.gz]`` of a folder.

    Labels (int64, N) and the images' header are read at once; the images
    (uint8 (N, H, W), read-only) on first use, since ``check`` and a
    network build need only their count.
    """

    def __init__(self, folder, prefix):
        self.images_path = find_file(folder, f"{prefix}-images-idx3-ubyte")
        labels_path = find_file(folder, f"{prefix}-labels-idx1-ubyte")
        labels = read_idx(labels_path, ndim=1)
        dtype, shape = read_idx_header(self.images_path)
        if len(shape) != 3:
            raise DataError(f"{self.images_path}: IDX file has {len(shape)} dimensions "
                            f"{shape}, expected 3")
        if dtype != np.uint8 or labels.dtype != np.uint8:
            bad = self.images_path if dtype != np.uint8 else labels_path
            raise DataError(f"{bad}: expected unsigned byte data (magic 0x000008..)")
        if shape[0] != len(labels):
            raise DataError(f"{labels_path}: {len(labels)} labels for {shape[0]} images "
                            f"in {self.images_path}")
        self.shape = shape
        self.labels = labels.astype(np.int64)
        self.labels.flags.writeable = False
        self._images = None

    def images(self):
        if self._images is None:
            self._images = read_idx(self.images_path, ndim=3)
            self._images.flags.writeable = False
        return self._images


def split_indices(nb_stimuli, validation, seed, random_partitioning=True):
    """(learn, validation) index arrays of a training set, each ascending.

    The validation size is N2D2's: ``N - round_half_up(N * (1 - validation))``.
    A random split moves the first ``nb_validation`` entries of
    ``default_rng(seed).permutation(N)`` to validation, so it depends only on
    (N, validation, seed). Otherwise the last images are the validation set.
    """
    if not 0.0 <= validation < 1.0:
        raise DataError(f"validation fraction must be in [0, 1), got {validation}")
    nb_learn = int(np.floor(nb_stimuli * (1.0 - validation) + 0.5))
    nb_validation = nb_stimuli - nb_learn
    if not random_partitioning:
        order = np.arange(nb_stimuli)
        return order[:nb_learn], order[nb_learn:]
    order = np.random.default_rng(seed).permutation(nb_stimuli)
    return np.sort(order[nb_validation:]), np.sort(order[:nb_validation])


# The keys of ``[database]``, shared by the MNIST databases (their defaults:
# ``MnistIdxDatabase.__init__``).
MNIST_KEYS = (
    Key("Validation", "validation", FLOAT,
        "fraction of the training images held out for validation, in [0, 1)"),
    Key("DataPath", "data_path", STR, "folder holding the four IDX files, relative to the INI "
        "file's folder (absent: under $N2D2_DATA, else the bundled MNIST)"),
    Key("RandomPartitioning", "random_partitioning", BOOL,
        "0: the first images are learn, the rest validation"),
    Key("Learn", "learn", FLOAT, "fraction of the training images learned: only 1 - Validation"),
)


class MnistIdxDatabase:
    """MNIST (or Fashion-MNIST) read from the four IDX files of a folder.

    ``data_path`` None means: ``$N2D2_DATA/mnist`` (Fashion:
    ``$N2D2_DATA/fashion-mnist/data/fashion``, N2D2's defaults) when
    ``N2D2_DATA`` is set; otherwise the MNIST bundled with n2prune (Fashion:
    ``/usr/share/datasets/fashion-mnist``). ``validation`` is the fraction of
    the training set moved to the "validation" partition, at random from
    ``seed`` unless ``random_partitioning`` is false (``split_indices``);
    ``learn`` (N2D2's ``Learn``), when given, must be ``1 - validation``.
    Label ``k`` is named ``str(k)`` for both, as in N2D2.
    """

    nb_classes = 10
    label_names = tuple(str(k) for k in range(10))

    def __init__(self, data_path=None, validation=0.0, seed=0, fashion=False,
                 random_partitioning=True, learn=None):
        if not 0.0 <= validation < 1.0:
            raise SettingError("validation", f"expected a fraction in [0, 1), got {validation}")
        if learn is not None and not math.isclose(learn, 1.0 - validation):
            raise SettingError("learn", "only Learn = 1 - Validation is supported")
        folder = default_data_path(fashion) if data_path is None else pathlib.Path(data_path)
        if not folder.is_dir():
            raise DataError(f"{folder}: data folder not found; set DataPath in [database] "
                            "(or unset N2D2_DATA to use the bundled MNIST)")
        self.data_path = folder
        self.validation = validation
        # Read-only: "test" hands out these arrays themselves, not copies.
        self._train, self._test = IdxPair(folder, "train"), IdxPair(folder, "t10k")
        learn, valid = split_indices(len(self._train.labels), validation, seed,
                                     random_partitioning)
        self._indices = {"learn": learn, "validation": valid}

    def _check(self, part):
        if part not in PARTITIONS:
            raise ValueError(unknown_message(f"partition {part!r}", part, PARTITIONS))

    def indices(self, part):
        """Indices of ``part`` in its source file (train for learn/validation, t10k for test)."""
        self._check(part)
        if part == "test":
            return np.arange(len(self._test.labels))
        return self._indices[part]

    def size(self, part):
        """Number of images in ``part``."""
        return len(self.indices(part))

    def images(self, part):
        """uint8 (N, H, W) images of ``part``: a copy for learn/validation, read-only for test."""
        self._check(part)
        if part == "test":
            return self._test.images()
        return self._train.images()[self._indices[part]]

    def image_info(self):
        """``ImageInfo`` of the training and test images, from the files' headers."""
        count = self._train.shape[0] + self._test.shape[0]
        return ImageInfo(count, self._test.shape[1:])

    def labels(self, part):
        """int64 (N,) labels in ``0 .. nb_classes - 1`` of ``part`` (same ownership as images)."""
        self._check(part)
        if part == "test":
            return self._test.labels
        return self._train.labels[self._indices[part]]


@DATABASES.register("MNIST_IDX_Database", *MNIST_KEYS, sources=(MnistIdxDatabase,))
def mnist_idx_database(**kwargs):
    """N2D2's ``MNIST_IDX_Database``."""
    return MnistIdxDatabase(fashion=False, **kwargs)


@DATABASES.register("Fashion_MNIST_IDX_Database", *MNIST_KEYS, sources=(MnistIdxDatabase,))
def fashion_mnist_idx_database(**kwargs):
    """N2D2's ``Fashion_MNIST_IDX_Database``."""
    return MnistIdxDatabase(fashion=True, **kwargs)
