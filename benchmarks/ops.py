"""Time every conv and pool op of the layer suite, per backend, against PyTorch on the CPU.

    python -m benchmarks.ops [--quick] [--backends numpy,numba] [--out DIR] [--threads N]

For each layer of ``benchmarks.suite`` (LeNet-5, the MNIST CNN, ResNet-18 at batch 32; with
``--quick`` the small layers and two ResNet ones) and each op (conv forward, conv backward,
pool forward, pool backward) it

1. checks every backend's result against torch's (float32, to 1e-4 of the output's scale),
   which is also the warm-up that JIT-compiles the numba kernels;
2. times each backend against torch, round-robin in the same process, one pair at a time
   (``benchmarks.timing.time_interleaved`` on ``{torch, backend}``; median and min of the
   repeats), torch and numba on the same number of threads. Pairs, not all backends in one
   round: one contender's threads still busy after its call (OpenBLAS spins; see
   ``benchmarks/__init__.py`` for the setting that stops it) slow the next one down, and a
   pair keeps that from touching a third (numba's LeNet conv2 forward: median 4.8 ms against
   a min of 1.5 ms in one round with numpy, 1.31 against 1.28 in a pair). Each backend's
   ratio is to the torch median of its own pair; the torch row pools the pairs;
3. prints a fixed-width table (ms, GFLOP/s, % of this machine's measured SGEMM rate, ratio to
   torch), the geometric means of (ours fwd+bwd) / (torch fwd+bwd) over the conv layers and
   over the pool layers, and writes ``<out>/<name>.json`` and ``<out>/<name>.png``.

What is timed, on each side:

- conv "forward": ``F.conv2d(x, w)`` vs ``torch.nn.functional.conv2d`` (no bias: ResNet's
  convs have none, and both sides skip it alike);
- conv "backward": our ``F.conv2d_backward`` computes grad_x, grad_weight and grad_bias in one
  call, so it is one figure (backward-input + backward-weight + bias), timed against
  ``torch.ops.aten.convolution_backward`` with all three outputs, the op autograd calls;
  GFLOP/s counts 2x the forward FLOPs;
- max pool, as in training (PyTorch's autograd keeps the indices of the forward): the
  forward makes the indices on both sides (``aten.max_pool2d_with_indices`` and
  ``F.max_pool2d(..., return_indices=True)``), the backward is given them
  (``aten.max_pool2d_with_indices_backward`` and ``F.max_pool2d_backward(..., indices=)``);
- avg / adaptive pool: ``aten.avg_pool2d_backward`` / ``aten._adaptive_avg_pool2d_backward``;
- conv_transpose2d (``benchmarks.suite.TRANSPOSE_SUITE``: a DCGAN generator layer and a
  U-Net up-convolution): ``F.conv_transpose2d`` vs ``torch.nn.functional.conv_transpose2d``
  (no bias), and ``F.conv_transpose2d_backward`` (grad_x, grad_weight, grad_bias) vs
  ``aten.convolution_backward`` with ``transposed=True``; GFLOP/s as for conv, from the
  FLOPs of the conv2d whose grad_x the transposed conv is.

Ours is called through the public API (``minitorch_cnn.functional``, validation included).
The ``naive`` backend is timed on the LeNet-5 layers only (it takes minutes on ResNet's).
The full run also measures start-up: a fresh process importing the package and calling
``conv2d`` / ``conv2d_backward`` once with an empty Numba cache (compile), then again with
the cache that run wrote.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.suite import (
    CONV_SUITE,
    POOL_SUITE,
    QUICK_CONV,
    QUICK_POOL,
    QUICK_TRANSPOSE,
    TRANSPOSE_SUITE,
    ConvCase,
    ConvTransposeCase,
    PoolCase,
)
from benchmarks.timing import (
    Timing,
    format_table,
    geomean,
    machine_info,
    sgemm_peak_gflops,
    time_interleaved,
    write_json,
)
from minitorch_cnn.io import save_figure

TOLERANCE = 1e-4  # float32, relative to the reference's largest magnitude
NAIVE_LAYERS = ("lenet5.",)  # the only layers the naive backend is timed on
ENV_VARS = ("NUMBA_THREADING_LAYER", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "MKL_NUM_THREADS",
            "NUMBA_CACHE_DIR")


# --------------------------------------------------------------------------- problems


def _conv_problem(case: ConvCase, backends: list[str]):
    """Callables for one conv layer: {"forward": {name: fn}, "backward": {...}} + checks."""
    import torch
    import torch.nn.functional as tF

    from minitorch_cnn import functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal(case.x_shape, dtype=np.float32)
    w = (rng.standard_normal(case.w_shape, dtype=np.float32)
         / np.sqrt(np.prod(case.w_shape[1:]))).astype(np.float32)
    gy = rng.standard_normal(case.y_shape, dtype=np.float32)
    tx, tw, tgy = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)
    s, p, g = (case.stride,) * 2, (case.padding,) * 2, case.groups
    C_out = case.w_shape[0]

    def torch_fwd():
        return tF.conv2d(tx, tw, None, s, p, 1, g)

    def torch_bwd():
        return torch.ops.aten.convolution_backward(tgy, tx, tw, [C_out], list(s), list(p),
                                                   [1, 1], False, [0, 0], g,
                                                   [True, True, True])

    ops = {"forward": {"torch": torch_fwd}, "backward": {"torch": torch_bwd}}
    for b in backends:
        ops["forward"][b] = lambda b=b: F.conv2d(x, w, None, s, p, 1, g, backend=b)
        ops["backward"][b] = lambda b=b: F.conv2d_backward(gy, x, w, s, p, 1, g, backend=b)
    flops = {"forward": case.flops, "backward": 2 * case.flops}
    return ops, flops


def conv_algorithm_used(case: ConvCase, backend: str) -> str | None:
    """The algorithm ``backend`` runs ``case`` with (forward and backward alike), or None.

    ``"winograd F(m)"`` for the Winograd path (its GFLOP/s are then *effective*: the direct
    convolution's FLOPs over the time, more than the machine could do with those FLOPs),
    else the numba backend's ``conv_plan`` path (``"gemm"``, ``"direct"``, ``"1x1"``; the
    forward's: a 3x3 backward may take ``"gemm"`` where the forward is ``"direct"``) or
    ``"im2col"`` for the numpy backend; None for the other backends.
    """
    if backend not in ("numpy", "numba"):
        return None
    from kernels import winograd as wn
    from kernels.common import ConvSpec

    spec = ConvSpec.from_shapes(case.x_shape, case.w_shape, (case.stride,) * 2,
                                (case.padding,) * 2, (1, 1), case.groups)
    x, w = np.ones(case.x_shape, np.float32), np.ones(case.w_shape, np.float32)
    if backend == "numpy":
        m = wn.numpy_tile(spec, x, w)
        return f"winograd F({m})" if m else "im2col"
    import kernels.numba_cpu as nc

    m = nc.winograd.choose_tile(spec, x, w)
    return f"winograd F({m})" if m else nc.conv_plan(spec, x.itemsize).path


def _conv_transpose_problem(case: ConvTransposeCase, backends: list[str]):
    """Callables for one transposed-conv layer, as :func:`_conv_problem`."""
    import torch
    import torch.nn.functional as tF

    from minitorch_cnn import functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal(case.x_shape, dtype=np.float32)
    w = (rng.standard_normal(case.w_shape, dtype=np.float32)
         / np.sqrt(np.prod(case.w_shape[1:]))).astype(np.float32)
    gy = rng.standard_normal(case.y_shape, dtype=np.float32)
    tx, tw, tgy = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)
    s, p, op = (case.stride,) * 2, (case.padding,) * 2, (case.output_padding,) * 2

    def torch_fwd():
        return tF.conv_transpose2d(tx, tw, None, s, p, op, 1, 1)

    def torch_bwd():
        return torch.ops.aten.convolution_backward(tgy, tx, tw, [case.C_out], list(s), list(p),
                                                   [1, 1], True, list(op), 1,
                                                   [True, True, True])

    ops = {"forward": {"torch": torch_fwd}, "backward": {"torch": torch_bwd}}
    for b in backends:
        ops["forward"][b] = lambda b=b: F.conv_transpose2d(x, w, None, s, p, op, backend=b)
        ops["backward"][b] = lambda b=b: F.conv_transpose2d_backward(gy, x, w, s, p, op,
                                                                     backend=b)
    flops = {"forward": case.flops, "backward": 2 * case.flops}
    return ops, flops


def _pool_problem(case: PoolCase, backends: list[str]):
    """Callables for one pooling layer, as :func:`_conv_problem`."""
    import torch
    import torch.nn.functional as tF

    from minitorch_cnn import functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal(case.x_shape, dtype=np.float32)
    tx = torch.from_numpy(x)
    k = case.kernel
    s = case.stride if case.stride is not None else k
    p = case.padding
    if case.kind == "max":
        y, idx = torch.ops.aten.max_pool2d_with_indices(tx, [k, k], [s, s], [p, p])
        tgy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
        ops = {
            "forward": {"torch": lambda: torch.ops.aten.max_pool2d_with_indices(
                tx, [k, k], [s, s], [p, p])},
            "backward": {"torch": lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                tgy, tx, [k, k], [s, s], [p, p], [1, 1], False, idx)},
        }
        fwd = lambda b: lambda: F.max_pool2d(x, k, s, p, return_indices=True,  # noqa: E731
                                             backend=b)

        def bwd(b):
            ours = F.max_pool2d(x, k, s, p, return_indices=True, backend=b)[1]  # (N, C, Ho, Wo)
            return lambda: F.max_pool2d_backward(gy, x, k, s, p, indices=ours, backend=b)
    elif case.kind == "avg":
        y = tF.avg_pool2d(tx, k, s, p)
        tgy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
        ops = {
            "forward": {"torch": lambda: tF.avg_pool2d(tx, k, s, p)},
            "backward": {"torch": lambda: torch.ops.aten.avg_pool2d_backward(
                tgy, tx, [k, k], [s, s], [p, p], False, True, None)},
        }
        fwd = lambda b: lambda: F.avg_pool2d(x, k, s, p, backend=b)  # noqa: E731
        bwd = lambda b: lambda: F.avg_pool2d_backward(gy, x, k, s, p, backend=b)  # noqa: E731
    else:  # adaptive_avg: ``kernel`` is the output size
        y = tF.adaptive_avg_pool2d(tx, k)
        tgy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
        ops = {
            "forward": {"torch": lambda: tF.adaptive_avg_pool2d(tx, k)},
            "backward": {"torch": lambda: torch.ops.aten._adaptive_avg_pool2d_backward(tgy, tx)},
        }
        fwd = lambda b: lambda: F.adaptive_avg_pool2d(x, k, backend=b)  # noqa: E731
        bwd = lambda b: lambda: F.adaptive_avg_pool2d_backward(gy, x, k, backend=b)  # noqa: E731
    gy = tgy.numpy()
    for b in backends:
        ops["forward"][b] = fwd(b)
        ops["backward"][b] = bwd(b)
    return ops, {"forward": None, "backward": None}


def _as_numpy_list(out) -> list[np.ndarray]:
    if isinstance(out, (tuple, list)):
        return [np.asarray(o.detach().numpy() if hasattr(o, "detach") else o) for o in out]
    return [np.asarray(out.detach().numpy() if hasattr(out, "detach") else out)]


def _check(ours, expected) -> float:
    """Largest error of ``ours`` against torch's, relative to torch's scale (raises on shape)."""
    worst = 0.0
    for a, e in zip(_as_numpy_list(ours), _as_numpy_list(expected), strict=True):
        if a.shape != e.shape or a.dtype != e.dtype:
            raise AssertionError(f"shape/dtype {a.shape} {a.dtype} != torch {e.shape} {e.dtype}")
        scale = max(1.0, float(np.abs(e).max()))
        worst = max(worst, float(np.abs(a - e).max()) / scale)
    return worst


# --------------------------------------------------------------------------- start-up


_STARTUP_CODE = """
import time
t0 = time.perf_counter()
import numpy as np
from minitorch_cnn import functional as F
t1 = time.perf_counter()
x = np.ones((8, 64, 14, 14), np.float32)
w = np.ones((64, 64, 3, 3), np.float32)
y = F.conv2d(x, w, padding=1, backend="numba")
t2 = time.perf_counter()
F.conv2d_backward(y, x, w, padding=1, backend="numba")
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def measure_startup() -> dict[str, object]:
    """Seconds for import + first conv2d (+ first conv2d_backward), cold cache then warm.

    Both processes get the same fresh ``NUMBA_CACHE_DIR``: the first compiles and writes the
    cache, the second loads it. (Installed normally, the cache lives in
    ``kernels/numba_cpu/__pycache__``, or in the user's cache folder if that is read-only.)
    """
    result: dict[str, object] = {
        "what": "python -c: import minitorch_cnn + first F.conv2d((8,64,14,14) float32, "
                "3x3 p1, GEMM path) + first F.conv2d_backward, in a new process",
    }
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("first_process_compile", "second_process_cached"):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _STARTUP_CODE], env=env, check=True,
                                 capture_output=True, text=True,
                                 cwd=Path(__file__).resolve().parent.parent)
            wall = time.perf_counter() - t0
            imp, fwd, bwd = (float(v) for v in out.stdout.split())
            result[label] = {"import_s": round(imp, 3), "first_conv2d_s": round(fwd, 3),
                             "import_plus_first_conv2d_s": round(imp + fwd, 3),
                             "first_conv2d_backward_s": round(bwd, 3),
                             "process_wall_s": round(wall, 3)}
    return result


