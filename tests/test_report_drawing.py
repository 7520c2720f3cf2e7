"""The report's drawing pieces: mask states, PNG files, block shading, ticks, SVG lines."""

import io

import numpy as np
import pytest
from html_page import Parsed, points

from n2prune.graph.builder import build_network
from n2prune.ini import parse_ini_text
from n2prune.prune.pruned_cells import initialize_masks
from n2prune.report.collect import KEPT, PRUNED, UNCONNECTED, mask_states
from n2prune.report.masks import shade_indices
from n2prune.report.png import palette_png
from n2prune.report.svg import Axis, Series, line_chart, nice_ticks


def test_mask_states_show_a_mappings_absent_kernels():
    text = """
[sp]
SizeX=6
SizeY=6
NbChannels=2
BatchSize=1

[conv]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=3
Mapping(sp)=1 0 1 0 1 1
QWeight=Prune
QWeight.PruningMode=Static
QWeight.Threshold=0.5

[fc]
Input=conv
Type=Fc
NbOutputs=2

[fc.Target]
"""
    network, _provider, _context = build_network(parse_ini_text(text), seed=1)
    initialize_masks(network, np.random.default_rng(0), 10)
    states = mask_states(network.cell("conv")).reshape(3, 2, 9)  # output, channel, tap
    mapping = np.array([[1, 0, 1], [0, 1, 1]])  # channel x output, as written
    for output in range(3):
        for channel in range(2):
            absent = (states[output, channel] == UNCONNECTED).all()
            assert absent == (mapping[channel, output] == 0)
    assert (states == PRUNED).any() and (states == KEPT).any()


def test_palette_png_decodes_to_its_pixels():
    image = pytest.importorskip("PIL.Image")
    indices = np.random.default_rng(0).integers(0, 3, (7, 13)).astype(np.uint8)
    palette = [(255, 0, 0), (0, 255, 0), (10, 20, 30)]
    decoded = image.open(io.BytesIO(palette_png(indices, palette)))
    assert decoded.mode == "P" and decoded.size == (13, 7)
    np.testing.assert_array_equal(np.array(decoded), indices)
    assert decoded.getpalette()[:9] == [c for rgb in palette for c in rgb]


def test_large_masks_are_shaded_by_blocks():
    states = np.array([[KEPT, PRUNED, KEPT, KEPT, PRUNED], [UNCONNECTED, UNCONNECTED, PRUNED,
                                                           PRUNED, KEPT]], dtype=np.uint8)
    shades = shade_indices(states, (1, 2))  # the last block is padded, half empty
    np.testing.assert_array_equal(shades, [[127, 254, 0], [255, 0, 254]])


def test_ticks_cover_the_values():
    ticks, step = nice_ticks(0.03, 0.97)
    assert ticks[0] <= 0.03 and ticks[-1] >= 0.97 and step == pytest.approx(0.2)
    ticks, _ = nice_ticks(0.1, 0.1)  # a flat curve (a constant learning rate)
    assert ticks[0] < 0.1 < ticks[-1]


def test_a_chart_leaves_out_values_that_are_not_finite():
    svg = line_chart([Series("loss", [1, 2, 3, 4], [1.0, float("nan"), 0.5, float("inf")],
                             "#000000")], Axis("step"), Axis("loss"))
    parsed = Parsed(svg)
    assert parsed.line("loss")["data-x"] == "1 3" and len(points(parsed.line("loss"))) == 2
    assert "nan" not in svg and "inf" not in svg
