"""Invalid input gets the documented exception, raised at the boundary, naming the argument.

Hypothesis draws a valid problem (tests/strategies.py), breaks exactly one thing in it (an
array's ndim, dtype or type; a channel, group, bias or grad_y shape; a stride, padding,
dilation, kernel size, ``groups`` or flag), and asserts:

- the exception is exactly the expected ``ValueError`` / ``TypeError`` (never an IndexError,
  a numba error or anything else from inside a kernel), raised in ``minitorch_cnn`` itself;
- the message starts with the argument's name, says what was expected and shows what came;
- the message matches one of the documented templates of :data:`ERRORS` (the table the
  README's "Errors you may see" renders), so the table cannot fall behind the code.

Validation is backend-independent, so hypothesis runs with ``naive`` and ``numpy``; every
documented trigger is then replayed on every available backend, which must raise the same.
Last, a property test: odd inputs PyTorch accepts (any layout, byte order, NaN/inf, large and
small magnitudes, hyper-parameters spelled as lists, one-element tuples or NumPy ints) give
PyTorch's answer.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorch_cnn as mc
import reference as R
from minitorch_cnn import functional as F

from .checks import check_against_torch
from .strategies import adaptive_problems, conv_problems, pool_problems
from .test_robustness import KNOWN_BUGS

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


# --------------------------------------------------------------------------- the error table


class ErrorDoc(NamedTuple):
    """One row of "Errors you may see": a message template, its cause, its fix, a trigger."""

    exception: type[Exception]
    message: str  # the message, ``{...}`` marking the parts that vary
    cause: str
    fix: str
    trigger: Callable[[], Any]  # a call that raises it (``backend`` is added by the test)


_x = np.zeros((2, 4, 6, 5))
_w = np.zeros((6, 2, 3, 3))

ERRORS: list[ErrorDoc] = [
    ErrorDoc(TypeError,
             "{arg}: expected a numpy.ndarray {layout} of float32 or float64, got {type}; wrap "
             "it with np.asarray(..., dtype=np.float32)",
             "a Python list or scalar, a torch tensor, or another non-array",
             "pass np.asarray(value, dtype=np.float32)",
             lambda **k: F.conv2d(_x.tolist(), _w, **k)),
    ErrorDoc(TypeError, "{arg}: expected dtype float32 or float64, got {dtype}; {hint}",
             "an integer, bool, float16, complex, object or string array",
             "convert with .astype(np.float32) (complex: convolve .real and .imag apart)",
             lambda **k: F.max_pool2d(np.zeros((1, 1, 2, 2), np.float16), 2, **k)),
    ErrorDoc(TypeError, "{arg}: expected dtype {dtype} (the dtype of {ref}), got {dtype}; "
             "convert with .astype({ref}.dtype)",
             "weight, bias, grad_y (or K) in another float dtype than x (or X)",
             "use one dtype for all arrays of a call",
             lambda **k: F.conv2d(_x, _w.astype(np.float32), groups=2, **k)),
    ErrorDoc(TypeError, "{arg}: expected a plain numpy.ndarray {layout}, got a masked array",
             "a numpy.ma masked array: its mask would be silently ignored",
             "pass .filled(value) (or np.asarray to drop the mask on purpose)",
             lambda **k: F.avg_pool2d(np.ma.masked_array(_x), 2, **k)),
    ErrorDoc(TypeError, "{arg}: got a CUDA device array, which only backend='cuda' accepts "
             "(expected a numpy.ndarray here)",
             "a Numba device array or torch CUDA tensor with a CPU backend",
             "pass backend='cuda', or copy it to the host (.copy_to_host())",
             None),  # needs a CUDA array: checked by tests/test_device_arrays.py
    ErrorDoc(ValueError, "{arg}: expected a {n}-D array {layout}, got shape {shape}",
             "a missing batch axis (C, H, W), an extra axis, a 0-d array",
             "add the batch axis with x[None]; weights are OIHW, bias 1-D, X and K 2-D",
             lambda **k: F.conv2d(_x[0], _w, groups=2, **k)),
    ErrorDoc(ValueError, "x: expected {dims} > 0, got shape {shape}",
             "an input with no channels or an empty image (a batch of 0 is fine)",
             "check the slicing that produced x",
             lambda **k: F.max_pool2d(np.zeros((1, 1, 0, 4)), 1, **k)),
    ErrorDoc(ValueError, "weight: expected no zero-sized dimension, got shape {shape}",
             "a weight with 0 output channels or an empty kernel",
             "check the weight's shape (C_out, C_in // groups, kH, kW)",
             lambda **k: F.conv2d(_x, np.zeros((0, 4, 3, 3)), **k)),
    ErrorDoc(ValueError, "weight: expected {C} // groups={g} input channels per group (x has "
             "C_in={C}), got weight of shape {shape}, i.e. {n} * groups = {m} input channels",
             "x's channels do not match the weight's (NCHW vs OIHW swapped, or wrong groups)",
             "weight.shape[1] * groups must equal x.shape[1]",
             lambda **k: F.conv2d(_x, _w, groups=1, **k)),
    ErrorDoc(ValueError, "groups: expected a divisor of C_out={C} (weight.shape[0]), got {g}",
             "groups does not divide the number of output channels",
             "make weight.shape[0] a multiple of groups",
             lambda **k: F.conv2d(_x, np.zeros((5, 2, 3, 3)), groups=2, **k)),
    ErrorDoc(ValueError, "bias: expected shape ({C},) (C_out), got {shape}",
             "a bias whose length is not weight.shape[0]",
             "pass one bias per output channel, or None",
             lambda **k: F.conv2d(_x, _w, np.zeros(5), groups=2, **k)),
    ErrorDoc(ValueError, "padding: expected stride 1 with 'same' (as in PyTorch), got stride {s}",
             "padding='same' with a stride > 1",
             "pass explicit padding, or stride=1",
             lambda **k: F.conv2d(_x, _w, padding="same", stride=2, groups=2, **k)),
    ErrorDoc(ValueError, "padding: expected an int, a pair, 'same' or 'valid', got {value}",
             "another padding string ('full', 'SAME', ...)",
             "use an int, an (h, w) pair, 'same' or 'valid'",
             lambda **k: F.conv2d(_x, _w, padding="full", groups=2, **k)),
    ErrorDoc(ValueError, "weight: expected the dilated kernel to fit the padded input along "
             "{axis} ({size}), got one spanning {n}",
             "a kernel (times its dilation) larger than the padded image",
             "pad more, dilate less, or use a smaller kernel",
             lambda **k: F.conv2d(_x, np.zeros((6, 2, 7, 3)), groups=2, **k)),
    ErrorDoc(TypeError, "{arg}: expected an int, got {type} {value}",
             "a float, string, bool or None where an int is needed (stride=2.0, groups=None)",
             "pass Python or NumPy ints",
             lambda **k: F.avg_pool2d(_x, 2.0, **k)),
    ErrorDoc(ValueError, "{arg}: expected a {what} int, got {value}",
             "zero or negative stride, dilation, kernel size, groups or output size, or a "
             "negative padding",
             "strides, dilations, kernels, groups and sizes are >= 1; padding >= 0",
             lambda **k: F.conv2d(_x, _w, stride=0, groups=2, **k)),
    ErrorDoc(ValueError, "{arg}: expected an int or an (h, w) pair, got {value}",
             "a sequence of 3 or more numbers (or an empty one)",
             "pass an int or (h, w)",
             lambda **k: F.conv2d(_x, _w, dilation=(1, 1, 1), groups=2, **k)),
    ErrorDoc(TypeError, "{arg}: expected a bool, got {type}",
             "ceil_mode or count_include_pad given as 0/1, None or a string",
             "pass True or False",
             lambda **k: F.max_pool2d(_x, 2, ceil_mode=1, **k)),
    ErrorDoc(ValueError, "padding: expected at most half the kernel size ({k} // 2 = {h}) along "
             "{axis}, got {p}",
             "pooling padding larger than half the kernel (PyTorch's rule)",
             "use padding <= kernel_size // 2",
             lambda **k: F.max_pool2d(_x, 3, padding=2, **k)),
    ErrorDoc(ValueError, "kernel_size: expected the (dilated) window to fit the padded input "
             "along {axis} ({size}), got one spanning {n}",
             "a pooling window larger than the padded image",
             "use a smaller kernel_size, or adaptive_avg_pool2d for a global pool",
             lambda **k: F.avg_pool2d(_x, 8, **k)),
    ErrorDoc(TypeError, "divisor_override: expected None or a non-zero int, got {type} {value}",
             "a float divisor", "pass an int, or None",
             lambda **k: F.avg_pool2d(_x, 2, divisor_override=1.5, **k)),
    ErrorDoc(ValueError, "divisor_override: expected None or a non-zero int, got 0",
             "divisor_override=0", "pass a non-zero int, or None",
             lambda **k: F.avg_pool2d(_x, 2, divisor_override=0, **k)),
    ErrorDoc(ValueError, "grad_y: expected shape {shape} (the forward output's), got {shape}",
             "a gradient that does not match the forward output for these arguments",
             "pass the same hyper-parameters to forward and backward",
             lambda **k: F.max_pool2d_backward(np.zeros((2, 4, 3, 3)), _x, 2, **k)),
    ErrorDoc(TypeError, "indices: expected the int64 numpy.ndarray that max_pool2d(..., "
             "return_indices=True) returned, got {type}",
             "max_pool2d_backward(..., indices=...) given a list, a tensor or another non-array",
             "pass the indices max_pool2d(..., return_indices=True) returned, or None",
             lambda **k: F.max_pool2d_backward(np.zeros((2, 4, 3, 2)), _x, 2,
                                               indices=[[0, 1]], **k)),
    ErrorDoc(TypeError, "indices: expected an integer array (int64), got dtype {dtype}",
             "max-pooling indices given as floats", "pass them as max_pool2d returned them",
             lambda **k: F.max_pool2d_backward(np.zeros((2, 4, 3, 2)), _x, 2,
                                               indices=np.zeros((2, 4, 3, 2)), **k)),
    ErrorDoc(ValueError, "indices: expected shape {shape} (the forward output's), got {shape}",
             "indices from a max_pool2d call with other arguments or another input",
             "pass the same hyper-parameters to forward and backward",
             lambda **k: F.max_pool2d_backward(np.zeros((2, 4, 3, 2)), _x, 2,
                                               indices=np.zeros((2, 4, 3, 3), np.int64), **k)),
    ErrorDoc(ValueError, "indices: expected values in [-1, H*W) = [-1, {n}), got values in "
             "[{lo}, {hi}]",
             "indices that do not point into the input plane (from a larger input, or edited)",
             "pass the indices max_pool2d returned for this very x",
             lambda **k: F.max_pool2d_backward(np.zeros((2, 4, 3, 2)), _x, 2,
                                               indices=np.full((2, 4, 3, 2), 30), **k)),
    ErrorDoc(ValueError, "K: expected a non-empty kernel no larger than X {shape}, got shape "
             "{shape}",
             "corr2d with a kernel larger than the image", "swap X and K, or pad X",
             lambda **k: F.corr2d(np.zeros((2, 5)), np.zeros((3, 3)), **k)),
    ErrorDoc(MemoryError, "{op}: the output would need {size} (shape {shape}, {dtype}), more "
             "than MAX_ARRAY_BYTES = {limit}",
             "an output larger than half the machine's memory (adaptive pooling to a huge "
             "size, a huge padding)",
             "use smaller sizes or batches; raise minitorch_cnn.functional.MAX_ARRAY_BYTES if "
             "the memory is really there",
             lambda **k: F.adaptive_avg_pool2d(_x, 10**6, **k)),
    ErrorDoc(MemoryError, "{arg}: its {copy} would need {size} (shape {shape}, {dtype}), more "
             "than MAX_ARRAY_BYTES = {limit}",
             "the padded or C-contiguous copy of an input would not fit (a huge padding, a "
             "broadcast view)",
             "use smaller padding or a contiguous input; or raise MAX_ARRAY_BYTES",
             lambda **k: F.conv2d(_x, _w, padding=10**6, groups=2, **k)),
    ErrorDoc(ValueError, "backend: unknown backend {name}; expected one of {names}",
             "a misspelled backend name", "use one of mc.backends()",
             lambda **k: F.max_pool2d(_x, 2, backend="cpu")),
    ErrorDoc(ValueError, "backend: backend {name} is not available here ({reason}); available: "
             "{names}",
             "numba not installed, no GPU and no simulator, ...",
             "see mc.backends(verbose=True) for the reason",
             None),  # needs a missing backend: checked by tests/test_robustness.py
    ErrorDoc(TypeError, "backend: expected a backend name (str), got {type}",
             "a backend given as something else than its name", "pass the name, e.g. 'numpy'",
             lambda **k: F.max_pool2d(_x, 2, backend=1)),
]


def _template_regex(message: str) -> re.Pattern:
    parts = re.split(r"\{[^}]*\}", message)
    return re.compile("(?s)" + ".+?".join(re.escape(p) for p in parts) + ".*")


TEMPLATES = [(doc.exception, _template_regex(doc.message)) for doc in ERRORS]


def documented(error: BaseException) -> bool:
    """Whether ``error`` is an exception type and message of the ERRORS table."""
    return any(type(error) is exc and pattern.fullmatch(str(error)) for exc, pattern in TEMPLATES)


def raised_at_the_boundary(error: BaseException) -> bool:
    """Whether ``error`` was raised in minitorch_cnn (functional/backend), not in a kernel."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    parents = {Path(frame.filename).parent.name, Path(frame.filename).parent.parent.name}
    return "minitorch_cnn" in parents and "kernels" not in parents


