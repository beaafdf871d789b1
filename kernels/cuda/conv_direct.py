"""Rungs 1 and 2 of the conv ladder: direct convolution, one thread per output element.

Versions in this file (the ladder's numbering; ``docs/07-gpu-ladder.md`` walks them):

1. ``"naive"``: the mapping a beginner writes. Thread ``index`` computes output
   ``(n, co, wo, ho)`` counted with ``ho`` fastest, so the 32 threads of a warp hold 32
   consecutive output *rows*: their loads of ``x`` and their stores of ``y`` are ``W`` and
   ``W_out`` elements apart, and each touches its own 32-byte sector (uncoalesced).
2. ``"direct"``: the same kernel with the thread order fixed (``wo`` fastest, as ``y`` is laid
   out): a warp's stores are one contiguous run and its loads of ``x`` neighbours. This is
   the only change; every other line is shared (``coalesced`` is a flag of the factories).

What changes relative to ``kernels.naive``: the outer loops over ``(n, c_out, h_out, w_out)``
become the thread grid; each thread runs the naive inner loops (input channels of its group,
kernel rows, kernel columns) for its own output element. Nothing is shared between threads:
every thread reads its whole receptive field from global memory, so neighbouring threads read
overlapping windows many times (the caches help, but this is what rung 3 fixes).

The backward pass of these rungs is written the same way (a gather, no atomics), with the
same two thread orders (``naive``: the second-to-last axis fastest):

- ``grad_x``: one thread per input element; it loops over the outputs whose windows contain
  it (``h = h_out*stride - padding + i*dilation`` solved for ``h_out``) and sums
  ``grad_y * weight``. This is the convolution of the dilated ``grad_y`` with the flipped
  kernel, written as a gather;
- ``grad_weight``: one thread per weight element, summing ``grad_y * x`` over
  ``N * H_out * W_out``: long serial loops, the slowest rung by far.

Shapes: x (N, C_in, H, W), weight (C_out, C_in // groups, kH, kW), y (N, C_out, H_out, W_out).
Every kernel takes its arrays and the problem's :class:`kernels.common.ConvSpec` (``spec``),
and reads its sizes by name (``spec.stride_h``, ``spec.C_out // spec.groups``).
"""

from __future__ import annotations

from numba import cuda

from kernels.common import ConvSpec

from ._arrays import blocks, empty, kernel_cache, numba_dtype, unravel4

THREADS = 256


@cuda.jit(device=True, inline="always")
def thread_element(index, d1, d2, d3, coalesced):
    """``(i0, i1, i2, i3)``: the element of a ``(d0, d1, d2, d3)`` array thread ``index`` owns.

    ``coalesced``: C order, the last axis fastest (:func:`unravel4`). Otherwise the naive
    order of rung 1: the third axis fastest, so neighbouring threads are ``d3`` apart.
    """
    if coalesced:
        return unravel4(index, d1, d2, d3)
    i0, i1, i3, i2 = unravel4(index, d1, d3, d2)
    return i0, i1, i2, i3


