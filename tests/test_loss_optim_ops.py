"""log_softmax, nll_loss, cross_entropy, dropout, sgd_step and adam_step on every backend.

Losses and their backwards against ``torch.nn.functional`` and autograd (``reference``),
both reductions, float64 tightly and float32 loosely; dropout's mask by its statistics (the
fraction kept, the ``1 / (1 - p)`` scale), its output and backward exactly against PyTorch's
``x * noise`` for the same mask, and p = 0 / p = 1; the optimizer updates against
``torch.optim.SGD`` / ``Adam`` / ``AdamW`` over several steps on the same arrays.
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


CPU_EXAMPLES = 8
"""Examples per CPU test, whatever the profile: 16 hypothesis tests x 4 backends must stay
within this file's share of CI time (each example runs torch and autograd too)."""


def _run_hypothesis(check, backend):
    n = examples(backend)  # fewer in the CUDA simulator
    n = min(CPU_EXAMPLES, settings().max_examples) if n is None else min(n, 3)
    settings(max_examples=n)(check)()


@st.composite
def classification(draw, dtype, max_rows):
    """(logits (N, C), target (N,) int64, grad_y (N, C)); logits spread over +-30."""
    N = draw(st.integers(1, max_rows))
    C = draw(st.integers(1, 6))
    logits = draw(hnp.arrays(dtype, (N, C), elements=st.floats(-30, 30, width=32)))
    target = np.array(draw(st.lists(st.integers(0, C - 1), min_size=N, max_size=N)), np.int64)
    grad_y = draw(hnp.arrays(dtype, (N, C), elements=st.floats(-3, 3, width=32)))
    return logits, target, grad_y


def _rows(backend):
    return 3 if backend == "cuda" else 6


# --------------------------------------------------------------------------- losses


@backends
@dtypes
def test_log_softmax_and_its_backward_match_torch(backend, dtype):
    @given(problem=classification(dtype, _rows(backend)), dim=st.sampled_from([1, -1]))
    def check(problem, dim):
        x, _, grad_y = problem
        y = F.log_softmax(x, dim, backend=backend)
        check_against_torch(y, R.log_softmax(x, dim), "y")
        check_against_torch(F.log_softmax_backward(grad_y, y, dim, backend=backend),
                            R.log_softmax_backward(grad_y, R.log_softmax(x, dim), dim),
                            "grad_x")

    _run_hypothesis(check, backend)


@backends
@dtypes
def test_nll_loss_and_cross_entropy_match_torch(backend, dtype):
    @given(problem=classification(dtype, _rows(backend)),
           reduction=st.sampled_from(["mean", "sum"]),
           grad=st.floats(-2, 2).filter(lambda g: g != 0))
    def check(problem, reduction, grad):
        logits, target, _ = problem
        logp = R.log_softmax(logits)
        for ours, theirs, name in [
            (F.nll_loss(logp, target, reduction, backend=backend),
             R.nll_loss(logp, target, reduction), "nll"),
            (F.nll_loss_backward(logp, target, reduction, grad=grad, backend=backend),
             R.nll_loss_backward(logp, target, reduction, grad=grad), "nll grad"),
            (F.cross_entropy(logits, target, reduction, backend=backend),
             R.cross_entropy(logits, target, reduction), "cross_entropy"),
            (F.cross_entropy_backward(logits, target, reduction, grad=grad, backend=backend),
             R.cross_entropy_backward(logits, target, reduction, grad=grad), "ce grad"),
        ]:
            assert np.shape(ours) == np.shape(theirs), name
            check_against_torch(np.asarray(ours), theirs, name)

    _run_hypothesis(check, backend)


@backends
def test_cross_entropy_is_stable_for_huge_logits(backend):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1e300, 1e300, 5.0]])
    target = np.array([1, 0])
    check_against_torch(F.cross_entropy(logits, target, backend=backend),
                        R.cross_entropy(logits, target), "loss")
    check_against_torch(F.cross_entropy_backward(logits, target, backend=backend),
                        R.cross_entropy_backward(logits, target), "grad")


@backends
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_an_empty_batch_gives_torchs_nan_mean_and_zero_sum(backend, reduction):
    logits, target = np.zeros((0, 4)), np.zeros(0, np.int64)
    expected = R.cross_entropy(logits, target, reduction)  # nan for the mean, 0 for the sum
    np.testing.assert_array_equal(F.cross_entropy(logits, target, reduction, backend=backend),
                                  expected)
    np.testing.assert_array_equal(F.nll_loss(logits, target, reduction, backend=backend),
                                  expected)
    assert F.cross_entropy_backward(logits, target, reduction, backend=backend).shape == (0, 4)


