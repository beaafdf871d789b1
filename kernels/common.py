"""Shapes and small records every backend shares.

The output-size formulas live here, written once, and every backend and the functional layer
call them. ``kernels`` never imports the framework or torch, so this module depends on nothing
but the standard library.
"""

from __future__ import annotations

import functools
from typing import NamedTuple


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Length of one spatial axis of a convolution output.

    ``H_out = 1 + (H + 2*padding - dilation*(kernel - 1) - 1) // stride``

    The same formula as PyTorch and ``torch/_decomp``: ``dilation*(kernel - 1) + 1`` is the
    effective (dilated) kernel extent, and the output counts the window positions that fit.
    """
    return 1 + (size + 2 * padding - dilation * (kernel - 1) - 1) // stride


def pool_output_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """Length of one spatial axis of a pooling output, PyTorch's rule to the element.

    Floor mode is :func:`conv_output_size`. In ceil mode the division rounds up, so a last,
    partial window is kept, except when that window would *start* in the right padding
    (``(out - 1) * stride >= size + padding``): such a window would see only padding, and
    PyTorch drops it.
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1  # ceil division
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1


def adaptive_bounds(index: int, in_size: int, out_size: int) -> tuple[int, int]:
    """Half-open input range ``[start, end)`` pooled into output cell ``index``.

    ``start = floor(index * in / out)``, ``end = ceil((index + 1) * in / out)``, as PyTorch.
    Neighbouring windows may overlap by one element when ``in`` is not a multiple of ``out``.
    """
    start = (index * in_size) // out_size
    end = -(-((index + 1) * in_size) // out_size)
    return start, end


def adaptive_max_window(in_size: int, out_size: int) -> int:
    """The largest window :func:`adaptive_bounds` makes along one axis."""
    return max(
        adaptive_bounds(i, in_size, out_size)[1] - adaptive_bounds(i, in_size, out_size)[0]
        for i in range(out_size)
    )


def avg_pool_count(start: int, kernel: int, size: int, padding: int,
                   count_include_pad: int) -> int:
    """How many cells of one axis of an average-pooling window its divisor counts.

    The window covers ``[start, start + kernel)`` in unpadded input coordinates (``start``
    may be negative, in the padding). With ``count_include_pad`` it is clipped to the
    *padded* input only, so padding cells count but cells past the padding (ceil mode) do
    not; without it only real input cells ``[0, size)`` count.
    """
    end = min(start + kernel, size + padding)
    if count_include_pad:
        return end - start
    return max(min(end, size) - max(start, 0), 0)


def avg_pool_divisor(h_start: int, w_start: int, spec: PoolSpec) -> int:
    """The number an average-pooling window's sum is divided by (PyTorch's rule).

    ``h_start, w_start`` is the window's top-left corner in unpadded input coordinates (it may
    be negative). The divisor is ``spec.divisor_override`` when set, else the product of the
    two axes' :func:`avg_pool_count`.
    """
    if spec.divisor_override:
        return spec.divisor_override
    rows = avg_pool_count(h_start, spec.kH, spec.H, spec.pad_h, spec.count_include_pad)
    cols = avg_pool_count(w_start, spec.kW, spec.W, spec.pad_w, spec.count_include_pad)
    return rows * cols


class ConvSpec(NamedTuple):
    """One convolution problem, named: every conv kernel of every backend takes this.

    Built once per call by :meth:`ConvSpec.from_shapes` after ``minitorch_cnn.functional`` has
    validated the arguments; a kernel reads ``spec.C_out // spec.groups``, never a position.
    All fields are ints, so Numba (CPU and CUDA) takes a spec as one kernel argument.
    ``H``, ``W`` are the sizes of the ``x`` the kernel receives: for ``padding="same"`` with
    an even dilated kernel that ``x`` already holds PyTorch's one extra bottom/right row or
    column, and ``pad_h``, ``pad_w`` are the symmetric rest.
    """

    N: int  # batch size
    C_in: int  # input channels (all groups)
    H: int  # input height, before padding
    W: int  # input width, before padding
    C_out: int  # output channels (all groups)
    groups: int  # channel groups: C_in and C_out are cut into this many independent slices
    kH: int  # kernel height
    kW: int  # kernel width
    stride_h: int  # rows between neighbouring windows
    stride_w: int  # columns between neighbouring windows
    pad_h: int  # zero rows added at the top and at the bottom
    pad_w: int  # zero columns added at the left and at the right
    dil_h: int  # rows between neighbouring kernel taps (1: dense kernel)
    dil_w: int  # columns between neighbouring kernel taps
    H_out: int  # output height: 1 + (H + 2*pad_h - dil_h*(kH - 1) - 1) // stride_h
    W_out: int  # output width, the same along W
    H_pad: int  # padded input height, H + 2*pad_h
    W_pad: int  # padded input width, W + 2*pad_w

    @classmethod
    def from_shapes(
        cls,
        x_shape: tuple[int, int, int, int],
        weight_shape: tuple[int, int, int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> ConvSpec:
        """The spec of ``conv2d(x, weight, stride=, padding=, dilation=, groups=)``.

        x_shape : (N, C_in, H, W); weight_shape : (C_out, C_in // groups, kH, kW);
        ``stride``, ``padding``, ``dilation`` are ``(h, w)`` pairs (already validated).
        """
        return _conv_spec(cls, tuple(x_shape), tuple(weight_shape), tuple(stride),
                          tuple(padding), tuple(dilation), groups)

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        """``(N, C_in, H, W)``: the input's (and grad_x's) shape."""
        return (self.N, self.C_in, self.H, self.W)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """``(C_out, C_in // groups, kH, kW)``: the weight's (and grad_weight's) shape."""
        return (self.C_out, self.C_in // self.groups, self.kH, self.kW)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        """``(N, C_out, H_out, W_out)``: the output's (and grad_y's) shape."""
        return (self.N, self.C_out, self.H_out, self.W_out)


@functools.lru_cache(maxsize=1024)
def _conv_spec(cls, x_shape, weight_shape, stride, padding, dilation, groups) -> ConvSpec:
    """:meth:`ConvSpec.from_shapes`, remembered: a network asks for the same few specs at
    every step, and building one (eighteen ``int`` conversions and two output sizes) cost
    about 4 us per call. Keys that compare equal give equal specs, since every field goes
    through ``int``.
    """
    N, C_in, H, W = (int(v) for v in x_shape)
    C_out, _, kH, kW = (int(v) for v in weight_shape)
    (sh, sw), (ph, pw), (dh, dw) = ((int(a), int(b)) for a, b in (stride, padding, dilation))
    return cls(
        N=N, C_in=C_in, H=H, W=W, C_out=C_out, groups=int(groups), kH=kH, kW=kW,
        stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw, dil_h=dh, dil_w=dw,
        H_out=conv_output_size(H, kH, sh, ph, dh), W_out=conv_output_size(W, kW, sw, pw, dw),
        H_pad=H + 2 * ph, W_pad=W + 2 * pw,
    )


class PoolSpec(NamedTuple):
    """One max- or average-pooling problem, named: every pooling kernel takes this.

    Built once per call by :meth:`PoolSpec.from_shape` after validation. All fields are ints
    (the two flags are 0 or 1), so Numba takes a spec as one kernel argument. Max pooling
    reads the window fields and ``H_pad``/``W_pad``; average pooling has no dilation (1) and
    adds ``count_include_pad`` and ``divisor_override``.
    """

    N: int  # batch size
    C: int  # channels (each pooled on its own)
    H: int  # input height, before padding
    W: int  # input width, before padding
    kH: int  # window height
    kW: int  # window width
    stride_h: int  # rows between neighbouring windows (PyTorch's stride=None: kH)
    stride_w: int  # columns between neighbouring windows (stride=None: kW)
    pad_h: int  # padding rows at the top and bottom (-inf for max, 0 for average)
    pad_w: int  # padding columns at the left and right
    dil_h: int  # rows between neighbouring window taps (max pooling only; 1 for average)
    dil_w: int  # columns between neighbouring window taps
    H_out: int  # output height: pool_output_size(H, kH, stride_h, pad_h, dil_h, ceil_mode)
    W_out: int  # output width, the same along W
    ceil_mode: int  # 1: the output size rounds up (a last, partial window is kept)
    count_include_pad: int  # 1: an average's divisor counts the padding cells it covers
    divisor_override: int  # an average's divisor for every window; 0: none (PyTorch's None)
    H_pad: int  # rows of a padded input that holds every window: >= H + 2*pad_h (ceil mode)
    W_pad: int  # columns of a padded input that holds every window

    @classmethod
    def from_shape(
        cls,
        x_shape: tuple[int, int, int, int],
        kernel_size: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int] = (1, 1),
        ceil_mode: bool = False,
    ) -> PoolSpec:
        """The spec of ``max_pool2d`` on an input of ``x_shape`` (for average pooling, follow
        with :meth:`averaged`).

        x_shape : (N, C, H, W); the pairs are ``(h, w)`` (already validated, ``stride=None``
        already replaced by ``kernel_size``).
        """
        return _pool_spec(cls, tuple(x_shape), tuple(kernel_size), tuple(stride),
                          tuple(padding), tuple(dilation), bool(ceil_mode))

    def averaged(self, count_include_pad: bool = True, divisor_override: int | None = None):
        """The same windows for ``avg_pool2d``: with its divisor rule (PyTorch's arguments)."""
        if (int(bool(count_include_pad)), divisor_override, self.divisor_override) == (
                self.count_include_pad, None, 0):
            return self  # already so (as every max pool's spec is): no copy
        return self._replace(
            count_include_pad=int(bool(count_include_pad)),
            divisor_override=0 if divisor_override is None else int(divisor_override),
        )

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H, W)``: the input's (and grad_x's) shape."""
        return (self.N, self.C, self.H, self.W)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H_out, W_out)``: the output's (and grad_y's, indices') shape."""
        return (self.N, self.C, self.H_out, self.W_out)


@functools.lru_cache(maxsize=1024)
def _pool_spec(cls, x_shape, kernel_size, stride, padding, dilation, ceil_mode) -> PoolSpec:
    """:meth:`PoolSpec.from_shape`, remembered, as :func:`_conv_spec` is (a third of a tiny
    ``F.max_pool2d``'s 23 us went to building its spec).
    """
    N, C, H, W = (int(v) for v in x_shape)
    (kH, kW), (sh, sw), (ph, pw), (dh, dw) = (
        (int(a), int(b)) for a, b in (kernel_size, stride, padding, dilation))
    H_out = pool_output_size(H, kH, sh, ph, dh, ceil_mode)
    W_out = pool_output_size(W, kW, sw, pw, dw, ceil_mode)
    return cls(
        N=N, C=C, H=H, W=W, kH=kH, kW=kW, stride_h=sh, stride_w=sw,
        pad_h=ph, pad_w=pw, dil_h=dh, dil_w=dw, H_out=H_out, W_out=W_out,
        ceil_mode=int(ceil_mode), count_include_pad=1, divisor_override=0,
        H_pad=max(H + 2 * ph, (H_out - 1) * sh + dh * (kH - 1) + 1),
        W_pad=max(W + 2 * pw, (W_out - 1) * sw + dw * (kW - 1) + 1),
    )


class AdaptivePoolSpec(NamedTuple):
    """One adaptive-pooling problem: windows from :func:`adaptive_bounds`, no stride or padding.

    Built by :meth:`AdaptivePoolSpec.from_shape` after validation; all fields are ints.
    """

    N: int  # batch size
    C: int  # channels
    H: int  # input height
    W: int  # input width
    H_out: int  # output height (output_size[0]; PyTorch's None already replaced by H)
    W_out: int  # output width

    @classmethod
    def from_shape(
        cls, x_shape: tuple[int, int, int, int], output_size: tuple[int, int]
    ) -> AdaptivePoolSpec:
        """The spec of ``adaptive_avg_pool2d(x, output_size)``, x_shape : (N, C, H, W)."""
        N, C, H, W = (int(v) for v in x_shape)
        return cls(N=N, C=C, H=H, W=W, H_out=int(output_size[0]), W_out=int(output_size[1]))

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H, W)``: the input's (and grad_x's) shape."""
        return (self.N, self.C, self.H, self.W)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H_out, W_out)``: the output's (and grad_y's) shape."""
        return (self.N, self.C, self.H_out, self.W_out)


