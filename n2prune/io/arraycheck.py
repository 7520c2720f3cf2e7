"""Checks on arrays read from files, before any of them reaches a cell.

A weight that is NaN or inf makes every output NaN and the accuracy that of
the first class (0.084 on MNIST); a mask of 2s or a solver buffer of the wrong
shape fails much later, inside a training step. Each check raises a
``UserError`` that names the array, the file and what to do.
"""

import math

import numpy as np

from n2prune.errors import UserError

FLOAT_KINDS = "f"
INTEGER_KINDS = "biu"


def check_shape(value, shape, name, source):
    if np.shape(value) != tuple(shape):
        raise UserError(f"{source}: {name} has shape {np.shape(value)}, the model expects "
                        f"{tuple(shape)}; was it saved from another model?")


def check_floats(value, name, source, dtype=np.float32):
    """``value`` holds floating-point numbers that fit ``dtype`` (float32: |x| <= 3.4e38).

    Integers are refused: no writer of ours saves weights as integers, so an
    integer array is some other file's.
    """
    value = np.asarray(value)
    if value.dtype.kind not in FLOAT_KINDS:
        raise UserError(f"{source}: {name} holds {value.dtype} values, not floating-point numbers")
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(value) <= np.finfo(dtype).max)  # NaN compares False
    if bad.any():
        first = value.ravel()[np.flatnonzero(bad.ravel())[0]]
        raise UserError(f"{source}: {name} holds {int(bad.sum())} non-finite or "
                        f"out-of-range values (first: {first}); these weights cannot "
                        "be used: take them from a run that did not diverge")


def check_count(value, name, source, minimum=0):
    """``value`` is one whole number >= ``minimum`` (a counter saved as a 0-d array)."""
    value = np.asarray(value)
    if value.shape != () or value.dtype.kind not in INTEGER_KINDS + FLOAT_KINDS:
        raise UserError(f"{source}: {name} must be one number, found {value.dtype} {value.shape}")
    number = value.item()
    if not math.isfinite(number) or not float(number).is_integer() or number < minimum:
        raise UserError(f"{source}: {name} must be a whole number >= {minimum}, found {number}")


def check_mask(value, shape, name, source):
    check_shape(value, shape, name, source)
    if np.asarray(value).dtype.kind not in INTEGER_KINDS + FLOAT_KINDS or \
            not np.isin(value, (0, 1)).all():
        raise UserError(f"{source}: {name} must hold only 0 and 1")


def check_known(key, known, owner, source):
    if key not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise UserError(f"{source}: unexpected entry {key[:80]!r} for {owner} (known: {listed}); "
                        "was it saved from another model or version?")
