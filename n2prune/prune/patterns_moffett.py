"""Moffett AI's mask rules (``Prune``'s deploy_device 'none', 'asic', 'fpga') as patterns.

Moffett keeps keep = int(size·(1 − s)) weights of a tensor (float64, truncated)
and spreads them over *groups of rows*. Within a group every row keeps its
k largest, with k = ⌈q/R⌉ for the group's share q over its R rows: when q
is not a multiple of R every row keeps one more, so a balanced tensor keeps
up to R − 1 more weights per group than asked (Moffett's ``topk(base_k + 1)``).

- ``MoffettUnstructured`` (deploy_device 'none', balance='none'): one row, the tensor.
- ``MoffettASIC`` (deploy_device 'asic', balance='fix'): a Conv is viewed as
  (O, kh, kw, I), rows are the (o, y, x) slices, cut into blocks of G =
  ``bank_size`` inputs (Moffett's ``group_size``, 64) and a last block of
  I mod G inputs. Block shares: int(keep·B·G/I) over the B full blocks, split
  evenly (floor), the rest to the last block. A 1x1 Conv or an Fc (O, I) cuts
  its inputs in blocks of 512, each in 512 // G interleaved sub-banks
  (input j in sub-bank j mod 512 // G, share int(len/width·block share)); a
  last block narrower than 512 // G inputs stays dense.
- ``MoffettFPGA`` (deploy_device 'fpga'): a Conv viewed as (O, kh, I, kw), each
  (o, y) slab cut into 4 groups of consecutive input channels (when 4 does
  not divide I: 3 groups of I//4 + 1 and one of the rest); Fc: unstructured.

The row structure does not depend on the target, only the counts do; the
patterns' checks test that the rows of a group keep equal counts.
``qualifies`` is Moffett's ``check()`` for one tensor.
"""

import numpy as np

from n2prune.prune.pattern_base import (
    describe_violations,
    keep_largest,
    register_pattern,
)

# Moffett's 1x1 Conv and Fc blocks; FPGA input groups.
ASIC_BLOCK = 512
FPGA_GROUPS = 4


class Group:
    """``rows``: (R, L) flat indices into the tensor, each row keeps its ``k`` largest.
    ``checked``: whether Moffett's ``check()`` looks at it (it keeps only the
    result of the last full block of a series: a bug, see ``qualifies``)."""

    def __init__(self, rows, share, checked=True):
        self.rows, self.checked = rows, checked
        per_row, extra = divmod(share, rows.shape[0])
        self.k = per_row + (1 if extra else 0)


def moffett_keep(size, sparsity):
    """Moffett's kept count: int(size·(1 − s)) in float64, truncated."""
    return int(size * (1.0 - sparsity))


def plan(shape, keep, device, group_size=64):
    """The ``Group``s of a tensor of ``shape`` keeping ``keep`` weights on ``device``.

    ``device``: 'none', 'asic' or 'fpga'. Indices in no group stay kept.
    """
    index = np.arange(int(np.prod(shape))).reshape(shape)
    if device == "asic" and len(shape) == 4 and shape[2:] != (1, 1):
        return _asic_blocks(index.transpose(0, 2, 3, 1), keep, group_size)
    if device == "asic" and len(shape) in (2, 4):
        return _asic_pointwise(index.reshape(shape[0], shape[1]), keep, group_size)
    if device == "fpga" and len(shape) == 4:
        return _fpga_groups(index.transpose(0, 2, 1, 3), keep)
    return [Group(index.reshape(1, -1), keep)]


def _asic_blocks(view, keep, size):
    """(O, kh, kw, I) ``view``: blocks of ``size`` inputs, then the rest."""
    inputs = view.shape[-1]
    full, rest = divmod(inputs, size)
    first = int(keep * full * size / inputs)
    groups = [Group(view[..., b * size:(b + 1) * size].reshape(-1, size), first // full,
                    checked=b == full - 1) for b in range(full)]
    if rest:
        groups.append(Group(view[..., full * size:].reshape(-1, rest), keep - first))
    return groups


