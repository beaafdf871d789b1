"""``F.linear``, ``F.sigmoid``, ``F.tanh`` (each with its backward), ``F.add`` and ``F.flatten``
on every backend, against PyTorch; and the layers ``nn.Linear``, ``nn.Sigmoid``, ``nn.Tanh``,
``nn.Flatten`` running on them.

Activation inputs mix ordinary values with huge ones (``|x|`` up to 1e4: a naive
``1 / (1 + exp(-x))`` overflows there), signed infinities and NaN; backward passes of sigmoid
and tanh take the forward's *output*, as PyTorch's ``aten.sigmoid_backward`` /
``aten.tanh_backward`` do. Linear problems have 0 to 2 leading dims and empty sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitorch_cnn as mc
from minitorch_cnn import functional as F
from minitorch_cnn import nn
from reference import functional as R

from .checks import BACKENDS, DTYPES, check_against_torch, examples

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 90.0, -90.0, 700.0, -700.0]


def _run(check, backend):
    n = examples(backend)  # fewer in the CUDA simulator
    (check if n is None else settings(max_examples=n)(check))()


@st.composite
def elementwise_problems(draw, dtype, max_side):
    """(x, b, grad_y) of one shape; x mixes normal values with the special ones."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side))
    x = draw(hnp.arrays(dtype, shape, elements=st.one_of(
        st.floats(-8, 8, width=32), st.sampled_from(SPECIAL))))
    b = draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    grad_y = draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    return x, b, grad_y


@backends
@dtypes
def test_sigmoid_tanh_add_and_their_gradients_match_torch(backend, dtype):
    side = 3 if backend == "cuda" else 5

    @given(problem=elementwise_problems(dtype, side))
    def check(problem):
        x, b, grad_y = problem
        for op, backward, twin, twin_backward in [
            (F.sigmoid, F.sigmoid_backward, R.sigmoid, R.sigmoid_backward),
            (F.tanh, F.tanh_backward, R.tanh, R.tanh_backward),
        ]:
            y, y_expected = op(x, backend=backend), twin(x)
            assert isinstance(y, np.ndarray) and y.shape == x.shape  # 0-d: an array too
            check_against_torch(y, y_expected, f"{op.__name__}: y")
            grad_x = backward(grad_y, y_expected, backend=backend)
            assert isinstance(grad_x, np.ndarray) and grad_x.shape == x.shape
            check_against_torch(grad_x, twin_backward(grad_y, y_expected),
                                f"{op.__name__}: grad_x")
        y = F.add(x, b, backend=backend)
        assert isinstance(y, np.ndarray) and y.shape == x.shape
        check_against_torch(y, R.add(x, b), "add")

    _run(check, backend)


@backends
def test_sigmoid_at_huge_magnitudes_does_not_overflow_and_keeps_nan(backend):
    x = np.array([-np.inf, -1e300, -1000.0, -745.0, -80.0, 0.0, 80.0, 1000.0, np.inf, np.nan])
    with np.errstate(over="raise", invalid="raise"):
        y = F.sigmoid(x, backend=backend)
    check_against_torch(y, R.sigmoid(x), "sigmoid")
    y_host = y.copy_to_host() if hasattr(y, "copy_to_host") else y
    np.testing.assert_array_equal(y_host[[0, 1, 2, 5, 7, 8]], [0, 0, 0, 0.5, 1, 1])
    assert np.isnan(y_host[-1])
    check_against_torch(F.tanh(x, backend=backend), R.tanh(x), "tanh")


@st.composite
def linear_problems(draw, dtype, max_side):
    """(x (*, K), weight (O, K), bias (O,) or None, grad_y (*, O), needs_input_grad)."""
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=max_side))
    K = draw(st.integers(0, max_side))
    O = draw(st.integers(0, max_side))
    values = st.floats(-2, 2, width=32)
    x = draw(hnp.arrays(dtype, (*lead, K), elements=values))
    weight = draw(hnp.arrays(dtype, (O, K), elements=values))
    bias = draw(st.none() | hnp.arrays(dtype, (O,), elements=values))
    grad_y = draw(hnp.arrays(dtype, (*lead, O), elements=values))
    need = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    return x, weight, bias, grad_y, need


