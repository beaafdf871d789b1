"""optim.lr_scheduler against torch.optim.lr_scheduler: the same rates, step for step.

Each schedule is built with the same arguments in both libraries on a two-group optimizer
(different base rates), stepped 100 times (``opt.step(); sched.step()``, PyTorch's order),
and ``get_last_lr()`` (and, for OneCycleLR, the cycled momentum) compared to 1e-12 relative
at every step, the construction's step included. Also: chaining two schedulers on one
optimizer, ``step(epoch)``, state dicts and resuming, and every error path.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as torch_sched

from minitorch_cnn import nn, optim
from minitorch_cnn.optim import lr_scheduler as ours_sched
from tests.checks import assert_close

STEPS = 100
TOL = 1e-12

SCHEDULES = {
    "StepLR-7-half": lambda S, o: S.StepLR(o, step_size=7, gamma=0.5),
    "StepLR-every-epoch": lambda S, o: S.StepLR(o, 1, 0.9),
    "MultiStepLR-repeated-milestone": lambda S, o: S.MultiStepLR(o, milestones=[10, 30, 30, 80],
                                                                 gamma=0.3),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.95),
    "CosineAnnealingLR-100": lambda S, o: S.CosineAnnealingLR(o, T_max=100),
    "CosineAnnealingLR-30-past-T_max": lambda S, o: S.CosineAnnealingLR(o, T_max=30,
                                                                        eta_min=1e-3),
    "LinearLR-defaults": lambda S, o: S.LinearLR(o),
    "LinearLR-decay-to-0": lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.0,
                                                   total_iters=100),
    "LinearLR-quarter-to-half": lambda S, o: S.LinearLR(o, 0.25, 0.5, 40),
    "SequentialLR-warmup-cosine": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=95)],
        milestones=[5]),
    "SequentialLR-three": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=5), S.StepLR(o, 10),
            S.ExponentialLR(o, 0.9)], milestones=[5, 50]),
    "OneCycleLR-cos": lambda S, o: S.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=100),
    "OneCycleLR-linear-epochs": lambda S, o: S.OneCycleLR(
        o, max_lr=0.3, epochs=10, steps_per_epoch=10, anneal_strategy="linear",
        pct_start=0.25),
    "OneCycleLR-three-phase": lambda S, o: S.OneCycleLR(
        o, max_lr=0.3, total_steps=120, three_phase=True, div_factor=10.0,
        final_div_factor=100.0, base_momentum=[0.8, 0.7], max_momentum=0.9),
    "OneCycleLR-no-momentum": lambda S, o: S.OneCycleLR(o, max_lr=0.3, total_steps=100,
                                                        cycle_momentum=False),
}


def _optimizers(kind: str):
    """Ours and torch's optimizer, each with two groups (lr 0.1 given, lr 0.03 default)."""
    values = [np.arange(3.0), np.arange(2.0)]
    ours = [nn.Parameter(v) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]

    def build(lib, params):
        groups = [{"params": [params[0]], "lr": 0.1}, {"params": [params[1]]}]
        if kind == "sgd":
            return lib.SGD(groups, lr=0.03, momentum=0.9)
        return lib.Adam(groups, lr=0.03)

    return build(optim, ours), build(torch.optim, theirs)


def _momenta(opt) -> list[float]:
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def _run(scheduler, opt, steps=STEPS):
    """The rates and momenta after construction and after each of ``steps`` steps."""
    lrs, momenta = [scheduler.get_last_lr()], [_momenta(opt)]
    for _ in range(steps):
        opt.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
        momenta.append(_momenta(opt))
    return np.array(lrs), np.array(momenta)


def _close(ours, theirs, name):
    assert_close(np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64),
                 name, tol=TOL, scale=0.0)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch_for_100_steps(name, kind):
    ours_opt, torch_opt = _optimizers(kind)
    ours_lr, ours_m = _run(SCHEDULES[name](ours_sched, ours_opt), ours_opt)
    torch_lr, torch_m = _run(SCHEDULES[name](torch_sched, torch_opt), torch_opt)
    assert ours_lr.shape == (STEPS + 1, 2)
    _close(ours_lr, torch_lr, f"{name} lr")
    _close(ours_m, torch_m, f"{name} momentum")
    _close([g["lr"] for g in ours_opt.param_groups], torch_lr[-1], "group lr")
    for ours_group, torch_group in zip(ours_opt.param_groups, torch_opt.param_groups,
                                       strict=True):
        for key in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
            assert ours_group.get(key) == torch_group.get(key), key


def test_warmup_then_cosine_is_the_closed_form():
    # The maths, not only torch: 5 warm-up epochs from 0.1 * lr, then cosine over 95.
    opt, _ = _optimizers("sgd")
    lrs, _ = _run(SCHEDULES["SequentialLR-warmup-cosine"](ours_sched, opt), opt)
    t = np.arange(STEPS + 1)
    base = np.array([0.1, 0.03])
    warm = base * (0.1 + 0.9 * np.minimum(t, 5)[:, None] / 5)
    cosine = base * (1 + np.cos(np.pi * (t - 5) / 95))[:, None] / 2
    expected = np.where((t < 5)[:, None], warm, cosine)
    assert_close(lrs, expected, "warm-up + cosine", tol=1e-12)


