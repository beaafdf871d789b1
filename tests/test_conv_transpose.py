"""``F.conv_transpose2d`` / ``nn.ConvTranspose2d`` on every backend, against PyTorch.

The strategy builds valid problems directly: it draws the kernel, stride, dilation, then an
output_padding below ``max(stride, dilation)`` (PyTorch's rule, ``output_padding >= stride``
included where the dilation allows it), then a padding that leaves an output of at least one
cell. Kernels are asymmetric and inputs non-square. The identity the naive docstring states
(a transposed conv is conv2d's grad_x) is tested on its own, and so is every validation
message.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels.numba_cpu as nc
import minitorch_cnn as mc
from kernels.common import conv_output_size, conv_transpose_output_size, conv_transpose_spec
from minitorch_cnn import functional as F
from minitorch_cnn import nn
from reference import functional as R

from .checks import BACKENDS, DTYPES, check_against_torch, examples, max_size

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])


class TransposeProblem(NamedTuple):
    x: np.ndarray  # (N, C_in, H, W)
    weight: np.ndarray  # (C_in, C_out // groups, kH, kW)
    bias: np.ndarray | None  # (C_out,)
    grad_y: np.ndarray  # (N, C_out, H_y, W_y)
    kwargs: dict[str, Any]  # stride, padding, output_padding, groups, dilation


@st.composite
def transpose_problems(draw, dtype=np.float64, biggest: int = 8,
                       wide: bool = False) -> TransposeProblem:
    """A valid conv_transpose2d problem; ``biggest`` bounds H and W (the simulator is slow).

    ``wide``: stride 1 and kernel rows of 5 to 7 taps, the five-tap passes of numba's direct
    path (``kernels.numba_cpu.conv_direct``)."""
    small = biggest <= 4
    groups = draw(st.sampled_from([1, 1, 2] if not small else [1, 2]))
    C_in = groups * draw(st.integers(1, 2))
    C_out_g = draw(st.integers(1, 2 if small else 3))
    N = draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3 if small else 4)), draw(st.integers(1, 3 if small else 4)))
    stride = (draw(st.integers(1, 2 if small else 3)), draw(st.integers(1, 2 if small else 3)))
    if wide:
        kernel, stride = (kernel[0], draw(st.integers(5, 7))), (1, 1)
    dilation = draw(st.sampled_from([(1, 1), (1, 1), (2, 1), (1, 2), (2, 3)]))
    H = draw(st.integers(1, biggest // 2 + 1))
    W = draw(st.integers(1, biggest // 2 + 1))
    W += H == W  # non-square
    output_padding, padding, out = [], [], []
    for i, size in enumerate((H, W)):
        op = draw(st.integers(0, max(stride[i], dilation[i]) - 1))
        # the padding may crop the output down to one cell, not further
        most = (conv_transpose_output_size(size, kernel[i], stride[i], 0, op, dilation[i]) - 1)
        p = draw(st.integers(0, min(2, most // 2)))
        output_padding.append(op)
        padding.append(p)
        out.append(conv_transpose_output_size(size, kernel[i], stride[i], p, op, dilation[i]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, C_in, H, W)).astype(dtype)
    weight = rng.standard_normal((C_in, C_out_g) + kernel).astype(dtype)
    bias = rng.standard_normal(C_out_g * groups).astype(dtype) if draw(st.booleans()) else None
    grad_y = rng.standard_normal((N, C_out_g * groups, *out)).astype(dtype)
    kwargs = dict(stride=stride, padding=tuple(padding), output_padding=tuple(output_padding),
                  groups=groups, dilation=dilation)
    return TransposeProblem(x, weight, bias, grad_y, kwargs)


def _settings(backend):
    """At most 12 examples a test (2 in the CUDA simulator, ~3 s each backward): the 4
    backends x 2 dtypes x forward and backward make 16 tests, in a minute of CI."""
    return settings(max_examples=2 if examples(backend) else min(settings().max_examples, 12))


# --------------------------------------------------------------------------- vs torch


@backends
@dtypes
def test_conv_transpose2d_forward_matches_torch(backend, dtype):
    @_settings(backend)
    @given(transpose_problems(dtype, max_size(backend)))
    def run(p):
        expected = R.conv_transpose2d(p.x, p.weight, p.bias, **p.kwargs)
        ours = F.conv_transpose2d(p.x, p.weight, p.bias, **p.kwargs, backend=backend)
        check_against_torch(ours, expected, f"y {p.kwargs}")

    run()


@backends
@dtypes
def test_conv_transpose2d_backward_matches_torch(backend, dtype):
    @_settings(backend)
    @given(transpose_problems(dtype, max_size(backend)))
    def run(p):
        expected = R.conv_transpose2d_backward(p.grad_y, p.x, p.weight, **p.kwargs)
        ours = F.conv_transpose2d_backward(p.grad_y, p.x, p.weight, **p.kwargs, backend=backend)
        for name, a, b in zip(("grad_x", "grad_weight", "grad_bias"), ours, expected,
                              strict=True):
            check_against_torch(a, b, f"{name} {p.kwargs}")

    run()


@dtypes
def test_numba_direct_path_with_five_tap_kernel_rows_matches_torch(dtype):
    """conv_transpose2d runs conv2d's direct grad_x kernel forward and the direct forward and
    grad_weight kernels backward; kernel rows of 5-7 taps take their five-tap passes."""
    @settings(max_examples=min(settings().max_examples, 12))
    @given(transpose_problems(dtype, wide=True))
    def run(p):
        with mc.use_backend("numba"), nc.conv_algorithm("direct"):
            y = F.conv_transpose2d(p.x, p.weight, p.bias, **p.kwargs)
            grads = F.conv_transpose2d_backward(p.grad_y, p.x, p.weight, **p.kwargs)
        check_against_torch(y, R.conv_transpose2d(p.x, p.weight, p.bias, **p.kwargs),
                            f"y {p.kwargs}")
        expected = R.conv_transpose2d_backward(p.grad_y, p.x, p.weight, **p.kwargs)
        for name, a, b in zip(("grad_x", "grad_weight", "grad_bias"), grads, expected,
                              strict=True):
            check_against_torch(a, b, f"{name} {p.kwargs}")

    run()


@backends
def test_d2l_example_by_hand(backend):
    """d2l's "Transposed Convolution" example: each input cell stamps the kernel, scaled."""
    X = np.array([[0.0, 1.0], [2.0, 3.0]])[None, None]
    K = np.array([[0.0, 1.0], [2.0, 3.0]])[None, None]
    y = F.conv_transpose2d(X, K, backend=backend)
    np.testing.assert_array_equal(np.asarray(y)[0, 0], [[0, 0, 1], [0, 4, 6], [4, 12, 9]])
    y2 = F.conv_transpose2d(X, K, stride=2, backend=backend)  # stamps side by side
    np.testing.assert_array_equal(np.asarray(y2)[0, 0], [[0, 0, 0, 1], [0, 0, 2, 3],
                                                         [0, 2, 0, 3], [4, 6, 6, 9]])


