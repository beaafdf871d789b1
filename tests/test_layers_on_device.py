"""Layers without parameters of their own, and the blocks, run on CUDA device arrays.

Each layer's forward and backward take a ``numba.cuda`` device array under
``mc.use_backend("cuda")`` (the simulator here, tiny shapes), return device arrays, and equal
what the same layer gives on the ``numpy`` backend with NumPy arrays (which the other tests
prove equal to PyTorch). Dropout draws its masks where the data lives (cuda's counter-based
generator), so it is checked against its own mask: ``y = x * mask``, ``grad_x = grad_y *
mask``, with whole channels dropped by Dropout2d.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import minitorch_cnn as mc
from minitorch_cnn import init, nn

from .checks import BACKENDS, assert_close

pytestmark = [pytest.mark.skipif("cuda" not in BACKENDS, reason="no cuda backend here"),
              pytest.mark.usefixtures("strict_device_arrays")]  # conftest: a GPU's arrays

LAYERS = {
    "ReLU": (nn.ReLU, (2, 3, 2, 2)),
    "Sigmoid": (nn.Sigmoid, (2, 3, 2)),
    "Tanh": (nn.Tanh, (2, 5)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), (2, 3, 2, 2)),
    "ELU": (lambda: nn.ELU(0.5), (2, 3, 2)),
    "GELU": (nn.GELU, (2, 3, 2)),
    "GELU(tanh)": (lambda: nn.GELU("tanh"), (2, 3, 2)),
    "SiLU": (nn.SiLU, (3, 4)),
    "Softmax(1)": (lambda: nn.Softmax(dim=1), (2, 3, 2)),
    "Softmax(-1)": (lambda: nn.Softmax(dim=-1), (2, 3, 2)),
    "LogSoftmax(-1)": (lambda: nn.LogSoftmax(dim=-1), (2, 3, 4)),
    "LogSoftmax(1)": (lambda: nn.LogSoftmax(dim=1), (3, 5)),
    # the blocks: F.add joins the branches (tiny: a conv's backward costs seconds in the
    # simulator, whatever its shape)
    "ResidualBlock": (lambda: nn.ResidualBlock(1), (1, 1, 2, 2)),
    "Residual": (lambda: nn.Residual(1, 1), (2, 1, 2, 2)),
}


def _to_device(a):
    from numba import cuda

    return cuda.to_device(a)


def _is_device(a) -> bool:
    return hasattr(a, "copy_to_host") and not isinstance(a, np.ndarray)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_on_device_arrays_equals_the_numpy_backend(name):
    make, shape = LAYERS[name]
    init.manual_seed(7)
    layer = make().double()
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape) * 2
    with mc.use_backend("numpy"):
        y_expected = layer(x)
        grad_y = rng.standard_normal(y_expected.shape)
        grad_expected = layer.backward(grad_y)
    from kernels import cuda as kc

    # the "direct" conv rung: one thread per output element (the default igemm rung's
    # 256-thread tiles cost a Python thread each in the simulator, whatever the shape)
    with mc.use_backend("cuda"), kc.conv_algorithm("direct"):
        y = layer(_to_device(x))
        grad_x = layer.backward(_to_device(grad_y))
    assert _is_device(y) and _is_device(grad_x), (type(y), type(grad_x))
    assert_close(y.copy_to_host(), y_expected, "y", tol=1e-12)
    assert_close(grad_x.copy_to_host(), grad_expected, "grad_x", tol=1e-12)


def test_log_softmax_over_another_dim_than_the_last_is_refused_on_the_device():
    from numba import cuda

    x = cuda.to_device(np.zeros((2, 3, 2)))
    with mc.use_backend("cuda"), pytest.raises(ValueError, match=r"LogSoftmax\(dim=1\): on "
                                               r"the device only over the last dim of x"):
        nn.LogSoftmax(dim=1)(x)


@pytest.mark.parametrize("cls, shape", [(nn.Dropout, (3, 4, 2)), (nn.Dropout2d, (3, 4, 2, 2)),
                                        (nn.Dropout2d, (6, 5))])
def test_dropout_on_device_arrays_drops_with_its_own_mask(cls, shape):
    init.manual_seed(1)
    layer = cls(0.4).double()
    rng = np.random.default_rng(0)
    x, grad_y = rng.standard_normal(shape), rng.standard_normal(shape)
    with mc.use_backend("cuda"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dropout2d's 2-D input warns, as PyTorch's
        y = layer(_to_device(x))
        mask = layer._cache.mask  # the noise, 0 or 1 / (1 - p), on the host for inspection
        grad_x = layer.backward(_to_device(grad_y))
    assert _is_device(y) and _is_device(grad_x)
    assert set(np.unique(mask)) == {0.0, 1 / 0.6}
    if cls is nn.Dropout2d and len(shape) == 4:
        assert mask.shape == shape[:2] + (1, 1)  # one draw per (n, c)
    np.testing.assert_array_equal(y.copy_to_host(), x * mask)
    np.testing.assert_array_equal(grad_x.copy_to_host(), grad_y * mask)
    layer.eval()
    with mc.use_backend("cuda"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = layer(_to_device(x))
    np.testing.assert_array_equal(same.copy_to_host(), x)


def test_inception_forward_on_device_arrays_concatenates_as_the_numpy_backend():
    """InceptionA's forward ends in F.cat; its backward starts with F.cat_backward and joins
    the branches with F.add (both proven on device arrays below and in test_activations_f):
    its seven convs' backward would take over a minute in the simulator, so forward only.
    """
    from kernels import cuda as kc

    init.manual_seed(2)
    layer = nn.InceptionA(1).double()
    x = np.random.default_rng(5).standard_normal((1, 1, 2, 2))
    with mc.use_backend("numpy"):
        y_expected = layer(x)
    with mc.use_backend("cuda"), kc.conv_algorithm("direct"):
        y = layer(_to_device(x))
    assert _is_device(y) and tuple(y.shape) == (1, 88, 2, 2)
    assert_close(y.copy_to_host(), y_expected, "y", tol=1e-12)


def test_cat_and_its_backward_take_and_give_device_arrays():
    from minitorch_cnn import functional as F

    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((2, c, 3)) for c in (1, 3, 2)]
    with mc.use_backend("cuda"):
        y = F.cat([_to_device(p) for p in parts], 1)
        grads = F.cat_backward(y, [1, 3, 2])
        total = F.add(grads[0], grads[0])  # how InceptionA joins its branches' gradients
    assert _is_device(y) and all(_is_device(g) for g in grads) and _is_device(total)
    np.testing.assert_array_equal(y.copy_to_host(), np.concatenate(parts, 1))
    for g, p in zip(grads, parts, strict=True):
        np.testing.assert_array_equal(g.copy_to_host(), p)
    np.testing.assert_array_equal(total.copy_to_host(), 2 * parts[0])
