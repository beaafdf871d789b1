"""Tests that concern only the ``numpy`` backend (kernels/vectorized.py).

The every-op equivalence with torch lives in test_ops_match_torch.py; here are the things
only this backend has: batch chunking under COLUMN_BYTES_LIMIT, the dedicated 1x1 conv path,
the vectorized form of PyTorch's max-pool tie/NaN rule, and that nothing writes into its
inputs (the window views are read-only views of them).
"""

from __future__ import annotations

import numpy as np
import pytest

import kernels.vectorized as V
import reference.functional as R
from kernels.common import AdaptivePoolSpec, ConvSpec, PoolSpec
from minitorch_cnn import functional as F
from tests.checks import check_against_torch

BACKEND = "numpy"


def _conv_case(rng, dtype, N=5, groups=2, kernel=(2, 3)):
    x = rng.standard_normal((N, 2 * groups, 7, 6)).astype(dtype)
    weight = rng.standard_normal((3 * groups, 2) + kernel).astype(dtype)
    bias = rng.standard_normal(3 * groups).astype(dtype)
    return x, weight, bias


def _check_conv(x, weight, bias, **kwargs):
    """Forward and all three gradients of the numpy backend against torch."""
    y = F.conv2d(x, weight, bias, **kwargs, backend=BACKEND)
    check_against_torch(y, R.conv2d(x, weight, bias, **kwargs), "y")
    grad_y = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    ours = F.conv2d_backward(grad_y, x, weight, **kwargs, backend=BACKEND)
    expected = R.conv2d_backward(grad_y, x, weight, **kwargs)
    for name, a, b in zip(("grad_x", "grad_weight", "grad_bias"), ours, expected, strict=True):
        check_against_torch(a, b, name)


# --------------------------------------------------------------------------- batch chunking


def test_batch_chunks_cover_the_batch_within_the_limit(monkeypatch):
    monkeypatch.setattr(V, "COLUMN_BYTES_LIMIT", 250)
    assert V._batch_chunks(5, 100) == [(0, 2), (2, 4), (4, 5)]
    assert V._batch_chunks(3, 10_000) == [(0, 1), (1, 2), (2, 3)]  # one sample is the minimum
    monkeypatch.setattr(V, "COLUMN_BYTES_LIMIT", 256 * 2**20)
    assert V._batch_chunks(5, 100) == [(0, 5)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("samples_per_chunk", [1, 2])
def test_conv2d_batch_chunked_matches_torch(monkeypatch, dtype, samples_per_chunk):
    """A tiny COLUMN_BYTES_LIMIT splits the batch; the results must not change."""
    chunks_seen = []
    real_batch_chunks = V._batch_chunks

    def spy(N, sample_bytes):
        chunks = real_batch_chunks(N, sample_bytes)
        chunks_seen.append(chunks)
        return chunks

    # one sample's columns: C_in*kH*kW = 4*2*3 rows, H_out*W_out = 4*6 columns
    sample_bytes = 4 * 2 * 3 * 4 * 6 * np.dtype(dtype).itemsize
    monkeypatch.setattr(V, "COLUMN_BYTES_LIMIT", samples_per_chunk * sample_bytes)
    monkeypatch.setattr(V, "_batch_chunks", spy)
    x, weight, bias = _conv_case(np.random.default_rng(0), dtype)
    _check_conv(x, weight, bias, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    expected = {1: [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], 2: [(0, 2), (2, 4), (4, 5)]}
    assert chunks_seen == [expected[samples_per_chunk]] * 2  # forward, then backward


# --------------------------------------------------------------------------- the 1x1 path


def _forbid_im2col(monkeypatch):
    def im2col_called(*args, **kwargs):
        raise AssertionError("_im2col was called")

    monkeypatch.setattr(V, "_im2col", im2col_called)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(stride=1, padding=0, groups=1),
        dict(stride=(2, 1), padding=0, groups=2),
        dict(stride=(1, 3), padding=(1, 0), dilation=2, groups=2),
    ],
    ids=["plain", "stride_2_1_groups_2", "padding_dilation"],
)
def test_conv2d_1x1_skips_im2col_and_matches_torch(monkeypatch, dtype, kwargs):
    _forbid_im2col(monkeypatch)
    x, weight, bias = _conv_case(np.random.default_rng(2), dtype, N=3,
                                 groups=kwargs["groups"], kernel=(1, 1))
    _check_conv(x, weight, bias, **kwargs)


