"""The ``cuda`` backend, rung by rung, against PyTorch (``reference/``).

The lead's equivalence tests run every op of the ``cuda`` backend on small random problems;
this file covers what is specific to the CUDA kernels: each rung of the conv ladder (direct,
tiled, implicit GEMM with each tile configuration) on shapes chosen to hit tile edges, partial
tiles and problems spanning more than one tile; the split reduction of grad_weight; the
gather backward of every pooling op, with ties and NaNs; device arrays in and out.

Without a GPU this runs in the Numba CUDA simulator (``tests/conftest.py`` sets
``NUMBA_ENABLE_CUDASIM=1``), where every thread is a Python thread: the shapes are tiny, a
few hundred output elements each, and each test launches few kernels.
"""

from __future__ import annotations

import numpy as np
import pytest

kc = pytest.importorskip("kernels.cuda")
if kc.unavailable_reason() is not None:  # pragma: no cover - only without GPU and simulator
    pytest.skip(kc.unavailable_reason(), allow_module_level=True)

from numba import cuda  # noqa: E402

import reference as R  # noqa: E402
from kernels.common import AdaptivePoolSpec, ConvSpec, PoolSpec  # noqa: E402
from kernels.cuda import conv_backward, conv_igemm, conv_tiled  # noqa: E402
from kernels.cuda._arrays import is_device_array, to_device  # noqa: E402
from minitorch_cnn import functional as F  # noqa: E402

from .checks import check_against_torch  # noqa: E402