def test_losses_on_cuda_device_arrays_stay_on_the_device():
    if "cuda" not in BACKENDS:
        pytest.skip("no cuda backend here")
    from numba import cuda

    logits, target = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]), np.array([2, 0])
    d_loss = F.cross_entropy(cuda.to_device(logits), cuda.to_device(target), backend="cuda")
    assert hasattr(d_loss, "copy_to_host") and d_loss.shape == ()
    check_against_torch(d_loss.copy_to_host(), R.cross_entropy(logits, target), "loss")
    d_grad = F.cross_entropy_backward(cuda.to_device(logits), target, backend="cuda")
    assert hasattr(d_grad, "copy_to_host")


# --------------------------------------------------------------------------- dropout


def _dropout_size(backend):
    return (20, 25) if backend == "cuda" else (40, 50)  # 500 / 2000 draws


@backends
@dtypes
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_keeps_one_minus_p_and_scales_by_its_inverse(backend, dtype, p):
    x = np.random.default_rng(1).normal(size=_dropout_size(backend)).astype(dtype)
    y, mask = F.dropout(x, p, random_seed=7, return_mask=True, backend=backend)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    kept = mask.mean()
    sigma = np.sqrt(p * (1 - p) / mask.size)
    assert abs(kept - (1 - p)) < 5 * sigma, (kept, 1 - p)
    # y is PyTorch's x * noise for this mask, to the bit; the dropped elements are 0
    np.testing.assert_array_equal(y, R.dropout_with_mask(x, mask, p))
    np.testing.assert_array_equal(y[mask == 0], 0)
    check_against_torch(y[mask == 1], (x[mask == 1] / (1 - p)).astype(dtype), "kept")
    grad_y = np.random.default_rng(2).normal(size=x.shape).astype(dtype)
    np.testing.assert_array_equal(F.dropout_backward(grad_y, mask, p, backend=backend),
                                  R.dropout_backward(grad_y, mask, p))


@backends
def test_dropout_one_seed_one_mask_another_seed_another(backend):
    x = np.ones(_dropout_size(backend))
    y1, m1 = F.dropout(x, 0.5, random_seed=3, return_mask=True, backend=backend)
    y2, m2 = F.dropout(x, 0.5, random_seed=3, return_mask=True, backend=backend)
    _, m3 = F.dropout(x, 0.5, random_seed=4, return_mask=True, backend=backend)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(y1, y2)
    assert (m1 != m3).any()
    np.testing.assert_array_equal(F.dropout(x, 0.5, random_seed=3, backend=backend), y1)  # y alone


def test_the_cpu_backends_draw_the_same_mask_for_one_seed():
    x = np.ones((7, 9))
    masks = [F.dropout(x, 0.4, random_seed=11, return_mask=True, backend=b)[1]
             for b in ("naive", "numpy", "numba") if b in BACKENDS]
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])


@backends
def test_dropout_p0_p1_and_eval_are_torchs(backend):
    x = np.array([[1.5, -2.0, np.inf], [0.0, -0.0, np.nan]])
    grad_y = np.arange(6.0).reshape(2, 3)
    y, mask = F.dropout(x, 0.0, random_seed=1, return_mask=True, backend=backend)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(mask, 1)
    np.testing.assert_array_equal(F.dropout_backward(grad_y, mask, 0.0, backend=backend),
                                  grad_y)
    y, mask = F.dropout(x, 1.0, random_seed=1, return_mask=True, backend=backend)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(y, x * 0)  # PyTorch's x * 0: NaN at inf and NaN
    np.testing.assert_array_equal(mask, 0)
    np.testing.assert_array_equal(F.dropout_backward(grad_y, mask, 1.0, backend=backend),
                                  R.dropout_backward(grad_y, mask, 1.0))
    y = F.dropout(x, 0.7, training=False, random_seed=1, backend=backend)
    np.testing.assert_array_equal(y, x)
    assert F.dropout(np.zeros((0, 3)), 0.5, random_seed=1, backend=backend).shape == (0, 3)


# --------------------------------------------------------------------------- optimizer updates


@st.composite
def sgd_settings(draw):
    momentum = draw(st.sampled_from([0.0, 0.9]))
    dampening = draw(st.sampled_from([0.0, 0.3]))
    nesterov = momentum > 0 and dampening == 0 and draw(st.booleans())
    return dict(lr=draw(st.sampled_from([0.1, 0.01])), momentum=momentum,
                dampening=dampening, nesterov=nesterov,
                weight_decay=draw(st.sampled_from([0.0, 0.05])))


