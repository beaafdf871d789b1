"""Exercise 1.4 (docs/01-corr2d.md), worked solution: corr2d, the 2-D cross-correlation.

Check it with

    minitorch-cnn check docs/exercises/solutions/corr2d.py:corr2d --op corr2d
"""

import numpy as np


def corr2d(X, K):
    """Cross-correlate ``X : (H, W)`` with ``K : (kh, kw)``; returns ``(H - kh + 1, W - kw + 1)``.

    ``Y[i, j] = sum(X[i:i+kh, j:j+kw] * K)``: no kernel flip, as in d2l and PyTorch.
    """
    kh, kw = K.shape
    Y = np.zeros((X.shape[0] - kh + 1, X.shape[1] - kw + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + kh, j:j + kw] * K).sum()
    return Y
