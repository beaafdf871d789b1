"""Every layer's forward and backward against PyTorch autograd (float64, 1e-8).

One helper, :func:`check_against_torch`, copies our layer's state into the torch layer,
runs both forward on the same input, pushes the same random ``grad_y`` back, and compares
the output, ``grad_x`` and every parameter's gradient (and buffer, for batch norm).
Inputs are non-square and kernels asymmetric so a swapped axis cannot pass. Layers run on
the ``numpy`` backend. Also here: the Module protocol, losses, optimizers and initialisers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import minitorch_cnn as mc
from minitorch_cnn import init, losses, nn, optim

from .checks import assert_close

torch = pytest.importorskip("torch")
tnn = torch.nn
ref_models = pytest.importorskip("reference.models")

BACKEND = "numpy"


@pytest.fixture(autouse=True)
def _numpy_backend():
    with mc.use_backend(BACKEND):
        yield


def close(ours, ref, tol=1e-8, what="", scale=None):
    """The project's one comparison (tests/checks.py): ``|ours - ref| <= tol * (|ref| + scale)``.

    A gradient that is zero in exact arithmetic (a conv bias right before batch norm) is
    rounding noise in both libraries; pass the scale of the layer's other gradients for it.
    """
    assert_close(ours, ref, what, tol=tol, scale=scale)


def rng(seed=0):
    return np.random.default_rng(seed)


def copy_state_to_torch(layer, torch_layer):
    torch_layer.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})


def check_against_torch(layer, torch_layer, x, seed=1, train=True):
    """Forward, backward, parameter gradients and buffers of ``layer`` equal torch's."""
    layer.double().train(train)
    torch_layer.double().train(train)
    copy_state_to_torch(layer, torch_layer)
    y = layer(x)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = torch_layer(tx)
    close(y, ty.detach().numpy(), what="forward")
    assert y.dtype == np.float64 and y.shape == tuple(ty.shape)
    grad_y = rng(seed).standard_normal(y.shape)
    grad_x = layer.backward(grad_y)
    ty.backward(torch.from_numpy(grad_y))
    close(grad_x, tx.grad.numpy(), what="grad_x")
    torch_params = dict(torch_layer.named_parameters())
    ours = dict(layer.named_parameters())
    assert sorted(ours) == sorted(torch_params)
    grad_scale = max([float(np.abs(p.grad.numpy()).max()) for p in torch_params.values()],
                     default=0.0)
    for name, param in ours.items():
        close(param.grad, torch_params[name].grad.numpy(), what=f"grad of {name}",
              scale=max(grad_scale * 1e-3, float(np.abs(torch_params[name].grad.numpy()).max())))
    torch_state = torch_layer.state_dict()
    for name, value in layer.state_dict().items():
        close(value, torch_state[name].numpy(), what=f"state {name}")
    return y, grad_x


# --------------------------------------------------------------------------- conv and pooling


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
        dict(groups=2, bias=False),
        dict(padding="same", dilation=(2, 1)),
        dict(stride=3, padding=0),
    ],
    ids=["stride-pad-dil", "groups2-nobias", "same", "stride3"],
)
def test_conv2d_matches_torch(kwargs):
    layer = nn.Conv2d(4, 6, (3, 2), **kwargs)
    twin = tnn.Conv2d(4, 6, (3, 2), **kwargs)
    check_against_torch(layer, twin, rng().standard_normal((2, 4, 9, 7)))


def test_conv2d_parameters_shapes_and_names_match_torch():
    layer, twin = nn.Conv2d(4, 6, (3, 2), groups=2), tnn.Conv2d(4, 6, (3, 2), groups=2)
    ours = {k: v.shape for k, v in layer.named_parameters()}
    assert ours == {k: tuple(v.shape) for k, v in twin.named_parameters()}
    assert "bias" not in dict(nn.Conv2d(2, 3, 1, bias=False).named_parameters())


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        dict(kernel_size=(2, 3), stride=1, dilation=(2, 1)),
        dict(kernel_size=2),
    ],
    ids=["k3s2p1-ceil", "k2x3-dil", "k2"],
)
def test_max_pool2d_matches_torch(kwargs):
    check_against_torch(nn.MaxPool2d(**kwargs), tnn.MaxPool2d(**kwargs),
                        rng().standard_normal((2, 3, 9, 8)))


def test_max_pool2d_ties_send_gradient_to_first_maximum():
    x = np.zeros((1, 1, 4, 4))  # every window is a tie
    _, grad_x = check_against_torch(nn.MaxPool2d(2), tnn.MaxPool2d(2), x)
    assert np.count_nonzero(grad_x) == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)),
        dict(kernel_size=2, stride=2),
    ],
    ids=["k3s2p1-ceil-nopad", "k3x2", "k2s2"],
)
def test_avg_pool2d_matches_torch(kwargs):
    check_against_torch(nn.AvgPool2d(**kwargs), tnn.AvgPool2d(**kwargs),
                        rng().standard_normal((2, 3, 9, 8)))