def test_chained_schedulers_compose_as_torch():
    # torch.optim's documented example: two schedulers stepping one optimizer multiply.
    def build(S, o):
        return S.ExponentialLR(o, gamma=0.9), S.MultiStepLR(o, milestones=[30, 80], gamma=0.1)

    rates = []
    for lib, opt in zip((ours_sched, torch_sched), _optimizers("sgd"), strict=True):
        first, second = build(lib, opt)
        seq = []
        for _ in range(STEPS):
            opt.step()
            first.step()
            second.step()
            seq.append(second.get_last_lr())
        rates.append(seq)
    _close(rates[0], rates[1], "chained")


def test_rate_set_by_hand_carries_on_as_torch():
    rates = []
    for lib, opt in zip((ours_sched, torch_sched), _optimizers("sgd"), strict=True):
        sched = lib.CosineAnnealingLR(opt, T_max=20)
        for step in range(30):
            opt.step()
            sched.step()
            if step == 10:
                opt.param_groups[0]["lr"] = 0.5
        rates.append(sched.get_last_lr())
    _close(rates[0], rates[1], "after a manual change")


@pytest.mark.parametrize("name", ["StepLR-7-half", "MultiStepLR-repeated-milestone",
                                  "ExponentialLR", "CosineAnnealingLR-30-past-T_max",
                                  "LinearLR-quarter-to-half"])
def test_step_with_epoch_uses_the_closed_form_as_torch(name):
    rates = []
    for lib, opt in zip((ours_sched, torch_sched), _optimizers("sgd"), strict=True):
        sched = SCHEDULES[name](lib, opt)
        opt.step()
        with pytest.warns(UserWarning, match="deprecated"):
            sched.step(37)
        rates.append(sched.get_last_lr())
    _close(rates[0], rates[1], "step(37)")


@pytest.mark.parametrize("name", ["StepLR-7-half", "CosineAnnealingLR-30-past-T_max",
                                  "SequentialLR-warmup-cosine", "OneCycleLR-cos"])
def test_state_dict_resumes_the_schedule(name):
    # 100 steps straight against: 40 steps, save both states, rebuild, load both, 60 more.
    opt, _ = _optimizers("sgd")
    straight, _ = _run(SCHEDULES[name](ours_sched, opt), opt)
    opt, _ = _optimizers("sgd")
    running = SCHEDULES[name](ours_sched, opt)
    first, _ = _run(running, opt, steps=40)
    saved_opt, saved_sched = opt.state_dict(), running.state_dict()
    fresh, _ = _optimizers("sgd")
    resumed = SCHEDULES[name](ours_sched, fresh)  # PyTorch's order: scheduler, then loads
    fresh.load_state_dict(saved_opt)
    resumed.load_state_dict(saved_sched)
    rest, _ = _run(resumed, fresh, steps=60)
    _close(np.concatenate([first, rest[1:]]), straight, "resumed")


def test_state_dict_holds_torchs_entries():
    ours_opt, torch_opt = _optimizers("sgd")
    ours = ours_sched.StepLR(ours_opt, 3, 0.5)
    theirs = torch_sched.StepLR(torch_opt, 3, 0.5)
    for _ in range(4):
        ours_opt.step()
        torch_opt.step()
        ours.step()
        theirs.step()
    mine, reference = ours.state_dict(), theirs.state_dict()
    for key in ("step_size", "gamma", "base_lrs", "last_epoch", "_step_count", "_last_lr"):
        assert mine[key] == reference[key], key
    assert "optimizer" not in mine


def test_resuming_with_last_epoch_matches_torch():
    # last_epoch=k with "initial_lr" in the groups continues the schedule (PyTorch's rule).
    rates = []
    for lib, opt in zip((ours_sched, torch_sched), _optimizers("sgd"), strict=True):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
        sched = lib.ExponentialLR(opt, gamma=0.8, last_epoch=4)
        opt.step()
        sched.step()
        rates.append(sched.get_last_lr())
    _close(rates[0], rates[1], "resumed at 4")


def test_scheduler_stepped_before_the_optimizer_warns_as_torch():
    for lib, opt in zip((ours_sched, torch_sched), _optimizers("sgd"), strict=True):
        sched = lib.StepLR(opt, 2)
        with pytest.warns(UserWarning, match=r"before `?optimizer.step\(\)"):
            sched.step()
    opt, _ = _optimizers("sgd")
    sched = ours_sched.StepLR(opt, 2)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()  # the right order: silent


def test_one_cycle_rejects_a_step_past_total_steps():
    opt, _ = _optimizers("sgd")
    sched = ours_sched.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    opt.step()
    for _ in range(10):
        sched.step()
    with pytest.raises(ValueError, match="step: tried to step 11 times; total_steps is 10"):
        sched.step()


