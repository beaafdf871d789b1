"""``Module.apply`` against torch's on twin models, and ``init.trunc_normal_`` against the maths.

apply: the same modules in the same order as torch (children first, then self), d2l's
``net.apply(init_normal)`` / ``init_constant`` examples on a twin MLP. trunc_normal_: every value
in ``[a, b]``; the mean and standard deviation of a large draw equal the truncated normal's,
computed here from ``math.erf``; its quantiles are the exact ones (as torch's are); PyTorch's
warning and its arguments.
"""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pytest

from minitorch_cnn import init, models, nn

torch = pytest.importorskip("torch")
ref_models = pytest.importorskip("reference.models")


# --------------------------------------------------------------------------- Module.apply


def visit_order(model) -> list[str]:
    """The ``named_modules`` names of the modules ``model.apply`` visits, in order."""
    names = {id(module): name for name, module in model.named_modules()}
    seen: list[str] = []
    returned = model.apply(lambda module: seen.append(names[id(module)]))
    assert returned is model
    return seen


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
        self.proj = nn.Linear(3, 2)


class TorchBlock(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU())
        self.proj = torch.nn.Linear(3, 2)


def test_apply_visits_children_first_in_torchs_order_on_a_nested_twin():
    ours = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Sequential(Block(), nn.ReLU()), Block())
    twin = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(),
                               torch.nn.Sequential(TorchBlock(), torch.nn.ReLU()), TorchBlock())
    expected = visit_order(twin)
    assert expected[-1] == "" and expected[:3] == ["0", "1", "2.0.inner.0"]  # post-order
    assert visit_order(ours) == expected


def own_state(module) -> bool:
    """Whether the module itself (not a child) has a parameter or a buffer."""
    if isinstance(module, torch.nn.Module):
        return any(True for _ in module.parameters(recurse=False)) or any(
            True for _ in module.buffers(recurse=False))
    return any(p is not None for p in module._parameters.values()) or bool(module._buffers)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_apply_visits_the_stateful_modules_of_every_model_in_torchs_order(name):
    # Our models keep one activation/pooling module per position where the twins may reuse
    # one or call torch.nn.functional, so the parameterless modules differ; the rest may not.
    ours, twin = models.MODELS[name](), ref_models.MODELS[name]()
    keep = {n for n, m in ours.named_modules() if own_state(m)}
    keep_twin = {n for n, m in twin.named_modules() if own_state(m)}
    assert keep == keep_twin
    assert [n for n in visit_order(ours) if n in keep] == [
        n for n in visit_order(twin) if n in keep_twin]


def d2l_mlp(lib):
    return lib.Sequential(lib.Linear(4, 8), lib.ReLU(), lib.Linear(8, 1))


def test_apply_d2l_init_constant_and_an_order_counting_init_match_torch():
    """d2l's ``init_constant`` (weight 1, bias 0) and an init that numbers the Linears."""
    def make_init(lib_init, linear):
        counter = [0]

        def init_fn(module):
            if type(module) is linear:
                counter[0] += 1
                lib_init.constant_(module.weight, float(counter[0]))
                lib_init.zeros_(module.bias)
        return init_fn

    ours, twin = d2l_mlp(nn), d2l_mlp(torch.nn)
    ours.apply(make_init(init, nn.Linear))
    twin.apply(make_init(torch.nn.init, torch.nn.Linear))
    state = ours.state_dict()
    assert state["0.weight"][0, 0] == 1.0 and state["2.weight"][0, 0] == 2.0
    for key, value in twin.state_dict().items():
        assert np.array_equal(state[key], value.numpy()), key


def test_apply_d2l_init_normal_then_copy_gives_torchs_outputs():
    def init_normal(module):  # d2l, "Parameter Management": Built-in Initialization
        if type(module) is nn.Linear:
            init.normal_(module.weight, mean=0, std=0.01)
            init.zeros_(module.bias)

    init.manual_seed(0)
    ours = d2l_mlp(nn).double()
    ours.apply(init_normal)
    state = ours.state_dict()
    assert np.all(state["0.bias"] == 0) and np.all(state["2.bias"] == 0)
    assert 0.005 < state["0.weight"].std() < 0.015  # 32 draws of N(0, 0.01**2)
    twin = d2l_mlp(torch.nn).double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    x = np.random.default_rng(1).standard_normal((2, 4))
    np.testing.assert_allclose(ours(x), twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)


def test_apply_rejects_a_non_callable():
    with pytest.raises(TypeError, match=r"fn: expected a callable.*got int"):
        d2l_mlp(nn).apply(3)


# --------------------------------------------------------------------------- trunc_normal_


def truncated_normal_moments(mean, std, a, b):
    """Mean and standard deviation of N(mean, std**2) truncated to [a, b] (closed form)."""
    def pdf(x):
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def cdf(x):
        return (1 + math.erf(x / math.sqrt(2))) / 2

    alpha, beta = (a - mean) / std, (b - mean) / std
    Z = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / Z
    var = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / Z - shift**2
    return mean + std * shift, std * math.sqrt(var)


