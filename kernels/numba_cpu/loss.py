"""Losses, compiled: log_softmax, nll_loss and cross_entropy over (N, C) rows, and dropout.

What changes relative to ``kernels.naive``: the same row loops (a row's maximum, its sum of
exponentials, then each element), compiled by Numba, so each row is a few passes at memory
speed instead of Python steps. Serial on purpose, as ``elementwise``: a classifier's logits
are small (N x 10 for MNIST, N x 1000 for ImageNet) and waking Numba's thread pool (~50 us)
costs more than the loop. The dropout mask comes from NumPy's ``Generator``
(``kernels.naive.dropout_mask``), as on every CPU backend, so all three agree for one random seed;
the multiplication by the noise is the compiled loop.
"""

from __future__ import annotations

import numpy as np

from kernels.naive import _dropout_scale, dropout_mask

from ._loops import njit


@njit(cache=True)
def _row_log_sum_exp(x, n):
    """``(m, log(sum_k exp(x[n, k] - m)))`` of row ``n``, ``m`` its maximum."""
    m = x[n, 0]
    for k in range(1, x.shape[1]):
        m = max(m, x[n, k])
    total = x.dtype.type(0)
    for k in range(x.shape[1]):
        total += np.exp(x[n, k] - m)
    return m, np.log(total)


@njit(cache=True)
def _log_softmax(x, y):
    """y[n, k] = x[n, k] - m_n - lse_n; x, y : (N, C)."""
    for n in range(x.shape[0]):
        m, lse = _row_log_sum_exp(x, n)
        for k in range(x.shape[1]):
            y[n, k] = x[n, k] - m - lse


@njit(cache=True)
def _log_softmax_backward(grad_y, y, grad_x):
    """grad_x[n, k] = grad_y[n, k] - exp(y[n, k]) * sum_j grad_y[n, j]; all (N, C)."""
    for n in range(y.shape[0]):
        total = grad_y.dtype.type(0)
        for k in range(y.shape[1]):
            total += grad_y[n, k]
        for k in range(y.shape[1]):
            grad_x[n, k] = grad_y[n, k] - np.exp(y[n, k]) * total


@njit(cache=True)
def _picked_sum(logp, target):
    """sum_n logp[n, target[n]]; logp (N, C), target (N,) int64."""
    total = logp.dtype.type(0)
    for n in range(logp.shape[0]):
        total += logp[n, target[n]]
    return total


@njit(cache=True)
def _cross_entropy_sum(logits, target):
    """sum_n log_softmax(logits)[n, target[n]] without writing the log-softmax."""
    total = logits.dtype.type(0)
    for n in range(logits.shape[0]):
        m, lse = _row_log_sum_exp(logits, n)
        total += logits[n, target[n]] - m - lse
    return total


@njit(cache=True)
def _cross_entropy_backward(logits, target, scale, grad):
    """grad[n, k] = (exp(logits[n, k] - m_n - lse_n) - [k == target[n]]) * scale."""
    one = logits.dtype.type(1)
    for n in range(logits.shape[0]):
        m, lse = _row_log_sum_exp(logits, n)
        for k in range(logits.shape[1]):
            p = np.exp(logits[n, k] - m - lse)
            grad[n, k] = (p - one if k == target[n] else p) * scale


@njit(cache=True)
def _apply_mask(a, mask, scale, out):
    """out[i] = a[i] * (scale if mask[i] else 0); flat arrays of one length."""
    zero = a.dtype.type(0)
    for i in range(a.shape[0]):
        out[i] = a[i] * (scale if mask[i] != 0 else zero)


def log_softmax(x):
    """:func:`kernels.naive.log_softmax`: x (N, C) -> y (N, C)."""
    y = np.empty_like(x)
    _log_softmax(x, y)
    return y


def log_softmax_backward(grad_y, y):
    """:func:`kernels.naive.log_softmax_backward`: grad_y, y (N, C) -> grad_x (N, C)."""
    grad_x = np.empty_like(grad_y)
    _log_softmax_backward(grad_y, y, grad_x)
    return grad_x


def nll_loss(logp, target, spec):
    """:func:`kernels.naive.nll_loss`: a 0-d array of logp's dtype."""
    T = logp.dtype.type
    return np.array(-_picked_sum(logp, target) / T(spec.divisor), logp.dtype)


def nll_loss_backward(logp, target, grad, spec):
    """:func:`kernels.naive.nll_loss_backward`: (N, C), ``-grad / divisor`` at the targets."""
    grad_logp = np.zeros_like(logp)
    grad_logp[np.arange(spec.N), target] = logp.dtype.type(-spec.grad_scale(grad))
    return grad_logp


def cross_entropy(logits, target, spec):
    """:func:`kernels.naive.cross_entropy`: a 0-d array of the logits' dtype."""
    T = logits.dtype.type
    return np.array(-_cross_entropy_sum(logits, target) / T(spec.divisor), logits.dtype)


def cross_entropy_backward(logits, target, grad, spec):
    """:func:`kernels.naive.cross_entropy_backward`: grad_logits (N, C)."""
    grad_logits = np.empty_like(logits)
    _cross_entropy_backward(logits, target, logits.dtype.type(spec.grad_scale(grad)),
                            grad_logits)
    return grad_logits


def dropout(x, spec):
    """:func:`kernels.naive.dropout`: (y, mask), the mask drawn by NumPy's Generator."""
    mask = dropout_mask(x.shape, spec)
    y = np.empty_like(x)
    _apply_mask(x.reshape(-1), mask.reshape(-1), _dropout_scale(x.dtype, spec), y.reshape(-1))
    return y, mask


def dropout_backward(grad_y, mask, spec):
    """:func:`kernels.naive.dropout_backward`: grad_y * noise."""
    grad_x = np.empty_like(grad_y)
    _apply_mask(grad_y.reshape(-1), mask.reshape(-1), _dropout_scale(grad_y.dtype, spec),
                grad_x.reshape(-1))
    return grad_x
