"""The fixed layer suite every benchmark times: LeNet-5, the MNIST CNN, ResNet-18.

Each entry is one layer of a real network with the shape it sees in training. Conv layers are
:class:`ConvCase`, pooling layers :class:`PoolCase`, transposed convs (a DCGAN generator
layer, a U-Net up-convolution) :class:`ConvTransposeCase`. FLOPs of a conv forward are
``2*N*C_out*H_out*W_out*(C_in/groups)*kH*kW``; backward-input and backward-weight cost the
same each.
"""

from __future__ import annotations

from typing import NamedTuple

from kernels.common import conv_output_size, conv_transpose_output_size, flops_conv2d


class ConvCase(NamedTuple):
    name: str
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C_in, self.H, self.W)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.C_out, self.C_in // self.groups, self.kernel, self.kernel)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        Ho = conv_output_size(self.H, self.kernel, self.stride, self.padding, 1)
        Wo = conv_output_size(self.W, self.kernel, self.stride, self.padding, 1)
        return (self.N, self.C_out, Ho, Wo)

    @property
    def flops(self) -> int:
        """FLOPs of the forward pass (each of the two backward passes costs the same)."""
        weight_shape = (self.C_out, self.C_in // self.groups, self.kernel, self.kernel)
        return flops_conv2d(self.y_shape, weight_shape)


class ConvTransposeCase(NamedTuple):
    """One ConvTranspose2d layer: weight (C_in, C_out // groups, k, k), as PyTorch's."""

    name: str
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    kernel: int
    stride: int = 1
    padding: int = 0
    output_padding: int = 0

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C_in, self.H, self.W)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.C_in, self.C_out, self.kernel, self.kernel)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        Ho = conv_transpose_output_size(self.H, self.kernel, self.stride, self.padding,
                                        self.output_padding, 1)
        Wo = conv_transpose_output_size(self.W, self.kernel, self.stride, self.padding,
                                        self.output_padding, 1)
        return (self.N, self.C_out, Ho, Wo)

    @property
    def flops(self) -> int:
        """FLOPs of the forward: those of the conv2d whose grad_x it is (x as its output)."""
        return flops_conv2d(self.x_shape, self.w_shape)


class PoolCase(NamedTuple):
    name: str
    kind: str  # "max" | "avg" | "adaptive_avg"
    N: int
    C: int
    H: int
    W: int
    kernel: int = 2  # for adaptive_avg: the output size
    stride: int | None = None
    padding: int = 0

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)


LENET5_CONV = [
    ConvCase("lenet5.conv1 1->6 5x5 p2 @28", 64, 1, 28, 28, 6, 5, padding=2),
    ConvCase("lenet5.conv2 6->16 5x5 @14", 64, 6, 14, 14, 16, 5),
]
LENET5_POOL = [
    PoolCase("lenet5.pool1 avg 2x2 @28", "avg", 64, 6, 28, 28, 2),
    PoolCase("lenet5.pool2 avg 2x2 @10", "avg", 64, 16, 10, 10, 2),
]
MNIST_CNN_CONV = [
    ConvCase("mnist_cnn.conv1 1->10 5x5 @28", 64, 1, 28, 28, 10, 5),
    ConvCase("mnist_cnn.conv2 10->20 5x5 @12", 64, 10, 12, 12, 20, 5),
]
MNIST_CNN_POOL = [
    PoolCase("mnist_cnn.pool1 max 2x2 @24", "max", 64, 10, 24, 24, 2),
    PoolCase("mnist_cnn.pool2 max 2x2 @8", "max", 64, 20, 8, 8, 2),
]
RESNET18_CONV = [
    ConvCase("resnet18.stem 3->64 7x7 s2 p3 @224", 32, 3, 224, 224, 64, 7, 2, 3),
    ConvCase("resnet18.layer1 64->64 3x3 @56", 32, 64, 56, 56, 64, 3, 1, 1),
    ConvCase("resnet18.layer2.0 64->128 3x3 s2 @56", 32, 64, 56, 56, 128, 3, 2, 1),
    ConvCase("resnet18.layer2.down 64->128 1x1 s2 @56", 32, 64, 56, 56, 128, 1, 2, 0),
    ConvCase("resnet18.layer2 128->128 3x3 @28", 32, 128, 28, 28, 128, 3, 1, 1),
    ConvCase("resnet18.layer3.0 128->256 3x3 s2 @28", 32, 128, 28, 28, 256, 3, 2, 1),
    ConvCase("resnet18.layer3.down 128->256 1x1 s2 @28", 32, 128, 28, 28, 256, 1, 2, 0),
    ConvCase("resnet18.layer3 256->256 3x3 @14", 32, 256, 14, 14, 256, 3, 1, 1),
    ConvCase("resnet18.layer4.0 256->512 3x3 s2 @14", 32, 256, 14, 14, 512, 3, 2, 1),
    ConvCase("resnet18.layer4.down 256->512 1x1 s2 @14", 32, 256, 14, 14, 512, 1, 2, 0),
    ConvCase("resnet18.layer4 512->512 3x3 @7", 32, 512, 7, 7, 512, 3, 1, 1),
]
RESNET18_POOL = [
    PoolCase("resnet18.maxpool 3x3 s2 p1 @112", "max", 32, 64, 112, 112, 3, 2, 1),
    PoolCase("resnet18.avgpool adaptive 1x1 @7", "adaptive_avg", 32, 512, 7, 7, 1),
]

# DCGAN's generator (Radford, Metz, Chintala, "Unsupervised Representation Learning with Deep
# Convolutional Generative Adversarial Networks", 2016, Figure 1; PyTorch's examples/dcgan
# Generator with ngf = 64, batch 64): its third layer, ngf*4 -> ngf*2, 4x4, stride 2, padding
# 1, 8x8 -> 16x16. U-Net (Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for
# Biomedical Image Segmentation", 2015, Section 2): each "up-convolution" is a 2x2 stride-2
# transposed conv that halves the channels; here the 256 -> 128 one of a 64-base U-Net on
# 256x256 images (32x32 -> 64x64), batch 8.
TRANSPOSE_SUITE = [
    ConvTransposeCase("dcgan.gen3 256->128 4x4 s2 p1 @8", 64, 256, 8, 8, 128, 4, 2, 1),
    ConvTransposeCase("unet.up3 256->128 2x2 s2 @32", 8, 256, 32, 32, 128, 2, 2),
]

CONV_SUITE = LENET5_CONV + MNIST_CNN_CONV + RESNET18_CONV
POOL_SUITE = LENET5_POOL + MNIST_CNN_POOL + RESNET18_POOL
# --quick: the small layers plus one ResNet layer of each kind
QUICK_CONV = LENET5_CONV + MNIST_CNN_CONV + [RESNET18_CONV[4], RESNET18_CONV[6]]
QUICK_POOL = LENET5_POOL + MNIST_CNN_POOL
QUICK_TRANSPOSE = TRANSPOSE_SUITE
