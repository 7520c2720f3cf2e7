"""CIFAR-10 / CIFAR-100 binary batches, generated here in the real format (nothing downloads)."""

import numpy as np
import pytest
from runs import train, write_ini

from n2prune.data import DATABASES, CifarDatabase
from n2prune.data.cifar import write_cifar_batch
from n2prune.errors import DataError, IniError, SettingError
from n2prune.graph.stimuli import read_database
from n2prune.ini import load_ini
from n2prune.train.model import Model

NAMES10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


def class_images(labels, rng):
    """Noisy BGR images with a bright band at rows 3k..3k+2 for class k (a learnable set)."""
    images = rng.integers(0, 60, (len(labels), 32, 32, 3))
    for index, label in enumerate(labels):
        images[index, 3 * label:3 * label + 3, :, index % 3] += 190
    return images.astype(np.uint8)


def make_cifar10(folder, per_batch=60, nb_test=50, seed=0):
    """``folder`` with data_batch_1..5.bin, test_batch.bin and batches.meta.txt; returns the
    (images, label bytes) written, training batches first."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batches.meta.txt").write_text("\n".join(NAMES10) + "\n\n")
    written = []
    for name, count in [*((f"data_batch_{k}.bin", per_batch) for k in range(1, 6)),
                        ("test_batch.bin", nb_test)]:
        labels = rng.integers(0, 10, count)
        images = class_images(labels, rng)
        write_cifar_batch(folder / name, images, labels)
        written.append((images, labels))
    images = np.concatenate([i for i, _ in written])
    return images, np.concatenate([labels for _, labels in written])


def make_cifar100(folder, nb_train=80, nb_test=20):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fine_label_names.txt").write_text("\n".join(f"fine{k}" for k in range(100)))
    (folder / "coarse_label_names.txt").write_text("\n".join(f"coarse{k}" for k in range(20)))
    out = {}
    for name, count in (("train.bin", nb_train), ("test.bin", nb_test)):
        fine = rng.integers(0, 100, count)
        images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        write_cifar_batch(folder / name, images, fine, coarse=fine // 5)
        out[name] = images, fine
    return out


def test_record_layout_is_rgb_planes_read_as_bgr(tmp_path):
    folder = tmp_path / "c10"
    make_cifar10(folder, per_batch=2, nb_test=2)
    record = np.zeros(1 + 3072, dtype=np.uint8)
    record[0] = 3
    ramp = (np.arange(1024) % 251).astype(np.uint8)
    record[1:1025] = ramp  # red plane, row by row
    record[1025:2049] = 7  # green
    record[2049:] = 200  # blue
    (folder / "data_batch_1.bin").write_bytes(np.tile(record, 2).tobytes())
    db = CifarDatabase(10, data_path=folder)
    image = db.images("learn")[0]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 2], ramp.reshape(32, 32))  # BGR: red last
    assert (image[..., 1] == 7).all() and (image[..., 0] == 200).all()
    assert db.label_names[db.labels("learn")[0]] == "cat"


def test_labels_numbered_in_order_of_first_appearance_as_n2d2(tmp_path):
    images, raw = make_cifar10(tmp_path)
    db = CifarDatabase(10, data_path=tmp_path, validation=0.0)
    first_seen = list(dict.fromkeys(raw.tolist()))
    assert db.label_names == tuple(NAMES10[k] for k in first_seen)
    assert db.nb_classes == 10
    names = np.array(db.label_names)
    np.testing.assert_array_equal(names[db.labels("learn")], np.array(NAMES10)[raw[:300]])
    np.testing.assert_array_equal(db.images("learn"), images[:300])
    np.testing.assert_array_equal(db.images("test"), images[300:])
    np.testing.assert_array_equal(names[db.labels("test")], np.array(NAMES10)[raw[300:]])


def test_partitions_follow_validation_and_seed(tmp_path):
    make_cifar10(tmp_path)
    db = CifarDatabase(10, data_path=tmp_path, validation=0.1, seed=3)
    learn, valid, test = (db.indices(p) for p in ("learn", "validation", "test"))
    assert (len(learn), len(valid), len(test)) == (270, 30, 50)
    assert np.array_equal(np.union1d(learn, valid), np.arange(300))
    assert np.array_equal(test, np.arange(300, 350))
    again = CifarDatabase(10, data_path=tmp_path, validation=0.1, seed=3)
    other = CifarDatabase(10, data_path=tmp_path, validation=0.1, seed=4)
    assert np.array_equal(again.indices("validation"), valid)
    assert not np.array_equal(other.indices("validation"), valid)
    ordered = CifarDatabase(10, data_path=tmp_path, validation=0.1, random_partitioning=False)
    assert np.array_equal(ordered.indices("validation"), np.arange(270, 300))


def test_use_test_for_validation(tmp_path):
    make_cifar10(tmp_path)
    db = CifarDatabase(10, data_path=tmp_path, validation=0.5, use_test_for_validation=True)
    assert db.size("learn") == 300
    np.testing.assert_array_equal(db.images("validation"), db.images("test"))
    np.testing.assert_array_equal(db.labels("validation"), db.labels("test"))


@pytest.mark.parametrize("coarse", [False, True])
def test_cifar100_fine_or_coarse_labels(tmp_path, coarse):
    written = make_cifar100(tmp_path)
    db = DATABASES["CIFAR100_Database"](data_path=tmp_path, use_coarse=coarse)
    images, fine = written["train.bin"]
    raw = fine // 5 if coarse else fine
    prefix = "coarse" if coarse else "fine"
    names = np.array(db.label_names)
    np.testing.assert_array_equal(names[db.labels("learn")], [f"{prefix}{k}" for k in raw])
    np.testing.assert_array_equal(db.images("learn"), images)
    assert db.size("test") == 20


def test_default_path_is_n2d2s(tmp_path, monkeypatch):
    make_cifar10(tmp_path / "cifar-10-batches-bin", per_batch=2, nb_test=2)
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    db = DATABASES["CIFAR10_Database"](seed=0)
    assert db.data_path == tmp_path / "cifar-10-batches-bin"
    assert db.image_info() == (12, (32, 32, 3), True, None)
    monkeypatch.setenv("N2D2_DATA", str(tmp_path / "none"))
    with pytest.raises(DataError, match="cifar-10-batches-bin: CIFAR-10 folder not found; get "
                                        "the binary version of https://www.cs.toronto.edu/"):
        DATABASES["CIFAR10_Database"](seed=0)


def test_truncated_batch_names_the_file(tmp_path):
    make_cifar10(tmp_path, per_batch=3, nb_test=2)
    path = tmp_path / "data_batch_4.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=rf"^{path}: 9209 bytes is not a whole number of "
                                        "3073-byte records"):
        CifarDatabase(10, data_path=tmp_path)


def test_missing_batch_or_names_file_names_it(tmp_path):
    make_cifar10(tmp_path, per_batch=3, nb_test=2)
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(DataError, match=rf"^{tmp_path / 'test_batch.bin'}: cannot read"):
        CifarDatabase(10, data_path=tmp_path)
    (tmp_path / "batches.meta.txt").unlink()
    with pytest.raises(DataError, match=rf"^{tmp_path / 'batches.meta.txt'}: cannot read the "
                                        "label names"):
        CifarDatabase(10, data_path=tmp_path)


def test_label_byte_beyond_the_names_is_an_error(tmp_path):
    make_cifar10(tmp_path, per_batch=3, nb_test=2)
    images = np.zeros((2, 32, 32, 3), np.uint8)
    write_cifar_batch(tmp_path / "data_batch_2.bin", images, [1, 12])
    with pytest.raises(DataError, match=r"data_batch_2.bin: record 1 has label 12 but "
                                        "batches.meta.txt names 10 classes"):
        CifarDatabase(10, data_path=tmp_path)


def test_bad_validation_is_a_setting_error(tmp_path):
    make_cifar10(tmp_path, per_batch=2, nb_test=2)
    with pytest.raises(SettingError, match="fraction in"):
        CifarDatabase(10, data_path=tmp_path, validation=1.0)


def test_ini_section_reads_relative_data_path_and_blames_its_line(tmp_path):
    make_cifar10(tmp_path / "data", per_batch=4, nb_test=2)
    ini_path = write_ini(tmp_path, "m.ini", "[database]\nType=CIFAR10_Database\nValidation=0.25\n"
                         "DataPath=data\n")
    db = read_database(load_ini(ini_path), {}, seed=0)
    assert (db.size("learn"), db.size("validation")) == (15, 5)
    (tmp_path / "data" / "data_batch_1.bin").write_bytes(b"xx")
    with pytest.raises(IniError, match=rf"^{ini_path}:4 \[database\] DataPath: .*data_batch_1.bin: "
                                       "2 bytes"):
        read_database(load_ini(ini_path), {}, seed=0)


CIFAR_NET = """\
[database]
Type=CIFAR10_Database
Validation=0.1
DataPath=data

