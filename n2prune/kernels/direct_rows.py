"""Inner loops of the direct convolutions on batch-innermost rows.

In the (C, H, W, N) layout (see ``direct_conv``) one image row of one
channel is a contiguous run of ``W*N`` floats; the kernels see each array
flat and address a row by its first index. Every direct kernel reduces to
"row += weight * shifted row" (forward, input gradient) or "dot(row,
shifted row)" (weight gradient), where a kernel tap shifts the row by
``off`` columns and, for stride ``s``, reads every ``s``-th column.

Three things keep these loops at packed-FMA speed (measured in the issue #11
prototype):

- Kept weights go four at a time over one output row (5 loads + 1 store per
  4 FMAs instead of 2 + 1 per FMA).
- Loops index flat arrays with **unsigned** indexes (``x[b0 + q]``, all
  uint64). A signed computed index keeps numba's negative-index wrap-around
  check, which compiled to scalar FMAs (10x slower in the prototype); slice
  views avoid that too, but each view costs two calls to the atomic
  NRT_incref/NRT_decref, which with a few views per kept weight took more
  time than the arithmetic (conv 16->120 on 5x5: 3.1 ms with views, 2.2
  flat, contended machine). The row drivers allocate nothing and are
  compiled with ``_nrt=False``, which drops the remaining reference counting
  of their array arguments from the loops.
- ``fastmath=True`` lets LLVM reassociate the dot products into vector lanes.

numba's ``cache=True`` does not track callees in other files: the cached
kernels of ``direct_conv`` and ``direct_pool`` keep the old code of these
loops until their own file changes (delete ``__pycache__/direct_*.nb?``
after editing this one; timings taken without that were of stale code).

Padding is never materialised: each tap only touches the output columns
``[lo, hi)`` whose input column is inside the image. Four taps share the
intersection of their spans; the few columns outside it are done one tap at
a time.
"""

import numba

from n2prune.kernels.im2col import _valid_span

u64 = numba.uint64


@numba.njit(fastmath=True, cache=True, inline="always")
def _axpy4(y, yb, x, b0, b1, b2, b3, w0, w1, w2, w3, length):
    yb, b0, b1, b2, b3 = u64(yb), u64(b0), u64(b1), u64(b2), u64(b3)
    for q in range(u64(length)):
        y[yb + q] += w0 * x[b0 + q] + w1 * x[b1 + q] + w2 * x[b2 + q] + w3 * x[b3 + q]


@numba.njit(fastmath=True, cache=True, inline="always")
def _axpy1(y, yb, x, b0, w0, length):
    yb, b0 = u64(yb), u64(b0)
    for q in range(u64(length)):
        y[yb + q] += w0 * x[b0 + q]


@numba.njit(fastmath=True, cache=True, inline="always")
def _dot4(g, gb, x, b0, b1, b2, b3, length):
    # Four sums in one pass: g is loaded once for four kept weights.
    gb, b0, b1, b2, b3 = u64(gb), u64(b0), u64(b1), u64(b2), u64(b3)
    s0 = s1 = s2 = s3 = g.dtype.type(0)
    for q in range(u64(length)):
        gq = g[gb + q]
        s0 += gq * x[b0 + q]
        s1 += gq * x[b1 + q]
        s2 += gq * x[b2 + q]
        s3 += gq * x[b3 + q]
    return s0, s1, s2, s3


@numba.njit(fastmath=True, cache=True, inline="always")
def _dot1(g, gb, x, b0, length):
    gb, b0 = u64(gb), u64(b0)
    s0 = g.dtype.type(0)
    for q in range(u64(length)):
        s0 += g[gb + q] * x[b0 + q]
    return s0


@numba.njit(fastmath=True, cache=True, inline="always")
def gather4(out, ob, x, b0, b1, b2, b3, o0, o1, o2, o3, w0, w1, w2, w3, lo, hi, s, n):
    """``out[ob + j] += sum_i w_i * x[b_i + j*s + o_i]`` for columns j in ``[lo, hi)``.

    A column is ``n`` floats (the batch); with ``s == 1`` the whole span is
    one contiguous run, otherwise one run of ``n`` per column.
    """
    if s == 1:
        _axpy4(out, ob + lo * n, x, b0 + (lo + o0) * n, b1 + (lo + o1) * n,
               b2 + (lo + o2) * n, b3 + (lo + o3) * n, w0, w1, w2, w3, (hi - lo) * n)
        return
    for j in range(lo, hi):
        c = j * s
        _axpy4(out, ob + j * n, x, b0 + (c + o0) * n, b1 + (c + o1) * n, b2 + (c + o2) * n,
               b3 + (c + o3) * n, w0, w1, w2, w3, n)


