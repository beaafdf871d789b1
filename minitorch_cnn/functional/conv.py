"""corr2d, conv2d and conv1d, with their backward: validate, build a ConvSpec, dispatch."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kernels.common import (
    ConvGrads,
    ConvSpec,
    conv_output_size,
)

from ..backend import kernel_module
from ._checks import (
    _array,
    _check_grad,
    _check_size,
    _int,
    _is_cuda_array,
    _pair,
    _run,
    _same_dtype,
    _shape_dtype,
    _zeros,
)

# --------------------------------------------------------------------------- corr2d


def corr2d(X: np.ndarray, K: np.ndarray, *, backend: str | None = None) -> np.ndarray:
    """Single-channel 2-D cross-correlation (no kernel flip), as in d2l.

    X : (H, W), K : (kh, kw) -> Y : (H - kh + 1, W - kw + 1)

    ``Y[i, j] = sum_{a, b} X[i + a, j + b] * K[a, b]``
    """
    X = _array(X, "X", 2, "(H, W)", backend)
    K = _array(K, "K", 2, "(kh, kw)", backend)
    _same_dtype("K", K, "X", X)
    (H, W), (kh, kw) = _shape_dtype(X)[0], _shape_dtype(K)[0]
    if kh == 0 or kw == 0 or kh > H or kw > W:
        raise ValueError(
            f"K: expected a non-empty kernel no larger than X {(H, W)}, got shape {(kh, kw)}"
        )
    return _run(kernel_module(backend), "corr2d", X, K)


# --------------------------------------------------------------------------- conv2d


class _ConvCall(NamedTuple):
    """What :func:`_conv_args` hands on: the arrays, the spec, and ``same``'s extra padding."""

    x: object  # (N, C_in, H, W), C-contiguous, not yet padded by ``extra``
    weight: object  # (C_out, C_in // groups, kH, kW)
    bias: object  # (C_out,) or None
    extra: tuple[int, int]  # (rows, cols) of zeros padding="same" adds at the bottom/right
    spec: ConvSpec  # the problem the kernel solves, on x padded by ``extra``


