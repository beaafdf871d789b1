"""Dropout and Dropout2d: zero activations at random in training, identity in eval.

``module.train()`` / ``module.eval()`` switch them. Dropout masks come from the generator of
``minitorch_cnn.init`` (``init.manual_seed`` makes them reproducible). BatchNorm2d, the other
layer with a train/eval switch, lives in :mod:`.normalization` (imported here too, where it
used to live).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .. import init
from .module import Module
from .normalization import BatchNorm2d, BatchNormCache  # noqa: F401  (their old home)


class DropoutCache(NamedTuple):
    """The scaled keep-mask: 0 where dropped, ``1 / (1 - p)`` where kept (None in eval)."""

    mask: np.ndarray | None


class Dropout(Module):
    """Zero each element with probability ``p`` in training, scale the rest by ``1/(1-p)``.

    ``y = x * mask``; ``grad_x = grad_y * mask``. Identity in eval mode.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p}")
        self.p = p

    def _check_input(self, x: np.ndarray) -> None:
        """Checks (or warnings) on ``x`` made in every mode; Dropout accepts any shape."""

    def _mask_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return x.shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check_input(x)
        if not self.training or self.p == 0.0:
            self._save(DropoutCache(None))
            return x
        if self.p == 1.0:
            mask = np.zeros(x.shape, x.dtype)
        else:
            keep = init.get_generator().random(self._mask_shape(x)) >= self.p
            mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        self._save(DropoutCache(mask))
        return x * mask

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        mask = self._restore().mask
        return grad_y if mask is None else grad_y * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _dropout2d_warning(ndim: int) -> str | None:
    """PyTorch 2.13's warning for an input of ``ndim`` dims (None for 4-D), word for word."""
    if ndim == 3:
        return (
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead."
        )
    if ndim != 4:
        return (
            f"dropout2d: Received a {ndim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs)."
        )
    return None


class Dropout2d(Dropout):
    """Drop whole channels: one mask value per ``(n, c)``, shared by every other dim.

    x : (N, C, H, W) -> mask : (N, C, 1, 1). Other shapes do what PyTorch 2.13 does, with its
    ``UserWarning`` (in eval mode too):

    - (N, C, L), 3-D: read as *batched* (N, C, L), not as an unbatched (C, H, W): mask
      (N, C, 1), so each row ``x[n, c, :]`` is kept or dropped whole;
    - (N, C), 2-D (a Linear's output, as in PyTorch's MNIST example): mask (N, C), which is
      element-wise dropout;
    - 5-D or more: mask (N, C, 1, ..., 1).

    A 1-D or 0-D input has no channel dim: in training with ``0 < p < 1`` it raises
    ValueError (PyTorch raises RuntimeError); with ``p`` 0 or 1 or in eval it passes.
    """

    def _check_input(self, x: np.ndarray) -> None:
        message = _dropout2d_warning(x.ndim)
        if message is not None:
            warnings.warn(message, UserWarning, stacklevel=4)

    def _mask_shape(self, x: np.ndarray) -> tuple[int, ...]:
        if x.ndim < 2:
            raise ValueError(
                f"Dropout2d: expected x with at least 2 dimensions (N, C, ...) (feature dropout "
                f"draws one value per (n, c)), got shape {x.shape}"
            )
        return x.shape[:2] + (1,) * (x.ndim - 2)  # (N, C, 1, 1) for (N, C, H, W)
