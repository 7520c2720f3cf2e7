"""The JSON ``meta`` of a snapshot and its epoch order, checked before use.

``meta`` holds the run state (``loop.RunState``: counters, best validation
accuracy, timing) and the state of both random generators (PCG64, as
``numpy.random.default_rng``). A damaged value would otherwise surface as a
``TypeError`` deep in the loop, or as numpy's ``bit_generator.state`` setter
raising ``ValueError``, ``TypeError`` or ``KeyError``.
"""

import json
import math

import numpy as np

from n2prune.errors import UserError

RNG_KEYS = ("data_rng", "cell_rng")
STATE_COUNTS = ("epoch", "batch", "step", "samples")


def read_meta(text, path):
    """The snapshot's ``meta`` dict from its 0-d string array ``text``."""
    if text is None:
        raise UserError(f"{path}: the snapshot has no meta (run state)")
    if np.shape(text) != () or np.asarray(text).dtype.kind != "U":
        raise UserError(f"{path}: the snapshot's meta is not one JSON string")
    try:
        meta = json.loads(str(text))
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{path}: the snapshot's meta is not valid JSON ({_first_line(exc)})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: the snapshot's meta is not a JSON object")
    missing = [k for k in ("state", *RNG_KEYS) if k not in meta]
    if missing:
        raise UserError(f"{path}: the snapshot's meta lacks {', '.join(missing)}")
    _check_state(meta["state"], path)
    for key in RNG_KEYS:
        _check_rng(meta[key], key, path)
    return meta


def _first_line(exc, limit=100):
    text = " ".join(str(exc).split())
    return text[:limit]


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _check_state(state, path):
    """The keys ``RunState.from_meta`` reads, each of the type the loop computes with."""
    if not isinstance(state, dict):
        raise UserError(f"{path}: the snapshot's run state is not a JSON object")
    for key in STATE_COUNTS:
        if key in state and not (_is_int(state[key]) and state[key] >= 0):
            raise UserError(f"{path}: the snapshot's {key} must be a whole number >= 0, "
                            f"found {_shown(state[key])}")
    checks = {"seconds": _is_number, "best_val": _is_number, "best_epoch": _is_int}
    for key, ok in checks.items():
        value = state.get(key)
        if value is not None and not ok(value):
            raise UserError(f"{path}: the snapshot's {key} must be a number, found {_shown(value)}")


def _check_rng(state, key, path):
    """A state the run's generators accept: tried on a scratch PCG64."""
    try:
        np.random.PCG64(0).state = state
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise UserError(f"{path}: the snapshot's {key} is not a random generator state "
                        f"({_first_line(exc)})") from None


def _shown(value, limit=40):
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_epoch_order(order, epoch_size, path):
    """``order``, if saved, is a permutation of ``range(epoch_size)``."""
    if order is None:
        return
    if order.ndim != 1 or order.dtype.kind not in "iu":
        raise UserError(f"{path}: epoch_order must be a list of whole numbers")
    if epoch_size is not None and order.size != epoch_size:
        raise UserError(f"{path}: epoch_order has {order.size} entries, the database "
                        f"{epoch_size} learn images")
    if not np.array_equal(np.sort(order), np.arange(order.size)):
        raise UserError(f"{path}: epoch_order is not a permutation of 0..{order.size - 1}")
