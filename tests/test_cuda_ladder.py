"""Every rung of the conv ladder equals PyTorch: forward, grad_input, grad_weight, both dtypes.

Runs in the Numba CUDA simulator without a GPU (``tests/conftest.py``), so the problems are
tiny; each is chosen to hit what a rung could get wrong: groups, dilation, a stride pair (two
stride phases in grad_input), asymmetric padding, a bias, column tiles that end part-way
(27 output pixels: two 16-wide tiles for ``igemm_smem``, one partial tile for the others),
and reductions longer than one ``BK = 16`` step (grad_weight: 27; ``test_gemm_rungs_span_tiles``:
forward 18, with two row tiles for ``igemm_smem``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

kc = pytest.importorskip("kernels.cuda")
if kc.unavailable_reason() is not None:  # pragma: no cover - only without GPU and simulator
    pytest.skip(kc.unavailable_reason(), allow_module_level=True)

import reference as R  # noqa: E402
from kernels.common import ConvSpec  # noqa: E402
from kernels.cuda import conv_gemm  # noqa: E402

from .checks import check_against_torch  # noqa: E402

ARGS = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)


def run_rung(rung, dtype, x_shape, w_shape, args, seed=0, bias=True):
    """Forward and backward with rung ``rung`` against PyTorch (reference/)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    spec = ConvSpec.from_shapes(x.shape, w.shape, args["stride"], args["padding"],
                                args["dilation"], args["groups"])
    y_ref = R.conv2d(x, w, b, **args)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    with kc.conv_algorithm(rung):
        y = kc.conv2d(x, w, b, spec)
        grads = kc.conv2d_backward(gy, x, w, spec)
    check_against_torch(y, y_ref, f"y [{rung}]")
    for ours, theirs, name in zip(grads, R.conv2d_backward(gy, x, w, **args),
                                  ("grad_x", "grad_weight", "grad_bias"), strict=True):
        check_against_torch(ours, theirs, f"{name} [{rung}]")


def test_ladder_has_eight_rungs_igemm_default():
    assert kc.ALGORITHMS == ("naive", "direct", "tiled", "igemm_smem", "igemm_1d", "igemm_2d",
                             "igemm_nodiv", "igemm")
    assert kc.DEFAULT_ALGORITHM == "igemm" == kc.get_conv_algorithm()
    assert set(conv_gemm.RUNGS) < set(kc.ALGORITHMS)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("rung", kc.ALGORITHMS)
def test_rung_forward_backward_matches_torch(rung, dtype):
    """H_out x W_out = 3 x 9: 27 columns per group; grad_input has 2 stride phases."""
    run_rung(rung, dtype, (1, 4, 5, 7), (4, 2, 3, 2), ARGS)


@pytest.mark.parametrize("rung", ["igemm_smem"])
def test_gemm_rungs_span_tiles(rung):
    """C_out = 17 rows: two 16-row tiles for igemm_smem (the other GEMM rungs share its
    skeleton; their 64-row tiles would cost the simulator 4x), a forward reduction of
    2*3*3 = 18 > BK = 16 (a full and a partial step), stride (1, 2)."""
    args = dict(stride=(1, 2), padding=(1, 1), dilation=(1, 1), groups=1)
    run_rung(rung, np.float64, (1, 2, 4, 5), (17, 2, 3, 3), args, seed=1, bias=False)


@settings(max_examples=3)  # the simulator runs each example's ~8 launches as Python threads
@given(rung=st.sampled_from(kc.ALGORITHMS), groups=st.sampled_from([1, 2]),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.tuples(st.integers(0, 1), st.integers(0, 1)),
       kernel=st.tuples(st.integers(1, 2), st.integers(1, 3)),
       seed=st.integers(0, 2**16))
def test_rung_random_problems_match_torch(rung, groups, stride, dilation, padding, kernel,
                                          seed):
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    run_rung(rung, np.float64, (1, 2, 4, 5), (2, 2 // groups) + kernel, args, seed=seed)


def test_rung_config_is_consistent():
    """Each GEMM rung's tile divides into its threads' register blocks and loads."""
    for rung in conv_gemm.RUNGS.values():
        assert rung.threads == 256
        assert rung.BM % rung.TM == 0 and rung.BN % rung.TN == 0
        assert rung.threads % rung.BK == 0 and rung.threads % rung.BN == 0