def unpool_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Length of one spatial axis of a max-unpooling output when no ``output_size`` is given.

    ``H_out = (H - 1)*stride - 2*padding + kernel``, PyTorch's default: the smallest input
    a max pool with these ``kernel``, ``stride``, ``padding`` maps to ``H`` outputs (floor
    mode, no dilation). Any size in ``(H_out - stride, H_out + stride)`` pools to ``H`` too;
    ``output_size=`` picks one of those.
    """
    return (size - 1) * stride - 2 * padding + kernel


class UnpoolSpec(NamedTuple):
    """One max-unpooling problem (``max_unpool2d``): x is the pooled input, y the unpooled.

    Built by :meth:`UnpoolSpec.from_shape` after validation; all fields are ints. The window
    arguments only size the output (:func:`unpool_output_size`); the kernels read nothing
    but the shapes, since ``indices`` already say where each value goes.
    """

    N: int  # batch size
    C: int  # channels
    H: int  # input (pooled) height
    W: int  # input (pooled) width
    H_out: int  # output (unpooled) height: unpool_output_size(H, ...) or output_size[-2]
    W_out: int  # output (unpooled) width

    @classmethod
    def from_shape(cls, x_shape: tuple[int, int, int, int],
                   output_size: tuple[int, int]) -> UnpoolSpec:
        """The spec of ``max_unpool2d(x, indices, ...)`` with output ``(H_out, W_out)``.

        x_shape : (N, C, H, W); ``output_size`` the validated ``(H_out, W_out)`` (the
        functional layer applies :func:`unpool_output_size` or checks the caller's).
        """
        N, C, H, W = (int(v) for v in x_shape)
        return cls(N=N, C=C, H=H, W=W, H_out=int(output_size[0]), W_out=int(output_size[1]))

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H, W)``: the input's (and indices', grad_x's) shape."""
        return (self.N, self.C, self.H, self.W)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H_out, W_out)``: the output's (and grad_y's) shape."""
        return (self.N, self.C, self.H_out, self.W_out)


PAD_CONSTANT = 0
"""``PadSpec.mode`` of ``F.pad(..., mode="constant")``: cells outside the input get ``value``."""
PAD_REFLECT = 1
"""``mode="reflect"``: mirrored about the first / last cell, which is not repeated."""
PAD_REPLICATE = 2
"""``mode="replicate"``: the first / last cell repeated."""
PAD_CIRCULAR = 3
"""``mode="circular"``: the input wrapped around (after cropping by negative pads)."""
PAD_MODES = ("constant", "reflect", "replicate", "circular")
"""PyTorch's mode names, each at the position of its code: ``PAD_MODES[PAD_REFLECT]``."""


