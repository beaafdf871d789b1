"""F.linear and its backward, F.add and F.flatten: what the layers around the convs need.

``linear`` is ``torch.nn.functional.linear`` (``y = x @ weight.T + bias``) with its gradients
(``linear_backward``, with PyTorch's ``output_mask`` as ``needs_input_grad``); ``add`` is the
element-wise sum of a residual shortcut; ``flatten`` is ``torch.flatten``, a reshape. ``add``
and ``flatten`` have no backward function: the gradient of a sum is ``grad_y`` for both
operands, and that of a reshape is ``grad_y.reshape(x.shape)``; the layers do it.
"""

from __future__ import annotations

import math

import numpy as np

from kernels.common import LinearGrads

from ..backend import kernel_module
from ._checks import _array, _is_cuda_array, _run, _same_dtype, _shape_dtype, _zeros
from .activation import _any_shape
from .conv import _needs_input_grad


def _host(a):
    """``a`` as a NumPy array (a device array is copied back)."""
    return a.copy_to_host() if _is_cuda_array(a) else a


def _where(like, a: np.ndarray):
    """The NumPy answer ``a`` where ``like`` lives (a device array for a CUDA ``like``)."""
    if _is_cuda_array(like):
        from numba import cuda  # reached only with a CUDA array, so numba-cuda is installed

        return cuda.to_device(a)
    return a


def _linear_args(x, weight, backend):
    """Check ``x`` (*, in) and ``weight`` (out, in); return them, the rows M and (in, out)."""
    x = _any_shape(x, "x", backend)
    weight = _array(weight, "weight", 2, "(out_features, in_features)", backend)
    _same_dtype("weight", weight, "x", x)
    x_shape = tuple(_shape_dtype(x)[0])
    w_shape = tuple(_shape_dtype(weight)[0])
    if len(x_shape) == 0:
        raise ValueError("x: expected an array of shape (*, in_features), got a 0-d array")
    if w_shape[1] != x_shape[-1]:
        raise ValueError(
            f"weight: expected shape (out_features, {x_shape[-1]}) (x's last dim is "
            f"in_features), got {w_shape}")
    return x, weight, math.prod(x_shape[:-1]), w_shape


def linear(x, weight, bias=None, *, backend=None):
    """``y = x @ weight.T + bias``, as ``torch.nn.functional.linear``.

    x : (*, in_features), weight : (out_features, in_features), bias : (out_features,) or
    None -> y : (*, out_features), in x's dtype (every array the same dtype). The leading
    dims of ``x`` are rows of one product: the kernel sees x as (M, in_features).
    """
    x, weight, M, (O, K) = _linear_args(x, weight, backend)
    x_shape = tuple(_shape_dtype(x)[0])
    if bias is not None:
        bias = _array(bias, "bias", 1, "(out_features,)", backend)
        _same_dtype("bias", bias, "x", x)
        if tuple(_shape_dtype(bias)[0]) != (O,):
            raise ValueError(
                f"bias: expected shape ({O},) (weight's out_features), "
                f"got {tuple(_shape_dtype(bias)[0])}")
    y_shape = x_shape[:-1] + (O,)
    dtype = _shape_dtype(x)[1]
    if 0 in (M, K, O):  # an empty product: no kernel; y is the bias (or 0) in every row
        y = np.zeros(y_shape, dtype)
        if bias is not None and y.size:
            y += _host(bias)
        return _where(x, y)
    y = _run(kernel_module(backend), "linear", x.reshape(M, K), weight, bias)
    return y.reshape(y_shape)