[sp]
SizeX=32
SizeY=32
NbChannels=3
BatchSize=16

[conv1]
Input=sp
Type=Conv
KernelDims=5 5
NbOutputs=8
Stride=2
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config

[pool1]
Input=conv1
Type=Pool
PoolDims=2 2
NbOutputs=8
Stride=2
Pooling=Max

[fc]
Input=pool1
Type=Fc
NbOutputs=10
ActivationFunction=Linear
ConfigSection=common.config

[soft]
Input=fc
Type=Softmax
NbOutputs=10
WithLoss=1

[soft.Target]

[common.config]
Solvers.LearningRate=0.05
Solvers.Momentum=0.9
"""


def test_a_small_network_trains_on_a_generated_cifar_folder(tmp_path, capsys):
    make_cifar10(tmp_path / "data", per_batch=64, nb_test=64)
    ini = write_ini(tmp_path, "cifar.ini", CIFAR_NET)
    model = Model(ini)
    images, labels = model.stimuli("learn")
    assert images.shape == (288, 32, 32, 3) and len(labels) == 288
    assert train(ini, tmp_path / "run", "--epochs", "3") == 0
    out = capsys.readouterr().out
    assert (tmp_path / "run" / "weights.npz").is_file()
    # The band says the class: three epochs must beat chance (10%) by far.
    accuracy = float(out.rsplit("test accuracy ", 1)[1].split()[0])
    assert accuracy > 0.5, out