def render_errors_table() -> str:
    """The Markdown table README.md shows under "Errors you may see", between its markers."""
    rows = ["| exception | message | cause | fix |", "|---|---|---|---|"]
    for doc in ERRORS:
        message = doc.message.replace("|", "\\|")
        rows.append(f"| `{doc.exception.__name__}` | `{message}` | {doc.cause} | {doc.fix} |")
    return "\n".join(rows)


TRIGGERED = [pytest.param(doc, id=doc.message[:40]) for doc in ERRORS if doc.trigger]


@pytest.mark.parametrize("doc", TRIGGERED)
def test_each_documented_error_is_raised_as_documented(doc):
    with pytest.raises(doc.exception) as info:
        doc.trigger()
    assert type(info.value) is doc.exception
    assert _template_regex(doc.message).fullmatch(str(info.value)), str(info.value)
    assert raised_at_the_boundary(info.value)


def test_every_documented_template_is_distinct_and_the_table_renders():
    assert len({doc.message for doc in ERRORS}) == len(ERRORS)
    table = render_errors_table()
    assert table.count("\n") == len(ERRORS) + 1 and "MAX_ARRAY_BYTES" in table


@pytest.mark.parametrize("doc", [d for d in TRIGGERED if "backend" not in d.values[0].message])
def test_every_backend_raises_the_same_documented_error(doc):
    """Validation happens before dispatch: each backend gives the very same exception."""
    messages = {}
    for backend in mc.backends():
        with pytest.raises(doc.exception) as info:
            doc.trigger(backend=backend)
        messages[backend] = (type(info.value), str(info.value))
    assert len(set(messages.values())) == 1, messages


