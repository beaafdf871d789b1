"""Max, average and adaptive pooling and max unpooling, with their backward.

Each op validates, builds its record of :mod:`kernels.common` (``PoolSpec``,
``AdaptivePoolSpec``, ``UnpoolSpec``) and dispatches to the backend's kernel.
"""

from __future__ import annotations

import numbers

import numpy as np

from kernels.common import (
    AdaptivePoolSpec,
    PoolSpec,
    UnpoolSpec,
    unpool_output_size,
)

from ..backend import kernel_module
from ._checks import (
    _array,
    _bool,
    _check_cuda_backend,
    _check_grad,
    _check_size,
    _int,
    _is_cuda_array,
    _pair,
    _run,
    _shape_dtype,
    _zeros,
)

# --------------------------------------------------------------------------- pooling


def _pool_args(x, kernel_size, stride, padding, dilation, ceil_mode, backend,
               count_include_pad=True, divisor_override=None) -> tuple[object, PoolSpec]:
    """Validate pooling's arguments; return ``x`` and its :class:`kernels.common.PoolSpec`.

    ``stride=None`` (or an empty sequence, as PyTorch accepts) means ``stride = kernel_size``.
    ``count_include_pad`` and ``divisor_override`` (average pooling) arrive validated.
    """
    x = _array(x, "x", 4, "(N, C, H, W)", backend)
    kernel_size = _pair(kernel_size, "kernel_size", 1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel_size
    else:
        stride = _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    dilation = _pair(dilation, "dilation", 1)
    ceil_mode = _bool(ceil_mode, "ceil_mode")
    for i, axis in enumerate("HW"):
        if padding[i] > kernel_size[i] // 2:
            raise ValueError(
                f"padding: expected at most half the kernel size ({kernel_size[i]} // 2 = "
                f"{kernel_size[i] // 2}) along {axis}, got {padding[i]}"
            )
    (N, C, H, W) = _shape_dtype(x)[0]
    if min(C, H, W) == 0:
        raise ValueError(f"x: expected C, H, W > 0, got shape {(N, C, H, W)}")
    spec = PoolSpec.from_shape((N, C, H, W), kernel_size, stride, padding, dilation, ceil_mode)
    spec = spec.averaged(count_include_pad, divisor_override)
    for axis, size, out, k, p, d in (("H", H, spec.H_out, spec.kH, spec.pad_h, spec.dil_h),
                                     ("W", W, spec.W_out, spec.kW, spec.pad_w, spec.dil_w)):
        if out < 1:
            raise ValueError(
                f"kernel_size: expected the (dilated) window to fit the padded input along "
                f"{axis} ({size} + 2*{p} = {size + 2 * p}), got one spanning {d * (k - 1) + 1}"
            )
    if padding != (0, 0) or ceil_mode:  # the kernels pad x (with -inf or 0) to fit every window
        _check_size("x", "its padded copy", (N, C, spec.H_pad, spec.W_pad), _shape_dtype(x)[1])
    return x, spec


def max_pool2d(
    x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
    return_indices=False, backend=None
):
    """2-D max pooling, PyTorch's semantics (padding counts as -inf, NaN propagates).

    x : (N, C, H, W) -> y : (N, C, H_out, W_out),
    ``H_out = 1 + (H + 2*padding - dilation*(kernel - 1) - 1) // stride``, rounded up in
    ``ceil_mode`` unless the last window would start in the padding. ``stride=None`` means
    ``stride = kernel_size``.

    With ``return_indices=True`` returns ``(y, indices)``, as PyTorch: ``indices`` is int64
    ``(N, C, H_out, W_out)``, the flat position ``h*W + w`` of each maximum in its input
    plane (``-1`` for a window with no cell inside the input, where PyTorch's index points
    outside the plane). Pass them to :func:`max_pool2d_backward` to skip its search.
    """
    x, spec = _pool_args(x, kernel_size, stride, padding, dilation, ceil_mode, backend)
    return_indices = _bool(return_indices, "return_indices")
    dtype = _shape_dtype(x)[1]
    _check_size("max_pool2d", "the output", spec.y_shape, dtype)
    if spec.N == 0:
        y = _zeros(x, spec.y_shape, dtype)
        return (y, _zeros(x, spec.y_shape, np.int64)) if return_indices else y
    return _run(kernel_module(backend), "max_pool2d", x, spec, return_indices=return_indices)


def _check_indices(indices, out_shape, plane_size, backend, *, low=-1,
                   source="max_pool2d", whose="the forward output's"):
    """Validate pooling ``indices``: an integer array of ``out_shape``, values in
    ``[low, plane_size)``; return them as C-contiguous int64 (a CUDA array as it came).

    ``source`` names the op that returns such indices, ``whose`` the shape they must have
    (both for the message); ``plane_size`` is ``H*W`` of the plane they index.
    """
    if _is_cuda_array(indices):
        _check_cuda_backend("indices", backend)
    elif not isinstance(indices, np.ndarray) or isinstance(indices, np.ma.MaskedArray):
        raise TypeError(f"indices: expected the int64 numpy.ndarray that {source}(..., "
                        f"return_indices=True) returned, got {type(indices).__name__}")
    shape, dtype = _shape_dtype(indices)
    if np.dtype(dtype).kind not in "iu":
        raise TypeError(f"indices: expected an integer array (int64), got dtype {dtype}")
    if tuple(shape) != tuple(out_shape):
        raise ValueError(f"indices: expected shape {tuple(out_shape)} ({whose}), "
                         f"got {tuple(shape)}")
    if isinstance(indices, np.ndarray):
        indices = np.ascontiguousarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < low or indices.max() >= plane_size):
            raise ValueError(f"indices: expected values in [{low}, H*W) = [{low}, {plane_size}), "
                             f"got values in [{indices.min()}, {indices.max()}] (a flat "
                             f"position h*W + w in the input plane)")
    return indices


