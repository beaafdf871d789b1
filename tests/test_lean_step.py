"""The lean training step: the needs_input_grad mask, the small-window direct path, twins.

- ``F.conv2d_backward(..., needs_input_grad=(gx, gw, gb))`` (PyTorch's ``output_mask``) on
  every backend: what is asked for equals torch's gradient, what is not comes back ``None``;
  every kernel takes the mask keyword-only; bad masks raise naming the argument.
- A model with ``needs_input_grad = False`` (as a training loop sets it): its first conv runs
  ``conv2d_backward`` without grad_x, ``backward`` returns ``None``, and every parameter's
  gradient still equals torch's (LeNet-5 and the MNIST CNN); a model whose input is read by
  two layers still gets every gradient; the default keeps returning grad_x.
- numba: the direct path with several input channels (``C_in/g*kH*kW <= DIRECT_MAX_K``),
  forced and chosen by ``conv_plan``, and its serial twins (below ``SERIAL_MAX_MACS``), equal
  to torch under hypothesis.
"""

from __future__ import annotations

import inspect
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_cnn as mc
import reference as R
from kernels.common import ConvSpec
from minitorch_cnn import functional as F
from minitorch_cnn import models, nn
from minitorch_cnn.backend import kernel_module
from reference import models as tm

from .checks import BACKENDS, DTYPES, check_against_torch, examples, max_size
from .strategies import conv_problems

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
MASKS = list(itertools.product([False, True], repeat=3))
numba_only = pytest.mark.skipif("numba" not in mc.backends(), reason="numba unavailable")


EXAMPLES = 10  # per test: the paths are few, and test_ops_match_torch covers conv broadly


def run_property(backend: str, strategy, check) -> None:
    """Run ``check`` over ``strategy``: at most EXAMPLES, fewer in the CUDA simulator."""
    n = min(EXAMPLES, examples(backend) or EXAMPLES, settings().max_examples)
    given(strategy)(settings(max_examples=n if backend != "cuda" else min(n, 4))(check))()


def _host(a):
    return a.copy_to_host() if hasattr(a, "copy_to_host") else a


# --------------------------------------------------------------------------- the mask


@backends
@dtypes
def test_conv2d_backward_computes_what_needs_input_grad_asks_for_as_torch(backend, dtype):
    def check(p, mask):
        grads = F.conv2d_backward(p.grad_y, p.x, p.weight, **p.kwargs, backend=backend,
                                  needs_input_grad=mask)
        expected = R.conv2d_backward(p.grad_y, p.x, p.weight, **p.kwargs)
        for ours, theirs, needed, name in zip(grads, expected, mask,
                                              ["grad_x", "grad_weight", "grad_bias"],
                                              strict=True):
            if needed:
                check_against_torch(_host(ours), theirs, name)
            else:
                assert ours is None, f"{name} was not asked for but came back"

    run_property(backend, st.tuples(conv_problems(dtype, max_size(backend)),
                                    st.sampled_from(MASKS)), lambda args: check(*args))


@backends
def test_every_kernel_takes_needs_input_grad_keyword_only_defaulting_to_all(backend):
    parameter = inspect.signature(kernel_module(backend).conv2d_backward).parameters[
        "needs_input_grad"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert tuple(parameter.default) == (True, True, True)


def test_an_empty_batch_answers_the_mask_too():
    x, w = np.zeros((0, 2, 5, 5)), np.zeros((3, 2, 3, 3))
    gx, gw, gb = F.conv2d_backward(np.zeros((0, 3, 3, 3)), x, w,
                                   needs_input_grad=(False, True, False))
    assert gx is None and gb is None and gw.shape == (3, 2, 3, 3) and not gw.any()


def test_conv1d_backward_passes_the_mask_on():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 9)), rng.standard_normal((4, 3, 2))
    gy = rng.standard_normal((2, 4, 8))
    gx, gw, gb = F.conv1d_backward(gy, x, w, needs_input_grad=(False, True, True))
    ex = torch.from_numpy(x)
    ew = torch.from_numpy(w).requires_grad_()
    torch.nn.functional.conv1d(ex, ew).backward(torch.from_numpy(gy))
    assert gx is None
    check_against_torch(gw, ew.grad.numpy(), "grad_weight")
    check_against_torch(gb, gy.sum((0, 2)), "grad_bias")


