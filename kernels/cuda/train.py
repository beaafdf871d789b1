"""What training needs besides conv and pooling: elementwise, GEMM, loss and optimizer kernels.

With these, a network trains end to end on the device (``minitorch_cnn.gpu_train``): the
batch goes over once, the loss comes back as one number, and everything in between runs in
the kernels of this package. The CPU twins are ``minitorch_cnn.nn`` (Sigmoid, Linear),
``minitorch_cnn.losses`` (CrossEntropyLoss) and ``minitorch_cnn.optim`` (SGD); the formulas
are theirs, which are PyTorch's.

1. ``sigmoid_forward`` / ``sigmoid_backward`` - elementwise: ``y = 1 / (1 + exp(-x))``,
   ``grad_x = grad_y * y * (1 - y)``;
2. ``linear_forward`` / ``linear_backward`` - ``y = x @ W.T + b`` as a naive GEMM, one thread
   per output element (``grad_x``, ``grad_W``, ``grad_b`` likewise, each a gather: no
   atomics);
3. ``linear_forward_conv`` / ``linear_backward_conv`` - the same layer as a 1x1 convolution
   of ``x`` viewed as ``(N, in, 1, 1)`` (:func:`one_by_one_spec` describes it), run by this
   backend's conv kernels (the implicit GEMM rung by default), so the tiled GEMM of
   ``conv_igemm`` does the work;
4. ``cross_entropy_forward`` / ``cross_entropy_backward`` - softmax cross-entropy, mean over
   the batch: one thread per sample computes its log-sum-exp and loss, one block adds the
   losses in a fixed order (deterministic, no atomics); the gradient is
   ``(softmax - one_hot) / N``;
5. ``sgd_step`` - ``torch.optim.SGD``'s update (momentum, weight decay, dampening 0, no
   Nesterov), in place on the parameter and its momentum buffer; the hyper-parameters
   travel as one named record, :class:`SgdHyper`.

Elementwise kernels use *grid-stride loops*: thread ``g = blockIdx.x * blockDim.x +
threadIdx.x`` handles elements ``g, g + G, g + 2G, ...`` where ``G = gridDim.x * blockDim.x``
is the number of threads in the grid. Consecutive threads touch consecutive elements (the
loads coalesce), and the result does not depend on the grid size, so the launch can size
the grid to the GPU (:func:`stride_blocks`: enough blocks to fill every SM) rather than to
the array. Under the simulator, where each thread is a Python thread costing about 0.1 ms to
start, the same loop runs with one block: the answer is the same, only the speed differs.

Arrays are device arrays (Numba's, or the simulator's fake ones), C-contiguous; elementwise
kernels see them flattened (``a.reshape(a.size)``, a view, no copy). float32 and float64,
one kernel per dtype (:func:`~kernels.cuda._arrays.kernel_cache`).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numba import cuda

from kernels.common import ConvSpec

from ._arrays import (
    SIMULATOR,
    block_tree_sum,
    blocks,
    empty,
    kernel_cache,
    numba_dtype,
    sm_count,
)

THREADS = 256
"""Threads per block of every kernel here."""

BLOCKS_PER_SM = 8
"""Grid-stride launches use ``8 * SMs`` blocks at most: 8 x 256 = 2048 threads, the most an
SM (H100, A100) keeps resident."""

REDUCE_THREADS = 128
"""Threads of the one block that adds the per-sample losses (a power of two)."""


def stride_blocks(n: int) -> int:
    """Blocks for a grid-stride launch over ``n`` items (one in the simulator)."""
    if SIMULATOR:
        return 1
    return min(blocks(n, THREADS), BLOCKS_PER_SM * sm_count())


def _flat(a):
    """A 1-D view of a C-contiguous device array: ``(d0, d1, ...) -> (d0*d1*...,)``."""
    return a.reshape(int(np.prod(a.shape)))


def _launch_stride(kernel, n, *args):
    kernel[stride_blocks(n), THREADS](*args)


# --------------------------------------------------------------------------- sigmoid


@kernel_cache
def sigmoid_forward_kernel(DT):
    """Build the sigmoid forward kernel for dtype ``DT``."""

    @cuda.jit
    def sigmoid_forward(x, y):
        """y[i] = 1 / (1 + exp(-x[i])) over flat arrays of the same length.

        Thread ``g`` (grid-stride, see the module docstring) computes ``y[g]``, ``y[g + G]``,
        ... . Stable for large ``|x|``: ``exp`` only ever sees a non-positive argument
        (``x >= 0``: ``1 / (1 + exp(-x))``; ``x < 0``: ``exp(x) / (1 + exp(x))``), so it
        never overflows. NaN in gives NaN out. No shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, x.shape[0], step):
            v = x[i]
            if v >= DT(0):
                y[i] = DT(1) / (DT(1) + math.exp(-v))
            else:
                e = math.exp(v)
                y[i] = e / (DT(1) + e)

    return sigmoid_forward


