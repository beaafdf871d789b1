"""The networks of the books and lectures the project follows, built from ``minitorch_cnn.nn``.

Each model is the one its source defines, layer for layer, and has a PyTorch twin of the same
name in ``reference.models``, written as the source writes it, with the same parameter names
and shapes: ``twin.load_state_dict(...)`` moves weights across, and the tests check that both
give the same outputs, gradients and SGD updates.

=================================  ============================================  =======  ==========
name                               source                                        input    parameters
=================================  ============================================  =======  ==========
``lenet5``                         d2l, "LeNet" (sigmoid, average pooling)       1x28x28      61,706
``mnist_cnn``                      Liu Er, "PyTorch Deep Learning Practice",     1x28x28       8,490
                                   lecture 10 (CNN basics): the MNIST net
``mnist_cnn3``                     lecture 10, exercise 10-1: 3 convs, 3 ReLUs,  1x28x28      34,522
                                   3 max pools, 3 Linears (16/32/64, 64-32-16)
``residual_net``                   lecture 11 (CNN advanced): the residual net   1x28x28      41,514
``residual_net_constant_scaling``  lecture 11, exercise 11-1: He et al. 2016,    1x28x28      41,514
                                   Fig. 2(b), ``relu(0.5 x + 0.5 F(x))``
``residual_net_conv_shortcut``     exercise 11-1: Fig. 2(e), 1x1-conv shortcut   1x28x28      42,842
``inception_net``                  lecture 11: two InceptionA blocks             1x28x28      97,298
``simple_cnn``                     pytorch/examples ``mnist/main.py`` ``Net``,   1x28x28   1,199,882
                                   2020 version (two ``Dropout2d``)
``resnet18``                       d2l, "Residual Networks (ResNet)"             1x96x96  11,178,378
``dlwpt_net``                      "Deep Learning with PyTorch" (Stevens,        3x32x32      18,090
                                   Antiga, Viehmann), 8.3: CIFAR-2 ``Net``
``dlwpt_net_5x5``                  the same, 8.7 exercise 1: ``Net`` with 5x5    3x32x32      20,906
``dlwpt_netres``                   the same, 8.5.3: ``NetRes(n_chans1=32)``      3x32x32      16,130
=================================  ============================================  =======  ==========

:data:`INPUT_SHAPES` gives each model's ``(C, H, W)`` and :data:`NUM_CLASSES` its number of
outputs (the CIFAR-2 nets tell airplanes from birds: 2). ``resnet18`` is fully convolutional
up to a global average pool, so it takes other input sizes too; at 28x28 or 32x32 its last
stage sees a 1x1 map, which batch norm in training accepts only for batches of more than one.

The sources reuse one ``MaxPool2d`` object at several positions and call ``F.relu`` /
``torch.tanh``; here every position has its own module, as it reads more plainly in a
``Sequential`` (a module may also be used twice: its caches form a stack). This changes no
state-dict key because pooling and activations hold no parameters.
"""

from __future__ import annotations

import numpy as np

from .nn import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout2d,
    Flatten,
    InceptionA,
    Linear,
    LogSoftmax,
    MaxPool2d,
    Module,
    ReLU,
    Residual,
    ResidualBlock,
    Sequential,
    Sigmoid,
    Tanh,
)

# ------------------------------------------------------------------------------ d2l


def lenet5() -> Sequential:
    """d2l's LeNet-5 (sigmoid activations, average pooling): (N, 1, 28, 28) -> (N, 10)."""
    return Sequential(
        Conv2d(1, 6, kernel_size=5, padding=2), Sigmoid(),  # (N, 6, 28, 28)
        AvgPool2d(kernel_size=2, stride=2),  # (N, 6, 14, 14)
        Conv2d(6, 16, kernel_size=5), Sigmoid(),  # (N, 16, 10, 10)
        AvgPool2d(kernel_size=2, stride=2),  # (N, 16, 5, 5)
        Flatten(),  # (N, 400)
        Linear(16 * 5 * 5, 120), Sigmoid(),
        Linear(120, 84), Sigmoid(),
        Linear(84, 10),
    )


