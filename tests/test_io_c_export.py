"""``n2prune export RUN --format c``: the C99 files compile with the system compiler
(-Wall -Werror) and give n2prune's outputs on MNIST test images, each weight
tensor in the smallest of its dense, bitmask and CSR forms."""

import math
import re
import subprocess
from itertools import pairwise

import numpy as np
import pytest
from networks import EVERY_C_CELL
from paths import MODELS_INI, c_compiler
from runs import train

from n2prune import cli
from n2prune.data.mnist import MnistIdxDatabase
from n2prune.errors import UserError
from n2prune.inspect import load_run
from n2prune.io.c_export import MODEL_NAME, build_c, export_c
from n2prune.io.c_weights import WeightForms
from n2prune.train.model import Model

CC = c_compiler()
needs_cc = pytest.mark.c_compiler

NB_IMAGES = 1000

# Reads float32 images from argv[1] until its end, writes the outputs to argv[2].
DRIVER = r"""
#include <stdio.h>
#include "n2prune_model.h"

int main(int argc, char **argv)
{
    static float x[N2PRUNE_MODEL_INPUT_SIZE], y[N2PRUNE_MODEL_OUTPUT_SIZE];
    FILE *in, *out;
    if (argc != 3 || !(in = fopen(argv[1], "rb")) || !(out = fopen(argv[2], "wb")))
        return 1;
    while (fread(x, sizeof x, 1, in) == 1) {
        n2prune_model_forward(x, y);
        if (fwrite(y, sizeof y, 1, out) != 1)
            return 1;
    }
    fclose(in);
    return fclose(out) != 0;
}
"""


def run_c(folder, x):
    """The exported network in ``folder`` compiled with the driver, run on ``x`` (N, C, H, W)."""
    (folder / "main.c").write_text(DRIVER)
    exe = folder / "model"
    subprocess.run([CC, "-O2", "-std=c99", "-pedantic-errors", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                    str(folder / "main.c"), str(folder / f"{MODEL_NAME}.c"), "-lm"],
                   check=True, capture_output=True, text=True)
    np.ascontiguousarray(x, np.float32).tofile(folder / "in.bin")
    subprocess.run([str(exe), str(folder / "in.bin"), str(folder / "out.bin")], check=True)
    return np.fromfile(folder / "out.bin", np.float32).reshape(len(x), -1)


