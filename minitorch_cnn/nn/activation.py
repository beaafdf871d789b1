"""Activations and (Log)Softmax, each with its derivative written out.

Element-wise: ReLU, LeakyReLU, ELU, Sigmoid, Tanh, GELU, SiLU; along one dimension: Softmax,
LogSoftmax. Each caches what its derivative needs: the input (ReLU, LeakyReLU, ELU), the
output (Sigmoid, Tanh, Softmax, LogSoftmax); GELU and SiLU keep their input too. Every
forward and backward is one call of :mod:`minitorch_cnn.functional`, so a layer runs on any
backend, a CUDA device array in and out (LogSoftmax along any but the last dim is NumPy
only). Names, arguments and derivatives (at the kinks too) are PyTorch's.
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np

from .. import functional as F
from ..device import is_device_array
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
        return F.leaky_relu(x, self.negative_slope)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        return F.leaky_relu_backward(grad_y, self._restore().x, self.negative_slope)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 2 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``; ``dy/dx = 1 if x > 0 else alpha * exp(x)``.

    At ``x == 0`` the derivative is ``alpha``, as PyTorch's; at a NaN input it is 1, as
    PyTorch's scalar loop (its test is ``x <= 0``; its vectorised loop gives NaN there, so
    PyTorch itself answers either, by the element's position). x : any shape.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = _real("alpha", alpha)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(InputCache(x))
        return F.elu(x, self.alpha)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        return F.elu_backward(grad_y, self._restore().x, self.alpha)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(Module):
    """Gaussian error linear unit: ``y = x * Phi(x)``, Phi the standard normal CDF.

    ``approximate="none"``: ``Phi(x) = (1 + erf(x / sqrt(2))) / 2``, and
    ``dy/dx = Phi(x) + x * phi(x)`` with ``phi(x) = exp(-x**2 / 2) / sqrt(2 * pi)``.

    ``approximate="tanh"``: ``Phi(x) ~ (1 + t) / 2`` with ``t = tanh(k * (x + 0.044715 * x**3))``
    and ``k = sqrt(2 / pi)``, so ``Phi'(x) ~ (1 - t**2) / 2 * k * (1 + 3 * 0.044715 * x**2)``.
    Both through :func:`minitorch_cnn.functional.gelu`; backward needs the input only.
    x : any shape.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(InputCache(x))
        return F.gelu(x, self.approximate)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        return F.gelu_backward(grad_y, self._restore().x, self.approximate)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 8 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """Sigmoid linear unit (swish): ``y = x * s``, ``s = sigmoid(x)``.

    ``dy/dx = s + x * s * (1 - s) = s * (1 + x * (1 - s))``; backward needs the input only.
    x : any shape.
    """

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(InputCache(x))
        return F.silu(x)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        return F.silu_backward(grad_y, self._restore().x)

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
        y = F.softmax(x, dim)
        self._save(OutputCache(y))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        y = self._restore().y
        dim = _implicit_dim(y.ndim) if self.dim is None else self.dim
        return F.softmax_backward(grad_y, y, dim)

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
        shape = tuple(x.shape)  # a tuple: the simulator's shape takes no negative index
        if dim % len(shape) == len(shape) - 1:  # the last dim: F's (rows, C) op, any backend
            rows = (int(np.prod(shape[:-1])), shape[-1])
            y = F.log_softmax(x.reshape(rows), 1).reshape(shape)
        else:  # another dim: NumPy only (F.log_softmax takes the class axis last)
            if is_device_array(x):
                raise ValueError(
                    f"LogSoftmax(dim={self.dim}): on the device only over the last dim of x "
                    f"(F.log_softmax's class axis), got dim {dim} of shape {shape}; move "
                    f"that axis last, or run this layer on the host")
            y = log_softmax(x, dim)
        self._save(OutputCache(y))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        y = self._restore().y
        dim = _implicit_dim(y.ndim) if self.dim is None else self.dim
        shape = tuple(y.shape)
        if dim % len(shape) == len(shape) - 1:
            rows = (int(np.prod(shape[:-1])), shape[-1])
            return F.log_softmax_backward(grad_y.reshape(rows), y.reshape(rows), 1).reshape(
                shape)
        return grad_y - np.exp(y) * grad_y.sum(axis=dim, keepdims=True)

    def forward_flops(self, x_shape, y_shape) -> int:
        return 4 * int(np.prod(y_shape))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
