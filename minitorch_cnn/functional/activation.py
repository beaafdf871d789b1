"""The activations, softmax, dropout2d and cat, with their backwards: validate, dispatch.

An element-wise op needs no problem record: its kernel takes the arrays alone (``relu(x)``,
``relu_backward(grad_y, x)``), and a float or string hyper-parameter after them
(``leaky_relu(x, negative_slope)``, ``gelu(x, approximate)``). A backward takes the forward's
input where the derivative is a function of it (relu, leaky_relu, elu, gelu, silu) and its
output where that is all it needs (sigmoid, tanh, softmax). Softmax along any dim, dropout2d
and cat reshape their arrays (a view, on the host or the device) to the 2-D or 3-D layout
their kernels take.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..backend import kernel_module
from ._checks import (
    _array,
    _bool,
    _check_cuda_backend,
    _is_cuda_array,
    _run,
    _same_dtype,
    _shape_dtype,
    _zeros,
)


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
    return _input_backward("relu_backward", grad_y, x, backend)


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


# --------------------------------------------------------------------------- leaky_relu, elu,
# gelu, silu: element-wise with a hyper-parameter; every backward is input-based (the
# derivative is a function of x, and PyTorch's own backward kernels take x for these four).

GELU_APPROXIMATIONS = ("none", "tanh")


def _real(value: object, name: str) -> float:
    """``value`` as a float; TypeError naming ``name`` if it is not a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    return float(value)


def _approximate(approximate: object) -> str:
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    return str(approximate)


def _input_backward(op: str, grad_y, x, backend, *hyper):
    """Validate ``grad_y`` against the forward's input ``x`` and run kernel ``op``."""
    x = _any_shape(x, "x", backend)
    grad_y = _any_shape(grad_y, "grad_y", backend)
    _same_dtype("grad_y", grad_y, "x", x)
    shape, dtype = _shape_dtype(x)
    if tuple(_shape_dtype(grad_y)[0]) != tuple(shape):
        raise ValueError(
            f"grad_y: expected shape {tuple(shape)} (x's), got {tuple(_shape_dtype(grad_y)[0])}")
    if 0 in shape:
        return _zeros(x, shape, dtype)
    return _run(kernel_module(backend), op, grad_y, x, *hyper)


