"""Shapes and small records every backend shares.

The output-size formulas live here, written once, and every backend and the functional layer
call them. ``kernels`` never imports the framework or torch, so this module depends on nothing
but the standard library.
"""

from __future__ import annotations

from typing import NamedTuple


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Length of one spatial axis of a convolution output.

    ``H_out = 1 + (H + 2*padding - dilation*(kernel - 1) - 1) // stride``

    The same formula as PyTorch and ``torch/_decomp``: ``dilation*(kernel - 1) + 1`` is the
    effective (dilated) kernel extent, and the output counts the window positions that fit.
    """
    return 1 + (size + 2 * padding - dilation * (kernel - 1) - 1) // stride


def pool_output_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """Length of one spatial axis of a pooling output, PyTorch's rule to the element.

    Floor mode is :func:`conv_output_size`. In ceil mode the division rounds up, so a last,
    partial window is kept, except when that window would *start* in the right padding
    (``(out - 1) * stride >= size + padding``): such a window would see only padding, and
    PyTorch drops it.
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1  # ceil division
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1


def adaptive_bounds(index: int, in_size: int, out_size: int) -> tuple[int, int]:
    """Half-open input range ``[start, end)`` pooled into output cell ``index``.

    ``start = floor(index * in / out)``, ``end = ceil((index + 1) * in / out)``, as PyTorch.
    Neighbouring windows may overlap by one element when ``in`` is not a multiple of ``out``.
    """
    start = (index * in_size) // out_size
    end = -(-((index + 1) * in_size) // out_size)
    return start, end


def adaptive_max_window(in_size: int, out_size: int) -> int:
    """The largest window :func:`adaptive_bounds` makes along one axis."""
    return max(
        adaptive_bounds(i, in_size, out_size)[1] - adaptive_bounds(i, in_size, out_size)[0]
        for i in range(out_size)
    )


def avg_pool_divisor(
    h_start: int,
    w_start: int,
    kernel: tuple[int, int],
    size: tuple[int, int],
    padding: tuple[int, int],
    count_include_pad: bool,
    divisor_override: int | None,
) -> int:
    """The number an average-pooling window's sum is divided by (PyTorch's rule).

    ``h_start, w_start`` is the window's top-left corner in unpadded input coordinates (it may
    be negative). With ``count_include_pad`` the window is clipped to the *padded* input only,
    so padding cells count but cells past the padding (ceil mode) do not; without it only real
    input cells count. ``divisor_override`` replaces all of this.
    """
    if divisor_override is not None:
        return divisor_override
    (kh, kw), (H, W), (ph, pw) = kernel, size, padding
    h_end = min(h_start + kh, H + ph)
    w_end = min(w_start + kw, W + pw)
    if count_include_pad:
        return (h_end - h_start) * (w_end - w_start)
    h_lo, w_lo = max(h_start, 0), max(w_start, 0)
    h_hi, w_hi = min(h_end, H), min(w_end, W)
    return max(h_hi - h_lo, 0) * max(w_hi - w_lo, 0)


class ConvGrads(NamedTuple):
    """What ``conv2d_backward`` returns; unpacks like the tuple of the public API.

    grad_x : (N, C_in, H, W)
    grad_weight : (C_out, C_in // groups, kH, kW)
    grad_bias : (C_out,), ``grad_y.sum((0, 2, 3))``
    """

    grad_x: object
    grad_weight: object
    grad_bias: object


def flops_conv2d(
    N: int, C_in: int, C_out: int, H_out: int, W_out: int, kernel: tuple[int, int], groups: int
) -> int:
    """Multiply-adds times two of a conv forward: ``2*N*C_out*H_out*W_out*(C_in/groups)*kH*kW``."""
    return 2 * N * C_out * H_out * W_out * (C_in // groups) * kernel[0] * kernel[1]


__all__ = [
    "ConvGrads",
    "adaptive_bounds",
    "adaptive_max_window",
    "avg_pool_divisor",
    "conv_output_size",
    "flops_conv2d",
    "pool_output_size",
]

