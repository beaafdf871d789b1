"""Pooling on the CPU with Numba: max, average and adaptive average, forward and backward.

Each op computes what its namesake in :mod:`kernels.naive` computes (``max_pool2d``,
``max_pool2d_backward``, ``avg_pool2d``, ``avg_pool2d_backward``, ``adaptive_avg_pool2d``,
``adaptive_avg_pool2d_backward``): one ``prange`` over the ``N*C`` planes, each plane pooled
tap by tap so that every window still sees its taps in PyTorch's row-major order (package
header, item 5). Output sizes, divisors and adaptive bounds come from :mod:`kernels.common`,
as in naive.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.common import adaptive_bounds, avg_pool_divisor, pool_output_size

from ._loops import _valid_range

# --------------------------------------------------------------------------- max pooling


@njit(cache=True)
def _max_pool_plane(plane, kh, kw, sh, sw, ph, pw, dh, dw, vals, index):
    """Max-pool one plane: (H, W) -> ``vals``, ``index`` : (Ho, Wo), written in place.

    PyTorch's scan: per window, taps in row-major order, keep the tap if it is the window's
    first in-bounds tap, or ``val > max`` or ``isnan(val)``. So ties keep the first maximum,
    the last NaN wins, and out-of-bounds taps (padding, ceil-mode overhang) act as -inf.
    ``index`` is the flat ``h*W + w`` of the kept tap (what backward needs), ``-1`` for a
    window with no tap inside the input (possible with dilation), whose value is ``-inf``.

    Loop order: tap row ``i``, output row, tap column ``j``, output column: each output still
    sees its taps in row-major order, while the inner loop runs along an output row.
    """
    H, W = plane.shape
    Ho, Wo = vals.shape
    vals[:, :] = -np.inf
    index[:, :] = -1
    for i in range(kh):
        oh_lo, oh_hi = _valid_range(Ho, H, i * dh - ph, sh)
        for oh in range(oh_lo, oh_hi):
            h = oh * sh + i * dh - ph
            for j in range(kw):
                ow_lo, ow_hi = _valid_range(Wo, W, j * dw - pw, sw)
                for ow in range(ow_lo, ow_hi):
                    w = ow * sw + j * dw - pw
                    v = plane[h, w]
                    if index[oh, ow] < 0 or v > vals[oh, ow] or np.isnan(v):
                        vals[oh, ow] = v
                        index[oh, ow] = h * W + w


@njit(parallel=True, cache=True)
def _max_pool2d(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Max pooling, parallel over the ``N*C`` planes: (N, C, H, W) -> y, indices (N, C, Ho, Wo).

    ``indices`` (int64) holds each window's flat ``h*W + w`` argmax, as PyTorch's
    ``return_indices=True``; writing it costs little next to the scan.
    """
    N, C, H, W = x.shape
    y = np.empty((N, C, Ho, Wo), x.dtype)
    indices = np.empty((N, C, Ho, Wo), np.int64)
    for item in prange(N * C):
        n, c = item // C, item % C
        _max_pool_plane(x[n, c], kh, kw, sh, sw, ph, pw, dh, dw, y[n, c], indices[n, c])
    return y, indices


@njit(parallel=True, cache=True)
def _max_pool2d_backward_indices(grad_y, indices, H, W):
    """grad_x of max pooling from the forward's indices: a scatter-add, parallel over planes.

    grad_y, indices : (N, C, Ho, Wo) -> grad_x : (N, C, H, W). ``grad_x[n, c].flat[k] +=
    grad_y`` for each window whose index is ``k`` (``-1``: a window with nothing inside the
    input, whose gradient is dropped). One thread owns a plane, so nothing races.
    """
    N, C, Ho, Wo = grad_y.shape
    grad_x = np.zeros((N, C, H, W), grad_y.dtype)
    for item in prange(N * C):
        n, c = item // C, item % C
        gx = grad_x[n, c].reshape(H * W)  # (H*W,)
        for oh in range(Ho):
            for ow in range(Wo):
                k = indices[n, c, oh, ow]
                if k >= 0:
                    gx[k] += grad_y[n, c, oh, ow]
    return grad_x


@njit(parallel=True, cache=True)
def _max_pool2d_backward(grad_y, x, kh, kw, sh, sw, ph, pw, dh, dw):
    """grad_x of max pooling: each output's gradient is added at its window's kept tap.

    grad_y : (N, C, Ho, Wo), x : (N, C, H, W) -> grad_x : (N, C, H, W). The argmax is
    recomputed from ``x`` (nothing is cached between forward and backward). Windows overlap
    when stride < kernel, hence ``+=``; one thread owns a plane, so nothing races.
    """
    N, C, H, W = x.shape
    _, _, Ho, Wo = grad_y.shape
    grad_x = np.zeros((N, C, H, W), x.dtype)
    for item in prange(N * C):
        n, c = item // C, item % C
        vals = np.empty((Ho, Wo), x.dtype)
        index = np.empty((Ho, Wo), np.int64)
        _max_pool_plane(x[n, c], kh, kw, sh, sw, ph, pw, dh, dw, vals, index)
        gx = grad_x[n, c].reshape(H * W)  # (H*W,)
        gy = grad_y[n, c]  # (Ho, Wo)
        for oh in range(Ho):
            for ow in range(Wo):
                if index[oh, ow] >= 0:  # -1: a window with nothing inside the input
                    gx[index[oh, ow]] += gy[oh, ow]
    return grad_x


