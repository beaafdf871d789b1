"""The layers of issue 16 against PyTorch autograd: activations, (Log)Softmax, norms, Dropout2d.

Every layer's forward, ``grad_x`` and parameter gradients equal torch's in float64 to 1e-10
(``checks.check_against_torch``: relative, plus 1e-10 of the largest value or of 1, since a
one-element LayerNorm or GroupNorm group is exactly 0 here and rounding noise in torch) on
hypothesis-drawn shapes, with exact zeros
sprinkled in so the kinks of LeakyReLU and ELU are hit. LayerNorm and GroupNorm state dicts
move between ours and torch's both ways with PyTorch's keys and default initialisation.
Dropout2d reproduces what torch 2.13 does with 2-D, 3-D and 5-D inputs, warnings included.
Every argument check raises an error that names the argument.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorch_cnn import init, nn

from .checks import check_against_torch as close

torch = pytest.importorskip("torch")
tnn = torch.nn


def rng(seed=0):
    return np.random.default_rng(seed)


def values(shape, seed, zeros=True):
    """Normal values times 3 with an offset, and some exact zeros (the kinks)."""
    g = rng(seed)
    x = 3 * g.standard_normal(shape) + g.uniform(-1, 1)
    if zeros:
        x[g.random(shape) < 0.1] = 0.0
    return x


def match_torch(layer, torch_layer, x, seed=1, dtype=np.float64):
    """``layer``'s forward, grad_x and parameter gradients equal ``torch_layer``'s.

    Our state dict is loaded into the torch layer (strictly: the keys must be torch's).
    """
    layer.to(dtype)
    torch_layer.to(torch.float64 if dtype == np.float64 else torch.float32)
    torch_layer.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x = x.astype(dtype)
    y = layer(x)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = torch_layer(tx)
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    close(y, ty.detach().numpy(), "forward")
    grad_y = rng(seed).standard_normal(y.shape).astype(dtype)
    grad_x = layer.backward(grad_y)
    ty.backward(torch.from_numpy(grad_y))
    assert grad_x.dtype == dtype
    close(grad_x, tx.grad.numpy(), "grad_x")
    theirs = dict(torch_layer.named_parameters())
    ours = dict(layer.named_parameters())
    assert list(ours) == list(theirs)
    for name, param in ours.items():
        assert param.grad.dtype == dtype
        close(param.grad, theirs[name].grad.numpy(), f"grad of {name}")


@st.composite
def shapes(draw, min_dims=1, max_dims=4, max_side=5):
    """A shape of ``min_dims..max_dims`` dims, each 1..max_side, and a seed for its values."""
    shape = draw(st.lists(st.integers(1, max_side), min_size=min_dims, max_size=max_dims))
    return tuple(shape), draw(st.integers(0, 2**32 - 1))


# --------------------------------------------------------------------------- element-wise

ACTIVATIONS = {
    "LeakyReLU()": (lambda: nn.LeakyReLU(), lambda: tnn.LeakyReLU()),
    "LeakyReLU(0.2)": (lambda: nn.LeakyReLU(0.2), lambda: tnn.LeakyReLU(0.2)),
    "LeakyReLU(-1.5)": (lambda: nn.LeakyReLU(-1.5), lambda: tnn.LeakyReLU(-1.5)),
    "ELU()": (lambda: nn.ELU(), lambda: tnn.ELU()),
    "ELU(alpha=0.3)": (lambda: nn.ELU(alpha=0.3), lambda: tnn.ELU(alpha=0.3)),
    "GELU()": (lambda: nn.GELU(), lambda: tnn.GELU()),
    "GELU('none')": (lambda: nn.GELU("none"), lambda: tnn.GELU("none")),
    "GELU('tanh')": (lambda: nn.GELU(approximate="tanh"), lambda: tnn.GELU(approximate="tanh")),
    "SiLU()": (lambda: nn.SiLU(), lambda: tnn.SiLU()),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@given(problem=shapes())
def test_activation_matches_torch(name, problem):
    ours, theirs = ACTIVATIONS[name]
    shape, seed = problem
    match_torch(ours(), theirs(), values(shape, seed))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_at_kink_and_extremes_matches_torch(name):
    ours, theirs = ACTIVATIONS[name]
    x = np.array([[0.0, -0.0, 1e-300, -1e-300, 60.0, -60.0, 800.0, -800.0, 3.0, -3.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        match_torch(ours(), theirs(), x)


ELEMENTWISE = {
    **ACTIVATIONS,
    "ReLU()": (lambda: nn.ReLU(), lambda: tnn.ReLU()),
    "Sigmoid()": (lambda: nn.Sigmoid(), lambda: tnn.Sigmoid()),
    "Tanh()": (lambda: nn.Tanh(), lambda: tnn.Tanh()),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_activation_nan_and_inf_values_and_gradients_match_torch(name):
    """A NaN input gives what PyTorch gives, forward and backward (ReLU and ELU pass a
    NaN's gradient through: PyTorch's test is ``x <= 0``, false for NaN)."""
    ours, theirs = ELEMENTWISE[name]
    x = np.array([[np.nan, np.inf, -np.inf, 0.0, 2.0, -2.0]])
    with np.errstate(all="ignore"):
        match_torch(ours(), theirs(), x)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_float32_stays_float32(name):
    ours, theirs = ACTIVATIONS[name]
    match_torch(ours(), theirs(), values((3, 4, 5), 7), dtype=np.float32)


def test_activation_reprs_are_torchs():
    for name, (ours, theirs) in ACTIVATIONS.items():
        assert repr(ours()) == repr(theirs()), name


@pytest.mark.parametrize("make, argument", [
    (lambda: nn.LeakyReLU("0.1"), "negative_slope"),
    (lambda: nn.LeakyReLU(True), "negative_slope"),
    (lambda: nn.ELU(None), "alpha"),
])
def test_activation_rejects_a_non_number(make, argument):
    with pytest.raises(TypeError, match=argument):
        make()


def test_gelu_rejects_an_unknown_approximation():
    with pytest.raises(ValueError, match="approximate: expected 'none' or 'tanh', got 'erf'"):
        nn.GELU("erf")


# --------------------------------------------------------------------------- softmax


@st.composite
def softmax_problems(draw):
    shape, seed = draw(shapes())
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return shape, seed, dim


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
@given(problem=softmax_problems())
def test_softmax_matches_torch_on_every_dim(kind, problem):
    shape, seed, dim = problem
    x = values(shape, seed, zeros=False)
    match_torch(getattr(nn, kind)(dim), getattr(tnn, kind)(dim), x)


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2, -3])
def test_softmax_large_logits_match_torch(kind, dim):
    x = values((3, 4, 5), 2, zeros=False)
    x[1] += 1e4  # exp would overflow without the max subtracted
    x[:, 2] -= 1e4
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        match_torch(getattr(nn, kind)(dim=dim), getattr(tnn, kind)(dim=dim), x)


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
def test_softmax_dim_is_an_int_or_none(kind):
    cls = getattr(nn, kind)
    with pytest.raises(TypeError, match="dim: expected an int or None, got float"):
        cls(1.0)
    with pytest.raises(TypeError, match="dim: expected an int or None, got bool"):
        cls(True)
    assert repr(cls(-1)) == repr(getattr(tnn, kind)(-1))
    assert repr(cls()) == repr(getattr(tnn, kind)())


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape", [(5,), (2, 3), (3, 4, 5), (2, 3, 4, 5)])
def test_softmax_without_dim_warns_and_picks_torchs_implicit_dim(kind, shape):
    """PyTorch's deprecated implicit dim: 0 for 1-D and 3-D input, else 1, with its warning."""
    op = "softmax" if kind == "Softmax" else "log_softmax"
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {op} has been"):
        match_torch(getattr(nn, kind)(), getattr(tnn, kind)(), values(shape, 3, zeros=False))


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("dim", [2, -3])
def test_softmax_rejects_a_dim_x_does_not_have(kind, dim):
    layer = getattr(nn, kind)(dim)
    with pytest.raises(ValueError, match=rf"dim: expected a dimension of x, in \[-2, 1\] .*"
                                         rf"\(2, 3\), got {dim}"):
        layer(np.ones((2, 3)))


# --------------------------------------------------------------------------- LayerNorm


def randomise(layer, seed):
    """Give every parameter random values (ones and zeros would hide a swapped weight)."""
    for param in layer.parameters():
        param.data = rng(seed).standard_normal(param.shape).astype(param.dtype)
        seed += 1
    return layer


@st.composite
def layer_norm_problems(draw):
    leading = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    normalized = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    as_int = len(normalized) == 1 and draw(st.booleans())
    kwargs = dict(elementwise_affine=draw(st.booleans()), bias=draw(st.booleans()),
                  eps=draw(st.sampled_from([1e-5, 1e-3, 0.5])))
    return (tuple(leading) + tuple(normalized), normalized[0] if as_int else tuple(normalized),
            kwargs, draw(st.integers(0, 2**32 - 1)))


@given(problem=layer_norm_problems())
def test_layer_norm_matches_torch(problem):
    shape, normalized_shape, kwargs, seed = problem
    layer = randomise(nn.LayerNorm(normalized_shape, **kwargs), seed)
    match_torch(layer, tnn.LayerNorm(normalized_shape, **kwargs), values(shape, seed))


def test_layer_norm_float32_matches_torch():
    layer = randomise(nn.LayerNorm((4, 5)), 3)
    match_torch(layer, tnn.LayerNorm((4, 5)), values((2, 3, 4, 5), 3), dtype=np.float32)


# --------------------------------------------------------------------------- GroupNorm


@st.composite
def group_norm_problems(draw):
    G, per_group, N = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    kwargs = dict(affine=draw(st.booleans()), bias=draw(st.booleans()),
                  eps=draw(st.sampled_from([1e-5, 1e-3, 0.5])))
    return (N, G * per_group, *spatial), G, kwargs, draw(st.integers(0, 2**32 - 1))


@given(problem=group_norm_problems())
def test_group_norm_matches_torch(problem):
    shape, G, kwargs, seed = problem
    C = shape[1]
    layer = randomise(nn.GroupNorm(G, C, **kwargs), seed)
    if np.prod(shape) // G == 1:  # one value per group over the batch: torch refuses it
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            tnn.GroupNorm(G, C, **kwargs)(torch.ones(shape))
        with pytest.raises(ValueError, match=r"x: expected more than 1 value per group"):
            layer(np.ones(shape))
        return
    match_torch(layer, tnn.GroupNorm(G, C, **kwargs), values(shape, seed))


def test_group_norm_float32_matches_torch():
    layer = randomise(nn.GroupNorm(2, 6), 4)
    match_torch(layer, tnn.GroupNorm(2, 6), values((2, 6, 3, 5), 4), dtype=np.float32)


# --------------------------------------------------------------------------- norms: state dicts

NORMS = {
    "LayerNorm(5)": (lambda: nn.LayerNorm(5), lambda: tnn.LayerNorm(5)),
    "LayerNorm([3, 5])": (lambda: nn.LayerNorm([3, 5]), lambda: tnn.LayerNorm([3, 5])),
    "LayerNorm(5, bias=False)": (lambda: nn.LayerNorm(5, bias=False),
                                 lambda: tnn.LayerNorm(5, bias=False)),
    "LayerNorm(5, elementwise_affine=False)": (
        lambda: nn.LayerNorm(5, elementwise_affine=False),
        lambda: tnn.LayerNorm(5, elementwise_affine=False)),
    "LayerNorm((3, 5), 1e-3, False, False)": (lambda: nn.LayerNorm((3, 5), 1e-3, False, False),
                                              lambda: tnn.LayerNorm((3, 5), 1e-3, False, False)),
    "GroupNorm(3, 6)": (lambda: nn.GroupNorm(3, 6), lambda: tnn.GroupNorm(3, 6)),
    "GroupNorm(2, 6, 1e-3, False)": (lambda: nn.GroupNorm(2, 6, 1e-3, False),
                                     lambda: tnn.GroupNorm(2, 6, 1e-3, False)),
    "GroupNorm(3, 6, bias=False)": (lambda: nn.GroupNorm(3, 6, bias=False),
                                    lambda: tnn.GroupNorm(3, 6, bias=False)),
}


@pytest.mark.parametrize("name", list(NORMS))
def test_norm_defaults_are_torchs(name):
    ours, theirs = NORMS[name][0](), NORMS[name][1]()
    state, torch_state = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(torch_state)  # keys and order
    for key, value in state.items():
        assert value.dtype == np.float32 and value.shape == tuple(torch_state[key].shape)
        assert np.array_equal(value, torch_state[key].numpy()), key  # ones and zeros
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    assert repr(ours) == repr(theirs)
    assert (ours.eps, ours.training) == (theirs.eps, theirs.training)


@pytest.mark.parametrize("name", list(NORMS))
def test_norm_state_dict_moves_both_ways(name):
    make_ours, make_theirs = NORMS[name]
    theirs = make_theirs().double()
    with torch.no_grad():
        for param in theirs.parameters():
            param.normal_()
    ours = make_ours().double()
    ours.load_state_dict(theirs.state_dict())  # torch -> ours
    back = make_theirs().double()
    back.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for key, value in theirs.state_dict().items():  # ours -> torch: nothing changed
        assert torch.equal(back.state_dict()[key], value), key
    x = values((2, 6, 3, 5), 5, zeros=False)
    close(ours(x), theirs(torch.from_numpy(x)).detach().numpy(), "forward after loading")


def test_norm_state_dict_of_another_configuration_is_refused():
    with pytest.raises(ValueError, match="missing keys: \\['bias'\\]"):
        nn.LayerNorm(5).load_state_dict(tnn.LayerNorm(5, bias=False).state_dict())
    with pytest.raises(ValueError, match="shape mismatch for 'weight'"):
        nn.GroupNorm(2, 6).load_state_dict(tnn.GroupNorm(2, 4).state_dict())


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.LayerNorm(0), ValueError, "normalized_shape: expected a positive int, got 0"),
    (lambda: nn.LayerNorm((3, -1)), ValueError, "normalized_shape: .* got -1"),
    (lambda: nn.LayerNorm(()), ValueError, "normalized_shape: expected at least one dimension"),
    (lambda: nn.LayerNorm(3.0), TypeError, "normalized_shape: expected an int or a sequence"),
    (lambda: nn.LayerNorm((3, 2.5)), TypeError, "normalized_shape: expected an int, got float"),
    (lambda: nn.GroupNorm(4, 6), ValueError,
     r"num_channels \(6\) must be divisible by num_groups \(4\)"),
    (lambda: nn.GroupNorm(0, 6), ValueError, "num_groups: expected a positive int, got 0"),
    (lambda: nn.GroupNorm(2, -4), ValueError, "num_channels: expected a positive int, got -4"),
    (lambda: nn.GroupNorm(1.5, 6), TypeError, "num_groups: expected an int, got float"),
])
def test_norm_rejects_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("layer, x, message", [
    (nn.LayerNorm((3, 5)), np.ones((2, 5, 3)),
     r"LayerNorm: expected x of shape \(\*, 3, 5\) .* got \(2, 5, 3\)"),
    (nn.LayerNorm((3, 5)), np.ones(5), r"LayerNorm: expected x .* got \(5,\)"),
    (nn.GroupNorm(2, 4), np.ones((2, 6, 3)),
     r"GroupNorm: expected x of shape \(N, 4, \*\), got \(2, 6, 3\)"),
    (nn.GroupNorm(2, 4), np.ones(4), r"GroupNorm: expected x .* got \(4,\)"),
])
def test_norm_rejects_an_input_of_the_wrong_shape(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer(x)


# --------------------------------------------------------------------------- Dropout2d


def torch_warnings(x_shape, p=0.5, train=True):
    """The messages torch's Dropout2d warns with on an input of ``x_shape``."""
    layer = tnn.Dropout2d(p).train(train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer(torch.ones(x_shape))
    return [str(w.message) for w in caught]


def our_warnings(x_shape, p=0.5, train=True):
    layer = nn.Dropout2d(p).train(train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer(np.ones(x_shape))
    assert all(w.category is UserWarning for w in caught)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("x_shape", [(2, 3), (2, 3, 4), (2, 3, 4, 5), (2, 3, 4, 5, 2)])
@pytest.mark.parametrize("train", [True, False])
def test_dropout2d_warns_as_torch_does(x_shape, train):
    assert our_warnings(x_shape, train=train) == torch_warnings(x_shape, train=train)
    assert (our_warnings(x_shape) == []) == (len(x_shape) == 4)


@pytest.mark.parametrize("x_shape, mask_shape", [
    ((6, 7), (6, 7)),  # (N, C): element-wise
    ((6, 7, 9), (6, 7, 1)),  # read as batched (N, C, L), not as (C, H, W)
    ((6, 7, 9, 2), (6, 7, 1, 1)),
    ((6, 7, 3, 2, 2), (6, 7, 1, 1, 1)),
])
def test_dropout2d_zeroes_the_dims_torch_zeroes_together(x_shape, mask_shape):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y_torch = tnn.Dropout2d(0.5)(torch.ones(x_shape, dtype=torch.float64)).numpy()
        init.manual_seed(0)
        layer = nn.Dropout2d(0.5)
        y = layer(np.ones(x_shape))
    assert layer._cache.mask.shape == mask_shape
    for out in (y, y_torch):  # constant where the mask broadcasts, varying where it does not
        reduced = tuple(d for d in range(len(x_shape)) if mask_shape[d] == 1)
        assert np.array_equal(out.min(axis=reduced), out.max(axis=reduced))
        assert set(np.unique(out)) == {0.0, 2.0}
        channels = out.reshape(-1, *x_shape[len(mask_shape) - len(reduced):])
        assert len({c.tobytes() for c in channels}) > 1


@pytest.mark.parametrize("x_shape", [(5, 4), (5, 4, 3), (5, 4, 3, 2)])
def test_dropout2d_backward_uses_the_seeded_forward_mask(x_shape):
    x = values(x_shape, 0, zeros=False)
    grad_y = rng(1).standard_normal(x_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init.manual_seed(4)
        layer = nn.Dropout2d(0.3)
        y = layer(x)
        mask = layer._cache.mask
        grad_x = layer.backward(grad_y)
        init.manual_seed(4)
        again = nn.Dropout2d(0.3)(x)
    assert np.array_equal(y, x * mask) and np.array_equal(grad_x, grad_y * mask)
    assert set(np.unique(mask)) <= {0.0, 1 / 0.7}
    assert np.array_equal(again, y)  # the framework's generator: reproducible


def test_dropout2d_on_1d_input_is_torchs():
    x = np.arange(1.0, 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="at least 2 dimensions"):
            tnn.Dropout2d(0.5)(torch.from_numpy(x))
        with pytest.raises(ValueError, match=r"Dropout2d: expected x with at least 2 dim.*\(3,\)"):
            nn.Dropout2d(0.5)(x)
        assert np.array_equal(nn.Dropout2d(1.0)(x), tnn.Dropout2d(1.0)(torch.from_numpy(x)))
        assert np.array_equal(nn.Dropout2d(0.5).eval()(x), x)
        assert np.array_equal(nn.Dropout2d(0.0)(x), x)


def test_mnist_walkthrough_model_with_dropout2d_on_a_linear_output_trains_and_matches_torch():
    """PyTorch's MNIST example: Dropout2d(0.25) after pooling, Dropout2d(0.5) after fc1."""

    def build(m):
        return m.Sequential(m.Conv2d(1, 32, 3), m.ReLU(), m.Conv2d(32, 64, 3), m.ReLU(),
                            m.MaxPool2d(2), m.Dropout2d(0.25), m.Flatten(), m.Linear(9216, 128),
                            m.ReLU(), m.Dropout2d(0.5), m.Linear(128, 10), m.LogSoftmax(dim=1))

    ours, theirs = build(nn).double(), build(tnn).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = rng(0).standard_normal((2, 1, 28, 28))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = ours(x)  # training: the (N, 128) input is dropped element-wise, with a warning
        grad_x = ours.backward(np.ones_like(y))
    assert y.shape == (2, 10) and grad_x.shape == x.shape
    assert [str(w.message) for w in caught] == torch_warnings((2, 128))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        close(ours.eval()(x), theirs.eval()(torch.from_numpy(x)).detach().numpy(), "eval")


# --------------------------------------------------------------------------- the protocol

NEW_LAYERS = [lambda: nn.LeakyReLU(), lambda: nn.ELU(), lambda: nn.GELU(), lambda: nn.SiLU(),
              lambda: nn.Softmax(1), lambda: nn.LayerNorm(3), lambda: nn.GroupNorm(1, 2)]


@pytest.mark.parametrize("make", NEW_LAYERS)
def test_backward_without_forward_is_refused(make):
    layer = make()
    with pytest.raises(RuntimeError, match="no forward pass to differentiate"):
        layer.backward(np.ones((2, 2, 3)))
    layer(np.ones((2, 2, 3)))
    layer.backward(np.ones((2, 2, 3)))
    with pytest.raises(RuntimeError, match="no forward pass"):  # each forward, one backward
        layer.backward(np.ones((2, 2, 3)))
