r"""Exercise 6c.6 (docs/06c-winograd-direct.md), worked solution: conv2d for stride 1 and one
group with the direct path's "wide rows": no im2col, one matrix product per tap.

Check it with

    minitorch-cnn check docs/exercises/solutions/conv2d_wide_rows.py:conv2d --op conv2d \
        --no-stride --no-groups --no-padding-strings
"""

import numpy as np


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
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    N, C_in = x.shape[:2]
    C_out, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C_in, Hp, Wp)
    Hp, Wp = xp.shape[2:]
    H_out, W_out = Hp - dh * (kh - 1), Wp - dw * (kw - 1)
    flat = xp.reshape(N, C_in, Hp * Wp)  # each padded plane's rows end to end, pitch Wp
    L = (H_out - 1) * Wp + W_out  # the outputs, at pitch Wp
    wide = np.zeros((N, C_out, L), np.result_type(x, weight))
    for i in range(kh):
        for j in range(kw):
            off = i * dh * Wp + j * dw  # tap (i, j)'s first input
            # (C_out, C_in) @ (N, C_in, L) -> (N, C_out, L): the tap, summed over C_in
            wide += weight[:, :, i, j] @ flat[:, :, off:off + L]
    wide = np.pad(wide, ((0, 0), (0, 0), (0, Wp - W_out)))  # (N, C_out, H_out*Wp)
    y = wide.reshape(N, C_out, H_out, Wp)[..., :W_out]  # drop the junk columns
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y
