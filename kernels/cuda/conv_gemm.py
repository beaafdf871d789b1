"""Rungs 4 to 7 of the conv ladder: implicit GEMM, one idea at a time.

Every rung here computes the same three matrix products as the production kernel
(``conv_igemm``, rung 8: forward, grad_input per stride phase, grad_weight with a split
reduction), through the same index maps (``conv_igemm.INDEX_MAPS``), so that the only thing
that differs between two neighbouring rungs is the idea named below. Versions, as in llm.c's
``dev/cuda`` files (each is a :class:`Rung` in :data:`RUNGS`, selected by name with
``kernels.cuda.conv_algorithm``):

4. ``"igemm_smem"``: a block of 16 x 16 threads computes a 16 x 16 tile of ``C``, one output
   per thread. It walks the reduction in steps of ``BK = 16``, each thread copying one
   element of the ``A`` tile and one of the ``B`` tile to shared memory; then each thread
   reads a row of ``As`` and a column of ``Bs``. Relative to rung 3 (``conv_tiled``), a
   loaded value is reused by the 16 threads of a tile row or column: across output channels
   *and* pixels, not only across pixels. Two shared-memory reads per multiply-add.
5. ``"igemm_1d"``: + 1-D register blocking. A thread computes ``TM = 8`` outputs of one
   column of ``C`` (a 64 x 32 tile, 8 x 32 threads): per reduction step it reads one ``B``
   value and 8 ``A`` values from shared memory for 8 multiply-adds (9 reads, not 16).
6. ``"igemm_2d"``: + 2-D register blocking. A thread computes a ``4 x 4`` block (a 64 x 64
   tile, 16 x 16 threads): 4 + 4 reads for 16 multiply-adds, and each loaded tile feeds
   twice as many outputs as rung 5's.
7. ``"igemm_nodiv"``: + no division in the inner loads and the store. Rungs 4 to 6 turn
   each reduction index of a ``B`` load into its digits ``(c, i, j)`` (forward) with ``//``
   and ``%`` (about 20 instructions each on a GPU, which has no integer divider); this rung
   computes the digits of a thread's first index once and then steps them by mixed-radix
   addition (``conv_igemm.advance``: two compares and adds), and steps the store's column
   digits the same way.

Rung 8, ``conv_igemm``, adds the last idea: prefetch (the global loads of tile ``t + 1`` go
to registers before the multiply of tile ``t``), and picks its tile per problem.

All rungs here keep rung 8's layout choices, so that they are not what is measured: the
``A`` tile is stored transposed with one column of padding (no bank conflicts on the store),
``threadIdx.x`` walks the columns of ``C`` (the contiguous axis of ``y``, coalesced stores),
a thread's outputs are ``NTY`` rows and ``NTX`` columns apart, and ``acc``, the fragments and
the column offsets are local arrays indexed only by unrolled loops (registers; the PTX test
fails on ``.local``).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import cuda

from kernels.common import ConvSpec

from ._arrays import blocks, empty, kernel_cache, numba_dtype
from .conv_igemm import INDEX_MAPS, Gemm, Operands, advance, digits, unsplit


class Rung(NamedTuple):
    """One GEMM rung: its tile, its register block and whether it divides in the loads."""

    BM: int  # rows of C per block (output channels in forward)
    BN: int  # columns of C per block (output pixels in forward)
    BK: int  # reduction step: depth of the A and B tiles in shared memory
    TM: int  # rows of C per thread (register block)
    TN: int  # columns of C per thread
    divfree: bool  # digits advanced by addition (rung 7) instead of // and % per element

    @property
    def NTX(self) -> int:
        """Threads along x (columns of C): ``BN // TN``."""
        return self.BN // self.TN

    @property
    def NTY(self) -> int:
        """Threads along y (rows of C): ``BM // TM``."""
        return self.BM // self.TM

    @property
    def threads(self) -> int:
        """Threads per block."""
        return self.NTX * self.NTY


RUNGS = {
    "igemm_smem": Rung(BM=16, BN=16, BK=16, TM=1, TN=1, divfree=False),
    "igemm_1d": Rung(BM=64, BN=32, BK=16, TM=8, TN=1, divfree=False),
    "igemm_2d": Rung(BM=64, BN=64, BK=16, TM=4, TN=4, divfree=False),
    "igemm_nodiv": Rung(BM=64, BN=64, BK=16, TM=4, TN=4, divfree=True),
}


