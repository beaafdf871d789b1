"""The ``numpy`` backend: the naive kernels rewritten as whole-array NumPy.

Same functions, same arguments (the arrays and one spec of :mod:`kernels.common`), same
results as :mod:`kernels.naive` (read that first). What changes, and why:

1. One strided window view, shared by conv, pooling and ``corr2d`` (as JAX's
   ``lax_reference``): :func:`_window_view` takes ``x`` padded by :func:`_pad` and returns
   the read-only view ``(N, C, H_out, W_out, kH, kW)`` of every window, stride and dilation
   included, without copying. Naive's loops over ``h_out, w_out, i, j`` become indexing
   into this view.
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
8. Padding (``F.pad``) is separable: naive's per-cell "which input cell does this output
   cell read" becomes one index array per axis (:func:`_pad_sources`), the forward two
   ``np.take`` gathers, the backward two ``np.add.at`` scatter-adds (one per axis).
10. Max unpooling is one fancy-index assignment over the flat output planes; naive's "last
   write wins" on duplicate indices is made explicit (:func:`_last_writers`), since NumPy
   does not promise which of several writes to one cell an assignment keeps. Its backward
   is one gather. Adaptive max pooling scans the taps of the :func:`_adaptive_members`
   tables in row-major window order with max pooling's running update (item 6).
9. Transposed convolution reuses the conv machinery, no code of its own beyond the wiring:
   its forward is conv2d_backward's grad_x half (``weight^T @ x``, then col2im), its
   backward conv2d's forward (im2col of ``grad_y``, ``weight @ columns``) plus, from the
   same columns, conv2d's grad_weight product with ``x`` in ``grad_y``'s role.

Every size comes from the spec (``spec.H_out``, ``spec.H_pad``, ...): no helper here
recomputes one. The helpers take the spec too, so the same :func:`_pad`,
:func:`_window_view` and :func:`_tap_slices` serve a :class:`~kernels.common.ConvSpec` and a
:class:`~kernels.common.PoolSpec` (both name ``kH, kW, stride_h, stride_w, pad_h, pad_w,
dil_h, dil_w, H_out, W_out, H_pad, W_pad``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .common import (
    PAD_CONSTANT,
    PAD_REFLECT,
    PAD_REPLICATE,
    AdaptivePoolSpec,
    BatchNormOutput,
    BatchNormSpec,
    ConvGrads,
    ConvSpec,
    LinearGrads,
    PadSpec,
    PoolSpec,
    UnpoolSpec,
    adaptive_bounds,
    avg_pool_divisor,
)
from .naive import (
    GELU_PDF_ALPHA,
    GELU_TANH_BETA,
    GELU_TANH_KAPPA,
    _dropout_scale,
    dropout_mask,
)
from .winograd import NUMPY_CONV_ALGORITHM, numpy_tile
from .winograd import conv2d as _winograd_conv2d
from .winograd import conv2d_backward as _winograd_conv2d_backward

conv_algorithm = NUMPY_CONV_ALGORITHM.scope
"""``with kernels.vectorized.conv_algorithm("winograd"):`` ("auto", "gemm", "winograd"
(F(2x2, 3x3)), "winograd4" (F(4x4, 3x3))): :mod:`kernels.winograd`, for 3x3 stride-1 layers."""
get_conv_algorithm = NUMPY_CONV_ALGORITHM.get
set_conv_algorithm = NUMPY_CONV_ALGORITHM.set

COLUMN_BYTES_LIMIT = 256 * 2**20
"""The most bytes one column matrix (one batch chunk's im2col) may take."""


# --------------------------------------------------------------------------- the window view


def _pad(x, spec: ConvSpec | PoolSpec, fill):
    """Pad ``x`` to ``(spec.H_pad, spec.W_pad)``; the padded cells hold ``fill``.

    x : (n, C, H, W) -> (n, C, H_pad, W_pad), ``x`` itself when no padding is needed. Top and
    left get ``pad_h``, ``pad_w``; bottom and right the rest of ``H_pad``, ``W_pad``, which
    is ``pad_h`` in a conv and may be more in a ceil-mode pooling (a last, partial window
    reaching past the padding). ``spec`` is a ConvSpec or a PoolSpec.
    """
    top, left = spec.pad_h, spec.pad_w
    bottom, right = spec.H_pad - top - spec.H, spec.W_pad - left - spec.W
    if (top, left, bottom, right) == (0, 0, 0, 0):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)


def _window_view(x_padded, spec: ConvSpec | PoolSpec):
    """Every window of an already padded input, as a read-only view (no copy).

    x_padded : (n, C, H_pad, W_pad) -> windows : (n, C, H_out, W_out, kH, kW), with
    ``windows[b, c, oh, ow, i, j] = x_padded[b, c, oh*sh + i*dh, ow*sw + j*dw]``
    (``sh = spec.stride_h``, ``dh = spec.dil_h``, ...). ``spec`` is a ConvSpec or a PoolSpec.
    """
    sh, sw, dh, dw = spec.stride_h, spec.stride_w, spec.dil_h, spec.dil_w
    span = (dh * (spec.kH - 1) + 1, dw * (spec.kW - 1) + 1)  # the dilated kernel's extent
    # every window start, dilated extent: (n, C, H_pad - span_h + 1, W_pad - span_w + 1, *span)
    windows = sliding_window_view(x_padded, span, axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw, ::dh, ::dw]  # (n, C, >=H_out, >=W_out, kH, kW)
    return windows[:, :, : spec.H_out, : spec.W_out]  # (n, C, H_out, W_out, kH, kW)


def _tap_slices(i, j, spec: ConvSpec | PoolSpec):
    """The strided slice of the padded input that kernel tap ``(i, j)`` reads, for all windows.

    Returns ``(rows, cols)``: ``x_padded[:, :, rows, cols]`` is ``(n, C, H_out, W_out)`` and
    equals ``windows[:, :, :, :, i, j]``; writing through it is how col2im scatters back.
    """
    sh, sw, dh, dw = spec.stride_h, spec.stride_w, spec.dil_h, spec.dil_w
    rows = slice(i * dh, i * dh + (spec.H_out - 1) * sh + 1, sh)
    cols = slice(j * dw, j * dw + (spec.W_out - 1) * sw + 1, sw)
    return rows, cols


def corr2d(X, K):
    """Single-channel 2-D cross-correlation, as d2l's ``corr2d``, via the window view.

    X : (H, W), K : (kh, kw) -> Y : (H - kh + 1, W - kw + 1),
    ``Y[h, w] = sum_ij X[h + i, w + j] * K[i, j]``.
    """
    # a one-image, one-channel conv without padding, stride or dilation
    spec = ConvSpec.from_shapes((1, 1, *X.shape), (1, 1, *K.shape), stride=(1, 1),
                                padding=(0, 0), dilation=(1, 1), groups=1)
    windows = _window_view(X[None, None], spec)  # (1, 1, Ho, Wo, kh, kw)
    windows = windows[0, 0]  # (Ho, Wo, kh, kw)
    return np.einsum("hwij,ij->hw", windows, K)  # (Ho, Wo)


# --------------------------------------------------------------------------- convolution


