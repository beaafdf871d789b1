"""Rung (a) of the conv ladder: direct convolution, one thread per output element.

What changes relative to ``kernels.naive``: the outer loops over ``(n, c_out, h_out, w_out)``
become the thread grid; each thread runs the naive inner loops (input channels of its group,
kernel rows, kernel columns) for its own output element. Nothing is shared between threads:
every thread reads its whole receptive field from global memory, so neighbouring threads read
overlapping windows many times (the caches help, but this is what rung (b) fixes).

The backward pass of this rung is written the same way (a gather, no atomics):

- ``grad_x``: one thread per input element; it loops over the outputs whose windows contain
  it (``h = h_out*stride - padding + i*dilation`` solved for ``h_out``) and sums
  ``grad_y * weight``. This is the convolution of the dilated ``grad_y`` with the flipped
  kernel, written as a gather;
- ``grad_weight``: one thread per weight element, summing ``grad_y * x`` over
  ``N * H_out * W_out``: long serial loops, the slowest rung by far.

Shapes: x (N, C_in, H, W), weight (C_out, C_in // groups, kH, kW), y (N, C_out, H_out, W_out).
"""

from __future__ import annotations

from numba import cuda

from ._arrays import blocks, conv_geometry, empty, kernel_cache, unravel4

THREADS = 256


@kernel_cache
def forward_kernel(DT):
    """Build the direct forward kernel for dtype ``DT`` (``numba.float32`` / ``float64``)."""

    @cuda.jit
    def conv2d_direct(x, weight, bias, y, geom):
        """y[n, co, ho, wo] = bias[co] + sum_{c,i,j} x[n, g*C_in_g + c, h, w] * weight[co, c, i, j].

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` computes one element of ``y``, counted
        in C order, so ``threadIdx.x`` walks ``w_out`` (the contiguous axis) and a warp's
        stores are coalesced. No shared memory. ``bias`` has length 0 when there is none.
        """
        N, C_in, H, W, C_out, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, groups = geom
        index = cuda.grid(1)
        if index >= N * C_out * Ho * Wo:
            return
        n, co, ho, wo = unravel4(index, C_out, Ho, Wo)
        C_in_g = C_in // groups
        c_first = (co // (C_out // groups)) * C_in_g  # first input channel of co's group
        acc = DT(0)
        for c in range(C_in_g):
            for i in range(kh):
                h = ho * sh - ph + i * dh
                if h >= 0 and h < H:
                    for j in range(kw):
                        w = wo * sw - pw + j * dw
                        if w >= 0 and w < W:
                            acc += x[n, c_first + c, h, w] * weight[co, c, i, j]
        if bias.shape[0] > 0:
            acc += bias[co]
        y[n, co, ho, wo] = acc

    return conv2d_direct


@kernel_cache
def grad_input_kernel(DT):
    """Build the direct (gather) backward-input kernel for dtype ``DT``."""

    @cuda.jit
    def conv2d_grad_input_direct(grad_y, weight, grad_x, geom):
        """grad_x[n, c, h, w] = sum over the outputs (co, ho, wo) whose window holds (h, w).

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` computes one element of ``grad_x``
        in C order (``threadIdx.x`` walks ``w``). Output row ``ho`` sees input row ``h``
        through kernel row ``i`` when ``h + pH - i*dH = ho*sH``, so for each ``i`` the thread
        checks divisibility by the stride and the range of ``ho``. No shared memory, no
        atomics: every thread owns its element.
        """
        N, C_in, H, W, C_out, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, groups = geom
        index = cuda.grid(1)
        if index >= N * C_in * H * W:
            return
        n, c, h, w = unravel4(index, C_in, H, W)
        C_in_g = C_in // groups
        C_out_g = C_out // groups
        g = c // C_in_g
        c_local = c - g * C_in_g  # c's index inside its group (weight's axis 1)
        acc = DT(0)
        for co in range(g * C_out_g, (g + 1) * C_out_g):
            for i in range(kh):
                hh = h + ph - i * dh
                if hh < 0 or hh % sh != 0 or hh // sh >= Ho:
                    continue
                ho = hh // sh
                for j in range(kw):
                    ww = w + pw - j * dw
                    if ww < 0 or ww % sw != 0 or ww // sw >= Wo:
                        continue
                    acc += grad_y[n, co, ho, ww // sw] * weight[co, c_local, i, j]
        grad_x[n, c, h, w] = acc

    return conv2d_grad_input_direct


@kernel_cache
def grad_weight_kernel(DT):
    """Build the direct backward-weight kernel for dtype ``DT``."""

    @cuda.jit
    def conv2d_grad_weight_direct(grad_y, x, grad_w, geom):
        """grad_w[co, c, i, j] = sum_{n, ho, wo} grad_y[n, co, ho, wo] * x[n, g*C_in_g + c, h, w].

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` computes one element of ``grad_w``
        in C order (``threadIdx.x`` walks the kernel column ``j``, the contiguous axis) and
        loops serially over ``N * H_out * W_out``. No shared memory.
        """
        N, C_in, H, W, C_out, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, groups = geom
        C_in_g = C_in // groups
        index = cuda.grid(1)
        if index >= C_out * C_in_g * kh * kw:
            return
        co, c, i, j = unravel4(index, C_in_g, kh, kw)
        c_x = (co // (C_out // groups)) * C_in_g + c  # the channel of x this weight reads
        acc = DT(0)
        for n in range(N):
            for ho in range(Ho):
                h = ho * sh - ph + i * dh
                if h < 0 or h >= H:
                    continue
                for wo in range(Wo):
                    w = wo * sw - pw + j * dw
                    if w >= 0 and w < W:
                        acc += grad_y[n, co, ho, wo] * x[n, c_x, h, w]
        grad_w[co, c, i, j] = acc

    return conv2d_grad_weight_direct


def conv2d(x, weight, bias, y_shape, stride, padding, dilation, groups, DT):
    """Launch :func:`forward_kernel` on device arrays; return ``y`` (N, C_out, H_out, W_out)."""
    y = empty(y_shape, x.dtype)
    geom = conv_geometry(x.shape, weight.shape, y_shape, stride, padding, dilation, groups)
    total = y_shape[0] * y_shape[1] * y_shape[2] * y_shape[3]
    forward_kernel(DT)[blocks(total, THREADS), THREADS](x, weight, bias, y, geom)
    return y


def grad_input(grad_y, x_shape, weight, stride, padding, dilation, groups, DT):
    """Launch :func:`grad_input_kernel`; return ``grad_x`` (N, C_in, H, W)."""
    grad_x = empty(x_shape, weight.dtype)
    geom = conv_geometry(x_shape, weight.shape, grad_y.shape, stride, padding, dilation, groups)
    total = x_shape[0] * x_shape[1] * x_shape[2] * x_shape[3]
    grad_input_kernel(DT)[blocks(total, THREADS), THREADS](grad_y, weight, grad_x, geom)
    return grad_x


def grad_weight(grad_y, x, w_shape, stride, padding, dilation, groups, DT):
    """Launch :func:`grad_weight_kernel`; return ``grad_w`` (C_out, C_in // groups, kH, kW)."""
    grad_w = empty(w_shape, x.dtype)
    geom = conv_geometry(x.shape, w_shape, grad_y.shape, stride, padding, dilation, groups)
    total = w_shape[0] * w_shape[1] * w_shape[2] * w_shape[3]
    grad_weight_kernel(DT)[blocks(total, THREADS), THREADS](grad_y, x, grad_w, geom)
    return grad_w
