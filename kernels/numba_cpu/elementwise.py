"""Element-wise ops, compiled: ReLU, sigmoid and tanh forward and backward; add.

What changes relative to ``kernels.naive``: the same loop over the elements, compiled by
Numba over the flat arrays, so it runs at memory speed (LLVM vectorises it). It is serial on
purpose: an element-wise op reads each element once and a single core nearly saturates
memory bandwidth here, while waking Numba's thread pool costs ~50 us, more than a small
layer's whole ReLU. The test is PyTorch's ``x <= 0``: a NaN passes through, forward and back.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _relu(x, y):
    """y[k] = 0 if x[k] <= 0 else x[k]; x, y : flat arrays of one length."""
    zero = x.dtype.type(0)
    for k in range(x.shape[0]):
        v = x[k]
        y[k] = zero if v <= zero else v


@njit(cache=True)
def _relu_backward(grad_y, x, grad_x):
    """grad_x[k] = 0 if x[k] <= 0 else grad_y[k]; flat arrays of one length."""
    zero = grad_y.dtype.type(0)
    for k in range(x.shape[0]):
        grad_x[k] = zero if x[k] <= zero else grad_y[k]


def relu(x: np.ndarray) -> np.ndarray:
    """``y = max(x, 0)``. x : any shape -> y : that shape and dtype."""
    y = np.empty_like(x)
    _relu(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(grad_y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """grad_x of :func:`relu`. grad_y, x : one shape -> grad_x : that shape, grad_y's dtype."""
    grad_x = np.empty_like(grad_y)
    _relu_backward(grad_y.reshape(-1), x.reshape(-1), grad_x.reshape(-1))
    return grad_x


@njit(cache=True)
def _sigmoid(x, y):
    """y[k] = 1 / (1 + exp(-x[k])), ``exp`` of a non-positive number only (no overflow)."""
    one = x.dtype.type(1)
    for k in range(x.shape[0]):
        v = x[k]
        if v >= 0:
            y[k] = one / (one + math.exp(-v))
        else:  # v < 0, or NaN (NaN out)
            e = math.exp(v)
            y[k] = e / (one + e)


@njit(cache=True)
def _sigmoid_backward(grad_y, y, grad_x):
    """grad_x[k] = grad_y[k] * (1 - y[k]) * y[k], PyTorch's order of the products."""
    one = y.dtype.type(1)
    for k in range(y.shape[0]):
        s = y[k]
        grad_x[k] = grad_y[k] * (one - s) * s


@njit(cache=True)
def _tanh(x, y):
    """y[k] = tanh(x[k])."""
    for k in range(x.shape[0]):
        y[k] = math.tanh(x[k])


@njit(cache=True)
def _tanh_backward(grad_y, y, grad_x):
    """grad_x[k] = grad_y[k] * (1 - y[k] * y[k])."""
    one = y.dtype.type(1)
    for k in range(y.shape[0]):
        t = y[k]
        grad_x[k] = grad_y[k] * (one - t * t)


@njit(cache=True)
def _add(a, b, y):
    """y[k] = a[k] + b[k]."""
    for k in range(a.shape[0]):
        y[k] = a[k] + b[k]


def _map(kernel, out_like, *arrays):
    """Run a flat ``kernel(*arrays, out)`` and return ``out``, shaped as ``out_like``."""
    out = np.empty_like(out_like)
    kernel(*(a.reshape(-1) for a in arrays), out.reshape(-1))
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``y = 1 / (1 + exp(-x))``. x : any shape -> y : that shape and dtype."""
    return _map(_sigmoid, x, x)


def sigmoid_backward(grad_y: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_x of :func:`sigmoid` from its output y. grad_y, y : one shape -> that shape."""
    return _map(_sigmoid_backward, grad_y, grad_y, y)


def tanh(x: np.ndarray) -> np.ndarray:
    """``y = tanh(x)``. x : any shape -> y : that shape and dtype."""
    return _map(_tanh, x, x)


def tanh_backward(grad_y: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_x of :func:`tanh` from its output y. grad_y, y : one shape -> that shape."""
    return _map(_tanh_backward, grad_y, grad_y, y)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b``. a, b : one shape -> that shape."""
    return _map(_add, a, a, b)
