"""PyTorch twins of ``minitorch_cnn.models``: each network written as its source writes it.

Same names, same parameter names and shapes, so a state dict moves between a model and its
twin both ways. Forward only: torch autograd gives the gradients the tests compare with.
Import this module directly (``import reference.models``); it needs torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as tF
from torch import nn


def lenet5() -> nn.Sequential:
    """d2l's LeNet-5 (sigmoid, average pooling)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10),
    )


class MnistCNN(nn.Module):
    """Liu Er, "PyTorch Deep Learning Practice", lecture 10 (CNN basics)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(320, 10)

    def forward(self, x):
        in_size = x.size(0)
        x = tF.relu(self.mp(self.conv1(x)))
        x = tF.relu(self.mp(self.conv2(x)))
        x = x.view(in_size, -1)
        return self.fc(x)


class MnistCNN3(nn.Module):
    """Liu Er, lecture 10, exercise 10-1: Conv2d x3, ReLU x3, MaxPool2d x3, Linear x3."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=5)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5)
        self.conv3 = nn.Conv2d(32, 64, kernel_size=3)
        self.pooling = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, 10)

    def forward(self, x):
        batch_size = x.size(0)
        x = tF.relu(self.pooling(self.conv1(x)))
        x = tF.relu(self.pooling(self.conv2(x)))
        x = tF.relu(self.pooling(self.conv3(x)))
        x = x.view(batch_size, -1)
        x = self.fc1(x)
        x = self.fc2(x)
        return self.fc3(x)


