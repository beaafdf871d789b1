"""Element-wise ops on the device: ReLU, LeakyReLU, ELU, GELU, SiLU, sigmoid and tanh forward
and backward; add; softmax (a thread per row); dropout2d's row scaling; cat's block copy.

What changes relative to ``kernels.naive``: naive's loop over the elements becomes a
*grid-stride loop*: thread ``g = blockIdx.x * blockDim.x + threadIdx.x`` of ``G`` threads
handles elements ``g, g + G, g + 2G, ...`` of the flat array, so consecutive threads read
consecutive addresses (coalesced) and one launch of at most ``BLOCKS_PER_SM * SMs`` blocks
covers an array of any size. Nothing is staged in shared memory: each element is read once.

The test is PyTorch's ``x <= 0`` in both directions: a NaN is not ``<= 0``, so it passes
through forward (as NaN) and passes its gradient backward.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numba import cuda

from ._arrays import SIMULATOR, blocks, empty, kernel_cache, numba_dtype, sm_count

THREADS = 256
"""Threads per block of every kernel here."""

BLOCKS_PER_SM = 8
"""Grid-stride launches use ``8 * SMs`` blocks at most: 8 x 256 = 2048 threads, the most an
SM (H100, A100) keeps resident."""


def stride_blocks(n: int) -> int:
    """Blocks for a grid-stride launch over ``n`` items (one in the simulator)."""
    if SIMULATOR:
        return 1
    return min(blocks(n, THREADS), BLOCKS_PER_SM * sm_count())


def flat(a):
    """A 1-D view of a C-contiguous device array: ``(d0, d1, ...) -> (d0*d1*...,)``."""
    return a.reshape(int(np.prod(a.shape)))


def launch_stride(kernel, n: int, *args) -> None:
    """Launch ``kernel`` as a grid-stride loop over ``n`` items."""
    kernel[stride_blocks(n), THREADS](*args)


@kernel_cache
def relu_forward_kernel(DT):
    """Build the ReLU forward kernel for dtype ``DT``."""

    @cuda.jit
    def relu_forward(x, y):
        """y[i] = 0 if x[i] <= 0 else x[i], over flat arrays of one length.

        Thread ``g`` (grid-stride) computes ``y[g]``, ``y[g + G]``, ... . No shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, x.shape[0], step):
            v = x[i]
            y[i] = DT(0) if v <= DT(0) else v

    return relu_forward


@kernel_cache
def relu_backward_kernel(DT):
    """Build the ReLU backward kernel for dtype ``DT``."""

    @cuda.jit
    def relu_backward(grad_y, x, grad_x):
        """grad_x[i] = 0 if x[i] <= 0 else grad_y[i], over flat arrays of one length.

        Thread ``g`` (grid-stride) computes ``grad_x[g]``, ``grad_x[g + G]``, ... .
        No shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, x.shape[0], step):
            grad_x[i] = DT(0) if x[i] <= DT(0) else grad_y[i]

    return relu_backward


def relu(dx):
    """ReLU of the device array ``dx`` (any shape): a new device array of that shape."""
    dy = empty(dx.shape, dx.dtype)
    n = int(np.prod(dx.shape))
    launch_stride(relu_forward_kernel(numba_dtype(dx)), n, flat(dx), flat(dy))
    return dy


def relu_backward(dgrad_y, dx):
    """grad_x of ReLU: ``dgrad_y`` where ``dx > 0`` (or NaN), else 0; device arrays."""
    dgrad_x = empty(dx.shape, dgrad_y.dtype)
    n = int(np.prod(dx.shape))
    launch_stride(relu_backward_kernel(numba_dtype(dx)), n, flat(dgrad_y), flat(dx),
                  flat(dgrad_x))
    return dgrad_x


@kernel_cache
def sigmoid_forward_kernel(DT):
    """Build the sigmoid forward kernel for dtype ``DT``."""

    @cuda.jit
    def sigmoid_forward(x, y):
        """y[i] = 1 / (1 + exp(-x[i])) over flat arrays of the same length.

        Thread ``g`` (grid-stride, see the module docstring) computes ``y[g]``, ``y[g + G]``,
        ... . Stable for large ``|x|``: ``exp`` only ever sees a non-positive argument
        (``x >= 0``: ``1 / (1 + exp(-x))``; ``x < 0``: ``exp(x) / (1 + exp(x))``), so it
        never overflows. NaN in gives NaN out. No shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, x.shape[0], step):
            v = x[i]
            if v >= DT(0):
                y[i] = DT(1) / (DT(1) + math.exp(-v))
            else:
                e = math.exp(v)
                y[i] = e / (DT(1) + e)

    return sigmoid_forward


