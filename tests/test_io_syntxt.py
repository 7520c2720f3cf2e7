"""N2D2 weight files: layout, strict import, round trip."""

import numpy as np
import pytest
from layout import chwn

from n2prune.cells import Deconv
from n2prune.errors import UserError
from n2prune.io.syntxt import export_cell, export_network, import_cell, import_network
from n2prune.train.model import Model


@pytest.fixture(scope="module")
def lenet():
    return Model("models_ini/lenet.ini", seed=3, need_data=False)


def test_layout_follows_n2d2(lenet, tmp_path):
    export_network(lenet.network, tmp_path)
    conv2 = (tmp_path / "conv2_weights.syntxt").read_text().splitlines()
    assert len(conv2) == 16  # one line per output
    mapping = lenet.network.cell("conv2").connections[0].mask[:, :, 0, 0].T
    for o, line in enumerate(conv2):
        # only the connected input channels' 5x5 kernels, x fastest
        assert len(line.split()) == 25 * int(mapping[:, o].sum())
    w = lenet.network.cell("conv2").weights[0].value
    first_channel = int(np.flatnonzero(mapping[:, 0])[0])
    np.testing.assert_array_equal(np.array(conv2[0].split()[:25], dtype=np.float32),
                                  w[0, first_channel].ravel())
    fc1 = (tmp_path / "fc1_weights.syntxt").read_text().splitlines()
    assert len(fc1) == 84 and all(len(line.split()) == 120 for line in fc1)
    assert not (tmp_path / "fc1_biases.syntxt").exists()  # NoBias=1


def test_round_trip_gives_identical_outputs(tmp_path):
    a = Model("models_ini/lenet.ini", seed=1, need_data=False)
    b = Model("models_ini/lenet.ini", seed=2, need_data=False)
    x = chwn(np.random.default_rng(0).random((1, 4, 32, 32), dtype=np.float32))
    assert not np.allclose(a.network.forward(x), b.network.forward(x))
    export_network(a.network, tmp_path)
    import_network(b.network, tmp_path)
    np.testing.assert_array_equal(a.network.forward(x), b.network.forward(x))


def test_cell_names_with_slashes_stay_in_the_folder(tmp_path):
    """An imported ONNX tensor name (``conv2/conv``, or a hostile ``../x``) is one file."""
    a = Model("models_ini/lenet.ini", seed=1, need_data=False).network.cell("conv2")
    b = Model("models_ini/lenet.ini", seed=2, need_data=False).network.cell("conv2")
    folder = tmp_path / "deep" / "weights"
    for name, stem in (("../up/conv2", ".._up_conv2"), ("conv2/conv", "conv2_conv")):
        a.name = b.name = name
        export_cell(a, folder)
        assert (folder / f"{stem}_weights.syntxt").is_file()
        import_cell(b, folder)
        np.testing.assert_array_equal(a.weights[0].value, b.weights[0].value)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_dir()) == ["deep", "weights"]


def test_import_is_strict(lenet, tmp_path):
    export_network(lenet.network, tmp_path)
    path = tmp_path / "fc2_weights.syntxt"
    path.write_text(path.read_text() + "0.5\n")
    with pytest.raises(UserError, match="fc2_weights.syntxt: expected 840 values, found 841"):
        import_network(lenet.network, tmp_path)
    path.unlink()
    with pytest.raises(UserError, match="fc2_weights.syntxt: missing weights file"):
        import_network(lenet.network, tmp_path)


def test_deconv_files_are_n2d2s_and_round_trip(tmp_path):
    """N2D2 keeps a Deconv's kernels as (C, O, KH, KW) and writes, per output o, the
    kernels [c][o] of its connected channels c (DeconvCell::exportFreeParameters)."""
    mapping = np.array([[1, 0, 1], [1, 1, 0]], dtype=np.int8)  # (C, O)
    a, b = (Deconv("up", [(2, 3, 3)], 3, kernel=(2, 3), stride=2, mappings=[mapping],
                   rng=np.random.default_rng(seed)) for seed in (1, 2))
    export_cell(a, tmp_path)
    n2d2 = a.weights[0].value.transpose(1, 0, 2, 3)  # N2D2's sharedSynapses[channel][output]
    lines = (tmp_path / "up_weights.syntxt").read_text().splitlines()
    assert len(lines) == 3
    for o, line in enumerate(lines):
        want = np.concatenate([n2d2[c, o].ravel() for c in range(2) if mapping[c, o]])
        np.testing.assert_array_equal(np.array(line.split(), dtype=np.float32), want)
    import_cell(b, tmp_path)
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 2)).astype(np.float32)
    np.testing.assert_array_equal(a.forward([x], False), b.forward([x], False))
