r"""Exercise 6.3 (docs/06-im2col.md), worked solution: conv2d for ``groups=1`` as im2col, a
strided window view of the padded input and then one matrix product.

Check it with

    minitorch-cnn check docs/exercises/solutions/conv2d_im2col.py:conv2d --op conv2d \
        --no-groups --no-padding-strings
"""

import numpy as np


def _pair(v):
    """``2`` -> ``(2, 2)``; ``(1, 2)`` stays."""
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """``x : (N, C_in, H, W)``, ``weight : (C_out, C_in, kH, kW)``, ``bias : (C_out,)``.

    Returns ``y : (N, C_out, H_out, W_out)``,
    ``H_out = (H + 2*pad_h - dil_h*(kH - 1) - 1) // stride_h + 1`` (``W_out`` likewise).
    No Python loop over samples, channels or pixels: a window view
    (``np.lib.stride_tricks.sliding_window_view``) and one ``np.einsum`` or ``@``.
    """
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    kh, kw = weight.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_in, H + 2ph, W + 2pw)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # a dilated window's extent
    windows = np.lib.stride_tricks.sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    # every stride-th window, every dil-th tap of it: (N, C_in, H_out, W_out, kH, kW), a view
    cols = windows[:, :, ::sh, ::sw, ::dh, ::dw]
    # the matrix product of the column matrix with the flattened weight, over (C_in, kH, kW)
    y = np.einsum("nchwij,ocij->nohw", cols, weight, optimize=True)  # (N, C_out, H_out, W_out)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y
