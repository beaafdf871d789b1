"""Shared (tied) modules and parameters, as PyTorch: d2l's tied layer and its relatives.

d2l "Parameter Management" ties a layer by using one instance twice:
``shared = nn.Linear(8, 8); net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared,
nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))``. Here that net, a shared Conv2d and a shared
BatchNorm2d are compared with torch (float64, 1e-10): outputs, gradients (a shared weight's
is the sum over its uses), parameter lists (each Parameter once), state-dict keys (each name)
and a few optimizer steps. Then every layer is used twice in one pass and checked against two
separate copies with equal weights, which proves each layer keeps a stack of caches; and the
rule that frees caches of forwards nobody differentiates is tested.
"""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_cnn as mc
from minitorch_cnn import init, nn, optim
from minitorch_cnn.summary import trace

from .checks import check_against_torch

torch = pytest.importorskip("torch")
tnn = torch.nn


@pytest.fixture(autouse=True)
def _numpy_backend():
    with mc.use_backend("numpy"):
        yield


def rng(seed=0):
    return np.random.default_rng(seed)


def to_torch(net, twin):
    """Copy our state (every key, shared ones under each name) into the torch twin."""
    twin.double().load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    return twin


def d2l_tied_nets():
    init.manual_seed(0)
    shared = nn.Linear(8, 8)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(),
                        nn.Linear(8, 1)).double()
    tshared = tnn.Linear(8, 8)
    twin = tnn.Sequential(tnn.Linear(4, 8), tnn.ReLU(), tshared, tnn.ReLU(), tshared,
                          tnn.ReLU(), tnn.Linear(8, 1))
    return net, to_torch(net, twin)


def forward_backward_both(net, twin, x, grad_y):
    """Forward and backward in both; returns (y, grad_x, ty, tx)."""
    y = net(x)
    grad_x = net.backward(grad_y)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = twin(tx)
    ty.backward(torch.from_numpy(grad_y))
    return y, grad_x, ty, tx


def assert_same_as_torch(net, twin, y, grad_x, ty, tx):
    check_against_torch(y, ty.detach().numpy(), "forward")
    check_against_torch(grad_x, tx.grad.numpy(), "grad_x")
    theirs = dict(twin.named_parameters())
    assert [name for name, _ in net.named_parameters()] == list(theirs)
    for name, param in net.named_parameters():
        check_against_torch(param.grad, theirs[name].grad.numpy(), f"grad of {name}")


# ----------------------------------------------------------------------------- d2l's tied layer


def test_d2l_tied_layer_forward_and_gradients_match_torch():
    net, twin = d2l_tied_nets()
    x = rng().standard_normal((2, 4))
    y, grad_x, ty, tx = forward_backward_both(net, twin, x, rng(1).standard_normal((2, 1)))
    assert_same_as_torch(net, twin, y, grad_x, ty, tx)
    assert net[2] is net[4] and net[2].weight is net[4].weight  # d2l: "the same object"


def test_d2l_tied_layer_weight_gradient_is_the_sum_over_both_uses():
    net, _ = d2l_tied_nets()
    x, grad_y = rng().standard_normal((3, 4)), rng(1).standard_normal((3, 1))
    net(x)
    net.backward(grad_y)
    tied = net[2].weight.grad
    untied = nn.Sequential(*[type(m)(8, 8) if m is net[2] else m for m in net]).double()
    untied.load_state_dict(net.state_dict())  # the second copy gets "4.weight", equal values
    net.zero_grad()
    untied(x)
    untied.backward(grad_y)
    assert untied[2] is not untied[4]
    check_against_torch(tied, untied[2].weight.grad + untied[4].weight.grad, "shared grad")


def test_d2l_tied_layer_has_torchs_six_parameters_and_state_dict_keys():
    net, twin = d2l_tied_nets()
    assert len(list(net.parameters())) == len(list(twin.parameters())) == 6
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in twin.named_parameters()]
    assert list(net.state_dict()) == list(twin.state_dict())  # "4.weight" is kept
    assert np.array_equal(net.state_dict()["2.weight"], net.state_dict()["4.weight"])


