"""F.batch_norm and its backward: validate, dispatch.

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

import numbers
from typing import NamedTuple

import numpy as np

from kernels.common import BatchNormSpec

from ..backend import kernel_module
from ._checks import _array, _bool, _is_cuda_array, _run, _same_dtype, _shape_dtype, _zeros


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
