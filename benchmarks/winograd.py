"""Winograd F(2x2, 3x3) and F(4x4, 3x3) against the GEMM path and PyTorch, per 3x3 layer.

    python -m benchmarks.winograd [--batch 32] [--rounds 2] [--backend numba|numpy]
                                  [--out benchmarks/results/cpu_winograd.json]
    python -m benchmarks.winograd --accuracy [--out benchmarks/results/cpu_winograd_accuracy.json]

Timing: for each 3x3 stride-1 layer of the suite (benchmarks/suite.py: ResNet-18's layer1-4
convs; LeNet-5's and the MNIST CNN's are 5x5, so none of theirs), float32, this times
interleaved in one process (:func:`benchmarks.timing.time_interleaved`) the backend's conv
with ``conv_algorithm("gemm")``, ``("winograd")`` (F(2x2, 3x3)), ``("winograd4")`` (F(4x4,
3x3)), and ``torch.nn.functional.conv2d``; forward, and forward + backward (grad_x and
grad_weight). Every contender is checked against torch before it is timed. The whole table
is measured ``--rounds`` times in the same process, and the JSON keeps every round, so the
spread of the ratios to torch shows how noisy the machine was.

GFLOP/s are *effective*: the direct convolution's FLOPs, ``2*N*C_out*H_out*W_out*C_in*9``
per pass (times 3 for forward + backward), divided by the time; Winograd does fewer
multiplies, so its effective rate can exceed the machine's SGEMM peak, which is measured in
the same run (``sgemm_gflops``) and printed beside it.

Accuracy (``--accuracy``): float32 inputs, the error of each path against PyTorch in float64
on the same values, as ``max|ours - torch64| / max|torch64|`` for the forward, grad_x and
grad_weight of the same layers at batch 2; these numbers are what
``kernels.winograd.FLOAT32_ERROR_BOUND`` and the numba module's ``MEASURED_ERROR`` quote.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

from benchmarks.suite import CONV_SUITE
from benchmarks.timing import (
    format_table,
    machine_info,
    sgemm_peak_gflops,
    time_interleaved,
    write_json,
)

ALGORITHMS = ("gemm", "winograd", "winograd4")


def winograd_layers(batch: int | None):
    """The suite's 3x3 stride-1 conv layers (``batch`` overrides their batch size)."""
    cases = [c for c in CONV_SUITE if c.kernel == 3 and c.stride == 1 and c.groups == 1]
    return [c._replace(N=batch) if batch else c for c in cases]


def _problem(case, rng, dtype=np.float32):
    x = rng.standard_normal(case.x_shape).astype(dtype)  # (N, C_in, H, W)
    w = rng.standard_normal(case.w_shape).astype(dtype)  # (C_out, C_in, 3, 3)
    gy = rng.standard_normal(case.y_shape).astype(dtype)  # (N, C_out, H_out, W_out)
    return x, w, gy


def _backend_module(backend: str):
    import kernels.numba_cpu as nc
    import kernels.vectorized as kv

    return nc if backend == "numba" else kv


def accuracy(args) -> dict:
    """Errors of each path (float32) against torch float64, per layer and problem."""
    import torch

    from minitorch_cnn import functional as F

    mod = _backend_module(args.backend)
    rng = np.random.default_rng(0)
    rows = []
    for case in winograd_layers(2):
        x, w, gy = _problem(case, rng)
        xt, wt = torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.astype(np.float64))
        xt.requires_grad_(True)
        wt.requires_grad_(True)
        yt = torch.nn.functional.conv2d(xt, wt, padding=case.padding)
        yt.backward(torch.from_numpy(gy.astype(np.float64)))
        expected = {"y": yt.detach().numpy(), "grad_x": xt.grad.numpy(),
                    "grad_weight": wt.grad.numpy()}
        for algorithm in ALGORITHMS:
            with mod.conv_algorithm(algorithm):
                y = F.conv2d(x, w, padding=case.padding, backend=args.backend)
                gx, gw, _ = F.conv2d_backward(gy, x, w, padding=case.padding,
                                              backend=args.backend)
            for name, ours in (("y", y), ("grad_x", gx), ("grad_weight", gw)):
                ref = expected[name]
                scale = float(np.abs(ref).max())
                err = float(np.abs(ours.astype(np.float64) - ref).max())
                rows.append(dict(layer=case.name, algorithm=algorithm, problem=name,
                                 max_abs_err=err, scale=scale, rel_to_scale=err / scale,
                                 # the project's float32 tolerance: 1e-4 * max(1, scale)
                                 within_project_tol=err <= 1e-4 * max(1.0, scale)))
    return dict(rows=rows, worst={
        a: max(r["rel_to_scale"] for r in rows if r["algorithm"] == a) for a in ALGORITHMS})