# --------------------------------------------------------------------------- invalid draws


class Invalid(NamedTuple):
    """A call with exactly one thing wrong: the exception, the argument it must name first,
    and a piece of the message showing what came."""

    op: str
    args: dict[str, Any]
    exception: type[Exception]
    argument: str
    came: str


BAD_DTYPES = [np.int32, np.int64, np.uint8, np.bool_, np.float16, np.complex128, np.object_,
              np.str_]


@st.composite
def bad_array(draw, a: np.ndarray, name: str):
    """``a`` broken in type, dtype or ndim: (value, exception, what came)."""
    kind = draw(st.sampled_from(["dtype", "ndim", "list", "scalar", "masked", "zero_d"]))
    if kind == "dtype":
        with np.errstate(invalid="ignore"):  # inf or NaN cast to an int dtype: any value will do
            value = a.astype(draw(st.sampled_from(BAD_DTYPES)))
        return value, TypeError, str(value.dtype)
    if kind == "ndim":
        value = a[None] if a.ndim == 1 or draw(st.booleans()) else a[0]
        return value, ValueError, str(value.shape)
    if kind == "list":
        return a.tolist(), TypeError, "list"
    if kind == "scalar":
        return 1.0, TypeError, "float"
    if kind == "masked":
        return np.ma.masked_array(a), TypeError, "masked array"
    return np.asarray(a.flat[0] if a.size else 0.0, a.dtype), ValueError, "()"


