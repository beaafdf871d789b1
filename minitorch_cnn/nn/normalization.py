"""BatchNorm2d, LayerNorm and GroupNorm: normalise, then scale and shift.

All three compute ``x_hat = (x - mean) / sqrt(var + eps)`` (biased var) over some axes and
return ``y = weight * x_hat + bias``; they differ only in the axes:

- BatchNorm2d: over (N, H, W), per channel; weight and bias (C,);
- LayerNorm: over the last ``len(normalized_shape)`` dims, per sample; weight and bias
  ``normalized_shape``;
- GroupNorm: over (C // G, *), per sample and group of channels; weight and bias (C,).

So one backward serves LayerNorm and GroupNorm (:func:`normalize_backward`); BatchNorm2d
calls ``F.batch_norm`` / ``F.batch_norm_backward``, which run on every backend. Only
BatchNorm2d keeps running statistics and behaves differently in eval mode. Parameter names,
shapes, initialisation (weight ones, bias zeros) and ``state_dict`` keys are PyTorch's.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .. import functional as F
from .module import Module, Parameter


def normalize_backward(g_hat: np.ndarray, x_hat: np.ndarray, inv_std: np.ndarray,
                       axes: tuple[int, ...]) -> np.ndarray:
    """``grad_x`` of ``x_hat = (x - mean(x)) * inv_std`` when mean and var are over ``axes``.

    g_hat : dL/dx_hat, same shape as x_hat; inv_std : x_hat's shape with ``axes`` of size 1.
    ``grad_x = inv_std * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat))``, the means over
    ``axes``: the two subtractions are the paths through the mean and through the variance.
    """
    g_mean = g_hat.mean(axis=axes, keepdims=True)
    gx_mean = (g_hat * x_hat).mean(axis=axes, keepdims=True)
    return (g_hat - g_mean - x_hat * gx_mean) * inv_std


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


def _affine_parameters(module: Module, shape: tuple[int, ...], affine: bool, bias: bool) -> None:
    """PyTorch's ``weight`` (ones) and ``bias`` (zeros) of ``shape``, or None where absent."""
    if affine:
        module.weight = Parameter(np.ones(shape, np.float32))
        if bias:
            module.bias = Parameter(np.zeros(shape, np.float32))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


class NormCache(NamedTuple):
    """What LayerNorm's and GroupNorm's backward needs.

    x_hat : the normalised input, the input's shape; inv_std : ``1 / sqrt(var + eps)``, the
    input's shape with the normalised axes of size 1 (GroupNorm: (N, G, 1)).
    """

    x_hat: np.ndarray
    inv_std: np.ndarray


# --------------------------------------------------------------------------- BatchNorm2d


class BatchNormCache(NamedTuple):
    """What BatchNorm2d's backward needs: the input and the forward's saved statistics.

    x : (N, C, H, W), in the dtype the layer computed in; mean, inv_std : (C,), what
    ``F.batch_norm(..., return_saved=True)`` returned (the batch's in training, the running
    ones in eval); training : whether batch statistics were used (they depend on x, so the
    gradient has two more terms).
    """

    x: object
    mean: object
    inv_std: object
    training: bool


def _in_dtype(a, dtype):
    """A NumPy ``a`` in ``dtype`` (a copy), so F sees one dtype; a device array as it is."""
    return a.astype(dtype) if isinstance(a, np.ndarray) else a


