"""``F.conv1d`` / ``F.conv1d_backward`` / ``nn.Conv1d`` on every backend, against PyTorch.

conv1d is a view over the 2-D kernels (H = 1), so these tests check the view: the 1-D
hyper-parameters reach the right axis, "same" puts an even kernel's extra zero at the right,
the gradients come back 3-D, device arrays stay on the device, and every validation message
names the 1-D shapes. The strategy builds valid problems directly: kernel, dilation, stride,
padding and output length first, then the input length that produces them.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_cnn as mc
from kernels.common import conv_output_size
from minitorch_cnn import functional as F
from minitorch_cnn import nn
from reference import functional as R

from .checks import BACKENDS, DTYPES, check_against_torch, examples, max_size

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
PADDING_MODES = ["zeros", "reflect", "replicate", "circular"]


class Conv1dProblem(NamedTuple):
    x: np.ndarray  # (N, C_in, L)
    weight: np.ndarray  # (C_out, C_in // groups, k)
    bias: np.ndarray | None  # (C_out,)
    grad_y: np.ndarray  # (N, C_out, L_out)
    kwargs: dict[str, Any]  # stride, padding, dilation, groups


def _spelling(draw, value: int):
    """``value`` as an int or as PyTorch's one-element tuple, to exercise both."""
    return (value,) if draw(st.booleans()) else value


