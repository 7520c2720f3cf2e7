"""``export --format npz``: the deployed tensors as one plain ``.npz`` file.

For a toolchain that reads numpy arrays and nothing of n2prune: each cell's
tensors under ``<cell>.<suffix>`` (the names of the ONNX initializers:
``conv1.weights``, ``conv1.biases``, ``conv1.mask``, ``bn1.variances``...),
masked weights as exact zeros, and ``network`` (a JSON text) listing the
cells in order with their type, inputs, output shape and pruning facts.
``np.load(path)`` reads it without ``allow_pickle``.
"""

import json

import numpy as np

from n2prune.io.atomic import atomic_open
from n2prune.io.deployed import cell_tensors, pruning_facts


def network_description(network):
    """The cells in order: name, type, inputs, (C, H, W) output and pruning facts."""
    return {"input_shape": list(network.input_shape), "cells": [
        {"name": cell.name, "type": cell.type_name, "inputs": list(network.inputs[cell.name]),
         "output_shape": list(cell.output_shape), "pruning": pruning_facts(cell)}
        for cell in network.cells]}


def write_npz(network, out, _run):
    arrays = {f"{cell.name}.{suffix}": array
              for cell in network.cells for suffix, array in cell_tensors(cell).items()}
    arrays["network"] = np.array(json.dumps(network_description(network)))
    with atomic_open(out, "wb") as handle:
        np.savez(handle, **arrays)
    return f"wrote {out} ({len(arrays) - 1} arrays, masked weights as exact zeros)"
