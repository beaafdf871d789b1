"""F(2x2, 3x3)'s three transforms with their matrices written into the code, one pass a plane.

:mod:`kernels.numba_cpu.winograd` transforms with the matrices as data: each entry of ``B^T d
B`` is built by whole-run AXPYs, one pass over the plane's tiles per nonzero coefficient
(32 + 32 passes for F(2x2)'s input transform, each over a run as long as a plane's tiles:
56 on ResNet-18's 14x14 planes). For F(2x2, 3x3) every coefficient is 0 or +-1, so, as NNPACK
and cuDNN do, this module writes the sums out instead: ONE pass over the tiles, each step
loading a tile's 16 inputs, adding and subtracting them, and storing its 16 outputs
(:func:`_input_transform_f2`), likewise ``A^T M A`` (16 in, 4 out) and ``A dY A^T`` (4 in,
16 out). The matrices are those of :data:`kernels.winograd.TILES` ``[2]`` (Lavin & Gray)::

    B^T = [[1,  0, -1,  0],     A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],            [0, 1, -1, -1]]
           [0, -1,  1,  0],
           [0,  1,  0, -1]]

and each 2-D transform is its 1-D one along the rows, then down the columns
(:func:`_bt`, :func:`_at`, :func:`_a`). The tiles are read from the plane's 2 x 2 phases as
the generic transforms read them (:func:`kernels.numba_cpu.winograd_layout._split_phases`): entry
``(r, s)`` of tile ``p`` is phase ``(r % 2, s % 2)`` at ``p + (r // 2)*pitch + s // 2``.

One thread, one sample, ResNet-18's layer3 (256 channels, 14x14): input transform 0.87 ->
0.20 ms, output transform 0.35 -> 0.10, grad-output transform 0.35 -> 0.13; layer2 (128
channels, 28x28): 0.69 -> 0.33, 0.26 -> 0.16, 0.26 -> 0.21. One pass writes 16 rows of
``V``, so those must not lie a multiple of 4 KiB apart (:func:`.winograd._forward_lanes`).
:data:`kernels.numba_cpu.winograd.AUTO_TABLE` has the whole path's times.
"""

from __future__ import annotations

import numpy as np

from ._loops import FASTMATH, njit
from .winograd_layout import _crop_tiles, _gather_tiles, _split_phases