@kernel_cache
def sigmoid_backward_kernel(DT):
    """Build the sigmoid backward kernel for dtype ``DT``."""

    @cuda.jit
    def sigmoid_backward(grad_y, y, grad_x):
        """grad_x[i] = grad_y[i] * y[i] * (1 - y[i]), with ``y`` the forward's output.

        Thread ``g`` (grid-stride) computes ``grad_x[g]``, ``grad_x[g + G]``, ... .
        No shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, y.shape[0], step):
            s = y[i]
            grad_x[i] = grad_y[i] * s * (DT(1) - s)

    return sigmoid_backward


def sigmoid_forward(x):
    """Sigmoid of x (any shape): y = 1 / (1 + exp(-x)), a new device array of that shape."""
    y = empty(x.shape, x.dtype)
    n = int(np.prod(x.shape))
    _launch_stride(sigmoid_forward_kernel(numba_dtype(x)), n, _flat(x), _flat(y))
    return y


def sigmoid_backward(grad_y, y):
    """grad_y, y (the forward's output) : same shape -> grad_x = grad_y * y * (1 - y)."""
    grad_x = empty(y.shape, y.dtype)
    n = int(np.prod(y.shape))
    _launch_stride(sigmoid_backward_kernel(numba_dtype(y)), n, _flat(grad_y), _flat(y),
                   _flat(grad_x))
    return grad_x


# --------------------------------------------------------------------------- linear (GEMM)


@kernel_cache
def linear_forward_kernel(DT):
    """Build the Linear forward (naive GEMM) kernel for dtype ``DT``."""

    @cuda.jit
    def linear_forward(x, weight, bias, y):
        """y[n, o] = bias[o] + sum_k x[n, k] * weight[o, k];  x (N, K), weight (O, K).

        Thread ``g`` (grid-stride over the ``N*O`` elements of ``y`` in C order, so
        ``threadIdx.x`` walks ``o``) owns ``y[n, o]`` and reduces over ``k`` in order. A warp
        reads ``x[n, k]`` once (broadcast) and ``weight[o, k]`` at stride ``K`` (not
        coalesced; LeNet's weights stay in L2). ``bias`` may be empty (no bias). No shared
        memory.
        """
        N, K = x.shape
        O = weight.shape[0]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for index in range(start, N * O, step):
            n = index // O
            o = index - n * O
            acc = DT(0)
            if bias.shape[0] > 0:
                acc = bias[o]
            for k in range(K):
                acc += x[n, k] * weight[o, k]
            y[n, o] = acc

    return linear_forward


@kernel_cache
def linear_grad_input_kernel(DT):
    """Build the Linear grad_x kernel for dtype ``DT``."""

    @cuda.jit
    def linear_grad_input(grad_y, weight, grad_x):
        """grad_x[n, k] = sum_o grad_y[n, o] * weight[o, k]  (grad_x = grad_y @ W).

        Thread ``g`` (grid-stride over ``grad_x`` (N, K) in C order, ``threadIdx.x`` walks
        ``k``) owns ``grad_x[n, k]``; a warp reads consecutive ``weight[o, k]`` (coalesced).
        No shared memory.
        """
        N, K = grad_x.shape
        O = weight.shape[0]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for index in range(start, N * K, step):
            n = index // K
            k = index - n * K
            acc = DT(0)
            for o in range(O):
                acc += grad_y[n, o] * weight[o, k]
            grad_x[n, k] = acc

    return linear_grad_input


@kernel_cache
def linear_grad_weight_kernel(DT):
    """Build the Linear grad_W kernel for dtype ``DT``."""

    @cuda.jit
    def linear_grad_weight(grad_y, x, grad_w):
        """grad_w[o, k] = sum_n grad_y[n, o] * x[n, k]  (grad_W = grad_y.T @ x).

        Thread ``g`` (grid-stride over ``grad_w`` (O, K) in C order, ``threadIdx.x`` walks
        ``k``) owns ``grad_w[o, k]`` and adds the samples ``n = 0, 1, ...`` in order; a warp
        reads consecutive ``x[n, k]`` (coalesced). No shared memory, no atomics.
        """
        O, K = grad_w.shape
        N = x.shape[0]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for index in range(start, O * K, step):
            o = index // K
            k = index - o * K
            acc = DT(0)
            for n in range(N):
                acc += grad_y[n, o] * x[n, k]
            grad_w[o, k] = acc

    return linear_grad_weight


@kernel_cache
def linear_grad_bias_kernel(DT):
    """Build the Linear grad_b kernel for dtype ``DT``."""

    @cuda.jit
    def linear_grad_bias(grad_y, grad_b):
        """grad_b[o] = sum_n grad_y[n, o], the samples added in order.

        Thread ``g`` (grid-stride over ``o``) owns ``grad_b[o]``. No shared memory.
        """
        N, O = grad_y.shape
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for o in range(start, O, step):
            acc = DT(0)
            for n in range(N):
                acc += grad_y[n, o]
            grad_b[o] = acc

    return linear_grad_bias


def linear_forward(x, weight, bias=None):
    """Linear layer: x (N, in), weight (out, in), bias (out,) or None -> y (N, out).

    ``y = x @ weight.T + bias``, one thread per element of ``y`` (:func:`linear_forward_kernel`).
    """
    N = x.shape[0]
    O = weight.shape[0]
    y = empty((N, O), x.dtype)
    b = empty((0,), x.dtype) if bias is None else bias
    _launch_stride(linear_forward_kernel(numba_dtype(x)), N * O, x, weight, b, y)
    return y


def linear_backward(grad_y, x, weight):
    """grad_y (N, out), x (N, in), weight (out, in) -> (grad_x, grad_weight, grad_bias).

    ``grad_x = grad_y @ weight`` (N, in), ``grad_weight = grad_y.T @ x`` (out, in),
    ``grad_bias = grad_y.sum(0)`` (out,): three kernels, each a gather.
    """
    DT = numba_dtype(x)
    N, K = x.shape
    O = weight.shape[0]
    grad_x = empty((N, K), x.dtype)
    grad_w = empty((O, K), x.dtype)
    grad_b = empty((O,), x.dtype)
    _launch_stride(linear_grad_input_kernel(DT), N * K, grad_y, weight, grad_x)
    _launch_stride(linear_grad_weight_kernel(DT), O * K, grad_y, x, grad_w)
    _launch_stride(linear_grad_bias_kernel(DT), O, grad_y, grad_b)
    return grad_x, grad_w, grad_b


@functools.lru_cache(maxsize=64)
def one_by_one_spec(N: int, K: int, O: int) -> ConvSpec:
    """The 1x1 convolution that is a Linear layer with ``K`` inputs and ``O`` outputs.

    x (N, K, 1, 1), weight (O, K, 1, 1) -> y (N, O, 1, 1): stride 1, no padding, no
    dilation, one group. Built once per shape (a training step asks for the same ones).
    """
    return ConvSpec.from_shapes((N, K, 1, 1), (O, K, 1, 1), stride=(1, 1), padding=(0, 0),
                                dilation=(1, 1), groups=1)


def linear_forward_conv(x, weight, bias=None):
    """Linear as a 1x1 conv: x (N, in), weight (out, in), bias (out,) or None -> (N, out).

    ``x`` is viewed as ``(N, in, 1, 1)`` images and ``weight`` as ``(out, in, 1, 1)``
    filters (:func:`one_by_one_spec`); the conv's output ``(N, out, 1, 1)`` is ``y``. The
    conv rung is this backend's current one (``kernels.cuda.get_conv_algorithm()``).
    """
    from . import conv2d

    N, K = x.shape
    O = weight.shape[0]
    y = conv2d(x.reshape(N, K, 1, 1), weight.reshape(O, K, 1, 1), bias,
               one_by_one_spec(N, K, O))
    return y.reshape(N, O)  # (N, O, 1, 1) -> (N, O)


def linear_backward_conv(grad_y, x, weight):
    """The 1x1-conv route of :func:`linear_backward`: same arguments, same results."""
    from . import conv2d_backward

    N, K = x.shape
    O = weight.shape[0]
    grad_x, grad_w, grad_b = conv2d_backward(
        grad_y.reshape(N, O, 1, 1), x.reshape(N, K, 1, 1), weight.reshape(O, K, 1, 1),
        one_by_one_spec(N, K, O))
    return grad_x.reshape(N, K), grad_w.reshape(O, K), grad_b  # (N, K), (O, K), (O,)


# --------------------------------------------------------------------------- cross-entropy


@kernel_cache
def cross_entropy_rows_kernel(DT):
    """Build the per-sample softmax cross-entropy kernel for dtype ``DT``."""

    @cuda.jit
    def cross_entropy_rows(logits, labels, losses, log_sum_exp):
        """losses[n] = log_sum_exp[n] - logits[n, labels[n]] for each sample.

        ``log_sum_exp[n] = m + log(sum_k exp(logits[n, k] - m))`` with ``m`` the row's
        maximum: every ``exp`` argument is <= 0, so nothing overflows. Thread ``g``
        (grid-stride over samples) owns sample ``n = g, g + G, ...`` and reads its whole row
        (LeNet: 10 classes). A label outside ``[0, K)`` gives a NaN loss (the host wrapper
        in ``minitorch_cnn.gpu_train`` checks labels before they come over). No shared
        memory.
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
    """Build the one-block, fixed-order mean kernel for dtype ``DT``."""

    @cuda.jit
    def mean(values, out):
        """out[0] = (sum_n values[n]) / N, in an order fixed by N alone.

        Launched as one block of ``REDUCE_THREADS`` threads. Thread ``t`` first adds
        ``values[t], values[t + REDUCE_THREADS], ...`` in order; the partial sums go to
        shared memory (``partial``, one per thread) and ``block_tree_sum`` halves them in
        ``log2(REDUCE_THREADS)`` steps; thread 0 writes the mean. No atomics: the same
        inputs give the same bits every run.
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
            out[0] = partial[0] / DT(N)

    return mean


@kernel_cache
def cross_entropy_backward_kernel(DT):
    """Build the softmax cross-entropy gradient kernel for dtype ``DT``."""

    @cuda.jit
    def cross_entropy_backward(logits, labels, log_sum_exp, grad):
        """grad[n, k] = (exp(logits[n, k] - log_sum_exp[n]) - [k == labels[n]]) / N.

        The softmax minus the one-hot label, divided by the batch size (the loss is a
        mean). Thread ``g`` (grid-stride over ``grad`` (N, K) in C order, ``threadIdx.x``
        walks ``k``) owns ``grad[n, k]``; ``log_sum_exp`` comes from the forward, so no
        thread rescans its row. No shared memory.
        """
        N, K = logits.shape
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for index in range(start, N * K, step):
            n = index // K
            k = index - n * K
            value = math.exp(logits[n, k] - log_sum_exp[n])
            if labels[n] == k:
                value -= DT(1)
            grad[n, k] = value / DT(N)

    return cross_entropy_backward


def cross_entropy_forward(logits, labels):
    """Mean softmax cross-entropy, as ``torch.nn.functional.cross_entropy``.

    Parameters
    ----------
    logits : (N, K) device array, float32 or float64
    labels : (N,) int64 device array, each in ``[0, K)``

    Returns
    -------
    loss : (1,) device array, ``mean_n(log_sum_exp[n] - logits[n, labels[n]])``
    log_sum_exp : (N,) device array, what :func:`cross_entropy_backward` needs
    """
    DT = numba_dtype(logits)
    N = logits.shape[0]
    losses = empty((N,), logits.dtype)
    log_sum_exp = empty((N,), logits.dtype)
    loss = empty((1,), logits.dtype)
    _launch_stride(cross_entropy_rows_kernel(DT), N, logits, labels, losses, log_sum_exp)
    mean_kernel(DT)[1, REDUCE_THREADS](losses, loss)
    return loss, log_sum_exp


def cross_entropy_backward(logits, labels, log_sum_exp):
    """Gradient: logits (N, K), labels (N,), log_sum_exp (N,) -> grad_logits (N, K).

    ``grad_logits = (softmax(logits) - one_hot(labels)) / N``, the gradient of the mean
    loss of :func:`cross_entropy_forward`.
    """
    N, K = logits.shape
    grad = empty((N, K), logits.dtype)
    _launch_stride(cross_entropy_backward_kernel(numba_dtype(logits)), N * K, logits, labels,
                   log_sum_exp, grad)
    return grad


# --------------------------------------------------------------------------- SGD


class SgdHyper(NamedTuple):
    """``torch.optim.SGD``'s hyper-parameters (dampening 0, no Nesterov), one kernel argument.

    Three floats, so Numba types it as one tuple of ``float64``; :func:`sgd_step` converts
    the fields with ``float`` so every call gives the kernel the same type.
    """

    lr: float  # learning rate: param -= lr * update
    momentum: float = 0.0  # buf = momentum * buf + d; 0: no buffer, the update is d
    weight_decay: float = 0.0  # L2 penalty: d = grad + weight_decay * param; 0: none


@kernel_cache
def sgd_kernel(DT):
    """Build the SGD (momentum, weight decay) update kernel for dtype ``DT``."""

    @cuda.jit
    def sgd_update(param, grad, momentum_buffer, hyper, first):
        """One ``torch.optim.SGD`` step (dampening 0, no Nesterov), in place.

        param, grad, momentum_buffer : (P,) flat arrays of one length; hyper : SgdHyper;
        first : int, 1 on the first step.

        ::

            d = grad + weight_decay * param          (when weight_decay != 0)
            buf = d                                  (first step, first != 0)
            buf = momentum * buf + d                 (later steps)
            param = param - lr * buf                 (lr * d when momentum == 0)

        Thread ``g`` (grid-stride over the flat parameter) updates ``param[i]`` and
        ``momentum_buffer[i]`` for ``i = g, g + G, ...``; each element is read and written by
        one thread only. ``momentum_buffer`` is not touched when ``momentum == 0``.
        No shared memory.
        """
        lr_ = DT(hyper.lr)
        momentum_ = DT(hyper.momentum)
        weight_decay_ = DT(hyper.weight_decay)
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
                    b = momentum_ * momentum_buffer[i] + d
                momentum_buffer[i] = b
                d = b
            param[i] = p - lr_ * d

    return sgd_update


def sgd_step(param, grad, momentum_buffer, hyper: SgdHyper, *, first=False):
    """Update ``param`` (and ``momentum_buffer``) in place, as one ``torch.optim.SGD`` step.

    Parameters
    ----------
    param, grad, momentum_buffer : device arrays of one shape (any), one float dtype
        ``momentum_buffer`` may hold anything on the first step (it is overwritten).
    hyper : SgdHyper
        ``lr``, ``momentum``, ``weight_decay``.
    first : bool
        True on the first step: the buffer starts as the gradient, not ``momentum * buf``.

    Examples
    --------
    ``sgd_step(w, grad_w, buf, SgdHyper(lr=0.1, momentum=0.9), first=True)``
    """
    hyper = SgdHyper(*(float(v) for v in hyper))  # one kernel type: (float64 x 3)
    n = int(np.prod(param.shape))
    _launch_stride(sgd_kernel(numba_dtype(param)), n, _flat(param), _flat(grad),
                   _flat(momentum_buffer), hyper, int(bool(first)))


# --------------------------------------------------------------------------- PTX check


def kernel_signatures():
    """``[(name, dtype_name, dispatcher, signature)]`` of every kernel here, both dtypes.

    The format of ``kernels.cuda.ptx.kernel_signatures``, for ``numba.cuda.compile_ptx``.
    """
    import numba
    from numba import types

    labels = types.Array(types.int64, 1, "C")
    hyper, i64 = numba.typeof(SgdHyper(0.1, 0.9, 1e-4)), types.int64
    out = []
    for DT in (numba.float32, numba.float64):
        a1, a2 = types.Array(DT, 1, "C"), types.Array(DT, 2, "C")
        for name, dispatcher, args in [
            ("sigmoid_forward", sigmoid_forward_kernel(DT), (a1, a1)),
            ("sigmoid_backward", sigmoid_backward_kernel(DT), (a1, a1, a1)),
            ("linear_forward", linear_forward_kernel(DT), (a2, a2, a1, a2)),
            ("linear_grad_input", linear_grad_input_kernel(DT), (a2, a2, a2)),
            ("linear_grad_weight", linear_grad_weight_kernel(DT), (a2, a2, a2)),
            ("linear_grad_bias", linear_grad_bias_kernel(DT), (a2, a1)),
            ("cross_entropy_rows", cross_entropy_rows_kernel(DT), (a2, labels, a1, a1)),
            ("mean", mean_kernel(DT), (a1, a1)),
            ("cross_entropy_backward", cross_entropy_backward_kernel(DT),
             (a2, labels, a1, a2)),
            ("sgd_update", sgd_kernel(DT), (a1, a1, a1, hyper, i64)),
        ]:
            out.append((name, str(DT), dispatcher, types.void(*args)))
    return out


__all__ = [
    "BLOCKS_PER_SM",
    "REDUCE_THREADS",
    "SgdHyper",
    "THREADS",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "kernel_signatures",
    "linear_backward",
    "linear_backward_conv",
    "linear_forward",
    "linear_forward_conv",
    "one_by_one_spec",
    "sgd_step",
    "sigmoid_backward",
    "sigmoid_forward",
    "stride_blocks",
]
