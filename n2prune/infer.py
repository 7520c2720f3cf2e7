"""``n2prune infer``: classify image files, ``.npy`` arrays or IDX files with a trained model.

Every input goes the way ``n2prune test`` takes the test partition: the
``[sp]`` transformations that apply to "test" (cached ones, then on-the-fly
ones), the division by 255 of data still 8-bit, then the network in
inference mode. The probabilities are the metric target's outputs when that
cell is a Softmax, else the softmax of its scores.
"""

import json
import statistics
import time
from pathlib import Path

import numpy as np

from n2prune.cells.softmax import Softmax
from n2prune.data.decode import IMAGE_EXTENSIONS, read_image
from n2prune.data.idx import read_idx
from n2prune.data.provider import shapes_through
from n2prune.errors import DataError, ShapeError, UserError

PART = "test"
# A 3-D array whose last axis is at most this long is one (H, W, C) image
# (grey, BGR or BGRA); a longer last axis makes it a stack (N, H, W).
MAX_CHANNELS = 4


def _pixels_or_values(array, path):
    """uint8 pixels as they are (integers in 0..255 become uint8: an int64 array of
    pixels means pixels), floats as float32 values taken as they are."""
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    if array.dtype.kind not in "iu":
        raise DataError(f"{path}: {array.dtype} data; expected pixels (0..255) or floats")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise DataError(f"{path}: integers in {array.min()}..{array.max()}; pixels are 0..255 "
                        "(give floats for other values)")
    return array.astype(np.uint8, copy=False)


def _as_images(array, path):
    """``array`` as a stack (N, H, W) or (N, H, W, C); a DataError if it is no image."""
    array = _pixels_or_values(array, path)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] <= MAX_CHANNELS):
        return array[np.newaxis]
    if array.ndim in (3, 4) and all(array.shape):
        return array
    raise DataError(f"{path}: array of shape {array.shape}; expected one image HxW or HxWxC, "
                    "or a stack NxHxW or NxHxWxC")


def read_inputs(path):
    """``(images, names)``: the stack of images in the file ``path`` and a name for each."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise DataError(f"{path}: not a readable .npy array ({error})") from None
    elif suffix in IMAGE_EXTENSIONS:
        array = read_image(path)
    else:  # the IDX reader checks the magic number and names the file if it is not one
        array = read_idx(path)
    images = _as_images(array, path)
    if len(images) == 1:
        return images, [str(path)]
    return images, [f"{path}[{k}]" for k in range(len(images))]


def _describe(shape):
    """``WxH with C channel(s)`` of an (H, W[, C]) shape."""
    channels = shape[2] if len(shape) > 2 else 1
    return f"{shape[1]}x{shape[0]} with {channels} channel(s)"


def check_size(provider, images, path):
    """A ShapeError naming ``path`` when its images do not come out as ``[sp]`` expects."""
    if provider.channels:  # channel pipelines: the provider checks their result itself
        return
    shapes = shapes_through(provider.steps(PART), images.shape[1:])
    if shapes[-1] != provider.size:
        size = provider.size
        after = f" ({_describe(shapes[-1])} after the test transformations)" \
            if len(shapes) > 1 else ""
        fixes = []
        if shapes[-1][:2] != size[:2]:
            fixes.append("a Rescale or PadCrop transformation")
        if shapes[-1][2] != size[2]:
            fixes.append("a ChannelExtraction or ColorSpace transformation")
        raise ShapeError(f"{path}: {_describe(shapes[0])}{after} but [sp] expects "
                         f"{_describe(size)}; {' and '.join(fixes)} in the INI file "
                         "(or SizeX/SizeY/NbChannels) would fix it")


def stimuli(model, images, path):
    """float32 (C, H, W, N) batch of ``images`` as the test partition would give it."""
    check_size(model.provider, images, path)
    rng = np.random.default_rng(0)  # as evaluate(): random test transformations repeat
    try:
        cached = model.provider.prepare(images, PART)
        return model.provider.batch(cached, np.arange(len(images)), rng, PART)
    except (ShapeError, DataError) as error:
        raise type(error)(f"{path}: {error}") from None


def probabilities(network, scores):
    """(N, classes) probabilities of the (C, 1, 1, N) output ``scores`` of the metric target."""
    cell = network.cell(network.metric_target.cell) if network.metric_target else network.cells[-1]
    if scores.shape[1:3] != (1, 1):
        raise UserError(f"[{cell.name}] outputs {'x'.join(map(str, scores.shape[:3]))} per "
                        "image; infer ranks classes of a 1x1 output")
    values = scores.reshape(scores.shape[0], -1).T.astype(np.float64)
    if isinstance(cell, Softmax):
        return values
    values = np.exp(values - values.max(axis=1, keepdims=True))
    return values / values.sum(axis=1, keepdims=True)


def top_classes(probs, k, names):
    """Per row, the ``k`` most probable ``{"class", "name", "probability"}``, best first."""
    rows = []
    for row in probs:
        best = np.argsort(-row, kind="stable")[:k]
        rows.append([{"class": int(c), "name": names[c] if c < len(names) else str(c),
                      "probability": float(row[c])} for c in best])
    return rows


def latency(network, batch, repeat):
    """Median seconds of ``repeat`` forward passes of the first image alone (after a warm-up)."""
    one = np.ascontiguousarray(batch[..., :1])
    network.forward(one, train=False)  # compiles the kernels, fills the caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        network.forward(one, train=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def infer(model, paths, k, repeat):
    """``{"inputs": [{"input", "top"}], "latency_ms", "repeat"}`` for the input files ``paths``."""
    network = model.network
    names = model.database.label_names if model.database else ()
    results, seconds = [], None
    for path in paths:
        images, labels = read_inputs(path)
        batch = stimuli(model, images, path)
        probs = probabilities(network, network.forward(batch, train=False))
        for label, top in zip(labels, top_classes(probs, k, names)):
            results.append({"input": label, "top": top})
        if seconds is None:
            seconds = latency(network, batch, repeat)
    return {"inputs": results, "latency_ms": seconds * 1e3, "repeat": repeat}


def format_report(report):
    """Plain text: one line per input, then the latency."""
    lines = []
    for item in report["inputs"]:
        top = ", ".join(f"{t['name']} {t['probability']:.3f}" for t in item["top"])
        lines.append(f"{item['input']}: {top}")
    lines.append(f"batch-1 latency {report['latency_ms']:.3f} ms "
                 f"(median of {report['repeat']} calls)")
    return "\n".join(lines)


def run_infer(args, model):
    """Print the report of ``args.inputs`` (``--json``: as JSON); returns the exit code."""
    report = infer(model, args.inputs, args.top, args.repeat)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
