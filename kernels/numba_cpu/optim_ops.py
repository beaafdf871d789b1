"""Optimizer updates, compiled: ``torch.optim.SGD`` and ``Adam``/``AdamW`` steps, in place.

What changes relative to ``kernels.naive``: the same one-element-at-a-time loop over the flat
parameter, compiled by Numba; the hyper-parameters come in as one record
(``kernels.common.SgdHyper`` / ``AdamHyper``), read by field. Serial, as ``elementwise``: an
update reads and writes each element once, memory-bound, and most parameters of the models
here are small.
"""

from __future__ import annotations

import numpy as np

from ._loops import njit


@njit(cache=True)
def _sgd(param, grad, buf, hyper, first):
    """One SGD step over flat arrays of one length (the formula of ``SgdHyper``)."""
    T = param.dtype.type
    lr, mu, wd = T(hyper.lr), T(hyper.momentum), T(hyper.weight_decay)
    damp = T(1.0 - hyper.dampening)
    for i in range(param.shape[0]):
        d = grad[i]
        if hyper.weight_decay != 0:
            d = d + wd * param[i]
        if hyper.momentum != 0:
            b = d if first else mu * buf[i] + damp * d
            buf[i] = b
            d = d + mu * b if hyper.nesterov else b
        param[i] = param[i] - lr * d


@njit(cache=True)
def _adam(param, grad, m, v, v_max, hyper):
    """One Adam step over flat arrays of one length (the formula of ``AdamHyper``)."""
    T = param.dtype.type
    decay, wd = T(1.0 - hyper.lr * hyper.weight_decay), T(hyper.weight_decay)
    w1, b2, c2 = T(1.0 - hyper.beta1), T(hyper.beta2), T(1.0 - hyper.beta2)
    step_size, bias2_sqrt, eps = T(hyper.step_size), T(hyper.bias2_sqrt), T(hyper.eps)
    for i in range(param.shape[0]):
        d = grad[i]
        if hyper.weight_decay != 0:
            if hyper.decoupled:
                param[i] = param[i] * decay
            else:
                d = d + wd * param[i]
        if w1 < 0.5:  # PyTorch's lerp(m, d, w1), from the nearer end
            m[i] = m[i] + w1 * (d - m[i])
        else:
            m[i] = d - (d - m[i]) * (T(1) - w1)
        v[i] = v[i] * b2 + c2 * d * d
        second = v[i]
        if hyper.amsgrad:
            v_max[i] = max(v_max[i], second)
            second = v_max[i]
        denom = np.sqrt(second) / bias2_sqrt + eps
        param[i] = param[i] + (-step_size) * (m[i] / denom)


def sgd_step(param, grad, buf, hyper, *, first=False):
    """:func:`kernels.naive.sgd_step`: param, grad, buf of one shape, updated in place."""
    _sgd(param.reshape(-1), grad.reshape(-1), buf.reshape(-1), hyper, bool(first))


def adam_step(param, grad, m, v, v_max, hyper):
    """:func:`kernels.naive.adam_step`: in place; ``v_max`` None unless ``hyper.amsgrad``."""
    flat_max = v.reshape(-1) if v_max is None else v_max.reshape(-1)  # unread without amsgrad
    _adam(param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1), flat_max, hyper)
