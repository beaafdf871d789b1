"""Time the ``cuda`` backend on a GPU against torch (cuDNN), layer by layer.

    python -m benchmarks.gpu_ops [--quick] [--repeats 20] [--warmup 3] [--rehearse]

The layer suite of ``benchmarks/suite.py`` (LeNet-5, the MNIST CNN, ResNet-18; ``--quick``:
the small layers and two ResNet layers), float32, arrays resident on the device (torch CUDA
tensors handed to our kernels through ``__cuda_array_interface__``, so nothing is copied):

- conv forward, each rung of the ladder (:data:`CONV_RUNGS`, rungs 1 to 8 of
  ``docs/07-gpu-ladder.md``), against ``torch.nn.functional.conv2d`` with
  ``torch.backends.cudnn.allow_tf32 = False`` (FP32 against FP32) and again with TF32
  allowed (what PyTorch users get by default);
- conv backward (grad_x, grad_weight, grad_bias; every rung but ``tiled``, which runs
  igemm's backward) against ``torch.ops.aten.convolution_backward``, the op autograd calls,
  with the same two settings;
- the production rung's free parameter, swept: igemm's forward with each tile of
  ``conv_igemm.CONFIGS`` (rows ``igemm[64x64]`` ...), as llm.c sweeps block sizes;
- pooling forward and backward against torch's CUDA pooling.

``torch.backends.cudnn.benchmark = True`` (cuDNN picks its fastest algorithm per shape).
Order of work, as in llm.c's ``dev/cuda``: check ours against torch (TF32 off) on the device
first, warm up (JIT compiles, cuDNN autotunes), then time every call between two CUDA events
and report the median and the min. A rung whose warm-up call takes longer than
``--max-call-s`` is timed once (the direct rung's grad_weight on ResNet layers takes seconds).

TFLOP/s counts ``2*N*C_out*H_out*W_out*(C_in/groups)*kH*kW`` for a forward and twice that
for a backward (grad_x + grad_weight); "% peak" divides by the GPU's FP32 (non-tensor) peak
from :data:`FP32_PEAK_TFLOPS` ("unknown" for a GPU not in the table). "vs cuDNN" is
``torch_ms / ours_ms``: 1.0 is parity, 0.5 half as fast. "model" is the rung's roofline
bound from the speed model of :mod:`kernels.cuda.resources` (H100 SXM: FP32 67 TFLOP/s, HBM3
3.35 TB/s; a model, whatever GPU runs) and "of model" the achieved fraction of it,
``bound_ms / ours_ms``. Pooling reports GB/s (bytes read and written once) instead of
TFLOP/s.

Writes ``benchmarks/results/gpu_ops_<device>.json`` and a PNG beside it; prints a
fixed-width table and the geometric means the issue asks about (igemm forward+backward vs
cuDNN FP32 over the ResNet-18 layers; pooling vs torch). Without a GPU it says so and exits
with status 2; ``--rehearse`` then runs it whole in the Numba CUDA simulator on tiny shapes
(:func:`rehearsal_cases`), torch on the CPU as the reference: a dry run whose timings mean
nothing (:mod:`benchmarks.gpu_device`).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.gpu_device import NO_GPU_EXIT, Gpu, fill_defaults, open_device
from benchmarks.suite import (
    CONV_SUITE,
    POOL_SUITE,
    QUICK_CONV,
    QUICK_POOL,
    RESNET18_CONV,
    ConvCase,
    PoolCase,
)
from kernels.common import AdaptivePoolSpec, PoolSpec
from minitorch_cnn.io import save_figure, write_text

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TOLERANCE = 1e-3  # float32 vs cuDNN FP32: max |ours - torch| <= 1e-3 * max(1, max |torch|)

FP32_PEAK_TFLOPS = {  # (name pattern, FP32 non-tensor TFLOP/s), first match wins
    "H100 PCIe": 51.2,
    "H100 NVL": 60.0,
    "H100": 67.0,  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    "H200": 67.0,
    "GH200": 67.0,
    "A100": 19.5,
    "L40S": 91.6,
    "L4": 30.3,
    "A10": 31.2,
}
CONV_RUNGS = ("naive", "direct", "tiled", "igemm_smem", "igemm_1d", "igemm_2d", "igemm_nodiv",
              "igemm")  # kernels.cuda.ALGORITHMS, rung 1 to rung 8
BACKWARD_RUNGS = tuple(r for r in CONV_RUNGS if r != "tiled")  # tiled runs igemm's backward
SWEPT_TILES = ("16x256", "64x64", "128x128")  # conv_igemm.CONFIGS: igemm's free parameter


def peak_tflops(device_name: str) -> float | None:
    """FP32 peak of the GPU called ``device_name``, or ``None`` when it is not in the table."""
    for pattern, peak in FP32_PEAK_TFLOPS.items():
        if pattern.lower() in device_name.lower():
            return peak
    return None


def device_slug(device_name: str) -> str:
    """A file-name-safe device name: 'NVIDIA H100 80GB HBM3' -> 'nvidia_h100_80gb_hbm3'."""
    return re.sub(r"[^a-z0-9]+", "_", device_name.lower()).strip("_") or "unknown"


# --------------------------------------------------------------------------- timing


def measure(fn, timer, device: Gpu, warmup: int, repeats: int, max_call_s: float) -> dict:
    """Warm up ``fn``, then time it ``repeats`` times (once when a call is slow); ms.

    ``timer`` is ``device.time_torch`` or ``device.time_ours``.
    """
    last = 0.0
    for _ in range(warmup):
        t0 = time.perf_counter()
        fn()
        device.sync()
        last = time.perf_counter() - t0
    times = timer(fn, 1 if last > max_call_s else repeats)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeats": len(times)}


# --------------------------------------------------------------------------- correctness


def _max_error(ours, ref, device: Gpu) -> float:
    ours_t = device.to_torch(ours)
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    return (ours_t - ref).abs().max().item() / scale if ref.numel() else 0.0


def _checked(name: str, ours, ref, device: Gpu) -> float:
    err = _max_error(ours, ref, device)
    if not err <= TOLERANCE:
        raise AssertionError(f"{name}: ours differs from torch by {err:.2e} (> {TOLERANCE})")
    return err


# --------------------------------------------------------------------------- conv


def bench_conv(case: ConvCase, args, peak: float | None, device: Gpu) -> list[dict]:
    """Rows for one conv layer: cuDNN (FP32, TF32) and each of our rungs, forward, backward."""
    import torch
    import torch.nn.functional as tF

    import kernels.cuda as kc
    from kernels.common import ConvSpec
    from kernels.cuda import conv_igemm
    from kernels.cuda._arrays import to_device
    from kernels.cuda.resources import model

    gen = device.generator(0)
    x = device.randn(case.x_shape, gen)
    w = device.randn(case.w_shape, gen) / math.sqrt(case.w_shape[1] * case.kernel**2)
    gy = device.randn(case.y_shape, gen)
    x_o, w_o, gy_o = device.ours(x), device.ours(w), device.ours(gy)  # what our kernels get
    stride, padding, dilation = (case.stride,) * 2, (case.padding,) * 2, (1, 1)
    spec = ConvSpec.from_shapes(case.x_shape, case.w_shape, stride, padding, dilation,
                                case.groups)  # what the functional layer would build
    flops = case.flops
    rows = []

    def row(op, impl, m, work_flops, ref_ms=None, err=None, rung=None):
        tflops = work_flops / (m["median_ms"] * 1e-3) / 1e12
        bound = None if rung is None else model(rung, spec, op).bound_ms
        rows.append({
            "layer": case.name, "op": op, "impl": impl, "shape": case._asdict(),
            "dtype": "float32", **m, "tflops": tflops,
            "pct_peak": None if peak is None else 100.0 * tflops / peak,
            "vs_cudnn_fp32": None if ref_ms is None else ref_ms / m["median_ms"],
            "max_rel_error": err, "model_bound_ms": bound,
            "of_model_bound": None if bound is None else bound / m["median_ms"],
        })

    def torch_fwd():
        with torch.no_grad():
            return tF.conv2d(x, w, None, stride, padding, dilation, case.groups)

    def torch_bwd():
        return torch.ops.aten.convolution_backward(
            gy, x, w, [case.C_out], list(stride), list(padding), list(dilation), False,
            [0, 0], case.groups, [True, True, True])

    ref_ms = {}
    for tf32 in (False, True):
        torch.backends.cudnn.allow_tf32 = tf32
        tag = "cudnn_tf32" if tf32 else "cudnn_fp32"
        m_f = measure(torch_fwd, device.time_torch, device, args.warmup, args.repeats,
                      args.max_call_s)
        m_b = measure(torch_bwd, device.time_torch, device, args.warmup, args.repeats,
                      args.max_call_s)
        ref_ms.setdefault("forward", m_f["median_ms"])
        ref_ms.setdefault("backward", m_b["median_ms"])
        row("forward", tag, m_f, flops, ref_ms["forward"])
        row("backward", tag, m_b, 2 * flops, ref_ms["backward"])
    torch.backends.cudnn.allow_tf32 = False
    y_ref = torch_fwd()
    gx_ref, gw_ref, gb_ref = torch_bwd()

    for rung in CONV_RUNGS:
        with kc.conv_algorithm(rung):
            def fwd():
                return kc.conv2d(x_o, w_o, None, spec)
            err = _checked(f"{case.name} forward [{rung}]", fwd(), y_ref, device)
            m = measure(fwd, device.time_ours, device, args.warmup, args.repeats,
                        args.max_call_s)
        row("forward", rung, m, flops, ref_ms["forward"], err, rung)
    dx_o, dw_o = to_device(x_o), to_device(w_o)
    for tile in SWEPT_TILES:
        def fwd_tile(tile=tile):
            return conv_igemm.conv2d(dx_o, dw_o, None, spec, tile=tile)
        err = _checked(f"{case.name} forward [igemm {tile}]", fwd_tile(), y_ref, device)
        m = measure(fwd_tile, device.time_ours, device, args.warmup, args.repeats,
                    args.max_call_s)
        row("forward", f"igemm[{tile}]", m, flops, ref_ms["forward"], err, "igemm")
    for rung in BACKWARD_RUNGS:
        with kc.conv_algorithm(rung):
            def bwd():
                return kc.conv2d_backward(gy_o, x_o, w_o, spec)
            gx, gw, gb = bwd()
            err = max(_checked(f"{case.name} grad_x [{rung}]", gx, gx_ref, device),
                      _checked(f"{case.name} grad_weight [{rung}]", gw, gw_ref, device),
                      _checked(f"{case.name} grad_bias [{rung}]", gb, gb_ref, device))
            m = measure(bwd, device.time_ours, device, args.warmup, args.repeats,
                        args.max_call_s)
        row("backward", rung, m, 2 * flops, ref_ms["backward"], err, rung)
    return rows


# --------------------------------------------------------------------------- pooling


def bench_pool(case: PoolCase, args, device: Gpu) -> list[dict]:
    """Rows for one pooling layer: torch and ours, forward and backward."""
    import torch
    import torch.nn.functional as tF

    import kernels.cuda as kc

    gen = device.generator(0)
    x = device.randn(case.x_shape, gen)
    k = (case.kernel,) * 2
    s = k if case.stride is None else (case.stride,) * 2
    p = (case.padding,) * 2
    if case.kind == "adaptive_avg":  # the kernel size is the output size
        spec = AdaptivePoolSpec.from_shape(case.x_shape, k)
        def ours_f():
            return kc.adaptive_avg_pool2d(x_o, spec)
        def ours_b():
            return kc.adaptive_avg_pool2d_backward(gy_o, spec)
        def torch_op(t):
            return tF.adaptive_avg_pool2d(t, k)
    else:
        spec = PoolSpec.from_shape(case.x_shape, k, s, p)
        if case.kind == "max":
            def ours_f():
                return kc.max_pool2d(x_o, spec)
            def ours_b():  # given the forward's argmax, as torch's autograd is
                return kc.max_pool2d_backward(gy_o, x_o, indices, spec)
            def torch_op(t):
                return tF.max_pool2d(t, k, s, p)
        else:
            def ours_f():
                return kc.avg_pool2d(x_o, spec)
            def ours_b():
                return kc.avg_pool2d_backward(gy_o, spec)
            def torch_op(t):
                return tF.avg_pool2d(t, k, s, p)
    gy = device.randn(spec.y_shape, gen)
    x_o, gy_o = device.ours(x), device.ours(gy)
    indices = kc.max_pool2d(x_o, spec, return_indices=True)[1] if case.kind == "max" else None
    xg = x.detach().clone().requires_grad_(True)
    y_graph = torch_op(xg)

    def torch_f():
        with torch.no_grad():
            return torch_op(x)

    def torch_b():
        return torch.autograd.grad(y_graph, xg, gy, retain_graph=True)[0]

    n_in, n_out = x.numel(), gy.numel()
    nbytes = {"forward": 4 * (n_in + n_out), "backward": 4 * (n_in + 2 * n_out)}
    rows = []
    for op, ours, theirs in (("forward", ours_f, torch_f), ("backward", ours_b, torch_b)):
        err = _checked(f"{case.name} {op}", ours(), theirs(), device)
        m_t = measure(theirs, device.time_torch, device, args.warmup, args.repeats,
                      args.max_call_s)
        m_o = measure(ours, device.time_ours, device, args.warmup, args.repeats,
                      args.max_call_s)
        for impl, m in (("torch", m_t), ("cuda", m_o)):
            rows.append({
                "layer": case.name, "op": f"{case.kind}_pool {op}", "impl": impl,
                "shape": case._asdict(), "dtype": "float32", **m,
                "gbps": nbytes[op] / (m["median_ms"] * 1e-3) / 1e9,
                "vs_torch": m_t["median_ms"] / m["median_ms"],
                "max_rel_error": err if impl == "cuda" else None,
            })
    return rows


# --------------------------------------------------------------------------- reporting


def _fmt(value, spec, width):
    return f"{'-':>{width}}" if value is None else f"{value:{width}{spec}}"


def format_table(conv_rows: list[dict], pool_rows: list[dict]) -> str:
    """The fixed-width table printed at the end (one line per layer, op and implementation)."""
    lines = [f"{'layer':44s} {'op':9s} {'impl':11s} {'median ms':>10s} {'min ms':>9s} "
             f"{'TFLOP/s':>8s} {'% peak':>7s} {'vs cuDNN':>9s} {'model ms':>9s} "
             f"{'of model':>8s}"]
    lines.append("-" * len(lines[0]))
    for r in conv_rows:
        lines.append(
            f"{r['layer'][:44]:44s} {r['op']:9s} {r['impl']:11s} {r['median_ms']:10.3f} "
            f"{r['min_ms']:9.3f} {r['tflops']:8.2f} {_fmt(r['pct_peak'], '.1f', 7)} "
            f"{_fmt(r['vs_cudnn_fp32'], '.2f', 9)} {_fmt(r['model_bound_ms'], '.3f', 9)} "
            f"{_fmt(r['of_model_bound'], '.2f', 8)}")
    if pool_rows:
        lines.append("")
        lines.append(f"{'layer':44s} {'op':20s} {'impl':6s} {'median ms':>10s} {'min ms':>9s} "
                     f"{'GB/s':>8s} {'vs torch':>9s}")
        lines.append("-" * len(lines[-1]))
        for r in pool_rows:
            lines.append(
                f"{r['layer'][:44]:44s} {r['op']:20s} {r['impl']:6s} {r['median_ms']:10.3f} "
                f"{r['min_ms']:9.3f} {r['gbps']:8.1f} {r['vs_torch']:9.2f}")
    return "\n".join(lines)


def _geomean(values) -> float | None:
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summary(conv_rows: list[dict], pool_rows: list[dict]) -> dict:
    """The issue's targets: igemm fwd+bwd vs cuDNN FP32 over ResNet-18; pooling vs torch.

    Also each rung's forward+backward geomean vs cuDNN FP32 (``tiled``: its forward with
    igemm's backward), to check that every rung beats the one before.
    """
    resnet = {c.name for c in RESNET18_CONV}
    by = {(r["layer"], r["op"], r["impl"]): r for r in conv_rows}

    def ratios_of(rung):
        ratios = []
        for layer in sorted({r["layer"] for r in conv_rows} & resnet):
            ours = [by.get((layer, "forward", rung)),
                    by.get((layer, "backward", "igemm" if rung == "tiled" else rung))]
            ref = [by.get((layer, op, "cudnn_fp32")) for op in ("forward", "backward")]
            if all(ours) and all(ref):
                ratios.append(sum(r["median_ms"] for r in ref)
                              / sum(r["median_ms"] for r in ours))
        return ratios

    ratios = ratios_of("igemm")
    pool = [r["vs_torch"] for r in pool_rows if r["impl"] == "cuda"]
    return {
        "igemm_fwd_bwd_vs_cudnn_fp32_geomean_resnet18": _geomean(ratios),
        "rung_fwd_bwd_vs_cudnn_fp32_geomean_resnet18": {
            rung: _geomean(ratios_of(rung)) for rung in CONV_RUNGS},
        "resnet18_layers": len(ratios),
        "pool_vs_torch_geomean": _geomean(pool),
        "targets": {"igemm_fwd_bwd_vs_cudnn_fp32": 0.5, "pool_vs_torch": 0.8},
    }


def plot(conv_rows: list[dict], path: Path) -> Path | None:
    """Bar chart of TFLOP/s per layer for every implementation (forward and backward)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    layers = list(dict.fromkeys(r["layer"] for r in conv_rows))
    impls = list(dict.fromkeys(r["impl"] for r in conv_rows))
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.9 * len(layers)), 9), sharex=True)
    width = 0.8 / max(len(impls), 1)
    for ax, op in zip(axes, ("forward", "backward"), strict=True):
        for k, impl in enumerate(impls):
            values = {r["layer"]: r["tflops"] for r in conv_rows
                      if r["op"] == op and r["impl"] == impl}
            xs = [i + k * width for i, layer in enumerate(layers) if layer in values]
            ys = [values[layer] for layer in layers if layer in values]
            if xs:
                ax.bar(xs, ys, width, label=impl)
        ax.set_ylabel(f"{op} TFLOP/s")
        ax.set_yscale("log")
        ax.legend(fontsize=7, ncol=len(impls))
    axes[1].set_xticks([i + 0.4 - width / 2 for i in range(len(layers))])
    axes[1].set_xticklabels([name.split(" ")[0] for name in layers], rotation=60, ha="right",
                            fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


def write_results(payload: dict, device_name: str, out_dir: Path = RESULTS_DIR) -> Path:
    """Write ``gpu_ops_<device>.json`` (and the PNG beside it); return the JSON path.

    A rehearsal's file is ``gpu_ops_rehearsal.json`` whatever ``device_name`` says.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = "rehearsal" if payload.get("rehearsal") else device_slug(device_name)
    path = out_dir / f"gpu_ops_{slug}.json"
    write_text(path, json.dumps(payload, indent=2) + "\n")
    plot(payload["conv"], path.with_suffix(".png"))
    return path


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def rehearsal_cases() -> tuple[list[ConvCase], list[PoolCase]]:
    """Tiny twins of some layers of the suite (same names) for ``--rehearse``.

    Two convs (LeNet-5's padded 5x5, a ResNet 3x3) and three pooling layers (avg, max 3x3
    stride 2 padded, adaptive); the convs at batch 1 on at most 2 / 3 channels and 7x7
    pixels, the pools at batch 2 on 3 channels and 9x9: every kernel of every rung runs, on
    partial tiles, in the simulator.
    """
    names = {"lenet5.conv1", "resnet18.layer2"}
    convs = [c._replace(N=1, C_in=min(c.C_in, 2), C_out=min(c.C_out, 3), H=min(c.H, 7),
                        W=min(c.W, 7))
             for c in CONV_SUITE if c.name.split(" ")[0] in names]
    pools = [p._replace(N=2, C=min(p.C, 3), H=min(p.H, 9), W=min(p.W, 9)) for p in POOL_SUITE
             if p.name.split(" ")[0] in ("lenet5.pool1", "resnet18.maxpool", "resnet18.avgpool")]
    return convs, pools


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the cuda backend (each conv rung, pooling) against torch cuDNN.")
    parser.add_argument("--quick", action="store_true", help="the small layers + two ResNet ones")
    parser.add_argument("--rehearse", action="store_true",
                        help="dry run in the Numba CUDA simulator on tiny shapes, torch on the "
                             "CPU as the reference (checks everything, times nothing real)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls per measurement (default 20; rehearsal 1)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed calls first: JIT, autotune (default 3; rehearsal 0)")
    parser.add_argument("--max-call-s", type=float, default=1.0,
                        help="a warm-up call slower than this is timed once, not --repeats times")
    parser.add_argument("--no-pool", action="store_true", help="skip the pooling layers")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where the JSON goes (default benchmarks/results; rehearsal: a "
                             "new temporary folder, so no simulator figures land in results)")
    args = parser.parse_args(argv)

    device = open_device(args.rehearse)
    if isinstance(device, str):
        print(f"benchmarks.gpu_ops needs a CUDA GPU: {device}", file=sys.stderr)
        return NO_GPU_EXIT
    fill_defaults(args, device, repeats=(20, 1), warmup=(3, 0))  # rehearsal: the check warms up
    if args.out_dir is None:
        args.out_dir = (Path(tempfile.mkdtemp(prefix="gpu_ops_rehearsal_")) if device.rehearsal
                        else RESULTS_DIR)

    import torch

    torch.backends.cudnn.benchmark = True
    peak = None if device.rehearsal else peak_tflops(device.name)
    print(f"device: {device.name}; FP32 peak: "
          f"{'unknown' if peak is None else f'{peak} TFLOP/s'}", flush=True)
    if device.rehearsal:
        conv_cases, pool_cases = rehearsal_cases()
    else:
        conv_cases = QUICK_CONV if args.quick else CONV_SUITE
        pool_cases = QUICK_POOL if args.quick else POOL_SUITE
    if args.no_pool:
        pool_cases = []
    conv_rows, pool_rows = [], []
    for case in conv_cases:
        print(f"  {case.name} ...", flush=True)
        conv_rows += bench_conv(case, args, peak, device)
    for case in pool_cases:
        print(f"  {case.name} ...", flush=True)
        pool_rows += bench_pool(case, args, device)

    payload = {
        "benchmark": "gpu_ops", "device": device.name, "rehearsal": device.rehearsal,
        "fp32_peak_tflops": peak, "quick": args.quick, "repeats": args.repeats,
        "warmup": args.warmup, "cudnn_benchmark": True, "versions": device.versions(),
        "git_sha": _git_sha(), "machine": platform.node(),
        "command": "python -m benchmarks.gpu_ops " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "timing": ("wall clock (simulator)" if device.rehearsal
                   else "CUDA events around each call, median and min"),
        "flops": "2*N*C_out*H_out*W_out*(C_in/groups)*kH*kW forward; twice that backward",
        "conv": conv_rows, "pool": pool_rows, "summary": summary(conv_rows, pool_rows),
    }
    print()
    print(format_table(conv_rows, pool_rows))
    print()
    for key, value in payload["summary"].items():
        print(f"{key}: {value if not isinstance(value, float) else f'{value:.3f}'}")
    path = write_results(payload, device.name, args.out_dir)
    print(f"wrote {path} and {path.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