def resnet_block(input_channels: int, num_channels: int, num_residuals: int,
                 first_block: bool = False) -> list[Residual]:
    """d2l's stage of residual blocks; all but the first stage halve H and W."""
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blocks.append(Residual(num_channels, num_channels))
    return blocks


def resnet18(num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """d2l's ResNet-18: (N, in_channels, H, W) -> (N, num_classes); 96x96 in d2l."""
    b1 = Sequential(
        Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),  # (N, 64, H/2, W/2)
        BatchNorm2d(64), ReLU(),
        MaxPool2d(kernel_size=3, stride=2, padding=1),  # (N, 64, H/4, W/4)
    )
    b2 = Sequential(*resnet_block(64, 64, 2, first_block=True))  # (N, 64, H/4, W/4)
    b3 = Sequential(*resnet_block(64, 128, 2))  # (N, 128, H/8, W/8)
    b4 = Sequential(*resnet_block(128, 256, 2))  # (N, 256, H/16, W/16)
    b5 = Sequential(*resnet_block(256, 512, 2))  # (N, 512, H/32, W/32)
    return Sequential(b1, b2, b3, b4, b5, AdaptiveAvgPool2d((1, 1)), Flatten(),
                      Linear(512, num_classes))


# ------------------------------------------- Liu Er, "PyTorch Deep Learning Practice"


