"""F.relu and its backward: validate, dispatch.

An element-wise op needs no problem record: its kernel takes the arrays alone (``relu(x)``,
``relu_backward(grad_y, x)``).
"""

from __future__ import annotations

import numpy as np

from ..backend import kernel_module
from ._checks import _array, _is_cuda_array, _run, _same_dtype, _shape_dtype, _zeros


def _any_shape(a: object, name: str, backend: str | None) -> object:
    """``a`` as a C-contiguous float array of whatever shape it has (checked as ``_array``)."""
    is_array = isinstance(a, np.ndarray) or _is_cuda_array(a)
    shape = _shape_dtype(a)[0] if is_array else ()
    a = _array(a, name, len(shape), "(any shape)", backend)
    if isinstance(a, np.ndarray) and a.ndim != len(shape):
        a = a.reshape(shape)  # np.ascontiguousarray makes a 0-d array 1-d; undo it
    return a


def relu(x, *, backend=None):
    """``y = max(x, 0)`` element-wise, as ``torch.nn.functional.relu``.

    x : any shape, float32 or float64 -> y : that shape and dtype. A NaN stays NaN.
    """
    x = _any_shape(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    if 0 in shape:
        return _zeros(x, shape, dtype)
    return _run(kernel_module(backend), "relu", x)


def relu_backward(grad_y, x, *, backend=None):
    """grad_x of :func:`relu`: ``grad_y`` where ``x > 0``, else 0, as PyTorch's.

    grad_y, x : one shape -> grad_x : that shape, in their dtype. The derivative at ``x == 0``
    is 0; at a NaN input the gradient passes (PyTorch's test is ``x <= 0``, false for NaN).
    """
    x = _any_shape(x, "x", backend)
    grad_y = _any_shape(grad_y, "grad_y", backend)
    _same_dtype("grad_y", grad_y, "x", x)
    shape, dtype = _shape_dtype(x)
    if tuple(_shape_dtype(grad_y)[0]) != tuple(shape):
        raise ValueError(
            f"grad_y: expected shape {tuple(shape)} (x's), got {tuple(_shape_dtype(grad_y)[0])}")
    if 0 in shape:
        return _zeros(x, shape, dtype)
    return _run(kernel_module(backend), "relu_backward", grad_y, x)


def _output_backward(op: str, grad_y, y, backend):
    """Validate ``grad_y`` against the forward's output ``y`` and run kernel ``op``."""
    y = _any_shape(y, "y", backend)
    grad_y = _any_shape(grad_y, "grad_y", backend)
    _same_dtype("grad_y", grad_y, "y", y)
    shape, dtype = _shape_dtype(y)
    if tuple(_shape_dtype(grad_y)[0]) != tuple(shape):
        raise ValueError(
            f"grad_y: expected shape {tuple(shape)} (y's), got {tuple(_shape_dtype(grad_y)[0])}")
    if 0 in shape:
        return _zeros(y, shape, dtype)
    return _run(kernel_module(backend), op, grad_y, y)


def _elementwise(op: str, x, backend):
    """Validate ``x`` (any shape) and run the element-wise kernel ``op`` on it."""
    x = _any_shape(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    if 0 in shape:
        return _zeros(x, shape, dtype)
    return _run(kernel_module(backend), op, x)


def sigmoid(x, *, backend=None):
    """``y = 1 / (1 + exp(-x))`` element-wise, as ``torch.sigmoid``.

    x : any shape, float32 or float64 -> y : that shape and dtype. Stable for large ``|x|``
    (every backend exponentiates only non-positive numbers: ``exp(x) / (1 + exp(x))`` for
    ``x < 0``); ``sigmoid(+-inf) = 1, 0``; a NaN stays NaN.
    """
    return _elementwise("sigmoid", x, backend)


def sigmoid_backward(grad_y, y, *, backend=None):
    """grad_x of :func:`sigmoid` from its *output* ``y``: ``grad_y * (1 - y) * y``.

    grad_y, y : one shape -> grad_x : that shape, in their dtype. In terms of the output, as
    PyTorch's ``sigmoid_backward(grad_output, output)``, so the forward's ``y`` is all a
    layer keeps.
    """
    return _output_backward("sigmoid_backward", grad_y, y, backend)


def tanh(x, *, backend=None):
    """``y = tanh(x)`` element-wise, as ``torch.tanh``. x : any shape -> y : that shape.

    ``tanh(+-inf) = +-1``; a NaN stays NaN.
    """
    return _elementwise("tanh", x, backend)


def tanh_backward(grad_y, y, *, backend=None):
    """grad_x of :func:`tanh` from its output ``y``: ``grad_y * (1 - y * y)``, as PyTorch's.

    grad_y, y : one shape -> grad_x : that shape, in their dtype.
    """
    return _output_backward("tanh_backward", grad_y, y, backend)
