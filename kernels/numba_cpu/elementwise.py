"""Element-wise ops, compiled: ReLU, LeakyReLU, ELU, GELU, SiLU, sigmoid, tanh and softmax
forward and backward; add; dropout2d and cat (the vectorized backend's).

What changes relative to ``kernels.naive``: the same loop over the elements, compiled by
Numba over the flat arrays, so it runs at memory speed (LLVM vectorises it). It is serial on
purpose: an element-wise op reads each element once and a single core nearly saturates
memory bandwidth here, while waking Numba's thread pool costs ~50 us, more than a small
layer's whole ReLU. The test is PyTorch's ``x <= 0``: a NaN passes through, forward and back.

One exception, measured: the transcendental functions. LLVM vectorises ``+ * / max`` but
not ``math.exp`` or ``math.tanh``, which stay one scalar libm call per element unless Intel's
SVML library is installed (it is not: ``numba -s`` says "SVML State: False"); NumPy ships its
own SIMD kernels for ``exp``, ``expm1`` and ``tanh`` (AVX-512 and AVX2). So sigmoid, tanh,
SiLU and ELU take their ``exp`` / ``expm1`` / ``tanh`` as one NumPy ufunc call over the whole
array, and a compiled loop does the rest in one pass. On LeNet's first activation,
(64, 6, 28, 28) float32, min of 40 calls, 2-core AMD EPYC (AVX-512), NumPy 2.4: sigmoid
2.21 -> 0.33 ms, tanh 4.10 -> 0.05 ms, SiLU 0.77 -> 0.34 ms, ELU 2.45 -> 0.19 ms (its
backward 1.69 -> 0.29 ms). GELU keeps its scalar loops: NumPy has no ``erf``.

And one exception to that: float32 sigmoid, the activation of LeNet-5 (d2l, 7.6), computes
its own ``exp`` (:func:`_sigmoid_f32`: Cephes' range reduction and polynomial, which LLVM
vectorises) in one compiled pass, on all threads from ``SIGMOID_PARALLEL_MIN`` elements. On
LeNet's activations, float32, medians of 200 interleaved calls, AVX2 EPYC (Zen 3):
(64, 6, 28, 28) 0.86-0.89 -> 0.17-0.21 ms, (64, 16, 10, 10) 0.30 -> 0.07-0.08 ms, (64, 120)
0.027-0.030 -> 0.012-0.013 ms (PyTorch, 2 threads: 0.20-0.25, 0.07-0.09, 0.014-0.015).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from kernels.vectorized import (  # noqa: F401  (the numba backend's, see below)
    cat,
    cat_backward,
    dropout2d,
    dropout2d_backward,
)

from ._loops import FASTMATH, _serial_twin, njit


@njit(cache=True)
def _relu(x, y):
    """y[k] = 0 if x[k] <= 0 else x[k]; x, y : flat arrays of one length."""
    zero = x.dtype.type(0)
    for k in range(x.shape[0]):
        v = x[k]
        y[k] = zero if v <= zero else v


@njit(cache=True)
def _relu_backward(grad_y, x, grad_x):
    """grad_x[k] = 0 if x[k] <= 0 else grad_y[k]; flat arrays of one length."""
    zero = grad_y.dtype.type(0)
    for k in range(x.shape[0]):
        grad_x[k] = zero if x[k] <= zero else grad_y[k]


def relu(x: np.ndarray) -> np.ndarray:
    """``y = max(x, 0)``. x : any shape -> y : that shape and dtype."""
    y = np.empty_like(x)
    _relu(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(grad_y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """grad_x of :func:`relu`. grad_y, x : one shape -> grad_x : that shape, grad_y's dtype."""
    grad_x = np.empty_like(grad_y)
    _relu_backward(grad_y.reshape(-1), x.reshape(-1), grad_x.reshape(-1))
    return grad_x


