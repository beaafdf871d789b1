"""A numerical gradient check: central differences in float64, CS231n's relative error.

A backward pass written by hand is checked the way CS231n's assignments check it
(``eval_numerical_gradient`` and ``rel_error`` in ``gradient_check.py``): nudge one input
element by ``+h`` and by ``-h``, take ``(f(x + h) - f(x - h)) / 2h`` as the numerical
derivative, and compare it with the analytic gradient through the relative error
``|analytic - numeric| / max(1e-8, |analytic| + |numeric|)``, the largest over all elements.

``f`` returns a scalar and its analytic gradients, one per input. To check an op whose output
is an array, reduce it against a fixed random upstream gradient ``G``: the scalar
``(y * G).sum()`` has the gradients the op's backward gives for ``grad_y = G``.

    >>> import numpy as np
    >>> import minitorch_cnn as mc
    >>> from minitorch_cnn import functional as F
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 2, 3))
    >>> G = rng.standard_normal((1, 3, 4, 2))
    >>> def f(x, w):
    ...     y = F.conv2d(x, w, backend="naive")
    ...     grad_x, grad_w, _ = F.conv2d_backward(G, x, w, backend="naive")
    ...     return (y * G).sum(), (grad_x, grad_w)
    >>> mc.gradcheck(f, [x, w], verbose=False).passed
    True

How small must the error be? CS231n's rule of thumb: above 1e-2 the gradient is probably
wrong; 1e-7 and less, be happy; between 1e-4 and 1e-2 only a function with kinks (ReLU, max)
may be right. In float64, with CS231n's step ``h = 1e-5``, the correct conv2d backward of
``tests/test_gradcheck.py`` gives at most 1e-8, so the default ``tol`` is 1e-6.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    """CS231n's relative error, element by element: ``|a - n| / max(1e-8, |a| + |n|)``."""
    return np.abs(analytic - numeric) / np.maximum(1e-8, np.abs(analytic) + np.abs(numeric))


def numerical_gradient(f: Callable[..., float], inputs: Sequence[np.ndarray], i: int,
                       h: float = 1e-5) -> np.ndarray:
    """``d f(*inputs) / d inputs[i]`` by central differences, one element at a time.

    ``f`` returns a scalar. ``inputs[i]`` is changed in place and restored, element by
    element; the result has its shape. Costs ``2 * inputs[i].size`` calls of ``f``.
    """
    x = inputs[i]
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        plus = f(*inputs)
        x[index] = old - h
        minus = f(*inputs)
        x[index] = old
        grad[index] = (plus - minus) / (2 * h)
    return grad


@dataclass
class GradcheckResult:
    """What :func:`gradcheck` found: ``passed``, per input its ``errors``, the ``report``."""

    passed: bool
    errors: list[float | None]  # the largest relative error per input (None: not checked)
    report: str

    def __bool__(self) -> bool:
        return self.passed


def _scalar(value: Any) -> float:
    a = np.asarray(value, dtype=np.float64)
    if a.size != 1:
        raise TypeError(f"f: expected it to return (a scalar, gradients); its first value has "
                        f"shape {a.shape}")
    return float(a.reshape(()))


def gradcheck(f: Callable[..., tuple[Any, Sequence[np.ndarray | None]]],
              inputs: Sequence[np.ndarray], *, h: float = 1e-5, tol: float = 1e-6,
              verbose: bool = True, file: TextIO | None = None) -> GradcheckResult:
    """Compare the analytic gradients ``f`` returns with central differences, in float64.

    Parameters
    ----------
    f : callable
        ``f(*inputs) -> (value, grads)``: ``value`` a scalar, ``grads`` a sequence with one
        entry per input, the analytic ``d value / d inputs[i]`` of that input's shape, or
        ``None`` for an input not to check (an integer target, say).
    inputs : sequence of ndarray
        The point at which to check, any shapes. Converted to float64 copies; the originals
        are never changed.
    h : float
        The step of the central difference ``(f(x + h) - f(x - h)) / 2h``.
    tol : float
        The largest relative error (CS231n's, see :func:`rel_error`) that passes.
    verbose : bool
        Print the report (to ``file``, default standard output): per input, its shape and
        largest relative error, and for a failing input the worst element.

    Returns
    -------
    GradcheckResult
        ``passed`` (also its truth value), ``errors`` (per input), ``report``.
    """
    if not callable(f):
        raise TypeError(f"f: expected a function, got {type(f).__name__}")
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
        raise TypeError(f"inputs: expected a list or tuple of arrays, got "
                        f"{type(inputs).__name__} (wrap one array as [x])")
    xs = []
    for i, a in enumerate(inputs):
        a = np.asarray(a)
        if a.dtype.kind not in "fiu":
            raise TypeError(f"inputs[{i}]: expected a real array, got dtype {a.dtype}")
        xs.append(a.astype(np.float64, copy=True))
    h, tol = float(h), float(tol)
    if not h > 0:
        raise ValueError(f"h: expected a positive step, got {h}")

    value, grads = _call(f, xs)
    if len(grads) != len(xs):
        raise ValueError(f"f: expected {len(xs)} gradients (one per input, None to skip), "
                         f"got {len(grads)}")
    lines, errors, passed = [], [], True
    for i, g in enumerate(grads):
        if g is None:
            errors.append(None)
            lines.append(f"input {i}, shape {xs[i].shape}: not checked (gradient None)")
            continue
        analytic = np.array(g, dtype=np.float64)  # a copy: g may be a view of an input
        if analytic.shape != xs[i].shape:
            raise ValueError(f"f: gradient {i} has shape {analytic.shape}, expected the "
                             f"input's shape {xs[i].shape}")
        numeric = numerical_gradient(lambda *a: _scalar(f(*a)[0]), xs, i, h)
        error = rel_error(analytic, numeric)
        worst = np.unravel_index(int(np.argmax(error)), error.shape) if error.size else ()
        errors.append(float(error.max()) if error.size else 0.0)
        ok = errors[-1] <= tol
        passed &= ok
        line = f"input {i}, shape {xs[i].shape}: max relative error {errors[-1]:.2e}"
        if not ok:
            at = tuple(int(k) for k in worst)
            line += (f" > {tol:g}: FAILED; worst at {list(at)}: analytic {analytic[at]:.8g}, "
                     f"numeric {numeric[at]:.8g}")
        lines.append(line)
    lines.append(f"gradcheck {'passed' if passed else 'FAILED'} (central differences, "
                 f"h={h:g}, tolerance {tol:g})")
    result = GradcheckResult(passed, errors, "\n".join(lines))
    if verbose:
        print(result.report, file=file or sys.stdout)
    return result


def _call(f, xs):
    out = f(*xs)
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("f: expected it to return (value, grads), a scalar and one gradient "
                        f"per input; got {type(out).__name__}")
    value, grads = out
    return _scalar(value), list(grads)
