"""The command line as a new user meets it: paths, the compile notice, help texts, logs.

Each test reproduces one complaint of issue 19 ("CLI" in "Why") and failed before its fix:
``--data mnist:~/data/mnist`` did not expand ``~``; a cold JIT cache gave no word and its
compile time counted as training throughput; ``train --help`` did not list
``fashion-mnist:DIR``; the top-level help had no examples; a log file got hundreds of
carriage-return progress updates per epoch.
"""

from __future__ import annotations

import io
import json
import time

import pytest

from minitorch_cnn import cli, models
from minitorch_cnn import data as data_module

from .test_data import write_mnist

COMPILE_NOTICE = "compiling kernels (once; cached afterwards)..."  # the words
TINY = ("--model", "mnist_cnn", "--backend", "numpy", "--batch-size", "16", "--no-plot",
        "--no-checkpoint")


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def help_text(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


# ------------------------------------------------------------------------------------ paths


def test_data_dir_and_out_expand_tilde_and_variables(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MINITORCH_TEST_DATA", str(tmp_path / "elsewhere"))
    write_mnist(tmp_path / "home" / "data" / "mnist", n_train=16, n_test=4)
    write_mnist(tmp_path / "elsewhere" / "fashion", n_train=16, n_test=4)
    status, out, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--no-progress",
                               "--data", "mnist:~/data/mnist", "--out", "~/runs",
                               "--run-name", "tilde")
    assert status == 0, err
    assert (tmp_path / "home" / "runs" / "tilde" / "metrics.json").is_file()
    status, out, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--no-progress",
                               "--data", "fashion-mnist:$MINITORCH_TEST_DATA/fashion",
                               "--out", "${HOME}/runs", "--run-name", "dollar")
    assert status == 0, err
    assert (tmp_path / "home" / "runs" / "dollar" / "metrics.json").is_file()


def test_unset_variable_in_a_path_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MINITORCH_TEST_UNSET", raising=False)
    status, _, err = run_cli(capsys, "train", *TINY, "--data",
                             "mnist:$MINITORCH_TEST_UNSET/mnist", "--out", str(tmp_path))
    assert status == 2
    assert "data: environment variable MINITORCH_TEST_UNSET" in err and "not set" in err
    status, _, err = run_cli(capsys, "train", *TINY, "--out", "$MINITORCH_TEST_UNSET/runs")
    assert status == 2 and "--out: environment variable MINITORCH_TEST_UNSET" in err


def test_every_path_option_of_every_command_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    parser = cli.build_parser()
    args = cli.expand_path_options(parser.parse_args(
        ["explain", "lenet", "--out", "~/img", "--checkpoint", "$HOME/ck.npz",
         "--results", "~/results"]))
    assert (args.out, args.checkpoint, args.results) == (
        f"{tmp_path}/img", f"{tmp_path}/ck.npz", f"{tmp_path}/results")
    path_options = {action.dest for command in ("train", "demo", "explain")
                    for action in parser._subparsers._group_actions[0].choices[command]._actions
                    if action.dest in ("out", "checkpoint", "results", "data")}
    assert path_options - {"data"} <= set(cli.PATH_OPTIONS)


# ------------------------------------------------------------------------- compile notice


def _first_step_compiles(monkeypatch, sleep: float) -> None:
    """Make the model's first forward JIT-compile a fresh Numba function, then sleep.

    A real ``numba:compile`` event, as on a cold cache, plus a delay long enough that the
    test can tell whether it was counted as training time.
    """
    numba = pytest.importorskip("numba")
    get_model = models.get_model

    def get_model_that_compiles(name):
        model = get_model(name)
        forward, calls = model.forward, []

        def forward_compiling_once(x):
            # the first training step; train's up-front shape probe runs in eval mode
            if model.training and not calls:
                def plus_one(v):
                    return v + 1

                numba.njit(plus_one)(1)  # a new function: Numba compiles it now
                time.sleep(sleep)
                calls.append(1)
            return forward(x)

        model.forward = forward_compiling_once
        return model

    monkeypatch.setattr(models, "get_model", get_model_that_compiles)


