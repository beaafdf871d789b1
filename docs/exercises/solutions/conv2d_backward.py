r"""Exercise 5.4 (docs/05-backward.md), worked solution: the backward pass of conv2d.

Check it with

    minitorch-cnn check docs/exercises/solutions/conv2d_backward.py:conv2d_backward \
        --op conv2d_backward
"""

import numpy as np
from conv2d import _padding, _pair  # the forward's helpers, next to this file


def conv2d_backward(grad_y, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """``(grad_x, grad_weight, grad_bias)`` of conv2d for the upstream ``grad_y``.

    ``grad_y : (N, C_out, H_out, W_out)``, ``x : (N, C_in, H, W)``,
    ``weight : (C_out, C_in // groups, kH, kW)``; the gradients have the shapes of ``x``,
    ``weight`` and ``(C_out,)``. The forward's loops run again: where the forward read a
    window and wrote ``y[n, o, h, w]``, the backward reads ``grad_y[n, o, h, w]`` and adds
    it, times the weights, back into that window of ``grad_x``, and times the window into
    ``grad_weight``.
    """
    C_out, C_g, kH, kW = weight.shape
    H, W = x.shape[2:]
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    (top, bottom), (left, right) = _padding(padding, (kH, kW), (dh, dw))
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    grad_xp = np.zeros_like(xp)
    grad_weight = np.zeros_like(weight)
    O_g = C_out // groups
    for h in range(grad_y.shape[2]):
        for w in range(grad_y.shape[3]):
            rows = slice(h * sh, h * sh + dh * (kH - 1) + 1, dh)
            cols = slice(w * sw, w * sw + dw * (kW - 1) + 1, dw)
            for g in range(groups):
                cin, cout = slice(g * C_g, (g + 1) * C_g), slice(g * O_g, (g + 1) * O_g)
                gy = grad_y[:, cout, h, w]  # (N, O_g)
                window = xp[:, cin, rows, cols]  # (N, C_g, kH, kW)
                grad_weight[cout] += np.einsum("no,nchw->ochw", gy, window)
                grad_xp[:, cin, rows, cols] += np.einsum("no,ochw->nchw", gy, weight[cout])
    grad_x = grad_xp[:, :, top:top + H, left:left + W]  # drop the padding's gradient
    return grad_x, grad_weight, grad_y.sum(axis=(0, 2, 3))
