"""Moving arrays between the host and the device, and sizing launch grids.

The ``cuda`` backend takes two kinds of arrays:

- NumPy arrays: copied to the device, the kernel runs, the result is copied back, so NumPy in
  gives NumPy out;
- arrays with ``__cuda_array_interface__`` (Numba device arrays, torch CUDA tensors, CuPy):
  wrapped without a copy; the result stays on the device as a Numba device array.

Under the Numba CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) device arrays are the simulator's
``FakeCUDAArray``, which has no ``__cuda_array_interface__``; they count as device arrays too.

Kernels are compiled once per dtype: a factory builds the kernel for ``numba.float32`` or
``numba.float64`` (shared and local arrays need their dtype when the kernel is compiled) and
:func:`kernel_cache` keeps the result.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import cuda

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray as _SimArray
else:  # pragma: no cover - only without the simulator
    _SimArray = ()

NUMBA_DTYPES = {np.dtype(np.float32): numba.float32, np.dtype(np.float64): numba.float64}

kernel_cache = functools.lru_cache(maxsize=None)
"""Memoise a kernel factory: ``factory(numba_dtype, ...)`` builds one kernel per argument."""


def is_device_array(a: object) -> bool:
    """True for a CUDA array (``__cuda_array_interface__``, or the simulator's fake one)."""
    if isinstance(a, np.ndarray):
        return False
    return hasattr(a, "__cuda_array_interface__") or isinstance(a, _SimArray)


def to_device(a):
    """A device array for ``a``: NumPy is copied over, a CUDA array is wrapped (no copy)."""
    if isinstance(a, np.ndarray):
        return cuda.to_device(np.ascontiguousarray(a))
    if isinstance(a, _SimArray) or cuda.devicearray.is_cuda_ndarray(a):
        return a
    return cuda.as_cuda_array(a)  # torch / CuPy: a Numba view of the same memory


def finish(d_out, host: bool):
    """Return a result the way the inputs came: NumPy when ``host``, else the device array."""
    return d_out.copy_to_host() if host else d_out


def numba_dtype(d_array):
    """The Numba scalar type (``numba.float32`` / ``numba.float64``) of a device array."""
    return NUMBA_DTYPES[np.dtype(d_array.dtype)]


def empty(shape, dtype):
    """An uninitialised device array (every kernel writes each element it owns)."""
    return cuda.device_array(tuple(int(s) for s in shape), dtype=np.dtype(dtype))


def blocks(n: int, per_block: int) -> int:
    """How many blocks of ``per_block`` threads cover ``n`` items (at least one)."""
    return max(1, -(-int(n) // per_block))


def sm_count() -> int:
    """Streaming multiprocessors of the current GPU (132 on an H100 SXM; the simulator has 1)."""
    try:
        return int(getattr(cuda.get_current_device(), "MULTIPROCESSOR_COUNT", 1))
    except Exception:  # noqa: BLE001 - an unreadable attribute just means "assume one"
        return 1


@cuda.jit(device=True, inline="always")
def unravel4(index, d1, d2, d3):
    """``(i0, i1, i2, i3)``: where flat ``index`` lies in a row-major ``(d0, d1, d2, d3)`` array.

    The first lines of every one-thread-per-element kernel: thread ``index`` computes element
    ``(i0, i1, i2, i3)`` of its output (``(n, c, h, w)``, or ``(co, c, i, j)`` of a weight),
    so the last axis varies fastest across neighbouring threads and their loads and stores
    fall on neighbouring addresses (coalesced).
    """
    i3 = index % d3
    rest = index // d3
    i2 = rest % d2
    rest = rest // d2
    return rest // d1, rest % d1, i2, i3


@cuda.jit(device=True, inline="always")
def block_tree_sum(partial, t):
    """Add up a block's partial sums: afterwards ``partial[0]`` holds their total.

    ``partial`` is a shared array with one slot per thread (a power-of-two length), ``t`` is
    ``threadIdx.x``; every thread of the block calls this after writing ``partial[t]``. The
    slots are halved in ``log2(len)`` steps (step: thread ``t < half`` adds
    ``partial[t + half]``), so the order depends on the block size alone: the same inputs
    give the same bits every run, with no atomics.
    """
    cuda.syncthreads()
    half = partial.shape[0] // 2
    while half > 0:
        if t < half:
            partial[t] += partial[t + half]
        cuda.syncthreads()
        half //= 2


@kernel_cache
def pad_kernel(DT):
    """Build the bottom/right zero-padding kernel for dtype ``DT``."""

    @cuda.jit
    def pad_bottom_right(x, out):
        """out[n, c, h, w] = x[n, c, h, w] inside x, 0 in the extra bottom rows/right columns.

        Thread ``blockIdx.x * blockDim.x + threadIdx.x`` owns one element of ``out`` in C
        order (``threadIdx.x`` walks ``w``). No shared memory.
        """
        N, C, H, W = x.shape
        Hp, Wp = out.shape[2], out.shape[3]
        index = cuda.grid(1)
        if index >= N * C * Hp * Wp:
            return
        n, c, h, w = unravel4(index, C, Hp, Wp)
        value = DT(0)
        if h < H and w < W:
            value = x[n, c, h, w]
        out[n, c, h, w] = value

    return pad_bottom_right
