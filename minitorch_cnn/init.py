"""Weight initialisation, as ``torch.nn.init`` (same formulas, NumPy's random generator).

Every function fills a :class:`~minitorch_cnn.nn.Parameter` (or a NumPy array) in place and
returns it. The random numbers come from one module-wide :class:`numpy.random.Generator`;
:func:`manual_seed` resets it, so a model built after ``manual_seed(0)`` is the same every
time. The *distributions* are PyTorch's; the numbers are not (NumPy's generator is not
torch's), which is why the model tests copy weights across with ``load_state_dict``.

Fans of a weight of shape ``(C_out, C_in // groups, kH, kW)``:
``fan_in = C_in // groups * kH * kW``, ``fan_out = C_out * kH * kW`` (Linear: ``(out, in)``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the generator every initialiser and dropout layer draws from; returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def get_generator() -> np.random.Generator:
    """The module-wide generator (initialisers, dropout masks, default data shuffling)."""
    return _generator


def _array(tensor):
    """The ndarray behind a Parameter, or the array itself."""
    data = tensor if isinstance(tensor, np.ndarray) else getattr(tensor, "data", None)
    if not isinstance(data, np.ndarray):
        raise TypeError(f"expected a Parameter or a numpy.ndarray, got {type(tensor).__name__}")
    return data


def calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of at least 2 dims, as PyTorch computes them."""
    shape = _array(tensor).shape
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need a weight of at least 2 dimensions, got shape {shape}"
        )
    receptive_field = math.prod(shape[2:])  # kH * kW for a conv weight, 1 for Linear
    return shape[1] * receptive_field, shape[0] * receptive_field


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (``torch.nn.init.calculate_gain``)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"nonlinearity: unsupported {nonlinearity!r}")


def _fan(tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode: expected 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values: np.ndarray):
    data = _array(tensor)
    data[...] = values.astype(data.dtype)
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0):
    """Fill with U(a, b)."""
    return _fill(tensor, _generator.uniform(a, b, _array(tensor).shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Fill with N(mean, std**2)."""
    return _fill(tensor, _generator.normal(mean, std, _array(tensor).shape))


# Peter Acklam's rational approximation of the standard normal's inverse CDF (relative error
# below 1.15e-9, far under float32's resolution): one rational function in the middle, another
# of sqrt(-2 log p) in each tail. NumPy has no erfinv; PyTorch's trunc_normal_ uses erfinv,
# which is the same function: Phi^-1(p) = sqrt(2) * erfinv(2p - 1).
_PPF_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
          1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_PPF_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
          6.680131188771972e01, -1.328068155288572e01, 1.0)
_PPF_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
          -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_PPF_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
          3.754408661907416e00, 1.0)
_PPF_LOW = 0.02425  # below this p (and above 1 - it) the tail formula is used


def _normal_ppf(p: np.ndarray) -> np.ndarray:
    """The standard normal's inverse CDF, ``Phi^-1(p)``, for ``p`` in (0, 1), any shape."""
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    r = q * q
    with np.errstate(divide="ignore", invalid="ignore"):  # each branch is used where valid
        middle = np.polyval(_PPF_A, r) * q / np.polyval(_PPF_B, r)
        t = np.sqrt(-2.0 * np.log(np.minimum(p, 1.0 - p)))  # the tail's variable
        tail = np.polyval(_PPF_C, t) / np.polyval(_PPF_D, t)  # Phi^-1(p) for p < 0.5
    tail = np.where(q < 0, tail, -tail)  # the upper tail mirrors the lower one
    return np.where(np.abs(q) <= 0.5 - _PPF_LOW, middle, tail)


def _normal_cdf(x: float) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: np.random.Generator | None = None):
    """Fill with N(mean, std**2) truncated to ``[a, b]`` (``torch.nn.init.trunc_normal_``).

    PyTorch's method, inverse-CDF sampling: draw ``u ~ U(Phi(alpha), Phi(beta))`` with
    ``alpha = (a - mean) / std`` and ``beta = (b - mean) / std``, return
    ``mean + std * Phi^-1(u)`` clipped to ``[a, b]``. ``a`` and ``b`` are values, not numbers
    of standard deviations (``trunc_normal_(w, std=0.02)`` leaves ``[-2, 2]``, as in PyTorch).
    Warns, as PyTorch does, when ``mean`` is more than ``2 * std`` outside ``[a, b]``.

    Parameters
    ----------
    tensor : Parameter or ndarray, any shape
    mean, std : float
        Of the normal before truncation; ``std > 0``.
    a, b : float
        The interval, ``a <= b``.
    generator : numpy.random.Generator, optional
        Defaults to the module-wide generator (:func:`manual_seed`).
    """
    data = _array(tensor)
    if not std > 0:
        raise ValueError(f"std: expected a positive number, got {std}")
    if not a <= b:
        raise ValueError(f"a, b: expected a <= b, got a={a}, b={b}")
    if generator is None:
        generator = _generator
    elif not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator: expected a numpy.random.Generator or None, got "
                        f"{type(generator).__name__}")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    low, high = _normal_cdf((a - mean) / std), _normal_cdf((b - mean) / std)
    u = generator.uniform(low, high, data.shape)
    u = np.clip(u, np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).epsneg)  # Phi^-1 finite
    return _fill(tensor, np.clip(mean + std * _normal_ppf(u), a, b))


def constant_(tensor, value: float):
    """Fill with ``value``."""
    _array(tensor)[...] = value
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain: float = 1.0):
    """Glorot: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain: float = 1.0):
    """Glorot: N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu"):
    """He: U(-b, b) with ``b = gain * sqrt(3 / fan)``, ``gain = calculate_gain(nonlinearity, a)``.

    ``kaiming_uniform_(w, a=sqrt(5))`` is PyTorch's default for Conv2d and Linear weights:
    ``gain = sqrt(2 / 6)``, so ``b = 1 / sqrt(fan_in)``.
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu"):
    """He: N(0, std**2) with ``std = gain / sqrt(fan)``."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def default_weight_and_bias_(weight, bias=None) -> None:
    """PyTorch's ``reset_parameters`` of Conv2d and Linear.

    weight: ``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in));
    bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)


__all__ = [
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "constant_",
    "default_weight_and_bias_",
    "get_generator",
    "kaiming_normal_",
    "kaiming_uniform_",
    "manual_seed",
    "normal_",
    "ones_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
