"""F.batch_norm, F.group_norm, F.layer_norm and their backwards: validate, dispatch.

(group_norm and layer_norm: the section at the end, batch_norm's kernels on another view.)

``x`` is ``(N, C, *)``: an image batch ``(N, C, H, W)``, a sequence batch ``(N, C, L)`` or a
feature batch ``(N, C)``, as ``torch.nn.functional.batch_norm`` takes it. The kernels see it
as ``(N, C, L)`` (``L`` the product of the trailing sizes, 1 when there are none), a view,
and get the problem as one :class:`kernels.common.BatchNormSpec`. ``weight`` and ``bias``
default to ones and zeros here, so every kernel gets arrays.

The forward returns ``y`` as PyTorch's does; with ``return_saved=True`` also the statistics it
used (:class:`BatchNormSaved`), which :func:`batch_norm_backward` takes back, as PyTorch's
``native_batch_norm`` returns ``save_mean`` and ``save_invstd`` for its backward.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from kernels.common import BatchNormSpec

from ..backend import kernel_module
from ._checks import _array, _bool, _is_cuda_array, _run, _same_dtype, _shape_dtype, _zeros
from .conv import conv2d, conv2d_backward


class BatchNormSaved(NamedTuple):
    """What :func:`batch_norm_backward` needs of its forward.

    mean : (C,), the mean that was subtracted: the batch's in training, ``running_mean`` in
    eval; inv_std : (C,), ``1 / sqrt(var + eps)`` of the variance that was used (the batch's
    biased one, or ``running_var``).
    """

    mean: object
    inv_std: object


def _x(x: object, name: str, backend: str | None) -> object:
    """``x`` as a C-contiguous float array of shape (N, C, *), at least 2 dims."""
    shape = _shape_dtype(x)[0] if isinstance(x, np.ndarray) or _is_cuda_array(x) else None
    if shape is not None and len(shape) < 2:
        raise ValueError(f"{name}: expected an array (N, C, *) of at least 2 dims, got shape "
                         f"{tuple(shape)}")
    return _array(x, name, len(shape) if shape is not None else 4, "(N, C, *)", backend)


def _channels(a: object, name: str, C: int, x: object, backend: str | None) -> object:
    """``a`` as a (C,) array of x's dtype (None stays None)."""
    if a is None:
        return None
    a = _array(a, name, 1, f"(C,) = ({C},)", backend)
    _same_dtype(name, a, "x", x)
    if tuple(_shape_dtype(a)[0]) != (C,):
        raise ValueError(f"{name}: expected shape ({C},) (x's channels), got "
                         f"{tuple(_shape_dtype(a)[0])}")
    return a


def _running(a: object, name: str, C: int, x: object, backend: str | None) -> object:
    """A running estimate (C,) the kernel may write into: ``a`` itself, or a contiguous copy.

    A strided view gets a copy, written back by :func:`batch_norm` after the kernel; a
    read-only array is refused, as it cannot be updated in place.
    """
    if isinstance(a, np.ndarray) and not a.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array (it is updated in place when "
                         f"training), got a read-only one")
    return _channels(a, name, C, x, backend)


def _real(value: object, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__} {value!r}")
    return float(value)