class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) per channel, PyTorch's train/eval semantics.

    x : (N, C, H, W) -> ``y = weight * (x - mean) / sqrt(var + eps) + bias``, where in
    training mean and var are the batch's (biased var), and the running estimates are
    updated with ``running = (1 - momentum) * running + momentum * batch`` (the *unbiased*
    var goes into running_var; ``momentum=None`` means a cumulative average, factor ``1 /
    num_batches_tracked``). In eval the running estimates are used. weight : (C,) ones,
    bias : (C,) zeros. The arithmetic is ``F.batch_norm`` / ``F.batch_norm_backward`` on the
    current backend; parameters and running estimates of another dtype than x are taken in
    x's dtype (the running estimates are stored back in their own).
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

    def forward(self, x: np.ndarray) -> np.ndarray:
        shape = getattr(x, "shape", ())
        if len(shape) != 4 or shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d: expected x of shape (N, {self.num_features}, H, W), got {shape}"
            )
        dtype = x.dtype
        factor = 0.0
        if self.training:  # PyTorch's exponential_average_factor
            tracked = self.num_batches_tracked + 1
            factor = 1.0 / float(tracked) if self.momentum is None else float(self.momentum)
        rm, rv = self.running_mean, self.running_var
        running_mean, running_var = _in_dtype(rm, dtype), _in_dtype(rv, dtype)  # F updates them
        y, saved = F.batch_norm(x, running_mean, running_var,
                                _in_dtype(self.weight.data, dtype),
                                _in_dtype(self.bias.data, dtype), self.training, factor,
                                self.eps, return_saved=True)
        if self.training:
            self.num_batches_tracked = tracked
            self.running_mean = _in_dtype(running_mean, getattr(rm, "dtype", dtype))
            self.running_var = _in_dtype(running_var, getattr(rv, "dtype", dtype))
        self._save(BatchNormCache(x, saved.mean, saved.inv_std, self.training))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x, mean, inv_std, training = self._restore()
        if isinstance(grad_y, np.ndarray) and grad_y.dtype != x.dtype:
            grad_y = grad_y.astype(x.dtype)
        grad_x, grad_weight, grad_bias = F.batch_norm_backward(
            grad_y, x, _in_dtype(self.weight.data, x.dtype), mean, inv_std, training)
        self.weight.accumulate_grad(grad_weight)
        self.bias.accumulate_grad(grad_bias)
        return grad_x

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


# --------------------------------------------------------------------------- LayerNorm


class LayerNorm(Module):
    """Normalise each sample over its last ``len(normalized_shape)`` dims.

    x : (*, *normalized_shape) -> y : same shape, ``y = weight * x_hat + bias`` with
    ``x_hat = (x - mean) / sqrt(var + eps)``, mean and (biased) var over the trailing dims.
    weight, bias : ``normalized_shape``, ones and zeros; absent with
    ``elementwise_affine=False`` (bias alone absent with ``bias=False``). The same in train
    and eval: there are no running statistics.

    Parameters
    ----------
    normalized_shape : int or sequence of int
        The trailing shape to normalise over: ``C`` for (N, L, C) tokens, ``(C, H, W)`` for
        a whole image.
    """

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(
                f"normalized_shape: expected an int or a sequence of ints, got "
                f"{type(normalized_shape).__name__}"
            )
        if not normalized_shape:
            raise ValueError("normalized_shape: expected at least one dimension, got ()")
        self.normalized_shape = tuple(
            _positive_int("normalized_shape", size) for size in normalized_shape
        )
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias)

    def _axes(self, x: np.ndarray) -> tuple[int, ...]:
        D = len(self.normalized_shape)
        if x.ndim < D or x.shape[x.ndim - D:] != self.normalized_shape:
            raise ValueError(
                f"LayerNorm: expected x of shape (*, {', '.join(map(str, self.normalized_shape))}) "
                f"(ending in normalized_shape), got {x.shape}"
            )
        return tuple(range(x.ndim - D, x.ndim))  # the trailing dims

    def forward(self, x: np.ndarray) -> np.ndarray:
        axes = self._axes(x)
        mean = x.mean(axis=axes, keepdims=True)  # (*, 1, ..., 1)
        var = x.var(axis=axes, keepdims=True)  # biased
        inv_std = 1.0 / np.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std  # (*, *normalized_shape)
        self._save(NormCache(x_hat, inv_std))
        if self.weight is None:
            return x_hat
        y = x_hat * self.weight.data  # weight broadcasts over the leading dims
        return y if self.bias is None else y + self.bias.data

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x_hat, inv_std = self._restore()
        if self.weight is None:
            return normalize_backward(grad_y, x_hat, inv_std, self._axes(x_hat))
        leading = tuple(range(x_hat.ndim - len(self.normalized_shape)))  # summed out
        self.weight.accumulate_grad((grad_y * x_hat).sum(axis=leading))
        if self.bias is not None:
            self.bias.accumulate_grad(grad_y.sum(axis=leading))
        g_hat = grad_y * self.weight.data  # dL/dx_hat
        return normalize_backward(g_hat, x_hat, inv_std, self._axes(x_hat))

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


