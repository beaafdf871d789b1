"""The Numba CPU backend ("numba"): the naive loops, compiled, parallel, and fed to BLAS.

Every op computes what :mod:`kernels.naive` computes (read that first); this package changes
*how*, never *what*. Why each change is faster, with the times of every step on benchmark
layers and the thread-oversubscription trap, is the subject of ``docs/06b-numba.md`` (the
Numba chapter: the loop compiled, taps outside and pixels inside, ``prange`` lanes, im2col +
BLAS, one BLAS thread per lane; threads, threading layer and the compile cache). This header
is the map.

Conventions: every kernel is ``@njit(parallel=True, cache=True)`` (helpers called inside a
``prange`` body are plain ``@njit(cache=True)``), ``njit`` being ``numba.njit`` with IEEE
division (:func:`_loops.njit`: no zero test per divide, so loops with one vectorise); Python
only picks a path (and tabulates the per-axis divisors or window bounds of average pooling),
never loops over batch, channels or pixels. Sizes come from the call's record
(:class:`kernels.common.ConvSpec`, ``PoolSpec``, ``AdaptivePoolSpec``), one argument read by
name (``spec.stride_h``); the GEMM kernels also take their work split as a
:class:`conv_gemm.GemmPlan`. ``fastmath={"reassoc", "contract"}``
(``_loops.FASTMATH``) does not assume the absence of NaN or inf: NaN still propagates.

conv2d's paths, chosen per call by :func:`conv_plan` (its tuning constants beside it):
``"direct"`` (stride 1 and few input channels or a small window: each tap one AXPY over the
zero-padded plane, "wide rows", five taps of a kernel row in one pass; serial twins below
``SERIAL_MAX_MACS``; the backward of a one-group conv whose kernel rows are narrower than
five taps takes the GEMM path instead, which won there: :func:`conv_plan`),
``"gemm"`` (im2col + one single-threaded BLAS GEMM per chunk of samples, one lane per
thread), ``"1x1"`` (the GEMM reads ``x[n]`` and writes ``y[n]`` in place), ``"winograd"``
(3x3, stride 1, dilation 1, one group, float32 with many channels, by
``winograd.AUTO_TABLE``, or forced by
:func:`conv_algorithm`). ``conv2d_backward`` skips what its ``needs_input_grad`` mask
(PyTorch's ``output_mask``) does not ask for, on every path. The direct backward multiplies the
wide rows' junk zeros with inputs and weights, exact only while they are finite; with a NaN or
inf in ``x`` or the weight, :func:`conv2d_backward` takes the GEMM path instead (NaN then
reaches exactly the gradients it reaches in PyTorch). Pooling is one parallel loop over the
``N*C`` planes, max pooling window by window (a running maximum per window), average pooling
tap by tap (a row of running sums), both in PyTorch's per-window scan order exactly
(adaptive pooling reassociates its sums, as PyTorch does; :mod:`.pool` says why).

The modules, in reading order (each header names its naive twin):

1. this file: ``corr2d``; conv2d's plan (:func:`conv_plan`) and entry points (:func:`conv2d`,
   :func:`conv2d_backward`, :func:`conv_transpose2d`, :func:`conv_transpose2d_backward`);
2. ``_loops``: the small loops every kernel calls (``_valid_range``: each tap's valid output
   range, computed once; AXPY, dot, a NaN/inf scan) and ``FASTMATH``;
3. ``conv_direct``: the ``"direct"`` path, forward and backward, with wide rows;
4. ``conv_gemm``: im2col and col2im, the ``"gemm"`` and ``"1x1"`` paths forward and backward,
   and ``_single_threaded_blas``, the switch that keeps BLAS on one thread inside a lane;
5. ``pool``: max, average and adaptive (average and max) pooling, and max unpooling, forward
   and backward;
6. ``pad``: ``F.pad``'s four modes, forward and backward, one ``prange`` over planes;
7. ``conv_transpose``: the transposed conv as conv2d_backward's grad_x (forward) and as conv2d
   plus its grad_weight (backward), on the same plans, im2col and col2im;
8. ``winograd``: the ``"winograd"`` path, F(2x2, 3x3) and F(4x4, 3x3), after its readable
   NumPy twin :mod:`kernels.winograd`; ``winograd_f2``: F(2x2)'s transforms with their
   matrices written into the code; ``winograd_layout``: the tile layout both read and write;
9. ``elementwise``: the element-wise ops (activations, add), forward and backward, serial.

Compilation: each kernel compiles on its first call per dtype and is cached beside its file
(``__pycache__``). Numba checks a cached kernel against its own file only, so on import this
package deletes the cache when any of its sources (or of :mod:`kernels`) changed: ``_cache``.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import prange

from kernels.common import ConvGrads, ConvSpec

from ._cache import drop_stale_cache as _drop_stale_cache
from ._cache import sources_fingerprint as _sources_fingerprint
from ._loops import FASTMATH, _all_finite
from ._loops import njit as _njit  # private here: this namespace holds the ops
from .batch_norm import batch_norm, batch_norm_backward
from .conv_direct import (
    FUSED_TAPS,
    _batch_grad,
    _batch_planes,
    _conv2d_direct,
    _conv2d_direct_grad_weight,
    _conv2d_direct_grad_x,
    chunk_samples,
    direct_kernels,
)
from .conv_gemm import (
    GemmPlan,
    _blas_libraries,
    _conv2d_backward_gemm,
    _conv2d_gemm,
    _single_threaded_blas,
)
from .conv_transpose import (
    SUBPIXEL_BLOCK,
    _conv_transpose2d_backward_gemm,
    _conv_transpose2d_gemm,
    _conv_transpose2d_subpixel,
    _weight_by_rows,
    subpixel_wins,
)
from .elementwise import (
    add,
    cat,
    cat_backward,
    dropout2d,
    dropout2d_backward,
    elu,
    elu_backward,
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    silu,
    silu_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from .linear import linear, linear_backward
from .loss import (
    cross_entropy,
    cross_entropy_backward,
    dropout,
    dropout_backward,
    log_softmax,
    log_softmax_backward,
    nll_loss,
    nll_loss_backward,
)
from .optim_ops import adam_step, sgd_step
from .pad import pad, pad_backward
from .pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_unpool2d,
    max_unpool2d_backward,
)
from .winograd import CONV_ALGORITHM, _conv2d_backward_winograd, _conv2d_winograd, choose_tile

# Before any kernel is compiled or loaded (they all compile lazily, on their first call):
# a cache written from other sources than these is deleted (``_cache``'s header says why).
_drop_stale_cache(_all_finite.stats.cache_path, _sources_fingerprint())

DIRECT_MAX_C_IN = 1
"""The direct (no-GEMM) conv path is used (stride 1) when ``C_in // groups`` is at most this."""
DIRECT_MAX_K = 256
"""... or when one output's window, ``C_in // groups * kH * kW``, is at most this (not 1x1).

Measured by :func:`conv_direct.measure_thresholds` (its docstring has the command): ms,
float32, batch 64, 16 x 14x14 outputs of 5x5 kernels, 2 threads, min of 15 interleaved runs,
2-core AMD EPYC (Zen 3, AVX2), with the direct kernels' five-tap passes::

    K = C_in*25   direct fwd   gemm fwd   direct bwd   gemm bwd
    50            0.262        0.529      0.967        0.965
    75            0.339        0.745      1.042        1.402
    150           0.629        1.457      2.151        2.565
    250           0.927        2.129      2.644        3.999
    400           1.394        4.105      3.904        7.289
    800           2.700        8.247      7.501        15.207

The direct path wins forward everywhere and ties or wins backward (grad_x and grad_weight)
from K = 50 up; before the five-tap passes its backward lost 5-35% up to K = 250. With the
direct kernels in chunks of samples (same command, the machine in a slower hour: gemm fwd
0.876 to 9.701 ms), direct against gemm, forward then backward: K = 50 0.343 / 0.876 and
0.747 / 1.717, K = 150 0.623 / 1.487 and 1.446 / 3.192, K = 250 0.839 / 2.418 and 2.492 /
5.030, K = 800 2.760 / 9.701 and 6.339 / 18.872. 256
covers LeNet's (150) and the MNIST CNN's (250) second layers; larger windows were measured
only for 5x5 kernels on 14x14 planes, so ResNet's 3x3 layers (K >= 576) stay on GEMM or
Winograd.
"""
SERIAL_MAX_MACS = 2**17
"""The direct path runs its serial twins below this many multiply-adds per call
(``N*C_out*H_out*W_out*C_in/g*kH*kW``): the thread pool's wake-up costs more than the
second thread saves there. Same command and machine, direct forward, ms, median of 15 calls
each after 1 ms of NumPy work::

    MACs        40k    80k    120k   240k   480k   960k   1.9M   3.8M
    serial      0.009  0.012  0.015  0.025  0.046  0.088  0.170  0.339
    parallel    0.012  0.013  0.015  0.021  0.033  0.058  0.109  0.209
"""
GEMM_MIN_COLS = 1024
"""Samples are batched into one GEMM until it has at least this many columns."""
COLS_MAX_BYTES = 32 * 2**20
"""Upper bound on the im2col buffer of one chunk of samples."""


