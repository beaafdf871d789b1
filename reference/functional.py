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


def relu(x, *, backend=None):
    """``torch.relu`` on NumPy arrays."""
    return _np(torch.relu(_t(x)))


def relu_backward(grad_y, x, *, backend=None):
    """grad_x of relu by autograd."""
    tx = _t(x, True)
    return _backward(torch.relu(tx), grad_y, tx)[0]


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
