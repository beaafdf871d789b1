"""Winograd F(2x2, 3x3) and F(4x4, 3x3) (kernels/winograd.py, kernels/numba_cpu/winograd.py).

The general equivalence tests draw small problems on which ``"auto"`` never picks Winograd,
so here it is forced with each backend's ``conv_algorithm`` on 3x3 stride-1 problems with
padding 0-3 (3: grad_x's problem has a negative padding, a crop), partial last tiles,
non-square inputs, and compared with PyTorch: float64 to 1e-10, float32 against PyTorch in
float64 within ``kernels.winograd.FLOAT32_ERROR_BOUND``, forward, grad_x and grad_weight.
Also: the 1-D transform matrices compute a correlation; a NaN or inf, or a problem Winograd
cannot run, falls through to the other paths and still equals PyTorch; ``"auto"`` picks
Winograd exactly where the table says; the option rejects unknown names and restores itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitorch_cnn as mc
import reference as R
from kernels import winograd as wn
from kernels.common import ConvSpec
from minitorch_cnn import functional as F

from .checks import assert_close, check_against_torch, finite_scale

BACKENDS = [b for b in ("numba", "numpy") if b in mc.backends()]
TILES = {"winograd": 2, "winograd4": 4}


def _module(backend):
    if backend == "numba":
        import kernels.numba_cpu as module
    else:
        import kernels.vectorized as module
    return module


def _chooser(backend):
    if backend == "numba":
        from kernels.numba_cpu.winograd import choose_tile

        return choose_tile
    return wn.numpy_tile


@st.composite
def winograd_problems(draw, dtype):
    """A 3x3 stride-1 conv: draw padding and output size, derive the input (non-square)."""
    N = draw(st.integers(1, 2))
    C_in, C_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pads = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    H_out, W_out = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    H = max(H_out + 2 - 2 * pads[0], 1)
    W = max(W_out + 2 - 2 * pads[1], 1)
    W += H == W  # non-square
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, C_in, H, W)).astype(dtype)
    weight = rng.standard_normal((C_out, C_in, 3, 3)).astype(dtype)
    bias = rng.standard_normal(C_out).astype(dtype) if draw(st.booleans()) else None
    spec = ConvSpec.from_shapes(x.shape, weight.shape, (1, 1), pads, (1, 1), 1)
    grad_y = rng.standard_normal(spec.y_shape).astype(dtype)
    return x, weight, bias, grad_y, pads, spec


# --------------------------------------------------------------------------- the matrices


@pytest.mark.parametrize("m", [2, 4])
def test_transform_matrices_compute_a_1d_correlation(m):
    """``A^T [(G g) * (B^T d)] = y`` with ``y[i] = sum_k d[i + k] g[k]``, F(m, 3) in 1-D."""
    tile = wn.TILES[m]
    rng = np.random.default_rng(m)
    for _ in range(5):
        d, g = rng.standard_normal(tile.alpha), rng.standard_normal(3)
        y = tile.AT @ ((tile.G @ g) * (tile.BT @ d))
        expected = [d[i:i + 3] @ g for i in range(m)]
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- against torch


def _check(backend, algorithm, problem, dtype):
    x, weight, bias, grad_y, pads, spec = problem
    m = TILES[algorithm]
    with _module(backend).conv_algorithm(algorithm):
        assert _chooser(backend)(spec, x, weight) == m, "Winograd was not chosen"
        y = F.conv2d(x, weight, bias, padding=pads, backend=backend)
        gx, gw, gb = F.conv2d_backward(grad_y, x, weight, padding=pads, backend=backend)
    assert y.dtype == gx.dtype == gw.dtype == gb.dtype == dtype
    if dtype == np.float64:
        expected = R.conv2d(x, weight, bias, padding=pads)
        grads = R.conv2d_backward(grad_y, x, weight, padding=pads)
        for name, ours, ref in zip(("y", "grad_x", "grad_weight", "grad_bias"),
                                   (y, gx, gw, gb), (expected, *grads), strict=True):
            check_against_torch(ours, ref, name)
        return
    as64 = [None if a is None else a.astype(np.float64) for a in (x, weight, bias, grad_y)]
    x64, w64, b64, gy64 = as64
    expected = R.conv2d(x64, w64, b64, padding=pads)
    grads = R.conv2d_backward(gy64, x64, w64, padding=pads)
    for name, ours, ref in zip(("y", "grad_x", "grad_weight", "grad_bias"),
                               (y, gx, gw, gb), (expected, *grads), strict=True):
        assert_close(ours.astype(np.float64), ref, name, tol=wn.FLOAT32_ERROR_BOUND[m],
                     scale=finite_scale(ref), relative=False)


@pytest.mark.parametrize("algorithm", ["winograd", "winograd4"])
@pytest.mark.parametrize("backend", BACKENDS)
@given(problem=winograd_problems(np.float64))
def test_winograd_matches_torch_float64(backend, algorithm, problem):
    _check(backend, algorithm, problem, np.float64)


@pytest.mark.parametrize("algorithm", ["winograd", "winograd4"])
@pytest.mark.parametrize("backend", BACKENDS)
@given(problem=winograd_problems(np.float32))
def test_winograd_matches_torch_float32_within_bound(backend, algorithm, problem):
    _check(backend, algorithm, problem, np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_winograd_many_channels_and_tiles_float32(backend):
    """A layer with more channels and several chunks of tiles, both tile sizes."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 24, 13, 11)).astype(np.float32)
    weight = rng.standard_normal((20, 24, 3, 3)).astype(np.float32)
    grad_y = rng.standard_normal((3, 20, 13, 11)).astype(np.float32)
    spec = ConvSpec.from_shapes(x.shape, weight.shape, (1, 1), (1, 1), (1, 1), 1)
    for algorithm in TILES:
        _check(backend, algorithm, (x, weight, None, grad_y, (1, 1), spec), np.float32)