@backends
@dtypes
def test_linear_and_its_gradients_match_torch(backend, dtype):
    side = 3 if backend == "cuda" else 5

    @given(problem=linear_problems(dtype, side))
    def check(problem):
        x, weight, bias, grad_y, need = problem
        check_against_torch(F.linear(x, weight, bias, backend=backend),
                            R.linear(x, weight, bias), "y")
        grads = F.linear_backward(grad_y, x, weight, needs_input_grad=need, backend=backend)
        expected = R.linear_backward(grad_y, x, weight)
        for name, ours, theirs, wanted in zip(("grad_x", "grad_weight", "grad_bias"), grads,
                                              expected, need, strict=True):
            if wanted:
                check_against_torch(ours, theirs, name)
            else:
                assert ours is None, f"{name} was computed though not asked for"

    _run(check, backend)


@st.composite
def flatten_problems(draw):
    """(x, start_dim, end_dim) with start_dim <= end_dim, either of them negative."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3))
    size = max(len(shape), 1)
    start = draw(st.integers(0, size - 1))
    end = draw(st.integers(start, size - 1))
    start -= size * draw(st.booleans())
    end -= size * draw(st.booleans())
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3)))
    return x, start, end


@backends
def test_flatten_is_torchs_reshape(backend):
    @given(problem=flatten_problems())
    def check(problem):
        x, start, end = problem
        y = F.flatten(x, start, end, backend=backend)
        expected = R.flatten(x, start, end)
        assert y.shape == expected.shape
        np.testing.assert_array_equal(y, expected)

    check()


def test_flatten_is_a_view_and_leaves_its_input_alone():
    x = np.arange(24.0).reshape(2, 3, 4)
    y = F.flatten(x)
    assert y.shape == (2, 12) and np.shares_memory(x, y)
    assert F.flatten(np.array(5.0), 0).shape == (1,)


def test_elementwise_and_linear_on_cuda_device_arrays_stay_on_the_device():
    if "cuda" not in BACKENDS:
        pytest.skip("no cuda backend here")
    from numba import cuda

    x = np.array([[-1.0, 0.5, 3.0], [2.0, -0.0, -4.0]])
    w = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    dx, dw = cuda.to_device(x), cuda.to_device(w)
    for name, ours, expected in [
        ("sigmoid", F.sigmoid(dx, backend="cuda"), R.sigmoid(x)),
        ("tanh", F.tanh(dx, backend="cuda"), R.tanh(x)),
        ("add", F.add(dx, dx, backend="cuda"), 2 * x),
        ("flatten", F.flatten(dx, 0, backend="cuda"), x.reshape(-1)),
        ("linear", F.linear(dx, dw, backend="cuda"), R.linear(x, w)),
        ("grad_weight", F.linear_backward(cuda.to_device(np.ones((2, 2))), dx, dw,
                                          backend="cuda").grad_weight,
         R.linear_backward(np.ones((2, 2)), x, w)[1]),
    ]:
        assert hasattr(ours, "copy_to_host"), f"{name} came back to the host"
        check_against_torch(ours, expected, name)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.sigmoid([1.0]), TypeError, "x: expected a numpy.ndarray"),
    (lambda: F.tanh(np.arange(3)), TypeError, "x: expected dtype float32 or float64, got int"),
    (lambda: F.sigmoid_backward(np.ones(3), np.ones(4)), ValueError,
     r"grad_y: expected shape \(4,\) \(y's\), got \(3,\)"),
    (lambda: F.tanh_backward(np.ones(3, np.float32), np.ones(3)), TypeError,
     "grad_y: expected dtype float64"),
    (lambda: F.add(np.ones(3), np.ones((3, 1))), ValueError,
     r"b: expected shape \(3,\) \(a's\), got \(3, 1\)"),
    (lambda: F.add(np.ones(3), np.ones(3, np.float32)), TypeError,
     "b: expected dtype float64"),
    (lambda: F.linear(np.ones((2, 3)), np.ones((4, 2))), ValueError,
     r"weight: expected shape \(out_features, 3\)"),
    (lambda: F.linear(np.ones((2, 3)), np.ones(3)), ValueError,
     "weight: expected a 2-D array"),
    (lambda: F.linear(np.array(1.0), np.ones((4, 1))), ValueError, "x: expected an array"),
    (lambda: F.linear(np.ones((2, 3)), np.ones((4, 3), np.float32)), TypeError,
     "weight: expected dtype float64"),
    (lambda: F.linear(np.ones((2, 3)), np.ones((4, 3)), np.ones(5)), ValueError,
     r"bias: expected shape \(4,\)"),
    (lambda: F.linear(np.ones((2, 3)), np.ones((4, 3)), np.ones(4, np.float32)), TypeError,
     "bias: expected dtype float64"),
    (lambda: F.linear_backward(np.ones((2, 5)), np.ones((2, 3)), np.ones((4, 3))), ValueError,
     r"grad_y: expected shape \(2, 4\)"),
    (lambda: F.linear_backward(np.ones((2, 4), np.float32), np.ones((2, 3)), np.ones((4, 3))),
     TypeError, "grad_y: expected dtype float64"),
    (lambda: F.linear_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((4, 3)),
                               needs_input_grad=(True, True)), ValueError,
     "needs_input_grad: expected three bools"),
    (lambda: F.flatten(np.ones((2, 3)), 2), ValueError,
     r"start_dim: expected a dim in \[-2, 1\] for a 2-D array, got 2"),
    (lambda: F.flatten(np.ones((2, 3)), 0, -3), ValueError, "end_dim: expected a dim"),
    (lambda: F.flatten(np.ones((2, 3)), 1.0), TypeError, "start_dim: expected an int"),
    (lambda: F.flatten(np.ones((2, 3, 4)), 2, 1), ValueError,
     r"start_dim: expected a dim at or before end_dim \(1\), got 2"),
    (lambda: F.flatten(np.arange(3)), TypeError, "x: expected dtype float32 or float64"),
], ids=["sigmoid-list", "tanh-int", "sigmoid-grad-shape", "tanh-grad-dtype", "add-shape",
        "add-dtype", "linear-in", "linear-weight-ndim", "linear-0d", "linear-weight-dtype",
        "linear-bias-shape", "linear-bias-dtype", "linear-grad-shape", "linear-grad-dtype",
        "linear-mask", "flatten-start", "flatten-end", "flatten-int", "flatten-order",
        "flatten-dtype"])
def test_bad_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


@backends
def test_layers_run_on_the_ops_of_every_backend(backend):
    """An MLP head of Flatten, Linear, Sigmoid, Linear, Tanh equals its torch twin, forward
    and backward, on every backend (on cuda: host arrays in and out, the ops on the device).
    """
    import torch

    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.Sigmoid(), nn.Linear(4, 3),
                          nn.Tanh()).to(np.float64)
    twin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 4), torch.nn.Sigmoid(),
                               torch.nn.Linear(4, 3), torch.nn.Tanh()).double()
    twin.load_state_dict({k: torch.from_numpy(np.asarray(v))
                          for k, v in model.state_dict().items()})
    x = rng.standard_normal((2, 2, 3))
    grad_y = rng.standard_normal((2, 3))
    tx = torch.from_numpy(x).requires_grad_()
    ty = twin(tx)
    ty.backward(torch.from_numpy(grad_y))
    with mc.use_backend(backend):
        y = model(x)
        grad_x = model.backward(grad_y)
    check_against_torch(y, ty.detach().numpy(), "y")
    check_against_torch(grad_x, tx.grad.numpy(), "grad_x")
    check_against_torch(model[1].weight.grad, twin[1].weight.grad.numpy(), "grad_weight")
    check_against_torch(model[3].bias.grad, twin[3].bias.grad.numpy(), "grad_bias")
