"""DIR_Database: folders of images, a class per folder, generated here as PPM files."""

import numpy as np
import pytest
from runs import train, write_ini

from n2prune.data import (
    DATABASES,
    DirDatabase,
    ImageFiles,
    ImageList,
    Rescale,
    StimuliProvider,
)
from n2prune.data.decode import write_ppm
from n2prune.errors import DataError, IniError, SettingError, ShapeError
from n2prune.train.model import Model


def make_folder(root, counts, size=(6, 5), varied=False):
    """``root/<class>/<k>.ppm`` for ``counts = {class: n}``; returns {path: image}."""
    rng, written = np.random.default_rng(0), {}
    for index, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            height, width = (size[0] + k % 3, size[1] + index) if varied else size
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            write_ppm(root / name / f"{k:03d}.ppm", image)
            written[root / name / f"{k:03d}.ppm"] = image
    return written


def test_labels_are_sorted_folders_named_as_n2d2(tmp_path):
    written = make_folder(tmp_path, {"dog": 3, "cat": 4, "emu": 2})
    db = DirDatabase(tmp_path, learn=1.0, equiv_label_partitioning=False)
    assert db.label_names == ("/cat", "/dog", "/emu")
    assert db.size("learn") == 9 and db.size("test") == 0
    files = db.images("learn")
    assert isinstance(files, ImageFiles)
    names = np.array(db.label_names)[db.labels("learn")]
    for path, name, image in zip(files.paths, names, files.take(range(9))):
        assert name == "/" + path.parent.name
        np.testing.assert_array_equal(image, written[path])
    assert files.paths[0].name == "000.ppm" and files.paths[0].parent.name == "cat"
    assert db.image_info()[:3] == (9, (6, 5, 3), False)


def test_per_label_partitions_with_equal_shares(tmp_path):
    make_folder(tmp_path, {"a": 8, "b": 4, "c": 6})
    db = DirDatabase(tmp_path, learn=0.5, validation=0.25, seed=1)
    # EquivLabelPartitioning (N2D2's default): each label gives the smallest label's shares.
    for part, share in (("learn", 2), ("validation", 1)):
        assert np.bincount(db.labels(part), minlength=3).tolist() == [share] * 3
    assert np.bincount(db.labels("test")).tolist() == [5, 1, 3]
    everything = np.concatenate([db.indices(p) for p in ("learn", "validation", "test")])
    assert sorted(everything.tolist()) == list(range(18))
    own = DirDatabase(tmp_path, learn=0.5, validation=0.25, equiv_label_partitioning=False)
    assert np.bincount(own.labels("learn")).tolist() == [4, 2, 3]
    assert np.bincount(own.labels("validation")).tolist() == [2, 1, 2]


def test_partitions_depend_on_the_seed_or_take_the_first(tmp_path):
    make_folder(tmp_path, {"a": 10, "b": 10})
    draws = [DirDatabase(tmp_path, learn=0.5, seed=s).indices("learn") for s in (0, 0, 1)]
    assert np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], draws[2])
    ordered = DirDatabase(tmp_path, learn=0.5, random_partitioning=False)
    assert ordered.indices("learn").tolist() == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]


def test_without_per_label_partitioning_learn_and_validation_are_counts(tmp_path):
    make_folder(tmp_path, {"a": 5, "b": 5})
    db = DirDatabase(tmp_path, learn=6, validation=3, per_label_partitioning=False)
    assert (db.size("learn"), db.size("validation"), db.size("test")) == (6, 3, 1)
    with pytest.raises(SettingError, match="partitions of 8 \\+ 3 \\+ 0 stimuli asked of 10"):
        DirDatabase(tmp_path, learn=8, validation=3, test=0, per_label_partitioning=False)


def test_depth_label_depth_masks_and_extensions(tmp_path):
    make_folder(tmp_path / "x", {"a": 2, "b": 2})
    make_folder(tmp_path / "y", {"a": 3})
    write_ppm(tmp_path / "x" / "a" / "skip.pgm", np.zeros((6, 5), np.uint8))
    deep = DirDatabase(tmp_path, learn=1.0, depth=2, label_depth=1, equiv_label_partitioning=False)
    assert deep.label_names == ("/x", "/y") and deep.size("learn") == 8
    full = DirDatabase(tmp_path, learn=1.0, depth=-1, label_depth=2, label_name="root",
                       valid_extensions=["PPM"], ignore_masks=["*/y/*"])
    assert full.label_names == ("root/x/a", "root/x/b") and full.size("learn") == 4
    one = DirDatabase(tmp_path / "x", learn=1.0, label_depth=0)
    assert one.label_names == ("",) and one.nb_classes == 1


