"""Padding (``F.pad``) on the CPU with Numba: constant, reflect, replicate, circular.

Computes what :func:`kernels.naive.pad` and :func:`kernels.naive.pad_backward` compute. What
changes: naive asks "which input cell does this output cell read" once per output cell; here
the answer is tabulated once per axis (:func:`_sources`, ``H_out + W_out`` calls of
:func:`_source_index` instead of ``H_out * W_out``), and one ``prange`` over the ``N*C``
planes copies (forward) or scatter-adds (backward) through the two tables. Each plane belongs
to one thread, so the backward's scatter needs no atomics: a thread zeroes its own plane of
``grad_x`` and adds every output cell's gradient to the cell it was copied from, in row-major
output order, as naive does.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels.common import PAD_CONSTANT, PAD_REFLECT, PAD_REPLICATE, PadSpec

from ._loops import njit


@njit(cache=True)
def _source_index(i, size, before, after, mode):
    """The input index output index ``i`` of one axis reads, ``-1`` for a padding cell.

    The twin of :func:`kernels.naive._source_index` (its docstring draws the four modes);
    Numba's ``%`` on integers rounds as Python's, so circular's wrap is the same.
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


@njit(cache=True)
def _sources(spec):
    """``(rows (H_out,), cols (W_out,))``: the input row / column each output one reads."""
    rows = np.empty(spec.H_out, np.int64)
    for i in range(spec.H_out):
        rows[i] = _source_index(i, spec.H, spec.pad_top, spec.pad_bottom, spec.mode)
    cols = np.empty(spec.W_out, np.int64)
    for j in range(spec.W_out):
        cols[j] = _source_index(j, spec.W, spec.pad_left, spec.pad_right, spec.mode)
    return rows, cols


@njit(parallel=True, cache=True)
def _pad(x, value, spec):
    """y[p, i, j] = x[p, rows[i], cols[j]] or ``value``, parallel over planes ``p``."""
    rows, cols = _sources(spec)
    fill = x.dtype.type(value)
    planes = x.reshape(spec.N * spec.C, spec.H, spec.W)  # (N*C, H, W), a view
    y = np.empty((spec.N * spec.C, spec.H_out, spec.W_out), x.dtype)  # (N*C, H_out, W_out)
    for p in prange(spec.N * spec.C):
        for i in range(spec.H_out):
            h = rows[i]
            for j in range(spec.W_out):
                w = cols[j]
                y[p, i, j] = fill if h < 0 or w < 0 else planes[p, h, w]
    return y.reshape(spec.N, spec.C, spec.H_out, spec.W_out)


@njit(parallel=True, cache=True)
def _pad_backward(grad_y, spec):
    """grad_x[p, rows[i], cols[j]] += grad_y[p, i, j], parallel over planes ``p``."""
    rows, cols = _sources(spec)
    gy = grad_y.reshape(spec.N * spec.C, spec.H_out, spec.W_out)  # (N*C, H_out, W_out)
    grad_x = np.empty((spec.N * spec.C, spec.H, spec.W), grad_y.dtype)  # (N*C, H, W)
    for p in prange(spec.N * spec.C):
        for h in range(spec.H):
            for w in range(spec.W):
                grad_x[p, h, w] = 0
        for i in range(spec.H_out):
            h = rows[i]
            if h < 0:
                continue
            for j in range(spec.W_out):
                w = cols[j]
                if w >= 0:
                    grad_x[p, h, w] += gy[p, i, j]
    return grad_x.reshape(spec.N, spec.C, spec.H, spec.W)


def pad(x, value, spec: PadSpec):
    """``F.pad``: x (N, C, H, W) -> y (N, C, H_out, W_out); ``value`` fills constant mode."""
    return _pad(x, float(value), spec)


def pad_backward(grad_y, spec: PadSpec):
    """grad_y (N, C, H_out, W_out) -> grad_x (N, C, H, W) (``spec.x_shape``)."""
    return _pad_backward(grad_y, spec)
