"""Data: the databases (MNIST, CIFAR, folders of images), image transformations,
the stimuli provider and its statistics (StimuliData).

Plain Python with PEP 8 keyword arguments; ``graph/`` maps INI keys onto them.
``DATABASES`` and ``TRANSFORMATIONS`` are registries keyed by N2D2's
``Type=`` names, each member with the key table of its constructor.
"""

from n2prune.data.cifar import CifarDatabase
from n2prune.data.database import Database, ImageInfo
from n2prune.data.folders import DirDatabase
from n2prune.data.gtsrb import GtsrbDatabase
from n2prune.data.idx import read_idx, write_idx
from n2prune.data.ilsvrc import Ilsvrc2012Database
from n2prune.data.imagelist import ImageFiles, ImageList
from n2prune.data.mnist import (
    DATABASES,
    PARTITIONS,
    MnistIdxDatabase,
    bundled_mnist_dir,
)
from n2prune.data.provider import APPLY_TO, StimuliProvider
from n2prune.data.stimuli_data import StimuliStats
from n2prune.data.transforms import (
    TRANSFORMATIONS,
    Affine,
    ChannelExtraction,
    ColorSpace,
    Flip,
    PadCrop,
    RangeAffine,
    Rescale,
    SliceExtraction,
    Transform,
)

__all__ = [
    "APPLY_TO", "DATABASES", "PARTITIONS", "TRANSFORMATIONS",
    "Affine", "ChannelExtraction", "CifarDatabase", "ColorSpace", "Database", "DirDatabase",
    "Flip", "GtsrbDatabase", "Ilsvrc2012Database", "ImageFiles", "ImageInfo", "ImageList",
    "MnistIdxDatabase", "PadCrop", "RangeAffine", "Rescale", "SliceExtraction",
    "StimuliProvider", "StimuliStats", "Transform", "bundled_mnist_dir", "read_idx", "write_idx",
]