def bad_int(draw, name: str, minimum: int):
    """A hyper-parameter value that is not an int >= minimum: (value, exception, came)."""
    kind = draw(st.sampled_from(["small", "float", "str", "bool", "none", "long_pair"]))
    if kind == "small":
        value = draw(st.integers(-3, minimum - 1))
        pair = draw(st.booleans())
        return ((1 if minimum == 1 else 0, value) if pair else value), ValueError, str(value)
    if kind == "float":
        return 1.5, TypeError, "1.5"
    if kind == "str":
        return "2", TypeError, "'2'"
    if kind == "bool":
        return True, TypeError, "True"
    if kind == "none":
        return None, TypeError, "None"
    return (1, 1, 1), ValueError, "(1, 1, 1)"


@st.composite
def invalid_conv(draw, backward: bool = False) -> Invalid:
    p = draw(conv_problems(np.float64, max_size=4))
    args = dict(x=p.x, weight=p.weight, **p.kwargs)
    if backward:
        args["grad_y"] = p.grad_y
    else:
        args["bias"] = p.bias
    op = "conv2d_backward" if backward else "conv2d"
    N, C_in, H, W = p.x.shape
    C_out, C_in_g, kH, kW = p.weight.shape
    groups = p.kwargs["groups"]
    kinds = ["x", "weight", "stride", "dilation", "padding", "groups", "channels", "kernel",
             "padding_str", "other_dtype"]
    kinds += ["grad_y", "grad_shape"] if backward else ["bias", "bias_shape"]
    if groups > 1:
        kinds.append("groups_divide")
    if p.kwargs["padding"] != "same":
        kinds.append("same_stride")
    kind = draw(st.sampled_from(kinds))
    if kind in ("x", "weight", "grad_y", "bias"):
        array = args[kind] if args.get(kind) is not None else np.zeros(C_out)
        args[kind], exc, came = draw(bad_array(array, kind))
        return Invalid(op, args, exc, kind, came)
    if kind in ("stride", "dilation", "groups"):
        args[kind], exc, came = bad_int(draw, kind, 1)
        if kind == "groups" and isinstance(args[kind], tuple):
            return Invalid(op, args, TypeError, kind, "tuple")
        return Invalid(op, args, exc, kind, came)
    if kind == "padding":
        value = draw(st.integers(-3, -1))
        args["padding"] = draw(st.sampled_from([value, (0, value), (value, 0)]))
        return Invalid(op, args, ValueError, "padding", str(value))
    if kind == "padding_str":
        args["padding"] = draw(st.sampled_from(["full", "SAME", "", "valid "]))
        return Invalid(op, args, ValueError, "padding", repr(args["padding"]))
    if kind == "same_stride":
        args["padding"], args["stride"] = "same", draw(st.sampled_from([2, (1, 2), (3, 1)]))
        return Invalid(op, args, ValueError, "padding", "stride")
    if kind == "channels":
        args["weight"] = np.zeros((C_out, C_in_g + draw(st.sampled_from([-1, 1])) or C_in_g + 1,
                                   kH, kW))
        return Invalid(op, args, ValueError, "weight", f"C_in={C_in}")
    if kind == "groups_divide":
        args["weight"] = np.zeros((C_out + 1, C_in_g, kH, kW))
        if backward:
            args["grad_y"] = np.zeros((N, C_out + 1) + p.grad_y.shape[2:])
        return Invalid(op, args, ValueError, "groups", f"C_out={C_out + 1}")
    if kind == "kernel":
        pad = p.kwargs["padding"]
        pad = 0 if pad == "valid" else pad
        if pad == "same":
            args["padding"] = pad = 0
        ph, pw = pad if isinstance(pad, tuple) else (pad, pad)
        axis = draw(st.integers(0, 1))
        shape = [kH, kW]
        shape[axis] = (H, W)[axis] + 2 * (ph, pw)[axis] + 1
        args["weight"] = np.zeros((C_out, C_in_g, *shape))
        return Invalid(op, args, ValueError, "weight", "fit the padded input")
    if kind == "other_dtype":
        name = "grad_y" if backward else draw(st.sampled_from(["weight", "bias"]))
        array = args.get(name)
        if array is None:
            array = np.zeros(C_out)
        args[name] = array.astype(np.float32)
        return Invalid(op, args, TypeError, name, "float32")
    if kind == "bias_shape":
        length = draw(st.sampled_from([0, C_out - 1, C_out + 1]))
        args["bias"] = np.zeros(length)
        return Invalid(op, args, ValueError, "bias", f"({length},)")
    assert kind == "grad_shape"
    shape = list(p.grad_y.shape)
    axis = draw(st.integers(0, 3))
    shape[axis] += draw(st.sampled_from([-1, 1])) if shape[axis] > 0 else 1
    args["grad_y"] = np.zeros(shape)
    return Invalid(op, args, ValueError, "grad_y", str(tuple(shape)))


