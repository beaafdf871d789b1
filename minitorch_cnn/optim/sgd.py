"""SGD with momentum, dampening, Nesterov and weight decay: ``torch.optim.SGD``'s rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import functional as F
from .optimizer import Optimizer, ascending, backend_of, check_number, hyper_name


class SGD(Optimizer):
    """Stochastic gradient descent with ``torch.optim.SGD``'s update, per parameter group.

    ::

        g = -grad if maximize else grad
        g = g + weight_decay * p
        if momentum:
            buf = g                                        (first step)
            buf = momentum * buf + (1 - dampening) * g     (later steps)
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g

    The formulas are written as ``torch.optim`` runs them, so the same gradients give the
    same parameters to the last bits.

    Parameters
    ----------
    params : iterable of Parameter, or iterable of dict
        Parameters, or parameter groups ``{"params": [...], "lr": 0.1, ...}``.
    lr : float, default 1e-3
        Learning rate (PyTorch's default).
    momentum, weight_decay, dampening : float, default 0
        Momentum factor, L2 penalty, dampening of the momentum. (Positional order here:
        ``lr, momentum, weight_decay, dampening``; PyTorch puts ``dampening`` before
        ``weight_decay``, so pass them by name.)
    nesterov : bool, default False
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    maximize : bool, default False
        Ascend instead of descend.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 weight_decay: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_hyper(self, group: dict[str, Any], where: str) -> None:
        super()._check_hyper(group, where)
        for key in ("momentum", "weight_decay"):
            check_number(group[key], hyper_name(where, key))
        check_number(group["dampening"], hyper_name(where, "dampening"), low=-float("inf"))
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{hyper_name(where, 'nesterov')}: Nesterov momentum needs "
                             f"momentum > 0 and dampening == 0, got momentum "
                             f"{group['momentum']} and dampening {group['dampening']}")

    def _update(self, param: Any, group: dict[str, Any], state: dict[str, Any]) -> None:
        """``F.sgd_step`` in place on ``param.data`` (and its momentum buffer), where the
        parameter lives: the cuda backend for a parameter on the device.
        """
        grad = ascending(param) if group["maximize"] else param.grad
        buf = F.sgd_step(param.data, grad, state.get("momentum_buffer"), group["lr"],
                         group["momentum"], group["dampening"], group["nesterov"],
                         group["weight_decay"], backend=backend_of(param))
        if buf is not None:
            state["momentum_buffer"] = buf
