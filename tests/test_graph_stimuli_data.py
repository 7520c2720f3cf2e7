"""graph.stimuli_data and ApplyTo: StimuliData sections computed, injected, cached in runs."""

import numpy as np
import pytest

from n2prune import cli
from n2prune.data import RangeAffine, Rescale, StimuliStats
from n2prune.data.idx import write_idx
from n2prune.errors import IniError
from n2prune.graph.builder import build_network
from n2prune.ini import load_ini
from n2prune.train.model import Model

NET = "[fc]\nInput=sp\nType=Fc\nNbOutputs=10\n[softmax]\nInput=fc\nType=Softmax\n" \
      "NbOutputs=10\nWithLoss=1\n[softmax.Target]\n"
NORMALIZE = """
[sp.StimuliData-normalize]
ApplyTo=LearnOnly

[sp.Transformation-normalize]
Type=RangeAffineTransformation
FirstOperator=Minus
FirstValue=[sp.StimuliData-normalize]_GlobalValue.mean
SecondOperator=Divides
SecondValue=[sp.StimuliData-normalize]_GlobalValue.stdDev
"""


@pytest.fixture
def tiny_data(tmp_path):
    """An MNIST-format folder: 40 training images of 8x8 (10 for validation), 10 test."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    folder.mkdir()
    for prefix, n in (("train", 40), ("t10k", 10)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 8, 8))
                  .astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    return folder


def model_text(folder, body=NORMALIZE):
    return (f"[database]\nType=MNIST_IDX_Database\nDataPath={folder}\nValidation=0.25\n"
            f"RandomPartitioning=0\n[sp]\nSizeX=8\nSizeY=8\nBatchSize=5\n{body}{NET}")


def write(tmp_path, text):
    path = tmp_path / "m.ini"
    path.write_text(text)
    return path


def normalisation(model):
    [affine] = [t for t in model.provider.steps("learn") if isinstance(t, RangeAffine)]
    return float(affine.first_value[0]), float(affine.second_value[0])


def test_learn_statistics_normalise_every_partition(tmp_path, tiny_data):
    model = Model(write(tmp_path, model_text(tiny_data)))
    learn = model.database.images("learn").astype(np.float64)  # raw 0..255, as N2D2
    stats = model.stimuli_stats["sp.StimuliData-normalize"]
    assert stats.count == 30
    assert stats.mean == pytest.approx(learn.mean()) and stats.std_dev == pytest.approx(learn.std(ddof=1))
    # Injected as N2D2's setProperty writes them: 6 significant digits.
    assert normalisation(model) == (float(f"{learn.mean():.6g}"), float(f"{learn.std(ddof=1):.6g}"))
    assert model.ini.value("sp.StimuliData-normalize", "_GlobalValue.maxVal") == \
        f"{learn.max():#.6g}"
    images, _ = model.stimuli("test")
    batch = model.provider.batch(images, np.arange(2), None, "test")
    mean, std = normalisation(model)
    expected = (model.database.images("test")[:2] - mean) / std
    np.testing.assert_allclose(batch[0], expected.transpose(1, 2, 0), rtol=1e-5)


def test_check_uses_placeholders(tmp_path, tiny_data):
    model = Model(write(tmp_path, model_text(tiny_data)), need_data=False)
    assert normalisation(model) == (0.0, 1.0)


def test_statistics_see_the_transformations_before_them_per_partition(tmp_path):
    body = """
