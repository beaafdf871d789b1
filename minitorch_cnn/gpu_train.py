"""LeNet-5 trained end to end on the GPU, with only this project's CUDA kernels.

:class:`GpuLeNet5` is ``minitorch_cnn.models.lenet5`` written out layer by layer on device
arrays: the parameters, activations, gradients and momentum buffers all live on the GPU,
and a training step moves only the batch in and the loss (one number) out::

    from minitorch_cnn import models
    from minitorch_cnn.gpu_train import GpuLeNet5

    net = GpuLeNet5(models.lenet5().state_dict(), lr=0.1, momentum=0.9)
    loss = net.train_step(images, labels)     # images (N, 1, 28, 28), labels (N,) int
    weights = net.state_dict()                # NumPy, PyTorch's keys ("0.weight", ...)

Which kernel runs each layer (all in ``kernels.cuda``):

=========================  =================================  ==========================
layer                      forward                            backward
=========================  =================================  ==========================
Conv2d (0, 3)              ``conv2d`` (the current rung)      ``conv2d_backward``
Sigmoid (1, 4, 8, 10)      ``train.sigmoid_forward``          ``train.sigmoid_backward``
AvgPool2d (2, 5)           ``avg_pool2d``                     ``avg_pool2d_backward``
Flatten (6)                a reshape (a view, no copy)        a reshape
Linear (7, 9, 11)          ``train.linear_forward``           ``train.linear_backward``
                           (or ``linear_forward_conv``)       (or ``linear_backward_conv``)
CrossEntropyLoss           ``train.cross_entropy_forward``    ``train.cross_entropy_backward``
SGD                        ``train.sgd_step`` per parameter
=========================  =================================  ==========================

Each conv and pooling kernel takes the layer's problem as one record (``ConvSpec`` /
``PoolSpec`` of ``kernels.common``); :func:`layer_specs` builds the four of them once per
batch size, as :class:`LayerSpecs`.

``linear="gemm"`` (the default) runs the Linear layers with the naive GEMM kernels of
``kernels.cuda.train``; ``linear="conv"`` runs them as 1x1 convolutions through the conv
kernels (the implicit-GEMM rung by default). Both give the same numbers; the benchmark
``benchmarks/gpu_train_step.py`` times both.

The numbers in layer names are the indices in ``nn.Sequential``, so the state-dict keys are
PyTorch's and ``reference.models.lenet5`` loads them (and the tests compare step by step).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from kernels import cuda as kc
from kernels.common import ConvSpec, PoolSpec
from kernels.cuda import train as kt
from kernels.cuda._arrays import empty, is_device_array, to_device

PARAMETER_SHAPES = {
    "0.weight": (6, 1, 5, 5), "0.bias": (6,),
    "3.weight": (16, 6, 5, 5), "3.bias": (16,),
    "7.weight": (120, 400), "7.bias": (120,),
    "9.weight": (84, 120), "9.bias": (84,),
    "11.weight": (10, 84), "11.bias": (10,),
}
"""LeNet-5's parameters, in ``state_dict`` order, with their shapes."""

INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10

_LINEARS = {"gemm": (kt.linear_forward, kt.linear_backward),
            "conv": (kt.linear_forward_conv, kt.linear_backward_conv)}


class Activations(NamedTuple):
    """What the forward keeps for the backward (device arrays; N = batch size)."""

    x: object    # (N, 1, 28, 28)  the input
    a1: object   # (N, 6, 28, 28)  sigmoid(conv 0)
    p1: object   # (N, 6, 14, 14)  avg-pool of a1, the input of conv 3
    a2: object   # (N, 16, 10, 10) sigmoid(conv 3)
    f: object    # (N, 400)        avg-pool of a2, flattened: the input of linear 7
    a3: object   # (N, 120)        sigmoid(linear 7)
    a4: object   # (N, 84)         sigmoid(linear 9), the input of linear 11


class LayerSpecs(NamedTuple):
    """The problem each conv and pooling layer solves on a batch of N images.

    Named by the layer's index in ``nn.Sequential``, as the state-dict keys are.
    """

    conv0: ConvSpec  # (N, 1, 28, 28) -> (N, 6, 28, 28): 5x5 kernel, padding 2
    pool2: PoolSpec  # (N, 6, 28, 28) -> (N, 6, 14, 14): 2x2 average, stride 2
    conv3: ConvSpec  # (N, 6, 14, 14) -> (N, 16, 10, 10): 5x5 kernel, no padding
    pool5: PoolSpec  # (N, 16, 10, 10) -> (N, 16, 5, 5): 2x2 average, stride 2


