"""``F.relu`` and ``F.relu_backward`` on every backend, against ``torch.relu`` and autograd.

Values are drawn with exact zeros (the kink: PyTorch's derivative there is 0), signed
infinities and NaN (PyTorch's test is ``x <= 0``, false for NaN, so a NaN passes through
forward and passes its gradient backward). Shapes have 0 to 4 dims, empty ones included.
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

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300, -1e-300]


@st.composite
def relu_problems(draw, dtype, max_side):
    """(x, grad_y) of one shape; x mixes normal values with the special ones."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=max_side))
    x = draw(hnp.arrays(dtype, shape, elements=st.one_of(
        st.floats(-5, 5, width=32), st.sampled_from(SPECIAL))))
    grad_y = draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    return x, grad_y


def _torch(x, grad_y):
    return R.relu(x), R.relu_backward(grad_y, x)


@backends
@dtypes
def test_relu_and_its_gradient_match_torch(backend, dtype):
    side = 3 if backend == "cuda" else 5

    @given(problem=relu_problems(dtype, side))
    def check(problem):
        x, grad_y = problem
        y_expected, grad_expected = _torch(x, grad_y)
        y = F.relu(x, backend=backend)
        grad_x = F.relu_backward(grad_y, x, backend=backend)
        assert y.shape == x.shape and grad_x.shape == x.shape
        check_against_torch(y, y_expected, "y")
        check_against_torch(grad_x, grad_expected, "grad_x")

    n = examples(backend)  # fewer in the CUDA simulator
    (check if n is None else settings(max_examples=n)(check))()


@backends
def test_relu_at_the_kink_nan_and_infinities_is_torchs(backend):
    x = np.array([[0.0, -0.0, np.nan, np.inf, -np.inf, 2.0, -2.0]])
    grad_y = np.arange(1.0, 8.0).reshape(1, 7)
    y_expected, grad_expected = _torch(x, grad_y)
    np.testing.assert_array_equal(F.relu(x, backend=backend), y_expected)
    np.testing.assert_array_equal(F.relu_backward(grad_y, x, backend=backend), grad_expected)
    np.testing.assert_array_equal(grad_expected, [[0, 0, 3, 4, 0, 6, 0]])  # what torch gives


@backends
def test_relu_leaves_its_inputs_alone_and_takes_any_layout(backend):
    x = np.arange(-6.0, 6.0).reshape(3, 4)[:, ::-1].T  # a strided, transposed view
    before = x.copy()
    np.testing.assert_array_equal(F.relu(x, backend=backend), np.maximum(before, 0))
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.relu([1.0, -1.0]), TypeError, "x: expected a numpy.ndarray"),
    (lambda: F.relu(np.arange(3)), TypeError, "x: expected dtype float32 or float64, got int"),
    (lambda: F.relu_backward(np.ones(3), np.ones(4)), ValueError,
     r"grad_y: expected shape \(4,\) \(x's\), got \(3,\)"),
    (lambda: F.relu_backward(np.ones(3, np.float32), np.ones(3)), TypeError,
     "grad_y: expected dtype float64"),
], ids=["list", "int", "grad-shape", "grad-dtype"])
def test_relu_refuses_bad_input_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_relu_on_a_cuda_device_array_stays_on_the_device():
    if "cuda" not in BACKENDS:
        pytest.skip("no cuda backend here")
    from numba import cuda

    x = np.array([[-1.0, 0.5], [2.0, -0.0]])
    y = F.relu(cuda.to_device(x), backend="cuda")
    assert hasattr(y, "copy_to_host")
    np.testing.assert_array_equal(y.copy_to_host(), np.maximum(x, 0))
