"""Layers with explicit forward and backward, PyTorch's names, shapes and initialisation.

Read :mod:`.module` first (Parameter, Module, Sequential: the protocol), then the layers:
:mod:`.linear`, :mod:`.activation`, :mod:`.conv` (over ``minitorch_cnn.functional``),
:mod:`.regularization` (dropout, batch norm) and :mod:`.blocks` (residual, Inception).
The losses live in :mod:`minitorch_cnn.losses` and are re-exported here as PyTorch does.
"""

from ..losses import CrossEntropyLoss, NLLLoss
from .activation import LogSoftmax, ReLU, Sigmoid, Tanh
from .blocks import InceptionA, Residual, ResidualBlock
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv2d, MaxPool2d
from .linear import Flatten, Linear
from .module import Module, Parameter, Sequential
from .regularization import BatchNorm2d, Dropout, Dropout2d

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Dropout2d",
    "Flatten",
    "InceptionA",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "Module",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Residual",
    "ResidualBlock",
    "Sequential",
    "Sigmoid",
    "Tanh",
]