@pytest.mark.parametrize("output_size", [(3, 2), 1, (4, None)])
def test_adaptive_avg_pool2d_matches_torch(output_size):
    check_against_torch(nn.AdaptiveAvgPool2d(output_size), tnn.AdaptiveAvgPool2d(output_size),
                        rng().standard_normal((2, 3, 7, 5)))


# --------------------------------------------------------------------------- dense and element-wise


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    check_against_torch(nn.Linear(7, 5, bias=bias), tnn.Linear(7, 5, bias=bias),
                        rng().standard_normal((4, 7)))


@pytest.mark.parametrize(
    "ours, theirs", [(nn.ReLU, tnn.ReLU), (nn.Sigmoid, tnn.Sigmoid), (nn.Tanh, tnn.Tanh)],
    ids=["relu", "sigmoid", "tanh"],
)
def test_activation_matches_torch(ours, theirs):
    x = rng().standard_normal((2, 3, 4, 5)) * 3
    x[0, 0, 0, :3] = [0.0, 60.0, -800.0]  # the kink, and saturation without overflow
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        check_against_torch(ours(), theirs(), x)


def test_flatten_matches_torch():
    check_against_torch(nn.Flatten(), tnn.Flatten(), rng().standard_normal((2, 3, 4, 5)))


def test_log_softmax_matches_torch():
    x = rng().standard_normal((4, 10))
    x[0] += 1e4  # large logits: the stable form must not overflow
    check_against_torch(nn.LogSoftmax(dim=1), tnn.LogSoftmax(dim=1), x)


def test_sequential_matches_torch_and_names_children_like_torch():
    layer = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 3, 4))
    twin = tnn.Sequential(tnn.Conv2d(2, 3, 3), tnn.ReLU(), tnn.Flatten(), tnn.Linear(36, 4))
    check_against_torch(layer, twin, rng().standard_normal((2, 2, 6, 5)))
    assert [k for k, _ in layer.named_parameters()] == ["0.weight", "0.bias", "3.weight",
                                                        "3.bias"]
    assert isinstance(layer[1], nn.ReLU) and len(layer) == 4


# --------------------------------------------------------------------------- dropout and batch norm


class _FixedMask(tnn.Module):
    """A torch layer that multiplies by a given mask: dropout with our random draw."""

    def __init__(self, mask):
        super().__init__()
        self.mask = torch.from_numpy(mask)

    def forward(self, x):
        return x * self.mask


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout2d])
def test_dropout_backward_uses_the_forward_mask(cls):
    init.manual_seed(3)
    layer = cls(p=0.3).double()
    x = rng().standard_normal((4, 6, 5, 3))
    y = layer(x)
    mask = layer._cache.mask
    check_against_torch_fixed = _FixedMask(mask)
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = check_against_torch_fixed(tx)
    close(y, ty.detach().numpy())
    grad_y = rng(1).standard_normal(y.shape)
    ty.backward(torch.from_numpy(grad_y))
    close(layer.backward(grad_y), tx.grad.numpy())
    assert set(np.unique(mask)) <= {0.0, 1 / 0.7}
    if cls is nn.Dropout2d:  # one draw per (sample, channel)
        assert mask.shape == (4, 6, 1, 1)


def test_dropout_rate_and_scale_are_torchs():
    init.manual_seed(0)
    x = np.ones((200, 500))
    y = nn.Dropout(0.25)(x)
    assert abs((y == 0).mean() - 0.25) < 0.01
    assert np.allclose(y[y != 0], 1 / 0.75)
    assert abs(y.mean() - 1.0) < 0.02  # the expectation is preserved


def test_dropout_eval_and_extreme_p():
    x = rng().standard_normal((3, 4))
    assert np.array_equal(nn.Dropout(0.5).eval()(x), x)
    assert np.array_equal(nn.Dropout(0.0)(x), x)
    layer = nn.Dropout(1.0)
    assert np.array_equal(layer(x), np.zeros_like(x))
    assert np.array_equal(layer.backward(np.ones_like(x)), np.zeros_like(x))
    with pytest.raises(ValueError, match="p"):
        nn.Dropout(1.5)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_train_matches_torch_and_updates_running_stats(momentum):
    layer, twin = nn.BatchNorm2d(3, momentum=momentum), tnn.BatchNorm2d(3, momentum=momentum)
    layer.weight.data = rng(5).standard_normal(3).astype(np.float32)
    layer.bias.data = rng(6).standard_normal(3).astype(np.float32)
    x = rng().standard_normal((4, 3, 5, 6)) * 2 + 1
    check_against_torch(layer, twin, x)
    # a second step: running stats keep tracking (compared with torch's inside the helper)
    layer.zero_grad()
    twin.zero_grad()
    check_against_torch(layer, twin, x * 0.5 - 2, seed=2)
    assert int(layer.num_batches_tracked) == 2


