"""What the op-level tests cannot see of the cuda backend's training kernels.

``tests/test_elementwise_linear.py`` and ``tests/test_loss_optim_ops.py`` prove the ops
(``F.sigmoid``, ``F.linear``, ``F.cross_entropy``, ``F.sgd_step``, ...) equal to torch on every
backend; ``tests/test_framework_device.py`` trains LeNet-5, the MNIST CNN and a residual net
on ``cuda`` against their torch twins. Left for here are properties of one kernel launch:

- a grid-stride loop (:mod:`kernels.cuda.elementwise`) gives the same result whatever the
  grid, down to one block of one thread;
- the cross-entropy reduction (:mod:`kernels.cuda.loss`) over a batch longer than its block
  adds in a fixed order (two runs give the same bits), and a label out of range gives NaN
  rather than reading another sample's memory.

Without a GPU this runs in the Numba CUDA simulator.
"""

from __future__ import annotations

import numpy as np
import pytest

kc = pytest.importorskip("kernels.cuda")
if kc.unavailable_reason() is not None:  # pragma: no cover - only without GPU and simulator
    pytest.skip(kc.unavailable_reason(), allow_module_level=True)
torch = pytest.importorskip("torch")

import numba  # noqa: E402
from numba import cuda  # noqa: E402

from kernels.cuda import elementwise, loss  # noqa: E402
from tests.checks import check_against_torch  # noqa: E402


def dev(a):
    return cuda.to_device(np.ascontiguousarray(a))


def test_grid_stride_kernel_gives_the_same_result_for_any_grid():
    """The grid-stride loop covers every element whatever the launch: 1 block of 256
    threads, 3 blocks of 32 (each thread handles 3 elements), 1 block of 1 thread."""
    x = np.random.default_rng(2).standard_normal(250)
    expected = torch.sigmoid(torch.from_numpy(x)).numpy()
    for grid, block in [(1, 256), (3, 32), (1, 1)]:
        y = cuda.device_array(250)
        elementwise.sigmoid_forward_kernel(numba.float64)[grid, block](dev(x), y)
        check_against_torch(y.copy_to_host(), expected, f"sigmoid[{grid}, {block}]")


def test_cross_entropy_mean_over_a_batch_longer_than_the_block_is_exact_and_repeatable():
    """N = 300 > REDUCE_THREADS = 128: threads first add 2 or 3 samples each, then the tree;
    two runs give the same bits (fixed order, no atomics)."""
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((300, 3)) * 3
    logits[0] += 1000.0  # exp(1000) overflows: only a stabilised log-sum-exp survives
    labels = rng.integers(0, 3, 300).astype(np.int64)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits),
                                                 torch.from_numpy(labels)).numpy()
    d_logits, d_labels = dev(logits), dev(labels)
    assert 300 > loss.REDUCE_THREADS
    first = loss.cross_entropy_forward(d_logits, d_labels)[0].copy_to_host()
    second = loss.cross_entropy_forward(d_logits, d_labels)[0].copy_to_host()
    check_against_torch(first, expected.reshape(1), "loss")
    assert first.tobytes() == second.tobytes()


def test_cross_entropy_label_out_of_range_gives_nan_not_garbage():
    d_loss, _ = loss.cross_entropy_forward(dev(np.zeros((2, 3))),
                                           dev(np.array([0, 3], dtype=np.int64)))
    assert np.isnan(d_loss.copy_to_host()[0])