def _pool_out(x, kernel_size, stride, padding, dilation, ceil_mode):
    H, W = x.shape[2:]
    return (pool_output_size(H, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode),
            pool_output_size(W, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode))


def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=False):
    """Max pooling (PyTorch's semantics): x (N, C, H, W) -> y (N, C, H_out, W_out).

    With ``return_indices``, also the int64 ``(N, C, H_out, W_out)`` flat argmax indices.
    """
    Ho, Wo = _pool_out(x, kernel_size, stride, padding, dilation, ceil_mode)
    y, indices = _max_pool2d(x, *kernel_size, *stride, *padding, *dilation, Ho, Wo)
    return (y, indices) if return_indices else y


def max_pool2d_backward(grad_y, x, kernel_size, stride, padding, dilation, ceil_mode,
                        indices=None):
    """grad_x of :func:`max_pool2d`: grad_y (N, C, H_out, W_out) -> (N, C, H, W).

    Given the forward's ``indices``, a scatter-add; without them the argmax is recomputed
    from ``x`` first (the price of a backward that needs nothing but ``x``).
    """
    if indices is not None:
        return _max_pool2d_backward_indices(grad_y, indices, *x.shape[2:])
    return _max_pool2d_backward(grad_y, x, *kernel_size, *stride, *padding, *dilation)


# --------------------------------------------------------------------------- average pooling


@njit(parallel=True, cache=True)
def _avg_pool2d(x, kh, kw, sh, sw, ph, pw, div_h, div_w, Ho, Wo):
    """Average pooling, parallel over planes: (N, C, H, W) -> (N, C, Ho, Wo).

    Each window sums its in-bounds taps (padding adds 0) in row-major order, as PyTorch, and
    divides by ``div_h[oh] * div_w[ow]``: PyTorch's divisor (``kernels.common.
    avg_pool_divisor``) is a product of one factor per axis, computed once per axis by the
    caller. Loop order as :func:`_max_pool_plane`.
    """
    N, C, H, W = x.shape
    y = np.empty((N, C, Ho, Wo), x.dtype)
    for item in prange(N * C):
        n, c = item // C, item % C
        plane, out = x[n, c], y[n, c]  # (H, W), (Ho, Wo)
        out[:, :] = 0
        for i in range(kh):
            oh_lo, oh_hi = _valid_range(Ho, H, i - ph, sh)
            for oh in range(oh_lo, oh_hi):
                h = oh * sh + i - ph
                for j in range(kw):
                    ow_lo, ow_hi = _valid_range(Wo, W, j - pw, sw)
                    for ow in range(ow_lo, ow_hi):
                        out[oh, ow] += plane[h, ow * sw + j - pw]
        for oh in range(Ho):
            for ow in range(Wo):
                out[oh, ow] /= div_h[oh] * div_w[ow]
    return y


@njit(parallel=True, cache=True)
def _avg_pool2d_backward(grad_y, kh, kw, sh, sw, ph, pw, div_h, div_w, H, W):
    """grad_x of average pooling, parallel over planes: (N, C, Ho, Wo) -> (N, C, H, W).

    Each output's gradient divided by its divisor is added to every in-bounds tap of its
    window (the transpose of the forward sum).
    """
    N, C, Ho, Wo = grad_y.shape
    grad_x = np.empty((N, C, H, W), grad_y.dtype)
    for item in prange(N * C):
        n, c = item // C, item % C
        gy, gx = grad_y[n, c], grad_x[n, c]  # (Ho, Wo), (H, W)
        gx[:, :] = 0
        scaled = np.empty((Ho, Wo), grad_y.dtype)
        for oh in range(Ho):
            for ow in range(Wo):
                scaled[oh, ow] = gy[oh, ow] / (div_h[oh] * div_w[ow])
        for i in range(kh):
            oh_lo, oh_hi = _valid_range(Ho, H, i - ph, sh)
            for oh in range(oh_lo, oh_hi):
                h = oh * sh + i - ph
                for j in range(kw):
                    ow_lo, ow_hi = _valid_range(Wo, W, j - pw, sw)
                    for ow in range(ow_lo, ow_hi):
                        gx[h, ow * sw + j - pw] += scaled[oh, ow]
    return grad_x


