"""im2col / col2im for CNHW activations, so that a convolution is one GEMM.

``cols = im2col(x, ...)`` has shape ``(C*KH*KW, N*OH*OW)``: row
``r = (c*KH + ky)*KW + kx`` (the order of an OCHW weight row), column
``q = (n*OH + oy)*OW + ox`` (the order of a CNHW output channel), so
``W.reshape(O, -1) @ cols`` is directly the ``(O, N, OH, OW)`` output.
"""

import numba
import numpy as np

# Argument checks shared by the kernel modules.


def pair(value, name):
    """``(h, w)`` ints from an int or a 2-sequence."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        h, w = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}") from None
    return int(h), int(w)


def as_float_array(a, name):
    """``a`` as a C-contiguous float32/float64 array (no copy when it already is)."""
    a = np.asarray(a)
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {a.dtype}")
    return np.ascontiguousarray(a)


def check_out(out, shape, dtype):
    """A fresh ``np.empty`` array, or ``out`` after checking it can be written."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if out.shape != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous {np.dtype(dtype).name} array of shape "
            f"{tuple(shape)}, got {out.dtype.name} {out.shape}")
    return out


def conv_out_size(size, kernel, stride, padding, dilation):
    """Output length along one axis, N2D2's formula.

    ``floor((size + 2*padding - (dilation*(kernel-1) + 1) + stride) / stride)``.
    Raises ``ValueError`` when the (dilated) kernel does not fit, i.e. < 1.
    """
    if min(kernel, stride, dilation) < 1 or padding < 0:
        raise ValueError(f"invalid kernel {kernel}, stride {stride}, dilation "
                         f"{dilation} or padding {padding}")
    extent = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - extent + stride) // stride
    if out < 1:
        raise ValueError(
            f"kernel {kernel} (dilation {dilation}, stride {stride}, padding "
            f"{padding}) does not fit an input of size {size}")
    return out


def conv_geometry(input_shape, kernel, stride, padding, dilation):
    """Validated ``(kernel, stride, padding, dilation, (OH, OW))`` as int pairs."""
    if len(input_shape) != 4:
        raise ValueError(f"expected a (C, N, H, W) shape, got {input_shape}")
    kernel, stride = pair(kernel, "kernel"), pair(stride, "stride")
    padding, dilation = pair(padding, "padding"), pair(dilation, "dilation")
    out = tuple(conv_out_size(input_shape[2 + a], kernel[a], stride[a],
                              padding[a], dilation[a]) for a in (0, 1))
    return kernel, stride, padding, dilation, out