def test_batchnorm2d_eval_uses_running_stats_like_torch():
    layer, twin = nn.BatchNorm2d(3), tnn.BatchNorm2d(3)
    layer.double()
    layer.running_mean = rng(7).standard_normal(3)
    layer.running_var = rng(8).random(3) + 0.5
    layer.weight.data = rng(5).standard_normal(3)
    check_against_torch(layer, twin, rng().standard_normal((2, 3, 4, 5)), train=False)
    assert int(layer.num_batches_tracked) == 0


def test_batchnorm2d_rejects_single_value_per_channel_in_training():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm2d(2)(np.ones((1, 2, 1, 1), np.float32))


# --------------------------------------------------------------------------- blocks


def test_residual_block_identity_matches_torch():
    check_against_torch(nn.ResidualBlock(3), ref_models.ResidualBlock(3),
                        rng().standard_normal((2, 3, 6, 5)))


@pytest.mark.parametrize("use_1x1conv, strides, c_in", [(False, 1, 4), (True, 2, 3)],
                         ids=["identity", "projection-stride2"])
def test_d2l_residual_matches_torch(use_1x1conv, strides, c_in):
    layer = nn.Residual(c_in, 4, use_1x1conv=use_1x1conv, strides=strides)
    twin = ref_models.Residual(c_in, 4, use_1x1conv=use_1x1conv, strides=strides)
    check_against_torch(layer, twin, rng().standard_normal((2, c_in, 7, 6)))


def test_inception_block_matches_torch_and_has_88_channels():
    y, _ = check_against_torch(nn.InceptionA(3), ref_models.InceptionA(3),
                               rng().standard_normal((2, 3, 6, 5)))
    assert y.shape == (2, 88, 6, 5)


# --------------------------------------------------------------------------- the Module protocol


def test_gradients_accumulate_until_zero_grad_like_torch():
    layer = nn.Linear(3, 2)
    x, g = rng().standard_normal((4, 3)).astype(np.float32), np.ones((4, 2), np.float32)
    layer(x)
    layer.backward(g)
    first = layer.weight.grad.copy()
    layer(x)
    layer.backward(g)
    close(layer.weight.grad, 2 * first, tol=1e-6)
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_module_registration_and_dtype_cast():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = None  # replaced below: the module must not stay shadowed
            self.body = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
            self.head = nn.Linear(2, 3, bias=False)

    net = Net()
    assert [k for k, _ in net.named_parameters()] == [
        "body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias", "head.weight"]
    assert list(net.state_dict())[-4:] == [
        "body.1.running_mean", "body.1.running_var", "body.1.num_batches_tracked", "head.weight"]
    net.double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.body[1].running_var.dtype == np.float64
    assert net.body[1].num_batches_tracked.dtype == np.int64


def test_backward_without_forward_is_a_clear_error():
    layer = nn.Conv2d(1, 1, 3)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones((1, 1, 2, 2), np.float32))


def test_train_eval_reach_every_submodule():
    model = nn.Sequential(nn.Sequential(nn.Dropout()), nn.BatchNorm2d(2))
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_dtype_mismatch_between_input_and_weights_is_a_clear_error():
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(3, 2)(np.ones((1, 3)))  # float64 input, float32 weights
    with pytest.raises(TypeError, match="dtype"):
        nn.Conv2d(1, 1, 2)(np.ones((1, 1, 3, 3)))


def test_layers_use_the_current_backend():
    x = rng().standard_normal((1, 2, 5, 5)).astype(np.float32)
    layer = nn.Conv2d(2, 3, 3)
    with mc.use_backend("naive"):
        y_naive = layer(x)
    y_numpy = layer(x)
    close(y_naive, y_numpy, tol=1e-5)


