"""Pooling on the CPU with Numba: max, average, adaptive and unpooling, forward and backward.

Each op computes what its namesake in :mod:`kernels.naive` computes (``max_pool2d``,
``max_pool2d_backward``, ``avg_pool2d``, ``avg_pool2d_backward``, ``adaptive_avg_pool2d``,
``adaptive_avg_pool2d_backward``, ``max_unpool2d``, ``max_unpool2d_backward``,
``adaptive_max_pool2d``, ``adaptive_max_pool2d_backward``): one ``prange`` over the ``N*C``
planes. Max pooling scans each window on its own, its taps in PyTorch's row-major order, a
running maximum in a register (:func:`_max_pool_plane`); average pooling goes tap by tap,
each tap adding into a row of running sums, which keeps the same order per window. Each
kernel takes the call's record (:class:`kernels.common.PoolSpec`, ``AdaptivePoolSpec`` or
``UnpoolSpec``) and reads the window and the output size from it by name; average
pooling's divisors and adaptive pooling's bounds come from the helpers of
:mod:`kernels.common`, as in naive, tabulated once per axis.

How the loops are written, and what each rule bought (medians on the 2-core VM, 2 threads):

- A kernel that needs planes flat reshapes the whole array to ``(N*C, ...)`` once, before
  the ``prange``, and indexes plane ``p`` of that: ``x[n, c].reshape(H * W)`` inside the loop
  cost more than pooling a 7x7 plane (global pool forward: 0.43 ms, 0.19 ms with the reshape
  outside). Plain slices ``x[n, c]``, as in average pooling, cost nothing measurable.
- An inner loop walks a *run*, a slice it indexes from 0 (``run[k]``), not ``row[lo + k]``:
  Numba wraps negative indices, and with a start LLVM cannot prove non-negative every access
  carries that check and the loop does not vectorise. ResNet's global pool (32x512x7x7 ->
  1x1) forward: 0.39 ms indexing from ``h0*W``, 0.19 ms on a run. Average pooling's
  backward: 9.0 -> 5.7 ms on runs (8x64x56x56 -> 112x112, k3 s2 p1). One exception,
  ``_avg_pool2d`` (forward), indexes ``plane[h, ow*sw + j - pw]``: there, making a strided
  run slice per tap and output row cost more than it saved at stride 2 (same layer, 8.6 ->
  11.1 ms on runs; stride 1 was faster on runs, 28.5 -> 19.6 ms, which a branch per stride
  could have kept: not done, to keep one loop).
- A backward's ``grad_x`` is ``np.empty``, and each plane is zeroed by the thread that then
  adds into it: ``np.zeros`` in a parallel kernel is one more pass over memory. Max-pool
  backward from indices on 8x64x56x56: 1.71 ms -> 0.30 ms.
- A window's scan is three selects per tap and no branch, over the window's in-bounds taps
  tabulated once per call (:func:`_tap_ranges`), read with an unsigned index (no
  wrap-around test: 7-10% on both layers below). Max pooling forward, tap by tap with the
  keep test as one ``or`` (which compiled to branches) and each run's bounds divided out per
  tap and output row: 0.81 ms on 64x10x24x24 (2x2), 102 ms on 32x64x112x112 (3x3 s2 p1);
  window by window: 0.38 and 56 ms; tap by tap with the selects and the tables: 1.2 and
  175 ms (AMD EPYC with AVX-512). On the AMD EPYC with AVX2 only (Zen 3), window by window
  wins on LeNet's and the MNIST CNN's pools (64x10x24x24: 1.41/1.46 -> 0.96/0.74 ms) and
  loses on ResNet's (95-100 -> 106-124 ms, PyTorch 178-189 ms). Average pooling's sum went
  the other way: window by window with the tables, 0.31 ms against 0.19 ms tap by tap on
  64x6x28x28 (2x2). It goes tap by tap, with the outputs each tap reaches tabulated once
  per call (:func:`_output_ranges`) instead of divided out per plane: LeNet's second pool
  (64x16x10x10, 2x2) 0.20-0.27 -> 0.17-0.22 ms forward, 0.22-0.32 -> 0.17-0.26 ms backward
  (AVX2 EPYC, medians of 60 interleaved calls, two runs).
- Small arrays are filled with explicit loops, not ``a[:, :] = v``, whose fixed cost is
  large next to a 4x4 plane: max pool forward on 64x20x8x8, 0.50 ms -> 0.33 ms.

Max pooling is exact (PyTorch's scan order, ties, NaN). Average pooling sums each window in
row-major order. Adaptive pooling lets ``fastmath`` reassociate a run's sum (as PyTorch's
``mean``, which it uses for output 1x1): the last bits of a sum may differ from PyTorch's,
NaN and inf propagate as they do there.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import prange

from kernels.common import AdaptivePoolSpec, PoolSpec, UnpoolSpec, adaptive_bounds, avg_pool_count

from ._loops import FASTMATH, _valid_range, njit

# --------------------------------------------------------------------------- max pooling


@njit(cache=True)
def _tap_ranges(out_size, size, k, stride, pad, dil):
    """Each output's in-bounds taps along one axis: (out_size, 2) int64, row ``o`` = ``[lo, hi)``.

    Tap ``t`` (``0 <= t < k``) of output ``o`` reads input ``o*stride - pad + t*dil``; the taps
    that land inside ``[0, size)`` are ``lo <= t < hi`` (none when ``hi <= lo``: a window that
    lies in the padding). It is :func:`_valid_range` with the roles of outputs and taps
    swapped, tabulated once per call and axis, so that the window loops divide nothing.
    """
    ranges = np.empty((out_size, 2), np.int64)
    for o in range(out_size):
        ranges[o, 0], ranges[o, 1] = _valid_range(k, size, o * stride - pad, dil)
    return ranges


@njit(cache=True)
def _max_pool_plane(plane, vals, index, spec, rows, cols):
    """Max-pool one plane, window by window: plane (H*W,) -> vals, index (H_out, W_out), in place.

    ``spec`` a :class:`kernels.common.PoolSpec`; rows : (H_out, 2), cols : (W_out, 2) each
    output row's and column's in-bounds taps (:func:`_tap_ranges`), so a window's loops run
    over its in-bounds taps only, with no test per tap.

    PyTorch's scan: per window, taps in row-major order, keep the tap if it is the window's
    first in-bounds tap, or ``val > max`` or ``isnan(val)``. So ties keep the first maximum,
    the last NaN wins, and out-of-bounds taps (padding, ceil-mode overhang) act as -inf.
    ``index`` is the flat ``h*W + w`` of the kept tap (what backward needs), ``-1`` for a
    window with no tap inside the input (possible with dilation), whose value is ``-inf``.

    Here the NaN test is split off: ``best``/``kept`` follow ``val > best`` alone, and
    ``last_nan`` remembers the last NaN, which, if any, is the answer (once PyTorch keeps a
    NaN, no number replaces it, since nothing compares greater than NaN, and every later NaN
    does). Each of the three is a select, with no branch, and the running maximum is one
    ``vmaxss`` per tap, the only chain from tap to tap. On the MNIST CNN's first pool
    (64x10x24x24, 2x2) and ResNet's (32x64x112x112, 3x3 stride 2, padding 1), float32, 2
    threads, medians of two interleaved runs on the AMD EPYC with AVX-512: 0.38/0.35 and
    56/59 ms, where the former loop order took 0.81/0.85 and 102/108 ms (PyTorch: 0.88/0.92
    and 104/114 ms); on the AVX2-only EPYC, see the module header. That one walked
    each tap's run of outputs along a row (the loop order average pooling's backward keeps),
    recomputing the run's bounds, a division, per tap and output row; its keep test ``take =
    first | (val > max) | isnan(val)`` compiled to branches, and runs shorter than 24
    outputs were not vectorised.
    """
    W = spec.W
    sh, sw, ph, pw, dh, dw = (spec.stride_h, spec.stride_w, spec.pad_h, spec.pad_w,
                              spec.dil_h, spec.dil_w)
    Ho, Wo = vals.shape
    for oh in range(Ho):
        i_lo, i_hi = rows[oh, 0], rows[oh, 1]
        for ow in range(Wo):
            j_lo, j_hi = cols[ow, 0], cols[ow, 1]
            best, kept, last_nan = plane.dtype.type(-np.inf), -1, -1
            if i_lo < i_hi and j_lo < j_hi:  # start from the window's first in-bounds tap
                kept = (oh * sh - ph + i_lo * dh) * W + ow * sw - pw + j_lo * dw
                best = plane[kept]
            for i in range(i_lo, i_hi):
                row = (oh * sh - ph + i * dh) * W + ow * sw - pw  # flat index of tap (i, 0)
                for j in range(j_lo, j_hi):
                    k = row + j * dw
                    v = plane[np.uint64(k)]  # unsigned: no wrap-around test
                    kept = k if v > best else kept
                    best = v if v > best else best
                    last_nan = k if v != v else last_nan
            if last_nan >= 0:
                kept, best = last_nan, plane[last_nan]
            vals[oh, ow] = best
            index[oh, ow] = kept


@njit(cache=True)
def _window_taps(spec):
    """:func:`_tap_ranges` of both axes of a max pool: rows (H_out, 2), cols (W_out, 2)."""
    rows = _tap_ranges(spec.H_out, spec.H, spec.kH, spec.stride_h, spec.pad_h, spec.dil_h)
    cols = _tap_ranges(spec.W_out, spec.W, spec.kW, spec.stride_w, spec.pad_w, spec.dil_w)
    return rows, cols


@njit(cache=True)
def _output_ranges(k, out_size, size, stride, pad):
    """The outputs each tap reaches along one axis: (k, 2) int64, row ``t`` = ``[lo, hi)``.

    Tap ``t`` of output ``o`` reads input ``o*stride - pad + t``; the outputs whose tap ``t``
    lands inside ``[0, size)`` are ``lo <= o < hi`` (:func:`_valid_range`), tabulated once per
    call and axis for average pooling's tap-by-tap loops, which used to divide them out per
    plane.
    """
    ranges = np.empty((k, 2), np.int64)
    for t in range(k):
        ranges[t, 0], ranges[t, 1] = _valid_range(out_size, size, t - pad, stride)
    return ranges


@njit(parallel=True, cache=True)
def _max_pool2d(x, spec):
    """Max pooling, parallel over the ``N*C`` planes: (N, C, H, W) -> y, indices (N, C, Ho, Wo).

    ``Ho, Wo = spec.H_out, spec.W_out``. ``indices`` (int64) holds each window's flat
    ``h*W + w`` argmax, as PyTorch's ``return_indices=True``; writing it costs little next to
    the scan.
    """
    N, C, H, W = x.shape
    Ho, Wo = spec.H_out, spec.W_out
    rows, cols = _window_taps(spec)
    planes = x.reshape(N * C, H * W)  # (N*C, H*W)
    y = np.empty((N * C, Ho, Wo), x.dtype)
    indices = np.empty((N * C, Ho, Wo), np.int64)
    for p in prange(N * C):
        _max_pool_plane(planes[p], y[p], indices[p], spec, rows, cols)
    return y.reshape(N, C, Ho, Wo), indices.reshape(N, C, Ho, Wo)


@njit(parallel=True, cache=True)
def _max_pool2d_backward_indices(grad_y, indices, spec):
    """grad_x of max pooling from the forward's indices: a scatter-add, parallel over planes.

    grad_y, indices : (N, C, Ho, Wo) -> grad_x : (N, C, H, W) (``H, W = spec.H, spec.W``).
    ``grad_x[n, c].flat[k] += grad_y`` for each window whose index is ``k`` (``-1``: a window
    with nothing inside the input, whose gradient is dropped). One thread owns a plane, so
    nothing races.
    """
    N, C, Ho, Wo = grad_y.shape
    H, W = spec.H, spec.W
    gy, idx = grad_y.reshape(N * C, Ho * Wo), indices.reshape(N * C, Ho * Wo)  # (N*C, Ho*Wo)
    grad_x = np.empty((N * C, H * W), grad_y.dtype)
    for p in prange(N * C):
        for k in range(H * W):  # zeroed by the thread that owns the plane (module header)
            grad_x[p, k] = 0
        for o in range(Ho * Wo):
            k = idx[p, o]
            if k >= 0:
                grad_x[p, k] += gy[p, o]
    return grad_x.reshape(N, C, H, W)


@njit(parallel=True, cache=True)
def _max_pool2d_backward(grad_y, x, spec):
    """grad_x of max pooling: each output's gradient is added at its window's kept tap.

    grad_y : (N, C, Ho, Wo), x : (N, C, H, W) -> grad_x : (N, C, H, W) (``spec`` a
    :class:`kernels.common.PoolSpec`). The argmax is recomputed from ``x`` (this path runs
    when the forward's indices are not passed back). Windows overlap when stride < kernel,
    hence ``+=``; one thread owns a plane, so nothing races.
    """
    N, C, H, W = x.shape
    Ho, Wo = spec.H_out, spec.W_out
    rows, cols = _window_taps(spec)
    planes, gy3 = x.reshape(N * C, H * W), grad_y.reshape(N * C, Ho, Wo)  # flat over N*C
    grad_x = np.empty((N * C, H * W), x.dtype)
    for p in prange(N * C):
        vals = np.empty((Ho, Wo), x.dtype)
        index = np.empty((Ho, Wo), np.int64)
        _max_pool_plane(planes[p], vals, index, spec, rows, cols)
        for k in range(H * W):
            grad_x[p, k] = 0
        for oh in range(Ho):
            for ow in range(Wo):
                if index[oh, ow] >= 0:  # -1: a window with nothing inside the input
                    grad_x[p, index[oh, ow]] += gy3[p, oh, ow]
    return grad_x.reshape(N, C, H, W)


def max_pool2d(x, spec: PoolSpec, *, return_indices=False):
    """Max pooling (PyTorch's semantics): x (N, C, H, W) -> y ``spec.y_shape``.

    ``spec.y_shape`` is (N, C, H_out, W_out). With ``return_indices``, also the int64
    ``spec.y_shape`` flat argmax indices (always computed; returned only when asked).
    """
    y, indices = _max_pool2d(x, spec)
    return (y, indices) if return_indices else y


def max_pool2d_backward(grad_y, x, indices, spec: PoolSpec):
    """grad_x of :func:`max_pool2d`: grad_y (N, C, H_out, W_out) -> (N, C, H, W).

    Given the forward's ``indices`` (int64, ``spec.y_shape``), a scatter-add; with ``indices
    = None`` the argmax is recomputed from ``x`` first (the price of a backward that needs
    nothing but ``x``).
    """
    if indices is not None:
        return _max_pool2d_backward_indices(grad_y, indices, spec)
    return _max_pool2d_backward(grad_y, x, spec)


# --------------------------------------------------------------------------- average pooling


@njit(parallel=True, cache=True)
def _avg_pool2d(x, div_h, div_w, spec):
    """Average pooling, parallel over planes: (N, C, H, W) -> (N, C, Ho, Wo).

    div_h : (Ho,), div_w : (Wo,) (:func:`_avg_divisors`); ``spec`` a
    :class:`kernels.common.PoolSpec` (``Ho, Wo = spec.H_out, spec.W_out``, no dilation).
    Each window sums its in-bounds taps (padding adds 0) in row-major order, as PyTorch, and
    divides by ``div_h[oh] * div_w[ow]``: PyTorch's divisor (``kernels.common.
    avg_pool_divisor``) is a product of one factor per axis, computed once per axis by the
    caller. Loop order: tap row ``i``, output row, tap column ``j``, output column, so each
    output still sees its taps in row-major order while the inner loop runs along an output
    row; it indexes the plane at ``ow*sw + j - pw`` instead of walking a run: the exception
    to the module header's run rule, because runs measured slower here at stride 2 (see the
    header).
    """
    N, C, H, W = x.shape
    kh, kw, sh, sw = spec.kH, spec.kW, spec.stride_h, spec.stride_w
    ph, pw, Ho, Wo = spec.pad_h, spec.pad_w, spec.H_out, spec.W_out
    rows, cols = _output_ranges(kh, Ho, H, sh, ph), _output_ranges(kw, Wo, W, sw, pw)
    div = np.empty((Ho, Wo), x.dtype)  # each window's divisor
    for oh in range(Ho):
        for ow in range(Wo):
            div[oh, ow] = div_h[oh] * div_w[ow]
    y = np.empty((N, C, Ho, Wo), x.dtype)
    for item in prange(N * C):
        n, c = item // C, item % C
        plane, out = x[n, c], y[n, c]  # (H, W), (Ho, Wo)
        for oh in range(Ho):
            for ow in range(Wo):
                out[oh, ow] = 0
        for i in range(kh):
            for oh in range(rows[i, 0], rows[i, 1]):
                h = oh * sh + i - ph
                for j in range(kw):
                    for ow in range(cols[j, 0], cols[j, 1]):
                        out[oh, ow] += plane[h, ow * sw + j - pw]
        for oh in range(Ho):
            for ow in range(Wo):
                out[oh, ow] /= div[oh, ow]
    return y


@njit(parallel=True, cache=True)
def _avg_pool2d_backward(grad_y, div_h, div_w, spec):
    """grad_x of average pooling, parallel over planes: (N, C, Ho, Wo) -> (N, C, H, W).

    div_h : (Ho,), div_w : (Wo,) as in :func:`_avg_pool2d`; ``H, W = spec.H, spec.W``. Each
    output's gradient divided by its divisor is added to every in-bounds tap of its window
    (the transpose of the forward sum), a run at a time: tap ``(i, j)`` of output row ``oh``
    adds the run ``scaled[oh, ow_lo:ow_hi]`` onto the strided slice of input row ``h`` it
    covers, so each input cell still receives its terms in the order ``(i, oh, j, ow)``.
    """
    N, C, Ho, Wo = grad_y.shape
    kh, kw, sh, sw = spec.kH, spec.kW, spec.stride_h, spec.stride_w
    ph, pw, H, W = spec.pad_h, spec.pad_w, spec.H, spec.W
    rows, cols = _output_ranges(kh, Ho, H, sh, ph), _output_ranges(kw, Wo, W, sw, pw)
    div = np.empty((Ho, Wo), grad_y.dtype)  # each window's divisor
    for oh in range(Ho):
        for ow in range(Wo):
            div[oh, ow] = div_h[oh] * div_w[ow]
    grad_x = np.empty((N, C, H, W), grad_y.dtype)
    for item in prange(N * C):
        n, c = item // C, item % C
        gy, gx = grad_y[n, c], grad_x[n, c]  # (Ho, Wo), (H, W)
        for h in range(H):
            for w in range(W):
                gx[h, w] = 0
        scaled = np.empty((Ho, Wo), grad_y.dtype)
        for oh in range(Ho):
            for ow in range(Wo):
                scaled[oh, ow] = gy[oh, ow] / div[oh, ow]
        for i in range(kh):
            for oh in range(rows[i, 0], rows[i, 1]):
                h = oh * sh + i - ph
                for j in range(kw):
                    ow_lo, ow_hi = cols[j, 0], cols[j, 1]
                    if ow_hi <= ow_lo:
                        continue
                    w_lo = ow_lo * sw + j - pw  # input column of the run's first tap
                    grads = gx[h, w_lo:w_lo + (ow_hi - ow_lo - 1) * sw + 1:sw]  # (run,)
                    deltas = scaled[oh, ow_lo:ow_hi]  # (run,)
                    for k in range(grads.shape[0]):
                        grads[k] += deltas[k]
    return grad_x


@functools.lru_cache(maxsize=256)
def _avg_divisors(spec: PoolSpec, dtype) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's divisor as one factor per axis: ``div_h (H_out,)``, ``div_w (W_out,)``.

    ``avg_pool_divisor`` is ``avg_pool_count`` of the rows times that of the columns; each
    factor is computed once per axis here. With ``spec.divisor_override`` (non-zero) every
    window's divisor is that number. ``dtype`` is the input's.

    Remembered per ``(spec, dtype)``, as the specs themselves are (``kernels.common``), and
    handed out read-only: the Python loops cost 4.3 of a tiny ``avg_pool2d``'s 10 us.
    """
    if spec.divisor_override:
        div_h = np.full(spec.H_out, spec.divisor_override, dtype)
        div_w = np.ones(spec.W_out, dtype)
    else:
        cip = spec.count_include_pad
        div_h = np.array([avg_pool_count(oh * spec.stride_h - spec.pad_h, spec.kH, spec.H,
                                         spec.pad_h, cip) for oh in range(spec.H_out)], dtype)
        div_w = np.array([avg_pool_count(ow * spec.stride_w - spec.pad_w, spec.kW, spec.W,
                                         spec.pad_w, cip) for ow in range(spec.W_out)], dtype)
    div_h.flags.writeable = div_w.flags.writeable = False
    return div_h, div_w


