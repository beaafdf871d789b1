"""What the general equivalence tests cannot see in the numba backend: its internal paths.

``kernels.numba_cpu.conv_plan`` routes a conv to one of three paths ("direct", "gemm",
"1x1") and cuts the batch into chunks shared out to lanes. The hypothesis tests over
``mc.backends()`` draw small problems and so mostly hit one route. Here each path is forced
(the plan is monkeypatched) on problems built for it, float32 and float64, including groups,
dilation, stride (2, 1), uneven chunks and more lanes than chunks, and compared with the
PyTorch oracle; the plan's own choices on the benchmark shapes are pinned; max-pool ties and
NaN are checked on hand-made inputs; inputs must come back unmodified; inside a GEMM-path call
on two lanes BLAS must run on one thread, and its thread count must be restored after the call
(also when the kernel raises).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_cnn as mc
import reference as R
from kernels.common import ConvSpec
from minitorch_cnn import functional as F

from .checks import DTYPES, check_against_torch

pytestmark = pytest.mark.skipif("numba" not in mc.backends(), reason="numba backend unavailable")

if "numba" in mc.backends():
    from kernels import numba_cpu as nc

dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])


# --------------------------------------------------------------------------- helpers


def _run_conv_with_plan(monkeypatch, plan, x, weight, bias, **kwargs):
    """Forward and backward through ``F`` with ``conv_plan`` forced to ``plan``."""
    seen = []

    def forced(*args, **kw):
        seen.append(plan)
        return plan

    monkeypatch.setattr(nc, "conv_plan", forced)
    originals = [a.copy() for a in (x, weight) + ((bias,) if bias is not None else ())]
    y = F.conv2d(x, weight, bias, **kwargs, backend="numba")
    rng = np.random.default_rng(1)
    grad_y = rng.standard_normal(y.shape).astype(x.dtype)
    gy_copy = grad_y.copy()
    grads = F.conv2d_backward(grad_y, x, weight, **kwargs, backend="numba")
    monkeypatch.undo()
    assert len(seen) == 2, "the forced plan was not used"
    for a, original in zip((x, weight) + ((bias,) if bias is not None else ()), originals,
                           strict=True):
        np.testing.assert_array_equal(a, original, err_msg="an input was modified")
    np.testing.assert_array_equal(grad_y, gy_copy, err_msg="grad_y was modified")
    return y, grad_y, grads


def _compare(y, grad_y, grads, x, weight, bias, **kwargs):
    check_against_torch(y, R.conv2d(x, weight, bias, **kwargs), "y")
    for ours, theirs, name in zip(grads, R.conv2d_backward(grad_y, x, weight, **kwargs),
                                  ("grad_x", "grad_weight", "grad_bias"), strict=True):
        check_against_torch(ours, theirs, name)


def _arrays(rng, dtype, N, C_in, H, W, C_out, groups, kh, kw, bias):
    x = rng.standard_normal((N, C_in, H, W)).astype(dtype)
    weight = rng.standard_normal((C_out, C_in // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype) if bias else None
    return x, weight, b


# --------------------------------------------------------------------------- the plan


def _plan(x_shape, weight_shape, stride, padding, dilation, groups, itemsize, threads):
    """``conv_plan`` of the problem these shapes and pairs describe."""
    spec = ConvSpec.from_shapes(x_shape, weight_shape, stride, padding, dilation, groups)
    return nc.conv_plan(spec, itemsize, threads=threads)


def test_conv_plan_picks_the_documented_path_for_the_benchmark_layers():
    P = _plan
    # LeNet's first layer: one input channel, stride 1 -> direct loops
    lenet_conv1 = P((64, 1, 28, 28), (6, 1, 5, 5), (1, 1), (2, 2), (1, 1), 1, 4, threads=2)
    assert lenet_conv1.path == "direct"
    # depthwise (C_in / groups == 1), stride 1 -> direct
    assert P((4, 8, 9, 9), (8, 1, 3, 3), (1, 1), (1, 1), (1, 1), 8, 4, threads=2).path == "direct"
    # one input channel but stride 2 -> GEMM (the wide-row trick needs stride 1)
    assert P((4, 1, 28, 28), (6, 1, 5, 5), (2, 2), (0, 0), (1, 1), 1, 4, threads=2).path == "gemm"
    # ResNet 3x3: big planes -> one sample per chunk, one chunk per sample
    plan = P((32, 64, 56, 56), (64, 64, 3, 3), (1, 1), (1, 1), (1, 1), 1, 4, threads=2)
    assert plan == nc.ConvPlan("gemm", 2, 32)
    # ResNet 7x7 planes: samples batched so each GEMM gets >= GEMM_MIN_COLS columns,
    # and every lane gets the same number of chunks
    plan = P((32, 512, 7, 7), (512, 512, 3, 3), (1, 1), (1, 1), (1, 1), 1, 4, threads=2)
    assert plan.path == "gemm" and plan.chunks % plan.lanes == 0 and plan.chunks < 32
    assert -(-32 // plan.chunks) * 49 <= nc.GEMM_MIN_COLS + 49
    # 1x1, stride 1, big planes -> in place, no im2col; stride 2 -> gathered by im2col
    assert P((4, 16, 32, 32), (8, 16, 1, 1), (1, 1), (0, 0), (1, 1), 1, 4, threads=2).path == "1x1"
    assert P((4, 16, 64, 64), (8, 16, 1, 1), (2, 2), (0, 0), (1, 1), 1, 4, threads=2).path == "gemm"
    # batch smaller than the thread count: no more lanes than samples
    assert P((1, 16, 32, 32), (8, 16, 3, 3), (1, 1), (1, 1), (1, 1), 1, 4, threads=2).lanes == 1


def test_a_backward_leaves_the_direct_path_only_where_gemm_won():
    def plan(x_shape, w_shape, groups=1, backward=True):
        spec = ConvSpec.from_shapes(x_shape, w_shape, (1, 1), (0, 0), (1, 1), groups)
        return nc.conv_plan(spec, 4, threads=2, backward=backward).path

    lenet_conv2 = ((64, 6, 14, 14), (16, 6, 5, 5))
    assert plan(*lenet_conv2, backward=False) == "direct"  # the forward
    assert plan(*lenet_conv2) == "direct"  # five-tap kernel rows: the direct backward wins
    assert plan((64, 1, 28, 28), (6, 1, 5, 5)) == "direct"  # a first layer
    assert plan((64, 4, 16, 16), (16, 4, 7, 7)) == "direct"  # one five-tap pass, two single
    assert plan((64, 3, 32, 32), (16, 3, 3, 3)) == "gemm"  # rows narrower than five taps
    assert plan((64, 2, 14, 14), (16, 2, 4, 4)) == "gemm"
    assert plan((64, 3, 32, 32), (16, 3, 3, 3), backward=False) == "direct"  # the forward
    assert plan((64, 32, 28, 28), (32, 1, 3, 3), groups=32) == "direct"  # depthwise stays
    assert plan((2, 3, 8, 8), (4, 3, 3, 3)) == "direct"  # below SERIAL_MAX_MACS: serial twins
    with nc.conv_algorithm("direct"):
        assert plan((64, 3, 32, 32), (16, 3, 3, 3)) == "direct"  # forced


# --------------------------------------------------------------------------- each path


@st.composite
def direct_problems(draw):
    """Stride 1, any padding and dilation (incl. depthwise); kernel rows up to 7 taps, so
    that the five-tap passes (forward, grad_x, grad_weight) run alone (5), followed by single
    taps (6, 7), or not at all (< 5); 1-5 output channels per group, so that grad_weight's
    channel pairs (``GW_ROWS``) end with an odd one or not; up to 5 samples, in chunks of
    ``samples`` (the last one shorter or not: ``conv_direct.CHUNK_BYTES``)."""
    groups = draw(st.sampled_from([1, 2, 3]))
    C_in = groups * draw(st.integers(1, 2))
    C_out = groups * draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 7))
    dh, dw = draw(st.sampled_from([(1, 1), (2, 1), (1, 2)]))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 6))
    W = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 6))
    N = draw(st.integers(1, 5))
    return dict(N=N, C_in=C_in, H=H, W=W, C_out=C_out, groups=groups, kh=kh, kw=kw,
                stride=(1, 1), padding=(ph, pw), dilation=(dh, dw),
                seed=draw(st.integers(0, 2**31)), bias=draw(st.booleans()),
                samples=draw(st.integers(1, N)))


@st.composite
def gemm_problems(draw):
    """Any conv: groups, dilation, stride (2, 1) and friends; a random lanes/chunks split."""
    groups = draw(st.sampled_from([1, 2]))
    C_in = groups * draw(st.integers(1, 3))
    C_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.sampled_from([(1, 1), (2, 1), (1, 2), (2, 2), (3, 1)]))
    dh, dw = draw(st.sampled_from([(1, 1), (2, 1), (1, 2)]))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 6))
    W = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 6))
    N = draw(st.integers(1, 5))
    chunks = draw(st.integers(1, N))
    lanes = draw(st.integers(1, 3))
    return dict(N=N, C_in=C_in, H=H, W=W, C_out=C_out, groups=groups, kh=kh, kw=kw,
                stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw),
                seed=draw(st.integers(0, 2**31)), bias=draw(st.booleans()),
                plan=nc.ConvPlan("gemm", lanes, chunks))


@st.composite
def one_by_one_problems(draw):
    """1x1 kernel, stride 1, no padding (any dilation, it is irrelevant), groups."""
    groups = draw(st.sampled_from([1, 2]))
    N = draw(st.integers(1, 4))
    return dict(N=N, C_in=groups * draw(st.integers(1, 3)), H=draw(st.integers(1, 6)),
                W=draw(st.integers(1, 6)), C_out=groups * draw(st.integers(1, 3)),
                groups=groups, kh=1, kw=1, stride=(1, 1), padding=(0, 0),
                dilation=(draw(st.integers(1, 2)), 1), seed=draw(st.integers(0, 2**31)),
                bias=draw(st.booleans()),
                plan=nc.ConvPlan("1x1", draw(st.integers(1, 3)), N))


def _check_path(monkeypatch, dtype, p, plan):
    rng = np.random.default_rng(p["seed"])
    x, weight, bias = _arrays(rng, dtype, p["N"], p["C_in"], p["H"], p["W"], p["C_out"],
                              p["groups"], p["kh"], p["kw"], p["bias"])
    kwargs = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                  groups=p["groups"])
    y, grad_y, grads = _run_conv_with_plan(monkeypatch, plan, x, weight, bias, **kwargs)
    _compare(y, grad_y, grads, x, weight, bias, **kwargs)


@dtypes
def test_direct_path_matches_torch(monkeypatch, dtype):
    @settings(deadline=None)
    @given(direct_problems())
    def check(p):
        (ph, pw), itemsize = p["padding"], np.dtype(dtype).itemsize
        plane = (p["H"] + 2 * ph) * (p["W"] + 2 * pw)  # H_pad * W_pad at stride 1
        monkeypatch.setattr(nc.conv_direct, "CHUNK_BYTES",
                            p["samples"] * nc.conv_direct.ROWS * plane * itemsize)
        _check_path(monkeypatch, dtype, p, nc.ConvPlan("direct", 1, 1))

    check()


@dtypes
def test_gemm_path_matches_torch_with_any_lanes_and_chunks(monkeypatch, dtype):
    @settings(deadline=None)
    @given(gemm_problems())
    def check(p):
        _check_path(monkeypatch, dtype, p, p["plan"])

    check()


@dtypes
def test_1x1_in_place_path_matches_torch(monkeypatch, dtype):
    @settings(deadline=None)
    @given(one_by_one_problems())
    def check(p):
        _check_path(monkeypatch, dtype, p, p["plan"])

    check()


@dtypes
def test_gemm_path_stride_2_1_dilation_groups_uneven_chunks(monkeypatch, dtype):
    """One fixed, asymmetric case of everything at once: 5 samples in 3 chunks on 2 lanes."""
    rng = np.random.default_rng(7)
    x, weight, bias = _arrays(rng, dtype, 5, 4, 11, 8, 6, 2, 3, 2, True)
    kwargs = dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)
    y, grad_y, grads = _run_conv_with_plan(monkeypatch, nc.ConvPlan("gemm", 2, 3), x, weight,
                                           bias, **kwargs)
    _compare(y, grad_y, grads, x, weight, bias, **kwargs)


@dtypes
def test_unforced_plan_on_a_lenet_like_layer_uses_direct_and_matches_torch(dtype):
    rng = np.random.default_rng(3)
    x, weight, bias = _arrays(rng, dtype, 3, 1, 12, 10, 4, 1, 5, 3, True)
    spec = ConvSpec.from_shapes(x.shape, weight.shape, (1, 1), (2, 1), (1, 1), 1)
    assert nc.conv_plan(spec, x.itemsize).path == "direct"
    y = F.conv2d(x, weight, bias, padding=(2, 1), backend="numba")
    check_against_torch(y, R.conv2d(x, weight, bias, padding=(2, 1)), "y")


def test_blas_runs_single_threaded_inside_two_lanes_and_its_thread_count_is_restored(
        monkeypatch):
    """Two lanes forced (whatever the thread count), BLAS at 2 threads before: 1 inside each
    GEMM kernel, 2 again after the call, and after a call whose kernel raises."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not nc.conv_gemm._blas_libraries():
        pytest.skip("threadpoolctl finds no BLAS library: the GEMM paths use one lane")

    def blas_threads():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas"]

    inside = []

    def spy(kernel, fail=False):
        def run(*args):
            inside.append(blas_threads())
            if fail:
                raise RuntimeError("kernel failed")
            return kernel(*args)

        return run

    rng = np.random.default_rng(0)
    x, weight, _ = _arrays(rng, np.float32, 4, 8, 9, 9, 8, 1, 3, 3, False)
    monkeypatch.setattr(nc, "conv_plan", lambda *args, **kw: nc.ConvPlan("gemm", 2, 4))
    monkeypatch.setattr(nc, "_conv2d_gemm", spy(nc._conv2d_gemm))
    monkeypatch.setattr(nc, "_conv2d_backward_gemm", spy(nc._conv2d_backward_gemm))
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        if min(before) < 2:
            pytest.skip(f"BLAS would not take 2 threads here: {before}")
        y = F.conv2d(x, weight, padding=1, backend="numba")
        F.conv2d_backward(y, x, weight, padding=1, backend="numba")
        assert inside == [[1] * len(before)] * 2, "BLAS was not single-threaded in the lanes"
        assert blas_threads() == before, "the BLAS thread count was not restored"
        monkeypatch.setattr(nc, "_conv2d_backward_gemm", spy(nc._conv2d_backward_gemm, True))
        with pytest.raises(RuntimeError, match="kernel failed"):
            F.conv2d_backward(y, x, weight, padding=1, backend="numba")
        assert inside[-1] == [1] * len(before)
        assert blas_threads() == before, "not restored after the kernel raised"
    check_against_torch(y, R.conv2d(x, weight, padding=1), "y")


