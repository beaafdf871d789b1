"""The textbook backward passes checked by central differences, with no torch involved.

For a fixed random ``R`` the loss ``L = sum(y * R)`` has ``dL/dy = R``, so the analytic
gradients are the backward kernels called with ``grad_y = R``. The numeric gradient nudges one
input element at a time by ``+-EPS`` and takes ``(L(+) - L(-)) / (2 * EPS)``; we compute that
difference as ``sum((y(+) - y(-)) * R)``, the same number with less rounding noise, because the
outputs the element does not touch cancel exactly. Everything runs in float64.

Problems are tiny (N <= 2, C <= 3, H, W <= 7) and built valid directly: draw the kernel,
stride, padding and dilation, then an input size that fits. Kernels have independent height
and width and inputs are never square (a drawn ``H == W`` gets one more column), so a swapped
axis or a flipped kernel cannot pass. Max pooling draws distinct
values (a scaled permutation), so no window has a tie and the function is differentiable
where we probe it.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minitorch_cnn import functional as F

EPS = 1e-6
RTOL = 1e-5
# The numeric gradient is off by rounding only: at most 5e-9 in 600 conv examples (the
# difference of two outputs of size ~5, over 2e-6). An absolute floor well above that keeps a
# gradient that cancels to ~0 from failing on the noise; a real bug is off by ~0.1 or more.
ATOL = 1e-7
BACKEND = "naive"


def numeric_grad(forward, a: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Central differences of ``L = sum(forward() * R)`` with respect to each element of ``a``.

    ``forward`` reads ``a``, which is nudged in place and restored.
    """
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + EPS
        y_plus = forward()
        a[idx] = old - EPS
        y_minus = forward()
        a[idx] = old
        grad[idx] = np.sum((y_plus - y_minus) * R) / (2 * EPS)
    return grad


def assert_grad_close(analytic: np.ndarray, numeric: np.ndarray, name: str) -> None:
    assert analytic.shape == numeric.shape, (name, analytic.shape, numeric.shape)
    assert analytic.dtype == np.float64, (name, analytic.dtype)
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=name)


def _reach(kernel: int, dilation: int) -> int:
    """Extent of a dilated kernel along one axis."""
    return dilation * (kernel - 1) + 1


# --------------------------------------------------------------------------- conv2d


@st.composite
def conv_cases(draw):
    """(x, weight, bias, kwargs): hyper-parameters first, then an input size that fits."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C_in = groups * draw(st.integers(1, 3 // groups))
    C_out = groups * draw(st.integers(1, 3 // groups))
    N = draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    H, W = (
        draw(st.integers(max(1, _reach(kernel[i], dilation[i]) - 2 * padding[i]), 7))
        for i in range(2)
    )
    W += H == W  # non-square
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, C_in, H, W))
    weight = rng.standard_normal((C_out, C_in // groups) + kernel)
    bias = rng.standard_normal(C_out)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x, weight, bias, kwargs


@settings(deadline=None)
@given(case=conv_cases(), seed=st.integers(0, 2**32 - 1))
def test_conv2d_backward_grad_x_weight_bias_match_central_differences(case, seed):
    x, weight, bias, kwargs = case

    def forward():
        return F.conv2d(x, weight, bias, **kwargs, backend=BACKEND)

    R = np.random.default_rng(seed).standard_normal(forward().shape)  # dL/dy
    grads = F.conv2d_backward(R, x, weight, **kwargs, backend=BACKEND)
    assert_grad_close(grads.grad_x, numeric_grad(forward, x, R), "grad_x")
    assert_grad_close(grads.grad_weight, numeric_grad(forward, weight, R), "grad_weight")
    assert_grad_close(grads.grad_bias, numeric_grad(forward, bias, R), "grad_bias")


# --------------------------------------------------------------------------- pooling


@st.composite
def pool_cases(draw, kind: str):
    """(x, kwargs) for max or avg pooling: kernel, stride, padding (<= kernel // 2), then H, W.

    For max pooling the input is at least ``dilation`` cells long, so every window holds a
    real cell (a window of padding only would output -inf), and its values are distinct.
    """
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dilation = (1, 1)
    if kind == "max":
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    H, W = (
        draw(st.integers(max(1, _reach(kernel[i], dilation[i]) - 2 * padding[i], dilation[i]), 7))
        for i in range(2)
    )
    W += H == W  # non-square
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "max":
        # distinct values 1/size apart: no ties, and a 1e-6 nudge never changes a window's max
        x = (rng.permutation(N * C * H * W) / (N * C * H * W) - 0.5).reshape(N, C, H, W)
    else:
        x = rng.standard_normal((N, C, H, W))
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding,
                  ceil_mode=draw(st.booleans()))
    if kind == "max":
        kwargs["dilation"] = dilation
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        kwargs["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    return x, kwargs


@settings(deadline=None)
@given(case=pool_cases("max"), seed=st.integers(0, 2**32 - 1))
def test_max_pool2d_backward_matches_central_differences_without_ties(case, seed):
    x, kwargs = case

    def forward():
        return F.max_pool2d(x, **kwargs, backend=BACKEND)

    R = np.random.default_rng(seed).standard_normal(forward().shape)
    grad_x = F.max_pool2d_backward(R, x, **kwargs, backend=BACKEND)
    assert_grad_close(grad_x, numeric_grad(forward, x, R), "grad_x")


@settings(deadline=None)
@given(case=pool_cases("avg"), seed=st.integers(0, 2**32 - 1))
def test_avg_pool2d_backward_matches_central_differences(case, seed):
    x, kwargs = case

    def forward():
        return F.avg_pool2d(x, **kwargs, backend=BACKEND)

    R = np.random.default_rng(seed).standard_normal(forward().shape)
    grad_x = F.avg_pool2d_backward(R, x, **kwargs, backend=BACKEND)
    assert_grad_close(grad_x, numeric_grad(forward, x, R), "grad_x")


@st.composite
def adaptive_cases(draw):
    """(x, output_size): any input size and any output size up to 7, also larger than H, W."""
    H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    output_size = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal((N, C, H, W)), output_size


@settings(deadline=None)
@given(case=adaptive_cases(), seed=st.integers(0, 2**32 - 1))
def test_adaptive_avg_pool2d_backward_matches_central_differences(case, seed):
    x, output_size = case

    def forward():
        return F.adaptive_avg_pool2d(x, output_size, backend=BACKEND)

    R = np.random.default_rng(seed).standard_normal(forward().shape)
    grad_x = F.adaptive_avg_pool2d_backward(R, x, output_size, backend=BACKEND)
    assert_grad_close(grad_x, numeric_grad(forward, x, R), "grad_x")
