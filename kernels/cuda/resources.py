"""What each rung of the conv ladder costs on an H100 / H200, and a model of its speed: no GPU.

    python -m kernels.cuda.resources                  # compile, run ptxas -v, print the table
    python -m kernels.cuda.resources --ptx-dir DIR    # use DIR/*.ptx (``kernels.cuda.ptx --out``)
    python -m kernels.cuda.resources --markdown       # the tables of docs/07-gpu-ladder.md
    python -m kernels.cuda.resources --model          # only the speed model (no compiler needed)

**Resources.** ``ptxas`` (from the PyPI wheel ``nvidia-cuda-nvcc``, pinned in the ``cuda`` and
``dev`` extras to the CUDA version of the NVVM that ``numba-cuda[cu13]`` installs) assembles the
PTX we generate (:mod:`kernels.cuda.ptx`) for ``sm_90`` and, with ``-v``, reports per kernel
the registers per thread, the static shared memory per block, the stack frame and the spill
stores and loads. Threads per block come from the launch (:data:`THREADS`). Occupancy follows
from the limits of compute capability 9.0 (:data:`SM90`, the same for H100 and H200, both
GH100), as the CUDA Occupancy Calculator computes it.

**Speed model** (:func:`model`; a model, not a measurement). Per rung and layer: the FLOPs
(``2*N*C_out*H_out*W_out*C_in_g*kH*kW`` forward; twice that backward), the bytes the kernel
*requests* from global memory (no cache model: what the rung's loop structure asks for, see
:func:`requested_bytes`), their ratio (arithmetic intensity) and the roofline bound on an
H100 SXM: ``time >= max(FLOPs / 67 TFLOP/s, bytes / 3.35 TB/s)`` (:data:`H100_SXM`).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from kernels.common import ConvSpec

SM90 = {  # compute capability 9.0 (H100, H200)
    "registers_per_sm": 65536,
    "max_registers_per_thread": 255,
    "register_allocation_unit": 256,  # registers, allocated per warp
    "shared_memory_per_sm": 228 * 1024,  # bytes, with the largest shared-memory carveout
    "shared_memory_reserved_per_block": 1024,  # bytes the system reserves per block
    "shared_memory_allocation_unit": 128,  # bytes
    "max_threads_per_sm": 2048,
    "max_warps_per_sm": 64,
    "max_blocks_per_sm": 32,
}
SM90_SOURCE = ('NVIDIA CUDA C++ Programming Guide, "Compute Capabilities", table "Technical '
               'Specifications per Compute Capability" (column 9.0), and its "Shared Memory" '
               'section for compute capability 9.x (228 KB per SM, 1 KB reserved per block); '
               "allocation units as in the CUDA Occupancy Calculator")
H100_SXM = {"fp32_tflops": 67.0, "hbm_tb_per_s": 3.35}
H100_SOURCE = ('NVIDIA H100 Tensor Core GPU datasheet, H100 SXM column: FP32 67 teraFLOPS, '
               "GPU memory bandwidth 3.35 TB/s (the H200 SXM has the same FP32 peak and "
               "4.8 TB/s)")

# threads per block of each kernel family; tiled's block is at most 16 x 16 (chosen per layer)
THREADS = {"naive": 256, "direct": 256, "tiled": 256, "igemm": 256}
RUNG_OF_KERNEL = [  # (kernel-name pattern, rung, what it computes)
    (r"conv2d_naive$", "naive", "forward"),
    (r"conv2d_grad_input_naive$", "naive", "grad_input"),
    (r"conv2d_grad_weight_naive$", "naive", "grad_weight"),
    (r"conv2d_direct$", "direct", "forward"),
    (r"conv2d_grad_input_direct$", "direct", "grad_input"),
    (r"conv2d_grad_weight_direct$", "direct", "grad_weight"),
    (r"conv2d_tiled$", "tiled", "forward"),
    (r"conv2d_(igemm_\w+)\[(\w+)\]$", None, None),  # rungs 4-7: conv2d_<rung>[<mode>]
    (r"conv2d_igemm\[(\w+),(\w+)\]$", "igemm", None),  # rung 8: conv2d_igemm[<mode>,<tile>]
]


class Resources(NamedTuple):
    """One kernel's row of the report."""

    rung: str
    kernel: str  # forward / grad_input / grad_weight (igemm: with its tile)
    dtype: str
    registers: int  # per thread
    shared_bytes: int  # static shared memory per block
    threads: int  # per block
    stack_bytes: int
    spill_stores: int  # bytes
    spill_loads: int  # bytes
    blocks_per_sm: int
    occupancy: float  # resident warps / 64

    @property
    def spills(self) -> bool:
        return self.spill_stores > 0 or self.spill_loads > 0


