"""The textbook backend ("naive"): convolution and pooling as plain loops over NumPy.

This module is the specification. Every other backend computes exactly what these loops
compute, only faster; read this one first. It follows the order of d2l's chapter on
convolutions, then adds what PyTorch's ``conv2d`` and pooling layers do on top:

1. :func:`corr2d` -- single-channel 2-D cross-correlation, d2l's six lines.
2. :func:`corr2d_multi_in` -- several input channels: one ``corr2d`` per channel, summed.
3. :func:`corr2d_multi_in_out` -- several output channels: a stack of ``corr2d_multi_in``.
4. :func:`corr2d_multi_in_out_1x1` -- a 1x1 convolution is a matrix product over channels.
5. :func:`conv2d` -- the general layer: batch, bias, stride, padding, dilation, groups.
6. :func:`conv2d_backward` -- its gradients, the same loops run backwards.
   :func:`conv_transpose2d`, :func:`conv_transpose2d_backward` -- 6's grad_x as a layer.
7. :func:`max_pool2d`, :func:`max_pool2d_backward` -- PyTorch's max pooling, ties and NaN.
8. :func:`avg_pool2d`, :func:`avg_pool2d_backward` -- average pooling and its divisor.
9. :func:`adaptive_avg_pool2d`, :func:`adaptive_avg_pool2d_backward` -- pool to a fixed size.
10. :func:`pad`, :func:`pad_backward` -- ``F.pad``: constant, reflect, replicate, circular.
11. :func:`max_unpool2d`, :func:`max_unpool2d_backward` -- max pooling's indices, undone.
12. :func:`adaptive_max_pool2d`, :func:`adaptive_max_pool2d_backward` -- 9's windows, 7's max.

Loops run over every output element and do one small NumPy operation each, so this backend
is for reading and for checking, not for speed. Arrays are NCHW, weights OIHW; outputs have
the input's dtype (float32 in, float32 out). Arguments arrive validated by
``minitorch_cnn.functional``, which describes each problem in one named record of
:mod:`kernels.common` (:class:`~kernels.common.ConvSpec`, :class:`~kernels.common.PoolSpec`,
:class:`~kernels.common.AdaptivePoolSpec`, :class:`~kernels.common.PadSpec`): the layer's
arguments as named fields (``spec.stride_h``, ``spec.pad_w``, ...) and the output size
``spec.H_out, spec.W_out``, computed once by the formula when the spec was built.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kernels.common import (
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

# --------------------------------------------------------------------------- 1. corr2d


def corr2d(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Single-channel 2-D cross-correlation, exactly as d2l writes it.

    The kernel slides over the input without being flipped (a "convolution" in deep learning
    is a cross-correlation): ``Y[i, j] = sum_{a, b} X[i + a, j + b] * K[a, b]``.

    Parameters
    ----------
    X : (H, W)
        The input.
    K : (kh, kw)
        The kernel.

    Returns
    -------
    Y : (H - kh + 1, W - kw + 1)
        One output per position where the kernel fits entirely inside ``X``.

    Examples
    --------
    >>> X = np.arange(9.0).reshape(3, 3)
    >>> K = np.arange(4.0).reshape(2, 2)
    >>> corr2d(X, K)
    array([[19., 25.],
           [37., 43.]])
    """
    h, w = K.shape
    Y = np.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


# --------------------------------------------------------------------------- 2-4. channels


def corr2d_multi_in(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Cross-correlation with several input channels: one ``corr2d`` per channel, summed.

    Parameters
    ----------
    X : (C_in, H, W)
    K : (C_in, kh, kw)
        One kernel per input channel.

    Returns
    -------
    Y : (H - kh + 1, W - kw + 1)
        ``sum_c corr2d(X[c], K[c])``.
    """
    return sum(corr2d(x, k) for x, k in zip(X, K, strict=True))


def corr2d_multi_in_out(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Several output channels: each is a ``corr2d_multi_in`` with its own kernel stack.

    Parameters
    ----------
    X : (C_in, H, W)
    K : (C_out, C_in, kh, kw)

    Returns
    -------
    Y : (C_out, H - kh + 1, W - kw + 1)
        ``Y[o] = corr2d_multi_in(X, K[o])``.
    """
    return np.stack([corr2d_multi_in(X, k) for k in K], axis=0)


def corr2d_multi_in_out_1x1(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """A 1x1 convolution is a matrix product over channels, pixel by pixel.

    Each output pixel is ``K @ (the C_in values of that input pixel)``; putting all pixels
    side by side turns the whole convolution into one ``(C_out, C_in) @ (C_in, H*W)`` product.

    Parameters
    ----------
    X : (C_in, H, W)
    K : (C_out, C_in, 1, 1) or (C_out, C_in)

    Returns
    -------
    Y : (C_out, H, W)
        Equal to ``corr2d_multi_in_out(X, K)`` for a ``(C_out, C_in, 1, 1)`` kernel.
    """
    C_in, H, W = X.shape
    C_out = K.shape[0]
    X = X.reshape(C_in, H * W)  # (C_in, H*W): one column per pixel
    K = K.reshape(C_out, C_in)  # (C_out, C_in)
    Y = K @ X  # (C_out, H*W)
    return Y.reshape(C_out, H, W)  # (C_out, H, W)


# --------------------------------------------------------------------------- 5. conv2d


def conv2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, spec: ConvSpec
) -> np.ndarray:
    """2-D convolution (cross-correlation) with PyTorch's ``conv2d`` arguments, as loops.

    ``spec`` (:class:`kernels.common.ConvSpec`) names the problem: the shapes, the stride
    ``stride_h, stride_w``, padding ``pad_h, pad_w``, dilation ``dil_h, dil_w``, ``groups``,
    and the output size, which the spec holds (:func:`kernels.common.conv_output_size`
    computed it once, when the spec was built). Along each axis::

        H_out = 1 + (H + 2*pad_h - dil_h*(kH - 1) - 1) // stride_h

    ``dh*(kH - 1) + 1`` (``dh = dil_h``) is the extent of the dilated kernel: the window of
    output row ``i`` covers padded rows ``h_start = i*sh`` to ``h_end = h_start + dh*(kH-1) +
    1`` (exclusive, ``sh = stride_h``), taking every ``dh``-th of them. With ``groups = g``
    the input channels are cut into ``g`` slices of ``C_in // g`` and output channel ``o``
    only sees the slice of its group ``o // (C_out // g)``.

    ``y[n, o, i, j] = bias[o] + sum(x_pad[n, group's channels, h_start:h_end:dh,
    w_start:w_end:dw] * weight[o])``

    Parameters
    ----------
    x : (N, C_in, H, W)
    weight : (C_out, C_in // groups, kH, kW)
    bias : (C_out,) or None
    spec : ConvSpec
        ``pad_h`` zero rows are added at the top and at the bottom, ``pad_w`` zero columns
        on the left and on the right; ``groups`` divides both ``C_in`` and ``C_out``.

    Returns
    -------
    y : (N, C_out, H_out, W_out)
        ``spec.y_shape``.
    """
    N, groups, H_out, W_out = spec.N, spec.groups, spec.H_out, spec.W_out
    kH, kW = spec.kH, spec.kW
    sh, sw = spec.stride_h, spec.stride_w
    ph, pw = spec.pad_h, spec.pad_w
    dh, dw = spec.dil_h, spec.dil_w
    C_in_g = spec.C_in // groups  # input channels per group
    C_out_g = spec.C_out // groups  # output channels per group

    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_in, H + 2ph, W + 2pw)
    y = np.zeros(spec.y_shape, dtype=x.dtype)  # (N, C_out, H_out, W_out)
    for n in range(N):
        for g in range(groups):
            c_in_start, c_in_end = g * C_in_g, (g + 1) * C_in_g  # this group's input channels
            for o in range(g * C_out_g, (g + 1) * C_out_g):
                for i in range(H_out):
                    h_start = i * sh
                    h_end = h_start + dh * (kH - 1) + 1
                    for j in range(W_out):
                        w_start = j * sw
                        w_end = w_start + dw * (kW - 1) + 1
                        window = x_pad[n, c_in_start:c_in_end, h_start:h_end:dh,
                                       w_start:w_end:dw]  # (C_in // groups, kH, kW)
                        y[n, o, i, j] = (window * weight[o]).sum()
                if bias is not None:
                    y[n, o] += bias[o]
    return y


# --------------------------------------------------------------------------- 6. backward


