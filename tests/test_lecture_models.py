"""The models named after a lecture or a book are the source's models (issue 16, item 5).

``tests/test_models_match_torch.py`` proves each model equal to its PyTorch twin (outputs,
gradients, 5 SGD steps). Here: the twins and the sources agree on the parameter counts
(where the source prints one, its number), ``summary`` prints the sources' shapes in the
sources' layer order, the residual variants compute what He et al. (2016) define, the MNIST
walk-through's model warns as torch does, bad arguments are refused, and ``minitorch-cnn
train --data digits`` and ``minitorch-cnn summary`` run every lecture model.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from minitorch_cnn import cli, models, summary

torch = pytest.importorskip("torch")
ref_models = pytest.importorskip("reference.models")

LECTURE_MODELS = ("mnist_cnn", "mnist_cnn3", "residual_net", "residual_net_constant_scaling",
                  "residual_net_conv_shortcut", "inception_net", "simple_cnn")
"""Liu Er's "PyTorch Deep Learning Practice" and the MNIST walk-through: 1x28x28 input."""
BOOK_MODELS = ("lenet5", "resnet18", *models.CIFAR2_MODELS)

# Each count is the sum of (C_out * C_in * kH * kW + C_out) over the convs and
# (out * in + out) over the Linears of the source's definition.
PARAMETERS = {
    "lenet5": 61_706,
    "mnist_cnn": 260 + 5_020 + 3_210,
    "mnist_cnn3": 416 + 12_832 + 18_496 + 2_080 + 528 + 170,
    "residual_net": 416 + 12_832 + 2 * 2_320 + 2 * 9_248 + 5_130,
    "residual_net_constant_scaling": 416 + 12_832 + 2 * 2_320 + 2 * 9_248 + 5_130,
    "residual_net_conv_shortcut": 41_514 + (16 * 16 + 16) + (32 * 32 + 32),
    "inception_net": 97_298,
    "simple_cnn": 320 + 18_496 + 1_179_776 + 1_290,
    "resnet18": 11_178_378,
    "dlwpt_net": 18_090,  # printed by the book (8.3.1)
    "dlwpt_net_5x5": 1_216 + 3_208 + 16_416 + 66,
    "dlwpt_netres": 896 + 4_624 + 2_320 + 8_224 + 66,
}

# summary's rows (kind, output shape for one image) in call order, as the sources run them
TRACES = {
    "mnist_cnn": [  # the lecture's slides: 1x28x28 -> 10x24x24 -> 10x12x12 -> 20x8x8 -> ...
        ("Conv2d", (1, 10, 24, 24)), ("MaxPool2d", (1, 10, 12, 12)), ("ReLU", (1, 10, 12, 12)),
        ("Conv2d", (1, 20, 8, 8)), ("MaxPool2d", (1, 20, 4, 4)), ("ReLU", (1, 20, 4, 4)),
        ("Flatten", (1, 320)), ("Linear", (1, 10)),
    ],
    "mnist_cnn3": [
        ("Conv2d", (1, 16, 24, 24)), ("MaxPool2d", (1, 16, 12, 12)), ("ReLU", (1, 16, 12, 12)),
        ("Conv2d", (1, 32, 8, 8)), ("MaxPool2d", (1, 32, 4, 4)), ("ReLU", (1, 32, 4, 4)),
        ("Conv2d", (1, 64, 2, 2)), ("MaxPool2d", (1, 64, 1, 1)), ("ReLU", (1, 64, 1, 1)),
        ("Flatten", (1, 64)), ("Linear", (1, 32)), ("Linear", (1, 16)), ("Linear", (1, 10)),
    ],
    "simple_cnn": [
        ("Conv2d", (1, 32, 26, 26)), ("ReLU", (1, 32, 26, 26)),
        ("Conv2d", (1, 64, 24, 24)), ("ReLU", (1, 64, 24, 24)),
        ("MaxPool2d", (1, 64, 12, 12)), ("Dropout2d", (1, 64, 12, 12)), ("Flatten", (1, 9216)),
        ("Linear", (1, 128)), ("ReLU", (1, 128)), ("Dropout2d", (1, 128)),
        ("Linear", (1, 10)), ("LogSoftmax", (1, 10)),
    ],
    "dlwpt_net": [
        ("Conv2d", (1, 16, 32, 32)), ("Tanh", (1, 16, 32, 32)), ("MaxPool2d", (1, 16, 16, 16)),
        ("Conv2d", (1, 8, 16, 16)), ("Tanh", (1, 8, 16, 16)), ("MaxPool2d", (1, 8, 8, 8)),
        ("Flatten", (1, 512)), ("Linear", (1, 32)), ("Tanh", (1, 32)), ("Linear", (1, 2)),
    ],
    "dlwpt_netres": [
        ("Conv2d", (1, 32, 32, 32)), ("ReLU", (1, 32, 32, 32)), ("MaxPool2d", (1, 32, 16, 16)),
        ("Conv2d", (1, 16, 16, 16)), ("ReLU", (1, 16, 16, 16)), ("MaxPool2d", (1, 16, 8, 8)),
        ("Conv2d", (1, 16, 8, 8)), ("ReLU", (1, 16, 8, 8)), ("MaxPool2d", (1, 16, 4, 4)),
        ("Flatten", (1, 256)), ("Linear", (1, 32)), ("ReLU", (1, 32)), ("Linear", (1, 2)),
    ],
}
TRACES["dlwpt_net_5x5"] = TRACES["dlwpt_net"]

