"""ILSVRC2012_Database on a generated miniature: train/<synset>/, val/, val.txt, synsets.txt."""

import numpy as np
import pytest

from n2prune.data import DATABASES, Ilsvrc2012Database
from n2prune.data.decode import write_ppm
from n2prune.errors import DataError, IniError
from n2prune.graph.stimuli import read_database
from n2prune.ini import load_ini

SYNSETS = ("n01440764", "n01443537", "n01484850")


def make_ilsvrc(root, per_class=(4, 2, 3), nb_val=5):
    rng = np.random.default_rng(0)
    for synset, count in zip(SYNSETS, per_class):
        (root / "train" / synset).mkdir(parents=True)
        for k in range(count):
            image = rng.integers(0, 256, (9 + k, 12, 3), dtype=np.uint8)
            write_ppm(root / "train" / synset / f"{synset}_{k}.ppm", image)
    (root / "val").mkdir()
    lines = []
    for k in range(nb_val):
        name = f"ILSVRC2012_val_{k + 1:08d}.ppm"
        write_ppm(root / "val" / name, rng.integers(0, 256, (10, 11, 3), dtype=np.uint8))
        lines.append(f"{name} {(2 * k) % 3}\n")
    (root / "val.txt").write_text("".join(lines))
    # In label order, not sorted: the file decides the numbers.
    (root / "synsets.txt").write_text("\n".join([SYNSETS[1], SYNSETS[0], SYNSETS[2]]) + "\n")
    return root / "synsets.txt"


def test_labels_follow_the_label_file_and_val_txt(tmp_path):
    synsets = make_ilsvrc(tmp_path)
    db = Ilsvrc2012Database(learn=1.0, data_path=tmp_path, label_path=synsets)
    assert db.label_names == (SYNSETS[1], SYNSETS[0], SYNSETS[2])
    assert db.labels("learn").tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert db.labels("validation").tolist() == [0, 2, 1, 0, 2]
    np.testing.assert_array_equal(db.indices("test"), db.indices("validation"))
    paths = db.images("learn").paths
    assert all(p.parent.name == db.label_names[k] for p, k in zip(paths, db.labels("learn")))


def test_learn_fraction_background_class_and_own_test(tmp_path):
    synsets = make_ilsvrc(tmp_path, per_class=(10, 10, 10))
    db = Ilsvrc2012Database(learn=0.8, data_path=tmp_path, label_path=synsets, seed=2,
                            use_validation_for_test=False, background_class=True)
    assert db.label_names[0] == "background" and db.nb_classes == 4
    assert (db.size("learn"), db.size("test"), db.size("validation")) == (24, 6, 5)
    assert db.labels("validation").tolist() == [1, 3, 2, 1, 3]
    assert set(db.indices("test")).isdisjoint(db.indices("learn"))


def test_ini_expands_both_paths(tmp_path, monkeypatch):
    make_ilsvrc(tmp_path / "imagenet")
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    ini = tmp_path / "m.ini"
    ini.write_text("[database]\nType=ILSVRC2012_Database\nLearn=1.0\nRandomPartitioning=0\n"
                   "DataPath=${N2D2_DATA}/imagenet\nLabelPath=imagenet/synsets.txt\n")
    db = read_database(load_ini(ini), {}, seed=0)
    assert db.size("validation") == 5
    ini.write_text("[database]\nType=ILSVRC2012_Database\nRandomPartitioning=0\n")
    with pytest.raises(IniError, match=rf"^{ini}:2 \[database\] Type: missing required key Learn"):
        read_database(load_ini(ini), {}, seed=0)
    assert DATABASES["ILSVRC2012_Database"].key_table.defaults()["use_validation_for_test"]


def test_missing_class_folder_val_image_or_bad_label(tmp_path):
    synsets = make_ilsvrc(tmp_path)
    synsets.write_text(synsets.read_text() + "n99999999\n")
    with pytest.raises(DataError, match=r"train/n99999999: cannot list the folder"):
        Ilsvrc2012Database(learn=1.0, data_path=tmp_path, label_path=synsets)
    synsets.write_text("\n".join(SYNSETS))
    val = tmp_path / "val.txt"
    val.write_text(val.read_text() + "ILSVRC2012_val_00000099.ppm 1\n")
    with pytest.raises(DataError, match=r"ILSVRC2012_val_00000099.ppm: listed in .*val.txt but "
                                        "missing"):
        Ilsvrc2012Database(learn=1.0, data_path=tmp_path, label_path=synsets)
    val.write_text("ILSVRC2012_val_00000001.ppm 3\n")
    with pytest.raises(DataError, match=r"val.txt: label 3 of ILSVRC2012_val_00000001.ppm is not "
                                        "one of the 3 classes"):
        Ilsvrc2012Database(learn=1.0, data_path=tmp_path, label_path=synsets)
    with pytest.raises(DataError, match=r"ILSVRC2012 folder not found; get ILSVRC2012_img_train"):
        Ilsvrc2012Database(learn=1.0, data_path=tmp_path / "none", label_path=synsets)
