"""Bad input gets a clear ValueError/TypeError that names the argument (DESIGN.md's list).

Every error path of ``minitorch_cnn.functional`` has a test here: the exception type and that
the message names the offending argument and says what came.
"""

from __future__ import annotations

import numpy as np
import pytest

from minitorch_cnn import functional as F

x = np.zeros((2, 4, 6, 5))
w = np.zeros((6, 2, 3, 3))
y_shape = (2, 6, 4, 3)


def raises(exc, *words):
    """pytest.raises whose message must contain every word in ``words``."""
    import re

    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(w)})" for w in words))


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(x=np.zeros((4, 6, 5))), ValueError, ["x", "4-D", "(4, 6, 5)"]),
        (dict(weight=np.zeros((6, 2, 3))), ValueError, ["weight", "4-D"]),
        (dict(x=np.zeros((2, 4, 6, 5), np.int64)), TypeError, ["x", "float32", "int64"]),
        (dict(x=np.zeros((2, 4, 6, 5), bool)), TypeError, ["x", "bool"]),
        (dict(x=[[[[1.0]]]]), TypeError, ["x", "numpy.ndarray", "list"]),
        (dict(weight=np.zeros((6, 2, 3, 3), np.float32)), TypeError, ["weight", "float64"]),
        (dict(weight=np.zeros((6, 3, 3, 3))), ValueError, ["weight", "groups=2", "C_in=4"]),
        (dict(weight=np.zeros((5, 2, 3, 3))), ValueError, ["groups", "C_out=5"]),
        (dict(groups=0), ValueError, ["groups", "positive", "0"]),
        (dict(groups=2.0), TypeError, ["groups", "int", "float"]),
        (dict(stride=0), ValueError, ["stride", "positive", "0"]),
        (dict(stride=(1, -2)), ValueError, ["stride", "-2"]),
        (dict(stride=(1, 2, 3)), ValueError, ["stride", "pair"]),
        (dict(dilation=0), ValueError, ["dilation", "0"]),
        (dict(padding=-1), ValueError, ["padding", "-1"]),
        (dict(padding="full"), ValueError, ["padding", "'full'", "same", "valid"]),
        (dict(padding="same", stride=2), ValueError, ["padding", "same", "stride"]),
        (dict(weight=np.zeros((6, 2, 7, 3))), ValueError, ["weight", "7", "padded input"]),
        (dict(weight=np.zeros((6, 2, 3, 3)), dilation=3), ValueError, ["weight", "along H", "7"]),
        (dict(bias=np.zeros(5)), ValueError, ["bias", "(6,)", "(5,)"]),
        (dict(bias=np.zeros(6, np.float32)), TypeError, ["bias", "float64", "float32"]),
        (dict(bias=np.zeros((6, 1))), ValueError, ["bias", "1-D"]),
    ],
    ids=lambda v: "-".join(f"{k}" for k in v) if isinstance(v, dict) else None,
)
def test_conv2d_rejects_bad_input_naming_the_argument(kwargs, exc, words):
    args = dict(x=x, weight=w, bias=None, stride=1, padding=0, dilation=1, groups=2)
    args.update(kwargs)
    with raises(exc, *words):
        F.conv2d(**args)


def test_conv2d_backward_rejects_grad_y_of_the_wrong_shape():
    with raises(ValueError, "grad_y", str(y_shape), "(2, 6, 4, 4)"):
        F.conv2d_backward(np.zeros((2, 6, 4, 4)), x, w, groups=2)


def test_conv2d_backward_rejects_grad_y_of_another_dtype():
    with raises(TypeError, "grad_y", "float64", "float32"):
        F.conv2d_backward(np.zeros(y_shape, np.float32), x, w, groups=2)