class _NoMomentum(optim.Optimizer):
    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))

    def _update(self, param, group, state):
        param.data = param.data - group["lr"] * param.grad


def _opt():
    return optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda o: ours_sched.StepLR("sgd", 3), TypeError, "optimizer: expected an optim"),
        (lambda o: ours_sched.StepLR(o, 0), ValueError, "step_size: expected a positive int"),
        (lambda o: ours_sched.StepLR(o, 2.5), TypeError, "step_size: expected a positive int"),
        (lambda o: ours_sched.StepLR(o, 3, gamma="x"), TypeError, "gamma: expected a real"),
        (lambda o: ours_sched.StepLR(o, 3, last_epoch=2.0), TypeError, "last_epoch: expected"),
        (lambda o: ours_sched.StepLR(o, 3, last_epoch=5), ValueError,
         r"last_epoch: resuming at 5 needs param_groups\[0\]\['initial_lr'\]"),
        (lambda o: ours_sched.MultiStepLR(o, [2, 1.5]), TypeError, r"milestones\[1\]"),
        (lambda o: ours_sched.ExponentialLR(o, None), TypeError, "gamma"),
        (lambda o: ours_sched.CosineAnnealingLR(o, 0), ValueError, "T_max: expected a positive"),
        (lambda o: ours_sched.CosineAnnealingLR(o, 5, eta_min="0"), TypeError, "eta_min"),
        (lambda o: ours_sched.LinearLR(o, start_factor=0), ValueError, "start_factor"),
        (lambda o: ours_sched.LinearLR(o, start_factor=1.5), ValueError, "start_factor"),
        (lambda o: ours_sched.LinearLR(o, end_factor=-0.1), ValueError, "end_factor"),
        (lambda o: ours_sched.LinearLR(o, total_iters=0), ValueError, "total_iters"),
        (lambda o: ours_sched.SequentialLR(o, [], []), ValueError, "schedulers: SequentialLR"),
        (lambda o: ours_sched.SequentialLR(o, [ours_sched.StepLR(o, 2)], [3]), ValueError,
         "milestones: expected 0"),
        (lambda o: ours_sched.SequentialLR(o, ["StepLR"], []), TypeError, r"schedulers\[0\]"),
        (lambda o: ours_sched.SequentialLR(o, [ours_sched.StepLR(_opt(), 2)], []), ValueError,
         r"schedulers\[0\]: StepLR steps another optimizer"),
        (lambda o: ours_sched.SequentialLR(None, [ours_sched.StepLR(o, 2)], []), TypeError,
         "optimizer"),
        (lambda o: ours_sched.OneCycleLR(None, 0.1, 10), TypeError, "optimizer"),
        (lambda o: ours_sched.OneCycleLR(o, 0.1), ValueError,
         "total_steps: give total_steps, or epochs and steps_per_epoch"),
        (lambda o: ours_sched.OneCycleLR(o, 0.1, total_steps=0), ValueError, "total_steps"),
        (lambda o: ours_sched.OneCycleLR(o, 0.1, epochs=0, steps_per_epoch=3), ValueError,
         "epochs"),
        (lambda o: ours_sched.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=1.5), TypeError,
         "steps_per_epoch"),
        (lambda o: ours_sched.OneCycleLR(o, 0.1, 10, pct_start=1.5), ValueError, "pct_start"),
        (lambda o: ours_sched.OneCycleLR(o, 0.1, 10, pct_start=0.1), ValueError,
         "pct_start: with total_steps=10 phase 0 has no steps"),
        (lambda o: ours_sched.OneCycleLR(o, 0.1, 10, anneal_strategy="exp"), ValueError,
         "anneal_strategy: expected 'cos' or 'linear', got 'exp'"),
        (lambda o: ours_sched.OneCycleLR(o, [0.1, 0.2], 10), ValueError,
         r"max_lr: expected one value per parameter group \(1\), got 2"),
        (lambda o: ours_sched.OneCycleLR(o, ["a"], 10), TypeError, r"max_lr\[0\]"),
        (lambda o: ours_sched.OneCycleLR(o, 0.1, 10, div_factor=0), ValueError, "div_factor"),
        (lambda o: ours_sched.OneCycleLR(o, 0.1, 10, base_momentum=[0.8, 0.9]), ValueError,
         "base_momentum"),
        (lambda o: ours_sched.OneCycleLR(_NoMomentum([nn.Parameter(np.zeros(2))]), 0.1, 10),
         ValueError, "cycle_momentum: the optimizer has neither momentum nor betas"),
    ],
)
def test_schedulers_reject_bad_arguments(make, error, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=match):
            make(_opt())


def test_load_state_dict_rejects_a_non_dict():
    with pytest.raises(TypeError, match="state_dict: expected a dict, got list"):
        ours_sched.StepLR(_opt(), 2).load_state_dict([])