@st.composite
def conv1d_problems(draw, dtype=np.float64, biggest: int = 8) -> Conv1dProblem:
    """A valid conv1d problem: hyper-parameters and output length first, then L."""
    small = biggest <= 4
    groups = draw(st.sampled_from([1, 2] if small else [1, 1, 2, 3]))
    C_in = groups * draw(st.integers(1, 2))
    C_out = groups * draw(st.integers(1, 2 if small else 3))
    N = draw(st.integers(1, 2))
    k = draw(st.integers(1, 4))
    dilation = draw(st.integers(1, 2 if small else 3))
    reach = dilation * (k - 1) + 1
    mode = draw(st.sampled_from(["int", "int", "same", "valid"]))
    if mode == "same":
        stride, pad, padding = 1, 0, "same"
        L = draw(st.integers(1, biggest))
    else:
        stride = draw(st.integers(1, 3))
        pad = 0 if mode == "valid" else draw(st.integers(0, 2))
        padding = "valid" if mode == "valid" else _spelling(draw, pad)
        out = draw(st.integers(1, max(1, biggest // 2)))
        # the smallest input giving `out` outputs, plus up to stride-1 leftover cells
        L = max((out - 1) * stride + reach - 2 * pad, 1) + draw(st.integers(0, stride - 1))
        L = max(L, reach - 2 * pad)
    L_out = L if padding == "same" else conv_output_size(L, k, stride, pad, dilation)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, C_in, L)).astype(dtype)
    weight = rng.standard_normal((C_out, C_in // groups, k)).astype(dtype)
    bias = rng.standard_normal(C_out).astype(dtype) if draw(st.booleans()) else None
    grad_y = rng.standard_normal((N, C_out, L_out)).astype(dtype)
    kwargs = dict(stride=_spelling(draw, stride), padding=padding,
                  dilation=_spelling(draw, dilation), groups=groups)
    return Conv1dProblem(x, weight, bias, grad_y, kwargs)


def run_property(backend: str, strategy, check) -> None:
    """Run ``check`` over ``strategy`` with the example budget of ``backend``."""
    n = examples(backend)
    test = given(strategy)(check)
    if n is not None:
        test = settings(max_examples=n)(test)
    test()


# --------------------------------------------------------------------------- F.conv1d


@backends
@dtypes
def test_conv1d_forward_matches_torch(backend, dtype):
    def check(p):
        y = F.conv1d(p.x, p.weight, p.bias, **p.kwargs, backend=backend)
        check_against_torch(y, R.conv1d(p.x, p.weight, p.bias, **p.kwargs), "y")

    run_property(backend, conv1d_problems(dtype, max_size(backend)), check)


@backends
@dtypes
def test_conv1d_backward_grad_x_grad_weight_grad_bias_match_torch(backend, dtype):
    def check(p):
        gx, gw, gb = F.conv1d_backward(p.grad_y, p.x, p.weight, **p.kwargs, backend=backend)
        ex, ew, eb = R.conv1d_backward(p.grad_y, p.x, p.weight, **p.kwargs)
        check_against_torch(gx, ex, "grad_x")
        check_against_torch(gw, ew, "grad_weight")
        check_against_torch(gb, eb, "grad_bias")

    run_property(backend, conv1d_problems(dtype, max_size(backend)), check)


def test_conv1d_by_hand_is_a_cross_correlation():
    """x = 0..6, kernel (1, 2): y[i] = x[i] + 2*x[i + 1], no flip; stride 2 keeps every other."""
    x = np.arange(7.0).reshape(1, 1, 7)
    w = np.array([[[1.0, 2.0]]])
    np.testing.assert_array_equal(F.conv1d(x, w), [[[2, 5, 8, 11, 14, 17]]])
    np.testing.assert_array_equal(F.conv1d(x, w, stride=2), [[[2, 8, 14]]])
    np.testing.assert_array_equal(F.conv1d(x, w, dilation=3), [[[6, 9, 12, 15]]])


@backends
@pytest.mark.parametrize("k, dilation", [(4, 1), (2, 1), (2, 3), (4, 2), (3, 2)])
def test_conv1d_same_with_even_kernels_and_dilation_matches_torch(backend, k, dilation):
    """An even total padding dilation*(k - 1) is split unequally: the extra zero at the right."""
    rng = np.random.default_rng(k * 10 + dilation)
    x, w, b = rng.standard_normal((1, 2, 5)), rng.standard_normal((4, 1, k)), np.ones(4)
    gy = rng.standard_normal((1, 4, 5))
    kwargs = dict(padding="same", dilation=dilation, groups=2)
    check_against_torch(F.conv1d(x, w, b, **kwargs, backend=backend),
                        R.conv1d(x, w, b, **kwargs), "y")
    ours = F.conv1d_backward(gy, x, w, **kwargs, backend=backend)
    for a, e, name in zip(ours, R.conv1d_backward(gy, x, w, **kwargs),
                          ("grad_x", "grad_weight", "grad_bias"), strict=True):
        check_against_torch(a, e, name)


@backends
def test_conv1d_takes_any_layout_leaves_inputs_unchanged_and_handles_an_empty_batch(backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 10))[:, :, ::2]  # (1, 3, 5), strided
    w = np.asfortranarray(rng.standard_normal((2, 3, 3)))
    gy = rng.standard_normal((1, 2, 5))
    copies = [a.copy() for a in (x, w, gy)]
    check_against_torch(F.conv1d(x, w, padding=1, backend=backend),
                        R.conv1d(x, w, padding=1), "y")
    F.conv1d_backward(gy, x, w, padding=1, backend=backend)
    for before, after in zip(copies, (x, w, gy), strict=True):
        np.testing.assert_array_equal(before, after)
    empty = np.zeros((0, 3, 8))
    assert F.conv1d(empty, w, padding=1, backend=backend).shape == (0, 2, 8)
    shapes = [g.shape for g in F.conv1d_backward(np.zeros((0, 2, 8)), empty, w, padding=1,
                                                  backend=backend)]
    assert shapes == [(0, 3, 8), (2, 3, 3), (2,)]


# --------------------------------------------------------------------------- validation

_x, _w = np.zeros((2, 4, 6)), np.zeros((4, 2, 3))


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((np.zeros((2, 4, 1, 6)), _w), {}, ValueError,
     r"x: expected a 3-D array \(N, C_in, L\), got shape \(2, 4, 1, 6\)"),
    ((_x, np.zeros((3, 2, 1, 3))), {}, ValueError,
     r"weight: expected a 3-D array \(C_out, C_in // groups, k\), got shape \(3, 2, 1, 3\)"),
    (([[0.0]], _w), {}, TypeError, r"x: expected a numpy.ndarray \(N, C_in, L\)"),
    ((_x, _w.astype(np.float32)), {}, TypeError, r"weight: expected dtype float64"),
    ((np.zeros((2, 4, 0)), _w), {}, ValueError, r"x: expected C_in, L > 0, got shape \(2, 4, 0\)"),
    ((_x, np.zeros((3, 2, 0))), {}, ValueError,
     r"weight: expected no zero-sized dimension, got shape \(3, 2, 0\)"),
    ((_x, _w), {}, ValueError,
     r"weight: expected 4 // groups=1 input channels .* shape \(4, 2, 3\), i.e. 2 \* groups"),
    ((_x, np.zeros((3, 1, 3))), {"groups": 4}, ValueError,
     r"groups: expected a divisor of C_out=3 \(weight.shape\[0\]\), got 4"),
    ((_x, _w), {"groups": 0}, ValueError, r"groups: expected a positive int, got 0"),
    ((_x, _w), {"groups": 2, "stride": (1, 2)}, ValueError,
     r"stride: expected an int or a one-element sequence, got \(1, 2\)"),
    ((_x, _w), {"groups": 2, "stride": 0}, ValueError, r"stride: expected a positive int"),
    ((_x, _w), {"groups": 2, "stride": 1.0}, TypeError, r"stride: expected an int, got float"),
    ((_x, _w), {"groups": 2, "dilation": [0]}, ValueError, r"dilation: expected a positive int"),
    ((_x, _w), {"groups": 2, "padding": (0, 1)}, ValueError,
     r"padding: expected an int or a one-element sequence, got \(0, 1\)"),
    ((_x, _w), {"groups": 2, "padding": -1}, ValueError, r"padding: expected a >= 0 int, got -1"),
    ((_x, _w), {"groups": 2, "padding": "full"}, ValueError,
     r"padding: expected an int, 'same' or 'valid', got 'full'"),
    ((_x, _w), {"groups": 2, "padding": "same", "stride": 2}, ValueError,
     r"padding: expected stride 1 with 'same' \(as in PyTorch\), got stride 2"),
    ((_x, _w), {"groups": 2, "dilation": 3}, ValueError,
     r"weight: expected the dilated kernel to fit the padded input along L \(6 \+ 2\*0 = 6\), "
     r"got one spanning 7"),
    ((_x, _w, np.zeros(2)), {"groups": 2}, ValueError, r"bias: expected shape \(4,\)"),
])
def test_conv1d_rejects_bad_input_naming_the_argument_and_the_1d_shape(args, kwargs, error,
                                                                        match):
    with pytest.raises(error, match=match):
        F.conv1d(*args, **kwargs)
    if len(args) == 2:  # the backward validates the same way
        with pytest.raises(error, match=match):
            F.conv1d_backward(np.zeros((2, 4, 4)), *args, **kwargs)


