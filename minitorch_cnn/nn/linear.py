"""Linear (fully connected) and Flatten, on ``F.linear`` / ``F.linear_backward`` and ``F.flatten``.

Both run on the current backend (``minitorch_cnn.backend``), as the conv layers do.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import functional as F
from .. import init
from .module import ModelInput, Module, Parameter, model_input, needs_grad_x


class LinearCache(NamedTuple):
    """What Linear's backward needs: the input x, and whether x is the model's input."""

    x: np.ndarray  # (N, in_features)
    model_input: ModelInput | None  # set when x is the input of a model that needs no grad_x


class Linear(Module):
    """``y = x @ weight.T + bias``.

    weight : (out_features, in_features); bias : (out_features,) or absent.
    x : (N, in_features) -> y : (N, out_features). Initialised as PyTorch's Linear.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_features, np.float32))
        else:
            self.register_parameter("bias", None)
        init.default_weight_and_bias_(self.weight, self.bias)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Linear: expected x of shape (N, {self.in_features}), got {x.shape}"
            )
        if x.dtype != self.weight.dtype:
            raise TypeError(
                f"Linear: x has dtype {x.dtype}, the weight {self.weight.dtype}; cast one "
                f"(model.to(dtype) or x.astype(...))"
            )
        bias = None if self.bias is None else self.bias.data
        y = F.linear(x, self.weight.data, bias)  # (N, in) -> (N, out)
        self._save(LinearCache(x, model_input(x)))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray | None:
        """Add grad_weight (out, in) and grad_bias (out,) to the parameters; return grad_x.

        grad_x (N, in) is skipped, and ``None`` returned, when this layer alone read the
        input of a model with ``needs_input_grad = False`` (:mod:`.module`).
        """
        cache = self._restore()
        need_x = needs_grad_x(cache.model_input)
        grad_x, grad_weight, grad_bias = F.linear_backward(
            grad_y, cache.x, self.weight.data,
            needs_input_grad=(need_x, True, self.bias is not None))
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_bias)
        return grad_x

    def forward_flops(self, x_shape, y_shape) -> int:
        N = x_shape[0]
        return 2 * N * self.in_features * self.out_features + (
            N * self.out_features if self.bias is not None else 0
        )

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class FlattenCache(NamedTuple):
    """The input shape, to un-flatten the gradient."""

    x_shape: tuple[int, ...]


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim``: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(FlattenCache(x.shape))
        return F.flatten(x, self.start_dim, self.end_dim)  # (N, C, H, W) -> (N, C*H*W)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x_shape = self._restore().x_shape
        return grad_y.reshape(x_shape)  # (N, C*H*W) -> (N, C, H, W)