def linear_backward(grad_y, x, weight, *, needs_input_grad=(True, True, True),
                    backend=None) -> LinearGrads:
    """Gradients of :func:`linear`: ``LinearGrads(grad_x, grad_weight, grad_bias)``.

    grad_y : (*, out_features), x : (*, in_features), weight : (out_features, in_features)
    -> grad_x : (*, in_features) = grad_y @ weight, grad_weight : (out_features,
    in_features) = grad_y.T @ x summed over every leading dim, grad_bias : (out_features,)
    = grad_y summed over every leading dim. ``needs_input_grad`` (PyTorch's
    ``output_mask``): a gradient not asked for is not computed and comes back ``None``.
    """
    need = _needs_input_grad(needs_input_grad)
    x, weight, M, (O, K) = _linear_args(x, weight, backend)
    x_shape = tuple(_shape_dtype(x)[0])
    grad_y = _any_shape(grad_y, "grad_y", backend)
    _same_dtype("grad_y", grad_y, "x", x)
    expected = x_shape[:-1] + (O,)
    if tuple(_shape_dtype(grad_y)[0]) != expected:
        raise ValueError(f"grad_y: expected shape {expected} (the forward output's), "
                         f"got {tuple(_shape_dtype(grad_y)[0])}")
    dtype = _shape_dtype(x)[1]
    if 0 in (M, K, O):  # an empty product: no kernel
        gy = _host(grad_y).reshape(M, O)
        grads = (np.zeros(x_shape, dtype), np.zeros((O, K), dtype), gy.sum(axis=0))
        return LinearGrads(*(_where(x, g) if n else None
                             for g, n in zip(grads, need, strict=True)))
    gx, gw, gb = _run(kernel_module(backend), "linear_backward", grad_y.reshape(M, O),
                      x.reshape(M, K), weight, needs_input_grad=need)
    return LinearGrads(None if gx is None else gx.reshape(x_shape), gw, gb)


def add(a, b, *, backend=None):
    """``y = a + b`` for two arrays of one shape and dtype (a residual shortcut).

    a, b : one shape (any) -> y : that shape. No broadcasting. No backward function: the
    gradient reaching each operand is ``grad_y`` itself (the layer passes it on).
    """
    a = _any_shape(a, "a", backend)
    b = _any_shape(b, "b", backend)
    _same_dtype("b", b, "a", a)
    shape, dtype = _shape_dtype(a)
    if tuple(_shape_dtype(b)[0]) != tuple(shape):
        raise ValueError(
            f"b: expected shape {tuple(shape)} (a's), got {tuple(_shape_dtype(b)[0])}")
    if 0 in shape:
        return _zeros(a, shape, dtype)
    return _run(kernel_module(backend), "add", a, b)


def _dim(value: object, name: str, ndim: int) -> int:
    """``value`` as a dim index of an ``ndim``-D array (negative counts from the end)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    size = max(ndim, 1)  # torch treats a 0-d array as having one dim here
    if not -size <= value < size:
        raise ValueError(f"{name}: expected a dim in [{-size}, {size - 1}] for a {ndim}-D "
                         f"array, got {value}")
    return int(value) % size


def flatten(x, start_dim=1, end_dim=-1, *, backend=None):
    """Dims ``start_dim..end_dim`` of ``x`` merged into one, as ``torch.flatten``.

    x : (d0, ..., dn) -> (d0, ..., d_start * ... * d_end, ..., dn): (N, C, H, W) ->
    (N, C*H*W) for the defaults, which are ``nn.Flatten``'s (``torch.flatten`` starts at 0).
    A 0-d ``x`` becomes (1,). A reshape: no kernel and no copy of a C-contiguous array (a
    NumPy view; on ``cuda`` a device array stays on the device). No backward function: the
    gradient is ``grad_y.reshape(x.shape)`` (``nn.Flatten`` does it). ``backend`` is taken
    for symmetry with the other ops (a device array needs ``backend="cuda"``).
    """
    x = _any_shape(x, "x", backend)
    shape = tuple(_shape_dtype(x)[0])
    start = _dim(start_dim, "start_dim", len(shape))
    end = _dim(end_dim, "end_dim", len(shape))
    if start > end:
        raise ValueError(f"start_dim: expected a dim at or before end_dim ({end_dim}), "
                         f"got {start_dim}")
    if not shape:
        return x.reshape(1)
    return x.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])
