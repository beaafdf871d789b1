"""Validation shared by every op of the functional API (see the package docstring).

_FAST_PATHS: every check answers its common case first with exact type tests (``type(a) is
np.ndarray``, ``type(v) is int``), and only then runs the general checks and their error
messages. The validation is paid on every call, and on a small layer it cost more than the
kernel: ``python -m benchmarks.overhead`` (AVX2 EPYC) timed ``F.conv2d`` of a (1, 2, 6, 6)
input and a 3x3 kernel at 47.0 us, of which 30.8 us were the functional layer's, against
9.9 us for PyTorch's; with the fast paths (and the specs remembered,
:func:`kernels.common._conv_spec`) 29.9 us, 13.7 of them the layer's
(``benchmarks/results/cpu_overhead_epyc_avx2_before.json`` and ``..._avx2.json``).
``hasattr(a, "__cuda_array_interface__")`` alone, asked of an ndarray, raises and catches an
AttributeError each time; ``isinstance(v, numbers.Integral)`` walks the ABC registry.
"""

from __future__ import annotations

import math
import numbers
import os
import sys

import numpy as np

from ..backend import kernel_module

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


def _human(nbytes: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes} bytes"


def _check_size(name: str, what: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Raise MemoryError if an array of ``shape`` and ``dtype`` exceeds MAX_ARRAY_BYTES."""
    limit = sys.modules[__package__].MAX_ARRAY_BYTES  # read at every call: users assign it
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > limit:
        raise MemoryError(
            f"{name}: {what} would need {_human(nbytes)} (shape {tuple(shape)}, "
            f"{np.dtype(dtype)}), more than MAX_ARRAY_BYTES = {_human(limit)}; "
            f"use a smaller batch or output, or raise minitorch_cnn.functional.MAX_ARRAY_BYTES"
        )


# --------------------------------------------------------------------------- validation


def _is_cuda_array(a: object) -> bool:
    """A GPU array (``__cuda_array_interface__``) or the CUDA simulator's stand-in for one."""
    if isinstance(a, np.ndarray):
        return False
    return hasattr(a, "__cuda_array_interface__") or type(a).__name__ == "FakeCUDAArray"


def _shape_dtype(a: object) -> tuple[tuple[int, ...], np.dtype]:
    if type(a) is np.ndarray:  # first: hasattr on an ndarray raises and catches inside
        return a.shape, a.dtype
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
    if (type(a) is np.ndarray and a.ndim == ndim and a.dtype in FLOAT_DTYPES
            and a.flags.c_contiguous):
        return a  # the common case, answered first: it is every call's cost (_FAST_PATHS)
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
    if type(value) is int and value >= minimum:
        return value  # the common case, answered before the ABC check below (_FAST_PATHS)
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
    if type(value) is int and value >= minimum:
        return (value, value)  # the common case first (_FAST_PATHS)
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


def _zeros(like, shape: tuple[int, ...], dtype) -> object:
    """Zeros where ``like`` lives: a device array for a CUDA input (device in, device out).

    The answer of an op on an empty batch, which no kernel is launched for.
    """
    zeros = np.zeros(shape, dtype)
    if _is_cuda_array(like):
        from numba import cuda  # reached only with a CUDA array, so numba-cuda is installed

        return cuda.to_device(zeros)
    return zeros
