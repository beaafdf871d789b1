"""Element-wise activations and LogSoftmax, each with its derivative written out."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..losses import log_softmax
from .module import Module


class InputCache(NamedTuple):
    """The forward input x (ReLU's derivative needs its sign)."""

    x: np.ndarray


class OutputCache(NamedTuple):
    """The forward output y (sigmoid, tanh and log-softmax derivatives are functions of y)."""

    y: np.ndarray


class ReLU(Module):
    """``y = max(x, 0)``; ``dy/dx = 1 where x > 0, else 0`` (0 at x == 0, as PyTorch)."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: InputCache | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._cache = InputCache(x)
        return np.maximum(x, 0)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x = self._need_cache(self._cache).x
        self._cache = None
        return np.where(x > 0, grad_y, 0).astype(grad_y.dtype, copy=False)

    def forward_flops(self, x_shape, y_shape) -> int:
        return int(np.prod(y_shape))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow: uses ``exp(-|x|)``, which is at most 1."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Sigmoid(Module):
    """``y = 1 / (1 + exp(-x))``; ``dy/dx = y * (1 - y)``."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: OutputCache | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = sigmoid(x)
        self._cache = OutputCache(y)
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        y = self._need_cache(self._cache).y
        self._cache = None
        return grad_y * y * (1 - y)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))


class Tanh(Module):
    """``y = tanh(x)``; ``dy/dx = 1 - y**2``."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: OutputCache | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.tanh(x)
        self._cache = OutputCache(y)
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        y = self._need_cache(self._cache).y
        self._cache = None
        return grad_y * (1 - y * y)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))


class LogSoftmax(Module):
    """``y = x - logsumexp(x, dim)``; ``grad_x = grad_y - softmax(x) * grad_y.sum(dim)``."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim
        self._cache: OutputCache | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = log_softmax(x, self.dim)
        self._cache = OutputCache(y)
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        y = self._need_cache(self._cache).y
        self._cache = None
        return grad_y - np.exp(y) * grad_y.sum(axis=self.dim, keepdims=True)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
