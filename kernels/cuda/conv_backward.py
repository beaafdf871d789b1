"""Conv backward on the device: grad_input, grad_weight (split reduction), grad_bias.

What changes relative to ``kernels.naive``'s backward, which scatters ``grad_y * weight``
into ``grad_x`` window by window: on a GPU a scatter means many threads adding to the same
element (atomics, and a sum order that changes from run to run). Every kernel here is a
*gather* instead: each thread owns the elements it writes, so there are no atomics and the
result is deterministic.

- ``grad_x``: the implicit GEMM of the transposed problem (``conv_igemm``, mode
  ``grad_input``): ``grad_x`` is the cross-correlation of the stride-dilated ``grad_y``
  with the flipped kernel, summed over the output channels of the group. Rung (a) uses the
  one-thread-per-element gather of ``conv_direct``.
- ``grad_weight``: the implicit GEMM reducing over ``N*H_out*W_out`` (mode ``grad_weight``).
  That reduction is long and the output (``C_out x C_in/groups*kH*kW``) is small, so the
  reduction is cut into ``splits`` chunks that run as separate blocks, each writing its own
  partial sum; :func:`sum_splits_kernel` then adds the partials in a fixed order.
- ``grad_bias``: :func:`bias_grad_kernel`, one block per output channel, a tree reduction in
  shared memory.

``conv_algorithm("direct")`` runs the direct kernels; ``"tiled"`` and ``"igemm"`` both run
the implicit GEMMs (the tiled rung is a forward-pass lesson only).
"""

from __future__ import annotations

from numba import cuda

from . import conv_direct, conv_igemm
from ._arrays import block_tree_sum, blocks, conv_geometry, empty, kernel_cache, sm_count

REDUCE_THREADS = 256


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


def grad_bias(grad_y, DT):
    """grad_y : (N, C_out, H_out, W_out) -> (C_out,), ``grad_y.sum((0, 2, 3))``."""
    C_out = grad_y.shape[1]
    grad_b = empty((C_out,), grad_y.dtype)
    bias_grad_kernel(DT)[C_out, REDUCE_THREADS](grad_y, grad_b)
    return grad_b


def choose_splits(M: int, COLS: int, R: int, groups: int, tile: str) -> int:
    """How many chunks to cut grad_weight's reduction into.

    Enough blocks to give every multiprocessor two, but every chunk at least 8 tiles deep
    (shorter chunks spend more on writing and summing partials than they save).
    """
    BM, BN, BK = conv_igemm.CONFIGS[tile]
    base = blocks(M, BM) * blocks(COLS, BN) * groups
    wanted = -(-2 * sm_count() // base)
    return max(1, min(wanted, R // (8 * BK)))


def grad_input_igemm(grad_y, x_shape, weight, geom, groups, DT, tile=None):
    """grad_x (N, C_in, H, W) by the implicit GEMM of the transposed problem.

    One GEMM per stride phase (:func:`conv_igemm.grad_input_phases`), each writing the
    input pixels ``(a + sH*h2, b + sW*w2)`` of its phase; together they cover grad_x.
    """
    N, C_in, H, W = x_shape
    C_out, C_in_g, kh, kw = weight.shape
    stride, padding, dilation = geom[9:11], geom[11:13], geom[13:15]
    grad_x = empty(x_shape, weight.dtype)
    for Hp, Wp, ni, nj, phase in conv_igemm.grad_input_phases(H, W, (kh, kw), stride,
                                                              padding, dilation):
        conv_igemm.launch("grad_input", DT, weight, grad_y, grad_x, None, C_in_g,
                          (C_out // groups) * ni * nj, N * Hp * Wp, groups, geom + phase,
                          tile=tile)
    return grad_x


def grad_weight_igemm(grad_y, x, w_shape, geom, groups, DT, splits=None, tile=None):
    """grad_w (C_out, C_in // groups, kH, kW) by implicit GEMM over ``N*H_out*W_out``.

    ``splits=None`` picks the split count with :func:`choose_splits`.
    """
    N, C_out, Ho, Wo = grad_y.shape
    _, C_in_g, kh, kw = w_shape
    M, COLS, R = C_out // groups, C_in_g * kh * kw, N * Ho * Wo
    tile = tile or conv_igemm.pick_tile(M, COLS, groups)
    if splits is None:
        splits = choose_splits(M, COLS, R, groups, tile)
    _, splits = conv_igemm.split_reduction(R, splits, conv_igemm.CONFIGS[tile][2], groups)
    partial = empty((splits, C_out, COLS), x.dtype)  # (splits, C_out, C_in_g*kH*kW)
    used = conv_igemm.launch("grad_weight", DT, grad_y, x, partial, None, M, R, COLS, groups,
                             geom, splits=splits, tile=tile)
    assert used == splits
    if splits == 1:
        return partial.reshape(w_shape)  # (1, C_out, K) -> (C_out, C_in_g, kH, kW)
    grad_w = empty((C_out, COLS), x.dtype)
    sum_splits_kernel(DT)[blocks(C_out * COLS, 256), 256](partial, grad_w)
    return grad_w.reshape(w_shape)  # (C_out, C_in_g*kH*kW) -> (C_out, C_in_g, kH, kW)


def conv2d_backward(grad_y, x, weight, stride, padding, dilation, groups, DT, algorithm,
                    splits=None, tile=None):
    """(grad_x, grad_weight, grad_bias) on device arrays, with the rung ``algorithm``."""
    geom = conv_geometry(x.shape, weight.shape, grad_y.shape, stride, padding, dilation, groups)
    grad_b = grad_bias(grad_y, DT)
    if algorithm == "direct":
        grad_x = conv_direct.grad_input(grad_y, x.shape, weight, stride, padding, dilation,
                                        groups, DT)
        grad_w = conv_direct.grad_weight(grad_y, x, weight.shape, stride, padding, dilation,
                                         groups, DT)
    else:
        grad_x = grad_input_igemm(grad_y, x.shape, weight, geom, groups, DT, tile=tile)
        grad_w = grad_weight_igemm(grad_y, x, weight.shape, geom, groups, DT, splits, tile)
    return grad_x, grad_w, grad_b
