"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s names, arguments and ``step()``.

How a scheduler works (PyTorch's contract, kept to the element):

- Construction records each group's starting rate as ``group["initial_lr"]`` (kept if already
  there) into ``base_lrs`` and takes the first step, to epoch 0: ``last_epoch`` goes from -1
  to 0 and ``group["lr"]`` becomes the schedule's value at 0.
- ``step()`` (call it after ``optimizer.step()``, once per epoch, or per batch for OneCycleLR;
  a first call before any ``optimizer.step()`` warns, as in PyTorch) adds one to
  ``last_epoch`` and writes the new rate into every ``group["lr"]``; ``get_last_lr()``
  returns them.
- The schedules are *chainable*, as PyTorch's: each step multiplies the current
  ``group["lr"]`` by the schedule's ratio between this epoch and the last (StepLR multiplies by
  ``gamma`` at each multiple of ``step_size``), so two schedulers stepping one optimizer
  compose, and a rate changed by hand carries on from where it was put. On an untouched
  optimizer the rates equal the closed forms in each class's docstring, which
  ``step(epoch)`` (deprecated, as in PyTorch) and :class:`SequentialLR`'s switch use.
- ``state_dict()`` is every attribute but the optimizer; ``load_state_dict`` restores it.

Each ``get_lr`` below is PyTorch's recursive form, term for term, so the sequences are the
same numbers, not merely close ones.
"""

from __future__ import annotations

import math
import numbers
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from typing import Any

from .optimizer import Optimizer, check_number

EPOCH_DEPRECATION = ("step(epoch): passing an epoch is deprecated (as in PyTorch); it sets "
                     "last_epoch and uses the closed form. Call step() without arguments.")

STEP_ORDER = ("lr_scheduler.step() was called before optimizer.step(): call optimizer.step() "
              "first (PyTorch's order since 1.1), or the schedule's first rate is skipped.")


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value}")


def _check_real(value: Any, name: str) -> None:
    check_number(value, name, low=-math.inf)


class LRScheduler:
    """Base class: ``base_lrs``, ``last_epoch``, ``step()``, ``get_last_lr()``, state dicts.

    Parameters
    ----------
    optimizer : Optimizer
        Its ``param_groups[i]["lr"]`` are the rates scheduled.
    last_epoch : int, default -1
        -1 starts the schedule; another value resumes it (every group must then carry an
        ``"initial_lr"``, as after loading a checkpoint), as in PyTorch.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral):
            raise TypeError(f"last_epoch: expected an int, got {type(last_epoch).__name__}")
        self.optimizer = optimizer
        for index, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise ValueError(f"last_epoch: resuming at {last_epoch} needs "
                                 f"param_groups[{index}]['initial_lr'] (load the optimizer's "
                                 "state first, or start with last_epoch=-1)")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Take the constructor's step (to epoch ``last_epoch + 1``)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The rates at ``last_epoch`` from the current ``group["lr"]`` (chainable form)."""
        raise NotImplementedError

    def _get_closed_form_lr(self) -> list[float]:
        """The rates at ``last_epoch`` from ``base_lrs`` alone (defaults to ``get_lr``)."""
        return self.get_lr()

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and write the new rates into the optimizer's groups.

        Parameters
        ----------
        epoch : int, optional
            Deprecated, as in PyTorch: jump to ``epoch`` using the closed form.
        """
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(STEP_ORDER, UserWarning, stacklevel=2)
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = self._get_closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The rates the last ``step()`` wrote, one per parameter group."""
        return list(self._last_lr)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (PyTorch's content)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes saved by :meth:`state_dict`."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict: expected a dict, got {type(state_dict).__name__}")
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs.

    ``lr(t) = base_lr * gamma ** (t // step_size)``.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Period of the decay, in epochs.
    gamma : float, default 0.1
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        _check_positive_int(step_size, "step_size")
        _check_real(gamma, "gamma")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size)
                for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each milestone epoch.

    ``lr(t) = base_lr * gamma ** (number of milestones <= t)``; a milestone listed twice
    counts twice, as in PyTorch.

    Parameters
    ----------
    optimizer : Optimizer
    milestones : iterable of int
        Epochs at which to decay (increasing).
    gamma : float, default 0.1
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        milestones = list(milestones)
        for index, milestone in enumerate(milestones):
            if isinstance(milestone, bool) or not isinstance(milestone, numbers.Integral):
                raise TypeError(f"milestones[{index}]: expected an int, got "
                                f"{type(milestone).__name__}")
        _check_real(gamma, "gamma")
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [base * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch: ``lr(t) = base_lr * gamma ** t``.

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        _check_real(gamma, "gamma")
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:  # resuming: the constructor's step does not decay again
            return self._current_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from ``base_lr`` down to ``eta_min`` over ``T_max`` epochs.

    ``lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`` (SGDR without
    restarts; past ``T_max`` the cosine carries on, rising again, as PyTorch's does). Each
    step applies the ratio of consecutive ``1 + cos`` terms to ``lr - eta_min``.

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Half-period, in epochs.
    eta_min : float, default 0.0
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        _check_positive_int(T_max, "T_max")
        _check_real(eta_min, "eta_min")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if (t - 1 - T) % (2 * T) == 0:  # leaving the minimum, where the ratio is 0/0
            return [group["lr"] + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base, group in zip(self.base_lrs, self.optimizer.param_groups,
                                           strict=True)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (group["lr"] - eta_min) + eta_min
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the rate by a factor going linearly from ``start_factor`` to ``end_factor``.

    ``lr(t) = base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters)
    / total_iters)``: the usual warm-up is ``LinearLR(opt, start_factor=0.1,
    total_iters=5)``.

    Parameters
    ----------
    optimizer : Optimizer
    start_factor : float, default 1/3
        In ``(0, 1]``.
    end_factor : float, default 1.0
        In ``[0, 1]``.
    total_iters : int, default 5
        Epochs until ``end_factor`` is reached.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        check_number(start_factor, "start_factor", high=1.0)
        if start_factor == 0:
            raise ValueError("start_factor: expected a value > 0 and <= 1, got 0")
        check_number(end_factor, "end_factor", high=1.0)
        _check_positive_int(total_iters, "total_iters")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        start, end, t = self.start_factor, self.end_factor, self.last_epoch
        if t == 0:
            return [group["lr"] * start for group in self.optimizer.param_groups]
        if self._is_initial or t > self.total_iters:
            return self._current_lrs()
        # factor(t) / factor(t - 1), with factor(t) = start + (end - start) * t / total_iters
        ratio = 1.0 + (end - start) / (self.total_iters * start + (t - 1) * (end - start))
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        start, end = self.start_factor, self.end_factor
        return [base * (start + (end - start) * min(self.total_iters, self.last_epoch)
                        / self.total_iters) for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after another, switching at each of ``milestones``.

    Warm-up then cosine: ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5),
    CosineAnnealingLR(opt, T_max=95)], milestones=[5])``. At a milestone the next scheduler
    starts from its epoch 0 (its closed form: its ``base_lrs``), then steps as usual.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer every scheduler in ``schedulers`` was built on.
    schedulers : list of LRScheduler
    milestones : list of int
        ``len(schedulers) - 1`` epochs at which to switch.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, schedulers: list[LRScheduler],
                 milestones: list[int], last_epoch: int = -1) -> None:
        self._check(optimizer, schedulers, milestones)
        self._schedulers, self._milestones = list(schedulers), list(milestones)
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:  # undo the schedulers' constructor steps
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers:
            scheduler.last_epoch -= 1
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    @staticmethod
    def _check(optimizer: Optimizer, schedulers: list, milestones: list) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if len(schedulers) < 1:
            raise ValueError("schedulers: SequentialLR expects at least one scheduler, got none")
        for index, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"schedulers[{index}]: expected an LRScheduler, got "
                                f"{type(scheduler).__name__}")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"schedulers[{index}]: {type(scheduler).__name__} steps "
                                 "another optimizer than the one given to SequentialLR")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones: expected {len(schedulers) - 1} (one fewer than the "
                             f"schedulers), got {len(milestones)}")

    def step(self) -> None:  # type: ignore[override]
        """Advance one epoch: the active scheduler steps, or the next one starts at 0."""
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """Own attributes, and each scheduler's state dict under ``"_schedulers"``."""
        state = {key: value for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore own attributes and each scheduler's."""
        state = dict(state_dict)
        children = state.pop("_schedulers")
        self.__dict__.update(state)
        for scheduler, child in zip(self._schedulers, children, strict=True):
            scheduler.load_state_dict(child)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, "Super-Convergence"), stepped once per batch.

    Two phases (fastai's, PyTorch's default): from ``initial_lr = max_lr / div_factor`` up to
    ``max_lr`` at step ``pct_start * total_steps - 1``, then down to ``min_lr = initial_lr /
    final_div_factor`` at step ``total_steps - 1``. ``three_phase=True`` (the paper's): up,
    back down to ``initial_lr`` symmetrically, then down to ``min_lr``. Within a phase from
    ``start`` to ``end``, at fraction ``pct`` of it::

        "cos":    end + (start - end) / 2 * (1 + cos(pi * pct))
        "linear": start + (end - start) * pct

    With ``cycle_momentum`` the momentum (SGD's ``momentum``, Adam's ``beta1``) moves the
    other way, from ``max_momentum`` down to ``base_momentum`` at the peak and back. As in
    PyTorch, each group gets the keys ``initial_lr``, ``max_lr``, ``min_lr`` (and
    ``max_momentum``, ``base_momentum``), the schedule is not chainable, and stepping past
    ``total_steps`` is an error.

    Parameters
    ----------
    optimizer : Optimizer
    max_lr : float or list of float
        Peak rate, one for all groups or one per group.
    total_steps : int, optional
        Steps in the cycle; or give ``epochs`` and ``steps_per_epoch`` (their product).
    epochs, steps_per_epoch : int, optional
    pct_start : float, default 0.3
        Fraction of the cycle spent rising.
    anneal_strategy : {"cos", "linear"}, default "cos"
    cycle_momentum : bool, default True
    base_momentum, max_momentum : float or list of float, default 0.85, 0.95
    div_factor : float, default 25.0
    final_div_factor : float, default 1e4
    three_phase : bool, default False
    last_epoch : int, default -1
        The number of batches already taken, when resuming.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85,
                 max_momentum: float | list[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.total_steps = _one_cycle_total(total_steps, epochs, steps_per_epoch)
        check_number(pct_start, "pct_start", high=1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy: expected 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        for value, name in ((div_factor, "div_factor"), (final_div_factor, "final_div_factor")):
            check_number(value, name)
            if value == 0:
                raise ValueError(f"{name}: expected a value > 0, got 0")
        self._schedule_phases = _one_cycle_phases(self.total_steps, pct_start, three_phase)
        self._anneal_func_type = anneal_strategy
        max_lrs = _per_group(max_lr, "max_lr", optimizer)
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs, strict=True):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self._init_momentum(base_momentum, max_momentum, last_epoch)
        super().__init__(optimizer, last_epoch)

    def _init_momentum(self, base_momentum: Any, max_momentum: Any, last_epoch: int) -> None:
        defaults = self.optimizer.defaults
        if "momentum" not in defaults and "betas" not in defaults:
            raise ValueError("cycle_momentum: the optimizer has neither momentum nor betas; "
                             "pass cycle_momentum=False")
        self.use_beta1 = "betas" in defaults
        highs = _per_group(max_momentum, "max_momentum", self.optimizer)
        lows = _per_group(base_momentum, "base_momentum", self.optimizer)
        if last_epoch == -1:
            for group, high, low in zip(self.optimizer.param_groups, highs, lows, strict=True):
                self._set_momentum(group, high)
                group["max_momentum"], group["base_momentum"] = high, low

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"step: tried to step {step} times; total_steps is "
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for index, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step <= end_step or index == len(self._schedule_phases) - 1:
                    if end_step == start_step:  # PyTorch divides by zero here
                        raise ValueError(f"pct_start: with total_steps={self.total_steps} "
                                         f"phase {index} has no steps (step {step})")
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]],
                                            pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(
                            group[phase["start_momentum"]], group[phase["end_momentum"]], pct))
                    break
                start_step = end_step
        return lrs


