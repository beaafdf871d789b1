"""Dropout, Dropout2d and BatchNorm2d: the layers that behave differently in train and eval.

``module.train()`` / ``module.eval()`` switch them. Dropout masks come from the generator of
``minitorch_cnn.init`` (``init.manual_seed`` makes them reproducible).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import init
from .module import Module, Parameter


class DropoutCache(NamedTuple):
    """The scaled keep-mask: 0 where dropped, ``1 / (1 - p)`` where kept (None in eval)."""

    mask: np.ndarray | None


class Dropout(Module):
    """Zero each element with probability ``p`` in training, scale the rest by ``1/(1-p)``.

    ``y = x * mask``; ``grad_x = grad_y * mask``. Identity in eval mode.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p}")
        self.p = p
        self._cache: DropoutCache | None = None

    def _mask_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return x.shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0.0:
            self._cache = DropoutCache(None)
            return x
        if self.p == 1.0:
            mask = np.zeros(self._mask_shape(x), x.dtype)
        else:
            keep = init.get_generator().random(self._mask_shape(x)) >= self.p
            mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        self._cache = DropoutCache(mask)
        return x * mask

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        mask = self._need_cache(self._cache).mask
        self._cache = None
        return grad_y if mask is None else grad_y * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Drop whole channels: one mask value per ``(n, c)``, broadcast over H and W.

    x : (N, C, H, W); mask : (N, C, 1, 1).
    """

    def _mask_shape(self, x: np.ndarray) -> tuple[int, ...]:
        if x.ndim != 4:
            raise ValueError(f"Dropout2d: expected x of shape (N, C, H, W), got {x.shape}")
        return x.shape[:2] + (1, 1)


class BatchNormCache(NamedTuple):
    """What BatchNorm2d's backward needs.

    x_hat : (N, C, H, W), the normalised input; inv_std : (C,), ``1 / sqrt(var + eps)`` of
    the statistics used (the batch's in training, the running ones in eval);
    training : whether batch statistics were used (they depend on x, so the gradient has
    two more terms).
    """

    x_hat: np.ndarray
    inv_std: np.ndarray
    training: bool


class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) per channel, PyTorch's train/eval semantics.

    x : (N, C, H, W) -> ``y = weight * (x - mean) / sqrt(var + eps) + bias``, where in
    training mean and var are the batch's (biased var), and the running estimates are
    updated with ``running = (1 - momentum) * running + momentum * batch`` (the *unbiased*
    var goes into running_var; ``momentum=None`` means a cumulative average). In eval the
    running estimates are used. weight : (C,) ones, bias : (C,) zeros.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1
                 ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, np.float32))
        self.bias = Parameter(np.zeros(num_features, np.float32))
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))
        self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        self._cache: BatchNormCache | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d: expected x of shape (N, {self.num_features}, H, W), got {x.shape}"
            )
        C = self.num_features
        if self.training:
            count = x.shape[0] * x.shape[2] * x.shape[3]
            if count <= 1:
                raise ValueError(
                    f"BatchNorm2d: expected more than 1 value per channel when training, got "
                    f"input of shape {x.shape}"
                )
            mean = x.mean(axis=(0, 2, 3))  # (C,)
            var = x.var(axis=(0, 2, 3))  # (C,), biased: normalises the batch
            self._update_running(mean, var * count / (count - 1))
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + self.eps)  # (C,)
        x_hat = (x - mean.reshape(1, C, 1, 1)) * inv_std.reshape(1, C, 1, 1)  # (N, C, H, W)
        self._cache = BatchNormCache(x_hat, inv_std, self.training)
        return x_hat * self.weight.data.reshape(1, C, 1, 1) + self.bias.data.reshape(1, C, 1, 1)

    def _update_running(self, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        self.num_batches_tracked = self.num_batches_tracked + 1
        if self.momentum is None:  # cumulative moving average
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        rm, rv = self.running_mean, self.running_var
        self.running_mean = ((1 - factor) * rm + factor * mean).astype(rm.dtype)
        self.running_var = ((1 - factor) * rv + factor * unbiased_var).astype(rv.dtype)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x_hat, inv_std, training = self._need_cache(self._cache)
        self._cache = None
        C = self.num_features
        self.weight.accumulate_grad((grad_y * x_hat).sum(axis=(0, 2, 3)))
        self.bias.accumulate_grad(grad_y.sum(axis=(0, 2, 3)))
        g_hat = grad_y * self.weight.data.reshape(1, C, 1, 1)  # dL/dx_hat : (N, C, H, W)
        if not training:  # mean and var are constants
            return g_hat * inv_std.reshape(1, C, 1, 1)
        # mean and var depend on x: subtract the gradient's mean and its projection on x_hat.
        g_mean = g_hat.mean(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
        gx_mean = (g_hat * x_hat).mean(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
        return (g_hat - g_mean - x_hat * gx_mean) * inv_std.reshape(1, C, 1, 1)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
