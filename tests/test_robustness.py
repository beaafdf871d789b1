"""Robustness (issue 6): odd-but-valid inputs give PyTorch's answer, memory, the registry.

- Every backend gives PyTorch's answer, forward and backward, for inputs PyTorch accepts but
  that are easy to get wrong: NaN and +-inf, large (1e30 in float32, 1e299 in float64),
  near-overflow, small (1e-30, 1e-298) and subnormal magnitudes, non-contiguous /
  Fortran-order / negative-stride / broadcast / byte-swapped / read-only arrays, batch size 0,
  1x1 images and kernels as large as the image. Inputs are never modified.
- The magnitude and special-value cases use values that are small integers times a power of
  two (and integer weights, power-of-two pooling divisors), so every result is exact in any
  summation order: ours must equal torch's BIT FOR BIT, which catches a flushed subnormal or
  an overflow in our accumulation that torch does not have. One allowance, in one direction:
  where torch's own sum overflows to inf but the true result is finite, a backend may return
  the true result (checked exactly, by scaling the input down by 2**8 and the answer back up).
- An op whose output (or padded / contiguous copy of an input) would exceed
  ``functional.MAX_ARRAY_BYTES`` raises MemoryError before any kernel runs.
- A backend whose module fails to import (or reports itself unusable) is not listed, with its
  reason; ``use_backend`` does not leak between threads or asyncio tasks.

The CUDA backend runs in the simulator on a machine without a GPU, where a conv call costs
about a second: there it gets float32 only and fewer conv backward and layout cases.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from typing import NamedTuple

import numpy as np
import pytest

import minitorch_cnn as mc
import reference as R
from minitorch_cnn import backend as registry
from minitorch_cnn import functional as F

from .checks import BACKENDS, _cuda_simulated, check_against_torch

pytestmark = [
    pytest.mark.filterwarnings("ignore:Using padding='same'"),
    # the CUDA simulator runs kernels in its own threads, outside functional's np.errstate
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


def host(a) -> np.ndarray:
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


# --------------------------------------------------------------------------- value cases

# x (N, C, H, W) = (2, 2, 5, 4); conv weight (2, 2, 3, 2).
N, C, H, W = 2, 2, 5, 4
CONV = dict(stride=(1, 2), padding=1)  # y (2, 2, 5, 3)
MAX = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True)
AVG = dict(kernel_size=2, stride=1, padding=1, count_include_pad=False)  # divisors 1, 2, 4
ADAPTIVE = dict(output_size=(4, 3))  # every window 2 x 2 cells on a 5 x 4 input

CASES = ["nan", "inf", "large", "near_overflow", "small", "subnormal"]

# Known divergences from torch: (backend, op, case). Such a test is a strict xfail: it must
# still fail, and once the kernel is fixed the XPASS fails the run until the entry goes.
KNOWN_BUGS: set[tuple[str, str, str]] = set()
"""(backend, op, case) triples that are known to differ from PyTorch: strict xfails.

Empty now; fixed so far: the numpy backend's adaptive pooling as pooling matrices (``0 * inf =
NaN`` spread one inf to its whole plane) and the numba direct path's backward over junk
columns (``0 * NaN``), which now runs only when x and the weight are finite.
"""

# In the CUDA simulator a conv backward costs ~2.5 s: float32 only, and the backward (whose
# grad_weight is where x's values matter) for two cases.
SIMULATOR_CONV_BACKWARD_CASES = {"nan", "subnormal"}


class ValueCase(NamedTuple):
    x: np.ndarray  # (N, C, H, W): multiples of 4 times 2**exponent, with NaN / inf
    weight: np.ndarray  # (C, C, 3, 2): small integers
    grad: np.ndarray  # (N, C, H + 2, W + 2) small integers, cut to shape by grad_like()


def _exponent(case: str, dtype) -> int:
    """The power of two that scales the case's integer values."""
    info = np.finfo(dtype)
    return {
        "nan": 0,
        "inf": 0,
        "large": 96 if dtype == np.float32 else 990,  # 3e29 .. 5e30; 4e298 .. 6e299
        "near_overflow": info.maxexp - 7,  # up to 2**(maxexp-1); sums of 4 may overflow
        "small": -100 if dtype == np.float32 else -990,  # 3e-30 .. 5e-29; 4e-298 ..
        "subnormal": int(np.log2(info.smallest_subnormal)),  # 4 .. 64 x the smallest one
    }[case]