@pytest.mark.parametrize("make_optimizer", [
    lambda params, lib: lib.SGD(params, lr=0.1),
    lambda params, lib: lib.SGD(params, lr=0.05, momentum=0.9),
    lambda params, lib: lib.Adam(params, lr=0.01),
], ids=["sgd", "sgd_momentum", "adam"])
def test_d2l_tied_layer_optimizer_steps_match_torch(make_optimizer):
    net, twin = d2l_tied_nets()
    ours, theirs = make_optimizer(net.parameters(), optim), make_optimizer(
        twin.parameters(), torch.optim)
    for step in range(4):
        x, grad_y = rng(step).standard_normal((5, 4)), rng(10 + step).standard_normal((5, 1))
        ours.zero_grad()
        theirs.zero_grad()
        forward_backward_both(net, twin, x, grad_y)
        ours.step()
        theirs.step()
    for key, value in twin.state_dict().items():
        check_against_torch(net.state_dict()[key], value.numpy(), key)


def test_sharing_parameter_objects_yields_each_once_as_torch():
    """The issue's other spelling of a tie: two modules holding the same Parameter objects."""
    init.manual_seed(1)
    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    b.weight, b.bias = a.weight, a.bias
    net = nn.Sequential(nn.Linear(4, 8), a, nn.ReLU(), b).double()
    ta, tb = tnn.Linear(8, 8), tnn.Linear(8, 8)
    tb.weight, tb.bias = ta.weight, ta.bias
    twin = to_torch(net, tnn.Sequential(tnn.Linear(4, 8), ta, tnn.ReLU(), tb))
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in twin.named_parameters()]
    assert len(list(net.parameters())) == 4
    assert list(net.state_dict()) == list(twin.state_dict())
    x = rng().standard_normal((3, 4))
    y, grad_x, ty, tx = forward_backward_both(net, twin, x, rng(1).standard_normal((3, 8)))
    assert_same_as_torch(net, twin, y, grad_x, ty, tx)


# ----------------------------------------------------------------------------- conv, batch norm


def test_shared_conv2d_matches_torch():
    init.manual_seed(2)
    conv = nn.Conv2d(3, 3, kernel_size=(3, 2), padding=(1, 0), stride=(1, 1))
    net = nn.Sequential(nn.Conv2d(2, 3, 1), conv, nn.Tanh(), conv).double()
    tconv = tnn.Conv2d(3, 3, kernel_size=(3, 2), padding=(1, 0))
    twin = to_torch(net, tnn.Sequential(tnn.Conv2d(2, 3, 1), tconv, tnn.Tanh(), tconv))
    x = rng().standard_normal((2, 2, 6, 7))  # (N, C, H, W); each use narrows W by one
    y, grad_x, ty, tx = forward_backward_both(net, twin, x, rng(1).standard_normal((2, 3, 6, 5)))
    assert_same_as_torch(net, twin, y, grad_x, ty, tx)
    assert len(list(net.parameters())) == 4


def test_shared_batchnorm2d_in_training_updates_running_stats_twice_as_torch():
    init.manual_seed(3)
    bn = nn.BatchNorm2d(3)
    net = nn.Sequential(nn.Conv2d(2, 3, (2, 3)), bn, nn.ReLU(), nn.Conv2d(3, 3, (3, 1),
                        padding=(1, 0)), bn).double()
    tbn = tnn.BatchNorm2d(3)
    twin = to_torch(net, tnn.Sequential(tnn.Conv2d(2, 3, (2, 3)), tbn, tnn.ReLU(),
                                        tnn.Conv2d(3, 3, (3, 1), padding=(1, 0)), tbn))
    for step in range(2):
        x = rng(step).standard_normal((4, 2, 5, 6))
        net.zero_grad()
        twin.zero_grad()
        y, grad_x, ty, tx = forward_backward_both(net, twin, x,
                                                  rng(9 + step).standard_normal((4, 3, 4, 4)))
        assert_same_as_torch(net, twin, y, grad_x, ty, tx)
    assert int(bn.num_batches_tracked) == int(tbn.num_batches_tracked) == 4
    assert list(net.state_dict()) == list(twin.state_dict())  # "1.*" and "4.*"
    for key, value in twin.state_dict().items():
        if value.dtype.is_floating_point:
            check_against_torch(net.state_dict()[key], value.numpy(), key)
    assert [n for n, _ in net.named_buffers()] == [n for n, _ in twin.named_buffers()]