def avg_pool2d(x, spec: PoolSpec):
    """Average pooling (PyTorch's semantics): x (N, C, H, W) -> ``spec.y_shape``.

    ``spec.y_shape`` is (N, C, H_out, W_out); ``spec.count_include_pad`` and
    ``spec.divisor_override`` pick the divisor (:func:`_avg_divisors`).
    """
    div_h, div_w = _avg_divisors(spec, x.dtype)
    return _avg_pool2d(x, div_h, div_w, spec)


def avg_pool2d_backward(grad_y, spec: PoolSpec):
    """grad_x of :func:`avg_pool2d`: grad_y (N, C, H_out, W_out) -> (N, C, H, W)."""
    div_h, div_w = _avg_divisors(spec, grad_y.dtype)
    return _avg_pool2d_backward(grad_y, div_h, div_w, spec)


# --------------------------------------------------------------------------- adaptive pooling


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _adaptive_avg_pool2d(x, h_bounds, w_bounds, spec):
    """Adaptive average pooling, parallel over planes: (N, C, H, W) -> (N, C, Ho, Wo).

    ``h_bounds (Ho, 2)``, ``w_bounds (Wo, 2)``: each output cell's half-open input ranges
    (``kernels.common.adaptive_bounds``); ``Ho, Wo = spec.H_out, spec.W_out`` (``spec`` an
    :class:`kernels.common.AdaptivePoolSpec`). Sum the cell's inputs, then ``sum / kh / kw``
    as PyTorch writes it. The sums run over *runs*, slices of a row that the inner loop walks
    from 0 (see the module header); a cell whose columns span whole rows (ResNet's global
    pool, output 1x1) is one run of the flattened plane. ``fastmath`` lets LLVM split a run's
    sum over vector lanes, as PyTorch's ``mean`` (which it calls for output 1x1) does.
    """
    N, C, H, W = x.shape
    Ho, Wo = spec.H_out, spec.W_out
    x2, x3 = x.reshape(N * C, H * W), x.reshape(N * C, H, W)  # planes flat, planes
    y = np.empty((N * C, Ho, Wo), x.dtype)
    for p in prange(N * C):
        for oh in range(Ho):
            h0, h1 = h_bounds[oh, 0], h_bounds[oh, 1]
            for ow in range(Wo):
                w0, w1 = w_bounds[ow, 0], w_bounds[ow, 1]
                acc = x.dtype.type(0)
                if w1 - w0 == W:  # whole rows h0..h1-1: one run
                    run = x2[p, h0 * W:h1 * W]
                    for k in range(run.shape[0]):
                        acc += run[k]
                else:
                    for h in range(h0, h1):
                        run = x3[p, h, w0:w1]
                        for k in range(run.shape[0]):
                            acc += run[k]
                y[p, oh, ow] = acc / x.dtype.type(h1 - h0) / x.dtype.type(w1 - w0)
    return y.reshape(N, C, Ho, Wo)


