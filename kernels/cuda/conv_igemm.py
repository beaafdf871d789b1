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
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from ._arrays import GEOMETRY_LEN, blocks, empty, kernel_cache, sm_count

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
PHASE_LEN = 14
NO_PHASE = (0,) * PHASE_LEN  # the phase slot of the geometry, unused by forward / grad_weight
IGEMM_GEOMETRY_LEN = GEOMETRY_LEN + PHASE_LEN


# --------------------------------------------------------------------------- index maps
# A GEMM index is written as three digits: the reduction index r as (r2, r1, r0) with radices
# reduction_radices(geom) = (r1, r0), a column of C as (q2, q1, q0) with column_radices.
# Each problem supplies (geom = kernels.cuda._arrays.conv_geometry):
#   a_at(a, g, m, r, geom) -> value               A[m, r] of group g
#   b_column(q2, q1, q0, geom) -> (p2, p1, p0)    what B's column needs, once per thread
#   b_at(b, g, r2, r1, r0, p2, p1, p0, pad, geom) B[r, column] of group g, or ``pad`` (a zero
#                                                 of the kernel's dtype) where B is padding
#   c_init(bias, g, m, M, zero, geom) -> value    C's starting value (the bias, or zero)
#   c_row(g, s, m, geom), c_col(q2, q1, q0, geom) C[m, column] is dst_flat[c_row + c_col]
#                                                 (dst is C-contiguous, split s)


@cuda.jit(device=True, inline="always")
def digits(r, r1, r0):
    """``r`` as mixed-radix digits ``(r2, r1, r0)``: ``r = (r2*r1 + d1)*r0 + d0``."""
    return r // (r1 * r0), (r // r0) % r1, r % r0


@cuda.jit(device=True, inline="always")
def advance(d2, d1, d0, e2, e1, e0, r1, r0):
    """Mixed-radix addition: digits (d2, d1, d0) plus (e2, e1, e0), radices (., r1, r0).

    Requires ``e0 < r0`` and ``e1 < r1`` (true of :func:`digits`); then one carry per digit
    is enough, so no division is needed.
    """
    d0 += e0
    if d0 >= r0:
        d0 -= r0
        d1 += 1
    d1 += e1
    if d1 >= r1:
        d1 -= r1
        d2 += 1
    return d2 + e2, d1, d0


@cuda.jit(device=True, inline="always")
def kernel_radices(geom):
    """Digits (c, i, j): channel, kernel row, kernel column."""
    return geom[7], geom[8]


@cuda.jit(device=True, inline="always")
def output_radices(geom):
    """Digits (n, ho, wo) of an output pixel."""
    return geom[5], geom[6]


# forward: y[n, g*M + m, ho, wo] = sum_{c,i,j} weight[g*M + m, c, i, j] * x[n, g*Cg + c, ., .]
# rows m: output channels of the group; columns (n, ho, wo); reduction (c, i, j)


