"""Transposed convolution's GEMM kernels: conv2d's lanes, chunks, im2col and col2im, reused.

``conv_transpose2d`` of :mod:`kernels.naive` stamps each input pixel's kernel onto the
output; that is conv2d_backward's grad_x (naive's docstring shows it line for line), so
this module computes it with the pieces of :mod:`.conv_gemm` and nothing new: the same
:class:`~.conv_gemm.GemmPlan` (lanes of chunks of samples, BLAS single-threaded inside a
lane), the same :func:`~.conv_gemm._im2col` and :func:`~.conv_gemm._col2im`. ``spec`` is
always the :class:`kernels.common.ConvSpec` of the *convolution* whose grad_x the transposed
convolution is (:func:`kernels.common.conv_transpose_spec`), so every size reads as in
conv_gemm: the transposed conv's ``x`` is that conv's grad_y ``(N, spec.C_out, H_out,
W_out)``, its output ``y`` the conv's grad_x ``(N, spec.C_in, H, W)``.

What changes relative to :func:`~.conv_gemm._conv2d_backward_gemm`, and why: each kernel
here runs only the half of it that a transposed conv needs. The forward,
:func:`_conv_transpose2d_gemm`, is its grad_x half (``dcols = W_g.T @ x_g``, col2im), without
the im2col of an input the transposed conv does not have. The backward,
:func:`_conv_transpose2d_backward_gemm`, im2cols ``grad_y`` once and uses those columns twice:
``grad_x_g = W_g @ cols_g`` (conv2d's forward GEMM) and ``grad_W_g += x_g @ cols_g.T``
(conv2d's grad_weight GEMM with ``x`` in grad_y's role), where running ``conv2d`` and a
grad_weight kernel separately would im2col ``grad_y`` twice. The direct path (one output
channel per group, stride 1) needs no kernel of its own: :mod:`kernels.numba_cpu` calls
``conv_direct``'s grad_x, forward and grad_weight kernels with the roles swapped.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .conv_gemm import _col2im, _im2col


@njit(cache=True)
def _gather_chunk(a3, buf, n0, s, c0, c1):
    """Channels ``c0:c1`` of samples ``n0 .. n0 + s - 1`` side by side, one sample a block.

    a3 : (N, C, P) -> (c1 - c0, s*P), a view of ``buf`` (no copy when ``s == 1``: a view of
    ``a3[n0]``), so that one GEMM covers the chunk.
    """
    P = a3.shape[2]
    if s == 1:
        return a3[n0, c0:c1]  # (c1 - c0, P)
    out = buf[:(c1 - c0) * s * P].reshape(c1 - c0, s * P)  # (c1 - c0, s*P)
    for b in range(s):
        for c in range(c0, c1):
            out[c - c0, b * P:(b + 1) * P] = a3[n0 + b, c]
    return out


@njit(parallel=True, cache=True)
def _conv_transpose2d_gemm(x, weight, spec, plan):
    """The transposed conv's output by conv2d_backward's grad_x GEMM and col2im, no bias.

    x : (N, C_out, H_out, W_out) in the conv's names (the transposed conv's input, with
    ``C_out = spec.C_out`` its input channels), weight : (C_out, C_in // groups, kH, kW)
    -> y : (N, C_in, H, W) (``spec.x_shape``: the transposed conv's output). ``plan`` a
    :class:`~.conv_gemm.GemmPlan`.

    Per lane, chunk and group: ``dcols_g (K, s*P) = W_g.T (K, C_out/g) @ x_g (C_out/g,
    s*P)``, each column the kernel stack one input pixel stamps, then :func:`_col2im` adds
    the stamps onto the output planes. With ``plan.in_place_1x1`` (1x1, stride 1, no
    padding, one sample a chunk) ``dcols`` is ``y[n]`` itself: the stamp is one pixel.
    """
    N, C_out, Ho, Wo = x.shape
    _, C_in_g, kh, kw = weight.shape
    groups, C_in, H, W = spec.groups, spec.C_in, spec.H, spec.W
    lanes, chunks, in_place_1x1 = plan.lanes, plan.chunks, plan.in_place_1x1
    C_out_g = C_out // groups
    K = C_in_g * kh * kw  # rows of a group's columns
    R = C_in * kh * kw  # rows of dcols, all groups
    P = Ho * Wo  # pixels of one sample of x
    S = -(-N // chunks)  # the largest chunk
    x3 = x.reshape(N, C_out, P)  # (N, C_out, Ho*Wo)
    w2 = weight.reshape(C_out, K)  # (C_out, K)
    y = np.empty((N, C_in, H, W), x.dtype)
    y3 = y.reshape(N, C_in, H * W)  # (N, C_in, H*W)
    for lane in prange(lanes):
        dcols_buf = np.empty(0 if in_place_1x1 else R * S * P, x.dtype)
        x_buf = np.empty(0 if S == 1 else C_out * S * P, x.dtype)
        for k in range(lane, chunks, lanes):
            n0 = k * N // chunks
            s = (k + 1) * N // chunks - n0
            if in_place_1x1:
                dcols = y3[n0]  # (C_in, P)
            else:
                dcols = dcols_buf[:R * s * P].reshape(R, s * P)  # (C_in*kH*kW, s*P)
            x_chunk = _gather_chunk(x3, x_buf, n0, s, 0, C_out)  # (C_out, s*P)
            for g in range(groups):
                w_g = w2[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, K)
                x_g = x_chunk[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, s*P)
                np.dot(w_g.T, x_g, dcols[g * K:(g + 1) * K])  # (K, s*P)
            if not in_place_1x1:
                _col2im(dcols, y, spec, n0, s)
    return y


@njit(parallel=True, cache=True)
def _conv_transpose2d_backward_gemm(grad_y, x, weight, spec, plan):
    """grad_x and grad_weight of the transposed conv from one im2col of ``grad_y``.

    grad_y : (N, C_in, H, W) in the conv's names (``spec.x_shape``, the transposed conv's
    output gradient), x : (N, C_out, H_out, W_out), weight : (C_out, C_in // groups, kH, kW)
    -> grad_x : (N, C_out, H_out, W_out), grad_weight : (C_out, C_in // groups, kH, kW).

    Per lane, chunk and group, with ``cols`` the im2col of the chunk of ``grad_y``:
    ``grad_x_g (C_out/g, s*P) = W_g @ cols_g`` (conv2d's forward) and ``grad_W_g += x_g @
    cols_g.T`` (conv2d_backward's grad_weight, ``x`` in grad_y's place). Each lane sums
    grad_W into its own slot and the slots are added in lane order, as in conv_gemm. With
    ``plan.in_place_1x1`` ``cols`` is ``grad_y[n]`` itself.
    """
    N, C_in, H, W = grad_y.shape
    C_out, C_in_g, kh, kw = weight.shape
    groups, Ho, Wo = spec.groups, spec.H_out, spec.W_out
    lanes, chunks, in_place_1x1 = plan.lanes, plan.chunks, plan.in_place_1x1
    C_out_g = C_out // groups
    K = C_in_g * kh * kw  # a group's GEMM inner dimension
    R = C_in * kh * kw  # rows of cols, all groups
    P = Ho * Wo  # output pixels of one sample of the conv
    S = -(-N // chunks)  # the largest chunk
    gy3 = grad_y.reshape(N, C_in, H * W)  # (N, C_in, H*W)
    x3 = x.reshape(N, C_out, P)  # (N, C_out, Ho*Wo)
    w2 = weight.reshape(C_out, K)  # (C_out, K)
    grad_x = np.empty((N, C_out, Ho, Wo), x.dtype)
    gx3 = grad_x.reshape(N, C_out, P)  # (N, C_out, Ho*Wo)
    gw_lanes = np.zeros((lanes, C_out, K), x.dtype)  # (lanes, C_out, K)
    for lane in prange(lanes):
        cols_buf = np.empty(0 if in_place_1x1 else R * S * P, x.dtype)
        x_buf = np.empty(0 if S == 1 else C_out * S * P, x.dtype)
        gx_buf = np.empty(0 if S == 1 else C_out_g * S * P, x.dtype)
        for k in range(lane, chunks, lanes):
            n0 = k * N // chunks
            s = (k + 1) * N // chunks - n0
            if in_place_1x1:
                cols = gy3[n0]  # (C_in, P): a 1x1 conv's im2col matrix is its input
            else:
                cols = cols_buf[:R * s * P].reshape(R, s * P)  # (C_in*kH*kW, s*P)
                _im2col(grad_y, cols, spec, n0, s)
            x_chunk = _gather_chunk(x3, x_buf, n0, s, 0, C_out)  # (C_out, s*P)
            for g in range(groups):
                w_g = w2[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, K)
                cols_g = cols[g * K:(g + 1) * K]  # (K, s*P)
                x_g = x_chunk[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, s*P)
                gw_lanes[lane, g * C_out_g:(g + 1) * C_out_g] += np.dot(x_g, cols_g.T)
                if s == 1:
                    np.dot(w_g, cols_g, gx3[n0, g * C_out_g:(g + 1) * C_out_g])  # (C_out/g, P)
                    continue
                gx_g = gx_buf[:C_out_g * s * P].reshape(C_out_g, s * P)  # (C_out/g, s*P)
                np.dot(w_g, cols_g, gx_g)
                for b in range(s):
                    for co in range(C_out_g):
                        gx3[n0 + b, g * C_out_g + co] = gx_g[co, b * P:(b + 1) * P]
    grad_w = gw_lanes[0].copy()  # (C_out, K)
    for lane in range(1, lanes):
        grad_w += gw_lanes[lane]
    return grad_x, grad_w.reshape(C_out, C_in_g, kh, kw)
