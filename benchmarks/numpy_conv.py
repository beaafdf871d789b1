"""Time the ``numpy`` backend's conv2d forward and backward against PyTorch on the CPU.

    python -m benchmarks.numpy_conv [--repeats 7] [--warmup 2] [--threads 2]

One ResNet-sized layer: x (32, 128, 28, 28), weight (128, 128, 3, 3), padding 1, float32, no
bias. Passes:

- forward:  ``y = conv2d(x, weight)``;
- backward: ``grad_x`` and ``grad_weight`` from ``grad_y`` (ours also returns ``grad_bias``,
  a sum over ``grad_y``; torch is asked for grad_x and grad_weight only);
- total:    forward + backward of the same repeat.

Order of work, as in llm.c's dev/cuda benchmarks: check ours equals torch, warm up, then time
ours and torch interleaved in the same process (so a busy neighbour slows both alike), and
report the median and the min of the repeats. GFLOP/s counts ``2*N*C_out*H_out*W_out*C_in*kH*kW``
for the forward (:func:`kernels.common.flops_conv2d`) and twice that for the backward.
The table is printed; every figure goes to ``benchmarks/results/numpy_conv.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as tF

from kernels.common import conv_output_size, flops_conv2d
from minitorch_cnn import functional as F
from minitorch_cnn.io import write_text

N, C_IN, H, W = 32, 128, 28, 28
C_OUT, KERNEL, PADDING = 128, 3, 1
RESULTS = Path(__file__).resolve().parent / "results" / "numpy_conv.json"
TOLERANCE = 1e-4  # float32: max |ours - torch| <= 1e-4 * max |torch|


# --------------------------------------------------------------------------- the two sides


def ours_forward(x, weight):
    return F.conv2d(x, weight, None, stride=1, padding=PADDING, backend="numpy")


def ours_backward(grad_y, x, weight):
    grad_x, grad_weight, _ = F.conv2d_backward(grad_y, x, weight, stride=1, padding=PADDING,
                                               backend="numpy")
    return grad_x, grad_weight


def torch_forward(tx, tw):
    with torch.no_grad():
        return tF.conv2d(tx, tw, None, 1, PADDING)


def torch_backward(tgy, tx, tw):
    """The aten op autograd calls for a conv's backward, without building a graph."""
    grad_x, grad_weight, _ = torch.ops.aten.convolution_backward(
        tgy, tx, tw, None, [1, 1], [PADDING, PADDING], [1, 1], False, [0, 0], 1,
        [True, True, False],
    )
    return grad_x, grad_weight


# --------------------------------------------------------------------------- machine info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _blas_info() -> list[dict] | str:
    """Which BLAS NumPy calls and with how many threads (threadpoolctl, if installed)."""
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed"
    return [
        {k: info.get(k) for k in ("user_api", "internal_api", "num_threads", "version",
                                  "architecture", "filepath")}
        for info in threadpoolctl.threadpool_info()
    ]


# --------------------------------------------------------------------------- measuring


def _relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))


def check(x, weight, grad_y, tx, tw, tgy) -> dict[str, float]:
    """Ours against torch on the benchmark's own arrays; raise before timing if they differ."""
    errors = {"y": _relative_error(ours_forward(x, weight), torch_forward(tx, tw).numpy())}
    ours_gx, ours_gw = ours_backward(grad_y, x, weight)
    torch_gx, torch_gw = torch_backward(tgy, tx, tw)
    errors["grad_x"] = _relative_error(ours_gx, torch_gx.numpy())
    errors["grad_weight"] = _relative_error(ours_gw, torch_gw.numpy())
    for name, error in errors.items():
        if not error <= TOLERANCE:
            raise AssertionError(f"{name}: ours differs from torch, max relative error {error:.2e}")
    return errors


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1e3


