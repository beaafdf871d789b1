"""Grade a learner's own kernel with the project's hypothesis strategies.

``minitorch_cnn.check(fn, op="conv2d")`` draws valid problems with the strategies the tests
use (:mod:`minitorch_cnn.strategies`: asymmetric kernels, non-square inputs, every stride,
padding, dilation and groups), calls ``fn`` with the arguments of ``F.<op>`` (same names,
order and defaults, without ``backend``) and compares what it returns with the reference:
PyTorch (the ``reference`` package) when torch is installed, else the naive backend. When a
case fails, hypothesis shrinks it, and the report shows the smallest failing case it found:
the arguments, the expected and the received arrays, and where they differ.

    >>> import minitorch_cnn as mc
    >>> from minitorch_cnn import functional as F
    >>> def my_conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    ...     return F.conv2d(x, weight, bias, stride, padding, dilation, groups, backend="naive")
    >>> mc.check(my_conv, op="conv2d", examples=5, verbose=False).passed
    True

A first attempt need not do everything: ``without=("groups", "dilation")`` draws no groups
and no dilation, and leaves those arguments out of the call, so a function without them can
be graded on the cases it claims. The command line does the same:
``minitorch-cnn check my_conv.py:conv2d --op conv2d --no-groups --no-dilation``.

Everything is drawn in float64 and compared element by element as the tests compare:
``|received - expected| <= tol * (|expected| + scale)`` with ``scale`` the expected array's
largest finite magnitude (at least 1); NaNs and infinities must sit in the same places.
Needs hypothesis (``pip install minitorch-cnn[check]``).
"""

from __future__ import annotations

import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, TextIO

import numpy as np


class OpCase(NamedTuple):
    """How to grade one op: its kind of problem, its positional arrays, its outputs' names."""

    kind: str  # a key of minitorch_cnn.strategies.FEATURES
    arrays: tuple[str, ...]  # the problem's fields passed positionally, in F.<op>'s order
    outputs: tuple[str, ...]  # the names of what F.<op> returns


