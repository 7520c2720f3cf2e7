"""``n2prune infer``: the classes it prints are the network's on the test partition's images."""

import json
import sys

import numpy as np
import pytest
from paths import MODELS_INI
from runs import trained_run

from n2prune import cli
from n2prune.commands import load_masked_weights
from n2prune.data import write_idx
from n2prune.data.decode import write_ppm
from n2prune.train.model import Model

LENET_TEXT = (MODELS_INI / "lenet.ini").read_text()
RESCALE = "[sp.Transformation_1]\nType=RescaleTransformation\nWidth=[sp]SizeX\nHeight=[sp]SizeY\n"
COUNT = 6  # the first test images used


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(ini, run, images, expected)``: lenet after a few steps, the first MNIST test
    images (uint8 28x28) and the network's argmax on them as ``n2prune test`` feeds them."""
    folder = tmp_path_factory.mktemp("infer")
    ini, run = trained_run(folder, "lenet.ini", LENET_TEXT, "--steps", "30")
    model = Model(ini, seed=1)
    load_masked_weights(model, run)
    images = model.database.images("test")[:COUNT]
    cached, _ = model.stimuli("test")
    batch = model.provider.batch(cached, np.arange(COUNT), None, "test")
    scores = model.network.predict(batch.transpose(3, 0, 1, 2))
    return ini, run, np.asarray(images), scores.argmax(axis=1)


