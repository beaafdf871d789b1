"""The blocks of the CNN (advanced) lecture of "PyTorch Deep Learning Practice": residual
blocks and an Inception block.

Their backward passes show the two rules every multi-branch network needs:

- a *sum* of branches (``y = f(x) + x``) passes ``grad_y`` unchanged to every branch, and the
  gradients arriving at ``x`` from the branches are *added*;
- a channel *concatenation* splits ``grad_y`` along the channel axis, one slice per branch.

The sums are ``F.add`` and the concatenation ``F.cat`` / ``F.cat_backward``, so a block runs
on any backend, CUDA device arrays in and out, as its convolutions do.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import functional as F
from .activation import ReLU
from .conv import AvgPool2d, Conv2d
from .module import Module
from .regularization import BatchNorm2d


class ResidualBlock(Module):
    """The lecture's residual block: identity shortcut, no batch norm, shape-preserving.

    ``y = relu(x + conv2(relu(conv1(x))))``, both convs ``channels -> channels``, 3x3,
    padding 1. x : (N, channels, H, W) -> y : (N, channels, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = Conv2d(channels, channels, kernel_size=3, padding=1)
        self.relu1 = ReLU()
        self.relu2 = ReLU()

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self.conv2(self.relu1(self.conv1(x)))
        return self.relu2(F.add(x, y))

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        grad_sum = self.relu2.backward(grad_y)  # goes to both terms of x + y
        grad_main = self.conv1.backward(self.relu1.backward(self.conv2.backward(grad_sum)))
        return F.add(grad_main, grad_sum)  # the shortcut's gradient is grad_sum itself


class Residual(Module):
    """d2l's ResNet block: two 3x3 conv + batch norm, identity or 1x1-projection shortcut.

    ``y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` with ``shortcut = conv3``
    (1x1, ``stride=strides``) when ``use_1x1conv`` else the identity.
    x : (N, input_channels, H, W) -> y : (N, num_channels, H', W'), ``H' = ceil(H / strides)``.
    """

    def __init__(self, input_channels: int, num_channels: int, use_1x1conv: bool = False,
                 strides: int = 1) -> None:
        super().__init__()
        self.conv1 = Conv2d(input_channels, num_channels, kernel_size=3, padding=1,
                            stride=strides)
        self.conv2 = Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = BatchNorm2d(num_channels)
        self.bn2 = BatchNorm2d(num_channels)
        self.relu1 = ReLU()
        self.relu2 = ReLU()

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.conv3 is None else self.conv3(x)
        return self.relu2(F.add(y, shortcut))

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        grad_sum = self.relu2.backward(grad_y)  # reaches both the main path and the shortcut
        grad_short = grad_sum if self.conv3 is None else self.conv3.backward(grad_sum)
        grad = self.bn2.backward(grad_sum)
        grad = self.conv2.backward(grad)
        grad = self.relu1.backward(grad)
        grad = self.bn1.backward(grad)
        grad_main = self.conv1.backward(grad)
        return F.add(grad_main, grad_short)


class ConcatCache(NamedTuple):
    """Channel counts of the concatenated branches, to split the gradient back."""

    channels: tuple[int, ...]


class InceptionA(Module):
    """The lecture's Inception block (InceptionA): four branches concatenated, 88 channels out.

    branch1x1: 1x1 conv -> 16; branch5x5: 1x1 -> 16, 5x5 (pad 2) -> 24;
    branch3x3dbl: 1x1 -> 16, 3x3 (pad 1) -> 24, 3x3 (pad 1) -> 24;
    branch_pool: 3x3 average pool (stride 1, pad 1) then 1x1 conv -> 24.
    x : (N, in_channels, H, W) -> y : (N, 16 + 24 + 24 + 24 = 88, H, W).
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_1 = Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_2 = Conv2d(16, 24, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = Conv2d(in_channels, 16, kernel_size=1)
        self.branch3x3dbl_2 = Conv2d(16, 24, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = Conv2d(24, 24, kernel_size=3, padding=1)
        self.branch_pool = Conv2d(in_channels, 24, kernel_size=1)
        self.pool = AvgPool2d(kernel_size=3, stride=1, padding=1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(self.pool(x))
        outputs = [b1, b5, b3, bp]
        self._save(ConcatCache(tuple(o.shape[1] for o in outputs)))
        return F.cat(outputs, 1)  # (N, 16 + 24 + 24 + 24, H, W)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        channels = self._restore().channels
        g1, g5, g3, gp = F.cat_backward(grad_y, list(channels), 1)  # each (N, C_branch, H, W)
        grad_x = self.branch1x1.backward(g1)
        grad_x = F.add(grad_x, self.branch5x5_1.backward(self.branch5x5_2.backward(g5)))
        grad_x = F.add(grad_x, self.branch3x3dbl_1.backward(self.branch3x3dbl_2.backward(
            self.branch3x3dbl_3.backward(g3))))
        return F.add(grad_x, self.pool.backward(self.branch_pool.backward(gp)))
