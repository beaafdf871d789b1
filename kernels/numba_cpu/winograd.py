"""The ``"winograd"`` conv path of the numba backend: F(2x2, 3x3) and F(4x4, 3x3).

Computes what :mod:`kernels.winograd` computes (read that first: the matrices, their
derivation, the three problems, and why grad_weight stays in the Winograd domain); this
module changes *how*:

1. The input and output transforms (``B^T d B``, ``A^T M A``, and the backward's ``A dY
   A^T``) are serial Numba loops over one chunk's planes that transform ALL the tiles of a
   plane at once: entry ``(r, s)`` of every tile, side by side, is one contiguous run of the
   plane split into its ``m x m`` phases ("wide rows" with one junk tile per row of tiles, as
   the direct conv path does it), so each term of ``B^T d B`` is one long vectorised AXPY
   written straight into its GEMM operand ``V (alpha^2, C, tiles)``
   (:func:`_input_transform`). The NumPy version builds ``(n, C, T_h, T_w, alpha, alpha)``
   temporaries and transposes them; a first Numba version went a row of tiles at a time,
   its AXPYs as short as a row of tiles (7 to 28) and its reads strided by ``m``. The
   kernel transforms ``G g G^T`` and ``G^T dU G`` are one GEMM each with ``G kron G``
   (:func:`_weight_transform`), not a loop: one BLAS call transforms every kernel. For
   F(2x2, 3x3), whose coefficients are all 0 and +-1, :mod:`.winograd_f2` writes the sums
   out instead, one pass over a plane's tiles (2-4x faster again on ResNet-18's layers);
   F(4x4) keeps the matrices as data.
2. One parallel region of lanes, as the GEMM path (:mod:`kernels.numba_cpu` header, items 3
   and 4): lane ``l`` takes chunks ``l, l + lanes, ...`` of samples and does the input
   transform, the ``alpha^2`` GEMMs ``(C_out, C_in) @ (C_in, tiles)`` (``np.dot``, BLAS on
   one thread per lane) and the output transform on its own, in buffers it reuses; a
   chunk's ``V`` and ``M`` stay under :data:`CHUNK_BYTES`. A first version ran each
   transform in its own ``prange`` and the GEMMs between them through NumPy's threaded
   BLAS, with per-tile transforms; on the shared 2-core machine it ran 6-20x slower than
   the GEMM path (``benchmarks.winograd``-style interleaved timing), this one 1.0-1.8x with
   the row-at-a-time transforms of item 1.
   grad_weight's lanes each sum their chunks into their own ``dU`` (``(C_out, tiles) @
   (tiles, C_in)`` per position), added up at the end.
3. Non-finite input: the transforms add and subtract neighbouring cells, so one inf becomes
   NaN across its tile where PyTorch has inf in some outputs only. :func:`choose_tile` scans
   ``x``, the weight (and ``grad_y``) with ``_all_finite`` and leaves such a call to the GEMM
   path, forced or not: NaN and inf then land exactly where PyTorch puts them.

Which path runs: :func:`choose_tile` (called by ``conv2d`` / ``conv2d_backward`` of
:mod:`kernels.numba_cpu`) applies the option ``kernels.numba_cpu.conv_algorithm(name)``:
``"winograd"`` forces F(2x2, 3x3), ``"winograd4"`` F(4x4, 3x3), ``"gemm"``/``"direct"`` rule it
out, ``"auto"`` (the default) uses :data:`AUTO_TABLE`; any problem that is not 3x3, stride 1,
dilation 1, one group runs the other paths whatever the option says.

Accuracy (float32 against PyTorch in float64, worst |error| / max|result| over forward,
grad_x and grad_weight; ``python -m benchmarks.winograd --accuracy``, ResNet-18's 3x3
stride-1 layers at batch 2): see :data:`MEASURED_ERROR`. The bounds the tests hold the path
to are :data:`kernels.winograd.FLOAT32_ERROR_BOUND`.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import prange

from kernels import winograd as wn
from kernels.common import ConvSpec

from ._loops import FASTMATH, _all_finite, njit
from .conv_gemm import _blas_libraries, _single_threaded_blas
from .winograd_f2 import _grad_output_transform_f2, _input_transform_f2, _output_transform_f2
from .winograd_layout import _crop_tiles, _gather_tiles, _split_phases

CHUNK_BYTES = 2 * 2**20
"""Upper bound on ``V`` plus ``M`` (the GEMM operands of one batch chunk), one sample at
least: one sample a chunk on every ResNet-18 layer at 2 MiB, so both lanes' chunks stay in
the L3 cache between the input transform, the GEMMs and the output transform. At 16 MiB
(four samples a chunk on layer2) layer2's forward took 59.2 ms against 53.5 (batch 32,
``conv_algorithm("winograd")``, 2-core AVX2 EPYC, median of 11 interleaved with PyTorch,
before the transforms of :mod:`.winograd_f2`)."""

CONV_ALGORITHM = wn.ConvAlgorithm("numba", ("auto", "direct", "gemm", "winograd", "winograd4"))
"""The numba backend's conv algorithm option (``kernels.numba_cpu.conv_algorithm``)."""

