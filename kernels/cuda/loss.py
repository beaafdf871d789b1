"""Losses and dropout on the device: log_softmax, nll_loss, cross_entropy, dropout.

What changes relative to ``kernels.naive``: naive's loop over the rows becomes one thread per
row (grid-stride over the samples: a classifier's rows are short, 10 classes for MNIST, so a
thread reads its whole row), and the loop over the elements of a backward becomes one thread
per element (``threadIdx.x`` walks the classes, so a warp's loads coalesce). The batch sum of a
loss is one block of ``REDUCE_THREADS`` threads adding the per-row losses in an order fixed by
N alone, then a shared-memory tree (:func:`~kernels.cuda._arrays.block_tree_sum`): the same
inputs give the same bits every run, with no atomics. Every ``exp`` sees ``x - max <= 0``.

Dropout's mask cannot come from NumPy's Generator on the device. Each element draws its
uniform from a *counter-based* generator: element ``i``'s draw is the ``i``-th output of
SplitMix64 seeded with ``random_seed`` (Steele, Lea and Flood, "Fast splittable
pseudorandom number generators", OOPSLA 2014; the constants of Vigna's ``splitmix64.c`` and Java's
``SplittableRandom``), computed directly from ``(random_seed, i)`` with no state to carry between
threads or calls. So the mask depends on ``random_seed`` and the element's index only,
not on the grid: one random seed gives one mask on any GPU and in the simulator (a
different one from the CPU backends', whose draws are NumPy's).

"""

from __future__ import annotations

import contextlib
import math
import warnings

import numba
from numba import cuda

from ._arrays import SIMULATOR, block_tree_sum, empty, kernel_cache, numba_dtype
from .elementwise import THREADS, flat, launch_stride

REDUCE_THREADS = 128
"""Threads of the one block that adds the per-sample losses (a power of two)."""


# --------------------------------------------------------------------------- log_softmax


@kernel_cache
def log_softmax_kernel(DT):
    """Build the row-wise log_softmax kernel for dtype ``DT``."""

    @cuda.jit
    def log_softmax_rows(x, y):
        """y[n, k] = x[n, k] - m_n - log(sum_j exp(x[n, j] - m_n)), m_n row n's maximum.

        x, y : (N, C). Thread ``g`` (grid-stride over the rows) owns row ``n = g, g + G,
        ...``: three passes over it (max, sum of exponentials, write). No shared memory.
        """
        N, C = x.shape
        for n in range(cuda.grid(1), N, cuda.gridsize(1)):
            m = x[n, 0]
            for k in range(1, C):
                m = max(m, x[n, k])
            total = DT(0)
            for k in range(C):
                total += math.exp(x[n, k] - m)
            lse = math.log(total)
            for k in range(C):
                y[n, k] = x[n, k] - m - lse

    return log_softmax_rows


@kernel_cache
def log_softmax_backward_kernel(DT):
    """Build the row-wise log_softmax backward kernel for dtype ``DT``."""

    @cuda.jit
    def log_softmax_backward_rows(grad_y, y, grad_x):
        """grad_x[n, k] = grad_y[n, k] - exp(y[n, k]) * sum_j grad_y[n, j]; all (N, C).

        Thread ``g`` (grid-stride over the rows) owns a row: its sum, then its elements.
        No shared memory.
        """
        N, C = y.shape
        for n in range(cuda.grid(1), N, cuda.gridsize(1)):
            total = DT(0)
            for k in range(C):
                total += grad_y[n, k]
            for k in range(C):
                grad_x[n, k] = grad_y[n, k] - math.exp(y[n, k]) * total

    return log_softmax_backward_rows


# --------------------------------------------------------------------------- nll, cross-entropy


@kernel_cache
def nll_rows_kernel(DT):
    """Build the per-sample negative log-likelihood kernel for dtype ``DT``."""

    @cuda.jit
    def nll_loss_rows(logp, labels, losses):
        """losses[n] = -logp[n, labels[n]] (NaN for a label outside ``[0, C)``).

        logp : (N, C), labels : (N,) int64, losses : (N,). Thread ``g`` grid-strides over
        the samples. No shared memory.
        """
        N, C = logp.shape
        for n in range(cuda.grid(1), N, cuda.gridsize(1)):
            label = labels[n]
            if label < 0 or label >= C:
                losses[n] = DT(math.nan)
            else:
                losses[n] = -logp[n, label]

    return nll_loss_rows