@njit(cache=True)
def _sigmoid_backward(grad_y, y, grad_x):
    """grad_x[k] = grad_y[k] * (1 - y[k]) * y[k], PyTorch's order of the products."""
    one = y.dtype.type(1)
    for k in range(y.shape[0]):
        s = y[k]
        grad_x[k] = grad_y[k] * (one - s) * s


@njit(cache=True)
def _tanh_backward(grad_y, y, grad_x):
    """grad_x[k] = grad_y[k] * (1 - y[k] * y[k])."""
    one = y.dtype.type(1)
    for k in range(y.shape[0]):
        t = y[k]
        grad_x[k] = grad_y[k] * (one - t * t)


@njit(cache=True)
def _add(a, b, y):
    """y[k] = a[k] + b[k]."""
    for k in range(a.shape[0]):
        y[k] = a[k] + b[k]


def _map(kernel, out_like, *arrays):
    """Run a flat ``kernel(*arrays, out)`` and return ``out``, shaped as ``out_like``."""
    out = np.empty_like(out_like)
    kernel(*(a.reshape(-1) for a in arrays), out.reshape(-1))
    return out


def _exp_neg_abs(x: np.ndarray) -> np.ndarray:
    """``exp(-|x|)`` in (0, 1] (nothing overflows), NumPy's SIMD ``exp``; a NaN stays NaN."""
    e = np.abs(x, out=np.empty_like(x))
    np.negative(e, out=e)
    return np.exp(e, out=e)


@njit(cache=True, fastmath=FASTMATH)
def _sigmoid_from_exp(x, e):
    """``e[k] = (1 if x[k] >= 0 else e[k]) / (1 + e[k])`` in place, ``e = exp(-|x|)``.

    For ``x >= 0`` that is ``1 / (1 + exp(-x))``, for ``x < 0`` ``exp(x) / (1 + exp(x))``:
    naive's two branches (each exponent <= 0, so nothing overflows) as a select, which LLVM
    vectorises.
    """
    one = e.dtype.type(1)
    for k in range(x.shape[0]):
        ek = e[k]
        e[k] = (one if x[k] >= 0 else ek) / (one + ek)