@pytest.mark.parametrize("grad_y, error, match", [
    (np.zeros((2, 4, 5)), ValueError,
     r"grad_y: expected shape \(2, 4, 4\) \(the forward output's\), got \(2, 4, 5\)"),
    (np.zeros((2, 4, 1, 4)), ValueError,
     r"grad_y: expected a 3-D array \(N, C_out, L_out\), got shape \(2, 4, 1, 4\)"),
    (np.zeros((2, 4, 4), np.float32), TypeError, r"grad_y: expected dtype float64"),
])
def test_conv1d_backward_rejects_a_bad_grad_y(grad_y, error, match):
    with pytest.raises(error, match=match):
        F.conv1d_backward(grad_y, _x, _w, groups=2)


# --------------------------------------------------------------------------- nn.Conv1d


def _check_layer(backend, padding_mode, kwargs, x_shape=(2, 4, 7)):
    """``nn.Conv1d`` against torch's: y, grad_x, the parameters' grads and the repr."""
    C_in = x_shape[1]
    layer = nn.Conv1d(C_in, 2, 3, padding_mode=padding_mode, **kwargs).double()
    twin = torch.nn.Conv1d(C_in, 2, 3, padding_mode=padding_mode, **kwargs).double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    with mc.use_backend(backend):
        y = layer(x)
        ty = twin(tx)
        check_against_torch(y, ty.detach().numpy(), "y")
        grad_y = rng.standard_normal(y.shape)
        grad_x = layer.backward(grad_y)
    ty.backward(torch.from_numpy(grad_y))
    check_against_torch(grad_x, tx.grad.numpy(), "grad_x")
    for name, param in twin.named_parameters():
        check_against_torch(dict(layer.named_parameters())[name].grad, param.grad.numpy(), name)
    assert repr(layer) == repr(twin)


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("kwargs", [
    dict(padding=2, stride=2),
    dict(padding="same", dilation=(2,)),  # dilated k = 3: total 4, equal halves
    dict(padding=(1,), groups=2, bias=False),
    dict(padding="valid", dilation=2),
], ids=["pad-stride", "same", "groups", "valid"])
def test_conv1d_layer_matches_torch_in_every_padding_mode(padding_mode, kwargs):
    """The layer's logic is the same on every backend: checked in full on ``numpy``."""
    _check_layer("numpy", padding_mode, kwargs)


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_conv1d_layer_same_with_an_even_kernel_matches_torch(padding_mode):
    """k = 4: total padding 3, one at the left, two at the right, in every mode."""
    layer = nn.Conv1d(2, 3, 4, padding="same", padding_mode=padding_mode).double()
    twin = torch.nn.Conv1d(2, 3, 4, padding="same", padding_mode=padding_mode).double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x = np.random.default_rng(4).standard_normal((1, 2, 5))
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = twin(tx)
    check_against_torch(layer(x), ty.detach().numpy(), "y")
    ty.backward(torch.ones_like(ty))
    check_against_torch(layer.backward(np.ones((1, 3, 5))), tx.grad.numpy(), "grad_x")


