"""Tiny training runs through the CLI function, the outputs they write, summary and counts."""

from __future__ import annotations

import importlib.util
import io as std_io
import json
import math

import pytest

from minitorch_cnn import cli, io, models
from minitorch_cnn import train as train_module
from minitorch_cnn.summary import count_parameters, summary, trace
from minitorch_cnn.train import CompileWatch, TrainConfig, train

from .test_data import write_mnist


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_train_cli_on_small_idx_files(tmp_path, capsys):
    write_mnist(tmp_path / "mnist", n_train=40, n_test=12)
    status, out, _ = run_cli(
        capsys, "train", "--model", "mnist_cnn", "--epochs", "2", "--backend", "numpy",
        "--data", f"mnist:{tmp_path / 'mnist'}", "--batch-size", "16", "--out",
        str(tmp_path / "runs"), "--run-name", "tiny", "--no-progress")
    assert status == 0
    lines = out.strip().splitlines()
    assert lines[-1].startswith("final test accuracy ") and "images/s" in lines[-1]
    assert "/12)" in lines[-1]
    assert sum(line.startswith("epoch ") for line in lines) == 2
    run = tmp_path / "runs" / "tiny"
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert metrics["backend"] == "numpy"
    model = models.mnist_cnn()
    meta = io.load(model, run / "checkpoint.npz")
    assert meta["epoch"] == 2 and meta["model"] == "mnist_cnn"
    assert f"plot: {run / 'curves.png'}" in out


