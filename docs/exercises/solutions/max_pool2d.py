"""Exercise 4.4 (docs/04-pooling.md), worked solution: max_pool2d with stride, padding,
dilation and ceil_mode, as PyTorch's.

Check it with

    minitorch-cnn check docs/exercises/solutions/max_pool2d.py:max_pool2d --op max_pool2d
"""

import numpy as np


def _pair(v):
    """``2`` -> ``(2, 2)``; ``(1, 2)`` stays."""
    return (v, v) if isinstance(v, int) else tuple(v)


def _out_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size; in ceil mode the last window must start inside."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """``x : (N, C, H, W)`` -> ``(N, C, H_out, W_out)``, the maximum of each window.

    Padding counts as -inf (it never wins); a NaN in a window makes its maximum NaN.
    ``stride=None`` means stride = kernel_size.
    """
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(kernel_size if stride is None else stride)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    H_out = _out_size(H, kh, sh, ph, dh, ceil_mode)
    W_out = _out_size(W, kw, sw, pw, dw, ceil_mode)
    # enough -inf cells below and to the right for the last (ceil-mode) window
    extra_h = max(0, (H_out - 1) * sh + dh * (kh - 1) + 1 - (H + 2 * ph))
    extra_w = max(0, (W_out - 1) * sw + dw * (kw - 1) + 1 - (W + 2 * pw))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)),
                constant_values=-np.inf)
    y = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    for h in range(H_out):
        for w in range(W_out):
            window = xp[:, :, h * sh:h * sh + dh * (kh - 1) + 1:dh,
                        w * sw:w * sw + dw * (kw - 1) + 1:dw]  # (N, C, kh, kw)
            y[:, :, h, w] = window.max(axis=(2, 3))  # np.max propagates NaN, as torch
    return y