@pytest.mark.skipif("numba" not in mc.backends(), reason="numba backend unavailable")
@given(problem=winograd_problems(np.float64))
def test_written_out_f2_transforms_equal_the_matrix_ones(problem):
    """winograd_f2's sums written out compute what the transforms with B^T, A^T as data do."""
    from kernels.numba_cpu import winograd as nw
    from kernels.numba_cpu import winograd_f2 as f2

    x, _, bias, grad_y, _, spec = problem
    plan = nw._tile_plan(spec, 2, x.itemsize)._replace(samples=spec.N)
    BT, AT = wn.TILES[2].BT, wn.TILES[2].AT
    cols = spec.N * plan.tiles_h * plan.pitch
    M = np.random.default_rng(0).standard_normal((16, spec.C_out + 1, cols))  # + spare row
    bias = np.zeros(spec.C_out) if bias is None else bias
    pairs = {"input": (lambda V: nw._input_transform(x, BT, plan, V),
                       lambda V: f2._input_transform_f2(x, plan, V), (16, spec.C_in + 1, cols)),
             "output": (lambda y: nw._output_transform(M, AT, bias, plan, y),
                        lambda y: f2._output_transform_f2(M, bias, plan, y), spec.y_shape),
             "grad_output": (lambda dM: nw._grad_output_transform(grad_y, AT, plan, dM),
                             lambda dM: f2._grad_output_transform_f2(grad_y, plan, dM),
                             (16, spec.C_out + 1, cols))}
    for name, (matrices, written_out, shape) in pairs.items():
        expected, ours = np.full(shape, 7.0), np.full(shape, 7.0)  # 7: never written
        matrices(expected)
        written_out(ours)
        assert_close(ours, expected, name, tol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mask", [(False, True, True), (True, False, False), (False, False, True)])
def test_winograd_backward_computes_only_the_asked_gradients(backend, mask):
    rng = np.random.default_rng(6)
    x, weight = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    grad_y = rng.standard_normal((2, 4, 7, 6))
    with _module(backend).conv_algorithm("winograd"):
        grads = F.conv2d_backward(grad_y, x, weight, padding=1, backend=backend,
                                  needs_input_grad=mask)
    expected = R.conv2d_backward(grad_y, x, weight, padding=1)
    for name, ours, ref, need in zip(("grad_x", "grad_weight", "grad_bias"), grads, expected,
                                     mask, strict=True):
        if need:
            check_against_torch(ours, ref, name)
        else:
            assert ours is None, f"{name} was not asked for"


# --------------------------------------------------------------------------- fall through


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", ["nan_x", "inf_x", "inf_weight", "inf_grad_y"])
def test_non_finite_operands_fall_through_and_match_torch(backend, bad):
    """One inf would become NaN across its Winograd tile; the call must take the GEMM path."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 6, 7))
    weight = rng.standard_normal((2, 2, 3, 3))
    grad_y = rng.standard_normal((1, 2, 6, 7))
    target = {"nan_x": x, "inf_x": x, "inf_weight": weight, "inf_grad_y": grad_y}[bad]
    target.flat[3] = np.nan if bad == "nan_x" else np.inf
    spec = ConvSpec.from_shapes(x.shape, weight.shape, (1, 1), (1, 1), (1, 1), 1)
    with _module(backend).conv_algorithm("winograd4"):
        assert _chooser(backend)(spec, x, weight, grad_y) == 0
        y = F.conv2d(x, weight, padding=1, backend=backend)
        grads = F.conv2d_backward(grad_y, x, weight, padding=1, backend=backend)
    check_against_torch(y, R.conv2d(x, weight, padding=1), "y")
    for name, ours, ref in zip(("grad_x", "grad_weight", "grad_bias"), grads,
                               R.conv2d_backward(grad_y, x, weight, padding=1), strict=True):
        check_against_torch(ours, ref, name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [
    dict(kernel=(3, 3), stride=(2, 1), dilation=1, groups=1),
    dict(kernel=(5, 5), stride=(1, 1), dilation=1, groups=1),
    dict(kernel=(3, 2), stride=(1, 1), dilation=1, groups=1),
    dict(kernel=(3, 3), stride=(1, 1), dilation=2, groups=1),
    dict(kernel=(3, 3), stride=(1, 1), dilation=1, groups=2),
], ids=["stride2", "5x5", "3x2", "dilation2", "groups2"])
def test_forced_winograd_leaves_other_problems_to_the_other_paths(backend, case):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 9, 8))
    weight = rng.standard_normal((4, 4 // case["groups"], *case["kernel"]))
    kwargs = dict(stride=case["stride"], padding=1, dilation=case["dilation"],
                  groups=case["groups"])
    spec = ConvSpec.from_shapes(x.shape, weight.shape, case["stride"], (1, 1),
                                (case["dilation"],) * 2, case["groups"])
    grad_y = rng.standard_normal(spec.y_shape)
    with _module(backend).conv_algorithm("winograd"):
        assert _chooser(backend)(spec, x, weight) == 0
        y = F.conv2d(x, weight, **kwargs, backend=backend)
        grads = F.conv2d_backward(grad_y, x, weight, **kwargs, backend=backend)
    check_against_torch(y, R.conv2d(x, weight, **kwargs), "y")
    for ours, ref in zip(grads, R.conv2d_backward(grad_y, x, weight, **kwargs), strict=True):
        check_against_torch(ours, ref)


# --------------------------------------------------------------------------- the choice


def _layer(C_in, C_out, N, H, dtype=np.float32):
    x = np.ones((N, C_in, H, H + 1), dtype)
    weight = np.ones((C_out, C_in, 3, 3), dtype)
    return ConvSpec.from_shapes(x.shape, weight.shape, (1, 1), (1, 1), (1, 1), 1), x, weight


@pytest.mark.skipif("numba" not in mc.backends(), reason="numba backend unavailable")
def test_auto_follows_the_shipped_table_on_resnet_layers():
    from kernels.numba_cpu import winograd as nw

    table = nw.AUTO_TABLE
    assert nw.CONV_ALGORITHM.get() == "auto"
    for C, H in ((64, 56), (128, 28), (256, 14), (512, 7)):
        spec, x, weight = _layer(C, C, 4, H)
        T_h, T_w = wn.tile_counts(spec, table["tile"])
        wins = (table["min_channels"] is not None and C >= table["min_channels"]
                and T_h * T_w >= table["min_plane_tiles"])
        assert nw.choose_tile(spec, x, weight) == (table["tile"] if wins else 0)


@pytest.mark.skipif("numba" not in mc.backends(), reason="numba backend unavailable")
@pytest.mark.parametrize("tile", [2, 4])
def test_auto_picks_winograd_exactly_at_the_table_thresholds(monkeypatch, tile):
    from kernels.numba_cpu import winograd as nw

    c, tiles = 16, 72  # both exactly at the threshold below
    monkeypatch.setattr(nw, "AUTO_TABLE", {"tile": tile, "min_channels": c,
                                           "min_plane_tiles": tiles})
    H = 8 * tile  # one sample: ceil(8*tile / tile) * ceil((8*tile + 1) / tile) = 72 tiles
    assert nw.choose_tile(*_layer(c, c, 1, H)) == tile
    assert nw.choose_tile(*_layer(c - 1, c, 1, H)) == 0  # too few input channels
    assert nw.choose_tile(*_layer(c, c - 1, 1, H)) == 0  # too few output channels
    assert nw.choose_tile(*_layer(c, c, 1, 7 * tile)) == 0  # 56 tiles: too few
    assert nw.choose_tile(*_layer(c, c, 4, 7 * tile)) == 0  # per plane: a batch adds none
    assert nw.choose_tile(*_layer(c, c, 1, H, np.float64)) == 0  # float64: never
    with nw.CONV_ALGORITHM.scope("gemm"):
        assert nw.choose_tile(*_layer(c, c, 1, H)) == 0


def test_numpy_auto_follows_its_table():
    spec, x, weight = _layer(64, 64, 2, 28)
    assert wn.NUMPY_CONV_ALGORITHM.get() == "auto"
    assert wn.numpy_tile(spec, x, weight) == wn.NUMPY_AUTO_TILE
    assert wn.numpy_tile(spec, x.astype(np.float64), weight.astype(np.float64)) == 0


@pytest.mark.skipif("numba" not in mc.backends(), reason="numba backend unavailable")
def test_numba_gemm_and_direct_can_be_forced():
    import kernels.numba_cpu as nc

    one_channel = ConvSpec.from_shapes((2, 1, 8, 9), (3, 1, 3, 3), (1, 1), (1, 1), (1, 1), 1)
    three = ConvSpec.from_shapes((2, 3, 8, 9), (3, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1)
    assert nc.conv_plan(one_channel, 8).path == "direct"
    with nc.conv_algorithm("gemm"):
        assert nc.conv_plan(one_channel, 8).path == "gemm"
    with nc.conv_algorithm("direct"):
        assert nc.conv_plan(three, 8).path == "direct"
        rng = np.random.default_rng(4)
        x, weight = rng.standard_normal((2, 3, 8, 9)), rng.standard_normal((3, 3, 3, 3))
        y = F.conv2d(x, weight, padding=1, backend="numba")
    check_against_torch(y, R.conv2d(x, weight, padding=1))


# --------------------------------------------------------------------------- the option


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_algorithm_scope_restores_and_set_changes_the_default(backend):
    module = _module(backend)
    assert module.get_conv_algorithm() == "auto"
    with module.conv_algorithm("winograd4") as name:
        assert name == "winograd4" == module.get_conv_algorithm()
        with module.conv_algorithm("gemm"):
            assert module.get_conv_algorithm() == "gemm"
        assert module.get_conv_algorithm() == "winograd4"
    assert module.get_conv_algorithm() == "auto"
    module.set_conv_algorithm("winograd")
    try:
        assert module.get_conv_algorithm() == "winograd"
    finally:
        module.set_conv_algorithm("auto")


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_algorithm_rejects_unknown_names(backend):
    module = _module(backend)
    with pytest.raises(ValueError, match=r"algorithm: expected one of .*got 'fft'"):
        with module.conv_algorithm("fft"):
            pass
    with pytest.raises(ValueError, match=r"algorithm: expected one of .*got 'winograd6'"):
        module.set_conv_algorithm("winograd6")
    assert module.get_conv_algorithm() == "auto"
