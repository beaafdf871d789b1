"""Convolution and pooling layers: thin modules over ``minitorch_cnn.functional``.

Each forward calls ``F.<op>`` and caches its input; each backward calls
``F.<op>_backward`` with that input. The kernels come from the backend that is current at
call time (``mc.get_backend()``, or ``mc.use_backend(...)`` around the call), so one model
runs on any backend.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kernels.common import flops_conv2d

from .. import functional as F
from .. import init
from .module import ModelInput, Module, Parameter, model_input, needs_grad_x


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class InputCache(NamedTuple):
    """What a conv or pooling backward needs: the forward input x : (N, C, H, W)."""

    x: np.ndarray


class ConvCache(NamedTuple):
    """What Conv2d's backward needs: x (and x padded), and whether x is the model's input."""

    x: np.ndarray  # (N, C_in, H, W)
    x_padded: np.ndarray | None  # (N, C_in, H + top + bottom, W + left + right), or None
    model_input: ModelInput | None  # set when x is the input of a model that needs no grad_x


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
"""``Conv2d``'s ``padding_mode`` values, as PyTorch's."""


def _reversed_padding_repeated_twice(padding, kernel_size, dilation) -> tuple[int, ...]:
    """PyTorch's ``(left, right, top, bottom)`` for ``F.pad`` from a conv's ``padding``.

    An int pair ``(ph, pw)`` gives ``(pw, pw, ph, ph)``; ``"valid"`` no padding; ``"same"``
    the total ``dilation*(kernel - 1)`` per axis, its larger half at the right / bottom.
    """
    if padding == "valid":
        return (0, 0, 0, 0)
    pads: list[int] = []
    for axis in (1, 0):  # W first, as F.pad counts from the last axis
        if padding == "same":
            total = dilation[axis] * (kernel_size[axis] - 1)
            pads += [total // 2, total - total // 2]
        else:
            pads += [padding[axis], padding[axis]]
    return tuple(pads)


class MaxPoolCache(NamedTuple):
    """What max pooling's backward needs: the input x and where each maximum is."""

    x: np.ndarray  # (N, C, H, W)
    indices: np.ndarray  # (N, C, H_out, W_out) int64, flat h*W + w


