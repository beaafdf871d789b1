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
"""

from __future__ import annotations

import math
import numbers
import os
from typing import NamedTuple

import numpy as np

from kernels.common import (
    PAD_MODES,
    AdaptivePoolSpec,
    ConvGrads,
    ConvSpec,
    PadSpec,
    PoolSpec,
    conv_output_size,
)

from .backend import kernel_module

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _memory_limit_bytes() -> int | None:
    """Physical memory, or this process's cgroup memory limit when smaller; None if unknown."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX, or the name is unknown
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" means no limit
            limits.append(int(text))
    return min(limits) if limits else None


def _default_max_array_bytes() -> int:
    limit = _memory_limit_bytes()
    return 8 * 2**30 if limit is None else limit // 2


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


def _human(nbytes: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes} bytes"


def _check_size(name: str, what: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Raise MemoryError if an array of ``shape`` and ``dtype`` exceeds MAX_ARRAY_BYTES."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise MemoryError(
            f"{name}: {what} would need {_human(nbytes)} (shape {tuple(shape)}, "
            f"{np.dtype(dtype)}), more than MAX_ARRAY_BYTES = {_human(MAX_ARRAY_BYTES)}; "
            f"use a smaller batch or output, or raise minitorch_cnn.functional.MAX_ARRAY_BYTES"
        )


# --------------------------------------------------------------------------- validation


def _is_cuda_array(a: object) -> bool:
    """A GPU array (``__cuda_array_interface__``) or the CUDA simulator's stand-in for one."""
    if isinstance(a, np.ndarray):
        return False
    return hasattr(a, "__cuda_array_interface__") or type(a).__name__ == "FakeCUDAArray"


def _shape_dtype(a: object) -> tuple[tuple[int, ...], np.dtype]:
    if hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray):
        iface = a.__cuda_array_interface__
        return tuple(iface["shape"]), np.dtype(iface["typestr"])
    return a.shape, a.dtype


def _dtype_hint(dtype: np.dtype) -> str:
    """What to do with an array of an unsupported ``dtype``."""
    if dtype.kind == "c":
        return "this engine is real-valued: convolve .real and .imag separately"
    if dtype.kind == "O":
        return (
            "an object array (from ragged lists or mixed Python objects) has no numeric "
            "dtype; build a float array with np.asarray(..., dtype=np.float32)"
        )
    if dtype.kind == "f":  # float16, longdouble
        return f"{dtype} is not supported; pass float32, e.g. .astype(np.float32)"
    return "convert with .astype(np.float32)"


def _check_cuda_backend(name: str, backend: str | None) -> None:
    """A CUDA device array came as ``name``: only the ``cuda`` backend may take it."""
    if kernel_module(backend).__name__ != "kernels.cuda":
        raise TypeError(
            f"{name}: got a CUDA device array, which only backend='cuda' accepts (expected "
            f"a numpy.ndarray here); copy it to the host (e.g. .copy_to_host()) or pass "
            f"backend='cuda'"
        )


