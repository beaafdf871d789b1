"""One framework on every backend: a model moved with ``model.to("cuda")`` trains on the device.

The parameters, their gradients, the optimizer's state and batch norm's running statistics
live on the device; ``minitorch_cnn.nn``, ``losses`` and ``optim`` run through the functional
API on the cuda backend, and the only host copy in a step is the loss. Each test trains a
model here and its PyTorch twin (``reference.models`` or ``torch.nn``) from the same weights
on the same batches, float64, and compares the loss of every step and every parameter after
it (PyTorch's keys, via ``state_dict()``, which is NumPy whatever the device).

Without a GPU this runs in the Numba CUDA simulator, where one LeNet-5 step takes about 20 s
(each CUDA thread is a Python thread): batches of one image, the ``direct`` conv rung (the
implicit-GEMM rung is compared with torch on its own in tests/test_cuda_kernels.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_cnn as mc

pytestmark = [pytest.mark.skipif("cuda" not in mc.backends(), reason="no GPU and no simulator"),
              pytest.mark.usefixtures("strict_device_arrays")]  # conftest: a GPU's arrays

torch = pytest.importorskip("torch")

import kernels.cuda as kc  # noqa: E402
import reference.models as R  # noqa: E402
from minitorch_cnn import init, losses, models, nn, optim  # noqa: E402
from minitorch_cnn.device import is_device_array  # noqa: E402


def _twin_of(model, twin):
    twin = twin.double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return twin


def _train_both(model, twin, shape, steps, make_opt, make_torch_opt, num_classes=10):
    """``steps`` steps of ours on cuda and of the twin; (our losses, torch's losses)."""
    from numba import cuda

    model.to("cuda")
    model.needs_input_grad = False
    opt, topt = make_opt(model.parameters()), make_torch_opt(twin.parameters())
    crit = losses.CrossEntropyLoss()
    rng = np.random.default_rng(7)
    ours, theirs = [], []
    with mc.use_backend("cuda"), kc.conv_algorithm("direct"):
        for _ in range(steps):
            x = rng.standard_normal(shape)
            y = rng.integers(0, num_classes, shape[0])
            ours.append(crit(model(cuda.to_device(x)), y))
            opt.zero_grad()
            model.backward(crit.backward())
            for name, p in model.named_parameters():  # gradients accumulate on the device
                assert is_device_array(p.grad), name
            opt.step()
            loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)),
                                                     torch.from_numpy(y))
            topt.zero_grad()
            loss.backward()
            topt.step()
            theirs.append(loss.item())
    _train_both.opt = opt  # the last run's optimizer, for a test to inspect its state
    return ours, theirs


def _assert_same(model, twin, ours, theirs):
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    assert ours[0] != ours[-1] or len(ours) == 1
    mine = model.state_dict()
    for key, value in twin.state_dict().items():
        assert isinstance(mine[key], np.ndarray), key  # state_dict() is NumPy on any device
        ref = value.numpy()
        np.testing.assert_allclose(mine[key], ref, rtol=1e-8, atol=1e-8 * max(
            1.0, float(np.abs(ref).max(initial=0))), err_msg=key)


def _sgd(params):
    return optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)


def _torch_sgd(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)


def test_lenet5_two_sgd_steps_on_cuda_match_torch():
    init.manual_seed(0)
    model = models.lenet5().double()
    twin = _twin_of(model, R.lenet5())
    ours, theirs = _train_both(model, twin, (1, 1, 28, 28), 2, _sgd, _torch_sgd)
    _assert_same(model, twin, ours, theirs)
    assert model.device == "cuda"
    assert all(is_device_array(s["momentum_buffer"]) for s in _train_both.opt.state.values())


def test_mnist_cnn_sgd_step_on_cuda_matches_torch():
    init.manual_seed(1)
    model = models.mnist_cnn().double()
    twin = _twin_of(model, R.mnist_cnn())
    ours, theirs = _train_both(model, twin, (1, 1, 28, 28), 1, _sgd, _torch_sgd)
    _assert_same(model, twin, ours, theirs)


def _small_residual_net():
    """A residual net small enough for the simulator: conv, batch norm, the lecture's
    residual block, max pool, linear, on (N, 1, 8, 8)."""
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.ResidualBlock(3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(48, 10))


def _small_residual_twin():
    tnn = torch.nn
    return tnn.Sequential(tnn.Conv2d(1, 3, 3, padding=1), tnn.BatchNorm2d(3), tnn.ReLU(),
                          R.ResidualBlock(3), tnn.MaxPool2d(2), tnn.Flatten(),
                          tnn.Linear(48, 10))