class PadSpec(NamedTuple):
    """One padding problem (``F.pad`` of a 4-D input), named: every pad kernel takes this.

    Built by :meth:`PadSpec.from_shape` after validation; all fields are ints (the mode is
    one of the codes :data:`PAD_CONSTANT` ... :data:`PAD_CIRCULAR`), so Numba takes a spec as
    one kernel argument. A pad may be negative: it then crops that many cells off that side.
    The fill value of constant padding is not part of the spec; it is a kernel argument.
    """

    N: int  # batch size
    C: int  # channels (each padded on its own)
    H: int  # input height
    W: int  # input width
    pad_left: int  # columns added before column 0 (negative: columns cropped there)
    pad_right: int  # columns added after column W - 1 (negative: cropped)
    pad_top: int  # rows added before row 0 (negative: cropped)
    pad_bottom: int  # rows added after row H - 1 (negative: cropped)
    mode: int  # PAD_CONSTANT, PAD_REFLECT, PAD_REPLICATE or PAD_CIRCULAR
    H_out: int  # output height: H + pad_top + pad_bottom
    W_out: int  # output width: W + pad_left + pad_right

    @classmethod
    def from_shape(
        cls, x_shape: tuple[int, int, int, int], pad: tuple[int, int, int, int], mode: str
    ) -> PadSpec:
        """The spec of ``F.pad(x, pad, mode)``, x_shape : (N, C, H, W).

        ``pad`` is ``(left, right, top, bottom)`` (already validated), ``mode`` a name of
        :data:`PAD_MODES`.
        """
        N, C, H, W = (int(v) for v in x_shape)
        left, right, top, bottom = (int(v) for v in pad)
        return cls(N=N, C=C, H=H, W=W, pad_left=left, pad_right=right, pad_top=top,
                   pad_bottom=bottom, mode=PAD_MODES.index(mode),
                   H_out=H + top + bottom, W_out=W + left + right)

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H, W)``: the input's (and grad_x's) shape."""
        return (self.N, self.C, self.H, self.W)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H_out, W_out)``: the output's (and grad_y's) shape."""
        return (self.N, self.C, self.H_out, self.W_out)


