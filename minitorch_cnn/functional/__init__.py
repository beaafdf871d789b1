"""The functional API: validate once, normalise, dispatch to a backend's kernel.

Every op here checks its arguments (shapes, dtypes, hyper-parameters) and raises a
``ValueError`` or ``TypeError`` that names the argument, says what was expected and what
came. It then normalises (ints to ``(h, w)`` pairs, ``"same"``/``"valid"`` padding,
``stride=None`` in pooling) and calls the function of the same name in the chosen backend's
kernel module (``kernels.naive``, ``kernels.vectorized``, ...). Kernels never re-check.

What the boundary accepts, beyond plain C-contiguous float arrays, and what it does with it:

- any memory layout (Fortran order, slices, negative strides, read-only arrays): a
  C-contiguous copy goes to the kernel when needed; inputs are never written to;
- non-native byte order (``'>f4'``, as in IDX files): converted to native order;
- hyper-parameters as a one-element sequence (``stride=(2,)``), as PyTorch accepts;
- NaN and +-inf: propagated by IEEE arithmetic as in PyTorch; NumPy's floating-point warnings
  (and a ``np.seterr(all="raise")`` the caller may have set) are switched off inside the
  kernels, as PyTorch does not warn either.

What it refuses with ``TypeError``: anything but a float32/float64 ``numpy.ndarray`` (or a CUDA
array for ``backend="cuda"``), i.e. Python scalars and lists, integer, bool, float16,
complex and object arrays, masked arrays (their mask would be ignored); with ``ValueError``:
wrong ndim, empty channel/spatial dimensions, mismatched shapes and bad hyper-parameters;
with ``MemoryError``: an array the op would allocate that exceeds :data:`MAX_ARRAY_BYTES`,
raised before allocating anything.

Shapes are NCHW for activations and OIHW for weights:
``x : (N, C_in, H, W)``, ``weight : (C_out, C_in // groups, kH, kW)``.

Layout: ``_checks`` (the validation every op shares), ``conv`` (corr2d, conv2d, conv1d),
``conv_transpose`` (conv_transpose2d),
``pool`` (max, average, adaptive, unpooling), ``pad``. Every public function is re-exported here, so
callers write ``from minitorch_cnn import functional as F`` and ``F.conv2d``.
"""

from ._checks import (  # the private helpers are re-exported for nn.Conv1d and the tests
    FLOAT_DTYPES,  # noqa: F401
    _default_max_array_bytes,
    _human,  # noqa: F401
    _memory_limit_bytes,  # noqa: F401
)
from .activation import (
    cat,
    cat_backward,
    dropout2d,
    dropout2d_backward,
    elu,
    elu_backward,
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    silu,
    silu_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from .conv import (
    _row_view,  # noqa: F401
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    corr2d,
)
from .conv_transpose import conv_transpose2d, conv_transpose2d_backward
from .linear import add, flatten, linear, linear_backward
from .loss import (
    cross_entropy,
    cross_entropy_backward,
    dropout,
    dropout_backward,
    log_softmax,
    log_softmax_backward,
    nll_loss,
    nll_loss_backward,
)
from .normalization import (
    BatchNormSaved,
    GroupNormSaved,
    batch_norm,
    batch_norm_backward,
    group_norm,
    group_norm_backward,
    layer_norm,
    layer_norm_backward,
)
from .optim_ops import adam_step, sgd_step
from .pad import pad, pad_backward
from .pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_unpool2d,
    max_unpool2d_backward,
)

MAX_ARRAY_BYTES: int = _default_max_array_bytes()
"""The most bytes one array that an op allocates may take, checked before allocating.

The arrays counted are the op's output, the zero-padded copy of ``x`` that the kernels make
when ``padding > 0``, and the C-contiguous copy of a non-contiguous input. Above the bound an
op raises ``MemoryError`` naming the shape and the bytes, instead of being killed by the
system's out-of-memory killer half-way through. Default: half the memory of this machine
(physical memory, or the cgroup limit of a container when smaller), 8 GiB when unknown.
Assign ``minitorch_cnn.functional.MAX_ARRAY_BYTES = ...`` to change it; it is read at every
call. The kernels' own working memory is bounded separately (the vectorized backend chunks its
im2col columns at ``kernels.vectorized.COLUMN_BYTES_LIMIT``).
"""

__all__ = [
    "adam_step",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "add",
    "avg_pool2d",
    "BatchNormSaved",
    "GroupNormSaved",
    "avg_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "group_norm",
    "group_norm_backward",
    "layer_norm",
    "layer_norm_backward",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "corr2d",
    "cross_entropy",
    "cross_entropy_backward",
    "dropout",
    "dropout_backward",
    "flatten",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "nll_loss",
    "nll_loss_backward",
    "pad",
    "pad_backward",
    "relu",
    "relu_backward",
    "sgd_step",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "cat",
    "cat_backward",
    "dropout2d",
    "dropout2d_backward",
    "elu",
    "elu_backward",
    "gelu",
    "gelu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "silu",
    "silu_backward",
    "softmax",
    "softmax_backward",
]