def value_case(case: str, dtype) -> ValueCase:
    """Exact-arithmetic inputs for ``case``: every result is exact in any summation order."""
    rng = np.random.default_rng(CASES.index(case))
    positive = case == "near_overflow"  # same-sign terms: whether a sum overflows is order-free
    sign = 1 if positive else rng.choice([-1, 1], (N, C, H, W))
    k = rng.integers(1, 17, (N, C, H, W)) * sign
    x = (4 * k).astype(dtype) * np.ldexp(dtype(1), _exponent(case, dtype))
    if case == "nan":
        x[0, 0, 1, 2] = x[1, 1, 4, 3] = np.nan
    if case == "inf":
        x[0, 0, 1, 2], x[0, 1, 3, 0], x[1, 0, 0, 3] = np.inf, -np.inf, np.inf
    weight = rng.integers(1 if positive else -2, 3, (C, C, 3, 2)).astype(dtype)
    grad = rng.integers(1 if positive else -2, 3, (N, C, H + 2, W + 2)).astype(dtype)
    return ValueCase(x, weight, grad)


def grad_like(grad: np.ndarray, shape) -> np.ndarray:
    """A C-contiguous grad_y of ``shape`` cut from a case's integer grads."""
    return np.ascontiguousarray(grad[: shape[0], : shape[1], : shape[2], : shape[3]])


def assert_exactly_torch(ours, expected, name: str, rescaled=None) -> None:
    """Bit-for-bit equality, NaN matching NaN and inf matching inf of the same sign.

    ``rescaled``: torch's answer computed without its own overflow (input / 2**8, answer *
    2**8); where torch gives +-inf, ours may equal that finite value instead.
    """
    ours, expected = host(ours), np.asarray(expected)
    assert ours.shape == expected.shape, f"{name}: shape {ours.shape} != {expected.shape}"
    assert ours.dtype == expected.dtype, f"{name}: dtype {ours.dtype} != {expected.dtype}"
    same = (ours == expected) | (np.isnan(ours) & np.isnan(expected))
    if rescaled is not None:
        rescaled = np.asarray(rescaled)
        same |= np.isinf(expected) & np.isfinite(rescaled) & (ours == rescaled)
    if not same.all():
        where = tuple(int(i) for i in np.argwhere(~same)[0])
        raise AssertionError(f"{name}: {(~same).sum()} of {same.size} differ from torch, e.g. "
                             f"at {where}: ours {ours[where]!r}, torch {expected[where]!r}")


def rescale(op, x, **kwargs):
    """Torch's forward on ``x / 2**8``, times 2**8: exact, and without torch's overflow."""
    with np.errstate(over="ignore"):
        return op(np.ldexp(x, -8), **kwargs) * x.dtype.type(2**8)


def value_params():
    """(backend, dtype, case) triples; the simulator gets float32 only."""
    params = []
    for backend in BACKENDS:
        for dtype in (np.float64, np.float32):
            if backend == "cuda" and _cuda_simulated() and dtype == np.float64:
                continue
            for case in CASES:
                params.append(pytest.param(backend, dtype, case,
                                           id=f"{backend}-{np.dtype(dtype).name}-{case}"))
    return params


def mark_known_bug(request, backend: str, op: str, case: str) -> None:
    if (backend, op, case) in KNOWN_BUGS:
        request.applymarker(pytest.mark.xfail(strict=True, reason="KNOWN_BUGS"))


def unchanged(arrays, copies) -> None:
    for before, after in zip(copies, arrays, strict=True):
        np.testing.assert_array_equal(after, before, err_msg="an input was modified")


CONV_CONFIGS = {
    # two input channels, stride (1, 2): the im2col/GEMM paths
    "conv2d": (slice(None), CONV),
    # one input channel, stride 1, no padding along W: numba's direct path, and taps that
    # never read the last column (where the value cases put a NaN / inf)
    "conv2d_unit_stride": (slice(1, 2), dict(padding=(1, 0))),
}


