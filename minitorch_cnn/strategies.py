"""Hypothesis strategies that build valid problems directly (the tests' and ``check``'s).

Each strategy draws the hyper-parameters first (kernel, stride, padding, dilation, groups),
then an output size, and derives an input size that produces it, so nothing is filtered away.
Kernels are drawn with independent height and width, and inputs are never square (a drawn
``H == W`` gets one more column), so a flipped kernel or a swapped axis cannot pass. Array
values come from a NumPy generator seeded by hypothesis (fast, and shrinkable through that
random seed).

``max_size`` scales every dimension down for slow backends (the CUDA simulator).
``without`` names hyper-parameters not to draw (a set of names from :data:`FEATURES`): the
argument is then left out of ``kwargs``, so the function under test gets its default, and a
learner's first attempt (no groups, no dilation) can be graded on the cases it claims
(:func:`minitorch_cnn.check`). This module needs hypothesis (the ``dev`` or ``check`` extra);
``import minitorch_cnn`` does not import it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st

from kernels.common import conv_output_size, pool_output_size

from .check import FEATURES


class ConvProblem(NamedTuple):
    x: np.ndarray  # (N, C_in, H, W)
    weight: np.ndarray  # (C_out, C_in // groups, kH, kW)
    bias: np.ndarray | None  # (C_out,)
    grad_y: np.ndarray  # (N, C_out, H_out, W_out)
    kwargs: dict[str, Any]  # stride, padding, dilation, groups


class PoolProblem(NamedTuple):
    x: np.ndarray  # (N, C, H, W)
    grad_y: np.ndarray  # (N, C, H_out, W_out)
    kwargs: dict[str, Any]


class Corr2dProblem(NamedTuple):
    X: np.ndarray  # (H, W)
    K: np.ndarray  # (kh, kw)




def _values(rng: np.random.Generator, shape, dtype, ties: bool = False) -> np.ndarray:
    """Normal values, or small integers (many ties) when ``ties``."""
    if ties:
        return rng.integers(-2, 3, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _pair(draw, lo: int, hi: int) -> tuple[int, int]:
    return (draw(st.integers(lo, hi)), draw(st.integers(lo, hi)))


def _only(kwargs: dict[str, Any], on: dict[str, bool]) -> dict[str, Any]:
    """``kwargs`` without the arguments whose feature is off (the function's default applies)."""
    return {name: value for name, value in kwargs.items() if on.get(name, True)}


def _compact(pair: tuple[int, int], draw):
    """Pass a pair as an int when both are equal, sometimes, to exercise both spellings.

    The boolean is drawn whether or not the pair is equal, so that shrinking a stride to
    ``(1, 1)`` does not shift every later choice (hypothesis then could not shrink further).
    """
    as_int = draw(st.booleans())
    if pair[0] == pair[1] and as_int:
        return pair[0]
    return pair


@st.composite
def conv_problems(draw, dtype=np.float64, max_size: int = 8,
                  without: Collection[str] = ()) -> ConvProblem:
    """A valid conv2d problem: draw hyper-parameters, an output size, derive the input size."""
    small = max_size <= 4
    on = {name: name not in without for name in FEATURES["conv"]}
    on["padding_strings"] &= on["padding"]
    groups = draw(st.sampled_from(([1, 1, 2, 3] if not small else [1, 2]) if on["groups"]
                                  else [1]))
    C_in = groups * draw(st.integers(1, 2 if small else 3))
    C_out = groups * draw(st.integers(1, 2 if small else 3))
    N = draw(st.integers(1, 2 if small else 3))
    kernel = _pair(draw, 1, min(4, max_size))
    dilations = [(1, 1), (1, 1), (2, 1), (1, 2), (2, 2)]
    dilation = draw(st.sampled_from(dilations if on["dilation"] else [(1, 1)]))
    mode = draw(st.sampled_from(["int", "int", "int", "same", "valid"] if on["padding_strings"]
                                else ["int"]))
    # Every mode draws the same choices: hypothesis's shrinker prefers fewer choices to
    # smaller values, so a mode that drew fewer would win every shrink with large arrays.
    stride = _pair(draw, 1, 3 if on["stride"] and mode != "same" else 1)
    pads = _pair(draw, 0, 2 if on["padding"] and mode == "int" else 0)
    compact_pads = _compact(pads, draw)
    padding = mode if mode != "int" else compact_pads
    size = []
    for i in range(2):
        out = draw(st.integers(1, max_size if mode == "same" else max(1, max_size // 2)))
        extra = draw(st.integers(0, stride[i] - 1))  # leftover cells the stride skips
        if mode == "same":  # H_out = H
            size.append(out)
            continue
        reach = dilation[i] * (kernel[i] - 1) + 1
        # the smallest input giving `out` outputs, plus up to stride-1 leftover cells
        need = (out - 1) * stride[i] + reach - 2 * pads[i]
        size.append(max(need, 1) + extra)
        if size[-1] + 2 * pads[i] < reach:  # padding larger than needed: grow the input
            size[-1] = reach - 2 * pads[i]
    H, W = size
    W += H == W  # non-square (one more column may add an output column: derived below)
    random_seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(random_seed)
    x = _values(rng, (N, C_in, H, W), dtype)
    weight = _values(rng, (C_out, C_in // groups) + kernel, dtype)
    bias = _values(rng, (C_out,), dtype) if on["bias"] and draw(st.booleans()) else None
    if padding == "same":
        H_out, W_out = H, W
    else:
        H_out = conv_output_size(H, kernel[0], stride[0], pads[0], dilation[0])
        W_out = conv_output_size(W, kernel[1], stride[1], pads[1], dilation[1])
    grad_y = _values(rng, (N, C_out, H_out, W_out), dtype)
    kwargs = dict(
        stride=_compact(stride, draw),
        padding=padding,
        dilation=_compact(dilation, draw),
        groups=groups,
    )
    return ConvProblem(x, weight, bias, grad_y, _only(kwargs, on))


@st.composite
def pool_problems(draw, kind: str, dtype=np.float64, max_size: int = 8,
                  without: Collection[str] = ()) -> PoolProblem:
    """A valid max/avg pooling problem, including ceil-mode windows that start in the padding.

    ``kind`` is ``"max"`` or ``"avg"``. Max pooling draws tied values (small integers) half
    of the time, and now and then a NaN, so the tie and NaN rules are exercised.
    """
    small = max_size <= 4
    on = {name: name not in without for name in FEATURES[kind]}
    kernel = _pair(draw, 1, min(4, max_size))
    # None (stride = kernel_size) or a pair; both drawn always, so shrinks stay aligned
    default_stride = draw(st.booleans()) if on["stride"] else True
    stride = _pair(draw, 1, 3 if on["stride"] else 1)
    stride = None if default_stride else stride
    if on["padding"]:
        padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    else:
        padding = (0, 0)
    dilation = (1, 1)
    if kind == "max" and on["dilation"]:
        dilation = draw(st.sampled_from([(1, 1), (1, 1), (2, 1), (1, 2), (2, 2)]))
    ceil_mode = draw(st.booleans()) if on["ceil_mode"] else False
    s = kernel if stride is None else stride
    size = []
    for i in range(2):
        reach = dilation[i] * (kernel[i] - 1) + 1
        # at least `dilation` cells, so every dilated window holds a real cell (a window of
        # only padding makes torch's max-pool backward corrupt memory)
        smallest = max(reach - 2 * padding[i], dilation[i], 1)
        size.append(smallest + draw(st.integers(0, max_size - 1)))
    H, W = size
    W += H == W  # non-square
    N = draw(st.integers(1, 2 if small else 3))
    C = draw(st.integers(1, 2 if small else 3))
    random_seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(random_seed)
    ties = kind == "max" and draw(st.booleans())
    x = _values(rng, (N, C, H, W), dtype, ties=ties)
    if kind == "max" and on["nan"] and draw(st.integers(0, 4)) == 4:  # sprinkle NaNs
        x.flat[rng.integers(0, x.size, size=2)] = np.nan
    H_out = pool_output_size(H, kernel[0], s[0], padding[0], dilation[0], ceil_mode)
    W_out = pool_output_size(W, kernel[1], s[1], padding[1], dilation[1], ceil_mode)
    grad_y = _values(rng, (N, C, H_out, W_out), dtype)
    spelled_stride = _compact(s, draw)  # drawn also for None, so shrinks stay aligned
    kwargs: dict[str, Any] = dict(
        kernel_size=_compact(kernel, draw),
        stride=None if stride is None else spelled_stride,
        padding=_compact(padding, draw),
        ceil_mode=ceil_mode,
    )
    if kind == "max":
        kwargs["dilation"] = _compact(dilation, draw)
    else:
        if on["count_include_pad"]:
            kwargs["count_include_pad"] = draw(st.booleans())
        if on["divisor_override"]:
            divisor, override = draw(st.integers(1, 5)), draw(st.booleans())
            kwargs["divisor_override"] = divisor if override else None
    return PoolProblem(x, grad_y, _only(kwargs, on))


@st.composite
def adaptive_problems(draw, dtype=np.float64, max_size: int = 8) -> PoolProblem:
    """Adaptive average pooling: any input size, any output size (also larger), or None."""
    H, W = _pair(draw, 1, max_size + 1)
    oh = draw(st.one_of(st.none(), st.integers(1, H + 2)))
    ow = draw(st.integers(1, W + 2))
    N = draw(st.integers(1, 2))
    C = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _values(rng, (N, C, H, W), dtype)
    out_h = H if oh is None else oh
    grad_y = _values(rng, (N, C, out_h, ow), dtype)
    output_size = (oh, ow) if oh is None or oh != ow or draw(st.booleans()) else oh
    return PoolProblem(x, grad_y, dict(output_size=output_size))


@st.composite
def corr2d_problems(draw, dtype=np.float64, max_size: int = 8,
                    without: Collection[str] = ()) -> Corr2dProblem:
    """A single-channel cross-correlation: a kernel, then an input at least as large.

    The input is never square and the kernel is drawn with independent height and width, so
    a flipped kernel or a transposed input cannot pass. ``without`` is accepted for symmetry.
    """
    kh, kw = _pair(draw, 1, min(4, max_size))
    H = kh + draw(st.integers(0, max_size - 1))
    W = kw + draw(st.integers(0, max_size - 1))
    W += H == W  # non-square
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return Corr2dProblem(_values(rng, (H, W), dtype), _values(rng, (kh, kw), dtype))