# --------------------------------------------------------------------------- max pooling


@dtypes
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(dtype):
    # every window of a constant plane is one big tie: the first (top-left) cell wins
    x = np.ones((1, 1, 4, 6), dtype)
    grad_y = np.arange(1, 7, dtype=dtype).reshape(1, 1, 2, 3)
    gx = F.max_pool2d_backward(grad_y, x, 2, backend="numba")
    expected = np.zeros_like(x)
    expected[0, 0, ::2, ::2] = grad_y[0, 0]
    np.testing.assert_array_equal(gx, expected)
    # overlapping windows (stride 1) with ties: the shared first maximum accumulates
    x = np.array([[[[3, 3, 1], [3, 3, 1]]]], dtype)
    grad_y = np.array([[[[1, 10]]]], dtype)
    gx = F.max_pool2d_backward(grad_y, x, 2, stride=1, backend="numba")
    np.testing.assert_array_equal(gx, [[[[1, 10, 0], [0, 0, 0]]]])
    check_against_torch(gx, R.max_pool2d_backward(grad_y, x, 2, stride=1), "grad_x")


@dtypes
def test_max_pool_nan_propagates_and_the_last_nan_takes_the_gradient(dtype):
    x = np.array([[[[1, np.nan, 5, 0], [np.nan, 2, 0, -1]]]], dtype)
    y = F.max_pool2d(x, 2, backend="numba")
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 0, 1] == 5
    grad_y = np.array([[[[7, 9]]]], dtype)
    gx = F.max_pool2d_backward(grad_y, x, 2, backend="numba")
    np.testing.assert_array_equal(gx, [[[[0, 0, 9, 0], [7, 0, 0, 0]]]])
    check_against_torch(gx, R.max_pool2d_backward(grad_y, x, 2), "grad_x")
    check_against_torch(y, R.max_pool2d(x, 2), "y")


