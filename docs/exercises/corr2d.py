"""Exercise 1.4 (docs/01-corr2d.md), starter: corr2d, the 2-D cross-correlation.

Fill in the body of ``corr2d``, then check it with

    minitorch-cnn check docs/exercises/corr2d.py:corr2d --op corr2d
"""

import numpy as np  # noqa: F401 (you will need it)


def corr2d(X, K):
    """Cross-correlate ``X : (H, W)`` with ``K : (kh, kw)``; returns ``(H - kh + 1, W - kw + 1)``.

    ``Y[i, j] = sum(X[i:i+kh, j:j+kw] * K)``: no kernel flip, as in d2l and PyTorch.
    """
    raise NotImplementedError("corr2d: your code here")