@backends
def test_output_padding_at_least_the_stride_where_the_dilation_allows_it(backend):
    """op >= stride: the conv of the spec would have more rows; a 1x1 kernel, too."""
    rng = np.random.default_rng(3)
    cases = [((2, 3), dict(stride=(1, 2), dilation=(3, 3), output_padding=(2, 1),
                           padding=(1, 0)))]
    if backend != "cuda":  # the in-place 1x1 GEMM path of numba must step aside here
        cases.append(((1, 1), dict(stride=1, dilation=2, output_padding=1)))
    for kernel, kw in cases:
        x = rng.standard_normal((1, 2, 2, 3) if backend == "cuda" else (2, 2, 3, 4))
        w = rng.standard_normal((2, 2 if backend == "cuda" else 3) + kernel)
        y = F.conv_transpose2d(x, w, **kw, backend=backend)
        check_against_torch(y, R.conv_transpose2d(x, w, **kw))
        gy = rng.standard_normal(np.shape(y))
        for a, b in zip(F.conv_transpose2d_backward(gy, x, w, **kw, backend=backend),
                        R.conv_transpose2d_backward(gy, x, w, **kw), strict=True):
            check_against_torch(a, b)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b not in ("naive", "cuda")])
def test_nan_and_inf_propagate_as_in_torch_on_the_direct_paths(backend):
    """One output channel per group and stride 1 (numba's direct path): NaN must not be lost.

    Not on cuda: its implicit GEMMs (conv2d's too) multiply the zeros outside the input with
    the weights, so an inf weight gives NaN where torch gives +-inf or a number.
    """
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 3, 4))
    w = rng.standard_normal((2, 1, 2, 3))
    x[0, 1, 1, 2], w[0, 0, 1, 0] = np.nan, np.inf
    check_against_torch(F.conv_transpose2d(x, w, backend=backend), R.conv_transpose2d(x, w))
    gy = rng.standard_normal((1, 1, 4, 6))
    gy[0, 0, 2, 2] = np.inf
    for a, b in zip(F.conv_transpose2d_backward(gy, x, w, backend=backend),
                    R.conv_transpose2d_backward(gy, x, w), strict=True):
        check_against_torch(a, b)


