"""The cuda backend through the public API: device arrays in, device arrays out.

Runs on a GPU, or in the Numba CUDA simulator (tests/conftest.py switches it on).
"""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_cnn as mc
import reference as R
from minitorch_cnn import functional as F

from .checks import check_against_torch

pytestmark = [
    pytest.mark.skipif("cuda" not in mc.backends(), reason="no GPU and no CUDA simulator"),
    pytest.mark.filterwarnings("ignore:Using padding='same'"),
    pytest.mark.usefixtures("strict_device_arrays"),  # conftest: a GPU's arrays
]


def test_device_arrays_stay_on_the_device_and_match_torch():
    from numba import cuda

    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 5, 6))
    w = rng.standard_normal((3, 2, 2, 3))
    y = F.conv2d(cuda.to_device(x), cuda.to_device(w), padding="same", backend="cuda")
    assert not isinstance(y, np.ndarray) and hasattr(y, "copy_to_host")
    check_against_torch(y, R.conv2d(x, w, padding="same"), "y")
    gy = rng.standard_normal((1, 3, 5, 6))
    grads = F.conv2d_backward(cuda.to_device(gy), cuda.to_device(x), cuda.to_device(w),
                              padding="same", backend="cuda")
    for ours, ref, name in zip(grads, R.conv2d_backward(gy, x, w, padding="same"),
                               ("grad_x", "grad_weight", "grad_bias"), strict=True):
        check_against_torch(ours, ref, name)
    p = F.max_pool2d(cuda.to_device(x), 2, ceil_mode=True, backend="cuda")
    check_against_torch(p, R.max_pool2d(x, 2, ceil_mode=True), "max_pool2d")


def test_device_arrays_are_refused_by_host_backends_with_a_clear_type_error():
    from numba import cuda

    dx = cuda.to_device(np.zeros((1, 1, 4, 4)))
    with pytest.raises(TypeError, match="x: got a CUDA device array.*backend='cuda'"):
        F.max_pool2d(dx, 2, backend="numpy")


def test_an_empty_batch_on_the_device_gives_device_arrays_of_the_right_shape():
    """Device in, device out holds for N = 0 too, where no kernel is launched."""
    from numba import cuda

    def on_device(a, shape):
        assert not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host"), type(a)
        assert tuple(a.shape) == shape and not a.copy_to_host().any()

    x = cuda.to_device(np.zeros((0, 2, 6, 5), np.float32))
    w = cuda.to_device(np.ones((3, 2, 3, 2), np.float32))
    on_device(F.conv2d(x, w, padding="same", backend="cuda"), (0, 3, 6, 5))
    gy = cuda.to_device(np.zeros((0, 3, 4, 4), np.float32))
    for grad, shape in zip(F.conv2d_backward(gy, x, w, backend="cuda"),
                           ((0, 2, 6, 5), (3, 2, 3, 2), (3,)), strict=True):
        on_device(grad, shape)
    y, indices = F.max_pool2d(x, 2, return_indices=True, backend="cuda")
    on_device(y, (0, 2, 3, 2))
    on_device(indices, (0, 2, 3, 2))
    g2 = cuda.to_device(np.zeros((0, 2, 3, 2), np.float32))
    on_device(F.max_pool2d_backward(g2, x, 2, backend="cuda"), (0, 2, 6, 5))
    on_device(F.avg_pool2d(x, 2, backend="cuda"), (0, 2, 3, 2))
    on_device(F.avg_pool2d_backward(g2, x, 2, backend="cuda"), (0, 2, 6, 5))
    on_device(F.adaptive_avg_pool2d(x, (3, 2), backend="cuda"), (0, 2, 3, 2))
    on_device(F.adaptive_avg_pool2d_backward(g2, x, (3, 2), backend="cuda"), (0, 2, 6, 5))