AUTO_TABLE = {"tile": 2, "min_channels": 32, "min_plane_tiles": 49}
"""When ``"auto"`` picks Winograd (float32 only): F(``tile``), if ``C_in`` and ``C_out`` are
both at least ``min_channels`` and one plane has at least ``min_plane_tiles`` output tiles
(``T_h*T_w``: the transforms' runs are that long, and short runs cost more than the GEMM
work they save); ``min_channels = None``: never.

Measured on the 2-core AVX2 EPYC (Zen 3), batch 32, float32, ``conv2d`` and
``conv2d_backward`` under ``conv_algorithm("winograd")`` and ``("gemm")`` interleaved with
PyTorch's, median of 9 rounds, ``OPENBLAS_THREAD_TIMEOUT=4``, glibc's default allocator
settings (not :func:`minitorch_cnn.keep_freed_memory`), ms, forward / backward::

    C @ H (plane tiles)   winograd        gemm            PyTorch
    64 @ 56  (784)        62.3 / 113.2    72.4 / 150.9    69.1 / 136.5   ResNet-18 layer1
    128 @ 28 (196)        42.6 / 81.4     60.1 / 122.7    51.7 / 113.3   layer2
    256 @ 14 (49)         34.1 / 85.1     57.7 / 124.3    44.9 / 96.3    layer3
    512 @ 7  (16)         68.9 / 206.8    52.3 / 137.0    49.3 / 98.9    layer4
    64 @ 28  (196)        16.3 / 29.3     20.8 / 36.3     14.1 / 32.5
    48 @ 28  (196)        11.0 / 20.7     13.2 / 25.9     10.3 / 20.3
    32 @ 32  (256)        12.2 / 24.3     13.6 / 28.8     9.4 / 18.5
    128 @ 14 (49)         11.5 / 24.3     17.0 / 39.2     12.2 / 28.7
    64 @ 14  (49)         5.9 / 8.9       9.0 / 13.9      5.0 / 7.7

Only layer4's 7x7 planes (16 tiles, 20 with the junk ones, and a quarter of each 8x8 tile
cover past the 7x7 plane) stay on the GEMM path; nothing under 32 channels was measured.
F(4x4), its transforms with the matrices as data, lost to F(2x2) on every layer
(``python -m benchmarks.winograd --rounds 3``: ``cpu_winograd_numba_epyc_avx2.json``, where
F(2x2) is 0.82-0.89x PyTorch forward + backward on layer1-3 and 1.85x on layer4).

Two changes turned the table on; before them it was off (F(2x2) lost to the GEMM path by
20-35% on layer1 and layer2, timed call after call):

1. The weight transform moved inside :func:`_single_threaded_blas`. It is one small NumPy
   GEMM, which woke OpenBLAS's own threads, and they kept spinning (waiting for more work)
   while the lanes ran on the same two cores. ``benchmarks.winograd``, with PyTorch's calls
   between ours (time for those threads to give up), had F(2x2) ahead meanwhile. Layer2
   forward, one process, before the move / after / GEMM path: 92.3 / 61.7 / 61.9 ms.
2. F(2x2)'s transforms with the matrices written into the code (:mod:`.winograd_f2`), over
   buffers with a spare channel row (:func:`_forward_lanes`): one thread, one sample, input /
   output / grad-output transform, ms, layer2 0.69 / 0.26 / 0.26 -> 0.33 / 0.16 / 0.21,
   layer3 0.87 / 0.35 / 0.35 -> 0.20 / 0.10 / 0.13."""