def _filled(like: object, C: int, dtype, value: float) -> object:
    """A (C,) array of ``value`` where ``like`` lives (a device array for a CUDA ``like``)."""
    a = np.full(C, value, dtype)
    if _is_cuda_array(like):
        from numba import cuda  # reached only with a CUDA array, so numba-cuda is installed

        return cuda.to_device(a)
    return a


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, return_saved=False, backend=None):
    """Batch normalisation per channel, as ``torch.nn.functional.batch_norm``.

    x : (N, C, *) float32 or float64; running_mean, running_var : (C,) of x's dtype, or None
    (training only); weight, bias : (C,) or None (ones, zeros) -> y : x's shape and dtype,
    ``y = weight * (x - mean) / sqrt(var + eps) + bias``.

    ``training=True``: mean and var are the batch's over ``(N, *)`` (var biased), and
    ``running_mean``, ``running_var`` are updated in place, ``running = (1 - momentum) *
    running + momentum * batch``, with the *unbiased* batch variance (PyTorch's rule; it
    refuses a channel of one value, and so does this). ``training=False``: the running
    estimates are the statistics. ``return_saved=True`` returns ``(y, BatchNormSaved(mean,
    inv_std))`` for :func:`batch_norm_backward`. An empty ``x`` gives an empty ``y`` and
    leaves the running estimates alone (as PyTorch).
    """
    x = _x(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    C = shape[1]
    training = _bool(training, "training")
    momentum, eps = _real(momentum, "momentum"), _real(eps, "eps")
    _bool(return_saved, "return_saved")
    originals = (running_mean, running_var)
    running = [_running(a, name, C, x, backend)
               for a, name in zip(originals, ("running_mean", "running_var"), strict=True)]
    for a, name in zip(running, ("running_mean", "running_var"), strict=True):
        if a is None and not training:
            raise ValueError(f"{name}: expected a ({C},) array when training=False (the "
                             f"running estimates normalise in eval), got None")
    if (running[0] is None) != (running[1] is None):
        raise ValueError("running_mean, running_var: expected both arrays or both None, got "
                         f"{type(originals[0]).__name__} and {type(originals[1]).__name__}")
    weight = _channels(weight, "weight", C, x, backend)
    bias = _channels(bias, "bias", C, x, backend)
    spec = BatchNormSpec.from_shape(shape, training, momentum, eps)
    if training and spec.count == 1:
        raise ValueError(f"x: expected more than 1 value per channel when training, got "
                         f"input of shape {tuple(shape)}")
    if spec.count == 0 or C == 0:
        y = _zeros(x, shape, dtype)
        saved = BatchNormSaved(_filled(x, C, dtype, 0.0), _filled(x, C, dtype, 0.0))
        return (y, saved) if return_saved else y
    weight = _filled(x, C, dtype, 1.0) if weight is None else weight
    bias = _filled(x, C, dtype, 0.0) if bias is None else bias
    out = _run(kernel_module(backend), "batch_norm", x.reshape(spec.x_shape), *running,
               weight, bias, spec)
    for original, used in zip(originals, running, strict=True):
        if training and used is not None and used is not original:
            original[...] = used  # a strided view got a contiguous copy: write it back
    y = out.y.reshape(shape)
    return (y, BatchNormSaved(out.mean, out.inv_std)) if return_saved else y


def batch_norm_backward(grad_y, x, weight, saved_mean, saved_inv_std, training=False, *,
                        backend=None):
    """``(grad_x, grad_weight, grad_bias)`` of :func:`batch_norm`, as PyTorch's.

    grad_y, x : (N, C, *), one shape; weight : (C,) or None (ones); saved_mean,
    saved_inv_std : (C,), the forward's :class:`BatchNormSaved`; ``training`` the forward's.
    -> grad_x : x's shape, grad_weight, grad_bias : (C,) (what a weight and bias would get,
    computed even when the forward had none). In training the batch statistics depend on x,
    which adds the paths through the mean and the variance to grad_x.
    """
    x = _x(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    C = shape[1]
    grad_y = _x(grad_y, "grad_y", backend)
    _same_dtype("grad_y", grad_y, "x", x)
    if tuple(_shape_dtype(grad_y)[0]) != tuple(shape):
        raise ValueError(f"grad_y: expected shape {tuple(shape)} (x's), got "
                         f"{tuple(_shape_dtype(grad_y)[0])}")
    training = _bool(training, "training")
    weight = _channels(weight, "weight", C, x, backend)
    saved = []
    for a, name in ((saved_mean, "saved_mean"), (saved_inv_std, "saved_inv_std")):
        if a is None:
            raise TypeError(f"{name}: expected a ({C},) array (the forward's BatchNormSaved), "
                            f"got None")
        saved.append(_channels(a, name, C, x, backend))
    spec = BatchNormSpec.from_shape(shape, training, 0.0, 0.0)
    if spec.count == 0 or C == 0:
        return (_zeros(x, shape, dtype), _filled(x, C, dtype, 0.0), _filled(x, C, dtype, 0.0))
    weight = _filled(x, C, dtype, 1.0) if weight is None else weight
    grads = _run(kernel_module(backend), "batch_norm_backward",
                 grad_y.reshape(spec.x_shape), x.reshape(spec.x_shape), weight, *saved, spec)
    return (grads.grad_x.reshape(shape), grads.grad_weight, grads.grad_bias)


# --------------------------------------------------------------------------- group_norm, layer_norm
#
# GroupNorm normalises each sample's each group of C // G channels, LayerNorm each sample's
# trailing ``normalized_shape``. Neither has a kernel of its own on any backend: both are
# batch norm's training statistics on another view of x, then a per-channel scale and shift.
#
# - The statistics: x (N, C, *) viewed as (1, N*G, C // G * L) is a batch of one sample whose
#   N*G "channels" are the groups, so the ``batch_norm`` kernel in training (no running
#   estimates, weight 1, bias 0) returns x_hat and each group's mean and inv_std, and
#   ``batch_norm_backward`` on the same view is the gradient through them (its paths
#   through the mean and the variance).
# - The scale and shift ``y[n, c] = weight[c] * x_hat[n, c] + bias[c]`` is a depthwise 1x1
#   convolution (``groups = C``) of x_hat viewed as (N, C, L, 1); ``conv2d_backward`` of it
#   gives dL/dx_hat, grad_weight and grad_bias in one call.
#
# LayerNorm of x (*, normalized_shape) is then GroupNorm with one group of x viewed as
# (R, D): R rows, ``D = prod(normalized_shape)`` "channels", each with its own weight.


class GroupNormSaved(NamedTuple):
    """What :func:`group_norm_backward` (and :func:`layer_norm_backward`) needs of its forward.

    x_hat : ``(x - mean) * inv_std``, x's shape (LayerNorm: (R, D)); mean, inv_std : (N, G),
    each group's (LayerNorm: (R, 1)), ``inv_std = 1 / sqrt(var + eps)``, var biased.
    """

    x_hat: object
    mean: object
    inv_std: object


def _group_spec(shape: tuple[int, ...], G: int, eps: float) -> BatchNormSpec:
    """The batch-norm spec of x (N, C, *) viewed as (1, N*G, C // G * L): groups as channels."""
    N, C = int(shape[0]), int(shape[1])
    return BatchNormSpec(N=1, C=N * G, L=C // G * math.prod(shape[2:]), training=1,
                         momentum=0.0, eps=eps)


def _normalized(x, shape, G, weight, bias, eps, backend):
    """``(y, GroupNormSaved)`` of group norm on a checked x (N, C, *) (module comment above)."""
    dtype = _shape_dtype(x)[1]
    N, C = int(shape[0]), int(shape[1])
    L = math.prod(shape[2:])
    if N * C * L == 0:
        zeros = _zeros(x, shape, dtype)
        stats = _zeros(x, (N, G), dtype)
        return zeros, GroupNormSaved(zeros, stats, stats)
    spec = _group_spec(shape, G, eps)
    out = _run(kernel_module(backend), "batch_norm", x.reshape(spec.x_shape), None, None,
               _filled(x, spec.C, dtype, 1.0), _filled(x, spec.C, dtype, 0.0), spec)
    x_hat = out.y.reshape(shape)
    y = x_hat
    if weight is not None or bias is not None:  # a depthwise 1x1 conv: weight[c] * x + bias[c]
        weight = _filled(x, C, dtype, 1.0) if weight is None else weight
        y = conv2d(x_hat.reshape(N, C, L, 1), weight.reshape(C, 1, 1, 1), bias, groups=C,
                   backend=backend).reshape(shape)
    return y, GroupNormSaved(x_hat, out.mean.reshape(N, G), out.inv_std.reshape(N, G))


def _normalized_backward(grad_y, x, shape, G, weight, saved, backend):
    """``(grad_x, grad_weight (C,), grad_bias (C,))`` of :func:`_normalized`, checked args."""
    dtype = _shape_dtype(x)[1]
    N, C = int(shape[0]), int(shape[1])
    L = math.prod(shape[2:])
    if N * C * L == 0:
        return (_zeros(x, shape, dtype), _filled(x, C, dtype, 0.0), _filled(x, C, dtype, 0.0))
    weight = _filled(x, C, dtype, 1.0) if weight is None else weight
    g_hat, grad_w, grad_b = conv2d_backward(  # (N, C, L, 1), (C, 1, 1, 1), (C,)
        grad_y.reshape(N, C, L, 1), saved.x_hat.reshape(N, C, L, 1), weight.reshape(C, 1, 1, 1),
        groups=C, backend=backend)
    spec = _group_spec(shape, G, 0.0)
    grads = _run(kernel_module(backend), "batch_norm_backward", g_hat.reshape(spec.x_shape),
                 x.reshape(spec.x_shape), _filled(x, spec.C, dtype, 1.0),
                 saved.mean.reshape(spec.C), saved.inv_std.reshape(spec.C), spec)
    return (grads.grad_x.reshape(shape), grad_w.reshape(C), grad_b)


def _num_groups(num_groups: object, C: int) -> int:
    if isinstance(num_groups, (bool, np.bool_)) or not isinstance(num_groups, numbers.Integral):
        raise TypeError(f"num_groups: expected an int, got {type(num_groups).__name__}")
    if num_groups <= 0 or C % num_groups != 0:
        raise ValueError(f"num_groups: expected a positive divisor of the {C} channels of x, "
                         f"got {num_groups}")
    return int(num_groups)


def _saved(saved: object, x_hat_shape: tuple[int, ...], stats_shape: tuple[int, int],
           x: object, backend: str | None) -> GroupNormSaved:
    """``saved`` checked: a :class:`GroupNormSaved` of the forward's shapes and x's dtype."""
    if not isinstance(saved, GroupNormSaved):
        raise TypeError(f"saved: expected the forward's GroupNormSaved (return_saved=True), "
                        f"got {type(saved).__name__}")
    fields = []
    for name, shape in (("x_hat", x_hat_shape), ("mean", stats_shape), ("inv_std", stats_shape)):
        a = _array(getattr(saved, name), f"saved.{name}", len(shape), str(shape), backend)
        _same_dtype(f"saved.{name}", a, "x", x)
        if tuple(_shape_dtype(a)[0]) != tuple(shape):
            raise ValueError(f"saved.{name}: expected shape {tuple(shape)}, got "
                             f"{tuple(_shape_dtype(a)[0])}")
        fields.append(a)
    return GroupNormSaved(*fields)


def _grad_y(grad_y: object, shape: tuple[int, ...], x: object, backend: str | None) -> object:
    grad_y = _array(grad_y, "grad_y", len(shape), str(tuple(shape)), backend)
    _same_dtype("grad_y", grad_y, "x", x)
    if tuple(_shape_dtype(grad_y)[0]) != tuple(shape):
        raise ValueError(f"grad_y: expected shape {tuple(shape)} (x's), got "
                         f"{tuple(_shape_dtype(grad_y)[0])}")
    return grad_y


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5, *, return_saved=False,
               backend=None):
    """Group normalisation, as ``torch.nn.functional.group_norm``.

    x : (N, C, *) float32 or float64; num_groups ``G`` divides C; weight, bias : (C,) or None
    -> y : x's shape, ``y = weight[c] * (x - mean) / sqrt(var + eps) + bias[c]``, mean and
    (biased) var over each sample's group of ``C // G * prod(*)`` values (the module comment
    above: batch_norm's kernels on a view, and a depthwise 1x1 conv). GroupNorm(1, C) is a
    LayerNorm over (C, *) with per-channel affine, GroupNorm(C, C) instance norm.
    ``return_saved=True`` returns ``(y, GroupNormSaved(x_hat, mean (N, G), inv_std (N, G)))``
    for :func:`group_norm_backward`. PyTorch's check: a group of one value over the whole
    batch (``N * C // G * prod(*) == 1``) is refused.
    """
    x = _x(x, "x", backend)
    shape, _ = _shape_dtype(x)
    C = int(shape[1])
    G = _num_groups(num_groups, C)
    weight = _channels(weight, "weight", C, x, backend)
    bias = _channels(bias, "bias", C, x, backend)
    eps = _real(eps, "eps")
    _bool(return_saved, "return_saved")
    if int(shape[0]) * (C // G) * math.prod(shape[2:]) == 1:
        raise ValueError(f"x: expected more than 1 value per group over the batch (N * C // "
                         f"num_groups * prod(*) > 1), got shape {tuple(shape)} with "
                         f"num_groups={G}")
    y, saved = _normalized(x, shape, G, weight, bias, eps, backend)
    return (y, saved) if return_saved else y


def group_norm_backward(grad_y, x, num_groups, weight, saved, *, backend=None):
    """``(grad_x, grad_weight, grad_bias)`` of :func:`group_norm`.

    grad_y, x : (N, C, *), one shape; weight : (C,) or None (ones); saved : the forward's
    :class:`GroupNormSaved` -> grad_x : x's shape, grad_weight, grad_bias : (C,) (computed
    even when the forward had no weight or bias). ``grad_x = inv_std * (g - mean(g) - x_hat
    * mean(g * x_hat))`` per group, ``g = weight[c] * grad_y`` (dL/dx_hat): the two
    subtractions are the paths through the mean and through the variance.
    """
    x = _x(x, "x", backend)
    shape, _ = _shape_dtype(x)
    C = int(shape[1])
    G = _num_groups(num_groups, C)
    grad_y = _grad_y(grad_y, shape, x, backend)
    weight = _channels(weight, "weight", C, x, backend)
    saved = _saved(saved, tuple(shape), (int(shape[0]), G), x, backend)
    return _normalized_backward(grad_y, x, shape, G, weight, saved, backend)


def _normalized_shape(normalized_shape: object) -> tuple[int, ...]:
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape, bool):
        normalized_shape = (normalized_shape,)
    if not isinstance(normalized_shape, (tuple, list)) or not normalized_shape or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
            for s in normalized_shape):
        raise TypeError(f"normalized_shape: expected a positive int or a non-empty sequence "
                        f"of them, got {normalized_shape!r}")
    return tuple(int(s) for s in normalized_shape)