def conv_problem(rng, dtype, N, C_in, H, W, C_out, kernel, groups=1, bias=True):
    x = rng.standard_normal((N, C_in, H, W)).astype(dtype)
    w = rng.standard_normal((C_out, C_in // groups) + kernel).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype) if bias else None
    return x, w, b


# A problem with everything at once: groups, stride (2, 1), dilation (1, 2), a non-square
# kernel, asymmetric padding, a non-square input, a bias.
MIXED = dict(N=2, C_in=4, H=7, W=9, C_out=6, kernel=(3, 2), groups=2)
MIXED_ARGS = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
PLAIN_ARGS = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)


def spec_of(x, w, args=PLAIN_ARGS):
    """The ConvSpec of ``conv2d(x, w, **args)`` (as minitorch_cnn.functional builds it)."""
    return ConvSpec.from_shapes(x.shape, w.shape, args["stride"], args["padding"],
                                args["dilation"], args["groups"])


# --------------------------------------------------------------------------- conv forward


@pytest.mark.parametrize("algorithm", ["direct", "tiled", "igemm"])
def test_conv2d_rung_matches_torch_mixed(algorithm):
    rng = np.random.default_rng(1)
    x, w, b = conv_problem(rng, np.float64, **MIXED)
    with kc.conv_algorithm(algorithm):
        assert kc.get_conv_algorithm() == algorithm
        y = kc.conv2d(x, w, b, spec_of(x, w, MIXED_ARGS))
    assert kc.get_conv_algorithm() == kc.DEFAULT_ALGORITHM
    check_against_torch(y, R.conv2d(x, w, b, **MIXED_ARGS), "y")


def test_conv2d_tiled_spans_tiles_float32():
    """W_out = 18 > 16: two tiles across w, the second partial; threads past the edge load
    the halo but must not store."""
    rng = np.random.default_rng(2)
    x, w, b = conv_problem(rng, np.float32, 1, 2, 5, 20, 3, (2, 3))
    spec = spec_of(x, w)
    assert (spec.H_out, spec.W_out) == (4, 18)
    assert conv_tiled.choose_tile(spec) == conv_tiled.Tile(TH=4, TW=16)
    with kc.conv_algorithm("tiled"):
        y = kc.conv2d(x, w, b, spec)
    check_against_torch(y, R.conv2d(x, w, b), "y")


def test_conv2d_tiled_falls_back_when_patch_does_not_fit():
    """A dilated kernel whose 1 x 1-tile patch (71 x 71) exceeds shared memory runs rung (a)."""
    rng = np.random.default_rng(3)
    x, w, b = conv_problem(rng, np.float64, 1, 1, 72, 71, 2, (2, 2))
    spec = spec_of(x, w, dict(PLAIN_ARGS, dilation=(70, 70)))
    assert conv_tiled.choose_tile(spec) is None
    with kc.conv_algorithm("tiled"):
        y = kc.conv2d(x, w, b, spec)
    check_against_torch(y, R.conv2d(x, w, b, dilation=70), "y")


def _igemm_all_modes(tile, dtype, shape, args, splits):
    """Forward, grad_input and grad_weight (split) with the given tile, against torch."""
    rng = np.random.default_rng(4)
    x, w, b = conv_problem(rng, dtype, **shape)
    y_ref = R.conv2d(x, w, b, **args)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    gx_ref, gw_ref, _ = R.conv2d_backward(gy, x, w, **args)
    spec = spec_of(x, w, args)
    dx, dw, dgy = to_device(x), to_device(w), to_device(gy)
    check_against_torch(conv_igemm.conv2d(dx, dw, to_device(b), spec, tile=tile), y_ref, "y")
    check_against_torch(conv_backward.grad_input_igemm(dgy, dw, spec, tile=tile), gx_ref,
                        "grad_x")
    check_against_torch(conv_backward.grad_weight_igemm(dgy, dx, spec, splits=splits,
                                                        tile=tile), gw_ref, "grad_weight")


@pytest.mark.parametrize("tile", list(conv_igemm.CONFIGS))
def test_igemm_tile_partial_tiles_matches_torch(tile):
    """Every tile configuration on the mixed problem: partial tiles in M, in the columns and
    in the reduction (R = 2*3*2 = 12 forward, 3*3*2 = 18 for grad_input: over one BK = 16
    tile), and grad_weight's reduction cut into 3 splits summed by the reduce kernel."""
    shape = dict(MIXED, C_out=6)
    _igemm_all_modes(tile, np.float64, shape, MIXED_ARGS, splits=3)


def test_igemm_64x64_spans_two_tiles_each_way_float32():
    """M = 66 > 64 rows and 70 > 64 columns: a 2 x 2 grid of blocks, all but one partial."""
    shape = dict(N=1, C_in=1, H=5, W=15, C_out=66, kernel=(1, 2))
    _igemm_all_modes("64x64", np.float32, shape, PLAIN_ARGS, splits=2)


def test_igemm_16x256_spans_two_column_tiles():
    """17 * 17 = 289 > 256 output pixels: two column tiles, the second partial."""
    rng = np.random.default_rng(5)
    x, w, b = conv_problem(rng, np.float64, 1, 1, 17, 17, 3, (1, 1))
    y = conv_igemm.conv2d(to_device(x), to_device(w), to_device(b), spec_of(x, w),
                          tile="16x256")
    check_against_torch(y, R.conv2d(x, w, b), "y")


def test_igemm_grad_input_stride_phases():
    """grad_input runs one GEMM per stride phase: along H (stride 2, a 1-row kernel) phase 1
    is reached by no kernel row and must come out zero; along W (stride 3, dilation 2) each
    of the 3 phases gets one kernel column."""
    rng = np.random.default_rng(14)
    x, w, _ = conv_problem(rng, np.float64, 1, 2, 7, 8, 3, (1, 3), bias=False)
    args = dict(stride=(2, 3), padding=(0, 1), dilation=(1, 2), groups=1)
    spec = spec_of(x, w, args)
    phases = conv_igemm.grad_input_phases(spec)
    assert [(p.h0, p.w0, p.H_p, p.W_p, p.ni, p.nj) for p in phases] == [
        (0, 0, 4, 3, 1, 1), (0, 1, 4, 3, 1, 1), (0, 2, 4, 2, 1, 1),
        (1, 0, 3, 3, 0, 1), (1, 1, 3, 3, 0, 1), (1, 2, 3, 2, 0, 1)]
    # input column w = w0 + 3*w2 meets kernel column j where w + 1 - 2*j = 3*wo: w0 = 0 takes
    # j0 = 2 from wo = w2 - 1, w0 = 1 takes j0 = 1 from wo = w2, w0 = 2 takes j0 = 0 from w2 + 1
    assert [(p.j0, p.wo0) for p in phases[:3]] == [(2, -1), (1, 0), (0, 1)]
    gy = rng.standard_normal(R.conv2d(x, w, **args).shape)
    grads = kc.conv2d_backward(gy, x, w, spec)
    for ours, theirs, name in zip(grads, R.conv2d_backward(gy, x, w, **args),
                                  ("grad_x", "grad_weight", "grad_bias"), strict=True):
        check_against_torch(ours, theirs, name)


def test_igemm_pick_tile():
    assert conv_igemm.pick_tile(6, 10_000, 1) == "16x256"
    assert conv_igemm.pick_tile(64, 10_000, 1) == "64x64"


def test_split_reduction_uses_whole_tiles():
    assert conv_igemm.split_reduction(72, 3, 16, 1) == (32, 3)
    assert conv_igemm.split_reduction(72, 100, 16, 1) == (16, 5)
    assert conv_igemm.split_reduction(10, 1, 16, 1) == (16, 1)


def test_corr2d_d2l_numbers_on_device():
    """d2l's example: 0..8 (3 x 3) with kernel 0..3 (2 x 2) gives 19, 25, 37, 43."""
    X = np.arange(9.0).reshape(3, 3)
    K = np.arange(4.0).reshape(2, 2)
    Y = kc.corr2d(X, K)
    assert isinstance(Y, np.ndarray)
    np.testing.assert_array_equal(Y, [[19.0, 25.0], [37.0, 43.0]])
    dY = kc.corr2d(cuda.to_device(X), cuda.to_device(K))
    assert is_device_array(dY)
    np.testing.assert_array_equal(dY.copy_to_host(), [[19.0, 25.0], [37.0, 43.0]])


# --------------------------------------------------------------------------- conv backward


@pytest.mark.parametrize("algorithm", ["direct", "igemm"])
def test_conv2d_backward_matches_torch_mixed(algorithm):
    rng = np.random.default_rng(6)
    x, w, _ = conv_problem(rng, np.float64, **MIXED, bias=False)
    gy = rng.standard_normal(R.conv2d(x, w, **MIXED_ARGS).shape)
    with kc.conv_algorithm(algorithm):
        grads = kc.conv2d_backward(gy, x, w, spec_of(x, w, MIXED_ARGS))
    for ours, theirs, name in zip(grads, R.conv2d_backward(gy, x, w, **MIXED_ARGS),
                                  ("grad_x", "grad_weight", "grad_bias"), strict=True):
        check_against_torch(ours, theirs, name)


def test_conv2d_backward_device_arrays_stay_on_device_float32():
    rng = np.random.default_rng(7)
    x, w, _ = conv_problem(rng, np.float32, 1, 3, 6, 5, 2, (2, 3), bias=False)
    args = dict(stride=(1, 2), padding=(1, 1), dilation=(1, 1), groups=1)
    gy = rng.standard_normal(R.conv2d(x, w, **args).shape).astype(np.float32)
    grads = kc.conv2d_backward(cuda.to_device(gy), cuda.to_device(x), cuda.to_device(w),
                               spec_of(x, w, args))
    assert all(is_device_array(g) for g in grads)
    for ours, theirs, name in zip(grads, R.conv2d_backward(gy, x, w, **args),
                                  ("grad_x", "grad_weight", "grad_bias"), strict=True):
        check_against_torch(ours, theirs, name)


def test_conv2d_device_array_in_device_array_out():
    rng = np.random.default_rng(8)
    x, w, b = conv_problem(rng, np.float64, 1, 2, 5, 6, 2, (3, 2))
    spec = spec_of(x, w, dict(PLAIN_ARGS, padding=(1, 0)))
    y = kc.conv2d(cuda.to_device(x), cuda.to_device(w), cuda.to_device(b), spec)
    assert is_device_array(y)
    check_against_torch(y, R.conv2d(x, w, b, padding=(1, 0)), "y")
    assert isinstance(kc.conv2d(x, w, b, spec), np.ndarray)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_zero_batch_device_array_in_device_array_out(dtype):
    """N = 0 launches no kernel: the functional layer answers on the device for a CUDA x."""
    x = np.zeros((0, 2, 5, 6), dtype)
    w = np.ones((4, 1, 3, 2), dtype)
    y = F.conv2d(cuda.to_device(x), cuda.to_device(w), stride=(2, 1), groups=2,
                 backend="cuda")
    assert is_device_array(y)
    check_against_torch(y, R.conv2d(x, w, stride=(2, 1), groups=2), "y")
    gy = np.zeros(y.shape, dtype)
    grads = F.conv2d_backward(cuda.to_device(gy), cuda.to_device(x), cuda.to_device(w),
                              stride=(2, 1), groups=2, backend="cuda")
    assert all(is_device_array(g) for g in grads)
    for ours, theirs, name in zip(grads, R.conv2d_backward(gy, x, w, stride=(2, 1), groups=2),
                                  ("grad_x", "grad_weight", "grad_bias"), strict=True):
        check_against_torch(ours, theirs, name)


def test_pad_bottom_right():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    out = kc.pad_bottom_right(cuda.to_device(x), (1, 2))
    assert is_device_array(out)
    np.testing.assert_array_equal(out.copy_to_host(),
                                  np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 2))))