class MnistCNN(Module):
    """Lecture 10 (CNN basics), the MNIST net: (N, 1, 28, 28) -> logits (N, 10).

    Conv2d(1, 10, 5), MaxPool2d(2), ReLU -> (N, 10, 12, 12);
    Conv2d(10, 20, 5), MaxPool2d(2), ReLU -> (N, 20, 4, 4); view -> (N, 320); Linear(320, 10).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2d(1, 10, kernel_size=5)
        self.conv2 = Conv2d(10, 20, kernel_size=5)
        self.fc = Linear(320, 10)
        self.pool1, self.relu1 = MaxPool2d(2), ReLU()
        self.pool2, self.relu2 = MaxPool2d(2), ReLU()
        self.flatten = Flatten()

    def forward(self, x):
        x = self.relu1(self.pool1(self.conv1(x)))  # (N, 10, 12, 12)
        x = self.relu2(self.pool2(self.conv2(x)))  # (N, 20, 4, 4)
        return self.fc(self.flatten(x))  # (N, 320) -> (N, 10)

    def backward(self, grad_y):
        grad = self.flatten.backward(self.fc.backward(grad_y))  # (N, 20, 4, 4)
        grad = self.conv2.backward(self.pool2.backward(self.relu2.backward(grad)))
        return self.conv1.backward(self.pool1.backward(self.relu1.backward(grad)))


class MnistCNN3(Module):
    """Lecture 10, exercise 10-1: "Conv2d Layer x3, ReLU Layer x3, MaxPooling Layer x3,
    Linear Layer x3", channels 16/32/64, Linear 64-32-16-10.

    The exercise gives the counts; the rest is the lecture's own MNIST net, extended:
    each stage is ``relu(pooling(conv(x)))`` with ``MaxPool2d(2)``, no padding; kernel 5 for
    the first two convs (as the lecture's) and 3 for the third, the only choice that leaves
    a 1x1 map, so that 64 channels flatten to the 64 inputs of the first Linear. The three
    ReLUs are the stages' (the exercise lists three), so the three Linears follow one
    another without an activation::

        (N, 1, 28, 28) -Conv2d(1, 16, 5)->  (N, 16, 24, 24) -MaxPool2d(2), ReLU-> (N, 16, 12, 12)
                       -Conv2d(16, 32, 5)-> (N, 32, 8, 8)   -MaxPool2d(2), ReLU-> (N, 32, 4, 4)
                       -Conv2d(32, 64, 3)-> (N, 64, 2, 2)   -MaxPool2d(2), ReLU-> (N, 64, 1, 1)
                       -view-> (N, 64) -Linear(64, 32)-> -Linear(32, 16)-> -Linear(16, 10)->

    34,522 parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2d(1, 16, kernel_size=5)
        self.conv2 = Conv2d(16, 32, kernel_size=5)
        self.conv3 = Conv2d(32, 64, kernel_size=3)
        self.fc1 = Linear(64, 32)
        self.fc2 = Linear(32, 16)
        self.fc3 = Linear(16, 10)
        self.pool1, self.relu1 = MaxPool2d(2), ReLU()
        self.pool2, self.relu2 = MaxPool2d(2), ReLU()
        self.pool3, self.relu3 = MaxPool2d(2), ReLU()
        self.flatten = Flatten()

    def forward(self, x):
        x = self.relu1(self.pool1(self.conv1(x)))  # (N, 16, 12, 12)
        x = self.relu2(self.pool2(self.conv2(x)))  # (N, 32, 4, 4)
        x = self.relu3(self.pool3(self.conv3(x)))  # (N, 64, 1, 1)
        return self.fc3(self.fc2(self.fc1(self.flatten(x))))  # (N, 64) -> 32 -> 16 -> 10

    def backward(self, grad_y):
        grad = self.fc1.backward(self.fc2.backward(self.fc3.backward(grad_y)))  # (N, 64)
        grad = self.flatten.backward(grad)  # (N, 64, 1, 1)
        grad = self.conv3.backward(self.pool3.backward(self.relu3.backward(grad)))
        grad = self.conv2.backward(self.pool2.backward(self.relu2.backward(grad)))
        return self.conv1.backward(self.pool1.backward(self.relu1.backward(grad)))


SHORTCUTS = ("identity", "constant_scaling", "conv_shortcut")
"""The residual blocks of :class:`ResidualNet`, after He et al. 2016, Fig. 2 (a), (b), (e)."""


class ResidualBlockVariant(Module):
    """Lecture 11's residual block with a shortcut of exercise 11-1 (He et al. 2016, Fig. 2).

    The exercise asks to implement the variants of "Identity Mappings in Deep Residual
    Networks" (He, Zhang, Ren, Sun, 2016) on the lecture's block
    ``y = relu(x + conv2(relu(conv1(x))))`` (:class:`nn.ResidualBlock`, their Fig. 2(a)).
    With ``F(x) = conv2(relu(conv1(x)))``:

    - ``"constant_scaling"`` (Fig. 2(b), Table 1's converging case 0.5 / 0.5):
      ``y = relu(0.5 * x + 0.5 * F(x))``;
    - ``"conv_shortcut"`` (Fig. 2(e), "1x1 conv shortcut"): ``y = relu(conv3(x) + F(x))``,
      ``conv3 = Conv2d(channels, channels, 1)``.

    x : (N, channels, H, W) -> y : (N, channels, H, W). Backward: the sum passes
    ``g = relu'.grad`` to both terms, scaled by 0.5 for constant scaling, and the two
    gradients arriving at ``x`` add up.
    """

    def __init__(self, channels: int, shortcut: str) -> None:
        super().__init__()
        if shortcut not in SHORTCUTS[1:]:
            raise ValueError(f"shortcut: expected one of {SHORTCUTS[1:]}, got {shortcut!r}")
        self.channels, self.shortcut = channels, shortcut
        self.conv1 = Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = Conv2d(channels, channels, kernel_size=3, padding=1)
        if shortcut == "conv_shortcut":
            self.conv3 = Conv2d(channels, channels, kernel_size=1)
        self.relu1, self.relu2 = ReLU(), ReLU()

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self.conv2(self.relu1(self.conv1(x)))  # F(x): (N, C, H, W)
        if self.shortcut == "constant_scaling":
            return self.relu2(0.5 * x + 0.5 * y)
        return self.relu2(self.conv3(x) + y)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        grad_sum = self.relu2.backward(grad_y)  # reaches both terms of the sum
        if self.shortcut == "constant_scaling":
            grad_sum = 0.5 * grad_sum
            grad_short = grad_sum
        else:
            grad_short = self.conv3.backward(grad_sum)
        grad_main = self.conv1.backward(self.relu1.backward(self.conv2.backward(grad_sum)))
        return grad_main + grad_short


class ResidualNet(Module):
    """Lecture 11's residual net: (N, 1, 28, 28) -> logits (N, 10).

    Conv2d(1, 16, 5), ReLU, MaxPool2d(2) -> (N, 16, 12, 12); residual block (16 channels);
    Conv2d(16, 32, 5), ReLU, MaxPool2d(2) -> (N, 32, 4, 4); residual block (32 channels);
    view -> (N, 512); Linear(512, 10). ``shortcut`` picks the block (:data:`SHORTCUTS`):
    ``"identity"`` is the lecture's :class:`nn.ResidualBlock`, the others exercise 11-1's
    :class:`ResidualBlockVariant`.
    """

    def __init__(self, shortcut: str = "identity") -> None:
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut: expected one of {SHORTCUTS}, got {shortcut!r}")
        self.conv1 = Conv2d(1, 16, kernel_size=5)
        self.conv2 = Conv2d(16, 32, kernel_size=5)
        if shortcut == "identity":
            self.rblock1, self.rblock2 = ResidualBlock(16), ResidualBlock(32)
        else:
            self.rblock1 = ResidualBlockVariant(16, shortcut)
            self.rblock2 = ResidualBlockVariant(32, shortcut)
        self.fc = Linear(512, 10)
        self.relu1, self.pool1 = ReLU(), MaxPool2d(2)
        self.relu2, self.pool2 = ReLU(), MaxPool2d(2)
        self.flatten = Flatten()

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))  # (N, 16, 12, 12)
        x = self.rblock1(x)  # (N, 16, 12, 12)
        x = self.pool2(self.relu2(self.conv2(x)))  # (N, 32, 4, 4)
        x = self.rblock2(x)  # (N, 32, 4, 4)
        return self.fc(self.flatten(x))  # (N, 512) -> (N, 10)

    def backward(self, grad_y):
        grad = self.rblock2.backward(self.flatten.backward(self.fc.backward(grad_y)))
        grad = self.conv2.backward(self.relu2.backward(self.pool2.backward(grad)))
        grad = self.rblock1.backward(grad)
        return self.conv1.backward(self.relu1.backward(self.pool1.backward(grad)))


