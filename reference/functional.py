"""The functional ops in PyTorch: forward with ``torch.nn.functional``, backward by autograd.

Every function takes and returns NumPy arrays (float32 or float64, the dtype is kept) and
runs on the CPU. This is the oracle the tests compare every backend with, and the baseline
the benchmarks time.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as tF


def _t(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    t = torch.from_numpy(np.array(a, copy=True))
    return t.requires_grad_(grad)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _backward(out: torch.Tensor, grad_y: np.ndarray, *inputs: torch.Tensor):
    grads = torch.autograd.grad(out, inputs, _t(grad_y), allow_unused=True)
    return [
        _np(g) if g is not None else np.zeros(tuple(i.shape), dtype=grad_y.dtype)
        for g, i in zip(grads, inputs, strict=True)
    ]


def corr2d(X, K, *, backend=None):
    """Single-channel cross-correlation: X (H, W), K (kh, kw) -> (H - kh + 1, W - kw + 1)."""
    return _np(tF.conv2d(_t(X)[None, None], _t(K)[None, None]))[0, 0]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, backend=None):
    """``torch.nn.functional.conv2d`` on NumPy arrays."""
    b = None if bias is None else _t(bias)
    return _np(tF.conv2d(_t(x), _t(weight), b, stride, padding, dilation, groups))


def conv2d_backward(grad_y, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    backend=None):
    """(grad_x, grad_weight, grad_bias) of conv2d by autograd."""
    tx, tw = _t(x, True), _t(weight, True)
    tb = torch.zeros(weight.shape[0], dtype=tw.dtype, requires_grad=True)
    out = tF.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    gx, gw, gb = _backward(out, grad_y, tx, tw, tb)
    return gx, gw, gb


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
               return_indices=False, backend=None):
    """``torch.nn.functional.max_pool2d`` on NumPy arrays (indices as int64 NumPy too)."""
    out = tF.max_pool2d(_t(x), kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices=bool(return_indices))
    if return_indices:
        return _np(out[0]), out[1].numpy()
    return _np(out)


def max_pool2d_backward(grad_y, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, *, indices=None, backend=None):
    """grad_x of max_pool2d by autograd (which keeps its own indices; ``indices`` is unused)."""
    tx = _t(x, True)
    out = tF.max_pool2d(tx, kernel_size, stride, padding, dilation, ceil_mode)
    return _backward(out, grad_y, tx)[0]


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, backend=None):
    """``torch.nn.functional.avg_pool2d`` on NumPy arrays."""
    return _np(tF.avg_pool2d(_t(x), kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override))


def avg_pool2d_backward(grad_y, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None, *, backend=None):
    """grad_x of avg_pool2d by autograd."""
    tx = _t(x, True)
    out = tF.avg_pool2d(tx, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override)
    return _backward(out, grad_y, tx)[0]


def adaptive_avg_pool2d(x, output_size, *, backend=None):
    """``torch.nn.functional.adaptive_avg_pool2d`` on NumPy arrays."""
    return _np(tF.adaptive_avg_pool2d(_t(x), output_size))


def adaptive_avg_pool2d_backward(grad_y, x, output_size, *, backend=None):
    """grad_x of adaptive_avg_pool2d by autograd."""
    tx = _t(x, True)
    out = tF.adaptive_avg_pool2d(tx, output_size)
    return _backward(out, grad_y, tx)[0]


def pad(x, pad, mode="constant", value=0.0, *, backend=None):
    """``torch.nn.functional.pad`` on NumPy arrays, ``pad = (left, right[, top, bottom])``."""
    return _np(tF.pad(_t(x), tuple(pad), mode=mode, value=value))


def pad_backward(grad_y, x, pad, mode="constant", value=0.0, *, backend=None):
    """grad_x of pad by autograd."""
    tx = _t(x, True)
    out = tF.pad(tx, tuple(pad), mode=mode, value=value)
    return _backward(out, grad_y, tx)[0]


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, backend=None):
    """``torch.nn.functional.conv1d`` on NumPy arrays."""
    b = None if bias is None else _t(bias)
    return _np(tF.conv1d(_t(x), _t(weight), b, stride, padding, dilation, groups))


def conv1d_backward(grad_y, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    backend=None):
    """(grad_x, grad_weight, grad_bias) of conv1d by autograd."""
    tx, tw = _t(x, True), _t(weight, True)
    tb = torch.zeros(weight.shape[0], dtype=tw.dtype, requires_grad=True)
    out = tF.conv1d(tx, tw, tb, stride, padding, dilation, groups)
    gx, gw, gb = _backward(out, grad_y, tx, tw, tb)
    return gx, gw, gb


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, backend=None):
    """``torch.nn.functional.batch_norm`` on NumPy arrays.

    Returns ``(y, running_mean, running_var)``: the running estimates as torch left them
    (copies; the arrays passed in are not touched), None where None came.
    """
    rm = None if running_mean is None else _t(running_mean)
    rv = None if running_var is None else _t(running_var)
    w = None if weight is None else _t(weight)
    b = None if bias is None else _t(bias)
    y = tF.batch_norm(_t(x), rm, rv, w, b, training, momentum, eps)
    return _np(y), None if rm is None else _np(rm), None if rv is None else _np(rv)


def batch_norm_backward(grad_y, x, weight, running_mean, running_var, training=False,
                        eps=1e-5, *, backend=None):
    """(grad_x, grad_weight, grad_bias) of batch_norm by autograd (weight None: ones).

    Takes the running estimates the forward was given (before its update), not saved
    statistics: torch recomputes what it needs.
    """
    C = x.shape[1]
    w = np.ones(C, x.dtype) if weight is None else weight
    tx, tw = _t(x, True), _t(w, True)
    tb = torch.zeros(C, dtype=tw.dtype, requires_grad=True)
    rm = None if running_mean is None else _t(running_mean)
    rv = None if running_var is None else _t(running_var)
    out = tF.batch_norm(tx, rm, rv, tw, tb, training, 0.1, eps)
    gx, gw, gb = _backward(out, grad_y, tx, tw, tb)
    return gx, gw, gb


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5, *, backend=None):
    """``torch.nn.functional.group_norm`` on NumPy arrays."""
    w = None if weight is None else _t(weight)
    b = None if bias is None else _t(bias)
    return _np(tF.group_norm(_t(x), num_groups, w, b, eps))


def _norm_backward(norm, grad_y, x, shape, weight):
    """(grad_x, grad_weight, grad_bias) of ``norm(x, weight, bias)`` by autograd.

    ``shape`` is the weight's and bias's; a None weight is taken as ones, the bias as zeros.
    """
    w = np.ones(shape, x.dtype) if weight is None else weight
    tx, tw = _t(x, True), _t(w, True)
    tb = torch.zeros(shape, dtype=tw.dtype, requires_grad=True)
    gx, gw, gb = _backward(norm(tx, tw, tb), grad_y, tx, tw, tb)
    return gx, gw, gb


def group_norm_backward(grad_y, x, num_groups, weight, eps=1e-5, *, backend=None):
    """(grad_x, grad_weight, grad_bias) of group_norm by autograd (weight None: ones).

    Takes the forward's eps, not saved statistics: torch recomputes what it needs.
    """
    return _norm_backward(lambda tx, tw, tb: tF.group_norm(tx, num_groups, tw, tb, eps),
                          grad_y, x, (x.shape[1],), weight)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5, *, backend=None):
    """``torch.nn.functional.layer_norm`` on NumPy arrays (an int shape as ``nn.LayerNorm``'s)."""
    w = None if weight is None else _t(weight)
    b = None if bias is None else _t(bias)
    return _np(tF.layer_norm(_t(x), tuple(np.atleast_1d(normalized_shape)), w, b, eps))


def layer_norm_backward(grad_y, x, normalized_shape, weight, eps=1e-5, *, backend=None):
    """(grad_x, grad_weight, grad_bias) of layer_norm by autograd (weight None: ones)."""
    shape = tuple(np.atleast_1d(normalized_shape))
    return _norm_backward(lambda tx, tw, tb: tF.layer_norm(tx, shape, tw, tb, eps),
                          grad_y, x, shape, weight)


def relu(x, *, backend=None):
    """``torch.relu`` on NumPy arrays."""
    return _np(torch.relu(_t(x)))


def relu_backward(grad_y, x, *, backend=None):
    """grad_x of relu by autograd."""
    tx = _t(x, True)
    return _backward(torch.relu(tx), grad_y, tx)[0]


def sigmoid(x, *, backend=None):
    """``torch.sigmoid`` on NumPy arrays."""
    return _np(torch.sigmoid(_t(x)))


def sigmoid_backward(grad_y, y, *, backend=None):
    """grad_x of sigmoid from its output y: ``aten.sigmoid_backward``, what autograd runs."""
    return _np(torch.ops.aten.sigmoid_backward(_t(grad_y), _t(y)))


def tanh(x, *, backend=None):
    """``torch.tanh`` on NumPy arrays."""
    return _np(torch.tanh(_t(x)))


def tanh_backward(grad_y, y, *, backend=None):
    """grad_x of tanh from its output: ``torch.ops.aten.tanh_backward``, what autograd runs."""
    return _np(torch.ops.aten.tanh_backward(_t(grad_y), _t(y)))


def leaky_relu(x, negative_slope=0.01, *, backend=None):
    """``torch.nn.functional.leaky_relu`` on NumPy arrays."""
    return _np(tF.leaky_relu(_t(x), negative_slope))


def leaky_relu_backward(grad_y, x, negative_slope=0.01, *, backend=None):
    """grad_x of leaky_relu by autograd."""
    tx = _t(x, True)
    return _backward(tF.leaky_relu(tx, negative_slope), grad_y, tx)[0]


def elu(x, alpha=1.0, *, backend=None):
    """``torch.nn.functional.elu`` on NumPy arrays."""
    return _np(tF.elu(_t(x), alpha))


def elu_backward(grad_y, x, alpha=1.0, *, backend=None):
    """grad_x of elu by autograd (at a NaN input PyTorch gives grad_y or NaN by the element's
    position: its scalar loop tests ``x <= 0``, its vectorised loop ``x > 0``).
    """
    tx = _t(x, True)
    return _backward(tF.elu(tx, alpha), grad_y, tx)[0]


def gelu(x, approximate="none", *, backend=None):
    """``torch.nn.functional.gelu`` on NumPy arrays."""
    return _np(tF.gelu(_t(x), approximate=approximate))


def gelu_backward(grad_y, x, approximate="none", *, backend=None):
    """grad_x of gelu by autograd."""
    tx = _t(x, True)
    return _backward(tF.gelu(tx, approximate=approximate), grad_y, tx)[0]


def silu(x, *, backend=None):
    """``torch.nn.functional.silu`` on NumPy arrays."""
    return _np(tF.silu(_t(x)))


def silu_backward(grad_y, x, *, backend=None):
    """grad_x of silu by autograd."""
    tx = _t(x, True)
    return _backward(tF.silu(tx), grad_y, tx)[0]


def softmax(x, dim=1, *, backend=None):
    """``torch.softmax`` on NumPy arrays."""
    return _np(torch.softmax(_t(x), dim))


def softmax_backward(grad_y, y, dim=1, *, backend=None):
    """grad_x of softmax from its output: ``aten._softmax_backward_data``, what autograd runs."""
    g, ty = _t(grad_y), _t(y)
    return _np(torch.ops.aten._softmax_backward_data(g, ty, dim, ty.dtype))


def cat(arrays, dim=1, *, backend=None):
    """``torch.cat`` on NumPy arrays."""
    return _np(torch.cat([_t(a) for a in arrays], dim))


def cat_backward(grad_y, sizes, dim=1, *, backend=None):
    """The gradients of cat's inputs by autograd: the slices of grad_y along ``dim``."""
    shape = list(grad_y.shape)
    inputs = []
    for size in sizes:
        shape[dim] = size
        inputs.append(_t(np.zeros(shape, grad_y.dtype), True))
    return _backward(torch.cat(inputs, dim), grad_y, *inputs)


def dropout2d_with_mask(x, mask, p, *, backend=None):
    """PyTorch's dropout2d output for the (N, C) keep ``mask`` our op drew: ``x * noise``,
    the noise (N, C, 1, ..., 1) broadcast over the dims after C (``_dropout_impl``).
    """
    noise = _noise(mask, p, x.dtype).reshape(mask.shape + (1,) * (x.ndim - 2))
    return _np(_t(x) * noise)


def dropout2d_backward(grad_y, mask, p, *, backend=None):
    """grad_x of dropout2d by autograd of ``x * noise``, the noise rebuilt from ``mask``."""
    tx = _t(np.zeros_like(grad_y), True)
    noise = _noise(mask, p, grad_y.dtype).reshape(mask.shape + (1,) * (grad_y.ndim - 2))
    return _backward(tx * noise, grad_y, tx)[0]


def add(a, b, *, backend=None):
    """``torch.add`` on NumPy arrays."""
    return _np(torch.add(_t(a), _t(b)))


def flatten(x, start_dim=1, end_dim=-1, *, backend=None):
    """``torch.flatten`` on NumPy arrays (start_dim 1, as ``F.flatten``'s default)."""
    return _np(torch.flatten(_t(x), start_dim, end_dim))


def linear(x, weight, bias=None, *, backend=None):
    """``torch.nn.functional.linear`` on NumPy arrays."""
    return _np(tF.linear(_t(x), _t(weight), None if bias is None else _t(bias)))


def linear_backward(grad_y, x, weight, *, backend=None):
    """(grad_x, grad_weight, grad_bias) of linear by autograd."""
    tx, tw = _t(x, True), _t(weight, True)
    tb = torch.zeros(weight.shape[0], dtype=tw.dtype, requires_grad=True)
    return tuple(_backward(tF.linear(tx, tw, tb), grad_y, tx, tw, tb))


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, backend=None):
    """``torch.nn.functional.conv_transpose2d`` on NumPy arrays."""
    b = None if bias is None else _t(bias)
    return _np(tF.conv_transpose2d(_t(x), _t(weight), b, stride, padding, output_padding,
                                   groups, dilation))


