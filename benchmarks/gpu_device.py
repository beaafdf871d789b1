"""Where the GPU benchmarks run: on a GPU, or as a rehearsal in the Numba CUDA simulator.

Both GPU benchmarks (``benchmarks.gpu_ops``, ``benchmarks.gpu_train_step``) take their
arrays, their timers and their synchronisation from one of two places:

- :class:`Gpu`: torch CUDA tensors, handed to our kernels as they are (no copy: Numba reads
  them through ``__cuda_array_interface__``); each call is timed between two CUDA events.
- :class:`Rehearsal` (``--rehearse``): the same script in the Numba CUDA simulator, on tiny
  shapes, with torch on the CPU standing in for cuDNN and wall-clock timing. Its timings
  mean nothing (the simulator runs each GPU thread as a Python thread). It exists so that
  every line of a benchmark (the checks against torch, the table, the JSON, the PNG) has run,
  in CI too, before a session with a GPU spends its device time on it. Its JSON says
  ``"rehearsal": true``.

``open_device(rehearse)`` returns the place, or the reason it cannot be had (then the
benchmark prints it and exits with :data:`NO_GPU_EXIT`).
"""

from __future__ import annotations

import os
import platform
import sys
import time

NO_GPU_EXIT = 2
SIMULATOR_NAME = "Numba CUDA simulator (rehearsal: timings are not GPU timings)"


def gpu_unavailable_reason() -> str | None:
    """Why the benchmarks cannot run on a GPU here (none, the simulator, no torch CUDA)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return ("NUMBA_ENABLE_CUDASIM is set: the simulator runs kernels as Python threads "
                "and cannot be benchmarked; unset it on a machine with a GPU, or pass "
                "--rehearse for a dry run")
    try:
        import torch
    except ImportError:
        return "torch is not installed (pip install torch with CUDA support)"
    if not torch.cuda.is_available():
        return (f"torch {torch.__version__} sees no CUDA GPU (torch.cuda.is_available() is "
                "False); --rehearse runs the script in the simulator instead")
    from numba import cuda

    if not cuda.is_available():
        return "numba.cuda.is_available() is False: no usable CUDA driver for Numba"
    return None


class Gpu:
    """A real GPU: torch tensors on ``cuda``, CUDA-event timing."""

    rehearsal = False
    torch_device = "cuda"

    def __init__(self) -> None:
        import torch

        self.name = torch.cuda.get_device_name()

    def randn(self, shape, gen):
        """A standard-normal float32 torch tensor of ``shape`` on this place."""
        import torch

        return torch.randn(shape, device=self.torch_device, generator=gen)

    def generator(self, seed: int = 0):
        import torch

        return torch.Generator(device=self.torch_device).manual_seed(seed)

    def ours(self, t):
        """What our kernels are given for the torch tensor ``t``: ``t`` itself (no copy)."""
        return t

    def to_torch(self, a):
        """One of our results (a Numba device array) as a torch tensor on this place."""
        import torch

        return torch.as_tensor(a, device=self.torch_device)

    def sync(self) -> None:
        import torch
        from numba import cuda

        cuda.synchronize()
        torch.cuda.synchronize()

    def time_torch(self, fn, repeats: int) -> list[float]:
        """Milliseconds of each of ``repeats`` calls of ``fn``, between two torch CUDA events."""
        import torch

        times = []
        for _ in range(repeats):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        return times

    def time_ours(self, fn, repeats: int) -> list[float]:
        """Milliseconds of each of ``repeats`` calls of ``fn``, between two Numba CUDA events."""
        from numba import cuda

        times = []
        for _ in range(repeats):
            start, end = cuda.event(), cuda.event()
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(cuda.event_elapsed_time(start, end))
        return times

    def versions(self) -> dict:
        """Python, NumPy, Numba, numba-cuda, torch, CUDA, cuDNN and driver versions."""
        import numba
        import numpy
        import torch

        versions = {"python": platform.python_version(), "numpy": numpy.__version__,
                    "numba": numba.__version__, "torch": torch.__version__,
                    "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
        try:
            from importlib.metadata import version

            versions["numba_cuda"] = version("numba-cuda")
        except Exception:  # noqa: BLE001 - a missing distribution name is not fatal
            versions["numba_cuda"] = None
        try:
            from numba import cuda

            versions["cuda_driver"] = cuda.cudadrv.driver.driver.get_version()
        except Exception:  # noqa: BLE001 - the simulator has no driver
            versions["cuda_driver"] = None
        return versions


class Rehearsal(Gpu):
    """The Numba CUDA simulator: torch on the CPU as the reference, wall-clock timing."""

    rehearsal = True
    torch_device = "cpu"

    def __init__(self) -> None:
        self.name = SIMULATOR_NAME

    def ours(self, t):
        """A copy of the torch CPU tensor ``t`` in the simulator's device memory."""
        from numba import cuda

        return cuda.to_device(t.numpy())

    def to_torch(self, a):
        import torch

        return torch.from_numpy(a.copy_to_host())

    def sync(self) -> None:
        """The simulator and torch on the CPU are synchronous: nothing to wait for."""

    def time_torch(self, fn, repeats: int) -> list[float]:
        """Wall-clock milliseconds of each call (the simulator's CUDA events time nothing)."""
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return times

    time_ours = time_torch


def fill_defaults(args, device: Gpu, **defaults) -> None:
    """Set each of ``args``'s options left at ``None`` to its default for ``device``.

    ``defaults`` maps an option to its ``(gpu, rehearsal)`` defaults, e.g. ``repeats=(20, 1)``.
    """
    for name, (gpu, rehearsal) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, rehearsal if device.rehearsal else gpu)


def open_device(rehearse: bool) -> Gpu | str:
    """The GPU, the simulator (``rehearse``), or why the one asked for cannot be had.

    ``rehearse`` turns the simulator on when Numba has not been imported yet (Numba reads
    ``NUMBA_ENABLE_CUDASIM`` once, at import).
    """
    if not rehearse:
        reason = gpu_unavailable_reason()
        return reason if reason is not None else Gpu()
    if "numba" not in sys.modules:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    from numba import config

    if not config.ENABLE_CUDASIM:
        return ("--rehearse runs in the Numba CUDA simulator, but Numba was imported "
                "without it: set NUMBA_ENABLE_CUDASIM=1 before starting Python")
    try:
        import torch  # noqa: F401 - the reference side of every check
    except ImportError:
        return "torch is not installed: the rehearsal checks our kernels against torch"
    return Rehearsal()