def max_pool2d_backward(
    grad_y, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
    indices=None, backend=None
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to ``x``.

    grad_y : (N, C, H_out, W_out), x : (N, C, H, W) -> grad_x : (N, C, H, W).
    Each output's gradient goes to the position of its window's maximum: the first one in
    row-major window order on ties; a NaN counts as the maximum (as in PyTorch). Without
    ``indices`` the maxima are searched for again in ``x``; with the ``indices`` that
    ``max_pool2d(..., return_indices=True)`` returned (as PyTorch's autograd keeps them) the
    backward is one scatter-add. (On a CUDA device array, indices are not range-checked.)
    """
    x, spec = _pool_args(x, kernel_size, stride, padding, dilation, ceil_mode, backend)
    grad_y = _check_grad(grad_y, spec.y_shape, x, backend)
    if indices is not None:
        indices = _check_indices(indices, spec.y_shape, spec.H * spec.W, backend)
    if spec.N == 0:
        return _zeros(x, spec.x_shape, _shape_dtype(x)[1])
    return _run(kernel_module(backend), "max_pool2d_backward", grad_y, x, indices, spec)


def _avg_args(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              backend) -> tuple[object, PoolSpec]:
    count_include_pad = _bool(count_include_pad, "count_include_pad")
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral):
            raise TypeError(
                f"divisor_override: expected None or a non-zero int, got "
                f"{type(divisor_override).__name__} {divisor_override!r}"
            )
        if divisor_override == 0:
            raise ValueError("divisor_override: expected None or a non-zero int, got 0")
        divisor_override = int(divisor_override)
    return _pool_args(x, kernel_size, stride, padding, 1, ceil_mode, backend,
                      count_include_pad, divisor_override)


def avg_pool2d(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None, *, backend=None,
) -> np.ndarray:
    """2-D average pooling, PyTorch's semantics.

    x : (N, C, H, W) -> y : (N, C, H_out, W_out) (output size as :func:`max_pool2d`, no
    dilation). Each window's sum is divided by its size counting padding
    (``count_include_pad=True``) or only real input cells, or by ``divisor_override``.
    """
    x, spec = _avg_args(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override, backend)
    dtype = _shape_dtype(x)[1]
    _check_size("avg_pool2d", "the output", spec.y_shape, dtype)
    if spec.N == 0:
        return _zeros(x, spec.y_shape, dtype)
    return _run(kernel_module(backend), "avg_pool2d", x, spec)


def avg_pool2d_backward(
    grad_y, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None, *, backend=None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` with respect to ``x``.

    grad_y : (N, C, H_out, W_out), x : (N, C, H, W) -> grad_x : (N, C, H, W); each output's
    gradient, divided by its window's divisor, is spread over the window's real input cells.
    """
    x, spec = _avg_args(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override, backend)
    grad_y = _check_grad(grad_y, spec.y_shape, x, backend)
    if spec.N == 0:
        return _zeros(x, spec.x_shape, _shape_dtype(x)[1])
    return _run(kernel_module(backend), "avg_pool2d_backward", grad_y, spec)


def _adaptive_args(x, output_size, backend) -> tuple[object, AdaptivePoolSpec]:
    x = _array(x, "x", 4, "(N, C, H, W)", backend)
    (N, C, H, W) = _shape_dtype(x)[0]
    if min(C, H, W) == 0:
        raise ValueError(f"x: expected C, H, W > 0, got shape {(N, C, H, W)}")
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size: expected an int or an (h, w) pair, got {output_size!r}")
        oh, ow = output_size
        oh = H if oh is None else _int(oh, "output_size", 1)
        ow = W if ow is None else _int(ow, "output_size", 1)
        output_size = (oh, ow)
    else:
        output_size = _pair(output_size, "output_size", 1)
    return x, AdaptivePoolSpec.from_shape((N, C, H, W), output_size)


def adaptive_avg_pool2d(x, output_size, *, backend=None) -> np.ndarray:
    """Adaptive average pooling to a fixed output size.

    x : (N, C, H, W) -> y : (N, C, oh, ow). Output cell ``i`` along H averages input rows
    ``floor(i*H/oh) .. ceil((i+1)*H/oh) - 1`` (same for W). ``output_size``: int or (h, w);
    ``None`` in the pair keeps that input size.
    """
    x, spec = _adaptive_args(x, output_size, backend)
    dtype = _shape_dtype(x)[1]
    _check_size("adaptive_avg_pool2d", "the output", spec.y_shape, dtype)
    if spec.N == 0:
        return _zeros(x, spec.y_shape, dtype)
    return _run(kernel_module(backend), "adaptive_avg_pool2d", x, spec)


def adaptive_avg_pool2d_backward(grad_y, x, output_size, *, backend=None) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d`: grad_y : (N, C, oh, ow) -> (N, C, H, W)."""
    x, spec = _adaptive_args(x, output_size, backend)
    grad_y = _check_grad(grad_y, spec.y_shape, x, backend)
    if spec.N == 0:
        return _zeros(x, spec.x_shape, _shape_dtype(x)[1])
    return _run(kernel_module(backend), "adaptive_avg_pool2d_backward", grad_y, spec)




# --------------------------------------------------------------------------- adaptive max


def adaptive_max_pool2d(x, output_size, return_indices=False, *, backend=None):
    """Adaptive max pooling to a fixed output size, PyTorch's semantics.

    x : (N, C, H, W) -> y : (N, C, oh, ow). Output cell ``i`` along H takes the maximum over
    input rows ``floor(i*H/oh) .. ceil((i+1)*H/oh) - 1`` (same for W; windows of
    :func:`adaptive_avg_pool2d`). Ties go to the first maximum in row-major window order, a
    NaN is the maximum (the last NaN of a window wins), as PyTorch's. ``output_size``: int or
    (h, w); ``None`` in the pair keeps that input size.

    With ``return_indices=True`` returns ``(y, indices)``: ``indices`` int64 (N, C, oh, ow),
    the flat ``h*W + w`` of each maximum in its input plane, as PyTorch's; pass them to
    :func:`adaptive_max_pool2d_backward`.
    """
    x, spec = _adaptive_args(x, output_size, backend)
    return_indices = _bool(return_indices, "return_indices")
    dtype = _shape_dtype(x)[1]
    _check_size("adaptive_max_pool2d", "the output", spec.y_shape, dtype)
    if spec.N == 0:
        y = _zeros(x, spec.y_shape, dtype)
        return (y, _zeros(x, spec.y_shape, np.int64)) if return_indices else y
    return _run(kernel_module(backend), "adaptive_max_pool2d", x, spec,
                return_indices=return_indices)


def adaptive_max_pool2d_backward(grad_y, x, output_size, *, indices=None, backend=None):
    """Gradient of :func:`adaptive_max_pool2d` with respect to ``x``.

    grad_y : (N, C, oh, ow), x : (N, C, H, W) -> grad_x : (N, C, H, W). Each output's
    gradient goes to its window's maximum (found again in ``x``, or read from the
    ``indices`` the forward returned); windows that share a maximum add up.
    """
    x, spec = _adaptive_args(x, output_size, backend)
    grad_y = _check_grad(grad_y, spec.y_shape, x, backend)
    if indices is not None:
        indices = _check_indices(indices, spec.y_shape, spec.H * spec.W, backend, low=0,
                                 source="adaptive_max_pool2d")
    if spec.N == 0:
        return _zeros(x, spec.x_shape, _shape_dtype(x)[1])
    return _run(kernel_module(backend), "adaptive_max_pool2d_backward", grad_y, x, indices,
                spec)


# --------------------------------------------------------------------------- max unpooling


def _unpool_output_size(output_size, default, stride) -> tuple[int, int]:
    """PyTorch's ``output_size`` of max unpooling: ``(h, w)`` or ``(N, C, h, w)``, each
    strictly between ``default - stride`` and ``default + stride`` (the sizes a max pool of
    this window maps back to the input's size); ``None`` gives ``default``.
    """
    if output_size is None:
        return default
    if not isinstance(output_size, (tuple, list)) or len(output_size) not in (2, 4):
        raise ValueError(f"output_size: expected None or a sequence of 2 ints (h, w) or 4 "
                         f"(N, C, h, w), got {output_size!r}")
    sizes = tuple(_int(v, "output_size", 0) for v in output_size[-2:])
    for i, axis in enumerate("HW"):
        low, high = default[i] - stride[i], default[i] + stride[i]
        if not max(low, 0) < sizes[i] < high:
            raise ValueError(
                f"output_size: expected {axis} between {max(low, 0)} and {high} (exclusive: "
                f"the sizes a max pool with this kernel_size, stride and padding maps to the "
                f"input's size), got {sizes[i]}")
    return sizes


def _unpool_args(x, indices, kernel_size, stride, padding, output_size, backend):
    """Validate max unpooling's arguments; return ``x``, ``indices`` and the UnpoolSpec."""
    x = _array(x, "x", 4, "(N, C, H, W)", backend)
    (N, C, H, W) = _shape_dtype(x)[0]
    if min(C, H, W) == 0:
        raise ValueError(f"x: expected C, H, W > 0, got shape {(N, C, H, W)}")
    kernel_size = _pair(kernel_size, "kernel_size", 1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel_size
    else:
        stride = _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    default = tuple(unpool_output_size(size, k, s, p) for size, k, s, p in
                    zip((H, W), kernel_size, stride, padding, strict=True))
    if output_size is None and min(default) < 1:
        raise ValueError(
            f"padding: expected an output of at least one cell ((H - 1)*stride - 2*padding + "
            f"kernel_size per axis), got {default} from x {(H, W)}, kernel_size "
            f"{kernel_size}, stride {stride}, padding {padding}")
    spec = UnpoolSpec.from_shape((N, C, H, W), _unpool_output_size(output_size, default, stride))
    indices = _check_indices(indices, spec.x_shape, spec.H_out * spec.W_out, backend, low=0,
                             whose="x's")
    return x, indices, spec


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 backend=None):
    """Max unpooling: the inverse placement of ``max_pool2d(..., return_indices=True)``.

    x, indices : (N, C, H, W) -> y : (N, C, H_out, W_out), zeros except
    ``y[n, c].flat[indices[n, c, i, j]] = x[n, c, i, j]``. ``H_out = (H - 1)*stride -
    2*padding + kernel_size`` (PyTorch's default, ``stride=None`` meaning ``kernel_size``),
    or ``output_size`` ``(h, w)`` / ``(N, C, h, w)``, each strictly within ``stride`` of that
    default, as PyTorch allows (a pool whose input had a leftover row or column). Where
    several inputs name one cell, the last in row-major order wins, on every backend
    (PyTorch's CPU kernel does so within each of its threads' chunks; its docs call duplicate
    indices nondeterministic). ``indices`` outside ``[0, H_out*W_out)`` raise
    ``ValueError`` (PyTorch: ``RuntimeError: Found an invalid max index``); on a CUDA device
    array they are not checked and are skipped.
    """
    x, indices, spec = _unpool_args(x, indices, kernel_size, stride, padding, output_size,
                                    backend)
    dtype = _shape_dtype(x)[1]
    _check_size("max_unpool2d", "the output", spec.y_shape, dtype)
    if spec.N == 0:
        return _zeros(x, spec.y_shape, dtype)
    return _run(kernel_module(backend), "max_unpool2d", x, indices, spec)


def max_unpool2d_backward(grad_y, x, indices, kernel_size, stride=None, padding=0,
                          output_size=None, *, backend=None):
    """Gradient of :func:`max_unpool2d` with respect to ``x``: a gather.

    grad_y : (N, C, H_out, W_out), x, indices : (N, C, H, W) -> grad_x : (N, C, H, W),
    ``grad_x[n, c, i, j] = grad_y[n, c].flat[indices[n, c, i, j]]``. With duplicate
    indices every input naming a cell gets its gradient, also those the forward overwrote,
    as PyTorch's autograd computes it. ``x`` gives the shapes and the dtype.
    """
    x, indices, spec = _unpool_args(x, indices, kernel_size, stride, padding, output_size,
                                    backend)
    grad_y = _check_grad(grad_y, spec.y_shape, x, backend)
    if spec.N == 0:
        return _zeros(x, spec.x_shape, _shape_dtype(x)[1])
    return _run(kernel_module(backend), "max_unpool2d_backward", grad_y, indices, spec)