class BatchNormSpec(NamedTuple):
    """One batch-normalisation problem: every ``batch_norm`` kernel takes this.

    The kernels see ``x`` as ``(N, C, L)``: ``L`` is the product of the sizes after the
    channel axis (``H*W`` for an image batch, 1 for an ``(N, C)`` one), so one loop serves
    every rank. Unlike the other records it carries two floats, ``momentum`` and ``eps``:
    they are the op's hyper-parameters, and as separate arguments the forward kernel would
    take eight (the contract allows six). The CUDA kernels take them as scalars.
    """

    N: int  # batch size
    C: int  # channels: one mean and variance each
    L: int  # values per channel per sample (H*W)
    training: int  # 1: the batch's statistics (and the running ones updated); 0: the running
    momentum: float  # running = (1 - momentum) * running + momentum * batch
    eps: float  # added to the variance before the square root

    @classmethod
    def from_shape(cls, x_shape: tuple[int, ...], training: bool, momentum: float,
                   eps: float) -> BatchNormSpec:
        """The spec of ``F.batch_norm`` on x_shape : (N, C, *) (already validated)."""
        N, C = int(x_shape[0]), int(x_shape[1])
        L = 1
        for size in x_shape[2:]:
            L *= int(size)
        return cls(N=N, C=C, L=L, training=int(bool(training)), momentum=float(momentum),
                   eps=float(eps))

    @property
    def x_shape(self) -> tuple[int, int, int]:
        """``(N, C, L)``: the view of ``x`` (and of ``y``, ``grad_y``, ``grad_x``) kernels take."""
        return (self.N, self.C, self.L)

    @property
    def count(self) -> int:
        """``N*L``: the values one channel's statistics are taken over."""
        return self.N * self.L