@dtypes
def test_max_pool_all_minus_inf_window_with_padding_picks_first_in_bounds_cell(dtype):
    x = np.full((1, 1, 3, 3), -np.inf, dtype)
    grad_y = np.arange(1, 5, dtype=dtype).reshape(1, 1, 2, 2)
    kwargs = dict(kernel_size=3, stride=2, padding=1)
    gx = F.max_pool2d_backward(grad_y, x, **kwargs, backend="numba")
    check_against_torch(gx, R.max_pool2d_backward(grad_y, x, **kwargs), "grad_x")
    np.testing.assert_array_equal(F.max_pool2d(x, **kwargs, backend="numba"),
                                  np.full((1, 1, 2, 2), -np.inf, dtype))


@pytest.mark.parametrize("rule", [dict(), dict(count_include_pad=False),
                                  dict(divisor_override=5)], ids=["with-pad", "no-pad", "override"])
def test_remembered_avg_pool_divisors_are_each_windows_divisor_read_only_per_dtype(rule):
    """``pool._avg_divisors`` is remembered per (spec, dtype): its factors still multiply to
    ``kernels.common.avg_pool_divisor`` of every window, in the dtype asked for, and no caller
    can write into the remembered arrays."""
    from kernels.common import PoolSpec, avg_pool_divisor
    from kernels.numba_cpu.pool import _avg_divisors

    spec = PoolSpec.from_shape((2, 3, 7, 6), (3, 2), (2, 2), (1, 1), ceil_mode=True)
    spec = spec._replace(**rule)
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        div_h, div_w = _avg_divisors(spec, dtype)
        assert (div_h.dtype, div_w.dtype) == (dtype, dtype)
        assert _avg_divisors(spec, dtype)[0] is div_h  # remembered
        expected = [[avg_pool_divisor(oh * 2 - 1, ow * 2 - 1, spec) for ow in range(spec.W_out)]
                    for oh in range(spec.H_out)]
        np.testing.assert_array_equal(np.outer(div_h, div_w), expected)
        with pytest.raises(ValueError, match="read-only"):
            div_h[0] = 1


