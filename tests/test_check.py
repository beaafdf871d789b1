"""``minitorch_cnn.check`` and ``minitorch-cnn check``: a learner's kernel graded both ways.

A correct solution (the worked solutions of docs/exercises/solutions/) passes and prints
"passed N cases"; a deliberately wrong one (a flipped kernel, a missing bias, a missing
gradient) fails with the smallest case hypothesis found: the arguments, the expected and
received arrays and where they differ. The command line exits 0, 1, or 2 on bad usage.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import minitorch_cnn as mc
from minitorch_cnn import cli
from minitorch_cnn.check import FEATURES, load_function

SOLUTIONS = Path(__file__).resolve().parents[1] / "docs" / "exercises" / "solutions"
EXAMPLES = 25  # enough for a wrong kernel to be caught; the docs' solutions run 100


def solution(name: str, function: str | None = None):
    return load_function(f"{SOLUTIONS / name}.py:{function or name}")


def shapes(report: str) -> dict[str, tuple[int, ...]]:
    """``{argument: shape}`` of the arguments section of a failure report."""
    return {m[1]: tuple(int(s) for s in m[2].split(",") if s.strip())
            for m in re.finditer(r"^  (\w+), shape \(([\d, ]*)\):$", report, flags=re.M)}


def test_a_correct_conv2d_passes_and_says_how_many_cases(capsys):
    result = mc.check(solution("conv2d"), op="conv2d", examples=EXAMPLES)
    assert result.passed and result and result.cases == EXAMPLES
    assert capsys.readouterr().out == f"conv2d: passed {EXAMPLES} cases against PyTorch\n"


def test_a_flipped_kernel_fails_with_the_smallest_case(capsys):
    conv2d = solution("conv2d")

    def flipped(x, weight, bias=None, **kwargs):  # convolution, not cross-correlation
        return conv2d(x, weight[:, :, ::-1, ::-1], bias, **kwargs)

    result = mc.check(flipped, op="conv2d", examples=EXAMPLES)
    out = capsys.readouterr().out
    assert not result.passed and not result and out == result.report + "\n"
    assert out.startswith("FAILED conv2d against PyTorch: the smallest failing case")
    for part in ("arguments:", "expected y, shape", "received y:",
                 "where they differ (index: expected, received):"):
        assert part in out, out
    sizes = shapes(out)
    assert sizes["x"][:2] == (1, 1) and sizes["weight"][:2] == (1, 1), out  # shrunk
    assert sorted(sizes["weight"][2:]) == [1, 2], out  # the smallest kernel a flip changes


def test_a_missing_bias_fails_and_shows_the_bias(capsys):
    conv2d = solution("conv2d")

    def no_bias(x, weight, bias=None, **kwargs):
        return conv2d(x, weight, None, **kwargs)

    result = mc.check(no_bias, op="conv2d", examples=EXAMPLES, verbose=False)
    assert not result.passed
    assert shapes(result.report)["bias"] == (1,), result.report
    assert capsys.readouterr().out == ""  # verbose=False prints nothing
    assert mc.check(no_bias, op="conv2d", without=["bias"], examples=EXAMPLES,
                    verbose=False).passed


def test_a_partial_implementation_is_graded_on_what_it_claims():
    strided = solution("conv2d_strided", "conv2d")  # no dilation, groups, "same"
    first = ("dilation", "groups", "padding_strings")
    result = mc.check(strided, op="conv2d", without=first, examples=EXAMPLES, verbose=False)
    assert result.passed, result.report
    assert result.report.startswith("conv2d (without dilation, groups, padding_strings): passed")
    result = mc.check(strided, op="conv2d", examples=EXAMPLES, verbose=False)
    assert not result.passed
    assert "raised TypeError: conv2d() got an unexpected keyword argument" in result.report
    assert re.search(r"leave it out: --no-(dilation|groups) on the command line", result.report)


def test_conv2d_backward_correct_and_with_a_gradient_missing():
    backward = solution("conv2d_backward")
    assert mc.check(backward, op="conv2d_backward", examples=EXAMPLES, verbose=False).passed
    two = mc.check(lambda *a, **k: backward(*a, **k)[:2], op="conv2d_backward",
                   examples=EXAMPLES, verbose=False)
    assert not two.passed
    assert "expected 3 arrays (grad_x, grad_weight, grad_bias), received 2 values" in two.report

    def wrong_grad_weight(*args, **kwargs):
        grad_x, grad_weight, grad_bias = backward(*args, **kwargs)
        return grad_x, 2 * grad_weight, grad_bias

    report = mc.check(wrong_grad_weight, op="conv2d_backward", examples=EXAMPLES,
                      verbose=False).report
    assert "grad_weight: 1 of 1 elements differ" in report, report  # shrunk to one weight
    assert "grad_x:" not in report


def test_a_wrong_shape_and_an_exception_are_failures_too():
    result = mc.check(lambda X, K: np.zeros((1, 1)), op="corr2d", examples=EXAMPLES,
                      verbose=False)
    assert not result.passed and "Y: expected shape (1, 2), received shape (1, 1)" in result.report

    def broken(X, K):
        return X[100, 100]

    result = mc.check(broken, op="corr2d", examples=EXAMPLES, verbose=False)
    assert "raised IndexError" in result.report
    assert re.search(r"at .*test_check\.py:\d+, in broken: return X\[100, 100\]", result.report)


def test_the_naive_backend_is_the_reference_without_torch(monkeypatch):
    corr2d = solution("corr2d")
    result = mc.check(corr2d, op="corr2d", examples=5, reference="naive", verbose=False)
    assert result.passed and result.reference == "the naive backend"
    monkeypatch.setitem(sys.modules, "reference", None)  # `import reference` fails
    result = mc.check(corr2d, op="corr2d", examples=5, verbose=False)
    assert result.passed and "against the naive backend" in result.report
    with pytest.raises(ImportError):
        mc.check(corr2d, op="corr2d", reference="torch")


@pytest.mark.parametrize("call, error, message", [
    (dict(op="conv3d"), ValueError, "op: expected one of corr2d, conv2d, "),
    (dict(fn=42), TypeError, "fn: expected a function, got int"),
    (dict(without=("groups", "ceil_mode")), ValueError,
     "without: conv2d draws only stride, padding, padding_strings, dilation, groups, bias; "
     "got ceil_mode"),
    (dict(op="corr2d", without="stride"), ValueError,
     "without: corr2d draws only nothing to leave out; got stride"),
    (dict(examples=0), ValueError, "examples: expected a positive int, got 0"),
    (dict(reference="numpy"), ValueError,
     "reference: expected None, 'torch' or 'naive', got 'numpy'"),
])
def test_bad_arguments_name_themselves(call, error, message):
    kwargs = dict(fn=solution("conv2d"), op="conv2d") | call
    with pytest.raises(error, match=re.escape(message)):
        mc.check(**kwargs)


def test_strategies_leave_out_what_without_names():
    from hypothesis import given, settings

    from minitorch_cnn.strategies import conv_problems, pool_problems

    @settings(max_examples=30, database=None)
    @given(conv_problems(without=FEATURES["conv"]), pool_problems("max", without=["stride"]),
           pool_problems("avg", without=FEATURES["avg"]))
    def drawn(conv, max_pool, avg_pool):
        assert conv.kwargs == {} and conv.bias is None
        assert "stride" not in max_pool.kwargs
        assert set(avg_pool.kwargs) == {"kernel_size"}

    drawn()


# ------------------------------------------------------------------------------ the command


FLIPPED = '''\
import numpy as np


def corr2d(X, K):
    K = K[::-1, ::-1]  # the textbook's convolution, not a cross-correlation
    kh, kw = K.shape
    Y = np.zeros((X.shape[0] - kh + 1, X.shape[1] - kw + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + kh, j:j + kw] * K).sum()
    return Y
'''


def test_cli_exit_0_when_every_case_passed(capsys):
    target = f"{SOLUTIONS / 'conv2d_strided.py'}:conv2d"
    status = cli.main(["check", target, "--op", "conv2d", "--no-dilation", "--no-groups",
                       "--no-padding-strings", "--examples", str(EXAMPLES)])
    assert status == 0
    assert capsys.readouterr().out == (f"conv2d (without dilation, groups, padding_strings): "
                                       f"passed {EXAMPLES} cases against PyTorch\n")


def test_cli_exit_1_on_a_failing_case(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(FLIPPED)
    status = cli.main(["check", f"{tmp_path / 'mine.py'}:corr2d", "--op", "corr2d",
                       "--examples", str(EXAMPLES)])
    out = capsys.readouterr().out
    assert status == 1, out
    assert out.startswith("FAILED corr2d against PyTorch") and "where they differ" in out
    assert shapes(out)["K"] in ((1, 2), (2, 1)), out


@pytest.mark.parametrize("argv, message", [
    (["nowhere.py:f", "--op", "conv2d"], "FILE:FUNCTION: no file 'nowhere.py'"),
    (["{dir}/mine.py", "--op", "corr2d"], "FILE:FUNCTION: expected a Python file and a "
                                          "function name, such as my_conv.py:conv2d"),
    (["{dir}/mine.py:conv2d", "--op", "corr2d"],
     "FILE:FUNCTION: mine.py defines no function 'conv2d' (it defines corr2d)"),
    (["{dir}/mine.py:corr2d", "--op", "corr2d", "--no-groups"],
     "without: corr2d draws only nothing to leave out; got groups"),
    (["{dir}/broken.py:corr2d", "--op", "corr2d"], "broken.py:corr2d does not load"),
])
def test_cli_exit_2_on_bad_usage(argv, message, tmp_path, capsys):
    (tmp_path / "mine.py").write_text(FLIPPED)
    (tmp_path / "broken.py").write_text("def corr2d(X, K)\n    return X\n")
    status = cli.main(["check", *(a.format(dir=tmp_path) for a in argv)])
    err = capsys.readouterr().err
    assert status == 2 and message in err, err
