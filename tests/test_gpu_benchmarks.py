"""The GPU benchmarks, rehearsed in the Numba CUDA simulator.

No GPU has been lent to this project's CI, so ``benchmarks.gpu_ops`` and
``benchmarks.gpu_train_step`` run here with ``--rehearse``: the same scripts on tiny shapes,
torch on the CPU as the reference, wall-clock timing (:mod:`benchmarks.gpu_device`). That
proves every line of them runs (each of our kernels checked against torch, the timing loops,
the table, the summary, the JSON and the PNG) before a session with a GPU spends device time
on them; the timings themselves mean nothing and are not checked.
"""

from __future__ import annotations

import json

import numba
import pytest

from benchmarks import gpu_ops, gpu_train_step
from kernels import cuda as kc

pytest.importorskip("torch")
if kc.unavailable_reason() is not None:
    pytest.skip(f"cuda backend unavailable: {kc.unavailable_reason()}", allow_module_level=True)
if not numba.config.ENABLE_CUDASIM:
    pytest.skip("a real GPU is here: run the benchmarks themselves", allow_module_level=True)


def test_gpu_ops_rehearsal_checks_every_rung_and_writes_json_and_png(tmp_path, capsys):
    assert gpu_ops.main(["--rehearse", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "igemm_fwd_bwd_vs_cudnn_fp32_geomean_resnet18" in out
    payload = json.loads((tmp_path / "gpu_ops_rehearsal.json").read_text())
    assert payload["rehearsal"] is True and "simulator" in payload["device"]
    assert (tmp_path / "gpu_ops_rehearsal.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    convs, pools = gpu_ops.rehearsal_cases()
    expected = {(c.name, op, impl) for c in convs for op, impls in (
        ("forward", ("cudnn_fp32", "cudnn_tf32", *gpu_ops.CONV_RUNGS)),
        ("backward", ("cudnn_fp32", "cudnn_tf32", *gpu_ops.BACKWARD_RUNGS)))
        for impl in impls}
    expected |= {(c.name, "forward", f"igemm[{tile}]") for c in convs
                 for tile in gpu_ops.SWEPT_TILES}  # igemm's tile sweep
    assert {(r["layer"], r["op"], r["impl"]) for r in payload["conv"]} == expected
    assert gpu_ops.CONV_RUNGS == kc.ALGORITHMS  # every rung of the ladder is timed
    ours = [r for r in payload["conv"] if not r["impl"].startswith("cudnn")]
    assert all(0 <= r["max_rel_error"] <= gpu_ops.TOLERANCE for r in ours)
    assert all(r["model_bound_ms"] > 0 and r["of_model_bound"] > 0 for r in ours)
    assert all(r["model_bound_ms"] is None for r in payload["conv"]
               if r["impl"].startswith("cudnn"))
    assert set(payload["summary"]["rung_fwd_bwd_vs_cudnn_fp32_geomean_resnet18"]) == set(
        gpu_ops.CONV_RUNGS)
    assert all(r["median_ms"] > 0 and r["repeats"] == 1 for r in payload["conv"])

    assert len(payload["pool"]) == len(pools) * 2 * 2  # forward/backward x torch/cuda
    assert all(r["max_rel_error"] <= gpu_ops.TOLERANCE for r in payload["pool"]
               if r["impl"] == "cuda")
    summary = payload["summary"]
    assert summary["resnet18_layers"] == sum(c.name.startswith("resnet18") for c in convs) >= 1
    assert summary["igemm_fwd_bwd_vs_cudnn_fp32_geomean_resnet18"] > 0
    assert summary["pool_vs_torch_geomean"] > 0


def test_gpu_train_step_rehearsal_checks_a_step_against_torch(tmp_path, capsys):
    out_json = tmp_path / "step.json"
    argv = ["--rehearse", "--model", "mnist_cnn", "--rung", "direct", "--out", str(out_json)]
    assert gpu_train_step.main(argv) == 0
    assert "checked: one SGD step of each equals torch's" in capsys.readouterr().out
    payload = json.loads(out_json.read_text())
    assert payload["rehearsal"] is True and payload["batch"] == 1
    assert payload["model"] == "mnist_cnn" and payload["allocator"].startswith("simulator")
    assert [r["step"] for r in payload["rows"]] == ["torch", "ours"]


def test_gpu_train_step_refuses_to_rehearse_resnet18(capsys):
    assert gpu_train_step.main(["--rehearse", "--model", "resnet18"]) == 2
    assert "too large to rehearse" in capsys.readouterr().err


@pytest.mark.parametrize("script", [gpu_ops, gpu_train_step], ids=["gpu_ops", "gpu_train_step"])
def test_gpu_benchmarks_without_rehearse_refuse_the_simulator(script, capsys):
    assert script.main([]) == gpu_ops.NO_GPU_EXIT
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "--rehearse" in err