def test_conv_algorithm_rejects_unknown_name():
    with pytest.raises(ValueError, match="algorithm"):
        with kc.conv_algorithm("winograd"):
            pass
    with pytest.raises(ValueError, match="algorithm"):
        kc.set_conv_algorithm("fft")


def test_unavailable_reason_is_none_here():
    assert kc.unavailable_reason() is None
    assert set(kc.KERNEL_FUNCTIONS) <= set(dir(kc))


# --------------------------------------------------------------------------- pooling


def test_max_pool2d_ties_and_nans_forward_backward():
    """Ties go to the first maximum in row-major window order; among NaNs the last wins and
    the NaN propagates; overlapping windows (stride 1 < kernel) accumulate; padding and
    ceil_mode add windows that hang over the edge. The backward gives the same gradient
    from the forward's indices as from its own search of x."""
    x = np.array([[[[1, 3, 3, 0, 2],
                    [3, 1, 3, 3, 2],
                    [0, 3, 1, 2, 2],
                    [2, 2, np.nan, 2, 1]]]], dtype=np.float64)
    x = np.concatenate([x, -x], axis=1)  # (1, 2, 4, 5): ties of negative values too
    rng = np.random.default_rng(9)
    for kernel, stride, padding, dilation, ceil_mode in [
        ((2, 3), (1, 1), (1, 1), (1, 1), False),
        ((3, 2), (2, 1), (1, 0), (1, 2), True),
    ]:
        spec = PoolSpec.from_shape(x.shape, kernel, stride, padding, dilation, ceil_mode)
        y_ref, indices_ref = R.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode,
                                          return_indices=True)
        check_against_torch(kc.max_pool2d(x, spec), y_ref)
        y, indices = kc.max_pool2d(x, spec, return_indices=True)
        check_against_torch(y, y_ref)
        assert indices.dtype == np.int64
        np.testing.assert_array_equal(indices, indices_ref)
        gy = rng.standard_normal(y_ref.shape)
        gx_ref = R.max_pool2d_backward(gy, x, kernel, stride, padding, dilation, ceil_mode)
        check_against_torch(kc.max_pool2d_backward(gy, x, None, spec), gx_ref)
        check_against_torch(kc.max_pool2d_backward(gy, x, indices, spec), gx_ref)


