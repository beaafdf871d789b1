"""ConvTranspose2d: the layer that upsamples, a thin module over ``F.conv_transpose2d``.

A transposed convolution is the backward (grad_x) of a convolution, run as a forward pass:
where a stride-2 ``Conv2d`` halves an image, a stride-2 ``ConvTranspose2d`` with the same
kernel doubles it (DCGAN's generator, U-Net's decoder). ``docs/05-backward.md`` shows why.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kernels.common import conv_transpose_output_size, flops_conv2d

from .. import functional as F
from .. import init
from .conv import PADDING_MODES, _pair
from .module import Module, Parameter


class TransposeCache(NamedTuple):
    """What ConvTranspose2d's backward needs: the input and the output_padding used."""

    x: np.ndarray  # (N, in_channels, H, W)
    output_padding: tuple[int, int]  # self.output_padding, or what output_size asked for


class ConvTranspose2d(Module):
    """2-D transposed convolution with PyTorch's parameters, initialisation and state dict.

    weight : (in_channels, out_channels // groups, kH, kW) (PyTorch's layout: the transpose
    of a Conv2d(out_channels, in_channels) weight); bias : (out_channels,) or absent.
    x : (N, in_channels, H, W) -> y : (N, out_channels, H_out, W_out), with
    ``H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1``.

    The initialisation is PyTorch's ``reset_parameters``: ``kaiming_uniform_(a=sqrt(5))``
    and a bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, where ``fan_in`` is computed from the
    weight as torch does for every weight, ``weight.shape[1] * kH * kW`` = ``out_channels //
    groups * kH * kW`` here (torch does not swap the roles for the transposed layout).

    ``forward(x, output_size=None)``: ``output_size`` ``(H_out, W_out)`` (or ``(N, C, H_out,
    W_out)``) picks the output_padding that gives that size, as PyTorch's; it must lie in
    ``[min, min + stride - 1]`` per axis, ``min`` the size with no output_padding. Only
    ``padding_mode="zeros"`` exists, as in PyTorch.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        if padding_mode != "zeros":
            what = "one of" if padding_mode in PADDING_MODES else "a name of"
            raise ValueError(f'padding_mode: only "zeros" padding mode is supported for '
                             f"ConvTranspose2d (as in PyTorch; {what} {PADDING_MODES} applies "
                             f"to Conv2d), got {padding_mode!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups: expected a divisor of in_channels={in_channels} and "
                f"out_channels={out_channels}, got {groups}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding = _pair(stride), _pair(padding)
        self.output_padding, self.dilation = _pair(output_padding), _pair(dilation)
        self.groups = groups
        self.padding_mode = padding_mode
        kH, kW = self.kernel_size
        self.weight = Parameter(np.empty((in_channels, out_channels // groups, kH, kW),
                                         np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_channels, np.float32))
        else:
            self.register_parameter("bias", None)
        init.default_weight_and_bias_(self.weight, self.bias)

    def _output_padding(self, x: np.ndarray, output_size) -> tuple[int, int]:
        """PyTorch's ``_output_padding``: the output_padding that makes ``output_size``.

        ``None`` keeps ``self.output_padding``. Otherwise ``output_size`` has 2 elements, or
        4 (N and C first, dropped); each must lie in ``[min, min + stride - 1]``, ``min`` the
        output size with no output_padding.
        """
        if output_size is None:
            return self.output_padding
        size = list(output_size)
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2:
            raise ValueError(f"output_size: expected 2 or 4 elements (for a 4-D input), got "
                             f"{len(size)}: {output_size!r}")
        H, W = np.shape(x)[2:]  # np.shape also reads a CUDA array's shape
        min_sizes = [conv_transpose_output_size(n, k, s, p, 0, d) for n, k, s, p, d in zip(
            (H, W), self.kernel_size, self.stride, self.padding, self.dilation, strict=True)]
        max_sizes = [m + s - 1 for m, s in zip(min_sizes, self.stride, strict=True)]
        for want, lo, hi in zip(size, min_sizes, max_sizes, strict=True):
            if not lo <= want <= hi:
                raise ValueError(f"output_size: requested {tuple(size)}, but valid sizes range "
                                 f"from {tuple(min_sizes)} to {tuple(max_sizes)} (for an "
                                 f"input of {(H, W)})")
        return (size[0] - min_sizes[0], size[1] - min_sizes[1])

    def forward(self, x: np.ndarray, output_size=None) -> np.ndarray:
        output_padding = self._output_padding(x, output_size)
        bias = None if self.bias is None else self.bias.data
        y = F.conv_transpose2d(x, self.weight.data, bias, self.stride, self.padding,
                               output_padding, self.groups, self.dilation)
        self._save(TransposeCache(x, output_padding))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        cache = self._restore()
        grad_x, grad_weight, grad_bias = F.conv_transpose2d_backward(
            grad_y, cache.x, self.weight.data, self.stride, self.padding, cache.output_padding,
            self.groups, self.dilation)
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_bias)
        return grad_x

    def forward_flops(self, x_shape, y_shape) -> int:
        """The FLOPs of the conv2d whose grad_x this is: ``2*N*C_in*H*W*(C_out/g)*kH*kW``."""
        flops = flops_conv2d(x_shape, self.weight.data.shape)
        return flops + (math.prod(y_shape) if self.bias is not None else 0)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
