"""Conv backward on the device: grad_input, grad_weight (split reduction), grad_bias.

What changes relative to ``kernels.naive``'s backward, which scatters ``grad_y * weight``
into ``grad_x`` window by window: on a GPU a scatter means many threads adding to the same
element (atomics, and a sum order that changes from run to run). Every kernel here is a
*gather* instead: each thread owns the elements it writes, so there are no atomics and the
result is deterministic.

- ``grad_x``: the implicit GEMM of the transposed problem (``conv_igemm``, mode
  ``grad_input``): ``grad_x`` is the cross-correlation of the stride-dilated ``grad_y``
  with the flipped kernel, summed over the output channels of the group. Rungs 1 and 2
  (``naive``, ``direct``) use the one-thread-per-element gather of ``conv_direct``.
- ``grad_weight``: the implicit GEMM reducing over ``N*H_out*W_out`` (mode ``grad_weight``).
  That reduction is long and the output (``C_out x C_in/groups*kH*kW``) is small, so the
  reduction is cut into ``splits`` chunks that run as separate blocks, each writing its own
  partial sum; :func:`sum_splits_kernel` then adds the partials in a fixed order.
- ``grad_bias``: :func:`bias_grad_kernel`, one block per output channel, a tree reduction in
  shared memory.

``conv_algorithm("naive")`` / ``("direct")`` run the direct kernels (in their thread
order); every GEMM rung (``conv_gemm.RUNGS``, ``"igemm"``) runs its own kernel on the same
three GEMMs; ``"tiled"`` runs igemm's (the tiled rung is a forward-pass lesson only). Every
function takes its device arrays and the problem's :class:`kernels.common.ConvSpec`.
"""

from __future__ import annotations

from numba import cuda

from kernels.common import ConvGrads, ConvSpec

from . import conv_direct, conv_gemm, conv_igemm
from ._arrays import block_tree_sum, blocks, empty, kernel_cache, numba_dtype, sm_count

REDUCE_THREADS = 256  # threads of a grad_bias block: the slots its tree reduction halves
SUM_THREADS = 256  # threads per block of sum_splits, one (co, k) each


