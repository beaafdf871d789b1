"""The fully connected layer, compiled: ``y = x @ weight.T + bias`` and its gradients.

What changes relative to ``kernels.naive.linear``: naive's triple loop over ``(m, o, k)`` is a
matrix product, so each product here is one BLAS GEMM, called from compiled code (``np.dot``
inside ``@njit`` calls SciPy's ``sgemm``/``dgemm``, as the conv GEMM paths do); the bias add
and the bias gradient are compiled loops over rows. Nothing runs in a ``prange``: a layer's
GEMM is BLAS's to thread, and two thread pools on one GEMM only take turns (module header of
:mod:`kernels.numba_cpu`, item 4).
"""

from __future__ import annotations

import numpy as np

from kernels.common import LinearGrads

from ._loops import njit


@njit(cache=True)
def _linear(x, weight, bias, has_bias):
    """Forward: x (M, K), weight (O, K), bias (O,) -> y (M, O) = x @ weight.T (+ bias)."""
    y = np.dot(x, weight.T)  # (M, K) @ (K, O): weight.T is an F-ordered view, no copy
    if has_bias:
        for m in range(y.shape[0]):
            for o in range(y.shape[1]):
                y[m, o] += bias[o]
    return y


@njit(cache=True)
def _bias_grad(grad_y):
    """grad_y (M, O) -> (O,): the rows added in order, ``grad_y.sum(0)``."""
    out = np.zeros(grad_y.shape[1], grad_y.dtype)
    for m in range(grad_y.shape[0]):
        for o in range(grad_y.shape[1]):
            out[o] += grad_y[m, o]
    return out


@njit(cache=True)
def _grad_x(grad_y, weight):
    """grad_y (M, O), weight (O, K) -> grad_x (M, K) = grad_y @ weight."""
    return np.dot(grad_y, weight)


@njit(cache=True)
def _grad_weight(grad_y, x):
    """grad_y (M, O), x (M, K) -> grad_weight (O, K) = grad_y.T @ x."""
    return np.dot(grad_y.T, x)


def linear(x, weight, bias):
    """Forward: x (M, K), weight (O, K), bias (O,) or None -> y (M, O) = x @ weight.T + b."""
    has_bias = bias is not None
    return _linear(x, weight, bias if has_bias else np.zeros(0, x.dtype), has_bias)


def linear_backward(grad_y, x, weight, *, needs_input_grad=(True, True, True)) -> LinearGrads:
    """Gradients of :func:`linear`: grad_y (M, O), x (M, K), weight (O, K) ->
    ``LinearGrads(grad_x (M, K), grad_weight (O, K), grad_bias (O,))``, ``None`` where
    ``needs_input_grad`` (PyTorch's ``output_mask``) does not ask for one.
    """
    need_x, need_w, need_b = (bool(flag) for flag in needs_input_grad)
    return LinearGrads(_grad_x(grad_y, weight) if need_x else None,
                       _grad_weight(grad_y, x) if need_w else None,
                       _bias_grad(grad_y) if need_b else None)


__all__ = ["linear", "linear_backward"]