def infer(capsys, ini, run, *args):
    """``(exit code, stdout, stderr)`` of ``n2prune infer ini --weights run args``."""
    code = cli.main(["infer", str(ini), "--weights", str(run), *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_top_classes_equal_the_networks(trained, tmp_path, capsys):
    ini, run, images, expected = trained
    pgm = tmp_path / "digit0.pgm"
    write_ppm(pgm, images[0])
    one = tmp_path / "one.npy"
    np.save(one, images[1])
    stack = tmp_path / "stack.npy"
    np.save(stack, images[2:4])
    idx = tmp_path / "digits.idx"
    write_idx(idx, images[4:6])
    code, out, err = infer(capsys, ini, run, pgm, one, stack, idx, "--json", "--top", "4",
                           "--repeat", "3")
    assert code == 0, err
    report = json.loads(out)
    assert [i["input"] for i in report["inputs"]] == [
        str(pgm), str(one), f"{stack}[0]", f"{stack}[1]", f"{idx}[0]", f"{idx}[1]"]
    assert [i["top"][0]["class"] for i in report["inputs"]] == expected.tolist()
    for item in report["inputs"]:
        top = item["top"]
        assert len(top) == 4 and [t["name"] for t in top] == [str(t["class"]) for t in top]
        probs = [t["probability"] for t in top]
        assert probs == sorted(probs, reverse=True) and 0 < probs[-1]
    assert report["latency_ms"] > 0 and report["repeat"] == 3


def test_probabilities_sum_to_one(trained, tmp_path, capsys):
    ini, run, images, _ = trained
    path = tmp_path / "all.npy"
    np.save(path, images)
    code, out, err = infer(capsys, ini, run, path, "--json", "--top", "10", "--repeat", "1",
                           "--kernel", "sparse")
    assert code == 0, err
    for item in json.loads(out)["inputs"]:
        assert sum(t["probability"] for t in item["top"]) == pytest.approx(1, abs=1e-6)
        assert sorted(t["class"] for t in item["top"]) == list(range(10))


def test_text_output_names_each_input_and_the_latency(trained, tmp_path, capsys):
    ini, run, images, expected = trained
    path = tmp_path / "d.pgm"
    write_ppm(path, images[0])
    code, out, err = infer(capsys, ini, run, path)
    assert code == 0, err
    first, last = out.strip().splitlines()
    assert first.startswith(f"{path}: {expected[0]} ") and first.count(",") == 2
    assert last.startswith("batch-1 latency ") and last.endswith("(median of 5 calls)")


def one_error_line(code, out, err):
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_wrong_channel_count_is_one_line(trained, tmp_path, capsys):
    ini, run, images, _ = trained
    path = tmp_path / "colour.npy"
    np.save(path, np.repeat(images[0][..., None], 3, axis=2))
    line = one_error_line(*infer(capsys, ini, run, path))
    assert str(path) in line and "28x28 with 3 channel(s)" in line
    assert "(32x32 with 3 channel(s) after the test transformations)" in line
    assert "[sp] expects 32x32 with 1 channel(s)" in line
    assert "ChannelExtraction or ColorSpace" in line and "Rescale" not in line


def test_wrong_size_without_rescale_is_one_line(trained, tmp_path, capsys):
    _, run, images, _ = trained
    bare = tmp_path / "bare.ini"
    bare.write_text(LENET_TEXT.replace(RESCALE, ""))
    assert RESCALE in LENET_TEXT
    path = tmp_path / "d.pgm"
    write_ppm(path, images[0])
    line = one_error_line(*infer(capsys, bare, run, path))
    assert str(path) in line and "28x28 with 1 channel(s) but [sp] expects 32x32" in line
    assert "Rescale or PadCrop" in line and "ColorSpace" not in line


@pytest.mark.parametrize("name, content", [
    ("missing.pgm", None),
    ("broken.pgm", b"P5\n28 28\n255\n" + bytes(10)),
    ("broken.npy", b"not numpy"),
    ("broken.idx", b"\x00\x00\x08\x03\x00"),
    ("strings.npy", np.array(["a", "b"])),
])
def test_missing_or_corrupt_file_is_one_line(trained, tmp_path, capsys, name, content):
    ini, run, _, _ = trained
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content)
    line = one_error_line(*infer(capsys, ini, run, path))
    assert str(path) in line


def test_scores_without_softmax_are_turned_into_probabilities(trained, tmp_path, capsys):
    _, run, images, expected = trained
    softmax = "[softmax]\nInput=fc2\nType=Softmax\nNbOutputs=[fc2]NbOutputs\nWithLoss=1\n\n" \
              "[softmax.Target]\n"
    assert softmax in LENET_TEXT
    scores_ini = tmp_path / "scores.ini"
    scores_ini.write_text(LENET_TEXT.replace(softmax, "[fc2.Target]\n"))
    path = tmp_path / "all.npy"
    np.save(path, images)
    code, out, err = infer(capsys, scores_ini, run, path, "--json", "--top", "10")
    assert code == 0, err
    inputs = json.loads(out)["inputs"]
    # The Softmax is monotonic: the same best class as with it.
    assert [i["top"][0]["class"] for i in inputs] == expected.tolist()
    for item in inputs:
        assert sum(t["probability"] for t in item["top"]) == pytest.approx(1, abs=1e-6)


def test_png_int_and_float_inputs_give_the_same_classes(trained, tmp_path, capsys):
    ini, run, images, expected = trained
    pytest.importorskip("PIL", reason="PNG files are read through Pillow")
    from PIL import Image
    png = tmp_path / "d.png"
    Image.fromarray(images[0]).save(png)
    ints = tmp_path / "ints.npy"
    np.save(ints, images[1:3].astype(np.int64))  # pixels, whatever their integer type
    floats = tmp_path / "floats.npy"
    np.save(floats, images[3:6] / np.float32(255))  # values as the network takes them
    code, out, err = infer(capsys, ini, run, png, ints, floats, "--json", "--repeat", "1")
    assert code == 0, err
    assert [i["top"][0]["class"] for i in json.loads(out)["inputs"]] == expected.tolist()


def test_png_without_pillow_names_the_extra(trained, tmp_path, capsys, monkeypatch):
    ini, run, _, _ = trained
    path = tmp_path / "d.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails
    line = one_error_line(*infer(capsys, ini, run, path))
    assert str(path) in line and "pip install 'n2prune[images]'" in line


def test_integers_outside_pixels_are_refused(trained, tmp_path, capsys):
    ini, run, _, _ = trained
    path = tmp_path / "big.npy"
    np.save(path, np.full((28, 28), 300, np.int32))
    line = one_error_line(*infer(capsys, ini, run, path))
    assert str(path) in line and "300..300" in line and "0..255" in line
