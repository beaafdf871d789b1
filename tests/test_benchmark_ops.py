"""benchmarks.ops: the algorithm column names what the backend really runs."""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_cnn as mc
from benchmarks.ops import conv_algorithm_used
from benchmarks.suite import CONV_SUITE


@pytest.mark.skipif("numba" not in mc.backends(), reason="numba backend unavailable")
@pytest.mark.parametrize("name", ["resnet18.layer2 128->128 3x3 @28",
                                  "resnet18.layer4 512->512 3x3 @7",
                                  "lenet5.conv2 6->16 5x5 @14"])
def test_algorithm_column_is_the_path_the_numba_forward_takes(monkeypatch, name):
    import kernels.numba_cpu as nc
    from minitorch_cnn import functional as F

    case = next(c for c in CONV_SUITE if c.name == name)
    calls = []
    for path in ("_conv2d_winograd", "_conv2d_gemm"):
        real = getattr(nc, path)
        monkeypatch.setattr(nc, path, lambda *a, _real=real, _path=path: (
            calls.append(_path), _real(*a))[1])
    x = np.random.default_rng(0).standard_normal((1, *case.x_shape[1:]), dtype=np.float32)
    w = np.ones(case.w_shape, np.float32) / 9
    F.conv2d(x, w, None, case.stride, case.padding, backend="numba")  # one sample will do
    label = conv_algorithm_used(case, "numba")
    ran = calls[0] if calls else "direct"  # neither Winograd nor GEMM: the direct path
    assert {"_conv2d_winograd": "winograd F(2)", "_conv2d_gemm": "gemm",
            "direct": "direct"}[ran] == label
    assert conv_algorithm_used(case, "torch") is None