def test_residual_net_with_batch_norm_trains_on_cuda_and_its_checkpoint_loads_on_the_cpu():
    init.manual_seed(2)
    model = _small_residual_net().double()
    twin = _twin_of(model, _small_residual_twin())
    ours, theirs = _train_both(model, twin, (2, 1, 8, 8), 2, _sgd, _torch_sgd)
    _assert_same(model, twin, ours, theirs)  # running statistics included (state dict)
    assert is_device_array(model[1].running_mean)

    # the checkpoint round trip: saved from the device model, loaded into a CPU model
    checkpoint = model.state_dict()
    cpu_model = _small_residual_net().double()
    cpu_model.load_state_dict(checkpoint)
    x = np.random.default_rng(3).standard_normal((2, 1, 8, 8))
    model.eval()
    cpu_model.eval()
    from numba import cuda

    with mc.use_backend("cuda"), kc.conv_algorithm("direct"):
        on_device = model(cuda.to_device(x)).copy_to_host()
    with mc.use_backend("numpy"):
        np.testing.assert_allclose(cpu_model(x), on_device, rtol=1e-10, atol=1e-12)

    # and back: to("cpu") gives NumPy parameters equal to the checkpoint
    model.to("cpu")
    assert model.device == "cpu"
    for name, p in model.named_parameters():
        assert isinstance(p.data, np.ndarray) and isinstance(p.grad, np.ndarray), name
        np.testing.assert_array_equal(p.data, checkpoint[name])


def test_group_norm_and_layer_norm_train_on_cuda_match_torch():
    """GroupNorm and LayerNorm (over a whole (C, H, W) sample and over the last dim) run on
    the device: the batch_norm kernels and a depthwise 1x1 conv, no NumPy on device arrays."""
    init.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 4, 2), nn.GroupNorm(2, 4), nn.ReLU(),
                          nn.LayerNorm((4, 2, 2)), nn.LayerNorm(2), nn.Flatten(),
                          nn.Linear(16, 3)).double()
    tnn = torch.nn
    twin = _twin_of(model, tnn.Sequential(tnn.Conv2d(1, 4, 2), tnn.GroupNorm(2, 4), tnn.ReLU(),
                                          tnn.LayerNorm((4, 2, 2)), tnn.LayerNorm(2),
                                          tnn.Flatten(), tnn.Linear(16, 3)))
    ours, theirs = _train_both(model, twin, (2, 1, 3, 3), 1, _sgd, _torch_sgd, num_classes=3)
    _assert_same(model, twin, ours, theirs)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_steps_on_the_device_match_torch(amsgrad):
    init.manual_seed(4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double()
    twin = _twin_of(model, torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)))

    def ours(params):
        return optim.Adam(params, lr=0.05, weight_decay=1e-2, amsgrad=amsgrad)

    def theirs(params):
        return torch.optim.Adam(params, lr=0.05, weight_decay=1e-2, amsgrad=amsgrad)

    losses_ours, losses_theirs = _train_both(model, twin, (4, 3, 2, 2), 3, ours, theirs,
                                             num_classes=3)
    _assert_same(model, twin, losses_ours, losses_theirs)


def test_optimizer_state_dict_is_numpy_and_loads_back_onto_the_device():
    model = nn.Sequential(nn.Linear(4, 2)).double().to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.accumulate_grad(model_grad := _device_ones(p))
    assert is_device_array(model_grad)
    opt.step()
    saved = opt.state_dict()
    buffers = [s["momentum_buffer"] for s in saved["state"].values()]
    assert all(isinstance(b, np.ndarray) for b in buffers)
    fresh = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    fresh.load_state_dict(saved)
    for p in model.parameters():
        loaded = fresh.state[p]["momentum_buffer"]
        assert is_device_array(loaded)
        np.testing.assert_array_equal(loaded.copy_to_host(), np.ones(p.shape))


def _device_ones(p):
    from numba import cuda

    return cuda.to_device(np.ones(p.shape, p.dtype))


def test_to_rejects_unknown_devices_and_dtypes_and_moves_a_host_gradient_over():
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="device: expected one of"):
        model.to("gpu")
    with pytest.raises(TypeError, match="dtype: expected a floating-point dtype"):
        model.to(np.int32)
    with pytest.raises(TypeError, match="two devices"):
        model.to("cuda", "cpu")
    assert model.device == "cpu"  # nothing moved
    model.to("cuda", np.float64)
    assert model.device == "cuda" and model[0].weight.dtype == np.float64
    model[0].weight.accumulate_grad(np.ones((2, 2)))  # a host gradient joins it there
    assert is_device_array(model[0].weight.grad)
    opt = optim.SGD(model.parameters(), lr=0.1, maximize=True)
    model[0].weight.accumulate_grad(_device_ones(model[0].weight))
    with pytest.raises(ValueError, match="maximize: not supported"):
        opt.step()