def test_max_pool2d_float32_device_arrays():
    rng = np.random.default_rng(10)
    x = rng.integers(-2, 3, size=(2, 2, 5, 6)).astype(np.float32)  # many ties
    spec = PoolSpec.from_shape(x.shape, (2, 2), (2, 2), (0, 1), (1, 1), True)
    dx = cuda.to_device(x)
    y, indices = kc.max_pool2d(dx, spec, return_indices=True)
    assert is_device_array(y) and is_device_array(indices)
    check_against_torch(y, R.max_pool2d(x, 2, 2, (0, 1), 1, True))
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx_ref = R.max_pool2d_backward(gy, x, 2, 2, (0, 1), 1, True)
    for given in (None, indices):
        gx = kc.max_pool2d_backward(cuda.to_device(gy), dx, given, spec)
        assert is_device_array(gx)
        check_against_torch(gx, gx_ref)


@pytest.mark.parametrize(
    "kernel, stride, padding, ceil_mode, count_include_pad, divisor_override",
    [
        ((3, 2), (2, 1), (1, 1), True, False, None),  # windows past the edge, real cells only
        ((3, 2), (2, 1), (1, 1), True, True, None),  # ... counting the padding
        ((2, 3), (1, 2), (1, 0), False, True, 5),  # divisor_override
    ],
)
def test_avg_pool2d_forward_backward(kernel, stride, padding, ceil_mode, count_include_pad,
                                     divisor_override):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 2, 6, 5))
    args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    spec = PoolSpec.from_shape(x.shape, kernel, stride, padding, (1, 1), ceil_mode)
    spec = spec.averaged(count_include_pad, divisor_override)
    y_ref = R.avg_pool2d(x, *args)
    check_against_torch(kc.avg_pool2d(x, spec), y_ref)
    gy = rng.standard_normal(y_ref.shape)
    check_against_torch(kc.avg_pool2d_backward(gy, spec), R.avg_pool2d_backward(gy, x, *args))


