"""Mask pictures: one PNG per pruned cell, outputs down, inputs across.

A weight is one pixel (enlarged by whole factors for small cells): kept
dark, pruned light, grey where a Conv mapping connects nothing. A cell too
large for the page is shown in blocks, each shaded by the fraction of its
connected weights that are kept.
"""

import math
from html import escape

import numpy as np

from n2prune.report.collect import KEPT, UNCONNECTED
from n2prune.report.png import data_uri, palette_png

MAX_WIDTH, MAX_HEIGHT, MAX_SCALE = 800, 360, 12
PRUNED_RGB, KEPT_RGB, UNCONNECTED_RGB = (244, 246, 250), (29, 53, 87), (190, 190, 190)
SHADES = 255  # palette 0..254: kept fraction 0..1; 255: nothing connected
PALETTE = np.vstack([np.linspace(PRUNED_RGB, KEPT_RGB, SHADES).round(), [UNCONNECTED_RGB]])


def _rgb(colour):
    return "#" + "".join(f"{c:02x}" for c in colour)


def blocks(states):
    """``(block height, block width)`` that fit the picture into MAX_WIDTH x MAX_HEIGHT."""
    rows, columns = states.shape
    return math.ceil(rows / MAX_HEIGHT), math.ceil(columns / MAX_WIDTH)


def shade_indices(states, block):
    """Palette indices of ``states`` (``collect.mask_states``) by ``block`` (h, w)."""
    by, bx = block
    rows, columns = states.shape
    pad = ((0, -rows % by), (0, -columns % bx))
    kept = np.pad(states == KEPT, pad).astype(np.int64)
    connected = np.pad(states != UNCONNECTED, pad).astype(np.int64)
    shape = (kept.shape[0] // by, by, kept.shape[1] // bx, bx)
    kept, connected = kept.reshape(shape).sum(axis=(1, 3)), connected.reshape(shape).sum(axis=(1, 3))
    fraction = kept / np.maximum(connected, 1)
    indices = np.rint(fraction * (SHADES - 1)).astype(np.uint8)
    indices[connected == 0] = SHADES
    return indices


def mask_figure(row, states):
    """The ``<figure>`` of one pruned cell: its facts (``inspect.cell_row``), its picture."""
    block = blocks(states)
    indices = shade_indices(states, block)
    height, width = indices.shape
    # Whole-number enlargements, taller than wide by at most 4 (a 784-input Fc keeps
    # rows of several pixels), never wider than tall: Conv kernels stay square.
    across = max(1, min(MAX_WIDTH // width, MAX_SCALE))
    down = max(1, min(MAX_HEIGHT // height, MAX_SCALE, 4 * across))
    across = min(across, down)
    name = escape(row["cell"])
    threshold = "-" if row["threshold"] is None else f"{row['threshold']:.4g}"
    facts = (f"{escape(row['type'])} · {states.shape[0]} outputs × {states.shape[1]} inputs · "
             f"mode {escape(str(row['mode']))} · masks by {escape(str(row['filler']))} · "
             f"threshold {threshold} · <b>{row['mask_sparsity']:.1%} pruned</b>")
    note = "" if block == (1, 1) else (
        f'<br><span class="note">each pixel: {block[0]} × {block[1]} weights, '
        "shaded by the fraction kept</span>")
    return (f'<figure><figcaption><h3 id="mask-{name}">{name}</h3>{facts}{note}</figcaption>'
            f'<div><img src="{data_uri(palette_png(indices, PALETTE))}" width="{width * across}" '
            f'height="{height * down}" alt="mask of {name}: {row["mask_sparsity"]:.1%} of its '
            f'weights pruned"></div></figure>')


def mask_legend():
    swatches = (("kept", KEPT_RGB), ("pruned", PRUNED_RGB),
                ("not connected (mapping)", UNCONNECTED_RGB))
    return "".join(f'<span class="swatch" style="background:{_rgb(c)}"></span>{label}'
                   for label, c in swatches)