def test_every_numba_kernel_divides_as_ieee_without_a_zero_test():
    """Every compiled function of the numba backend comes from ``_loops.njit``
    (``error_model="numpy"``): with Numba's default a divide tests its divisor and the branch
    keeps the loop from vectorising (sigmoid's select loop: 0.21 against 0.024 ms). A module
    that imported ``numba.njit`` again would fail here."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import kernels.numba_cpu as package

    found, default_model = [], []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                found.append(name)
                if value.targetoptions.get("error_model") != "numpy":
                    default_model.append(f"{info.name}.{name}")
    assert len(found) > 50 and not default_model, default_model


# --------------------------------------------------------------------------- sigmoid


@pytest.mark.parametrize("size", [1000, 2 * nc.elementwise.SIGMOID_PARALLEL_MIN + 7],
                         ids=["serial", "parallel"])
def test_float32_sigmoid_is_within_three_ulps_over_the_whole_range(size):
    """The float32 sigmoid's own exp (``elementwise._sigmoid_f32``), serial and parallel,
    against float64 truth: within 3 ulps of the true value where that is a normal float32,
    within two of the smallest subnormal below, 0 past -104, and NaN and the infinities as
    PyTorch."""
    x = np.linspace(-110, 110, size, dtype=np.float32)
    x[:6] = [np.nan, np.inf, -np.inf, -0.0, -87.4, -103.9]
    y = nc.sigmoid(x)
    truth = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert y.dtype == np.float32 and np.isnan(y[0]) and (y[1], y[2], y[3]) == (1, 0, 0.5)
    normal = truth >= np.finfo(np.float32).tiny
    err = np.abs(y.astype(np.float64) - truth)
    assert np.all(err[normal] <= 3 * 2.0**-24 * truth[normal])
    assert np.all(err[~normal & ~np.isnan(truth)] <= 2 * 2.0**-149)
    np.testing.assert_allclose(y, torch.sigmoid(torch.from_numpy(x)).numpy(), rtol=3e-7,
                               atol=2e-38)


# --------------------------------------------------------------------------- the NaN guard


@dtypes
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_all_finite_finds_one_bad_value_anywhere_across_its_blocks(dtype, bad):
    """``_all_finite`` reads its verdict once per block: a bad value in the first, a middle or
    the last block, at a block's first or last element or the array's last, is found."""
    from kernels.numba_cpu._loops import FINITE_BLOCK, _all_finite

    a = np.random.default_rng(0).standard_normal(2 * FINITE_BLOCK + 7).astype(dtype)
    assert _all_finite(a) and _all_finite(a.reshape(1, -1))
    for at in (0, 5, FINITE_BLOCK - 1, FINITE_BLOCK, 2 * FINITE_BLOCK - 1, a.size - 1):
        b = a.copy()
        b[at] = bad
        assert not _all_finite(b), at
        assert not _all_finite(b.reshape(1, -1)), at
    assert _all_finite(np.array([np.finfo(dtype).max, -np.finfo(dtype).max], dtype))


# --------------------------------------------------------------------------- the compile cache


_IM2COL_SCRIPT = """
import numpy as np
from kernels.common import ConvSpec
from kernels.numba_cpu.conv_gemm import _im2col
x = np.arange(9.0).reshape(1, 1, 3, 3)
spec = ConvSpec.from_shapes(x.shape, (1, 1, 2, 2), (1, 1), (0, 0), (1, 1), 1)
cols = np.zeros((4, 4))
_im2col(x, cols, spec, 0, 1)
print(cols.sum(), sum(_im2col.stats.cache_hits.values()))
"""


def test_editing_a_helper_in_another_file_recompiles_the_kernels_that_inline_it(tmp_path):
    """``_im2col`` (in ``conv_gemm.py``) inlines ``_copy_into`` (in ``_loops.py``). Numba alone
    would keep loading ``_im2col`` from its cache after ``_copy_into`` changed, since
    ``conv_gemm.py`` did not; the package's import drops the cache (``_cache``), so the
    edit shows at once."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import kernels

    shutil.copytree(Path(kernels.__file__).parent, tmp_path / "kernels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["PYTHONPATH"] = str(tmp_path)

    def run():
        out = subprocess.run([sys.executable, "-c", _IM2COL_SCRIPT], env=env, cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout.split()
        return float(out[0]), int(out[1])

    cols_sum = 8 + 12 + 20 + 24  # the four taps' rows: 0+1+3+4, 1+2+4+5, 3+4+6+7, 4+5+7+8
    assert run() == (cols_sum, 0)  # compiled, and written to the cache
    assert run() == (cols_sum, 1)  # loaded from the cache
    loops = tmp_path / "kernels" / "numba_cpu" / "_loops.py"
    text = loops.read_text()
    assert text.count("y[k] = x[k]") == 1
    loops.write_text(text.replace("y[k] = x[k]", "y[k] = 2 * x[k]"))
    doubled, hits = run()
    assert (doubled, hits) == (2 * cols_sum, 0)  # compiled again, with the new helper


def test_the_cache_is_dropped_once_per_fingerprint_and_only_numbas_files(tmp_path):
    from kernels.numba_cpu._cache import drop_stale_cache

    def files():
        return sorted(p.name for p in tmp_path.iterdir())

    for name in ("f-1.py311.nbi", "f-1.py311.1.nbc", "mod.cpython-311.pyc"):
        (tmp_path / name).touch()
    assert drop_stale_cache(tmp_path, "aaaa")
    assert files() == ["mod.cpython-311.pyc", "sources-aaaa.stamp"]
    (tmp_path / "g-2.py311.nbi").touch()  # written under "aaaa": kept while it holds
    assert not drop_stale_cache(tmp_path, "aaaa")
    assert files() == ["g-2.py311.nbi", "mod.cpython-311.pyc", "sources-aaaa.stamp"]
    assert drop_stale_cache(tmp_path, "bbbb")
    assert files() == ["mod.cpython-311.pyc", "sources-bbbb.stamp"]
