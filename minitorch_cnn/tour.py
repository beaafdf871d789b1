"""A two-minute tour: worked examples to check by hand, then every backend against PyTorch.

``python -m minitorch_cnn.tour`` prints

1. numbers to check by hand, computed by the naive backend: corr2d of 0..8 with kernel 0..3
   ("Dive into Deep Learning", section 7.2); the 5x5 example of the "PyTorch Deep Learning
   Practice" lectures, lecture 10 (CNN basics), with padding 1 and with stride 2, and its 2x2
   max pooling;
2. for every available backend, a small conv + pool forward and backward (float64 and
   float32) and the largest difference to PyTorch (needs torch; skipped without it).
"""

from __future__ import annotations

import time

import numpy as np

from . import functional as F
from .backend import backends

X5 = np.array(
    [[3, 4, 6, 5, 7], [2, 4, 6, 8, 2], [1, 6, 7, 8, 4], [9, 7, 4, 6, 2], [3, 7, 5, 4, 1]],
    dtype=np.float64,
)  # the 5x5 input of the padding/stride example, "PyTorch Deep Learning Practice", lecture 10
K9 = np.arange(1.0, 10.0).reshape(3, 3)  # kernel 1..9


def worked_examples() -> None:
    """Print the worked examples (d2l's corr2d; the lectures' 5x5 input), naive backend."""
    X = np.arange(9.0).reshape(3, 3)
    K = np.arange(4.0).reshape(2, 2)
    print("corr2d(0..8 as 3x3, 0..3 as 2x2)  [d2l: [[19, 25], [37, 43]]]")
    print(F.corr2d(X, K, backend="naive"))
    x, w = X5[None, None], K9[None, None]  # (1, 1, 5, 5), (1, 1, 3, 3)
    print("\nthe lectures' 5x5 input, kernel 1..9, padding=1  [first row 91, 168, 224, 215, 127]")
    print(F.conv2d(x, w, padding=1, backend="naive")[0, 0])
    print("\nsame, stride=2, padding=0  [[[211, 262], [251, 169]]]")
    print(F.conv2d(x, w, stride=2, backend="naive")[0, 0])
    P = np.array([[3, 4, 6, 5], [2, 4, 6, 8], [1, 6, 7, 8], [9, 7, 4, 6]], dtype=np.float64)
    print("\n2x2 max pooling of the 4x4 input  [[4, 8], [9, 8]]")
    print(F.max_pool2d(P[None, None], 2, backend="naive")[0, 0])


def against_torch() -> None:
    """Print, per backend and dtype, the largest difference to PyTorch on a small problem."""
    try:
        import reference as R
    except ImportError:
        print("\n(torch is not installed: skipping the comparison with PyTorch)")
        return
    rng = np.random.default_rng(0)
    print("\nconv(4->6, 3x2 kernel, stride (2,1), padding 1, groups 2) + max/avg pool 2x2,")
    print("forward and backward, largest |ours - torch| over all outputs and gradients:")
    if "numba" in backends():
        print("(numba compiles each kernel on its first call, about a minute on 2 cores the")
        print(" first time; the machine code is cached, so the next run takes a second)")
    print(f"{'backend':<8} {'float64':>10} {'float32':>10} {'seconds':>8}")
    for backend in backends():
        row = []
        start = time.perf_counter()
        for dtype in (np.float64, np.float32):
            x = rng.standard_normal((2, 4, 9, 8)).astype(dtype)
            w = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
            b = rng.standard_normal(6).astype(dtype)
            kw = dict(stride=(2, 1), padding=1, groups=2)
            y = F.conv2d(x, w, b, **kw, backend=backend)
            gy = rng.standard_normal(np.shape(y)).astype(dtype)
            ours = [y, *F.conv2d_backward(gy, x, w, **kw, backend=backend)]
            ref = [R.conv2d(x, w, b, **kw), *R.conv2d_backward(gy, x, w, **kw)]
            gp = rng.standard_normal((2, 6, 2, 4)).astype(dtype)
            p = np.asarray(y)
            ours += [F.max_pool2d(p, 2, backend=backend),
                     F.max_pool2d_backward(gp, p, 2, backend=backend),
                     F.avg_pool2d(p, 2, backend=backend),
                     F.avg_pool2d_backward(gp, p, 2, backend=backend)]
            ref += [R.max_pool2d(p, 2), R.max_pool2d_backward(gp, p, 2),
                    R.avg_pool2d(p, 2), R.avg_pool2d_backward(gp, p, 2)]
            diffs = [np.abs(np.asarray(o) - r).max() for o, r in zip(ours, ref, strict=True)]
            row.append(max(diffs))
        seconds = time.perf_counter() - start
        print(f"{backend:<8} {row[0]:>10.1e} {row[1]:>10.1e} {seconds:>8.2f}")
    print("(the first call of a JIT backend includes its compile time)")


def main() -> None:
    """Run the tour."""
    worked_examples()
    against_torch()


if __name__ == "__main__":
    main()