class InceptionNet(Module):
    """Lecture 11's Inception net: (N, 1, 28, 28) -> (N, 10); InceptionA gives 88 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2d(1, 10, kernel_size=5)
        self.conv2 = Conv2d(88, 20, kernel_size=5)
        self.incep1 = InceptionA(in_channels=10)
        self.incep2 = InceptionA(in_channels=20)
        self.fc = Linear(1408, 10)
        self.pool1, self.relu1 = MaxPool2d(2), ReLU()
        self.pool2, self.relu2 = MaxPool2d(2), ReLU()
        self.flatten = Flatten()

    def forward(self, x):
        x = self.relu1(self.pool1(self.conv1(x)))  # (N, 10, 12, 12)
        x = self.incep1(x)  # (N, 88, 12, 12)
        x = self.relu2(self.pool2(self.conv2(x)))  # (N, 20, 4, 4)
        x = self.incep2(x)  # (N, 88, 4, 4)
        return self.fc(self.flatten(x))  # (N, 1408) -> (N, 10)

    def backward(self, grad_y):
        grad = self.incep2.backward(self.flatten.backward(self.fc.backward(grad_y)))
        grad = self.conv2.backward(self.pool2.backward(self.relu2.backward(grad)))
        grad = self.incep1.backward(grad)
        return self.conv1.backward(self.pool1.backward(self.relu1.backward(grad)))


# ------------------------------------------------------ pytorch/examples, mnist/main.py


class SimpleCNN(Module):
    """The MNIST walk-through's model: ``Net`` of pytorch/examples ``mnist/main.py``.

    The version of 2020-03-04 (commit dce9319, "added missing non-linearity") to 2020-10-10
    (commit 0f0c913 replaced both ``Dropout2d`` by ``Dropout``)::

        (N, 1, 28, 28) -Conv2d(1, 32, 3, 1), ReLU-> (N, 32, 26, 26)
                       -Conv2d(32, 64, 3, 1), ReLU-> (N, 64, 24, 24) -max_pool2d(2)-> 12x12
                       -Dropout2d(0.25)-> -flatten-> (N, 9216) -Linear(9216, 128), ReLU->
                       -Dropout2d(0.5)-> -Linear(128, 10)-> -log_softmax(dim=1)-> (N, 10)

    Returns log-probabilities (train with NLLLoss). ``dropout2`` sees the 2-D (N, 128)
    output of ``fc1``: it drops single elements and warns, as ``torch.nn.Dropout2d`` does
    on that model. 1,199,882 parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2d(1, 32, 3, 1)
        self.conv2 = Conv2d(32, 64, 3, 1)
        self.dropout1 = Dropout2d(0.25)
        self.dropout2 = Dropout2d(0.5)
        self.fc1 = Linear(9216, 128)
        self.fc2 = Linear(128, 10)
        self.relu1, self.relu2, self.relu3 = ReLU(), ReLU(), ReLU()
        self.pool, self.flatten = MaxPool2d(2), Flatten()
        self.log_softmax = LogSoftmax(dim=1)

    def forward(self, x):
        x = self.relu1(self.conv1(x))  # (N, 32, 26, 26)
        x = self.relu2(self.conv2(x))  # (N, 64, 24, 24)
        x = self.dropout1(self.pool(x))  # (N, 64, 12, 12)
        x = self.relu3(self.fc1(self.flatten(x)))  # (N, 9216) -> (N, 128)
        x = self.fc2(self.dropout2(x))  # (N, 10)
        return self.log_softmax(x)

    def backward(self, grad_y):
        grad = self.dropout2.backward(self.fc2.backward(self.log_softmax.backward(grad_y)))
        grad = self.flatten.backward(self.fc1.backward(self.relu3.backward(grad)))
        grad = self.pool.backward(self.dropout1.backward(grad))  # (N, 64, 24, 24)
        grad = self.conv2.backward(self.relu2.backward(grad))
        return self.conv1.backward(self.relu1.backward(grad))


