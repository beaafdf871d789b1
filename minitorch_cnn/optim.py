"""Optimizers: SGD (momentum, dampening, Nesterov, weight decay) and Adam, PyTorch's rules.

An optimizer holds a list of :class:`~minitorch_cnn.nn.Parameter` and, in ``step()``,
updates each ``param.data`` from ``param.grad`` (parameters whose ``grad`` is ``None`` are
skipped, as in PyTorch). The formulas are written exactly as ``torch.optim`` documents them,
so the same gradients give the same parameters to the last bits (the model tests check five
steps against torch to 1e-8).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


class Optimizer:
    def __init__(self, params: Iterable, lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("params: the optimizer got an empty parameter list")
        for index, param in enumerate(self.params):
            if not hasattr(param, "data") or not hasattr(param, "grad"):
                raise TypeError(
                    f"params[{index}]: expected a Parameter (with .data and .grad), got "
                    f"{type(param).__name__}"
                )
        if lr < 0:
            raise ValueError(f"lr: expected a non-negative learning rate, got {lr}")
        self.lr = lr

    def zero_grad(self) -> None:
        """Forget every gradient (``grad = None``, PyTorch's default)."""
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with ``torch.optim.SGD``'s update.

    ::

        g = grad + weight_decay * p
        if momentum:
            buf = g                                  (first step)
            buf = momentum * buf + (1 - dampening) * g   (later steps)
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    """

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"momentum and weight_decay: expected >= 0, got {momentum}, {weight_decay}"
            )
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: needs momentum > 0 and dampening == 0 (as PyTorch)")
        self.momentum, self.weight_decay = momentum, weight_decay
        self.dampening, self.nesterov = dampening, nesterov
        self.momentum_buffers: list[np.ndarray | None] = [None] * len(self.params)

    def step(self) -> None:
        for index, param in enumerate(self.params):
            if param.grad is None:
                continue
            g = param.grad
            if self.weight_decay != 0:
                g = g + self.weight_decay * param.data
            if self.momentum != 0:
                buf = self.momentum_buffers[index]
                if buf is None:
                    buf = g.copy()
                else:
                    buf = self.momentum * buf + (1 - self.dampening) * g
                self.momentum_buffers[index] = buf
                g = g + self.momentum * buf if self.nesterov else buf
            param.data = (param.data - self.lr * g).astype(param.data.dtype, copy=False)


class Adam(Optimizer):
    """Adam with ``torch.optim.Adam``'s update (L2 weight decay added to the gradient).

    ::

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas: expected each in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.steps = [0] * len(self.params)  # per parameter, as torch (skipped ones wait)
        self.exp_avg = [np.zeros_like(p.data) for p in self.params]
        self.exp_avg_sq = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        beta1, beta2 = self.betas
        for index, param in enumerate(self.params):
            if param.grad is None:
                continue
            self.steps[index] += 1
            bias_correction1 = 1 - beta1 ** self.steps[index]
            bias_correction2_sqrt = math.sqrt(1 - beta2 ** self.steps[index])
            g = param.grad
            if self.weight_decay != 0:
                g = g + self.weight_decay * param.data
            m = self.exp_avg[index] = beta1 * self.exp_avg[index] + (1 - beta1) * g
            v = self.exp_avg_sq[index] = beta2 * self.exp_avg_sq[index] + (1 - beta2) * g * g
            denom = np.sqrt(v) / bias_correction2_sqrt + self.eps
            param.data = (param.data - (self.lr / bias_correction1) * (m / denom)).astype(
                param.data.dtype, copy=False)


__all__ = ["SGD", "Adam", "Optimizer"]