def conv2d_backward(
    grad_y: np.ndarray, x: np.ndarray, weight: np.ndarray, spec: ConvSpec, *,
    needs_input_grad: tuple[bool, bool, bool] = (True, True, True),
) -> ConvGrads:
    """Gradients of :func:`conv2d`: the forward loops, run backwards.

    The forward pass computed each output as ``y[n, o, i, j] = sum(window * weight[o])``
    (+ bias). So each output's gradient ``g = grad_y[n, o, i, j]`` flows back

    - to the weight, as ``g * window``: ``grad_weight[o] += g * window``;
    - to the input, as ``g * weight[o]``, added onto the window it read:
      ``grad_x_pad[n, group's channels, h_start:h_end:dh, w_start:w_end:dw] += g * weight[o]``
      (windows overlap when ``stride < dilation*(kH-1) + 1``, so contributions add up);
    - to the bias: ``grad_bias = grad_y.sum((0, 2, 3))``.

    Finally the padding is cropped off ``grad_x_pad``: those zeros were constants.

    ``grad_x`` is itself a convolution. Spread ``grad_y`` out by the stride (``stride - 1``
    zeros between neighbours), pad it with ``dilation*(k - 1)`` zeros on every side, and
    cross-correlate it with the *flipped* kernel (both spatial axes reversed, input and output
    channels swapped within each group), dilated as in the forward pass. That "full"
    convolution gives ``grad_x_pad`` (up to the last ``stride - 1`` rows/columns no window
    reached, which get zero); crop ``padding`` from each side. For ``groups=1``, with
    ``sh, sw = spec.stride_h, spec.stride_w`` (and ``ph``, ``dh``, ... likewise)::

        g = zeros((N, C_out, (H_out - 1)*sh + 1, (W_out - 1)*sw + 1))
        g[:, :, ::sh, ::sw] = grad_y                            # dilate grad_y by the stride
        w_flip = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in, C_out, kH, kW)
        full_spec = ConvSpec.from_shapes(g.shape, w_flip.shape, stride=(1, 1),
                                         padding=(dh*(kH-1), dw*(kW-1)), dilation=(dh, dw),
                                         groups=1)
        full = conv2d(g, w_flip, None, full_spec)  # (N, C_in, <= H + 2ph, <= W + 2pw)
        grad_x = zero-pad full to (H + 2ph, W + 2pw) at the bottom/right, then crop padding

    This is the "transposed convolution"; the loops below compute the same sums, one output
    position at a time.

    Parameters
    ----------
    grad_y : (N, C_out, H_out, W_out)
        Gradient of the loss with respect to the output ``y``.
    x : (N, C_in, H, W)
    weight : (C_out, C_in // groups, kH, kW)
    spec : ConvSpec
        The forward's problem, as :func:`conv2d` takes it.
    needs_input_grad : (bool, bool, bool)
        Which of ``(grad_x, grad_weight, grad_bias)`` to compute, as PyTorch's
        ``output_mask``; a gradient not asked for is not computed and comes back as ``None``
        (a network's first layer needs no grad_x: its input is data).

    Returns
    -------
    ConvGrads
        ``grad_x : (N, C_in, H, W)``, ``grad_weight : (C_out, C_in // groups, kH, kW)``,
        ``grad_bias : (C_out,)``; ``None`` where ``needs_input_grad`` says so.
    """
    need_x, need_w, need_b = needs_input_grad
    N, groups, H_out, W_out = spec.N, spec.groups, spec.H_out, spec.W_out
    H, W, kH, kW = spec.H, spec.W, spec.kH, spec.kW
    sh, sw = spec.stride_h, spec.stride_w
    ph, pw = spec.pad_h, spec.pad_w
    dh, dw = spec.dil_h, spec.dil_w
    C_in_g = spec.C_in // groups  # input channels per group
    C_out_g = spec.C_out // groups  # output channels per group

    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_in, H + 2ph, W + 2pw)
    grad_x_pad = np.zeros_like(x_pad)  # (N, C_in, H + 2ph, W + 2pw)
    grad_weight = np.zeros_like(weight)  # (C_out, C_in // groups, kH, kW)
    for n in range(N):
        for g in range(groups):
            c_in_start, c_in_end = g * C_in_g, (g + 1) * C_in_g
            for o in range(g * C_out_g, (g + 1) * C_out_g):
                for i in range(H_out):
                    h_start = i * sh
                    h_end = h_start + dh * (kH - 1) + 1
                    for j in range(W_out):
                        w_start = j * sw
                        w_end = w_start + dw * (kW - 1) + 1
                        window = x_pad[n, c_in_start:c_in_end, h_start:h_end:dh,
                                       w_start:w_end:dw]  # (C_in // groups, kH, kW)
                        grad = grad_y[n, o, i, j]
                        if need_w:
                            grad_weight[o] += grad * window
                        if need_x:
                            grad_x_pad[n, c_in_start:c_in_end, h_start:h_end:dh,
                                       w_start:w_end:dw] += grad * weight[o]
    grad_x = grad_x_pad[:, :, ph : ph + H, pw : pw + W].copy()  # (N, C_in, H, W)
    grad_bias = grad_y.sum(axis=(0, 2, 3))  # (C_out,)
    return ConvGrads(grad_x if need_x else None, grad_weight if need_w else None,
                     grad_bias if need_b else None)


def conv_transpose2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, spec: ConvSpec
) -> np.ndarray:
    """Transposed convolution, the scatter form: each input pixel stamps the kernel onto y.

    Input pixel ``x[n, c, i, j]`` adds ``x[n, c, i, j] * weight[c]`` (the ``(C_out //
    groups, kH, kW)`` kernel stack of input channel ``c``) onto the output channels of its
    group, at rows ``i*sh + a*dh`` and columns ``j*sw + b*dw`` of the padded output
    (``sh = stride_h``, ``dh = dil_h``, ...); stamps overlap where ``stride < dilation*(k -
    1) + 1`` and add up. Then ``padding`` is cropped from every side: the padded output has
    ``H_y + 2*pad_h`` rows, of which the last ``output_padding`` no stamp reaches. Along
    each axis (:func:`kernels.common.conv_transpose_output_size`)::

        H_y = (H - 1)*stride_h - 2*pad_h + dil_h*(kH - 1) + output_padding_h + 1

    This is exactly :func:`conv2d_backward`'s grad_x, line for line: that loop runs over
    the conv's outputs ``(i, j)`` and adds ``grad_y[n, o, i, j] * weight[o]`` onto the
    window ``(i*sh : i*sh + dh*(kH - 1) + 1 : dh, ...)`` of ``grad_x_pad``, over the input
    channels of ``o``'s group, then crops the padding. Rename the conv's ``grad_y`` to ``x``,
    its ``o`` to ``c`` and its ``grad_x`` to ``y``, and it is the loop below. So
    ``conv_transpose2d(x, weight) == conv2d_backward(x, z, weight).grad_x`` for a ``z`` of
    y's shape, with the same weight (``C_in`` of the transposed conv is the conv's ``C_out``)
    and the same stride, padding, dilation and groups; ``spec`` is that conv's
    :class:`~kernels.common.ConvSpec` (:func:`kernels.common.conv_transpose_spec`), and it
    is why a transposed convolution is the layer that upsamples: a stride-2 conv halves the
    image, so its backward doubles it. ``output_padding`` is in the spec's ``H``: the conv
    that gives back ``H`` rows may have read up to ``stride - 1`` more rows, and these are
    they.

    Parameters
    ----------
    x : (N, C_in, H, W)
        ``spec.y_shape``: x plays the conv's output (its grad_y).
    weight : (C_in, C_out // groups, kH, kW)
        ``spec.weight_shape``, as PyTorch's ``ConvTranspose2d.weight``.
    bias : (C_out,) or None
    spec : ConvSpec
        The conv whose grad_x this is: ``spec.x_shape`` is y's shape ``(N, C_out, H_y,
        W_y)``, ``spec.C_out`` is ``C_in``, ``spec.H_out`` is ``H``.

    Returns
    -------
    y : (N, C_out, H_y, W_y)
        ``spec.x_shape``.
    """
    N, groups, H, W = spec.N, spec.groups, spec.H_out, spec.W_out
    kH, kW = spec.kH, spec.kW
    sh, sw = spec.stride_h, spec.stride_w
    ph, pw = spec.pad_h, spec.pad_w
    dh, dw = spec.dil_h, spec.dil_w
    C_in_g = spec.C_out // groups  # the transposed conv's input channels per group
    C_out_g = spec.C_in // groups  # its output channels per group

    y_pad = np.zeros((N, spec.C_in, spec.H_pad, spec.W_pad), x.dtype)  # (N, C_out, H_y+2ph, ..)
    for n in range(N):
        for g in range(groups):
            o_start, o_end = g * C_out_g, (g + 1) * C_out_g  # this group's output channels
            for c in range(g * C_in_g, (g + 1) * C_in_g):
                for i in range(H):
                    h_start = i * sh
                    h_end = h_start + dh * (kH - 1) + 1
                    for j in range(W):
                        w_start = j * sw
                        w_end = w_start + dw * (kW - 1) + 1
                        y_pad[n, o_start:o_end, h_start:h_end:dh,
                              w_start:w_end:dw] += x[n, c, i, j] * weight[c]  # the stamp
    y = y_pad[:, :, ph : ph + spec.H, pw : pw + spec.W].copy()  # (N, C_out, H_y, W_y)
    if bias is not None:
        y += bias.reshape(-1, 1, 1)  # (C_out, 1, 1)
    return y


