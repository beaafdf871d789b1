r"""Exercise 2.4 (docs/02-padding-stride-dilation.md), starter: conv2d with stride and
zero padding, every channel, no dilation and no groups yet.

Fill in the body of ``conv2d``, then check it with

    minitorch-cnn check docs/exercises/conv2d_strided.py:conv2d --op conv2d \
        --no-dilation --no-groups --no-padding-strings
"""

import numpy as np  # noqa: F401 (you will need it)


def _pair(v):
    """``2`` -> ``(2, 2)``; ``(1, 2)`` stays."""
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """``x : (N, C_in, H, W)``, ``weight : (C_out, C_in, kH, kW)``, ``bias : (C_out,)``.

    Returns ``y : (N, C_out, H_out, W_out)`` with ``H_out = (H + 2*pad_h - kH) // stride_h + 1``.
    """
    raise NotImplementedError("conv2d: your code here")
