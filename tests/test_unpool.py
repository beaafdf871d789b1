"""``F.max_unpool2d`` and its backward on every backend, against PyTorch.

The strategy draws the pooling window (kernel, stride or None, padding up to half the
kernel), a pooled size, and derives the size of the input the pool ran on, with up to
``stride - 1`` leftover rows and columns: then PyTorch's default output size misses them and
``output_size`` (2 or 4 elements) must give them back. The indices come either from
PyTorch's own max pool of a random input (what unpooling is for) or are drawn at random in
``[0, H_out*W_out)``, with duplicates: there the last input in row-major order wins the
forward, and every input reads its cell's gradient in the backward, as PyTorch does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_cnn as mc
from kernels.common import UnpoolSpec, unpool_output_size
from minitorch_cnn import functional as F
from minitorch_cnn import nn
from reference import functional as R

from .checks import BACKENDS, DTYPES, check_against_torch, examples, max_size

backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])


class UnpoolProblem(NamedTuple):
    x: np.ndarray  # (N, C, H, W), the pooled values
    indices: np.ndarray  # (N, C, H, W) int64
    grad_y: np.ndarray  # (N, C, H_out, W_out)
    kwargs: dict[str, Any]  # kernel_size, stride, padding, output_size


@st.composite
def unpool_problems(draw, dtype, biggest: int) -> UnpoolProblem:
    """A valid problem; ``biggest`` bounds the pooled size (the simulator is slow)."""
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    steps = kernel if stride is None else stride
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    pooled, sizes = [], []
    for k, s, p in zip(kernel, steps, padding, strict=True):
        out = draw(st.integers(1, max(1, biggest // 2)))
        size = (out - 1) * s + k - 2 * p + draw(st.integers(0, s - 1))
        if size < 1:  # k = 2p and one window: one more window
            out, size = out + 1, size + s
        pooled.append(out)
        sizes.append(size)
    defaults = [unpool_output_size(o, k, s, p)
                for o, k, s, p in zip(pooled, kernel, steps, padding, strict=True)]
    output_size: Any = None
    if defaults != sizes or min(defaults) < 1 or draw(st.booleans()):
        output_size = tuple(sizes) if draw(st.booleans()) else (N, C, *sizes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):  # indices from a max pool of a random input
        source = torch.from_numpy(rng.standard_normal((N, C, *sizes)).astype(dtype))
        values, indices = torch.nn.functional.max_pool2d(source, kernel, stride, padding,
                                                         return_indices=True)
        x, indices = values.numpy(), indices.numpy()
    else:  # anywhere in the plane, duplicates likely
        x = rng.standard_normal((N, C, *pooled)).astype(dtype)
        indices = rng.integers(0, sizes[0] * sizes[1], size=(N, C, *pooled))
    grad_y = rng.standard_normal((N, C, *sizes)).astype(dtype)
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, output_size=output_size)
    return UnpoolProblem(x, indices, grad_y, kwargs)


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
def test_max_unpool2d_forward_matches_torch(backend, dtype):
    def check(p):
        y = F.max_unpool2d(p.x, p.indices, **p.kwargs, backend=backend)
        expected = R.max_unpool2d(p.x, p.indices, **p.kwargs)
        # A cell several inputs write to: torch's CPU kernel splits the elements across its
        # threads, so which write lands last there depends on the split (its docs call
        # duplicate indices nondeterministic). Ours is the last in row-major order on every
        # backend: the naive loop's answer there, torch's everywhere else.
        N, C = p.x.shape[:2]
        flat = p.indices.reshape(N * C, -1)
        writers = np.stack([np.bincount(row, minlength=expected[0, 0].size) for row in flat])
        shared = writers.reshape(expected.shape) > 1
        naive = F.max_unpool2d(p.x, p.indices, **p.kwargs, backend="naive")
        check_against_torch(y, np.where(shared, naive, expected), "y")

    run_property(backend, unpool_problems(dtype, max_size(backend)), check)


@backends
@dtypes
def test_max_unpool2d_backward_grad_x_matches_torch(backend, dtype):
    def check(p):
        gx = F.max_unpool2d_backward(p.grad_y, p.x, p.indices, **p.kwargs, backend=backend)
        check_against_torch(gx, R.max_unpool2d_backward(p.grad_y, p.x, p.indices, **p.kwargs),
                            "grad_x")

    run_property(backend, unpool_problems(dtype, max_size(backend)), check)


@backends
def test_duplicate_indices_last_write_wins_and_every_input_reads_its_cell(backend):
    """The case measured on torch 2.13 (CPU) that the naive docstring quotes (one small
    plane: torch's threads do not split a pair of duplicates here)."""
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    indices = np.array([[[[0, 0], [5, 5]]]])
    y = _host(F.max_unpool2d(x, indices, 2, backend=backend))
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, 0, 0], expected[0, 0, 1, 1] = 2.0, 4.0
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(y, R.max_unpool2d(x, indices, 2))
    gy = np.arange(16.0).reshape(1, 1, 4, 4)
    gx = _host(F.max_unpool2d_backward(gy, x, indices, 2, backend=backend))
    np.testing.assert_array_equal(gx, [[[[0.0, 0.0], [5.0, 5.0]]]])
    np.testing.assert_array_equal(gx, R.max_unpool2d_backward(gy, x, indices, 2))