def conv_transpose2d_backward(
    grad_y: np.ndarray, x: np.ndarray, weight: np.ndarray, spec: ConvSpec
) -> ConvGrads:
    """Gradients of :func:`conv_transpose2d`: its stamping loops, run backwards.

    Each stamp added ``x[n, c, i, j] * weight[c]`` onto a window of the padded output, so
    with ``window`` that window of the zero-padded ``grad_y``:

    - ``grad_x[n, c, i, j] = sum(window * weight[c])``: a window read with the kernel, which
      is :func:`conv2d` of ``grad_y`` (the transposed conv's backward is a convolution,
      as the convolution's backward is a transposed one);
    - ``grad_weight[c] += x[n, c, i, j] * window``: :func:`conv2d_backward`'s grad_weight
      with the roles of ``x`` and ``grad_y`` swapped;
    - ``grad_bias = grad_y.sum((0, 2, 3))``.

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
        ``grad_x : (N, C_in, H, W)``, ``grad_weight : (C_in, C_out // groups, kH, kW)``,
        ``grad_bias : (C_out,)``.
    """
    N, groups, H, W = spec.N, spec.groups, spec.H_out, spec.W_out
    kH, kW = spec.kH, spec.kW
    sh, sw = spec.stride_h, spec.stride_w
    ph, pw = spec.pad_h, spec.pad_w
    dh, dw = spec.dil_h, spec.dil_w
    C_in_g = spec.C_out // groups  # the transposed conv's input channels per group
    C_out_g = spec.C_in // groups  # its output channels per group

    grad_y_pad = np.pad(grad_y, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_out, H_pad, ..)
    grad_x = np.zeros_like(x)  # (N, C_in, H, W)
    grad_weight = np.zeros_like(weight)  # (C_in, C_out // groups, kH, kW)
    for n in range(N):
        for g in range(groups):
            o_start, o_end = g * C_out_g, (g + 1) * C_out_g
            for c in range(g * C_in_g, (g + 1) * C_in_g):
                for i in range(H):
                    h_start = i * sh
                    h_end = h_start + dh * (kH - 1) + 1
                    for j in range(W):
                        w_start = j * sw
                        w_end = w_start + dw * (kW - 1) + 1
                        window = grad_y_pad[n, o_start:o_end, h_start:h_end:dh,
                                            w_start:w_end:dw]  # (C_out // groups, kH, kW)
                        grad_x[n, c, i, j] = (window * weight[c]).sum()
                        grad_weight[c] += x[n, c, i, j] * window
    grad_bias = grad_y.sum(axis=(0, 2, 3))  # (C_out,)
    return ConvGrads(grad_x, grad_weight, grad_bias)


# --------------------------------------------------------------------------- 7. max pooling


def _max_pool_argmax(
    x_nc: np.ndarray, h_start: int, w_start: int, spec: PoolSpec
) -> tuple[int, int] | None:
    """Where the maximum of one pooling window is, by PyTorch's rule; ``None`` if nowhere.

    ``x_nc : (H, W)``, one channel of one image; ``h_start, w_start`` is the window's top-left
    corner in *unpadded* coordinates (negative inside the top/left padding). The window's
    taps are ``(h_start + a*dh, w_start + b*dw)`` for ``a < kH``, ``b < kW`` (``dh =
    spec.dil_h``, ``dw = spec.dil_w``). Taps in the padding count as ``-inf``, so they are
    skipped. The scan is row-major and keeps the first in-bounds tap, then moves to a later
    tap only when it is strictly greater (so a tie stays with the FIRST maximum) or is NaN
    (so NaN propagates, and of several NaNs the LAST one wins).
    """
    H, W, kH, kW = spec.H, spec.W, spec.kH, spec.kW
    dh, dw = spec.dil_h, spec.dil_w
    max_val = -np.inf
    max_pos = None
    for a in range(kH):
        h = h_start + a * dh
        if not 0 <= h < H:
            continue  # padding (or past the input, in ceil mode): -inf never wins
        for b in range(kW):
            w = w_start + b * dw
            if not 0 <= w < W:
                continue
            val = x_nc[h, w]
            if max_pos is None or val > max_val or np.isnan(val):
                max_val, max_pos = val, (h, w)
    return max_pos


