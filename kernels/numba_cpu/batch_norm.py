"""Batch normalisation, compiled: ``batch_norm`` and ``batch_norm_backward``.

What changes relative to ``kernels.naive`` (read its ``batch_norm`` first): the same loops,
compiled by Numba, and parallel. The per-channel reductions (the mean and the squared
deviations forward; ``sum(grad_y)`` and ``sum((x - mean) * grad_y)`` backward) run one
channel per ``prange`` iteration, so each thread owns its channels' sums and no two threads
add into one place; the element-wise passes (``y = x * alpha + beta``, grad_x) run one
``(n, c)`` plane per iteration, so there is parallel work even with few channels. The update
of the running estimates is ``C`` values, done with NumPy on the host arrays, in PyTorch's
order (``momentum * batch + (1 - momentum) * running``). The sums are float64 for float32
inputs too, as naive's and PyTorch's CPU kernel. No ``fastmath``: a NaN or inf in
``x`` must reach exactly the outputs it reaches in PyTorch.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from kernels.common import BatchNormOutput, BatchNormSpec, ConvGrads

from ._loops import njit


@njit(parallel=True, cache=True)
def _channel_stats(x):
    """Per channel: ``mean = sum(x) / M`` and ``squares = sum((x - mean)**2)``, two passes.

    x : (N, C, L) -> (mean (C,), squares (C,)), float64 (as naive's sums), ``M = N*L``;
    parallel over channels.
    """
    N, C, L = x.shape
    mean = np.empty(C, np.float64)
    squares = np.empty(C, np.float64)
    for c in prange(C):
        total = 0.0
        for n in range(N):
            for i in range(L):
                total += x[n, c, i]
        m = total / (N * L)
        acc = 0.0
        for n in range(N):
            for i in range(L):
                d = x[n, c, i] - m
                acc += d * d
        mean[c] = m
        squares[c] = acc
    return mean, squares


@njit(parallel=True, cache=True)
def _scale_shift(x, alpha, beta):
    """``y[n, c, i] = x[n, c, i] * alpha[c] + beta[c]``; x : (N, C, L); parallel over planes."""
    N, C, L = x.shape
    y = np.empty_like(x)
    for p in prange(N * C):
        n, c = p // C, p % C
        a, b = alpha[c], beta[c]
        for i in range(L):
            y[n, c, i] = x[n, c, i] * a + b
    return y


@njit(parallel=True, cache=True)
def _grad_sums(grad_y, x, mean):
    """Per channel: ``total = sum(grad_y)``, ``dot = sum((x - mean) * grad_y)``.

    grad_y, x : (N, C, L), mean : (C,) -> (total (C,), dot (C,)), float64 (as naive's sums);
    parallel over channels.
    """
    N, C, L = x.shape
    total = np.empty(C, np.float64)
    dot = np.empty(C, np.float64)
    for c in prange(C):
        t = 0.0
        d = 0.0
        m = np.float64(mean[c])
        for n in range(N):
            for i in range(L):
                g = grad_y[n, c, i]
                t += g
                d += (x[n, c, i] - m) * g
        total[c] = t
        dot[c] = d
    return total, dot


@njit(parallel=True, cache=True)
def _grad_x(grad_y, x, mean, coef, training):
    """grad_x of naive's ``batch_norm_backward``, one ``(n, c)`` plane per iteration.

    grad_y, x : (N, C, L); mean : (C,); coef : (3, C) float64, per channel ``inv_std * weight``,
    ``total / M`` and ``dot * inv_std**2 / M`` (computed once on the host); training : 0 or
    1. Eval: ``grad_y * inv_std * weight``; training first subtracts ``total / M`` and
    ``(x - mean) * dot * inv_std**2 / M``.
    """
    N, C, L = x.shape
    grad_x = np.empty_like(x)
    for p in prange(N * C):
        n, c = p // C, p % C
        scale, g_mean, k, m = coef[0, c], coef[1, c], coef[2, c], np.float64(mean[c])
        for i in range(L):
            g = grad_y[n, c, i]
            if training:
                g = g - g_mean - (x[n, c, i] - m) * k
            grad_x[n, c, i] = g * scale
    return grad_x


def batch_norm(x, running_mean, running_var, weight, bias, spec: BatchNormSpec):
    """:func:`kernels.naive.batch_norm`, compiled.

    x : (N, C, L), running_mean, running_var : (C,) or None (updated in place in training),
    weight, bias : (C,) -> ``BatchNormOutput(y (N, C, L), mean (C,), inv_std (C,))``.
    """
    M = spec.count
    if spec.training:
        mean64, squares = _channel_stats(x)  # float64, as naive's sums
        momentum = spec.momentum
        if running_mean is not None:
            running_mean[...] = momentum * mean64 + (1 - momentum) * running_mean
        if running_var is not None:
            running_var[...] = momentum * (squares / (M - 1)) + (1 - momentum) * running_var
        mean = mean64.astype(x.dtype)
        inv_std = (1 / np.sqrt(squares / M + spec.eps)).astype(x.dtype)  # (C,)
    else:
        mean = running_mean.copy()
        inv_std = 1 / np.sqrt(running_var + x.dtype.type(spec.eps))  # (C,)
    alpha = inv_std * weight  # (C,)
    beta = bias - mean * alpha
    return BatchNormOutput(_scale_shift(x, alpha, beta), mean, inv_std)


def batch_norm_backward(grad_y, x, weight, mean, inv_std, spec: BatchNormSpec):
    """:func:`kernels.naive.batch_norm_backward`, compiled.

    grad_y, x : (N, C, L), weight, mean, inv_std : (C,) -> ``ConvGrads(grad_x (N, C, L),
    grad_weight (C,), grad_bias (C,))``.
    """
    total, dot = _grad_sums(grad_y, x, mean)  # float64
    M = spec.count
    s = inv_std.astype(np.float64)
    coef = np.stack([s * weight, total / M, dot * s * s / M])  # (3, C), float64
    grad_x = _grad_x(grad_y, x, mean, coef, spec.training)
    return ConvGrads(grad_x, (dot * s).astype(x.dtype), total.astype(x.dtype))