quiet_dropout2d = pytest.mark.filterwarnings("ignore:dropout2d:UserWarning")


def count(model) -> int:
    return sum(int(np.prod(p.shape)) for p in model.parameters())


# ------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("name", [*LECTURE_MODELS, *BOOK_MODELS])
def test_parameter_count_equals_the_twin_and_the_source(name):
    ours, twin = models.MODELS[name](), ref_models.MODELS[name]()
    assert summary.count_parameters(ours) == count(twin) == PARAMETERS[name]
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in twin.parameters()]


def test_dlwpt_net_has_the_parameter_list_the_book_prints():
    # 8.3.1: ``sum(numel_list), numel_list`` -> (18090, [432, 16, 1152, 8, 16384, 32, 64, 2])
    numel_list = [p.size for p in models.dlwpt_net().parameters()]
    assert (sum(numel_list), numel_list) == (18090, [432, 16, 1152, 8, 16384, 32, 64, 2])


# ----------------------------------------------------------- summary: shapes and counts


@quiet_dropout2d
@pytest.mark.parametrize("name", sorted(TRACES))
def test_summary_shows_the_sources_layers_and_shapes(name):
    rows = summary.trace(models.MODELS[name](), models.INPUT_SHAPES[name])
    assert [(r.kind, r.output_shape) for r in rows] == TRACES[name]


def twin_layer_shapes(twin, shape):
    """Output shapes of the twin's Conv2d and Linear layers, in call order (forward hooks)."""
    shapes = []
    for module in twin.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            module.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    with torch.no_grad():
        twin.eval()(torch.zeros((1, *shape)))
    return shapes


@quiet_dropout2d
@pytest.mark.parametrize("name", [*LECTURE_MODELS, *models.CIFAR2_MODELS])
def test_summary_conv_and_linear_shapes_equal_the_twins(name):
    shape = models.INPUT_SHAPES[name]
    rows = summary.trace(models.MODELS[name](), shape)
    ours = [r.output_shape for r in rows if r.kind in ("Conv2d", "Linear")]
    assert ours == twin_layer_shapes(ref_models.MODELS[name](), shape)
    assert sum(r.params for r in rows) == PARAMETERS[name]


@quiet_dropout2d
@pytest.mark.parametrize("name", [*LECTURE_MODELS, *models.CIFAR2_MODELS])
def test_summary_command_prints_each_model(capsys, name):
    argv = ["summary", "--model", name]
    if models.INPUT_SHAPES[name] != (1, 28, 28):
        argv += ["--input", *map(str, models.INPUT_SHAPES[name])]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"total: {PARAMETERS[name]:,} parameters" in out
    assert str((1, models.NUM_CLASSES[name])) in out


# ------------------------------------------------- He et al. 2016's residual variants


def block_with_zero_branch(shortcut):
    """A variant block whose F(x) = conv2(relu(conv1(x))) is exactly zero."""
    block = models.ResidualBlockVariant(2, shortcut).double()
    for conv in (block.conv1, block.conv2):
        conv.weight.data[...] = 0.0
        conv.bias.data[...] = 0.0
    return block


