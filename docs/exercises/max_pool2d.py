"""Exercise 4.4 (docs/04-pooling.md), starter: max_pool2d with stride, padding,
dilation and ceil_mode, as PyTorch's.

Fill in the body of ``max_pool2d``, then check it with

    minitorch-cnn check docs/exercises/max_pool2d.py:max_pool2d --op max_pool2d
"""

import numpy as np  # noqa: F401 (you will need it)


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
    raise NotImplementedError("max_pool2d: your code here")
