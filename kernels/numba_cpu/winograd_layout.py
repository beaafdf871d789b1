"""The tile layout both sets of Winograd transforms read and write (:mod:`.winograd`,
:mod:`.winograd_f2`): a plane split into its ``m x m`` phases, and tiles cropped to (or
gathered from) their pixels.

A tile column ``p = th*pitch + tw`` indexes every tile of a plane at once, ``pitch = T_w +
1`` (one junk tile per row of tiles): :func:`kernels.numba_cpu.winograd._input_transform`
says why.
"""

from __future__ import annotations

from ._loops import njit


@njit(cache=True)
def _split_phases(plane, plan, Q):
    """Write ``plane``'s zero-padded pixels into its ``m x m`` phases: ``Q[h % m, w % m, h //
    m, w // m] = xq[h, w]``, ``xq[h, w] = plane[h - pad_h, w - pad_w]``.

    plane : (H, W) -> Q : (m, m, T_h + 2, pitch), zero where it was (the padding is never
    written, so one zeroed ``Q`` serves every plane of a chunk). Column ``u`` of phase ``(r,
    pc)`` is ``xq``'s column ``u*m + pc``: strided by ``m`` on the read side.
    """
    H, W = plane.shape
    m, a, T_h, pitch = plan.m, plan.alpha, plan.tiles_h, plan.pitch
    h_lo, h_hi = max(0, plan.pad_h), min(T_h * m + a - m, plan.pad_h + H)  # rows of x in xq
    w_lo, w_hi = max(0, plan.pad_w), min(pitch * m, plan.pad_w + W)  # columns of x in xq
    for h in range(h_lo, h_hi):
        src = plane[h - plan.pad_h]
        for pc in range(m):  # columns w = u*m + pc of xq's row h
            dst = Q[h % m, pc, h // m]
            for u in range((w_lo - pc + m - 1) // m, (w_hi - pc + m - 1) // m):
                dst[u] = src[u * m + pc - plan.pad_w]


@njit(cache=True, inline="always")
def _tiles_inside(plan, i, j):
    """``(tiles_h, tiles_w)``: the rows and columns of tiles whose entry ``(i, j)``, pixel
    ``(th*m + i, tw*m + j)``, lies inside the ``(H_out, W_out)`` output (the last row or
    column of tiles may reach past it).
    """
    m = plan.m
    return (min(plan.tiles_h, (plan.H_out - i + m - 1) // m),
            min(plan.tiles_w, (plan.W_out - j + m - 1) // m))


@njit(cache=True)
def _crop_tiles(Y, bias, plan, out):
    """Entry ``(i, j)`` of every tile to its pixel: ``out[th*m + i, tw*m + j] = Y[i, j,
    th*pitch + tw] + bias``, the junk tiles and the pixels past ``(H_out, W_out)`` dropped.

    Y : (m, m, T_h*pitch), bias a scalar -> out : (H_out, W_out), every pixel written.
    """
    m, pitch = plan.m, plan.pitch
    for i in range(m):
        for j in range(m):
            tiles_h, tiles_w = _tiles_inside(plan, i, j)
            for th in range(tiles_h):
                row, src = out[th * m + i], Y[i, j, th * pitch:th * pitch + tiles_w]
                for tw in range(tiles_w):
                    row[tw * m + j] = src[tw] + bias


@njit(cache=True)
def _gather_tiles(plane, plan, dY):
    """The adjoint of :func:`_crop_tiles`: ``dY[i, j, th*pitch + tw] = plane[th*m + i, tw*m +
    j]``; plane : (H_out, W_out) -> dY : (m, m, T_h*pitch), its junk tiles and the entries
    past the edge left as they were (zero: the caller zeroes ``dY`` once).
    """
    m, pitch = plan.m, plan.pitch
    for i in range(m):
        for j in range(m):
            tiles_h, tiles_w = _tiles_inside(plan, i, j)
            for th in range(tiles_h):
                row, d = plane[th * m + i], dY[i, j, th * pitch:th * pitch + tiles_w]
                for tw in range(tiles_w):
                    d[tw] = row[tw * m + j]
