"""The d2l worked examples, on numbers a reader can check by hand, through the public API.

Every test runs on the textbook backend ``naive`` and on every other usable backend, so a fast
backend is held to the same hand-checkable numbers. The inputs hold small integers, so every
sum is exact in float32 whatever the summation order, and results are compared exactly.
The literal numbers were checked against PyTorch (``reference/``).
"""

import numpy as np
import pytest

import minitorch_cnn as mc
from kernels import naive
from kernels.common import ConvSpec
from minitorch_cnn import functional as F

BACKENDS = ["naive"] + [b for b in mc.backends() if b != "naive"]

# d2l's 5x5 example and its 3x3 kernel 1..9
X5 = np.array(
    [[3, 4, 6, 5, 7],
     [2, 4, 6, 8, 2],
     [1, 6, 7, 8, 4],
     [9, 7, 4, 6, 2],
     [3, 7, 5, 4, 1]],
    dtype=np.float32,
)
K9 = np.arange(1, 10, dtype=np.float32).reshape(3, 3)


def _nchw(a: np.ndarray) -> np.ndarray:
    """(H, W) -> (1, 1, H, W)."""
    return np.ascontiguousarray(a[None, None])


def _reference():
    pytest.importorskip("torch")
    import reference

    return reference


# --------------------------------------------------------------------------- corr2d


@pytest.mark.parametrize("backend", BACKENDS)
def test_corr2d_of_0_to_8_with_kernel_0_to_3_gives_19_25_37_43(backend):
    X = np.arange(9, dtype=np.float32).reshape(3, 3)
    K = np.arange(4, dtype=np.float32).reshape(2, 2)
    # 19 = 0*0 + 1*1 + 3*2 + 4*3; a flipped kernel (a true convolution) would give 5.
    Y = F.corr2d(X, K, backend=backend)
    np.testing.assert_array_equal(Y, [[19, 25], [37, 43]])
    assert Y.dtype == np.float32


@pytest.mark.parametrize("backend", BACKENDS)
def test_edge_kernel_1_minus_1_marks_white_to_black_at_column_1_and_black_to_white_at_5(backend):
    X = np.ones((6, 8), dtype=np.float32)
    X[:, 2:6] = 0
    K = np.array([[1.0, -1.0]], dtype=np.float32)
    expected = np.zeros((6, 7), dtype=np.float32)
    expected[:, 1] = 1
    expected[:, 5] = -1
    np.testing.assert_array_equal(F.corr2d(X, K, backend=backend), expected)
    # the same kernel sees nothing in the transposed image: it detects only vertical edges
    np.testing.assert_array_equal(
        F.corr2d(np.ascontiguousarray(X.T), K, backend=backend), np.zeros((8, 5))
    )


# --------------------------------------------------------------------------- padding, stride


def _corr2d_by_dot_products(X_pad: np.ndarray, K: np.ndarray, stride: int) -> np.ndarray:
    """Each output element as one explicit dot product of a flattened window with K."""
    kh, kw = K.shape
    rows = range(0, X_pad.shape[0] - kh + 1, stride)
    cols = range(0, X_pad.shape[1] - kw + 1, stride)
    return np.array(
        [[np.dot(X_pad[i : i + kh, j : j + kw].ravel(), K.ravel()) for j in cols] for i in rows]
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_padding_1_on_5x5_with_kernel_1_to_9_gives_first_row_91_168_224_215_127(backend):
    Y = F.conv2d(_nchw(X5), _nchw(K9), padding=1, backend=backend)[0, 0]
    # 91 = 5*3 + 6*4 + 8*2 + 9*4: the top-left window is half padding
    np.testing.assert_array_equal(Y[0], [91, 168, 224, 215, 127])
    np.testing.assert_array_equal(Y, _corr2d_by_dot_products(np.pad(X5, 1), K9, stride=1))
    assert Y.shape == (5, 5)  # padding 1 keeps a 5x5 input 5x5 under a 3x3 kernel


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_stride_2_on_5x5_with_kernel_1_to_9_gives_211_262_251_169(backend):
    Y = F.conv2d(_nchw(X5), _nchw(K9), stride=2, backend=backend)[0, 0]
    np.testing.assert_array_equal(Y, [[211, 262], [251, 169]])
    np.testing.assert_array_equal(Y, _corr2d_by_dot_products(X5, K9, stride=2))
    # stride 2 keeps every other window: the interior of the padding-1 output, subsampled
    Y_pad1 = F.conv2d(_nchw(X5), _nchw(K9), padding=1, backend=backend)[0, 0]
    np.testing.assert_array_equal(Y, Y_pad1[1::2, 1::2])


# --------------------------------------------------------------------------- channels


def _d2l_multi_in():
    X = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])
    K = np.stack([np.arange(4.0).reshape(2, 2), np.arange(1.0, 5.0).reshape(2, 2)])
    return X.astype(np.float32), K.astype(np.float32)  # (2, 3, 3), (2, 2, 2)


