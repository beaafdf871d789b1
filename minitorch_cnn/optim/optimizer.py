"""The optimizer base class: parameter groups, per-parameter state, ``zero_grad``.

An optimizer holds ``param_groups``, a list of dicts exactly as ``torch.optim`` keeps them::

    SGD([{"params": model.features.parameters(), "lr": 0.1},
         {"params": model.classifier.parameters()}], lr=0.01, momentum=0.9)

    opt.param_groups[1] == {"params": [...], "lr": 0.01, "momentum": 0.9, "dampening": 0.0,
                            "weight_decay": 0.0, "nesterov": False, "maximize": False}

Each group names its parameters and carries every hyper-parameter: the ones it gave, the
rest filled from the constructor's arguments (``opt.defaults``). A plain list of parameters
is one group. ``step()`` updates each parameter with its group's hyper-parameters, so a
learning-rate scheduler changes ``group["lr"]`` and the next step uses it. Per-parameter
state (momentum buffers, Adam's moments) lives in ``opt.state[param]``, a dict, created at
the parameter's first update. Parameters whose ``grad`` is ``None`` are skipped, as in
PyTorch.

Extra keys in a group are kept, as PyTorch keeps them (a ``"name"``, or the ``"initial_lr"``
a scheduler writes). PyTorch's implementation switches (``foreach``, ``fused``,
``capturable``, ``differentiable``) have no meaning here and are not keys.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..device import _move, device_of, to_host


def is_parameter(obj: Any) -> bool:
    """Whether ``obj`` is a Parameter (anything with ``.data`` and ``.grad``)."""
    return hasattr(obj, "data") and hasattr(obj, "grad")


def hyper_name(where: str, key: str) -> str:
    """How an error names a hyper-parameter: ``lr`` (an argument) or ``params[1]["lr"]``."""
    return key if not where else f'{where}["{key}"]'


def check_number(value: Any, name: str, low: float = 0.0, high: float | None = None,
                 high_open: bool = False) -> None:
    """Raise unless ``value`` is a real number with ``low <= value`` (and ``<= high``).

    ``high_open`` makes the upper bound strict (``value < high``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    if value < low or (high is not None and (value >= high if high_open else value > high)):
        bound = "" if high is None else (f" and < {high}" if high_open else f" and <= {high}")
        raise ValueError(f"{name}: expected a value >= {low}{bound}, got {value}")


def _copy(value: Any, like: Any = None) -> Any:
    """A NumPy copy of an array; with ``like``, cast to its dtype (as PyTorch casts loaded
    state) and placed where it lives (the device for a parameter on the device).
    """
    value = to_host(value)
    if hasattr(value, "shape") and hasattr(value, "copy"):
        if like is None:
            return value.copy()
        return _move(value.astype(like.dtype), device_of(like))
    return value


def zeros_like(param: Any) -> Any:
    """Zeros of ``param.data``'s shape and dtype, where it lives: fresh optimizer state."""
    return _move(np.zeros(tuple(param.data.shape), param.data.dtype), param.device)


def backend_of(param: Any) -> str | None:
    """The backend an update of ``param`` runs on: ``"cuda"`` for a parameter on the device
    (its data decides, as a tensor's device does in PyTorch), else the current one.
    """
    return "cuda" if param.device == "cuda" else None


def ascending(param: Any) -> Any:
    """The gradient to step with under ``maximize=True``: ``-grad`` (NumPy only)."""
    if param.device == "cuda":
        raise ValueError("maximize: not supported for parameters on the cuda device (the "
                         "update kernels descend); negate the loss instead")
    return np.negative(param.grad)


class Optimizer:
    """Base class: keeps ``param_groups`` and ``state``; subclasses write ``_update``.

    Parameters
    ----------
    params : iterable of Parameter, or iterable of dict
        The parameters to optimise, or groups ``{"params": [...], <hyper-parameter>: value}``.
    defaults : dict
        Every hyper-parameter's value for groups that do not give one.

    Attributes
    ----------
    param_groups : list of dict
        ``"params"`` (a list of Parameter) and every hyper-parameter, per group.
    state : dict
        ``state[param]`` is a dict of that parameter's running state.
    defaults : dict
        The constructor's hyper-parameters.
    """

    def __init__(self, params: Iterable, defaults: dict[str, Any]) -> None:
        if is_parameter(params):
            raise TypeError("params: expected an iterable of Parameters or of dicts, got a "
                            f"single {type(params).__name__}")
        if isinstance(params, dict):
            raise TypeError("params: expected an iterable of Parameters or of dicts, got one "
                            "dict (put it in a list)")
        self.defaults = dict(defaults)
        self._check_hyper(self.defaults, "")
        self.state: dict[Any, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError("params: the optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            self._add_group({"params": groups}, "")
            return
        for index, group in enumerate(groups):
            self._add_group(group, f"params[{index}]")

    # --------------------------------------------------------------- parameter groups

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (e.g. layers unfrozen during fine-tuning), as PyTorch's method.

        Parameters
        ----------
        param_group : dict
            ``{"params": ..., <hyper-parameter>: value}``; missing hyper-parameters are
            taken from ``defaults``.
        """
        self._add_group(param_group, "param_group")

    def _add_group(self, group: Any, where: str) -> None:
        name = where or "params"
        if not isinstance(group, dict):
            raise TypeError(f"{name}: expected a dict with a 'params' entry, got "
                            f"{type(group).__name__}")
        if "params" not in group:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry, got keys "
                             f"{sorted(group)}")
        group["params"] = self._group_params(group["params"], where)
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_hyper(group, where)
        self._check_disjoint(group["params"], name)
        self.param_groups.append(group)

    @staticmethod
    def _group_params(params: Any, where: str) -> list:
        label = hyper_name(where, "params")
        if is_parameter(params):
            return [params]
        if isinstance(params, set):
            raise TypeError(f"{label}: expected an ordered collection (list, tuple, generator), "
                            "got a set, whose order changes between runs")
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"{label}: expected an iterable of Parameters, got "
                            f"{type(params).__name__}") from None
        for index, param in enumerate(params):
            if not is_parameter(param):
                raise TypeError(f"{label}[{index}]: expected a Parameter (with .data and "
                                f".grad), got {type(param).__name__}")
        if len({id(p) for p in params}) != len(params):
            warnings.warn(f"{label}: a parameter group with duplicate parameters (each copy "
                          "is stepped; PyTorch warns so too)", UserWarning, stacklevel=4)
        return params

    def _check_disjoint(self, params: list, name: str) -> None:
        seen = {id(p): index for index, g in enumerate(self.param_groups) for p in g["params"]}
        for index, param in enumerate(params):
            if id(param) in seen:
                raise ValueError(
                    f"{name}: some parameters appear in more than one parameter group "
                    f"({name}['params'][{index}] is already in param_groups[{seen[id(param)]}])")

    def _check_hyper(self, group: dict[str, Any], where: str) -> None:
        """Raise if a hyper-parameter of ``group`` is invalid; subclasses extend."""
        check_number(group["lr"], hyper_name(where, "lr"))

    # --------------------------------------------------------------- stepping

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every gradient: ``grad = None`` (PyTorch's default) or zeros in place."""
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none:
                    param.grad = None
                elif param.grad is not None and param.device == "cuda":
                    param.grad = zeros_like(param)
                elif param.grad is not None:
                    param.grad[...] = 0

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Update every parameter that has a gradient, with its group's hyper-parameters.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model (forward, backward) and returns the loss; called first.

        Returns
        -------
        float or None
            The closure's loss, or ``None`` without a closure.
        """
        loss = closure() if closure is not None else None
        self._opt_called = True  # lets a scheduler warn when it steps first, as PyTorch's
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._update(param, group, self.state.setdefault(param, {}))
        return loss

    def _update(self, param: Any, group: dict[str, Any], state: dict[str, Any]) -> None:
        """Update ``param.data`` from ``param.grad``; the subclass's rule."""
        raise NotImplementedError

    # --------------------------------------------------------------- state dicts

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: parameters named by their index across the groups.

        Returns
        -------
        dict
            ``{"state": {index: {name: value}}, "param_groups": [group with "params": [index,
            ...]]}``; arrays are copies.
        """
        index = {id(p): i for i, p in enumerate(self.params)}
        state = {index[id(p)]: {k: _copy(v) for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        groups = [{**{k: _copy(v) for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and state saved by :meth:`state_dict` (same groups)."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict: expected the dict of Optimizer.state_dict(), with "
                             "'state' and 'param_groups'")
        saved = state_dict["param_groups"]
        sizes, saved_sizes = ([len(g["params"]) for g in groups]
                              for groups in (self.param_groups, saved))
        if sizes != saved_sizes:
            raise ValueError(f"state_dict: its groups hold {saved_sizes} parameters, this "
                             f"optimizer's {sizes}")
        params = self.params
        self.state = {}
        for i, s in state_dict["state"].items():
            param = params[int(i)]
            self.state[param] = {k: _copy(v, like=param.data) for k, v in s.items()}
        for group, saved_group in zip(self.param_groups, saved, strict=True):
            group.update({k: _copy(v) for k, v in saved_group.items() if k != "params"})

    # --------------------------------------------------------------- compatibility

    @property
    def params(self) -> list:
        """Every parameter, group after group."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def lr(self) -> float:
        """The first group's learning rate (setting it sets every group's)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        check_number(value, "lr")
        for group in self.param_groups:
            group["lr"] = value

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines += [f"    {key}: {value}" for key, value in sorted(group.items())
                      if key != "params"]
        return "\n".join([*lines, ")"])
