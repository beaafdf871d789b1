"""Transposed convolution on the device: the conv backward kernels, run as a layer.

``conv_transpose2d`` of :mod:`kernels.naive` stamps each input pixel's kernel onto the
output, which is conv2d_backward's grad_x (naive's docstring shows it). So this module adds
no convolution kernel: ``spec`` is the :class:`kernels.common.ConvSpec` of the convolution
whose grad_x the transposed conv is (:func:`kernels.common.conv_transpose_spec`), and

- the forward is that conv's grad_x: :func:`conv_backward.grad_input_igemm` (one implicit
  GEMM per stride phase, a gather: no atomics; the rung in use) or, with
  ``conv_algorithm("direct")`` or ``("naive")``, ``conv_direct.grad_input``; then
  :func:`channel_bias_kernel` adds the bias, the one kernel of this file (the grad_x
  kernels have no bias);
- the backward's grad_x is a conv2d forward of ``grad_y`` (``kernels.cuda`` runs it with the
  rung in use), and its grad_weight is conv2d's grad_weight with ``x`` and ``grad_y``
  swapped: :func:`conv_backward.grad_weight_igemm` (split reduction) or
  ``conv_direct.grad_weight``; grad_bias is ``conv_backward.grad_bias``.

What changes relative to naive's scatter: on a GPU a scatter means atomics, so every kernel
used here is the gather form of the same sums, as in :mod:`.conv_backward`.
"""

from __future__ import annotations

from numba import cuda

from kernels.common import ConvSpec

from . import conv_backward, conv_direct, conv_gemm
from ._arrays import blocks, kernel_cache, numba_dtype, unravel4

THREADS = 256


@kernel_cache
def channel_bias_kernel(DT):
    """Build the kernel that adds a per-channel bias in place, for dtype ``DT``."""

    @cuda.jit
    def add_channel_bias(y, bias):
        """y[n, c, h, w] += bias[c], in place.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``y`` in C
        order, so ``threadIdx.x`` walks ``w`` (the contiguous axis; coalesced). No shared
        memory.
        """
        N, C, H, W = y.shape
        index = cuda.grid(1)
        if index >= N * C * H * W:
            return
        n, c, h, w = unravel4(index, C, H, W)
        y[n, c, h, w] += bias[c]

    return add_channel_bias


def _gemm_rung(algorithm: str) -> str:
    """The GEMM rung that runs the backward kernels for ``algorithm``, as in conv_backward."""
    return algorithm if algorithm in conv_gemm.RUNGS else "igemm"


def conv_transpose2d(x, weight, bias, spec: ConvSpec, algorithm: str):
    """The transposed conv's output on device arrays, with the rung ``algorithm``.

    x : (N, C_in, H, W) (the conv's grad_y, ``spec.y_shape``), weight : (C_in, C_out //
    groups, kH, kW), bias : (C_out,) or None -> y : (N, C_out, H_y, W_y) (``spec.x_shape``).
    ``"naive"`` / ``"direct"`` run ``conv_direct``'s gather, a GEMM rung its implicit GEMM,
    anything else (``"tiled"``, ``"igemm"``) igemm's, as :func:`conv_backward.conv2d_backward`.
    """
    if algorithm in ("naive", "direct"):
        y = conv_direct.grad_input(x, weight, spec, algorithm == "direct")
    else:
        y = conv_backward.grad_input_igemm(x, weight, spec, rung=_gemm_rung(algorithm))
    if bias is not None:
        total = y.size
        channel_bias_kernel(numba_dtype(y))[blocks(total, THREADS), THREADS](y, bias)
    return y


def grad_weight(grad_y, x, spec: ConvSpec, algorithm: str):
    """The transposed conv's grad_weight: conv2d's, with ``x`` in grad_y's place.

    grad_y : (N, C_out, H_y, W_y) (the conv's input), x : (N, C_in, H, W) (the conv's
    grad_y) -> (C_in, C_out // groups, kH, kW) (``spec.weight_shape``).
    """
    if algorithm in ("naive", "direct"):
        return conv_direct.grad_weight(x, grad_y, spec, algorithm == "direct")
    return conv_backward.grad_weight_igemm(x, grad_y, spec, rung=_gemm_rung(algorithm))