def test_training_reduces_the_loss_and_compare_torch_agrees(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    result = train(TrainConfig(
        model="lenet5", data="digits", epochs=3, backend="numpy", batch_size=32,
        out=str(tmp_path), progress=False, plot=False, checkpoint=False, limit_train=320,
        limit_test=100, compare_torch=True), log=lambda line: None)
    first, last = result.history[0], result.history[-1]
    assert last.train_loss < first.train_loss
    # the same batches, the same initial weights: float32 runs stay close
    assert abs(last.torch_train_loss - last.train_loss) < 0.05 * first.train_loss
    assert result.torch_test_accuracy is not None
    assert result.test_total == 100 and result.images_per_second > 0


def test_cli_reports_bad_data_cleanly(tmp_path, capsys):
    status, _, err = run_cli(capsys, "train", "--data", f"mnist:{tmp_path / 'nope'}",
                             "--epochs", "1", "--backend", "numpy", "--out", str(tmp_path))
    assert status == 2 and "not a directory" in err
    status, _, err = run_cli(capsys, "train", "--data", "imagenet", "--epochs", "1",
                             "--backend", "numpy", "--out", str(tmp_path))
    assert status == 2 and "mnist:DIR" in err


def test_demo_preset_is_lenet5_on_digits():
    args = cli.build_parser().parse_args(["demo"])
    assert (args.model, args.data, args.backend) == ("lenet5", "digits", None)
    config = cli._config_from_args(args)
    assert isinstance(config, TrainConfig) and config.epochs == cli.DEMO["epochs"]


def test_summary_table_of_lenet5(capsys):
    model = models.lenet5()
    rows = summary(model, (1, 28, 28))
    out = capsys.readouterr().out
    assert [r.output_shape for r in rows][:3] == [(1, 6, 28, 28)] * 2 + [(1, 6, 14, 14)]
    assert rows[-1].output_shape == (1, 10)
    assert rows[0].params == 156 and rows[0].flops == 2 * 6 * 28 * 28 * 25 + 6 * 28 * 28
    assert sum(r.params for r in rows) == count_parameters(model) == 61706
    assert "61,706 parameters" in out
    assert all(m.training for m in model.modules())  # the trace restores train mode


def test_summary_walks_nested_blocks():
    model = models.resnet18()
    rows = trace(model, (1, 64, 64))
    assert rows[-1].output_shape == (1, 10)
    assert sum(r.params for r in rows) == count_parameters(model) == 11178378
    assert any(r.name == "1.0.conv1" for r in rows)


def test_count_parameters_matches_torch():
    torch = pytest.importorskip("torch")
    ref_models = pytest.importorskip("reference.models")
    for name in models.MODELS:
        twin = ref_models.MODELS[name]()
        expected = sum(p.numel() for p in twin.parameters())
        assert count_parameters(models.MODELS[name]()) == expected, name
    del torch


def test_cli_summary_and_backends(capsys):
    status, out, _ = run_cli(capsys, "summary", "--model", "mnist_cnn")
    assert status == 0 and "(1, 10, 24, 24)" in out and "8,490 parameters" in out
    status, out, _ = run_cli(capsys, "backends")
    assert status == 0 and "numpy" in out and "available" in out


def test_config_rejects_bad_values(tmp_path):
    with pytest.raises(ValueError, match="model"):
        train(TrainConfig(model="vgg", out=str(tmp_path)))
    with pytest.raises(ValueError, match="epochs"):
        train(TrainConfig(epochs=0, out=str(tmp_path)))


JITTED = """from numba import njit


@njit(cache=True)
def twice(v):
    return 2 * v
"""


def _fresh_import(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compile_watch_sees_a_cold_cache_and_not_a_warm_one(tmp_path):
    pytest.importorskip("numba")
    source = tmp_path / "jitted.py"
    source.write_text(JITTED)
    notices = []
    with CompileWatch(on_first=lambda: notices.append("cold")) as cold:
        assert _fresh_import(source, "jitted_cold").twice(3) == 6  # compiles, fills the cache
    assert cold.count >= 1 and notices == ["cold"]
    with CompileWatch(on_first=lambda: notices.append("warm")) as warm:
        assert _fresh_import(source, "jitted_warm").twice(4) == 8  # loads from __pycache__
    assert warm.count == 0 and notices == ["cold"]
    after = cold.count
    assert _fresh_import(source, "jitted_after").twice.py_func(1) == 2
    _fresh_import(tmp_path / "jitted.py", "jitted_other").twice(2.5)  # a new signature
    assert cold.count == after  # outside its with block a watch hears nothing


def test_compile_notice_is_the_issues_text():
    assert train_module.COMPILE_NOTICE == "compiling kernels (once; cached afterwards)..."


def test_epoch_line_progress_writes_once_at_the_end():
    stream = std_io.StringIO()
    batches = train_module._progress(range(4), True, "epoch 3/7", 4, stream=stream)
    seen = []
    for item in batches:
        seen.append(item)
        batches.set_postfix(loss="0.1234")
        assert stream.getvalue() == ""  # nothing while the epoch runs
    assert seen == [0, 1, 2, 3] and len(batches) == 4
    line = stream.getvalue()
    assert line.startswith("epoch 3/7: 4/4 batches in ") and line.endswith(", loss 0.1234\n")
    assert line.count("\n") == 1 and "\r" not in line


def test_final_line_and_rate_with_compile_time(tmp_path):
    result = train_module.TrainResult(
        TrainConfig(), "numba", [], 0.5, 5, 10, 1234.0, tmp_path, None, None,
        compile_seconds=54.25)
    line = train_module.final_line(result)
    assert "1,234 images/s" in line and "not counting 54.2 s of steps compiling kernels" in line
    assert math.isnan(train_module._rate(64, 0.0)) and train_module._rate(64, 2.0) == 32


@pytest.mark.parametrize("schedule", ["none", "step", "cosine", "warmup-cosine", "onecycle"])
def test_lr_schedule_is_torchs_and_the_torch_twin_follows_it(tmp_path, schedule):
    """Each epoch's rate equals torch's scheduler's; the twin trained on it stays close."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    epochs, batches = 4, 3  # 96 images in batches of 32
    result = train(TrainConfig(
        model="mnist_cnn", data="digits", epochs=epochs, backend="numpy", batch_size=32,
        out=str(tmp_path), progress=False, plot=False, checkpoint=False, limit_train=96,
        limit_test=32, compare_torch=True, lr_schedule=schedule), log=lambda line: None)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.01, momentum=0.9)  # mnist_cnn's preset
    sched, per_batch = train_module.make_scheduler(torch.optim.lr_scheduler, schedule, opt,
                                                   epochs, batches)
    expected = []
    for _ in range(epochs):
        expected.append(opt.param_groups[0]["lr"])
        for _ in range(batches if per_batch else 1 if sched is not None else 0):
            opt.step()
            sched.step()
    assert [h.lr for h in result.history] == pytest.approx(expected, rel=1e-12, abs=0)
    if schedule == "cosine":  # the closed form, as a check on the check
        assert expected == pytest.approx(
            [0.005 * (1 + math.cos(math.pi * e / epochs)) for e in range(epochs)], rel=1e-12)
    if schedule == "step":
        assert expected == pytest.approx([1e-2, 1e-3, 1e-4, 1e-5], rel=1e-12)
    for h in result.history:  # float32 on both sides, the same batches and schedule
        assert abs(h.torch_train_loss - h.train_loss) < 1e-3 * result.history[0].train_loss


def test_lr_schedule_cli_option_and_bad_value(tmp_path, capsys):
    args = cli.build_parser().parse_args(["train", "--lr-schedule", "warmup-cosine"])
    assert cli._config_from_args(args).lr_schedule == "warmup-cosine"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--lr-schedule", "exponential"])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="lr_schedule: expected one of"):
        train(TrainConfig(lr_schedule="cyclic", out=str(tmp_path), backend="numpy"))


def test_train_refuses_images_the_model_cannot_take_before_training(tmp_path, capsys):
    """dlwpt_net takes 3x32x32 CIFAR images: digits (1x28x28) are refused up front, naming both
    shapes, and nothing is written (the error comes before the run folder)."""
    argv = ["train", "--model", "dlwpt_net", "--data", "digits", "--epochs", "1",
            "--out", str(tmp_path), "--no-plot"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--model dlwpt_net takes 3x32x32 images" in err and "are 1x28x28" in err
    assert list(tmp_path.iterdir()) == []


def test_train_refuses_labels_beyond_the_models_outputs():
    import numpy as np

    model = models.get_model("dlwpt_net")  # 2 outputs (CIFAR-2)
    x = np.zeros((4, 3, 32, 32), dtype=np.float32)
    train_module.check_model_fits_data(model, "dlwpt_net", x, np.array([0, 1, 1, 0]))
    with pytest.raises(ValueError, match="has 2 outputs, the data set has labels up to 9"):
        train_module.check_model_fits_data(model, "dlwpt_net", x, np.array([0, 9, 1, 0]))
    assert model.training  # the probe leaves the model in training mode


@pytest.mark.usefixtures("strict_device_arrays")  # conftest: a GPU's arrays
def test_train_on_the_cuda_backend_writes_a_checkpoint_that_loads_on_the_cpu(tmp_path, capsys):
    """``train --backend cuda``: the model moves to the device, the run prints and writes what a
    CPU run does, and its checkpoint loads into a CPU model that predicts the test images as
    the run scored them. Two images of the digits resized to 28x28, in the CUDA simulator
    when there is no GPU (the conv kernels on the ``direct`` rung, the fastest to simulate).
    """
    import minitorch_cnn as mc
    from minitorch_cnn import data as data_module
    from minitorch_cnn import init

    if "cuda" not in mc.backends():
        pytest.skip("no GPU and no CUDA simulator")
    import kernels.cuda as kc

    init.manual_seed(0)
    before = models.mnist_cnn().state_dict()
    config = TrainConfig(model="mnist_cnn", data="digits", resize=28, backend="cuda", epochs=1,
                         batch_size=2, limit_train=2, limit_test=2, out=str(tmp_path),
                         run_name="gpu", progress=False, plot=False)
    with kc.conv_algorithm("direct"):
        result = train(config, log=lambda line: None)
    assert result.backend == "cuda" and math.isfinite(result.history[-1].train_loss)
    model = models.mnist_cnn()
    meta = io.load(model, tmp_path / "gpu" / "checkpoint.npz")
    assert meta["backend"] == "cuda" and model.device == "cpu"
    assert any((model.state_dict()[k] != before[k]).any() for k in before)  # it trained
    _, _, x_test, y_test = data_module.load_dataset("digits", seed=config.seed, resize=28)
    x_test = data_module.normalize(x_test[:2], meta["normalize_mean"], meta["normalize_std"])
    with mc.use_backend("numpy"):
        accuracy = float((train_module.predict(model, x_test) == y_test[:2]).mean())
    assert accuracy == result.test_accuracy
