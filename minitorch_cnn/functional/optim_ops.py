"""F.sgd_step and F.adam_step: ``torch.optim``'s updates of one parameter, in place.

Validate once, build the record (``kernels.common.SgdHyper`` / ``AdamHyper``), dispatch. The
arrays updated in place (the parameter and the optimizer state) must be C-contiguous,
writeable arrays of the parameter's shape and dtype, where the backend computes (NumPy for
the CPU backends; for ``cuda`` a device array, or a NumPy array that is copied over and back):
a copy would be updated instead of them, so they are refused rather than copied. The
gradient may have any layout. The hyper-parameters are checked with PyTorch's rules and
messages (``Invalid learning rate``, ...), each naming the argument.

How ``minitorch_cnn.optim`` would call these (not yet wired): ``SGD.step`` keeps
``state[p] = F.sgd_step(p.data, p.grad, state.get(p), lr, momentum, dampening, nesterov,
weight_decay)`` (the first call allocates the momentum buffer and returns it); ``Adam.step``
keeps ``m``, ``v`` (zeros, where the parameter lives) and ``step`` per parameter, increments
``step`` and calls ``F.adam_step(p.data, p.grad, m, v, step, lr, betas, eps, weight_decay)``.
"""

from __future__ import annotations

import numbers

import numpy as np

from kernels.common import AdamHyper, SgdHyper

from ..backend import kernel_module
from ._checks import (
    _bool,
    _check_cuda_backend,
    _is_cuda_array,
    _run,
    _same_dtype,
    _shape_dtype,
    _zeros,
)
from .activation import _any_shape


def _in_place(a: object, name: str, like: object | None, backend: str | None) -> object:
    """``a`` itself, if it can be updated in place: a C-contiguous writeable float array
    (of ``like``'s shape and dtype when given); else a TypeError/ValueError naming ``name``.
    """
    if _is_cuda_array(a):
        _check_cuda_backend(name, backend)
    elif not isinstance(a, np.ndarray) or isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name}: expected a numpy.ndarray of float32 or float64 (updated in "
                        f"place), got {type(a).__name__}")
    shape, dtype = _shape_dtype(a)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name}: expected dtype float32 or float64 (native byte order), got "
                        f"{dtype}")
    if isinstance(a, np.ndarray) and not (a.flags.c_contiguous and a.flags.writeable):
        raise ValueError(f"{name}: expected a C-contiguous, writeable array (it is updated in "
                         f"place), got a {'read-only' if not a.flags.writeable else 'strided'}"
                         f" one; pass np.ascontiguousarray(...) and keep that array")
    if like is not None:
        _same_dtype(name, a, "param", like)
        if tuple(shape) != tuple(_shape_dtype(like)[0]):
            raise ValueError(f"{name}: expected shape {tuple(_shape_dtype(like)[0])} (param's), "
                             f"got {tuple(shape)}")
    return a


def _gradient(grad: object, param: object, backend: str | None) -> object:
    grad = _any_shape(grad, "grad", backend)
    _same_dtype("grad", grad, "param", param)
    if tuple(_shape_dtype(grad)[0]) != tuple(_shape_dtype(param)[0]):
        raise ValueError(f"grad: expected shape {tuple(_shape_dtype(param)[0])} (param's), got "
                         f"{tuple(_shape_dtype(grad)[0])}")
    return grad