@pytest.mark.parametrize(
    "mask, error, message",
    [
        ([True, True], ValueError, "needs_input_grad: expected three bools"),
        ((True, True, True, True), ValueError, "got 4"),
        (True, TypeError, "needs_input_grad: expected a tuple of three bools"),
        ("yes", TypeError, "got str 'yes'"),
        ((1, True, True), TypeError, "needs_input_grad: expected bools"),
        ((True, None, True), TypeError, "got NoneType None"),
    ],
    ids=["two", "four", "a-bool", "a-string", "an-int", "a-none"],
)
def test_a_bad_mask_raises_naming_needs_input_grad(mask, error, message):
    x, w = np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3))
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        F.conv2d_backward(np.zeros((1, 1, 2, 2)), x, w, needs_input_grad=mask)


# --------------------------------------------------------------------------- the framework


def _torch_grads(name, state, x, labels):
    model = getattr(tm, name)().double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    xt = torch.from_numpy(x)
    torch.nn.functional.cross_entropy(model(xt), torch.from_numpy(labels)).backward()
    return {k: p.grad.numpy() for k, p in model.named_parameters()}


@pytest.mark.parametrize("name", ["lenet5", "MnistCNN"])
def test_a_model_without_input_grad_skips_the_first_grad_x_and_matches_torch(name,
                                                                            monkeypatch):
    rng = np.random.default_rng(1)
    model = getattr(models, name)().double()
    model.needs_input_grad = False
    state = model.state_dict()
    x, labels = rng.standard_normal((3, 1, 28, 28)), rng.integers(0, 10, 3)
    masks = []
    real = F.conv2d_backward

    def spy(*args, **kwargs):
        masks.append(kwargs.get("needs_input_grad", (True, True, True)))
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "conv2d_backward", spy)
    criterion = nn.CrossEntropyLoss()
    for _ in range(2):  # a second step: the skip holds step after step
        masks.clear()
        model.zero_grad()
        criterion(model(x), labels)
        assert model.backward(criterion.backward()) is None
        assert masks == [(True, True, True), (False, True, True)]  # conv2, then conv1
    expected = _torch_grads(name, state, x, labels)
    for key, param in model.named_parameters():
        check_against_torch(param.grad, expected[key], key)


def test_by_default_backward_still_returns_grad_x_as_torch():
    rng = np.random.default_rng(2)
    model = models.lenet5().double()
    x = rng.standard_normal((2, 1, 28, 28))
    grad_y = rng.standard_normal((2, 10))
    y = model(x)
    grad_x = model.backward(grad_y)
    theirs = tm.lenet5().double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    xt = torch.from_numpy(x).requires_grad_()
    yt = theirs(xt)
    yt.backward(torch.from_numpy(grad_y))
    check_against_torch(y, yt.detach().numpy(), "y")
    check_against_torch(grad_x, xt.grad.numpy(), "grad_x")


class _TwoReaders(nn.Module):
    """``y = conv_a(x) + conv_b(x)``: two layers read the model's input."""

    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(2, 3, 3)
        self.conv_b = nn.Conv2d(2, 3, 3)

    def forward(self, x):
        return self.conv_a(x) + self.conv_b(x)

    def backward(self, grad_y):
        return self.conv_a.backward(grad_y) + self.conv_b.backward(grad_y)


@pytest.mark.parametrize("net", ["two readers", "residual block first"])
def test_a_layer_that_shares_the_model_input_keeps_its_grad_x(net):
    rng = np.random.default_rng(3)
    if net == "two readers":
        model = _TwoReaders().double()
    else:
        model = nn.Sequential(nn.ResidualBlock(2), nn.Conv2d(2, 3, 3)).double()
    model.needs_input_grad = False
    x = rng.standard_normal((2, 2, 6, 5))
    y = model(x)
    grad_x = model.backward(np.ones_like(y))  # no None reaches an addition
    assert grad_x.shape == x.shape
    model.needs_input_grad = True
    reference = model.backward(np.ones_like(model(x)))
    np.testing.assert_array_equal(grad_x, reference)


# --------------------------------------------------------------------------- numba paths


