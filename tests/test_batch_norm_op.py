"""``F.batch_norm`` and ``F.batch_norm_backward`` on every backend, against PyTorch.

Forward against ``torch.nn.functional.batch_norm`` (output and the running estimates it
leaves), backward against torch autograd, in training and eval, float64 tightly and float32
loosely, for (N, C), (N, C, L) and (N, C, H, W) inputs, with and without weight and bias.
Then the running estimates after several calls, PyTorch's refusal of one value per channel
in training, empty batches, the in-place update through a strided view, device arrays, and
one test per validation message.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minitorch_cnn import functional as F
from reference import functional as R

from .checks import BACKENDS, DTYPES, check_against_torch, examples

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])


@st.composite
def batch_norm_problems(draw, dtype, small):
    """One call: x (N, C, *), running pair, weight/bias or None, the hyper-parameters."""
    side = 2 if small else 4
    trailing = draw(st.lists(st.integers(1, side + 1), min_size=0, max_size=2))
    shape = (draw(st.integers(1, side)), draw(st.integers(1, 3))) + tuple(trailing)
    C = shape[1]
    values = st.floats(-5, 5, width=32)
    offset = draw(st.floats(-3, 3, width=32))  # channels whose mean is far from 0
    x = draw(hnp.arrays(dtype, shape, elements=values)) + dtype(offset)
    running_mean = draw(hnp.arrays(dtype, C, elements=st.floats(-2, 2, width=32)))
    running_var = draw(hnp.arrays(dtype, C, elements=st.floats(0.125, 4, width=32)))
    affine = draw(st.booleans())
    weight = draw(hnp.arrays(dtype, C, elements=st.floats(-2, 2, width=32))) if affine else None
    bias = draw(hnp.arrays(dtype, C, elements=st.floats(-2, 2, width=32))) if affine else None
    grad_y = draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    training = draw(st.booleans())
    momentum = draw(st.sampled_from([0.1, 0.5, 1.0, 0.0]))
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    return dict(x=x, running_mean=running_mean, running_var=running_var, weight=weight,
                bias=bias, grad_y=grad_y, training=training, momentum=momentum, eps=eps)


@backends
@dtypes
def test_batch_norm_forward_backward_and_running_stats_match_torch(backend, dtype):
    @given(p=batch_norm_problems(dtype, small=backend == "cuda"))
    def check(p):
        x, training = p["x"], p["training"]
        assume(not training or x.size // x.shape[1] > 1)  # torch refuses one value
        y_t, rm_t, rv_t = R.batch_norm(x, p["running_mean"], p["running_var"], p["weight"],
                                       p["bias"], training, p["momentum"], p["eps"])
        grads_t = R.batch_norm_backward(p["grad_y"], x, p["weight"], p["running_mean"],
                                        p["running_var"], training, p["eps"])
        rm, rv = p["running_mean"].copy(), p["running_var"].copy()
        y, saved = F.batch_norm(x, rm, rv, p["weight"], p["bias"], training, p["momentum"],
                                p["eps"], return_saved=True, backend=backend)
        check_against_torch(y, y_t, "y")
        check_against_torch(rm, rm_t, "running_mean")
        check_against_torch(rv, rv_t, "running_var")
        grads = F.batch_norm_backward(p["grad_y"], x, p["weight"], saved.mean, saved.inv_std,
                                      training, backend=backend)
        for ours, theirs, name in zip(grads, grads_t, ("grad_x", "grad_weight", "grad_bias"),
                                      strict=True):
            check_against_torch(ours, theirs, name)

    n = examples(backend)  # fewer in the CUDA simulator
    (check if n is None else settings(max_examples=n)(check))()


@backends
def test_running_statistics_after_several_calls_are_torchs(backend):
    rng = np.random.default_rng(3)
    rm, rv = np.zeros(3), np.ones(3)
    rm_t, rv_t = rm.copy(), rv.copy()
    for step, momentum in enumerate([0.1, 0.7, 0.1]):
        x = rng.normal(step, 1 + step, size=(2, 3, 2, 3))
        F.batch_norm(x, rm, rv, training=True, momentum=momentum, backend=backend)
        _, rm_t, rv_t = R.batch_norm(x, rm_t, rv_t, training=True, momentum=momentum)
        check_against_torch(rm, rm_t, f"running_mean after call {step + 1}")
        check_against_torch(rv, rv_t, f"running_var after call {step + 1}")
    x = rng.normal(size=(2, 3, 2, 3))  # eval then normalises with what training left
    check_against_torch(F.batch_norm(x, rm, rv, backend=backend), R.batch_norm(x, rm, rv)[0])


@backends
@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (1, 3), (1, 2, 1)])
def test_one_value_per_channel_is_refused_in_training_as_torch(backend, shape):
    x = np.ones(shape)
    with pytest.raises(ValueError, match=r"x: expected more than 1 value per channel when "
                                         r"training, got input of shape \(1, "):
        F.batch_norm(x, np.zeros(shape[1]), np.ones(shape[1]), training=True, backend=backend)
    with pytest.raises(ValueError, match="more than 1 value per channel"):  # torch's refusal
        R.batch_norm(x, np.zeros(shape[1]), np.ones(shape[1]), training=True)
    y = F.batch_norm(x, np.zeros(shape[1]), np.full(shape[1], 3.0), backend=backend)  # eval
    check_against_torch(y, R.batch_norm(x, np.zeros(shape[1]), np.full(shape[1], 3.0))[0])


@backends
def test_training_without_running_statistics_normalises_with_the_batch(backend):
    x = np.arange(24.0).reshape(2, 3, 4) ** 1.5
    w, b = np.array([1.0, -2.0, 0.5]), np.array([0.0, 1.0, 2.0])
    y = F.batch_norm(x, None, None, w, b, training=True, backend=backend)
    check_against_torch(y, R.batch_norm(x, None, None, w, b, training=True)[0])


@backends
def test_an_empty_batch_gives_an_empty_output_and_leaves_the_running_stats(backend):
    x = np.ones((0, 2, 3, 3), np.float32)
    rm, rv = np.full(2, 0.5, np.float32), np.full(2, 2.0, np.float32)
    y, saved = F.batch_norm(x, rm, rv, training=True, return_saved=True, backend=backend)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(rm, [0.5, 0.5])  # as torch: not updated
    np.testing.assert_array_equal(rv, [2.0, 2.0])
    gx, gw, gb = F.batch_norm_backward(x, x, None, *saved, True, backend=backend)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw, [0, 0])
    np.testing.assert_array_equal(gb, [0, 0])


@backends
def test_a_strided_running_view_is_updated_in_place(backend):
    x = np.random.default_rng(1).normal(size=(3, 2, 2))
    storage = np.zeros((2, 2))  # running_mean is the strided column storage[:, 0]
    rv = np.ones(2)
    F.batch_norm(x, storage[:, 0], rv, training=True, backend=backend)
    _, rm_t, rv_t = R.batch_norm(x, np.zeros(2), np.ones(2), training=True)
    check_against_torch(storage[:, 0], rm_t, "running_mean")
    check_against_torch(rv, rv_t, "running_var")
    np.testing.assert_array_equal(storage[:, 1], [0, 0])


def test_device_arrays_stay_on_the_device_and_are_updated_there():
    if "cuda" not in BACKENDS:
        pytest.skip("no cuda backend here")
    from numba import cuda

    x = np.random.default_rng(2).normal(size=(2, 2, 3))
    drm, drv = cuda.to_device(np.zeros(2)), cuda.to_device(np.ones(2))
    y, saved = F.batch_norm(cuda.to_device(x), drm, drv, training=True, return_saved=True,
                            backend="cuda")
    assert hasattr(y, "copy_to_host") and hasattr(saved.inv_std, "copy_to_host")
    y_t, rm_t, rv_t = R.batch_norm(x, np.zeros(2), np.ones(2), training=True)
    check_against_torch(y.copy_to_host(), y_t, "y")
    check_against_torch(drm.copy_to_host(), rm_t, "running_mean")
    check_against_torch(drv.copy_to_host(), rv_t, "running_var")
    gx = F.batch_norm_backward(cuda.to_device(np.ones_like(x)), cuda.to_device(x), None,
                               *saved, True, backend="cuda")[0]
    assert hasattr(gx, "copy_to_host")


X = np.ones((2, 3, 2))
RM, RV = np.zeros(3), np.ones(3)
READ_ONLY = np.zeros(3)
READ_ONLY.setflags(write=False)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.batch_norm(np.ones(3), RM, RV), ValueError,
     r"x: expected an array \(N, C, \*\) of at least 2 dims, got shape \(3,\)"),
    (lambda: F.batch_norm([[1.0]], RM, RV), TypeError, "x: expected a numpy.ndarray"),
    (lambda: F.batch_norm(X.astype(int), RM, RV), TypeError, "x: expected dtype float32"),
    (lambda: F.batch_norm(X, None, RV), ValueError,
     r"running_mean: expected a \(3,\) array when training=False"),
    (lambda: F.batch_norm(X, RM, None, training=True), ValueError,
     "running_mean, running_var: expected both arrays or both None"),
    (lambda: F.batch_norm(X, np.zeros(2), RV), ValueError,
     r"running_mean: expected shape \(3,\) \(x's channels\), got \(2,\)"),
    (lambda: F.batch_norm(X, RM, RV.astype(np.float32)), TypeError,
     "running_var: expected dtype float64"),
    (lambda: F.batch_norm(X, RM, RV, np.ones((3, 1))), ValueError,
     r"weight: expected a 1-D array"),
    (lambda: F.batch_norm(X, RM, RV, None, np.ones(4)), ValueError,
     r"bias: expected shape \(3,\)"),
    (lambda: F.batch_norm(X, RM, RV, training=1), TypeError, "training: expected a bool"),
    (lambda: F.batch_norm(X, RM, RV, momentum=None), TypeError,
     "momentum: expected a float, got NoneType"),
    (lambda: F.batch_norm(X, RM, RV, eps="1e-5"), TypeError, "eps: expected a float"),
    (lambda: F.batch_norm(X, RM, RV, return_saved=None), TypeError,
     "return_saved: expected a bool"),
    (lambda: F.batch_norm(X, READ_ONLY, RV, training=True), ValueError,
     "running_mean: expected a writeable array"),
    (lambda: F.batch_norm_backward(np.ones((2, 3, 3)), X, None, RM, RV), ValueError,
     r"grad_y: expected shape \(2, 3, 2\) \(x's\), got \(2, 3, 3\)"),
    (lambda: F.batch_norm_backward(X.astype(np.float32), X, None, RM, RV), TypeError,
     "grad_y: expected dtype float64"),
    (lambda: F.batch_norm_backward(X, X, None, None, RV), TypeError,
     "saved_mean: expected a \\(3,\\) array"),
    (lambda: F.batch_norm_backward(X, X, None, RM, np.ones(2)), ValueError,
     r"saved_inv_std: expected shape \(3,\)"),
    (lambda: F.batch_norm_backward(X, X, None, RM, RV, "yes"), TypeError,
     "training: expected a bool"),
], ids=["ndim", "list", "int", "eval-no-running", "half-running", "running-shape",
        "running-dtype", "weight-ndim", "bias-shape", "training-int", "momentum-none",
        "eps-str", "return-saved", "read-only", "grad-shape", "grad-dtype", "no-saved",
        "saved-shape", "backward-training"])
def test_batch_norm_refuses_bad_input_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
