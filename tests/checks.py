"""One comparison helper for every test: ours against PyTorch, with explicit tolerances.

float64 is compared tightly (relative 1e-10); float32 loosely, to 1e-4 of the reference's
scale (its largest finite magnitude), since float32 sums may be accumulated in another order
than torch's. NaNs must sit in the same places.
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


def check_against_torch(ours, expected, name: str = "output") -> None:
    """Assert ``ours`` equals the torch ``expected`` in shape, dtype and value."""
    ours, expected = _host(ours), np.asarray(expected)
    assert ours.shape == expected.shape, f"{name}: shape {ours.shape} != torch {expected.shape}"
    assert ours.dtype == expected.dtype, f"{name}: dtype {ours.dtype} != torch {expected.dtype}"
    tol = TOLERANCE[expected.dtype]
    finite = expected[np.isfinite(expected)]
    scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    if expected.dtype == np.float64:
        np.testing.assert_allclose(ours, expected, rtol=tol, atol=tol * scale, err_msg=name)
    else:
        np.testing.assert_allclose(ours, expected, rtol=0, atol=tol * scale, err_msg=name)


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
