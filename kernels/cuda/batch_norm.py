"""Batch normalisation on the device: ``batch_norm`` and ``batch_norm_backward``.

What changes relative to ``kernels.naive`` (read its ``batch_norm`` first): naive's loop over
channels becomes a grid of one block per channel for the reductions, and its loop over the
values becomes a grid-stride loop for the element-wise passes:

- reductions (forward: ``sum(x)``, then ``sum((x - mean)**2)``; backward: ``sum(grad_y)``
  and ``sum((x - mean) * grad_y)``): block ``c`` owns channel ``c``; thread ``t`` first adds
  the values ``t, t + 256, ...`` of the channel's ``N*L`` (consecutive threads read
  consecutive addresses of a row: coalesced), then ``block_tree_sum`` halves the 256 partial
  sums in shared memory. The sums are float64 for float32 inputs too, as naive's and
  PyTorch's CPU kernel (the mean of a constant channel is then that constant, exactly).
  One block per channel means no two blocks add into one place: no
  atomics, and the same bits every run;
- per-channel arithmetic (``inv_std``, the running update, the folded ``alpha``, ``beta``,
  the backward coefficients): one thread per channel, on ``(C,)`` tables that stay on the
  device, so nothing comes back to the host inside a step;
- element-wise passes (``y = x * alpha + beta``, grad_x): the grid-stride loop of
  ``elementwise``; no shared memory.

The running estimates are updated on the device in place (a NumPy pair is copied over,
updated, and written back into the caller's arrays).
"""

from __future__ import annotations

import math

from numba import cuda, float64

from kernels.common import BatchNormOutput, BatchNormSpec, ConvGrads

from ._arrays import SIMULATOR, block_tree_sum, blocks, empty, kernel_cache, numba_dtype
from .elementwise import launch_stride

REDUCE_THREADS = 32 if SIMULATOR else 256
"""Threads of a per-channel reduction block: the slots its tree halves. The simulator runs
each thread as a Python thread, so there a block has 32 (the same code, a shallower tree)."""
CHANNEL_THREADS = 32 if SIMULATOR else 128
"""Threads per block of the one-thread-per-channel kernels."""
SIM_STRIDE_THREADS = 32
"""Threads of the one block of a grid-stride launch in the simulator (256 on a GPU)."""


@kernel_cache
def stats_kernel(DT):
    """Build the per-channel mean / biased variance kernel for dtype ``DT``."""

    @cuda.jit
    def batch_norm_stats(x, stats):
        """stats[0, c] = mean of x[:, c, :], stats[1, c] = its biased variance (two passes).

        x : (N, C, L). Block ``blockIdx.x`` reduces channel ``c``: each thread sums its
        strided share of the ``N*L`` values, ``block_tree_sum`` adds the 256 partials in
        shared memory; then the same for the squared deviations from the mean.
        """
        partial = cuda.shared.array(REDUCE_THREADS, float64)
        N, C, L = x.shape
        c = cuda.blockIdx.x
        t = cuda.threadIdx.x
        M = N * L
        acc = float64(0)
        for e in range(t, M, REDUCE_THREADS):
            n = e // L
            acc += x[n, c, e - n * L]
        partial[t] = acc
        block_tree_sum(partial, t)
        mean = partial[0] / M
        cuda.syncthreads()  # every thread has read partial[0] before it is overwritten
        acc = float64(0)
        for e in range(t, M, REDUCE_THREADS):
            n = e // L
            d = x[n, c, e - n * L] - mean
            acc += d * d
        partial[t] = acc
        block_tree_sum(partial, t)
        if t == 0:
            stats[0, c] = DT(mean)
            stats[1, c] = DT(partial[0] / M)

    return batch_norm_stats


@kernel_cache
def update_kernel(DT):
    """Build the running-estimate update kernel for dtype ``DT``."""

    @cuda.jit
    def batch_norm_update(stats, running_mean, running_var, momentum, count):
        """``running = momentum * batch + (1 - momentum) * running``, in place, per channel.

        stats : (2, C) from ``batch_norm_stats``; the variance that enters is the unbiased
        ``var * count / (count - 1)``. One thread per channel. No shared memory.
        """
        c = cuda.grid(1)
        if c >= stats.shape[1]:
            return
        m = DT(momentum)
        unbiased = stats[1, c] * DT(count) / DT(count - 1)
        running_mean[c] = m * stats[0, c] + (DT(1) - m) * running_mean[c]
        running_var[c] = m * unbiased + (DT(1) - m) * running_var[c]

    return batch_norm_update


