"""Inner loops of the direct convolutions on batch-innermost rows.

In the (C, H, W, N) layout (see ``direct_conv``) one image row of one
channel is a contiguous run of ``W*N`` floats. Every direct kernel reduces to
"row += weight * shifted row" (forward, input gradient) or "dot(row,
shifted row)" (weight gradient), where a kernel tap shifts the row by
``off`` columns and, for stride ``s``, reads every ``s``-th column.

Three things keep these loops at packed-FMA speed (measured in the issue #11
prototype):

- Kept weights go four at a time over one output row (5 loads + 1 store per
  4 FMAs instead of 2 + 1 per FMA).
- Loops index slice views from 0 (``out[q]``, ``a0[q]``): a computed index
  such as ``row[base + q]`` keeps numba's negative-index wrap-around check
  and compiled to scalar FMAs, 10x slower.
- ``fastmath=True`` lets LLVM reassociate the dot products into vector lanes.

Padding is never materialised: each tap only touches the output columns
``[lo, hi)`` whose input column is inside the image. Four taps share the
intersection of their spans; the few columns outside it are done one tap at
a time.
"""

import numba

from n2prune.kernels.im2col import _valid_span


@numba.njit(fastmath=True, cache=True)
def _axpy4(out, a0, a1, a2, a3, w0, w1, w2, w3):
    for q in range(out.shape[0]):
        out[q] += w0 * a0[q] + w1 * a1[q] + w2 * a2[q] + w3 * a3[q]


@numba.njit(fastmath=True, cache=True)
def _axpy1(out, a0, w0):
    for q in range(out.shape[0]):
        out[q] += w0 * a0[q]


@numba.njit(fastmath=True, cache=True)
def _dot4(g, a0, a1, a2, a3):
    # Four sums in one pass: g is loaded once for four kept weights.
    s0 = s1 = s2 = s3 = g.dtype.type(0)
    for q in range(g.shape[0]):
        gq = g[q]
        s0 += gq * a0[q]
        s1 += gq * a1[q]
        s2 += gq * a2[q]
        s3 += gq * a3[q]
    return s0, s1, s2, s3


@numba.njit(fastmath=True, cache=True)
def _dot1(g, a0):
    s0 = g.dtype.type(0)
    for q in range(g.shape[0]):
        s0 += g[q] * a0[q]
    return s0


@numba.njit(fastmath=True, cache=True)
def gather4(out, r0, r1, r2, r3, o0, o1, o2, o3, w0, w1, w2, w3, lo, hi, s, n):
    """``out[j] += sum_i w_i * r_i[j*s + o_i]`` for columns j in ``[lo, hi)``.

    A column is ``n`` floats (the batch); with ``s == 1`` the whole span is
    one contiguous run, otherwise one run of ``n`` per column.
    """
    if s == 1:
        _axpy4(out[lo * n:hi * n], r0[(lo + o0) * n:(hi + o0) * n],
               r1[(lo + o1) * n:(hi + o1) * n], r2[(lo + o2) * n:(hi + o2) * n],
               r3[(lo + o3) * n:(hi + o3) * n], w0, w1, w2, w3)
        return
    for j in range(lo, hi):
        b = j * s
        _axpy4(out[j * n:(j + 1) * n], r0[(b + o0) * n:(b + o0 + 1) * n],
               r1[(b + o1) * n:(b + o1 + 1) * n], r2[(b + o2) * n:(b + o2 + 1) * n],
               r3[(b + o3) * n:(b + o3 + 1) * n], w0, w1, w2, w3)


@numba.njit(fastmath=True, cache=True)
def gather1(out, r0, o0, w0, lo, hi, s, n):
    """``out[j] += w0 * r0[j*s + o0]`` for columns j in ``[lo, hi)``."""
    if s == 1:
        _axpy1(out[lo * n:hi * n], r0[(lo + o0) * n:(hi + o0) * n], w0)
        return
    for j in range(lo, hi):
        b = (j * s + o0) * n
        _axpy1(out[j * n:(j + 1) * n], r0[b:b + n], w0)


