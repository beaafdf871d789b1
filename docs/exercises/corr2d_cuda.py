r"""Exercise 7.4 (docs/07-gpu-ladder.md), starter: corr2d as a Numba CUDA kernel, one thread
per output, in rung 2's thread order. Without a GPU, run it in the CUDA simulator.

Write a kernel ``@cuda.jit def _corr2d_kernel(X, K, Y)`` and fill in ``corr2d``, then check it
with

    NUMBA_ENABLE_CUDASIM=1 minitorch-cnn check docs/exercises/corr2d_cuda.py:corr2d \
        --op corr2d
"""

import numpy as np  # noqa: F401 (you will need it)
from numba import cuda  # noqa: F401 (you will need it)


def corr2d(X, K):
    """Cross-correlate ``X : (H, W)`` with ``K : (kh, kw)`` on the GPU (or the simulator).

    Returns ``Y : (H - kh + 1, W - kw + 1)``, NumPy. Thread ``g = blockIdx.x * blockDim.x +
    threadIdx.x`` computes ``Y[g // W_out, g % W_out]`` (``w`` fastest: a warp's 32 threads
    write neighbouring outputs, as rung 2); launch ``ceil(Y.size / 32)`` blocks of 32.
    """
    raise NotImplementedError("corr2d: your code here")