MEASURED_ERROR = {2: 6.4e-7, 4: 1.1e-5}
"""Worst float32 ``max|error| / max|float64 result|`` per tile size, over forward, grad_x and
grad_weight (``python -m benchmarks.winograd --accuracy``; the GEMM path: 5.6e-7)."""


class TilePlan(NamedTuple):
    """One chunk's tiling, ints only (one Numba argument, like the spec)."""

    m: int  # output tile side (2 or 4)
    alpha: int  # input tile side, m + 2
    tiles_h: int  # T_h = ceil(H_out / m)
    tiles_w: int  # T_w = ceil(W_out / m)
    pitch: int  # tile columns per row of tiles in V and M: T_w + 1 (one junk tile per row)
    pad_h: int  # zero rows above the input (negative: rows cropped)
    pad_w: int  # zero columns left of the input (negative: columns cropped)
    H_out: int  # output height (the last tile row is cropped to it)
    W_out: int  # output width
    lanes: int  # parallel workers, each with its own buffers and single-threaded GEMMs
    samples: int  # samples per chunk; lane l does chunks l, l + lanes, ...


def _tile_plan(spec: ConvSpec, m: int, itemsize: int) -> TilePlan:
    """The tiling of ``spec`` and its work split: a chunk's ``V`` and ``M`` (or ``dM``)
    within :data:`CHUNK_BYTES`, and every lane a chunk when the batch allows.
    """
    T_h, T_w = wn.tile_counts(spec, m)
    pitch = T_w + 1  # one junk tile per row of tiles (_input_transform)
    sample = (m + 2)**2 * (spec.C_in + spec.C_out) * T_h * pitch * itemsize
    lanes = max(1, min(numba.get_num_threads(), spec.N)) if _blas_libraries() else 1
    samples = max(1, min(-(-spec.N // lanes), CHUNK_BYTES // sample))
    return TilePlan(m=m, alpha=m + 2, tiles_h=T_h, tiles_w=T_w, pitch=pitch, pad_h=spec.pad_h,
                    pad_w=spec.pad_w, H_out=spec.H_out, W_out=spec.W_out, lanes=lanes,
                    samples=samples)


# --------------------------------------------------------------------------- transforms


@njit(cache=True, fastmath=FASTMATH)
def _accumulate(out, coef, row, written):
    """One term of a transform's row: ``out = coef * row`` if nothing is ``written`` to
    ``out`` yet, else ``out += coef * row``; nothing when ``coef == 0``. Returns whether
    ``out`` is written now.

    out, row : (T,) contiguous: one vectorised loop over a whole run of tiles. The
    transforms' matrices are about half zeros, so a row of one costs only its nonzero
    entries; and no row of them is all zeros, so every ``out`` gets written (by its first
    term: no zeroing pass over ``V`` or ``dM``, which live in L3 or memory).
    """
    if coef == 0:
        return written
    if written:
        for p in range(out.shape[0]):
            out[p] += coef * row[p]
    else:
        for p in range(out.shape[0]):
            out[p] = coef * row[p]
    return True


@njit(cache=True, fastmath=FASTMATH)
def _input_transform(x, BT, plan, V):
    """``V[(xi, nu), c, p] = (B^T d B)[xi, nu]`` for tile ``p = (b, th, tw)`` of plane ``(b, c)``.

    x : (n, C, H, W), BT : (alpha, alpha), ``plan`` a :class:`TilePlan` -> fills V :
    (alpha*alpha, C, n*T_h*pitch), tile ``(b, th, tw)`` at ``p = (b*T_h + th)*pitch + tw``.
    ``d`` is the ``alpha x alpha`` window of the zero-padded input ``xq`` at ``(th*m, tw*m)``
    (``xq[h, w] = x[h - pad_h, w - pad_w]``, 0 outside).

    Plane by plane, every tile at once, as the direct conv path does it ("wide rows",
    :mod:`kernels.numba_cpu.conv_direct`): the plane is split into its ``m x m`` phases,
    ``Q[h % m, w % m, h // m, w // m] = xq[h, w]``, each phase a grid of ``pitch = T_w + 1``
    columns. Entry ``(r, s)`` of tile ``(th, tw)`` is then ``Q[r % m, s % m]`` at row ``th +
    r // m``, column ``tw + s // m``: for all the tiles at once, ONE contiguous run of the
    flattened phase, starting ``(r // m)*pitch + s // m`` in. So ``B^T d B`` of every tile is
    whole-run AXPYs (:func:`_accumulate`): down the columns, ``E[i, s] = sum_r B^T[i, r] d[r,
    s]``, then along the rows, ``V[(i, j)] = sum_s B^T[j, s] E[i, s]``. The last tile column
    of each row (``tw = T_w``) is junk (it reads into the next row): finite, it goes through
    the GEMMs, and the output transform drops it. A first version gathered ``d[r, s]`` tile by
    tile, strided by ``m``: 1.2-2.3x slower (ResNet-18's layer1-3, four samples, one thread).
    """
    n, C = x.shape[0], x.shape[1]
    a, m, T_h, pitch = plan.alpha, plan.m, plan.tiles_h, plan.pitch
    T = T_h * pitch  # tile columns per plane, junk included
    Q = np.zeros((m, m, T_h + 2, pitch), x.dtype)  # the phases; rows past T_h stay zero
    Qf = Q.reshape(m, m, (T_h + 2) * pitch)
    E = np.empty((a, a, T), x.dtype)  # B^T d, down the tiles' columns
    for item in range(n * C):
        b, c = item // C, item % C
        _split_phases(x[b, c], plan, Q)
        for i in range(a):  # E[i, s] = sum_r B^T[i, r] d[r, s]
            for s in range(a):
                written = False
                for r in range(a):
                    off = (r // m) * pitch + s // m
                    written = _accumulate(E[i, s], BT[i, r], Qf[r % m, s % m, off:off + T],
                                          written)
        p0 = b * T
        for i in range(a):  # V[(i, j)] = sum_s B^T[j, s] E[i, s]
            for j in range(a):
                written = False
                for s in range(a):
                    written = _accumulate(V[i * a + j, c, p0:p0 + T], BT[j, s], E[i, s], written)


@njit(cache=True, fastmath=FASTMATH)
def _output_transform(M, AT, bias, plan, y):
    """``y[b, o, th*m + i, tw*m + j] = (A^T M A)[i, j] + bias[o]``, cropped to (H_out, W_out).

    M : (alpha*alpha, C_out, n*T_h*pitch), AT : (m, alpha), bias : (C_out,), ``plan`` a
    :class:`TilePlan` -> fills y : (n, C_out, H_out, W_out). Plane by plane, all its tiles at
    once (as :func:`_input_transform`): ``Z[i, l] = sum_k A^T[i, k] M[(k, l)]``, ``Y[i, j] =
    sum_l A^T[j, l] Z[i, l]`` over whole runs of tiles, then entry ``(i, j)`` of every tile
    to its pixel (the junk tiles and the pixels past the edge dropped).
    """
    n, C_out = y.shape[0], y.shape[1]
    a, m, T_h, pitch = plan.alpha, plan.m, plan.tiles_h, plan.pitch
    T = T_h * pitch  # tile columns per plane, junk included
    Z = np.empty((m, a, T), M.dtype)  # A^T M, down the tiles' columns
    Y = np.empty((m, m, T), M.dtype)  # A^T M A
    for item in range(n * C_out):
        b, o = item // C_out, item % C_out
        p0 = b * T
        for i in range(m):  # Z[i, l] = sum_k A^T[i, k] M[(k, l)]
            for l in range(a):
                written = False
                for k in range(a):
                    written = _accumulate(Z[i, l], AT[i, k], M[k * a + l, o, p0:p0 + T], written)
        for i in range(m):  # Y[i, j] = sum_l A^T[j, l] Z[i, l]
            for j in range(m):
                written = False
                for l in range(a):
                    written = _accumulate(Y[i, j], AT[j, l], Z[i, l], written)
        _crop_tiles(Y, bias[o], plan, y[b, o])


@njit(cache=True, fastmath=FASTMATH)
def _grad_output_transform(grad_y, AT, plan, dM):
    """``dM[(xi, nu), o, p] = (A dY A^T)[xi, nu]``: the adjoint of :func:`_output_transform`.

    grad_y : (n, C_out, H_out, W_out), AT : (m, alpha), ``plan`` a :class:`TilePlan` -> fills
    dM : (alpha*alpha, C_out, n*T_h*pitch); ``dY`` the ``m x m`` tile, zero past the edge and
    on the junk tiles (so they add nothing to grad_weight's sums). All a plane's tiles at
    once, as :func:`_input_transform`: ``dY[i, j]`` holds entry ``(i, j)`` of every tile, then
    ``t[xi, j] = sum_i A^T[i, xi] dY[i, j]`` and ``dM[(xi, nu)] = sum_j A^T[j, nu] t[xi, j]``.
    """
    n, C_out = grad_y.shape[0], grad_y.shape[1]
    a, m, T_h, pitch = plan.alpha, plan.m, plan.tiles_h, plan.pitch
    T = T_h * pitch  # tile columns per plane, junk included
    dY = np.zeros((m, m, T), grad_y.dtype)  # dY[i, j, th*pitch + tw]; what is never written: 0
    t = np.empty((a, m, T), grad_y.dtype)  # A dY, down the tiles' columns
    for item in range(n * C_out):
        b, o = item // C_out, item % C_out
        _gather_tiles(grad_y[b, o], plan, dY)
        for xi in range(a):  # t[xi, j] = sum_i A^T[i, xi] dY[i, j]
            for j in range(m):
                written = False
                for i in range(m):
                    written = _accumulate(t[xi, j], AT[i, xi], dY[i, j], written)
        p0 = b * T
        for xi in range(a):  # dM[(xi, nu)] = sum_j A^T[j, nu] t[xi, j]
            for nu in range(a):
                written = False
                for j in range(m):
                    written = _accumulate(dM[xi * a + nu, o, p0:p0 + T], AT[j, nu], t[xi, j],
                                          written)


def _weight_transform(weight, G):
    """``U[(xi, nu), o, c] = (G g G^T)[xi, nu]``: (C_out, C_in, 3, 3) -> (alpha^2, C_out, C_in).

    G : (alpha, 3). Flattened row by row, ``G g G^T`` is ``(G kron G) @ vec(g)``, so the
    transform of every kernel is ONE GEMM, ``(alpha^2, 9) @ (9, C_out*C_in)``: BLAS does in
    a few microseconds what a loop over the ``C_out*C_in`` small kernels would, no Numba
    needed.
    """
    C_out, C_in = weight.shape[:2]
    GG = np.kron(G, G)  # (alpha^2, 9)
    U = GG @ weight.reshape(C_out * C_in, 9).T  # (alpha^2, C_out*C_in)
    return U.reshape(-1, C_out, C_in)  # (alpha^2, C_out, C_in), C order


def _weight_untransform(dU, G):
    """``grad_g[o, c] = G^T dU[:, o, c] G``: (alpha^2, C_out, C_in) -> (C_out, C_in, 3, 3).

    G : (alpha, 3); the adjoint of :func:`_weight_transform`, also one GEMM:
    ``(C_out*C_in, alpha^2) @ (alpha^2, 9)`` with ``G kron G``.
    """
    a2, C_out, C_in = dU.shape
    GG = np.kron(G, G)  # (alpha^2, 9)
    grad_w = dU.reshape(a2, C_out * C_in).T @ GG  # (C_out*C_in, 9)
    return grad_w.reshape(C_out, C_in, 3, 3)


# --------------------------------------------------------------------------- the path


def choose_tile(spec: ConvSpec, x, weight, grad_y=None) -> int:
    """2 or 4: run this call as Winograd F(m x m, 3x3) with that ``m``; 0: another path.

    x : (N, C_in, H, W), weight : (C_out, C_in, 3, 3), grad_y : (N, C_out, H_out, W_out) or
    None (forward). Reads the option (module header), the problem and :data:`AUTO_TABLE`.
    """
    if not wn.applies(spec):
        return 0
    algorithm = CONV_ALGORITHM.get()
    m = wn.forced_tile(algorithm)
    if algorithm == "auto" and x.dtype == np.float32 and AUTO_TABLE["min_channels"]:
        T_h, T_w = wn.tile_counts(spec, AUTO_TABLE["tile"])
        big = min(spec.C_in, spec.C_out) >= AUTO_TABLE["min_channels"]
        if big and T_h * T_w >= AUTO_TABLE["min_plane_tiles"]:
            m = AUTO_TABLE["tile"]
    if m and _all_finite(x) and _all_finite(weight):
        if grad_y is None or _all_finite(grad_y):
            return m
    return 0


@njit(parallel=True, cache=True)
def _forward_lanes(x, U, mats, bias, plan):
    """The forward, one parallel region: each lane transforms, multiplies and untransforms
    its chunks of samples on its own (single-threaded BLAS).

    x : (N, C_in, H, W), U : (alpha^2, C_out, C_in), ``mats`` ``(B^T, A^T)``, bias : (C_out,),
    ``plan`` a :class:`TilePlan` -> y : (N, C_out, H_out, W_out).

    ``V`` and ``M`` are ``(alpha^2, C + 1, tiles)``: one spare channel row per position, the
    GEMMs read the first ``C``. Without it the 16 positions of ResNet-18's layer3 (256
    channels, 56 tile columns, float32) lie exactly 14 x 4 KiB apart; the F(2x2) transforms
    (:mod:`.winograd_f2`), which touch all 16 in one pass, then hit the same few cache sets,
    and its input transform took 0.85 ms a sample where it takes 0.20 (one thread; the
    output transform 0.35 against 0.10).
    """
    BT, AT = mats
    N = x.shape[0]
    a2, C_out, C_in = U.shape
    T = plan.tiles_h * plan.pitch  # tile columns per sample, junk included
    y = np.empty((N, C_out, plan.H_out, plan.W_out), x.dtype)
    chunks = -(-N // plan.samples)
    for lane in prange(plan.lanes):
        # (C + 1): a spare channel row per position (docstring)
        V_buffer = np.empty(a2 * (C_in + 1) * plan.samples * T, x.dtype)  # every chunk's
        M_buffer = np.empty(a2 * (C_out + 1) * plan.samples * T, x.dtype)
        for chunk in range(lane, chunks, plan.lanes):
            n0 = chunk * plan.samples
            n1 = min(n0 + plan.samples, N)
            cols = (n1 - n0) * T
            V = V_buffer[:a2 * (C_in + 1) * cols].reshape((a2, C_in + 1, cols))  # (.., tiles)
            M = M_buffer[:a2 * (C_out + 1) * cols].reshape((a2, C_out + 1, cols))
            if plan.m == 2:  # the matrices written into the code (winograd_f2.py)
                _input_transform_f2(x[n0:n1], plan, V)
            else:
                _input_transform(x[n0:n1], BT, plan, V)
            for k in range(a2):  # alpha^2 GEMMs: (C_out, C_in) @ (C_in, tiles)
                np.dot(U[k], V[k, :C_in], M[k, :C_out])
            if plan.m == 2:
                _output_transform_f2(M, bias, plan, y[n0:n1])
            else:
                _output_transform(M, AT, bias, plan, y[n0:n1])
    return y


@njit(parallel=True, cache=True)
def _grad_weight_lanes(grad_y, x, mats, plan):
    """``dU = sum over tiles of (A dY A^T) * (B^T d B)``, one parallel region of lanes.

    grad_y : (N, C_out, H_out, W_out), x : (N, C_in, H, W), ``mats`` ``(B^T, A^T)``, ``plan``
    a :class:`TilePlan` -> dU : (alpha^2, C_out, C_in); each lane sums its chunks into its
    own ``dU``, and the lanes' sums are added at the end.
    """
    BT, AT = mats
    N, C_in = x.shape[0], x.shape[1]
    C_out = grad_y.shape[1]
    a2 = plan.alpha * plan.alpha
    T = plan.tiles_h * plan.pitch  # tile columns per sample, junk included
    dU_lanes = np.zeros((plan.lanes, a2, C_out, C_in), x.dtype)
    chunks = -(-N // plan.samples)
    for lane in prange(plan.lanes):
        part = np.empty((C_out, C_in), x.dtype)
        # (C + 1): a spare channel row per position (_forward_lanes)
        V_buffer = np.empty(a2 * (C_in + 1) * plan.samples * T, x.dtype)  # every chunk's
        dM_buffer = np.empty(a2 * (C_out + 1) * plan.samples * T, x.dtype)
        for chunk in range(lane, chunks, plan.lanes):
            n0 = chunk * plan.samples
            n1 = min(n0 + plan.samples, N)
            cols = (n1 - n0) * T
            V = V_buffer[:a2 * (C_in + 1) * cols].reshape((a2, C_in + 1, cols))  # (.., tiles)
            dM = dM_buffer[:a2 * (C_out + 1) * cols].reshape((a2, C_out + 1, cols))
            if plan.m == 2:  # the matrices written into the code (winograd_f2.py)
                _input_transform_f2(x[n0:n1], plan, V)
                _grad_output_transform_f2(grad_y[n0:n1], plan, dM)
            else:
                _input_transform(x[n0:n1], BT, plan, V)
                _grad_output_transform(grad_y[n0:n1], AT, plan, dM)
            for k in range(a2):  # alpha^2 GEMMs: (C_out, tiles) @ (tiles, C_in)
                np.dot(dM[k, :C_out], V[k, :C_in].T, part)
                dU_lanes[lane, k] += part
    return dU_lanes.sum(axis=0)


def _conv2d_winograd(x, weight, bias, spec: ConvSpec, m: int):
    """Winograd F(m x m, 3x3) forward: what :func:`kernels.winograd.conv2d` computes.

    x : (N, C_in, H, W), weight : (C_out, C_in, 3, 3), bias : (C_out,) or None, ``spec`` a
    :class:`kernels.common.ConvSpec` that :func:`kernels.winograd.applies`, ``m`` 2 or 4 ->
    y : (N, C_out, H_out, W_out).
    """
    tile, dtype = wn.TILES[m], x.dtype
    plan = _tile_plan(spec, m, x.itemsize)
    mats = (tile.BT.astype(dtype), tile.AT.astype(dtype))
    bias = np.zeros(spec.C_out, dtype) if bias is None else bias
    with _single_threaded_blas(plan.lanes):  # the weight transform too (AUTO_TABLE: why)
        U = _weight_transform(weight, tile.G.astype(dtype))  # (alpha^2, C_out, C_in)
        return _forward_lanes(x, U, mats, bias, plan)  # (N, C_out, H_out, W_out)


def _conv2d_backward_winograd(grad_y, x, weight, spec: ConvSpec, m: int,
                              needs_input_grad=(True, True)):
    """grad_x and grad_weight of :func:`_conv2d_winograd`, through F(m x m, 3x3)
    (:mod:`kernels.winograd`); the bias gradient is the caller's, as on every path.

    grad_y : (N, C_out, H_out, W_out), x : (N, C_in, H, W), weight : (C_out, C_in, 3, 3) ->
    ``(grad_x (N, C_in, H, W), grad_weight (C_out, C_in, 3, 3))``. grad_x is the forward on
    ``grad_y`` with the flipped, transposed kernel; grad_weight is ``G^T (sum over tiles of
    (A dY A^T) * (B^T d B)) G``, the sum one GEMM per position. A gradient
    ``needs_input_grad`` (grad_x, grad_weight) does not ask for is not computed: None.
    """
    need_x, need_w = needs_input_grad
    tile, dtype = wn.TILES[m], x.dtype
    grad_x = grad_w = None
    if need_x:
        weight_t, spec_t = wn.grad_x_problem(weight, spec)
        grad_x = _conv2d_winograd(grad_y, weight_t, None, spec_t, m)  # (N, C_in, H, W)
    if need_w:
        plan = _tile_plan(spec, m, x.itemsize)
        mats = (tile.BT.astype(dtype), tile.AT.astype(dtype))
        with _single_threaded_blas(plan.lanes):
            dU = _grad_weight_lanes(grad_y, x, mats, plan)  # (alpha^2, C_out, C_in)
            grad_w = _weight_untransform(dU, tile.G.astype(dtype))  # (C_out, C_in, 3, 3)
    return grad_x, grad_w


__all__ = [
    "AUTO_TABLE",
    "CONV_ALGORITHM",
    "TilePlan",
    "_conv2d_backward_winograd",
    "_conv2d_winograd",
    "choose_tile",
]