@njit(cache=True, inline="always")
def _bt(d0, d1, d2, d3):
    """``B^T @ (d0, d1, d2, d3)`` for F(2x2, 3x3): 4 -> 4."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(cache=True, inline="always")
def _at(m0, m1, m2, m3):
    """``A^T @ (m0, m1, m2, m3)``: 4 -> 2."""
    return m0 + m1 + m2, m1 - m2 - m3


@njit(cache=True, inline="always")
def _a(y0, y1):
    """``A @ (y0, y1)`` (the adjoint of :func:`_at`): 2 -> 4."""
    return y0, y0 + y1, y0 - y1, -y1


@njit(cache=True, fastmath=FASTMATH)
def _input_transform_f2(x, plan, V):
    """What :func:`kernels.numba_cpu.winograd._input_transform` computes, for ``plan.m == 2``.

    x : (n, C, H, W), ``plan`` a ``TilePlan`` -> fills V : (16, C, n*T_h*pitch), tile ``(b,
    th, tw)`` of plane ``(b, c)`` at column ``p = (b*T_h + th)*pitch + tw``.
    """
    n, C = x.shape[0], x.shape[1]
    T_h, pitch = plan.tiles_h, plan.pitch
    T = T_h * pitch  # tile columns per plane, junk included
    Q = np.zeros((2, 2, T_h + 2, pitch), x.dtype)  # the phases; rows past T_h stay zero
    Qf = Q.reshape(2, 2, (T_h + 2) * pitch)
    for item in range(n * C):
        b, c = item // C, item % C
        _split_phases(x[b, c], plan, Q)
        ee, eo, oe, oo = Qf[0, 0], Qf[0, 1], Qf[1, 0], Qf[1, 1]  # (even|odd row, col) phases
        out = V[:, c, b * T:(b + 1) * T]  # (16, T)
        for p in range(T):
            q = p + pitch  # rows 2 and 3 of the tile: one row of tiles further down
            # B^T along each row of d (row r: phase r % 2, at p or q), then down the columns
            r0 = _bt(ee[p], eo[p], ee[p + 1], eo[p + 1])
            r1 = _bt(oe[p], oo[p], oe[p + 1], oo[p + 1])
            r2 = _bt(ee[q], eo[q], ee[q + 1], eo[q + 1])
            r3 = _bt(oe[q], oo[q], oe[q + 1], oo[q + 1])
            for j, (v0, v1, v2, v3) in enumerate((_bt(r0[0], r1[0], r2[0], r3[0]),
                                                  _bt(r0[1], r1[1], r2[1], r3[1]),
                                                  _bt(r0[2], r1[2], r2[2], r3[2]),
                                                  _bt(r0[3], r1[3], r2[3], r3[3]))):
                out[j, p] = v0  # V[(i, j)] at row i*4 + j
                out[4 + j, p] = v1
                out[8 + j, p] = v2
                out[12 + j, p] = v3


@njit(cache=True, fastmath=FASTMATH)
def _output_transform_f2(M, bias, plan, y):
    """What :func:`kernels.numba_cpu.winograd._output_transform` computes, for ``plan.m == 2``.

    M : (16, C_out, n*T_h*pitch), bias : (C_out,), ``plan`` a ``TilePlan`` -> fills y : (n,
    C_out, H_out, W_out).
    """
    n, C_out = y.shape[0], y.shape[1]
    T = plan.tiles_h * plan.pitch  # tile columns per plane, junk included
    Y = np.empty((2, 2, T), M.dtype)  # A^T M A, entry (i, j) of every tile
    for item in range(n * C_out):
        b, o = item // C_out, item % C_out
        m = M[:, o, b * T:(b + 1) * T]  # (16, T)
        for p in range(T):
            # A^T along each row k of the tile's M (entries k*4 + l), then down the columns
            w0 = _at(m[0, p], m[1, p], m[2, p], m[3, p])
            w1 = _at(m[4, p], m[5, p], m[6, p], m[7, p])
            w2 = _at(m[8, p], m[9, p], m[10, p], m[11, p])
            w3 = _at(m[12, p], m[13, p], m[14, p], m[15, p])
            for j in range(2):
                y0, y1 = _at(w0[j], w1[j], w2[j], w3[j])
                Y[0, j, p] = y0
                Y[1, j, p] = y1
        _crop_tiles(Y, bias[o], plan, y[b, o])


@njit(cache=True, fastmath=FASTMATH)
def _grad_output_transform_f2(grad_y, plan, dM):
    """What :func:`kernels.numba_cpu.winograd._grad_output_transform` computes, for ``m == 2``.

    grad_y : (n, C_out, H_out, W_out), ``plan`` a ``TilePlan`` -> fills dM : (16, C_out,
    n*T_h*pitch), ``(A dY A^T)[xi, nu]`` at row ``xi*4 + nu``, zero on the junk tiles.
    """
    n, C_out = grad_y.shape[0], grad_y.shape[1]
    T = plan.tiles_h * plan.pitch  # tile columns per plane, junk included
    dY = np.zeros((2, 2, T), grad_y.dtype)  # entry (i, j) of every tile; never written: 0
    for item in range(n * C_out):
        b, o = item // C_out, item % C_out
        _gather_tiles(grad_y[b, o], plan, dY)
        out = dM[:, o, b * T:(b + 1) * T]  # (16, T)
        for p in range(T):
            r0 = _a(dY[0, 0, p], dY[0, 1, p])  # A along each row i of dY, then down
            r1 = _a(dY[1, 0, p], dY[1, 1, p])
            for nu in range(4):
                v0, v1, v2, v3 = _a(r0[nu], r1[nu])
                out[nu, p] = v0  # dM[(xi, nu)] at row xi*4 + nu
                out[4 + nu, p] = v1
                out[8 + nu, p] = v2
                out[12 + nu, p] = v3