FEATURES: dict[str, tuple[str, ...]] = {
    "conv": ("stride", "padding", "padding_strings", "dilation", "groups", "bias"),
    "max": ("stride", "padding", "dilation", "ceil_mode", "nan"),
    "avg": ("stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "adaptive": (),
    "corr2d": (),
}
"""What ``without`` may name, per kind of problem (:mod:`minitorch_cnn.strategies` draws
them). ``padding_strings`` is ``padding="same"`` and ``"valid"``; ``nan`` is the NaNs max
pooling sprinkles into ``x``; for pooling, leaving out ``stride`` means PyTorch's default
``stride=None``, i.e. stride = kernel_size. Defined here, not in the strategies, so that the
command line builds its options without importing hypothesis."""

FEATURE_HELP = {
    "padding_strings": 'padding="same" and "valid"',
    "nan": "NaNs in x",
    "stride": "stride (pooling: stride=None, i.e. stride = kernel_size)",
}

OPS: dict[str, OpCase] = {
    "corr2d": OpCase("corr2d", ("X", "K"), ("Y",)),
    "conv2d": OpCase("conv", ("x", "weight", "bias"), ("y",)),
    "conv2d_backward": OpCase("conv", ("grad_y", "x", "weight"),
                              ("grad_x", "grad_weight", "grad_bias")),
    "max_pool2d": OpCase("max", ("x",), ("y",)),
    "max_pool2d_backward": OpCase("max", ("grad_y", "x"), ("grad_x",)),
    "avg_pool2d": OpCase("avg", ("x",), ("y",)),
    "avg_pool2d_backward": OpCase("avg", ("grad_y", "x"), ("grad_x",)),
    "adaptive_avg_pool2d": OpCase("adaptive", ("x",), ("y",)),
    "adaptive_avg_pool2d_backward": OpCase("adaptive", ("grad_y", "x"), ("grad_x",)),
}
"""The ops :func:`check` grades, by the name of their ``minitorch_cnn.functional`` function."""


def features(op: str) -> tuple[str, ...]:
    """The hyper-parameters of ``op`` that ``without`` (``--no-...``) may leave out."""
    return FEATURES[_op_case(op).kind]


@dataclass
class CheckResult:
    """What :func:`check` found: ``passed``, the number of ``cases`` run, the ``report``."""

    passed: bool
    cases: int
    report: str
    reference: str

    def __bool__(self) -> bool:
        return self.passed


class _Failure(Exception):
    """Raised inside the hypothesis run on a failing case; carries the case's report."""


def _op_case(op: str) -> OpCase:
    if op not in OPS:
        raise ValueError(f"op: expected one of {', '.join(OPS)}, got {op!r}")
    return OPS[op]


def _reference(name: str | None) -> tuple[str, Callable[..., Any]]:
    """``(description, module)``: ``reference`` (PyTorch) when importable, else naive."""
    if name not in (None, "torch", "naive"):
        raise ValueError(f"reference: expected None, 'torch' or 'naive', got {name!r}")
    if name in (None, "torch"):
        try:
            import reference

            return "PyTorch", reference
        except ImportError:
            if name == "torch":
                raise
    from . import functional

    class _Naive:
        def __getattr__(self, op):
            return lambda *args, **kwargs: getattr(functional, op)(*args, **kwargs,
                                                                    backend="naive")

    return "the naive backend", _Naive()


def _strategy(case: OpCase, without: frozenset[str], max_size: int):
    from . import strategies

    if case.kind == "conv":
        return strategies.conv_problems(max_size=max_size, without=without)
    if case.kind in ("max", "avg"):
        return strategies.pool_problems(case.kind, max_size=max_size, without=without)
    if case.kind == "adaptive":
        return strategies.adaptive_problems(max_size=max_size)
    return strategies.corr2d_problems(max_size=max_size)


def _call_arguments(case: OpCase, problem, without: frozenset[str]):
    """``(args, kwargs)`` of one call: the arrays in F.<op>'s order, then the hyper-parameters."""
    names = [n for n in case.arrays if not (n == "bias" and "bias" in without)]
    args = tuple(getattr(problem, n) for n in names)
    kwargs = dict(getattr(problem, "kwargs", {}))
    return names, args, kwargs


def _show(a: np.ndarray, indent: str = "    ") -> str:
    text = np.array2string(np.asarray(a), precision=6, separator=", ", max_line_width=96,
                           threshold=400)
    return "\n".join(indent + line for line in text.splitlines())


def _mismatch(received: np.ndarray, expected: np.ndarray, tol: float) -> np.ndarray:
    """A boolean array, True where ``received`` differs from ``expected`` beyond ``tol``."""
    finite = expected[np.isfinite(expected)]
    scale = max(1.0, float(np.abs(finite).max()) if finite.size else 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.abs(received - expected) <= tol * (np.abs(expected) + scale)
        same = (received == expected) | (np.isnan(received) & np.isnan(expected))
    return ~(close | same)


def _compare(name: str, received: Any, expected: np.ndarray, tol: float) -> str | None:
    """``None`` when ``received`` equals ``expected``; else what differs, in words."""
    if received is None:
        return f"{name}: expected an array of shape {expected.shape}, received None"
    try:
        received = np.asarray(received, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return f"{name}: expected an array of shape {expected.shape}, received " \
               f"{type(received).__name__} ({exc})"
    if received.shape != expected.shape:
        return (f"{name}: expected shape {expected.shape}, received shape {received.shape}\n"
                f"  expected {name}:\n{_show(expected)}\n  received {name}:\n{_show(received)}")
    bad = _mismatch(received, expected, tol)
    if not bad.any():
        return None
    where = np.argwhere(bad)
    lines = [f"{name}: {len(where)} of {expected.size} elements differ (tolerance {tol:g} "
             f"relative to the expected array's scale)",
             f"  expected {name}, shape {expected.shape}:", _show(expected),
             f"  received {name}:", _show(received), "  where they differ (index: expected, "
             "received):"]
    for index in where[:8]:
        at = tuple(int(i) for i in index)
        lines.append(f"    {list(at)}: {float(expected[at])!r}, {float(received[at])!r}")
    if len(where) > 8:
        lines.append(f"    ... and {len(where) - 8} more")
    return "\n".join(lines)


def _describe_arguments(names, args, kwargs) -> str:
    lines = ["arguments:"]
    for name, a in zip(names, args, strict=True):
        if a is None:
            lines.append(f"  {name} = None")
        else:
            lines.append(f"  {name}, shape {a.shape}:")
            lines.append(_show(a))
    for name, value in kwargs.items():
        lines.append(f"  {name} = {value!r}")
    return "\n".join(lines)


def _raised(exc: BaseException) -> str:
    """The exception, and the innermost line of the learner's code that raised it."""
    text = f"raised {type(exc).__name__}: {exc}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    if frames:
        frame = frames[-1]
        text += f"\n  at {frame.filename}:{frame.lineno}, in {frame.name}: {frame.line}"
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
    if isinstance(exc, TypeError) and unexpected:
        name = unexpected[1]
        text += (f"\n  (a first attempt without {name}? leave it out: --no-{name.replace('_', '-')}"
                 f" on the command line, without=({name!r},) in Python)")
    return text


def check(fn: Callable[..., Any], op: str = "conv2d", *, without: Iterable[str] = (),
          examples: int = 100, tol: float = 1e-10, max_size: int = 8,
          reference: str | None = None, verbose: bool = True,
          file: TextIO | None = None) -> CheckResult:
    """Run ``fn`` on hypothesis-drawn problems of ``op`` and compare it with the reference.

    Parameters
    ----------
    fn : callable
        The learner's function. It takes the arguments of ``F.<op>`` (same names, order and
        defaults, without ``backend``): e.g. for ``"conv2d"``, ``fn(x, weight, bias=None,
        stride=1, padding=0, dilation=1, groups=1)`` with ``x : (N, C_in, H, W)`` and
        ``weight : (C_out, C_in // groups, kH, kW)``, returning ``y : (N, C_out, H_out,
        W_out)``; for ``"conv2d_backward"`` it returns ``(grad_x, grad_weight, grad_bias)``.
        NumPy arrays (anything :func:`numpy.asarray` takes) in float64.
    op : str
        One of :data:`OPS`: ``corr2d``, ``conv2d``, ``conv2d_backward``, ``max_pool2d``,
        ``max_pool2d_backward``, ``avg_pool2d``, ``avg_pool2d_backward``,
        ``adaptive_avg_pool2d``, ``adaptive_avg_pool2d_backward``.
    without : iterable of str
        Hyper-parameters not to draw (:func:`features` lists them per op; e.g. ``groups``,
        ``dilation``, ``stride``, ``padding``, ``padding_strings``, ``bias``, ``ceil_mode``).
        A left-out argument is not passed, so ``fn``'s default applies.
    examples : int
        How many cases hypothesis draws (deterministically: the same cases every run).
    tol : float
        The relative tolerance (float64 sums in another order differ by about 1e-15).
    max_size : int
        The largest spatial size drawn.
    reference : {None, "torch", "naive"}
        What ``fn`` is compared with: None picks PyTorch when installed, else naive.
    verbose : bool
        Print the report (to ``file``, default standard output).

    Returns
    -------
    CheckResult
        ``passed`` (also its truth value), ``cases`` run, ``report`` (``"passed N cases"``
        or the smallest failing case), ``reference`` (which one was used).
    """
    case = _op_case(op)
    if not callable(fn):
        raise TypeError(f"fn: expected a function, got {type(fn).__name__}")
    without = frozenset([without] if isinstance(without, str) else without)
    allowed = features(op)
    unknown = sorted(without - set(allowed))
    if unknown:
        raise ValueError(f"without: {op} draws only {', '.join(allowed) or 'nothing to leave out'}"
                         f"; got {', '.join(unknown)}")
    if not isinstance(examples, int) or examples < 1:
        raise ValueError(f"examples: expected a positive int, got {examples!r}")
    try:
        from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    except ImportError as exc:  # pragma: no cover - hypothesis is in the dev and check extras
        raise ImportError("minitorch_cnn.check needs hypothesis: pip install "
                          "'minitorch-cnn[check]'") from exc
    ref_name, ref = _reference(reference)
    expected_fn = getattr(ref, op)
    passed = [0]

    def one_case(problem) -> None:
        names, args, kwargs = _call_arguments(case, problem, without)
        with warnings.catch_warnings():  # torch's notes on its own performance
            warnings.simplefilter("ignore")
            expected = expected_fn(*args, **kwargs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        copies = tuple(None if a is None else a.copy() for a in args)
        problems = []
        try:
            received = fn(*copies, **kwargs)
        except Exception as exc:  # the learner's bug, reported as a failing case
            problems.append(_raised(exc))
        else:
            if len(case.outputs) > 1:
                if not isinstance(received, (tuple, list)) or len(received) != len(case.outputs):
                    got = (f"{len(received)} values" if isinstance(received, (tuple, list))
                           else type(received).__name__)
                    problems.append(f"expected {len(case.outputs)} arrays "
                                    f"({', '.join(case.outputs)}), received {got}")
                    received = None
            else:
                received = (received,)
            for name, r, e in zip(case.outputs, received or (), expected, strict=False):
                difference = _compare(name, r, np.asarray(e), tol)
                if difference:
                    problems.append(difference)
        if problems:
            raise _Failure("\n".join([_describe_arguments(names, args, kwargs), *problems]))
        passed[0] += 1

    run = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                   suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                   report_multiple_bugs=False, print_blob=False,
                   phases=[Phase.explicit, Phase.generate, Phase.shrink])(
        given(_strategy(case, without, max_size))(one_case))
    drawn = f" (without {', '.join(sorted(without))})" if without else ""
    try:
        run()
    except _Failure as failure:
        report = (f"FAILED {op}{drawn} against {ref_name}: the smallest failing case "
                  f"hypothesis found\n{failure}")
        result = CheckResult(False, passed[0], report, ref_name)
    else:
        report = f"{op}{drawn}: passed {passed[0]} cases against {ref_name}"
        result = CheckResult(True, passed[0], report, ref_name)
    if verbose:
        print(result.report, file=file or sys.stdout)
    return result


def load_function(target: str) -> Callable[..., Any]:
    """The function ``FUNCTION`` of the Python file ``FILE``, from ``"FILE:FUNCTION"``.

    The file's folder is on ``sys.path`` while it loads, so it may import its neighbours.
    Raises ``ValueError`` naming ``FILE:FUNCTION`` when the form, the file or the function
    is wrong.
    """
    import importlib.util
    from pathlib import Path

    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise ValueError(f"FILE:FUNCTION: expected a Python file and a function name, such as "
                         f"my_conv.py:conv2d; got {target!r}")
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"FILE:FUNCTION: no file {str(file)!r}")
    spec = importlib.util.spec_from_file_location(f"_minitorch_check_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise ValueError(f"FILE:FUNCTION: {str(file)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(file.resolve().parent)
    before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
        for key in set(sys.modules) - before:  # the file's neighbours: no stale reuse later
            if str(getattr(sys.modules[key], "__file__", None) or "").startswith(folder):
                del sys.modules[key]
    fn = getattr(module, name, None)
    if not callable(fn):
        defined = sorted(n for n, v in vars(module).items()
                         if callable(v) and not n.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        raise ValueError(f"FILE:FUNCTION: {file.name} defines no function {name!r} "
                         f"(it defines {', '.join(defined) or 'none'})")
    return fn


def add_arguments(parser) -> None:
    """The options of ``minitorch-cnn check``."""
    every = sorted({f for names in FEATURES.values() for f in names})
    parser.add_argument("target", metavar="FILE:FUNCTION",
                        help="the Python file and the function in it to grade")
    parser.add_argument("--op", required=True, choices=list(OPS), metavar="OP",
                        help=f"one of {', '.join(OPS)}: the op of minitorch_cnn.functional "
                             "the function implements; it takes that op's arguments (same "
                             "names, order and defaults, without backend) and returns NumPy "
                             "arrays")
    for name in every:
        parser.add_argument(f"--no-{name.replace('_', '-')}", dest="without",
                            action="append_const", const=name,
                            help=f"draw no {FEATURE_HELP.get(name, name)}")
    parser.add_argument("--examples", type=int, default=100,
                        help="how many cases to draw (default 100; the same every run)")
    parser.add_argument("--reference", choices=["torch", "naive"], default=None,
                        help="compare with PyTorch or the naive backend (default: PyTorch "
                             "when installed, else naive)")


def run(args) -> int:
    """``minitorch-cnn check``: 0 when every case passed, 1 on a failing case, 2 on bad usage."""
    try:
        fn = load_function(args.target)
    except ValueError as exc:
        print(f"minitorch-cnn check: error: {exc}", file=sys.stderr)
        return 2
    except Exception:  # the learner's file does not run: show where
        print(f"minitorch-cnn check: error: {args.target} does not load:", file=sys.stderr)
        traceback.print_exc()
        return 2
    try:
        result = check(fn, args.op, without=args.without or (), examples=args.examples,
                       reference=args.reference)
    except (ValueError, TypeError) as exc:
        print(f"minitorch-cnn check: error: {exc}", file=sys.stderr)
        return 2
    return 0 if result.passed else 1