def max_pool2d(
    x: np.ndarray, spec: PoolSpec, *, return_indices: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """2-D max pooling, PyTorch's semantics to the element.

    ``spec`` (:class:`kernels.common.PoolSpec`) names the window ``kH, kW``, the stride
    ``stride_h, stride_w``, padding ``pad_h, pad_w``, dilation ``dil_h, dil_w``,
    ``ceil_mode``, and the output size, which the spec holds
    (:func:`kernels.common.pool_output_size` computed it once). Along each axis::

        H_out = 1 + (H + 2*pad_h - dil_h*(kH - 1) - 1) // stride_h

    rounded up instead of down in ``ceil_mode`` (a last, partial window is kept unless it
    would start in the right padding). In ceil mode a window may run past the padded input;
    its taps there, like the padding, are ignored (they count as ``-inf``).

    Window ``(i, j)`` starts at ``h_start = i*stride_h - pad_h`` (unpadded coordinates) and
    takes every ``dil_h``-th row; its maximum is found by :func:`_max_pool_argmax`: ties go
    to the first maximum in row-major order, NaN propagates. A window with no cell inside
    the input (possible only with dilation) gives ``-inf``, as in PyTorch.

    Parameters
    ----------
    x : (N, C, H, W)
    spec : PoolSpec
    return_indices : bool
        Also return where each maximum is, as PyTorch's ``return_indices=True``.

    Returns
    -------
    y : (N, C, H_out, W_out)
    indices : (N, C, H_out, W_out) int64, only with ``return_indices``
        The flat position ``h*W + w`` of each window's maximum in its input plane; ``-1`` for
        a window with no cell inside the input. :func:`max_pool2d_backward` takes them back.
    """
    N, C, H_out, W_out, W = spec.N, spec.C, spec.H_out, spec.W_out, spec.W
    sh, sw = spec.stride_h, spec.stride_w
    ph, pw = spec.pad_h, spec.pad_w
    y = np.full(spec.y_shape, -np.inf, dtype=x.dtype)  # (N, C, H_out, W_out)
    indices = np.full(spec.y_shape, -1, dtype=np.int64)  # (N, C, H_out, W_out)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    pos = _max_pool_argmax(x[n, c], i * sh - ph, j * sw - pw, spec)
                    if pos is not None:
                        y[n, c, i, j] = x[n, c, pos[0], pos[1]]
                        indices[n, c, i, j] = pos[0] * W + pos[1]
    if return_indices:
        return y, indices
    return y


def max_pool2d_backward(
    grad_y: np.ndarray, x: np.ndarray, indices: np.ndarray | None, spec: PoolSpec
) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: each output's gradient goes to its window's maximum.

    Only the cell the forward pass picked (the first maximum on ties, the last NaN if any)
    receives ``grad_y[n, c, i, j]``; overlapping windows that pick the same cell add up.
    Which cell that is comes from ``indices`` when the forward returned them (PyTorch's way:
    no second search), else the search is run again on ``x``.

    Parameters
    ----------
    grad_y : (N, C, H_out, W_out)
    x : (N, C, H, W)
    indices : (N, C, H_out, W_out) int64 or None
        What ``max_pool2d(..., return_indices=True)`` returned, or None.
    spec : PoolSpec
        The forward's problem, as :func:`max_pool2d` takes it.

    Returns
    -------
    grad_x : (N, C, H, W)
    """
    N, C, H_out, W_out, W = spec.N, spec.C, spec.H_out, spec.W_out, spec.W
    sh, sw = spec.stride_h, spec.stride_w
    ph, pw = spec.pad_h, spec.pad_w
    grad_x = np.zeros_like(x)  # (N, C, H, W)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    if indices is not None:
                        k = indices[n, c, i, j]
                        pos = None if k < 0 else (k // W, k % W)
                    else:
                        pos = _max_pool_argmax(x[n, c], i * sh - ph, j * sw - pw, spec)
                    if pos is not None:
                        grad_x[n, c, pos[0], pos[1]] += grad_y[n, c, i, j]
    return grad_x


# --------------------------------------------------------------------------- 8. avg pooling


class _AvgWindow(NamedTuple):
    """One average-pooling window: the input cells it sums, and what the sum is divided by."""

    rows: slice  # input rows it covers, h_start:h_end clipped to the input
    cols: slice  # input columns it covers, w_start:w_end clipped to the input
    divisor: int  # PyTorch's divisor (kernels.common.avg_pool_divisor)


def _avg_pool_window(i: int, j: int, spec: PoolSpec) -> _AvgWindow:
    """Window ``(i, j)`` of average pooling: its cells inside the input, and its divisor.

    The returned rows and columns are the part of the window inside the real input (padding
    is zero, so only those cells add to the sum). The divisor follows PyTorch
    (:func:`kernels.common.avg_pool_divisor`): with ``count_include_pad`` the window's size
    clipped to the padded input, else the number of real cells, or ``divisor_override``.
    """
    H, W, kH, kW = spec.H, spec.W, spec.kH, spec.kW
    ph, pw = spec.pad_h, spec.pad_w
    h_start = i * spec.stride_h - ph  # unpadded coordinates: negative in the top padding
    w_start = j * spec.stride_w - pw
    divisor = avg_pool_divisor(h_start, w_start, spec)
    # clip to the input; in ceil mode the window may also run past the padded input
    h_end = min(h_start + kH, H)
    w_end = min(w_start + kW, W)
    return _AvgWindow(slice(max(h_start, 0), h_end), slice(max(w_start, 0), w_end), divisor)


def avg_pool2d(x: np.ndarray, spec: PoolSpec) -> np.ndarray:
    """2-D average pooling, PyTorch's semantics.

    Output size (held by the spec) as :func:`max_pool2d` with dilation 1. Each window's sum
    over the real input cells (padding adds zeros) is divided by a divisor that depends on
    the options: the window's size including padding (``count_include_pad=1``, but not
    counting cells past the padded input in ceil mode), the number of real cells (``0``), or
    ``divisor_override`` (when not 0). See :func:`_avg_pool_window`.

    Parameters
    ----------
    x : (N, C, H, W)
    spec : PoolSpec
        ``kH, kW``, ``stride_h, stride_w``, ``pad_h, pad_w``, ``ceil_mode``,
        ``count_include_pad``, ``divisor_override`` and ``H_out, W_out``.

    Returns
    -------
    y : (N, C, H_out, W_out)
    """
    N, C, H_out, W_out = spec.N, spec.C, spec.H_out, spec.W_out
    y = np.zeros(spec.y_shape, dtype=x.dtype)  # (N, C, H_out, W_out)
    for i in range(H_out):
        for j in range(W_out):
            window = _avg_pool_window(i, j, spec)
            for n in range(N):
                for c in range(C):
                    y[n, c, i, j] = x[n, c, window.rows, window.cols].sum() / window.divisor
    return y


def avg_pool2d_backward(grad_y: np.ndarray, spec: PoolSpec) -> np.ndarray:
    """Gradient of :func:`avg_pool2d`: each output's gradient, over its divisor, to its cells.

    ``y[n, c, i, j] = sum(window) / divisor``, so every real input cell of the window gets
    ``grad_y[n, c, i, j] / divisor``; overlapping windows add up. ``x`` is not needed: the
    spec has its shape.

    Parameters
    ----------
    grad_y : (N, C, H_out, W_out)
    spec : PoolSpec
        The forward's problem, as :func:`avg_pool2d` takes it.

    Returns
    -------
    grad_x : (N, C, H, W)
        ``spec.x_shape``, in ``grad_y``'s dtype.
    """
    N, C, H_out, W_out = spec.N, spec.C, spec.H_out, spec.W_out
    grad_x = np.zeros(spec.x_shape, dtype=grad_y.dtype)  # (N, C, H, W)
    for i in range(H_out):
        for j in range(W_out):
            window = _avg_pool_window(i, j, spec)
            for n in range(N):
                for c in range(C):
                    grad_x[n, c, window.rows, window.cols] += grad_y[n, c, i, j] / window.divisor
    return grad_x


# --------------------------------------------------------------------------- 9. adaptive


def adaptive_avg_pool2d(x: np.ndarray, spec: AdaptivePoolSpec) -> np.ndarray:
    """Adaptive average pooling: the window sizes adapt so the output has a fixed size.

    Output row ``i`` averages input rows ``[floor(i*H/H_out), ceil((i+1)*H/H_out))``
    (:func:`kernels.common.adaptive_bounds`), columns likewise. Windows may differ in size
    and neighbours may overlap by one cell; ``H_out > H`` repeats rows.

    Parameters
    ----------
    x : (N, C, H, W)
    spec : AdaptivePoolSpec
        ``H_out, W_out`` is the output size asked for.

    Returns
    -------
    y : (N, C, H_out, W_out)
    """
    N, C, H, W, H_out, W_out = spec.N, spec.C, spec.H, spec.W, spec.H_out, spec.W_out
    y = np.zeros(spec.y_shape, dtype=x.dtype)  # (N, C, H_out, W_out)
    for i in range(H_out):
        h_start, h_end = adaptive_bounds(i, H, H_out)
        for j in range(W_out):
            w_start, w_end = adaptive_bounds(j, W, W_out)
            count = (h_end - h_start) * (w_end - w_start)
            for n in range(N):
                for c in range(C):
                    y[n, c, i, j] = x[n, c, h_start:h_end, w_start:w_end].sum() / count
    return y


def adaptive_avg_pool2d_backward(grad_y: np.ndarray, spec: AdaptivePoolSpec) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d`: each cell of a window gets ``grad / count``.

    Parameters
    ----------
    grad_y : (N, C, H_out, W_out)
    spec : AdaptivePoolSpec
        The forward's problem; ``x`` is not needed, the spec has its shape.

    Returns
    -------
    grad_x : (N, C, H, W)
        ``spec.x_shape``, in ``grad_y``'s dtype.
    """
    N, C, H, W, H_out, W_out = spec.N, spec.C, spec.H, spec.W, spec.H_out, spec.W_out
    grad_x = np.zeros(spec.x_shape, dtype=grad_y.dtype)  # (N, C, H, W)
    for i in range(H_out):
        h_start, h_end = adaptive_bounds(i, H, H_out)
        for j in range(W_out):
            w_start, w_end = adaptive_bounds(j, W, W_out)
            count = (h_end - h_start) * (w_end - w_start)
            for n in range(N):
                for c in range(C):
                    grad_x[n, c, h_start:h_end, w_start:w_end] += grad_y[n, c, i, j] / count
    return grad_x


# --------------------------------------------------------------------------- 10. pad


def _source_index(i: int, size: int, before: int, after: int, mode: int) -> int:
    """Which input index output index ``i`` of one axis reads; ``-1`` for a padding cell.

    The axis has ``size`` input cells and ``before`` / ``after`` padding cells on its two
    sides (a negative pad crops). Output ``i`` lies at ``k = i - before`` in input
    coordinates, and each mode maps a ``k`` outside ``[0, size)`` back inside (``size = 4``,
    ``before = after = 2``, the output reads)::

        constant   -  -  0  1  2  3  -  -     (-: the fill value)
        reflect    2  1  0  1  2  3  2  1     mirrored about cells 0 and size - 1
        replicate  0  0  0  1  2  3  3  3     clamped to [0, size - 1]
        circular   2  3  0  1  2  3  0  1     wrapped around

    Circular padding wraps around the input *after* the negative pads have cropped it, as
    PyTorch does: the kept cells are ``[start, start + kept)`` and output ``i`` reads kept
    cell ``(i - max(before, 0)) mod kept``. (Reflect and replicate mirror and clamp about the
    uncropped input, also as PyTorch does.)
    """
    k = i - before
    if mode == PAD_CONSTANT:
        return k if 0 <= k < size else -1
    if mode == PAD_REFLECT:
        return size - 1 - abs(size - 1 - abs(k))
    if mode == PAD_REPLICATE:
        return min(max(k, 0), size - 1)
    start = max(-before, 0)  # PAD_CIRCULAR
    kept = size + min(before, 0) + min(after, 0)
    return start + (i - max(before, 0)) % kept


def _row_source(i: int, spec: PadSpec) -> int:
    """:func:`_source_index` of output row ``i``."""
    return _source_index(i, spec.H, spec.pad_top, spec.pad_bottom, spec.mode)


def _col_source(j: int, spec: PadSpec) -> int:
    """:func:`_source_index` of output column ``j``."""
    return _source_index(j, spec.W, spec.pad_left, spec.pad_right, spec.mode)


def pad(x: np.ndarray, value: float, spec: PadSpec) -> np.ndarray:
    """Pad (or crop) the last two axes, PyTorch's ``F.pad`` with ``(left, right, top, bottom)``.

    ``y[n, c, i, j] = x[n, c, h, w]`` where ``h``, ``w`` are the input row and column that
    output row ``i`` and column ``j`` read (:func:`_source_index`), or ``value`` where either
    of them is a constant-padding cell. Every output cell is a copy of one input cell or the
    fill value: padding computes nothing, it only chooses what to copy.

    Parameters
    ----------
    x : (N, C, H, W)
    value : float
        The fill value of ``mode="constant"`` (unused by the other modes).
    spec : PadSpec
        ``pad_left, pad_right, pad_top, pad_bottom``, ``mode`` and ``H_out, W_out``:
        ``H_out = H + pad_top + pad_bottom``, ``W_out = W + pad_left + pad_right``.

    Returns
    -------
    y : (N, C, H_out, W_out)
    """
    y = np.empty(spec.y_shape, dtype=x.dtype)  # (N, C, H_out, W_out)
    for i in range(spec.H_out):
        h = _row_source(i, spec)
        for j in range(spec.W_out):
            w = _col_source(j, spec)
            y[:, :, i, j] = value if h < 0 or w < 0 else x[:, :, h, w]
    return y


