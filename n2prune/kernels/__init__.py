"""Pure numba/numpy kernels on plain arrays ((C, H, W, N) activations, OCHW weights).

The only package that imports numba. Every kernel takes float32 or float64
arrays, allocates its output with ``np.empty`` or overwrites a given ``out``,
and keeps no state.
"""

import os

# numba's OpenMP workers spin after each parallel region and steal both cores
# from OpenBLAS's threads: a LeNet step went from 20 ms to 1.3 s. Passive
# waiting (read by libgomp when numba first starts its pool) removes that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")



from n2prune.kernels.direct_pool import max_pool_backward, max_pool_forward
from n2prune.kernels.elementwise import (
    add_bias_channels,
    add_bias_relu_channels,
    bias_grad_channels,
    relu_backward,
    relu_backward_bias_grad,
    relu_forward,
)
from n2prune.kernels.gemm import matmul, matmul_nt, matmul_tn
from n2prune.kernels.im2col import col2im, conv_out_size, covers_input, im2col
from n2prune.kernels.pooling import avg_pool_backward, avg_pool_forward

__all__ = [
    "add_bias_channels",
    "add_bias_relu_channels",
    "avg_pool_backward",
    "avg_pool_forward",
    "bias_grad_channels",
    "col2im",
    "conv_out_size",
    "covers_input",
    "im2col",
    "matmul",
    "matmul_nt",
    "matmul_tn",
    "max_pool_backward",
    "max_pool_forward",
    "relu_backward",
    "relu_backward_bias_grad",
    "relu_forward",
]