def _arrays(draw, dtype, shape, count):
    return [draw(hnp.arrays(dtype, shape, elements=st.floats(-2, 2, width=32)))
            for _ in range(count)]


@backends
@dtypes
def test_sgd_step_matches_torch_optim_sgd_over_three_steps(backend, dtype):
    @given(data=st.data(), hyper=sgd_settings())
    def check(data, hyper):
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
        ours, *grads = _arrays(data.draw, dtype, shape, 4)
        theirs = ours.copy()
        buf = ref_buf = None
        for grad in grads:
            buf = F.sgd_step(ours, grad, buf, **hyper, backend=backend)
            ref_buf = R.sgd_step(theirs, grad, ref_buf, **hyper)
            check_against_torch(ours, theirs, "param")
            assert (buf is None) == (ref_buf is None)
            if buf is not None:
                check_against_torch(buf, ref_buf, "momentum buffer")

    _run_hypothesis(check, backend)


@backends
@pytest.mark.parametrize("hyper", [
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    dict(lr=0.1, momentum=0.8, dampening=0.5),
], ids=["nesterov", "dampening"])
def test_sgd_nesterov_and_dampening_match_torch(backend, hyper):
    """Fixed cases of what the few simulator examples above may not draw."""
    rng = np.random.default_rng(5)
    ours = rng.normal(size=(2, 3))
    theirs = ours.copy()
    buf = ref_buf = None
    for _ in range(3):
        grad = rng.normal(size=(2, 3))
        buf = F.sgd_step(ours, grad, buf, **hyper, backend=backend)
        ref_buf = R.sgd_step(theirs, grad, ref_buf, **hyper)
        check_against_torch(ours, theirs, "param")
        check_against_torch(buf, ref_buf, "momentum buffer")


@backends
@dtypes
def test_adam_step_matches_torch_optim_adam_and_adamw_over_three_steps(backend, dtype):
    @given(data=st.data(), amsgrad=st.booleans(), decoupled=st.booleans(),
           weight_decay=st.sampled_from([0.0, 0.1]),
           betas=st.sampled_from([(0.9, 0.999), (0.3, 0.6)]))  # 1 - beta1 on either side of 0.5
    def check(data, amsgrad, decoupled, weight_decay, betas):
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
        ours, *grads = _arrays(data.draw, dtype, shape, 4)
        theirs = ours.copy()
        state = [np.zeros_like(ours) for _ in range(3)]  # m, v, v_max
        ref_state = [np.zeros_like(ours) for _ in range(3)]
        kwargs = dict(lr=0.05, betas=betas, eps=1e-8, weight_decay=weight_decay,
                      amsgrad=amsgrad, decoupled_weight_decay=decoupled)
        for step, grad in enumerate(grads, 1):
            F.adam_step(ours, grad, state[0], state[1], step, v_max=state[2], **kwargs,
                        backend=backend)
            R.adam_step(theirs, grad, ref_state[0], ref_state[1], step, v_max=ref_state[2],
                        **kwargs)
            check_against_torch(ours, theirs, "param")
            for a, b, name in zip(state, ref_state, ["m", "v", "v_max"], strict=True):
                check_against_torch(a, b, name)

    _run_hypothesis(check, backend)


def test_optimizer_steps_update_cuda_device_arrays_in_place():
    if "cuda" not in BACKENDS:
        pytest.skip("no cuda backend here")
    from numba import cuda

    param, grad = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.5, -1.0])
    d_param = cuda.to_device(param)
    d_buf = F.sgd_step(d_param, cuda.to_device(grad), None, 0.1, momentum=0.9, backend="cuda")
    assert hasattr(d_buf, "copy_to_host")
    np.testing.assert_allclose(d_param.copy_to_host(), param - 0.1 * grad, rtol=1e-15)
    np.testing.assert_allclose(d_buf.copy_to_host(), grad, rtol=0)


# --------------------------------------------------------------------------- bad input