def test_corr2d_rejects_kernel_larger_than_input_and_bad_ndim():
    with raises(ValueError, "K", "(3, 3)"):
        F.corr2d(np.zeros((2, 5)), np.zeros((3, 3)))
    with raises(ValueError, "X", "2-D"):
        F.corr2d(np.zeros((1, 2, 5)), np.zeros((1, 1)))
    with raises(TypeError, "K", "float64"):
        F.corr2d(np.zeros((4, 5)), np.zeros((1, 1), np.float32))


POOLS = [
    ("max", lambda a, **k: F.max_pool2d(a, **k)),
    ("avg", lambda a, **k: F.avg_pool2d(a, **k)),
    ("max_backward", lambda a, **k: F.max_pool2d_backward(np.zeros((2, 4, 3, 2)), a, **k)),
    ("avg_backward", lambda a, **k: F.avg_pool2d_backward(np.zeros((2, 4, 3, 2)), a, **k)),
]


@pytest.mark.parametrize("name, op", POOLS, ids=[p[0] for p in POOLS])
@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(kernel_size=2, padding=2), ValueError, ["padding", "half", "2"]),
        (dict(kernel_size=(3, 2), padding=(1, 2)), ValueError, ["padding", "half", "W"]),
        (dict(kernel_size=0), ValueError, ["kernel_size", "positive", "0"]),
        (dict(kernel_size=2, stride=0), ValueError, ["stride", "0"]),
        (dict(kernel_size=8), ValueError, ["kernel_size", "8", "padded input"]),
        (dict(kernel_size=2.5), TypeError, ["kernel_size", "int", "float"]),
        (dict(kernel_size=2, ceil_mode="yes"), TypeError, ["ceil_mode", "bool"]),
    ],
)
def test_pooling_rejects_bad_hyperparameters_naming_the_argument(name, op, kwargs, exc, words):
    with raises(exc, *words):
        op(x, **kwargs)


def test_pooling_rejects_wrong_ndim_and_integer_input():
    with raises(ValueError, "x", "4-D", "(6, 5)"):
        F.max_pool2d(np.zeros((6, 5)), 2)
    with raises(TypeError, "x", "int32"):
        F.avg_pool2d(np.zeros((1, 1, 6, 5), np.int32), 2)


def test_pool_backward_rejects_grad_y_of_the_wrong_shape():
    with raises(ValueError, "grad_y", "(2, 4, 3, 2)", "(2, 4, 3, 3)"):
        F.max_pool2d_backward(np.zeros((2, 4, 3, 3)), x, 2)
    with raises(ValueError, "grad_y", "(2, 4, 3, 2)"):
        F.avg_pool2d_backward(np.zeros((2, 4, 2, 2)), x, 2)


def test_avg_pool2d_rejects_zero_or_non_int_divisor_override():
    with raises(ValueError, "divisor_override", "0"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with raises(TypeError, "divisor_override", "float"):
        F.avg_pool2d(x, 2, divisor_override=1.5)
    with raises(TypeError, "count_include_pad", "bool"):
        F.avg_pool2d(x, 2, count_include_pad=None)


def test_adaptive_avg_pool2d_rejects_bad_output_size_and_grad():
    with raises(ValueError, "output_size", "positive", "0"):
        F.adaptive_avg_pool2d(x, 0)
    with raises(ValueError, "output_size", "pair"):
        F.adaptive_avg_pool2d(x, (1, 2, 3))
    with raises(TypeError, "output_size", "int", "str"):
        F.adaptive_avg_pool2d(x, "2")
    with raises(ValueError, "grad_y", "(2, 4, 2, 2)"):
        F.adaptive_avg_pool2d_backward(np.zeros((2, 4, 3, 3)), x, 2)


def test_zero_sized_channels_or_spatial_dims_are_rejected():
    with raises(ValueError, "x", "C_in, H, W > 0"):
        F.conv2d(np.zeros((1, 0, 4, 4)), np.zeros((1, 0, 1, 1)))
    with raises(ValueError, "x", "C, H, W > 0"):
        F.max_pool2d(np.zeros((1, 1, 0, 4)), 1)
