"""Element-wise ops on the device: ReLU, sigmoid and tanh forward and backward; add.

What changes relative to ``kernels.naive``: naive's loop over the elements becomes a
*grid-stride loop*: thread ``g = blockIdx.x * blockDim.x + threadIdx.x`` of ``G`` threads
handles elements ``g, g + G, g + 2G, ...`` of the flat array, so consecutive threads read
consecutive addresses (coalesced) and one launch of at most ``BLOCKS_PER_SM * SMs`` blocks
covers an array of any size. Nothing is staged in shared memory: each element is read once.

The test is PyTorch's ``x <= 0`` in both directions: a NaN is not ``<= 0``, so it passes
through forward (as NaN) and passes its gradient backward.
"""

from __future__ import annotations

import math

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


@kernel_cache
def sigmoid_forward_kernel(DT):
    """Build the sigmoid forward kernel for dtype ``DT``."""

    @cuda.jit
    def sigmoid_forward(x, y):
        """y[i] = 1 / (1 + exp(-x[i])) over flat arrays of the same length.

        Thread ``g`` (grid-stride, see the module docstring) computes ``y[g]``, ``y[g + G]``,
        ... . Stable for large ``|x|``: ``exp`` only ever sees a non-positive argument
        (``x >= 0``: ``1 / (1 + exp(-x))``; ``x < 0``: ``exp(x) / (1 + exp(x))``), so it
        never overflows. NaN in gives NaN out. No shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, x.shape[0], step):
            v = x[i]
            if v >= DT(0):
                y[i] = DT(1) / (DT(1) + math.exp(-v))
            else:
                e = math.exp(v)
                y[i] = e / (DT(1) + e)

    return sigmoid_forward


@kernel_cache
def sigmoid_backward_kernel(DT):
    """Build the sigmoid backward kernel for dtype ``DT``."""

    @cuda.jit
    def sigmoid_backward(grad_y, y, grad_x):
        """grad_x[i] = grad_y[i] * (1 - y[i]) * y[i], with ``y`` the forward's output.

        Thread ``g`` (grid-stride) computes ``grad_x[g]``, ``grad_x[g + G]``, ... .
        No shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, y.shape[0], step):
            s = y[i]
            grad_x[i] = grad_y[i] * (DT(1) - s) * s

    return sigmoid_backward


@kernel_cache
def tanh_forward_kernel(DT):
    """Build the tanh forward kernel for dtype ``DT``."""

    @cuda.jit
    def tanh_forward(x, y):
        """y[i] = tanh(x[i]) over flat arrays of one length (grid-stride, no shared memory)."""
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, x.shape[0], step):
            y[i] = math.tanh(x[i])

    return tanh_forward


@kernel_cache
def tanh_backward_kernel(DT):
    """Build the tanh backward kernel for dtype ``DT``."""

    @cuda.jit
    def tanh_backward(grad_y, y, grad_x):
        """grad_x[i] = grad_y[i] * (1 - y[i] * y[i]), ``y`` the forward's output.

        Grid-stride, no shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, y.shape[0], step):
            t = y[i]
            grad_x[i] = grad_y[i] * (DT(1) - t * t)

    return tanh_backward


@kernel_cache
def add_kernel(DT):
    """Build the element-wise sum kernel for dtype ``DT``."""

    @cuda.jit
    def add_elementwise(a, b, y):
        """y[i] = a[i] + b[i] over flat arrays of one length (grid-stride, no shared memory)."""
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, a.shape[0], step):
            y[i] = a[i] + b[i]

    return add_elementwise


def _map(build, out_like, *arrays):
    """Launch ``build(DT)`` over the flat ``arrays`` and a new output shaped as ``out_like``."""
    out = empty(out_like.shape, out_like.dtype)
    n = int(np.prod(out_like.shape))
    launch_stride(build(numba_dtype(out_like)), n, *(flat(a) for a in arrays), flat(out))
    return out


def sigmoid(dx):
    """Sigmoid of the device array ``dx`` (any shape): a new device array of that shape."""
    return _map(sigmoid_forward_kernel, dx, dx)


def sigmoid_backward(dgrad_y, dy):
    """grad_x of sigmoid from its output ``dy``: ``dgrad_y * (1 - dy) * dy``; device arrays."""
    return _map(sigmoid_backward_kernel, dgrad_y, dgrad_y, dy)


def tanh(dx):
    """The tanh of the device array ``dx`` (any shape): a new device array of that shape."""
    return _map(tanh_forward_kernel, dx, dx)


def tanh_backward(dgrad_y, dy):
    """grad_x of tanh from its output ``dy``: ``dgrad_y * (1 - dy * dy)``; device arrays."""
    return _map(tanh_backward_kernel, dgrad_y, dgrad_y, dy)


def add(da, db):
    """``da + db`` for device arrays of one shape: a new device array of that shape."""
    return _map(add_kernel, da, da, db)


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
        out.append(("sigmoid_forward", str(DT), sigmoid_forward_kernel(DT),
                    types.void(a1, a1)))
        out.append(("sigmoid_backward", str(DT), sigmoid_backward_kernel(DT),
                    types.void(a1, a1, a1)))
        out.append(("tanh_forward", str(DT), tanh_forward_kernel(DT), types.void(a1, a1)))
        out.append(("tanh_backward", str(DT), tanh_backward_kernel(DT),
                    types.void(a1, a1, a1)))
        out.append(("add_elementwise", str(DT), add_kernel(DT), types.void(a1, a1, a1)))
    return out