def _bool(value: object, name: str) -> bool:
    """``value`` if it is a bool (Python's or NumPy's), else a TypeError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def _array(a: object, name: str, ndim: int, layout: str, backend: str | None) -> object:
    """Check that ``a`` is a float32/float64 array of ``ndim`` dims; return it contiguous.

    A NumPy array in another layout (Fortran order, a strided or negative-stride view) or in
    non-native byte order is copied to a C-contiguous native one; ``a`` itself is never
    modified.
    """
    if _is_cuda_array(a):
        _check_cuda_backend(name, backend)
    elif isinstance(a, np.ma.MaskedArray):
        raise TypeError(
            f"{name}: expected a plain numpy.ndarray {layout}, got a masked array, whose mask "
            f"would be ignored; pass .filled(value) or np.asarray(...) explicitly"
        )
    elif not isinstance(a, np.ndarray):
        raise TypeError(
            f"{name}: expected a numpy.ndarray {layout} of float32 or float64, "
            f"got {type(a).__name__}; wrap it with np.asarray(..., dtype=np.float32)"
        )
    shape, dtype = _shape_dtype(a)
    native = dtype.newbyteorder("=") if dtype.kind == "f" else dtype
    if native not in FLOAT_DTYPES:
        raise TypeError(
            f"{name}: expected dtype float32 or float64, got {dtype}; {_dtype_hint(dtype)}"
        )
    if len(shape) != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array {layout}, got shape {shape}")
    if isinstance(a, np.ndarray):
        if not a.flags.c_contiguous or native != dtype:
            _check_size(name, "its C-contiguous copy", shape, native)
        a = np.ascontiguousarray(a, dtype=native)
    return a


def _same_dtype(name: str, a: object, ref_name: str, ref: object) -> None:
    da, dr = _shape_dtype(a)[1], _shape_dtype(ref)[1]
    if da != dr:
        raise TypeError(
            f"{name}: expected dtype {dr} (the dtype of {ref_name}), got {da}; "
            f"convert with .astype({ref_name}.dtype)"
        )


def _int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name}: expected a {what} int, got {value}")
    return int(value)


def _pair(value: object, name: str, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each >= ``minimum``, as a pair.

    A one-element sequence ``(k,)`` means ``k`` for both, as PyTorch accepts it.
    """
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            v = _int(value[0], name, minimum)
            return (v, v)
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or an (h, w) pair, got {value!r}")
        return (_int(value[0], name, minimum), _int(value[1], name, minimum))
    v = _int(value, name, minimum)
    return (v, v)


def _check_grad(grad_y: object, expected: tuple[int, ...], x: object, backend: str | None):
    grad_y = _array(grad_y, "grad_y", 4, "(N, C, H_out, W_out)", backend)
    _same_dtype("grad_y", grad_y, "x", x)
    shape = _shape_dtype(grad_y)[0]
    if tuple(shape) != tuple(expected):
        raise ValueError(
            f"grad_y: expected shape {tuple(expected)} (the forward output's), got {tuple(shape)}"
        )
    return grad_y


def _run(module, op: str, *args, **kwargs):
    """Call kernel ``op`` of ``module`` with IEEE semantics and no NumPy warnings.

    NaN and +-inf propagate through the arithmetic as in PyTorch, which neither warns nor
    raises; a caller's ``np.seterr(all="raise")`` must not turn a NaN input into a
    ``FloatingPointError`` from deep inside a kernel.
    """
    with np.errstate(all="ignore"):
        return getattr(module, op)(*args, **kwargs)


# --------------------------------------------------------------------------- corr2d


def corr2d(X: np.ndarray, K: np.ndarray, *, backend: str | None = None) -> np.ndarray:
    """Single-channel 2-D cross-correlation (no kernel flip), as in d2l.

    X : (H, W), K : (kh, kw) -> Y : (H - kh + 1, W - kw + 1)

    ``Y[i, j] = sum_{a, b} X[i + a, j + b] * K[a, b]``
    """
    X = _array(X, "X", 2, "(H, W)", backend)
    K = _array(K, "K", 2, "(kh, kw)", backend)
    _same_dtype("K", K, "X", X)
    (H, W), (kh, kw) = _shape_dtype(X)[0], _shape_dtype(K)[0]
    if kh == 0 or kw == 0 or kh > H or kw > W:
        raise ValueError(
            f"K: expected a non-empty kernel no larger than X {(H, W)}, got shape {(kh, kw)}"
        )
    return _run(kernel_module(backend), "corr2d", X, K)


# --------------------------------------------------------------------------- conv2d


