"""Linear (fully connected) and Flatten: plain NumPy, no kernel backend needed."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import init
from .module import Module, Parameter


class LinearCache(NamedTuple):
    """What Linear's backward needs: the input x : (N, in_features)."""

    x: np.ndarray


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
        y = x @ self.weight.data.T  # (N, in) @ (in, out) -> (N, out)
        if self.bias is not None:
            y += self.bias.data
        self._save(LinearCache(x))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x = self._restore().x
        self.weight.accumulate_grad(grad_y.T @ x)  # (out, N) @ (N, in) -> (out, in)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_y.sum(axis=0))
        return grad_y @ self.weight.data  # (N, out) @ (out, in) -> (N, in)

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
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        shape = x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]
        self._save(FlattenCache(x.shape))
        return x.reshape(shape)  # (N, C, H, W) -> (N, C*H*W) for the defaults

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x_shape = self._restore().x_shape
        return grad_y.reshape(x_shape)  # (N, C*H*W) -> (N, C, H, W)
