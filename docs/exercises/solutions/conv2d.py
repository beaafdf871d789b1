"""Exercise 3.5 (docs/03-channels.md), worked solution: conv2d with everything PyTorch's has:
stride, padding (ints, pairs, "same", "valid"), dilation and groups.

Check it with

    minitorch-cnn check docs/exercises/solutions/conv2d.py:conv2d --op conv2d
"""

import numpy as np


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
    C_out, C_g, kH, kW = weight.shape
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    (top, bottom), (left, right) = _padding(padding, (kH, kW), (dh, dw))
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    H_out = (xp.shape[2] - dh * (kH - 1) - 1) // sh + 1
    W_out = (xp.shape[3] - dw * (kW - 1) - 1) // sw + 1
    O_g = C_out // groups  # output channels per group
    y = np.zeros((x.shape[0], C_out, H_out, W_out), dtype=x.dtype)
    for h in range(H_out):
        for w in range(W_out):
            # the dilated window: every dh-th row, every dw-th column
            window = xp[:, :, h * sh:h * sh + dh * (kH - 1) + 1:dh,
                        w * sw:w * sw + dw * (kW - 1) + 1:dw]  # (N, C_in, kH, kW)
            for g in range(groups):
                y[:, g * O_g:(g + 1) * O_g, h, w] = np.einsum(
                    "nchw,ochw->no", window[:, g * C_g:(g + 1) * C_g],
                    weight[g * O_g:(g + 1) * O_g])
    if bias is not None:
        y += bias[None, :, None, None]
    return y