def _one_cycle_total(total_steps: Any, epochs: Any, steps_per_epoch: Any) -> int:
    if total_steps is not None:
        _check_positive_int(total_steps, "total_steps")
        return total_steps
    if epochs is None or steps_per_epoch is None:
        raise ValueError("total_steps: give total_steps, or epochs and steps_per_epoch")
    _check_positive_int(epochs, "epochs")
    _check_positive_int(steps_per_epoch, "steps_per_epoch")
    return epochs * steps_per_epoch


def _one_cycle_phases(total: int, pct_start: float, three_phase: bool) -> list[dict]:
    """PyTorch's phase table: each phase's last step and the group keys it goes between."""
    up = float(pct_start * total) - 1
    phases = [dict(end_step=up, start_lr="initial_lr", end_lr="max_lr",
                   start_momentum="max_momentum", end_momentum="base_momentum")]
    if three_phase:
        phases += [dict(end_step=float(2 * pct_start * total) - 2, start_lr="max_lr",
                        end_lr="initial_lr", start_momentum="base_momentum",
                        end_momentum="max_momentum"),
                   dict(end_step=total - 1, start_lr="initial_lr", end_lr="min_lr",
                        start_momentum="max_momentum", end_momentum="max_momentum")]
    else:
        phases.append(dict(end_step=total - 1, start_lr="max_lr", end_lr="min_lr",
                           start_momentum="base_momentum", end_momentum="max_momentum"))
    return phases


def _per_group(value: Any, name: str, optimizer: Optimizer) -> list[float]:
    """``value`` for each parameter group: a list of one per group, or one for all."""
    groups = len(optimizer.param_groups)
    values = list(value) if isinstance(value, (list, tuple)) else [value] * groups
    if len(values) != groups:
        raise ValueError(f"{name}: expected one value per parameter group ({groups}), got "
                         f"{len(values)}")
    for index, item in enumerate(values):
        _check_real(item, f"{name}[{index}]" if isinstance(value, (list, tuple)) else name)
    return values


__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearLR", "SequentialLR", "OneCycleLR"]