# --------------------------------------------------------------------------- the identity


@given(transpose_problems(np.float64, 6))
def test_conv_transpose2d_is_conv2ds_grad_x(p):
    """The naive scatter loop equals conv2d_backward's grad_x for a z of y's shape.

    Where output_padding >= stride the conv of z has ``output_padding // stride`` more output
    rows than x; their gradient is zero (x is zero-padded to the conv's output shape).
    """
    kw = p.kwargs
    y = F.conv_transpose2d(p.x, p.weight, **kw, backend="naive")
    N, C_in, H, W = p.x.shape
    z = np.zeros(y.shape)  # only its shape matters to grad_x
    sizes = [conv_output_size(y.shape[2 + i], p.weight.shape[2 + i], kw["stride"][i],
                              kw["padding"][i], kw["dilation"][i]) for i in range(2)]
    grad = np.zeros((N, C_in, *sizes))
    grad[:, :, :H, :W] = p.x
    conv_kw = {k: v for k, v in kw.items() if k != "output_padding"}
    grad_x = F.conv2d_backward(grad, z, p.weight, **conv_kw, backend="naive").grad_x
    np.testing.assert_allclose(y, grad_x, rtol=1e-12, atol=1e-12)


def test_the_spec_is_the_conv_whose_grad_x_it_is():
    spec = conv_transpose_spec((2, 6, 5, 4), (6, 2, 3, 2), 3, stride=(2, 1), padding=(1, 0),
                               output_padding=(1, 0), dilation=(1, 1))
    assert spec.x_shape == (2, 6, 10, 5)  # y: (5-1)*2 - 2 + 2 + 1 + 1, (4-1) + 1 + 1
    assert spec.weight_shape == (6, 2, 3, 2) and spec.y_shape == (2, 6, 5, 4)
    assert (spec.C_in, spec.C_out, spec.groups) == (6, 6, 3)


# --------------------------------------------------------------------------- device, empty


@backends
def test_an_empty_batch_gives_empty_results(backend):
    x, w = np.zeros((0, 2, 3, 4)), np.ones((2, 3, 2, 2))
    y = F.conv_transpose2d(x, w, stride=2, backend=backend)
    assert np.shape(y) == (0, 3, 6, 8)
    gx, gw, gb = F.conv_transpose2d_backward(np.zeros((0, 3, 6, 8)), x, w, stride=2,
                                             backend=backend)
    assert (np.shape(gx), np.shape(gw), np.shape(gb)) == ((0, 2, 3, 4), (2, 3, 2, 2), (3,))
    assert not np.asarray(gw).any() and not np.asarray(gb).any()


@pytest.mark.skipif("cuda" not in mc.backends(), reason="no GPU and no CUDA simulator")
def test_device_arrays_stay_on_the_device_and_match_torch():
    from numba import cuda

    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal((1, 2, 2, 3)), rng.standard_normal((2, 2, 3, 2)),
               rng.standard_normal(2))
    y = F.conv_transpose2d(cuda.to_device(x), cuda.to_device(w), cuda.to_device(b), stride=2,
                           backend="cuda")
    assert hasattr(y, "copy_to_host")  # a device array
    check_against_torch(y.copy_to_host(), R.conv_transpose2d(x, w, b, stride=2))
    gy = rng.standard_normal(y.shape)
    grads = F.conv_transpose2d_backward(cuda.to_device(gy), cuda.to_device(x), cuda.to_device(w),
                                        stride=2, backend="cuda")
    for a, e in zip(grads, R.conv_transpose2d_backward(gy, x, w, stride=2), strict=True):
        assert hasattr(a, "copy_to_host")
        check_against_torch(a.copy_to_host(), e)


# --------------------------------------------------------------------------- errors