@st.composite
def invalid_pool(draw, kind_of_pool: str, backward: bool = False) -> Invalid:
    p = draw(pool_problems(kind_of_pool, np.float64, max_size=4))
    op = f"{kind_of_pool}_pool2d" + ("_backward" if backward else "")
    args = dict(x=p.x, **p.kwargs)
    if backward:
        args["grad_y"] = p.grad_y
    N, C, H, W = p.x.shape
    kernel = args["kernel_size"]
    kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    pad = args["padding"]
    pad = pad if isinstance(pad, tuple) else (pad, pad)
    kinds = ["x", "kernel_size", "stride", "padding_negative", "padding_half", "window",
             "ceil_mode"]
    kinds += ["dilation"] if kind_of_pool == "max" else ["count_include_pad", "divisor"]
    kinds += ["grad_y", "grad_shape", "other_dtype"] if backward else []
    kind = draw(st.sampled_from(kinds))
    if kind in ("x", "grad_y"):
        args[kind], exc, came = draw(bad_array(args[kind], kind))
        return Invalid(op, args, exc, kind, came)
    if kind in ("kernel_size", "stride", "dilation"):
        args[kind], exc, came = bad_int(draw, kind, 1)
        if kind == "stride" and args[kind] is None:  # None is the default: stride = kernel
            args[kind] = 0
            exc, came = ValueError, "0"
        return Invalid(op, args, exc, kind, came)
    if kind == "padding_negative":
        args["padding"] = draw(st.sampled_from([-1, (0, -2)]))
        return Invalid(op, args, ValueError, "padding", "-")
    if kind == "padding_half":
        axis = draw(st.integers(0, 1))
        pad = list(pad)
        pad[axis] = kernel[axis] // 2 + draw(st.integers(1, 2))
        args["padding"] = tuple(pad)
        return Invalid(op, args, ValueError, "padding", f"got {pad[axis]}")
    if kind == "window":
        axis = draw(st.integers(0, 1))
        stride = args["stride"] or kernel
        stride = stride if isinstance(stride, tuple) else (stride, stride)
        kernel = list(kernel)
        kernel[axis] = (H, W)[axis] + 2 * pad[axis] + stride[axis]  # too big, even in ceil mode
        args["kernel_size"] = tuple(kernel)
        if args["stride"] is None:
            args["stride"] = stride
        return Invalid(op, args, ValueError, "kernel_size", "fit the padded input")
    if kind in ("ceil_mode", "count_include_pad"):
        args[kind] = draw(st.sampled_from([0, 1, None, "yes"]))
        return Invalid(op, args, TypeError, kind, type(args[kind]).__name__)
    if kind == "divisor":
        args["divisor_override"] = draw(st.sampled_from([0, 1.5, "2"]))
        exc = ValueError if args["divisor_override"] == 0 else TypeError
        return Invalid(op, args, exc, "divisor_override", repr(args["divisor_override"]))
    if kind == "other_dtype":
        args["grad_y"] = args["grad_y"].astype(np.float32)
        return Invalid(op, args, TypeError, "grad_y", "float32")
    assert kind == "grad_shape"
    shape = list(p.grad_y.shape)
    shape[draw(st.integers(0, 3))] += 1
    args["grad_y"] = np.zeros(shape)
    return Invalid(op, args, ValueError, "grad_y", str(tuple(shape)))