def conv_transpose2d_backward(grad_y, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, backend=None):
    """(grad_x, grad_weight, grad_bias) of conv_transpose2d by autograd."""
    tx, tw = _t(x, True), _t(weight, True)
    tb = torch.zeros(weight.shape[1] * groups, dtype=tw.dtype, requires_grad=True)
    out = tF.conv_transpose2d(tx, tw, tb, stride, padding, output_padding, groups, dilation)
    gx, gw, gb = _backward(out, grad_y, tx, tw, tb)
    return gx, gw, gb


def adaptive_max_pool2d(x, output_size, return_indices=False, *, backend=None):
    """``torch.nn.functional.adaptive_max_pool2d`` on NumPy arrays (indices as int64 NumPy)."""
    out = tF.adaptive_max_pool2d(_t(x), output_size, return_indices=bool(return_indices))
    if return_indices:
        return _np(out[0]), out[1].numpy()
    return _np(out)


def adaptive_max_pool2d_backward(grad_y, x, output_size, *, indices=None, backend=None):
    """grad_x of adaptive_max_pool2d by autograd (which keeps its own indices)."""
    tx = _t(x, True)
    out = tF.adaptive_max_pool2d(tx, output_size)
    return _backward(out, grad_y, tx)[0]


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 backend=None):
    """``torch.nn.functional.max_unpool2d`` on NumPy arrays (``indices`` int64 NumPy)."""
    return _np(tF.max_unpool2d(_t(x), torch.from_numpy(np.array(indices, np.int64)),
                               kernel_size, stride, padding, output_size))