def test_forbidding_im2col_does_break_a_3x3_conv(monkeypatch):
    """The control for the test above: the patch does reach the conv path."""
    _forbid_im2col(monkeypatch)
    x, weight, bias = _conv_case(np.random.default_rng(2), np.float64, N=1, kernel=(3, 3))
    with pytest.raises(AssertionError, match="_im2col was called"):
        F.conv2d(x, weight, bias, groups=2, backend=BACKEND)


# --------------------------------------------------------------------------- max-pool ties, NaN


def _check_max_pool(x, grad_y=None, **kwargs):
    y = F.max_pool2d(x, **kwargs, backend=BACKEND)
    check_against_torch(y, R.max_pool2d(x, **kwargs), "y")
    assert np.array_equal(np.isnan(y), np.isnan(R.max_pool2d(x, **kwargs)))
    if grad_y is None:
        grad_y = np.random.default_rng(3).standard_normal(y.shape).astype(x.dtype)
    grad_x = F.max_pool2d_backward(grad_y, x, **kwargs, backend=BACKEND)
    check_against_torch(grad_x, R.max_pool2d_backward(grad_y, x, **kwargs), "grad_x")
    return y, grad_x


def test_max_pool_tie_goes_to_first_maximum_in_row_major_order():
    x = np.array([[[[1.0, 5.0, 5.0],
                    [5.0, 2.0, 5.0]]]])  # one 2x3 window: 5 at (0,1), (0,2), (1,0), (1,2)
    _, grad_x = _check_max_pool(x, np.ones((1, 1, 1, 1)), kernel_size=(2, 3))
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 1.0
    np.testing.assert_array_equal(grad_x, expected)


def test_max_pool_last_nan_wins_and_propagates():
    x = np.array([[[[np.nan, 9.0, np.nan],
                    [1.0, np.nan, 2.0]]]])  # NaNs at (0,0), (0,2), (1,1): the last is (1,1)
    y, grad_x = _check_max_pool(x, np.ones((1, 1, 1, 1)), kernel_size=(2, 3))
    assert np.isnan(y).all()
    expected = np.zeros_like(x)
    expected[0, 0, 1, 1] = 1.0
    np.testing.assert_array_equal(grad_x, expected)


def test_max_pool_all_minus_inf_window_keeps_first_in_bounds_tap():
    """Padding is -inf too; the gradient must still go to the first *real* cell."""
    x = np.full((1, 1, 2, 3), -np.inf)
    _, grad_x = _check_max_pool(x, np.ones((1, 1, 2, 2)), kernel_size=(2, 3), stride=(2, 2),
                                padding=(1, 1))
    assert grad_x[0, 0, 0, 0] == 1.0  # the first window's only real cells start at (0, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(6))