@numba.njit(fastmath=True, cache=True, inline="always")
def gather1(out, ob, x, b0, o0, w0, lo, hi, s, n):
    """``out[ob + j] += w0 * x[b0 + j*s + o0]`` for columns j in ``[lo, hi)``."""
    if s == 1:
        _axpy1(out, ob + lo * n, x, b0 + (lo + o0) * n, w0, max(0, hi - lo) * n)
        return
    for j in range(lo, hi):
        _axpy1(out, ob + j * n, x, b0 + (j * s + o0) * n, w0, n)


@numba.njit(fastmath=True, cache=True, inline="always")
def dot4(g, gb, x, b0, b1, b2, b3, o0, o1, o2, o3, lo, hi, s, n):
    """``sum_j g[gb + j] . x[b_i + j*s + o_i]`` over columns ``[lo, hi)``, i = 0..3."""
    if s == 1:
        return _dot4(g, gb + lo * n, x, b0 + (lo + o0) * n, b1 + (lo + o1) * n,
                     b2 + (lo + o2) * n, b3 + (lo + o3) * n, (hi - lo) * n)
    t0 = t1 = t2 = t3 = g.dtype.type(0)
    for j in range(lo, hi):
        c = j * s
        s0, s1, s2, s3 = _dot4(g, gb + j * n, x, b0 + (c + o0) * n, b1 + (c + o1) * n,
                               b2 + (c + o2) * n, b3 + (c + o3) * n, n)
        t0, t1, t2, t3 = t0 + s0, t1 + s1, t2 + s2, t3 + s3
    return t0, t1, t2, t3


@numba.njit(fastmath=True, cache=True, inline="always")
def dot1(g, gb, x, b0, o0, lo, hi, s, n):
    """``sum_j g[gb + j] . x[b0 + j*s + o0]`` over columns ``[lo, hi)``."""
    if s == 1:
        return _dot1(g, gb + lo * n, x, b0 + (lo + o0) * n, max(0, hi - lo) * n)
    t0 = g.dtype.type(0)
    for j in range(lo, hi):
        t0 += _dot1(g, gb + j * n, x, b0 + (j * s + o0) * n, n)
    return t0


@numba.njit(fastmath=True, cache=True, inline="always")
def scatter1(out, ob, x, b0, o0, w0, lo, hi, s, n):
    """``out[ob + j*s + o0] += w0 * x[b0 + j]`` for columns j in ``[lo, hi)``:
    the input gradient of one tap at stride ``s > 1``, inside the caller's
    own output row (no other item writes it)."""
    for j in range(lo, hi):
        _axpy1(out, ob + (j * s + o0) * n, x, b0 + j * n, w0, n)


@numba.njit(cache=True, inline="always")
def tap(rows, taps, keys, p, g):
    """Entry p's source row (flat index of its first float), column offset and
    output span ``[lo, hi)``, for the geometry ``g`` of ``gather_run``."""
    row0, row_step, off0, off_step, s, size, out_size, n, plane = g
    off = off0 + off_step * keys[p]
    lo, hi = _valid_span(off, s, size, out_size)
    return rows[p] * plane + (row0 + row_step * taps[p]) * size * n, off, lo, hi


@numba.njit(cache=True, inline="always")
def tap4(rows, taps, keys, p, g):
    """Entries ``p .. p+3`` as ``tap`` gives them (their bases, offsets, ``lo``
    and ``hi`` as four 4-tuples), then the span ``[lo, hi)`` all four cover:
    when they share no column, an empty span at the end of all four, so that
    each one's columns lie before it."""
    b0, o0, lo0, hi0 = tap(rows, taps, keys, p, g)
    b1, o1, lo1, hi1 = tap(rows, taps, keys, p + 1, g)
    b2, o2, lo2, hi2 = tap(rows, taps, keys, p + 2, g)
    b3, o3, lo3, hi3 = tap(rows, taps, keys, p + 3, g)
    lo, hi = max(max(lo0, lo1), max(lo2, lo3)), min(min(hi0, hi1), min(hi2, hi3))
    if lo >= hi:
        lo = hi = max(max(hi0, hi1), max(hi2, hi3))
    return (b0, b1, b2, b3), (o0, o1, o2, o3), (lo0, lo1, lo2, lo3), (hi0, hi1, hi2, hi3), lo, hi


