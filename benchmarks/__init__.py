"""Benchmarks: scripts that time our kernels against PyTorch and write tables, JSON and plots.

Importing this package (``python -m benchmarks.ops`` does, before NumPy loads) sets
``OPENBLAS_THREAD_TIMEOUT=4`` unless it is set already. After each call OpenBLAS keeps its
worker threads spinning for 2**28 cycles by default (about 0.1 s), and on a 2-core machine
whichever contender runs next loses the cores to them: next to the ``numpy`` backend (BLAS
on 2 threads), torch's LeNet conv2 backward took a median of 49 ms against 1.2 ms. 2**4
cycles lets the threads sleep at once. OpenBLAS reads the variable when it loads, so it has
no effect in a process that imported NumPy first; the JSON records it.

It also calls :func:`minitorch_cnn.memory.keep_freed_memory` (unless
``MINITORCH_CNN_KEEP_FREED_MEMORY=0``), for every contender of the process alike: freed
buffers stay in the process, so a repeated call reuses them instead of taking a page fault
per 4 KiB page of every fresh output; ``machine_info`` records ``keep_freed_memory``.
"""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from minitorch_cnn.memory import keep_freed_memory  # noqa: E402 - after the variable above

KEEP_FREED_MEMORY = os.environ.get("MINITORCH_CNN_KEEP_FREED_MEMORY", "1") != "0" and (
    keep_freed_memory())
"""Whether glibc keeps freed memory in this process (False: no glibc here)."""
