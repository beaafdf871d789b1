"""Activations and (Log)Softmax, each with its derivative written out.

Element-wise: ReLU, LeakyReLU, ELU, Sigmoid, Tanh, GELU, SiLU; along one dimension: Softmax,
LogSoftmax. Each caches what its derivative needs: the input (ReLU, LeakyReLU, ELU), the
output (Sigmoid, Tanh, Softmax, LogSoftmax) or the input and a gate (GELU and SiLU are
``x * gate(x)``). Names, arguments and derivatives (at the kinks too) are PyTorch's.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import NamedTuple

import numpy as np

from .. import functional as F
from ..losses import log_softmax
from .module import Module


def _real(name: str, value: object) -> float:
    """``value`` as a float; TypeError naming ``name`` if it is not a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    return float(value)


class InputCache(NamedTuple):
    """The forward input x (ReLU's derivative needs its sign)."""

    x: np.ndarray


class OutputCache(NamedTuple):
    """The forward output y (sigmoid, tanh and log-softmax derivatives are functions of y)."""

    y: np.ndarray


class ReLU(Module):
    """``y = max(x, 0)``; ``dy/dx = 0 where x <= 0, else 1`` (0 at x == 0, as PyTorch).

    The test is PyTorch's ``x <= 0``, not ``x > 0``: a NaN input passes its gradient through.
    """

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(InputCache(x))
        return F.relu(x)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        return F.relu_backward(grad_y, self._restore().x)

    def forward_flops(self, x_shape, y_shape) -> int:
        return int(np.prod(y_shape))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow: ``exp(min(x, 0)) / (1 + exp(-|x|))``.

    Both exponents are <= 0, so nothing overflows: for ``x >= 0`` this is ``1 / (1 +
    exp(-x))``, for ``x < 0`` it is ``exp(x) / (1 + exp(x))``. Written without ``np.where``,
    which NumPy does not vectorise: on LeNet's first activation, (64, 6, 28, 28) float32, the
    two-branch ``np.where`` form took 4.3 ms and this one 0.4 ms (min of 60 calls, 2-core
    AMD EPYC, NumPy 2.4).
    """
    num = np.minimum(x, 0)  # (x.shape): min(x, 0), NaN stays NaN
    np.exp(num, out=num)
    den = np.abs(x)
    np.negative(den, out=den)
    np.exp(den, out=den)
    den += 1  # 1 + exp(-|x|), in [1, 2]
    num /= den
    return num


class Sigmoid(Module):
    """``y = 1 / (1 + exp(-x))``; ``dy/dx = y * (1 - y)``."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = F.sigmoid(x)
        self._save(OutputCache(y))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        return F.sigmoid_backward(grad_y, self._restore().y)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))


class Tanh(Module):
    """``y = tanh(x)``; ``dy/dx = 1 - y**2``."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = F.tanh(x)
        self._save(OutputCache(y))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        return F.tanh_backward(grad_y, self._restore().y)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))


class LeakyReLU(Module):
    """``y = x if x > 0 else negative_slope * x``; ``dy/dx = 1 if x > 0 else negative_slope``.

    At ``x == 0`` the derivative is ``negative_slope``, as PyTorch's. x : any shape.
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = _real("negative_slope", negative_slope)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(InputCache(x))
        return np.where(x > 0, x, x * self.negative_slope)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x = self._restore().x
        return np.where(x > 0, grad_y, grad_y * self.negative_slope)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 2 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``; ``dy/dx = 1 if x > 0 else alpha * exp(x)``.

    At ``x == 0`` the derivative is ``alpha``, as PyTorch's; at a NaN input it is 1, as
    PyTorch's (its test is ``x <= 0``). ``exp`` only ever sees ``min(x, 0)``, so a large
    positive x cannot overflow. x : any shape.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = _real("alpha", alpha)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(InputCache(x))
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0)))

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x = self._restore().x
        return np.where(x <= 0, grad_y * self.alpha * np.exp(np.minimum(x, 0)), grad_y)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GateCache(NamedTuple):
    """GELU and SiLU are ``y = x * gate(x)``: backward needs x and the gate's value.

    x, gate : the input's shape. The derivative is ``gate + x * gate'(x)``.
    """

    x: np.ndarray
    gate: np.ndarray


# NumPy has no erf; math.erf, element by element, is exact to the last bit (about 0.1 s per
# million elements).
_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # the tanh approximation's k
_KAPPA = 0.044715  # the tanh approximation's cubic coefficient