@cuda.jit(device=True, inline="always")
def fwd_a_at(weight, g, m, r, geom):
    c, i, j = digits(r, geom[7], geom[8])
    return weight[g * (geom[4] // geom[15]) + m, c, i, j]


@cuda.jit(device=True, inline="always")
def fwd_b_column(n, ho, wo, geom):
    return n, ho * geom[9] - geom[11], wo * geom[10] - geom[12]  # (n, top row, left col)


@cuda.jit(device=True, inline="always")
def fwd_b_at(x, g, c, i, j, n, h_top, w_left, pad, geom):
    h = h_top + i * geom[13]
    w = w_left + j * geom[14]
    if h >= 0 and h < geom[2] and w >= 0 and w < geom[3]:
        return x[n, g * (geom[1] // geom[15]) + c, h, w]
    return pad


@cuda.jit(device=True, inline="always")
def fwd_c_init(bias, g, m, M, zero, geom):
    if m < M and bias.shape[0] > 0:
        return bias[g * M + m]
    return zero


@cuda.jit(device=True, inline="always")
def fwd_c_row(g, s, m, geom):
    return (g * (geom[4] // geom[15]) + m) * (geom[5] * geom[6])  # co * Ho*Wo


@cuda.jit(device=True, inline="always")
def fwd_c_col(n, ho, wo, geom):
    return (n * geom[4] * geom[5] + ho) * geom[6] + wo  # n * C_out*Ho*Wo + ho*Wo + wo


# grad input, one stride phase (a, b) at a time (see grad_input_phases):
# grad_x[n, g*Cg + m, a + sH*h2, b + sW*w2] = sum_{co,ti,tj} weight[g*Co + co, m, i, j] * grad_y[..]
# with i = i0 + di*ti, j = j0 + dj*tj the kernel cells that reach this phase, and
# ho = h2 + base_h - ti*step_h, wo = w2 + base_w - tj*step_w the outputs they come from.
# rows m: input channels of the group; columns (n, h2, w2); reduction (co, ti, tj).
# The phase sits in geom[16:30] = (a, b, Hp, Wp, i0, di, ni, j0, dj, nj, base_h, step_h,
# base_w, step_w).


@cuda.jit(device=True, inline="always")
def phase_kernel_radices(geom):
    """Digits (co, ti, tj): output channel, index among the phase's kernel rows / columns."""
    return geom[22], geom[25]


@cuda.jit(device=True, inline="always")
def phase_pixel_radices(geom):
    """Digits (n, h2, w2) of the phase's input pixels ``(a + sH*h2, b + sW*w2)``."""
    return geom[18], geom[19]


@cuda.jit(device=True, inline="always")
def gin_a_at(weight, g, m, r, geom):
    co, ti, tj = digits(r, geom[22], geom[25])
    i = geom[20] + geom[21] * ti
    j = geom[23] + geom[24] * tj
    return weight[g * (geom[4] // geom[15]) + co, m, i, j]


@cuda.jit(device=True, inline="always")
def gin_b_column(n, h2, w2, geom):
    return n, h2 + geom[26], w2 + geom[28]  # (n, ho for ti = 0, wo for tj = 0)


@cuda.jit(device=True, inline="always")
def gin_b_at(grad_y, g, co, ti, tj, n, ho_first, wo_first, pad, geom):
    # every (ti, tj) of the phase reaches an output exactly (no stride holes); only its range
    # is checked
    ho = ho_first - ti * geom[27]
    wo = wo_first - tj * geom[29]
    if ho >= 0 and ho < geom[5] and wo >= 0 and wo < geom[6]:
        return grad_y[n, g * (geom[4] // geom[15]) + co, ho, wo]
    return pad


@cuda.jit(device=True, inline="always")
def zero_init(bias, g, m, M, zero, geom):
    return zero


@cuda.jit(device=True, inline="always")
def gin_c_row(g, s, m, geom):
    return (g * (geom[1] // geom[15]) + m) * (geom[2] * geom[3])  # c * H*W


@cuda.jit(device=True, inline="always")
def gin_c_col(n, h2, w2, geom):
    h = geom[16] + geom[9] * h2  # a + sH*h2
    w = geom[17] + geom[10] * w2  # b + sW*w2
    return (n * geom[1] * geom[2] + h) * geom[3] + w  # n * C_in*H*W + h*W + w


# grad weight: grad_w[g*M + m, c, i, j] = sum_{n,ho,wo} grad_y[n, g*M + m, ho, wo] * x[...]
# rows m: output channels of the group; columns (c, i, j); reduction (n, ho, wo)


@cuda.jit(device=True, inline="always")
def gw_a_at(grad_y, g, m, r, geom):
    n, ho, wo = digits(r, geom[5], geom[6])
    return grad_y[n, g * (geom[4] // geom[15]) + m, ho, wo]


@cuda.jit(device=True, inline="always")
def gw_b_column(c, i, j, geom):
    # (c, offset of the input row, offset of the input column) of this weight element
    return c, i * geom[13] - geom[11], j * geom[14] - geom[12]


@cuda.jit(device=True, inline="always")
def gw_b_at(x, g, n, ho, wo, c, h_off, w_off, pad, geom):
    h = ho * geom[9] + h_off
    w = wo * geom[10] + w_off
    if h >= 0 and h < geom[2] and w >= 0 and w < geom[3]:
        return x[n, g * (geom[1] // geom[15]) + c, h, w]
    return pad


@cuda.jit(device=True, inline="always")
def gw_c_row(g, s, m, geom):
    K = (geom[1] // geom[15]) * geom[7] * geom[8]  # C_in_g * kH * kW
    return (s * geom[4] + g * (geom[4] // geom[15]) + m) * K  # partial[s, co, :]


@cuda.jit(device=True, inline="always")
def gw_c_col(c, i, j, geom):
    return (c * geom[7] + i) * geom[8] + j


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
    def conv2d_igemm(a_src, b_src, dst, bias, M, R, COLS, r_chunk, splits, geom):
        """C[m, col] = sum_r A[m, r] * B[r, col] for one BM x BN tile of C.

        Block ``(blockIdx.x, blockIdx.y)`` owns rows ``blockIdx.y*BM ...`` and columns
        ``blockIdx.x*BN ...`` of C; ``blockIdx.z = group * splits + split``. Thread
        ``(threadIdx.y, threadIdx.x)`` computes rows ``threadIdx.y + 16*i`` (i < TM) and
        columns ``threadIdx.x + 16*j`` (j < TN) of that tile, accumulated in registers
        (``acc``); ``threadIdx.x`` walks the columns of C, the contiguous axis of the
        output. Shared memory holds one ``BK``-deep slice of the reduction: ``As`` (A tile,
        transposed, ``BK x (BM+1)``) and ``Bs`` (B tile, ``BK x BN``). Split ``s`` reduces
        ``r`` over ``[s*r_chunk, min(R, (s+1)*r_chunk))``.
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
        g = cuda.blockIdx.z // splits
        s = cuda.blockIdx.z - g * splits
        m_first = cuda.blockIdx.y * BM
        col_first = cuda.blockIdx.x * BN
        r_begin = s * r_chunk
        r_end = min(R, r_begin + r_chunk)

        # A loads: rows a_row + A_STEP*l of the tile, reduction offset a_k (fixed)
        a_k = t % BK
        a_row = t // BK
        # B loads: column b_col of the tile (fixed), reduction rows b_k + B_STEP*l
        b_col = t % BN
        b_k = t // BN
        col = col_first + b_col
        c1, c0 = column_radices(geom)
        q2, q1, q0 = digits(col, c1, c0)
        p2, p1, p0 = b_column(q2, q1, q0, geom)
        # digits of this thread's first B reduction index, and of the two constant steps
        r1, r0 = reduction_radices(geom)
        d2, d1, d0 = digits(r_begin + b_k, r1, r0)
        s2, s1, s0 = digits(B_STEP, r1, r0)
        k2, k1, k0 = digits(BK, r1, r0)

        for i in range(TM):
            start = c_init(bias, g, m_first + ty + NTY * i, M, DT(0), geom)
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
                    if m < M and r_a < r_end:
                        value = a_at(a_src, g, m, r_a, geom)
                    a_next[l] = value
                r_b = r_begin + it * BK + b_k
                e2, e1, e0 = d2, d1, d0
                for l in range(LB):
                    value = DT(0)
                    if col < COLS and r_b < r_end:
                        value = b_at(b_src, g, e2, e1, e0, p2, p1, p0, value, geom)
                    b_next[l] = value
                    e2, e1, e0 = advance(e2, e1, e0, s2, s1, s0, r1, r0)
                    r_b += B_STEP
                d2, d1, d0 = advance(d2, d1, d0, k2, k1, k0, r1, r0)
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
        q2, q1, q0 = digits(col_first + tx, c1, c0)
        t2, t1, t0 = digits(NTX, c1, c0)
        for j in range(TN):
            col_offset[j] = -1  # past the last column: not stored
            if col_first + tx + NTX * j < COLS:
                col_offset[j] = c_col(q2, q1, q0, geom)
            q2, q1, q0 = advance(q2, q1, q0, t2, t1, t0, c1, c0)
        for i in range(TM):
            m = m_first + ty + NTY * i
            if m < M:
                row_offset = c_row(g, s, m, geom)
                for j in range(TN):
                    if col_offset[j] >= 0:
                        dst[row_offset + col_offset[j]] = acc[i, j]

    return conv2d_igemm


# --------------------------------------------------------------------------- host side


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


def grad_input_phases(H, W, kernel, stride, padding, dilation):
    """The stride phases of grad_input: one ``(Hp, Wp, ni, nj, phase)`` per ``(a, b)``.

    With stride ``s``, input row ``h`` receives gradient through kernel row ``i`` only when
    ``(h + p - i*d) % s == 0``, which depends on ``h % s`` alone. So the rows
    ``h = a + s*h2`` of phase ``a`` all use the same kernel rows ``i = i0 + di*t``
    (``di = s / gcd(s, d)``, ``ni`` of them), and ``ho = h2 + base - t*step`` exactly. One
    GEMM per phase skips the ``1 - 1/(sH*sW)`` of products that would multiply a stride hole;
    a phase no kernel row reaches gets ``ni = 0`` (its GEMM has an empty reduction and writes
    zeros). Stride 1 has one phase: every kernel cell, ``ho = h + p - i*d``.
    ``phase`` is the 14-tuple appended to the geometry (see the grad-input index maps).
    """
    phases = []
    per_axis = []
    for size, k, s, p, d in zip((H, W), kernel, stride, padding, dilation, strict=True):
        axis = []
        for a in range(min(s, size)):
            cells = [i for i in range(k) if (a + p - i * d) % s == 0]
            step_i = s // math.gcd(s, d)
            first = cells[0] if cells else 0
            axis.append((a, -(-(size - a) // s), first, step_i, len(cells),
                         (a + p - first * d) // s, step_i * d // s))
        per_axis.append(axis)
    for a, Hp, i0, di, ni, base_h, step_h in per_axis[0]:
        for b, Wp, j0, dj, nj, base_w, step_w in per_axis[1]:
            phase = (a, b, Hp, Wp, i0, di, max(ni, 1), j0, dj, max(nj, 1),
                     base_h, step_h, base_w, step_w)
            phases.append((Hp, Wp, ni, nj, phase))
    return phases


def launch(mode, DT, a_src, b_src, dst, bias, M, R, COLS, groups, geom, splits=1, tile=None):
    """Run the ``mode`` implicit GEMM: ``groups`` GEMMs of ``M x COLS``, reduction ``R``.

    ``geom`` is :func:`kernels.cuda._arrays.conv_geometry`'s tuple, plus a stride phase of
    :func:`grad_input_phases` for ``grad_input`` (zeros are appended otherwise).

    ``splits`` chunks the reduction (``grad_weight`` only: ``dst`` then has a leading
    ``splits`` axis of partial sums). Returns the number of splits used.
    """
    tile = tile or pick_tile(M, COLS, groups)
    BM, BN, BK = CONFIGS[tile]
    r_chunk, splits = split_reduction(R, splits, BK, groups)
    if bias is None:
        bias = empty((0,), np.dtype(dst.dtype))
    if len(geom) == GEOMETRY_LEN:
        geom = geom + NO_PHASE
    grid = (blocks(COLS, BN), blocks(M, BM), groups * splits)
    igemm_kernel(DT, mode, tile)[grid, (NTX, NTY)](
        a_src, b_src, dst.reshape(-1), bias, M, R, COLS, r_chunk, splits, geom
    )  # dst is C-contiguous and ours: the kernel writes its flat view
    return splits


def conv2d(x, weight, bias, y_shape, geom, groups, DT, tile=None):
    """Forward conv by implicit GEMM on device arrays; return ``y`` (N, C_out, H_out, W_out)."""
    N, C_out, Ho, Wo = y_shape
    _, C_in_g, kh, kw = weight.shape
    y = empty(y_shape, x.dtype)
    launch("forward", DT, weight, x, y, bias, C_out // groups, C_in_g * kh * kw,
           N * Ho * Wo, groups, geom, tile=tile)
    return y
