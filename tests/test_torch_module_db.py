"""PyTorch's own test inputs for our convolution and pooling modules, run against PyTorch.

PyTorch ships the inputs its test suite feeds each module and op, in
``torch.testing._internal`` (importing it needs the ``expecttest`` package, in the ``dev``
extra). Three tables of it are read here, for Conv1d, Conv2d, ConvTranspose2d, MaxUnpool2d
and AdaptiveMaxPool2d:

- ``common_modules.module_db``: a ``ModuleInfo`` per module with ``module_inputs_func``
  (constructor arguments and forward inputs) and ``module_error_inputs_func``. In torch 2.13
  it has entries for Conv1d, Conv2d, ConvTranspose2d and AdaptiveMaxPool2d, none for
  MaxUnpool2d, and none of the five has error inputs (the function is ``None``).
- ``common_nn``: the older ``module_tests`` / ``get_new_module_tests()`` dicts, which add
  strided, padded, dilated, grouped, depthwise and zero-batch convolutions and the four
  ``padding_mode`` values on Conv1d and Conv2d.
- ``common_methods_invocations.op_db``: the ``OpInfo`` of each functional op, with sample
  inputs (for max_unpool2d the only PyTorch table that has any: indices from PyTorch's own
  max pool, and ``output_size``; one sample per distinct window, see :func:`_problem_key`)
  and ``error_inputs`` (conv1d, conv2d, max_unpool2d, adaptive_max_pool2d). MaxUnpool2d,
  the module, is run on max_unpool2d's samples.

For every module input: build our module with the same constructor arguments (for a
``common_nn`` entry given as a constructor function, with the arguments read off the torch
module it builds), copy the torch module's parameters in, run the same float64 input, and
compare the output, grad_x and every parameter's gradient with torch's. For every op sample,
the same with ``F.<op>`` and ``F.<op>_backward``. For every error input, our call must raise
the corresponding error: torch's ``ValueError`` / ``TypeError`` as the same type, torch's
``RuntimeError`` as our ``ValueError`` or ``TypeError`` (bad input never raises
``RuntimeError`` here, see DESIGN.md).

Inputs we do not support by design are listed in :data:`NOT_SUPPORTED` with the reason, and
checked: our call must refuse them with a ``ValueError`` that says what was expected, while
torch accepts them. The layers run on the ``numpy`` backend: these tests check the layers'
semantics; every backend is compared with torch op by op in the hypothesis tests.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import expecttest  # noqa: F401 - torch.testing._internal needs it; a missing one fails here
import numpy as np
import pytest
import torch
from torch.testing._internal import common_nn
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_modules import module_db

import minitorch_cnn as mc
from minitorch_cnn import functional as F
from minitorch_cnn import nn

from .checks import check_against_torch

# Importing torch.testing._internal calls torch.backends.disable_global_flags() for the whole
# process, after which setting a cudnn flag (benchmarks.gpu_ops turns TF32 off and on) raises
# in any later test of this pytest worker. Undo that one process-wide side effect (the flag
# is a global of torch/backends/__init__.py, which torch wraps in another module object).
torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

BACKEND = "numpy"
MODULES = ("Conv1d", "Conv2d", "ConvTranspose2d", "MaxUnpool2d", "AdaptiveMaxPool2d")
OPS = ("conv1d", "conv2d", "conv_transpose2d", "max_unpool2d", "adaptive_max_pool2d")

NOT_SUPPORTED = {
    "no_batch_dim": (
        "an unbatched input (C, H, W), or (C, L) for Conv1d: minitorch-cnn's ops and layers "
        "take batched NCHW (NCL) arrays only, so that every kernel has one layout; add the "
        "batch axis with x[None]"
    ),
}
"""PyTorch inputs we refuse by design: description -> why. Each is checked to be refused."""

UNBATCHED_NDIM = {"conv1d": 2, "conv2d": 3, "conv_transpose2d": 3, "max_unpool2d": 3,
                  "adaptive_max_pool2d": 3}


def _np(a):
    """A tensor argument as a NumPy copy, anything else as it is."""
    return a.detach().numpy().copy() if isinstance(a, torch.Tensor) else a


def _matches_torch_error(ours: BaseException, torch_type: type) -> bool:
    if torch_type is RuntimeError:
        return isinstance(ours, (ValueError, TypeError))
    return isinstance(ours, torch_type)


# --------------------------------------------------------------------------- module inputs


class ModuleCase(NamedTuple):
    id: str
    name: str  # the class name, the same in torch.nn and minitorch_cnn.nn
    args: tuple  # our constructor's positional arguments
    kwargs: dict[str, Any]
    make_torch: Any  # () -> the float64 torch module
    x: np.ndarray  # the forward input, float64
    desc: str  # PyTorch's description of the input ("no_batch_dim", ...)


def _conv_args_of(module) -> tuple[tuple, dict[str, Any]]:
    """The constructor arguments that build ``module`` (a torch conv or transposed conv)."""
    kwargs = dict(stride=module.stride, padding=module.padding, dilation=module.dilation,
                  groups=module.groups, bias=module.bias is not None,
                  padding_mode=module.padding_mode)
    if module.transposed:
        kwargs["output_padding"] = module.output_padding
    return (module.in_channels, module.out_channels, module.kernel_size), kwargs


def _module_db_cases() -> list[ModuleCase]:
    torch.manual_seed(0)
    cases = []
    for info in module_db:
        name = info.module_cls.__name__
        if name not in MODULES:
            continue
        inputs = info.module_inputs_func(info, device="cpu", dtype=torch.float64,
                                         requires_grad=False, training=True)
        for i, mi in enumerate(inputs):
            args, kwargs = mi.constructor_input.args, mi.constructor_input.kwargs
            (x,) = mi.forward_input.args
            cases.append(ModuleCase(
                f"module_db-{name}-{i}-{mi.desc or 'batched'}", name, args, kwargs,
                lambda cls=info.module_cls, a=args, k=kwargs: cls(*a, **k).double(),
                _np(x), mi.desc))
    return cases


def _common_nn_cases() -> list[ModuleCase]:
    torch.manual_seed(1)
    cases = []
    for i, test in enumerate(common_nn.module_tests + common_nn.get_new_module_tests()):
        fullname = test.get("fullname", "")
        name = test.get("module_name") or fullname.split("_")[0]
        if name not in MODULES:
            continue
        assert "input_fn" not in test, f"a common_nn entry with input_fn: {test}"
        x = torch.randn(test["input_size"], dtype=torch.float64).numpy()
        desc = test.get("desc") or fullname
        if "constructor" in test and not test.get("module_name"):
            args, kwargs = _conv_args_of(test["constructor"]())

            def make(c=test["constructor"]):
                return c().double()
        else:
            args, kwargs = tuple(test["constructor_args"]), {}

            def make(cls=getattr(torch.nn, name), a=args):  # noqa: B008 - bound per entry
                return cls(*a).double()
        cases.append(ModuleCase(f"common_nn-{name}-{i}-{desc}", name, args, kwargs, make, x,
                                desc))
    return cases


MODULE_CASES = _module_db_cases() + _common_nn_cases()


def test_the_tables_hold_what_the_docstring_says():
    """If a torch upgrade adds MaxUnpool2d or error inputs to module_db, this says so."""
    in_db = {info.module_cls.__name__: info for info in module_db
             if info.module_cls.__name__ in MODULES}
    assert sorted(in_db) == sorted(set(MODULES) - {"MaxUnpool2d"})
    assert all(info.module_error_inputs_func is None for info in in_db.values())
    names = {case.name for case in MODULE_CASES}
    assert names == set(MODULES) - {"MaxUnpool2d"}, names
    modes = {case.kwargs.get("padding_mode", case.args[8] if len(case.args) > 8 else "zeros")
             for case in MODULE_CASES if case.name == "Conv2d"}
    assert modes == {"zeros", "reflect", "replicate", "circular"}, modes


def _grad_or_zeros(param: torch.Tensor) -> np.ndarray:
    return np.zeros(tuple(param.shape)) if param.grad is None else param.grad.numpy()


@pytest.mark.parametrize("case", MODULE_CASES, ids=[case.id for case in MODULE_CASES])
def test_module_input_matches_torch(case):
    twin = case.make_torch()
    layer = getattr(nn, case.name)(*case.args, **case.kwargs).double()
    layer.load_state_dict({k: v.detach().numpy().copy() for k, v in twin.state_dict().items()})
    tx = torch.from_numpy(case.x.copy()).requires_grad_(True)
    ty = twin(tx)
    if case.desc in NOT_SUPPORTED:
        with mc.use_backend(BACKEND), pytest.raises(ValueError, match=r"^x: expected a"):
            layer(case.x)
        return
    with mc.use_backend(BACKEND):
        y = layer(case.x)
        check_against_torch(y, ty.detach().numpy(), "y")
        grad_y = np.random.default_rng(0).standard_normal(tuple(ty.shape))
        grad_x = layer.backward(grad_y)
    ty.backward(torch.from_numpy(grad_y))
    check_against_torch(grad_x, tx.grad.numpy(), "grad_x")
    ours = dict(layer.named_parameters())
    assert sorted(ours) == sorted(name for name, _ in twin.named_parameters())
    for name, param in twin.named_parameters():
        check_against_torch(ours[name].grad, _grad_or_zeros(param), f"{name}.grad")


# --------------------------------------------------------------------------- op samples


class OpCase(NamedTuple):
    id: str
    op: str  # the name in minitorch_cnn.functional
    x: np.ndarray
    args: tuple  # NumPy arrays where torch had tensors
    kwargs: dict[str, Any]


def _op_infos(name):
    return [info for info in op_db if info.name == f"nn.functional.{name}"]


def _problem_key(name, i, sample) -> tuple:
    """What makes two samples different problems: shapes and, for unpooling, the window.

    max_unpool2d's 288 samples spell each of a few dozen windows several ways (``padding=1``
    and ``(1, 1)``, ``stride=None`` and ``stride=kernel_size``): one of each is run.
    """
    if name != "max_unpool2d":
        return (name, i)  # every sample of the other ops
    k = sample.kwargs
    pair = torch.nn.modules.utils._pair
    stride = k["kernel_size"] if k["stride"] is None else k["stride"]
    size = None if k["output_size"] is None else tuple(k["output_size"])[-2:]
    return (tuple(sample.input.shape), pair(k["kernel_size"]), pair(stride),
            pair(k["padding"]), size)


def _op_cases() -> list[OpCase]:
    torch.manual_seed(2)
    cases, seen = [], set()
    for name in OPS:
        for info in _op_infos(name):
            if info.variant_test_name:  # max_unpool2d's "grad" samples: a subset of the main
                continue
            for i, sample in enumerate(info.sample_inputs("cpu", torch.float64)):
                key = _problem_key(name, i, sample)
                if key in seen:
                    continue
                seen.add(key)
                cases.append(OpCase(f"op_db-{name}-{i}", name, _np(sample.input),
                                    tuple(_np(a) for a in sample.args),
                                    {k: _np(v) for k, v in sample.kwargs.items()}))
    return cases


OP_CASES = _op_cases()


def _t(a, grad=False):
    return torch.from_numpy(a.copy()).requires_grad_(grad) if isinstance(a, np.ndarray) else a


def _torch_op(case: OpCase):
    """torch's output and its gradients w.r.t. the float arrays of the case, by autograd."""
    tx = _t(case.x, True)
    targs = [_t(a, isinstance(a, np.ndarray) and a.dtype.kind == "f") for a in case.args]
    out = getattr(torch.nn.functional, case.op)(tx, *targs, **case.kwargs)
    y = out[0] if isinstance(out, tuple) else out
    grad_y = np.random.default_rng(1).standard_normal(tuple(y.shape))
    y.backward(torch.from_numpy(grad_y))
    grads = [tx.grad.numpy()] + [a.grad.numpy() for a in targs
                                 if isinstance(a, torch.Tensor) and a.requires_grad]
    return out, grad_y, grads