@kernel_cache
def sigmoid_backward_kernel(DT):
    """Build the sigmoid backward kernel for dtype ``DT``."""

    @cuda.jit
    def sigmoid_backward(grad_y, y, grad_x):
        """grad_x[i] = grad_y[i] * (1 - y[i]) * y[i], with ``y`` the forward's output.

        Thread ``g`` (grid-stride) computes ``grad_x[g]``, ``grad_x[g + G]``, ... .
        No shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, y.shape[0], step):
            s = y[i]
            grad_x[i] = grad_y[i] * (DT(1) - s) * s

    return sigmoid_backward


@kernel_cache
def tanh_forward_kernel(DT):
    """Build the tanh forward kernel for dtype ``DT``."""

    @cuda.jit
    def tanh_forward(x, y):
        """y[i] = tanh(x[i]) over flat arrays of one length (grid-stride, no shared memory)."""
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, x.shape[0], step):
            y[i] = math.tanh(x[i])

    return tanh_forward


@kernel_cache
def tanh_backward_kernel(DT):
    """Build the tanh backward kernel for dtype ``DT``."""

    @cuda.jit
    def tanh_backward(grad_y, y, grad_x):
        """grad_x[i] = grad_y[i] * (1 - y[i] * y[i]), ``y`` the forward's output.

        Grid-stride, no shared memory.
        """
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, y.shape[0], step):
            t = y[i]
            grad_x[i] = grad_y[i] * (DT(1) - t * t)

    return tanh_backward


@kernel_cache
def add_kernel(DT):
    """Build the element-wise sum kernel for dtype ``DT``."""

    @cuda.jit
    def add_elementwise(a, b, y):
        """y[i] = a[i] + b[i] over flat arrays of one length (grid-stride, no shared memory)."""
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, a.shape[0], step):
            y[i] = a[i] + b[i]

    return add_elementwise


def _map(build, out_like, *arrays):
    """Launch ``build(DT)`` over the flat ``arrays`` and a new output shaped as ``out_like``."""
    out = empty(out_like.shape, out_like.dtype)
    n = int(np.prod(out_like.shape))
    launch_stride(build(numba_dtype(out_like)), n, *(flat(a) for a in arrays), flat(out))
    return out


def sigmoid(dx):
    """Sigmoid of the device array ``dx`` (any shape): a new device array of that shape."""
    return _map(sigmoid_forward_kernel, dx, dx)


def sigmoid_backward(dgrad_y, dy):
    """grad_x of sigmoid from its output ``dy``: ``dgrad_y * (1 - dy) * dy``; device arrays."""
    return _map(sigmoid_backward_kernel, dgrad_y, dgrad_y, dy)


def tanh(dx):
    """The tanh of the device array ``dx`` (any shape): a new device array of that shape."""
    return _map(tanh_forward_kernel, dx, dx)


def tanh_backward(dgrad_y, dy):
    """grad_x of tanh from its output ``dy``: ``dgrad_y * (1 - dy * dy)``; device arrays."""
    return _map(tanh_backward_kernel, dgrad_y, dgrad_y, dy)


def add(da, db):
    """``da + db`` for device arrays of one shape: a new device array of that shape."""
    return _map(add_kernel, da, da, db)


# --------------------------------------------------------------------------- leaky_relu, elu,
# gelu, silu (a hyper-parameter passes as an argument and is cast to DT inside, so float32
# arithmetic stays float32); softmax (one thread per row); dropout2d's row scaling; cat.
# PyTorch's formulas and its tests on x: ``x > 0`` for LeakyReLU, ``x <= 0`` for ELU.

GELU_TANH_BETA = math.sqrt(2.0) * (2.0 / math.sqrt(math.pi)) * 0.5  # sqrt(2 / pi)
GELU_TANH_KAPPA = 0.044715
GELU_PDF_ALPHA = (2.0 / math.sqrt(math.pi)) * math.sqrt(0.5) * 0.5  # 1 / sqrt(2 pi)


def launch_quiet(kernel, n: int, *args) -> None:
    """:func:`launch_stride` with the simulator's NumPy warnings on IEEE arithmetic silenced.

    ``inf - inf``, ``inf * 0`` and an ``exp`` overflowing to +inf are meant (PyTorch gives
    the same NaN, inf, 0); on a GPU they are silent, but the simulator runs kernels on NumPy
    scalars, which warn, in threads that ``np.errstate`` does not reach, so the (process-wide)
    warnings filter does it, as ``kernels.cuda.loss`` does for dropout.
    """
    if not SIMULATOR:
        launch_stride(kernel, n, *args)
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow encountered in", RuntimeWarning)
        warnings.filterwarnings("ignore", "invalid value encountered in", RuntimeWarning)
        launch_stride(kernel, n, *args)


@kernel_cache
def leaky_relu_forward_kernel(DT):
    """Build the LeakyReLU forward kernel for dtype ``DT``."""

    @cuda.jit
    def leaky_relu_forward(x, slope, y):
        """y[i] = x[i] if x[i] > 0 else x[i] * slope; grid-stride, no shared memory."""
        s = DT(slope)
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            v = x[i]
            y[i] = v if v > DT(0) else v * s

    return leaky_relu_forward


@kernel_cache
def leaky_relu_backward_kernel(DT):
    """Build the LeakyReLU backward kernel for dtype ``DT``."""

    @cuda.jit
    def leaky_relu_backward(grad_y, x, slope, grad_x):
        """grad_x[i] = grad_y[i] if x[i] > 0 else grad_y[i] * slope; grid-stride."""
        s = DT(slope)
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            grad_x[i] = grad_y[i] if x[i] > DT(0) else grad_y[i] * s

    return leaky_relu_backward


@kernel_cache
def elu_forward_kernel(DT):
    """Build the ELU forward kernel for dtype ``DT``."""

    @cuda.jit
    def elu_forward(x, alpha, y):
        """y[i] = expm1(x[i]) * alpha if x[i] <= 0 else x[i]; grid-stride."""
        a = DT(alpha)
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            v = x[i]
            y[i] = math.expm1(v) * a if v <= DT(0) else v

    return elu_forward


@kernel_cache
def elu_backward_kernel(DT):
    """Build the ELU backward kernel for dtype ``DT``."""

    @cuda.jit
    def elu_backward(grad_y, x, alpha, grad_x):
        """grad_x[i] = grad_y[i] * alpha * exp(x[i]) if x[i] <= 0 else grad_y[i]."""
        a = DT(alpha)
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            v = x[i]
            grad_x[i] = grad_y[i] * a * math.exp(v) if v <= DT(0) else grad_y[i]

    return elu_backward


@kernel_cache
def gelu_forward_kernel(DT, approximate):
    """Build the GELU forward kernel for dtype ``DT`` and ``approximate`` ("none"/"tanh")."""
    tanh_form = approximate == "tanh"

    @cuda.jit
    def gelu_forward(x, y):
        """y[i] = x[i] * Phi(x[i]) (erf, or the tanh approximation); grid-stride."""
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            v = x[i]
            if tanh_form:
                inner = DT(GELU_TANH_BETA) * (v + DT(GELU_TANH_KAPPA) * v * v * v)
                y[i] = DT(0.5) * v * (DT(1) + math.tanh(inner))
            else:
                y[i] = v * DT(0.5) * (DT(1) + math.erf(v * DT(math.sqrt(0.5))))

    return gelu_forward


@kernel_cache
def gelu_backward_kernel(DT, approximate):
    """Build the GELU backward kernel for dtype ``DT`` and ``approximate``."""
    tanh_form = approximate == "tanh"

    @cuda.jit
    def gelu_backward(grad_y, x, grad_x):
        """grad_x[i] = grad_y[i] * (Phi(x[i]) + x[i] * Phi'(x[i])), PyTorch's formulas."""
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            v = x[i]
            if tanh_form:
                t = math.tanh(DT(GELU_TANH_BETA) * (v + DT(GELU_TANH_KAPPA) * v * v * v))
                inner_derivative = DT(GELU_TANH_BETA) * (DT(1) + DT(3 * GELU_TANH_KAPPA) * v * v)
                slope = (DT(0.5) * (DT(1) + t)
                         + DT(0.5) * v * (DT(1) - t * t) * inner_derivative)
            else:
                cdf = DT(0.5) * (DT(1) + math.erf(v * DT(math.sqrt(0.5))))
                slope = cdf + v * (math.exp(DT(-0.5) * v * v) * DT(GELU_PDF_ALPHA))
            grad_x[i] = grad_y[i] * slope

    return gelu_backward


@kernel_cache
def silu_forward_kernel(DT):
    """Build the SiLU forward kernel for dtype ``DT``."""

    @cuda.jit
    def silu_forward(x, y):
        """y[i] = x[i] * sigmoid(x[i]); grid-stride, no shared memory.

        ``exp`` of a non-positive number only, as the sigmoid kernel (``x >= 0``:
        ``x / (1 + exp(-x))``, PyTorch's expression; ``x < 0``: ``x * e / (1 + e)``,
        ``e = exp(x)``, equal up to rounding): nothing overflows, and the simulator, whose
        ``math.exp`` raises OverflowError where a GPU gives inf, runs it too.
        """
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            v = x[i]
            if v >= DT(0):
                y[i] = v / (DT(1) + math.exp(-v))
            else:  # v < 0, or NaN (NaN out)
                e = math.exp(v)
                y[i] = v * e / (DT(1) + e)

    return silu_forward


@kernel_cache
def silu_backward_kernel(DT):
    """Build the SiLU backward kernel for dtype ``DT``."""

    @cuda.jit
    def silu_backward(grad_y, x, grad_x):
        """grad_x[i] = grad_y[i] * s * (1 + x[i] * (1 - s)), s = sigmoid(x[i]) computed with
        ``exp`` of a non-positive number only, as in the forward.
        """
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            v = x[i]
            if v >= DT(0):
                s = DT(1) / (DT(1) + math.exp(-v))
            else:
                e = math.exp(v)
                s = e / (DT(1) + e)
            grad_x[i] = grad_y[i] * s * (DT(1) + v * (DT(1) - s))

    return silu_backward


@kernel_cache
def softmax_forward_kernel(DT):
    """Build the softmax forward kernel for dtype ``DT``."""

    @cuda.jit
    def softmax_forward(x, y):
        """Softmax over axis 1 of x : (A, C, B); thread ``g`` owns rows ``(a, b)`` with
        ``a * B + b = g, g + G, ...`` (grid-stride), three passes over its row: the maximum
        (NaN wins), the exponentials and their sum, the division. No shared memory: a row is
        C elements, few next to the A * B rows that fill the grid.
        """
        A, C, B = x.shape
        for r in range(cuda.grid(1), A * B, cuda.gridsize(1)):
            a = r // B
            b = r - a * B
            m = x[a, 0, b]
            for c in range(1, C):
                v = x[a, c, b]
                if m == m and (v != v or v > m):
                    m = v
            total = DT(0)
            for c in range(C):
                e = math.exp(x[a, c, b] - m)
                y[a, c, b] = e
                total += e
            for c in range(C):
                y[a, c, b] = y[a, c, b] / total

    return softmax_forward


@kernel_cache
def softmax_backward_kernel(DT):
    """Build the softmax backward kernel for dtype ``DT``."""

    @cuda.jit
    def softmax_backward(grad_y, y, grad_x):
        """grad_x = y * (grad_y - sum_c grad_y * y) over axis 1 of (A, C, B); a thread per
        row ``(a, b)``, grid-stride, as the forward.
        """
        A, C, B = y.shape
        for r in range(cuda.grid(1), A * B, cuda.gridsize(1)):
            a = r // B
            b = r - a * B
            dot = DT(0)
            for c in range(C):
                dot += grad_y[a, c, b] * y[a, c, b]
            for c in range(C):
                grad_x[a, c, b] = y[a, c, b] * (grad_y[a, c, b] - dot)

    return softmax_backward


@kernel_cache
def row_scale_kernel(DT):
    """Build dropout2d's row-scaling kernel for dtype ``DT``."""

    @cuda.jit
    def row_scale(x, mask, keep, y):
        """y[r, l] = x[r, l] * (1 / keep if mask[r] else 0), x : (R, L), mask : (R,) uint8.

        The scale is ``DT(1) / DT(keep)`` as the dropout kernels' (0 when ``keep == 0``).
        One thread per element of the flat (R * L) index, grid-stride.
        """
        scale = DT(1) / DT(keep) if keep > 0.0 else DT(0)
        R, L = x.shape
        for i in range(cuda.grid(1), R * L, cuda.gridsize(1)):
            r = i // L
            col = i - r * L
            y[r, col] = x[r, col] * (scale if mask[r] != 0 else DT(0))

    return row_scale


@kernel_cache
def channel_copy_kernel(DT):
    """Build cat's block-copy kernel for dtype ``DT``."""

    @cuda.jit
    def channel_copy(src, dst, src_offset, dst_offset, C):
        """dst[a, dst_offset + c, b] = src[a, src_offset + c, b] for c < C, (A, *, B) arrays.

        Forward (cat) writes an input into its channel block of the output (src_offset 0);
        backward reads a block of grad_y into a new array (dst_offset 0). One thread per
        copied element, grid-stride over A * C * B; consecutive threads copy consecutive b,
        so reads and writes coalesce.
        """
        A = src.shape[0]
        B = src.shape[2]
        for i in range(cuda.grid(1), A * C * B, cuda.gridsize(1)):
            a = i // (C * B)
            rest = i - a * (C * B)
            c = rest // B
            b = rest - c * B
            dst[a, dst_offset + c, b] = src[a, src_offset + c, b]

    return channel_copy


def _map_quiet(build, out_like, *arrays):
    """:func:`_map` through :func:`launch_quiet`."""
    out = empty(out_like.shape, out_like.dtype)
    n = int(np.prod(out_like.shape))
    launch_quiet(build(numba_dtype(out_like)), n, *(flat(a) for a in arrays), flat(out))
    return out


def _map_hyper(kernel, out_like, arrays, hyper):
    """Launch ``kernel(*flat arrays, hyper, out)``; ``out`` a new array shaped as ``out_like``."""
    out = empty(out_like.shape, out_like.dtype)
    n = int(np.prod(out_like.shape))
    launch_quiet(kernel, n, *(flat(a) for a in arrays), float(hyper), flat(out))
    return out


def leaky_relu(dx, negative_slope):
    """LeakyReLU of the device array ``dx`` (any shape): a new device array."""
    return _map_hyper(leaky_relu_forward_kernel(numba_dtype(dx)), dx, (dx,), negative_slope)


def leaky_relu_backward(dgrad_y, dx, negative_slope):
    """grad_x of LeakyReLU from its input ``dx``; device arrays of one shape."""
    return _map_hyper(leaky_relu_backward_kernel(numba_dtype(dx)), dgrad_y, (dgrad_y, dx),
                      negative_slope)


def elu(dx, alpha):
    """ELU of the device array ``dx`` (any shape): a new device array."""
    return _map_hyper(elu_forward_kernel(numba_dtype(dx)), dx, (dx,), alpha)


def elu_backward(dgrad_y, dx, alpha):
    """grad_x of ELU from its input ``dx``; device arrays of one shape."""
    return _map_hyper(elu_backward_kernel(numba_dtype(dx)), dgrad_y, (dgrad_y, dx), alpha)


def gelu(dx, approximate):
    """GELU of the device array ``dx`` (any shape): a new device array."""
    return _map_quiet(lambda DT: gelu_forward_kernel(DT, approximate), dx, dx)


def gelu_backward(dgrad_y, dx, approximate):
    """grad_x of GELU from its input ``dx``; device arrays of one shape."""
    return _map_quiet(lambda DT: gelu_backward_kernel(DT, approximate), dgrad_y, dgrad_y, dx)


def silu(dx):
    """SiLU of the device array ``dx`` (any shape): a new device array."""
    return _map_quiet(silu_forward_kernel, dx, dx)


def silu_backward(dgrad_y, dx):
    """grad_x of SiLU from its input ``dx``; device arrays of one shape."""
    return _map_quiet(silu_backward_kernel, dgrad_y, dgrad_y, dx)


def softmax(dx):
    """Softmax over axis 1 of the device array ``dx`` : (A, C, B): a new device array."""
    dy = empty(dx.shape, dx.dtype)
    launch_quiet(softmax_forward_kernel(numba_dtype(dx)), dx.shape[0] * dx.shape[2], dx, dy)
    return dy


def softmax_backward(dgrad_y, dy):
    """grad_x of softmax from its output ``dy`` : (A, C, B); device arrays."""
    dgrad_x = empty(dy.shape, dy.dtype)
    launch_quiet(softmax_backward_kernel(numba_dtype(dy)), dy.shape[0] * dy.shape[2],
                  dgrad_y, dy, dgrad_x)
    return dgrad_x


def row_scale(dx, dmask, keep):
    """``dx[r, :] * (1 / keep if dmask[r] else 0)`` for dx : (R, L), dmask : (R,) uint8."""
    dy = empty(dx.shape, dx.dtype)
    launch_quiet(row_scale_kernel(numba_dtype(dx)), int(dx.shape[0] * dx.shape[1]), dx,
                  dmask, float(keep), dy)
    return dy


def cat(darrays):
    """Concatenate device arrays (A, C_i, B) along axis 1 -> (A, sum C_i, B)."""
    A, _, B = darrays[0].shape
    dy = empty((A, sum(d.shape[1] for d in darrays), B), darrays[0].dtype)
    kernel = channel_copy_kernel(numba_dtype(dy))
    offset = 0
    for d in darrays:
        C = d.shape[1]
        launch_quiet(kernel, A * C * B, d, dy, 0, offset, C)
        offset += C
    return dy


def cat_backward(dgrad_y, sizes):
    """The blocks of dgrad_y : (A, sum(sizes), B) along axis 1, as new device arrays."""
    A, _, B = dgrad_y.shape
    kernel = channel_copy_kernel(numba_dtype(dgrad_y))
    out = []
    offset = 0
    for C in sizes:
        dg = empty((A, C, B), dgrad_y.dtype)
        if C:
            launch_quiet(kernel, A * C * B, dgrad_y, dg, offset, 0, C)
        out.append(dg)
        offset += C
    return out


def kernel_signatures():
    """``[(name, dtype_name, dispatcher, signature)]`` of every kernel here, both dtypes.

    The format of ``kernels.cuda.ptx.kernel_signatures``, for ``numba.cuda.compile_ptx``.
    """
    import numba
    from numba import types

    out = []
    for DT in (numba.float32, numba.float64):
        a1 = types.Array(DT, 1, "C")
        out.append(("relu_forward", str(DT), relu_forward_kernel(DT), types.void(a1, a1)))
        out.append(("relu_backward", str(DT), relu_backward_kernel(DT),
                    types.void(a1, a1, a1)))
        out.append(("sigmoid_forward", str(DT), sigmoid_forward_kernel(DT),
                    types.void(a1, a1)))
        out.append(("sigmoid_backward", str(DT), sigmoid_backward_kernel(DT),
                    types.void(a1, a1, a1)))
        out.append(("tanh_forward", str(DT), tanh_forward_kernel(DT), types.void(a1, a1)))
        out.append(("tanh_backward", str(DT), tanh_backward_kernel(DT),
                    types.void(a1, a1, a1)))
        out.append(("add_elementwise", str(DT), add_kernel(DT), types.void(a1, a1, a1)))
        a2, a3 = types.Array(DT, 2, "C"), types.Array(DT, 3, "C")
        out.append(("leaky_relu_forward", str(DT), leaky_relu_forward_kernel(DT),
                    types.void(a1, types.float64, a1)))
        out.append(("leaky_relu_backward", str(DT), leaky_relu_backward_kernel(DT),
                    types.void(a1, a1, types.float64, a1)))
        out.append(("elu_forward", str(DT), elu_forward_kernel(DT),
                    types.void(a1, types.float64, a1)))
        out.append(("elu_backward", str(DT), elu_backward_kernel(DT),
                    types.void(a1, a1, types.float64, a1)))
        for approximate in ("none", "tanh"):
            out.append((f"gelu_forward_{approximate}", str(DT),
                        gelu_forward_kernel(DT, approximate), types.void(a1, a1)))
            out.append((f"gelu_backward_{approximate}", str(DT),
                        gelu_backward_kernel(DT, approximate), types.void(a1, a1, a1)))
        out.append(("silu_forward", str(DT), silu_forward_kernel(DT), types.void(a1, a1)))
        out.append(("silu_backward", str(DT), silu_backward_kernel(DT),
                    types.void(a1, a1, a1)))
        out.append(("softmax_forward", str(DT), softmax_forward_kernel(DT),
                    types.void(a3, a3)))
        out.append(("softmax_backward", str(DT), softmax_backward_kernel(DT),
                    types.void(a3, a3, a3)))
        out.append(("row_scale", str(DT), row_scale_kernel(DT),
                    types.void(a2, types.Array(types.uint8, 1, "C"), types.float64, a2)))
        out.append(("channel_copy", str(DT), channel_copy_kernel(DT),
                    types.void(a3, a3, types.intp, types.intp, types.intp)))
    return out