@backends
def test_unpooling_a_max_pool_puts_each_maximum_back_in_place(backend):
    """d2l-style numbers: 0..15 pooled 2x2 keeps 5, 7, 13, 15 and unpooling puts them back."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y, indices = F.max_pool2d(x, 2, return_indices=True, backend=backend)
    back = _host(F.max_unpool2d(y, indices, 2, backend=backend))
    np.testing.assert_array_equal(back, np.where(np.isin(x, [5, 7, 13, 15]), x, 0))


@backends
def test_an_empty_batch_gives_empty_outputs(backend):
    x = np.zeros((0, 2, 2, 3), np.float32)
    indices = np.zeros((0, 2, 2, 3), np.int64)
    assert _host(F.max_unpool2d(x, indices, 2, backend=backend)).shape == (0, 2, 4, 6)
    gx = F.max_unpool2d_backward(np.zeros((0, 2, 4, 6), np.float32), x, indices, 2,
                                 backend=backend)
    assert _host(gx).shape == x.shape


@pytest.mark.skipif("cuda" not in mc.backends(), reason="no GPU and no CUDA simulator")
def test_device_arrays_stay_on_the_device():
    from numba import cuda

    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 2, 2))
    indices = rng.integers(0, 9, (1, 2, 2, 2))
    gy = rng.standard_normal((1, 2, 3, 3))
    y = F.max_unpool2d(cuda.to_device(x), cuda.to_device(indices), 2, 1, backend="cuda")
    assert not isinstance(y, np.ndarray)
    check_against_torch(y, R.max_unpool2d(x, indices, 2, 1), "y")
    gx = F.max_unpool2d_backward(cuda.to_device(gy), cuda.to_device(x), cuda.to_device(indices),
                                 2, 1, backend="cuda")
    assert not isinstance(gx, np.ndarray)
    check_against_torch(gx, R.max_unpool2d_backward(gy, x, indices, 2, 1), "grad_x")


def test_unpool_spec_is_one_homogeneous_numba_tuple_of_ints():
    numba = pytest.importorskip("numba")
    spec = UnpoolSpec.from_shape((2, 3, 4, 5), (8, 11))
    assert spec.x_shape == (2, 3, 4, 5) and spec.y_shape == (2, 3, 8, 11)
    typ = numba.typeof(spec)
    assert isinstance(typ, numba.types.NamedUniTuple) and typ.dtype == numba.types.int64, typ


# --------------------------------------------------------------------------- the layer


@backends
def test_layer_matches_torch_forward_backward_and_repr(backend):
    source = np.random.default_rng(7).standard_normal((2, 3, 7, 6))
    for args, output_size in [((2,), None), (((3, 2), (2, 1), (1, 0)), (7, 6)),
                              ((3, 2, 1), [2, 3, 7, 6])]:
        pool = torch.nn.MaxPool2d(*args, return_indices=True)
        values, tindices = pool(torch.from_numpy(source))
        x, indices = values.numpy(), tindices.numpy()
        layer, twin = nn.MaxUnpool2d(*args), torch.nn.MaxUnpool2d(*args)
        assert repr(layer) == repr(twin)
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        ty = twin(tx, tindices, output_size)
        with mc.use_backend(backend):
            y = layer(x, indices, output_size)
            check_against_torch(y, ty.detach().numpy(), "y")
            gy = np.random.default_rng(8).standard_normal(ty.shape)
            gx = layer.backward(gy)
        ty.backward(torch.from_numpy(gy))
        check_against_torch(gx, tx.grad.numpy(), "grad_x")


# --------------------------------------------------------------------------- validation

_x = np.zeros((1, 2, 2, 2))
_i = np.zeros((1, 2, 2, 2), np.int64)

ERRORS = [  # (exception, the words the message holds, the call), each a validation path
    (ValueError, ["x", "4-D", "(2, 2)"], lambda: F.max_unpool2d(np.zeros((2, 2)), _i, 2)),
    (ValueError, ["x", "C, H, W > 0"],
     lambda: F.max_unpool2d(np.zeros((1, 0, 2, 2)), np.zeros((1, 0, 2, 2), np.int64), 2)),
    (TypeError, ["x", "float32 or float64"], lambda: F.max_unpool2d(_i, _i, 2)),
    (ValueError, ["kernel_size", "positive", "0"], lambda: F.max_unpool2d(_x, _i, 0)),
    (ValueError, ["stride", "positive", "0"], lambda: F.max_unpool2d(_x, _i, 2, 0)),
    (ValueError, ["padding", ">= 0", "-1"], lambda: F.max_unpool2d(_x, _i, 2, 2, -1)),
    (ValueError, ["padding", "at least one cell", "(0, 0)"],
     lambda: F.max_unpool2d(_x, _i, 2, 2, 2)),
    (ValueError, ["output_size", "2 ints", "4", "(4,)"],
     lambda: F.max_unpool2d(_x, _i, 2, output_size=(4,))),
    (ValueError, ["output_size", "2 ints", "4", "5"],
     lambda: F.max_unpool2d(_x, _i, 2, output_size=5)),
    (ValueError, ["output_size", "W between 2 and 6", "got 6"],
     lambda: F.max_unpool2d(_x, _i, 2, output_size=(4, 6))),
    (ValueError, ["output_size", "H between 2 and 6", "got 2"],
     lambda: F.max_unpool2d(_x, _i, 2, output_size=(1, 2, 2, 4))),
    (TypeError, ["output_size", "int", "float"],
     lambda: F.max_unpool2d(_x, _i, 2, output_size=(4.0, 4))),
    (TypeError, ["indices", "max_pool2d", "list"], lambda: F.max_unpool2d(_x, [0], 2)),
    (TypeError, ["indices", "integer", "float64"], lambda: F.max_unpool2d(_x, _x, 2)),
    (ValueError, ["indices", "(1, 2, 2, 2)", "x's", "(1, 2, 1, 3)"],
     lambda: F.max_unpool2d(_x, np.zeros((1, 2, 1, 3), np.int64), 2)),
    (ValueError, ["indices", "[0, 16)", "[0, 16]"],
     lambda: F.max_unpool2d(_x, np.array([[[[0, 16], [1, 2]]] * 2]), 2)),
    (ValueError, ["indices", "[0, 16)", "[-1, 2]"],
     lambda: F.max_unpool2d(_x, np.array([[[[0, -1], [1, 2]]] * 2]), 2)),
    (ValueError, ["grad_y", "(1, 2, 4, 4)", "(1, 2, 2, 2)"],
     lambda: F.max_unpool2d_backward(_x, _x, _i, 2)),
    (TypeError, ["grad_y", "float64", "float32"],
     lambda: F.max_unpool2d_backward(np.zeros((1, 2, 4, 4), np.float32), _x, _i, 2)),
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


def test_torch_refuses_the_same_output_sizes_and_indices():
    """Each output_size and index refused above, PyTorch refuses too."""
    tx, ti = torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2, dtype=torch.long)
    for output_size in [(4,), (4, 6), (1, 2, 2, 4)]:
        with pytest.raises(ValueError):
            torch.nn.functional.max_unpool2d(tx, ti, 2, output_size=output_size)
    for bad in (16, -1):
        with pytest.raises(RuntimeError, match="invalid max index"):
            torch.nn.functional.max_unpool2d(tx, torch.full((1, 2, 2, 2), bad), 2)
    with pytest.raises(RuntimeError, match="Expected shape of indices"):
        torch.nn.functional.max_unpool2d(tx, torch.zeros(1, 2, 1, 3, dtype=torch.long), 2)


def test_layer_forward_called_directly_needs_the_indices():
    layer = nn.MaxUnpool2d(2)
    with pytest.raises(TypeError, match="indices"):  # a required argument, as PyTorch's
        layer.forward(_x)
    with pytest.raises(TypeError, match="indices"):
        layer(_x)
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    assert layer.forward(x, _i + 5, (4, 4))[0, 1, 1, 1] == 7.0
    np.testing.assert_array_equal(layer.backward(np.ones((1, 2, 4, 4))), np.ones(x.shape))
