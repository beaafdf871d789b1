"""conv_transpose2d and its backward: validate, build the ConvSpec of the conv it inverts.

A transposed convolution is the grad_x of a convolution (``kernels/naive.py`` shows it line
for line): the kernels take the :class:`kernels.common.ConvSpec` of the convolution whose
input has the transposed conv's output shape, built by
:func:`kernels.common.conv_transpose_spec`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kernels.common import ConvGrads, ConvSpec, conv_transpose_output_size, conv_transpose_spec

from ..backend import kernel_module
from ._checks import (
    _array,
    _check_grad,
    _check_size,
    _int,
    _pair,
    _run,
    _same_dtype,
    _shape_dtype,
    _zeros,
)


class _ConvTransposeCall(NamedTuple):
    """What :func:`_conv_transpose_args` hands on: the checked arrays and the spec."""

    x: object  # (N, C_in, H, W), C-contiguous
    weight: object  # (C_in, C_out // groups, kH, kW)
    bias: object  # (C_out,) or None
    spec: ConvSpec  # the conv whose grad_x this is: spec.x_shape is y's shape


def _conv_transpose_args(x, weight, bias, stride, padding, output_padding, groups, dilation,
                         backend) -> _ConvTransposeCall:
    """Validate conv_transpose2d's arguments (PyTorch's rules) and build the spec."""
    x = _array(x, "x", 4, "(N, C_in, H, W)", backend)
    weight = _array(weight, "weight", 4, "(C_in, C_out // groups, kH, kW)", backend)
    _same_dtype("weight", weight, "x", x)
    groups = _int(groups, "groups", 1)
    stride = _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    output_padding = _pair(output_padding, "output_padding", 0)
    dilation = _pair(dilation, "dilation", 1)
    (N, C_in, H, W), (C_w, C_out_g, kH, kW) = _shape_dtype(x)[0], _shape_dtype(weight)[0]
    if min(C_in, H, W) == 0:
        raise ValueError(f"x: expected C_in, H, W > 0, got shape {(N, C_in, H, W)}")
    if min(C_w, C_out_g, kH, kW) == 0:
        raise ValueError(
            f"weight: expected no zero-sized dimension, got shape {(C_w, C_out_g, kH, kW)}"
        )
    if C_w != C_in:
        raise ValueError(
            f"weight: expected {C_in} input channels in weight.shape[0] (x has C_in={C_in}), "
            f"got weight of shape {(C_w, C_out_g, kH, kW)}"
        )
    if C_in % groups:
        raise ValueError(
            f"groups: expected a divisor of C_in={C_in} (weight.shape[0]), got {groups}"
        )
    C_out = C_out_g * groups
    if bias is not None:
        bias = _array(bias, "bias", 1, "(C_out,)", backend)
        _same_dtype("bias", bias, "x", x)
        if _shape_dtype(bias)[0][0] != C_out:
            raise ValueError(
                f"bias: expected shape ({C_out},) (C_out = weight.shape[1] * groups), "
                f"got {_shape_dtype(bias)[0]}"
            )
    for i, axis in enumerate(("H", "W")):
        if output_padding[i] >= max(stride[i], dilation[i]):
            raise ValueError(
                f"output_padding: expected less than stride or dilation along {axis} "
                f"(stride {stride[i]}, dilation {dilation[i]}), got {output_padding[i]}"
            )
    for i, (axis, size, k) in enumerate((("H", H, kH), ("W", W, kW))):
        out = conv_transpose_output_size(size, k, stride[i], padding[i], output_padding[i],
                                         dilation[i])
        if out < 1:
            raise ValueError(
                f"padding: expected an output of at least 1 along {axis}, got {out} = "
                f"({size} - 1)*{stride[i]} - 2*{padding[i]} + {dilation[i]}*({k} - 1) + "
                f"{output_padding[i]} + 1"
            )
    spec = conv_transpose_spec((N, C_in, H, W), (C_w, C_out_g, kH, kW), groups, stride=stride,
                               padding=padding, output_padding=output_padding, dilation=dilation)
    _check_size("conv_transpose2d", "the output", spec.x_shape, _shape_dtype(x)[1])
    return _ConvTransposeCall(x, weight, bias, spec)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, backend=None) -> np.ndarray:
    """2-D transposed convolution, as PyTorch's ``conv_transpose2d``.

    x : (N, C_in, H, W); weight : (C_in, C_out // groups, kH, kW); bias : (C_out,) or None
    -> y : (N, C_out, H_y, W_y), with (the same along W)::

        H_y = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1

    Each input pixel stamps its kernel stack, scaled by its value, onto the output at
    ``stride`` steps (the scatter form, ``kernels.naive.conv_transpose2d``), and ``padding``
    rows and columns are cropped from every side. It is the gradient of ``conv2d`` with
    respect to its input: ``conv_transpose2d(g, w, stride=s, padding=p) ==
    conv2d_backward(g, z, w, stride=s, padding=p).grad_x`` for a ``z`` of y's shape.
    ``output_padding`` (< stride or < dilation) adds rows at the bottom and columns at the
    right, choosing among the input sizes a strided conv maps to the same output size.

    ``stride``, ``padding``, ``output_padding``, ``dilation``: int or (h, w); note the
    argument order, PyTorch's: ``groups`` comes before ``dilation``.
    """
    call = _conv_transpose_args(x, weight, bias, stride, padding, output_padding, groups,
                                dilation, backend)
    spec = call.spec
    if spec.N == 0:
        return _zeros(call.x, spec.x_shape, _shape_dtype(call.x)[1])
    return _run(kernel_module(backend), "conv_transpose2d", call.x, call.weight, call.bias,
                spec)


def conv_transpose2d_backward(grad_y, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, backend=None) -> ConvGrads:
    """Gradients of :func:`conv_transpose2d` with respect to its input, weight and bias.

    grad_y : (N, C_out, H_y, W_y), x : (N, C_in, H, W),
    weight : (C_in, C_out // groups, kH, kW)
    -> ``(grad_x (N, C_in, H, W), grad_weight (like weight), grad_bias (C_out,))``, a
    :class:`kernels.common.ConvGrads`. ``grad_x`` is ``conv2d(grad_y, weight, stride=,
    padding=, dilation=, groups=)`` (a transposed conv's backward is a convolution);
    ``grad_weight`` is conv2d's grad_weight with ``x`` and ``grad_y`` in swapped roles;
    ``grad_bias = grad_y.sum((0, 2, 3))``.
    """
    call = _conv_transpose_args(x, weight, None, stride, padding, output_padding, groups,
                                dilation, backend)
    spec, dtype = call.spec, _shape_dtype(call.x)[1]
    grad_y = _check_grad(grad_y, spec.x_shape, call.x, backend)
    if spec.N == 0:
        return ConvGrads(_zeros(call.x, spec.y_shape, dtype),
                         _zeros(call.x, spec.weight_shape, dtype),
                         _zeros(call.x, (spec.C_in,), dtype))
    return _run(kernel_module(backend), "conv_transpose2d_backward", grad_y, call.x,
                call.weight, spec)