def test_empty_class_folder_and_missing_folder_are_errors(tmp_path):
    make_folder(tmp_path, {"a": 2})
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=rf"^{tmp_path / 'b'}: no image files \(extensions bmp, "):
        DirDatabase(tmp_path, learn=1.0)
    with pytest.raises(DataError, match=rf"^{tmp_path / 'none'}: image folder not found"):
        DirDatabase(tmp_path / "none", learn=1.0)
    with pytest.raises(SettingError, match="learn \\+ validation = 1.5 is more than 1"):
        DirDatabase(tmp_path, learn=0.75, validation=0.75)
    with pytest.raises(SettingError, match="unlabelled"):
        DirDatabase(tmp_path, learn=1.0, label_depth=-1)
    with pytest.raises(SettingError, match="^regions of interest are not supported"):
        DirDatabase(tmp_path, learn=1.0, roi_file="rois.csv")


def test_provider_caches_rescaled_files_as_one_array(tmp_path):
    make_folder(tmp_path, {"a": 4, "b": 3}, varied=True)
    db = DirDatabase(tmp_path, learn=1.0)
    assert len(db.image_sizes()) > 2
    provider = StimuliProvider((4, 4, 3), 2, transforms=[Rescale(4, 4)])
    cached = provider.prepare(db.images("learn"), "learn")
    assert isinstance(cached, np.ndarray) and cached.shape == (6, 4, 4, 3)
    first = Rescale(4, 4).apply(db.images("learn").take([0])[0][np.newaxis], None)
    np.testing.assert_array_equal(cached[0], first[0])
    batch = provider.batch(cached, np.array([0, 1]), None, "learn")
    assert batch.shape == (3, 4, 4, 2)


def test_provider_decodes_files_per_batch_when_nothing_is_cached(tmp_path):
    make_folder(tmp_path, {"a": 4, "b": 4}, varied=True)
    files = DirDatabase(tmp_path, learn=1.0).images("learn")
    lazy = StimuliProvider((4, 4, 3), 3, on_the_fly=[Rescale(4, 4)])
    assert lazy.prepare(files, "learn") is files
    batch = lazy.batch(files, np.array([0, 5, 7]), np.random.default_rng(0), "learn")
    expected = Rescale(4, 4).apply(files.take([5])[0][np.newaxis], None)[0]
    np.testing.assert_allclose(batch[..., 1], expected.transpose(2, 0, 1) / 255, atol=1e-6)
    plain = StimuliProvider((6, 5, 3), 3)
    with pytest.raises(ShapeError, match=r"^the stimuli of a batch are of 2 sizes \(5x6x3, 5x7x3\)"):
        plain.batch(files, np.array([0, 1]), None, "learn")
    kept = StimuliProvider((6, 5, 3), 3, transforms=[Rescale(5, 6, keep_aspect_ratio=True)])
    assert isinstance(kept.prepare(files, "learn"), ImageList)


DIR_NET = """\
[database]
Type=DIR_Database
DataPath=images
Learn=0.5
Validation=0.25

[sp]
SizeX=8
SizeY=8
NbChannels=3
BatchSize=4
{transform}
[fc]
Input=sp
Type=Fc
NbOutputs=3
ActivationFunction=Linear

[soft]
Input=fc
Type=Softmax
NbOutputs=3
WithLoss=1

[soft.Target]
"""
RESCALE = "\n[sp.{kind}Transformation-1]\nType=RescaleTransformation\nWidth=8\nHeight=8\n"


@pytest.mark.parametrize("kind", ["", "OnTheFly"])
def test_a_network_trains_on_a_folder_of_images_of_several_sizes(tmp_path, kind):
    make_folder(tmp_path / "images", {"a": 8, "b": 8, "c": 8}, varied=True)
    ini = write_ini(tmp_path, "dir.ini", DIR_NET.format(transform=RESCALE.format(kind=kind)))
    model = Model(ini)
    assert model.database.label_names == ("/a", "/b", "/c")
    assert train(ini, tmp_path / "run", "--epochs", "1") == 0
    assert (tmp_path / "run" / "weights.npz").is_file()


def test_images_of_several_sizes_without_a_rescale_fail_at_the_sp_line(tmp_path):
    make_folder(tmp_path / "images", {"a": 3, "b": 3}, varied=True)
    ini = write_ini(tmp_path, "dir.ini", DIR_NET.format(transform=""))
    with pytest.raises(IniError, match=rf"^{ini}:7 \[sp\]: the images of the database are of 6 "
                                       r"sizes \(5x6x3, 6x6x3, 5x7x3, 6x7x3, and 2 more\) and the "
                                       "transformations do not make them one size; add a "
                                       "RescaleTransformation"):
        Model(ini)


def test_one_size_folder_needs_no_rescale_and_registry_reads_keys(tmp_path):
    make_folder(tmp_path / "images", {"a": 2, "b": 2}, size=(8, 8))
    ini = write_ini(tmp_path, "dir.ini", DIR_NET.format(transform=""))
    model = Model(ini)
    images, labels = model.stimuli("learn")
    assert isinstance(images, ImageFiles) and len(labels) == 2
    table = DATABASES["DIR_Database"].key_table
    assert table["Learn"].required and table.defaults()["depth"] == 1