@kernel_cache
def affine_kernel(DT):
    """Build the kernel that folds statistics and affine parameters, for dtype ``DT``."""

    @cuda.jit
    def batch_norm_affine(mean, var, weight, bias, coef, eps):
        """coef[:, c] = (mean, inv_std, alpha, beta): ``y = x * alpha + beta`` per channel.

        mean, var, weight, bias : (C,); ``inv_std = 1 / sqrt(var + eps)``, ``alpha = inv_std
        * weight``, ``beta = bias - mean * alpha``. One thread per channel.
        """
        c = cuda.grid(1)
        if c >= mean.shape[0]:
            return
        inv_std = DT(1) / math.sqrt(var[c] + DT(eps))
        alpha = inv_std * weight[c]
        coef[0, c] = mean[c]
        coef[1, c] = inv_std
        coef[2, c] = alpha
        coef[3, c] = bias[c] - mean[c] * alpha

    return batch_norm_affine


@kernel_cache
def apply_kernel(DT):
    """Build the element-wise ``y = x * alpha + beta`` kernel for dtype ``DT``."""

    @cuda.jit
    def batch_norm_apply(x, coef, y):
        """y[n, c, i] = x[n, c, i] * coef[2, c] + coef[3, c], grid-stride over the values.

        x, y : (N, C, L) seen flat through their index ``g = (n*C + c)*L + i``. No shared
        memory.
        """
        N, C, L = x.shape
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for g in range(start, N * C * L, step):
            i = g % L
            nc = g // L
            c = nc % C
            n = nc // C
            y[n, c, i] = x[n, c, i] * coef[2, c] + coef[3, c]

    return batch_norm_apply


@kernel_cache
def grad_sums_kernel(DT):
    """Build the backward's per-channel reduction kernel for dtype ``DT``."""

    @cuda.jit
    def batch_norm_grad_sums(grad_y, x, mean, sums):
        """sums[0, c] = sum(grad_y[:, c, :]), sums[1, c] = sum((x - mean[c]) * grad_y).

        grad_y, x : (N, C, L), mean : (C,). Block ``c`` reduces channel ``c`` as in
        ``batch_norm_stats``, the two sums in two shared arrays of 256 slots.
        """
        part_g = cuda.shared.array(REDUCE_THREADS, float64)
        part_d = cuda.shared.array(REDUCE_THREADS, float64)
        N, C, L = x.shape
        c = cuda.blockIdx.x
        t = cuda.threadIdx.x
        m = float64(mean[c])
        acc_g = float64(0)
        acc_d = float64(0)
        for e in range(t, N * L, REDUCE_THREADS):
            n = e // L
            g = grad_y[n, c, e - n * L]
            acc_g += g
            acc_d += (x[n, c, e - n * L] - m) * g
        part_g[t] = acc_g
        part_d[t] = acc_d
        block_tree_sum(part_g, t)
        block_tree_sum(part_d, t)
        if t == 0:
            sums[0, c] = DT(part_g[0])
            sums[1, c] = DT(part_d[0])

    return batch_norm_grad_sums


@kernel_cache
def grad_coef_kernel(DT):
    """Build the kernel of the backward's per-channel coefficients, for dtype ``DT``."""

    @cuda.jit
    def batch_norm_grad_coef(mean, inv_std, weight, sums, gcoef, count):
        """gcoef[:, c] = (mean, inv_std * weight, total / M, dot * inv_std**2 / M, grad_weight).

        mean, inv_std, weight : (C,); sums : (2, C) = (total, dot) from
        ``batch_norm_grad_sums``; ``grad_weight = dot * inv_std``; ``M = count``. One thread
        per channel.
        """
        c = cuda.grid(1)
        if c >= mean.shape[0]:
            return
        s = inv_std[c]
        gcoef[0, c] = mean[c]
        gcoef[1, c] = s * weight[c]
        gcoef[2, c] = sums[0, c] / DT(count)
        gcoef[3, c] = sums[1, c] * s * s / DT(count)
        gcoef[4, c] = sums[1, c] * s

    return batch_norm_grad_coef


@kernel_cache
def grad_x_kernel(DT):
    """Build the element-wise grad_x kernel for dtype ``DT``."""

    @cuda.jit
    def batch_norm_grad_x(grad_y, x, gcoef, grad_x, training):
        """grad_x = (grad_y [- total/M - (x - mean) * dot*inv_std**2/M]) * inv_std * weight.

        The bracket only in training (``training`` 1). grad_y, x, grad_x : (N, C, L), gcoef
        from ``batch_norm_grad_coef``. Grid-stride over the values; no shared memory.
        """
        N, C, L = x.shape
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for g in range(start, N * C * L, step):
            i = g % L
            nc = g // L
            c = nc % C
            n = nc // C
            v = grad_y[n, c, i]
            if training:
                v = v - gcoef[2, c] - (x[n, c, i] - gcoef[0, c]) * gcoef[3, c]
            grad_x[n, c, i] = v * gcoef[1, c]

    return batch_norm_grad_x


