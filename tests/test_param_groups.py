"""Parameter groups in SGD, Adam and AdamW, against torch.optim to 1e-12 (float64).

Two groups with different hyper-parameters (lr, weight decay, momentum, betas, ...) take a
few steps from the same gradients in both libraries (one step leaves a parameter without a
gradient, which both skip), and the parameters are compared after every step. Also: the
groups' dicts hold every hyper-parameter as torch's do, a scheduler drives each group's rate,
``add_param_group``, ``zero_grad``, closures, the optimizer's state dict, ``opt.lr`` as before,
and every error path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minitorch_cnn import nn, optim
from minitorch_cnn.optim import lr_scheduler
from tests.checks import assert_close

SHAPES = [(3, 4), (5,), (2, 3)]
TORCH_ONLY = {"foreach", "fused", "capturable", "differentiable"}


def _values():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape) for shape in SHAPES]


def _grads(step: int):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(shape) for shape in SHAPES]


def _twins():
    values = _values()
    return ([nn.Parameter(v) for v in values],
            [torch.tensor(v, requires_grad=True) for v in values])


def _groups(params, options):
    """``options[i]`` (a dict) for group i: parameters 0 and 1 in group 0, 2 in group 1."""
    members = [[params[0], params[1]], [params[2]]]
    return [{"params": m, **o} for m, o in zip(members, options, strict=True)]


def _step_both(opt, topt, ours, theirs, step):
    for p, tp, g in zip(ours, theirs, _grads(step), strict=True):
        p.grad, tp.grad = g.copy(), torch.from_numpy(g.copy())
    if step == 2:  # a parameter without a gradient is skipped, in both
        ours[1].grad, theirs[1].grad = None, None
    opt.step()
    topt.step()


def _compare(ours, theirs, what):
    for index, (p, tp) in enumerate(zip(ours, theirs, strict=True)):
        assert_close(p.data, tp.detach().numpy(), f"{what} param {index}", tol=1e-12)


CASES = {
    "SGD-lr-momentum-wd": ("SGD", [dict(lr=0.1, momentum=0.9, weight_decay=1e-2),
                                   dict(momentum=0.5)], dict(lr=0.02)),
    "SGD-nesterov-dampening": ("SGD", [dict(nesterov=True, momentum=0.8),
                                       dict(lr=0.3, dampening=0.4, maximize=True)],
                               dict(lr=0.05, momentum=0.7, weight_decay=1e-3)),
    "Adam-lr-betas-wd": ("Adam", [dict(lr=0.05, betas=(0.8, 0.99)),
                                  dict(weight_decay=0.1, amsgrad=True)], dict(lr=0.01)),
    "Adam-decoupled-maximize": ("Adam", [dict(eps=1e-3), dict(lr=0.2, maximize=True)],
                                dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)),
    "AdamW-default-decay": ("AdamW", [dict(lr=0.05), dict(weight_decay=0.3, amsgrad=True)],
                            dict(lr=0.02)),
    "AdamW-no-decay-group": ("AdamW", [dict(weight_decay=0.0), dict(betas=(0.5, 0.9))],
                             dict(lr=0.1, weight_decay=0.2)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_two_groups_step_as_torch(case):
    name, options, defaults = CASES[case]
    ours, theirs = _twins()
    opt = getattr(optim, name)(_groups(ours, options), **defaults)
    topt = getattr(torch.optim, name)(_groups(theirs, options), foreach=False, **defaults)
    for step in range(5):
        _step_both(opt, topt, ours, theirs, step)
        _compare(ours, theirs, f"{case} step {step}")


@pytest.mark.parametrize("case", list(CASES))
def test_groups_hold_every_hyper_parameter_as_torch(case):
    name, options, defaults = CASES[case]
    ours, theirs = _twins()
    opt = getattr(optim, name)(_groups(ours, options), **defaults)
    topt = getattr(torch.optim, name)(_groups(theirs, options), **defaults)
    assert len(opt.param_groups) == 2
    for group, tgroup in zip(opt.param_groups, topt.param_groups, strict=True):
        expected = {k: v for k, v in tgroup.items() if k not in TORCH_ONLY and k != "params"}
        assert {k: v for k, v in group.items() if k != "params"} == expected
        assert [id(p) for p in group["params"]] == [id(ours[i]) for i in
                                                     ([0, 1] if group is opt.param_groups[0]
                                                      else [2])]


def test_plain_list_is_one_group_with_the_defaults():
    ours, theirs = _twins()
    opt = optim.SGD(ours, 0.1, momentum=0.9)  # today's form, lr positional
    topt = torch.optim.SGD(theirs, 0.1, momentum=0.9)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["params"] == ours
    assert opt.param_groups[0]["lr"] == topt.param_groups[0]["lr"] == 0.1
    assert opt.params == ours
    assert repr(opt).splitlines()[:3] == ["SGD (", "Parameter Group 0", "    dampening: 0.0"]


def test_schedulers_drive_each_groups_rate_as_torch():
    ours, theirs = _twins()
    options = [dict(lr=0.1), dict(lr=0.01, momentum=0.5)]
    opt = optim.SGD(_groups(ours, options), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(_groups(theirs, options), lr=0.05, momentum=0.9, foreach=False)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=[0.2, 0.05], total_steps=8)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=[0.2, 0.05], total_steps=8)
    for step in range(8):
        _step_both(opt, topt, ours, theirs, step)
        sched.step()
        tsched.step()
        _compare(ours, theirs, f"step {step}")
        assert_close(np.array(sched.get_last_lr()), np.array(tsched.get_last_lr()), "lr",
                     tol=1e-12, scale=0.0)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.2 / 25, 0.05 / 25]


def test_add_param_group_as_torch():
    ours, theirs = _twins()
    opt = optim.Adam([ours[0]], lr=0.01)
    topt = torch.optim.Adam([theirs[0]], lr=0.01, foreach=False)
    opt.add_param_group({"params": [ours[1], ours[2]], "lr": 0.1, "betas": (0.5, 0.9)})
    topt.add_param_group({"params": [theirs[1], theirs[2]], "lr": 0.1, "betas": (0.5, 0.9)})
    assert opt.param_groups[1]["eps"] == 1e-8
    for step in range(3):
        _step_both(opt, topt, ours, theirs, step)
        _compare(ours, theirs, f"step {step}")


def test_lr_reads_the_first_group_and_sets_every_group():
    ours, _ = _twins()
    opt = optim.SGD(_groups(ours, [dict(lr=0.1), {}]), lr=0.01)
    assert opt.lr == 0.1
    opt.lr = 0.5
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]
    with pytest.raises(ValueError, match="lr: expected a value >= 0"):
        opt.lr = -1.0


def test_zero_grad_and_closure():
    ours, _ = _twins()
    opt = optim.SGD(ours, lr=0.1)
    for p, g in zip(ours, _grads(0), strict=True):
        p.grad = g.copy()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in ours)
    opt.zero_grad()
    assert all(p.grad is None for p in ours)

    def closure():
        for p in ours:
            p.grad = np.ones_like(p.data)
        return 3.5

    before = ours[0].data.copy()
    assert opt.step(closure) == 3.5
    assert_close(ours[0].data, before - 0.1, "closure step", tol=1e-15)


def test_state_dict_round_trip_continues_as_uninterrupted():
    def run(steps, opt, params):
        for step in steps:
            for p, g in zip(params, _grads(step), strict=True):
                p.grad = g
            opt.step()

    options = [dict(lr=0.05, amsgrad=True), dict(betas=(0.5, 0.9))]
    straight, _ = _twins()
    run(range(6), optim.Adam(_groups(straight, options), lr=0.01), straight)
    first, _ = _twins()
    opt = optim.Adam(_groups(first, options), lr=0.01)
    run(range(3), opt, first)
    saved = opt.state_dict()
    assert saved["param_groups"][1]["params"] == [2] and saved["state"][0]["step"] == 3
    second = [nn.Parameter(p.data) for p in first]
    opt2 = optim.Adam(_groups(second, [{}, {}]), lr=0.7)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.05 and opt2.param_groups[1]["betas"] == (0.5, 0.9)
    run(range(3, 6), opt2, second)
    for p, q in zip(second, straight, strict=True):
        assert_close(p.data, q.data, "resumed", tol=1e-15)


def test_load_state_dict_rejects_other_groups():
    ours, _ = _twins()
    saved = optim.SGD(_groups(ours, [{}, {}]), lr=0.1).state_dict()
    with pytest.raises(ValueError, match=r"state_dict: its groups hold \[2, 1\] parameters, "
                                         r"this optimizer's \[3\]"):
        optim.SGD(ours, lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="state_dict: expected the dict of"):
        optim.SGD(ours, lr=0.1).load_state_dict({"state": {}})


def test_duplicate_parameter_in_a_group_warns_as_torch():
    p = nn.Parameter(np.zeros(2))
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([p, p], lr=0.1)


def _p():
    return nn.Parameter(np.zeros(2))


SHARED = _p()


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: optim.SGD([], lr=0.1), ValueError, "params: the optimizer got an empty"),
        (lambda: optim.SGD(_p(), lr=0.1), TypeError, "params: expected an iterable of "
                                                     "Parameters or of dicts, got a single"),
        (lambda: optim.SGD({"params": [_p()]}, lr=0.1), TypeError, "got one dict"),
        (lambda: optim.SGD([np.zeros(3)], lr=0.1), TypeError,
         r"params\[0\]: expected a Parameter"),
        (lambda: optim.SGD([{"params": [SHARED]}, {"params": [_p(), SHARED]}], lr=0.1),
         ValueError, r"params\[1\]: some parameters appear in more than one parameter group "
                     r"\(params\[1\]\['params'\]\[1\] is already in param_groups\[0\]\)"),
        (lambda: optim.SGD([{"params": {_p()}}], lr=0.1), TypeError,
         r'params\[0\]\["params"\]: expected an ordered collection'),
        (lambda: optim.SGD([{"params": 3}], lr=0.1), TypeError,
         r'params\[0\]\["params"\]: expected an iterable of Parameters, got int'),
        (lambda: optim.SGD([{"params": ["w"]}], lr=0.1), TypeError,
         r'params\[0\]\["params"\]\[0\]: expected a Parameter'),
        (lambda: optim.SGD([{"lr": 0.1}], lr=0.1), ValueError,
         r"params\[0\]: a parameter group needs a 'params' entry, got keys \['lr'\]"),
        (lambda: optim.SGD([{"params": [_p()]}, [_p()]], lr=0.1), TypeError,
         r"params\[1\]: expected a dict with a 'params' entry, got list"),
        (lambda: optim.SGD([_p()], lr=-1), ValueError, "lr: expected a value >= 0.0, got -1"),
        (lambda: optim.SGD([_p()], lr="0.1"), TypeError, "lr: expected a real number, got str"),
        (lambda: optim.SGD([{"params": [_p()]}, {"params": [_p()], "lr": -0.5}], lr=0.1),
         ValueError, r'params\[1\]\["lr"\]: expected a value >= 0.0, got -0.5'),
        (lambda: optim.SGD([_p()], lr=0.1, momentum=-0.9), ValueError, "momentum"),
        (lambda: optim.SGD([{"params": [_p()], "weight_decay": -1}], lr=0.1), ValueError,
         r'params\[0\]\["weight_decay"\]'),
        (lambda: optim.SGD([{"params": [_p()], "nesterov": True}], lr=0.1), ValueError,
         r'params\[0\]\["nesterov"\]: Nesterov momentum needs momentum > 0'),
        (lambda: optim.SGD([_p()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
         ValueError, "nesterov: Nesterov momentum needs"),
        (lambda: optim.Adam([_p()], betas=(0.9, 1.0)), ValueError,
         r"betas\[1\]: expected a value >= 0.0 and < 1.0, got 1.0"),
        (lambda: optim.Adam([{"params": [_p()], "betas": (-0.1, 0.9)}]), ValueError,
         r'params\[0\]\["betas"\]\[0\]'),
        (lambda: optim.Adam([_p()], betas=0.9), TypeError, r"betas: expected a pair"),
        (lambda: optim.AdamW([{"params": [_p()], "eps": -1e-8}]), ValueError,
         r'params\[0\]\["eps"\]'),
        (lambda: optim.AdamW([_p()], weight_decay=-0.1), ValueError, "weight_decay"),
        (lambda: optim.Adam([_p()]).add_param_group([_p()]), TypeError,
         "param_group: expected a dict"),
        (lambda: optim.Adam([SHARED]).add_param_group({"params": SHARED}), ValueError,
         "param_group: some parameters appear in more than one parameter group"),
    ],
)
def test_optimizers_reject_bad_groups(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_empty_group_and_extra_keys_are_kept_as_torch():
    # PyTorch accepts both (a model without biases gives an empty "no decay" group; a "name"
    # labels a group), so we do too.
    p = _p()
    opt = optim.SGD([{"params": [p], "name": "body"}, {"params": [], "weight_decay": 0.0}],
                    lr=0.1, weight_decay=1e-4)
    topt = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "name": "body"},
                            {"params": [], "weight_decay": 0.0}], lr=0.1, weight_decay=1e-4)
    assert opt.param_groups[0]["name"] == topt.param_groups[0]["name"] == "body"
    assert opt.param_groups[1]["params"] == [] and len(topt.param_groups) == 2
    p.grad = np.ones(2)
    opt.step()
    assert_close(p.data, -0.1 * np.ones(2), "step", tol=1e-15)
