"""Adam and AdamW: ``torch.optim.Adam``'s and ``torch.optim.AdamW``'s rules, per group.

The two differ only in the weight decay: Adam adds the L2 term to the gradient (so it is
rescaled by the adaptive step like any gradient); AdamW (Loshchilov & Hutter, "Decoupled
Weight Decay Regularization") shrinks the parameter directly, ``p = p * (1 - lr * wd)``,
before the Adam step. ``Adam(..., decoupled_weight_decay=True)`` is AdamW, as in PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, check_number, hyper_name


class Adam(Optimizer):
    """Adam with ``torch.optim.Adam``'s update, per parameter group.

    ::

        g = -grad if maximize else grad
        if weight_decay:
            p = p * (1 - lr * weight_decay)  if decoupled_weight_decay   (AdamW)
            g = g + weight_decay * p         otherwise                   (L2, Adam)
        t = t + 1                                   (per parameter: skipped ones wait)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) if amsgrad else v
        p = p - lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    params : iterable of Parameter, or iterable of dict
        Parameters, or parameter groups ``{"params": [...], "lr": 1e-2, ...}``.
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moment averages, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to the denominator.
    weight_decay : float, default 0
    amsgrad : bool, default False
        Divide by the largest second moment seen so far (Reddi et al.).
    maximize : bool, default False
    decoupled_weight_decay : bool, default False
        ``True`` gives AdamW's decay.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_hyper(self, group: dict[str, Any], where: str) -> None:
        super()._check_hyper(group, where)
        check_number(group["eps"], hyper_name(where, "eps"))
        check_number(group["weight_decay"], hyper_name(where, "weight_decay"))
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{hyper_name(where, 'betas')}: expected a pair (beta1, beta2), "
                            f"got {betas!r}")
        for index, beta in enumerate(betas):
            check_number(beta, f"{hyper_name(where, 'betas')}[{index}]", high=1.0,
                         high_open=True)

    def _update(self, param: Any, group: dict[str, Any], state: dict[str, Any]) -> None:
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param.data),
                         exp_avg_sq=np.zeros_like(param.data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param.data)
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        g = -param.grad if group["maximize"] else param.grad
        p = param.data
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        state["step"] += 1
        m = state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * (g * g)
        if group["amsgrad"]:
            v = state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], v)
        bias_correction1 = 1 - beta1 ** state["step"]
        bias_correction2_sqrt = math.sqrt(1 - beta2 ** state["step"])
        denom = np.sqrt(v) / bias_correction2_sqrt + group["eps"]
        param.data = (p - (lr / bias_correction1) * (m / denom)).astype(p.dtype, copy=False)


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, ``torch.optim.AdamW``'s rule and defaults.

    ``p = p * (1 - lr * weight_decay)`` first, then Adam's step without an L2 term (see
    :class:`Adam`). The default ``weight_decay`` is ``1e-2``, PyTorch's.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
