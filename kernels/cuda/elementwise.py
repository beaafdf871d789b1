"""Element-wise ops on the device: ReLU forward and backward.

What changes relative to ``kernels.naive``: naive's loop over the elements becomes a
*grid-stride loop*: thread ``g = blockIdx.x * blockDim.x + threadIdx.x`` of ``G`` threads
handles elements ``g, g + G, g + 2G, ...`` of the flat array, so consecutive threads read
consecutive addresses (coalesced) and one launch of at most ``BLOCKS_PER_SM * SMs`` blocks
covers an array of any size. Nothing is staged in shared memory: each element is read once.

The test is PyTorch's ``x <= 0`` in both directions: a NaN is not ``<= 0``, so it passes
through forward (as NaN) and passes its gradient backward.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ._arrays import SIMULATOR, blocks, empty, kernel_cache, numba_dtype, sm_count

THREADS = 256
"""Threads per block of every kernel here."""

BLOCKS_PER_SM = 8
"""Grid-stride launches use ``8 * SMs`` blocks at most: 8 x 256 = 2048 threads, the most an
SM (H100, A100) keeps resident."""


def stride_blocks(n: int) -> int:
    """Blocks for a grid-stride launch over ``n`` items (one in the simulator)."""
    if SIMULATOR:
        return 1
    return min(blocks(n, THREADS), BLOCKS_PER_SM * sm_count())


def flat(a):
    """A 1-D view of a C-contiguous device array: ``(d0, d1, ...) -> (d0*d1*...,)``."""
    return a.reshape(int(np.prod(a.shape)))


def launch_stride(kernel, n: int, *args) -> None:
    """Launch ``kernel`` as a grid-stride loop over ``n`` items."""
    kernel[stride_blocks(n), THREADS](*args)


@kernel_cache
def relu_forward_kernel(DT):
    """Build the ReLU forward kernel for dtype ``DT``."""

    @cuda.jit
    def relu_forward(x, y):
        """y[i] = 0 if x[i] <= 0 else x[i], over flat arrays of one length.

        Thread ``g`` (grid-stride) computes ``y[g]``, ``y[g + G]``, ... . No shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, x.shape[0], step):
            v = x[i]
            y[i] = DT(0) if v <= DT(0) else v

    return relu_forward


@kernel_cache
def relu_backward_kernel(DT):
    """Build the ReLU backward kernel for dtype ``DT``."""

    @cuda.jit
    def relu_backward(grad_y, x, grad_x):
        """grad_x[i] = 0 if x[i] <= 0 else grad_y[i], over flat arrays of one length.

        Thread ``g`` (grid-stride) computes ``grad_x[g]``, ``grad_x[g + G]``, ... .
        No shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, x.shape[0], step):
            grad_x[i] = DT(0) if x[i] <= DT(0) else grad_y[i]

    return relu_backward


def relu(dx):
    """ReLU of the device array ``dx`` (any shape): a new device array of that shape."""
    dy = empty(dx.shape, dx.dtype)
    n = int(np.prod(dx.shape))
    launch_stride(relu_forward_kernel(numba_dtype(dx)), n, flat(dx), flat(dy))
    return dy


def relu_backward(dgrad_y, dx):
    """grad_x of ReLU: ``dgrad_y`` where ``dx > 0`` (or NaN), else 0; device arrays."""
    dgrad_x = empty(dx.shape, dgrad_y.dtype)
    n = int(np.prod(dx.shape))
    launch_stride(relu_backward_kernel(numba_dtype(dx)), n, flat(dgrad_y), flat(dx),
                  flat(dgrad_x))
    return dgrad_x


def kernel_signatures():
    """``[(name, dtype_name, dispatcher, signature)]`` of every kernel here, both dtypes.

    The format of ``kernels.cuda.ptx.kernel_signatures``, for ``numba.cuda.compile_ptx``.
    """
    import numba
    from numba import types

    out = []
    for DT in (numba.float32, numba.float64):
        a1 = types.Array(DT, 1, "C")
        out.append(("relu_forward", str(DT), relu_forward_kernel(DT), types.void(a1, a1)))
        out.append(("relu_backward", str(DT), relu_backward_kernel(DT),
                    types.void(a1, a1, a1)))
    return out