def max_unpool2d_backward(grad_y, x, indices, kernel_size, stride=None, padding=0,
                          output_size=None, *, backend=None):
    """grad_x of max_unpool2d by autograd."""
    tx = _t(x, True)
    out = tF.max_unpool2d(tx, torch.from_numpy(np.array(indices, np.int64)), kernel_size,
                          stride, padding, output_size)
    return _backward(out, grad_y, tx)[0]


# --------------------------------------------------------------------------- losses, dropout


def log_softmax(x, dim=1, *, backend=None):
    """``torch.log_softmax`` on NumPy arrays."""
    return _np(torch.log_softmax(_t(x), dim))


def log_softmax_backward(grad_y, y, dim=1, *, backend=None):
    """grad_x of log_softmax by autograd, taken at ``y`` itself: ``log_softmax(y) == y`` for
    log-probabilities, and the gradient depends on the input only through ``softmax``,
    which is ``exp(y)`` at both.
    """
    ty = _t(y, True)
    return _backward(torch.log_softmax(ty, dim), grad_y, ty)[0]


def _target(target) -> torch.Tensor:
    return torch.from_numpy(np.array(target, np.int64))


def _loss_backward(loss_fn, x, target, reduction, grad):
    tx = _t(x, True)
    loss = loss_fn(tx, _target(target), reduction=reduction)
    return _backward(loss, np.array(grad, x.dtype), tx)[0]


