"""The kernel contract of ``kernels/__init__.py``, checked on every backend module.

- Every function in ``kernels/`` (kernels, device functions, helpers, nested ones) takes at
  most :data:`MAX_PARAMETERS` parameters; the failure names each one that takes more.
- No kernel reads its geometry by position (``geom[4]``): the grep of the issue, as a test.
- Every backend exports each op of ``KERNEL_FUNCTIONS`` with the contract's parameters.
- The problem records are NamedTuples of ints that Numba types as one homogeneous tuple, and
  their output sizes are PyTorch's.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kernels import KERNEL_FUNCTIONS
from kernels.common import AdaptivePoolSpec, ConvSpec, PoolSpec, flops_conv2d
from minitorch_cnn.backend import kernel_module

from .checks import BACKENDS

KERNELS = Path(__file__).resolve().parent.parent / "kernels"
MAX_PARAMETERS = 6

CONTRACT = {  # op -> its parameters, in order (kernels/__init__.py)
    "corr2d": ["X", "K"],
    "conv2d": ["x", "weight", "bias", "spec"],
    "conv2d_backward": ["grad_y", "x", "weight", "spec", "needs_input_grad"],  # keyword-only
    "conv_transpose2d": ["x", "weight", "bias", "spec"],
    "conv_transpose2d_backward": ["grad_y", "x", "weight", "spec"],
    "max_pool2d": ["x", "spec", "return_indices"],
    "max_pool2d_backward": ["grad_y", "x", "indices", "spec"],
    "avg_pool2d": ["x", "spec"],
    "avg_pool2d_backward": ["grad_y", "spec"],
    "adaptive_avg_pool2d": ["x", "spec"],
    "adaptive_avg_pool2d_backward": ["grad_y", "spec"],
    "adaptive_max_pool2d": ["x", "spec", "return_indices"],
    "adaptive_max_pool2d_backward": ["grad_y", "x", "indices", "spec"],
    "max_unpool2d": ["x", "indices", "spec"],
    "max_unpool2d_backward": ["grad_y", "indices", "spec"],
    "pad": ["x", "value", "spec"],
    "pad_backward": ["grad_y", "spec"],
    "relu": ["x"],
    "relu_backward": ["grad_y", "x"],
    "batch_norm": ["x", "running_mean", "running_var", "weight", "bias", "spec"],
    "batch_norm_backward": ["grad_y", "x", "weight", "mean", "inv_std", "spec"],
    "sigmoid": ["x"],
    "sigmoid_backward": ["grad_y", "y"],
    "tanh": ["x"],
    "tanh_backward": ["grad_y", "y"],
    "add": ["a", "b"],
    "linear": ["x", "weight", "bias"],
    "linear_backward": ["grad_y", "x", "weight", "needs_input_grad"],  # keyword-only
    "log_softmax": ["x"],
    "log_softmax_backward": ["grad_y", "y"],
    "nll_loss": ["logp", "target", "spec"],
    "nll_loss_backward": ["logp", "target", "grad", "spec"],
    "cross_entropy": ["logits", "target", "spec"],
    "cross_entropy_backward": ["logits", "target", "grad", "spec"],
    "dropout": ["x", "spec"],
    "dropout_backward": ["grad_y", "mask", "spec"],
    "sgd_step": ["param", "grad", "buf", "hyper", "first"],  # first: keyword-only
    "adam_step": ["param", "grad", "m", "v", "v_max", "hyper"],
    "leaky_relu": ["x", "negative_slope"],
    "leaky_relu_backward": ["grad_y", "x", "negative_slope"],
    "elu": ["x", "alpha"],
    "elu_backward": ["grad_y", "x", "alpha"],
    "gelu": ["x", "approximate"],
    "gelu_backward": ["grad_y", "x", "approximate"],
    "silu": ["x"],
    "silu_backward": ["grad_y", "x"],
    "softmax": ["x"],
    "softmax_backward": ["grad_y", "y"],
    "dropout2d": ["x", "spec"],
    "dropout2d_backward": ["grad_y", "mask", "spec"],
    "cat": ["arrays"],
    "cat_backward": ["grad_y", "sizes"],
}


def _parameter_count(node: ast.FunctionDef) -> int:
    """Every parameter a caller passes: positional, keyword-only, ``*args``, ``**kwargs``.

    A method's ``self`` or ``cls`` is not counted: the caller does not pass it.
    """
    a = node.args
    positional = [p.arg for p in a.posonlyargs + a.args]
    receiver = 1 if positional[:1] in (["self"], ["cls"]) else 0
    return (len(positional) - receiver + len(a.kwonlyargs)
            + (a.vararg is not None) + (a.kwarg is not None))


def too_many_parameters(source: str, path: str) -> list[str]:
    """``"path:line name (n parameters)"`` for each function of ``source`` over the limit."""
    return [
        f"{path}:{node.lineno} {node.name} ({_parameter_count(node)} parameters)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and _parameter_count(node) > MAX_PARAMETERS
    ]


def _kernel_sources():
    return sorted(KERNELS.rglob("*.py"))


def test_the_parameter_counter_sees_nested_and_keyword_only_parameters():
    source = (
        "def factory(DT):\n"
        "    def kernel(a, b, c, d, e, *, f, g):\n"
        "        pass\n"
        "    return kernel\n"
        "def fine(a, b, c, d, e, f):\n"
        "    pass\n"
        "class Spec:\n"
        "    def build(cls, a, b, c, d, e, f):\n"
        "        pass\n"
        "    def method(this, a, b, c, d, e, f):\n"
        "        pass\n"
    )
    assert too_many_parameters(source, "m.py") == ["m.py:2 kernel (7 parameters)",
                                                   "m.py:10 method (7 parameters)"]


def test_no_function_in_kernels_takes_more_than_six_parameters():
    offenders = []
    for path in _kernel_sources():
        offenders += too_many_parameters(path.read_text(), str(path.relative_to(KERNELS.parent)))
    assert not offenders, "functions over the limit:\n" + "\n".join(offenders)


def test_no_kernel_reads_its_geometry_by_position():
    pattern = re.compile(r"geom\[[0-9]")
    hits = [
        f"{path.relative_to(KERNELS.parent)}:{number}: {line.strip()}"
        for path in _kernel_sources()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, "positional geometry:\n" + "\n".join(hits)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", KERNEL_FUNCTIONS)
def test_kernel_signature_follows_the_contract(backend, op):
    function = getattr(kernel_module(backend), op)
    names = list(inspect.signature(function).parameters)
    assert names == CONTRACT[op], f"{backend}.{op}{tuple(names)}"


def test_the_contract_table_covers_every_kernel_function():
    assert sorted(CONTRACT) == sorted(KERNEL_FUNCTIONS)


@pytest.mark.parametrize(
    "spec",
    [
        ConvSpec.from_shapes((2, 4, 9, 7), (6, 2, 3, 2), (2, 1), (1, 0), (1, 2), 2),
        PoolSpec.from_shape((2, 3, 9, 7), (3, 2), (2, 1), (1, 0), (1, 2), True).averaged(False, 5),
        AdaptivePoolSpec.from_shape((2, 3, 9, 7), (4, 3)),
    ],
    ids=["ConvSpec", "PoolSpec", "AdaptivePoolSpec"],
)
def test_a_spec_is_one_homogeneous_numba_tuple_of_ints(spec):
    numba = pytest.importorskip("numba")
    assert all(type(v) is int for v in spec), spec
    typ = numba.typeof(spec)
    assert isinstance(typ, numba.types.NamedUniTuple) and typ.dtype == numba.types.int64, typ

    @numba.njit
    def read(s):
        return s.H_out * 1000 + s.W_out

    assert read(spec) == spec.H_out * 1000 + spec.W_out


@given(
    size=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    groups=st.sampled_from([1, 2]),
)
def test_conv_spec_sizes_are_torchs(size, kernel, stride, padding, dilation, groups):
    for i in range(2):  # the dilated kernel must fit the padded input, as validated
        if dilation[i] * (kernel[i] - 1) + 1 > size[i] + 2 * padding[i]:
            return
    spec = ConvSpec.from_shapes((1, 2 * groups) + size, (2 * groups, 2) + kernel, stride,
                                padding, dilation, groups)
    y = torch.nn.functional.conv2d(torch.zeros(spec.x_shape), torch.zeros(spec.weight_shape),
                                   stride=stride, padding=padding, dilation=dilation,
                                   groups=groups)
    assert spec.y_shape == tuple(y.shape)
    assert (spec.H_pad, spec.W_pad) == (size[0] + 2 * padding[0], size[1] + 2 * padding[1])
    macs = spec.N * spec.C_out * spec.H_out * spec.W_out * 2 * kernel[0] * kernel[1]
    assert flops_conv2d(spec.y_shape, spec.weight_shape) == 2 * macs  # C_in // groups = 2


@given(
    size=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    ceil_mode=st.booleans(),
)
def test_pool_spec_sizes_are_torchs(size, kernel, stride, padding, dilation, ceil_mode):
    for i in range(2):  # padding at most half the window; the window fits the padded input
        reach = dilation[i] * (kernel[i] - 1) + 1
        if padding[i] > kernel[i] // 2 or reach > size[i] + 2 * padding[i]:
            return
    spec = PoolSpec.from_shape((1, 2) + size, kernel, stride, padding, dilation, ceil_mode)
    y = torch.nn.functional.max_pool2d(torch.zeros(spec.x_shape), kernel, stride, padding,
                                       dilation, ceil_mode)
    assert spec.y_shape == tuple(y.shape)
    for axis, (k, s, p, d) in enumerate(zip(kernel, stride, padding, dilation, strict=True)):
        last_window_end = ((spec.y_shape[2 + axis] - 1) * s + d * (k - 1) + 1)
        padded = (spec.H_pad, spec.W_pad)[axis]
        assert padded >= max(size[axis] + 2 * p, last_window_end)  # holds every window
        assert padded == max(size[axis] + 2 * p, last_window_end)  # and no more



def test_remembered_specs_are_the_specs_of_their_arguments():
    """``from_shapes`` / ``from_shape`` remember their specs: asked again with equal arguments
    they give the same spec (lists or tuples, ints of any kind), never one of other arguments;
    and ``averaged`` sets the divisor rule asked for whatever the spec held before."""
    a = ConvSpec.from_shapes((2, 4, 9, 7), (6, 2, 3, 2), (2, 1), (1, 0), (1, 2), 2)
    b = ConvSpec.from_shapes([2, 4, 9, 7], [6, 2, 3, 2], [2, 1], [1, 0], [1, 2], np.int64(2))
    assert a is b and all(type(v) is int for v in b)
    c = ConvSpec.from_shapes((2, 4, 9, 7), (6, 2, 3, 2), (1, 1), (1, 0), (1, 2), 2)
    assert (c.stride_h, c.H_out) == (1, 9) and (a.stride_h, a.H_out) == (2, 5)
    p = PoolSpec.from_shape((2, 3, 9, 7), (3, 2), (2, 1), (1, 0), (1, 2), True)
    assert p is PoolSpec.from_shape([2, 3, 9, 7], [3, 2], [2, 1], [1, 0], [1, 2], 1)
    assert PoolSpec.from_shape((2, 3, 9, 7), (3, 2), (2, 1), (1, 0), (1, 2), False) != p
    assert p.averaged() is p  # the default rule: nothing to change
    custom = p.averaged(False, 5)
    assert (custom.count_include_pad, custom.divisor_override) == (0, 5)
    for again, rule in ((custom.averaged(), (1, 0)), (custom.averaged(False), (0, 0)),
                        (custom.averaged(True, 3), (1, 3))):
        assert (again.count_include_pad, again.divisor_override) == rule


# A backend's public functions that are not ops: its own options and helpers, each named
# with the reason. Everything else a backend package defines publicly must be an op of
# KERNEL_FUNCTIONS, so no backend grows an op the others lack (the cuda backend once held
# training kernels no CPU backend had).
NOT_OPS = {
    "naive": {"corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1",  # d2l's
              "dropout_mask"},  # steps, kept as the readable road to conv2d; the mask draw
    "numpy": set(),
    "numba": {"choose_tile", "chunk_samples", "conv_plan", "direct_kernels",  # planning
              "subpixel_wins"},
    "cuda": {"conv_algorithm", "get_conv_algorithm", "set_conv_algorithm",  # the rung option
             "unavailable_reason",  # why the backend cannot run here
             "blocks", "empty", "finish", "is_device_array", "numba_dtype", "to_device",
             "pad_bottom_right"},  # moving arrays and sizing launches
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_exports_the_same_ops(backend):
    module = kernel_module(backend)
    own = {name for name, value in vars(module).items()  # defined by this backend
           if not name.startswith("_") and inspect.isfunction(value)
           and value.__module__.startswith(module.__name__)}
    extra = own - NOT_OPS[backend] - set(KERNEL_FUNCTIONS)
    missing = [op for op in KERNEL_FUNCTIONS if not callable(getattr(module, op, None))]
    assert not extra and not missing, (  # an op may be another backend's (numba reuses some)
        f"{backend}: public functions that are no op of KERNEL_FUNCTIONS: {sorted(extra)}; "
        f"ops missing: {missing}")