@njit(parallel=True, cache=True)
def _adaptive_avg_pool2d_backward(grad_y, h_bounds, w_bounds, spec):
    """grad_x of adaptive average pooling: (N, C, Ho, Wo) -> (N, C, H, W), parallel over planes.

    Bounds as in :func:`_adaptive_avg_pool2d`; ``H, W = spec.H, spec.W``. Each cell's
    ``grad / kh / kw`` is added to every input of its range, a run per row; ranges of
    neighbouring cells may overlap by one row/column, hence ``+=``.
    """
    N, C, Ho, Wo = grad_y.shape
    H, W = spec.H, spec.W
    gy = grad_y.reshape(N * C, Ho, Wo)  # (N*C, Ho, Wo)
    grad_x = np.empty((N * C, H * W), grad_y.dtype)
    for p in prange(N * C):
        gx = grad_x[p]  # (H*W,): the plane, flat
        for k in range(H * W):
            gx[k] = 0
        for oh in range(Ho):
            h0, h1 = h_bounds[oh, 0], h_bounds[oh, 1]
            for ow in range(Wo):
                w0, w1 = w_bounds[ow, 0], w_bounds[ow, 1]
                delta = gy[p, oh, ow] / grad_y.dtype.type(h1 - h0) / grad_y.dtype.type(w1 - w0)
                for h in range(h0, h1):
                    run = gx[h * W + w0:h * W + w1]
                    for k in range(run.shape[0]):
                        run[k] += delta
    return grad_x.reshape(N, C, H, W)