def _our_op(case: OpCase, grad_y):
    """Our output, and our gradients in the order of :func:`_torch_op`'s."""
    with mc.use_backend(BACKEND):
        out = getattr(F, case.op)(case.x, *case.args, **case.kwargs)
        if case.op in ("conv1d", "conv2d", "conv_transpose2d"):  # (x, weight, bias, ...)
            weight, bias, rest = case.args[0], case.args[1], case.args[2:]
            grads = getattr(F, f"{case.op}_backward")(grad_y, case.x, weight, *rest,
                                                      **case.kwargs)
            return out, list(grads[:2]) + ([grads[2]] if bias is not None else [])
        if case.op == "adaptive_max_pool2d":  # (x, output_size, return_indices)
            gx = F.adaptive_max_pool2d_backward(grad_y, case.x, case.args[0])
        else:  # max_unpool2d (x, indices, kernel_size=, stride=, padding=, output_size=)
            gx = F.max_unpool2d_backward(grad_y, case.x, *case.args, **case.kwargs)
        return out, [gx]


@pytest.mark.parametrize("case", OP_CASES, ids=[case.id for case in OP_CASES])
def test_op_sample_matches_torch(case):
    if case.x.ndim == UNBATCHED_NDIM[case.op]:  # NOT_SUPPORTED["no_batch_dim"]
        with mc.use_backend(BACKEND), pytest.raises(ValueError, match=r"^x: expected a"):
            getattr(F, case.op)(case.x, *case.args, **case.kwargs)
        return
    out, grad_y, expected = _torch_op(case)
    ours, grads = _our_op(case, grad_y)
    if isinstance(out, tuple):  # (y, indices)
        np.testing.assert_array_equal(ours[1], out[1].numpy(), "indices")
        out, ours = out[0], ours[0]
    check_against_torch(ours, out.detach().numpy(), "y")
    assert len(grads) == len(expected)
    for i, (g, e) in enumerate(zip(grads, expected, strict=True)):
        check_against_torch(g, e, f"grad {i}")