def _conv_args(x, weight, bias, stride, padding, dilation, groups, backend) -> _ConvCall:
    """Validate conv2d's arguments and build its :class:`kernels.common.ConvSpec`.

    ``padding="same"`` becomes the symmetric padding the kernels apply plus ``extra = (eh,
    ew)``, the one additional bottom/right row/column that an even effective kernel needs
    (PyTorch pads that explicitly too); the spec describes ``x`` with that extra included.
    """
    x = _array(x, "x", 4, "(N, C_in, H, W)", backend)
    weight = _array(weight, "weight", 4, "(C_out, C_in // groups, kH, kW)", backend)
    _same_dtype("weight", weight, "x", x)
    groups = _int(groups, "groups", 1)
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    (N, C_in, H, W), (C_out, C_in_g, kH, kW) = _shape_dtype(x)[0], _shape_dtype(weight)[0]
    if min(C_in, H, W) == 0:
        raise ValueError(f"x: expected C_in, H, W > 0, got shape {(N, C_in, H, W)}")
    if min(C_out, C_in_g, kH, kW) == 0:
        raise ValueError(
            f"weight: expected no zero-sized dimension, got shape {(C_out, C_in_g, kH, kW)}"
        )
    if C_in != C_in_g * groups:
        raise ValueError(
            f"weight: expected {C_in} // groups={groups} input channels per group "
            f"(x has C_in={C_in}), got weight of shape {(C_out, C_in_g, kH, kW)}, "
            f"i.e. {C_in_g} * groups = {C_in_g * groups} input channels"
        )
    if C_out % groups:
        raise ValueError(
            f"groups: expected a divisor of C_out={C_out} (weight.shape[0]), got {groups}"
        )
    if bias is not None:
        bias = _array(bias, "bias", 1, "(C_out,)", backend)
        _same_dtype("bias", bias, "x", x)
        if _shape_dtype(bias)[0][0] != C_out:
            raise ValueError(
                f"bias: expected shape ({C_out},) (C_out), got {_shape_dtype(bias)[0]}"
            )
    extra = (0, 0)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"padding: expected stride 1 with 'same' (as in PyTorch), got stride {stride}"
                )
            total = (dilation[0] * (kH - 1), dilation[1] * (kW - 1))
            padding = (total[0] // 2, total[1] // 2)
            extra = (total[0] % 2, total[1] % 2)
        else:
            raise ValueError(
                f"padding: expected an int, a pair, 'same' or 'valid', got {padding!r}"
            )
    else:
        padding = _pair(padding, "padding", 0)
    for axis, size, k in (("H", H, kH), ("W", W, kW)):
        i = 0 if axis == "H" else 1
        span = size + 2 * padding[i] + extra[i]
        reach = dilation[i] * (k - 1) + 1
        if reach > span:
            raise ValueError(
                f"weight: expected the dilated kernel to fit the padded input along {axis} "
                f"({size} + 2*{padding[i]}{' + 1' if extra[i] else ''} = {span}), "
                f"got one spanning {reach}"
            )
    spec = ConvSpec.from_shapes((N, C_in, H + extra[0], W + extra[1]), (C_out, C_in_g, kH, kW),
                                stride, padding, dilation, groups)
    if padding != (0, 0) or extra != (0, 0):
        padded = (N, C_in, spec.H_pad, spec.W_pad)
        _check_size("x", "its zero-padded copy", padded, _shape_dtype(x)[1])
    return _ConvCall(x, weight, bias, extra, spec)



def conv2d(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, backend=None
) -> np.ndarray:
    """2-D convolution (cross-correlation, as PyTorch's ``conv2d``).

    x : (N, C_in, H, W); weight : (C_out, C_in // groups, kH, kW); bias : (C_out,) or None
    -> y : (N, C_out, H_out, W_out), with
    ``H_out = 1 + (H + 2*padding - dilation*(kH - 1) - 1) // stride`` (same for W).

    ``stride``, ``padding``, ``dilation``: int or (h, w); ``padding`` also ``"valid"`` (0) or
    ``"same"`` (output size = input size; stride must be 1). ``groups`` splits the channels
    into independent convolutions.
    """
    call = _conv_args(x, weight, bias, stride, padding, dilation, groups, backend)
    spec, dtype = call.spec, _shape_dtype(call.x)[1]
    _check_size("conv2d", "the output", spec.y_shape, dtype)
    if spec.N == 0:
        return _zeros(call.x, spec.y_shape, dtype)
    module = kernel_module(backend)
    x = _pad_extra(module, call.x, call.extra)
    return _run(module, "conv2d", x, call.weight, call.bias, spec)


def _pad_extra(module, x, extra: tuple[int, int]):
    """Zero-pad ``extra`` rows/columns at the bottom/right (``padding="same"``, even kernel).

    PyTorch does the same: the symmetric part of the padding goes to the kernel, the odd
    extra row/column is padded explicitly. A CUDA array is padded by the cuda backend.
    """
    if extra == (0, 0):
        return x
    if _is_cuda_array(x):
        return module.pad_bottom_right(x, extra)
    return np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))


def _needs_input_grad(value: object) -> tuple[bool, bool, bool]:
    """``needs_input_grad`` checked: three bools ``(grad_x, grad_weight, grad_bias)``."""
    if not isinstance(value, (tuple, list)):
        raise TypeError(
            f"needs_input_grad: expected a tuple of three bools (grad_x, grad_weight, "
            f"grad_bias), got {type(value).__name__} {value!r}"
        )
    if len(value) != 3:
        raise ValueError(
            f"needs_input_grad: expected three bools (grad_x, grad_weight, grad_bias), "
            f"got {len(value)}: {value!r}"
        )
    for flag in value:
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(
                f"needs_input_grad: expected bools (grad_x, grad_weight, grad_bias), got "
                f"{type(flag).__name__} {flag!r} in {value!r}"
            )
    return (bool(value[0]), bool(value[1]), bool(value[2]))