def run(repeats: int, warmup: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    H_out = conv_output_size(H, KERNEL, 1, PADDING, 1)
    W_out = conv_output_size(W, KERNEL, 1, PADDING, 1)
    x = rng.standard_normal((N, C_IN, H, W), dtype=np.float32)
    weight = rng.standard_normal((C_OUT, C_IN, KERNEL, KERNEL), dtype=np.float32)
    weight *= np.float32(1.0 / np.sqrt(C_IN * KERNEL * KERNEL))
    grad_y = rng.standard_normal((N, C_OUT, H_out, W_out), dtype=np.float32)
    tx, tw, tgy = (torch.from_numpy(a) for a in (x, weight, grad_y))

    errors = check(x, weight, grad_y, tx, tw, tgy)
    times = {side: {"forward": [], "backward": []} for side in ("ours", "torch")}
    for repeat in range(warmup + repeats):
        sample = {
            ("ours", "forward"): _timed(ours_forward, x, weight),
            ("torch", "forward"): _timed(torch_forward, tx, tw),
            ("ours", "backward"): _timed(ours_backward, grad_y, x, weight),
            ("torch", "backward"): _timed(torch_backward, tgy, tx, tw),
        }
        if repeat >= warmup:
            for (side, pass_name), ms in sample.items():
                times[side][pass_name].append(ms)
    for side in times:
        times[side]["total"] = [f + b for f, b in zip(times[side]["forward"],
                                                      times[side]["backward"], strict=True)]

    flops_forward = flops_conv2d((N, C_OUT, H_out, W_out), (C_OUT, C_IN, KERNEL, KERNEL))
    flops = {"forward": flops_forward, "backward": 2 * flops_forward, "total": 3 * flops_forward}
    passes = []
    for pass_name in ("forward", "backward", "total"):
        ours, ref = times["ours"][pass_name], times["torch"][pass_name]
        ours_median, torch_median = statistics.median(ours), statistics.median(ref)
        passes.append({
            "pass": pass_name,
            "flops": flops[pass_name],
            "ours_ms": ours, "torch_ms": ref,
            "ours_median_ms": ours_median, "ours_min_ms": min(ours),
            "torch_median_ms": torch_median, "torch_min_ms": min(ref),
            "ratio_median": ours_median / torch_median,
            "ratio_min": min(ours) / min(ref),
            "ours_gflops": flops[pass_name] / ours_median / 1e6,
            "torch_gflops": flops[pass_name] / torch_median / 1e6,
        })
    return {
        "benchmark": "conv2d forward + backward, numpy backend vs torch CPU",
        "op": "conv2d",
        "backend": "numpy",
        "shape": {"x": [N, C_IN, H, W], "weight": [C_OUT, C_IN, KERNEL, KERNEL],
                  "y": [N, C_OUT, H_out, W_out], "stride": 1, "padding": PADDING,
                  "dilation": 1, "groups": 1, "bias": False},
        "dtype": "float32",
        "repeats": repeats,
        "warmup": warmup,
        "max_relative_error_vs_torch": errors,
        "passes": passes,
        "machine": {
            "node": platform.node(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "blas": _blas_info(),
            "note": "shared machine: other processes may have run during the timing",
        },
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "torch": torch.__version__},
        "git_sha": _git_sha(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def print_table(result: dict) -> None:
    shape = result["shape"]
    print(f"conv2d x{tuple(shape['x'])} w{tuple(shape['weight'])} padding {shape['padding']} "
          f"{result['dtype']}, numpy backend vs torch {result['versions']['torch']} "
          f"({result['machine']['torch_threads']} threads), {result['machine']['cpu_model']}")
    print(f"median (min) of {result['repeats']} repeats after {result['warmup']} warm-up; "
          f"max relative error vs torch: "
          + ", ".join(f"{k} {v:.1e}" for k, v in result["max_relative_error_vs_torch"].items()))
    header = (f"{'pass':<9} | {'ms ours':>17} | {'ms torch':>17} | {'ratio':>5} | "
              f"{'GFLOP/s ours':>12} | {'GFLOP/s torch':>13}")
    print(header)
    print("-" * len(header))
    for p in result["passes"]:
        ours = f"{p['ours_median_ms']:8.1f} ({p['ours_min_ms']:6.1f})"
        ref = f"{p['torch_median_ms']:8.1f} ({p['torch_min_ms']:6.1f})"
        print(f"{p['pass']:<9} | {ours:>17} | {ref:>17} | {p['ratio_median']:5.2f} | "
              f"{p['ours_gflops']:12.1f} | {p['torch_gflops']:13.1f}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (>= 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed repeats first")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats: expected at least 5")
    result = run(args.repeats, args.warmup, args.threads)
    print_table(result)
    write_text(args.output, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