UNPOOL_CASES = [case for case in OP_CASES if case.op == "max_unpool2d"]


@pytest.mark.parametrize("case", UNPOOL_CASES, ids=[case.id for case in UNPOOL_CASES])
def test_max_unpool2d_module_on_the_op_samples_matches_torch(case):
    """MaxUnpool2d has no module_db entry: the module runs on max_unpool2d's samples."""
    (indices,) = case.args
    window = {k: case.kwargs[k] for k in ("kernel_size", "stride", "padding")}
    layer, twin = nn.MaxUnpool2d(**window), torch.nn.MaxUnpool2d(**window)
    assert repr(layer) == repr(twin)
    tx = _t(case.x, True)
    ty = twin(tx, torch.from_numpy(indices), case.kwargs["output_size"])
    with mc.use_backend(BACKEND):
        y = layer(case.x, indices, case.kwargs["output_size"])
        check_against_torch(y, ty.detach().numpy(), "y")
        grad_y = np.random.default_rng(2).standard_normal(tuple(ty.shape))
        grad_x = layer.backward(grad_y)
    ty.backward(torch.from_numpy(grad_y))
    check_against_torch(grad_x, tx.grad.numpy(), "grad_x")


# --------------------------------------------------------------------------- error inputs


class ErrorCase(NamedTuple):
    id: str
    call: Any  # () -> our call, which must raise
    torch_call: Any  # () -> torch's call, which raises torch_type
    torch_type: type