@kernel_cache
def nll_backward_kernel(DT):
    """Build the negative log-likelihood gradient kernel for dtype ``DT``."""

    @cuda.jit
    def nll_loss_backward(labels, scale, grad):
        """grad[n, k] = -scale if k == labels[n] else 0; grad : (N, C), scale : float.

        One thread per element (grid-stride over ``grad`` in C order). No shared memory.
        """
        N, C = grad.shape
        value = -DT(scale)
        for index in range(cuda.grid(1), N * C, cuda.gridsize(1)):
            n = index // C
            k = index - n * C
            grad[n, k] = value if labels[n] == k else DT(0)

    return nll_loss_backward


@kernel_cache
def cross_entropy_rows_kernel(DT):
    """Build the per-sample softmax cross-entropy kernel for dtype ``DT``."""

    @cuda.jit
    def cross_entropy_rows(logits, labels, losses, log_sum_exp):
        """losses[n] = log_sum_exp[n] - logits[n, labels[n]] for each sample.

        ``log_sum_exp[n] = m + log(sum_k exp(logits[n, k] - m))`` with ``m`` the row's
        maximum: every ``exp`` argument is <= 0, so nothing overflows. Thread ``g``
        (grid-stride over samples) owns sample ``n = g, g + G, ...`` and reads its whole row
        (LeNet: 10 classes). A label outside ``[0, K)`` gives a NaN loss (the functional layer
        checks host labels before they come over). No shared memory.
        """
        N, K = logits.shape
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for n in range(start, N, step):
            m = logits[n, 0]
            for k in range(1, K):
                m = max(m, logits[n, k])
            total = DT(0)
            for k in range(K):
                total += math.exp(logits[n, k] - m)
            lse = m + math.log(total)
            log_sum_exp[n] = lse
            label = labels[n]
            if label < 0 or label >= K:
                losses[n] = DT(math.nan)
            else:
                losses[n] = lse - logits[n, label]

    return cross_entropy_rows


@kernel_cache
def mean_kernel(DT):
    """Build the one-block, fixed-order batch-sum kernel for dtype ``DT``."""

    @cuda.jit
    def mean(values, divisor, out):
        """out[0] = (sum_n values[n]) / divisor, in an order fixed by N alone.

        ``divisor`` is N for a mean, 1 for a sum (``LossSpec.divisor``). Launched as one
        block of ``REDUCE_THREADS`` threads. Thread ``t`` first adds ``values[t], values[t +
        REDUCE_THREADS], ...`` in order; the partial sums go to shared memory (``partial``,
        one per thread) and ``block_tree_sum`` halves them in ``log2(REDUCE_THREADS)`` steps;
        thread 0 writes the result. No atomics: the same inputs give the same bits every run.
        """
        partial = cuda.shared.array(REDUCE_THREADS, DT)
        N = values.shape[0]
        t = cuda.threadIdx.x
        acc = DT(0)
        for n in range(t, N, REDUCE_THREADS):
            acc += values[n]
        partial[t] = acc
        block_tree_sum(partial, t)  # partial[0]: the block's total
        if t == 0:
            out[0] = partial[0] / DT(divisor)

    return mean


@kernel_cache
def cross_entropy_backward_kernel(DT):
    """Build the softmax cross-entropy gradient kernel for dtype ``DT``."""

    @cuda.jit
    def cross_entropy_backward(logits, labels, log_sum_exp, scale, grad):
        """grad[n, k] = (exp(logits[n, k] - log_sum_exp[n]) - [k == labels[n]]) * scale.

        The softmax minus the one-hot label, times ``scale`` (``grad / N`` for a mean loss,
        ``grad`` for a sum). Thread ``g`` (grid-stride over ``grad`` (N, K) in C order,
        ``threadIdx.x`` walks ``k``) owns ``grad[n, k]``; ``log_sum_exp`` comes from the
        forward, so no thread rescans its row. No shared memory.
        """
        N, K = logits.shape
        s = DT(scale)
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for index in range(start, N * K, step):
            n = index // K
            k = index - n * K
            value = math.exp(logits[n, k] - log_sum_exp[n])
            if labels[n] == k:
                value -= DT(1)
            grad[n, k] = value * s

    return cross_entropy_backward


def _batch_sum(d_losses, divisor):
    """sum(d_losses) / divisor as a (1,) device array (one block, fixed order)."""
    out = empty((1,), d_losses.dtype)
    mean_kernel(numba_dtype(d_losses))[1, REDUCE_THREADS](d_losses, int(divisor), out)
    return out