def nll_loss(logp, target, reduction="mean", *, backend=None):
    """``torch.nn.functional.nll_loss`` on NumPy arrays: a 0-d array."""
    return _np(tF.nll_loss(_t(logp), _target(target), reduction=reduction))


def nll_loss_backward(logp, target, reduction="mean", *, grad=1.0, backend=None):
    """grad_logp of nll_loss by autograd, the loss's upstream gradient ``grad``."""
    return _loss_backward(tF.nll_loss, logp, target, reduction, grad)


def cross_entropy(logits, target, reduction="mean", *, backend=None):
    """``torch.nn.functional.cross_entropy`` on NumPy arrays: a 0-d array."""
    return _np(tF.cross_entropy(_t(logits), _target(target), reduction=reduction))


def cross_entropy_backward(logits, target, reduction="mean", *, grad=1.0, backend=None):
    """grad_logits of cross_entropy by autograd, the loss's upstream gradient ``grad``."""
    return _loss_backward(tF.cross_entropy, logits, target, reduction, grad)


def _noise(mask, p, dtype) -> torch.Tensor:
    """PyTorch's dropout noise for a given keep ``mask``: the 0/1 draws divided by ``1 - p``
    in the tensor's dtype (``_dropout_impl`` in ATen's Dropout.cpp); zeros for ``p == 1``.
    """
    noise = torch.from_numpy(np.array(mask, dtype))
    return noise * 0 if p == 1 else noise.div_(1 - p)


