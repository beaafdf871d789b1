"""Losses: log-softmax, negative log-likelihood and cross-entropy, with their gradients.

A loss is called like PyTorch's, ``loss = crit(logits, target)``, but returns a Python
float, and its gradient comes from ``crit.backward()``: ``grad_logits``, the array to hand
to ``model.backward``. With ``reduction="mean"`` (the default) the loss is averaged over the
batch, so the gradient carries a ``1 / N``.

``CrossEntropyLoss = NLLLoss(LogSoftmax(logits))``, and its gradient simplifies to
``(softmax(logits) - one_hot(target)) / N``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def log_softmax(x: np.ndarray, dim: int = 1) -> np.ndarray:
    """``x - logsumexp(x, dim)``, stable: the max is subtracted before ``exp``."""
    shifted = x - x.max(axis=dim, keepdims=True)  # every entry <= 0: exp cannot overflow
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def _check(logits: np.ndarray, target: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or logits.dtype.kind != "f":
        raise ValueError(
            f"{name}: expected input of shape (N, num_classes) and a float dtype, got "
            f"{getattr(logits, 'shape', type(logits).__name__)} "
            f"{getattr(logits, 'dtype', '')}"
        )
    target = np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class indices as target, got {target.dtype}")
    if target.shape != (logits.shape[0],):
        raise ValueError(
            f"{name}: expected target of shape ({logits.shape[0]},) (one class per row of "
            f"input), got {target.shape}"
        )
    if target.size and (target.min() < 0 or target.max() >= logits.shape[1]):
        raise ValueError(
            f"{name}: target values must lie in [0, {logits.shape[1]}), got "
            f"[{target.min()}, {target.max()}]"
        )
    return target.astype(np.intp)


class _Reduction:
    def __init__(self, reduction: str) -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def _scale(self, N: int) -> float:
        return 1.0 / N if self.reduction == "mean" else 1.0

    def _need_cache(self, cache):
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward: call the loss on (input, target) first"
            )
        return cache


class NLLCache(NamedTuple):
    """The input's shape and dtype and the target classes : (N,)."""

    shape: tuple[int, int]
    dtype: np.dtype
    target: np.ndarray


class NLLLoss(_Reduction):
    """``loss = -mean_n input[n, target[n]]``; input is log-probabilities (N, C)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self._cache: NLLCache | None = None

    def __call__(self, log_probs: np.ndarray, target: np.ndarray) -> float:
        target = _check(log_probs, target, "NLLLoss")
        N = log_probs.shape[0]
        picked = log_probs[np.arange(N), target]  # (N,)
        self._cache = NLLCache(log_probs.shape, log_probs.dtype, target)
        return float(-picked.sum() * self._scale(N))

    def backward(self, grad: float = 1.0) -> np.ndarray:
        """``grad_input[n, target[n]] = -grad / N``, zero elsewhere: (N, C)."""
        shape, dtype, target = self._need_cache(self._cache)
        grad_input = np.zeros(shape, dtype)
        grad_input[np.arange(shape[0]), target] = -grad * self._scale(shape[0])
        return grad_input


class CrossEntropyCache(NamedTuple):
    """softmax(logits) : (N, C) and the target classes : (N,)."""

    probs: np.ndarray
    target: np.ndarray


class CrossEntropyLoss(_Reduction):
    """``loss = mean_n (logsumexp(logits[n]) - logits[n, target[n]])``.

    logits : (N, C) float, target : (N,) int in [0, C). ``backward()`` returns
    ``(softmax(logits) - one_hot(target)) * grad / N`` : (N, C).
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self._cache: CrossEntropyCache | None = None

    def __call__(self, logits: np.ndarray, target: np.ndarray) -> float:
        target = _check(logits, target, "CrossEntropyLoss")
        N = logits.shape[0]
        log_probs = log_softmax(logits, dim=1)  # (N, C)
        self._cache = CrossEntropyCache(np.exp(log_probs), target)
        return float(-log_probs[np.arange(N), target].sum() * self._scale(N))

    def backward(self, grad: float = 1.0) -> np.ndarray:
        probs, target = self._need_cache(self._cache)
        N = probs.shape[0]
        grad_logits = probs.copy()
        grad_logits[np.arange(N), target] -= 1.0
        grad_logits *= grad * self._scale(N)
        return grad_logits


__all__ = ["CrossEntropyLoss", "NLLLoss", "log_softmax"]