[sp.Transformation-1]
Type=RescaleTransformation
Width=4
Height=4
ApplyTo=LearnOnly
[sp.Transformation-2]
Type=RescaleTransformation
Width=8
Height=8
[sp.StimuliData-sp]
MeanData=1
[sp.Transformation-3]
Type=AffineTransformation
FirstOperator=Minus
FirstValue=[sp.StimuliData-sp]_MeanData
"""
    seen = {}

    def source(section, transforms, mean_data, std_dev_data):
        seen.update(section=section, transforms=transforms, mean_data=mean_data)
        return StimuliStats(3, 0.0, 1.0, 0.5, 0.25, np.full((8, 8, 1), 7.0))

    ini = load_ini(write(tmp_path, "[sp]\nSizeX=8\nSizeY=8\n" + body + NET))
    _, provider, ctx = build_network(ini, 0, 1, stats_source=source)
    assert seen["section"] == "sp.StimuliData-sp" and seen["mean_data"]
    learn, test = seen["transforms"]["learn"], seen["transforms"]["test"]
    assert [type(t) for t in learn] == [Rescale, Rescale] and [t.width for t in learn] == [4, 8]
    assert [t.width for t in test] == [8] and set(seen["transforms"]) == {"learn", "validation", "test"}
    affine = provider.steps("test")[-1]
    np.testing.assert_array_equal(affine.first_value, np.full((8, 8, 1), 7.0))
    assert ini.value("sp.StimuliData-sp", "_MeanData") == "sp.StimuliData-sp/meanData.bin"
    assert ctx.stimuli_stats["sp.StimuliData-sp"].mean == 0.5
    # Without data: a zero image of the size the transformations give.
    _, provider, _ = build_network(load_ini(write(tmp_path, "[sp]\nSizeX=8\nSizeY=8\n" + body + NET)))
    assert provider.steps("learn")[-1].first_value.shape == (8, 8, 1)


def line_of(text, start):
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


@pytest.mark.parametrize("body, key, words", [
    ("[sp.Transformation]\nType=FlipTransformation\nApplyTo=LearnOnlyy\n", "ApplyTo",
     "[sp.Transformation] ApplyTo: expected one of LearnOnly, ValidationOnly"),
    ("[sp.StimuliData-x]\nMeanData=2\n", "MeanData", "[sp.StimuliData-x] MeanData: expected 0 or 1"),
    ("[sp.StimuliData-x]\nApplyTo=Learn\n", "ApplyTo", "[sp.StimuliData-x] ApplyTo: expected one of"),
    ("[sp.Transformation]\nType=SliceExtractionTransformation\nWidth=4\nHeight=4\n"
     + "RandomRotation=1\n", "RandomRotation",
     "[sp.Transformation] RandomRotation: RandomRotation is not supported by n2prune"),
    ("[sp.Transformation]\nType=ColorSpaceTransformation\nColorSpace=CIELab\n", "ColorSpace",
     "[sp.Transformation] ColorSpace: ColorSpace=CIELab is not supported"),
    ("[sp.Transformation]\nType=AffineTransformation\nFirstOperator=Minus\nFirstValue=m.png\n",
     "FirstValue", "[sp.Transformation] FirstValue: "),
    ("[sp.Transformation]\nType=PadCropTransformation\nWidth=4\nHeight=4\nBorderType=Zero\n",
     "BorderType", "[sp.Transformation] BorderType: expected one of ConstantBorder"),
])
def test_bad_values_are_one_line_at_their_key(tmp_path, body, key, words):
    text = "[sp]\nSizeX=4\nSizeY=4\n" + body + NET
    path = write(tmp_path, text)
    with pytest.raises(IniError) as info:
        build_network(load_ini(path))
    message = str(info.value)
    assert message.startswith(f"{path}:{line_of(text, key + '=')} {words}"), message
    assert "\n" not in message


def test_transformation_keys_read_from_the_ini(tmp_path):
    body = """[sp.Transformation-1]
Type=PadCropTransformation
Width=6
Height=6
BorderType=ConstantBorder
BorderValue=3
[sp.Transformation-2]
Type=RangeAffineTransformation
FirstOperator=Minus
FirstValue=0.5 0.25 1 ; one per channel
Truncate=1
[sp.OnTheFlyTransformation]
Type=SliceExtractionTransformation
Width=4
Height=4
RandomOffsetX=1
ApplyTo=NoValidation
"""
    ini = load_ini(write(tmp_path, "[sp]\nSizeX=4\nSizeY=4\nNbChannels=3\n" + body + NET))
    _, provider, _ = build_network(ini)
    pad, affine, slice_ = provider.steps("learn")
    assert (pad.border_type, pad.border_value) == ("ConstantBorder", (3.0,))
    assert affine.first_value.tolist() == [0.5, 0.25, 1.0] and affine.truncate
    assert slice_.random_offset_x and provider.steps("validation") == [pad, affine]


def test_train_caches_statistics_that_resume_and_test_reuse(tmp_path, tiny_data):
    ini, run = write(tmp_path, model_text(tiny_data)), tmp_path / "run"
    assert cli.main(["train", str(ini), "--out", str(run), "--epochs", "1"]) == 0
    cache = run / "stimuli_data" / "sp.StimuliData-normalize.npz"
    stats = StimuliStats.load(cache)
    assert stats.count == 30
    # A run reads its own numbers back, not new ones: alter them to tell.
    StimuliStats(30, 0.0, 255.0, 100.0, 50.0).save(cache)
    assert normalisation(Model(ini, stimuli_cache=run / "stimuli_data")) == (100.0, 50.0)
    assert cli.main(["train", str(ini), "--resume", str(run), "--epochs", "2"]) == 0
    assert StimuliStats.load(cache).mean == 100.0  # reused, not recomputed and rewritten
    assert cli.main(["test", str(ini), "--weights", str(run)]) == 0
    # Statistics of another number of stimuli are computed again.
    StimuliStats(29, 0.0, 255.0, 100.0, 50.0).save(cache)
    assert normalisation(Model(ini, stimuli_cache=run / "stimuli_data"))[0] == \
        pytest.approx(stats.mean, rel=1e-5)