def log_softmax(dx):
    """log_softmax of the (N, C) device array ``dx`` over its rows: a new (N, C) array."""
    dy = empty(dx.shape, dx.dtype)
    launch_stride(log_softmax_kernel(numba_dtype(dx)), dx.shape[0], dx, dy)
    return dy


def log_softmax_backward(dgrad_y, dy):
    """grad_x of log_softmax from its output ``dy``: (N, C) device arrays."""
    dgrad_x = empty(dy.shape, dy.dtype)
    launch_stride(log_softmax_backward_kernel(numba_dtype(dy)), dy.shape[0], dgrad_y, dy,
                  dgrad_x)
    return dgrad_x


def nll_loss(dlogp, dlabels, divisor):
    """sum_n -logp[n, labels[n]] / divisor: a (1,) device array."""
    losses = empty((dlogp.shape[0],), dlogp.dtype)
    launch_stride(nll_rows_kernel(numba_dtype(dlogp)), dlogp.shape[0], dlogp, dlabels, losses)
    return _batch_sum(losses, divisor)


def nll_loss_backward(dlogp, dlabels, scale):
    """grad_logp (N, C): ``-scale`` at each row's label, 0 elsewhere (dlogp: shape, dtype)."""
    N, C = dlogp.shape
    grad = empty((N, C), dlogp.dtype)
    launch_stride(nll_backward_kernel(numba_dtype(dlogp)), N * C, dlabels, float(scale), grad)
    return grad


def cross_entropy_forward(logits, labels, divisor=None):
    """Softmax cross-entropy summed over the batch and divided by ``divisor`` (N: the mean).

    Parameters
    ----------
    logits : (N, K) device array, float32 or float64
    labels : (N,) int64 device array, each in ``[0, K)``
    divisor : int, N (the default, ``torch.nn.functional.cross_entropy``'s mean) or 1 (sum)

    Returns
    -------
    loss : (1,) device array, ``sum_n(log_sum_exp[n] - logits[n, labels[n]]) / divisor``
    log_sum_exp : (N,) device array, what :func:`cross_entropy_backward` needs
    """
    DT = numba_dtype(logits)
    N = logits.shape[0]
    losses = empty((N,), logits.dtype)
    log_sum_exp = empty((N,), logits.dtype)
    launch_stride(cross_entropy_rows_kernel(DT), N, logits, labels, losses, log_sum_exp)
    return _batch_sum(losses, N if divisor is None else divisor), log_sum_exp


def cross_entropy_backward(logits, labels, log_sum_exp, scale=None):
    """Gradient: logits (N, K), labels (N,), log_sum_exp (N,) -> grad_logits (N, K).

    ``grad_logits = (softmax(logits) - one_hot(labels)) * scale``; ``scale`` defaults to
    ``1 / N``, the gradient of the mean loss of :func:`cross_entropy_forward`.
    """
    N, K = logits.shape
    scale = 1.0 / N if scale is None else float(scale)
    grad = empty((N, K), logits.dtype)
    launch_stride(cross_entropy_backward_kernel(numba_dtype(logits)), N * K, logits, labels,
                  log_sum_exp, scale, grad)
    return grad


# --------------------------------------------------------------------------- dropout


@cuda.jit(device=True, inline="always")
def splitmix64_uniform(random_seed, i):
    """The ``i``-th output of SplitMix64 seeded with ``random_seed``, as a float64 in ``[0, 1)``.

    ``z = random_seed + (i + 1) * golden`` (the generator's state after ``i + 1`` steps), then
    SplitMix64's mix (xor-shift, multiply, twice; Stafford's "Mix13" constants); its top 53
    bits scaled by ``2**-53``. Every operand is uint64 (a mix with int64 would give float64).
    """
    U = numba.uint64
    z = U(random_seed) + (U(i) + U(1)) * U(0x9E3779B97F4A7C15)
    z = (z ^ (z >> U(30))) * U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U(27))) * U(0x94D049BB133111EB)
    z = z ^ (z >> U(31))
    return numba.float64(z >> U(11)) * (1.0 / 9007199254740992.0)


@kernel_cache
def dropout_kernel(DT):
    """Build the dropout forward kernel for dtype ``DT``."""

    @cuda.jit
    def dropout_forward(x, random_seed, keep, y, mask):
        """mask[i] = u_i < keep; y[i] = x[i] * (1 / keep if kept else 0), flat arrays.

        ``u_i = splitmix64_uniform(random_seed, i)``; ``random_seed`` : int64 >= 0,
        ``keep = 1 - p``; the scale is computed in ``DT`` as PyTorch's (``DT(1) /
        DT(keep)``), 0 when ``keep == 0``. One thread per element, grid-stride. No shared
        memory.
        """
        scale = DT(1) / DT(keep) if keep > 0.0 else DT(0)
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            kept = splitmix64_uniform(random_seed, i) < keep
            mask[i] = 1 if kept else 0
            y[i] = x[i] * (scale if kept else DT(0))

    return dropout_forward


