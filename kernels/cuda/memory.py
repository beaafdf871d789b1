"""Which allocator gives the cuda backend its device memory.

Numba allocates every device array with ``cudaMalloc`` and frees it with ``cudaFree``: a
training step makes dozens of intermediate arrays, so it pays for dozens of allocations. A
pooling allocator keeps freed blocks for the next request. Numba's External Memory
Management interface takes one without any change here: install RAPIDS Memory Manager
(``pip install rmm-cu13``, a Linux GPU machine) and start Python with
``NUMBA_CUDA_MEMORY_MANAGER=rmm.allocators.numba`` (Numba reads it before the first CUDA
context exists). Without it Numba's default runs. The GPU benchmarks write
:func:`allocator_name` into their JSON, so a timing says which allocator it had.
"""

from __future__ import annotations

import numba

from ._arrays import SIMULATOR

DEFAULT = "numba default (cudaMalloc per array)"


def allocator_name() -> str:
    """The allocator the cuda backend runs with: Numba's default, the EMM plugin module named
    by ``NUMBA_CUDA_MEMORY_MANAGER`` (e.g. ``rmm.allocators.numba``), or ``"simulator"``.
    """
    if SIMULATOR:
        return "simulator (host memory; no device allocator)"
    name = numba.config.CUDA_MEMORY_MANAGER
    return DEFAULT if name in ("default", "", None) else name