def pad_backward(grad_y: np.ndarray, spec: PadSpec) -> np.ndarray:
    """Gradient of :func:`pad`: each output cell's gradient goes back to the cell it copied.

    ``y[n, c, i, j] = x[n, c, h, w]``, so ``grad_x[n, c, h, w]`` is the sum of ``grad_y`` over
    every output cell that reads ``(h, w)``: one for a cell in the middle, several for a cell
    that reflect, replicate or circular padding copies into the border (replicate's corner
    cell receives a whole corner block of gradients). Constant-padding cells copy no input,
    and input cells cropped by a negative pad are read by no output: their gradient is 0.

    Parameters
    ----------
    grad_y : (N, C, H_out, W_out)
    spec : PadSpec
        The forward's problem; ``x`` is not needed, the spec has its shape.

    Returns
    -------
    grad_x : (N, C, H, W)
        ``spec.x_shape``, in ``grad_y``'s dtype.
    """
    grad_x = np.zeros(spec.x_shape, dtype=grad_y.dtype)  # (N, C, H, W)
    for i in range(spec.H_out):
        h = _row_source(i, spec)
        for j in range(spec.W_out):
            w = _col_source(j, spec)
            if h >= 0 and w >= 0:
                grad_x[:, :, h, w] += grad_y[:, :, i, j]
    return grad_x


# --------------------------------------------------------------------------- 11. max unpooling


