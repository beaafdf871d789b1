"""``minitorch_cnn.gradcheck``: a correct backward passes, a wrong one fails and says where.

Checked on the naive conv2d and max pooling backward (against central differences), on a
layer written in the test (a correct and a wrong backward), and on every error path.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import minitorch_cnn as mc
from minitorch_cnn import functional as F
from minitorch_cnn.gradcheck import numerical_gradient, rel_error

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 2, 5, 4))  # (N, C_in, H, W), not square
W = RNG.standard_normal((3, 1, 2, 3))  # (C_out, C_in // groups, kH, kW), asymmetric
B = RNG.standard_normal(3)
KW = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=1)
W2 = RNG.standard_normal((3, 2, 2, 3))


def conv_loss(flip: bool = False):
    """``(y * G).sum()`` of the naive conv2d, with conv2d_backward's gradients."""
    y = F.conv2d(X, W2, B, **KW, backend="naive")
    G = np.random.default_rng(1).standard_normal(y.shape)

    def f(x, w, b):
        y = F.conv2d(x, w, b, **KW, backend="naive")
        grad_x, grad_w, grad_b = F.conv2d_backward(G, x, w, **KW, backend="naive")
        if flip:
            grad_w = grad_w[:, :, ::-1, ::-1]
        return (y * G).sum(), (grad_x, grad_w, grad_b)

    return f


def test_the_naive_conv2d_backward_passes(capsys):
    result = mc.gradcheck(conv_loss(), [X, W2, B])
    assert result.passed and result
    assert all(e < 1e-7 for e in result.errors), result.errors
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("input 0, shape (2, 2, 5, 4): max relative error ")
    assert out.splitlines()[-1] == "gradcheck passed (central differences, h=1e-05, " \
                                   "tolerance 1e-06)"


def test_a_flipped_grad_weight_fails_and_names_the_input(capsys):
    result = mc.gradcheck(conv_loss(flip=True), [X, W2, B], verbose=False)
    assert not result.passed
    assert result.errors[0] < 1e-7 and result.errors[2] < 1e-7 and result.errors[1] > 1e-2
    line = result.report.splitlines()[1]
    assert re.fullmatch(r"input 1, shape \(3, 2, 2, 3\): max relative error \S+ > 1e-06: "
                        r"FAILED; worst at \[\d, \d, \d, \d\]: analytic \S+, numeric \S+", line)
    assert result.report.endswith("gradcheck FAILED (central differences, h=1e-05, "
                                  "tolerance 1e-06)")
    assert capsys.readouterr().out == ""


class Square:
    """A layer a learner writes: y = x * x * scale, with a backward (right or wrong)."""

    def __init__(self, wrong: bool):
        self.wrong = wrong

    def forward(self, x, scale):
        return x * x * scale

    def backward(self, grad_y, x, scale):
        grad_x = grad_y * (x if self.wrong else 2 * x) * scale
        return grad_x, (grad_y * x * x).sum().reshape(1)


@pytest.mark.parametrize("wrong", [False, True])
def test_a_layer_the_learner_writes(wrong):
    layer, G = Square(wrong), RNG.standard_normal((3, 4))

    def f(x, scale):
        return (layer.forward(x, scale) * G).sum(), layer.backward(G, x, scale)

    x, scale = RNG.standard_normal((3, 4)), np.array([1.5])
    result = mc.gradcheck(f, [x, scale], verbose=False)
    assert result.passed is not wrong
    assert result.errors[1] < 1e-8  # d/dscale is right in both


def test_max_pool_backward_and_a_skipped_input():
    x = RNG.standard_normal((1, 2, 5, 6))  # distinct values: no kink within h
    y = F.max_pool2d(x, 2, backend="naive")
    G = RNG.standard_normal(y.shape)
    target = np.arange(3)

    def f(x, target):
        y = F.max_pool2d(x, 2, backend="naive")
        return (y * G).sum(), (F.max_pool2d_backward(G, x, 2, backend="naive"), None)

    result = mc.gradcheck(f, [x, target], verbose=False)
    assert result.passed and result.errors[1] is None
    assert "input 1, shape (3,): not checked (gradient None)" in result.report


def test_inputs_are_not_changed_and_float32_is_checked_in_float64():
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    before = x.copy()
    seen = []

    def f(x):
        seen.append(x.dtype)
        return (x ** 3).sum(), (3 * x ** 2,)

    assert mc.gradcheck(f, [x], verbose=False).passed
    assert np.array_equal(x, before) and set(seen) == {np.dtype(np.float64)}


def test_rel_error_and_numerical_gradient_are_cs231ns():
    assert rel_error(np.array([1.0]), np.array([3.0]))[0] == 0.5  # |1-3| / (1+3)
    assert rel_error(np.array([0.0]), np.array([0.0]))[0] == 0.0  # the 1e-8 floor
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    grad = numerical_gradient(lambda a: float((a ** 2).sum()), [x], 0)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-8)


def _ok(x):
    return x.sum(), (np.ones_like(x),)


@pytest.mark.parametrize("f, inputs, kwargs, error, message", [
    ("not a function", [X], {}, TypeError, "f: expected a function, got str"),
    (_ok, X, {}, TypeError, "inputs: expected a list or tuple of arrays, got ndarray "
                            "(wrap one array as [x])"),
    (_ok, [np.array(["a"])], {}, TypeError, "inputs[0]: expected a real array, got dtype <U1"),
    (_ok, [X], dict(h=0.0), ValueError, "h: expected a positive step, got 0.0"),
    (lambda x: x.sum(), [X], {}, TypeError, "f: expected it to return (value, grads)"),
    (lambda x: (x, (x,)), [X], {}, TypeError, "f: expected it to return (a scalar, "
                                                "gradients); its first value has shape (2, 2"),
    (lambda x: (x.sum(), ()), [X], {}, ValueError, "f: expected 1 gradients (one per input, "
                                                    "None to skip), got 0"),
    (lambda x: (x.sum(), (x[0],)), [X], {}, ValueError,
     "f: gradient 0 has shape (2, 5, 4), expected the input's shape (2, 2, 5, 4)"),
])
def test_bad_arguments_name_themselves(f, inputs, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        mc.gradcheck(f, inputs, **kwargs)