def test_constant_scaling_halves_the_shortcut():
    x = np.array([-2.0, -0.5, 0.5, 3.0]).reshape(1, 2, 1, 2)
    y = block_with_zero_branch("constant_scaling")(x)
    np.testing.assert_array_equal(y, np.maximum(0.5 * x, 0.0))  # relu(0.5 x + 0.5 * 0)


def test_conv_shortcut_passes_the_shortcut_through_its_1x1_conv():
    block = block_with_zero_branch("conv_shortcut")
    block.conv3.weight.data[...] = np.array([[0.0, 1.0], [2.0, 0.0]]).reshape(2, 2, 1, 1)
    block.conv3.bias.data[...] = np.array([0.5, -1.0])
    x = np.array([1.0, -3.0, 4.0, 2.0]).reshape(1, 2, 1, 2)  # channel 0: [1, -3]; 1: [4, 2]
    y = block(x)  # relu(conv3(x) + 0): channel 0 = x1 + 0.5, channel 1 = 2 x0 - 1
    np.testing.assert_array_equal(y, np.array([4.5, 2.5, 1.0, 0.0]).reshape(1, 2, 1, 2))


def test_residual_variants_keep_the_lectures_parameter_names():
    identity = dict(models.residual_net().named_parameters())
    scaled = dict(models.residual_net_constant_scaling().named_parameters())
    projected = dict(models.residual_net_conv_shortcut().named_parameters())
    assert list(scaled) == list(identity)
    assert set(projected) - set(identity) == {"rblock1.conv3.weight", "rblock1.conv3.bias",
                                              "rblock2.conv3.weight", "rblock2.conv3.bias"}


# ---------------------------------------------------------------- the MNIST walk-through


def warning_messages(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if "dropout2d" in str(w.message)]


def test_simple_cnn_trains_with_dropout2d_on_2d_input_and_warns_as_torch():
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28))
    model = models.simple_cnn().double().train()

    def step():
        y = model(x)
        model.backward(np.full_like(y, 0.05))

    ours = warning_messages(step)
    twin = ref_models.simple_cnn().double().train()
    theirs = warning_messages(lambda: twin(torch.from_numpy(x)))
    assert ours == theirs and len(ours) == 1 and "2-D input" in ours[0]
    assert all(p.grad is not None for p in model.parameters())


# ---------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("build, error, words", [
    (lambda: models.ResidualNet("projection"), ValueError, "shortcut: expected one of"),
    (lambda: models.ResidualBlockVariant(4, "identity"), ValueError, "shortcut: expected"),
    (lambda: models.DlwptNet(4), ValueError, "kernel_size: expected an odd positive int"),
    (lambda: models.DlwptNet(0), ValueError, "kernel_size: expected an odd positive int"),
    (lambda: models.DlwptNet(5.0), TypeError, "kernel_size: expected an int, got float"),
    (lambda: models.DlwptNet(True), TypeError, "kernel_size: expected an int, got bool"),
    (lambda: models.DlwptNetRes(1), ValueError, "n_chans1: expected an int >= 2"),
    (lambda: models.DlwptNetRes("32"), TypeError, "n_chans1: expected an int, got str"),
])
def test_bad_model_arguments_are_refused(build, error, words):
    with pytest.raises(error, match=re.escape(words)):
        build()


# ------------------------------------------------------ minitorch-cnn train --data digits


@quiet_dropout2d
@pytest.mark.parametrize("name", LECTURE_MODELS)
def test_train_runs_one_epoch_on_digits(capsys, tmp_path, name):
    status = cli.main(["train", "--model", name, "--epochs", "1", "--data", "digits",
                       "--backend", "numpy", "--batch-size", "16", "--limit-train", "32",
                       "--limit-test", "16", "--no-plot", "--no-checkpoint", "--no-progress",
                       "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"training {name} on digits" in out and "final test accuracy" in out


def test_every_model_has_a_training_preset_and_an_input_shape():
    from minitorch_cnn.train import PRESETS

    assert sorted(PRESETS) == sorted(models.MODELS)
    assert sorted(models.INPUT_SHAPES) == sorted(models.MODELS)