def test_d2l_corr2d_multi_in_sums_corr2d_over_channels_giving_56_72_104_120():
    X, K = _d2l_multi_in()
    np.testing.assert_array_equal(naive.corr2d_multi_in(X, K), [[56, 72], [104, 120]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_with_2_input_channels_sums_corr2d_over_channels_giving_56_72_104_120(backend):
    X, K = _d2l_multi_in()
    expected = [[56, 72], [104, 120]]  # = corr2d(X[0], K[0]) + corr2d(X[1], K[1])
    np.testing.assert_array_equal(
        F.corr2d(X[0], K[0], backend=backend) + F.corr2d(X[1], K[1], backend=backend), expected
    )
    Y = F.conv2d(X[None], K[None], backend=backend)  # weight (1, 2, 2, 2)
    np.testing.assert_array_equal(Y, [[expected]])


MULTI_OUT_EXPECTED = [
    [[56, 72], [104, 120]],
    [[76, 100], [148, 172]],  # each kernel entry +1 adds the window sums 20, 28, 44, 52
    [[96, 128], [192, 224]],
]


def test_d2l_corr2d_multi_in_out_stacks_kernels_K_K1_K2_into_three_output_channels():
    X, K = _d2l_multi_in()
    K3 = np.stack([K, K + 1, K + 2])  # (3, 2, 2, 2)
    np.testing.assert_array_equal(naive.corr2d_multi_in_out(X, K3), MULTI_OUT_EXPECTED)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_with_kernels_K_K1_K2_gives_three_output_channels(backend):
    X, K = _d2l_multi_in()
    K3 = np.stack([K, K + 1, K + 2])  # (3, 2, 2, 2)
    np.testing.assert_array_equal(F.conv2d(X[None], K3, backend=backend)[0], MULTI_OUT_EXPECTED)


def test_d2l_1x1_conv_as_matmul_over_channels_equals_multi_in_out():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 4, 5))  # (C_in, H, W), non-square
    K = rng.standard_normal((2, 3, 1, 1))  # (C_out, C_in, 1, 1)
    Y_matmul = naive.corr2d_multi_in_out_1x1(X, K)
    np.testing.assert_allclose(Y_matmul, naive.corr2d_multi_in_out(X, K), rtol=1e-12)
    # the same matrix product written out: Y[o, h, w] = sum_c K[o, c] * X[c, h, w]
    np.testing.assert_allclose(Y_matmul, np.einsum("oc,chw->ohw", K[:, :, 0, 0], X), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_1x1_conv_as_matmul_over_channels_equals_conv2d(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 4, 5))  # (C_in, H, W), non-square
    K = rng.standard_normal((2, 3, 1, 1))  # (C_out, C_in, 1, 1)
    Y_matmul = np.einsum("oc,chw->ohw", K[:, :, 0, 0], X)  # (C_out, H, W): K @ each pixel
    np.testing.assert_allclose(F.conv2d(X[None], K, backend=backend)[0], Y_matmul, rtol=1e-12)


