"""The numba backend's sub-pixel conv_transpose2d kernels, against PyTorch, and their dispatch.

``kernels/numba_cpu/conv_transpose.py`` computes a strided transposed conv phase by phase
(its header says how). The public tests (``test_conv_transpose.py``) reach these kernels only
where ``subpixel_wins`` sends them, with the work split ``conv_plan`` picks; here the kernels
are called directly on every geometry, stride 1 included, with drawn work splits (lanes,
chunks of several samples) and plane blocks smaller than the planes, so that every loop of
the kernels runs: blocks cut inside a group, partial grad_x sums, phases of unequal size,
taps that fall wholly in the padding. float64 is compared tightly, float32 loosely
(``checks.TOLERANCE``). The backward is the GEMM kernel with its im2col read phase by phase
(``phases=1``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels.numba_cpu as nb
from kernels.common import conv_transpose_output_size, conv_transpose_spec
from kernels.numba_cpu import conv_transpose as ct
from kernels.numba_cpu.conv_gemm import GemmPlan
from minitorch_cnn import functional as F

from .checks import DTYPES, check_against_torch

dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])


@st.composite
def subpixel_problems(draw, dtype):
    """A valid conv_transpose2d problem, a work split and a plane block (forward) for the kernels.

    Returns ``(x (N, C_in, H, W), weight (C_in, C_out // groups, kH, kW), grad_y (N, C_out,
    H_y, W_y), kwargs, plan, block)``; strides up to 3, asymmetric kernels up to 4x4,
    dilation, output_padding below ``max(stride, dilation)`` (PyTorch's rule), padding up to
    2 while the output keeps a cell, non-square inputs.
    """
    groups = draw(st.integers(1, 2))
    C_in_g, C_out_g = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    N = draw(st.integers(1, 4))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = draw(st.sampled_from([(1, 1), (1, 1), (2, 1), (1, 2), (2, 3)]))
    H, W = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    W += H == W  # non-square
    output_padding, padding, out = [], [], []
    for i, size in enumerate((H, W)):
        op = draw(st.integers(0, max(stride[i], dilation[i]) - 1))
        most = conv_transpose_output_size(size, kernel[i], stride[i], 0, op, dilation[i]) - 1
        p = draw(st.integers(0, min(2, most // 2)))
        output_padding.append(op)
        padding.append(p)
        out.append(conv_transpose_output_size(size, kernel[i], stride[i], p, op, dilation[i]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, C_in_g * groups, H, W)).astype(dtype)
    weight = rng.standard_normal((C_in_g * groups, C_out_g) + kernel).astype(dtype)
    grad_y = rng.standard_normal((N, C_out_g * groups, *out)).astype(dtype)
    kwargs = dict(stride=stride, padding=tuple(padding), output_padding=tuple(output_padding),
                  groups=groups, dilation=dilation)
    lanes = draw(st.integers(1, min(2, N)))
    plan = GemmPlan(lanes=lanes, chunks=draw(st.integers(lanes, N)), in_place_1x1=0, has_bias=0)
    block = draw(st.integers(1, C_out_g))
    return x, weight, grad_y, kwargs, plan, block


def _spec(x, weight, kwargs):
    pairs = {k: kwargs[k] for k in ("stride", "padding", "output_padding", "dilation")}
    return conv_transpose_spec(x.shape, weight.shape, kwargs["groups"], **pairs)


@dtypes
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_subpixel_forward_matches_torch(dtype, data):
    x, weight, _, kwargs, plan, block = data.draw(subpixel_problems(dtype))
    spec = _spec(x, weight, kwargs)
    w_rows = ct._weight_by_rows(weight, kwargs["groups"])  # (groups, K, C_out // groups)
    ours = ct._conv_transpose2d_subpixel(x, w_rows, spec, plan, block)
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(weight), **kwargs).numpy()
    check_against_torch(ours, expected, f"y {kwargs} {plan} block {block}")


@dtypes
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_subpixel_backward_matches_torch(dtype, data):
    x, weight, grad_y, kwargs, plan, _ = data.draw(subpixel_problems(dtype))
    spec = _spec(x, weight, kwargs)
    grad_x, grad_w = ct._conv_transpose2d_backward_gemm(grad_y, x, weight, spec, plan, 1)
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(weight).requires_grad_()
    torch.nn.functional.conv_transpose2d(xt, wt, **kwargs).backward(torch.from_numpy(grad_y))
    check_against_torch(grad_x, xt.grad.numpy(), f"grad_x {kwargs} {plan}")
    check_against_torch(grad_w, wt.grad.numpy(), f"grad_weight {kwargs} {plan}")


@pytest.mark.parametrize("geometry, wins", [
    (dict(kernel_size=4, stride=2, padding=1), True),  # DCGAN: 2x2 taps a phase
    (dict(kernel_size=3, stride=2, padding=1), True),  # overlapping along both axes
    (dict(kernel_size=(4, 2), stride=2), True),  # overlapping along H only
    (dict(kernel_size=2, stride=2), False),  # U-Net: one tap a phase, no overlap
    (dict(kernel_size=(2, 3), stride=(2, 3)), False),
    (dict(kernel_size=3, stride=1, padding=1), False),  # stride 1: one phase
    (dict(kernel_size=2, stride=2, dilation=2), True),  # dilated taps overlap
])
def test_dispatch_takes_the_subpixel_kernels_only_where_they_won(monkeypatch, geometry, wins):
    calls = []  # the sub-pixel forward's calls, and the backward's ``phases`` flags
    forward, backward = nb._conv_transpose2d_subpixel, nb._conv_transpose2d_backward_gemm
    monkeypatch.setattr(nb, "_conv_transpose2d_subpixel",
                        lambda *a: (calls.append("forward"), forward(*a))[1])
    monkeypatch.setattr(nb, "_conv_transpose2d_backward_gemm",
                        lambda *a: (a[-1] and calls.append("backward"), backward(*a))[1])
    k = geometry["kernel_size"]
    k = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 40, 6, 5)).astype(np.float32)  # many channels: a GEMM path
    weight = rng.standard_normal((40, 24, *k)).astype(np.float32)
    kwargs = {key: value for key, value in geometry.items() if key != "kernel_size"}
    y = F.conv_transpose2d(x, weight, None, **kwargs, backend="numba")
    grads = F.conv_transpose2d_backward(np.ones_like(y), x, weight, **kwargs, backend="numba")
    expected = torch.nn.functional.conv_transpose2d(torch.from_numpy(x),
                                                    torch.from_numpy(weight), **kwargs)
    check_against_torch(y, expected.numpy())
    assert grads.grad_x.shape == x.shape
    assert len(calls) == (2 if wins else 0), calls
