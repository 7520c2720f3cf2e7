"""Data: IDX files, the MNIST databases, image transformations, the stimuli provider.

Plain Python with PEP 8 keyword arguments; ``graph/`` maps INI keys onto them.
``DATABASES`` and ``TRANSFORMATIONS`` are keyed by N2D2's ``Type=`` names,
``TRANSFORMS`` by the Python class names.
"""

from n2prune.data.idx import read_idx, write_idx
from n2prune.data.mnist import (
    DATABASES,
    PARTITIONS,
    MnistIdxDatabase,
    bundled_mnist_dir,
    register_database,
)
from n2prune.data.provider import StimuliProvider
from n2prune.data.transforms import (
    TRANSFORMATIONS,
    TRANSFORMS,
    ChannelExtraction,
    Flip,
    PadCrop,
    RangeAffine,
    Rescale,
    Transform,
    register_transformation,
)

__all__ = [
    "DATABASES", "PARTITIONS", "TRANSFORMATIONS", "TRANSFORMS",
    "ChannelExtraction", "Flip", "MnistIdxDatabase", "PadCrop", "RangeAffine", "Rescale",
    "StimuliProvider", "Transform", "bundled_mnist_dir", "read_idx", "register_database",
    "register_transformation", "write_idx",
]