# ----------------------------------------------------------------------------- traversal, loading


def test_named_modules_and_children_skip_repeats_as_torch():
    net, twin = d2l_tied_nets()
    for kwargs in ({}, {"remove_duplicate": False}):
        assert [n for n, _ in net.named_modules(**kwargs)] == [
            n for n, _ in twin.named_modules(**kwargs)]
    assert [n for n, _ in net.named_parameters(remove_duplicate=False)] == [
        n for n, _ in twin.named_parameters(remove_duplicate=False)]
    assert [n for n, _ in net.named_children()] == [n for n, _ in twin.named_children()]
    assert len(list(net.modules())) == len(list(twin.modules())) == 7
    assert len(net) == len(twin) == 7 and list(net)[4] is net[2]  # Sequential keeps each slot
    assert [n for n, _ in net.named_parameters(prefix="net")][0] == "net.0.weight"
    assert list(net[2].parameters(recurse=False)) == [net[2].weight, net[2].bias]
    assert list(net.parameters(recurse=False)) == []


def test_load_state_dict_of_a_tied_net_from_torch_keeps_the_tie():
    net, twin = d2l_tied_nets()
    with torch.no_grad():
        for param in twin.parameters():
            param.mul_(2.0)
    net.load_state_dict(twin.state_dict())  # strict: every key, "4.weight" too
    assert net[2] is net[4]
    for key, value in twin.state_dict().items():
        check_against_torch(net.state_dict()[key], value.numpy(), key)
    net.load_state_dict(net.state_dict())  # and our own, round trip


def test_zero_grad_and_to_reach_a_shared_parameter_once():
    net, _ = d2l_tied_nets()
    net(rng().standard_normal((2, 4)))
    net.backward(np.ones((2, 1)))
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.float()
    assert net[4].weight.dtype == np.float32 and net[2].weight is net[4].weight


# ----------------------------------------------------------------------------- every layer's stack