@pytest.mark.parametrize("backend, dtype, case", value_params())
@pytest.mark.parametrize("config", list(CONV_CONFIGS))
def test_conv2d_special_values_and_magnitudes_equal_torch_bit_for_bit(
    backend, dtype, case, config, request
):
    if backend == "cuda" and _cuda_simulated() and config != "conv2d":
        pytest.skip("the simulator runs a conv in ~1 s: one configuration suffices there")
    mark_known_bug(request, backend, config, case)
    channels, kwargs = CONV_CONFIGS[config]
    x, weight, grad = value_case(case, dtype)
    x, weight = np.ascontiguousarray(x[:, channels]), np.ascontiguousarray(weight[:, channels])
    copies = [x.copy(), weight.copy()]
    y = F.conv2d(x, weight, **kwargs, backend=backend)
    assert_exactly_torch(y, R.conv2d(x, weight, **kwargs), "y",
                         rescale(R.conv2d, x, weight=weight, **kwargs))
    if backend != "cuda" or not _cuda_simulated() or case in SIMULATOR_CONV_BACKWARD_CASES:
        gy = grad_like(grad, host(y).shape)
        grads = F.conv2d_backward(gy, x, weight, **kwargs, backend=backend)
        expected = R.conv2d_backward(gy, x, weight, **kwargs)
        for ours, theirs, part in zip(grads, expected, ["grad_x", "grad_weight", "grad_bias"],
                                      strict=True):
            assert_exactly_torch(ours, theirs, part)
    unchanged([x, weight], copies)


POOLS = {
    "max_pool2d": (F.max_pool2d, F.max_pool2d_backward, R.max_pool2d, R.max_pool2d_backward, MAX),
    "avg_pool2d": (F.avg_pool2d, F.avg_pool2d_backward, R.avg_pool2d, R.avg_pool2d_backward, AVG),
    "adaptive_avg_pool2d": (F.adaptive_avg_pool2d, F.adaptive_avg_pool2d_backward,
                            R.adaptive_avg_pool2d, R.adaptive_avg_pool2d_backward, ADAPTIVE),
}


@pytest.mark.parametrize("backend, dtype, case", value_params())
@pytest.mark.parametrize("op", list(POOLS))
def test_pooling_special_values_and_magnitudes_equal_torch_bit_for_bit(
    backend, dtype, case, op, request
):
    mark_known_bug(request, backend, op, case)
    forward, backward, ref_forward, ref_backward, kwargs = POOLS[op]
    x, _, grad = value_case(case, dtype)
    copy = x.copy()
    y = forward(x, **kwargs, backend=backend)
    assert_exactly_torch(y, ref_forward(x, **kwargs), "y", rescale(ref_forward, x, **kwargs))
    gy = grad_like(grad, host(y).shape)
    gx = backward(gy, x, **kwargs, backend=backend)
    assert_exactly_torch(gx, ref_backward(gy, x, **kwargs), "grad_x")
    unchanged([x], [copy])


@dtypes
def test_value_cases_really_are_what_they_claim(dtype):
    """Guard the fixtures: subnormals are subnormal, near-overflow sums do overflow in torch."""
    tiny = np.finfo(dtype).smallest_normal
    sub = value_case("subnormal", dtype).x
    assert (np.abs(sub) < tiny).all() and (sub != 0).all()
    large = np.abs(value_case("large", dtype).x)
    assert large.min() >= (1e29 if dtype == np.float32 else 1e298)
    small = np.abs(value_case("small", dtype).x)
    assert (small >= tiny).all() and small.max() <= (1e-28 if dtype == np.float32 else 1e-296)
    near = value_case("near_overflow", dtype).x
    for y in (R.avg_pool2d(near, **AVG), R.adaptive_avg_pool2d(near, **ADAPTIVE),
              R.conv2d(near, value_case("near_overflow", dtype).weight, **CONV)):
        assert np.isinf(y).any() and np.isfinite(y).any()  # both sides of the edge


def test_exact_comparison_catches_a_flushed_subnormal_and_a_spurious_overflow():
    """The helper is not vacuous: flush-to-zero and an extra inf are both reported."""
    case = value_case("subnormal", np.float32)
    expected = R.avg_pool2d(case.x, **AVG)
    with pytest.raises(AssertionError, match="differ from torch"):
        assert_exactly_torch(np.where(np.abs(expected) < 1e-38, 0, expected).astype(np.float32),
                             expected, "y")
    near = value_case("near_overflow", np.float32).x
    expected = R.avg_pool2d(near, **AVG)
    spurious = expected.copy()
    spurious.flat[np.flatnonzero(np.isfinite(spurious))[0]] = np.inf
    with pytest.raises(AssertionError, match="differ from torch"):
        assert_exactly_torch(spurious, expected, "y", rescale(R.avg_pool2d, near, **AVG))


# --------------------------------------------------------------------------- layouts


