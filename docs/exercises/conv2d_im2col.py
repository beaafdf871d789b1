r"""Exercise 6.3 (docs/06-im2col.md), starter: conv2d for ``groups=1`` as im2col, a strided
window view of the padded input and then one matrix product.

Fill in the body of ``conv2d``, then check it with

    minitorch-cnn check docs/exercises/conv2d_im2col.py:conv2d --op conv2d \
        --no-groups --no-padding-strings
"""

import numpy as np  # noqa: F401 (you will need it)


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
    raise NotImplementedError("conv2d: your code here")