@kernel_cache
def gemm_kernel(DT, mode: str, rung: str):
    """Build rung ``rung``'s implicit-GEMM kernel for dtype ``DT`` and problem ``mode``."""
    (reduction_radices, column_radices, a_at, b_column, b_at,
     c_init, c_row, c_col) = INDEX_MAPS[mode]
    BM, BN, BK, TM, TN, DIVFREE = RUNGS[rung]
    NTX, NTY = BN // TN, BM // TM
    NT = NTX * NTY
    LA, LB = BM * BK // NT, BK * BN // NT  # elements of A / B each thread loads per tile
    A_STEP, B_STEP = NT // BK, NT // BN  # distance between one thread's loads (rows of A / B)
    A_SHAPE = (BK, BM + 1)  # A tile stored transposed; +1 column avoids bank conflicts
    B_SHAPE = (BK, BN)
    assert NT % BK == 0 and NT % BN == 0 and BM % TM == 0 and BN % TN == 0

    @cuda.jit
    def conv2d_gemm(a_src, b_src, dst, bias, spec, gemm):
        """C[m, col] = sum_r A[m, r] * B[r, col] for one BM x BN tile of C, no prefetch.

        The arguments are those of ``conv_igemm.igemm_kernel``'s kernel: ``spec`` the
        convolution (``ConvSpec``), ``gemm`` the product (``Gemm``), ``dst`` C's flat
        destination, ``bias`` length 0 when there is none; ``blockIdx.z = group *
        gemm.splits + split``. Thread ``(threadIdx.y, threadIdx.x)`` computes rows
        ``threadIdx.y + NTY*i`` (i < TM) and columns ``threadIdx.x + NTX*j`` (j < TN) of the
        block's tile in ``acc``. Shared memory: ``As`` (A tile transposed, ``BK x (BM+1)``),
        ``Bs`` (``BK x BN``). Each step: load both tiles, sync, multiply, sync.
        """
        As = cuda.shared.array(A_SHAPE, DT)
        Bs = cuda.shared.array(B_SHAPE, DT)
        acc = cuda.local.array((TM, TN), DT)
        a_frag = cuda.local.array(TM, DT)
        b_frag = cuda.local.array(TN, DT)
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

        a_k = t % BK  # A loads: rows a_row + A_STEP*l of the tile, reduction offset a_k
        a_row = t // BK
        b_col = t % BN  # B loads: column b_col of the tile, reduction rows b_k + B_STEP*l
        b_k = t // BN
        col = col_first + b_col
        col_radices = column_radices(spec, gemm)
        p = b_column(digits(col, col_radices), g, spec, gemm)
        r_radices = reduction_radices(spec, gemm)
        d = digits(r_begin + b_k, r_radices)  # rung 7: digits of the next B load, stepped
        b_step = digits(B_STEP, r_radices)
        k_step = digits(BK, r_radices)

        for i in range(TM):
            start = c_init(bias, g, m_first + ty + NTY * i, DT(0), spec, gemm)
            for j in range(TN):
                acc[i, j] = start
        for r0 in range(r_begin, r_end, BK):
            r_a = r0 + a_k
            for l in range(LA):
                m = m_first + a_row + A_STEP * l
                value = DT(0)
                if m < gemm.M and r_a < r_end:
                    value = a_at(a_src, g, m, r_a, spec, gemm)
                As[a_k, a_row + A_STEP * l] = value
            r_b = r0 + b_k
            e = d
            for l in range(LB):
                value = DT(0)
                if col < gemm.COLS and r_b < r_end:
                    if DIVFREE:
                        value = b_at(b_src, e, p, value, spec, gemm)
                    else:
                        value = b_at(b_src, digits(r_b, r_radices), p, value, spec, gemm)
                Bs[b_k + B_STEP * l, b_col] = value
                if DIVFREE:
                    e = advance(e, b_step, r_radices)
                r_b += B_STEP
            if DIVFREE:
                d = advance(d, k_step, r_radices)
            cuda.syncthreads()
            for kk in range(BK):
                for i in range(TM):
                    a_frag[i] = As[kk, ty + NTY * i]
                for j in range(TN):
                    b_frag[j] = Bs[kk, tx + NTX * j]
                for i in range(TM):
                    for j in range(TN):
                        acc[i, j] += a_frag[i] * b_frag[j]
            cuda.syncthreads()  # before the next step overwrites As / Bs

        # store: this thread's columns col_first + tx + NTX*j
        q = digits(col_first + tx, col_radices)
        q_step = digits(NTX, col_radices)
        for j in range(TN):
            col_offset[j] = -1  # past the last column: not stored
            if col_first + tx + NTX * j < gemm.COLS:
                if DIVFREE:
                    col_offset[j] = c_col(q, spec, gemm)
                else:
                    col_offset[j] = c_col(digits(col_first + tx + NTX * j, col_radices),
                                          spec, gemm)
            if DIVFREE:
                q = advance(q, q_step, col_radices)
        for i in range(TM):
            m = m_first + ty + NTY * i
            if m < gemm.M:
                row_offset = c_row(g, s, m, spec, gemm)
                for j in range(TN):
                    if col_offset[j] >= 0:
                        dst[row_offset + col_offset[j]] = acc[i, j]

    return conv2d_gemm


def launch(rung: str, mode: str, operands: Operands, spec: ConvSpec, gemm: Gemm) -> None:
    """Run rung ``rung``'s ``mode`` GEMM: ``spec.groups * gemm.splits`` products ``gemm``.

    The host side of ``conv_igemm.launch``, with the rung's tile and thread block.
    """
    cfg = RUNGS[rung]
    bias = operands.bias
    if bias is None:
        bias = empty((0,), np.dtype(operands.dst.dtype))
    grid = (blocks(gemm.COLS, cfg.BN), blocks(gemm.M, cfg.BM), spec.groups * gemm.splits)
    gemm_kernel(numba_dtype(operands.dst), mode, rung)[grid, (cfg.NTX, cfg.NTY)](
        operands.a, operands.b, operands.dst.reshape(-1), bias, spec, gemm
    )  # dst is C-contiguous and ours: the kernel writes its flat view


def conv2d(x, weight, bias, spec: ConvSpec, rung: str):
    """Forward conv by rung ``rung``'s implicit GEMM on device arrays.

    x : (N, C_in, H, W), weight : (C_out, C_in // groups, kH, kW), bias : (C_out,), a
    length-0 array or None; returns y : (N, C_out, H_out, W_out).
    """
    gemm = unsplit(M=spec.C_out // spec.groups,
                   R=(spec.C_in // spec.groups) * spec.kH * spec.kW,
                   COLS=spec.N * spec.H_out * spec.W_out)
    y = empty(spec.y_shape, x.dtype)
    launch(rung, "forward", Operands(a=weight, b=x, dst=y, bias=bias), spec, gemm)
    return y