@functools.lru_cache(maxsize=16)
def layer_specs(N: int) -> LayerSpecs:
    """The :class:`LayerSpecs` of a batch of ``N`` images (built once per batch size).

    The convs have stride 1, no dilation, one group; the pools are ``AvgPool2d(2, 2)`` with
    PyTorch's defaults (no padding, floor mode, the padding counted, no divisor override).
    """
    conv0 = ConvSpec.from_shapes((N, *INPUT_SHAPE), PARAMETER_SHAPES["0.weight"],
                                 stride=(1, 1), padding=(2, 2), dilation=(1, 1), groups=1)
    pool2 = PoolSpec.from_shape(conv0.y_shape, kernel_size=(2, 2), stride=(2, 2),
                                padding=(0, 0))
    conv3 = ConvSpec.from_shapes(pool2.y_shape, PARAMETER_SHAPES["3.weight"],
                                 stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    pool5 = PoolSpec.from_shape(conv3.y_shape, kernel_size=(2, 2), stride=(2, 2),
                                padding=(0, 0))
    return LayerSpecs(conv0, pool2, conv3, pool5)


class GpuLeNet5:
    """LeNet-5 with its parameters on the GPU, trained by SGD with our kernels only.

    Parameters
    ----------
    state_dict : dict of str -> ndarray, optional
        Weights with ``lenet5().state_dict()``'s keys and shapes (the default: a freshly
        initialised ``minitorch_cnn.models.lenet5()``). All of one float dtype, which
        becomes the model's dtype; they are copied to the device.
    lr, momentum, weight_decay : float
        ``torch.optim.SGD``'s hyper-parameters (dampening 0, no Nesterov), kept as
        ``self.hyper``, a ``kernels.cuda.train.SgdHyper``.
    linear : {"gemm", "conv"}
        How the Linear layers run: the GEMM kernels of ``kernels.cuda.train``, or 1x1
        convolutions through the conv kernels.
    """

    def __init__(self, state_dict=None, *, lr=0.1, momentum=0.0, weight_decay=0.0,
                 linear="gemm"):
        if state_dict is None:
            from .models import lenet5

            state_dict = lenet5().state_dict()
        if set(state_dict) != set(PARAMETER_SHAPES):
            raise ValueError(f"state_dict: expected the keys {sorted(PARAMETER_SHAPES)}, got "
                             f"{sorted(state_dict)}")
        dtypes = {np.asarray(v).dtype for v in state_dict.values()}
        if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
            raise TypeError(f"state_dict: expected all float32 or all float64, got {dtypes}")
        for name, shape in PARAMETER_SHAPES.items():
            if tuple(np.shape(state_dict[name])) != shape:
                raise ValueError(f"state_dict[{name!r}]: expected shape {shape}, got "
                                 f"{tuple(np.shape(state_dict[name]))}")
        if linear not in _LINEARS:
            raise ValueError(f"linear: expected one of {sorted(_LINEARS)}, got {linear!r}")
        self.dtype = next(iter(dtypes))
        self.hyper = kt.SgdHyper(float(lr), float(momentum), float(weight_decay))
        self.linear = linear
        self._linear_forward, self._linear_backward = _LINEARS[linear]
        self.params = {name: to_device(np.asarray(state_dict[name]))
                       for name in PARAMETER_SHAPES}
        self.grads: dict[str, object] = {}
        self.momentum_buffers: dict[str, object] = {}
        self._acts: Activations | None = None

    # ------------------------------------------------------------------ forward / backward

    def forward(self, x):
        """Logits (N, 10) on the device of x, an (N, 1, 28, 28) device array of the model's dtype.

        Keeps the activations the backward needs.
        """
        P = self.params
        N = int(x.shape[0])
        S = layer_specs(N)
        a1 = kt.sigmoid_forward(kc.conv2d(x, P["0.weight"], P["0.bias"], S.conv0))  # (N, 6, 28, 28)
        p1 = kc.avg_pool2d(a1, S.pool2)  # (N, 6, 14, 14)
        a2 = kt.sigmoid_forward(
            kc.conv2d(p1, P["3.weight"], P["3.bias"], S.conv3))  # (N, 16, 10, 10)
        f = kc.avg_pool2d(a2, S.pool5).reshape(N, 400)  # (N, 16, 5, 5) -> (N, 400)
        a3 = kt.sigmoid_forward(self._linear_forward(f, P["7.weight"], P["7.bias"]))  # (N, 120)
        a4 = kt.sigmoid_forward(self._linear_forward(a3, P["9.weight"], P["9.bias"]))  # (N, 84)
        logits = self._linear_forward(a4, P["11.weight"], P["11.bias"])  # (N, 10)
        self._acts = Activations(x, a1, p1, a2, f, a3, a4)
        return logits

    def backward(self, grad_logits):
        """grad_logits : (N, 10) device array -> fills ``self.grads`` (one per parameter).

        The layers in reverse order; the gradient of the input image is not needed and is
        dropped.
        """
        if self._acts is None:
            raise RuntimeError("backward: call forward first (each forward allows one backward)")
        A, P, G = self._acts, self.params, self.grads
        self._acts = None
        N = int(A.x.shape[0])
        S = layer_specs(N)
        g, G["11.weight"], G["11.bias"] = self._linear_backward(grad_logits, A.a4,
                                                                P["11.weight"])  # (N, 84)
        g = kt.sigmoid_backward(g, A.a4)
        g, G["9.weight"], G["9.bias"] = self._linear_backward(g, A.a3, P["9.weight"])  # (N, 120)
        g = kt.sigmoid_backward(g, A.a3)
        g, G["7.weight"], G["7.bias"] = self._linear_backward(g, A.f, P["7.weight"])  # (N, 400)
        g = g.reshape(N, 16, 5, 5)  # un-flatten
        g = kc.avg_pool2d_backward(g, S.pool5)  # (N, 16, 10, 10)
        g = kt.sigmoid_backward(g, A.a2)
        g, G["3.weight"], G["3.bias"] = kc.conv2d_backward(
            g, A.p1, P["3.weight"], S.conv3)  # (N, 6, 14, 14)
        g = kc.avg_pool2d_backward(g, S.pool2)  # (N, 6, 28, 28)
        g = kt.sigmoid_backward(g, A.a1)
        _, G["0.weight"], G["0.bias"] = kc.conv2d_backward(g, A.x, P["0.weight"], S.conv0)

    def step(self):
        """One SGD step on every parameter, in place (``torch.optim.SGD``'s rule)."""
        if set(self.grads) != set(PARAMETER_SHAPES):
            raise RuntimeError("step: call backward first")
        for name, param in self.params.items():
            first = name not in self.momentum_buffers
            if first:
                self.momentum_buffers[name] = empty(param.shape, param.dtype)
            kt.sgd_step(param, self.grads[name], self.momentum_buffers[name], self.hyper,
                        first=first)

    # ------------------------------------------------------------------ one training step

    def train_step(self, x, labels) -> float:
        """Forward, mean softmax cross-entropy, backward and SGD on one batch.

        Parameters
        ----------
        x : (N, 1, 28, 28) NumPy or device array of the model's dtype
        labels : (N,) integer NumPy or int64 device array, classes in ``[0, 10)``

        Returns
        -------
        float
            The batch's mean loss before the update (the one device-to-host copy).
        """
        d_x, d_labels = self._batch(x, labels)
        logits = self.forward(d_x)
        loss, log_sum_exp = kt.cross_entropy_forward(logits, d_labels)
        self.backward(kt.cross_entropy_backward(logits, d_labels, log_sum_exp))
        self.step()
        return float(loss.copy_to_host()[0])

    def _batch(self, x, labels):
        if is_device_array(x):
            x = to_device(x)  # a torch / CuPy array becomes a Numba view (no copy)
        if is_device_array(labels):
            labels = to_device(labels)
        shape = tuple(int(s) for s in x.shape)
        if len(shape) != 4 or shape[1:] != INPUT_SHAPE:
            raise ValueError(f"x: expected shape (N, 1, 28, 28), got {shape}")
        if np.dtype(x.dtype) != self.dtype:
            raise TypeError(f"x: expected {self.dtype} (the model's dtype), got {x.dtype}")
        if not is_device_array(labels):
            labels = np.asarray(labels)
            if labels.dtype.kind not in "iu":
                raise TypeError(f"labels: expected integer classes, got {labels.dtype}")
            if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
                raise ValueError(f"labels: expected classes in [0, {NUM_CLASSES}), got "
                                 f"[{labels.min()}, {labels.max()}]")
            labels = labels.astype(np.int64)
        elif np.dtype(labels.dtype) != np.int64:
            raise TypeError(f"labels: expected an int64 device array, got {labels.dtype}")
        if tuple(int(s) for s in labels.shape) != (shape[0],):
            raise ValueError(f"labels: expected shape ({shape[0]},), got {labels.shape}")
        return to_device(x), to_device(labels)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The parameters as NumPy arrays, keyed as ``lenet5().state_dict()``."""
        return {name: param.copy_to_host() for name, param in self.params.items()}
