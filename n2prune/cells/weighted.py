"""What Conv and Fc share: weight tensors (one per input), a bias, a quantizer.

The quantizer (``QWeight=``, e.g. ``n2prune.quantizer.PruneCell``) is the one
seam through which pruning reaches a cell: the forward and backward passes use
``effective_weights(k)`` (``W_k * M_k``), the solver sees the gradient through
``mask_weight_grad(k, grad)`` (``dW_k * M_k``), as N2D2's ConvCell_Frame does.
A cell asks it only through its public interface: ``mask(k)``,
``kernel_choice``, ``version``, ``solver_positions``.

A pruned tensor sparse enough (or ``QWeight.Kernel=Sparse``) is served by
the skip kernels instead: ``sparse_weights(k)`` returns its compressed form,
rebuilt only when the quantizer's mask version changes. Unpruned cells never
reach that machinery.
"""

import numpy as np

from n2prune.cells.base import Cell
from n2prune.cells.direct_weights import DirectWeights, prefers_direct
from n2prune.cells.registry import set_grad
from n2prune.cells.sparse_weights import (
    SparseWeights,
    prefers_sparse,
    prefers_sparse_gemv,
)
from n2prune.kernels import add_bias_channels, bias_grad_channels


class WeightCell(Cell):
    """A cell with ``self.weights`` (list of Param) and ``self.bias`` (Param or None).

    ``quantizer``: None, or a quantizer attached by the graph (or by hand);
    its masks are computed by ``quantizer.initialize`` (``prune.pruned_cells
    .initialize_masks``) with the run's generator, not on attachment.
    """

    def __init__(self, name, input_shapes):
        super().__init__(name, input_shapes)
        self.quantizer = None
        # Per tensor k: (weights_key, W_k * M_k), kept until the weights or mask change.
        self._effective = {}
        # Per label ("skip kernels", "direct kernels"): {k: (mask key, operator or None)}.
        self._operators = {"skip kernels": {}, "direct kernels": {}}
        # "dense BLAS / skip kernels" choices made since the last ``drain_kernel_notes``.
        self._kernel_notes = []

    def effective_weights(self, k):
        """The weights the forward pass uses: ``W_k``, or ``W_k * M_k`` when pruned.

        ``W_k * M_k`` is kept until the weights or the mask change, so the
        backward pass and repeated inference do not recompute it.
        """
        param = self.weights[k]
        if self.quantizer is None:
            return param.value
        key = self.weights_key(k)
        if k not in self._effective or self._effective[k][0] != key:
            self._effective[k] = (key, self.quantizer.effective_weights(k, param.value))
        return self._effective[k][1]

    def weights_key(self, k):
        """Changes whenever ``weights[k]`` or its mask may have changed."""
        param, quantizer = self.weights[k], self.quantizer
        mask_version = None if quantizer is None else quantizer.version
        return (id(param.value), param.version, id(quantizer), mask_version)

    def mask_weight_grad(self, k, grad):
        """The gradient the solver sees for ``weights[k]``: masked entries get none."""
        return grad if self.quantizer is None else self.quantizer.mask_gradient(k, grad)

    def sparse_weights(self, k, connection_mask=None):
        """The skip-kernel operator of ``weights[k]``, or None for dense BLAS.

        ``connection_mask`` (broadcastable to the weights, e.g. a Conv
        mapping) is combined with the prune mask. The choice is noted when
        it changes, for the training log (``drain_kernel_notes``). The
        operator reads the raw weights at the kept positions, where they
        equal ``W * M`` (mask 1).
        """
        quantizer = self.quantizer
        if quantizer is None:
            return None

        def build():
            mask = quantizer.mask(k)
            if connection_mask is not None:
                mask = mask * connection_mask
            mask2d = mask.reshape(mask.shape[0], -1)
            sparsity = 1.0 - np.count_nonzero(mask2d) / mask2d.size
            use = {"Dense": False, "Sparse": True}.get(quantizer.kernel_choice)
            if use is None:
                use = prefers_sparse(sparsity, mask2d.shape[0])
            return (SparseWeights(mask2d) if use else None), sparsity
        return self._operator(k, "skip kernels", build, final=True)

    def direct_weights(self, k, connection_mask, geometry, transposed=False):
        """The direct-convolution operator of ``weights[k]``, or None for im2col.

        Kept: the prune mask (unless the kernel choice is Dense: ``Kernel=Dense``,
        soft masks or Taylor, which run im2col + BLAS on ``W * M``) times
        ``connection_mask``. ``geometry`` is the convolution's (stride,
        padding, dilation); ``transposed`` as ``DirectWeights`` (a Deconv's).
        Conv hands the operator ``effective_weights``; at
        the kept positions those equal the raw weights the skip kernels read,
        so the two paths gather the same values.
        """
        quantizer = self.quantizer

        def build():
            shape, mask = self.weights[k].value.shape, connection_mask
            if quantizer is not None:
                if quantizer.kernel_choice == "Dense":
                    return None, None
                mask = quantizer.mask(k) if mask is None else quantizer.mask(k) * mask
            size = int(np.prod(shape))
            kept = size if mask is None else np.count_nonzero(np.broadcast_to(mask, shape))
            sparsity = 1.0 - kept / size
            forced = quantizer is not None and quantizer.kernel_choice == "Sparse"
            use = forced or prefers_direct(shape[0], sparsity)
            return (DirectWeights(shape, mask, geometry, transposed) if use else None), sparsity
        return self._operator(k, "direct kernels", build, final=False)

    def _operator(self, k, label, build, final):
        """``build()``'s ``(operator or None, sparsity)``, kept per mask version.

        When the operator serves the tensor, or when ``final`` (None then
        means dense BLAS), the choice is noted on change and the solver's
        positions follow the quantizer's ``solver_positions``; a declined
        direct operator leaves both to the skip-kernel choice that runs next.
        """
        quantizer, cache = self.quantizer, self._operators[label]
        key = None if quantizer is None else (id(quantizer), quantizer.version,
                                              quantizer.kernel_choice)
        previous = cache.get(k)
        if previous is not None and previous[0] == key:
            return previous[1]
        op, sparsity = build()
        cache[k] = (key, op)
        if quantizer is not None and (op is not None or final):
            if previous is None or (previous[1] is None) != (op is None):
                self._note_kernel(k, op, sparsity, label)
            self.weights[k].active = quantizer.solver_positions(op)
        return op

    def sparse_weights_for(self, k, n_columns):
        """``sparse_weights(k)``, except dense BLAS for a batch-1 GEMV under Auto
        when the skip GEMV would be slower (``prefers_sparse_gemv``)."""
        op = self.sparse_weights(k)
        if (op is not None and n_columns == 1 and self.quantizer.kernel_choice == "Auto"
                and not prefers_sparse_gemv(op.sparsity)):
            return None
        return op

    def _note_kernel(self, k, op, sparsity, name):
        kind = name if op is not None else "dense BLAS"
        self._kernel_notes.append(f"[{self.name}] weights[{k}]: {kind} at sparsity {sparsity:.3f}")

    def drain_kernel_notes(self):
        """The kernel choices noted since the last call (strings for the training log)."""
        notes, self._kernel_notes = self._kernel_notes, []
        return notes

    def activate(self, y):
        """Bias then activation on the fresh product ``y`` (in place where it can:
        one pass for a Rectifier)."""
        if self.bias is not None and hasattr(self.activation, "forward_with_bias"):
            return self.activation.forward_with_bias(y, self.bias.value)
        if self.bias is not None:
            add_bias_channels(y, self.bias.value)
        return self.activation.forward(y)

    def deactivate(self, dy):
        """The gradient before the activation; sets the bias gradient on the way."""
        if self.bias is not None and hasattr(self.activation, "backward_with_bias"):
            dx, db = self.activation.backward_with_bias(np.ascontiguousarray(dy))
            set_grad(self.bias, db)
            return dx
        dx = np.ascontiguousarray(self.activation.backward(dy))
        if self.bias is not None:
            set_grad(self.bias, bias_grad_channels(dx))
        return dx

    def params(self):
        return self.weights + ([self.bias] if self.bias is not None else [])

    def weight_arrays(self):
        return [p.value for p in self.weights]
