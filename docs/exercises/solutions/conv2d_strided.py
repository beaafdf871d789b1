r"""Exercise 2.4 (docs/02-padding-stride-dilation.md), worked solution: conv2d with stride and
zero padding, every channel, no dilation and no groups yet.

Check it with

    minitorch-cnn check docs/exercises/solutions/conv2d_strided.py:conv2d --op conv2d \
        --no-dilation --no-groups --no-padding-strings
"""

import numpy as np


def _pair(v):
    """``2`` -> ``(2, 2)``; ``(1, 2)`` stays."""
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """``x : (N, C_in, H, W)``, ``weight : (C_out, C_in, kH, kW)``, ``bias : (C_out,)``.

    Returns ``y : (N, C_out, H_out, W_out)`` with ``H_out = (H + 2*pad_h - kH) // stride_h + 1``.
    """
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    C_out, _, kH, kW = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_in, H + 2ph, W + 2pw)
    H_out = (xp.shape[2] - kH) // sh + 1
    W_out = (xp.shape[3] - kW) // sw + 1
    y = np.zeros((x.shape[0], C_out, H_out, W_out), dtype=x.dtype)
    for h in range(H_out):
        for w in range(W_out):
            window = xp[:, :, h * sh:h * sh + kH, w * sw:w * sw + kW]  # (N, C_in, kH, kW)
            y[:, :, h, w] = np.einsum("nchw,ochw->no", window, weight)
    if bias is not None:
        y += bias[None, :, None, None]
    return y
