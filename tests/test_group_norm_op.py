"""``F.group_norm`` and ``F.layer_norm`` with their backwards on every backend, against PyTorch.

Forward against ``torch.nn.functional.group_norm`` / ``layer_norm``, backward against torch
autograd, float64 tightly and float32 loosely, on drawn shapes (no trailing dims up to two,
groups of one channel up to all of them, normalized shapes of one to three dims), with and
without weight and bias, groups whose values sit far from 0. Then the statistics they save,
PyTorch's refusal of a group of one value, empty batches, device arrays, and one test per
validation message. Both are batch_norm's kernels on a view plus a depthwise 1x1 conv
(``minitorch_cnn.functional.normalization``), so these tests also prove that composition.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minitorch_cnn import functional as F
from reference import functional as R

from .checks import BACKENDS, DTYPES, check_against_torch, examples

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
values = st.floats(-5, 5, width=32)


def _affine(draw, dtype, shape):
    """A drawn (weight, bias) of ``shape``: both, one of them or neither."""
    params = hnp.arrays(dtype, shape, elements=st.floats(-2, 2, width=32))
    weight = draw(params) if draw(st.booleans()) else None
    bias = draw(params) if draw(st.booleans()) else None
    return weight, bias


@st.composite
def group_norm_problems(draw, dtype, small):
    """x (N, C, *), num_groups, weight/bias (C,) or None, grad_y, eps."""
    side = 2 if small else 4
    G, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    trailing = draw(st.lists(st.integers(1, side), min_size=0, max_size=2))
    shape = (draw(st.integers(1, side)), G * per_group) + tuple(trailing)
    offset = draw(st.floats(-3, 3, width=32))  # groups whose mean is far from 0
    x = draw(hnp.arrays(dtype, shape, elements=values)) + dtype(offset)
    weight, bias = _affine(draw, dtype, (shape[1],))
    grad_y = draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    return dict(x=x, num_groups=G, weight=weight, bias=bias, grad_y=grad_y,
                eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])))


@st.composite
def layer_norm_problems(draw, dtype, small):
    """x (*, *normalized_shape), normalized_shape, weight/bias or None, grad_y, eps."""
    side = 2 if small else 4
    normalized = tuple(draw(st.lists(st.integers(1, side), min_size=1, max_size=3)))
    leading = tuple(draw(st.lists(st.integers(1, side), min_size=0, max_size=2)))
    shape = leading + normalized
    offset = draw(st.floats(-3, 3, width=32))
    x = draw(hnp.arrays(dtype, shape, elements=values)) + dtype(offset)
    weight, bias = _affine(draw, dtype, normalized)
    grad_y = draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    as_int = len(normalized) == 1 and draw(st.booleans())  # LayerNorm(6) as PyTorch takes it
    return dict(x=x, normalized_shape=normalized[0] if as_int else normalized, weight=weight,
                bias=bias, grad_y=grad_y, eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])))


def _in_float64(fn, *args):
    """``fn`` (a reference op) on float64 copies of its array arguments, cast back.

    torch's CPU group_norm sums float32 groups in float32 (ours, like batch_norm's kernels, in
    float64), and a constant group's mean then misses the constant: with ``inv_std`` up to
    ``1 / sqrt(eps)`` the difference shows in grad_weight (-1.3e-4 against an exact 0 for three
    values of 1.595111). So float32 is compared with PyTorch's float64 answer, rounded.
    """
    dtype = next(a.dtype for a in args if isinstance(a, np.ndarray))
    out = fn(*(a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args))
    if isinstance(out, np.ndarray):
        return out.astype(dtype)
    return tuple(o.astype(dtype) for o in out)


def _run_examples(check, backend):
    n = examples(backend)  # fewer in the CUDA simulator
    (check if n is None else settings(max_examples=n)(check))()


def _check_grads(grads, grads_t):
    for ours, theirs, name in zip(grads, grads_t, ("grad_x", "grad_weight", "grad_bias"),
                                  strict=True):
        check_against_torch(ours, theirs, name)


@backends
@dtypes
def test_group_norm_forward_and_backward_match_torch(backend, dtype):
    @given(p=group_norm_problems(dtype, small=backend == "cuda"))
    def check(p):
        x, G = p["x"], p["num_groups"]
        if x.size // G == 1:  # one value per group over the batch: torch refuses it
            return
        y, saved = F.group_norm(x, G, p["weight"], p["bias"], p["eps"], return_saved=True,
                                backend=backend)
        check_against_torch(y, _in_float64(R.group_norm, x, G, p["weight"], p["bias"],
                                           p["eps"]), "y")
        grads = F.group_norm_backward(p["grad_y"], x, G, p["weight"], saved, backend=backend)
        _check_grads(grads, _in_float64(R.group_norm_backward, p["grad_y"], x, G, p["weight"],
                                        p["eps"]))

    _run_examples(check, backend)


@backends
@dtypes
def test_layer_norm_forward_and_backward_match_torch(backend, dtype):
    @given(p=layer_norm_problems(dtype, small=backend == "cuda"))
    def check(p):
        x, shape = p["x"], p["normalized_shape"]
        y, saved = F.layer_norm(x, shape, p["weight"], p["bias"], p["eps"], return_saved=True,
                                backend=backend)
        check_against_torch(y, _in_float64(R.layer_norm, x, shape, p["weight"], p["bias"],
                                           p["eps"]), "y")
        grads = F.layer_norm_backward(p["grad_y"], x, shape, p["weight"], saved,
                                      backend=backend)
        _check_grads(grads, _in_float64(R.layer_norm_backward, p["grad_y"], x, shape,
                                        p["weight"], p["eps"]))

    _run_examples(check, backend)


@backends
def test_group_norm_saves_each_groups_mean_and_inv_std(backend):
    x = np.arange(2 * 4 * 3, dtype=np.float64).reshape(2, 4, 3) ** 1.5  # (N, C, L)
    _, saved = F.group_norm(x, 2, eps=0.25, return_saved=True, backend=backend)
    groups = x.reshape(2, 2, 6)  # (N, G, C // G * L)
    np.testing.assert_allclose(np.asarray(saved.mean), groups.mean(axis=2), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(saved.inv_std), 1 / np.sqrt(groups.var(axis=2) + 0.25),
                               rtol=1e-12)
    x_hat = (groups - groups.mean(axis=2, keepdims=True)) / np.sqrt(
        groups.var(axis=2, keepdims=True) + 0.25)
    np.testing.assert_allclose(np.asarray(saved.x_hat), x_hat.reshape(x.shape), rtol=1e-12,
                               atol=1e-14)


@backends
def test_one_value_per_group_over_the_batch_is_refused_as_torch(backend):
    with pytest.raises(ValueError, match="x: expected more than 1 value per group"):
        F.group_norm(np.ones((1, 2)), 2, backend=backend)
    y = F.layer_norm(np.full((1, 1), 3.0), 1, backend=backend)  # LayerNorm's is fine: 0
    check_against_torch(y, R.layer_norm(np.full((1, 1), 3.0), 1), "y")


@backends
def test_empty_batches_give_empty_outputs_and_zero_gradients(backend):
    x = np.ones((0, 4, 3))
    y, saved = F.group_norm(x, 2, np.ones(4), np.zeros(4), return_saved=True, backend=backend)
    assert np.asarray(y).shape == (0, 4, 3)
    gx, gw, gb = F.group_norm_backward(x, x, 2, np.ones(4), saved, backend=backend)
    assert np.asarray(gx).shape == (0, 4, 3)
    np.testing.assert_array_equal(np.asarray(gw), np.zeros(4))
    y, saved = F.layer_norm(np.ones((0, 3)), 3, return_saved=True, backend=backend)
    assert np.asarray(y).shape == (0, 3)


def test_device_arrays_stay_on_the_device():
    if "cuda" not in BACKENDS:
        pytest.skip("no GPU and no simulator")
    from numba import cuda

    from minitorch_cnn.device import is_device_array

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 4, 3)), rng.standard_normal(4)
    y, saved = F.group_norm(cuda.to_device(x), 2, cuda.to_device(w), return_saved=True,
                            backend="cuda")
    assert is_device_array(y) and all(is_device_array(a) for a in saved)
    grads = F.group_norm_backward(cuda.to_device(x), cuda.to_device(x), 2, cuda.to_device(w),
                                  saved, backend="cuda")
    assert all(is_device_array(g) for g in grads)
    check_against_torch(y, R.group_norm(x, 2, w), "y")


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.group_norm(np.ones((2, 4)), 3), ValueError,
     "num_groups: expected a positive divisor of the 4 channels of x, got 3"),
    (lambda: F.group_norm(np.ones((2, 4)), 2.0), TypeError, "num_groups: expected an int"),
    (lambda: F.group_norm(np.ones(4), 2), ValueError, "x: expected an array"),
    (lambda: F.group_norm(np.ones((2, 4)), 2, np.ones(3)), ValueError,
     r"weight: expected shape \(4,\)"),
    (lambda: F.group_norm(np.ones((2, 4)), 2, np.ones(4, np.float32)), TypeError, "weight"),
    (lambda: F.group_norm(np.ones((2, 4)), 2, eps="small"), TypeError, "eps: expected a float"),
    (lambda: F.group_norm_backward(np.ones((2, 4)), np.ones((2, 4)), 2, None, (1, 2, 3)),
     TypeError, "saved: expected the forward's GroupNormSaved"),
    (lambda: F.group_norm_backward(np.ones((2, 3)), np.ones((2, 4)), 2, None,
                                   F.group_norm(np.ones((2, 4)), 2, return_saved=True)[1]),
     ValueError, r"grad_y: expected shape \(2, 4\)"),
    (lambda: F.layer_norm(np.ones((2, 4)), (3,)), ValueError,
     r"x: expected a shape ending in normalized_shape \(3,\), got \(2, 4\)"),
    (lambda: F.layer_norm(np.ones((2, 4)), (0,)), TypeError,
     "normalized_shape: expected a positive int"),
    (lambda: F.layer_norm(np.ones((2, 4)), 4, np.ones((1, 4))), ValueError,
     r"weight: expected a 1-D array \(4,\), got shape \(1, 4\)"),
    (lambda: F.layer_norm(np.ones((2, 4)), 4, None, np.ones(3)), ValueError,
     r"bias: expected shape \(4,\) \(normalized_shape\), got \(3,\)"),
    (lambda: F.layer_norm_backward(np.ones((2, 4)), np.ones((2, 4)), 4, None,
                                   F.group_norm(np.ones((2, 4)), 2, return_saved=True)[1]),
     ValueError, r"saved.mean: expected shape \(2, 1\)"),
])
def test_group_and_layer_norm_refuse_bad_input_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