@st.composite
def invalid_adaptive(draw, backward: bool = False) -> Invalid:
    p = draw(adaptive_problems(np.float64, max_size=4))
    op = "adaptive_avg_pool2d" + ("_backward" if backward else "")
    args = dict(x=p.x, **p.kwargs)
    if backward:
        args["grad_y"] = p.grad_y
    kinds = ["x", "output_size", "pair_entry", "length"] + (["grad_y", "grad_shape"]
                                                             if backward else [])
    kind = draw(st.sampled_from(kinds))
    if kind in ("x", "grad_y"):
        args[kind], exc, came = draw(bad_array(args[kind], kind))
        return Invalid(op, args, exc, kind, came)
    if kind == "output_size":
        args["output_size"], exc, came = bad_int(draw, "output_size", 1)
        if args["output_size"] is None:  # None alone is no size at all
            return Invalid(op, args, TypeError, "output_size", "None")
        return Invalid(op, args, exc, "output_size", came)
    if kind == "pair_entry":
        bad = draw(st.sampled_from([0, -1, 2.5]))
        args["output_size"] = draw(st.sampled_from([(None, bad), (bad, 2)]))
        return Invalid(op, args, TypeError if bad == 2.5 else ValueError, "output_size", str(bad))
    if kind == "length":
        args["output_size"] = draw(st.sampled_from([(1, 2, 3), (), [2, 2, 2]]))
        return Invalid(op, args, ValueError, "output_size", str(args["output_size"]))
    shape = list(p.grad_y.shape)
    shape[draw(st.integers(1, 3))] += 1
    args["grad_y"] = np.zeros(shape)
    return Invalid(op, args, ValueError, "grad_y", str(tuple(shape)))


