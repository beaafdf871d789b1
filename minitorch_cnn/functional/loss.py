"""F.log_softmax, F.nll_loss, F.cross_entropy and F.dropout, with their backwards.

Validate once, build the record (``kernels.common.LossSpec`` / ``DropoutSpec``), dispatch.
Logits are 2-D, ``(N, C)``, the class axis last; targets are int64 class indices ``(N,)``,
checked on the host against ``[0, C)`` with PyTorch's ``IndexError`` (a CUDA device array of
targets is not copied back to be checked: a label out of range gives a NaN loss there).
A loss is a 0-d array of the logits' dtype, where the logits live (NumPy in, NumPy out; a
device array in, a 0-d device array out). Its backward takes ``grad``, the loss's upstream
gradient (1.0 when the loss is the end of the graph), and returns the input's gradient.

``reduction`` is ``"mean"`` (divided by N) or ``"sum"``; PyTorch's ``"none"``, class
``weight``, ``ignore_index`` and ``label_smoothing`` are not implemented (a target of -100,
PyTorch's default ignore_index, is refused as out of bounds).
"""

from __future__ import annotations

import numbers

import numpy as np

from kernels.common import LOSS_MEAN, LOSS_REDUCTIONS, DropoutSpec, LossSpec

from ..backend import kernel_module
from ._checks import (
    _array,
    _bool,
    _check_cuda_backend,
    _is_cuda_array,
    _run,
    _same_dtype,
    _shape_dtype,
    _zeros,
)
from .activation import _any_shape


def _rows(a: object, name: str, backend: str | None) -> object:
    """``a`` as a C-contiguous 2-D float array ``(N, C)``."""
    return _array(a, name, 2, "(N, C)", backend)


def _dim(dim: object) -> None:
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"dim: expected an int, got {type(dim).__name__} {dim!r}")
    if dim not in (1, -1):
        raise ValueError(f"dim: expected 1 or -1 (the class axis of a 2-D input), got {dim}")


def _reduction(reduction: object, shape) -> LossSpec:
    if reduction not in LOSS_REDUCTIONS:
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")
    return LossSpec.from_shape(shape, reduction)


def _grad(grad: object) -> float:
    if isinstance(grad, bool) or not isinstance(grad, numbers.Real):
        raise TypeError(f"grad: expected a real number (the loss's upstream gradient), got "
                        f"{type(grad).__name__}")
    return float(grad)


def _target(target: object, N: int, C: int, backend: str | None) -> object:
    """``target`` as C-contiguous int64 ``(N,)``; host values checked against ``[0, C)``."""
    if _is_cuda_array(target):
        _check_cuda_backend("target", backend)
    elif not isinstance(target, np.ndarray):
        raise TypeError(f"target: expected a numpy.ndarray (N,) of int64 class indices, got "
                        f"{type(target).__name__}")
    shape, dtype = _shape_dtype(target)
    if dtype != np.int64:
        raise TypeError(f"target: expected dtype int64 (PyTorch's Long), got {dtype}; convert "
                        f"with .astype(np.int64)")
    if tuple(shape) != (N,):
        raise ValueError(f"target: expected shape ({N},) (one class per row of the input), got "
                         f"{tuple(shape)}")
    if isinstance(target, np.ndarray):
        bad = target[(target < 0) | (target >= C)]
        if bad.size:
            raise IndexError(f"target: Target {bad[0]} is out of bounds (expected class "
                             f"indices in [0, {C}))")
        target = np.ascontiguousarray(target)
    return target


def _empty_loss(like: object, spec: LossSpec, dtype) -> object:
    """The loss of an empty batch, as PyTorch's: NaN for the mean (0 / 0), 0 for the sum."""
    loss = np.array(np.nan if spec.reduction == LOSS_MEAN else 0.0, dtype)
    if _is_cuda_array(like):
        from numba import cuda  # reached only with a CUDA array, so numba-cuda is installed

        return cuda.to_device(loss)
    return loss


