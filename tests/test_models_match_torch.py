"""Every model in ``minitorch_cnn.models`` against its PyTorch twin in ``reference.models``.

Same weights (copied with ``load_state_dict``), same input, float64: the logits, ``grad_x``
and every parameter gradient agree to 1e-8, and so do all parameters and batch-norm buffers
after 5 SGD steps with momentum and weight decay. Models run in training mode; dropout
draws its masks here and the twin's dropout layers are replaced by the same masks.
"""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_cnn as mc
from minitorch_cnn import losses, models, nn, optim

from . import checks

torch = pytest.importorskip("torch")
ref_models = pytest.importorskip("reference.models")

# SimpleCNN's dropout2 is a Dropout2d on (N, 128): warned about, as torch warns (tested in
# tests/test_lecture_models.py)
pytestmark = pytest.mark.filterwarnings("ignore:dropout2d:UserWarning")

TOL = 1e-8
INPUT_SHAPES = {name: (3, *shape) for name, shape in models.INPUT_SHAPES.items()}
INPUT_SHAPES["resnet18"] = (2, 1, 48, 48)  # its last stage then sees 2x2 maps
INPUT_SHAPES.update({name: (3, 3, 32, 32) for name in models.CIFAR2_MODELS})  # CIFAR-2


@pytest.fixture(autouse=True)
def _numpy_backend():
    with mc.use_backend("numpy"):
        yield


class MaskDropout(torch.nn.Module):
    """Stands in for the twin's dropout: multiplies by the mask our layer drew."""

    def __init__(self, ours: nn.Dropout):
        super().__init__()
        self.ours = ours

    def forward(self, x):
        mask = self.ours._cache.mask
        return x if mask is None else x * torch.from_numpy(mask)


def make_pair(name):
    mc.init.manual_seed(sum(map(ord, name)))
    model = models.MODELS[name]().double()
    twin = ref_models.MODELS[name]().double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Dropout):  # same mask in both
            parent, _, attr = module_name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, attr, MaskDropout(module))
    return model, twin


def criteria(name):
    if name in models.OUTPUTS_LOG_PROBS:
        return nn.NLLLoss(), torch.nn.NLLLoss()
    return nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()


def assert_close(ours, ref, what, scale=None):
    """The project's one comparison (tests/checks.py) at this file's tolerance."""
    checks.assert_close(ours, ref, what, tol=TOL, scale=scale)


def compare_grads(model, twin):
    theirs = dict(twin.named_parameters())
    assert [k for k, _ in model.named_parameters()] == list(theirs)
    scale = max(float(p.grad.abs().max()) for p in theirs.values())
    for name, param in model.named_parameters():
        ref = theirs[name].grad.numpy()
        # a conv bias right before batch norm has an exactly-zero gradient: rounding noise
        assert_close(param.grad, ref, f"grad of {name}",
                     scale=max(float(np.abs(ref).max()), 1e-3 * scale))


@pytest.mark.parametrize("name", list(models.MODELS))
def test_model_logits_and_gradients_match_torch(name):
    model, twin = make_pair(name)
    x = np.random.default_rng(0).standard_normal(INPUT_SHAPES[name])
    classes = models.NUM_CLASSES[name]
    target = np.arange(x.shape[0]) % classes
    crit, tcrit = criteria(name)

    y = model(x)
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = twin(tx)
    assert y.shape == (x.shape[0], classes)
    assert_close(y, ty.detach().numpy(), "logits")
    loss = crit(y, target)
    grad_x = model.backward(crit.backward())
    tloss = tcrit(ty, torch.from_numpy(target))
    tloss.backward()
    assert_close(loss, tloss.item(), "loss")
    assert_close(grad_x, tx.grad.numpy(), "grad_x")
    compare_grads(model, twin)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_model_parameters_after_5_sgd_steps_match_torch(name):
    model, twin = make_pair(name)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    topt = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3,
                           foreach=False)
    crit, tcrit = criteria(name)
    data = np.random.default_rng(1)
    for _ in range(5):
        x = data.standard_normal(INPUT_SHAPES[name])
        target = data.integers(0, models.NUM_CLASSES[name], x.shape[0])
        opt.zero_grad()
        topt.zero_grad()
        crit(model(x), target)
        tloss = tcrit(twin(torch.from_numpy(x)), torch.from_numpy(target))  # our masks
        model.backward(crit.backward())
        tloss.backward()
        opt.step()
        topt.step()
    theirs = twin.state_dict()
    for key, value in model.state_dict().items():
        assert_close(value, theirs[key].numpy(), f"{key} after 5 steps")


def test_every_model_is_checked_and_has_a_twin():
    assert set(models.MODELS) == set(ref_models.MODELS)
    assert set(INPUT_SHAPES) == set(models.MODELS)
    assert set(models.INPUT_SHAPES) == set(models.NUM_CLASSES) == set(models.MODELS)


def test_lenet5_is_exactly_the_design():
    model = models.lenet5()
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d",
                     "Flatten", "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear"]
    assert model[0].padding == (2, 2) and model[0].kernel_size == (5, 5)
    assert (model[7].in_features, model[9].in_features, model[11].out_features) == (400, 120, 10)
    assert sum(p.size for p in model.parameters()) == 61706


def test_simple_cnn_outputs_log_probabilities():
    model = models.simple_cnn().eval()
    y = model(np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32))
    np.testing.assert_allclose(np.exp(y).sum(axis=1), 1.0, rtol=1e-5)
    assert np.allclose(losses.log_softmax(y), y, atol=1e-5)
