"""The ``cuda`` backend: Numba CUDA kernels for every op, forward and backward.

Read the modules in this order:

1. ``conv_direct``  - rung (a): one thread per output element, everything from global memory;
2. ``conv_tiled``   - rung (b): the input patch and the filter staged in shared memory;
3. ``conv_igemm``   - rung (c): implicit GEMM with shared-memory tiles of A and B, register
   blocking, coalesced loads and prefetch; the production path, also used for backward;
4. ``conv_backward`` - grad_input / grad_weight (split reduction) / grad_bias, all gathers;
5. ``pool``         - max / avg / adaptive-avg pooling, forward and gather backward;
6. ``train``        - what training adds (sigmoid, Linear as a GEMM or a 1x1 conv, softmax
   cross-entropy, SGD), so that ``minitorch_cnn.gpu_train`` trains LeNet-5 on the device.

Which conv rung runs is an option of this backend, not a backend name::

    import kernels.cuda
    with kernels.cuda.conv_algorithm("tiled"):   # "direct", "tiled" or "igemm"
        y = F.conv2d(x, w, backend="cuda")
    kernels.cuda.set_conv_algorithm("direct")    # the module default (initially "igemm")

Arrays: NumPy in gives NumPy out (copied to the device and back). When ``x`` (the input, in
every op) has ``__cuda_array_interface__`` (a Numba device array, a torch CUDA tensor) the
result stays on the device and comes back as a Numba device array. Every op supports float32
and float64, stride, padding, dilation, groups and non-square kernels.

Without a GPU, set ``NUMBA_ENABLE_CUDASIM=1`` before ``numba.cuda`` is first imported: the
simulator runs the same kernels as Python threads (slowly).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from numba import cuda

from kernels import KERNEL_FUNCTIONS
from kernels.common import ConvGrads, conv_output_size, pool_output_size

from . import conv_backward, conv_direct, conv_igemm, conv_tiled, pool
from ._arrays import (
    SIMULATOR,
    blocks,
    conv_geometry,
    empty,
    finish,
    is_device_array,
    numba_dtype,
    pad_kernel,
    to_device,
)

ALGORITHMS = ("direct", "tiled", "igemm")
DEFAULT_ALGORITHM = "igemm"

_default_algorithm = DEFAULT_ALGORITHM
_scoped_algorithm: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "minitorch_cnn_cuda_conv_algorithm", default=None
)


def _check_algorithm(name: object) -> str:
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {name!r}")
    return name


def get_conv_algorithm() -> str:
    """The conv rung in use: ``"direct"``, ``"tiled"`` or ``"igemm"``."""
    return _scoped_algorithm.get() or _default_algorithm


def set_conv_algorithm(name: str) -> None:
    """Make ``name`` the module-wide default conv rung."""
    global _default_algorithm
    _default_algorithm = _check_algorithm(name)


@contextlib.contextmanager
def conv_algorithm(name: str) -> Iterator[str]:
    """Run conv2d / conv2d_backward with rung ``name`` inside a ``with`` block."""
    token = _scoped_algorithm.set(_check_algorithm(name))
    try:
        yield name
    finally:
        _scoped_algorithm.reset(token)


def unavailable_reason() -> str | None:
    """``None`` when Numba can run CUDA kernels here (a GPU, or the simulator), else why not."""
    try:
        available = cuda.is_available()
    except Exception as exc:  # noqa: BLE001 - a broken driver is "not available"
        return f"numba.cuda.is_available() failed: {type(exc).__name__}: {exc}"
    if available:
        return None
    return ("numba.cuda.is_available() is False: no usable CUDA GPU and driver here "
            "(set NUMBA_ENABLE_CUDASIM=1 before numba.cuda is imported to use the simulator)")


def _device(*arrays):
    return tuple(None if a is None else to_device(a) for a in arrays)


def _bias(d_bias, d_x):
    return empty((0,), d_x.dtype) if d_bias is None else d_bias


# --------------------------------------------------------------------------- conv


def _conv_forward(dx, dw, db, stride, padding, dilation, groups):
    N, _, H, W = dx.shape
    C_out, _, kh, kw = dw.shape
    y_shape = (N, C_out, conv_output_size(H, kh, stride[0], padding[0], dilation[0]),
               conv_output_size(W, kw, stride[1], padding[1], dilation[1]))
    DT = numba_dtype(dx)
    db = _bias(db, dx)
    algorithm = get_conv_algorithm()
    if algorithm == "tiled":
        y = conv_tiled.conv2d(dx, dw, db, y_shape, stride, padding, dilation, groups, DT)
        if y is not None:
            return y
        algorithm = "direct"  # the patch does not fit in shared memory
    if algorithm == "direct":
        return conv_direct.conv2d(dx, dw, db, y_shape, stride, padding, dilation, groups, DT)
    geom = conv_geometry(dx.shape, dw.shape, y_shape, stride, padding, dilation, groups)
    return conv_igemm.conv2d(dx, dw, db, y_shape, geom, groups, DT)


def conv2d(x, weight, bias, stride, padding, dilation, groups):
    """Conv forward with the rung of :func:`get_conv_algorithm`.

    x (N, C_in, H, W), weight (C_out, C_in // groups, kH, kW), bias (C_out,) or None
    -> y (N, C_out, H_out, W_out).
    """
    dx, dw, db = _device(x, weight, bias)
    y = _conv_forward(dx, dw, db, stride, padding, dilation, groups)
    return finish(y, not is_device_array(x))


def corr2d(X, K):
    """Single-channel cross-correlation X (H, W), K (kh, kw) -> (H - kh + 1, W - kw + 1).

    It is conv2d with one image, one channel in and out.
    """
    dX, dK = _device(X, K)
    H, W = dX.shape
    kh, kw = dK.shape
    y = _conv_forward(dX.reshape(1, 1, H, W), dK.reshape(1, 1, kh, kw), None,
                      (1, 1), (0, 0), (1, 1), 1)
    return finish(y.reshape(H - kh + 1, W - kw + 1), not is_device_array(X))


def conv2d_backward(grad_y, x, weight, stride, padding, dilation, groups):
    """grad_y (N, C_out, H_out, W_out), x, weight -> ConvGrads(grad_x, grad_weight, grad_bias)."""
    dgy, dx, dw = _device(grad_y, x, weight)
    gx, gw, gb = conv_backward.conv2d_backward(dgy, dx, dw, stride, padding, dilation, groups,
                                               numba_dtype(dx), get_conv_algorithm())
    host = not is_device_array(x)
    return ConvGrads(finish(gx, host), finish(gw, host), finish(gb, host))


def pad_bottom_right(x, extra):
    """Zero-pad ``extra = (eh, ew)`` rows / columns at the bottom / right of a device array.

    x (N, C, H, W) -> (N, C, H + eh, W + ew), a new Numba device array (``padding="same"``
    with an even kernel needs this; ``minitorch_cnn.functional`` calls it).
    """
    (dx,) = _device(x)
    N, C, H, W = dx.shape
    out = empty((N, C, H + extra[0], W + extra[1]), dx.dtype)
    total = N * C * (H + extra[0]) * (W + extra[1])
    pad_kernel(numba_dtype(dx))[blocks(total, 256), 256](dx, out)
    return out


# --------------------------------------------------------------------------- pooling


def _pool_out(x_shape, kernel, stride, padding, dilation, ceil_mode):
    return tuple(pool_output_size(x_shape[2 + i], kernel[i], stride[i], padding[i], dilation[i],
                                  ceil_mode) for i in range(2))


def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=False):
    """Max pooling, PyTorch's rule: x (N, C, H, W) -> y (N, C, H_out, W_out).

    With ``return_indices``, also the int64 flat ``h*W + w`` argmax per window (``-1`` where
    a window has nothing inside the input), on the device when ``x`` is.
    """
    (dx,) = _device(x)
    out_hw = _pool_out(dx.shape, kernel_size, stride, padding, dilation, ceil_mode)
    host = not is_device_array(x)
    if return_indices:
        y, argmax = pool.max_pool2d(dx, out_hw, kernel_size, stride, padding, dilation,
                                    numba_dtype(dx), want_argmax=True)
        return finish(y, host), finish(argmax, host)
    y = pool.max_pool2d(dx, out_hw, kernel_size, stride, padding, dilation, numba_dtype(dx))
    return finish(y, host)


def max_pool2d_backward(grad_y, x, kernel_size, stride, padding, dilation, ceil_mode,
                        indices=None):
    """grad_y (N, C, H_out, W_out), x (N, C, H, W) -> grad_x (N, C, H, W).

    ``indices`` (from ``max_pool2d(..., return_indices=True)``) skips the argmax pass.
    """
    dgy, dx = _device(grad_y, x)
    argmax = None if indices is None else _device(indices)[0]
    gx = pool.max_pool2d_backward(dgy, dx, kernel_size, stride, padding, dilation,
                                  numba_dtype(dx), argmax)
    return finish(gx, not is_device_array(x))


def avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Average pooling, PyTorch's divisor: x (N, C, H, W) -> y (N, C, H_out, W_out)."""
    (dx,) = _device(x)
    out_hw = _pool_out(dx.shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    y = pool.avg_pool2d(dx, out_hw, kernel_size, stride, padding, count_include_pad,
                        divisor_override, numba_dtype(dx))
    return finish(y, not is_device_array(x))


def avg_pool2d_backward(grad_y, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    """grad_y (N, C, H_out, W_out), x (N, C, H, W) -> grad_x (N, C, H, W)."""
    (dgy,) = _device(grad_y)
    x_shape = tuple(int(s) for s in (x.shape if hasattr(x, "shape") else
                                     x.__cuda_array_interface__["shape"]))
    gx = pool.avg_pool2d_backward(dgy, x_shape, kernel_size, stride, padding,
                                  count_include_pad, divisor_override, numba_dtype(dgy))
    return finish(gx, not is_device_array(x))


def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling: x (N, C, H, W) -> y (N, C, oh, ow)."""
    (dx,) = _device(x)
    y = pool.adaptive_avg_pool2d(dx, tuple(output_size), numba_dtype(dx))
    return finish(y, not is_device_array(x))


def adaptive_avg_pool2d_backward(grad_y, x, output_size):
    """grad_y (N, C, oh, ow), x (N, C, H, W) -> grad_x (N, C, H, W)."""
    (dgy,) = _device(grad_y)
    x_shape = tuple(int(s) for s in (x.shape if hasattr(x, "shape") else
                                     x.__cuda_array_interface__["shape"]))
    gx = pool.adaptive_avg_pool2d_backward(dgy, x_shape, tuple(output_size), numba_dtype(dgy))
    return finish(gx, not is_device_array(x))


__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "KERNEL_FUNCTIONS",
    "SIMULATOR",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_algorithm",
    "corr2d",
    "get_conv_algorithm",
    "max_pool2d",
    "max_pool2d_backward",
    "pad_bottom_right",
    "set_conv_algorithm",
    "unavailable_reason",
]
