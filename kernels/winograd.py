"""Winograd convolution F(m x m, 3 x 3) for 3x3 stride-1 layers, in readable NumPy.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (2015), section 4: a 3x3
cross-correlation producing an ``m x m`` output tile from an ``alpha x alpha`` input tile
(``alpha = m + 2``) costs ``9*m*m`` multiplies done directly, but only ``alpha*alpha`` in the
Winograd domain::

    Y = A^T [ (G g G^T) * (B^T d B) ] A              (* is the elementwise product)

``g`` the 3x3 kernel, ``d`` the input tile, ``Y`` the output tile. ``G g G^T`` (the kernel
transform) and ``B^T d B`` (the input transform) map both into an ``alpha x alpha`` domain
where the correlation is an elementwise product; ``A^T . A`` (the output transform) maps the
product back. Summed over input channels, the elementwise stage of a whole layer becomes
``alpha*alpha`` independent matrix products, one per transformed position ``(xi, nu)``::

    M[xi, nu] (C_out, tiles) = U[xi, nu] (C_out, C_in) @ V[xi, nu] (C_in, tiles)

which is where the time goes, and BLAS runs it (as NNPACK and cuDNN do). Per output pixel the
GEMMs do ``alpha^2 / m^2`` multiply-adds per (C_out, C_in) pair instead of 9: 4 for F(2x2,
3x3) (2.25x fewer), 2.25 for F(4x4, 3x3) (4x fewer); the transforms are the overhead.

Derivation of the matrices (the paper's section 4, the Toom-Cook construction): the 1-D
``F(m, 3)`` is a polynomial product evaluated at ``alpha`` points (``0, 1, -1`` and infinity
for ``F(2, 3)``; ``0, 1, -1, 2, -2`` and infinity for ``F(4, 3)``) and interpolated back. ``G``
evaluates the kernel polynomial at the points (rows scaled by the Lagrange denominators),
``B^T`` is the transposed interpolation (a correlation is the transposed convolution), ``A^T``
evaluates the output polynomial; the 2-D algorithm nests the 1-D one with itself. Larger
points (2, -2) make entries up to 8 in ``A^T`` and 5 in ``B^T``: F(4x4) loses accuracy.

The three problems of one layer (stride 1, dilation 1, groups 1, 3x3; any padding):

- forward: tile ``y`` in ``m x m`` tiles, each reading an ``alpha x alpha`` window of the
  zero-padded input (windows overlap by 2), as above;
- grad_x: a stride-1 conv's input gradient is the cross-correlation of ``grad_y`` padded by
  ``2 - pad`` (cropped where ``pad > 2``) with the kernel flipped in both axes and its
  channel axes swapped (``weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)``): the forward
  algorithm on that problem;
- grad_weight: the adjoint of the forward's elementwise stage, in the same Winograd domain:
  ``dU[xi, nu] = dM[xi, nu] @ V[xi, nu]^T`` with ``dM = A dY A^T`` (each ``m x m`` tile of
  ``grad_y``, zero past the edge, through the transposed output transform) and then
  ``grad_g = G^T dU G``. This is the transposed algorithm, the paper's ``F(3x3, m x m)`` use of
  the gradient tiles as the filter (its F(3x3, 2x2) for the weight gradient), and it reuses
  the forward's input transform ``V`` and one GEMM per position, ``(C_out, tiles) @ (tiles,
  C_in)``. It is exact in exact arithmetic because the forward map is (the forward is exactly
  the convolution, so its adjoint is exactly the convolution's). Falling back to im2col would
  cost a full 9-tap GEMM; this costs ``alpha^2 / m^2`` of one.

Accuracy in float32 (against PyTorch in float64, ``python -m benchmarks.winograd --accuracy``
over ResNet-18's 3x3 stride-1 layers): worst error 6.5e-7 of the result's scale for F(2x2,
3x3), about the GEMM path's 5.6e-7, and 1.1e-5 for F(4x4, 3x3); the tests hold them to
:data:`FLOAT32_ERROR_BOUND` (5e-6 and 5e-5), both under the project's 1e-4.

Shapes: ``x (N, C_in, H, W)``, ``weight (C_out, C_in, 3, 3)``, ``y (N, C_out, H_out, W_out)``;
``tiles = N * T_h * T_w`` with ``T_h = ceil(H_out / m)``, ``T_w = ceil(W_out / m)``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .common import ConvGrads, ConvSpec


class WinogradTile(NamedTuple):
    """The matrices of F(m x m, r x r): ``Y = A^T [(G g G^T) * (B^T d B)] A``."""

    m: int  # output tile side
    r: int  # kernel side (3)
    alpha: int  # input tile side, m + r - 1
    AT: np.ndarray  # (m, alpha): output transform
    G: np.ndarray  # (alpha, r): kernel transform
    BT: np.ndarray  # (alpha, alpha): input transform


# F(2, 3): points 0, 1, -1, infinity (Lavin and Gray, section 4, F(2x2, 3x3))
F2 = WinogradTile(
    m=2, r=3, alpha=4,
    AT=np.array([[1, 1, 1, 0],
                 [0, 1, -1, -1]], dtype=np.float64),
    G=np.array([[1, 0, 0],
                [1 / 2, 1 / 2, 1 / 2],
                [1 / 2, -1 / 2, 1 / 2],
                [0, 0, 1]], dtype=np.float64),
    BT=np.array([[1, 0, -1, 0],
                 [0, 1, 1, 0],
                 [0, -1, 1, 0],
                 [0, 1, 0, -1]], dtype=np.float64),
)

# F(4, 3): points 0, 1, -1, 2, -2, infinity (Lavin and Gray, section 4, F(4x4, 3x3))
F4 = WinogradTile(
    m=4, r=3, alpha=6,
    AT=np.array([[1, 1, 1, 1, 1, 0],
                 [0, 1, -1, 2, -2, 0],
                 [0, 1, 1, 4, 4, 0],
                 [0, 1, -1, 8, -8, 1]], dtype=np.float64),
    G=np.array([[1 / 4, 0, 0],
                [-1 / 6, -1 / 6, -1 / 6],
                [-1 / 6, 1 / 6, -1 / 6],
                [1 / 24, 1 / 12, 1 / 6],
                [1 / 24, -1 / 12, 1 / 6],
                [0, 0, 1]], dtype=np.float64),
    BT=np.array([[4, 0, -5, 0, 1, 0],
                 [0, -4, -4, 1, 1, 0],
                 [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0],
                 [0, 2, -1, -2, 1, 0],
                 [0, 4, 0, -5, 0, 1]], dtype=np.float64),
)

TILES = {2: F2, 4: F4}
"""Output tile side ``m`` -> its :class:`WinogradTile`."""

FLOAT32_ERROR_BOUND = {2: 5e-6, 4: 5e-5}
"""Worst float32 error, as a fraction of the float64 result's largest magnitude, that the
tests allow for each tile size, over forward, grad_x and grad_weight. Measured by
``python -m benchmarks.winograd --accuracy`` (numba backend, float32, against PyTorch in
float64, ResNet-18's four 3x3 stride-1 layers at batch 2; JSON in
benchmarks/results/cpu_winograd_accuracy.json), the worst ``max|error| / max|result|``:
GEMM path 5.6e-7, F(2x2, 3x3) 6.4e-7, F(4x4, 3x3) 1.1e-5 (its forward and grad_x; its
grad_weight 6.4e-6). Both bounds are under the project's float32 tolerance (1e-4 of the
output's scale, ``tests/checks.py``), so F(4x4) is not ruled out for accuracy; it is ~15x
less accurate than F(2x2), as the larger interpolation points (2, -2) predict."""

COLUMN_BYTES_LIMIT = 64 * 2**20
"""The most bytes the transformed input ``V`` of one batch chunk may take."""


def applies(spec: ConvSpec) -> bool:
    """Whether the Winograd path can run ``spec``: 3x3, stride 1, dilation 1, one group."""
    return (spec.kH == 3 and spec.kW == 3 and spec.stride_h == 1 and spec.stride_w == 1
            and spec.dil_h == 1 and spec.dil_w == 1 and spec.groups == 1)


def tile_counts(spec: ConvSpec, m: int) -> tuple[int, int]:
    """``(T_h, T_w)``: ``m x m`` output tiles covering ``(H_out, W_out)``, the last partial."""
    return -(-spec.H_out // m), -(-spec.W_out // m)


def grad_x_problem(weight, spec: ConvSpec) -> tuple[np.ndarray, ConvSpec]:
    """grad_x of a stride-1 3x3 conv as a forward conv: ``(weight_t, spec_t)``.

    weight : (C_out, C_in, 3, 3) -> weight_t : (C_in, C_out, 3, 3), flipped in both spatial
    axes, channel axes swapped; ``spec_t`` the conv of ``grad_y (N, C_out, H_out, W_out)``
    with padding ``2 - pad`` (negative: a crop), whose output is ``(N, C_in, H, W)``::

        grad_x[n, c, h, w] = sum_{o, i, j} grad_y[n, o, h + pad - i, w + pad - j] * g[o, c, i, j]
                           = sum_{o, i, j} grad_y_padded[n, o, h + i, w + j] * g[o, c, 2-i, 2-j]
    """
    weight_t = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    spec_t = ConvSpec.from_shapes(
        (spec.N, spec.C_out, spec.H_out, spec.W_out), weight_t.shape, stride=(1, 1),
        padding=(spec.kH - 1 - spec.pad_h, spec.kW - 1 - spec.pad_w), dilation=(1, 1),
        groups=1)
    assert (spec_t.H_out, spec_t.W_out) == (spec.H, spec.W)
    return weight_t, spec_t


def _pad_or_crop(a, top, bottom, left, right):
    """Zero-pad (positive) or crop (negative) the last two axes of ``a`` (n, C, h, w)."""
    a = a[:, :, max(-top, 0): a.shape[2] - max(-bottom, 0),
          max(-left, 0): a.shape[3] - max(-right, 0)]
    pads = ((0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0)))
    return np.pad(a, pads)


def _chunks(spec: ConvSpec, tile: WinogradTile, itemsize: int):
    """``[(n_start, n_end), ...]``: batch chunks whose ``V`` fits in ``COLUMN_BYTES_LIMIT``."""
    T_h, T_w = tile_counts(spec, tile.m)
    sample = tile.alpha**2 * max(spec.C_in, spec.C_out) * T_h * T_w * itemsize
    step = max(1, COLUMN_BYTES_LIMIT // sample)
    return [(n, min(n + step, spec.N)) for n in range(0, spec.N, step)]


def input_transform(x, spec: ConvSpec, tile: WinogradTile):
    """``V = B^T d B`` for every input tile ``d`` of every channel.

    x : (n, C_in, H, W) -> V : (alpha, alpha, C_in, n*T_h*T_w). Tile ``(th, tw)`` is the
    ``alpha x alpha`` window of the zero-padded input at ``(th*m, tw*m)``; the input is padded
    (or cropped) to exactly ``(T_h*m + 2, T_w*m + 2)``.
    """
    m, alpha, BT = tile.m, tile.alpha, tile.BT.astype(x.dtype)
    n, C = x.shape[:2]
    T_h, T_w = tile_counts(spec, m)
    bottom = T_h * m + alpha - m - spec.H - spec.pad_h
    right = T_w * m + alpha - m - spec.W - spec.pad_w
    xp = _pad_or_crop(x, spec.pad_h, bottom, spec.pad_w, right)  # (n, C, T_h*m+2, T_w*m+2)
    d = sliding_window_view(xp, (alpha, alpha), axis=(2, 3))[:, :, ::m, ::m]
    # d: (n, C, T_h, T_w, alpha, alpha), a view
    # V[i, j] = sum_kl BT[i, k] d[k, l] BT[j, l] = (B^T d B)[i, j], laid out for the GEMMs;
    # optimize=True contracts one matrix at a time through BLAS (tensordot)
    V = np.einsum("ik,ncuvkl,jl->ijcnuv", BT, d, BT, optimize=True)  # (a, a, C, n, T_h, T_w)
    return np.ascontiguousarray(V).reshape(alpha, alpha, C, n * T_h * T_w)


def weight_transform(weight, tile: WinogradTile):
    """``U = G g G^T`` for every 3x3 kernel: (C_out, C_in, 3, 3) -> (alpha, alpha, C_out, C_in)."""
    G = tile.G.astype(weight.dtype)
    U = np.einsum("ik,ockl,jl->ijoc", G, weight, G, optimize=True)  # (G g G^T)[i, j]
    return np.ascontiguousarray(U)  # (alpha, alpha, C_out, C_in)


def output_transform(M, n, spec: ConvSpec, tile: WinogradTile):
    """``Y = A^T M A`` per tile, the tiles laid back into planes and cropped.

    M : (alpha, alpha, C_out, n*T_h*T_w) -> y : (n, C_out, H_out, W_out)
    """
    m, AT = tile.m, tile.AT.astype(M.dtype)
    T_h, T_w = tile_counts(spec, m)
    M = M.reshape(tile.alpha, tile.alpha, spec.C_out, n, T_h, T_w)
    # Y[n, o, th, i, tw, j] = sum_kl AT[i, k] M[k, l] AT[j, l] = (A^T M A)[i, j] of tile (th, tw)
    Y = np.einsum("ik,klonuv,jl->nouivj", AT, M, AT, optimize=True)  # (n, C_out, T_h, m, T_w, m)
    Y = Y.reshape(n, spec.C_out, T_h * m, T_w * m)
    return Y[:, :, :spec.H_out, :spec.W_out]  # (n, C_out, H_out, W_out)


def grad_output_transform(grad_y, spec: ConvSpec, tile: WinogradTile):
    """``dM = A dY A^T`` per tile: the transposed output transform (the adjoint of ``Y``).

    grad_y : (n, C_out, H_out, W_out) -> dM : (alpha, alpha, C_out, n*T_h*T_w); each ``m x m``
    tile ``dY`` of ``grad_y`` is zero past the output's edge (those outputs were cropped).
    """
    m, alpha, AT = tile.m, tile.alpha, tile.AT.astype(grad_y.dtype)
    n, C = grad_y.shape[:2]
    T_h, T_w = tile_counts(spec, m)
    gy = _pad_or_crop(grad_y, 0, T_h * m - spec.H_out, 0, T_w * m - spec.W_out)
    dY = gy.reshape(n, C, T_h, m, T_w, m).transpose(0, 1, 2, 4, 3, 5)  # (n, C, T_h, T_w, m, m)
    # dM[i, j] = sum_kl AT[k, i] dY[k, l] AT[l, j] = (A dY A^T)[i, j]
    dM = np.einsum("ki,ncuvkl,lj->ijcnuv", AT, dY, AT, optimize=True)  # (a, a, C, n, T_h, T_w)
    return np.ascontiguousarray(dM).reshape(alpha, alpha, C, n * T_h * T_w)


def conv2d(x, weight, bias, spec: ConvSpec, m: int = 2):
    """Winograd F(m x m, 3x3) forward (a cross-correlation, as :func:`kernels.naive.conv2d`).

    x : (N, C_in, H, W), weight : (C_out, C_in, 3, 3), bias : (C_out,) or None, ``spec`` a
    :class:`kernels.common.ConvSpec` that :func:`applies`, ``m`` 2 or 4 -> y : (N, C_out,
    H_out, W_out).
    """
    tile = TILES[m]
    U = weight_transform(weight, tile)  # (alpha, alpha, C_out, C_in)
    y = np.empty(spec.y_shape, x.dtype)  # (N, C_out, H_out, W_out)
    for n0, n1 in _chunks(spec, tile, x.itemsize):
        V = input_transform(x[n0:n1], spec, tile)  # (alpha, alpha, C_in, tiles)
        M = U @ V  # (alpha, alpha, C_out, tiles): alpha^2 GEMMs
        y[n0:n1] = output_transform(M, n1 - n0, spec, tile)
    if bias is not None:
        y += bias.reshape(spec.C_out, 1, 1)  # (C_out, 1, 1)
    return y


def conv2d_backward(grad_y, x, weight, spec: ConvSpec, m: int = 2, *,
                    needs_input_grad=(True, True, True)) -> ConvGrads:
    """Gradients of :func:`conv2d`, both through Winograd F(m x m, 3x3) (module header).

    grad_y : (N, C_out, H_out, W_out), x : (N, C_in, H, W), weight : (C_out, C_in, 3, 3) ->
    ``ConvGrads(grad_x (N, C_in, H, W), grad_weight (C_out, C_in, 3, 3), grad_bias (C_out,))``;
    a gradient ``needs_input_grad`` does not ask for is not computed and comes back as None.
    """
    need_x, need_w, need_b = needs_input_grad
    tile = TILES[m]
    grad_x = grad_weight = None
    if need_x:
        weight_t, spec_t = grad_x_problem(weight, spec)
        grad_x = conv2d(grad_y, weight_t, None, spec_t, m)  # (N, C_in, H, W)
    if need_w:
        dU = np.zeros((tile.alpha, tile.alpha, spec.C_out, spec.C_in), x.dtype)
        for n0, n1 in _chunks(spec, tile, x.itemsize):
            V = input_transform(x[n0:n1], spec, tile)  # (alpha, alpha, C_in, tiles)
            dM = grad_output_transform(grad_y[n0:n1], spec, tile)  # (alpha, alpha, C_out, ..)
            dU += dM @ V.transpose(0, 1, 3, 2)  # (alpha, alpha, C_out, C_in): alpha^2 GEMMs
        G = tile.G.astype(x.dtype)
        # grad_g[o, c, k, l] = sum_ij G[i, k] dU[i, j, o, c] G[j, l] = (G^T dU G)[k, l]
        grad_weight = np.einsum("ik,ijoc,jl->ockl", G, dU, G, optimize=True)  # (C_out, C_in, 3, 3)
        grad_weight = np.ascontiguousarray(grad_weight)
    return ConvGrads(grad_x, grad_weight, grad_y.sum((0, 2, 3)) if need_b else None)


# --------------------------------------------------------------------------- the option


class ConvAlgorithm:
    """A backend's conv algorithm option: a default and a ``with`` scope, as ``kernels.cuda``.

    ``names`` the choices, the first is the initial default (``"auto"``). Each backend that
    offers Winograd holds one (``kernels.numba_cpu``, ``kernels.vectorized``) and exposes
    ``conv_algorithm(name)``, ``get_conv_algorithm()`` and ``set_conv_algorithm(name)``.
    """

    def __init__(self, backend: str, names: tuple[str, ...]):
        self.names = names
        self._default = names[0]
        self._scoped: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"minitorch_cnn_{backend}_conv_algorithm", default=None)

    def _check(self, name: object) -> str:
        if name not in self.names:
            raise ValueError(f"algorithm: expected one of {self.names}, got {name!r}")
        return name

    def get(self) -> str:
        """The algorithm in force: the innermost ``with`` scope's, else the default."""
        return self._scoped.get() or self._default

    def set(self, name: str) -> None:
        """Make ``name`` the default outside any ``with`` scope."""
        self._default = self._check(name)

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[str]:
        """Run the backend's conv2d / conv2d_backward with ``name`` inside a ``with`` block."""
        token = self._scoped.set(self._check(name))
        try:
            yield name
        finally:
            self._scoped.reset(token)