@st.composite
def invalid_corr2d(draw) -> Invalid:
    p = draw(conv_problems(np.float64, max_size=4))
    X, K = p.x[0, 0], p.weight[0, 0]
    if K.shape[0] > X.shape[0] or K.shape[1] > X.shape[1]:
        X, K = K, X[: K.shape[0], : K.shape[1]]
    kind = draw(st.sampled_from(["X", "K", "large", "other_dtype"]))
    if kind in ("X", "K"):
        value, exc, came = draw(bad_array(X if kind == "X" else K, kind))
        args = dict(X=value, K=K) if kind == "X" else dict(X=X, K=value)
        return Invalid("corr2d", args, exc, kind, came)
    if kind == "large":
        axis = draw(st.integers(0, 1))
        shape = list(K.shape)
        shape[axis] = X.shape[axis] + 1
        return Invalid("corr2d", dict(X=X, K=np.zeros(shape)), ValueError, "K", str(tuple(shape)))
    return Invalid("corr2d", dict(X=X, K=K.astype(np.float32)), TypeError, "K", "float32")


INVALID = {
    "conv2d": invalid_conv(),
    "conv2d_backward": invalid_conv(backward=True),
    "max_pool2d": invalid_pool("max"),
    "max_pool2d_backward": invalid_pool("max", backward=True),
    "avg_pool2d": invalid_pool("avg"),
    "avg_pool2d_backward": invalid_pool("avg", backward=True),
    "adaptive_avg_pool2d": invalid_adaptive(),
    "adaptive_avg_pool2d_backward": invalid_adaptive(backward=True),
    "corr2d": invalid_corr2d(),
}


def call(invalid: Invalid, backend: str):
    args = dict(invalid.args)
    fn = getattr(F, invalid.op)
    if invalid.op == "corr2d":
        return fn(args.pop("X"), args.pop("K"), backend=backend)
    positional = [args.pop(k) for k in ("grad_y", "x", "weight") if k in args]
    return fn(*positional, **args, backend=backend)


@pytest.mark.parametrize("backend", ["naive", "numpy"])
@pytest.mark.parametrize("op", list(INVALID))
def test_invalid_input_raises_the_documented_error_naming_the_argument(op, backend):
    @given(INVALID[op])
    def check(invalid: Invalid):
        with pytest.raises(Exception) as info:  # noqa: B017, PT011 - checked exactly below
            call(invalid, backend)
        error, message = info.value, str(info.value)
        assert type(error) is invalid.exception, f"{invalid.op}: {type(error).__name__}: {message}"
        assert message.startswith(f"{invalid.argument}:"), message
        assert "expected" in message and invalid.came in message, (invalid.came, message)
        assert raised_at_the_boundary(error), traceback.format_tb(error.__traceback__)[-1]
        assert documented(error), f"not in ERRORS: {message}"

    check()


# --------------------------------------------------------------------------- odd but valid


def _odd_layout(draw, a: np.ndarray | None, readonly: bool) -> np.ndarray | None:
    """``a``'s values in a drawn layout: Fortran, strided, reversed, byte-swapped; or read-only.

    Read-only is all or nothing per call: a read-only C-contiguous array reaches the kernel as
    it is, and Numba compiles one specialisation per read-only/writable combination of its
    arguments (seconds each), so mixing them per array would mostly time the JIT.
    """
    if a is None:
        return None
    kind = "readonly" if readonly else draw(
        st.sampled_from(["c", "fortran", "strided", "reversed", "swapped"]))
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., 1::2] = a
        return wide[..., 1::2]
    if kind == "reversed":
        return a[..., ::-1].copy()[..., ::-1]
    if kind == "swapped":
        return a.astype(a.dtype.newbyteorder("S"))
    if kind == "readonly":
        a = a.copy()
        a.setflags(write=False)
    return a


SPELLED = ("kernel_size", "stride", "padding", "dilation")