def leaky_relu(x, negative_slope=0.01, *, backend=None):
    """``y = x if x > 0 else negative_slope * x``, as ``torch.nn.functional.leaky_relu``.

    x : any shape, float32 or float64 -> y : that shape and dtype. A NaN stays NaN.
    """
    slope = _real(negative_slope, "negative_slope")
    x = _any_shape(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    if 0 in shape:
        return _zeros(x, shape, dtype)
    return _run(kernel_module(backend), "leaky_relu", x, slope)


def leaky_relu_backward(grad_y, x, negative_slope=0.01, *, backend=None):
    """grad_x of :func:`leaky_relu` from its input: ``grad_y`` where ``x > 0``, else
    ``grad_y * negative_slope`` (so ``negative_slope`` at ``x == 0`` and at NaN, as PyTorch's).

    grad_y, x : one shape -> grad_x : that shape, in their dtype.
    """
    return _input_backward("leaky_relu_backward", grad_y, x, backend,
                           _real(negative_slope, "negative_slope"))


def elu(x, alpha=1.0, *, backend=None):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``, as ``torch.nn.functional.elu``.

    x : any shape -> y : that shape and dtype (``expm1``; PyTorch's test ``x <= 0``, so a NaN
    stays NaN).
    """
    alpha = _real(alpha, "alpha")
    x = _any_shape(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    if 0 in shape:
        return _zeros(x, shape, dtype)
    return _run(kernel_module(backend), "elu", x, alpha)


def elu_backward(grad_y, x, alpha=1.0, *, backend=None):
    """grad_x of :func:`elu` from its input: ``grad_y * alpha * exp(x)`` where ``x <= 0``,
    else ``grad_y`` (a NaN input passes its gradient, as PyTorch's).

    grad_y, x : one shape -> grad_x : that shape, in their dtype.
    """
    return _input_backward("elu_backward", grad_y, x, backend, _real(alpha, "alpha"))


def gelu(x, approximate="none", *, backend=None):
    """``y = x * Phi(x)``, as ``torch.nn.functional.gelu``.

    ``approximate="none"``: ``Phi(x) = (1 + erf(x / sqrt(2))) / 2``, the normal CDF;
    ``"tanh"``: ``Phi(x) ~ (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3))) / 2``.
    x : any shape -> y : that shape and dtype.
    """
    approximate = _approximate(approximate)
    x = _any_shape(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    if 0 in shape:
        return _zeros(x, shape, dtype)
    return _run(kernel_module(backend), "gelu", x, approximate)


def gelu_backward(grad_y, x, approximate="none", *, backend=None):
    """grad_x of :func:`gelu` from its input: ``grad_y * (Phi(x) + x * Phi'(x))``.

    grad_y, x : one shape -> grad_x : that shape, in their dtype. PyTorch's formulas
    (``GeluBackwardKernelImpl``), both approximations.
    """
    return _input_backward("gelu_backward", grad_y, x, backend, _approximate(approximate))


def silu(x, *, backend=None):
    """``y = x / (1 + exp(-x))`` (``x * sigmoid(x)``), as ``torch.nn.functional.silu``.

    x : any shape -> y : that shape and dtype.
    """
    return _elementwise("silu", x, backend)


def silu_backward(grad_y, x, *, backend=None):
    """grad_x of :func:`silu` from its input: ``grad_y * s * (1 + x * (1 - s))``,
    ``s = sigmoid(x)``, as PyTorch's. grad_y, x : one shape -> grad_x : that shape.
    """
    return _input_backward("silu_backward", grad_y, x, backend)


# --------------------------------------------------------------------------- softmax
# Along any dim of any shape: the array is viewed as (A, C, B), C the normalised dim (A the
# product of the dims before it, B of those after), which every kernel takes.


def _softmax_dim(dim: object, ndim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"dim: expected an int, got {type(dim).__name__} {dim!r}")
    size = max(ndim, 1)  # torch treats a 0-d array as having one dim here
    if not -size <= dim < size:
        raise ValueError(f"dim: expected a dim in [{-size}, {size - 1}] for a {ndim}-D array, "
                         f"got {dim}")
    return int(dim) % size


def _three_d(shape: tuple[int, ...], dim: int) -> tuple[int, int, int]:
    """``(A, C, B)``: the products of the dims before ``dim``, of ``dim``, after it."""
    if not shape:
        return 1, 1, 1
    return (int(np.prod(shape[:dim], dtype=np.int64)), int(shape[dim]),
            int(np.prod(shape[dim + 1:], dtype=np.int64)))


def softmax(x, dim=1, *, backend=None):
    """``y = exp(x) / sum(exp(x), dim)``, as ``torch.softmax``, stable (the maximum along
    ``dim`` is subtracted first, so no ``exp`` overflows).

    x : any shape, float32/float64 -> y : that shape and dtype; ``dim`` may be negative.
    A row holding +inf or NaN gives NaN, as PyTorch's.
    """
    x = _any_shape(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    d = _softmax_dim(dim, len(shape))
    if 0 in shape:
        return _zeros(x, shape, dtype)
    y = _run(kernel_module(backend), "softmax", x.reshape(_three_d(tuple(shape), d)))
    return y.reshape(shape)


def softmax_backward(grad_y, y, dim=1, *, backend=None):
    """grad_x of :func:`softmax` from its output: ``y * (grad_y - sum(grad_y * y, dim))``.

    grad_y, y : one shape -> grad_x : that shape, in their dtype (PyTorch's
    ``_softmax_backward_data``).
    """
    y = _any_shape(y, "y", backend)
    grad_y = _any_shape(grad_y, "grad_y", backend)
    _same_dtype("grad_y", grad_y, "y", y)
    shape, dtype = _shape_dtype(y)
    d = _softmax_dim(dim, len(shape))
    if tuple(_shape_dtype(grad_y)[0]) != tuple(shape):
        raise ValueError(
            f"grad_y: expected shape {tuple(shape)} (y's), got {tuple(_shape_dtype(grad_y)[0])}")
    if 0 in shape:
        return _zeros(y, shape, dtype)
    view = _three_d(tuple(shape), d)
    return _run(kernel_module(backend), "softmax_backward", grad_y.reshape(view),
                y.reshape(view)).reshape(shape)


# --------------------------------------------------------------------------- cat
# Along dim 1 of (N, C_i, *) arrays: each is viewed as (A, C_i, B) for the kernels.


def _cat_inputs(arrays, dim, backend):
    if isinstance(arrays, (np.ndarray, str)) or not isinstance(arrays, (list, tuple)):
        raise TypeError(f"arrays: expected a list or tuple of arrays, got "
                        f"{type(arrays).__name__}")
    if not arrays:
        raise ValueError("arrays: expected at least one array, got none")
    arrays = [_any_shape(a, f"arrays[{i}]", backend) for i, a in enumerate(arrays)]
    shape0, dtype0 = _shape_dtype(arrays[0])
    if len(shape0) < 2:
        raise ValueError(f"arrays[0]: expected at least 2 dims (N, C, ...), got shape "
                         f"{tuple(shape0)}")
    if dim not in (1, -len(shape0) + 1) or isinstance(dim, bool):
        raise ValueError(f"dim: expected 1 (the channel dim), got {dim!r}")
    for i, a in enumerate(arrays[1:], start=1):
        _same_dtype(f"arrays[{i}]", a, "arrays[0]", arrays[0])
        shape = tuple(_shape_dtype(a)[0])
        if len(shape) != len(shape0) or shape[:1] + shape[2:] != tuple(shape0[:1] + shape0[2:]):
            raise ValueError(f"arrays[{i}]: expected shape {(shape0[0], '*') + tuple(shape0[2:])}"
                             f" (arrays[0]'s but for dim 1), got {shape}")
    return arrays, tuple(shape0)


def cat(arrays, dim=1, *, backend=None):
    """Concatenate along the channel dim, as ``torch.cat(arrays, 1)``.

    arrays : a list of (N, C_i, *) arrays of one dtype, equal but for C_i ->
    y : (N, sum C_i, *), where they live.
    """
    arrays, shape0 = _cat_inputs(arrays, dim, backend)
    rest = int(np.prod(shape0[2:], dtype=np.int64))
    sizes = [int(_shape_dtype(a)[0][1]) for a in arrays]
    out_shape = (shape0[0], sum(sizes)) + shape0[2:]
    if 0 in out_shape:
        return _zeros(arrays[0], out_shape, _shape_dtype(arrays[0])[1])
    views = [a.reshape(shape0[0], c, rest) for a, c in zip(arrays, sizes, strict=True) if c]
    return _run(kernel_module(backend), "cat", views).reshape(out_shape)


def cat_backward(grad_y, sizes, dim=1, *, backend=None):
    """The gradient of :func:`cat` for each input: the slices of ``grad_y`` along dim 1.

    grad_y : (N, sum(sizes), *); sizes : the C_i of the inputs -> a list of (N, C_i, *)
    arrays, where grad_y lives.
    """
    grad_y = _any_shape(grad_y, "grad_y", backend)
    shape, dtype = _shape_dtype(grad_y)
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"grad_y: expected at least 2 dims (N, C, ...), got shape {shape}")
    if dim not in (1, -len(shape) + 1) or isinstance(dim, bool):
        raise ValueError(f"dim: expected 1 (the channel dim), got {dim!r}")
    if not isinstance(sizes, (list, tuple)) or not all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 0
            for c in sizes):
        raise TypeError(f"sizes: expected a list of ints >= 0, got {sizes!r}")
    sizes = [int(c) for c in sizes]
    if sum(sizes) != shape[1]:
        raise ValueError(f"sizes: expected channel counts summing to {shape[1]} (grad_y's dim "
                         f"1), got {sizes} (sum {sum(sizes)})")
    rest = int(np.prod(shape[2:], dtype=np.int64))
    if 0 in shape:
        return [_zeros(grad_y, (shape[0], c) + shape[2:], dtype) for c in sizes]
    grads = _run(kernel_module(backend), "cat_backward", grad_y.reshape(shape[0], shape[1], rest),
                 sizes)
    return [g.reshape((shape[0], c) + shape[2:]) for g, c in zip(grads, sizes, strict=True)]


# --------------------------------------------------------------------------- dropout2d
# One keep/drop draw per (n, c), shared by every element of that channel: the array is viewed
# as (N * C, L) for the kernels, L the product of the dims after the channel dim.


def dropout2d(x, p=0.5, training=True, *, random_seed, return_mask=False, backend=None):
    """Zero whole channels with probability ``p``, scale the rest by ``1 / (1 - p)``.

    As ``torch.nn.functional.dropout2d`` on an (N, C, *) input (a 3-D input is read as batched
    (N, C, L), a 2-D one as (N, C): element-wise), the randomness named by ``random_seed`` as
    in :func:`dropout` (the CPU backends draw the (N, C) mask with NumPy's ``Generator``, as
    ``dropout`` of an (N, C) array; ``cuda`` with its counter-based generator).

    x : (N, C, *), float32/float64 -> y : that shape and dtype; with ``return_mask=True``,
    ``(y, mask)``, ``mask`` uint8 (N, C) (1 kept, 0 dropped), where ``x`` lives.
    """
    from kernels.common import DropoutSpec

    from .loss import _probability, _random_seed

    p = _probability(p)
    training = _bool(training, "training")
    return_mask = _bool(return_mask, "return_mask")
    spec = DropoutSpec.from_p(p if training else 0.0, _random_seed(random_seed))
    x = _any_shape(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"x: expected at least 2 dims (N, C, ...) (one draw per (n, c)), got "
                         f"shape {shape}")
    if 0 in shape:
        y, mask = _zeros(x, shape, dtype), _zeros(x, shape[:2], np.uint8)
    else:
        rows = (shape[0] * shape[1], int(np.prod(shape[2:], dtype=np.int64)))
        y, mask = _run(kernel_module(backend), "dropout2d", x.reshape(rows), spec)
        y, mask = y.reshape(shape), mask.reshape(shape[:2])
    return (y, mask) if return_mask else y


def dropout2d_backward(grad_y, mask, p, *, backend=None):
    """grad_x of :func:`dropout2d`: ``grad_y / (1 - p)`` in the channels ``mask`` kept, else 0.

    grad_y : (N, C, *), float; mask : (N, C), uint8 (from ``dropout2d(..., return_mask=True)``);
    p : the forward's probability -> grad_x : grad_y's shape and dtype.
    """
    from kernels.common import DropoutSpec

    from .loss import _probability

    spec = DropoutSpec.from_p(_probability(p), 0)
    grad_y = _any_shape(grad_y, "grad_y", backend)
    shape, dtype = _shape_dtype(grad_y)
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"grad_y: expected at least 2 dims (N, C, ...), got shape {shape}")
    if _is_cuda_array(mask):
        _check_cuda_backend("mask", backend)
    elif not isinstance(mask, np.ndarray):
        raise TypeError(f"mask: expected a numpy.ndarray of uint8, got {type(mask).__name__}")
    mask_shape, mask_dtype = _shape_dtype(mask)
    if mask_dtype != np.uint8:
        raise TypeError(f"mask: expected dtype uint8 (from dropout2d(..., return_mask=True)), "
                        f"got {mask_dtype}")
    if tuple(mask_shape) != shape[:2]:
        raise ValueError(f"mask: expected shape {shape[:2]} (grad_y's (N, C)), got "
                         f"{tuple(mask_shape)}")
    if isinstance(mask, np.ndarray):
        mask = np.ascontiguousarray(mask)
    if 0 in shape:
        return _zeros(grad_y, shape, dtype)
    rows = (shape[0] * shape[1], int(np.prod(shape[2:], dtype=np.int64)))
    grad_x = _run(kernel_module(backend), "dropout2d_backward", grad_y.reshape(rows),
                  mask.reshape(rows[0]), spec)
    return grad_x.reshape(shape)
