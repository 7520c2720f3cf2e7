"""The machinery every mask pattern shares: registry, parameters, checks, ranking.

``patterns`` defines the patterns themselves with ``@register_pattern``;
this module holds what they have in common (kept counts, stable top-k along
an axis, the inputs-innermost view of a conv, violation messages), so each
pattern reads as its own rule. Layout and conventions: see ``patterns``.
"""

import functools
import math
import numbers
from dataclasses import dataclass

import numpy as np

from n2prune.errors import SettingError
from n2prune.registry import Registry

PATTERNS = Registry("QWeight.Pattern")

# check_mask reports this many violations of one kind, then "... and N more".
MAX_LINES = 10


@dataclass(frozen=True)
class PatternParams:
    """Pattern knobs (a pattern ignores the others): ``n``, ``m`` for NM and NMFlat,
    ``bank_size``, ``bank_interleave`` for Bank, ``block_outputs`` (along O) and
    ``block_inputs`` (along I·kh·kw) for Block. These defaults are the
    ``QWeight.N``... keys' (``prune_keys``)."""

    n: int = 2
    m: int = 4
    bank_size: int = 64
    bank_interleave: int = 1
    block_outputs: int = 4
    block_inputs: int = 1


class PatternError(SettingError):
    """Params that cannot work on a weight shape, NaN scores, a bad sparsity.

    ``setting``: the ``PatternParams`` field to blame (``bank_size``), or None."""

    def __init__(self, message, setting=None):
        super().__init__(setting, message)


class Pattern:
    """One registered pattern: ``make(scores, sparsity, params) -> mask``,
    ``check(mask, params) -> lines``, ``fits(shape, params) -> (field, why)``
    when params cannot work on shape, else None. ``fixed_ratio``: the
    params, not the sparsity, fix the kept count (N:M). Its ``__doc__`` is
    the pattern function's (what the docs list)."""

    def __init__(self, make, check, fits, fixed_ratio):
        self.make, self.check, self.fits, self.fixed_ratio = make, check, fits, fixed_ratio
        self.__doc__ = make.__doc__


def register_pattern(name, check, fits=None, fixed_ratio=False):
    """Decorator: make ``fn(scores, sparsity, params)`` the pattern ``name``.

    The registered (and returned) function raises PatternError for NaN scores,
    a sparsity outside [0, 1] or what ``validate`` rejects; ``fn`` sees float64.
    """
    def decorate(fn):
        @functools.wraps(fn)
        def make(scores, sparsity, params=PatternParams()):
            scores = np.asarray(scores, dtype=np.float64)
            if np.isnan(scores).any():
                raise PatternError("scores hold NaN")
            if not 0 <= sparsity <= 1:
                raise PatternError(f"sparsity {sparsity} is not in [0, 1]")
            validate(name, scores.shape, params)
            return fn(scores, float(sparsity), params)
        PATTERNS.add(name, Pattern(make, check, fits, fixed_ratio))
        return make
    return decorate


def kept_count(n, sparsity):
    """How many of ``n`` elements survive ``sparsity``: ⌊(1−s)·n⌋ as TI and Moffett keep.

    s·n is rounded to 6 decimals first, so s = 0.9, n = 10 keeps 1 (0.9*10 = 9.000000000000002).
    """
    return n - min(n, math.ceil(round(sparsity * n, 6)))


def make_mask(name, scores, sparsity, params=PatternParams()):
    """The uint8 mask (scores' shape, 1 = kept) of pattern ``name``; see each pattern."""
    return _lookup(name).make(scores, sparsity, params)


def check_mask(name, mask, params=PatternParams()):
    """[] if ``mask`` follows pattern ``name``, else one line per violation (the first
    ``MAX_LINES``, then "... and N more"); params unfit for the shape give one line."""
    pattern = _lookup(name)
    mask = np.asarray(mask)
    if problem := _problem(pattern, mask.shape, params):
        return [problem[1]]
    bad = np.flatnonzero((mask != 0) & (mask != 1))
    if bad.size:
        return describe_violations(bad, lambda k: f"mask{index_of(k, mask.shape)} = {mask.flat[k]}, not 0/1")
    return pattern.check(mask.astype(np.int64), params)


def validate(name, shape, params=PatternParams()):
    """Raise PatternError (a ValueError; one line, blaming the field) if ``name``
    cannot work on this ``shape``."""
    if problem := _problem(_lookup(name), tuple(shape), params):
        field, why = problem
        raise PatternError(f"pattern {name}: {why}", field)


def _lookup(name):
    return PATTERNS.lookup(name)


def _problem(pattern, shape, params):
    """``(field or None, why)`` ``pattern`` cannot work on ``shape`` with ``params``, or None."""
    if len(shape) not in (2, 4) or min(shape) < 1:
        return None, f"weight shape {shape} is not (O, I) or (O, I, kh, kw) with sizes >= 1"
    return pattern.fits(shape, params) if pattern.fits else None


def int_problem(params, fields, minimum):
    """``(field, message)`` of the first of ``fields`` that is not an integer >= ``minimum``."""
    for field in fields:
        value = getattr(params, field)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
            return field, f"{field} must be an integer >= {minimum}, got {value!r}"
    return None


def describe_violations(bad, describe):
    """Lines ``describe(k)`` for the first MAX_LINES offending indices ``bad``."""
    lines = [describe(int(k)) for k in bad[:MAX_LINES]]
    if bad.size > MAX_LINES:
        lines.append(f"... and {bad.size - MAX_LINES} more")
    return lines


def index_of(flat_index, shape):
    return tuple(int(i) for i in np.unravel_index(flat_index, shape))


def keep_largest(scores, keep):
    """uint8 mask keeping the ``keep`` largest along the last axis of (..., L); ties: lower index.

    ``keep``: an int or an int array of shape ``scores.shape[:-1]``; one stable argsort for all.
    """
    order = np.argsort(-scores, axis=-1, kind="stable")
    ranks = np.empty(scores.shape, dtype=np.intp)
    positions = np.broadcast_to(np.arange(scores.shape[-1]), scores.shape)
    np.put_along_axis(ranks, order, positions, axis=-1)
    return (ranks < np.asarray(keep)[..., None]).astype(np.uint8)


def pad_last(a, multiple, value):
    """``a`` with its last axis padded by ``value`` up to a multiple of ``multiple``."""
    pad = -a.shape[-1] % multiple
    if pad == 0:
        return a
    return np.concatenate([a, np.full(a.shape[:-1] + (pad,), value, dtype=a.dtype)], axis=-1)


def inputs_last(a):
    """(R, I) with the input channel innermost: Fc as is, Conv as (O·kh·kw, I) rows.

    apex ASP and Moffett permute a conv so groups run along the true reduction axis.
    """
    if a.ndim == 2:
        return a
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def from_inputs_last(rows, shape):
    """Inverse of ``_inputs_last``: (R, I) back to ``shape``, C-contiguous."""
    if len(shape) == 2:
        return np.ascontiguousarray(rows.reshape(shape))
    o, i, kh, kw = shape
    return np.ascontiguousarray(rows.reshape(o, kh, kw, i).transpose(0, 3, 1, 2))


def row_name(row, shape):
    if len(shape) == 2:
        return f"output {row}"
    o, y, x = index_of(row, (shape[0], shape[2], shape[3]))
    return f"output {o} at kernel ({y}, {x})"
