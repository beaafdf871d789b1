"""Rung (c) of the conv ladder: implicit GEMM, the production path (forward and backward).

A convolution of one group is a matrix product ``C (M x COLS) = A (M x R) @ B (R x COLS)``
in which ``B`` is the im2col matrix. Implicit GEMM never builds ``B``: the kernel is an
ordinary tiled GEMM whose loads *compute the address* of each element of ``A`` and ``B`` in
the original arrays. The same GEMM skeleton serves three problems; only the small
device functions that map GEMM indices to array elements differ:

=============  =====================  ========================  ==================  ==========
problem        C (M x COLS)           A (M x R)                 B (R x COLS)        R
=============  =====================  ========================  ==================  ==========
forward        y: co x (n, ho, wo)    weight: co x (c, i, j)    x gathered          C_in_g*kH*kW
grad input     grad_x: c x (n, h, w)  weight^T: c x (co, i, j)  grad_y gathered     C_out_g*kH*kW
(per phase)                                                                         (/ sH*sW)
grad weight    grad_w: co x (c, i, j) grad_y: co x (n, ho, wo)  x gathered          N*H_out*W_out
=============  =====================  ========================  ==================  ==========

(``_g`` = per group; ``blockIdx.z`` picks the group.) The grad-input problem is the
"transposed" convolution: ``grad_x`` is the correlation of the stride-dilated ``grad_y`` with
the flipped kernel. The stride's holes are never materialised, nor multiplied: the input
pixels are split into ``sH*sW`` stride phases (:func:`grad_input_phases`), and each phase is
its own GEMM over just the kernel cells that reach it (for stride 2, a quarter of them).
The grad-weight problem reduces over ``N*H_out*W_out``, which is long while its output is
small; it is split into ``splits`` chunks (``blockIdx.z`` also picks the
chunk), each block writes a partial product, and ``conv_backward`` sums the chunks in a fixed
order: deterministic, no atomics.

What changes relative to rung (b), ``conv_tiled``:

1. *Shared-memory tiles of A and B*: a block of 16 x 16 threads computes a ``BM x BN`` tile
   of ``C``; it walks the reduction in steps of ``BK``, copying an ``A`` tile (``BM x BK``)
   and a ``B`` tile (``BK x BN``) to shared memory. Each loaded value is then used
   ``BN`` (for A) or ``BM`` (for B) times: across output channels *and* pixels.
2. *Register blocking*: each thread computes a ``TM x TN`` block of outputs
   (``TM = BM/16``, ``TN = BN/16``) in registers. Per reduction step it reads ``TM + TN``
   values from shared memory and does ``TM*TN`` multiply-adds, instead of 2 reads per
   multiply-add in rung (b).
3. *Coalesced loads and stores*: consecutive threads load consecutive reduction indices of
   ``A`` (contiguous in the weight) and consecutive columns of ``B`` (neighbouring ``w``
   positions); a thread's outputs are strided by 16, so ``threadIdx.x`` walks 16
   consecutive columns of ``C`` (``w_out``, the contiguous axis of ``y``).
4. *Software prefetch*: the global loads of tile ``t+1`` go into registers before the
   multiply of tile ``t``, so their latency hides behind the arithmetic.
5. *No division in the inner loads*: a thread's B column never changes, so its digits
   ``(n, ho, wo)`` are computed once; the reduction index of its B loads advances by a
   constant, so its digits ``(c, i, j)`` advance by mixed-radix addition (:func:`advance`)
   instead of ``//`` and ``%``; the store steps through the thread's columns the same way.
   The accumulators start at the bias, so the store is a plain write.
6. *Registers, checked*: ``acc`` (``TM x TN``), the fragments and the prefetch buffers are
   Numba local arrays indexed only by unrolled loops, so NVVM keeps them in registers;
   ``tests/test_cuda_ptx.py`` fails if the PTX of any igemm kernel touches ``.local``
   memory (an earlier version of the store loop was too big to unroll and left ``acc`` in
   local memory for the 128x128 tile).

Tile configurations (:data:`CONFIGS`, chosen by :func:`pick_tile`): ``16x256`` for
problems with few output channels (LeNet), ``64x64`` as the default, ``128x128`` (8 x 8
outputs per thread) for large layers. All use 256 threads.

Every launch passes the kernel two records: the convolution's
:class:`kernels.common.ConvSpec` and a :class:`Gemm` (``M``, ``R``, ``COLS``, the split of
the reduction, and grad_input's stride :class:`Phase`); the index maps read named fields of
both (``spec.stride_h``, ``gemm.phase.i0``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numba import cuda

from kernels.common import ConvSpec

from ._arrays import blocks, empty, kernel_cache, numba_dtype, sm_count

NTX = 16  # threads along x (columns of C)
NTY = 16  # threads along y (rows of C)
NT = NTX * NTY

CONFIGS = {
    "16x256": (16, 256, 16),  # (BM, BN, BK): few output channels, many pixels
    "64x64": (64, 64, 16),
    "128x128": (128, 128, 8),
}
DEFAULT_TILE = "64x64"
MAX_GRID_Z = 65535
MODES = ("forward", "grad_input", "grad_weight")


class Phase(NamedTuple):
    """One stride phase of grad_input: the input pixels ``(h0 + stride_h*h2, w0 + stride_w*w2)``.

    Built by :func:`grad_input_phases`. Kernel row ``i = i0 + di*ti`` (``ti < ni``) takes
    input row ``h0 + stride_h*h2`` from output row ``ho = h2 + ho0 - ti*dho``, exactly (no
    stride hole in between); the same along the columns with ``j``, ``wo``.
    """

    h0: int  # the phase's first input row, 0 <= h0 < stride_h
    w0: int  # the phase's first input column, 0 <= w0 < stride_w
    H_p: int  # input rows in the phase: ceil((H - h0) / stride_h)
    W_p: int  # input columns in the phase: ceil((W - w0) / stride_w)
    i0: int  # first kernel row that reaches the phase
    di: int  # step between the kernel rows that reach it: stride_h / gcd(stride_h, dil_h)
    ni: int  # how many kernel rows reach it (0: none; the phase's gradient is zero)
    j0: int  # first kernel column that reaches the phase
    dj: int  # step between the kernel columns that reach it: stride_w / gcd(stride_w, dil_w)
    nj: int  # how many kernel columns reach it
    ho0: int  # output row that kernel row i0 takes input row h0 from
    dho: int  # output rows between successive kernel rows i0 + di*ti: di*dil_h / stride_h
    wo0: int  # output column that kernel column j0 takes input column w0 from
    dwo: int  # output columns between successive kernel columns: dj*dil_w / stride_w


NO_PHASE = Phase(*(0,) * len(Phase._fields))  # the phase of forward / grad_weight: unused


class Gemm(NamedTuple):
    """The matrix product one launch computes per group: ``C (M x COLS) = A (M x R) @ B``.

    One argument of :func:`igemm_kernel`'s kernel, next to the conv's ``ConvSpec`` (Numba
    passes a nested NamedTuple of ints as one argument).
    """

    M: int  # rows of C per group: C_out // groups, or C_in // groups for grad_input
    R: int  # reduction length (see the module's table)
    COLS: int  # columns of C: N*H_out*W_out, N*H_p*W_p (grad_input) or C_in_g*kH*kW
    r_chunk: int  # reduction per split: split s reduces [s*r_chunk, min(R, (s+1)*r_chunk))
    splits: int  # reduction chunks (grad_weight; else 1): blockIdx.z = group*splits + split
    phase: Phase  # grad_input's stride phase; NO_PHASE for forward and grad_weight


def unsplit(M: int, R: int, COLS: int, phase: Phase = NO_PHASE) -> Gemm:
    """The :class:`Gemm` whose reduction runs whole, in one split."""
    return Gemm(M=M, R=R, COLS=COLS, r_chunk=max(R, 1), splits=1, phase=phase)


# --------------------------------------------------------------------------- index maps
# A GEMM index is written as three digits (a small tuple): the reduction index r as
# (r2, r1, r0) with the radices reduction_radices(spec, gemm) = (b1, b0), a column of C as
# q = (q2, q1, q0) with column_radices(spec, gemm). Every map reads the convolution's sizes
# from spec (a kernels.common.ConvSpec) and the GEMM's from gemm (a Gemm; grad_input's stride
# phase is gemm.phase). Each problem supplies:
#   a_at(a, g, m, r, spec, gemm) -> value      A[m, r] of group g (r a flat index)
#   b_column(q, g, spec, gemm) -> p            what B's column q of group g needs, once per
#                                              thread (a tuple, its meaning per problem)
#   b_at(b, r, p, pad, spec, gemm) -> value    B[r, column p] for digits r, or ``pad`` (a
#                                              zero of the kernel's dtype) where B is padding
#   c_init(bias, g, m, zero, spec, gemm)       C's starting value (the bias, or zero)
#   c_row(g, s, m, spec, gemm), c_col(q, spec, gemm)
#                                              C[m, column q] of group g, split s, is
#                                              dst_flat[c_row + c_col] (dst is C-contiguous)


@cuda.jit(device=True, inline="always")
def digits(r, radices):
    """``r`` as mixed-radix digits ``(d2, d1, d0)``, radices ``(b1, b0)``.

    ``r = (d2*b1 + d1)*b0 + d0`` with ``d1 < b1`` and ``d0 < b0``.
    """
    b1, b0 = radices
    return r // (b1 * b0), (r // b0) % b1, r % b0


@cuda.jit(device=True, inline="always")
def advance(d, e, radices):
    """Mixed-radix addition: digits ``d = (d2, d1, d0)`` plus ``e``, radices ``(b1, b0)``.

    Requires ``e0 < b0`` and ``e1 < b1`` (true of :func:`digits`); then one carry per digit
    is enough, so no division is needed.
    """
    d2, d1, d0 = d
    e2, e1, e0 = e
    b1, b0 = radices
    d0 += e0
    if d0 >= b0:
        d0 -= b0
        d1 += 1
    d1 += e1
    if d1 >= b1:
        d1 -= b1
        d2 += 1
    return d2 + e2, d1, d0


@cuda.jit(device=True, inline="always")
def kernel_radices(spec, gemm):
    """Digits (c, i, j): channel, kernel row, kernel column."""
    return spec.kH, spec.kW


@cuda.jit(device=True, inline="always")
def output_radices(spec, gemm):
    """Digits (n, ho, wo) of an output pixel."""
    return spec.H_out, spec.W_out


# forward: y[n, g*M + m, ho, wo] = sum_{c,i,j} weight[g*M + m, c, i, j] * x[n, g*C_in_g + c, ., .]
# rows m: output channels of the group; columns (n, ho, wo); reduction (c, i, j)


@cuda.jit(device=True, inline="always")
def fwd_a_at(weight, g, m, r, spec, gemm):
    c, i, j = digits(r, kernel_radices(spec, gemm))
    return weight[g * (spec.C_out // spec.groups) + m, c, i, j]


@cuda.jit(device=True, inline="always")
def fwd_b_column(q, g, spec, gemm):
    n, ho, wo = q
    # (n, the group's first channel of x, the window's top row, its left column)
    return (n, g * (spec.C_in // spec.groups), ho * spec.stride_h - spec.pad_h,
            wo * spec.stride_w - spec.pad_w)


@cuda.jit(device=True, inline="always")
def fwd_b_at(x, r, p, pad, spec, gemm):
    c, i, j = r
    n, c_first, h_top, w_left = p
    h = h_top + i * spec.dil_h
    w = w_left + j * spec.dil_w
    if h >= 0 and h < spec.H and w >= 0 and w < spec.W:
        return x[n, c_first + c, h, w]
    return pad


@cuda.jit(device=True, inline="always")
def fwd_c_init(bias, g, m, zero, spec, gemm):
    if m < gemm.M and bias.shape[0] > 0:
        return bias[g * gemm.M + m]
    return zero


@cuda.jit(device=True, inline="always")
def fwd_c_row(g, s, m, spec, gemm):
    return (g * (spec.C_out // spec.groups) + m) * (spec.H_out * spec.W_out)  # co * Ho*Wo


@cuda.jit(device=True, inline="always")
def fwd_c_col(q, spec, gemm):
    n, ho, wo = q
    return (n * spec.C_out * spec.H_out + ho) * spec.W_out + wo  # n * C_out*Ho*Wo + ho*Wo + wo


# grad input, one stride phase at a time (see Phase and grad_input_phases):
# grad_x[n, g*M + m, h0 + sH*h2, w0 + sW*w2] = sum_{co,ti,tj} weight[g*C_out_g + co, m, i, j]
#                                                            * grad_y[n, g*C_out_g + co, ho, wo]
# with i = i0 + di*ti, j = j0 + dj*tj the kernel cells that reach this phase, and
# ho = h2 + ho0 - ti*dho, wo = w2 + wo0 - tj*dwo the outputs they come from.
# rows m: input channels of the group; columns (n, h2, w2); reduction (co, ti, tj).


@cuda.jit(device=True, inline="always")
def phase_kernel_radices(spec, gemm):
    """Digits (co, ti, tj): output channel, index among the phase's kernel rows / columns.

    At least 1 each: a phase no kernel cell reaches has ``R = 0`` and never reads a digit.
    """
    return max(gemm.phase.ni, 1), max(gemm.phase.nj, 1)


@cuda.jit(device=True, inline="always")
def phase_pixel_radices(spec, gemm):
    """Digits (n, h2, w2) of the phase's input pixels ``(h0 + sH*h2, w0 + sW*w2)``."""
    return gemm.phase.H_p, gemm.phase.W_p


