"""``F.adaptive_max_pool2d`` and its backward on every backend, against PyTorch.

The strategy draws an input size, then an output size per axis (smaller, equal or larger
than the input, or ``None`` to keep it), so windows of several sizes, overlapping windows
and repeated rows all occur. Values are normal, or small integers with many ties, with NaN
and -inf sprinkled in: PyTorch's rules (the first maximum in row-major window order wins a
tie; a NaN is the maximum and the last NaN wins; a window of -inf keeps its first cell) are
checked through the indices, not only the values.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_cnn as mc
from minitorch_cnn import functional as F
from minitorch_cnn import nn
from reference import functional as R

from .checks import BACKENDS, DTYPES, check_against_torch, examples, max_size

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])


class AdaptiveProblem(NamedTuple):
    x: np.ndarray  # (N, C, H, W)
    grad_y: np.ndarray  # (N, C, oh, ow)
    output_size: Any  # int, (h, w), with None keeping that input size


@st.composite
def adaptive_problems(draw, dtype, biggest: int) -> AdaptiveProblem:
    """A valid problem; ``biggest`` bounds H and W (the simulator is slow)."""
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3 if biggest > 4 else 2))
    H, W = draw(st.integers(1, biggest)), draw(st.integers(1, biggest))
    W += H == W  # non-square
    sizes = [draw(st.one_of(st.none(), st.integers(1, size + 2))) for size in (H, W)]
    output_size: Any = tuple(sizes)
    if sizes[0] == sizes[1] and sizes[0] is not None and draw(st.booleans()):
        output_size = sizes[0]  # the int spelling
    oh, ow = (s if s is not None else size for s, size in zip(sizes, (H, W), strict=True))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        x = rng.integers(-2, 3, size=(N, C, H, W)).astype(dtype)  # many ties
    else:
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
    specials = draw(st.sampled_from([0, 0, 1, 3]))
    for _ in range(specials):
        x[tuple(rng.integers(0, s) for s in x.shape)] = rng.choice([np.nan, -np.inf, np.inf])
    grad_y = rng.standard_normal((N, C, oh, ow)).astype(dtype)
    return AdaptiveProblem(x, grad_y, output_size)


def run_property(backend: str, strategy, check) -> None:
    """Run ``check`` over ``strategy`` with the example budget of ``backend``."""
    n = examples(backend)
    test = given(strategy)(check)
    if n is not None:
        test = settings(max_examples=n)(test)
    test()


def _host(a) -> np.ndarray:
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


# --------------------------------------------------------------------------- against torch


@backends
@dtypes
def test_adaptive_max_pool2d_values_and_indices_match_torch(backend, dtype):
    def check(p):
        y, indices = F.adaptive_max_pool2d(p.x, p.output_size, True, backend=backend)
        ty, tindices = R.adaptive_max_pool2d(p.x, p.output_size, True)
        check_against_torch(y, ty, "y")
        np.testing.assert_array_equal(_host(indices), tindices, "indices")
        assert _host(indices).dtype == np.int64
        check_against_torch(F.adaptive_max_pool2d(p.x, p.output_size, backend=backend), ty, "y")

    run_property(backend, adaptive_problems(dtype, max_size(backend)), check)


@backends
@dtypes
def test_adaptive_max_pool2d_backward_grad_x_matches_torch(backend, dtype):
    def check(p):
        expected = R.adaptive_max_pool2d_backward(p.grad_y, p.x, p.output_size)
        gx = F.adaptive_max_pool2d_backward(p.grad_y, p.x, p.output_size, backend=backend)
        check_against_torch(gx, expected, "grad_x (search again)")
        _, indices = F.adaptive_max_pool2d(p.x, p.output_size, True, backend=backend)
        gx = F.adaptive_max_pool2d_backward(p.grad_y, p.x, p.output_size, indices=indices,
                                            backend=backend)
        check_against_torch(gx, expected, "grad_x (from indices)")

    run_property(backend, adaptive_problems(dtype, max_size(backend)), check)


@backends
def test_ties_nan_and_minus_inf_follow_torch_by_hand(backend):
    """Values a reader can check: one row, output 1x2, windows [0, 2) and [2, 4)."""
    nan, inf = np.nan, np.inf
    x = np.array([[[[2.0, 2.0, 5.0, 5.0]],  # ties: the first of each window
                   [[1.0, nan, 3.0, 4.0]],  # NaN is the maximum
                   [[nan, nan, -inf, -inf]]]])  # the last NaN; a -inf window: its first cell
    y, indices = F.adaptive_max_pool2d(x, (1, 2), True, backend=backend)
    np.testing.assert_array_equal(_host(indices)[0, :, 0], [[0, 2], [1, 3], [1, 2]])
    np.testing.assert_array_equal(_host(y)[0, :, 0], [[2, 5], [nan, 4], [nan, -inf]])
    ty, tindices = R.adaptive_max_pool2d(x, (1, 2), True)
    np.testing.assert_array_equal(_host(indices), tindices)
    gx = F.adaptive_max_pool2d_backward(np.ones((1, 3, 1, 2)), x, (1, 2), backend=backend)
    np.testing.assert_array_equal(_host(gx)[0, :, 0], [[1, 0, 1, 0], [0, 1, 0, 1], [0, 1, 1, 0]])


@backends
def test_overlapping_windows_that_share_a_maximum_add_up(backend):
    """H = 5 -> 3 windows [0, 2), [1, 4), [3, 5): rows 1 and 3 lie in two windows each."""
    x = np.zeros((1, 1, 5, 1))
    x[0, 0, 1, 0] = x[0, 0, 3, 0] = 9.0
    gy = np.array([1.0, 10.0, 100.0]).reshape(1, 1, 3, 1)
    gx = F.adaptive_max_pool2d_backward(gy, x, (3, 1), backend=backend)
    np.testing.assert_array_equal(_host(gx).ravel(), [0, 11, 0, 100, 0])
    check_against_torch(gx, R.adaptive_max_pool2d_backward(gy, x, (3, 1)), "grad_x")


@backends
def test_an_empty_batch_gives_empty_outputs(backend):
    x = np.zeros((0, 2, 3, 4), np.float32)
    y, indices = F.adaptive_max_pool2d(x, 2, True, backend=backend)
    assert _host(y).shape == (0, 2, 2, 2) and _host(indices).dtype == np.int64
    assert _host(F.adaptive_max_pool2d_backward(np.zeros((0, 2, 2, 2), np.float32), x, 2,
                                                backend=backend)).shape == x.shape


@pytest.mark.skipif("cuda" not in mc.backends(), reason="no GPU and no CUDA simulator")
def test_device_arrays_stay_on_the_device():
    from numba import cuda

    x = np.random.default_rng(3).standard_normal((1, 2, 3, 5))
    gy = np.ones((1, 2, 2, 2))
    y, indices = F.adaptive_max_pool2d(cuda.to_device(x), 2, True, backend="cuda")
    assert not isinstance(y, np.ndarray) and not isinstance(indices, np.ndarray)
    check_against_torch(y, R.adaptive_max_pool2d(x, 2), "y")
    gx = F.adaptive_max_pool2d_backward(cuda.to_device(gy), cuda.to_device(x), 2,
                                        indices=indices, backend="cuda")
    assert not isinstance(gx, np.ndarray)
    check_against_torch(gx, R.adaptive_max_pool2d_backward(gy, x, 2), "grad_x")


# --------------------------------------------------------------------------- the layer


@backends
def test_layer_matches_torch_forward_backward_and_repr(backend):
    import torch

    x = np.random.default_rng(4).integers(-3, 4, (2, 3, 7, 5)).astype(np.float64)
    for output_size, return_indices in [((3, None), False), (2, True), ((4, 6), False)]:
        layer = nn.AdaptiveMaxPool2d(output_size, return_indices)
        twin = torch.nn.AdaptiveMaxPool2d(output_size, return_indices)
        assert repr(layer) == repr(twin)
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        with mc.use_backend(backend):
            out, tout = layer(x), twin(tx)
            if return_indices:
                np.testing.assert_array_equal(_host(out[1]), tout[1].numpy())
                out, tout = out[0], tout[0]
            check_against_torch(out, tout.detach().numpy(), "y")
            gy = np.random.default_rng(5).standard_normal(_host(out).shape)
            gx = layer.backward(gy)
        tout.backward(torch.from_numpy(gy))
        check_against_torch(gx, tx.grad.numpy(), "grad_x")


# --------------------------------------------------------------------------- validation

_x = np.zeros((1, 2, 3, 4))

ERRORS = [  # (exception, the words the message holds, the call), each a validation path
    (ValueError, ["x", "4-D", "(3, 4)"], lambda: F.adaptive_max_pool2d(np.zeros((3, 4)), 2)),
    (TypeError, ["x", "float32 or float64", "int64"],
     lambda: F.adaptive_max_pool2d(np.zeros((1, 1, 2, 2), np.int64), 1)),
    (ValueError, ["x", "C, H, W > 0"], lambda: F.adaptive_max_pool2d(np.zeros((1, 0, 2, 2)), 1)),
    (ValueError, ["output_size", "positive", "0"], lambda: F.adaptive_max_pool2d(_x, (0, 2))),
    (ValueError, ["output_size", "(h, w) pair", "()"], lambda: F.adaptive_max_pool2d(_x, ())),
    (TypeError, ["output_size", "int", "float"], lambda: F.adaptive_max_pool2d(_x, 2.0)),
    (TypeError, ["return_indices", "bool", "int"], lambda: F.adaptive_max_pool2d(_x, 2, 1)),
    (ValueError, ["grad_y", "(1, 2, 2, 2)", "(1, 2, 3, 4)"],
     lambda: F.adaptive_max_pool2d_backward(_x, _x, 2)),
    (TypeError, ["indices", "adaptive_max_pool2d", "list"],
     lambda: F.adaptive_max_pool2d_backward(np.zeros((1, 2, 2, 2)), _x, 2, indices=[0])),
    (TypeError, ["indices", "integer", "float64"],
     lambda: F.adaptive_max_pool2d_backward(np.zeros((1, 2, 2, 2)), _x, 2,
                                            indices=np.zeros((1, 2, 2, 2)))),
    (ValueError, ["indices", "(1, 2, 2, 2)", "(1, 2, 2, 1)"],
     lambda: F.adaptive_max_pool2d_backward(np.zeros((1, 2, 2, 2)), _x, 2,
                                            indices=np.zeros((1, 2, 2, 1), np.int64))),
    (ValueError, ["indices", "[0, 12)", "[-1, -1]"],
     lambda: F.adaptive_max_pool2d_backward(np.zeros((1, 2, 2, 2)), _x, 2,
                                            indices=np.full((1, 2, 2, 2), -1))),
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
