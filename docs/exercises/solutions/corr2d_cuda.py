r"""Exercise 7.4 (docs/07-gpu-ladder.md), worked solution: corr2d as a Numba CUDA kernel, one
thread per output, in rung 2's thread order. Without a GPU, run it in the CUDA simulator.

Check it with

    NUMBA_ENABLE_CUDASIM=1 minitorch-cnn check docs/exercises/solutions/corr2d_cuda.py:corr2d \
        --op corr2d
"""

import numpy as np
from numba import cuda

THREADS = 32  # one warp per block


@cuda.jit
def _corr2d_kernel(X, K, Y):
    """Thread ``g`` computes ``Y[g // W_out, g % W_out]``: consecutive threads, consecutive
    outputs of a row (rung 2's order). Nothing in shared memory: every read is global.
    """
    g = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H_out, W_out = Y.shape
    if g >= H_out * W_out:  # the last block's spare threads
        return
    h, w = g // W_out, g % W_out
    acc = 0.0
    for i in range(K.shape[0]):
        for j in range(K.shape[1]):
            acc += X[h + i, w + j] * K[i, j]
    Y[h, w] = acc


def corr2d(X, K):
    """Cross-correlate ``X : (H, W)`` with ``K : (kh, kw)`` on the GPU (or the simulator).

    Returns ``Y : (H - kh + 1, W - kw + 1)``, NumPy. Thread ``g = blockIdx.x * blockDim.x +
    threadIdx.x`` computes ``Y[g // W_out, g % W_out]`` (``w`` fastest: a warp's 32 threads
    write neighbouring outputs, as rung 2); launch ``ceil(Y.size / 32)`` blocks of 32.
    """
    Y = np.zeros((X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1),
                 np.result_type(X, K))
    if Y.size:
        d_Y = cuda.to_device(Y)
        blocks = -(-Y.size // THREADS)
        _corr2d_kernel[blocks, THREADS](cuda.to_device(np.ascontiguousarray(X)),
                                        cuda.to_device(np.ascontiguousarray(K)), d_Y)
        Y = d_Y.copy_to_host()
    return Y