def test_cold_cache_prints_notice_and_keeps_compile_time_out_of_throughput(
        tmp_path, capsys, monkeypatch):
    sleep = 0.6
    _first_step_compiles(monkeypatch, sleep)
    write_mnist(tmp_path / "mnist", n_train=48, n_test=8)
    status, out, err = run_cli(capsys, "train", *TINY, "--epochs", "2", "--no-progress",
                               "--data", f"mnist:{tmp_path / 'mnist'}", "--out",
                               str(tmp_path), "--run-name", "cold")
    assert status == 0, err
    lines = out.splitlines()
    assert lines.count(COMPILE_NOTICE) == 1
    assert lines.index(COMPILE_NOTICE) < next(
        i for i, line in enumerate(lines) if line.startswith("epoch "))
    metrics = json.loads((tmp_path / "cold" / "metrics.json").read_text())
    first, second = metrics["history"]
    assert first["compile_seconds"] >= sleep and second["compile_seconds"] == 0
    assert first["seconds"] < sleep  # the two other steps of epoch 1 only
    assert metrics["images_per_second"] > 32 / sleep  # not dragged down by the compile
    assert "steps compiling kernels" in lines[-1] and "steps compiling kernels" in out


def test_warm_cache_prints_no_notice(tmp_path, capsys):
    write_mnist(tmp_path / "mnist", n_train=16, n_test=4)
    status, out, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--no-progress",
                               "--data", f"mnist:{tmp_path / 'mnist'}", "--out",
                               str(tmp_path))
    assert status == 0, err
    assert COMPILE_NOTICE not in out and "compiling" not in out


# ---------------------------------------------------------------------------------- help


def test_top_level_help_shows_examples(capsys):
    text = help_text(capsys)
    assert "examples:" in text
    assert "minitorch-cnn train --model mnist_cnn --epochs 3 --data mnist:~/data/mnist" in text
    assert "minitorch-cnn demo" in text and "minitorch-cnn explain" in text
    assert "the seed" not in text


def test_train_help_lists_every_data_form_of_the_code(capsys):
    text = help_text(capsys, "train")
    assert "fashion-mnist:DIR" in text
    for form in data_module.data_forms():
        assert f"  {form} " in text, form
    assert "examples:" in text


def test_train_help_is_derived_from_the_data_table(capsys, monkeypatch):
    sources = dict(data_module.DATA_SOURCES)
    sources["shapes"] = data_module.DataSource(
        "shapes:DIR", "a made-up source of this test", lambda directory, seed, resize: None)
    monkeypatch.setattr(data_module, "DATA_SOURCES", sources)
    text = help_text(capsys, "train")
    assert "shapes:DIR" in text and "a made-up source of this test" in text


@pytest.mark.parametrize("command", ["train", "demo"])
def test_train_and_demo_take_resize(command, capsys):
    text = help_text(capsys, command)
    for form in ("cifar10:DIR", "cifar2:DIR", "imagefolder:DIR"):
        assert f"  {form} " in text, form
    assert "--resize N" in text and "PIL's BILINEAR" in text
    args = cli.build_parser().parse_args([command, "--resize", "96"])
    assert cli._config_from_args(args).resize == 96
    assert cli._config_from_args(cli.build_parser().parse_args([command])).resize is None


def test_explain_help_offers_samples(capsys):
    text = help_text(capsys, "explain")
    assert "samples" in text and "--data" in text and "--n" in text
    assert "cifar2:~/data/cifar-10" in help_text(capsys, "train")  # an example of the form


def test_every_form_in_the_help_is_one_the_loader_takes(tmp_path):
    for form in data_module.data_forms():
        spec = form.replace("DIR", str(tmp_path / "missing"))
        if form.endswith(":DIR"):  # parsed and dispatched: the folder is what is missing
            with pytest.raises(FileNotFoundError, match="not a directory"):
                data_module.load_dataset(spec)


# ------------------------------------------------------------------------------ progress


def test_progress_in_a_log_file_is_one_plain_line_per_epoch(tmp_path, capsys):
    write_mnist(tmp_path / "mnist", n_train=32, n_test=4)
    status, out, err = run_cli(capsys, "train", *TINY, "--epochs", "2", "--batch-size", "8",
                               "--data", f"mnist:{tmp_path / 'mnist'}", "--out",
                               str(tmp_path))
    assert status == 0, err
    assert "\r" not in err
    progress = [line for line in err.splitlines() if line.strip()]
    assert len(progress) == 2, progress
    assert progress[0].startswith("epoch 1/2: 4/4 batches in ") and "loss " in progress[0]
    assert progress[1].startswith("epoch 2/2: 4/4 batches in ")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_a_bar():
    pytest.importorskip("tqdm")
    from minitorch_cnn import train as train_module

    stream = _Terminal()
    batches = train_module._progress(range(5), True, "epoch 1/1", 5, stream=stream)
    assert list(batches) == list(range(5))
    assert "\r" in stream.getvalue() and "epoch 1/1:" in stream.getvalue()  # tqdm's bar
    quiet = io.StringIO()
    assert list(train_module._progress(range(3), False, "epoch 1/1", 3, stream=quiet)) == [
        0, 1, 2]
    assert quiet.getvalue() == ""
