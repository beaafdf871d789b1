"""The networks of the seed material, built from ``minitorch_cnn.nn``.

Each has a PyTorch twin of the same name in ``reference.models`` with the same parameter
names and shapes, so ``twin.load_state_dict(...)`` moves weights across and the tests
check that both give the same logits, gradients and SGD updates.

========================  =========================================================  ==========
name                      what                                                       input
========================  =========================================================  ==========
``lenet5``                d2l LeNet-5: sigmoid + average pooling                     1x28x28
``mnist_cnn``             Conv(1,10,5)-MaxPool-ReLU, Conv(10,20,5)-MaxPool-ReLU,      1x28x28
                          Linear(320,10)
``mnist_cnn3``            the 3-conv exercise: 3 x (Conv-MaxPool-ReLU), 3 Linear     1x28x28
``residual_net``          two identity residual blocks between the convs of          1x28x28
                          ``mnist_cnn`` (16 and 32 channels), Linear(512,10)
``inception_net``         two InceptionA blocks (88 channels), Linear(1408,10)       1x28x28
``simple_cnn``            ``mnist_cnn`` + Dropout2d + a 50-unit hidden layer with    1x28x28
                          dropout, LogSoftmax output (PyTorch's old MNIST example)
``resnet18``              d2l ResNet-18 (batch norm, 1x1-projection shortcuts)       1x96x96
========================  =========================================================  ==========

``resnet18`` is fully convolutional up to a global average pool, so it takes other input
sizes too; at 28x28 or 32x32 its last stage sees a 1x1 map, which batch norm in training
accepts only for batches of more than one image.

The seed's nets reuse one ``MaxPool2d`` object twice and call ``F.relu``; here every
position has its own module (a module caches its input for backward), which changes no
state-dict key because pooling and ReLU hold no parameters.
"""

from __future__ import annotations

from .nn import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
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
)


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


class MnistCNN(Module):
    """The seed's MNIST CNN: (N, 1, 28, 28) -> logits (N, 10)."""

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
    """The seed's exercise: three Conv-MaxPool-ReLU stages and three Linear layers.

    28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4 -conv3(pad 1)-> 4 -pool-> 2:
    (N, 30, 2, 2) = 120 features -> 64 -> 32 -> 10.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2d(1, 10, kernel_size=5)
        self.conv2 = Conv2d(10, 20, kernel_size=5)
        self.conv3 = Conv2d(20, 30, kernel_size=3, padding=1)
        self.fc1 = Linear(120, 64)
        self.fc2 = Linear(64, 32)
        self.fc3 = Linear(32, 10)
        self.pool1, self.relu1 = MaxPool2d(2), ReLU()
        self.pool2, self.relu2 = MaxPool2d(2), ReLU()
        self.pool3, self.relu3 = MaxPool2d(2), ReLU()
        self.flatten, self.relu4, self.relu5 = Flatten(), ReLU(), ReLU()

    def forward(self, x):
        x = self.relu1(self.pool1(self.conv1(x)))  # (N, 10, 12, 12)
        x = self.relu2(self.pool2(self.conv2(x)))  # (N, 20, 4, 4)
        x = self.relu3(self.pool3(self.conv3(x)))  # (N, 30, 2, 2)
        x = self.relu4(self.fc1(self.flatten(x)))  # (N, 64)
        x = self.relu5(self.fc2(x))  # (N, 32)
        return self.fc3(x)  # (N, 10)

    def backward(self, grad_y):
        grad = self.fc2.backward(self.relu5.backward(self.fc3.backward(grad_y)))
        grad = self.flatten.backward(self.fc1.backward(self.relu4.backward(grad)))
        grad = self.conv3.backward(self.pool3.backward(self.relu3.backward(grad)))
        grad = self.conv2.backward(self.pool2.backward(self.relu2.backward(grad)))
        return self.conv1.backward(self.pool1.backward(self.relu1.backward(grad)))


class ResidualNet(Module):
    """The seed's residual net: (N, 1, 28, 28) -> (N, 10), two identity residual blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2d(1, 16, kernel_size=5)
        self.conv2 = Conv2d(16, 32, kernel_size=5)
        self.rblock1 = ResidualBlock(16)
        self.rblock2 = ResidualBlock(32)
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
    """The seed's Inception net: (N, 1, 28, 28) -> (N, 10); InceptionA gives 88 channels."""

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


class SimpleCNN(Module):
    """PyTorch's classic MNIST example: dropout and a LogSoftmax output (use NLLLoss).

    (N, 1, 28, 28) -> log-probabilities (N, 10). Dropout2d drops whole conv2 channels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2d(1, 10, kernel_size=5)
        self.conv2 = Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = Dropout2d()
        self.fc1 = Linear(320, 50)
        self.fc2 = Linear(50, 10)
        self.dropout = Dropout(0.5)
        self.pool1, self.relu1 = MaxPool2d(2), ReLU()
        self.pool2, self.relu2 = MaxPool2d(2), ReLU()
        self.flatten, self.relu3 = Flatten(), ReLU()
        self.log_softmax = LogSoftmax(dim=1)

    def forward(self, x):
        x = self.relu1(self.pool1(self.conv1(x)))  # (N, 10, 12, 12)
        x = self.relu2(self.pool2(self.conv2_drop(self.conv2(x))))  # (N, 20, 4, 4)
        x = self.relu3(self.fc1(self.flatten(x)))  # (N, 50)
        x = self.fc2(self.dropout(x))  # (N, 10)
        return self.log_softmax(x)

    def backward(self, grad_y):
        grad = self.dropout.backward(self.fc2.backward(self.log_softmax.backward(grad_y)))
        grad = self.flatten.backward(self.fc1.backward(self.relu3.backward(grad)))
        grad = self.pool2.backward(self.relu2.backward(grad))
        grad = self.conv2.backward(self.conv2_drop.backward(grad))
        return self.conv1.backward(self.pool1.backward(self.relu1.backward(grad)))


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


def mnist_cnn() -> MnistCNN:
    return MnistCNN()


def mnist_cnn3() -> MnistCNN3:
    return MnistCNN3()


def residual_net() -> ResidualNet:
    return ResidualNet()


def inception_net() -> InceptionNet:
    return InceptionNet()


def simple_cnn() -> SimpleCNN:
    return SimpleCNN()


MODELS = {
    "lenet5": lenet5,
    "mnist_cnn": mnist_cnn,
    "mnist_cnn3": mnist_cnn3,
    "residual_net": residual_net,
    "inception_net": inception_net,
    "simple_cnn": simple_cnn,
    "resnet18": resnet18,
}
"""Every model by name: ``MODELS[name]()`` builds one (float32, PyTorch's default init)."""

OUTPUTS_LOG_PROBS = {"simple_cnn"}
"""Models whose output is already log-probabilities (train them with NLLLoss)."""


def get_model(name: str) -> Module:
    """Build the model called ``name`` (a key of :data:`MODELS`)."""
    if name not in MODELS:
        raise ValueError(f"model: unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name]()


__all__ = [
    "MODELS",
    "InceptionNet",
    "MnistCNN",
    "MnistCNN3",
    "ResidualNet",
    "SimpleCNN",
    "get_model",
    "inception_net",
    "lenet5",
    "mnist_cnn",
    "mnist_cnn3",
    "residual_net",
    "resnet18",
    "resnet_block",
    "simple_cnn",
]