def _asic_pointwise(view, keep, size):
    """(O, I) ``view`` of a 1x1 Conv or an Fc: 512-input blocks of interleaved sub-banks."""
    banks, inputs = ASIC_BLOCK // size, view.shape[1]
    full, rest = divmod(inputs, ASIC_BLOCK)
    first = int(keep * full * ASIC_BLOCK / inputs)
    groups = []
    for b in range(full):
        block = view[:, b * ASIC_BLOCK:(b + 1) * ASIC_BLOCK]
        groups += _sub_banks(block, first // full, banks, checked=b == full - 1)
    if rest >= banks:  # Moffett leaves a narrower last block dense
        groups += _sub_banks(view[:, full * ASIC_BLOCK:], keep - first, banks, checked=True)
    return groups


def _sub_banks(block, share, banks, checked):
    width = block.shape[1]
    return [Group(block[:, bank::banks], int(len(range(bank, width, banks)) / width * share),
                  checked) for bank in range(banks)]


def _fpga_groups(view, keep):
    """(O, kh, I, kw) ``view``: 4 groups of consecutive inputs per (o, y) slab."""
    inputs, width = view.shape[2], view.shape[3]
    if inputs % FPGA_GROUPS == 0:
        return [Group(view.reshape(-1, inputs * width // FPGA_GROUPS), keep)]
    split = (FPGA_GROUPS - 1) * (inputs // FPGA_GROUPS + 1)
    first = int(split / inputs * keep)
    return [Group(view[:, :, :split].reshape(-1, split * width // (FPGA_GROUPS - 1)), first),
            Group(view[:, :, split:].reshape(-1, (inputs - split) * width), keep - first)]


def make(scores, sparsity, device, group_size):
    """uint8 mask keeping, in every group, each row's k best ``scores``; all 0 below one kept."""
    keep = moffett_keep(scores.size, sparsity)
    if keep < 1:
        return np.zeros(scores.shape, dtype=np.uint8)
    mask = np.ones(scores.size, dtype=np.uint8)
    for group in plan(scores.shape, keep, device, group_size):
        mask[group.rows] = keep_largest(scores.reshape(-1)[group.rows], group.k)
    return mask.reshape(scores.shape)


def qualifies(weights, target, device, group_size=64, every_block=False):
    """Moffett's ``check()`` for one tensor: every row keeps at most its k non-zeros at
    ``target``. Moffett looks only at the last full block of a series (it overwrites
    the result of the others); ``every_block`` checks them all."""
    weights = np.asarray(weights)
    keep = moffett_keep(weights.size, target)
    groups = plan(weights.shape, keep, device, group_size)
    flat = weights.reshape(-1) != 0
    return all((flat[g.rows].sum(axis=1) <= g.k).all() for g in groups
               if g.checked or every_block)


def _unequal_rows(mask, device, group_size):
    lines = []
    for number, group in enumerate(plan(mask.shape, 0, device, group_size)):
        counts = mask.reshape(-1)[group.rows].sum(axis=1)
        lines += describe_violations(np.flatnonzero(counts != counts[0]), lambda k, g=number, c=counts: (
            f"group {g}: row {k} keeps {c[k]}, row 0 keeps {c[0]}"))
    return lines


def _fits_fpga(shape, params):
    inputs = shape[1]
    if len(shape) == 4 and inputs % FPGA_GROUPS and (FPGA_GROUPS - 1) * (
            inputs // FPGA_GROUPS + 1) >= inputs:
        return None, (f"Moffett's FPGA groups need I >= 4 and I not 5 or 6, got I = {inputs} "
                      "(Moffett drops I < 4 and fails on 5 and 6)")
    return None


def _fits_asic(shape, params):
    if not 1 <= params.bank_size <= ASIC_BLOCK:
        return "bank_size", f"bank_size (Moffett's group_size) must be in 1..512, got {params.bank_size}"
    return None


@register_pattern("MoffettUnstructured", lambda mask, params: [])
def moffett_unstructured(scores, sparsity, params):
    """Moffett's deploy_device 'none': the int(size·(1 − s)) largest scores of the tensor."""
    return make(scores, sparsity, "none", params.bank_size)


@register_pattern("MoffettASIC", lambda mask, params: _unequal_rows(mask, "asic", params.bank_size),
                  _fits_asic)
def moffett_asic(scores, sparsity, params):
    """Moffett's deploy_device 'asic' (balance='fix'): blocks of ``BankSize`` inputs (64), rows
    of a block keep equal counts; 1x1 Conv and Fc: 512-input blocks of interleaved sub-banks."""
    return make(scores, sparsity, "asic", params.bank_size)


@register_pattern("MoffettFPGA", lambda mask, params: _unequal_rows(mask, "fpga", params.bank_size),
                  _fits_fpga)
def moffett_fpga(scores, sparsity, params):
    """Moffett's deploy_device 'fpga': each (output, kernel row) slab in 4 groups of consecutive
    input channels keeping equal counts; Fc unstructured."""
    return make(scores, sparsity, "fpga", params.bank_size)