@st.composite
def small_window_problems(draw, dtype):
    """Stride 1, several input channels per group, ``C_in/g*kH*kW <= DIRECT_MAX_K``."""
    groups = draw(st.sampled_from([1, 1, 2]))
    C_in_g = draw(st.integers(2, 4))
    C_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    dh, dw = draw(st.sampled_from([(1, 1), (1, 1), (2, 1), (1, 2)]))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 5))
    W = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 5))
    N = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((N, C_in_g * groups, H, W)).astype(dtype)
    w = rng.standard_normal((C_out, C_in_g, kh, kw)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype) if draw(st.booleans()) else None
    kwargs = dict(stride=1, padding=(ph, pw), dilation=(dh, dw), groups=groups)
    y_shape = R.conv2d(x, w, b, **kwargs).shape
    return x, w, b, rng.standard_normal(y_shape).astype(dtype), kwargs


def _check_numba_conv(x, w, b, grad_y, kwargs, mask=(True, True, True)):
    y = F.conv2d(x, w, b, **kwargs, backend="numba")
    check_against_torch(y, R.conv2d(x, w, b, **kwargs), "y")
    grads = F.conv2d_backward(grad_y, x, w, **kwargs, backend="numba", needs_input_grad=mask)
    expected = R.conv2d_backward(grad_y, x, w, **kwargs)
    for ours, theirs, needed, name in zip(grads, expected, mask, ["gx", "gw", "gb"],
                                          strict=True):
        if needed:
            check_against_torch(ours, theirs, name)
        else:
            assert ours is None


def _spec(x, w, kwargs):
    ph, pw = kwargs["padding"]
    return ConvSpec.from_shapes(x.shape, w.shape, (1, 1), (ph, pw), kwargs["dilation"],
                                kwargs["groups"])


@numba_only
@dtypes
def test_the_small_window_direct_path_is_chosen_and_matches_torch(dtype):
    from kernels import numba_cpu as nc

    @settings(max_examples=min(EXAMPLES, settings().max_examples))
    @given(small_window_problems(dtype), st.sampled_from(MASKS))
    def check(problem, mask):
        x, w, b, grad_y, kwargs = problem
        spec = _spec(x, w, kwargs)
        plan = nc.conv_plan(spec, x.itemsize)
        macs = spec.N * spec.C_out * spec.H_out * spec.W_out * spec.C_in // spec.groups * (
            spec.kH * spec.kW)
        assert plan.path == "direct" and plan.serial == (macs < nc.SERIAL_MAX_MACS)
        _check_numba_conv(x, w, b, grad_y, kwargs, mask)

    check()


@numba_only
@pytest.mark.parametrize("serial", [True, False], ids=["serial", "parallel"])
def test_the_direct_path_forced_on_either_twin_matches_torch(serial, monkeypatch):
    from kernels import numba_cpu as nc

    monkeypatch.setattr(nc, "SERIAL_MAX_MACS", 2**62 if serial else 0)

    @settings(max_examples=min(EXAMPLES, settings().max_examples))
    @given(small_window_problems(np.float64))
    def check(problem):
        x, w, b, grad_y, kwargs = problem
        with nc.conv_algorithm("direct"):
            assert nc.conv_plan(_spec(x, w, kwargs), 8).serial == serial
            _check_numba_conv(x, w, b, grad_y, kwargs)

    check()


@numba_only
def test_the_plan_for_the_training_layers_and_the_serial_cut():
    from kernels import numba_cpu as nc

    def plan(x_shape, w_shape, padding=(0, 0)):
        spec = ConvSpec.from_shapes(x_shape, w_shape, (1, 1), padding, (1, 1), 1)
        return nc.conv_plan(spec, 4, threads=2)

    lenet_conv2, mnist_conv2 = plan((64, 6, 14, 14), (16, 6, 5, 5)), plan((64, 10, 12, 12),
                                                                         (20, 10, 5, 5))
    assert lenet_conv2.path == mnist_conv2.path == "direct"  # K = 150, 250: no im2col
    assert not lenet_conv2.serial and not mnist_conv2.serial  # 15.4M, 20.5M MACs: parallel
    assert plan((1, 1, 14, 14), (16, 1, 5, 5)).serial  # 40k MACs: serial
    assert not plan((1, 6, 14, 14), (16, 6, 5, 5)).serial  # 240k MACs: parallel
    assert plan((64, 16, 14, 14), (16, 16, 5, 5)).path == "gemm"  # K = 400
    assert plan((4, 16, 32, 32), (8, 16, 1, 1)).path == "1x1"  # 1x1 keeps its in-place GEMM
    macs = 64 * 16 * 10 * 10 * 150
    assert (macs < nc.SERIAL_MAX_MACS) == lenet_conv2.serial
