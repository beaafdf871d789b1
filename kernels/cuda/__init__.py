"""The ``cuda`` backend: Numba CUDA kernels for every op, forward and backward.

Read the modules in this order:

1. ``conv_direct``  - rungs 1-2 (``naive``, ``direct``): one thread per output element,
   everything from global memory, in a beginner's thread order and then coalesced;
2. ``conv_tiled``   - rung 3 (``tiled``): the input patch and the filter staged in shared memory;
3. ``conv_gemm``    - rungs 4-7 (``igemm_smem``, ``igemm_1d``, ``igemm_2d``, ``igemm_nodiv``):
   implicit GEMM with shared-memory tiles, then 1-D and 2-D register blocking, then
   division-free index stepping; ``conv_igemm`` - rung 8 (``igemm``): + prefetch, the
   production path. Every GEMM rung runs forward, grad_input and grad_weight;
   ``resources`` reports their registers, shared memory and occupancy (``ptxas -v``);
4. ``conv_backward`` - grad_input / grad_weight (split reduction) / grad_bias, all gathers;
   ``conv_transpose`` - the transposed conv: those backward kernels run as a layer;
5. ``pool``         - max / avg / adaptive-avg / adaptive-max pooling and max unpooling,
   forward and gather backward;
   ``pad``          - ``F.pad``'s four modes, one thread per output / gather backward;
6. what training adds, each the cuda twin of the same op of the other backends:
   ``elementwise`` (activations, add, dropout: grid-stride loops), ``linear`` (a naive GEMM),
   ``batch_norm``, ``loss`` (log-softmax, NLL, cross-entropy, a fixed-order reduction) and
   ``optim_ops`` (SGD and Adam steps in place); with them ``minitorch_cnn.nn`` models train
   on the device (``model.to("cuda")``).

Which conv rung runs is an option of this backend, not a backend name::

    import kernels.cuda
    with kernels.cuda.conv_algorithm("tiled"):   # a name of ALGORITHMS
        y = F.conv2d(x, w, backend="cuda")
    kernels.cuda.set_conv_algorithm("direct")    # the module default (initially "igemm")

Arrays: NumPy in gives NumPy out (copied to the device and back). When ``x`` (the input, in
every op) has ``__cuda_array_interface__`` (a Numba device array, a torch CUDA tensor) the
result stays on the device and comes back as a Numba device array. Every op supports float32
and float64, stride, padding, dilation, groups and non-square kernels.

Without a GPU, set ``NUMBA_ENABLE_CUDASIM=1`` before ``numba.cuda`` is first imported: the
simulator runs the same kernels as Python threads (slowly).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from numba import cuda

from kernels import KERNEL_FUNCTIONS
from kernels.common import BatchNormOutput, ConvGrads, ConvSpec, LinearGrads

from . import batch_norm as batch_norm_kernels
from . import (
    conv_backward,
    conv_direct,
    conv_gemm,
    conv_igemm,
    conv_tiled,
    conv_transpose,
    elementwise,
    pool,
)
from . import linear as linear_kernels
from . import loss as loss_kernels
from . import optim_ops as optim_kernels
from . import pad as pad_kernels
from ._arrays import (
    SIMULATOR,
    blocks,
    empty,
    finish,
    is_device_array,
    numba_dtype,
    pad_kernel,
    to_device,
)

ALGORITHMS = ("naive", "direct", "tiled", "igemm_smem", "igemm_1d", "igemm_2d", "igemm_nodiv",
              "igemm")  # the conv ladder, rung 1 to rung 8 (docs/07-gpu-ladder.md)
DEFAULT_ALGORITHM = "igemm"

_default_algorithm = DEFAULT_ALGORITHM
_scoped_algorithm: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "minitorch_cnn_cuda_conv_algorithm", default=None
)


def _check_algorithm(name: object) -> str:
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {name!r}")
    return name


def get_conv_algorithm() -> str:
    """The conv rung in use, a name of :data:`ALGORITHMS` (``"igemm"`` unless set)."""
    return _scoped_algorithm.get() or _default_algorithm


def set_conv_algorithm(name: str) -> None:
    """Make ``name`` the module-wide default conv rung."""
    global _default_algorithm
    _default_algorithm = _check_algorithm(name)


@contextlib.contextmanager
def conv_algorithm(name: str) -> Iterator[str]:
    """Run conv2d / conv2d_backward with rung ``name`` inside a ``with`` block."""
    token = _scoped_algorithm.set(_check_algorithm(name))
    try:
        yield name
    finally:
        _scoped_algorithm.reset(token)


def unavailable_reason() -> str | None:
    """``None`` when Numba can run CUDA kernels here (a GPU, or the simulator), else why not."""
    try:
        available = cuda.is_available()
    except Exception as exc:  # noqa: BLE001 - a broken driver is "not available"
        return f"numba.cuda.is_available() failed: {type(exc).__name__}: {exc}"
    if available:
        return None
    return ("numba.cuda.is_available() is False: no usable CUDA GPU and driver here "
            "(set NUMBA_ENABLE_CUDASIM=1 before numba.cuda is imported to use the simulator)")


def _device(*arrays):
    return tuple(None if a is None else to_device(a) for a in arrays)


def _bias(d_bias, d_x):
    return empty((0,), d_x.dtype) if d_bias is None else d_bias


# --------------------------------------------------------------------------- conv


def _conv_forward(dx, dw, db, spec: ConvSpec):
    """The output (N, C_out, H_out, W_out) on the device, by the rung in use."""
    db = _bias(db, dx)
    algorithm = get_conv_algorithm()
    if algorithm == "tiled":
        y = conv_tiled.conv2d(dx, dw, db, spec)
        if y is not None:
            return y
        algorithm = "direct"  # the patch does not fit in shared memory
    if algorithm in ("naive", "direct"):
        return conv_direct.conv2d(dx, dw, db, spec, coalesced=algorithm == "direct")
    if algorithm in conv_gemm.RUNGS:
        return conv_gemm.conv2d(dx, dw, db, spec, algorithm)
    return conv_igemm.conv2d(dx, dw, db, spec)


def conv2d(x, weight, bias, spec):
    """Conv forward (a cross-correlation) with the rung of :func:`get_conv_algorithm`.

    x (N, C_in, H, W), weight (C_out, C_in // groups, kH, kW), bias (C_out,) or None,
    ``spec`` the :class:`kernels.common.ConvSpec` of the call -> y (N, C_out, H_out, W_out).
    """
    dx, dw, db = _device(x, weight, bias)
    y = _conv_forward(dx, dw, db, spec)
    return finish(y, not is_device_array(x))


def corr2d(X, K):
    """Single-channel cross-correlation X (H, W), K (kh, kw) -> (H - kh + 1, W - kw + 1).

    It is conv2d with one image, one channel in and out: stride 1, no padding.
    """
    dX, dK = _device(X, K)
    H, W = dX.shape
    kh, kw = dK.shape
    spec = ConvSpec.from_shapes((1, 1, H, W), (1, 1, kh, kw), stride=(1, 1), padding=(0, 0),
                                dilation=(1, 1), groups=1)
    y = _conv_forward(dX.reshape(1, 1, H, W), dK.reshape(1, 1, kh, kw), None, spec)
    return finish(y.reshape(spec.H_out, spec.W_out), not is_device_array(X))


def conv2d_backward(grad_y, x, weight, spec, *, needs_input_grad=(True, True, True)):
    """Conv backward with the rung of :func:`get_conv_algorithm` (``"tiled"`` runs igemm's).

    grad_y (N, C_out, H_out, W_out), x (N, C_in, H, W), weight (C_out, C_in // groups, kH,
    kW), ``spec`` the :class:`kernels.common.ConvSpec` of the forward ->
    ConvGrads(grad_x, grad_weight, grad_bias); ``None`` for each gradient that
    ``needs_input_grad`` (PyTorch's ``output_mask``) does not ask for, which is not launched.
    """
    dgy, dx, dw = _device(grad_y, x, weight)
    grads = conv_backward.conv2d_backward(dgy, dx, dw, spec, get_conv_algorithm(),
                                          tuple(bool(flag) for flag in needs_input_grad))
    host = not is_device_array(x)
    return ConvGrads(*(None if g is None else finish(g, host) for g in grads))


def conv_transpose2d(x, weight, bias, spec):
    """Transposed convolution: the grad_x of the conv that ``spec`` describes, plus the bias.

    x (N, C_in, H, W), weight (C_in, C_out // groups, kH, kW), bias (C_out,) or None,
    ``spec`` from :func:`kernels.common.conv_transpose_spec` -> y (N, C_out, H_y, W_y).
    """
    dx, dw, db = _device(x, weight, bias)
    y = conv_transpose.conv_transpose2d(dx, dw, db, spec, get_conv_algorithm())
    return finish(y, not is_device_array(x))


def conv_transpose2d_backward(grad_y, x, weight, spec):
    """Gradients of :func:`conv_transpose2d`: a conv2d forward of ``grad_y`` (the rung in
    use) for grad_x, conv2d's grad_weight with ``x`` and ``grad_y`` swapped, grad_bias.

    grad_y (N, C_out, H_y, W_y), x (N, C_in, H, W), weight (C_in, C_out // groups, kH, kW)
    -> ConvGrads(grad_x, grad_weight, grad_bias), where x lives.
    """
    dgy, dx, dw = _device(grad_y, x, weight)
    gx = _conv_forward(dgy, dw, None, spec)
    gw = conv_transpose.grad_weight(dgy, dx, spec, get_conv_algorithm())
    gb = conv_backward.grad_bias(dgy)
    host = not is_device_array(x)
    return ConvGrads(finish(gx, host), finish(gw, host), finish(gb, host))


def pad_bottom_right(x, extra):
    """Zero-pad ``extra = (eh, ew)`` rows / columns at the bottom / right of a device array.

    x (N, C, H, W) -> (N, C, H + eh, W + ew), a new Numba device array (``padding="same"``
    with an even kernel needs this; ``minitorch_cnn.functional`` calls it).
    """
    (dx,) = _device(x)
    N, C, H, W = dx.shape
    out = empty((N, C, H + extra[0], W + extra[1]), dx.dtype)
    total = N * C * (H + extra[0]) * (W + extra[1])
    pad_kernel(numba_dtype(dx))[blocks(total, 256), 256](dx, out)
    return out


# --------------------------------------------------------------------------- pooling


def max_pool2d(x, spec, *, return_indices=False):
    """Max pooling, PyTorch's rule: x (N, C, H, W) -> y (N, C, H_out, W_out).

    ``spec`` is the :class:`kernels.common.PoolSpec` of the call. With ``return_indices``,
    also the int64 flat ``h*W + w`` argmax per window (``-1`` where a window has nothing
    inside the input), on the device when ``x`` is.
    """
    (dx,) = _device(x)
    host = not is_device_array(x)
    if return_indices:
        y, indices = pool.max_pool2d(dx, spec, return_indices=True)
        return finish(y, host), finish(indices, host)
    return finish(pool.max_pool2d(dx, spec), host)


def max_pool2d_backward(grad_y, x, indices, spec):
    """grad_y (N, C, H_out, W_out), x (N, C, H, W) -> grad_x (N, C, H, W), where x lives.

    ``indices`` (int64, from ``max_pool2d(..., return_indices=True)``) skips the argmax pass;
    ``None`` runs it.
    """
    dgy, dx, dindices = _device(grad_y, x, indices)
    gx = pool.max_pool2d_backward(dgy, dx, dindices, spec)
    return finish(gx, not is_device_array(x))


def avg_pool2d(x, spec):
    """Average pooling, PyTorch's divisor: x (N, C, H, W) -> y (N, C, H_out, W_out)."""
    (dx,) = _device(x)
    return finish(pool.avg_pool2d(dx, spec), not is_device_array(x))


def avg_pool2d_backward(grad_y, spec):
    """grad_y (N, C, H_out, W_out) -> grad_x (N, C, H, W) (``spec.x_shape``), where grad_y lives."""
    (dgy,) = _device(grad_y)
    return finish(pool.avg_pool2d_backward(dgy, spec), not is_device_array(grad_y))


def adaptive_avg_pool2d(x, spec):
    """Adaptive average pooling: x (N, C, H, W) -> y (N, C, H_out, W_out).

    ``spec`` is the :class:`kernels.common.AdaptivePoolSpec` of the call.
    """
    (dx,) = _device(x)
    return finish(pool.adaptive_avg_pool2d(dx, spec), not is_device_array(x))


def adaptive_avg_pool2d_backward(grad_y, spec):
    """grad_y (N, C, H_out, W_out) -> grad_x (N, C, H, W) (``spec.x_shape``), where grad_y lives."""
    (dgy,) = _device(grad_y)
    return finish(pool.adaptive_avg_pool2d_backward(dgy, spec), not is_device_array(grad_y))


def adaptive_max_pool2d(x, spec, *, return_indices=False):
    """Adaptive max pooling: x (N, C, H, W) -> y (N, C, H_out, W_out) [, int64 indices].

    ``spec`` is the :class:`kernels.common.AdaptivePoolSpec` of the call; results live
    where ``x`` does.
    """
    (dx,) = _device(x)
    host = not is_device_array(x)
    if return_indices:
        y, indices = pool.adaptive_max_pool2d(dx, spec, return_indices=True)
        return finish(y, host), finish(indices, host)
    return finish(pool.adaptive_max_pool2d(dx, spec), host)


def adaptive_max_pool2d_backward(grad_y, x, indices, spec):
    """grad_y (N, C, H_out, W_out), x (N, C, H, W) -> grad_x (N, C, H, W), where x lives."""
    dgy, dx, dindices = _device(grad_y, x, indices)
    gx = pool.adaptive_max_pool2d_backward(dgy, dx, dindices, spec)
    return finish(gx, not is_device_array(x))


def max_unpool2d(x, indices, spec):
    """Max unpooling: x, indices (N, C, H, W) -> y (N, C, H_out, W_out), where x lives.

    ``spec`` is the :class:`kernels.common.UnpoolSpec` of the call.
    """
    dx, dindices = _device(x, indices)
    return finish(pool.max_unpool2d(dx, dindices, spec), not is_device_array(x))


def max_unpool2d_backward(grad_y, indices, spec):
    """grad_y (N, C, H_out, W_out) -> grad_x (N, C, H, W) (``spec.x_shape``), where grad_y lives."""
    dgy, dindices = _device(grad_y, indices)
    return finish(pool.max_unpool2d_backward(dgy, dindices, spec), not is_device_array(grad_y))


# --------------------------------------------------------------------------- pad


def pad(x, value, spec):
    """``F.pad``: x (N, C, H, W) -> y (N, C, H_out, W_out), where x lives.

    ``value`` fills constant mode; ``spec`` is the :class:`kernels.common.PadSpec` of the call.
    """
    (dx,) = _device(x)
    return finish(pad_kernels.pad(dx, value, spec), not is_device_array(x))


def pad_backward(grad_y, spec):
    """grad_y (N, C, H_out, W_out) -> grad_x (N, C, H, W) (``spec.x_shape``), where grad_y lives."""
    (dgy,) = _device(grad_y)
    return finish(pad_kernels.pad_backward(dgy, spec), not is_device_array(grad_y))


# --------------------------------------------------------------------------- batch_norm


def batch_norm(x, running_mean, running_var, weight, bias, spec):
    """Batch normalisation: x (N, C, L) -> ``BatchNormOutput(y, mean (C,), inv_std (C,))``.

    Results live where x lives. In training the running pair (C,) (or None) is updated in
    place: on the device, and written back into NumPy arrays when those came.
    """
    dx, drm, drv, dw, db = _device(x, running_mean, running_var, weight, bias)
    out = batch_norm_kernels.batch_norm(dx, drm, drv, dw, db, spec)
    if spec.training:
        for a, d in ((running_mean, drm), (running_var, drv)):
            if a is not None and not is_device_array(a):
                a[...] = d.copy_to_host()
    return BatchNormOutput(*(finish(d, not is_device_array(x)) for d in out))


def batch_norm_backward(grad_y, x, weight, mean, inv_std, spec):
    """Gradients of batch_norm: ``ConvGrads(grad_x (N, C, L), grad_weight, grad_bias (C,))``."""
    out = batch_norm_kernels.batch_norm_backward(*_device(grad_y, x, weight, mean, inv_std),
                                                 spec)
    return ConvGrads(*(finish(d, not is_device_array(x)) for d in out))


# --------------------------------------------------------------------------- relu


def relu(x):
    """ReLU of x (any shape) -> y of that shape, where x lives."""
    (dx,) = _device(x.reshape(-1))  # flat: a 0-d array becomes (1,) on its way to the device
    return finish(elementwise.relu(dx), not is_device_array(x)).reshape(x.shape)


def relu_backward(grad_y, x):
    """grad_x of ReLU (grad_y, x : one shape) -> grad_x of that shape, where x lives."""
    dgy, dx = _device(grad_y.reshape(-1), x.reshape(-1))  # flat, as in relu
    return finish(elementwise.relu_backward(dgy, dx), not is_device_array(x)).reshape(x.shape)


# --------------------------------------------------------------------------- sigmoid, tanh, add


def _elementwise(op, like, *arrays):
    """Run ``op`` of :mod:`.elementwise` on flat ``arrays``; the result shaped as ``like``,
    where ``like`` lives (a 0-d array travels as ``(1,)``, as in :func:`relu`).
    """
    flats = _device(*(a.reshape(-1) for a in arrays))
    return finish(op(*flats), not is_device_array(like)).reshape(like.shape)


def sigmoid(x):
    """Sigmoid of x (any shape) -> y of that shape, where x lives."""
    return _elementwise(elementwise.sigmoid, x, x)


def sigmoid_backward(grad_y, y):
    """grad_x of sigmoid from its output y (one shape) -> grad_x, where y lives."""
    return _elementwise(elementwise.sigmoid_backward, y, grad_y, y)


def tanh(x):
    """The tanh of x (any shape) -> y of that shape, where x lives."""
    return _elementwise(elementwise.tanh, x, x)


def tanh_backward(grad_y, y):
    """grad_x of tanh from its output y (one shape) -> grad_x, where y lives."""
    return _elementwise(elementwise.tanh_backward, y, grad_y, y)


def add(a, b):
    """``a + b`` (one shape) -> that shape, where ``a`` lives."""
    return _elementwise(elementwise.add, a, a, b)


# --------------------------------------------------------------------------- leaky_relu, elu,
# gelu, silu, softmax, dropout2d, cat


def leaky_relu(x, negative_slope):
    """LeakyReLU of x (any shape) -> y of that shape, where x lives."""
    return _elementwise(lambda dx: elementwise.leaky_relu(dx, negative_slope), x, x)


def leaky_relu_backward(grad_y, x, negative_slope):
    """grad_x of LeakyReLU from its input x (one shape), where x lives."""
    return _elementwise(lambda dg, dx: elementwise.leaky_relu_backward(dg, dx, negative_slope),
                        x, grad_y, x)


def elu(x, alpha):
    """ELU of x (any shape) -> y of that shape, where x lives."""
    return _elementwise(lambda dx: elementwise.elu(dx, alpha), x, x)


def elu_backward(grad_y, x, alpha):
    """grad_x of ELU from its input x (one shape), where x lives."""
    return _elementwise(lambda dg, dx: elementwise.elu_backward(dg, dx, alpha), x, grad_y, x)


def gelu(x, approximate):
    """GELU of x (any shape; ``approximate`` "none" or "tanh"), where x lives."""
    return _elementwise(lambda dx: elementwise.gelu(dx, approximate), x, x)


def gelu_backward(grad_y, x, approximate):
    """grad_x of GELU from its input x (one shape), where x lives."""
    return _elementwise(lambda dg, dx: elementwise.gelu_backward(dg, dx, approximate),
                        x, grad_y, x)


def silu(x):
    """SiLU of x (any shape) -> y of that shape, where x lives."""
    return _elementwise(elementwise.silu, x, x)


def silu_backward(grad_y, x):
    """grad_x of SiLU from its input x (one shape), where x lives."""
    return _elementwise(elementwise.silu_backward, x, grad_y, x)


def softmax(x):
    """Softmax over axis 1 of x : (A, C, B) -> y : (A, C, B), where x lives."""
    (dx,) = _device(x)
    return finish(elementwise.softmax(dx), not is_device_array(x))


def softmax_backward(grad_y, y):
    """grad_x of softmax from its output y : (A, C, B), where y lives."""
    dgy, dy = _device(grad_y, y)
    return finish(elementwise.softmax_backward(dgy, dy), not is_device_array(y))


def dropout2d(x, spec):
    """(y (R, L), mask (R,) uint8) of channel dropout on x : (R, L), where x lives.

    The mask is the dropout kernel's counter-based draws for an (R,) array (an uninitialised
    one: only its length is read), then every row is scaled by its draw.
    """
    (dx,) = _device(x)
    _, dmask = loss_kernels.dropout(cuda.device_array((x.shape[0],), x.dtype),
                                    spec.random_seed, spec.keep)
    host = not is_device_array(x)
    return finish(elementwise.row_scale(dx, dmask, spec.keep), host), finish(dmask, host)


def dropout2d_backward(grad_y, mask, spec):
    """grad_x = grad_y * noise[:, None] (grad_y : (R, L), mask : (R,)), where grad_y lives."""
    dgy, dmask = _device(grad_y, mask)
    return finish(elementwise.row_scale(dgy, dmask, spec.keep), not is_device_array(grad_y))


def cat(arrays):
    """Concatenate (A, C_i, B) arrays along axis 1 -> (A, sum C_i, B), where the first lives."""
    return finish(elementwise.cat(_device(*arrays)), not is_device_array(arrays[0]))


def cat_backward(grad_y, sizes):
    """The blocks of grad_y : (A, sum(sizes), B) along axis 1, where grad_y lives."""
    (dgy,) = _device(grad_y)
    host = not is_device_array(grad_y)
    return [finish(d, host) for d in elementwise.cat_backward(dgy, sizes)]


# --------------------------------------------------------------------------- linear


def linear(x, weight, bias):
    """Forward: x (M, K), weight (O, K), bias (O,) or None -> y (M, O), where x lives."""
    dx, dw, db = _device(x, weight, bias)
    return finish(linear_kernels.linear_forward(dx, dw, db), not is_device_array(x))


def linear_backward(grad_y, x, weight, *, needs_input_grad=(True, True, True)) -> LinearGrads:
    """grad_y (M, O), x (M, K), weight (O, K) -> ``LinearGrads`` of (M, K), (O, K), (O,),
    where x lives; ``None`` for a gradient ``needs_input_grad`` does not ask for.
    """
    dgy, dx, dw = _device(grad_y, x, weight)
    host = not is_device_array(x)
    grads = linear_kernels.linear_backward(dgy, dx, dw, needs_input_grad)
    return LinearGrads(*(None if g is None else finish(g, host) for g in grads))

# --------------------------------------------------------------------------- losses, dropout


def _loss_value(d_loss, host: bool):
    """The (1,) device loss as a 0-d array: NumPy when ``host``, else a 0-d device view."""
    return d_loss.copy_to_host().reshape(()) if host else d_loss.reshape(())


def log_softmax(x):
    """log_softmax of x (N, C) over its rows -> y (N, C), where x lives."""
    (dx,) = _device(x)
    return finish(loss_kernels.log_softmax(dx), not is_device_array(x))


def log_softmax_backward(grad_y, y):
    """grad_x of log_softmax from its output y (N, C) -> grad_x (N, C), where y lives."""
    dgy, dy = _device(grad_y, y)
    return finish(loss_kernels.log_softmax_backward(dgy, dy), not is_device_array(y))


def nll_loss(logp, target, spec):
    """The 0-d nll loss of logp (N, C) and target (N,) int64, where logp lives."""
    dlogp, dt = _device(logp, target)
    return _loss_value(loss_kernels.nll_loss(dlogp, dt, spec.divisor), not is_device_array(logp))


def nll_loss_backward(logp, target, grad, spec):
    """grad_logp (N, C): ``-grad / divisor`` at the targets, where logp lives."""
    dlogp, dt = _device(logp, target)
    return finish(loss_kernels.nll_loss_backward(dlogp, dt, spec.grad_scale(grad)),
                  not is_device_array(logp))


def cross_entropy(logits, target, spec):
    """The 0-d cross-entropy of logits (N, C) and target (N,) int64, where logits live."""
    dl, dt = _device(logits, target)
    d_loss, _ = loss_kernels.cross_entropy_forward(dl, dt, spec.divisor)
    return _loss_value(d_loss, not is_device_array(logits))


def cross_entropy_backward(logits, target, grad, spec):
    """grad_logits (N, C) = (softmax - one_hot) * grad / divisor, where logits live.

    The rows' log-sum-exp is computed again (one kernel over the rows) rather than kept from
    the forward: the functional API passes arrays only.
    """
    dl, dt = _device(logits, target)
    _, lse = loss_kernels.cross_entropy_forward(dl, dt, spec.divisor)
    grad_logits = loss_kernels.cross_entropy_backward(dl, dt, lse, spec.grad_scale(grad))
    return finish(grad_logits, not is_device_array(logits))


def dropout(x, spec):
    """(y, mask) of dropout on x (any shape), where x lives; mask uint8.

    The draws are the counter-based ones of :mod:`.loss`; a 0-d array travels as ``(1,)``.
    """
    (dx,) = _device(x.reshape(-1))
    dy, dmask = loss_kernels.dropout(dx, spec.random_seed, spec.keep)
    host = not is_device_array(x)
    return finish(dy, host).reshape(x.shape), finish(dmask, host).reshape(x.shape)


def dropout_backward(grad_y, mask, spec):
    """grad_x = grad_y * noise (grad_y, mask : one shape), where grad_y lives."""
    return _elementwise(lambda dgy, dm: loss_kernels.dropout_backward(dgy, dm, spec.keep),
                        grad_y, grad_y, mask)


# --------------------------------------------------------------------------- optimizer updates


def _update_in_place(step, written: int, *arrays):
    """Run ``step`` on the device copies of ``arrays``; copy the first ``written`` back into
    host arrays (a host array is updated in place as on the CPU backends).
    """
    copies = {}  # one device copy per host array (the buffer may be param itself, unread)
    devices = tuple(None if a is None else copies.setdefault(id(a), to_device(a))
                    for a in arrays)
    step(*devices)
    if not is_device_array(arrays[0]):
        for a, d in zip(arrays[:written], devices[:written], strict=True):
            if a is not None:  # an array passed twice has one copy: it is written back twice
                d.copy_to_host(a)


def sgd_step(param, grad, buf, hyper, *, first=False):
    """One SGD step in place on param and buf (one shape), on the device."""
    _update_in_place(lambda p, b, g: optim_kernels.sgd_step(p, g, b, hyper, first=first), 2,
                     param, buf, grad)


def adam_step(param, grad, m, v, v_max, hyper):
    """One Adam step in place on param, m, v (and v_max under amsgrad), on the device."""
    _update_in_place(lambda p, m_, v_, vm, g: optim_kernels.adam_step(p, g, m_, v_, vm, hyper),
                     4, param, m, v, v_max, grad)



__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "KERNEL_FUNCTIONS",
    "SIMULATOR",
    "adam_step",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "add",
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "conv2d",
    "conv2d_backward",
    "conv_algorithm",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "corr2d",
    "cross_entropy",
    "cross_entropy_backward",
    "dropout",
    "dropout_backward",
    "get_conv_algorithm",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "nll_loss",
    "nll_loss_backward",
    "pad",
    "pad_backward",
    "pad_bottom_right",
    "relu",
    "relu_backward",
    "set_conv_algorithm",
    "sgd_step",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "unavailable_reason",
    "cat",
    "cat_backward",
    "dropout2d",
    "dropout2d_backward",
    "elu",
    "elu_backward",
    "gelu",
    "gelu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "silu",
    "silu_backward",
    "softmax",
    "softmax_backward",
]
