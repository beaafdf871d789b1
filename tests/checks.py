"""One comparison helper for every test: ours against PyTorch, with explicit tolerances.

:func:`assert_close` is the one comparison: ``|ours - expected| <= tol * (|expected| +
scale)``, where ``scale`` is the expected array's largest *finite* magnitude, so an inf in the
reference never widens the tolerance to everything; infs and NaNs must sit in the same places
with the same signs. :func:`check_against_torch` is it with the tolerance of the dtype: float64
tightly (relative 1e-10); float32 loosely, to 1e-4 of the reference's scale (at least 1), since
float32 sums may be accumulated in another order than torch's.
"""

from __future__ import annotations

import os

import numpy as np

import minitorch_cnn as mc

TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}


def _host(a) -> np.ndarray:
    if hasattr(a, "copy_to_host"):
        return a.copy_to_host()
    return np.asarray(a)


def finite_scale(expected) -> float:
    """The largest finite magnitude in ``expected`` (0.0 when it has none)."""
    expected = np.asarray(expected)
    finite = expected[np.isfinite(expected)]
    return float(np.abs(finite).max()) if finite.size else 0.0


def assert_close(ours, expected, name: str = "output", *, tol: float, scale: float | None = None,
                 relative: bool = True) -> None:
    """Assert ``|ours - expected| <= tol * (|expected| + scale)`` element by element.

    ``scale`` defaults to :func:`finite_scale` of ``expected``; pass another for a value that
    is zero in exact arithmetic (rounding noise in both libraries). ``relative=False`` drops
    the ``tol * |expected|`` term. Shapes must be equal; infs and NaNs must match exactly.
    """
    ours, expected = _host(ours), np.asarray(expected)
    assert ours.shape == expected.shape, f"{name}: shape {ours.shape} != expected {expected.shape}"
    scale = finite_scale(expected) if scale is None else scale
    np.testing.assert_allclose(ours, expected, rtol=tol if relative else 0,
                               atol=tol * max(scale, 1e-300), err_msg=name)


def check_against_torch(ours, expected, name: str = "output") -> None:
    """Assert ``ours`` equals the torch ``expected`` in shape, dtype and value."""
    ours, expected = _host(ours), np.asarray(expected)
    assert ours.dtype == expected.dtype, f"{name}: dtype {ours.dtype} != torch {expected.dtype}"
    assert_close(ours, expected, name, tol=TOLERANCE[expected.dtype],
                 scale=max(1.0, finite_scale(expected)),
                 relative=expected.dtype == np.float64)


def _cuda_simulated() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


BACKENDS = mc.backends()
DTYPES = [np.float64, np.float32]


def max_size(backend: str) -> int:
    """The largest spatial size a test draws for ``backend`` (the simulator is slow)."""
    return 4 if backend == "cuda" and _cuda_simulated() else 8


def examples(backend: str) -> int | None:
    """How many hypothesis examples a backend gets: fewer in the CUDA simulator."""
    from hypothesis import settings

    if backend == "cuda" and _cuda_simulated():
        return max(3, settings().max_examples // 5)
    return None
