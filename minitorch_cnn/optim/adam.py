"""Adam and AdamW: ``torch.optim.Adam``'s and ``torch.optim.AdamW``'s rules, per group.

The two differ only in the weight decay: Adam adds the L2 term to the gradient (so it is
rescaled by the adaptive step like any gradient); AdamW (Loshchilov & Hutter, "Decoupled
Weight Decay Regularization") shrinks the parameter directly, ``p = p * (1 - lr * wd)``,
before the Adam step. ``Adam(..., decoupled_weight_decay=True)`` is AdamW, as in PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import functional as F
from .optimizer import Optimizer, ascending, backend_of, check_number, hyper_name, zeros_like


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
        """``F.adam_step`` in place on ``param.data`` and its moments, where the parameter
        lives (the moments are created there, zeros, at its first update).
        """
        if not state:
            state.update(step=0, exp_avg=zeros_like(param), exp_avg_sq=zeros_like(param))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(param)
        state["step"] += 1
        grad = ascending(param) if group["maximize"] else param.grad
        F.adam_step(param.data, grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                    group["lr"], tuple(group["betas"]), group["eps"], group["weight_decay"],
                    amsgrad=group["amsgrad"], v_max=state.get("max_exp_avg_sq"),
                    decoupled_weight_decay=group["decoupled_weight_decay"],
                    backend=backend_of(param))


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