def conv2d_backward(
    grad_y, x, weight, stride=1, padding=0, dilation=1, groups=1, *, backend=None,
    needs_input_grad=(True, True, True),
) -> ConvGrads:
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    grad_y : (N, C_out, H_out, W_out), x : (N, C_in, H, W),
    weight : (C_out, C_in // groups, kH, kW)
    -> ``(grad_x (N, C_in, H, W), grad_weight (like weight), grad_bias (C_out,))``,
    a :class:`kernels.common.ConvGrads` that unpacks like a tuple.
    ``grad_bias = grad_y.sum((0, 2, 3))``.

    ``needs_input_grad``: three bools, which of ``(grad_x, grad_weight, grad_bias)`` to
    compute, as PyTorch's ``output_mask`` (``torch.ops.aten.convolution_backward``). A
    gradient not asked for is not computed, on any backend, and comes back as ``None``: a
    network's first layer needs no grad_x (its input is data), a layer without bias no
    grad_bias.
    """
    need = _needs_input_grad(needs_input_grad)
    call = _conv_args(x, weight, None, stride, padding, dilation, groups, backend)
    spec, dtype = call.spec, _shape_dtype(call.x)[1]
    grad_y = _check_grad(grad_y, spec.y_shape, call.x, backend)
    if spec.N == 0:
        shapes = (_shape_dtype(call.x)[0], spec.weight_shape, (spec.C_out,))
        return ConvGrads(*(_zeros(call.x, shape, dtype) if n else None
                           for shape, n in zip(shapes, need, strict=True)))
    module = kernel_module(backend)
    x_padded = _pad_extra(module, call.x, call.extra)
    gx, gw, gb = _run(module, "conv2d_backward", grad_y, x_padded, call.weight, spec,
                      needs_input_grad=need)
    if gx is not None and call.extra != (0, 0):  # the extra row/col was padding: dropped
        gx = gx[:, :, : spec.H - call.extra[0], : spec.W - call.extra[1]]
    return ConvGrads(gx, gw, gb)


# --------------------------------------------------------------------------- conv1d
#
# conv1d is conv2d on a one-row image: x (N, C_in, L) is viewed as (N, C_in, 1, L), weight
# (C_out, C_in // groups, k) as (C_out, C_in // groups, 1, k), and the 2-D kernels run with
# stride (1, s), padding (0, p), dilation (1, d). No backend has a 1-D kernel of its own.


def _single(value: object, name: str, minimum: int) -> int:
    """An int, or a one-element sequence ``(v,)`` of one (as PyTorch's conv1d accepts)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name}: expected an int or a one-element sequence, got {value!r}")
        value = value[0]
    return _int(value, name, minimum)


class _Conv1dCall(NamedTuple):
    """What :func:`_conv1d_args` hands on: the one-row 2-D views and conv2d's arguments."""

    x: object  # (N, C_in, 1, L), a view of the 3-D x
    weight: object  # (C_out, C_in // groups, 1, k), a view of the 3-D weight
    stride: tuple[int, int]  # (1, s)
    padding: tuple[int, int] | str  # (0, p), "same" or "valid"
    dilation: tuple[int, int]  # (1, d)
    groups: int
    y_shape: tuple[int, int, int]  # (N, C_out, L_out)


def _row_view(a: object, name: str, layout: str, backend: str | None) -> object:
    """Check that ``a`` is a 3-D float array ``layout``; return it as a one-row 4-D view.

    (N, C, L) -> (N, C, 1, L). A C-contiguous NumPy array or CUDA device array is reshaped
    without a copy; another layout is first made contiguous by :func:`_array`.
    """
    a = _array(a, name, 3, layout, backend)
    n0, n1, n2 = _shape_dtype(a)[0]
    return a.reshape(n0, n1, 1, n2)  # (n0, n1, 1, n2)


def _conv1d_args(x, weight, stride, padding, dilation, groups, backend) -> _Conv1dCall:
    """Validate conv1d's arguments with 1-D shapes in the messages; build the 2-D views.

    The bias, when there is one, is checked by :func:`conv2d` (its shape is the same).
    """
    x4 = _row_view(x, "x", "(N, C_in, L)", backend)
    w4 = _row_view(weight, "weight", "(C_out, C_in // groups, k)", backend)
    _same_dtype("weight", w4, "x", x4)
    groups = _int(groups, "groups", 1)
    stride = _single(stride, "stride", 1)
    dilation = _single(dilation, "dilation", 1)
    (N, C_in, _, L), (C_out, C_in_g, _, k) = _shape_dtype(x4)[0], _shape_dtype(w4)[0]
    if min(C_in, L) == 0:
        raise ValueError(f"x: expected C_in, L > 0, got shape {(N, C_in, L)}")
    if min(C_out, C_in_g, k) == 0:
        raise ValueError(
            f"weight: expected no zero-sized dimension, got shape {(C_out, C_in_g, k)}"
        )
    if C_in != C_in_g * groups:
        raise ValueError(
            f"weight: expected {C_in} // groups={groups} input channels per group "
            f"(x has C_in={C_in}), got weight of shape {(C_out, C_in_g, k)}, "
            f"i.e. {C_in_g} * groups = {C_in_g * groups} input channels"
        )
    if C_out % groups:
        raise ValueError(
            f"groups: expected a divisor of C_out={C_out} (weight.shape[0]), got {groups}"
        )
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding: expected an int, 'same' or 'valid', got {padding!r}")
        if padding == "same" and stride != 1:
            raise ValueError(
                f"padding: expected stride 1 with 'same' (as in PyTorch), got stride {stride}"
            )
        pad2: tuple[int, int] | str = padding
        p = 0 if padding == "valid" else None
    else:
        p = _single(padding, "padding", 0)
        pad2 = (0, p)
    reach = dilation * (k - 1) + 1
    if p is not None and reach > L + 2 * p:
        raise ValueError(
            f"weight: expected the dilated kernel to fit the padded input along L "
            f"({L} + 2*{p} = {L + 2 * p}), got one spanning {reach}"
        )
    L_out = L if p is None else conv_output_size(L, k, stride, p, dilation)
    return _Conv1dCall(x4, w4, (1, stride), pad2, (1, dilation), groups, (N, C_out, L_out))


def _drop_row(a):
    """(n0, n1, 1, n2) -> (n0, n1, n2): a view, for NumPy and CUDA device arrays alike."""
    return a[:, :, 0, :]


def conv1d(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, backend=None
) -> np.ndarray:
    """1-D convolution (cross-correlation, as PyTorch's ``conv1d``).

    x : (N, C_in, L); weight : (C_out, C_in // groups, k); bias : (C_out,) or None
    -> y : (N, C_out, L_out), with ``L_out = 1 + (L + 2*padding - dilation*(k - 1) - 1) // stride``.

    ``stride``, ``padding``, ``dilation``: int or one-element sequence; ``padding`` also
    ``"valid"`` (0) or ``"same"`` (L_out = L; stride must be 1; an even dilated kernel puts
    the extra zero at the right, as PyTorch). ``groups`` splits the channels.

    A thin view over the 2-D kernels: x and weight are viewed (no copy) as one-row images
    (N, C_in, 1, L) and (C_out, C_in // groups, 1, k), and :func:`conv2d` runs with stride
    ``(1, stride)``, padding ``(0, padding)``, dilation ``(1, dilation)``; its
    (N, C_out, 1, L_out) output is viewed back. Every backend runs it, CUDA device arrays
    included (device in, device out).
    """
    call = _conv1d_args(x, weight, stride, padding, dilation, groups, backend)
    y = conv2d(call.x, call.weight, bias, call.stride, call.padding, call.dilation, call.groups,
               backend=backend)  # (N, C_out, 1, L_out)
    return _drop_row(y)


def conv1d_backward(
    grad_y, x, weight, stride=1, padding=0, dilation=1, groups=1, *, backend=None,
    needs_input_grad=(True, True, True),
) -> ConvGrads:
    """Gradients of :func:`conv1d` with respect to its input, weight and bias.

    grad_y : (N, C_out, L_out), x : (N, C_in, L), weight : (C_out, C_in // groups, k)
    -> ``(grad_x (N, C_in, L), grad_weight (C_out, C_in // groups, k), grad_bias (C_out,))``,
    a :class:`kernels.common.ConvGrads`. ``grad_bias = grad_y.sum((0, 2))``.

    A thin view over :func:`conv2d_backward`, as :func:`conv1d` is over :func:`conv2d`:
    grad_y is viewed as (N, C_out, 1, L_out) and the 2-D gradients are viewed back.
    ``needs_input_grad`` as :func:`conv2d_backward`'s (a skipped gradient is ``None``).
    """
    call = _conv1d_args(x, weight, stride, padding, dilation, groups, backend)
    grad_y = _array(grad_y, "grad_y", 3, "(N, C_out, L_out)", backend)
    _same_dtype("grad_y", grad_y, "x", call.x)
    if tuple(_shape_dtype(grad_y)[0]) != call.y_shape:
        raise ValueError(f"grad_y: expected shape {call.y_shape} (the forward output's), "
                         f"got {tuple(_shape_dtype(grad_y)[0])}")
    N, C_out, L_out = call.y_shape
    gx, gw, gb = conv2d_backward(grad_y.reshape(N, C_out, 1, L_out), call.x, call.weight,
                                 call.stride, call.padding, call.dilation, call.groups,
                                 backend=backend, needs_input_grad=needs_input_grad)
    # (N, C_in, 1, L), (C_out, C_in_g, 1, k), (C_out,); None where not asked for
    return ConvGrads(None if gx is None else _drop_row(gx), None if gw is None else _drop_row(gw),
                     gb)


