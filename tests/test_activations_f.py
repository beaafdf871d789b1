"""``F.leaky_relu``, ``F.elu``, ``F.gelu``, ``F.silu``, ``F.softmax``, ``F.dropout2d`` and
``F.cat``, forward and backward, on every backend, against PyTorch.

Element-wise values mix normal numbers with the special ones (signed zeros, +-inf, NaN), so
the kinks and PyTorch's tests on x (``x > 0`` for LeakyReLU, ``x <= 0`` for ELU) are hit.
Two exceptions are written out, where PyTorch answers differently by the element's position
or the array's length (its vectorised loops and its scalar loop disagree): at a NaN input,
ELU's gradient is ``grad_y`` here (the scalar loop's ``x <= 0``; the vectorised loop gives
NaN), and GELU at ``x = +inf`` is ``+inf`` (``inf * Phi(inf) = inf * 1``; PyTorch gives inf
or NaN: float64 arrays of 2 or more elements give inf, float32 ``"none"`` gives NaN).
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

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan]

# name -> (ours (x, hyper, backend), ours backward (grad_y, x, hyper, backend), torch's pair,
# the hyper-parameter's draws)
OPS = {
    "leaky_relu": (
        lambda x, h, b: F.leaky_relu(x, h, backend=b),
        lambda g, x, h, b: F.leaky_relu_backward(g, x, h, backend=b),
        R.leaky_relu, R.leaky_relu_backward, st.sampled_from([0.01, 0.2, -0.5, 0.0, 1.5])),
    "elu": (
        lambda x, h, b: F.elu(x, h, backend=b),
        lambda g, x, h, b: F.elu_backward(g, x, h, backend=b),
        R.elu, R.elu_backward, st.sampled_from([1.0, 0.3, 2.5])),
    "gelu": (
        lambda x, h, b: F.gelu(x, h, backend=b),
        lambda g, x, h, b: F.gelu_backward(g, x, h, backend=b),
        R.gelu, R.gelu_backward, st.just("none")),
    "gelu(tanh)": (
        lambda x, h, b: F.gelu(x, h, backend=b),
        lambda g, x, h, b: F.gelu_backward(g, x, h, backend=b),
        R.gelu, R.gelu_backward, st.just("tanh")),
    "silu": (
        lambda x, h, b: F.silu(x, backend=b),
        lambda g, x, h, b: F.silu_backward(g, x, backend=b),
        lambda x, h: R.silu(x), lambda g, x, h: R.silu_backward(g, x), st.none()),
}


def _run(settings_for, check):
    n = examples(settings_for)  # fewer in the CUDA simulator
    (check if n is None else settings(max_examples=n)(check))()


@st.composite
def elementwise_problems(draw, dtype, max_side):
    """(x, grad_y) of one shape (0 to 3 dims, empty ones too); x has the special values."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side))
    x = draw(hnp.arrays(dtype, shape, elements=st.one_of(
        st.floats(-6, 6, width=32), st.sampled_from(SPECIAL))))
    grad_y = draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    return x, grad_y


def _check_y(name, y, expected, x):
    """``y`` against torch's, but where x is +inf for GELU: +inf (see the header)."""
    if name.startswith("gelu"):
        y = y.copy_to_host() if hasattr(y, "copy_to_host") else y
        plus_inf = np.isposinf(x)
        assert np.all(np.isposinf(y[plus_inf]))
        expected = np.where(plus_inf, x, expected)
    check_against_torch(y, expected, "y")


def _check_grad(name, grad_x, expected, grad_y, x):
    """``grad_x`` against torch's, but where x is NaN for ELU: ``grad_y`` (see the header)."""
    grad_x = grad_x.copy_to_host() if hasattr(grad_x, "copy_to_host") else grad_x
    if name == "elu":
        nan = np.isnan(x)
        np.testing.assert_array_equal(grad_x[nan], grad_y[nan])
        expected = np.where(nan, grad_y, expected)
    check_against_torch(grad_x, expected, "grad_x")


