"""Losses: log-softmax, negative log-likelihood and cross-entropy, with their gradients.

A loss is called like PyTorch's, ``loss = crit(logits, target)``, but returns a Python
float, and its gradient comes from ``crit.backward()``: ``grad_logits``, the array to hand
to ``model.backward``. With ``reduction="mean"`` (the default) the loss is averaged over the
batch, so the gradient carries a ``1 / N``.

``CrossEntropyLoss = NLLLoss(LogSoftmax(logits))``, and its gradient simplifies to
``(softmax(logits) - one_hot(target)) / N``. The arithmetic is the functional API's
(``F.cross_entropy``, ``F.nll_loss``), so a loss runs on any backend, device arrays included.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import functional as F
from .device import is_device_array, to_device_array, to_host


def log_softmax(x: np.ndarray, dim: int = 1) -> np.ndarray:
    """``x - logsumexp(x, dim)``, stable: the max is subtracted before ``exp``."""
    shifted = x - x.max(axis=dim, keepdims=True)  # every entry <= 0: exp cannot overflow
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def _check(logits: object, target: object, name: str) -> tuple[object, str | None]:
    """Validate a loss's arguments; return the target as int64 where the logits live, and
    the backend to run on (``"cuda"`` for logits on the device, else the current one).
    """
    on_device = is_device_array(logits)
    if (not (on_device or isinstance(logits, np.ndarray)) or logits.ndim != 2
            or logits.dtype.kind != "f"):
        raise ValueError(
            f"{name}: expected input of shape (N, num_classes) and a float dtype, got "
            f"{getattr(logits, 'shape', type(logits).__name__)} "
            f"{getattr(logits, 'dtype', '')}"
        )
    N, C = tuple(logits.shape)
    if is_device_array(target):  # already where the logits are; its values are not read here
        if target.dtype.kind not in "iu" or tuple(target.shape) != (N,):
            raise ValueError(f"{name}: expected a device target of shape ({N},) and an "
                             f"integer dtype, got {tuple(target.shape)} {target.dtype}")
        return target, "cuda"
    target = np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class indices as target, got {target.dtype}")
    if target.shape != (N,):
        raise ValueError(
            f"{name}: expected target of shape ({N},) (one class per row of "
            f"input), got {target.shape}"
        )
    if target.size and (target.min() < 0 or target.max() >= C):
        raise ValueError(
            f"{name}: target values must lie in [0, {C}), got "
            f"[{target.min()}, {target.max()}]"
        )
    target = np.ascontiguousarray(target, dtype=np.int64)
    if on_device:  # the batch's labels go to the device once, with the batch
        return to_device_array(target), "cuda"
    return target, None


class _Reduction:
    def __init__(self, reduction: str) -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def _need_cache(self, cache):
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward: call the loss on (input, target) first"
            )
        return cache


class LossCache(NamedTuple):
    """The loss's input : (N, C), the target classes : (N,) int64 where the input lives, and
    the backend both ran on (``"cuda"`` for device arrays, else None: the current one).
    """

    input: object
    target: object
    backend: str | None


class NLLLoss(_Reduction):
    """``loss = -mean_n input[n, target[n]]``; input is log-probabilities (N, C).

    ``F.nll_loss`` / ``F.nll_loss_backward`` on the current backend (on the cuda backend for
    device arrays): the loss comes back as a Python float, the one number a training step
    copies to the host.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self._cache: LossCache | None = None

    def __call__(self, log_probs: np.ndarray, target: np.ndarray) -> float:
        target, backend = _check(log_probs, target, "NLLLoss")
        self._cache = LossCache(log_probs, target, backend)
        return float(to_host(F.nll_loss(log_probs, target, self.reduction, backend=backend)))

    def backward(self, grad: float = 1.0) -> np.ndarray:
        """``grad_input[n, target[n]] = -grad / N``, zero elsewhere: (N, C)."""
        log_probs, target, backend = self._need_cache(self._cache)
        return F.nll_loss_backward(log_probs, target, self.reduction, grad=grad,
                                   backend=backend)


class CrossEntropyLoss(_Reduction):
    """``loss = mean_n (logsumexp(logits[n]) - logits[n, target[n]])``.

    logits : (N, C) float, target : (N,) int in [0, C). ``backward()`` returns
    ``(softmax(logits) - one_hot(target)) * grad / N`` : (N, C). Both are
    ``F.cross_entropy`` / ``F.cross_entropy_backward`` (fused log-softmax and NLL) on the
    current backend, or on cuda for device logits; the loss is a Python float.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self._cache: LossCache | None = None

    def __call__(self, logits: np.ndarray, target: np.ndarray) -> float:
        target, backend = _check(logits, target, "CrossEntropyLoss")
        self._cache = LossCache(logits, target, backend)
        return float(to_host(F.cross_entropy(logits, target, self.reduction, backend=backend)))

    def backward(self, grad: float = 1.0) -> np.ndarray:
        logits, target, backend = self._need_cache(self._cache)
        return F.cross_entropy_backward(logits, target, self.reduction, grad=grad,
                                        backend=backend)


__all__ = ["CrossEntropyLoss", "NLLLoss", "log_softmax"]