SIGMOID_CHUNK = 4096
"""Elements per work item of :func:`_sigmoid_f32` (its 2**n table, 16 KB, stays in L1)."""
SIGMOID_PARALLEL_MIN = 2**16
"""From this many elements :func:`sigmoid` runs :func:`_sigmoid_f32` on all threads; below,
its serial twin (waking the thread pool costs ~50 us, :mod:`kernels.numba_cpu.conv_direct`)."""


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _sigmoid_f32(x, y):
    """``y = 1 / (1 + exp(-x))`` for flat float32 arrays, with its own vectorisable ``exp``.

    ``e = exp(-|x|)`` as Cephes' ``expf`` computes it: ``n = round(t / ln 2)``, ``r = t - n ln
    2`` (ln 2 in two parts, so the subtraction is exact), ``e**r`` by a degree-7 polynomial on
    ``|r| <= ln(2)/2`` (about one ulp), times ``2**n`` built from its bits: the exponent field
    ``n + 127`` shifted into place in an int32 table and read back as float32, one chunk at
    a time. ``2**(n + 24)`` then ``* 2**-24`` keeps ``n`` down to -150 (results below the
    normal range, as PyTorch gives them); ``t < -104`` gives 0. Then naive's two branches as
    a select, as :func:`_sigmoid_from_exp`; a NaN stays NaN. Within 3 ulps of the true
    value (PyTorch's: 2.5). LLVM vectorises both loops, which it cannot do with ``math.exp``
    (one libm call per element), and only over runs indexed from 0 (``xs[k]``, not
    ``x[lo + k]``, whose index Numba would test for wrap-around: the second loop stayed
    scalar, 3.4 against 0.6 ns per element). The module header has the times.
    """
    size = x.shape[0]
    one, lowest = np.float32(1), np.float32(-104)
    log2e, ln2_hi, ln2_lo = np.float32(1.44269504088896341), np.float32(0.693359375), \
        np.float32(-2.12194440e-4)
    tiny = np.float32(2.0**-24)
    for chunk in prange(-(-size // SIGMOID_CHUNK)):
        lo = chunk * SIGMOID_CHUNK
        xs, ys = x[lo:lo + SIGMOID_CHUNK], y[lo:lo + SIGMOID_CHUNK]  # runs indexed from 0
        bits = np.empty(xs.shape[0], np.int32)  # the bits of 2**(n + 24)
        for k in range(xs.shape[0]):
            t = -abs(xs[k])
            t = t if t > lowest else lowest
            n = np.floor(t * log2e + np.float32(0.5))
            r = t - n * ln2_hi - n * ln2_lo
            q = np.float32(1.9875691500e-4)
            q = q * r + np.float32(1.3981999507e-3)
            q = q * r + np.float32(8.3334519073e-3)
            q = q * r + np.float32(4.1665795894e-2)
            q = q * r + np.float32(1.6666665459e-1)
            q = q * r + np.float32(5.0000001201e-1)
            ys[k] = q * r * r + r + one  # e**r
            bits[k] = (np.int32(n) + np.int32(24 + 127)) << 23
        scale = bits.view(np.float32)
        for k in range(xs.shape[0]):
            v = xs[k]
            e = ys[k] * scale[k] * tiny
            e = e if -abs(v) > lowest else np.float32(0)
            s = (one if v >= 0 else e) / (one + e)
            ys[k] = v if v != v else s


_sigmoid_f32_serial = _serial_twin(_sigmoid_f32, "_sigmoid_f32_serial")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``y = 1 / (1 + exp(-x))``. x : any shape -> y : that shape and dtype.

    float32 (what training runs in) takes :func:`_sigmoid_f32`; float64 NumPy's ``exp``, exact
    to the last bit there, where a polynomial would need twice the terms.
    """
    if x.dtype == np.float32:
        y = np.empty_like(x)
        kernel = _sigmoid_f32 if x.size >= SIGMOID_PARALLEL_MIN else _sigmoid_f32_serial
        kernel(x.reshape(-1), y.reshape(-1))
        return y
    y = _exp_neg_abs(x)
    _sigmoid_from_exp(x.reshape(-1), y.reshape(-1))
    return y


def sigmoid_backward(grad_y: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_x of :func:`sigmoid` from its output y. grad_y, y : one shape -> that shape."""
    return _map(_sigmoid_backward, grad_y, grad_y, y)


def tanh(x: np.ndarray) -> np.ndarray:
    """``y = tanh(x)``, NumPy's SIMD ``tanh``. x : any shape -> y : that shape and dtype."""
    return np.tanh(x, out=np.empty_like(x))


def tanh_backward(grad_y: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_x of :func:`tanh` from its output y. grad_y, y : one shape -> that shape."""
    return _map(_tanh_backward, grad_y, grad_y, y)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b``. a, b : one shape -> that shape."""
    return _map(_add, a, a, b)


# --------------------------------------------------------------------------- leaky_relu, elu,
# gelu, silu, softmax; dropout2d and cat
# The same serial flat loops, with PyTorch's formulas and tests on x (``x > 0`` for
# LeakyReLU, ``x <= 0`` for ELU). Softmax loops over the rows of an (A, C, B) array. dropout2d
# and cat are the vectorized backend's: the mask is NumPy's draws (so every CPU backend agrees
# for one random seed) and a concatenation is a memory copy, which NumPy already does at
# memory speed.

GELU_TANH_BETA = math.sqrt(2.0) * (2.0 / math.sqrt(math.pi)) * 0.5
GELU_TANH_KAPPA = 0.044715
GELU_PDF_ALPHA = (2.0 / math.sqrt(math.pi)) * math.sqrt(0.5) * 0.5


@njit(cache=True)
def _leaky_relu(x, slope, y):
    for k in range(x.shape[0]):
        v = x[k]
        y[k] = v if v > 0 else v * slope


@njit(cache=True)
def _leaky_relu_backward(grad_y, x, slope, grad_x):
    for k in range(x.shape[0]):
        grad_x[k] = grad_y[k] if x[k] > 0 else grad_y[k] * slope


@njit(cache=True, fastmath=FASTMATH)
def _elu_from_expm1(x, alpha, em):
    """``em[k] = em[k] * alpha if x[k] <= 0 else x[k]`` in place, ``em = expm1(min(x, 0))``."""
    for k in range(x.shape[0]):
        v = x[k]
        em[k] = em[k] * alpha if v <= 0 else v


@njit(cache=True, fastmath=FASTMATH)
def _elu_backward_from_exp(grad_y, x, alpha, e):
    """``e[k] = grad_y[k] * alpha * e[k] if x[k] <= 0 else grad_y[k]``, ``e = exp(min(x, 0))``."""
    for k in range(x.shape[0]):
        e[k] = grad_y[k] * alpha * e[k] if x[k] <= 0 else grad_y[k]


@njit(cache=True)
def _gelu_erf(x, y):
    half = x.dtype.type(0.5)
    root_half = x.dtype.type(math.sqrt(0.5))
    for k in range(x.shape[0]):
        v = x[k]
        y[k] = v * half * (1 + math.erf(v * root_half))


@njit(cache=True)
def _gelu_tanh(x, y):
    half = x.dtype.type(0.5)
    beta = x.dtype.type(GELU_TANH_BETA)
    kappa = x.dtype.type(GELU_TANH_KAPPA)
    for k in range(x.shape[0]):
        v = x[k]
        y[k] = half * v * (1 + math.tanh(beta * (v + kappa * v * v * v)))


@njit(cache=True)
def _gelu_erf_backward(grad_y, x, grad_x):
    half = x.dtype.type(0.5)
    root_half = x.dtype.type(math.sqrt(0.5))
    alpha = x.dtype.type(GELU_PDF_ALPHA)
    for k in range(x.shape[0]):
        v = x[k]
        cdf = half * (1 + math.erf(v * root_half))
        pdf = math.exp(-half * v * v) * alpha
        grad_x[k] = grad_y[k] * (cdf + v * pdf)


@njit(cache=True)
def _gelu_tanh_backward(grad_y, x, grad_x):
    half = x.dtype.type(0.5)
    beta = x.dtype.type(GELU_TANH_BETA)
    kappa = x.dtype.type(GELU_TANH_KAPPA)
    three_kappa = x.dtype.type(3.0 * GELU_TANH_KAPPA)
    for k in range(x.shape[0]):
        v = x[k]
        t = math.tanh(beta * (v + kappa * v * v * v))
        inner_derivative = beta * (1 + three_kappa * v * v)
        grad_x[k] = grad_y[k] * (half * (1 + t) + half * v * (1 - t * t) * inner_derivative)


@njit(cache=True, fastmath=FASTMATH)
def _silu_from_exp(x, e):
    """``e[k] = x[k] * sigmoid(x[k])`` in place, ``e = exp(-|x|)`` (see _sigmoid_from_exp)."""
    one = e.dtype.type(1)
    for k in range(x.shape[0]):
        v, ek = x[k], e[k]
        e[k] = v * ((one if v >= 0 else ek) / (one + ek))


@njit(cache=True, fastmath=FASTMATH)
def _silu_backward_from_exp(grad_y, x, e):
    """``e[k] = grad_y[k] * s * (1 + x[k] * (1 - s))``, ``s = sigmoid(x[k])``, in place."""
    one = e.dtype.type(1)
    for k in range(x.shape[0]):
        v, ek = x[k], e[k]
        s = (one if v >= 0 else ek) / (one + ek)
        e[k] = grad_y[k] * s * (one + v * (one - s))


@njit(cache=True)
def _softmax(x, y):
    """Softmax over axis 1 of x : (A, C, B); the row maximum (NaN wins) subtracted first."""
    A, C, B = x.shape
    for a in range(A):
        for b in range(B):
            m = x[a, 0, b]
            for c in range(1, C):
                v = x[a, c, b]
                if m == m and (v != v or v > m):
                    m = v
            total = x.dtype.type(0)
            for c in range(C):
                e = math.exp(x[a, c, b] - m)
                y[a, c, b] = e
                total += e
            for c in range(C):
                y[a, c, b] = y[a, c, b] / total


@njit(cache=True)
def _softmax_backward(grad_y, y, grad_x):
    A, C, B = y.shape
    for a in range(A):
        for b in range(B):
            dot = y.dtype.type(0)
            for c in range(C):
                dot += grad_y[a, c, b] * y[a, c, b]
            for c in range(C):
                grad_x[a, c, b] = y[a, c, b] * (grad_y[a, c, b] - dot)


def leaky_relu(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``y = x if x > 0 else x * negative_slope``. x : any shape -> y : that shape."""
    y = np.empty_like(x)
    _leaky_relu(x.reshape(-1), x.dtype.type(negative_slope), y.reshape(-1))
    return y


def leaky_relu_backward(grad_y: np.ndarray, x: np.ndarray, negative_slope: float) -> np.ndarray:
    """grad_x of :func:`leaky_relu`. grad_y, x : one shape -> that shape."""
    grad_x = np.empty_like(grad_y)
    _leaky_relu_backward(grad_y.reshape(-1), x.reshape(-1), x.dtype.type(negative_slope),
                         grad_x.reshape(-1))
    return grad_x


def elu(x: np.ndarray, alpha: float) -> np.ndarray:
    """``y = alpha * expm1(x) if x <= 0 else x``. x : any shape -> y : that shape."""
    y = np.minimum(x, 0, out=np.empty_like(x))  # NaN stays NaN
    np.expm1(y, out=y)
    _elu_from_expm1(x.reshape(-1), x.dtype.type(alpha), y.reshape(-1))
    return y


def elu_backward(grad_y: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """grad_x of :func:`elu` from its input. grad_y, x : one shape -> that shape."""
    grad_x = np.minimum(x, 0, out=np.empty_like(grad_y))
    np.exp(grad_x, out=grad_x)
    _elu_backward_from_exp(grad_y.reshape(-1), x.reshape(-1), x.dtype.type(alpha),
                           grad_x.reshape(-1))
    return grad_x


def gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    """``y = x * Phi(x)``, ``approximate`` "none" (erf) or "tanh". x : any shape."""
    return _map(_gelu_tanh if approximate == "tanh" else _gelu_erf, x, x)


def gelu_backward(grad_y: np.ndarray, x: np.ndarray, approximate: str) -> np.ndarray:
    """grad_x of :func:`gelu` from its input. grad_y, x : one shape -> that shape."""
    kernel = _gelu_tanh_backward if approximate == "tanh" else _gelu_erf_backward
    return _map(kernel, grad_y, grad_y, x)


def silu(x: np.ndarray) -> np.ndarray:
    """``y = x * sigmoid(x)``. x : any shape -> y : that shape."""
    y = _exp_neg_abs(x)
    _silu_from_exp(x.reshape(-1), y.reshape(-1))
    return y


def silu_backward(grad_y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """grad_x of :func:`silu` from its input. grad_y, x : one shape -> that shape."""
    grad_x = _exp_neg_abs(x)
    _silu_backward_from_exp(grad_y.reshape(-1), x.reshape(-1), grad_x.reshape(-1))
    return grad_x


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over axis 1 of x : (A, C, B) -> y : (A, C, B)."""
    y = np.empty_like(x)
    _softmax(x, y)
    return y


def softmax_backward(grad_y: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y * (grad_y - sum(grad_y * y, axis 1))`` over (A, C, B) arrays."""
    grad_x = np.empty_like(grad_y)
    _softmax_backward(grad_y, y, grad_x)
    return grad_x
