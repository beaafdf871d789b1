"""Keep freed memory in the process, so a training step reuses its buffers without page faults.

Every step of a training loop allocates the same arrays again: activations, gradients, the
kernels' layout buffers (the numba backend's ``np.empty`` calls, NumPy's temporaries). When
a step ends they are freed, and glibc's ``malloc`` gives the memory at the top of its heap
back to the operating system once more than a threshold is free there (by default twice the
largest block it has handed out, a few MB). The next step asks again, and the kernel must
map and zero every page on its first touch: a minor page fault per 4 KiB page, of the order
of a microsecond each. For LeNet-5 at batch 64 that is most of a millisecond a step.

:func:`keep_freed_memory` raises glibc's thresholds (``mallopt``, the calls the
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` and ``MALLOC_MMAP_THRESHOLD_`` environment
variables make at start-up): freed blocks stay in the process, and the next step's
allocations of the same sizes reuse them, already mapped. It is the allocator-level form of
"reuse the buffers of a layer whose shapes repeat", for every buffer at once, without
threading ``out=`` arrays through every kernel. PyTorch's allocators cache freed blocks in
the same spirit (its CUDA one explicitly).

It changes the whole process, so the library never calls it: the processes this project
owns do (``minitorch-cnn train`` and ``demo``, and the benchmarks, for both contenders
alike). Elsewhere (macOS, musl) it does nothing and returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import numbers
import platform

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_MAX = 32 * 2**20
"""glibc's ceiling for ``M_MMAP_THRESHOLD`` on 64-bit (``HEAP_MAX_SIZE / 2``): blocks above
it are always mapped afresh and unmapped when freed."""


def _libc():
    """The glibc of this process, or None (another C library, or another OS)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def keep_freed_memory(limit_bytes: int = 2**30) -> bool:
    """Let this process keep up to ``limit_bytes`` of freed memory for reuse (glibc only).

    Sets ``M_TRIM_THRESHOLD`` to ``limit_bytes`` (free memory at the top of a heap is given
    back to the OS only beyond it), ``M_TOP_PAD`` to 64 MiB (a heap grows by at least that
    much, so fewer growths), and ``M_MMAP_THRESHOLD`` to glibc's ceiling of 32 MiB (blocks up
    to that size come from the heaps, where freed ones are reused, instead of fresh mappings).
    The memory a process holds then stays near its peak until it exits.

    Returns True if glibc accepted the settings, False where there is no glibc (nothing is
    changed then).
    """
    if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, numbers.Integral):
        raise TypeError(f"limit_bytes: expected an int, got {type(limit_bytes).__name__}")
    if not 0 < limit_bytes < 2**31:
        raise ValueError(f"limit_bytes: expected 0 < limit_bytes < 2**31 (mallopt takes a C "
                         f"int), got {limit_bytes}")
    libc = _libc()
    if libc is None:
        return False
    settings = ((M_TRIM_THRESHOLD, int(limit_bytes)), (M_TOP_PAD, 64 * 2**20),
                (M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
