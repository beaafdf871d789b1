"""Shared timing, table, JSON and machine-info helpers for the benchmark scripts.

The whole API, small on purpose (the CPU and GPU benchmark scripts both use it):

- :func:`time_interleaved` -- time several callables round-robin, after warm-up, and return
  a :class:`Timing` (median, min, all samples in ms) per name. Interleaving means a burst of
  load from another process hits every contender, not just one.
- :func:`sgemm_peak_gflops` -- this machine's measured float32 GEMM rate (the "peak" the
  tables compare against), with NumPy and, if importable, torch.
- :func:`machine_info` -- CPU model, core count, platform, package versions, git SHA.
- :func:`format_table` -- a fixed-width text table from a list of dicts.
- :func:`geomean` -- geometric mean of positive numbers.
- :func:`write_json` -- write a JSON file atomically (creating its folder), numpy scalars
  allowed.

Nothing here imports torch or numba at module import; :func:`machine_info` and
:func:`sgemm_peak_gflops` import them lazily if present.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np


class Timing(NamedTuple):
    """Wall-clock samples of one callable, in milliseconds."""

    median_ms: float
    min_ms: float
    samples_ms: list[float]


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int = 5,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> dict[str, Timing]:
    """Time each callable ``repeats`` times, round-robin, after ``warmup`` untimed calls each.

    Round ``r`` calls every function once, starting from a different one each round, so no
    contender always runs right after another (caches, turbo, a neighbour's burst). ``sync``
    is called before and after each timed call (e.g. ``torch.cuda.synchronize``).
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            if sync is not None:
                sync()
            t0 = time.perf_counter()
            fns[name]()
            if sync is not None:
                sync()
            samples[name].append((time.perf_counter() - t0) * 1e3)
    return {
        name: Timing(float(np.median(s)), float(np.min(s)), [round(v, 4) for v in s])
        for name, s in samples.items()
    }


def sgemm_peak_gflops(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best float32 ``(n, n) @ (n, n)`` rate in GFLOP/s with NumPy (and torch, if present).

    Uses each library's current thread setting; call it after setting the thread counts the
    benchmark uses. Returns ``{"numpy": ..., "torch": ..., "peak": max of them}``.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    fns: dict[str, Callable[[], object]] = {"numpy": lambda: a @ b}
    try:
        import torch
    except ImportError:
        pass
    else:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        fns["torch"] = lambda: torch.mm(ta, tb)
    timings = time_interleaved(fns, repeats=repeats, warmup=1)
    rates = {name: 2 * n**3 / (t.min_ms * 1e-3) / 1e9 for name, t in timings.items()}
    rates["peak"] = max(rates.values())
    return rates


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "amx_tile", "asimd", "sve")
"""The /proc/cpuinfo flags that tell which vector instructions BLAS, oneDNN and LLVM can use."""


def _simd_flags() -> list[str]:
    """Those of :data:`SIMD_FLAGS` this CPU reports (empty where /proc/cpuinfo is absent)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in SIMD_FLAGS if flag in present]
    except OSError:
        pass
    return []


def _git_sha() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("-dirty" if dirty else "")


def machine_info() -> dict[str, object]:
    """Where the numbers came from: CPU and its SIMD flags, cores, platform, versions, git SHA,
    the OpenBLAS overrides in force, load average."""
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for module in ("numba", "torch", "scipy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            pass
    info: dict[str, object] = {
        "cpu_model": _cpu_model(),
        "simd": _simd_flags(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "versions": versions,
        "git_sha": _git_sha(),
        # set on some machines of this workplace: OpenBLAS then runs the named core's kernels
        "openblas_env": {k: v for k, v in os.environ.items()
                         if k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
    }
    from benchmarks import KEEP_FREED_MEMORY

    info["keep_freed_memory"] = KEEP_FREED_MEMORY  # benchmarks/__init__.py
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    return info


def format_table(rows: Sequence[dict[str, object]], columns: Sequence[str],
                 formats: dict[str, str] | None = None) -> str:
    """A fixed-width table of ``rows`` (dicts) with the given ``columns`` as header.

    ``formats`` maps a column to a format spec (``".2f"``); missing values print as ``-``.
    Text columns are left-aligned, numbers right-aligned.
    """
    formats = formats or {}

    def cell(row, col):
        value = row.get(col)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return format(value, formats.get(col, "")) if not isinstance(value, str) else value

    cells = [[cell(row, col) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    numeric = [all(isinstance(row.get(col), (int, float)) or row.get(col) is None for row in rows)
               for col in columns]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    out = [line(list(columns)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def geomean(values: Sequence[float]) -> float:
    """Geometric mean of positive numbers (nan for an empty sequence)."""
    values = [v for v in values if v is not None]
    if not values:
        return float("nan")
    return float(math.exp(sum(math.log(v) for v in values) / len(values)))


def write_json(path: str | os.PathLike, payload: object) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically (folders created)."""
    from minitorch_cnn.io import write_text

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, tuple):
            return list(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    return write_text(path, json.dumps(payload, indent=1, default=default) + "\n")


__all__ = [
    "Timing",
    "format_table",
    "geomean",
    "machine_info",
    "sgemm_peak_gflops",
    "time_interleaved",
    "write_json",
]