@kernel_cache
def forward_kernel(DT, coalesced: bool = True):
    """Build the direct forward kernel for dtype ``DT``; ``coalesced=False``: rung 1's order."""

    @cuda.jit
    def conv2d_direct(x, weight, bias, y, spec):
        """y[n, co, ho, wo] = bias[co] + sum_{c,i,j} x[n, g*C_in_g + c, h, w] * weight[co, c, i, j].

        ``spec`` is the problem's ``ConvSpec``; ``h = ho*stride_h - pad_h + i*dil_h`` (and
        the same along ``w``). Thread ``blockIdx.x * blockDim.x + threadIdx.x`` computes one
        element of ``y``, counted in C order, so ``threadIdx.x`` walks ``w_out`` (the
        contiguous axis) and a warp's stores are coalesced (rung 1, ``coalesced=False``:
        ``threadIdx.x`` walks ``h_out``). No shared memory. ``bias`` has length 0 when there
        is none.
        """
        index = cuda.grid(1)
        if index >= spec.N * spec.C_out * spec.H_out * spec.W_out:
            return
        n, co, ho, wo = thread_element(index, spec.C_out, spec.H_out, spec.W_out, coalesced)
        C_in_g = spec.C_in // spec.groups
        c_first = (co // (spec.C_out // spec.groups)) * C_in_g  # first input channel of co's group
        acc = DT(0)
        for c in range(C_in_g):
            for i in range(spec.kH):
                h = ho * spec.stride_h - spec.pad_h + i * spec.dil_h
                if h >= 0 and h < spec.H:
                    for j in range(spec.kW):
                        w = wo * spec.stride_w - spec.pad_w + j * spec.dil_w
                        if w >= 0 and w < spec.W:
                            acc += x[n, c_first + c, h, w] * weight[co, c, i, j]
        if bias.shape[0] > 0:
            acc += bias[co]
        y[n, co, ho, wo] = acc

    return conv2d_direct


@kernel_cache
def grad_input_kernel(DT, coalesced: bool = True):
    """Build the direct (gather) backward-input kernel for dtype ``DT`` (order: ``coalesced``)."""

    @cuda.jit
    def conv2d_grad_input_direct(grad_y, weight, grad_x, spec):
        """grad_x[n, c, h, w] = sum over the outputs (co, ho, wo) whose window holds (h, w).

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` computes one element of ``grad_x``
        in C order (``threadIdx.x`` walks ``w``). Output row ``ho`` sees input row ``h``
        through kernel row ``i`` when ``h + pad_h - i*dil_h = ho*stride_h``, so for each ``i``
        the thread checks divisibility by the stride and the range of ``ho``. No shared
        memory, no atomics: every thread owns its element.
        """
        index = cuda.grid(1)
        if index >= spec.N * spec.C_in * spec.H * spec.W:
            return
        n, c, h, w = thread_element(index, spec.C_in, spec.H, spec.W, coalesced)
        C_in_g = spec.C_in // spec.groups
        C_out_g = spec.C_out // spec.groups
        g = c // C_in_g
        c_local = c - g * C_in_g  # c's index inside its group (weight's axis 1)
        acc = DT(0)
        for co in range(g * C_out_g, (g + 1) * C_out_g):
            for i in range(spec.kH):
                hh = h + spec.pad_h - i * spec.dil_h
                if hh < 0 or hh % spec.stride_h != 0 or hh // spec.stride_h >= spec.H_out:
                    continue
                ho = hh // spec.stride_h
                for j in range(spec.kW):
                    ww = w + spec.pad_w - j * spec.dil_w
                    if ww < 0 or ww % spec.stride_w != 0 or ww // spec.stride_w >= spec.W_out:
                        continue
                    acc += grad_y[n, co, ho, ww // spec.stride_w] * weight[co, c_local, i, j]
        grad_x[n, c, h, w] = acc

    return conv2d_grad_input_direct


@kernel_cache
def grad_weight_kernel(DT, coalesced: bool = True):
    """Build the direct backward-weight kernel for dtype ``DT`` (order: ``coalesced``)."""

    @cuda.jit
    def conv2d_grad_weight_direct(grad_y, x, grad_w, spec):
        """grad_w[co, c, i, j] = sum_{n, ho, wo} grad_y[n, co, ho, wo] * x[n, g*C_in_g + c, h, w].

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` computes one element of ``grad_w``
        in C order (``threadIdx.x`` walks the kernel column ``j``, the contiguous axis) and
        loops serially over ``N * H_out * W_out``. No shared memory.
        """
        C_in_g = spec.C_in // spec.groups
        index = cuda.grid(1)
        if index >= spec.C_out * C_in_g * spec.kH * spec.kW:
            return
        co, c, i, j = thread_element(index, C_in_g, spec.kH, spec.kW, coalesced)
        c_x = (co // (spec.C_out // spec.groups)) * C_in_g + c  # the channel of x it reads
        acc = DT(0)
        for n in range(spec.N):
            for ho in range(spec.H_out):
                h = ho * spec.stride_h - spec.pad_h + i * spec.dil_h
                if h < 0 or h >= spec.H:
                    continue
                for wo in range(spec.W_out):
                    w = wo * spec.stride_w - spec.pad_w + j * spec.dil_w
                    if w >= 0 and w < spec.W:
                        acc += grad_y[n, co, ho, wo] * x[n, c_x, h, w]
        grad_w[co, c, i, j] = acc

    return conv2d_grad_weight_direct


def conv2d(x, weight, bias, spec: ConvSpec, coalesced: bool = True):
    """Launch :func:`forward_kernel` on device arrays; return ``y`` (N, C_out, H_out, W_out).

    x : (N, C_in, H, W), weight : (C_out, C_in // groups, kH, kW), bias : (C_out,) or a
    length-0 array (no bias). ``coalesced=False`` runs rung 1 (``"naive"``).
    """
    y = empty(spec.y_shape, x.dtype)
    total = spec.N * spec.C_out * spec.H_out * spec.W_out
    forward_kernel(numba_dtype(x), coalesced)[blocks(total, THREADS), THREADS](
        x, weight, bias, y, spec)
    return y


def grad_input(grad_y, weight, spec: ConvSpec, coalesced: bool = True):
    """Launch :func:`grad_input_kernel`; return ``grad_x`` (N, C_in, H, W).

    grad_y : (N, C_out, H_out, W_out), weight : (C_out, C_in // groups, kH, kW).
    ``coalesced=False`` runs rung 1's thread order.
    """
    grad_x = empty(spec.x_shape, weight.dtype)
    total = spec.N * spec.C_in * spec.H * spec.W
    grad_input_kernel(numba_dtype(weight), coalesced)[blocks(total, THREADS), THREADS](
        grad_y, weight, grad_x, spec)
    return grad_x


def grad_weight(grad_y, x, spec: ConvSpec, coalesced: bool = True):
    """Launch :func:`grad_weight_kernel`; return ``grad_w`` (C_out, C_in // groups, kH, kW).

    grad_y : (N, C_out, H_out, W_out), x : (N, C_in, H, W). ``coalesced=False`` runs rung
    1's thread order.
    """
    grad_w = empty(spec.weight_shape, x.dtype)
    total = spec.C_out * (spec.C_in // spec.groups) * spec.kH * spec.kW
    grad_weight_kernel(numba_dtype(x), coalesced)[blocks(total, THREADS), THREADS](
        grad_y, x, grad_w, spec)
    return grad_w
