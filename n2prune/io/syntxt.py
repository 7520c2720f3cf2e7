"""N2D2's text weight files (``DeepNet::exportNetworkFreeParameters``), both ways.

For a Conv cell ``c``: ``c_weights.syntxt`` holds one line per output; on it,
for every *connected* input channel (all inputs in order), the KH x KW kernel
with x fastest (OCHW). ``c_biases.syntxt`` holds one bias per line and is only
written when the cell has biases. Fc: one line per output, the inputs'
flattened (c, y, x) weights in input order. BatchNorm: ``_scales``,
``_biases``, ``_means``, ``_variances``, one value per line. Import is as
strict as N2D2's: a file with too few or too many values is an error.
"""

from pathlib import Path

import numpy as np

from n2prune.cells import BatchNorm, WeightCell
from n2prune.errors import UserError
from n2prune.io.atomic import atomic_write_text

_FLOAT = "{:.9g}".format  # 9 significant digits round-trip float32 exactly


def _fmt(values):
    # Python floats (tolist) format about 3x faster than numpy scalars, same text.
    return " ".join(map(_FLOAT, np.asarray(values).ravel().tolist()))


def _connected(cell, k):
    """(nb_outputs, C_k) booleans: which kernels of Conv input ``k`` exist."""
    mask = cell.connections[k].mask
    if mask is None:
        return np.ones(cell.weights[k].value.shape[:2], dtype=bool)
    return mask[:, :, 0, 0].astype(bool)


def weight_lines(cell, tensors=None):
    """The lines of ``<cell>_weights.syntxt`` (of ``tensors``, default the weights)."""
    tensors = tensors if tensors is not None else [p.value for p in cell.weights]
    keeps = [_connected(cell, k) if w.ndim == 4 else None for k, w in enumerate(tensors)]
    lines = []
    for o in range(cell.nb_outputs):
        row = [w[o] if keep is None else w[o, keep[o]].ravel() for w, keep in zip(tensors, keeps)]
        lines.append(_fmt(np.concatenate(row)))
    return lines


def _parse_numbers(path, expected):
    """The ``expected`` float32-range numbers of a text file, or a one-line error."""
    try:
        tokens = Path(path).read_text().split()
    except FileNotFoundError:
        raise UserError(f"{path}: missing weights file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a weights file") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError: not a text file
        raise UserError(f"{path}: unreadable weights file ({type(exc).__name__})") from None
    if len(tokens) != expected:
        raise UserError(f"{path}: expected {expected} values, found {len(tokens)} "
                        "(was it exported from another model?)")
    try:
        numbers = np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_number(t))
        raise UserError(f"{path}: not a list of numbers (found {bad[:20]!r})") from None
    # float32 is what the cells hold: 1e39 would become inf on assignment.
    bad = np.flatnonzero(~(np.abs(numbers) <= np.finfo(np.float32).max))  # NaN compares False
    if bad.size:
        raise UserError(f"{path}: value {bad[0] + 1} of {expected} is {tokens[bad[0]][:20]} "
                        "(NaN, inf or beyond float32); take the weights from a run that did not diverge")
    return numbers