@numba.njit(fastmath=True, cache=True)
def dot4(g, r0, r1, r2, r3, o0, o1, o2, o3, lo, hi, s, n):
    """``sum_j g[j] . r_i[j*s + o_i]`` over columns ``[lo, hi)``, for i = 0..3."""
    if s == 1:
        return _dot4(g[lo * n:hi * n], r0[(lo + o0) * n:(hi + o0) * n],
                     r1[(lo + o1) * n:(hi + o1) * n], r2[(lo + o2) * n:(hi + o2) * n],
                     r3[(lo + o3) * n:(hi + o3) * n])
    t0 = t1 = t2 = t3 = g.dtype.type(0)
    for j in range(lo, hi):
        b = j * s
        s0, s1, s2, s3 = _dot4(g[j * n:(j + 1) * n], r0[(b + o0) * n:(b + o0 + 1) * n],
                               r1[(b + o1) * n:(b + o1 + 1) * n],
                               r2[(b + o2) * n:(b + o2 + 1) * n],
                               r3[(b + o3) * n:(b + o3 + 1) * n])
        t0, t1, t2, t3 = t0 + s0, t1 + s1, t2 + s2, t3 + s3
    return t0, t1, t2, t3


@numba.njit(fastmath=True, cache=True)
def dot1(g, r0, o0, lo, hi, s, n):
    """``sum_j g[j] . r0[j*s + o0]`` over columns ``[lo, hi)``."""
    if s == 1:
        return _dot1(g[lo * n:hi * n], r0[(lo + o0) * n:(hi + o0) * n])
    t0 = g.dtype.type(0)
    for j in range(lo, hi):
        b = (j * s + o0) * n
        t0 += _dot1(g[j * n:(j + 1) * n], r0[b:b + n])
    return t0


@numba.njit(cache=True, inline="always")
def tap(src, rows, taps, keys, p, row0, row_step, off0, off_step, s, size, out_size):
    """Entry p's source row, column offset and output span ``[lo, hi)``.

    The row is ``src[rows[p], row0 + row_step*taps[p]]`` (taps = ky), the
    offset ``off0 + off_step*keys[p]`` (keys = kx): the caller's geometry.
    """
    off = off0 + off_step * keys[p]
    lo, hi = _valid_span(off, s, size, out_size)
    return src[rows[p], row0 + row_step * taps[p]], off, lo, hi


@numba.njit(fastmath=True, cache=True)
def gather_run(out, src, rows, taps, keys, vals, p0, p1, row0, row_step, off0, off_step,
               s, size, n):
    """``out`` (one row of ``out_size*n``) += the taps of entries ``[p0, p1)``.

    Every entry's source row must exist (the caller picks a run of valid ky).
    """
    out_size = out.shape[0] // n
    p = p0
    while p + 4 <= p1:
        r0, o0, lo0, hi0 = tap(src, rows, taps, keys, p, row0, row_step, off0, off_step,
                               s, size, out_size)
        r1, o1, lo1, hi1 = tap(src, rows, taps, keys, p + 1, row0, row_step, off0,
                               off_step, s, size, out_size)
        r2, o2, lo2, hi2 = tap(src, rows, taps, keys, p + 2, row0, row_step, off0,
                               off_step, s, size, out_size)
        r3, o3, lo3, hi3 = tap(src, rows, taps, keys, p + 3, row0, row_step, off0,
                               off_step, s, size, out_size)
        w0, w1, w2, w3 = vals[p], vals[p + 1], vals[p + 2], vals[p + 3]
        lo, hi = max(max(lo0, lo1), max(lo2, lo3)), min(min(hi0, hi1), min(hi2, hi3))
        if lo < hi:
            gather4(out, r0, r1, r2, r3, o0, o1, o2, o3, w0, w1, w2, w3, lo, hi, s, n)
        else:
            lo = hi = max(max(hi0, hi1), max(hi2, hi3))
        # Columns outside the shared span (only near padded borders).
        gather1(out, r0, o0, w0, lo0, min(lo, hi0), s, n)
        gather1(out, r0, o0, w0, max(hi, lo0), hi0, s, n)
        gather1(out, r1, o1, w1, lo1, min(lo, hi1), s, n)
        gather1(out, r1, o1, w1, max(hi, lo1), hi1, s, n)
        gather1(out, r2, o2, w2, lo2, min(lo, hi2), s, n)
        gather1(out, r2, o2, w2, max(hi, lo2), hi2, s, n)
        gather1(out, r3, o3, w3, lo3, min(lo, hi3), s, n)
        gather1(out, r3, o3, w3, max(hi, lo3), hi3, s, n)
        p += 4
    while p < p1:
        r0, o0, lo0, hi0 = tap(src, rows, taps, keys, p, row0, row_step, off0, off_step,
                               s, size, out_size)
        gather1(out, r0, o0, vals[p], lo0, hi0, s, n)
        p += 1


