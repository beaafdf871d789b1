r"""Exercise 6c.6 (docs/06c-winograd-direct.md), starter: conv2d for stride 1 and one
group with the direct path's "wide rows": no im2col, one matrix product per tap.

Fill in the body of ``conv2d``, then check it with

    minitorch-cnn check docs/exercises/conv2d_wide_rows.py:conv2d --op conv2d \
        --no-stride --no-groups --no-padding-strings
"""

import numpy as np  # noqa: F401 (you will need it)


def _pair(v):
    """``2`` -> ``(2, 2)``; ``(1, 2)`` stays."""
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, weight, bias=None, padding=0, dilation=1):
    """``x : (N, C_in, H, W)``, ``weight : (C_out, C_in, kH, kW)``, ``bias : (C_out,)``.

    Returns ``y : (N, C_out, H_out, W_out)``, stride 1:
    ``H_out = H + 2*pad_h - dil_h*(kH - 1)`` (``W_out`` likewise).
    The outputs are laid out at the padded input's row pitch ``Wp``, so each tap ``(i, j)``
    is one matrix product of its weights ``(C_out, C_in)`` with the flat padded planes
    shifted by ``i*dil_h*Wp + j*dil_w``; the ``Wp - W_out`` junk columns of each output row
    are dropped at the end. Loops over the taps only.
    """
    raise NotImplementedError("conv2d: your code here")
