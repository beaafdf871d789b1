"""Benchmarks: scripts that time our kernels against PyTorch and write tables, JSON and plots.

Importing this package (``python -m benchmarks.ops`` does, before NumPy loads) sets
``OPENBLAS_THREAD_TIMEOUT=4`` unless it is set already. After each call OpenBLAS keeps its
worker threads spinning for 2**28 cycles by default (about 0.1 s), and on a 2-core machine
whichever contender runs next loses the cores to them: next to the ``numpy`` backend (BLAS
on 2 threads), torch's LeNet conv2 backward took a median of 49 ms against 1.2 ms. 2**4
cycles lets the threads sleep at once. OpenBLAS reads the variable when it loads, so it has
no effect in a process that imported NumPy first; the JSON records it.
"""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