class _ConvCall(NamedTuple):
    """What :func:`_conv_args` hands on: the arrays, the spec, and ``same``'s extra padding."""

    x: object  # (N, C_in, H, W), C-contiguous, not yet padded by ``extra``
    weight: object  # (C_out, C_in // groups, kH, kW)
    bias: object  # (C_out,) or None
    extra: tuple[int, int]  # (rows, cols) of zeros padding="same" adds at the bottom/right
    spec: ConvSpec  # the problem the kernel solves, on x padded by ``extra``


def _conv_args(x, weight, bias, stride, padding, dilation, groups, backend) -> _ConvCall:
    """Validate conv2d's arguments and build its :class:`kernels.common.ConvSpec`.

    ``padding="same"`` becomes the symmetric padding the kernels apply plus ``extra = (eh,
    ew)``, the one additional bottom/right row/column that an even effective kernel needs
    (PyTorch pads that explicitly too); the spec describes ``x`` with that extra included.
    """
    x = _array(x, "x", 4, "(N, C_in, H, W)", backend)
    weight = _array(weight, "weight", 4, "(C_out, C_in // groups, kH, kW)", backend)
    _same_dtype("weight", weight, "x", x)
    groups = _int(groups, "groups", 1)
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    (N, C_in, H, W), (C_out, C_in_g, kH, kW) = _shape_dtype(x)[0], _shape_dtype(weight)[0]
    if min(C_in, H, W) == 0:
        raise ValueError(f"x: expected C_in, H, W > 0, got shape {(N, C_in, H, W)}")
    if min(C_out, C_in_g, kH, kW) == 0:
        raise ValueError(
            f"weight: expected no zero-sized dimension, got shape {(C_out, C_in_g, kH, kW)}"
        )
    if C_in != C_in_g * groups:
        raise ValueError(
            f"weight: expected {C_in} // groups={groups} input channels per group "
            f"(x has C_in={C_in}), got weight of shape {(C_out, C_in_g, kH, kW)}, "
            f"i.e. {C_in_g} * groups = {C_in_g * groups} input channels"
        )
    if C_out % groups:
        raise ValueError(
            f"groups: expected a divisor of C_out={C_out} (weight.shape[0]), got {groups}"
        )
    if bias is not None:
        bias = _array(bias, "bias", 1, "(C_out,)", backend)
        _same_dtype("bias", bias, "x", x)
        if _shape_dtype(bias)[0][0] != C_out:
            raise ValueError(
                f"bias: expected shape ({C_out},) (C_out), got {_shape_dtype(bias)[0]}"
            )
    extra = (0, 0)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"padding: expected stride 1 with 'same' (as in PyTorch), got stride {stride}"
                )
            total = (dilation[0] * (kH - 1), dilation[1] * (kW - 1))
            padding = (total[0] // 2, total[1] // 2)
            extra = (total[0] % 2, total[1] % 2)
        else:
            raise ValueError(
                f"padding: expected an int, a pair, 'same' or 'valid', got {padding!r}"
            )
    else:
        padding = _pair(padding, "padding", 0)
    for axis, size, k in (("H", H, kH), ("W", W, kW)):
        i = 0 if axis == "H" else 1
        span = size + 2 * padding[i] + extra[i]
        reach = dilation[i] * (k - 1) + 1
        if reach > span:
            raise ValueError(
                f"weight: expected the dilated kernel to fit the padded input along {axis} "
                f"({size} + 2*{padding[i]}{' + 1' if extra[i] else ''} = {span}), "
                f"got one spanning {reach}"
            )
    spec = ConvSpec.from_shapes((N, C_in, H + extra[0], W + extra[1]), (C_out, C_in_g, kH, kW),
                                stride, padding, dilation, groups)
    if padding != (0, 0) or extra != (0, 0):
        padded = (N, C_in, spec.H_pad, spec.W_pad)
        _check_size("x", "its zero-padded copy", padded, _shape_dtype(x)[1])
    return _ConvCall(x, weight, bias, extra, spec)


def _zeros(like, shape: tuple[int, ...], dtype) -> object:
    """Zeros where ``like`` lives: a device array for a CUDA input (device in, device out).

    The answer of an op on an empty batch, which no kernel is launched for.
    """
    zeros = np.zeros(shape, dtype)
    if _is_cuda_array(like):
        from numba import cuda  # reached only with a CUDA array, so numba-cuda is installed

        return cuda.to_device(zeros)
    return zeros


def conv2d(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, backend=None
) -> np.ndarray:
    """2-D convolution (cross-correlation, as PyTorch's ``conv2d``).

    x : (N, C_in, H, W); weight : (C_out, C_in // groups, kH, kW); bias : (C_out,) or None
    -> y : (N, C_out, H_out, W_out), with
    ``H_out = 1 + (H + 2*padding - dilation*(kH - 1) - 1) // stride`` (same for W).

    ``stride``, ``padding``, ``dilation``: int or (h, w); ``padding`` also ``"valid"`` (0) or
    ``"same"`` (output size = input size; stride must be 1). ``groups`` splits the channels
    into independent convolutions.
    """
    call = _conv_args(x, weight, bias, stride, padding, dilation, groups, backend)
    spec, dtype = call.spec, _shape_dtype(call.x)[1]
    _check_size("conv2d", "the output", spec.y_shape, dtype)
    if spec.N == 0:
        return _zeros(call.x, spec.y_shape, dtype)
    module = kernel_module(backend)
    x = _pad_extra(module, call.x, call.extra)
    return _run(module, "conv2d", x, call.weight, call.bias, spec)


def _pad_extra(module, x, extra: tuple[int, int]):
    """Zero-pad ``extra`` rows/columns at the bottom/right (``padding="same"``, even kernel).

    PyTorch does the same: the symmetric part of the padding goes to the kernel, the odd
    extra row/column is padded explicitly. A CUDA array is padded by the cuda backend.
    """
    if extra == (0, 0):
        return x
    if _is_cuda_array(x):
        return module.pad_bottom_right(x, extra)
    return np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))