def log_softmax(x, dim=1, *, backend=None):
    """``x - logsumexp(x, dim)``, as ``torch.nn.functional.log_softmax``, stable.

    x : (N, C) float32/float64 -> y : (N, C), x's dtype; ``dim`` is the class axis, 1 or -1.
    """
    _dim(dim)
    x = _rows(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    if 0 in shape:
        return _zeros(x, shape, dtype)
    return _run(kernel_module(backend), "log_softmax", x)


def log_softmax_backward(grad_y, y, dim=1, *, backend=None):
    """grad_x of :func:`log_softmax` from its output: ``grad_y - exp(y) * grad_y.sum(dim)``.

    grad_y, y : (N, C), one dtype -> grad_x : (N, C).
    """
    _dim(dim)
    y = _rows(y, "y", backend)
    grad_y = _rows(grad_y, "grad_y", backend)
    _same_dtype("grad_y", grad_y, "y", y)
    shape, dtype = _shape_dtype(y)
    if tuple(_shape_dtype(grad_y)[0]) != tuple(shape):
        raise ValueError(f"grad_y: expected shape {tuple(shape)} (y's), got "
                         f"{tuple(_shape_dtype(grad_y)[0])}")
    if 0 in shape:
        return _zeros(y, shape, dtype)
    return _run(kernel_module(backend), "log_softmax_backward", grad_y, y)


def _loss_inputs(x, name, target, reduction, backend):
    x = _rows(x, name, backend)
    shape, dtype = _shape_dtype(x)
    spec = _reduction(reduction, shape)
    return x, _target(target, shape[0], shape[1], backend), spec, dtype


def nll_loss(logp, target, reduction="mean", *, backend=None):
    """``-sum_n logp[n, target[n]]``, divided by N for ``"mean"``, as ``F.nll_loss``.

    logp : (N, C) log-probabilities, float32/float64; target : (N,) int64 in ``[0, C)``
    -> the loss, 0-d, logp's dtype (NaN for an empty batch's mean).
    """
    logp, target, spec, dtype = _loss_inputs(logp, "logp", target, reduction, backend)
    if spec.N == 0:
        return _empty_loss(logp, spec, dtype)
    return _run(kernel_module(backend), "nll_loss", logp, target, spec)


def nll_loss_backward(logp, target, reduction="mean", *, grad=1.0, backend=None):
    """grad_logp of :func:`nll_loss`: ``-grad / N`` (``-grad`` for ``"sum"``) at each
    ``(n, target[n])``, 0 elsewhere.

    logp : (N, C) (its shape and dtype), target : (N,) int64 -> grad_logp : (N, C).
    """
    grad = _grad(grad)
    logp, target, spec, dtype = _loss_inputs(logp, "logp", target, reduction, backend)
    if spec.N == 0 or spec.C == 0:
        return _zeros(logp, (spec.N, spec.C), dtype)
    return _run(kernel_module(backend), "nll_loss_backward", logp, target, grad, spec)


def cross_entropy(logits, target, reduction="mean", *, backend=None):
    """``nll_loss(log_softmax(logits), target)``, fused, as ``F.cross_entropy``.

    logits : (N, C) float32/float64; target : (N,) int64 in ``[0, C)`` -> the loss, 0-d,
    the logits' dtype: ``sum_n (logsumexp(logits[n]) - logits[n, target[n]])``, divided by
    N for ``"mean"``.
    """
    logits, target, spec, dtype = _loss_inputs(logits, "logits", target, reduction, backend)
    if spec.N == 0:
        return _empty_loss(logits, spec, dtype)
    return _run(kernel_module(backend), "cross_entropy", logits, target, spec)


def cross_entropy_backward(logits, target, reduction="mean", *, grad=1.0, backend=None):
    """grad_logits of :func:`cross_entropy`: ``(softmax(logits) - one_hot(target)) * s``.

    ``s = grad / N`` for ``"mean"``, ``grad`` for ``"sum"``: the fused, stable form of
    ``log_softmax_backward(nll_loss_backward(...))``. logits : (N, C), target : (N,) int64
    -> grad_logits : (N, C).
    """
    grad = _grad(grad)
    logits, target, spec, dtype = _loss_inputs(logits, "logits", target, reduction, backend)
    if spec.N == 0:
        return _zeros(logits, (spec.N, spec.C), dtype)
    return _run(kernel_module(backend), "cross_entropy_backward", logits, target, grad, spec)


# --------------------------------------------------------------------------- dropout


def _probability(p: object) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"p: expected a float in [0, 1], got {type(p).__name__}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p: dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def _random_seed(random_seed: object) -> int:
    if isinstance(random_seed, bool) or not isinstance(random_seed, numbers.Integral):
        raise TypeError(f"random_seed: expected an int, got {type(random_seed).__name__} "
                        f"{random_seed!r}")
    if not 0 <= random_seed < 2**63:
        raise ValueError(f"random_seed: expected an int in [0, 2**63), got {random_seed}")
    return int(random_seed)


def dropout(x, p=0.5, training=True, *, random_seed, return_mask=False, backend=None):
    """Zero each element with probability ``p``, scale the rest by ``1 / (1 - p)``.

    As ``torch.nn.functional.dropout``, with the randomness named: ``random_seed`` (an int >= 0)
    fixes the mask, the same random seed giving the same mask on one backend. The CPU backends draw
    with NumPy's ``Generator`` (all three agree); ``cuda`` with a counter-based generator
    (SplitMix64 of the element's index, ``kernels.cuda.loss``), so its masks differ from the
    CPU's. ``training=False`` (or ``p == 0``) returns a copy of ``x`` and a mask of ones;
    ``p == 1`` returns ``x * 0``.

    x : any shape, float32/float64 -> y : that shape and dtype; with ``return_mask=True``,
    ``(y, mask)``, ``mask`` uint8 of that shape (1 kept, 0 dropped), where ``x`` lives: what
    :func:`dropout_backward` needs.
    """
    p = _probability(p)
    training = _bool(training, "training")
    return_mask = _bool(return_mask, "return_mask")
    spec = DropoutSpec.from_p(p if training else 0.0, _random_seed(random_seed))
    x = _any_shape(x, "x", backend)
    shape, dtype = _shape_dtype(x)
    if 0 in shape:
        y, mask = _zeros(x, shape, dtype), _zeros(x, shape, np.uint8)
    else:
        y, mask = _run(kernel_module(backend), "dropout", x, spec)
    return (y, mask) if return_mask else y


def dropout_backward(grad_y, mask, p, *, backend=None):
    """grad_x of :func:`dropout`: ``grad_y / (1 - p)`` where ``mask`` kept, else 0.

    grad_y : any shape, float; mask : that shape, uint8 (from ``dropout(...,
    return_mask=True)``); p : the forward's probability -> grad_x : grad_y's shape and dtype.
    """
    spec = DropoutSpec.from_p(_probability(p), 0)
    grad_y = _any_shape(grad_y, "grad_y", backend)
    shape, dtype = _shape_dtype(grad_y)
    if _is_cuda_array(mask):
        _check_cuda_backend("mask", backend)
    elif not isinstance(mask, np.ndarray):
        raise TypeError(f"mask: expected a numpy.ndarray of uint8, got {type(mask).__name__}")
    mask_shape, mask_dtype = _shape_dtype(mask)
    if mask_dtype != np.uint8:
        raise TypeError(f"mask: expected dtype uint8 (from dropout(..., return_mask=True)), "
                        f"got {mask_dtype}")
    if tuple(mask_shape) != tuple(shape):
        raise ValueError(f"mask: expected shape {tuple(shape)} (grad_y's), got "
                         f"{tuple(mask_shape)}")
    if isinstance(mask, np.ndarray):
        mask = np.ascontiguousarray(mask).reshape(shape)
    if 0 in shape:
        return _zeros(grad_y, shape, dtype)
    return _run(kernel_module(backend), "dropout_backward", grad_y, mask, spec)