CASES = [  # (mean, std, a, b): PyTorch's default, asymmetric, a one-sided tail, ViT's 0.02
    (0.0, 1.0, -2.0, 2.0), (0.5, 2.0, -1.0, 3.0), (0.0, 1.0, 1.0, 4.0), (0.0, 0.02, -0.04, 0.04)]


@pytest.mark.parametrize("mean, std, a, b", CASES)
def test_trunc_normal_stays_in_a_b_with_the_truncated_normals_mean_and_std(mean, std, a, b):
    n = 200_000
    values = init.trunc_normal_(np.empty(n), mean, std, a, b, np.random.default_rng(0))
    assert a <= values.min() and values.max() <= b
    expected_mean, expected_std = truncated_normal_moments(mean, std, a, b)
    standard_error = expected_std / math.sqrt(n)
    assert abs(values.mean() - expected_mean) < 5 * standard_error
    assert abs(values.std() - expected_std) < 5 * standard_error  # SE of std < SE of mean here


def truncated_normal_quantiles(levels, mean, std, a, b):
    """Exact quantiles of the truncated normal and the standard error of a sample's, per level."""
    normal = statistics.NormalDist()
    low, high = normal.cdf((a - mean) / std), normal.cdf((b - mean) / std)
    z = np.array([normal.inv_cdf(low + q * (high - low)) for q in levels])
    density = np.array([normal.pdf(v) for v in z]) / (std * (high - low))
    return mean + std * z, density


@pytest.mark.parametrize("mean, std, a, b", CASES)
def test_trunc_normal_quantiles_are_the_truncated_normals_as_are_torchs(mean, std, a, b):
    n = 50_000  # torch's erfinv is slow near +-1 (the one-sided tail case)
    ours = init.trunc_normal_(np.empty(n), mean, std, a, b, np.random.default_rng(1))
    theirs = torch.nn.init.trunc_normal_(torch.empty(n, dtype=torch.float64), mean, std, a, b,
                                         generator=torch.Generator().manual_seed(1)).numpy()
    levels = np.linspace(0.05, 0.95, 19)
    exact, density = truncated_normal_quantiles(levels, mean, std, a, b)
    standard_error = np.sqrt(levels * (1 - levels) / n) / density  # of a sample quantile
    for name, sample in (("ours", ours), ("torch", theirs)):
        error = np.abs(np.quantile(sample, levels) - exact) / standard_error
        assert error.max() < 4, (name, error.round(1))


def test_trunc_normal_inverse_cdf_matches_the_standard_librarys():
    p = np.concatenate([np.logspace(-300, -1, 60), np.linspace(0.01, 0.99, 99),
                        1 - np.logspace(-15, -1, 30)])
    expected = np.array([statistics.NormalDist().inv_cdf(float(q)) for q in p])
    np.testing.assert_allclose(init._normal_ppf(p), expected, rtol=2e-9, atol=1e-12)


def test_trunc_normal_fills_in_place_keeps_dtype_and_uses_the_generator():
    param = nn.Parameter(np.zeros((3, 5), np.float32))
    assert init.trunc_normal_(param, std=0.5, generator=np.random.default_rng(7)) is param
    assert param.data.dtype == np.float32 and param.shape == (3, 5)
    again = init.trunc_normal_(np.zeros((3, 5), np.float32), std=0.5,
                               generator=np.random.default_rng(7))
    assert np.array_equal(param.data, again)
    init.manual_seed(3)
    first = init.trunc_normal_(np.zeros(8))
    init.manual_seed(3)
    assert np.array_equal(first, init.trunc_normal_(np.zeros(8)))  # the module-wide generator
    assert np.all(init.trunc_normal_(np.zeros(4), a=0.25, b=0.25) == 0.25)  # as torch: a == b


def test_trunc_normal_warns_as_torch_when_mean_is_far_from_the_interval():
    with pytest.warns(UserWarning, match="mean is more than 2 std from") as ours:
        values = init.trunc_normal_(np.zeros(100), mean=5.0, std=1.0, a=-1.0, b=1.0)
    with pytest.warns(UserWarning) as theirs:
        torch.nn.init.trunc_normal_(torch.zeros(100), mean=5.0, std=1.0, a=-1.0, b=1.0)
    assert str(ours[0].message) == str(theirs[0].message)
    assert np.all((-1 <= values) & (values <= 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init.trunc_normal_(np.zeros(4), mean=3.9, std=1.0, a=-2.0, b=2.0)  # within 2 std


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(std=0.0), ValueError, r"std: expected a positive number, got 0\.0"),
    (dict(std=-1.0), ValueError, r"std: expected a positive number, got -1\.0"),
    (dict(a=2.0, b=-2.0), ValueError, r"a, b: expected a <= b, got a=2\.0, b=-2\.0"),
    (dict(generator=0), TypeError, r"generator: expected a numpy.random.Generator.*got int"),
])
def test_trunc_normal_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        init.trunc_normal_(np.zeros(3), **kwargs)


def test_trunc_normal_rejects_a_non_array():
    with pytest.raises(TypeError, match="expected a Parameter or a numpy.ndarray, got list"):
        init.trunc_normal_([0.0, 0.0])
