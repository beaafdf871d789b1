"""F.pad and its backward: validate, build a PadSpec, dispatch."""

from __future__ import annotations

import math
import numbers

import numpy as np

from kernels.common import (
    PAD_MODES,
    PadSpec,
)

from ..backend import kernel_module
from ._checks import (
    _array,
    _check_grad,
    _check_size,
    _is_cuda_array,
    _run,
    _shape_dtype,
    _zeros,
)

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