def timing(args) -> dict:
    """The timing table, ``args.rounds`` times over, in one process."""
    import torch

    from minitorch_cnn import functional as F

    mod = _backend_module(args.backend)
    rng = np.random.default_rng(0)
    layers = winograd_layers(args.batch)
    problems = {case.name: _problem(case, rng) for case in layers}
    rounds = []
    for _ in range(args.rounds):
        rows = []
        for case in layers:
            x, w, gy = problems[case.name]
            xt, wt, gyt = (torch.from_numpy(a) for a in (x, w, gy))
            p = case.padding
            ref = torch.nn.functional.conv2d(xt, wt, padding=p).numpy()

            def ours(algorithm, backward, x=x, w=w, gy=gy, p=p):
                def run():
                    with mod.conv_algorithm(algorithm):
                        y = F.conv2d(x, w, padding=p, backend=args.backend)
                        if backward:
                            F.conv2d_backward(gy, x, w, padding=p, backend=args.backend)
                    return y
                return run

            def theirs(backward, xt=xt, wt=wt, gyt=gyt, p=p):
                def run():
                    xg = xt.detach().requires_grad_(backward)
                    wg = wt.detach().requires_grad_(backward)
                    y = torch.nn.functional.conv2d(xg, wg, padding=p)
                    if backward:
                        y.backward(gyt)
                return run

            for algorithm in ALGORITHMS:  # check before timing
                y = ours(algorithm, False)()
                tol = 2e-4 if algorithm == "winograd4" else 1e-4
                assert np.abs(y - ref).max() <= tol * max(1.0, np.abs(ref).max()), algorithm
            for mode, backward in (("fwd", False), ("fwd+bwd", True)):
                fns = {a: ours(a, backward) for a in ALGORITHMS}
                fns["torch"] = theirs(backward)
                t = time_interleaved(fns, repeats=args.repeats, warmup=1)
                flops = case.flops * (3 if backward else 1)
                for name, tm in t.items():
                    rows.append(dict(
                        layer=case.name, mode=mode, algorithm=name,
                        median_ms=round(tm.median_ms, 2), min_ms=round(tm.min_ms, 2),
                        effective_gflops=round(flops / tm.median_ms / 1e6, 1),
                        x_torch=round(tm.median_ms / t["torch"].median_ms, 3)))
        rounds.append(rows)
    return dict(rounds=rounds)


def main(argv: list[str] | None = None) -> int:
    """Run the timing (or, with ``--accuracy``, the error) table; print it, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=None, help="default: the suite's (32)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", choices=("numba", "numpy"), default="numba")
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import numba
    import torch

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    command = " ".join(["python -m benchmarks.winograd", *(sys.argv[1:] if argv is None
                                                          else argv)])
    if args.accuracy:
        result = accuracy(args)
        print(format_table(result["rows"], ["layer", "algorithm", "problem", "rel_to_scale",
                                            "within_project_tol"], {"rel_to_scale": ".2e"}))
        print("worst rel_to_scale:", {a: f"{v:.2e}" for a, v in result["worst"].items()})
        out = args.out or "benchmarks/results/cpu_winograd_accuracy.json"
    else:
        peak = sgemm_peak_gflops()
        result = timing(args)
        result["sgemm_gflops"] = peak
        for i, rows in enumerate(result["rounds"]):
            print(f"round {i + 1} (effective GFLOP/s = direct-conv FLOPs / time; "
                  f"SGEMM peak {peak['peak']:.0f} GFLOP/s)")
            print(format_table(rows, ["layer", "mode", "algorithm", "median_ms", "min_ms",
                                      "effective_gflops", "x_torch"]))
        spread = []
        for j, row in enumerate(result["rounds"][0]):
            ratios = [rows[j]["x_torch"] for rows in result["rounds"]]
            if row["algorithm"] != "torch":
                spread.append(dict(layer=row["layer"], mode=row["mode"],
                                   algorithm=row["algorithm"],
                                   x_torch_rounds=" ".join(f"{r:.2f}" for r in ratios),
                                   spread=round(max(ratios) / min(ratios), 2),
                                   x_torch_median=round(statistics.median(ratios), 3)))
        print("ratio to torch per round, and max/min over rounds (the noise)")
        print(format_table(spread, ["layer", "mode", "algorithm", "x_torch_rounds", "spread",
                                    "x_torch_median"]))
        result["spread"] = spread
        out = args.out or f"benchmarks/results/cpu_winograd_{args.backend}.json"
    write_json(out, dict(benchmark="winograd", command=command, backend=args.backend,
                         threads=args.threads, batch=args.batch, machine=machine_info(),
                         **result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