X = np.zeros((1, 4, 3, 3))
WT = np.zeros((4, 2, 3, 3))
ERRORS = [
    (TypeError, "x: expected a numpy.ndarray", lambda: F.conv_transpose2d([[1.0]], WT)),
    (ValueError, "x: expected a 4-D array", lambda: F.conv_transpose2d(X[0], WT)),
    (ValueError, "weight: expected a 4-D array", lambda: F.conv_transpose2d(X, WT[0])),
    (TypeError, "weight: expected dtype float64", lambda: F.conv_transpose2d(
        X, WT.astype(np.float32))),
    (ValueError, "x: expected C_in, H, W > 0", lambda: F.conv_transpose2d(X[:, :, :0], WT)),
    (ValueError, "weight: expected no zero-sized", lambda: F.conv_transpose2d(X, WT[:, :0])),
    (ValueError, "weight: expected 4 input channels", lambda: F.conv_transpose2d(X, WT[:3])),
    (ValueError, "groups: expected a divisor of C_in=4", lambda: F.conv_transpose2d(
        X, WT, groups=3)),
    (ValueError, "groups: expected a positive int", lambda: F.conv_transpose2d(X, WT, groups=0)),
    (ValueError, r"bias: expected shape \(4,\)", lambda: F.conv_transpose2d(
        X, WT, np.zeros(2), groups=2)),
    (TypeError, "bias: expected dtype float64", lambda: F.conv_transpose2d(
        X, WT, np.zeros(2, np.float32))),
    (ValueError, "stride: expected a positive int", lambda: F.conv_transpose2d(X, WT, stride=0)),
    (ValueError, "dilation: expected a positive int", lambda: F.conv_transpose2d(
        X, WT, dilation=(1, 0))),
    (ValueError, "padding: expected a >= 0 int", lambda: F.conv_transpose2d(X, WT, padding=-1)),
    (TypeError, "padding: expected an int, got str", lambda: F.conv_transpose2d(
        X, WT, padding="same")),
    (ValueError, "output_padding: expected a >= 0 int", lambda: F.conv_transpose2d(
        X, WT, output_padding=-1)),
    (ValueError, "output_padding: expected less than stride or dilation along W", lambda:
        F.conv_transpose2d(X, WT, stride=(2, 1), output_padding=(1, 1))),
    (ValueError, "output_padding: expected less than stride or dilation along H", lambda:
        F.conv_transpose2d(X, WT, stride=2, dilation=(2, 3), output_padding=(2, 2))),
    (ValueError, "padding: expected an output of at least 1 along H", lambda:
        F.conv_transpose2d(X, WT, padding=(3, 0))),
    (ValueError, r"grad_y: expected shape \(1, 2, 5, 5\)", lambda:
        F.conv_transpose2d_backward(np.zeros((1, 2, 5, 4)), X, WT)),
    (TypeError, "grad_y: expected dtype float64", lambda: F.conv_transpose2d_backward(
        np.zeros((1, 2, 5, 5), np.float32), X, WT)),
]


@pytest.mark.parametrize("exception, words, call", ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_bad_arguments_raise_an_error_naming_the_argument(exception, words, call):
    with pytest.raises(exception, match=words):
        call()


def test_torch_refuses_what_we_refuse():
    x, w = torch.zeros(1, 4, 3, 3), torch.zeros(4, 2, 3, 3)
    tF = torch.nn.functional
    for kwargs in (dict(stride=(2, 1), output_padding=(1, 1)), dict(groups=3),
                   dict(padding=(3, 0)), dict(padding=-1), dict(output_padding=-1)):
        with pytest.raises(RuntimeError):
            tF.conv_transpose2d(x, w, **kwargs)
    tF.conv_transpose2d(x, w, stride=2, dilation=3, output_padding=2)  # op < dilation: fine


def test_an_output_too_large_for_memory_is_refused(monkeypatch):
    monkeypatch.setattr(F, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(MemoryError, match=r"conv_transpose2d: the output .*\(1, 2, 22, 22\)"):
        F.conv_transpose2d(np.zeros((1, 4, 10, 10)), WT, stride=2, output_padding=1)


# --------------------------------------------------------------------------- nn layer


def _twin(layer: nn.ConvTranspose2d, **kwargs) -> torch.nn.ConvTranspose2d:
    """The torch layer of the same definition, holding ``layer``'s parameters (their dtype)."""
    twin = torch.nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                    bias=layer.bias is not None, **kwargs)
    if layer.weight.data.dtype == np.float64:
        twin = twin.double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    return twin


@pytest.mark.parametrize("kwargs", [
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(1, 2), groups=2, dilation=(2, 1), bias=False),
])
def test_layer_forward_backward_match_torch(kwargs):
    layer = nn.ConvTranspose2d(4, 6, (3, 2), **kwargs)
    layer.weight.data = layer.weight.data.astype(np.float64)
    if layer.bias is not None:
        layer.bias.data = layer.bias.data.astype(np.float64)
    twin = _twin(layer, **{k: v for k, v in kwargs.items() if k != "bias"})
    x = np.random.default_rng(6).standard_normal((2, 4, 3, 5))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = twin(tx)
    y = layer(x)
    check_against_torch(y, ty.detach().numpy())
    gy = np.random.default_rng(7).standard_normal(y.shape)
    ty.backward(torch.from_numpy(gy))
    check_against_torch(layer.backward(gy), tx.grad.numpy())
    check_against_torch(layer.weight.grad, twin.weight.grad.numpy())
    if layer.bias is not None:
        check_against_torch(layer.bias.grad, twin.bias.grad.numpy())


