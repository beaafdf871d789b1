"""Rung (b) of the conv ladder: the classic tiled 2-D convolution in shared memory.

What changes relative to rung (a), ``conv_direct``: a block of ``TH x TW`` threads computes a
``TH x TW`` tile of one output plane ``y[n, co]``. For each input channel it first copies the
input patch the whole tile needs (the tile plus its halo, ``(TH-1)*sH + (kH-1)*dH + 1`` rows by
``(TW-1)*sW + (kW-1)*dW + 1`` columns) and the ``kH x kW`` filter slice into shared memory,
once, cooperatively; then every thread reads its window from shared memory. Each input value
is read from global memory once per block instead of once per output that sees it (up to
``kH*kW`` times in rung (a)).

What it does not fix: blocks computing different output channels ``co`` of the same image
copy the same input patch again, and every multiply needs two shared-memory reads. Rung (c),
``conv_igemm``, reuses each loaded value across many output channels *and* pixels from
registers.

The shared buffers have a fixed capacity (:data:`SMEM_X`, :data:`SMEM_W` elements). The host
shrinks the tile until the patch fits; if even a 1 x 1 tile's patch (a huge dilated kernel) or
the filter slice does not fit, :func:`conv2d` returns ``None`` and the caller runs rung (a).
"""

from __future__ import annotations

from typing import NamedTuple

from numba import cuda

from kernels.common import ConvSpec

from ._arrays import blocks, empty, kernel_cache, numba_dtype

SMEM_X = 4096  # input patch capacity, elements (16 KiB in float32, 32 KiB in float64)
SMEM_W = 1024  # filter slice capacity, elements (kH * kW)
MAX_TILE = 16  # output tile of at most 16 x 16 threads
MAX_GRID_Z = 65535  # CUDA's limit on gridDim.z; larger N*C_out loop inside the block


@kernel_cache
def tiled_kernel(DT):
    """Build the tiled forward kernel for dtype ``DT`` (``numba.float32`` / ``float64``)."""

    @cuda.jit
    def conv2d_tiled(x, weight, bias, y, spec):
        """One block computes a ``blockDim.y x blockDim.x`` tile of the output plane y[n, co].

        ``spec`` is the problem's ``ConvSpec``; ``bias`` has length 0 when there is none.
        Thread ``(threadIdx.y, threadIdx.x)`` of block ``(blockIdx.x, blockIdx.y)`` computes
        ``y[n, co, blockIdx.y*TH + threadIdx.y, blockIdx.x*TW + threadIdx.x]``: ``threadIdx.x``
        walks ``w_out``. ``blockIdx.z`` (striding by ``gridDim.z``) picks ``(n, co)``.
        Shared memory: ``xs`` holds the input patch of one channel (row-major,
        ``tile_h x tile_w``, zeros where the patch hangs over the padding), ``ws`` the filter
        slice ``weight[co, c]`` (``kH x kW``). Threads past the output's edge help load and
        compute but do not store.
        """
        xs = cuda.shared.array(SMEM_X, DT)
        ws = cuda.shared.array(SMEM_W, DT)
        TW = cuda.blockDim.x
        TH = cuda.blockDim.y
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TW + tx
        n_threads = TW * TH
        ho = cuda.blockIdx.y * TH + ty
        wo = cuda.blockIdx.x * TW + tx
        h_first = cuda.blockIdx.y * TH * spec.stride_h - spec.pad_h  # the patch's top row
        w_first = cuda.blockIdx.x * TW * spec.stride_w - spec.pad_w  # and its left column
        tile_h = (TH - 1) * spec.stride_h + (spec.kH - 1) * spec.dil_h + 1
        tile_w = (TW - 1) * spec.stride_w + (spec.kW - 1) * spec.dil_w + 1
        C_in_g = spec.C_in // spec.groups
        C_out_g = spec.C_out // spec.groups
        for nc in range(cuda.blockIdx.z, spec.N * spec.C_out, cuda.gridDim.z):
            n = nc // spec.C_out
            co = nc - n * spec.C_out
            c_first = (co // C_out_g) * C_in_g
            acc = DT(0)
            for c in range(C_in_g):
                # all threads copy the patch, element e = (row, col) in row-major order, so
                # consecutive threads read consecutive columns (coalesced)
                for e in range(tid, tile_h * tile_w, n_threads):
                    row = e // tile_w
                    h = h_first + row
                    w = w_first + e - row * tile_w
                    value = DT(0)
                    if h >= 0 and h < spec.H and w >= 0 and w < spec.W:
                        value = x[n, c_first + c, h, w]
                    xs[e] = value
                for e in range(tid, spec.kH * spec.kW, n_threads):
                    ws[e] = weight[co, c, e // spec.kW, e % spec.kW]
                cuda.syncthreads()
                for i in range(spec.kH):
                    row_start = (ty * spec.stride_h + i * spec.dil_h) * tile_w + tx * spec.stride_w
                    for j in range(spec.kW):
                        acc += xs[row_start + j * spec.dil_w] * ws[i * spec.kW + j]
                cuda.syncthreads()  # before the next channel overwrites the patch
            if ho < spec.H_out and wo < spec.W_out:
                if bias.shape[0] > 0:
                    acc += bias[co]
                y[n, co, ho, wo] = acc

    return conv2d_tiled


class Tile(NamedTuple):
    """The output tile one block of :func:`tiled_kernel` computes (its thread block's shape)."""

    TH: int  # output rows of the tile (blockDim.y)
    TW: int  # output columns of the tile (blockDim.x)


def _pow2_at_least(n: int, cap: int) -> int:
    p = 1
    while p < n and p < cap:
        p *= 2
    return p


def choose_tile(spec: ConvSpec) -> Tile | None:
    """The output :class:`Tile` whose input patch fits in :data:`SMEM_X`, or ``None``.

    Starts from the output size rounded up to a power of two (at most 16 x 16) and halves
    the taller side until the patch, ``(TH-1)*stride_h + (kH-1)*dil_h + 1`` rows by
    ``(TW-1)*stride_w + (kW-1)*dil_w + 1`` columns, fits. ``None`` also when the filter
    slice (``kH*kW``) exceeds :data:`SMEM_W`.
    """
    if spec.kH * spec.kW > SMEM_W:
        return None
    TH, TW = _pow2_at_least(spec.H_out, MAX_TILE), _pow2_at_least(spec.W_out, MAX_TILE)
    while True:
        tile_h = (TH - 1) * spec.stride_h + (spec.kH - 1) * spec.dil_h + 1
        tile_w = (TW - 1) * spec.stride_w + (spec.kW - 1) * spec.dil_w + 1
        if tile_h * tile_w <= SMEM_X:
            return Tile(TH=TH, TW=TW)
        if TH == 1 and TW == 1:
            return None
        if TH >= TW:
            TH //= 2
        else:
            TW //= 2


def conv2d(x, weight, bias, spec: ConvSpec):
    """Launch :func:`tiled_kernel`; return ``y`` (N, C_out, H_out, W_out).

    x : (N, C_in, H, W), weight : (C_out, C_in // groups, kH, kW), bias : (C_out,) or a
    length-0 array (no bias). ``None`` when the patch cannot fit in shared memory (the
    caller then runs rung (a)).
    """
    tile = choose_tile(spec)
    if tile is None:
        return None
    y = empty(spec.y_shape, x.dtype)
    grid = (blocks(spec.W_out, tile.TW), blocks(spec.H_out, tile.TH),
            min(spec.N * spec.C_out, MAX_GRID_Z))
    tiled_kernel(numba_dtype(x))[grid, (tile.TW, tile.TH)](x, weight, bias, y, spec)
    return y