class BatchNormOutput(NamedTuple):
    """What a ``batch_norm`` kernel returns.

    y : (N, C, L), ``weight * (x - mean) * inv_std + bias``;
    mean, inv_std : (C,), the statistics used: the batch's in training (``inv_std =
    1 / sqrt(biased var + eps)``), the running ones in eval; ``batch_norm_backward`` takes
    them back.
    """

    y: object
    mean: object
    inv_std: object


class ConvGrads(NamedTuple):
    """What ``conv2d_backward`` returns; unpacks like the tuple of the public API.

    grad_x : (N, C_in, H, W)
    grad_weight : (C_out, C_in // groups, kH, kW)
    grad_bias : (C_out,), ``grad_y.sum((0, 2, 3))``
    """

    grad_x: object
    grad_weight: object
    grad_bias: object


class LinearGrads(NamedTuple):
    """What ``linear_backward`` returns (each ``None`` where ``needs_input_grad`` says so).

    grad_x : (M, in_features), grad_y @ weight
    grad_weight : (out_features, in_features), grad_y.T @ x
    grad_bias : (out_features,), ``grad_y.sum(0)``
    """

    grad_x: object
    grad_weight: object
    grad_bias: object


LOSS_MEAN = 0
"""``LossSpec.reduction`` code of ``reduction="mean"``: the sum over the batch divided by N."""
LOSS_SUM = 1
"""``LossSpec.reduction`` code of ``reduction="sum"``."""
LOSS_REDUCTIONS = ("mean", "sum")