# --------------------------------------------------------------------------- losses


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_matches_torch(reduction):
    logits = rng().standard_normal((5, 4)) * 3
    logits[1] += 1e4
    target = np.array([0, 3, 1, 1, 2])
    crit = nn.CrossEntropyLoss(reduction=reduction)
    loss = crit(logits, target)
    assert isinstance(loss, float)
    tl = torch.from_numpy(logits).requires_grad_(True)
    tloss = tnn.CrossEntropyLoss(reduction=reduction)(tl, torch.from_numpy(target))
    tloss.backward()
    close(loss, tloss.item())
    close(crit.backward(), tl.grad.numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_nll_loss_matches_torch(reduction):
    log_probs = losses.log_softmax(rng().standard_normal((5, 4)))
    target = np.array([0, 3, 1, 1, 2])
    crit = nn.NLLLoss(reduction=reduction)
    loss = crit(log_probs, target)
    tl = torch.from_numpy(log_probs).requires_grad_(True)
    tloss = tnn.NLLLoss(reduction=reduction)(tl, torch.from_numpy(target))
    tloss.backward()
    close(loss, tloss.item())
    close(crit.backward(), tl.grad.numpy())


def test_loss_rejects_bad_targets():
    crit = nn.CrossEntropyLoss()
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        crit(logits, np.array([0, 3]))
    with pytest.raises(TypeError, match="integer"):
        crit(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        crit(logits, np.array([0, 1, 2]))
    with pytest.raises(RuntimeError):
        nn.CrossEntropyLoss().backward()


# --------------------------------------------------------------------------- optimizers


def _run_optimizer(make_ours, make_torch, steps=5):
    shapes = [(3, 4), (5,)]
    values = [rng(i).standard_normal(s) for i, s in enumerate(shapes)]
    ours = [nn.Parameter(v) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    opt, topt = make_ours(ours), make_torch(theirs)
    for step in range(steps):
        grads = [rng(100 + step * 10 + i).standard_normal(s) for i, s in enumerate(shapes)]
        for p, tp, g in zip(ours, theirs, grads, strict=True):
            p.grad = g.copy()
            tp.grad = torch.from_numpy(g.copy())
        if step == 2:  # a parameter without a gradient is skipped, as in torch
            ours[1].grad, theirs[1].grad = None, None
        opt.step()
        topt.step()
        for p, tp in zip(ours, theirs, strict=True):
            close(p.data, tp.detach().numpy(), what=f"step {step}")


@pytest.mark.parametrize(
    "kwargs",
    [dict(lr=0.1), dict(lr=0.05, momentum=0.9, weight_decay=1e-2),
     dict(lr=0.05, momentum=0.9, dampening=0.3), dict(lr=0.05, momentum=0.8, nesterov=True,
                                                      weight_decay=1e-3)],
    ids=["plain", "momentum-wd", "dampening", "nesterov"],
)
def test_sgd_matches_torch(kwargs):
    _run_optimizer(lambda p: optim.SGD(p, **kwargs),
                   lambda p: torch.optim.SGD(p, foreach=False, **kwargs))


@pytest.mark.parametrize("kwargs", [dict(lr=1e-2), dict(lr=3e-3, betas=(0.8, 0.99),
                                                        weight_decay=1e-2, eps=1e-6)])
def test_adam_matches_torch(kwargs):
    _run_optimizer(lambda p: optim.Adam(p, **kwargs),
                   lambda p: torch.optim.Adam(p, foreach=False, **kwargs))


def test_optimizer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="Parameter"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([nn.Parameter(np.zeros(3))], lr=-1)


# --------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize("shape", [(6, 4, 3, 2), (5, 7)])
def test_fans_match_torch(shape):
    expected = tnn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.calculate_fan_in_and_fan_out(np.empty(shape)) == expected


def test_default_init_is_torchs_distribution():
    init.manual_seed(0)
    layer = nn.Conv2d(50, 64, 5)  # fan_in = 1250
    bound = 1 / math.sqrt(50 * 25)
    w = layer.weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound  # U(-b, b) has std b/sqrt(3)
    assert np.abs(layer.bias.data).max() <= bound
    assert nn.Linear(3, 2).weight.dtype == np.float32


def test_manual_seed_makes_models_reproducible():
    init.manual_seed(42)
    a = nn.Linear(4, 3).weight.data.copy()
    init.manual_seed(42)
    assert np.array_equal(a, nn.Linear(4, 3).weight.data)


@pytest.mark.parametrize(
    "fn, std",
    [
        (lambda w: init.xavier_normal_(w, gain=2.0), 2.0 * math.sqrt(2 / (200 + 300))),
        (lambda w: init.xavier_uniform_(w), math.sqrt(6 / 500) / math.sqrt(3)),
        (lambda w: init.kaiming_normal_(w, nonlinearity="relu"), math.sqrt(2 / 200)),
        (lambda w: init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"),
         math.sqrt(2 / 300)),
    ],
    ids=["xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform_fan_out"],
)
def test_initialisers_have_torchs_std(fn, std):
    init.manual_seed(1)
    w = nn.Parameter(np.zeros((300, 200)))  # fan_in 200, fan_out 300
    fn(w)
    assert abs(w.data.std() - std) < 0.02 * std


def test_gains_match_torch():
    for name in ["linear", "sigmoid", "tanh", "relu", "selu"]:
        assert init.calculate_gain(name) == pytest.approx(tnn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        tnn.init.calculate_gain("leaky_relu", 0.2))
