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

from .. import functional as F
from .. import init
from .module import Module
from .normalization import BatchNorm2d, BatchNormCache  # noqa: F401  (their old home)


class DropoutCache(NamedTuple):
    """What the forward drew: the keep-mask (uint8, 1 kept, 0 dropped, where x lives; None
    in eval or with p == 0), x's shape and dtype, and whether whole channels were dropped
    (Dropout2d: an (N, C) mask, one draw per channel).
    """

    keep: object | None
    p: float = 0.0
    shape: tuple[int, ...] = ()
    dtype: np.dtype | None = None
    channels: bool = False

    @property
    def mask(self) -> np.ndarray | None:
        """The noise ``y = x * mask`` multiplied by, as a NumPy array for inspection: 0 where
        dropped, ``1 / (1 - p)`` (in x's dtype) where kept; x's shape, or (N, C, 1, ..., 1)
        for Dropout2d. Not used by backward, which passes ``keep`` to the F op.
        """
        if self.keep is None:
            return None
        keep = self.keep if isinstance(self.keep, np.ndarray) else self.keep.copy_to_host()
        T = np.dtype(self.dtype).type
        scale = T(0) if self.p == 1.0 else T(1) / T(1.0 - self.p)
        noise = keep.astype(self.dtype) * scale
        if self.channels:
            noise = noise.reshape(tuple(self.shape[:2]) + (1,) * (len(self.shape) - 2))
        return noise


def _random_seed() -> int:
    """A fresh ``random_seed`` for the dropout kernels, drawn from ``init``'s generator."""
    return int(init.get_generator().integers(2**63))


class Dropout(Module):
    """Zero each element with probability ``p`` in training, scale the rest by ``1/(1-p)``.

    ``y = x * keep / (1 - p)``; ``grad_x = grad_y * keep / (1 - p)``. Identity in eval mode.
    Each forward draws a ``random_seed`` from ``minitorch_cnn.init``'s generator (so
    ``init.manual_seed`` makes the masks reproducible) and calls
    :func:`minitorch_cnn.functional.dropout`, which draws the mask where ``x`` lives.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p}")
        self.p = p

    def _check_input(self, x: np.ndarray) -> None:
        """Checks (or warnings) on ``x`` made in every mode; Dropout accepts any shape."""

    def _channels(self, x: np.ndarray) -> bool:
        """Whether this forward drops whole channels (Dropout2d) rather than elements."""
        return False

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check_input(x)
        if not self.training or self.p == 0.0:
            self._save(DropoutCache(None))
            return x
        channels = self._channels(x)
        drop = F.dropout2d if channels else F.dropout
        y, keep = drop(x, self.p, random_seed=_random_seed(), return_mask=True)
        self._save(DropoutCache(keep, self.p, tuple(x.shape), np.dtype(x.dtype), channels))
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        cache = self._restore()
        if cache.keep is None:
            return grad_y
        if cache.channels:
            return F.dropout2d_backward(grad_y, cache.keep, cache.p)
        return F.dropout_backward(grad_y, cache.keep, cache.p)

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

    x : (N, C, H, W) -> mask : (N, C), broadcast over H, W by
    :func:`minitorch_cnn.functional.dropout2d`. Other shapes do what PyTorch 2.13 does, with its
    ``UserWarning`` (in eval mode too):

    - (N, C, L), 3-D: read as *batched* (N, C, L), not as an unbatched (C, H, W): mask
      (N, C), so each row ``x[n, c, :]`` is kept or dropped whole;
    - (N, C), 2-D (a Linear's output, as in PyTorch's MNIST example): mask (N, C), which is
      element-wise dropout;
    - 5-D or more: mask (N, C), shared by all the dims after C.

    A 1-D or 0-D input has no channel dim: in training with ``0 < p < 1`` it raises
    ValueError (PyTorch raises RuntimeError); with ``p`` 0 or 1 or in eval it passes.
    """

    def _check_input(self, x: np.ndarray) -> None:
        message = _dropout2d_warning(x.ndim)
        if message is not None:
            warnings.warn(message, UserWarning, stacklevel=4)

    def _channels(self, x: np.ndarray) -> bool:
        if x.ndim >= 2:
            return True  # F.dropout2d: one draw per (n, c), (N, C) mask
        if self.p == 1.0:
            return False  # everything is dropped: element-wise is the same
        raise ValueError(
            f"Dropout2d: expected x with at least 2 dimensions (N, C, ...) (feature dropout "
            f"draws one value per (n, c)), got shape {x.shape}"
        )