def test_layer_state_dict_goes_into_torch_and_back():
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)
    twin = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)
    assert {k: v.shape for k, v in layer.state_dict().items()} == {
        k: tuple(v.shape) for k, v in twin.state_dict().items()}
    layer.load_state_dict(twin.state_dict())
    np.testing.assert_array_equal(layer.weight.data, twin.weight.detach().numpy())
    other = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in other.state_dict().items()})
    np.testing.assert_array_equal(twin.bias.detach().numpy(), other.bias.data)


def test_layer_initialisation_uses_torchs_fan_in():
    """fan_in = weight.shape[1] * kH * kW = out_channels // groups * 9 here, as torch."""
    mc.init.manual_seed(0)
    layer = nn.ConvTranspose2d(64, 2, 3)
    bound = 1 / np.sqrt(2 * 9)  # with in_channels it would be 1 / sqrt(64 * 9), 3x smaller
    twin = torch.nn.ConvTranspose2d(64, 2, 3)
    torch_bound = float(twin.weight.detach().abs().max())
    for a in (layer.weight.data, layer.bias.data):
        assert np.abs(a).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound and torch_bound > 0.9 * bound


def test_layer_output_size_picks_the_output_padding():
    layer = nn.ConvTranspose2d(2, 3, 3, stride=(2, 3), padding=1)
    x = np.random.default_rng(8).standard_normal((1, 2, 4, 5)).astype(np.float32)
    twin = _twin(layer, stride=(2, 3), padding=1)
    for size in ((7, 13), (8, 15), (1, 3, 8, 14)):
        y = layer(x, output_size=size)
        expected = twin(torch.from_numpy(x), output_size=list(size))
        assert y.shape == tuple(expected.shape)
        check_against_torch(y, expected.detach().numpy())
        gx = layer.backward(np.ones(y.shape, np.float32))  # the cache kept this call's padding
        assert gx.shape == x.shape
    assert layer(x).shape == (1, 3, 7, 13)  # without output_size: self.output_padding (0)


@pytest.mark.parametrize("size, words", [
    ((9, 13), r"output_size: requested \(9, 13\), but valid sizes range from \(7, 13\) to "
              r"\(8, 15\)"),
    ((6, 13), r"valid sizes range"),
    ((7,), r"output_size: expected 2 or 4 elements"),
])
def test_layer_output_size_out_of_range_is_refused(size, words):
    layer = nn.ConvTranspose2d(2, 3, 3, stride=(2, 3), padding=1)
    x = np.zeros((1, 2, 4, 5), np.float32)
    with pytest.raises(ValueError, match=words):
        layer(x, output_size=size)
    with pytest.raises(ValueError):
        _twin(layer, stride=(2, 3), padding=1)(torch.zeros(1, 2, 4, 5), output_size=list(size))


def test_layer_refuses_other_padding_modes_and_bad_groups():
    with pytest.raises(ValueError, match=r'padding_mode: only "zeros".*\'reflect\''):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError):
        torch.nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="groups: expected a divisor of in_channels=4"):
        nn.ConvTranspose2d(4, 3, 3, groups=2)


def test_layer_repr_and_flops():
    layer = nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1, bias=False)
    assert repr(layer).startswith("ConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), "
                                  "output_padding=(1, 1), bias=False")
    # the conv2d whose grad_x it is: 2 * N*C_in*H*W * C_out*kH*kW
    assert layer.forward_flops((1, 4, 5, 5), (1, 2, 12, 12)) == 2 * 4 * 25 * 2 * 9