def _layouts(a: np.ndarray) -> dict[str, np.ndarray]:
    """The same values as ``a`` in every memory layout an array can arrive in."""
    readonly = a.copy()
    readonly.setflags(write=False)
    padded = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    padded[..., ::2] = a
    flipped = a[..., ::-1].copy()
    swapped = a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))
    layouts = {
        "readonly": readonly,
        "fortran": np.asfortranarray(a),
        "strided": padded[..., ::2],
        "negative_stride": flipped[..., ::-1],
        "byteswapped": swapped,
    }
    return layouts


def _layout_names(backend):
    # Only a read-only C-contiguous array reaches the kernel as it is; every other layout is
    # copied at the functional boundary, which is backend-independent: the slow simulator
    # checks the one that matters to it.
    if backend == "cuda" and _cuda_simulated():
        return ["readonly"]
    return ["readonly", "fortran", "strided", "negative_stride", "byteswapped"]


def _ops(x, w, b):
    """Every op on (x, w, b) as name -> (function of (x, w, b, gy, backend), grad_y shape)."""
    conv = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    return {
        "conv2d": lambda x, w, b, gy, be: F.conv2d(x, w, b, **conv, backend=be),
        "conv2d_backward": lambda x, w, b, gy, be: F.conv2d_backward(gy, x, w, **conv, backend=be),
        "max_pool2d": lambda x, w, b, gy, be: F.max_pool2d(x, 2, 1, 1, backend=be),
        "max_pool2d_backward": lambda x, w, b, gy, be: F.max_pool2d_backward(
            gy, x, 2, 1, 1, backend=be),
        "avg_pool2d": lambda x, w, b, gy, be: F.avg_pool2d(x, 2, 1, 1, backend=be),
        "avg_pool2d_backward": lambda x, w, b, gy, be: F.avg_pool2d_backward(
            gy, x, 2, 1, 1, backend=be),
        "adaptive_avg_pool2d": lambda x, w, b, gy, be: F.adaptive_avg_pool2d(x, (2, 3), backend=be),
        "adaptive_avg_pool2d_backward": lambda x, w, b, gy, be: F.adaptive_avg_pool2d_backward(
            gy, x, (2, 3), backend=be),
    }


GRAD_SHAPES = {  # the forward output of each op on x (1, 2, 4, 3), w (2, 2, 2, 2)
    "conv2d_backward": (1, 2, 3, 1),
    "max_pool2d_backward": (1, 2, 5, 4),
    "avg_pool2d_backward": (1, 2, 5, 4),
    "adaptive_avg_pool2d_backward": (1, 2, 2, 3),
}


@backends
def test_every_layout_gives_torchs_answer_and_is_left_unchanged(backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 4, 3))
    w = rng.standard_normal((2, 2, 2, 2))
    b = rng.standard_normal(2)
    grads = {name: rng.standard_normal(shape) for name, shape in GRAD_SHAPES.items()}
    ops = _ops(x, w, b)
    torch_answer = {
        "conv2d": R.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
        "conv2d_backward": R.conv2d_backward(grads["conv2d_backward"], x, w, stride=(2, 1),
                                             padding=(1, 0), dilation=(1, 2)),
        "max_pool2d": R.max_pool2d(x, 2, 1, 1),
        "max_pool2d_backward": R.max_pool2d_backward(grads["max_pool2d_backward"], x, 2, 1, 1),
        "avg_pool2d": R.avg_pool2d(x, 2, 1, 1),
        "avg_pool2d_backward": R.avg_pool2d_backward(grads["avg_pool2d_backward"], x, 2, 1, 1),
        "adaptive_avg_pool2d": R.adaptive_avg_pool2d(x, (2, 3)),
        "adaptive_avg_pool2d_backward": R.adaptive_avg_pool2d_backward(
            grads["adaptive_avg_pool2d_backward"], x, (2, 3)),
    }
    for name, op in ops.items():
        gy = grads.get(name)
        expected = torch_answer[name]
        expected = list(expected) if isinstance(expected, tuple | list) else [expected]
        plain = None
        for layout in _layout_names(backend):
            args = [_layouts(a)[layout] for a in (x, w, b)]
            g = None if gy is None else _layouts(gy)[layout]
            copies = [a.copy() for a in args] + ([] if g is None else [g.copy()])
            out = op(*args, g, backend)
            out = [host(a) for a in out] if isinstance(out, tuple) else [host(out)]
            unchanged(args + ([] if g is None else [g]), copies)
            for ours, theirs in zip(out, expected, strict=True):
                assert ours.dtype.isnative, (name, layout)
                check_against_torch(ours, theirs, f"{name} with {layout} inputs")
            if layout == "readonly":  # C-contiguous: passed to the kernel as it is
                plain = out
            else:  # copied at the boundary: the very same computation, bit for bit
                for ours, reference in zip(out, plain, strict=True):
                    np.testing.assert_array_equal(ours, reference, f"{name} with {layout}")