# ------------------------------ "Deep Learning with PyTorch", chapter 8 (CIFAR-2 nets)


class DlwptNet(Module):
    """The CIFAR-2 ``Net`` of "Deep Learning with PyTorch", 8.3: (N, 3, 32, 32) -> (N, 2).

    The book's module form (8.3.1; 8.3.3 writes the same net with ``F.max_pool2d`` and
    ``torch.tanh``), ``k = kernel_size``::

        (N, 3, 32, 32) -Conv2d(3, 16, k, padding=k//2), Tanh, MaxPool2d(2)-> (N, 16, 16, 16)
                       -Conv2d(16, 8, k, padding=k//2), Tanh, MaxPool2d(2)-> (N, 8, 8, 8)
                       -view(-1, 8 * 8 * 8)-> -Linear(512, 32), Tanh-> -Linear(32, 2)->

    ``kernel_size=3`` is the book's net (18,090 parameters, printed there as
    ``[432, 16, 1152, 8, 16384, 32, 64, 2]``). ``kernel_size=5`` is exercise 1 of 8.7
    ("use a 5 x 5 kernel with kernel_size=5"; 20,906 parameters): the exercise names no
    padding; padding 2 keeps the 32x32 maps, so ``fc1`` stays ``Linear(8 * 8 * 8, 32)``.
    """

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int):
            raise TypeError(f"kernel_size: expected an int, got {type(kernel_size).__name__}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd positive int (padding "
                             f"kernel_size // 2 keeps 32x32), got {kernel_size}")
        self.conv1 = Conv2d(3, 16, kernel_size=kernel_size, padding=kernel_size // 2)
        self.act1, self.pool1 = Tanh(), MaxPool2d(2)
        self.conv2 = Conv2d(16, 8, kernel_size=kernel_size, padding=kernel_size // 2)
        self.act2, self.pool2 = Tanh(), MaxPool2d(2)
        self.flatten = Flatten()
        self.fc1 = Linear(8 * 8 * 8, 32)
        self.act3 = Tanh()
        self.fc2 = Linear(32, 2)

    def forward(self, x):
        out = self.pool1(self.act1(self.conv1(x)))  # (N, 16, 16, 16)
        out = self.pool2(self.act2(self.conv2(out)))  # (N, 8, 8, 8)
        out = self.act3(self.fc1(self.flatten(out)))  # (N, 512) -> (N, 32)
        return self.fc2(out)  # (N, 2)

    def backward(self, grad_y):
        grad = self.act3.backward(self.fc2.backward(grad_y))
        grad = self.flatten.backward(self.fc1.backward(grad))  # (N, 8, 8, 8)
        grad = self.conv2.backward(self.act2.backward(self.pool2.backward(grad)))
        return self.conv1.backward(self.act1.backward(self.pool1.backward(grad)))


class DlwptNetRes(Module):
    """``NetRes`` of "Deep Learning with PyTorch", 8.5.3 (skip connections): (N, 3, 32, 32) -> 2.

    The book's code, ``n = n_chans1`` (32 in the book's run)::

        out = max_pool2d(relu(conv1(x)), 2)           # Conv2d(3, n, 3, padding=1): (N, n, 16, 16)
        out = max_pool2d(relu(conv2(out)), 2)         # Conv2d(n, n//2, 3, padding=1): 8x8
        out1 = out
        out = max_pool2d(relu(conv3(out)) + out1, 2)  # Conv2d(n//2, n//2, 3, padding=1): 4x4
        out = relu(fc1(out.view(-1, 4 * 4 * n // 2)))  # Linear(4*4*n//2, 32)
        return fc2(out)                                 # Linear(32, 2)

    The skip adds conv3's *activated* output to its input, before the pooling. 16,130
    parameters for ``n_chans1=32``.
    """

    def __init__(self, n_chans1: int = 32) -> None:
        super().__init__()
        if isinstance(n_chans1, bool) or not isinstance(n_chans1, int):
            raise TypeError(f"n_chans1: expected an int, got {type(n_chans1).__name__}")
        if n_chans1 < 2:
            raise ValueError(f"n_chans1: expected an int >= 2 (conv2 has n_chans1 // 2 "
                             f"channels), got {n_chans1}")
        self.n_chans1 = n_chans1
        self.conv1 = Conv2d(3, n_chans1, kernel_size=3, padding=1)
        self.conv2 = Conv2d(n_chans1, n_chans1 // 2, kernel_size=3, padding=1)
        self.conv3 = Conv2d(n_chans1 // 2, n_chans1 // 2, kernel_size=3, padding=1)
        self.fc1 = Linear(4 * 4 * n_chans1 // 2, 32)
        self.fc2 = Linear(32, 2)
        self.relu1, self.pool1 = ReLU(), MaxPool2d(2)
        self.relu2, self.pool2 = ReLU(), MaxPool2d(2)
        self.relu3, self.pool3 = ReLU(), MaxPool2d(2)
        self.flatten, self.relu4 = Flatten(), ReLU()

    def forward(self, x):
        out = self.pool1(self.relu1(self.conv1(x)))  # (N, n, 16, 16)
        out = self.pool2(self.relu2(self.conv2(out)))  # (N, n//2, 8, 8)
        out = self.pool3(self.relu3(self.conv3(out)) + out)  # skip: (N, n//2, 4, 4)
        out = self.relu4(self.fc1(self.flatten(out)))  # (N, 4*4*n//2) -> (N, 32)
        return self.fc2(out)  # (N, 2)

    def backward(self, grad_y):
        grad = self.relu4.backward(self.fc2.backward(grad_y))
        grad = self.flatten.backward(self.fc1.backward(grad))  # (N, n//2, 4, 4)
        grad_sum = self.pool3.backward(grad)  # reaches both terms of the skip's sum
        grad = self.conv3.backward(self.relu3.backward(grad_sum)) + grad_sum
        grad = self.conv2.backward(self.relu2.backward(self.pool2.backward(grad)))
        return self.conv1.backward(self.relu1.backward(self.pool1.backward(grad)))


# --------------------------------------------------------------------------- the registry


def mnist_cnn() -> MnistCNN:
    return MnistCNN()


def mnist_cnn3() -> MnistCNN3:
    return MnistCNN3()


def residual_net(shortcut: str = "identity") -> ResidualNet:
    return ResidualNet(shortcut)


def residual_net_constant_scaling() -> ResidualNet:
    """Lecture 11's residual net with He et al.'s constant scaling (exercise 11-1)."""
    return ResidualNet("constant_scaling")


def residual_net_conv_shortcut() -> ResidualNet:
    """Lecture 11's residual net with He et al.'s 1x1-conv shortcut (exercise 11-1)."""
    return ResidualNet("conv_shortcut")


def inception_net() -> InceptionNet:
    return InceptionNet()


def simple_cnn() -> SimpleCNN:
    return SimpleCNN()


def dlwpt_net() -> DlwptNet:
    """"Deep Learning with PyTorch" 8.3's CIFAR-2 ``Net`` (3x3 kernels)."""
    return DlwptNet(kernel_size=3)


def dlwpt_net_5x5() -> DlwptNet:
    """The same ``Net`` with 5x5 kernels, exercise 1 of the book's 8.7."""
    return DlwptNet(kernel_size=5)


def dlwpt_netres(n_chans1: int = 32) -> DlwptNetRes:
    """"Deep Learning with PyTorch" 8.5.3's ``NetRes``."""
    return DlwptNetRes(n_chans1)


MODELS = {
    "lenet5": lenet5,
    "mnist_cnn": mnist_cnn,
    "mnist_cnn3": mnist_cnn3,
    "residual_net": residual_net,
    "residual_net_constant_scaling": residual_net_constant_scaling,
    "residual_net_conv_shortcut": residual_net_conv_shortcut,
    "inception_net": inception_net,
    "simple_cnn": simple_cnn,
    "resnet18": resnet18,
    "dlwpt_net": dlwpt_net,
    "dlwpt_net_5x5": dlwpt_net_5x5,
    "dlwpt_netres": dlwpt_netres,
}
"""Every model by name: ``MODELS[name]()`` builds one (float32, PyTorch's default init)."""

CIFAR2_MODELS = ("dlwpt_net", "dlwpt_net_5x5", "dlwpt_netres")

INPUT_SHAPES = {name: (1, 28, 28) for name in MODELS}
"""The ``(C, H, W)`` of one image each model is defined on (its source's data)."""
INPUT_SHAPES["resnet18"] = (1, 96, 96)
INPUT_SHAPES.update({name: (3, 32, 32) for name in CIFAR2_MODELS})

NUM_CLASSES = {name: 10 for name in MODELS}
"""The number of outputs (classes) of each model."""
NUM_CLASSES.update({name: 2 for name in CIFAR2_MODELS})  # CIFAR-2: airplane, bird

OUTPUTS_LOG_PROBS = {"simple_cnn"}
"""Models whose output is already log-probabilities (train them with NLLLoss)."""


def get_model(name: str) -> Module:
    """Build the model called ``name`` (a key of :data:`MODELS`)."""
    if name not in MODELS:
        raise ValueError(f"model: unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name]()


__all__ = [
    "CIFAR2_MODELS",
    "INPUT_SHAPES",
    "MODELS",
    "NUM_CLASSES",
    "OUTPUTS_LOG_PROBS",
    "SHORTCUTS",
    "DlwptNet",
    "DlwptNetRes",
    "InceptionNet",
    "MnistCNN",
    "MnistCNN3",
    "ResidualBlockVariant",
    "ResidualNet",
    "SimpleCNN",
    "dlwpt_net",
    "dlwpt_net_5x5",
    "dlwpt_netres",
    "get_model",
    "inception_net",
    "lenet5",
    "mnist_cnn",
    "mnist_cnn3",
    "residual_net",
    "residual_net_constant_scaling",
    "residual_net_conv_shortcut",
    "resnet18",
    "resnet_block",
    "simple_cnn",
]
