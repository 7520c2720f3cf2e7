"""The German Traffic Sign Recognition Benchmark as N2D2's ``GTSRB_DIR_Database`` reads it.

Layout under ``DataPath`` (the official archives unpacked)::

    Final_Training/Images/00000/00000_00000.ppm ... GT-00000.csv
    Final_Test/Images/00000.ppm ...
    GT-final_test.csv            (from GTSRB_Final_Test_GT.zip)

Each image's label is the ``ClassId`` of its row in the CSV file of its
folder (``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``).
"""

import pathlib

import numpy as np

from n2prune.data.database import DATABASES, n2d2_data_path
from n2prune.data.folders import (
    FileDatabase,
    FolderWalk,
    LabelNumbers,
    partition_per_label,
)
from n2prune.errors import DataError, SettingError
from n2prune.registry import BOOL, FLOAT, STR, Key

WHERE_TO_GET = ("GTSRB_Final_Training_Images.zip, GTSRB_Final_Test_Images.zip and "
                "GTSRB_Final_Test_GT.zip from https://benchmark.ini.rub.de/gtsrb_dataset.html")


def read_roi_labels(path):
    """``{file name: label name}`` of an N2D2 CSV label file, as its ``CsvLabelFile``.

    Fields are split on ``,``, ``;``, spaces and tabs, ``#`` starts a
    comment; a line whose width and height are not numbers (the header) is
    skipped; a row needs name, width, height, x1, y1, x2, y2, label.
    """
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise DataError(f"{path}: cannot read the label file: {error.strerror}") from None
    rows = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].replace(";", " ").replace(",", " ").split()
        if not fields or not (fields[1:3] and all(f.isdigit() for f in fields[1:3])):
            continue
        if len(fields) != 8:
            raise DataError(f"{path}:{number}: expected 8 fields (Filename;Width;Height;"
                            f"Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId), got {len(fields)}")
        if fields[0] in rows:
            raise DataError(f"{path}:{number}: {fields[0]} has a second row; each image "
                            "needs exactly one label")
        rows[fields[0]] = fields[7]
    return rows


def label_from_csv(paths, csv_files, labels):
    """Label numbers of ``paths`` from ``csv_files``, ``(CSV path, folder of its images)``
    pairs read in order (label numbers by first appearance)."""
    named = {}
    for csv_path, image_dir in csv_files:
        for name, label in read_roi_labels(csv_path).items():
            named[(image_dir, name)] = labels.number(label)
    numbers = []
    for path in paths:
        if (path.parent, path.name) not in named:
            raise DataError(f"{path}: no row for this image in "
                            f"{', '.join(str(c) for c, _ in csv_files) or 'any CSV file'}")
        numbers.append(named[(path.parent, path.name)])
    return numbers


@DATABASES.register(
    "GTSRB_DIR_Database",
    Key("Validation", "validation", FLOAT,
        "fraction of each class's training images held out for validation"),
    Key("DataPath", "data_path", STR, "folder of the unpacked archives, relative to the INI "
        "file's folder (absent: $N2D2_DATA/GTSRB)"),
    Key("RandomPartitioning", "random_partitioning", BOOL,
        "0: each class's first images are learn, the next validation"),
    Key("ExtractROIs", "extract_rois", BOOL, "not supported (an error when set)"),
)
class GtsrbDatabase(FileDatabase):
    """GTSRB from its folders of PPM images, as N2D2's ``GTSRB_DIR_Database``.

    The training images give "learn" and "validation" (``validation`` of
    each class, random from ``seed`` unless ``random_partitioning`` is
    false), the test images "test". Labels are the CSV files' ``ClassId``
    names numbered in order of first appearance (folder 00000 first: class
    0 is ``0``). Differs from N2D2: an image with no CSV row is an error
    (N2D2 leaves it unlabelled); cropping to the ROI (``ExtractROIs``) is
    not supported.
    """

    def __init__(self, data_path=None, validation=0.0, seed=0, random_partitioning=True,
                 extract_rois=False):
        if extract_rois:
            raise SettingError("extract_rois", "cropping to the regions of interest is not "
                               "supported; remove ExtractROIs")
        if not 0.0 <= validation <= 1.0:
            raise SettingError("validation", f"expected a fraction in [0, 1], got {validation}")
        folder = n2d2_data_path("GTSRB") if data_path is None else pathlib.Path(data_path)
        train_dir, test_dir = folder / "Final_Training" / "Images", folder / "Final_Test" / "Images"
        for needed in (train_dir, test_dir):
            if not needed.is_dir():
                raise DataError(f"{needed}: GTSRB folder not found; get {WHERE_TO_GET}, unpack "
                                "them and set DataPath in [database] to the GTSRB folder")
        self.data_path = folder
        labels = LabelNumbers()
        train = self._files(train_dir, 1)
        # As N2D2's loadROIsDir: the folder's own CSV files, then its subfolders'.
        train_csvs = sorted(train_dir.glob("*.csv")) + sorted(train_dir.glob("*/*.csv"))
        train_labels = label_from_csv(train, [(c, c.parent) for c in train_csvs], labels)
        test = self._files(test_dir, 0)
        test_labels = label_from_csv(test, [(folder / "GT-final_test.csv", test_dir)], labels)
        rng = np.random.default_rng(seed) if random_partitioning else None
        parts = partition_per_label(train_labels, 1.0 - validation, validation, False, rng)
        parts["test"] = np.concatenate([parts["test"], np.arange(len(train), len(train) + len(test))])
        super().__init__(labels.names, train + test, train_labels + test_labels, parts)

    @staticmethod
    def _files(folder, depth):
        walk = FolderWalk(LabelNumbers(), valid_extensions=("ppm",))
        walk.walk(folder, depth, "", 0)
        return [path for path, _ in walk.stimuli]
