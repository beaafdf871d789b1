"""The ``numpy`` backend: the naive kernels rewritten as whole-array NumPy.

Same functions, same arguments, same results as :mod:`kernels.naive` (read that first). What
changes, and why:

1. One strided window view, shared by conv, pooling and ``corr2d`` (as JAX's
   ``lax_reference``): :func:`_window_view` pads ``x`` and returns the read-only view
   ``(N, C, H_out, W_out, kH, kW)`` of every window, stride and dilation included, without
   copying. Naive's loops over ``h_out, w_out, i, j`` become indexing into this view.
2. conv2d is im2col + matmul: the view is copied once into a column matrix
   ``(C_in*kH*kW, N*H_out*W_out)`` and the whole convolution is ONE matrix product per group,
   ``weight (C_out, C_in*kH*kW) @ columns``, run by BLAS (float32 stays float32: sgemm).
   The batch is folded into the columns (channels first), so the forward product and the
   grad_weight product are each a single large GEMM; a per-sample layout
   ``(N, C_in*kH*kW, H_out*W_out)`` gives 32 small GEMMs and measured ~2x slower for
   grad_weight. The price is two transposes of ``y``/``grad_y``, which are kH*kW times
   smaller than the columns. Groups are the leading axis of a batched ``np.matmul``, so
   there is no Python loop over groups.
3. A 1x1 conv needs no im2col: its columns are the (stride-subsampled) input pixels
   themselves, ``x[:, :, ::sh, ::sw]`` reshaped, and the conv is one matmul (d2l's "1x1
   convolution is a fully connected layer applied at every pixel").
4. conv2d_backward is two more matmuls and a col2im: ``grad_weight = grad_y @ columns^T``,
   ``grad_columns = weight^T @ grad_y``, and col2im ("the backward of im2col") scatter-adds
   ``grad_columns`` back onto the input with a Python loop over the kH*kW kernel taps only,
   each tap adding one strided slice (overlapping windows accumulate).
5. Memory is bounded: the column matrix is kH*kW times the input, so the batch is processed
   in chunks whose columns fit in :data:`COLUMN_BYTES_LIMIT`. That chunk loop is the only
   loop over the batch.
6. Pooling loops over kernel taps only (at most kH*kW iterations), each iteration working on
   all ``N*C*H_out*W_out`` windows at once; max pooling keeps PyTorch's running
   ``(val > maxval) or isnan(val)`` update, so ties and NaNs resolve exactly as in naive.
7. Adaptive average pooling sums each window's columns, then its rows, through small gather
   tables (not pooling matrices, whose ``0 * inf = NaN`` would spread one inf everywhere).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .common import (
    ConvGrads,
    adaptive_bounds,
    avg_pool_divisor,
    conv_output_size,
    pool_output_size,
)

COLUMN_BYTES_LIMIT = 256 * 2**20
"""The most bytes one column matrix (one batch chunk's im2col) may take."""


# --------------------------------------------------------------------------- the window view


def _padded_size(size, padding, out_size, kernel, stride, dilation):
    """``(Hp, Wp)`` of the padded input: enough rows/columns for ``out_size`` windows.

    Top/left get ``padding``; bottom/right get as many cells as the last window needs, which
    is ``padding`` or less in a conv and may be more in a ceil-mode pooling (a last, partial
    window reaching past the padding). Never less than ``padding + size``.
    """
    return tuple(
        max(padding[a] + size[a], (out_size[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1)
        for a in (0, 1)
    )


def _pad(x, padding, out_size, kernel, stride, dilation, fill):
    """Pad ``x`` to :func:`_padded_size`; the padded cells hold ``fill``.

    x : (N, C, H, W) -> (N, C, Hp, Wp), ``x`` itself when no padding is needed.
    """
    (ph, pw), (H, W) = padding, x.shape[2:]
    Hp, Wp = _padded_size((H, W), padding, out_size, kernel, stride, dilation)
    bottom, right = Hp - ph - H, Wp - pw - W
    if (ph, pw, bottom, right) == (0, 0, 0, 0):
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, bottom), (pw, right)), constant_values=fill)