def _number(value: object, name: str, what: str, ok) -> float:
    """``value`` as a float, else TypeError; ValueError ``Invalid <what>`` unless ``ok``.

    The ValueError's words are PyTorch's (``Invalid learning rate: -1``), after the name.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    if not ok(float(value)):
        raise ValueError(f"{name}: Invalid {what}: {value}")
    return float(value)


def sgd_step(param, grad, buf, lr, momentum=0.0, dampening=0.0, nesterov=False,
             weight_decay=0.0, *, backend=None):
    """One ``torch.optim.SGD`` step on ``param``, in place; returns the momentum buffer.

    param : any shape, float32/float64, C-contiguous and writeable (updated in place);
    grad : param's shape and dtype; buf : the momentum buffer the previous call returned,
    or ``None`` on the first step (then a new one is allocated where ``param`` lives and
    returned; PyTorch's buffer starts as the first ``d``). With ``momentum == 0`` no buffer is
    kept and ``None`` comes back. The update (``kernels.common.SgdHyper``)::

        d = grad + weight_decay * param
        buf = momentum * buf + (1 - dampening) * d        (buf = d on the first step)
        d = d + momentum * buf if nesterov else buf       (when momentum != 0)
        param -= lr * d
    """
    param = _in_place(param, "param", None, backend)
    grad = _gradient(grad, param, backend)
    lr = _number(lr, "lr", "learning rate", lambda v: v >= 0)
    momentum = _number(momentum, "momentum", "momentum value", lambda v: v >= 0)
    dampening = _number(dampening, "dampening", "dampening value", lambda v: True)
    weight_decay = _number(weight_decay, "weight_decay", "weight_decay value", lambda v: v >= 0)
    nesterov = _bool(nesterov, "nesterov")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov: Nesterov momentum requires a momentum and zero dampening, "
                         f"got momentum={momentum}, dampening={dampening}")
    first = buf is None
    shape, dtype = _shape_dtype(param)
    if momentum == 0:
        buf = None
    elif first:
        buf = _zeros(param, shape, dtype)
    else:
        buf = _in_place(buf, "buf", param, backend)
    if 0 in shape:
        return buf
    hyper = SgdHyper.of(lr, momentum, weight_decay, dampening, nesterov)
    scratch = buf if buf is not None else param  # unread when momentum == 0
    _run(kernel_module(backend), "sgd_step", param, grad, scratch, hyper, first=first)
    return buf


def adam_step(param, grad, m, v, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              *, amsgrad=False, v_max=None, decoupled_weight_decay=False, backend=None):
    """One ``torch.optim.Adam`` step on ``param`` (``AdamW`` with ``decoupled_weight_decay``).

    param : any shape, float32/float64, C-contiguous and writeable; grad : its shape and
    dtype; m, v : the first and second moments, param's shape and dtype, zeros before the
    first step, updated in place; step : this step's number, 1 on the first call (PyTorch's
    ``state['step']`` after its increment); v_max : with ``amsgrad=True``, the running
    maximum of ``v`` (zeros at first), updated in place. The update is
    ``kernels.common.AdamHyper``'s; returns None.
    """
    param = _in_place(param, "param", None, backend)
    grad = _gradient(grad, param, backend)
    m = _in_place(m, "m", param, backend)
    v = _in_place(v, "v", param, backend)
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step: expected an int, got {type(step).__name__} {step!r}")
    if step < 1:
        raise ValueError(f"step: expected the step number, >= 1 (1 on the first update), got "
                         f"{step}")
    lr = _number(lr, "lr", "learning rate", lambda x: x >= 0)
    eps = _number(eps, "eps", "epsilon value", lambda x: x >= 0)
    weight_decay = _number(weight_decay, "weight_decay", "weight_decay value", lambda x: x >= 0)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas: expected a pair of floats, got {betas!r}")
    for i, beta in enumerate(betas):
        _number(beta, "betas", f"beta parameter at index {i}", lambda x: 0 <= x < 1)
    amsgrad = _bool(amsgrad, "amsgrad")
    decoupled = _bool(decoupled_weight_decay, "decoupled_weight_decay")
    if amsgrad:
        if v_max is None:
            raise ValueError("v_max: expected an array of param's shape (zeros at first) with "
                             "amsgrad=True, got None")
        v_max = _in_place(v_max, "v_max", param, backend)
    else:
        v_max = None
    if 0 in _shape_dtype(param)[0]:
        return None
    hyper = AdamHyper.at_step(int(step), lr, betas, eps, weight_decay)._replace(
        amsgrad=amsgrad, decoupled=decoupled)
    _run(kernel_module(backend), "adam_step", param, grad, m, v, v_max, hyper)
    return None
