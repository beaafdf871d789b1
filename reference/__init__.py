"""PyTorch oracle: the ops of ``minitorch_cnn.functional`` computed by torch.

Same names and signatures as ``minitorch_cnn.functional`` (the ``backend`` keyword is
accepted and ignored), NumPy in, NumPy out. Backward passes are computed by torch autograd,
not written by hand. This package shares no code with what it checks.
"""

from .functional import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv_transpose2d,
    conv_transpose2d_backward,
    corr2d,
    max_pool2d,
    max_pool2d_backward,
    max_unpool2d,
    max_unpool2d_backward,
    pad,
    pad_backward,
    relu,
    relu_backward,
)

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "corr2d",
    "max_pool2d",
    "max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "pad",
    "pad_backward",
    "relu",
    "relu_backward",
]