def _rows(x, normalized_shape, backend):
    """Check that x ends in ``normalized_shape``; return ``(x, its shape, (R, D))``."""
    shape = _shape_dtype(x)[0] if isinstance(x, np.ndarray) or _is_cuda_array(x) else None
    ndim = len(shape) if shape is not None else len(normalized_shape)
    x = _array(x, "x", ndim, f"(*, {', '.join(map(str, normalized_shape))})", backend)
    shape = tuple(_shape_dtype(x)[0])
    D = len(normalized_shape)
    if len(shape) < D or shape[len(shape) - D:] != normalized_shape:
        raise ValueError(f"x: expected a shape ending in normalized_shape {normalized_shape}, "
                         f"got {shape}")
    D = math.prod(normalized_shape)
    return x, shape, (math.prod(shape) // D, D)


def _elementwise(a, name, normalized_shape, x, backend):
    """A weight or bias of ``normalized_shape`` (None stays None), as a flat (D,) view."""
    if a is None:
        return None
    a = _array(a, name, len(normalized_shape), str(normalized_shape), backend)
    _same_dtype(name, a, "x", x)
    if tuple(_shape_dtype(a)[0]) != normalized_shape:
        raise ValueError(f"{name}: expected shape {normalized_shape} (normalized_shape), got "
                         f"{tuple(_shape_dtype(a)[0])}")
    return a.reshape(math.prod(normalized_shape))


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5, *, return_saved=False,
               backend=None):
    """Layer normalisation, as ``torch.nn.functional.layer_norm``.

    x : (*, *normalized_shape); weight, bias : ``normalized_shape`` or None -> y : x's shape,
    each sample normalised over its trailing ``normalized_shape`` (mean and biased var of
    ``D = prod(normalized_shape)`` values), then ``weight * x_hat + bias`` element-wise.
    Computed as :func:`group_norm` with one group on x viewed as (R, D), so
    ``return_saved=True`` gives a :class:`GroupNormSaved` with x_hat (R, D), mean and inv_std
    (R, 1) for :func:`layer_norm_backward`.
    """
    normalized_shape = _normalized_shape(normalized_shape)
    x, shape, rows = _rows(x, normalized_shape, backend)
    weight = _elementwise(weight, "weight", normalized_shape, x, backend)
    bias = _elementwise(bias, "bias", normalized_shape, x, backend)
    eps = _real(eps, "eps")
    _bool(return_saved, "return_saved")
    y, saved = _normalized(x.reshape(rows), rows, 1, weight, bias, eps, backend)
    y = y.reshape(shape)
    return (y, saved) if return_saved else y


def layer_norm_backward(grad_y, x, normalized_shape, weight, saved, *, backend=None):
    """``(grad_x, grad_weight, grad_bias)`` of :func:`layer_norm`.

    grad_x has x's shape, grad_weight and grad_bias ``normalized_shape`` (computed even when
    the forward had no weight or bias); ``saved`` the forward's :class:`GroupNormSaved`.
    """
    normalized_shape = _normalized_shape(normalized_shape)
    x, shape, rows = _rows(x, normalized_shape, backend)
    grad_y = _grad_y(grad_y, shape, x, backend)
    weight = _elementwise(weight, "weight", normalized_shape, x, backend)
    saved = _saved(saved, rows, (rows[0], 1), x, backend)
    grad_x, grad_w, grad_b = _normalized_backward(grad_y.reshape(rows), x.reshape(rows), rows,
                                                  1, weight, saved, backend)
    return grad_x.reshape(shape), grad_w.reshape(normalized_shape), grad_b.reshape(
        normalized_shape)