@backends
@dtypes
@pytest.mark.parametrize("name", list(OPS))
def test_activation_and_its_gradient_match_torch(backend, dtype, name):
    ours, ours_backward, torch_forward, torch_backward, hypers = OPS[name]
    side = 3 if backend == "cuda" else 4

    @given(problem=elementwise_problems(dtype, side), hyper=hypers)
    def check(problem, hyper):
        x, grad_y = problem
        y = ours(x, hyper, backend)
        grad_x = ours_backward(grad_y, x, hyper, backend)
        assert y.shape == x.shape and grad_x.shape == x.shape
        _check_y(name, y, torch_forward(x, hyper), x)
        _check_grad(name, grad_x, torch_backward(grad_y, x, hyper), grad_y, x)

    _run(backend, check)


@backends
@pytest.mark.parametrize("name, hyper", [("leaky_relu", 0.1), ("elu", 0.7), ("gelu", "none"),
                                         ("gelu(tanh)", "tanh"), ("silu", None)])
def test_activation_at_the_kink_nan_and_infinities_is_torchs(backend, name, hyper):
    ours, ours_backward, torch_forward, torch_backward, _ = OPS[name]
    x = np.array([[0.0, -0.0, np.nan, np.inf, -np.inf, 2.0, -2.0, 40.0, -40.0, 800.0, -800.0]])
    grad_y = np.arange(1.0, 12.0).reshape(1, 11)
    _check_y(name, ours(x, hyper, backend), torch_forward(x, hyper), x)
    _check_grad(name, ours_backward(grad_y, x, hyper, backend), torch_backward(grad_y, x, hyper),
                grad_y, x)