@numba.njit(cache=True, inline="always")
def _valid_span(offset, stride, size, out_size):
    """Outputs ``[lo, hi)`` whose input index ``o*stride + offset`` is in ``[0, size)``."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = 0
    if size - 1 - offset >= 0:
        hi = (size - 1 - offset) // stride + 1
    hi = min(hi, out_size)
    return lo, max(lo, hi)


# Below this many elements, kernels run serially (see ``use_parallel``).
PARALLEL_MIN_ELEMENTS = 1 << 20
# Elements per parallel item: enough to amortise scheduling, few enough that
# both cores get several items on LeNet-sized layers.
_ITEM_ELEMENTS = 16384
# Output planes smaller than this are walked with the sample loop innermost,
# otherwise loops of OH*OW iterations (1 for a conv on a 5x5 map) dominate.
_SMALL_PLANE = 16


@numba.njit(cache=True)
def _offset_table(geometry, height, width):
    """``(KH*KW, OH*OW)`` int32: the flat input offset ``iy*W + ix`` that
    kernel tap ``k = ky*KW + kx`` reads for output ``q = oy*OW + ox``, or -1
    where it reads the zero padding. Shared by every channel and sample."""
    kh, kw, sy, sx, py, px, dy, dx, oh, ow = geometry
    table = np.empty((kh * kw, oh * ow), dtype=np.int32)
    for k in range(kh * kw):
        ky, kx = k // kw, k % kw
        for oy in range(oh):
            iy = oy * sy - py + ky * dy
            for ox in range(ow):
                ix = ox * sx - px + kx * dx
                inside = 0 <= iy < height and 0 <= ix < width
                table[k, oy * ow + ox] = iy * width + ix if inside else -1
    return table


@numba.njit(fastmath=True, cache=True)
def _im2col_item(x, table, block, cols, item):
    """Item = (row r, block of samples): writes its own run of ``cols[r]``."""
    n_samples, height, width = x.shape[1:]
    taps, plane = table.shape
    hw = height * width
    n_blocks = (n_samples + block - 1) // block
    r = item // n_blocks
    n0 = (item - r * n_blocks) * block
    count = min(n_samples, n0 + block) - n0
    tab = table[r % taps]
    dst = cols[r, n0 * plane:(n0 + count) * plane]
    src = x[r // taps, n0:n0 + count].reshape(count * hw)
    zero = x.dtype.type(0)   # typed: a bare 0 would promote to float64
    if plane >= _SMALL_PLANE:
        for n in range(count):
            d = dst[n * plane:(n + 1) * plane]
            s = src[n * hw:(n + 1) * hw]
            for q in range(plane):
                t = tab[q]
                # Clamped load + select, no branch: padding taps are
                # irregular, a branch on them would mispredict.
                d[q] = s[max(t, 0)] if t >= 0 else zero
    else:
        for q in range(plane):
            t = tab[q]
            for n in range(count):
                dst[n * plane + q] = src[max(t, 0) + n * hw] if t >= 0 else zero


@numba.njit(parallel=True, cache=True)
def _im2col_parallel(x, table, block, cols, n_items):
    for item in numba.prange(n_items):
        _im2col_item(x, table, block, cols, item)


@numba.njit(cache=True)
def _im2col_serial(x, table, block, cols, n_items):
    for item in range(n_items):
        _im2col_item(x, table, block, cols, item)


@numba.njit(fastmath=True, cache=True)
def _add_rows(src, dst, k, geometry, count, hw, width):
    """col2im of tap k for unit x-stride: contiguous row adds that vectorise."""
    _, kw, sy, _, py, px, dy, dx, oh, ow = geometry
    ky, kx = k // kw, k % kw
    height = hw // width
    x_off = kx * dx - px
    lo, hi = _valid_span(x_off, 1, width, ow)
    for n in range(count):
        for oy in range(oh):
            iy = oy * sy - py + ky * dy
            if 0 <= iy < height:
                s = src[(n * oh + oy) * ow + lo:(n * oh + oy) * ow + hi]
                d = dst[n * hw + iy * width + lo + x_off:n * hw + iy * width + hi + x_off]
                for i in range(hi - lo):
                    d[i] += s[i]


@numba.njit(fastmath=True, cache=True)
def _col2im_item(cols, table, geometry, block, dx_out, item):
    """Item = (channel c, block of samples): sums into its own part of dx."""
    n_samples, height, width = dx_out.shape[1:]
    taps, plane = table.shape
    hw = height * width
    n_blocks = (n_samples + block - 1) // block
    c = item // n_blocks
    n0 = (item - c * n_blocks) * block
    count = min(n_samples, n0 + block) - n0
    dst = dx_out[c, n0:n0 + count].reshape(count * hw)
    dst[:] = 0
    # Long unit-stride rows: contiguous adds (they vectorise) beat the table.
    use_rows = geometry[3] == 1 and geometry[9] >= _SMALL_PLANE   # sx, ow
    for k in range(taps):
        tab = table[k]
        src = cols[c * taps + k, n0 * plane:(n0 + count) * plane]
        if use_rows:
            _add_rows(src, dst, k, geometry, count, hw, width)
        elif plane >= _SMALL_PLANE:
            for n in range(count):
                d = dst[n * hw:(n + 1) * hw]
                s = src[n * plane:(n + 1) * plane]
                for q in range(plane):
                    if tab[q] >= 0:
                        d[tab[q]] += s[q]
        else:
            for q in range(plane):
                if tab[q] >= 0:
                    for n in range(count):
                        dst[n * hw + tab[q]] += src[n * plane + q]


@numba.njit(parallel=True, cache=True)
def _col2im_parallel(cols, table, geometry, block, dx_out, n_items):
    for item in numba.prange(n_items):
        _col2im_item(cols, table, geometry, block, dx_out, item)


@numba.njit(cache=True)
def _col2im_serial(cols, table, geometry, block, dx_out, n_items):
    for item in range(n_items):
        _col2im_item(cols, table, geometry, block, dx_out, item)


def use_parallel(elements):
    """Whether work touching ``elements`` array elements should run in parallel.

    With ``OMP_WAIT_POLICY=PASSIVE`` (set in ``kernels/__init__``) waking the
    sleeping worker costs 10-20 us, and on the 2-vCPU reference machine a
    serial loop won for memory-bound work up to ~1M elements."""
    return elements >= PARALLEL_MIN_ELEMENTS and numba.get_num_threads() > 1


def _blocking(n_samples, n_rows, elements_per_sample, parallel):
    """``(samples per item, item count)``: one item per row when serial;
    about ``_ITEM_ELEMENTS`` elements per item, at least 4 per thread, when
    parallel."""
    block = max(1, n_samples)
    if parallel:
        block = max(1, _ITEM_ELEMENTS // elements_per_sample)
        min_items = 4 * numba.get_num_threads()
        block = max(1, min(block, (n_samples * n_rows) // min_items))
    return block, n_rows * -(-n_samples // block)


def _geometry_tuple(kernel, stride, padding, dilation, out):
    """One homogeneous int tuple, so numba compiles a single signature."""
    return (*kernel, *stride, *padding, *dilation, *out)


def im2col(x, kernel, stride, padding, dilation, out=None):
    """Unfold CNHW ``x`` into ``cols`` of shape ``(C*KH*KW, N*OH*OW)``.

    ``cols[(c*KH + ky)*KW + kx, (n*OH + oy)*OW + ox] =
    x[c, n, oy*sy - py + ky*dy, ox*sx - px + kx*dx]``, or 0 where that index
    falls in the (symmetric, zero) padding. ``kernel``, ``stride``,
    ``padding``, ``dilation`` are ``(h, w)`` int pairs (an int means both).
    ``out``, if given, must be C-contiguous of that shape and x's dtype; it
    is fully overwritten and returned.
    """
    x = as_float_array(x, "x")
    kernel, stride, padding, dilation, (oh, ow) = conv_geometry(
        x.shape, kernel, stride, padding, dilation)
    n_channels, n_samples = x.shape[:2]
    shape = (n_channels * kernel[0] * kernel[1], n_samples * oh * ow)
    cols = check_out(out, shape, x.dtype)
    geometry = _geometry_tuple(kernel, stride, padding, dilation, (oh, ow))
    table = _offset_table(geometry, x.shape[2], x.shape[3])
    parallel = use_parallel(cols.size)
    block, n_items = _blocking(n_samples, shape[0], oh * ow, parallel)
    run = _im2col_parallel if parallel else _im2col_serial
    run(x, table, block, cols, n_items)
    return cols


def col2im(cols, input_shape, kernel, stride, padding, dilation, out=None):
    """Fold ``cols`` back to a ``(C, N, H, W)`` gradient: the adjoint of im2col.

    Every column entry is added to the input pixel it was copied from
    (overlapping windows accumulate; entries that came from padding are
    dropped), so ``<im2col(x), c> == <x, col2im(c)>``. ``out``, if given, is
    overwritten (not accumulated into) and returned.
    """
    cols = as_float_array(cols, "cols")
    input_shape = tuple(int(s) for s in input_shape)
    kernel, stride, padding, dilation, (oh, ow) = conv_geometry(
        input_shape, kernel, stride, padding, dilation)
    n_channels, n_samples = input_shape[:2]
    expected = (n_channels * kernel[0] * kernel[1], n_samples * oh * ow)
    if cols.shape != expected:
        raise ValueError(f"cols has shape {cols.shape}, expected {expected}")
    dx = check_out(out, input_shape, cols.dtype)
    geometry = _geometry_tuple(kernel, stride, padding, dilation, (oh, ow))
    table = _offset_table(geometry, input_shape[2], input_shape[3])
    parallel = use_parallel(cols.size)
    taps = kernel[0] * kernel[1]
    block, n_items = _blocking(n_samples, n_channels, taps * oh * ow, parallel)
    run = _col2im_parallel if parallel else _col2im_serial
    run(cols, table, geometry, block, dx, n_items)
    return dx
