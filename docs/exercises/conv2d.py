"""Exercise 3.5 (docs/03-channels.md), starter: conv2d with everything PyTorch's has:
stride, padding (ints, pairs, "same", "valid"), dilation and groups.

Fill in the body of ``conv2d``, then check it with

    minitorch-cnn check docs/exercises/conv2d.py:conv2d --op conv2d
"""

import numpy as np  # noqa: F401 (you will need it)


def _pair(v):
    """``2`` -> ``(2, 2)``; ``(1, 2)`` stays."""
    return (v, v) if isinstance(v, int) else tuple(v)


def _padding(padding, kernel, dilation):
    """``((top, bottom), (left, right))``; "same" puts an odd extra cell at the bottom/right."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
        return tuple((t // 2, t - t // 2) for t in total)
    return tuple((p, p) for p in _pair(padding))


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``x : (N, C_in, H, W)``, ``weight : (C_out, C_in // groups, kH, kW)``, ``bias : (C_out,)``.

    Returns ``y : (N, C_out, H_out, W_out)``,
    ``H_out = (H + pad_top + pad_bottom - dilation_h * (kH - 1) - 1) // stride_h + 1``.
    Output channel ``o`` of group ``g = o // (C_out // groups)`` sees input channels
    ``g * C_g .. (g + 1) * C_g - 1`` only, ``C_g = C_in // groups``.
    """
    raise NotImplementedError("conv2d: your code here")