def conv2d_backward(
    grad_y, x, weight, stride=1, padding=0, dilation=1, groups=1, *, backend=None
) -> ConvGrads:
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    grad_y : (N, C_out, H_out, W_out), x : (N, C_in, H, W),
    weight : (C_out, C_in // groups, kH, kW)
    -> ``(grad_x (N, C_in, H, W), grad_weight (like weight), grad_bias (C_out,))``,
    a :class:`kernels.common.ConvGrads` that unpacks like a tuple.
    ``grad_bias = grad_y.sum((0, 2, 3))``.
    """
    call = _conv_args(x, weight, None, stride, padding, dilation, groups, backend)
    spec, dtype = call.spec, _shape_dtype(call.x)[1]
    grad_y = _check_grad(grad_y, spec.y_shape, call.x, backend)
    if spec.N == 0:
        return ConvGrads(_zeros(call.x, _shape_dtype(call.x)[0], dtype),
                         _zeros(call.x, spec.weight_shape, dtype),
                         _zeros(call.x, (spec.C_out,), dtype))
    module = kernel_module(backend)
    x_padded = _pad_extra(module, call.x, call.extra)
    gx, gw, gb = _run(module, "conv2d_backward", grad_y, x_padded, call.weight, spec)
    if call.extra != (0, 0):  # the extra row/col was padding: its gradient is dropped
        gx = gx[:, :, : spec.H - call.extra[0], : spec.W - call.extra[1]]
    return ConvGrads(gx, gw, gb)


# --------------------------------------------------------------------------- conv1d
#
# conv1d is conv2d on a one-row image: x (N, C_in, L) is viewed as (N, C_in, 1, L), weight
# (C_out, C_in // groups, k) as (C_out, C_in // groups, 1, k), and the 2-D kernels run with
# stride (1, s), padding (0, p), dilation (1, d). No backend has a 1-D kernel of its own.


def _single(value: object, name: str, minimum: int) -> int:
    """An int, or a one-element sequence ``(v,)`` of one (as PyTorch's conv1d accepts)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name}: expected an int or a one-element sequence, got {value!r}")
        value = value[0]
    return _int(value, name, minimum)


class _Conv1dCall(NamedTuple):
    """What :func:`_conv1d_args` hands on: the one-row 2-D views and conv2d's arguments."""

    x: object  # (N, C_in, 1, L), a view of the 3-D x
    weight: object  # (C_out, C_in // groups, 1, k), a view of the 3-D weight
    stride: tuple[int, int]  # (1, s)
    padding: tuple[int, int] | str  # (0, p), "same" or "valid"
    dilation: tuple[int, int]  # (1, d)
    groups: int
    y_shape: tuple[int, int, int]  # (N, C_out, L_out)


def _row_view(a: object, name: str, layout: str, backend: str | None) -> object:
    """Check that ``a`` is a 3-D float array ``layout``; return it as a one-row 4-D view.

    (N, C, L) -> (N, C, 1, L). A C-contiguous NumPy array or CUDA device array is reshaped
    without a copy; another layout is first made contiguous by :func:`_array`.
    """
    a = _array(a, name, 3, layout, backend)
    n0, n1, n2 = _shape_dtype(a)[0]
    return a.reshape(n0, n1, 1, n2)  # (n0, n1, 1, n2)


def _conv1d_args(x, weight, stride, padding, dilation, groups, backend) -> _Conv1dCall:
    """Validate conv1d's arguments with 1-D shapes in the messages; build the 2-D views.

    The bias, when there is one, is checked by :func:`conv2d` (its shape is the same).
    """
    x4 = _row_view(x, "x", "(N, C_in, L)", backend)
    w4 = _row_view(weight, "weight", "(C_out, C_in // groups, k)", backend)
    _same_dtype("weight", w4, "x", x4)
    groups = _int(groups, "groups", 1)
    stride = _single(stride, "stride", 1)
    dilation = _single(dilation, "dilation", 1)
    (N, C_in, _, L), (C_out, C_in_g, _, k) = _shape_dtype(x4)[0], _shape_dtype(w4)[0]
    if min(C_in, L) == 0:
        raise ValueError(f"x: expected C_in, L > 0, got shape {(N, C_in, L)}")
    if min(C_out, C_in_g, k) == 0:
        raise ValueError(
            f"weight: expected no zero-sized dimension, got shape {(C_out, C_in_g, k)}"
        )
    if C_in != C_in_g * groups:
        raise ValueError(
            f"weight: expected {C_in} // groups={groups} input channels per group "
            f"(x has C_in={C_in}), got weight of shape {(C_out, C_in_g, k)}, "
            f"i.e. {C_in_g} * groups = {C_in_g * groups} input channels"
        )
    if C_out % groups:
        raise ValueError(
            f"groups: expected a divisor of C_out={C_out} (weight.shape[0]), got {groups}"
        )
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding: expected an int, 'same' or 'valid', got {padding!r}")
        if padding == "same" and stride != 1:
            raise ValueError(
                f"padding: expected stride 1 with 'same' (as in PyTorch), got stride {stride}"
            )
        pad2: tuple[int, int] | str = padding
        p = 0 if padding == "valid" else None
    else:
        p = _single(padding, "padding", 0)
        pad2 = (0, p)
    reach = dilation * (k - 1) + 1
    if p is not None and reach > L + 2 * p:
        raise ValueError(
            f"weight: expected the dilated kernel to fit the padded input along L "
            f"({L} + 2*{p} = {L + 2 * p}), got one spanning {reach}"
        )
    L_out = L if p is None else conv_output_size(L, k, stride, p, dilation)
    return _Conv1dCall(x4, w4, (1, stride), pad2, (1, dilation), groups, (N, C_out, L_out))


def _drop_row(a):
    """(n0, n1, 1, n2) -> (n0, n1, n2): a view, for NumPy and CUDA device arrays alike."""
    return a[:, :, 0, :]


def conv1d(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, backend=None
) -> np.ndarray:
    """1-D convolution (cross-correlation, as PyTorch's ``conv1d``).

    x : (N, C_in, L); weight : (C_out, C_in // groups, k); bias : (C_out,) or None
    -> y : (N, C_out, L_out), with ``L_out = 1 + (L + 2*padding - dilation*(k - 1) - 1) // stride``.

    ``stride``, ``padding``, ``dilation``: int or one-element sequence; ``padding`` also
    ``"valid"`` (0) or ``"same"`` (L_out = L; stride must be 1; an even dilated kernel puts
    the extra zero at the right, as PyTorch). ``groups`` splits the channels.

    A thin view over the 2-D kernels: x and weight are viewed (no copy) as one-row images
    (N, C_in, 1, L) and (C_out, C_in // groups, 1, k), and :func:`conv2d` runs with stride
    ``(1, stride)``, padding ``(0, padding)``, dilation ``(1, dilation)``; its
    (N, C_out, 1, L_out) output is viewed back. Every backend runs it, CUDA device arrays
    included (device in, device out).
    """
    call = _conv1d_args(x, weight, stride, padding, dilation, groups, backend)
    y = conv2d(call.x, call.weight, bias, call.stride, call.padding, call.dilation, call.groups,
               backend=backend)  # (N, C_out, 1, L_out)
    return _drop_row(y)


def conv1d_backward(
    grad_y, x, weight, stride=1, padding=0, dilation=1, groups=1, *, backend=None
) -> ConvGrads:
    """Gradients of :func:`conv1d` with respect to its input, weight and bias.

    grad_y : (N, C_out, L_out), x : (N, C_in, L), weight : (C_out, C_in // groups, k)
    -> ``(grad_x (N, C_in, L), grad_weight (C_out, C_in // groups, k), grad_bias (C_out,))``,
    a :class:`kernels.common.ConvGrads`. ``grad_bias = grad_y.sum((0, 2))``.

    A thin view over :func:`conv2d_backward`, as :func:`conv1d` is over :func:`conv2d`:
    grad_y is viewed as (N, C_out, 1, L_out) and the 2-D gradients are viewed back.
    """
    call = _conv1d_args(x, weight, stride, padding, dilation, groups, backend)
    grad_y = _array(grad_y, "grad_y", 3, "(N, C_out, L_out)", backend)
    _same_dtype("grad_y", grad_y, "x", call.x)
    if tuple(_shape_dtype(grad_y)[0]) != call.y_shape:
        raise ValueError(f"grad_y: expected shape {call.y_shape} (the forward output's), "
                         f"got {tuple(_shape_dtype(grad_y)[0])}")
    N, C_out, L_out = call.y_shape
    gx, gw, gb = conv2d_backward(grad_y.reshape(N, C_out, 1, L_out), call.x, call.weight,
                                 call.stride, call.padding, call.dilation, call.groups,
                                 backend=backend)  # (N, C_in, 1, L), (C_out, C_in_g, 1, k)
    return ConvGrads(_drop_row(gx), _drop_row(gw), gb)


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


def _check_indices(indices, out_shape, plane_size, backend):
    """Validate max-pooling ``indices`` against the forward output's shape; return them."""
    if _is_cuda_array(indices):
        _check_cuda_backend("indices", backend)
    elif not isinstance(indices, np.ndarray) or isinstance(indices, np.ma.MaskedArray):
        raise TypeError(f"indices: expected the int64 numpy.ndarray that max_pool2d(..., "
                        f"return_indices=True) returned, got {type(indices).__name__}")
    shape, dtype = _shape_dtype(indices)
    if np.dtype(dtype).kind not in "iu":
        raise TypeError(f"indices: expected an integer array (int64), got dtype {dtype}")
    if tuple(shape) != tuple(out_shape):
        raise ValueError(f"indices: expected shape {tuple(out_shape)} (the forward output's), "
                         f"got {tuple(shape)}")
    if isinstance(indices, np.ndarray):
        indices = np.ascontiguousarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < -1 or indices.max() >= plane_size):
            raise ValueError(f"indices: expected values in [-1, H*W) = [-1, {plane_size}), "
                             f"got values in [{indices.min()}, {indices.max()}]")
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


# --------------------------------------------------------------------------- pad


def _pad_widths(pad, mode: str) -> tuple[int, int, int, int]:
    """``pad`` as ``(left, right, top, bottom)``: 4 ints, or 2 ``(left, right)`` in constant
    mode (as PyTorch, whose other modes need one pair per padded axis of a 4-D input).
    """
    if not isinstance(pad, (tuple, list)):
        raise TypeError(f"pad: expected a tuple of ints (left, right, top, bottom), got "
                        f"{type(pad).__name__} {pad!r}")
    for position, p in enumerate(pad):
        if isinstance(p, bool) or not isinstance(p, numbers.Integral):
            raise TypeError(f"pad: expected ints, got {type(p).__name__} {p!r} at position "
                            f"{position} of {tuple(pad)!r}")
    if len(pad) not in (2, 4):
        raise ValueError(f"pad: expected 2 ints (left, right) or 4 (left, right, top, bottom), "
                         f"got {len(pad)}: {tuple(pad)!r} (padding N or C is not supported)")
    if len(pad) == 2 and mode != "constant":
        raise ValueError(f"pad: expected 4 ints (left, right, top, bottom) with mode={mode!r}, "
                         f"which pads both spatial axes of a 4-D input (as PyTorch), got "
                         f"{tuple(pad)!r}")
    left, right, top, bottom = (tuple(pad) + (0, 0))[:4]
    return int(left), int(right), int(top), int(bottom)


def _pad_value(value, mode: str, dtype) -> float:
    """The fill value as a float: ``None`` is 0; only constant mode takes another one."""
    if value is None:
        return 0.0
    if not isinstance(value, numbers.Real):
        raise TypeError(f"value: expected a real number or None, got {type(value).__name__} "
                        f"{value!r}")
    value = float(value)
    if mode != "constant" and value != 0:
        raise ValueError(f"value: expected 0 or None with mode={mode!r}, which fills from x "
                         f"(PyTorch refuses a value too), got {value!r}")
    limit = float(np.finfo(dtype).max)
    if math.isfinite(value) and abs(value) > limit:
        raise ValueError(f"value: expected a value {dtype} can hold (|value| <= {limit:g}), "
                         f"got {value!r}")
    return value


def _check_pad_axis(axis: str, size: int, before: int, after: int, mode: str) -> None:
    """PyTorch's limits on the pads ``before``, ``after`` of an axis of ``size`` cells."""
    sides = f"{'(left, right)' if axis == 'W' else '(top, bottom)'} = ({before}, {after})"
    kept = size + min(before, 0) + min(after, 0)  # what the negative pads leave
    out = size + before + after
    if mode == "constant" and kept < 0:
        raise ValueError(f"pad: expected the negative pads along {axis} to crop at most its "
                         f"{size} cells, got {sides}")
    if out < 0:
        raise ValueError(f"pad: expected a non-negative output size along {axis}, got "
                         f"{size} + {before} + {after} = {out} from {sides}")
    if mode == "reflect" and max(before, after) >= size:
        raise ValueError(f"pad: expected reflect pads smaller than the input size {size} "
                         f"along {axis} (as PyTorch), got {sides}")
    if mode == "circular" and max(before, after) > size:
        raise ValueError(f"pad: expected circular pads of at most the input size {size} along "
                         f"{axis} (PyTorch wraps around once at most), got {sides}")
    if mode == "circular" and out > 0 and max(before, after) > kept:
        raise ValueError(f"pad: expected circular pads of at most the {kept} cells the "
                         f"negative pad leaves along {axis} (PyTorch fails or reads "
                         f"uninitialised memory there), got {sides}")


def _pad_args(x, pad, mode, value, backend) -> tuple[object, PadSpec, float]:
    """Validate ``F.pad``'s arguments; return ``x``, its :class:`kernels.common.PadSpec` and
    the fill value as a float.
    """
    x = _array(x, "x", 4, "(N, C, H, W)", backend)
    if not isinstance(mode, str):
        raise TypeError(f"mode: expected one of {PAD_MODES}, got {type(mode).__name__} "
                        f"{mode!r}")
    if mode not in PAD_MODES:
        raise ValueError(f"mode: expected one of {PAD_MODES}, got {mode!r}")
    left, right, top, bottom = _pad_widths(pad, mode)
    (N, C, H, W), dtype = _shape_dtype(x)
    value = _pad_value(value, mode, dtype)
    if mode in ("reflect", "replicate") and min(C, H, W) == 0:
        raise ValueError(f"x: expected C, H, W > 0 with mode={mode!r} (as PyTorch), got shape "
                         f"{(N, C, H, W)}")
    _check_pad_axis("H", H, top, bottom, mode)
    _check_pad_axis("W", W, left, right, mode)
    return x, PadSpec.from_shape((N, C, H, W), (left, right, top, bottom), mode), value


def _full(like, shape: tuple[int, ...], dtype, value: float) -> object:
    """``value`` everywhere, where ``like`` lives: constant padding of an empty input."""
    full = np.full(shape, value, dtype)
    if _is_cuda_array(like):
        from numba import cuda  # reached only with a CUDA array, so numba-cuda is installed

        return cuda.to_device(full)
    return full


def pad(x, pad, mode="constant", value=0.0, *, backend=None):
    """Pad (or, with negative pads, crop) the last two axes, as PyTorch's ``F.pad``.

    x : (N, C, H, W) -> y : (N, C, H + top + bottom, W + left + right), with
    ``pad = (left, right, top, bottom)`` (or ``(left, right)``: columns only, constant mode).

    ``mode``: ``"constant"`` fills with ``value`` (``None`` means 0); ``"reflect"`` mirrors
    about the edge cells without repeating them (each pad < the size); ``"replicate"``
    repeats the edge cells; ``"circular"`` wraps around (each pad <= the size). A negative
    pad crops that many cells off its side; circular padding then wraps around what is left,
    as PyTorch does. PyTorch's limits hold to the element, and where PyTorch raises (or
    returns uninitialised memory) this raises a ``ValueError`` naming ``pad``.
    """
    x, spec, value = _pad_args(x, pad, mode, value, backend)
    dtype = _shape_dtype(x)[1]
    _check_size("pad", "the output", spec.y_shape, dtype)
    if 0 in spec.x_shape or 0 in spec.y_shape:  # nothing to copy: constant fill only
        return _full(x, spec.y_shape, dtype, value)
    return _run(kernel_module(backend), "pad", x, value, spec)


def pad_backward(grad_y, x, pad, mode="constant", value=0.0, *, backend=None):
    """Gradient of :func:`pad` with respect to ``x`` (``value`` does not enter it).

    grad_y : (N, C, H_out, W_out), x : (N, C, H, W) -> grad_x : (N, C, H, W): each input cell
    gets the sum of the gradients of the output cells that copy it (several for a cell that
    reflect, replicate or circular padding repeats), 0 if it was cropped.
    """
    x, spec, _ = _pad_args(x, pad, mode, value, backend)
    grad_y = _check_grad(grad_y, spec.y_shape, x, backend)
    if 0 in spec.x_shape or 0 in spec.y_shape:
        return _zeros(x, spec.x_shape, _shape_dtype(x)[1])
    return _run(kernel_module(backend), "pad_backward", grad_y, spec)


__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "corr2d",
    "max_pool2d",
    "max_pool2d_backward",
    "pad",
    "pad_backward",
]