X2 = np.zeros((2, 3))
T2 = np.array([0, 2])
P3 = np.zeros(3)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.log_softmax(np.zeros(3)), ValueError, r"x: expected a 2-D array \(N, C\)"),
    (lambda: F.log_softmax(X2, 0), ValueError, "dim: expected 1 or -1"),
    (lambda: F.log_softmax(X2, 1.0), TypeError, "dim: expected an int"),
    (lambda: F.log_softmax_backward(np.zeros((2, 2)), X2), ValueError,
     r"grad_y: expected shape \(2, 3\)"),
    (lambda: F.cross_entropy(X2, T2.astype(np.int32)), TypeError,
     "target: expected dtype int64"),
    (lambda: F.cross_entropy(X2, [0, 2]), TypeError, "target: expected a numpy.ndarray"),
    (lambda: F.nll_loss(X2, np.array([0, 1, 2])), ValueError, r"target: expected shape \(2,\)"),
    (lambda: F.cross_entropy(X2, np.array([0, 3])), IndexError,
     "target: Target 3 is out of bounds"),
    (lambda: F.nll_loss(X2, np.array([-100, 0])), IndexError,
     "target: Target -100 is out of bounds"),
    (lambda: F.cross_entropy(X2, T2, "none"), ValueError, "reduction: expected 'mean' or"),
    (lambda: F.cross_entropy_backward(X2, T2, grad="1"), TypeError, "grad: expected a real"),
    (lambda: F.dropout(X2, 1.5, random_seed=0), ValueError, "p: dropout probability has to be"),
    (lambda: F.dropout(X2, 0.5, random_seed=-1), ValueError,
     r"random_seed: expected an int in \[0"),
    (lambda: F.dropout(X2, 0.5, random_seed=1.0), TypeError, "random_seed: expected an int"),
    (lambda: F.dropout(X2, 0.5, training=1, random_seed=0), TypeError, "training: expected a bool"),
    (lambda: F.dropout_backward(X2, X2, 0.5), TypeError, "mask: expected dtype uint8"),
    (lambda: F.dropout_backward(X2, np.ones(3, np.uint8), 0.5), ValueError,
     r"mask: expected shape \(2, 3\)"),
    (lambda: F.dropout_backward(X2, [1, 0], 0.5), TypeError, "mask: expected a numpy.ndarray"),
    (lambda: F.sgd_step(P3, P3, None, -0.1), ValueError, "lr: Invalid learning rate: -0.1"),
    (lambda: F.sgd_step(P3, P3, None, 0.1, momentum=-1.0), ValueError,
     "momentum: Invalid momentum value"),
    (lambda: F.sgd_step(P3, P3, None, 0.1, weight_decay=-1.0), ValueError,
     "weight_decay: Invalid weight_decay value"),
    (lambda: F.sgd_step(P3, P3, None, 0.1, 0.9, 0.5, True), ValueError,
     "nesterov: Nesterov momentum requires a momentum and zero dampening"),
    (lambda: F.sgd_step(np.zeros(6)[::2], P3, None, 0.1), ValueError,
     "param: expected a C-contiguous, writeable array"),
    (lambda: F.sgd_step(np.broadcast_to(0.0, (3,)), P3, None, 0.1), ValueError,
     "param: expected a C-contiguous, writeable array .* got a read-only one"),
    (lambda: F.sgd_step([0.0], P3, None, 0.1), TypeError, "param: expected a numpy.ndarray"),
    (lambda: F.sgd_step(P3, np.zeros(3, np.float32), None, 0.1), TypeError,
     "grad: expected dtype float64"),
    (lambda: F.sgd_step(P3, np.zeros(4), None, 0.1), ValueError, r"grad: expected shape \(3,\)"),
    (lambda: F.sgd_step(P3, P3, np.zeros(4), 0.1, 0.9), ValueError,
     r"buf: expected shape \(3,\)"),
    (lambda: F.sgd_step(P3, P3, None, "0.1"), TypeError, "lr: expected a float"),
    (lambda: F.adam_step(P3, P3, P3.copy(), P3.copy(), 0), ValueError, "step: expected the step"),
    (lambda: F.adam_step(P3, P3, P3.copy(), P3.copy(), 1.0), TypeError, "step: expected an int"),
    (lambda: F.adam_step(P3, P3, P3.copy(), P3.copy(), 1, betas=(1.0, 0.9)), ValueError,
     "betas: Invalid beta parameter at index 0"),
    (lambda: F.adam_step(P3, P3, P3.copy(), P3.copy(), 1, betas=0.9), TypeError,
     "betas: expected a pair"),
    (lambda: F.adam_step(P3, P3, P3.copy(), P3.copy(), 1, eps=-1.0), ValueError,
     "eps: Invalid epsilon value"),
    (lambda: F.adam_step(P3, P3, P3.copy(), P3.copy(), 1, amsgrad=True), ValueError,
     "v_max: expected an array"),
    (lambda: F.adam_step(P3, P3, np.zeros(3, np.float32), P3.copy(), 1), TypeError,
     "m: expected dtype float64"),
], ids=lambda v: None)
def test_bad_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
