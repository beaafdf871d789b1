r"""Exercise 5.4 (docs/05-backward.md), starter: the backward pass of conv2d.

Fill in the body of ``conv2d_backward``, then check it with

    minitorch-cnn check docs/exercises/conv2d_backward.py:conv2d_backward \
        --op conv2d_backward
"""

import numpy as np  # noqa: F401 (you will need it)
from conv2d import _padding, _pair  # noqa: F401 (the forward's helpers, next to this file)


def conv2d_backward(grad_y, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """``(grad_x, grad_weight, grad_bias)`` of conv2d for the upstream ``grad_y``.

    ``grad_y : (N, C_out, H_out, W_out)``, ``x : (N, C_in, H, W)``,
    ``weight : (C_out, C_in // groups, kH, kW)``; the gradients have the shapes of ``x``,
    ``weight`` and ``(C_out,)``. The forward's loops run again: where the forward read a
    window and wrote ``y[n, o, h, w]``, the backward reads ``grad_y[n, o, h, w]`` and adds
    it, times the weights, back into that window of ``grad_x``, and times the window into
    ``grad_weight``.
    """
    raise NotImplementedError("conv2d_backward: your code here")