def _avg_divisors(x, kernel_size, stride, padding, count_include_pad, divisor_override, Ho, Wo):
    """PyTorch's divisor as one factor per axis: ``div_h (Ho,)``, ``div_w (Wo,)``, x's dtype.

    ``avg_pool_divisor`` is ``(h extent) * (w extent)``; asking it about a window of width 1
    on an input of width 1 gives the h factor alone (and the w factor likewise).
    """
    H, W = x.shape[2:]
    if divisor_override is not None:
        return (np.full(Ho, divisor_override, x.dtype), np.ones(Wo, x.dtype))
    div_h = [avg_pool_divisor(oh * stride[0] - padding[0], 0, (kernel_size[0], 1), (H, 1),
                              (padding[0], 0), count_include_pad, None) for oh in range(Ho)]
    div_w = [avg_pool_divisor(0, ow * stride[1] - padding[1], (1, kernel_size[1]), (1, W),
                              (0, padding[1]), count_include_pad, None) for ow in range(Wo)]
    return np.array(div_h, x.dtype), np.array(div_w, x.dtype)


def avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Average pooling (PyTorch's semantics): x (N, C, H, W) -> (N, C, H_out, W_out)."""
    Ho, Wo = _pool_out(x, kernel_size, stride, padding, (1, 1), ceil_mode)
    div_h, div_w = _avg_divisors(x, kernel_size, stride, padding, count_include_pad,
                                 divisor_override, Ho, Wo)
    return _avg_pool2d(x, *kernel_size, *stride, *padding, div_h, div_w, Ho, Wo)


def avg_pool2d_backward(grad_y, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    """grad_x of :func:`avg_pool2d`: grad_y (N, C, H_out, W_out) -> (N, C, H, W)."""
    Ho, Wo = grad_y.shape[2:]
    div_h, div_w = _avg_divisors(x, kernel_size, stride, padding, count_include_pad,
                                 divisor_override, Ho, Wo)
    return _avg_pool2d_backward(grad_y, *kernel_size, *stride, *padding, div_h, div_w,
                                *x.shape[2:])


# --------------------------------------------------------------------------- adaptive pooling


@njit(parallel=True, cache=True)
def _adaptive_avg_pool2d(x, h_bounds, w_bounds):
    """Adaptive average pooling, parallel over planes: (N, C, H, W) -> (N, C, oh, ow).

    ``h_bounds (oh, 2)``, ``w_bounds (ow, 2)``: each output cell's half-open input ranges
    (``kernels.common.adaptive_bounds``). Sum in row-major order, then ``sum / kh / kw`` as
    PyTorch writes it.
    """
    N, C, _, _ = x.shape
    Ho, Wo = h_bounds.shape[0], w_bounds.shape[0]
    y = np.empty((N, C, Ho, Wo), x.dtype)
    for item in prange(N * C):
        n, c = item // C, item % C
        plane = x[n, c]  # (H, W)
        for oh in range(Ho):
            h0, h1 = h_bounds[oh, 0], h_bounds[oh, 1]
            for ow in range(Wo):
                w0, w1 = w_bounds[ow, 0], w_bounds[ow, 1]
                acc = x.dtype.type(0)
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        acc += plane[h, w]
                y[n, c, oh, ow] = acc / x.dtype.type(h1 - h0) / x.dtype.type(w1 - w0)
    return y


@njit(parallel=True, cache=True)
def _adaptive_avg_pool2d_backward(grad_y, h_bounds, w_bounds, H, W):
    """grad_x of adaptive average pooling: (N, C, oh, ow) -> (N, C, H, W), parallel over planes.

    Each cell's ``grad / kh / kw`` is added to every input of its range; ranges of
    neighbouring cells may overlap by one row/column, hence ``+=``.
    """
    N, C, Ho, Wo = grad_y.shape
    grad_x = np.zeros((N, C, H, W), grad_y.dtype)
    for item in prange(N * C):
        n, c = item // C, item % C
        gx = grad_x[n, c]  # (H, W)
        for oh in range(Ho):
            h0, h1 = h_bounds[oh, 0], h_bounds[oh, 1]
            for ow in range(Wo):
                w0, w1 = w_bounds[ow, 0], w_bounds[ow, 1]
                delta = (grad_y[n, c, oh, ow] / grad_y.dtype.type(h1 - h0)
                         / grad_y.dtype.type(w1 - w0))
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        gx[h, w] += delta
    return grad_x


def _adaptive_bounds(size: int, out: int) -> np.ndarray:
    """(out, 2) int64: ``[start, end)`` of every output cell along one axis."""
    return np.array([adaptive_bounds(i, size, out) for i in range(out)], np.int64)


def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling: x (N, C, H, W) -> (N, C, *output_size)."""
    H, W = x.shape[2:]
    return _adaptive_avg_pool2d(x, _adaptive_bounds(H, output_size[0]),
                                _adaptive_bounds(W, output_size[1]))


def adaptive_avg_pool2d_backward(grad_y, x, output_size):
    """grad_x of :func:`adaptive_avg_pool2d`: grad_y (N, C, *output_size) -> (N, C, H, W)."""
    H, W = x.shape[2:]
    return _adaptive_avg_pool2d_backward(grad_y, _adaptive_bounds(H, output_size[0]),
                                         _adaptive_bounds(W, output_size[1]), H, W)
