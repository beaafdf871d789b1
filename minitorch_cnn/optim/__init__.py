"""Optimizers and learning-rate schedules, laid out as ``torch.optim``.

- :mod:`.optimizer`: the base class, with PyTorch's parameter groups
  (``opt.param_groups``, a list of dicts) and per-parameter ``opt.state``;
- :mod:`.sgd`: SGD (momentum, dampening, Nesterov, weight decay);
- :mod:`.adam`: Adam (optionally AMSGrad) and AdamW (decoupled weight decay);
- :mod:`.lr_scheduler`: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
  SequentialLR, OneCycleLR, with PyTorch's ``step()`` semantics.

An optimizer updates each ``param.data`` from ``param.grad`` in ``step()``. The formulas are
written as ``torch.optim`` runs them, so the same gradients give the same parameters to the
last bits (the tests check several steps against torch to 1e-12 in float64)::

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for epoch in range(epochs):
        for x, y in batches:
            ...; opt.step(); opt.zero_grad()
        sched.step()
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