# --------------------------------------------------------------------------- GroupNorm


class GroupNorm(Module):
    """Split the C channels into ``num_groups`` groups; normalise each sample's each group.

    x : (N, C, *) (any number of trailing dims, none included) -> y : same shape.
    ``x_hat`` uses the mean and (biased) var of the ``C // G * prod(*)`` values of one group
    of one sample; ``y = weight[c] * x_hat + bias[c]`` per channel. weight, bias : (C,), ones
    and zeros; absent with ``affine=False`` (bias alone with ``bias=False``). GroupNorm(1, C)
    normalises like a LayerNorm over (C, H, W) with per-channel affine; GroupNorm(C, C) is
    instance norm.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, *, bias: bool = True) -> None:
        super().__init__()
        self.num_groups = _positive_int("num_groups", num_groups)
        self.num_channels = _positive_int("num_channels", num_channels)
        if num_channels % num_groups != 0:
            raise ValueError(
                f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        self.eps = eps
        self.affine = affine
        _affine_parameters(self, (self.num_channels,), affine, bias)

    def _channel_shape(self, x: np.ndarray) -> tuple[int, ...]:
        """(1, C, 1, ..., 1): a per-channel array broadcast against x."""
        return (1, self.num_channels) + (1,) * (x.ndim - 2)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"GroupNorm: expected x of shape (N, {self.num_channels}, *), got {x.shape}"
            )
        N, G = x.shape[0], self.num_groups
        if N * (x.size // (N * G)) == 1:  # PyTorch's check (in eval mode too)
            raise ValueError(
                f"GroupNorm: expected more than 1 value per group over the batch (N * C // "
                f"num_groups * prod(*) > 1), got x of shape {x.shape} with num_groups={G}"
            )
        groups = x.reshape(N, G, -1)  # (N, G, C // G * prod(*))
        mean = groups.mean(axis=2, keepdims=True)  # (N, G, 1)
        var = groups.var(axis=2, keepdims=True)  # (N, G, 1), biased
        inv_std = 1.0 / np.sqrt(var + self.eps)
        x_hat = ((groups - mean) * inv_std).reshape(x.shape)  # (N, C, *)
        self._save(NormCache(x_hat, inv_std))
        if self.weight is None:
            return x_hat
        y = x_hat * self.weight.data.reshape(self._channel_shape(x))
        return y if self.bias is None else y + self.bias.data.reshape(self._channel_shape(x))

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x_hat, inv_std = self._restore()
        N, G = x_hat.shape[0], self.num_groups
        g_hat = grad_y
        if self.weight is not None:
            not_channel = (0,) + tuple(range(2, x_hat.ndim))  # (N, *)
            self.weight.accumulate_grad((grad_y * x_hat).sum(axis=not_channel))
            if self.bias is not None:
                self.bias.accumulate_grad(grad_y.sum(axis=not_channel))
            g_hat = grad_y * self.weight.data.reshape(self._channel_shape(x_hat))
        grad_groups = normalize_backward(g_hat.reshape(N, G, -1), x_hat.reshape(N, G, -1),
                                         inv_std, axes=(2,))  # (N, G, C // G * prod(*))
        return grad_groups.reshape(x_hat.shape)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")
