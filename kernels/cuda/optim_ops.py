"""Optimizer updates on the device: ``torch.optim.SGD`` and ``Adam``/``AdamW`` steps, in place.

What changes relative to ``kernels.naive``: naive's loop over the flat parameter becomes a
grid-stride loop (thread ``g`` of ``G`` updates elements ``g, g + G, ...``; consecutive
threads touch consecutive addresses, so every load and store coalesces), one launch per
parameter tensor. Each element is read and written by one thread only: no shared memory, no
atomics. The hyper-parameters travel as one record (``kernels.common.SgdHyper`` /
``AdamHyper``), read by field, converted to the array's dtype as PyTorch converts its
Python-float scalars.
"""

from __future__ import annotations

import math

from numba import cuda

from kernels.common import AdamHyper, SgdHyper

from ._arrays import kernel_cache, numba_dtype
from .elementwise import flat, launch_stride


@kernel_cache
def sgd_kernel(DT):
    """Build the SGD update kernel for dtype ``DT``."""

    @cuda.jit
    def sgd_update(param, grad, momentum_buffer, hyper, first):
        """One ``torch.optim.SGD`` step, in place.

        param, grad, momentum_buffer : (P,) flat arrays of one length; hyper : SgdHyper;
        first : int, 1 on the first step.

        ::

            d = grad + weight_decay * param          (when weight_decay != 0)
            buf = d                                  (first step, first != 0)
            buf = momentum * buf + (1 - dampening) * d   (later steps)
            d = d + momentum * buf if nesterov else buf  (when momentum != 0)
            param = param - lr * d

        Thread ``g`` (grid-stride over the flat parameter) updates ``param[i]`` and
        ``momentum_buffer[i]`` for ``i = g, g + G, ...``. ``momentum_buffer`` is not touched
        when ``momentum == 0``. No shared memory.
        """
        lr_ = DT(hyper.lr)
        momentum_ = DT(hyper.momentum)
        weight_decay_ = DT(hyper.weight_decay)
        damp = DT(1.0 - hyper.dampening)
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, param.shape[0], step):
            p = param[i]
            d = grad[i]
            if hyper.weight_decay != 0:
                d = d + weight_decay_ * p
            if hyper.momentum != 0:
                if first != 0:
                    b = d
                else:
                    b = momentum_ * momentum_buffer[i] + damp * d
                momentum_buffer[i] = b
                if hyper.nesterov:
                    d = d + momentum_ * b
                else:
                    d = b
            param[i] = p - lr_ * d

    return sgd_update


@kernel_cache
def adam_kernel(DT):
    """Build the Adam / AdamW update kernel for dtype ``DT``."""

    @cuda.jit
    def adam_update(param, grad, m, v, v_max, hyper):
        """One ``torch.optim.Adam`` step (AdamW when ``hyper.decoupled``), in place.

        param, grad, m, v, v_max : (P,) flat arrays of one length (``v_max`` read and written
        only when ``hyper.amsgrad``); hyper : AdamHyper of this step (its formula).
        ``m = lerp(m, g, 1 - beta1)`` is PyTorch's two-sided lerp. Thread ``g`` grid-strides
        over the elements. No shared memory.
        """
        decay = DT(1.0 - hyper.lr * hyper.weight_decay)
        wd = DT(hyper.weight_decay)
        w1 = DT(1.0 - hyper.beta1)
        b2 = DT(hyper.beta2)
        c2 = DT(1.0 - hyper.beta2)
        step_size = DT(hyper.step_size)
        bias2_sqrt = DT(hyper.bias2_sqrt)
        eps = DT(hyper.eps)
        for i in range(cuda.grid(1), param.shape[0], cuda.gridsize(1)):
            p = param[i]
            d = grad[i]
            if hyper.weight_decay != 0:
                if hyper.decoupled:
                    p = p * decay
                else:
                    d = d + wd * p
            mi = m[i]
            if w1 < DT(0.5):
                mi = mi + w1 * (d - mi)
            else:
                mi = d - (d - mi) * (DT(1) - w1)
            m[i] = mi
            vi = v[i] * b2 + c2 * d * d
            v[i] = vi
            if hyper.amsgrad:
                vi = max(v_max[i], vi)
                v_max[i] = vi
            denom = math.sqrt(vi) / bias2_sqrt + eps
            param[i] = p + (-step_size) * (mi / denom)

    return adam_update


def sgd_step(param, grad, momentum_buffer, hyper: SgdHyper, *, first=False):
    """Update ``param`` (and ``momentum_buffer``) in place, as one ``torch.optim.SGD`` step.

    Parameters
    ----------
    param, grad, momentum_buffer : device arrays of one shape (any), one float dtype
        ``momentum_buffer`` may hold anything on the first step (it is overwritten).
    hyper : SgdHyper
        ``lr``, ``momentum``, ``weight_decay``, ``dampening``, ``nesterov``.
    first : bool
        True on the first step: the buffer starts as the gradient, not ``momentum * buf``.

    Examples
    --------
    ``sgd_step(w, grad_w, buf, SgdHyper(lr=0.1, momentum=0.9), first=True)``
    """
    hyper = SgdHyper.of(*hyper)  # one kernel type: (float64 x 4, bool)
    launch_stride(sgd_kernel(numba_dtype(param)), param.size, flat(param), flat(grad),
                  flat(momentum_buffer), hyper, int(bool(first)))


def adam_step(param, grad, m, v, v_max, hyper: AdamHyper):
    """One Adam step in place: device arrays of one shape; ``v_max`` None unless amsgrad."""
    hyper = AdamHyper(*(float(v) for v in hyper[:7]), bool(hyper.amsgrad),
                      bool(hyper.decoupled))  # one kernel type: (float64 x 7, bool, bool)
    v_max = v if v_max is None else v_max  # unread without amsgrad
    launch_stride(adam_kernel(numba_dtype(param)), param.size, flat(param), flat(grad),
                  flat(m), flat(v), flat(v_max), hyper)


def kernel_signatures():
    """``[(name, dtype_name, dispatcher, signature)]`` of every kernel here, both dtypes.

    The format of ``kernels.cuda.ptx.kernel_signatures``, for ``numba.cuda.compile_ptx``.
    """
    import numba
    from numba import types

    sgd = numba.typeof(SgdHyper.of(0.1, 0.9, 1e-4))
    adam = numba.typeof(AdamHyper.at_step(1, 1e-3, (0.9, 0.999), 1e-8, 0.0))
    out = []
    for DT in (numba.float32, numba.float64):
        a1 = types.Array(DT, 1, "C")
        out.append(("sgd_update", str(DT), sgd_kernel(DT),
                    types.void(a1, a1, a1, sgd, types.int64)))
        out.append(("adam_update", str(DT), adam_kernel(DT),
                    types.void(a1, a1, a1, a1, a1, adam)))
    return out


__all__ = ["adam_step", "kernel_signatures", "sgd_step"]
