"""The ``"direct"`` conv path: stride 1, few input channels per group, no GEMM ("wide rows").

Forward (:func:`_conv2d_direct`), grad_x (:func:`_conv2d_direct_grad_x`) and grad_weight
(:func:`_conv2d_direct_grad_weight`) compute what ``conv2d`` and ``conv2d_backward`` of
:mod:`kernels.naive` compute, with the window loop turned inside out: one long AXPY (or dot)
per tap over a whole zero-padded plane, read at the input's row pitch. ``conv_plan`` in
:mod:`kernels.numba_cpu` decides when this path runs (package header, item 3).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._loops import FASTMATH, _axpy, _dot


@njit(parallel=True, cache=True)
def _pad_planes(x, spec):
    """Zero-pad every plane: (N, C_in, H, W) -> (N, C_in, H_pad, W_pad), parallel over planes.

    ``spec`` a :class:`kernels.common.ConvSpec`: ``H_pad = H + 2*pad_h``, ``W_pad = W +
    2*pad_w``.
    """
    N, C, H, W = x.shape
    ph, pw = spec.pad_h, spec.pad_w
    xp = np.zeros((N, C, spec.H_pad, spec.W_pad), x.dtype)
    for item in prange(N * C):
        n, c = item // C, item % C
        xp[n, c, ph:ph + H, pw:pw + W] = x[n, c]
    return xp


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _conv2d_direct(xp, weight, bias, spec):
    """Direct stride-1 convolution on padded planes, parallel over the ``N*C_out`` outputs.

    xp : (N, C_in, Hp, Wp) (x already zero-padded by :func:`_pad_planes`: ``Hp = spec.H_pad``,
    ``Wp = spec.W_pad``), weight : (C_out, C_in // groups, kH, kW), bias : (C_out,)
    -> y : (N, C_out, Ho, Wo) (``Ho = spec.H_out``, ``Wo = spec.W_out``; ``spec`` a
    :class:`kernels.common.ConvSpec` with stride 1)

    The "wide row" trick: with stride 1, output ``(oh, ow)`` of tap ``(i, j)`` reads padded
    input ``(oh + i*dh, ow + j*dw)`` (``dh = spec.dil_h``, ``dw = spec.dil_w``), i.e. flat
    index ``p + off`` with ``p = oh*Wp + ow`` and ``off = i*dh*Wp + j*dw``. So an output plane
    laid out with the *input's* row pitch ``Wp`` (``Wp - Wo`` junk columns per row) is, per
    tap, one long AXPY:
    ``wide[0:L] += w * xp[n, c].flat[off:off + L]``, ``L = (Ho - 1)*Wp + Wo``. One vectorised
    loop of ~``Ho*Wp`` elements per tap instead of ``Ho`` short ones; the junk columns are
    dropped when the plane is copied out. LeNet's first layer (1 input channel, 6 outputs)
    would give a GEMM with K = 25 and M = 6, too thin for BLAS to shine.
    """
    N, C_in, Hp, Wp = xp.shape
    C_out, C_in_g, kh, kw = weight.shape
    dh, dw, Ho, Wo = spec.dil_h, spec.dil_w, spec.H_out, spec.W_out
    C_out_g = C_out // spec.groups
    L = (Ho - 1) * Wp + Wo
    xf = xp.reshape(N, C_in, Hp * Wp)  # (N, C_in, Hp*Wp)
    y = np.empty((N, C_out, Ho, Wo), xp.dtype)
    for item in prange(N * C_out):
        n, co = item // C_out, item % C_out
        g = co // C_out_g
        wide = np.zeros(L, xp.dtype)  # output plane at row pitch Wp
        for cl in range(C_in_g):
            src = xf[n, g * C_in_g + cl]  # (Hp*Wp,)
            for i in range(kh):
                for j in range(kw):
                    off = i * dh * Wp + j * dw
                    _axpy(wide, weight[co, cl, i, j], src[off:off + L])
        for oh in range(Ho):
            for ow in range(Wo):
                y[n, co, oh, ow] = wide[oh * Wp + ow] + bias[co]
    return y


@njit(parallel=True, cache=True)
def _widen(grad_y, spec):
    """Lay each gradient plane out at row pitch ``Wp = spec.W_pad``: (N, C, Ho, Wo) -> (N, C, L).

    Zeros in the ``Wp - Wo`` junk columns, ``L = (Ho - 1)*Wp + Wo`` (see
    :func:`_conv2d_direct`).
    """
    N, C, Ho, Wo = grad_y.shape
    Wp = spec.W_pad
    L = (Ho - 1) * Wp + Wo
    wide = np.zeros((N, C, L), grad_y.dtype)
    for item in prange(N * C):
        n, c = item // C, item % C
        for oh in range(Ho):
            wide[n, c, oh * Wp:oh * Wp + Wo] = grad_y[n, c, oh]
    return wide


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _conv2d_direct_grad_x(gy_wide, weight, spec):
    """grad_x of the direct path, parallel over the ``N*C_in`` input planes.

    gy_wide : (N, C_out, L) (:func:`_widen`), weight : (C_out, C_in // groups, kH, kW)
    -> grad_x : (N, C_in, H, W) (``spec`` a :class:`kernels.common.ConvSpec`)

    The adjoint of the forward's AXPYs: every tap sends its outputs' gradients back to the
    inputs it read, ``gxp.flat[off:off + L] += w * gy_wide[n, co]`` (the junk columns carry
    zeros, so they add nothing while ``w`` is finite), summed over the group's output
    channels; then the padding is cropped off. A thread owns whole input planes, so the
    scatter-add has no races.
    """
    N, C_out, L = gy_wide.shape
    _, C_in_g, kh, kw = weight.shape
    H, W, ph, pw = spec.H, spec.W, spec.pad_h, spec.pad_w
    dh, dw, Hp, Wp = spec.dil_h, spec.dil_w, spec.H_pad, spec.W_pad
    C_in = spec.C_in
    C_out_g = C_out // spec.groups
    grad_x = np.empty((N, C_in, H, W), gy_wide.dtype)
    for item in prange(N * C_in):
        n, c = item // C_in, item % C_in
        g, cl = c // C_in_g, c % C_in_g
        gxp = np.zeros(Hp * Wp, gy_wide.dtype)  # the padded input plane's gradient, flat
        for co in range(g * C_out_g, (g + 1) * C_out_g):
            for i in range(kh):
                for j in range(kw):
                    off = i * dh * Wp + j * dw
                    _axpy(gxp[off:off + L], weight[co, cl, i, j], gy_wide[n, co])
        for h in range(H):
            for w in range(W):
                grad_x[n, c, h, w] = gxp[(h + ph) * Wp + w + pw]
    return grad_x


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _conv2d_direct_grad_weight(gy_wide, xp, spec):
    """grad_weight of the direct path, parallel over the ``C_out*C_in/g*kH*kW`` weights.

    gy_wide : (N, C_out, L), xp : (N, C_in, Hp, Wp) -> (C_out, C_in // groups, kH, kW)
    (``spec`` a :class:`kernels.common.ConvSpec`)

    ``grad_w[co, cl, i, j] = sum_n gy_wide[n, co] . xp[n, c].flat[off:off + L]``: one long
    dot product per sample and weight (junk columns are zero in ``gy_wide``, and ``0 * x`` is
    0 for finite ``x``: :func:`conv2d_backward` takes this path only then). Parallel over
    weights (150 for LeNet's first layer), so each sum has one owner and no reduction
    between threads.
    """
    N, C_out, L = gy_wide.shape
    _, C_in, Hp, Wp = xp.shape
    kh, kw, dh, dw = spec.kH, spec.kW, spec.dil_h, spec.dil_w
    C_in_g = C_in // spec.groups
    C_out_g = C_out // spec.groups
    xf = xp.reshape(N, C_in, Hp * Wp)  # (N, C_in, Hp*Wp)
    grad_w = np.empty((C_out, C_in_g, kh, kw), xp.dtype)
    for item in prange(C_out * C_in_g * kh * kw):
        co, rest = item // (C_in_g * kh * kw), item % (C_in_g * kh * kw)
        cl, i, j = rest // (kh * kw), (rest // kw) % kh, rest % kw
        c = (co // C_out_g) * C_in_g + cl
        off = i * dh * Wp + j * dw
        acc = xp.dtype.type(0)
        for n in range(N):
            acc += _dot(gy_wide[n, co], xf[n, c, off:off + L])
        grad_w[co, cl, i, j] = acc
    return grad_w
