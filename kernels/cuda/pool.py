"""Max, average and adaptive-average pooling on the device, forward and backward.

What changes relative to ``kernels.naive``: the loops over output elements become the thread
grid (one thread per output element, ``threadIdx.x`` walking ``w_out``), each thread runs the
naive window loop. Pooling is memory-bound, so nothing is staged in shared memory: each input
is read by at most ``ceil(kH/sH) * ceil(kW/sW)`` neighbouring threads and the L1 cache serves
the repeats.

The backward passes are *gathers*: one thread per input element loops over the outputs whose
windows contain it (``h = h_out*stride - padding + i*dilation`` solved for ``h_out``), so each
thread owns the element it writes: no atomics, a fixed summation order.

Max pooling backward must send each output's gradient to its window's argmax, chosen by
PyTorch's rule (start at the first in-bounds cell with ``-inf``, scan row-major, take
``value > best or isnan(value)``: ties go to the first maximum, the last NaN wins). The
backward receives ``x``, not indices, so it runs two kernels: :func:`max_forward_kernel`
again, storing each window's argmax as a flat index ``h*W + w``, then
:func:`max_backward_kernel`, in which input cell ``(h, w)`` adds the ``grad_y`` of every
window whose stored index equals ``h*W + w``. Recomputing the argmax inside the gather
instead would rescan each window once per cell it contains (``kH*kW/(sH*sW)`` times); the
index pass scans each window once and costs one int32 per output.

Average pooling divides by PyTorch's divisor (``kernels.common.avg_pool_divisor``, repeated
here on the device); adaptive pooling uses ``kernels.common.adaptive_bounds``' windows.

Pool geometry tuple (``pool_geometry``): ``(N, C, H, W, H_out, W_out, kH, kW, sH, sW, pH, pW,
dH, dW, count_include_pad, divisor_override or 0)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ._arrays import blocks, empty, kernel_cache, unravel4

THREADS = 256
GEOMETRY_LEN = 16


def pool_geometry(x_shape, out_hw, kernel=(0, 0), stride=(1, 1), padding=(0, 0),
                  dilation=(1, 1), count_include_pad=False, divisor_override=None) -> tuple:
    """Every size a pooling kernel needs, as one tuple of ints (see the module docstring)."""
    N, C, H, W = x_shape
    return tuple(int(v) for v in (N, C, H, W, out_hw[0], out_hw[1], kernel[0], kernel[1],
                                  stride[0], stride[1], padding[0], padding[1],
                                  dilation[0], dilation[1], bool(count_include_pad),
                                  divisor_override or 0))


@cuda.jit(device=True, inline="always")
def avg_divisor(h_start, w_start, geom):
    """PyTorch's average-pooling divisor of the window with top-left cell (h_start, w_start).

    The device twin of ``kernels.common.avg_pool_divisor``.
    """
    H, W, kh, kw, ph, pw = geom[2], geom[3], geom[6], geom[7], geom[10], geom[11]
    if geom[15] != 0:
        return geom[15]
    h_end = min(h_start + kh, H + ph)
    w_end = min(w_start + kw, W + pw)
    if geom[14] != 0:  # count_include_pad: the window clipped to the padded input
        return (h_end - h_start) * (w_end - w_start)
    return (min(h_end, H) - max(h_start, 0)) * (min(w_end, W) - max(w_start, 0))


@kernel_cache
def max_forward_kernel(DT):
    """Build the max-pooling forward kernel for dtype ``DT``."""

    @cuda.jit
    def max_pool2d_forward(x, y, argmax, geom):
        """y[n, c, ho, wo] = max of the window; argmax (if not empty) = its flat h*W + w.

        PyTorch's scan: the first in-bounds tap, then a tap that is greater or NaN. A window
        with no tap inside the input keeps ``-inf`` and index ``-1``.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``y`` in C order
        (``threadIdx.x`` walks ``wo``). No shared memory. ``argmax`` has a zero-length first
        axis when the caller does not want indices.
        """
        N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, cip, div = geom
        index = cuda.grid(1)
        if index >= N * C * Ho * Wo:
            return
        n, c, ho, wo = unravel4(index, C, Ho, Wo)
        h_start = ho * sh - ph
        w_start = wo * sw - pw
        h_end = min(h_start + (kh - 1) * dh + 1, H)
        w_end = min(w_start + (kw - 1) * dw + 1, W)
        while h_start < 0:
            h_start += dh
        while w_start < 0:
            w_start += dw
        best = DT(-math.inf)
        best_index = -1  # becomes the first in-bounds cell, PyTorch's start
        for h in range(h_start, h_end, dh):
            for w in range(w_start, w_end, dw):
                value = x[n, c, h, w]
                if best_index < 0 or value > best or math.isnan(value):
                    best = value
                    best_index = h * W + w
        y[n, c, ho, wo] = best
        if argmax.shape[0] > 0:
            argmax[n, c, ho, wo] = best_index

    return max_pool2d_forward


@kernel_cache
def max_backward_kernel(DT):
    """Build the max-pooling backward (gather) kernel for dtype ``DT``."""

    @cuda.jit
    def max_pool2d_backward(grad_y, argmax, grad_x, geom):
        """grad_x[n, c, h, w] = sum of grad_y over the windows whose argmax is (h, w).

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``grad_x`` in C
        order (``threadIdx.x`` walks ``w``); it visits the windows holding ``(h, w)``: kernel
        row ``i`` puts it in output row ``ho = (h + pH - i*dH) / sH`` when that divides.
        No shared memory, no atomics.
        """
        N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, cip, div = geom
        index = cuda.grid(1)
        if index >= N * C * H * W:
            return
        n, c, h, w = unravel4(index, C, H, W)
        me = h * W + w
        acc = DT(0)
        for i in range(kh):
            hs = h + ph - i * dh
            if hs < 0 or hs % sh != 0 or hs // sh >= Ho:
                continue
            for j in range(kw):
                ws = w + pw - j * dw
                if ws < 0 or ws % sw != 0 or ws // sw >= Wo:
                    continue
                if argmax[n, c, hs // sh, ws // sw] == me:
                    acc += grad_y[n, c, hs // sh, ws // sw]
        grad_x[n, c, h, w] = acc

    return max_pool2d_backward


@kernel_cache
def avg_forward_kernel(DT):
    """Build the average-pooling forward kernel for dtype ``DT``."""

    @cuda.jit
    def avg_pool2d_forward(x, y, geom):
        """y[n, c, ho, wo] = sum of the window's real cells / PyTorch's divisor.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``y`` in C order
        (``threadIdx.x`` walks ``wo``). No shared memory.
        """
        N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, cip, div = geom
        index = cuda.grid(1)
        if index >= N * C * Ho * Wo:
            return
        n, c, ho, wo = unravel4(index, C, Ho, Wo)
        h_start = ho * sh - ph
        w_start = wo * sw - pw
        total = DT(0)
        for h in range(max(h_start, 0), min(h_start + kh, H)):
            for w in range(max(w_start, 0), min(w_start + kw, W)):
                total += x[n, c, h, w]
        y[n, c, ho, wo] = total / DT(avg_divisor(h_start, w_start, geom))

    return avg_pool2d_forward


@kernel_cache
def avg_backward_kernel(DT):
    """Build the average-pooling backward (gather) kernel for dtype ``DT``."""

    @cuda.jit
    def avg_pool2d_backward(grad_y, grad_x, geom):
        """grad_x[n, c, h, w] = sum over windows holding (h, w) of grad_y / divisor.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``grad_x`` in C
        order (``threadIdx.x`` walks ``w``). Window ``ho`` covers rows
        ``[ho*sH - pH, ho*sH - pH + kH)``, so the windows holding row ``h`` are
        ``ho = floor((h + pH - kH) / sH) + 1 ... floor((h + pH) / sH)``. No shared memory.
        """
        N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, cip, div = geom
        index = cuda.grid(1)
        if index >= N * C * H * W:
            return
        n, c, h, w = unravel4(index, C, H, W)
        acc = DT(0)
        for ho in range(max((h + ph - kh) // sh + 1, 0), min((h + ph) // sh + 1, Ho)):
            for wo in range(max((w + pw - kw) // sw + 1, 0), min((w + pw) // sw + 1, Wo)):
                divisor = avg_divisor(ho * sh - ph, wo * sw - pw, geom)
                acc += grad_y[n, c, ho, wo] / DT(divisor)
        grad_x[n, c, h, w] = acc

    return avg_pool2d_backward


@kernel_cache
def adaptive_forward_kernel(DT):
    """Build the adaptive-average-pooling forward kernel for dtype ``DT``."""

    @cuda.jit
    def adaptive_avg_pool2d_forward(x, y, geom):
        """y[n, c, i, j] = mean of x[n, c, h_start:h_end, w_start:w_end].

        ``h_start = floor(i*H/oh)``, ``h_end = ceil((i+1)*H/oh)`` (same along W). Thread
        ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``y`` in C order
        (``threadIdx.x`` walks ``j``). No shared memory.
        """
        N, C, H, W, oh, ow = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5]
        index = cuda.grid(1)
        if index >= N * C * oh * ow:
            return
        n, c, i, j = unravel4(index, C, oh, ow)
        h_start = (i * H) // oh
        h_end = ((i + 1) * H + oh - 1) // oh
        w_start = (j * W) // ow
        w_end = ((j + 1) * W + ow - 1) // ow
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
    def adaptive_avg_pool2d_backward(grad_y, grad_x, geom):
        """grad_x[n, c, h, w] = sum over windows (i, j) holding (h, w) of grad_y / size.

        Window ``i`` holds row ``h`` exactly when ``floor(h*oh/H) <= i < ceil((h+1)*oh/H)``.
        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``grad_x`` in C
        order (``threadIdx.x`` walks ``w``). No shared memory.
        """
        N, C, H, W, oh, ow = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5]
        index = cuda.grid(1)
        if index >= N * C * H * W:
            return
        n, c, h, w = unravel4(index, C, H, W)
        acc = DT(0)
        for i in range((h * oh) // H, min(((h + 1) * oh + H - 1) // H, oh)):
            h_size = ((i + 1) * H + oh - 1) // oh - (i * H) // oh
            for j in range((w * ow) // W, min(((w + 1) * ow + W - 1) // W, ow)):
                w_size = ((j + 1) * W + ow - 1) // ow - (j * W) // ow
                acc += grad_y[n, c, i, j] / DT(h_size * w_size)
        grad_x[n, c, h, w] = acc

    return adaptive_avg_pool2d_backward


# --------------------------------------------------------------------------- host side


def _launch(kernel, total, *args):
    kernel[blocks(total, THREADS), THREADS](*args)


def _size(shape) -> int:
    return int(np.prod(shape))


def max_pool2d(x, out_hw, kernel, stride, padding, dilation, DT, want_argmax=False):
    """Return y (N, C, H_out, W_out), and the int64 argmax array when ``want_argmax``."""
    N, C = x.shape[:2]
    y = empty((N, C) + tuple(out_hw), x.dtype)
    argmax = empty((N, C) + tuple(out_hw) if want_argmax else (0, 1, 1, 1), np.int64)
    geom = pool_geometry(x.shape, out_hw, kernel, stride, padding, dilation)
    _launch(max_forward_kernel(DT), _size(y.shape), x, y, argmax, geom)
    return (y, argmax) if want_argmax else y


def max_pool2d_backward(grad_y, x, kernel, stride, padding, dilation, DT, argmax=None):
    """grad_x (N, C, H, W): the gather, after an argmax pass unless ``argmax`` is given."""
    out_hw = grad_y.shape[2:]
    if argmax is None:
        _, argmax = max_pool2d(x, out_hw, kernel, stride, padding, dilation, DT,
                               want_argmax=True)
    grad_x = empty(x.shape, x.dtype)
    geom = pool_geometry(x.shape, out_hw, kernel, stride, padding, dilation)
    _launch(max_backward_kernel(DT), _size(x.shape), grad_y, argmax, grad_x, geom)
    return grad_x


def avg_pool2d(x, out_hw, kernel, stride, padding, count_include_pad, divisor_override, DT):
    """Return y (N, C, H_out, W_out)."""
    y = empty(tuple(x.shape[:2]) + tuple(out_hw), x.dtype)
    geom = pool_geometry(x.shape, out_hw, kernel, stride, padding, (1, 1), count_include_pad,
                         divisor_override)
    _launch(avg_forward_kernel(DT), _size(y.shape), x, y, geom)
    return y


def avg_pool2d_backward(grad_y, x_shape, kernel, stride, padding, count_include_pad,
                        divisor_override, DT):
    """grad_x (N, C, H, W)."""
    grad_x = empty(x_shape, grad_y.dtype)
    geom = pool_geometry(x_shape, grad_y.shape[2:], kernel, stride, padding, (1, 1),
                         count_include_pad, divisor_override)
    _launch(avg_backward_kernel(DT), _size(x_shape), grad_y, grad_x, geom)
    return grad_x


def adaptive_avg_pool2d(x, output_size, DT):
    """Return y (N, C, oh, ow)."""
    y = empty(tuple(x.shape[:2]) + tuple(output_size), x.dtype)
    _launch(adaptive_forward_kernel(DT), _size(y.shape), x, y,
            pool_geometry(x.shape, output_size))
    return y


def adaptive_avg_pool2d_backward(grad_y, x_shape, output_size, DT):
    """grad_x (N, C, H, W)."""
    grad_x = empty(x_shape, grad_y.dtype)
    _launch(adaptive_backward_kernel(DT), _size(x_shape), grad_y, grad_x,
            pool_geometry(x_shape, output_size))
    return grad_x