@kernel_cache
def dropout_backward_kernel(DT):
    """Build the dropout backward kernel for dtype ``DT``."""

    @cuda.jit
    def dropout_backward(grad_y, mask, keep, grad_x):
        """grad_x[i] = grad_y[i] * (1 / keep if mask[i] else 0), flat arrays.

        One thread per element, grid-stride. No shared memory.
        """
        scale = DT(1) / DT(keep) if keep > 0.0 else DT(0)
        for i in range(cuda.grid(1), grad_y.shape[0], cuda.gridsize(1)):
            grad_x[i] = grad_y[i] * (scale if mask[i] != 0 else DT(0))

    return dropout_backward


def dropout(dx, random_seed, keep):
    """(y, mask) of dropout on the device array ``dx`` (any shape); mask uint8."""
    dy = empty(dx.shape, dx.dtype)
    dmask = empty(dx.shape, "uint8")
    with _quiet_simulator():
        launch_stride(dropout_kernel(numba_dtype(dx)), dx.size, flat(dx), int(random_seed),
                      float(keep), flat(dy), flat(dmask))
    return dy, dmask


@contextlib.contextmanager
def _quiet_simulator():
    """In the simulator, silence NumPy's warnings about arithmetic that is meant.

    SplitMix64 multiplies modulo 2**64 on purpose, and ``inf * 0`` is NaN on purpose (p = 1,
    as PyTorch's ``x * 0``); on a GPU both are silent, but the simulator runs the kernel on
    NumPy scalars, which warn. ``np.errstate`` would not reach the simulator's threads, so
    the warnings filter (process-wide) does it.
    """
    if not SIMULATOR:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow encountered in scalar", RuntimeWarning)
        warnings.filterwarnings("ignore", "invalid value encountered in scalar", RuntimeWarning)
        yield


def dropout_backward(dgrad_y, dmask, keep):
    """grad_x of dropout: ``dgrad_y`` times the noise rebuilt from ``dmask``."""
    dgrad_x = empty(dgrad_y.shape, dgrad_y.dtype)
    with _quiet_simulator():
        launch_stride(dropout_backward_kernel(numba_dtype(dgrad_y)), dgrad_y.size,
                      flat(dgrad_y), flat(dmask), float(keep), flat(dgrad_x))
    return dgrad_x


def kernel_signatures():
    """``[(name, dtype_name, dispatcher, signature)]`` of every kernel here, both dtypes.

    The format of ``kernels.cuda.ptx.kernel_signatures``, for ``numba.cuda.compile_ptx``.
    """
    from numba import types

    labels, i64, f64 = types.Array(types.int64, 1, "C"), types.int64, types.float64
    mask = types.Array(types.uint8, 1, "C")
    out = []
    for DT in (numba.float32, numba.float64):
        a1, a2 = types.Array(DT, 1, "C"), types.Array(DT, 2, "C")
        for name, dispatcher, args in [
            ("log_softmax_rows", log_softmax_kernel(DT), (a2, a2)),
            ("log_softmax_backward_rows", log_softmax_backward_kernel(DT), (a2, a2, a2)),
            ("nll_loss_rows", nll_rows_kernel(DT), (a2, labels, a1)),
            ("nll_loss_backward", nll_backward_kernel(DT), (labels, f64, a2)),
            ("cross_entropy_rows", cross_entropy_rows_kernel(DT), (a2, labels, a1, a1)),
            ("mean", mean_kernel(DT), (a1, i64, a1)),
            ("cross_entropy_backward", cross_entropy_backward_kernel(DT),
             (a2, labels, a1, f64, a2)),
            ("dropout_forward", dropout_kernel(DT), (a1, i64, f64, a1, mask)),
            ("dropout_backward", dropout_backward_kernel(DT), (a1, mask, f64, a1)),
        ]:
            out.append((name, str(DT), dispatcher, types.void(*args)))
    return out


__all__ = [
    "REDUCE_THREADS",
    "THREADS",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "dropout",
    "dropout_backward",
    "kernel_signatures",
    "log_softmax",
    "log_softmax_backward",
    "nll_loss",
    "nll_loss_backward",
    "splitmix64_uniform",
]
