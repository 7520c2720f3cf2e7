"""Palette PNG files from numpy arrays, with the standard library only (zlib, struct).

PNG (ISO/IEC 15948): the signature, an IHDR chunk (size, 8-bit indices,
colour type 3), a PLTE chunk (the RGB colours), IDAT (the rows, each behind
its filter byte 0, deflated) and IEND; every chunk is length, type, data and
the CRC-32 of type and data.
"""

import base64
import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def palette_png(indices, palette):
    """PNG bytes of ``indices`` (H, W uint8, each a row of ``palette``: (N <= 256, 3) RGB)."""
    indices = np.asarray(indices, dtype=np.uint8)
    palette = np.asarray(palette, dtype=np.uint8)
    height, width = indices.shape
    if not (1 <= len(palette) <= 256 and height and width and indices.max() < len(palette)):
        raise ValueError("palette_png: an empty picture, or an index beyond the palette")
    rows = np.hstack([np.zeros((height, 1), np.uint8), indices])  # filter 0: none
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"PLTE", palette.tobytes())
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + _chunk(b"IEND", b""))


def data_uri(png):
    """``png`` bytes as a ``data:`` URI, for an ``<img>`` that needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