def check_outputs(network, folder, x):
    """The C outputs on ``x`` are n2prune's: same top-1 everywhere, within 1e-4."""
    expected = network.predict(x)
    got = run_c(folder, x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4
    assert np.array_equal(got.argmax(1), expected.argmax(1))
    assert expected.std() > 0  # outputs that vary: the comparison means something


@pytest.fixture(scope="module")
def mnist_test():
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("N2D2_DATA", raising=False)
        images = MnistIdxDatabase(validation=0.0, seed=0).images("test")[:NB_IMAGES]
    x = np.zeros((len(images), 1, 32, 32), np.float32)  # LeNet's 32x32 input, digit centred
    x[:, 0, 2:30, 2:30] = images.astype(np.float32) / 255.0
    return x


def _exported(tmp_path, text, steps=20):
    ini = tmp_path / "net.ini"
    ini.write_text(text)
    run = tmp_path / "run"
    assert train(ini, run, "--steps", str(steps)) == 0
    assert cli.main(["export", str(run), "--format", "c", "--out", str(tmp_path / "c")]) == 0
    network, _ = load_run(run)
    return network, tmp_path / "c"


def _declared(source, name):
    """The C type and length of the array ``name`` in ``source``, or None."""
    found = re.search(rf"static const (\w+) {re.escape(name)}\[(\d+)\]", source)
    return None if found is None else (found.group(1), int(found.group(2)))


def _check_form(source, name, matrix):
    """The arrays of ``name`` are the smallest form of ``matrix``, by the formulas."""
    rows, cols = matrix.shape
    nnz = int(np.count_nonzero(matrix))
    pointer = next(b for b in (1, 2, 4) if nnz < 256 ** b)  # smallest unsigned type
    column = next(b for b in (1, 2, 4) if cols - 1 < 256 ** b)
    sizes = {"dense": 4 * rows * cols, "bitmask": rows * math.ceil(cols / 8) + 4 * nnz,
             "csr": (rows + 1) * pointer + nnz * (column + 4)}
    form = min(sizes, key=sizes.get)
    arrays = {"dense": ["w"], "bitmask": ["bits", "v"], "csr": ["rows", "cols", "v"]}
    for suffix in ("w", "bits", "rows", "cols", "v"):
        declared = _declared(source, f"{name}_{suffix}")
        assert (declared is not None) == (suffix in arrays[form]), (name, suffix, form)
    if form == "csr":
        assert _declared(source, f"{name}_cols")[1] == nnz
        assert _declared(source, f"{name}_rows")[1] == rows + 1
    if form == "bitmask":
        assert _declared(source, f"{name}_bits")[1] == rows * math.ceil(cols / 8)
    if form != "dense":
        assert _declared(source, f"{name}_v")[1] == nnz  # the zeros are not stored
    return form


def _conv_matrix(cell):
    w = np.asarray(cell.effective_weights(0), np.float32)
    mask = cell.connections[0].mask
    return (w if mask is None else w * mask).reshape(cell.nb_outputs, -1)


@needs_cc
def test_lenet_equals_n2prune_on_mnist(tmp_path, mnist_test, capsys):
    network, folder = _exported(tmp_path, (MODELS_INI / "lenet.ini").read_text())
    printed = capsys.readouterr().out
    assert "activation arena" in printed and "B dense" in printed
    check_outputs(network, folder, mnist_test)
    source = (folder / f"{MODEL_NAME}.c").read_text()
    assert _check_form(source, "conv1", _conv_matrix(network.cell("conv1"))) == "dense"
    # conv2's mapping table leaves 36 of its 96 kernels unconnected: not dense.
    assert _check_form(source, "conv2", _conv_matrix(network.cell("conv2"))) != "dense"
    # A chain: two ping-pong tensors, the largest neighbours' pair (fc1.drop reads
    # fc1's floats, softmax writes the caller's output).
    chain = ("conv1", "pool1", "conv2", "pool2", "conv3", "fc1", "fc2")
    sizes = [4 * math.prod(network.cell(n).output_shape) for n in chain]
    result = build_c(network)
    assert result.arena_bytes == max(a + b for a, b in pairwise(sizes))
    header = (folder / f"{MODEL_NAME}.h").read_text()
    assert f"activation arena {result.arena_bytes} B" in header


@needs_cc
def test_pruned_lenet_is_compressed_and_equal(tmp_path, mnist_test):
    text = (MODELS_INI / "lenet_prune_gradual.ini").read_text()
    # The threshold reaches 90% after 16 steps instead of 8 epochs.
    text = text.replace("QWeight.StepSizeThreshold=[sp]_EpochSize", "QWeight.StepSizeThreshold=2")
    network, folder = _exported(tmp_path, text)
    check_outputs(network, folder, mnist_test)
    source = (folder / f"{MODEL_NAME}.c").read_text()
    forms = {}
    for name in ("conv1", "conv2", "conv3", "fc1", "fc2"):
        cell = network.cell(name)
        matrix = _conv_matrix(cell) if cell.type_name == "Conv" else np.asarray(
            cell.effective_weights(0))
        assert np.mean(matrix == 0) >= 0.85, name  # the masks really are sparse
        forms[name] = _check_form(source, name, matrix)
    assert {"csr", "bitmask"} <= set(forms.values()), forms
    result = build_c(network)
    exported = sum(f.bytes for row in result.rows for f in row.forms)
    dense = sum(f.sizes["dense"] for row in result.rows for f in row.forms)
    assert exported < dense / 3




@pytest.fixture(scope="module")
def every_cell(tmp_path_factory):
    ini = tmp_path_factory.mktemp("every") / "all.ini"
    ini.write_text(EVERY_C_CELL)
    network = Model(ini, need_data=False).network
    rng = np.random.default_rng(0)
    bn = network.cell("bn")
    bn.mean[...] = rng.normal(size=6)
    bn.variance[...] = rng.uniform(0.5, 2, size=6)
    bn.scale.value[...] = rng.normal(size=6)
    bn.scale.changed()
    fc = network.cell("fc")
    fc.weights[0].value[:, ::3] = 0  # zeros for the compressed forms to skip
    fc.weights[0].changed()
    return network


@needs_cc
@pytest.mark.parametrize("form", [None, "dense", "bitmask", "csr"])
def test_every_mapped_cell_in_each_form(tmp_path, every_cell, form):
    result = export_c(every_cell, tmp_path, form=form)
    forms = {f.form for row in result.rows for f in row.forms}
    assert forms == ({form} if form else forms)
    x = np.random.default_rng(1).uniform(-1, 1, size=(64, *every_cell.input_shape))
    check_outputs(every_cell, tmp_path, x.astype(np.float32))
    source = (tmp_path / f"{MODEL_NAME}.c").read_text()
    assert "pool_src" in source and "mpool_src" in source  # mapped pooling: source tables
    assert "memcpy((arena" in source  # the concatenated inputs of sat and mpool


def test_smallest_form_by_size():
    m = np.zeros((3, 10), np.float32)
    m[0, 1], m[0, 9], m[2, 0], m[2, 5] = 1, 2, 3, 4
    forms = WeightForms("t", m)
    # dense 4*30; bitmask 3 rows of 2 bytes + 4 values; CSR 4 uint8 pointers + 4 x (uint8 + float)
    assert forms.sizes == {"dense": 120, "bitmask": 3 * 2 + 16, "csr": 4 + 4 * 5}
    assert forms.form == "bitmask"
    assert WeightForms("t", np.ones((3, 10))).form == "dense"
    assert WeightForms("t", np.eye(40)).form == "csr"


def test_unmapped_activation_is_one_line(every_cell):
    from n2prune.cells.activations import Softplus
    cell = every_cell.cell("bn")
    kept, cell.activation = cell.activation, Softplus()
    try:
        with pytest.raises(UserError, match=r"^\[bn\] activation Softplus has no C export"):
            build_c(every_cell)
    finally:
        cell.activation = kept


def test_unmapped_cell_is_one_line(tmp_path, capsys):
    # LeNet's dropout cell made an ElemWise EuclideanSum (it needs sqrtf: no C export).
    text = (MODELS_INI / "lenet.ini").read_text()
    assert text.count("Type=Dropout") == 1
    ini = tmp_path / "m.ini"
    ini.write_text(text.replace("Type=Dropout", "Type=ElemWise\nOperation=EuclideanSum"))
    assert train(ini, tmp_path / "run", "--steps", "1") == 0
    capsys.readouterr()
    assert cli.main(["export", str(tmp_path / "run"), "--format", "c"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[fc1.drop]" in err and "EuclideanSum has no C export" in err
    assert not (tmp_path / "run" / "c").exists()  # nothing half-written