def _adaptive_bounds(size: int, out: int) -> np.ndarray:
    """(out, 2) int64: ``[start, end)`` of every output cell along one axis."""
    return np.array([adaptive_bounds(i, size, out) for i in range(out)], np.int64)


def adaptive_avg_pool2d(x, spec: AdaptivePoolSpec):
    """Adaptive average pooling: x (N, C, H, W) -> ``spec.y_shape`` (N, C, H_out, W_out)."""
    return _adaptive_avg_pool2d(x, _adaptive_bounds(spec.H, spec.H_out),
                                _adaptive_bounds(spec.W, spec.W_out), spec)


def adaptive_avg_pool2d_backward(grad_y, spec: AdaptivePoolSpec):
    """grad_x of :func:`adaptive_avg_pool2d`: grad_y ``spec.y_shape`` -> ``spec.x_shape``."""
    return _adaptive_avg_pool2d_backward(grad_y, _adaptive_bounds(spec.H, spec.H_out),
                                         _adaptive_bounds(spec.W, spec.W_out), spec)


# --------------------------------------------------------------------------- max unpooling


@njit(parallel=True, cache=True)
def _max_unpool2d(x, indices, spec):
    """Max unpooling, parallel over planes: x, indices (N, C, H, W) -> y (N, C, Ho, Wo).

    ``spec`` a :class:`kernels.common.UnpoolSpec`. Each thread zeroes its own output plane,
    then writes its inputs to their indices in row-major input order, so of several inputs
    naming one cell the last one stays, as in naive; no two threads share a
    plane, so nothing races.
    """
    N, C, H, W = x.shape
    HWo = spec.H_out * spec.W_out
    x2, idx = x.reshape(N * C, H * W), indices.reshape(N * C, H * W)  # (N*C, H*W)
    y = np.empty((N * C, HWo), x.dtype)
    for p in prange(N * C):
        for k in range(HWo):
            y[p, k] = 0
        for k in range(H * W):
            y[p, idx[p, k]] = x2[p, k]
    return y.reshape(N, C, spec.H_out, spec.W_out)