def test_broadcast_and_swapped_inputs_reach_the_kernel_contiguous_and_native():
    x = np.broadcast_to(np.arange(12.0).reshape(1, 1, 3, 4), (3, 2, 3, 4))
    y = F.avg_pool2d(x, 2, backend="naive")
    np.testing.assert_array_equal(y, R.avg_pool2d(np.ascontiguousarray(x), 2))
    big_endian = np.arange(12.0, dtype=">f4").reshape(1, 1, 3, 4)
    y = F.max_pool2d(big_endian, 2, backend="numpy")
    assert y.dtype == np.float32 and y.dtype.isnative


# --------------------------------------------------------------------------- shapes


def _degenerate_problems():
    """(name, x shape, weight shape, conv kwargs, pool kwargs, adaptive output size)."""
    return [
        ("batch0", (0, 3, 4, 5), (4, 3, 2, 3), dict(padding=1), dict(kernel_size=2), (2, 3)),
        ("batch0_same_even_grouped", (0, 4, 4, 5), (2, 2, 2, 2),
         dict(padding="same", groups=2), dict(kernel_size=2, ceil_mode=True), (5, 1)),
        ("image1x1", (2, 3, 1, 1), (2, 3, 1, 1), {}, dict(kernel_size=1), (2, 3)),
        ("image1x1_padded", (2, 3, 1, 1), (2, 3, 3, 3), dict(padding=1),
         dict(kernel_size=2, padding=1), 1),
        ("kernel_is_image", (2, 3, 5, 4), (2, 3, 5, 4), {}, dict(kernel_size=(5, 4)), 1),
        ("kernel_is_image_dilated", (1, 2, 5, 3), (2, 2, 3, 2), dict(dilation=2),
         dict(kernel_size=(3, 2), dilation=(2, 2)), (5, 3)),
    ]


@backends
@pytest.mark.parametrize("case", _degenerate_problems(), ids=lambda c: c[0])
def test_degenerate_shapes_match_torch_forward_and_backward(backend, case):
    name, x_shape, w_shape, conv, pool, output_size = case
    if backend == "cuda" and _cuda_simulated() and name not in ("batch0", "kernel_is_image"):
        pytest.skip("the simulator runs a conv in ~1 s: two shape cases suffice there")
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y = F.conv2d(x, w, b, **conv, backend=backend)
    check_against_torch(y, R.conv2d(x, w, b, **conv), f"{name} conv2d")
    gy = rng.standard_normal(host(y).shape)
    for ours, theirs, part in zip(F.conv2d_backward(gy, x, w, **conv, backend=backend),
                                  R.conv2d_backward(gy, x, w, **conv), ["gx", "gw", "gb"],
                                  strict=True):
        check_against_torch(ours, theirs, f"{name} conv2d_backward {part}")
    pool_ops = [
        (F.max_pool2d, F.max_pool2d_backward, R.max_pool2d, R.max_pool2d_backward, pool),
        (F.avg_pool2d, F.avg_pool2d_backward, R.avg_pool2d, R.avg_pool2d_backward,
         {k: v for k, v in pool.items() if k != "dilation"}),
        (F.adaptive_avg_pool2d, F.adaptive_avg_pool2d_backward, R.adaptive_avg_pool2d,
         R.adaptive_avg_pool2d_backward, dict(output_size=output_size)),
    ]
    for forward, backward, ref_forward, ref_backward, kwargs in pool_ops:
        y = forward(x, **kwargs, backend=backend)
        check_against_torch(y, ref_forward(x, **kwargs), f"{name} {forward.__name__}")
        gy = rng.standard_normal(host(y).shape)
        check_against_torch(backward(gy, x, **kwargs, backend=backend),
                            ref_backward(gy, x, **kwargs), f"{name} {backward.__name__}")


# --------------------------------------------------------------------------- memory