class Conv2d(Module):
    """2-D convolution (cross-correlation) with PyTorch's parameters and initialisation.

    weight : (out_channels, in_channels // groups, kH, kW); bias : (out_channels,) or absent.
    x : (N, in_channels, H, W) -> y : (N, out_channels, H_out, W_out), with
    ``H_out = 1 + (H + 2*padding - dilation*(kH - 1) - 1) // stride``.

    ``padding_mode`` ``"reflect"``, ``"replicate"`` or ``"circular"`` fills the padding from
    the input instead of with zeros, as PyTorch applies it: ``F.pad`` by
    ``_reversed_padding_repeated_twice`` ``(left, right, top, bottom)``, then a convolution
    with no padding; the backward runs through ``F.pad_backward``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups: expected a divisor of in_channels={in_channels} and "
                f"out_channels={out_channels}, got {groups}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.dilation = _pair(stride), _pair(dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.groups = groups
        self.padding_mode = padding_mode
        self._reversed_padding_repeated_twice = _reversed_padding_repeated_twice(
            self.padding, self.kernel_size, self.dilation)
        kH, kW = self.kernel_size
        self.weight = Parameter(np.empty((out_channels, in_channels // groups, kH, kW),
                                         np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_channels, np.float32))
        else:
            self.register_parameter("bias", None)
        init.default_weight_and_bias_(self.weight, self.bias)

    def forward(self, x: np.ndarray) -> np.ndarray:
        bias = None if self.bias is None else self.bias.data
        if self.padding_mode != "zeros":
            x_padded = F.pad(x, self._reversed_padding_repeated_twice, self.padding_mode)
            y = F.conv2d(x_padded, self.weight.data, bias, self.stride, 0, self.dilation,
                         self.groups)
            self._save(ConvCache(x, x_padded, model_input(x)))
            return y
        y = F.conv2d(x, self.weight.data, bias, self.stride, self.padding, self.dilation,
                     self.groups)
        self._save(ConvCache(x, None, model_input(x)))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray | None:
        """Add grad_weight (and grad_bias) to the parameters; return grad_x.

        grad_x is skipped, and ``None`` returned, when this layer alone read the input of a
        model with ``needs_input_grad = False`` (:mod:`.module`): a net's first layer.
        """
        cache = self._restore()
        need_x = needs_grad_x(cache.model_input)
        needs = (need_x, True, self.bias is not None)  # PyTorch's output_mask
        if self.padding_mode != "zeros":
            grad_x_padded, grad_weight, grad_bias = F.conv2d_backward(
                grad_y, cache.x_padded, self.weight.data, self.stride, 0, self.dilation,
                self.groups, needs_input_grad=needs
            )
            grad_x = None if grad_x_padded is None else F.pad_backward(
                grad_x_padded, cache.x, self._reversed_padding_repeated_twice,
                self.padding_mode)
        else:
            grad_x, grad_weight, grad_bias = F.conv2d_backward(
                grad_y, cache.x, self.weight.data, self.stride, self.padding, self.dilation,
                self.groups, needs_input_grad=needs
            )
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_bias)
        return grad_x

    def forward_flops(self, x_shape, y_shape) -> int:
        flops = flops_conv2d(y_shape, self.weight.data.shape)
        return flops + (math.prod(y_shape) if self.bias is not None else 0)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class PaddedRowCache(NamedTuple):
    """What a Conv1d with ``padding_mode != "zeros"`` needs: x as one row, and x padded."""

    x_rows: np.ndarray  # (N, C_in, 1, L), the view F.pad took
    x_padded: np.ndarray  # (N, C_in, L + left + right)


def _single(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


class Conv1d(Module):
    """1-D convolution (cross-correlation) with PyTorch's parameters and initialisation.

    weight : (out_channels, in_channels // groups, k); bias : (out_channels,) or absent.
    x : (N, in_channels, L) -> y : (N, out_channels, L_out), with
    ``L_out = 1 + (L + 2*padding - dilation*(k - 1) - 1) // stride``.

    A thin view over the 2-D kernels: :func:`minitorch_cnn.functional.conv1d` runs the
    convolution as conv2d on a one-row image (N, C, 1, L) with a (1, k) kernel, and its
    backward as conv2d's. ``padding_mode`` other than ``"zeros"`` is applied as PyTorch
    applies it: ``F.pad`` of that one-row view by ``(left, right, 0, 0)``, then a convolution
    with no padding; the backward runs through ``F.pad_backward``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups: expected a divisor of in_channels={in_channels} and "
                f"out_channels={out_channels}, got {groups}"
            )
        self.stride, self.dilation = _single(stride), _single(dilation)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding: expected an int, 'same' or 'valid', got {padding!r}")
            if padding == "same" and self.stride != (1,):
                raise ValueError(f"padding: 'same' is not supported for strided convolutions "
                                 f"(as in PyTorch), got stride {self.stride}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _single(kernel_size)
        self.padding = padding if isinstance(padding, str) else _single(padding)
        self.groups = groups
        self.padding_mode = padding_mode
        self._reversed_padding_repeated_twice = _reversed_padding_repeated_twice(
            self.padding if isinstance(padding, str) else (0,) + self.padding,
            (1,) + self.kernel_size, (1,) + self.dilation)[:2]  # (left, right)
        self.weight = Parameter(np.empty((out_channels, in_channels // groups)
                                         + self.kernel_size, np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_channels, np.float32))
        else:
            self.register_parameter("bias", None)
        init.default_weight_and_bias_(self.weight, self.bias)

    def _row_pad(self) -> tuple[int, int, int, int]:
        """``F.pad``'s ``(left, right, top, bottom)`` for the (N, C, 1, L) view."""
        return self._reversed_padding_repeated_twice + (0, 0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        bias = None if self.bias is None else self.bias.data
        if self.padding_mode != "zeros":
            x_rows = F._row_view(x, "x", "(N, C_in, L)", None)  # (N, C_in, 1, L)
            x_padded = F.pad(x_rows, self._row_pad(), self.padding_mode)[:, :, 0, :]
            y = F.conv1d(x_padded, self.weight.data, bias, self.stride, 0, self.dilation,
                         self.groups)
            self._save(PaddedRowCache(x_rows, x_padded))
            return y
        y = F.conv1d(x, self.weight.data, bias, self.stride, self.padding, self.dilation,
                     self.groups)
        self._save(InputCache(x))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        cache = self._restore()
        if self.padding_mode != "zeros":
            grad_x_padded, grad_weight, grad_bias = F.conv1d_backward(
                grad_y, cache.x_padded, self.weight.data, self.stride, 0, self.dilation,
                self.groups
            )  # grad_x_padded : (N, C_in, L + left + right)
            grad_rows = F._row_view(grad_x_padded, "grad_x", "(N, C_in, L)", None)
            grad_x = F.pad_backward(grad_rows, cache.x_rows, self._row_pad(),
                                    self.padding_mode)[:, :, 0, :]  # (N, C_in, L)
        else:
            grad_x, grad_weight, grad_bias = F.conv1d_backward(
                grad_y, cache.x, self.weight.data, self.stride, self.padding, self.dilation,
                self.groups
            )
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_bias)
        return grad_x

    def forward_flops(self, x_shape, y_shape) -> int:
        N, C_out, L_out = y_shape
        flops = flops_conv2d((N, C_out, 1, L_out), (C_out, self.in_channels // self.groups, 1)
                             + self.kernel_size)
        return flops + (math.prod(y_shape) if self.bias is not None else 0)

    def extra_repr(self) -> str:
        """As PyTorch's: tuples ``(k,)``; padding, dilation, groups, bias only when not default."""
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,):
            s += f", padding={self.padding}"
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class MaxPool2d(Module):
    """Max pooling: x : (N, C, H, W) -> (N, C, H_out, W_out); gradient to the first maximum."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def _args(self) -> tuple:
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Pool, and keep where each maximum is (as PyTorch's autograd does)."""
        y, indices = F.max_pool2d(x, *self._args(), return_indices=True)
        self._save(MaxPoolCache(x, indices))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        """Send each gradient to its window's maximum, found by the forward pass."""
        x, indices = self._restore()
        return F.max_pool2d_backward(grad_y, x, *self._args(), indices=indices)

    def forward_flops(self, x_shape, y_shape) -> int:
        kH, kW = _pair(self.kernel_size)
        return int(np.prod(y_shape)) * kH * kW  # one comparison per window element

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling: x : (N, C, H, W) -> (N, C, H_out, W_out), PyTorch's divisor rule."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def _args(self) -> tuple:
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = F.avg_pool2d(x, *self._args())
        self._save(InputCache(x))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x = self._restore().x
        return F.avg_pool2d_backward(grad_y, x, *self._args())

    def forward_flops(self, x_shape, y_shape) -> int:
        kH, kW = _pair(self.kernel_size)
        return int(np.prod(y_shape)) * kH * kW  # the additions, and one division per output

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Adaptive average pooling to ``output_size``: x : (N, C, H, W) -> (N, C, oh, ow)."""

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = F.adaptive_avg_pool2d(x, self.output_size)
        self._save(InputCache(x))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x = self._restore().x
        return F.adaptive_avg_pool2d_backward(grad_y, x, self.output_size)

    def forward_flops(self, x_shape, y_shape) -> int:
        return int(np.prod(x_shape))  # every input cell is added once (roughly)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