@st.composite
def softmax_problems(draw, dtype, max_side):
    """(x, grad_y, dim): 0 to 4 dims, a few rows holding +-inf or NaN."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=max_side))
    x = draw(hnp.arrays(dtype, shape, elements=st.one_of(
        st.floats(-30, 30, width=32), st.floats(-30, 30, width=32),
        st.sampled_from(SPECIAL))))
    grad_y = draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    size = max(len(shape), 1)
    dim = draw(st.integers(-size, size - 1))
    return x, grad_y, dim


@backends
@dtypes
def test_softmax_and_its_gradient_match_torch_along_any_dim(backend, dtype):
    side = 3 if backend == "cuda" else 4

    @given(problem=softmax_problems(dtype, side))
    def check(problem):
        x, grad_y, dim = problem
        y_expected = R.softmax(x, dim)
        y = F.softmax(x, dim, backend=backend)
        check_against_torch(y, y_expected, "y")
        grad_x = F.softmax_backward(grad_y, y_expected, dim, backend=backend)
        check_against_torch(grad_x, R.softmax_backward(grad_y, y_expected, dim), "grad_x")

    _run(backend, check)


@backends
def test_softmax_of_empty_and_large_inputs_is_torchs(backend):
    x = np.array([[1000.0, 999.0, -1000.0], [-np.inf, 0.0, -np.inf]])
    np.testing.assert_allclose(F.softmax(x, 1, backend=backend), R.softmax(x, 1), rtol=1e-15)
    empty = F.softmax(np.ones((2, 0, 3)), -1, backend=backend)
    assert empty.shape == (2, 0, 3)


@st.composite
def dropout2d_problems(draw, dtype):
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=3))
    x = draw(hnp.arrays(dtype, shape, elements=st.floats(-5, 5, width=32)))
    grad_y = draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    p = draw(st.sampled_from([0.0, 0.3, 0.5, 1.0]))
    return x, grad_y, p, draw(st.integers(0, 2**63 - 1)), draw(st.booleans())


@backends
@dtypes
def test_dropout2d_drops_whole_channels_as_torch_does_with_our_mask(backend, dtype):
    @given(problem=dropout2d_problems(dtype))
    def check(problem):
        x, grad_y, p, random_seed, training = problem
        y, mask = F.dropout2d(x, p, training, random_seed=random_seed, return_mask=True,
                              backend=backend)
        mask = mask.copy_to_host() if hasattr(mask, "copy_to_host") else mask
        assert mask.dtype == np.uint8 and mask.shape == x.shape[:2]
        assert set(np.unique(mask)) <= {0, 1}
        p_used = p if training else 0.0
        check_against_torch(y, R.dropout2d_with_mask(x, mask, p_used), "y")
        grad_x = F.dropout2d_backward(grad_y, mask, p_used, backend=backend)
        check_against_torch(grad_x, R.dropout2d_backward(grad_y, mask, p_used), "grad_x")

    _run(backend, check)


@backends
def test_dropout2d_mask_is_fixed_by_the_random_seed_and_agrees_across_the_cpu_backends(backend):
    x = np.ones((6, 50, 2, 2))
    _, mask = F.dropout2d(x, 0.5, random_seed=11, return_mask=True, backend=backend)
    _, again = F.dropout2d(x, 0.5, random_seed=11, return_mask=True, backend=backend)
    _, other = F.dropout2d(x, 0.5, random_seed=12, return_mask=True, backend=backend)
    host = [m.copy_to_host() if hasattr(m, "copy_to_host") else m for m in (mask, again, other)]
    np.testing.assert_array_equal(host[0], host[1])
    assert not np.array_equal(host[0], host[2])
    assert 0.3 < host[0].mean() < 0.7
    if backend != "cuda":  # NumPy's draws for an (N, C) array, as F.dropout's
        _, flat = F.dropout(np.ones((6, 50)), 0.5, random_seed=11, return_mask=True,
                            backend="numpy")
        np.testing.assert_array_equal(host[0], flat)


@st.composite
def cat_problems(draw, dtype):
    n = draw(st.integers(0, 2))
    rest = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    sizes = draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
    arrays = [draw(hnp.arrays(dtype, (n, c) + rest, elements=st.floats(-5, 5, width=32)))
              for c in sizes]
    return arrays, sizes


@backends
@dtypes
def test_cat_and_its_gradient_match_torch(backend, dtype):
    @given(problem=cat_problems(dtype))
    def check(problem):
        arrays, sizes = problem
        y = F.cat(arrays, 1, backend=backend)
        check_against_torch(y, R.cat(arrays, 1), "y")
        grad_y = np.arange(np.prod(y.shape), dtype=dtype).reshape(y.shape)
        grads = F.cat_backward(grad_y, sizes, backend=backend)
        expected = R.cat_backward(grad_y, sizes, 1)
        assert len(grads) == len(sizes)
        for ours, theirs in zip(grads, expected, strict=True):
            check_against_torch(ours, theirs, "grad")

    _run(backend, check)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.leaky_relu(np.ones(2), "0.1"), TypeError, "negative_slope: expected a real"),
    (lambda: F.leaky_relu_backward(np.ones(2), np.ones(2), None), TypeError,
     "negative_slope: expected a real"),
    (lambda: F.elu(np.ones(2), True), TypeError, "alpha: expected a real number, got bool"),
    (lambda: F.elu(np.arange(3)), TypeError, "x: expected dtype float32 or float64, got int"),
    (lambda: F.gelu(np.ones(2), "erf"), ValueError, "approximate: expected 'none' or 'tanh'"),
    (lambda: F.gelu_backward(np.ones(2), np.ones(2), "exact"), ValueError, "approximate:"),
    (lambda: F.silu([1.0]), TypeError, "x: expected a numpy.ndarray"),
    (lambda: F.silu_backward(np.ones(3), np.ones(4)), ValueError,
     r"grad_y: expected shape \(4,\) \(x's\), got \(3,\)"),
    (lambda: F.elu_backward(np.ones(3, np.float32), np.ones(3)), TypeError,
     "grad_y: expected dtype float64"),
    (lambda: F.softmax(np.ones((2, 3)), 2), ValueError,
     r"dim: expected a dim in \[-2, 1\] for a 2-D array, got 2"),
    (lambda: F.softmax(np.ones((2, 3)), 1.0), TypeError, "dim: expected an int, got float"),
    (lambda: F.softmax_backward(np.ones((2, 3)), np.ones((3, 2)), 1), ValueError,
     r"grad_y: expected shape \(3, 2\) \(y's\), got \(2, 3\)"),
    (lambda: F.softmax_backward(np.ones(3), np.ones(3), -2), ValueError, "dim: expected a dim"),
    (lambda: F.cat(np.ones((2, 2))), TypeError, "arrays: expected a list or tuple of arrays"),
    (lambda: F.cat([]), ValueError, "arrays: expected at least one array, got none"),
    (lambda: F.cat([np.ones(3)]), ValueError, "arrays.0.: expected at least 2 dims"),
    (lambda: F.cat([np.ones((1, 2)), np.ones((1, 2))], 0), ValueError,
     "dim: expected 1 .the channel dim., got 0"),
    (lambda: F.cat([np.ones((1, 2, 3)), np.ones((1, 2, 4))]), ValueError,
     r"arrays\[1\]: expected shape \(1, '\*', 3\)"),
    (lambda: F.cat([np.ones((1, 2)), np.ones((1, 2), np.float32)]), TypeError,
     r"arrays\[1\]: expected dtype float64"),
    (lambda: F.cat([np.ones((1, 2)), [1.0]]), TypeError, r"arrays\[1\]: expected a numpy"),
    (lambda: F.cat_backward(np.ones((1, 5)), [2, 2]), ValueError,
     r"sizes: expected channel counts summing to 5 .grad_y's dim 1., got \[2, 2\]"),
    (lambda: F.cat_backward(np.ones((1, 5)), [2.0, 3]), TypeError,
     "sizes: expected a list of ints >= 0"),
    (lambda: F.cat_backward(np.ones((1, 5)), [6, -1]), TypeError, "sizes: expected a list"),
    (lambda: F.cat_backward(np.ones(5), [5]), ValueError, "grad_y: expected at least 2 dims"),
    (lambda: F.cat_backward(np.ones((1, 5)), [5], 0), ValueError, "dim: expected 1"),
    (lambda: F.dropout2d(np.ones(4), random_seed=0), ValueError, "x: expected at least 2 dims"),
    (lambda: F.dropout2d(np.ones((2, 2)), 1.5, random_seed=0), ValueError,
     "p: dropout probability has to be between 0 and 1, but got 1.5"),
    (lambda: F.dropout2d(np.ones((2, 2)), random_seed=-1), ValueError, "random_seed: expected"),
    (lambda: F.dropout2d(np.ones((2, 2)), training=1, random_seed=0), TypeError,
     "training: expected a bool"),
    (lambda: F.dropout2d_backward(np.ones((2, 3, 4)), np.ones((2, 3)), 0.5), TypeError,
     "mask: expected dtype uint8"),
    (lambda: F.dropout2d_backward(np.ones((2, 3, 4)), np.ones((2, 4), np.uint8), 0.5),
     ValueError, r"mask: expected shape \(2, 3\) \(grad_y's \(N, C\)\), got \(2, 4\)"),
    (lambda: F.dropout2d_backward(np.ones((2, 3)), [[1, 0, 1]], 0.5), TypeError,
     "mask: expected a numpy.ndarray of uint8, got list"),
    (lambda: F.dropout2d_backward(np.ones(3), np.ones(3, np.uint8), 0.5), ValueError,
     "grad_y: expected at least 2 dims"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_the_new_ops_refuse_bad_input_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