def _is_number(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


def _set_weights(cell, numbers):
    pos = 0
    for o in range(cell.nb_outputs):
        for k, param in enumerate(cell.weights):
            w = param.value
            if w.ndim == 4:
                keep = _connected(cell, k)[o]
                size = int(keep.sum()) * w.shape[2] * w.shape[3]
                w[o, keep] = numbers[pos:pos + size].reshape(-1, w.shape[2], w.shape[3])
            else:
                size = w.shape[1]
                w[o] = numbers[pos:pos + size]
            pos += size
    for param in cell.weights:
        param.changed()


def _weight_count(cell):
    total = 0
    for k, param in enumerate(cell.weights):
        w = param.value
        total += int(_connected(cell, k).sum()) * w.shape[2] * w.shape[3] if w.ndim == 4 else w.size
    return total


BATCHNORM_FILES = ("scales", "biases", "means", "variances")


def mask_lines(quantizer, nb_tensors):
    """``<cell>_masks.syntxt``: for each input tensor, one line of 0/1 per output.

    Conv: the C_k x KH x KW mask of an output with x fastest, then y, then the
    channel (unconnected channels included); Fc: the C*H*W inputs of tensor k.
    """
    lines = []
    for k in range(nb_tensors):
        mask = quantizer.get_pruned_masks(k)
        lines.extend(" ".join(str(int(v)) for v in row.ravel()) for row in mask)
    return lines


def _write_quantizer(cell, folder):
    quantizer = cell.quantizer
    atomic_write_text(folder / f"{cell.file_stem}_masks.syntxt",
                      "\n".join(mask_lines(quantizer, len(cell.weights))) + "\n")
    pruned = [quantizer.get_quantized_weights(k) for k in range(len(cell.weights))]
    atomic_write_text(folder / f"{cell.file_stem}_quant_weights.syntxt",
                      "\n".join(weight_lines(cell, pruned)) + "\n")


def _read_masks(cell, folder):
    """Every input tensor's mask from ``<cell>_masks.syntxt`` (N2D2 reads only the first).

    Returns False when the file is absent: the caller then computes masks from
    the imported weights.
    """
    path = folder / f"{cell.file_stem}_masks.syntxt"
    if not path.is_file():
        return False
    shapes = [p.value.shape for p in cell.weights]
    numbers = _parse_numbers(path, sum(int(np.prod(s)) for s in shapes))
    if not np.isin(numbers, (0.0, 1.0)).all():
        raise UserError(f"{path}: a mask holds only 0 and 1")
    masks, pos = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        masks.append(numbers[pos:pos + size].reshape(shape).astype(np.uint8))
        pos += size
    cell.quantizer.set_masks(masks)
    return True


def _batchnorm_arrays(cell):
    return {"scales": cell.scale.value, "biases": cell.bias.value,
            "means": cell.mean, "variances": cell.variance}


def export_cell(cell, folder):
    folder = Path(folder)
    if isinstance(cell, BatchNorm):
        for name, array in _batchnorm_arrays(cell).items():
            atomic_write_text(folder / f"{cell.file_stem}_{name}.syntxt", "\n".join(_fmt([v]) for v in array) + "\n")
        return
    if not isinstance(cell, WeightCell):
        return
    atomic_write_text(folder / f"{cell.file_stem}_weights.syntxt", "\n".join(weight_lines(cell)) + "\n")
    if getattr(cell, "quantizer", None) is not None:
        _write_quantizer(cell, folder)
    if cell.bias is not None:
        atomic_write_text(folder / f"{cell.file_stem}_biases.syntxt",
                          "\n".join(_fmt([b]) for b in cell.bias.value) + "\n")


def import_cell(cell, folder):
    """Read ``cell``'s files; True when they carried its pruning masks."""
    folder = Path(folder)
    if isinstance(cell, BatchNorm):
        for name, array in _batchnorm_arrays(cell).items():
            array[...] = _parse_numbers(folder / f"{cell.file_stem}_{name}.syntxt", array.size)
        return False
    if not isinstance(cell, WeightCell):
        return False
    _set_weights(cell, _parse_numbers(folder / f"{cell.file_stem}_weights.syntxt", _weight_count(cell)))
    if cell.bias is not None:
        cell.bias.value[...] = _parse_numbers(folder / f"{cell.file_stem}_biases.syntxt", cell.bias.value.size)
        cell.bias.changed()
    return getattr(cell, "quantizer", None) is not None and _read_masks(cell, folder)


def export_network(network, folder):
    """Write every cell's N2D2 files into ``folder`` (created if needed)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    for cell in network.cells:
        export_cell(cell, folder)


def import_network(network, folder):
    """Read every cell's N2D2 files from ``folder`` into ``network``.

    Returns the names of the pruned cells whose masks were in the files.
    """
    if not Path(folder).is_dir():
        raise UserError(f"{folder}: no such weights folder")
    return [cell.name for cell in network.cells if import_cell(cell, folder)]