@njit(parallel=True, cache=True)
def _max_unpool2d_backward(grad_y, indices, spec):
    """grad_x[p].flat[k] = grad_y[p].flat[indices[p].flat[k]]: a gather, parallel over planes."""
    N, C, H, W = spec.N, spec.C, spec.H, spec.W
    gy = grad_y.reshape(N * C, spec.H_out * spec.W_out)  # (N*C, Ho*Wo)
    idx = indices.reshape(N * C, H * W)  # (N*C, H*W)
    grad_x = np.empty((N * C, H * W), grad_y.dtype)
    for p in prange(N * C):
        for k in range(H * W):
            grad_x[p, k] = gy[p, idx[p, k]]
    return grad_x.reshape(N, C, H, W)


def max_unpool2d(x, indices, spec: UnpoolSpec):
    """Max unpooling: x, indices (N, C, H, W) -> y ``spec.y_shape`` (N, C, H_out, W_out)."""
    return _max_unpool2d(x, indices, spec)


def max_unpool2d_backward(grad_y, indices, spec: UnpoolSpec):
    """grad_x of :func:`max_unpool2d`: grad_y (N, C, H_out, W_out) -> (N, C, H, W)."""
    return _max_unpool2d_backward(grad_y, indices, spec)


# --------------------------------------------------------------------------- adaptive max