def dropout_with_mask(x, mask, p, *, backend=None):
    """PyTorch's dropout output for the keep ``mask`` our op drew: ``x * noise``.

    ``x * 0`` for ``p == 1``, as PyTorch. The draws themselves cannot be twinned: they are ours.
    """
    return _np(_t(x) * _noise(mask, p, x.dtype))


def dropout_backward(grad_y, mask, p, *, backend=None):
    """grad_x of dropout by autograd of ``x * noise``, the noise rebuilt from ``mask``."""
    tx = _t(np.zeros_like(grad_y), True)
    return _backward(tx * _noise(mask, p, grad_y.dtype), grad_y, tx)[0]


# --------------------------------------------------------------------------- optimizer updates


def sgd_step(param, grad, buf, lr, momentum=0.0, dampening=0.0, nesterov=False,
             weight_decay=0.0, *, backend=None):
    """One ``torch.optim.SGD`` step on ``param`` in place (torch works on the NumPy memory);
    returns the momentum buffer as ``F.sgd_step`` does (a new array on the first step).
    """
    p = torch.nn.Parameter(torch.from_numpy(param))  # shares param's memory
    p.grad = _t(grad)
    opt = torch.optim.SGD([p], lr=lr, momentum=momentum, dampening=dampening,
                          nesterov=nesterov, weight_decay=weight_decay, foreach=False)
    if buf is not None:
        opt.state[p]["momentum_buffer"] = torch.from_numpy(buf)
    opt.step()
    new = opt.state[p].get("momentum_buffer")
    if momentum == 0:
        return None
    return _np(new) if buf is None else buf


def adam_step(param, grad, m, v, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              *, amsgrad=False, v_max=None, decoupled_weight_decay=False, backend=None):
    """One ``torch.optim.Adam`` step on ``param``, ``m``, ``v`` (and ``v_max``) in place:
    torch's state is set to them (``step - 1`` steps taken) and works on their memory.
    """
    p = torch.nn.Parameter(torch.from_numpy(param))
    p.grad = _t(grad)
    opt = torch.optim.Adam([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                           amsgrad=amsgrad, foreach=False,
                           decoupled_weight_decay=decoupled_weight_decay)
    state = {"step": torch.tensor(float(step - 1)), "exp_avg": torch.from_numpy(m),
             "exp_avg_sq": torch.from_numpy(v)}
    if amsgrad:
        state["max_exp_avg_sq"] = torch.from_numpy(v_max)
    opt.state[p] = state
    opt.step()
