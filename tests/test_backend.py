"""The backend registry: listing, choosing, scoping, and clear errors for bad names."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import minitorch_cnn as mc
from minitorch_cnn import functional as F


def test_naive_and_numpy_backends_are_always_available():
    assert {"naive", "numpy"} <= set(mc.backends())


def test_numba_backend_is_available_when_numba_is_installed():
    pytest.importorskip("numba")
    assert "numba" in mc.backends(), mc.backends(verbose=True)["numba"]


def test_backends_verbose_gives_a_status_for_every_known_name():
    status = mc.backends(verbose=True)
    assert set(status) == {"naive", "numpy", "numba", "cuda"}
    assert all(isinstance(s, str) and s for s in status.values())


def test_set_backend_changes_the_default_and_unknown_names_list_the_available_ones():
    before = mc.get_backend()
    try:
        mc.set_backend("naive")
        assert mc.get_backend() == "naive"
        with pytest.raises(ValueError, match=r"(?s)backend.*'tpu'.*naive"):
            mc.set_backend("tpu")
        with pytest.raises(TypeError, match="backend"):
            mc.set_backend(3)
        assert mc.get_backend() == "naive"
    finally:
        mc.set_backend(before)


def test_use_backend_is_scoped_to_the_with_block_and_to_the_thread():
    before = mc.get_backend()
    seen = {}
    with mc.use_backend("naive"):
        assert mc.get_backend() == "naive"
        thread = threading.Thread(target=lambda: seen.setdefault("other", mc.get_backend()))
        thread.start()
        thread.join()
    assert seen["other"] == before
    assert mc.get_backend() == before


def test_ops_called_with_an_unknown_backend_raise_value_error():
    with pytest.raises(ValueError, match="backend"):
        F.max_pool2d(np.zeros((1, 1, 2, 2)), 2, backend="nope")


def test_environment_variable_sets_the_default_backend_at_import():
    code = "import minitorch_cnn as mc; print(mc.get_backend())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"MINITORCH_CNN_BACKEND": "naive", "PATH": ""},
    )
    assert out.stdout.strip() == "naive"


def test_import_does_not_import_torch_numba_or_matplotlib():
    code = (
        "import sys, minitorch_cnn; "
        "print(sorted(m for m in ('torch', 'numba', 'matplotlib', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_non_contiguous_fortran_and_readonly_inputs_give_the_contiguous_answer():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((4, 3, 3, 2))
    expected = F.conv2d(x, w, padding=1)
    flipped = np.ascontiguousarray(x[:, :, ::-1, :])
    views = [np.asfortranarray(x), flipped[:, :, ::-1, :], x.copy()]  # x's values, other layouts
    views[2].setflags(write=False)
    assert not views[0].flags.c_contiguous and views[1].strides[2] < 0  # the layouts under test
    for v in views:
        np.testing.assert_allclose(F.conv2d(v, w, padding=1), expected, rtol=1e-12)


def test_batch_of_zero_gives_empty_outputs_of_the_right_shape():
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    assert F.conv2d(x, w).shape == (0, 4, 6, 6)
    gx, gw, gb = F.conv2d_backward(np.zeros((0, 4, 6, 6), np.float32), x, w)
    assert gx.shape == x.shape and gw.shape == w.shape and not gw.any() and gb.shape == (4,)
    assert F.max_pool2d(x, 2).shape == (0, 3, 4, 4)
    assert F.adaptive_avg_pool2d(x, 1).dtype == np.float32
