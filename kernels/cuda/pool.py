"""Max, average and adaptive pooling, and max unpooling, on the device, forward and backward.

What changes relative to ``kernels.naive``: the loops over output elements become the thread
grid (one thread per output element, ``threadIdx.x`` walking ``w_out``), each thread runs the
naive window loop. Pooling is memory-bound, so nothing is staged in shared memory: each input
is read by at most ``ceil(kH/sH) * ceil(kW/sW)`` neighbouring threads and the L1 cache serves
the repeats.

Every kernel takes its arrays and the problem's record from :mod:`kernels.common`, nothing
else: a :class:`~kernels.common.PoolSpec` for max and average pooling, an
:class:`~kernels.common.AdaptivePoolSpec` for adaptive pooling. A thread reads the fields it
needs (``spec.stride_h``, ``spec.H_out``, ``spec.divisor_override``); the output size was
computed once, by the spec's constructor, and no kernel recomputes it.

The backward passes are *gathers*: one thread per input element loops over the outputs whose
windows contain it (``h = h_out*stride - padding + i*dilation`` solved for ``h_out``), so each
thread owns the element it writes: no atomics, a fixed summation order.

Max pooling backward must send each output's gradient to its window's argmax, chosen by
PyTorch's rule (start at the first in-bounds cell with ``-inf``, scan row-major, take
``value > best or isnan(value)``: ties go to the first maximum, the last NaN wins). The
forward stores that argmax when asked (``return_indices``): one int64 per output, the flat
``h*W + w`` in its input plane, ``-1`` for a window with no cell inside the input. The
backward takes those indices back (as PyTorch's autograd keeps them), or ``None``: then it
first runs :func:`max_forward_kernel` again to store them, scanning each window once. Then
:func:`max_backward_kernel` gathers: input cell ``(h, w)`` adds the ``grad_y`` of every
window that holds it and whose index equals ``h*W + w`` (a ``-1`` matches no cell).
Recomputing the argmax inside the gather instead would rescan each window once per cell it
contains (``kH*kW/(sH*sW)`` times). Since a cell only visits the windows that hold it, an
index pointing outside its own window (the forward never stores one) is ignored.

Average pooling divides by PyTorch's divisor (:func:`avg_divisor`, the device twin of
``kernels.common.avg_pool_divisor``); adaptive pooling uses the windows of
``kernels.common.adaptive_bounds``, written out in each kernel. Adaptive max pooling is max
pooling's scan over those windows (one thread per output) and max pooling's gather backward
over the windows that hold a cell (adaptive average's backward ranges).

Max unpooling writes ``y[n, c].flat[indices[n, c, h, w]] = x[n, c, h, w]``. One thread per
input writing its value would race where two inputs name one cell, and naive's (and
PyTorch's) rule is that the last input in row-major order wins. So it takes three launches:
:func:`fill_kernel` sets an int64 "winner" per output cell to ``-1``,
:func:`unpool_claim_kernel` (one thread per input) does ``cuda.atomic.max(winner, cell,
h*W + w)``, which leaves the last claimant whatever order the threads run in, and
:func:`unpool_forward_kernel` (one thread per output) copies its winner's value, or 0. Its
backward is a gather, one thread per input: ``grad_x = grad_y[n, c].flat[index]``. Indices
outside ``[0, H_out*W_out)`` (the functional layer refuses them on the host; device arrays
are not checked there) are skipped, never used to address memory.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from kernels.common import AdaptivePoolSpec, PoolSpec, UnpoolSpec

from ._arrays import blocks, empty, kernel_cache, numba_dtype, unravel4

THREADS = 256


@cuda.jit(device=True, inline="always")
def avg_divisor(h_start, w_start, spec):
    """PyTorch's average-pooling divisor of the window with top-left cell (h_start, w_start).

    The device twin of ``kernels.common.avg_pool_divisor``; ``h_start, w_start`` are in
    unpadded input coordinates (negative in the top/left padding) and ``spec`` is the
    :class:`~kernels.common.PoolSpec`. The host twin's clamp at 0 is left out: every window
    of a valid spec holds at least one input cell (``pool_output_size`` drops a window that
    would start in the right padding, and padding is at most half the window, so none lies
    wholly in the top/left padding), so each count is positive.
    """
    if spec.divisor_override != 0:
        return spec.divisor_override
    h_end = min(h_start + spec.kH, spec.H + spec.pad_h)
    w_end = min(w_start + spec.kW, spec.W + spec.pad_w)
    if spec.count_include_pad != 0:  # the window clipped to the padded input
        return (h_end - h_start) * (w_end - w_start)
    return (min(h_end, spec.H) - max(h_start, 0)) * (min(w_end, spec.W) - max(w_start, 0))


@kernel_cache
def max_forward_kernel(DT):
    """Build the max-pooling forward kernel for dtype ``DT``."""

    @cuda.jit
    def max_pool2d_forward(x, y, indices, spec):
        """y[n, c, ho, wo] = max of the window; indices (if not empty) = its flat h*W + w.

        x : (N, C, H, W); y, indices : (N, C, H_out, W_out), ``indices`` int64, or of shape
        ``(0, 1, 1, 1)`` when the caller does not want them; spec : PoolSpec.

        PyTorch's scan: the first in-bounds tap, then a tap that is greater or NaN. A window
        with no tap inside the input keeps ``-inf`` and index ``-1``.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``y`` in C order
        (``threadIdx.x`` walks ``wo``). No shared memory.
        """
        index = cuda.grid(1)
        if index >= spec.N * spec.C * spec.H_out * spec.W_out:
            return
        n, c, ho, wo = unravel4(index, spec.C, spec.H_out, spec.W_out)
        h_start = ho * spec.stride_h - spec.pad_h
        w_start = wo * spec.stride_w - spec.pad_w
        h_end = min(h_start + (spec.kH - 1) * spec.dil_h + 1, spec.H)
        w_end = min(w_start + (spec.kW - 1) * spec.dil_w + 1, spec.W)
        while h_start < 0:
            h_start += spec.dil_h
        while w_start < 0:
            w_start += spec.dil_w
        best = DT(-math.inf)
        best_index = -1  # becomes the first in-bounds cell, PyTorch's start
        for h in range(h_start, h_end, spec.dil_h):
            for w in range(w_start, w_end, spec.dil_w):
                value = x[n, c, h, w]
                if best_index < 0 or value > best or math.isnan(value):
                    best = value
                    best_index = h * spec.W + w
        y[n, c, ho, wo] = best
        if indices.shape[0] > 0:
            indices[n, c, ho, wo] = best_index

    return max_pool2d_forward


@kernel_cache
def max_backward_kernel(DT):
    """Build the max-pooling backward (gather) kernel for dtype ``DT``."""

    @cuda.jit
    def max_pool2d_backward(grad_y, indices, grad_x, spec):
        """grad_x[n, c, h, w] = sum of grad_y over the windows whose index is h*W + w.

        grad_y, indices (int64) : (N, C, H_out, W_out); grad_x : (N, C, H, W);
        spec : PoolSpec.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``grad_x`` in C
        order (``threadIdx.x`` walks ``w``); it visits the windows holding ``(h, w)``: kernel
        row ``i`` puts it in output row ``ho = (h + pH - i*dH) / sH`` when that divides.
        No shared memory, no atomics.
        """
        index = cuda.grid(1)
        if index >= spec.N * spec.C * spec.H * spec.W:
            return
        n, c, h, w = unravel4(index, spec.C, spec.H, spec.W)
        me = h * spec.W + w
        acc = DT(0)
        for i in range(spec.kH):
            hs = h + spec.pad_h - i * spec.dil_h
            if hs < 0 or hs % spec.stride_h != 0 or hs // spec.stride_h >= spec.H_out:
                continue
            for j in range(spec.kW):
                ws = w + spec.pad_w - j * spec.dil_w
                if ws < 0 or ws % spec.stride_w != 0 or ws // spec.stride_w >= spec.W_out:
                    continue
                if indices[n, c, hs // spec.stride_h, ws // spec.stride_w] == me:
                    acc += grad_y[n, c, hs // spec.stride_h, ws // spec.stride_w]
        grad_x[n, c, h, w] = acc

    return max_pool2d_backward


@kernel_cache
def avg_forward_kernel(DT):
    """Build the average-pooling forward kernel for dtype ``DT``."""

    @cuda.jit
    def avg_pool2d_forward(x, y, spec):
        """y[n, c, ho, wo] = sum of the window's real cells / PyTorch's divisor.

        x : (N, C, H, W); y : (N, C, H_out, W_out); spec : PoolSpec (dilation 1).

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``y`` in C order
        (``threadIdx.x`` walks ``wo``). No shared memory.
        """
        index = cuda.grid(1)
        if index >= spec.N * spec.C * spec.H_out * spec.W_out:
            return
        n, c, ho, wo = unravel4(index, spec.C, spec.H_out, spec.W_out)
        h_start = ho * spec.stride_h - spec.pad_h
        w_start = wo * spec.stride_w - spec.pad_w
        total = DT(0)
        for h in range(max(h_start, 0), min(h_start + spec.kH, spec.H)):
            for w in range(max(w_start, 0), min(w_start + spec.kW, spec.W)):
                total += x[n, c, h, w]
        y[n, c, ho, wo] = total / DT(avg_divisor(h_start, w_start, spec))

    return avg_pool2d_forward


@kernel_cache
def avg_backward_kernel(DT):
    """Build the average-pooling backward (gather) kernel for dtype ``DT``."""

    @cuda.jit
    def avg_pool2d_backward(grad_y, grad_x, spec):
        """grad_x[n, c, h, w] = sum over windows holding (h, w) of grad_y / divisor.

        grad_y : (N, C, H_out, W_out); grad_x : (N, C, H, W); spec : PoolSpec (dilation 1).

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``grad_x`` in C
        order (``threadIdx.x`` walks ``w``). Window ``ho`` covers rows
        ``[ho*sH - pH, ho*sH - pH + kH)``, so the windows holding row ``h`` are
        ``ho = floor((h + pH - kH) / sH) + 1 ... floor((h + pH) / sH)``. No shared memory.
        """
        index = cuda.grid(1)
        if index >= spec.N * spec.C * spec.H * spec.W:
            return
        n, c, h, w = unravel4(index, spec.C, spec.H, spec.W)
        sh, sw, ph, pw = spec.stride_h, spec.stride_w, spec.pad_h, spec.pad_w  # short names
        acc = DT(0)
        for ho in range(max((h + ph - spec.kH) // sh + 1, 0),
                        min((h + ph) // sh + 1, spec.H_out)):
            for wo in range(max((w + pw - spec.kW) // sw + 1, 0),
                            min((w + pw) // sw + 1, spec.W_out)):
                divisor = avg_divisor(ho * sh - ph, wo * sw - pw, spec)
                acc += grad_y[n, c, ho, wo] / DT(divisor)
        grad_x[n, c, h, w] = acc

    return avg_pool2d_backward


@kernel_cache
def adaptive_forward_kernel(DT):
    """Build the adaptive-average-pooling forward kernel for dtype ``DT``."""

    @cuda.jit
    def adaptive_avg_pool2d_forward(x, y, spec):
        """y[n, c, i, j] = mean of x[n, c, h_start:h_end, w_start:w_end].

        x : (N, C, H, W); y : (N, C, H_out, W_out); spec : AdaptivePoolSpec.

        ``h_start = floor(i*H/H_out)``, ``h_end = ceil((i+1)*H/H_out)`` (same along W).
        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``y`` in C order
        (``threadIdx.x`` walks ``j``). No shared memory.
        """
        H, W, Ho, Wo = spec.H, spec.W, spec.H_out, spec.W_out  # short names for the formulas
        index = cuda.grid(1)
        if index >= spec.N * spec.C * Ho * Wo:
            return
        n, c, i, j = unravel4(index, spec.C, Ho, Wo)
        h_start = (i * H) // Ho
        h_end = ((i + 1) * H + Ho - 1) // Ho
        w_start = (j * W) // Wo
        w_end = ((j + 1) * W + Wo - 1) // Wo
        total = DT(0)
        for h in range(h_start, h_end):
            for w in range(w_start, w_end):
                total += x[n, c, h, w]
        y[n, c, i, j] = total / DT((h_end - h_start) * (w_end - w_start))

    return adaptive_avg_pool2d_forward


@kernel_cache
def adaptive_backward_kernel(DT):
    """Build the adaptive-average-pooling backward (gather) kernel for dtype ``DT``."""

    @cuda.jit
    def adaptive_avg_pool2d_backward(grad_y, grad_x, spec):
        """grad_x[n, c, h, w] = sum over windows (i, j) holding (h, w) of grad_y / size.

        grad_y : (N, C, H_out, W_out); grad_x : (N, C, H, W); spec : AdaptivePoolSpec.

        Window ``i`` holds row ``h`` exactly when ``floor(h*H_out/H) <= i <
        ceil((h+1)*H_out/H)``. Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one
        element of ``grad_x`` in C order (``threadIdx.x`` walks ``w``). No shared memory.
        """
        H, W, Ho, Wo = spec.H, spec.W, spec.H_out, spec.W_out  # short names for the formulas
        index = cuda.grid(1)
        if index >= spec.N * spec.C * H * W:
            return
        n, c, h, w = unravel4(index, spec.C, H, W)
        acc = DT(0)
        for i in range((h * Ho) // H, min(((h + 1) * Ho + H - 1) // H, Ho)):
            h_size = ((i + 1) * H + Ho - 1) // Ho - (i * H) // Ho
            for j in range((w * Wo) // W, min(((w + 1) * Wo + W - 1) // W, Wo)):
                w_size = ((j + 1) * W + Wo - 1) // Wo - (j * W) // Wo
                acc += grad_y[n, c, i, j] / DT(h_size * w_size)
        grad_x[n, c, h, w] = acc

    return adaptive_avg_pool2d_backward


@kernel_cache
def adaptive_max_forward_kernel(DT):
    """Build the adaptive-max-pooling forward kernel for dtype ``DT``."""

    @cuda.jit
    def adaptive_max_pool2d_forward(x, y, indices, spec):
        """y[n, c, i, j] = max of adaptive window (i, j); indices (if not empty) its h*W + w.

        x : (N, C, H, W); y, indices : (N, C, H_out, W_out), ``indices`` int64 or of shape
        ``(0, 1, 1, 1)`` when not wanted; spec : AdaptivePoolSpec. PyTorch's scan: from the
        window's first cell with ``-inf``, take a value that is greater or NaN.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``y`` in C order
        (``threadIdx.x`` walks ``j``). No shared memory.
        """
        H, W, Ho, Wo = spec.H, spec.W, spec.H_out, spec.W_out  # short names for the formulas
        index = cuda.grid(1)
        if index >= spec.N * spec.C * Ho * Wo:
            return
        n, c, i, j = unravel4(index, spec.C, Ho, Wo)
        h_start = (i * H) // Ho
        h_end = ((i + 1) * H + Ho - 1) // Ho
        w_start = (j * W) // Wo
        w_end = ((j + 1) * W + Wo - 1) // Wo
        best = DT(-math.inf)
        best_index = h_start * W + w_start
        for h in range(h_start, h_end):
            for w in range(w_start, w_end):
                value = x[n, c, h, w]
                if value > best or math.isnan(value):
                    best = value
                    best_index = h * W + w
        y[n, c, i, j] = best
        if indices.shape[0] > 0:
            indices[n, c, i, j] = best_index

    return adaptive_max_pool2d_forward


@kernel_cache
def adaptive_max_backward_kernel(DT):
    """Build the adaptive-max-pooling backward (gather) kernel for dtype ``DT``."""

    @cuda.jit
    def adaptive_max_pool2d_backward(grad_y, indices, grad_x, spec):
        """grad_x[n, c, h, w] = sum of grad_y over the windows holding (h, w) whose index
        is h*W + w.

        grad_y, indices (int64) : (N, C, H_out, W_out); grad_x : (N, C, H, W);
        spec : AdaptivePoolSpec. Windows holding row ``h``: ``floor(h*H_out/H) <= i <
        ceil((h+1)*H_out/H)`` (as adaptive average pooling's backward). Thread
        ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``grad_x`` in C order
        (``threadIdx.x`` walks ``w``). No shared memory, no atomics.
        """
        H, W, Ho, Wo = spec.H, spec.W, spec.H_out, spec.W_out  # short names for the formulas
        index = cuda.grid(1)
        if index >= spec.N * spec.C * H * W:
            return
        n, c, h, w = unravel4(index, spec.C, H, W)
        me = h * W + w
        acc = DT(0)
        for i in range((h * Ho) // H, min(((h + 1) * Ho + H - 1) // H, Ho)):
            for j in range((w * Wo) // W, min(((w + 1) * Wo + W - 1) // W, Wo)):
                if indices[n, c, i, j] == me:
                    acc += grad_y[n, c, i, j]
        grad_x[n, c, h, w] = acc

    return adaptive_max_pool2d_backward


@cuda.jit
def fill_kernel(a, value):
    """a[k] = value for every k: thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns ``a[k]``.

    a : (size,) int64 (max unpooling's winners, before :func:`unpool_claim_kernel`).
    """
    k = cuda.grid(1)
    if k < a.shape[0]:
        a[k] = value


@cuda.jit
def unpool_claim_kernel(indices, winner, spec):
    """winner[plane*H_out*W_out + indices[n, c, h, w]] = the largest h*W + w naming that cell.

    indices : (N, C, H, W) int64; winner : (N*C*H_out*W_out,) int64, all ``-1`` before;
    spec : UnpoolSpec. Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns input ``(n, c,
    h, w)`` in C order (``threadIdx.x`` walks ``w``); ``cuda.atomic.max`` makes the last
    input in row-major order the winner whatever order the threads run in.
    """
    index = cuda.grid(1)
    if index >= spec.N * spec.C * spec.H * spec.W:
        return
    n, c, h, w = unravel4(index, spec.C, spec.H, spec.W)
    k = indices[n, c, h, w]
    plane_size = spec.H_out * spec.W_out
    if 0 <= k < plane_size:
        cuda.atomic.max(winner, (n * spec.C + c) * plane_size + k, h * spec.W + w)


@kernel_cache
def unpool_forward_kernel(DT):
    """Build the max-unpooling forward kernel for dtype ``DT``."""

    @cuda.jit
    def max_unpool2d_forward(x, winner, y, spec):
        """y[n, c, i, j] = x[n, c].flat[winner] of its cell, or 0 where no input went.

        x : (N, C, H, W); winner : (N*C*H_out*W_out,) int64 from
        :func:`unpool_claim_kernel`; y : (N, C, H_out, W_out); spec : UnpoolSpec. Thread
        ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``y`` in C order
        (``threadIdx.x`` walks ``j``). No shared memory.
        """
        index = cuda.grid(1)
        if index >= spec.N * spec.C * spec.H_out * spec.W_out:
            return
        n, c, i, j = unravel4(index, spec.C, spec.H_out, spec.W_out)
        source = winner[index]
        value = DT(0)
        if source >= 0:
            value = x[n, c, source // spec.W, source % spec.W]
        y[n, c, i, j] = value

    return max_unpool2d_forward


@kernel_cache
def unpool_backward_kernel(DT):
    """Build the max-unpooling backward (gather) kernel for dtype ``DT``."""

    @cuda.jit
    def max_unpool2d_backward(grad_y, indices, grad_x, spec):
        """grad_x[n, c, h, w] = grad_y[n, c].flat[indices[n, c, h, w]] (0 if out of range).

        grad_y : (N, C, H_out, W_out); indices (int64), grad_x : (N, C, H, W);
        spec : UnpoolSpec. Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element
        of ``grad_x`` in C order (``threadIdx.x`` walks ``w``). No shared memory.
        """
        index = cuda.grid(1)
        if index >= spec.N * spec.C * spec.H * spec.W:
            return
        n, c, h, w = unravel4(index, spec.C, spec.H, spec.W)
        k = indices[n, c, h, w]
        value = DT(0)
        if 0 <= k < spec.H_out * spec.W_out:
            value = grad_y[n, c, k // spec.W_out, k % spec.W_out]
        grad_x[n, c, h, w] = value

    return max_unpool2d_backward


# --------------------------------------------------------------------------- host side


def _launch(kernel, total, *args):
    kernel[blocks(total, THREADS), THREADS](*args)


def _size(shape) -> int:
    return int(np.prod(shape))


def max_pool2d(x, spec: PoolSpec, *, return_indices=False):
    """Max pooling of a device array, PyTorch's rule.

    Parameters
    ----------
    x : (N, C, H, W) device array, float32 or float64 (``spec.x_shape``)
    spec : PoolSpec
    return_indices : bool
        Also return the argmax of each window.

    Returns
    -------
    y : (N, C, H_out, W_out) device array, ``x``'s dtype
    indices : (N, C, H_out, W_out) int64 device array, only with ``return_indices``
        The flat ``h*W + w`` of each window's maximum in its plane, ``-1`` for a window
        with no cell inside the input.
    """
    y = empty(spec.y_shape, x.dtype)
    indices = empty(spec.y_shape if return_indices else (0, 1, 1, 1), np.int64)
    _launch(max_forward_kernel(numba_dtype(x)), _size(spec.y_shape), x, y, indices, spec)
    return (y, indices) if return_indices else y


def max_pool2d_backward(grad_y, x, indices, spec: PoolSpec):
    """grad_x (N, C, H, W): the gather, after an index pass unless ``indices`` is given.

    grad_y : (N, C, H_out, W_out) and x : (N, C, H, W) device arrays of one float dtype;
    indices : (N, C, H_out, W_out) int64 device array from :func:`max_pool2d`, or None.
    """
    if indices is None:
        _, indices = max_pool2d(x, spec, return_indices=True)
    grad_x = empty(spec.x_shape, x.dtype)
    _launch(max_backward_kernel(numba_dtype(x)), _size(spec.x_shape), grad_y, indices, grad_x,
            spec)
    return grad_x


def avg_pool2d(x, spec: PoolSpec):
    """Average pooling: x (N, C, H, W) device array -> y (N, C, H_out, W_out)."""
    y = empty(spec.y_shape, x.dtype)
    _launch(avg_forward_kernel(numba_dtype(x)), _size(spec.y_shape), x, y, spec)
    return y


def avg_pool2d_backward(grad_y, spec: PoolSpec):
    """grad_y (N, C, H_out, W_out) device array -> grad_x (N, C, H, W), grad_y's dtype."""
    grad_x = empty(spec.x_shape, grad_y.dtype)
    _launch(avg_backward_kernel(numba_dtype(grad_y)), _size(spec.x_shape), grad_y, grad_x,
            spec)
    return grad_x


def adaptive_avg_pool2d(x, spec: AdaptivePoolSpec):
    """Adaptive average pooling: x (N, C, H, W) device array -> y (N, C, H_out, W_out)."""
    y = empty(spec.y_shape, x.dtype)
    _launch(adaptive_forward_kernel(numba_dtype(x)), _size(spec.y_shape), x, y, spec)
    return y


def adaptive_avg_pool2d_backward(grad_y, spec: AdaptivePoolSpec):
    """grad_y (N, C, H_out, W_out) device array -> grad_x (N, C, H, W), grad_y's dtype."""
    grad_x = empty(spec.x_shape, grad_y.dtype)
    _launch(adaptive_backward_kernel(numba_dtype(grad_y)), _size(spec.x_shape), grad_y,
            grad_x, spec)
    return grad_x


def adaptive_max_pool2d(x, spec: AdaptivePoolSpec, *, return_indices=False):
    """Adaptive max pooling of a device array: x (N, C, H, W) -> y (N, C, H_out, W_out).

    With ``return_indices`` also the int64 ``(N, C, H_out, W_out)`` flat ``h*W + w`` of each
    window's maximum, a device array.
    """
    y = empty(spec.y_shape, x.dtype)
    indices = empty(spec.y_shape if return_indices else (0, 1, 1, 1), np.int64)
    _launch(adaptive_max_forward_kernel(numba_dtype(x)), _size(spec.y_shape), x, y, indices,
            spec)
    return (y, indices) if return_indices else y


def adaptive_max_pool2d_backward(grad_y, x, indices, spec: AdaptivePoolSpec):
    """grad_x (N, C, H, W): the gather, after an index pass unless ``indices`` is given.

    grad_y : (N, C, H_out, W_out), x : (N, C, H, W) device arrays; indices : int64
    (N, C, H_out, W_out) device array from :func:`adaptive_max_pool2d`, or None.
    """
    if indices is None:
        _, indices = adaptive_max_pool2d(x, spec, return_indices=True)
    grad_x = empty(spec.x_shape, grad_y.dtype)
    _launch(adaptive_max_backward_kernel(numba_dtype(grad_y)), _size(spec.x_shape), grad_y,
            indices, grad_x, spec)
    return grad_x


def max_unpool2d(x, indices, spec: UnpoolSpec):
    """Max unpooling of device arrays: x, indices (N, C, H, W) -> y (N, C, H_out, W_out).

    Three launches (module header): winners to -1, claim by atomic max, copy.
    """
    winner = empty((_size(spec.y_shape),), np.int64)
    _launch(fill_kernel, _size(spec.y_shape), winner, -1)
    _launch(unpool_claim_kernel, _size(spec.x_shape), indices, winner, spec)
    y = empty(spec.y_shape, x.dtype)
    _launch(unpool_forward_kernel(numba_dtype(x)), _size(spec.y_shape), x, winner, y, spec)
    return y


def max_unpool2d_backward(grad_y, indices, spec: UnpoolSpec):
    """grad_y (N, C, H_out, W_out) device array -> grad_x (N, C, H, W), a gather."""
    grad_x = empty(spec.x_shape, grad_y.dtype)
    _launch(unpool_backward_kernel(numba_dtype(grad_y)), _size(spec.x_shape), grad_y, indices,
            grad_x, spec)
    return grad_x