NUMPY_CONV_ALGORITHM = ConvAlgorithm("numpy", ("auto", "gemm", "winograd", "winograd4"))
"""The numpy backend's option (``kernels.vectorized.conv_algorithm``)."""

NUMPY_AUTO_TILE = 0
"""The tile ``"auto"`` picks in the numpy backend for an eligible float32 layer: 0, never.
Measured with ``python -m benchmarks.winograd --backend numpy --batch 8 --rounds 1
--repeats 3`` (benchmarks/results/cpu_winograd_numpy.json) on a 2-core AMD EPYC (AVX-512;
OpenBLAS on its Haswell kernels), shared with other jobs: on every ResNet-18 3x3 stride-1
layer, forward and forward + backward, this NumPy version was slower than the backend's
im2col + GEMM (F(2x2) 1.5-6.5x, F(4x4) 1.06-3.2x; its transforms are einsums over
``(n, C, T_h, T_w, alpha, alpha)`` temporaries), so it is there to be read and forced."""


def numpy_tile(spec: ConvSpec, x, weight, grad_y=None) -> int:
    """The numpy backend's choice: 2 or 4 (run :func:`conv2d` with that ``m``), 0 (im2col).

    x : (N, C_in, H, W), weight : (C_out, C_in, 3, 3), grad_y : (N, C_out, H_out, W_out) or
    None. Forced by ``conv_algorithm("winograd" | "winograd4")``, or :data:`NUMPY_AUTO_TILE`
    under ``"auto"`` (float32 only); never for a problem :func:`applies` rejects or with a
    NaN or inf in an operand (the transforms would spread it across a tile, where PyTorch
    keeps it to the outputs whose window holds it).
    """
    algorithm = NUMPY_CONV_ALGORITHM.get()
    m = forced_tile(algorithm)
    if algorithm == "auto" and x.dtype == np.float32:
        m = NUMPY_AUTO_TILE
    if not m or not applies(spec):
        return 0
    arrays = (x, weight) if grad_y is None else (x, weight, grad_y)
    return m if all(np.isfinite(a).all() for a in arrays) else 0


def forced_tile(algorithm: str) -> int:
    """The tile side a forcing algorithm name asks for: ``"winograd"`` 2, ``"winograd4"`` 4,
    anything else 0 (not forced to Winograd).
    """
    return {"winograd": 2, "winograd4": 4}.get(algorithm, 0)


__all__ = [
    "F2",
    "F4",
    "FLOAT32_ERROR_BOUND",
    "NUMPY_AUTO_TILE",
    "NUMPY_CONV_ALGORITHM",
    "TILES",
    "ConvAlgorithm",
    "WinogradTile",
    "applies",
    "conv2d",
    "conv2d_backward",
    "forced_tile",
    "grad_x_problem",
    "input_transform",
    "numpy_tile",
    "output_transform",
    "weight_transform",
]