def _stride(kernel, n: int, *args) -> None:
    """A grid-stride launch over ``n`` values (``elementwise``'s; 32 threads in the simulator)."""
    if SIMULATOR:
        kernel[1, SIM_STRIDE_THREADS](*args)
    else:  # pragma: no cover - only on a GPU
        launch_stride(kernel, n, *args)


def _per_channel(kernel, C: int, *args) -> None:
    """Launch a one-thread-per-channel ``kernel`` over ``C`` channels."""
    kernel[blocks(C, CHANNEL_THREADS), CHANNEL_THREADS](*args)


def batch_norm(dx, d_running_mean, d_running_var, dweight, dbias, spec: BatchNormSpec):
    """Device arrays in: x (N, C, L), the running pair (C,) or None, weight, bias (C,).

    Returns ``BatchNormOutput(y (N, C, L), mean (C,), inv_std (C,))``, device arrays; in
    training the running pair is updated in place.
    """
    DT = numba_dtype(dx)
    C = spec.C
    if spec.training:
        stats = empty((2, C), dx.dtype)  # (mean, biased var)
        stats_kernel(DT)[C, REDUCE_THREADS](dx, stats)
        if d_running_mean is not None:
            _per_channel(update_kernel(DT), C, stats, d_running_mean, d_running_var,
                         spec.momentum, spec.count)
        mean, var = stats[0], stats[1]
    else:
        mean, var = d_running_mean, d_running_var
    coef = empty((4, C), dx.dtype)  # (mean, inv_std, alpha, beta)
    _per_channel(affine_kernel(DT), C, mean, var, dweight, dbias, coef, spec.eps)
    dy = empty(dx.shape, dx.dtype)
    _stride(apply_kernel(DT), spec.N * C * spec.L, dx, coef, dy)
    return BatchNormOutput(dy, coef[0], coef[1])


def batch_norm_backward(dgrad_y, dx, dweight, dmean, dinv_std, spec: BatchNormSpec):
    """Device arrays in: grad_y, x (N, C, L), weight, mean, inv_std (C,).

    Returns ``ConvGrads(grad_x (N, C, L), grad_weight (C,), grad_bias (C,))``, device arrays.
    """
    DT = numba_dtype(dx)
    C = spec.C
    sums = empty((2, C), dx.dtype)  # (total, dot)
    grad_sums_kernel(DT)[C, REDUCE_THREADS](dgrad_y, dx, dmean, sums)
    gcoef = empty((5, C), dx.dtype)
    _per_channel(grad_coef_kernel(DT), C, dmean, dinv_std, dweight, sums, gcoef, spec.count)
    dgrad_x = empty(dx.shape, dx.dtype)
    _stride(grad_x_kernel(DT), spec.N * C * spec.L, dgrad_y, dx, gcoef, dgrad_x, spec.training)
    return ConvGrads(dgrad_x, gcoef[4], sums[0])


def kernel_signatures():
    """``[(name, dtype_name, dispatcher, signature)]`` of every kernel here, both dtypes.

    The format of ``kernels.cuda.ptx.kernel_signatures``, for ``numba.cuda.compile_ptx``.
    """
    import numba
    from numba import types

    out = []
    for DT in (numba.float32, numba.float64):
        a1, a2, a3 = (types.Array(DT, ndim, "C") for ndim in (1, 2, 3))
        i64, f64 = types.int64, types.float64

        def add(name, dispatcher, *args, DT=DT):
            out.append((name, str(DT), dispatcher, types.void(*args)))

        add("batch_norm_stats", stats_kernel(DT), a3, a2)
        add("batch_norm_update", update_kernel(DT), a2, a1, a1, f64, i64)
        add("batch_norm_affine", affine_kernel(DT), a1, a1, a1, a1, a2, f64)
        add("batch_norm_apply", apply_kernel(DT), a3, a2, a3)
        add("batch_norm_grad_sums", grad_sums_kernel(DT), a3, a3, a1, a2)
        add("batch_norm_grad_coef", grad_coef_kernel(DT), a1, a1, a1, a2, a2, i64)
        add("batch_norm_grad_x", grad_x_kernel(DT), a3, a3, a2, a3, i64)
    return out
