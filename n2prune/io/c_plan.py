"""Where the C inference keeps its activations: one static arena, shared by liveness.

Each tensor the forward pass makes lives from the step (cell) that writes it
to the last step that reads it. Tensors whose lives overlap get disjoint
ranges of the arena; the others reuse the same floats (a chain of cells is
two ping-pong buffers; a branch keeps its tensor until the join reads it).
The network's input and output are the caller's arrays, never in the arena.
A Dropout (the identity at inference) reads its single input's storage.
"""

INPUT, OUTPUT = "input", "output"

# Cell types that concatenate several inputs along the channels before their
# operation: the C copies them into one temporary first.
CONCATENATING = ("Pool", "BatchNorm", "Padding", "Activation", "Dropout")


def needed_cells(network, output):
    """The cells ``output`` depends on (itself included), in network order."""
    wanted, stack = set(), [output]
    while stack:
        name = stack.pop()
        if name in wanted or name not in network.by_name:
            continue
        wanted.add(name)
        stack.extend(network.inputs[name])
    return [cell for cell in network.cells if cell.name in wanted]


def _size(shape):
    channels, height, width = shape
    return channels * height * width


class ArenaPlan:
    """``storage[tensor]``: the storage key of each tensor (a cell name, INPUT,
    OUTPUT, or ``<cell>#concat``); ``offset[key]``: its first float in the
    arena; ``floats``: the arena's size."""

    def __init__(self, network, cells, output):
        self.storage, self.offset = {}, {}
        self.lives = {}  # key -> [floats, first step, last step]
        for step, cell in enumerate(cells):
            sources = network.inputs[cell.name]
            for name in sources:
                self._read(name, step)
            if cell.type_name in CONCATENATING and len(sources) > 1:
                self.lives[f"{cell.name}#concat"] = [sum(_size(s) for s in cell.input_shapes),
                                                     step, step]
            if cell.name == output:
                self.storage[cell.name] = OUTPUT
            elif cell.type_name == "Dropout" and len(sources) == 1:
                self.storage[cell.name] = self.storage_of(sources[0])
            else:
                self.storage[cell.name] = cell.name
                self.lives[cell.name] = [_size(cell.output_shape), step, step]
        self.floats = self._place()

    def storage_of(self, tensor):
        return self.storage.get(tensor, INPUT)  # a name no cell makes: the stimuli

    def _read(self, tensor, step):
        key = self.storage_of(tensor)
        if key in self.lives:
            self.lives[key][2] = step

    def _place(self):
        """First fit, largest tensor first: the lowest offset clear of every
        placed tensor alive at the same time. Returns the arena's floats."""
        placed, end = [], 0
        order = sorted(self.lives, key=lambda k: (-self.lives[k][0], self.lives[k][1]))
        for key in order:
            size, first, last = self.lives[key]
            busy = sorted((offset, offset + other) for k2, offset, other, f2, l2 in placed
                          if f2 <= last and first <= l2)
            offset = 0
            for start, stop in busy:
                if offset + size <= start:
                    break
                offset = max(offset, stop)
            placed.append((key, offset, size, first, last))
            self.offset[key] = offset
            end = max(end, offset + size)
        return end

    def pointer(self, key):
        """The C expression of storage ``key``."""
        if key in (INPUT, OUTPUT):
            return key
        return f"(arena + {self.offset[key]})"

    def tensor(self, name):
        """The C expression of tensor ``name`` (a cell's output or the stimuli)."""
        return self.pointer(self.storage_of(name))
