"""Every CUDA kernel compiles to PTX for sm_90 (H100 / H200) with the real compiler.

The simulator runs Python semantics and accepts kernels the CUDA compiler rejects; this test
runs ``numba.cuda.compile_ptx`` (NVVM from the ``numba-cuda[cu13]`` wheels, no GPU needed) on
every kernel, float32 and float64, in one subprocess without ``NUMBA_ENABLE_CUDASIM`` (the
simulator cannot compile, and this process may already have imported ``numba.cuda`` in
simulator mode). It also checks that the implicit-GEMM kernels keep their register blocks in
registers: PTX with ``.local`` memory would mean the ``TM x TN`` loops were not unrolled.

The same PTX then goes through ``ptxas -v`` (``kernels.cuda.resources``, the
``nvidia-cuda-nvcc`` wheel of the ``dev`` extra): no GEMM rung of the conv ladder may spill,
and the resource table of ``docs/07-gpu-ladder.md`` must be the one the tool prints now.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def ptx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ptx")


@pytest.fixture(scope="module")
def ptx_report(ptx_dir):
    pytest.importorskip("numba.cuda")
    env = _env()
    proc = subprocess.run(
        [sys.executable, "-m", "kernels.cuda.ptx", "--cc", "9.0", "--out", str(ptx_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    from kernels.cuda.ptx import NVVM_MISSING

    if proc.returncode == NVVM_MISSING:
        pytest.skip(f"NVVM (the CUDA compiler) is not installed: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, (
        f"PTX compilation failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    return proc.stdout.splitlines()


def test_every_kernel_compiles_for_sm90_float32_and_float64(ptx_report):
    assert ptx_report[-1].startswith("compiled ") and ptx_report[-1].endswith("sm_90")
    lines = [line for line in ptx_report[:-1] if line.strip()]
    names = {tuple(line.split()[:2]) for line in lines}
    expected = [
        "conv2d_direct", "conv2d_grad_input_direct", "conv2d_grad_weight_direct",
        "conv2d_naive", "conv2d_grad_input_naive", "conv2d_grad_weight_naive",
        "conv2d_tiled", "conv2d_grad_bias", "sum_splits", "max_pool2d_forward",
        "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
        "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward", "pad_bottom_right",
        "pad_forward", "pad_backward",
        # the transposed conv's bias; adaptive max pooling and max unpooling
        "add_channel_bias", "adaptive_max_pool2d_forward", "adaptive_max_pool2d_backward",
        "max_unpool2d_forward", "max_unpool2d_backward",
        # kernels/cuda/batch_norm.py
        "batch_norm_stats", "batch_norm_update", "batch_norm_affine", "batch_norm_apply",
        "batch_norm_grad_sums", "batch_norm_grad_coef", "batch_norm_grad_x",
        # kernels/cuda/elementwise.py
        "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
        "tanh_forward", "tanh_backward", "add_elementwise",
        "leaky_relu_forward", "leaky_relu_backward", "elu_forward", "elu_backward",
        "gelu_forward_none", "gelu_backward_none", "gelu_forward_tanh", "gelu_backward_tanh",
        "silu_forward", "silu_backward", "softmax_forward", "softmax_backward", "row_scale",
        "channel_copy",
        # kernels/cuda/linear.py
        "linear_forward", "linear_grad_input", "linear_grad_weight", "linear_grad_bias",
        # kernels/cuda/loss.py and optim_ops.py: losses, dropout, optimizer updates (the
        # cross-entropy and SGD kernels came from train.py, LeNet-5 training on the device)
        "cross_entropy_rows", "mean",
        "cross_entropy_backward", "sgd_update",
        "log_softmax_rows", "log_softmax_backward_rows", "nll_loss_rows", "nll_loss_backward",
        "dropout_forward", "dropout_backward", "adam_update",
    ]
    from kernels.cuda import conv_gemm, conv_igemm

    expected += [f"conv2d_igemm[{mode},{tile}]" for mode in conv_igemm.MODES
                 for tile in conv_igemm.CONFIGS]
    expected += [f"conv2d_{rung}[{mode}]" for rung in conv_gemm.RUNGS
                 for mode in conv_igemm.MODES]
    for name in expected:
        for dtype in ("float32", "float64"):
            assert (name, dtype) in names, f"{name} {dtype} was not compiled"
    for name in ("fill_int64", "max_unpool2d_claim"):  # max unpooling's int64-only kernels
        assert (name, "int64") in names, f"{name} int64 was not compiled"
    assert len(names) == len(lines)  # each kernel and dtype compiled once


def test_training_kernels_keep_everything_in_registers(ptx_report):
    names = ("sigmoid_", "linear_", "cross_entropy_", "mean ", "sgd_update")
    train = [line for line in ptx_report if line.startswith(names)]
    assert len(train) == 20, train
    spilled = [line for line in train if "uses .local" in line]
    assert not spilled, "a training kernel uses local memory:\n" + "\n".join(spilled)


def test_igemm_register_blocks_stay_in_registers(ptx_report):
    igemm = [line for line in ptx_report if line.startswith("conv2d_igemm")]
    assert igemm
    spilled = [line for line in igemm if "uses .local" in line]
    assert not spilled, "register blocking fell back to local memory:\n" + "\n".join(spilled)


def test_no_kernel_uses_local_memory(ptx_report):
    """Every kernel, conv, pooling and training alike, keeps its per-thread state in registers.

    Conv and pooling kernels take their problem as one ``ConvSpec`` / ``PoolSpec`` argument: a
    record read by field must cost no more than the positional tuple it replaced.
    """
    kernels = [line for line in ptx_report[:-1] if line.strip()]
    spilled = [line for line in kernels if "uses .local" in line]
    assert not spilled, "kernels using local memory:\n" + "\n".join(spilled)


# --------------------------------------------------------------------------- ptxas -v


@pytest.fixture(scope="module")
def resources_markdown(ptx_report, ptx_dir):
    """``python -m kernels.cuda.resources --markdown`` on the PTX compiled above."""
    from kernels.cuda.resources import PTXAS_MISSING, find_ptxas

    assert find_ptxas() is not None, PTXAS_MISSING  # the dev extra pins nvidia-cuda-nvcc
    proc = subprocess.run(
        [sys.executable, "-m", "kernels.cuda.resources", "--ptx-dir", str(ptx_dir),
         "--markdown"], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_no_gemm_rung_spills(resources_markdown):
    """ptxas: every GEMM rung (4 to 8), both dtypes, keeps its state in registers."""
    rows = [line.split("|")[1:-1] for line in resources_markdown.splitlines()
            if line.startswith("| igemm")]
    assert len(rows) == 2 * 3 * (4 + 3)  # dtypes x modes x (rungs 4-7 + igemm's 3 tiles)
    spilled = [row for row in rows if row[6].strip() != "0/0"]
    assert not spilled, f"GEMM kernels that spill (stores/loads bytes): {spilled}"
    assert all(0 < int(row[3]) <= 255 for row in rows)


def test_docs_resource_table_is_the_generated_one(resources_markdown):
    """docs/07-gpu-ladder.md holds ``resources --markdown`` verbatim between its markers."""
    text = (REPO / "docs" / "07-gpu-ladder.md").read_text()
    begin, end = "<!-- resources: begin -->", "<!-- resources: end -->"
    assert begin in text and end in text
    block = text.split(begin, 1)[1].split(end, 1)[0].strip()
    assert block == resources_markdown.strip(), (
        "docs/07-gpu-ladder.md is out of date: paste the output of "
        "`python -m kernels.cuda.resources --markdown` between its resources markers")
