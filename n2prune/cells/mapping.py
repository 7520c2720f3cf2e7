"""Connection matrices between input channels and outputs, as N2D2's MappingGenerator.

A mapping is a 0/1 int8 array of shape ``(nb_channels, nb_outputs)``: row =
input channel, column = output, exactly the layout of an INI ``Mapping(P)=``
matrix. ``None`` elsewhere in n2prune means "all ones" (N2D2's default when
no ``Mapping`` key is given). Bad arguments raise ``ValueError``; the graph
layer turns them into ``file:line`` errors.
"""

import math

import numpy as np


def _check_counts(nb_channels, nb_outputs):
    if nb_channels < 1 or nb_outputs < 1:
        raise ValueError(f"a mapping needs >= 1 channel and >= 1 output "
                         f"(got {nb_channels} channels, {nb_outputs} outputs)")


def full_mapping(nb_channels, nb_outputs):
    """Every channel feeds every output."""
    _check_counts(nb_channels, nb_outputs)
    return np.ones((nb_channels, nb_outputs), dtype=np.int8)


def group_bounds(nb_outputs, nb_groups):
    """``[(start, stop), ...]`` output range of each group.

    As N2D2's MappingGenerator: group ``g`` takes
    ``(nb_outputs - start) // (nb_groups - g)`` outputs, so when the outputs
    do not split evenly the later groups get the extra ones (and a group may
    get none when ``nb_outputs < nb_groups``).
    """
    bounds, start = [], 0
    for g in range(nb_groups):
        size = (nb_outputs - start) // (nb_groups - g)
        bounds.append((start, start + size))
        start += size
    return bounds


def group_mapping(nb_channels, nb_outputs, nb_groups=None, channels_per_group=None):
    """Block-diagonal mapping of a grouped (``nb_groups == nb_channels``: depthwise) conv.

    Give exactly one of ``nb_groups`` (``Mapping.NbGroups``) or
    ``channels_per_group`` (``Mapping.ChannelsPerGroup``). Group ``g`` links
    channels ``[g*cpg, (g+1)*cpg)`` to the outputs of ``group_bounds``.
    Unlike N2D2, which only checks ``nb_channels % nb_groups``, a
    ``channels_per_group`` that does not divide ``nb_channels`` is an error.
    """
    _check_counts(nb_channels, nb_outputs)
    if (nb_groups is None) == (channels_per_group is None):
        raise ValueError("give exactly one of nb_groups and channels_per_group")
    if channels_per_group is not None:
        if channels_per_group < 1 or nb_channels % channels_per_group:
            raise ValueError(f"{channels_per_group} channels per group do not "
                             f"split {nb_channels} input channels")
        nb_groups = nb_channels // channels_per_group
    if nb_groups < 1 or nb_channels % nb_groups:
        raise ValueError(f"{nb_channels} input channels do not split into "
                         f"{nb_groups} equal groups")
    per_group = nb_channels // nb_groups
    mapping = np.zeros((nb_channels, nb_outputs), dtype=np.int8)
    for g, (start, stop) in enumerate(group_bounds(nb_outputs, nb_groups)):
        mapping[g * per_group:(g + 1) * per_group, start:stop] = 1
    return mapping


def generated_mapping(nb_channels, nb_outputs, size_y=1, size_x=1, stride_y=1,
                      stride_x=1, offset_y=0, offset_x=0, nb_iterations=0):
    """N2D2's ``Mapping.Size/Stride/Offset/NbIterations`` generator.

    Starting at (channel ``offset_y``, output ``offset_x``), each iteration
    sets a ``size_y`` x ``size_x`` block of ones (channels x outputs), then
    moves by (``stride_y``, ``stride_x``); indices wrap around modulo the
    matrix size. ``nb_iterations=0`` means ``max(nb_outputs, nb_channels)``,
    a size of 0 means the whole axis. With the defaults and
    ``nb_channels == nb_outputs`` this is the identity.

    Time and memory are O(nb_channels * nb_outputs) whatever the values:
    with wrap-around, blocks and iterations beyond the axes repeat what is
    already set, so only one period of iterations is walked.
    """
    _check_counts(nb_channels, nb_outputs)
    if min(size_y, size_x, stride_y, stride_x, offset_y, offset_x, nb_iterations) < 0:
        raise ValueError("mapping generator values must be >= 0")
    size_y = min(size_y or nb_channels, nb_channels)
    size_x = min(size_x or nb_outputs, nb_outputs)
    nb_iterations = nb_iterations or max(nb_outputs, nb_channels)
    stride_y, stride_x = stride_y % nb_channels, stride_x % nb_outputs
    # Block i starts at ((offset_y + i*stride_y) % C, (offset_x + i*stride_x) % O),
    # which repeats after lcm of the two axes' periods (<= C * O iterations).
    period = math.lcm(nb_channels // math.gcd(stride_y, nb_channels),
                      nb_outputs // math.gcd(stride_x, nb_outputs))
    steps = np.arange(min(nb_iterations, period), dtype=np.int64)
    starts = np.zeros((nb_channels, nb_outputs), dtype=bool)
    starts[(offset_y % nb_channels + steps * stride_y) % nb_channels,
           (offset_x % nb_outputs + steps * stride_x) % nb_outputs] = True
    return _spread(_spread(starts, size_y, 0), size_x, 1).astype(np.int8)


def _spread(starts, size, axis):
    """Cyclic dilation along ``axis``: ``out[j] = any(starts[j - d]) for d < size``.

    A running sum over the wrapped-around axis, so the cost does not grow with ``size``.
    """
    rows = np.moveaxis(starts, axis, 0)
    n = rows.shape[0]
    if size >= n:
        return np.moveaxis(np.broadcast_to(rows.any(axis=0), rows.shape), 0, axis)
    wrapped = np.concatenate([rows[n - size + 1:], rows]) if size > 1 else rows
    counts = np.cumsum(wrapped, axis=0, dtype=np.int32)
    before = np.concatenate([np.zeros_like(counts[:1]), counts[:n - 1]])
    return np.moveaxis(counts[size - 1:] - before > 0, 0, axis)


def is_block_diagonal(mapping):
    """Number of groups if ``mapping`` is exactly a ``group_mapping``, else ``None``.

    An all-ones mapping is one group. The channels per group are read from
    the first output's column (its run of ones from channel 0), as N2D2's
    ``Cell::getNbGroups`` does; unlike it, uneven output groups (as
    ``group_bounds`` makes them) are accepted.
    """
    mapping = np.asarray(mapping)
    nb_channels, nb_outputs = mapping.shape
    first = mapping[:, 0] != 0
    per_group = int(np.argmin(first)) if not first.all() else nb_channels
    if per_group == 0 or nb_channels % per_group:
        return None
    nb_groups = nb_channels // per_group
    expected = group_mapping(nb_channels, nb_outputs, nb_groups)
    return nb_groups if np.array_equal(mapping != 0, expected != 0) else None
