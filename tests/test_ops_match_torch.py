"""Every op x every backend x forward and backward, against PyTorch, under hypothesis.

Each test draws a valid problem (tests/strategies.py), runs it through the public API
``minitorch_cnn.functional`` with one backend, and compares with ``reference`` (torch).
Backends come from ``mc.backends()``, so a new backend joins every test by registering.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import reference as R
from minitorch_cnn import functional as F

from .checks import BACKENDS, DTYPES, check_against_torch, examples, max_size
from .strategies import adaptive_problems, conv_problems, pool_problems

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])


def run_property(backend: str, strategy, check) -> None:
    """Run ``check`` over ``strategy`` with the example budget of ``backend``."""
    n = examples(backend)
    test = given(strategy)(check)
    if n is not None:
        test = settings(max_examples=n)(test)
    test()


@backends
@dtypes
def test_conv2d_forward_matches_torch(backend, dtype):
    def check(p):
        y = F.conv2d(p.x, p.weight, p.bias, **p.kwargs, backend=backend)
        check_against_torch(y, R.conv2d(p.x, p.weight, p.bias, **p.kwargs), "y")

    run_property(backend, conv_problems(dtype, max_size(backend)), check)


@backends
@dtypes
def test_conv2d_backward_grad_x_grad_weight_grad_bias_match_torch(backend, dtype):
    def check(p):
        gx, gw, gb = F.conv2d_backward(p.grad_y, p.x, p.weight, **p.kwargs, backend=backend)
        ex, ew, eb = R.conv2d_backward(p.grad_y, p.x, p.weight, **p.kwargs)
        check_against_torch(gx, ex, "grad_x")
        check_against_torch(gw, ew, "grad_weight")
        check_against_torch(gb, eb, "grad_bias")

    run_property(backend, conv_problems(dtype, max_size(backend)), check)


@backends
@dtypes
def test_corr2d_matches_torch(backend, dtype):
    def check(p):
        X, K = p.x[0, 0], p.weight[0, 0]
        if K.shape[0] > X.shape[0] or K.shape[1] > X.shape[1]:
            X, K = K, X[: K.shape[0], : K.shape[1]]
        check_against_torch(F.corr2d(X, K, backend=backend), R.corr2d(X, K), "Y")

    run_property(backend, conv_problems(dtype, max_size(backend)), check)


@backends
@dtypes
def test_max_pool2d_forward_matches_torch_with_ties_and_nan(backend, dtype):
    def check(p):
        y = F.max_pool2d(p.x, **p.kwargs, backend=backend)
        check_against_torch(y, R.max_pool2d(p.x, **p.kwargs), "y")

    run_property(backend, pool_problems("max", dtype, max_size(backend)), check)


@backends
@dtypes
def test_max_pool2d_backward_matches_torch_first_max_wins_ties(backend, dtype):
    def check(p):
        gx = F.max_pool2d_backward(p.grad_y, p.x, **p.kwargs, backend=backend)
        check_against_torch(gx, R.max_pool2d_backward(p.grad_y, p.x, **p.kwargs), "grad_x")

    run_property(backend, pool_problems("max", dtype, max_size(backend)), check)


def _empty_windows(x_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(H_out, W_out) bools: windows with no cell inside the input (possible with dilation)."""
    from kernels.common import pool_output_size

    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    k, p, d = pair(kernel_size), pair(padding), pair(dilation)
    s = k if stride is None else pair(stride)
    inside = []
    for axis in (0, 1):
        size = x_shape[2 + axis]
        out = pool_output_size(size, k[axis], s[axis], p[axis], d[axis], ceil_mode)
        taps = np.arange(out)[:, None] * s[axis] - p[axis] + np.arange(k[axis]) * d[axis]
        inside.append(((taps >= 0) & (taps < size)).any(axis=1))  # (out,)
    return ~(inside[0][:, None] & inside[1][None, :])


