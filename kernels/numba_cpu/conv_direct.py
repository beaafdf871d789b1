"""The ``"direct"`` conv path: stride 1, a small window per output (``C_in/g*kH*kW``), no GEMM.

Forward (:func:`_conv2d_direct`), grad_x (:func:`_conv2d_direct_grad_x`) and grad_weight
(:func:`_conv2d_direct_grad_weight`) compute what ``conv2d`` and ``conv2d_backward`` of
:mod:`kernels.naive` compute, with the window loop turned inside out: one long AXPY (or dot)
per tap over a whole zero-padded plane, read at the input's row pitch ("wide rows"). No
im2col: where the GEMM path copies every input pixel ``kH*kW`` times into columns and hands
BLAS a matrix with a short inner dimension, this path reads the input in place, with the
weight of each tap broadcast over a whole row of outputs held in one L1-resident buffer.
``conv_plan`` in :mod:`kernels.numba_cpu` decides when this path runs (package header, item
3): one input channel (LeNet's first layer), or a small window in total (``C_in/g*kH*kW <=
DIRECT_MAX_K``: LeNet's second layer, 6x5x5 = 150; the MNIST CNN's, 10x5x5 = 250).

Serial twins. Each kernel is compiled twice: ``parallel=True`` (the ``prange`` loops split
across threads) and, from the same source, a serial twin in which ``prange`` runs as
``range`` (:func:`_serial_twin`). Waking Numba's thread pool costs tens of microseconds when
its threads have gone to sleep (as they do between the layers of a training step, while NumPy
works): 51 us median vs 5.5 us for the serial twin of a 16-element kernel called after 1 ms of
NumPy work (2-core AMD EPYC, threading layer omp). Below ``SERIAL_MAX_MACS`` multiply-adds a
call runs the serial twins (:func:`direct_kernels`); the table and the command that measured
it are beside the constant.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange

from ._loops import FASTMATH, _dot, _serial_twin, njit

ROWS = 4
"""Planes updated together per tap by :func:`_axpy_rows`: output channels in the forward,
input channels in grad_x. One load of the input feeds four multiply-adds, and the loop's
setup is paid once per four planes: on LeNet's second layer (batch 64, float32, one
thread, serial twins, min of 30) the forward took 2.8 ms one plane at a time, 1.05 ms four
at a time (eight: 0.83 ms; four wastes less on the 6- and 10-channel layers' grad_x)."""

FUSED_TAPS = 5
"""Taps of a kernel row that one pass of the direct kernels handles together
(:func:`_axpy_rows_5taps`, :func:`_dots_2rows_5taps`, written out for five): a row of at
least this many taps gets the fused passes, a narrower one single taps only."""

GW_ROWS = 2
"""Output channels whose weights :func:`_conv2d_direct_grad_weight` sums together, five taps
at a time (:func:`_dots_2rows_5taps`)."""


@njit(cache=True, fastmath=FASTMATH)
def _axpy_rows(rows, a, x, at):
    """``rows[b, at:at + n] += a[b] * x`` for ``b < ROWS``: four AXPYs sharing each load of
    ``x``.

    rows : (ROWS, P), a : (ROWS,), x : (n,), ``at + n <= P``. The four rows are written out
    by hand so that LLVM vectorises along ``n`` with the four weights in registers (a loop
    over ``b`` inside the loop over ``k`` ran 3x slower: it vectorised the short loop
    instead).
    """
    n = x.shape[0]
    r0, r1, r2, r3 = rows[0, at:at + n], rows[1, at:at + n], rows[2, at:at + n], rows[3, at:at + n]
    a0, a1, a2, a3 = a[0], a[1], a[2], a[3]
    for k in range(n):
        v = x[k]
        r0[k] += a0 * v
        r1[k] += a1 * v
        r2[k] += a2 * v
        r3[k] += a3 * v


@njit(cache=True, fastmath=FASTMATH)
def _axpy_rows_5taps(rows, a, x, dw, live, at):
    """``rows[b, at + k] += sum(a[b, t] * x[k + t*dw] for t < 5)`` for ``b < live``: five taps of
    a kernel row in one pass per pair of rows.

    rows : (ROWS, P), a : (ROWS, 5), x : (n + 4*dw,), ``live <= ROWS`` the rows in use, and
    the sums go to ``rows[b, at:at + n]`` (``at + n <= P``). Five neighbouring taps of a
    kernel row read the input shifted by ``dw`` from tap to tap, so one pass can load the
    five shifted inputs and add all five products to each output: the rows are loaded and
    stored once per five taps instead of once per tap
    (:func:`_axpy_rows`), and their stores, not the multiply-adds, were what bounded the
    one-tap loop (one 256-bit store per cycle on the AVX2 EPYC, four per four multiply-adds).
    Two rows per pass: their ten weights and the five inputs fit AVX2's sixteen vector
    registers, where four rows' twenty weights spilled (21 of the loop's 34 memory operands
    per eight outputs came from the stack); and a block's dead rows (the last block of 6 or
    10 channels) cost nothing. Forward of LeNet's second layer, the kernel alone, 2 threads,
    medians of 40, AVX2 EPYC: 0.94-0.95 ms against 1.00-1.02 ms four rows per pass (the
    machine was slow that hour: PyTorch 0.58 ms). Written out by hand, as
    :func:`_axpy_rows` is.
    """
    x0, x1, x2, x3, x4 = x[0:], x[dw:], x[2 * dw:], x[3 * dw:], x[4 * dw:]  # tap t's input
    n = x.shape[0] - 4 * dw
    for b in range(0, live, 2):  # rows b and b + 1 (ROWS is even)
        r0, r1 = rows[b, at:at + n], rows[b + 1, at:at + n]
        a00, a01, a02, a03, a04 = a[b, 0], a[b, 1], a[b, 2], a[b, 3], a[b, 4]
        a10, a11, a12, a13, a14 = a[b + 1, 0], a[b + 1, 1], a[b + 1, 2], a[b + 1, 3], a[b + 1, 4]
        for k in range(r0.shape[0]):
            v0, v1, v2, v3, v4 = x0[k], x1[k], x2[k], x3[k], x4[k]
            r0[k] += a00 * v0 + a01 * v1 + a02 * v2 + a03 * v3 + a04 * v4
            r1[k] += a10 * v0 + a11 * v1 + a12 * v2 + a13 * v3 + a14 * v4


@njit(cache=True, fastmath=FASTMATH)
def _dots_2rows_5taps(g0, g1, x, dw, out):
    """``out[b, t] += g_b . x[t*dw:t*dw + L]`` for ``b < 2``, ``t < 5``: ten dot products
    in one pass.

    g0, g1 : (L,) (two 1-D rows: a 2-D slice of the margined rows would not be contiguous,
    and Numba does not vectorise its rows), x : (L + 4*dw,), out : (2, 5). grad_weight's
    counterpart of :func:`_axpy_rows_5taps`: five taps of a kernel row for two output
    channels, each load of ``x`` and of ``g_b`` feeding several multiply-adds, ten sums in
    registers. Two channels, not four: twenty sums and nine loaded vectors do not fit AVX2's
    sixteen registers, and on the AVX2 EPYC the four-channel version spilled and ran no
    faster than two (:func:`_conv2d_direct_grad_weight` has the numbers).
    """
    x0, x1, x2, x3, x4 = x[0:], x[dw:], x[2 * dw:], x[3 * dw:], x[4 * dw:]  # tap t's input
    s00 = s01 = s02 = s03 = s04 = s10 = s11 = s12 = s13 = s14 = x.dtype.type(0)
    for k in range(g0.shape[0]):
        v0, v1, v2, v3, v4 = x0[k], x1[k], x2[k], x3[k], x4[k]
        a, b = g0[k], g1[k]
        s00 += a * v0
        s01 += a * v1
        s02 += a * v2
        s03 += a * v3
        s04 += a * v4
        s10 += b * v0
        s11 += b * v1
        s12 += b * v2
        s13 += b * v3
        s14 += b * v4
    out[0, 0] += s00
    out[0, 1] += s01
    out[0, 2] += s02
    out[0, 3] += s03
    out[0, 4] += s04
    out[1, 0] += s10
    out[1, 1] += s11
    out[1, 2] += s12
    out[1, 3] += s13
    out[1, 4] += s14


CHUNK_BYTES = 24 * 2**10
"""Bound on a work item's output rows (``ROWS`` channels by a chunk of samples, at the padded
plane's size): they are read and written by every pass, so they should stay in L1 (32 KiB on
both machine kinds). LeNet's second layer (196-element padded planes): 7 samples a chunk."""


def chunk_samples(spec, itemsize: int) -> int:
    """Samples per chunk of the direct path's batch layout (:func:`_batch_planes`): as many as
    :data:`CHUNK_BYTES` holds (at least one).
    """
    return max(1, CHUNK_BYTES // (ROWS * spec.H_pad * spec.W_pad * itemsize))


@njit(parallel=True, cache=True)
def _batch_planes(x, spec, S):
    """The zero-padded input planes, ``S`` samples side by side: (N, C, H, W) -> (C, chunks*Q
    + tail).

    Chunk ``k`` (samples ``k*S .. k*S + S - 1``, ``chunks = ceil(N / S)``) of channel ``c`` is
    one ``(H_pad, S*W_pad)`` plane: its row ``r`` is row ``r`` of each sample's padded plane,
    end to end. So ``out[c, k*Q + (h + pad_h)*R + s*Wp + w + pad_w] = x[k*S + s, c, h, w]``
    (``Wp = spec.W_pad``, ``R = S*Wp`` the row pitch, ``Q = H_pad*R``), zeros in the padding,
    in a last chunk's missing samples, and in the ``tail = (kH - 1)*dil_h*R + (kW - 1)*dil_w``
    elements after the last chunk, so that the last tap's run stays inside.

    Side by side, not one after the other: a wide output row (:func:`_conv2d_direct`) then
    has ``Wp - Wo`` junk columns per sample and row, but no junk rows between samples.
    """
    N, C, H, W = x.shape
    Wp, ph, pw = spec.W_pad, spec.pad_h, spec.pad_w
    R = S * Wp  # a chunk's row pitch
    Q = spec.H_pad * R  # a chunk's plane
    tail = (spec.kH - 1) * spec.dil_h * R + (spec.kW - 1) * spec.dil_w
    out = np.zeros((C, -(-N // S) * Q + tail), x.dtype)
    for item in prange(C * N):
        c, n = item // N, item % N
        for h in range(H):
            start = (n // S) * Q + (h + ph) * R + (n % S) * Wp + pw
            out[c, start:start + W] = x[n, c, h]
    return out


@njit(parallel=True, cache=True)
def _batch_grad(grad_y, spec, S):
    """The gradient planes in :func:`_batch_planes`' layout, between two margins of zeros:
    (N, C, Ho, Wo) -> (C, m + chunks*Q + m), ``m = (FUSED_TAPS - 1)*spec.dil_w``.

    ``out[c, m + k*Q + oh*R + s*Wp + ow] = grad_y[k*S + s, c, oh, ow]``, zeros in the ``Wp -
    Wo`` junk columns of each sample and the ``H_pad - Ho`` junk rows of each chunk. Output
    ``(oh, ow)`` of a sample sits where its window's first input sits in ``x``'s layout, so
    :func:`_conv2d_direct_grad_weight` takes each weight's sum over the batch as ONE dot, and
    :func:`_conv2d_direct_grad_x` scatters a chunk with one pass per tap (reading it at five
    shifts ``dil_w`` apart: the margins).
    """
    N, C, Ho, Wo = grad_y.shape
    Wp = spec.W_pad
    R = S * Wp
    Q = spec.H_pad * R
    m = (FUSED_TAPS - 1) * spec.dil_w
    out = np.zeros((C, m + -(-N // S) * Q + m), grad_y.dtype)
    for item in prange(C * N):
        c, n = item // N, item % N
        for oh in range(Ho):
            start = m + (n // S) * Q + oh * R + (n % S) * Wp
            out[c, start:start + Wo] = grad_y[n, c, oh]
    return out


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _conv2d_direct(x_batch, weight, bias, spec, S):
    """Direct stride-1 convolution, parallel over (channel block, chunk of samples).

    x_batch : (C_in, chunks*Q + tail), the zero-padded input planes ``S`` samples side by
    side (:func:`_batch_planes`: row pitch ``R = S*Wp``, ``Wp = spec.W_pad``, ``Q =
    spec.H_pad*R``), weight : (C_out, C_in // groups, kH, kW), bias : (C_out,) -> y : (N,
    C_out, Ho, Wo) (``Ho = spec.H_out``, ``Wo = spec.W_out``; ``spec`` a
    :class:`kernels.common.ConvSpec` with stride 1)

    The "wide row" trick: with stride 1, output ``(oh, ow)`` of tap ``(i, j)`` reads padded
    input ``(oh + i*dh, ow + j*dw)`` (``dh = spec.dil_h``, ``dw = spec.dil_w``), i.e. flat
    index ``p + off`` with ``p = oh*R + ow`` and ``off = i*dh*R + j*dw``. So outputs laid
    out with the *input's* row pitch (``Wp - Wo`` junk columns per sample and row) are, per
    tap, one long AXPY: ``wide[0:L] += w * chunk[off:off + L]``, ``L = (Ho - 1)*R + (s -
    1)*Wp + Wo`` for a chunk of ``s`` samples. One vectorised loop over a chunk's outputs per
    tap instead of ``Ho`` short ones per sample; the junk columns are dropped when the outputs
    are copied out. LeNet's first layer (1 input channel, 6 outputs) would give a GEMM with
    K = 25 and M = 6, too thin for BLAS to shine.

    A work item is a chunk of samples and ``ROWS`` output channels of one group: per tap the
    four weights go to registers and one pass over the input updates four wide rows
    (:func:`_axpy_rows`; past the group's last channel the weights are 0 and the row is not
    copied out). Each output's sum runs over the taps in the same order as one plane at a
    time would, so the result is the same to the bit.

    A kernel row's taps go five at a time while five are left (:func:`_axpy_rows_5taps`: the
    5x5 layers of LeNet and the MNIST CNN take one pass per kernel row), the rest one at a
    time. A pass reads ``L + 4*dw`` from its first tap's offset, which ends inside the chunk
    or in ``x_batch``'s tail. Forward on the AVX2 EPYC (Zen 3), float32, batch 64, 2 threads,
    medians of three interleaved rounds: LeNet's second layer 1.59-1.80 -> 0.99-1.16 ms, the
    MNIST CNN's 3.27-3.31 -> 1.75-1.98 ms, LeNet's first 0.92-0.97 -> 0.59-0.70 ms (PyTorch
    0.53, 1.01, 0.73-0.80). A pass over one sample (17 vector iterations on LeNet's second
    layer) spent about as long in its set-up (the loop's aliasing checks, the weights'
    broadcasts) as in its loop; chunks pay it once per chunk: medians (mins) of 40
    interleaved calls, LeNet's second layer 1.03-1.04 (0.88-0.89) -> 0.86-0.91 (0.79) ms, the
    MNIST CNN's 1.93-1.96 (1.23-1.69) -> 1.22-1.24 (1.08-1.15) ms (PyTorch 0.80-0.87,
    1.24-1.33), with the samples one after the other (``H_pad - Ho`` junk rows each: half the
    multiply-adds of LeNet's second layer were junk); side by side, a quarter are.
    """
    C_out, C_in_g, kh, kw = weight.shape
    N, dh, dw, Ho, Wo, Wp = spec.N, spec.dil_h, spec.dil_w, spec.H_out, spec.W_out, spec.W_pad
    R = S * Wp  # a chunk's row pitch
    Q = spec.H_pad * R  # a chunk's plane
    G = spec.groups
    C_out_g = C_out // G
    blocks = -(-C_out_g // ROWS)  # blocks of ROWS output channels per group
    chunks = -(-N // S)
    y = np.empty((N, C_out, Ho, Wo), x_batch.dtype)
    for item in prange(G * blocks * chunks):
        rest, k = item // chunks, item % chunks
        g = rest // blocks
        co0 = g * C_out_g + (rest % blocks) * ROWS  # the block's first output channel
        rows = min(ROWS, (g + 1) * C_out_g - co0)
        s = min(S, N - k * S)  # samples in this chunk
        L = (Ho - 1) * R + (s - 1) * Wp + Wo  # the chunk's outputs, at row pitch R
        wide = np.zeros((ROWS, L), x_batch.dtype)  # ROWS output rows of the chunk
        a = np.zeros(ROWS, x_batch.dtype)  # their weights of one tap
        a5 = np.zeros((ROWS, 5), x_batch.dtype)  # their weights of five taps
        for cl in range(C_in_g):
            src = x_batch[g * C_in_g + cl, k * Q:]  # the chunk's plane, and what follows
            for i in range(kh):
                j = 0
                while j < kw:
                    off = i * dh * R + j * dw
                    if j + FUSED_TAPS <= kw:  # taps j..j+4 of kernel row i in one pass
                        for b in range(rows):
                            for t in range(5):
                                a5[b, t] = weight[co0 + b, cl, i, j + t]
                        _axpy_rows_5taps(wide, a5, src[off:off + L + 4 * dw], dw, rows, 0)
                        j += FUSED_TAPS
                    else:  # the row's last taps, one at a time
                        for b in range(rows):
                            a[b] = weight[co0 + b, cl, i, j]
                        _axpy_rows(wide, a, src[off:off + L], 0)
                        j += 1
        for sn in range(s):
            for b in range(rows):
                for oh in range(Ho):
                    for ow in range(Wo):
                        y[k * S + sn, co0 + b, oh, ow] = (wide[b, oh * R + sn * Wp + ow]
                                                          + bias[co0 + b])
    return y


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _conv2d_direct_grad_x(gy_batch, weight, spec, S):
    """grad_x of the direct path, parallel over (input-channel block, chunk of samples).

    gy_batch : (C_out, m + chunks*Q + m) (:func:`_batch_grad`), weight : (C_out, C_in //
    groups, kH, kW) -> grad_x : (N, C_in, H, W) (``spec`` a :class:`kernels.common.ConvSpec`
    with stride 1, ``S`` samples per chunk as in :func:`_batch_planes`)

    The adjoint of the forward's AXPYs: every tap sends its outputs' gradients back to the
    inputs it read, ``gxp[off:off + L] += w * gy_wide`` with ``off = i*dil_h*R + j*dil_w``
    (the junk rows and columns carry zeros, so they add nothing while ``w`` is finite),
    summed over the group's output channels; then the padding is cropped off. As in the
    forward, a work item is a chunk of samples (their padded planes side by side in ``gxp``)
    and ``ROWS`` input channels of one group, updated together from each gradient row; a
    kernel row's taps go five at a time while five are left (:func:`_axpy_rows_5taps`): the
    pass for taps ``j..j+4`` updates the ``L + 4*dil_w`` accumulators from tap ``j``'s
    offset, reading the gradient at five shifts (tap ``j + 4 - t`` at ``t*dil_w`` before it:
    the zeros of a margin, of a junk row or of a sample's junk columns). A work item owns its
    input planes, so the scatter-add has no races.

    One tap per pass, the accumulator slides by one element from tap to tap, so each vector
    load overlaps the stores of the tap before, which the CPU cannot forward: on LeNet's
    second layer (batch 64, float32, one thread, one plane at a time, min of 40) that took
    5.1 ms against 2.8 ms for a gather that kept the accumulator (the whole padded plane) in
    place and slid the gradient row under it instead. Five taps per pass slide it five
    elements at a time and touch only the outputs the taps reach: against that gather with
    the same five-tap passes, 0.94-0.95 against 1.08-1.16 ms on LeNet's second layer, 1.44
    against 1.61-1.70 ms on the MNIST CNN's (the kernel alone, 2 threads, medians of 60
    interleaved calls, AVX2 EPYC). One sample per work item then, a chunk now (the forward's
    reason, :func:`_conv2d_direct`).
    """
    _, C_in_g, kh, kw = weight.shape
    N, H, W, ph, pw = spec.N, spec.H, spec.W, spec.pad_h, spec.pad_w
    dh, dw, Wp = spec.dil_h, spec.dil_w, spec.W_pad
    R = S * Wp  # a chunk's row pitch
    Q = spec.H_pad * R  # a chunk's plane
    G = spec.groups
    C_out_g = gy_batch.shape[0] // G
    blocks = -(-C_in_g // ROWS)  # blocks of ROWS input channels per group
    chunks = -(-N // S)
    m = (FUSED_TAPS - 1) * dw  # the margin
    grad_x = np.empty((N, spec.C_in, H, W), gy_batch.dtype)
    for item in prange(G * blocks * chunks):
        rest, k = item // chunks, item % chunks
        g = rest // blocks
        cl0 = (rest % blocks) * ROWS  # the block's first input channel, within the group
        rows = min(ROWS, C_in_g - cl0)
        s = min(S, N - k * S)  # samples in this chunk
        L = (spec.H_out - 1) * R + (s - 1) * Wp + spec.W_out  # the chunk's gradients
        gxp = np.zeros((ROWS, Q), gy_batch.dtype)  # the chunk's padded planes' gradients
        a = np.zeros(ROWS, gy_batch.dtype)  # their weights of one tap
        a5 = np.zeros((ROWS, 5), gy_batch.dtype)  # their weights of five taps
        for co in range(g * C_out_g, (g + 1) * C_out_g):
            row = gy_batch[co, k * Q:k * Q + m + L + m]  # the chunk, between margins
            for i in range(kh):
                j = 0
                while j < kw:
                    off = i * dh * R + j * dw  # tap (i, j)'s first input in the chunk
                    if j + FUSED_TAPS <= kw:  # taps j..j+4: tap j + 4 - t reads row[t*dw:]
                        for b in range(rows):
                            for t in range(5):
                                a5[b, t] = weight[co, cl0 + b, i, j + 4 - t]
                        _axpy_rows_5taps(gxp, a5, row, dw, rows, off)
                        j += FUSED_TAPS
                    else:  # the row's last taps, one at a time
                        for b in range(rows):
                            a[b] = weight[co, cl0 + b, i, j]
                        _axpy_rows(gxp, a, row[m:m + L], off)
                        j += 1
        for sn in range(s):
            for b in range(rows):
                c = g * C_in_g + cl0 + b
                for h in range(H):
                    for w in range(W):
                        grad_x[k * S + sn, c, h, w] = gxp[b, (h + ph) * R + sn * Wp + w + pw]
    return grad_x


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _conv2d_direct_grad_weight(gy_batch, x_batch, spec, S):
    """grad_weight of the direct path, parallel over (output-channel pair, input channel,
    kernel row).

    gy_batch : (C_out, m + T + m) (:func:`_batch_grad`), x_batch : (C_in, T + tail)
    (:func:`_batch_planes`), both with ``S`` samples per chunk (``T = chunks*Q``) -> (C_out,
    C_in // groups, kH, kW) (``spec`` a :class:`kernels.common.ConvSpec` with stride 1)

    ``grad_w[co, cl, i, j] = gy_batch[co, m:m + T] . x_batch[c, off:off + T]``, ``off =
    i*dil_h*R + j*dil_w`` (``R`` the layout's row pitch): in both operands every sample sits
    at the same place, so ONE dot over the whole batch sums every sample's products (the
    junk rows and columns are zero in ``gy_batch``, and ``0 * x`` is 0 for finite ``x``:
    :func:`conv2d_backward` takes this path only then). A work item owns the weights of two
    output channels of one group (``GW_ROWS``), one input channel and one kernel row, so
    each sum has one owner and no reduction between threads; it computes a kernel row's taps
    five at a time for both channels in one pass (:func:`_dots_2rows_5taps`), the rest one
    dot at a time.

    An earlier version took one short dot per sample (each plane at row pitch ``Wp``, ``(Ho -
    1)*Wp + Wo`` long, no junk rows): 64 calls per weight on LeNet's second layer, each
    paying its loop's set-up and the horizontal sum of ten vector accumulators, so the
    passes ran at about half their loop's speed. One dot over the batch, the samples one
    after the other (196 elements per sample against 136 on LeNet's second layer, 144
    against 92 on the MNIST CNN's), won even so: with the layout copies, float32, batch 64,
    2 threads, medians / mins of 40 interleaved calls, AVX2 EPYC (Zen 3): LeNet's second
    layer 1.14/0.98 -> 0.85/0.68 ms, the MNIST CNN's 2.39/2.09 -> 1.38/1.01 ms; side by side
    there are fewer junk elements still (140 and 96). One dot per weight and sample, as the
    first version did, loads ``x`` and ``gy`` once per multiply-add (2.0-2.1 ms on LeNet's
    second layer; four channels by five taps spilled).
    """
    C_out, C_in = gy_batch.shape[0], x_batch.shape[0]
    kh, kw, dh, dw = spec.kH, spec.kW, spec.dil_h, spec.dil_w
    m = (FUSED_TAPS - 1) * dw  # gy_batch's margin
    T = gy_batch.shape[1] - 2 * m  # the batch, all chunks
    R = S * spec.W_pad  # the layout's row pitch
    G = spec.groups
    C_in_g, C_out_g = C_in // G, C_out // G
    pairs = -(-C_out_g // GW_ROWS)  # output-channel pairs per group
    grad_w = np.empty((C_out, C_in_g, kh, kw), gy_batch.dtype)
    for item in prange(G * pairs * C_in_g * kh):
        g, rest = item // (pairs * C_in_g * kh), item % (pairs * C_in_g * kh)
        co0 = g * C_out_g + (rest // (C_in_g * kh)) * GW_ROWS  # the pair's first channel
        cl, i = (rest // kh) % C_in_g, rest % kh
        rows = min(GW_ROWS, (g + 1) * C_out_g - co0)
        src = x_batch[g * C_in_g + cl]  # (T + tail,)
        acc = np.zeros((GW_ROWS, kw), gy_batch.dtype)  # the pair's weights of kernel row i
        j = 0
        while j < kw:
            off = i * dh * R + j * dw
            if rows == GW_ROWS and j + FUSED_TAPS <= kw:  # taps j..j+4, both channels
                _dots_2rows_5taps(gy_batch[co0, m:m + T], gy_batch[co0 + 1, m:m + T],
                                  src[off:off + T + 4 * dw], dw, acc[:, j:j + FUSED_TAPS])
                j += FUSED_TAPS
            else:  # a row's last taps, or a group's last odd channel: one dot each
                for b in range(rows):
                    acc[b, j] = _dot(gy_batch[co0 + b, m:m + T], src[off:off + T])
                j += 1
        for b in range(rows):
            for j in range(kw):
                grad_w[co0 + b, cl, i, j] = acc[b, j]
    return grad_w


# --------------------------------------------------------------------------- serial twins


_conv2d_direct_serial = _serial_twin(_conv2d_direct, "_conv2d_direct_serial")
_batch_grad_serial = _serial_twin(_batch_grad, "_batch_grad_serial")
_batch_planes_serial = _serial_twin(_batch_planes, "_batch_planes_serial")
_conv2d_direct_grad_weight_serial = _serial_twin(_conv2d_direct_grad_weight,
                                                 "_conv2d_direct_grad_weight_serial")
_conv2d_direct_grad_x_serial = _serial_twin(_conv2d_direct_grad_x, "_conv2d_direct_grad_x_serial")


class DirectKernels(NamedTuple):
    """The direct path's kernels, all parallel or all serial (:func:`direct_kernels`)."""

    forward: object  # :func:`_conv2d_direct`
    batch_grad: object  # (N, C, Ho, Wo) -> (C, m + chunks*Q + m), :func:`_batch_grad`
    batch_planes: object  # (N, C, H, W) -> (C, chunks*Q + tail), :func:`_batch_planes`
    grad_weight: object  # :func:`_conv2d_direct_grad_weight`
    grad_x: object  # :func:`_conv2d_direct_grad_x`


PARALLEL = DirectKernels(_conv2d_direct, _batch_grad, _batch_planes,
                         _conv2d_direct_grad_weight, _conv2d_direct_grad_x)
SERIAL = DirectKernels(_conv2d_direct_serial, _batch_grad_serial,
                       _batch_planes_serial, _conv2d_direct_grad_weight_serial,
                       _conv2d_direct_grad_x_serial)


def direct_kernels(serial: bool) -> DirectKernels:
    """The serial twins when ``serial`` (a call below ``SERIAL_MAX_MACS``), else the parallel."""
    return SERIAL if serial else PARALLEL


# --------------------------------------------------------------------------- thresholds


def measure_thresholds(repeats: int = 15) -> list[tuple]:
    """Time the direct path against the GEMM path, and serial twins against parallel kernels.

    Run as ``python -c "from kernels.numba_cpu.conv_direct import measure_thresholds as m;
    m()"``; it prints and returns the rows from which ``DIRECT_MAX_K`` and
    ``SERIAL_MAX_MACS`` (in :mod:`kernels.numba_cpu`) were chosen. float32, stride 1, no
    padding; each call is timed after about 1 ms of single-threaded NumPy work, as between the
    layers of a training step, so a parallel kernel pays for waking its threads; over
    ``repeats`` interleaved rounds, in ms: min for direct vs gemm, median for serial vs
    parallel (waking threads is what the median sees and the min hides).

    - direct vs gemm: batch 64, 14x14 inputs, 16 output channels, 5x5 kernels, ``C_in`` from
      2 to 32 (``K = C_in*25`` from 50 to 800): forward, and backward with grad_x and
      grad_weight.
    - serial vs parallel: the direct forward of a ``C_in`` -> 16 channel 5x5 layer on 14x14
      inputs, one sample with ``C_in`` 1, 2, 3, then LeNet's second layer (``C_in`` 6) for
      batch 1 to 16 (0.04 to 3.8 million multiply-adds).
    """
    import time

    from kernels.common import ConvSpec

    from . import conv2d, conv2d_backward, conv_algorithm

    rng = np.random.default_rng(0)
    busy = rng.standard_normal(150_000).astype(np.float32)

    def timed(fns):
        samples = {name: [] for name in fns}
        for fn in fns.values():
            fn()  # compile, warm
        for _ in range(repeats):
            for name, fn in fns.items():
                for _ in range(4):
                    np.exp(busy)  # the threads fall asleep meanwhile
                t0 = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - t0) * 1e3)
        return {name: (min(v), float(np.median(v))) for name, v in samples.items()}

    def forced(algorithm, fn, *args):
        def run():
            with conv_algorithm(algorithm):
                return fn(*args)
        return run

    rows = []
    for c_in in (2, 3, 6, 10, 16, 32):
        x = rng.standard_normal((64, c_in, 14, 14)).astype(np.float32)
        w = rng.standard_normal((16, c_in, 5, 5)).astype(np.float32)
        spec = ConvSpec.from_shapes(x.shape, w.shape, (1, 1), (0, 0), (1, 1), 1)
        gy = rng.standard_normal(spec.y_shape).astype(np.float32)
        t = timed({f"{a} {d}": forced(a, *call) for a in ("direct", "gemm")
                   for d, call in (("fwd", (conv2d, x, w, None, spec)),
                                   ("bwd", (conv2d_backward, gy, x, w, spec)))})
        rows.append(("K", c_in * 25, t["direct fwd"][0], t["gemm fwd"][0], t["direct bwd"][0],
                     t["gemm bwd"][0]))
    for n, c_in in ((1, 1), (1, 2), (1, 3), (1, 6), (2, 6), (4, 6), (8, 6), (16, 6)):
        x = rng.standard_normal((n, c_in, 14, 14)).astype(np.float32)
        w = rng.standard_normal((16, c_in, 5, 5)).astype(np.float32)
        b = np.zeros(16, np.float32)
        spec = ConvSpec.from_shapes(x.shape, w.shape, (1, 1), (0, 0), (1, 1), 1)
        S = chunk_samples(spec, x.itemsize)
        xb = _batch_planes(x, spec, S)
        t = timed({"serial": lambda xb=xb, w=w, b=b, s=spec, S=S:
                   _conv2d_direct_serial(xb, w, b, s, S),
                   "parallel": lambda xb=xb, w=w, b=b, s=spec, S=S:
                   _conv2d_direct(xb, w, b, s, S)})
        rows.append(("MACs", n * 16 * 100 * c_in * 25, t["serial"][1], t["parallel"][1]))
    for row in rows:
        print(row[0], row[1], " ".join(f"{v:.3f}" for v in row[2:]))
    return rows