def _error_cases() -> list[ErrorCase]:
    cases = []
    for info in module_db:  # none in torch 2.13 (test_the_tables_hold_what_the_docstring_says)
        name = info.module_cls.__name__
        if name not in MODULES or info.module_error_inputs_func is None:
            continue
        for i, err in enumerate(info.module_error_inputs_func(
                info, device="cpu", dtype=torch.float64, requires_grad=False, training=True)):
            mi = err.module_error_input
            a, k = mi.constructor_input.args, mi.constructor_input.kwargs
            fa = mi.forward_input.args

            def ours(name=name, a=a, k=k, fa=fa):
                getattr(nn, name)(*a, **k).double()(*(_np(v) for v in fa))

            def theirs(cls=info.module_cls, a=a, k=k, fa=fa):
                cls(*a, **k).double()(*fa)

            cases.append(ErrorCase(f"module_db-{name}-{i}", ours, theirs, err.error_type))
    for name in OPS:
        for info in _op_infos(name):
            if info.error_inputs_func is None:
                continue
            for i, err in enumerate(info.error_inputs("cpu")):
                s = err.sample_input

                def ours(name=name, s=s):
                    getattr(F, name)(_np(s.input), *(_np(a) for a in s.args),
                                     **{k: _np(v) for k, v in s.kwargs.items()})

                def theirs(fn=getattr(torch.nn.functional, name), s=s):  # noqa: B008
                    fn(s.input, *s.args, **s.kwargs)

                cases.append(ErrorCase(f"op_db-{name}-{i}", ours, theirs, err.error_type))
    return cases


ERROR_CASES = _error_cases()


@pytest.mark.parametrize("case", ERROR_CASES, ids=[case.id for case in ERROR_CASES])
def test_error_input_raises_the_corresponding_error(case):
    with pytest.raises(case.torch_type):
        case.torch_call()
    with mc.use_backend(BACKEND), pytest.raises(Exception) as info:  # noqa: B017 - checked below
        case.call()
    assert _matches_torch_error(info.value, case.torch_type), (
        f"torch raises {case.torch_type.__name__}, we raised "
        f"{type(info.value).__name__}: {info.value}")
    assert ":" in str(info.value), f"the message should start with the argument: {info.value}"
