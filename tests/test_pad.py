"""``F.pad`` and ``F.pad_backward`` on every backend, against ``torch.nn.functional.pad``.

The strategy builds valid problems directly: for each axis it draws the first pad within the
mode's limits, then the second pad within what the first leaves (PyTorch's limits: reflect
pads below the size; circular pads at most the cells the negative pad keeps; a constant crop
at most the size; an output of at least one cell). Pads are asymmetric, negative (cropping)
where the mode allows it, and sizes start at 1 (an axis of one cell can only be cropped or
left alone under reflect). Every validation message is triggered once.
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
from kernels.common import PAD_MODES, PadSpec
from minitorch_cnn import functional as F
from reference import functional as R

from .checks import BACKENDS, DTYPES, check_against_torch, examples, max_size

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
modes = pytest.mark.parametrize("mode", PAD_MODES)


class PadProblem(NamedTuple):
    x: np.ndarray  # (N, C, H, W)
    grad_y: np.ndarray  # (N, C, H_out, W_out)
    kwargs: dict[str, Any]  # pad, mode, value


def _axis_pads(draw, size: int, mode: str, reach: int) -> tuple[int, int]:
    """``(before, after)`` for an axis of ``size`` cells, valid for ``mode``, output >= 1.

    ``reach`` bounds positive pads of the modes that have no limit of their own.
    """
    if mode == "constant":
        before = draw(st.integers(-(size - 1), reach))
        return before, draw(st.integers(-size if before > 0 else 1 - size - before, reach))
    if mode == "reflect":
        before = draw(st.integers(max(2 - 2 * size, -reach), size - 1))
        return before, draw(st.integers(1 - size - before, size - 1))
    if mode == "replicate":
        crop = size + reach - 1  # a crop past the far edge: the edge cell fills the output
        before = draw(st.integers(-crop, reach))
        return before, draw(st.integers(max(1 - size - before, -crop), reach))
    before = draw(st.integers(-(size - 1), size))  # circular
    if before >= 0:
        return before, draw(st.integers(max(before - size, 1 - size - before), size))
    return before, draw(st.integers(1 - size - before, size + before))


@st.composite
def pad_problems(draw, mode: str, dtype, biggest: int) -> PadProblem:
    """A valid ``F.pad`` problem; ``biggest`` bounds H and W (the simulator is slow)."""
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3 if biggest > 4 else 2))
    H, W = draw(st.integers(1, biggest)), draw(st.integers(1, biggest))
    reach = 3 if biggest > 4 else 2
    top, bottom = _axis_pads(draw, H, mode, reach)
    left, right = _axis_pads(draw, W, mode, reach)
    pad: tuple[int, ...] = (left, right, top, bottom)
    if mode == "constant" and (top, bottom) == (0, 0) and draw(st.booleans()):
        pad = (left, right)  # PyTorch's 2-element form: columns only
    value = 0.0
    if mode == "constant":
        value = draw(st.sampled_from([0.0, 1.5, -2.0, math.inf, math.nan]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    grad_y = rng.standard_normal((N, C, H + top + bottom, W + left + right)).astype(dtype)
    return PadProblem(x, grad_y, {"pad": pad, "mode": mode, "value": value})


def _host(a) -> np.ndarray:
    """A NumPy copy of a result, from the device when it lives there."""
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


def run_property(backend: str, strategy, check) -> None:
    """Run ``check`` over ``strategy`` with the example budget of ``backend``."""
    n = examples(backend)
    test = given(strategy)(check)
    if n is not None:
        test = settings(max_examples=n)(test)
    test()


# --------------------------------------------------------------------------- against torch


@backends
@dtypes
@modes
def test_pad_forward_matches_torch(backend, dtype, mode):
    def check(p):
        y = F.pad(p.x, **p.kwargs, backend=backend)
        check_against_torch(y, R.pad(p.x, **p.kwargs), "y")

    run_property(backend, pad_problems(mode, dtype, max_size(backend)), check)


@backends
@dtypes
@modes
def test_pad_backward_grad_x_matches_torch(backend, dtype, mode):
    def check(p):
        gx = F.pad_backward(p.grad_y, p.x, **p.kwargs, backend=backend)
        check_against_torch(gx, R.pad_backward(p.grad_y, p.x, **p.kwargs), "grad_x")

    run_property(backend, pad_problems(mode, dtype, max_size(backend)), check)


@backends
def test_pad_reads_what_the_naive_docstring_draws(backend):
    """A row 0 1 2 3 padded by 2 on each side, values a reader can check by hand."""
    x = np.arange(4.0).reshape(1, 1, 1, 4)
    expected = {
        "constant": [9, 9, 0, 1, 2, 3, 9, 9],
        "reflect": [2, 1, 0, 1, 2, 3, 2, 1],
        "replicate": [0, 0, 0, 1, 2, 3, 3, 3],
        "circular": [2, 3, 0, 1, 2, 3, 0, 1],
    }
    for mode, row in expected.items():
        value = 9.0 if mode == "constant" else 0.0
        pad = (2, 2) if mode == "constant" else (2, 2, 0, 0)  # both spellings
        y = F.pad(x, pad, mode, value, backend=backend)
        np.testing.assert_array_equal(_host(y), np.array(row, float).reshape(1, 1, 1, 8), mode)
    # replicate's corner cell collects a whole 3x3 corner block of gradients, plus its own
    gx = F.pad_backward(np.ones((1, 1, 5, 8)), x, (2, 2, 2, 2), "replicate", backend=backend)
    np.testing.assert_array_equal(_host(gx), [[[[15.0, 5.0, 5.0, 15.0]]]])


@backends
@dtypes
def test_circular_padding_wraps_around_what_a_negative_pad_keeps(backend, dtype):
    """PyTorch crops first, then wraps around the kept cells (not the whole input)."""
    x = np.arange(2 * 3 * 4 * 5, dtype=dtype).reshape(2, 3, 4, 5)
    gy = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(dtype)
    for pad in [(-1, 2, 2, 0), (3, -2, -1, 3), (-2, 2, 0, 2)]:
        out = (2, 3, 4 + pad[2] + pad[3], 5 + pad[0] + pad[1])
        gy = np.random.default_rng(1).standard_normal(out).astype(dtype)
        check_against_torch(F.pad(x, pad, "circular", backend=backend),
                            R.pad(x, pad, "circular"), f"y {pad}")
        check_against_torch(F.pad_backward(gy, x, pad, "circular", backend=backend),
                            R.pad_backward(gy, x, pad, "circular"), f"grad_x {pad}")


@backends
@pytest.mark.parametrize("case", [
    ((2, 3, 0, 5), (1, 2, 1, 1), "constant"),  # an empty input: the fill value only
    ((2, 0, 3, 4), (1, 1, 1, 1), "constant"),
    ((2, 0, 3, 4), (1, 1, 1, 1), "circular"),
    ((0, 3, 3, 4), (1, 1, 1, 1), "reflect"),  # an empty batch
    ((2, 3, 3, 4), (-2, -2, 1, 0), "constant"),  # cropped to nothing
    ((2, 3, 3, 4), (-6, 2, 0, 0), "replicate"),
    ((2, 3, 3, 4), (0, 0, -3, 0), "reflect"),
    ((2, 3, 3, 0), (0, 0, 1, 1), "circular"),
], ids=str)
def test_empty_inputs_and_outputs_match_torch(backend, case):
    shape, pad, mode = case
    x = np.ones(shape)
    value = 7.0 if mode == "constant" else 0.0
    expected = R.pad(x, pad, mode, value)
    check_against_torch(F.pad(x, pad, mode, value, backend=backend), expected, "y")
    gy = np.ones(expected.shape)
    check_against_torch(F.pad_backward(gy, x, pad, mode, value, backend=backend),
                        R.pad_backward(gy, x, pad, mode, value), "grad_x")


def test_value_does_not_enter_the_gradient_and_none_means_zero():
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4))
    gy = np.ones((1, 2, 5, 7))
    check_against_torch(F.pad_backward(gy, x, (1, 2, 1, 1), value=math.nan),
                        R.pad_backward(gy, x, (1, 2, 1, 1)), "grad_x")
    check_against_torch(F.pad(x, (1, 2, 1, 1), value=None), R.pad(x, (1, 2, 1, 1)), "y")
    check_against_torch(F.pad(x, [1, 2, 1, 1], "reflect", None, backend="numpy"),
                        R.pad(x, (1, 2, 1, 1), "reflect"), "y")


def test_pad_spec_is_one_homogeneous_numba_tuple_of_ints():
    numba = pytest.importorskip("numba")
    spec = PadSpec.from_shape((2, 3, 4, 5), (1, -1, 2, 0), "circular")
    assert spec.y_shape == (2, 3, 6, 5) and spec.x_shape == (2, 3, 4, 5)
    assert PAD_MODES[spec.mode] == "circular"
    typ = numba.typeof(spec)
    assert isinstance(typ, numba.types.NamedUniTuple) and typ.dtype == numba.types.int64, typ


# --------------------------------------------------------------------------- device arrays


@pytest.mark.skipif("cuda" not in mc.backends(), reason="no GPU and no CUDA simulator")
def test_device_arrays_stay_on_the_device_and_match_torch():
    from numba import cuda

    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 3, 4)).astype(np.float32)
    gy = rng.standard_normal((1, 2, 4, 6)).astype(np.float32)

    def on_device(a):
        assert not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host"), type(a)
        return a

    y = on_device(F.pad(cuda.to_device(x), (2, 0, -1, 2), "reflect", backend="cuda"))
    check_against_torch(y, R.pad(x, (2, 0, -1, 2), "reflect"), "y")
    gx = on_device(F.pad_backward(cuda.to_device(gy), cuda.to_device(x), (2, 0, -1, 2),
                                  "reflect", backend="cuda"))
    check_against_torch(gx, R.pad_backward(gy, x, (2, 0, -1, 2), "reflect"), "grad_x")
    empty = on_device(F.pad(cuda.to_device(np.zeros((1, 2, 0, 4))), (1, 1, 1, 1), value=3.0,
                            backend="cuda"))
    np.testing.assert_array_equal(empty.copy_to_host(), np.full((1, 2, 2, 6), 3.0))
    zeros = on_device(F.pad_backward(cuda.to_device(np.zeros((0, 2, 4, 6))),
                                     cuda.to_device(np.zeros((0, 2, 3, 4))), (1, 1, 0, 1),
                                     backend="cuda"))
    assert zeros.shape == (0, 2, 3, 4)


# --------------------------------------------------------------------------- validation


_x = np.zeros((1, 2, 3, 4))

ERRORS = [  # (exception, the words the message holds, the call), each a validation path
    (TypeError, ["pad", "tuple of ints", "int"], lambda: F.pad(_x, 1)),
    (TypeError, ["pad", "ints", "float 1.0", "position 0"], lambda: F.pad(_x, (1.0, 1))),
    (TypeError, ["pad", "ints", "bool"], lambda: F.pad(_x, (True, 1))),
    (ValueError, ["pad", "2 ints", "4", "got 6"], lambda: F.pad(_x, (1,) * 6)),
    (ValueError, ["pad", "got 3"], lambda: F.pad(_x, (1, 1, 1))),
    (ValueError, ["pad", "4 ints", "mode='reflect'", "(1, 1)"],
     lambda: F.pad(_x, (1, 1), "reflect")),
    (TypeError, ["mode", "constant", "int"], lambda: F.pad(_x, (1, 1), 0)),
    (ValueError, ["mode", "circular", "'zeros'"], lambda: F.pad(_x, (1, 1), "zeros")),
    (TypeError, ["value", "real number", "str"], lambda: F.pad(_x, (1, 1), value="a")),
    (TypeError, ["value", "real number", "complex"], lambda: F.pad(_x, (1, 1), value=1j)),
    (ValueError, ["value", "mode='replicate'", "1.0"],
     lambda: F.pad(_x, (1, 1, 1, 1), "replicate", 1.0)),
    (ValueError, ["value", "float32", "1e+300"],
     lambda: F.pad(_x.astype(np.float32), (1, 1), value=1e300)),
    (ValueError, ["x", "C, H, W > 0", "mode='reflect'", "(1, 0, 3, 4)"],
     lambda: F.pad(np.zeros((1, 0, 3, 4)), (1, 1, 1, 1), "reflect")),
    (ValueError, ["x", "C, H, W > 0", "mode='replicate'"],
     lambda: F.pad(np.zeros((1, 2, 3, 0)), (1, 1, 1, 1), "replicate")),
    (ValueError, ["pad", "crop at most", "4 cells", "W", "(-3, -2)"],
     lambda: F.pad(_x, (-3, -2))),
    (ValueError, ["pad", "non-negative output size", "H", "3 + -2 + -2 = -1"],
     lambda: F.pad(_x, (0, 0, -2, -2), "replicate")),
    (ValueError, ["pad", "reflect", "smaller than", "3", "H", "(0, 3)"],
     lambda: F.pad(_x, (0, 0, 0, 3), "reflect")),
    (ValueError, ["pad", "circular", "at most the input size 4", "W", "(5, 0)"],
     lambda: F.pad(_x, (5, 0, 0, 0), "circular")),
    (ValueError, ["pad", "circular", "at most the 3 cells", "W", "(-1, 4)"],
     lambda: F.pad(_x, (-1, 4, 0, 0), "circular")),
    (TypeError, ["x", "numpy.ndarray", "list"], lambda: F.pad([[1.0]], (1, 1))),
    (ValueError, ["x", "4-D"], lambda: F.pad(np.zeros((3, 4)), (1, 1))),
    (ValueError, ["grad_y", "(1, 2, 3, 6)", "(1, 2, 3, 4)"],
     lambda: F.pad_backward(_x, _x, (1, 1))),
    (TypeError, ["grad_y", "float64", "float32"],
     lambda: F.pad_backward(np.zeros((1, 2, 3, 6), np.float32), _x, (1, 1))),
    (ValueError, ["pad", "reflect", "smaller than"],
     lambda: F.pad_backward(np.zeros((1, 2, 3, 8)), _x, (4, 0, 0, 0), "reflect")),
]


@pytest.mark.parametrize("exception, words, call", ERRORS,
                         ids=[" ".join(words[:2]) + f" {i}" for i, (_, words, _) in
                              enumerate(ERRORS)])
def test_bad_arguments_raise_an_error_naming_the_argument(exception, words, call):
    with pytest.raises(exception) as info:
        call()
    message = str(info.value)
    assert message.startswith(words[0] + ":"), message
    for word in words[1:]:
        assert word in message, f"{word!r} not in {message!r}"


def test_torch_refuses_the_same_pads():
    """Each pad refused above for being out of PyTorch's limits, PyTorch refuses too (or, for
    circular padding beyond the kept cells, returns what is not the wrap of the input)."""
    t = torch.zeros(1, 2, 3, 4)
    for pad, mode in [((-3, -2, 0, 0), "constant"), ((0, 0, -2, -2), "replicate"),
                      ((0, 0, 0, 3), "reflect"), ((5, 0, 0, 0), "circular"),
                      ((1, 1), "reflect")]:
        with pytest.raises((RuntimeError, NotImplementedError)):
            torch.nn.functional.pad(t, pad, mode)
    with pytest.raises(RuntimeError):
        torch.nn.functional.pad(t, (1, 1, 1, 1), "reflect", value=1.0)
    with pytest.raises(RuntimeError):
        torch.nn.functional.pad(t, (1, 1), value=1e300)


def test_an_output_too_large_for_memory_is_refused_before_any_kernel(monkeypatch):
    monkeypatch.setattr(F, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(MemoryError, match=r"pad: the output .*\(1, 2, 13, 14\)"):
        F.pad(_x, (5, 5, 5, 5))


# --------------------------------------------------------------------------- Conv2d padding_mode


def _check_conv2d_layer(backend, padding_mode, kwargs, x_shape):
    """``nn.Conv2d(padding_mode=...)`` against torch's: y, grad_x, the parameters' grads."""
    from minitorch_cnn import nn

    layer = nn.Conv2d(4, 2, (3, 2), padding_mode=padding_mode, **kwargs).double()
    twin = torch.nn.Conv2d(4, 2, (3, 2), padding_mode=padding_mode, **kwargs).double()
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


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("kwargs", [
    dict(padding=(1, 2), stride=(2, 1)),
    dict(padding="same", dilation=(1, 2)),  # an even dilated kernel: unequal halves
    dict(padding=(2, 0), groups=2, bias=False),
], ids=["pad-stride", "same", "groups"])
def test_conv2d_padding_mode_matches_torch(padding_mode, kwargs):
    """The layer's logic is the same on every backend: checked in full on ``numpy``."""
    _check_conv2d_layer("numpy", padding_mode, kwargs, (2, 4, 5, 4))


@backends
def test_conv2d_padding_mode_matches_torch_on_every_backend(backend):
    _check_conv2d_layer(backend, "reflect", dict(padding="same", dilation=(1, 2)), (1, 4, 3, 3))


def test_conv2d_rejects_an_unknown_padding_mode():
    from minitorch_cnn import nn

    with pytest.raises(ValueError, match=r"padding_mode: expected one of .*'circular'.*'zero'"):
        nn.Conv2d(1, 1, 3, padding_mode="zero")