def _window_view(x_padded, kernel, stride, dilation, out_size):
    """Every window of an already padded input, as a read-only view (no copy).

    x_padded : (N, C, Hp, Wp) -> windows : (N, C, H_out, W_out, kH, kW), with
    ``windows[n, c, oh, ow, i, j] = x_padded[n, c, oh*sh + i*dh, ow*sw + j*dw]``.
    """
    (kH, kW), (sh, sw), (dh, dw) = kernel, stride, dilation
    span = (dh * (kH - 1) + 1, dw * (kW - 1) + 1)  # the dilated kernel's extent
    # every window start, dilated extent: (N, C, Hp - span_h + 1, Wp - span_w + 1, *span)
    windows = sliding_window_view(x_padded, span, axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw, ::dh, ::dw]  # (N, C, >=H_out, >=W_out, kH, kW)
    return windows[:, :, : out_size[0], : out_size[1]]  # (N, C, H_out, W_out, kH, kW)


def _tap_slices(tap, stride, dilation, out_size):
    """The strided slice of the padded input that kernel tap ``(i, j)`` reads, for all windows.

    ``x_padded[:, :, rows, cols]`` is ``(N, C, H_out, W_out)`` and equals
    ``windows[:, :, :, :, i, j]``; writing through it is how col2im scatters back.
    """
    (i, j), (sh, sw), (dh, dw), (H_out, W_out) = tap, stride, dilation, out_size
    rows = slice(i * dh, i * dh + (H_out - 1) * sh + 1, sh)
    cols = slice(j * dw, j * dw + (W_out - 1) * sw + 1, sw)
    return rows, cols


def corr2d(X, K):
    """Single-channel 2-D cross-correlation, as d2l's ``corr2d``, via the window view.

    X : (H, W), K : (kh, kw) -> Y : (H - kh + 1, W - kw + 1),
    ``Y[h, w] = sum_ij X[h + i, w + j] * K[i, j]``.
    """
    out_size = (X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1)
    windows = _window_view(X[None, None], K.shape, (1, 1), (1, 1), out_size)  # (1,1,Ho,Wo,kh,kw)
    windows = windows[0, 0]  # (Ho, Wo, kh, kw)
    return np.einsum("hwij,ij->hw", windows, K)  # (Ho, Wo)


# --------------------------------------------------------------------------- convolution


def _conv_out_size(x, weight, stride, padding, dilation):
    (_, _, H, W), (_, _, kH, kW) = x.shape, weight.shape
    return (
        conv_output_size(H, kH, stride[0], padding[0], dilation[0]),
        conv_output_size(W, kW, stride[1], padding[1], dilation[1]),
    )