@pytest.fixture
def no_kernels(monkeypatch):
    """Make every kernel of every loaded backend fail: a MemoryError must come first."""

    def boom(*args, **kwargs):
        raise AssertionError("a kernel ran although the op should have refused first")

    for name in mc.backends():
        module = registry.kernel_module(name)
        for fn in ("conv2d", "conv2d_backward", "max_pool2d", "avg_pool2d",
                   "adaptive_avg_pool2d", "max_pool2d_backward"):
            monkeypatch.setattr(module, fn, boom)


def test_an_output_too_large_for_memory_is_refused_before_allocating_by_default(no_kernels):
    x = np.zeros((2, 3, 4, 4), np.float32)
    with pytest.raises(MemoryError, match=r"(?s)adaptive_avg_pool2d: the output.*TiB.*"
                       r"\(2, 3, 1000000, 1000000\).*MAX_ARRAY_BYTES"):
        F.adaptive_avg_pool2d(x, 10**6)
    with pytest.raises(MemoryError, match=r"x: its zero-padded copy .*\(2, 3, 4000004, 4000004\)"):
        F.conv2d(x, np.zeros((1, 3, 1, 1), np.float32), padding=2 * 10**6)
    assert F.MAX_ARRAY_BYTES >= 2**28  # the default leaves ordinary work alone


@pytest.mark.parametrize("backend", ["naive", "numpy"])
def test_a_small_memory_bound_refuses_each_op_before_any_kernel_runs(
    backend, monkeypatch, no_kernels
):
    monkeypatch.setattr(F, "MAX_ARRAY_BYTES", 4000)
    x = np.zeros((2, 3, 10, 10))  # 4800 bytes: within bounds as it is, since it exists
    w = np.zeros((4, 3, 3, 3))
    calls = {
        r"conv2d: the output would need 4\.0 KiB \(shape \(2, 4, 8, 8\), float64\)":
            lambda: F.conv2d(x, w, backend=backend),
        r"x: its zero-padded copy would need 6\.8 KiB \(shape \(2, 3, 12, 12\)":
            lambda: F.conv2d(x, w, padding=1, backend=backend),
        r"x: its zero-padded copy .*\(2, 3, 12, 12\)":
            lambda: F.conv2d_backward(np.zeros((2, 4, 10, 10)), x, w, padding=1, backend=backend),
        r"x: its C-contiguous copy would need 4\.7 KiB \(shape \(2, 3, 10, 10\)":
            lambda: F.max_pool2d(np.asfortranarray(x), 2, backend=backend),
        r"x: its C-contiguous copy .*\(2, 3, 10, 10\)":
            lambda: F.avg_pool2d(np.broadcast_to(np.zeros(1), (2, 3, 10, 10)), 2, backend=backend),
        r"x: its padded copy .*\(2, 3, 12, 12\)":
            lambda: F.max_pool2d(x, 3, 1, 1, backend=backend),
        r"avg_pool2d: the output .*\(2, 3, 10, 10\)":
            lambda: F.avg_pool2d(x, 1, backend=backend),
        r"x: its C-contiguous copy .*\(2, 3, 10, 10\), float64\)":
            lambda: F.avg_pool2d(x.astype(">f8"), 1, backend=backend),
        r"adaptive_avg_pool2d: the output .*\(2, 3, 11, 10\)":
            lambda: F.adaptive_avg_pool2d(x, (11, None), backend=backend),
    }
    for pattern, call in calls.items():
        with pytest.raises(MemoryError, match=pattern):
            call()
    monkeypatch.setattr(F, "MAX_ARRAY_BYTES", 10**6)  # the same calls fit a larger bound
    with pytest.raises(AssertionError, match="a kernel ran"):
        F.adaptive_avg_pool2d(x, (11, None), backend=backend)


def test_memory_bound_default_is_half_of_physical_or_cgroup_memory():
    limit = F._memory_limit_bytes()
    assert limit is None or F._default_max_array_bytes() == limit // 2
    assert F._human(3 * 2**30) == "3.0 GiB" and F._human(12) == "12 bytes"


# --------------------------------------------------------------------------- registry


@pytest.fixture
def fresh_registry(monkeypatch):
    """A registry with an empty import cache and its own name table; both restored after."""
    monkeypatch.setattr(registry, "_loaded", {})
    monkeypatch.setattr(registry, "BACKEND_MODULES", dict(registry.BACKEND_MODULES))
    return registry