# --------------------------------------------------------------------------- max pooling


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_2x2_on_4x4_gives_4_8_9_8(backend):
    X = np.array([[3, 4, 6, 5], [2, 4, 6, 8], [1, 6, 7, 8], [9, 7, 4, 6]], dtype=np.float32)
    np.testing.assert_array_equal(F.max_pool2d(_nchw(X), 2, backend=backend), [[[[4, 8], [9, 8]]]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_tie_in_all_equal_window_sends_gradient_to_first_element_row_major(backend):
    x = np.full((1, 1, 4, 4), 7.0, dtype=np.float32)
    grad_y = np.array([[[[1, 2], [3, 4]]]], dtype=np.float32)
    grad_x = F.max_pool2d_backward(grad_y, x, 2, backend=backend)
    expected = np.zeros((1, 1, 4, 4), dtype=np.float32)
    expected[0, 0, ::2, ::2] = [[1, 2], [3, 4]]  # each window's top-left cell
    np.testing.assert_array_equal(grad_x, expected)
    np.testing.assert_array_equal(grad_x, _reference().max_pool2d_backward(grad_y, x, 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_tie_at_01_and_10_goes_to_01_row_major_not_column_major(backend):
    x = np.array([[[[1, 5], [5, 2]]]], dtype=np.float32)
    grad_x = F.max_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), x, 2, backend=backend)
    np.testing.assert_array_equal(grad_x, [[[[0, 1], [0, 0]]]])
    np.testing.assert_array_equal(
        grad_x, _reference().max_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), x, 2)
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_ties_in_overlapping_windows_accumulate_on_each_windows_first_cell(backend):
    x = np.ones((1, 1, 4, 5), dtype=np.float32)
    grad_y = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 2, 3)  # kernel 3, stride 1
    grad_x = F.max_pool2d_backward(grad_y, x, 3, stride=1, backend=backend)
    expected = np.zeros_like(x)
    expected[0, 0, :2, :3] = grad_y[0, 0]  # window (i, j) starts at (i, j)
    np.testing.assert_array_equal(grad_x, expected)
    np.testing.assert_array_equal(grad_x, _reference().max_pool2d_backward(grad_y, x, 3, 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_nan_propagates_and_the_last_nan_in_a_window_gets_the_gradient(backend):
    x = np.array(
        [[[[1, np.nan, 9, 3],
           [np.nan, 2, 4, 8],
           [5, 6, 7, np.nan],
           [0, 1, 2, 3]]]],
        dtype=np.float32,
    )
    y = F.max_pool2d(x, 2, backend=backend)
    # NaN beats 9 in window (0, 0) and 7 in window (1, 1); window (1, 0) has no NaN
    np.testing.assert_array_equal(y, [[[[np.nan, 9], [6, np.nan]]]])
    grad_y = np.array([[[[1, 2], [3, 4]]]], dtype=np.float32)
    grad_x = F.max_pool2d_backward(grad_y, x, 2, backend=backend)
    expected = np.zeros_like(x)
    expected[0, 0, 1, 0] = 1  # two NaNs at (0, 1) and (1, 0): the later one in row-major
    expected[0, 0, 0, 2] = 2
    expected[0, 0, 2, 1] = 3
    expected[0, 0, 2, 3] = 4
    np.testing.assert_array_equal(grad_x, expected)
    ref = _reference()
    np.testing.assert_array_equal(y, ref.max_pool2d(x, 2))
    np.testing.assert_array_equal(grad_x, ref.max_pool2d_backward(grad_y, x, 2))


# --------------------------------------------------------------------------- backward as a conv


def _flipped_grouped_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """(C_out, C_in/g, kH, kW) -> (C_in, C_out/g, kH, kW): flip kH, kW; swap in/out per group."""
    C_out, C_in_g, kH, kW = weight.shape
    w = weight[:, :, ::-1, ::-1].reshape(groups, C_out // groups, C_in_g, kH, kW)
    w = w.transpose(0, 2, 1, 3, 4)  # (groups, C_in/g, C_out/g, kH, kW)
    return np.ascontiguousarray(w.reshape(groups * C_in_g, C_out // groups, kH, kW))


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_x_is_full_convolution_of_stride_dilated_grad_y_with_flipped_kernel(backend):
    """The claim of ``kernels.naive.conv2d_backward``'s docstring, computed with conv2d."""
    rng = np.random.default_rng(1)
    (sh, sw), (ph, pw), (dh, dw), groups = (2, 1), (1, 2), (1, 2), 2
    x = rng.standard_normal((2, 4, 7, 6))  # (N, C_in, H, W)
    weight = rng.standard_normal((6, 2, 2, 3))  # (C_out, C_in // groups, kH, kW)
    N, C_in, H, W = x.shape
    C_out, _, kH, kW = weight.shape
    y = F.conv2d(x, weight, None, (sh, sw), (ph, pw), (dh, dw), groups, backend=backend)
    grad_y = rng.standard_normal(y.shape)  # (N, C_out, H_out, W_out)
    H_out, W_out = y.shape[2:]

    g = np.zeros((N, C_out, (H_out - 1) * sh + 1, (W_out - 1) * sw + 1))
    g[:, :, ::sh, ::sw] = grad_y  # stride - 1 zeros between neighbours
    full = F.conv2d(g, _flipped_grouped_weight(weight, groups), None, 1,
                    (dh * (kH - 1), dw * (kW - 1)), (dh, dw), groups, backend=backend)
    grad_x_pad = np.zeros((N, C_in, H + 2 * ph, W + 2 * pw))
    grad_x_pad[:, :, : full.shape[2], : full.shape[3]] = full  # rows no window reached: 0
    expected = grad_x_pad[:, :, ph : ph + H, pw : pw + W]

    grads = F.conv2d_backward(grad_y, x, weight, (sh, sw), (ph, pw), (dh, dw), groups,
                              backend=backend)
    np.testing.assert_allclose(grads.grad_x, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads.grad_bias, grad_y.sum((0, 2, 3)), rtol=1e-12)


def test_naive_conv2d_backward_docstring_recipe_for_grad_x_runs_as_written():
    """The docstring's groups=1 recipe, with the kernel call and the ConvSpec it shows."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 6))  # (N, C_in, H, W)
    weight = rng.standard_normal((4, 3, 2, 3))  # (C_out, C_in, kH, kW), asymmetric
    spec = ConvSpec.from_shapes(x.shape, weight.shape, stride=(2, 1), padding=(1, 2),
                                dilation=(1, 2), groups=1)
    grad_y = rng.standard_normal(spec.y_shape)  # (N, C_out, H_out, W_out)
    N, C_out, H_out, W_out = spec.N, spec.C_out, spec.H_out, spec.W_out
    H, W, kH, kW = spec.H, spec.W, spec.kH, spec.kW
    sh, sw, ph, pw, dh, dw = (spec.stride_h, spec.stride_w, spec.pad_h, spec.pad_w,
                              spec.dil_h, spec.dil_w)

    g = np.zeros((N, C_out, (H_out - 1) * sh + 1, (W_out - 1) * sw + 1))
    g[:, :, ::sh, ::sw] = grad_y  # dilate grad_y by the stride
    w_flip = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in, C_out, kH, kW)
    full_spec = ConvSpec.from_shapes(g.shape, w_flip.shape, stride=(1, 1),
                                     padding=(dh * (kH - 1), dw * (kW - 1)), dilation=(dh, dw),
                                     groups=1)
    full = naive.conv2d(g, w_flip, None, full_spec)  # (N, C_in, <= H + 2ph, <= W + 2pw)
    grad_x_pad = np.zeros((N, spec.C_in, H + 2 * ph, W + 2 * pw))
    grad_x_pad[:, :, : full.shape[2], : full.shape[3]] = full  # zero-pad at the bottom/right
    grad_x = grad_x_pad[:, :, ph : ph + H, pw : pw + W]  # crop the padding

    grads = naive.conv2d_backward(grad_y, x, weight, spec)
    np.testing.assert_allclose(grads.grad_x, grad_x, rtol=1e-10, atol=1e-12)
