"""Layers with explicit forward and backward, PyTorch's names, shapes and initialisation.

Read :mod:`.module` first (Parameter, Module, Sequential: the protocol), then the layers:
:mod:`.linear`, :mod:`.activation`, :mod:`.conv` and :mod:`.pooling` (over
``minitorch_cnn.functional``), :mod:`.regularization` (dropout), :mod:`.normalization`
(batch, layer and group norm) and :mod:`.blocks` (residual, Inception).
The losses live in :mod:`minitorch_cnn.losses` and are re-exported here as PyTorch does.
"""

from ..losses import CrossEntropyLoss, NLLLoss
from .activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from .blocks import InceptionA, Residual, ResidualBlock
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, MaxPool2d
from .conv_transpose import ConvTranspose2d
from .linear import Flatten, Linear
from .module import Module, Parameter, Sequential
from .normalization import BatchNorm2d, GroupNorm, LayerNorm
from .pooling import AdaptiveMaxPool2d, MaxUnpool2d
from .regularization import Dropout, Dropout2d

__all__ = [
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Dropout2d",
    "ELU",
    "Flatten",
    "GELU",
    "GroupNorm",
    "InceptionA",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "MaxUnpool2d",
    "Module",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Residual",
    "ResidualBlock",
    "Sequential",
    "Sigmoid",
    "SiLU",
    "Softmax",
    "Tanh",
]