def max_unpool2d(x: np.ndarray, indices: np.ndarray, spec: UnpoolSpec) -> np.ndarray:
    """Max unpooling: put each value back where max pooling found it, zeros elsewhere.

    ``y[n, c].flat[indices[n, c, i, j]] = x[n, c, i, j]``: ``indices`` are the flat
    ``h*W_out + w`` positions that ``max_pool2d(..., return_indices=True)`` returned (the
    pooled-from plane is the output plane here). Every other output cell is 0. Two inputs
    may name the same cell (overlapping pooling windows that share a maximum, or any
    indices a caller builds): the loop runs in row-major input order and the LAST write
    wins. PyTorch calls duplicate indices nondeterministic: its CPU kernel writes in that
    order within each of its threads' chunks (torch 2.13: indices ``[[0, 0], [5, 5]]`` of
    ``x = [[1, 2], [3, 4]]`` give ``y.flat[0] = 2``, ``y.flat[5] = 4``, as here), but a
    pair split between two threads may land either way. The output size comes from the
    spec: PyTorch's default ``(H - 1)*stride - 2*padding + kernel`` per axis
    (:func:`kernels.common.unpool_output_size`), or the caller's ``output_size``.

    Parameters
    ----------
    x : (N, C, H, W)
    indices : (N, C, H, W) int64
        Each in ``[0, H_out*W_out)`` (the functional layer checks it).
    spec : UnpoolSpec

    Returns
    -------
    y : (N, C, H_out, W_out)
    """
    W_out = spec.W_out
    y = np.zeros(spec.y_shape, dtype=x.dtype)  # (N, C, H_out, W_out)
    for n in range(spec.N):
        for c in range(spec.C):
            for i in range(spec.H):
                for j in range(spec.W):
                    k = indices[n, c, i, j]
                    y[n, c, k // W_out, k % W_out] = x[n, c, i, j]
    return y


def max_unpool2d_backward(grad_y: np.ndarray, indices: np.ndarray, spec: UnpoolSpec) -> np.ndarray:
    """Gradient of :func:`max_unpool2d`: each input reads the gradient of the cell it went to.

    ``grad_x[n, c, i, j] = grad_y[n, c].flat[indices[n, c, i, j]]``, a gather. With
    duplicate indices every input that names a cell gets that cell's gradient, also the ones
    the forward overwrote, as PyTorch's autograd computes it (its backward is this same
    gather; measured on torch 2.13). ``x`` is not needed.

    Parameters
    ----------
    grad_y : (N, C, H_out, W_out)
    indices : (N, C, H, W) int64
    spec : UnpoolSpec

    Returns
    -------
    grad_x : (N, C, H, W)
        ``spec.x_shape``, in ``grad_y``'s dtype.
    """
    W_out = spec.W_out
    grad_x = np.zeros(spec.x_shape, dtype=grad_y.dtype)  # (N, C, H, W)
    for n in range(spec.N):
        for c in range(spec.C):
            for i in range(spec.H):
                for j in range(spec.W):
                    k = indices[n, c, i, j]
                    grad_x[n, c, i, j] = grad_y[n, c, k // W_out, k % W_out]
    return grad_x


# --------------------------------------------------------------------------- 12. adaptive max


def _adaptive_max_argmax(x_nc: np.ndarray, i: int, j: int, spec: AdaptivePoolSpec):
    """``(h, w)`` of the maximum of adaptive window ``(i, j)`` in ``x_nc : (H, W)``.

    The window is :func:`kernels.common.adaptive_bounds` along each axis. PyTorch's scan:
    start at the window's first cell with ``-inf``, go row-major, move on when a value is
    strictly greater (ties stay with the FIRST maximum) or NaN (the LAST NaN wins). A
    window of ``-inf`` only keeps its first cell.
    """
    h_start, h_end = adaptive_bounds(i, spec.H, spec.H_out)
    w_start, w_end = adaptive_bounds(j, spec.W, spec.W_out)
    max_val, max_pos = -np.inf, (h_start, w_start)
    for h in range(h_start, h_end):
        for w in range(w_start, w_end):
            val = x_nc[h, w]
            if val > max_val or np.isnan(val):
                max_val, max_pos = val, (h, w)
    return max_pos


def adaptive_max_pool2d(
    x: np.ndarray, spec: AdaptivePoolSpec, *, return_indices: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Adaptive max pooling: :func:`adaptive_avg_pool2d`'s windows, :func:`max_pool2d`'s rule.

    Output row ``i`` takes the maximum over input rows ``[floor(i*H/H_out),
    ceil((i+1)*H/H_out))``, columns likewise; windows may overlap by one cell. Ties go to
    the first maximum in row-major window order, NaN propagates
    (:func:`_adaptive_max_argmax`).

    Parameters
    ----------
    x : (N, C, H, W)
    spec : AdaptivePoolSpec
    return_indices : bool
        Also return the flat ``h*W + w`` of each maximum, as PyTorch's.

    Returns
    -------
    y : (N, C, H_out, W_out)
    indices : (N, C, H_out, W_out) int64, only with ``return_indices``
    """
    y = np.empty(spec.y_shape, dtype=x.dtype)  # (N, C, H_out, W_out)
    indices = np.empty(spec.y_shape, dtype=np.int64)  # (N, C, H_out, W_out)
    for n in range(spec.N):
        for c in range(spec.C):
            for i in range(spec.H_out):
                for j in range(spec.W_out):
                    h, w = _adaptive_max_argmax(x[n, c], i, j, spec)
                    y[n, c, i, j] = x[n, c, h, w]
                    indices[n, c, i, j] = h * spec.W + w
    if return_indices:
        return y, indices
    return y


def adaptive_max_pool2d_backward(
    grad_y: np.ndarray, x: np.ndarray, indices: np.ndarray | None, spec: AdaptivePoolSpec
) -> np.ndarray:
    """Gradient of :func:`adaptive_max_pool2d`: each output's gradient to its window's maximum.

    As :func:`max_pool2d_backward`: the cell comes from ``indices`` when the forward
    returned them, else from the search run again on ``x``; overlapping windows that pick
    the same cell add up.

    Parameters
    ----------
    grad_y : (N, C, H_out, W_out)
    x : (N, C, H, W)
    indices : (N, C, H_out, W_out) int64 or None
    spec : AdaptivePoolSpec

    Returns
    -------
    grad_x : (N, C, H, W)
    """
    grad_x = np.zeros(spec.x_shape, dtype=grad_y.dtype)  # (N, C, H, W)
    for n in range(spec.N):
        for c in range(spec.C):
            for i in range(spec.H_out):
                for j in range(spec.W_out):
                    if indices is not None:
                        h, w = divmod(int(indices[n, c, i, j]), spec.W)
                    else:
                        h, w = _adaptive_max_argmax(x[n, c], i, j, spec)
                    grad_x[n, c, h, w] += grad_y[n, c, i, j]
    return grad_x


# --------------------------------------------------------------------------- relu


def relu(x):
    """``y = max(x, 0)``, one element at a time. x : any shape -> y : that shape and dtype.

    The test is PyTorch's ``x <= 0``: a NaN is not ``<= 0``, so it passes through as NaN.
    """
    y = np.empty_like(x)
    for index, v in np.ndenumerate(x):
        y[index] = 0.0 if v <= 0 else v
    return y


def relu_backward(grad_y, x):
    """grad_x of :func:`relu`: ``grad_y`` where ``x > 0`` (or NaN), else 0 (0 at ``x == 0``).

    grad_y, x : one shape -> grad_x : that shape, in ``grad_y``'s dtype.
    """
    grad_x = np.empty_like(grad_y)
    for index, v in np.ndenumerate(x):
        grad_x[index] = 0.0 if v <= 0 else grad_y[index]
    return grad_x


# --------------------------------------------------------------------------- losses
# log_softmax, nll_loss and cross_entropy over 2-D (N, C) rows, as loops: a row's maximum,
# its sum of exponentials, then each element. The max is subtracted before ``exp``, so every
# ``exp`` argument is <= 0 and nothing overflows (PyTorch's order of operations).


def _row_log_sum_exp(x, n):
    """``(m, log(sum_k exp(x[n, k] - m)))`` of row ``n``, ``m`` its maximum, in x's dtype."""
    m = x[n, 0]
    for k in range(1, x.shape[1]):
        m = max(m, x[n, k])
    total = x.dtype.type(0)
    for k in range(x.shape[1]):
        total += np.exp(x[n, k] - m)
    return m, np.log(total)


def log_softmax(x):
    """``y[n, k] = x[n, k] - m_n - log(sum_j exp(x[n, j] - m_n))``, ``m_n`` row n's maximum.

    x : (N, C) -> y : (N, C), x's dtype (the class axis is the last; the functional layer
    checks ``dim``).
    """
    y = np.empty_like(x)
    for n in range(x.shape[0]):
        m, lse = _row_log_sum_exp(x, n)
        for k in range(x.shape[1]):
            y[n, k] = x[n, k] - m - lse
    return y


def log_softmax_backward(grad_y, y):
    """grad_x of :func:`log_softmax`, from its output: ``grad_y - exp(y) * sum(grad_y)``.

    grad_y, y : (N, C) -> grad_x : (N, C); the sum is over row n of grad_y.
    """
    grad_x = np.empty_like(grad_y)
    for n in range(y.shape[0]):
        total = grad_y.dtype.type(0)
        for k in range(y.shape[1]):
            total += grad_y[n, k]
        for k in range(y.shape[1]):
            grad_x[n, k] = grad_y[n, k] - np.exp(y[n, k]) * total
    return grad_x


def nll_loss(logp, target, spec):
    """``-(sum_n logp[n, target[n]]) / spec.divisor``: a 0-d array of logp's dtype.

    logp : (N, C) log-probabilities; target : (N,) int64 in ``[0, C)``; spec : LossSpec.
    """
    total = logp.dtype.type(0)
    for n in range(spec.N):
        total += logp[n, target[n]]
    return np.array(-total / logp.dtype.type(spec.divisor), logp.dtype)


def nll_loss_backward(logp, target, grad, spec):
    """grad_logp : (N, C): ``-grad / divisor`` at ``(n, target[n])``, 0 elsewhere.

    logp (N, C) gives the shape and dtype; grad : float, the loss's upstream gradient.
    """
    grad_logp = np.zeros_like(logp)
    value = logp.dtype.type(-spec.grad_scale(grad))
    for n in range(spec.N):
        grad_logp[n, target[n]] = value
    return grad_logp


def cross_entropy(logits, target, spec):
    """``sum_n (lse_n - logits[n, target[n]]) / spec.divisor``, 0-d, as nll of log_softmax.

    logits : (N, C); target : (N,) int64 in ``[0, C)``; ``lse_n`` is row n's
    log-sum-exp, ``m_n + log(sum_k exp(logits[n, k] - m_n))``.
    """
    total = logits.dtype.type(0)
    for n in range(spec.N):
        m, lse = _row_log_sum_exp(logits, n)
        total += logits[n, target[n]] - m - lse  # log_softmax at the target
    return np.array(-total / logits.dtype.type(spec.divisor), logits.dtype)


def cross_entropy_backward(logits, target, grad, spec):
    """grad_logits (N, C) ``= (softmax(logits) - one_hot(target)) * grad / divisor``.

    The fused form: the gradient of nll_loss(log_softmax(logits)) in one pass, stable
    (``softmax = exp(logits - m - lse)``, every exponent <= 0).
    """
    scale = logits.dtype.type(spec.grad_scale(grad))
    grad_logits = np.empty_like(logits)
    for n in range(spec.N):
        m, lse = _row_log_sum_exp(logits, n)
        for k in range(spec.C):
            p = np.exp(logits[n, k] - m - lse)
            grad_logits[n, k] = (p - 1 if k == target[n] else p) * scale
    return grad_logits


# --------------------------------------------------------------------------- dropout


def dropout_mask(shape, spec):
    """The keep mask (``shape``, uint8: 1 kept, 0 dropped) of the random seed ``spec.random_seed``.

    One uniform ``u`` in ``[0, 1)`` per element from NumPy's ``Generator`` (PCG64) seeded with
    ``spec.random_seed``, in C order; an element is kept when ``u < spec.keep``. Every CPU backend
    draws its mask here, so they agree with each other for one random seed.
    """
    u = np.random.default_rng(spec.random_seed).random(shape)
    return (u < spec.keep).astype(np.uint8)


def _dropout_scale(dtype, spec):
    """What a kept element is multiplied by: ``1 / (1 - p)`` in ``dtype``, 0 when ``p == 1``.

    PyTorch divides its 1.0 noise by ``1 - p`` in the tensor's dtype; so does this.
    """
    return dtype.type(0) if spec.keep == 0.0 else dtype.type(1) / dtype.type(spec.keep)


def dropout(x, spec):
    """``y = x * noise`` with ``noise = mask / (1 - p)``; returns ``(y, mask)``.

    x : any shape -> y : that shape and dtype, mask : that shape, uint8 (:func:`dropout_mask`).
    """
    mask = dropout_mask(x.shape, spec)
    scale = _dropout_scale(x.dtype, spec)
    zero = x.dtype.type(0)
    y = np.empty_like(x)
    for index, keep in np.ndenumerate(mask):
        y[index] = x[index] * (scale if keep else zero)
    return y, mask


def dropout_backward(grad_y, mask, spec):
    """grad_x = ``grad_y * noise``, the noise of :func:`dropout` rebuilt from ``mask``."""
    scale = _dropout_scale(grad_y.dtype, spec)
    zero = grad_y.dtype.type(0)
    grad_x = np.empty_like(grad_y)
    for index, keep in np.ndenumerate(mask):
        grad_x[index] = grad_y[index] * (scale if keep else zero)
    return grad_x


# --------------------------------------------------------------------------- optimizer updates
# One element at a time, in place, in the parameters' dtype; the formulas of SgdHyper and
# AdamHyper (kernels.common), which are torch.optim's single-tensor updates.


def sgd_step(param, grad, buf, hyper, *, first=False):
    """One ``torch.optim.SGD`` step, in place on ``param`` and ``buf``.

    param, grad, buf : one shape (flat views are written through); hyper : SgdHyper; first :
    True on the first step (``buf`` becomes ``d``). ``buf`` is untouched when momentum is 0.
    """
    T = param.dtype.type
    lr, mu, wd = T(hyper.lr), T(hyper.momentum), T(hyper.weight_decay)
    damp = T(1.0 - hyper.dampening)
    p, g, b = param.reshape(-1), grad.reshape(-1), buf.reshape(-1)
    for i in range(p.shape[0]):
        d = g[i]
        if hyper.weight_decay != 0:
            d = d + wd * p[i]
        if hyper.momentum != 0:
            b[i] = d if first else mu * b[i] + damp * d
            d = d + mu * b[i] if hyper.nesterov else b[i]
        p[i] = p[i] - lr * d


def _lerp(start, end, weight):
    """PyTorch's ``lerp``: ``start + w * (end - start)``, from the end when ``w >= 0.5``."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def adam_step(param, grad, m, v, v_max, hyper):
    """One ``torch.optim.Adam`` (or AdamW, ``hyper.decoupled``) step, in place.

    param, grad, m, v : one shape; v_max : that shape when ``hyper.amsgrad``, else None;
    hyper : AdamHyper of this step. m, v (and v_max) start as zeros, as PyTorch's state.
    """
    T = param.dtype.type
    lr_wd, wd = T(1.0 - hyper.lr * hyper.weight_decay), T(hyper.weight_decay)
    w1, b2, c2 = T(1.0 - hyper.beta1), T(hyper.beta2), T(1.0 - hyper.beta2)
    step_size, bias2_sqrt, eps = T(hyper.step_size), T(hyper.bias2_sqrt), T(hyper.eps)
    p, g, m_, v_ = param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1)
    vm = v_max.reshape(-1) if hyper.amsgrad else None
    for i in range(p.shape[0]):
        d = g[i]
        if hyper.weight_decay != 0:
            if hyper.decoupled:
                p[i] = p[i] * lr_wd
            else:
                d = d + wd * p[i]
        m_[i] = _lerp(m_[i], d, w1)
        v_[i] = v_[i] * b2 + c2 * d * d
        second = v_[i]
        if hyper.amsgrad:
            vm[i] = max(vm[i], second)
            second = vm[i]
        denom = np.sqrt(second) / bias2_sqrt + eps
        p[i] = p[i] + (-step_size) * (m_[i] / denom)


# --------------------------------------------------------------------------- sigmoid, tanh, add


def _sigmoid(v: float) -> float:
    """``1 / (1 + exp(-v))`` with ``exp`` of a non-positive number only, so it never overflows.

    ``v >= 0``: ``1 / (1 + exp(-v))``; ``v < 0`` (and NaN, for which ``v >= 0`` is false):
    ``exp(v) / (1 + exp(v))``, the same value multiplied by ``exp(v) / exp(v)``.
    """
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def sigmoid(x):
    """``y = 1 / (1 + exp(-x))``, one element at a time. x : any shape -> y : that shape."""
    y = np.empty_like(x)
    for index, v in np.ndenumerate(x):
        y[index] = _sigmoid(float(v))
    return y


def sigmoid_backward(grad_y, y):
    """grad_x of :func:`sigmoid` from its *output*: ``grad_y * (1 - y) * y``, as PyTorch's.

    grad_y, y : one shape -> grad_x : that shape.
    """
    grad_x = np.empty_like(grad_y)
    for index, s in np.ndenumerate(y):
        grad_x[index] = grad_y[index] * (1 - s) * s
    return grad_x


def tanh(x):
    """``y = tanh(x)``, one element at a time. x : any shape -> y : that shape."""
    y = np.empty_like(x)
    for index, v in np.ndenumerate(x):
        y[index] = math.tanh(float(v))
    return y


def tanh_backward(grad_y, y):
    """grad_x of :func:`tanh` from its output: ``grad_y * (1 - y * y)``, as PyTorch's.

    grad_y, y : one shape -> grad_x : that shape.
    """
    grad_x = np.empty_like(grad_y)
    for index, t in np.ndenumerate(y):
        grad_x[index] = grad_y[index] * (1 - t * t)
    return grad_x


def add(a, b):
    """``y = a + b`` for two arrays of one shape (a residual shortcut). -> y : that shape.

    No backward kernel: the gradient of a sum is ``grad_y`` for both operands.
    """
    y = np.empty_like(a)
    for index, v in np.ndenumerate(a):
        y[index] = v + b[index]
    return y


# --------------------------------------------------------------------------- leaky_relu, elu,
# gelu, silu, softmax, dropout2d, cat
# One element (one row) at a time, in Python floats, with PyTorch's formulas and its tests
# (``x > 0`` for LeakyReLU, ``x <= 0`` for ELU), so NaN and +-inf go where PyTorch sends them.

GELU_TANH_BETA = math.sqrt(2.0) * (2.0 / math.sqrt(math.pi)) * 0.5  # sqrt(2 / pi), PyTorch's
GELU_TANH_KAPPA = 0.044715
GELU_PDF_ALPHA = (2.0 / math.sqrt(math.pi)) * math.sqrt(0.5) * 0.5  # 1 / sqrt(2 pi), PyTorch's


def _map_elements(f, out_like, *arrays):
    """``out[i] = f(a[i], b[i], ...)`` over every index, in ``out_like``'s shape and dtype."""
    out = np.empty_like(out_like)
    for index in np.ndindex(out_like.shape):
        out[index] = f(*(float(a[index]) for a in arrays))
    return out


def leaky_relu(x, negative_slope):
    """``y = x if x > 0 else x * negative_slope``. x : any shape -> y : that shape."""
    return _map_elements(lambda v: v if v > 0 else v * negative_slope, x, x)


def leaky_relu_backward(grad_y, x, negative_slope):
    """grad_x = ``grad_y if x > 0 else grad_y * negative_slope``; one shape."""
    return _map_elements(lambda g, v: g if v > 0 else g * negative_slope, grad_y, grad_y, x)


def elu(x, alpha):
    """``y = alpha * expm1(x) if x <= 0 else x``. x : any shape -> y : that shape."""
    return _map_elements(lambda v: math.expm1(v) * alpha if v <= 0 else v, x, x)


def elu_backward(grad_y, x, alpha):
    """grad_x = ``grad_y * alpha * exp(x) if x <= 0 else grad_y``; one shape."""
    return _map_elements(lambda g, v: g * alpha * math.exp(v) if v <= 0 else g,
                         grad_y, grad_y, x)


def _gelu(v: float, approximate: str) -> float:
    if approximate == "tanh":
        inner = GELU_TANH_BETA * (v + GELU_TANH_KAPPA * v * v * v)
        return 0.5 * v * (1.0 + math.tanh(inner))
    return v * 0.5 * (1.0 + math.erf(v * math.sqrt(0.5)))


def _gelu_backward(g: float, v: float, approximate: str) -> float:
    if approximate == "tanh":
        inner = GELU_TANH_BETA * (v + GELU_TANH_KAPPA * v * v * v)
        t = math.tanh(inner)
        left_derivative = 0.5 * (1.0 + t)
        inner_derivative = GELU_TANH_BETA * (1.0 + 3.0 * GELU_TANH_KAPPA * v * v)
        return g * (left_derivative + 0.5 * v * (1.0 - t * t) * inner_derivative)
    cdf = 0.5 * (1.0 + math.erf(v * math.sqrt(0.5)))
    pdf = math.exp(-0.5 * v * v) * GELU_PDF_ALPHA
    return g * (cdf + v * pdf)


def gelu(x, approximate):
    """``y = x * Phi(x)`` (``approximate`` "none": erf; "tanh": the tanh formula)."""
    return _map_elements(lambda v: _gelu(v, approximate), x, x)


def gelu_backward(grad_y, x, approximate):
    """grad_x = ``grad_y * (Phi(x) + x * Phi'(x))``, PyTorch's formulas; one shape."""
    return _map_elements(lambda g, v: _gelu_backward(g, v, approximate), grad_y, grad_y, x)


def _exp(v: float) -> float:
    """``exp(v)``, +inf where it overflows (as C's ``exp``; Python's raises)."""
    return math.exp(v) if v < 709.0 else math.inf


def silu(x):
    """``y = x / (1 + exp(-x))``, PyTorch's expression. x : any shape -> y : that shape."""
    return _map_elements(lambda v: v / (1.0 + _exp(-v)), x, x)


def silu_backward(grad_y, x):
    """grad_x = ``grad_y * s * (1 + x * (1 - s))``, ``s = 1 / (1 + exp(-x))``; one shape."""

    def grad(g, v):
        s = 1.0 / (1.0 + _exp(-v))
        return g * s * (1.0 + v * (1.0 - s))

    return _map_elements(grad, grad_y, grad_y, x)


def softmax(x):
    """Softmax over axis 1 of x : (A, C, B) -> y : (A, C, B), one row ``x[a, :, b]`` at a time.

    The row's maximum is subtracted before ``exp``, so no exponent is positive; a row with
    +inf gives ``inf - inf = NaN``, as PyTorch's.
    """
    A, C, B = x.shape
    y = np.empty_like(x)
    for a in range(A):
        for b in range(B):
            m = float(x[a, 0, b])
            for c in range(1, C):
                v = float(x[a, c, b])
                if m == m and (v != v or v > m):  # a NaN wins, as in PyTorch's max
                    m = v
            total = 0.0
            for c in range(C):
                e = math.exp(float(x[a, c, b]) - m)
                y[a, c, b] = e
                total += e
            for c in range(C):
                y[a, c, b] = float(y[a, c, b]) / total
    return y


def softmax_backward(grad_y, y):
    """grad_x = ``y * (grad_y - sum_c grad_y * y)`` over axis 1 of (A, C, B) arrays."""
    A, C, B = y.shape
    grad_x = np.empty_like(grad_y)
    for a in range(A):
        for b in range(B):
            dot = 0.0
            for c in range(C):
                dot += float(grad_y[a, c, b]) * float(y[a, c, b])
            for c in range(C):
                grad_x[a, c, b] = float(y[a, c, b]) * (float(grad_y[a, c, b]) - dot)
    return grad_x


def dropout2d(x, spec):
    """Channel dropout of x : (R, L), one draw per row -> ``(y (R, L), mask (R,) uint8)``.

    The mask is :func:`dropout_mask` of shape ``(R,)``: the draws ``dropout`` makes for an
    ``(R,)`` array with that random seed.
    """
    mask = dropout_mask((x.shape[0],), spec)
    return dropout2d_backward(x, mask, spec), mask


def dropout2d_backward(grad_y, mask, spec):
    """``grad_x[r, l] = grad_y[r, l] * (1 / (1 - p) if mask[r] else 0)``; grad_y : (R, L)."""
    scale = _dropout_scale(grad_y.dtype, spec)
    zero = grad_y.dtype.type(0)
    grad_x = np.empty_like(grad_y)
    for r in range(grad_y.shape[0]):
        noise = scale if mask[r] else zero
        for col in range(grad_y.shape[1]):
            grad_x[r, col] = grad_y[r, col] * noise
    return grad_x


def cat(arrays):
    """Concatenate (A, C_i, B) arrays along axis 1 -> (A, sum C_i, B), element by element."""
    A, _, B = arrays[0].shape
    y = np.empty((A, sum(a.shape[1] for a in arrays), B), arrays[0].dtype)
    offset = 0
    for a in arrays:
        for i in range(A):
            for c in range(a.shape[1]):
                for j in range(B):
                    y[i, offset + c, j] = a[i, c, j]
        offset += a.shape[1]
    return y


def cat_backward(grad_y, sizes):
    """The slices of grad_y : (A, sum(sizes), B) along axis 1: a list of (A, C_i, B) copies."""
    out = []
    offset = 0
    for size in sizes:
        out.append(grad_y[:, offset:offset + size, :].copy())
        offset += size
    return out


# --------------------------------------------------------------------------- linear


def linear(x, weight, bias):
    """``y = x @ weight.T + bias`` as the loops of its definition.

    x : (M, K), weight : (O, K), bias : (O,) or None -> y : (M, O) with
    ``y[m, o] = bias[o] + sum_k x[m, k] * weight[o, k]``.
    """
    M, K = x.shape
    O = weight.shape[0]
    y = np.zeros((M, O), x.dtype)
    for m in range(M):
        for o in range(O):
            acc = x.dtype.type(0) if bias is None else bias[o]
            for k in range(K):
                acc += x[m, k] * weight[o, k]
            y[m, o] = acc
    return y


def linear_backward(grad_y, x, weight, *, needs_input_grad=(True, True, True)):
    """Gradients of :func:`linear`, each the loop of its chain rule.

    grad_y : (M, O), x : (M, K), weight : (O, K) -> ``LinearGrads(grad_x (M, K) with
    grad_x[m, k] = sum_o grad_y[m, o] * weight[o, k], grad_weight (O, K) with
    grad_weight[o, k] = sum_m grad_y[m, o] * x[m, k], grad_bias (O,) = sum_m grad_y[m, o])``;
    a gradient that ``needs_input_grad`` does not ask for is ``None``.
    """
    need_x, need_w, need_b = (bool(flag) for flag in needs_input_grad)
    M, K = x.shape
    O = weight.shape[0]
    grad_x = grad_w = grad_b = None
    if need_x:
        grad_x = np.zeros((M, K), x.dtype)
        for m in range(M):
            for k in range(K):
                for o in range(O):
                    grad_x[m, k] += grad_y[m, o] * weight[o, k]
    if need_w:
        grad_w = np.zeros((O, K), x.dtype)
        for o in range(O):
            for k in range(K):
                for m in range(M):
                    grad_w[o, k] += grad_y[m, o] * x[m, k]
    if need_b:
        grad_b = np.zeros(O, x.dtype)
        for o in range(O):
            for m in range(M):
                grad_b[o] += grad_y[m, o]
    return LinearGrads(grad_x, grad_w, grad_b)


# --------------------------------------------------------------------------- batch_norm


def batch_norm(x, running_mean, running_var, weight, bias, spec: BatchNormSpec):
    """Batch normalisation, one channel at a time, as ``torch.nn.functional.batch_norm``.

    x : (N, C, L) (``L`` the values per channel of one sample: ``H*W``), running_mean,
    running_var : (C,) or None (training only), weight, bias : (C,), ``spec`` the call's
    :class:`kernels.common.BatchNormSpec` -> ``BatchNormOutput(y (N, C, L), mean (C,),
    inv_std (C,))``.

    In training channel ``c``'s ``M = N*L`` values give ``mean = sum(x) / M`` and the biased
    ``var = sum((x - mean)**2) / M`` (two passes, as PyTorch), and the running estimates move
    toward the batch's: ``running = (1 - momentum) * running + momentum * batch``, with the
    *unbiased* ``sum((x - mean)**2) / (M - 1)`` for the variance. The sums are float64 for
    float32 inputs too, as PyTorch's CPU kernel accumulates: the mean of a constant channel
    is then that constant exactly, and ``x - mean`` exactly 0. In eval the running
    estimates are the statistics. Then, as PyTorch's CPU kernel, the scale and shift fold
    into one multiply-add per value: ``alpha = inv_std * weight``, ``beta = bias - mean *
    alpha``, ``y = x * alpha + beta``.
    """
    dt = x.dtype.type
    y = np.empty_like(x)
    mean, inv_std = np.empty(spec.C, x.dtype), np.empty(spec.C, x.dtype)
    M = spec.count
    for c in range(spec.C):
        if spec.training:
            total = np.float64(0)
            for n in range(spec.N):
                for i in range(spec.L):
                    total += x[n, c, i]
            m = total / M
            squares = np.float64(0)
            for n in range(spec.N):
                for i in range(spec.L):
                    squares += (x[n, c, i] - m) * (x[n, c, i] - m)
            momentum = spec.momentum
            if running_mean is not None:
                running_mean[c] = momentum * m + (1 - momentum) * running_mean[c]
            if running_var is not None:
                unbiased = squares / (M - 1)
                running_var[c] = momentum * unbiased + (1 - momentum) * running_var[c]
            mean[c], inv_std[c] = m, 1 / np.sqrt(squares / M + spec.eps)
        else:
            mean[c] = running_mean[c]
            inv_std[c] = dt(1) / np.sqrt(running_var[c] + dt(spec.eps))
        alpha = inv_std[c] * weight[c]
        beta = bias[c] - mean[c] * alpha
        for n in range(spec.N):
            for i in range(spec.L):
                y[n, c, i] = x[n, c, i] * alpha + beta
    return BatchNormOutput(y, mean, inv_std)


def batch_norm_backward(grad_y, x, weight, mean, inv_std, spec: BatchNormSpec):
    """Gradients of :func:`batch_norm`, one channel at a time, as PyTorch's CPU kernel.

    grad_y, x : (N, C, L), weight : (C,), mean, inv_std : (C,) as the forward returned them,
    ``spec`` the forward's -> ``ConvGrads(grad_x (N, C, L), grad_weight (C,), grad_bias
    (C,))`` (the conv record's fields: one gradient per argument).

    Per channel, with ``M = N*L``: ``grad_bias = sum(grad_y)``, ``dot = sum((x - mean) *
    grad_y)``, ``grad_weight = dot * inv_std`` (the sums in float64, as the forward's). In
    eval mean and inv_std are constants, so ``grad_x = grad_y * inv_std * weight``. In
    training they depend on x, and two paths subtract: the one through the mean
    (``grad_bias / M``) and the one through the variance (``(x - mean) * dot * inv_std**2 /
    M``), so ``grad_x = (grad_y - grad_bias / M - (x - mean) * dot * inv_std**2 / M) *
    inv_std * weight``.
    """
    grad_x = np.empty_like(x)
    grad_w, grad_b = np.empty(spec.C, x.dtype), np.empty(spec.C, x.dtype)
    M = spec.count
    for c in range(spec.C):
        m, s = np.float64(mean[c]), np.float64(inv_std[c])
        total, dot = np.float64(0), np.float64(0)
        for n in range(spec.N):
            for i in range(spec.L):
                total += grad_y[n, c, i]
                dot += (x[n, c, i] - m) * grad_y[n, c, i]
        grad_b[c], grad_w[c] = total, dot * s
        scale = s * weight[c]
        for n in range(spec.N):
            for i in range(spec.L):
                g = np.float64(grad_y[n, c, i])
                if spec.training:
                    g = g - total / M - (x[n, c, i] - m) * (dot * s * s / M)
                grad_x[n, c, i] = g * scale
    return ConvGrads(grad_x, grad_w, grad_b)


__all__ = [
    "adam_step",
    "batch_norm",
    "batch_norm_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "add",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "corr2d",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "cross_entropy",
    "cross_entropy_backward",
    "dropout",
    "dropout_backward",
    "dropout_mask",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "nll_loss",
    "nll_loss_backward",
    "pad",
    "pad_backward",
    "relu",
    "relu_backward",
    "sgd_step",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "cat",
    "cat_backward",
    "dropout2d",
    "dropout2d_backward",
    "elu",
    "elu_backward",
    "gelu",
    "gelu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "silu",
    "silu_backward",
    "softmax",
    "softmax_backward",
]
