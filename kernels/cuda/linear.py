"""The fully connected layer on the device: ``y = x @ W.T + b`` and its three gradients.

What changes relative to ``kernels.naive.linear``: naive's loops over the elements of ``y``
(and of each gradient) become *grid-stride loops* (:mod:`.elementwise`): thread ``g`` owns
elements ``g, g + G, ...`` of the output in C order and reduces over the inner index in order,
so ``threadIdx.x`` walks the output's last axis. Each gradient is a gather (one thread writes
each element): no atomics, and the same bits every run. A naive GEMM, kept readable (a Linear
layer is also a 1x1 convolution of ``x`` viewed as ``(N, K, 1, 1)``, d2l 7.4; the conv rungs'
tiled implicit GEMM would run it that way). Arrays are C-contiguous device arrays, float32 or
float64.
"""

from __future__ import annotations

from numba import cuda

from ._arrays import empty, kernel_cache, numba_dtype
from .elementwise import launch_stride


@kernel_cache
def linear_forward_kernel(DT):
    """Build the Linear forward (naive GEMM) kernel for dtype ``DT``."""

    @cuda.jit
    def linear_forward(x, weight, bias, y):
        """y[n, o] = bias[o] + sum_k x[n, k] * weight[o, k];  x (N, K), weight (O, K).

        Thread ``g`` (grid-stride over the ``N*O`` elements of ``y`` in C order, so
        ``threadIdx.x`` walks ``o``) owns ``y[n, o]`` and reduces over ``k`` in order. A warp
        reads ``x[n, k]`` once (broadcast) and ``weight[o, k]`` at stride ``K`` (not
        coalesced; LeNet's weights stay in L2). ``bias`` may be empty (no bias). No shared
        memory.
        """
        N, K = x.shape
        O = weight.shape[0]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for index in range(start, N * O, step):
            n = index // O
            o = index - n * O
            acc = DT(0)
            if bias.shape[0] > 0:
                acc = bias[o]
            for k in range(K):
                acc += x[n, k] * weight[o, k]
            y[n, o] = acc

    return linear_forward


@kernel_cache
def linear_grad_input_kernel(DT):
    """Build the Linear grad_x kernel for dtype ``DT``."""

    @cuda.jit
    def linear_grad_input(grad_y, weight, grad_x):
        """grad_x[n, k] = sum_o grad_y[n, o] * weight[o, k]  (grad_x = grad_y @ W).

        Thread ``g`` (grid-stride over ``grad_x`` (N, K) in C order, ``threadIdx.x`` walks
        ``k``) owns ``grad_x[n, k]``; a warp reads consecutive ``weight[o, k]`` (coalesced).
        No shared memory.
        """
        N, K = grad_x.shape
        O = weight.shape[0]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for index in range(start, N * K, step):
            n = index // K
            k = index - n * K
            acc = DT(0)
            for o in range(O):
                acc += grad_y[n, o] * weight[o, k]
            grad_x[n, k] = acc

    return linear_grad_input


@kernel_cache
def linear_grad_weight_kernel(DT):
    """Build the Linear grad_W kernel for dtype ``DT``."""

    @cuda.jit
    def linear_grad_weight(grad_y, x, grad_w):
        """grad_w[o, k] = sum_n grad_y[n, o] * x[n, k]  (grad_W = grad_y.T @ x).

        Thread ``g`` (grid-stride over ``grad_w`` (O, K) in C order, ``threadIdx.x`` walks
        ``k``) owns ``grad_w[o, k]`` and adds the samples ``n = 0, 1, ...`` in order; a warp
        reads consecutive ``x[n, k]`` (coalesced). No shared memory, no atomics.
        """
        O, K = grad_w.shape
        N = x.shape[0]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for index in range(start, O * K, step):
            o = index // K
            k = index - o * K
            acc = DT(0)
            for n in range(N):
                acc += grad_y[n, o] * x[n, k]
            grad_w[o, k] = acc

    return linear_grad_weight


@kernel_cache
def linear_grad_bias_kernel(DT):
    """Build the Linear grad_b kernel for dtype ``DT``."""

    @cuda.jit
    def linear_grad_bias(grad_y, grad_b):
        """grad_b[o] = sum_n grad_y[n, o], the samples added in order.

        Thread ``g`` (grid-stride over ``o``) owns ``grad_b[o]``. No shared memory.
        """
        N, O = grad_y.shape
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for o in range(start, O, step):
            acc = DT(0)
            for n in range(N):
                acc += grad_y[n, o]
            grad_b[o] = acc

    return linear_grad_bias


def linear_forward(x, weight, bias=None):
    """Linear layer: x (N, in), weight (out, in), bias (out,) or None -> y (N, out).

    ``y = x @ weight.T + bias``, one thread per element of ``y`` (:func:`linear_forward_kernel`).
    """
    N = x.shape[0]
    O = weight.shape[0]
    y = empty((N, O), x.dtype)
    b = empty((0,), x.dtype) if bias is None else bias
    launch_stride(linear_forward_kernel(numba_dtype(x)), N * O, x, weight, b, y)
    return y


def linear_backward(grad_y, x, weight, needs_input_grad=(True, True, True)):
    """grad_y (N, out), x (N, in), weight (out, in) -> (grad_x, grad_weight, grad_bias).

    ``grad_x = grad_y @ weight`` (N, in), ``grad_weight = grad_y.T @ x`` (out, in),
    ``grad_bias = grad_y.sum(0)`` (out,): three kernels, each a gather. A gradient that
    ``needs_input_grad`` (PyTorch's ``output_mask``) does not ask for is not computed: ``None``.
    """
    need_x, need_w, need_b = (bool(flag) for flag in needs_input_grad)
    DT = numba_dtype(x)
    N, K = x.shape
    O = weight.shape[0]
    grad_x = grad_w = grad_b = None
    if need_x:
        grad_x = empty((N, K), x.dtype)
        launch_stride(linear_grad_input_kernel(DT), N * K, grad_y, weight, grad_x)
    if need_w:
        grad_w = empty((O, K), x.dtype)
        launch_stride(linear_grad_weight_kernel(DT), O * K, grad_y, x, grad_w)
    if need_b:
        grad_b = empty((O,), x.dtype)
        launch_stride(linear_grad_bias_kernel(DT), O, grad_y, grad_b)
    return grad_x, grad_w, grad_b


def kernel_signatures():
    """``[(name, dtype_name, dispatcher, signature)]`` of every kernel here, both dtypes.

    The format of ``kernels.cuda.ptx.kernel_signatures``, for ``numba.cuda.compile_ptx``.
    """
    import numba
    from numba import types

    out = []
    for DT in (numba.float32, numba.float64):
        a1, a2 = types.Array(DT, 1, "C"), types.Array(DT, 2, "C")
        for name, dispatcher, args in [
            ("linear_forward", linear_forward_kernel(DT), (a2, a2, a1, a2)),
            ("linear_grad_input", linear_grad_input_kernel(DT), (a2, a2, a2)),
            ("linear_grad_weight", linear_grad_weight_kernel(DT), (a2, a2, a2)),
            ("linear_grad_bias", linear_grad_bias_kernel(DT), (a2, a1)),
        ]:
            out.append((name, str(DT), dispatcher, types.void(*args)))
    return out


__all__ = [
    "kernel_signatures",
    "linear_backward",
    "linear_forward",
    "linear_forward_kernel",
    "linear_grad_bias_kernel",
    "linear_grad_input_kernel",
    "linear_grad_weight_kernel",
]