def _write_module(tmp_path, monkeypatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_a_backend_whose_module_fails_to_import_is_not_listed_and_says_why(
    fresh_registry, tmp_path, monkeypatch
):
    fresh_registry.BACKEND_MODULES["numba"] = _write_module(
        tmp_path, monkeypatch, "broken_numba_backend",
        "raise ImportError(\"No module named 'numba'\")\n")
    fresh_registry.BACKEND_MODULES["cuda"] = "kernels.no_such_module"
    assert mc.backends() == ["naive", "numpy"]
    status = mc.backends(verbose=True)
    assert status["numba"] == "import failed: ImportError: No module named 'numba'"
    assert status["cuda"].startswith("import failed: ModuleNotFoundError")
    with pytest.raises(ValueError, match=r"backend: backend 'numba' is not available here "
                                         r"\(import failed: ImportError.*available: \['naive'"):
        mc.set_backend("numba")
    with pytest.raises(ValueError, match="'cuda' is not available"):
        F.max_pool2d(np.zeros((1, 1, 2, 2)), 2, backend="cuda")
    with pytest.raises(ValueError, match="'numba' is not available"), mc.use_backend("numba"):
        pass


def test_a_backend_that_reports_itself_unusable_or_lacks_kernels_is_not_listed(
    fresh_registry, tmp_path, monkeypatch
):
    complete = "\n".join(f"def {f}(*args): pass" for f in registry.KERNEL_FUNCTIONS)
    fresh_registry.BACKEND_MODULES["numba"] = _write_module(
        tmp_path, monkeypatch, "no_gpu_backend",
        complete + "\ndef unavailable_reason():\n    return 'no GPU here'\n")
    fresh_registry.BACKEND_MODULES["cuda"] = _write_module(
        tmp_path, monkeypatch, "probe_fails_backend",
        complete + "\ndef unavailable_reason():\n    raise OSError('driver exploded')\n")
    fresh_registry.BACKEND_MODULES["naive"] = _write_module(
        tmp_path, monkeypatch, "half_a_backend", "def corr2d(X, K): pass\n")
    status = mc.backends(verbose=True)
    assert mc.backends() == ["numpy"]
    assert status["numba"] == "no GPU here"
    assert status["cuda"] == "unavailable_reason() failed: OSError: driver exploded"
    assert status["naive"].startswith("module half_a_backend lacks conv2d, conv2d_backward")


def test_import_and_listing_work_when_numba_cannot_be_imported():
    code = (
        "import sys; sys.modules['numba'] = None\n"  # what an uninstalled numba looks like
        "import minitorch_cnn as mc\n"
        "print(mc.backends()); s = mc.backends(verbose=True); print(s['numba']); print(s['cuda'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    listed, numba_reason, cuda_reason = out.stdout.strip().splitlines()
    assert listed == "['naive', 'numpy']"
    assert numba_reason.startswith("import failed: ") and "numba" in numba_reason
    assert cuda_reason.startswith("import failed: ") and "numba" in cuda_reason


def test_use_backend_in_two_threads_at_once_does_not_leak():
    before = mc.get_backend()
    barrier = threading.Barrier(2, timeout=30)
    seen: dict[str, list[str]] = {"naive": [], "numpy": []}
    errors = []

    def worker(name: str) -> None:
        try:
            with mc.use_backend(name):
                barrier.wait()  # both threads are inside their `with` now
                for _ in range(200):
                    seen[name].append(registry.kernel_module(None).__name__)
                F.max_pool2d(np.zeros((1, 1, 2, 2)), 2)  # an op with backend=None runs
                barrier.wait()  # neither leaves before the other has looked
            seen[name].append(mc.get_backend())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert set(seen["naive"][:-1]) == {"kernels.naive"}
    assert set(seen["numpy"][:-1]) == {"kernels.vectorized"}
    assert seen["naive"][-1] == seen["numpy"][-1] == before  # each thread is back to default
    assert mc.get_backend() == before


def test_use_backend_in_two_asyncio_tasks_does_not_leak():
    async def task(name: str) -> list[str]:
        names = []
        with mc.use_backend(name):
            for _ in range(5):
                await asyncio.sleep(0)  # let the other task run inside its own block
                names.append(mc.get_backend())
        return names

    async def main():
        return await asyncio.gather(task("naive"), task("numpy"))

    naive, numpy = asyncio.run(main())
    assert naive == ["naive"] * 5 and numpy == ["numpy"] * 5
