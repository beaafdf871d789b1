"""Max unpooling and adaptive max pooling: thin modules over ``minitorch_cnn.functional``.

The other pooling layers (``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``) live in
:mod:`.conv`. ``MaxUnpool2d`` is the one layer here whose forward takes more than ``x``: the
``indices`` a ``MaxPool2d(..., return_indices=True)``-style pooling returned, and optionally
an ``output_size``, as PyTorch's ``MaxUnpool2d.forward(input, indices, output_size=None)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import functional as F
from .conv import _pair
from .module import Module


class UnpoolCache(NamedTuple):
    """What max unpooling's backward needs (the gather reads only ``indices``)."""

    x: np.ndarray  # (N, C, H, W): gives the shapes and the dtype
    indices: np.ndarray  # (N, C, H, W) int64, flat h*W_out + w in the output plane
    output_size: object  # the forward's output_size argument, None or (h, w) / (N, C, h, w)


class AdaptiveMaxCache(NamedTuple):
    """What adaptive max pooling's backward needs: the input and where each maximum is."""

    x: np.ndarray  # (N, C, H, W)
    indices: np.ndarray  # (N, C, H_out, W_out) int64, flat h*W + w


class MaxUnpool2d(Module):
    """Max unpooling: x, indices : (N, C, H, W) -> (N, C, H_out, W_out), zeros elsewhere.

    ``H_out = (H - 1)*stride - 2*padding + kernel_size`` unless ``forward``'s
    ``output_size`` picks another size the pool could have come from (see
    :func:`minitorch_cnn.functional.max_unpool2d`). No parameters.
    """

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)  # pairs, as PyTorch keeps them (and shows them)
        self.stride = _pair(kernel_size if stride is None else stride)
        self.padding = _pair(padding)

    def forward(self, x: np.ndarray, indices: np.ndarray, output_size=None) -> np.ndarray:
        """Put each value of ``x`` at its index; keep the indices for backward."""
        y = F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)
        self._save(UnpoolCache(x, indices, output_size))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        """grad_y : (N, C, H_out, W_out) -> grad_x : (N, C, H, W), read at the indices."""
        x, indices, output_size = self._restore()
        return F.max_unpool2d_backward(grad_y, x, indices, self.kernel_size, self.stride,
                                       self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveMaxPool2d(Module):
    """Adaptive max pooling to ``output_size``: x : (N, C, H, W) -> (N, C, oh, ow).

    With ``return_indices=True`` the forward returns ``(y, indices)``, as PyTorch's; the
    backward takes ``grad_y`` only, either way.
    """

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, x: np.ndarray):
        """Pool, and keep where each maximum is (as PyTorch's autograd does)."""
        y, indices = F.adaptive_max_pool2d(x, self.output_size, return_indices=True)
        self._save(AdaptiveMaxCache(x, indices))
        return (y, indices) if self.return_indices else y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        """Send each gradient to its window's maximum, found by the forward pass."""
        x, indices = self._restore()
        return F.adaptive_max_pool2d_backward(grad_y, x, self.output_size, indices=indices)

    def forward_flops(self, x_shape, y_shape) -> int:
        return int(np.prod(x_shape))  # every input cell is compared once (roughly)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
