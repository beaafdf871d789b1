"""What training needs besides conv and pooling: elementwise, GEMM, loss and optimizer kernels.

With these, a network trains end to end on the device (``minitorch_cnn.gpu_train``): the
batch goes over once, the loss comes back as one number, and everything in between runs in
the kernels of this package. The CPU twins are ``minitorch_cnn.nn`` (Sigmoid, Linear),
``minitorch_cnn.losses`` (CrossEntropyLoss) and ``minitorch_cnn.optim`` (SGD); the formulas
are theirs, which are PyTorch's.

1. ``sigmoid_forward`` / ``sigmoid_backward`` - elementwise: ``y = 1 / (1 + exp(-x))``,
   ``grad_x = grad_y * (1 - y) * y``; the kernels live in :mod:`.elementwise` (the backend's
   ``sigmoid``), imported here under these names;
2. ``linear_forward`` / ``linear_backward`` - ``y = x @ W.T + b`` as a naive GEMM, one thread
   per output element (``grad_x``, ``grad_W``, ``grad_b`` likewise, each a gather: no
   atomics); the kernels live in :mod:`.linear` (the backend's ``linear``), imported here;
3. ``linear_forward_conv`` / ``linear_backward_conv`` - the same layer as a 1x1 convolution
   of ``x`` viewed as ``(N, in, 1, 1)`` (:func:`one_by_one_spec` describes it), run by this
   backend's conv kernels (the implicit GEMM rung by default), so the tiled GEMM of
   ``conv_igemm`` does the work;
4. ``cross_entropy_forward`` / ``cross_entropy_backward`` - softmax cross-entropy, mean over
   the batch: one thread per sample computes its log-sum-exp and loss, one block adds the
   losses in a fixed order (deterministic, no atomics); the gradient is
   ``(softmax - one_hot) / N``; the kernels live in :mod:`.loss` (the backend's
   ``cross_entropy``), imported here;
5. ``sgd_step`` - ``torch.optim.SGD``'s update (momentum, weight decay, dampening,
   Nesterov), in place on the parameter and its momentum buffer; the hyper-parameters
   travel as one named record, ``kernels.common.SgdHyper``; the kernel lives in
   :mod:`.optim_ops` (the backend's ``sgd_step``), imported here.

Elementwise kernels use *grid-stride loops*: thread ``g = blockIdx.x * blockDim.x +
threadIdx.x`` handles elements ``g, g + G, g + 2G, ...`` where ``G = gridDim.x * blockDim.x``
is the number of threads in the grid. Consecutive threads touch consecutive elements (the
loads coalesce), and the result does not depend on the grid size, so the launch can size
the grid to the GPU (:func:`stride_blocks`: enough blocks to fill every SM) rather than to
the array. Under the simulator, where each thread is a Python thread costing about 0.1 ms to
start, the same loop runs with one block: the answer is the same, only the speed differs.

Arrays are device arrays (Numba's, or the simulator's fake ones), C-contiguous; elementwise
kernels see them flattened (``a.reshape(a.size)``, a view, no copy). float32 and float64,
one kernel per dtype (:func:`~kernels.cuda._arrays.kernel_cache`).
"""

from __future__ import annotations

import functools

from kernels.common import ConvSpec, SgdHyper  # noqa: F401 - SgdHyper re-exported

from .elementwise import (  # noqa: F401 - the element-wise kernels live there, re-exported
    BLOCKS_PER_SM,
    THREADS,
    flat,
    launch_stride,
    sigmoid_backward,
    sigmoid_backward_kernel,
    sigmoid_forward_kernel,
    stride_blocks,
)
from .elementwise import sigmoid as sigmoid_forward
from .linear import (  # noqa: F401 - the Linear kernels live there, re-exported
    linear_backward,
    linear_forward,
    linear_forward_kernel,
    linear_grad_bias_kernel,
    linear_grad_input_kernel,
    linear_grad_weight_kernel,
)
from .loss import (  # noqa: F401 - the cross-entropy kernels live there, re-exported
    REDUCE_THREADS,
    cross_entropy_backward,
    cross_entropy_backward_kernel,
    cross_entropy_forward,
    cross_entropy_rows_kernel,
    mean_kernel,
)
from .optim_ops import sgd_kernel, sgd_step  # noqa: F401 - SGD lives there, re-exported

# --------------------------------------------------------------------------- linear as a 1x1 conv


@functools.lru_cache(maxsize=64)
def one_by_one_spec(N: int, K: int, O: int) -> ConvSpec:
    """The 1x1 convolution that is a Linear layer with ``K`` inputs and ``O`` outputs.

    x (N, K, 1, 1), weight (O, K, 1, 1) -> y (N, O, 1, 1): stride 1, no padding, no
    dilation, one group. Built once per shape (a training step asks for the same ones).
    """
    return ConvSpec.from_shapes((N, K, 1, 1), (O, K, 1, 1), stride=(1, 1), padding=(0, 0),
                                dilation=(1, 1), groups=1)


def linear_forward_conv(x, weight, bias=None):
    """Linear as a 1x1 conv: x (N, in), weight (out, in), bias (out,) or None -> (N, out).

    ``x`` is viewed as ``(N, in, 1, 1)`` images and ``weight`` as ``(out, in, 1, 1)``
    filters (:func:`one_by_one_spec`); the conv's output ``(N, out, 1, 1)`` is ``y``. The
    conv rung is this backend's current one (``kernels.cuda.get_conv_algorithm()``).
    """
    from . import conv2d

    N, K = x.shape
    O = weight.shape[0]
    y = conv2d(x.reshape(N, K, 1, 1), weight.reshape(O, K, 1, 1), bias,
               one_by_one_spec(N, K, O))
    return y.reshape(N, O)  # (N, O, 1, 1) -> (N, O)


def linear_backward_conv(grad_y, x, weight):
    """The 1x1-conv route of :func:`linear_backward`: same arguments, same results."""
    from . import conv2d_backward

    N, K = x.shape
    O = weight.shape[0]
    grad_x, grad_w, grad_b = conv2d_backward(
        grad_y.reshape(N, O, 1, 1), x.reshape(N, K, 1, 1), weight.reshape(O, K, 1, 1),
        one_by_one_spec(N, K, O))
    return grad_x.reshape(N, K), grad_w.reshape(O, K), grad_b  # (N, K), (O, K), (O,)


# --------------------------------------------------------------------------- PTX check


def kernel_signatures():
    """``[]``: this module's kernels now live in :mod:`.loss`, :mod:`.optim_ops`,
    :mod:`.elementwise` and :mod:`.linear`, and ``kernels.cuda.ptx`` lists them from there.
    """
    return []


__all__ = [
    "BLOCKS_PER_SM",
    "REDUCE_THREADS",
    "SgdHyper",
    "THREADS",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "kernel_signatures",
    "linear_backward",
    "linear_backward_conv",
    "linear_forward",
    "linear_forward_conv",
    "one_by_one_spec",
    "sgd_step",
    "sigmoid_backward",
    "sigmoid_forward",
    "stride_blocks",
]