def _batch_chunks(N, sample_bytes):
    """``[(n_start, n_end), ...]`` covering ``range(N)``, each chunk's columns within the limit.

    A single sample whose columns exceed :data:`COLUMN_BYTES_LIMIT` still goes alone (one
    sample is the smallest chunk).
    """
    step = max(1, COLUMN_BYTES_LIMIT // max(sample_bytes, 1))
    return [(n_start, min(n_start + step, N)) for n_start in range(0, N, step)]


def _sample_column_bytes(spec: ConvSpec, itemsize):
    """Bytes of one sample's columns: ``C_in*kH*kW`` rows by ``H_out*W_out`` columns."""
    return spec.C_in * spec.kH * spec.kW * spec.H_out * spec.W_out * itemsize


def _to_group_matrix(a, groups):
    """(n, C, h, w) -> (groups, C // groups, n*h*w): channels first, batch and pixels as columns."""
    n, C, h, w = a.shape
    a = a.transpose(1, 0, 2, 3)  # (C, n, h, w)
    a = a.reshape(groups, C // groups, n * h * w)  # (G, C/G, n*h*w), a copy or a view
    # reshape copies unless the strides happen to line up; then it returns a view, strided
    # for a subsampled input, which np.matmul would multiply without BLAS: copy that too
    return np.ascontiguousarray(a)  # (G, C/G, n*h*w), C order


def _from_group_matrix(m, n, spec: ConvSpec):
    """(groups, C // groups, n*H_out*W_out) -> (n, C, H_out, W_out), a view.

    The inverse of :func:`_to_group_matrix` for an output-sized matrix (``y``, ``grad_y``).
    """
    G, C_g, _ = m.shape
    m = m.reshape(G * C_g, n, spec.H_out, spec.W_out)  # (C, n, Ho, Wo)
    return m.transpose(1, 0, 2, 3)  # (n, C, Ho, Wo)


def _im2col(x, spec: ConvSpec):
    """The column matrix of a conv: one column per output pixel, per group.

    x : (n, C_in, H, W) -> columns : (G, C_in/G * kH * kW, n * H_out * W_out), with
    ``columns[g, (c, i, j), (b, oh, ow)] = x_padded[b, g*C_in/G + c, oh*sh + i*dh, ow*sw + j*dw]``
    (``G = spec.groups``, ``sh = spec.stride_h``, ``dh = spec.dil_h``, ...). ``n`` may be a
    chunk of the spec's batch.
    """
    n = x.shape[0]
    x_padded = _pad(x, spec, 0.0)  # (n, C_in, H_pad, W_pad)
    windows = _window_view(x_padded, spec)  # (n, C, Ho, Wo, kH, kW)
    windows = windows.transpose(1, 4, 5, 0, 2, 3)  # (C, kH, kW, n, Ho, Wo)
    columns = windows.reshape(spec.groups, spec.C_in // spec.groups * spec.kH * spec.kW,
                              n * spec.H_out * spec.W_out)  # (G, K, n*Ho*Wo), the copy
    # ... unless the strides happen to line up (one channel per group, say): then reshape
    # returns a strided view, which np.matmul would multiply without BLAS, so copy it
    return np.ascontiguousarray(columns)  # (G, K, n*Ho*Wo), C order; no-op after a copy


def _columns_1x1(x, spec: ConvSpec):
    """The column matrix of a 1x1 conv: the subsampled input pixels, no im2col.

    x : (n, C_in, H, W) -> columns : (G, C_in/G, n * H_out * W_out)
    """
    x_padded = _pad(x, spec, 0.0)  # (n, C_in, H_pad, W_pad)
    rows, cols = _tap_slices(0, 0, spec)
    return _to_group_matrix(x_padded[:, :, rows, cols], spec.groups)  # (G, C/G, n*Ho*Wo)


def _columns(x, spec: ConvSpec):
    """The column matrix of ``x`` (n, C_in, H, W): :func:`_columns_1x1` or :func:`_im2col`."""
    if spec.kH == 1 and spec.kW == 1:
        return _columns_1x1(x, spec)
    return _im2col(x, spec)


def _col2im(grad_columns, n, spec: ConvSpec):
    """The backward of im2col: add every column entry back to the input cell it was copied from.

    grad_columns : (G, C_in/G * kH * kW, n * H_out * W_out) -> grad_x : (n, C_in, H, W)

    Loops over the kH*kW kernel taps; tap ``(i, j)`` adds an ``(C, n, H_out, W_out)`` block to
    one strided slice of the padded gradient. Windows overlap when stride < kernel, so the
    taps must *add*, not assign. A 1x1 kernel has one tap: a strided assignment.
    """
    C_in, kH, kW, ph, pw = spec.C_in, spec.kH, spec.kW, spec.pad_h, spec.pad_w
    grad_columns = grad_columns.reshape(C_in, kH, kW, n, spec.H_out, spec.W_out)
    # grad_columns: (C, kH, kW, n, Ho, Wo)
    grad_padded = np.zeros((C_in, n, spec.H_pad, spec.W_pad),
                           grad_columns.dtype)  # (C, n, H_pad, W_pad), channels first
    for i in range(kH):
        for j in range(kW):
            rows, cols = _tap_slices(i, j, spec)
            grad_padded[:, :, rows, cols] += grad_columns[:, i, j]  # (C, n, Ho, Wo)
    grad_x = grad_padded[:, :, ph : ph + spec.H, pw : pw + spec.W]  # (C, n, H, W), no padding
    return grad_x.transpose(1, 0, 2, 3)  # (n, C, H, W), a view


def conv2d(x, weight, bias, spec: ConvSpec):
    """2-D convolution (cross-correlation) as im2col + one matmul per group.

    Parameters
    ----------
    x : (N, C_in, H, W)
    weight : (C_out, C_in // groups, kH, kW)
    bias : (C_out,) or None
    spec : ConvSpec
        The problem, as :func:`kernels.naive.conv2d` takes it.

    Returns
    -------
    y : (N, C_out, H_out, W_out)
        ``spec.y_shape``; ``H_out = 1 + (H + 2*pad_h - dil_h*(kH - 1) - 1) // stride_h``,
        held by the spec.

    In the shape comments ``G = groups`` and ``K = C_in // groups * kH * kW``, the length of
    one column (one window of one group, flattened).
    """
    m = numpy_tile(spec, x, weight)  # Winograd F(m x m, 3x3) when forced, else 0
    if m:
        return _winograd_conv2d(x, weight, bias, spec, m)
    G, C_out = spec.groups, spec.C_out
    weight_matrix = weight.reshape(G, C_out // G, -1)  # (G, Co/G, K)
    y = np.empty(spec.y_shape, x.dtype)  # (N, C_out, Ho, Wo)
    for n_start, n_end in _batch_chunks(spec.N, _sample_column_bytes(spec, x.itemsize)):
        columns = _columns(x[n_start:n_end], spec)  # (G, K, n*Ho*Wo)
        y_matrix = weight_matrix @ columns  # (G, Co/G, n*Ho*Wo): one GEMM per group
        y[n_start:n_end] = _from_group_matrix(y_matrix, n_end - n_start, spec)  # (n, Co, ..)
    if bias is not None:
        y += bias.reshape(C_out, 1, 1)  # (C_out, 1, 1) broadcasts over N, H_out, W_out
    return y


def conv2d_backward(grad_y, x, weight, spec: ConvSpec, *,
                    needs_input_grad=(True, True, True)):
    """Gradients of :func:`conv2d`: two matmuls against the same columns, then col2im.

    Parameters
    ----------
    grad_y : (N, C_out, H_out, W_out)
    x : (N, C_in, H, W)
    weight : (C_out, C_in // groups, kH, kW)
    spec : ConvSpec
        The forward's problem.
    needs_input_grad : (bool, bool, bool)
        Which of ``(grad_x, grad_weight, grad_bias)`` to compute (PyTorch's
        ``output_mask``); without grad_x the col2im and its matmul are skipped, without
        grad_weight the columns are never built.

    Returns
    -------
    ConvGrads
        ``grad_x (N, C_in, H, W)``: ``col2im(weight^T @ grad_y)``;
        ``grad_weight (C_out, C_in // groups, kH, kW)``: ``grad_y @ columns^T`` summed over
        the batch chunks; ``grad_bias (C_out,)``: ``grad_y.sum((0, 2, 3))``; ``None`` where
        ``needs_input_grad`` says so.
        Shape comments as in :func:`conv2d` (``K = C_in // groups * kH * kW``).
    """
    need_x, need_w, need_b = needs_input_grad
    m = numpy_tile(spec, x, weight, grad_y)  # Winograd F(m x m, 3x3) when forced, else 0
    if m:
        return _winograd_conv2d_backward(grad_y, x, weight, spec, m,
                                         needs_input_grad=needs_input_grad)
    G = spec.groups
    weight_matrix = weight.reshape(G, spec.C_out // G, -1)  # (G, Co/G, K)
    weight_matrix_t = weight_matrix.transpose(0, 2, 1)  # (G, K, Co/G), a view
    grad_x = np.empty_like(x)  # (N, C_in, H, W)
    grad_weight = np.zeros_like(weight_matrix)  # (G, Co/G, K)
    chunks = _batch_chunks(spec.N, _sample_column_bytes(spec, x.itemsize))
    for n_start, n_end in chunks if need_x or need_w else ():
        grad_y_matrix = _to_group_matrix(grad_y[n_start:n_end], G)  # (G, Co/G, n*Ho*Wo)
        if need_x:
            grad_columns = weight_matrix_t @ grad_y_matrix  # (G, K, n*Ho*Wo)
            grad_x[n_start:n_end] = _col2im(grad_columns, n_end - n_start, spec)
        if not need_w:
            continue
        columns = _columns(x[n_start:n_end], spec)  # (G, K, n*Ho*Wo)
        # grad_weight = grad_y @ columns^T, a product over the long axis n*Ho*Wo. It is
        # the same numbers either way round, but OpenBLAS (2 threads) ran it 2-5x slower,
        # in the worst cases stalling, when the left matrix had fewer rows than the right,
        # so the taller matrix goes on the left.
        if columns.shape[1] >= grad_y_matrix.shape[1]:
            grad_weight_t = columns @ grad_y_matrix.transpose(0, 2, 1)  # (G, K, Co/G)
            grad_weight += grad_weight_t.transpose(0, 2, 1)  # (G, Co/G, K)
        else:
            grad_weight += grad_y_matrix @ columns.transpose(0, 2, 1)  # (G, Co/G, K)
    grad_weight = grad_weight.reshape(spec.weight_shape)  # (C_out, C_in // groups, kH, kW)
    grad_bias = grad_y.sum((0, 2, 3)) if need_b else None  # (C_out,)
    return ConvGrads(grad_x if need_x else None, grad_weight if need_w else None, grad_bias)


def conv_transpose2d(x, weight, bias, spec: ConvSpec):
    """Transposed convolution as conv2d_backward's grad_x: ``weight^T @ x``, then col2im.

    Parameters
    ----------
    x : (N, C_in, H, W)
        ``spec.y_shape``: x plays the conv's grad_y.
    weight : (C_in, C_out // groups, kH, kW)
        The conv's OIHW weight (``spec.weight_shape``).
    bias : (C_out,) or None
    spec : ConvSpec
        The conv whose grad_x this is (:func:`kernels.common.conv_transpose_spec`).

    Returns
    -------
    y : (N, C_out, H_y, W_y)
        ``spec.x_shape``. Shape comments: ``G = groups``, ``K = C_out // groups * kH * kW``
        (a column of the conv's im2col), ``Ho, Wo = H, W``.
    """
    G = spec.groups
    weight_matrix_t = weight.reshape(G, spec.C_out // G, -1).transpose(0, 2, 1)  # (G, K, Ci/G)
    y = np.empty(spec.x_shape, x.dtype)  # (N, C_out, H_y, W_y)
    for n_start, n_end in _batch_chunks(spec.N, _sample_column_bytes(spec, x.itemsize)):
        x_matrix = _to_group_matrix(x[n_start:n_end], G)  # (G, Ci/G, n*Ho*Wo)
        columns = weight_matrix_t @ x_matrix  # (G, K, n*Ho*Wo): every pixel's stamp
        y[n_start:n_end] = _col2im(columns, n_end - n_start, spec)  # (n, C_out, H_y, W_y)
    if bias is not None:
        y += bias.reshape(-1, 1, 1)  # (C_out, 1, 1)
    return y


def conv_transpose2d_backward(grad_y, x, weight, spec: ConvSpec):
    """Gradients of :func:`conv_transpose2d`: conv2d of ``grad_y``, and its grad_weight.

    The columns of ``grad_y`` (its im2col, as :func:`conv2d` builds them for its ``x``) serve
    both products: ``grad_x = weight @ columns`` (conv2d's forward) and ``grad_weight = x @
    columns^T`` (conv2d_backward's grad_weight with ``x`` in grad_y's place).

    Parameters
    ----------
    grad_y : (N, C_out, H_y, W_y)
        ``spec.x_shape``.
    x : (N, C_in, H, W)
        ``spec.y_shape``.
    weight : (C_in, C_out // groups, kH, kW)
    spec : ConvSpec
        As :func:`conv_transpose2d` takes it.

    Returns
    -------
    ConvGrads
        ``grad_x (N, C_in, H, W)``, ``grad_weight (C_in, C_out // groups, kH, kW)``,
        ``grad_bias (C_out,)``. Shape comments as in :func:`conv_transpose2d`.
    """
    G = spec.groups
    weight_matrix = weight.reshape(G, spec.C_out // G, -1)  # (G, Ci/G, K)
    grad_x = np.empty(spec.y_shape, x.dtype)  # (N, C_in, H, W)
    grad_weight = np.zeros_like(weight_matrix)  # (G, Ci/G, K)
    for n_start, n_end in _batch_chunks(spec.N, _sample_column_bytes(spec, x.itemsize)):
        columns = _columns(grad_y[n_start:n_end], spec)  # (G, K, n*Ho*Wo)
        grad_x_matrix = weight_matrix @ columns  # (G, Ci/G, n*Ho*Wo)
        grad_x[n_start:n_end] = _from_group_matrix(grad_x_matrix, n_end - n_start, spec)
        x_matrix = _to_group_matrix(x[n_start:n_end], G)  # (G, Ci/G, n*Ho*Wo)
        grad_weight += x_matrix @ columns.transpose(0, 2, 1)  # (G, Ci/G, K)
    grad_weight = grad_weight.reshape(spec.weight_shape)  # (C_in, C_out // groups, kH, kW)
    grad_bias = grad_y.sum((0, 2, 3))  # (C_out,)
    return ConvGrads(grad_x, grad_weight, grad_bias)


# --------------------------------------------------------------------------- pooling


def _first_inside(starts, offsets, size):
    """Along one axis, per window, the index of its first tap inside ``[0, size)``.

    starts : (out,) window starts in unpadded coordinates, offsets : (k,) tap offsets
    (``arange(k) * dilation``) -> (out,) ints in ``[0, k)``; 0 when no tap is inside.
    """
    positions = starts[:, None] + offsets[None, :]  # (out, k)
    inside = (positions >= 0) & (positions < size)  # (out, k)
    return inside.argmax(axis=1)  # (out,): the first True, 0 if none


def _window_starts(spec: PoolSpec):
    """``(h_starts (H_out,), w_starts (W_out,))``: each window's first row and column.

    In unpadded coordinates, ``oh*stride_h - pad_h`` (negative in the top padding).
    """
    h_starts = np.arange(spec.H_out) * spec.stride_h - spec.pad_h  # (H_out,)
    w_starts = np.arange(spec.W_out) * spec.stride_w - spec.pad_w  # (W_out,)
    return h_starts, w_starts


def _first_inside_tap(spec: PoolSpec):
    """Per output cell, the row-major index of the first window tap that lies inside the input.

    Returns ``(H_out, W_out)`` ints in ``[0, kH*kW)``: PyTorch's starting argmax, which
    stays when every value in the window is ``-inf``.

    With dilation a window can lie wholly in the padding (``W=1, kW=2, dW=2, pW=1``: taps at
    -1 and 1). Such a window gets tap 0, in the padding: forward gives ``-inf`` and backward
    drops its gradient. PyTorch there returns an index outside the window (into the next row,
    or past the array, a heap overrun in its backward), so there is nothing to match.
    """
    h_starts, w_starts = _window_starts(spec)
    first_row = _first_inside(h_starts, np.arange(spec.kH) * spec.dil_h, spec.H)  # (H_out,)
    first_col = _first_inside(w_starts, np.arange(spec.kW) * spec.dil_w, spec.W)  # (W_out,)
    return first_row[:, None] * spec.kW + first_col[None, :]  # (H_out, W_out)


def _max_pool_argmax(x, spec: PoolSpec):
    """Max pooling and, per window, which tap holds the maximum (PyTorch's rule).

    x : (N, C, H, W) -> ``(y, argmax_tap)``, both ``(N, C, H_out, W_out)``; ``argmax_tap``
    is the row-major tap index ``i*kW + j`` in the window.

    PyTorch scans each window row-major from ``maxval = -inf``, ``index = first in-bounds
    tap``, and takes a tap when ``val > maxval or isnan(val)``: ties keep the FIRST maximum,
    the LAST NaN wins, and NaN propagates. The loop below runs that scan for all windows at
    once, one tap per iteration. Padding is ``-inf``, which never passes ``>``, so padded taps
    are never taken.
    """
    x_padded = _pad(x, spec, -np.inf)  # (N, C, H_pad, W_pad)
    windows = _window_view(x_padded, spec)  # (N, C, Ho, Wo, kH, kW)
    maxval = np.full(spec.y_shape, -np.inf, x.dtype)  # (N, C, Ho, Wo)
    argmax_tap = np.empty(maxval.shape, np.intp)  # (N, C, Ho, Wo)
    argmax_tap[...] = _first_inside_tap(spec)
    for i in range(spec.kH):
        for j in range(spec.kW):
            val = windows[:, :, :, :, i, j]  # (N, C, Ho, Wo)
            take = (val > maxval) | np.isnan(val)  # (N, C, Ho, Wo)
            np.copyto(maxval, val, where=take)
            np.copyto(argmax_tap, i * spec.kW + j, where=take)
    return maxval, argmax_tap


def max_pool2d(x, spec: PoolSpec, *, return_indices=False):
    """2-D max pooling: the running-max scan of naive, over all windows at once.

    x : (N, C, H, W) -> y : (N, C, H_out, W_out), the output size held by ``spec``
    (:class:`kernels.common.PoolSpec`, PyTorch's ceil_mode rule). With ``return_indices``,
    also the int64 flat ``h*W + w`` of each maximum (``-1`` for a window with nothing inside
    the input), computed from the winning tap's position.
    """
    y, argmax_tap = _max_pool_argmax(x, spec)
    if not return_indices:
        return y
    H, W = spec.H, spec.W
    h_starts, w_starts = _window_starts(spec)  # (Ho,), (Wo,)
    i, j = np.divmod(argmax_tap, spec.kW)  # (N, C, Ho, Wo): the winning tap's row and column
    h = h_starts[:, None] + i * spec.dil_h  # (N, C, Ho, Wo) input row
    w = w_starts[None, :] + j * spec.dil_w  # (N, C, Ho, Wo) input column
    inside = (h >= 0) & (h < H) & (w >= 0) & (w < W)  # False only for an empty window
    return y, np.where(inside, h * W + w, -1).astype(np.int64)


def _max_pool_backward_indices(grad_y, indices, spec: PoolSpec):
    """The scatter-add of max pooling's backward, given the forward's flat indices.

    grad_y, indices : (N, C, Ho, Wo) -> grad_x : (N, C, H, W), ``spec.x_shape``, in
    ``grad_y``'s dtype. ``np.bincount`` sums the gradients landing on each input cell
    (overlapping windows may share a maximum); no Python loop. Indices ``-1`` (windows with
    nothing inside the input) are dropped.
    """
    N, C, H, W = spec.N, spec.C, spec.H, spec.W
    plane = (np.arange(N * C) * (H * W)).reshape(N, C, 1, 1)  # (N, C, 1, 1) plane offsets
    keep = indices >= 0  # (N, C, Ho, Wo)
    sums = np.bincount((plane + indices)[keep], weights=grad_y[keep], minlength=N * C * H * W)
    return sums.astype(grad_y.dtype).reshape(spec.x_shape)  # (N, C, H, W)


def max_pool2d_backward(grad_y, x, indices, spec: PoolSpec):
    """grad_x of max pooling: each ``grad_y`` cell goes to its window's argmax.

    grad_y : (N, C, H_out, W_out), x : (N, C, H, W), indices : (N, C, H_out, W_out) int64 or
    None -> grad_x : (N, C, H, W)

    Given the forward's ``indices``, one scatter-add (:func:`_max_pool_backward_indices`).
    Without them the argmax is recomputed from ``x`` (same rule as the forward), and one
    iteration per kernel tap adds the ``grad_y`` of the windows whose argmax is that tap to
    that tap's strided slice; overlapping windows that share an argmax accumulate.
    """
    if indices is not None:
        return _max_pool_backward_indices(grad_y, indices, spec)
    _, argmax_tap = _max_pool_argmax(x, spec)
    ph, pw = spec.pad_h, spec.pad_w
    grad_padded = np.zeros((spec.N, spec.C, spec.H_pad, spec.W_pad), x.dtype)  # (N, C, Hp, Wp)
    zero = np.zeros((), grad_y.dtype)
    for i in range(spec.kH):
        for j in range(spec.kW):
            rows, cols = _tap_slices(i, j, spec)
            is_tap = argmax_tap == i * spec.kW + j  # (N, C, Ho, Wo)
            grad_padded[:, :, rows, cols] += np.where(is_tap, grad_y, zero)  # (N, C, Ho, Wo)
    # (N, C, H, W); padding never wins
    return grad_padded[:, :, ph : ph + spec.H, pw : pw + spec.W].copy()


def _avg_pool_divisors(spec: PoolSpec, dtype):
    """(H_out, W_out) array of the number each window's sum is divided by, in ``dtype``.

    Each entry is :func:`kernels.common.avg_pool_divisor` of that window (PyTorch's rule).
    """
    divisors = np.empty((spec.H_out, spec.W_out), dtype)  # (H_out, W_out)
    for h_out in range(spec.H_out):
        for w_out in range(spec.W_out):
            h_start = h_out * spec.stride_h - spec.pad_h  # unpadded: negative in the padding
            w_start = w_out * spec.stride_w - spec.pad_w
            divisors[h_out, w_out] = avg_pool_divisor(h_start, w_start, spec)
    return divisors


def avg_pool2d(x, spec: PoolSpec):
    """2-D average pooling: window sums from the view, divided by PyTorch's divisor.

    x : (N, C, H, W) -> y : (N, C, H_out, W_out). Padding is zero, so it adds nothing to the
    sums; only the divisor (count_include_pad, ceil mode, divisor_override) depends on it.
    ``spec`` is a PoolSpec with ``dil_h = dil_w = 1``.
    """
    x_padded = _pad(x, spec, 0.0)  # (N, C, H_pad, W_pad)
    windows = _window_view(x_padded, spec)  # (N, C, Ho, Wo, kH, kW)
    sums = windows.sum(axis=(4, 5))  # (N, C, Ho, Wo)
    return sums / _avg_pool_divisors(spec, x.dtype)  # (N, C, Ho, Wo) / (Ho, Wo)


def avg_pool2d_backward(grad_y, spec: PoolSpec):
    """grad_x of average pooling: every cell of a window gets ``grad_y / divisor``.

    grad_y : (N, C, H_out, W_out) -> grad_x : (N, C, H, W), ``spec.x_shape``, in
    ``grad_y``'s dtype (``x`` is not needed).

    One iteration per kernel tap adds the scaled gradient to that tap's strided slice
    (windows overlap when stride < kernel); the padding's share is dropped at the end.
    """
    ph, pw = spec.pad_h, spec.pad_w
    grad_window = grad_y / _avg_pool_divisors(spec, grad_y.dtype)  # (N, C, Ho, Wo)
    grad_padded = np.zeros((spec.N, spec.C, spec.H_pad, spec.W_pad),
                           grad_y.dtype)  # (N, C, H_pad, W_pad)
    for i in range(spec.kH):
        for j in range(spec.kW):
            rows, cols = _tap_slices(i, j, spec)
            grad_padded[:, :, rows, cols] += grad_window  # (N, C, Ho, Wo)
    return grad_padded[:, :, ph : ph + spec.H, pw : pw + spec.W].copy()  # (N, C, H, W)


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


def adaptive_avg_pool2d(x, spec: AdaptivePoolSpec):
    """Adaptive average pooling: sums over row ranges, then over column ranges, / counts.

    x : (N, C, H, W) -> y : (N, C, H_out, W_out), ``spec`` an AdaptivePoolSpec. A window is a
    rectangle (:func:`kernels.common.adaptive_bounds` along each axis), so its sum is the sum
    over its columns of the sums over its rows: two gathers through :func:`_adaptive_members`
    tables, then a division by the window's area, as PyTorch's ``sum / count``.
    """
    rows, row_ok = _adaptive_members(spec.H, spec.H_out)  # (H_out, kh)
    cols, col_ok = _adaptive_members(spec.W, spec.W_out)  # (W_out, kw)
    sums = _gather_sum(x, 2, rows, row_ok)  # (N, C, H_out, W): whole rows, contiguous copies
    sums = _gather_sum(sums, 3, cols, col_ok)  # (N, C, H_out, W_out)
    return sums / _window_areas(row_ok, col_ok, x.dtype)


def adaptive_avg_pool2d_backward(grad_y, spec: AdaptivePoolSpec):
    """grad_x of adaptive average pooling: each input gets ``grad_y / area`` of every window
    that holds it, gathered through :func:`_windows_containing` tables (no scatter needed).

    grad_y : (N, C, H_out, W_out) -> grad_x : (N, C, H, W), ``spec.x_shape``, in
    ``grad_y``'s dtype (``x`` is not needed).
    """
    H, W, H_out, W_out = spec.H, spec.W, spec.H_out, spec.W_out
    row_ok, col_ok = _adaptive_members(H, H_out)[1], _adaptive_members(W, W_out)[1]
    grad_window = grad_y / _window_areas(row_ok, col_ok, grad_y.dtype)  # (N, C, H_out, W_out)
    grad = _gather_sum(grad_window, 3, *_windows_containing(W, W_out))  # (N, C, H_out, W)
    return _gather_sum(grad, 2, *_windows_containing(H, H_out))  # (N, C, H, W)


# --------------------------------------------------------------------------- pad


def _pad_sources(size, before, after, mode):
    """Naive's ``_source_index`` for a whole axis: which input index each output index reads.

    Returns ``index : (size + before + after,)`` and ``inside`` (same shape, bool): ``False``
    marks a constant-padding cell, whose ``index`` is 0 (any valid index; the cell is then
    overwritten with the fill value, or skipped in the backward). Circular padding wraps
    around the cells the negative pads keep, as PyTorch does.
    """
    out = np.arange(size + before + after)  # (out,)
    k = out - before  # (out,) input coordinates
    inside = np.ones(out.shape, bool)  # (out,)
    if mode == PAD_CONSTANT:
        inside = (k >= 0) & (k < size)
        index = np.where(inside, k, 0)
    elif mode == PAD_REFLECT:
        index = size - 1 - np.abs(size - 1 - np.abs(k))
    elif mode == PAD_REPLICATE:
        index = np.clip(k, 0, size - 1)
    else:  # PAD_CIRCULAR
        kept = size + min(before, 0) + min(after, 0)
        index = max(-before, 0) + (out - max(before, 0)) % kept
    return index, inside


def pad(x, value, spec: PadSpec):
    """``F.pad`` as two gathers: x (N, C, H, W) -> y (N, C, H_out, W_out).

    ``y = x[:, :, rows][:, :, :, cols]`` with the index arrays of :func:`_pad_sources`; in
    constant mode the rows and columns outside the input are then set to ``value``.
    """
    rows, row_in = _pad_sources(spec.H, spec.pad_top, spec.pad_bottom, spec.mode)
    cols, col_in = _pad_sources(spec.W, spec.pad_left, spec.pad_right, spec.mode)
    y = np.take(np.take(x, rows, axis=2), cols, axis=3)  # (N, C, H_out, W_out)
    y[:, :, ~row_in, :] = value
    y[:, :, :, ~col_in] = value
    return y


def pad_backward(grad_y, spec: PadSpec):
    """grad_x of :func:`pad`: scatter-add each axis back onto its source indices.

    grad_y : (N, C, H_out, W_out) -> grad_x : (N, C, H, W), ``spec.x_shape``, in ``grad_y``'s
    dtype. ``np.add.at`` adds repeated indices (the cells reflect, replicate and circular
    copy several times) instead of keeping only the last write as ``a[index] += b`` would.
    """
    rows, row_in = _pad_sources(spec.H, spec.pad_top, spec.pad_bottom, spec.mode)
    cols, col_in = _pad_sources(spec.W, spec.pad_left, spec.pad_right, spec.mode)
    by_col = np.zeros((spec.N, spec.C, spec.H_out, spec.W), grad_y.dtype)  # (N, C, H_out, W)
    np.add.at(by_col, (slice(None), slice(None), slice(None), cols[col_in]),
              grad_y[:, :, :, col_in])
    grad_x = np.zeros(spec.x_shape, grad_y.dtype)  # (N, C, H, W)
    np.add.at(grad_x, (slice(None), slice(None), rows[row_in]), by_col[:, :, row_in])
    return grad_x


# --------------------------------------------------------------------------- max unpooling


def _last_writers(flat_targets):
    """Which entries of ``flat_targets`` (1-D) are the last to name their value.

    Returns a bool mask: True where no later entry has the same target. ``np.unique`` on
    the reversed array returns each value's first occurrence there, the last one here.
    """
    reversed_first = np.unique(flat_targets[::-1], return_index=True)[1]
    keep = np.zeros(flat_targets.shape, bool)
    keep[flat_targets.size - 1 - reversed_first] = True
    return keep


def max_unpool2d(x, indices, spec: UnpoolSpec):
    """Max unpooling: x, indices (N, C, H, W) -> y (N, C, H_out, W_out), zeros elsewhere.

    One assignment ``y_flat[plane*H_out*W_out + index] = x`` over all planes; where several
    inputs name one cell, only the last in row-major input order writes (naive's rule,
    PyTorch's), chosen by :func:`_last_writers`.
    """
    N, C, H_out, W_out = spec.y_shape
    plane = (np.arange(N * C) * (H_out * W_out)).reshape(N, C, 1, 1)  # (N, C, 1, 1)
    targets = (plane + indices).ravel()  # (N*C*H*W,) flat positions in y
    keep = _last_writers(targets)  # (N*C*H*W,)
    y = np.zeros(N * C * H_out * W_out, x.dtype)  # (N*C*H_out*W_out,)
    y[targets[keep]] = x.ravel()[keep]
    return y.reshape(spec.y_shape)  # (N, C, H_out, W_out)


def max_unpool2d_backward(grad_y, indices, spec: UnpoolSpec):
    """grad_x of max unpooling, a gather: grad_y (N, C, H_out, W_out) -> (N, C, H, W).

    ``grad_x[n, c] = grad_y[n, c].flat[indices[n, c]]``, by ``np.take_along_axis`` on the
    flattened planes; duplicate indices all read their cell (PyTorch's autograd does too).
    """
    N, C = spec.N, spec.C
    flat = grad_y.reshape(N, C, spec.H_out * spec.W_out)  # (N, C, H_out*W_out)
    grad_x = np.take_along_axis(flat, indices.reshape(N, C, spec.H * spec.W), axis=2)
    return grad_x.reshape(spec.x_shape)  # (N, C, H, W)


# --------------------------------------------------------------------------- adaptive max


def _adaptive_max_argmax(x, spec: AdaptivePoolSpec):
    """Adaptive max pooling and the flat ``h*W + w`` of each maximum, PyTorch's scan.

    x : (N, C, H, W) -> ``(y, indices)``, both ``(N, C, H_out, W_out)``. One iteration per
    tap ``(a, b)`` of the gather tables (window row ``a``, column ``b``, row-major as
    PyTorch scans), each over all windows at once: take a tap that is inside its window and
    greater than the running maximum or NaN. The index starts at each window's first cell,
    which a window of ``-inf`` keeps, as in PyTorch.
    """
    W = spec.W
    rows, row_ok = _adaptive_members(spec.H, spec.H_out)  # (H_out, kh)
    cols, col_ok = _adaptive_members(spec.W, spec.W_out)  # (W_out, kw)
    maxval = np.full(spec.y_shape, -np.inf, x.dtype)  # (N, C, H_out, W_out)
    index = np.empty(spec.y_shape, np.int64)  # (N, C, H_out, W_out)
    index[...] = rows[:, :1] * W + cols[None, :, 0]  # (H_out, W_out): the first cells
    for a in range(rows.shape[1]):
        x_rows = np.take(x, rows[:, a], axis=2)  # (N, C, H_out, W)
        for b in range(cols.shape[1]):
            val = np.take(x_rows, cols[:, b], axis=3)  # (N, C, H_out, W_out)
            inside = row_ok[:, a][:, None] & col_ok[:, b][None, :]  # (H_out, W_out)
            take = inside & ((val > maxval) | np.isnan(val))  # (N, C, H_out, W_out)
            np.copyto(maxval, val, where=take)
            np.copyto(index, rows[:, a][:, None] * W + cols[:, b][None, :], where=take)
    return maxval, index


def adaptive_max_pool2d(x, spec: AdaptivePoolSpec, *, return_indices=False):
    """Adaptive max pooling: x (N, C, H, W) -> y (N, C, H_out, W_out) [, indices int64]."""
    y, indices = _adaptive_max_argmax(x, spec)
    return (y, indices) if return_indices else y


def adaptive_max_pool2d_backward(grad_y, x, indices, spec: AdaptivePoolSpec):
    """grad_x of adaptive max pooling: grad_y (N, C, H_out, W_out) -> (N, C, H, W).

    The scatter-add of max pooling (:func:`_max_pool_backward_indices`, which reads only
    ``spec``'s ``N, C, H, W``), from the forward's ``indices`` or from the scan run again.
    """
    if indices is None:
        indices = _adaptive_max_argmax(x, spec)[1]
    return _max_pool_backward_indices(grad_y, indices, spec)


# --------------------------------------------------------------------------- relu


def relu(x):
    """:func:`kernels.naive.relu` as one ``np.where`` (a NaN passes: ``NaN <= 0`` is false)."""
    return np.where(x <= 0, x.dtype.type(0), x)


def relu_backward(grad_y, x):
    """:func:`kernels.naive.relu_backward` as one ``np.where``."""
    return np.where(x <= 0, grad_y.dtype.type(0), grad_y)


# --------------------------------------------------------------------------- losses
# kernels.naive's row loops as whole-array reductions over the class axis (axis 1).


def _log_softmax(x):
    """``(x - m) - log(sum(exp(x - m)))`` row by row, ``m`` the row maximum (stable)."""
    shifted = x - x.max(axis=1, keepdims=True)  # every entry <= 0: exp cannot overflow
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def log_softmax(x):
    """:func:`kernels.naive.log_softmax`: x (N, C) -> y (N, C)."""
    return _log_softmax(x)


def log_softmax_backward(grad_y, y):
    """:func:`kernels.naive.log_softmax_backward`: ``grad_y - exp(y) * grad_y.sum(1)``."""
    return grad_y - np.exp(y) * grad_y.sum(axis=1, keepdims=True)


def nll_loss(logp, target, spec):
    """:func:`kernels.naive.nll_loss`: one fancy-indexed gather, one sum; a 0-d array."""
    picked = logp[np.arange(spec.N), target]  # (N,)
    return np.array(-picked.sum() / logp.dtype.type(spec.divisor), logp.dtype)


def nll_loss_backward(logp, target, grad, spec):
    """:func:`kernels.naive.nll_loss_backward`: zeros, one scatter of ``-grad / divisor``."""
    grad_logp = np.zeros_like(logp)
    grad_logp[np.arange(spec.N), target] = logp.dtype.type(-spec.grad_scale(grad))
    return grad_logp


def cross_entropy(logits, target, spec):
    """:func:`kernels.naive.cross_entropy`: nll_loss of the whole-array log_softmax."""
    return nll_loss(_log_softmax(logits), target, spec)


def cross_entropy_backward(logits, target, grad, spec):
    """:func:`kernels.naive.cross_entropy_backward`: ``(softmax - one_hot) * grad / divisor``."""
    grad_logits = np.exp(_log_softmax(logits))  # softmax, (N, C)
    grad_logits[np.arange(spec.N), target] -= 1
    grad_logits *= logits.dtype.type(spec.grad_scale(grad))
    return grad_logits


# --------------------------------------------------------------------------- dropout


def dropout(x, spec):
    """:func:`kernels.naive.dropout` as one multiplication by the noise array; (y, mask)."""
    mask = dropout_mask(x.shape, spec)  # the naive backend's, so both agree for one random seed
    return x * _noise(mask, x.dtype, spec), mask


def _noise(mask, dtype, spec):
    """``mask / (1 - p)`` in ``dtype`` (0 where dropped, and everywhere when p == 1)."""
    return np.where(mask != 0, _dropout_scale(dtype, spec), dtype.type(0))


def dropout_backward(grad_y, mask, spec):
    """:func:`kernels.naive.dropout_backward`: ``grad_y * noise``."""
    return grad_y * _noise(mask, grad_y.dtype, spec)


# --------------------------------------------------------------------------- optimizer updates


def sgd_step(param, grad, buf, hyper, *, first=False):
    """:func:`kernels.naive.sgd_step` on whole arrays, written in place with ``out=``."""
    T = param.dtype.type
    d = grad
    if hyper.weight_decay != 0:
        d = grad + T(hyper.weight_decay) * param
    if hyper.momentum != 0:
        if first:
            buf[...] = d
        else:
            np.multiply(buf, T(hyper.momentum), out=buf)
            buf += T(1.0 - hyper.dampening) * d
        d = d + T(hyper.momentum) * buf if hyper.nesterov else buf
    param -= T(hyper.lr) * d


def adam_step(param, grad, m, v, v_max, hyper):
    """:func:`kernels.naive.adam_step` on whole arrays, written in place with ``out=``."""
    T = param.dtype.type
    g = grad
    if hyper.weight_decay != 0:
        if hyper.decoupled:
            param *= T(1.0 - hyper.lr * hyper.weight_decay)
        else:
            g = grad + T(hyper.weight_decay) * param
    w = T(1.0 - hyper.beta1)  # lerp(m, g, w), PyTorch's two-sided form
    if w < 0.5:
        m += w * (g - m)
    else:
        m[...] = g - (g - m) * (T(1) - w)
    np.multiply(v, T(hyper.beta2), out=v)
    v += T(1.0 - hyper.beta2) * g * g
    second = v
    if hyper.amsgrad:
        np.maximum(v_max, v, out=v_max)
        second = v_max
    denom = np.sqrt(second) / T(hyper.bias2_sqrt) + T(hyper.eps)
    param += T(-hyper.step_size) * (m / denom)


# --------------------------------------------------------------------------- sigmoid, tanh, add


def sigmoid(x):
    """:func:`kernels.naive.sigmoid` as ``exp(min(x, 0)) / (1 + exp(-|x|))``, whole arrays.

    Both exponents are <= 0 (nothing overflows): for ``x >= 0`` this is ``1 / (1 + exp(-x))``,
    for ``x < 0`` it is ``exp(x) / (1 + exp(x))``. Written without ``np.where``, which NumPy
    does not vectorise (on LeNet's first activation, (64, 6, 28, 28) float32, the two-branch
    ``np.where`` form took 4.3 ms and this one 0.4 ms: min of 60 calls, 2-core AMD EPYC,
    NumPy 2.4). A NaN stays NaN.
    """
    num = np.minimum(x, 0, out=np.empty_like(x))  # min(x, 0), NaN stays NaN; out=: 0-d too
    np.exp(num, out=num)
    den = np.abs(x, out=np.empty_like(x))
    np.negative(den, out=den)
    np.exp(den, out=den)
    den += 1  # 1 + exp(-|x|), in [1, 2]
    num /= den
    return num


def sigmoid_backward(grad_y, y):
    """:func:`kernels.naive.sigmoid_backward` on whole arrays: ``grad_y * (1 - y) * y``.

    Every result goes to an ``out=`` array: a ufunc on 0-d arrays returns a scalar otherwise.
    """
    return np.multiply(grad_y * (1 - y), y, out=np.empty_like(grad_y))


def tanh(x):
    """:func:`kernels.naive.tanh` as ``np.tanh``."""
    return np.tanh(x, out=np.empty_like(x))


def tanh_backward(grad_y, y):
    """:func:`kernels.naive.tanh_backward` on whole arrays: ``grad_y * (1 - y * y)``."""
    return np.multiply(grad_y, 1 - y * y, out=np.empty_like(grad_y))


def add(a, b):
    """:func:`kernels.naive.add` as one ``a + b``."""
    return np.add(a, b, out=np.empty_like(a))


# --------------------------------------------------------------------------- leaky_relu, elu,
# gelu, silu, softmax, dropout2d, cat
# kernels.naive's element loops as whole-array NumPy expressions (same formulas, same tests on
# x, so NaN and +-inf go the same way); every result goes to an ``out=`` array or a fresh
# array, never a NumPy scalar (a 0-d input stays 0-d).


def leaky_relu(x, negative_slope):
    """:func:`kernels.naive.leaky_relu` as one ``np.where``."""
    return np.where(x > 0, x, x * x.dtype.type(negative_slope))


def leaky_relu_backward(grad_y, x, negative_slope):
    """:func:`kernels.naive.leaky_relu_backward` as one ``np.where``."""
    return np.where(x > 0, grad_y, grad_y * grad_y.dtype.type(negative_slope))


def elu(x, alpha):
    """:func:`kernels.naive.elu`: ``expm1`` of ``min(x, 0)`` only, so nothing overflows."""
    neg = np.expm1(np.minimum(x, 0)) * x.dtype.type(alpha)
    return np.where(x <= 0, neg, x)


def elu_backward(grad_y, x, alpha):
    """:func:`kernels.naive.elu_backward`: ``exp`` of ``min(x, 0)`` only."""
    neg = grad_y * grad_y.dtype.type(alpha) * np.exp(np.minimum(x, 0))
    return np.where(x <= 0, neg, grad_y)


def _erf(v):
    """The erf of every element (NumPy has none): ``math.erf`` per element, exact."""
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(v), dtype=v.dtype)


def gelu(x, approximate):
    """:func:`kernels.naive.gelu` on whole arrays (erf through ``math.erf``, per element)."""
    T = x.dtype.type
    if approximate == "tanh":
        inner = T(GELU_TANH_BETA) * (x + T(GELU_TANH_KAPPA) * x * x * x)
        return np.multiply(T(0.5) * x, 1 + np.tanh(inner), out=np.empty_like(x))
    return np.multiply(x * T(0.5), 1 + _erf(x * T(math.sqrt(0.5))), out=np.empty_like(x))


def gelu_backward(grad_y, x, approximate):
    """:func:`kernels.naive.gelu_backward` on whole arrays."""
    T = x.dtype.type
    if approximate == "tanh":
        inner = T(GELU_TANH_BETA) * (x + T(GELU_TANH_KAPPA) * x * x * x)
        t = np.tanh(inner)
        inner_derivative = T(GELU_TANH_BETA) * (1 + T(3.0 * GELU_TANH_KAPPA) * x * x)
        slope = T(0.5) * (1 + t) + T(0.5) * x * (1 - t * t) * inner_derivative
    else:
        cdf = T(0.5) * (1 + _erf(x * T(math.sqrt(0.5))))
        slope = cdf + x * (np.exp(T(-0.5) * x * x) * T(GELU_PDF_ALPHA))
    return np.multiply(grad_y, slope, out=np.empty_like(grad_y))


def silu(x):
    """:func:`kernels.naive.silu` as ``x / (1 + exp(-x))``.

    ``exp`` may overflow to +inf, giving ``x / inf = -0``, as PyTorch's.
    """
    return np.divide(x, 1 + np.exp(-x), out=np.empty_like(x))


def silu_backward(grad_y, x):
    """:func:`kernels.naive.silu_backward` on whole arrays."""
    s = 1 / (1 + np.exp(-x))
    return np.multiply(grad_y * s, 1 + x * (1 - s), out=np.empty_like(grad_y))


def softmax(x):
    """:func:`kernels.naive.softmax` over axis 1 of (A, C, B), whole arrays."""
    e = np.exp(x - x.max(axis=1, keepdims=True))  # NaN in a row: max is NaN, so is the row
    e /= e.sum(axis=1, keepdims=True)
    return e


def softmax_backward(grad_y, y):
    """:func:`kernels.naive.softmax_backward` over axis 1 of (A, C, B), whole arrays."""
    return y * (grad_y - (grad_y * y).sum(axis=1, keepdims=True))


def dropout2d(x, spec):
    """:func:`kernels.naive.dropout2d`: x : (R, L) -> (y, mask (R,)), one multiplication."""
    mask = dropout_mask((x.shape[0],), spec)  # the naive backend's draws
    return dropout2d_backward(x, mask, spec), mask


def dropout2d_backward(grad_y, mask, spec):
    """:func:`kernels.naive.dropout2d_backward`: ``grad_y * noise[:, None]``."""
    dtype = grad_y.dtype
    noise = np.where(mask != 0, _dropout_scale(dtype, spec), dtype.type(0))
    return grad_y * noise[:, None]


def cat(arrays):
    """:func:`kernels.naive.cat` as ``np.concatenate`` along axis 1."""
    return np.concatenate(arrays, axis=1)


def cat_backward(grad_y, sizes):
    """:func:`kernels.naive.cat_backward`: C-contiguous copies of the slices along axis 1."""
    bounds = np.cumsum(sizes)[:-1]
    return [np.ascontiguousarray(g) for g in np.split(grad_y, bounds, axis=1)]


# --------------------------------------------------------------------------- linear


def linear(x, weight, bias):
    """:func:`kernels.naive.linear` as one matrix product (BLAS): x (M, K) -> y (M, O)."""
    y = x @ weight.T  # (M, K) @ (K, O)
    if bias is not None:
        y += bias
    return y


def linear_backward(grad_y, x, weight, *, needs_input_grad=(True, True, True)):
    """:func:`kernels.naive.linear_backward` as two matrix products and a sum.

    grad_y (M, O), x (M, K), weight (O, K) -> ``LinearGrads(grad_y @ weight (M, K),
    grad_y.T @ x (O, K), grad_y.sum(0) (O,))``, ``None`` where not asked for.
    """
    need_x, need_w, need_b = (bool(flag) for flag in needs_input_grad)
    return LinearGrads(grad_y @ weight if need_x else None,
                       grad_y.T @ x if need_w else None,
                       grad_y.sum(axis=0) if need_b else None)


# --------------------------------------------------------------------------- batch_norm


def batch_norm(x, running_mean, running_var, weight, bias, spec: BatchNormSpec):
    """:func:`kernels.naive.batch_norm` on whole arrays: NumPy's sums over ``(N, L)``.

    x : (N, C, L) -> ``BatchNormOutput(y (N, C, L), mean (C,), inv_std (C,))``; the running
    estimates (C,) are updated in place in training (the unbiased variance), as naive's.
    NumPy's pairwise float64 sums replace naive's running sums (same value, other rounding).
    """
    M = spec.count
    if spec.training:
        mean64 = x.sum(axis=(0, 2), dtype=np.float64) / M  # (C,)
        centered = x - mean64[:, None]  # (N, C, L), float64
        squares = (centered * centered).sum(axis=(0, 2))  # (C,)
        momentum = spec.momentum
        if running_mean is not None:
            running_mean[...] = momentum * mean64 + (1 - momentum) * running_mean
        if running_var is not None:
            running_var[...] = momentum * (squares / (M - 1)) + (1 - momentum) * running_var
        mean = mean64.astype(x.dtype)
        inv_std = (1 / np.sqrt(squares / M + spec.eps)).astype(x.dtype)  # (C,)
    else:
        mean = running_mean.copy()
        inv_std = 1 / np.sqrt(running_var + x.dtype.type(spec.eps))  # (C,)
    alpha = inv_std * weight  # (C,): y = x * alpha + beta, as naive
    beta = bias - mean * alpha
    return BatchNormOutput(x * alpha[:, None] + beta[:, None], mean, inv_std)


def batch_norm_backward(grad_y, x, weight, mean, inv_std, spec: BatchNormSpec):
    """:func:`kernels.naive.batch_norm_backward` on whole arrays (float64 sums, as naive).

    grad_y, x : (N, C, L), weight, mean, inv_std : (C,) -> ``ConvGrads(grad_x (N, C, L),
    grad_weight (C,), grad_bias (C,))``.
    """
    M = spec.count
    s = inv_std.astype(np.float64)
    centered = x - mean.astype(np.float64)[:, None]  # (N, C, L), float64
    total = grad_y.sum(axis=(0, 2), dtype=np.float64)  # (C,)
    dot = (centered * grad_y).sum(axis=(0, 2))  # (C,)
    g = grad_y
    if spec.training:  # the paths through the mean and the variance
        g = g - (total / M)[:, None] - centered * (dot * s * s / M)[:, None]
    dtype = x.dtype
    return ConvGrads((g * (s * weight)[:, None]).astype(dtype), (dot * s).astype(dtype),
                     total.astype(dtype))