@numba.njit(fastmath=True, cache=True)
def dot_run(g, src, rows, taps, keys, dw, p0, p1, row0, row_step, off0, off_step, s, size, n):
    """``dw[p] += g . (tap of entry p)`` for entries ``[p0, p1)``: the weight
    gradient of one output row ``g`` (``out_size*n``), taps as ``gather_run``."""
    out_size = g.shape[0] // n
    p = p0
    while p + 4 <= p1:
        r0, o0, lo0, hi0 = tap(src, rows, taps, keys, p, row0, row_step, off0, off_step,
                               s, size, out_size)
        r1, o1, lo1, hi1 = tap(src, rows, taps, keys, p + 1, row0, row_step, off0,
                               off_step, s, size, out_size)
        r2, o2, lo2, hi2 = tap(src, rows, taps, keys, p + 2, row0, row_step, off0,
                               off_step, s, size, out_size)
        r3, o3, lo3, hi3 = tap(src, rows, taps, keys, p + 3, row0, row_step, off0,
                               off_step, s, size, out_size)
        lo, hi = max(max(lo0, lo1), max(lo2, lo3)), min(min(hi0, hi1), min(hi2, hi3))
        if lo < hi:
            s0, s1, s2, s3 = dot4(g, r0, r1, r2, r3, o0, o1, o2, o3, lo, hi, s, n)
            dw[p] += s0
            dw[p + 1] += s1
            dw[p + 2] += s2
            dw[p + 3] += s3
        else:
            lo = hi = max(max(hi0, hi1), max(hi2, hi3))
        dw[p] += (dot1(g, r0, o0, lo0, min(lo, hi0), s, n)
                  + dot1(g, r0, o0, max(hi, lo0), hi0, s, n))
        dw[p + 1] += (dot1(g, r1, o1, lo1, min(lo, hi1), s, n)
                      + dot1(g, r1, o1, max(hi, lo1), hi1, s, n))
        dw[p + 2] += (dot1(g, r2, o2, lo2, min(lo, hi2), s, n)
                      + dot1(g, r2, o2, max(hi, lo2), hi2, s, n))
        dw[p + 3] += (dot1(g, r3, o3, lo3, min(lo, hi3), s, n)
                      + dot1(g, r3, o3, max(hi, lo3), hi3, s, n))
        p += 4
    while p < p1:
        r0, o0, lo0, hi0 = tap(src, rows, taps, keys, p, row0, row_step, off0, off_step,
                               s, size, out_size)
        dw[p] += dot1(g, r0, o0, lo0, hi0, s, n)
        p += 1


@numba.njit(fastmath=True, cache=True)
def scatter1(out, r0, o0, w0, lo, hi, s, n):
    """``out[j*s + o0] += w0 * r0[j]`` for columns j in ``[lo, hi)``: the
    input gradient of one tap at stride ``s > 1``, inside the caller's own
    output row (no other item writes it)."""
    for j in range(lo, hi):
        b = (j * s + o0) * n
        _axpy1(out[b:b + n], r0[j * n:(j + 1) * n], w0)