def occupancy(registers: int, shared_bytes: int, threads: int, limits=SM90) -> tuple[int, float]:
    """``(blocks per SM, warps resident / max warps)`` of a kernel on one SM.

    The smallest of four limits: registers (allocated per warp in units of 256), shared
    memory (plus the 1 KB the system reserves per block, in units of 128 bytes), threads and
    blocks per SM.
    """
    warps = -(-threads // 32)
    unit = limits["register_allocation_unit"]
    regs_per_warp = -(-max(registers, 1) * 32 // unit) * unit
    by_regs = (limits["registers_per_sm"] // regs_per_warp) // warps
    smem_unit = limits["shared_memory_allocation_unit"]
    smem = shared_bytes + limits["shared_memory_reserved_per_block"]
    smem = -(-smem // smem_unit) * smem_unit
    by_smem = limits["shared_memory_per_sm"] // smem
    by_threads = limits["max_threads_per_sm"] // (warps * 32)
    blocks = min(by_regs, by_smem, by_threads, limits["max_blocks_per_sm"])
    return blocks, blocks * warps / limits["max_warps_per_sm"]


# --------------------------------------------------------------------------- ptxas


def find_ptxas() -> str | None:
    """The ``ptxas`` of the ``nvidia-cuda-nvcc`` wheel (or on ``PATH``), or ``None``."""
    try:
        import nvidia

        for root in nvidia.__path__:
            for sub in ("cu13/bin", "cuda_nvcc/bin"):
                path = pathlib.Path(root) / sub / "ptxas"
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    except ImportError:
        pass
    return shutil.which("ptxas")


PTXAS_MISSING = ("ptxas not found: install the nvidia-cuda-nvcc wheel "
                 "(pip install -e '.[dev]' or '.[cuda]')")


def ptxas_report(ptx_path: pathlib.Path, ptxas: str, arch: str = "sm_90") -> dict:
    """Run ``ptxas -v`` on one PTX file (one kernel): registers, smem, stack and spill bytes."""
    proc = subprocess.run([ptxas, "-v", f"-arch={arch}", str(ptx_path), "-o", os.devnull],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"ptxas failed on {ptx_path.name}:\n{proc.stderr[-2000:]}")
    text = proc.stderr + proc.stdout

    def number(pattern: str) -> int:
        found = re.search(pattern, text)
        return int(found.group(1)) if found else 0

    return {
        "registers": number(r"Used (\d+) registers"),
        "shared_bytes": number(r"(\d+) bytes smem"),
        "stack_bytes": number(r"(\d+) bytes stack frame"),
        "spill_stores": number(r"(\d+) bytes spill stores"),
        "spill_loads": number(r"(\d+) bytes spill loads"),
    }


def classify(name: str) -> tuple[str, str] | None:
    """``(rung, kernel)`` of a kernel name of :mod:`kernels.cuda.ptx`, or ``None`` (not conv)."""
    for pattern, rung, kernel in RUNG_OF_KERNEL:
        found = re.match(pattern, name)
        if not found:
            continue
        if rung is None:
            return found.group(1), found.group(2)
        if rung == "igemm":
            return rung, f"{found.group(1)} {found.group(2)}"
        return rung, kernel
    return None


def threads_of(rung: str) -> int:
    """Threads per block of rung ``rung``'s kernels."""
    from .conv_gemm import RUNGS

    return RUNGS[rung].threads if rung in RUNGS else THREADS[rung]


def ptx_file(ptx_dir: pathlib.Path, name: str, dtype: str) -> pathlib.Path:
    """Where ``python -m kernels.cuda.ptx --out ptx_dir`` wrote kernel ``name``'s PTX."""
    safe = name.replace("[", "_").replace("]", "").replace(",", "_")
    return ptx_dir / f"{safe}_{dtype}.ptx"


def conv_kernels() -> list[tuple[str, str]]:
    """``[(name, dtype)]`` of every conv-ladder kernel, in :mod:`kernels.cuda.ptx`'s order."""
    from .ptx import kernel_signatures

    return [(name, dtype) for name, dtype, _, _ in kernel_signatures() if classify(name)]


def compile_conv_ptx(ptx_dir: pathlib.Path, cc=(9, 0)) -> None:
    """Write the PTX of every conv-ladder kernel to ``ptx_dir`` (as ``kernels.cuda.ptx``)."""
    from numba.cuda import compile_ptx

    from .ptx import kernel_signatures

    for name, dtype, dispatcher, signature in kernel_signatures():
        if classify(name):
            ptx, _ = compile_ptx(dispatcher.py_func, signature, cc=cc)
            ptx_file(ptx_dir, name, dtype).write_text(ptx)


def report(ptx_dir: pathlib.Path | None = None, ptxas: str | None = None) -> list[Resources]:
    """Every conv rung's kernels, float32 and float64, through ``ptxas -v`` for sm_90.

    ``ptx_dir``: PTX already written by ``python -m kernels.cuda.ptx --out``; ``None``
    compiles the conv kernels here (not under ``NUMBA_ENABLE_CUDASIM``).
    """
    ptxas = ptxas or find_ptxas()
    if ptxas is None:
        raise FileNotFoundError(PTXAS_MISSING)
    if ptx_dir is None:
        ptx_dir = pathlib.Path(tempfile.mkdtemp(prefix="conv_ptx_"))
        compile_conv_ptx(ptx_dir)
    kernels = conv_kernels()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # ptxas: seconds each
        infos = list(pool.map(lambda nd: ptxas_report(ptx_file(ptx_dir, *nd), ptxas), kernels))
    rows = []
    for (name, dtype), info in zip(kernels, infos, strict=True):
        rung, kernel = classify(name)
        threads = threads_of(rung)
        blocks, occ = occupancy(info["registers"], info["shared_bytes"], threads)
        rows.append(Resources(rung=rung, kernel=kernel, dtype=dtype, threads=threads,
                              blocks_per_sm=blocks, occupancy=occ, **info))
    order = {rung: k for k, rung in enumerate(rung_names())}
    return sorted(rows, key=lambda r: (order[r.rung], r.dtype))  # stable: kernels keep order


def rung_names() -> tuple[str, ...]:
    """The ladder's rungs, 1 to 8 (``kernels.cuda.ALGORITHMS``, without importing numba.cuda)."""
    from .conv_gemm import RUNGS

    return ("naive", "direct", "tiled", *RUNGS, "igemm")


def resources_table(rows: list[Resources]) -> str:
    """The report as a Markdown table."""
    lines = ["| rung | kernel | dtype | registers | shared bytes | threads | spills "
             "(st/ld bytes) | blocks/SM | occupancy |",
             "|---|---|---|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(f"| {r.rung} | {r.kernel} | {r.dtype} | {r.registers} | {r.shared_bytes} "
                     f"| {r.threads} | {r.spill_stores}/{r.spill_loads} | {r.blocks_per_sm} "
                     f"| {100 * r.occupancy:.0f}% |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the speed model


class Modelled(NamedTuple):
    """The model of one rung on one layer, one direction (forward or backward)."""

    flops: float
    bytes: float  # requested from global memory
    intensity: float  # FLOPs per byte
    bound_ms: float  # roofline lower bound on the time, H100 SXM
    bound_tflops: float  # FLOPs / bound time


def _gemm_bytes(problem, groups, tile, size):
    """A tiled GEMM's global traffic: A re-read per column block, B per row block, C once.

    ``problem`` is the GEMM's ``(M, R, COLS)`` (rows, reduction, columns) per group, ``tile``
    the block's ``(BM, BN)``.
    """
    (M, R, COLS), (BM, BN) = problem, tile
    return size * groups * (M * R * -(-COLS // BN) + R * COLS * -(-M // BM) + M * COLS)


def _gemm_tile(rung: str, M: int, COLS: int, groups: int, sms: int) -> tuple[int, int]:
    from .conv_gemm import RUNGS
    from .conv_igemm import CONFIGS, DEFAULT_TILE

    if rung in RUNGS:
        return RUNGS[rung].BM, RUNGS[rung].BN
    # conv_igemm.pick_tile, with the H100 SXM's 132 SMs
    if M <= 16:
        tile = "16x256"
    elif M >= 128 and -(-M // 128) * -(-COLS // 128) * groups >= sms:
        tile = "128x128"
    else:
        tile = DEFAULT_TILE
    return CONFIGS[tile][:2]


def requested_bytes(rung: str, spec: ConvSpec, direction: str, size: int = 4,
                    sms: int = 132) -> float:
    """Bytes rung ``rung`` requests from global memory for one pass over ``spec``.

    - ``naive`` / ``direct``: no on-chip reuse, so one value of the operand that varies
      across a warp per multiply-add (the other is the same for the whole warp: a broadcast),
      plus the output. ``direct`` is coalesced (``size`` bytes per value); ``naive``'s warp
      touches a separate 32-byte sector per thread (32 bytes per value).
    - ``tiled`` (forward): per block, the input patch and the filter slice of each input
      channel; its backward is igemm's.
    - GEMM rungs: per group, ``A`` once per column block, ``B`` once per row block, ``C``
      once (:func:`_gemm_bytes`), for each of the problem's GEMMs (backward: grad_input per
      stride phase, grad_weight). Rungs 6 and 7 have the same tile: the same bytes.
    """
    from .conv_igemm import grad_input_phases

    C_in_g, C_out_g = spec.C_in // spec.groups, spec.C_out // spec.groups
    K = C_in_g * spec.kH * spec.kW
    n_out = spec.N * spec.C_out * spec.H_out * spec.W_out
    n_in = spec.N * spec.C_in * spec.H * spec.W
    macs = n_out * K
    if rung in ("naive", "direct"):
        per = 32 if rung == "naive" else size
        if direction == "forward":
            return per * (macs + n_out)
        return per * (2 * macs + n_in + spec.C_out * K)
    if rung == "tiled" and direction == "forward":
        from .conv_tiled import choose_tile

        tile = choose_tile(spec)
        if tile is not None:
            th, tw = tile
            patch = (((th - 1) * spec.stride_h + (spec.kH - 1) * spec.dil_h + 1)
                     * ((tw - 1) * spec.stride_w + (spec.kW - 1) * spec.dil_w + 1))
            n_blocks = (spec.N * spec.C_out * -(-spec.H_out // th) * -(-spec.W_out // tw))
            return size * (n_blocks * C_in_g * (patch + spec.kH * spec.kW) + n_out)
        return requested_bytes("direct", spec, direction, size)
    gemm_rung = "igemm" if rung == "tiled" else rung
    if direction == "forward":
        problems = [(C_out_g, K, spec.N * spec.H_out * spec.W_out)]
    else:
        problems = [(C_in_g, C_out_g * p.ni * p.nj, spec.N * p.H_p * p.W_p)
                    for p in grad_input_phases(spec)]
        problems.append((C_out_g, spec.N * spec.H_out * spec.W_out, K))
    total = 0
    for M, R, COLS in problems:
        tile = _gemm_tile(gemm_rung, M, COLS, spec.groups, sms)
        total += _gemm_bytes((M, R, COLS), spec.groups, tile, size)
    return total


def model(rung: str, spec: ConvSpec, direction: str, size: int = 4,
          machine=H100_SXM) -> Modelled:
    """The roofline model of rung ``rung`` on ``spec`` (``direction`` forward / backward)."""
    flops = 2.0 * spec.N * spec.C_out * spec.H_out * spec.W_out * (
        spec.C_in // spec.groups) * spec.kH * spec.kW
    if direction == "backward":
        flops *= 2
    nbytes = float(requested_bytes(rung, spec, direction, size))
    seconds = max(flops / (machine["fp32_tflops"] * 1e12),
                  nbytes / (machine["hbm_tb_per_s"] * 1e12))
    return Modelled(flops=flops, bytes=nbytes, intensity=flops / nbytes,
                    bound_ms=seconds * 1e3, bound_tflops=flops / seconds / 1e12)


def spec_of_case(case) -> ConvSpec:
    """The :class:`ConvSpec` of a ``benchmarks.suite.ConvCase``."""
    return ConvSpec.from_shapes(case.x_shape, case.w_shape, (case.stride,) * 2,
                                (case.padding,) * 2, (1, 1), case.groups)


def model_table(cases=None) -> str:
    """The model for ResNet-18's layers (``benchmarks.suite.RESNET18_CONV``), Markdown.

    One row per layer and direction; per rung the bound in TFLOP/s (a model, H100 SXM).
    """
    if cases is None:
        from benchmarks.suite import RESNET18_CONV as cases
    rungs = rung_names()
    lines = ["| layer | pass | GFLOP | " + " | ".join(rungs) + " |",
             "|---|---|--:|" + "--:|" * len(rungs)]
    for case in cases:
        spec = spec_of_case(case)
        for direction in ("forward", "backward"):
            cells = []
            for rung in rungs:
                m = model(rung, spec, direction)
                cells.append(f"{m.intensity:.1f} / {m.bound_tflops:.1f}")
            flops = model("igemm", spec, direction).flops
            lines.append(f"| {case.name} | {direction[:3]} | {flops / 1e9:.1f} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def markdown(rows: list[Resources]) -> str:
    """The two generated blocks of ``docs/07-gpu-ladder.md`` (resources, then the model)."""
    return (f"{resources_table(rows)}\n\nLimits (sm_90): {SM90_SOURCE}.\n\n"
            "<!-- model -->\n\nModel, not measurement: arithmetic intensity (FLOP per byte "
            "requested) / roofline bound (TFLOP/s) on an H100 SXM (FP32 67 TFLOP/s, HBM3 "
            f"3.35 TB/s; {H100_SOURCE}), float32, batch 32.\n\n{model_table()}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ptx-dir", type=pathlib.Path, default=None,
                        help="PTX written by `python -m kernels.cuda.ptx --out DIR`")
    parser.add_argument("--markdown", action="store_true", help="print the docs' tables")
    parser.add_argument("--model", action="store_true", help="print only the speed model")
    args = parser.parse_args(argv)
    if args.model:
        print(model_table())
        return 0
    try:
        rows = report(args.ptx_dir)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 3
    if args.markdown:
        print(markdown(rows))
        return 0
    print(f"{'rung':12s} {'kernel':22s} {'dtype':8s} {'regs':>5s} {'smem B':>7s} "
          f"{'threads':>7s} {'spill st/ld':>11s} {'blocks/SM':>9s} {'occupancy':>9s}")
    for r in rows:
        print(f"{r.rung:12s} {r.kernel:22s} {r.dtype:8s} {r.registers:5d} {r.shared_bytes:7d} "
              f"{r.threads:7d} {f'{r.spill_stores}/{r.spill_loads}':>11s} "
              f"{r.blocks_per_sm:9d} {100 * r.occupancy:8.0f}%")
    print(f"\nlimits (sm_90, H100 / H200): {SM90}\nsource: {SM90_SOURCE}")
    spilled = [r for r in rows if r.spills]
    print(f"spills: {len(spilled)} kernels" + "".join(
        f"\n  {r.rung} {r.kernel} {r.dtype}" for r in spilled))
    return 0


if __name__ == "__main__":
    sys.exit(main())
