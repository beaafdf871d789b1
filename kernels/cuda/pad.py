"""Padding (``F.pad``) on the device: constant, reflect, replicate, circular.

What changes relative to ``kernels.naive``: naive's loop over output cells becomes the thread
grid. The forward is one thread per output element (``threadIdx.x`` walking ``w_out``): it
asks :func:`source_index` which input cell it copies, per axis, and copies it (or writes the
fill value). Nothing is staged in shared memory: every output cell reads one input cell.

The backward is a *gather*, as pooling's: one thread per input element adds up the gradients
of the output cells that copied it, so each thread owns the element it writes: no atomics, a
fixed summation order. Along one axis the outputs that read input index ``h`` form at most
three runs (:func:`readers`): constant padding has one cell, replicate one range (the whole
border for the first and last cell), reflect up to three cells (``h`` itself and its two
mirror images), circular one progression with step ``kept`` (the cells the negative pads
keep). A thread walks the runs of its row times the runs of its column.

Each kernel takes its arrays and the :class:`kernels.common.PadSpec` of the call; the forward
also takes the fill value (a float64, cast to the array's dtype).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from kernels.common import PAD_CIRCULAR, PAD_CONSTANT, PAD_REFLECT, PAD_REPLICATE, PadSpec

from ._arrays import blocks, empty, kernel_cache, numba_dtype, unravel4

THREADS = 256
RUNS = 3
"""The most runs of output indices that read one input index along one axis (reflect's)."""


@cuda.jit(device=True, inline="always")
def source_index(i, size, before, after, mode):
    """The input index output index ``i`` of one axis reads, ``-1`` for a padding cell.

    The device twin of :func:`kernels.naive._source_index` (its docstring draws the modes).
    """
    k = i - before
    if mode == PAD_CONSTANT:
        return k if 0 <= k < size else -1
    if mode == PAD_REFLECT:
        return size - 1 - abs(size - 1 - abs(k))
    if mode == PAD_REPLICATE:
        return min(max(k, 0), size - 1)
    kept = size + min(before, 0) + min(after, 0)  # circular: wrap around the kept cells
    return max(-before, 0) + (i - max(before, 0)) % kept


@cuda.jit(device=True, inline="always")
def readers(h, run, size, before, after, mode):
    """Run ``run`` (0, 1 or 2) of the output indices that read input index ``h``: the inverse
    of :func:`source_index` along one axis, as ``(start, stop, step)`` for ``range``.

    An empty run is ``(0, 0, 1)``. Reflect reads ``h`` at ``k = h``, ``-h`` and
    ``2*(size - 1) - h`` (input coordinates; the last two only when they differ from ``h``);
    replicate's first and last cells are read by the whole border beside them; circular
    reads kept cell ``m`` at ``lead + m`` and every ``kept`` cells from there.
    """
    out = size + before + after
    start, stop, step = 0, 0, 1
    if mode == PAD_CONSTANT and run == 0:
        start, stop = h + before, h + before + 1
    elif mode == PAD_REPLICATE and run == 0:
        start = 0 if h == 0 else h + before  # the first cell: the whole border before it
        stop = out if h == size - 1 else h + before + 1  # the last: the whole border after
    elif mode == PAD_REFLECT:
        k = h if run == 0 else (-h if run == 1 else 2 * (size - 1) - h)
        if run == 0 or (run == 1 and h > 0) or (run == 2 and h < size - 1):
            start, stop = k + before, k + before + 1
    elif mode == PAD_CIRCULAR and run == 0:
        first = max(-before, 0)
        kept = size + min(before, 0) + min(after, 0)
        if first <= h < first + kept:
            start, stop, step = (max(before, 0) + h - first) % kept, out, kept
    return max(start, 0), min(stop, out), step


@kernel_cache
def forward_kernel(DT):
    """Build the padding forward kernel for dtype ``DT``."""

    @cuda.jit
    def pad_forward(x, y, value, spec):
        """y[n, c, i, j] = x[n, c, h, w] for the cell (h, w) it reads, or ``value``.

        x : (N, C, H, W); y : (N, C, H_out, W_out); value : float64; spec : PadSpec.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``y`` in C order
        (``threadIdx.x`` walks ``j``). No shared memory.
        """
        index = cuda.grid(1)
        if index >= spec.N * spec.C * spec.H_out * spec.W_out:
            return
        n, c, i, j = unravel4(index, spec.C, spec.H_out, spec.W_out)
        h = source_index(i, spec.H, spec.pad_top, spec.pad_bottom, spec.mode)
        w = source_index(j, spec.W, spec.pad_left, spec.pad_right, spec.mode)
        if h < 0 or w < 0:
            y[n, c, i, j] = DT(value)
        else:
            y[n, c, i, j] = x[n, c, h, w]

    return pad_forward


@kernel_cache
def backward_kernel(DT):
    """Build the padding backward (gather) kernel for dtype ``DT``."""

    @cuda.jit
    def pad_backward(grad_y, grad_x, spec):
        """grad_x[n, c, h, w] = sum of grad_y over the output cells that copied (h, w).

        grad_y : (N, C, H_out, W_out); grad_x : (N, C, H, W); spec : PadSpec.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``grad_x`` in C
        order (``threadIdx.x`` walks ``w``); it walks the :func:`readers` runs of its row and
        of its column. No shared memory, no atomics.
        """
        index = cuda.grid(1)
        if index >= spec.N * spec.C * spec.H * spec.W:
            return
        n, c, h, w = unravel4(index, spec.C, spec.H, spec.W)
        acc = DT(0)
        for a in range(RUNS):
            i0, i1, di = readers(h, a, spec.H, spec.pad_top, spec.pad_bottom, spec.mode)
            for i in range(i0, i1, di):
                for b in range(RUNS):
                    j0, j1, dj = readers(w, b, spec.W, spec.pad_left, spec.pad_right,
                                         spec.mode)
                    for j in range(j0, j1, dj):
                        acc += grad_y[n, c, i, j]
        grad_x[n, c, h, w] = acc

    return pad_backward


# --------------------------------------------------------------------------- host side


def pad(x, value, spec: PadSpec):
    """``F.pad`` of a device array: x (N, C, H, W) -> y (N, C, H_out, W_out), x's dtype."""
    y = empty(spec.y_shape, x.dtype)
    total = int(np.prod(spec.y_shape))
    forward_kernel(numba_dtype(x))[blocks(total, THREADS), THREADS](x, y, float(value), spec)
    return y


def pad_backward(grad_y, spec: PadSpec):
    """grad_y (N, C, H_out, W_out) device array -> grad_x (N, C, H, W), grad_y's dtype."""
    grad_x = empty(spec.x_shape, grad_y.dtype)
    total = int(np.prod(spec.x_shape))
    backward_kernel(numba_dtype(grad_y))[blocks(total, THREADS), THREADS](grad_y, grad_x, spec)
    return grad_x
