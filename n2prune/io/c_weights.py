"""One weight matrix as C arrays in the smallest of three forms, and the loop that walks it.

A weighted tensor is seen as a row-major ``(rows, cols)`` float32 matrix
(rows: the cell's outputs; cols: ``c*KH*KW + ky*KW + kx`` for a Conv, the
flattened (C, H, W) input for an Fc). Its forms, with their flash bytes:

* ``dense``: every weight, ``4 * rows * cols``;
* ``bitmask``: one bit per weight, each row padded to whole bytes
  (``rows * ceil(cols / 8)``), plus the nonzero values in row-major order
  (``4 * nnz``): zero bytes of the mask skip eight weights at once;
* ``csr``: ``rows + 1`` row pointers and ``nnz`` column indices, each of the
  smallest unsigned type that holds its largest value, plus the values.

``WeightForms`` picks the smallest (dense on a tie: the simplest loop).
``loop`` gives the C loop over a matrix's weights in its form: ``begin`` runs
before each row ``o``, ``visit`` for each weight ``v`` at column ``j`` (only
the nonzeros in the compressed forms), ``end`` after the row.
"""

import math

import numpy as np

from n2prune.errors import UserError

FORMS = ("dense", "bitmask", "csr")
FLOAT_BYTES = 4
_INDEX_TYPES = ((0xFF, "uint8_t", 1), (0xFFFF, "uint16_t", 2), (0xFFFFFFFF, "uint32_t", 4))


def index_type(largest):
    """``(C type, bytes)`` of the smallest unsigned type holding ``largest``."""
    for limit, name, size in _INDEX_TYPES:
        if largest <= limit:
            return name, size
    raise UserError(f"an index of {largest} does not fit a 32-bit C array index")


def float_literal(value):
    """``value`` as a C float literal that reads back as the same float32."""
    value = float(np.float32(value)) + 0.0  # -0.0 as 0.0
    if not math.isfinite(value):
        raise ValueError(f"{value} has no C float literal")
    text = f"{value:.9g}"  # 9 significant digits: every float32 round-trips
    if not any(ch in text for ch in ".e"):
        text += ".0"
    return text + "f"


def c_array(ctype, name, values, per_line=8, fmt=str):
    """``static const ctype name[n] = {...};`` with ``per_line`` values a line."""
    items = [fmt(v) for v in values]
    if not items:  # C has no empty arrays; nothing reads this one
        items = [fmt(0)]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(items)}] = {{\n    {body}\n}};\n"


class WeightForms:
    """The three forms of one ``(rows, cols)`` matrix, their sizes and the chosen one.

    ``name`` prefixes the C arrays (``<name>_w``, ``<name>_bits``...).
    ``form`` forces a form instead of the smallest (tests; ``None``: smallest).
    """

    def __init__(self, name, matrix, form=None):
        self.name = name
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.rows, self.cols = self.matrix.shape
        if not np.isfinite(self.matrix).all():
            raise UserError(f"[{name}] weights hold inf or NaN: no C export")
        self.nonzero = self.matrix != 0
        self.nnz = int(np.count_nonzero(self.nonzero))
        self.row_bytes = -(-self.cols // 8)
        self.pointer_type = index_type(self.nnz)
        self.column_type = index_type(max(self.cols - 1, 0))
        self.sizes = {
            "dense": FLOAT_BYTES * self.matrix.size,
            "bitmask": self.rows * self.row_bytes + FLOAT_BYTES * self.nnz,
            "csr": ((self.rows + 1) * self.pointer_type[1]
                    + self.nnz * (self.column_type[1] + FLOAT_BYTES)),
        }
        if form is not None and form not in FORMS:
            raise UserError(f"unknown weight form {form!r}; known: {', '.join(FORMS)}")
        self.form = form or min(FORMS, key=self.sizes.__getitem__)

    @property
    def bytes(self):
        """Flash bytes of the chosen form."""
        return self.sizes[self.form]

    def arrays(self):
        """The C declarations of the chosen form."""
        n = self.name
        if self.form == "dense":
            return c_array("float", f"{n}_w", self.matrix.ravel(), fmt=float_literal)
        values = c_array("float", f"{n}_v", self.matrix[self.nonzero], fmt=float_literal)
        if self.form == "bitmask":
            padded = np.zeros((self.rows, self.row_bytes * 8), dtype=bool)
            padded[:, :self.cols] = self.nonzero
            bits = np.packbits(padded, axis=1, bitorder="little")  # bit t of byte b: column 8b+t
            return c_array("uint8_t", f"{n}_bits", bits.ravel(), per_line=16) + values
        pointers = np.concatenate([[0], np.cumsum(self.nonzero.sum(axis=1))])
        columns = np.nonzero(self.nonzero)[1]
        return (c_array(self.pointer_type[0], f"{n}_rows", pointers, per_line=16)
                + c_array(self.column_type[0], f"{n}_cols", columns, per_line=16) + values)

    def loop(self, begin, visit, end):
        """C statements walking the weights row by row (see the module docstring)."""
        n, rows, cols = self.name, self.rows, self.cols
        if self.form == "dense":
            inner = (f"for (int j = 0; j < {cols}; ++j) {{\n"
                     f"    const float v = {n}_w[o * {cols} + j];\n"
                     f"    {visit}\n}}")
            head = ""
        elif self.form == "csr":
            inner = (f"for (int i = {n}_rows[o]; i < (int){n}_rows[o + 1]; ++i) {{\n"
                     f"    const int j = {n}_cols[i];\n"
                     f"    const float v = {n}_v[i];\n"
                     f"    {visit}\n}}")
            head = ""
        else:
            inner = (f"for (int b = 0; b < {self.row_bytes}; ++b) {{\n"
                     f"    unsigned bits = {n}_bits[o * {self.row_bytes} + b];\n"
                     f"    for (int j = 8 * b; bits != 0; bits >>= 1, ++j) {{\n"
                     f"        if (bits & 1u) {{\n"
                     f"            const float v = *next++;\n"
                     f"            {visit}\n"
                     f"        }}\n    }}\n}}")
            head = f"const float *next = {n}_v;\n"
        body = "\n".join(part for part in (begin, inner, end) if part)
        rows_loop = f"{head}for (int o = 0; o < {rows}; ++o) {{\n{indent(body)}\n}}"
        return f"{{\n{indent(rows_loop)}\n}}"


def indent(text, spaces=4):
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.split("\n"))