@numba.njit(fastmath=True, cache=True, _nrt=False)
def gather_run(out, ob, x, rows, taps, keys, vals, p0, p1, g):
    """The output row at ``out[ob:]`` (``out_size*n``) += the taps of entries
    ``[p0, p1)``.

    ``g = (row0, row_step, off0, off_step, s, size, out_size, n, plane)``:
    entry p reads row ``row0 + row_step*taps[p]`` of channel ``rows[p]`` of
    ``x`` (channels ``plane`` floats apart, rows ``size*n``), shifted by
    ``off0 + off_step*keys[p]`` columns, every ``s``-th column. Every entry's
    row must exist (the caller picks a run of valid ky).
    """
    s, n = g[4], g[7]
    p = p0
    while p + 4 <= p1:
        ((b0, b1, b2, b3), (o0, o1, o2, o3), (lo0, lo1, lo2, lo3), (hi0, hi1, hi2, hi3),
         lo, hi) = tap4(rows, taps, keys, p, g)
        w0, w1, w2, w3 = vals[p], vals[p + 1], vals[p + 2], vals[p + 3]
        if lo < hi:
            gather4(out, ob, x, b0, b1, b2, b3, o0, o1, o2, o3, w0, w1, w2, w3, lo, hi, s, n)
        # Columns outside the shared span (only near padded borders).
        gather1(out, ob, x, b0, o0, w0, lo0, min(lo, hi0), s, n)
        gather1(out, ob, x, b0, o0, w0, max(hi, lo0), hi0, s, n)
        gather1(out, ob, x, b1, o1, w1, lo1, min(lo, hi1), s, n)
        gather1(out, ob, x, b1, o1, w1, max(hi, lo1), hi1, s, n)
        gather1(out, ob, x, b2, o2, w2, lo2, min(lo, hi2), s, n)
        gather1(out, ob, x, b2, o2, w2, max(hi, lo2), hi2, s, n)
        gather1(out, ob, x, b3, o3, w3, lo3, min(lo, hi3), s, n)
        gather1(out, ob, x, b3, o3, w3, max(hi, lo3), hi3, s, n)
        p += 4
    while p < p1:
        b0, o0, lo0, hi0 = tap(rows, taps, keys, p, g)
        gather1(out, ob, x, b0, o0, vals[p], lo0, hi0, s, n)
        p += 1


@numba.njit(fastmath=True, cache=True, _nrt=False)
def dot_run(dy, gb, x, rows, taps, keys, dw, p0, p1, g):
    """``dw[p] += dy[gb:] . (tap of entry p)`` for entries ``[p0, p1)``: the
    weight gradient of one output row, taps and ``g`` as ``gather_run``."""
    s, n = g[4], g[7]
    p = p0
    while p + 4 <= p1:
        ((b0, b1, b2, b3), (o0, o1, o2, o3), (lo0, lo1, lo2, lo3), (hi0, hi1, hi2, hi3),
         lo, hi) = tap4(rows, taps, keys, p, g)
        if lo < hi:
            s0, s1, s2, s3 = dot4(dy, gb, x, b0, b1, b2, b3, o0, o1, o2, o3, lo, hi, s, n)
            dw[p] += s0
            dw[p + 1] += s1
            dw[p + 2] += s2
            dw[p + 3] += s3
        dw[p] += (dot1(dy, gb, x, b0, o0, lo0, min(lo, hi0), s, n)
                  + dot1(dy, gb, x, b0, o0, max(hi, lo0), hi0, s, n))
        dw[p + 1] += (dot1(dy, gb, x, b1, o1, lo1, min(lo, hi1), s, n)
                      + dot1(dy, gb, x, b1, o1, max(hi, lo1), hi1, s, n))
        dw[p + 2] += (dot1(dy, gb, x, b2, o2, lo2, min(lo, hi2), s, n)
                      + dot1(dy, gb, x, b2, o2, max(hi, lo2), hi2, s, n))
        dw[p + 3] += (dot1(dy, gb, x, b3, o3, lo3, min(lo, hi3), s, n)
                      + dot1(dy, gb, x, b3, o3, max(hi, lo3), hi3, s, n))
        p += 4
    while p < p1:
        b0, o0, lo0, hi0 = tap(rows, taps, keys, p, g)
        dw[p] += dot1(dy, gb, x, b0, o0, lo0, hi0, s, n)
        p += 1
