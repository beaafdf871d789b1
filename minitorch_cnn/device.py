"""Where an array lives: the host (NumPy, ``"cpu"``) or a CUDA device (``"cuda"``).

``Module.to("cuda")`` moves parameters, gradients and buffers with these helpers; the
optimizers and losses ask them where an array lives, so they run their update on the
backend of the data (the cuda backend for a device array), as a PyTorch tensor's device
decides where its operations run. ``numba.cuda`` is imported only when a copy to the device
is asked for, so the CPU backends never need it.
"""

from __future__ import annotations

import numpy as np

DEVICES = ("cpu", "cuda")


def is_device_array(a: object) -> bool:
    """True for a CUDA device array (Numba's, or the simulator's stand-in), not a NumPy one."""
    if isinstance(a, np.ndarray):
        return False
    return hasattr(a, "__cuda_array_interface__") or type(a).__name__ == "FakeCUDAArray"


def device_of(a: object) -> str:
    """``"cuda"`` for a device array, ``"cpu"`` for anything else (a NumPy array)."""
    return "cuda" if is_device_array(a) else "cpu"


def to_host(a: object) -> object:
    """A NumPy copy of a device array; anything else comes back as it is."""
    return a.copy_to_host() if is_device_array(a) else a


def to_device_array(a: np.ndarray) -> object:
    """A device copy of the NumPy array ``a`` (C-contiguous), through ``numba.cuda``."""
    from numba import cuda  # only reached once the cuda backend was checked to be usable

    return cuda.to_device(np.ascontiguousarray(a))


def _device_copy(a: object) -> object:
    """A second device array holding ``a``'s values (device to device, no host trip)."""
    from numba import cuda

    out = cuda.device_array(tuple(a.shape), a.dtype)
    out.copy_to_device(a)
    return out


def _move(a: object, device: str) -> object:
    """``a`` on ``device``: copied over when it lives elsewhere, else ``a`` itself."""
    if device_of(a) == device:
        return a
    return to_device_array(a) if device == "cuda" else to_host(a)