def _batch_chunks(N, sample_bytes):
    """``[(n_start, n_end), ...]`` covering ``range(N)``, each chunk's columns within the limit.

    A single sample whose columns exceed :data:`COLUMN_BYTES_LIMIT` still goes alone (one
    sample is the smallest chunk).
    """
    step = max(1, COLUMN_BYTES_LIMIT // max(sample_bytes, 1))
    return [(n_start, min(n_start + step, N)) for n_start in range(0, N, step)]


def _to_group_matrix(a, groups):
    """(n, C, h, w) -> (groups, C // groups, n*h*w): channels first, batch and pixels as columns."""
    n, C, h, w = a.shape
    a = a.transpose(1, 0, 2, 3)  # (C, n, h, w)
    return a.reshape(groups, C // groups, n * h * w)  # (G, C/G, n*h*w), a copy


def _from_group_matrix(m, n, out_size):
    """(groups, C // groups, n*h*w) -> (n, C, h, w), a view; the inverse of _to_group_matrix."""
    G, C_g, _ = m.shape
    m = m.reshape(G * C_g, n, *out_size)  # (C, n, h, w)
    return m.transpose(1, 0, 2, 3)  # (n, C, h, w)


def _im2col(x, kernel, stride, padding, dilation, groups, out_size):
    """The column matrix of a conv: one column per output pixel, per group.

    x : (n, C_in, H, W) -> columns : (G, C_in/G * kH * kW, n * H_out * W_out), with
    ``columns[g, (c, i, j), (b, oh, ow)] = x_padded[b, g*C_in/G + c, oh*sh + i*dh, ow*sw + j*dw]``.
    """
    n, C_in = x.shape[:2]
    (kH, kW), (H_out, W_out) = kernel, out_size
    x_padded = _pad(x, padding, out_size, kernel, stride, dilation, 0.0)
    windows = _window_view(x_padded, kernel, stride, dilation, out_size)  # (n, C, Ho, Wo, kH, kW)
    windows = windows.transpose(1, 4, 5, 0, 2, 3)  # (C, kH, kW, n, Ho, Wo)
    return windows.reshape(groups, C_in // groups * kH * kW, n * H_out * W_out)  # the copy


def _columns_1x1(x, stride, padding, groups, out_size):
    """The column matrix of a 1x1 conv: the subsampled input pixels, no im2col.

    x : (n, C_in, H, W) -> columns : (G, C_in/G, n * H_out * W_out)
    """
    x_padded = _pad(x, padding, out_size, (1, 1), stride, (1, 1), 0.0)
    rows, cols = _tap_slices((0, 0), stride, (1, 1), out_size)
    return _to_group_matrix(x_padded[:, :, rows, cols], groups)  # (G, C/G, n*Ho*Wo)


def _columns(x, kernel, stride, padding, dilation, groups, out_size):
    if kernel == (1, 1):
        return _columns_1x1(x, stride, padding, groups, out_size)
    return _im2col(x, kernel, stride, padding, dilation, groups, out_size)


def _col2im(grad_columns, x_shape, kernel, stride, padding, dilation, out_size):
    """The backward of im2col: add every column entry back to the input cell it was copied from.

    grad_columns : (G, C_in/G * kH * kW, n * H_out * W_out) -> grad_x : (n, C_in, H, W)

    Loops over the kH*kW kernel taps; tap ``(i, j)`` adds an ``(C, n, H_out, W_out)`` block to
    one strided slice of the padded gradient. Windows overlap when stride < kernel, so the
    taps must *add*, not assign. A 1x1 kernel has one tap: a strided assignment.
    """
    n, C_in, H, W = x_shape
    (kH, kW), (ph, pw) = kernel, padding
    grad_columns = grad_columns.reshape(C_in, kH, kW, n, *out_size)  # (C, kH, kW, n, Ho, Wo)
    Hp, Wp = _padded_size((H, W), padding, out_size, kernel, stride, dilation)
    grad_padded = np.zeros((C_in, n, Hp, Wp), grad_columns.dtype)  # (C, n, Hp, Wp), channels first
    for i in range(kH):
        for j in range(kW):
            rows, cols = _tap_slices((i, j), stride, dilation, out_size)
            grad_padded[:, :, rows, cols] += grad_columns[:, i, j]  # (C, n, Ho, Wo)
    grad_x = grad_padded[:, :, ph : ph + H, pw : pw + W]  # (C, n, H, W), padding dropped
    return grad_x.transpose(1, 0, 2, 3)  # (n, C, H, W), a view


def conv2d(x, weight, bias, stride, padding, dilation, groups):
    """2-D convolution (cross-correlation) as im2col + one matmul per group.

    Parameters
    ----------
    x : (N, C_in, H, W)
    weight : (C_out, C_in // groups, kH, kW)
    bias : (C_out,) or None
    stride, padding, dilation : (h, w) pairs
    groups : int

    Returns
    -------
    y : (N, C_out, H_out, W_out), ``H_out = 1 + (H + 2*ph - dh*(kH - 1) - 1) // sh``.

    In the shape comments ``G = groups`` and ``K = C_in // groups * kH * kW``, the length of
    one column (one window of one group, flattened).
    """
    N, C_in = x.shape[:2]
    C_out, C_in_g, kH, kW = weight.shape
    out_size = _conv_out_size(x, weight, stride, padding, dilation)
    weight_matrix = weight.reshape(groups, C_out // groups, C_in_g * kH * kW)  # (G, Co/G, K)
    y = np.empty((N, C_out, *out_size), x.dtype)
    sample_bytes = C_in * kH * kW * out_size[0] * out_size[1] * x.itemsize
    for n_start, n_end in _batch_chunks(N, sample_bytes):
        columns = _columns(x[n_start:n_end], (kH, kW), stride, padding, dilation, groups,
                           out_size)  # (G, K, n*Ho*Wo)
        y_matrix = weight_matrix @ columns  # (G, Co/G, n*Ho*Wo): one GEMM per group
        y[n_start:n_end] = _from_group_matrix(y_matrix, n_end - n_start, out_size)  # (n, Co, ..)
    if bias is not None:
        y += bias.reshape(C_out, 1, 1)  # (C_out, 1, 1) broadcasts over N, H_out, W_out
    return y


def conv2d_backward(grad_y, x, weight, stride, padding, dilation, groups):
    """Gradients of :func:`conv2d`: two matmuls against the same columns, then col2im.

    Parameters
    ----------
    grad_y : (N, C_out, H_out, W_out)
    x : (N, C_in, H, W)
    weight : (C_out, C_in // groups, kH, kW)
    stride, padding, dilation : (h, w) pairs
    groups : int

    Returns
    -------
    ConvGrads
        ``grad_x (N, C_in, H, W)``: ``col2im(weight^T @ grad_y)``;
        ``grad_weight (C_out, C_in // groups, kH, kW)``: ``grad_y @ columns^T`` summed over
        the batch chunks; ``grad_bias (C_out,)``: ``grad_y.sum((0, 2, 3))``.
        Shape comments as in :func:`conv2d` (``K = C_in // groups * kH * kW``).
    """
    N, C_in = x.shape[:2]
    C_out, C_in_g, kH, kW = weight.shape
    out_size = grad_y.shape[2:]
    weight_matrix = weight.reshape(groups, C_out // groups, C_in_g * kH * kW)  # (G, Co/G, K)
    weight_matrix_t = weight_matrix.transpose(0, 2, 1)  # (G, K, Co/G), a view
    grad_x = np.empty_like(x)
    grad_weight = np.zeros_like(weight_matrix)  # (G, Co/G, K)
    sample_bytes = C_in * kH * kW * out_size[0] * out_size[1] * x.itemsize
    for n_start, n_end in _batch_chunks(N, sample_bytes):
        x_chunk = x[n_start:n_end]
        columns = _columns(x_chunk, (kH, kW), stride, padding, dilation, groups,
                           out_size)  # (G, K, n*Ho*Wo)
        grad_y_matrix = _to_group_matrix(grad_y[n_start:n_end], groups)  # (G, Co/G, n*Ho*Wo)
        # grad_weight = grad_y @ columns^T, a product over the long axis n*Ho*Wo. It is
        # the same numbers either way round, but OpenBLAS (2 threads) ran it 2-5x slower,
        # in the worst cases stalling, when the left matrix had fewer rows than the right,
        # so the taller matrix goes on the left.
        if columns.shape[1] >= grad_y_matrix.shape[1]:
            grad_weight_t = columns @ grad_y_matrix.transpose(0, 2, 1)  # (G, K, Co/G)
            grad_weight += grad_weight_t.transpose(0, 2, 1)  # (G, Co/G, K)
        else:
            grad_weight += grad_y_matrix @ columns.transpose(0, 2, 1)  # (G, Co/G, K)
        grad_columns = weight_matrix_t @ grad_y_matrix  # (G, K, n*Ho*Wo)
        grad_x[n_start:n_end] = _col2im(grad_columns, x_chunk.shape, (kH, kW), stride, padding,
                                        dilation, out_size)  # (n, C_in, H, W)
    grad_weight = grad_weight.reshape(weight.shape)  # (C_out, C_in // groups, kH, kW)
    grad_bias = grad_y.sum((0, 2, 3))  # (C_out,)
    return ConvGrads(grad_x, grad_weight, grad_bias)


# --------------------------------------------------------------------------- pooling


def _pool_out_size(x, kernel, stride, padding, dilation, ceil_mode):
    H, W = x.shape[2:]
    return (
        pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode),
        pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode),
    )


def _first_inside_tap(size, kernel, stride, padding, dilation, out_size):
    """Per output cell, the row-major index of the first window tap that lies inside the input.

    Returns ``(H_out, W_out)`` ints in ``[0, kH*kW)``: PyTorch's starting argmax, which
    stays when every value in the window is ``-inf``.

    With dilation a window can lie wholly in the padding (``W=1, kW=2, dW=2, pW=1``: taps at
    -1 and 1). Such a window gets tap 0, in the padding: forward gives ``-inf`` and backward
    drops its gradient. PyTorch there returns an index outside the window (into the next row,
    or past the array, a heap overrun in its backward), so there is nothing to match.
    """
    firsts = []
    for axis in (0, 1):
        starts = np.arange(out_size[axis]) * stride[axis] - padding[axis]  # (out,)
        positions = starts[:, None] + np.arange(kernel[axis]) * dilation[axis]  # (out, k)
        inside = (positions >= 0) & (positions < size[axis])  # (out, k)
        firsts.append(inside.argmax(axis=1))  # (out,): the first True, 0 if none
    first_row, first_col = firsts
    return first_row[:, None] * kernel[1] + first_col[None, :]  # (H_out, W_out)


def _max_pool_argmax(x, kernel, stride, padding, dilation, ceil_mode):
    """Max pooling and, per window, which tap holds the maximum (PyTorch's rule).

    x : (N, C, H, W) -> ``(y, argmax_tap)``, both ``(N, C, H_out, W_out)``; ``argmax_tap``
    is the row-major tap index ``i*kW + j`` in the window.

    PyTorch scans each window row-major from ``maxval = -inf``, ``index = first in-bounds
    tap``, and takes a tap when ``val > maxval or isnan(val)``: ties keep the FIRST maximum,
    the LAST NaN wins, and NaN propagates. The loop below runs that scan for all windows at
    once, one tap per iteration. Padding is ``-inf``, which never passes ``>``, so padded taps
    are never taken.
    """
    out_size = _pool_out_size(x, kernel, stride, padding, dilation, ceil_mode)
    x_padded = _pad(x, padding, out_size, kernel, stride, dilation, -np.inf)
    windows = _window_view(x_padded, kernel, stride, dilation, out_size)  # (N, C, Ho, Wo, kH, kW)
    maxval = np.full(x.shape[:2] + out_size, -np.inf, x.dtype)  # (N, C, Ho, Wo)
    argmax_tap = np.empty(maxval.shape, np.intp)  # (N, C, Ho, Wo)
    argmax_tap[...] = _first_inside_tap(x.shape[2:], kernel, stride, padding, dilation, out_size)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            val = windows[:, :, :, :, i, j]  # (N, C, Ho, Wo)
            take = (val > maxval) | np.isnan(val)  # (N, C, Ho, Wo)
            np.copyto(maxval, val, where=take)
            np.copyto(argmax_tap, i * kernel[1] + j, where=take)
    return maxval, argmax_tap


def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=False):
    """2-D max pooling: the running-max scan of naive, over all windows at once.

    x : (N, C, H, W) -> y : (N, C, H_out, W_out), output size by
    :func:`kernels.common.pool_output_size` (PyTorch's ceil_mode rule). With
    ``return_indices``, also the int64 flat ``h*W + w`` of each maximum (``-1`` for a window
    with nothing inside the input), computed from the winning tap's position.
    """
    y, argmax_tap = _max_pool_argmax(x, kernel_size, stride, padding, dilation, ceil_mode)
    if not return_indices:
        return y
    kW, (sh, sw), (ph, pw), (dh, dw) = kernel_size[1], stride, padding, dilation
    (H, W), (H_out, W_out) = x.shape[2:], y.shape[2:]
    i, j = np.divmod(argmax_tap, kW)  # (N, C, Ho, Wo): the winning tap's row and column
    h = (np.arange(H_out) * sh - ph)[:, None] + i * dh  # (N, C, Ho, Wo) input row
    w = (np.arange(W_out) * sw - pw)[None, :] + j * dw  # (N, C, Ho, Wo) input column
    inside = (h >= 0) & (h < H) & (w >= 0) & (w < W)  # False only for an empty window
    return y, np.where(inside, h * W + w, -1).astype(np.int64)


def _max_pool_backward_indices(grad_y, indices, x_shape, dtype):
    """The scatter-add of max pooling's backward, given the forward's flat indices.

    grad_y, indices : (N, C, Ho, Wo) -> grad_x : ``x_shape`` (N, C, H, W). ``np.bincount``
    sums the gradients landing on each input cell (overlapping windows may share a maximum);
    no Python loop. Indices ``-1`` (windows with nothing inside the input) are dropped.
    """
    N, C, H, W = x_shape
    plane = (np.arange(N * C) * (H * W)).reshape(N, C, 1, 1)  # (N, C, 1, 1) plane offsets
    keep = indices >= 0  # (N, C, Ho, Wo)
    sums = np.bincount((plane + indices)[keep], weights=grad_y[keep], minlength=N * C * H * W)
    return sums.astype(dtype).reshape(x_shape)  # (N, C, H, W)


def max_pool2d_backward(grad_y, x, kernel_size, stride, padding, dilation, ceil_mode,
                        indices=None):
    """grad_x of max pooling: each ``grad_y`` cell goes to its window's argmax.

    grad_y : (N, C, H_out, W_out), x : (N, C, H, W) -> grad_x : (N, C, H, W)

    Given the forward's ``indices``, one scatter-add (:func:`_max_pool_backward_indices`).
    Without them the argmax is recomputed from ``x`` (same rule as the forward), and one
    iteration per kernel tap adds the ``grad_y`` of the windows whose argmax is that tap to
    that tap's strided slice; overlapping windows that share an argmax accumulate.
    """
    if indices is not None:
        return _max_pool_backward_indices(grad_y, indices, x.shape, x.dtype)
    _, argmax_tap = _max_pool_argmax(x, kernel_size, stride, padding, dilation, ceil_mode)
    (ph, pw), (H, W), out_size = padding, x.shape[2:], grad_y.shape[2:]
    Hp, Wp = _padded_size((H, W), padding, out_size, kernel_size, stride, dilation)
    grad_padded = np.zeros(x.shape[:2] + (Hp, Wp), x.dtype)  # (N, C, Hp, Wp)
    zero = np.zeros((), grad_y.dtype)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            rows, cols = _tap_slices((i, j), stride, dilation, out_size)
            is_tap = argmax_tap == i * kernel_size[1] + j  # (N, C, Ho, Wo)
            grad_padded[:, :, rows, cols] += np.where(is_tap, grad_y, zero)  # (N, C, Ho, Wo)
    return grad_padded[:, :, ph : ph + H, pw : pw + W].copy()  # (N, C, H, W); padding never wins


def _avg_pool_divisors(x, kernel, stride, padding, out_size, count_include_pad, divisor_override):
    """(H_out, W_out) array of the number each window's sum is divided by, in ``x``'s dtype.

    Each entry is :func:`kernels.common.avg_pool_divisor` of that window (PyTorch's rule).
    """
    H_out, W_out = out_size
    divisors = np.empty(out_size, x.dtype)  # (H_out, W_out)
    for h_out in range(H_out):
        for w_out in range(W_out):
            h_start = h_out * stride[0] - padding[0]
            w_start = w_out * stride[1] - padding[1]
            divisors[h_out, w_out] = avg_pool_divisor(
                h_start, w_start, kernel, x.shape[2:], padding, count_include_pad,
                divisor_override,
            )
    return divisors


def avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """2-D average pooling: window sums from the view, divided by PyTorch's divisor.

    x : (N, C, H, W) -> y : (N, C, H_out, W_out). Padding is zero, so it adds nothing to the
    sums; only the divisor (count_include_pad, ceil mode, divisor_override) depends on it.
    """
    dilation = (1, 1)
    out_size = _pool_out_size(x, kernel_size, stride, padding, dilation, ceil_mode)
    x_padded = _pad(x, padding, out_size, kernel_size, stride, dilation, 0.0)
    windows = _window_view(x_padded, kernel_size, stride, dilation, out_size)  # (N,C,Ho,Wo,kH,kW)
    sums = windows.sum(axis=(4, 5))  # (N, C, Ho, Wo)
    divisors = _avg_pool_divisors(x, kernel_size, stride, padding, out_size, count_include_pad,
                                  divisor_override)  # (Ho, Wo)
    return sums / divisors


def avg_pool2d_backward(grad_y, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    """grad_x of average pooling: every cell of a window gets ``grad_y / divisor``.

    grad_y : (N, C, H_out, W_out), x : (N, C, H, W) -> grad_x : (N, C, H, W)

    One iteration per kernel tap adds the scaled gradient to that tap's strided slice
    (windows overlap when stride < kernel); the padding's share is dropped at the end.
    """
    dilation, (ph, pw), (H, W), out_size = (1, 1), padding, x.shape[2:], grad_y.shape[2:]
    divisors = _avg_pool_divisors(x, kernel_size, stride, padding, out_size, count_include_pad,
                                  divisor_override)  # (Ho, Wo)
    grad_window = grad_y / divisors  # (N, C, Ho, Wo)
    Hp, Wp = _padded_size((H, W), padding, out_size, kernel_size, stride, dilation)
    grad_padded = np.zeros(x.shape[:2] + (Hp, Wp), x.dtype)  # (N, C, Hp, Wp)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            rows, cols = _tap_slices((i, j), stride, dilation, out_size)
            grad_padded[:, :, rows, cols] += grad_window  # (N, C, Ho, Wo)
    return grad_padded[:, :, ph : ph + H, pw : pw + W].copy()  # (N, C, H, W)


def _adaptive_members(in_size, out_size):
    """Which input indices each adaptive window holds, as a padded gather table.

    Returns ``index : (out_size, k)`` and ``valid : (out_size, k)``: row ``o`` lists the input
    range :func:`kernels.common.adaptive_bounds` gives window ``o``, padded to the longest
    window ``k`` with index 0 and ``valid=False``. ``k`` is at most ``ceil(in/out) + 1``, so a
    gather through the table costs a few times the array, not ``in * out``.
    """
    bounds = [adaptive_bounds(o, in_size, out_size) for o in range(out_size)]
    k = max(end - start for start, end in bounds)
    offsets = np.arange(k)  # (k,)
    starts = np.array([start for start, _ in bounds])[:, None]  # (out, 1)
    counts = np.array([end - start for start, end in bounds])[:, None]  # (out, 1)
    valid = offsets < counts  # (out, k)
    return np.where(valid, starts + offsets, 0), valid


def _windows_containing(in_size, out_size):
    """The transpose of :func:`_adaptive_members`: which windows hold each input index.

    Returns ``index : (in_size, m)`` and ``valid : (in_size, m)``; ``m`` is at most
    ``ceil(out/in) + 1`` (neighbouring windows overlap by at most one element).
    """
    member_index, member_valid = _adaptive_members(in_size, out_size)
    holders = [[] for _ in range(in_size)]
    for o, (row, ok) in enumerate(zip(member_index, member_valid, strict=True)):
        for i in row[ok]:
            holders[i].append(o)
    m = max(len(h) for h in holders)
    index = np.zeros((in_size, m), np.intp)
    valid = np.zeros((in_size, m), bool)
    for i, h in enumerate(holders):
        index[i, : len(h)], valid[i, : len(h)] = h, True
    return index, valid


def _gather_sum(a, axis, index, valid):
    """Sum ``a`` along ``axis`` over the groups a gather table names.

    a : (..., in, ...), index/valid : (out, k) -> (..., out, ...): element ``o`` is the sum of
    ``a[..., index[o, j], ...]`` over the ``j`` with ``valid[o, j]``. One whole-array step per
    column ``j`` of the table (at most ``k``, like pooling's loop over kernel taps); padding
    entries are *replaced* by zero with ``np.where``, never multiplied by zero, so a NaN or inf
    reaches only the windows that contain it (a pooling matrix would give ``0 * inf = NaN``
    everywhere).
    """
    shape = (-1,) + (1,) * (a.ndim - 1 - axis)  # broadcasts (out,) along ``axis``
    total = None
    for j in range(index.shape[1]):
        part = np.take(a, index[:, j], axis=axis)  # (..., out, ...)
        if not valid[:, j].all():
            part = np.where(valid[:, j].reshape(shape), part, 0)
        total = part if total is None else total + part
    return total


def _window_areas(row_ok, col_ok, dtype):
    """(oh, ow) cell counts of the adaptive windows, from their gather tables' masks."""
    return (row_ok.sum(1)[:, None] * col_ok.sum(1)[None, :]).astype(dtype)  # (oh, ow)


def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling: sums over row ranges, then over column ranges, / counts.

    x : (N, C, H, W) -> y : (N, C, oh, ow). A window is a rectangle
    (:func:`kernels.common.adaptive_bounds` along each axis), so its sum is the sum over its
    columns of the sums over its rows: two gathers through :func:`_adaptive_members` tables,
    then a division by the window's area, as PyTorch's ``sum / count``.
    """
    (oh, ow), (H, W) = output_size, x.shape[2:]
    rows, row_ok = _adaptive_members(H, oh)  # (oh, kh)
    cols, col_ok = _adaptive_members(W, ow)  # (ow, kw)
    sums = _gather_sum(x, 2, rows, row_ok)  # (N, C, oh, W): whole rows, contiguous copies
    sums = _gather_sum(sums, 3, cols, col_ok)  # (N, C, oh, ow)
    return sums / _window_areas(row_ok, col_ok, x.dtype)


def adaptive_avg_pool2d_backward(grad_y, x, output_size):
    """grad_x of adaptive average pooling: each input gets ``grad_y / area`` of every window
    that holds it, gathered through :func:`_windows_containing` tables (no scatter needed).

    grad_y : (N, C, oh, ow), x : (N, C, H, W) -> grad_x : (N, C, H, W)
    """
    (oh, ow), (H, W) = output_size, x.shape[2:]
    row_ok, col_ok = _adaptive_members(H, oh)[1], _adaptive_members(W, ow)[1]
    grad_window = grad_y / _window_areas(row_ok, col_ok, x.dtype)  # (N, C, oh, ow)
    grad = _gather_sum(grad_window, 3, *_windows_containing(W, ow))  # (N, C, oh, W)
    return _gather_sum(grad, 2, *_windows_containing(H, oh))  # (N, C, H, W)