def _odd_spelling(draw, value):
    """The same stride / padding / dilation / kernel_size spelled as PyTorch also accepts it."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return draw(st.sampled_from([value, np.int64(value), (value,), [value, value]]))
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return draw(st.sampled_from([value, list(value), tuple(np.int32(v) for v in value)]))
    return value


def _sprinkle(draw, x: np.ndarray, allowed: list[float]) -> np.ndarray:
    """A copy of ``x`` with a few of the ``allowed`` special values."""
    x = x.copy()
    if allowed and x.size:
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        for _ in range(draw(st.integers(0, 3))):
            x.flat[rng.integers(0, x.size)] = draw(st.sampled_from(allowed))
    return x


ODD_OPS = ["conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


@st.composite
def odd_problems(draw, op: str, backend: str, dtype):
    """(forward kwargs, x, weight, bias, grad_y, scale exponent) with odd but valid spelling."""
    if op == "conv2d":
        p = draw(conv_problems(dtype, max_size=5))
        weight, bias = p.weight, p.bias
    elif op == "adaptive_avg_pool2d":
        p = draw(adaptive_problems(dtype, max_size=5))
        weight = bias = None
    else:
        p = draw(pool_problems(op.split("_")[0], dtype, max_size=5))
        weight = bias = None
    kwargs = {k: _odd_spelling(draw, v) if k in SPELLED else v for k, v in p.kwargs.items()}
    if op == "avg_pool2d" and kwargs.get("divisor_override") is not None and draw(st.booleans()):
        kwargs["divisor_override"] = -kwargs["divisor_override"]  # PyTorch accepts it
    if op in ("max_pool2d", "avg_pool2d") and kwargs["stride"] is None and draw(st.booleans()):
        kwargs["stride"] = ()  # PyTorch reads an empty stride as the kernel size
    specials = [v for v, case in ((np.nan, "nan"), (np.inf, "inf"), (-np.inf, "inf"))
                if not any(b == backend and o.startswith(op) and c == case
                           for b, o, c in KNOWN_BUGS)]
    x = _sprinkle(draw, p.x, specials if draw(st.booleans()) else [])
    big = 60 if dtype == np.float32 else 500
    exponent = draw(st.sampled_from([0, big, -big]))
    x = np.ldexp(x, exponent).astype(dtype)
    bias = None if bias is None else np.ldexp(bias, exponent).astype(dtype)
    return kwargs, x, weight, bias, p.grad_y, exponent


def _unscaled(a, exponent: int) -> np.ndarray:
    a = np.asarray(a.copy_to_host() if hasattr(a, "copy_to_host") else a)
    return np.ldexp(a, -exponent).astype(a.dtype)


@pytest.mark.parametrize("backend", [b for b in ("naive", "numpy", "numba") if b in mc.backends()])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("op", ODD_OPS)
def test_odd_but_valid_inputs_match_torch(op, dtype, backend):
    """Layouts, byte order, NaN/inf, magnitudes 2**(+-60) / 2**(+-500), odd spellings."""

    @settings(max_examples=max(5, settings().max_examples // 3))
    @given(odd_problems(op, backend, dtype), st.data())
    def check(problem, data):
        kwargs, x, weight, bias, grad_y, e = problem
        forward, backward = getattr(F, op), getattr(F, f"{op}_backward")
        ref_forward, ref_backward = getattr(R, op), getattr(R, f"{op}_backward")
        ref_kwargs = {k: (v if not isinstance(v, list) else tuple(v)) for k, v in kwargs.items()}
        if isinstance(ref_kwargs.get("stride"), tuple) and not ref_kwargs["stride"]:
            ref_kwargs["stride"] = None
        readonly = data.draw(st.booleans())
        layout = [_odd_layout(data.draw, a, readonly) for a in (x, weight, bias, grad_y)]
        copies = [None if a is None else a.copy() for a in layout]
        if op == "conv2d":
            y = forward(layout[0], layout[1], layout[2], **kwargs, backend=backend)
            expected = ref_forward(x, weight, bias, **ref_kwargs)
            grads = backward(layout[3], layout[0], layout[1], **kwargs, backend=backend)
            expected_grads = ref_backward(grad_y, x, weight, **ref_kwargs)
            scales = [0, e, 0]  # grad_x, grad_weight (x-scaled), grad_bias
        else:
            y = forward(layout[0], **kwargs, backend=backend)
            expected = ref_forward(x, **ref_kwargs)
            grads = [backward(layout[3], layout[0], **kwargs, backend=backend)]
            expected_grads = [ref_backward(grad_y, x, **ref_kwargs)]
            scales = [0]
        check_against_torch(_unscaled(y, e), _unscaled(expected, e), "y")
        for ours, theirs, s in zip(grads, expected_grads, scales, strict=True):
            check_against_torch(_unscaled(ours, s), _unscaled(theirs, s), "grad")
        for before, after in zip(copies, layout, strict=True):
            if before is not None:
                np.testing.assert_array_equal(after, before, "an input was modified")

    check()


def test_readme_errors_section_is_the_rendered_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("<!-- errors:begin -->\n", 1)[1].split("\n<!-- errors:end -->", 1)[0]
    assert section == render_errors_table(), (
        "README's 'Errors you may see' is stale: paste tests.test_invalid_inputs."
        "render_errors_table() between its markers")
