"""The backend registry: which kernel module runs an op.

``mc.backends()`` lists the usable ones of ``naive``, ``numpy``, ``numba``, ``cuda``;
``set_backend`` changes the process-wide default; ``use_backend`` changes it for a ``with``
block, scoped by a :class:`contextvars.ContextVar` so threads and asyncio tasks do not see
each other's choice. ``MINITORCH_CNN_BACKEND`` sets the default at import.

Backend modules are imported lazily, the first time they are asked for, so ``import
minitorch_cnn`` stays fast and works without numba or a GPU. A backend that fails to import
is not listed; ``backends(verbose=True)`` says why.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
from collections.abc import Iterator
from types import ModuleType

from kernels import KERNEL_FUNCTIONS

BACKEND_MODULES = {
    "naive": "kernels.naive",
    "numpy": "kernels.vectorized",
    "numba": "kernels.numba_cpu",
    "cuda": "kernels.cuda",
}
DEFAULT_BACKEND = "numpy"

_lock = threading.RLock()  # re-entrant: a backend's import may ask the registry
_loaded: dict[str, ModuleType | str] = {}  # name -> module, or the reason it is unusable
_default = DEFAULT_BACKEND
_scoped: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "minitorch_cnn_backend", default=None
)


def _load(name: str) -> ModuleType | str:
    """Import backend ``name`` once; return its module or why it cannot run."""
    with _lock:
        if name not in _loaded:
            try:
                module = importlib.import_module(BACKEND_MODULES[name])
            except Exception as exc:  # noqa: BLE001 - any import failure means "not usable"
                _loaded[name] = f"import failed: {type(exc).__name__}: {exc}"
            else:
                reason_fn = getattr(module, "unavailable_reason", None)
                try:
                    reason = reason_fn() if reason_fn is not None else None
                except Exception as exc:  # noqa: BLE001 - a failing probe means "not usable"
                    reason = f"unavailable_reason() failed: {type(exc).__name__}: {exc}"
                missing = [f for f in KERNEL_FUNCTIONS if not hasattr(module, f)]
                if reason is None and missing:
                    reason = f"module {module.__name__} lacks {', '.join(missing)}"
                _loaded[name] = module if reason is None else reason
        return _loaded[name]


def backends(verbose: bool = False) -> list[str] | dict[str, str]:
    """The usable backends, in reading order.

    With ``verbose=True``, a dict of every known backend name to ``"available"`` or the
    reason it is not.
    """
    status = {}
    for name in BACKEND_MODULES:
        loaded = _load(name)
        status[name] = "available" if isinstance(loaded, ModuleType) else loaded
    if verbose:
        return status
    return [name for name, s in status.items() if s == "available"]


def _check_name(name: object, argument: str = "backend") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{argument}: expected a backend name (str), got {type(name).__name__}")
    if name not in BACKEND_MODULES:
        raise ValueError(
            f"{argument}: unknown backend {name!r}; expected one of {backends()}"
        )
    loaded = _load(name)
    if not isinstance(loaded, ModuleType):
        raise ValueError(
            f"{argument}: backend {name!r} is not available here ({loaded}); "
            f"available: {backends()}"
        )
    return name


def get_backend() -> str:
    """The name of the backend ops use when called with ``backend=None``."""
    return _scoped.get() or _default


def set_backend(name: str) -> None:
    """Make ``name`` the process-wide default backend."""
    global _default
    _default = _check_name(name)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Use backend ``name`` inside a ``with`` block (this thread / task only)."""
    token = _scoped.set(_check_name(name))
    try:
        yield name
    finally:
        _scoped.reset(token)


def kernel_module(backend: str | None) -> ModuleType:
    """The kernel module for ``backend`` (``None`` = the current default)."""
    name = get_backend() if backend is None else _check_name(backend)
    loaded = _load(name)
    if not isinstance(loaded, ModuleType):  # the default was set from the environment
        raise ValueError(f"backend {name!r} is not available here ({loaded})")
    return loaded


def _default_from_env() -> str:
    name = os.environ.get("MINITORCH_CNN_BACKEND")
    if not name:
        return DEFAULT_BACKEND
    if name not in BACKEND_MODULES:
        raise ValueError(
            f"MINITORCH_CNN_BACKEND: unknown backend {name!r}; "
            f"expected one of {list(BACKEND_MODULES)}"
        )
    return name


_default = _default_from_env()