@backends
def test_conv1d_layer_matches_torch_on_every_backend(backend):
    _check_layer(backend, "reflect", dict(padding="same", dilation=2), (1, 2, 5))
    _check_layer(backend, "zeros", dict(padding=1, stride=2, groups=2), (1, 2, 5))


def test_conv1d_layer_state_dict_goes_into_torch_and_back():
    """PyTorch's keys and shapes; torch's parameters loaded into ours give torch's output."""
    layer = nn.Conv1d(4, 6, 3, groups=2)
    twin = torch.nn.Conv1d(4, 6, 3, groups=2)
    ours = layer.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {
        k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert ours["weight"].shape == (6, 2, 3) and ours["weight"].dtype == np.float32
    layer.load_state_dict(twin.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 4, 9)).astype(np.float32)
    check_against_torch(layer(x), twin(torch.from_numpy(x)).detach().numpy(), "y")
    other = nn.Conv1d(4, 6, 3, groups=2)
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in other.state_dict().items()})
    check_against_torch(other(x), twin(torch.from_numpy(x)).detach().numpy(), "y")


def test_conv1d_layer_initialises_as_torch():
    """weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in // groups * k."""
    mc.init.manual_seed(0)
    layer = nn.Conv1d(8, 64, 5, groups=2)
    bound = 1 / math.sqrt(4 * 5)
    for param in (layer.weight.data, layer.bias.data):
        assert np.abs(param).max() <= bound
        assert np.abs(param).max() > 0.9 * bound
    assert nn.Conv1d(2, 2, 3, bias=False).bias is None


def test_conv1d_layer_forward_flops_counts_every_multiply_add():
    layer = nn.Conv1d(4, 6, 3, groups=2)
    y = layer(np.zeros((2, 4, 9), np.float32))
    assert layer.forward_flops((2, 4, 9), y.shape) == 2 * 2 * 6 * 7 * 2 * 3 + 2 * 6 * 7


@pytest.mark.parametrize("kwargs, match", [
    (dict(padding_mode="zero"), r"padding_mode: expected one of .*'circular'.*'zero'"),
    (dict(groups=3), r"groups: expected a divisor of in_channels=4 and out_channels=6, got 3"),
    (dict(padding="full"), r"padding: expected an int, 'same' or 'valid', got 'full'"),
    (dict(padding="same", stride=2), r"padding: 'same' is not supported for strided"),
])
def test_conv1d_layer_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.Conv1d(4, 6, 3, **kwargs)


def test_conv1d_layer_with_a_padding_mode_rejects_a_2d_input_naming_the_1d_shape():
    with pytest.raises(ValueError, match=r"x: expected a 3-D array \(N, C_in, L\)"):
        nn.Conv1d(4, 6, 3, padding=1, padding_mode="reflect")(np.zeros((2, 4, 1, 9)))


# --------------------------------------------------------------------------- CUDA


@pytest.mark.skipif("cuda" not in BACKENDS, reason="no GPU and no CUDA simulator")
def test_conv1d_device_arrays_stay_on_the_device_and_match_torch():
    """Device in, device out, forward and backward, even with the sliced "same" gradient."""
    from numba import cuda

    def on_device(a):
        assert not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host"), type(a)
        return a

    rng = np.random.default_rng(3)
    x, w, gy = (rng.standard_normal(s) for s in ((1, 2, 6), (3, 2, 4), (1, 3, 6)))
    kwargs = dict(padding="same", dilation=1)  # k = 4: an extra zero at the right
    y = on_device(F.conv1d(cuda.to_device(x), cuda.to_device(w), **kwargs, backend="cuda"))
    check_against_torch(y, R.conv1d(x, w, **kwargs), "y")
    grads = F.conv1d_backward(cuda.to_device(gy), cuda.to_device(x), cuda.to_device(w),
                              **kwargs, backend="cuda")
    for ours, ref, name in zip(grads, R.conv1d_backward(gy, x, w, **kwargs),
                               ("grad_x", "grad_weight", "grad_bias"), strict=True):
        check_against_torch(on_device(ours), ref, name)
    empty = cuda.to_device(np.zeros((0, 2, 6)))
    assert on_device(F.conv1d(empty, cuda.to_device(w), backend="cuda")).shape == (0, 3, 3)
    with pytest.raises(TypeError, match="x: got a CUDA device array.*backend='cuda'"):
        F.conv1d(cuda.to_device(x), w, backend="numpy")