class GELU(Module):
    """Gaussian error linear unit: ``y = x * Phi(x)``, Phi the standard normal CDF.

    ``approximate="none"``: ``Phi(x) = (1 + erf(x / sqrt(2))) / 2``, and
    ``dy/dx = Phi(x) + x * phi(x)`` with ``phi(x) = exp(-x**2 / 2) / sqrt(2 * pi)``.

    ``approximate="tanh"``: ``Phi(x) ~ (1 + t) / 2`` with ``t = tanh(k * (x + 0.044715 * x**3))``
    and ``k = sqrt(2 / pi)``, so ``Phi'(x) ~ (1 - t**2) / 2 * k * (1 + 3 * 0.044715 * x**2)``
    (``1 - t**2 = 4 * Phi * (1 - Phi)``). x : any shape.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.approximate == "none":
            cdf = 0.5 * (1.0 + np.asarray(_erf(x / math.sqrt(2.0)), dtype=x.dtype))
        else:
            cdf = 0.5 * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + _KAPPA * x**3)))
        cdf = cdf.astype(x.dtype, copy=False)
        self._save(GateCache(x, cdf))
        return x * cdf

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x, cdf = self._restore()
        if self.approximate == "none":
            slope = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)  # phi(x)
        else:
            slope = 2.0 * cdf * (1.0 - cdf) * _SQRT_2_OVER_PI * (1.0 + 3.0 * _KAPPA * x * x)
        return (grad_y * (cdf + x * slope)).astype(grad_y.dtype, copy=False)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 8 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """Sigmoid linear unit (swish): ``y = x * s``, ``s = sigmoid(x)``.

    ``dy/dx = s + x * s * (1 - s) = s * (1 + x * (1 - s))``. x : any shape.
    """

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: np.ndarray) -> np.ndarray:
        s = sigmoid(x)
        self._save(GateCache(x, s))
        return x * s

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x, s = self._restore()
        return grad_y * s * (1 + x * (1 - s))

    def forward_flops(self, x_shape, y_shape) -> int:
        return 5 * int(np.prod(y_shape))


def _softmax_dim(dim: object, who: str) -> int | None:
    """``dim`` as an int, or None for PyTorch's (deprecated) implicit choice."""
    if dim is None:
        return None
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{who}: dim: expected an int or None, got {type(dim).__name__}")
    return int(dim)


def _implicit_dim(ndim: int) -> int:
    """PyTorch's ``_get_softmax_dim``: 0 for 0-, 1- and 3-D input, else 1."""
    return 0 if ndim in (0, 1, 3) else 1


def _forward_dim(dim: int | None, x: np.ndarray, op: str) -> int:
    """The dim a forward normalises over; ``None`` warns with PyTorch's words and infers it."""
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the "
                      f"call to include dim=X as an argument.", UserWarning, stacklevel=3)
        return _implicit_dim(x.ndim)
    return dim


def _check_dim_fits(x: np.ndarray, dim: int, who: str) -> None:
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(
            f"{who}: dim: expected a dimension of x, in [{-x.ndim}, {x.ndim - 1}] for x of "
            f"shape {x.shape}, got {dim}"
        )


class Softmax(Module):
    """``y = exp(x) / sum(exp(x), dim)`` (stable: the max along dim is subtracted first).

    ``grad_x = y * (grad_y - sum(grad_y * y, dim))``: the Jacobian ``diag(y) - y y^T`` along
    dim, applied without forming it. x : any shape with at least one dimension; ``dim`` may
    be negative.
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = _softmax_dim(dim, "Softmax")

    def forward(self, x: np.ndarray) -> np.ndarray:
        dim = _forward_dim(self.dim, x, "softmax")
        _check_dim_fits(x, dim, "Softmax")
        e = np.exp(x - x.max(axis=dim, keepdims=True))  # every exponent <= 0: no overflow
        y = e / e.sum(axis=dim, keepdims=True)
        self._save(OutputCache(y))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        y = self._restore().y
        dim = _implicit_dim(y.ndim) if self.dim is None else self.dim
        return y * (grad_y - (grad_y * y).sum(axis=dim, keepdims=True))

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``y = x - logsumexp(x, dim)``; ``grad_x = grad_y - softmax(x) * grad_y.sum(dim)``.

    ``softmax(x) = exp(y)``, so the output is all backward needs. x : any shape with at least
    one dimension; ``dim`` may be negative.
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = _softmax_dim(dim, "LogSoftmax")

    def forward(self, x: np.ndarray) -> np.ndarray:
        dim = _forward_dim(self.dim, x, "log_softmax")
        _check_dim_fits(x, dim, "LogSoftmax")
        y = log_softmax(x, dim)
        self._save(OutputCache(y))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        y = self._restore().y
        dim = _implicit_dim(y.ndim) if self.dim is None else self.dim
        return grad_y - np.exp(y) * grad_y.sum(axis=dim, keepdims=True)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