@kernel_cache
def bias_grad_kernel(DT):
    """Build the grad_bias reduction kernel for dtype ``DT``."""

    @cuda.jit
    def conv2d_grad_bias(grad_y, grad_b):
        """grad_b[co] = sum_{n, ho, wo} grad_y[n, co, ho, wo].

        Block ``blockIdx.x`` reduces channel ``co = blockIdx.x``. Thread ``threadIdx.x``
        first sums the elements ``e = threadIdx.x, threadIdx.x + 256, ...`` of the flattened
        ``(n, ho*wo)`` plane (consecutive threads read consecutive ``wo``: coalesced), then
        ``block_tree_sum`` halves the 256 partial sums in shared memory (``partial``) in
        ``log2(256)`` steps.
        """
        partial = cuda.shared.array(REDUCE_THREADS, DT)
        N, C, Ho, Wo = grad_y.shape
        co = cuda.blockIdx.x
        t = cuda.threadIdx.x
        HW = Ho * Wo
        acc = DT(0)
        for e in range(t, N * HW, REDUCE_THREADS):
            n = e // HW
            hw = e - n * HW
            acc += grad_y[n, co, hw // Wo, hw - (hw // Wo) * Wo]
        partial[t] = acc
        block_tree_sum(partial, t)  # partial[0]: the block's total
        if t == 0:
            grad_b[co] = partial[0]

    return conv2d_grad_bias


@kernel_cache
def sum_splits_kernel(DT):
    """Build the kernel that adds the split partial sums of grad_weight, for dtype ``DT``."""

    @cuda.jit
    def sum_splits(partial, out):
        """out[co, k] = sum_s partial[s, co, k], adding s = 0, 1, ... in order.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one ``(co, k)``; ``threadIdx.x``
        walks ``k``, the contiguous axis. No shared memory.
        """
        S, C, K = partial.shape
        index = cuda.grid(1)
        if index >= C * K:
            return
        co = index // K
        k = index - co * K
        acc = DT(0)
        for s in range(S):
            acc += partial[s, co, k]
        out[co, k] = acc

    return sum_splits


def grad_bias(grad_y):
    """grad_y : (N, C_out, H_out, W_out) -> (C_out,), ``grad_y.sum((0, 2, 3))``."""
    C_out = grad_y.shape[1]
    grad_b = empty((C_out,), grad_y.dtype)
    bias_grad_kernel(numba_dtype(grad_y))[C_out, REDUCE_THREADS](grad_y, grad_b)
    return grad_b


def choose_splits(M: int, COLS: int, R: int, groups: int, tile: str,
                  rung: str = "igemm") -> int:
    """How many chunks to cut grad_weight's reduction into.

    Enough blocks to give every multiprocessor two, but every chunk at least 8 tiles deep
    (shorter chunks spend more on writing and summing partials than they save). ``tile``
    is igemm's; another GEMM ``rung`` has its own.
    """
    BM, BN, BK = _tile_of(rung, tile)
    base = blocks(M, BM) * blocks(COLS, BN) * groups
    wanted = -(-2 * sm_count() // base)
    return max(1, min(wanted, R // (8 * BK)))


def _tile_of(rung: str, tile: str | None) -> tuple[int, int, int]:
    """``(BM, BN, BK)`` of GEMM rung ``rung`` (igemm: of its ``tile``)."""
    if rung == "igemm":
        return conv_igemm.CONFIGS[tile]
    cfg = conv_gemm.RUNGS[rung]
    return cfg.BM, cfg.BN, cfg.BK


def _launch(rung: str, mode: str, operands, spec: ConvSpec, gemm, tile: str | None) -> None:
    """One GEMM of ``mode`` with rung ``rung`` (igemm: with ``tile``, ``None`` picks it)."""
    if rung == "igemm":
        conv_igemm.launch(mode, operands, spec, gemm,
                          tile or conv_igemm.pick_tile(gemm.M, gemm.COLS, spec.groups))
    else:
        conv_gemm.launch(rung, mode, operands, spec, gemm)


def grad_input_igemm(grad_y, weight, spec: ConvSpec, tile: str | None = None,
                     rung: str = "igemm"):
    """grad_x (N, C_in, H, W) by the implicit GEMM of the transposed problem.

    grad_y : (N, C_out, H_out, W_out), weight : (C_out, C_in // groups, kH, kW). One GEMM
    per stride phase (:func:`conv_igemm.grad_input_phases`), each writing the input pixels
    ``(h0 + stride_h*h2, w0 + stride_w*w2)`` of its phase; together they cover grad_x.
    ``tile=None`` picks each phase's tile with :func:`conv_igemm.pick_tile`; ``rung`` (a key
    of ``conv_gemm.RUNGS``, or ``"igemm"``) is the GEMM kernel that runs.
    """
    grad_x = empty(spec.x_shape, weight.dtype)
    operands = conv_igemm.Operands(a=weight, b=grad_y, dst=grad_x, bias=None)
    for phase in conv_igemm.grad_input_phases(spec):
        gemm = conv_igemm.unsplit(M=spec.C_in // spec.groups,
                                  R=(spec.C_out // spec.groups) * phase.ni * phase.nj,
                                  COLS=spec.N * phase.H_p * phase.W_p, phase=phase)
        _launch(rung, "grad_input", operands, spec, gemm, tile)
    return grad_x


def grad_weight_igemm(grad_y, x, spec: ConvSpec, splits: int | None = None,
                      tile: str | None = None, rung: str = "igemm"):
    """grad_w (C_out, C_in // groups, kH, kW) by implicit GEMM over ``N*H_out*W_out``.

    grad_y : (N, C_out, H_out, W_out), x : (N, C_in, H, W). The reduction is cut into about
    ``splits`` chunks (``None``: :func:`choose_splits`), whose partial sums
    :func:`sum_splits_kernel` adds in order. ``tile=None`` picks the tile with
    :func:`conv_igemm.pick_tile`; ``rung`` (a key of ``conv_gemm.RUNGS``, or ``"igemm"``) is
    the GEMM kernel that runs.
    """
    M = spec.C_out // spec.groups
    COLS = (spec.C_in // spec.groups) * spec.kH * spec.kW
    R = spec.N * spec.H_out * spec.W_out
    tile = tile or conv_igemm.pick_tile(M, COLS, spec.groups)
    if splits is None:
        splits = choose_splits(M, COLS, R, spec.groups, tile, rung)
    r_chunk, splits = conv_igemm.split_reduction(R, splits, _tile_of(rung, tile)[2],
                                                 spec.groups)
    gemm = conv_igemm.Gemm(M=M, R=R, COLS=COLS, r_chunk=r_chunk, splits=splits,
                           phase=conv_igemm.NO_PHASE)
    partial = empty((splits, spec.C_out, COLS), x.dtype)  # (splits, C_out, C_in_g*kH*kW)
    _launch(rung, "grad_weight", conv_igemm.Operands(a=grad_y, b=x, dst=partial, bias=None),
            spec, gemm, tile)
    if splits == 1:
        return partial.reshape(spec.weight_shape)  # (1, C_out, K) -> (C_out, C_in_g, kH, kW)
    grad_w = empty((spec.C_out, COLS), x.dtype)
    sum_splits_kernel(numba_dtype(x))[blocks(spec.C_out * COLS, SUM_THREADS), SUM_THREADS](
        partial, grad_w)
    return grad_w.reshape(spec.weight_shape)  # (C_out, C_in_g*kH*kW) -> (C_out, C_in_g, kH, kW)


def conv2d_backward(grad_y, x, weight, spec: ConvSpec, algorithm: str,
                    needs_input_grad=(True, True, True)) -> ConvGrads:
    """ConvGrads(grad_x, grad_weight, grad_bias) on device arrays, with the rung ``algorithm``.

    grad_y : (N, C_out, H_out, W_out), x : (N, C_in, H, W), weight : (C_out, C_in // groups,
    kH, kW); ``algorithm`` ``"naive"`` / ``"direct"`` runs :mod:`conv_direct`'s gathers, a
    key of ``conv_gemm.RUNGS`` that rung's GEMMs, anything else igemm's (tile and split count
    chosen per problem). ``needs_input_grad`` (PyTorch's ``output_mask``): a gradient not
    asked for is not launched and comes back as ``None``.
    """
    need_x, need_w, need_b = needs_input_grad
    grad_b = grad_bias(grad_y) if need_b else None
    if algorithm in ("naive", "direct"):
        coalesced = algorithm == "direct"
        grad_x = conv_direct.grad_input(grad_y, weight, spec, coalesced) if need_x else None
        grad_w = conv_direct.grad_weight(grad_y, x, spec, coalesced) if need_w else None
    else:
        rung = algorithm if algorithm in conv_gemm.RUNGS else "igemm"
        grad_x = grad_input_igemm(grad_y, weight, spec, rung=rung) if need_x else None
        grad_w = grad_weight_igemm(grad_y, x, spec, rung=rung) if need_w else None
    return ConvGrads(grad_x, grad_w, grad_b)