@backends
@dtypes
def test_max_pool2d_return_indices_equal_torchs_and_drive_the_backward(backend, dtype):
    """The int64 indices are PyTorch's, element for element (ties: first maximum; NaN: the
    last), -1 where a window has no cell inside the input (PyTorch's index points outside
    it there); the backward given them equals torch's autograd."""
    def check(p):
        y, indices = F.max_pool2d(p.x, **p.kwargs, return_indices=True, backend=backend)
        y_torch, indices_torch = R.max_pool2d(p.x, **p.kwargs, return_indices=True)
        check_against_torch(y, y_torch, "y")
        assert indices.dtype == np.int64 and indices.shape == indices_torch.shape
        empty = np.broadcast_to(_empty_windows(p.x.shape, **p.kwargs), indices.shape)
        np.testing.assert_array_equal(indices[~empty], indices_torch[~empty])
        assert (indices[empty] == -1).all()
        if not empty.any():  # torch's backward writes out of bounds for an empty window
            gx = F.max_pool2d_backward(p.grad_y, p.x, **p.kwargs, indices=indices,
                                       backend=backend)
            check_against_torch(gx, R.max_pool2d_backward(p.grad_y, p.x, **p.kwargs), "grad_x")

    run_property(backend, pool_problems("max", dtype, max_size(backend)), check)


@backends
def test_max_pool2d_window_wholly_in_padding_gives_minus_inf_index_minus_one_no_gradient(
        backend):
    # W = 1, kernel width 2, dilation 2, padding 1: the taps sit at w = -1 and w = 1
    x = np.arange(1.0, 4.0).reshape(1, 1, 3, 1)  # (1, 1, 3, 1)
    kwargs = dict(kernel_size=(1, 2), stride=1, padding=(0, 1), dilation=(1, 2))
    y, indices = F.max_pool2d(x, **kwargs, return_indices=True, backend=backend)
    np.testing.assert_array_equal(y, np.full((1, 1, 3, 1), -np.inf))
    np.testing.assert_array_equal(indices, np.full((1, 1, 3, 1), -1))
    for given_indices in (None, indices):
        gx = F.max_pool2d_backward(np.ones((1, 1, 3, 1)), x, **kwargs, indices=given_indices,
                                   backend=backend)
        np.testing.assert_array_equal(gx, np.zeros_like(x))


@backends
@dtypes
def test_avg_pool2d_forward_matches_torch(backend, dtype):
    def check(p):
        y = F.avg_pool2d(p.x, **p.kwargs, backend=backend)
        check_against_torch(y, R.avg_pool2d(p.x, **p.kwargs), "y")

    run_property(backend, pool_problems("avg", dtype, max_size(backend)), check)


@backends
@dtypes
def test_avg_pool2d_backward_matches_torch(backend, dtype):
    def check(p):
        gx = F.avg_pool2d_backward(p.grad_y, p.x, **p.kwargs, backend=backend)
        check_against_torch(gx, R.avg_pool2d_backward(p.grad_y, p.x, **p.kwargs), "grad_x")

    run_property(backend, pool_problems("avg", dtype, max_size(backend)), check)


@backends
@dtypes
def test_adaptive_avg_pool2d_forward_matches_torch(backend, dtype):
    def check(p):
        y = F.adaptive_avg_pool2d(p.x, **p.kwargs, backend=backend)
        check_against_torch(y, R.adaptive_avg_pool2d(p.x, **p.kwargs), "y")

    run_property(backend, adaptive_problems(dtype, max_size(backend)), check)


@backends
@dtypes
def test_adaptive_avg_pool2d_backward_matches_torch(backend, dtype):
    def check(p):
        gx = F.adaptive_avg_pool2d_backward(p.grad_y, p.x, **p.kwargs, backend=backend)
        expected = R.adaptive_avg_pool2d_backward(p.grad_y, p.x, **p.kwargs)
        check_against_torch(gx, expected, "grad_x")

    run_property(backend, adaptive_problems(dtype, max_size(backend)), check)


@backends
def test_every_op_leaves_its_inputs_unchanged(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    gy = rng.standard_normal((2, 6, 7, 6))
    copies = [a.copy() for a in (x, w, b, gy)]
    F.conv2d(x, w, b, padding="same", groups=2, backend=backend)
    F.conv2d_backward(gy, x, w, padding="same", groups=2, backend=backend)
    gp = rng.standard_normal((2, 4, 4, 3))
    F.max_pool2d(x, 2, ceil_mode=True, backend=backend)
    F.max_pool2d_backward(gp, x, 2, ceil_mode=True, backend=backend)
    F.avg_pool2d(x, 2, ceil_mode=True, backend=backend)
    F.avg_pool2d_backward(gp, x, 2, ceil_mode=True, backend=backend)
    F.adaptive_avg_pool2d(x, (4, 3), backend=backend)
    F.adaptive_avg_pool2d_backward(gp, x, (4, 3), backend=backend)
    for before, after in zip(copies, (x, w, b, gy), strict=True):
        np.testing.assert_array_equal(before, after)
