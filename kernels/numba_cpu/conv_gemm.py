"""The ``"gemm"`` and ``"1x1"`` conv paths: im2col, one BLAS GEMM per group, col2im.

Forward (:func:`_conv2d_gemm`) and backward (:func:`_conv2d_backward_gemm`) compute what
``conv2d`` and ``conv2d_backward`` of :mod:`kernels.naive` compute; the matrix form is naive's
``corr2d_multi_in_out_1x1`` made general by :func:`_im2col` (``kernels/vectorized.py`` does
the same with a NumPy window view). Work is split into lanes and chunks of samples by
``conv_plan`` in :mod:`kernels.numba_cpu`; each lane calls BLAS single-threaded, which
:func:`_single_threaded_blas` arranges (package header, items 3 and 4).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np
from numba import prange

from ._loops import FASTMATH, _add_into, _copy_into, _valid_range, njit

# --------------------------------------------------------------------------- BLAS threads


def _blas_libraries():
    """The BLAS libraries loaded in this process (threadpoolctl), or None without it.

    Each GEMM lane calls BLAS from its own Numba thread, so BLAS itself must run on one
    thread meanwhile (two lanes each starting two BLAS threads on two cores would fight over
    them). threadpoolctl finds the libraries; without it, the GEMM paths use a single lane
    and let BLAS parallelise each GEMM instead.
    """
    global _BLAS
    if _BLAS is False:
        try:
            import scipy.linalg.cython_blas  # noqa: F401 - the BLAS numba's np.dot calls
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _BLAS = None
        else:
            _BLAS = ThreadpoolController().select(user_api="blas").lib_controllers
    return _BLAS


_BLAS = False  # not looked up yet


@contextlib.contextmanager
def _single_threaded_blas(lanes: int):
    """Run the block with every BLAS library on one thread (when ``lanes > 1``), then restore.

    Uses threadpoolctl's per-library controllers directly: two C calls per library, about a
    microsecond, where ``threadpool_limits`` would rescan the process (~40 us).
    """
    libraries = _blas_libraries() if lanes > 1 else None
    if not libraries:
        yield
        return
    before = [lib.get_num_threads() for lib in libraries]
    for lib in libraries:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libraries, before, strict=True):
            lib.set_num_threads(n)


# --------------------------------------------------------------------------- conv2d: GEMM


class GemmPlan(NamedTuple):
    """The work split :func:`_conv2d_gemm` and :func:`_conv2d_backward_gemm` follow.

    Built from ``conv_plan``'s :class:`ConvPlan` by :func:`kernels.numba_cpu.conv2d`. All
    fields are ints (the flags 0 or 1), so a plan is one Numba argument, like the spec.
    """

    lanes: int  # parallel workers, each with its own buffers and single-threaded GEMMs
    chunks: int  # the batch is cut into this many chunks; lane l does l, l + lanes, ...
    in_place_1x1: int  # 1: 1x1 kernel, stride 1, no padding, one sample a chunk: cols is x[n]
    has_bias: int  # 1: add the bias (forward only; 0 skips adding zeros on one-sample chunks)
    need_grad_x: int = 1  # backward only, 0: skip dcols = W.T @ gY and col2im (grad_x unused)
    need_grad_w: int = 1  # backward only, 0: skip im2col and gY @ cols.T (grad_weight unused)


@njit(cache=True)
def _im2col(x, cols, spec, n0, samples):
    """Unfold samples ``n0 .. n0 + samples - 1`` of ``x`` into ``cols`` (one lane, serial).

    x : (N, C_in, H, W) -> cols : (C_in*kH*kW, samples*H_out*W_out), written in place
    (``spec`` a :class:`kernels.common.ConvSpec`; ``sh = spec.stride_h``, ``ph =
    spec.pad_h``, ``dh = spec.dil_h``, and the same along W):
    ``cols[(c*kH + i)*kW + j, s*P + oh*W_out + ow] = x[n0 + s, c, oh*sh + i*dh - ph, ow*sw +
    j*dw - pw]``, 0 where that falls in the padding, ``P = H_out*W_out``.

    Rows are ``(channel, tap)`` pairs, so a group's rows form one contiguous block and each
    group's GEMM reads a contiguous slice. Each row is ``samples*H_out`` runs of ``W_out`` pixels
    copied from one input row, zero-filled at the padded edges. A run is copied slice to
    slice by :func:`_copy_into` (a plain loop: Numba's slice assignment ``a[i:j] = b[k:l]``
    checks shapes and overlap per call, and dropping it made this function 20-40% faster on
    ResNet's layers, batch 4, min of 30). With stride 1 the slices are contiguous and LLVM
    turns the copy into vector moves (2x faster than an element loop on ResNet's 64x56x56
    layer: 1.07 vs 1.95 ms a sample). With stride 2 the input slice is strided (col2im
    17-20% faster than with an element loop). Stride 1 keeps its own branch: a slice with a
    run-time step of 1 is typed non-contiguous and copied 1.4-2x slower.
    """
    _, C_in, H, W = x.shape
    kh, kw, Ho, Wo = spec.kH, spec.kW, spec.H_out, spec.W_out
    sh, sw, ph, pw, dh, dw = (spec.stride_h, spec.stride_w, spec.pad_h, spec.pad_w,
                              spec.dil_h, spec.dil_w)
    P = Ho * Wo
    for c in range(C_in):
        for i in range(kh):
            oh_lo, oh_hi = _valid_range(Ho, H, i * dh - ph, sh)
            for j in range(kw):
                ow_lo, ow_hi = _valid_range(Wo, W, j * dw - pw, sw)
                row = (c * kh + i) * kw + j
                for s in range(samples):
                    base = s * P  # this sample's first column in ``cols``
                    for oh in range(Ho):
                        if oh < oh_lo or oh >= oh_hi:  # the row is in the padding
                            for ow in range(Wo):
                                cols[row, base + ow] = 0
                        else:
                            h = oh * sh + i * dh - ph
                            for ow in range(ow_lo):
                                cols[row, base + ow] = 0
                            src = x[n0 + s, c, h]  # (W,): the input row this tap reads
                            w0 = ow_lo * sw + j * dw - pw  # the run's first column
                            if sw == 1:  # a contiguous slice copy, vectorised
                                _copy_into(cols[row, base + ow_lo:base + ow_hi],
                                           src[w0:w0 + ow_hi - ow_lo])
                            elif ow_hi > ow_lo:  # a strided slice copy
                                _copy_into(cols[row, base + ow_lo:base + ow_hi],
                                           src[w0:w0 + (ow_hi - ow_lo - 1) * sw + 1:sw])
                            for ow in range(ow_hi, Wo):
                                cols[row, base + ow] = 0
                        base += Wo


@njit(cache=True, fastmath=FASTMATH)
def _col2im(dcols, grad_x, spec, n0, samples):
    """The backward of :func:`_im2col`: scatter-add ``dcols`` onto ``grad_x[n0:n0+samples]``.

    dcols : (C_in*kH*kW, samples*H_out*W_out) -> grad_x : (N, C_in, H, W), those samples
    overwritten (``spec`` a :class:`kernels.common.ConvSpec`). Each input pixel receives one
    term from every tap whose window covers it (the adjoint of the copy im2col made). Loop
    order: plane, tap, output row, output column, so the inner loop reads ``dcols``
    contiguously and the plane stays in cache.
    """
    _, C_in, H, W = grad_x.shape
    kh, kw, Ho, Wo = spec.kH, spec.kW, spec.H_out, spec.W_out
    sh, sw, ph, pw, dh, dw = (spec.stride_h, spec.stride_w, spec.pad_h, spec.pad_w,
                              spec.dil_h, spec.dil_w)
    P = Ho * Wo
    for s in range(samples):
        for c in range(C_in):
            plane = grad_x[n0 + s, c]  # (H, W)
            plane[:, :] = 0
            for i in range(kh):
                oh_lo, oh_hi = _valid_range(Ho, H, i * dh - ph, sh)
                for j in range(kw):
                    ow_lo, ow_hi = _valid_range(Wo, W, j * dw - pw, sw)
                    src = dcols[(c * kh + i) * kw + j, s * P:(s + 1) * P]  # (Ho*Wo,)
                    if ow_hi <= ow_lo:
                        continue
                    w0 = ow_lo * sw + j * dw - pw  # the run's first column, as in im2col
                    for oh in range(oh_lo, oh_hi):
                        h = oh * sh + i * dh - ph
                        run = src[oh * Wo + ow_lo:oh * Wo + ow_hi]
                        if sw == 1:  # contiguous: a typed-contiguous slice vectorises
                            _add_into(plane[h, w0:w0 + ow_hi - ow_lo], run)
                        else:
                            _add_into(plane[h, w0:w0 + (ow_hi - ow_lo - 1) * sw + 1:sw], run)


@njit(parallel=True, cache=True)
def _conv2d_gemm(x, weight, bias, spec, plan):
    """Convolution as im2col + one BLAS GEMM per group and chunk of samples.

    x : (N, C_in, H, W), weight : (C_out, C_in // groups, kH, kW), bias : (C_out,)
    -> y : (N, C_out, H_out, W_out); ``spec`` a :class:`kernels.common.ConvSpec`, ``plan``
    a :class:`GemmPlan`.

    ``prange`` runs ``plan.lanes`` workers; each owns an im2col buffer and walks its chunks
    of samples: im2col the chunk into ``cols (C_in*kH*kW, s*P)``, then per group
    ``Y_g (C_out/g, s*P) = W_g (C_out/g, K) @ cols_g (K, s*P)``, ``W_g`` being the group's
    rows of the weight seen as ``(C_out, K)`` (OIHW already is that matrix: packed for free).
    BLAS runs single-threaded inside a lane; the lanes are the parallelism, and there is one
    parallel region per call. With one sample per chunk ``Y_g`` is written straight into
    ``y[n]``; with more, into a buffer copied out with the bias. ``plan.in_place_1x1`` (1x1,
    stride 1, no padding, one sample per chunk): ``cols`` is ``x[n]`` itself, no im2col.
    """
    N, C_in, H, W = x.shape
    C_out, C_in_g, kh, kw = weight.shape
    groups, Ho, Wo = spec.groups, spec.H_out, spec.W_out
    lanes, chunks, in_place_1x1, has_bias = (plan.lanes, plan.chunks, plan.in_place_1x1,
                                             plan.has_bias)
    C_out_g = C_out // groups
    K = C_in_g * kh * kw  # a group's GEMM inner dimension
    R = C_in * kh * kw  # rows of cols, all groups
    P = Ho * Wo  # output pixels of one sample
    S = -(-N // chunks)  # the largest chunk
    x3 = x.reshape(N, C_in, H * W)  # (N, C_in, H*W)
    w2 = weight.reshape(C_out, K)  # (C_out, C_in/g*kH*kW)
    y = np.empty((N, C_out, Ho, Wo), x.dtype)
    y3 = y.reshape(N, C_out, P)  # (N, C_out, Ho*Wo)
    for lane in prange(lanes):
        cols_buf = np.empty(0 if in_place_1x1 else R * S * P, x.dtype)
        y_buf = np.empty(0 if S == 1 else C_out_g * S * P, x.dtype)
        for k in range(lane, chunks, lanes):
            n0 = k * N // chunks
            s = (k + 1) * N // chunks - n0
            if in_place_1x1:
                cols = x3[n0]  # (C_in, P): a 1x1 conv's im2col matrix is the input itself
            else:
                cols = cols_buf[:R * s * P].reshape(R, s * P)  # (C_in*kH*kW, s*P)
                _im2col(x, cols, spec, n0, s)
            for g in range(groups):
                w_g = w2[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, K)
                cols_g = cols[g * K:(g + 1) * K]  # (K, s*P)
                if s == 1:
                    y_n = y3[n0, g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, P)
                    np.dot(w_g, cols_g, y_n)
                    if has_bias:
                        for co in range(C_out_g):
                            b = bias[g * C_out_g + co]
                            for p in range(P):
                                y_n[co, p] += b
                    continue
                y_g = y_buf[:C_out_g * s * P].reshape(C_out_g, s * P)  # (C_out/g, s*P)
                np.dot(w_g, cols_g, y_g)
                for b in range(s):
                    for co in range(C_out_g):
                        out = y3[n0 + b, g * C_out_g + co]  # (P,)
                        bias_co = bias[g * C_out_g + co]
                        for p in range(P):
                            out[p] = y_g[co, b * P + p] + bias_co
    return y


@njit(parallel=True, cache=True)
def _conv2d_backward_gemm(grad_y, x, weight, spec, plan):
    """grad_x and grad_weight through the same chunks and lanes as :func:`_conv2d_gemm`.

    grad_y : (N, C_out, H_out, W_out), x : (N, C_in, H, W), weight : (C_out, C_in // groups,
    kH, kW) -> grad_x : (N, C_in, H, W), grad_weight : (C_out, C_in // groups, kH, kW);
    ``spec`` a :class:`kernels.common.ConvSpec`, ``plan`` a :class:`GemmPlan` (its
    ``has_bias`` is not read: ``grad_bias`` is summed by the caller). ``plan.need_grad_x = 0``
    skips the ``dcols`` GEMM and col2im (grad_x comes back uninitialised: the caller drops
    it), ``plan.need_grad_w = 0`` skips im2col and the grad_W GEMM (grad_weight comes back
    zero): PyTorch's ``output_mask``.

    Per chunk and group, with ``gY_g (C_out/g, s*P)`` the chunk's gradient rows side by side:
    ``grad_W_g += gY_g @ cols_g.T`` (the forward GEMM with its output and one input swapped)
    and ``dcols_g = W_g.T @ gY_g``, then col2im scatters ``dcols`` onto ``grad_x``. Each lane
    sums its grad_W into its own slot; the slots are added in lane order at the end, so the
    result does not depend on thread timing. The 1x1 in-place path reads ``x[n]`` as
    ``cols`` and writes ``dcols`` straight into ``grad_x[n]``.
    """
    N, C_in, H, W = x.shape
    C_out, C_in_g, kh, kw = weight.shape
    groups, Ho, Wo = spec.groups, spec.H_out, spec.W_out
    lanes, chunks, in_place_1x1 = plan.lanes, plan.chunks, plan.in_place_1x1
    need_x, need_w = plan.need_grad_x, plan.need_grad_w
    C_out_g = C_out // groups
    K = C_in_g * kh * kw  # a group's GEMM inner dimension
    R = C_in * kh * kw  # rows of cols, all groups
    P = Ho * Wo  # output pixels of one sample
    S = -(-N // chunks)  # the largest chunk
    x3 = x.reshape(N, C_in, H * W)  # (N, C_in, H*W)
    gy3 = grad_y.reshape(N, C_out, P)  # (N, C_out, Ho*Wo)
    w2 = weight.reshape(C_out, K)  # (C_out, K)
    grad_x = np.empty((N, C_in, H, W), x.dtype)
    gx3 = grad_x.reshape(N, C_in, H * W)  # (N, C_in, H*W)
    gw_lanes = np.zeros((lanes, C_out, K), x.dtype)  # (lanes, C_out, K)
    for lane in prange(lanes):
        cols_buf = np.empty(0 if in_place_1x1 or not need_w else R * S * P, x.dtype)
        dcols_buf = np.empty(0 if in_place_1x1 or not need_x else R * S * P, x.dtype)
        gy_buf = np.empty(0 if S == 1 else C_out * S * P, x.dtype)
        for k in range(lane, chunks, lanes):
            n0 = k * N // chunks
            s = (k + 1) * N // chunks - n0
            if in_place_1x1:
                cols = x3[n0]  # (C_in, P)
                dcols = gx3[n0]  # (C_in, P)
            else:
                cols = cols_buf[:R * s * P * need_w].reshape(R, s * P * need_w)  # (R, s*P)
                dcols = dcols_buf[:R * s * P * need_x].reshape(R, s * P * need_x)  # (R, s*P)
                if need_w:
                    _im2col(x, cols, spec, n0, s)
            if s == 1:
                gy = gy3[n0]  # (C_out, P)
            else:
                gy = gy_buf[:C_out * s * P].reshape(C_out, s * P)  # (C_out, s*P)
                for b in range(s):
                    for co in range(C_out):
                        gy[co, b * P:(b + 1) * P] = gy3[n0 + b, co]
            for g in range(groups):
                gy_g = gy[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, s*P)
                cols_g = cols[g * K:(g + 1) * K]  # (K, s*P)
                w_g = w2[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, K)
                if need_w:
                    gw_lanes[lane, g * C_out_g:(g + 1) * C_out_g] += np.dot(gy_g, cols_g.T)
                if need_x:
                    np.dot(w_g.T, gy_g, dcols[g * K:(g + 1) * K])  # (K, s*P)
            if need_x and not in_place_1x1:
                _col2im(dcols, grad_x, spec, n0, s)
    grad_w = gw_lanes[0].copy()  # (C_out, K)
    for lane in range(1, lanes):
        grad_w += gw_lanes[lane]
    return grad_x, grad_w.reshape(C_out, C_in_g, kh, kw)