class LossSpec(NamedTuple):
    """A classification loss over ``N`` rows of ``C`` classes: log_softmax, nll, cross-entropy.

    ``reduction`` is ``LOSS_MEAN`` or ``LOSS_SUM``; ``divisor`` is what the summed loss is
    divided by (N for the mean, 1 for the sum), so a kernel never branches on the reduction.
    """

    N: int
    C: int
    reduction: int
    divisor: int

    @classmethod
    def from_shape(cls, shape: tuple[int, int], reduction: str) -> LossSpec:
        """The spec of logits / log-probabilities of ``shape`` (N, C) and a reduction name."""
        N, C = (int(v) for v in shape)
        code = LOSS_REDUCTIONS.index(reduction)
        return cls(N, C, code, N if code == LOSS_MEAN else 1)

    def grad_scale(self, grad: float) -> float:
        """The factor of each row's gradient: ``grad / N`` for the mean, ``grad`` for the sum."""
        return float(grad) / self.divisor


class DropoutSpec(NamedTuple):
    """Dropout with probability ``p`` of zeroing an element, masks drawn from ``random_seed``.

    ``keep = 1 - p``: an element is kept when its uniform draw ``u`` in ``[0, 1)`` is
    ``< keep`` (p = 0 keeps all, p = 1 none). A kept element is multiplied by
    ``1 / (1 - p)``, which each kernel computes in the array's dtype as PyTorch does
    (``DT(1) / DT(keep)``), and by 0 when ``p == 1`` (PyTorch returns ``x * 0`` there).
    ``random_seed`` is a non-negative int.
    """

    p: float
    keep: float
    random_seed: int

    @classmethod
    def from_p(cls, p: float, random_seed: int) -> DropoutSpec:
        """The spec of probability ``p`` in ``[0, 1]`` and ``random_seed``."""
        p = float(p)
        return cls(p, 1.0 - p, int(random_seed))


class SgdHyper(NamedTuple):
    """``torch.optim.SGD``'s hyper-parameters, one kernel argument.

    Floats, and ``nesterov`` a bool, so Numba types every record alike;
    :meth:`of` converts them. The update of one element (``first``: the first step, when
    PyTorch's momentum buffer does not exist yet)::

        d = grad + weight_decay * param          (when weight_decay != 0)
        buf = d                                  (first step)
        buf = momentum * buf + (1 - dampening) * d   (later steps)
        d = d + momentum * buf if nesterov else buf   (when momentum != 0)
        param = param - lr * d
    """

    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False

    @classmethod
    def of(cls, lr, momentum=0.0, weight_decay=0.0, dampening=0.0, nesterov=False) -> SgdHyper:
        """The record with every field converted (float, float, float, float, bool)."""
        return cls(float(lr), float(momentum), float(weight_decay), float(dampening),
                   bool(nesterov))


