"""The hand-written kernels, one module per backend, each with the same function names.

Read them in this order: ``naive`` (textbook loops, the specification), ``vectorized``
(NumPy im2col + matmul), ``numba_cpu`` (Numba JIT), ``cuda`` (Numba CUDA).

Every backend module defines exactly the functions in :data:`KERNEL_FUNCTIONS`, with
arguments already validated and normalised by ``minitorch_cnn.functional``:

- ``stride``, ``padding``, ``dilation``, ``kernel_size`` are ``(h, w)`` pairs of ints;
  conv padding is symmetric (the functional layer pads the odd extra row/column of
  ``padding="same"`` itself, as PyTorch does);
- ``x`` is a C-contiguous float32 or float64 array (or a CUDA array for ``cuda``);
- ``output_size`` of adaptive pooling is a pair of ints;
- ``bias`` is ``None`` or a ``(C_out,)`` array of ``x``'s dtype;
- ``max_pool2d(..., return_indices=False)`` returns ``y``, or ``(y, indices)`` with
  ``indices`` int64 ``(N, C, H_out, W_out)``: the flat ``h*W + w`` of each window's maximum
  in its input plane, as PyTorch's, and ``-1`` for a window with no cell inside the input
  (PyTorch returns an out-of-range index there); ``max_pool2d_backward(..., indices=None)``
  takes them back (validated: C-contiguous int64, the output's shape, in ``[-1, H*W)``)
  instead of searching ``x`` again.

A backend module may also define ``unavailable_reason() -> str | None`` (``None`` when it
can run here).
"""

KERNEL_FUNCTIONS = (
    "corr2d",
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
)
