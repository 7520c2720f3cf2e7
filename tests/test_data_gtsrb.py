"""GTSRB_DIR_Database on a generated copy of the official layout (PPM images, CSV labels)."""

import numpy as np
import pytest

from n2prune.data import DATABASES, GtsrbDatabase
from n2prune.data.decode import write_ppm
from n2prune.errors import DataError, SettingError

HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"


def make_gtsrb(root, per_class=(5, 3, 4), nb_test=6):
    """Final_Training/Images/000NN/*.ppm + GT-000NN.csv, Final_Test/Images, GT-final_test.csv."""
    rng = np.random.default_rng(0)
    for class_id, count in enumerate(per_class):
        folder = root / "Final_Training" / "Images" / f"{class_id:05d}"
        folder.mkdir(parents=True)
        rows = []
        for k in range(count):
            name = f"00000_{k:05d}.ppm"
            size = 30 + k
            write_ppm(folder / name, rng.integers(0, 256, (size, size + 1, 3), dtype=np.uint8))
            rows.append(f"{name};{size + 1};{size};5;5;{size - 5};{size - 5};{class_id}\n")
        (folder / f"GT-{class_id:05d}.csv").write_text(HEADER + "".join(rows))
    test = root / "Final_Test" / "Images"
    test.mkdir(parents=True)
    rows = []
    for k in range(nb_test):
        write_ppm(test / f"{k:05d}.ppm", rng.integers(0, 256, (31, 33, 3), dtype=np.uint8))
        rows.append(f"{k:05d}.ppm;33;31;5;5;26;28;{(k * 2) % len(per_class)}\n")
    (test / "GT-final_test.test.csv").write_text(HEADER)  # shipped without labels: not read
    (root / "GT-final_test.csv").write_text(HEADER + "".join(rows))
    return root


def test_labels_come_from_the_csv_files(tmp_path):
    make_gtsrb(tmp_path)
    db = GtsrbDatabase(tmp_path, validation=0.0)
    assert db.label_names == ("0", "1", "2")
    assert db.labels("learn").tolist() == [0] * 5 + [1] * 3 + [2] * 4
    assert db.labels("test").tolist() == [0, 2, 1, 0, 2, 1]
    files = db.images("test")
    assert [p.name for p in files.paths] == [f"{k:05d}.ppm" for k in range(6)]
    assert files.take([0])[0].shape == (31, 33, 3)
    assert db.image_info()[:3] == (18, (30, 31, 3), False)
    assert len(db.image_sizes()) == 6


def test_validation_is_taken_per_class(tmp_path):
    make_gtsrb(tmp_path, per_class=(10, 20, 10))
    db = DATABASES["GTSRB_DIR_Database"](data_path=tmp_path, validation=0.2, seed=0)
    assert np.bincount(db.labels("validation")).tolist() == [2, 4, 2]
    assert np.bincount(db.labels("learn")).tolist() == [8, 16, 8]
    assert db.size("test") == 6


def test_default_path_and_missing_folder(tmp_path, monkeypatch):
    make_gtsrb(tmp_path / "GTSRB")
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    assert GtsrbDatabase().data_path == tmp_path / "GTSRB"
    with pytest.raises(DataError, match=r"Final_Training/Images: GTSRB folder not found; get "
                                        "GTSRB_Final_Training_Images.zip"):
        GtsrbDatabase(tmp_path / "elsewhere")


def test_an_image_without_a_row_names_it(tmp_path):
    make_gtsrb(tmp_path)
    extra = tmp_path / "Final_Training" / "Images" / "00001" / "stray.ppm"
    write_ppm(extra, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match=rf"^{extra}: no row for this image in .*GT-00000.csv"):
        GtsrbDatabase(tmp_path)


def test_bad_csv_rows_name_the_line(tmp_path):
    make_gtsrb(tmp_path)
    csv = tmp_path / "GT-final_test.csv"
    csv.write_text(csv.read_text() + "00001.ppm;33;31;5;5;26\n")
    with pytest.raises(DataError, match=rf"^{csv}:8: expected 8 fields"):
        GtsrbDatabase(tmp_path)
    csv.write_text(HEADER + "00001.ppm;33;31;5;5;26;28;1\n00001.ppm;33;31;5;5;26;28;2\n")
    with pytest.raises(DataError, match=rf"^{csv}:3: 00001.ppm has a second row"):
        GtsrbDatabase(tmp_path)


def test_extract_rois_is_refused(tmp_path):
    make_gtsrb(tmp_path)
    with pytest.raises(SettingError, match="regions of interest"):
        GtsrbDatabase(tmp_path, extract_rois=True)