@pytest.mark.parametrize("output_size", [(3, 2), (7, 4), (1, 1)])
def test_adaptive_avg_pool2d_forward_backward(output_size):
    """Overlapping windows (5 -> 3), output larger than the input (5 -> 7), global (1 x 1)."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 1, 5, 3))
    spec = AdaptivePoolSpec.from_shape(x.shape, output_size)
    check_against_torch(kc.adaptive_avg_pool2d(x, spec), R.adaptive_avg_pool2d(x, output_size))
    gy = rng.standard_normal((2, 1) + output_size)
    check_against_torch(kc.adaptive_avg_pool2d_backward(gy, spec),
          R.adaptive_avg_pool2d_backward(gy, x, output_size))


def test_avg_and_adaptive_pool_float32_device_arrays():
    """Device arrays in, device arrays out; a backward's result lives where grad_y does."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    dx = cuda.to_device(x)
    spec = PoolSpec.from_shape(x.shape, (2, 2), (1, 2), (1, 1))
    y = kc.avg_pool2d(dx, spec)
    assert is_device_array(y)
    check_against_torch(y, R.avg_pool2d(x, 2, (1, 2), 1))
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = kc.avg_pool2d_backward(cuda.to_device(gy), spec)
    assert is_device_array(gx)
    check_against_torch(gx, R.avg_pool2d_backward(gy, x, 2, (1, 2), 1))
    assert isinstance(kc.avg_pool2d_backward(gy, spec), np.ndarray)
    adaptive = AdaptivePoolSpec.from_shape(x.shape, (3, 3))
    ya = kc.adaptive_avg_pool2d(dx, adaptive)
    assert is_device_array(ya)
    check_against_torch(ya, R.adaptive_avg_pool2d(x, (3, 3)))
    gya = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    gxa = kc.adaptive_avg_pool2d_backward(cuda.to_device(gya), adaptive)
    assert is_device_array(gxa)
    check_against_torch(gxa, R.adaptive_avg_pool2d_backward(gya, x, (3, 3)))