# --------------------------------------------------------------------------- main


def _plot(path: Path, results: list[dict], backends: list[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [("conv", "conv layers: (fwd + bwd) / torch"),
             ("pool", "pool layers: (fwd + bwd) / torch")]
    fig, axes = plt.subplots(1, 2, figsize=(16, 7), gridspec_kw={"width_ratios": [3, 1.3]})
    for ax, (kind, label) in zip(axes, kinds, strict=True):
        layers = list(dict.fromkeys(r["layer"] for r in results if r["kind"].startswith(kind)))
        width = 0.8 / max(1, len(backends))
        for k, b in enumerate(backends):
            ratios = []
            for layer in layers:
                rows = {r["op"]: r for r in results  # "conv" also plots "conv_transpose"
                        if r["layer"] == layer and r["backend"] == b
                        and r["kind"].startswith(kind)}
                if set(rows) == {"forward", "backward"}:
                    ours = sum(r["median_ms"] for r in rows.values())
                    ref = sum(r["torch_median_ms"] for r in rows.values())  # its pair's
                    ratios.append(ours / ref)
                else:
                    ratios.append(np.nan)
            xs = np.arange(len(layers)) + (k - (len(backends) - 1) / 2) * width
            ax.bar(xs, ratios, width, label=b)
        ax.axhline(1.0, color="black", lw=1)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(layers)))
        ax.set_xticklabels([layer.split(" ")[0] for layer in layers], rotation=60, ha="right",
                           fontsize=8)
        ax.set_ylabel("time / torch time (lower is better; < 1 beats torch)")
        ax.set_title(label)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small layers + two ResNet ones, fewer repeats (< 1 minute)")
    parser.add_argument("--backends", default="numpy,numba",
                        help="comma-separated backends timed against torch "
                             "(default: %(default)s)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for JSON and PNG")
    parser.add_argument("--name", default=None,
                        help="file stem (default: cpu_ops, or cpu_ops_quick with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for numba and torch alike (default: numba's default)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="max timed repeats per op (default: 15, or 5 with --quick)")
    parser.add_argument("--layers", default="",
                        help="only layers whose name contains one of these comma-separated words")
    parser.add_argument("--no-startup", action="store_true",
                        help="skip the compile / cached start-up measurement")
    args = parser.parse_args(argv)

    import torch
    from tqdm import tqdm

    import minitorch_cnn as mc

    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if b not in mc.backends():
            parser.error(f"--backends: {b!r} is not available here: {mc.backends(verbose=True)}")
    try:
        import numba
    except ImportError:
        numba = None
    threads = args.threads or (numba.get_num_threads() if numba else os.cpu_count())
    if numba is not None:
        numba.set_num_threads(threads)
    torch.set_num_threads(threads)
    max_repeats = args.repeats or (5 if args.quick else 15)
    budget_s = 0.4 if args.quick else 1.5  # timed seconds per (layer, op), all contenders
    name = args.name or ("cpu_ops_quick" if args.quick else "cpu_ops")

    conv_cases = QUICK_CONV if args.quick else CONV_SUITE
    pool_cases = QUICK_POOL if args.quick else POOL_SUITE
    transpose_cases = QUICK_TRANSPOSE if args.quick else TRANSPOSE_SUITE
    if args.layers:
        words = args.layers.split(",")
        conv_cases = [c for c in conv_cases if any(w in c.name for w in words)]
        pool_cases = [c for c in pool_cases if any(w in c.name for w in words)]
        transpose_cases = [c for c in transpose_cases if any(w in c.name for w in words)]

    t_start = time.perf_counter()
    peak = sgemm_peak_gflops()
    print(f"threads: numba {threads}, torch {torch.get_num_threads()}; "
          f"SGEMM 2048^3: numpy {peak['numpy']:.1f}, torch {peak.get('torch', 0):.1f} GFLOP/s "
          f"(peak used: {peak['peak']:.1f})")
    print("the machine may be shared: every op is timed interleaved with torch in this process")

    tasks = [("conv", c, op) for c in conv_cases for op in ("forward", "backward")]
    tasks += [("pool", c, op) for c in pool_cases for op in ("forward", "backward")]
    tasks += [("conv_transpose", c, op) for c in transpose_cases
              for op in ("forward", "backward")]
    results: list[dict] = []
    failures: list[str] = []
    problem_cache: dict[str, tuple] = {}
    bar = tqdm(tasks, desc="benchmark", unit="op", dynamic_ncols=True)
    for kind, case, op in bar:
        bar.set_postfix_str(f"{case.name.split(' ')[0]} {op}")
        names = [b for b in backends
                 if b != "naive" or any(case.name.startswith(p) for p in NAIVE_LAYERS)]
        if case.name not in problem_cache:
            make = {"conv": _conv_problem, "pool": _pool_problem,
                    "conv_transpose": _conv_transpose_problem}[kind]
            problem_cache.clear()
            algorithms = {b: conv_algorithm_used(case, b) if kind == "conv" else None
                          for b in ("torch", *names)}  # once per layer, not per op
            problem_cache[case.name] = (*make(case, names), algorithms)
        ops, flops, algorithms = problem_cache[case.name]
        fns = {"torch": ops[op]["torch"]}
        expected = fns["torch"]()
        errors = {}
        for b in names:
            try:
                errors[b] = _check(ops[op][b](), expected)  # also the JIT warm-up
            except Exception as exc:  # noqa: BLE001 - report and keep benchmarking the rest
                errors[b] = float("inf")
                failures.append(f"{case.name} {op} {b}: {type(exc).__name__}: {exc}")
            if errors[b] <= TOLERANCE:
                fns[b] = ops[op][b]
            elif np.isfinite(errors[b]):
                failures.append(f"{case.name} {op} {b}: error {errors[b]:.2e} > {TOLERANCE}")
        one_round = time_interleaved(fns, repeats=1, warmup=0)  # a second warm-up, and a size
        round_s = sum(t.median_ms for t in one_round.values()) * 1e-3
        repeats = int(min(max_repeats, max(3, budget_s / max(round_s, 1e-9))))
        pairs = {b: time_interleaved({"torch": fns["torch"], b: fns[b]}, repeats=repeats,
                                     warmup=0) for b in fns if b != "torch"}
        torch_samples = [v for pair in pairs.values() for v in pair["torch"].samples_ms]
        timings = {"torch": Timing(float(np.median(torch_samples)), float(np.min(torch_samples)),
                                   torch_samples) if pairs else one_round["torch"],
                   **{b: pair[b] for b, pair in pairs.items()}}
        torch_ms = {b: pair["torch"].median_ms for b, pair in pairs.items()}
        torch_ms["torch"] = timings["torch"].median_ms
        for b, t in timings.items():
            gflops = flops[op] / (t.median_ms * 1e-3) / 1e9 if flops[op] else None
            algorithm = algorithms[b]
            results.append({
                "kind": kind, "layer": case.name, "op": op, "backend": b,
                "shape": {"x": list(case.x_shape), **({"weight": list(case.w_shape),
                          "stride": case.stride, "padding": case.padding,
                          "groups": getattr(case, "groups", 1),
                          "output_padding": getattr(case, "output_padding", 0)}
                          if kind != "pool" else
                          {"pool": case.kind, "kernel": case.kernel, "stride": case.stride,
                           "padding": case.padding})},
                "dtype": "float32", "median_ms": round(t.median_ms, 4),
                "min_ms": round(t.min_ms, 4), "repeats": repeats, "samples_ms": t.samples_ms,
                "algorithm": algorithm,
                "gflops": None if gflops is None else round(gflops, 2),
                "gflops_effective": bool(algorithm and algorithm.startswith("winograd")),
                "pct_of_sgemm_peak": (None if gflops is None
                                      else round(100 * gflops / peak["peak"], 1)),
                "torch_median_ms": round(torch_ms[b], 4),  # of this backend's pair
                "ratio_to_torch": round(t.median_ms / torch_ms[b], 3),
                "max_rel_error_vs_torch": None if b == "torch" else errors[b],
            })
    bar.close()

    columns = ["layer", "op", "backend", "algorithm", "ms", "min_ms", "GFLOP/s", "%peak",
               "x torch"]
    table_rows = [{"layer": r["layer"], "op": r["op"], "backend": r["backend"],
                   "algorithm": r["algorithm"] or "", "ms": r["median_ms"],
                   "min_ms": r["min_ms"], "GFLOP/s": r["gflops"],
                   "%peak": r["pct_of_sgemm_peak"], "x torch": r["ratio_to_torch"]}
                  for r in results]
    print(format_table(table_rows, columns, {"ms": ".3f", "min_ms": ".3f", "GFLOP/s": ".1f",
                                             "%peak": ".1f", "x torch": ".2f"}))
    if any(r["gflops_effective"] for r in results):
        print("winograd rows: effective GFLOP/s and %peak (the direct convolution's FLOPs / "
              "time); Winograd does fewer multiplies")

    def pair_ratio(layer, b):
        rows = [r for r in results if r["layer"] == layer and r["backend"] == b]
        if len(rows) != 2:
            return None
        return sum(r["median_ms"] for r in rows) / sum(r["torch_median_ms"] for r in rows)

    summary = {}
    groups = {
        "conv_all": [c.name for c in conv_cases],
        "conv_resnet18_lenet5": [c.name for c in conv_cases
                                 if c.name.startswith(("resnet18.", "lenet5."))],
        "pool_all": [c.name for c in pool_cases],
        "conv_transpose_all": [c.name for c in transpose_cases],
    }
    print("\ngeometric mean of (ours fwd+bwd) / (torch fwd+bwd), median times; < 1 beats torch")
    for b in backends:
        summary[b] = {}
        for group, layers in groups.items():
            ratios = [pair_ratio(layer, b) for layer in layers]
            ratios = [r for r in ratios if r is not None]
            summary[b][group] = {"geomean_ratio": round(geomean(ratios), 3),
                                 "layers": len(ratios)}
            print(f"  {b:6s} {group:22s} {geomean(ratios):6.3f}  over {len(ratios)} layers")

    startup = None
    if numba is not None and "numba" in backends and not args.quick and not args.no_startup:
        print("\nstart-up (separate processes, fresh NUMBA_CACHE_DIR) ...", flush=True)
        startup = measure_startup()
        for label in ("first_process_compile", "second_process_cached"):
            s = startup[label]
            print(f"  {label:24s} import {s['import_s']:.2f} s + first conv2d "
                  f"{s['first_conv2d_s']:.2f} s = {s['import_plus_first_conv2d_s']:.2f} s; "
                  f"first conv2d_backward {s['first_conv2d_backward_s']:.2f} s")
    if failures:
        print("\nCORRECTNESS FAILURES (not timed):\n  " + "\n  ".join(failures))

    payload = {
        "command": " ".join([f"{k}={os.environ[k]}" for k in ENV_VARS if k in os.environ]
                            + ["python -m benchmarks.ops"]
                            + (sys.argv[1:] if argv is None else argv)),
        "environment": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
        "machine": machine_info(),
        "threads": {"numba": threads, "torch": torch.get_num_threads(),
                    "numba_threading_layer": _threading_layer(numba),
                    "blas_note": "numba's GEMM lanes run BLAS single-threaded, one lane per "
                                 "thread; torch uses its own oneDNN/MKL threads"},
        "sgemm_gflops": peak,
        "dtype": "float32",
        "note": "timings interleaved with torch in one process on a machine shared with "
                "other jobs; conv 'backward' = grad_x + grad_weight + grad_bias in one call",
        "results": results,
        "summary": summary,
        "startup": startup,
        "failures": failures,
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    out = Path(args.out)
    json_path = write_json(out / f"{name}.json", payload)
    png_path = out / f"{name}.png"
    _plot(png_path, results, backends,
          f"{payload['command']} | {payload['machine']['cpu_model']}, {threads} threads, "
          f"float32 (shared machine)")
    print(f"\nwrote {json_path} and {png_path} ({payload['wall_s']} s)")
    return payload


def _threading_layer(numba) -> str | None:
    if numba is None:
        return None
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return None


if __name__ == "__main__":
    main()
