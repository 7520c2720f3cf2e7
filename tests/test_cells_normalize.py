"""Normalize: L2 over channels per pixel, N2D2's epsilon, the exact gradient, INI keys."""

import numpy as np
import pytest
from gradcheck import check_cell

from n2prune.cells import Normalize
from n2prune.errors import IniError, SettingError, ShapeError
from n2prune.graph.builder import build_network
from n2prune.ini import load_ini


def test_each_pixel_vector_gets_unit_norm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 2, 4)).astype(np.float32)
    y = Normalize("n", [(5, 3, 2)], 5, norm="L2").forward([x], train=False)
    assert y.dtype == np.float32
    np.testing.assert_allclose(np.sqrt((y ** 2).sum(axis=0)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(y * np.linalg.norm(x, axis=0), x, rtol=1e-5, atol=1e-6)


def test_epsilon_is_inside_the_root_as_n2d2s():
    x = np.array([3e-4, 4e-4]).reshape(2, 1, 1, 1)  # norm 5e-4: the epsilon shows
    y = Normalize("n", [(2, 1, 1)], 2, norm="L2").forward([x], train=False)
    np.testing.assert_allclose(y[:, 0, 0, 0], [3e-4, 4e-4] / np.sqrt(25e-8 + 1e-6), rtol=1e-12)


def test_gradient():
    rng = np.random.default_rng(1)
    cell = Normalize("n", [(6, 3, 2)], 6, norm="L2")
    check_cell(cell, [rng.standard_normal((6, 3, 2, 3))], rng)


def test_a_zero_channel_changes_no_other_output():
    """What lets channel pruning remove a channel through the cell."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 2, 2, 3))
    x[2] = 0.0
    y = Normalize("n", [(4, 2, 2)], 4, norm="L2").forward([x], train=False)
    kept = Normalize("n", [(3, 2, 2)], 3, norm="L2").forward([x[[0, 1, 3]]], train=False)
    assert not y[2].any()
    np.testing.assert_allclose(y[[0, 1, 3]], kept, rtol=1e-12)


def test_refusals():
    with pytest.raises(SettingError, match="Norm=L1 is not supported"):
        Normalize("n", [(4, 2, 2)], 4, norm="L1")
    with pytest.raises(ShapeError, match="exactly one input"):
        Normalize("n", [(4, 2, 2), (4, 2, 2)], 8, norm="L2")
    with pytest.raises(ShapeError, match="NbOutputs=3 must equal"):
        Normalize("n", [(4, 2, 2)], 3, norm="L2")


NET = """[sp]
SizeX=4
SizeY=4
[c]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=5
[n]
Input=c
Type=Normalize
NbOutputs=5
{norm}
[fc]
Input=n
Type=Fc
NbOutputs=3
[fc.Target]
"""


def build(tmp_path, norm):
    path = tmp_path / "m.ini"
    path.write_text(NET.format(norm=norm))
    return build_network(load_ini(path), 0, 10)[0]


def test_ini_norm_is_required_and_l1_refused_at_its_line(tmp_path):
    assert build(tmp_path, "Norm=L2").cell("n").norm == "L2"
    with pytest.raises(IniError, match=r"m.ini:13 \[n\] Norm: Norm=L1 is not supported"):
        build(tmp_path, "Norm=L1")
    with pytest.raises(IniError, match="missing required key"):
        build(tmp_path, "")
