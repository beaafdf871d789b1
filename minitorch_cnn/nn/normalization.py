"""BatchNorm2d, LayerNorm and GroupNorm: normalise, then scale and shift.

All three compute ``x_hat = (x - mean) / sqrt(var + eps)`` (biased var) over some axes and
return ``y = weight * x_hat + bias``; they differ only in the axes:

- BatchNorm2d: over (N, H, W), per channel; weight and bias (C,);
- LayerNorm: over the last ``len(normalized_shape)`` dims, per sample; weight and bias
  ``normalized_shape``;
- GroupNorm: over (C // G, *), per sample and group of channels; weight and bias (C,).

All three run on every backend through the functional API: BatchNorm2d calls ``F.batch_norm``
/ ``F.batch_norm_backward``; LayerNorm and GroupNorm call ``F.layer_norm`` / ``F.group_norm``,
which are batch_norm's kernels on a view of x (the groups as its channels) and a depthwise
1x1 conv for the scale and shift (``minitorch_cnn.functional.normalization``). Only
BatchNorm2d keeps running statistics and behaves differently in eval mode. Parameter names,
shapes, initialisation (weight ones, bias zeros) and ``state_dict`` keys are PyTorch's.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .. import functional as F
from .module import Module, Parameter


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

    x : the input; saved : the forward's :class:`~minitorch_cnn.functional.GroupNormSaved`.
    """

    x: object
    saved: object


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


def _affine(module: Module, dtype) -> tuple[object, object]:
    """The module's weight and bias (or None where absent) in x's dtype."""
    return tuple(None if p is None else _in_dtype(p.data, dtype)
                 for p in (module.weight, module.bias))


def _accumulate(module: Module, grad_weight, grad_bias) -> None:
    """Add the gradients to the module's weight and bias, where it has them."""
    for p, grad in ((module.weight, grad_weight), (module.bias, grad_bias)):
        if p is not None:
            p.accumulate_grad(grad)


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
        self._axes(x)
        y, saved = F.layer_norm(x, self.normalized_shape, *_affine(self, x.dtype), self.eps,
                                return_saved=True)
        self._save(NormCache(x, saved))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x, saved = self._restore()
        grad_y = _in_dtype(grad_y, x.dtype) if grad_y.dtype != x.dtype else grad_y
        grad_x, grad_weight, grad_bias = F.layer_norm_backward(
            grad_y, x, self.normalized_shape, _affine(self, x.dtype)[0], saved)
        _accumulate(self, grad_weight, grad_bias)
        return grad_x

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

    def forward(self, x: np.ndarray) -> np.ndarray:
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) < 2 or shape[1] != self.num_channels:
            raise ValueError(
                f"GroupNorm: expected x of shape (N, {self.num_channels}, *), got {shape}"
            )
        y, saved = F.group_norm(x, self.num_groups, *_affine(self, x.dtype), self.eps,
                                return_saved=True)
        self._save(NormCache(x, saved))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x, saved = self._restore()
        grad_y = _in_dtype(grad_y, x.dtype) if grad_y.dtype != x.dtype else grad_y
        grad_x, grad_weight, grad_bias = F.group_norm_backward(
            grad_y, x, self.num_groups, _affine(self, x.dtype)[0], saved)
        _accumulate(self, grad_weight, grad_bias)
        return grad_x

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")
