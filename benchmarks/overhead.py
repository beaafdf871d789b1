"""What a call costs besides its arithmetic: the functional layer's checks and dispatch.

    python -m benchmarks.overhead [--calls 2000] [--out benchmarks/results/cpu_overhead.json]

Each op of a LeNet-style training step runs on a problem so small that its arithmetic is a few
hundred multiply-adds (a (1, 2, 6, 6) input, 3x3 kernels, 2x2 pools, a 16 -> 4 linear), so
its time is what every call pays whatever its size. Per op, after checking that the three
give the same result, it times (microseconds per call, best of five runs of ``--calls``
calls each):

- ``F``: ``minitorch_cnn.functional``'s op on the numba backend: checks, spec, dispatch and
  kernel, what the layers call;
- ``backend``: the numba backend's own function, given the spec ready-made; ``F_adds``
  (``F - backend``) is what the functional layer adds;
- ``torch``: ``torch.nn.functional``'s op (for ``conv2d_backward``, the aten op
  ``convolution_backward`` that autograd calls), on the same number of threads.

Then one whole training step of LeNet-5 at batch 1 (:mod:`benchmarks.train_step`'s step, our
layers against ``torch.nn``), where these costs are all there is.
"""

from __future__ import annotations

import argparse
import sys
import timeit

import numpy as np

from benchmarks.timing import (
    format_table,
    machine_info,
    sgemm_peak_gflops,
    time_interleaved,
    write_json,
)


def _ops():
    """``{op: (ours via F, ours via the backend, torch's)}``: three callables, one problem."""
    import torch
    import torch.nn.functional as tF

    from kernels.common import ConvSpec, PoolSpec
    from minitorch_cnn import functional as F
    from minitorch_cnn.backend import kernel_module

    nb = kernel_module("numba")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)  # (N, C_in, H, W)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)  # (C_out, C_in, kH, kW)
    b = rng.standard_normal(3).astype(np.float32)  # (C_out,)
    gy = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)  # (N, C_out, H_out, W_out)
    v = rng.standard_normal((1, 16)).astype(np.float32)  # (N, in_features)
    lw = rng.standard_normal((4, 16)).astype(np.float32)  # (out_features, in_features)
    lb = rng.standard_normal(4).astype(np.float32)  # (out_features,)
    conv = ConvSpec.from_shapes(x.shape, w.shape, (1, 1), (1, 1), (1, 1), 1)
    pool = PoolSpec.from_shape(x.shape, (2, 2), (2, 2), (0, 0))
    tx, tw, tb, tgy, tv, tlw, tlb = map(torch.from_numpy, (x, w, b, gy, v, lw, lb))
    return {
        "conv2d": (lambda: F.conv2d(x, w, b, padding=1, backend="numba"),
                   lambda: nb.conv2d(x, w, b, conv),
                   lambda: tF.conv2d(tx, tw, tb, padding=1)),
        "conv2d_backward": (
            lambda: F.conv2d_backward(gy, x, w, padding=1, backend="numba"),
            lambda: nb.conv2d_backward(gy, x, w, conv),
            lambda: torch.ops.aten.convolution_backward(
                tgy, tx, tw, [3], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, True, True])),
        "max_pool2d": (lambda: F.max_pool2d(x, 2, backend="numba"),
                       lambda: nb.max_pool2d(x, pool),
                       lambda: tF.max_pool2d(tx, 2)),
        "avg_pool2d": (lambda: F.avg_pool2d(x, 2, backend="numba"),
                       lambda: nb.avg_pool2d(x, pool),
                       lambda: tF.avg_pool2d(tx, 2)),
        "relu": (lambda: F.relu(x, backend="numba"), lambda: nb.relu(x), lambda: tF.relu(tx)),
        "linear": (lambda: F.linear(v, lw, lb, backend="numba"),
                   lambda: nb.linear(v, lw, lb),
                   lambda: tF.linear(tv, tlw, tlb)),
    }


def _same(a, b, c) -> None:
    """The three results agree (tuples of gradients compared one by one)."""
    a, b = (r if isinstance(r, tuple) else (r,) for r in (a, b))
    c = tuple(t.numpy() for t in c) if isinstance(c, tuple) else (c.numpy(),)
    for ours, backend, torch_value in zip(a, b, c, strict=True):
        np.testing.assert_allclose(ours, torch_value, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(ours, backend)


def _lenet5_batch1_steps() -> dict:
    """``{"torch": step, "numba": step}``: :mod:`benchmarks.train_step`'s LeNet-5 step on
    one image, each checked against the other."""
    from benchmarks.train_step import _checked_steps
    from minitorch_cnn import models

    rng = np.random.default_rng(0)
    batch = rng.standard_normal((1, 1, 28, 28)).astype(np.float32)  # (N, C, H, W)
    labels = rng.integers(0, 10, 1)
    state = {k: v.astype(np.float32) for k, v in models.lenet5().state_dict().items()}
    return _checked_steps("lenet5", ["numba"], batch, labels, state)


def per_call_us(fn, calls: int, runs: int = 5) -> float:
    """Microseconds per call of ``fn``: the best of ``runs`` runs of ``calls`` calls."""
    return min(timeit.repeat(fn, number=calls, repeat=runs)) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    """Time each op's three ways and the batch-1 LeNet-5 step; print and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/cpu_overhead.json")
    parser.add_argument("--note", default="", help="what the JSON should say of this run")
    args = parser.parse_args(argv)

    import numba
    import torch

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    rows = []
    for op, (ours, backend, theirs) in _ops().items():
        _same(ours(), backend(), theirs())  # and the warm-up that compiles
        us = {name: per_call_us(fn, args.calls)
              for name, fn in (("F", ours), ("backend", backend), ("torch", theirs))}
        rows.append(dict(op=op, F_us=round(us["F"], 1), backend_us=round(us["backend"], 1),
                         F_adds_us=round(us["F"] - us["backend"], 1),
                         torch_us=round(us["torch"], 1),
                         x_torch=round(us["F"] / us["torch"], 2)))
    print(format_table(rows, ["op", "F_us", "backend_us", "F_adds_us", "torch_us", "x_torch"]))
    steps = _lenet5_batch1_steps()
    step = {name: round(t.median_ms, 3)
            for name, t in time_interleaved(steps, repeats=args.steps, warmup=3).items()}
    step["x_torch"] = round(step["numba"] / step["torch"], 2)
    print(f"LeNet-5 training step, batch 1, median of {args.steps}: ours {step['numba']:.2f} ms, "
          f"PyTorch's {step['torch']:.2f} ms ({step['x_torch']:.2f}x)")
    command = " ".join(["python -m benchmarks.overhead", *(sys.argv[1:] if argv is None else argv)])
    write_json(args.out, dict(benchmark="overhead", command=command, threads=args.threads,
                              calls=args.calls, machine=machine_info(),
                              sgemm_gflops=sgemm_peak_gflops(), note=args.note, rows=rows,
                              lenet5_step_batch1_ms=step))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
