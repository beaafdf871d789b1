"""Transposed convolution's GEMM kernels: conv2d's lanes, chunks, im2col and col2im, reused.

``conv_transpose2d`` of :mod:`kernels.naive` stamps each input pixel's kernel onto the
output; that is conv2d_backward's grad_x (naive's docstring shows it line for line), so
this module computes it with the pieces of :mod:`.conv_gemm` and nothing new: the same
:class:`~.conv_gemm.GemmPlan` (lanes of chunks of samples, BLAS single-threaded inside a
lane), the same :func:`~.conv_gemm._im2col` and :func:`~.conv_gemm._col2im`. ``spec`` is
always the :class:`kernels.common.ConvSpec` of the *convolution* whose grad_x the transposed
convolution is (:func:`kernels.common.conv_transpose_spec`), so every size reads as in
conv_gemm: the transposed conv's ``x`` is that conv's grad_y ``(N, spec.C_out, H_out,
W_out)``, its output ``y`` the conv's grad_x ``(N, spec.C_in, H, W)``.

What changes relative to :func:`~.conv_gemm._conv2d_backward_gemm`, and why: each kernel
here runs only the half of it that a transposed conv needs. The forward,
:func:`_conv_transpose2d_gemm`, is its grad_x half (``dcols = W_g.T @ x_g``, col2im), without
the im2col of an input the transposed conv does not have. The backward,
:func:`_conv_transpose2d_backward_gemm`, im2cols ``grad_y`` once and uses those columns twice:
``grad_x_g = W_g @ cols_g`` (conv2d's forward GEMM) and ``grad_W_g += x_g @ cols_g.T``
(conv2d's grad_weight GEMM with ``x`` in grad_y's role), where running ``conv2d`` and a
grad_weight kernel separately would im2col ``grad_y`` twice. The direct path (one output
channel per group, stride 1) needs no kernel of its own: :mod:`kernels.numba_cpu` calls
``conv_direct``'s grad_x, forward and grad_weight kernels with the roles swapped.

The sub-pixel path (the second half of the file), for strided layers whose stamps overlap
(:func:`subpixel_wins`: DCGAN's 4x4, stride 2). With stride ``s`` the output splits into
``s*s`` phases (rows ``a::s``, columns ``b::s``), and each phase is a stride-1 sum of the
taps that land on it (:func:`_tap_phase`), the "sub-pixel convolution" view of a
transposed conv. :func:`_col2im_phases` sums every tap's stamp into its phase as contiguous
runs (``_col2im`` adds into every ``s``-th element) and joins the phases into the planes
once; :func:`_im2col_phases` is its mirror for the backward's im2col. The forward,
:func:`_conv_transpose2d_subpixel`, also cuts the GEMM into blocks of ``SUBPIXEL_BLOCK``
output planes so that each block's columns are summed while still in L2. The backward
keeps :func:`_conv_transpose2d_backward_gemm` whole, its im2col read phase by phase.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._loops import FASTMATH, _valid_range, njit
from .conv_gemm import _col2im, _im2col


@njit(cache=True)
def _gather_chunk(a3, buf, n0, s, c0, c1):
    """Channels ``c0:c1`` of samples ``n0 .. n0 + s - 1`` side by side, one sample a block.

    a3 : (N, C, P) -> (c1 - c0, s*P), a view of ``buf`` (no copy when ``s == 1``: a view of
    ``a3[n0]``), so that one GEMM covers the chunk.
    """
    P = a3.shape[2]
    if s == 1:
        return a3[n0, c0:c1]  # (c1 - c0, P)
    out = buf[:(c1 - c0) * s * P].reshape(c1 - c0, s * P)  # (c1 - c0, s*P)
    for b in range(s):
        for c in range(c0, c1):
            out[c - c0, b * P:(b + 1) * P] = a3[n0 + b, c]
    return out


@njit(parallel=True, cache=True)
def _conv_transpose2d_gemm(x, weight, spec, plan):
    """The transposed conv's output by conv2d_backward's grad_x GEMM and col2im, no bias.

    x : (N, C_out, H_out, W_out) in the conv's names (the transposed conv's input, with
    ``C_out = spec.C_out`` its input channels), weight : (C_out, C_in // groups, kH, kW)
    -> y : (N, C_in, H, W) (``spec.x_shape``: the transposed conv's output). ``plan`` a
    :class:`~.conv_gemm.GemmPlan`.

    Per lane, chunk and group: ``dcols_g (K, s*P) = W_g.T (K, C_out/g) @ x_g (C_out/g,
    s*P)``, each column the kernel stack one input pixel stamps, then :func:`_col2im` adds
    the stamps onto the output planes. With ``plan.in_place_1x1`` (1x1, stride 1, no
    padding, one sample a chunk) ``dcols`` is ``y[n]`` itself: the stamp is one pixel.
    """
    N, C_out, Ho, Wo = x.shape
    _, C_in_g, kh, kw = weight.shape
    groups, C_in, H, W = spec.groups, spec.C_in, spec.H, spec.W
    lanes, chunks, in_place_1x1 = plan.lanes, plan.chunks, plan.in_place_1x1
    C_out_g = C_out // groups
    K = C_in_g * kh * kw  # rows of a group's columns
    R = C_in * kh * kw  # rows of dcols, all groups
    P = Ho * Wo  # pixels of one sample of x
    S = -(-N // chunks)  # the largest chunk
    x3 = x.reshape(N, C_out, P)  # (N, C_out, Ho*Wo)
    w2 = weight.reshape(C_out, K)  # (C_out, K)
    y = np.empty((N, C_in, H, W), x.dtype)
    y3 = y.reshape(N, C_in, H * W)  # (N, C_in, H*W)
    for lane in prange(lanes):
        dcols_buf = np.empty(0 if in_place_1x1 else R * S * P, x.dtype)
        x_buf = np.empty(0 if S == 1 else C_out * S * P, x.dtype)
        for k in range(lane, chunks, lanes):
            n0 = k * N // chunks
            s = (k + 1) * N // chunks - n0
            if in_place_1x1:
                dcols = y3[n0]  # (C_in, P)
            else:
                dcols = dcols_buf[:R * s * P].reshape(R, s * P)  # (C_in*kH*kW, s*P)
            x_chunk = _gather_chunk(x3, x_buf, n0, s, 0, C_out)  # (C_out, s*P)
            for g in range(groups):
                w_g = w2[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, K)
                x_g = x_chunk[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, s*P)
                np.dot(w_g.T, x_g, dcols[g * K:(g + 1) * K])  # (K, s*P)
            if not in_place_1x1:
                _col2im(dcols, y, spec, n0, s)
    return y


@njit(parallel=True, cache=True)
def _conv_transpose2d_backward_gemm(grad_y, x, weight, spec, plan, phases):
    """grad_x and grad_weight of the transposed conv from one im2col of ``grad_y``.

    grad_y : (N, C_in, H, W) in the conv's names (``spec.x_shape``, the transposed conv's
    output gradient), x : (N, C_out, H_out, W_out), weight : (C_out, C_in // groups, kH, kW)
    -> grad_x : (N, C_out, H_out, W_out), grad_weight : (C_out, C_in // groups, kH, kW).

    Per lane, chunk and group, with ``cols`` the im2col of the chunk of ``grad_y``:
    ``grad_x_g (C_out/g, s*P) = W_g @ cols_g`` (conv2d's forward) and ``grad_W_g += x_g @
    cols_g.T`` (conv2d_backward's grad_weight, ``x`` in grad_y's place). Each lane sums
    grad_W into its own slot and the slots are added in lane order, as in conv_gemm. With
    ``plan.in_place_1x1`` ``cols`` is ``grad_y[n]`` itself. ``phases = 1``: the im2col is
    :func:`_im2col_phases` (the sub-pixel path, :func:`subpixel_wins`), else ``_im2col``.
    """
    N, C_in, H, W = grad_y.shape
    C_out, C_in_g, kh, kw = weight.shape
    groups, Ho, Wo = spec.groups, spec.H_out, spec.W_out
    lanes, chunks, in_place_1x1 = plan.lanes, plan.chunks, plan.in_place_1x1
    C_out_g = C_out // groups
    K = C_in_g * kh * kw  # a group's GEMM inner dimension
    R = C_in * kh * kw  # rows of cols, all groups
    P = Ho * Wo  # output pixels of one sample of the conv
    S = -(-N // chunks)  # the largest chunk
    sh, sw, Hm, Wm = _phase_shape(spec)
    gy3 = grad_y.reshape(N, C_in, H * W)  # (N, C_in, H*W)
    x3 = x.reshape(N, C_out, P)  # (N, C_out, Ho*Wo)
    w2 = weight.reshape(C_out, K)  # (C_out, K)
    grad_x = np.empty((N, C_out, Ho, Wo), x.dtype)
    gx3 = grad_x.reshape(N, C_out, P)  # (N, C_out, Ho*Wo)
    gw_lanes = np.zeros((lanes, C_out, K), x.dtype)  # (lanes, C_out, K)
    for lane in prange(lanes):
        cols_buf = np.empty(0 if in_place_1x1 else R * S * P, x.dtype)
        x_buf = np.empty(0 if S == 1 else C_out * S * P, x.dtype)
        gx_buf = np.empty(0 if S == 1 else C_out_g * S * P, x.dtype)
        ph_buf = np.empty(S * sh * sw * Hm * Wm if phases else 0, x.dtype)  # (S, sh, sw, Hm, Wm)
        for k in range(lane, chunks, lanes):
            n0 = k * N // chunks
            s = (k + 1) * N // chunks - n0
            if in_place_1x1:
                cols = gy3[n0]  # (C_in, P): a 1x1 conv's im2col matrix is its input
            else:
                cols = cols_buf[:R * s * P].reshape(R, s * P)  # (C_in*kH*kW, s*P)
                if phases:
                    _im2col_phases(grad_y, cols, spec, n0, 0, ph_buf)
                else:
                    _im2col(grad_y, cols, spec, n0, s)
            x_chunk = _gather_chunk(x3, x_buf, n0, s, 0, C_out)  # (C_out, s*P)
            for g in range(groups):
                w_g = w2[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, K)
                cols_g = cols[g * K:(g + 1) * K]  # (K, s*P)
                x_g = x_chunk[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, s*P)
                gw_lanes[lane, g * C_out_g:(g + 1) * C_out_g] += np.dot(x_g, cols_g.T)
                if s == 1:
                    np.dot(w_g, cols_g, gx3[n0, g * C_out_g:(g + 1) * C_out_g])  # (C_out/g, P)
                    continue
                gx_g = gx_buf[:C_out_g * s * P].reshape(C_out_g, s * P)  # (C_out/g, s*P)
                np.dot(w_g, cols_g, gx_g)
                for b in range(s):
                    for co in range(C_out_g):
                        gx3[n0 + b, g * C_out_g + co] = gx_g[co, b * P:(b + 1) * P]
    grad_w = gw_lanes[0].copy()  # (C_out, K)
    for lane in range(1, lanes):
        grad_w += gw_lanes[lane]
    return grad_x, grad_w.reshape(C_out, C_in_g, kh, kw)


# --------------------------------------------------------------------------- sub-pixel path


@njit(cache=True)
def _phase_shape(spec):
    """``(sh, sw, Hm, Wm)``: the stride and the largest phase plane of a ``(H, W)`` plane.

    Phase ``(a, b)`` of a plane is ``plane[a::sh, b::sw]``, at most ``Hm = ceil(H / sh)``
    rows by ``Wm = ceil(W / sw)`` columns (phase 0 is the largest).
    """
    sh, sw = spec.stride_h, spec.stride_w
    return sh, sw, -(-spec.H // sh), -(-spec.W // sw)


@njit(cache=True)
def _tap_phase(i, dil, pad, stride):
    """Tap ``i``'s phase and shift: input row ``oh*stride + i*dil - pad = (oh + q)*stride + a``.

    Returns ``(a, q)`` with ``0 <= a < stride`` (Python's floor division and modulo), so the
    tap reads (or, in col2im, writes) row ``oh + q`` of phase plane ``a``: consecutive
    ``oh`` are consecutive rows of one phase, a contiguous run instead of a strided one.
    """
    off = i * dil - pad
    a = off % stride
    return a, (off - a) // stride


@njit(cache=True)
def _tap_in_phases(spec, i, j):
    """Where tap ``(i, j)``'s stamp lies in one sample's phases (:func:`_split_phases` layout).

    Returns ``(oh_lo, oh_hi, ow_lo, ow_hi, start, whole_rows)``: the outputs the tap reaches
    (:func:`_valid_range` per axis), ``start`` the offset in one sample's phases of output
    ``(oh_lo, 0)``'s element (phase ``(a, b)``, row ``oh_lo + qi``, column ``qj``, from
    :func:`_tap_phase`; output ``(oh, ow)`` is then ``start + (oh - oh_lo)*Wm + ow``), and
    ``whole_rows``: the tap covers whole phase rows, so its rows are one contiguous run.
    :func:`_col2im_phases` adds there, :func:`_im2col_phases` reads from there.
    """
    sh, sw, Hm, Wm = _phase_shape(spec)
    a, qi = _tap_phase(i, spec.dil_h, spec.pad_h, sh)
    b, qj = _tap_phase(j, spec.dil_w, spec.pad_w, sw)
    oh_lo, oh_hi = _valid_range(spec.H_out, spec.H, i * spec.dil_h - spec.pad_h, sh)
    ow_lo, ow_hi = _valid_range(spec.W_out, spec.W, j * spec.dil_w - spec.pad_w, sw)
    start = ((a * sw + b) * Hm + oh_lo + qi) * Wm + qj
    whole_rows = ow_lo == 0 and ow_hi == spec.W_out and Wm == spec.W_out
    return oh_lo, oh_hi, ow_lo, ow_hi, start, whole_rows


@njit(cache=True)
def _copy_run(dst, d0, src, s0, n):
    """``dst[d0:d0 + n] = src[s0:s0 + n]`` on 1-D arrays, a plain loop (vectorised)."""
    dst_run, src_run = dst[d0:d0 + n], src[s0:s0 + n]  # slices: indices known >= 0
    for k in range(n):
        dst_run[k] = src_run[k]


@njit(cache=True)
def _zero_run(dst, d0, n):
    """``dst[d0:d0 + n] = 0``, a plain loop (a slice assignment checks its bounds per call)."""
    dst_run = dst[d0:d0 + n]
    for k in range(n):
        dst_run[k] = 0


@njit(cache=True, fastmath=FASTMATH)
def _add_run(dst, d0, src, s0, n):
    """``dst[d0:d0 + n] += src[s0:s0 + n]`` on 1-D arrays, a plain loop (vectorised)."""
    dst_run, src_run = dst[d0:d0 + n], src[s0:s0 + n]
    for k in range(n):
        dst_run[k] += src_run[k]


@njit(cache=True)
def _split_phases(plane, phases, base, spec):
    """``phases[base + ...] = plane`` cut into its stride phases (the pixel unshuffle).

    plane : (H*W,) one flat plane -> ``stride_h*stride_w`` phase planes of ``Hm x Wm``
    (:func:`_phase_shape`) from ``phases[base]`` on: phase ``(a, b)`` is ``plane[a::sh,
    b::sw]`` at ``base + ((a*sw + b)*Hm + m)*Wm + n``. The tail of a short phase is unused.
    """
    H, W = spec.H, spec.W
    sh, sw, Hm, Wm = _phase_shape(spec)
    for h in range(H):
        a, m = h % sh, h // sh
        for b in range(sw):
            o = base + ((a * sw + b) * Hm + m) * Wm  # phase (a, b), row m
            src = plane[h * W + b:(h + 1) * W:sw]  # (ceil((W - b) / sw),): slices, so that
            dst = phases[o:o + src.shape[0]]  # the loop's indices are known >= 0
            for n in range(src.shape[0]):
                dst[n] = src[n]


@njit(cache=True)
def _join_phases(phases, base, plane, spec):
    """The inverse of :func:`_split_phases`: ``plane[a::sh, b::sw] = phase (a, b)``."""
    H, W = spec.H, spec.W
    sh, sw, Hm, Wm = _phase_shape(spec)
    for h in range(H):
        a, m = h % sh, h // sh
        for b in range(sw):
            o = base + ((a * sw + b) * Hm + m) * Wm
            dst = plane[h * W + b:(h + 1) * W:sw]  # (ceil((W - b) / sw),)
            src = phases[o:o + dst.shape[0]]
            for n in range(dst.shape[0]):
                dst[n] = src[n]


@njit(cache=True, fastmath=FASTMATH)
def _col2im_phases(dcols, y, spec, n0, c0, ph_buf):
    """:func:`~.conv_gemm._col2im` of the planes ``c0:c1`` only, summed phase by phase.

    dcols : ((c1 - c0)*kH*kW, samples*H_out*W_out), row ``((c - c0)*kH + i)*kW + j`` the
    stamps of tap ``(i, j)`` on plane ``c`` -> ``y[n0:n0 + samples, c0:c1]`` (N, C, H, W),
    overwritten; ``c1`` and ``samples`` are read off ``dcols``' shape. ``ph_buf`` :
    (samples*stride_h*stride_w*Hm*Wm,) scratch (:func:`_phase_shape`).

    With stride ``s`` the taps of one output phase ``(a, b)`` (rows ``a::s``, columns
    ``b::s``) are those with ``(i*dil - pad) % s == a`` (:func:`_tap_phase`): a phase is a
    stride-1 sum of its taps' shifted stamps, so every add is a contiguous run (vectorised)
    where ``_col2im`` adds into every ``s``-th element of a row; a tap that covers whole
    phase rows adds all its rows as one run. Loop order: plane, tap, sample, so ``dcols`` is
    read row by row (``_col2im`` jumps between rows ``samples*P`` apart, often 4 KiB: one
    cache set). The phases of every sample are then joined into the planes
    (:func:`_join_phases`), each output element written once.
    """
    kh, kw, Ho, Wo = spec.kH, spec.kW, spec.H_out, spec.W_out
    sh, sw, Hm, Wm = _phase_shape(spec)
    L = sh * sw * Hm * Wm  # one sample's phases
    P = Ho * Wo
    c1, samples = c0 + dcols.shape[0] // (kh * kw), dcols.shape[1] // P
    y3 = y.reshape(y.shape[0], y.shape[1], spec.H * spec.W)  # (N, C, H*W)
    for c in range(c0, c1):
        for t in range(samples * L):
            ph_buf[t] = 0
        for i in range(kh):
            for j in range(kw):
                oh_lo, oh_hi, ow_lo, ow_hi, start, whole_rows = _tap_in_phases(spec, i, j)
                if ow_hi <= ow_lo or oh_hi <= oh_lo:
                    continue
                src = dcols[((c - c0) * kh + i) * kw + j]  # (samples*P,)
                for s in range(samples):
                    d0 = s * L + start  # phase row
                    s0 = s * P + oh_lo * Wo
                    if whole_rows:  # rows oh_lo:oh_hi of the stamp, one contiguous run
                        _add_run(ph_buf, d0, src, s0, (oh_hi - oh_lo) * Wo)
                        continue
                    for oh in range(oh_hi - oh_lo):
                        _add_run(ph_buf, d0 + oh * Wm + ow_lo, src, s0 + oh * Wo + ow_lo,
                                 ow_hi - ow_lo)
        for s in range(samples):
            _join_phases(ph_buf, s * L, y3[n0 + s, c], spec)


@njit(cache=True)
def _im2col_phases(x, cols, spec, n0, c0, ph_buf):
    """:func:`~.conv_gemm._im2col` of the planes ``c0:c1`` only, read phase by phase.

    x : (N, C, H, W) -> cols : ((c1 - c0)*kH*kW, samples*H_out*W_out), row ``((c - c0)*kH +
    i)*kW + j``, written in place (``c1``, ``samples`` from ``cols``' shape, samples from
    ``n0`` on); ``ph_buf`` as :func:`_col2im_phases` takes it. Each
    plane is first split into its phases (:func:`_split_phases`, one strided read of each
    element); then every run a tap copies is a contiguous piece of one phase (whole phase
    rows in one run where the tap covers them), where ``_im2col`` reads every
    ``stride``-th element of a plane row; ``cols`` is written row after row.
    """
    kh, kw, Ho, Wo = spec.kH, spec.kW, spec.H_out, spec.W_out
    sh, sw, Hm, Wm = _phase_shape(spec)
    L = sh * sw * Hm * Wm
    P = Ho * Wo
    c1, samples = c0 + cols.shape[0] // (kh * kw), cols.shape[1] // P
    x3 = x.reshape(x.shape[0], x.shape[1], spec.H * spec.W)  # (N, C, H*W)
    for c in range(c0, c1):
        for s in range(samples):
            _split_phases(x3[n0 + s, c], ph_buf, s * L, spec)
        for i in range(kh):
            for j in range(kw):
                oh_lo, oh_hi, ow_lo, ow_hi, start, whole_rows = _tap_in_phases(spec, i, j)
                dst = cols[((c - c0) * kh + i) * kw + j]  # (samples*P,)
                if ow_hi <= ow_lo or oh_hi <= oh_lo:
                    _zero_run(dst, 0, samples * P)
                    continue
                for s in range(samples):
                    base = s * P
                    src0 = s * L + start  # phase row
                    _zero_run(dst, base, oh_lo * Wo)  # rows in the padding
                    _zero_run(dst, base + oh_hi * Wo, P - oh_hi * Wo)
                    if whole_rows:
                        _copy_run(dst, base + oh_lo * Wo, ph_buf, src0, (oh_hi - oh_lo) * Wo)
                        continue
                    for oh in range(oh_hi - oh_lo):
                        d0 = base + (oh_lo + oh) * Wo
                        _zero_run(dst, d0, ow_lo)
                        _copy_run(dst, d0 + ow_lo, ph_buf, src0 + oh * Wm + ow_lo,
                                  ow_hi - ow_lo)
                        _zero_run(dst, d0 + ow_hi, Wo - ow_hi)


@njit(parallel=True, cache=True)
def _weight_by_rows(weight, groups):
    """The weight as each group's ``W_g.T``, rows contiguous: (groups, K, C_out/g).

    weight : (C_out, C_in // groups, kH, kW) in the conv's names, ``K = C_in/g*kH*kW``.
    Row ``(c*kH + i)*kW + j`` of block ``g`` holds the weights of input plane ``c`` and tap
    ``(i, j)`` of group ``g``, so a block of input planes is a block of contiguous rows.
    Copied in 32 x 32 tiles, parallel over row tiles (NumPy's ``ascontiguousarray`` of the
    transposed view reads a column at a time: 1.1 against 0.4 ms on the DCGAN layer's 2 MiB).
    """
    C_out, C_in_g, kh, kw = weight.shape
    C_out_g, K, B = C_out // groups, C_in_g * kh * kw, 32
    w3 = weight.reshape(groups, C_out_g, K)  # (g, C_out/g, K)
    out = np.empty((groups, K, C_out_g), weight.dtype)  # (g, K, C_out/g)
    for g in range(groups):
        for kb in prange((K + B - 1) // B):
            for m0 in range(0, C_out_g, B):
                for k in range(kb * B, min(K, kb * B + B)):
                    for m in range(m0, min(C_out_g, m0 + B)):
                        out[g, k, m] = w3[g, m, k]
    return out


@njit(parallel=True, cache=True)
def _conv_transpose2d_subpixel(x, w_rows, spec, plan, block):
    """The forward of :func:`_conv_transpose2d_gemm`, a block of planes at a time.

    x : (N, C_out, H_out, W_out) in the conv's names, w_rows : (groups, K, C_out/g) from
    :func:`_weight_by_rows` -> y : (N, C_in, H, W). Per lane, chunk, group and block of
    ``block`` output planes ``c0:c1``: ``dcols (block*kH*kW, s*P) = w_rows[g, c0*kH*kW:c1*kH*kW]
    @ x_g`` (the GEMM of the whole group cut by rows), then :func:`_col2im_phases` sums it
    onto those planes while it is still in the core's L2 cache.
    """
    N, C_out, Ho, Wo = x.shape
    groups, K, C_out_g = w_rows.shape
    C_in, H, W, kh, kw = spec.C_in, spec.H, spec.W, spec.kH, spec.kW
    lanes, chunks = plan.lanes, plan.chunks
    C_in_g = C_in // groups
    T = kh * kw  # taps: rows of dcols per plane
    P = Ho * Wo
    S = -(-N // chunks)  # the largest chunk
    sh, sw, Hm, Wm = _phase_shape(spec)
    x3 = x.reshape(N, C_out, P)  # (N, C_out, Ho*Wo)
    y = np.empty((N, C_in, H, W), x.dtype)
    for lane in prange(lanes):
        dcols_buf = np.empty(min(block, C_in_g) * T * S * P, x.dtype)
        x_buf = np.empty(0 if S == 1 else C_out * S * P, x.dtype)
        ph_buf = np.empty(S * sh * sw * Hm * Wm, x.dtype)
        for k in range(lane, chunks, lanes):
            n0 = k * N // chunks
            s = (k + 1) * N // chunks - n0
            x_chunk = _gather_chunk(x3, x_buf, n0, s, 0, C_out)  # (C_out, s*P)
            for g in range(groups):
                x_g = x_chunk[g * C_out_g:(g + 1) * C_out_g]  # (C_out/g, s*P)
                for c0 in range(0, C_in_g, block):
                    c1 = min(C_in_g, c0 + block)
                    dcols = dcols_buf[:(c1 - c0) * T * s * P].reshape((c1 - c0) * T, s * P)
                    np.dot(w_rows[g, c0 * T:c1 * T], x_g, dcols)  # ((c1-c0)*T, s*P)
                    _col2im_phases(dcols, y, spec, n0, g * C_in_g + c0, ph_buf)
    return y


SUBPIXEL_BLOCK = 32
"""Output planes per GEMM and col2im of :func:`_conv_transpose2d_subpixel` (module header)."""


def subpixel_wins(spec) -> bool:
    """Whether the sub-pixel kernels replace the GEMM ones for this problem (forward and backward).

    ``spec`` the conv's :class:`kernels.common.ConvSpec`, as the kernels take it. True when
    some axis has a stride above 1 and the stamps of neighbouring input pixels overlap on it
    (``(k - 1)*dilation + 1 > stride``), so that a phase sums more than one tap. With no
    overlap (U-Net's 2x2, stride 2) each phase is one tap's stamp and splitting and joining
    the phases is pure overhead. ms, float32, 2 threads, 2-core AMD EPYC (AVX-512,
    OPENBLAS_CORETYPE=Haswell), the kernels alone on ``conv_plan``'s work split, min of 15
    rounds that call each contender once in turn, two runs (``phases bwd`` is
    :func:`_conv_transpose2d_backward_gemm` with ``phases=1``; medians 2-14% above)::

        layer                               gemm fwd   sub-pixel fwd   gemm bwd   phases bwd
        DCGAN 256->128 4x4 s2 p1 8x8 @64    36.4 35.5  30.1 28.2       60.5 59.8  55.9 57.2
        U-Net 256->128 2x2 s2 32x32 @8      11.8 12.7  13.5 14.8       22.6 24.5  23.9 25.6
    """
    over_h = (spec.kH - 1) * spec.dil_h + 1 > spec.stride_h
    over_w = (spec.kW - 1) * spec.dil_w + 1 > spec.stride_w
    strided = spec.stride_h > 1 or spec.stride_w > 1
    return strided and (over_h or over_w)