@njit(parallel=True, cache=True)
def _adaptive_max_pool2d(x, h_bounds, w_bounds, spec):
    """Adaptive max pooling, parallel over planes: (N, C, H, W) -> y, indices (N, C, Ho, Wo).

    Bounds as in :func:`_adaptive_avg_pool2d`. Each window is scanned row-major from its
    first cell with ``-inf``, taking a value that is greater or NaN (PyTorch's rule, as in
    :func:`kernels.naive._adaptive_max_argmax`); the inner loop walks a run of one row.
    """
    N, C, H, W = x.shape
    Ho, Wo = spec.H_out, spec.W_out
    x3 = x.reshape(N * C, H, W)  # (N*C, H, W)
    y = np.empty((N * C, Ho, Wo), x.dtype)
    indices = np.empty((N * C, Ho, Wo), np.int64)
    for p in prange(N * C):
        for oh in range(Ho):
            h0, h1 = h_bounds[oh, 0], h_bounds[oh, 1]
            for ow in range(Wo):
                w0, w1 = w_bounds[ow, 0], w_bounds[ow, 1]
                best = -np.inf
                best_index = h0 * W + w0
                for h in range(h0, h1):
                    run = x3[p, h, w0:w1]
                    for k in range(run.shape[0]):
                        v = run[k]
                        if v > best or v != v:  # v != v: NaN
                            best = v
                            best_index = h * W + w0 + k
                y[p, oh, ow] = best
                indices[p, oh, ow] = best_index
    return y.reshape(N, C, Ho, Wo), indices.reshape(N, C, Ho, Wo)


def adaptive_max_pool2d(x, spec: AdaptivePoolSpec, *, return_indices=False):
    """Adaptive max pooling: x (N, C, H, W) -> y ``spec.y_shape`` [, int64 indices]."""
    y, indices = _adaptive_max_pool2d(x, _adaptive_bounds(spec.H, spec.H_out),
                                      _adaptive_bounds(spec.W, spec.W_out), spec)
    return (y, indices) if return_indices else y


def adaptive_max_pool2d_backward(grad_y, x, indices, spec: AdaptivePoolSpec):
    """grad_x of :func:`adaptive_max_pool2d`: grad_y (N, C, H_out, W_out) -> (N, C, H, W).

    Max pooling's scatter-add from indices (:func:`_max_pool2d_backward_indices`, which reads
    only ``spec.H, spec.W``), after the forward scan when ``indices`` is None.
    """
    if indices is None:
        indices = adaptive_max_pool2d(x, spec, return_indices=True)[1]
    return _max_pool2d_backward_indices(grad_y, indices, spec)
