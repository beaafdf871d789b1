"""Where the numba conv loses to PyTorch on ResNet-18's 3x3 layers: a profile of the gap.

    python -m benchmarks.conv_gap [--repeats 7] [--out benchmarks/results/cpu_conv_gap.json]

The numba backend's 3x3 conv is im2col + one BLAS SGEMM per chunk (path ``"gemm"``,
``kernels/numba_cpu/conv_gemm.py``). For each 3x3 stride-1 layer of ResNet-18 (batch 32) this
times, interleaved:

- ``torch``: ``torch.nn.functional.conv2d`` (oneDNN), the target;
- ``numba``: ``F.conv2d(..., backend="numba")``, the whole conv;
- ``sgemm``: NumPy's SGEMM of the same matrix product, ``weight (C_out, C_in*9) @ columns
  (C_in*9, N*H*W)``, on the already-built columns: what the conv would cost with a free im2col;
- ``im2col``: building that column matrix with NumPy (a strided copy, 9x the input's bytes).

So ``numba - sgemm`` is roughly what im2col and the copy-out cost, and ``sgemm / torch`` how
far the BLAS GEMM alone is from oneDNN's convolution. Results are checked against torch
before timing. Threads: 2 for torch, numba and BLAS (``--threads``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.timing import format_table, machine_info, time_interleaved, write_json

LAYERS = [  # (C, H = W, C_out): ResNet-18's 3x3 stride-1 convs at batch 32
    (64, 56, 64),
    (128, 28, 128),
    (256, 14, 256),
    (512, 7, 512),
]


def main(argv: list[str] | None = None) -> int:
    """Run the profile; print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/cpu_conv_gap.json")
    args = parser.parse_args(argv)

    import numba
    import torch
    from numpy.lib.stride_tricks import sliding_window_view
    from threadpoolctl import threadpool_limits

    from minitorch_cnn import functional as F

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(args.threads, user_api="blas"):
        for C, H, C_out in LAYERS:
            N, K, P = args.batch, C * 9, H * H
            x = rng.standard_normal((N, C, H, H)).astype(np.float32)  # (N, C, H, W)
            w = rng.standard_normal((C_out, C, 3, 3)).astype(np.float32)  # (C_out, C, 3, 3)
            xt, wt = torch.from_numpy(x), torch.from_numpy(w)
            y = F.conv2d(x, w, padding=1, backend="numba")
            expected = torch.nn.functional.conv2d(xt, wt, padding=1).numpy()
            scale = np.abs(expected).max()
            assert np.abs(y - expected).max() <= 1e-4 * scale, "numba conv differs from torch"

            xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # (N, C, H + 2, W + 2)
            cols = np.empty((C, 3, 3, N, H, H), np.float32)  # (C, kH, kW, N, H_out, W_out)

            def im2col(xp=xp, cols=cols):
                windows = sliding_window_view(xp, (3, 3), axis=(2, 3))  # (N, C, H, W, 3, 3)
                cols[...] = windows.transpose(1, 4, 5, 0, 2, 3)

            im2col()
            w2, cols2 = w.reshape(C_out, K), cols.reshape(K, N * P)
            out = np.empty((C_out, N * P), np.float32)  # (C_out, N*H_out*W_out)
            timings = time_interleaved({
                "torch": lambda xt=xt, wt=wt: torch.nn.functional.conv2d(xt, wt, padding=1),
                "numba": lambda x=x, w=w: F.conv2d(x, w, padding=1, backend="numba"),
                "sgemm": lambda w2=w2, cols2=cols2, out=out: np.matmul(w2, cols2, out=out),
                "im2col": im2col,
            }, repeats=args.repeats, warmup=1)
            flops = 2 * N * C_out * P * K
            torch_ms = timings["torch"].median_ms
            for name, timing in timings.items():
                rows.append(dict(
                    layer=f"{C}->{C_out} 3x3 @{H}", part=name,
                    median_ms=round(timing.median_ms, 2), min_ms=round(timing.min_ms, 2),
                    gflops=(round(flops / timing.median_ms / 1e6, 1)
                            if name != "im2col" else None),
                    x_torch=round(timing.median_ms / torch_ms, 2)))
    columns = ["layer", "part", "median_ms", "min_ms", "gflops", "x_torch"]
    print(format_table(rows, columns))
    command = " ".join(["python -m benchmarks.conv_gap", *(sys.argv[1:] if argv is None else argv)])
    write_json(args.out, dict(
        benchmark="conv_gap", command=command,
        threads=args.threads, batch=args.batch, machine=machine_info(), rows=rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