def test_max_pool_ties_and_nans_match_torch_with_overlapping_windows(dtype, seed):
    """Small integers (many ties), some NaN and -inf, overlapping and dilated windows."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(3, 2, 7, 8)).astype(dtype)
    x[rng.random(x.shape) < 0.08] = np.nan
    x[rng.random(x.shape) < 0.08] = -np.inf
    kwargs = [
        dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), ceil_mode=True),
        dict(kernel_size=3, stride=1, padding=1),
        dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1)),
        dict(kernel_size=(2, 2), stride=(3, 3), ceil_mode=True),
        dict(kernel_size=(1, 3), stride=(1, 1), padding=(0, 1), dilation=(1, 2)),
        dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True),
    ][seed]
    _check_max_pool(x, **kwargs)


def test_max_pool_window_wholly_in_padding_gives_minus_inf_and_no_gradient():
    """W=1, kW=2, dW=2, pW=1: every window's taps are at columns -1 and 1, both padding.

    PyTorch's forward gives -inf; its backward sends the gradient to an index outside the
    window (past the array for the last row), so ours is checked against the documented rule.
    """
    x = np.arange(5.0).reshape(1, 1, 5, 1)
    kwargs = dict(kernel_size=(2, 2), stride=(1, 2), padding=(1, 1), dilation=(1, 2))
    y = F.max_pool2d(x, **kwargs, backend=BACKEND)
    np.testing.assert_array_equal(y, R.max_pool2d(x, **kwargs))
    assert np.isneginf(y).all()
    grad_x = F.max_pool2d_backward(np.ones_like(y), x, **kwargs, backend=BACKEND)
    np.testing.assert_array_equal(grad_x, np.zeros_like(x))


# --------------------------------------------------------------------------- inputs, dtypes


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_op_writes_into_its_inputs_or_returns_a_view_of_them(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 6, 5)).astype(dtype)
    x[0, 0, 0, 0] = np.nan
    weight = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
    bias = rng.standard_normal(6).astype(dtype)
    X, K = x[0, 1].copy(), weight[0, 0].copy()
    inputs = [x, weight, bias, X, K]
    saved = [a.copy() for a in inputs]

    # kernel-level calls: the arrays and the spec, as the functional layer passes them
    conv = ConvSpec.from_shapes(x.shape, weight.shape, stride=(2, 1), padding=(1, 1),
                                dilation=(1, 2), groups=2)
    y = V.conv2d(x, weight, bias, conv)
    grad_y = np.ones_like(y)
    outputs = [y, *V.conv2d_backward(grad_y, x, weight, conv)]
    max_spec = PoolSpec.from_shape(x.shape, (3, 2), stride=(2, 1), padding=(1, 1),
                                   dilation=(1, 1), ceil_mode=True)
    y_max, indices = V.max_pool2d(x, max_spec, return_indices=True)
    grad_max = np.ones_like(y_max)
    outputs += [y_max, V.max_pool2d_backward(grad_max, x, None, max_spec),
                V.max_pool2d_backward(grad_max, x, indices, max_spec)]
    avg_spec = PoolSpec.from_shape(x.shape, (3, 2), stride=(2, 1), padding=(1, 1),
                                   ceil_mode=True).averaged(count_include_pad=False)
    y_avg = V.avg_pool2d(x, avg_spec)
    grad_avg = np.ones_like(y_avg)
    outputs += [y_avg, V.avg_pool2d_backward(grad_avg, avg_spec)]
    ada_spec = AdaptivePoolSpec.from_shape(x.shape, (4, 3))
    y_ada = V.adaptive_avg_pool2d(x, ada_spec)
    grad_ada = np.ones_like(y_ada)
    outputs += [y_ada, V.adaptive_avg_pool2d_backward(grad_ada, ada_spec), V.corr2d(X, K)]

    for a, before in zip(inputs + [grad_y, grad_max, grad_avg, grad_ada],
                         saved + [np.ones_like(grad_y), np.ones_like(grad_max),
                                  np.ones_like(grad_avg), np.ones_like(grad_ada)],
                         strict=True):
        np.testing.assert_array_equal(a, before)
    for out in outputs:
        assert out.dtype == dtype, f"expected {dtype}, got {out.dtype}"
        for a in inputs:
            assert not np.shares_memory(out, a)


def test_window_view_is_read_only():
    x = np.zeros((1, 1, 5, 5))
    spec = ConvSpec.from_shapes(x.shape, (1, 1, 2, 3), stride=(2, 1), padding=(0, 0),
                                dilation=(1, 2), groups=1)  # H_out, W_out = 2, 1
    windows = V._window_view(x, spec)
    assert windows.shape == (1, 1, 2, 1, 2, 3)
    assert not windows.flags.writeable
    with pytest.raises(ValueError):
        windows[0, 0, 0, 0, 0, 0] = 1.0