@cuda.jit(device=True, inline="always")
def gin_a_at(weight, g, m, r, spec, gemm):
    phase = gemm.phase
    co, ti, tj = digits(r, phase_kernel_radices(spec, gemm))
    i = phase.i0 + phase.di * ti
    j = phase.j0 + phase.dj * tj
    return weight[g * (spec.C_out // spec.groups) + co, m, i, j]


@cuda.jit(device=True, inline="always")
def gin_b_column(q, g, spec, gemm):
    n, h2, w2 = q
    # (n, the group's first channel of grad_y, ho for ti = 0, wo for tj = 0)
    return n, g * (spec.C_out // spec.groups), h2 + gemm.phase.ho0, w2 + gemm.phase.wo0


@cuda.jit(device=True, inline="always")
def gin_b_at(grad_y, r, p, pad, spec, gemm):
    # every (ti, tj) of the phase reaches an output exactly (no stride holes); only its range
    # is checked
    co, ti, tj = r
    n, co_first, ho_first, wo_first = p
    ho = ho_first - ti * gemm.phase.dho
    wo = wo_first - tj * gemm.phase.dwo
    if ho >= 0 and ho < spec.H_out and wo >= 0 and wo < spec.W_out:
        return grad_y[n, co_first + co, ho, wo]
    return pad


@cuda.jit(device=True, inline="always")
def zero_init(bias, g, m, zero, spec, gemm):
    return zero


@cuda.jit(device=True, inline="always")
def gin_c_row(g, s, m, spec, gemm):
    return (g * (spec.C_in // spec.groups) + m) * (spec.H * spec.W)  # c * H*W


@cuda.jit(device=True, inline="always")
def gin_c_col(q, spec, gemm):
    n, h2, w2 = q
    h = gemm.phase.h0 + spec.stride_h * h2
    w = gemm.phase.w0 + spec.stride_w * w2
    return (n * spec.C_in * spec.H + h) * spec.W + w  # n * C_in*H*W + h*W + w


# grad weight: grad_w[g*M + m, c, i, j] = sum_{n,ho,wo} grad_y[n, g*M + m, ho, wo] * x[...]
# rows m: output channels of the group; columns (c, i, j); reduction (n, ho, wo)


@cuda.jit(device=True, inline="always")
def gw_a_at(grad_y, g, m, r, spec, gemm):
    n, ho, wo = digits(r, output_radices(spec, gemm))
    return grad_y[n, g * (spec.C_out // spec.groups) + m, ho, wo]


@cuda.jit(device=True, inline="always")
def gw_b_column(q, g, spec, gemm):
    c, i, j = q
    # (the channel of x this weight reads, offset of the input row, of the input column)
    return (g * (spec.C_in // spec.groups) + c, i * spec.dil_h - spec.pad_h,
            j * spec.dil_w - spec.pad_w)


@cuda.jit(device=True, inline="always")
def gw_b_at(x, r, p, pad, spec, gemm):
    n, ho, wo = r
    c_x, h_off, w_off = p
    h = ho * spec.stride_h + h_off
    w = wo * spec.stride_w + w_off
    if h >= 0 and h < spec.H and w >= 0 and w < spec.W:
        return x[n, c_x, h, w]
    return pad


@cuda.jit(device=True, inline="always")
def gw_c_row(g, s, m, spec, gemm):
    K = (spec.C_in // spec.groups) * spec.kH * spec.kW  # C_in_g * kH * kW
    return (s * spec.C_out + g * (spec.C_out // spec.groups) + m) * K  # partial[s, co, :]


@cuda.jit(device=True, inline="always")
def gw_c_col(q, spec, gemm):
    c, i, j = q
    return (c * spec.kH + i) * spec.kW + j


INDEX_MAPS = {  # reduction radices, column radices, a_at, b_column, b_at, c_init, c_row, c_col
    "forward": (kernel_radices, output_radices, fwd_a_at, fwd_b_column, fwd_b_at,
                fwd_c_init, fwd_c_row, fwd_c_col),
    "grad_input": (phase_kernel_radices, phase_pixel_radices, gin_a_at, gin_b_column,
                   gin_b_at, zero_init, gin_c_row, gin_c_col),
    "grad_weight": (output_radices, kernel_radices, gw_a_at, gw_b_column, gw_b_at,
                    zero_init, gw_c_row, gw_c_col),
}


# --------------------------------------------------------------------------- the skeleton


@kernel_cache
def igemm_kernel(DT, mode: str, tile: str):
    """Build the implicit-GEMM kernel for dtype ``DT``, problem ``mode``, tile ``tile``."""
    (reduction_radices, column_radices, a_at, b_column, b_at,
     c_init, c_row, c_col) = INDEX_MAPS[mode]
    BM, BN, BK = CONFIGS[tile]
    TM, TN = BM // NTY, BN // NTX  # outputs per thread: rows, columns
    LA, LB = BM * BK // NT, BK * BN // NT  # elements of A / B each thread loads per tile
    A_STEP, B_STEP = NT // BK, NT // BN  # distance between one thread's loads (rows of A / B)
    A_SHAPE = (BK, BM + 1)  # A tile stored transposed; +1 column avoids bank conflicts
    B_SHAPE = (BK, BN)
    assert NT % BK == 0 and NT % BN == 0 and BM % NTY == 0 and BN % NTX == 0

    @cuda.jit
    def conv2d_igemm(a_src, b_src, dst, bias, spec, gemm):
        """C[m, col] = sum_r A[m, r] * B[r, col] for one BM x BN tile of C.

        ``spec`` is the convolution (a ``ConvSpec``), ``gemm`` the product (a :class:`Gemm`);
        ``dst`` is C's flat (C-contiguous) destination, ``bias`` has length 0 when there is
        none. Block ``(blockIdx.x, blockIdx.y)`` owns rows ``blockIdx.y*BM ...`` and columns
        ``blockIdx.x*BN ...`` of C; ``blockIdx.z = group * gemm.splits + split``. Thread
        ``(threadIdx.y, threadIdx.x)`` computes rows ``threadIdx.y + 16*i`` (i < TM) and
        columns ``threadIdx.x + 16*j`` (j < TN) of that tile, accumulated in registers
        (``acc``); ``threadIdx.x`` walks the columns of C, the contiguous axis of the
        output. Shared memory holds one ``BK``-deep slice of the reduction: ``As`` (A tile,
        transposed, ``BK x (BM+1)``) and ``Bs`` (B tile, ``BK x BN``). Split ``s`` reduces
        ``r`` over ``[s*gemm.r_chunk, min(gemm.R, (s+1)*gemm.r_chunk))``.
        """
        As = cuda.shared.array(A_SHAPE, DT)
        Bs = cuda.shared.array(B_SHAPE, DT)
        acc = cuda.local.array((TM, TN), DT)
        a_frag = cuda.local.array(TM, DT)
        b_frag = cuda.local.array(TN, DT)
        a_next = cuda.local.array(LA, DT)  # prefetched tile, on its way to shared memory
        b_next = cuda.local.array(LB, DT)
        col_offset = cuda.local.array(TN, numba.int64)  # where this thread's columns go

        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        t = ty * NTX + tx
        g = cuda.blockIdx.z // gemm.splits
        s = cuda.blockIdx.z - g * gemm.splits
        m_first = cuda.blockIdx.y * BM
        col_first = cuda.blockIdx.x * BN
        r_begin = s * gemm.r_chunk
        r_end = min(gemm.R, r_begin + gemm.r_chunk)

        # A loads: rows a_row + A_STEP*l of the tile, reduction offset a_k (fixed)
        a_k = t % BK
        a_row = t // BK
        # B loads: column b_col of the tile (fixed), reduction rows b_k + B_STEP*l
        b_col = t % BN
        b_k = t // BN
        col = col_first + b_col
        col_radices = column_radices(spec, gemm)
        p = b_column(digits(col, col_radices), g, spec, gemm)
        # digits of this thread's first B reduction index, and of the two constant steps
        r_radices = reduction_radices(spec, gemm)
        d = digits(r_begin + b_k, r_radices)
        b_step = digits(B_STEP, r_radices)
        k_step = digits(BK, r_radices)

        for i in range(TM):
            start = c_init(bias, g, m_first + ty + NTY * i, DT(0), spec, gemm)
            for j in range(TN):
                acc[i, j] = start
        n_tiles = (r_end - r_begin + BK - 1) // BK
        # iteration it loads tile it into registers while multiplying tile it - 1
        for it in range(n_tiles + 1):
            if it > 0:  # registers -> shared memory
                for l in range(LA):
                    As[a_k, a_row + A_STEP * l] = a_next[l]
                for l in range(LB):
                    Bs[b_k + B_STEP * l, b_col] = b_next[l]
                cuda.syncthreads()
            if it < n_tiles:  # global memory -> registers (tile it)
                r_a = r_begin + it * BK + a_k
                for l in range(LA):
                    m = m_first + a_row + A_STEP * l
                    value = DT(0)
                    if m < gemm.M and r_a < r_end:
                        value = a_at(a_src, g, m, r_a, spec, gemm)
                    a_next[l] = value
                r_b = r_begin + it * BK + b_k
                e = d
                for l in range(LB):
                    value = DT(0)
                    if col < gemm.COLS and r_b < r_end:
                        value = b_at(b_src, e, p, value, spec, gemm)
                    b_next[l] = value
                    e = advance(e, b_step, r_radices)
                    r_b += B_STEP
                d = advance(d, k_step, r_radices)
            if it > 0:  # multiply the tiles in shared memory
                for kk in range(BK):
                    for i in range(TM):
                        a_frag[i] = As[kk, ty + NTY * i]
                    for j in range(TN):
                        b_frag[j] = Bs[kk, tx + NTX * j]
                    for i in range(TM):
                        for j in range(TN):
                            acc[i, j] += a_frag[i] * b_frag[j]
                cuda.syncthreads()  # before the next tile overwrites As / Bs

        # store: this thread's columns col_first + tx + 16*j, stepped by digit addition
        # (a small loop body, so the compiler unrolls it and acc stays in registers)
        q = digits(col_first + tx, col_radices)
        q_step = digits(NTX, col_radices)
        for j in range(TN):
            col_offset[j] = -1  # past the last column: not stored
            if col_first + tx + NTX * j < gemm.COLS:
                col_offset[j] = c_col(q, spec, gemm)
            q = advance(q, q_step, col_radices)
        for i in range(TM):
            m = m_first + ty + NTY * i
            if m < gemm.M:
                row_offset = c_row(g, s, m, spec, gemm)
                for j in range(TN):
                    if col_offset[j] >= 0:
                        dst[row_offset + col_offset[j]] = acc[i, j]

    return conv2d_igemm


# --------------------------------------------------------------------------- host side


class Operands(NamedTuple):
    """The device arrays of one implicit-GEMM launch (:func:`launch`)."""

    a: object  # A's source: weight (forward, grad_input) or grad_y (grad_weight), 4-D
    b: object  # B's source, gathered: x (forward, grad_weight) or grad_y (grad_input), 4-D
    dst: object  # C's destination, C-contiguous: y, grad_x, or (splits, C_out, C_in_g*kH*kW)
    bias: object  # (C_out,) the forward's bias; None or length 0: none (backward: None)


def pick_tile(M: int, COLS: int, groups: int) -> str:
    """The tile configuration for a GEMM of ``M`` rows and ``COLS`` columns per group.

    Few rows waste most of a 64-row tile, so ``M <= 16`` takes ``16x256``; ``128x128``
    (more reuse per load) only when it still gives every multiprocessor a block; else
    ``64x64``. A heuristic, to be tuned on the GPU with ``benchmarks.gpu_ops``.
    """
    if M <= 16:
        return "16x256"
    if M >= 128 and blocks(M, 128) * blocks(COLS, 128) * groups >= sm_count():
        return "128x128"
    return DEFAULT_TILE


def split_reduction(R: int, splits: int, BK: int, groups: int) -> tuple[int, int]:
    """``(r_chunk, splits)``: cut a reduction of length ``R`` into about ``splits`` chunks.

    Each chunk is a whole number of ``BK`` tiles, so the count actually used may be smaller
    than asked; ``groups * splits`` stays within ``gridDim.z``.
    """
    if R == 0:  # an empty reduction (a stride phase no kernel cell reaches): C = 0
        return BK, 1
    splits = max(1, min(int(splits), MAX_GRID_Z // groups))
    r_chunk = -(-R // splits)  # ceil(R / splits)
    r_chunk = -(-r_chunk // BK) * BK  # rounded up to whole tiles
    return r_chunk, -(-R // r_chunk)


class AxisPhase(NamedTuple):
    """One stride phase along one axis (rows or columns); :func:`grad_input_phases` pairs them."""

    start: int  # the phase's first input index (h0 or w0)
    size: int  # input indices in the phase (H_p or W_p)
    k0: int  # first kernel index that reaches it (i0 or j0)
    dk: int  # step between the kernel indices that reach it (di or dj)
    nk: int  # how many kernel indices reach it (ni or nj; may be 0)
    o0: int  # output index that kernel index k0 takes ``start`` from (ho0 or wo0)
    do: int  # output indices between successive kernel indices (dho or dwo)


def axis_phases(size: int, kernel: int, stride: int, padding: int,
                dilation: int) -> list[AxisPhase]:
    """The stride phases of one axis of grad_input, one per ``start < min(stride, size)``.

    With stride ``s``, input row ``h`` receives gradient through kernel row ``i`` only when
    ``(h + p - i*d) % s == 0``, which depends on ``h % s`` alone. So the rows
    ``h = start + s*h2`` of a phase all use the same kernel rows ``i = k0 + dk*t``
    (``dk = s / gcd(s, d)``, ``nk`` of them), and ``ho = h2 + o0 - t*do`` exactly.
    """
    phases = []
    for start in range(min(stride, size)):
        cells = [i for i in range(kernel) if (start + padding - i * dilation) % stride == 0]
        dk = stride // math.gcd(stride, dilation)
        k0 = cells[0] if cells else 0
        phases.append(AxisPhase(
            start=start, size=-(-(size - start) // stride), k0=k0, dk=dk, nk=len(cells),
            o0=(start + padding - k0 * dilation) // stride, do=dk * dilation // stride,
        ))
    return phases


def grad_input_phases(spec: ConvSpec) -> list[Phase]:
    """The stride phases of grad_input: one :class:`Phase` per ``(h0, w0)``, rows first.

    Each phase is the pairing of a row phase and a column phase of :func:`axis_phases`. One
    GEMM per phase skips the ``1 - 1/(sH*sW)`` of products that would multiply a stride hole;
    a phase no kernel row (or column) reaches has ``ni = 0`` (or ``nj = 0``): its GEMM has an
    empty reduction and writes zeros. Stride 1 has one phase: every kernel cell,
    ``ho = h + pad_h - i*dil_h``.
    """
    rows = axis_phases(spec.H, spec.kH, spec.stride_h, spec.pad_h, spec.dil_h)
    cols = axis_phases(spec.W, spec.kW, spec.stride_w, spec.pad_w, spec.dil_w)
    return [
        Phase(h0=r.start, w0=c.start, H_p=r.size, W_p=c.size, i0=r.k0, di=r.dk, ni=r.nk,
              j0=c.k0, dj=c.dk, nj=c.nk, ho0=r.o0, dho=r.do, wo0=c.o0, dwo=c.do)
        for r in rows
        for c in cols
    ]


def launch(mode: str, operands: Operands, spec: ConvSpec, gemm: Gemm, tile: str) -> None:
    """Run the ``mode`` implicit GEMM: ``spec.groups`` products ``gemm``, one per group.

    ``gemm.splits > 1`` chunks the reduction (``grad_weight`` only: ``operands.dst`` then has
    a leading ``splits`` axis of partial sums). ``tile`` is a key of :data:`CONFIGS`.
    """
    BM, BN, _ = CONFIGS[tile]
    bias = operands.bias
    if bias is None:
        bias = empty((0,), np.dtype(operands.dst.dtype))
    grid = (blocks(gemm.COLS, BN), blocks(gemm.M, BM), spec.groups * gemm.splits)
    igemm_kernel(numba_dtype(operands.dst), mode, tile)[grid, (NTX, NTY)](
        operands.a, operands.b, operands.dst.reshape(-1), bias, spec, gemm
    )  # dst is C-contiguous and ours: the kernel writes its flat view


def conv2d(x, weight, bias, spec: ConvSpec, tile: str | None = None):
    """Forward conv by implicit GEMM on device arrays.

    x : (N, C_in, H, W), weight : (C_out, C_in // groups, kH, kW), bias : (C_out,), a
    length-0 array or None; returns y : (N, C_out, H_out, W_out). ``tile=None`` picks the
    tile with :func:`pick_tile`.
    """
    gemm = unsplit(M=spec.C_out // spec.groups,
                   R=(spec.C_in // spec.groups) * spec.kH * spec.kW,
                   COLS=spec.N * spec.H_out * spec.W_out)
    y = empty(spec.y_shape, x.dtype)
    launch("forward", Operands(a=weight, b=x, dst=y, bias=bias), spec, gemm,
           tile or pick_tile(gemm.M, gemm.COLS, spec.groups))
    return y