# --------------------------------------------------------------------------- corr2d


@_njit(parallel=True, cache=True, fastmath=FASTMATH)
def _corr2d(X, K):
    """``Y[i, j] = sum_{a, b} X[i + a, j + b] * K[a, b]``, parallel over output rows.

    Loop order: row ``i`` (parallel), tap ``(a, b)``, then the contiguous row ``j``, so that
    the inner loop is ``Y[i, :] += K[a, b] * X[i + a, b:b + W_out]``, a vectorised AXPY.
    """
    H, W = X.shape
    kh, kw = K.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    Y = np.zeros((Ho, Wo), X.dtype)
    for i in prange(Ho):
        for a in range(kh):
            for b in range(kw):
                k = K[a, b]
                for j in range(Wo):
                    Y[i, j] += X[i + a, j + b] * k
    return Y


def corr2d(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Single-channel 2-D cross-correlation: X (H, W), K (kh, kw) -> (H - kh + 1, W - kw + 1)."""
    return _corr2d(X, K)


# --------------------------------------------------------------------------- conv2d: plan


class ConvPlan(NamedTuple):
    """How :func:`conv2d` and :func:`conv2d_backward` compute one problem (host side).

    ``lanes`` is at most the thread count and the batch size; ``chunks`` is ``lanes`` times
    the rounds each lane needs, capped at the batch size (so every lane gets the same number
    of chunks unless the cap cuts the last round short). The GEMM kernels receive these
    numbers as a :class:`conv_gemm.GemmPlan` (:func:`_gemm_plan`).
    """

    path: str  # "direct" | "gemm" | "1x1" (module header, item 3)
    lanes: int  # GEMM-path workers, each with its own buffers and single-threaded GEMMs
    chunks: int  # nearly equal chunks of consecutive samples; lane l does l, l + lanes, ...
    serial: bool = False  # direct path: run the serial twins (below SERIAL_MAX_MACS)


conv_algorithm = CONV_ALGORITHM.scope
"""``with kernels.numba_cpu.conv_algorithm("winograd"):`` ("auto", "direct", "gemm",
"winograd" (F(2x2, 3x3)), "winograd4" (F(4x4, 3x3))); ``"auto"`` is the default."""
get_conv_algorithm = CONV_ALGORITHM.get
set_conv_algorithm = CONV_ALGORITHM.set


def conv_plan(spec: ConvSpec, itemsize: int, threads: int | None = None,
              allow_direct: bool = True, backward: bool = False) -> ConvPlan:
    """Pick the conv path and its work split for one problem (see the module header).

    ``spec`` a :class:`kernels.common.ConvSpec`, ``itemsize`` the bytes of one element of
    ``x`` (4 or 8). ``allow_direct=False`` rules the direct path out: its backward multiplies
    the zeros of the wide rows' junk columns with inputs and weights (see
    :func:`conv_direct._conv2d_direct`), exact only while those are finite (``0 * NaN =
    NaN``), so :func:`conv2d_backward` asks again with it when ``_all_finite(x) and
    _all_finite(weight)`` is false.

    ``backward=True``: the plan of a backward (grad_x, grad_weight or both). A one-group conv
    above the serial threshold leaves the direct path for im2col + GEMM when its kernel rows
    are narrower than ``FUSED_TAPS`` (unless ``conv_algorithm("direct")`` forces it): the
    direct backward kernels fuse five taps of a kernel row per pass
    (:mod:`kernels.numba_cpu.conv_direct`), and without that they lost to the GEMM's on
    every such layer measured, while the direct forward still wins. ms, float32, whole
    backward, 2 threads, best of three rounds' medians of 40, 2-core AMD EPYC (Zen 3, AVX2),
    ``F.conv2d_backward`` under ``conv_algorithm("direct")`` and ``("gemm")``::

        layer (N, C_in, H, C_out, k, pad)   direct   gemm   | no grad_x: direct   gemm
        LeNet conv1 (64, 1, 28, 6, 5, 2)    1.211    1.880  |            0.405    1.219
        LeNet conv2 (64, 6, 14, 16, 5, 0)   1.829    2.381  |            0.720    1.367
        MNIST conv2 (64, 10, 12, 20, 5, 0)  2.732    2.804  |            1.281    1.556
        (64, 2, 14, 16, 5, 0), K = 50       0.879    0.879  |            0.303    0.529
        (64, 4, 16, 16, 7, 3)               4.692    5.700  |            2.196    3.275
        (64, 3, 32, 16, 3, 1)               4.081    3.134  |            2.052    1.754
        (64, 2, 14, 16, 4, 0)               1.228    0.721  |            0.459    0.439

    (Before the five-tap passes, on the AVX-512 EPYC, the direct backward with grad_x lost
    on every row measured, LeNet's second layer 2.304 against 2.088 ms.) Again after the
    direct kernels went to chunks of samples (same machine in a slower hour, min of 15
    interleaved calls, whole backward / no grad_x): LeNet conv2 1.638 / 0.881 against 4.018
    / 2.189, MNIST conv2 2.141 / 1.128 against 5.762 / 3.218, (64, 4, 16, 16, 7, 3) 4.605 /
    3.113 against 6.449 / 3.844; still behind on the narrow kernels: (64, 3, 32, 16, 3, 1)
    5.906 / 2.815 against 4.750 / 2.871, (64, 2, 14, 16, 4, 0) 1.402 / 0.655 against 1.172 /
    0.694, (64, 16, 16, 32, 3, 1) 10.238 / 5.825 against 8.605 / 4.705.

    Below ``SERIAL_MAX_MACS`` the serial direct kernels stay (2x3x8x8, 4 outputs, 3x3: 0.036
    against 0.058 ms), and so do grouped convs, where neither path won every layer measured
    (depthwise, 32 channels at 28x28, batch 64: direct 6.3 ms, gemm 12.7; 64 channels at
    56x56, batch 32: direct 51 ms, gemm 24).

    A chunk should hold ``ceil(GEMM_MIN_COLS / P)`` samples (so its GEMMs have enough
    columns), every lane should get the same number of chunks, and one lane's im2col
    buffer ``(C_in*kH*kW, samples*P)`` should stay under ``COLS_MAX_BYTES``.
    ``threads`` defaults to ``numba.get_num_threads()``.
    """
    N, kh, kw = spec.N, spec.kH, spec.kW
    P = spec.H_out * spec.W_out
    stride_1 = spec.stride_h == 1 and spec.stride_w == 1
    C_in_g = spec.C_in // spec.groups
    serial = spec.N * spec.C_out * P * C_in_g * kh * kw < SERIAL_MAX_MACS
    if allow_direct and stride_1 and get_conv_algorithm() == "direct":
        return ConvPlan("direct", 1, 1, serial)  # forced by conv_algorithm("direct")
    allow_direct = allow_direct and get_conv_algorithm() != "gemm"
    small = C_in_g <= DIRECT_MAX_C_IN or (kh * kw > 1 and C_in_g * kh * kw <= DIRECT_MAX_K)
    if backward and spec.groups == 1 and not serial and kw < FUSED_TAPS:
        small = False  # no five-tap passes: the direct backward loses to the GEMM's (the table)
    if allow_direct and small and stride_1:
        return ConvPlan("direct", 1, 1, serial)
    threads = numba.get_num_threads() if threads is None else threads
    lanes = max(1, min(threads, N)) if _blas_libraries() is not None else 1
    per_lane = -(-N // lanes)
    samples = -(-GEMM_MIN_COLS // P)
    samples = max(1, min(samples, COLS_MAX_BYTES // (spec.C_in * kh * kw * P * itemsize)))
    rounds = -(-per_lane // samples)
    chunks = min(N, lanes * rounds)
    no_pad = spec.pad_h == 0 and spec.pad_w == 0
    if (kh, kw) == (1, 1) and stride_1 and no_pad and chunks == N:
        return ConvPlan("1x1", lanes, chunks)
    return ConvPlan("gemm", lanes, chunks)


def _gemm_plan(plan: ConvPlan, has_bias: bool) -> GemmPlan:
    """The GEMM kernels' view of ``plan`` (a ``"gemm"`` or ``"1x1"`` one): ints only."""
    return GemmPlan(lanes=plan.lanes, chunks=plan.chunks, in_place_1x1=int(plan.path == "1x1"),
                    has_bias=int(has_bias))


# --------------------------------------------------------------------------- conv2d: API


@_njit(parallel=True, cache=True, fastmath=FASTMATH)
def _bias_grad(grad_y):
    """``grad_bias[c] = grad_y[:, c].sum()``: (N, C, Ho, Wo) -> (C,), parallel over channels.

    Each sample's plane is summed as one flat run of ``Ho*Wo`` elements, so the vectorised
    loop (and its horizontal sum at the end) runs once per plane, not once per row of
    ``Wo``: LeNet's second layer's grad_y (64x16x10x10 float32, AVX2 EPYC, medians of 100
    interleaved calls) 46.6 us row by row, 12.8-13.1 us plane by plane.
    """
    N, C, Ho, Wo = grad_y.shape
    planes = grad_y.reshape(N, C, Ho * Wo)  # (N, C, Ho*Wo)
    gb = np.empty(C, grad_y.dtype)
    for c in prange(C):
        acc = grad_y.dtype.type(0)
        for n in range(N):
            plane = planes[n, c]  # (Ho*Wo,)
            for k in range(plane.shape[0]):
                acc += plane[k]
        gb[c] = acc
    return gb


def conv2d(x, weight, bias, spec: ConvSpec):
    """2-D convolution (cross-correlation); the path comes from :func:`conv_plan`.

    x : (N, C_in, H, W), weight : (C_out, C_in // groups, kH, kW), bias : (C_out,) or None,
    ``spec`` the problem's :class:`kernels.common.ConvSpec` -> y : ``spec.y_shape`` =
    (N, C_out, H_out, W_out), the sizes from :func:`kernels.common.conv_output_size`.
    """
    m = choose_tile(spec, x, weight)  # Winograd F(m x m, 3x3), or 0 (winograd.py's header)
    if m:
        return _conv2d_winograd(x, weight, bias, spec, m)
    plan = conv_plan(spec, x.itemsize)
    has_bias = bias is not None
    bias = bias if has_bias else np.zeros(spec.C_out, x.dtype)
    if plan.path == "direct":
        kernels = direct_kernels(plan.serial)
        S = chunk_samples(spec, x.itemsize)  # samples side by side (conv_direct._batch_planes)
        return kernels.forward(kernels.batch_planes(x, spec, S), weight, bias, spec, S)
    with _single_threaded_blas(plan.lanes):
        return _conv2d_gemm(x, weight, bias, spec, _gemm_plan(plan, has_bias))


def conv2d_backward(grad_y, x, weight, spec: ConvSpec, *,
                    needs_input_grad=(True, True, True)) -> ConvGrads:
    """Gradients of :func:`conv2d`.

    grad_y : (N, C_out, H_out, W_out), x : (N, C_in, H, W), weight : (C_out, C_in // groups,
    kH, kW), ``spec`` their :class:`kernels.common.ConvSpec` -> ``ConvGrads(grad_x (N, C_in,
    H, W), grad_weight (C_out, C_in // groups, kH, kW), grad_bias (C_out,))``.
    ``needs_input_grad`` (PyTorch's ``output_mask``): the gradients not asked for are not
    computed and come back as ``None``. The direct path's NaN guard scans only what the
    asked-for gradients multiply with the junk zeros: the weight for grad_x, ``x`` for
    grad_weight.
    """
    need_x, need_w, need_b = (bool(flag) for flag in needs_input_grad)
    grad_x, grad_w = (_input_grads(grad_y, x, weight, spec, need_x, need_w)
                      if need_x or need_w else (None, None))
    return ConvGrads(grad_x if need_x else None, grad_w if need_w else None,
                     _bias_grad(grad_y) if need_b else None)


def _input_grads(grad_y, x, weight, spec: ConvSpec, need_x: bool, need_w: bool):
    """``(grad_x, grad_weight)`` of :func:`conv2d_backward` on the path its plan picks
    (Winograd, direct or GEMM); one not asked for may come back computed or as None.
    """
    m = choose_tile(spec, x, weight, grad_y)  # Winograd F(m x m, 3x3), or 0
    if m:
        return _conv2d_backward_winograd(grad_y, x, weight, spec, m, (need_x, need_w))
    plan = conv_plan(spec, x.itemsize, backward=True)
    if plan.path == "direct" and not ((not need_x or _all_finite(weight))
                                      and (not need_w or _all_finite(x))):
        plan = conv_plan(spec, x.itemsize, allow_direct=False)  # scanned only where direct runs
    if plan.path == "direct":
        kernels = direct_kernels(plan.serial)
        S = chunk_samples(spec, x.itemsize)  # samples side by side (conv_direct._batch_planes)
        gy_batch = kernels.batch_grad(grad_y, spec, S)  # (C_out, m + chunks*Q + m)
        grad_x = kernels.grad_x(gy_batch, weight, spec, S) if need_x else None
        grad_w = None
        if need_w:
            x_batch = kernels.batch_planes(x, spec, S)  # (C_in, chunks*Q + tail)
            grad_w = kernels.grad_weight(gy_batch, x_batch, spec, S)
        return grad_x, grad_w
    gemm = _gemm_plan(plan, has_bias=False)._replace(need_grad_x=int(need_x),
                                                     need_grad_w=int(need_w))
    with _single_threaded_blas(plan.lanes):
        return _conv2d_backward_gemm(grad_y, x, weight, spec, gemm)


# --------------------------------------------------------------------------- conv_transpose2d


def _transpose_plan(spec: ConvSpec, itemsize: int, *finite_arrays) -> ConvPlan:
    """:func:`conv_plan` for the conv whose grad_x a transposed conv is (``spec``).

    The direct path multiplies junk zeros with its operands, so it runs only when every
    array of ``finite_arrays`` is finite (as in :func:`conv2d_backward`). The in-place 1x1
    path reads a conv input plane as its output plane, so it needs ``H, W == H_out,
    W_out``, which an ``output_padding`` of at least the stride breaks (then: ``"gemm"``).
    """
    plan = conv_plan(spec, itemsize)
    if plan.path == "direct" and not all(_all_finite(a) for a in finite_arrays):
        plan = conv_plan(spec, itemsize, allow_direct=False)
    if plan.path == "1x1" and (spec.H, spec.W) != (spec.H_out, spec.W_out):
        plan = plan._replace(path="gemm")
    return plan


def conv_transpose2d(x, weight, bias, spec: ConvSpec):
    """Transposed convolution: conv2d_backward's grad_x on the path of :func:`conv_plan`.

    x : (N, C_in, H, W), weight : (C_in, C_out // groups, kH, kW), bias : (C_out,) or None,
    ``spec`` the :class:`kernels.common.ConvSpec` of the conv whose grad_x this is
    (:func:`kernels.common.conv_transpose_spec`) -> y : (N, C_out, H_y, W_y) = ``spec.x_shape``.
    """
    plan = _transpose_plan(spec, x.itemsize, x, weight)
    if plan.path == "direct":
        S = chunk_samples(spec, x.itemsize)
        y = _conv2d_direct_grad_x(_batch_grad(x, spec, S), weight, spec, S)
    elif subpixel_wins(spec):  # strided, overlapping stamps: conv_transpose's header
        w_rows = _weight_by_rows(weight, spec.groups)  # (groups, K, C_in // groups)
        with _single_threaded_blas(plan.lanes):
            y = _conv_transpose2d_subpixel(x, w_rows, spec, _gemm_plan(plan, has_bias=False),
                                           SUBPIXEL_BLOCK)
    else:
        with _single_threaded_blas(plan.lanes):
            y = _conv_transpose2d_gemm(x, weight, spec, _gemm_plan(plan, has_bias=False))
    if bias is not None:
        y += bias.reshape(-1, 1, 1)  # (C_out, 1, 1)
    return y


def conv_transpose2d_backward(grad_y, x, weight, spec: ConvSpec) -> ConvGrads:
    """Gradients of :func:`conv_transpose2d`: conv2d of ``grad_y`` and its grad_weight.

    grad_y : (N, C_out, H_y, W_y), x : (N, C_in, H, W), weight : (C_in, C_out // groups, kH,
    kW) -> ``ConvGrads(grad_x (N, C_in, H, W), grad_weight (like weight), grad_bias
    (C_out,))``; ``spec`` as :func:`conv_transpose2d` takes it.
    """
    plan = _transpose_plan(spec, x.itemsize, x, grad_y)
    if plan.path == "direct":
        S = chunk_samples(spec, x.itemsize)  # samples side by side (conv_direct._batch_planes)
        gy_batch = _batch_planes(grad_y, spec, S)  # (C_out, chunks*Q + tail)
        grad_x = _conv2d_direct(gy_batch, weight, np.zeros(spec.C_out, x.dtype), spec, S)
        grad_w = _conv2d_direct_grad_weight(_batch_grad(x, spec, S), gy_batch, spec, S)
    else:  # im2col phase by phase where the sub-pixel kernels win (conv_transpose's header)
        with _single_threaded_blas(plan.lanes):
            grad_x, grad_w = _conv_transpose2d_backward_gemm(
                grad_y, x, weight, spec, _gemm_plan(plan, has_bias=False),
                int(subpixel_wins(spec)))
    return ConvGrads(grad_x, grad_w, _bias_grad(grad_y))


__all__ = [
    "ConvPlan",
    "GemmPlan",
    "adam_step",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "add",
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "conv2d",
    "conv2d_backward",
    "conv_algorithm",
    "conv_plan",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "corr2d",
    "cross_entropy",
    "cross_entropy_backward",
    "dropout",
    "dropout_backward",
    "get_conv_algorithm",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "nll_loss",
    "nll_loss_backward",
    "pad",
    "pad_backward",
    "relu",
    "relu_backward",
    "set_conv_algorithm",
    "sgd_step",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "cat",
    "cat_backward",
    "dropout2d",
    "dropout2d_backward",
    "elu",
    "elu_backward",
    "gelu",
    "gelu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "silu",
    "silu_backward",
    "softmax",
    "softmax_backward",
]