class ResidualBlock(nn.Module):
    """Lecture 11 (CNN advanced): the residual block, identity shortcut."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x):
        y = tF.relu(self.conv1(x))
        y = self.conv2(y)
        return tF.relu(x + y)


class ConstantScalingResidualBlock(ResidualBlock):
    """Exercise 11-1: He et al. 2016 ("Identity Mappings"), Fig. 2(b), 0.5 on both terms."""

    def forward(self, x):
        y = tF.relu(self.conv1(x))
        y = self.conv2(y)
        return tF.relu(0.5 * x + 0.5 * y)


class ConvShortcutResidualBlock(ResidualBlock):
    """Exercise 11-1: He et al. 2016, Fig. 2(e), a 1x1 convolution on the shortcut."""

    def __init__(self, channels):
        super().__init__(channels)
        self.conv3 = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x):
        y = tF.relu(self.conv1(x))
        y = self.conv2(y)
        return tF.relu(self.conv3(x) + y)


class ResidualNet(nn.Module):
    """Lecture 11's residual net; ``block`` is exercise 11-1's variant."""

    def __init__(self, block=ResidualBlock):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=5)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5)
        self.mp = nn.MaxPool2d(2)
        self.rblock1 = block(16)
        self.rblock2 = block(32)
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        in_size = x.size(0)
        x = self.mp(tF.relu(self.conv1(x)))
        x = self.rblock1(x)
        x = self.mp(tF.relu(self.conv2(x)))
        x = self.rblock2(x)
        x = x.view(in_size, -1)
        return self.fc(x)


class InceptionA(nn.Module):
    """Lecture 11's Inception block (88 output channels)."""

    def __init__(self, in_channels):
        super().__init__()
        self.branch1x1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_2 = nn.Conv2d(16, 24, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch3x3dbl_2 = nn.Conv2d(16, 24, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = nn.Conv2d(24, 24, kernel_size=3, padding=1)
        self.branch_pool = nn.Conv2d(in_channels, 24, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = tF.avg_pool2d(x, kernel_size=3, stride=1, padding=1)
        branch_pool = self.branch_pool(branch_pool)
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionNet(nn.Module):
    """Lecture 11's Inception net."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(88, 20, kernel_size=5)
        self.incep1 = InceptionA(in_channels=10)
        self.incep2 = InceptionA(in_channels=20)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(1408, 10)

    def forward(self, x):
        in_size = x.size(0)
        x = tF.relu(self.mp(self.conv1(x)))
        x = self.incep1(x)
        x = tF.relu(self.mp(self.conv2(x)))
        x = self.incep2(x)
        x = x.view(in_size, -1)
        return self.fc(x)


class SimpleCNN(nn.Module):
    """pytorch/examples ``mnist/main.py`` ``Net``, 2020-03-04 (dce9319) to 2020-10-10 (0f0c913).

    ``dropout2`` is a ``Dropout2d`` on the 2-D output of ``fc1``: torch warns and drops single
    elements.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout2d(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = tF.relu(x)
        x = self.conv2(x)
        x = tF.relu(x)
        x = tF.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = tF.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = tF.log_softmax(x, dim=1)
        return output


class Net(nn.Module):
    """"Deep Learning with PyTorch", 8.3.3: the CIFAR-2 net (``kernel_size=5``: 8.7, ex. 1)."""

    def __init__(self, kernel_size=3):
        super().__init__()
        padding = kernel_size // 2  # the book's padding=1 for 3x3; 2 keeps 32x32 for 5x5
        self.conv1 = nn.Conv2d(3, 16, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(16, 8, kernel_size=kernel_size, padding=padding)
        self.fc1 = nn.Linear(8 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        out = tF.max_pool2d(torch.tanh(self.conv1(x)), 2)
        out = tF.max_pool2d(torch.tanh(self.conv2(out)), 2)
        out = out.view(-1, 8 * 8 * 8)
        out = torch.tanh(self.fc1(out))
        out = self.fc2(out)
        return out


class NetRes(nn.Module):
    """"Deep Learning with PyTorch", 8.5.3: a skip connection around conv3."""

    def __init__(self, n_chans1=32):
        super().__init__()
        self.n_chans1 = n_chans1
        self.conv1 = nn.Conv2d(3, n_chans1, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(n_chans1, n_chans1 // 2, kernel_size=3,
                               padding=1)
        self.conv3 = nn.Conv2d(n_chans1 // 2, n_chans1 // 2,
                               kernel_size=3, padding=1)
        self.fc1 = nn.Linear(4 * 4 * n_chans1 // 2, 32)
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        out = tF.max_pool2d(torch.relu(self.conv1(x)), 2)
        out = tF.max_pool2d(torch.relu(self.conv2(out)), 2)
        out1 = out
        out = tF.max_pool2d(torch.relu(self.conv3(out)) + out1, 2)
        out = out.view(-1, 4 * 4 * self.n_chans1 // 2)
        out = torch.relu(self.fc1(out))
        out = self.fc2(out)
        return out


class Residual(nn.Module):
    """d2l's ResNet block."""

    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1,
                               stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = tF.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y = Y + X
        return tF.relu(Y)


def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


def resnet18(num_classes=10, in_channels=1) -> nn.Sequential:
    """d2l's ResNet-18."""
    b1 = nn.Sequential(nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
                       nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
    b3 = nn.Sequential(*resnet_block(64, 128, 2))
    b4 = nn.Sequential(*resnet_block(128, 256, 2))
    b5 = nn.Sequential(*resnet_block(256, 512, 2))
    return nn.Sequential(b1, b2, b3, b4, b5, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                         nn.Linear(512, num_classes))


def mnist_cnn():
    return MnistCNN()


def mnist_cnn3():
    return MnistCNN3()


def residual_net():
    return ResidualNet()


def residual_net_constant_scaling():
    return ResidualNet(ConstantScalingResidualBlock)


def residual_net_conv_shortcut():
    return ResidualNet(ConvShortcutResidualBlock)


def inception_net():
    return InceptionNet()


def simple_cnn():
    return SimpleCNN()


def dlwpt_net():
    return Net()


def dlwpt_net_5x5():
    return Net(kernel_size=5)


def dlwpt_netres():
    return NetRes(n_chans1=32)


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