LAYERS = {  # each keeps (N, C, H, W) = (2, 4, 6, 5) unless said
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": lambda: nn.ELU(),
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": lambda: nn.SiLU(),
    "sigmoid": lambda: nn.Sigmoid(),
    "tanh": lambda: nn.Tanh(),
    "softmax": lambda: nn.Softmax(dim=1),
    "log_softmax": lambda: nn.LogSoftmax(dim=2),
    "conv2d": lambda: nn.Conv2d(4, 4, (3, 2), padding=(1, 0)),  # W: 5 -> 4 -> 3
    "max_pool": lambda: nn.MaxPool2d(3, stride=1, padding=1),
    "avg_pool": lambda: nn.AvgPool2d((2, 3), stride=1, padding=(1, 1)),  # H: 6 -> 7 -> 8
    "adaptive_avg_pool": lambda: nn.AdaptiveAvgPool2d((3, 2)),  # (6, 5) -> (3, 2) -> (3, 2)
    "batch_norm": lambda: nn.BatchNorm2d(4),
    "layer_norm": lambda: nn.LayerNorm((6, 5)),
    "group_norm": lambda: nn.GroupNorm(2, 4),
    "dropout_eval": lambda: nn.Dropout(0.5).eval(),
    "flatten": lambda: nn.Flatten(2),  # (2, 4, 6, 5) -> (2, 4, 30) -> (2, 4, 30)
    "linear": lambda: nn.Sequential(nn.Flatten(), nn.Linear(120, 120)),
    "residual_block": lambda: nn.ResidualBlock(4),
    "residual": lambda: nn.Residual(4, 4),
    "inception": lambda: nn.Sequential(nn.Conv2d(4, 88, 1), nn.InceptionA(88), nn.Conv2d(88, 4, 1)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_layer_used_twice_equals_two_copies_with_the_same_weights(name):
    """``Sequential(f, f)`` equals ``Sequential(f1, f2)`` (f1, f2 copies of f) in output and
    grad_x, and f's gradient is the sum of f1's and f2's: each use pops its own cache."""
    init.manual_seed(4)
    shared = LAYERS[name]().double()
    first, second = LAYERS[name]().double(), LAYERS[name]().double()
    for copy in (first, second):
        copy.load_state_dict(shared.state_dict())
        copy.train(shared.training)
    tied, untied = nn.Sequential(shared, shared), nn.Sequential(first, second)
    x = rng().standard_normal((2, 4, 6, 5))
    y = tied(x)
    expected = untied(x)
    grad_y = rng(1).standard_normal(y.shape)
    check_against_torch(y, expected, "forward")
    check_against_torch(tied.backward(grad_y), untied.backward(grad_y), "grad_x")
    for (key, param), p1, p2 in zip(shared.named_parameters(), first.parameters(),
                                    second.parameters(), strict=True):
        check_against_torch(param.grad, p1.grad + p2.grad, f"grad of {key}")
    with pytest.raises(RuntimeError, match="no forward pass to differentiate"):
        tied.backward(grad_y)  # both caches were used


def test_shared_dropout_draws_a_mask_per_use_and_backward_uses_each():
    init.manual_seed(5)
    drop = nn.Dropout(0.4).double()
    net = nn.Sequential(drop, nn.Tanh(), drop)
    x = rng().standard_normal((3, 7))
    y = net(x)
    mask1, mask2 = (cache.mask for cache in drop._caches)
    assert not np.array_equal(mask1, mask2)
    assert np.array_equal(drop._cache.mask, mask2)  # the newest, next to be popped
    check_against_torch(y, np.tanh(x * mask1) * mask2)
    grad_y = rng(1).standard_normal(y.shape)
    expected = grad_y * mask2 * (1 - np.tanh(x * mask1) ** 2) * mask1
    check_against_torch(net.backward(grad_y), expected, "grad_x")


# ----------------------------------------------------------------------------- freeing caches


def test_forwards_without_backward_do_not_pile_up_caches():
    net, _ = d2l_tied_nets()
    x = rng().standard_normal((2, 4))
    for mode in (False, True):  # eval (predict), then training forwards never differentiated
        net.train(mode)
        for _ in range(5):
            net(x)
        assert len(net[2]._caches) == 2 and len(net[0]._caches) == 1
    trace(net, (4,), np.float64)  # summary's traced forward
    assert len(net[2]._caches) <= 2


def test_backward_after_an_undifferentiated_forward_uses_the_newest_pass():
    net, twin = d2l_tied_nets()
    net(rng(7).standard_normal((2, 4)))  # never differentiated, e.g. an evaluation
    x = rng().standard_normal((2, 4))
    y, grad_x, ty, tx = forward_backward_both(net, twin, x, rng(1).standard_normal((2, 1)))
    assert_same_as_torch(net, twin, y, grad_x, ty, tx)


def test_a_forward_that_raised_leaves_no_stale_cache():
    init.manual_seed(6)
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2)).double()
    with pytest.raises(ValueError, match="expected x of shape"):
        net(rng().standard_normal((2, 4)))  # the first Linear saved a cache, then the second raised
    fixed = nn.Sequential(net[0], nn.ReLU())
    fixed(rng().standard_normal((2, 4)))
    assert len(net[0]._caches) == 1  # the failed pass's cache was freed by the next call


def test_backward_without_forward_raises_naming_the_layer():
    with pytest.raises(RuntimeError, match="Linear.backward: no forward pass"):
        nn.Linear(2, 3).backward(np.zeros((1, 3), np.float32))