class AdamHyper(NamedTuple):
    """``torch.optim.Adam`` / ``AdamW``'s update at one step, one kernel argument.

    ``step_size = lr / (1 - beta1**step)`` and ``bias2_sqrt = sqrt(1 - beta2**step)`` are
    computed once on the host in double precision, as PyTorch's single-tensor Adam does.
    The update of one element::

        param = param * (1 - lr * weight_decay)      (decoupled, AdamW)
        g = grad + weight_decay * param              (weight_decay != 0, not decoupled)
        m = lerp(m, g, 1 - beta1)
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                        (amsgrad; v_max replaces v below)
        param = param - step_size * m / (sqrt(v) / bias2_sqrt + eps)
    """

    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    step_size: float
    bias2_sqrt: float
    amsgrad: bool
    decoupled: bool

    @classmethod
    def at_step(cls, step: int, lr, betas, eps, weight_decay) -> AdamHyper:
        """The record of step ``step`` (1 on the first update) and the hyper-parameters.

        ``amsgrad`` and ``decoupled`` are False; set them with ``._replace(amsgrad=True)``.
        """
        beta1, beta2 = float(betas[0]), float(betas[1])
        step_size = float(lr) / (1.0 - beta1 ** int(step))
        bias2_sqrt = (1.0 - beta2 ** int(step)) ** 0.5
        return cls(float(lr), beta1, beta2, float(eps), float(weight_decay), step_size,
                   bias2_sqrt, False, False)


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int,
                               output_padding: int, dilation: int) -> int:
    """Length of one spatial axis of a transposed-convolution output, PyTorch's formula.

    ``H_out = (H - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1``

    It inverts :func:`conv_output_size`: a convolution with the same ``kernel``, ``stride``,
    ``padding`` and ``dilation`` maps every size in ``[H_out - output_padding, H_out -
    output_padding + stride - 1]`` back to ``H`` (the floor division forgets the rest), and
    ``output_padding`` picks one of them.
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose_spec(
    x_shape: tuple[int, int, int, int],
    weight_shape: tuple[int, int, int, int],
    groups: int,
    **pairs: tuple[int, int],
) -> ConvSpec:
    """The :class:`ConvSpec` of the convolution whose grad_x ``conv_transpose2d`` computes.

    x_shape : (N, C_in, H, W) and weight_shape : (C_in, C_out // groups, kH, kW) of
    ``conv_transpose2d(x, weight, stride=, padding=, output_padding=, groups=, dilation=)``;
    ``pairs`` are its ``stride``, ``padding``, ``output_padding`` and ``dilation``, each an
    ``(h, w)`` pair, by name (four keywords, all required: a kernel-side function takes at
    most six parameters). The output y is (N, C_out, H_y, W_y) with
    :func:`conv_transpose_output_size`. The spec describes ``conv2d(z, weight, stride=,
    padding=, dilation=, groups=)`` on a ``z`` of y's shape: its ``x_shape`` is y's shape,
    its ``weight_shape`` the same weight (read as OIHW: ``C_in`` of the transposed conv is
    the conv's ``C_out``), its ``y_shape`` x's. ``H_out``, ``W_out`` are set to ``H``,
    ``W``: when ``output_padding >= stride`` (allowed when ``output_padding < dilation``)
    the conv would have ``output_padding // stride`` more output rows; they stand for input
    rows of the transposed conv that do not exist (zeros in conv2d_backward's grad_y), so
    dropping them is exact. Every argument is validated.
    """
    N, C_in, H, W = (int(v) for v in x_shape)
    _, C_out_g, kH, kW = (int(v) for v in weight_shape)
    stride, padding, dilation = pairs["stride"], pairs["padding"], pairs["dilation"]
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oph, opw = pairs["output_padding"]
    H_y = conv_transpose_output_size(H, kH, sh, ph, oph, dh)
    W_y = conv_transpose_output_size(W, kW, sw, pw, opw, dw)
    spec = ConvSpec.from_shapes((N, C_out_g * int(groups), H_y, W_y), weight_shape, stride,
                                padding, dilation, groups)
    return spec._replace(H_out=H, W_out=W)


def flops_conv2d(y_shape: tuple[int, ...], weight_shape: tuple[int, ...]) -> int:
    """Multiply-adds times two of a conv forward: ``2*N*C_out*H_out*W_out*(C_in/groups)*kH*kW``.

    y_shape : (N, C_out, H_out, W_out); weight_shape : (C_out, C_in // groups, kH, kW). Each
    output element is one dot product of length ``(C_in // groups) * kH * kW``.
    """
    N, C_out, H_out, W_out = y_shape
    _, C_in_g, kH, kW = weight_shape
    return 2 * N * C_out * H_out * W_out * C_in_g * kH * kW


__all__ = [
    "AdamHyper",
    "AdaptivePoolSpec",
    "DropoutSpec",
    "LOSS_MEAN",
    "LOSS_REDUCTIONS",
    "LOSS_SUM",
    "LossSpec",
    "SgdHyper",
    "BatchNormOutput",
    "BatchNormSpec",
    "ConvGrads",
    "ConvSpec",
    "LinearGrads",
    "PAD_CIRCULAR",
    "PAD_CONSTANT",
    "PAD_MODES",
    "PAD_REFLECT",
    "PAD_REPLICATE",
    "PadSpec",
    "PoolSpec",
    "UnpoolSpec",
    "adaptive_bounds",
    "adaptive_max_window",
    "avg_pool_count",
    "avg_pool_divisor",
    "conv_output_size",
    "conv_transpose_output_size",
    "conv_transpose_spec",
    "flops_conv2d",
    "pool_output_size",
    "unpool_output_size",
]

