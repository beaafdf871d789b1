"""The hand-written kernels, one module per backend, each with the same function names.

Read them in this order: ``naive`` (textbook loops, the specification), ``vectorized``
(NumPy im2col + matmul), ``numba_cpu`` (Numba JIT), ``cuda`` (Numba CUDA).

The kernel contract
-------------------
``minitorch_cnn.functional`` validates every argument once, then describes the problem in one
named record from :mod:`kernels.common` and calls the backend's function of the same name with
the arrays and that record, nothing positional beyond it:

==============================================  =========================================
kernel function (every backend)                 returns
==============================================  =========================================
``corr2d(X, K)``                                ``Y (H - kh + 1, W - kw + 1)``
``conv2d(x, weight, bias, spec)``               ``y spec.y_shape``
``conv2d_backward(grad_y, x, weight, spec)``    ``ConvGrads(grad_x, grad_weight, grad_bias)``
``conv_transpose2d(x, weight, bias, spec)``     ``y spec.x_shape``
``conv_transpose2d_backward(grad_y, x, weight, spec)``  ``ConvGrads`` as conv2d_backward's
``max_pool2d(x, spec, *, return_indices)``      ``y``, or ``(y, indices)``
``max_pool2d_backward(grad_y, x, indices, spec)``  ``grad_x spec.x_shape``
``avg_pool2d(x, spec)``                         ``y spec.y_shape``
``avg_pool2d_backward(grad_y, spec)``           ``grad_x spec.x_shape``
``adaptive_avg_pool2d(x, spec)``                ``y spec.y_shape``
``adaptive_avg_pool2d_backward(grad_y, spec)``  ``grad_x spec.x_shape``
``adaptive_max_pool2d(x, spec, *, return_indices)``  ``y``, or ``(y, indices)``
``adaptive_max_pool2d_backward(grad_y, x, indices, spec)``  ``grad_x spec.x_shape``
``max_unpool2d(x, indices, spec)``              ``y spec.y_shape``
``max_unpool2d_backward(grad_y, indices, spec)``  ``grad_x spec.x_shape``
``pad(x, value, spec)``                         ``y spec.y_shape``
``pad_backward(grad_y, spec)``                  ``grad_x spec.x_shape``
``relu(x)``                                     ``y x.shape`` (element-wise: no record)
``relu_backward(grad_y, x)``                    ``grad_x x.shape``
``batch_norm(x, rm, rv, weight, bias, spec)``  ``BatchNormOutput(y, mean, inv_std)``
``batch_norm_backward(grad_y, x, weight, mean, inv_std, spec)``  ``ConvGrads``
``sigmoid(x)``, ``tanh(x)``                     ``y x.shape`` (element-wise)
``sigmoid_backward(grad_y, y)``                 ``grad_x y.shape``, from the *output* y
``tanh_backward(grad_y, y)``                    ``grad_x y.shape``, from the output y
``add(a, b)``                                   ``y a.shape`` (a, b: one shape)
``linear(x, weight, bias)``                     ``y (M, O)``: x (M, K), weight (O, K)
``linear_backward(grad_y, x, weight)``          ``LinearGrads(grad_x, grad_weight, grad_bias)``
``log_softmax(x)``                              ``y (N, C)``: x (N, C), over the rows
``log_softmax_backward(grad_y, y)``             ``grad_x (N, C)``, from the output y
``nll_loss(logp, target, spec)``                ``loss``, 0-d (a 0-d device array on cuda)
``nll_loss_backward(logp, target, grad, spec)``  ``grad_logp (N, C)``; grad: float
``cross_entropy(logits, target, spec)``         ``loss``, 0-d
``cross_entropy_backward(logits, target, grad, spec)``  ``grad_logits (N, C)``
``dropout(x, spec)``                            ``(y, mask)``: x.shape, mask uint8
``dropout_backward(grad_y, mask, spec)``        ``grad_x grad_y.shape``
``sgd_step(param, grad, buf, hyper, *, first)``  ``None``: param, buf updated in place
``adam_step(param, grad, m, v, v_max, hyper)``  ``None``: param, m, v, v_max in place
``leaky_relu(x, negative_slope)``              ``y x.shape`` (element-wise; a float)
``elu(x, alpha)``                               ``y x.shape`` (element-wise; a float)
``leaky_relu_backward(grad_y, x, negative_slope)``  ``grad_x x.shape``, from the *input* x
``elu_backward(grad_y, x, alpha)``              ``grad_x x.shape``, from the input x
``gelu(x, approximate)``                        ``y x.shape``; approximate "none" or "tanh"
``gelu_backward(grad_y, x, approximate)``       ``grad_x x.shape``, from the input x
``silu(x)``                                     ``y x.shape`` (element-wise)
``silu_backward(grad_y, x)``                    ``grad_x x.shape``, from the input x
``softmax(x)``                                  ``y (A, C, B)``: x (A, C, B), over axis 1
``softmax_backward(grad_y, y)``                 ``grad_x (A, C, B)``, from the output y
``dropout2d(x, spec)``                          ``(y, mask)``: x (R, L), mask (R,) uint8
``dropout2d_backward(grad_y, mask, spec)``      ``grad_x (R, L)``: one draw per row
``cat(arrays)``                                 ``y (A, sum C_i, B)``: arrays (A, C_i, B)
``cat_backward(grad_y, sizes)``                 ``[grad (A, C_i, B)]``, slices along axis 1
==============================================  =========================================

The records (NamedTuples of ints, so one Numba argument on the CPU and on the GPU; a kernel
reads ``spec.C_out // spec.groups``, never a position):

- :class:`kernels.common.ConvSpec`: ``N, C_in, H, W, C_out, groups, kH, kW, stride_h,
  stride_w, pad_h, pad_w, dil_h, dil_w, H_out, W_out, H_pad, W_pad``. Padding is symmetric:
  for ``padding="same"`` with an even dilated kernel the functional layer has already padded
  ``x`` with PyTorch's extra bottom/right row/column, and ``H``, ``W`` include it.
  ``conv_transpose2d`` takes the ConvSpec of the conv whose grad_x it is
  (:func:`kernels.common.conv_transpose_spec`): its ``x_shape`` is the transposed conv's
  output shape, its ``y_shape`` the input's, its weight the same ``(C_in, C_out // groups,
  kH, kW)`` array read as OIHW; ``H_out``, ``W_out`` equal the input's ``H``, ``W`` even
  where ``output_padding >= stride`` would give the conv more rows.
- :class:`kernels.common.PoolSpec`: ``N, C, H, W, kH, kW, stride_h, stride_w, pad_h, pad_w,
  dil_h, dil_w, H_out, W_out, ceil_mode, count_include_pad, divisor_override, H_pad, W_pad``
  (flags are 0/1; ``divisor_override`` 0 means PyTorch's None; ``H_pad``, ``W_pad`` hold
  every window, ceil mode included). Average pooling has ``dil_h = dil_w = 1``.
- :class:`kernels.common.AdaptivePoolSpec`: ``N, C, H, W, H_out, W_out`` (adaptive average
  and adaptive max pooling).
- :class:`kernels.common.UnpoolSpec`: ``N, C, H, W, H_out, W_out`` of ``max_unpool2d``: ``H``,
  ``W`` the pooled input's, ``H_out``, ``W_out`` the unpooled output's (PyTorch's default
  ``(H - 1)*stride - 2*padding + kernel``, or the caller's ``output_size``).
- :class:`kernels.common.BatchNormSpec`: ``N, C, L, training, momentum, eps`` (``L`` the
  product of the sizes after the channel axis; the one record with floats: the forward
  would take eight parameters otherwise). ``x``, ``y``, ``grad_y``, ``grad_x`` are
  ``(N, C, L)`` views; ``mean``, ``inv_std`` and the gradients of weight and bias ``(C,)``.
  The running pair ``rm``, ``rv`` (``running_mean``, ``running_var``, updated in place in
  training) is ``None`` only in training;
  ``weight`` and ``bias`` are always arrays (the functional layer fills in ones and zeros).
- :class:`kernels.common.PadSpec`: ``N, C, H, W, pad_left, pad_right, pad_top, pad_bottom,
  mode, H_out, W_out`` (``mode`` is one of the codes ``PAD_CONSTANT``, ``PAD_REFLECT``,
  ``PAD_REPLICATE``, ``PAD_CIRCULAR``; a negative pad crops). The fill value of constant
  padding is a float argument of its own, ``pad(x, value, spec)``.
- :class:`kernels.common.LossSpec`: ``N, C, reduction, divisor`` of the losses (``divisor``
  N for ``"mean"``, 1 for ``"sum"``; ``target`` is C-contiguous int64 ``(N,)`` in ``[0, C)``,
  checked on the host); :class:`kernels.common.DropoutSpec`: ``p, keep, random_seed`` (the CPU
  backends draw with NumPy's Generator, ``cuda`` with a counter-based SplitMix64);
  :class:`kernels.common.SgdHyper` and :class:`kernels.common.AdamHyper`, the optimizers'
  hyper-parameters (floats and bools; AdamHyper holds the step's bias corrections). The
  arrays an update writes are C-contiguous, of ``param``'s shape and dtype; ``buf`` is
  unread when momentum is 0, ``v_max`` (None allowed) unless amsgrad.

Each output-size formula lives in :mod:`kernels.common` and runs in the record's
constructor; a kernel never recomputes a size. Quantities a kernel derives (GEMM sizes, the
phases of the strided backward, tile counts, per-axis divisors) are named fields of records of
the backend's own, not positions. No function in ``kernels/`` takes more than six parameters
(``tests/test_kernel_contract.py`` checks every module).

``conv2d_backward`` (and ``linear_backward``) also takes a keyword-only
``needs_input_grad=(True, True, True)``, PyTorch's
``output_mask``: which of ``(grad_x, grad_weight, grad_bias)`` to compute. Every backend skips
the work of a gradient not asked for and returns ``None`` in its place (a network's first
layer needs no grad_x; a layer without bias no grad_bias).

What a kernel may assume (the functional layer guarantees it):

- ``x`` is a C-contiguous float32 or float64 array (or a CUDA array for ``cuda``) of
  ``spec.x_shape``; ``weight``, ``bias`` (``None`` or ``(C_out,)``), ``grad_y`` have its
  dtype and the spec's shapes; outputs have the input's dtype;
- ``spec.N > 0`` (an empty batch is answered by the functional layer, on the input's device);
  for ``pad`` every size of ``x`` and of ``y`` is positive, and the pads are within
  PyTorch's limits for the mode (reflect: each pad < the size; circular: each positive pad
  <= the size the negative pads leave);
- ``max_pool2d(..., return_indices=True)`` returns ``(y, indices)`` with ``indices`` int64
  ``spec.y_shape``: the flat ``h*W + w`` of each window's maximum in its input plane, as
  PyTorch's, and ``-1`` for a window with no cell inside the input (PyTorch returns an
  out-of-range index there); ``max_pool2d_backward`` takes them back as ``indices``
  (validated: C-contiguous int64, ``spec.y_shape``, in ``[-1, H*W)``) instead of searching
  ``x`` again, or ``None``. ``adaptive_max_pool2d`` / ``_backward`` do the same (every
  adaptive window holds a cell, so its indices are in ``[0, H*W)``);
- ``max_unpool2d``'s ``indices`` are C-contiguous int64 of ``spec.x_shape`` with values in
  ``[0, H_out*W_out)`` (checked on the host; device arrays are not checked, and the CUDA
  kernels skip out-of-range values).

A backend module may also define ``unavailable_reason() -> str | None`` (``None`` when it
can run here).

Checklist for a new op
----------------------
1. Its record in ``kernels/common.py`` (or an existing one), built by one constructor that
   holds the output-size formula; its naive loop in ``naive.py`` first, with shapes in the
   docstring; then the same name in ``vectorized``, ``numba_cpu`` and ``cuda``.
2. Its name in :data:`KERNEL_FUNCTIONS`; its functional wrapper validates, builds the record,
   answers ``N == 0`` itself, and calls ``_run(module, name, arrays..., spec)``.
3. Its reference twin in ``reference/``, a hypothesis test per backend against it (forward
   and backward), an error test per validation message, a PTX signature in
   ``kernels/cuda/ptx.py`` for each new CUDA kernel.

Checklist for a new backend
---------------------------
A module (or package) exporting every name in :data:`KERNEL_FUNCTIONS` with the signatures
above, a header saying what it changes relative to ``naive`` and why, registered in
``minitorch_cnn.backend``; ``tests/`` pick it up through the backend list.
"""

KERNEL_FUNCTIONS = (
    "corr2d",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "pad",
    "pad_backward",
    "relu",
    "relu_backward",
    "batch_norm",
    "batch_norm_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "add",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "nll_loss",
    "nll_loss_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "dropout",
    "dropout_backward",
    "sgd_step",
    "adam_step",
    "leaky_relu",
    "leaky_relu_backward",
    "elu",
    "elu_backward",
    "gelu",
    "gelu_backward",
    "silu",
    "silu_backward",
    "softmax",
    "softmax_backward",
    "dropout2d",
    "dropout2d_backward",
    "cat",
    "cat_backward",
)
